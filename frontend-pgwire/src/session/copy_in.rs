//! COPY FROM STDIN inside a session: records parsed as data arrives, written in chunks,
//! committed in bounded chunks when the session asked for them.

use crate::catalog::txn::Txn;
use crate::error::{codes, SqlError, SqlResult};
use crate::session::machine::Core;
use crate::session::machine::State;
use crate::sql::copy::CopyIn;
use crate::sql::copy_chunk::Readying;

/// Records parsed before they are written as one batch (copy_load.rs), or one INSERT.
pub(crate) const COPY_CHUNK_ROWS: usize = 8192;

impl Core {
    /// Inserts what a COPY FROM has parsed, in chunks; with `weft.copy_commit_rows` set and
    /// no transaction block, commits every that many rows.
    pub(crate) async fn copy_flush(&self, st: &mut State, all: bool) -> SqlResult<()> {
        let Some(mut copy) = st.copy.take() else {
            return Ok(());
        };
        let result = self.copy_flush_inner(st, &mut copy, all).await;
        st.copy = Some(copy);
        result
    }

    pub(crate) async fn copy_flush_inner(
        &self,
        st: &mut State,
        copy: &mut CopyIn,
        all: bool,
    ) -> SqlResult<()> {
        let commit_every = st
            .settings
            .get("weft.copy_commit_rows")
            .and_then(|v| v.trim().parse::<usize>().ok())
            .unwrap_or(0);
        // Batches of at most one bounded commit's rows.
        let chunk = match commit_every {
            0 => COPY_CHUNK_ROWS,
            n => n.min(COPY_CHUNK_ROWS),
        };
        if !copy.records.is_empty() && (all || copy.records.len() >= chunk) {
            let pending = copy.records.take();
            let mut at = 0;
            while at < pending.rows {
                let n = chunk.min(pending.rows - at);
                let part = pending.slice(at, n);
                at += n;
                match copy.direct.clone() {
                    // The direct path's chunk is made ready on another thread, and the
                    // one made ready before is written meanwhile.
                    Some(def) => {
                        let next =
                            Readying::start(self.exec.db.clone(), def, copy.columns.clone(), part);
                        if let Some(done) = copy.readying.replace(next) {
                            self.copy_write_ready(st, copy, done).await?;
                            self.copy_commit_if_due(st, copy, chunk, commit_every)
                                .await?;
                        }
                    }
                    None => {
                        let txn = self.copy_txn(st, copy).await?;
                        self.exec.copy_rows(txn, copy, part).await?;
                        self.copy_commit_if_due(st, copy, chunk, commit_every)
                            .await?;
                    }
                }
            }
        }
        if all {
            if let Some(done) = copy.readying.take() {
                self.copy_write_ready(st, copy, done).await?;
                self.copy_commit_if_due(st, copy, chunk, commit_every)
                    .await?;
            }
        }
        Ok(())
    }

