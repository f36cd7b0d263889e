//! ALTER TABLE's column actions: ADD COLUMN, DROP COLUMN and ALTER COLUMN TYPE (the
//! ones that rewrite the table when the row layout changes; see `alter_table.rs`).

use datafusion::scalar::ScalarValue;
use datafusion::sql::sqlparser::ast::{self, ColumnOption, TableConstraint};
use weft_engine::schema::{ColumnDef, TableDef};
use weft_engine::SqlType;

use crate::catalog::txn::Txn;
use crate::error::{codes, SqlError, SqlResult};
use crate::sql::exec::Executor;
use crate::sql::names::ident_name;
use crate::sql::outcome::Notice;

/// Whether a default must be evaluated per row (it draws from a sequence or is random).
fn volatile(sql: &str) -> bool {
    let s = sql.to_ascii_lowercase();
    [
        "nextval(",
        "random(",
        "gen_random_uuid(",
        "clock_timestamp(",
        "uuid_generate",
    ]
    .iter()
    .any(|f| s.contains(f))
}

impl Executor {
    pub(crate) async fn add_column(
        &self,
        txn: &mut Txn,
        def: TableDef,
        c: ast::ColumnDef,
    ) -> SqlResult<TableDef> {
        let cname = ident_name(&c.name);
        if cname.starts_with(weft_engine::schema::RESERVED_PREFIX) {
            return Err(SqlError::new(
                codes::INVALID_NAME,
                format!("column name \"{cname}\" is reserved"),
            ));
        }
        let ty = SqlType::from_ast(&c.data_type).map_err(SqlError::from)?;
        let mut col = ColumnDef {
            name: cname.clone(),
            ty,
            nullable: true,
            default: None,
            identity: None,
            comment: None,
        };
        let mut constraints: Vec<TableConstraint> = Vec::new();
        let at = def.columns.len();
        let ident = ast::Ident::new(cname.clone());
        for opt in &c.options {
            let name = opt.name.clone();
            match &opt.option {
                ColumnOption::Null => col.nullable = true,
                ColumnOption::NotNull => col.nullable = false,
                ColumnOption::Default(e) => {
                    col.default = Some(crate::sql::default_text::default_text(e))
                }
                ColumnOption::Unique(u) => {
                    let mut u = u.clone();
                    u.name = name.or(u.name);
                    u.columns = vec![ident.clone().into()];
                    constraints.push(TableConstraint::Unique(u));
                }
                ColumnOption::Check(ck) => {
                    let mut ck = ck.clone();
                    ck.name = name.or(ck.name);
                    constraints.push(TableConstraint::Check(ck));
                }
                ColumnOption::ForeignKey(fk) => {
                    let mut fk = fk.clone();
                    fk.name = name.or(fk.name);
                    fk.columns = vec![ident.clone()];
                    constraints.push(TableConstraint::ForeignKey(fk));
                }
                other => {
                    return Err(SqlError::unsupported(format!(
                        "ADD COLUMN with {other} is not supported"
                    )))
                }
            }
        }
        let old = def.clone();
        let mut new = def;
        new.columns.push(col.clone());
        if let Some(d) = &col.default {
            if !self.db.column_defaults(&new).contains_key(&cname) {
                return Err(SqlError::syntax(format!(
                    "invalid DEFAULT expression for column \"{cname}\""
                )));
            }
            let _ = d;
        }
        let mut new = if col.default.is_none() {
            if !col.nullable && !self.table_rows(txn, &old).await?.is_empty() {
                return Err(SqlError::new(
                    codes::NOT_NULL_VIOLATION,
                    format!(
                        "column \"{cname}\" of relation \"{}\" contains null values",
                        new.name
                    ),
                ));
            }
            // Older rows are shorter: they read NULL for the new column.
            self.put_table_def(txn, &new)?;
            new
        } else {
            let sql = col.default.clone().unwrap_or_default();
            let once = if volatile(&sql) {
                None
            } else {
                Some(self.default_value(&new, at).await?)
            };
            let mut per_row: Vec<ScalarValue> = Vec::new();
            if once.is_none() {
                let n = self.table_rows(txn, &old).await?.len();
                for _ in 0..n {
                    per_row.push(self.default_value(&new, at).await?);
                }
            }
            let next = std::sync::atomic::AtomicUsize::new(0);
            self.rewrite(txn, &old, new, |r| {
                let mut r = r.clone();
                r.truncate(at);
                while r.len() < at {
                    r.push(ScalarValue::Null);
                }
                let v = match &once {
                    Some(v) => v.clone(),
                    None => {
                        per_row[next.fetch_add(1, std::sync::atomic::Ordering::Relaxed)].clone()
                    }
                };
                r.push(v);
                Ok(r)
            })
            .await?
        };
        for c in constraints {
            new = self.add_constraint(txn, new, c, false).await?;
        }
        Ok(new)
    }

