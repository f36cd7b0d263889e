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
//! A read timestamp ([`Sequencer::read_ts`]) covers every commit acknowledged so far but
//! not the commits still in flight: while some are, it is just below the lowest of them
//! (or the highest durable commit, if that is above), so a read waits for no batch's
//! write, only for the crossbar to pass what is already durable.
//!
//! Everything happens under one lock, and events are sent on the crossbar's channel under
//! it, so the channel order is the order in which promises were made: a watermark can never
//! overtake a record it covers. The channel is bounded ([`EVENTS_QUEUE_MAX`]): a sender
//! reserves its place before it takes the lock (waiting while the crossbar is behind, which
//! holds journal writers and so commits back), and sends under it.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};

use tokio::sync::mpsc;
use weft_engine::{Clock, CommitRecord, Timestamp};

/// How many journal events may wait for the crossbar: past this, journal writers wait (and
/// so do the commits behind them) until the crossbar catches up.
pub const EVENTS_QUEUE_MAX: usize = 1024;

/// The bounded channel from a sequencer to its crossbar.
pub fn events_channel() -> (mpsc::Sender<JournalEvent>, mpsc::Receiver<JournalEvent>) {
    mpsc::channel(EVENTS_QUEUE_MAX)
}

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
    /// The highest timestamp made durable: every commit acknowledged is at or below it.
    durable_max: Timestamp,
    /// The watermark each journal last published.
    published: Vec<Timestamp>,
}

pub struct Sequencer {
    state: Mutex<State>,
    events: mpsc::Sender<JournalEvent>,
    clock: Arc<dyn Clock>,
    /// Journal objects made durable since start, over every journal: what a restart
    /// would replay if nothing were flushed (the flusher bounds it).
    batches_durable: std::sync::atomic::AtomicU64,
}

impl State {
    fn watermark(&self, journal: usize) -> Timestamp {
        self.watermark_with_floor(journal, self.floor)
    }

    /// The watermark `journal` could promise if the floor were `floor`.
    fn watermark_with_floor(&self, journal: usize, floor: Timestamp) -> Timestamp {
        match self.inflight[journal].first() {
            Some(&lowest) => lowest - 1,
            None => self.last_ts.max(floor),
        }
    }
}

