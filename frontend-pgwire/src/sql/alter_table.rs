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

use datafusion::scalar::ScalarValue;
use datafusion::sql::sqlparser::ast::{
    self, AlterColumnOperation, AlterTableOperation, ColumnOption, TableConstraint,
};
use weft_engine::key::catalog_key;
use weft_engine::row::Row;
use weft_engine::schema::{
    catalog_schema, ColumnDef, TableDef, CATALOG_TABLE_ID, FIRST_USER_TABLE_ID,
};
use weft_engine::SqlType;

use crate::catalog::txn::Txn;
use crate::error::{codes, SqlError, SqlResult};
use crate::sql::exec::{table_name, Executor};
use crate::sql::foreign_keys::ForeignKeySpec;
use crate::sql::names::ident_name;
use crate::sql::outcome::{CommandTag, Notice, Outcome};

fn undefined_column(table: &str, c: &str) -> SqlError {
    SqlError::new(
        codes::UNDEFINED_COLUMN,
        format!("column \"{c}\" of relation \"{table}\" does not exist"),
    )
}

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
    pub async fn alter_table(
        &self,
        txn: &mut Txn,
        at: ast::AlterTable,
        notices: &mut Vec<Notice>,
    ) -> SqlResult<Outcome> {
        let name = table_name(&at.name)?;
        let catalog = txn.overlay(CATALOG_TABLE_ID);
        let Some(def) = self
            .db
            .lookup_table(txn.read_ts()?, catalog.as_deref(), &name)
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
                                def.name
                            ),
                        });
                        return Ok(def);
                    }
                    return Err(SqlError::new(
                        codes::DUPLICATE_COLUMN,
                        format!(
                            "column \"{cname}\" of relation \"{}\" already exists",
                            def.name
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
                                    def.name
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
                            def.name
                        ),
                    ));
                }
                let old_def = def.clone();
                def.columns[i].name = new.clone();
                for c in def.checks.iter_mut() {
                    c.expr = rename_in_expr(&c.expr, &old, &new);
                }
                self.rewrite(txn, &old_def, def, |r| Ok(r.clone())).await
            }
            AlterTableOperation::RenameTable { table_name: t } => {
                let new = match t {
                    ast::RenameTableNameKind::As(n) | ast::RenameTableNameKind::To(n) => {
                        table_name(&n)?
                    }
                };
                self.rename_table(txn, def, new).await
            }
            AlterTableOperation::AlterColumn { column_name, op } => {
                let cname = ident_name(&column_name);
                let i = def
                    .column_index(&cname)
                    .ok_or_else(|| undefined_column(&def.name, &cname))?;
                match op {
                    AlterColumnOperation::SetDefault { value } => {
                        def.columns[i].default = Some(value.to_string());
                        let defaults = self.db.column_defaults(&def);
                        if !defaults.contains_key(&cname) {
                            return Err(SqlError::syntax(format!(
                                "invalid DEFAULT expression for column \"{cname}\""
                            )));
                        }
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
                                        def.name
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
                    other => {
                        return Err(SqlError::unsupported(format!(
                            "ALTER COLUMN {other} is not supported"
                        )))
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
                            def.name
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
    async fn rewrite(
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
        let mapped: Vec<(Vec<u8>, Row)> = rows
            .iter()
            .map(|(k, r)| Ok((k.clone(), f(r)?)))
            .collect::<SqlResult<_>>()?;
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

    async fn add_column(
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
                ColumnOption::Default(e) => col.default = Some(e.to_string()),
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

    async fn drop_column(
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
        // Indexes and constraints on the column go with it, as in PostgreSQL.
        new.indexes
            .retain(|x| !x.columns.contains(&i) && !x.include.contains(&i));
        for x in new.indexes.iter_mut() {
            x.columns = x.columns.iter().map(|&c| shift(c)).collect();
            x.include = x.include.iter().map(|&c| shift(c)).collect();
        }
        let words = |e: &str| -> bool {
            e.split(|ch: char| !(ch.is_alphanumeric() || ch == '_'))
                .any(|w| w.eq_ignore_ascii_case(&cname))
        };
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

    async fn alter_type(
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

    async fn rename_table(&self, txn: &mut Txn, def: TableDef, new: String) -> SqlResult<TableDef> {
        let catalog = txn.overlay(CATALOG_TABLE_ID);
        let taken = self
            .db
            .lookup_table(txn.read_ts()?, catalog.as_deref(), &new)
            .await?
            .is_some()
            || crate::catalog::sequences::lookup(self.db.as_ref(), Some(txn), txn.read_ts()?, &new)
                .await?
                .is_some();
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
            CATALOG_TABLE_ID,
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
        for c in &renamed.columns {
            if let Some(seq) = c
                .default
                .as_deref()
                .and_then(crate::catalog::sequences::default_sequence)
            {
                if let Some(mut s) = crate::catalog::sequences::lookup(
                    self.db.as_ref(),
                    Some(txn),
                    txn.read_ts()?,
                    seq,
                )
                .await?
                {
                    if s.owned_by.as_ref().is_some_and(|(t, _)| *t == old_name) {
                        s.owned_by = Some((new.clone(), s.owned_by.clone().unwrap_or_default().1));
                        crate::catalog::sequences::put(self.db.as_ref(), txn, seq, Some(&s))?;
                    }
                }
            }
        }
        self.put_table_def(txn, &renamed)?;
        Ok(renamed)
    }

    async fn add_constraint(
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
                            def.name
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
                let mut taken = self.relation_names(txn).await?;
                let name = match &u.name {
                    Some(n) => {
                        let n = ident_name(n);
                        if taken.contains(&n) {
                            return Err(SqlError::new(
                                codes::DUPLICATE_TABLE,
                                format!("relation \"{n}\" already exists"),
                            ));
                        }
                        n
                    }
                    None => {
                        let cols: Vec<&str> = columns
                            .iter()
                            .map(|&c| def.columns[c].name.as_str())
                            .collect();
                        Self::choose_name(&mut taken, &def.name, &cols, "key")
                    }
                };
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
                    expr: ck.expr.to_string(),
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
            TableConstraint::PrimaryKey(_) => {
                return Err(SqlError::unsupported(
                    "ALTER TABLE ... ADD PRIMARY KEY is not supported",
                ))
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
    async fn validate_check_rows(&self, txn: &Txn, def: &TableDef, k: usize) -> SqlResult<()> {
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
                        def.checks[k].name, def.name
                    ),
                )
            } else {
                e
            }
        })
    }

    /// Checks the table's `k`-th FOREIGN KEY on every row it holds.
    async fn validate_foreign_key_rows(
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

    async fn drop_constraint(
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
                    def.name
                ),
            });
            return Ok(def);
        } else {
            return Err(SqlError::new(
                codes::UNDEFINED_OBJECT,
                format!(
                    "constraint \"{name}\" of relation \"{}\" does not exist",
                    def.name
                ),
            ));
        }
        self.put_table_def(txn, &def)?;
        Ok(def)
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