    pub(crate) async fn drop_column(
        &self,
        txn: &mut Txn,
        def: TableDef,
        i: usize,
        cascade: bool,
        notices: &mut Vec<Notice>,
    ) -> SqlResult<TableDef> {
        let cname = def.columns[i].name.clone();
        if def.primary_key.contains(&i) {
            return Err(SqlError::unsupported(format!(
                "dropping column \"{cname}\", which is part of the primary key, is not supported"
            )));
        }
        if def.columns.len() == 1 {
            return Err(SqlError::unsupported(
                "tables without columns are not supported",
            ));
        }
        // Foreign keys of other tables that reference the column.
        for child_name in def.referenced_by.iter().filter(|c| **c != def.name) {
            let child = self.table_def(txn, child_name).await?;
            if let Some(fk) = child
                .foreign_keys
                .iter()
                .find(|f| f.parent == def.name && f.parent_columns.contains(&i))
            {
                if !cascade {
                    return Err(SqlError::new(
                        "2BP01",
                        format!(
                            "cannot drop column {cname} of table {} because other objects depend on it",
                            def.name
                        ),
                    )
                    .with_detail(format!(
                        "constraint {} on table {} depends on column {cname} of table {}",
                        fk.name, child.name, def.name
                    ))
                    .with_hint("Use DROP ... CASCADE to drop the dependent objects too."));
                }
                let mut child = (*child).clone();
                child
                    .foreign_keys
                    .retain(|f| !(f.parent == def.name && f.parent_columns.contains(&i)));
                self.put_table_def(txn, &child)?;
            }
        }
        let old = def.clone();
        let mut new = def;
        new.columns.remove(i);
        let shift = |c: usize| if c > i { c - 1 } else { c };
        new.primary_key = new.primary_key.iter().map(|&c| shift(c)).collect();
        let words = |e: &str| -> bool {
            e.split(|ch: char| !(ch.is_alphanumeric() || ch == '_'))
                .any(|w| w.eq_ignore_ascii_case(&cname))
        };
        // Indexes and constraints on the column go with it, as in PostgreSQL: a partial
        // index whose predicate names it too.
        new.indexes.retain(|x| {
            !x.columns.contains(&i)
                && !x.include.contains(&i)
                && !x.predicate.as_deref().is_some_and(words)
        });
        for x in new.indexes.iter_mut() {
            x.columns = x.columns.iter().map(|&c| shift(c)).collect();
            x.include = x.include.iter().map(|&c| shift(c)).collect();
        }
        for c in new.checks.iter().filter(|c| words(&c.expr)) {
            notices.push(Notice {
                severity: "NOTICE",
                code: "00000",
                message: format!(
                    "drop cascades to constraint {} on table {}",
                    c.name, new.name
                ),
            });
        }
        new.checks.retain(|c| !words(&c.expr));
        let dropped_parents: Vec<String> = new
            .foreign_keys
            .iter()
            .filter(|f| f.columns.contains(&i))
            .map(|f| f.parent.clone())
            .collect();
        new.foreign_keys.retain(|f| !f.columns.contains(&i));
        for f in new.foreign_keys.iter_mut() {
            f.columns = f.columns.iter().map(|&c| shift(c)).collect();
            if f.parent == new.name {
                f.parent_columns = f.parent_columns.iter().map(|&c| shift(c)).collect();
            }
        }
        for p in dropped_parents {
            if p != new.name && !new.foreign_keys.iter().any(|f| f.parent == p) {
                if let Ok(parent) = self.table_def(txn, &p).await {
                    let mut parent = (*parent).clone();
                    parent.referenced_by.retain(|c| *c != new.name);
                    self.put_table_def(txn, &parent)?;
                }
            }
        }
        // Children keep positions into this table: shift theirs.
        for child_name in new.referenced_by.clone().iter().filter(|c| **c != new.name) {
            if let Ok(child) = self.table_def(txn, child_name).await {
                let mut child = (*child).clone();
                for f in child
                    .foreign_keys
                    .iter_mut()
                    .filter(|f| f.parent == new.name)
                {
                    f.parent_columns = f.parent_columns.iter().map(|&c| shift(c)).collect();
                }
                self.put_table_def(txn, &child)?;
            }
        }
        self.rewrite(txn, &old, new, |r| {
            let mut r = r.clone();
            if i < r.len() {
                r.remove(i);
            }
            Ok(r)
        })
        .await
    }

    pub(crate) async fn alter_type(
        &self,
        txn: &mut Txn,
        def: TableDef,
        i: usize,
        ty: SqlType,
    ) -> SqlResult<TableDef> {
        let from = def.columns[i].ty.clone();
        if from == ty {
            return Ok(def);
        }
        let want = ty.arrow_type();
        let probe = ScalarValue::try_from(&from.arrow_type())
            .map_err(|e| SqlError::internal(e.to_string()))?;
        let to_text = matches!(want, arrow::datatypes::DataType::Utf8);
        let numeric = |t: &arrow::datatypes::DataType| t.is_numeric();
        let automatic = to_text
            || (numeric(&from.arrow_type()) && numeric(&want))
            || probe.cast_to(&want).is_ok() && from.arrow_type() == want;
        if !automatic {
            return Err(SqlError::new(
                codes::DATATYPE_MISMATCH,
                format!(
                    "column \"{}\" cannot be cast automatically to type {}",
                    def.columns[i].name,
                    ty.pg_name()
                ),
            )
            .with_hint(format!(
                "You might need to specify \"USING {}::{}\".",
                def.columns[i].name,
                ty.pg_name()
            )));
        }
        let old = def.clone();
        let mut new = def;
        new.columns[i].ty = ty;
        let col = new.columns[i].clone();
        let table = new.clone();
        self.rewrite(txn, &old, new, move |r| {
            let mut r = r.clone();
            if i < r.len() && !r[i].is_null() {
                let v = r[i].cast_to(&want).map_err(|e| {
                    SqlError::new(codes::INVALID_TEXT_REPRESENTATION, e.to_string())
                })?;
                r[i] = crate::types::values::check_value(&table, &col, v)?;
            }
            Ok(r)
        })
        .await
    }
}
