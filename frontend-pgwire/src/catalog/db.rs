//! The shared node handle every session uses: storage, adjudicator, limits, counters, and
//! weft's tables at a read timestamp (`lookup_table`, `list_tables`).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use datafusion::catalog::{
    CatalogProvider, MemoryCatalogProvider, MemoryCatalogProviderList, MemorySchemaProvider,
    SchemaProvider,
};
use datafusion::common::DFSchema;
use datafusion::execution::context::SessionState;
use datafusion::execution::SessionStateBuilder;
use datafusion::logical_expr::Expr;
use datafusion::prelude::SessionContext;
use datafusion::scalar::ScalarValue;
use weft_engine::key::catalog_key;
use weft_engine::provider::Overlay;
use weft_engine::schema::{DatabaseTables, TableDef};
use weft_engine::service::StorageService;
use weft_engine::{Entropy, Timestamp};
use weft_journal::CommitService;

use crate::catalog::txn::TxnLimits;
use crate::error::{SqlError, SqlResult};

pub const CATALOG_NAME: &str = "weft";
pub const SCHEMA_NAME: &str = "public";

pub struct Db {
    pub storage: Arc<dyn StorageService>,
    pub adjudicator: Arc<dyn CommitService>,
    pub limits: TxnLimits,
    /// The node's memory bounds (its pool is `base_state`'s runtime's).
    pub memory: crate::catalog::memory::MemoryLimits,
    /// The template every session's DataFusion state is cloned from.
    base_state: SessionState,
    /// Every id, salt and key the node draws (table ids, SCRAM salts, cancel keys).
    pub entropy: Entropy,
    /// Unique hidden row ids for tables without a primary key: a random per-process prefix
    /// and a counter.
    rowid_prefix: u64,
    rowid_next: AtomicU64,
    pub next_pid: AtomicU64,
    /// How far back reads may go (`SET weft.as_of`).
    version_retention: std::sync::OnceLock<std::time::Duration>,
    /// Every session, by process id: for cancel requests and `pg_stat_activity`.
    pub backends: crate::catalog::activity::Backends,
    /// Advisory locks, held by this process's sessions.
    pub advisory: crate::catalog::advisory::AdvisoryLocks,
    /// Who must authenticate, and the roles configured at start (set once, at start).
    auth: std::sync::OnceLock<Arc<crate::catalog::auth::AuthConfig>>,
    /// Statements answered by the point-select fast path (`SHOW weft.point_selects`).
    pub point_selects: AtomicU64,
    /// INSERT, UPDATE and DELETE statements answered by the point-write fast path
    /// (`SHOW weft.point_writes`).
    pub point_writes: AtomicU64,
    /// Table definitions by catalog key, parsed once per catalog version.
    table_defs: crate::catalog::row_cache::VersionedCache<Option<Arc<TableDef>>>,
    /// Rows of the other catalog tables (schemas, ...) by key, likewise.
    pub catalog_rows: crate::catalog::row_cache::VersionedCache<Option<Arc<weft_engine::Row>>>,
    /// PostgreSQL's built-in catalog rows (pg_type, pg_proc, ...), shared by every session.
    pub pg_static: Arc<dyn SchemaProvider>,
    /// Sequence values this node has reserved and not yet handed out.
    pub sequences: crate::catalog::sequence_blocks::Blocks,
    /// The longest a session may stay idle in a transaction block (0: no bound).
    idle_in_txn_max: std::sync::OnceLock<std::time::Duration>,
    /// Statements, errors and commits, for the node's metrics endpoint.
    pub metrics: crate::catalog::metrics::FrontendMetrics,
    /// Connections open now (counted by the listener).
    sessions: std::sync::atomic::AtomicUsize,
    /// The most connections open at once (`--max-connections`).
    max_connections: std::sync::OnceLock<usize>,
    /// The largest message a client may send once authenticated (`--message-bytes-max`).
    message_bytes_max: std::sync::OnceLock<usize>,
    /// Refuse connections without TLS (`--require-tls`).
    require_tls: std::sync::OnceLock<bool>,
    /// How long a connection may live (`--connection-age-max-s`; zero: no bound).
    connection_age_max: std::sync::OnceLock<std::time::Duration>,
}

/// The most connections a node serves at once unless configured (`--max-connections`):
/// each session holds a DataFusion context and its buffers, so their number is bounded.
pub const MAX_CONNECTIONS_DEFAULT: usize = 500;

/// The largest message a client may send once authenticated unless configured
/// (`--message-bytes-max`): a Query, a Bind with its parameters, a CopyData chunk.
pub const MESSAGE_BYTES_MAX_DEFAULT: usize = 64 << 20;

