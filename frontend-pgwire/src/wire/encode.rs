//! Result encoding: Arrow batches to PostgreSQL rows, text or binary.
//!
//! arrow-pg encodes the ordinary types. Columns whose PostgreSQL type is carried in field
//! metadata (uuid, json, jsonb, varchar, bpchar: stored as Utf8) are encoded here so the
//! client sees the right type OID and, in binary format, the right bytes.

use std::sync::Arc;

use arrow::array::{Array, AsArray, RecordBatch};
use arrow::datatypes::{DataType, Field, Schema};
use bytes::BytesMut;
use futures::stream::{self, BoxStream};
use futures::StreamExt;
use pgwire::api::portal::Format;
use pgwire::api::results::{DataRowEncoder, FieldFormat, FieldInfo, QueryResponse};
use pgwire::api::Type;
use pgwire::error::{PgWireError, PgWireResult};
use pgwire::messages::data::DataRow;
use pgwire::types::format::FormatOptions;
use pgwire::types::ToSqlText;
use postgres_types::{IsNull, ToSql};
use weft_engine::types::CHAR_LENGTH_KEY;

use crate::error::SqlResult;

/// How a column stored as Utf8 goes on the wire: its PostgreSQL type, and for
/// `character(n)` the length its values are blank-padded to.
#[derive(Debug, Clone)]
struct Override {
    ty: Type,
    pad_to: Option<usize>,
}

fn override_of(field: &Field) -> Option<Override> {
    let ty = override_type(field)?;
    let pad_to = field
        .metadata()
        .get(CHAR_LENGTH_KEY)
        .and_then(|n| n.parse().ok());
    Some(Override { ty, pad_to })
}

use crate::sql::origins::{ORIGIN_ATTNUM_KEY, ORIGIN_OID_KEY};
use crate::types::column_type::override_type;
use crate::types::pg_text::{pg_float_text, pg_interval_text, pg_timestamp_text};
use crate::wire::errors::IntoPgWire;

/// The PostgreSQL type of a column with this field.
pub fn pg_type_of(field: &Field) -> PgWireResult<Type> {
    crate::types::column_type::pg_type_of(field).map_err(IntoPgWire::into_pgwire)
}

pub fn fields_for(schema: &Schema, format: &Format) -> PgWireResult<Vec<FieldInfo>> {
    // A format per column, or one or none for all (pgwire would index past the list).
    if let Format::Individual(codes) = format {
        if codes.len() != schema.fields().len() {
            return Err(PgWireError::UserError(Box::new(
                pgwire::error::ErrorInfo::new(
                    "ERROR".to_owned(),
                    crate::error::codes::PROTOCOL_VIOLATION.to_owned(),
                    format!(
                        "bind message has {} result formats but query has {} columns",
                        codes.len(),
                        schema.fields().len()
                    ),
                ),
            )));
        }
    }
    schema
        .fields()
        .iter()
        .enumerate()
        .map(|(i, f)| {
            let (table, column) = origin(f);
            Ok(FieldInfo::new(
                f.name().clone(),
                table,
                column,
                pg_type_of(f)?,
                format.format_for(i),
            ))
        })
        .collect()
}

/// A value already rendered in both wire formats.
#[derive(Debug)]
struct Rendered<'a> {
    text: &'a str,
    binary: Vec<u8>,
}

impl ToSql for Rendered<'_> {
    fn to_sql(
        &self,
        _ty: &Type,
        out: &mut BytesMut,
    ) -> Result<IsNull, Box<dyn std::error::Error + Sync + Send>> {
        out.extend_from_slice(&self.binary);
        Ok(IsNull::No)
    }
    fn accepts(_ty: &Type) -> bool {
        true
    }
    postgres_types::to_sql_checked!();
}

impl ToSqlText for Rendered<'_> {
    fn to_sql_text(
        &self,
        _ty: &Type,
        out: &mut BytesMut,
        _format_options: &FormatOptions,
    ) -> Result<IsNull, Box<dyn std::error::Error + Sync + Send>> {
        out.extend_from_slice(self.text.as_bytes());
        Ok(IsNull::No)
    }
}

