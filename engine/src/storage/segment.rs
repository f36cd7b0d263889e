//! Parquet segments: immutable files of row versions, sorted by `(_weft_key asc, _weft_ts
//! desc)`, with columns `_weft_key`, `_weft_ts`, `_weft_op` and then the table's own columns.
//! Key and timestamp ranges are in the file's key-value metadata. Standard tools (pyarrow,
//! DuckDB) read them as ordinary Parquet.
//!
//! Segments are read lazily: a point lookup reads the footer once (cached with the segment)
//! and then only the pages whose key statistics may hold the key; decoded pages go into a
//! bounded cache shared by every segment of the node.

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, BinaryArray, RecordBatch, UInt64Array, UInt8Array};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use bytes::Bytes;
use futures::TryStreamExt;
use object_store::path::Path;
use object_store::ObjectStoreExt;
use parquet::arrow::arrow_reader::{
    ArrowReaderMetadata, ArrowReaderOptions, ParquetRecordBatchReaderBuilder, RowSelection,
    RowSelector,
};
use parquet::arrow::async_reader::{AsyncFileReader, ParquetRecordBatchStreamBuilder};
use parquet::arrow::ArrowWriter;
use parquet::basic::Compression;
use parquet::file::metadata::{KeyValue, SortingColumn};
use parquet::file::metadata::{PageIndexPolicy, ParquetMetaData};
use parquet::file::page_index::column_index::ColumnIndexMetaData;
use parquet::file::properties::WriterProperties;
use parquet::schema::types::ColumnPath;

use crate::error::{EngineError, EngineResult};
use crate::objstore::DurableStore;
use crate::record::{OP_COLUMN, OP_DELETE, OP_PUT};
use crate::row::{batch_row, column_from_rows, Row};
use crate::schema::KEY_COLUMN;
use crate::storage::cache::Lru;
use crate::storage::manifest::SegmentMeta;
use crate::storage::mvcc::Version;
use crate::time::Timestamp;

pub const TS_COLUMN: &str = "_weft_ts";
/// Columns before the table's own.
pub const SYSTEM_COLUMNS: usize = 3;
/// Written into every segment's key-value metadata as `weft.segment_format`.
pub const SEGMENT_FORMAT_VERSION: u32 = 2;
/// Rows per data page: the unit a point lookup reads and decodes.
pub const PAGE_ROWS: usize = 1024;
/// Rows per row group.
pub const ROW_GROUP_ROWS: usize = 128 * 1024;
/// Largest dictionary page per column chunk; past it a column falls back to plain pages.
const DICTIONARY_BYTES: usize = 64 * 1024;

/// A segment's content, decoded whole (inspection and tests; reads never do this).
pub struct DecodedSegment {
    pub schema: SchemaRef,
    pub versions: Vec<(Vec<u8>, Version)>,
}

/// The file schema of a segment of a table with `user` columns.
pub fn file_schema(user: &SchemaRef) -> SchemaRef {
    let mut fields = vec![
        Field::new(KEY_COLUMN, DataType::Binary, false),
        Field::new(TS_COLUMN, DataType::UInt64, false),
        Field::new(OP_COLUMN, DataType::UInt8, false),
    ];
    fields.extend(
        user.fields()
            .iter()
            .map(|f| f.as_ref().clone().with_nullable(true)),
    );
    Arc::new(Schema::new(fields))
}

/// Versions (sorted by key asc, ts desc) as one batch in the file schema.
pub fn versions_batch(
    schema: &SchemaRef,
    versions: &[(Vec<u8>, Version)],
) -> EngineResult<RecordBatch> {
    let mut columns: Vec<ArrayRef> = vec![
        Arc::new(BinaryArray::from_iter_values(
            versions.iter().map(|(k, _)| k),
        )),
        Arc::new(UInt64Array::from_iter_values(
            versions.iter().map(|(_, v)| v.ts),
        )),
        Arc::new(UInt8Array::from_iter_values(versions.iter().map(
            |(_, v)| {
                if v.row.is_some() {
                    OP_PUT
                } else {
                    OP_DELETE
                }
            },
        ))),
    ];
    for (c, f) in schema.fields().iter().enumerate() {
        columns.push(column_from_rows(
            f.data_type(),
            versions
                .iter()
                .map(|(_, v)| v.row.as_ref().and_then(|r| r.get(c))),
            versions.len(),
        )?);
    }
    let options = arrow::array::RecordBatchOptions::new().with_row_count(Some(versions.len()));
    Ok(RecordBatch::try_new_with_options(
        file_schema(schema),
        columns,
        &options,
    )?)
}

