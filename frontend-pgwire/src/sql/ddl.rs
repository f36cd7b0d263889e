//! DDL: CREATE and DROP of tables and sequences, TRUNCATE, each a catalog write in the
//! session's transaction.

use std::sync::Arc;

use crate::sql::outcome::{CommandTag, Notice, Outcome};
use datafusion::scalar::ScalarValue;
use datafusion::sql::sqlparser::ast::{
    self, ColumnOption, Expr as SqlExpr, ObjectName, TableConstraint,
};
use weft_engine::key::catalog_key;
use weft_engine::schema::{
    catalog_schema, ColumnDef, TableDef, FIRST_USER_TABLE_ID, RESERVED_PREFIX,
};
use weft_engine::SqlType;

use crate::catalog::txn::Txn;
use crate::error::{codes, SqlError, SqlResult};
use crate::sql::exec::table_name;
use crate::sql::exec::Executor;
use crate::sql::foreign_keys::ForeignKeySpec;
use crate::sql::names::ident_name;

impl Executor {
    pub async fn create_table(
        &self,
        txn: &mut Txn,
        ct: ast::CreateTable,
        notices: &mut Vec<Notice>,
    ) -> SqlResult<Outcome> {
        if ct.query.is_some() {
            return Err(SqlError::unsupported(
                "CREATE TABLE ... AS is not supported yet",
            ));
        }
        if ct.temporary {
            return Err(SqlError::unsupported("temporary tables are not supported"));
        }
        let name = table_name(&ct.name)?;
        self.check_creation(txn, &name, "table").await?;
        if name.starts_with(RESERVED_PREFIX) || name.starts_with("pg_") {
            return Err(SqlError::new(
                codes::INVALID_NAME,
                format!("table name \"{name}\" is reserved"),
            ));
        }
        let catalog = txn.overlay(txn.database.catalog);
        if self
            .db
            .lookup_table(txn.database, txn.read_ts()?, catalog.as_deref(), &name)
            .await?
            .is_some()
        {
            if ct.if_not_exists {
                notices.push(Notice {
                    severity: "NOTICE",
                    code: "42P07",
                    message: format!("relation \"{name}\" already exists, skipping"),
                });
                return Ok(Outcome::Command(CommandTag::new("CREATE TABLE")));
            }
            return Err(SqlError::new(
                codes::DUPLICATE_TABLE,
                format!("relation \"{name}\" already exists"),
            ));
        }
        let mut columns: Vec<ColumnDef> = Vec::new();
        let mut primary_key: Vec<usize> = Vec::new();
        // Columns that draw from a sequence of their own, with its options.
        let mut sequences: Vec<(usize, Vec<ast::SequenceOptions>)> = Vec::new();
        // UNIQUE constraints (name, columns, NULLS NOT DISTINCT) and CHECK constraints
        // (name, the column it is declared on, expression).
        let mut uniques: Vec<(Option<String>, Vec<usize>, bool)> = Vec::new();
        let mut checks: Vec<(Option<String>, Option<usize>, SqlExpr)> = Vec::new();
        let mut foreign_keys: Vec<ForeignKeySpec> = Vec::new();
        let mut pkey_name: Option<String> = None;
        for c in &ct.columns {
            let cname = ident_name(&c.name);
            if cname.starts_with(RESERVED_PREFIX) {
                return Err(SqlError::new(
                    codes::INVALID_NAME,
                    format!("column name \"{cname}\" is reserved"),
                ));
            }
            if columns.iter().any(|x| x.name == cname) {
                return Err(SqlError::new(
                    codes::DUPLICATE_COLUMN,
                    format!("column \"{cname}\" specified more than once"),
                ));
            }
            // SERIAL, BIGSERIAL, SMALLSERIAL: an integer column drawing from its own
            // sequence, as in PostgreSQL.
            let serial = match &c.data_type {
                ast::DataType::Custom(n, args) if args.is_empty() => {
                    match n.to_string().to_ascii_lowercase().as_str() {
                        "serial" | "serial4" => Some(SqlType::Integer),
                        "bigserial" | "serial8" => Some(SqlType::BigInt),
                        "smallserial" | "serial2" => Some(SqlType::SmallInt),
                        _ => None,
                    }
                }
                _ => None,
            };
            let ty = match serial.clone() {
                Some(t) => Ok(t),
                None => SqlType::from_ast(&c.data_type),
            }
            .map_err(SqlError::from)?;
            let mut col = ColumnDef {
                name: cname.clone(),
                ty,
                nullable: true,
                default: None,
                identity: None,
                comment: None,
            };
            if serial.is_some() {
                col.nullable = false;
                sequences.push((columns.len(), Vec::new()));
            }
            for opt in &c.options {
                match &opt.option {
                    ColumnOption::Null => col.nullable = true,
                    ColumnOption::NotNull => col.nullable = false,
                    ColumnOption::Default(e) => {
                        col.default = Some(crate::sql::default_text::default_text(e))
                    }
                    ColumnOption::Generated {
                        generated_as,
                        sequence_options,
                        generation_expr: None,
                        ..
                    } if matches!(
                        generated_as,
                        ast::GeneratedAs::Always | ast::GeneratedAs::ByDefault
                    ) =>
                    {
                        col.identity = Some(crate::sql::identity::identity_kind(
                            &col.ty,
                            Some(generated_as),
                        )?);
                        col.nullable = false;
                        sequences
                            .push((columns.len(), sequence_options.clone().unwrap_or_default()));
                    }
                    ColumnOption::PrimaryKey(pk) => {
                        pkey_name = opt.name.as_ref().or(pk.name.as_ref()).map(ident_name);
                        if !primary_key.is_empty() {
                            return Err(SqlError::new(
                                codes::INVALID_TABLE_DEFINITION,
                                format!(
                                    "multiple primary keys for table \"{name}\" are not allowed"
                                ),
                            ));
                        }
                        primary_key.push(columns.len());
                        col.nullable = false;
                    }
                    ColumnOption::Unique(u) => uniques.push((
                        opt.name.as_ref().map(ident_name),
                        vec![columns.len()],
                        matches!(u.nulls_distinct, ast::NullsDistinctOption::NotDistinct),
                    )),
                    ColumnOption::ForeignKey(fk) => foreign_keys.push(ForeignKeySpec::from_ast(
                        opt.name.as_ref().or(fk.name.as_ref()).map(ident_name),
                        vec![columns.len()],
                        fk,
                    )?),
                    ColumnOption::Check(ck) => checks.push((
                        opt.name.as_ref().or(ck.name.as_ref()).map(ident_name),
                        Some(columns.len()),
                        (*ck.expr).clone(),
                    )),
                    other => {
                        return Err(SqlError::unsupported(format!(
                            "column constraint {other} is not supported yet"
                        )))
                    }
                }
            }
            columns.push(col);
        }
        for tc in &ct.constraints {
            match tc {
                TableConstraint::PrimaryKey(pk) => {
                    pkey_name = pk.name.as_ref().map(ident_name);
                    if !primary_key.is_empty() {
                        return Err(SqlError::new(
                            codes::INVALID_TABLE_DEFINITION,
                            format!("multiple primary keys for table \"{name}\" are not allowed"),
                        ));
                    }
                    for ic in &pk.columns {
                        let cname = match &ic.column.expr {
                            SqlExpr::Identifier(id) => ident_name(id),
                            other => {
                                return Err(SqlError::syntax(format!(
                                    "primary key column must be a column name, not {other}"
                                )))
                            }
                        };
                        let idx =
                            columns
                                .iter()
                                .position(|c| c.name == cname)
                                .ok_or_else(|| {
                                    SqlError::new(
                                        codes::UNDEFINED_COLUMN,
                                        format!("column \"{cname}\" named in key does not exist"),
                                    )
                                })?;
                        if primary_key.contains(&idx) {
                            return Err(SqlError::new(
                                codes::DUPLICATE_COLUMN,
                                format!(
                                    "column \"{cname}\" appears twice in primary key constraint"
                                ),
                            ));
                        }
                        columns[idx].nullable = false;
                        primary_key.push(idx);
                    }
                }
                TableConstraint::Unique(u) => {
                    let cols = crate::sql::index_ddl::index_columns_of_table(&columns, &u.columns)?;
                    uniques.push((
                        u.name.as_ref().map(ident_name),
                        cols,
                        matches!(u.nulls_distinct, ast::NullsDistinctOption::NotDistinct),
                    ));
                }
                TableConstraint::ForeignKey(fk) => {
                    let cols = fk
                        .columns
                        .iter()
                        .map(|c| {
                            let n = ident_name(c);
                            columns.iter().position(|x| x.name == n).ok_or_else(|| {
                                SqlError::new(
                                    codes::UNDEFINED_COLUMN,
                                    format!("column \"{n}\" referenced in foreign key constraint does not exist"),
                                )
                            })
                        })
                        .collect::<SqlResult<Vec<usize>>>()?;
                    foreign_keys.push(ForeignKeySpec::from_ast(
                        fk.name.as_ref().map(ident_name),
                        cols,
                        fk,
                    )?);
                }
                TableConstraint::Check(ck) => {
                    checks.push((ck.name.as_ref().map(ident_name), None, (*ck.expr).clone()))
                }
                other => {
                    return Err(SqlError::unsupported(format!(
                        "table constraint {other} is not supported yet"
                    )))
                }
            }
        }
        for &i in &primary_key {
            if !crate::sql::index_ddl::keyable(&columns[i].ty) {
                return Err(SqlError::unsupported(format!(
                    "type {} cannot be part of a primary key",
                    columns[i].ty.pg_name()
                )));
            }
        }
        if columns.is_empty() {
            return Err(SqlError::unsupported(
                "tables without columns are not supported",
            ));
        }
        let id = FIRST_USER_TABLE_ID + self.db.entropy.u64() % (u64::MAX - FIRST_USER_TABLE_ID);
        let oid = weft_engine::schema::oid_for_table_id(id);
        let mut owned = Vec::new();
        for (n, (i, opts)) in sequences.iter().enumerate() {
            let col = &mut columns[*i];
            let seq_name = format!("{name}_{}_seq", col.name);
            if col.default.is_some() {
                return Err(SqlError::syntax(format!(
                    "multiple default values specified for column \"{}\" of table \"{name}\"",
                    col.name
                )));
            }
            if self.sequence_def(txn, &seq_name).await?.is_some() {
                return Err(SqlError::new(
                    codes::DUPLICATE_TABLE,
                    format!("relation \"{seq_name}\" already exists"),
                ));
            }
            let mut seq = crate::catalog::sequences::SeqDef::new(
                seq_name.clone(),
                oid + 4 + (n as u32 % 12),
                col.ty.clone(),
                1,
            );
            crate::catalog::sequences::apply_options(&mut seq, opts)?;
            seq.owned_by = Some((name.clone(), col.name.clone()));
            seq.owner = crate::catalog::grants::stored_owner(&self.meta.current_role());
            col.default = Some(format!("nextval('{seq_name}')"));
            owned.push(seq);
        }
        for seq in &owned {
            crate::catalog::sequences::put(self.db.as_ref(), txn, &seq.name, Some(seq))?;
        }
        let mut def = TableDef {
            id,
            name: name.clone(),
            columns,
            primary_key,
            oid,
            indexes: Vec::new(),
            checks: Vec::new(),
            foreign_keys: Vec::new(),
            referenced_by: Vec::new(),
            comment: None,
            pkey_name,
            owner: crate::catalog::grants::stored_owner(&self.meta.current_role()),
            acl: None,
        };
        self.table_constraints(txn, &mut def, uniques, checks)
            .await?;
        if !foreign_keys.is_empty() {
            let mut taken: Vec<String> = def
                .indexes
                .iter()
                .map(|i| i.name.clone())
                .chain(def.checks.iter().map(|c| c.name.clone()))
                .collect();
            self.add_foreign_keys(txn, &mut def, foreign_keys, &mut taken)
                .await?;
        }
        // A DEFAULT that does not parse is an error now, not at the first INSERT.
        let defaults = self.db.column_defaults(&def);
        for c in &def.columns {
            if c.default.is_some() && !defaults.contains_key(&c.name) {
                return Err(SqlError::syntax(format!(
                    "invalid DEFAULT expression for column \"{}\"",
                    c.name
                )));
            }
        }
        self.put_table_def(txn, &def)?;
        Ok(Outcome::Command(CommandTag::new("CREATE TABLE")))
    }

