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
struct Generation {
    /// Hashed with foldhash (randomly seeded per process): several times faster than
    /// SipHash on short keys, and the adjudicator hashes every key of every commit.
    keys: HashMap<Vec<u8>, Timestamp, RandomState>,
    max_ts: Timestamp,
}

/// Keys live in two generations: new commits go to the current one; when it is full it
/// becomes the previous one and the old previous is dropped whole (on another thread), so
/// forgetting old entries costs O(1) under the adjudicator's lock instead of a scan of the
/// whole table. Transactions that started before the newest dropped entry fail with OC000:
/// their conflicts can no longer be checked.
#[derive(Debug)]
pub struct ConflictTable {
    current: Generation,
    previous: Generation,
    generation_max: usize,
    /// The latest commit that wrote anything in each table: what a predicate read (a scan
    /// of the whole table) is validated against. Never pruned: one entry per table.
    table_commit: HashMap<u64, Timestamp, RandomState>,
    /// Transactions that started before this cannot be checked any more.
    pruned_below: Timestamp,
    /// Transactions that started before this began under a previous adjudicator, whose
    /// conflict state this one never saw.
    taken_over_at: Timestamp,
}

impl Default for ConflictTable {
    fn default() -> Self {
        ConflictTable::new()
    }
}

impl ConflictTable {
    /// A table holding at most about a million keys.
    pub fn new() -> ConflictTable {
        ConflictTable::with_max(1 << 20)
    }

    /// A table holding at most about `max` keys (two generations of `max / 2`).
    pub fn with_max(max: usize) -> ConflictTable {
        ConflictTable {
            current: Generation::default(),
            previous: Generation::default(),
            generation_max: (max / 2).max(1),
            table_commit: HashMap::default(),
            pruned_below: 0,
            taken_over_at: 0,
        }
    }

    /// A table for an adjudicator that takes over at `ts` (every commit of its
    /// predecessors is at or below it): a transaction that started before `ts` may
    /// conflict with commits this table never saw, so it fails with OC000 and retries.
    pub fn taking_over_at(mut self, ts: Timestamp) -> ConflictTable {
        self.taken_over_at = ts;
        self
    }

    pub fn len(&self) -> usize {
        self.current.keys.len() + self.previous.keys.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn last_commit(&self, k: &Vec<u8>) -> Option<Timestamp> {
        self.current
            .keys
            .get(k)
            .or_else(|| self.previous.keys.get(k))
            .copied()
    }

    /// The commit-time checks, in order: schema (OC001), then writes and reads (OC000).
    pub fn check(&self, c: &Check<'_>) -> Result<(), CommitError> {
        if c.start_ts < self.taken_over_at {
            return Err(CommitError::Conflict {
                code: "OC000",
                detail: "transaction began before this adjudicator took over".into(),
            });
        }
        if c.start_ts < self.pruned_below {
            return Err(CommitError::Conflict {
                code: "OC000",
                detail: "transaction is older than the conflict-check horizon".into(),
            });
        }
        let newer = |k: &Vec<u8>| self.last_commit(k).is_some_and(|ts| ts > c.start_ts);
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
            self.current.keys.insert(k, ts);
        }
        self.current.max_ts = self.current.max_ts.max(ts);
        for t in tables {
            self.table_commit.insert(*t, ts);
        }
        if self.current.keys.len() >= self.generation_max {
            let full = std::mem::take(&mut self.current);
            self.drop_previous();
            self.previous = full;
        }
    }

    fn drop_previous(&mut self) {
        let old = std::mem::take(&mut self.previous);
        self.pruned_below = self.pruned_below.max(old.max_ts);
        if old.keys.len() > 10_000 {
            // Freeing half a million keys takes milliseconds: not under the lock.
            std::thread::spawn(move || drop(old));
        }
    }

    /// Forgets generations whose every entry is older than `horizon` (nothing that may
    /// still commit started before it).
    pub fn prune(&mut self, horizon: Timestamp) {
        if !self.previous.keys.is_empty() && self.previous.max_ts < horizon {
            self.drop_previous();
        }
        if !self.current.keys.is_empty() && self.current.max_ts < horizon {
            let cur = std::mem::take(&mut self.current);
            self.drop_previous();
            self.previous = cur;
            self.drop_previous();
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
    fn a_transaction_older_than_the_takeover_is_refused_even_without_conflicts() {
        let t = ConflictTable::new().taking_over_at(100);
        let keys = [k(1)];
        let at = |start_ts| Check {
            start_ts,
            written: &keys,
            ..Default::default()
        };
        let e = t.check(&at(99)).unwrap_err();
        assert!(e.to_string().contains("took over"), "{e}");
        assert!(
            t.check(&at(100)).is_ok(),
            "one that saw every earlier commit"
        );
        assert!(t.check(&at(150)).is_ok());
    }

    #[test]
    fn old_generations_are_forgotten_and_their_transactions_refused() {
        let mut t = ConflictTable::with_max(20);
        for i in 0..100u32 {
            t.record(i as u64 + 1, vec![k(i)], &[5]);
            assert!(t.len() <= 20, "{}", t.len());
        }
        // Recent keys are still checked...
        let recent = [k(99)];
        let c = Check {
            start_ts: 95,
            written: &recent,
            ..Default::default()
        };
        assert!(t.check(&c).is_err());
        // ...and a transaction older than what was forgotten is refused.
        let c = Check {
            start_ts: 40,
            ..Default::default()
        };
        assert!(t.check(&c).is_err());
        // Time-based pruning empties the table once everything is past the horizon.
        t.prune(1_000);
        assert!(t.is_empty());
        let c = Check {
            start_ts: 99,
            ..Default::default()
        };
        assert!(t.check(&c).is_err());
        let c = Check {
            start_ts: 100,
            ..Default::default()
        };
        assert!(t.check(&c).is_ok());
    }
}
