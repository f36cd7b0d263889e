//! INSERT, UPDATE and DELETE: planned by DataFusion (so parameter types, casts and
//! defaults follow its rules); weft executes the plan's input and turns the produced rows
//! into buffered writes. UPDATE and DELETE plans see a hidden `_weft_key` column so every
//! produced row knows which stored row it replaces; RETURNING and ON CONFLICT.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use crate::sql::outcome::{CommandTag, Outcome};
use arrow::array::{Array, BinaryArray, RecordBatch};
use datafusion::common::ParamValues;
use datafusion::datasource::MemTable;
use datafusion::logical_expr::{Expr, ExprSchemable, LogicalPlan, WriteOp};
use datafusion::prelude::SessionContext;
use datafusion::scalar::ScalarValue;
use datafusion::sql::sqlparser::ast::{
    self, ConflictTarget, Expr as SqlExpr, FromTable, Ident, ObjectName, OnConflictAction,
    OnInsert, SelectItem, Statement, TableFactor, TableObject,
};
use weft_engine::key::catalog_key;
use weft_engine::row::{batch_row, rows_to_batch, Row};
use weft_engine::schema::{TableDef, KEY_COLUMN};
use weft_engine::SqlType;

use crate::catalog::txn::Txn;
use crate::error::{codes, SqlError, SqlResult};
use crate::sql::exec::bind;
use crate::sql::exec::nested_values_to_union;
use crate::sql::exec::quote;
use crate::sql::exec::strip_qualifier;
use crate::sql::exec::table_name;
use crate::sql::exec::Executor;
use crate::sql::names::ident_name;

/// `DEFAULT` as a value in a VALUES row.
pub(crate) fn is_default_keyword(e: &SqlExpr) -> bool {
    matches!(e, SqlExpr::Identifier(id) if id.quote_style.is_none() && id.value.eq_ignore_ascii_case("default"))
}

/// A column's default as an expression (NULL when it has none).
pub(crate) fn default_expr(c: &weft_engine::schema::ColumnDef) -> SqlResult<SqlExpr> {
    let Some(sql) = &c.default else {
        return Ok(SqlExpr::Value(ast::Value::Null.into()));
    };
    datafusion::sql::sqlparser::parser::Parser::new(
        &datafusion::sql::sqlparser::dialect::PostgreSqlDialect {},
    )
    .try_with_sql(sql)
    .and_then(|mut p| p.parse_expr())
    .map_err(|e| SqlError::internal(format!("default of column {}: {e}", c.name)))
}

/// PostgreSQL's 428C9 for a value given to a GENERATED ALWAYS identity column.
pub(crate) fn check_not_generated_always(c: &weft_engine::schema::ColumnDef) -> SqlResult<()> {
    if c.identity.as_deref() == Some("a") {
        return Err(SqlError::new(
            "428C9",
            format!(
                "cannot insert a non-DEFAULT value into column \"{}\"",
                c.name
            ),
        )
        .with_detail(format!(
            "Column \"{}\" is an identity column defined as GENERATED ALWAYS.",
            c.name
        ))
        .with_hint("Use OVERRIDING SYSTEM VALUE to override."));
    }
    Ok(())
}

