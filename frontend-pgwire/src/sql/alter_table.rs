//! ALTER TABLE: each action a change of the table's definition in the statement's
//! transaction, which makes every concurrent writer of the table retry (40001).
//!
//! Actions that keep the stored row layout change the definition alone: ADD COLUMN of a
//! column that starts NULL (older rows are shorter and read NULL for it), RENAME TO,
//! SET/DROP DEFAULT, SET/DROP NOT NULL, ADD/DROP/VALIDATE CONSTRAINT. Actions that change
//! the layout (ADD COLUMN with a default, DROP COLUMN, RENAME COLUMN, ALTER COLUMN TYPE)
//! rewrite the table into a fresh table id, as TRUNCATE takes one, with its indexes
//! rebuilt: older snapshots keep reading the old id under the old definition, and the
//! rewrite is bounded by the transaction limits (`weft.txn_rows_max`, 54000 beyond).

use std::sync::Arc;

use datafusion::sql::sqlparser::ast::{self, AlterColumnOperation, AlterTableOperation};
use weft_engine::key::catalog_key;
use weft_engine::row::Row;
use weft_engine::schema::{catalog_schema, TableDef, FIRST_USER_TABLE_ID};
use weft_engine::SqlType;

use crate::catalog::txn::Txn;
use crate::error::{codes, SqlError, SqlResult};
use crate::sql::exec::{table_name, Executor};
use crate::sql::names::ident_name;
use crate::sql::outcome::{CommandTag, Notice, Outcome};

fn undefined_column(table: &str, c: &str) -> SqlError {
    SqlError::new(
        codes::UNDEFINED_COLUMN,
        format!("column \"{c}\" of relation \"{table}\" does not exist"),
    )
}

impl Executor {
    pub async fn alter_table(
        &self,
        txn: &mut Txn,
        at: ast::AlterTable,
        notices: &mut Vec<Notice>,
    ) -> SqlResult<Outcome> {
        let name = table_name(&at.name)?;
        // `ALTER TABLE s OWNER TO r` of a sequence or a view, as pg_dump writes it.
        let owner_only = at
            .operations
            .iter()
            .all(|op| matches!(op, AlterTableOperation::OwnerTo { .. }));
        if owner_only
            && (self.sequence_def(txn, &name).await?.is_some()
                || self.view_def(txn, &name).await?.is_some())
        {
            for op in &at.operations {
                if let AlterTableOperation::OwnerTo { new_owner } = op {
                    self.relation_owner_to(txn, &name, new_owner).await?;
                }
            }
            return Ok(Outcome::Command(CommandTag::new("ALTER TABLE")));
        }
        let catalog = txn.overlay(txn.database.catalog);
        let Some(def) = self
            .db
            .lookup_table(txn.database, txn.read_ts()?, catalog.as_deref(), &name)
            .await?
        else {
            if at.if_exists {
                notices.push(Notice {
                    severity: "NOTICE",
                    code: "00000",
                    message: format!("relation \"{name}\" does not exist, skipping"),
                });
                return Ok(Outcome::Command(CommandTag::new("ALTER TABLE")));
            }
            return Err(SqlError::new(
                codes::UNDEFINED_TABLE,
                format!("relation \"{name}\" does not exist"),
            ));
        };
        let mut def = (*def).clone();
        self.refuse_under_views(txn, &name, &at.operations).await?;
        for op in at.operations {
            def = self.alter_one(txn, def, op, notices).await?;
        }
        Ok(Outcome::Command(CommandTag::new("ALTER TABLE")))
    }

