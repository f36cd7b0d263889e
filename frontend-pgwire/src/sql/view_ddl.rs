//! `CREATE [OR REPLACE] VIEW v [(columns)] AS query` and `DROP VIEW`. The query is planned
//! at CREATE, so a missing table or column is an error then (42P01, 42703), and its
//! result's columns are the view's. It is stored as SQL text and read in place of the
//! view's name by every statement that names it (`crate::sql::view_expand`). A table a
//! view reads cannot be dropped while it does (2BP01, or the view goes with CASCADE).
//! Views are read-only: INSERT, UPDATE and DELETE on one answer 0A000.

use arrow::datatypes::{DataType, Field, TimeUnit};
use datafusion::sql::sqlparser::ast::{self, ObjectName, Statement};
use weft_engine::types::{SqlType, PG_TYPE_KEY};

use crate::catalog::txn::Txn;
use crate::catalog::views::ViewDef;
use crate::error::{codes, SqlError, SqlResult};
use crate::sql::exec::{table_name, Executor};
use crate::sql::names::ident_name;
use crate::sql::outcome::{CommandTag, Notice, Outcome};

/// The SQL type of a result column, as the view's column gets it.
pub(crate) fn sql_type_of(field: &Field) -> SqlType {
    match field.metadata().get(PG_TYPE_KEY).map(String::as_str) {
        Some("uuid") => return SqlType::Uuid,
        Some("json") => return SqlType::Json,
        Some("jsonb") => return SqlType::Jsonb,
        Some("varchar") => return SqlType::Varchar { max_chars: None },
        _ => {}
    }
    match field.data_type() {
        DataType::Int16 => SqlType::SmallInt,
        DataType::Int32 => SqlType::Integer,
        DataType::Int64 => SqlType::BigInt,
        DataType::Float32 => SqlType::Real,
        DataType::Float64 => SqlType::Double,
        DataType::Decimal128(p, s) => SqlType::Numeric {
            precision: *p,
            scale: *s,
        },
        DataType::Boolean => SqlType::Boolean,
        DataType::Binary | DataType::LargeBinary => SqlType::Bytea,
        DataType::Date32 => SqlType::Date,
        DataType::Timestamp(TimeUnit::Microsecond, None) => SqlType::Timestamp,
        DataType::Timestamp(_, Some(_)) => SqlType::Timestamptz,
        DataType::List(item) => SqlType::Array(Box::new(sql_type_of(item))),
        _ => SqlType::Text,
    }
}

/// The query with its result columns named as the view's column list names them, so that
/// the stored definition (what `pg_get_viewdef` prints and pg_dump writes) carries the
/// names: a plain SELECT's items get the names as aliases; any other query is wrapped.
fn named_columns(query: &ast::Query, columns: &[(String, SqlType)], view: &str) -> String {
    use ast::{Ident, SelectItem, SetExpr};
    let mut q = query.clone();
    if let SetExpr::Select(sel) = q.body.as_mut() {
        let plain = sel.projection.iter().all(|i| {
            matches!(
                i,
                SelectItem::UnnamedExpr(_) | SelectItem::ExprWithAlias { .. }
            )
        });
        if plain && sel.projection.len() == columns.len() {
            for (item, (name, _)) in sel.projection.iter_mut().zip(columns) {
                let expr = match item {
                    SelectItem::UnnamedExpr(e) | SelectItem::ExprWithAlias { expr: e, .. } => {
                        e.clone()
                    }
                    _ => unreachable!("checked above"),
                };
                *item = SelectItem::ExprWithAlias {
                    expr,
                    alias: if crate::catalog::pg_get::quote_ident(name) == *name {
                        Ident::new(name.clone())
                    } else {
                        Ident::with_quote('"', name.clone())
                    },
                };
            }
            return q.to_string();
        }
    }
    let names: Vec<String> = columns
        .iter()
        .map(|(c, _)| crate::catalog::pg_get::quote_ident(c))
        .collect();
    format!(
        "SELECT * FROM ({query}) AS {}({})",
        crate::catalog::pg_get::quote_ident(view),
        names.join(", ")
    )
}

