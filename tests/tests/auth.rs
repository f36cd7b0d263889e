//! Password authentication: SCRAM-SHA-256 for roles configured at start (`--user`) and
//! roles made with `CREATE USER ... PASSWORD`, `ALTER USER ... PASSWORD` taking effect on
//! the next login, a wrong or missing password or an unknown role rejected with 28P01, roles
//! kept across a `kill -9`, and psql over TLS. The default trusts loopback connections.
//! Stored passwords are PostgreSQL's SCRAM verifiers, and nothing stored is enough to log
//! in with. Roles without a password log in with short-lived tokens (`weft token`).

use std::process::Command;

use weft_tests::{sqlstate, PgServer, Server};

async fn login(
    port: u16,
    user: &str,
    password: Option<&str>,
) -> Result<tokio_postgres::Client, tokio_postgres::Error> {
    let mut conn = format!("host=127.0.0.1 port={port} user={user} dbname=postgres");
    if let Some(p) = password {
        conn.push_str(&format!(" password={p}"));
    }
    let (client, connection) = tokio_postgres::connect(&conn, tokio_postgres::NoTls).await?;
    tokio::spawn(async move {
        let _ = connection.await;
    });
    Ok(client)
}

async fn who(c: &tokio_postgres::Client) -> String {
    c.query_one("SELECT current_user", &[])
        .await
        .unwrap()
        .get(0)
}

