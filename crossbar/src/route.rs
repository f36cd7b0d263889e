//! Subscriptions: which keys a storage node receives, and the live hub that delivers the
//! total order to subscribers through bounded buffers.
//!
//! The hub releases merged records in batches. Each subscriber has a bounded buffer (in
//! batches). A subscriber whose buffer is full is cut off: the hub drops its sender and
//! never waits for it, so a slow subscriber cannot hold the others back beyond its bound.
//! A cut-off subscriber drains what it has, reads the gap from the object store (from its
//! own applied watermark up to the hub's released watermark), and asks to rejoin after the
//! watermark it reached. The hub keeps a bounded ring of recently released records; if the
//! ring covers the subscriber's position, it is re-attached with exactly the records after
//! that position (no gap, no duplicate), else it is told how far the hub has got and
//! catches up again.

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use tokio::sync::{mpsc, oneshot, watch};
use weft_engine::{CommitRecord, TableWrites, Timestamp};

use crate::Subscriber;

/// Keys `[start, end)` of one table (`end: None` is unbounded above).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyRange {
    pub table_id: u64,
    pub start: Vec<u8>,
    pub end: Option<Vec<u8>>,
}

impl KeyRange {
    pub fn table(table_id: u64) -> KeyRange {
        KeyRange {
            table_id,
            start: Vec::new(),
            end: None,
        }
    }

    pub fn contains(&self, table_id: u64, key: &[u8]) -> bool {
        table_id == self.table_id
            && key >= self.start.as_slice()
            && self.end.as_deref().is_none_or(|e| key < e)
    }
}

/// What one subscriber receives: every key (`all`), or the keys in its ranges.
#[derive(Debug, Clone, Default)]
pub struct Subscription {
    pub all: bool,
    pub ranges: Vec<KeyRange>,
}

impl Subscription {
    pub fn everything() -> Subscription {
        Subscription {
            all: true,
            ranges: Vec::new(),
        }
    }

    pub fn ranges(ranges: Vec<KeyRange>) -> Subscription {
        Subscription { all: false, ranges }
    }

    fn wants(&self, table_id: u64, key: &[u8]) -> bool {
        self.all || self.ranges.iter().any(|r| r.contains(table_id, key))
    }

    /// The part of a record this subscriber receives, if any.
    pub fn filter(&self, record: &Arc<CommitRecord>) -> Option<Arc<CommitRecord>> {
        if self.all {
            return Some(record.clone());
        }
        let mut whole = true;
        let mut tables = Vec::new();
        for t in &record.tables {
            let keep: Vec<usize> = (0..t.keys.len())
                .filter(|&i| self.wants(t.table_id, &t.keys[i]))
                .collect();
            if keep.len() != t.keys.len() {
                whole = false;
            }
            if keep.is_empty() {
                continue;
            }
            tables.push(TableWrites {
                table_id: t.table_id,
                schema: t.schema.clone(),
                keys: keep.iter().map(|&i| t.keys[i].clone()).collect(),
                rows: keep.iter().map(|&i| t.rows[i].clone()).collect(),
            });
        }
        if whole {
            return Some(record.clone());
        }
        (!tables.is_empty()).then(|| {
            Arc::new(CommitRecord {
                commit_ts: record.commit_ts,
                tables,
            })
        })
    }

    fn filter_all(&self, records: &[Arc<CommitRecord>]) -> Vec<Arc<CommitRecord>> {
        records.iter().filter_map(|r| self.filter(r)).collect()
    }
}

/// One delivery: records in order, and the watermark they complete (every record of the
/// subscription at or below it has now been delivered).
#[derive(Debug, Clone)]
pub struct Batch {
    pub records: Vec<Arc<CommitRecord>>,
    pub watermark: Timestamp,
}

/// What a catch-up read returns: the records in total order, or why it failed.
pub type CatchUpRead<'a> =
    Pin<Box<dyn Future<Output = Result<Vec<Arc<CommitRecord>>, String>> + Send + 'a>>;

/// Where a cut-off subscriber reads what it missed: every record with
/// `after < commit_ts <= upto`, in total order.
pub trait CatchUpSource: Send + Sync + 'static {
    fn read(&self, after: Timestamp, upto: Timestamp) -> CatchUpRead<'_>;
}

#[derive(Debug, Clone)]
pub struct HubConfig {
    /// Batches a subscriber may have waiting before it is cut off.
    pub buffer_batches: usize,
    /// Recently released records kept to re-attach a subscriber that caught up.
    pub ring_records: usize,
    /// Releases and subscriptions that may wait for the hub's task: past this the merger
    /// waits to release (and the journals behind it hold their writers back).
    pub control_max: usize,
}

impl Default for HubConfig {
    fn default() -> Self {
        HubConfig {
            buffer_batches: 4096,
            ring_records: 65_536,
            control_max: 1024,
        }
    }
}

enum Control {
    Subscribe {
        sub: Subscription,
        after: Timestamp,
        reply: oneshot::Sender<Result<mpsc::Receiver<Batch>, Timestamp>>,
    },
    Release {
        records: Vec<Arc<CommitRecord>>,
        watermark: Timestamp,
    },
}

struct Attached {
    sub: Subscription,
    tx: mpsc::Sender<Batch>,
}

/// Counters a hub keeps, for tests and metrics.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct HubStats {
    /// Subscribers attached to the live stream now.
    pub attached: u64,
    pub cut_offs: u64,
    pub rejoins: u64,
    pub behind: u64,
}

/// The live hub. Cheap to clone.
#[derive(Clone)]
pub struct Hub {
    control: mpsc::Sender<Control>,
    released: watch::Receiver<Timestamp>,
    stats: Arc<std::sync::Mutex<HubStats>>,
}