fn encode_override(
    encoder: &mut DataRowEncoder,
    array: &Arc<dyn Array>,
    row: usize,
    how: &Override,
    format: FieldFormat,
) -> PgWireResult<()> {
    let ty = &how.ty;
    if array.is_null(row) {
        return encoder.encode_field(&None::<i8>);
    }
    if let DataType::List(_) = array.data_type() {
        if *ty == Type::UUID_ARRAY {
            return encode_uuid_array(encoder, array, row, format);
        }
        return encode_vector(encoder, array, row, ty, format);
    }
    let stored = match array.data_type() {
        DataType::Utf8 => array.as_string::<i32>().value(row),
        DataType::LargeUtf8 => array.as_string::<i64>().value(row),
        DataType::Utf8View => array.as_string_view().value(row),
        _ => {
            return Err(PgWireError::ApiError(
                "override on a non-string column".into(),
            ))
        }
    };
    // character(n) values are stored without their trailing blanks.
    let padded;
    let text = match how.pad_to {
        Some(n) if stored.chars().count() < n => {
            padded = format!("{stored:<n$}");
            padded.as_str()
        }
        _ => stored,
    };
    let binary = if format == FieldFormat::Binary {
        if *ty == Type::UUID {
            uuid::Uuid::parse_str(text)
                .map(|u| u.as_bytes().to_vec())
                .map_err(|e| PgWireError::ApiError(Box::new(e)))?
        } else if *ty == Type::JSONB {
            let mut b = vec![1u8];
            b.extend_from_slice(text.as_bytes());
            b
        } else {
            text.as_bytes().to_vec()
        }
    } else {
        Vec::new()
    };
    encoder.encode_field(&Rendered { text, binary })
}

/// A uuid[] (stored as a list of canonical uuid texts): `{a,NULL}` in text, PostgreSQL's
/// binary array of 16-byte elements in binary.
fn encode_uuid_array(
    encoder: &mut DataRowEncoder,
    array: &Arc<dyn Array>,
    row: usize,
    format: FieldFormat,
) -> PgWireResult<()> {
    let values = array.as_list::<i32>().value(row);
    let Some(values) = values.as_string_opt::<i32>() else {
        return Err(PgWireError::ApiError("uuid[] of non-text values".into()));
    };
    let text = format!(
        "{{{}}}",
        values
            .iter()
            .map(|v| v.unwrap_or("NULL"))
            .collect::<Vec<_>>()
            .join(",")
    );
    let binary = if format == FieldFormat::Binary {
        let uuids = values
            .iter()
            .map(|v| {
                v.map(|s| uuid::Uuid::parse_str(s).map(|u| *u.as_bytes()))
                    .transpose()
            })
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| PgWireError::ApiError(Box::new(e)))?;
        let items: Vec<Option<&[u8]>> = uuids.iter().map(|u| u.as_ref().map(|b| &b[..])).collect();
        crate::types::binary_array::encode_array(2950, &items)
    } else {
        Vec::new()
    };
    encoder.encode_field(&Rendered {
        text: &text,
        binary,
    })
}

/// An `int2vector` or `oidvector` (a catalog list): `1 2 3` in text; in binary, a
/// one-dimensional array with lower bound 0, as PostgreSQL sends it.
fn encode_vector(
    encoder: &mut DataRowEncoder,
    array: &Arc<dyn Array>,
    row: usize,
    ty: &Type,
    format: FieldFormat,
) -> PgWireResult<()> {
    let values = array.as_list::<i32>().value(row);
    let values = arrow::compute::cast(&values, &DataType::Int64)
        .map_err(|e| PgWireError::ApiError(Box::new(e)))?;
    let values = values.as_primitive::<arrow::datatypes::Int64Type>();
    let items: Vec<i64> = values.iter().map(|v| v.unwrap_or(0)).collect();
    let text = items
        .iter()
        .map(|v| v.to_string())
        .collect::<Vec<_>>()
        .join(" ");
    let binary = if format == FieldFormat::Binary {
        let (elem, width): (u32, usize) = if *ty == Type::INT2_VECTOR {
            (21, 2)
        } else {
            (26, 4)
        };
        let mut b = Vec::with_capacity(20 + items.len() * (4 + width));
        b.extend_from_slice(&1i32.to_be_bytes());
        b.extend_from_slice(&0i32.to_be_bytes());
        b.extend_from_slice(&elem.to_be_bytes());
        b.extend_from_slice(&(items.len() as i32).to_be_bytes());
        b.extend_from_slice(&0i32.to_be_bytes());
        for v in &items {
            b.extend_from_slice(&(width as i32).to_be_bytes());
            if width == 2 {
                b.extend_from_slice(&(*v as i16).to_be_bytes());
            } else {
                b.extend_from_slice(&(*v as u32).to_be_bytes());
            }
        }
        b
    } else {
        Vec::new()
    };
    encoder.encode_field(&Rendered {
        text: &text,
        binary,
    })
}

