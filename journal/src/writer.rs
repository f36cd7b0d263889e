//! The group-commit writer of one journal.
//!
//! One task per journal. It takes the first waiting commit, then every other commit already
//! queued (up to `batch_bytes_max`), writes them as one object with a conditional put, and
//! only then acknowledges them. While one object is being written, new commits queue up and
//! form the next batch, so more concurrent committers give more commits per object.
//!
//! A failed write is resolved, never guessed: the writer retries the same bytes at the
//! same sequence and, after an ambiguous failure, reads the object back. A commit is
//! acknowledged only when its object exists with exactly its bytes; it fails for certain
//! (retrying is safe) when another writer's object holds the sequence (`Fenced`); and if
//! the store does not answer within `resolve_timeout`, its client is told the outcome is
//! unknown while the writer keeps resolving.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::{mpsc, oneshot};
use weft_engine::objstore::{Created, DurableStore};
use weft_engine::ownership::Lease;
use weft_engine::{CommitRecord, Timestamp};

use crate::error::JournalError;
use crate::format::{encode_object, Header, FORMAT_VERSION};
use crate::logwriter::LogAppender;
use crate::metrics::JournalMetrics;
use crate::reader::{verify_object, JournalObject};
use crate::sequencer::Sequencer;

#[derive(Debug, Clone)]
pub struct WriterConfig {
    /// A batch closes once it holds this many bytes of records.
    pub batch_bytes_max: usize,
    /// ... or this many records.
    pub batch_records_max: usize,
    /// ... or when its first commit has waited this long for company. Zero: a batch is
    /// whatever queued while the previous object was being written (the measured best on
    /// local disk and on S3; see docs/benchmarks.md).
    pub batch_linger: Duration,
    /// How long a commit waits for its object's fate to be known when the store fails.
    /// After that its client hears "outcome unknown" (08007) while the writer keeps
    /// resolving in the background.
    pub resolve_timeout: Duration,
    /// The owner's lease: a writer stops appending once it is fenced, and fences it when
    /// another writer's object takes its sequence.
    pub lease: Option<Arc<Lease>>,
    /// How many commits may wait for this journal's writer: past this a commit waits for
    /// room before it is checked and sequenced (the store is behind; memory stays bounded).
    pub queue_max: usize,
    /// Where batches go: one object each, or (on local disk) frames of log files.
    pub layout: Layout,
    /// Where the writer counts its batches (see [`crate::metrics`]).
    pub metrics: JournalMetrics,
}

/// How a journal writes its batches (see [`crate::logfile`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// One object per batch, created if absent: any object store.
    Objects,
    /// Frames appended to preallocated log files of this many bytes, one `fdatasync` per
    /// batch: a local directory only (elsewhere the writer uses objects).
    Files { file_bytes: u64 },
}

