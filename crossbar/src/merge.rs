//! The k-way merge of journals by `(commit_ts, journal_id)`.
//!
//! Each journal delivers its records in timestamp order with a watermark W promising no
//! later record at or below W. The merger releases a record only once every journal's
//! watermark has reached it, so the released sequence is totally ordered, complete, and
//! free of duplicates. Pure state machine: the caller does the I/O.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};
use std::sync::Arc;

use weft_engine::{CommitRecord, Timestamp};

/// Anything with a commit timestamp can be merged: real commit records, and the light
/// records of the simulation and the benchmarks.
pub trait Stamped {
    fn commit_ts(&self) -> Timestamp;
}

impl Stamped for Arc<CommitRecord> {
    fn commit_ts(&self) -> Timestamp {
        self.as_ref().commit_ts
    }
}

impl Stamped for Timestamp {
    fn commit_ts(&self) -> Timestamp {
        *self
    }
}

pub struct Merger<T = Arc<CommitRecord>> {
    queues: Vec<VecDeque<T>>,
    /// Per journal: its watermark, or the last record's timestamp if higher.
    watermarks: Vec<Timestamp>,
    /// Timestamp of the last record pushed per journal.
    last_pushed: Vec<Timestamp>,
    released: Timestamp,
}

impl<T: Stamped> Merger<T> {
    pub fn new(journals: usize, start_ts: Timestamp) -> Merger<T> {
        Merger {
            queues: (0..journals).map(|_| VecDeque::new()).collect(),
            watermarks: vec![start_ts; journals],
            last_pushed: vec![start_ts; journals],
            released: start_ts,
        }
    }

    /// Adds a journal's next records (in timestamp order) and its new watermark.
    pub fn push(
        &mut self,
        journal: usize,
        records: impl IntoIterator<Item = T>,
        watermark: Timestamp,
    ) {
        let q = &mut self.queues[journal];
        for r in records {
            let ts = r.commit_ts();
            // A record at or below a published watermark, or out of order, would be
            // delivered out of order: the journal broke its promise.
            assert!(
                ts > self.last_pushed[journal] && ts > self.watermarks[journal],
                "journal {journal} delivered ts {ts} after watermark {} / record {}",
                self.watermarks[journal],
                self.last_pushed[journal]
            );
            self.last_pushed[journal] = ts;
            q.push_back(r);
        }
        let w = &mut self.watermarks[journal];
        *w = (*w).max(watermark);
    }

    /// Raises every watermark to at least `ts` (replay of complete journals).
    pub fn raise_all(&mut self, ts: Timestamp) {
        for w in &mut self.watermarks {
            *w = (*w).max(ts);
        }
    }

    /// The lowest watermark: everything at or below it can be released.
    pub fn low_watermark(&self) -> Timestamp {
        self.watermarks.iter().copied().min().unwrap_or(0)
    }

    /// Releases every record at or below the lowest watermark, in `(commit_ts, journal)`
    /// order, with the watermark the released prefix now satisfies.
    pub fn release(&mut self) -> (Vec<T>, Timestamp) {
        let mut out = Vec::new();
        let w = self.release_into(&mut out);
        (out, w)
    }

    /// [`Merger::release`] into a caller's buffer (no allocation in the steady state).
    pub fn release_into(&mut self, out: &mut Vec<T>) -> Timestamp {
        let low = self.low_watermark();
        let mut heap: BinaryHeap<Reverse<(Timestamp, usize)>> = self
            .queues
            .iter()
            .enumerate()
            .filter_map(|(j, q)| q.front().map(|r| Reverse((r.commit_ts(), j))))
            .filter(|Reverse((ts, _))| *ts <= low)
            .collect();
        while let Some(Reverse((_, j))) = heap.pop() {
            let q = &mut self.queues[j];
            let r = q.pop_front().expect("heap entry has a record");
            out.push(r);
            // Take the journal's run while it stays below the next journal's head: the
            // common case of a batch of consecutive timestamps costs no heap operations.
            let bound = heap
                .peek()
                .map(|Reverse(head)| *head)
                .unwrap_or((Timestamp::MAX, usize::MAX));
            while let Some(next) = q.front() {
                let ts = next.commit_ts();
                if ts > low {
                    break;
                }
                if (ts, j) > bound {
                    heap.push(Reverse((ts, j)));
                    break;
                }
                out.push(q.pop_front().expect("front exists"));
            }
        }
        self.released = self.released.max(low);
        self.released
    }

    pub fn pending(&self) -> usize {
        self.queues.iter().map(|q| q.len()).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn rec(ts: u64) -> Arc<CommitRecord> {
        Arc::new(CommitRecord {
            commit_ts: ts,
            tables: vec![],
        })
    }

    proptest! {
        /// Random timestamps spread over journals, delivered in random interleavings with
        /// random watermark advances: the output is ordered, complete and duplicate-free.
        #[test]
        fn merge_is_total_complete_and_unique(
            assignment in proptest::collection::vec(0usize..4, 1..200),
            schedule in proptest::collection::vec((0usize..4, 1usize..5), 1..400),
        ) {
            let n = 4;
            // Timestamps 1..=len assigned to journals in order, as the sequencer does.
            let mut per: Vec<VecDeque<u64>> = vec![VecDeque::new(); n];
            for (i, j) in assignment.iter().enumerate() { per[*j].push_back(i as u64 + 1); }
            let total = assignment.len() as u64;
            let mut m = Merger::new(n, 0);
            let mut out: Vec<u64> = Vec::new();
            let step = |m: &mut Merger, j: usize, k: usize, per: &mut Vec<VecDeque<u64>>| {
                let take = k.min(per[j].len());
                let recs: Vec<_> = per[j].drain(..take).map(rec).collect();
                // Journal j's watermark: below its next pending record, or everything.
                let wm = per[j].front().map(|t| t - 1).unwrap_or(total);
                m.push(j, recs, wm);
                let (r, w) = m.release();
                for x in &r { assert!(x.commit_ts <= w); }
                r
            };
            for (j, k) in schedule {
                out.extend(step(&mut m, j, k, &mut per).iter().map(|r| r.commit_ts));
            }
            for j in 0..n {
                out.extend(step(&mut m, j, usize::MAX, &mut per).iter().map(|r| r.commit_ts));
            }
            let expect: Vec<u64> = (1..=total).collect();
            prop_assert_eq!(out, expect);
        }
    }

    #[test]
    fn idle_journal_blocks_until_its_watermark_moves() {
        let mut m = Merger::new(2, 0);
        m.push(0, vec![rec(5)], 5);
        assert!(
            m.release().0.is_empty(),
            "journal 1 has promised nothing yet"
        );
        m.push(1, vec![], 7);
        let (r, w) = m.release();
        assert_eq!(r.len(), 1);
        assert_eq!(w, 5);
    }
}
