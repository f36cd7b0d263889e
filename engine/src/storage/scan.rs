//! Scans: the MVCC merge of a table's segments, its memtable and a transaction's own writes,
//! as one DataFusion execution plan.
//!
//! Each segment is read by DataFusion's Parquet reader (projection, and row-group and page
//! pruning on `_weft_key` and `_weft_ts`); the sorted streams are merged by `(_weft_key asc,
//! _weft_ts desc)`; then, per key, the first version `<= read_ts` is kept if it is not a
//! delete. Segments of one table hold disjoint timestamp ranges and the memtable holds only
//! versions newer than every segment, so the merge order is the version order.
//!
//! A scan pinned to primary keys does no scan at all: [`ScanKind::Points`] looks each key up
//! (memtable, then the newest segment whose key range holds it, reading only the pages whose
//! statistics may hold the key).

use std::fmt;
use std::sync::Arc;

use arrow::array::{ArrayRef, BooleanArray, RecordBatch, UInt64Array, UInt8Array};
use arrow::compute::kernels::cmp::{eq, lt_eq, neq};
use arrow::compute::SortOptions;
use arrow::compute::{and, filter_record_batch};
use arrow::datatypes::{Schema, SchemaRef};
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::datasource::listing::PartitionedFile;
use datafusion::datasource::physical_plan::{FileScanConfigBuilder, ParquetSource};
use datafusion::datasource::source::DataSourceExec;
use datafusion::error::{DataFusionError, Result as DfResult};
use datafusion::execution::memory_pool::MemoryConsumer;
use datafusion::execution::object_store::ObjectStoreUrl;
use datafusion::execution::TaskContext;
use datafusion::logical_expr::Operator;
use datafusion::physical_expr::expressions::{BinaryExpr, Column, Literal};
use datafusion::physical_expr::{
    EquivalenceProperties, LexOrdering, PhysicalExpr, PhysicalSortExpr,
};
use datafusion::physical_plan::execution_plan::{Boundedness, EmissionType};
use datafusion::physical_plan::metrics::{
    BaselineMetrics, Count, ExecutionPlanMetricsSet, MetricBuilder, MetricsSet,
};
use datafusion::physical_plan::sorts::streaming_merge::StreamingMergeBuilder;
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::{
    DisplayAs, DisplayFormatType, ExecutionPlan, Partitioning, PlanProperties,
    SendableRecordBatchStream,
};
use datafusion::scalar::ScalarValue;
use futures::{StreamExt, TryStreamExt};

use crate::error::EngineError;
use crate::record::{OP_DELETE, OP_PUT};
use crate::row::Row;
use crate::storage::mvcc::Version;
use crate::storage::segment::{
    file_schema, hex, system_columns, versions_batch, Segment, SYSTEM_COLUMNS,
};
use crate::storage::StorageNode;
use crate::time::Timestamp;

/// The smallest and largest key of a source, inclusive.
type KeyRange = (Vec<u8>, Vec<u8>);

/// The URL under which a storage node registers its object store with DataFusion.
pub const STORE_URL: &str = "weft://storage/";

/// One output column of a scan.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum OutColumn {
    /// The table's column `i`.
    User(usize),
    /// The encoded key (`_weft_key`).
    Key,
}

#[derive(Debug, Clone)]
pub enum ScanKind {
    /// Keys in `[lo, hi)` (`None`: unbounded).
    Range {
        lo: Option<Vec<u8>>,
        hi: Option<Vec<u8>>,
    },
    /// These keys only, ascending.
    Points(Vec<Vec<u8>>),
}

/// Everything a scan needs, captured when it is planned: the segments it reads are held
/// (and so not deleted) until it is dropped.
pub struct MvccScanExec {
    storage: Arc<StorageNode>,
    table_id: u64,
    table_name: String,
    read_ts: Timestamp,
    /// The table's columns as the scan reads them.
    user_schema: SchemaRef,
    kind: ScanKind,
    columns: Vec<OutColumn>,
    segments: Vec<Arc<Segment>>,
    segments_total: usize,
    /// Memtable versions (newest `<= read_ts` per key) overlaid with the transaction's own
    /// writes, keys ascending.
    recent: Vec<(Vec<u8>, Version)>,
    /// Key boundaries between partitions (a range scan over `splits.len() + 1` partitions,
    /// read in parallel).
    splits: Vec<Vec<u8>>,
    /// The user columns whose values the keys encode, in key order (empty when the keys
    /// are not the values of columns, or nobody said).
    key_columns: Vec<usize>,
    /// Offered in key order ([`MvccScanExec::in_key_order`]): shown by EXPLAIN.
    key_ordered: bool,
    schema: SchemaRef,
    properties: Arc<PlanProperties>,
    metrics: ExecutionPlanMetricsSet,
}

