//! The bank: concurrent clients move money between accounts, retrying on 40001, at both
//! isolation levels, while the server is killed with SIGKILL and restarted. The total never
//! changes, no acknowledged transfer is lost, and the balances agree exactly with the
//! transfers that survived.

use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use weft_tests::{sqlstate, Server};

const ACCOUNTS: i32 = 8;
const START: i64 = 1_000;

#[derive(Default)]
struct Books {
    acked: BTreeSet<String>,
    retries: usize,
    unknown: usize,
}

async fn connect(conn: &Arc<Mutex<String>>) -> Option<tokio_postgres::Client> {
    let s = conn.lock().unwrap().clone();
    let (client, c) = tokio_postgres::connect(&s, tokio_postgres::NoTls)
        .await
        .ok()?;
    tokio::spawn(async move {
        let _ = c.await;
    });
    Some(client)
}

/// One transfer: read the source balance, move `amount` if it is there, log it.
async fn transfer(
    c: &tokio_postgres::Client,
    level: &str,
    id: &str,
    src: i32,
    dst: i32,
    amount: i64,
) -> Result<bool, tokio_postgres::Error> {
    c.batch_execute(&format!("BEGIN ISOLATION LEVEL {level}"))
        .await?;
    let bal: i64 = c
        .query_one("SELECT bal FROM acct WHERE id = $1", &[&src])
        .await?
        .get(0);
    if bal < amount {
        c.batch_execute("ROLLBACK").await?;
        return Ok(false);
    }
    c.execute(
        "UPDATE acct SET bal = bal - $2 WHERE id = $1",
        &[&src, &amount],
    )
    .await?;
    c.execute(
        "UPDATE acct SET bal = bal + $2 WHERE id = $1",
        &[&dst, &amount],
    )
    .await?;
    c.execute(
        "INSERT INTO transfers (id, src, dst, amount) VALUES ($1, $2, $3, $4)",
        &[&id, &src, &dst, &amount],
    )
    .await?;
    c.batch_execute("COMMIT").await?;
    Ok(true)
}

async fn client(
    n: usize,
    conn: Arc<Mutex<String>>,
    stop: Arc<AtomicBool>,
    books: Arc<Mutex<Books>>,
) {
    let level = if n.is_multiple_of(2) {
        "REPEATABLE READ"
    } else {
        "SERIALIZABLE"
    };
    let mut rng = StdRng::seed_from_u64(n as u64);
    let mut seq = 0;
    let mut c = None;
    while !stop.load(Ordering::Relaxed) {
        let Some(cl) = c.as_ref() else {
            c = connect(&conn).await;
            if c.is_none() {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            continue;
        };
        let src = rng.random_range(0..ACCOUNTS);
        let dst = (src + rng.random_range(1..ACCOUNTS)) % ACCOUNTS;
        let amount = rng.random_range(1..=300);
        seq += 1;
        let id = format!("{n}-{seq}");
        // Retry the same transfer on 40001 until it commits or the server goes away.
        loop {
            match transfer(cl, level, &id, src, dst, amount).await {
                Ok(true) => {
                    books.lock().unwrap().acked.insert(id.clone());
                    break;
                }
                Ok(false) => break,
                Err(e) if e.code().is_some() => {
                    assert_eq!(sqlstate(&e), "40001", "transfer {id}: {e:?}");
                    books.lock().unwrap().retries += 1;
                    let _ = cl.batch_execute("ROLLBACK").await;
                }
                Err(_) => {
                    // The connection died: the transfer may or may not have committed.
                    books.lock().unwrap().unknown += 1;
                    c = None;
                    break;
                }
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transfers_keep_the_total_through_kills() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = Server::start(&dir.path().join("data"));
    let setup = server.connect().await;
    setup
        .batch_execute(
            "CREATE TABLE acct (id int PRIMARY KEY, bal bigint NOT NULL); \
             CREATE TABLE transfers (id text PRIMARY KEY, src int NOT NULL, \
                                     dst int NOT NULL, amount bigint NOT NULL)",
        )
        .await
        .unwrap();
    for id in 0..ACCOUNTS {
        setup
            .execute("INSERT INTO acct VALUES ($1, $2)", &[&id, &START])
            .await
            .unwrap();
    }
    drop(setup);

    let conn = Arc::new(Mutex::new(server.conn_string()));
    let stop = Arc::new(AtomicBool::new(false));
    let books = Arc::new(Mutex::new(Books::default()));
    let tasks: Vec<_> = (0..6)
        .map(|n| tokio::spawn(client(n, conn.clone(), stop.clone(), books.clone())))
        .collect();
    for _ in 0..3 {
        tokio::time::sleep(Duration::from_millis(1500)).await;
        server.restart(); // SIGKILL, then start again on the same data
        *conn.lock().unwrap() = server.conn_string();
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    stop.store(true, Ordering::Relaxed);
    for t in tasks {
        t.await.unwrap();
    }

    let c = server.connect().await;
    let balances: HashMap<i32, i64> = c
        .query("SELECT id, bal FROM acct", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    let total: i64 = balances.values().sum();
    assert_eq!(balances.len(), ACCOUNTS as usize);
    assert_eq!(total, START * ACCOUNTS as i64, "money was created or lost");
    assert!(balances.values().all(|b| *b >= 0), "{balances:?}");

    let mut expected: HashMap<i32, i64> = (0..ACCOUNTS).map(|i| (i, START)).collect();
    let mut logged = BTreeSet::new();
    for r in c
        .query("SELECT id, src, dst, amount FROM transfers", &[])
        .await
        .unwrap()
    {
        let (id, src, dst, amount): (String, i32, i32, i64) =
            (r.get(0), r.get(1), r.get(2), r.get(3));
        *expected.get_mut(&src).unwrap() -= amount;
        *expected.get_mut(&dst).unwrap() += amount;
        logged.insert(id);
    }
    assert_eq!(
        balances, expected,
        "balances disagree with the surviving transfers"
    );
    let books = books.lock().unwrap();
    let lost: Vec<_> = books.acked.difference(&logged).collect();
    assert!(lost.is_empty(), "acknowledged transfers lost: {lost:?}");
    assert!(books.acked.len() > 20, "too few transfers to say anything");
    eprintln!(
        "{} transfers acknowledged, {} survived, {} retries on 40001, {} cut by a kill",
        books.acked.len(),
        logged.len(),
        books.retries,
        books.unknown
    );
}
