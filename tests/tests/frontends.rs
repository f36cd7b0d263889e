//! Frontends in processes of their own: `weft frontend` processes over the storage and
//! adjudicator of a `weft serve --rpc-listen`, all accepting reads and writes at once.
//!
//! - One database: a table made through one frontend is read, changed and altered
//!   through the others; a COMMIT that returned on one frontend is seen by a read that
//!   starts next on another (linearizable reads across processes), every time.
//! - Conflicts across frontends: two transactions on two frontends that write one row;
//!   the second to commit gets 40001, and a serializable write skew across two
//!   frontends is refused.
//! - Writers on every frontend while one frontend is killed with SIGKILL: every row whose
//!   COMMIT returned is there, and the money a bank moves adds up.
//! - The storage process killed: a frontend answers errors (never rows) until it is back,
//!   then answers with everything acknowledged before.
//! - A frontend cut off from storage by a network partition (a fault-injecting proxy that
//!   holds every byte) answers errors, never the stale rows it read before; healed, it
//!   answers with what was committed meanwhile.
//! - A frontend's metrics endpoint counts its own statements and sessions.
#![allow(clippy::disallowed_methods)] // test harness deadlines are real time

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use weft_tests::{free_port, sqlstate, Server};

struct Cluster {
    storage: Server,
    rpc: String,
    frontends: Vec<Server>,
}

fn cluster(dir: &Path, frontends: usize) -> Cluster {
    let rpc = format!("127.0.0.1:{}", free_port());
    let storage = Server::start_logged(
        &dir.join("data"),
        &dir.join("storage.log"),
        &["--rpc-listen", &rpc],
        Vec::new(),
    );
    let frontends = (0..frontends)
        .map(|i| Server::start_frontend(&rpc, &dir.join(format!("frontend{i}.log")), &[]))
        .collect();
    Cluster {
        storage,
        rpc,
        frontends,
    }
}

