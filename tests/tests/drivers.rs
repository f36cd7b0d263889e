//! The driver matrix: real PostgreSQL drivers and an ORM against `weft serve`, each creating
//! tables, binding parameters of every type weft stores, reading them back (text and
//! binary), and running a transaction that loses a write conflict (40001) and retries.
//! The scripts are in tests/drivers/; tests/run installs the drivers (Python packages,
//! node-postgres, pgjdbc and a JDK). sqlx's check is a crate, tests/sqlx-check, whose
//! `query_as!` macros are checked while it compiles against a running weft.

use std::path::PathBuf;
use std::process::Command;

use weft_tests::Server;

fn python() -> Option<PathBuf> {
    weft_tests::python("psycopg, asyncpg and SQLAlchemy")
}

fn run_script(script: &str) {
    let Some(python) = python() else { return };
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("data"));
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("drivers")
        .join(script);
    let out = Command::new(python)
        .arg(&path)
        .arg(server.port.to_string())
        .output()
        .expect("run the driver script");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && stdout.trim_end().ends_with(" ok"),
        "{script} failed:\n{stdout}\n{stderr}\n-- server log --\n{}",
        server.log_text()
    );
}

/// Runs `script <port>` on weft and on PostgreSQL 15 (when there is one): both must
/// succeed (print "ok" last), and their outputs, compared line by line, must agree.
fn run_on_both(script: &str, what: &str) {
    let Some(python) = python() else { return };
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("drivers")
        .join(script);
    let run = |port: u16, log: &dyn Fn() -> String| -> String {
        let out = Command::new(&python)
            .arg(&path)
            .arg(port.to_string())
            .output()
            .expect("run the script");
        let stdout = String::from_utf8_lossy(&out.stdout).to_string();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success() && stdout.trim_end().ends_with("ok"),
            "{script} failed on port {port}:\n{stdout}\n{stderr}\n{}",
            log()
        );
        stdout
    };
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("data"));
    let weft = run(server.port, &|| server.log_text());
    let Some(pg) = weft_tests::PgServer::start() else {
        return;
    };
    let postgres = run(pg.port, &String::new);
    for (w, p) in weft.lines().zip(postgres.lines()) {
        assert_eq!(
            w, p,
            "{what} differently on weft (left) and PostgreSQL 15 (right)"
        );
    }
    assert_eq!(weft.lines().count(), postgres.lines().count(), "{what}");
}

/// An application's migration (SQLAlchemy create_all, Alembic operations and autogenerate)
/// on weft and on PostgreSQL 15: both must succeed and reflect the same schema.
#[test]
fn an_orm_migration_reflects_as_on_postgres() {
    run_on_both("migration_check.py", "the migration reflects");
}

/// A Django application's migrations, unapplied and applied again, its ORM and Django's
/// introspection (tests/drivers/django_check.py) on weft and on PostgreSQL 15: both must
/// succeed and introspect the same schema.
#[test]
fn a_django_migration_introspects_as_on_postgres() {
    run_on_both("django_check.py", "Django sees the schema");
}

/// SQLAlchemy's asyncpg dialect casts every bound parameter (`$1::INTEGER`) and asyncpg
/// encodes each in the binary format of the type the server describes: the described
/// parameter and result types, values bound that way, and an ORM flow, on weft and on
/// PostgreSQL 15 (tests/drivers/sqlalchemy_asyncpg_check.py).
#[test]
fn sqlalchemy_over_asyncpg_as_on_postgres() {
    run_on_both(
        "sqlalchemy_asyncpg_check.py",
        "asyncpg is told parameter types",
    );
}

#[test]
fn psycopg3() {
    run_script("psycopg_check.py");
}

#[test]
fn asyncpg() {
    run_script("asyncpg_check.py");
}

#[test]
fn sqlalchemy_orm() {
    run_script("sqlalchemy_check.py");
}

/// A tool the test script installs: its path from `var`, or a skip (a failure when the
/// test script asked for every tool).
fn tool(var: &str, what: &str) -> Option<PathBuf> {
    match std::env::var_os(var) {
        Some(p) => Some(PathBuf::from(p)),
        None => {
            assert!(
                std::env::var("WEFT_REQUIRE_TOOLS").is_err(),
                "{var} ({what}) is required"
            );
            eprintln!("skipping: set {var} to {what}");
            None
        }
    }
}

fn check_output(what: &str, out: std::process::Output, server: &Server) {
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && stdout.trim_end().ends_with(" ok"),
        "{what} failed:\n{stdout}\n{stderr}\n-- server log --\n{}",
        server.log_text()
    );
}

#[test]
fn node_postgres() {
    let Some(modules) = tool("WEFT_NODE_MODULES", "a node_modules with pg") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("data"));
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("drivers/node/pg_check.js");
    let out = Command::new("node")
        .arg(&script)
        .arg(server.port.to_string())
        .env("NODE_PATH", modules)
        .output()
        .expect("run node");
    check_output("node-postgres", out, &server);
}

