//! `pg_catalog` and `information_schema`, as clients (psql, drivers, ORMs) read them.
//!
//! The rows about weft's own objects (`pg_class`, `pg_attribute`, `pg_index`,
//! `pg_constraint`, `pg_attrdef`, `pg_namespace`, `pg_database`, `pg_settings`, ... and the
//! `information_schema` views) are built from weft's catalog as of the statement's read
//! timestamp, including the transaction's own DDL, so they are as transactional as the
//! tables they describe. Object ids are stable: a table's oid is stored in its definition
//! (see `TableDef::oid`), and its row type, primary key index and constraint take the oids
//! after it. PostgreSQL's built-in rows (`pg_type`, `pg_proc`, `pg_am`, `pg_collation`, ...)
//! come from the `datafusion-pg-catalog` crate, which ships them as exported from
//! PostgreSQL.
//!
//! One builder per catalog table, each short; they stay together (a little over 800 lines)
//! so that the tables' columns can be read side by side.

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use datafusion::catalog::{MemTable, SchemaProvider};
use datafusion::datasource::TableProvider;
use datafusion::error::Result as DfResult;

use crate::catalog::db::Db;
use crate::catalog::indexes::{constraints_of, indexes_of};
use crate::catalog::oids::rowtype_oid;
use crate::catalog::oids::table_oid;
use crate::catalog::oids::type_info;
use crate::catalog::oids::BOOTSTRAP_ROLE;
use crate::catalog::oids::BTREE_AM;
use crate::catalog::oids::HEAP_AM;
use crate::catalog::oids::INFORMATION_SCHEMA;
use crate::catalog::oids::NS_INFORMATION_SCHEMA;
use crate::catalog::oids::NS_PG_CATALOG;
use crate::catalog::oids::NS_PG_TOAST;
use crate::catalog::oids::NS_PUBLIC;
use crate::catalog::oids::PG_CATALOG;
use crate::catalog::oids::{btree_opclass, pattern_opclass};
use crate::catalog::pg_get::default_text;
use crate::catalog::pg_get::index_text;
use crate::catalog::roles::BOOTSTRAP_ROLE_NAME;
use crate::catalog::rows::build;
use crate::catalog::rows::i;
use crate::catalog::rows::s;
use crate::catalog::rows::K;
use crate::catalog::rows::V;
use crate::catalog::session_meta::Identity;
use crate::catalog::session_meta::SessionMeta;
use crate::catalog::session_meta::Snapshot;
use crate::catalog::view::View;

/// The pg_catalog tables built from weft's own catalog.
pub(crate) const DYNAMIC: &[&str] = &[
    "pg_namespace",
    "pg_class",
    "pg_attribute",
    "pg_index",
    "pg_constraint",
    "pg_attrdef",
    "pg_database",
    "pg_tables",
    "pg_settings",
    "pg_roles",
    "pg_user",
    "pg_authid",
    "pg_sequence",
    "pg_sequences",
    "pg_views",
    "pg_matviews",
    "pg_indexes",
    "pg_description",
    "pg_depend",
    "pg_cursors",
    "pg_stat_activity",
    "pg_auth_members",
];

/// Whether an unqualified relation name is a pg_catalog one (PostgreSQL searches
/// pg_catalog before the schemas in search_path).
pub fn is_catalog_relation(db: &Db, name: &str) -> bool {
    DYNAMIC.contains(&name)
        || crate::catalog::absent::ABSENT.contains(&name)
        || db.pg_static.table_exist(name)
}

pub struct PgCatalogSchema {
    pub db: Arc<Db>,
    /// What the statement being planned reads.
    pub view: View,
    pub meta: Arc<SessionMeta>,
}

impl std::fmt::Debug for PgCatalogSchema {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PgCatalogSchema")
    }
}

impl PgCatalogSchema {
    pub(crate) async fn snapshot(&self) -> DfResult<Option<Arc<Snapshot>>> {
        Ok(Some(self.meta.refresh(&self.db, &self.view).await?))
    }

