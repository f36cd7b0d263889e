//! Writing a row change and what follows from it: the entries of the table's secondary
//! indexes, their unique checks, and the table's CHECK constraints. Every statement that
//! writes rows (INSERT, UPDATE, DELETE, COPY, the point fast paths) writes through here.

use std::sync::Arc;

use arrow::array::{Array, BooleanArray};
use arrow::datatypes::SchemaRef;
use datafusion::datasource::MemTable;
use datafusion::scalar::ScalarValue;
use weft_engine::index::{index_schema, IndexDef};
use weft_engine::row::{rows_to_batch, Row};
use weft_engine::schema::TableDef;

use crate::catalog::db::Db;
use crate::catalog::txn::Txn;
use crate::error::{codes, SqlError, SqlResult};
use crate::sql::exec::{quote, Executor};

/// How a value shows in a constraint error's DETAIL.
fn shown(v: &ScalarValue) -> String {
    if v.is_null() {
        "null".to_string()
    } else {
        v.to_string()
    }
}

/// Which foreign-key consequences a row write follows.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Follow {
    /// Check that the rows this one references exist.
    pub references: bool,
    /// Refuse or act on the rows that reference this one.
    pub referenced: bool,
}

impl Follow {
    pub const ALL: Follow = Follow {
        references: true,
        referenced: true,
    };
    /// The caller has seen to the rows that reference this one (an UPDATE that moves a
    /// row to a new key).
    pub const NOT_REFERENCED: Follow = Follow {
        references: true,
        referenced: false,
    };
    /// The parent values this row references are the ones the same statement writes (a
    /// cascaded update).
    pub const NOT_REFERENCES: Follow = Follow {
        references: false,
        referenced: true,
    };
}

impl Executor {
    /// Writes `new` (or a delete) at `key` in the table, and the index entries that follow:
    /// the old row's entries go, the new row's come, and a unique index refuses a value
    /// another row holds (23505). Two transactions writing the same unique value write the
    /// same entry key, so the adjudicator lets only one of them commit.
    pub(crate) async fn write_row(
        &self,
        txn: &mut Txn,
        def: &TableDef,
        schema: &SchemaRef,
        key: Vec<u8>,
        new: Option<Arc<Row>>,
    ) -> SqlResult<()> {
        self.write_row_as(txn, def, schema, key, new, Follow::ALL)
            .await
    }

    /// [`Executor::write_row`], following only the foreign keys `follow` names.
    pub(crate) async fn write_row_as(
        &self,
        txn: &mut Txn,
        def: &TableDef,
        schema: &SchemaRef,
        key: Vec<u8>,
        new: Option<Arc<Row>>,
        follow: Follow,
    ) -> SqlResult<()> {
        let parent_side = follow.referenced && !def.referenced_by.is_empty();
        if !def.indexes.is_empty() || !def.foreign_keys.is_empty() || parent_side {
            let old = self.current(txn, def.id, &key).await?;
            if let Some(n) = &new {
                if follow.references && !def.foreign_keys.is_empty() {
                    self.check_references(txn, def, &key, old.as_deref(), n)
                        .await?;
                }
            }
            if let (true, Some(o)) = (parent_side, &old) {
                self.on_referenced_change(txn, def, o, new.as_deref())
                    .await?;
            }
            if !def.indexes.is_empty() {
                self.write_index_entries(txn, def, &key, old.as_deref(), new.as_deref())
                    .await?;
            }
        }
        txn.put(&self.db.limits, def.id, schema, key, new)
    }

    async fn write_index_entries(
        &self,
        txn: &mut Txn,
        def: &TableDef,
        key: &[u8],
        old: Option<&Row>,
        new: Option<&Row>,
    ) -> SqlResult<()> {
        let entry_schema = index_schema();
        for idx in &def.indexes {
            // The rows that have entries here (all, unless the index is partial).
            let old = match old {
                Some(o) if self.in_index(def, idx, o)? => Some(o),
                _ => None,
            };
            let new = match new {
                Some(n) if self.in_index(def, idx, n)? => Some(n),
                _ => None,
            };
            if let (Some(o), Some(n)) = (old, new) {
                if !idx.differs(o, n) {
                    continue;
                }
            }
            if let Some(o) = old {
                let k = idx.entry_key(o, key).map_err(engine_value)?;
                // While a unique index is built, another row may hold the old value's
                // entry (its own row not yet indexed): only this row's entry goes.
                let theirs = if !idx.valid && idx.unique_form(o) {
                    match self.current(txn, idx.id, &k).await? {
                        Some(holder) => pk_of_entry(&holder)? != key,
                        None => false,
                    }
                } else {
                    false
                };
                if !theirs {
                    txn.put_entry(&self.db.limits, idx.id, &entry_schema, k, None)?;
                }
            }
            if let Some(n) = new {
                let k = idx.entry_key(n, key).map_err(engine_value)?;
                if idx.unique_form(n) {
                    if let Some(holder) = self.current(txn, idx.id, &k).await? {
                        let holder_key = pk_of_entry(&holder)?;
                        if holder_key != key {
                            return Err(unique_violation(def, idx, n));
                        }
                    }
                }
                let entry = vec![ScalarValue::Binary(Some(key.to_vec()))];
                txn.put_entry(
                    &self.db.limits,
                    idx.id,
                    &entry_schema,
                    k,
                    Some(Arc::new(entry)),
                )?;
            }
        }
        Ok(())
    }

