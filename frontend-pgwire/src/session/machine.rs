//! A client session: transaction state, settings, and the PostgreSQL protocol handlers.
//!
//! Transaction states follow PostgreSQL: idle; in a block (after BEGIN); failed (an error
//! inside a block: every statement gets 25P02 until ROLLBACK or COMMIT, which then rolls
//! back). Statements outside a block run in an implicit transaction; the statements of one
//! simple-protocol query string share one implicit transaction, as in PostgreSQL.

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use arrow::array::{RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use async_trait::async_trait;
use datafusion::common::ParamValues;
use datafusion::sql::sqlparser::ast::{self, ObjectType, Statement};
use datafusion::sql::sqlparser::dialect::PostgreSqlDialect;
use datafusion::sql::sqlparser::parser::{Parser, ParserError};
use futures::sink::{Sink, SinkExt};
use pgwire::api::auth::{
    finish_authentication, protocol_negotiation, save_startup_parameters_to_metadata,
    DefaultServerParameterProvider, StartupHandler,
};
use pgwire::api::portal::{Format, Portal};
use pgwire::api::query::{
    send_execution_response, send_query_response, send_ready_for_query, ExtendedQueryHandler,
    SimpleQueryHandler,
};
use pgwire::api::results::{
    DescribePortalResponse, DescribeStatementResponse, FieldInfo, Response, Tag,
};
use pgwire::api::stmt::{QueryParser, StoredStatement};
use pgwire::api::store::PortalStore;
use pgwire::api::{
    ClientInfo, ClientPortalStore, PgWireConnectionState, PgWireServerHandlers, Type, DEFAULT_NAME,
};
use pgwire::error::{ErrorInfo, PgWireError, PgWireResult};
use pgwire::messages::extendedquery::Sync as PgSync;
use pgwire::messages::response::{
    EmptyQueryResponse, NoticeResponse, ReadyForQuery, TransactionStatus,
};
use pgwire::messages::simplequery::Query;
use pgwire::messages::startup::SecretKey;
use pgwire::messages::{PgWireBackendMessage, PgWireFrontendMessage};

use crate::catalog::db::Db;
use crate::catalog::txn::{Isolation, Txn};
use crate::error::{codes, SqlError, SqlResult};
use crate::sql::exec::{table_name, Executor, Notice, Outcome};
use crate::sql::names::ident_name;
use crate::wire::encode::{fields_for, pg_type_of, query_response};
use weft_engine::Timestamp;

/// What one statement did, in protocol terms.
pub enum Reply {
    Outcome(Outcome),
    Begin,
    End(&'static str),
    /// COPY FROM STDIN: the session now reads CopyData (the copy is in `State::copy`).
    CopyIn {
        columns: usize,
    },
}

pub struct State {
    txn: Option<Txn>,
    failed: bool,
    settings: BTreeMap<String, String>,
    /// `SET weft.as_of`: every transaction reads as of this timestamp, read-only.
    as_of: Option<Timestamp>,
    /// A COPY FROM STDIN in progress.
    copy: Option<Box<crate::sql::copy::CopyIn>>,
    /// The open transaction block's savepoints, oldest first.
    savepoints: Vec<(String, crate::catalog::txn::Savepoint)>,
    /// Declared SQL cursors, by name (see [`crate::session::cursors`]).
    cursors: std::collections::HashMap<String, crate::session::cursors::Cursor>,
    /// Statements prepared in SQL (see [`crate::session::prepared`]).
    prepared: crate::session::prepared::Prepared,
}

pub struct Core {
    exec: Executor,
    state: tokio::sync::Mutex<State>,
    /// A cancel request for this session wakes the statement running now, if any.
    cancel: Arc<tokio::sync::Notify>,
    /// The session as `pg_stat_activity` lists it (from startup on).
    backend: std::sync::OnceLock<Arc<crate::catalog::activity::Backend>>,
}

fn default_settings() -> BTreeMap<String, String> {
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
        ("statement_timeout", "0"),
        ("lock_timeout", "0"),
        ("idle_in_transaction_session_timeout", "0"),
        ("client_min_messages", "notice"),
        ("max_connections", "10000"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

fn aborted_error() -> SqlError {
    SqlError::new(
        codes::IN_FAILED_SQL_TRANSACTION,
        "current transaction is aborted, commands ignored until end of transaction block",
    )
}

/// `CREATE USER` and `ALTER USER` as PostgreSQL means them: the parser reads them in
/// another dialect's syntax, so they are parsed as `CREATE|ALTER ROLE`, `CREATE USER`
/// implying LOGIN.
fn parse_user_statement(sql: &str) -> Option<Result<Vec<Statement>, ParserError>> {
    let t = sql.trim_start();
    let first_end = t.find(char::is_whitespace)?;
    let verb = &t[..first_end];
    let rest = t[first_end..].trim_start();
    let second_end = rest.find(char::is_whitespace).unwrap_or(rest.len());
    if !rest[..second_end].eq_ignore_ascii_case("user") {
        return None;
    }
    let create = verb.eq_ignore_ascii_case("create");
    if !create && !verb.eq_ignore_ascii_case("alter") {
        return None;
    }
    let text = format!("{verb} ROLE{}", &rest[second_end..]);
    Some(
        Parser::parse_sql(&PostgreSqlDialect {}, &text).map(|mut stmts| {
            for s in &mut stmts {
                if let Statement::CreateRole(cr) = s {
                    if create && cr.login.is_none() {
                        cr.login = Some(true);
                    }
                }
            }
            stmts
        }),
    )
}

/// `ABORT [WORK | TRANSACTION] ...`: PostgreSQL's synonym of ROLLBACK, which the parser
/// does not know.
fn abort_as_rollback(sql: &str) -> Option<String> {
    let t = sql.trim_start();
    let end = t
        .find(|c: char| c.is_whitespace() || c == ';')
        .unwrap_or(t.len());
    t[..end]
        .eq_ignore_ascii_case("abort")
        .then(|| format!("ROLLBACK{}", &t[end..]))
}

fn contains_ignore_case(haystack: &str, needle: &str) -> bool {
    haystack
        .as_bytes()
        .windows(needle.len())
        .any(|w| w.eq_ignore_ascii_case(needle.as_bytes()))
}

fn parse(sql: &str) -> SqlResult<Vec<Statement>> {
    let rollback;
    let sql = match abort_as_rollback(sql) {
        Some(r) => {
            rollback = r;
            rollback.as_str()
        }
        None => sql,
    };
    let reordered;
    let sql = match crate::sql::sequence_syntax::in_parser_order(sql) {
        Some(r) => {
            reordered = r;
            reordered.as_str()
        }
        None => sql,
    };
    let moved;
    let sql = match crate::session::cursors::readable_fetch(sql) {
        Some(m) => {
            moved = m;
            moved.as_str()
        }
        None => sql,
    };
    let parsed = if let Some(p) = parse_user_statement(sql) {
        p
    } else if crate::sql::compat::is_catalog_query(sql) {
        crate::sql::compat::parse_catalog_query(sql)
    } else {
        Parser::parse_sql(&PostgreSqlDialect {}, sql)
    };
    let mut stmts = parsed.map_err(|e| {
        let m = e.to_string();
        SqlError::syntax(m.trim_start_matches("sql parser error: ").to_string())
    })?;
    if crate::sql::compat::may_have_subquery(sql) {
        for s in &mut stmts {
            crate::sql::compat::single_row_subqueries(s);
        }
    }
    if contains_ignore_case(sql, "array(") || contains_ignore_case(sql, "array (") {
        for s in &mut stmts {
            crate::sql::array_subquery::rewrite(s);
        }
    }
    if contains_ignore_case(sql, "json") {
        for s in &mut stmts {
            crate::sql::jsonb_syntax::rewrite(s);
        }
    }
    // A number with an exponent (`1e5`).
    let exponent = sql
        .as_bytes()
        .windows(2)
        .any(|w| w[0].is_ascii_digit() && w[1] | 0x20 == b'e');
    if exponent {
        for s in &mut stmts {
            crate::types::floats::literal_casts(s);
        }
    }
    if contains_ignore_case(sql, "time zone") {
        for s in &mut stmts {
            crate::sql::datetime_syntax::rewrite(s);
        }
    }
    if contains_ignore_case(sql, "generate_s") || contains_ignore_case(sql, "unnest") {
        for s in &mut stmts {
            crate::sql::compat::scalar_function_aliases(s);
        }
    }
    Ok(stmts)
}

fn single_row(name: &str, value: &str) -> Outcome {
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

fn is_on(v: &str) -> bool {
    matches!(
        v.trim().to_lowercase().as_str(),
        "on" | "true" | "yes" | "1" | "t"
    )
}

fn parse_bool(name: &str, value: &str) -> SqlResult<bool> {
    match value.trim().to_lowercase().as_str() {
        "on" | "true" | "yes" | "1" | "t" | "y" => Ok(true),
        "off" | "false" | "no" | "0" | "f" | "n" => Ok(false),
        _ => Err(SqlError::new(
            codes::INVALID_PARAMETER_VALUE,
            format!("parameter \"{name}\" requires a Boolean value"),
        )),
    }
}

fn raised_notice(asked: &str) -> Notice {
    Notice {
        severity: "NOTICE",
        code: codes::SUCCESSFUL_COMPLETION,
        message: format!(
            "{asked} runs as REPEATABLE READ (snapshot isolation): weft has no weaker level"
        ),
    }
}

fn parse_level(name: &str, value: &str, notices: &mut Vec<Notice>) -> SqlResult<Isolation> {
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

fn level_of(l: &ast::TransactionIsolationLevel, notices: &mut Vec<Notice>) -> SqlResult<Isolation> {
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
fn apply_modes(
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
fn write_kind(stmt: &Statement) -> Option<&'static str> {
    match stmt {
        Statement::Insert(_) => Some("INSERT"),
        Statement::Update(_) => Some("UPDATE"),
        Statement::Delete(_) => Some("DELETE"),
        Statement::CreateTable(_) => Some("CREATE TABLE"),
        Statement::Drop { .. } => Some("DROP TABLE"),
        Statement::CreateSequence { .. } => Some("CREATE SEQUENCE"),
        Statement::CreateRole(_) => Some("CREATE ROLE"),
        Statement::AlterRole { .. } => Some("ALTER ROLE"),
        Statement::Truncate(_) => Some("TRUNCATE TABLE"),
        Statement::Copy { to: false, .. } => Some("COPY FROM"),
        Statement::Query(q) if !q.locks.is_empty() => Some("SELECT FOR UPDATE"),
        _ => None,
    }
}

/// A PostgreSQL time setting in milliseconds: a number with an optional unit (`us`, `ms`,
/// `s`, `min`, `h`, `d`; milliseconds when there is none). `None` if it is not one.
fn parse_duration_ms(v: &str) -> Option<u64> {
    let v = v.trim().trim_matches('\'');
    let split = v
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(v.len());
    let (num, unit) = v.split_at(split);
    let n: f64 = num.parse().ok()?;
    let factor = match unit.trim() {
        "" | "ms" => 1.0,
        "us" => 0.001,
        "s" => 1000.0,
        "min" => 60_000.0,
        "h" => 3_600_000.0,
        "d" => 86_400_000.0,
        _ => return None,
    };
    let ms = n * factor;
    (ms.is_finite() && ms >= 0.0 && ms < i32::MAX as f64).then(|| ms.round() as u64)
}

/// How PostgreSQL shows a time setting: the largest unit that divides it.
fn duration_text(ms: u64) -> String {
    match ms {
        0 => "0".into(),
        _ if ms.is_multiple_of(86_400_000) => format!("{}d", ms / 86_400_000),
        _ if ms.is_multiple_of(3_600_000) => format!("{}h", ms / 3_600_000),
        _ if ms.is_multiple_of(60_000) => format!("{}min", ms / 60_000),
        _ if ms.is_multiple_of(1000) => format!("{}s", ms / 1000),
        _ => format!("{ms}ms"),
    }
}

/// Nanoseconds since the Unix epoch of a timestamptz literal: what `SELECT now()` prints
/// (`2026-11-22 10:51:45.123456+00`), RFC 3339, or a zone-less timestamp taken as UTC.
fn parse_timestamptz(v: &str) -> Option<i64> {
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
fn timestamptz_text(ts: Timestamp) -> String {
    chrono::DateTime::from_timestamp_nanos(ts as i64)
        .format("%Y-%m-%d %H:%M:%S%.6f+00")
        .to_string()
}

fn setting_value(values: &[ast::Expr]) -> String {
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

impl Core {
    /// `pg_stat_activity`: the session starts running `sql`.
    fn activity_begin(&self, st: &State, sql: &str) {
        if let Some(b) = self.backend.get() {
            let in_txn = st.failed || st.txn.as_ref().is_some_and(|t| t.explicit);
            let app = st
                .settings
                .get("application_name")
                .map_or("", String::as_str);
            b.begin(sql, in_txn, app);
        }
    }

    /// `pg_stat_activity`: the statement ended.
    fn activity_end(&self, st: &State) {
        if let Some(b) = self.backend.get() {
            let in_txn = st.failed || st.txn.as_ref().is_some_and(|t| t.explicit);
            b.end(in_txn, st.failed);
        }
    }

    /// The session as `pg_stat_activity` lists it.
    pub fn backend(&self) -> Option<Arc<crate::catalog::activity::Backend>> {
        self.backend.get().cloned()
    }

    pub fn status(st: &State) -> TransactionStatus {
        if st.failed {
            TransactionStatus::Error
        } else if st.txn.as_ref().is_some_and(|t| t.explicit) {
            TransactionStatus::Transaction
        } else {
            TransactionStatus::Idle
        }
    }

    async fn commit(&self, txn: Txn) -> SqlResult<()> {
        txn.check_duration(&self.exec.db.limits)?;
        let req = txn.into_commit_request();
        self.exec.db.adjudicator.commit(req).await?;
        Ok(())
    }

    /// The settings a client sends at startup (`application_name`, `DateStyle`, and
    /// `options='-c name=value ...'`), applied as `SET` would apply them. One that `SET`
    /// would reject is skipped with a log line (PostgreSQL refuses the connection).
    fn apply_startup_settings(&self, params: &std::collections::HashMap<String, String>) {
        let Ok(mut st) = self.state.try_lock() else {
            tracing::warn!("startup settings not applied: the session is busy");
            return;
        };
        tracing::debug!(?params, "startup parameters");
        let mut pairs: Vec<(String, String)> = Vec::new();
        for (k, v) in params {
            match k.as_str() {
                "user" | "database" | "replication" | "_pq_.protocol_managed" => {}
                "options" => pairs.extend(startup_options(v)),
                _ => pairs.push((k.clone(), v.clone())),
            }
        }
        for (name, value) in pairs {
            let name = name.to_lowercase();
            if name.is_empty()
                || !name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.')
            {
                tracing::info!(
                    setting = name,
                    "startup setting with an invalid name ignored"
                );
                continue;
            }
            let text = format!("SET {name} TO '{}'", value.replace('\'', "''"));
            let set = match Parser::parse_sql(&PostgreSqlDialect {}, &text) {
                Ok(mut v) if v.len() == 1 => match v.pop() {
                    Some(Statement::Set(set)) => set,
                    _ => continue,
                },
                _ => continue,
            };
            let mut notices = Vec::new();
            if let Err(e) = self.settings(&mut st, &set, &mut notices) {
                tracing::info!(setting = name, error = %e.message, "startup setting ignored");
            }
        }
        self.exec.meta.set_settings(&st.settings);
    }

    /// A new transaction with the session's defaults.
    fn new_txn(st: &State, explicit: bool) -> Txn {
        let isolation = st
            .settings
            .get("default_transaction_isolation")
            .and_then(|v| Isolation::parse(v))
            .map(|(l, _)| l)
            .unwrap_or(Isolation::RepeatableRead);
        let read_only = st
            .settings
            .get("default_transaction_read_only")
            .is_some_and(|v| is_on(v));
        let mut t = Txn::new(explicit, isolation, read_only || st.as_of.is_some());
        if let Some(ts) = st.as_of {
            t.read_ts = Some(ts);
        }
        t
    }

    fn settings(
        &self,
        st: &mut State,
        set: &ast::Set,
        notices: &mut Vec<Notice>,
    ) -> SqlResult<Reply> {
        use ast::Set as S;
        match set {
            S::SingleAssignment {
                variable, values, ..
            } => {
                let name = variable.to_string().to_lowercase();
                let value = setting_value(values);
                match name.as_str() {
                    "weft.as_of" => {
                        if st.txn.as_ref().is_some_and(|t| t.explicit) {
                            return Err(SqlError::new(
                                codes::ACTIVE_SQL_TRANSACTION,
                                "SET weft.as_of cannot run inside a transaction block",
                            ));
                        }
                        if value.eq_ignore_ascii_case("default") {
                            st.as_of = None;
                            st.settings.remove(&name);
                        } else {
                            let ts = self.as_of_timestamp(&value)?;
                            st.as_of = Some(ts);
                            st.settings.insert(name, timestamptz_text(ts));
                        }
                    }
                    "transaction_isolation" => {
                        let level = parse_level(&name, &value, notices)?;
                        let txn = Self::txn_to_configure(st, notices)?;
                        if let Some(t) = txn {
                            t.isolation = level;
                        }
                    }
                    "default_transaction_isolation" => {
                        let level = parse_level(&name, &value, notices)?;
                        st.settings.insert(name, level.name().to_string());
                    }
                    "transaction_read_only" | "default_transaction_read_only" => {
                        let on = parse_bool(&name, &value)?;
                        if name == "transaction_read_only" {
                            if let Some(t) = Self::txn_to_configure(st, notices)? {
                                t.read_only = on;
                            }
                        } else {
                            st.settings
                                .insert(name, if on { "on" } else { "off" }.to_string());
                        }
                    }
                    "statement_timeout"
                    | "lock_timeout"
                    | "idle_in_transaction_session_timeout" => {
                        let ms = parse_duration_ms(&value).ok_or_else(|| {
                            SqlError::new(
                                codes::INVALID_PARAMETER_VALUE,
                                format!("invalid value for parameter \"{name}\": \"{value}\""),
                            )
                            .with_hint(
                                "Valid units for this parameter are \"us\", \"ms\", \"s\", \"min\", \"h\", and \"d\".",
                            )
                        })?;
                        st.settings.insert(name, duration_text(ms));
                    }
                    _ => {
                        st.settings.insert(name, value);
                    }
                }
            }
            S::SetTimeZone { value, .. } => {
                st.settings.insert(
                    "timezone".into(),
                    setting_value(std::slice::from_ref(value)),
                );
            }
            S::SetNames { charset_name, .. } => {
                st.settings
                    .insert("client_encoding".into(), charset_name.to_string());
            }
            S::SetTransaction {
                modes,
                snapshot: None,
                session,
            } => {
                if *session {
                    // SET SESSION CHARACTERISTICS AS TRANSACTION ...
                    for m in modes {
                        match m {
                            ast::TransactionMode::IsolationLevel(l) => {
                                let level = level_of(l, notices)?;
                                st.settings.insert(
                                    "default_transaction_isolation".into(),
                                    level.name().into(),
                                );
                            }
                            ast::TransactionMode::AccessMode(a) => {
                                let ro = matches!(a, ast::TransactionAccessMode::ReadOnly);
                                st.settings.insert(
                                    "default_transaction_read_only".into(),
                                    if ro { "on" } else { "off" }.into(),
                                );
                            }
                        }
                    }
                } else if let Some(t) = Self::txn_to_configure(st, notices)? {
                    apply_modes(t, modes, notices)?;
                }
            }
            S::SetTransaction { .. } => {
                return Err(SqlError::unsupported(
                    "SET TRANSACTION SNAPSHOT is not supported",
                ));
            }
            S::SetSessionParam(_) => {}
            other => {
                return Err(SqlError::unsupported(format!("{other} is not supported")));
            }
        }
        Ok(Reply::Outcome(Outcome::Command(Tag::new("SET"))))
    }

    /// The read timestamp `SET weft.as_of = '<timestamptz>'` asks for, checked against the
    /// present and the version retention window.
    fn as_of_timestamp(&self, value: &str) -> SqlResult<Timestamp> {
        let bad = |msg: String| SqlError::new(codes::INVALID_PARAMETER_VALUE, msg);
        let ns = parse_timestamptz(value).ok_or_else(|| {
            bad(format!(
                "invalid value for parameter \"weft.as_of\": \"{value}\""
            ))
            .with_hint("Use a timestamp with time zone, such as the output of SELECT now().")
        })?;
        let now = self.exec.db.adjudicator.read_ts();
        if ns < 0 || ns as u64 > now {
            return Err(bad(format!(
                "weft.as_of {} is in the future (now is {})",
                timestamptz_text(ns.max(0) as u64),
                timestamptz_text(now)
            )));
        }
        let ts = ns as u64;
        let retention = self.exec.db.version_retention();
        let oldest = now
            .saturating_sub(retention.as_nanos() as u64)
            .max(self.exec.db.storage.horizon_ts());
        if ts < oldest {
            return Err(bad(format!(
                "weft.as_of {} is older than the version retention window: the oldest readable moment is {}",
                timestamptz_text(ts),
                timestamptz_text(oldest)
            ))
            .with_hint("weft serve --version-retention-s sets how far back reads can go."));
        }
        Ok(ts)
    }

    fn reset(&self, st: &mut State, r: &ast::ResetStatement) -> SqlResult<Reply> {
        let defaults = default_settings();
        match &r.reset {
            ast::Reset::ALL => {
                st.settings = defaults;
                st.as_of = None;
            }
            ast::Reset::ConfigurationParameter(name) => {
                let name = name.to_string().to_lowercase();
                let name = match name.as_str() {
                    "time zone" => "timezone".to_string(),
                    _ => name,
                };
                if name == "weft.as_of" {
                    if st.txn.as_ref().is_some_and(|t| t.explicit) {
                        return Err(SqlError::new(
                            codes::ACTIVE_SQL_TRANSACTION,
                            "RESET weft.as_of cannot run inside a transaction block",
                        ));
                    }
                    st.as_of = None;
                }
                match defaults.get(&name) {
                    Some(v) => {
                        st.settings.insert(name, v.clone());
                    }
                    None => {
                        st.settings.remove(&name);
                    }
                }
            }
        }
        Ok(Reply::Outcome(Outcome::Command(Tag::new("RESET"))))
    }

    /// The transaction that SET TRANSACTION configures: an explicit one that has not run a
    /// query yet. Outside a block it has no effect (a warning, as in PostgreSQL).
    fn txn_to_configure<'a>(
        st: &'a mut State,
        notices: &mut Vec<Notice>,
    ) -> SqlResult<Option<&'a mut Txn>> {
        match st.txn.as_mut() {
            Some(t) if t.explicit => {
                if t.read_ts.is_some() {
                    return Err(SqlError::new(
                        codes::ACTIVE_SQL_TRANSACTION,
                        "SET TRANSACTION ISOLATION LEVEL must be called before any query",
                    ));
                }
                Ok(Some(t))
            }
            _ => {
                notices.push(Notice {
                    severity: "WARNING",
                    code: codes::NO_ACTIVE_SQL_TRANSACTION,
                    message: "SET TRANSACTION can only be used in transaction blocks".into(),
                });
                Ok(None)
            }
        }
    }

    fn show(&self, st: &State, variable: &[ast::Ident]) -> SqlResult<Reply> {
        let name = variable
            .iter()
            .map(|i| i.value.to_lowercase())
            .collect::<Vec<_>>()
            .join(" ");
        let name = match name.as_str() {
            "time zone" => "timezone".to_string(),
            "transaction isolation level" => "transaction_isolation".to_string(),
            // Qualified names (weft.as_of) arrive as separate identifiers.
            _ if variable.len() == 2 => name.replace(' ', "."),
            _ => name,
        };
        if name == "transaction_isolation" || name == "transaction_read_only" {
            let (level, ro) = match st.txn.as_ref() {
                Some(t) => (t.isolation, t.read_only),
                None => {
                    let t = Self::new_txn(st, false);
                    (t.isolation, t.read_only)
                }
            };
            let v = if name == "transaction_isolation" {
                level.name()
            } else if ro {
                "on"
            } else {
                "off"
            };
            return Ok(Reply::Outcome(single_row(&name, v)));
        }
        if name == "all" {
            let schema: SchemaRef = Arc::new(Schema::new(vec![
                Field::new("name", DataType::Utf8, false),
                Field::new("setting", DataType::Utf8, false),
            ]));
            let (n, v): (Vec<String>, Vec<String>) = st
                .settings
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .unzip();
            let batch = RecordBatch::try_new(
                schema.clone(),
                vec![
                    Arc::new(StringArray::from(n)),
                    Arc::new(StringArray::from(v)),
                ],
            )
            .map_err(|e| SqlError::internal(e.to_string()))?;
            return Ok(Reply::Outcome(Outcome::Rows {
                schema,
                batches: vec![batch],
            }));
        }
        if name == "weft.point_selects" || name == "weft.point_writes" {
            // Statements answered by the fast paths since the server started.
            let db = &self.exec.db;
            let counter = if name == "weft.point_selects" {
                &db.point_selects
            } else {
                &db.point_writes
            };
            let n = counter.load(Ordering::Relaxed).to_string();
            return Ok(Reply::Outcome(single_row(&name, &n)));
        }
        match st.settings.get(&name) {
            Some(v) => Ok(Reply::Outcome(single_row(&name, v))),
            None => Err(SqlError::new(
                codes::UNDEFINED_PARAMETER,
                format!("unrecognized configuration parameter \"{name}\""),
            )),
        }
    }

    /// Runs one statement under the session's transaction rules.
    pub async fn run(
        &self,
        st: &mut State,
        stmt: Statement,
        params: Option<&ParamValues>,
        autocommit: bool,
        notices: &mut Vec<Notice>,
    ) -> SqlResult<Reply> {
        match stmt {
            Statement::StartTransaction { modes, .. } => {
                if st.failed {
                    return Err(aborted_error());
                }
                if st.txn.as_ref().is_some_and(|t| t.explicit) {
                    notices.push(Notice {
                        severity: "WARNING",
                        code: codes::ACTIVE_SQL_TRANSACTION,
                        message: "there is already a transaction in progress".into(),
                    });
                    return Ok(Reply::Begin);
                }
                let fresh = Self::new_txn(st, true);
                let t = st.txn.get_or_insert(fresh);
                t.explicit = true;
                if t.read_ts.is_none() {
                    apply_modes(t, &modes, notices)?;
                }
                Ok(Reply::Begin)
            }
            Statement::Commit { .. } => {
                st.savepoints.clear();
                st.cursors.retain(|_, c| c.hold);
                self.cursors_changed(st);
                if st.failed {
                    st.failed = false;
                    st.txn = None;
                    return Ok(Reply::End("ROLLBACK"));
                }
                match st.txn.take() {
                    None => {
                        notices.push(Notice {
                            severity: "WARNING",
                            code: codes::NO_ACTIVE_SQL_TRANSACTION,
                            message: "there is no transaction in progress".into(),
                        });
                        Ok(Reply::End("COMMIT"))
                    }
                    Some(t) => {
                        self.commit(t).await?;
                        Ok(Reply::End("COMMIT"))
                    }
                }
            }
            Statement::Rollback {
                savepoint: None, ..
            } => {
                if st.txn.is_none() && !st.failed {
                    notices.push(Notice {
                        severity: "WARNING",
                        code: codes::NO_ACTIVE_SQL_TRANSACTION,
                        message: "there is no transaction in progress".into(),
                    });
                }
                st.txn = None;
                st.failed = false;
                st.savepoints.clear();
                st.cursors.retain(|_, c| c.hold);
                self.cursors_changed(st);
                Ok(Reply::End("ROLLBACK"))
            }
            Statement::Savepoint { name } => {
                if st.failed {
                    return Err(aborted_error());
                }
                let Some(t) = st.txn.as_ref().filter(|t| t.explicit) else {
                    return Err(SqlError::new(
                        codes::NO_ACTIVE_SQL_TRANSACTION,
                        "SAVEPOINT can only be used in transaction blocks",
                    ));
                };
                let sp = t.savepoint();
                st.savepoints.push((ident_name(&name), sp));
                Ok(Reply::Outcome(Outcome::Command(Tag::new("SAVEPOINT"))))
            }
            Statement::ReleaseSavepoint { name } => {
                if st.failed {
                    return Err(aborted_error());
                }
                let n = ident_name(&name);
                match st.savepoints.iter().rposition(|(s, _)| *s == n) {
                    Some(i) => {
                        st.savepoints.truncate(i);
                        Ok(Reply::Outcome(Outcome::Command(Tag::new("RELEASE"))))
                    }
                    None => {
                        let e = SqlError::new("3B001", format!("savepoint \"{n}\" does not exist"));
                        self.fail(st);
                        Err(e)
                    }
                }
            }
            Statement::Rollback {
                savepoint: Some(name),
                ..
            } => {
                let n = ident_name(&name);
                match st.savepoints.iter().rposition(|(s, _)| *s == n) {
                    Some(i) if st.txn.is_some() => {
                        st.savepoints.truncate(i + 1);
                        let sp = st.savepoints[i].1.clone();
                        if let Some(t) = st.txn.as_mut() {
                            t.rollback_to(&sp);
                        }
                        st.failed = false;
                        Ok(Reply::Outcome(Outcome::Command(Tag::new("ROLLBACK"))))
                    }
                    _ => {
                        let e = if st.txn.as_ref().is_some_and(|t| t.explicit) {
                            SqlError::new("3B001", format!("savepoint \"{n}\" does not exist"))
                        } else {
                            SqlError::new(
                                codes::NO_ACTIVE_SQL_TRANSACTION,
                                "ROLLBACK TO SAVEPOINT can only be used in transaction blocks",
                            )
                        };
                        self.fail(st);
                        Err(e)
                    }
                }
            }
            _ if st.failed => Err(aborted_error()),
            Statement::Set(set) => {
                let r = self.settings(st, &set, notices);
                self.exec.meta.set_settings(&st.settings);
                r
            }
            stmt if crate::session::set_config::call(&stmt).is_some() => {
                let call = crate::session::set_config::call(&stmt).expect("matched above");
                let Some(Statement::Set(set)) = parse(&call.as_set_sql())?.into_iter().next()
                else {
                    return Err(SqlError::internal("set_config did not make a SET"));
                };
                let r = self.settings(st, &set, notices);
                self.exec.meta.set_settings(&st.settings);
                r?;
                Ok(Reply::Outcome(single_row("set_config", &call.value)))
            }
            Statement::Reset(r) => {
                let r = self.reset(st, &r);
                self.exec.meta.set_settings(&st.settings);
                r
            }
            Statement::ShowVariable { variable } => self.show(st, &variable),
            // Session housekeeping that pools and drivers send (asyncpg's reset, pgbouncer's
            // DISCARD ALL).
            Statement::Close {
                cursor: ast::CloseCursor::All,
            } => {
                st.cursors.clear();
                self.cursors_changed(st);
                Ok(Reply::Outcome(Outcome::Command(Tag::new(
                    "CLOSE CURSOR ALL",
                ))))
            }
            Statement::Close {
                cursor: ast::CloseCursor::Specific { name },
            } => {
                let n = crate::session::cursors::name(&name);
                if st.cursors.remove(&n).is_none() {
                    self.fail(st);
                    return Err(crate::session::cursors::does_not_exist(&n));
                }
                self.cursors_changed(st);
                Ok(Reply::Outcome(Outcome::Command(Tag::new("CLOSE CURSOR"))))
            }
            stmt @ Statement::Declare { .. } => {
                self.declare_cursor(st, stmt, params, autocommit, notices)
                    .await
            }
            Statement::Fetch {
                name,
                direction,
                into,
                ..
            } if crate::session::cursors::marks(into.as_ref()).is_some() => {
                let (is_move, negative) =
                    crate::session::cursors::marks(into.as_ref()).unwrap_or((false, false));
                let n = crate::session::cursors::name(&name);
                let motion = crate::session::cursors::motion(&direction).map(|m| {
                    if negative {
                        m.negated()
                    } else {
                        m
                    }
                });
                let cursor = st.cursors.get_mut(&n);
                let fetched = match (motion, cursor) {
                    (Ok(m), Some(c)) => c.fetch(m).map(|rows| (c.schema.clone(), rows)),
                    (Err(e), _) => Err(e),
                    (_, None) => Err(crate::session::cursors::does_not_exist(&n)),
                };
                let (schema, rows) = match fetched {
                    Ok(f) => f,
                    Err(e) => {
                        self.fail(st);
                        return Err(e);
                    }
                };
                if is_move {
                    return Ok(Reply::Outcome(Outcome::Command(
                        Tag::new("MOVE").with_rows(rows.num_rows()),
                    )));
                }
                Ok(Reply::Outcome(Outcome::Fetched {
                    schema,
                    batches: vec![rows],
                }))
            }
            // psycopg 3 sends DEALLOCATE ALL after a ROLLBACK once it has prepared
            // statements, and DEALLOCATE name for its protocol statements: see
            // crate::session::prepared for what reaches which.
            Statement::Deallocate { name, .. } => {
                let all = name.value.eq_ignore_ascii_case("all") && name.quote_style.is_none();
                if all {
                    st.prepared.clear();
                } else {
                    st.prepared.remove(&ident_name(&name));
                }
                Ok(Reply::Outcome(Outcome::Command(Tag::new(if all {
                    "DEALLOCATE ALL"
                } else {
                    "DEALLOCATE"
                }))))
            }
            Statement::Prepare {
                name,
                data_types,
                statement,
            } => {
                let name = ident_name(&name);
                if st.prepared.contains_key(&name) {
                    return Err(SqlError::new(
                        codes::DUPLICATE_PREPARED_STATEMENT,
                        format!("prepared statement \"{name}\" already exists"),
                    ));
                }
                if st.prepared.len() >= crate::session::prepared::PREPARED_MAX {
                    return Err(SqlError::new(
                        codes::PROGRAM_LIMIT_EXCEEDED,
                        format!(
                            "a session prepares at most {} statements in SQL",
                            crate::session::prepared::PREPARED_MAX
                        ),
                    ));
                }
                crate::session::prepared::preparable(&statement)?;
                let (inferred, schema) = Box::pin(self.describe_in(st, &statement)).await?;
                let param_types =
                    crate::session::prepared::param_types(&name, &data_types, inferred)?;
                st.prepared.insert(
                    name,
                    crate::session::prepared::SqlPrepared {
                        stmt: *statement,
                        param_types,
                        schema,
                    },
                );
                Ok(Reply::Outcome(Outcome::Command(Tag::new("PREPARE"))))
            }
            Statement::Execute {
                name: Some(name),
                parameters,
                immediate: false,
                ..
            } => {
                let name = name
                    .0
                    .last()
                    .and_then(|p| p.as_ident())
                    .map(ident_name)
                    .unwrap_or_default();
                let Some(p) = st.prepared.get(&name) else {
                    return Err(crate::session::prepared::does_not_exist(&name));
                };
                let stmt = p.stmt.clone();
                let values = if parameters.is_empty() {
                    Vec::new()
                } else {
                    let q = crate::session::prepared::arguments_query(&parameters)?;
                    match Box::pin(self.run(st, q, None, autocommit, notices)).await? {
                        Reply::Outcome(Outcome::Rows { batches, .. }) => {
                            crate::session::prepared::first_row(&batches)?
                        }
                        _ => return Err(SqlError::internal("EXECUTE's arguments gave no rows")),
                    }
                };
                let p = st
                    .prepared
                    .get(&name)
                    .ok_or_else(|| crate::session::prepared::does_not_exist(&name))?;
                let params = crate::session::prepared::bind(&name, p, values)?;
                Box::pin(self.run(st, stmt, Some(&params), autocommit, notices)).await
            }
            Statement::UNLISTEN { .. } => {
                Ok(Reply::Outcome(Outcome::Command(Tag::new("UNLISTEN"))))
            }
            Statement::LISTEN { .. } => Err(SqlError::unsupported(
                "LISTEN is not supported: weft has no notifications",
            )),
            Statement::Discard { object_type } => {
                if matches!(object_type, ast::DiscardObject::ALL) {
                    if st.txn.as_ref().is_some_and(|t| t.explicit) {
                        return Err(SqlError::new(
                            codes::ACTIVE_SQL_TRANSACTION,
                            "DISCARD ALL cannot run inside a transaction block",
                        ));
                    }
                    st.settings = default_settings();
                    st.cursors.clear();
                    self.cursors_changed(st);
                    st.as_of = None;
                    self.exec.meta.set_settings(&st.settings);
                    self.exec
                        .meta
                        .currvals
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .clear();
                }
                Ok(Reply::Outcome(Outcome::Command(Tag::new(&format!(
                    "DISCARD {object_type}"
                )))))
            }
            stmt => {
                let implicit = st.txn.is_none();
                if implicit {
                    st.txn = Some(Self::new_txn(st, false));
                }
                let as_of = st.as_of.is_some();
                let txn = st.txn.as_mut().expect("a transaction was just ensured");
                if txn.read_only || as_of {
                    if let Some(what) = write_kind(&stmt) {
                        let e = if as_of {
                            SqlError::new(
                                codes::READ_ONLY_SQL_TRANSACTION,
                                format!("cannot execute {what} while weft.as_of is set: the session reads the database as of a past moment"),
                            )
                            .with_hint("RESET weft.as_of to write again")
                        } else {
                            SqlError::new(
                                codes::READ_ONLY_SQL_TRANSACTION,
                                format!("cannot execute {what} in a read-only transaction"),
                            )
                        };
                        self.fail(st);
                        return Err(e);
                    }
                }
                if txn.read_ts.is_none() {
                    txn.read_ts = Some(self.exec.db.adjudicator.read_ts());
                }
                if txn.pin.is_none() {
                    // Compaction keeps what this transaction reads until it ends.
                    txn.pin = txn.read_ts.map(|ts| self.exec.db.storage.pin(ts));
                }
                let timeout_ms = st
                    .settings
                    .get("statement_timeout")
                    .and_then(|v| parse_duration_ms(v))
                    .unwrap_or(0);
                let txn = st.txn.as_mut().expect("a transaction was just ensured");
                let result = match txn.check_duration(&self.exec.db.limits) {
                    Ok(()) => {
                        // Dropping the statement's future cancels its execution: at its
                        // timeout, or when a cancel request for this session arrives.
                        let run = self.exec_in_txn(txn, stmt, params, notices);
                        let timeout = async {
                            if timeout_ms > 0 {
                                tokio::time::sleep(std::time::Duration::from_millis(timeout_ms))
                                    .await
                            } else {
                                std::future::pending::<()>().await
                            }
                        };
                        tokio::select! {
                            r = run => r,
                            _ = timeout => Err(SqlError::new(
                                codes::QUERY_CANCELED,
                                "canceling statement due to statement timeout",
                            )),
                            _ = self.cancel.notified() => Err(SqlError::new(
                                codes::QUERY_CANCELED,
                                "canceling statement due to user request",
                            )),
                        }
                    }
                    Err(e) => Err(e),
                };
                match result {
                    Err(e) => {
                        self.fail(st);
                        Err(e)
                    }
                    Ok(Outcome::CopyIn(copy)) => {
                        // The transaction stays open until the data is in.
                        let columns = copy.columns.len();
                        st.copy = Some(copy);
                        Ok(Reply::CopyIn { columns })
                    }
                    Ok(out) => {
                        if implicit && autocommit {
                            let t = st.txn.take().expect("implicit transaction");
                            self.commit(t).await?;
                        }
                        Ok(Reply::Outcome(out))
                    }
                }
            }
        }
    }

    /// DECLARE name CURSOR ... FOR query: runs the query now and keeps its rows.
    async fn declare_cursor(
        &self,
        st: &mut State,
        stmt: Statement,
        params: Option<&ParamValues>,
        autocommit: bool,
        notices: &mut Vec<Notice>,
    ) -> SqlResult<Reply> {
        let refuse = |st: &mut State, e: SqlError| {
            self.fail(st);
            Err(e)
        };
        if let Some(why) = crate::session::cursors::unsupported_options(&stmt) {
            return refuse(st, SqlError::unsupported(why));
        }
        let Some((name, hold, scroll, query)) = crate::session::cursors::declared(&stmt) else {
            return refuse(
                st,
                SqlError::unsupported("DECLARE is supported for cursors only"),
            );
        };
        if !hold && !st.txn.as_ref().is_some_and(|t| t.explicit) {
            return refuse(
                st,
                SqlError::new(
                    codes::NO_ACTIVE_SQL_TRANSACTION,
                    "DECLARE CURSOR can only be used in transaction blocks",
                ),
            );
        }
        if st.cursors.contains_key(&name) {
            return refuse(
                st,
                SqlError::new("42P03", format!("cursor \"{name}\" already exists")),
            );
        }
        let reply = Box::pin(self.run(
            st,
            Statement::Query(Box::new(query)),
            params,
            autocommit,
            notices,
        ))
        .await?;
        let Reply::Outcome(Outcome::Rows { schema, batches }) = reply else {
            return refuse(st, SqlError::internal("a cursor's query returned no rows"));
        };
        let mut cursor = crate::session::cursors::Cursor::new(schema, batches, hold, scroll);
        cursor.statement = stmt.to_string();
        let held: usize = st.cursors.values().map(|c| c.bytes).sum();
        if held + cursor.bytes > crate::session::cursors::CURSOR_BYTES_MAX {
            return refuse(
                st,
                SqlError::new(
                    codes::PROGRAM_LIMIT_EXCEEDED,
                    format!(
                        "the session's cursors would hold {} bytes, more than the {} a session may",
                        held + cursor.bytes,
                        crate::session::cursors::CURSOR_BYTES_MAX
                    ),
                )
                .with_hint("fetch from or close the open cursors, or declare one over fewer rows"),
            );
        }
        st.cursors.insert(name, cursor);
        self.cursors_changed(st);
        Ok(Reply::Outcome(Outcome::Command(Tag::new("DECLARE CURSOR"))))
    }

    /// Tells `pg_cursors` which cursors the session has now.
    fn cursors_changed(&self, st: &State) {
        self.exec.meta.set_cursors(
            st.cursors
                .iter()
                .map(|(name, c)| (name.clone(), c.statement.clone(), c.hold, c.scroll))
                .collect(),
        );
    }

    fn point_write(&self, out: Outcome) -> Outcome {
        self.exec.db.point_writes.fetch_add(1, Ordering::Relaxed);
        out
    }

    /// An error ends an implicit transaction and fails an explicit one.
    fn fail(&self, st: &mut State) {
        // A failed block keeps its transaction: ROLLBACK TO SAVEPOINT can resume it.
        if st.txn.as_ref().is_some_and(|t| t.explicit) {
            st.failed = true;
        } else {
            st.txn = None;
        }
    }

    async fn exec_in_txn(
        &self,
        txn: &mut Txn,
        stmt: Statement,
        params: Option<&ParamValues>,
        notices: &mut Vec<Notice>,
    ) -> SqlResult<Outcome> {
        match stmt {
            Statement::CreateTable(ct) => self.exec.create_table(txn, ct, notices).await,
            Statement::Drop {
                object_type: ObjectType::Table,
                if_exists,
                names,
                ..
            } => self.exec.drop_tables(txn, &names, if_exists, notices).await,
            Statement::Truncate(t) => self.exec.truncate(txn, &t).await,
            Statement::Copy {
                source,
                to,
                target,
                options,
                legacy_options,
                values,
            } => {
                if !values.is_empty() {
                    return Err(SqlError::unsupported(
                        "COPY data inline in the query string is not supported",
                    ));
                }
                self.exec
                    .copy(txn, source, to, target, &options, &legacy_options)
                    .await
            }
            Statement::CreateRole(cr) => self.exec.create_role(txn, &cr).await,
            Statement::AlterRole { name, operation } => {
                self.exec.alter_role(txn, &name, &operation).await
            }
            Statement::Drop {
                object_type: ObjectType::Role | ObjectType::User,
                if_exists,
                names,
                ..
            } => self.exec.drop_roles(txn, &names, if_exists, notices).await,
            Statement::CreateSequence {
                temporary: false,
                if_not_exists,
                name,
                data_type,
                sequence_options,
                owned_by: None,
            } => {
                self.exec
                    .create_sequence(
                        txn,
                        &name,
                        if_not_exists,
                        data_type.as_ref(),
                        &sequence_options,
                        notices,
                    )
                    .await
            }
            Statement::Drop {
                object_type: ObjectType::Sequence,
                if_exists,
                names,
                ..
            } => {
                self.exec
                    .drop_sequences(txn, &names, if_exists, notices)
                    .await
            }
            Statement::Insert(i) => match self.exec.point_insert(txn, &i, params).await? {
                Some(out) => Ok(self.point_write(out)),
                None => self.exec.insert(txn, i, params).await,
            },
            Statement::Update(u) => match self.exec.point_update(txn, &u, params).await? {
                Some(out) => Ok(self.point_write(out)),
                None => self.exec.update(txn, u, params).await,
            },
            Statement::Delete(d) => match self.exec.point_delete(txn, &d, params).await? {
                Some(out) => Ok(self.point_write(out)),
                None => self.exec.delete(txn, d, params).await,
            },
            s @ (Statement::Query(_) | Statement::Explain { .. }) => {
                if let Some(out) = self.exec.point_select(txn, &s, params).await? {
                    self.exec
                        .db
                        .point_selects
                        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    return Ok(out);
                }
                self.exec.query(txn, s, params).await
            }
            other => {
                let text = other.to_string();
                let head: String = text
                    .split_whitespace()
                    .take(2)
                    .collect::<Vec<_>>()
                    .join(" ");
                Err(SqlError::unsupported(format!("{head} is not supported")))
            }
        }
    }

    /// Plans a statement to learn its parameter types and result columns.
    async fn describe(
        &self,
        stmt: &Statement,
    ) -> SqlResult<(Vec<Option<DataType>>, Option<SchemaRef>)> {
        let mut st = self.state.lock().await;
        self.describe_in(&mut st, stmt).await
    }

    /// [`Self::describe`] with the session's state already locked.
    async fn describe_in(
        &self,
        st: &mut State,
        stmt: &Statement,
    ) -> SqlResult<(Vec<Option<DataType>>, Option<SchemaRef>)> {
        // A cursor's statements: DECLARE takes its query's parameters and returns no rows;
        // FETCH returns the cursor's columns.
        if let Some((_, _, _, query)) = crate::session::cursors::declared(stmt) {
            let query = Statement::Query(Box::new(query));
            let (types, _) = Box::pin(self.describe_in(st, &query)).await?;
            return Ok((types, None));
        }
        // EXECUTE of a statement prepared in SQL returns that statement's columns.
        if let Statement::Execute {
            name: Some(name), ..
        } = stmt
        {
            let name = name.0.last().and_then(|p| p.as_ident()).map(ident_name);
            if let Some(p) = name.and_then(|n| st.prepared.get(&n)) {
                return Ok((Vec::new(), p.schema.clone()));
            }
        }
        if let Statement::Fetch { name, into, .. } = stmt {
            if crate::session::cursors::marks(into.as_ref()).is_some_and(|(is_move, _)| is_move) {
                return Ok((Vec::new(), None));
            }
            let schema = st
                .cursors
                .get(&crate::session::cursors::name(name))
                .map(|c| c.schema.clone());
            return Ok((Vec::new(), schema));
        }
        let mut temp;
        let txn: &Txn = match st.txn.as_mut() {
            Some(t) => {
                if t.read_ts.is_none() {
                    t.read_ts = Some(self.exec.db.adjudicator.read_ts());
                }
                t
            }
            None => {
                temp = Self::new_txn(st, false);
                temp.read_ts = Some(self.exec.db.adjudicator.read_ts());
                &temp
            }
        };
        let (planned, target, returning) = match stmt.clone() {
            Statement::Insert(mut i) => {
                let r = i.returning.take();
                i.on = None;
                if let Some(src) = i.source.as_mut() {
                    if !matches!(src.body.as_ref(), ast::SetExpr::Values(_)) {
                        crate::sql::exec::nested_values_to_union(src);
                    }
                }
                let alias = i.table_alias.take().map(|a| ident_name(&a.alias));
                let name = match &i.table {
                    ast::TableObject::TableName(n) => Some(table_name(n)?),
                    _ => None,
                };
                (Statement::Insert(i), None, r.zip(name.map(|n| (n, alias))))
            }
            Statement::Update(mut u) => {
                let r = u.returning.take();
                let name = match &u.table.relation {
                    ast::TableFactor::Table { name, alias, .. } => Some((
                        table_name(name)?,
                        alias.as_ref().map(|a| ident_name(&a.name)),
                    )),
                    _ => None,
                };
                (
                    Statement::Update(u),
                    name.as_ref().map(|n| n.0.clone()),
                    r.zip(name),
                )
            }
            Statement::Delete(mut d) => {
                let r = d.returning.take();
                let (name, alias) = crate::sql::exec::delete_target(&mut d)?;
                (
                    Statement::Delete(d),
                    Some(name.clone()),
                    r.zip(Some((name, alias))),
                )
            }
            Statement::Query(mut q) => {
                q.locks.clear();
                (Statement::Query(q), None, None)
            }
            s @ Statement::Explain { .. } => (s, None, None),
            Statement::ShowVariable { variable } => {
                let schema = match self.show(st, &variable) {
                    Ok(Reply::Outcome(Outcome::Rows { schema, .. })) => Some(schema),
                    _ => None,
                };
                return Ok((Vec::new(), schema));
            }
            _ => return Ok((Vec::new(), None)),
        };
        let is_dml = !matches!(planned, Statement::Query(_) | Statement::Explain { .. });
        let plan = self.exec.plan(txn, planned, target.as_deref()).await?;
        let types = plan.get_parameter_types()?;
        let n = types
            .keys()
            .filter_map(|k| k.trim_start_matches('$').parse::<usize>().ok())
            .max()
            .unwrap_or(0)
            // A placeholder DataFusion could not type (in a UNION branch) still counts.
            .max(max_placeholder(stmt));
        let from_functions = crate::session::placeholders::from_function_signatures(&plan);
        let params: Vec<Option<DataType>> = (1..=n)
            .map(|i| {
                let id = format!("${i}");
                types
                    .get(&id)
                    .cloned()
                    .flatten()
                    .or_else(|| from_functions.get(&id).cloned())
            })
            .collect();
        let schema = if let Some((items, (name, alias))) = returning {
            let def = self.exec.table_def(txn, &name).await?;
            let (_, p) = self
                .exec
                .returning_plan(&def, alias.as_deref(), &items, &[])
                .await?;
            let schema: SchemaRef = Arc::new(p.schema().as_arrow().clone());
            let schema = crate::sql::origins::returning_with_origins(&schema, &def, &items);
            Some(crate::sql::names::rename(
                &schema,
                crate::sql::names::item_names(&items),
            ))
        } else if is_dml {
            None
        } else {
            let schema = crate::sql::origins::schema_with_origins(&plan);
            Some(crate::sql::names::rename(
                &schema,
                crate::sql::names::result_names(stmt),
            ))
        };
        Ok((params, schema))
    }
}

/// The prepared statement named by `EXPLAIN (..., FORMAT JSON) EXECUTE name(...)`.
///
/// weft answers this one form of EXPLAIN with the shape PostgreSQL gives, for what
/// drivers read from it: sqlx's compile-time checks learn from it which result columns can
/// be NULL beyond what their tables say: those on the inner side of an outer join.
fn explained_statement(stmt: &Statement) -> Option<String> {
    let Statement::Explain {
        statement, options, ..
    } = stmt
    else {
        return None;
    };
    let json = options.as_ref().is_some_and(|o| {
        o.iter().any(|u| {
            u.name.value.eq_ignore_ascii_case("format")
                && u.arg
                    .as_ref()
                    .is_some_and(|a| a.to_string().eq_ignore_ascii_case("json"))
        })
    });
    match statement.as_ref() {
        Statement::Execute {
            name: Some(name), ..
        } if json => name.0.last().and_then(|p| p.as_ident()).map(ident_name),
        _ => None,
    }
}

fn explain_json_schema() -> SchemaRef {
    let field = Field::new("QUERY PLAN", DataType::Utf8, false).with_metadata(
        [(
            weft_engine::types::PG_TYPE_KEY.to_string(),
            "jsonb".to_string(),
        )]
        .into(),
    );
    Arc::new(Schema::new(vec![field]))
}

fn explain_json(schema: Option<&Schema>) -> String {
    let Some(schema) = schema else {
        return serde_json::json!([{"Plan": {"Node Type": "Result"}}]).to_string();
    };
    let label = |i: usize| format!("c{}", i + 1);
    let all: Vec<String> = (0..schema.fields().len()).map(label).collect();
    let nullable: Vec<String> = schema
        .fields()
        .iter()
        .enumerate()
        .filter(|(_, f)| {
            f.metadata()
                .contains_key(crate::sql::origins::OUTER_NULLABLE_KEY)
        })
        .map(|(i, _)| label(i))
        .collect();
    serde_json::json!([{
        "Plan": {
            "Node Type": "Nested Loop",
            "Join Type": "Left",
            "Output": all,
            "Plans": [{
                "Node Type": "Result",
                "Parent Relationship": "Inner",
                "Output": nullable,
            }],
        }
    }])
    .to_string()
}

/// A statement parsed and described at Parse time.
#[derive(Debug, Clone)]
pub struct Prepared {
    pub stmt: Statement,
    pub param_types: Vec<Option<DataType>>,
    /// Parameters compared with or assigned to a uuid, json, jsonb, varchar or char column
    /// are described as that type (weft stores them as text, DataFusion infers text).
    pub param_wire: Vec<Option<Type>>,
    pub schema: Option<SchemaRef>,
}

pub struct WeftQueryParser {
    core: Arc<Core>,
}

#[async_trait]
impl QueryParser for WeftQueryParser {
    type Statement = Prepared;

    async fn parse_sql<C>(
        &self,
        _client: &C,
        sql: &str,
        _types: &[Option<Type>],
    ) -> PgWireResult<Option<Prepared>>
    where
        C: ClientInfo + Unpin + Send + Sync,
    {
        let mut stmts = parse(sql).map_err(SqlError::into_pgwire)?;
        if stmts.len() > 1 {
            return Err(SqlError::syntax(
                "cannot insert multiple commands into a prepared statement",
            )
            .into_pgwire());
        }
        let Some(stmt) = stmts.pop() else {
            return Ok(None);
        };
        if explained_statement(&stmt).is_some() {
            return Ok(Some(Prepared {
                stmt,
                param_types: Vec::new(),
                param_wire: Vec::new(),
                schema: Some(explain_json_schema()),
            }));
        }
        let (param_types, schema) = self
            .core
            .describe(&stmt)
            .await
            .map_err(SqlError::into_pgwire)?;
        let param_wire = self.core.param_wire_types(&stmt, param_types.len()).await;
        Ok(Some(Prepared {
            param_wire,
            stmt,
            param_types,
            schema,
        }))
    }

    fn get_parameter_types(&self, stmt: &Prepared) -> PgWireResult<Vec<Type>> {
        stmt.param_types
            .iter()
            .map(|t| match t {
                Some(t) => arrow_pg::datatypes::into_pg_type(t),
                None => Ok(Type::UNKNOWN),
            })
            .collect()
    }

    fn get_result_schema(
        &self,
        stmt: &Prepared,
        column_format: Option<&Format>,
    ) -> PgWireResult<Vec<FieldInfo>> {
        match &stmt.schema {
            Some(s) => fields_for(s, column_format.unwrap_or(&Format::UnifiedText)),
            None => Ok(Vec::new()),
        }
    }
}

/// One connection's handlers.
pub struct Session {
    core: Arc<Core>,
    parser: Arc<WeftQueryParser>,
    startup: Arc<Startup>,
}

impl Session {
    pub fn new(db: Arc<Db>) -> Session {
        let exec = Executor::new(db.clone());
        exec.meta.set_settings(&default_settings());
        let meta = exec.meta.clone();
        let cancel = Arc::new(tokio::sync::Notify::new());
        let core = Arc::new(Core {
            cancel: cancel.clone(),
            backend: Default::default(),
            exec,
            state: tokio::sync::Mutex::new(State {
                txn: None,
                failed: false,
                settings: default_settings(),
                as_of: None,
                copy: None,
                savepoints: Vec::new(),
                cursors: Default::default(),
                prepared: Default::default(),
            }),
        });
        Session {
            parser: Arc::new(WeftQueryParser { core: core.clone() }),
            startup: Arc::new(Startup::new(db, meta, cancel, core.clone())),
            core,
        }
    }
}

pub struct Handlers {
    session: Arc<SessionHandler>,
}

impl Handlers {
    pub fn new(db: Arc<Db>) -> Handlers {
        Handlers {
            session: Arc::new(SessionHandler(Session::new(db))),
        }
    }
}

impl Handlers {
    /// The session as `pg_stat_activity` lists it (once startup has given it a pid).
    pub fn backend(&self) -> Option<Arc<crate::catalog::activity::Backend>> {
        self.session.0.core.backend()
    }

    /// How long the session may stay idle now: `Some` while it sits in a transaction
    /// block (open or failed), as `idle_in_transaction_session_timeout` (capped by the
    /// server's bound, which also applies when the setting is 0) says; `None` otherwise.
    pub fn idle_in_transaction_timeout(&self) -> Option<std::time::Duration> {
        let core = &self.session.0.core;
        let st = core.state.try_lock().ok()?;
        let in_block = st.failed || st.txn.as_ref().is_some_and(|t| t.explicit);
        if !in_block || st.copy.is_some() {
            return None;
        }
        let max = core.exec.db.idle_in_transaction_timeout_max();
        let set = st
            .settings
            .get("idle_in_transaction_session_timeout")
            .and_then(|v| parse_duration_ms(v))
            .map(std::time::Duration::from_millis)
            .unwrap_or_default();
        match (set.is_zero(), max.is_zero()) {
            (true, true) => None,
            (true, false) => Some(max),
            (false, true) => Some(set),
            (false, false) => Some(set.min(max)),
        }
    }
}

pub struct SessionHandler(Session);

impl PgWireServerHandlers for Handlers {
    fn simple_query_handler(&self) -> Arc<impl SimpleQueryHandler> {
        self.session.clone()
    }
    fn extended_query_handler(&self) -> Arc<impl ExtendedQueryHandler> {
        self.session.clone()
    }
    fn startup_handler(&self) -> Arc<impl StartupHandler> {
        self.session.0.startup.clone()
    }
    fn copy_handler(&self) -> Arc<impl pgwire::api::copy::CopyHandler> {
        self.session.clone()
    }
    fn cancel_handler(&self) -> Arc<impl pgwire::api::cancel::CancelHandler> {
        Arc::new(CancelRequests(self.session.0.core.exec.db.clone()))
    }
}

/// Cancel requests: a separate connection naming a session by its process id and secret
/// key cancels the statement that session is running (57014), as in PostgreSQL.
struct CancelRequests(Arc<Db>);

#[async_trait]
impl pgwire::api::cancel::CancelHandler for CancelRequests {
    async fn on_cancel_request(&self, req: pgwire::messages::cancel::CancelRequest) {
        let secret = match &req.secret_key {
            SecretKey::I32(s) => Some(*s),
            SecretKey::Bytes(b) => <[u8; 4]>::try_from(b.as_ref()).ok().map(i32::from_be_bytes),
        };
        match secret {
            Some(secret) => self.0.backends.cancel_request(req.pid, secret),
            None => tracing::info!(pid = req.pid, "cancel request with a malformed key ignored"),
        }
    }
}

async fn send_notices<C>(client: &mut C, notices: Vec<Notice>) -> PgWireResult<()>
where
    C: Sink<PgWireBackendMessage> + Unpin + Send,
    C::Error: Debug,
    PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
{
    for n in notices {
        let info = ErrorInfo::new(n.severity.into(), n.code.into(), n.message);
        client
            .feed(PgWireBackendMessage::NoticeResponse(NoticeResponse::from(
                info,
            )))
            .await?;
    }
    Ok(())
}

fn error_message(e: &SqlError) -> PgWireBackendMessage {
    PgWireBackendMessage::ErrorResponse(e.to_error_info().into())
}

#[async_trait]
impl SimpleQueryHandler for SessionHandler {
    async fn on_query<C>(&self, client: &mut C, query: Query) -> PgWireResult<()>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        if !matches!(client.state(), PgWireConnectionState::ReadyForQuery) {
            return Err(PgWireError::NotReadyForQuery);
        }
        client.set_state(PgWireConnectionState::QueryInProgress);
        let core = &self.0.core;
        let mut st = core.state.lock().await;
        core.activity_begin(&st, &query.query);
        match parse(&query.query) {
            Err(e) => {
                core.fail(&mut st);
                client.feed(error_message(&e)).await?;
            }
            Ok(stmts) if stmts.is_empty() => {
                client
                    .feed(PgWireBackendMessage::EmptyQueryResponse(
                        EmptyQueryResponse::new(),
                    ))
                    .await?;
            }
            Ok(stmts)
                if stmts.len() > 1
                    && stmts
                        .iter()
                        .any(|s| matches!(s, Statement::Copy { to: false, .. })) =>
            {
                core.fail(&mut st);
                client
                    .feed(error_message(&SqlError::unsupported(
                        "COPY FROM STDIN must be the only statement in its query string",
                    )))
                    .await?;
            }
            Ok(stmts) => {
                let multi = stmts.len() > 1;
                let mut failed = false;
                for stmt in stmts {
                    let mut notices = Vec::new();
                    let result = core.run(&mut st, stmt, None, !multi, &mut notices).await;
                    send_notices(client, notices).await?;
                    match result {
                        Ok(reply) => send_reply(client, reply).await?,
                        Err(e) => {
                            client.feed(error_message(&e)).await?;
                            failed = true;
                            break;
                        }
                    }
                }
                if multi && !failed && st.txn.as_ref().is_some_and(|t| !t.explicit) {
                    let t = st.txn.take().expect("implicit transaction");
                    if let Err(e) = core.commit(t).await {
                        client.feed(error_message(&e)).await?;
                    }
                }
                if st.copy.is_some() {
                    // The client sends the data next; ReadyForQuery follows CopyDone.
                    client.set_transaction_status(Core::status(&st));
                    client.set_state(PgWireConnectionState::CopyInProgress(false));
                    client.flush().await?;
                    return Ok(());
                }
                if st.txn.as_ref().is_some_and(|t| !t.explicit) {
                    st.txn = None;
                }
            }
        }
        core.activity_end(&st);
        let status = Core::status(&st);
        drop(st);
        client.set_state(PgWireConnectionState::ReadyForQuery);
        client.set_transaction_status(status);
        send_ready_for_query(client, status).await?;
        Ok(())
    }

    async fn do_query<C>(&self, _client: &mut C, _query: &str) -> PgWireResult<Vec<Response>>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        // `on_query` is overridden and never calls this.
        Err(SqlError::internal("simple query dispatch").into_pgwire())
    }
}

async fn send_reply<C>(client: &mut C, reply: Reply) -> PgWireResult<()>
where
    C: Sink<PgWireBackendMessage> + Unpin + Send,
    C::Error: Debug,
    PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
{
    match reply {
        Reply::Outcome(Outcome::Rows { schema, batches }) => {
            let resp = query_response(&schema, batches, &Format::UnifiedText)?;
            send_query_response(client, resp, true).await
        }
        Reply::Outcome(Outcome::Fetched { schema, batches }) => {
            let mut resp = query_response(&schema, batches, &Format::UnifiedText)?;
            resp.set_command_tag("FETCH");
            send_query_response(client, resp, true).await
        }
        Reply::Outcome(Outcome::Command(tag)) => send_execution_response(client, tag).await,
        Reply::Begin => send_execution_response(client, Tag::new("BEGIN")).await,
        Reply::End(tag) => send_execution_response(client, Tag::new(tag)).await,
        Reply::CopyIn { columns } => {
            let resp =
                pgwire::api::results::CopyResponse::new(0, columns, futures::stream::empty());
            client
                .feed(PgWireBackendMessage::CopyInResponse(
                    pgwire::messages::copy::CopyInResponse::new(
                        0,
                        columns as i16,
                        resp.column_formats(),
                    ),
                ))
                .await?;
            Ok(())
        }
        Reply::Outcome(Outcome::CopyOut {
            schema,
            batches,
            format,
        }) => {
            let columns = schema.fields().len();
            let (lines, rows) = crate::wire::encode::copy_out_lines(&schema, &batches, &format)
                .map_err(|e| e.into_pgwire())?;
            client
                .feed(PgWireBackendMessage::CopyOutResponse(
                    pgwire::messages::copy::CopyOutResponse::new(
                        0,
                        columns as i16,
                        vec![0; columns],
                    ),
                ))
                .await?;
            for l in lines {
                client
                    .feed(PgWireBackendMessage::CopyData(
                        pgwire::messages::copy::CopyData::new(bytes::Bytes::from(l)),
                    ))
                    .await?;
            }
            client
                .feed(PgWireBackendMessage::CopyDone(
                    pgwire::messages::copy::CopyDone::new(),
                ))
                .await?;
            send_execution_response(client, Tag::new("COPY").with_rows(rows)).await
        }
        Reply::Outcome(Outcome::CopyIn(_)) => Err(PgWireError::ApiError(
            "a COPY FROM outcome escaped the session".into(),
        )),
    }
}

#[async_trait]
impl ExtendedQueryHandler for SessionHandler {
    type Statement = Prepared;
    type QueryParser = WeftQueryParser;

    fn query_parser(&self) -> Arc<Self::QueryParser> {
        self.0.parser.clone()
    }

    async fn on_bind<C>(
        &self,
        client: &mut C,
        message: pgwire::messages::extendedquery::Bind,
    ) -> PgWireResult<()>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore<Statement = Self::Statement>,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        use pgwire::api::store::Entry;
        let statement_name = message.statement_name.as_deref().unwrap_or(DEFAULT_NAME);
        let portal_name = message.portal_name.as_deref().unwrap_or(DEFAULT_NAME);
        match client.portal_store().get_statement(statement_name) {
            Some(Entry::Value(statement)) => {
                let portal = Portal::try_new(&message, statement)?;
                client.portal_store().put_portal(Arc::new(portal));
            }
            Some(Entry::Empty) => {
                if !message.parameters.is_empty() {
                    return Err(PgWireError::UserError(Box::new(ErrorInfo::new(
                        "ERROR".to_owned(),
                        codes::PROTOCOL_VIOLATION.to_owned(),
                        format!(
                            "bind message supplies {} parameters, but prepared statement \"{}\" requires 0",
                            message.parameters.len(),
                            statement_name
                        ),
                    ))));
                }
                client.portal_store().put_empty_portal(portal_name);
            }
            None => return Err(PgWireError::StatementNotFound(statement_name.to_owned())),
        }
        // Queued, not flushed: it leaves with the rest of the answer at Sync.
        client
            .feed(PgWireBackendMessage::BindComplete(
                pgwire::messages::extendedquery::BindComplete::new(),
            ))
            .await?;
        Ok(())
    }

    async fn on_execute<C>(
        &self,
        client: &mut C,
        message: pgwire::messages::extendedquery::Execute,
    ) -> PgWireResult<()>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore<Statement = Self::Statement>,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        // The default execution, with its flushes deferred to Sync (see deferred.rs).
        let r = self
            ._on_execute(&mut crate::wire::deferred::Deferred(client), message)
            .await;
        if matches!(client.state(), PgWireConnectionState::CopyInProgress(_)) {
            // COPY FROM STDIN: the client waits for CopyInResponse before it sends data,
            // and a Sync during the copy is ignored, so it leaves now.
            client.flush().await?;
        }
        r
    }

    /// As pgwire's, except that a statement returning no rows (INSERT, UPDATE, DELETE
    /// without RETURNING) is described with NoData even when it has parameters: a
    /// RowDescription of no columns means a query that returns rows (pgjdbc then rejects
    /// `executeUpdate`).
    async fn on_describe<C>(
        &self,
        client: &mut C,
        message: pgwire::messages::extendedquery::Describe,
    ) -> PgWireResult<()>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore<Statement = Self::Statement>,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        use pgwire::api::results::DescribeResponse;
        use pgwire::messages::data::{NoData, ParameterDescription};
        let name = message.name.as_deref().unwrap_or(DEFAULT_NAME);
        // A cursor DECLAREd in SQL is a portal too, as in PostgreSQL: psycopg describes it
        // by name to learn its columns.
        if message.target_type == pgwire::messages::extendedquery::TARGET_TYPE_BYTE_PORTAL
            && client.portal_store().get_portal(name).is_none()
        {
            let schema = {
                let st = self.0.core.state.lock().await;
                st.cursors.get(name).map(|c| c.schema.clone())
            };
            if let Some(schema) = schema {
                let fields = fields_for(&schema, &Format::UnifiedText)?;
                client
                    .send(PgWireBackendMessage::RowDescription(
                        pgwire::messages::data::RowDescription::new(
                            fields.iter().map(Into::into).collect(),
                        ),
                    ))
                    .await?;
                return Ok(());
            }
        }
        let stmt = match client.portal_store().get_statement(name) {
            Some(pgwire::api::store::Entry::Value(stmt))
                if message.target_type
                    == pgwire::messages::extendedquery::TARGET_TYPE_BYTE_STATEMENT
                    && stmt.statement.schema.is_none() =>
            {
                stmt
            }
            _ => return self._on_describe(client, message).await,
        };
        let described = self.do_describe_statement(client, &stmt).await?;
        let oids = described
            .parameters()
            .unwrap_or_default()
            .iter()
            .map(|t| t.oid())
            .collect();
        client
            .send(PgWireBackendMessage::ParameterDescription(
                ParameterDescription::new(oids),
            ))
            .await?;
        client
            .send(PgWireBackendMessage::NoData(NoData::default()))
            .await?;
        Ok(())
    }

    async fn do_describe_statement<C>(
        &self,
        _client: &mut C,
        target: &StoredStatement<Self::Statement>,
    ) -> PgWireResult<DescribeStatementResponse>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore<Statement = Self::Statement>,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let p = &target.statement;
        let params: Vec<Type> = p
            .param_types
            .iter()
            .enumerate()
            .map(
                |(i, t)| match target.parameter_types.get(i).cloned().flatten() {
                    Some(declared) if declared != Type::UNKNOWN => Ok(declared),
                    _ if p.param_wire.get(i).cloned().flatten().is_some() => {
                        Ok(p.param_wire[i].clone().expect("checked"))
                    }
                    _ => match t {
                        Some(t) => pg_type_of(&Field::new("", t.clone(), true)),
                        None => Ok(Type::TEXT),
                    },
                },
            )
            .collect::<PgWireResult<_>>()?;
        let fields = match &p.schema {
            Some(s) => fields_for(s, &Format::UnifiedText)?,
            None => Vec::new(),
        };
        Ok(DescribeStatementResponse::new(params, fields))
    }

    async fn do_describe_portal<C>(
        &self,
        _client: &mut C,
        target: &Portal<Self::Statement>,
    ) -> PgWireResult<DescribePortalResponse>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore<Statement = Self::Statement>,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let fields = match &target.statement.statement.schema {
            Some(s) => fields_for(s, &target.result_column_format)?,
            None => Vec::new(),
        };
        Ok(DescribePortalResponse::new(fields))
    }

    async fn do_query<C>(
        &self,
        client: &mut C,
        portal: &Portal<Self::Statement>,
        _max_rows: usize,
    ) -> PgWireResult<Response>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore<Statement = Self::Statement>,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let normalized = normalize_params(
            portal,
            &portal.statement.statement.param_wire,
            &portal.statement.statement.param_types,
        );
        let portal = normalized.as_ref().unwrap_or(portal);
        let p = &portal.statement.statement;
        if let Some(name) = explained_statement(&p.stmt) {
            let described = match client.portal_store().get_statement(&name) {
                Some(pgwire::api::store::Entry::Value(s)) => s.statement.schema.clone(),
                _ => {
                    return Err(SqlError::new(
                        "26000",
                        format!("prepared statement \"{name}\" does not exist"),
                    )
                    .into_pgwire())
                }
            };
            let schema = explain_json_schema();
            let batch = RecordBatch::try_new(
                schema.clone(),
                vec![Arc::new(StringArray::from(vec![explain_json(
                    described.as_deref(),
                )]))],
            )
            .map_err(|e| SqlError::internal(e.to_string()).into_pgwire())?;
            return Ok(Response::Query(query_response(
                &schema,
                vec![batch],
                &portal.result_column_format,
            )?));
        }
        let params = if portal.parameter_len() > 0 {
            let inferred: Vec<Option<&DataType>> =
                p.param_types.iter().map(|t| t.as_ref()).collect();
            Some(arrow_pg::datatypes::df::deserialize_parameters(
                portal, &inferred,
            )?)
        } else {
            None
        };
        let core = &self.0.core;
        let mut st = core.state.lock().await;
        core.activity_begin(&st, &p.stmt.to_string());
        let mut notices = Vec::new();
        let result = core
            .run(&mut st, p.stmt.clone(), params.as_ref(), true, &mut notices)
            .await;
        core.activity_end(&st);
        drop(st);
        send_notices(client, notices).await?;
        match result {
            Ok(Reply::Outcome(Outcome::Rows { schema, batches })) => {
                // The row description was promised at Describe; keep its column types.
                let schema = p
                    .schema
                    .clone()
                    .filter(|s| s.fields().len() == schema.fields().len())
                    .unwrap_or(schema);
                Ok(Response::Query(query_response(
                    &schema,
                    batches,
                    &portal.result_column_format,
                )?))
            }
            Ok(Reply::Outcome(Outcome::Fetched { schema, batches })) => {
                let mut resp = query_response(&schema, batches, &portal.result_column_format)?;
                resp.set_command_tag("FETCH");
                Ok(Response::Query(resp))
            }
            Ok(Reply::Outcome(Outcome::Command(tag))) => Ok(Response::Execution(tag)),
            Ok(Reply::Begin) => Ok(Response::TransactionStart(Tag::new("BEGIN"))),
            Ok(Reply::End(tag)) => Ok(Response::TransactionEnd(Tag::new(tag))),
            Ok(Reply::CopyIn { columns }) => Ok(Response::CopyIn(
                pgwire::api::results::CopyResponse::new(0, columns, futures::stream::empty()),
            )),
            Ok(Reply::Outcome(Outcome::CopyOut {
                schema,
                batches,
                format,
            })) => {
                let columns = schema.fields().len();
                let (lines, _) = crate::wire::encode::copy_out_lines(&schema, &batches, &format)
                    .map_err(|e| e.into_pgwire())?;
                let data = lines
                    .into_iter()
                    .map(|l| Ok(pgwire::messages::copy::CopyData::new(bytes::Bytes::from(l))));
                Ok(Response::CopyOut(pgwire::api::results::CopyResponse::new(
                    0,
                    columns,
                    futures::stream::iter(data.collect::<Vec<_>>()),
                )))
            }
            Ok(Reply::Outcome(Outcome::CopyIn(_))) => Err(PgWireError::ApiError(
                "a COPY FROM outcome escaped the session".into(),
            )),
            Err(e) => Err(e.into_pgwire()),
        }
    }

    async fn on_sync<C>(&self, client: &mut C, _message: PgSync) -> PgWireResult<()>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore<Statement = Self::Statement>,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        client.portal_store().rm_portal(DEFAULT_NAME);
        let status = Core::status(&*self.0.core.state.lock().await);
        client.set_transaction_status(status);
        client
            .send(PgWireBackendMessage::ReadyForQuery(ReadyForQuery::new(
                status,
            )))
            .await?;
        client.flush().await?;
        Ok(())
    }
}

