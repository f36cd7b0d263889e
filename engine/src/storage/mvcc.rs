//! The MVCC version store: for every key, its versions in commit-timestamp order.
//!
//! Pure data structure, no I/O: the storage node wraps it with locking, waiting and
//! persistence. Invariant: versions of a key are strictly increasing in timestamp, and a
//! read at `ts` returns the newest version `<= ts`, or nothing if that version is a delete.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use arrow::datatypes::SchemaRef;

use crate::record::CommitRecord;
use crate::row::{row_bytes, Row};
use crate::time::Timestamp;

#[derive(Debug, Clone)]
pub struct Version {
    pub ts: Timestamp,
    /// `None` is a delete (tombstone).
    pub row: Option<Arc<Row>>,
}

#[derive(Debug, Default)]
pub struct TableVersions {
    pub schema: Option<SchemaRef>,
    pub keys: BTreeMap<Vec<u8>, Vec<Version>>,
}

#[derive(Debug, Default)]
pub struct Mvcc {
    pub tables: HashMap<u64, TableVersions>,
    /// Approximate bytes held, for flush decisions.
    pub bytes: usize,
}

/// The visible version of a chain at `ts`.
fn visible(chain: &[Version], ts: Timestamp) -> Option<&Version> {
    // Chains are short and newest reads are the common case: search from the end.
    chain.iter().rev().find(|v| v.ts <= ts)
}

impl Mvcc {
    /// Applies one commit. Commits must arrive in timestamp order for each key.
    pub fn apply(&mut self, rec: &CommitRecord) {
        for tw in &rec.tables {
            let table = self.tables.entry(tw.table_id).or_default();
            table.schema = Some(tw.schema.clone());
            for (key, row) in tw.keys.iter().zip(&tw.rows) {
                self.bytes += key.len() + 16 + row.as_ref().map(|r| row_bytes(r)).unwrap_or(0);
                let chain = table.keys.entry(key.clone()).or_default();
                if let Some(last) = chain.last() {
                    // Violating this would make a read return a version that is not the newest
                    // one <= read_ts: the crossbar promises timestamp order.
                    assert!(
                        last.ts < rec.commit_ts,
                        "version applied out of order: {} after {}",
                        rec.commit_ts,
                        last.ts
                    );
                }
                chain.push(Version {
                    ts: rec.commit_ts,
                    row: row.clone(),
                });
            }
        }
    }

    pub fn get(&self, table_id: u64, key: &[u8], ts: Timestamp) -> Option<Arc<Row>> {
        let chain = self.tables.get(&table_id)?.keys.get(key)?;
        visible(chain, ts)?.row.clone()
    }

    /// The newest version of `key` with `ts <= read_ts` held here (a tombstone included):
    /// `None` means the memtable knows nothing of the key at that time.
    pub fn version(&self, table_id: u64, key: &[u8], ts: Timestamp) -> Option<Version> {
        let chain = self.tables.get(&table_id)?.keys.get(key)?;
        visible(chain, ts).cloned()
    }

    /// Per key in `[lo, hi)`, the newest version `<= ts` (tombstones included), keys
    /// ascending: the memtable's part of a scan.
    pub fn snapshot(
        &self,
        table_id: u64,
        ts: Timestamp,
        lo: Option<&[u8]>,
        hi: Option<&[u8]>,
    ) -> Vec<(Vec<u8>, Version)> {
        use std::ops::Bound;
        let Some(table) = self.tables.get(&table_id) else {
            return Vec::new();
        };
        let lower = lo.map_or(Bound::Unbounded, |l| Bound::Included(l.to_vec()));
        let upper = hi.map_or(Bound::Unbounded, |h| Bound::Excluded(h.to_vec()));
        if let (Some(l), Some(h)) = (lo, hi) {
            if l >= h {
                return Vec::new();
            }
        }
        table
            .keys
            .range((lower, upper))
            .filter_map(|(k, chain)| visible(chain, ts).map(|v| (k.clone(), v.clone())))
            .collect()
    }

