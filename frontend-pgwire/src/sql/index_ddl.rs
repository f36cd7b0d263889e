//! CREATE INDEX, DROP INDEX, and the indexes and CHECK constraints that CREATE TABLE and
//! ALTER TABLE declare: each is part of its table's definition, written in the
//! statement's transaction.
//!
//! An index made inside a transaction block on a table that already holds rows is built in
//! the same transaction: its entries are written from the rows the transaction sees, so it
//! is complete when the definition commits, and every later writer of the table (which
//! depends on the definition) maintains it. That build is bounded by the transaction
//! limits; outside a block, an index is built in steps ([`crate::sql::index_build`]).

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use arrow::array::{BinaryArray, RecordBatch};
use datafusion::scalar::ScalarValue;
use datafusion::sql::sqlparser::ast::{self, Expr as SqlExpr, IndexColumn, ObjectName};
use futures::StreamExt;
use weft_engine::index::{CheckDef, IndexDef};
use weft_engine::provider::WeftTable;
use weft_engine::row::{batch_row, Row};
use weft_engine::schema::{oid_for_table_id, TableDef, FIRST_USER_TABLE_ID};
use weft_engine::SqlType;

use crate::catalog::txn::Txn;
use crate::error::{codes, SqlError, SqlResult};
use crate::sql::exec::{table_name, Executor};
use crate::sql::names::ident_name;
use crate::sql::outcome::{CommandTag, Notice, Outcome};

/// PostgreSQL's limit on identifier length (NAMEDATALEN - 1).
const NAME_MAX: usize = 63;

/// Whether values of `ty` can be keys (of a primary key or an index).
pub(crate) fn keyable(ty: &SqlType) -> bool {
    matches!(
        ScalarValue::try_from(&ty.arrow_type()),
        Ok(ScalarValue::Int16(_)
            | ScalarValue::Int32(_)
            | ScalarValue::Int64(_)
            | ScalarValue::Float32(_)
            | ScalarValue::Float64(_)
            | ScalarValue::Decimal128(..)
            | ScalarValue::Utf8(_)
            | ScalarValue::Binary(_)
            | ScalarValue::Boolean(_)
            | ScalarValue::Date32(_)
            | ScalarValue::TimestampMicrosecond(..))
    )
}

/// The columns an index lists, by position in the table; plain column names only.
pub(crate) fn index_columns(def: &TableDef, cols: &[IndexColumn]) -> SqlResult<Vec<usize>> {
    let key = index_key(def, cols)?;
    if key.descending.iter().any(|&d| d)
        || key.nulls_first.iter().any(|n| n.is_some())
        || key.opclasses.iter().any(|o| o.is_some())
    {
        return Err(SqlError::syntax(
            "a constraint's columns take no ordering or operator class",
        ));
    }
    Ok(key.columns)
}

/// The key columns of a CREATE INDEX, with their order and operator classes.
pub(crate) struct IndexKey {
    pub columns: Vec<usize>,
    pub descending: Vec<bool>,
    /// `NULLS FIRST` / `NULLS LAST` as written (`None`: the direction's default).
    pub nulls_first: Vec<Option<bool>>,
    /// A pattern operator class named (`None`: the default, named or not).
    pub opclasses: Vec<Option<String>>,
}

/// The btree operator classes weft knows (those of the types it indexes).
const BTREE_OPCLASSES: &[&str] = &[
    "int2_ops",
    "int4_ops",
    "int8_ops",
    "float4_ops",
    "float8_ops",
    "numeric_ops",
    "text_ops",
    "varchar_ops",
    "bpchar_ops",
    "bool_ops",
    "bytea_ops",
    "date_ops",
    "timestamp_ops",
    "timestamptz_ops",
    "uuid_ops",
    "text_pattern_ops",
    "varchar_pattern_ops",
    "bpchar_pattern_ops",
];