    pub async fn dynamic_table(&self, name: &str) -> DfResult<Option<Arc<dyn TableProvider>>> {
        if let Some(t) = crate::catalog::absent::table(name) {
            return t.map(Some);
        }
        if !DYNAMIC.contains(&name) {
            return Ok(None);
        }
        let Some(snap) = self.snapshot().await? else {
            return Ok(None);
        };
        let t = match name {
            "pg_namespace" => pg_namespace(&snap),
            "pg_class" => pg_class(&snap),
            "pg_attribute" => pg_attribute(&snap),
            "pg_index" => pg_index(&snap),
            "pg_constraint" => pg_constraint(&snap),
            "pg_attrdef" => pg_attrdef(&snap, &self.meta.search_path()),
            "pg_database" => pg_database(&snap.databases),
            "pg_tables" => pg_tables(&snap),
            "pg_settings" => pg_settings(&self.meta.settings()),
            "pg_cursors" => build(
                &[
                    ("name", K::Text),
                    ("statement", K::Text),
                    ("is_holdable", K::Bool),
                    ("is_binary", K::Bool),
                    ("is_scrollable", K::Bool),
                ],
                self.meta
                    .cursors
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .iter()
                    .map(|(name, statement, hold, scroll)| {
                        vec![
                            s(name.clone()),
                            s(statement.clone()),
                            V::B(*hold),
                            V::B(false),
                            V::B(*scroll),
                        ]
                    })
                    .collect(),
            ),
            "pg_roles" | "pg_user" | "pg_authid" => {
                pg_roles(name, &self.meta.identity(), &snap.roles)
            }
            "pg_auth_members" => pg_auth_members(&snap.roles),
            "pg_stat_activity" => {
                let who = self.meta.identity().user;
                let superuser = snap.roles.iter().any(|r| r.name == who && r.superuser);
                let batch = crate::catalog::activity::pg_stat_activity(
                    &self.db.backends.list(),
                    &who,
                    superuser,
                );
                Ok(Arc::new(MemTable::try_new(batch.schema(), vec![vec![batch]])?) as _)
            }
            "pg_sequence" => build(
                &[
                    ("seqrelid", K::Oid),
                    ("seqtypid", K::Oid),
                    ("seqstart", K::I64),
                    ("seqincrement", K::I64),
                    ("seqmax", K::I64),
                    ("seqmin", K::I64),
                    ("seqcache", K::I64),
                    ("seqcycle", K::Bool),
                ],
                snap.sequences
                    .iter()
                    .map(|q| {
                        vec![
                            i(q.oid as i64),
                            i(type_info(&q.ty).oid),
                            i(q.start),
                            i(q.increment),
                            i(q.max),
                            i(q.min),
                            i(1),
                            V::B(q.cycle),
                        ]
                    })
                    .collect(),
            ),
            "pg_sequences" => build(
                &[
                    ("schemaname", K::Text),
                    ("sequencename", K::Text),
                    ("sequenceowner", K::Text),
                    ("data_type", K::Text),
                    ("start_value", K::I64),
                    ("min_value", K::I64),
                    ("max_value", K::I64),
                    ("increment_by", K::I64),
                    ("cycle", K::Bool),
                    ("cache_size", K::I64),
                    ("last_value", K::I64),
                ],
                snap.sequences
                    .iter()
                    .map(|q| {
                        let (schema, name) = weft_engine::schema::split_relation(&q.name);
                        vec![
                            s(schema),
                            s(name),
                            s(BOOTSTRAP_ROLE_NAME),
                            s(q.ty.pg_name()),
                            i(q.start),
                            i(q.min),
                            i(q.max),
                            i(q.increment),
                            V::B(q.cycle),
                            i(1),
                            q.last.map(V::I).unwrap_or(V::N),
                        ]
                    })
                    .collect(),
            ),
            "pg_views" => crate::catalog::view_catalog::pg_views(&snap),
            "pg_matviews" => build(
                &[
                    ("schemaname", K::Text),
                    (
                        if name == "pg_views" {
                            "viewname"
                        } else {
                            "matviewname"
                        },
                        K::Text,
                    ),
                    ("viewowner", K::Text),
                    ("definition", K::Text),
                ],
                vec![],
            ),
            "pg_indexes" => pg_indexes(&snap),
            "pg_description" => pg_description(&snap),
            "pg_depend" => crate::catalog::depend::pg_depend(&snap),
            _ => return Ok(None),
        }?;
        Ok(Some(t))
    }
}

#[async_trait]
impl SchemaProvider for PgCatalogSchema {
    fn table_names(&self) -> Vec<String> {
        let mut names: Vec<String> = DYNAMIC
            .iter()
            .chain(crate::catalog::absent::ABSENT)
            .map(|s| s.to_string())
            .collect();
        names.extend(self.db.pg_static.table_names());
        names.sort();
        names.dedup();
        names
    }

