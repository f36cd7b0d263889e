//! The storage node's memtables: the active one that applies take, and at most one frozen
//! one that a flush is writing to segments.
//!
//! Pure data structure, no I/O or locking. A flush freezes the active memtable (a swap,
//! constant time, under the node's lock), writes the frozen one out with no lock held,
//! then releases it (another constant-time swap) when its segments are in the view. So
//! neither applies nor reads wait for a flush's walk over the memtable: before, a flush
//! collected its versions under the read lock and evicted them under the write lock, one
//! walk of the whole memtable each, and every apply and read queued behind them.
//!
//! Invariant: every version in the frozen memtable is older than every version in the
//! active one (commits are applied in timestamp order), so a read asks the active memtable
//! first, then the frozen one, then the segments, and the first version found is the newest.

use std::sync::Arc;

use crate::record::CommitRecord;
use crate::storage::mvcc::{FlushTable, Mvcc, Version};
use crate::time::Timestamp;

#[derive(Debug, Default)]
pub struct Memtables {
    active: Mvcc,
    /// The memtable being flushed and the checkpoint it completes: every commit at or
    /// below that timestamp is in it, in the segments, or both.
    frozen: Option<(Arc<Mvcc>, Timestamp)>,
    /// The watermark that came with the newest applied records: every commit at or below
    /// it has been applied.
    upto: Timestamp,
    /// Per table, the timestamp of the newest commit applied that wrote it; a table not
    /// written since the node opened counts as written at `written_floor` (the checkpoint
    /// it opened at), which no version in its segments is newer than.
    written: std::collections::HashMap<u64, Timestamp>,
    written_floor: Timestamp,
}

impl Memtables {
    /// Applies commits (in timestamp order) that came with `watermark`; returns the bytes
    /// the active memtable grew by.
    pub fn apply(&mut self, records: &[Arc<CommitRecord>], watermark: Timestamp) -> usize {
        let before = self.active.bytes;
        for r in records {
            self.active.apply(r);
            for t in &r.tables {
                self.written.insert(t.table_id, r.commit_ts);
            }
        }
        if !records.is_empty() {
            self.upto = self.upto.max(watermark);
        }
        self.active.bytes.saturating_sub(before)
    }

    /// A memtable set for a node whose segments hold every commit up to `checkpoint`.
    pub fn opened_at(checkpoint: Timestamp) -> Memtables {
        Memtables {
            written_floor: checkpoint,
            ..Memtables::default()
        }
    }

    /// The newest commit timestamp that wrote `table_id`, among those applied (at most
    /// the checkpoint the node opened at for a table it has not seen written since).
    pub fn written_ts(&self, table_id: u64) -> Timestamp {
        self.written
            .get(&table_id)
            .copied()
            .unwrap_or(self.written_floor)
    }

    /// Bytes held by the active memtable (what the next flush would write).
    pub fn active_bytes(&self) -> usize {
        self.active.bytes
    }

    /// Bytes held by both memtables.
    pub fn bytes(&self) -> usize {
        self.active.bytes + self.frozen.as_ref().map_or(0, |(f, _)| f.bytes)
    }

    /// The newest version of `key` at or below `ts` held in memory (a tombstone included).
    pub fn version(&self, table_id: u64, key: &[u8], ts: Timestamp) -> Option<Version> {
        self.active.version(table_id, key, ts).or_else(|| {
            self.frozen
                .as_ref()
                .and_then(|(f, _)| f.version(table_id, key, ts))
        })
    }

    /// Per key in `[lo, hi)`, the newest version at or below `ts` held in memory, keys
    /// ascending.
    pub fn snapshot(
        &self,
        table_id: u64,
        ts: Timestamp,
        lo: Option<&[u8]>,
        hi: Option<&[u8]>,
    ) -> Vec<(Vec<u8>, Version)> {
        let active = self.active.snapshot(table_id, ts, lo, hi);
        let Some((frozen, _)) = &self.frozen else {
            return active;
        };
        let older = frozen.snapshot(table_id, ts, lo, hi);
        if older.is_empty() {
            return active;
        }
        merge_newer_first(active, older)
    }

    /// The memtable to flush and the checkpoint it completes: the one a failed flush left
    /// frozen, else the active one, frozen now, when anything was applied past
    /// `checkpoint` (`published` is the applied watermark readers see, read under the
    /// same lock as this call). An empty frozen memtable still moves the checkpoint.
    pub fn freeze(
        &mut self,
        checkpoint: Timestamp,
        published: Timestamp,
    ) -> Option<(Arc<Mvcc>, Timestamp)> {
        if let Some(frozen) = &self.frozen {
            return Some(frozen.clone());
        }
        // Both are watermarks every commit at or below which is applied; the active
        // memtable holds nothing above the larger.
        let upto = self.upto.max(published);
        if upto <= checkpoint {
            return None;
        }
        let frozen = (Arc::new(std::mem::take(&mut self.active)), upto);
        self.frozen = Some(frozen.clone());
        Some(frozen)
    }

    /// Forgets the frozen memtable once its segments are in the view; returns it, to be
    /// dropped outside the caller's lock.
    pub fn release(&mut self) -> Option<Arc<Mvcc>> {
        self.frozen.take().map(|(f, _)| f)
    }
}

