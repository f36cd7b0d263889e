//! The driver matrix: real PostgreSQL drivers and an ORM against `weft serve`, each creating
//! tables, binding parameters of every type weft stores, reading them back (text and
//! binary), and running a transaction that loses a write conflict (40001) and retries.
//! The scripts are in tests/drivers/; tests/run installs the drivers.

use std::path::PathBuf;
use std::process::Command;

use weft_tests::Server;

fn python() -> Option<PathBuf> {
    match std::env::var_os("WEFT_PYTHON") {
        Some(p) => Some(PathBuf::from(p)),
        None => {
            assert!(
                std::env::var("WEFT_REQUIRE_TOOLS").is_err(),
                "WEFT_PYTHON (a Python with psycopg, asyncpg and SQLAlchemy) is required"
            );
            eprintln!("skipping: set WEFT_PYTHON to a Python with psycopg, asyncpg and SQLAlchemy");
            None
        }
    }
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