    async fn table(&self, name: &str) -> DfResult<Option<Arc<dyn TableProvider>>> {
        if let Some(t) = self.dynamic_table(name).await? {
            return Ok(Some(t));
        }
        self.db.pg_static.table(name).await
    }

    fn table_exist(&self, name: &str) -> bool {
        is_catalog_relation(&self.db, name)
    }
}

pub(crate) fn pg_namespace(snap: &Snapshot) -> DfResult<Arc<dyn TableProvider>> {
    let cols = [
        ("oid", K::Oid),
        ("nspname", K::Text),
        ("nspowner", K::Oid),
        ("nspacl", K::TextList),
    ];
    let built_in = [
        (NS_PG_CATALOG, PG_CATALOG, BOOTSTRAP_ROLE),
        (NS_PG_TOAST, "pg_toast", BOOTSTRAP_ROLE),
        (NS_PUBLIC, "public", 6171),
        (NS_INFORMATION_SCHEMA, INFORMATION_SCHEMA, BOOTSTRAP_ROLE),
    ]
    .into_iter()
    .map(|(oid, name, owner)| (oid, name.to_string(), owner));
    // Schemas made with CREATE SCHEMA, with their owners.
    let made = snap.schemas.iter().map(|d| {
        (
            d.oid as i32,
            d.name.clone(),
            crate::catalog::oids::role_oid(&snap.roles, &d.owner),
        )
    });
    // An ACL GRANT changed: the stored list (a built-in schema's in its own row).
    let acl_of = |name: &str| {
        snap.schemas
            .iter()
            .chain(&snap.built_in_acls)
            .find(|d| d.name == name)
            .and_then(|d| d.acl.clone())
            .map_or(V::N, V::TL)
    };
    let rows = built_in
        .chain(made)
        .map(|(oid, name, owner)| {
            let acl = match acl_of(&name) {
                V::N if name == "public" => V::TL(vec![
                    "pg_database_owner=UC/pg_database_owner".into(),
                    "=U/pg_database_owner".into(),
                ]),
                V::N if name == PG_CATALOG || name == INFORMATION_SCHEMA => V::TL(vec![
                    format!("{BOOTSTRAP_ROLE_NAME}=UC/{BOOTSTRAP_ROLE_NAME}"),
                    format!("=U/{BOOTSTRAP_ROLE_NAME}"),
                ]),
                other => other,
            };
            vec![i(oid), s(name), i(owner), acl]
        })
        .collect();
    build(&cols, rows)
}

pub(crate) fn pg_class(snap: &Snapshot) -> DfResult<Arc<dyn TableProvider>> {
    let cols = [
        ("oid", K::Oid),
        ("relname", K::Text),
        ("relnamespace", K::Oid),
        ("reltype", K::Oid),
        ("reloftype", K::Oid),
        ("relowner", K::Oid),
        ("relam", K::Oid),
        ("relfilenode", K::Oid),
        ("reltablespace", K::Oid),
        ("relpages", K::I32),
        ("reltuples", K::F32),
        ("relallvisible", K::I32),
        ("reltoastrelid", K::Oid),
        ("relhasindex", K::Bool),
        ("relisshared", K::Bool),
        ("relpersistence", K::Char),
        ("relkind", K::Char),
        ("relnatts", K::I16),
        ("relchecks", K::I16),
        ("relhasrules", K::Bool),
        ("relhastriggers", K::Bool),
        ("relhassubclass", K::Bool),
        ("relrowsecurity", K::Bool),
        ("relforcerowsecurity", K::Bool),
        ("relispopulated", K::Bool),
        ("relreplident", K::Char),
        ("relispartition", K::Bool),
        ("relrewrite", K::Oid),
        ("relfrozenxid", K::I32),
        ("relminmxid", K::I32),
        ("relacl", K::TextList),
        ("reloptions", K::TextList),
        ("relpartbound", K::Text),
    ];
    let mut rows = Vec::new();
    let rel = |oid: i32,
               name: String,
               rowtype: i32,
               am: i32,
               kind: &str,
               natts: usize,
               idx: bool,
               checks: usize,
               triggers: bool,
               (owner, acl): (Option<&String>, Option<&Vec<String>>)| {
        // `name` is the relation key: the schema's oid and the bare name.
        let ns = snap.namespace_oid(&name);
        let name = weft_engine::schema::split_relation(&name).1.to_string();
        vec![
            i(oid),
            s(name),
            i(ns),
            i(rowtype),
            i(0),
            i(crate::catalog::privilege_funcs::owner_oid(snap, owner)),
            i(am),
            i(oid),
            i(0),
            i(0),
            V::F(-1.0),
            i(0),
            i(0),
            V::B(idx),
            V::B(false),
            s("p"),
            s(kind),
            i(natts as i64),
            i(checks as i64),
            V::B(false),
            V::B(triggers),
            V::B(false),
            V::B(false),
            V::B(false),
            V::B(true),
            s(if kind == "r" { "d" } else { "n" }),
            V::B(false),
            i(0),
            i(0),
            i(0),
            acl.cloned().map_or(V::N, V::TL),
            V::N,
            V::N,
        ]
    };
    for t in &snap.tables {
        let indexes = indexes_of(t);
        rows.push(rel(
            table_oid(t),
            t.name.clone(),
            rowtype_oid(t),
            HEAP_AM,
            "r",
            t.columns.len(),
            !indexes.is_empty(),
            t.checks.len(),
            // PostgreSQL enforces foreign keys with triggers; psql looks for them here.
            !t.foreign_keys.is_empty() || !t.referenced_by.is_empty(),
            (t.owner.as_ref(), t.acl.as_ref()),
        ));
        for ix in indexes {
            rows.push(rel(
                ix.oid,
                weft_engine::schema::relation_key(t.schema(), &ix.name),
                0,
                BTREE_AM,
                "i",
                ix.columns.len(),
                false,
                0,
                false,
                (t.owner.as_ref(), None),
            ));
        }
    }
    for q in &snap.sequences {
        rows.push(rel(
            q.oid as i32,
            q.name.clone(),
            0,
            0,
            "S",
            3,
            false,
            0,
            false,
            (q.owner.as_ref(), q.acl.as_ref()),
        ));
    }
    for v in &snap.views {
        rows.push(rel(
            v.oid as i32,
            v.name.clone(),
            v.oid as i32 + 1,
            0,
            "v",
            v.columns.len(),
            false,
            0,
            false,
            (v.owner.as_ref(), v.acl.as_ref()),
        ));
    }
    build(&cols, rows)
}