/// The `name=value` pairs of a startup `options` string: `-c name=value` or
/// `--name=value`, separated by spaces (a backslash escapes the next character).
fn startup_options(options: &str) -> Vec<(String, String)> {
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

/// The parameters sent at the end of startup, as PostgreSQL 15 sends them.
fn server_parameters() -> DefaultServerParameterProvider {
    let mut params = DefaultServerParameterProvider::default();
    params.server_version = "15.0".into();
    params.time_zone = "UTC".into();
    params.date_style = "ISO, MDY".into();
    params
}

/// Gives a connection its process id (and cancel key), and the session its identity.
struct SessionPids {
    db: Arc<Db>,
    meta: Arc<crate::catalog::pgcatalog::SessionMeta>,
    cancel: Arc<tokio::sync::Notify>,
    core: Arc<Core>,
}

impl pgwire::api::PidSecretKeyGenerator for SessionPids {
    fn generate(&self, client: &dyn ClientInfo) -> (i32, SecretKey) {
        let pid = (self.db.next_pid.fetch_add(1, Ordering::Relaxed) % (i32::MAX as u64)) as i32;
        let meta = client.metadata();
        let user = meta
            .get(pgwire::api::METADATA_USER)
            .cloned()
            .unwrap_or_else(|| crate::catalog::pgcatalog::BOOTSTRAP_ROLE_NAME.to_string());
        let database = meta
            .get(pgwire::api::METADATA_DATABASE)
            .cloned()
            .unwrap_or_else(|| user.clone());
        self.meta.set_identity(crate::catalog::pgcatalog::Identity {
            user,
            database,
            pid,
        });
        let secret = rand::random::<i32>();
        let backend = self.db.backends.register(crate::catalog::activity::Start {
            pid,
            secret,
            user: self.meta.identity().user,
            database: self.meta.identity().database,
            client_addr: Some(client.socket_addr()),
            application_name: meta.get("application_name").cloned().unwrap_or_default(),
            cancel: self.cancel.clone(),
        });
        let _ = self.core.backend.set(backend);
        self.core.apply_startup_settings(meta);
        (pid, SecretKey::I32(secret))
    }
}

/// Startup: trusted connections (loopback ones by default) go straight in; the others
/// authenticate with SCRAM-SHA-256 (see [`crate::catalog::roles`]).
pub struct Startup {
    db: Arc<Db>,
    pids: Arc<SessionPids>,
    sasl: pgwire::api::auth::sasl::SASLAuthStartupHandler<DefaultServerParameterProvider>,
    authenticating: std::sync::atomic::AtomicBool,
    /// Authentication failed: the error was sent and the connection closed; whatever the
    /// client still sends is ignored.
    failed: std::sync::atomic::AtomicBool,
}

impl Startup {
    fn new(
        db: Arc<Db>,
        meta: Arc<crate::catalog::pgcatalog::SessionMeta>,
        cancel: Arc<tokio::sync::Notify>,
        core: Arc<Core>,
    ) -> Startup {
        let pids = Arc::new(SessionPids {
            db: db.clone(),
            meta,
            cancel,
            core,
        });
        let mut scram = pgwire::api::auth::sasl::scram::ScramAuth::new(Arc::new(
            crate::wire::auth::WeftAuthSource { db: db.clone() },
        ));
        scram.set_iterations(crate::catalog::auth::SCRAM_ITERATIONS);
        let sasl =
            pgwire::api::auth::sasl::SASLAuthStartupHandler::new(Arc::new(server_parameters()))
                .with_scram(scram)
                .with_pid_secret_key_generator(pids.clone());
        Startup {
            db,
            pids,
            sasl,
            authenticating: Default::default(),
            failed: Default::default(),
        }
    }
}

#[async_trait]
impl StartupHandler for Startup {
    async fn on_startup<C>(
        &self,
        client: &mut C,
        message: PgWireFrontendMessage,
    ) -> PgWireResult<()>
    where
        C: ClientInfo + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        if self.failed.load(Ordering::Relaxed) {
            return Ok(());
        }
        match message {
            PgWireFrontendMessage::Startup(ref startup) => {
                let peer = client.socket_addr().ip();
                if self.db.auth().mode.requires_password(peer) {
                    self.authenticating.store(true, Ordering::Relaxed);
                    return self.sasl.on_startup(client, message).await;
                }
                protocol_negotiation(client, startup).await?;
                save_startup_parameters_to_metadata(client, startup);
                let (pid, key) = pgwire::api::PidSecretKeyGenerator::generate(&*self.pids, client);
                client.set_pid_and_secret_key(pid, key);
                finish_authentication(client, &server_parameters()).await?;
            }
            PgWireFrontendMessage::PasswordMessageFamily(_)
                if self.authenticating.load(Ordering::Relaxed) =>
            {
                if let Err(e) = self.sasl.on_startup(client, message).await {
                    // pgwire's own error path would mark the connection ready for queries
                    // before closing it; a failed login must never get that far.
                    self.failed.store(true, Ordering::Relaxed);
                    let user = client
                        .metadata()
                        .get(pgwire::api::METADATA_USER)
                        .cloned()
                        .unwrap_or_default();
                    tracing::info!(user, peer = %client.socket_addr(), error = %e, "authentication failed");
                    let info = ErrorInfo::new(
                        "FATAL".into(),
                        "28P01".into(),
                        format!("password authentication failed for user \"{user}\""),
                    );
                    client
                        .send(PgWireBackendMessage::ErrorResponse(info.into()))
                        .await?;
                    client.flush().await?;
                    let _ = client.close().await;
                }
            }
            _ => {}
        }
        Ok(())
    }
}