    pub async fn drop_tables(
        &self,
        txn: &mut Txn,
        names: &[ObjectName],
        if_exists: bool,
        cascade: bool,
        notices: &mut Vec<Notice>,
    ) -> SqlResult<Outcome> {
        let dropping: Vec<String> = names.iter().filter_map(|n| table_name(n).ok()).collect();
        for n in names {
            let name = table_name(n)?;
            let catalog = txn.overlay(txn.database.catalog);
            let found = self
                .db
                .lookup_table(txn.database, txn.read_ts()?, catalog.as_deref(), &name)
                .await?;
            if found.is_none() {
                let view = self.view_def(txn, &name).await?;
                if view.is_some() {
                    return Err(SqlError::new(
                        codes::WRONG_OBJECT_TYPE,
                        format!("\"{name}\" is not a table"),
                    )
                    .with_hint("Use DROP VIEW to remove a view."));
                }
                if if_exists {
                    notices.push(Notice {
                        severity: "NOTICE",
                        code: "00000",
                        message: format!("table \"{name}\" does not exist, skipping"),
                    });
                    continue;
                }
                return Err(SqlError::new(
                    codes::UNDEFINED_TABLE,
                    format!("table \"{name}\" does not exist"),
                ));
            }
            if let Some(def) = &found {
                self.drop_references(txn, def, &dropping, cascade, notices)
                    .await?;
            }
            self.drop_dependent_views(txn, &name, &dropping, cascade, notices)
                .await?;
            txn.schema_keys.insert(catalog_key(&name));
            txn.put(
                &self.db.limits,
                txn.database.catalog,
                &catalog_schema(),
                catalog_key(&name),
                None,
            )?;
            // The sequences its SERIAL and IDENTITY columns own go with it.
            if let Some(def) = found {
                for s in self.default_sequences(txn, &def).await? {
                    if s.owned_by.as_ref().is_some_and(|(t, _)| *t == name) {
                        crate::catalog::sequences::put(self.db.as_ref(), txn, &s.name, None)?;
                    }
                }
            }
        }
        Ok(Outcome::Command(CommandTag::new("DROP TABLE")))
    }