pub(crate) fn pg_attribute(snap: &Snapshot) -> DfResult<Arc<dyn TableProvider>> {
    let cols = [
        ("attrelid", K::Oid),
        ("attname", K::Text),
        ("atttypid", K::Oid),
        ("attstattarget", K::I32),
        ("attlen", K::I16),
        ("attnum", K::I16),
        ("attndims", K::I32),
        ("attcacheoff", K::I32),
        ("atttypmod", K::I32),
        ("attbyval", K::Bool),
        ("attalign", K::Char),
        ("attstorage", K::Char),
        ("attcompression", K::Char),
        ("attnotnull", K::Bool),
        ("atthasdef", K::Bool),
        ("atthasmissing", K::Bool),
        ("attidentity", K::Char),
        ("attgenerated", K::Char),
        ("attisdropped", K::Bool),
        ("attislocal", K::Bool),
        ("attinhcount", K::I32),
        ("attcollation", K::Oid),
        ("attacl", K::TextList),
        ("attoptions", K::TextList),
        ("attfdwoptions", K::TextList),
        ("attmissingval", K::TextList),
    ];
    let mut rows = Vec::new();
    {
        let mut attr = |rel: i32, num: usize, c: &weft_engine::schema::ColumnDef| {
            let ty = type_info(&c.ty);
            rows.push(vec![
                i(rel),
                s(c.name.clone()),
                i(ty.oid),
                i(-1),
                i(ty.len),
                i(num as i64),
                i(0),
                i(-1),
                i(ty.typmod),
                V::B(ty.byval),
                s(ty.align),
                s(ty.storage),
                s(""),
                V::B(!c.nullable),
                V::B(c.default.is_some() && c.identity.is_none()),
                V::B(false),
                s(c.identity.clone().unwrap_or_default()),
                s(""),
                V::B(false),
                V::B(true),
                i(0),
                i(ty.collation),
                V::N,
                V::N,
                V::N,
                V::N,
            ]);
        };
        for t in &snap.tables {
            for (n, c) in t.columns.iter().enumerate() {
                attr(table_oid(t), n + 1, c);
            }
            for ix in indexes_of(t) {
                for (n, &k) in ix.columns.iter().enumerate() {
                    attr(ix.oid, n + 1, &t.columns[k]);
                }
            }
        }
        for v in &snap.views {
            for (n, (name, ty)) in v.columns.iter().enumerate() {
                let c = weft_engine::schema::ColumnDef {
                    name: name.clone(),
                    ty: ty.clone(),
                    nullable: true,
                    default: None,
                    identity: None,
                    comment: None,
                };
                attr(v.oid as i32, n + 1, &c);
            }
        }
    }
    build(&cols, rows)
}