impl fmt::Debug for MvccScanExec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MvccScanExec")
            .field("table_id", &self.table_id)
            .finish()
    }
}

/// The parts of a scan decided by the caller (the table provider).
pub struct ScanRequest {
    pub table_id: u64,
    pub table_name: String,
    pub read_ts: Timestamp,
    pub user_schema: SchemaRef,
    pub kind: ScanKind,
    pub columns: Vec<OutColumn>,
    /// The transaction's own writes to the table: key → row, or `None` for a delete.
    pub overlay: Vec<(Vec<u8>, Option<Arc<Row>>)>,
    /// How many partitions a large range scan may be split into (by key).
    pub partitions: usize,
}

/// The schema of a scan's output: the columns `req` asks for, in its order.
pub fn scan_schema(req: &ScanRequest) -> SchemaRef {
    let fields: Vec<_> = req
        .columns
        .iter()
        .map(|c| match c {
            OutColumn::User(i) => req.user_schema.field(*i).clone(),
            OutColumn::Key => arrow::datatypes::Field::new(
                crate::schema::KEY_COLUMN,
                arrow::datatypes::DataType::Binary,
                false,
            ),
        })
        .collect();
    Arc::new(Schema::new(fields))
}

impl MvccScanExec {
    pub(crate) fn new(
        storage: Arc<StorageNode>,
        req: ScanRequest,
        segments: Vec<Arc<Segment>>,
        segments_total: usize,
        memtable: Vec<(Vec<u8>, Version)>,
        splits: Vec<Vec<u8>>,
    ) -> MvccScanExec {
        let schema = scan_schema(&req);
        // Own writes win over everything stored: they are newer than any commit.
        let mut recent = memtable;
        if !req.overlay.is_empty() {
            let mut merged: std::collections::BTreeMap<Vec<u8>, Version> =
                recent.into_iter().collect();
            for (k, row) in req.overlay {
                merged.insert(
                    k,
                    Version {
                        ts: Timestamp::MAX,
                        row,
                    },
                );
            }
            recent = merged.into_iter().collect();
        }
        let properties = Arc::new(PlanProperties::new(
            EquivalenceProperties::new(schema.clone()),
            Partitioning::UnknownPartitioning(splits.len() + 1),
            EmissionType::Incremental,
            Boundedness::Bounded,
        ));
        MvccScanExec {
            storage,
            table_id: req.table_id,
            table_name: req.table_name,
            read_ts: req.read_ts,
            user_schema: req.user_schema,
            kind: req.kind,
            columns: req.columns,
            segments,
            segments_total,
            recent,
            splits,
            key_columns: Vec::new(),
            key_ordered: false,
            schema,
            properties,
            metrics: ExecutionPlanMetricsSet::new(),
        }
    }

    /// What the planner may assume of the scan's size: an estimate of its rows (an upper
    /// bound, not a count), so that a scan of a few keys is neither split across threads
    /// nor joined as if it were large. Each partition of a split range gets its share.
    fn statistics(&self, partition: Option<usize>) -> datafusion::common::Statistics {
        let mut stats = datafusion::common::Statistics::new_unknown(&self.schema);
        let rows = self.row_estimate();
        stats.num_rows = datafusion::common::stats::Precision::Inexact(match partition {
            Some(_) => rows.div_ceil(self.splits.len() + 1),
            None => rows,
        });
        stats
    }

    /// At most how many rows the scan returns: its keys, or the keys the segments and the
    /// memtable hold in its range, or, for a single integer key, the width of the range.
    fn row_estimate(&self) -> usize {
        let (lo, hi) = match &self.kind {
            ScanKind::Points(keys) => return keys.len(),
            ScanKind::Range { lo, hi } => (lo.as_deref(), hi.as_deref()),
        };
        let stored: u64 = self
            .segments
            .iter()
            .filter(|s| s.may_hold_range(lo, hi))
            .map(|s| {
                if s.meta.keys > 0 {
                    s.meta.keys
                } else {
                    s.meta.versions
                }
            })
            .sum();
        let held = (stored as usize).saturating_add(self.recent.len());
        match self.integer_key_span(lo, hi) {
            Some(span) => held.min(span),
            None => held,
        }
    }