/// Records parsed before they are written as one batch (copy_load.rs), or one INSERT.
const COPY_CHUNK_ROWS: usize = 8192;

impl Core {
    /// Inserts what a COPY FROM has parsed, in chunks; with `weft.copy_commit_rows` set and
    /// no transaction block, commits every that many rows.
    async fn copy_flush(&self, st: &mut State, all: bool) -> SqlResult<()> {
        let Some(mut copy) = st.copy.take() else {
            return Ok(());
        };
        let result = self.copy_flush_inner(st, &mut copy, all).await;
        st.copy = Some(copy);
        result
    }

    async fn copy_flush_inner(
        &self,
        st: &mut State,
        copy: &mut crate::sql::copy::CopyIn,
        all: bool,
    ) -> SqlResult<()> {
        let commit_every = st
            .settings
            .get("weft.copy_commit_rows")
            .and_then(|v| v.trim().parse::<usize>().ok())
            .unwrap_or(0);
        // Batches of at most one bounded commit's rows.
        let chunk = match commit_every {
            0 => COPY_CHUNK_ROWS,
            n => n.min(COPY_CHUNK_ROWS),
        };
        if copy.records.is_empty() || (!all && copy.records.len() < chunk) {
            return Ok(());
        }
        let mut pending = std::mem::take(&mut copy.records);
        while !pending.is_empty() {
            let rest = pending.split_off(chunk.min(pending.len()));
            copy.records = std::mem::replace(&mut pending, rest);
            let txn = st
                .txn
                .as_mut()
                .ok_or_else(|| SqlError::internal("COPY without a transaction"))?;
            self.exec.copy_rows(txn, copy).await?;
            // Bounded commits also end before the next chunk would take the transaction
            // past its limits (a full chunk of rows the size of those so far): N rows is a
            // ceiling, not a size the user has to fit to weft.txn_bytes_max.
            let next = chunk;
            let full = txn.rows_written > 0
                && (txn.bytes_written + txn.bytes_written / txn.rows_written * next
                    > self.exec.db.limits.bytes_max
                    || txn.rows_written + next > self.exec.db.limits.rows_max);
            if commit_every > 0
                && !txn.explicit
                && (copy.uncommitted >= commit_every || (full && copy.uncommitted > 0))
            {
                let done = st.txn.take().expect("the COPY's transaction");
                self.commit(done).await?;
                copy.uncommitted = 0;
                let mut fresh = Self::new_txn(st, false);
                fresh.read_ts = Some(self.exec.db.adjudicator.read_ts());
                fresh.pin = fresh.read_ts.map(|ts| self.exec.db.storage.pin(ts));
                st.txn = Some(fresh);
            }
        }
        Ok(())
    }

