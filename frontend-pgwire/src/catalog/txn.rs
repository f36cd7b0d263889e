//! A transaction as the frontend holds it: its read timestamp and its buffered writes.
//!
//! As in DSQL, uncommitted data lives only here, in the query processor: ROLLBACK or a
//! dropped connection just forgets it. COMMIT turns it into a `CommitRequest`.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use arrow::datatypes::SchemaRef;
use weft_engine::provider::{Overlay, ReadLog};
use weft_engine::row::{row_bytes, Row};
use weft_engine::service::StorageService;
use weft_engine::storage::ReadPin;
use weft_engine::{TableWrites, Timestamp};
use weft_journal::{CommitRequest, CommitService};

use crate::error::{codes, SqlError, SqlResult};

/// Per-transaction limits. Going past one is SQLSTATE 54000 and the session stays usable.
#[derive(Debug, Clone)]
pub struct TxnLimits {
    pub rows_max: usize,
    pub bytes_max: usize,
    pub duration_max: std::time::Duration,
}

impl Default for TxnLimits {
    fn default() -> Self {
        TxnLimits {
            rows_max: 50_000,
            bytes_max: 32 << 20,
            duration_max: std::time::Duration::from_secs(300),
        }
    }
}

/// What a transaction past its limits can do.
const LIMIT_HINT: &str = "split the work into several transactions; outside a transaction \
     block, SET weft.copy_commit_rows = 10000 makes a COPY commit as it goes; the limits are \
     weft serve's --txn-rows-max and --txn-bytes-max";

#[derive(Debug, Clone)]
pub struct TableBuf {
    pub schema: SchemaRef,
    pub overlay: Arc<Overlay>,
}

/// The isolation levels weft runs. READ UNCOMMITTED and READ COMMITTED requests run as
/// REPEATABLE READ (snapshot isolation), with a notice.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Isolation {
    RepeatableRead,
    Serializable,
}

impl Isolation {
    /// Parses a level as SET and BEGIN spell it; the flag says it was raised to a
    /// stronger level than asked.
    pub fn parse(s: &str) -> Option<(Isolation, bool)> {
        let norm = s
            .trim()
            .trim_matches(|c| c == '\'' || c == '"')
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
            .to_lowercase();
        match norm.as_str() {
            "serializable" => Some((Isolation::Serializable, false)),
            "repeatable read" => Some((Isolation::RepeatableRead, false)),
            "read committed" | "read uncommitted" => Some((Isolation::RepeatableRead, true)),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Isolation::RepeatableRead => "repeatable read",
            Isolation::Serializable => "serializable",
        }
    }
}

/// What `SET CONSTRAINTS` said in this transaction: whether deferrable constraints are
/// deferred, all of them and by name (a name's setting wins over ALL's).
#[derive(Debug, Clone, Default)]
pub struct ConstraintModes {
    pub all: Option<bool>,
    pub named: std::collections::HashMap<String, bool>,
}

impl ConstraintModes {
    /// Whether the constraint `name` is checked at COMMIT now: only a deferrable one can
    /// be, and it is when SET CONSTRAINTS says so, or else when it is initially deferred.
    pub fn deferred(&self, name: &str, deferrable: bool, initially: bool) -> bool {
        deferrable
            && self
                .named
                .get(name)
                .copied()
                .or(self.all)
                .unwrap_or(initially)
    }
}

/// A foreign-key check a deferred constraint leaves for COMMIT.
#[derive(Debug, Clone)]
pub enum Deferred {
    /// The child row at `key` must find its parent.
    Child {
        table: String,
        constraint: String,
        key: Vec<u8>,
    },
    /// A parent with `values` went away: no child may still reference them.
    Parent {
        table: String,
        constraint: String,
        child: String,
        values: Vec<datafusion::scalar::ScalarValue>,
    },
}

impl Deferred {
    /// The constraint whose check this is.
    pub fn constraint(&self) -> &str {
        match self {
            Deferred::Child { constraint, .. } | Deferred::Parent { constraint, .. } => constraint,
        }
    }
}

/// A transaction's writes as of a SAVEPOINT.
#[derive(Debug, Clone)]
pub struct Savepoint {
    writes: BTreeMap<u64, TableBuf>,
    deferred: Vec<Deferred>,
    schema_keys: BTreeSet<Vec<u8>>,
    locked: usize,
    rows_written: usize,
    bytes_written: usize,
}