    /// Every live row of a table at `ts`, in key order.
    pub fn scan(&self, table_id: u64, ts: Timestamp) -> Vec<(Vec<u8>, Arc<Row>)> {
        let Some(table) = self.tables.get(&table_id) else {
            return Vec::new();
        };
        table
            .keys
            .iter()
            .filter_map(|(k, chain)| {
                visible(chain, ts)
                    .and_then(|v| v.row.clone())
                    .map(|r| (k.clone(), r))
            })
            .collect()
    }

    /// The versions with `lo < ts <= hi`, per table, keys ascending and versions newest
    /// first: the content of a flush.
    pub fn versions_between(&self, lo: Timestamp, hi: Timestamp) -> Vec<FlushTable> {
        let mut out = Vec::new();
        for (&table_id, table) in &self.tables {
            let Some(schema) = table.schema.clone() else {
                continue;
            };
            let mut versions = Vec::new();
            for (k, chain) in &table.keys {
                for v in chain.iter().rev().filter(|v| v.ts > lo && v.ts <= hi) {
                    versions.push((k.clone(), v.clone()));
                }
            }
            if !versions.is_empty() {
                out.push((table_id, schema, versions));
            }
        }
        out.sort_by_key(|(id, _, _)| *id);
        out
    }
}

/// One table's part of a flush: table id, schema, and `(key, version)` pairs, keys ascending
/// and versions newest first.
pub type FlushTable = (u64, SchemaRef, Vec<(Vec<u8>, Version)>);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::TableWrites;
    use arrow::datatypes::{DataType, Field, Schema};
    use datafusion::scalar::ScalarValue;
    use proptest::prelude::*;
    use std::collections::BTreeMap as Oracle;

    fn schema() -> SchemaRef {
        Arc::new(Schema::new(vec![Field::new("v", DataType::Int64, true)]))
    }

    fn rec(ts: u64, key: u8, val: Option<i64>) -> CommitRecord {
        CommitRecord {
            commit_ts: ts,
            tables: vec![TableWrites {
                table_id: 7,
                schema: schema(),
                keys: vec![vec![key]],
                rows: vec![val.map(|v| Arc::new(vec![ScalarValue::Int64(Some(v))]))],
            }],
        }
    }

    proptest! {
        /// Random puts and deletes, then reads at random timestamps, against a map of
        /// full histories.
        #[test]
        fn reads_match_oracle(ops in proptest::collection::vec((0u8..8, proptest::option::of(0i64..100)), 1..60),
                              reads in proptest::collection::vec((0u64..70, 0u8..8), 1..30)) {
            let mut m = Mvcc::default();
            let mut history: Oracle<u8, Vec<(u64, Option<i64>)>> = Oracle::new();
            for (i, (k, v)) in ops.iter().enumerate() {
                let ts = i as u64 + 1;
                m.apply(&rec(ts, *k, *v));
                history.entry(*k).or_default().push((ts, *v));
            }
            for (ts, k) in reads {
                let expect = history.get(&k).and_then(|h| h.iter().rev().find(|(t, _)| *t <= ts)).and_then(|(_, v)| *v);
                let got = m.get(7, &[k], ts).map(|r| match &r[0] { ScalarValue::Int64(Some(v)) => *v, _ => unreachable!() });
                prop_assert_eq!(expect, got);
                let scanned = m.scan(7, ts).into_iter().find(|(key, _)| key == &vec![k]).is_some();
                prop_assert_eq!(expect.is_some(), scanned);
            }
        }
    }

    #[test]
    #[should_panic(expected = "out of order")]
    fn out_of_order_apply_is_refused() {
        let mut m = Mvcc::default();
        m.apply(&rec(5, 1, Some(1)));
        m.apply(&rec(4, 1, Some(2)));
    }
}