    /// Ends a COPY FROM: the rest of the rows, then the commit of an implicit transaction.
    async fn copy_done(&self, st: &mut State) -> SqlResult<usize> {
        let Some(copy) = st.copy.as_mut() else {
            return Err(SqlError::new(
                codes::PROTOCOL_VIOLATION,
                "CopyDone without a COPY in progress",
            ));
        };
        if copy.failed.is_none() {
            if let Err(e) = copy.finish() {
                copy.failed = Some(e);
            }
        }
        if st.copy.as_ref().is_some_and(|c| c.failed.is_none()) {
            if let Err(e) = self.copy_flush(st, true).await {
                if let Some(c) = st.copy.as_mut() {
                    c.failed = Some(e);
                }
            }
        }
        let copy = st.copy.take().expect("checked above");
        if let Some(e) = copy.failed {
            self.fail(st);
            return Err(e);
        }
        if st.txn.as_ref().is_some_and(|t| !t.explicit) {
            let t = st.txn.take().expect("implicit transaction");
            self.commit(t).await?;
        }
        Ok(copy.count)
    }
}

#[async_trait]
impl pgwire::api::copy::CopyHandler for SessionHandler {
    async fn on_copy_data<C>(
        &self,
        _client: &mut C,
        data: pgwire::messages::copy::CopyData,
    ) -> PgWireResult<()>
    where
        C: ClientInfo + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let core = &self.0.core;
        let mut st = core.state.lock().await;
        let Some(copy) = st.copy.as_mut() else {
            return Ok(());
        };
        if copy.failed.is_some() {
            // After an error the rest of the data is read and dropped.
            return Ok(());
        }
        if let Err(e) = copy.feed(&data.data) {
            copy.failed = Some(e);
            return Ok(());
        }
        if let Err(e) = core.copy_flush(&mut st, false).await {
            if let Some(c) = st.copy.as_mut() {
                c.failed = Some(e);
            }
        }
        Ok(())
    }

    async fn on_copy_done<C>(
        &self,
        client: &mut C,
        _done: pgwire::messages::copy::CopyDone,
    ) -> PgWireResult<()>
    where
        C: ClientInfo + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let core = &self.0.core;
        let mut st = core.state.lock().await;
        let result = core.copy_done(&mut st).await;
        if st.txn.as_ref().is_some_and(|t| !t.explicit) {
            st.txn = None;
        }
        client.set_transaction_status(Core::status(&st));
        match result {
            Ok(n) => {
                send_execution_response(client, Tag::new("COPY").with_rows(n)).await?;
                Ok(())
            }
            Err(e) => Err(e.into_pgwire()),
        }
    }

    async fn on_copy_fail<C>(
        &self,
        client: &mut C,
        fail: pgwire::messages::copy::CopyFail,
    ) -> PgWireError
    where
        C: ClientInfo + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let core = &self.0.core;
        let mut st = core.state.lock().await;
        st.copy = None;
        core.fail(&mut st);
        client.set_transaction_status(Core::status(&st));
        SqlError::new(
            codes::QUERY_CANCELED,
            format!("COPY from stdin failed: {}", fail.message),
        )
        .into_pgwire()
    }
}

