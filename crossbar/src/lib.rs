//! # weft-crossbar
//!
//! Follows every journal and releases their records as one total order by
//! `(commit_ts, journal_id)`, up to the lowest journal watermark, to the storage nodes that
//! subscribed to them.
//!
//! - [`merge`]: the merge itself, a pure state machine (no I/O, no clock).
//! - [`Crossbar`]: the live driver: consumes journal events, runs the merge, hands the
//!   order to the [`route::Hub`].
//! - [`route`]: subscriptions by (table, key range), bounded per-subscriber buffers, cut-off
//!   and rejoin.
//! - [`catchup`]: what a cut-off subscriber reads from the object store.
//! - [`io`]: io_uring or ordinary reads of local journal files, chosen at runtime.
//! - [`sim`]: the deterministic stall simulation.
//! - [`replay`]: the same order over records read back from the object store at startup.

pub mod catchup;
pub mod io;
pub mod merge;
pub mod route;
pub mod sim;

use std::sync::Arc;

use tokio::sync::mpsc;
use weft_engine::storage::StorageNode;
use weft_engine::{CommitRecord, Timestamp};
use weft_journal::JournalEvent;

pub use merge::Merger;
pub use route::{Hub, HubConfig, KeyRange, Subscription};

/// Receives ordered commits. `watermark` promises that every commit at or below it has been
/// delivered.
pub trait Subscriber: Send + Sync + 'static {
    fn deliver(&self, records: &[Arc<CommitRecord>], watermark: Timestamp);
}

impl Subscriber for StorageNode {
    fn deliver(&self, records: &[Arc<CommitRecord>], watermark: Timestamp) {
        self.apply(records, watermark);
    }
}

pub struct Crossbar;

impl Crossbar {
    /// Starts the live merge of `journals` journals whose watermarks start at `start_ts`
    /// (everything at or below it was replayed at startup).
    pub fn spawn(
        journals: usize,
        start_ts: Timestamp,
        mut events: mpsc::Receiver<JournalEvent>,
        hub: Hub,
    ) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async move {
            let mut merger = Merger::new(journals, start_ts);
            while let Some(ev) = events.recv().await {
                weft_engine::faults::panic_point("crossbar");
                merger.push(ev.journal_id as usize, ev.records, ev.watermark);
                // Take whatever else already arrived before releasing, so one release
                // covers many events under load.
                while let Ok(ev) = events.try_recv() {
                    merger.push(ev.journal_id as usize, ev.records, ev.watermark);
                }
                let (records, watermark) = merger.release();
                if records.is_empty() && watermark == 0 {
                    continue;
                }
                hub.release(records, watermark).await;
            }
        })
    }
}

/// Orders records read back from several journals into the total order, keeping only
/// those with `commit_ts > after`.
pub fn replay(journals: Vec<Vec<Arc<CommitRecord>>>, after: Timestamp) -> Vec<Arc<CommitRecord>> {
    let n = journals.len();
    let mut merger = Merger::new(n, 0);
    for (j, records) in journals.into_iter().enumerate() {
        // Everything a journal holds is all it will ever hold below its last record.
        let wm = records.last().map(|r| r.commit_ts).unwrap_or(0);
        merger.push(j, records, wm);
    }
    let mut out = Vec::new();
    // Release all: raise every watermark to the top.
    merger.raise_all(Timestamp::MAX);
    let (records, _) = merger.release();
    out.extend(records.into_iter().filter(|r| r.commit_ts > after));
    out
}
