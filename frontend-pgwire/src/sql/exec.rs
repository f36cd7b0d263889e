//! The executor: a session's DataFusion context, planning at the transaction's read
//! timestamp, queries and row locks, and the helpers DDL ([`crate::sql::ddl`]), DML
//! ([`crate::sql::dml`]) and COPY ([`crate::sql::copy_exec`]) share.
//!
//! Reads are DataFusion plans over the storage node at the transaction's read timestamp,
//! overlaid with its own writes.

use std::collections::HashMap;
use std::sync::Arc;

use crate::sql::outcome::Outcome;
use arrow::array::{Array, BinaryArray, RecordBatch};
use arrow::datatypes::SchemaRef;
use datafusion::common::ParamValues;
use datafusion::logical_expr::LogicalPlan;
use datafusion::prelude::SessionContext;
use datafusion::scalar::ScalarValue;
use datafusion::sql::parser::Statement as DFStatement;
use datafusion::sql::sqlparser::ast::{self, Expr as SqlExpr, ObjectName, Statement, TableFactor};
use weft_engine::key::{catalog_key, encode_key};
use weft_engine::row::{batch_rows, Row};
use weft_engine::schema::{TableDef, KEY_COLUMN};
use weft_engine::SqlType;

use crate::catalog::db::Db;
use crate::catalog::txn::{Isolation, Txn};
use crate::catalog::view::View;
use crate::error::{codes, SqlError, SqlResult};

/// A session's DataFusion context, its state (taken once, for turning SQL into logical
/// plans without cloning every function registry each time), and its `nextval`.
pub(crate) type Planning = (
    SessionContext,
    datafusion::execution::SessionState,
    Arc<datafusion::logical_expr::ScalarUDF>,
);

pub struct Executor {
    pub db: Arc<Db>,
    /// The session's DataFusion context and its state (taken once, for turning SQL into
    /// logical plans without cloning every function registry each time), made when the
    /// session first plans a statement: an idle connection, or one that only runs point
    /// reads and writes, never pays for them. Each statement registers weft's catalog at its
    /// own read timestamp before it is planned ([`crate::sql::context::plan_through`]).
    planning: std::sync::OnceLock<Planning>,
    /// What catalog tables and system functions know of the session.
    pub meta: Arc<crate::catalog::session_meta::SessionMeta>,
    /// Partial indexes' predicates as the session has compiled them
    /// ([`crate::sql::partial_index`]), by (table id, index id, column count), each with the
    /// text it was compiled from.
    pub(crate) predicates:
        std::sync::Mutex<std::collections::HashMap<(u64, u64, usize), CompiledPredicate>>,
}

pub use crate::sql::names::ident_name;

/// A partial index's predicate compiled, and the text it was compiled from.
pub(crate) type CompiledPredicate = (String, Arc<dyn datafusion::physical_expr::PhysicalExpr>);

/// The relation key ([`weft_engine::schema::relation_key`]) an object name means: `t` and
/// `public.t` are `t`, `s.t` (and `db.s.t`) is `s.t`. Unqualified names have been resolved
/// under the session's `search_path` before the statement runs
/// ([`crate::sql::search_path`]).
pub fn table_name(name: &ObjectName) -> SqlResult<String> {
    let parts: Vec<String> = name
        .0
        .iter()
        .map(|p| match p.as_ident() {
            Some(id) => Ok(ident_name(id)),
            None => Err(SqlError::syntax(format!("unsupported name {name}"))),
        })
        .collect::<SqlResult<_>>()?;
    match parts.as_slice() {
        [] => Err(SqlError::syntax("empty name")),
        [name] => Ok(name.clone()),
        [.., schema, name] => {
            if parts.len() > 3 {
                return Err(SqlError::syntax(format!(
                    "improper qualified name (too many dotted names): {}",
                    parts.join(".")
                )));
            }
            Ok(weft_engine::schema::relation_key(schema, name))
        }
    }
}

