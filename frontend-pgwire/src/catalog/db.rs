//! The shared database handle every session uses, and weft's catalog as DataFusion sees it.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use datafusion::catalog::{
    CatalogProvider, MemoryCatalogProvider, MemoryCatalogProviderList, MemorySchemaProvider,
    SchemaProvider,
};
use datafusion::common::DFSchema;
use datafusion::datasource::TableProvider;
use datafusion::error::{DataFusionError, Result as DfResult};
use datafusion::execution::context::SessionState;
use datafusion::execution::SessionStateBuilder;
use datafusion::logical_expr::Expr;
use datafusion::prelude::{SessionConfig, SessionContext};
use datafusion::scalar::ScalarValue;
use weft_engine::key::catalog_key;
use weft_engine::provider::{Overlay, ReadLog, WeftTable};
use weft_engine::schema::{TableDef, CATALOG_TABLE_ID};
use weft_engine::storage::StorageNode;
use weft_engine::Timestamp;
use weft_journal::Adjudicator;

use crate::error::{SqlError, SqlResult};
use crate::catalog::pgcatalog::{
    is_catalog_relation, InformationSchema, PgCatalogSchema, SessionMeta, INFORMATION_SCHEMA,
    PG_CATALOG,
};
use crate::catalog::txn::TxnLimits;

pub const CATALOG_NAME: &str = "weft";
pub const SCHEMA_NAME: &str = "public";

pub struct Db {
    pub storage: Arc<StorageNode>,
    pub adjudicator: Arc<Adjudicator>,
    pub limits: TxnLimits,
    /// The template every session's DataFusion state is cloned from.
    base_state: SessionState,
    /// Unique hidden row ids for tables without a primary key: a random per-process prefix
    /// and a counter.
    rowid_prefix: u64,
    rowid_next: AtomicU64,
    pub next_pid: AtomicU64,
    /// How far back reads may go (`SET weft.as_of`).
    version_retention: std::sync::OnceLock<std::time::Duration>,
    /// Every session, by process id: for cancel requests and `pg_stat_activity`.
    pub backends: crate::catalog::activity::Backends,
    /// Who must authenticate, and the roles configured at start (set once, at start).
    auth: std::sync::OnceLock<Arc<crate::catalog::roles::AuthConfig>>,
    /// Statements answered by the point-select fast path (`SHOW weft.point_selects`).
    pub point_selects: AtomicU64,
    /// INSERT, UPDATE and DELETE statements answered by the point-write fast path
    /// (`SHOW weft.point_writes`).
    pub point_writes: AtomicU64,
    /// PostgreSQL's built-in catalog rows (pg_type, pg_proc, ...), shared by every session.
    pub pg_static: Arc<dyn SchemaProvider>,
    /// Sequence values this node has reserved and not yet handed out.
    pub sequences: crate::catalog::sequences::Blocks,
    /// The longest a session may stay idle in a transaction block (0: no bound).
    idle_in_txn_max: std::sync::OnceLock<std::time::Duration>,
    /// Connections open now (counted by the listener).
    sessions: std::sync::atomic::AtomicUsize,
}

/// Counts one open connection while it lives.
pub struct SessionCount(Arc<Db>);

