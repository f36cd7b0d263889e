//! ALTER TABLE's constraint actions: ADD CONSTRAINT (UNIQUE, CHECK, FOREIGN KEY, checked
//! against the table's rows unless NOT VALID), VALIDATE CONSTRAINT and DROP CONSTRAINT.

use std::sync::Arc;

use datafusion::sql::sqlparser::ast::{self, TableConstraint};
use weft_engine::row::Row;
use weft_engine::schema::TableDef;

use crate::catalog::txn::Txn;
use crate::error::{codes, SqlError, SqlResult};
use crate::sql::exec::Executor;
use crate::sql::foreign_keys::ForeignKeySpec;
use crate::sql::names::ident_name;
use crate::sql::outcome::Notice;

impl Executor {
    pub(crate) async fn add_constraint(
        &self,
        txn: &mut Txn,
        mut def: TableDef,
        constraint: TableConstraint,
        not_valid: bool,
    ) -> SqlResult<TableDef> {
        let constraint_names: Vec<String> = def
            .indexes
            .iter()
            .map(|i| i.name.clone())
            .chain(def.checks.iter().map(|c| c.name.clone()))
            .chain(def.foreign_keys.iter().map(|f| f.name.clone()))
            .collect();
        let exists = |n: &Option<ast::Ident>| -> SqlResult<()> {
            if let Some(n) = n {
                let n = ident_name(n);
                if constraint_names.contains(&n) {
                    return Err(SqlError::new(
                        "42710",
                        format!(
                            "constraint \"{n}\" for relation \"{}\" already exists",
                            def.relname()
                        ),
                    ));
                }
            }
            Ok(())
        };
        match constraint {
            TableConstraint::Unique(u) => {
                exists(&u.name)?;
                let columns = crate::sql::index_ddl::index_columns(&def, &u.columns)?;
                let mut taken = self.relation_names(txn, def.schema()).await?;
                let name = Self::relation_name_for(
                    &mut taken,
                    u.name.as_ref().map(ident_name),
                    &def,
                    &columns,
                    "key",
                )?;
                let mut idx = self.new_index(&def, name, columns, true, true)?;
                idx.nulls_not_distinct =
                    matches!(u.nulls_distinct, ast::NullsDistinctOption::NotDistinct);
                self.build_index(txn, &def, &idx).await?;
                def.indexes.push(idx);
            }
            TableConstraint::Check(ck) => {
                exists(&ck.name)?;
                let mut taken = constraint_names.clone();
                let name = match &ck.name {
                    Some(n) => ident_name(n),
                    None => Self::choose_name(&mut taken, &def.name, &[], "check"),
                };
                let (_, oid) = self.fresh_index_ids();
                def.checks.push(weft_engine::index::CheckDef {
                    name,
                    oid,
                    expr: crate::sql::default_text::check_text(&ck.expr),
                    validated: !not_valid,
                });
                self.validate_checks(&def).await?;
                if !not_valid {
                    self.validate_check_rows(txn, &def, def.checks.len() - 1)
                        .await?;
                }
            }
            TableConstraint::ForeignKey(fk) => {
                exists(&fk.name)?;
                let cols = fk
                    .columns
                    .iter()
                    .map(|c| {
                        let n = ident_name(c);
                        def.column_index(&n).ok_or_else(|| {
                            SqlError::new(
                                codes::UNDEFINED_COLUMN,
                                format!("column \"{n}\" referenced in foreign key constraint does not exist"),
                            )
                        })
                    })
                    .collect::<SqlResult<Vec<usize>>>()?;
                let spec = ForeignKeySpec::from_ast(fk.name.as_ref().map(ident_name), cols, &fk)?;
                let mut taken = constraint_names.clone();
                self.add_foreign_keys(txn, &mut def, vec![spec], &mut taken)
                    .await?;
                let k = def.foreign_keys.len() - 1;
                if not_valid {
                    def.foreign_keys[k].validated = false;
                } else {
                    self.validate_foreign_key_rows(txn, &def, k).await?;
                }
            }
            TableConstraint::PrimaryKey(pk) => {
                exists(&pk.name)?;
                return self.add_primary_key(txn, def, pk).await;
            }
            other => {
                return Err(SqlError::unsupported(format!(
                    "ALTER TABLE ADD {other} is not supported"
                )))
            }
        }
        self.put_table_def(txn, &def)?;
        Ok(def)
    }

