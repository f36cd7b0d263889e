//! Password authentication: SCRAM-SHA-256 for roles configured at start (`--user`) and
//! roles made with `CREATE USER ... PASSWORD`, `ALTER USER ... PASSWORD` taking effect on
//! the next login, a wrong or missing password or an unknown role rejected with 28P01, roles
//! kept across a `kill -9`, and psql over TLS. The default trusts loopback connections.

use std::process::Command;

use weft_tests::{sqlstate, Server};

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
    let e = admin
        .batch_execute("CREATE USER dave PASSWORD 'SCRAM-SHA-256$4096:c2FsdA==$a:b'")
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
