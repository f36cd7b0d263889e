//! Statement execution: DDL, DML and queries inside a transaction.
//!
//! Reads are DataFusion plans over the storage node at the transaction's read timestamp,
//! overlaid with its own writes. INSERT, UPDATE and DELETE are planned by DataFusion too
//! (so parameter types, casts and defaults follow its rules); weft executes the plan's
//! input and turns the produced rows into buffered writes. UPDATE and DELETE plans see a
//! hidden `_weft_key` column so every produced row knows which stored row it replaces.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use crate::sql::outcome::{CommandTag, Notice, Outcome};
use arrow::array::{Array, BinaryArray, RecordBatch};
use arrow::datatypes::SchemaRef;
use datafusion::common::ParamValues;
use datafusion::datasource::MemTable;
use datafusion::logical_expr::{Expr, ExprSchemable, LogicalPlan, WriteOp};
use datafusion::prelude::SessionContext;
use datafusion::scalar::ScalarValue;
use datafusion::sql::parser::Statement as DFStatement;
use datafusion::sql::sqlparser::ast::{
    self, ColumnOption, ConflictTarget, Expr as SqlExpr, FromTable, Ident, ObjectName,
    OnConflictAction, OnInsert, SelectItem, Statement, TableConstraint, TableFactor, TableObject,
};
use weft_engine::key::{catalog_key, encode_key};
use weft_engine::row::{batch_row, rows_to_batch, Row};
use weft_engine::schema::{
    catalog_schema, ColumnDef, TableDef, CATALOG_TABLE_ID, FIRST_USER_TABLE_ID, KEY_COLUMN,
    RESERVED_PREFIX,
};
use weft_engine::SqlType;

use crate::catalog::db::Db;
use crate::catalog::txn::{Isolation, Txn};
use crate::catalog::view::View;
use crate::error::{codes, SqlError, SqlResult};

pub struct Executor {
    pub db: Arc<Db>,
    /// The session's DataFusion context and its state (taken once, for turning SQL into
    /// logical plans without cloning every function registry each time), made when the
    /// session first plans a statement: an idle connection, or one that only runs point
    /// reads and writes, never pays for them. The session never changes its context after
    /// it is made; tables are reached through `view`.
    planning: std::sync::OnceLock<(SessionContext, datafusion::execution::SessionState)>,
    pub view: Arc<Mutex<Option<View>>>,
    /// What catalog tables and system functions know of the session.
    pub meta: Arc<crate::catalog::pgcatalog::SessionMeta>,
}

pub use crate::sql::names::ident_name;

/// `DEFAULT` as a value in a VALUES row.
fn is_default_keyword(e: &SqlExpr) -> bool {
    matches!(e, SqlExpr::Identifier(id) if id.quote_style.is_none() && id.value.eq_ignore_ascii_case("default"))
}

