//! Durability: kill -9 in the middle of a write load, restart, and check that every
//! acknowledged transaction survived whole and no unacknowledged one survived in part.
#![allow(clippy::disallowed_methods)] // test harness deadlines are real time

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use weft_tests::Server;

#[derive(Default, Clone)]
struct Ledger {
    attempted: BTreeSet<i64>,
    acked: BTreeSet<i64>,
}

/// Runs writers until `deadline`; each transaction writes one row to each of two tables in
/// separate statements, so a half-applied transaction would show up as a row in only one.
async fn load(
    server: &Server,
    first_id: i64,
    writers: i64,
    ledger: Arc<Mutex<Ledger>>,
    stop_after: Duration,
) {
    let mut tasks = Vec::new();
    for w in 0..writers {
        let c = server.connect().await;
        let ledger = ledger.clone();
        tasks.push(tokio::spawn(async move {
            let deadline = Instant::now() + stop_after;
            let mut id = first_id + w;
            while Instant::now() < deadline {
                ledger.lock().unwrap().attempted.insert(id);
                let r = async {
                    c.batch_execute("BEGIN").await?;
                    c.execute("INSERT INTO a VALUES ($1, $2)", &[&id, &(id * 10)])
                        .await?;
                    c.execute("INSERT INTO b VALUES ($1, $2)", &[&id, &(id * 10)])
                        .await?;
                    c.batch_execute("COMMIT").await
                }
                .await;
                match r {
                    Ok(()) => {
                        ledger.lock().unwrap().acked.insert(id);
                    }
                    Err(_) => return, // the server is gone
                }
                id += writers;
            }
        }));
    }
    for t in tasks {
        let _ = t.await;
    }
}

async fn check(server: &Server, ledger: &Ledger) -> usize {
    let c = server.connect().await;
    let ids = |table: &'static str| {
        let c = &c;
        async move {
            c.query(&format!("SELECT id, v FROM {table}"), &[])
                .await
                .unwrap()
                .iter()
                .map(|r| {
                    let id: i64 = r.get(0);
                    let v: i64 = r.get(1);
                    assert_eq!(v, id * 10, "row {id} of {table} has the wrong value");
                    id
                })
                .collect::<BTreeSet<i64>>()
        }
    };
    let a = ids("a").await;
    let b = ids("b").await;
    assert_eq!(a, b, "a transaction survived in part");
    for id in &ledger.acked {
        assert!(a.contains(id), "acknowledged transaction {id} was lost");
    }
    for id in &a {
        assert!(ledger.attempted.contains(id), "row {id} was never written");
    }
    a.len()
}

async fn crash_cycle(extra: &[&str]) {
    crash_cycle_env(extra, Vec::new()).await
}

async fn crash_cycle_env(extra: &[&str], env: Vec<(String, String)>) {
    let dir = tempfile::tempdir().unwrap();
    let mut server = Server::start_env(&dir.path().join("data"), extra, env);
    {
        let c = server.connect().await;
        c.batch_execute("CREATE TABLE a (id bigint PRIMARY KEY, v bigint); CREATE TABLE b (id bigint PRIMARY KEY, v bigint)")
            .await
            .unwrap();
    }
    let ledger = Arc::new(Mutex::new(Ledger::default()));
    for round in 0..3i64 {
        // Kill while the writers are mid-flight.
        let killer = {
            let pid = server.child.as_ref().unwrap().id();
            tokio::spawn(async move {
                tokio::time::sleep(Duration::from_millis(700)).await;
                let _ = std::process::Command::new("kill")
                    .arg("-9")
                    .arg(pid.to_string())
                    .status();
            })
        };
        load(
            &server,
            round * 1_000_000,
            6,
            ledger.clone(),
            Duration::from_secs(5),
        )
        .await;
        killer.await.unwrap();
        server.restart();
        let snapshot = ledger.lock().unwrap().clone();
        let rows = check(&server, &snapshot).await;
        let acked = ledger.lock().unwrap().acked.len();
        eprintln!("round {round}: {acked} acknowledged, {rows} rows after restart");
        assert!(acked > 0, "the load committed nothing before the kill");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill9_during_writes_loses_no_acknowledged_commit() {
    crash_cycle(&[]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill9_while_flushing_segments() {
    // Tiny flush threshold: segments and manifests are written throughout the load, so the
    // kill lands around flushes too; recovery must combine segments and journal replay.
    crash_cycle(&["--flush-bytes-min", "2048"]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill9_while_compacting() {
    // Flush often and compact whenever a table has two segments: compactions (merge,
    // segment write, manifest, deletion of the inputs) run throughout the load.
    crash_cycle(&["--flush-bytes-min", "2048", "--compact-segments-max", "1"]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill9_during_writes_on_s3() {
    // The same crash cycles with journals, segments and manifests on a real S3-compatible
    // server (s3s-fs), flushing often so that segment and manifest writes are in flight too.
    let Some(s3) = weft_tests::s3::S3Server::start() else {
        return;
    };
    let url = s3.url("crash");
    crash_cycle_env(&["--store", &url, "--flush-bytes-min", "4096"], s3.env()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clean_restart_keeps_data_and_schema() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = Server::start(&dir.path().join("data"));
    {
        let c = server.connect().await;
        c.batch_execute("CREATE TABLE k (id int PRIMARY KEY, s text); INSERT INTO k VALUES (1, 'one'), (2, 'two')")
            .await
            .unwrap();
        c.batch_execute("UPDATE k SET s = 'uno' WHERE id = 1; DELETE FROM k WHERE id = 2")
            .await
            .unwrap();
    }
    let status = server.stop();
    assert!(status.success(), "clean shutdown: {status}");
    assert!(
        server.log_text().contains("storage: flushed"),
        "{}",
        server.log_text()
    );
    server.restart();
    let c = server.connect().await;
    let rows: Vec<(i32, String)> = c
        .query("SELECT id, s FROM k ORDER BY id", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    assert_eq!(rows, vec![(1, "uno".to_string())]);
    assert!(
        server.log_text().contains("replayed_commits=0"),
        "after a clean shutdown nothing is replayed: {}",
        server.log_text()
    );
    // And it keeps accepting writes after the restart.
    c.execute("INSERT INTO k VALUES (3, 'three')", &[])
        .await
        .unwrap();
}