impl Default for WriterConfig {
    fn default() -> Self {
        WriterConfig {
            batch_bytes_max: 8 << 20,
            batch_records_max: 4096,
            batch_linger: Duration::ZERO,
            resolve_timeout: Duration::from_secs(10),
            lease: None,
            queue_max: 4096,
            layout: Layout::Objects,
            metrics: JournalMetrics::default(),
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

/// Takes over a journal: writes an epoch claim (an object without records) at the first
/// free sequence after `last`, with an epoch above every epoch seen and at least
/// `owner_epoch` (the claiming process's owner epoch, so that a journal's epochs name its
/// owners). From then on a
/// previous writer's next conditional put fails, so it can no longer append. Objects that
/// appear while claiming (a previous writer still running) are returned, verified, for
/// recovery to apply.
pub async fn claim(
    store: &DurableStore,
    cluster: &str,
    journal_id: u32,
    mut last: Option<Header>,
    owner_epoch: u64,
) -> Result<(WriterStart, Vec<JournalObject>), JournalError> {
    let mut found = Vec::new();
    let log_dir = store.local_path(&crate::journal_prefix(cluster, journal_id));
    for _ in 0..1000 {
        if let Some(dir) = log_dir.clone() {
            // On local disk the journal may have log files: seal the newest, so that its
            // writer acknowledges nothing this claim does not cover, and take in what it
            // holds past `last`.
            let after = last.clone();
            let (appeared, newest) = tokio::task::spawn_blocking(move || {
                crate::logwriter::seal_and_read(&dir, journal_id, after)
            })
            .await
            .map_err(|e| JournalError::Store(format!("sealing journal {journal_id}: {e}")))??;
            found.extend(appeared);
            last = newest;
        }
        let (sequence, epoch, ts) = match &last {
            Some(h) => (h.sequence + 1, (h.epoch + 1).max(owner_epoch), h.last_ts),
            None => (0, owner_epoch.max(1), 0),
        };
        let header = Header {
            format_version: FORMAT_VERSION,
            journal_id,
            epoch,
            sequence,
            first_ts: ts,
            last_ts: ts,
            record_count: 0,
        };
        let path = crate::object_path(cluster, journal_id, sequence);
        let store_err = |e: weft_engine::EngineError| JournalError::Store(e.to_string());
        match store
            .put_create(&path, Bytes::from(encode_object(&header, &[])))
            .await
            .map_err(store_err)?
        {
            Created::Yes => {
                tracing::debug!(
                    journal = journal_id,
                    sequence,
                    epoch,
                    appeared = found.len(),
                    "journal: epoch claim written"
                );
                return Ok((
                    WriterStart {
                        journal_id,
                        epoch,
                        next_sequence: sequence + 1,
                    },
                    found,
                ));
            }
            Created::AlreadyExists if log_dir.is_some() => {
                // Another writer got there first (a claim, or a log file's first frame):
                // the next round seals and reads it, and claims after it.
                continue;
            }
            Created::AlreadyExists => {
                // Another writer got there first: read what it wrote and claim after it.
                let data = store.get(&path).await.map_err(store_err)?;
                let (h, records) = verify_object(path.as_ref(), journal_id, &data, last.as_ref())?;
                found.push(JournalObject {
                    path: path.to_string(),
                    bytes: data.len() as u64,
                    header: h.clone(),
                    records,
                });
                last = Some(h);
            }
        }
    }
    Err(JournalError::Store(format!(
        "journal {journal_id}: could not claim it: another writer keeps appending"
    )))
}

/// Starts the writer task. `healthy` is cleared when the journal stops accepting writes.
pub fn spawn(
    store: DurableStore,
    cluster: String,
    start: WriterStart,
    sequencer: Arc<Sequencer>,
    config: WriterConfig,
    healthy: Arc<AtomicBool>,
) -> mpsc::Sender<Pending> {
    spawn_task(store, cluster, start, sequencer, config, healthy).0
}

/// [`spawn`], also returning the writer's task, for a supervisor to watch.
pub fn spawn_task(
    store: DurableStore,
    cluster: String,
    start: WriterStart,
    sequencer: Arc<Sequencer>,
    config: WriterConfig,
    healthy: Arc<AtomicBool>,
) -> (mpsc::Sender<Pending>, tokio::task::JoinHandle<()>) {
    let (tx, rx) = mpsc::channel(config.queue_max.max(1));
    let task = tokio::spawn(run(store, cluster, start, sequencer, config, rx, healthy));
    (tx, task)
}

/// Makes `data` the object at `path`, whatever the store does: retries failed PUTs, and
/// after an ambiguous failure (a PUT that may or may not have happened) reads the object
/// back. `Ok` once the object holding exactly `data` exists; `Fenced` if another writer's
/// object holds that sequence. Never gives up on its own: the caller bounds the wait.
async fn persist(
    store: &DurableStore,
    path: &object_store::path::Path,
    data: Bytes,
    journal_id: u32,
    sequence: u64,
) -> Result<(), JournalError> {
    let mut backoff = Duration::from_millis(5);
    let mut check_first = false;
    loop {
        if check_first {
            match store.get_opt(path).await {
                Ok(Some(existing)) if existing == data => return Ok(()),
                Ok(Some(other)) => {
                    let by_epoch = crate::format::decode_header(path.as_ref(), &other)
                        .map(|h| h.epoch)
                        .unwrap_or(0);
                    return Err(JournalError::Fenced {
                        journal: journal_id,
                        sequence,
                        by_epoch,
                    });
                }
                Ok(None) => {}
                Err(e) => {
                    tracing::warn!(journal = journal_id, sequence, error = %e, "journal: reading back an object failed; retrying");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(1));
                    continue;
                }
            }
        }
        match store.put_create(path, data.clone()).await {
            Ok(Created::Yes) => return Ok(()),
            // Ours from an earlier attempt whose answer was lost, or another writer's.
            Ok(Created::AlreadyExists) => check_first = true,
            Err(e) => {
                tracing::warn!(journal = journal_id, sequence, error = %e, "journal: write failed; resolving");
                check_first = true;
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(1));
            }
        }
    }
}

/// Makes one batch durable: a new object, or a frame appended to the journal's log file.
async fn write_batch(
    store: &DurableStore,
    log: Option<&Arc<std::sync::Mutex<LogAppender>>>,
    path: &object_store::path::Path,
    data: Bytes,
    journal_id: u32,
    sequence: u64,
) -> Result<(), JournalError> {
    let Some(log) = log else {
        return persist(store, path, data, journal_id, sequence).await;
    };
    let log = log.clone();
    tokio::task::spawn_blocking(move || {
        log.lock()
            .unwrap_or_else(|p| p.into_inner())
            .append(sequence, &data)
    })
    .await
    .unwrap_or_else(|e| {
        Err(JournalError::Store(format!(
            "journal {journal_id}: appending failed: {e}"
        )))
    })
}

async fn run(
    store: DurableStore,
    cluster: String,
    start: WriterStart,
    sequencer: Arc<Sequencer>,
    config: WriterConfig,
    mut rx: mpsc::Receiver<Pending>,
    healthy: Arc<AtomicBool>,
) {
    let journal = start.journal_id as usize;
    let mut sequence = start.next_sequence;
    let metrics = config.metrics.writer(start.journal_id);
    let log = match (
        config.layout,
        store.local_path(&crate::journal_prefix(&cluster, start.journal_id)),
    ) {
        (Layout::Files { file_bytes }, Some(dir)) => {
            if let Err(e) = std::fs::create_dir_all(&dir) {
                tracing::error!(journal, dir = %dir.display(), error = %e, "journal: cannot create its directory");
                return;
            }
            Some(Arc::new(std::sync::Mutex::new(LogAppender::new(
                dir,
                start.journal_id,
                file_bytes,
                config.resolve_timeout,
            ))))
        }
        _ => None,
    };
    let mut failed: Option<JournalError> = None;
    while let Some(first) = rx.recv().await {
        let mut batch = vec![first];
        let mut bytes = batch[0].body.len();
        let linger_until = tokio::time::Instant::now() + config.batch_linger;
        while bytes < config.batch_bytes_max && batch.len() < config.batch_records_max {
            let next = match rx.try_recv() {
                Ok(p) => Some(p),
                Err(_) if config.batch_linger.is_zero() => None,
                Err(_) => tokio::time::timeout_at(linger_until, rx.recv())
                    .await
                    .ok()
                    .flatten(),
            };
            match next {
                Some(p) => {
                    bytes += p.body.len();
                    batch.push(p);
                }
                None => break,
            }
        }
        let ts: Vec<Timestamp> = batch.iter().map(|p| p.record.commit_ts).collect();
        weft_engine::faults::panic_point("journal");
        if failed.is_none() {
            if let Some(f) = config.lease.as_ref().and_then(|l| l.fenced()) {
                tracing::error!(
                    journal,
                    "journal: the owner was fenced; it stops accepting writes"
                );
                healthy.store(false, Ordering::SeqCst);
                failed = Some(JournalError::Fenced {
                    journal: start.journal_id,
                    sequence,
                    by_epoch: f.by_epoch,
                });
            }
        }
        if let Some(err) = &failed {
            // A fenced journal belongs to another writer now.
            sequencer.abandoned(journal, &ts).await;
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
        let object = Bytes::from(encode_object(&header, &bodies));
        let (object_bytes, began) = (object.len(), tokio::time::Instant::now());
        let path = crate::object_path(&cluster, start.journal_id, sequence);
        let write = write_batch(
            &store,
            log.as_ref(),
            &path,
            object,
            start.journal_id,
            sequence,
        );
        tokio::pin!(write);
        let outcome = tokio::select! {
            r = &mut write => r,
            _ = tokio::time::sleep(config.resolve_timeout) => {
                // The store is not answering: tell the clients their outcome is unknown,
                // stop taking new commits, and keep resolving. Until it is resolved the
                // journal's watermark stays put, so no reader can see past a commit whose
                // fate is undecided.
                tracing::error!(journal, sequence, "journal: store unresponsive; commit outcome unknown until it answers");
                healthy.store(false, Ordering::SeqCst);
                let err = JournalError::Unknown { journal: start.journal_id, sequence };
                let records: Vec<_> = batch.iter().map(|p| p.record.clone()).collect();
                for p in batch {
                    let _ = p.done.send(Err(err.clone()));
                }
                // Commits queued behind the undecided one are refused for certain (nothing
                // of them was written) rather than left waiting out the outage.
                let r = loop {
                    tokio::select! {
                        r = &mut write => break r,
                        Some(p) = rx.recv() => {
                            sequencer.abandoned(journal, &[p.record.commit_ts]).await;
                            let _ = p.done.send(Err(JournalError::Unavailable(start.journal_id)));
                        }
                    }
                };
                if r.is_ok() {
                    tracing::info!(journal, sequence, "journal: undecided object resolved: it is durable");
                    healthy.store(true, Ordering::SeqCst);
                }
                match r {
                    Ok(()) => {
                        sequence += 1;
                        sequencer.durable(journal, records).await;
                    }
                    Err(e) => {
                        sequencer.abandoned(journal, &ts).await;
                        failed = Some(e);
                    }
                }
                continue;
            }
        };
        match outcome {
            Ok(()) => {
                tracing::debug!(
                    journal,
                    sequence,
                    first_ts = ts[0],
                    last_ts = ts[ts.len() - 1],
                    records = ts.len(),
                    "journal: object durable"
                );
                metrics.durable(ts.len(), object_bytes, began.elapsed().as_secs_f64());
                sequence += 1;
                let records = batch.iter().map(|p| p.record.clone()).collect();
                sequencer.durable(journal, records).await;
                for p in batch {
                    let _ = p.done.send(Ok(()));
                }
            }
            Err(e @ JournalError::Store(_)) => {
                // Only the log files report this: a write or fdatasync failed, so what the
                // file holds is unknown (the kernel may have dropped the dirty pages). The
                // writer stops, the process's supervisor ends it, and the next start
                // recovers from what is on disk.
                tracing::error!(journal, sequence, error = %e, "journal: log file I/O failed; the journal writer stops");
                healthy.store(false, Ordering::SeqCst);
                let err = JournalError::Unknown {
                    journal: start.journal_id,
                    sequence,
                };
                for p in batch {
                    let _ = p.done.send(Err(err.clone()));
                }
                return;
            }
            Err(e) => {
                tracing::error!(journal, sequence, error = %e, "journal: fenced by another writer; it stops accepting writes");
                if let (Some(lease), JournalError::Fenced { by_epoch, .. }) = (&config.lease, &e) {
                    lease.fence(
                        *by_epoch,
                        format!(
                            "journal {journal} sequence {sequence} was written by epoch {by_epoch}"
                        ),
                    );
                }
                healthy.store(false, Ordering::SeqCst);
                sequencer.abandoned(journal, &ts).await;
                for p in batch {
                    let _ = p.done.send(Err(e.clone()));
                }
                failed = Some(e);
            }
        }
    }
}
