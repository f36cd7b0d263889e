//! Model-based test of the storage node: random sequences of puts, deletes, reads at past
//! timestamps, scans, flushes, compactions and restarts, run against a real node on a real
//! directory and checked against a `BTreeMap` of every key's full history. Proptest shrinks
//! a failing sequence to a minimal one.
//!
//! Every open is a new owner (a higher epoch), and a takeover leaves the previous owner
//! running: it goes on applying commits no one acknowledged (its watermark running past
//! the new owner's commits), flushing, compacting and collecting garbage, interleaved at
//! random with the new owner's work. None of it may land, and no acknowledged version may
//! ever be lost: a last takeover must read every key's history as the model holds it.

use std::collections::BTreeMap;
use std::sync::Arc;

use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::physical_plan::ExecutionPlan;
use datafusion::scalar::ScalarValue;
use futures::StreamExt;
use object_store::path::Path;
use proptest::prelude::*;
use weft_engine::objstore::DurableStore;
use weft_engine::storage::scan::{OutColumn, ScanKind, ScanRequest};
use weft_engine::storage::{StorageConfig, StorageNode};
use weft_engine::{CommitRecord, EngineError, TableWrites};

const TABLE: u64 = 100;
const STEP: u64 = 10;

#[derive(Debug, Clone)]
enum Op {
    Put(u8, i64),
    Delete(u8),
    /// Read key `k` as of `back` commits ago.
    Read(u8, u8),
    /// Scan keys `[lo, hi)` as of `back` commits ago.
    Scan(u8, u8, u8),
    Flush,
    /// Compact with the horizon `back` commits ago.
    Compact(u8, bool),
    Restart,
    /// A new owner opens the store while the current one keeps running (stale).
    Takeover,
    /// The stale owner applies a commit nobody acknowledged, far in the future.
    StaleApply(u8, i64),
    StaleFlush,
    StaleCompact(u8, bool),
    StaleGc,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (0u8..12, 0i64..1000).prop_map(|(k, v)| Op::Put(k, v)),
        2 => (0u8..12).prop_map(Op::Delete),
        4 => (0u8..12, 0u8..20).prop_map(|(k, b)| Op::Read(k, b)),
        2 => (0u8..13, 0u8..13, 0u8..20).prop_map(|(l, h, b)| Op::Scan(l, h, b)),
        2 => Just(Op::Flush),
        1 => (0u8..20, any::<bool>()).prop_map(|(b, f)| Op::Compact(b, f)),
        1 => Just(Op::Restart),
        1 => Just(Op::Takeover),
        1 => (0u8..12, 0i64..1000).prop_map(|(k, v)| Op::StaleApply(k, v)),
        1 => Just(Op::StaleFlush),
        1 => (0u8..20, any::<bool>()).prop_map(|(b, f)| Op::StaleCompact(b, f)),
        1 => Just(Op::StaleGc),
    ]
}

fn schema() -> SchemaRef {
    Arc::new(Schema::new(vec![Field::new("v", DataType::Int64, true)]))
}

fn key(k: u8) -> Vec<u8> {
    weft_engine::key::encode_key(&[&ScalarValue::Int64(Some(k as i64))]).unwrap()
}

struct Model {
    /// Every key's history: (ts, value or None for delete), oldest first.
    history: BTreeMap<u8, Vec<(u64, Option<i64>)>>,
    log: Vec<Arc<CommitRecord>>,
    now: u64,
}

impl Model {
    fn at(&self, k: u8, ts: u64) -> Option<i64> {
        self.history
            .get(&k)
            .and_then(|h| h.iter().rev().find(|(t, _)| *t <= ts))
            .and_then(|(_, v)| *v)
    }
}

async fn open(store: &DurableStore) -> Arc<StorageNode> {
    open_at(store, 1).await
}

/// Opens the range as the owner of `epoch`.
async fn open_at(store: &DurableStore, epoch: u64) -> Arc<StorageNode> {
    StorageNode::open(
        store.clone(),
        Path::from("storage/r0"),
        StorageConfig {
            compact_segments_max: 2,
            cache_bytes: 4096,
            ..Default::default()
        },
        weft_engine::ownership::Lease::exclusive(epoch),
    )
    .await
    .unwrap()
}