/// A column's default as an expression (NULL when it has none).
fn default_expr(c: &weft_engine::schema::ColumnDef) -> SqlResult<SqlExpr> {
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
fn check_not_generated_always(c: &weft_engine::schema::ColumnDef) -> SqlResult<()> {
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

/// The table name of an object name (`t`, `public.t`, `db.public.t`).
pub fn table_name(name: &ObjectName) -> SqlResult<String> {
    let parts: Vec<String> = name
        .0
        .iter()
        .map(|p| match p.as_ident() {
            Some(id) => Ok(ident_name(id)),
            None => Err(SqlError::syntax(format!("unsupported name {name}"))),
        })
        .collect::<SqlResult<_>>()?;
    if parts.len() > 1 {
        let schema = &parts[parts.len() - 2];
        if schema != "public" {
            return Err(SqlError::new(
                codes::UNDEFINED_OBJECT,
                format!("schema \"{schema}\" does not exist"),
            ));
        }
    }
    parts
        .last()
        .cloned()
        .ok_or_else(|| SqlError::syntax("empty name"))
}

fn bind(plan: LogicalPlan, params: Option<&ParamValues>) -> SqlResult<LogicalPlan> {
    match params {
        Some(p) => Ok(plan.with_param_values(p.clone())?),
        None => Ok(plan),
    }
}

fn quote(s: &str) -> String {
    format!("\"{}\"", s.replace('"', "\"\""))
}

impl Executor {
    pub fn new(db: Arc<Db>) -> Executor {
        Executor {
            db,
            planning: std::sync::OnceLock::new(),
            view: Arc::new(Mutex::new(None)),
            meta: Arc::default(),
        }
    }

    fn planning(&self) -> &(SessionContext, datafusion::execution::SessionState) {
        self.planning.get_or_init(|| {
            let ctx = crate::sql::context::session_context(
                &self.db,
                self.view.clone(),
                self.meta.clone(),
            );
            let state = ctx.state();
            (ctx, state)
        })
    }

    fn set_view(&self, txn: &Txn, dml_target: Option<&str>) {
        let view = View {
            read_ts: txn.read_ts.unwrap_or(0),
            overlays: txn
                .writes
                .iter()
                .map(|(id, b)| (*id, b.overlay.clone()))
                .collect(),
            dml_target: dml_target.map(str::to_string),
            reads: (txn.isolation == Isolation::Serializable).then(|| txn.reads.clone()),
        };
        *self.view.lock().unwrap_or_else(|e| e.into_inner()) = Some(view);
    }

    fn clear_view(&self) {
        *self.view.lock().unwrap_or_else(|e| e.into_inner()) = None;
    }

    /// Plans a statement against the transaction's view of the database.
    pub async fn plan(
        &self,
        txn: &Txn,
        stmt: Statement,
        dml_target: Option<&str>,
    ) -> SqlResult<LogicalPlan> {
        let mut stmt = stmt;
        crate::sql::names::disambiguate(&mut stmt);
        self.group_by_keys(txn, &mut stmt).await;
        self.set_view(txn, dml_target);
        if crate::catalog::pgcatalog::calls_catalog_function(&stmt) {
            let view = self.view.lock().unwrap_or_else(|e| e.into_inner()).clone();
            if let Some(view) = view {
                if let Err(e) = self.meta.refresh(&self.db, &view).await {
                    self.clear_view();
                    return Err(e.into());
                }
            }
        }
        let result = self
            .planning()
            .1
            .statement_to_plan(DFStatement::Statement(Box::new(stmt)))
            .await;
        self.clear_view();
        Ok(result?)
    }

    /// A GROUP BY that holds a table's primary key also groups by the table's other
    /// columns (see [`crate::sql::group_by_key`]).
    async fn group_by_keys(&self, txn: &Txn, stmt: &mut Statement) {
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

    /// Runs a plan of the session's own context.
    pub async fn run_plan(&self, plan: LogicalPlan) -> SqlResult<(SchemaRef, Vec<RecordBatch>)> {
        let schema = crate::sql::origins::schema_with_origins(&plan);
        // A fresh copy of the state, stamped with this statement's start time (now()).
        let state = self.planning().0.state();
        let physical = state.create_physical_plan(&plan).await?;
        let batches = datafusion::physical_plan::collect(physical, state.task_ctx()).await?;
        Ok((schema, batches))
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

    pub async fn table_def(&self, txn: &Txn, name: &str) -> SqlResult<Arc<TableDef>> {
        let catalog = txn.overlay(CATALOG_TABLE_ID);
        self.db
            .lookup_table(txn.read_ts.unwrap_or(0), catalog.as_deref(), name)
            .await?
            .ok_or_else(|| {
                SqlError::new(
                    codes::UNDEFINED_TABLE,
                    format!("relation \"{name}\" does not exist"),
                )
            })
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
        Ok(self
            .db
            .storage
            .get(table_id, key, txn.read_ts.unwrap_or(0))
            .await?)
    }

    pub(crate) fn row_key(&self, def: &TableDef, row: &Row) -> SqlResult<Vec<u8>> {
        if def.primary_key.is_empty() {
            return Ok(self.db.next_rowid());
        }
        let values: Vec<&ScalarValue> = def.primary_key.iter().map(|&i| &row[i]).collect();
        encode_key(&values).map_err(|e| SqlError::new(codes::DATA_EXCEPTION, e.to_string()))
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
                "duplicate key value violates unique constraint \"{}_pkey\"",
                def.name
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
            for r in 0..cast.num_rows() {
                let raw = batch_row(&cast, r, ncols)?;
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
        if name.starts_with(RESERVED_PREFIX) || name.starts_with("pg_") {
            return Err(SqlError::new(
                codes::INVALID_NAME,
                format!("table name \"{name}\" is reserved"),
            ));
        }
        let catalog = txn.overlay(CATALOG_TABLE_ID);
        if self
            .db
            .lookup_table(txn.read_ts.unwrap_or(0), catalog.as_deref(), &name)
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
            .map_err(|m| {
                if m.contains("not supported") {
                    SqlError::unsupported(m)
                } else {
                    SqlError::new(codes::SYNTAX_OR_ACCESS, m)
                }
            })?;
            let mut col = ColumnDef {
                name: cname.clone(),
                ty,
                nullable: true,
                default: None,
                identity: None,
            };
            if serial.is_some() {
                col.nullable = false;
                sequences.push((columns.len(), Vec::new()));
            }
            for opt in &c.options {
                match &opt.option {
                    ColumnOption::Null => col.nullable = true,
                    ColumnOption::NotNull => col.nullable = false,
                    ColumnOption::Default(e) => col.default = Some(e.to_string()),
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
                        if !matches!(
                            col.ty,
                            SqlType::SmallInt | SqlType::Integer | SqlType::BigInt
                        ) {
                            return Err(SqlError::new(
                                codes::DATATYPE_MISMATCH,
                                "identity column type must be smallint, integer, or bigint",
                            ));
                        }
                        col.identity = Some(
                            if matches!(generated_as, ast::GeneratedAs::Always) {
                                "a"
                            } else {
                                "d"
                            }
                            .to_string(),
                        );
                        col.nullable = false;
                        sequences
                            .push((columns.len(), sequence_options.clone().unwrap_or_default()));
                    }
                    ColumnOption::PrimaryKey(_) => {
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
                other => {
                    return Err(SqlError::unsupported(format!(
                        "table constraint {other} is not supported yet"
                    )))
                }
            }
        }
        for &i in &primary_key {
            let probe = ScalarValue::try_from(&columns[i].ty.arrow_type())
                .map_err(|e| SqlError::internal(e.to_string()))?;
            let ok = matches!(
                probe,
                ScalarValue::Int16(_)
                    | ScalarValue::Int32(_)
                    | ScalarValue::Int64(_)
                    | ScalarValue::Float32(_)
                    | ScalarValue::Float64(_)
                    | ScalarValue::Decimal128(..)
                    | ScalarValue::Utf8(_)
                    | ScalarValue::Binary(_)
                    | ScalarValue::Boolean(_)
                    | ScalarValue::Date32(_)
                    | ScalarValue::TimestampMicrosecond(..)
            );
            if !ok {
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
        let id = FIRST_USER_TABLE_ID + rand::random::<u64>() % (u64::MAX - FIRST_USER_TABLE_ID);
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
            if crate::catalog::sequences::lookup(
                self.db.as_ref(),
                Some(txn),
                txn.read_ts.unwrap_or(0),
                &seq_name,
            )
            .await?
            .is_some()
            {
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
            col.default = Some(format!("nextval('{seq_name}')"));
            owned.push(seq);
        }
        for seq in &owned {
            crate::catalog::sequences::put(self.db.as_ref(), txn, &seq.name, Some(seq))?;
        }
        let def = TableDef {
            id,
            name: name.clone(),
            columns,
            primary_key,
            oid,
        };
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
        notices: &mut Vec<Notice>,
    ) -> SqlResult<Outcome> {
        for n in names {
            let name = table_name(n)?;
            let catalog = txn.overlay(CATALOG_TABLE_ID);
            let found = self
                .db
                .lookup_table(txn.read_ts.unwrap_or(0), catalog.as_deref(), &name)
                .await?;
            if found.is_none() {
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
            txn.schema_keys.insert(catalog_key(&name));
            txn.put(
                &self.db.limits,
                CATALOG_TABLE_ID,
                &catalog_schema(),
                catalog_key(&name),
                None,
            )?;
            // The sequences its SERIAL and IDENTITY columns own go with it.
            if let Some(def) = found {
                for c in &def.columns {
                    if let Some(seq) = c
                        .default
                        .as_deref()
                        .and_then(crate::catalog::sequences::default_sequence)
                    {
                        let owned = crate::catalog::sequences::lookup(
                            self.db.as_ref(),
                            Some(txn),
                            txn.read_ts.unwrap_or(0),
                            seq,
                        )
                        .await?
                        .is_some_and(|s| s.owned_by.as_ref().is_some_and(|(t, _)| *t == name));
                        if owned {
                            crate::catalog::sequences::put(self.db.as_ref(), txn, seq, None)?;
                        }
                    }
                }
            }
        }
        Ok(Outcome::Command(CommandTag::new("DROP TABLE")))
    }

    /// Writes a table's definition into the catalog (transactional DDL), and makes the
    /// transaction depend on it.
    fn put_table_def(&self, txn: &mut Txn, def: &TableDef) -> SqlResult<()> {
        let row = vec![
            ScalarValue::Utf8(Some(def.name.clone())),
            ScalarValue::Utf8(Some(def.to_json())),
        ];
        txn.schema_keys.insert(catalog_key(&def.name));
        txn.put(
            &self.db.limits,
            CATALOG_TABLE_ID,
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
        let read_ts = txn.read_ts.unwrap_or(0);
        let catalog = txn.overlay(CATALOG_TABLE_ID);
        let taken = crate::catalog::sequences::lookup(self.db.as_ref(), Some(txn), read_ts, &name)
            .await?
            .is_some()
            || self
                .db
                .lookup_table(read_ts, catalog.as_deref(), &name)
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
        let id = FIRST_USER_TABLE_ID + rand::random::<u64>() % (u64::MAX - FIRST_USER_TABLE_ID);
        let mut seq = crate::catalog::sequences::SeqDef::new(
            name.clone(),
            weft_engine::schema::oid_for_table_id(id),
            ty,
            1,
        );
        crate::catalog::sequences::apply_options(&mut seq, options)?;
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
            let found = crate::catalog::sequences::lookup(
                self.db.as_ref(),
                Some(txn),
                txn.read_ts.unwrap_or(0),
                &name,
            )
            .await?;
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

    /// `COPY t [(cols)] FROM STDIN` (checks the target; the data comes later) and
    /// `COPY t [(cols)] | (query) TO STDOUT` (runs the query and renders the lines).
    pub async fn copy(
        &self,
        txn: &mut Txn,
        source: ast::CopySource,
        to: bool,
        target: ast::CopyTarget,
        options: &[ast::CopyOption],
        legacy: &[ast::CopyLegacyOption],
    ) -> SqlResult<Outcome> {
        let format = crate::sql::copy::CopyFormat::from_options(options, legacy)?;
        match (&target, to) {
            (ast::CopyTarget::Stdin, false) | (ast::CopyTarget::Stdout, true) => {}
            _ => {
                return Err(SqlError::unsupported(
                    "COPY to or from a file or program is not supported: use STDIN/STDOUT (psql's \\copy)",
                ))
            }
        }
        if !to {
            let ast::CopySource::Table {
                table_name: name,
                columns,
            } = source
            else {
                return Err(SqlError::syntax("COPY FROM needs a table"));
            };
            let name = table_name(&name)?;
            let def = self.table_def(txn, &name).await?;
            let cols: Vec<String> = if columns.is_empty() {
                def.columns.iter().map(|c| c.name.clone()).collect()
            } else {
                let mut cols = Vec::new();
                for c in &columns {
                    let n = ident_name(c);
                    if def.column_index(&n).is_none() {
                        return Err(SqlError::new(
                            codes::UNDEFINED_COLUMN,
                            format!("column \"{n}\" of relation \"{name}\" does not exist"),
                        ));
                    }
                    cols.push(n);
                }
                cols
            };
            return Ok(Outcome::CopyIn(Box::new(crate::sql::copy::CopyIn::new(
                name, cols, format,
            ))));
        }
        let query = match source {
            ast::CopySource::Query(q) => Statement::Query(q),
            ast::CopySource::Table {
                table_name: name,
                columns,
            } => {
                let list = if columns.is_empty() {
                    "*".to_string()
                } else {
                    columns
                        .iter()
                        .map(|c| quote(&ident_name(c)))
                        .collect::<Vec<_>>()
                        .join(", ")
                };
                let sql = format!("SELECT {list} FROM {}", quote(&table_name(&name)?));
                let mut stmts = datafusion::sql::sqlparser::parser::Parser::parse_sql(
                    &datafusion::sql::sqlparser::dialect::PostgreSqlDialect {},
                    &sql,
                )
                .map_err(|e| SqlError::syntax(e.to_string()))?;
                stmts
                    .pop()
                    .ok_or_else(|| SqlError::internal("empty COPY query"))?
            }
        };
        let Outcome::Rows { schema, batches } = self.query(txn, query, None).await? else {
            return Err(SqlError::internal("COPY's query returned no rows"));
        };
        Ok(Outcome::CopyOut {
            schema,
            batches,
            format,
        })
    }

    /// Inserts the records a COPY FROM parsed so far.
    pub async fn copy_rows(
        &self,
        txn: &mut Txn,
        copy: &mut crate::sql::copy::CopyIn,
    ) -> SqlResult<()> {
        if copy.records.is_empty() || self.copy_rows_direct(txn, copy).await? {
            return Ok(());
        }
        let cols = copy
            .columns
            .iter()
            .map(|c| quote(c))
            .collect::<Vec<_>>()
            .join(", ");
        let sql = format!("INSERT INTO {} ({cols}) VALUES (NULL)", quote(&copy.table));
        let mut stmts = datafusion::sql::sqlparser::parser::Parser::parse_sql(
            &datafusion::sql::sqlparser::dialect::PostgreSqlDialect {},
            &sql,
        )
        .map_err(|e| SqlError::internal(e.to_string()))?;
        let Some(Statement::Insert(mut ins)) = stmts.pop() else {
            return Err(SqlError::internal("COPY's INSERT did not parse"));
        };
        let records = std::mem::take(&mut copy.records);
        let n = records.len();
        if let Some(ast::SetExpr::Values(v)) = ins.source.as_mut().map(|q| q.body.as_mut()) {
            v.rows = records
                .into_iter()
                .map(|r| {
                    let row: Vec<SqlExpr> = r
                        .into_iter()
                        .map(|f| {
                            SqlExpr::Value(
                                match f {
                                    Some(s) => ast::Value::SingleQuotedString(s),
                                    None => ast::Value::Null,
                                }
                                .into(),
                            )
                        })
                        .collect();
                    ast::Parens::with_empty_span(row)
                })
                .collect();
        }
        self.insert(txn, ins, None).await?;
        copy.count += n;
        copy.uncommitted += n;
        Ok(())
    }

    pub async fn truncate(&self, txn: &mut Txn, t: &ast::Truncate) -> SqlResult<Outcome> {
        if t.partitions.is_some() || t.on_cluster.is_some() {
            return Err(SqlError::unsupported(
                "TRUNCATE with partitions or ON CLUSTER is not supported",
            ));
        }
        let restart = matches!(t.identity, Some(ast::TruncateIdentityOption::Restart));
        for target in &t.table_names {
            let name = table_name(&target.name)?;
            let catalog = txn.overlay(CATALOG_TABLE_ID);
            let Some(def) = self
                .db
                .lookup_table(txn.read_ts.unwrap_or(0), catalog.as_deref(), &name)
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
                for c in &def.columns {
                    if let Some(seq) = c
                        .default
                        .as_deref()
                        .and_then(crate::catalog::sequences::default_sequence)
                    {
                        if let Some(mut s) = crate::catalog::sequences::lookup(
                            self.db.as_ref(),
                            Some(txn),
                            txn.read_ts.unwrap_or(0),
                            seq,
                        )
                        .await?
                        {
                            s.last = None;
                            crate::catalog::sequences::put(self.db.as_ref(), txn, seq, Some(&s))?;
                            crate::catalog::sequences::forget(&self.db, seq);
                        }
                    }
                }
            }
            let mut fresh = (*def).clone();
            // A truncated table keeps its object id, as in PostgreSQL.
            fresh.oid = def.oid();
            while fresh.id == def.id {
                fresh.id =
                    FIRST_USER_TABLE_ID + rand::random::<u64>() % (u64::MAX - FIRST_USER_TABLE_ID);
            }
            self.put_table_def(txn, &fresh)?;
        }
        Ok(Outcome::Command(CommandTag::new("TRUNCATE TABLE")))
    }

    // ---------------------------------------------------------------- DML

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
            // PostgreSQL fills trailing columns left out of VALUES with their defaults.
            if let Some(ast::SetExpr::Values(v)) = ins.source.as_ref().map(|q| q.body.as_ref()) {
                let width = v.rows.iter().map(|r| r.len()).max().unwrap_or(0);
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
        let conflict = match &on {
            None => None,
            Some(OnInsert::OnConflict(oc)) => {
                if let Some(target) = &oc.conflict_target {
                    self.check_conflict_target(&def, target)?;
                }
                Some(&oc.action)
            }
            Some(_) => return Err(SqlError::unsupported("ON DUPLICATE KEY UPDATE")),
        };
        let mut inserted: Vec<Arc<Row>> = Vec::new();
        let mut seen: HashSet<Vec<u8>> = HashSet::new();
        // (key, existing, excluded) for DO UPDATE
        let mut upserts: Vec<(Vec<u8>, Arc<Row>, Row)> = Vec::new();
        for row in rows {
            let key = self.row_key(&def, &row)?;
            let existing = if def.primary_key.is_empty() {
                None
            } else {
                self.current(txn, def.id, &key).await?
            };
            match (existing, conflict) {
                (None, _) => {
                    seen.insert(key.clone());
                    let row = Arc::new(row);
                    txn.put(&self.db.limits, def.id, &schema, key, Some(row.clone()))?;
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
            for (key, row) in updated {
                let row = Arc::new(row);
                txn.put(&self.db.limits, def.id, &schema, key, Some(row.clone()))?;
                inserted.push(row);
            }
        }
        let count = inserted.len();
        match returning {
            Some(items) => {
                self.returning(&def, alias.as_deref(), &items, &inserted, params)
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
    ) -> SqlResult<()> {
        let ok = match target {
            ConflictTarget::Columns(cols) => {
                let mut named: Vec<usize> = cols
                    .iter()
                    .filter_map(|c| def.column_index(&ident_name(c)))
                    .collect();
                named.sort();
                let mut pk = def.primary_key.clone();
                pk.sort();
                named.len() == cols.len() && named == pk && !pk.is_empty()
            }
            ConflictTarget::OnConstraint(n) => table_name(n)
                .map(|c| c == format!("{}_pkey", def.name))
                .unwrap_or(false),
        };
        if ok {
            Ok(())
        } else {
            Err(SqlError::new(
                "42P10",
                "there is no unique or exclusion constraint matching the ON CONFLICT specification",
            ))
        }
    }

    /// Evaluates `ON CONFLICT DO UPDATE SET ... WHERE ...` over (existing, excluded) pairs.
    async fn do_update(
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
                        def.name
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

    /// Evaluates a RETURNING list over the rows a statement wrote.
    async fn returning(
        &self,
        def: &TableDef,
        alias: Option<&str>,
        items: &[SelectItem],
        rows: &[Arc<Row>],
        params: Option<&ParamValues>,
    ) -> SqlResult<Outcome> {
        let (ctx, plan) = self.returning_plan(def, alias, items, rows).await?;
        let (schema, batches) = Self::collect(&ctx, bind(plan, params)?).await?;
        let schema = crate::sql::names::rename(&schema, crate::sql::names::item_names(items));
        Ok(Outcome::Rows { schema, batches })
    }

    /// Runs the input of an UPDATE or DELETE plan: rows with the hidden key last.
    async fn dml_rows(
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
        let mut written = Vec::with_capacity(produced.len());
        for (old_key, batch) in produced {
            let row = Self::batches_to_rows(&def, &batch)?
                .pop()
                .ok_or_else(|| SqlError::internal("empty update row"))?;
            let new_key = if def.primary_key.is_empty() {
                old_key.clone()
            } else {
                self.row_key(&def, &row)?
            };
            if new_key != old_key {
                if self.current(txn, def.id, &new_key).await?.is_some() {
                    return Err(Self::pk_violation(&def, &row));
                }
                txn.put(&self.db.limits, def.id, &schema, old_key, None)?;
            }
            let row = Arc::new(row);
            txn.put(&self.db.limits, def.id, &schema, new_key, Some(row.clone()))?;
            written.push(row);
        }
        match returning {
            Some(items) => {
                self.returning(&def, alias.as_deref(), &items, &written, params)
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
            txn.put(&self.db.limits, def.id, &schema, key, None)?;
        }
        match returning {
            Some(items) => {
                self.returning(&def, alias.as_deref(), &items, &deleted, params)
                    .await
            }
            None => Ok(Outcome::Command(CommandTag::new("DELETE").with_rows(count))),
        }
    }

    // ---------------------------------------------------------------- queries

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
    async fn lock_rows(
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

/// PostgreSQL refuses to assign a boolean to a number or a date (and the reverse) where
/// DataFusion would cast silently: 42804, naming the column. This checks the casts the
/// planner adds in the DML input's projection (UPDATE, INSERT ... SELECT); literals in
/// VALUES are checked on the statement itself (`check_values_literals`), since there a
/// planner cast cannot be told from one the user wrote.
fn check_assignment_types(def: &TableDef, input: &LogicalPlan) -> SqlResult<()> {
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

fn check_values_literal(def: &TableDef, column: usize, e: &SqlExpr) -> SqlResult<()> {
    let SqlExpr::Value(v) = e else { return Ok(()) };
    let source = match &v.value {
        ast::Value::Boolean(b) => Expr::Literal(ScalarValue::Boolean(Some(*b)), None),
        ast::Value::Number(..) => Expr::Literal(ScalarValue::Int64(Some(0)), None),
        _ => return Ok(()),
    };
    check_cast(def, column, &source, &datafusion::common::DFSchema::empty())
}

fn check_cast(
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
fn bytea_literal(e: &mut SqlExpr) -> SqlResult<()> {
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

fn lock_target_of(q: &ast::Query) -> SqlResult<(String, Option<String>, Option<SqlExpr>)> {
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
fn strip_qualifier(e: &mut SqlExpr, alias: &str) {
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
