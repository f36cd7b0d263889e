//! A client session's state machine: its state, and the dispatch of each statement.
//!
//! Transaction states follow PostgreSQL: idle; in a block (after BEGIN); failed (an error
//! inside a block: every statement gets 25P02 until ROLLBACK or COMMIT, which then rolls
//! back). Statements outside a block run in an implicit transaction; the statements of one
//! simple-protocol query string share one implicit transaction, as in PostgreSQL.

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::sync::Arc;

use datafusion::common::ParamValues;
use datafusion::sql::sqlparser::ast::{self, Statement};

use crate::catalog::db::Db;
use crate::catalog::txn::{Isolation, Txn};
use crate::error::{codes, SqlError, SqlResult};
use crate::session::setting_values::apply_modes;
use crate::session::setting_values::default_settings;
use crate::session::setting_values::is_on;
use crate::session::setting_values::parse_duration_ms;
use crate::session::setting_values::single_row;
use crate::session::setting_values::write_kind;
use crate::sql::exec::Executor;
use crate::sql::names::ident_name;
use crate::sql::outcome::{CommandTag, Notice, Outcome};
use crate::sql::prepare::parse;
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

/// Where a session stands between statements (ReadyForQuery's status).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TxnStatus {
    Idle,
    /// In a transaction block (after BEGIN).
    InBlock,
    /// In a failed transaction block: statements are refused until ROLLBACK.
    Failed,
}

pub struct State {
    pub(crate) txn: Option<Txn>,
    pub(crate) failed: bool,
    pub(crate) settings: BTreeMap<String, String>,
    /// `SET weft.as_of`: every transaction reads as of this timestamp, read-only.
    pub(crate) as_of: Option<Timestamp>,
    /// A COPY FROM STDIN in progress.
    pub(crate) copy: Option<Box<crate::sql::copy::CopyIn>>,
    /// The open transaction block's savepoints, oldest first.
    pub(crate) savepoints: Vec<(String, crate::catalog::txn::Savepoint)>,
    /// Declared SQL cursors, by name (see [`crate::session::cursors`]).
    pub(crate) cursors: std::collections::HashMap<String, crate::session::cursors::Cursor>,
    /// Statements prepared in SQL (see [`crate::session::prepared`]).
    pub(crate) prepared: crate::session::prepared::Prepared,
}

pub struct Core {
    pub(crate) exec: Executor,
    pub(crate) state: tokio::sync::Mutex<State>,
    /// A cancel request for this session wakes the statement running now, if any.
    pub(crate) cancel: Arc<tokio::sync::Notify>,
    /// The session as `pg_stat_activity` lists it (from startup on).
    pub(crate) backend: std::sync::OnceLock<Arc<crate::catalog::activity::Backend>>,
}

impl Drop for Core {
    /// A session's advisory locks end with it.
    fn drop(&mut self) {
        self.exec
            .db
            .advisory
            .release(self.exec.meta.identity().pid, None);
    }
}

pub(crate) fn aborted_error() -> SqlError {
    SqlError::new(
        codes::IN_FAILED_SQL_TRANSACTION,
        "current transaction is aborted, commands ignored until end of transaction block",
    )
}

/// The default settings, with what the node was configured with (`max_connections`).
pub(crate) fn settings_of(db: &Db) -> std::collections::BTreeMap<String, String> {
    let mut s = default_settings();
    s.insert(
        "max_connections".to_string(),
        db.max_connections().to_string(),
    );
    s
}

impl Core {
    /// A new session over `db`, idle, with the default settings.
    pub fn new(db: Arc<Db>) -> Arc<Core> {
        let defaults = settings_of(&db);
        let exec = Executor::new(db);
        exec.meta.set_settings(&defaults);
        Arc::new(Core {
            cancel: Arc::new(tokio::sync::Notify::new()),
            backend: Default::default(),
            exec,
            state: tokio::sync::Mutex::new(State {
                txn: None,
                failed: false,
                settings: defaults,
                as_of: None,
                copy: None,
                savepoints: Vec::new(),
                cursors: Default::default(),
                prepared: Default::default(),
            }),
        })
    }

    /// How long the session may stay idle now: `Some` while it sits in a transaction
    /// block (open or failed), as `idle_in_transaction_session_timeout` (capped by the
    /// server's bound, which also applies when the setting is 0) says; `None` otherwise.
    /// Whether the session is inside a transaction block (or busy, so that it may be).
    pub fn in_transaction_block(&self) -> bool {
        match self.state.try_lock() {
            Ok(st) => st.failed || st.copy.is_some() || st.txn.as_ref().is_some_and(|t| t.explicit),
            Err(_) => true,
        }
    }