/// What a segment holds, gathered while writing it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SegmentStats {
    pub rows: u64,
    pub keys: u64,
    pub tombstones: u64,
    pub min_ts: Timestamp,
    pub max_ts: Timestamp,
    pub min_key: Vec<u8>,
    pub max_key: Vec<u8>,
}

/// Writes one segment from batches in the file schema, already in `(key asc, ts desc)`
/// order (checked). Memory: the encoded output plus one row group being built.
pub struct SegmentWriter {
    writer: ArrowWriter<Vec<u8>>,
    table_id: u64,
    stats: SegmentStats,
    last: Option<(Vec<u8>, Timestamp)>,
}

impl SegmentWriter {
    pub fn new(table_id: u64, file_schema: SchemaRef) -> EngineResult<SegmentWriter> {
        let sorting = vec![
            SortingColumn {
                column_idx: 0,
                descending: false,
                nulls_first: false,
            },
            SortingColumn {
                column_idx: 1,
                descending: true,
                nulls_first: false,
            },
        ];
        let props = WriterProperties::builder()
            .set_max_row_group_row_count(Some(ROW_GROUP_ROWS))
            .set_data_page_row_count_limit(PAGE_ROWS)
            .set_write_batch_size(PAGE_ROWS)
            .set_sorting_columns(Some(sorting))
            .set_compression(Compression::SNAPPY)
            // Keys and timestamps are (nearly) unique: a dictionary only costs. Other columns
            // keep small dictionaries, which a point lookup reading one page must decode.
            .set_column_dictionary_enabled(ColumnPath::from(KEY_COLUMN), false)
            .set_column_dictionary_enabled(ColumnPath::from(TS_COLUMN), false)
            .set_dictionary_page_size_limit(DICTIONARY_BYTES)
            .build();
        Ok(SegmentWriter {
            writer: ArrowWriter::try_new(Vec::new(), file_schema, Some(props))?,
            table_id,
            stats: SegmentStats {
                min_ts: u64::MAX,
                ..Default::default()
            },
            last: None,
        })
    }

    pub fn write(&mut self, batch: &RecordBatch) -> EngineResult<()> {
        if batch.num_rows() == 0 {
            return Ok(());
        }
        let (keys, tss, ops) = system_columns(batch, "segment being written")?;
        for i in 0..batch.num_rows() {
            let key = keys.value(i);
            let ts = tss.value(i);
            match &self.last {
                Some((lk, lts)) => {
                    let ord = lk.as_slice().cmp(key);
                    if ord == std::cmp::Ordering::Greater
                        || (ord == std::cmp::Ordering::Equal && *lts <= ts)
                    {
                        return Err(EngineError::Internal(format!(
                            "segment rows out of (key asc, ts desc) order at ts {ts}"
                        )));
                    }
                    if ord != std::cmp::Ordering::Equal {
                        self.stats.keys += 1;
                    }
                }
                None => {
                    self.stats.keys = 1;
                    self.stats.min_key = key.to_vec();
                }
            }
            self.last = Some((key.to_vec(), ts));
            self.stats.min_ts = self.stats.min_ts.min(ts);
            self.stats.max_ts = self.stats.max_ts.max(ts);
            if ops.value(i) == OP_DELETE {
                self.stats.tombstones += 1;
            }
        }
        self.stats.rows += batch.num_rows() as u64;
        self.writer.write(batch)?;
        Ok(())
    }

    pub fn rows(&self) -> u64 {
        self.stats.rows
    }