fn custom_text(field: &Field, array: &Arc<dyn Array>, row: usize) -> Option<String> {
    if let DataType::Decimal128(..) = array.data_type() {
        let v = array
            .as_primitive::<arrow::datatypes::Decimal128Type>()
            .value(row);
        return crate::types::numeric::display_text(field, v);
    }
    use arrow::datatypes::{
        Float32Type, Float64Type, TimeUnit, TimestampMicrosecondType, TimestampMillisecondType,
        TimestampNanosecondType, TimestampSecondType,
    };
    Some(match array.data_type() {
        DataType::Float64 => {
            let v = array.as_primitive::<Float64Type>().value(row);
            pg_float_text(v, 15, format!("{v:e}"))
        }
        DataType::Float32 => {
            let v = array.as_primitive::<Float32Type>().value(row);
            pg_float_text(v as f64, 6, format!("{v:e}"))
        }
        DataType::Timestamp(unit, tz) => {
            let n: i128 = match unit {
                TimeUnit::Second => {
                    array.as_primitive::<TimestampSecondType>().value(row) as i128 * 1_000_000_000
                }
                TimeUnit::Millisecond => {
                    array.as_primitive::<TimestampMillisecondType>().value(row) as i128 * 1_000_000
                }
                TimeUnit::Microsecond => {
                    array.as_primitive::<TimestampMicrosecondType>().value(row) as i128 * 1000
                }
                TimeUnit::Nanosecond => {
                    array.as_primitive::<TimestampNanosecondType>().value(row) as i128
                }
            };
            pg_timestamp_text(n, tz.is_some())
        }
        DataType::Interval(arrow::datatypes::IntervalUnit::MonthDayNano) => {
            let v = array
                .as_primitive::<arrow::datatypes::IntervalMonthDayNanoType>()
                .value(row);
            pg_interval_text(v.months, v.days, v.nanoseconds)
        }
        _ => return None,
    })
}

fn has_custom_text(field: &Field) -> bool {
    matches!(
        field.data_type(),
        DataType::Float32
            | DataType::Float64
            | DataType::Timestamp(..)
            | DataType::Interval(arrow::datatypes::IntervalUnit::MonthDayNano)
    ) || crate::types::numeric::has_display_text(field)
}

fn encode_batch(
    fields: &Arc<Vec<FieldInfo>>,
    overrides: &Arc<Vec<Option<Override>>>,
    batch: &RecordBatch,
) -> Vec<PgWireResult<DataRow>> {
    BatchRows::new(fields.clone(), overrides.clone(), batch.clone()).collect()
}

/// A batch's rows, each encoded when it is asked for.
struct BatchRows {
    fields: Arc<Vec<FieldInfo>>,
    overrides: Arc<Vec<Option<Override>>>,
    batch: RecordBatch,
    encoder: DataRowEncoder,
    next: usize,
}

impl BatchRows {
    fn new(
        fields: Arc<Vec<FieldInfo>>,
        overrides: Arc<Vec<Option<Override>>>,
        batch: RecordBatch,
    ) -> BatchRows {
        BatchRows {
            encoder: DataRowEncoder::new(fields.clone()),
            fields,
            overrides,
            batch,
            next: 0,
        }
    }

    fn encode(&mut self, row: usize) -> PgWireResult<DataRow> {
        let (fields, batch, encoder) = (&self.fields, &self.batch, &mut self.encoder);
        let schema = batch.schema();
        for col in 0..batch.num_columns() {
            let array = batch.column(col);
            match &self.overrides[col] {
                Some(how) => encode_override(encoder, array, row, how, fields[col].format()),
                None if fields[col].format() == FieldFormat::Text
                    && has_custom_text(schema.field(col)) =>
                {
                    if array.is_null(row) {
                        encoder.encode_field(&None::<i8>)
                    } else {
                        let text = custom_text(schema.field(col), array, row).unwrap_or_default();
                        encoder.encode_field(&Rendered {
                            text: &text,
                            binary: Vec::new(),
                        })
                    }
                }
                None => arrow_pg::encoder::encode_value(
                    encoder,
                    array,
                    row,
                    schema.field(col),
                    &fields[col],
                ),
            }?;
        }
        Ok(encoder.take_row())
    }
}