impl Executor {
    pub async fn insert(
        &self,
        txn: &mut Txn,
        mut ins: ast::Insert,
        params: Option<&ParamValues>,
    ) -> SqlResult<Outcome> {
        let returning = ins.returning.take();
        let on = ins.on.take();
        let alias = ins.table_alias.take().map(|a| ident_name(&a.alias));
        let name = match &ins.table {
            TableObject::TableName(n) => table_name(n)?,
            _ => {
                return Err(SqlError::unsupported(
                    "INSERT into a table function or subquery",
                ))
            }
        };
        let def = self.table_def(txn, &name).await?;
        txn.schema_keys.insert(catalog_key(&def.name));
        if ins.columns.is_empty() {
            // PostgreSQL fills trailing columns left out of VALUES, or of a query's
            // select list, with their defaults.
            if let Some(width) = ins.source.as_ref().and_then(|q| source_width(&q.body)) {
                if width > def.columns.len() {
                    return Err(SqlError::syntax(
                        "INSERT has more expressions than target columns",
                    ));
                }
                if width < def.columns.len() {
                    ins.columns = def.columns[..width]
                        .iter()
                        .map(|c| ObjectName::from(vec![Ident::with_quote('"', c.name.clone())]))
                        .collect();
                }
            }
        }
        // `INSERT INTO t DEFAULT VALUES`: one row of defaults.
        if ins.source.is_none() && ins.columns.is_empty() && !def.columns.is_empty() {
            ins.columns = vec![ObjectName::from(vec![Ident::with_quote(
                '"',
                def.columns[0].name.clone(),
            )])];
            ins.source = Some(
                datafusion::sql::sqlparser::parser::Parser::new(
                    &datafusion::sql::sqlparser::dialect::PostgreSqlDialect {},
                )
                .try_with_sql("VALUES (DEFAULT)")
                .and_then(|mut p| p.parse_query())
                .map_err(|e| SqlError::internal(e.to_string()))?,
            );
        }
        let targets: Vec<Option<usize>> = if ins.columns.is_empty() {
            (0..def.columns.len()).map(Some).collect()
        } else {
            ins.columns
                .iter()
                .map(|c| table_name(c).ok().and_then(|n| def.column_index(&n)))
                .collect()
        };
        // '\x..' string literals bound for bytea columns are PostgreSQL's bytea input
        // syntax; DataFusion would store the literal's characters. `DEFAULT` in a row is the
        // column's default; a GENERATED ALWAYS identity column takes nothing else.
        if let Some(ast::SetExpr::Values(v)) = ins.source.as_mut().map(|q| q.body.as_mut()) {
            for row in v.rows.iter_mut() {
                for (i, e) in row.iter_mut().enumerate() {
                    if let Some(Some(ci)) = targets.get(i) {
                        if is_default_keyword(e) {
                            *e = default_expr(&def.columns[*ci])?;
                            continue;
                        }
                        check_not_generated_always(&def.columns[*ci])?;
                        if def.columns[*ci].ty == SqlType::Bytea {
                            bytea_literal(e)?;
                        }
                        check_values_literal(&def, *ci, e)?;
                    }
                }
            }
        } else if ins.source.is_some() {
            for ci in targets.iter().flatten() {
                check_not_generated_always(&def.columns[*ci])?;
            }
        }
        // DataFusion plans a VALUES list nested in INSERT's source against the target
        // table's columns; as a UNION ALL of SELECTs it is planned on its own.
        if let Some(src) = ins.source.as_mut() {
            if !matches!(src.body.as_ref(), ast::SetExpr::Values(_)) {
                nested_values_to_union(src);
            }
        }
        let plan = self.plan(txn, Statement::Insert(ins), None).await?;
        let LogicalPlan::Dml(dml) = plan else {
            return Err(SqlError::internal("INSERT did not plan as DML"));
        };
        check_assignment_types(&def, &dml.input)?;
        let input = bind(Arc::unwrap_or_clone(dml.input), params)?;
        let (_, batches) = self.run_plan(input).await?;
        let rows = Self::batches_to_rows(&def, &batches)?;

        let schema = def.arrow_schema();
        // The unique index an ON CONFLICT target names (`Some(None)`: the primary key).
        let mut target_index: Option<Option<String>> = None;
        let conflict = match &on {
            None => None,
            Some(OnInsert::OnConflict(oc)) => {
                if let Some(target) = &oc.conflict_target {
                    target_index = Some(self.check_conflict_target(&def, target)?);
                }
                Some(&oc.action)
            }
            Some(_) => return Err(SqlError::unsupported("ON DUPLICATE KEY UPDATE")),
        };
        let mut inserted: Vec<Arc<Row>> = Vec::new();
        let mut seen: HashSet<Vec<u8>> = HashSet::new();
        // (key, existing, excluded) for DO UPDATE
        let mut upserts: Vec<(Vec<u8>, Arc<Row>, Row)> = Vec::new();
        self.check_constraints(&def, &rows.iter().collect::<Vec<_>>())
            .await?;
        // The stored rows of every key at once (one storage read, not one per row: a
        // storage node in another process answers each read over the network). The
        // statement's own writes, made as the loop goes, are looked at first.
        let looks_up = !matches!(target_index, Some(Some(_))) && !def.primary_key.is_empty();
        let mut stored: Option<std::vec::IntoIter<Option<Arc<Row>>>> = None;
        if looks_up && rows.len() > 1 {
            let keys: SqlResult<Vec<Vec<u8>>> =
                rows.iter().map(|r| self.row_key(&def, r)).collect();
            if let Ok(keys) = keys {
                stored = Some(self.current_many(txn, def.id, &keys).await?.into_iter());
            }
        }
        for row in rows {
            let mut key = self.row_key(&def, &row)?;
            let prefetched = stored.as_mut().and_then(Iterator::next);
            let mut existing = match (&target_index, prefetched) {
                (Some(Some(_)), _) => None,
                _ if def.primary_key.is_empty() => None,
                (_, Some(stored_row)) => match txn.own_write(def.id, &key) {
                    Some(own) => own,
                    None => stored_row,
                },
                _ => self.current(txn, def.id, &key).await?,
            };
            // ON CONFLICT also acts on the unique indexes its target allows (all of them
            // without a target); without ON CONFLICT, writing the entry raises 23505.
            if existing.is_none() && conflict.is_some() && !def.indexes.is_empty() {
                let only = match &target_index {
                    Some(Some(name)) => Some(name.as_str()),
                    Some(None) => Some(""),
                    None => None,
                };
                if only != Some("") {
                    if let Some((k, old)) = self.unique_conflict(txn, &def, &row, only).await? {
                        key = k;
                        existing = Some(old);
                    }
                }
            }
            match (existing, conflict) {
                (None, _) => {
                    seen.insert(key.clone());
                    let row = Arc::new(row);
                    self.write_row(txn, &def, &schema, key, Some(row.clone()))
                        .await?;
                    inserted.push(row);
                }
                (Some(_), None) => return Err(Self::pk_violation(&def, &row)),
                (Some(_), Some(OnConflictAction::DoNothing)) => {}
                (Some(old), Some(OnConflictAction::DoUpdate(_))) => {
                    if !seen.insert(key.clone()) {
                        return Err(SqlError::new(
                            codes::CARDINALITY_VIOLATION,
                            "ON CONFLICT DO UPDATE command cannot affect row a second time",
                        )
                        .with_hint("Ensure that no rows proposed for insertion within the same command have duplicate constrained values."));
                    }
                    upserts.push((key, old, row));
                }
            }
        }
        if let (Some(OnConflictAction::DoUpdate(du)), false) = (conflict, upserts.is_empty()) {
            let updated = self
                .do_update(&def, alias.as_deref(), du, &upserts, params)
                .await?;
            let refs: Vec<&Row> = updated.iter().map(|(_, r)| r).collect();
            self.check_constraints(&def, &refs).await?;
            for (key, row) in updated {
                let row = Arc::new(row);
                self.write_row(txn, &def, &schema, key, Some(row.clone()))
                    .await?;
                inserted.push(row);
            }
        }
        let count = inserted.len();
        match returning {
            Some(items) => {
                self.returning(
                    "INSERT 0",
                    &def,
                    alias.as_deref(),
                    &items,
                    &inserted,
                    params,
                )
                .await
            }
            None => Ok(Outcome::Command(
                CommandTag::new("INSERT").with_oid(0).with_rows(count),
            )),
        }
    }