/// The btree operator classes a column of `ty` may name: its default's names, and the
/// pattern classes, which compare text byte by byte as weft's default does already.
fn opclass_for(ty: &SqlType, name: &str) -> Option<Option<String>> {
    let default: &[&str] = match ty {
        SqlType::SmallInt => &["int2_ops"],
        SqlType::Integer => &["int4_ops"],
        SqlType::BigInt => &["int8_ops"],
        SqlType::Real => &["float4_ops"],
        SqlType::Double => &["float8_ops"],
        SqlType::Numeric { .. } => &["numeric_ops"],
        SqlType::Text | SqlType::Varchar { .. } => &["text_ops", "varchar_ops"],
        SqlType::Char { .. } => &["bpchar_ops"],
        SqlType::Boolean => &["bool_ops"],
        SqlType::Bytea => &["bytea_ops"],
        SqlType::Date => &["date_ops"],
        SqlType::Timestamp => &["timestamp_ops"],
        SqlType::Timestamptz => &["timestamptz_ops"],
        SqlType::Uuid => &["uuid_ops"],
        _ => &[],
    };
    if default.contains(&name) {
        return Some(None);
    }
    let pattern: &[&str] = match ty {
        SqlType::Text | SqlType::Varchar { .. } => &["text_pattern_ops", "varchar_pattern_ops"],
        SqlType::Char { .. } => &["bpchar_pattern_ops"],
        _ => &[],
    };
    pattern.contains(&name).then(|| Some(name.to_string()))
}

pub(crate) fn index_key(def: &TableDef, cols: &[IndexColumn]) -> SqlResult<IndexKey> {
    let mut key = IndexKey {
        columns: Vec::with_capacity(cols.len()),
        descending: Vec::new(),
        nulls_first: Vec::new(),
        opclasses: Vec::new(),
    };
    for ic in cols {
        let name = match &ic.column.expr {
            SqlExpr::Identifier(id) => ident_name(id),
            other => {
                return Err(SqlError::unsupported(format!(
                    "indexes on expressions ({other}) are not supported"
                )))
            }
        };
        let c = column_position(def, &name)?;
        let opclass = match &ic.operator_class {
            None => None,
            Some(o) => {
                let o = o.to_string().to_ascii_lowercase();
                let o = o.strip_prefix("pg_catalog.").unwrap_or(&o).to_string();
                let ty = &def.columns[c].ty;
                opclass_for(ty, &o).ok_or_else(|| {
                    if BTREE_OPCLASSES.contains(&o.as_str()) {
                        SqlError::new(
                            codes::DATATYPE_MISMATCH,
                            format!(
                                "operator class \"{o}\" does not accept data type {}",
                                ty.pg_name()
                            ),
                        )
                    } else {
                        SqlError::new(
                            codes::UNDEFINED_OBJECT,
                            format!(
                                "operator class \"{o}\" does not exist for access method \"btree\""
                            ),
                        )
                    }
                })?
            }
        };
        key.columns.push(c);
        key.descending.push(ic.column.options.asc == Some(false));
        key.nulls_first.push(ic.column.options.nulls_first);
        key.opclasses.push(opclass);
    }
    Ok(key)
}

/// The columns a table constraint of CREATE TABLE lists, among the columns declared.
pub(crate) fn index_columns_of_table(
    columns: &[weft_engine::ColumnDef],
    cols: &[IndexColumn],
) -> SqlResult<Vec<usize>> {
    let mut out = Vec::with_capacity(cols.len());
    for ic in cols {
        let SqlExpr::Identifier(id) = &ic.column.expr else {
            return Err(SqlError::unsupported(
                "constraints on expressions are not supported",
            ));
        };
        let name = ident_name(id);
        let i = columns.iter().position(|c| c.name == name).ok_or_else(|| {
            SqlError::new(
                codes::UNDEFINED_COLUMN,
                format!("column \"{name}\" named in key does not exist"),
            )
        })?;
        out.push(i);
    }
    Ok(out)
}