    /// Finishes the file: its bytes and what it holds.
    pub fn finish(mut self) -> EngineResult<(Vec<u8>, SegmentStats)> {
        if let Some((k, _)) = &self.last {
            self.stats.max_key = k.clone();
        }
        if self.stats.rows == 0 {
            self.stats.min_ts = 0;
        }
        let s = &self.stats;
        let kv = |k: &str, v: String| KeyValue::new(k.to_string(), v);
        for entry in [
            kv("weft.segment_format", SEGMENT_FORMAT_VERSION.to_string()),
            kv("weft.table_id", self.table_id.to_string()),
            kv("weft.rows", s.rows.to_string()),
            kv("weft.keys", s.keys.to_string()),
            kv("weft.tombstones", s.tombstones.to_string()),
            kv("weft.min_ts", s.min_ts.to_string()),
            kv("weft.max_ts", s.max_ts.to_string()),
            kv("weft.min_key", hex(&s.min_key)),
            kv("weft.max_key", hex(&s.max_key)),
        ] {
            self.writer.append_key_value_metadata(entry);
        }
        let stats = self.stats.clone();
        let buf = self.writer.into_inner()?;
        Ok((buf, stats))
    }
}

/// Encodes versions (already sorted by key asc, ts desc) into a Parquet file.
pub fn encode(
    table_id: u64,
    schema: &SchemaRef,
    versions: &[(Vec<u8>, Version)],
) -> EngineResult<(Vec<u8>, SegmentStats)> {
    let mut w = SegmentWriter::new(table_id, file_schema(schema))?;
    for chunk in versions.chunks(ROW_GROUP_ROWS) {
        w.write(&versions_batch(schema, chunk)?)?;
    }
    w.finish()
}

/// Checks that a Parquet schema is a segment's: the three system columns first.
fn check_layout(file_schema: &Schema) -> Result<(), String> {
    if file_schema.fields().len() < SYSTEM_COLUMNS
        || file_schema.field(0).name() != KEY_COLUMN
        || file_schema.field(1).name() != TS_COLUMN
        || file_schema.field(2).name() != OP_COLUMN
        || file_schema.field(0).data_type() != &DataType::Binary
        || file_schema.field(1).data_type() != &DataType::UInt64
        || file_schema.field(2).data_type() != &DataType::UInt8
    {
        return Err("missing _weft_key/_weft_ts/_weft_op columns".into());
    }
    Ok(())
}

/// Decodes a segment whole, verifying its layout and its sort order.
pub fn decode(path: &str, data: Bytes) -> EngineResult<DecodedSegment> {
    let corrupt = |detail: String| EngineError::Corrupt {
        path: path.to_string(),
        detail,
    };
    let builder = ParquetRecordBatchReaderBuilder::try_new(data)
        .map_err(|e| corrupt(format!("not a readable Parquet file: {e}")))?;
    let file_schema = builder.schema().clone();
    check_layout(&file_schema).map_err(corrupt)?;
    let user_schema = Arc::new(Schema::new(
        file_schema.fields()[SYSTEM_COLUMNS..]
            .iter()
            .map(|f| f.as_ref().clone())
            .collect::<Vec<_>>(),
    ));
    let reader = builder
        .build()
        .map_err(|e| corrupt(format!("cannot read: {e}")))?;
    let mut versions: Vec<(Vec<u8>, Version)> = Vec::new();
    for batch in reader {
        let batch = batch.map_err(|e| corrupt(format!("cannot decode row group: {e}")))?;
        let (keys, tss, ops) = system_columns(&batch, path)?;
        let user = batch.project(&(SYSTEM_COLUMNS..batch.num_columns()).collect::<Vec<_>>())?;
        for i in 0..batch.num_rows() {
            let key = keys.value(i).to_vec();
            let ts = tss.value(i);
            if let Some((pk, pv)) = versions.last() {
                if (pk.as_slice(), std::cmp::Reverse(pv.ts))
                    >= (key.as_slice(), std::cmp::Reverse(ts))
                {
                    return Err(corrupt(format!(
                        "row {i} is out of (key asc, ts desc) order"
                    )));
                }
            }
            let row = match ops.value(i) {
                OP_PUT => Some(Arc::new(batch_row(&user, i, user.num_columns())?)),
                OP_DELETE => None,
                op => return Err(corrupt(format!("unknown op code {op} at row {i}"))),
            };
            versions.push((key, Version { ts, row }));
        }
    }
    Ok(DecodedSegment {
        schema: user_schema,
        versions,
    })
}