/// Opens the range as a new owner and replays the acknowledged commits it lacks.
async fn take_over(store: &DurableStore, epoch: u64, m: &Model) -> Arc<StorageNode> {
    let node = open_at(store, epoch).await;
    let checkpoint = node.checkpoint_ts().await;
    let replay: Vec<Arc<CommitRecord>> = m
        .log
        .iter()
        .filter(|r| r.commit_ts > checkpoint)
        .cloned()
        .collect();
    node.apply(&replay, m.now);
    node
}

/// What a stale owner's write may do: nothing (no work), or fail: because it is fenced,
/// or because a segment it meant to read was deleted by the new owner's garbage
/// collection. It must never land.
fn stale_outcome<T: std::fmt::Debug>(
    what: &str,
    r: Result<Option<T>, EngineError>,
) -> Result<(), TestCaseError> {
    match r {
        Ok(None) | Err(_) => Ok(()),
        other => Err(TestCaseError::fail(format!(
            "a fenced owner's {what} must not land: {other:?}"
        ))),
    }
}

/// A plan reading the whole table's values as of `read_ts`.
async fn full_scan(
    node: &Arc<StorageNode>,
    read_ts: u64,
    partitions: usize,
) -> weft_engine::storage::scan::MvccScanExec {
    node.plan_scan(ScanRequest {
        table_id: TABLE,
        table_name: "t".into(),
        read_ts,
        user_schema: schema(),
        kind: ScanKind::Range { lo: None, hi: None },
        columns: vec![OutColumn::User(0)],
        overlay: Vec::new(),
        partitions,
    })
    .await
    .unwrap()
}

fn value(row: &[ScalarValue]) -> i64 {
    match &row[0] {
        ScalarValue::Int64(Some(v)) => *v,
        other => panic!("unexpected value {other:?}"),
    }
}

