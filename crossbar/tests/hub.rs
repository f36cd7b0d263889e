//! The live hub with real journal objects on a local store: subscribers receive only their
//! keys, in order; a slow subscriber is cut off without holding the fast one back, catches
//! up from the object store (through the chosen read engine) and rejoins with no gap and no
//! duplicate.
#![allow(clippy::disallowed_methods)] // test harness deadlines are real time

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use arrow::datatypes::{DataType, Field, Schema};
use bytes::Bytes;
use datafusion::scalar::ScalarValue;
use weft_crossbar::catchup::StoreCatchUp;
use weft_crossbar::{Hub, HubConfig, KeyRange, Subscriber, Subscription};
use weft_engine::objstore::DurableStore;
use weft_engine::{CommitRecord, TableWrites, Timestamp};
use weft_journal::format::{encode_object, encode_record, Header, FORMAT_VERSION};

const TABLE: u64 = 1 << 16;

fn key(i: u32) -> Vec<u8> {
    i.to_be_bytes().to_vec()
}

fn record(ts: Timestamp, k: u32) -> Arc<CommitRecord> {
    let schema = Arc::new(Schema::new(vec![Field::new("v", DataType::Int64, true)]));
    Arc::new(CommitRecord {
        commit_ts: ts,
        tables: vec![TableWrites {
            table_id: TABLE,
            schema,
            keys: vec![key(k)],
            rows: vec![Some(Arc::new(vec![ScalarValue::Int64(Some(ts as i64))]))],
        }],
    })
}

/// What a subscriber received: (commit_ts, key) in order, and its watermark.
type Received = (Vec<(Timestamp, Vec<u8>)>, Timestamp);

#[derive(Default)]
struct Collector {
    got: Mutex<Received>,
    slow: bool,
}

impl Subscriber for Collector {
    fn deliver(&self, records: &[Arc<CommitRecord>], watermark: Timestamp) {
        if self.slow {
            std::thread::sleep(Duration::from_millis(3));
        }
        let mut g = self.got.lock().unwrap();
        for r in records {
            for t in &r.tables {
                for k in &t.keys {
                    g.0.push((r.commit_ts, k.clone()));
                }
            }
        }
        g.1 = g.1.max(watermark);
    }
}