/// Counts one open connection while it lives.
pub struct SessionCount(Arc<Db>);

impl Drop for SessionCount {
    fn drop(&mut self) {
        self.0.sessions.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Db {
    /// The node's handle over its storage and adjudicator. `base_state` is the template
    /// every session's DataFusion state is cloned from and `pg_static` PostgreSQL's
    /// built-in catalog rows (both made by [`crate::sql::context::new_db`]).
    pub fn new(
        storage: Arc<dyn StorageService>,
        adjudicator: Arc<dyn CommitService>,
        limits: TxnLimits,
        memory: crate::catalog::memory::MemoryLimits,
        base_state: SessionState,
        pg_static: Arc<dyn SchemaProvider>,
        entropy: Entropy,
    ) -> Arc<Db> {
        Arc::new(Db {
            pg_static,
            sequences: Default::default(),
            storage,
            adjudicator,
            limits,
            memory,
            base_state,
            rowid_prefix: entropy.u64(),
            entropy,
            rowid_next: AtomicU64::new(0),
            next_pid: AtomicU64::new(1),
            version_retention: std::sync::OnceLock::new(),
            auth: std::sync::OnceLock::new(),
            backends: Default::default(),
            advisory: Default::default(),
            point_selects: AtomicU64::new(0),
            point_writes: AtomicU64::new(0),
            table_defs: Default::default(),
            catalog_rows: Default::default(),
            idle_in_txn_max: std::sync::OnceLock::new(),
            metrics: Default::default(),
            sessions: std::sync::atomic::AtomicUsize::new(0),
            max_connections: std::sync::OnceLock::new(),
            message_bytes_max: std::sync::OnceLock::new(),
            require_tls: std::sync::OnceLock::new(),
            connection_age_max: std::sync::OnceLock::new(),
        })
    }

    /// Sets the server's bound on idle time in a transaction block (once, at start).
    pub fn set_idle_in_transaction_timeout_max(&self, d: std::time::Duration) {
        let _ = self.idle_in_txn_max.set(d);
    }

    /// The server's bound on idle time in a transaction block (zero: none).
    pub fn idle_in_transaction_timeout_max(&self) -> std::time::Duration {
        self.idle_in_txn_max
            .get()
            .copied()
            .unwrap_or(std::time::Duration::from_secs(300))
    }

    /// Counts a connection until the returned guard drops.
    pub fn session_opened(self: &Arc<Self>) -> SessionCount {
        self.sessions.fetch_add(1, Ordering::SeqCst);
        SessionCount(self.clone())
    }

    /// Connections open now.
    pub fn sessions(&self) -> usize {
        self.sessions.load(Ordering::SeqCst)
    }

    /// Sets the most connections served at once (once, at start).
    pub fn set_max_connections(&self, n: usize) {
        let _ = self.max_connections.set(n.max(1));
    }

    /// The most connections served at once; a connection beyond it is refused (53300).
    pub fn max_connections(&self) -> usize {
        *self.max_connections.get_or_init(|| MAX_CONNECTIONS_DEFAULT)
    }

    /// Sets the largest message a client may send once authenticated (once, at start).
    pub fn set_message_bytes_max(&self, n: usize) {
        let _ = self.message_bytes_max.set(n.max(1024));
    }

    /// The largest message a client may send once authenticated; a longer one ends the
    /// connection (FATAL 08P01) before it is read.
    pub fn message_bytes_max(&self) -> usize {
        *self
            .message_bytes_max
            .get_or_init(|| MESSAGE_BYTES_MAX_DEFAULT)
    }

    /// Refuses connections that have not started TLS (once, at start).
    pub fn set_require_tls(&self, required: bool) {
        let _ = self.require_tls.set(required);
    }

    /// Whether a connection without TLS is refused (28000) at its startup packet.
    pub fn require_tls(&self) -> bool {
        self.require_tls.get().copied().unwrap_or(false)
    }

    /// Sets how long a connection may live (once, at start; zero: no bound).
    pub fn set_connection_age_max(&self, d: std::time::Duration) {
        let _ = self.connection_age_max.set(d);
    }

    /// How long a connection may live before it is ended between transactions (zero: no
    /// bound).
    pub fn connection_age_max(&self) -> std::time::Duration {
        self.connection_age_max.get().copied().unwrap_or_default()
    }

    /// Sets who must authenticate (once, at start).
    pub fn set_auth(&self, auth: crate::catalog::auth::AuthConfig) {
        let _ = self.auth.set(Arc::new(auth));
    }

    pub fn auth(&self) -> Arc<crate::catalog::auth::AuthConfig> {
        self.auth.get_or_init(Default::default).clone()
    }

    /// Sets how far back `SET weft.as_of` may go (once, at start).
    pub fn set_version_retention(&self, d: std::time::Duration) {
        let _ = self.version_retention.set(d);
    }

    pub fn version_retention(&self) -> std::time::Duration {
        self.version_retention
            .get()
            .copied()
            .unwrap_or(std::time::Duration::from_secs(3600))
    }

    /// A fresh DataFusion context with no weft tables (for evaluating expressions over
    /// in-memory rows: RETURNING, ON CONFLICT DO UPDATE).
    pub fn scratch_context(&self) -> SessionContext {
        let ctx = self.fresh_context();
        let catalog = Arc::new(MemoryCatalogProvider::new());
        catalog
            .register_schema(SCHEMA_NAME, Arc::new(MemorySchemaProvider::new()))
            .expect("a new catalog takes a schema");
        ctx.register_catalog(CATALOG_NAME, catalog);
        ctx
    }

    /// A context cloned from the template with its own (empty) catalog list: catalogs
    /// registered in it are seen by nobody else.
    pub fn fresh_context(&self) -> SessionContext {
        let state = SessionStateBuilder::new_from_existing(self.base_state.clone())
            .with_catalog_list(Arc::new(MemoryCatalogProviderList::new()))
            .build();
        SessionContext::new_with_state(state)
    }

    pub fn next_rowid(&self) -> Vec<u8> {
        let n = self.rowid_next.fetch_add(1, Ordering::Relaxed);
        let mut id = Vec::with_capacity(16);
        id.extend_from_slice(&self.rowid_prefix.to_be_bytes());
        id.extend_from_slice(&n.to_be_bytes());
        weft_engine::key::encode_key(&[&ScalarValue::Binary(Some(id))]).expect("binary keys encode")
    }

    /// Looks a table up by name as of `read_ts`, seeing the transaction's own DDL first.
    pub async fn lookup_table(
        &self,
        tables: DatabaseTables,
        read_ts: Timestamp,
        catalog_overlay: Option<&Overlay>,
        name: &str,
    ) -> SqlResult<Option<Arc<TableDef>>> {
        let key = catalog_key(name);
        if let Some(own) = catalog_overlay.and_then(|o| o.get(&key)) {
            return table_def_of(own.as_deref(), name);
        }
        let read = async {
            let row = self.storage.get(tables.catalog, &key, read_ts).await?;
            table_def_of(row.as_deref(), name)
        };
        self.table_defs
            .get(&*self.storage, tables.catalog, &key, read_ts, read)
            .await
    }

    /// Every table as of `read_ts`, seeing the transaction's own DDL.
    pub async fn list_tables(
        &self,
        tables: DatabaseTables,
        read_ts: Timestamp,
        catalog_overlay: Option<&Overlay>,
    ) -> SqlResult<Vec<Arc<TableDef>>> {
        let mut rows: std::collections::BTreeMap<Vec<u8>, Option<Arc<weft_engine::Row>>> = self
            .storage
            .scan(
                tables.catalog,
                weft_engine::schema::catalog_schema(),
                read_ts,
            )
            .await?
            .into_iter()
            .map(|(k, r)| (k, Some(r)))
            .collect();
        if let Some(o) = catalog_overlay {
            for (k, v) in o {
                rows.insert(k.clone(), v.clone());
            }
        }
        let mut out = Vec::new();
        for row in rows.into_values().flatten() {
            if let Some(ScalarValue::Utf8(Some(json))) = row.get(1) {
                out.push(Arc::new(
                    TableDef::from_json(json).map_err(SqlError::internal)?,
                ));
            }
        }
        Ok(out)
    }

    /// Parses the DEFAULT expressions of a table.
    pub fn column_defaults(&self, def: &TableDef) -> HashMap<String, Expr> {
        let mut out = HashMap::new();
        for c in &def.columns {
            if let Some(sql) = &c.default {
                let ctx = self.fresh_context();
                if let Ok(e) = ctx.parse_sql_expr(sql, &DFSchema::empty()) {
                    out.insert(c.name.clone(), e);
                }
            }
        }
        out
    }
}

/// The table definition a catalog row holds.
fn table_def_of(row: Option<&weft_engine::Row>, name: &str) -> SqlResult<Option<Arc<TableDef>>> {
    match row {
        None => Ok(None),
        Some(row) => match row.get(1) {
            Some(ScalarValue::Utf8(Some(json))) => TableDef::from_json(json)
                .map(|d| Some(Arc::new(d)))
                .map_err(SqlError::internal),
            _ => Err(SqlError::internal(format!(
                "catalog row for {name} is malformed"
            ))),
        },
    }
}