    /// How many values of a single integer key lie in `[lo, hi)`, read from the keys'
    /// encodings (fixed width, big-endian, order-preserving): `None` for other keys.
    fn integer_key_span(&self, lo: Option<&[u8]>, hi: Option<&[u8]>) -> Option<usize> {
        use arrow::datatypes::DataType as T;
        let [key_col] = self.key_columns.as_slice() else {
            return None;
        };
        let width = match self.user_schema.field(*key_col).data_type() {
            T::Int16 => 2,
            T::Int32 | T::Date32 => 4,
            T::Int64 | T::Timestamp(..) => 8,
            _ => return None,
        };
        let value = |k: &[u8]| {
            let mut b = [0u8; 8];
            let n = k.len().min(width);
            b[8 - width..8 - width + n].copy_from_slice(&k[..n]);
            u64::from_be_bytes(b)
        };
        let (lo, hi) = (lo?, hi?);
        // A bound longer than the key's width sorts after the value it starts with.
        let span = value(hi)
            .saturating_sub(value(lo))
            .saturating_add(u64::from(hi.len() > width));
        Some(usize::try_from(span).unwrap_or(usize::MAX))
    }

    /// Says which user columns the table's keys encode, in key order, so that the scan
    /// can offer its rows in that order ([`MvccScanExec::in_key_order`]).
    pub fn with_key_columns(mut self, key_columns: Vec<usize>) -> MvccScanExec {
        self.key_columns = key_columns;
        self
    }

    /// This range scan as one partition, whose rows come in key order, when `order`
    /// (output columns of the scan, and whether descending) asks for exactly that:
    /// ascending on the key columns, from the first, until every key column is named (what
    /// follows cannot change an order of unique keys). Only types whose key encoding sorts
    /// as DataFusion sorts their values qualify. `None` otherwise.
    pub fn in_key_order(&self, order: &[(usize, bool)]) -> Option<MvccScanExec> {
        use arrow::datatypes::DataType as T;
        if !matches!(self.kind, ScanKind::Range { .. }) || self.key_columns.is_empty() {
            return None;
        }
        if order.len() < self.key_columns.len() {
            return None;
        }
        for (&(col, descending), &key_col) in order.iter().zip(&self.key_columns) {
            if descending || self.columns.get(col) != Some(&OutColumn::User(key_col)) {
                return None;
            }
            if !matches!(
                self.user_schema.field(key_col).data_type(),
                T::Int16 | T::Int32 | T::Int64 | T::Utf8 | T::Date32 | T::Timestamp(..)
            ) {
                return None;
            }
        }
        let properties = Arc::new(PlanProperties::new(
            EquivalenceProperties::new(self.schema.clone()),
            Partitioning::UnknownPartitioning(1),
            EmissionType::Incremental,
            Boundedness::Bounded,
        ));
        Some(MvccScanExec {
            storage: self.storage.clone(),
            table_id: self.table_id,
            table_name: self.table_name.clone(),
            read_ts: self.read_ts,
            user_schema: self.user_schema.clone(),
            kind: self.kind.clone(),
            columns: self.columns.clone(),
            segments: self.segments.clone(),
            segments_total: self.segments_total,
            recent: self.recent.clone(),
            splits: Vec::new(),
            key_columns: self.key_columns.clone(),
            key_ordered: true,
            schema: self.schema.clone(),
            properties,
            metrics: ExecutionPlanMetricsSet::new(),
        })
    }

    /// The user columns the scan must read, ascending.
    fn needed_user_columns(&self) -> Vec<usize> {
        let mut v: Vec<usize> = self
            .columns
            .iter()
            .filter_map(|c| match c {
                OutColumn::User(i) => Some(*i),
                OutColumn::Key => None,
            })
            .collect();
        v.sort();
        v.dedup();
        v
    }
}

