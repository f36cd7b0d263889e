//! What catalog tables and system functions know of the session: its identity, its
//! settings, and the snapshot of weft's catalog the statement reads.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, OnceLock};

use datafusion::error::{DataFusionError, Result as DfResult};
use weft_engine::schema::{DatabaseTables, TableDef};
use weft_engine::Timestamp;

use crate::catalog::db::Db;
use crate::catalog::roles::BOOTSTRAP_ROLE_NAME;
use crate::catalog::view::View;

/// Who the session is, fixed at startup.
#[derive(Debug, Clone)]
pub struct Identity {
    pub user: String,
    pub database: String,
    pub pid: i32,
}

/// The catalog as one statement sees it.
#[derive(Debug, Default)]
pub struct Snapshot {
    pub read_ts: Timestamp,
    /// Built from committed rows only (no own DDL), so it can be reused at the same
    /// timestamp.
    pub committed: bool,
    pub tables: Vec<Arc<TableDef>>,
    pub sequences: Vec<crate::catalog::sequences::SeqDef>,
    /// Committed roles (the transaction's own role DDL is not seen here).
    pub roles: Vec<crate::catalog::roles::RoleDef>,
    pub views: Vec<crate::catalog::views::ViewDef>,
    /// The cluster's databases (committed ones).
    pub databases: Vec<crate::catalog::databases::DatabaseDef>,
    /// The schemas made with `CREATE SCHEMA` (the built-in ones are not listed).
    pub schemas: Vec<crate::catalog::schemas::SchemaDef>,
    /// The rows holding ACLs GRANT gave built-in schemas (`public`).
    pub built_in_acls: Vec<crate::catalog::schemas::SchemaDef>,
}

impl Snapshot {
    /// The oid of the schema a relation key ([`weft_engine::schema::relation_key`]) is in.
    pub fn namespace_oid(&self, relation: &str) -> i32 {
        let (schema, _) = weft_engine::schema::split_relation(relation);
        crate::catalog::schemas::oid_of(&self.schemas, schema)
            .unwrap_or(crate::catalog::oids::NS_PUBLIC)
    }
}

/// What catalog tables and functions need to know about the session.
#[derive(Debug, Default)]
pub struct SessionMeta {
    /// The last value `nextval` gave this session, per sequence (`currval`), and overall
    /// (`lastval`).
    pub currvals: Mutex<HashMap<String, i64>>,
    pub lastval: Mutex<Option<i64>>,
    pub(crate) identity: OnceLock<Identity>,
    /// The system tables of the database the session connected to (fixed at startup).
    pub(crate) database: OnceLock<DatabaseTables>,
    pub(crate) settings: Mutex<Arc<BTreeMap<String, String>>>,
    pub(crate) snapshot: Mutex<Arc<Snapshot>>,
    /// Sequences the open transaction created and has not committed, by name, as the
    /// statement being run left them: `nextval` on one hands out values from here (no
    /// other session can see it yet), and the statement's end writes it back to the
    /// transaction. The flag says whether a value was handed out.
    pub(crate) pending_sequences: Mutex<HashMap<String, (crate::catalog::sequences::SeqDef, bool)>>,
    /// The session's open cursors, for `pg_cursors`: (name, statement, holdable,
    /// scrollable).
    pub(crate) cursors: Mutex<Vec<(String, String, bool, bool)>>,
    /// The schemas of the session's `search_path` that existed when the statement being
    /// run began (`current_schemas`, `pg_table_is_visible`, `regclass`); `None` (before
    /// the first statement) means `public`.
    pub(crate) search_path: Mutex<Option<Arc<Vec<String>>>>,
    /// The role `SET ROLE` chose (`None`: the login role), which `current_user` names and
    /// privilege checks use.
    pub(crate) role: Mutex<Option<String>>,
}

impl SessionMeta {
    pub fn set_identity(&self, id: Identity) {
        let _ = self.identity.set(id);
    }

    /// Fixes the database the session works in (at startup, once).
    pub fn set_database(&self, tables: DatabaseTables) {
        let _ = self.database.set(tables);
    }