    /// The COPY's transaction with its snapshot. When the commit before it is in flight,
    /// the snapshot waits for it, so that the uniqueness checks see the rows just
    /// committed; unless that commit's keys are known (`CopyIn::committing_keys`), in
    /// which case the checks look at them too and the COPY goes on at once.
    async fn copy_txn<'a>(&self, st: &'a mut State, copy: &mut CopyIn) -> SqlResult<&'a mut Txn> {
        if copy.committing_keys.is_none() {
            if let Some(committing) = copy.committing.take() {
                settle(committing).await?;
            }
        }
        let txn = st
            .txn
            .as_mut()
            .ok_or_else(|| SqlError::internal("COPY without a transaction"))?;
        txn.snapshot(&*self.exec.db.adjudicator, &*self.exec.db.storage);
        Ok(txn)
    }

    /// Writes a chunk made ready on another thread. It was made ready for the table as it
    /// was then; a table changed since (a concurrent ALTER committed in between) is read
    /// again and the chunk takes the ordinary path.
    async fn copy_write_ready(
        &self,
        st: &mut State,
        copy: &mut CopyIn,
        mut done: Readying,
    ) -> SqlResult<()> {
        let ready = done.finish().await;
        let txn = self.copy_txn(st, copy).await?;
        let current = self.exec.table_def(txn, &copy.table).await?;
        if *done.def != *current {
            return self.exec.copy_rows(txn, copy, done.part).await;
        }
        match ready? {
            Some(ready) => self.exec.copy_write(txn, copy, ready).await,
            None => self.exec.copy_rows(txn, copy, done.part).await,
        }
    }

    /// With `weft.copy_commit_rows` set and no transaction block, starts the commit of the
    /// rows so far once there are that many, or once the next chunk would take the
    /// transaction past its limits (a full chunk of rows the size of those so far): N rows
    /// is a ceiling, not a size the user has to fit to weft.txn_bytes_max.
    async fn copy_commit_if_due(
        &self,
        st: &mut State,
        copy: &mut CopyIn,
        chunk: usize,
        commit_every: usize,
    ) -> SqlResult<()> {
        let txn = st
            .txn
            .as_ref()
            .ok_or_else(|| SqlError::internal("COPY without a transaction"))?;
        let full = txn.rows_written > 0
            && (txn.bytes_written + txn.bytes_written / txn.rows_written * chunk
                > self.exec.db.limits.bytes_max
                || txn.rows_written + chunk > self.exec.db.limits.rows_max);
        if commit_every > 0
            && !txn.explicit
            && (copy.uncommitted >= commit_every || (full && copy.uncommitted > 0))
        {
            // One commit in flight at a time, in order: a failure keeps a prefix.
            if let Some(committing) = copy.committing.take() {
                copy.committing_keys = None;
                settle(committing).await?;
            }
            let done = st.txn.take().expect("the COPY's transaction");
            copy.committing_keys = copy
                .direct
                .as_deref()
                .filter(|def| {
                    def.indexes.is_empty()
                        && def.foreign_keys.is_empty()
                        && def.referenced_by.is_empty()
                        && done.deferred.is_empty()
                })
                .map(|def| {
                    let keys = done
                        .writes
                        .get(&def.id)
                        .map(|b| b.overlay.keys().cloned().collect())
                        .unwrap_or_default();
                    (def.id, keys)
                });
            copy.committing = Some(self.commit_behind(done).await?);
            copy.uncommitted = 0;
            // Its snapshot is taken when it first writes (`copy_txn`).
            st.txn = Some(self.new_txn(st, false));
        }
        Ok(())
    }

    /// Starts the commit of a COPY's bounded transaction and returns without waiting for
    /// it, so that the next records are parsed and made ready while it is written. It runs
    /// on the blocking pool: a task spawned from the session's would wait in the same
    /// worker's queue until the session yields.
    async fn commit_behind(&self, txn: Txn) -> SqlResult<tokio::task::JoinHandle<SqlResult<()>>> {
        if !txn.deferred.is_empty() {
            // Deferred constraints are checked by the session's executor, in the commit.
            self.commit(txn).await?;
            return Ok(tokio::task::spawn(async { Ok(()) }));
        }
        txn.check_duration(&self.exec.db.limits)?;
        let runtime = tokio::runtime::Handle::current();
        let req = txn.into_commit_request();
        let adjudicator = self.exec.db.adjudicator.clone();
        Ok(tokio::task::spawn_blocking(move || {
            runtime
                .block_on(adjudicator.commit(req))
                .map(|_| ())
                .map_err(SqlError::from)
        }))
    }

    /// Ends a COPY FROM: the rest of the rows, then the commit of an implicit transaction.
    pub(crate) async fn copy_done(&self, st: &mut State) -> SqlResult<usize> {
        let Some(copy) = st.copy.as_mut() else {
            return Err(SqlError::new(
                codes::PROTOCOL_VIOLATION,
                "CopyDone without a COPY in progress",
            ));
        };
        if copy.failed.is_none() {
            if let Err(e) = copy.finish() {
                copy.failed = Some(e);
            }
        }
        if st.copy.as_ref().is_some_and(|c| c.failed.is_none()) {
            if let Err(e) = self.copy_flush(st, true).await {
                if let Some(c) = st.copy.as_mut() {
                    c.failed = Some(e);
                }
            }
        }
        let mut copy = st.copy.take().expect("checked above");
        // A commit still in flight comes first: its error is the earlier one.
        copy.committing_keys = None;
        if let Some(committing) = copy.committing.take() {
            if let Err(e) = settle(committing).await {
                self.fail(st);
                return Err(e);
            }
        }
        if let Some(e) = copy.failed {
            self.fail(st);
            return Err(e);
        }
        if st.txn.as_ref().is_some_and(|t| !t.explicit) {
            let t = st.txn.take().expect("implicit transaction");
            self.commit(t).await?;
        }
        Ok(copy.count)
    }
}

/// The outcome of a commit started by [`Core::commit_behind`].
pub(crate) async fn settle(committing: tokio::task::JoinHandle<SqlResult<()>>) -> SqlResult<()> {
    committing
        .await
        .map_err(|e| SqlError::internal(format!("a COPY's commit did not finish: {e}")))?
}