pub(crate) fn pg_index(snap: &Snapshot) -> DfResult<Arc<dyn TableProvider>> {
    let cols = [
        ("indexrelid", K::Oid),
        ("indrelid", K::Oid),
        ("indnatts", K::I16),
        ("indnkeyatts", K::I16),
        ("indisunique", K::Bool),
        ("indnullsnotdistinct", K::Bool),
        ("indisprimary", K::Bool),
        ("indisexclusion", K::Bool),
        ("indimmediate", K::Bool),
        ("indisclustered", K::Bool),
        ("indisvalid", K::Bool),
        ("indcheckxmin", K::Bool),
        ("indisready", K::Bool),
        ("indislive", K::Bool),
        ("indisreplident", K::Bool),
        ("indkey", K::Int2Vector),
        ("indcollation", K::OidList),
        ("indclass", K::OidList),
        ("indoption", K::Int2Vector),
        ("indexprs", K::Text),
        ("indpred", K::Text),
    ];
    let mut rows = Vec::new();
    for t in &snap.tables {
        for ix in indexes_of(t) {
            let key: Vec<i16> = ix.columns.iter().map(|k| *k as i16 + 1).collect();
            let keys = &ix.columns[..ix.key_columns];
            let collations: Vec<i32> = keys
                .iter()
                .map(|&k| type_info(&t.columns[k].ty).collation)
                .collect();
            let classes: Vec<i32> = keys
                .iter()
                .enumerate()
                .map(|(n, &k)| match ix.opclasses[n].as_deref() {
                    Some(o) => pattern_opclass(o),
                    None => btree_opclass(&t.columns[k].ty),
                })
                .collect();
            let options: Vec<i16> = (0..ix.key_columns)
                .map(|n| i16::from(ix.descending[n]) | (i16::from(ix.nulls_first[n]) << 1))
                .collect();
            rows.push(vec![
                i(ix.oid),
                i(table_oid(t)),
                i(ix.columns.len() as i64),
                i(ix.key_columns as i64),
                V::B(ix.unique),
                V::B(ix.nulls_not_distinct),
                V::B(ix.primary),
                V::B(false),
                V::B(true),
                V::B(false),
                V::B(ix.valid),
                V::B(false),
                V::B(true),
                V::B(true),
                V::B(false),
                V::IL(key),
                V::OL(collations),
                V::OL(classes),
                V::IL(options),
                V::N,
                // PostgreSQL keeps a node tree here; its text stands in for it.
                ix.predicate.clone().map(V::S).unwrap_or(V::N),
            ]);
        }
    }
    build(&cols, rows)
}

pub(crate) fn pg_constraint(snap: &Snapshot) -> DfResult<Arc<dyn TableProvider>> {
    let cols = [
        ("oid", K::Oid),
        ("conname", K::Text),
        ("connamespace", K::Oid),
        ("contype", K::Char),
        ("condeferrable", K::Bool),
        ("condeferred", K::Bool),
        ("convalidated", K::Bool),
        ("conrelid", K::Oid),
        ("contypid", K::Oid),
        ("conindid", K::Oid),
        ("conparentid", K::Oid),
        ("confrelid", K::Oid),
        ("confupdtype", K::Char),
        ("confdeltype", K::Char),
        ("confmatchtype", K::Char),
        ("conislocal", K::Bool),
        ("coninhcount", K::I32),
        ("connoinherit", K::Bool),
        ("conkey", K::I16List),
        ("confkey", K::I16List),
        ("conbin", K::Text),
    ];
    let mut rows = Vec::new();
    for t in &snap.tables {
        for c in constraints_of(t) {
            let conkey = if c.kind == "c" {
                check_columns(t, c.check.as_deref().unwrap_or(""))
            } else {
                c.columns.iter().map(|k| *k as i16 + 1).collect()
            };
            let f = c.reference.as_ref();
            let parent = f.and_then(|f| snap.tables.iter().find(|p| p.name == f.parent));
            let (confrelid, confkey, index_oid) = match (f, parent) {
                (Some(f), Some(p)) => (
                    table_oid(p),
                    V::IL(f.parent_columns.iter().map(|k| *k as i16 + 1).collect()),
                    indexes_of(p)
                        .iter()
                        .find(|i| {
                            i.unique && {
                                let mut a = i.columns.clone();
                                let mut b = f.parent_columns.clone();
                                a.sort();
                                b.sort();
                                a == b
                            }
                        })
                        .map_or(0, |i| i.oid),
                ),
                _ => (0, V::N, c.index_oid),
            };
            let act = |a: Option<char>| s(a.map_or(" ".to_string(), |a| a.to_string()));
            rows.push(vec![
                i(c.oid),
                s(c.name.clone()),
                i(snap.namespace_oid(&t.name)),
                s(c.kind),
                V::B(f.is_some_and(|f| f.deferrable)),
                V::B(f.is_some_and(|f| f.deferred)),
                V::B(c.validated),
                i(table_oid(t)),
                i(0),
                i(index_oid),
                i(0),
                i(confrelid),
                act(f.map(|f| f.on_update)),
                act(f.map(|f| f.on_delete)),
                s(if f.is_some() { "s" } else { " " }),
                V::B(true),
                i(0),
                V::B(c.kind != "c"),
                V::IL(conkey),
                confkey,
                match &c.check {
                    Some(e) => s(e.clone()),
                    None => V::N,
                },
            ]);
        }
    }
    build(&cols, rows)
}

