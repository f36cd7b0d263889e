//! Settings' values: the defaults, parsing and printing of booleans, isolation levels,
//! time settings and timestamps, the startup `options` string. Pure: no session state.

use std::collections::BTreeMap;
use std::sync::Arc;

use arrow::array::{RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::sql::sqlparser::ast::{self, Statement};

use crate::catalog::txn::{Isolation, Txn, TxnLimits};
use crate::error::{codes, SqlError, SqlResult};
use crate::sql::outcome::{Notice, Outcome};
use weft_engine::Timestamp;

pub(crate) fn default_settings() -> BTreeMap<String, String> {
    [
        ("server_version", "15.0"),
        ("server_version_num", "150000"),
        ("server_encoding", "UTF8"),
        ("client_encoding", "UTF8"),
        ("datestyle", "ISO, MDY"),
        ("timezone", "UTC"),
        ("intervalstyle", "postgres"),
        ("integer_datetimes", "on"),
        ("standard_conforming_strings", "on"),
        ("search_path", "\"$user\", public"),
        ("transaction_isolation", "repeatable read"),
        ("default_transaction_isolation", "repeatable read"),
        ("transaction_read_only", "off"),
        ("default_transaction_read_only", "off"),
        ("application_name", ""),
        ("extra_float_digits", "1"),
        ("max_identifier_length", "63"),
        ("is_superuser", "on"),
        ("role", "none"),
        ("statement_timeout", "0"),
        ("lock_timeout", "0"),
        ("idle_in_transaction_session_timeout", "0"),
        ("client_min_messages", "notice"),
        ("max_connections", "500"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

/// The transaction limits, shown as read-only settings (`SHOW weft.txn_rows_max`): each
/// name, its value, and the `weft serve` flag that sets it.
pub(crate) fn limit_settings(limits: &TxnLimits) -> [(&'static str, String, &'static str); 3] {
    [
        (
            "weft.txn_rows_max",
            limits.rows_max.to_string(),
            "--txn-rows-max",
        ),
        (
            "weft.txn_bytes_max",
            limits.bytes_max.to_string(),
            "--txn-bytes-max",
        ),
        (
            "weft.txn_duration_max",
            format!("{}s", limits.duration_max.as_secs()),
            "--txn-duration-max-s",
        ),
    ]
}

/// 55P02 for a SET of a setting only the server's start sets.
pub(crate) fn read_only_setting(name: &str, flag: &str) -> SqlError {
    SqlError::new(
        codes::CANT_CHANGE_RUNTIME_PARAM,
        format!("parameter \"{name}\" cannot be changed without restarting the server"),
    )
    .with_hint(format!("start weft serve with {flag}"))
}

pub(crate) fn single_row(name: &str, value: &str) -> Outcome {
    let schema: SchemaRef = Arc::new(Schema::new(vec![Field::new(name, DataType::Utf8, true)]));
    let batch = RecordBatch::try_new(
        schema.clone(),
        vec![Arc::new(StringArray::from(vec![value.to_string()]))],
    )
    .expect("one utf8 column");
    Outcome::Rows {
        schema,
        batches: vec![batch],
    }
}

pub(crate) fn is_on(v: &str) -> bool {
    matches!(
        v.trim().to_lowercase().as_str(),
        "on" | "true" | "yes" | "1" | "t"
    )
}

pub(crate) fn parse_bool(name: &str, value: &str) -> SqlResult<bool> {
    match value.trim().to_lowercase().as_str() {
        "on" | "true" | "yes" | "1" | "t" | "y" => Ok(true),
        "off" | "false" | "no" | "0" | "f" | "n" => Ok(false),
        _ => Err(SqlError::new(
            codes::INVALID_PARAMETER_VALUE,
            format!("parameter \"{name}\" requires a Boolean value"),
        )),
    }
}

pub(crate) fn raised_notice(asked: &str) -> Notice {
    Notice {
        severity: "NOTICE",
        code: codes::SUCCESSFUL_COMPLETION,
        message: format!(
            "{asked} runs as REPEATABLE READ (snapshot isolation): weft has no weaker level"
        ),
    }
}

pub(crate) fn parse_level(
    name: &str,
    value: &str,
    notices: &mut Vec<Notice>,
) -> SqlResult<Isolation> {
    match Isolation::parse(value) {
        Some((level, raised)) => {
            if raised {
                notices.push(raised_notice(&value.to_uppercase()));
            }
            Ok(level)
        }
        None => Err(SqlError::new(
            codes::INVALID_PARAMETER_VALUE,
            format!("invalid value for parameter \"{name}\": \"{value}\""),
        )
        .with_hint(
            "Available values: serializable, repeatable read, read committed, read uncommitted.",
        )),
    }
}

pub(crate) fn level_of(
    l: &ast::TransactionIsolationLevel,
    notices: &mut Vec<Notice>,
) -> SqlResult<Isolation> {
    use ast::TransactionIsolationLevel as L;
    match l {
        L::Serializable => Ok(Isolation::Serializable),
        L::RepeatableRead | L::Snapshot => Ok(Isolation::RepeatableRead),
        L::ReadCommitted => {
            notices.push(raised_notice("READ COMMITTED"));
            Ok(Isolation::RepeatableRead)
        }
        L::ReadUncommitted => {
            notices.push(raised_notice("READ UNCOMMITTED"));
            Ok(Isolation::RepeatableRead)
        }
    }
}

/// Applies BEGIN's or SET TRANSACTION's modes to a transaction that has not read yet.
pub(crate) fn apply_modes(
    t: &mut Txn,
    modes: &[ast::TransactionMode],
    notices: &mut Vec<Notice>,
) -> SqlResult<()> {
    for m in modes {
        match m {
            ast::TransactionMode::IsolationLevel(l) => t.isolation = level_of(l, notices)?,
            ast::TransactionMode::AccessMode(a) => {
                t.read_only = matches!(a, ast::TransactionAccessMode::ReadOnly)
            }
        }
    }
    Ok(())
}

/// The command name PostgreSQL puts in "cannot execute X in a read-only transaction".
pub(crate) fn write_kind(stmt: &Statement) -> Option<&'static str> {
    match stmt {
        Statement::Insert(_) => Some("INSERT"),
        Statement::Update(_) => Some("UPDATE"),
        Statement::Delete(_) => Some("DELETE"),
        Statement::CreateTable(_) => Some("CREATE TABLE"),
        Statement::Drop {
            object_type: ast::ObjectType::Index,
            ..
        } => Some("DROP INDEX"),
        Statement::Drop { .. } => Some("DROP TABLE"),
        Statement::CreateIndex(_) => Some("CREATE INDEX"),
        Statement::AlterTable(_) => Some("ALTER TABLE"),
        Statement::Comment { .. } => Some("COMMENT"),
        Statement::CreateSequence { .. } => Some("CREATE SEQUENCE"),
        Statement::CreateRole(_) => Some("CREATE ROLE"),
        Statement::AlterRole { .. } => Some("ALTER ROLE"),
        Statement::Truncate(_) => Some("TRUNCATE TABLE"),
        Statement::Grant(_) => Some("GRANT"),
        Statement::Revoke(_) => Some("REVOKE"),
        Statement::Copy { to: false, .. } => Some("COPY FROM"),
        Statement::Query(q) if !q.locks.is_empty() => Some("SELECT FOR UPDATE"),
        _ => None,
    }
}

pub(crate) use crate::catalog::durations::{duration_text, parse_duration_ms};

/// Nanoseconds since the Unix epoch of a timestamptz literal: what `SELECT now()` prints
/// (`2026-11-22 10:51:45.123456+00`), RFC 3339, or a zone-less timestamp taken as UTC.
pub(crate) fn parse_timestamptz(v: &str) -> Option<i64> {
    let v = v.trim();
    let parsed: Option<chrono::DateTime<chrono::Utc>> = chrono::DateTime::parse_from_rfc3339(v)
        .ok()
        .or_else(|| {
            ["%Y-%m-%d %H:%M:%S%.f%#z", "%Y-%m-%dT%H:%M:%S%.f%#z"]
                .iter()
                .find_map(|f| chrono::DateTime::parse_from_str(v, f).ok())
        })
        .map(|t| t.to_utc())
        .or_else(|| {
            ["%Y-%m-%d %H:%M:%S%.f", "%Y-%m-%dT%H:%M:%S%.f"]
                .iter()
                .find_map(|f| chrono::NaiveDateTime::parse_from_str(v, f).ok())
                .map(|t| t.and_utc())
        });
    let t = parsed?;
    // Beyond what nanoseconds since 1970 hold (years 1677..2262): clamp, the range checks
    // then call it too old or in the future.
    Some(t.timestamp_nanos_opt().unwrap_or(if t.timestamp() > 0 {
        i64::MAX
    } else {
        i64::MIN
    }))
}

/// A timestamp as PostgreSQL prints a timestamptz in UTC.
pub(crate) fn timestamptz_text(ts: Timestamp) -> String {
    chrono::DateTime::from_timestamp_nanos(ts as i64)
        .format("%Y-%m-%d %H:%M:%S%.6f+00")
        .to_string()
}

pub(crate) fn setting_value(values: &[ast::Expr]) -> String {
    values
        .iter()
        .map(|v| match v {
            ast::Expr::Value(v) => match &v.value {
                ast::Value::SingleQuotedString(s) | ast::Value::DoubleQuotedString(s) => s.clone(),
                other => other.to_string(),
            },
            ast::Expr::Identifier(id) => id.value.clone(),
            other => other.to_string(),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// The `name=value` pairs of a startup `options` string: `-c name=value` or
/// `--name=value`, separated by spaces (a backslash escapes the next character).
pub(crate) fn startup_options(options: &str) -> Vec<(String, String)> {
    let mut words = Vec::new();
    let mut cur = String::new();
    let mut chars = options.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => cur.extend(chars.next()),
            c if c.is_whitespace() => {
                if !cur.is_empty() {
                    words.push(std::mem::take(&mut cur));
                }
            }
            c => cur.push(c),
        }
    }
    if !cur.is_empty() {
        words.push(cur);
    }
    let mut out = Vec::new();
    let mut it = words.into_iter();
    while let Some(w) = it.next() {
        let assignment = if w == "-c" {
            it.next()
        } else if let Some(rest) = w.strip_prefix("--") {
            Some(rest.to_string())
        } else {
            w.strip_prefix("-c").map(str::to_string)
        };
        if let Some((k, v)) = assignment.as_deref().and_then(|a| a.split_once('=')) {
            out.push((k.replace('-', "_"), v.to_string()));
        }
    }
    out
}