#[test]
fn pgjdbc() {
    let Some(jar) = tool("WEFT_PGJDBC_JAR", "the pgjdbc jar") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("data"));
    let source = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("drivers/java/PgjdbcCheck.java");
    // Java's source launcher compiles and runs the one file.
    let out = Command::new("java")
        .arg("-cp")
        .arg(jar)
        .arg(&source)
        .arg(server.port.to_string())
        .output()
        .expect("run java");
    check_output("pgjdbc", out, &server);
}

/// JDBC's fetch size (a portal suspended every 10,000 rows) and psycopg's named cursor
/// (DECLARE, FETCH FORWARD 10000) each read a 10-million-row result: both clients stay in
/// constant memory (their scripts check it), and so does the server (checked here).
#[test]
fn ten_million_rows_stream_in_constant_memory() {
    let (Some(jar), Some(python)) = (tool("WEFT_PGJDBC_JAR", "the pgjdbc jar"), python()) else {
        return;
    };
    const MIB: u64 = 1 << 20;
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("data"));
    let pid = server.pid().unwrap();
    let drivers = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("drivers");
    let rows = "10000000";
    let mut java = Command::new("java");
    java.arg("-Xmx64m")
        .arg("-cp")
        .arg(jar)
        .arg(drivers.join("java/FetchSizeCheck.java"));
    let mut py = Command::new(python);
    py.arg(drivers.join("named_cursor_check.py"));
    for (what, cmd) in [
        ("pgjdbc fetch size", &mut java),
        ("psycopg named cursor", &mut py),
    ] {
        let before = weft_tests::process_memory(pid, "VmRSS");
        weft_tests::reset_peak_memory(pid);
        let out = cmd
            .arg(server.port.to_string())
            .arg(rows)
            .output()
            .expect("run the driver");
        check_output(what, out, &server);
        let grown = weft_tests::process_memory(pid, "VmHWM").saturating_sub(before);
        println!("{what}: the server grew by {} MiB at most", grown / MIB);
        assert!(
            grown < 128 * MIB,
            "{what}: the server grew by {} MiB",
            grown / MIB
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlx_query_as_checked_against_weft() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("data"));
    let client = server.connect().await;
    // The tables the crate's macros are checked against, the article's Todos among them.
    client
        .batch_execute(
            "CREATE TABLE Todos (id varchar PRIMARY KEY, name varchar NOT NULL, \
                 description varchar NOT NULL, created_at timestamptz NOT NULL, \
                 updated_at timestamptz NOT NULL);
             CREATE TABLE typed (id bigint PRIMARY KEY, b boolean, i2 smallint, \
                 i4 integer NOT NULL, f4 real, f8 double precision, n numeric(10,2), t text, \
                 vc varchar(20), bp char(3), d date, ts timestamp, tz timestamptz, u uuid, \
                 j json, jb jsonb, by bytea);
             CREATE TABLE acct (id int PRIMARY KEY, bal int);
             INSERT INTO acct VALUES (1, 100);",
        )
        .await
        .unwrap();
    let url = format!(
        "postgres://postgres@127.0.0.1:{}/postgres?sslmode=disable",
        server.port
    );
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("sqlx-check/Cargo.toml");
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target"))
        .join("sqlx-check");
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    // The build itself is the check of `query_as!`: the macros describe each query to weft
    // and the crate compiles only if the columns' types and nullability fit the structs.
    // A changed schema must be seen, so the macros' crate is rebuilt each time.
    let out = tokio::task::spawn_blocking({
        let (cargo, manifest, target, url) =
            (cargo.clone(), manifest.clone(), target.clone(), url.clone());
        move || {
            let _ = Command::new(&cargo)
                .args(["clean", "-p", "weft-sqlx-check", "--manifest-path"])
                .arg(&manifest)
                .env("CARGO_TARGET_DIR", &target)
                .output();
            Command::new(&cargo)
                .args(["build", "--locked", "--manifest-path"])
                .arg(&manifest)
                .env("CARGO_TARGET_DIR", &target)
                .env("DATABASE_URL", &url)
                .env_remove("SQLX_OFFLINE")
                .output()
                .expect("run cargo")
        }
    })
    .await
    .unwrap();
    assert!(
        out.status.success(),
        "tests/sqlx-check did not compile against weft:\n{}\n-- server log --\n{}",
        String::from_utf8_lossy(&out.stderr),
        server.log_text()
    );
    let out = tokio::task::spawn_blocking(move || {
        Command::new(target.join("debug/weft-sqlx-check"))
            .env("DATABASE_URL", &url)
            .output()
            .expect("run the sqlx check")
    })
    .await
    .unwrap();
    check_output("sqlx", out, &server);
}