async fn rows(c: &tokio_postgres::Client, sql: &str) -> Vec<Vec<Option<String>>> {
    weft_tests::simple_rows(c, sql).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn frontends_share_one_database() {
    let dir = tempfile::tempdir().unwrap();
    let cl = cluster(dir.path(), 2);
    let own = cl.storage.connect().await;
    let f1 = cl.frontends[0].connect().await;
    let f2 = cl.frontends[1].connect().await;

    f1.batch_execute("CREATE TABLE t (id int PRIMARY KEY, v text, n numeric(10,2))")
        .await
        .unwrap();
    f2.batch_execute("INSERT INTO t SELECT g, 'v' || g, g * 1.5 FROM generate_series(1, 3000) g")
        .await
        .unwrap();
    // The same answers from every process, for point reads, ranges, scans and joins.
    for sql in [
        "SELECT count(*), sum(id), sum(n) FROM t",
        "SELECT v, n FROM t WHERE id = 1234",
        "SELECT id FROM t WHERE id BETWEEN 10 AND 14 ORDER BY id",
        "SELECT a.id, b.v FROM t a JOIN t b ON b.id = a.id + 1 WHERE a.id % 1000 = 0 ORDER BY 1",
        "SELECT relname FROM pg_class WHERE relname = 't'",
        "SELECT pg_total_relation_size('t')",
    ] {
        let here = rows(&own, sql).await;
        assert!(!here.is_empty(), "{sql}: no rows");
        assert_eq!(rows(&f1, sql).await, here, "{sql} on frontend 1");
        assert_eq!(rows(&f2, sql).await, here, "{sql} on frontend 2");
    }

    // A COMMIT returned on one process; the next read, on another, sees it: every time.
    let clients = [&own, &f1, &f2];
    for i in 0..150i32 {
        let w = clients[i as usize % 3];
        let r = clients[(i as usize + 1) % 3];
        w.execute("UPDATE t SET v = $1 WHERE id = 1", &[&format!("round {i}")])
            .await
            .unwrap();
        let seen: String = r
            .query_one("SELECT v FROM t WHERE id = 1", &[])
            .await
            .unwrap()
            .get(0);
        assert_eq!(
            seen,
            format!("round {i}"),
            "a read after a COMMIT on another frontend"
        );
        let count: i64 = r
            .query_one("SELECT count(*) FROM t WHERE id > 3000", &[])
            .await
            .unwrap()
            .get(0);
        assert_eq!(count, i as i64, "rows inserted through other frontends");
        r.execute("INSERT INTO t VALUES ($1, 'new', 0)", &[&(3001 + i)])
            .await
            .unwrap();
    }

    // DDL through one frontend reaches the others' catalogs.
    f2.batch_execute("ALTER TABLE t ADD COLUMN extra int DEFAULT 7")
        .await
        .unwrap();
    assert_eq!(
        rows(&f1, "SELECT extra FROM t WHERE id = 5").await,
        vec![vec![Some("7".to_string())]]
    );
    f1.batch_execute("CREATE INDEX t_v ON t (v)").await.unwrap();
    assert_eq!(
        rows(&own, "SELECT id FROM t WHERE v = 'v42'").await,
        vec![vec![Some("42".to_string())]]
    );

    // Sequences hand out distinct values through every frontend.
    own.batch_execute("CREATE TABLE s (id serial PRIMARY KEY, at text)")
        .await
        .unwrap();
    for c in clients {
        for _ in 0..20 {
            c.execute("INSERT INTO s (at) VALUES ('x')", &[])
                .await
                .unwrap();
        }
    }
    assert_eq!(
        rows(&f2, "SELECT count(*), count(DISTINCT id) FROM s").await,
        vec![vec![Some("60".to_string()), Some("60".to_string())]]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conflicts_span_frontends() {
    let dir = tempfile::tempdir().unwrap();
    let cl = cluster(dir.path(), 2);
    let f1 = cl.frontends[0].connect().await;
    let f2 = cl.frontends[1].connect().await;
    f1.batch_execute(
        "CREATE TABLE acct (id int PRIMARY KEY, bal int); INSERT INTO acct VALUES (1, 100), (2, 100)",
    )
    .await
    .unwrap();

    // Two writers of one row, on two frontends: the second to commit gets 40001.
    f1.batch_execute("BEGIN; UPDATE acct SET bal = bal - 10 WHERE id = 1")
        .await
        .unwrap();
    f2.batch_execute("BEGIN; UPDATE acct SET bal = bal - 20 WHERE id = 1")
        .await
        .unwrap();
    f1.batch_execute("COMMIT").await.unwrap();
    let e = f2.batch_execute("COMMIT").await.unwrap_err();
    assert_eq!(sqlstate(&e), "40001", "{e}");
    assert_eq!(
        rows(&f2, "SELECT bal FROM acct WHERE id = 1").await,
        vec![vec![Some("90".to_string())]]
    );

    // Write skew at SERIALIZABLE, across frontends: one of the two must fail.
    for c in [&f1, &f2] {
        c.batch_execute("BEGIN ISOLATION LEVEL SERIALIZABLE")
            .await
            .unwrap();
        let total: i64 = c
            .query_one("SELECT sum(bal) FROM acct", &[])
            .await
            .unwrap()
            .get(0);
        assert_eq!(total, 190);
    }
    f1.batch_execute("UPDATE acct SET bal = bal - 150 WHERE id = 1")
        .await
        .unwrap();
    f2.batch_execute("UPDATE acct SET bal = bal - 150 WHERE id = 2")
        .await
        .unwrap();
    f1.batch_execute("COMMIT").await.unwrap();
    let e = f2.batch_execute("COMMIT").await.unwrap_err();
    assert_eq!(sqlstate(&e), "40001", "{e}");
}

#[derive(Default)]
struct Ledger {
    acked: BTreeSet<i64>,
    /// No answer, or 08007: either outcome.
    unknown: BTreeSet<i64>,
}

/// Inserts `first, first + step, ...` through `conn` until `stop`, recording outcomes;
/// ends when the connection does.
async fn writer(
    conn: String,
    first: i64,
    step: i64,
    stop: Arc<AtomicBool>,
    ledger: Arc<Mutex<Ledger>>,
) {
    let Ok((c, connection)) = tokio_postgres::connect(&conn, tokio_postgres::NoTls).await else {
        return;
    };
    tokio::spawn(async move {
        let _ = connection.await;
    });
    let mut id = first;
    while !stop.load(Ordering::SeqCst) {
        let r = c.execute("INSERT INTO w VALUES ($1)", &[&id]).await;
        match r {
            Ok(_) => {
                ledger.lock().unwrap().acked.insert(id);
            }
            Err(e) => {
                let code = e.code().map(|c| c.code().to_string());
                if code.is_none() || code.as_deref() == Some("08007") {
                    ledger.lock().unwrap().unknown.insert(id);
                }
                if c.is_closed() {
                    return;
                }
            }
        }
        id += step;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_frontend_loses_no_acknowledged_commit() {
    let dir = tempfile::tempdir().unwrap();
    let mut cl = cluster(dir.path(), 2);
    let own = cl.storage.connect().await;
    own.batch_execute("CREATE TABLE w (id bigint PRIMARY KEY)")
        .await
        .unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let ledger = Arc::new(Mutex::new(Ledger::default()));
    let conns = [
        cl.storage.conn_string(),
        cl.frontends[0].conn_string(),
        cl.frontends[1].conn_string(),
    ];
    let mut tasks = Vec::new();
    for (i, conn) in conns.iter().enumerate() {
        for j in 0..2 {
            tasks.push(tokio::spawn(writer(
                conn.clone(),
                (i * 2 + j) as i64,
                6,
                stop.clone(),
                ledger.clone(),
            )));
        }
    }
    // Kill frontend 1 once its writers have committed something.
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        let through_f1 = ledger
            .lock()
            .unwrap()
            .acked
            .iter()
            .filter(|id| (*id % 6) / 2 == 1)
            .count();
        if through_f1 >= 50 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    cl.frontends[0].kill9();
    // The others go on committing.
    let after_kill = ledger.lock().unwrap().acked.len();
    while ledger.lock().unwrap().acked.len() < after_kill + 100 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    stop.store(true, Ordering::SeqCst);
    for t in tasks {
        t.await.unwrap();
    }
    let stored: BTreeSet<i64> = cl.frontends[1]
        .connect()
        .await
        .query("SELECT id FROM w", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    let l = ledger.lock().unwrap();
    assert!(
        l.acked.len() >= after_kill + 100,
        "writers stalled after the kill"
    );
    let lost: Vec<_> = l.acked.difference(&stored).collect();
    assert!(lost.is_empty(), "acknowledged and lost: {lost:?}");
    let phantom: Vec<_> = stored
        .difference(&l.acked)
        .filter(|id| !l.unknown.contains(id))
        .collect();
    assert!(
        phantom.is_empty(),
        "stored but never acknowledged or in doubt: {phantom:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_frontend_without_its_storage_answers_errors_not_rows() {
    let dir = tempfile::tempdir().unwrap();
    let mut cl = cluster(dir.path(), 1);
    let f = cl.frontends[0].connect().await;
    f.batch_execute("CREATE TABLE k (id int PRIMARY KEY, v int); INSERT INTO k VALUES (1, 1)")
        .await
        .unwrap();
    f.execute("UPDATE k SET v = 2 WHERE id = 1", &[])
        .await
        .unwrap();

    cl.storage.kill9();
    let e = f
        .query("SELECT v FROM k WHERE id = 1", &[])
        .await
        .expect_err("a read without storage must fail, not answer");
    assert_eq!(sqlstate(&e), "08006", "{e}");
    let e = f
        .query("SELECT count(*) FROM k", &[])
        .await
        .expect_err("a scan without storage must fail");
    assert_eq!(sqlstate(&e), "08006", "{e}");
    let e = f
        .query("SELECT pg_relation_size('k')", &[])
        .await
        .expect_err("a size without storage must fail, not answer 0");
    assert_eq!(sqlstate(&e), "08006", "{e}");

    // Storage back on the same address: the frontend's session answers again, with
    // every acknowledged commit.
    cl.storage.extra_args = vec!["--rpc-listen".into(), cl.rpc.clone()];
    cl.storage.restart();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        match f.query_one("SELECT v FROM k WHERE id = 1", &[]).await {
            Ok(r) => {
                assert_eq!(r.get::<_, i32>(0), 2);
                break;
            }
            Err(e) => {
                assert_eq!(sqlstate(&e), "08006", "{e}");
                assert!(Instant::now() < deadline, "storage did not come back: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
    f.execute("UPDATE k SET v = 3 WHERE id = 1", &[])
        .await
        .unwrap();
    assert_eq!(
        rows(&cl.storage.connect().await, "SELECT v FROM k").await,
        vec![vec![Some("3".to_string())]]
    );
}

/// The body of `GET /metrics` at `addr`.
fn scrape(addr: &str) -> String {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).expect("metrics endpoint");
    write!(s, "GET /metrics HTTP/1.0\r\nHost: {addr}\r\n\r\n").unwrap();
    let mut text = String::new();
    s.read_to_string(&mut text).unwrap();
    assert!(text.starts_with("HTTP/1.0 200"), "{text}");
    text
}

/// The value of the sample line that starts with `series` (name and labels).
fn sample(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or_else(|| panic!("no {series} in:\n{text}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_frontend_serves_its_own_metrics() {
    let dir = tempfile::tempdir().unwrap();
    let rpc = format!("127.0.0.1:{}", free_port());
    let _storage = Server::start_logged(
        &dir.path().join("data"),
        &dir.path().join("storage.log"),
        &["--rpc-listen", &rpc],
        Vec::new(),
    );
    let metrics = format!("127.0.0.1:{}", free_port());
    let f = Server::start_frontend(
        &rpc,
        &dir.path().join("frontend.log"),
        &["--metrics-listen", &metrics],
    );
    let c = f.connect().await;
    let before = scrape(&metrics);
    assert_eq!(sample(&before, "weft_sessions"), 1.0);
    c.batch_execute("CREATE TABLE m (id int PRIMARY KEY)")
        .await
        .unwrap();
    for i in 0..5 {
        c.execute("INSERT INTO m VALUES ($1)", &[&i]).await.unwrap();
    }
    let e = c.batch_execute("SELECT 1/0").await.unwrap_err();
    assert_eq!(sqlstate(&e), "22012");
    let after = scrape(&metrics);
    let commits = |t: &str| sample(t, "weft_commits_total");
    assert_eq!(
        commits(&after) - commits(&before),
        6.0,
        "CREATE TABLE and five INSERTs"
    );
    let errors = |t: &str| {
        t.lines()
            .find_map(|l| {
                l.strip_prefix("weft_statement_errors_total{sqlstate=\"22012\"} ")?
                    .parse::<f64>()
                    .ok()
            })
            .unwrap_or(0.0)
    };
    assert_eq!(errors(&after) - errors(&before), 1.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partitioned_frontend_answers_errors_never_stale_rows() {
    let dir = tempfile::tempdir().unwrap();
    let rpc = format!("127.0.0.1:{}", free_port());
    let storage = Server::start_logged(
        &dir.path().join("data"),
        &dir.path().join("storage.log"),
        &["--rpc-listen", &rpc],
        Vec::new(),
    );
    let proxy = weft_tests::proxy::Proxy::start(&rpc).await;
    let frontend = Server::start_frontend(&proxy.addr, &dir.path().join("frontend.log"), &[]);
    let own = storage.connect().await;
    let f = frontend.connect().await;
    f.batch_execute("CREATE TABLE p (id int PRIMARY KEY, v int); INSERT INTO p VALUES (1, 1)")
        .await
        .unwrap();
    async fn read(c: &tokio_postgres::Client) -> Result<i32, tokio_postgres::Error> {
        c.query_one("SELECT v FROM p WHERE id = 1", &[])
            .await
            .map(|r| r.get::<_, i32>(0))
    }
    assert_eq!(read(&f).await.unwrap(), 1);

    proxy.cut();
    // Committed on the other side of the partition.
    own.execute("UPDATE p SET v = 2 WHERE id = 1", &[])
        .await
        .unwrap();
    let started = Instant::now();
    let e = read(&f)
        .await
        .expect_err("a partitioned frontend answered a read");
    assert_eq!(sqlstate(&e), "08006", "{e}");
    eprintln!("the partitioned read failed after {:?}", started.elapsed());
    assert!(started.elapsed() < Duration::from_secs(60));

    proxy.heal();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        match read(&f).await {
            Ok(v) => {
                assert_eq!(v, 2, "a stale row after the partition healed");
                break;
            }
            Err(e) => {
                assert_eq!(sqlstate(&e), "08006", "{e}");
                assert!(
                    Instant::now() < deadline,
                    "never answered after healing: {e}"
                );
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}