impl Drop for SessionCount {
    fn drop(&mut self) {
        self.0.sessions.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Casts to PostgreSQL's types that weft stores as text (`::jsonb`, `::json`, `::uuid`), and
/// to the oid types (`::regclass`, `::pg_catalog.text`) through `datafusion-pg-catalog`.
#[derive(Debug)]
struct WeftTypePlanner;

impl datafusion::logical_expr::planner::TypePlanner for WeftTypePlanner {
    fn plan_type_field(
        &self,
        sql_type: &datafusion::sql::sqlparser::ast::DataType,
    ) -> DfResult<Option<arrow::datatypes::FieldRef>> {
        use datafusion::sql::sqlparser::ast::{DataType as T, TimezoneInfo};
        match sql_type {
            T::JSON => Ok(Some(Arc::new(crate::types::jsonb::udfs::json_field("", false)))),
            // `::timestamptz` is weft's timestamptz (microseconds, UTC), as its columns are.
            T::Timestamp(_, TimezoneInfo::WithTimeZone | TimezoneInfo::Tz) => Ok(Some(Arc::new(
                weft_engine::SqlType::Timestamptz.arrow_field("", true),
            ))),
            T::Custom(name, args)
                if args.is_empty() && name.to_string().eq_ignore_ascii_case("timestamptz") =>
            {
                Ok(Some(Arc::new(
                    weft_engine::SqlType::Timestamptz.arrow_field("", true),
                )))
            }
            T::JSONB => Ok(Some(Arc::new(crate::types::jsonb::udfs::json_field("", true)))),
            T::Uuid => Ok(Some(Arc::new(arrow::datatypes::Field::new(
                "",
                arrow::datatypes::DataType::Utf8,
                true,
            )))),
            _ => datafusion_pg_catalog::pg_catalog::oid_type_planner::PgOidTypePlanner
                .plan_type_field(sql_type),
        }
    }
}

impl Db {
    pub fn new(
        storage: Arc<StorageNode>,
        adjudicator: Arc<Adjudicator>,
        limits: TxnLimits,
    ) -> Arc<Db> {
        let config = SessionConfig::new()
            .with_default_catalog_and_schema(CATALOG_NAME, SCHEMA_NAME)
            .with_create_default_catalog_and_schema(false)
            .with_information_schema(false)
            .with_target_partitions(2)
            .set_str("datafusion.sql_parser.dialect", "PostgreSQL")
            // `0.1` is a numeric, as in PostgreSQL, not a float (0.1 + 0.2 = 0.3).
            .set_bool("datafusion.sql_parser.parse_float_as_decimal", true);
        let base_state = SessionStateBuilder::new()
            .with_config(config)
            .with_default_features()
            // Correlated subqueries DataFusion cannot decorrelate run per outer row.
            .with_query_planner(Arc::new(crate::sql::subplan::WeftQueryPlanner))
            // Casts to PostgreSQL's oid types (`::regclass`, `::pg_catalog.text`) plan.
            .with_type_planner(Arc::new(WeftTypePlanner))
            .build();
        // jsonb's operators, ahead of DataFusion's own planners (which take `||` and `@>`
        // for arrays).
        let mut builder = SessionStateBuilder::new_from_existing(base_state);
        if let Some(planners) = builder.expr_planners().as_mut() {
            planners.insert(0, Arc::new(crate::types::jsonb::planner::JsonOperators::default()));
            planners.insert(0, Arc::new(crate::types::datetime::DateIntervalArithmetic));
            planners.insert(0, Arc::new(crate::types::floats::RealWidening));
        }
        let base_state = builder.build();
        // `x op ANY|ALL (subquery)` runs as a SubPlan (crate::sql::subplan): DataFusion's rewrite
        // of it confuses a subquery's table with the same table outside it, and renames
        // the column it computes.
        let rules: Vec<_> = base_state
            .optimizers()
            .iter()
            .filter(|r| r.name() != "rewrite_set_comparison")
            .cloned()
            .collect();
        let mut base_state = SessionStateBuilder::new_from_existing(base_state)
            .with_optimizer_rules(rules)
            .build();
        // character(n) and uuid in comparisons and LIKE, as in PostgreSQL.
        base_state.add_analyzer_rule(Arc::new(crate::types::text_types::TextTypeSemantics));
        // Integer overflow is an error and casts to integers round, as in PostgreSQL.
        base_state.add_analyzer_rule(Arc::new(crate::types::integers::CheckedIntegers::default()));
        base_state.add_analyzer_rule(Arc::new(crate::types::floats::FloatRounding::default()));
        base_state.add_analyzer_rule(Arc::new(crate::types::floats::FloatSemantics::default()));
        base_state.add_analyzer_rule(Arc::new(crate::types::datetime::DateTimeSemantics::default()));
        // `x::jsonb` through jsonb's input function.
        base_state.add_analyzer_rule(Arc::new(crate::types::jsonb::planner::JsonCasts::default()));
        // numeric division and avg with PostgreSQL's result scales: before type coercion,
        // which makes avg's integer argument a float.
        let mut builder = SessionStateBuilder::new_from_existing(base_state);
        if let Some(analyzer) = builder.analyzer().as_mut() {
            let at = analyzer
                .rules
                .iter()
                .position(|r| r.name() == "type_coercion")
                .unwrap_or(0);
            // pg_typeof after numeric's rewrite of avg, whose type it changes.
            analyzer.rules.insert(at, crate::types::pg_typeof::rule());
            analyzer
                .rules
                .insert(at, Arc::new(crate::types::numeric::NumericSemantics::default()));
            // `int4_col + 1` is an integer sum, as in PostgreSQL.
            analyzer
                .rules
                .insert(at, Arc::new(crate::types::integers::IntegerLiterals));
            // '{1,2}' as an array where an array is wanted, before type coercion (which
            // cannot compare an array with text).
            analyzer
                .rules
                .insert(at, Arc::new(crate::types::arrays::ArrayCasts::default()));
        }
        let mut base_state = builder.build();
        {
            use datafusion::execution::FunctionRegistry;
            base_state
                .register_udf(Arc::new(crate::types::pg_typeof::udf()))
                .expect("pg_typeof registers in a fresh state");
            base_state
                .register_udf(Arc::new(crate::types::datetime::at_time_zone_udf()))
                .expect("weft_at_time_zone registers in a fresh state");
            base_state
                .register_udf(Arc::new(crate::types::datetime::justify_hours_udf()))
                .expect("justify_hours registers in a fresh state");
            // PostgreSQL's template patterns, in place of DataFusion's chrono patterns.
            base_state
                .register_udf(Arc::new(crate::types::to_char::udf()))
                .expect("to_char registers in a fresh state");
            for f in crate::types::jsonb::udfs::registered() {
                base_state
                    .register_udf(f)
                    .expect("the json functions register in a fresh state");
            }
            // PostgreSQL's `variance` is the sample variance.
            let var_samp = datafusion::functions_aggregate::variance::var_samp_udaf();
            base_state
                .register_udaf(Arc::new(
                    var_samp.as_ref().clone().with_aliases(["variance"]),
                ))
                .expect("variance registers in a fresh state");
        }
        let statics = Arc::new(
            datafusion_pg_catalog::pg_catalog::PgCatalogStaticTables::try_new()
                .expect("the bundled pg_catalog rows load"),
        );
        let type_oids = Arc::new(crate::catalog::pgfuncs::type_oids(statics.pg_type.data()));
        crate::catalog::pgfuncs::register_static(&mut base_state, type_oids)
            .expect("the system functions register in a fresh state");
        let base_state = {
            let ctx = SessionContext::new_with_state(base_state);
            ctx.register_udtf("pg_get_keywords", statics.pg_get_keywords.clone());
            crate::types::jsonb::sets::register(&ctx);
            // generate_series over int4 arguments (array_upper, ...), as clients write it.
            datafusion_pg_catalog::pg_catalog::generate_series_arg_coercion::CoerceIntArgsToBigInt::widen(&ctx);
            ctx.state()
        };
        let no_catalogs: Arc<dyn datafusion::catalog::CatalogProviderList> =
            Arc::new(MemoryCatalogProviderList::new());
        let pg_static = Arc::new(
            datafusion_pg_catalog::pg_catalog::PgCatalogSchemaProvider::try_new(
                no_catalogs,
                statics,
                datafusion_pg_catalog::pg_catalog::context::EmptyContextProvider,
            )
            .expect("the static pg_catalog provider builds"),
        );
        Arc::new(Db {
            pg_static,
            sequences: Default::default(),
            storage,
            adjudicator,
            limits,
            base_state,
            rowid_prefix: rand::random::<u64>(),
            rowid_next: AtomicU64::new(0),
            next_pid: AtomicU64::new(1),
            version_retention: std::sync::OnceLock::new(),
            auth: std::sync::OnceLock::new(),
            backends: Default::default(),
            point_selects: AtomicU64::new(0),
            point_writes: AtomicU64::new(0),
            idle_in_txn_max: std::sync::OnceLock::new(),
            sessions: std::sync::atomic::AtomicUsize::new(0),
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

    /// Sets who must authenticate (once, at start).
    pub fn set_auth(&self, auth: crate::catalog::roles::AuthConfig) {
        let _ = self.auth.set(Arc::new(auth));
    }

    pub fn auth(&self) -> Arc<crate::catalog::roles::AuthConfig> {
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
    fn fresh_context(&self) -> SessionContext {
        let state = SessionStateBuilder::new_from_existing(self.base_state.clone())
            .with_catalog_list(Arc::new(MemoryCatalogProviderList::new()))
            .build();
        SessionContext::new_with_state(state)
    }

    /// A session's DataFusion context, reading tables through `view`.
    pub fn session_context(
        self: &Arc<Db>,
        view: Arc<Mutex<Option<View>>>,
        meta: Arc<SessionMeta>,
    ) -> SessionContext {
        let ctx = self.fresh_context();
        let pg = Arc::new(PgCatalogSchema {
            db: self.clone(),
            view: view.clone(),
            meta: meta.clone(),
        });
        let info = Arc::new(InformationSchema {
            pg: PgCatalogSchema {
                db: self.clone(),
                view: view.clone(),
                meta: meta.clone(),
            },
        });
        let schema = Arc::new(WeftSchema {
            db: self.clone(),
            view,
            pg: pg.clone(),
            nextval: Arc::new(crate::catalog::pgfuncs::nextval_udf(self, &meta)),
        });
        let catalog = Arc::new(WeftCatalog { schema, pg, info });
        ctx.register_catalog(CATALOG_NAME, catalog);
        crate::catalog::pgfuncs::register_session(&ctx, self, &meta);
        ctx
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
        read_ts: Timestamp,
        catalog_overlay: Option<&Overlay>,
        name: &str,
    ) -> SqlResult<Option<Arc<TableDef>>> {
        let key = catalog_key(name);
        let row = match catalog_overlay.and_then(|o| o.get(&key)) {
            Some(own) => own.clone(),
            None => self.storage.get(CATALOG_TABLE_ID, &key, read_ts).await?,
        };
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

    /// Every table as of `read_ts`, seeing the transaction's own DDL.
    pub async fn list_tables(
        &self,
        read_ts: Timestamp,
        catalog_overlay: Option<&Overlay>,
    ) -> SqlResult<Vec<Arc<TableDef>>> {
        let mut rows: std::collections::BTreeMap<Vec<u8>, Option<Arc<weft_engine::Row>>> = self
            .storage
            .scan(
                CATALOG_TABLE_ID,
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

/// What the statement being planned reads: its timestamp and its transaction's writes.
#[derive(Debug, Clone, Default)]
pub struct View {
    pub read_ts: Timestamp,
    pub overlays: HashMap<u64, Arc<Overlay>>,
    /// The table that an UPDATE or DELETE targets: exposed with its hidden key column.
    pub dml_target: Option<String>,
    /// Where scans record what they read (SERIALIZABLE transactions only).
    pub reads: Option<Arc<ReadLog>>,
}

#[derive(Debug)]
struct WeftCatalog {
    schema: Arc<WeftSchema>,
    pg: Arc<PgCatalogSchema>,
    info: Arc<InformationSchema>,
}

impl CatalogProvider for WeftCatalog {
    fn schema_names(&self) -> Vec<String> {
        vec![
            SCHEMA_NAME.to_string(),
            PG_CATALOG.to_string(),
            INFORMATION_SCHEMA.to_string(),
        ]
    }
    fn schema(&self, name: &str) -> Option<Arc<dyn SchemaProvider>> {
        match name {
            SCHEMA_NAME => Some(self.schema.clone()),
            PG_CATALOG => Some(self.pg.clone()),
            INFORMATION_SCHEMA => Some(self.info.clone()),
            _ => None,
        }
    }
}

struct WeftSchema {
    db: Arc<Db>,
    view: Arc<Mutex<Option<View>>>,
    /// Unqualified pg_catalog names (`pg_class`) resolve there first, as in PostgreSQL.
    pg: Arc<PgCatalogSchema>,
    /// The session's `nextval`, which column defaults call.
    nextval: Arc<datafusion::logical_expr::ScalarUDF>,
}

impl std::fmt::Debug for WeftSchema {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("WeftSchema")
    }
}

impl WeftSchema {
    fn view(&self) -> Option<View> {
        self.view.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

#[async_trait]
impl SchemaProvider for WeftSchema {
    fn table_names(&self) -> Vec<String> {
        // Listing needs a storage read; the planner never asks for it.
        Vec::new()
    }

    async fn table(&self, name: &str) -> DfResult<Option<Arc<dyn TableProvider>>> {
        if is_catalog_relation(&self.db, name) {
            return self.pg.table(name).await;
        }
        let Some(view) = self.view() else {
            return Ok(None);
        };
        let catalog = view.overlays.get(&CATALOG_TABLE_ID).cloned();
        let def = self
            .db
            .lookup_table(view.read_ts, catalog.as_deref(), name)
            .await
            .map_err(|e| DataFusionError::External(Box::new(e)))?;
        let Some(def) = def else { return Ok(None) };
        let overlay = view.overlays.get(&def.id).cloned();
        let with_key = view.dml_target.as_deref() == Some(name);
        let defaults = self.db.column_defaults(&def);
        // Defaults drawing from a sequence call the session's nextval (for currval).
        let defaults = defaults
            .into_iter()
            .map(|(k, e)| {
                use datafusion::common::tree_node::{Transformed, TreeNode};
                let e = e
                    .transform(|x| match x {
                        Expr::ScalarFunction(mut f) if f.func.name() == "nextval" => {
                            f.func = self.nextval.clone();
                            Ok(Transformed::yes(Expr::ScalarFunction(f)))
                        }
                        other => Ok(Transformed::no(other)),
                    })
                    .map(|t| t.data)
                    .expect("replacing a function never fails");
                (k, e)
            })
            .collect();
        Ok(Some(Arc::new(WeftTable::new(
            def,
            self.db.storage.clone(),
            view.read_ts,
            overlay,
            with_key,
            defaults,
            view.reads.clone(),
        ))))
    }

    fn table_exist(&self, _name: &str) -> bool {
        // Existence depends on the read timestamp; `table` answers it.
        false
    }
}