    pub(crate) fn check_conflict_target(
        &self,
        def: &TableDef,
        target: &ConflictTarget,
    ) -> SqlResult<Option<String>> {
        let found = match target {
            ConflictTarget::Columns(cols) => {
                let mut named: Vec<usize> = cols
                    .iter()
                    .filter_map(|c| def.column_index(&ident_name(c)))
                    .collect();
                named.sort();
                let sorted = |v: &[usize]| {
                    let mut v = v.to_vec();
                    v.sort();
                    v
                };
                if named.len() != cols.len() || named.is_empty() {
                    None
                } else if named == sorted(&def.primary_key) {
                    Some(None)
                } else {
                    def.indexes
                        .iter()
                        .find(|i| i.unique && i.predicate.is_none() && sorted(&i.columns) == named)
                        .map(|i| Some(i.name.clone()))
                }
            }
            ConflictTarget::OnConstraint(n) => match table_name(n) {
                Ok(c) if c == def.pkey_name() && !def.primary_key.is_empty() => Some(None),
                Ok(c) => def
                    .indexes
                    .iter()
                    .find(|i| i.unique && i.constraint && i.name == c)
                    .map(|i| Some(i.name.clone())),
                Err(_) => None,
            },
        };
        match found {
            Some(f) => Ok(f),
            None => Err(SqlError::new(
                "42P10",
                "there is no unique or exclusion constraint matching the ON CONFLICT specification",
            )),
        }
    }