    pub fn idle_in_transaction_timeout(&self) -> Option<std::time::Duration> {
        let st = self.state.try_lock().ok()?;
        let in_block = st.failed || st.txn.as_ref().is_some_and(|t| t.explicit);
        if !in_block || st.copy.is_some() {
            return None;
        }
        let max = self.exec.db.idle_in_transaction_timeout_max();
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

    /// `pg_stat_activity`: the session starts running `sql`.
    pub(crate) fn activity_begin(&self, st: &State, sql: &str) {
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
    pub(crate) fn activity_end(&self, st: &State) {
        if let Some(b) = self.backend.get() {
            let in_txn = st.failed || st.txn.as_ref().is_some_and(|t| t.explicit);
            b.end(in_txn, st.failed);
        }
    }

    /// The session as `pg_stat_activity` lists it.
    pub fn backend(&self) -> Option<Arc<crate::catalog::activity::Backend>> {
        self.backend.get().cloned()
    }

    pub fn status(st: &State) -> TxnStatus {
        if st.failed {
            TxnStatus::Failed
        } else if st.txn.as_ref().is_some_and(|t| t.explicit) {
            TxnStatus::InBlock
        } else {
            TxnStatus::Idle
        }
    }

    /// A streamed result as the client reads it: under the statement's timeout (from
    /// `started`, when the statement began) and the session's cancel requests, as the
    /// statement that produced it was.
    pub(crate) fn interruptible(
        &self,
        st: &State,
        reply: Reply,
        started: tokio::time::Instant,
    ) -> Reply {
        let Reply::Outcome(Outcome::Stream(rows)) = reply else {
            return reply;
        };
        let timeout_ms = st
            .settings
            .get("statement_timeout")
            .and_then(|v| parse_duration_ms(v))
            .unwrap_or(0);
        let deadline =
            (timeout_ms > 0).then(|| started + std::time::Duration::from_millis(timeout_ms));
        Reply::Outcome(Outcome::Stream(crate::sql::stream::interruptible(
            rows,
            self.cancel.clone(),
            deadline,
        )))
    }

    /// The status ReadyForQuery reports. Outside a transaction the session holds no
    /// transaction-level advisory locks: the transaction that took them has ended.
    pub(crate) fn ready_status(&self, st: &State) -> TxnStatus {
        if st.txn.is_none() && !st.failed {
            self.exec.db.advisory.release(
                self.exec.meta.identity().pid,
                Some(crate::catalog::advisory::Scope::Transaction),
            );
        }
        Self::status(st)
    }

    pub(crate) async fn commit(&self, mut txn: Txn) -> SqlResult<()> {
        txn.check_duration(&self.exec.db.limits)?;
        if !txn.deferred.is_empty() {
            self.exec.check_deferred(&mut txn).await?;
        }
        let req = txn.into_commit_request();
        // Read-only transactions commit without a journal write: not counted as commits.
        let writes = !req.is_read_only();
        let began = tokio::time::Instant::now();
        let result: SqlResult<()> = self
            .exec
            .db
            .adjudicator
            .commit(req)
            .await
            .map(|_| ())
            .map_err(Into::into);
        if writes {
            self.exec.db.metrics.commit(
                began.elapsed().as_secs_f64(),
                result.as_ref().err().map(|e| e.code),
            );
        }
        result
    }

    /// A new transaction with the session's defaults.
    /// `SET ROLE name` (`Some`), `SET ROLE NONE` and `RESET ROLE` (`None`); `SHOW role`
    /// reads the setting.
    async fn set_role(&self, st: &mut State, role: Option<String>, tag: &str) -> SqlResult<Reply> {
        let mut fresh;
        let txn = match st.txn.as_mut() {
            Some(t) => t,
            None => {
                fresh = self.new_txn(st, false);
                fresh.snapshot(&*self.exec.db.adjudicator, &*self.exec.db.storage);
                &mut fresh
            }
        };
        txn.snapshot(&*self.exec.db.adjudicator, &*self.exec.db.storage);
        if let Err(e) = self.exec.set_role(txn, role.clone()).await {
            self.fail(st);
            return Err(e);
        }
        st.settings
            .insert("role".into(), role.unwrap_or_else(|| "none".into()));
        self.exec.meta.set_settings(&st.settings);
        Ok(Reply::Outcome(Outcome::Command(CommandTag::new(tag))))
    }

    pub(crate) fn new_txn(&self, st: &State, explicit: bool) -> Txn {
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
        let t = Txn::new(explicit, isolation, read_only || st.as_of.is_some())
            .in_database(self.exec.meta.tables());
        match st.as_of {
            Some(ts) => t.reading_at(ts),
            None => t,
        }
    }

    /// Runs one statement a client sent, counted in the node's metrics (its kind, its
    /// latency, its error's SQLSTATE). The protocol's entry: [`Core::run`] itself is also
    /// entered again for EXECUTE, which counts once.
    pub async fn run_counted(
        &self,
        st: &mut State,
        stmt: Statement,
        params: Option<&ParamValues>,
        autocommit: bool,
        notices: &mut Vec<Notice>,
    ) -> SqlResult<Reply> {
        let kind = crate::catalog::metrics::Kind::of(&stmt);
        let began = tokio::time::Instant::now();
        // Boxed: a statement's future is large, and kept inline it would be copied with
        // every future that holds it.
        let result = Box::pin(self.run(st, stmt, params, autocommit, notices)).await;
        self.exec.db.metrics.statement(
            kind,
            began.elapsed().as_secs_f64(),
            result.as_ref().err().map(|e| e.code),
        );
        result
    }

    /// Counts an error answered before a statement ran (a syntax error in a query string,
    /// a Parse that failed), in the node's metrics.
    pub fn count_error(&self, sqlstate: &'static str) {
        self.exec.db.metrics.error(sqlstate);
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
                let fresh = self.new_txn(st, true);
                let t = st.txn.get_or_insert(fresh);
                t.explicit = true;
                if !t.has_snapshot() {
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
                Ok(Reply::Outcome(Outcome::Command(CommandTag::new(
                    "SAVEPOINT",
                ))))
            }
            Statement::ReleaseSavepoint { name } => {
                if st.failed {
                    return Err(aborted_error());
                }
                let n = ident_name(&name);
                match st.savepoints.iter().rposition(|(s, _)| *s == n) {
                    Some(i) => {
                        st.savepoints.truncate(i);
                        Ok(Reply::Outcome(Outcome::Command(CommandTag::new("RELEASE"))))
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
                        Ok(Reply::Outcome(Outcome::Command(CommandTag::new(
                            "ROLLBACK",
                        ))))
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
            Statement::Set(ast::Set::SetRole { role_name, .. }) => {
                let role = role_name
                    .as_ref()
                    .map(crate::sql::names::ident_name)
                    .filter(|r| r != "none");
                self.set_role(st, role, "SET").await
            }
            Statement::Reset(ast::ResetStatement {
                reset: ast::Reset::ConfigurationParameter(name),
            }) if name.to_string().eq_ignore_ascii_case("role") => {
                self.set_role(st, None, "RESET").await
            }
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
                Ok(Reply::Outcome(Outcome::Command(CommandTag::new(
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
                Ok(Reply::Outcome(Outcome::Command(CommandTag::new(
                    "CLOSE CURSOR",
                ))))
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
            } if crate::sql::fetch_syntax::marks(into.as_ref()).is_some() => {
                let (is_move, negative) =
                    crate::sql::fetch_syntax::marks(into.as_ref()).unwrap_or((false, false));
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
                    (Ok(m), Some(c)) => c.fetch(m).await.map(|rows| (c.schema.clone(), rows)),
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
                        CommandTag::new("MOVE").with_rows(rows.num_rows()),
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
                Ok(Reply::Outcome(Outcome::Command(CommandTag::new(if all {
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
                Ok(Reply::Outcome(Outcome::Command(CommandTag::new("PREPARE"))))
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
                        Reply::Outcome(o @ Outcome::Stream(_)) => {
                            let Outcome::Rows { batches, .. } = o.materialized().await? else {
                                return Err(SqlError::internal("EXECUTE's arguments gave no rows"));
                            };
                            crate::session::prepared::first_row(&batches)?
                        }
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
            Statement::UNLISTEN { .. } => Ok(Reply::Outcome(Outcome::Command(CommandTag::new(
                "UNLISTEN",
            )))),
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
                    st.settings = settings_of(&self.exec.db);
                    self.exec.meta.set_role(None);
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
                Ok(Reply::Outcome(Outcome::Command(CommandTag::new(&format!(
                    "DISCARD {object_type}"
                )))))
            }
            stmt => {
                let implicit = st.txn.is_none();
                if implicit {
                    st.txn = Some(self.new_txn(st, false));
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
                txn.snapshot(&*self.exec.db.adjudicator, &*self.exec.db.storage);
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
                        // Boxed: the execution's future is large; inline, the select
                        // below and every future around it would copy it.
                        let run = Box::pin(self.exec_in_txn(txn, stmt, params, notices));
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
}
