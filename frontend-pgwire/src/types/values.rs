//! Checks and normalizes a value on its way into a column: NOT NULL, varchar and char
//! lengths (char values lose their trailing blanks), uuid and json syntax.

use datafusion::scalar::ScalarValue;
use weft_engine::schema::{ColumnDef, TableDef};
use weft_engine::SqlType;

use crate::error::{codes, SqlError, SqlResult};

/// The stored form of a text value compared with a column of type `ty`, where PostgreSQL
/// compares by value rather than by text: `character(n)` without trailing blanks, `uuid`
/// lower-case and hyphenated. `None`: compared as written.
pub fn canonical_text(ty: &SqlType, s: &str) -> Option<String> {
    match ty {
        SqlType::Char { .. } => {
            let t = s.trim_end_matches(' ');
            (t.len() != s.len()).then(|| t.to_string())
        }
        SqlType::Uuid => {
            let u = pg_uuid(s)?;
            (u != s).then_some(u)
        }
        SqlType::Jsonb => crate::types::jsonb::canonical(s).ok().filter(|c| c != s),
        _ => None,
    }
}

/// PostgreSQL's uuid input: 32 hex digits, optionally in braces, with a hyphen allowed
/// after any group of four; the stored form is lower-case and hyphenated 8-4-4-4-12.
pub fn pg_uuid(s: &str) -> Option<String> {
    let inner = match s.strip_prefix('{') {
        Some(rest) => rest.strip_suffix('}')?,
        None => s,
    };
    let bytes = inner.as_bytes();
    let mut hex = Vec::with_capacity(32);
    let mut at = 0;
    for i in 0..16 {
        for _ in 0..2 {
            let c = *bytes.get(at)?;
            if !c.is_ascii_hexdigit() {
                return None;
            }
            hex.push(c.to_ascii_lowercase());
            at += 1;
        }
        if i % 2 == 1 && i < 15 && bytes.get(at) == Some(&b'-') {
            at += 1;
        }
    }
    if at != bytes.len() {
        return None;
    }
    let h = String::from_utf8(hex).ok()?;
    Some(format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    ))
}

pub fn check_value(table: &TableDef, col: &ColumnDef, v: ScalarValue) -> SqlResult<ScalarValue> {
    if v.is_null() {
        if !col.nullable {
            return Err(SqlError::new(
                codes::NOT_NULL_VIOLATION,
                format!(
                    "null value in column \"{}\" of relation \"{}\" violates not-null constraint",
                    col.name,
                    table.relname()
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
            // Stored without trailing blanks: PostgreSQL's bpchar ignores them when it
            // compares, groups, orders, measures and casts to text; output pads them back
            // (see CHAR_LENGTH_KEY). Only the blanks beyond the length may be cut.
            let n = *chars as usize;
            let trimmed = s.trim_end_matches(' ');
            if trimmed.chars().count() > n {
                return Err(SqlError::new(
                    codes::STRING_DATA_RIGHT_TRUNCATION,
                    format!("value too long for type character({n})"),
                ));
            }
            if trimmed.len() == s.len() {
                return Ok(v);
            }
            Ok(ScalarValue::Utf8(Some(trimmed.to_string())))
        }
        SqlType::Uuid => match pg_uuid(s) {
            Some(u) => Ok(ScalarValue::Utf8(Some(u))),
            None => Err(SqlError::new(
                codes::INVALID_TEXT_REPRESENTATION,
                format!("invalid input syntax for type uuid: \"{s}\""),
            )),
        },
        SqlType::Jsonb => crate::types::jsonb::canonical(s).map(|c| ScalarValue::Utf8(Some(c))),
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
        // PostgreSQL reports bad hex data as an invalid parameter value (22023).
        if let Some(&c) = digits.iter().find(|c| !c.is_ascii_hexdigit()) {
            return Err(SqlError::new(
                codes::INVALID_PARAMETER_VALUE,
                format!("invalid hexadecimal digit: \"{}\"", c as char),
            ));
        }
        if !digits.len().is_multiple_of(2) {
            return Err(SqlError::new(
                codes::INVALID_PARAMETER_VALUE,
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

#[cfg(test)]
mod tests {
    #[test]
    fn uuid_input_as_postgresql_reads_it() {
        let want = Some("a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11".to_string());
        for s in [
            "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11",
            "A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11",
            "{a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11}",
            "a0eebc999c0b4ef8bb6d6bb9bd380a11",
            "a0ee-bc99-9c0b-4ef8-bb6d-6bb9-bd38-0a11",
            "{a0eebc99-9c0b4ef8-bb6d6bb9-bd380a11}",
        ] {
            assert_eq!(super::pg_uuid(s), want, "{s}");
        }
        for s in [
            "",
            "a0eebc99",
            "{a0eebc999c0b4ef8bb6d6bb9bd380a11",
            "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a1g",
            "a0e-ebc99-9c0b-4ef8-bb6d-6bb9bd380a11",
            " a0eebc999c0b4ef8bb6d6bb9bd380a11",
        ] {
            assert_eq!(super::pg_uuid(s), None, "{s}");
        }
    }
}

/// A timestamp text whose time has no seconds (`2024-01-01 12:00`, `...T12:00+02`), with
/// `:00` added: PostgreSQL reads it, Arrow's parser wants seconds. `None` when the text
/// needs nothing.
pub fn timestamp_with_seconds(s: &str) -> Option<String> {
    let t = s.trim();
    let b = t.as_bytes();
    // YYYY-MM-DD, a space or T, then H:MM or HH:MM.
    if b.len() < 14 || !(b[10] == b' ' || b[10] == b'T') {
        return None;
    }
    let date_ok = b[..10].iter().enumerate().all(|(i, c)| {
        if i == 4 || i == 7 {
            *c == b'-'
        } else {
            c.is_ascii_digit()
        }
    });
    if !date_ok {
        return None;
    }
    let rest = &t[11..];
    let colon = rest.find(':')?;
    let (hh, after) = (&rest[..colon], &rest[colon + 1..]);
    if hh.is_empty() || hh.len() > 2 || !hh.bytes().all(|c| c.is_ascii_digit()) {
        return None;
    }
    let mm: String = after.chars().take_while(char::is_ascii_digit).collect();
    if mm.len() != 2 {
        return None;
    }
    let tail = &after[2..];
    if tail.starts_with(':') {
        return None;
    }
    Some(format!("{}{hh:0>2}:{mm}:00{tail}", &t[..11]))
}

#[cfg(test)]
mod timestamp_tests {
    use super::timestamp_with_seconds as f;

    #[test]
    fn seconds_are_added_only_where_missing() {
        assert_eq!(
            f("2024-01-01 12:00").as_deref(),
            Some("2024-01-01 12:00:00")
        );
        assert_eq!(
            f("2024-01-01T9:05+02").as_deref(),
            Some("2024-01-01T09:05:00+02")
        );
        assert_eq!(f("2024-01-01 12:00:30"), None);
        assert_eq!(f("2024-01-01"), None);
        assert_eq!(f("hello world 12:00"), None);
    }
}
