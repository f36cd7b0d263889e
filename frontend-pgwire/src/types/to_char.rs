//! `to_char(timestamp|timestamptz|date, format)` with PostgreSQL's template patterns
//! (`YYYY-MM-DD HH24:MI:SS`, `Month`, `Dy`, `FM`...). DataFusion's `to_char` reads chrono's
//! `%Y` patterns and prints PostgreSQL's patterns back unchanged: a wrong answer, which this
//! function replaces. `to_char` of a number or an interval answers 0A000 rather than
//! printing something else.

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, StringArray};
use arrow::datatypes::{DataType, TimeUnit, TimestampMicrosecondType};
use chrono::{Datelike, NaiveDateTime, Timelike};
use datafusion::common::{DataFusionError, Result};
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};

use crate::error::{codes, SqlError};

const MONTHS: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];
const DAYS: [&str; 7] = [
    "Sunday",
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
];

/// The patterns, longest first where one is a prefix of another.
const PATTERNS: [&str; 45] = [
    "Y,YYY", "HH24", "HH12", "YYYY", "SSSSS", "SSSS", "MONTH", "Month", "month", "A.M.", "P.M.",
    "a.m.", "p.m.", "IYYY", "YYY", "MON", "Mon", "mon", "DAY", "Day", "day", "DDD", "HH", "MI",
    "SS", "MS", "US", "AM", "PM", "am", "pm", "YY", "MM", "DY", "Dy", "dy", "DD", "ID", "IW", "WW",
    "CC", "TZ", "Y", "D", "Q",
];

fn cased(name: &str, pattern: &str) -> String {
    let first = pattern.chars().next().unwrap_or('x');
    let second = pattern.chars().nth(1).unwrap_or('x');
    if first.is_lowercase() {
        name.to_lowercase()
    } else if second.is_uppercase() {
        name.to_uppercase()
    } else {
        name.to_string()
    }
}