    /// Evaluates `ON CONFLICT DO UPDATE SET ... WHERE ...` over (existing, excluded) pairs.
    pub(crate) async fn do_update(
        &self,
        def: &TableDef,
        alias: Option<&str>,
        du: &ast::DoUpdate,
        pairs: &[(Vec<u8>, Arc<Row>, Row)],
        params: Option<&ParamValues>,
    ) -> SqlResult<Vec<(Vec<u8>, Row)>> {
        let ctx = self.db.scratch_context();
        let schema = def.arrow_schema();
        let mut fields: Vec<arrow::datatypes::Field> = schema
            .fields()
            .iter()
            .map(|f| f.as_ref().clone().with_nullable(true))
            .collect();
        fields.push(arrow::datatypes::Field::new(
            "__weft_rn",
            arrow::datatypes::DataType::Int64,
            false,
        ));
        let with_rn = Arc::new(arrow::datatypes::Schema::new(fields));
        let existing: Vec<Row> = pairs
            .iter()
            .enumerate()
            .map(|(i, (_, old, _))| {
                let mut r = (**old).clone();
                r.push(ScalarValue::Int64(Some(i as i64)));
                r
            })
            .collect();
        let excluded: Vec<Row> = pairs
            .iter()
            .enumerate()
            .map(|(i, (_, _, new))| {
                let mut r = new.clone();
                r.push(ScalarValue::Int64(Some(i as i64)));
                r
            })
            .collect();
        let target_batch = rows_to_batch(&with_rn, &existing.iter().collect::<Vec<_>>())?;
        let excluded_batch = rows_to_batch(&with_rn, &excluded.iter().collect::<Vec<_>>())?;
        ctx.register_table(
            "__weft_target",
            Arc::new(MemTable::try_new(
                with_rn.clone(),
                vec![vec![target_batch]],
            )?),
        )?;
        ctx.register_table(
            "excluded",
            Arc::new(MemTable::try_new(
                with_rn.clone(),
                vec![vec![excluded_batch]],
            )?),
        )?;
        let t = quote(alias.unwrap_or(&def.name));
        let mut assigned: HashMap<String, String> = HashMap::new();
        for a in &du.assignments {
            let col = match &a.target {
                ast::AssignmentTarget::ColumnName(n) => table_name(n)?,
                _ => {
                    return Err(SqlError::unsupported(
                        "tuple assignment in ON CONFLICT DO UPDATE",
                    ))
                }
            };
            if def.column_index(&col).is_none() {
                return Err(SqlError::new(
                    codes::UNDEFINED_COLUMN,
                    format!(
                        "column \"{col}\" of relation \"{}\" does not exist",
                        def.relname()
                    ),
                ));
            }
            assigned.insert(col, a.value.to_string());
        }
        let projection: Vec<String> = def
            .columns
            .iter()
            .map(|c| match assigned.get(&c.name) {
                Some(e) => format!("({e}) AS {}", quote(&c.name)),
                None => format!("{t}.{}", quote(&c.name)),
            })
            .collect();
        let mut sql = format!(
            "SELECT {}, {t}.\"__weft_rn\" FROM \"__weft_target\" AS {t} JOIN \"excluded\" ON {t}.\"__weft_rn\" = \"excluded\".\"__weft_rn\"",
            projection.join(", ")
        );
        if let Some(w) = &du.selection {
            sql.push_str(&format!(" WHERE {w}"));
        }
        let plan = ctx.state().create_logical_plan(&sql).await?;
        let (_, batches) = Self::collect(&ctx, bind(plan, params)?).await?;
        let rows = Self::batches_to_rows(def, &batches)?;
        let mut rns: Vec<usize> = Vec::new();
        for b in &batches {
            let col = b.column(def.columns.len());
            let rn = arrow::compute::cast(col, &arrow::datatypes::DataType::Int64)
                .map_err(|e| SqlError::internal(e.to_string()))?;
            let rn = rn
                .as_any()
                .downcast_ref::<arrow::array::Int64Array>()
                .ok_or_else(|| SqlError::internal("row number"))?;
            rns.extend(rn.values().iter().map(|v| *v as usize));
        }
        let mut out = Vec::new();
        for (row, rn) in rows.into_iter().zip(rns) {
            let key = &pairs[rn].0;
            let new_key = self.row_key(def, &row)?;
            if &new_key != key {
                return Err(SqlError::unsupported(
                    "ON CONFLICT DO UPDATE may not change the primary key",
                ));
            }
            out.push((new_key, row));
        }
        Ok(out)
    }