    async fn alter_one(
        &self,
        txn: &mut Txn,
        mut def: TableDef,
        op: AlterTableOperation,
        notices: &mut Vec<Notice>,
    ) -> SqlResult<TableDef> {
        match op {
            AlterTableOperation::AddColumn {
                if_not_exists,
                column_def,
                ..
            } => {
                let cname = ident_name(&column_def.name);
                if def.column_index(&cname).is_some() {
                    if if_not_exists {
                        notices.push(Notice {
                            severity: "NOTICE",
                            code: "42701",
                            message: format!(
                                "column \"{cname}\" of relation \"{}\" already exists, skipping",
                                def.relname()
                            ),
                        });
                        return Ok(def);
                    }
                    return Err(SqlError::new(
                        codes::DUPLICATE_COLUMN,
                        format!(
                            "column \"{cname}\" of relation \"{}\" already exists",
                            def.relname()
                        ),
                    ));
                }
                self.add_column(txn, def, column_def).await
            }
            AlterTableOperation::DropColumn {
                column_names,
                if_exists,
                drop_behavior,
                ..
            } => {
                let cascade = matches!(drop_behavior, Some(ast::DropBehavior::Cascade));
                for c in column_names {
                    let cname = ident_name(&c);
                    let Some(i) = def.column_index(&cname) else {
                        if if_exists {
                            notices.push(Notice {
                                severity: "NOTICE",
                                code: "00000",
                                message: format!(
                                    "column \"{cname}\" of relation \"{}\" does not exist, skipping",
                                    def.relname()
                                ),
                            });
                            continue;
                        }
                        return Err(undefined_column(&def.name, &cname));
                    };
                    def = self.drop_column(txn, def, i, cascade, notices).await?;
                }
                Ok(def)
            }
            AlterTableOperation::RenameColumn {
                old_column_name,
                new_column_name,
            } => {
                let (old, new) = (ident_name(&old_column_name), ident_name(&new_column_name));
                let i = def
                    .column_index(&old)
                    .ok_or_else(|| undefined_column(&def.name, &old))?;
                if def.column_index(&new).is_some() {
                    return Err(SqlError::new(
                        codes::DUPLICATE_COLUMN,
                        format!(
                            "column \"{new}\" of relation \"{}\" already exists",
                            def.relname()
                        ),
                    ));
                }
                let old_def = def.clone();
                def.columns[i].name = new.clone();
                for c in def.checks.iter_mut() {
                    c.expr = rename_in_expr(&c.expr, &old, &new);
                }
                for x in def.indexes.iter_mut() {
                    if let Some(p) = &x.predicate {
                        x.predicate = Some(rename_in_expr(p, &old, &new));
                    }
                }
                self.rewrite(txn, &old_def, def, |r| Ok(r.clone())).await
            }
            AlterTableOperation::OwnerTo { new_owner } => {
                let role = self.new_owner(txn, &new_owner).await?;
                def.owner = crate::catalog::grants::stored_owner(&role);
                // The sequences of its SERIAL and identity columns go with it.
                for mut s in self.default_sequences(txn, &def).await? {
                    if s.owned_by.as_ref().is_some_and(|(t, _)| *t == def.name) {
                        s.owner = def.owner.clone();
                        crate::catalog::sequences::put(self.db.as_ref(), txn, &s.name, Some(&s))?;
                    }
                }
                self.put_table_def(txn, &def)?;
                Ok(def)
            }
            AlterTableOperation::RenameTable { table_name: t } => {
                let new = match t {
                    ast::RenameTableNameKind::As(n) | ast::RenameTableNameKind::To(n) => {
                        table_name(&n)?
                    }
                };
                // The table stays in its schema.
                let bare = weft_engine::schema::split_relation(&new).1.to_string();
                crate::sql::search_path::check_new_name(&bare, "table")?;
                let new = weft_engine::schema::relation_key(def.schema(), &bare);
                self.rename_table(txn, def, new).await
            }
            AlterTableOperation::AlterColumn { column_name, op } => {
                let cname = ident_name(&column_name);
                let i = def
                    .column_index(&cname)
                    .ok_or_else(|| undefined_column(&def.name, &cname))?;
                match op {
                    AlterColumnOperation::SetDefault { value } => {
                        def.columns[i].default =
                            Some(crate::sql::default_text::default_text(&value));
                        let defaults = self.db.column_defaults(&def);
                        if !defaults.contains_key(&cname) {
                            return Err(SqlError::syntax(format!(
                                "invalid DEFAULT expression for column \"{cname}\""
                            )));
                        }
                    }
                    AlterColumnOperation::AddGenerated {
                        generated_as,
                        sequence_options,
                    } => {
                        self.add_identity(txn, &mut def, i, generated_as, sequence_options)
                            .await?;
                    }
                    AlterColumnOperation::DropDefault => {
                        if def.columns[i].identity.is_none() {
                            def.columns[i].default = None;
                        }
                    }
                    AlterColumnOperation::DropNotNull => {
                        if def.primary_key.contains(&i) {
                            return Err(SqlError::new(
                                codes::INVALID_TABLE_DEFINITION,
                                format!("column \"{cname}\" is in a primary key"),
                            ));
                        }
                        def.columns[i].nullable = true;
                    }
                    AlterColumnOperation::SetNotNull => {
                        if def.columns[i].nullable {
                            let rows = self.table_rows(txn, &def).await?;
                            if rows.iter().any(|(_, r)| r[i].is_null()) {
                                return Err(SqlError::new(
                                    codes::NOT_NULL_VIOLATION,
                                    format!(
                                        "column \"{cname}\" of relation \"{}\" contains null values",
                                        def.relname()
                                    ),
                                ));
                            }
                            def.columns[i].nullable = false;
                        }
                    }
                    AlterColumnOperation::SetDataType {
                        data_type, using, ..
                    } => {
                        if using.is_some() {
                            return Err(SqlError::unsupported(
                                "ALTER COLUMN TYPE ... USING is not supported",
                            ));
                        }
                        let ty = SqlType::from_ast(&data_type).map_err(SqlError::from)?;
                        return self.alter_type(txn, def, i, ty).await;
                    }
                }
                self.put_table_def(txn, &def)?;
                Ok(def)
            }
            AlterTableOperation::AddConstraint {
                constraint,
                not_valid,
            } => self.add_constraint(txn, def, constraint, not_valid).await,
            AlterTableOperation::DropConstraint {
                if_exists,
                name,
                drop_behavior,
            } => {
                let cascade = matches!(drop_behavior, Some(ast::DropBehavior::Cascade));
                self.drop_constraint(txn, def, &ident_name(&name), if_exists, cascade, notices)
                    .await
            }
            AlterTableOperation::ValidateConstraint { name } => {
                let cname = ident_name(&name);
                if let Some(k) = def.checks.iter().position(|c| c.name == cname) {
                    self.validate_check_rows(txn, &def, k).await?;
                    def.checks[k].validated = true;
                } else if let Some(k) = def.foreign_keys.iter().position(|f| f.name == cname) {
                    self.validate_foreign_key_rows(txn, &def, k).await?;
                    def.foreign_keys[k].validated = true;
                } else {
                    return Err(SqlError::new(
                        codes::UNDEFINED_OBJECT,
                        format!(
                            "constraint \"{cname}\" of relation \"{}\" does not exist",
                            def.relname()
                        ),
                    ));
                }
                self.put_table_def(txn, &def)?;
                Ok(def)
            }
            other => Err(SqlError::unsupported(format!(
                "ALTER TABLE {other} is not supported"
            ))),
        }
    }

