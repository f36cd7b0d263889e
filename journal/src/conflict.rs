//! The adjudicator's conflict table: for every key written recently, the timestamp of its
//! latest commit, and for every table, the timestamp of its latest commit.
//!
//! A transaction that started at `start_ts` conflicts if a key it writes (or read, at
//! SERIALIZABLE) has a later commit. Checking and recording are plain hash-map operations
//! under the adjudicator's lock; `weft bench adjudicator` measures them.

use std::collections::HashMap;

use foldhash::fast::RandomState;

use weft_engine::Timestamp;

use crate::error::CommitError;

/// A key as the conflict table sees it: table id (8 bytes, big-endian) then the encoded key.
pub fn full_key(table_id: u64, key: &[u8]) -> Vec<u8> {
    let mut k = Vec::with_capacity(8 + key.len());
    k.extend_from_slice(&table_id.to_be_bytes());
    k.extend_from_slice(key);
    k
}

/// What one transaction asks the table to check, keys already in [`full_key`] form.
#[derive(Debug, Default, Clone)]
pub struct Check<'a> {
    pub start_ts: Timestamp,
    /// Catalog keys of the tables the transaction used (OC001 on a later DDL).
    pub schema: &'a [Vec<u8>],
    /// Keys written or locked.
    pub written: &'a [Vec<u8>],
    /// Keys read (`Some`) and whole tables scanned (`None`), at SERIALIZABLE.
    pub reads: &'a [(u64, Option<Vec<u8>>)],
}

#[derive(Debug, Default)]
pub struct ConflictTable {
    /// Hashed with foldhash (randomly seeded per process): several times faster than
    /// SipHash on short keys, and the adjudicator hashes every key of every commit.
    last_commit: HashMap<Vec<u8>, Timestamp, RandomState>,
    /// The latest commit that wrote anything in each table: what a predicate read (a scan
    /// of the whole table) is validated against. Never pruned: one entry per table.
    table_commit: HashMap<u64, Timestamp, RandomState>,
    /// Transactions that started before this cannot be checked any more.
    pruned_below: Timestamp,
}

impl ConflictTable {
    pub fn new() -> ConflictTable {
        ConflictTable::default()
    }

    pub fn len(&self) -> usize {
        self.last_commit.len()
    }

    pub fn is_empty(&self) -> bool {
        self.last_commit.is_empty()
    }

    /// The commit-time checks, in order: schema (OC001), then writes and reads (OC000).
    pub fn check(&self, c: &Check<'_>) -> Result<(), CommitError> {
        if c.start_ts < self.pruned_below {
            return Err(CommitError::Conflict {
                code: "OC000",
                detail: "transaction is older than the conflict-check horizon".into(),
            });
        }
        let newer = |k: &Vec<u8>| self.last_commit.get(k).is_some_and(|&ts| ts > c.start_ts);
        if c.schema.iter().any(newer) {
            return Err(CommitError::Conflict {
                code: "OC001",
                detail: "schema has been updated by another transaction".into(),
            });
        }
        if c.written.iter().any(newer) {
            return Err(CommitError::Conflict {
                code: "OC000",
                detail: "mutation conflicts with another transaction".into(),
            });
        }
        for (table, key) in c.reads {
            let changed = match key {
                Some(k) => newer(k),
                None => self
                    .table_commit
                    .get(table)
                    .is_some_and(|&ts| ts > c.start_ts),
            };
            if changed {
                return Err(CommitError::Conflict {
                    code: "OC000",
                    detail: "data read by this serializable transaction was changed by \
                             another transaction that committed after it started"
                        .into(),
                });
            }
        }
        Ok(())
    }

    /// Records a commit at `ts` of `written` keys in `tables`.
    pub fn record(&mut self, ts: Timestamp, written: Vec<Vec<u8>>, tables: &[u64]) {
        for k in written {
            self.last_commit.insert(k, ts);
        }
        for t in tables {
            self.table_commit.insert(*t, ts);
        }
    }

    /// Forgets entries older than `horizon`; if more than `max` remain, raises the horizon
    /// to the median timestamp. Transactions that started before the final horizon fail.
    pub fn prune(&mut self, horizon: Timestamp, max: usize) {
        self.last_commit.retain(|_, ts| *ts >= horizon);
        self.pruned_below = self.pruned_below.max(horizon);
        if self.last_commit.len() > max {
            let mut all: Vec<Timestamp> = self.last_commit.values().copied().collect();
            let mid = all.len() / 2;
            let (_, median, _) = all.select_nth_unstable(mid);
            let median = *median;
            self.last_commit.retain(|_, ts| *ts >= median);
            self.pruned_below = self.pruned_below.max(median);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn k(i: u32) -> Vec<u8> {
        full_key(5, &i.to_be_bytes())
    }

    #[test]
    fn first_committer_wins_and_reads_are_validated() {
        let mut t = ConflictTable::new();
        t.record(10, vec![k(1)], &[5]);
        fn write(start: Timestamp, keys: &[Vec<u8>]) -> Check<'_> {
            Check {
                start_ts: start,
                written: keys,
                ..Default::default()
            }
        }
        assert!(t.check(&write(5, &[k(1)])).is_err());
        assert!(t.check(&write(10, &[k(1)])).is_ok());
        assert!(t.check(&write(5, &[k(2)])).is_ok());
        let reads = [(5, Some(k(1)))];
        let c = Check {
            start_ts: 5,
            reads: &reads,
            ..Default::default()
        };
        assert!(t.check(&c).is_err());
        let scan = [(5, None)];
        let c = Check {
            start_ts: 9,
            reads: &scan,
            ..Default::default()
        };
        assert!(t.check(&c).is_err(), "a scan of a table written later");
        let other = [(6, None)];
        let c = Check {
            start_ts: 9,
            reads: &other,
            ..Default::default()
        };
        assert!(t.check(&c).is_ok());
    }

    #[test]
    fn pruning_refuses_transactions_older_than_the_horizon() {
        let mut t = ConflictTable::new();
        for i in 0..100 {
            t.record(i as u64 + 1, vec![k(i)], &[5]);
        }
        t.prune(50, 1000);
        assert_eq!(t.len(), 51);
        let c = Check {
            start_ts: 40,
            ..Default::default()
        };
        assert!(t.check(&c).is_err());
        t.prune(0, 10);
        assert!(t.len() <= 26, "{}", t.len());
    }
}
