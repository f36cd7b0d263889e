//! Rows as vectors of scalars, and their conversion to and from Arrow record batches.
//!
//! Rows are the unit of MVCC versioning; batches are the unit of I/O and query execution.

use std::sync::Arc;

use arrow::array::{new_empty_array, new_null_array, ArrayRef, RecordBatch};
use arrow::datatypes::{DataType, SchemaRef};
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
    if let Some(array) = typed_column(data_type, &values) {
        return Ok(array);
    }
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

/// The column built straight from the values, without copying them into owned scalars
/// first, for the types tables store most; `None` (the general path then builds it) for
/// another type, or when a value is not of the column's exact type.
fn typed_column(data_type: &DataType, values: &[Option<&ScalarValue>]) -> Option<ArrayRef> {
    use arrow::array::{
        BinaryBuilder, BooleanArray, Date32Array, Decimal128Array, FixedSizeBinaryBuilder,
        Float32Array, Float64Array, Int16Array, Int32Array, Int64Array, StringBuilder,
        TimestampMicrosecondArray,
    };
    use arrow::datatypes::TimeUnit;
    use ScalarValue as S;
    /// A primitive column: every value of variant `$v` (NULL or absent is null).
    macro_rules! primitive {
        ($array:ty, $v:ident) => {{
            let mut ok = true;
            let a: $array = values
                .iter()
                .map(|v| match v {
                    None | Some(S::Null) => None,
                    Some(S::$v(x)) => *x,
                    Some(_) => {
                        ok = false;
                        None
                    }
                })
                .collect();
            ok.then(|| Arc::new(a) as ArrayRef)
        }};
    }
    match data_type {
        DataType::Int16 => primitive!(Int16Array, Int16),
        DataType::Int32 => primitive!(Int32Array, Int32),
        DataType::Int64 => primitive!(Int64Array, Int64),
        DataType::Float32 => primitive!(Float32Array, Float32),
        DataType::Float64 => primitive!(Float64Array, Float64),
        DataType::Boolean => primitive!(BooleanArray, Boolean),
        DataType::Date32 => primitive!(Date32Array, Date32),
        DataType::Decimal128(p, sc) => {
            let mut ok = true;
            let a: Decimal128Array = values
                .iter()
                .map(|v| match v {
                    None | Some(S::Null) => None,
                    Some(S::Decimal128(x, vp, vs)) if vp == p && vs == sc => *x,
                    Some(_) => {
                        ok = false;
                        None
                    }
                })
                .collect();
            ok.then(|| a.with_precision_and_scale(*p, *sc).ok())
                .flatten()
                .map(|a| Arc::new(a) as ArrayRef)
        }
        DataType::Timestamp(TimeUnit::Microsecond, tz) => {
            let mut ok = true;
            let a: TimestampMicrosecondArray = values
                .iter()
                .map(|v| match v {
                    None | Some(S::Null) => None,
                    Some(S::TimestampMicrosecond(x, vtz)) if vtz == tz => *x,
                    Some(_) => {
                        ok = false;
                        None
                    }
                })
                .collect();
            ok.then(|| Arc::new(a.with_timezone_opt(tz.clone())) as ArrayRef)
        }
        DataType::Utf8 => {
            let bytes = values
                .iter()
                .map(|v| match v {
                    Some(S::Utf8(Some(s))) => s.len(),
                    _ => 0,
                })
                .sum();
            let mut b = StringBuilder::with_capacity(values.len(), bytes);
            for v in values {
                match v {
                    None | Some(S::Null) | Some(S::Utf8(None)) => b.append_null(),
                    Some(S::Utf8(Some(s))) => b.append_value(s),
                    Some(_) => return None,
                }
            }
            Some(Arc::new(b.finish()))
        }
        DataType::Binary => {
            let mut b = BinaryBuilder::with_capacity(values.len(), 0);
            for v in values {
                match v {
                    None | Some(S::Null) | Some(S::Binary(None)) => b.append_null(),
                    Some(S::Binary(Some(s))) => b.append_value(s),
                    Some(_) => return None,
                }
            }
            Some(Arc::new(b.finish()))
        }
        DataType::FixedSizeBinary(n) => {
            let mut b = FixedSizeBinaryBuilder::with_capacity(values.len(), *n);
            for v in values {
                match v {
                    None | Some(S::Null) | Some(S::FixedSizeBinary(_, None)) => b.append_null(),
                    Some(S::FixedSizeBinary(vn, Some(s))) if vn == n => b.append_value(s).ok()?,
                    Some(_) => return None,
                }
            }
            Some(Arc::new(b.finish()))
        }
        _ => None,
    }
}

