//! weft's catalog as DataFusion sees it: the tables of `public` and of every other schema
//! at the statement's read timestamp, beside `pg_catalog` and `information_schema`.

use std::sync::Arc;

use async_trait::async_trait;
use datafusion::catalog::{CatalogProvider, SchemaProvider};
use datafusion::datasource::TableProvider;
use datafusion::error::{DataFusionError, Result as DfResult};
use datafusion::logical_expr::Expr;
use weft_engine::provider::WeftTable;

use crate::catalog::db::{Db, SCHEMA_NAME};
use crate::catalog::information_schema::InformationSchema;
use crate::catalog::oids::{INFORMATION_SCHEMA, PG_CATALOG};
use crate::catalog::pgcatalog::{is_catalog_relation, PgCatalogSchema};
use crate::catalog::session_meta::SessionMeta;
use crate::catalog::view::View;

/// The catalog one statement plans against: its tables as `view` reads them, `nextval` the
/// session's (column defaults call it). A new one is registered for every statement, so
/// the statement's read timestamp reaches DataFusion as a value of its own.
pub fn provider(
    db: &Arc<Db>,
    view: View,
    meta: Arc<SessionMeta>,
    nextval: Arc<datafusion::logical_expr::ScalarUDF>,
) -> Arc<dyn CatalogProvider> {
    let pg = Arc::new(PgCatalogSchema {
        db: db.clone(),
        view: view.clone(),
        meta: meta.clone(),
    });
    let info = Arc::new(InformationSchema {
        pg: PgCatalogSchema {
            db: db.clone(),
            view: view.clone(),
            meta,
        },
    });
    let schema = Arc::new(WeftSchema {
        db: db.clone(),
        view,
        schema: SCHEMA_NAME.to_string(),
        pg: pg.clone(),
        nextval,
    });
    Arc::new(WeftCatalog { schema, pg, info })
}

#[derive(Debug)]
struct WeftCatalog {
    /// `public`'s tables; another schema's are read through a copy naming that schema.
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
            // Any other schema: its tables are found by their relation keys, and a schema
            // that does not exist has none.
            other => Some(Arc::new(WeftSchema {
                db: self.schema.db.clone(),
                view: self.schema.view.clone(),
                schema: other.to_string(),
                pg: self.schema.pg.clone(),
                nextval: self.schema.nextval.clone(),
            })),
        }
    }
}

struct WeftSchema {
    db: Arc<Db>,
    view: View,
    /// The schema whose tables this is.
    schema: String,
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
    /// A sequence read as a relation (`SELECT last_value, is_called FROM s`, as pg_dump
    /// does): one row. `last_value` is the last value reserved by any node, at or past every
    /// value handed out, so a restore from it never repeats one.
    async fn sequence_relation(&self, name: &str) -> DfResult<Option<Arc<dyn TableProvider>>> {
        use crate::catalog::rows::{build, i, K, V};
        let tables = self.view.tables;
        let overlay = self.view.overlays.get(&tables.sequences).cloned();
        let seqs = crate::catalog::sequences::list(
            &self.db,
            tables,
            self.view.read_ts,
            overlay.as_deref(),
        )
        .await
        .map_err(|e| DataFusionError::External(Box::new(e)))?;
        let Some(q) = seqs.into_iter().find(|q| q.name == name) else {
            return Ok(None);
        };
        build(
            &[
                ("last_value", K::I64),
                ("log_cnt", K::I64),
                ("is_called", K::Bool),
            ],
            vec![vec![
                i(q.last.unwrap_or(q.start)),
                i(0),
                V::B(q.last.is_some()),
            ]],
        )
        .map(Some)
    }
}

#[async_trait]
impl SchemaProvider for WeftSchema {
    fn table_names(&self) -> Vec<String> {
        // Listing needs a storage read; the planner never asks for it.
        Vec::new()
    }

    async fn table(&self, name: &str) -> DfResult<Option<Arc<dyn TableProvider>>> {
        if self.schema == SCHEMA_NAME && is_catalog_relation(&self.db, name) {
            return self.pg.table(name).await;
        }
        let key = weft_engine::schema::relation_key(&self.schema, name);
        let name = key.as_str();
        let view = &self.view;
        let catalog = view.overlays.get(&view.tables.catalog).cloned();
        let def = self
            .db
            .lookup_table(view.tables, view.read_ts, catalog.as_deref(), name)
            .await
            .map_err(|e| DataFusionError::External(Box::new(e)))?;
        let Some(def) = def else {
            return self.sequence_relation(name).await;
        };
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
        let index_overlays = def
            .indexes
            .iter()
            .filter_map(|i| Some((i.id, view.overlays.get(&i.id)?.clone())))
            .collect();
        Ok(Some(Arc::new(
            WeftTable::new(
                def,
                self.db.storage.clone(),
                view.read_ts,
                overlay,
                with_key,
                defaults,
                view.reads.clone(),
            )
            .with_index_overlays(index_overlays),
        )))
    }

    fn table_exist(&self, _name: &str) -> bool {
        // Existence depends on the read timestamp; `table` answers it.
        false
    }
}