async fn run(ops: Vec<Op>) -> Result<(), TestCaseError> {
    let dir = tempfile::tempdir().unwrap();
    let store = DurableStore::local(dir.path().to_path_buf()).unwrap();
    let mut node = open(&store).await;
    let mut epoch = 1;
    let mut stale: Option<Arc<StorageNode>> = None;
    let mut junk = 0u64;
    let mut m = Model {
        history: BTreeMap::new(),
        log: Vec::new(),
        now: 0,
    };
    for op in ops {
        match op {
            Op::Put(k, _) | Op::Delete(k) => {
                m.now += STEP;
                let v = match op {
                    Op::Put(_, v) => Some(v),
                    _ => None,
                };
                let rec = Arc::new(CommitRecord {
                    commit_ts: m.now,
                    tables: vec![TableWrites {
                        table_id: TABLE,
                        schema: schema(),
                        keys: vec![key(k)],
                        rows: vec![v.map(|v| Arc::new(vec![ScalarValue::Int64(Some(v))]))],
                    }],
                });
                node.apply(std::slice::from_ref(&rec), m.now);
                m.log.push(rec);
                m.history.entry(k).or_default().push((m.now, v));
            }
            Op::Read(k, back) => {
                let ts = m.now.saturating_sub(back as u64 * STEP);
                let got = node.get(TABLE, &key(k), ts).await;
                if ts < node.horizon_ts() {
                    let refused = matches!(got, Err(EngineError::SnapshotTooOld { .. }));
                    prop_assert!(
                        refused,
                        "read below the horizon must be refused, got {:?}",
                        got
                    );
                    continue;
                }
                let got = got.unwrap().map(|r| value(&r));
                prop_assert_eq!(got, m.at(k, ts), "key {} at {}", k, ts);
            }
            Op::Scan(lo, hi, back) => {
                let ts = m.now.saturating_sub(back as u64 * STEP);
                let plan = node
                    .plan_scan(ScanRequest {
                        table_id: TABLE,
                        table_name: "t".into(),
                        read_ts: ts,
                        user_schema: schema(),
                        kind: ScanKind::Range {
                            lo: Some(key(lo)),
                            hi: Some(key(hi)),
                        },
                        columns: vec![OutColumn::Key, OutColumn::User(0)],
                        overlay: Vec::new(),
                        partitions: 1,
                    })
                    .await;
                if ts < node.horizon_ts() {
                    let refused = matches!(plan, Err(EngineError::SnapshotTooOld { .. }));
                    prop_assert!(refused, "scan below the horizon must be refused");
                    continue;
                }
                let plan = plan.unwrap();
                let ctx = datafusion::prelude::SessionContext::new().task_ctx();
                let mut stream = plan.execute(0, ctx).unwrap();
                let mut got = Vec::new();
                while let Some(b) = stream.next().await {
                    let b = b.unwrap();
                    for i in 0..b.num_rows() {
                        let row = weft_engine::row::batch_row(&b, i, 2).unwrap();
                        let k = match &row[0] {
                            ScalarValue::Binary(Some(k)) => k.clone(),
                            other => panic!("bad key {other:?}"),
                        };
                        got.push((k, value(&row[1..])));
                    }
                }
                let want: Vec<(Vec<u8>, i64)> = (lo..hi)
                    .filter_map(|k| m.at(k, ts).map(|v| (key(k), v)))
                    .collect();
                prop_assert_eq!(got, want, "scan [{}, {}) at {}", lo, hi, ts);
            }
            Op::Flush => {
                node.flush().await.unwrap();
            }
            Op::Compact(back, full) => {
                let horizon = m.now.saturating_sub(back as u64 * STEP);
                node.compact(horizon, full).await.unwrap();
            }
            Op::Restart => {
                drop(node);
                epoch += 1;
                node = take_over(&store, epoch, &m).await;
            }
            Op::Takeover => {
                epoch += 1;
                let next = take_over(&store, epoch, &m).await;
                stale = Some(std::mem::replace(&mut node, next));
            }
            Op::StaleApply(k, v) => {
                if let Some(old) = &stale {
                    // Far past anything acknowledged: if a checkpoint of the stale owner
                    // landed, recovery would skip the new owner's commits below it.
                    junk += 1;
                    let ts = m.now + 1_000_000 + junk;
                    let rec = Arc::new(CommitRecord {
                        commit_ts: ts,
                        tables: vec![TableWrites {
                            table_id: TABLE,
                            schema: schema(),
                            keys: vec![key(k)],
                            rows: vec![Some(Arc::new(vec![ScalarValue::Int64(Some(v))]))],
                        }],
                    });
                    old.apply(&[rec], ts);
                }
            }
            Op::StaleFlush => {
                if let Some(old) = &stale {
                    stale_outcome("flush", old.flush().await)?;
                }
            }
            Op::StaleCompact(back, full) => {
                if let Some(old) = &stale {
                    let horizon = m.now.saturating_sub(back as u64 * STEP);
                    stale_outcome("compaction", old.compact(horizon, full).await)?;
                }
            }
            Op::StaleGc => {
                if let Some(old) = &stale {
                    // Deleting its own retired segments and old manifests is harmless;
                    // whatever it does must not touch what the new owner reads.
                    let _ = old.collect_garbage().await;
                }
            }
        }
        if let Some(old) = &stale {
            if old.lease().fenced().is_some() {
                // Once it knows, a fenced owner answers no read.
                let r = old.get(TABLE, &key(0), m.now).await;
                prop_assert!(
                    matches!(r, Err(EngineError::Fenced { .. })),
                    "a fenced owner answered a read: {:?}",
                    r
                );
            }
        }
    }
    // A last owner recovers from the store: every acknowledged version is there.
    drop(stale);
    let last_checkpoint = node.checkpoint_ts().await;
    drop(node);
    epoch += 1;
    let node = take_over(&store, epoch, &m).await;
    prop_assert!(node.checkpoint_ts().await >= last_checkpoint);
    let horizon = node.horizon_ts();
    for k in 0..12u8 {
        for (ts, _) in m.history.get(&k).cloned().unwrap_or_default() {
            if ts < horizon {
                continue;
            }
            let got = node
                .get(TABLE, &key(k), ts)
                .await
                .unwrap()
                .map(|r| value(&r));
            prop_assert_eq!(
                got,
                m.at(k, ts),
                "key {} at {} after the last takeover",
                k,
                ts
            );
        }
    }
    // Whatever happened, the newest state is always readable and right.
    for k in 0..12u8 {
        let got = node
            .get(TABLE, &key(k), m.now)
            .await
            .unwrap()
            .map(|r| value(&r));
        prop_assert_eq!(got, m.at(k, m.now), "final read of key {}", k);
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]
    #[test]
    fn storage_matches_the_model(ops in proptest::collection::vec(op(), 1..80)) {
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
        rt.block_on(run(ops))?;
    }
}

