//! Failover without loss: a second `weft serve` takes over the store of a running one.
//!
//! Process A serves and takes writes; process B starts on the same store while A runs
//! (or while A is frozen with SIGSTOP, so that it cannot notice); writes go on through
//! both; A is then killed (SIGKILL), resumed (SIGCONT), or stopped (SIGTERM, delivered as
//! it resumes, so that its shutdown flush races B); B is killed; process C recovers the
//! store. Every row
//! whose COMMIT returned, through A or B, must be there, and none whose COMMIT failed for
//! certain. A reader on A must never see a value that B had already replaced, and A must
//! stop serving, and exit, within its stated bound.
#![allow(clippy::disallowed_methods)] // test harness deadlines are real time

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use weft_tests::Server;

#[derive(Default, Clone, Debug)]
struct Ledger {
    acked: BTreeSet<i64>,
    /// Failed with an error the server sent (other than "outcome unknown"): not committed.
    failed: BTreeSet<i64>,
    /// No answer (the connection broke) or 08007: either way.
    unknown: BTreeSet<i64>,
}

/// Inserts rows `first, first + step, ...` through `server` until `stop` is set or the
/// connection ends, recording each outcome.
async fn writer(
    server_conn: String,
    first: i64,
    step: i64,
    stop: Arc<AtomicBool>,
    ledger: Arc<Mutex<Ledger>>,
) {
    let Ok((c, conn)) = tokio_postgres::connect(&server_conn, tokio_postgres::NoTls).await else {
        return;
    };
    tokio::spawn(async move {
        let _ = conn.await;
    });
    let mut id = first;
    while !stop.load(Ordering::SeqCst) {
        let r = c
            .execute("INSERT INTO t VALUES ($1, $2)", &[&id, &(id * 7)])
            .await;
        let mut l = ledger.lock().unwrap();
        match r {
            Ok(_) => {
                l.acked.insert(id);
            }
            Err(e) => match e.code().map(|c| c.code().to_string()) {
                Some(code) if code != "08007" => {
                    eprintln!("row {id}: COMMIT failed with {code}: {e}");
                    l.failed.insert(id);
                    if c.is_closed() {
                        return;
                    }
                }
                _ => {
                    l.unknown.insert(id);
                    return;
                }
            },
        }
        drop(l);
        id += step;
    }
}

/// What a reader on the old owner saw: (when the read was sent, the value it returned).
type Reads = Arc<Mutex<Vec<(Instant, i64)>>>;