pub(crate) fn bind(plan: LogicalPlan, params: Option<&ParamValues>) -> SqlResult<LogicalPlan> {
    match params {
        Some(p) => Ok(plan.with_param_values(p.clone())?),
        None => Ok(plan),
    }
}

pub(crate) fn quote(s: &str) -> String {
    format!("\"{}\"", s.replace('"', "\"\""))
}

impl Executor {
    pub fn new(db: Arc<Db>) -> Executor {
        Executor {
            db,
            planning: std::sync::OnceLock::new(),
            meta: Arc::default(),
            predicates: Default::default(),
        }
    }

    pub(crate) fn planning(&self) -> &Planning {
        self.planning.get_or_init(|| {
            let (ctx, nextval) = crate::sql::context::session_context(&self.db, &self.meta);
            let state = ctx.state();
            (ctx, state, nextval)
        })
    }

    /// What a statement of `txn` reads (UPDATE and DELETE see `dml_target`'s key column).
    pub(crate) fn view_of(txn: &Txn, dml_target: Option<&str>) -> SqlResult<View> {
        Ok(View {
            read_ts: txn.read_ts()?,
            tables: txn.database,
            overlays: txn
                .writes
                .iter()
                .map(|(id, b)| (*id, b.overlay.clone()))
                .collect(),
            dml_target: dml_target.map(str::to_string),
            reads: (txn.isolation == Isolation::Serializable).then(|| txn.reads.clone()),
        })
    }

    /// Plans a statement against the transaction's view of the database.
    pub async fn plan(
        &self,
        txn: &Txn,
        stmt: Statement,
        dml_target: Option<&str>,
    ) -> SqlResult<LogicalPlan> {
        let mut stmt = stmt;
        self.expand_views(txn, &mut stmt).await?;
        crate::sql::names::disambiguate(&mut stmt);
        self.group_by_keys(txn, &mut stmt).await;
        let view = Self::view_of(txn, dml_target)?;
        self.note_pending_sequences(&view).await?;
        if crate::catalog::session_meta::calls_catalog_function(&stmt) {
            self.meta.refresh(&self.db, &view).await?;
        }
        let (ctx, state, nextval) = self.planning();
        crate::sql::context::plan_through(ctx, &self.db, view, self.meta.clone(), nextval.clone());
        Ok(state
            .statement_to_plan(DFStatement::Statement(Box::new(stmt)))
            .await?)
    }

    /// Tells the session's `nextval` which sequences the transaction created and has not
    /// committed (only a transaction that wrote sequences has any).
    async fn note_pending_sequences(&self, view: &View) -> SqlResult<()> {
        let Some(own) = view.overlays.get(&view.tables.sequences) else {
            self.meta.set_pending_sequences(Vec::new());
            return Ok(());
        };
        let mut pending = Vec::new();
        for (key, row) in own.iter() {
            let Some(row) = row else { continue };
            let def: crate::catalog::sequences::SeqDef =
                crate::catalog::systable::parse(row, "sequence")?;
            let committed = self
                .db
                .storage
                .get(view.tables.sequences, key, view.read_ts)
                .await?;
            if committed.is_none() {
                pending.push(def);
            }
        }
        self.meta.set_pending_sequences(pending);
        Ok(())
    }

    /// A GROUP BY that holds a table's primary key also groups by the table's other
    /// columns (see [`crate::sql::group_by_key`]).
    pub(crate) async fn group_by_keys(&self, txn: &Txn, stmt: &mut Statement) {
        let needed = crate::sql::group_by_key::tables_needed(stmt);
        if needed.is_empty() {
            return;
        }
        let mut tables = HashMap::new();
        for name in needed {
            // Not a user table (a catalog view, a CTE): nothing to add for it.
            let Ok(def) = self.table_def(txn, &name).await else {
                continue;
            };
            let columns = def.columns.iter().map(|c| c.name.clone()).collect();
            let key = def
                .primary_key
                .iter()
                .map(|&i| def.columns[i].name.clone())
                .collect();
            tables.insert(name, crate::sql::group_by_key::KeyedTable { columns, key });
        }
        crate::sql::group_by_key::extend(stmt, &tables);
    }

