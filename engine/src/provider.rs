//! The DataFusion `TableProvider` over a storage node: a table as of one read timestamp,
//! overlaid with the reading transaction's own uncommitted writes.
//!
//! This is the one place weft's storage meets DataFusion's planner.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex};

use arrow::array::{ArrayRef, BinaryArray, RecordBatch};
use arrow::datatypes::SchemaRef;
use async_trait::async_trait;
use datafusion::catalog::Session;
use datafusion::datasource::memory::MemorySourceConfig;
use datafusion::datasource::{TableProvider, TableType};
use datafusion::error::{DataFusionError, Result as DfResult};
use datafusion::logical_expr::{BinaryExpr, Expr, Operator, TableProviderFilterPushDown};
use datafusion::physical_plan::ExecutionPlan;
use datafusion::scalar::ScalarValue;

use crate::key::encode_key;
use crate::row::{rows_to_batch, Row};
use crate::schema::TableDef;
use crate::storage::StorageNode;
use crate::time::Timestamp;

/// A transaction's uncommitted writes to one table: key → new row, or `None` for a delete.
pub type Overlay = BTreeMap<Vec<u8>, Option<Arc<Row>>>;

/// What one scan read, for SERIALIZABLE read-set validation: the whole table (a predicate
/// over it), or one key (a primary-key lookup, whether or not a row was there).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ReadSpan {
    Table,
    Key(Vec<u8>),
}

/// The reads of one transaction, collected by the scans it runs.
#[derive(Debug, Default)]
pub struct ReadLog(Mutex<BTreeSet<(u64, ReadSpan)>>);

impl ReadLog {
    pub fn record(&self, table_id: u64, span: ReadSpan) {
        let mut g = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if span != ReadSpan::Table && g.contains(&(table_id, ReadSpan::Table)) {
            return;
        }
        g.insert((table_id, span));
    }

    pub fn take(&self) -> Vec<(u64, ReadSpan)> {
        std::mem::take(&mut *self.0.lock().unwrap_or_else(|e| e.into_inner()))
            .into_iter()
            .collect()
    }

