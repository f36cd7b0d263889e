//! Rows as vectors of scalars, and their conversion to and from Arrow record batches.
//!
//! Rows are the unit of MVCC versioning; batches are the unit of I/O and query execution.

use std::sync::Arc;

use arrow::array::{new_empty_array, new_null_array, ArrayRef, RecordBatch};
use arrow::datatypes::SchemaRef;
use datafusion::scalar::ScalarValue;

use crate::error::EngineResult;

/// One row: a value per table column, in column order. Shared once committed.
pub type Row = Vec<ScalarValue>;

/// Builds one column from the `col`-th value of each row.
pub fn column_from_rows<'a>(
    data_type: &arrow::datatypes::DataType,
    values: impl Iterator<Item = Option<&'a ScalarValue>>,
    len: usize,
) -> EngineResult<ArrayRef> {
    if len == 0 {
        return Ok(new_empty_array(data_type));
    }
    let values: Vec<Option<&ScalarValue>> = values.collect();
    // Nulls take the values' own type, which for a list can differ from the column's in
    // its element field's metadata (see the cast below).
    let value_type = values
        .iter()
        .flatten()
        .find(|v| !v.is_null())
        .map(|v| v.data_type())
        .unwrap_or_else(|| data_type.clone());
    let null = ScalarValue::try_from(&value_type)?;
    let mut all_null = true;
    let scalars: Vec<ScalarValue> = values
        .into_iter()
        .map(|v| match v {
            Some(v) if !v.is_null() => {
                all_null = false;
                v.clone()
            }
            _ => null.clone(),
        })
        .collect();
    if all_null {
        return Ok(new_null_array(data_type, len));
    }
    let array = ScalarValue::iter_to_array(scalars)?;
    // A list scalar does not keep its element field's metadata (the element's PostgreSQL
    // type, e.g. `uuid[]`): the column is stored in its exact type.
    if array.data_type() != data_type {
        return Ok(arrow::compute::cast(&array, data_type)?);
    }
    Ok(array)
}

/// Builds a batch with `schema` from rows whose values are in schema order.
pub fn rows_to_batch(schema: &SchemaRef, rows: &[&Row]) -> EngineResult<RecordBatch> {
    let columns = schema
        .fields()
        .iter()
        .enumerate()
        .map(|(i, f)| column_from_rows(f.data_type(), rows.iter().map(|r| r.get(i)), rows.len()))
        .collect::<EngineResult<Vec<_>>>()?;
    let options = arrow::array::RecordBatchOptions::new().with_row_count(Some(rows.len()));
    Ok(RecordBatch::try_new_with_options(
        schema.clone(),
        columns,
        &options,
    )?)
}

/// Reads row `i` of a batch, taking only the first `ncols` columns.
pub fn batch_row(batch: &RecordBatch, i: usize, ncols: usize) -> EngineResult<Row> {
    (0..ncols)
        .map(|c| Ok(ScalarValue::try_from_array(batch.column(c), i)?))
        .collect()
}

/// Approximate in-memory size of a row, for memory accounting and limits.
pub fn row_bytes(row: &Row) -> usize {
    row.iter().map(|v| v.size()).sum()
}

pub type SharedRow = Arc<Row>;