impl DisplayAs for MvccScanExec {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut fmt::Formatter) -> fmt::Result {
        write!(
            f,
            "WeftScan: table={} read_ts={} ",
            self.table_name, self.read_ts
        )?;
        match &self.kind {
            ScanKind::Points(keys) => write!(f, "point_lookup keys={}", keys.len())?,
            ScanKind::Range { lo, hi } => {
                write!(f, "range=")?;
                match lo {
                    Some(l) => write!(f, "[{}", hex(l))?,
                    None => write!(f, "(-inf")?,
                }
                match hi {
                    Some(h) => write!(f, "..{})", hex(h))?,
                    None => write!(f, "..+inf)")?,
                }
                if self.key_ordered {
                    write!(f, " in_key_order")?;
                }
            }
        }
        write!(
            f,
            " segments={}/{} recent_versions={}",
            self.segments.len(),
            self.segments_total,
            self.recent.len()
        )?;
        if !self.splits.is_empty() {
            write!(f, " partitions={}", self.splits.len() + 1)?;
        }
        Ok(())
    }
}

impl ExecutionPlan for MvccScanExec {
    fn name(&self) -> &str {
        "WeftScan"
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        &self.properties
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        vec![]
    }

    fn apply_expressions(
        &self,
        _f: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> DfResult<TreeNodeRecursion>,
    ) -> DfResult<TreeNodeRecursion> {
        Ok(TreeNodeRecursion::Continue)
    }

    fn with_new_children(
        self: Arc<Self>,
        _children: Vec<Arc<dyn ExecutionPlan>>,
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        Ok(self)
    }

    fn metrics(&self) -> Option<MetricsSet> {
        Some(self.metrics.clone_inner())
    }

    fn statistics_from_inputs(
        &self,
        _input_stats: &[Arc<datafusion::common::Statistics>],
        args: &datafusion::physical_plan::statistics::StatisticsArgs,
    ) -> DfResult<Arc<datafusion::common::Statistics>> {
        Ok(Arc::new(self.statistics(args.partition())))
    }

    #[allow(deprecated)]
    fn partition_statistics(
        &self,
        partition: Option<usize>,
    ) -> DfResult<Arc<datafusion::common::Statistics>> {
        Ok(Arc::new(self.statistics(partition)))
    }

    fn execute(
        &self,
        partition: usize,
        _context: Arc<TaskContext>,
    ) -> DfResult<SendableRecordBatchStream> {
        if partition > self.splits.len() {
            return Err(DataFusionError::Internal(format!(
                "WeftScan has {} partitions, asked for {partition}",
                self.splits.len() + 1
            )));
        }
        let rows_decoded =
            MetricBuilder::new(&self.metrics).counter("segment_rows_read", partition);
        let segments_read = MetricBuilder::new(&self.metrics).counter("segments_read", partition);
        match &self.kind {
            ScanKind::Points(keys) => {
                self.execute_points(keys.clone(), rows_decoded, segments_read)
            }
            ScanKind::Range { lo, hi } => {
                // This partition's share of the range.
                let lo = match (lo, partition.checked_sub(1).map(|p| &self.splits[p])) {
                    (Some(a), Some(b)) => Some(a.max(b).clone()),
                    (a, b) => a.clone().or(b.cloned()),
                };
                let hi = match (hi, self.splits.get(partition)) {
                    (Some(a), Some(b)) => Some(a.min(b).clone()),
                    (a, b) => a.clone().or(b.cloned()),
                };
                self.execute_range(lo, hi, rows_decoded, segments_read)
            }
        }
    }
}

impl MvccScanExec {
    /// The schema of the merged stream: system columns, then the needed user columns.
    fn read_schema(&self, needed: &[usize]) -> SchemaRef {
        let full = file_schema(&self.user_schema);
        let mut idx: Vec<usize> = (0..SYSTEM_COLUMNS).collect();
        idx.extend(needed.iter().map(|i| SYSTEM_COLUMNS + i));
        Arc::new(full.project(&idx).expect("indices in range"))
    }

    fn execute_points(
        &self,
        keys: Vec<Vec<u8>>,
        rows_decoded: Count,
        segments_read: Count,
    ) -> DfResult<SendableRecordBatchStream> {
        let storage = self.storage.clone();
        let segments = self.segments.clone();
        let recent = self.recent.clone();
        let read_ts = self.read_ts;
        let needed = self.needed_user_columns();
        let this_schema = self.schema.clone();
        let out = self.project_plan();
        let fut = async move {
            let mut found: Vec<(Vec<u8>, Version)> = Vec::new();
            for key in keys {
                let v = match recent.binary_search_by(|(k, _)| k.as_slice().cmp(&key)) {
                    Ok(i) => Some(recent[i].1.clone()),
                    Err(_) => {
                        let (v, probed) = storage
                            .segment_version(&segments, &key, read_ts)
                            .await
                            .map_err(ext)?;
                        segments_read.add(probed.segments);
                        rows_decoded.add(probed.rows);
                        v
                    }
                };
                if let Some(v) = v.filter(|v| v.row.is_some()) {
                    found.push((key, v));
                }
            }
            let batch = out.recent_batch(&needed, &found)?;
            out.project_out(&batch, &needed)
        };
        Ok(Box::pin(RecordBatchStreamAdapter::new(
            this_schema,
            futures::stream::once(fut),
        )))
    }

