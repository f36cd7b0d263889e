//! The file layout on a real local directory: batches appended to preallocated log files
//! with one fdatasync each, rotation, recovery, tailing, takeover (sealing and fencing,
//! including the race of a takeover against a writer in full flow), interrupted writes,
//! damage, and retention.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use weft_engine::objstore::DurableStore;
use weft_journal::format::{encode_object, Header, FORMAT_VERSION};
use weft_journal::logfile::{entry_name, scan_log, seal_name, Tail};
use weft_journal::logwriter::LogAppender;
use weft_journal::reader::{read_for_recovery, read_journal, Tailer};
use weft_journal::writer::{Layout, WriterConfig};
use weft_journal::JournalError;

mod common;
use common::*;

fn files(file_bytes: u64) -> WriterConfig {
    WriterConfig {
        layout: Layout::Files { file_bytes },
        ..WriterConfig::default()
    }
}

fn journal_dir(root: &Path, cluster: &str) -> PathBuf {
    root.join(format!("clusters/{cluster}/journal/0000"))
}

/// The names in a journal's directory with this suffix, sorted.
fn names(dir: &Path, suffix: &str) -> Vec<String> {
    let mut out: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
        .filter(|n| n.ends_with(suffix))
        .collect();
    out.sort();
    out
}

/// The entries of a journal's directory that are log files (preallocated), sorted.
fn logs(dir: &Path) -> Vec<String> {
    names(dir, ".wj")
        .into_iter()
        .filter(|n| std::fs::metadata(dir.join(n)).unwrap().len() >= 4096)
        .collect()
}