    /// Runs a plan of the session's own context to its end, its rows reserved from the
    /// statement's memory (53200 beyond it).
    pub async fn run_plan(&self, plan: LogicalPlan) -> SqlResult<(SchemaRef, Vec<RecordBatch>)> {
        let schema = crate::sql::origins::schema_with_origins(&plan);
        // A fresh copy of the state, stamped with this statement's start time (now()).
        let state = self.planning().0.state();
        let task = crate::sql::stream::query_task(&state, self.db.memory.query_max)?;
        let physical = state.create_physical_plan(&plan).await?;
        Ok((
            schema,
            crate::sql::stream::run_to_end(physical, task).await?,
        ))
    }

    /// Starts a plan of the session's own context (see [`crate::sql::stream`]).
    pub async fn stream_plan(
        &self,
        plan: LogicalPlan,
        pin: weft_engine::storage::ReadPin,
    ) -> SqlResult<crate::sql::outcome::RowStream> {
        let schema = crate::sql::origins::schema_with_origins(&plan);
        let state = self.planning().0.state();
        let task = crate::sql::stream::query_task(&state, self.db.memory.query_max)?;
        let physical = state.create_physical_plan(&plan).await?;
        crate::sql::stream::start(schema, physical, task, pin).await
    }

    pub async fn collect(
        ctx: &SessionContext,
        plan: LogicalPlan,
    ) -> SqlResult<(SchemaRef, Vec<RecordBatch>)> {
        let df = ctx.execute_logical_plan(plan).await?;
        let schema: SchemaRef = Arc::new(df.schema().as_arrow().clone());
        let batches = df.collect().await?;
        Ok((schema, batches))
    }

    /// A sequence as the transaction sees it.
    pub(crate) async fn sequence_def(
        &self,
        txn: &Txn,
        name: &str,
    ) -> SqlResult<Option<crate::catalog::sequences::SeqDef>> {
        crate::catalog::sequences::lookup(&self.db, txn.database, Some(txn), txn.read_ts()?, name)
            .await
    }

    /// A view as the transaction sees it.
    pub(crate) async fn view_def(
        &self,
        txn: &Txn,
        name: &str,
    ) -> SqlResult<Option<crate::catalog::views::ViewDef>> {
        crate::catalog::views::lookup(&self.db, txn.database, Some(txn), txn.read_ts()?, name).await
    }

    pub async fn table_def(&self, txn: &Txn, name: &str) -> SqlResult<Arc<TableDef>> {
        let catalog = txn.overlay(txn.database.catalog);
        let read_ts = txn.read_ts()?;
        if let Some(def) = self
            .db
            .lookup_table(txn.database, read_ts, catalog.as_deref(), name)
            .await?
        {
            return Ok(def);
        }
        // A view where a table is wanted (INSERT, UPDATE, DELETE, ALTER, COPY FROM).
        if self.view_def(txn, name).await?.is_some() {
            return Err(SqlError::unsupported(format!(
                "\"{name}\" is a view, and weft's views cannot be written or altered"
            ))
            .with_hint("write to the tables the view reads"));
        }
        Err(SqlError::new(
            codes::UNDEFINED_TABLE,
            format!("relation \"{name}\" does not exist"),
        ))
    }

    /// The row a key holds as the transaction sees it.
    pub(crate) async fn current(
        &self,
        txn: &Txn,
        table_id: u64,
        key: &[u8],
    ) -> SqlResult<Option<Arc<Row>>> {
        if let Some(own) = txn.own_write(table_id, key) {
            return Ok(own);
        }
        if txn.isolation == Isolation::Serializable {
            // A decision taken on this read (ON CONFLICT DO NOTHING skipping an existing
            // row) must be validated at COMMIT like any other read.
            txn.reads
                .record(table_id, weft_engine::provider::ReadSpan::Key(key.to_vec()));
        }
        Ok(self.db.storage.get(table_id, key, txn.read_ts()?).await?)
    }