pub(crate) fn pg_attrdef(snap: &Snapshot, path: &[String]) -> DfResult<Arc<dyn TableProvider>> {
    let cols = [
        ("oid", K::Oid),
        ("adrelid", K::Oid),
        ("adnum", K::I16),
        ("adbin", K::Text),
    ];
    let mut rows = Vec::new();
    for t in &snap.tables {
        for (n, c) in t.columns.iter().enumerate() {
            if let Some(d) = default_text(c, path) {
                rows.push(vec![
                    i(crate::catalog::oids::attrdef_oid(t, n)),
                    i(table_oid(t)),
                    i(n as i64 + 1),
                    s(d),
                ]);
            }
        }
    }
    build(&cols, rows)
}

pub(crate) fn pg_database(
    databases: &[crate::catalog::databases::DatabaseDef],
) -> DfResult<Arc<dyn TableProvider>> {
    let cols = [
        ("oid", K::Oid),
        ("datname", K::Text),
        ("datdba", K::Oid),
        ("encoding", K::I32),
        ("datlocprovider", K::Char),
        ("datistemplate", K::Bool),
        ("datallowconn", K::Bool),
        ("datconnlimit", K::I32),
        ("datfrozenxid", K::I32),
        ("datminmxid", K::I32),
        ("dattablespace", K::Oid),
        ("datcollate", K::Text),
        ("datctype", K::Text),
        ("daticulocale", K::Text),
        ("datcollversion", K::Text),
        ("datacl", K::TextList),
    ];
    let rows = databases
        .iter()
        .map(|d| {
            vec![
                i(d.oid),
                s(&d.name),
                i(BOOTSTRAP_ROLE),
                i(6),
                s("c"),
                V::B(false),
                V::B(true),
                i(-1),
                i(0),
                i(0),
                i(1663),
                s("C"),
                s("C"),
                V::N,
                V::N,
                d.acl.clone().map_or(V::N, V::TL),
            ]
        })
        .collect();
    build(&cols, rows)
}

pub(crate) fn pg_tables(snap: &Snapshot) -> DfResult<Arc<dyn TableProvider>> {
    let cols = [
        ("schemaname", K::Text),
        ("tablename", K::Text),
        ("tableowner", K::Text),
        ("tablespace", K::Text),
        ("hasindexes", K::Bool),
        ("hasrules", K::Bool),
        ("hastriggers", K::Bool),
        ("rowsecurity", K::Bool),
    ];
    let rows = snap
        .tables
        .iter()
        .map(|t| {
            vec![
                s(t.schema()),
                s(t.relname()),
                s(crate::catalog::grants::owner_name(t.owner.as_ref())),
                V::N,
                V::B(!indexes_of(t).is_empty()),
                V::B(false),
                V::B(false),
                V::B(false),
            ]
        })
        .collect();
    build(&cols, rows)
}

pub(crate) fn pg_indexes(snap: &Snapshot) -> DfResult<Arc<dyn TableProvider>> {
    let cols = [
        ("schemaname", K::Text),
        ("tablename", K::Text),
        ("indexname", K::Text),
        ("tablespace", K::Text),
        ("indexdef", K::Text),
    ];
    let mut rows = Vec::new();
    for t in &snap.tables {
        for ix in indexes_of(t) {
            rows.push(vec![
                s(t.schema()),
                s(t.relname()),
                s(ix.name.clone()),
                V::N,
                s(index_text(t, &ix, false)),
            ]);
        }
    }
    build(&cols, rows)
}