/// Reads the counter row through `conn` until an error, recording what each read returned.
async fn reader(conn_str: String, reads: Reads) -> Option<String> {
    let (c, conn) = tokio_postgres::connect(&conn_str, tokio_postgres::NoTls)
        .await
        .ok()?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    loop {
        let sent = Instant::now();
        match c.query_one("SELECT v FROM counter WHERE id = 0", &[]).await {
            Ok(row) => reads.lock().unwrap().push((sent, row.get(0))),
            Err(e) => {
                return Some(
                    e.code()
                        .map(|c| c.code().to_string())
                        .unwrap_or_else(|| format!("connection ended: {e}")),
                )
            }
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum EndOfA {
    Term,
    Kill,
    Freeze,
}

async fn failover(store: &[&str], env: Vec<(String, String)>, end: EndOfA) {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let start = |name: &str| {
        Server::start_logged(
            &data,
            &dir.path().join(format!("{name}.log")),
            store,
            env.clone(),
        )
    };
    let mut a = start("a");
    {
        let c = a.connect().await;
        c.batch_execute(
            "CREATE TABLE t (id bigint PRIMARY KEY, v bigint);
             CREATE TABLE counter (id int PRIMARY KEY, v bigint);
             INSERT INTO counter VALUES (0, 0)",
        )
        .await
        .unwrap();
    }
    let ledger = Arc::new(Mutex::new(Ledger::default()));
    let stop_a = Arc::new(AtomicBool::new(false));
    let mut tasks = Vec::new();
    for w in 0..2 {
        tasks.push(tokio::spawn(writer(
            a.conn_string(),
            w,
            4,
            stop_a.clone(),
            ledger.clone(),
        )));
    }
    // A reader on A from before the takeover until A refuses it.
    let reads: Reads = Default::default();
    let reader_a = tokio::spawn(reader(a.conn_string(), reads.clone()));
    wait_for_acks(&ledger, 20).await;

    if end != EndOfA::Kill {
        // Frozen while B takes over: A cannot notice, so when it resumes it must find out
        // from its lapsed lease (Freeze), or with a SIGTERM already pending (Term), from its
        // own shutdown flush, which must not land.
        a.signal("STOP");
    }
    // B takes over while A runs (or is frozen).
    let b = tokio::task::spawn_blocking({
        let data = data.clone();
        let log = dir.path().join("b.log");
        let store: Vec<String> = store.iter().map(|s| s.to_string()).collect();
        let env = env.clone();
        move || {
            let args: Vec<&str> = store.iter().map(|s| s.as_str()).collect();
            Server::start_logged(&data, &log, &args, env)
        }
    })
    .await
    .unwrap();
    let b_log = b.log_text();
    assert!(b_log.contains("ownership: claimed the store"), "{b_log}");
    let stop_b = Arc::new(AtomicBool::new(false));
    for w in 2..4 {
        tasks.push(tokio::spawn(writer(
            b.conn_string(),
            w,
            4,
            stop_b.clone(),
            ledger.clone(),
        )));
    }
    // B replaces the counter's value, recording when each new value was acknowledged.
    let mut acks: Vec<(Instant, i64)> = Vec::new();
    {
        let c = b.connect().await;
        for v in 1..=20i64 {
            c.execute("UPDATE counter SET v = $1 WHERE id = 0", &[&v])
                .await
                .unwrap();
            acks.push((Instant::now(), v));
        }
    }
    let resumed = Instant::now();
    match end {
        EndOfA::Freeze => a.signal("CONT"),
        EndOfA::Term => {
            a.signal("TERM");
            a.signal("CONT");
        }
        EndOfA::Kill => a.kill9(),
    }
    // A stops serving within its bound: its reader gets an error, and the process exits
    // non-zero (a fenced process exits with 75; a SIGTERM after the fence is noticed too).
    let err = tokio::time::timeout(Duration::from_secs(10), reader_a)
        .await
        .expect("the reader on A was never refused")
        .unwrap();
    if end != EndOfA::Kill {
        let status = tokio::task::spawn_blocking(move || {
            let s = a.wait_exit(Duration::from_secs(10));
            (s, a)
        })
        .await
        .unwrap();
        let (status, a) = status;
        let status = status.unwrap_or_else(|| panic!("A did not exit:\n{}", a.log_text()));
        let waited = resumed.elapsed();
        eprintln!("A ended with {status} {waited:?} after {end:?}; its reader saw {err:?}");
        assert!(
            !status.success(),
            "A must not report success once fenced: {status}"
        );
        assert!(
            waited < Duration::from_secs(5),
            "A took {waited:?} to stop after {end:?}:\n{}",
            a.log_text()
        );
        let log = a.log_text();
        for line in log
            .lines()
            .filter(|l| l.contains("fenced") || l.contains("flush") || l.contains("shutting down"))
        {
            eprintln!("  A: {line}");
        }
        assert!(log.contains("fenced"), "A never said it was fenced:\n{log}");
        assert!(
            !log.contains("storage: flushed"),
            "A's shutdown flush landed:\n{log}"
        );
    }
    // Never a stale read: a read sent after B acknowledged value w returns at least w.
    for (sent, got) in reads.lock().unwrap().iter() {
        let latest = acks
            .iter()
            .filter(|(at, _)| at < sent)
            .map(|(_, v)| *v)
            .max()
            .unwrap_or(0);
        assert!(
            *got >= latest,
            "a read on A sent after B acknowledged {latest} returned {got}"
        );
    }

    // More writes through B, then B dies without a chance to flush.
    let so_far = ledger.lock().unwrap().acked.len();
    wait_for_acks(&ledger, so_far + 20).await;
    stop_a.store(true, Ordering::SeqCst);
    let mut b = b;
    b.kill9();
    stop_b.store(true, Ordering::SeqCst);
    for t in tasks {
        let _ = t.await;
    }

    // C recovers: every acknowledged row, nothing that failed for certain.
    let c_server = start("c");
    let c = c_server.connect().await;
    let rows: BTreeSet<i64> = c
        .query("SELECT id, v FROM t", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| {
            let id: i64 = r.get(0);
            assert_eq!(r.get::<_, i64>(1), id * 7);
            id
        })
        .collect();
    let l = ledger.lock().unwrap().clone();
    eprintln!(
        "{end:?}: {} acknowledged, {} failed, {} unknown, {} rows recovered",
        l.acked.len(),
        l.failed.len(),
        l.unknown.len(),
        rows.len()
    );
    let lost: Vec<_> = l.acked.difference(&rows).collect();
    let ghosts: Vec<_> = l.failed.intersection(&rows).collect();
    if !lost.is_empty() || !ghosts.is_empty() {
        // What each process said, for the post-mortem.
        for name in ["a", "b", "c"] {
            let log =
                std::fs::read_to_string(dir.path().join(format!("{name}.log"))).unwrap_or_default();
            for line in log
                .lines()
                .filter(|l| !l.contains("DEBUG") && !l.contains("connection"))
            {
                eprintln!("  {name}: {line}");
            }
        }
        if !store.contains(&"--store") {
            let out = std::process::Command::new(weft_tests::weft_bin())
                .args(["inspect", "journal"])
                .arg(&data)
                .arg("--records")
                .output()
                .unwrap();
            eprintln!("{}", String::from_utf8_lossy(&out.stdout));
        }
    }
    if !lost.is_empty() || !ghosts.is_empty() {
        // Keep the store for the post-mortem.
        let kept = dir.keep();
        panic!(
            "acknowledged rows lost: {lost:?}; rows whose COMMIT failed are present: \
             {ghosts:?} (store kept in {})",
            kept.display()
        );
    }
    let counter: i64 = c
        .query_one("SELECT v FROM counter WHERE id = 0", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(counter, 20);
    // Through A and through B: both wrote.
    assert!(l.acked.iter().any(|id| id % 4 < 2) && l.acked.iter().any(|id| id % 4 >= 2));
    drop(c);
    inspect_chain(&data, store, &env);
}

/// `weft inspect manifest --verify` accepts the owner chain the three processes left.
fn inspect_chain(data: &Path, store: &[&str], env: &[(String, String)]) {
    let target = store
        .iter()
        .position(|a| *a == "--store")
        .map(|i| store[i + 1].to_string())
        .unwrap_or_else(|| data.display().to_string());
    let out = std::process::Command::new(weft_tests::weft_bin())
        .args(["inspect", "manifest", &target, "--verify"])
        .envs(env.iter().map(|(k, v)| (k, v)))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "inspect manifest --verify: {text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("owner epochs claimed: 1, 2, 3"), "{text}");
}

async fn wait_for_acks(ledger: &Arc<Mutex<Ledger>>, n: usize) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while ledger.lock().unwrap().acked.len() < n {
        assert!(Instant::now() < deadline, "writes stalled");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failover_with_sigterm_loses_nothing() {
    failover(&["--flush-bytes-min", "4096"], Vec::new(), EndOfA::Term).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failover_with_kill9_loses_nothing() {
    failover(&["--flush-bytes-min", "4096"], Vec::new(), EndOfA::Kill).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_frozen_owner_stops_serving_when_resumed() {
    failover(&["--flush-bytes-min", "4096"], Vec::new(), EndOfA::Freeze).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failover_on_s3_loses_nothing() {
    let Some(s3) = weft_tests::s3::S3Server::start() else {
        return;
    };
    for (i, end) in [EndOfA::Term, EndOfA::Kill, EndOfA::Freeze]
        .into_iter()
        .enumerate()
    {
        let url = s3.url(&format!("failover{i}"));
        failover(
            &["--store", &url, "--flush-bytes-min", "4096"],
            s3.env(),
            end,
        )
        .await;
    }
}