impl Sequencer {
    /// `recovered_ts` is the largest timestamp found in any journal at startup.
    pub fn new(
        journals: usize,
        recovered_ts: Timestamp,
        clock: Arc<dyn Clock>,
        events: mpsc::Sender<JournalEvent>,
    ) -> Sequencer {
        Sequencer {
            batches_durable: std::sync::atomic::AtomicU64::new(0),
            state: Mutex::new(State {
                last_ts: recovered_ts,
                floor: recovered_ts,
                inflight: vec![BTreeSet::new(); journals],
                durable_max: recovered_ts,
                published: vec![0; journals],
            }),
            events,
            clock,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn journals(&self) -> usize {
        self.lock().inflight.len()
    }

    /// A linearizable read timestamp: at or above every commit acknowledged so far, so a
    /// transaction that starts after a COMMIT returned sees it. With no commit in flight
    /// it is the highest of every timestamp assigned and the lowest watermark the
    /// journals published (what storage is applying already); with commits in flight, it
    /// is the highest of (the lowest in-flight timestamp - 1) and the highest durable one,
    /// so a read does not wait for batches still being written (unless a later journal's
    /// batch became durable before an earlier one's).
    ///
    /// Not `clock.latest()`, as the design's cross-process rule has it: this sequencer
    /// assigns every commit the node acknowledges, so its own record covers them, and a
    /// read at the clock's latest would make storage wait for a watermark round trip
    /// (journals, crossbar, apply) on every read of an idle or read-mostly node. Every
    /// later commit is still assigned a larger timestamp, so a snapshot never changes.
    pub fn read_ts(&self) -> Timestamp {
        let s = self.lock();
        match s.inflight.iter().filter_map(|f| f.first()).min() {
            None => s
                .last_ts
                .max(s.published.iter().copied().min().unwrap_or(0)),
            Some(&lowest) => (lowest - 1).max(s.durable_max),
        }
    }

    /// Makes every later commit's timestamp greater than `ts` (a timestamp a frontend of
    /// another process read at, or a transaction there started at).
    pub fn observe(&self, ts: Timestamp) {
        let mut s = self.lock();
        s.floor = s.floor.max(ts);
    }

    /// The highest commit timestamp assigned so far, durable or not. A read at it waits
    /// for every commit in flight: for a retry that must see the commit it lost to.
    pub fn last_assigned(&self) -> Timestamp {
        self.lock().last_ts
    }

    /// Commits assigned a timestamp and not yet durable (or abandoned), over every journal.
    pub fn in_flight(&self) -> usize {
        self.lock().inflight.iter().map(|f| f.len()).sum()
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

    /// The highest commit timestamp made durable: every acknowledged commit is at or below.
    pub fn durable_max(&self) -> Timestamp {
        self.lock().durable_max
    }

    /// Each journal's oldest commit still waiting to be durable (`None`: none waits) and
    /// the watermark it last published, by journal: for the node's metrics.
    pub fn journal_status(&self) -> Vec<(Option<Timestamp>, Timestamp)> {
        let s = self.lock();
        s.inflight
            .iter()
            .zip(&s.published)
            .map(|(f, &published)| (f.first().copied(), published))
            .collect()
    }

    /// How many journal objects were made durable since start.
    pub fn batches_durable(&self) -> u64 {
        self.batches_durable
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Records that a batch is durable: hands it to the crossbar with the new watermark
    /// (waiting for room on the crossbar's channel first).
    pub async fn durable(&self, journal: usize, records: Vec<Arc<CommitRecord>>) {
        self.batches_durable
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let permit = self.events.reserve().await.ok();
        let mut s = self.lock();
        for r in &records {
            s.inflight[journal].remove(&r.commit_ts);
            s.durable_max = s.durable_max.max(r.commit_ts);
        }
        let watermark = s.watermark(journal);
        s.published[journal] = s.published[journal].max(watermark);
        if let Some(p) = permit {
            p.send(JournalEvent {
                journal_id: journal as u32,
                records,
                watermark,
            });
        }
    }

    /// Records that timestamps will never appear in the journal (the write failed).
    pub async fn abandoned(&self, journal: usize, ts: &[Timestamp]) {
        let permit = self.events.reserve().await.ok();
        let mut s = self.lock();
        for t in ts {
            s.inflight[journal].remove(t);
        }
        let watermark = s.watermark(journal);
        s.published[journal] = s.published[journal].max(watermark);
        if let Some(p) = permit {
            p.send(JournalEvent {
                journal_id: journal as u32,
                records: Vec::new(),
                watermark,
            });
        }
    }

    /// Makes every journal promise a watermark of at least `ts` as soon as it can: idle
    /// journals publish at once, and so do busy ones up to just below their lowest
    /// in-flight timestamp (the rest when their batch is durable). Later commits get
    /// timestamps above `ts`.
    pub async fn request_watermark(&self, ts: Timestamp) {
        let journals = {
            let s = self.lock();
            let floor = s.floor.max(ts);
            let promised = (0..s.inflight.len())
                .all(|j| s.published[j] >= s.watermark_with_floor(j, floor).min(ts));
            if promised {
                return;
            }
            s.inflight.len()
        };
        let mut permits = self.events.reserve_many(journals).await.ok();
        let mut s = self.lock();
        s.floor = s.floor.max(ts);
        for j in 0..s.inflight.len() {
            let watermark = s.watermark(j);
            if watermark <= s.published[j] {
                continue;
            }
            if let Some(p) = permits.as_mut().and_then(|p| p.next()) {
                s.published[j] = watermark;
                p.send(JournalEvent {
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

    #[tokio::test]
    async fn watermarks_never_cover_inflight_records() {
        let (tx, mut rx) = events_channel();
        let seq = Sequencer::new(2, 100, Arc::new(SystemClock::new(0)), tx);
        let (t1, _) = seq.assign(0, |_| ());
        let (t2, _) = seq.assign(1, |_| ());
        assert!(t2 > t1 && t1 > 100);
        seq.request_watermark(t2 + 5).await;
        // Both journals are busy: each promises only up to just below its record.
        while let Ok(ev) = rx.try_recv() {
            let inflight = if ev.journal_id == 0 { t1 } else { t2 };
            assert!(ev.watermark < inflight, "{ev:?}");
        }
        seq.durable(
            1,
            vec![Arc::new(CommitRecord {
                commit_ts: t2,
                tables: vec![],
            })],
        )
        .await;
        let ev = rx.try_recv().unwrap();
        assert_eq!(ev.journal_id, 1);
        assert!(ev.watermark >= t2 + 5);
        seq.durable(
            0,
            vec![Arc::new(CommitRecord {
                commit_ts: t1,
                tables: vec![],
            })],
        )
        .await;
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

    #[tokio::test]
    async fn timestamps_rise_above_the_past_even_when_the_clock_is_behind() {
        let (tx, _rx) = events_channel();
        // Recovered journals hold commits up to 1,000,000; the clock says 500.
        let seq = Sequencer::new(1, 1_000_000, Arc::new(FixedClock(500, 10)), tx);
        let mut last = 1_000_000;
        for _ in 0..100 {
            let (ts, _) = seq.assign(0, |_| ());
            assert!(ts > last, "commit timestamps strictly increase");
            last = ts;
            // A read timestamp covers every durable commit and no commit in flight.
            assert!(seq.read_ts() >= ts - 1 && seq.read_ts() < ts);
            seq.durable(0, record(ts)).await;
            assert!(seq.read_ts() >= ts);
        }
    }

    fn record(ts: Timestamp) -> Vec<Arc<CommitRecord>> {
        vec![Arc::new(CommitRecord {
            commit_ts: ts,
            tables: vec![],
        })]
    }

    /// Every journal's last published watermark.
    fn promised(rx: &mut mpsc::Receiver<JournalEvent>, into: &mut [Timestamp]) {
        while let Ok(ev) = rx.try_recv() {
            let j = ev.journal_id as usize;
            into[j] = into[j].max(ev.watermark);
        }
    }

    #[tokio::test]
    async fn reads_cover_acknowledged_commits_without_waiting_for_those_in_flight() {
        let (tx, mut rx) = events_channel();
        let seq = Sequencer::new(2, 100, Arc::new(SystemClock::new(0)), tx);
        let mut marks = [0; 2];
        // X is durable (its COMMIT may have returned); A is still being written.
        let (x, _) = seq.assign(0, |_| ());
        seq.durable(0, record(x)).await;
        let (a, _) = seq.assign(1, |_| ());
        assert_eq!(seq.in_flight(), 1);
        let r = seq.read_ts();
        assert!(r >= x && r < a, "x={x} a={a} read={r}");
        // Asking for the read's watermark gets it from both journals at once, without A.
        seq.request_watermark(r).await;
        promised(&mut rx, &mut marks);
        assert!(marks.iter().all(|&m| m >= r), "{marks:?} below {r}");
        assert!(marks[1] < a, "no promise may cover A");
        // B, after A, becomes durable first: a read must cover B, so it waits for A.
        let (b, _) = seq.assign(0, |_| ());
        seq.durable(0, record(b)).await;
        assert!(seq.read_ts() >= b);
        seq.durable(1, record(a)).await;
        promised(&mut rx, &mut marks);
        assert!(marks.iter().all(|&m| m >= b));
        assert_eq!(seq.in_flight(), 0);
    }

    #[tokio::test]
    async fn idle_reads_come_from_the_last_commit_and_commits_from_earliest() {
        let (tx, mut rx) = events_channel();
        let seq = Sequencer::new(2, 0, Arc::new(FixedClock(1_000_000, 5_000)), tx);
        assert_eq!(seq.read_ts(), 0, "nothing committed or promised yet");
        let (ts, _) = seq.assign(0, |_| ());
        assert_eq!(ts, 995_000);
        seq.durable(0, record(ts)).await;
        // Idle: the last commit, which every later commit is above.
        assert_eq!(seq.read_ts(), ts);
        // A watermark both journals promised raises it: storage applies up to there.
        seq.request_watermark(1_200_000).await;
        let mut marks = [0; 2];
        promised(&mut rx, &mut marks);
        assert_eq!(marks, [1_200_000; 2]);
        assert_eq!(seq.read_ts(), 1_200_000);
        let (next, _) = seq.assign(1, |_| ());
        assert!(next > 1_200_000, "a commit after a read is above it");
    }

    #[tokio::test(start_paused = true)]
    async fn a_full_event_channel_holds_the_writer_back_until_the_crossbar_reads() {
        let (tx, mut rx) = mpsc::channel(1);
        let seq = Arc::new(Sequencer::new(1, 0, Arc::new(SystemClock::new(0)), tx));
        let record = |ts| {
            vec![Arc::new(CommitRecord {
                commit_ts: ts,
                tables: vec![],
            })]
        };
        let (t1, _) = seq.assign(0, |_| ());
        let (t2, _) = seq.assign(0, |_| ());
        seq.durable(0, record(t1)).await;
        // The channel holds one event: the second waits for the crossbar.
        let s = seq.clone();
        let mut second = tokio::spawn(async move { s.durable(0, record(t2)).await });
        assert!(
            tokio::time::timeout(std::time::Duration::from_secs(5), &mut second)
                .await
                .is_err(),
            "a durable batch must wait while the channel is full"
        );
        // Nothing was lost or reordered: the crossbar reads both, in order.
        assert_eq!(rx.recv().await.unwrap().records[0].commit_ts, t1);
        second.await.unwrap();
        let ev = rx.recv().await.unwrap();
        assert_eq!(ev.records[0].commit_ts, t2);
        assert_eq!(
            ev.watermark, t2,
            "an idle journal promises up to its last timestamp"
        );
    }
}