/// Many versions of many keys across several row groups and pages: a point lookup decodes
/// one page slice, not the segment.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn point_lookup_reads_one_page_of_a_large_segment() {
    let dir = tempfile::tempdir().unwrap();
    let store = DurableStore::local(dir.path().to_path_buf()).unwrap();
    let node = open(&store).await;
    let n = 300_000u64;
    let keys: Vec<Vec<u8>> = (0..n)
        .map(|i| weft_engine::key::encode_key(&[&ScalarValue::Int64(Some(i as i64))]).unwrap())
        .collect();
    let rec = Arc::new(CommitRecord {
        commit_ts: 10,
        tables: vec![TableWrites {
            table_id: TABLE,
            schema: schema(),
            keys: keys.clone(),
            rows: (0..n)
                .map(|i| Some(Arc::new(vec![ScalarValue::Int64(Some(i as i64 * 3))])))
                .collect(),
        }],
    });
    node.apply(&[rec], 10);
    node.flush().await.unwrap();
    let plan = node
        .plan_scan(ScanRequest {
            table_id: TABLE,
            table_name: "t".into(),
            read_ts: 10,
            user_schema: schema(),
            kind: ScanKind::Points(vec![keys[123_457].clone()]),
            columns: vec![OutColumn::User(0)],
            overlay: Vec::new(),
            partitions: 1,
        })
        .await
        .unwrap();
    let ctx = datafusion::prelude::SessionContext::new().task_ctx();
    let batches: Vec<_> = plan
        .execute(0, ctx)
        .unwrap()
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .map(|b| b.unwrap())
        .collect();
    assert_eq!(batches.iter().map(|b| b.num_rows()).sum::<usize>(), 1);
    assert_eq!(
        weft_engine::row::batch_row(&batches[0], 0, 1).unwrap()[0],
        ScalarValue::Int64(Some(123_457 * 3))
    );
    // A range scan over the same segment splits into partitions by key; together they
    // return every row exactly once.
    let scan = full_scan(&node, 10, 2).await;
    let parts = scan.properties().partitioning.partition_count();
    assert_eq!(parts, 2);
    let mut seen = 0usize;
    let mut sum = 0i64;
    for p in 0..parts {
        let ctx = datafusion::prelude::SessionContext::new().task_ctx();
        let mut s = scan.execute(p, ctx).unwrap();
        let mut here = 0;
        while let Some(b) = s.next().await {
            let b = b.unwrap();
            here += b.num_rows();
            let col = b
                .column(0)
                .as_any()
                .downcast_ref::<arrow::array::Int64Array>()
                .unwrap();
            sum += col.iter().map(|v| v.unwrap()).sum::<i64>();
        }
        assert!(here > 0, "partition {p} is empty");
        seen += here;
    }
    assert_eq!(seen, n as usize);
    assert_eq!(sum, (0..n as i64).map(|i| i * 3).sum::<i64>());
    let metrics = plan.metrics().unwrap();
    let read = metrics
        .sum_by_name("segment_rows_read")
        .map(|v| v.as_usize())
        .unwrap();
    assert!(
        read > 0 && read <= 2 * weft_engine::storage::segment::PAGE_ROWS,
        "a point lookup examined {read} segment rows of {n}"
    );
}

/// A pinned read timestamp (an open transaction) holds compaction's horizon back: every
/// version it can see survives, and reads at it keep working.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compaction_keeps_what_a_pinned_read_sees() {
    let dir = tempfile::tempdir().unwrap();
    let store = DurableStore::local(dir.path().to_path_buf()).unwrap();
    let node = open(&store).await;
    let put = |ts: u64, v: i64| {
        Arc::new(CommitRecord {
            commit_ts: ts,
            tables: vec![TableWrites {
                table_id: TABLE,
                schema: schema(),
                keys: vec![key(1)],
                rows: vec![Some(Arc::new(vec![ScalarValue::Int64(Some(v))]))],
            }],
        })
    };
    node.apply(&[put(10, 1)], 10);
    node.flush().await.unwrap();
    let pin = node.pin(15);
    for ts in [20u64, 30, 40] {
        node.apply(&[put(ts, ts as i64)], ts);
        node.flush().await.unwrap();
    }
    let c = node.compact(40, true).await.unwrap().expect("compacted");
    assert_eq!(c.horizon, 15, "the horizon stops at the pinned read");
    let v = node.get(TABLE, &key(1), 15).await.unwrap().unwrap();
    assert_eq!(value(&v), 1);
    drop(pin);
    node.apply(&[put(50, 50)], 50);
    node.flush().await.unwrap();
    let c = node.compact(45, true).await.unwrap().expect("compacted");
    assert_eq!(c.horizon, 45);
    assert!(matches!(
        node.get(TABLE, &key(1), 15).await,
        Err(EngineError::SnapshotTooOld { .. })
    ));
    assert_eq!(
        value(&node.get(TABLE, &key(1), 45).await.unwrap().unwrap()),
        40
    );
}