/// Parameters of the types weft stores as text (uuid, json, jsonb, varchar, char, name),
/// rewritten as text parameters: arrow-pg decodes those types only into their own Rust
/// types, while weft wants the text. A binary uuid becomes its hyphenated form, a binary
/// jsonb loses its version byte; the others' binary form is their text already.
fn normalize_params<S: Clone>(
    portal: &Portal<S>,
    described: &[Option<Type>],
    inferred: &[Option<DataType>],
) -> Option<Portal<S>> {
    // The client's declared type, else the one weft described.
    let types: Vec<Option<Type>> = (0..portal.parameter_len())
        .map(|i| {
            portal
                .statement
                .parameter_types
                .get(i)
                .cloned()
                .flatten()
                .filter(|t| *t != Type::UNKNOWN)
                .or_else(|| described.get(i).cloned().flatten())
        })
        .collect();
    let types = &types;
    let textual = |t: &Type| {
        [
            Type::UUID,
            Type::JSON,
            Type::JSONB,
            Type::VARCHAR,
            Type::BPCHAR,
            Type::NAME,
        ]
        .contains(t)
    };
    // A NULL of no known type (no declared, described or inferred type) is read as a text
    // NULL; arrow-pg would drop it and shift the parameters after it.
    let untyped_null = |i: usize| {
        types[i].is_none()
            && inferred.get(i).cloned().flatten().is_none()
            && matches!(portal.parameters.get(i), Some(None))
    };
    let any_untyped_null = (0..types.len()).any(untyped_null);
    if !types.iter().flatten().any(textual) && !any_untyped_null {
        return None;
    }
    let mut parameters = portal.parameters.clone();
    let mut new_types = types.clone();
    for (i, slot) in new_types.iter_mut().enumerate() {
        if untyped_null(i) {
            *slot = Some(Type::TEXT);
        }
    }
    for (i, t) in types.iter().enumerate() {
        let Some(t) = t.as_ref().filter(|t| textual(t)) else {
            continue;
        };
        let binary = portal.parameter_format.is_binary(i);
        if let Some(Some(b)) = parameters.get_mut(i) {
            if binary && *t == Type::UUID {
                if let Ok(u) = uuid::Uuid::from_slice(b) {
                    *b = bytes::Bytes::from(u.hyphenated().to_string());
                }
            } else if binary && *t == Type::JSONB && b.first() == Some(&1) {
                *b = b.slice(1..);
            }
        }
        new_types[i] = Some(Type::TEXT);
    }
    let stmt = StoredStatement::new(
        portal.statement.id.clone(),
        portal.statement.statement.clone(),
        new_types,
    );
    let mut out = Portal::new_cursor(portal.name.clone(), Arc::new(stmt));
    out.parameter_format = portal.parameter_format.clone();
    out.parameters = parameters;
    out.result_column_format = portal.result_column_format.clone();
    out.state = portal.state.clone();
    Some(out)
}

