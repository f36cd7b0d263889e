//! The journal writer against real stores (a local directory, and a real S3-compatible
//! server when s3s-fs is installed) and under injected faults: fencing, ambiguous PUTs,
//! outages, tailing, retention.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use weft_engine::faults::Faults;
use weft_engine::objstore::DurableStore;
use weft_engine::SystemClock;
use weft_journal::reader::{read_journal, Tailer};
use weft_journal::writer::{self, claim, WriterConfig};
use weft_journal::{JournalError, Sequencer};
use weft_tests::s3::S3Server;

mod common;
use common::*;

/// A store per backend: a temporary directory, and the S3 server when available.
struct Stores {
    _dir: tempfile::TempDir,
    _s3: Option<S3Server>,
    list: Vec<(&'static str, DurableStore)>,
}

fn stores() -> Stores {
    let dir = tempfile::tempdir().unwrap();
    let mut list = vec![("local", DurableStore::local(dir.path().join("d")).unwrap())];
    let s3 = S3Server::start();
    if let Some(s3) = &s3 {
        let store = object_store::aws::AmazonS3Builder::new()
            .with_endpoint(s3.endpoint())
            .with_allow_http(true)
            .with_region("us-east-1")
            .with_bucket_name(weft_tests::s3::BUCKET)
            .with_access_key_id(&s3.env()[1].1)
            .with_secret_access_key(&s3.env()[2].1)
            .build()
            .unwrap();
        list.push(("s3", DurableStore::remote(Arc::new(store), s3.url(""))));
    }
    Stores {
        _dir: dir,
        _s3: s3,
        list,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_writer_fences_the_first() {
    for (name, store) in stores().list {
        let a = open(&store, "fence", WriterConfig::default()).await;
        commit(&a, 1).await.unwrap();
        // A restarted process (or a split brain) takes the journal over.
        let b = open(&store, "fence", WriterConfig::default()).await;
        let err = commit(&a, 2).await.unwrap_err();
        assert!(
            matches!(err, JournalError::Fenced { .. }),
            "{name}: the old writer appended after being fenced: {err}"
        );
        assert!(!a.healthy.load(Ordering::SeqCst));
        assert!(
            commit(&a, 3).await.is_err(),
            "{name}: a fenced writer stays fenced"
        );
        commit(&b, 4).await.unwrap();
        assert_eq!(journal_values(&store, "fence").await, vec![1, 4], "{name}");
        let objects = read_journal(&store, "fence", 0).await.unwrap();
        let epochs: Vec<u64> = objects.iter().map(|o| o.header.epoch).collect();
        assert_eq!(
            epochs,
            vec![1, 1, 2, 2],
            "{name}: claim, A's object, claim, B's object"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn faults_never_lose_or_duplicate_an_acknowledged_commit() {
    for (name, base) in stores().list {
        let faults =
            Faults::parse("put_error=150,lost_ack=150,get_error=100,list_error=50,seed=11")
                .unwrap();
        let store = base.clone().with_faults(faults.clone()).unwrap();
        let mut j = open(&base, "faults", WriterConfig::default()).await;
        // The writer goes through the faulty store from here on.
        drop(j.tx);
        let (start, _) = claim(
            &base,
            "faults",
            0,
            read_journal(&base, "faults", 0)
                .await
                .unwrap()
                .last()
                .map(|o| o.header.clone()),
            0,
        )
        .await
        .unwrap();
        j.tx = writer::spawn(
            store.clone(),
            "faults".into(),
            start,
            j.sequencer.clone(),
            WriterConfig::default(),
            j.healthy.clone(),
        );
        let j = Arc::new(j);
        let mut tasks = Vec::new();
        for t in 0..8i64 {
            let j = j.clone();
            tasks.push(tokio::spawn(async move {
                let mut acked = Vec::new();
                for i in 0..25i64 {
                    let n = t * 1000 + i;
                    match submit(&j, n).await.unwrap() {
                        Ok(()) => acked.push(n),
                        Err(e) => panic!("a commit failed although the store recovers: {e}"),
                    }
                }
                acked
            }));
        }
        let mut acked = Vec::new();
        for t in tasks {
            acked.extend(t.await.unwrap());
        }
        assert!(
            faults.injected.load(Ordering::Relaxed) > 10,
            "{name}: too few faults were injected to prove anything"
        );
        let mut j = Arc::into_inner(j).unwrap();
        drop(j.tx);
        // What the crossbar was handed: exactly the journal's contents, each once.
        let mut delivered = Vec::new();
        while let Ok(ev) = j.events.try_recv() {
            delivered.extend(ev.records.iter().map(|r| value(r)));
        }
        let stored = journal_values(&base, "faults").await;
        let mut counts: HashMap<i64, usize> = HashMap::new();
        for v in &stored {
            *counts.entry(*v).or_default() += 1;
        }
        assert!(
            counts.values().all(|&c| c == 1),
            "{name}: a commit is stored twice"
        );
        for n in &acked {
            assert_eq!(
                counts.get(n),
                Some(&1),
                "{name}: acknowledged commit {n} lost"
            );
        }
        assert_eq!(
            delivered, stored,
            "{name}: delivered records differ from the journal"
        );
        assert_eq!(acked.len(), 200);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_outage_is_an_unknown_outcome_then_resolved() {
    for (name, base) in stores().list {
        let faults = Faults::new(1);
        let store = base.clone().with_faults(faults.clone()).unwrap();
        let (start, _) = claim(&base, "outage", 0, None, 0).await.unwrap();
        let (etx, mut erx) = weft_journal::events_channel();
        let sequencer = Arc::new(Sequencer::new(1, 0, Arc::new(SystemClock::new(0)), etx));
        let healthy = Arc::new(AtomicBool::new(true));
        let j = Journal {
            tx: writer::spawn(
                store,
                "outage".into(),
                start,
                sequencer.clone(),
                WriterConfig {
                    resolve_timeout: Duration::from_millis(300),
                    ..Default::default()
                },
                healthy.clone(),
            ),
            sequencer,
            events: weft_journal::events_channel().1,
            healthy,
        };
        faults.down.store(true, Ordering::SeqCst);
        let err = commit(&j, 42).await.unwrap_err();
        assert!(matches!(err, JournalError::Unknown { .. }), "{name}: {err}");
        // A commit that reaches the journal meanwhile is refused for certain, not held.
        let err = tokio::time::timeout(Duration::from_secs(5), commit(&j, 41))
            .await
            .expect("not left waiting out the outage")
            .unwrap_err();
        assert!(matches!(err, JournalError::Unavailable(_)), "{name}: {err}");
        assert!(
            !j.healthy.load(Ordering::SeqCst),
            "{name}: takes no commits meanwhile"
        );
        // Nothing is delivered while the outcome is undecided...
        tokio::time::sleep(Duration::from_millis(200)).await;
        while let Ok(ev) = erx.try_recv() {
            assert!(
                ev.records.is_empty(),
                "{name}: delivered an undecided commit"
            );
        }
        // ... and once the store is back the writer finishes the job, exactly once.
        faults.down.store(false, Ordering::SeqCst);
        let ev = tokio::time::timeout(Duration::from_secs(10), async {
            loop {
                let ev = erx.recv().await.unwrap();
                if !ev.records.is_empty() {
                    return ev;
                }
            }
        })
        .await
        .expect("resolved after the outage");
        assert_eq!(value(&ev.records[0]), 42);
        assert!(j.healthy.load(Ordering::SeqCst), "{name}: healthy again");
        commit(&j, 43).await.unwrap();
        assert_eq!(
            journal_values(&base, "outage").await,
            vec![42, 43],
            "{name}"
        );
    }
}

#[tokio::test]
async fn the_probe_refuses_a_store_that_ignores_conditional_puts() {
    for (name, base) in stores().list {
        let prefix = object_store::path::Path::from("probe");
        assert!(
            base.honours_conditional_puts(&prefix).await.unwrap(),
            "{name}"
        );
        let faults = Faults::parse("ignore_conditional_puts").unwrap();
        let lax = base.with_faults(faults).unwrap();
        assert!(
            !lax.honours_conditional_puts(&prefix).await.unwrap(),
            "{name}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tailers_read_from_any_sequence_and_report_holes() {
    for (name, store) in stores().list {
        let j = open(&store, "tail", WriterConfig::default()).await;
        for n in 0..5 {
            commit(&j, n).await.unwrap(); // objects 1..=5 (0 is the epoch claim)
        }
        let mut t = Tailer::new(store.clone(), "tail", 0, 3, None);
        let mut seen = Vec::new();
        while let Some(o) = t.next().await.unwrap() {
            seen.extend(o.records.iter().map(|r| value(r)));
        }
        assert_eq!(seen, vec![2, 3, 4], "{name}");
        assert!(t.next().await.unwrap().is_none(), "{name}: nothing new yet");
        commit(&j, 5).await.unwrap();
        let o = t.next().await.unwrap().expect("the new object");
        assert_eq!(value(&o.records[0]), 5, "{name}");
        // A hole: object 7 missing while 8 exists.
        commit(&j, 6).await.unwrap();
        commit(&j, 7).await.unwrap();
        store
            .delete(&weft_journal::object_path("tail", 0, 7))
            .await
            .unwrap();
        let err = t.next().await.unwrap_err().to_string();
        assert!(
            err.contains("00000000000000000007.wj") && err.contains("missing"),
            "{name}: {err}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retention_deletes_only_what_checkpoints_passed() {
    for (name, store) in stores().list {
        let j = open(&store, "ret", WriterConfig::default()).await;
        for n in 0..6 {
            commit(&j, n).await.unwrap();
        }
        let objects = read_journal(&store, "ret", 0).await.unwrap();
        // Covers objects 0..=3, and retention can tell: object 4 starts above it (an
        // entry's last timestamp is bounded by the next entry's first).
        let checkpoint = objects[4].header.first_ts - 1;
        let deleted = weft_journal::retention::prune(&store, "ret", checkpoint)
            .await
            .unwrap();
        // Object 0 is the writer's epoch claim: kept (a fence), the three after it go.
        assert_eq!(deleted, 3, "{name}");
        let left = read_journal(&store, "ret", 0).await.unwrap();
        let sequences: Vec<u64> = left.iter().map(|o| o.header.sequence).collect();
        assert_eq!(
            sequences,
            vec![0, 4, 5, 6],
            "{name}: the claim, then a contiguous suffix"
        );
        assert!(left[1..].iter().all(|o| o.header.last_ts > checkpoint));
        // Past everything: the claim and the newest object stay, for the next writer.
        weft_journal::retention::prune(&store, "ret", u64::MAX)
            .await
            .unwrap();
        let left = read_journal(&store, "ret", 0).await.unwrap();
        assert_eq!(left.len(), 2, "{name}");
        drop(j);
        let j2 = open(&store, "ret", WriterConfig::default()).await;
        commit(&j2, 99).await.unwrap();
        assert_eq!(journal_values(&store, "ret").await, vec![5, 99], "{name}");
    }
}

/// A writer paused across a takeover (SIGSTOP, a stalled disk, a PUT stuck in the network)
/// resumes with its next put aimed at the sequence the new writer's epoch claim took. The
/// claim must still be there however much retention has deleted since, or the paused
/// writer's put lands and it acknowledges a commit that no recovery replays.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retention_keeps_the_fence_of_a_paused_writer() {
    for (name, store) in stores().list {
        let a = open(&store, "paused", WriterConfig::default()).await;
        commit(&a, 1).await.unwrap();
        let b = open(&store, "paused", WriterConfig::default()).await;
        for n in 10..15 {
            commit(&b, n).await.unwrap();
        }
        // Everything is checkpointed: retention deletes all it may.
        let deleted = weft_journal::retention::prune(&store, "paused", u64::MAX)
            .await
            .unwrap();
        assert!(deleted >= 5, "{name}: retention deleted {deleted}");
        let err = commit(&a, 2).await.unwrap_err();
        assert!(
            matches!(err, JournalError::Fenced { by_epoch: 2, .. }),
            "{name}: the paused writer appended after retention: {err}"
        );
        // What remains reads back, gaps after the kept claims included, and a third writer
        // continues after it.
        let left = read_journal(&store, "paused", 0).await.unwrap();
        assert!(left
            .iter()
            .all(|o| o.records.is_empty() || o.header.epoch == 2));
        drop(b);
        let c = open(&store, "paused", WriterConfig::default()).await;
        commit(&c, 20).await.unwrap();
        assert_eq!(
            journal_values(&store, "paused").await,
            vec![14, 20],
            "{name}"
        );
    }
}

/// The writer's queue is bounded (`WriterConfig::queue_max`): while the store does not
/// answer, commits past the bound wait for room (nothing is queued without limit), and all
/// of them commit once the store is back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_writer_queue_holds_commits_back_until_the_store_answers() {
    use weft_journal::adjudicator::JournalHandle;
    use weft_journal::{Adjudicator, AdjudicatorConfig, CommitRequest};
    let dir = tempfile::tempdir().unwrap();
    let base = DurableStore::local(dir.path().join("d")).unwrap();
    let faults = Faults::new(1);
    let store = base.clone().with_faults(faults.clone()).unwrap();
    let (start, _) = claim(&base, "full", 0, None, 0).await.unwrap();
    let (etx, mut erx) = weft_journal::events_channel();
    tokio::spawn(async move { while erx.recv().await.is_some() {} });
    let clock = Arc::new(SystemClock::new(0));
    let sequencer = Arc::new(Sequencer::new(1, 0, clock.clone(), etx));
    let healthy = Arc::new(AtomicBool::new(true));
    let tx = writer::spawn(
        store,
        "full".into(),
        start,
        sequencer.clone(),
        WriterConfig {
            queue_max: 2,
            batch_records_max: 1,
            resolve_timeout: Duration::from_secs(600),
            ..Default::default()
        },
        healthy.clone(),
    );
    let adjudicator = Arc::new(Adjudicator::new(
        sequencer,
        vec![JournalHandle {
            tx: tx.clone(),
            healthy,
        }],
        clock,
        AdjudicatorConfig::default(),
    ));
    faults.down.store(true, Ordering::SeqCst);
    let mut commits = Vec::new();
    for n in 0..6i64 {
        let a = adjudicator.clone();
        let rec = record(n);
        commits.push(tokio::spawn(async move {
            a.commit(CommitRequest {
                start_ts: 1,
                tables: rec.tables,
                ..Default::default()
            })
            .await
        }));
    }
    // One commit is being written (and retried), two fill the queue, three wait for room.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while tx.capacity() > 0 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(tx.capacity(), 0, "the queue fills up to its bound");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        commits.iter().all(|c| !c.is_finished()),
        "no commit is answered while the store is down"
    );
    faults.down.store(false, Ordering::SeqCst);
    for c in commits {
        let r = tokio::time::timeout(Duration::from_secs(30), c)
            .await
            .expect("every commit is answered once the store is back")
            .unwrap();
        assert!(r.is_ok(), "{r:?}");
    }
}