    /// Plans a RETURNING list over rows of `def` (as a table named by the alias).
    pub async fn returning_plan(
        &self,
        def: &TableDef,
        alias: Option<&str>,
        items: &[SelectItem],
        rows: &[Arc<Row>],
    ) -> SqlResult<(SessionContext, LogicalPlan)> {
        let ctx = self.db.scratch_context();
        let schema = def.arrow_schema();
        let refs: Vec<&Row> = rows.iter().map(|r| r.as_ref()).collect();
        let batch = rows_to_batch(&schema, &refs)?;
        ctx.register_table(
            "__weft_returning",
            Arc::new(MemTable::try_new(schema, vec![vec![batch]])?),
        )?;
        let list: Vec<String> = items.iter().map(|i| i.to_string()).collect();
        let sql = format!(
            "SELECT {} FROM \"__weft_returning\" AS {}",
            list.join(", "),
            quote(alias.unwrap_or(&def.name))
        );
        let plan = ctx.state().create_logical_plan(&sql).await?;
        Ok((ctx, plan))
    }

    /// Evaluates a RETURNING list over the rows a statement (`command`) wrote.
    pub(crate) async fn returning(
        &self,
        command: &'static str,
        def: &TableDef,
        alias: Option<&str>,
        items: &[SelectItem],
        rows: &[Arc<Row>],
        params: Option<&ParamValues>,
    ) -> SqlResult<Outcome> {
        let (ctx, plan) = self.returning_plan(def, alias, items, rows).await?;
        let (schema, batches) = Self::collect(&ctx, bind(plan, params)?).await?;
        let schema = crate::sql::names::rename(&schema, crate::sql::names::item_names(items));
        Ok(Outcome::Returned {
            command,
            schema,
            batches,
        })
    }

