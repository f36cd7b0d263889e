//! Advisory locks between sessions, on weft and on PostgreSQL 15 in the same run: a
//! held lock makes another session's try fail and its lock wait until it is released (at
//! unlock, at the end of the holding transaction, or when the holder disconnects), and
//! `lock_timeout` ends a wait with 55P03.

use std::sync::Arc;

use tokio_postgres::{Client, NoTls, SimpleQueryMessage};
use weft_tests::{PgServer, Server};

async fn connect(conn: &str) -> Client {
    let (client, c) = tokio_postgres::connect(conn, NoTls).await.expect("connect");
    tokio::spawn(async move {
        let _ = c.await;
    });
    client
}

async fn value(c: &Client, sql: &str) -> Result<String, String> {
    match c.simple_query(sql).await {
        Ok(msgs) => Ok(msgs
            .into_iter()
            .find_map(|m| match m {
                SimpleQueryMessage::Row(r) => Some(r.get(0).unwrap_or("NULL").to_string()),
                _ => None,
            })
            .unwrap_or_default()),
        Err(e) => Err(e.code().map(|c| c.code().to_string()).unwrap_or_default()),
    }
}

/// Runs the scenario; every assertion holds on both systems.
async fn scenario(conn: &str) {
    let a = connect(conn).await;
    let b = Arc::new(connect(conn).await);
    assert_eq!(
        value(&a, "SELECT pg_try_advisory_lock(42)").await,
        Ok("t".into())
    );
    assert_eq!(
        value(&b, "SELECT pg_try_advisory_lock(42)").await,
        Ok("f".into())
    );
    assert_eq!(
        value(&b, "SELECT pg_try_advisory_lock_shared(42)").await,
        Ok("f".into())
    );
    // A wait ends at lock_timeout.
    b.batch_execute("SET lock_timeout = '200ms'").await.unwrap();
    assert_eq!(
        value(&b, "SELECT pg_advisory_lock(42)").await,
        Err("55P03".into())
    );
    b.batch_execute("SET lock_timeout = 0").await.unwrap();
    // A wait ends when the holder unlocks.
    let b2 = b.clone();
    let waiter = tokio::spawn(async move { value(&b2, "SELECT pg_advisory_lock(42)").await });
    assert_eq!(
        value(&a, "SELECT pg_advisory_unlock(42)").await,
        Ok("t".into())
    );
    assert_eq!(waiter.await.unwrap(), Ok(String::new()));
    assert_eq!(
        value(&a, "SELECT pg_try_advisory_lock(42)").await,
        Ok("f".into())
    );
    assert_eq!(
        value(&b, "SELECT pg_advisory_unlock(42)").await,
        Ok("t".into())
    );
    // A transaction-level lock is held until the transaction ends.
    a.batch_execute("BEGIN").await.unwrap();
    assert_eq!(
        value(&a, "SELECT pg_advisory_xact_lock(7)").await,
        Ok(String::new())
    );
    assert_eq!(
        value(&b, "SELECT pg_try_advisory_lock(7)").await,
        Ok("f".into())
    );
    let b2 = b.clone();
    let waiter = tokio::spawn(async move { value(&b2, "SELECT pg_advisory_xact_lock(7)").await });
    a.batch_execute("COMMIT").await.unwrap();
    assert_eq!(waiter.await.unwrap(), Ok(String::new()));
    // ... and b's (autocommit) transaction-level lock ended with its statement.
    assert_eq!(
        value(&a, "SELECT pg_try_advisory_lock(7)").await,
        Ok("t".into())
    );
    // A session's locks end with it.
    drop(a);
    let mut tries = 0;
    loop {
        // The server notices the disconnect asynchronously; poll until it has.
        if value(&b, "SELECT pg_try_advisory_lock(7)").await == Ok("t".into()) {
            break;
        }
        tries += 1;
        assert!(tries < 200, "the lock outlived its session");
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn advisory_locks_between_sessions_on_weft() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("data"));
    scenario(&server.conn_string()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn advisory_locks_between_sessions_on_postgres() {
    let Some(pg) = PgServer::start() else { return };
    scenario(&pg.conn_string()).await;
}