    /// Rewrites every row of `old` into a fresh table id under `new` (rows mapped by
    /// `f`), rebuilds the indexes, and writes the new definition.
    pub(crate) async fn rewrite(
        &self,
        txn: &mut Txn,
        old: &TableDef,
        mut new: TableDef,
        f: impl Fn(&Row) -> SqlResult<Row>,
    ) -> SqlResult<TableDef> {
        while new.id == old.id {
            new.id = FIRST_USER_TABLE_ID + self.db.entropy.u64() % (u64::MAX - FIRST_USER_TABLE_ID);
        }
        for idx in new.indexes.iter_mut() {
            idx.id = self.fresh_index_ids().0;
        }
        let rows = self.table_rows(txn, old).await?;
        // A new primary key (ADD PRIMARY KEY) keys every row anew, and must be unique.
        let rekey = new.primary_key != old.primary_key;
        let mut keys = std::collections::HashSet::new();
        let mut mapped: Vec<(Vec<u8>, Row)> = Vec::with_capacity(rows.len());
        for (k, r) in &rows {
            let row = f(r)?;
            let key = if rekey {
                if new.primary_key.iter().any(|&i| row[i].is_null()) {
                    // Reported below as the NOT NULL it is.
                    k.clone()
                } else {
                    let key = self.row_key(&new, &row)?;
                    if !keys.insert(key.clone()) {
                        let e = Self::pk_violation(&new, &row);
                        return Err(SqlError::new(
                            codes::UNIQUE_VIOLATION,
                            format!("could not create unique index \"{}\"", new.pkey_name()),
                        )
                        .with_detail(
                            e.detail
                                .unwrap_or_default()
                                .replace("already exists", "is duplicated"),
                        ));
                    }
                    key
                }
            } else {
                k.clone()
            };
            mapped.push((key, row));
        }
        let refs: Vec<&Row> = mapped.iter().map(|(_, r)| r).collect();
        self.check_constraints(&new, &refs).await?;
        for (c, col) in new.columns.iter().enumerate() {
            if !col.nullable && refs.iter().any(|r| r[c].is_null()) {
                return Err(SqlError::new(
                    codes::NOT_NULL_VIOLATION,
                    format!(
                        "column \"{}\" of relation \"{}\" contains null values",
                        col.name, new.name
                    ),
                ));
            }
        }
        let schema = new.arrow_schema();
        for (k, r) in mapped {
            txn.put(&self.db.limits, new.id, &schema, k, Some(Arc::new(r)))?;
        }
        for idx in new.indexes.clone() {
            self.build_index(txn, &new, &idx).await?;
        }
        self.put_table_def(txn, &new)?;
        Ok(new)
    }