    /// Runs the input of an UPDATE or DELETE plan: rows with the hidden key last.
    pub(crate) async fn dml_rows(
        &self,
        txn: &Txn,
        stmt: Statement,
        target: &str,
        params: Option<&ParamValues>,
    ) -> SqlResult<Vec<(Vec<u8>, Vec<RecordBatch>)>> {
        let plan = self.plan(txn, stmt, Some(target)).await?;
        let LogicalPlan::Dml(dml) = plan else {
            return Err(SqlError::internal("statement did not plan as DML"));
        };
        if !matches!(dml.op, WriteOp::Update | WriteOp::Delete) {
            return Err(SqlError::internal("unexpected DML kind"));
        }
        if let Ok(def) = self.table_def(txn, target).await {
            check_assignment_types(&def, &dml.input)?;
        }
        let input = bind(Arc::unwrap_or_clone(dml.input), params)?;
        let (schema, batches) = self.run_plan(input).await?;
        let key_idx = schema
            .index_of(KEY_COLUMN)
            .map_err(|_| SqlError::internal("DML input lacks the key column"))?;
        let mut out = Vec::new();
        for b in batches {
            let keys = b
                .column(key_idx)
                .as_any()
                .downcast_ref::<BinaryArray>()
                .ok_or_else(|| SqlError::internal("key column is not binary"))?
                .clone();
            for i in 0..b.num_rows() {
                if keys.is_null(i) {
                    return Err(SqlError::internal("null row key"));
                }
                out.push((keys.value(i).to_vec(), vec![b.slice(i, 1)]));
            }
        }
        Ok(out)
    }

    pub async fn update(
        &self,
        txn: &mut Txn,
        mut up: ast::Update,
        params: Option<&ParamValues>,
    ) -> SqlResult<Outcome> {
        let returning = up.returning.take();
        let (name, alias) = match &up.table.relation {
            TableFactor::Table { name, alias, .. } => (
                table_name(name)?,
                alias.as_ref().map(|a| ident_name(&a.name)),
            ),
            _ => {
                return Err(SqlError::unsupported(
                    "UPDATE of something other than a table",
                ))
            }
        };
        if !up.table.joins.is_empty() {
            return Err(SqlError::unsupported("UPDATE with joins"));
        }
        for a in &up.assignments {
            if let ast::AssignmentTarget::ColumnName(n) = &a.target {
                let c = table_name(n)?;
                if c == KEY_COLUMN {
                    return Err(SqlError::new(
                        codes::UNDEFINED_COLUMN,
                        format!("column \"{c}\" does not exist"),
                    ));
                }
            }
        }
        let def = self.table_def(txn, &name).await?;
        txn.schema_keys.insert(catalog_key(&def.name));
        for a in up.assignments.iter_mut() {
            if let ast::AssignmentTarget::ColumnName(n) = &a.target {
                let is_bytea = table_name(n)
                    .ok()
                    .and_then(|c| def.column_index(&c))
                    .is_some_and(|i| def.columns[i].ty == SqlType::Bytea);
                if is_bytea {
                    bytea_literal(&mut a.value)?;
                }
            }
        }
        let produced = self
            .dml_rows(txn, Statement::Update(up), &name, params)
            .await?;
        let schema = def.arrow_schema();
        let mut changes = Vec::with_capacity(produced.len());
        for (old_key, batch) in produced {
            let row = Self::batches_to_rows(&def, &batch)?
                .pop()
                .ok_or_else(|| SqlError::internal("empty update row"))?;
            changes.push((old_key, row));
        }
        let refs: Vec<&Row> = changes.iter().map(|(_, r)| r).collect();
        self.check_constraints(&def, &refs).await?;
        let mut written = Vec::with_capacity(changes.len());
        for (old_key, row) in changes {
            let new_key = if def.primary_key.is_empty() {
                old_key.clone()
            } else {
                self.row_key(&def, &row)?
            };
            if new_key != old_key {
                if self.current(txn, def.id, &new_key).await?.is_some() {
                    return Err(Self::pk_violation(&def, &row));
                }
                // The row moves to a new key: rows that reference it see an update.
                if !def.referenced_by.is_empty() {
                    if let Some(old) = self.current(txn, def.id, &old_key).await? {
                        self.on_referenced_change(txn, &def, &old, Some(&row))
                            .await?;
                    }
                }
                self.write_row_as(
                    txn,
                    &def,
                    &schema,
                    old_key,
                    None,
                    crate::sql::row_write::Follow::NOT_REFERENCED,
                )
                .await?;
            }
            let row = Arc::new(row);
            self.write_row(txn, &def, &schema, new_key, Some(row.clone()))
                .await?;
            written.push(row);
        }
        match returning {
            Some(items) => {
                self.returning("UPDATE", &def, alias.as_deref(), &items, &written, params)
                    .await
            }
            None => Ok(Outcome::Command(
                CommandTag::new("UPDATE").with_rows(written.len()),
            )),
        }
    }

