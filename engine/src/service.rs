//! What a frontend asks of storage, as a trait: the storage node of this process
//! ([`StorageNode`]) answers it in place, and a storage node of another process answers it
//! over RPC (the `weft-rpc` crate). Every read names its timestamp and waits, where it is
//! answered, until storage has applied every commit at or below it.

use std::sync::Arc;

use arrow::datatypes::SchemaRef;
use async_trait::async_trait;
use datafusion::physical_plan::ExecutionPlan;

use crate::error::EngineResult;
use crate::ownership::Lease;
use crate::row::Row;
use crate::storage::scan::ScanRequest;
use crate::storage::{ReadPin, StorageNode};
use crate::time::Timestamp;

/// Rows by key: `None` where no live row has the key.
pub type KeyedRows = Vec<(Vec<u8>, Arc<Row>)>;

#[async_trait]
pub trait StorageService: Send + Sync + std::fmt::Debug + 'static {
    /// The row with `key` in `table_id` as of `ts`.
    async fn get(&self, table_id: u64, key: &[u8], ts: Timestamp)
        -> EngineResult<Option<Arc<Row>>>;

    /// [`StorageService::get`] of many keys at one timestamp, in the keys' order.
    async fn get_many(
        &self,
        table_id: u64,
        keys: &[&[u8]],
        ts: Timestamp,
    ) -> EngineResult<Vec<Option<Arc<Row>>>>;

    /// The live rows with keys in `[lo, hi)` as of `ts`, in key order; `None` when the
    /// range holds more than `rows_max` stored rows (a scan is then the better read).
    async fn range_get(
        &self,
        table_id: u64,
        range: (&[u8], Option<&[u8]>),
        ts: Timestamp,
        rows_max: usize,
    ) -> EngineResult<Option<KeyedRows>>;

    /// A scan as a DataFusion plan. `key_columns`: the user columns the table's keys
    /// encode, in key order (a scan may then offer its rows in key order).
    async fn plan_scan(
        &self,
        req: ScanRequest,
        key_columns: Vec<usize>,
    ) -> EngineResult<Arc<dyn ExecutionPlan>>;

    /// Every live row of `table_id` (whose columns are `schema`) as of `ts`, in key order.
    async fn scan(
        &self,
        table_id: u64,
        schema: SchemaRef,
        ts: Timestamp,
    ) -> EngineResult<KeyedRows>;

    /// The timestamp of the newest commit at or below `ts` that wrote `table_id` (what
    /// catalog caches are keyed by).
    async fn written_ts(&self, table_id: u64, ts: Timestamp) -> EngineResult<Timestamp>;

    /// Reads below this timestamp are refused.
    fn horizon_ts(&self) -> Timestamp;

    /// Holds `ts` readable while the guard lives (a transaction's read timestamp).
    fn pin(&self, ts: Timestamp) -> ReadPin;

    /// Stored bytes of segments by table id.
    async fn segment_bytes(&self) -> EngineResult<Vec<(u64, u64)>>;

    /// The lease under which answers are given: sessions end when it is fenced.
    fn lease(&self) -> Arc<Lease>;
}

#[async_trait]
impl StorageService for Arc<StorageNode> {
    async fn get(
        &self,
        table_id: u64,
        key: &[u8],
        ts: Timestamp,
    ) -> EngineResult<Option<Arc<Row>>> {
        StorageNode::get(self, table_id, key, ts).await
    }

    async fn get_many(
        &self,
        table_id: u64,
        keys: &[&[u8]],
        ts: Timestamp,
    ) -> EngineResult<Vec<Option<Arc<Row>>>> {
        StorageNode::get_many(self, table_id, keys, ts).await
    }

    async fn range_get(
        &self,
        table_id: u64,
        range: (&[u8], Option<&[u8]>),
        ts: Timestamp,
        rows_max: usize,
    ) -> EngineResult<Option<KeyedRows>> {
        StorageNode::range_get(self, table_id, range, ts, rows_max).await
    }

    async fn plan_scan(
        &self,
        req: ScanRequest,
        key_columns: Vec<usize>,
    ) -> EngineResult<Arc<dyn ExecutionPlan>> {
        Ok(Arc::new(
            StorageNode::plan_scan(self, req)
                .await?
                .with_key_columns(key_columns),
        ))
    }

    async fn scan(
        &self,
        table_id: u64,
        schema: SchemaRef,
        ts: Timestamp,
    ) -> EngineResult<KeyedRows> {
        StorageNode::scan(self, table_id, schema, ts).await
    }

    async fn written_ts(&self, table_id: u64, ts: Timestamp) -> EngineResult<Timestamp> {
        StorageNode::written_ts(self, table_id, ts).await
    }

    fn horizon_ts(&self) -> Timestamp {
        StorageNode::horizon_ts(self)
    }

    fn pin(&self, ts: Timestamp) -> ReadPin {
        StorageNode::pin(self, ts)
    }

    async fn segment_bytes(&self) -> EngineResult<Vec<(u64, u64)>> {
        let manifest = self.manifest().await;
        let mut out: std::collections::BTreeMap<u64, u64> = Default::default();
        for s in &manifest.segments {
            *out.entry(s.table_id).or_default() += s.bytes;
        }
        Ok(out.into_iter().collect())
    }

    fn lease(&self) -> Arc<Lease> {
        StorageNode::lease(self).clone()
    }
}