pub(crate) fn column_position(def: &TableDef, name: &str) -> SqlResult<usize> {
    def.column_index(name).ok_or_else(|| {
        SqlError::new(
            codes::UNDEFINED_COLUMN,
            format!("column \"{name}\" does not exist"),
        )
    })
}

fn check_keyable(def: &TableDef, columns: &[usize]) -> SqlResult<()> {
    for &c in columns {
        let ty = &def.columns[c].ty;
        if *ty == SqlType::Json {
            return Err(SqlError::new(
                codes::UNDEFINED_OBJECT,
                "data type json has no default operator class for access method \"btree\"",
            )
            .with_hint("You must specify an operator class for the index or define a default operator class for the data type."));
        }
        if !keyable(ty) {
            return Err(SqlError::unsupported(format!(
                "indexes on columns of type {} are not supported",
                ty.pg_name()
            )));
        }
    }
    Ok(())
}

/// PostgreSQL's name for an implicit index or constraint: `table_col1_col2_suffix`, each
/// part cut so the whole fits in 63 bytes.
fn implicit_name(table: &str, cols: &[&str], suffix: &str) -> String {
    let mut name2 = cols.join("_");
    // Named after the table's name within its schema.
    let mut name1 = weft_engine::schema::split_relation(table).1.to_string();
    let overhead = suffix.len() + 2;
    while name1.len() + name2.len() + overhead > NAME_MAX {
        if name1.len() > name2.len() {
            name1.pop();
        } else {
            name2.pop();
        }
    }
    if name2.is_empty() {
        format!("{name1}_{suffix}")
    } else {
        format!("{name1}_{name2}_{suffix}")
    }
}

impl Executor {
    /// Every relation name in use (tables, their indexes, sequences), as the transaction
    /// sees them.
    pub(crate) async fn relation_names(&self, txn: &Txn, schema: &str) -> SqlResult<Vec<String>> {
        let read_ts = txn.read_ts()?;
        let catalog = txn.overlay(txn.database.catalog);
        let mut names = Vec::new();
        let in_schema = |key: &str| weft_engine::schema::split_relation(key).0 == schema;
        for t in self
            .db
            .list_tables(txn.database, read_ts, catalog.as_deref())
            .await?
        {
            if !in_schema(&t.name) {
                continue;
            }
            names.push(t.relname().to_string());
            if !t.primary_key.is_empty() {
                names.push(t.pkey_name());
            }
            names.extend(t.indexes.iter().map(|i| i.name.clone()));
        }
        let seqs = txn.overlay(txn.database.sequences);
        for s in crate::catalog::sequences::list(
            self.db.as_ref(),
            txn.database,
            read_ts,
            seqs.as_deref(),
        )
        .await?
        {
            if in_schema(&s.name) {
                names.push(weft_engine::schema::split_relation(&s.name).1.to_string());
            }
        }
        Ok(names)
    }

    /// A name PostgreSQL would choose: `table_cols_suffix`, then with 1, 2, ... appended
    /// until it is free among `taken` (which gains it).
    pub(crate) fn choose_name(
        taken: &mut Vec<String>,
        table: &str,
        cols: &[&str],
        suffix: &str,
    ) -> String {
        let base = implicit_name(table, cols, suffix);
        let mut name = base.clone();
        let mut n = 0;
        while taken.contains(&name) {
            n += 1;
            let tail = n.to_string();
            let mut b = base.clone();
            while b.len() + tail.len() > NAME_MAX {
                b.pop();
            }
            name = format!("{b}{tail}");
        }
        taken.push(name.clone());
        name
    }

