//! What the journal's integration tests share: a one-journal writer with its own
//! sequencer, and commits of one integer each.
#![allow(dead_code)] // each test file uses its own part

use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use arrow::datatypes::{DataType, Field, Schema};
use datafusion::scalar::ScalarValue;
use tokio::sync::{mpsc, oneshot};
use weft_engine::objstore::DurableStore;
use weft_engine::record::{CommitRecord, TableWrites};
use weft_engine::SystemClock;
use weft_journal::format::{encode_record, set_commit_ts, COMMIT_TS_PLACEHOLDER};
use weft_journal::reader::read_journal;
use weft_journal::writer::{self, claim, Pending, WriterConfig};
use weft_journal::{JournalError, JournalEvent, Sequencer};

pub fn record(n: i64) -> CommitRecord {
    let schema = Arc::new(Schema::new(vec![Field::new("n", DataType::Int64, true)]));
    CommitRecord {
        commit_ts: COMMIT_TS_PLACEHOLDER,
        tables: vec![TableWrites {
            table_id: 7,
            schema,
            keys: vec![n.to_be_bytes().to_vec()],
            rows: vec![Some(Arc::new(vec![ScalarValue::Int64(Some(n))]))],
        }],
    }
}

/// One journal's writer with its own sequencer; `events` sees what it made durable.
pub struct Journal {
    pub tx: mpsc::Sender<Pending>,
    pub sequencer: Arc<Sequencer>,
    pub events: mpsc::Receiver<JournalEvent>,
    pub healthy: Arc<AtomicBool>,
}

pub async fn open(store: &DurableStore, cluster: &str, config: WriterConfig) -> Journal {
    let existing = read_journal(store, cluster, 0).await.unwrap();
    let recovered = existing.last().map(|o| o.header.last_ts).unwrap_or(0);
    let (start, _) = claim(
        store,
        cluster,
        0,
        existing.last().map(|o| o.header.clone()),
        0,
    )
    .await
    .unwrap();
    let (etx, erx) = weft_journal::events_channel();
    let sequencer = Arc::new(Sequencer::new(
        1,
        recovered,
        Arc::new(SystemClock::new(0)),
        etx,
    ));
    let healthy = Arc::new(AtomicBool::new(true));
    let tx = writer::spawn(
        store.clone(),
        cluster.to_string(),
        start,
        sequencer.clone(),
        config,
        healthy.clone(),
    );
    Journal {
        tx,
        sequencer,
        events: erx,
        healthy,
    }
}

pub fn submit(j: &Journal, n: i64) -> oneshot::Receiver<Result<(), JournalError>> {
    let (done, rx) = oneshot::channel();
    let mut rec = record(n);
    let mut body = encode_record(&rec).unwrap();
    j.sequencer.assign(0, |ts| {
        set_commit_ts(&mut body, ts).unwrap();
        rec.commit_ts = ts;
        j.tx.try_send(Pending {
            record: Arc::new(rec),
            body,
            done,
        })
        .unwrap();
    });
    rx
}

pub async fn commit(j: &Journal, n: i64) -> Result<(), JournalError> {
    submit(j, n).await.unwrap()
}

pub fn value(r: &CommitRecord) -> i64 {
    match &r.tables[0].rows[0].as_ref().unwrap()[0] {
        ScalarValue::Int64(Some(n)) => *n,
        other => panic!("unexpected {other:?}"),
    }
}

/// Every value in the journal, in order.
pub async fn journal_values(store: &DurableStore, cluster: &str) -> Vec<i64> {
    read_journal(store, cluster, 0)
        .await
        .unwrap()
        .iter()
        .flat_map(|o| o.records.iter().map(|r| value(r)))
        .collect()
}
