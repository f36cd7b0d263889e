//! Commit timestamps and journal watermarks.
//!
//! The sequencer hands out commit timestamps (strictly increasing, above anything persisted
//! before a restart, above every published watermark) and tracks, per journal, which
//! timestamps are in flight (assigned, not yet durable). A journal's watermark W promises
//! that no record with `commit_ts <= W` will ever appear in it:
//!
//! - a journal with records in flight: W = (lowest in-flight timestamp) - 1;
//! - an idle journal: W = max(last assigned, watermark floor), since every later commit
//!   gets a larger timestamp.
//!
//! Everything happens under one lock, and events are sent on the crossbar's channel under
//! it, so the channel order is the order in which promises were made: a watermark can never
//! overtake a record it covers.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};

use tokio::sync::mpsc;
use weft_engine::{Clock, CommitRecord, Timestamp};

/// What a journal tells the crossbar: new durable records (in timestamp order) and its
/// new watermark.
#[derive(Debug, Clone)]
pub struct JournalEvent {
    pub journal_id: u32,
    pub records: Vec<Arc<CommitRecord>>,
    pub watermark: Timestamp,
}

struct State {
    last_ts: Timestamp,
    floor: Timestamp,
    inflight: Vec<BTreeSet<Timestamp>>,
    events: mpsc::UnboundedSender<JournalEvent>,
}

pub struct Sequencer {
    state: Mutex<State>,
    clock: Arc<dyn Clock>,
    /// Journal objects made durable since start, over every journal: what a restart
    /// would replay if nothing were flushed (the flusher bounds it).
    batches_durable: std::sync::atomic::AtomicU64,
}

impl State {
    fn watermark(&self, journal: usize) -> Timestamp {
        match self.inflight[journal].first() {
            Some(&lowest) => lowest - 1,
            None => self.last_ts.max(self.floor),
        }
    }
}

