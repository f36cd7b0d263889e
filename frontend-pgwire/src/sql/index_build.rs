//! Building an index on a table that already holds rows, outside a transaction block
//! (`CREATE INDEX` in autocommit, `CREATE INDEX CONCURRENTLY`), as a sequence of small
//! transactions, so the table's size is bounded by nothing but time:
//!
//! 1. the index is added to the table's definition, not yet valid, and committed: from
//!    then on every writer of the table maintains its entries (and the planner ignores
//!    it);
//! 2. the rows of a snapshot taken after that commit are indexed chunk by chunk
//!    ([`BUILD_CHUNK_ROWS`] rows a transaction). Each chunk's transaction reads at the
//!    snapshot and holds its rows' keys (and, for a unique index, its entries' keys) as
//!    if it wrote them, so it cannot commit if a writer changed one of those rows (or took
//!    one of those values) since: it is then redone from a newer snapshot of the same
//!    rows. No entry of a row's old value can outlive the row's change;
//! 3. the index is marked valid, and the planner uses it.
//!
//! A unique index over duplicated values fails with 23505 and the index is removed, as a
//! failed build leaves nothing. A build cut short by a crash leaves the index invalid
//! (`pg_index.indisvalid` false, `\d` says INVALID), as PostgreSQL's CONCURRENTLY does:
//! DROP INDEX removes it.

use std::sync::Arc;

use datafusion::scalar::ScalarValue;
use datafusion::sql::sqlparser::ast;
use futures::StreamExt;
use weft_engine::index::{index_schema, IndexDef};
use weft_engine::row::Row;
use weft_engine::schema::{DatabaseTables, TableDef};

use crate::catalog::txn::{Isolation, Txn};
use crate::error::{codes, SqlError, SqlResult};
use crate::sql::exec::Executor;
use crate::sql::outcome::Notice;
use crate::sql::row_write::{pk_of_entry, unique_violation};

/// Rows indexed by one transaction of a build.
pub const BUILD_CHUNK_ROWS: usize = 5_000;
/// What an index entry costs a transaction besides its key and its row's key (an estimate,
/// on the high side).
const ENTRY_BYTES: usize = 64;
/// Times a chunk is redone after concurrent writes before the build gives up (40001).
pub const BUILD_CHUNK_ATTEMPTS: usize = 16;

/// PostgreSQL's error for a unique index over duplicated values.
pub(crate) fn duplicated(def: &TableDef, idx: &IndexDef, row: &Row) -> SqlError {
    let e = unique_violation(def, idx, row);
    SqlError::new(
        codes::UNIQUE_VIOLATION,
        format!("could not create unique index \"{}\"", idx.name),
    )
    .with_detail(
        e.detail
            .unwrap_or_default()
            .replace("already exists", "is duplicated"),
    )
}

impl Executor {
    /// A transaction of the build's own, reading now.
    fn build_txn(&self, database: DatabaseTables) -> Txn {
        let mut t = Txn::new(false, Isolation::RepeatableRead, false).in_database(database);
        t.snapshot(&*self.db.adjudicator, &*self.db.storage);
        t
    }

    async fn commit_build_txn(&self, t: Txn) -> SqlResult<()> {
        self.db
            .adjudicator
            .commit(t.into_commit_request())
            .await
            .map(|_| ())
            .map_err(SqlError::from)
    }

    /// CREATE INDEX outside a transaction block: the steps of the module's overview.
    pub(crate) async fn create_index_in_steps(
        &self,
        database: DatabaseTables,
        ci: &ast::CreateIndex,
        notices: &mut Vec<Notice>,
    ) -> SqlResult<()> {
        let mut t = self.build_txn(database);
        let Some((mut def, mut idx)) = self.prepare_index(&t, ci, notices).await? else {
            return Ok(());
        };
        idx.valid = false;
        def.indexes.push(idx.clone());
        self.put_table_def(&mut t, &def)?;
        self.commit_build_txn(t).await?;
        match self.backfill(database, &def, &idx).await {
            Ok(()) => self.finish_index(database, &def.name, idx.id, true).await,
            Err(e) => {
                // A failed build leaves nothing behind (a crash leaves it invalid).
                if let Err(cleanup) = self.finish_index(database, &def.name, idx.id, false).await {
                    tracing::warn!(index = %idx.name, error = %cleanup, "could not remove a failed index build");
                }
                Err(e)
            }
        }
    }