/// `COMMENT ON` texts: a table's (objsubid 0) and its columns' (objsubid attnum).
pub(crate) fn pg_description(snap: &Snapshot) -> DfResult<Arc<dyn TableProvider>> {
    let cols = [
        ("objoid", K::Oid),
        ("classoid", K::Oid),
        ("objsubid", K::I32),
        ("description", K::Text),
    ];
    /// pg_class's own oid: descriptions of relations name it as their class.
    const PG_CLASS_OID: i32 = 1259;
    // PostgreSQL's own comment on `public` (pg_dump dumps it when it differs).
    let pg_namespace = crate::catalog::oids::catalog_relation_oid("pg_namespace").unwrap_or(2615);
    let mut rows = vec![vec![
        i(crate::catalog::oids::NS_PUBLIC),
        i(pg_namespace),
        i(0),
        s("standard public schema"),
    ]];
    for d in &snap.schemas {
        if let Some(c) = &d.comment {
            rows.push(vec![i(d.oid as i64), i(pg_namespace), i(0), s(c.clone())]);
        }
    }
    for t in &snap.tables {
        if let Some(c) = &t.comment {
            rows.push(vec![i(table_oid(t)), i(PG_CLASS_OID), i(0), s(c.clone())]);
        }
        for (n, col) in t.columns.iter().enumerate() {
            if let Some(c) = &col.comment {
                rows.push(vec![
                    i(table_oid(t)),
                    i(PG_CLASS_OID),
                    i(n as i64 + 1),
                    s(c.clone()),
                ]);
            }
        }
    }
    build(&cols, rows)
}

pub(crate) fn pg_settings(settings: &BTreeMap<String, String>) -> DfResult<Arc<dyn TableProvider>> {
    let cols = [
        ("name", K::Text),
        ("setting", K::Text),
        ("unit", K::Text),
        ("category", K::Text),
        ("short_desc", K::Text),
        ("extra_desc", K::Text),
        ("context", K::Text),
        ("vartype", K::Text),
        ("source", K::Text),
        ("min_val", K::Text),
        ("max_val", K::Text),
        ("enumvals", K::TextList),
        ("boot_val", K::Text),
        ("reset_val", K::Text),
        ("sourcefile", K::Text),
        ("sourceline", K::I32),
        ("pending_restart", K::Bool),
    ];
    let rows = settings
        .iter()
        .map(|(k, v)| {
            vec![
                s(k.clone()),
                s(v.clone()),
                V::N,
                s(""),
                s(""),
                V::N,
                s("user"),
                s("string"),
                s("default"),
                V::N,
                V::N,
                V::N,
                s(v.clone()),
                s(v.clone()),
                V::N,
                V::N,
                V::B(false),
            ]
        })
        .collect();
    build(&cols, rows)
}

/// One row per membership (`GRANT role TO member`), in PostgreSQL 15's columns.
pub(crate) fn pg_auth_members(
    known: &[crate::catalog::roles::RoleDef],
) -> DfResult<Arc<dyn TableProvider>> {
    use crate::catalog::oids::role_oid;
    let cols = [
        ("roleid", K::Oid),
        ("member", K::Oid),
        ("grantor", K::Oid),
        ("admin_option", K::Bool),
    ];
    let rows = known
        .iter()
        .flat_map(|r| {
            r.member_of.iter().map(|m| {
                vec![
                    i(role_oid(known, &m.role)),
                    i(role_oid(known, &r.name)),
                    i(role_oid(known, &m.grantor)),
                    V::B(m.admin),
                ]
            })
        })
        .collect();
    build(&cols, rows)
}

