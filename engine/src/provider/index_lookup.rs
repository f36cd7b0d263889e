//! Secondary-index lookups: when the filters pin every column of a complete index to
//! constants, the scan reads the index's entries for those values (stored ones at the
//! read timestamp, and the transaction's own) and then the rows by primary key, instead
//! of scanning the table.
//!
//! At SERIALIZABLE the read is recorded on the index as well as on the rows found: the
//! exact entry key for a unique index's values, the whole index otherwise, so that a
//! concurrent insert of a matching row conflicts like a phantom.

use std::sync::Arc;

use arrow::array::{Array, BinaryArray};
use datafusion::catalog::Session;
use datafusion::error::{DataFusionError, Result as DfResult};
use datafusion::logical_expr::Expr;

use super::{combinations, prefix_successor, ReadSpan, WeftTable};
use crate::index::{index_schema, IndexDef};
use crate::storage::scan::{OutColumn, ScanKind, ScanRequest};

impl WeftTable {
    /// The complete indexes the planner may read.
    fn usable_indexes(&self) -> impl Iterator<Item = &IndexDef> {
        self.def
            .indexes
            .iter()
            .filter(|i| i.valid && i.predicate.is_none())
    }

    /// Whether `filter` pins a column that some usable index keys on.
    pub(super) fn pins_indexed_column(&self, filter: &Expr) -> bool {
        self.column_constraint(filter, |c| {
            self.usable_indexes().any(|i| i.columns.contains(&c))
        })
        .is_some()
    }

    /// The first usable index whose every column the filters pin, and the entry prefixes
    /// of the pinned values (one per combination).
    pub(super) fn index_prefixes(&self, filters: &[Expr]) -> Option<(&IndexDef, Vec<Vec<u8>>)> {
        for idx in self.usable_indexes() {
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

    /// The primary keys of the rows whose entries start with one of `prefixes`.
    pub(super) async fn index_lookup(
        &self,
        state: &dyn Session,
        idx: &IndexDef,
        prefixes: Vec<Vec<u8>>,
    ) -> DfResult<Vec<Vec<u8>>> {
        let overlay = self.index_overlays.get(&idx.id);
        let mut keys = Vec::new();
        for prefix in prefixes {
            let hi = prefix_successor(&prefix);
            if let Some(r) = &self.reads {
                // A unique index's entry for non-NULL values is the prefix itself.
                let span = if idx.unique {
                    ReadSpan::Key(prefix.clone())
                } else {
                    ReadSpan::Table
                };
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
            let plan = self
                .storage
                .plan_scan(ScanRequest {
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
                })
                .await
                .map_err(|e| DataFusionError::External(Box::new(e)))?;
            let batches =
                datafusion::physical_plan::collect(Arc::new(plan), state.task_ctx()).await?;
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
            }
        }
        keys.sort();
        keys.dedup();
        Ok(keys)
    }
}
