//! Secondary-index lookups: when the filters pin every column of a complete index to
//! constants, the scan reads the index's entries for those values (stored ones at the
//! read timestamp, and the transaction's own) and then the rows by primary key, instead
//! of scanning the table. When they bound its first column instead (`=`, `<`, `<=`, `>`,
//! `>=`, `BETWEEN`), the scan reads the entries of that range, unless there are more than
//! [`RANGE_KEYS_MAX`] of them: then it scans the table (weft keeps no statistics to
//! guess a range's size before reading it; the entries are small, the rows are not).
//!
//! At SERIALIZABLE the read is recorded on the index as well as on the rows found: the
//! exact entry key for a unique index's values, the whole index otherwise, so that a
//! concurrent insert of a matching row conflicts like a phantom.

use std::sync::Arc;

use arrow::array::{Array, BinaryArray};
use datafusion::catalog::Session;
use datafusion::error::{DataFusionError, Result as DfResult};
use datafusion::logical_expr::Expr;

use datafusion::logical_expr::Operator;

use super::{combinations, implied, ReadSpan, WeftTable};
use crate::index::{index_schema, non_null_entries, IndexDef};
use crate::key::prefix_successor;

/// Most entries of an index range a scan reads rows for one by one; past it, the scan
/// reads the table.
pub const RANGE_KEYS_MAX: usize = 10_000;

/// Entries `[lo, hi)` of an index, and what a SERIALIZABLE read of them records.
type EntryRange = (Vec<u8>, Option<Vec<u8>>, ReadSpan);
use crate::storage::scan::{OutColumn, ScanKind, ScanRequest};
use crate::storage::SHORT_RANGE_ROWS_MAX;

impl WeftTable {
    /// The indexes the planner may read under filters whose conjuncts are `implied`
    /// ([`implied::filter_texts`]): the complete ones, and the partial ones whose predicate
    /// the filters imply. Partial indexes come first: they hold fewer entries.
    fn usable_indexes<'a>(&'a self, implied: &'a [String]) -> impl Iterator<Item = &'a IndexDef> {
        let partial = self.def.indexes.iter().filter(move |i| {
            i.valid
                && i.predicate
                    .as_deref()
                    .is_some_and(|p| implied::implies(implied, p))
        });
        let complete = self
            .def
            .indexes
            .iter()
            .filter(|i| i.valid && i.predicate.is_none());
        partial.chain(complete)
    }