    /// The sequences the table's column defaults draw from (SERIAL and IDENTITY columns'
    /// among them), as the transaction sees them.
    pub(crate) async fn default_sequences(
        &self,
        txn: &Txn,
        def: &TableDef,
    ) -> SqlResult<Vec<crate::catalog::sequences::SeqDef>> {
        let mut out = Vec::new();
        for c in &def.columns {
            let Some(seq) = c
                .default
                .as_deref()
                .and_then(crate::catalog::sequences::default_sequence)
            else {
                continue;
            };
            if let Some(s) = self.sequence_def(txn, seq).await? {
                out.push(s);
            }
        }
        Ok(out)
    }

    /// Writes a table's definition into the catalog (transactional DDL), and makes the
    /// transaction depend on it.
    pub(crate) fn put_table_def(&self, txn: &mut Txn, def: &TableDef) -> SqlResult<()> {
        let row = vec![
            ScalarValue::Utf8(Some(def.name.clone())),
            ScalarValue::Utf8(Some(def.to_json())),
        ];
        txn.schema_keys.insert(catalog_key(&def.name));
        txn.put(
            &self.db.limits,
            txn.database.catalog,
            &catalog_schema(),
            catalog_key(&def.name),
            Some(Arc::new(row)),
        )?;
        Ok(())
    }