    /// Sets the uncommitted sequences the statement about to run may draw from.
    pub fn set_pending_sequences(&self, defs: Vec<crate::catalog::sequences::SeqDef>) {
        let mut p = self
            .pending_sequences
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        p.clear();
        p.extend(defs.into_iter().map(|d| (d.name.clone(), (d, false))));
    }

    /// `want` values of `name` if the open transaction created it (`None` otherwise).
    pub fn pending_values(
        &self,
        name: &str,
        want: usize,
    ) -> Option<crate::error::SqlResult<Vec<i64>>> {
        let mut p = self
            .pending_sequences
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        let (def, used) = p.get_mut(name)?;
        let mut out = Vec::with_capacity(want);
        for _ in 0..want {
            match def.after_last() {
                Ok(v) => {
                    def.last = Some(v);
                    out.push(v);
                }
                Err(e) => return Some(Err(e)),
            }
        }
        *used = true;
        Some(Ok(out))
    }

    /// The uncommitted sequences a statement drew values from, to write back.
    pub fn take_used_pending_sequences(&self) -> Vec<crate::catalog::sequences::SeqDef> {
        let mut p = self
            .pending_sequences
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        p.drain()
            .filter(|(_, (_, used))| *used)
            .map(|(_, (d, _))| d)
            .collect()
    }

    /// The system tables of the session's database.
    pub fn tables(&self) -> DatabaseTables {
        self.database.get().copied().unwrap_or_default()
    }

    /// The role statements run as: the one `SET ROLE` chose, else the login role.
    pub fn current_role(&self) -> String {
        let chosen = self.role.lock().unwrap_or_else(|e| e.into_inner()).clone();
        chosen.unwrap_or_else(|| self.identity().user)
    }

    /// `f` of the role statements run as, without copying its name (the check every
    /// statement makes first).
    pub fn with_current_role<R>(&self, f: impl FnOnce(&str) -> R) -> R {
        let chosen = self.role.lock().unwrap_or_else(|e| e.into_inner());
        match (chosen.as_deref(), self.identity.get()) {
            (Some(r), _) => f(r),
            (None, Some(id)) => f(&id.user),
            (None, None) => f(BOOTSTRAP_ROLE_NAME),
        }
    }

    /// `SET ROLE name` (`Some`) or `RESET ROLE` / `SET ROLE NONE` (`None`).
    pub fn set_role(&self, role: Option<String>) {
        *self.role.lock().unwrap_or_else(|e| e.into_inner()) = role;
    }

    pub fn identity(&self) -> Identity {
        self.identity.get().cloned().unwrap_or(Identity {
            user: BOOTSTRAP_ROLE_NAME.into(),
            database: "postgres".into(),
            pid: 0,
        })
    }

    pub fn set_settings(&self, s: &BTreeMap<String, String>) {
        let mut cur = self.settings.lock().unwrap_or_else(|e| e.into_inner());
        if **cur != *s {
            *cur = Arc::new(s.clone());
        }
    }

    /// The session's open cursors, as `pg_cursors` lists them.
    pub fn set_cursors(&self, cursors: Vec<(String, String, bool, bool)>) {
        *self.cursors.lock().unwrap_or_else(|e| e.into_inner()) = cursors;
    }

    /// Records the schemas of the search path that exist (at each statement's start).
    pub fn set_search_path(&self, path: Vec<String>) {
        let mut cur = self.search_path.lock().unwrap_or_else(|e| e.into_inner());
        if cur.as_deref() != Some(&path) {
            *cur = Some(Arc::new(path));
        }
    }

    /// The schemas of the search path that exist, in order.
    pub fn search_path(&self) -> Arc<Vec<String>> {
        self.search_path
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
            .unwrap_or_else(|| Arc::new(vec![weft_engine::schema::PUBLIC_SCHEMA.to_string()]))
    }