    /// A copy of what projection needs, movable into a stream.
    fn project_plan(&self) -> Projector {
        Projector {
            columns: self.columns.clone(),
            schema: self.schema.clone(),
            user_schema: self.user_schema.clone(),
        }
    }

    fn execute_range(
        &self,
        lo: Option<Vec<u8>>,
        hi: Option<Vec<u8>>,
        rows_decoded: Count,
        segments_read: Count,
    ) -> DfResult<SendableRecordBatchStream> {
        let needed = self.needed_user_columns();
        let read_schema = self.read_schema(&needed);
        let ctx = self.storage.task_ctx.clone();
        let in_range =
            |k: &[u8]| lo.as_deref().is_none_or(|l| k >= l) && hi.as_deref().is_none_or(|h| k < h);
        let recent: Vec<(Vec<u8>, Version)> = self
            .recent
            .iter()
            .filter(|(k, _)| in_range(k))
            .cloned()
            .collect();
        let out = self.project_plan();
        // Each source with its key range, to skip the merge when no two overlap.
        let mut sources: Vec<(Option<KeyRange>, SendableRecordBatchStream)> = Vec::new();
        if !recent.is_empty() {
            let range = Some((recent[0].0.clone(), recent[recent.len() - 1].0.clone()));
            let batch = out.recent_batch(&needed, &recent)?;
            sources.push((
                range,
                Box::pin(RecordBatchStreamAdapter::new(
                    read_schema.clone(),
                    futures::stream::iter(vec![Ok(batch)]),
                )),
            ));
        }
        for seg in &self.segments {
            if !seg.may_hold_range(lo.as_deref(), hi.as_deref()) {
                continue;
            }
            segments_read.add(1);
            let stream = segment_stream(
                seg,
                &self.storage.store,
                &self.user_schema,
                &needed,
                Some(self.read_ts),
                (lo.as_deref(), hi.as_deref()),
                ctx.clone(),
            )?;
            let counter = rows_decoded.clone();
            let range =
                (!seg.meta.min_key.is_empty()).then(|| (seg.min_key.clone(), seg.max_key.clone()));
            sources.push((
                range,
                Box::pin(RecordBatchStreamAdapter::new(
                    read_schema.clone(),
                    stream.inspect_ok({
                        // The stream holds the segment: a plan may be dropped while its
                        // streams run, and a compacted-away segment is deleted once nothing
                        // holds it.
                        let held = seg.clone();
                        move |b| {
                            let _ = &held;
                            counter.add(b.num_rows())
                        }
                    }),
                )),
            ));
        }
        let disjoint = sources.iter().all(|(r, _)| r.is_some()) && {
            sources.sort_by(|a, b| a.0.cmp(&b.0));
            sources
                .windows(2)
                .all(|w| w[0].0.as_ref().map(|r| &r.1) < w[1].0.as_ref().map(|r| &r.0))
        };
        let streams: Vec<SendableRecordBatchStream> = sources.into_iter().map(|(_, s)| s).collect();
        let merged: SendableRecordBatchStream = if disjoint && streams.len() > 1 {
            // Key-disjoint sources in key order: concatenating them is the merge.
            Box::pin(RecordBatchStreamAdapter::new(
                read_schema.clone(),
                futures::stream::iter(streams).flatten(),
            ))
        } else {
            merge_streams(streams, read_schema, &ctx, &self.metrics)?
        };
        let mut resolver = Resolver::new(self.read_ts, lo, hi);
        let stream = merged.map(move |b| {
            let b = b?;
            let kept = resolver.resolve(&b)?;
            out.project_out(&kept, &needed)
        });
        Ok(Box::pin(RecordBatchStreamAdapter::new(
            self.schema.clone(),
            stream,
        )))
    }
}

