//! The bound on connections: `weft serve --max-connections N` serves N clients at once and
//! refuses one more with FATAL 53300, as PostgreSQL does at its `max_connections`; the
//! sessions already open carry on, a cancel request still goes through at the limit (on
//! weft), and a slot freed is a slot a new client gets. The same scenario runs on weft and on a
//! PostgreSQL 15 started with the same limit (and no slots reserved for superusers), and
//! their transcripts must be equal.

use weft_tests::{pg_required, PgServer, Server};

const LIMIT: usize = 3;

async fn connect(conn: &str) -> Result<tokio_postgres::Client, tokio_postgres::Error> {
    let (c, connection) = tokio_postgres::connect(conn, tokio_postgres::NoTls).await?;
    tokio::spawn(connection);
    Ok(c)
}

/// One of the first LIMIT sessions. On PostgreSQL (`settle`), the harness's readiness
/// probe may still hold a slot while its backend exits: a 53300 there is retried until the
/// slot frees (bounded). weft must accept at once.
async fn first_connect(conn: &str, settle: bool) -> tokio_postgres::Client {
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        match connect(conn).await {
            Ok(c) => return c,
            Err(e)
                if settle
                    && tokio::time::Instant::now() < deadline
                    && e.code() == Some(&tokio_postgres::error::SqlState::TOO_MANY_CONNECTIONS) =>
            {
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            }
            Err(e) => panic!("session {conn}: {e}"),
        }
    }
}

fn described(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(d) => format!("{} {} {}", d.severity(), d.code().code(), d.message()),
        None => format!("not a server error: {e}"),
    }
}

/// The scenario; with `cancel`, also a cancel request sent at the limit (weft lets it
/// through; PostgreSQL 15 at its limit does not act on it, so its side skips that step).
async fn scenario(conn: &str, cancel: bool) -> Vec<String> {
    let mut out = Vec::new();
    let mut open = Vec::new();
    for _ in 0..LIMIT {
        open.push(first_connect(conn, !cancel).await);
    }
    for c in &open {
        assert_eq!(c.query("SELECT 1", &[]).await.unwrap().len(), 1);
    }
    out.push(format!("{LIMIT} sessions open"));
    // One more, and again: refused each time, and nothing else changes.
    for _ in 0..2 {
        match connect(conn).await {
            Ok(_) => out.push("one more: accepted".into()),
            Err(e) => out.push(format!("one more: {}", described(&e))),
        }
    }
    for c in &open {
        assert_eq!(c.query("SELECT 2", &[]).await.unwrap().len(), 1);
    }
    out.push("the open sessions still answer".into());
    if cancel {
        // A cancel request at the limit reaches a running statement.
        let slow = open.remove(0);
        let token = slow.cancel_token();
        let running = tokio::spawn(async move {
            let r = slow
                .query("SELECT count(*) FROM generate_series(1, 2000000000)", &[])
                .await;
            (r.map(|_| ()).map_err(|e| described(&e)), slow)
        });
        let watcher = &open[0];
        loop {
            let active: i64 = watcher
                .query_one(
                    "SELECT count(*) FROM pg_stat_activity \
                     WHERE state = 'active' AND query LIKE '%generate_series(1, 2000000000)%' \
                     AND pid <> pg_backend_pid()",
                    &[],
                )
                .await
                .unwrap()
                .get(0);
            if active > 0 {
                break;
            }
            tokio::task::yield_now().await;
        }
        token.cancel_query(tokio_postgres::NoTls).await.unwrap();
        let (result, slow) = running.await.unwrap();
        out.push(format!("cancelled at the limit: {result:?}"));
        open.insert(0, slow);
    }
    // A slot freed is taken by the next client.
    drop(open.pop());
    let mut again = None;
    for _ in 0..200 {
        // The server notices the closed connection shortly after the client drops it.
        match connect(conn).await {
            Ok(c) => {
                again = Some(c);
                break;
            }
            Err(_) => tokio::time::sleep(std::time::Duration::from_millis(10)).await,
        }
    }
    let again = again.expect("a freed slot is served");
    let shown: String = again
        .query_one("SHOW max_connections", &[])
        .await
        .unwrap()
        .get(0);
    out.push(format!(
        "after one left, a new client is served; max_connections = {shown}"
    ));
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn beyond_max_connections_is_53300_and_the_rest_carry_on() {
    let dir = tempfile::tempdir().unwrap();
    let limit = LIMIT.to_string();
    let weft = Server::start_with(&dir.path().join("data"), &["--max-connections", &limit]);
    let on_weft = scenario(&weft.conn_string(), true).await;
    assert!(
        on_weft
            .iter()
            .any(|l| l == "one more: FATAL 53300 sorry, too many clients already"),
        "{on_weft:#?}"
    );
    assert!(
        on_weft.iter().any(|l| l
            == "cancelled at the limit: Err(\"ERROR 57014 canceling statement due to user request\")"),
        "{on_weft:#?}"
    );
    let on_weft: Vec<String> = on_weft
        .into_iter()
        .filter(|l| !l.starts_with("cancelled"))
        .collect();
    match PgServer::start_with(&[
        ("max_connections", &limit),
        ("superuser_reserved_connections", "0"),
    ]) {
        Some(pg) => assert_eq!(on_weft, scenario(&pg.conn_string(), false).await),
        None => assert!(
            !pg_required(),
            "PostgreSQL 15 is required (WEFT_REQUIRE_PG)"
        ),
    }
}
