//! The group-commit writer of one journal.
//!
//! One task per journal. It takes the first waiting commit, then every other commit already
//! queued (up to `batch_bytes_max`), writes them as one object with a conditional put, and
//! only then acknowledges them. While one object is being written, new commits queue up and
//! form the next batch, so more concurrent committers give more commits per object.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use tokio::sync::{mpsc, oneshot};
use weft_engine::objstore::{Created, DurableStore};
use weft_engine::{CommitRecord, Timestamp};

use crate::error::JournalError;
use crate::format::{encode_object, Header, FORMAT_VERSION};
use crate::sequencer::Sequencer;

#[derive(Debug, Clone)]
pub struct WriterConfig {
    /// A batch closes once it holds this many bytes of records.
    pub batch_bytes_max: usize,
    /// ... or this many records.
    pub batch_records_max: usize,
}

impl Default for WriterConfig {
    fn default() -> Self {
        WriterConfig {
            batch_bytes_max: 8 << 20,
            batch_records_max: 4096,
        }
    }
}

pub struct Pending {
    pub record: Arc<CommitRecord>,
    pub body: Vec<u8>,
    pub done: oneshot::Sender<Result<(), JournalError>>,
}

/// Where a journal continues after recovery.
#[derive(Debug, Clone, Copy)]
pub struct WriterStart {
    pub journal_id: u32,
    pub epoch: u64,
    pub next_sequence: u64,
}

/// Starts the writer task. `healthy` is cleared when the journal stops accepting writes.
pub fn spawn(
    store: DurableStore,
    cluster: String,
    start: WriterStart,
    sequencer: Arc<Sequencer>,
    config: WriterConfig,
    healthy: Arc<AtomicBool>,
) -> mpsc::UnboundedSender<Pending> {
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(run(store, cluster, start, sequencer, config, rx, healthy));
    tx
}

async fn run(
    store: DurableStore,
    cluster: String,
    start: WriterStart,
    sequencer: Arc<Sequencer>,
    config: WriterConfig,
    mut rx: mpsc::UnboundedReceiver<Pending>,
    healthy: Arc<AtomicBool>,
) {
    let journal = start.journal_id as usize;
    let mut sequence = start.next_sequence;
    let mut failed: Option<JournalError> = None;
    while let Some(first) = rx.recv().await {
        let mut batch = vec![first];
        let mut bytes = batch[0].body.len();
        while bytes < config.batch_bytes_max && batch.len() < config.batch_records_max {
            match rx.try_recv() {
                Ok(p) => {
                    bytes += p.body.len();
                    batch.push(p);
                }
                Err(_) => break,
            }
        }
        let ts: Vec<Timestamp> = batch.iter().map(|p| p.record.commit_ts).collect();
        if let Some(err) = &failed {
            // A journal that failed once stays failed until restart: its next sequence
            // number might or might not exist in the store.
            sequencer.abandoned(journal, &ts);
            for p in batch {
                let _ = p.done.send(Err(err.clone()));
            }
            continue;
        }
        let header = Header {
            format_version: FORMAT_VERSION,
            journal_id: start.journal_id,
            epoch: start.epoch,
            sequence,
            first_ts: ts[0],
            last_ts: *ts.last().expect("batch is not empty"),
            record_count: batch.len() as u32,
        };
        debug_assert!(
            ts.windows(2).all(|w| w[0] < w[1]),
            "journal queue out of order"
        );
        let bodies: Vec<&[u8]> = batch.iter().map(|p| p.body.as_slice()).collect();
        let object = encode_object(&header, &bodies);
        let path = crate::object_path(&cluster, start.journal_id, sequence);
        let outcome = match store.put_create(&path, Bytes::from(object)).await {
            Ok(Created::Yes) => Ok(()),
            Ok(Created::AlreadyExists) => Err(JournalError::Fenced {
                journal: start.journal_id,
                sequence,
            }),
            Err(e) => Err(JournalError::Store(e.to_string())),
        };
        match outcome {
            Ok(()) => {
                sequence += 1;
                let records = batch.iter().map(|p| p.record.clone()).collect();
                sequencer.durable(journal, records);
                for p in batch {
                    let _ = p.done.send(Ok(()));
                }
            }
            Err(e) => {
                tracing::error!(journal, sequence, error = %e, "journal write failed; journal stops accepting writes");
                sequencer.abandoned(journal, &ts);
                for p in batch {
                    let _ = p.done.send(Err(e.clone()));
                }
                healthy.store(false, Ordering::SeqCst);
                failed = Some(e);
            }
        }
    }
}