impl Executor {
    pub async fn create_view(&self, txn: &mut Txn, cv: ast::CreateView) -> SqlResult<Outcome> {
        if cv.materialized {
            return Err(SqlError::unsupported(
                "materialized views are not supported",
            ));
        }
        if cv.temporary {
            return Err(SqlError::unsupported("temporary views are not supported"));
        }
        let name = table_name(&cv.name)?;
        self.check_creation(txn, &name, "view").await?;
        let taken = self.table_def(txn, &name).await.is_ok()
            || self.sequence_def(txn, &name).await?.is_some();
        if taken {
            return Err(SqlError::new(
                codes::DUPLICATE_TABLE,
                format!("relation \"{name}\" already exists"),
            ));
        }
        let old = self.view_def(txn, &name).await?;
        if old.is_some() && !cv.or_replace {
            if cv.if_not_exists {
                return Ok(Outcome::Command(CommandTag::new("CREATE VIEW")));
            }
            return Err(SqlError::new(
                codes::DUPLICATE_TABLE,
                format!("relation \"{name}\" already exists"),
            ));
        }
        // Plan the query as it would run now: its tables must exist, and its result's
        // columns are the view's.
        let mut stmt = Statement::Query(cv.query.clone());
        let reads = crate::sql::view_expand::relation_names(&stmt);
        self.expand_views(txn, &mut stmt).await?;
        let plan = self.plan(txn, stmt, None).await?;
        let fields = plan.schema().fields().clone();
        if cv.columns.len() > fields.len() {
            return Err(SqlError::syntax(
                "CREATE VIEW specifies more column names than columns",
            ));
        }
        let mut columns: Vec<(String, SqlType)> = Vec::with_capacity(fields.len());
        let names = crate::sql::names::result_names(&Statement::Query(cv.query.clone()));
        for (n, f) in fields.iter().enumerate() {
            let col = match cv.columns.get(n) {
                Some(c) => ident_name(&c.name),
                None => names
                    .as_ref()
                    .and_then(|ns| ns.get(n).cloned())
                    .unwrap_or_else(|| f.name().clone()),
            };
            if columns.iter().any(|(c, _)| *c == col) {
                return Err(SqlError::new(
                    codes::DUPLICATE_COLUMN,
                    format!("column \"{col}\" specified more than once"),
                ));
            }
            columns.push((col, sql_type_of(f)));
        }
        if let Some(old) = &old {
            // OR REPLACE keeps the columns there are, as PostgreSQL requires.
            if columns.len() < old.columns.len() {
                return Err(SqlError::new(
                    codes::INVALID_TABLE_DEFINITION,
                    "cannot drop columns from view",
                ));
            }
            for ((a, at), (b, bt)) in old.columns.iter().zip(&columns) {
                if a != b {
                    return Err(SqlError::new(
                        codes::INVALID_TABLE_DEFINITION,
                        format!("cannot change name of view column \"{a}\" to \"{b}\""),
                    ));
                }
                if at != bt {
                    return Err(SqlError::new(
                        codes::INVALID_TABLE_DEFINITION,
                        format!(
                            "cannot change data type of view column \"{a}\" from {} to {}",
                            at.pg_name(),
                            bt.pg_name()
                        ),
                    ));
                }
            }
        }
        let oid = match &old {
            Some(o) => o.oid,
            None => {
                let id = weft_engine::schema::FIRST_USER_TABLE_ID
                    + self.db.entropy.u64() % (u64::MAX - weft_engine::schema::FIRST_USER_TABLE_ID);
                weft_engine::schema::oid_for_table_id(id)
            }
        };
        let query = if cv.columns.is_empty() {
            cv.query.to_string()
        } else {
            named_columns(&cv.query, &columns, &name)
        };
        let def = ViewDef {
            name: name.clone(),
            oid,
            query,
            columns,
            reads,
            // CREATE OR REPLACE keeps the view's comment, owner and privileges.
            owner: match &old {
                Some(o) => o.owner.clone(),
                None => crate::catalog::grants::stored_owner(&self.meta.current_role()),
            },
            acl: old.as_ref().and_then(|o| o.acl.clone()),
            comment: old.and_then(|o| o.comment),
        };
        crate::catalog::views::put(self.db.as_ref(), txn, &name, Some(&def))?;
        Ok(Outcome::Command(CommandTag::new("CREATE VIEW")))
    }

