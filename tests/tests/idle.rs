//! `idle_in_transaction_session_timeout`: a session idle inside a transaction block past
//! its bound is ended with FATAL 25P03, as PostgreSQL 15 does (checked against one in the
//! same run), so an abandoned transaction cannot hold compaction's horizon back. Outside a
//! block, idling is fine; and weft bounds it even when the setting is 0 (the server's
//! `--idle-in-transaction-session-timeout-ms`).

use std::time::Duration;

use weft_tests::{PgServer, Server};

/// Opens a transaction after `setup`, idles for `idle`, and returns the SQLSTATE the
/// connection ended with (`None`: it is still usable).
async fn idle_in_block(conn: &str, setup: &str, idle: Duration) -> Option<String> {
    let (c, conn) = tokio_postgres::connect(conn, tokio_postgres::NoTls)
        .await
        .unwrap();
    let ended = tokio::spawn(conn);
    c.batch_execute(setup).await.unwrap();
    c.batch_execute("BEGIN; SELECT 1").await.unwrap();
    tokio::time::sleep(idle).await;
    match c.simple_query("SELECT 2").await {
        Ok(_) => {
            c.batch_execute("COMMIT").await.unwrap();
            None
        }
        Err(e) => {
            assert!(c.is_closed(), "the session must be closed: {e}");
            // The FATAL error arrived while idle: the connection task reports it.
            let end = ended.await.unwrap();
            Some(match end {
                Err(e) => e
                    .code()
                    .map(|c| c.code().to_string())
                    .unwrap_or_else(|| format!("no SQLSTATE: {e}")),
                Ok(()) => "closed without an error".into(),
            })
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_in_transaction_sessions_end_like_postgres() {
    let dir = tempfile::tempdir().unwrap();
    let weft = Server::start_with(
        &dir.path().join("data"),
        &["--idle-in-transaction-session-timeout-ms", "1500"],
    );
    let short = "SET idle_in_transaction_session_timeout = '300ms'";
    let weft_end = idle_in_block(&weft.conn_string(), short, Duration::from_millis(900)).await;
    assert_eq!(weft_end.as_deref(), Some("25P03"));
    // A block used within the bound stays open.
    let kept = idle_in_block(&weft.conn_string(), short, Duration::from_millis(50)).await;
    assert_eq!(kept, None);
    // Setting 0 does not lift the server's bound.
    let off = "SET idle_in_transaction_session_timeout = 0";
    let bounded = idle_in_block(&weft.conn_string(), off, Duration::from_millis(2500)).await;
    assert_eq!(bounded.as_deref(), Some("25P03"));
    // Idle outside a block is not idle in a transaction.
    let c = weft.connect().await;
    c.batch_execute(short).await.unwrap();
    tokio::time::sleep(Duration::from_millis(900)).await;
    c.simple_query("SELECT 3").await.unwrap();
    assert!(weft
        .log_text()
        .contains("terminating connection due to idle-in-transaction timeout"));

    let Some(pg) = PgServer::start() else { return };
    let pg_end = idle_in_block(&pg.conn_string(), short, Duration::from_millis(900)).await;
    assert_eq!(pg_end, weft_end, "PostgreSQL ends the session the same way");
    let pg_kept = idle_in_block(&pg.conn_string(), short, Duration::from_millis(50)).await;
    assert_eq!(pg_kept, None);
}

/// `--connection-age-max-s`: a connection past its age ends with FATAL 57P01, but only
/// between transactions: a transaction still open at the limit runs to its COMMIT, which
/// lands, and the connection ends after it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_end_at_their_age_between_transactions() {
    let dir = tempfile::tempdir().unwrap();
    let weft = Server::start_with(&dir.path().join("data"), &["--connection-age-max-s", "2"]);
    let (c, conn) = tokio_postgres::connect(&weft.conn_string(), tokio_postgres::NoTls)
        .await
        .unwrap();
    let ended = tokio::spawn(conn);
    c.batch_execute("CREATE TABLE t (x int); BEGIN; INSERT INTO t VALUES (0)")
        .await
        .unwrap();
    // Statements keep the block busy past the limit (3 s > 2 s); every one is answered.
    let started = tokio::time::Instant::now();
    let mut written = 1;
    while started.elapsed() < Duration::from_secs(3) {
        c.execute("INSERT INTO t VALUES ($1)", &[&written])
            .await
            .unwrap();
        written += 1;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    c.batch_execute("COMMIT").await.unwrap();
    // Out of the block and past its age: the connection ends.
    let end = tokio::time::timeout(Duration::from_secs(10), ended)
        .await
        .expect("the connection ends once its transaction has")
        .unwrap();
    let code = end
        .err()
        .and_then(|e| e.code().map(|c| c.code().to_string()));
    assert_eq!(code.as_deref(), Some("57P01"));
    assert!(c.is_closed());
    // What it committed is there, and a new connection is served.
    let d = weft.connect().await;
    let n: i64 = d
        .query_one("SELECT count(*) FROM t", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(n, written as i64);
}