fn rejected(r: Result<tokio_postgres::Client, tokio_postgres::Error>, what: &str) -> String {
    match r {
        Ok(_) => panic!("{what}: the login was accepted"),
        Err(e) => sqlstate(&e),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scram_passwords_for_configured_and_created_roles() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = Server::start_with(
        dir.path(),
        &["--auth", "scram", "--user", "admin:s3cret pass"],
    );
    let port = server.port;

    // A role configured at start.
    let admin = login(port, "admin", Some("'s3cret pass'")).await.unwrap();
    assert_eq!(who(&admin).await, "admin");
    assert_eq!(
        rejected(login(port, "admin", Some("wrong")).await, "wrong password"),
        "28P01"
    );
    // tokio-postgres gives up before asking the server when it has no password; psql
    // below shows the server's answer to a client that sends none.
    assert_eq!(
        rejected(login(port, "ghost", Some("x")).await, "unknown role"),
        "28P01"
    );

    // Roles made with SQL.
    admin
        .batch_execute("CREATE USER alice WITH PASSWORD 'wonder'; CREATE ROLE carol")
        .await
        .unwrap();
    let alice = login(port, "alice", Some("wonder")).await.unwrap();
    assert_eq!(who(&alice).await, "alice");
    assert_eq!(
        rejected(login(port, "alice", Some("Wonder")).await, "case matters"),
        "28P01"
    );
    // A role without LOGIN (or without a password) cannot log in; ALTER gives it both.
    assert_eq!(
        rejected(login(port, "carol", Some("''")).await, "no password"),
        "28P01"
    );
    admin
        .batch_execute("ALTER ROLE carol WITH LOGIN PASSWORD 'c4rol'")
        .await
        .unwrap();
    let carol = login(port, "carol", Some("c4rol")).await.unwrap();
    assert_eq!(who(&carol).await, "carol");

    // A new password replaces the old one for the next login; the open session goes on.
    alice
        .batch_execute("ALTER USER alice PASSWORD 'rabbit'")
        .await
        .unwrap();
    assert_eq!(
        rejected(login(port, "alice", Some("wonder")).await, "old password"),
        "28P01"
    );
    let alice2 = login(port, "alice", Some("rabbit")).await.unwrap();
    assert_eq!(who(&alice2).await, "alice");
    assert_eq!(who(&alice).await, "alice");

    // The catalog shows the roles; DDL errors are PostgreSQL's.
    let rows = admin
        .query(
            "SELECT rolname, rolcanlogin FROM pg_roles WHERE rolname IN ('alice', 'carol', 'admin') ORDER BY 1",
            &[],
        )
        .await
        .unwrap();
    let got: Vec<(String, bool)> = rows.iter().map(|r| (r.get(0), r.get(1))).collect();
    assert_eq!(
        got,
        vec![
            ("admin".to_string(), true),
            ("alice".to_string(), true),
            ("carol".to_string(), true)
        ]
    );
    let e = admin.batch_execute("CREATE USER alice").await.unwrap_err();
    assert_eq!(sqlstate(&e), "42710", "{e:?}");
    let e = admin.batch_execute("DROP USER nobody").await.unwrap_err();
    assert_eq!(sqlstate(&e), "42704", "{e:?}");
    let e = admin
        .batch_execute("CREATE ROLE pg_mine")
        .await
        .unwrap_err();
    assert_eq!(sqlstate(&e), "42939", "{e:?}");
    // MD5 hashes cannot be used by SCRAM.
    let e = admin
        .batch_execute("CREATE USER dave PASSWORD 'md5a3556571e93b0d20722ba62be61e8c2d'")
        .await
        .unwrap_err();
    assert_eq!(sqlstate(&e), "0A000", "{e:?}");
    admin
        .batch_execute("DROP USER IF EXISTS nobody")
        .await
        .unwrap();

    // A role's password survives a crash: it is committed like any row.
    drop((admin, alice, alice2, carol));
    server.kill9();
    server.restart();
    let port = server.port;
    let alice = login(port, "alice", Some("rabbit")).await.unwrap();
    assert_eq!(who(&alice).await, "alice");

    // Dropped, the role can no longer log in.
    let admin = login(port, "admin", Some("'s3cret pass'")).await.unwrap();
    admin.batch_execute("DROP USER carol").await.unwrap();
    assert_eq!(
        rejected(login(port, "carol", Some("c4rol")).await, "dropped role"),
        "28P01"
    );

    // psql (libpq) over TLS, and without a password.
    let base = format!("host=127.0.0.1 port={port} dbname=postgres sslmode=require");
    let out = Command::new("psql")
        .args([
            "-X",
            "-w",
            &format!("{base} user=alice"),
            "-c",
            "SELECT current_user",
        ])
        .env("PGPASSWORD", "rabbit")
        .env("PGCONNECT_TIMEOUT", "10")
        .output()
        .expect("psql");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("alice"));
    for (password, expect) in [
        (
            Some("nope"),
            "password authentication failed for user \"alice\"",
        ),
        (None, "no password supplied"),
    ] {
        let mut cmd = Command::new("psql");
        cmd.args(["-X", "-w", &format!("{base} user=alice"), "-c", "SELECT 1"])
            .env("PGCONNECT_TIMEOUT", "10")
            .env_remove("PGPASSWORD");
        if let Some(p) = password {
            cmd.env("PGPASSWORD", p);
        }
        let out = cmd.output().expect("psql");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success() && err.contains(expect), "{err}");
    }
    // The server is unharmed by the failed logins.
    assert_eq!(who(&alice).await, "alice");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn loopback_is_trusted_by_default() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path());
    // No password needed on loopback, and a created role's password is not asked for.
    let c = login(server.port, "postgres", None).await.unwrap();
    c.batch_execute("CREATE USER erin PASSWORD 'pw'")
        .await
        .unwrap();
    let erin = login(server.port, "erin", None).await.unwrap();
    assert_eq!(who(&erin).await, "erin");
    assert!(server
        .log_text()
        .contains("auth=\"loopback trusted, others scram-sha-256\""));
}