    pub async fn drop_views(
        &self,
        txn: &mut Txn,
        names: &[ObjectName],
        if_exists: bool,
        cascade: bool,
        notices: &mut Vec<Notice>,
    ) -> SqlResult<Outcome> {
        let dropping: Vec<String> = names.iter().filter_map(|n| table_name(n).ok()).collect();
        for name in &dropping {
            if self.view_def(txn, name).await?.is_none() {
                if self.table_def(txn, name).await.is_ok() {
                    return Err(SqlError::new(
                        codes::WRONG_OBJECT_TYPE,
                        format!("\"{name}\" is not a view"),
                    )
                    .with_hint("Use DROP TABLE to remove a table."));
                }
                if if_exists {
                    notices.push(Notice {
                        severity: "NOTICE",
                        code: "00000",
                        message: format!("view \"{name}\" does not exist, skipping"),
                    });
                    continue;
                }
                return Err(SqlError::new(
                    codes::UNDEFINED_TABLE,
                    format!("view \"{name}\" does not exist"),
                ));
            }
            self.drop_dependent_views(txn, name, &dropping, cascade, notices)
                .await?;
            crate::catalog::views::put(self.db.as_ref(), txn, name, None)?;
        }
        Ok(Outcome::Command(CommandTag::new("DROP VIEW")))
    }

    /// A view reads its tables by name, so a table a view reads keeps its name and its
    /// columns' names: renaming it or them, or dropping a column, while a view reads it
    /// would leave the view reading whatever takes the name next. 0A000 instead, naming the
    /// view (PostgreSQL follows such changes by oid).
    pub(crate) async fn refuse_under_views(
        &self,
        txn: &Txn,
        table: &str,
        operations: &[ast::AlterTableOperation],
    ) -> SqlResult<()> {
        use ast::AlterTableOperation as Op;
        let renames = operations.iter().any(|op| {
            matches!(
                op,
                Op::RenameTable { .. } | Op::RenameColumn { .. } | Op::DropColumn { .. }
            )
        });
        if !renames {
            return Ok(());
        }
        let views = self.views_of(txn).await?;
        if let Some(v) = views.iter().find(|v| v.reads.iter().any(|r| r == table)) {
            return Err(SqlError::unsupported(format!(
                "cannot rename or drop columns of table \"{table}\" or rename it while view \"{}\" reads it",
                v.name
            ))
            .with_hint("drop the view, alter the table, and create the view again"));
        }
        Ok(())
    }

    /// Every view, as the transaction sees them.
    async fn views_of(&self, txn: &Txn) -> SqlResult<Vec<crate::catalog::views::ViewDef>> {
        let overlay = txn.overlay(txn.database.views);
        crate::catalog::views::list(
            self.db.as_ref(),
            txn.database,
            txn.read_ts()?,
            overlay.as_deref(),
        )
        .await
    }

    /// Before `name` (a table or view) is dropped: the views that read it, not themselves
    /// being dropped, are an error (2BP01), or dropped too with CASCADE.
    pub(crate) async fn drop_dependent_views(
        &self,
        txn: &mut Txn,
        name: &str,
        dropping: &[String],
        cascade: bool,
        notices: &mut Vec<Notice>,
    ) -> SqlResult<()> {
        let views = self.views_of(txn).await?;
        for v in views {
            if v.name == name || !v.reads.iter().any(|r| r == name) || dropping.contains(&v.name) {
                continue;
            }
            if !cascade {
                return Err(SqlError::new(
                    codes::DEPENDENT_OBJECTS_STILL_EXIST,
                    format!("cannot drop {name} because other objects depend on it"),
                )
                .with_detail(format!("view {} depends on {name}", v.name))
                .with_hint("Use DROP ... CASCADE to drop the dependent objects too."));
            }
            notices.push(Notice {
                severity: "NOTICE",
                code: "00000",
                message: format!("drop cascades to view {}", v.name),
            });
            Box::pin(self.drop_dependent_views(txn, &v.name, dropping, cascade, notices)).await?;
            crate::catalog::views::put(self.db.as_ref(), txn, &v.name, None)?;
        }
        Ok(())
    }
}
