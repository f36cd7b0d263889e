//! A session's settings: SET, SHOW and RESET, SET TRANSACTION's modes, the startup
//! parameters, and the text forms of time settings.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use arrow::array::{RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::sql::sqlparser::ast::{self, Statement};
use datafusion::sql::sqlparser::dialect::PostgreSqlDialect;
use datafusion::sql::sqlparser::parser::Parser;

use crate::catalog::txn::Txn;
use crate::error::{codes, SqlError, SqlResult};
use crate::session::machine::Core;
use crate::session::machine::Reply;
use crate::session::machine::State;
use crate::session::setting_values::apply_modes;
use crate::session::setting_values::duration_text;
use crate::session::setting_values::level_of;
use crate::session::setting_values::limit_settings;
use crate::session::setting_values::parse_bool;
use crate::session::setting_values::parse_duration_ms;
use crate::session::setting_values::parse_level;
use crate::session::setting_values::parse_timestamptz;
use crate::session::setting_values::read_only_setting;
use crate::session::setting_values::setting_value;
use crate::session::setting_values::single_row;
use crate::session::setting_values::startup_options;
use crate::session::setting_values::timestamptz_text;
use crate::sql::outcome::{CommandTag, Notice, Outcome};
use weft_engine::Timestamp;

impl Core {
    /// The settings a client sends at startup (`application_name`, `DateStyle`, and
    /// `options='-c name=value ...'`), applied as `SET` would apply them. One that `SET`
    /// would reject is skipped with a log line (PostgreSQL refuses the connection).
    pub(crate) fn apply_startup_settings(
        &self,
        params: &std::collections::HashMap<String, String>,
    ) {
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

    pub(crate) fn settings(
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
                let value = if name == "search_path" {
                    crate::sql::search_path::setting_text(values)
                } else {
                    setting_value(values)
                };
                if let Some((_, _, flag)) = limit_settings(&self.exec.db.limits)
                    .into_iter()
                    .find(|(n, _, _)| *n == name)
                {
                    return Err(read_only_setting(&name, flag));
                }
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
        Ok(Reply::Outcome(Outcome::Command(CommandTag::new("SET"))))
    }

    /// The read timestamp `SET weft.as_of = '<timestamptz>'` asks for, checked against the
    /// present and the version retention window.
    pub(crate) fn as_of_timestamp(&self, value: &str) -> SqlResult<Timestamp> {
        let bad = |msg: String| SqlError::new(codes::INVALID_PARAMETER_VALUE, msg);
        let ns = parse_timestamptz(value).ok_or_else(|| {
            bad(format!(
                "invalid value for parameter \"weft.as_of\": \"{value}\""
            ))
            .with_hint("Use a timestamp with time zone, such as the output of SELECT now().")
        })?;
        let now = self.exec.db.adjudicator.now();
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

    pub(crate) fn reset(&self, st: &mut State, r: &ast::ResetStatement) -> SqlResult<Reply> {
        let defaults = crate::session::machine::settings_of(&self.exec.db);
        match &r.reset {
            ast::Reset::ALL => {
                st.settings = defaults;
                st.as_of = None;
                self.exec.meta.set_role(None);
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
        Ok(Reply::Outcome(Outcome::Command(CommandTag::new("RESET"))))
    }

    /// The transaction that SET TRANSACTION configures: an explicit one that has not run a
    /// query yet. Outside a block it has no effect (a warning, as in PostgreSQL).
    pub(crate) fn txn_to_configure<'a>(
        st: &'a mut State,
        notices: &mut Vec<Notice>,
    ) -> SqlResult<Option<&'a mut Txn>> {
        match st.txn.as_mut() {
            Some(t) if t.explicit => {
                if t.has_snapshot() {
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

    pub(crate) fn show(&self, st: &State, variable: &[ast::Ident]) -> SqlResult<Reply> {
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
                    let t = self.new_txn(st, false);
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
        if name == "weft.commits_in_flight" {
            // Commits given a timestamp whose journal batch is not durable yet.
            let Some(n) = self.exec.db.adjudicator.in_flight() else {
                return Err(SqlError::unsupported(
                    "weft.commits_in_flight is shown by the process that runs the adjudicator",
                ));
            };
            let n = n.to_string();
            return Ok(Reply::Outcome(single_row(&name, &n)));
        }
        if let Some((_, v, _)) = limit_settings(&self.exec.db.limits)
            .into_iter()
            .find(|(n, _, _)| *n == name)
        {
            return Ok(Reply::Outcome(single_row(&name, &v)));
        }
        match st.settings.get(&name) {
            Some(v) => Ok(Reply::Outcome(single_row(&name, v))),
            None => Err(SqlError::new(
                codes::UNDEFINED_PARAMETER,
                format!("unrecognized configuration parameter \"{name}\""),
            )),
        }
    }
}