/// The verifier PostgreSQL 15 stores for a password logs in to weft when given in
/// CREATE ROLE, as pg_dumpall writes it; weft's own verifiers have PostgreSQL's form; and
/// no file under the data directory holds anything a SCRAM login could be made from
/// (the salted password, or the password itself).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stored_verifiers_are_postgresqls_and_not_enough_to_log_in() {
    let Some(pg) = PgServer::start() else { return };
    let p = pg.connect().await;
    p.batch_execute(
        "SET password_encryption = 'scram-sha-256'; CREATE USER frank PASSWORD 'from postgres'",
    )
    .await
    .unwrap();
    let pg_verifier: String = p
        .query_one(
            "SELECT rolpassword FROM pg_authid WHERE rolname = 'frank'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert!(
        pg_verifier.starts_with("SCRAM-SHA-256$4096:"),
        "{pg_verifier}"
    );

    let dir = tempfile::tempdir().unwrap();
    let mut server = Server::start_with(dir.path(), &["--auth", "scram", "--user", "admin:adm1n"]);
    let port = server.port;
    let admin = login(port, "admin", Some("adm1n")).await.unwrap();
    admin
        .batch_execute(&format!(
            "CREATE USER frank PASSWORD '{pg_verifier}'; CREATE USER gina PASSWORD 'made by weft'"
        ))
        .await
        .unwrap();
    let frank = login(port, "frank", Some("'from postgres'")).await.unwrap();
    assert_eq!(who(&frank).await, "frank");
    assert_eq!(
        rejected(login(port, "frank", Some("other")).await, "wrong password"),
        "28P01"
    );
    // The verifier is shown as PostgreSQL shows it, for both.
    let rows = admin
        .query(
            "SELECT rolname, rolpassword FROM pg_authid WHERE rolname IN ('frank', 'gina') ORDER BY 1",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(rows[0].get::<_, String>(1), pg_verifier);
    let gina_verifier: String = rows[1].get(1);
    let parts: Vec<&str> = gina_verifier
        .strip_prefix("SCRAM-SHA-256$4096:")
        .expect("PostgreSQL's form")
        .split(['$', ':'])
        .collect();
    assert_eq!(parts.len(), 3, "{gina_verifier}");
    // PostgreSQL takes weft's verifier as its own: gina logs in to PostgreSQL with it.
    p.batch_execute(&format!("CREATE USER gina PASSWORD '{gina_verifier}'"))
        .await
        .unwrap();
    let (gina_pg, conn) = tokio_postgres::connect(
        &format!("{} user=gina password='made by weft'", pg.conn_string()),
        tokio_postgres::NoTls,
    )
    .await
    .expect("PostgreSQL accepts weft's verifier");
    tokio::spawn(conn);
    assert_eq!(who(&gina_pg).await, "gina");

    // Nothing stored holds the salted password (what SCRAM's proof is made from) or the
    // password: stop the node (it flushes), then read every file it wrote.
    drop((admin, frank));
    server.stop();
    let salt = base64_decode(parts[0]);
    let salted = pbkdf2_sha256(b"made by weft", &salt, 4096);
    let hex: String = salted.iter().map(|b| format!("{b:02x}")).collect();
    let mut files = 0;
    for f in walk(dir.path()) {
        let bytes = std::fs::read(&f).unwrap();
        files += 1;
        for needle in [&salted[..], hex.as_bytes(), b"made by weft"] {
            assert!(
                !bytes.windows(needle.len()).any(|w| w == needle),
                "{} holds a login secret",
                f.display()
            );
        }
    }
    assert!(files > 0);
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

fn base64_decode(s: &str) -> Vec<u8> {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.decode(s).unwrap()
}

fn pbkdf2_sha256(password: &[u8], salt: &[u8], iterations: u32) -> Vec<u8> {
    let mut out = [0u8; 32];
    ring::pbkdf2::derive(
        ring::pbkdf2::PBKDF2_HMAC_SHA256,
        std::num::NonZeroU32::new(iterations).unwrap(),
        salt,
        password,
        &mut out,
    );
    out.to_vec()
}

/// `weft token` prints a token for a role without a password; psql and tokio-postgres
/// log in with it as the password, over TLS, until it expires. A token for another role,
/// a changed token, and a token replayed after it expired are refused with 28P01.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_log_in_roles_without_passwords_until_they_expire() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start_with(dir.path(), &["--auth", "scram", "--user", "admin:adm1n"]);
    let port = server.port;
    let admin = login(port, "admin", Some("adm1n")).await.unwrap();
    admin
        .batch_execute("CREATE USER app; CREATE USER other; CREATE ROLE nologin")
        .await
        .unwrap();
    let token = |role: &str, ttl: &str| -> String {
        let out = Command::new(weft_tests::weft_bin())
            .args(["token", "--role", role, "--ttl", ttl, "--data"])
            .arg(dir.path())
            .output()
            .expect("weft token");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap().trim().to_string()
    };

    // Valid: psql over TLS, and tokio-postgres.
    let app_token = token("app", "15m");
    let out = Command::new("psql")
        .args([
            "-X",
            "-w",
            &format!("host=127.0.0.1 port={port} dbname=postgres user=app sslmode=require"),
            "-tAc",
            "SELECT current_user",
        ])
        .env("PGPASSWORD", &app_token)
        .env("PGCONNECT_TIMEOUT", "10")
        .output()
        .expect("psql");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "app");
    let app = login(port, "app", Some(&app_token)).await.unwrap();
    assert_eq!(who(&app).await, "app");

    // Wrong role; a role that may not log in; changed role, expiry or signature.
    assert_eq!(
        rejected(login(port, "other", Some(&app_token)).await, "wrong role"),
        "28P01"
    );
    let nologin = token("nologin", "15m");
    assert_eq!(
        rejected(login(port, "nologin", Some(&nologin)).await, "NOLOGIN"),
        "28P01"
    );
    let fields: Vec<&str> = app_token.split('.').collect();
    assert_eq!(fields.len(), 4, "{app_token}");
    let other_fields: Vec<String> = token("other", "15m").split('.').map(String::from).collect();
    let tampered = [
        format!(
            "{}.{}.{}.{}",
            fields[0], other_fields[1], fields[2], fields[3]
        ),
        format!(
            "{}.{}.{}.{}",
            fields[0],
            fields[1],
            fields[2].parse::<u64>().unwrap() + 3600,
            fields[3]
        ),
        format!(
            "{}.{}.{}.{}",
            fields[0],
            fields[1],
            fields[2],
            flip_last(fields[3])
        ),
    ];
    for (t, user) in tampered.iter().zip(["other", "app", "app"]) {
        assert_eq!(rejected(login(port, user, Some(t)).await, t), "28P01");
    }
    // A password is not a token, and a role with a password does not take tokens.
    assert_eq!(
        rejected(login(port, "app", Some("guess")).await, "a guess"),
        "28P01"
    );
    let admin_token = token("admin", "15m");
    assert_eq!(
        rejected(login(port, "admin", Some(&admin_token)).await, "SCRAM role"),
        "28P01"
    );

    // Expiry: a token accepted while it lives is refused once it has expired.
    // A 2-second token lives at least one second after it is printed (expiry is in
    // whole seconds).
    let minted = tokio::time::Instant::now();
    let short = token("app", "2s");
    let c = login(port, "app", Some(&short)).await.unwrap();
    assert_eq!(who(&c).await, "app");
    // Wait out the token's life (the passing of time is what is under test).
    let life = std::time::Duration::from_millis(2050);
    std::thread::sleep(life.saturating_sub(minted.elapsed()));
    assert_eq!(
        rejected(login(port, "app", Some(&short)).await, "expired"),
        "28P01"
    );
    // The session that logged in with a token goes on.
    assert_eq!(who(&app).await, "app");
    // Bad --ttl values are refused by the command.
    let out = Command::new(weft_tests::weft_bin())
        .args(["token", "--role", "app", "--ttl", "30d", "--data"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("7 days"));
}

fn flip_last(s: &str) -> String {
    let mut b = s.as_bytes().to_vec();
    let i = b.len() - 2;
    b[i] = if b[i] == b'A' { b'B' } else { b'A' };
    String::from_utf8(b).unwrap()
}