/// A transaction's snapshot: its read timestamp, held against compaction while the
/// transaction lives.
#[derive(Debug)]
struct Snapshot {
    read_ts: Timestamp,
    _pin: ReadPin,
}

#[derive(Debug)]
pub struct Txn {
    /// Taken once, by [`Txn::snapshot`], at the first statement (as PostgreSQL takes its
    /// snapshot); every later read asks [`Txn::read_ts`].
    snapshot: Option<Snapshot>,
    /// Where the snapshot reads when it is not the adjudicator's read point
    /// (`SET weft.as_of`, a sequence's own commit).
    reading_at: Option<Timestamp>,
    pub explicit: bool,
    pub writes: BTreeMap<u64, TableBuf>,
    pub schema_keys: BTreeSet<Vec<u8>>,
    /// The database the transaction works in: whose catalog `schema_keys` are keys of.
    pub database: weft_engine::schema::DatabaseTables,
    pub locked: Vec<(u64, Vec<u8>)>,
    /// Deferred foreign-key checks, run at COMMIT.
    pub deferred: Vec<Deferred>,
    /// SET CONSTRAINTS in this transaction.
    pub constraint_modes: ConstraintModes,
    pub rows_written: usize,
    pub bytes_written: usize,
    /// On tokio's clock, which a simulation pauses and advances.
    pub started: tokio::time::Instant,
    pub isolation: Isolation,
    pub read_only: bool,
    /// What the transaction's scans read (recorded at SERIALIZABLE only).
    pub reads: Arc<ReadLog>,
}

impl Txn {
    pub fn new(explicit: bool, isolation: Isolation, read_only: bool) -> Txn {
        Txn {
            snapshot: None,
            reading_at: None,
            explicit,
            writes: BTreeMap::new(),
            schema_keys: BTreeSet::new(),
            database: Default::default(),
            locked: Vec::new(),
            deferred: Vec::new(),
            constraint_modes: ConstraintModes::default(),
            rows_written: 0,
            bytes_written: 0,
            started: tokio::time::Instant::now(),
            isolation,
            read_only,
            reads: Arc::new(ReadLog::default()),
        }
    }

    /// The transaction's snapshot will read at `ts` rather than at the adjudicator's read
    /// point.
    pub fn reading_at(mut self, ts: Timestamp) -> Txn {
        self.reading_at = Some(ts);
        self
    }

    /// The transaction works in this database (the default one unless set).
    pub fn in_database(mut self, tables: weft_engine::schema::DatabaseTables) -> Txn {
        self.database = tables;
        self
    }

    /// Takes the transaction's snapshot if it has none yet, and returns its read timestamp:
    /// the adjudicator's linearizable read point (or the timestamp of
    /// [`Txn::reading_at`]), pinned against compaction until the transaction ends. The one
    /// place a transaction's snapshot is taken.
    pub fn snapshot(
        &mut self,
        adjudicator: &dyn CommitService,
        storage: &dyn StorageService,
    ) -> Timestamp {
        if let Some(s) = &self.snapshot {
            return s.read_ts;
        }
        let read_ts = self.reading_at.unwrap_or_else(|| adjudicator.read_ts());
        self.snapshot = Some(Snapshot {
            read_ts,
            _pin: storage.pin(read_ts),
        });
        read_ts
    }

    /// Whether the snapshot has been taken (SET TRANSACTION must come before it).
    pub fn has_snapshot(&self) -> bool {
        self.snapshot.is_some()
    }

    /// The snapshot's read timestamp; XX000 if the transaction reads before taking it.
    pub fn read_ts(&self) -> SqlResult<Timestamp> {
        self.snapshot
            .as_ref()
            .map(|s| s.read_ts)
            .ok_or_else(|| SqlError::internal("a transaction read before taking its snapshot"))
    }

    /// What a SAVEPOINT remembers: the writes so far (overlays are shared until changed).
    pub fn savepoint(&self) -> Savepoint {
        Savepoint {
            writes: self.writes.clone(),
            deferred: self.deferred.clone(),
            schema_keys: self.schema_keys.clone(),
            locked: self.locked.len(),
            rows_written: self.rows_written,
            bytes_written: self.bytes_written,
        }
    }