    /// The name of a new index: the one given (42P07 when a relation has it), or the one
    /// PostgreSQL would choose from the table, the columns and `suffix`.
    pub(crate) fn relation_name_for(
        taken: &mut Vec<String>,
        given: Option<String>,
        def: &TableDef,
        columns: &[usize],
        suffix: &str,
    ) -> SqlResult<String> {
        match given {
            Some(n) if taken.contains(&n) => Err(SqlError::new(
                codes::DUPLICATE_TABLE,
                format!("relation \"{n}\" already exists"),
            )),
            Some(n) => {
                taken.push(n.clone());
                Ok(n)
            }
            None => {
                let cols: Vec<&str> = columns
                    .iter()
                    .map(|&c| def.columns[c].name.as_str())
                    .collect();
                Ok(Self::choose_name(taken, &def.name, &cols, suffix))
            }
        }
    }

    /// A fresh id for an index's entries, and its object id.
    pub(crate) fn fresh_index_ids(&self) -> (u64, u32) {
        let id = FIRST_USER_TABLE_ID + self.db.entropy.u64() % (u64::MAX - FIRST_USER_TABLE_ID);
        (id, oid_for_table_id(id))
    }

    /// A new index definition on `def` (not yet added).
    pub(crate) fn new_index(
        &self,
        def: &TableDef,
        name: String,
        columns: Vec<usize>,
        unique: bool,
        constraint: bool,
    ) -> SqlResult<IndexDef> {
        check_keyable(def, &columns)?;
        if columns.len() > 32 {
            return Err(SqlError::new(
                "54011",
                "cannot use more than 32 columns in an index",
            ));
        }
        let (id, oid) = self.fresh_index_ids();
        Ok(IndexDef {
            name,
            id,
            oid,
            columns,
            include: Vec::new(),
            unique,
            nulls_not_distinct: false,
            constraint,
            predicate: None,
            valid: true,
            descending: Vec::new(),
            nulls_first: Vec::new(),
            opclasses: Vec::new(),
        })
    }

    /// The UNIQUE constraints and CHECK constraints of a CREATE TABLE, added to `def`
    /// (which has no rows yet).
    pub(crate) async fn table_constraints(
        &self,
        txn: &Txn,
        def: &mut TableDef,
        uniques: Vec<(Option<String>, Vec<usize>, bool)>,
        checks: Vec<(Option<String>, Option<usize>, SqlExpr)>,
    ) -> SqlResult<()> {
        if uniques.is_empty() && checks.is_empty() {
            return Ok(());
        }
        let mut taken = self.relation_names(txn, def.schema()).await?;
        taken.push(def.relname().to_string());
        if !def.primary_key.is_empty() {
            taken.push(def.pkey_name());
        }
        for (name, columns, nulls_not_distinct) in uniques {
            let name = Self::relation_name_for(&mut taken, name, def, &columns, "key")?;
            let mut idx = self.new_index(def, name, columns, true, true)?;
            idx.nulls_not_distinct = nulls_not_distinct;
            def.indexes.push(idx);
        }
        let mut check_names: Vec<String> = Vec::new();
        for (name, column, expr) in checks {
            let name = match name {
                Some(n) => {
                    if check_names.contains(&n) {
                        return Err(SqlError::new(
                            "42710",
                            format!(
                                "constraint \"{n}\" for relation \"{}\" already exists",
                                def.relname()
                            ),
                        ));
                    }
                    check_names.push(n.clone());
                    n
                }
                None => {
                    // A column's CHECK is named after it; a table's after the table alone.
                    let cols: Vec<&str> = column
                        .iter()
                        .map(|&c| def.columns[c].name.as_str())
                        .collect();
                    Self::choose_name(&mut check_names, &def.name, &cols, "check")
                }
            };
            let (_, oid) = self.fresh_index_ids();
            def.checks.push(CheckDef {
                name,
                oid,
                expr: crate::sql::default_text::check_text(&expr),
                validated: true,
            });
        }
        self.validate_checks(def).await
    }