/// What a stream needs to project merged batches to the scan's output.
struct Projector {
    columns: Vec<OutColumn>,
    schema: SchemaRef,
    user_schema: SchemaRef,
}

impl Projector {
    fn recent_batch(
        &self,
        needed: &[usize],
        versions: &[(Vec<u8>, Version)],
    ) -> DfResult<RecordBatch> {
        let batch = versions_batch(&self.user_schema, versions).map_err(ext)?;
        let mut idx: Vec<usize> = (0..SYSTEM_COLUMNS).collect();
        idx.extend(needed.iter().map(|i| SYSTEM_COLUMNS + i));
        Ok(batch.project(&idx)?)
    }

    fn project_out(&self, batch: &RecordBatch, needed: &[usize]) -> DfResult<RecordBatch> {
        let cols: Vec<ArrayRef> = self
            .columns
            .iter()
            .map(|c| match c {
                OutColumn::Key => batch.column(0).clone(),
                OutColumn::User(i) => {
                    let pos = needed.iter().position(|n| n == i).expect("needed column");
                    batch.column(SYSTEM_COLUMNS + pos).clone()
                }
            })
            .collect();
        let options =
            arrow::array::RecordBatchOptions::new().with_row_count(Some(batch.num_rows()));
        Ok(RecordBatch::try_new_with_options(
            self.schema.clone(),
            cols,
            &options,
        )?)
    }
}

fn ext(e: EngineError) -> DataFusionError {
    DataFusionError::External(Box::new(e))
}

/// The sort order of segments and merged streams: `_weft_key asc, _weft_ts desc`.
fn version_order(schema: &SchemaRef) -> DfResult<LexOrdering> {
    let key: Arc<dyn PhysicalExpr> =
        Arc::new(Column::new_with_schema(crate::schema::KEY_COLUMN, schema)?);
    let ts: Arc<dyn PhysicalExpr> = Arc::new(Column::new_with_schema(
        crate::storage::segment::TS_COLUMN,
        schema,
    )?);
    LexOrdering::new(vec![
        PhysicalSortExpr::new(
            key,
            SortOptions {
                descending: false,
                nulls_first: false,
            },
        ),
        PhysicalSortExpr::new(
            ts,
            SortOptions {
                descending: true,
                nulls_first: false,
            },
        ),
    ])
    .ok_or_else(|| DataFusionError::Internal("empty ordering".into()))
}

/// Merges version-ordered streams into one version-ordered stream.
pub(crate) fn merge_streams(
    mut streams: Vec<SendableRecordBatchStream>,
    schema: SchemaRef,
    ctx: &Arc<TaskContext>,
    metrics: &ExecutionPlanMetricsSet,
) -> DfResult<SendableRecordBatchStream> {
    match streams.len() {
        0 => Ok(Box::pin(
            datafusion::physical_plan::EmptyRecordBatchStream::new(schema),
        )),
        1 => Ok(streams.pop().expect("one stream")),
        _ => {
            let ordering = version_order(&schema)?;
            StreamingMergeBuilder::new()
                .with_streams(streams)
                .with_schema(schema)
                .with_expressions(&ordering)
                .with_metrics(BaselineMetrics::new(metrics, 0))
                .with_batch_size(ctx.session_config().batch_size())
                .with_reservation(MemoryConsumer::new("weft merge").register(ctx.memory_pool()))
                .build()
        }
    }
}