impl Core {
    /// The wire types of parameters that stand for a column weft stores as text but
    /// PostgreSQL types otherwise (uuid, json, jsonb, varchar, char): `col = $n` anywhere,
    /// `SET col = $n`, and INSERT's VALUES.
    async fn param_wire_types(&self, stmt: &Statement, n: usize) -> Vec<Option<Type>> {
        use datafusion::sql::sqlparser::ast::{visit_expressions, visit_relations, Expr};
        use std::ops::ControlFlow;
        let mut out = vec![None; n];
        if n == 0 {
            return out;
        }
        let placeholder = |e: &Expr| -> Option<usize> {
            match e {
                Expr::Value(v) => match &v.value {
                    ast::Value::Placeholder(p) => p.trim_start_matches('$').parse::<usize>().ok(),
                    _ => None,
                },
                Expr::Nested(inner) => match inner.as_ref() {
                    Expr::Value(v) => match &v.value {
                        ast::Value::Placeholder(p) => {
                            p.trim_start_matches('$').parse::<usize>().ok()
                        }
                        _ => None,
                    },
                    _ => None,
                },
                _ => None,
            }
        };
        let column = |e: &Expr| -> Option<String> {
            match e {
                Expr::Identifier(i) => Some(ident_name(i)),
                Expr::CompoundIdentifier(ids) => ids.last().map(ident_name),
                _ => None,
            }
        };
        // (column, parameter number)
        let mut pairs: Vec<(String, usize)> = Vec::new();
        let _ = visit_expressions(stmt, |e| {
            if let Expr::BinaryOp { left, right, .. } = e {
                if let (Some(c), Some(p)) = (column(left), placeholder(right)) {
                    pairs.push((c, p));
                } else if let (Some(p), Some(c)) = (placeholder(left), column(right)) {
                    pairs.push((c, p));
                }
            }
            ControlFlow::<()>::Continue(())
        });
        let mut tables: Vec<String> = Vec::new();
        let _ = visit_relations(stmt, |r| {
            if let Ok(t) = table_name(r) {
                tables.push(t);
            }
            ControlFlow::<()>::Continue(())
        });
        match stmt {
            Statement::Insert(i) => {
                if let Some(ast::SetExpr::Values(v)) = i.source.as_ref().map(|q| q.body.as_ref()) {
                    let names: Option<Vec<String>> = if i.columns.is_empty() {
                        None
                    } else {
                        Some(
                            i.columns
                                .iter()
                                .filter_map(|c| table_name(c).ok())
                                .collect(),
                        )
                    };
                    for row in &v.rows {
                        for (k, e) in row.iter().enumerate() {
                            if let Some(p) = placeholder(e) {
                                match &names {
                                    Some(ns) => {
                                        if let Some(c) = ns.get(k) {
                                            pairs.push((c.clone(), p));
                                        }
                                    }
                                    None => pairs.push((format!("#{k}"), p)),
                                }
                            }
                        }
                    }
                }
            }
            Statement::Update(u) => {
                for a in &u.assignments {
                    if let (ast::AssignmentTarget::ColumnName(c), Some(p)) =
                        (&a.target, placeholder(&a.value))
                    {
                        if let Ok(c) = table_name(c) {
                            pairs.push((c, p));
                        }
                    }
                }
            }
            _ => {}
        }
        if pairs.is_empty() {
            return out;
        }
        let st = self.state.lock().await;
        let read_ts = st
            .txn
            .as_ref()
            .and_then(|t| t.read_ts)
            .unwrap_or_else(|| self.exec.db.adjudicator.read_ts());
        let overlay = st
            .txn
            .as_ref()
            .and_then(|t| t.overlay(weft_engine::schema::CATALOG_TABLE_ID));
        drop(st);
        let mut defs = Vec::new();
        for t in &tables {
            if let Ok(Some(d)) = self
                .exec
                .db
                .lookup_table(read_ts, overlay.as_deref(), t)
                .await
            {
                defs.push(d);
            }
        }
        for (c, p) in pairs {
            if p == 0 || p > n {
                continue;
            }
            let col = if let Some(k) = c.strip_prefix('#') {
                k.parse::<usize>()
                    .ok()
                    .and_then(|k| defs.first().and_then(|d| d.columns.get(k).cloned()))
            } else {
                defs.iter()
                    .find_map(|d| d.columns.iter().find(|x| x.name == c).cloned())
            };
            let ty = match col.map(|c| c.ty) {
                Some(weft_engine::types::SqlType::Uuid) => Some(Type::UUID),
                Some(weft_engine::types::SqlType::Json) => Some(Type::JSON),
                Some(weft_engine::types::SqlType::Jsonb) => Some(Type::JSONB),
                Some(weft_engine::types::SqlType::Varchar { .. }) => Some(Type::VARCHAR),
                Some(weft_engine::types::SqlType::Char { .. }) => Some(Type::BPCHAR),
                _ => None,
            };
            if ty.is_some() && out[p - 1].is_none() {
                out[p - 1] = ty;
            }
        }
        out
    }
}

/// The highest `$n` a statement uses.
fn max_placeholder(stmt: &Statement) -> usize {
    use datafusion::sql::sqlparser::ast::{visit_expressions, Expr};
    use std::ops::ControlFlow;
    let mut n = 0;
    let _ = visit_expressions(stmt, |e| {
        if let Expr::Value(v) = e {
            if let ast::Value::Placeholder(p) = &v.value {
                if let Ok(k) = p.trim_start_matches('$').parse::<usize>() {
                    n = n.max(k);
                }
            }
        }
        ControlFlow::<()>::Continue(())
    });
    n
}