    /// Plans the table's CHECK expressions against its columns: a name that is not a
    /// column, or an expression that is not boolean, is an error now, not at the first
    /// write.
    pub(crate) async fn validate_checks(&self, def: &TableDef) -> SqlResult<()> {
        if def.checks.is_empty() {
            return Ok(());
        }
        let ctx = self.db.scratch_context();
        let schema = def.arrow_schema();
        ctx.register_table(
            "__weft_check",
            Arc::new(datafusion::datasource::MemTable::try_new(
                schema,
                vec![vec![]],
            )?),
        )?;
        for c in &def.checks {
            let sql = format!(
                "SELECT ({}) FROM \"__weft_check\" AS {}",
                c.expr,
                crate::sql::exec::quote(&def.name)
            );
            let plan = ctx.state().create_logical_plan(&sql).await?;
            let field = plan.schema().field(0).clone();
            if !matches!(
                field.data_type(),
                arrow::datatypes::DataType::Boolean | arrow::datatypes::DataType::Null
            ) {
                let ty = crate::types::column_type::pg_type_of(&field)
                    .map(|t| t.name().to_string())
                    .unwrap_or_else(|_| field.data_type().to_string());
                return Err(SqlError::new(
                    codes::DATATYPE_MISMATCH,
                    format!("argument of CHECK must be type boolean, not type {ty}"),
                ));
            }
        }
        Ok(())
    }

    /// The rows of a table as the transaction sees them, batch by batch, each batch's
    /// last column the rows' keys.
    pub(crate) async fn table_stream(
        &self,
        txn: &Txn,
        def: &TableDef,
    ) -> SqlResult<datafusion::physical_plan::SendableRecordBatchStream> {
        let provider = WeftTable::new(
            Arc::new(def.clone()),
            self.db.storage.clone(),
            txn.read_ts()?,
            txn.overlay(def.id),
            true,
            HashMap::new(),
            Some(txn.reads.clone()),
        );
        let ctx = self.db.scratch_context();
        Ok(ctx.read_table(Arc::new(provider))?.execute_stream().await?)
    }

    /// Each row of a batch from [`Executor::table_stream`], with its key.
    pub(crate) fn batch_rows(def: &TableDef, b: &RecordBatch) -> SqlResult<Vec<(Vec<u8>, Row)>> {
        let ncols = def.columns.len();
        let keys = b
            .column(ncols)
            .as_any()
            .downcast_ref::<BinaryArray>()
            .ok_or_else(|| SqlError::internal("key column is not binary"))?;
        (0..b.num_rows())
            .map(|i| Ok((keys.value(i).to_vec(), batch_row(b, i, ncols)?)))
            .collect()
    }

    /// Every row of a table as the transaction sees it, with its key.
    pub(crate) async fn table_rows(
        &self,
        txn: &Txn,
        def: &TableDef,
    ) -> SqlResult<Vec<(Vec<u8>, Row)>> {
        let mut stream = self.table_stream(txn, def).await?;
        let mut out = Vec::new();
        while let Some(b) = stream.next().await {
            out.extend(Self::batch_rows(def, &b?)?);
        }
        Ok(out)
    }

    /// Writes the entries of a new index from the rows the transaction sees, batch by
    /// batch (so the transaction's byte limit stops a build that is too large before it
    /// has read the whole table); a unique index over duplicated values is 23505, as
    /// PostgreSQL's "could not create unique index".
    pub(crate) async fn build_index(
        &self,
        txn: &mut Txn,
        def: &TableDef,
        idx: &IndexDef,
    ) -> SqlResult<()> {
        let mut stream = self.table_stream(txn, def).await?;
        let schema = weft_engine::index::index_schema();
        let mut seen: HashSet<Vec<u8>> = HashSet::new();
        while let Some(b) = stream.next().await {
            for (key, row) in Self::batch_rows(def, &b?)? {
                if !self.in_index(def, idx, &row)? {
                    continue;
                }
                let k = idx
                    .entry_key(&row, &key)
                    .map_err(|e| SqlError::new(codes::DATA_EXCEPTION, e.to_string()))?;
                if idx.unique_form(&row) && !seen.insert(k.clone()) {
                    return Err(crate::sql::index_build::duplicated(def, idx, &row));
                }
                txn.put_entry(
                    &self.db.limits,
                    idx.id,
                    &schema,
                    k,
                    Some(Arc::new(vec![ScalarValue::Binary(Some(key))])),
                )?;
            }
        }
        Ok(())
    }

