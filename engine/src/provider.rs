//! The DataFusion `TableProvider` over a storage node: a table as of one read timestamp,
//! overlaid with the reading transaction's own uncommitted writes.
//!
//! This is the one place weft's storage meets DataFusion's planner.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use arrow::array::{ArrayRef, BinaryArray, RecordBatch};
use arrow::datatypes::SchemaRef;
use async_trait::async_trait;
use datafusion::catalog::Session;
use datafusion::datasource::memory::MemorySourceConfig;
use datafusion::datasource::{TableProvider, TableType};
use datafusion::error::{DataFusionError, Result as DfResult};
use datafusion::logical_expr::Expr;
use datafusion::physical_plan::ExecutionPlan;

use crate::row::{rows_to_batch, Row};
use crate::schema::TableDef;
use crate::storage::StorageNode;
use crate::time::Timestamp;

/// A transaction's uncommitted writes to one table: key → new row, or `None` for a delete.
pub type Overlay = BTreeMap<Vec<u8>, Option<Arc<Row>>>;

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
}

impl WeftTable {
    pub fn new(
        def: Arc<TableDef>,
        storage: Arc<StorageNode>,
        read_ts: Timestamp,
        overlay: Option<Arc<Overlay>>,
        with_key: bool,
        defaults: HashMap<String, Expr>,
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
        }
    }

    /// The visible rows: storage at `read_ts` merged with the overlay, in key order.
    pub async fn visible_rows(&self) -> crate::EngineResult<Vec<(Vec<u8>, Arc<Row>)>> {
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

    async fn scan(
        &self,
        _state: &dyn Session,
        projection: Option<&Vec<usize>>,
        _filters: &[Expr],
        _limit: Option<usize>,
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        let rows = self
            .visible_rows()
            .await
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
