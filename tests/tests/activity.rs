//! `pg_stat_activity`, `pg_cancel_backend` and `pg_terminate_backend`, on weft and on
//! PostgreSQL 15 in the same run: a session idle in a transaction block is listed with its
//! state and last statement, a role that is not a superuser sees only its own sessions'
//! statements and may signal only them, and a terminated session ends with FATAL 57P01.

use weft_tests::{pg_required, simple_rows, sqlstate, PgServer, Server};

async fn connect(
    conn: &str,
) -> (
    tokio_postgres::Client,
    tokio::task::JoinHandle<Result<(), tokio_postgres::Error>>,
) {
    let (c, conn) = tokio_postgres::connect(conn, tokio_postgres::NoTls)
        .await
        .unwrap();
    (c, tokio::spawn(conn))
}

/// The scenario on one server; returns what it observed, to compare across servers.
async fn scenario(conn: &str) -> Vec<String> {
    let mut seen = Vec::new();
    let (victim, victim_conn) = connect(&format!("{conn} application_name=victim")).await;
    victim.batch_execute("BEGIN").await.unwrap();
    victim.simple_query("SELECT 1 AS one").await.unwrap();
    // Through the extended protocol: the statement is listed with the text the client
    // sent, spacing and case included, not as weft would print it.
    victim
        .query_one("select  $1::text  AS two", &[&"2"])
        .await
        .unwrap();
    let (admin, _a) = connect(conn).await;
    admin
        .batch_execute("DROP ROLE IF EXISTS activity_peer; CREATE ROLE activity_peer LOGIN")
        .await
        .unwrap();
    let row = simple_rows(
        &admin,
        "SELECT state, query, usename IS NOT NULL, backend_start <= now(), \
         xact_start IS NOT NULL, backend_type \
         FROM pg_stat_activity WHERE application_name = 'victim'",
    )
    .await;
    seen.push(format!("victim as listed: {row:?}"));
    let own = simple_rows(
        &admin,
        "SELECT count(*) FROM pg_stat_activity WHERE pid = pg_backend_pid() AND state = 'active'",
    )
    .await;
    seen.push(format!("own session active: {own:?}"));
    let pid: i32 = admin
        .query_one(
            "SELECT pid FROM pg_stat_activity WHERE application_name = 'victim'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    // Another role sees the session but not its statement, and may not signal it.
    let (peer, _p) = connect(&format!("{conn} user=activity_peer")).await;
    let hidden = simple_rows(
        &peer,
        "SELECT query, state FROM pg_stat_activity WHERE application_name = 'victim'",
    )
    .await;
    seen.push(format!("as another role: {hidden:?}"));
    for f in ["pg_cancel_backend", "pg_terminate_backend"] {
        let e = peer
            .query_one(&format!("SELECT {f}($1)"), &[&pid])
            .await
            .unwrap_err();
        seen.push(format!("{f} by another role: {}", sqlstate(&e)));
    }
    drop(peer);
    // An unknown pid: false.
    let none: bool = admin
        .query_one("SELECT pg_cancel_backend(2147483000)", &[])
        .await
        .unwrap()
        .get(0);
    seen.push(format!("cancel of no session: {none}"));
    let cancelled: bool = admin
        .query_one("SELECT pg_cancel_backend($1)", &[&pid])
        .await
        .unwrap()
        .get(0);
    seen.push(format!("cancel of an idle session: {cancelled}"));
    let terminated: bool = admin
        .query_one("SELECT pg_terminate_backend($1)", &[&pid])
        .await
        .unwrap()
        .get(0);
    seen.push(format!("terminate: {terminated}"));
    // The victim's connection ends with FATAL 57P01.
    let end = victim_conn.await.unwrap();
    let code = match end {
        Err(e) => sqlstate(&e),
        Ok(()) => "closed without an error".into(),
    };
    seen.push(format!("victim ended with: {code}"));
    assert!(victim.simple_query("SELECT 2").await.is_err());
    admin
        .batch_execute("DROP ROLE activity_peer")
        .await
        .unwrap();
    seen
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_are_listed_and_signalled_like_postgres() {
    let dir = tempfile::tempdir().unwrap();
    let weft = Server::start(&dir.path().join("data"));
    let on_weft = scenario(&weft.conn_string()).await;
    assert!(
        on_weft.iter().any(|s| s == "victim ended with: 57P01"),
        "{on_weft:#?}"
    );
    match PgServer::start() {
        Some(pg) => {
            let on_pg = scenario(&pg.conn_string()).await;
            assert_eq!(on_weft, on_pg);
        }
        None => assert!(
            !pg_required(),
            "PostgreSQL 15 is required (WEFT_REQUIRE_PG)"
        ),
    }
}