/// Merges two key-ascending snapshots, the first holding newer versions: a key in both
/// keeps the first's version.
fn merge_newer_first(
    newer: Vec<(Vec<u8>, Version)>,
    older: Vec<(Vec<u8>, Version)>,
) -> Vec<(Vec<u8>, Version)> {
    let mut out = Vec::with_capacity(newer.len() + older.len());
    let mut older = older.into_iter().peekable();
    for (k, v) in newer {
        while let Some((ok, _)) = older.peek() {
            if *ok < k {
                out.push(older.next().expect("peeked"));
            } else {
                if *ok == k {
                    older.next();
                }
                break;
            }
        }
        out.push((k, v));
    }
    out.extend(older);
    out
}

/// The versions of a frozen memtable, per table: the content of its flush.
pub fn flush_content(frozen: &Mvcc) -> Vec<FlushTable> {
    frozen.versions_between(0, Timestamp::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::TableWrites;
    use crate::row::Row;
    use arrow::datatypes::{DataType, Field, Schema};
    use datafusion::scalar::ScalarValue;

    fn rec(ts: Timestamp, key: u8, value: Option<i64>) -> Arc<CommitRecord> {
        let schema = Arc::new(Schema::new(vec![Field::new("v", DataType::Int64, true)]));
        Arc::new(CommitRecord {
            commit_ts: ts,
            tables: vec![TableWrites {
                table_id: 1,
                schema,
                keys: vec![vec![key]],
                rows: vec![value.map(|v| Arc::new(vec![ScalarValue::Int64(Some(v))] as Row))],
            }],
        })
    }

    fn value(v: &Option<Version>) -> Option<Option<i64>> {
        v.as_ref().map(|v| {
            v.row.as_ref().map(|r| match r[0] {
                ScalarValue::Int64(Some(x)) => x,
                _ => panic!("not an int"),
            })
        })
    }

    #[test]
    fn reads_see_the_frozen_memtable_under_the_active_one() {
        let mut m = Memtables::default();
        m.apply(&[rec(10, 1, Some(1)), rec(11, 2, Some(2))], 11);
        let (frozen, upto) = m.freeze(0, 0).expect("something to flush");
        assert_eq!(upto, 11);
        assert_eq!(frozen.bytes, m.bytes());
        m.apply(&[rec(20, 1, Some(10)), rec(21, 3, None)], 21);
        assert_eq!(value(&m.version(1, &[1], 15)), Some(Some(1)));
        assert_eq!(value(&m.version(1, &[1], 25)), Some(Some(10)));
        assert_eq!(value(&m.version(1, &[3], 25)), Some(None));
        assert_eq!(value(&m.version(1, &[3], 15)), None);
        let snap: Vec<(u8, Option<Option<i64>>)> = m
            .snapshot(1, 25, None, None)
            .into_iter()
            .map(|(k, v)| (k[0], value(&Some(v))))
            .collect();
        assert_eq!(
            snap,
            vec![(1, Some(Some(10))), (2, Some(Some(2))), (3, Some(None))]
        );
        let old: Vec<u8> = m
            .snapshot(1, 15, None, None)
            .into_iter()
            .map(|(k, _)| k[0])
            .collect();
        assert_eq!(old, vec![1, 2]);
        // A second freeze while one is in flight returns the same one.
        let (again, again_upto) = m.freeze(0, 21).expect("still frozen");
        assert!(Arc::ptr_eq(&frozen, &again));
        assert_eq!(again_upto, 11);
        assert!(m.release().is_some());
        assert_eq!(value(&m.version(1, &[2], 25)), None);
        let (next, next_upto) = m.freeze(11, 21).expect("the active memtable");
        assert_eq!(next_upto, 21);
        assert_eq!(flush_content(&next).len(), 1);
    }

    #[test]
    fn a_table_counts_as_written_at_its_newest_commit_or_the_opening_checkpoint() {
        let mut m = Memtables::opened_at(5);
        assert_eq!(m.written_ts(1), 5);
        m.apply(&[rec(10, 1, Some(1)), rec(12, 2, Some(2))], 12);
        assert_eq!(m.written_ts(1), 12);
        assert_eq!(m.written_ts(2), 5);
        m.freeze(0, 12);
        m.release();
        assert_eq!(
            m.written_ts(1),
            12,
            "a flush forgets versions, not when they were written"
        );
    }

    #[test]
    fn nothing_to_flush_below_the_checkpoint_and_an_empty_one_moves_it() {
        let mut m = Memtables::default();
        assert!(m.freeze(0, 0).is_none());
        // The watermark moved with no records: an empty memtable moves the checkpoint.
        let (empty, upto) = m.freeze(0, 7).expect("the checkpoint moves");
        assert_eq!(upto, 7);
        assert!(flush_content(&empty).is_empty());
        m.release();
        assert!(m.freeze(7, 7).is_none());
    }

    #[test]
    fn merge_prefers_the_newer_side_and_keeps_key_order() {
        let v = |ts| Version { ts, row: None };
        let newer = vec![(vec![2], v(20)), (vec![4], v(40))];
        let older = vec![
            (vec![1], v(1)),
            (vec![2], v(2)),
            (vec![3], v(3)),
            (vec![5], v(5)),
        ];
        let merged: Vec<(u8, Timestamp)> = merge_newer_first(newer, older)
            .into_iter()
            .map(|(k, v)| (k[0], v.ts))
            .collect();
        assert_eq!(merged, vec![(1, 1), (2, 20), (3, 3), (4, 40), (5, 5)]);
    }
}