/// A scan's streams keep the segments they read: compaction may replace them and delete
/// them while the scan runs, even after the plan itself was dropped (as DataFusion does
/// once a plan's streams are started), and the scan still reads them whole.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_running_scan_keeps_its_segments() {
    let dir = tempfile::tempdir().unwrap();
    let store = DurableStore::local(dir.path().to_path_buf()).unwrap();
    let node = open(&store).await;
    for (i, ts) in [10u64, 20, 30].into_iter().enumerate() {
        let rec = Arc::new(CommitRecord {
            commit_ts: ts,
            tables: vec![TableWrites {
                table_id: TABLE,
                schema: schema(),
                keys: vec![key(i as u8)],
                rows: vec![Some(Arc::new(vec![ScalarValue::Int64(Some(ts as i64))]))],
            }],
        });
        node.apply(&[rec], ts);
        node.flush().await.unwrap();
    }
    let plan = full_scan(&node, 30, 1).await;
    let ctx = datafusion::prelude::SessionContext::new().task_ctx();
    let mut stream = plan.execute(0, ctx).unwrap();
    drop(plan);
    let before: Vec<_> = std::fs::read_dir(dir.path().join("storage/r0/segments"))
        .unwrap()
        .collect();
    node.compact(30, true).await.unwrap().expect("compacted");
    let mut rows = 0;
    while let Some(b) = stream.next().await {
        rows += b.unwrap().num_rows();
    }
    assert_eq!(rows, 3);
    drop(stream);
    // Once the scan is done, the replaced segments go.
    assert!(node.collect_garbage().await.unwrap() >= 3);
    let after: Vec<_> = std::fs::read_dir(dir.path().join("storage/r0/segments"))
        .unwrap()
        .collect();
    assert_eq!((before.len(), after.len()), (3, 1));
}

/// Flushes and compactions over a store that fails PUTs and loses their acknowledgements:
/// a failed attempt is retried under new names, a manifest written despite a lost
/// acknowledgement is recognized by reading it back, and after everything the store
/// reopens (without faults) to exactly the data written.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flushes_and_compactions_survive_failed_and_ambiguous_puts() {
    let dir = tempfile::tempdir().unwrap();
    let faults = weft_engine::faults::Faults::parse("put_error=150,lost_ack=250,seed=11").unwrap();
    let store = DurableStore::local(dir.path().to_path_buf())
        .unwrap()
        .with_faults(faults.clone())
        .unwrap();
    let node = open(&store).await;
    let mut failures = 0;
    for round in 0..12u64 {
        let ts = (round + 1) * 10;
        let rec = Arc::new(CommitRecord {
            commit_ts: ts,
            tables: vec![TableWrites {
                table_id: TABLE,
                schema: schema(),
                keys: vec![key((round % 5) as u8)],
                rows: vec![Some(Arc::new(vec![ScalarValue::Int64(Some(ts as i64))]))],
            }],
        });
        node.apply(&[rec], ts);
        while node.flush().await.is_err() {
            failures += 1;
        }
        while node.compact(0, false).await.is_err() {
            failures += 1;
        }
    }
    assert!(
        faults.injected.load(std::sync::atomic::Ordering::Relaxed) > 0 && failures > 0,
        "no fault was injected"
    );
    let want: Vec<Option<i64>> = (0..5u8)
        .map(|k| {
            (0..12u64)
                .rev()
                .find(|r| r % 5 == k as u64)
                .map(|r| ((r + 1) * 10) as i64)
        })
        .collect();
    assert_values(&node, &want, "").await;
    let checkpoint = node.checkpoint_ts().await;
    assert_eq!(checkpoint, 120);
    drop(node);
    let clean = DurableStore::local(dir.path().to_path_buf()).unwrap();
    let node = open(&clean).await;
    assert_values(&node, &want, " after reopening").await;
}

/// Each of the five keys holds `want` at timestamp 120.
async fn assert_values(node: &StorageNode, want: &[Option<i64>], when: &str) {
    for k in 0..5u8 {
        let got = node
            .get(TABLE, &key(k), 120)
            .await
            .unwrap()
            .map(|r| value(&r));
        assert_eq!(got, want[k as usize], "key {k}{when}");
    }
}