    /// The stored rows of many keys as the transaction's snapshot sees them, without its
    /// own writes (the caller looks at those): a bulk load's uniqueness check.
    pub(crate) async fn current_many(
        &self,
        txn: &Txn,
        table_id: u64,
        keys: &[Vec<u8>],
    ) -> SqlResult<Vec<Option<Arc<Row>>>> {
        if txn.isolation == Isolation::Serializable {
            for key in keys {
                txn.reads
                    .record(table_id, weft_engine::provider::ReadSpan::Key(key.clone()));
            }
        }
        let keys: Vec<&[u8]> = keys.iter().map(Vec::as_slice).collect();
        Ok(self
            .db
            .storage
            .get_many(table_id, &keys, txn.read_ts()?)
            .await?)
    }

    pub(crate) fn row_key(&self, def: &TableDef, row: &Row) -> SqlResult<Vec<u8>> {
        row_key(&self.db, def, row)
    }

    pub(crate) fn pk_violation(def: &TableDef, row: &Row) -> SqlError {
        let cols: Vec<&str> = def
            .primary_key
            .iter()
            .map(|&i| def.columns[i].name.as_str())
            .collect();
        let vals: Vec<String> = def
            .primary_key
            .iter()
            .map(|&i| row[i].to_string())
            .collect();
        SqlError::new(
            codes::UNIQUE_VIOLATION,
            format!(
                "duplicate key value violates unique constraint \"{}\"",
                def.pkey_name()
            ),
        )
        .with_detail(format!(
            "Key ({})=({}) already exists.",
            cols.join(", "),
            vals.join(", ")
        ))
    }

    /// Converts produced batches into checked rows of the table (first `ncols` columns).
    pub(crate) fn batches_to_rows(def: &TableDef, batches: &[RecordBatch]) -> SqlResult<Vec<Row>> {
        let ncols = def.columns.len();
        let mut out = Vec::new();
        for batch in batches {
            let mut columns = Vec::with_capacity(ncols);
            for (i, c) in def.columns.iter().enumerate() {
                let col = batch.column(i);
                let want = c.ty.arrow_type();
                columns.push(if col.data_type() == &want {
                    col.clone()
                } else if c.ty == SqlType::Bytea
                    && matches!(col.data_type(), arrow::datatypes::DataType::Utf8)
                {
                    crate::types::values::decode_bytea_column(col)?
                } else if crate::types::arrays::element(&want).is_some()
                    && matches!(col.data_type(), arrow::datatypes::DataType::Utf8)
                {
                    crate::types::arrays::from_text(col, &want)?
                } else {
                    arrow::compute::cast(col, &want).map_err(|e| {
                        SqlError::from(datafusion::error::DataFusionError::ArrowError(
                            Box::new(e),
                            None,
                        ))
                    })?
                });
            }
            let schema = def.arrow_schema();
            let options =
                arrow::array::RecordBatchOptions::new().with_row_count(Some(batch.num_rows()));
            let cast = RecordBatch::try_new_with_options(
                Arc::new(arrow::datatypes::Schema::new(
                    schema
                        .fields()
                        .iter()
                        .map(|f| f.as_ref().clone().with_nullable(true))
                        .collect::<Vec<_>>(),
                )),
                columns,
                &options,
            )
            .map_err(|e| SqlError::internal(e.to_string()))?;
            for raw in batch_rows(&cast, ncols)? {
                let row = raw
                    .into_iter()
                    .zip(&def.columns)
                    .map(|(v, c)| crate::types::values::check_value(def, c, v))
                    .collect::<SqlResult<Row>>()?;
                out.push(row);
            }
        }
        Ok(out)
    }

