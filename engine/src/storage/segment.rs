//! Parquet segments: immutable files of row versions, sorted by `(_weft_key asc, _weft_ts
//! desc)`, with columns `_weft_key`, `_weft_ts`, `_weft_op` and then the table's own columns.
//! Key and timestamp ranges are in the file's key-value metadata. Standard tools (pyarrow,
//! DuckDB) read them as ordinary Parquet.

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, BinaryArray, RecordBatch, UInt64Array, UInt8Array};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use bytes::Bytes;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::arrow::ArrowWriter;
use parquet::file::metadata::KeyValue;
use parquet::file::properties::WriterProperties;

use crate::error::{EngineError, EngineResult};
use crate::record::{OP_COLUMN, OP_DELETE, OP_PUT};
use crate::row::{batch_row, column_from_rows};
use crate::schema::KEY_COLUMN;
use crate::storage::mvcc::Version;

pub const TS_COLUMN: &str = "_weft_ts";
/// Columns before the table's own.
pub const SYSTEM_COLUMNS: usize = 3;

/// A segment's content, decoded.
pub struct DecodedSegment {
    pub schema: SchemaRef,
    pub versions: Vec<(Vec<u8>, Version)>,
}

/// Encodes versions (already sorted by key asc, ts desc) into a Parquet file.
pub fn encode(
    table_id: u64,
    schema: &SchemaRef,
    versions: &[(Vec<u8>, Version)],
) -> EngineResult<Vec<u8>> {
    debug_assert!(versions
        .windows(2)
        .all(|w| (w[0].0.as_slice(), std::cmp::Reverse(w[0].1.ts))
            < (w[1].0.as_slice(), std::cmp::Reverse(w[1].1.ts))));
    let mut fields = vec![
        Field::new(KEY_COLUMN, DataType::Binary, false),
        Field::new(TS_COLUMN, DataType::UInt64, false),
        Field::new(OP_COLUMN, DataType::UInt8, false),
    ];
    fields.extend(
        schema
            .fields()
            .iter()
            .map(|f| f.as_ref().clone().with_nullable(true)),
    );
    let file_schema = Arc::new(Schema::new(fields));
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
    let batch = RecordBatch::try_new(file_schema.clone(), columns)?;
    let (min_ts, max_ts) = versions.iter().fold((u64::MAX, 0), |(lo, hi), (_, v)| {
        (lo.min(v.ts), hi.max(v.ts))
    });
    let kv = |k: &str, v: String| KeyValue::new(k.to_string(), v);
    let metadata = vec![
        kv("weft.table_id", table_id.to_string()),
        kv("weft.rows", versions.len().to_string()),
        kv("weft.min_ts", min_ts.to_string()),
        kv("weft.max_ts", max_ts.to_string()),
        kv(
            "weft.min_key",
            hex(versions.first().map(|v| v.0.as_slice()).unwrap_or(&[])),
        ),
        kv(
            "weft.max_key",
            hex(versions.last().map(|v| v.0.as_slice()).unwrap_or(&[])),
        ),
    ];
    let props = WriterProperties::builder()
        .set_key_value_metadata(Some(metadata))
        .build();
    let mut buf = Vec::new();
    let mut writer = ArrowWriter::try_new(&mut buf, file_schema, Some(props))?;
    writer.write(&batch)?;
    writer.close()?;
    Ok(buf)
}

/// Decodes a segment, verifying its layout and its sort order.
pub fn decode(path: &str, data: Bytes) -> EngineResult<DecodedSegment> {
    let corrupt = |detail: String| EngineError::Corrupt {
        path: path.to_string(),
        detail,
    };
    let builder = ParquetRecordBatchReaderBuilder::try_new(data)
        .map_err(|e| corrupt(format!("not a readable Parquet file: {e}")))?;
    let file_schema = builder.schema().clone();
    if file_schema.fields().len() < SYSTEM_COLUMNS
        || file_schema.field(0).name() != KEY_COLUMN
        || file_schema.field(1).name() != TS_COLUMN
        || file_schema.field(2).name() != OP_COLUMN
    {
        return Err(corrupt(
            "missing _weft_key/_weft_ts/_weft_op columns".into(),
        ));
    }
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
        let keys = downcast::<BinaryArray>(&batch, 0, path)?;
        let tss = downcast::<UInt64Array>(&batch, 1, path)?;
        let ops = downcast::<UInt8Array>(&batch, 2, path)?;
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