    /// `TRUNCATE`: each table gets a fresh table id under the same definition, as
    /// PostgreSQL gives it a new relfilenode. O(1) whatever the table holds, transactional
    /// (a rollback keeps the rows), and a concurrent writer of the table conflicts with it
    /// (40001 / OC001). The old id's rows stay invisible in storage, like a dropped table's.
    pub async fn create_sequence(
        &self,
        txn: &mut Txn,
        name: &ObjectName,
        if_not_exists: bool,
        data_type: Option<&ast::DataType>,
        options: &[ast::SequenceOptions],
        notices: &mut Vec<Notice>,
    ) -> SqlResult<Outcome> {
        let name = table_name(name)?;
        self.check_creation(txn, &name, "sequence").await?;
        let read_ts = txn.read_ts()?;
        let catalog = txn.overlay(txn.database.catalog);
        let taken = self.sequence_def(txn, &name).await?.is_some()
            || self
                .db
                .lookup_table(txn.database, read_ts, catalog.as_deref(), &name)
                .await?
                .is_some();
        if taken {
            if if_not_exists {
                notices.push(Notice {
                    severity: "NOTICE",
                    code: "42P07",
                    message: format!("relation \"{name}\" already exists, skipping"),
                });
                return Ok(Outcome::Command(CommandTag::new("CREATE SEQUENCE")));
            }
            return Err(SqlError::new(
                codes::DUPLICATE_TABLE,
                format!("relation \"{name}\" already exists"),
            ));
        }
        let ty = match data_type {
            None => SqlType::BigInt,
            Some(t) => match SqlType::from_ast(t) {
                Ok(t @ (SqlType::SmallInt | SqlType::Integer | SqlType::BigInt)) => t,
                _ => {
                    return Err(SqlError::new(
                        codes::INVALID_PARAMETER_VALUE,
                        "sequence type must be smallint, integer, or bigint",
                    ))
                }
            },
        };
        let id = FIRST_USER_TABLE_ID + self.db.entropy.u64() % (u64::MAX - FIRST_USER_TABLE_ID);
        let mut seq = crate::catalog::sequences::SeqDef::new(
            name.clone(),
            weft_engine::schema::oid_for_table_id(id),
            ty,
            1,
        );
        crate::catalog::sequences::apply_options(&mut seq, options)?;
        seq.owner = crate::catalog::grants::stored_owner(&self.meta.current_role());
        crate::catalog::sequences::put(self.db.as_ref(), txn, &name, Some(&seq))?;
        Ok(Outcome::Command(CommandTag::new("CREATE SEQUENCE")))
    }