    /// The conjuncts of `filters` as [`WeftTable::usable_indexes`] compares them with
    /// partial indexes' predicates (nothing to compute when the table has none).
    pub(super) fn implied<'a>(&self, filters: impl IntoIterator<Item = &'a Expr>) -> Vec<String> {
        if self.def.indexes.iter().any(|i| i.predicate.is_some()) {
            implied::filter_texts(filters)
        } else {
            Vec::new()
        }
    }

    /// Whether `filter` is part of a partial index's predicate: the scan must be given it
    /// to see that the index applies.
    pub(super) fn in_index_predicate(&self, filter: &Expr) -> bool {
        self.def
            .indexes
            .iter()
            .filter_map(|i| i.predicate.as_deref())
            .any(|p| implied::part_of(filter, p))
    }

    /// Whether `filter` pins a column that some usable index keys on.
    pub(super) fn pins_indexed_column(&self, filter: &Expr, implied: &[String]) -> bool {
        self.column_constraint(filter, &|c| {
            self.usable_indexes(implied).any(|i| i.columns.contains(&c))
        })
        .is_some()
    }

    /// The first usable index whose every column the filters pin, and the entry prefixes
    /// of the pinned values (one per combination).
    pub(super) fn index_prefixes<'a>(
        &'a self,
        filters: &[Expr],
        implied: &'a [String],
    ) -> Option<(&'a IndexDef, Vec<Vec<u8>>)> {
        for idx in self.usable_indexes(implied) {
            let pinned = self.pinned(filters, |c| idx.columns.contains(&c));
            let Some(combos) = combinations(&pinned, &idx.columns) else {
                continue;
            };
            let mut prefixes: Vec<Vec<u8>> = match combos.iter().map(|c| idx.prefix(c)).collect() {
                Ok(p) => p,
                Err(_) => continue,
            };
            prefixes.sort();
            prefixes.dedup();
            return Some((idx, prefixes));
        }
        None
    }

    /// Whether `filter` bounds the first column of some usable index.
    pub(super) fn bounds_indexed_column(&self, filter: &Expr, implied: &[String]) -> bool {
        self.usable_indexes(implied)
            .any(|i| !i.is_descending(0) && !self.column_bounds(i.columns[0], filter).is_empty())
    }

    /// The first usable index whose first column the filters bound, and the range of its
    /// entries they allow (never the NULLs).
    fn index_range<'a>(
        &'a self,
        filters: &[Expr],
        implied: &'a [String],
    ) -> Option<(&'a IndexDef, Vec<u8>, Vec<u8>)> {
        // A descending first column would turn the bounds around: such an index serves
        // equalities only.
        for idx in self.usable_indexes(implied).filter(|i| !i.is_descending(0)) {
            let (mut lo, mut hi) = non_null_entries();
            let mut bounded = false;
            for f in filters {
                for (op, v) in self.column_bounds(idx.columns[0], f) {
                    let Ok(p) = idx.prefix(&[&v]) else { continue };
                    let (l, h) = match op {
                        Operator::Gt => (prefix_successor(&p), None),
                        Operator::GtEq => (Some(p), None),
                        Operator::Lt => (None, Some(p)),
                        Operator::LtEq => (None, prefix_successor(&p)),
                        Operator::Eq => (Some(p.clone()), prefix_successor(&p)),
                        _ => (None, None),
                    };
                    if let Some(l) = l {
                        bounded = true;
                        lo = lo.max(l);
                    }
                    if let Some(h) = h {
                        bounded = true;
                        hi = hi.min(h);
                    }
                }
            }
            if bounded {
                return Some((idx, lo, hi));
            }
        }
        None
    }

    /// The index a range of the filters reads, and the primary keys of its entries there;
    /// `None` when no index applies or the range holds more than [`RANGE_KEYS_MAX`].
    pub(super) async fn index_range_keys(
        &self,
        state: &dyn Session,
        filters: &[Expr],
        implied: &[String],
    ) -> DfResult<Option<(String, Vec<Vec<u8>>)>> {
        let Some((idx, lo, hi)) = self.index_range(filters, implied) else {
            return Ok(None);
        };
        if lo >= hi {
            return Ok(Some((idx.name.clone(), Vec::new())));
        }
        let keys = self
            .read_entries(
                state,
                idx,
                vec![(lo, Some(hi), ReadSpan::Table)],
                RANGE_KEYS_MAX,
            )
            .await?;
        Ok(keys.map(|k| (idx.name.clone(), k)))
    }

    /// The primary keys of the rows whose entries start with one of `prefixes`.
    pub(super) async fn index_lookup(
        &self,
        state: &dyn Session,
        idx: &IndexDef,
        prefixes: Vec<Vec<u8>>,
    ) -> DfResult<Vec<Vec<u8>>> {
        let ranges = prefixes
            .into_iter()
            .map(|prefix| {
                let hi = prefix_successor(&prefix);
                // A unique index's entry for non-NULL values is the prefix itself.
                let span = if idx.unique {
                    ReadSpan::Key(prefix.clone())
                } else {
                    ReadSpan::Table
                };
                (prefix, hi, span)
            })
            .collect();
        Ok(self
            .read_entries(state, idx, ranges, usize::MAX)
            .await?
            .unwrap_or_default())
    }

    /// The primary keys of the entries in `ranges` (stored ones at the read timestamp, and
    /// the transaction's own), sorted; `None` once there are more than `max`.
    async fn read_entries(
        &self,
        state: &dyn Session,
        idx: &IndexDef,
        ranges: Vec<EntryRange>,
        max: usize,
    ) -> DfResult<Option<Vec<Vec<u8>>>> {
        let overlay = self.index_overlays.get(&idx.id);
        let mut keys = Vec::new();
        for (prefix, hi, span) in ranges {
            if let Some(r) = &self.reads {
                r.record(idx.id, span);
            }
            let own: Vec<_> = overlay
                .map(|o| {
                    o.iter()
                        .filter(|(k, _)| **k >= prefix && hi.as_ref().is_none_or(|h| *k < h))
                        .map(|(k, v)| (k.clone(), v.clone()))
                        .collect()
                })
                .unwrap_or_default();
            // A short range is read as point lookups read, without planning a scan.
            let short = self
                .storage
                .range_get(
                    idx.id,
                    (&prefix, hi.as_deref()),
                    self.read_ts,
                    SHORT_RANGE_ROWS_MAX,
                )
                .await
                .map_err(|e| DataFusionError::External(Box::new(e)))?;
            if let Some(stored) = short {
                let mut found: std::collections::BTreeMap<Vec<u8>, Option<Arc<crate::row::Row>>> =
                    stored.into_iter().map(|(k, e)| (k, Some(e))).collect();
                found.extend(own);
                for entry in found.into_values().flatten() {
                    if let Some(datafusion::scalar::ScalarValue::Binary(Some(pk))) = entry.first() {
                        keys.push(pk.clone());
                    }
                }
                if keys.len() > max {
                    return Ok(None);
                }
                continue;
            }
            let plan = self
                .storage
                .plan_scan(
                    ScanRequest {
                        table_id: idx.id,
                        table_name: idx.name.clone(),
                        read_ts: self.read_ts,
                        user_schema: index_schema(),
                        kind: ScanKind::Range {
                            lo: Some(prefix),
                            hi,
                        },
                        columns: vec![OutColumn::User(0)],
                        overlay: own,
                        partitions: 1,
                    },
                    Vec::new(),
                )
                .await
                .map_err(|e| DataFusionError::External(Box::new(e)))?;
            let batches = datafusion::physical_plan::collect(plan, state.task_ctx()).await?;
            for b in batches {
                let col = b
                    .column(0)
                    .as_any()
                    .downcast_ref::<BinaryArray>()
                    .ok_or_else(|| DataFusionError::Internal("index entry is not binary".into()))?;
                for i in 0..col.len() {
                    if !col.is_null(i) {
                        keys.push(col.value(i).to_vec());
                    }
                }
                if keys.len() > max {
                    return Ok(None);
                }
            }
        }
        keys.sort();
        keys.dedup();
        Ok(Some(keys))
    }
}