    /// Checks the table's `k`-th CHECK constraint on every row it holds.
    pub(crate) async fn validate_check_rows(
        &self,
        txn: &Txn,
        def: &TableDef,
        k: usize,
    ) -> SqlResult<()> {
        let rows = self.table_rows(txn, def).await?;
        let mut one = def.clone();
        one.checks = vec![def.checks[k].clone()];
        let refs: Vec<&Row> = rows.iter().map(|(_, r)| r).collect();
        self.check_constraints(&one, &refs).await.map_err(|e| {
            if e.code == codes::CHECK_VIOLATION {
                SqlError::new(
                    codes::CHECK_VIOLATION,
                    format!(
                        "check constraint \"{}\" of relation \"{}\" is violated by some row",
                        def.checks[k].name,
                        def.relname()
                    ),
                )
            } else {
                e
            }
        })
    }

    /// Checks the table's `k`-th FOREIGN KEY on every row it holds.
    pub(crate) async fn validate_foreign_key_rows(
        &self,
        txn: &mut Txn,
        def: &TableDef,
        k: usize,
    ) -> SqlResult<()> {
        let rows = self.table_rows(txn, def).await?;
        let mut one = def.clone();
        one.foreign_keys = vec![def.foreign_keys[k].clone()];
        one.foreign_keys[0].deferred = false;
        for (key, row) in rows {
            self.check_references(txn, &one, &key, None, &row).await?;
        }
        Ok(())
    }

    pub(crate) async fn drop_constraint(
        &self,
        txn: &mut Txn,
        mut def: TableDef,
        name: &str,
        if_exists: bool,
        cascade: bool,
        notices: &mut Vec<Notice>,
    ) -> SqlResult<TableDef> {
        if let Some(k) = def
            .indexes
            .iter()
            .position(|i| i.constraint && i.name == name)
        {
            // A foreign key of another table may rest on it.
            let cols = def.indexes[k].columns.clone();
            for child_name in def.referenced_by.clone() {
                let child = if child_name == def.name {
                    Arc::new(def.clone())
                } else {
                    self.table_def(txn, &child_name).await?
                };
                let mut sorted = cols.clone();
                sorted.sort();
                let dependent: Vec<String> = child
                    .foreign_keys
                    .iter()
                    .filter(|f| {
                        let mut p = f.parent_columns.clone();
                        p.sort();
                        f.parent == def.name && p == sorted
                    })
                    .map(|f| f.name.clone())
                    .collect();
                if dependent.is_empty() {
                    continue;
                }
                if !cascade {
                    return Err(SqlError::new(
                        "2BP01",
                        format!(
                            "cannot drop constraint {name} on table {} because other objects depend on it",
                            def.name
                        ),
                    )
                    .with_detail(format!(
                        "constraint {} on table {} depends on index {name}",
                        dependent[0], child.name
                    ))
                    .with_hint("Use DROP ... CASCADE to drop the dependent objects too."));
                }
                for d in &dependent {
                    notices.push(Notice {
                        severity: "NOTICE",
                        code: "00000",
                        message: format!("drop cascades to constraint {d} on table {}", child.name),
                    });
                }
                if child.name == def.name {
                    def.foreign_keys.retain(|f| !dependent.contains(&f.name));
                } else {
                    let mut c = (*child).clone();
                    c.foreign_keys.retain(|f| !dependent.contains(&f.name));
                    self.put_table_def(txn, &c)?;
                }
            }
            def.indexes.remove(k);
        } else if let Some(k) = def.checks.iter().position(|c| c.name == name) {
            def.checks.remove(k);
        } else if let Some(k) = def.foreign_keys.iter().position(|f| f.name == name) {
            let f = def.foreign_keys.remove(k);
            if f.parent != def.name && !def.foreign_keys.iter().any(|g| g.parent == f.parent) {
                if let Ok(parent) = self.table_def(txn, &f.parent).await {
                    let mut parent = (*parent).clone();
                    parent.referenced_by.retain(|c| *c != def.name);
                    self.put_table_def(txn, &parent)?;
                }
            }
        } else if name == def.pkey_name() && !def.primary_key.is_empty() {
            return Err(SqlError::unsupported(
                "dropping a primary key constraint is not supported",
            ));
        } else if if_exists {
            notices.push(Notice {
                severity: "NOTICE",
                code: "00000",
                message: format!(
                    "constraint \"{name}\" of relation \"{}\" does not exist, skipping",
                    def.relname()
                ),
            });
            return Ok(def);
        } else {
            return Err(SqlError::new(
                codes::UNDEFINED_OBJECT,
                format!(
                    "constraint \"{name}\" of relation \"{}\" does not exist",
                    def.relname()
                ),
            ));
        }
        self.put_table_def(txn, &def)?;
        Ok(def)
    }
}