    /// `CREATE [UNIQUE] INDEX [CONCURRENTLY] [IF NOT EXISTS] [name] ON t (cols)
    /// [INCLUDE (...)]`. Outside a transaction block (and before anything else the
    /// statement's transaction wrote) the index is built in steps of its own
    /// ([`crate::sql::index_build`]), so a table of any size can take one; inside a block
    /// it is built in the block's transaction, within its limits.
    pub async fn create_index(
        &self,
        txn: &mut Txn,
        ci: ast::CreateIndex,
        notices: &mut Vec<Notice>,
    ) -> SqlResult<Outcome> {
        let tag = Outcome::Command(CommandTag::new("CREATE INDEX"));
        let in_block = txn.explicit || !txn.writes.is_empty();
        if ci.concurrently && in_block {
            return Err(SqlError::new(
                codes::ACTIVE_SQL_TRANSACTION,
                "CREATE INDEX CONCURRENTLY cannot run inside a transaction block",
            ));
        }
        if !in_block {
            self.create_index_in_steps(txn.database, &ci, notices)
                .await?;
            return Ok(tag);
        }
        let Some((mut def, idx)) = self.prepare_index(txn, &ci, notices).await? else {
            return Ok(tag);
        };
        self.build_index(txn, &def, &idx).await.map_err(|e| {
            if e.code == codes::PROGRAM_LIMIT_EXCEEDED {
                e.with_hint("run CREATE INDEX outside a transaction block: there it is built in steps, whatever the table's size")
            } else {
                e
            }
        })?;
        def.indexes.push(idx);
        self.put_table_def(txn, &def)?;
        Ok(tag)
    }

    /// The table's definition and the new index a CREATE INDEX asks for (not yet built or
    /// added); `None` when IF NOT EXISTS finds the name taken.
    pub(crate) async fn prepare_index(
        &self,
        txn: &Txn,
        ci: &ast::CreateIndex,
        notices: &mut Vec<Notice>,
    ) -> SqlResult<Option<(TableDef, IndexDef)>> {
        if let Some(using) = &ci.using {
            if !using.to_string().eq_ignore_ascii_case("btree") {
                return Err(SqlError::unsupported(format!(
                    "index access method \"{using}\" is not supported"
                )));
            }
        }
        let table = table_name(&ci.table_name)?;
        let def = (*self.table_def(txn, &table).await?).clone();
        let key = index_key(&def, &ci.columns)?;
        let columns = key.columns.clone();
        let mut taken = self.relation_names(txn, def.schema()).await?;
        // An index is in its table's schema; its name is bare there.
        let given = ci
            .name
            .as_ref()
            .map(table_name)
            .transpose()?
            .map(|n| weft_engine::schema::split_relation(&n).1.to_string());
        if let Some(n) = given.as_ref().filter(|n| taken.contains(n)) {
            if ci.if_not_exists {
                notices.push(Notice {
                    severity: "NOTICE",
                    code: "42P07",
                    message: format!("relation \"{n}\" already exists, skipping"),
                });
                return Ok(None);
            }
        }
        let name = Self::relation_name_for(&mut taken, given, &def, &columns, "idx")?;
        let mut idx = self.new_index(&def, name, columns, ci.unique, false)?;
        idx.nulls_not_distinct = ci.nulls_distinct == Some(false);
        // Kept only where some column is not ascending with PostgreSQL's default NULLs.
        if key.descending.iter().any(|&d| d) || key.nulls_first.iter().any(|n| n.is_some()) {
            idx.nulls_first = key
                .nulls_first
                .iter()
                .zip(&key.descending)
                .map(|(n, &d)| n.unwrap_or(d))
                .collect();
            idx.descending = key.descending;
        }
        if key.opclasses.iter().any(|o| o.is_some()) {
            idx.opclasses = key.opclasses;
        }
        for c in &ci.include {
            idx.include.push(column_position(&def, &ident_name(c))?);
        }
        if let Some(p) = &ci.predicate {
            let text = crate::sql::default_text::check_text(p);
            self.validate_predicate(&def, &text)?;
            idx.predicate = Some(text);
        }
        Ok(Some((def, idx)))
    }