    pub async fn delete(
        &self,
        txn: &mut Txn,
        mut del: ast::Delete,
        params: Option<&ParamValues>,
    ) -> SqlResult<Outcome> {
        let returning = del.returning.take();
        let (name, alias) = delete_target(&mut del)?;
        let def = self.table_def(txn, &name).await?;
        txn.schema_keys.insert(catalog_key(&def.name));
        let produced = self
            .dml_rows(txn, Statement::Delete(del), &name, params)
            .await?;
        let schema = def.arrow_schema();
        let count = produced.len();
        let mut deleted = Vec::new();
        for (key, batch) in produced {
            if returning.is_some() {
                deleted.push(Arc::new(batch_row(&batch[0], 0, def.columns.len())?));
            }
            self.write_row(txn, &def, &schema, key, None).await?;
        }
        match returning {
            Some(items) => {
                self.returning("DELETE", &def, alias.as_deref(), &items, &deleted, params)
                    .await
            }
            None => Ok(Outcome::Command(CommandTag::new("DELETE").with_rows(count))),
        }
    }

    // ---------------------------------------------------------------- queries
}

/// PostgreSQL refuses to assign a boolean to a number or a date (and the reverse) where
/// DataFusion would cast silently: 42804, naming the column. This checks the casts the
/// planner adds in the DML input's projection (UPDATE, INSERT ... SELECT); literals in
/// VALUES are checked on the statement itself (`check_values_literals`), since there a
/// planner cast cannot be told from one the user wrote.
pub(crate) fn check_assignment_types(def: &TableDef, input: &LogicalPlan) -> SqlResult<()> {
    let LogicalPlan::Projection(p) = input else {
        return Ok(());
    };
    for (i, e) in p.expr.iter().enumerate().take(def.columns.len()) {
        let mut inner = e;
        while let Expr::Alias(a) = inner {
            inner = &a.expr;
        }
        match inner {
            Expr::Cast(c) => check_cast(def, i, &c.expr, p.input.schema())?,
            Expr::TryCast(c) => check_cast(def, i, &c.expr, p.input.schema())?,
            _ => {}
        }
    }
    Ok(())
}

pub(crate) fn check_values_literal(def: &TableDef, column: usize, e: &SqlExpr) -> SqlResult<()> {
    let SqlExpr::Value(v) = e else { return Ok(()) };
    let source = match &v.value {
        ast::Value::Boolean(b) => Expr::Literal(ScalarValue::Boolean(Some(*b)), None),
        ast::Value::Number(..) => Expr::Literal(ScalarValue::Int64(Some(0)), None),
        _ => return Ok(()),
    };
    check_cast(def, column, &source, &datafusion::common::DFSchema::empty())
}