    /// Indexes every row of a snapshot taken after the index was committed, chunk by
    /// chunk.
    async fn backfill(
        &self,
        database: DatabaseTables,
        def: &TableDef,
        idx: &IndexDef,
    ) -> SqlResult<()> {
        let scan = self.build_txn(database);
        let at = scan.read_ts()?;
        let mut stream = self.table_stream(&scan, def).await?;
        let mut chunk = Vec::with_capacity(BUILD_CHUNK_ROWS);
        // A chunk also stays within half the transaction byte limit.
        let (mut bytes, bytes_max) = (0, self.db.limits.bytes_max / 2);
        while let Some(b) = stream.next().await {
            for (key, row) in Self::batch_rows(def, &b?)? {
                bytes += ENTRY_BYTES
                    + 2 * key.len()
                    + idx.columns.iter().map(|&c| row[c].size()).sum::<usize>();
                chunk.push((key, Some(row)));
                if chunk.len() >= BUILD_CHUNK_ROWS || bytes >= bytes_max {
                    self.index_chunk(database, def, idx, at, std::mem::take(&mut chunk))
                        .await?;
                    bytes = 0;
                }
            }
        }
        if !chunk.is_empty() {
            self.index_chunk(database, def, idx, at, chunk).await?;
        }
        Ok(())
    }

    /// Writes the entries of `rows` (as of `at`) in a transaction of their own, redoing
    /// it from a newer snapshot when a writer changed one of them since.
    async fn index_chunk(
        &self,
        database: DatabaseTables,
        def: &TableDef,
        idx: &IndexDef,
        mut at: weft_engine::Timestamp,
        mut rows: Vec<(Vec<u8>, Option<Row>)>,
    ) -> SqlResult<()> {
        let schema = index_schema();
        for _ in 0..BUILD_CHUNK_ATTEMPTS {
            let mut t = Txn::new(false, Isolation::RepeatableRead, false)
                .reading_at(at)
                .in_database(database);
            t.snapshot(&*self.db.adjudicator, &*self.db.storage);
            for (key, row) in &rows {
                t.locked.push((def.id, key.clone()));
                let Some(row) = row else { continue };
                if !self.in_index(def, idx, row)? {
                    continue;
                }
                let k = idx
                    .entry_key(row, key)
                    .map_err(|e| SqlError::new(codes::DATA_EXCEPTION, e.to_string()))?;
                if idx.unique_form(row) {
                    t.locked.push((idx.id, k.clone()));
                    let holder = match t.own_write(idx.id, &k) {
                        Some(own) => own,
                        None => self.db.storage.get(idx.id, &k, at).await?,
                    };
                    if let Some(h) = holder {
                        if pk_of_entry(&h)? != *key {
                            return Err(duplicated(def, idx, row));
                        }
                    }
                }
                t.put_entry(
                    &self.db.limits,
                    idx.id,
                    &schema,
                    k,
                    Some(Arc::new(vec![ScalarValue::Binary(Some(key.clone()))])),
                )?;
            }
            match self.commit_build_txn(t).await {
                Ok(()) => return Ok(()),
                Err(e) if e.code == codes::SERIALIZATION_FAILURE => {}
                Err(e) => return Err(e),
            }
            // A writer got there first: the same rows, as they are now.
            tracing::debug!(index = %idx.name, rows = rows.len(), "index build chunk redone after concurrent writes");
            at = self.db.adjudicator.read_ts();
            for (key, row) in rows.iter_mut() {
                *row = self
                    .db
                    .storage
                    .get(def.id, key, at)
                    .await?
                    .map(|r| r.as_ref().clone());
            }
        }
        Err(SqlError::new(
            codes::SERIALIZATION_FAILURE,
            format!(
                "could not build index \"{}\": its rows kept changing under it",
                idx.name
            ),
        )
        .with_hint("build it again when the table is written less"))
    }

    /// Marks the index valid (or, with `keep` false, removes it) in the table's current
    /// definition.
    async fn finish_index(
        &self,
        database: DatabaseTables,
        table: &str,
        index_id: u64,
        keep: bool,
    ) -> SqlResult<()> {
        for _ in 0..BUILD_CHUNK_ATTEMPTS {
            let mut t = self.build_txn(database);
            let mut def = (*self.table_def(&t, table).await?).clone();
            let Some(at) = def.indexes.iter().position(|i| i.id == index_id) else {
                return Err(SqlError::new(
                    codes::UNDEFINED_OBJECT,
                    format!("the index being built on \"{table}\" was dropped"),
                ));
            };
            if keep {
                def.indexes[at].valid = true;
            } else {
                def.indexes.remove(at);
            }
            self.put_table_def(&mut t, &def)?;
            match self.commit_build_txn(t).await {
                Ok(()) => return Ok(()),
                Err(e) if e.code == codes::SERIALIZATION_FAILURE => continue,
                Err(e) => return Err(e),
            }
        }
        Err(SqlError::new(
            codes::SERIALIZATION_FAILURE,
            format!(
                "could not finish the index build on \"{table}\": its definition kept changing"
            ),
        ))
    }
}