/// The three system columns of a batch in the segment layout (`_weft_key`, `_weft_ts`,
/// `_weft_op`), checked for type and nulls; `path` names the data in the error.
pub type SystemColumns<'a> = (&'a BinaryArray, &'a UInt64Array, &'a UInt8Array);

pub fn system_columns<'a>(batch: &'a RecordBatch, path: &str) -> EngineResult<SystemColumns<'a>> {
    Ok((
        downcast::<BinaryArray>(batch, 0, path)?,
        downcast::<UInt64Array>(batch, 1, path)?,
        downcast::<UInt8Array>(batch, 2, path)?,
    ))
}

fn downcast<'a, T: 'static>(batch: &'a RecordBatch, col: usize, path: &str) -> EngineResult<&'a T> {
    let array = batch.column(col);
    if array.null_count() > 0 {
        return Err(EngineError::Corrupt {
            path: path.into(),
            detail: format!("null in system column {col}"),
        });
    }
    array
        .as_any()
        .downcast_ref::<T>()
        .ok_or_else(|| EngineError::Corrupt {
            path: path.into(),
            detail: format!("system column {col} has the wrong type"),
        })
}

pub fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

pub fn unhex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

/// Decoded rows of one segment: segment name, row group, first row, row count.
pub type SliceKey = (Arc<str>, usize, usize, usize);
pub type SliceCache = Lru<SliceKey, RecordBatch>;

/// A live segment of a storage node: its manifest entry and, once first read, its verified
/// footer.
pub struct Segment {
    pub meta: SegmentMeta,
    /// Full object path.
    pub path: Path,
    pub name: Arc<str>,
    pub min_key: Vec<u8>,
    pub max_key: Vec<u8>,
    opened: tokio::sync::OnceCell<ArrowReaderMetadata>,
}

impl std::fmt::Debug for Segment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Segment").field("path", &self.path).finish()
    }
}

impl Segment {
    pub fn new(meta: SegmentMeta, path: Path) -> Segment {
        Segment {
            min_key: unhex(&meta.min_key).unwrap_or_default(),
            // An unknown range (a format-1 manifest) must match every key.
            max_key: unhex(&meta.max_key).unwrap_or_else(|| vec![0xFF; 64]),
            name: Arc::from(meta.path.as_str()),
            meta,
            path,
            opened: tokio::sync::OnceCell::new(),
        }
    }

    pub fn may_hold_key(&self, key: &[u8]) -> bool {
        (self.meta.max_key.is_empty() && self.meta.min_key.is_empty())
            || (self.min_key.as_slice() <= key && key <= self.max_key.as_slice())
    }

    /// Whether any key in `[lo, hi)` may be here (`None`: unbounded).
    pub fn may_hold_range(&self, lo: Option<&[u8]>, hi: Option<&[u8]>) -> bool {
        if self.meta.max_key.is_empty() && self.meta.min_key.is_empty() {
            return true;
        }
        lo.is_none_or(|lo| self.max_key.as_slice() >= lo)
            && hi.is_none_or(|hi| self.min_key.as_slice() < hi)
    }

    fn corrupt(&self, detail: String) -> EngineError {
        EngineError::Corrupt {
            path: self.path.to_string(),
            detail,
        }
    }

    /// The segment's footer. The first call reads the whole object once and checks it
    /// against the manifest (size and CRC32): a damaged segment is refused by name before
    /// any of its rows is served.
    pub async fn open(&self, store: &DurableStore) -> EngineResult<&ArrowReaderMetadata> {
        self.opened
            .get_or_try_init(|| async {
                let data = store.get(&self.path).await.map_err(|e| match e {
                    EngineError::Store {
                        source: object_store::Error::NotFound { .. },
                        ..
                    } => self.corrupt("segment listed in the manifest is missing".into()),
                    e => e,
                })?;
                self.verify(&data)?;
                let options =
                    ArrowReaderOptions::new().with_page_index_policy(PageIndexPolicy::Optional);
                let meta = ArrowReaderMetadata::load(&data, options)
                    .map_err(|e| self.corrupt(format!("not a readable Parquet file: {e}")))?;
                check_layout(meta.schema()).map_err(|e| self.corrupt(e))?;
                Ok(meta)
            })
            .await
    }