    async fn rename_table(&self, txn: &mut Txn, def: TableDef, new: String) -> SqlResult<TableDef> {
        let catalog = txn.overlay(txn.database.catalog);
        let taken = self
            .db
            .lookup_table(txn.database, txn.read_ts()?, catalog.as_deref(), &new)
            .await?
            .is_some()
            || self.sequence_def(txn, &new).await?.is_some();
        if taken {
            return Err(SqlError::new(
                codes::DUPLICATE_TABLE,
                format!("relation \"{new}\" already exists"),
            ));
        }
        let old_name = def.name.clone();
        txn.schema_keys.insert(catalog_key(&old_name));
        txn.put(
            &self.db.limits,
            txn.database.catalog,
            &catalog_schema(),
            catalog_key(&old_name),
            None,
        )?;
        let mut renamed = def;
        // The primary key's index keeps its name, as in PostgreSQL.
        if !renamed.primary_key.is_empty() {
            renamed.pkey_name = Some(renamed.pkey_name());
        }
        renamed.name = new.clone();
        for f in renamed
            .foreign_keys
            .iter_mut()
            .filter(|f| f.parent == old_name)
        {
            f.parent = new.clone();
        }
        for c in renamed.referenced_by.iter_mut().filter(|c| **c == old_name) {
            *c = new.clone();
        }
        // Children name their parent, parents their children.
        for child in renamed.referenced_by.clone().iter().filter(|c| **c != new) {
            if let Ok(d) = self.table_def(txn, child).await {
                let mut d = (*d).clone();
                for f in d.foreign_keys.iter_mut().filter(|f| f.parent == old_name) {
                    f.parent = new.clone();
                }
                self.put_table_def(txn, &d)?;
            }
        }
        let mut parents: Vec<String> = renamed
            .foreign_keys
            .iter()
            .map(|f| f.parent.clone())
            .filter(|p| *p != new)
            .collect();
        parents.dedup();
        for p in parents {
            if let Ok(d) = self.table_def(txn, &p).await {
                let mut d = (*d).clone();
                for c in d.referenced_by.iter_mut().filter(|c| **c == old_name) {
                    *c = new.clone();
                }
                self.put_table_def(txn, &d)?;
            }
        }
        // Sequences its columns own follow it.
        for mut s in self.default_sequences(txn, &renamed).await? {
            if let Some((_, column)) = s.owned_by.clone().filter(|(t, _)| *t == old_name) {
                s.owned_by = Some((new.clone(), column));
                crate::catalog::sequences::put(self.db.as_ref(), txn, &s.name, Some(&s))?;
            }
        }
        self.put_table_def(txn, &renamed)?;
        Ok(renamed)
    }
}

/// A CHECK expression with a column renamed (whole identifiers only).
fn rename_in_expr(expr: &str, old: &str, new: &str) -> String {
    let mut out = String::with_capacity(expr.len());
    let mut word = String::new();
    let mut in_string = false;
    let flush = |word: &mut String, out: &mut String| {
        if word.eq_ignore_ascii_case(old) {
            out.push_str(&crate::catalog::pg_get::quote_ident(new));
        } else {
            out.push_str(word);
        }
        word.clear();
    };
    for ch in expr.chars() {
        if in_string {
            out.push(ch);
            if ch == '\'' {
                in_string = false;
            }
            continue;
        }
        if ch.is_alphanumeric() || ch == '_' {
            word.push(ch);
        } else {
            flush(&mut word, &mut out);
            if ch == '\'' {
                in_string = true;
            }
            out.push(ch);
        }
    }
    flush(&mut word, &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renaming_in_a_check_touches_whole_identifiers_outside_strings() {
        assert_eq!(
            rename_in_expr(
                "qty > 0 AND qty_max > qty AND note <> 'qty'",
                "qty",
                "amount"
            ),
            "amount > 0 AND qty_max > amount AND note <> 'qty'"
        );
    }
}