impl Sequencer {
    /// `recovered_ts` is the largest timestamp found in any journal at startup.
    pub fn new(
        journals: usize,
        recovered_ts: Timestamp,
        clock: Arc<dyn Clock>,
        events: mpsc::UnboundedSender<JournalEvent>,
    ) -> Sequencer {
        Sequencer {
            batches_durable: std::sync::atomic::AtomicU64::new(0),
            state: Mutex::new(State {
                last_ts: recovered_ts,
                floor: recovered_ts,
                inflight: vec![BTreeSet::new(); journals],
                events,
            }),
            clock,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn journals(&self) -> usize {
        self.lock().inflight.len()
    }

    /// A linearizable read timestamp: at or above `clock.latest()` and every timestamp
    /// already assigned, so a transaction that starts after a COMMIT returned sees it.
    pub fn read_ts(&self) -> Timestamp {
        let latest = self.clock.now().latest;
        latest.max(self.lock().last_ts)
    }

    /// Assigns a commit timestamp for `journal` and runs `enqueue` with it while still
    /// holding the lock, so the journal's queue order is timestamp order.
    pub fn assign<R>(
        &self,
        journal: usize,
        enqueue: impl FnOnce(Timestamp) -> R,
    ) -> (Timestamp, R) {
        let mut s = self.lock();
        let ts = self
            .clock
            .now()
            .earliest
            .max(s.last_ts + 1)
            .max(s.floor + 1);
        s.last_ts = ts;
        s.inflight[journal].insert(ts);
        let r = enqueue(ts);
        (ts, r)
    }

    /// Records that a batch is durable: hands it to the crossbar with the new watermark.
    /// How many journal objects were made durable since start.
    pub fn batches_durable(&self) -> u64 {
        self.batches_durable
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    pub fn durable(&self, journal: usize, records: Vec<Arc<CommitRecord>>) {
        self.batches_durable
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let mut s = self.lock();
        for r in &records {
            s.inflight[journal].remove(&r.commit_ts);
        }
        let watermark = s.watermark(journal);
        let _ = s.events.send(JournalEvent {
            journal_id: journal as u32,
            records,
            watermark,
        });
    }

    /// Records that timestamps will never appear in the journal (the write failed).
    pub fn abandoned(&self, journal: usize, ts: &[Timestamp]) {
        let mut s = self.lock();
        for t in ts {
            s.inflight[journal].remove(t);
        }
        let watermark = s.watermark(journal);
        let _ = s.events.send(JournalEvent {
            journal_id: journal as u32,
            records: Vec::new(),
            watermark,
        });
    }

    /// Makes every journal promise a watermark of at least `ts` as soon as it can: idle
    /// journals publish at once; busy ones when their in-flight batch is durable. Later
    /// commits get timestamps above `ts`.
    pub fn request_watermark(&self, ts: Timestamp) {
        let mut s = self.lock();
        if ts <= s.floor && s.inflight.iter().all(|f| f.is_empty()) && s.last_ts <= s.floor {
            // Already promised by every journal.
            return;
        }
        s.floor = s.floor.max(ts);
        for j in 0..s.inflight.len() {
            if s.inflight[j].is_empty() {
                let watermark = s.watermark(j);
                let _ = s.events.send(JournalEvent {
                    journal_id: j as u32,
                    records: Vec::new(),
                    watermark,
                });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use weft_engine::SystemClock;

    #[test]
    fn watermarks_never_cover_inflight_records() {
        let (tx, mut rx) = mpsc::unbounded_channel();
        let seq = Sequencer::new(2, 100, Arc::new(SystemClock::new(0)), tx);
        let (t1, _) = seq.assign(0, |_| ());
        let (t2, _) = seq.assign(1, |_| ());
        assert!(t2 > t1 && t1 > 100);
        seq.request_watermark(t2 + 5);
        // Both journals are busy: no watermark may be published yet.
        assert!(rx.try_recv().is_err());
        seq.durable(
            1,
            vec![Arc::new(CommitRecord {
                commit_ts: t2,
                tables: vec![],
            })],
        );
        let ev = rx.try_recv().unwrap();
        assert_eq!(ev.journal_id, 1);
        assert!(ev.watermark >= t2 + 5);
        seq.durable(
            0,
            vec![Arc::new(CommitRecord {
                commit_ts: t1,
                tables: vec![],
            })],
        );
        let ev = rx.try_recv().unwrap();
        assert!(ev.watermark >= t2 + 5);
        let (t3, _) = seq.assign(0, |_| ());
        assert!(t3 > t2 + 5, "commits after a watermark must be above it");
    }

    /// A clock stuck in the past, with a configurable error bound.
    struct FixedClock(Timestamp, Timestamp);
    impl Clock for FixedClock {
        fn now(&self) -> weft_engine::ClockInterval {
            weft_engine::ClockInterval {
                earliest: self.0 - self.1,
                latest: self.0 + self.1,
            }
        }
    }

    #[test]
    fn timestamps_rise_above_the_past_even_when_the_clock_is_behind() {
        let (tx, _rx) = mpsc::unbounded_channel();
        // Recovered journals hold commits up to 1,000,000; the clock says 500.
        let seq = Sequencer::new(1, 1_000_000, Arc::new(FixedClock(500, 10)), tx);
        let mut last = 1_000_000;
        for _ in 0..100 {
            let (ts, _) = seq.assign(0, |_| ());
            assert!(ts > last, "commit timestamps strictly increase");
            last = ts;
            // A read timestamp is at or above every timestamp handed out.
            assert!(seq.read_ts() >= ts);
        }
    }

    #[test]
    fn read_timestamps_come_from_latest_and_commits_from_earliest() {
        let (tx, _rx) = mpsc::unbounded_channel();
        let seq = Sequencer::new(1, 0, Arc::new(FixedClock(1_000_000, 5_000)), tx);
        assert_eq!(seq.read_ts(), 1_005_000);
        let (ts, _) = seq.assign(0, |_| ());
        assert_eq!(ts, 995_000);
    }
}
