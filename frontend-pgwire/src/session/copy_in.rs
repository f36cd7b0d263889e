//! COPY FROM STDIN inside a session: records parsed as data arrives, written in chunks,
//! committed in bounded chunks when the session asked for them.

use crate::error::{codes, SqlError, SqlResult};
use crate::session::machine::Core;
use crate::session::machine::State;

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
        copy: &mut crate::sql::copy::CopyIn,
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
        if copy.records.is_empty() || (!all && copy.records.len() < chunk) {
            return Ok(());
        }
        let pending = copy.records.take();
        let mut at = 0;
        while at < pending.rows {
            let n = chunk.min(pending.rows - at);
            let part = pending.slice(at, n);
            at += n;
            let txn = st
                .txn
                .as_mut()
                .ok_or_else(|| SqlError::internal("COPY without a transaction"))?;
            self.exec.copy_rows(txn, copy, part).await?;
            // Bounded commits also end before the next chunk would take the transaction
            // past its limits (a full chunk of rows the size of those so far): N rows is a
            // ceiling, not a size the user has to fit to weft.txn_bytes_max.
            let next = chunk;
            let full = txn.rows_written > 0
                && (txn.bytes_written + txn.bytes_written / txn.rows_written * next
                    > self.exec.db.limits.bytes_max
                    || txn.rows_written + next > self.exec.db.limits.rows_max);
            if commit_every > 0
                && !txn.explicit
                && (copy.uncommitted >= commit_every || (full && copy.uncommitted > 0))
            {
                let done = st.txn.take().expect("the COPY's transaction");
                self.commit(done).await?;
                copy.uncommitted = 0;
                let mut fresh = self.new_txn(st, false);
                fresh.snapshot(&self.exec.db.adjudicator, &self.exec.db.storage);
                st.txn = Some(fresh);
            }
        }
        Ok(())
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
        let copy = st.copy.take().expect("checked above");
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