    /// Size and checksum against the manifest's record of them.
    pub fn verify(&self, data: &[u8]) -> EngineResult<()> {
        if data.len() as u64 != self.meta.bytes {
            return Err(self.corrupt(format!(
                "is {} bytes, the manifest says {}",
                data.len(),
                self.meta.bytes
            )));
        }
        if let Some(want) = self.meta.crc32 {
            let got = crc32fast::hash(data);
            if got != want {
                return Err(self.corrupt(format!(
                    "checksum mismatch: crc32 {got:08x}, the manifest says {want:08x}"
                )));
            }
        }
        Ok(())
    }

    /// The newest version of `key` with `ts <= read_ts` in this segment. Reads only the
    /// pages whose key statistics may hold `key`.
    pub async fn lookup(
        &self,
        store: &DurableStore,
        cache: &SliceCache,
        key: &[u8],
        read_ts: Timestamp,
        rows_examined: &mut usize,
    ) -> EngineResult<Option<Version>> {
        let meta = self.open(store).await?;
        let md = meta.metadata().clone();
        for rg in 0..md.num_row_groups() {
            let rgm = md.row_group(rg);
            if let Some(stats) = rgm.column(0).statistics() {
                let below = stats.min_bytes_opt().is_some_and(|min| key < min);
                let above = stats.max_bytes_opt().is_some_and(|max| key > max);
                if below || above {
                    continue;
                }
            }
            let rows = rgm.num_rows() as usize;
            let (first, count) = pages_for_key(&md, rg, rows, key);
            if count == 0 {
                continue;
            }
            let batch = self
                .cached_slice(store, cache, meta, (rg, first, count))
                .await?;
            *rows_examined += batch.num_rows();
            let (keys, tss, ops) = system_columns(&batch, self.path.as_ref())?;
            let mut i = partition_point(keys, key);
            while i < batch.num_rows() && keys.value(i) == key {
                if tss.value(i) <= read_ts {
                    let row = self.row_at(&batch, ops.value(i), i)?;
                    return Ok(Some(Version {
                        ts: tss.value(i),
                        row,
                    }));
                }
                i += 1;
            }
            // The key's versions may continue in the next row group only if this one ended
            // with it; otherwise there is nothing more to find.
            if i < batch.num_rows() || first + count < rows {
                return Ok(None);
            }
        }
        Ok(None)
    }

    /// The newest version at or below `read_ts` of each key in `[lo, hi)` here, in key
    /// order, read through the page slices a point lookup reads (and caches); `None` when
    /// the range spans more than `rows_max` stored rows: a scan reads such a range better.
    pub async fn range_versions(
        &self,
        store: &DurableStore,
        cache: &SliceCache,
        (lo, hi): (&[u8], Option<&[u8]>),
        read_ts: Timestamp,
        rows_max: usize,
    ) -> EngineResult<Option<Vec<(Vec<u8>, Version)>>> {
        let meta = self.open(store).await?;
        let md = meta.metadata().clone();
        let mut spans = Vec::new();
        let mut total = 0;
        for rg in 0..md.num_row_groups() {
            let rgm = md.row_group(rg);
            if let Some(stats) = rgm.column(0).statistics() {
                let below = hi.is_some_and(|hi| stats.min_bytes_opt().is_some_and(|min| hi <= min));
                let above = stats.max_bytes_opt().is_some_and(|max| max < lo);
                if below || above {
                    continue;
                }
            }
            let (first, count) = pages_for_range(&md, rg, rgm.num_rows() as usize, lo, hi);
            if count == 0 {
                continue;
            }
            total += count;
            if total > rows_max {
                return Ok(None);
            }
            spans.push((rg, first, count));
        }
        let mut out: Vec<(Vec<u8>, Version)> = Vec::new();
        for (rg, first, count) in spans {
            let batch = self
                .cached_slice(store, cache, meta, (rg, first, count))
                .await?;
            let (keys, tss, ops) = system_columns(&batch, self.path.as_ref())?;
            let mut i = partition_point(keys, lo);
            while i < batch.num_rows() {
                let key = keys.value(i);
                if hi.is_some_and(|hi| key >= hi) {
                    break;
                }
                // A key's versions are newest first; its first one at or below read_ts
                // answers (they may continue from the previous row group).
                let decided = out.last().is_some_and(|(k, _)| k.as_slice() == key);
                if !decided && tss.value(i) <= read_ts {
                    let row = self.row_at(&batch, ops.value(i), i)?;
                    out.push((
                        key.to_vec(),
                        Version {
                            ts: tss.value(i),
                            row,
                        },
                    ));
                }
                i += 1;
            }
        }
        Ok(Some(out))
    }