    // ---------------------------------------------------------------- DDL

    pub async fn query(
        &self,
        txn: &mut Txn,
        stmt: Statement,
        params: Option<&ParamValues>,
    ) -> SqlResult<Outcome> {
        let mut stmt = stmt;
        let mut lock_target: Option<(String, Option<String>, Option<SqlExpr>)> = None;
        if let Statement::Query(q) = &mut stmt {
            if !q.locks.is_empty() {
                lock_target = Some(lock_target_of(q)?);
                q.locks.clear();
            }
        }
        let names = crate::sql::names::result_names(&stmt);
        let plan = self.plan(txn, stmt, None).await?;
        let plan = bind(plan, params)?;
        match &plan {
            LogicalPlan::Dml(_) | LogicalPlan::Ddl(_) | LogicalPlan::Copy(_) => {
                return Err(SqlError::unsupported("this statement is not supported"))
            }
            LogicalPlan::Statement(_) => {
                return Err(SqlError::unsupported("this statement is not supported"))
            }
            _ => {}
        }
        if lock_target.is_none() && !crate::sql::stream::is_volatile(&plan) {
            let pin = self.db.storage.pin(txn.read_ts()?);
            let mut rows = self.stream_plan(plan, pin).await?;
            rows.schema = crate::sql::names::rename(&rows.schema, names);
            return Ok(Outcome::Stream(rows));
        }
        let (schema, batches) = self.run_plan(plan).await?;
        if let Some((table, alias, selection)) = lock_target {
            self.lock_rows(txn, &table, alias.as_deref(), selection, params)
                .await?;
        }
        let schema = crate::sql::names::rename(&schema, names);
        Ok(Outcome::Rows { schema, batches })
    }

    /// `SELECT ... FOR UPDATE`: adds the keys of the selected rows to the transaction's
    /// conflict check, as if it had written them.
    pub(crate) async fn lock_rows(
        &self,
        txn: &mut Txn,
        table: &str,
        alias: Option<&str>,
        selection: Option<SqlExpr>,
        params: Option<&ParamValues>,
    ) -> SqlResult<()> {
        let def = self.table_def(txn, table).await?;
        let mut sql = format!("SELECT {} FROM {}", quote(KEY_COLUMN), quote(table));
        if let Some(a) = alias {
            sql.push_str(&format!(" AS {}", quote(a)));
        }
        if let Some(s) = selection {
            sql.push_str(&format!(" WHERE {s}"));
        }
        let stmt = datafusion::sql::parser::DFParser::parse_sql_with_dialect(
            &sql,
            &datafusion::sql::sqlparser::dialect::PostgreSqlDialect {},
        )
        .map_err(|e| SqlError::internal(e.to_string()))?
        .pop_front()
        .ok_or_else(|| SqlError::internal("lock query"))?;
        let DFStatement::Statement(stmt) = stmt else {
            return Err(SqlError::internal("lock query"));
        };
        let plan = self.plan(txn, *stmt, Some(table)).await?;
        let (_, batches) = self.run_plan(bind(plan, params)?).await?;
        for b in batches {
            let keys = b
                .column(0)
                .as_any()
                .downcast_ref::<BinaryArray>()
                .ok_or_else(|| SqlError::internal("key column"))?;
            for i in 0..keys.len() {
                txn.locked.push((def.id, keys.value(i).to_vec()));
            }
        }
        txn.schema_keys.insert(catalog_key(&def.name));
        Ok(())
    }
}