    /// ROLLBACK TO SAVEPOINT: the writes since it are undone. (Reads made since still count
    /// for SERIALIZABLE validation, which can only make it stricter.)
    pub fn rollback_to(&mut self, sp: &Savepoint) {
        self.writes = sp.writes.clone();
        self.deferred = sp.deferred.clone();
        self.schema_keys = sp.schema_keys.clone();
        self.locked.truncate(sp.locked);
        self.rows_written = sp.rows_written;
        self.bytes_written = sp.bytes_written;
    }

    pub fn overlay(&self, table_id: u64) -> Option<Arc<Overlay>> {
        self.writes.get(&table_id).map(|b| b.overlay.clone())
    }

    /// The transaction's own version of a key, if it wrote one: `Some(None)` is a delete.
    pub fn own_write(&self, table_id: u64, key: &[u8]) -> Option<Option<Arc<Row>>> {
        self.writes.get(&table_id)?.overlay.get(key).cloned()
    }

    pub fn put(
        &mut self,
        limits: &TxnLimits,
        table_id: u64,
        schema: &SchemaRef,
        key: Vec<u8>,
        row: Option<Arc<Row>>,
    ) -> SqlResult<()> {
        self.put_counted(limits, table_id, schema, key, row, 1)
    }

    /// Writes an index entry: its bytes count against `weft.txn_bytes_max`, but it is
    /// not a row the transaction modifies (`weft.txn_rows_max` counts rows).
    pub fn put_entry(
        &mut self,
        limits: &TxnLimits,
        table_id: u64,
        schema: &SchemaRef,
        key: Vec<u8>,
        row: Option<Arc<Row>>,
    ) -> SqlResult<()> {
        self.put_counted(limits, table_id, schema, key, row, 0)
    }

    fn put_counted(
        &mut self,
        limits: &TxnLimits,
        table_id: u64,
        schema: &SchemaRef,
        key: Vec<u8>,
        row: Option<Arc<Row>>,
        rows: usize,
    ) -> SqlResult<()> {
        self.rows_written += rows;
        self.bytes_written += key.len() + row.as_ref().map(|r| row_bytes(r)).unwrap_or(0);
        if self.rows_written > limits.rows_max {
            return Err(SqlError::new(
                codes::PROGRAM_LIMIT_EXCEEDED,
                format!(
                    "transaction modifies more than {} rows (limit weft.txn_rows_max)",
                    limits.rows_max
                ),
            )
            .with_hint(LIMIT_HINT));
        }
        if self.bytes_written > limits.bytes_max {
            return Err(SqlError::new(
                codes::PROGRAM_LIMIT_EXCEEDED,
                format!(
                    "transaction modifies more than {} bytes (limit weft.txn_bytes_max)",
                    limits.bytes_max
                ),
            )
            .with_hint(LIMIT_HINT));
        }
        let buf = self.writes.entry(table_id).or_insert_with(|| TableBuf {
            schema: schema.clone(),
            overlay: Arc::new(Overlay::new()),
        });
        Arc::make_mut(&mut buf.overlay).insert(key, row);
        Ok(())
    }

    pub fn check_duration(&self, limits: &TxnLimits) -> SqlResult<()> {
        if self.started.elapsed() > limits.duration_max {
            return Err(SqlError::new(
                codes::PROGRAM_LIMIT_EXCEEDED,
                format!(
                    "transaction has been open longer than {} s (limit weft.txn_duration_max)",
                    limits.duration_max.as_secs()
                ),
            ));
        }
        Ok(())
    }

    pub fn into_commit_request(self) -> CommitRequest {
        let tables = self
            .writes
            .into_iter()
            .map(|(table_id, buf)| {
                let overlay = Arc::try_unwrap(buf.overlay).unwrap_or_else(|a| (*a).clone());
                let (keys, rows) = overlay.into_iter().unzip();
                TableWrites {
                    table_id,
                    schema: buf.schema,
                    keys,
                    rows,
                }
            })
            .collect();
        CommitRequest {
            // A transaction that never ran a statement has no snapshot and writes nothing.
            start_ts: self.snapshot.as_ref().map_or(0, |s| s.read_ts),
            tables,
            locked: self.locked,
            schema_keys: self.schema_keys.into_iter().collect(),
            schema_table: self.database.catalog,
            reads: self.reads.take(),
        }
    }
}