/// Every row of a batch, taking only the first `ncols` columns: the same values as
/// [`batch_row`] of each row, converted a column at a time (one type dispatch per column,
/// not per value).
pub fn batch_rows(batch: &RecordBatch, ncols: usize) -> EngineResult<Vec<Row>> {
    let mut rows: Vec<Row> = (0..batch.num_rows())
        .map(|_| Vec::with_capacity(ncols))
        .collect();
    for c in 0..ncols {
        let column = batch.column(c);
        if !typed_values(column, &mut rows) {
            for (i, row) in rows.iter_mut().enumerate() {
                row.push(ScalarValue::try_from_array(column, i)?);
            }
        }
    }
    Ok(rows)
}

/// Appends each value of `column` to its row, for the types tables store most; `false`
/// (and nothing appended) for another type.
fn typed_values(column: &ArrayRef, rows: &mut [Row]) -> bool {
    use arrow::array::{Array, AsArray};
    use arrow::datatypes::{
        Date32Type, Decimal128Type, Float32Type, Float64Type, Int16Type, Int32Type, Int64Type,
        TimeUnit, TimestampMicrosecondType,
    };
    use ScalarValue as S;
    /// The `i`-th value of `$a`, `None` when null, mapped by `$f`.
    macro_rules! each {
        ($a:expr, |$v:ident| $make:expr) => {{
            let a = $a;
            for (i, row) in rows.iter_mut().enumerate() {
                let $v = a.is_valid(i).then(|| a.value(i));
                row.push($make);
            }
            true
        }};
    }
    match column.data_type() {
        DataType::Int16 => each!(column.as_primitive::<Int16Type>(), |v| S::Int16(v)),
        DataType::Int32 => each!(column.as_primitive::<Int32Type>(), |v| S::Int32(v)),
        DataType::Int64 => each!(column.as_primitive::<Int64Type>(), |v| S::Int64(v)),
        DataType::Float32 => each!(column.as_primitive::<Float32Type>(), |v| S::Float32(v)),
        DataType::Float64 => each!(column.as_primitive::<Float64Type>(), |v| S::Float64(v)),
        DataType::Date32 => each!(column.as_primitive::<Date32Type>(), |v| S::Date32(v)),
        DataType::Boolean => each!(column.as_boolean(), |v| S::Boolean(v)),
        DataType::Decimal128(p, s) => {
            each!(column.as_primitive::<Decimal128Type>(), |v| S::Decimal128(
                v, *p, *s
            ))
        }
        DataType::Timestamp(TimeUnit::Microsecond, tz) => {
            each!(column.as_primitive::<TimestampMicrosecondType>(), |v| {
                S::TimestampMicrosecond(v, tz.clone())
            })
        }
        DataType::Utf8 => each!(column.as_string::<i32>(), |v| S::Utf8(
            v.map(str::to_string)
        )),
        DataType::Binary => each!(column.as_binary::<i32>(), |v| S::Binary(
            v.map(<[u8]>::to_vec)
        )),
        _ => false,
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::datatypes::TimeUnit;

    /// The general path: owned scalars, typed nulls, Arrow's own conversion.
    fn general(data_type: &DataType, values: &[Option<&ScalarValue>]) -> ArrayRef {
        let null = ScalarValue::try_from(data_type).unwrap();
        let scalars = values.iter().map(|v| match v {
            Some(v) if !v.is_null() => (*v).clone(),
            _ => null.clone(),
        });
        ScalarValue::iter_to_array(scalars).unwrap()
    }

    #[test]
    fn rows_of_a_batch_equal_row_by_row_reads() {
        use arrow::array::{
            BinaryArray, BooleanArray, Date32Array, Decimal128Array, Float64Array, Int16Array,
            Int32Array, Int64Array, ListArray, StringArray, TimestampMicrosecondArray,
        };
        use arrow::datatypes::Int32Type;
        let columns: Vec<ArrayRef> = vec![
            Arc::new(Int16Array::from(vec![Some(1), None, Some(-3)])),
            Arc::new(Int32Array::from(vec![None, Some(2), Some(3)])),
            Arc::new(Int64Array::from(vec![Some(1 << 40), Some(0), None])),
            Arc::new(Float64Array::from(vec![Some(1.5), None, Some(2.5)])),
            Arc::new(BooleanArray::from(vec![Some(true), Some(false), None])),
            Arc::new(Date32Array::from(vec![None, Some(19000), Some(-1)])),
            Arc::new(
                Decimal128Array::from(vec![Some(12345), None, Some(-1)])
                    .with_precision_and_scale(15, 2)
                    .unwrap(),
            ),
            Arc::new(
                TimestampMicrosecondArray::from(vec![Some(1), None, Some(2)]).with_timezone("UTC"),
            ),
            Arc::new(StringArray::from(vec![Some("a"), None, Some("")])),
            Arc::new(BinaryArray::from(vec![Some(&b"\x00"[..]), None, Some(b"")])),
            Arc::new(ListArray::from_iter_primitive::<Int32Type, _, _>(vec![
                Some(vec![Some(1)]),
                None,
                Some(vec![]),
            ])),
        ];
        let fields: Vec<arrow::datatypes::Field> = columns
            .iter()
            .enumerate()
            .map(|(i, c)| {
                arrow::datatypes::Field::new(format!("c{i}"), c.data_type().clone(), true)
            })
            .collect();
        let batch =
            RecordBatch::try_new(Arc::new(arrow::datatypes::Schema::new(fields)), columns).unwrap();
        let n = batch.num_columns();
        let each: Vec<Row> = (0..3).map(|i| batch_row(&batch, i, n).unwrap()).collect();
        assert_eq!(batch_rows(&batch, n).unwrap(), each);
        let first: Vec<Row> = (0..3).map(|i| batch_row(&batch, i, 2).unwrap()).collect();
        assert_eq!(batch_rows(&batch, 2).unwrap(), first);
    }

    #[test]
    fn typed_columns_equal_the_general_path() {
        let utc: Option<Arc<str>> = Some("UTC".into());
        let cases: Vec<(DataType, Vec<ScalarValue>)> = vec![
            (
                DataType::Int32,
                vec![ScalarValue::Int32(Some(7)), ScalarValue::Int32(None)],
            ),
            (
                DataType::Int64,
                vec![ScalarValue::Null, ScalarValue::Int64(Some(-1))],
            ),
            (
                DataType::Utf8,
                vec![
                    ScalarValue::Utf8(Some("a".into())),
                    ScalarValue::Utf8(None),
                    ScalarValue::Utf8(Some(String::new())),
                ],
            ),
            (
                DataType::Decimal128(15, 2),
                vec![ScalarValue::Decimal128(Some(1234), 15, 2)],
            ),
            (
                DataType::Timestamp(TimeUnit::Microsecond, utc.clone()),
                vec![ScalarValue::TimestampMicrosecond(Some(5), utc)],
            ),
            (
                DataType::FixedSizeBinary(16),
                vec![ScalarValue::FixedSizeBinary(16, Some(vec![1; 16]))],
            ),
            (
                DataType::Binary,
                vec![ScalarValue::Binary(Some(vec![0, 1])), ScalarValue::Null],
            ),
            (DataType::Boolean, vec![ScalarValue::Boolean(Some(true))]),
            (DataType::Date32, vec![ScalarValue::Date32(Some(19000))]),
        ];
        for (ty, vals) in cases {
            let mut values: Vec<Option<&ScalarValue>> = vals.iter().map(Some).collect();
            values.push(None);
            let typed = typed_column(&ty, &values).expect("a typed column");
            assert_eq!(typed.data_type(), &ty);
            assert_eq!(&typed, &general(&ty, &values), "{ty}");
        }
    }

    #[test]
    fn values_of_another_type_take_the_general_path() {
        let v = ScalarValue::Int64(Some(1));
        assert!(typed_column(&DataType::Int32, &[Some(&v)]).is_none());
        let d = ScalarValue::Decimal128(Some(1), 10, 0);
        assert!(typed_column(&DataType::Decimal128(15, 2), &[Some(&d)]).is_none());
        // ... and the general path casts it.
        let a = column_from_rows(&DataType::Decimal128(15, 2), [Some(&d)].into_iter(), 1).unwrap();
        assert_eq!(a.data_type(), &DataType::Decimal128(15, 2));
    }
}
