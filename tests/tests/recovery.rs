//! Recovery in seconds: after 10 s of writes at full speed and `kill -9`, a restarted weft
//! accepts connections and answers a read within 5 s, on local disk and on S3 (s3s-fs).
//! The flush cadence (`--replay-batches-max`) bounds the journal a restart replays, and
//! replay fetches many objects at once (`--replay-gets-max`). The figures are printed for
//! docs/benchmarks.md. The two runs take turns, so that neither measures the other's load.
#![allow(clippy::disallowed_methods)] // test harness deadlines are real time

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use weft_tests::Server;

static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// The recovery goal.
const RECOVERY_MAX: Duration = Duration::from_secs(5);

async fn restart_after_full_speed_writes(what: &str, args: &[&str], env: Vec<(String, String)>) {
    let _turn = ONE_AT_A_TIME.lock().await;
    let dir = tempfile::tempdir().unwrap();
    let mut server = Server::start_env(&dir.path().join("data"), args, env);
    server
        .connect()
        .await
        .batch_execute("CREATE TABLE t (id bigint PRIMARY KEY, v text)")
        .await
        .unwrap();
    let acked = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut writers = Vec::new();
    for w in 0..8i64 {
        let c = server.connect().await;
        let acked = acked.clone();
        writers.push(tokio::spawn(async move {
            let mut id = w;
            while Instant::now() < deadline {
                c.execute("INSERT INTO t VALUES ($1, 'payload')", &[&id])
                    .await
                    .unwrap();
                acked.fetch_add(1, Ordering::SeqCst);
                id += 8;
            }
        }));
    }
    for w in writers {
        w.await.unwrap();
    }
    let acked = acked.load(Ordering::SeqCst);
    server.kill9();
    let started = Instant::now();
    tokio::task::block_in_place(|| server.restart());
    let c = server.connect().await;
    let rows: i64 = c
        .query_one("SELECT count(*) FROM t", &[])
        .await
        .unwrap()
        .get(0);
    let took = started.elapsed();
    let log = server.log_text();
    let recovered = log
        .lines()
        .rfind(|l| l.contains("storage: recovered"))
        .unwrap_or_default()
        .to_string();
    eprintln!("{what}: {acked} commits in 10 s; restart to first read {took:?}; {recovered}");
    assert_eq!(rows as u64, acked, "every acknowledged row is back");
    assert!(
        took < RECOVERY_MAX,
        "{what}: a restart took {took:?} to answer a read:\n{log}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_on_local_disk_answers_within_seconds() {
    restart_after_full_speed_writes("local disk", &[], Vec::new()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_on_s3_answers_within_seconds() {
    let Some(s3) = weft_tests::s3::S3Server::start() else {
        return;
    };
    let url = s3.url("recovery");
    restart_after_full_speed_writes("s3", &["--store", &url], s3.env()).await;
}