impl Hub {
    /// Starts a hub whose order begins after `start_ts`.
    pub fn spawn(start_ts: Timestamp, config: HubConfig) -> Hub {
        Hub::spawn_task(start_ts, config).0
    }

    /// [`Hub::spawn`], also returning the hub's task, for a supervisor to watch.
    pub fn spawn_task(
        start_ts: Timestamp,
        config: HubConfig,
    ) -> (Hub, tokio::task::JoinHandle<()>) {
        let (control, mut rx) = mpsc::channel::<Control>(config.control_max.max(1));
        let (released_tx, released) = watch::channel(start_ts);
        let stats = Arc::new(std::sync::Mutex::new(HubStats::default()));
        let st = stats.clone();
        let task = tokio::spawn(async move {
            let mut subs: Vec<Attached> = Vec::new();
            let mut ring: VecDeque<Arc<CommitRecord>> = VecDeque::new();
            // Every released record above `ring_floor` is in the ring.
            let mut ring_floor = start_ts;
            let mut watermark = start_ts;
            while let Some(msg) = rx.recv().await {
                match msg {
                    Control::Release {
                        records,
                        watermark: w,
                    } => {
                        watermark = watermark.max(w);
                        subs.retain(|a| {
                            let batch = Batch {
                                records: a.sub.filter_all(&records),
                                watermark,
                            };
                            match a.tx.try_send(batch) {
                                Ok(()) => true,
                                Err(mpsc::error::TrySendError::Full(_)) => {
                                    st.lock().unwrap_or_else(|e| e.into_inner()).cut_offs += 1;
                                    false // cut off: it catches up from the store
                                }
                                Err(mpsc::error::TrySendError::Closed(_)) => false,
                            }
                        });
                        ring.extend(records);
                        while ring.len() > config.ring_records {
                            if let Some(old) = ring.pop_front() {
                                ring_floor = ring_floor.max(old.commit_ts);
                            }
                        }
                        st.lock().unwrap_or_else(|e| e.into_inner()).attached = subs.len() as u64;
                        let _ = released_tx.send(watermark);
                    }
                    Control::Subscribe { sub, after, reply } => {
                        if after < ring_floor {
                            st.lock().unwrap_or_else(|e| e.into_inner()).behind += 1;
                            let _ = reply.send(Err(watermark));
                            continue;
                        }
                        let (tx, rx) = mpsc::channel(config.buffer_batches.max(1));
                        let missed: Vec<Arc<CommitRecord>> = ring
                            .iter()
                            .filter(|r| r.commit_ts > after)
                            .cloned()
                            .collect();
                        let first = Batch {
                            records: sub.filter_all(&missed),
                            watermark: watermark.max(after),
                        };
                        if tx.try_send(first).is_ok() && reply.send(Ok(rx)).is_ok() {
                            if after > start_ts {
                                st.lock().unwrap_or_else(|e| e.into_inner()).rejoins += 1;
                            }
                            subs.push(Attached { sub, tx });
                            st.lock().unwrap_or_else(|e| e.into_inner()).attached =
                                subs.len() as u64;
                        }
                    }
                }
            }
        });
        (
            Hub {
                control,
                released,
                stats,
            },
            task,
        )
    }

    /// Hands the hub the next records of the total order (from the merger), waiting while
    /// the hub's control queue is full.
    pub async fn release(&self, records: Vec<Arc<CommitRecord>>, watermark: Timestamp) {
        let _ = self
            .control
            .send(Control::Release { records, watermark })
            .await;
    }

    /// The hub's released watermark.
    pub fn released(&self) -> Timestamp {
        *self.released.borrow()
    }

    pub fn stats(&self) -> HubStats {
        *self.stats.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Attaches a subscriber positioned at `after`; `Err(released)` if the hub can no longer
    /// fill the gap from its ring.
    pub async fn subscribe(
        &self,
        sub: Subscription,
        after: Timestamp,
    ) -> Result<mpsc::Receiver<Batch>, Timestamp> {
        let (reply, rx) = oneshot::channel();
        if self
            .control
            .send(Control::Subscribe { sub, after, reply })
            .await
            .is_err()
        {
            return Err(self.released());
        }
        rx.await.unwrap_or(Err(self.released()))
    }

    /// Runs a subscriber for as long as the hub lives: delivers its batches, and when it is
    /// cut off, catches it up from `source` and re-attaches it. `applied` is where the
    /// subscriber's state already is.
    pub fn follow(
        &self,
        sub: Subscription,
        target: Arc<dyn Subscriber>,
        source: Arc<dyn CatchUpSource>,
        mut applied: Timestamp,
    ) -> tokio::task::JoinHandle<()> {
        let hub = self.clone();
        tokio::spawn(async move {
            loop {
                if hub.control.is_closed() {
                    return;
                }
                if let Ok(mut rx) = hub.subscribe(sub.clone(), applied).await {
                    while let Some(b) = rx.recv().await {
                        weft_engine::faults::panic_point("apply");
                        target.deliver(&b.records, b.watermark);
                        applied = applied.max(b.watermark);
                    }
                    if hub.control.is_closed() {
                        return;
                    }
                    tracing::warn!(applied, "crossbar: subscriber cut off; catching up");
                }
                // Catch up from the store to what the hub has released, then try again.
                let upto = hub.released();
                if upto > applied {
                    match source.read(applied, upto).await {
                        Ok(records) => {
                            let mine = sub.filter_all(&records);
                            target.deliver(&mine, upto);
                            applied = upto;
                        }
                        Err(e) => {
                            tracing::error!(error = %e, "crossbar: catch-up read failed; retrying");
                            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
                        }
                    }
                }
            }
        })
    }
}