    /// `DROP INDEX [IF EXISTS] name, ...`. The index of a UNIQUE constraint is dropped
    /// with the constraint (ALTER TABLE ... DROP CONSTRAINT), as in PostgreSQL.
    pub async fn drop_indexes(
        &self,
        txn: &mut Txn,
        names: &[ObjectName],
        if_exists: bool,
        notices: &mut Vec<Notice>,
    ) -> SqlResult<Outcome> {
        for n in names {
            let key = table_name(n)?;
            let (schema, name) = weft_engine::schema::split_relation(&key);
            let name = name.to_string();
            // A qualified name is looked for in its schema, a bare one along the path.
            let schemas: Vec<String> = if n.0.len() > 1 {
                vec![schema.to_string()]
            } else {
                self.meta.search_path().to_vec()
            };
            let catalog = txn.overlay(txn.database.catalog);
            let tables = self
                .db
                .list_tables(txn.database, txn.read_ts()?, catalog.as_deref())
                .await?;
            let owner = schemas.iter().find_map(|s| {
                tables
                    .iter()
                    .find(|t| t.schema() == s && t.indexes.iter().any(|i| i.name == name))
            });
            let Some(owner) = owner else {
                if tables.iter().any(|t| t.name == key) {
                    return Err(SqlError::new(
                        codes::WRONG_OBJECT_TYPE,
                        format!("\"{name}\" is not an index"),
                    )
                    .with_hint("Use DROP TABLE to remove a table."));
                }
                if let Some(t) = tables.iter().find(|t| {
                    t.pkey_name() == name
                        && !t.primary_key.is_empty()
                        && schemas.iter().any(|s| s == t.schema())
                }) {
                    return Err(SqlError::new(
                        "2BP01",
                        format!(
                            "cannot drop index {name} because constraint {name} on table {} requires it",
                            t.name
                        ),
                    )
                    .with_hint(format!(
                        "You can drop constraint {name} on table {} instead.",
                        t.name
                    )));
                }
                if if_exists {
                    notices.push(Notice {
                        severity: "NOTICE",
                        code: "00000",
                        message: format!("index \"{name}\" does not exist, skipping"),
                    });
                    continue;
                }
                return Err(SqlError::new(
                    codes::UNDEFINED_OBJECT,
                    format!("index \"{name}\" does not exist"),
                ));
            };
            let mut def = (**owner).clone();
            let idx = def.indexes.iter().find(|i| i.name == name).cloned();
            if let Some(idx) = idx.filter(|i| i.constraint) {
                return Err(SqlError::new(
                    "2BP01",
                    format!(
                        "cannot drop index {name} because constraint {name} on table {} requires it",
                        def.name
                    ),
                )
                .with_hint(format!(
                    "You can drop constraint {} on table {} instead.",
                    idx.name, def.name
                )));
            }
            def.indexes.retain(|i| i.name != name);
            self.put_table_def(txn, &def)?;
        }
        Ok(Outcome::Command(CommandTag::new("DROP INDEX")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn implicit_names_fit_in_63_bytes() {
        assert_eq!(implicit_name("users", &["email"], "key"), "users_email_key");
        assert_eq!(implicit_name("t", &[], "check"), "t_check");
        assert_eq!(implicit_name("s.t", &["a"], "key"), "t_a_key");
        let long = "a".repeat(60);
        let n = implicit_name(&long, &["column_name"], "idx");
        assert!(n.len() <= NAME_MAX, "{n}");
        assert!(n.ends_with("_idx"));
    }
}
