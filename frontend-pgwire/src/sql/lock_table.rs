//! `LOCK TABLE`: the modes that only keep a table's definition stable while a transaction
//! reads it (ACCESS SHARE, ROW SHARE, ROW EXCLUSIVE, which pg_dump and ORMs take) are granted
//! at once. A weft transaction reads one snapshot to its end, so a concurrent ALTER or DROP
//! that commits meanwhile changes nothing it sees, and what it writes is adjudicated at
//! COMMIT. The modes that exclude other writers (SHARE and stronger) would need a lock
//! manager weft does not have: they answer 0A000 rather than pretend.

use datafusion::sql::sqlparser::ast::{Lock, LockTableMode};

use crate::catalog::txn::Txn;
use crate::error::{codes, SqlError, SqlResult};
use crate::sql::exec::Executor;
use crate::sql::outcome::{CommandTag, Outcome};

impl Executor {
    pub async fn lock_tables(&self, txn: &Txn, lock: &Lock) -> SqlResult<Outcome> {
        if !txn.explicit {
            return Err(SqlError::new(
                codes::NO_ACTIVE_SQL_TRANSACTION,
                "LOCK TABLE can only be used in transaction blocks",
            ));
        }
        // PostgreSQL's default mode is ACCESS EXCLUSIVE.
        let mode = lock
            .lock_mode
            .clone()
            .unwrap_or(LockTableMode::AccessExclusive);
        if !matches!(
            mode,
            LockTableMode::AccessShare | LockTableMode::RowShare | LockTableMode::RowExclusive
        ) {
            return Err(SqlError::unsupported(format!(
                "LOCK TABLE IN {mode} MODE is not supported"
            ))
            .with_hint(
                "weft's transactions are optimistic: conflicting writes are refused at COMMIT \
                 with 40001; SELECT ... FOR UPDATE or an advisory lock serializes writers",
            ));
        }
        for t in &lock.tables {
            let name = crate::sql::exec::table_name(&t.name)?;
            self.table_def(txn, &name).await?;
        }
        Ok(Outcome::Command(CommandTag::new("LOCK TABLE")))
    }
}