    pub fn settings(&self) -> Arc<BTreeMap<String, String>> {
        self.settings
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    pub fn snapshot(&self) -> Arc<Snapshot> {
        self.snapshot
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Loads the catalog as `view` sees it, unless the snapshot already is that.
    pub async fn refresh(&self, db: &Db, view: &View) -> DfResult<Arc<Snapshot>> {
        let dbt = self.tables();
        let own = view.overlays.get(&dbt.catalog).cloned();
        let own_seq = view.overlays.contains_key(&dbt.sequences)
            || view.overlays.contains_key(&dbt.views)
            || view.overlays.contains_key(&dbt.schemas());
        {
            let cur = self.snapshot();
            if own.is_none() && !own_seq && cur.committed && cur.read_ts == view.read_ts {
                return Ok(cur);
            }
        }
        let mut tables = db
            .list_tables(dbt, view.read_ts, own.as_deref())
            .await
            .map_err(|e| DataFusionError::External(Box::new(e)))?;
        tables.sort_by(|a, b| a.name.cmp(&b.name));
        let own_seqs = view.overlays.get(&dbt.sequences).cloned();
        let sequences = crate::catalog::sequences::list(db, dbt, view.read_ts, own_seqs.as_deref())
            .await
            .map_err(|e| DataFusionError::External(Box::new(e)))?;
        let roles = crate::catalog::roles::list(db, view.read_ts)
            .await
            .map_err(|e| DataFusionError::External(Box::new(e)))?;
        let own_views = view.overlays.get(&dbt.views).cloned();
        let views = crate::catalog::views::list(db, dbt, view.read_ts, own_views.as_deref())
            .await
            .map_err(|e| DataFusionError::External(Box::new(e)))?;
        let databases = crate::catalog::databases::list(db, view.read_ts)
            .await
            .map_err(|e| DataFusionError::External(Box::new(e)))?;
        let own_schemas = view.overlays.get(&dbt.schemas()).cloned();
        let (built_in_acls, schemas) =
            crate::catalog::schemas::list_rows(db, dbt, view.read_ts, own_schemas.as_deref())
                .await
                .map_err(|e| DataFusionError::External(Box::new(e)))?
                .into_iter()
                .partition(|s| crate::catalog::schemas::is_built_in(&s.name));
        let snap = Arc::new(Snapshot {
            schemas,
            built_in_acls,
            databases,
            read_ts: view.read_ts,
            committed: own.is_none() && !own_seq,
            tables,
            sequences,
            roles,
            views,
        });
        *self.snapshot.lock().unwrap_or_else(|e| e.into_inner()) = snap.clone();
        Ok(snap)
    }
}

/// Whether a statement calls a function that reads the catalog snapshot
/// (`pg_get_constraintdef`, `pg_get_indexdef`, `to_regclass`).
pub fn calls_catalog_function(stmt: &datafusion::sql::sqlparser::ast::Statement) -> bool {
    use datafusion::sql::sqlparser::ast::{visit_expressions, Expr};
    use std::ops::ControlFlow;
    visit_expressions(stmt, |e| {
        if let Expr::Function(f) = e {
            let name = f
                .name
                .0
                .last()
                .and_then(|p| p.as_ident())
                .map(|i| i.value.to_lowercase());
            if matches!(
                name.as_deref(),
                Some(
                    "pg_get_constraintdef"
                        | "pg_get_indexdef"
                        | "pg_get_viewdef"
                        | "to_regclass"
                        | "pg_get_serial_sequence"
                        | "pg_relation_size"
                        | "pg_table_size"
                        | "pg_indexes_size"
                        | "pg_total_relation_size"
                        | "pg_database_size"
                        | "has_table_privilege"
                        | "has_any_column_privilege"
                        | "has_column_privilege"
                        | "has_sequence_privilege"
                        | "has_schema_privilege"
                        | "has_database_privilege"
                        | "pg_has_role"
                        | "pg_get_userbyid"
                )
            ) {
                return ControlFlow::Break(());
            }
        }
        ControlFlow::Continue(())
    })
    .is_break()
}

// ------------------------------------------------------------------ object ids and types
