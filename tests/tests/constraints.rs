//! Unique constraints under concurrency, on weft and on PostgreSQL 15 in the same run, at
//! REPEATABLE READ and SERIALIZABLE.
//!
//! Two transactions insert the same value into a UNIQUE column. PostgreSQL makes the
//! second insert wait for the first transaction and then fails it (23505, or 40001 at
//! SERIALIZABLE); weft never waits: both inserts succeed in their snapshots, the index
//! entry they both write is a write-write conflict, and the second COMMIT fails with
//! 40001. On both systems exactly one row holds the value afterwards.

use tokio_postgres::{Client, NoTls, SimpleQueryMessage};
use weft_tests::{PgServer, Server};

async fn connect(conn: &str) -> Client {
    let (client, c) = tokio_postgres::connect(conn, NoTls).await.expect("connect");
    tokio::spawn(async move {
        let _ = c.await;
    });
    client
}

/// `Ok` or the SQLSTATE of the error.
fn outcome<T>(r: Result<T, tokio_postgres::Error>) -> Result<(), String> {
    r.map(|_| ()).map_err(|e| {
        e.code()
            .map(|c| c.code().to_string())
            .unwrap_or_else(|| format!("no sqlstate: {e}"))
    })
}

/// What the second transaction saw: its INSERT, then its COMMIT.
#[derive(Debug)]
struct Race {
    insert: Result<(), String>,
    commit: Result<(), String>,
    holders: Vec<String>,
}

async fn race(conn: &str, level: &str, table: &str) -> Race {
    let setup = connect(conn).await;
    setup
        .batch_execute(&format!(
            "CREATE TABLE {table} (id int PRIMARY KEY, email text UNIQUE)"
        ))
        .await
        .expect("create");
    let a = connect(conn).await;
    let b = std::sync::Arc::new(connect(conn).await);
    a.batch_execute(&format!("BEGIN ISOLATION LEVEL {level}"))
        .await
        .unwrap();
    b.batch_execute(&format!("BEGIN ISOLATION LEVEL {level}"))
        .await
        .unwrap();
    // Both take their snapshots before either writes.
    a.simple_query(&format!("SELECT count(*) FROM {table}"))
        .await
        .unwrap();
    b.simple_query(&format!("SELECT count(*) FROM {table}"))
        .await
        .unwrap();
    a.batch_execute(&format!("INSERT INTO {table} VALUES (1, 'x')"))
        .await
        .unwrap();
    // On PostgreSQL this waits for the first transaction; it is collected after it ends.
    let b2 = b.clone();
    let sql = format!("INSERT INTO {table} VALUES (2, 'x')");
    let pending = tokio::spawn(async move { outcome(b2.batch_execute(&sql).await) });
    outcome(a.batch_execute("COMMIT").await).expect("the first transaction commits");
    let insert = pending.await.unwrap();
    let commit = outcome(b.batch_execute("COMMIT").await);
    let holders = setup
        .simple_query(&format!(
            "SELECT id FROM {table} WHERE email = 'x' ORDER BY id"
        ))
        .await
        .unwrap()
        .into_iter()
        .filter_map(|m| match m {
            SimpleQueryMessage::Row(r) => r.get(0).map(str::to_string),
            _ => None,
        })
        .collect();
    Race {
        insert,
        commit,
        holders,
    }
}

async fn races(conn: &str) -> Vec<(&'static str, Race)> {
    let mut out = Vec::new();
    for (n, level) in ["REPEATABLE READ", "SERIALIZABLE"].into_iter().enumerate() {
        out.push((level, race(conn, level, &format!("race{n}")).await));
    }
    out
}

/// Exactly one holder of the value, and the loser failed either at its INSERT or at its
/// COMMIT with a unique violation or a serialization failure.
fn check_one_winner(system: &str, level: &str, r: &Race) {
    assert_eq!(r.holders, vec!["1".to_string()], "{system} {level}: {r:?}");
    let lost = match (&r.insert, &r.commit) {
        (Err(code), _) => code == "23505" || code == "40001",
        (Ok(()), Err(code)) => code == "40001",
        (Ok(()), Ok(())) => false,
    };
    assert!(lost, "{system} {level}: the second transaction did not lose: {r:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_inserts_of_one_unique_value_let_one_commit_on_weft() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("data"));
    for (level, r) in races(&server.conn_string()).await {
        check_one_winner("weft", level, &r);
        // weft never waits: the loser learns at COMMIT.
        assert_eq!(r.insert, Ok(()), "weft {level}: {r:?}");
        assert_eq!(r.commit, Err("40001".to_string()), "weft {level}: {r:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_inserts_of_one_unique_value_let_one_commit_on_postgres() {
    let Some(pg) = PgServer::start() else { return };
    for (level, r) in races(&pg.conn_string()).await {
        check_one_winner("PostgreSQL 15", level, &r);
        println!("PostgreSQL 15 {level}: insert {:?}, commit {:?}", r.insert, r.commit);
    }
}