    pub fn len(&self) -> usize {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[derive(Debug)]
pub struct WeftTable {
    pub def: Arc<TableDef>,
    storage: Arc<StorageNode>,
    read_ts: Timestamp,
    overlay: Option<Arc<Overlay>>,
    /// Exposes the hidden `_weft_key` column last (for UPDATE and DELETE plans).
    with_key: bool,
    schema: SchemaRef,
    defaults: HashMap<String, Expr>,
    reads: Option<Arc<ReadLog>>,
}

impl WeftTable {
    pub fn new(
        def: Arc<TableDef>,
        storage: Arc<StorageNode>,
        read_ts: Timestamp,
        overlay: Option<Arc<Overlay>>,
        with_key: bool,
        defaults: HashMap<String, Expr>,
        reads: Option<Arc<ReadLog>>,
    ) -> WeftTable {
        let schema = if with_key {
            def.arrow_schema_with_key()
        } else {
            def.arrow_schema()
        };
        // Columns are declared nullable to DataFusion: weft checks NOT NULL itself, so the
        // error is PostgreSQL's 23502 naming the column, not a planner error.
        let schema = Arc::new(arrow::datatypes::Schema::new(
            schema
                .fields()
                .iter()
                .map(|f| f.as_ref().clone().with_nullable(true))
                .collect::<Vec<_>>(),
        ));
        WeftTable {
            def,
            storage,
            read_ts,
            overlay,
            with_key,
            schema,
            defaults,
            reads,
        }
    }

    fn record(&self, span: ReadSpan) {
        if let Some(r) = &self.reads {
            r.record(self.def.id, span);
        }
    }

    /// If `filter` pins a primary-key column to constants (`pk = c`, `c = pk`,
    /// `pk IN (c, ...)`), the column's index and the constants.
    fn key_constraint(&self, filter: &Expr) -> Option<(usize, Vec<ScalarValue>)> {
        let pk_col = |e: &Expr| -> Option<usize> {
            let Expr::Column(c) = e else { return None };
            let i = self.def.column_index(&c.name)?;
            self.def.primary_key.contains(&i).then_some(i)
        };
        let lit_of = |e: &Expr, col: usize| -> Option<ScalarValue> {
            let Expr::Literal(v, _) = e else { return None };
            let want = self.def.columns[col].ty.arrow_type();
            (v.data_type() == want && !v.is_null()).then(|| v.clone())
        };
        match filter {
            Expr::BinaryExpr(BinaryExpr {
                left,
                op: Operator::Eq,
                right,
            }) => {
                if let Some(i) = pk_col(left) {
                    return Some((i, vec![lit_of(right, i)?]));
                }
                let i = pk_col(right)?;
                Some((i, vec![lit_of(left, i)?]))
            }
            Expr::InList(l) if !l.negated => {
                let i = pk_col(&l.expr)?;
                let vals: Option<Vec<ScalarValue>> = l.list.iter().map(|e| lit_of(e, i)).collect();
                Some((i, vals?))
            }
            _ => None,
        }
    }

    /// The keys that `filters` restrict the scan to, when they pin every primary-key
    /// column (one column may take several values).
    fn point_keys(&self, filters: &[Expr]) -> Option<Vec<Vec<u8>>> {
        if self.def.primary_key.is_empty() {
            return None;
        }
        let mut pinned: HashMap<usize, Vec<ScalarValue>> = HashMap::new();
        for f in filters {
            if let Some((i, vals)) = self.key_constraint(f) {
                match pinned.get(&i) {
                    // Two constraints on one column: keep the narrower.
                    Some(old) if old.len() <= vals.len() => {}
                    _ => {
                        pinned.insert(i, vals);
                    }
                }
            }
        }
        let mut keys: Vec<Vec<&ScalarValue>> = vec![Vec::new()];
        for i in &self.def.primary_key {
            let vals = pinned.get(i)?;
            keys = keys
                .into_iter()
                .flat_map(|prefix| {
                    vals.iter().map(move |v| {
                        let mut k = prefix.clone();
                        k.push(v);
                        k
                    })
                })
                .collect();
            if keys.len() > 1024 {
                return None;
            }
        }
        let mut out: Vec<Vec<u8>> = keys
            .iter()
            .map(|k| encode_key(k))
            .collect::<Result<_, _>>()
            .ok()?;
        out.sort();
        out.dedup();
        Some(out)
    }

    /// The visible rows with the given keys, in key order.
    async fn rows_at(&self, keys: &[Vec<u8>]) -> crate::EngineResult<Vec<(Vec<u8>, Arc<Row>)>> {
        let mut out = Vec::with_capacity(keys.len());
        for k in keys {
            self.record(ReadSpan::Key(k.clone()));
            let own = self.overlay.as_ref().and_then(|o| o.get(k).cloned());
            let row = match own {
                Some(own) => own,
                None => self.storage.get(self.def.id, k, self.read_ts).await?,
            };
            if let Some(r) = row {
                out.push((k.clone(), r));
            }
        }
        Ok(out)
    }

    /// The visible rows: storage at `read_ts` merged with the overlay, in key order.
    pub async fn visible_rows(&self) -> crate::EngineResult<Vec<(Vec<u8>, Arc<Row>)>> {
        self.record(ReadSpan::Table);
        let stored = self.storage.scan(self.def.id, self.read_ts).await?;
        let Some(overlay) = self.overlay.as_ref().filter(|o| !o.is_empty()) else {
            return Ok(stored);
        };
        let mut merged: BTreeMap<Vec<u8>, Arc<Row>> = stored.into_iter().collect();
        for (k, v) in overlay.iter() {
            match v {
                Some(row) => {
                    merged.insert(k.clone(), row.clone());
                }
                None => {
                    merged.remove(k);
                }
            }
        }
        Ok(merged.into_iter().collect())
    }
}

#[async_trait]
impl TableProvider for WeftTable {
    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    fn table_type(&self) -> TableType {
        TableType::Base
    }

    fn get_column_default(&self, column: &str) -> Option<&Expr> {
        self.defaults.get(column)
    }

    /// Equality on primary-key columns is pushed down (inexactly: DataFusion still applies
    /// the filter) so that a scan pinned to keys becomes point lookups.
    fn supports_filters_pushdown(
        &self,
        filters: &[&Expr],
    ) -> DfResult<Vec<TableProviderFilterPushDown>> {
        Ok(filters
            .iter()
            .map(|f| match self.key_constraint(f) {
                Some(_) => TableProviderFilterPushDown::Inexact,
                None => TableProviderFilterPushDown::Unsupported,
            })
            .collect())
    }

    async fn scan(
        &self,
        _state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        _limit: Option<usize>,
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        let rows = match self.point_keys(filters) {
            Some(keys) => self.rows_at(&keys).await,
            None => self.visible_rows().await,
        }
        .map_err(|e| DataFusionError::External(Box::new(e)))?;
        let user_schema = Arc::new(arrow::datatypes::Schema::new(
            self.schema.fields()[..self.def.columns.len()].to_vec(),
        ));
        let refs: Vec<&Row> = rows.iter().map(|(_, r)| r.as_ref()).collect();
        let batch = rows_to_batch(&user_schema, &refs)
            .map_err(|e| DataFusionError::External(Box::new(e)))?;
        let batch = if self.with_key {
            let keys: ArrayRef =
                Arc::new(BinaryArray::from_iter_values(rows.iter().map(|(k, _)| k)));
            let mut cols = batch.columns().to_vec();
            cols.push(keys);
            RecordBatch::try_new(self.schema.clone(), cols)?
        } else {
            batch
        };
        Ok(MemorySourceConfig::try_new_exec(
            &[vec![batch]],
            self.schema.clone(),
            projection.cloned(),
        )?)
    }
}