fn local() -> (tempfile::TempDir, DurableStore) {
    let dir = tempfile::tempdir().unwrap();
    let store = DurableStore::local(dir.path().join("d")).unwrap();
    (dir, store)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batches_append_to_log_files_that_rotate_and_read_back() {
    let (dir, store) = local();
    let j = open(&store, "log", files(4096)).await;
    for n in 0..40 {
        commit(&j, n).await.unwrap();
    }
    assert_eq!(
        journal_values(&store, "log").await,
        (0..40).collect::<Vec<_>>()
    );
    let jdir = journal_dir(&dir.path().join("d"), "log");
    let log_files = logs(&jdir);
    assert!(log_files.len() >= 3, "4 KiB files rotate: {log_files:?}");
    let all = names(&jdir, ".wj");
    assert_eq!(
        all.len(),
        log_files.len() + 1,
        "everything but the epoch claim is a preallocated log file: {all:?}"
    );
    assert_eq!(all[0], "00000000000000000000.wj");
    // Recovery past a checkpoint skips the files before it.
    let objects = read_journal(&store, "log", 0).await.unwrap();
    let checkpoint = objects[30].header.last_ts;
    let rec = read_for_recovery(&store, "log", checkpoint, 4)
        .await
        .unwrap();
    assert!(
        rec[0].skipped >= 1,
        "whole files below the checkpoint skipped"
    );
    let values: Vec<i64> = rec[0]
        .objects
        .iter()
        .flat_map(|o| o.records.iter().map(|r| value(r)))
        .collect();
    assert_eq!(values.last(), Some(&39));
    assert!(values.contains(&30) && values.len() < 40, "{values:?}");
    // A tailer follows the frames, across rotations, and then new ones.
    let mut t = Tailer::new(store.clone(), "log", 0, 1, None);
    let mut seen = Vec::new();
    while let Some(o) = t.next().await.unwrap() {
        seen.extend(o.records.iter().map(|r| value(r)));
    }
    assert_eq!(seen, (0..40).collect::<Vec<_>>());
    commit(&j, 40).await.unwrap();
    let o = t.next().await.unwrap().expect("the new frame");
    assert_eq!(value(&o.records[0]), 40);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_writer_seals_and_fences_the_first() {
    let (_dir, store) = local();
    let a = open(&store, "fence", files(1 << 20)).await;
    commit(&a, 1).await.unwrap();
    commit(&a, 2).await.unwrap();
    let b = open(&store, "fence", files(1 << 20)).await;
    let err = commit(&a, 3).await.unwrap_err();
    assert!(
        matches!(err, JournalError::Fenced { by_epoch: 2, .. }),
        "the old writer appended after being sealed: {err}"
    );
    assert!(!a.healthy.load(Ordering::SeqCst));
    assert!(commit(&a, 5).await.is_err(), "a fenced writer stays fenced");
    commit(&b, 4).await.unwrap();
    assert_eq!(journal_values(&store, "fence").await, vec![1, 2, 4]);
    let epochs: Vec<u64> = read_journal(&store, "fence", 0)
        .await
        .unwrap()
        .iter()
        .map(|o| o.header.epoch)
        .collect();
    assert_eq!(epochs, vec![1, 1, 1, 2, 2], "claim, A's two, claim, B's");
}

/// A takeover in the middle of a writer's full flow of commits: every commit the old writer
/// acknowledged is in the journal the new one continues, and none it refused is.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_takeover_in_full_flow_keeps_every_acknowledged_commit() {
    for round in 0..8 {
        let (_dir, store) = local();
        let cluster = "flow";
        let a = Arc::new(drained(open(&store, cluster, files(8192)).await));
        let flow = {
            let a = a.clone();
            tokio::spawn(async move {
                let (mut acked, mut refused) = (Vec::new(), Vec::new());
                let mut n = 0i64;
                loop {
                    let waits: Vec<_> = (0..4).map(|i| (n + i, submit(&a, n + i))).collect();
                    n += 4;
                    let mut stop = false;
                    for (v, w) in waits {
                        match w.await.unwrap() {
                            Ok(()) => acked.push(v),
                            Err(JournalError::Fenced { .. }) => {
                                refused.push(v);
                                stop = true;
                            }
                            Err(_) => stop = true, // unknown: either way is right
                        }
                    }
                    if stop || n > 100_000 {
                        return (acked, refused);
                    }
                }
            })
        };
        tokio::time::sleep(Duration::from_millis(10 + 7 * round)).await;
        let b = drained(open(&store, cluster, files(8192)).await);
        let (acked, refused) = flow.await.unwrap();
        commit(&b, -1).await.unwrap();
        let values: Vec<i64> = journal_values(&store, cluster).await;
        let present: HashSet<i64> = values.iter().copied().collect();
        assert_eq!(present.len(), values.len(), "round {round}: a value twice");
        for v in &acked {
            assert!(present.contains(v), "round {round}: acknowledged {v} lost");
        }
        for v in &refused {
            assert!(!present.contains(v), "round {round}: refused {v} is there");
        }
        assert_eq!(values.last(), Some(&-1));
        assert!(!acked.is_empty(), "round {round}: the flow committed");
    }
}

/// The journal with its durable events consumed, as the crossbar would, so that a long
/// flow of commits never waits for room in the events queue.
fn drained(mut j: Journal) -> Journal {
    let mut events = std::mem::replace(&mut j.events, tokio::sync::mpsc::channel(1).1);
    tokio::spawn(async move { while events.recv().await.is_some() {} });
    j
}

fn frame(journal_id: u32, epoch: u64, sequence: u64, ts: u64) -> Vec<u8> {
    encode_object(
        &Header {
            format_version: FORMAT_VERSION,
            journal_id,
            epoch,
            sequence,
            first_ts: ts,
            last_ts: ts,
            record_count: 0,
        },
        &[],
    )
}

/// A writer that finds its file sealed after its frame became durable lets the claim that
/// follows decide: past its frame, the frame counts; at it, the frame does not; and no
/// claim within the resolve timeout is an unknown outcome. The same holds when retention
/// has already deleted the sealed file and then its seal: the claimer read the frame
/// before retention could run, so a claim past it still means it counts.
#[test]
fn a_sealed_frame_is_decided_by_the_claim() {
    for deleted in [false, true] {
        for (claim_at, expect) in [(4u64, "ok"), (3, "fenced"), (0, "unknown")] {
            let dir = tempfile::tempdir().unwrap();
            let d = dir.path().to_path_buf();
            let mut app = LogAppender::new(d.clone(), 0, 4096, Duration::from_millis(300));
            app.append(1, &frame(0, 1, 1, 10)).unwrap();
            app.append(2, &frame(0, 1, 2, 11)).unwrap();
            std::fs::write(d.join(seal_name(1)), b"").unwrap();
            if deleted {
                // Retention: the log file first, then its seal.
                std::fs::remove_file(d.join(entry_name(1))).unwrap();
                std::fs::remove_file(d.join(seal_name(1))).unwrap();
            }
            let claimer = (claim_at > 0).then(|| {
                let d = d.clone();
                std::thread::spawn(move || {
                    std::thread::sleep(Duration::from_millis(30));
                    std::fs::write(
                        d.join(format!("{claim_at:020}.wj")),
                        frame(0, 2, claim_at, 12),
                    )
                    .unwrap();
                })
            });
            let got = app.append(3, &frame(0, 1, 3, 12));
            let case = format!("claim at {claim_at}, file deleted: {deleted}");
            match (expect, &got) {
                ("ok", Ok(())) => {}
                ("fenced", Err(JournalError::Fenced { by_epoch: 2, .. })) => {}
                ("unknown", Err(JournalError::Unknown { .. })) => {}
                _ => panic!("{case}: {got:?}"),
            }
            assert!(
                app.append(4, &frame(0, 1, 4, 13)).is_err(),
                "{case}: a sealed writer appends nothing more"
            );
            if let Some(c) = claimer {
                c.join().unwrap();
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_interrupted_write_ends_the_file_and_damage_is_named() {
    let (dir, store) = local();
    let a = open(&store, "torn", files(1 << 16)).await;
    for n in 1..=3 {
        commit(&a, n).await.unwrap();
    }
    drop(a);
    let jdir = journal_dir(&dir.path().join("d"), "torn");
    let log = jdir.join(&logs(&jdir)[0]);
    let mut bytes = std::fs::read(&log).unwrap();
    let scan = scan_log("l", 0, 1, &bytes, None).unwrap();
    assert_eq!(scan.frames.len(), 3);
    // Half of a fourth frame, as a crash in the middle of its write leaves it.
    let fourth = std::fs::read(&log).unwrap()[scan.frames[2].offset..scan.end].to_vec();
    bytes[scan.end..scan.end + fourth.len() / 2].copy_from_slice(&fourth[..fourth.len() / 2]);
    std::fs::write(&log, &bytes).unwrap();
    assert!(matches!(
        scan_log("l", 0, 1, &bytes, None).unwrap().tail,
        Tail::Interrupted { .. }
    ));
    assert_eq!(journal_values(&store, "torn").await, vec![1, 2, 3]);
    let b = open(&store, "torn", files(1 << 16)).await;
    commit(&b, 4).await.unwrap();
    assert_eq!(journal_values(&store, "torn").await, vec![1, 2, 3, 4]);
    drop(b);
    // A flipped byte inside the first frame, with frames after it: an error naming it.
    let mut bytes = std::fs::read(&log).unwrap();
    bytes[scan.frames[0].offset + 70] ^= 0x55;
    std::fs::write(&log, &bytes).unwrap();
    let err = read_journal(&store, "torn", 0)
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains(&entry_name(1)) && err.contains("does not verify"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retention_deletes_passed_log_files_and_keeps_the_fences() {
    let (dir, store) = local();
    let a = open(&store, "ret", files(4096)).await;
    for n in 0..40 {
        commit(&a, n).await.unwrap();
    }
    let jdir = journal_dir(&dir.path().join("d"), "ret");
    let before = logs(&jdir).len();
    let objects = read_journal(&store, "ret", 0).await.unwrap();
    let checkpoint = objects[25].header.last_ts;
    let deleted = weft_journal::retention::prune(&store, "ret", checkpoint)
        .await
        .unwrap();
    assert!(deleted >= 1, "files below the checkpoint go");
    let left = read_journal(&store, "ret", 0).await.unwrap();
    assert!(left[0].header.is_epoch_claim(), "the claim stays");
    let values: Vec<i64> = left
        .iter()
        .flat_map(|o| o.records.iter().map(|r| value(r)))
        .collect();
    assert!(
        values.contains(&25) && values.ends_with(&[39]),
        "{values:?}"
    );
    assert!(logs(&jdir).len() < before);
    // A second writer takes over; the first, paused meanwhile, wakes after retention
    // deleted everything it may: it is fenced and acknowledges nothing.
    let b = open(&store, "ret", files(4096)).await;
    commit(&b, 100).await.unwrap();
    weft_journal::retention::prune(&store, "ret", u64::MAX)
        .await
        .unwrap();
    assert!(
        names(&jdir, ".wj.sealed").iter().all(|s| {
            let entry = jdir.join(s.trim_end_matches(".sealed"));
            std::fs::metadata(entry).is_ok_and(|m| m.len() < 4096)
        }),
        "seals go with their log files (a claim's seal stays with the claim)"
    );
    let err = commit(&a, 41).await.unwrap_err();
    assert!(
        matches!(err, JournalError::Fenced { by_epoch: 2, .. }),
        "{err}"
    );
    drop(b);
    let c = open(&store, "ret", files(4096)).await;
    commit(&c, 200).await.unwrap();
    assert_eq!(journal_values(&store, "ret").await, vec![100, 200]);
}