pub(crate) fn lock_target_of(
    q: &ast::Query,
) -> SqlResult<(String, Option<String>, Option<SqlExpr>)> {
    let ast::SetExpr::Select(sel) = q.body.as_ref() else {
        return Err(SqlError::unsupported("FOR UPDATE on a set operation"));
    };
    if sel.from.len() != 1 || !sel.from[0].joins.is_empty() {
        return Err(SqlError::unsupported("FOR UPDATE on more than one table"));
    }
    match &sel.from[0].relation {
        TableFactor::Table { name, alias, .. } => Ok((
            table_name(name)?,
            alias.as_ref().map(|a| ident_name(&a.name)),
            sel.selection.clone(),
        )),
        _ => Err(SqlError::unsupported(
            "FOR UPDATE on something other than a table",
        )),
    }
}

/// Rewrites `alias.col` to `col` in a DELETE's WHERE clause.
pub(crate) fn strip_qualifier(e: &mut SqlExpr, alias: &str) {
    use datafusion::sql::sqlparser::ast::visit_expressions_mut;
    let _ = visit_expressions_mut(e, |x| {
        if let SqlExpr::CompoundIdentifier(parts) = x {
            if parts.len() == 2 && ident_name(&parts[0]) == alias {
                *x = SqlExpr::Identifier(parts[1].clone());
            }
        }
        std::ops::ControlFlow::<()>::Continue(())
    });
}

/// Rewrites every `(VALUES (..), (..)) AS x(c1, c2)` inside a query as
/// `(SELECT .. AS c1, .. AS c2 UNION ALL SELECT ..) AS x`.
pub(crate) fn nested_values_to_union(q: &mut ast::Query) {
    use datafusion::sql::sqlparser::ast::{SetExpr, TableFactor};
    fn walk(q: &mut ast::Query) {
        let body = q.body.as_mut();
        walk_set(body);
    }
    fn walk_set(s: &mut SetExpr) {
        match s {
            SetExpr::Select(sel) => {
                for twj in sel.from.iter_mut() {
                    fix(&mut twj.relation);
                    for j in twj.joins.iter_mut() {
                        fix(&mut j.relation);
                    }
                }
            }
            SetExpr::Query(q) => walk(q),
            SetExpr::SetOperation { left, right, .. } => {
                walk_set(left);
                walk_set(right);
            }
            _ => {}
        }
    }
    fn fix(f: &mut TableFactor) {
        let TableFactor::Derived {
            subquery, alias, ..
        } = f
        else {
            return;
        };
        let names: Vec<String> = alias
            .as_ref()
            .map(|a| a.columns.iter().map(|c| c.name.to_string()).collect())
            .unwrap_or_default();
        if let SetExpr::Values(v) = subquery.body.as_ref() {
            let selects: Vec<String> = v
                .rows
                .iter()
                .map(|row| {
                    let items: Vec<String> = row
                        .iter()
                        .enumerate()
                        .map(|(i, e)| match names.get(i) {
                            Some(n) => format!("{e} AS {n}"),
                            None => format!("{e} AS column{}", i + 1),
                        })
                        .collect();
                    format!("SELECT {}", items.join(", "))
                })
                .collect();
            let sql = selects.join(" UNION ALL ");
            if let Ok(mut p) = datafusion::sql::sqlparser::parser::Parser::new(
                &datafusion::sql::sqlparser::dialect::PostgreSqlDialect {},
            )
            .try_with_sql(&sql)
            {
                if let Ok(parsed) = p.parse_query() {
                    **subquery = *parsed;
                    if let Some(a) = alias.as_mut() {
                        a.columns.clear();
                    }
                }
            }
        } else {
            walk(subquery);
        }
    }
    walk(q);
}

/// The key a row is stored under: its primary key's encoding, or a fresh row id for a
/// table without one.
pub(crate) fn row_key(db: &Db, def: &TableDef, row: &Row) -> SqlResult<Vec<u8>> {
    if def.primary_key.is_empty() {
        return Ok(db.next_rowid());
    }
    let values: Vec<&ScalarValue> = def.primary_key.iter().map(|&i| &row[i]).collect();
    encode_key(&values).map_err(|e| SqlError::new(codes::DATA_EXCEPTION, e.to_string()))
}