    pub async fn drop_sequences(
        &self,
        txn: &mut Txn,
        names: &[ObjectName],
        if_exists: bool,
        notices: &mut Vec<Notice>,
    ) -> SqlResult<Outcome> {
        for n in names {
            let name = table_name(n)?;
            let found = self.sequence_def(txn, &name).await?;
            match found {
                None if if_exists => notices.push(Notice {
                    severity: "NOTICE",
                    code: "00000",
                    message: format!("sequence \"{name}\" does not exist, skipping"),
                }),
                None => {
                    return Err(SqlError::new(
                        codes::UNDEFINED_TABLE,
                        format!("sequence \"{name}\" does not exist"),
                    ))
                }
                Some(s) => {
                    if let Some((t, c)) = &s.owned_by {
                        return Err(SqlError::new(
                            "2BP01",
                            format!(
                                "cannot drop sequence {name} because other objects depend on it"
                            ),
                        )
                        .with_detail(format!(
                            "default value for column {c} of table {t} depends on sequence {name}"
                        ))
                        .with_hint("Drop the table, or the column's default, first."));
                    }
                    crate::catalog::sequences::put(self.db.as_ref(), txn, &name, None)?;
                }
            }
        }
        Ok(Outcome::Command(CommandTag::new("DROP SEQUENCE")))
    }

    pub async fn truncate(&self, txn: &mut Txn, t: &ast::Truncate) -> SqlResult<Outcome> {
        if t.partitions.is_some() || t.on_cluster.is_some() {
            return Err(SqlError::unsupported(
                "TRUNCATE with partitions or ON CLUSTER is not supported",
            ));
        }
        let restart = matches!(t.identity, Some(ast::TruncateIdentityOption::Restart));
        let truncating: Vec<String> = t
            .table_names
            .iter()
            .filter_map(|n| table_name(&n.name).ok())
            .collect();
        for target in &t.table_names {
            let name = table_name(&target.name)?;
            let catalog = txn.overlay(txn.database.catalog);
            let Some(def) = self
                .db
                .lookup_table(txn.database, txn.read_ts()?, catalog.as_deref(), &name)
                .await?
            else {
                if t.if_exists {
                    continue;
                }
                return Err(SqlError::new(
                    codes::UNDEFINED_TABLE,
                    format!("relation \"{name}\" does not exist"),
                ));
            };
            if restart {
                // RESTART IDENTITY: the sequences its columns own start over, with the
                // truncation (nextval's blocks on every node are past: they restart too,
                // because the definition they were reserved under is replaced).
                for mut s in self.default_sequences(txn, &def).await? {
                    s.last = None;
                    crate::catalog::sequences::put(self.db.as_ref(), txn, &s.name, Some(&s))?;
                    crate::catalog::sequences::forget(&self.db, &s.name);
                }
            }
            // A table that other tables reference is truncated only with them (or
            // CASCADE, which weft does not do), as in PostgreSQL.
            if let Some(child) = def
                .referenced_by
                .iter()
                .find(|c| **c != def.name && !truncating.contains(*c))
            {
                return Err(SqlError::unsupported(
                    "cannot truncate a table referenced in a foreign key constraint",
                )
                .with_detail(format!("Table \"{child}\" references \"{}\".", def.name))
                .with_hint(format!(
                    "Truncate table \"{child}\" at the same time, or use TRUNCATE ... CASCADE."
                )));
            }
            let mut fresh = (*def).clone();
            // A truncated table keeps its object id, as in PostgreSQL.
            fresh.oid = def.oid();
            while fresh.id == def.id {
                fresh.id =
                    FIRST_USER_TABLE_ID + self.db.entropy.u64() % (u64::MAX - FIRST_USER_TABLE_ID);
            }
            // Its indexes start empty too.
            for idx in fresh.indexes.iter_mut() {
                idx.id = self.fresh_index_ids().0;
            }
            self.put_table_def(txn, &fresh)?;
        }
        Ok(Outcome::Command(CommandTag::new("TRUNCATE TABLE")))
    }

    // ---------------------------------------------------------------- DML
}
