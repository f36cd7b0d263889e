//! A chunk of COPY's records on its way to being written: made ready (typed, checked,
//! keyed) without the transaction, possibly on another thread. The data only; the work is
//! in `copy_load.rs`, and the writing in `copy_exec.rs`.

use std::future::Future;
use std::sync::Arc;

use weft_engine::row::Row;
use weft_engine::schema::TableDef;

use crate::error::{SqlError, SqlResult};
use crate::sql::copy_fields::RecordColumns;

/// A chunk of COPY's records made ready without the transaction: the table's rows,
/// checked as INSERT checks them (types, NOT NULL, lengths, CHECK constraints), and their
/// keys. What is left to do needs the transaction's snapshot: the uniqueness of the keys
/// and the writes ([`Executor::copy_write`](crate::sql::exec::Executor)).
#[derive(Debug)]
pub struct ReadyChunk {
    /// The table as it was read when the chunk was made ready.
    pub def: Arc<TableDef>,
    pub rows: Vec<Row>,
    pub keys: Vec<Vec<u8>>,
}

/// A chunk being made ready on a thread of its own, while the session parses the records
/// that follow: the COPY's second stage, so that a load uses both a core for parsing and
/// one for types and checks.
#[derive(Debug)]
pub struct Readying {
    handle: tokio::task::JoinHandle<SqlResult<Option<ReadyChunk>>>,
    /// The table it is made ready for.
    pub def: Arc<TableDef>,
    /// Its records, for the INSERT path if the table changed meanwhile.
    pub part: RecordColumns,
}

impl Readying {
    /// Runs `make` on the blocking pool: a task spawned from the session's would wait in
    /// the same worker's queue until the session yields.
    pub fn spawn(
        def: Arc<TableDef>,
        part: RecordColumns,
        make: impl Future<Output = SqlResult<Option<ReadyChunk>>> + Send + 'static,
    ) -> Readying {
        let runtime = tokio::runtime::Handle::current();
        let handle = tokio::task::spawn_blocking(move || runtime.block_on(make));
        Readying { handle, def, part }
    }

    /// The chunk made ready (`None`: it takes the INSERT path).
    pub async fn finish(&mut self) -> SqlResult<Option<ReadyChunk>> {
        (&mut self.handle)
            .await
            .map_err(|e| SqlError::internal(format!("a COPY chunk was not made ready: {e}")))?
    }
}