    /// The row a version at `i` of a slice holds: its user columns for a put, `None` for a
    /// delete.
    fn row_at(&self, batch: &RecordBatch, op: u8, i: usize) -> EngineResult<Option<Arc<Row>>> {
        match op {
            OP_PUT => {
                let user =
                    batch.project(&(SYSTEM_COLUMNS..batch.num_columns()).collect::<Vec<_>>())?;
                Ok(Some(Arc::new(batch_row(&user, i, user.num_columns())?)))
            }
            OP_DELETE => Ok(None),
            op => Err(self.corrupt(format!("unknown op code {op}"))),
        }
    }

    /// Rows `first..first + count` of row group `rg`, from the cache or read (and cached).
    async fn cached_slice(
        &self,
        store: &DurableStore,
        cache: &SliceCache,
        meta: &ArrowReaderMetadata,
        (rg, first, count): (usize, usize, usize),
    ) -> EngineResult<RecordBatch> {
        let slice_key: SliceKey = (self.name.clone(), rg, first, count);
        if let Some(b) = cache.get(&slice_key) {
            return Ok(b);
        }
        let b = self.read_slice(store, meta, rg, first, count).await?;
        cache.insert(slice_key, b.clone(), b.get_array_memory_size());
        Ok(b)
    }

    async fn read_slice(
        &self,
        store: &DurableStore,
        meta: &ArrowReaderMetadata,
        rg: usize,
        first: usize,
        count: usize,
    ) -> EngineResult<RecordBatch> {
        let reader = RangeReader {
            store: store.clone(),
            path: self.path.clone(),
            footer: Footer::Known(meta.metadata().clone()),
        };
        let selection =
            RowSelection::from(vec![RowSelector::skip(first), RowSelector::select(count)]);
        let stream = ParquetRecordBatchStreamBuilder::new_with_metadata(reader, meta.clone())
            .with_row_groups(vec![rg])
            .with_row_selection(selection)
            .with_batch_size(count.max(1))
            .build()
            .map_err(|e| self.corrupt(format!("cannot read row group {rg}: {e}")))?;
        let batches: Vec<RecordBatch> = stream
            .try_collect()
            .await
            .map_err(|e| self.corrupt(format!("cannot decode row group {rg}: {e}")))?;
        Ok(arrow::compute::concat_batches(meta.schema(), &batches)?)
    }
}

/// Reads byte ranges of one segment for the Parquet reader.
struct RangeReader {
    store: DurableStore,
    path: Path,
    footer: Footer,
}

/// Where a [`RangeReader`] has the segment's footer from.
enum Footer {
    /// Already at hand.
    Known(Arc<ParquetMetaData>),
    /// From [`Segment::open`] (read and verified once, then kept with the segment).
    Opened(Arc<Segment>),
}

impl AsyncFileReader for RangeReader {
    fn get_bytes(
        &mut self,
        range: std::ops::Range<u64>,
    ) -> futures::future::BoxFuture<'_, parquet::errors::Result<Bytes>> {
        Box::pin(async move {
            self.store
                .inner
                .get_range(&self.path, range)
                .await
                .map_err(|e| parquet::errors::ParquetError::External(Box::new(e)))
        })
    }

    fn get_byte_ranges(
        &mut self,
        ranges: Vec<std::ops::Range<u64>>,
    ) -> futures::future::BoxFuture<'_, parquet::errors::Result<Vec<Bytes>>> {
        Box::pin(async move {
            self.store
                .inner
                .get_ranges(&self.path, &ranges)
                .await
                .map_err(|e| parquet::errors::ParquetError::External(Box::new(e)))
        })
    }

    fn get_metadata<'a>(
        &'a mut self,
        _options: Option<&'a ArrowReaderOptions>,
    ) -> futures::future::BoxFuture<'a, parquet::errors::Result<Arc<ParquetMetaData>>> {
        Box::pin(async move {
            match &self.footer {
                Footer::Known(m) => Ok(m.clone()),
                Footer::Opened(segment) => segment
                    .open(&self.store)
                    .await
                    .map(|m| m.metadata().clone())
                    .map_err(|e| parquet::errors::ParquetError::External(Box::new(e))),
            }
        })
    }
}