/// Writes the records round robin into `journals` journals, `per_object` to an object.
async fn write_journals(store: &DurableStore, records: &[Arc<CommitRecord>], journals: u32) {
    for j in 0..journals {
        let mine: Vec<_> = records
            .iter()
            .enumerate()
            .filter(|(i, _)| *i as u32 % journals == j)
            .map(|(_, r)| r.clone())
            .collect();
        for (seq, chunk) in mine.chunks(50).enumerate() {
            let bodies: Vec<Vec<u8>> = chunk.iter().map(|r| encode_record(r).unwrap()).collect();
            let refs: Vec<&[u8]> = bodies.iter().map(|b| b.as_slice()).collect();
            let header = Header {
                format_version: FORMAT_VERSION,
                journal_id: j,
                epoch: 1,
                sequence: seq as u64,
                first_ts: chunk[0].commit_ts,
                last_ts: chunk.last().unwrap().commit_ts,
                record_count: chunk.len() as u32,
            };
            let path = weft_journal::object_path("c", j, seq as u64);
            store
                .put_create(&path, Bytes::from(encode_object(&header, &refs)))
                .await
                .unwrap();
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_subscribers_are_cut_off_and_rejoin_without_gaps() {
    let dir = tempfile::tempdir().unwrap();
    let store = DurableStore::local(dir.path().to_path_buf()).unwrap();
    let n = 3000u32;
    let records: Vec<_> = (0..n).map(|i| record(1000 + i as u64, i)).collect();
    write_journals(&store, &records, 2).await;
    let last_ts = records.last().unwrap().commit_ts;

    let hub = Hub::spawn(
        0,
        HubConfig {
            buffer_batches: 4,
            ring_records: 64,
            ..HubConfig::default()
        },
    );
    let source = Arc::new(StoreCatchUp {
        store: store.clone(),
        cluster: "c".into(),
        engine: weft_crossbar::io::choose(),
    });
    let fast = Arc::new(Collector::default());
    let slow = Arc::new(Collector {
        slow: true,
        ..Default::default()
    });
    let low_half = Subscription::ranges(vec![KeyRange {
        table_id: TABLE,
        start: Vec::new(),
        end: Some(key(n / 2)),
    }]);
    hub.follow(low_half, fast.clone(), source.clone(), 0);
    hub.follow(Subscription::everything(), slow.clone(), source, 0);

    let deadline = Instant::now() + Duration::from_secs(10);
    while hub.stats().attached < 2 {
        assert!(Instant::now() < deadline, "subscribers did not attach");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    for chunk in records.chunks(10) {
        hub.release(chunk.to_vec(), chunk.last().unwrap().commit_ts)
            .await;
        tokio::task::yield_now().await;
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    while fast.got.lock().unwrap().1 < last_ts || slow.got.lock().unwrap().1 < last_ts {
        assert!(
            Instant::now() < deadline,
            "subscribers did not reach the end"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    let expect = |pred: &dyn Fn(u32) -> bool| -> Vec<(Timestamp, Vec<u8>)> {
        (0..n)
            .filter(|i| pred(*i))
            .map(|i| (1000 + i as u64, key(i)))
            .collect()
    };
    assert_eq!(
        fast.got.lock().unwrap().0,
        expect(&|i| i < n / 2),
        "the range subscriber gets exactly its keys, in order"
    );
    assert_eq!(
        slow.got.lock().unwrap().0,
        expect(&|_| true),
        "the slow subscriber gets everything once, in order"
    );
    // A subscriber that caught up from the store can reach the end before its rejoin is
    // handled: wait for the rejoin itself.
    let deadline = Instant::now() + Duration::from_secs(60);
    while hub.stats().rejoins < 1 {
        assert!(Instant::now() < deadline, "no rejoin: {:?}", hub.stats());
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let stats = hub.stats();
    assert!(stats.cut_offs >= 1, "{stats:?}");
}

#[test]
fn filtering_keeps_only_the_subscribed_keys() {
    let schema = Arc::new(Schema::new(vec![Field::new("v", DataType::Int64, true)]));
    let rec = Arc::new(CommitRecord {
        commit_ts: 5,
        tables: vec![
            TableWrites {
                table_id: TABLE,
                schema: schema.clone(),
                keys: vec![key(1), key(7)],
                rows: vec![None, None],
            },
            TableWrites {
                table_id: TABLE + 1,
                schema,
                keys: vec![key(1)],
                rows: vec![None],
            },
        ],
    });
    let sub = Subscription::ranges(vec![KeyRange {
        table_id: TABLE,
        start: key(5),
        end: None,
    }]);
    let f = sub.filter(&rec).unwrap();
    assert_eq!(f.tables.len(), 1);
    assert_eq!(f.tables[0].keys, vec![key(7)]);
    let none = Subscription::ranges(vec![KeyRange::table(TABLE + 2)]);
    assert!(none.filter(&rec).is_none());
    assert!(Arc::ptr_eq(
        &Subscription::everything().filter(&rec).unwrap(),
        &rec
    ));
}

/// The hub's control queue is bounded (`HubConfig::control_max`): a release past it waits
/// until the hub's task has taken the earlier ones, and nothing is lost or reordered.
#[tokio::test(flavor = "current_thread")]
async fn a_full_control_queue_makes_the_merger_wait() {
    use futures::FutureExt;
    let hub = Hub::spawn(
        0,
        HubConfig {
            control_max: 1,
            ..HubConfig::default()
        },
    );
    // The hub's task has not run yet (one thread, no await so far): the first release
    // fills the queue and the second must wait.
    assert!(hub
        .release(vec![record(10, 1)], 10)
        .now_or_never()
        .is_some());
    let mut second = Box::pin(hub.release(vec![record(20, 2)], 20));
    assert!(
        (&mut second).now_or_never().is_none(),
        "a full queue makes release wait"
    );
    second.await;
    let deadline = Instant::now() + Duration::from_secs(10);
    while hub.released() < 20 {
        assert!(
            Instant::now() < deadline,
            "the hub did not take both releases"
        );
        tokio::task::yield_now().await;
    }
}
