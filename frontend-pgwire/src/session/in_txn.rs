//! Statements inside the session's transaction: the implicit or explicit transaction a
//! statement runs in, a failure's effect on the block, SQL cursors' declarations.

use std::sync::atomic::Ordering;

use datafusion::common::ParamValues;
use datafusion::sql::sqlparser::ast::{ObjectType, Statement};

use crate::catalog::txn::Txn;
use crate::error::{codes, SqlError, SqlResult};
use crate::session::machine::Core;
use crate::session::machine::Reply;
use crate::session::machine::State;
use crate::sql::outcome::{CommandTag, Notice, Outcome};

impl Core {
    /// DECLARE name CURSOR ... FOR query: runs the query now and keeps its rows.
    pub(crate) async fn declare_cursor(
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
        // Without SCROLL the cursor streams; a SCROLL cursor holds every row.
        let mut cursor = match reply {
            Reply::Outcome(Outcome::Stream(rows)) if !scroll => {
                crate::session::cursors::Cursor::streamed(rows, hold)
            }
            Reply::Outcome(o) => match o.materialized().await {
                Ok(Outcome::Rows { schema, batches }) => {
                    crate::session::cursors::Cursor::new(schema, batches, hold, scroll)
                }
                Ok(_) => {
                    return refuse(st, SqlError::internal("a cursor's query returned no rows"))
                }
                Err(e) => return refuse(st, e),
            },
            _ => return refuse(st, SqlError::internal("a cursor's query returned no rows")),
        };
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
        Ok(Reply::Outcome(Outcome::Command(CommandTag::new(
            "DECLARE CURSOR",
        ))))
    }

    /// Tells `pg_cursors` which cursors the session has now.
    pub(crate) fn cursors_changed(&self, st: &State) {
        self.exec.meta.set_cursors(
            st.cursors
                .iter()
                .map(|(name, c)| (name.clone(), c.statement.clone(), c.hold, c.scroll))
                .collect(),
        );
    }

    pub(crate) fn point_write(&self, out: Outcome) -> Outcome {
        self.exec.db.point_writes.fetch_add(1, Ordering::Relaxed);
        out
    }

    /// An error ends an implicit transaction and fails an explicit one.
    pub(crate) fn fail(&self, st: &mut State) {
        // A failed block keeps its transaction: ROLLBACK TO SAVEPOINT can resume it.
        if st.txn.as_ref().is_some_and(|t| t.explicit) {
            st.failed = true;
        } else {
            st.txn = None;
        }
    }

    pub(crate) async fn exec_in_txn(
        &self,
        txn: &mut Txn,
        stmt: Statement,
        params: Option<&ParamValues>,
        notices: &mut Vec<Notice>,
    ) -> SqlResult<Outcome> {
        let mut stmt = stmt;
        self.exec.qualify_names(txn, &mut stmt).await?;
        self.exec.check_privileges(txn, &stmt).await?;
        let out = self.exec_statement(txn, stmt, params, notices).await;
        // Values drawn from sequences the transaction created are kept in it.
        for def in self.exec.meta.take_used_pending_sequences() {
            crate::catalog::sequences::put(&self.exec.db, txn, &def.name, Some(&def))?;
        }
        out
    }

    async fn exec_statement(
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
                cascade,
                ..
            } => {
                self.exec
                    .drop_tables(txn, &names, if_exists, cascade, notices)
                    .await
            }
            Statement::Truncate(t) => self.exec.truncate(txn, &t).await,
            Statement::Lock(lock) => self.exec.lock_tables(txn, &lock).await,
            Statement::CreateView(cv) => self.exec.create_view(txn, cv).await,
            Statement::Drop {
                object_type: ObjectType::View,
                if_exists,
                names,
                cascade,
                ..
            } => {
                self.exec
                    .drop_views(txn, &names, if_exists, cascade, notices)
                    .await
            }
            Statement::Call(f) if f.name.to_string() == crate::sql::alter_sequence::PROCEDURE => {
                self.exec.alter_sequence(txn, &f, notices).await
            }
            Statement::Call(f) if f.name.to_string() == crate::sql::constraint_mode::PROCEDURE => {
                self.exec.set_constraints(txn, &f, notices).await
            }
            Statement::Call(f) if f.name.to_string() == crate::sql::maintenance::PROCEDURE => {
                self.exec.maintenance(txn, &f, notices).await
            }
            Statement::Call(f) if f.name.to_string() == crate::sql::database_ddl::PROCEDURE => {
                self.exec.database_ddl(txn, &f, notices).await
            }
            Statement::CreateSchema {
                schema_name,
                if_not_exists,
                ..
            } => {
                self.exec
                    .create_schema(txn, &schema_name, if_not_exists, notices)
                    .await
            }
            Statement::Drop {
                object_type: ObjectType::Schema,
                if_exists,
                names,
                cascade,
                ..
            } => {
                self.exec
                    .drop_schemas(txn, &names, if_exists, cascade, notices)
                    .await
            }
            Statement::AlterSchema(a) => self.exec.alter_schema(txn, &a, notices).await,
            Statement::CreateIndex(ci) => self.exec.create_index(txn, ci, notices).await,
            Statement::AlterTable(at) => self.exec.alter_table(txn, at, notices).await,
            Statement::Comment {
                object_type,
                object_name,
                comment,
                ..
            } => {
                self.exec
                    .comment_on(txn, object_type, &object_name, comment)
                    .await
            }
            Statement::Drop {
                object_type: ObjectType::Index,
                if_exists,
                names,
                ..
            } => {
                self.exec
                    .drop_indexes(txn, &names, if_exists, notices)
                    .await
            }
            Statement::Copy {
                source,
                to,
                target,
                options,
                legacy_options,
                values,
            } => {
                // pg_restore sends `COPY ... FROM stdin;` with a line break after it, which
                // the parser reads as one empty inline value.
                let inline = values
                    .iter()
                    .any(|v| v.as_deref().is_some_and(|s| !s.trim().is_empty()));
                if inline {
                    return Err(SqlError::unsupported(
                        "COPY data inline in the query string is not supported",
                    ));
                }
                self.exec
                    .copy(txn, source, to, target, &options, &legacy_options)
                    .await
            }
            Statement::Grant(g) => self.exec.grant(txn, &g, notices).await,
            Statement::Revoke(r) => self.exec.revoke(txn, &r, notices).await,
            Statement::Call(f) if f.name.to_string() == crate::sql::role_grant::PROCEDURE => {
                self.exec.role_membership(txn, &f, notices).await
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
}