/// Hands DataFusion's Parquet scan a segment's footer as [`Segment::open`] read and
/// verified it once: a scan reads no footer and decodes no metadata of its own, and a
/// damaged segment is refused by name as a point lookup refuses it.
pub(crate) struct SegmentReaderFactory {
    pub store: DurableStore,
    pub segment: Arc<Segment>,
}

impl std::fmt::Debug for SegmentReaderFactory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SegmentReaderFactory")
            .field("segment", &self.segment.path)
            .finish()
    }
}

impl datafusion::datasource::physical_plan::ParquetFileReaderFactory for SegmentReaderFactory {
    fn create_reader(
        &self,
        _partition_index: usize,
        _file: datafusion::datasource::listing::PartitionedFile,
        _metadata_size_hint: Option<usize>,
        _metrics: &datafusion::physical_plan::metrics::ExecutionPlanMetricsSet,
    ) -> datafusion::error::Result<Box<dyn AsyncFileReader + Send>> {
        Ok(Box::new(RangeReader {
            store: self.store.clone(),
            path: self.segment.path.clone(),
            footer: Footer::Opened(self.segment.clone()),
        }))
    }
}

/// First index whose key is `>= key` (keys ascending).
fn partition_point(keys: &BinaryArray, key: &[u8]) -> usize {
    let (mut lo, mut hi) = (0, keys.len());
    while lo < hi {
        let mid = (lo + hi) / 2;
        if keys.value(mid) < key {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    lo
}

/// The rows of row group `rg` (first row, count) whose pages may hold `key`, from the page
/// index; the whole row group when the file has none.
fn pages_for_key(
    md: &parquet::file::metadata::ParquetMetaData,
    rg: usize,
    rows: usize,
    key: &[u8],
) -> (usize, usize) {
    pages_where(md, rg, rows, |min, max| {
        min.is_none_or(|min| min <= key) && max.is_none_or(|max| key <= max)
    })
}

/// The rows `(first, count)` of the pages of row group `rg` whose keys may fall in
/// `[lo, hi)`.
fn pages_for_range(
    md: &parquet::file::metadata::ParquetMetaData,
    rg: usize,
    rows: usize,
    lo: &[u8],
    hi: Option<&[u8]>,
) -> (usize, usize) {
    pages_where(md, rg, rows, |min, max| {
        max.is_none_or(|max| lo <= max) && hi.is_none_or(|hi| min.is_none_or(|min| min < hi))
    })
}

/// The rows `(first, count)` spanning the pages of row group `rg` whose key bounds (`min`,
/// `max`; `None` when the page index does not say) `overlaps` accepts: all the rows when
/// there is no page index, none when no page is accepted.
fn pages_where(
    md: &parquet::file::metadata::ParquetMetaData,
    rg: usize,
    rows: usize,
    overlaps: impl Fn(Option<&[u8]>, Option<&[u8]>) -> bool,
) -> (usize, usize) {
    let (Some(ci), Some(oi)) = (md.column_index(), md.offset_index()) else {
        return (0, rows);
    };
    let (Some(ColumnIndexMetaData::BYTE_ARRAY(index)), Some(offsets)) = (
        ci.get(rg).and_then(|c| c.first()),
        oi.get(rg).and_then(|c| c.first()),
    ) else {
        return (0, rows);
    };
    let locations = offsets.page_locations();
    let mut lo: Option<usize> = None;
    let mut hi = 0;
    for p in 0..locations.len() {
        let min = index.min_value(p);
        let max = index.max_value(p);
        if overlaps(min, max) {
            lo.get_or_insert(p);
            hi = p;
        }
    }
    let Some(lo) = lo else {
        return (0, 0);
    };
    let first = locations[lo].first_row_index as usize;
    let end = locations
        .get(hi + 1)
        .map(|l| l.first_row_index as usize)
        .unwrap_or(rows);
    (first, end.saturating_sub(first))
}