    /// The row (key and values) that `row` would collide with on a unique index, if any:
    /// what ON CONFLICT acts on besides the primary key. `only` limits the search to one
    /// index (a conflict target).
    pub(crate) async fn unique_conflict(
        &self,
        txn: &Txn,
        def: &TableDef,
        row: &Row,
        only: Option<&str>,
    ) -> SqlResult<Option<(Vec<u8>, Arc<Row>)>> {
        for idx in &def.indexes {
            // An index still being built is no arbiter (as in PostgreSQL).
            if only.is_some_and(|n| n != idx.name)
                || !idx.valid
                || !idx.unique_form(row)
                || !self.in_index(def, idx, row)?
            {
                continue;
            }
            let k = idx.entry_key(row, &[]).map_err(engine_value)?;
            if let Some(holder) = self.current(txn, idx.id, &k).await? {
                let pk = pk_of_entry(&holder)?;
                if let Some(existing) = self.current(txn, def.id, &pk).await? {
                    return Ok(Some((pk, existing)));
                }
            }
        }
        Ok(None)
    }

    /// Checks the table's CHECK constraints on rows about to be written: a constraint that
    /// is false (not NULL) for a row is 23514, naming it, as in PostgreSQL.
    pub(crate) async fn check_constraints(&self, def: &TableDef, rows: &[&Row]) -> SqlResult<()> {
        check_constraints(&self.db, def, rows).await
    }
}

/// Checks the table's CHECK constraints on rows about to be written: a constraint that is
/// false (not NULL) for a row is 23514, naming it, as in PostgreSQL.
pub(crate) async fn check_constraints(db: &Db, def: &TableDef, rows: &[&Row]) -> SqlResult<()> {
    if def.checks.is_empty() || rows.is_empty() {
        return Ok(());
    }
    let ctx = db.scratch_context();
    let schema = def.arrow_schema();
    let batch = rows_to_batch(&schema, rows)?;
    ctx.register_table(
        "__weft_check",
        Arc::new(MemTable::try_new(schema, vec![vec![batch]])?),
    )?;
    let list: Vec<String> = def
        .checks
        .iter()
        .map(|c| format!("(({}) IS NOT FALSE)", c.expr))
        .collect();
    let sql = format!(
        "SELECT {} FROM \"__weft_check\" AS {}",
        list.join(", "),
        quote(&def.name)
    );
    let plan = ctx.state().create_logical_plan(&sql).await?;
    let (_, batches) = Executor::collect(&ctx, plan).await?;
    let mut at = 0;
    for b in &batches {
        for (ci, check) in def.checks.iter().enumerate() {
            let col = b
                .column(ci)
                .as_any()
                .downcast_ref::<BooleanArray>()
                .ok_or_else(|| SqlError::internal("a CHECK did not evaluate to boolean"))?;
            for r in 0..col.len() {
                if !col.is_null(r) && !col.value(r) {
                    let row = rows[at + r];
                    let shown: Vec<String> = row.iter().map(shown).collect();
                    return Err(SqlError::new(
                        codes::CHECK_VIOLATION,
                        format!(
                            "new row for relation \"{}\" violates check constraint \"{}\"",
                            def.relname(),
                            check.name
                        ),
                    )
                    .with_detail(format!("Failing row contains ({}).", shown.join(", "))));
                }
            }
        }
        at += b.num_rows();
    }
    Ok(())
}

/// The primary key an index entry points at.
pub(crate) fn pk_of_entry(entry: &Row) -> SqlResult<Vec<u8>> {
    match entry.first() {
        Some(ScalarValue::Binary(Some(k))) => Ok(k.clone()),
        _ => Err(SqlError::internal("an index entry without its row's key")),
    }
}

fn engine_value(e: weft_engine::EngineError) -> SqlError {
    SqlError::new(codes::DATA_EXCEPTION, e.to_string())
}

/// PostgreSQL's 23505 for a unique index: the index (constraint) name and the values.
pub(crate) fn unique_violation(def: &TableDef, idx: &IndexDef, row: &Row) -> SqlError {
    let cols: Vec<&str> = idx
        .columns
        .iter()
        .map(|&i| def.columns[i].name.as_str())
        .collect();
    let vals: Vec<String> = idx.columns.iter().map(|&i| shown(&row[i])).collect();
    SqlError::new(
        codes::UNIQUE_VIOLATION,
        format!(
            "duplicate key value violates unique constraint \"{}\"",
            idx.name
        ),
    )
    .with_detail(format!(
        "Key ({})=({}) already exists.",
        cols.join(", "),
        vals.join(", ")
    ))
}