pub(crate) fn pg_roles(
    name: &str,
    who: &Identity,
    known: &[crate::catalog::roles::RoleDef],
) -> DfResult<Arc<dyn TableProvider>> {
    // pg_authid.rolpassword: the role's SCRAM verifier, as PostgreSQL shows it (nothing
    // in it is enough to log in with).
    let verifiers: std::collections::HashMap<&str, String> = known
        .iter()
        .filter_map(|r| Some((r.name.as_str(), r.password.as_ref()?.verifier())))
        .collect();
    use crate::catalog::roles::RoleDef;
    let mut roles: Vec<RoleDef> = known.to_vec();
    if roles.is_empty() {
        roles.push(RoleDef::superuser(BOOTSTRAP_ROLE_NAME));
    }
    // A trusted connection may name a role that was never created.
    if !roles.iter().any(|r| r.name == who.user) {
        roles.push(RoleDef::superuser(&who.user));
    }
    if name == "pg_user" {
        let cols = [
            ("usename", K::Text),
            ("usesysid", K::Oid),
            ("usecreatedb", K::Bool),
            ("usesuper", K::Bool),
            ("userepl", K::Bool),
            ("usebypassrls", K::Bool),
            ("passwd", K::Text),
            ("valuntil", K::Text),
            ("useconfig", K::TextList),
        ];
        let rows = roles
            .into_iter()
            .enumerate()
            .filter(|(_, r)| r.login)
            .map(|(n, r)| {
                vec![
                    s(r.name),
                    i(BOOTSTRAP_ROLE + n as i32 * 16374),
                    V::B(r.createdb),
                    V::B(r.superuser),
                    V::B(r.superuser),
                    V::B(r.superuser),
                    s("********"),
                    V::N,
                    V::N,
                ]
            })
            .collect();
        return build(&cols, rows);
    }
    let cols = [
        ("rolname", K::Text),
        ("rolsuper", K::Bool),
        ("rolinherit", K::Bool),
        ("rolcreaterole", K::Bool),
        ("rolcreatedb", K::Bool),
        ("rolcanlogin", K::Bool),
        ("rolreplication", K::Bool),
        ("rolconnlimit", K::I32),
        ("rolpassword", K::Text),
        ("rolvaliduntil", K::Text),
        ("rolbypassrls", K::Bool),
        ("rolconfig", K::TextList),
        ("oid", K::Oid),
    ];
    // PostgreSQL 15's predefined roles, which own nothing in weft but `public` (owned by
    // pg_database_owner) and which tools resolve role oids against.
    const PREDEFINED: &[(i32, &str)] = &[
        (3373, "pg_monitor"),
        (3374, "pg_read_all_settings"),
        (3375, "pg_read_all_stats"),
        (3377, "pg_stat_scan_tables"),
        (4200, "pg_signal_backend"),
        (4544, "pg_checkpoint"),
        (4569, "pg_read_server_files"),
        (4570, "pg_write_server_files"),
        (4571, "pg_execute_server_program"),
        (6171, "pg_database_owner"),
        (6181, "pg_read_all_data"),
        (6182, "pg_write_all_data"),
    ];
    let rows = roles
        .into_iter()
        .enumerate()
        .map(|(n, r)| (BOOTSTRAP_ROLE + n as i32 * 16374, r))
        .chain(
            PREDEFINED
                .iter()
                .map(|(oid, name)| (*oid, RoleDef::new(name))),
        )
        .map(|(oid, r)| {
            let password = if name == "pg_authid" {
                verifiers
                    .get(r.name.as_str())
                    .map_or(V::N, |v| s(v.clone()))
            } else {
                s("********")
            };
            vec![
                s(r.name),
                V::B(r.superuser),
                V::B(r.inherit),
                V::B(r.createrole),
                V::B(r.createdb),
                V::B(r.login),
                V::B(r.superuser),
                i(-1),
                password,
                V::N,
                V::B(r.superuser),
                V::N,
                i(oid),
            ]
        })
        .collect::<Vec<_>>();
    if name == "pg_authid" {
        // PostgreSQL's column order, without rolconfig.
        const ORDER: [usize; 12] = [12, 0, 1, 2, 3, 4, 5, 6, 10, 7, 8, 9];
        let cols: Vec<_> = ORDER.iter().map(|&c| cols[c]).collect();
        let rows = rows
            .into_iter()
            .map(|r| {
                let mut r: Vec<Option<V>> = r.into_iter().map(Some).collect();
                ORDER.iter().map(|&c| r[c].take().unwrap_or(V::N)).collect()
            })
            .collect();
        return build(&cols, rows);
    }
    build(&cols, rows)
}

// ------------------------------------------------------------------ information_schema

/// The columns a CHECK expression names (pg_constraint.conkey), in table order.
fn check_columns(t: &weft_engine::schema::TableDef, expr: &str) -> Vec<i16> {
    let words: std::collections::HashSet<String> = expr
        .split(|c: char| !(c.is_alphanumeric() || c == '_'))
        .map(|w| w.to_lowercase())
        .collect();
    t.columns
        .iter()
        .enumerate()
        .filter(|(_, c)| words.contains(&c.name))
        .map(|(n, _)| n as i16 + 1)
        .collect()
}