pub(crate) fn check_cast(
    def: &TableDef,
    column: usize,
    source: &Expr,
    schema: &datafusion::common::DFSchema,
) -> SqlResult<()> {
    use arrow::datatypes::DataType as D;
    let kind = |t: &D| -> u8 {
        match t {
            D::Boolean => 1,
            t if t.is_numeric() => 2,
            D::Date32 | D::Date64 | D::Timestamp(..) => 3,
            _ => 0,
        }
    };
    let Ok(from) = source.get_type(schema) else {
        return Ok(());
    };
    let col = &def.columns[column];
    let (a, b) = (kind(&from), kind(&col.ty.arrow_type()));
    if a != 0 && b != 0 && a != b {
        let from_name = match a {
            1 => "boolean",
            2 => "a number",
            _ => "a date or timestamp",
        };
        return Err(SqlError::new(
            codes::DATATYPE_MISMATCH,
            format!(
                "column \"{}\" is of type {} but expression is of type {from_name}",
                col.name,
                col.ty.pg_name()
            ),
        )
        .with_hint("You will need to rewrite or cast the expression."));
    }
    Ok(())
}

/// Rewrites a string literal in PostgreSQL's bytea input syntax to a hex literal.
pub(crate) fn bytea_literal(e: &mut SqlExpr) -> SqlResult<()> {
    if let SqlExpr::Value(v) = e {
        if let ast::Value::SingleQuotedString(s) | ast::Value::EscapedStringLiteral(s) = &v.value {
            let bytes = crate::types::values::decode_bytea(s)?;
            let hex: String = bytes.iter().map(|b| format!("{b:02X}")).collect();
            v.value = ast::Value::HexStringLiteral(hex);
        }
    }
    Ok(())
}

/// Validates a DELETE's target and removes its alias (DataFusion's DELETE planner does not
/// take one; qualified column references are unqualified instead). Returns the table name
/// and the alias, which RETURNING still sees.
pub fn delete_target(del: &mut ast::Delete) -> SqlResult<(String, Option<String>)> {
    let tables = match &del.from {
        FromTable::WithFromKeyword(t) | FromTable::WithoutKeyword(t) => t,
    };
    if tables.len() != 1 || !tables[0].joins.is_empty() {
        return Err(SqlError::unsupported("DELETE from more than one table"));
    }
    let (name, alias) = match &tables[0].relation {
        TableFactor::Table { name, alias, .. } => (
            table_name(name)?,
            alias.as_ref().map(|a| ident_name(&a.name)),
        ),
        _ => {
            return Err(SqlError::unsupported(
                "DELETE from something other than a table",
            ))
        }
    };
    if alias.is_some() {
        // DataFusion's DELETE planner does not take an alias: plan against the bare
        // name, RETURNING still sees the alias.
        let (FromTable::WithFromKeyword(t) | FromTable::WithoutKeyword(t)) = &mut del.from;
        if let TableFactor::Table { alias: a, .. } = &mut t[0].relation {
            if let (Some(al), Some(sel)) = (a.take(), del.selection.as_mut()) {
                strip_qualifier(sel, &ident_name(&al.name));
            }
        }
    }
    Ok((name, alias))
}

/// How many columns an INSERT's source gives, when its text says so: a VALUES list, or a
/// select list without `*` (of the first SELECT of a set operation).
fn source_width(body: &ast::SetExpr) -> Option<usize> {
    match body {
        ast::SetExpr::Values(v) => Some(v.rows.iter().map(|r| r.len()).max().unwrap_or(0)),
        ast::SetExpr::Select(sel) => sel
            .projection
            .iter()
            .all(|item| {
                matches!(
                    item,
                    ast::SelectItem::UnnamedExpr(_) | ast::SelectItem::ExprWithAlias { .. }
                )
            })
            .then_some(sel.projection.len()),
        ast::SetExpr::SetOperation { left, .. } => source_width(left),
        ast::SetExpr::Query(q) => source_width(&q.body),
        _ => None,
    }
}
