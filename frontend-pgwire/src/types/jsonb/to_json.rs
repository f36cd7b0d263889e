//! SQL values as JSON, as PostgreSQL's `to_jsonb`/`to_json` make them: numbers stay
//! numbers, text becomes a string, a jsonb or json value is embedded as it is, an array
//! becomes an array, and a date or timestamp its ISO 8601 string.

use arrow::datatypes::{DataType, Field};
use datafusion::scalar::ScalarValue;
use weft_engine::types::PG_TYPE_KEY;

use super::value::{canonical_number, parse, write_str, J};

/// The weft type name a field carries (`jsonb`, `json`, `uuid`, ...).
fn pg_type(field: &Field) -> Option<&str> {
    field.metadata().get(PG_TYPE_KEY).map(String::as_str)
}

/// Whether values of `field` are json or jsonb text.
pub fn is_json(field: &Field) -> bool {
    matches!(pg_type(field), Some("json" | "jsonb"))
}

fn decimal(field: &Field, v: i128, scale: i8) -> String {
    crate::types::numeric::display_text(field, v)
        .unwrap_or_else(|| crate::types::numeric::decimal_text(v, scale, scale))
}

/// A timestamp or date as PostgreSQL's JSON writes it (`2024-01-02T03:04:05`, with the
/// offset for timestamptz).
fn datetime(v: &ScalarValue) -> Option<String> {
    let text = v.to_string();
    match v {
        ScalarValue::Date32(Some(_)) | ScalarValue::Date64(Some(_)) => Some(text),
        ScalarValue::TimestampSecond(Some(_), tz)
        | ScalarValue::TimestampMillisecond(Some(_), tz)
        | ScalarValue::TimestampMicrosecond(Some(_), tz)
        | ScalarValue::TimestampNanosecond(Some(_), tz) => {
            let text = text.trim_end_matches('Z').replace(' ', "T");
            Some(if tz.is_some() {
                let (at, off) = match text.rfind(['+', '-']) {
                    Some(i) if i > 10 => text.split_at(i),
                    _ => (text.as_str(), "+00:00"),
                };
                format!("{at}{off}")
            } else {
                text
            })
        }
        _ => None,
    }
}

fn float(f: f64) -> J {
    if f.is_finite() {
        J::Num(canonical_number(&format!("{f}")))
    } else if f.is_nan() {
        J::Str("NaN".into())
    } else if f > 0.0 {
        J::Str("Infinity".into())
    } else {
        J::Str("-Infinity".into())
    }
}

/// `to_jsonb(v)` for a value of `field`; SQL NULL is JSON null. Text that a json or jsonb
/// field holds but that does not parse (it cannot, once stored) is kept as a string.
pub fn to_j(v: &ScalarValue, field: &Field) -> J {
    use ScalarValue as S;
    if v.is_null() {
        return J::Null;
    }
    match v {
        S::Boolean(Some(b)) => J::Bool(*b),
        S::Int8(Some(n)) => J::Num(n.to_string()),
        S::Int16(Some(n)) => J::Num(n.to_string()),
        S::Int32(Some(n)) => J::Num(n.to_string()),
        S::Int64(Some(n)) => J::Num(n.to_string()),
        S::UInt8(Some(n)) => J::Num(n.to_string()),
        S::UInt16(Some(n)) => J::Num(n.to_string()),
        S::UInt32(Some(n)) => J::Num(n.to_string()),
        S::UInt64(Some(n)) => J::Num(n.to_string()),
        S::Float32(Some(f)) => float(*f as f64),
        S::Float64(Some(f)) => float(*f),
        S::Decimal128(Some(n), _, s) => J::Num(canonical_number(&decimal(field, *n, *s))),
        S::Utf8(Some(s)) | S::Utf8View(Some(s)) | S::LargeUtf8(Some(s)) => {
            if is_json(field) {
                parse(s).unwrap_or_else(|_| J::Str(s.clone()))
            } else {
                J::Str(s.clone())
            }
        }
        S::List(a) => list(a.value(0), field),
        S::LargeList(a) => list(a.value(0), field),
        S::FixedSizeList(a) => list(a.value(0), field),
        other => J::Str(datetime(other).unwrap_or_else(|| other.to_string())),
    }
}

fn list(values: arrow::array::ArrayRef, field: &Field) -> J {
    let elem = match field.data_type() {
        DataType::List(f) | DataType::LargeList(f) | DataType::FixedSizeList(f, _) => {
            f.as_ref().clone()
        }
        t => Field::new("item", t.clone(), true),
    };
    J::Arr(
        (0..values.len())
            .map(|i| match ScalarValue::try_from_array(&values, i) {
                Ok(v) => to_j(&v, &elem),
                Err(_) => J::Null,
            })
            .collect(),
    )
}

/// `to_json(v)`'s text: as [`to_j`], except that a json value keeps its own text and
/// arrays print without spaces, as PostgreSQL's json functions write them.
pub fn json_text(v: &ScalarValue, field: &Field) -> String {
    use ScalarValue as S;
    match v {
        S::Utf8(Some(s)) | S::Utf8View(Some(s)) | S::LargeUtf8(Some(s)) if is_json(field) => {
            s.clone()
        }
        S::Utf8(Some(s)) | S::Utf8View(Some(s)) | S::LargeUtf8(Some(s)) => {
            let mut out = String::new();
            write_str(&mut out, s);
            out
        }
        S::List(_) | S::LargeList(_) | S::FixedSizeList(_) => {
            fn compact(v: &J) -> String {
                match v {
                    J::Arr(items) => format!(
                        "[{}]",
                        items.iter().map(compact).collect::<Vec<_>>().join(",")
                    ),
                    other => super::value::to_text(other),
                }
            }
            compact(&to_j(v, field))
        }
        other => super::value::to_text(&to_j(other, field)),
    }
}