/// Formats `t` by a PostgreSQL template; `zone` is what `TZ` prints (empty for a timestamp
/// without time zone).
pub fn format(t: &NaiveDateTime, template: &str, zone: &str) -> String {
    let mut out = String::new();
    let mut rest = template;
    let mut fill = false; // FM: no padding for the next pattern
    while !rest.is_empty() {
        if let Some(r) = rest.strip_prefix("FM").or_else(|| rest.strip_prefix("fm")) {
            fill = true;
            rest = r;
            continue;
        }
        if let Some(r) = rest.strip_prefix('"') {
            // Quoted text is copied; a backslash escapes a quote inside it.
            let mut chars = r.char_indices();
            let mut end = r.len();
            while let Some((i, c)) = chars.next() {
                if c == '\\' {
                    if let Some((_, q)) = chars.next() {
                        out.push(q);
                    }
                    continue;
                }
                if c == '"' {
                    end = i + 1;
                    break;
                }
                out.push(c);
            }
            rest = &r[end.min(r.len())..];
            continue;
        }
        let Some(p) = PATTERNS.iter().find(|p| rest.starts_with(**p)) else {
            let c = rest.chars().next().expect("not empty");
            out.push(c);
            rest = &rest[c.len_utf8()..];
            continue;
        };
        rest = &rest[p.len()..];
        let num = |v: i64, width: usize| {
            if fill {
                v.to_string()
            } else {
                format!("{v:0width$}")
            }
        };
        let name = |n: &str, pad: bool| {
            let s = cased(n, p);
            if pad && !fill {
                format!("{s:<9}")
            } else {
                s
            }
        };
        let hour12 = match t.hour() % 12 {
            0 => 12,
            h => h,
        } as i64;
        let pm = t.hour() >= 12;
        let dow = t.weekday().num_days_from_sunday() as usize;
        let text = match *p {
            "Y,YYY" => {
                let y = t.year();
                format!("{},{:03}", y / 1000, y % 1000)
            }
            "YYYY" => num(t.year() as i64, 4),
            "YYY" => num((t.year() % 1000) as i64, 3),
            "YY" => num((t.year() % 100) as i64, 2),
            "Y" => num((t.year() % 10) as i64, 1),
            "IYYY" => num(t.iso_week().year() as i64, 4),
            "CC" => num(((t.year() - 1) / 100 + 1) as i64, 2),
            "MM" => num(t.month() as i64, 2),
            "MONTH" | "Month" | "month" => name(MONTHS[t.month0() as usize], true),
            "MON" | "Mon" | "mon" => name(&MONTHS[t.month0() as usize][..3], false),
            "DAY" | "Day" | "day" => name(DAYS[dow], true),
            "DY" | "Dy" | "dy" => name(&DAYS[dow][..3], false),
            "DDD" => num(t.ordinal() as i64, 3),
            "DD" => num(t.day() as i64, 2),
            "D" => num(dow as i64 + 1, 1),
            "ID" => num(t.weekday().number_from_monday() as i64, 1),
            "IW" => num(t.iso_week().week() as i64, 2),
            "WW" => num((t.ordinal0() / 7 + 1) as i64, 2),
            "HH24" => num(t.hour() as i64, 2),
            "HH12" | "HH" => num(hour12, 2),
            "MI" => num(t.minute() as i64, 2),
            "SS" => num(t.second() as i64, 2),
            "MS" => num((t.nanosecond() / 1_000_000) as i64, 3),
            "US" => num((t.nanosecond() / 1_000) as i64, 6),
            "SSSS" | "SSSSS" => t.num_seconds_from_midnight().to_string(),
            "AM" | "PM" => (if pm { "PM" } else { "AM" }).to_string(),
            "am" | "pm" => (if pm { "pm" } else { "am" }).to_string(),
            "A.M." | "P.M." => (if pm { "P.M." } else { "A.M." }).to_string(),
            "a.m." | "p.m." => (if pm { "p.m." } else { "a.m." }).to_string(),
            "TZ" => zone.to_string(),
            "Q" => num((t.month0() / 3 + 1) as i64, 1),
            _ => String::new(),
        };
        out.push_str(&text);
        fill = false;
    }
    out
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct ToChar {
    signature: Signature,
    aliases: Vec<String>,
}

fn unsupported(t: &DataType) -> DataFusionError {
    DataFusionError::External(Box::new(SqlError::new(
        codes::FEATURE_NOT_SUPPORTED,
        format!("to_char of {t} is not supported (only dates and timestamps)"),
    )))
}

impl ScalarUDFImpl for ToChar {
    fn name(&self) -> &str {
        "to_char"
    }
    /// DataFusion's `to_char` is also registered as `date_format`: taking that name too
    /// leaves none of it behind (a state rebuilt from this one registers every function
    /// it holds again, and would otherwise bring it back under `to_char`).
    fn aliases(&self) -> &[String] {
        &self.aliases
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, args: &[DataType]) -> Result<DataType> {
        match &args[0] {
            DataType::Date32 | DataType::Date64 | DataType::Timestamp(..) | DataType::Null => {
                Ok(DataType::Utf8)
            }
            other => Err(unsupported(other)),
        }
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let input = args.args[0].data_type();
        let zone = match &input {
            DataType::Timestamp(_, Some(_)) => "UTC",
            _ => "",
        };
        let rows = crate::types::expr_rules::rows_of(&args.args);
        let n = rows.unwrap_or(1);
        let ts = arrow::compute::cast(
            &args.args[0].to_array(n)?,
            &DataType::Timestamp(TimeUnit::Microsecond, None),
        )?;
        let ts = ts.as_primitive::<TimestampMicrosecondType>();
        let fmt = arrow::compute::cast(&args.args[1].to_array(n)?, &DataType::Utf8)?;
        let fmt = fmt.as_string::<i32>();
        let out: StringArray = (0..n)
            .map(|i| {
                if ts.is_null(i) || fmt.is_null(i) {
                    return None;
                }
                let t = chrono::DateTime::from_timestamp_micros(ts.value(i))?.naive_utc();
                Some(format(&t, fmt.value(i), zone))
            })
            .collect();
        let out: ArrayRef = Arc::new(out);
        crate::types::expr_rules::shaped(out, rows)
    }
}

/// `to_char`, registered in place of DataFusion's.
pub fn udf() -> ScalarUDF {
    ScalarUDF::new_from_impl(ToChar {
        signature: Signature::any(2, Volatility::Immutable),
        aliases: vec!["date_format".into()],
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn postgresql_templates() {
        let t = NaiveDateTime::parse_from_str("2024-02-29 13:05:09", "%Y-%m-%d %H:%M:%S").unwrap();
        assert_eq!(
            format(&t, "YYYY-MM-DD HH24:MI:SS", ""),
            "2024-02-29 13:05:09"
        );
        assert_eq!(format(&t, "HH12:MI AM", ""), "01:05 PM");
        assert_eq!(
            format(&t, "Day, DD Month YYYY", ""),
            "Thursday , 29 February  2024"
        );
        assert_eq!(
            format(&t, "FMDay, FMDD FMMonth", ""),
            "Thursday, 29 February"
        );
        assert_eq!(format(&t, "DY Mon dy", ""), "THU Feb thu");
        assert_eq!(format(&t, "\"Week\" IW, Q", ""), "Week 09, 1");
        assert_eq!(format(&t, "DDD D TZ", "UTC"), "060 5 UTC");
    }
}
