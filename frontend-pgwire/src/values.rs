//! Checks and normalizes a value on its way into a column: NOT NULL, varchar and char
//! lengths, uuid and json syntax.

use datafusion::scalar::ScalarValue;
use weft_engine::schema::{ColumnDef, TableDef};
use weft_engine::SqlType;

use crate::error::{codes, SqlError, SqlResult};

pub fn check_value(table: &TableDef, col: &ColumnDef, v: ScalarValue) -> SqlResult<ScalarValue> {
    if v.is_null() {
        if !col.nullable {
            return Err(SqlError::new(
                codes::NOT_NULL_VIOLATION,
                format!(
                    "null value in column \"{}\" of relation \"{}\" violates not-null constraint",
                    col.name, table.name
                ),
            ));
        }
        return Ok(ScalarValue::try_from(&col.ty.arrow_type()).unwrap_or(v));
    }
    let ScalarValue::Utf8(Some(s)) = &v else {
        return Ok(v);
    };
    match &col.ty {
        SqlType::Varchar { max_chars: Some(n) } => {
            if s.chars().count() > *n as usize {
                let trimmed = s.trim_end_matches(' ');
                if trimmed.chars().count() > *n as usize {
                    return Err(SqlError::new(
                        codes::STRING_DATA_RIGHT_TRUNCATION,
                        format!("value too long for type character varying({n})"),
                    ));
                }
                return Ok(ScalarValue::Utf8(Some(
                    trimmed.chars().take(*n as usize).collect(),
                )));
            }
            Ok(v)
        }
        SqlType::Char { chars } => {
            let n = *chars as usize;
            let len = s.chars().count();
            if len > n {
                let trimmed = s.trim_end_matches(' ');
                if trimmed.chars().count() > n {
                    return Err(SqlError::new(
                        codes::STRING_DATA_RIGHT_TRUNCATION,
                        format!("value too long for type character({n})"),
                    ));
                }
                return Ok(ScalarValue::Utf8(Some(format!("{trimmed:<n$}"))));
            }
            Ok(ScalarValue::Utf8(Some(format!("{s:<n$}"))))
        }
        SqlType::Uuid => match uuid::Uuid::parse_str(s.trim()) {
            Ok(u) => Ok(ScalarValue::Utf8(Some(u.hyphenated().to_string()))),
            Err(_) => Err(SqlError::new(
                codes::INVALID_TEXT_REPRESENTATION,
                format!("invalid input syntax for type uuid: \"{s}\""),
            )),
        },
        SqlType::Jsonb => match crate::jsonb::canonical(s) {
            Ok(c) => Ok(ScalarValue::Utf8(Some(c))),
            Err(e) => Err(SqlError::new(
                codes::INVALID_TEXT_REPRESENTATION,
                "invalid input syntax for type json".to_string(),
            )
            .with_detail(e)),
        },
        SqlType::Json => match serde_json::from_str::<serde_json::Value>(s) {
            Ok(_) => Ok(v),
            Err(e) => Err(SqlError::new(
                codes::INVALID_TEXT_REPRESENTATION,
                "invalid input syntax for type json".to_string(),
            )
            .with_detail(e.to_string())),
        },
        _ => Ok(v),
    }
}

/// Decodes PostgreSQL's bytea text input (`\x0102` hex, or the escape format) for a
/// string column being stored into a bytea column.
pub fn decode_bytea_column(col: &arrow::array::ArrayRef) -> SqlResult<arrow::array::ArrayRef> {
    use arrow::array::{Array, AsArray, BinaryBuilder};
    let strings = col.as_string::<i32>();
    let mut out = BinaryBuilder::with_capacity(strings.len(), strings.value_data().len());
    for i in 0..strings.len() {
        if strings.is_null(i) {
            out.append_null();
        } else {
            out.append_value(decode_bytea(strings.value(i))?);
        }
    }
    Ok(std::sync::Arc::new(out.finish()))
}

pub fn decode_bytea(s: &str) -> SqlResult<Vec<u8>> {
    let bad = || {
        SqlError::new(
            codes::INVALID_TEXT_REPRESENTATION,
            "invalid input syntax for type bytea",
        )
    };
    if let Some(hex) = s.strip_prefix("\\x").or_else(|| s.strip_prefix("\\X")) {
        let digits: Vec<u8> = hex.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
        if !digits.len().is_multiple_of(2) {
            return Err(SqlError::new(
                codes::INVALID_TEXT_REPRESENTATION,
                "invalid hexadecimal data: odd number of digits",
            ));
        }
        return digits
            .chunks(2)
            .map(|p| {
                let h = (p[0] as char).to_digit(16).ok_or_else(bad)?;
                let l = (p[1] as char).to_digit(16).ok_or_else(bad)?;
                Ok((h * 16 + l) as u8)
            })
            .collect();
    }
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] != b'\\' {
            out.push(b[i]);
            i += 1;
        } else if b.get(i + 1) == Some(&b'\\') {
            out.push(b'\\');
            i += 2;
        } else if i + 3 < b.len() && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c)) {
            let v = (b[i + 1] - b'0') as u32 * 64
                + (b[i + 2] - b'0') as u32 * 8
                + (b[i + 3] - b'0') as u32;
            if v > 255 {
                return Err(bad());
            }
            out.push(v as u8);
            i += 4;
        } else {
            return Err(bad());
        }
    }
    Ok(out)
}