impl Iterator for BatchRows {
    type Item = PgWireResult<DataRow>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.next >= self.batch.num_rows() {
            return None;
        }
        let row = self.next;
        self.next += 1;
        Some(self.encode(row))
    }
}

/// COPY TO's lines (a header first when `format` asks for one), and the number of rows.
pub fn copy_out_lines(
    schema: &Schema,
    batches: &[RecordBatch],
    format: &crate::sql::copy::CopyFormat,
) -> crate::error::SqlResult<(Vec<Vec<u8>>, usize)> {
    let mut lines = Vec::new();
    if format.header {
        let names: Vec<Option<&[u8]>> = schema
            .fields()
            .iter()
            .map(|f| Some(f.name().as_bytes()))
            .collect();
        lines.push(format.line(&names));
    }
    for row in text_rows(schema, batches)? {
        let values: Vec<Option<&[u8]>> = row.iter().map(|v| v.as_deref()).collect();
        lines.push(format.line(&values));
    }
    let rows = lines.len() - usize::from(format.header);
    Ok((lines, rows))
}

/// Every row in PostgreSQL's text representation (what a text-format DataRow carries),
/// `None` for NULL: the values COPY TO writes.
fn text_rows(
    schema: &Schema,
    batches: &[RecordBatch],
) -> crate::error::SqlResult<Vec<Vec<Option<Vec<u8>>>>> {
    let fields = Arc::new(
        fields_for(schema, &Format::UnifiedText)
            .map_err(|e| crate::error::SqlError::internal(e.to_string()))?,
    );
    let overrides: Arc<Vec<Option<Override>>> =
        Arc::new(schema.fields().iter().map(|f| override_of(f)).collect());
    let mut out = Vec::new();
    for b in batches {
        for row in encode_batch(&fields, &overrides, b) {
            let row = row.map_err(|e| crate::error::SqlError::internal(e.to_string()))?;
            // A DataRow's fields: a 4-byte length (-1 for NULL), then the bytes.
            let data = &row.data[..];
            let mut values = Vec::with_capacity(row.field_count as usize);
            let mut at = 0;
            for _ in 0..row.field_count {
                let len = i32::from_be_bytes(
                    data.get(at..at + 4)
                        .and_then(|b| b.try_into().ok())
                        .ok_or_else(|| crate::error::SqlError::internal("short data row"))?,
                );
                at += 4;
                if len < 0 {
                    values.push(None);
                } else {
                    let end = at + len as usize;
                    values.push(Some(
                        data.get(at..end)
                            .ok_or_else(|| crate::error::SqlError::internal("short data row"))?
                            .to_vec(),
                    ));
                    at = end;
                }
            }
            out.push(values);
        }
    }
    Ok(out)
}

pub fn query_response(
    schema: &Schema,
    batches: Vec<RecordBatch>,
    format: &Format,
) -> PgWireResult<QueryResponse> {
    stream_response(
        schema,
        stream::iter(batches.into_iter().map(Ok)).boxed(),
        format,
    )
}

/// Rows as the client reads them: each row is encoded when the one before it was sent,
/// and a batch is asked for when the rows before it are. An error in the stream reaches the
/// client after the rows before it.
pub fn stream_response(
    schema: &Schema,
    batches: BoxStream<'static, SqlResult<RecordBatch>>,
    format: &Format,
) -> PgWireResult<QueryResponse> {
    let fields = Arc::new(fields_for(schema, format)?);
    let overrides: Arc<Vec<Option<Override>>> =
        Arc::new(schema.fields().iter().map(|f| override_of(f)).collect());
    let encoding = fields.clone();
    let rows = batches.flat_map(move |b| match b {
        Ok(b) => stream::iter(BatchRows::new(encoding.clone(), overrides.clone(), b)).left_stream(),
        Err(e) => stream::once(futures::future::ready(Err(e.into_pgwire()))).right_stream(),
    });
    Ok(QueryResponse::new(fields, rows))
}

fn origin(field: &Field) -> (Option<i32>, Option<i16>) {
    let md = field.metadata();
    (
        md.get(ORIGIN_OID_KEY)
            .and_then(|v| v.parse::<u32>().ok())
            .map(|v| v as i32),
        md.get(ORIGIN_ATTNUM_KEY).and_then(|v| v.parse().ok()),
    )
}