/// One segment as a stream in the read schema (system columns, then `needed` user columns),
/// pruned by row-group and page statistics to `ts <= max_ts` and keys in `[lo, hi)` (the
/// rows themselves are not filtered: the resolver does that).
pub(crate) fn segment_stream(
    seg: &Arc<Segment>,
    store: &crate::objstore::DurableStore,
    user_schema: &SchemaRef,
    needed: &[usize],
    max_ts: Option<Timestamp>,
    (lo, hi): (Option<&[u8]>, Option<&[u8]>),
    ctx: Arc<TaskContext>,
) -> DfResult<SendableRecordBatchStream> {
    let fschema = file_schema(user_schema);
    let mut conjuncts: Vec<Arc<dyn PhysicalExpr>> = Vec::new();
    let key_col: Arc<dyn PhysicalExpr> = Arc::new(Column::new_with_schema(
        crate::schema::KEY_COLUMN,
        &fschema,
    )?);
    let ts_col: Arc<dyn PhysicalExpr> = Arc::new(Column::new_with_schema(
        crate::storage::segment::TS_COLUMN,
        &fschema,
    )?);
    if let Some(ts) = max_ts {
        conjuncts.push(Arc::new(BinaryExpr::new(
            ts_col,
            Operator::LtEq,
            Arc::new(Literal::new(ScalarValue::UInt64(Some(ts)))),
        )));
    }
    if let Some(lo) = lo {
        conjuncts.push(Arc::new(BinaryExpr::new(
            key_col.clone(),
            Operator::GtEq,
            Arc::new(Literal::new(ScalarValue::Binary(Some(lo.to_vec())))),
        )));
    }
    if let Some(hi) = hi {
        conjuncts.push(Arc::new(BinaryExpr::new(
            key_col,
            Operator::Lt,
            Arc::new(Literal::new(ScalarValue::Binary(Some(hi.to_vec())))),
        )));
    }
    let mut source = ParquetSource::new(fschema.clone()).with_parquet_file_reader_factory(
        Arc::new(crate::storage::segment::SegmentReaderFactory {
            store: store.clone(),
            segment: seg.clone(),
        }),
    );
    if let Some(pred) = conjuncts
        .into_iter()
        .reduce(|a, b| Arc::new(BinaryExpr::new(a, Operator::And, b)) as Arc<dyn PhysicalExpr>)
    {
        source = source.with_predicate(pred);
    }
    let mut idx: Vec<usize> = (0..SYSTEM_COLUMNS).collect();
    idx.extend(needed.iter().map(|i| SYSTEM_COLUMNS + i));
    let url = ObjectStoreUrl::parse(STORE_URL)?;
    let config = FileScanConfigBuilder::new(url, Arc::new(source))
        .with_file(PartitionedFile::new(seg.path.to_string(), seg.meta.bytes))
        .with_projection_indices(Some(idx))?
        .build();
    DataSourceExec::from_data_source(config).execute(0, ctx)
}

/// Turns a version-ordered stream into visible rows: drops versions newer than `read_ts`,
/// keeps each key's first remaining version, drops deletes and keys outside `[lo, hi)`.
struct Resolver {
    read_ts: Timestamp,
    lo: Option<Vec<u8>>,
    hi: Option<Vec<u8>>,
    last_key: Option<Vec<u8>>,
}

impl Resolver {
    fn new(read_ts: Timestamp, lo: Option<Vec<u8>>, hi: Option<Vec<u8>>) -> Resolver {
        Resolver {
            read_ts,
            lo,
            hi,
            last_key: None,
        }
    }

    fn resolve(&mut self, batch: &RecordBatch) -> DfResult<RecordBatch> {
        let (_, ts, _) = system_columns(batch, "scanned segments").map_err(ext)?;
        // Own writes carry the largest timestamp and are always visible to their reader.
        let visible_ts = arrow::compute::or(
            &lt_eq(ts, &UInt64Array::new_scalar(self.read_ts))?,
            &eq(ts, &UInt64Array::new_scalar(Timestamp::MAX))?,
        )?;
        let b = filter_record_batch(batch, &visible_ts)?;
        let n = b.num_rows();
        if n == 0 {
            return Ok(b);
        }
        let (keys, _, ops) = system_columns(&b, "scanned segments").map_err(ext)?;
        // A row is its key's newest visible version when its key differs from the row
        // before it (across batches too).
        let first_of_key: BooleanArray = {
            let head = self.last_key.as_deref() != Some(keys.value(0));
            let rest = if n > 1 {
                neq(&keys.slice(1, n - 1), &keys.slice(0, n - 1))?
            } else {
                BooleanArray::from(Vec::<bool>::new())
            };
            std::iter::once(Some(head)).chain(rest.iter()).collect()
        };
        self.last_key = Some(keys.value(n - 1).to_vec());
        let puts = eq(ops, &UInt8Array::new_scalar(OP_PUT))?;
        let mut mask = and(&first_of_key, &puts)?;
        if self.lo.is_some() || self.hi.is_some() {
            let in_range: BooleanArray = (0..n)
                .map(|i| {
                    let k = keys.value(i);
                    Some(
                        self.lo.as_deref().is_none_or(|lo| k >= lo)
                            && self.hi.as_deref().is_none_or(|hi| k < hi),
                    )
                })
                .collect();
            mask = and(&mask, &in_range)?;
        }
        let _ = OP_DELETE;
        Ok(filter_record_batch(&b, &mask)?)
    }
}
