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

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, OnceLock};

use arrow::array::{ArrayRef, RecordBatch};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use async_trait::async_trait;
use datafusion::catalog::{MemTable, SchemaProvider};
use datafusion::datasource::TableProvider;
use datafusion::error::{DataFusionError, Result as DfResult};
use weft_engine::schema::{TableDef, CATALOG_TABLE_ID};
use weft_engine::types::SqlType;
use weft_engine::Timestamp;

use crate::catalog::db::Db;
use crate::catalog::view::View;

pub const PG_CATALOG: &str = "pg_catalog";
pub const INFORMATION_SCHEMA: &str = "information_schema";

/// PostgreSQL's fixed namespace oids (and information_schema's in a PostgreSQL 15 cluster).
pub const NS_PG_CATALOG: i32 = 11;
pub const NS_PG_TOAST: i32 = 99;
pub const NS_PUBLIC: i32 = 2200;
pub const NS_INFORMATION_SCHEMA: i32 = 13183;
/// The bootstrap superuser's oid, which owns every object.
pub const BOOTSTRAP_ROLE: i32 = 10;
pub use crate::catalog::roles::BOOTSTRAP_ROLE_NAME;
/// The one database's oid.
pub const DATABASE_OID: i32 = 5;
pub const HEAP_AM: i32 = 2;
pub const BTREE_AM: i32 = 403;

/// The name of a role oid, as `pg_get_userbyid` prints it.
pub fn role_name(oid: i32) -> String {
    match oid {
        BOOTSTRAP_ROLE => BOOTSTRAP_ROLE_NAME.to_string(),
        6171 => "pg_database_owner".to_string(),
        _ => format!("unknown (OID={oid})"),
    }
}

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
}

/// What catalog tables and functions need to know about the session.
#[derive(Debug, Default)]
pub struct SessionMeta {
    /// The last value `nextval` gave this session, per sequence (`currval`), and overall
    /// (`lastval`).
    pub currvals: Mutex<HashMap<String, i64>>,
    pub lastval: Mutex<Option<i64>>,
    identity: OnceLock<Identity>,
    settings: Mutex<Arc<BTreeMap<String, String>>>,
    snapshot: Mutex<Arc<Snapshot>>,
    /// The session's open cursors, for `pg_cursors`: (name, statement, holdable,
    /// scrollable).
    cursors: Mutex<Vec<(String, String, bool, bool)>>,
}

impl SessionMeta {
    pub fn set_identity(&self, id: Identity) {
        let _ = self.identity.set(id);
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
        let own = view.overlays.get(&CATALOG_TABLE_ID).cloned();
        let own_seq = view
            .overlays
            .contains_key(&weft_engine::schema::SEQUENCE_TABLE_ID);
        {
            let cur = self.snapshot();
            if own.is_none() && !own_seq && cur.committed && cur.read_ts == view.read_ts {
                return Ok(cur);
            }
        }
        let mut tables = db
            .list_tables(view.read_ts, own.as_deref())
            .await
            .map_err(|e| DataFusionError::External(Box::new(e)))?;
        tables.sort_by(|a, b| a.name.cmp(&b.name));
        let own_seqs = view
            .overlays
            .get(&weft_engine::schema::SEQUENCE_TABLE_ID)
            .cloned();
        let sequences = crate::catalog::sequences::list(db, view.read_ts, own_seqs.as_deref())
            .await
            .map_err(|e| DataFusionError::External(Box::new(e)))?;
        let roles = crate::catalog::roles::list(db, view.read_ts)
            .await
            .map_err(|e| DataFusionError::External(Box::new(e)))?;
        let snap = Arc::new(Snapshot {
            read_ts: view.read_ts,
            committed: own.is_none() && own_seqs.is_none(),
            tables,
            sequences,
            roles,
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
                        | "to_regclass"
                        | "pg_get_serial_sequence"
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

fn table_oid(t: &TableDef) -> i32 {
    t.oid() as i32
}
fn rowtype_oid(t: &TableDef) -> i32 {
    t.oid() as i32 + 1
}
fn pkey_index_oid(t: &TableDef) -> i32 {
    t.oid() as i32 + 2
}
fn pkey_constraint_oid(t: &TableDef) -> i32 {
    t.oid() as i32 + 3
}
fn pkey_name(t: &TableDef) -> String {
    format!("{}_pkey", t.name)
}

/// How PostgreSQL describes a type in pg_attribute: (type oid, typmod, length, by value,
/// alignment, storage, collation).
struct PgTypeInfo {
    oid: i32,
    typmod: i32,
    len: i16,
    byval: bool,
    align: &'static str,
    storage: &'static str,
    collation: i32,
}

fn type_info(ty: &SqlType) -> PgTypeInfo {
    let t = |oid, len, byval, align, storage| PgTypeInfo {
        oid,
        typmod: -1,
        len,
        byval,
        align,
        storage,
        collation: 0,
    };
    match ty {
        SqlType::SmallInt => t(21, 2, true, "s", "p"),
        SqlType::Integer => t(23, 4, true, "i", "p"),
        SqlType::BigInt => t(20, 8, true, "d", "p"),
        SqlType::Real => t(700, 4, true, "i", "p"),
        SqlType::Double => t(701, 8, true, "d", "p"),
        SqlType::Numeric { precision, scale } => PgTypeInfo {
            typmod: ((*precision as i32) << 16 | (*scale as i32 & 0xffff)) + 4,
            ..t(1700, -1, false, "i", "m")
        },
        SqlType::Text => PgTypeInfo {
            collation: 100,
            ..t(25, -1, false, "i", "x")
        },
        SqlType::Varchar { max_chars } => PgTypeInfo {
            typmod: max_chars.map(|n| n as i32 + 4).unwrap_or(-1),
            collation: 100,
            ..t(1043, -1, false, "i", "x")
        },
        SqlType::Char { chars } => PgTypeInfo {
            typmod: *chars as i32 + 4,
            collation: 100,
            ..t(1042, -1, false, "i", "x")
        },
        SqlType::Boolean => t(16, 1, true, "c", "p"),
        SqlType::Bytea => t(17, -1, false, "i", "x"),
        SqlType::Date => t(1082, 4, true, "i", "p"),
        SqlType::Timestamp => t(1114, 8, true, "d", "p"),
        SqlType::Timestamptz => t(1184, 8, true, "d", "p"),
        SqlType::Uuid => t(2950, 16, false, "c", "p"),
        SqlType::Json => t(114, -1, false, "i", "x"),
        SqlType::Jsonb => t(3802, -1, false, "i", "x"),
        SqlType::Array(elem) => PgTypeInfo {
            typmod: type_info(elem).typmod,
            collation: type_info(elem).collation,
            ..t(
                array_oid(elem),
                -1,
                false,
                if matches!(
                    **elem,
                    SqlType::BigInt | SqlType::Double | SqlType::Timestamp | SqlType::Timestamptz
                ) {
                    "d"
                } else {
                    "i"
                },
                "x",
            )
        },
    }
}

/// The oid of the array type whose elements are `elem` (`integer[]` is 1007).
fn array_oid(elem: &SqlType) -> i32 {
    match elem {
        SqlType::SmallInt => 1005,
        SqlType::Integer => 1007,
        SqlType::BigInt => 1016,
        SqlType::Real => 1021,
        SqlType::Double => 1022,
        SqlType::Numeric { .. } => 1231,
        SqlType::Text => 1009,
        SqlType::Varchar { .. } => 1015,
        SqlType::Char { .. } => 1014,
        SqlType::Boolean => 1000,
        SqlType::Bytea => 1001,
        SqlType::Date => 1182,
        SqlType::Timestamp => 1115,
        SqlType::Timestamptz => 1185,
        SqlType::Uuid => 2951,
        SqlType::Json => 199,
        SqlType::Jsonb => 3807,
        SqlType::Array(inner) => array_oid(inner),
    }
}

/// What `pg_get_constraintdef` prints for a constraint oid.
pub fn constraint_def(snap: &Snapshot, oid: i32) -> Option<String> {
    let t = snap
        .tables
        .iter()
        .find(|t| !t.primary_key.is_empty() && pkey_constraint_oid(t) == oid)?;
    Some(format!("PRIMARY KEY ({})", key_columns(t)))
}

/// What `pg_get_indexdef` prints for an index oid.
pub fn index_def(snap: &Snapshot, oid: i32) -> Option<String> {
    let t = snap
        .tables
        .iter()
        .find(|t| !t.primary_key.is_empty() && pkey_index_oid(t) == oid)?;
    Some(format!(
        "CREATE UNIQUE INDEX {} ON public.{} USING btree ({})",
        quote_ident(&pkey_name(t)),
        quote_ident(&t.name),
        key_columns(t)
    ))
}

/// The oid of a relation name (`t`, `public.t`, a quoted name), if it exists.
pub fn regclass(snap: &Snapshot, name: &str) -> Option<i32> {
    let parts: Vec<String> = split_name(name)?;
    let (schema, rel) = match parts.as_slice() {
        [rel] => (None, rel.as_str()),
        [schema, rel] => (Some(schema.as_str()), rel.as_str()),
        _ => return None,
    };
    if schema.is_some_and(|s| s != "public") {
        return None;
    }
    if let Some(q) = snap.sequences.iter().find(|q| q.name == rel) {
        return Some(q.oid as i32);
    }
    snap.tables.iter().find_map(|t| {
        if t.name == rel {
            Some(table_oid(t))
        } else if !t.primary_key.is_empty() && pkey_name(t) == rel {
            Some(pkey_index_oid(t))
        } else {
            None
        }
    })
}

/// `pg_get_serial_sequence(table, column)`: the sequence a column's default draws from, as
/// `public.name`. The table may be a name or an oid (as text).
pub fn serial_sequence(snap: &Snapshot, table: &str, column: &str) -> Option<String> {
    let t = match table.trim().parse::<i32>() {
        Ok(oid) => snap.tables.iter().find(|t| table_oid(t) == oid)?,
        Err(_) => {
            let parts = split_name(table)?;
            let name = parts.last()?;
            snap.tables.iter().find(|t| &t.name == name)?
        }
    };
    let c = t.columns.iter().find(|c| c.name == column)?;
    let seq = crate::catalog::sequences::default_sequence(c.default.as_deref()?)?;
    Some(format!("public.{}", quote_ident(seq)))
}

/// Splits a possibly qualified, possibly quoted name the way PostgreSQL reads it.
pub fn split_name(name: &str) -> Option<Vec<String>> {
    let mut out = Vec::new();
    let mut chars = name.trim().chars().peekable();
    loop {
        let mut part = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            loop {
                match chars.next()? {
                    '"' if chars.peek() == Some(&'"') => {
                        chars.next();
                        part.push('"');
                    }
                    '"' => break,
                    c => part.push(c),
                }
            }
        } else {
            while let Some(&c) = chars.peek() {
                if c == '.' {
                    break;
                }
                part.extend(c.to_lowercase());
                chars.next();
            }
        }
        out.push(part);
        match chars.next() {
            None => return Some(out),
            Some('.') => continue,
            Some(_) => return None,
        }
    }
}

/// A column default as PostgreSQL prints it back: a string literal carries a cast to the
/// column's type (`'open'::text`); other expressions print as written.
fn default_text(c: &weft_engine::schema::ColumnDef) -> Option<String> {
    if c.identity.is_some() {
        // psql shows "generated ... as identity" from attidentity instead.
        return None;
    }
    let d = c.default.as_ref()?;
    if let Some(seq) = crate::catalog::sequences::default_sequence(d) {
        return Some(format!("nextval('{}'::regclass)", quote_ident(seq)));
    }
    let t = d.trim();
    let quoted = t.len() >= 2
        && t.starts_with('\'')
        && t.ends_with('\'')
        && !t[1..t.len() - 1].replace("''", "").contains('\'');
    if !quoted {
        return Some(d.clone());
    }
    let ty = match &c.ty {
        SqlType::Varchar { .. } => "character varying".to_string(),
        SqlType::Char { .. } => "bpchar".to_string(),
        SqlType::Numeric { .. } => "numeric".to_string(),
        other => other.pg_name(),
    };
    Some(format!("{t}::{ty}"))
}

fn key_columns(t: &TableDef) -> String {
    t.primary_key
        .iter()
        .map(|&i| quote_ident(&t.columns[i].name))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Quotes an identifier when PostgreSQL would.
pub fn quote_ident(s: &str) -> String {
    let plain = s
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c == '_')
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if plain {
        s.to_string()
    } else {
        format!("\"{}\"", s.replace('"', "\"\""))
    }
}

// ------------------------------------------------------------------ building tables

#[derive(Clone, Copy)]
enum K {
    /// An object id (int4 on the wire as `oid`).
    Oid,
    Text,
    /// PostgreSQL's one-byte `"char"`.
    Char,
    Bool,
    I16,
    I32,
    I64,
    F32,
    TextList,
    /// int2vector / int2[] (index and constraint keys).
    I16List,
}

enum V {
    N,
    S(String),
    I(i64),
    B(bool),
    F(f64),
    IL(Vec<i16>),
}

fn s(v: impl Into<String>) -> V {
    V::S(v.into())
}
fn i(v: impl Into<i64>) -> V {
    V::I(v.into())
}

fn field(name: &str, k: K) -> Field {
    let f = |dt| Field::new(name, dt, true);
    match k {
        K::Oid => f(DataType::Int32).with_metadata(HashMap::from([(
            arrow_pg::datatypes::PG_OID_ALIAS_KEY.to_string(),
            "oid".to_string(),
        )])),
        K::Text => f(DataType::Utf8),
        K::Char => f(DataType::Utf8).with_metadata(HashMap::from([(
            arrow_pg::datatypes::PG_CHAR_KEY.to_string(),
            "char".to_string(),
        )])),
        K::Bool => f(DataType::Boolean),
        K::I16 => f(DataType::Int16),
        K::I32 => f(DataType::Int32),
        K::I64 => f(DataType::Int64),
        K::F32 => f(DataType::Float32),
        K::TextList => f(DataType::List(Arc::new(Field::new(
            "item",
            DataType::Utf8,
            true,
        )))),
        K::I16List => f(DataType::List(Arc::new(Field::new(
            "item",
            DataType::Int16,
            true,
        )))),
    }
}

fn build(cols: &[(&str, K)], rows: Vec<Vec<V>>) -> DfResult<Arc<dyn TableProvider>> {
    use datafusion::scalar::ScalarValue as S;
    let schema: SchemaRef = Arc::new(Schema::new(
        cols.iter().map(|(n, k)| field(n, *k)).collect::<Vec<_>>(),
    ));
    let mut arrays: Vec<ArrayRef> = Vec::with_capacity(cols.len());
    for (c, (name, k)) in cols.iter().enumerate() {
        let bad = || DataFusionError::Internal(format!("catalog column {name} has a bad value"));
        // Each cell as a value of the column's type; NULL is a typed NULL.
        let cells = rows.iter().map(|r| {
            let v = r.get(c).ok_or_else(|| {
                DataFusionError::Internal(format!("catalog row is missing column {name}"))
            })?;
            Ok(match (k, v) {
                (K::Oid | K::I32, V::I(x)) => S::Int32(Some(*x as i32)),
                (K::I16, V::I(x)) => S::Int16(Some(*x as i16)),
                (K::I64, V::I(x)) => S::Int64(Some(*x)),
                (K::F32, V::F(x)) => S::Float32(Some(*x as f32)),
                (K::Bool, V::B(x)) => S::Boolean(Some(*x)),
                (K::Text | K::Char, V::S(x)) => S::Utf8(Some(x.clone())),
                (K::I16List, V::IL(xs)) => S::List(S::new_list_nullable(
                    &xs.iter().map(|x| S::Int16(Some(*x))).collect::<Vec<_>>(),
                    &DataType::Int16,
                )),
                (_, V::N) => S::try_from(field(name, *k).data_type())?,
                _ => return Err(bad()),
            })
        });
        let values = cells.collect::<DfResult<Vec<S>>>()?;
        let array = if values.is_empty() {
            arrow::array::new_empty_array(field(name, *k).data_type())
        } else {
            S::iter_to_array(values)?
        };
        arrays.push(array);
    }
    let batch = RecordBatch::try_new(schema.clone(), arrays)?;
    Ok(Arc::new(MemTable::try_new(schema, vec![vec![batch]])?))
}

// ------------------------------------------------------------------ pg_catalog

/// The pg_catalog tables built from weft's own catalog.
const DYNAMIC: &[&str] = &[
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
    "pg_sequence",
    "pg_sequences",
    "pg_views",
    "pg_matviews",
    "pg_indexes",
    "pg_cursors",
    "pg_stat_activity",
];

/// Whether an unqualified relation name is a pg_catalog one (PostgreSQL searches
/// pg_catalog before the schemas in search_path).
pub fn is_catalog_relation(db: &Db, name: &str) -> bool {
    DYNAMIC.contains(&name) || db.pg_static.table_exist(name)
}

pub struct PgCatalogSchema {
    pub db: Arc<Db>,
    pub view: Arc<Mutex<Option<View>>>,
    pub meta: Arc<SessionMeta>,
}

impl std::fmt::Debug for PgCatalogSchema {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PgCatalogSchema")
    }
}

impl PgCatalogSchema {
    async fn snapshot(&self) -> DfResult<Option<Arc<Snapshot>>> {
        let view = self.view.lock().unwrap_or_else(|e| e.into_inner()).clone();
        match view {
            Some(v) => Ok(Some(self.meta.refresh(&self.db, &v).await?)),
            None => Ok(None),
        }
    }

    pub async fn dynamic_table(&self, name: &str) -> DfResult<Option<Arc<dyn TableProvider>>> {
        if !DYNAMIC.contains(&name) {
            return Ok(None);
        }
        let Some(snap) = self.snapshot().await? else {
            return Ok(None);
        };
        let t = match name {
            "pg_namespace" => pg_namespace(),
            "pg_class" => pg_class(&snap),
            "pg_attribute" => pg_attribute(&snap),
            "pg_index" => pg_index(&snap),
            "pg_constraint" => pg_constraint(&snap),
            "pg_attrdef" => pg_attrdef(&snap),
            "pg_database" => pg_database(&self.meta.identity()),
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
            "pg_roles" | "pg_user" => pg_roles(name, &self.meta.identity(), &snap.roles),
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
                        vec![
                            s("public"),
                            s(q.name.clone()),
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
            "pg_views" | "pg_matviews" => build(
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
            _ => return Ok(None),
        }?;
        Ok(Some(t))
    }
}

#[async_trait]
impl SchemaProvider for PgCatalogSchema {
    fn table_names(&self) -> Vec<String> {
        let mut names: Vec<String> = DYNAMIC.iter().map(|s| s.to_string()).collect();
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

fn pg_namespace() -> DfResult<Arc<dyn TableProvider>> {
    let cols = [
        ("oid", K::Oid),
        ("nspname", K::Text),
        ("nspowner", K::Oid),
        ("nspacl", K::Text),
    ];
    let rows = [
        (NS_PG_CATALOG, PG_CATALOG, BOOTSTRAP_ROLE),
        (NS_PG_TOAST, "pg_toast", BOOTSTRAP_ROLE),
        (NS_PUBLIC, "public", 6171),
        (NS_INFORMATION_SCHEMA, INFORMATION_SCHEMA, BOOTSTRAP_ROLE),
    ]
    .into_iter()
    .map(|(oid, name, owner)| vec![i(oid), s(name), i(owner), V::N])
    .collect();
    build(&cols, rows)
}

fn pg_class(snap: &Snapshot) -> DfResult<Arc<dyn TableProvider>> {
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
    let rel =
        |oid: i32, name: String, rowtype: i32, am: i32, kind: &str, natts: usize, idx: bool| {
            vec![
                i(oid),
                s(name),
                i(NS_PUBLIC),
                i(rowtype),
                i(0),
                i(BOOTSTRAP_ROLE),
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
                i(0),
                V::B(false),
                V::B(false),
                V::B(false),
                V::B(false),
                V::B(false),
                V::B(true),
                s(if kind == "r" { "d" } else { "n" }),
                V::B(false),
                i(0),
                i(0),
                i(0),
                V::N,
                V::N,
                V::N,
            ]
        };
    for t in &snap.tables {
        let has_pk = !t.primary_key.is_empty();
        rows.push(rel(
            table_oid(t),
            t.name.clone(),
            rowtype_oid(t),
            HEAP_AM,
            "r",
            t.columns.len(),
            has_pk,
        ));
        if has_pk {
            rows.push(rel(
                pkey_index_oid(t),
                pkey_name(t),
                0,
                BTREE_AM,
                "i",
                t.primary_key.len(),
                false,
            ));
        }
    }
    for q in &snap.sequences {
        rows.push(rel(q.oid as i32, q.name.clone(), 0, 0, "S", 3, false));
    }
    build(&cols, rows)
}

fn pg_attribute(snap: &Snapshot) -> DfResult<Arc<dyn TableProvider>> {
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
    ];
    let mut rows = Vec::new();
    for t in &snap.tables {
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
                V::B(default_text(c).is_some()),
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
            ]);
        };
        for (n, c) in t.columns.iter().enumerate() {
            attr(table_oid(t), n + 1, c);
        }
        for (n, &k) in t.primary_key.iter().enumerate() {
            attr(pkey_index_oid(t), n + 1, &t.columns[k]);
        }
    }
    build(&cols, rows)
}

fn pg_index(snap: &Snapshot) -> DfResult<Arc<dyn TableProvider>> {
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
        ("indkey", K::I16List),
        ("indcollation", K::Text),
        ("indclass", K::Text),
        ("indoption", K::Text),
        ("indexprs", K::Text),
        ("indpred", K::Text),
    ];
    let rows = snap
        .tables
        .iter()
        .filter(|t| !t.primary_key.is_empty())
        .map(|t| {
            let n = t.primary_key.len() as i64;
            let key: Vec<i16> = t.primary_key.iter().map(|k| *k as i16 + 1).collect();
            vec![
                i(pkey_index_oid(t)),
                i(table_oid(t)),
                i(n),
                i(n),
                V::B(true),
                V::B(false),
                V::B(true),
                V::B(false),
                V::B(true),
                V::B(false),
                V::B(true),
                V::B(false),
                V::B(true),
                V::B(true),
                V::B(false),
                V::IL(key),
                s(""),
                s(""),
                s(""),
                V::N,
                V::N,
            ]
        })
        .collect();
    build(&cols, rows)
}

fn pg_constraint(snap: &Snapshot) -> DfResult<Arc<dyn TableProvider>> {
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
    let rows = snap
        .tables
        .iter()
        .filter(|t| !t.primary_key.is_empty())
        .map(|t| {
            vec![
                i(pkey_constraint_oid(t)),
                s(pkey_name(t)),
                i(NS_PUBLIC),
                s("p"),
                V::B(false),
                V::B(false),
                V::B(true),
                i(table_oid(t)),
                i(0),
                i(pkey_index_oid(t)),
                i(0),
                i(0),
                s(" "),
                s(" "),
                s(" "),
                V::B(true),
                i(0),
                V::B(true),
                V::IL(t.primary_key.iter().map(|k| *k as i16 + 1).collect()),
                V::N,
                V::N,
            ]
        })
        .collect();
    build(&cols, rows)
}

fn pg_attrdef(snap: &Snapshot) -> DfResult<Arc<dyn TableProvider>> {
    let cols = [
        ("oid", K::Oid),
        ("adrelid", K::Oid),
        ("adnum", K::I16),
        ("adbin", K::Text),
    ];
    let mut rows = Vec::new();
    for t in &snap.tables {
        for (n, c) in t.columns.iter().enumerate() {
            if let Some(d) = default_text(c) {
                // Defaults take oids after the table's fixed ones.
                rows.push(vec![
                    i(table_oid(t) + 4 + n as i32 % 12),
                    i(table_oid(t)),
                    i(n as i64 + 1),
                    s(d),
                ]);
            }
        }
    }
    build(&cols, rows)
}

fn pg_database(who: &Identity) -> DfResult<Arc<dyn TableProvider>> {
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
    // weft has one database; a session may name it anything at connect.
    let mut names = vec!["postgres".to_string()];
    if who.database != "postgres" {
        names.push(who.database.clone());
    }
    let rows = names
        .into_iter()
        .enumerate()
        .map(|(n, name)| {
            vec![
                i(DATABASE_OID + n as i32),
                s(name),
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
                V::N,
            ]
        })
        .collect();
    build(&cols, rows)
}

fn pg_tables(snap: &Snapshot) -> DfResult<Arc<dyn TableProvider>> {
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
                s("public"),
                s(t.name.clone()),
                s(BOOTSTRAP_ROLE_NAME),
                V::N,
                V::B(!t.primary_key.is_empty()),
                V::B(false),
                V::B(false),
                V::B(false),
            ]
        })
        .collect();
    build(&cols, rows)
}

fn pg_indexes(snap: &Snapshot) -> DfResult<Arc<dyn TableProvider>> {
    let cols = [
        ("schemaname", K::Text),
        ("tablename", K::Text),
        ("indexname", K::Text),
        ("tablespace", K::Text),
        ("indexdef", K::Text),
    ];
    let rows = snap
        .tables
        .iter()
        .filter(|t| !t.primary_key.is_empty())
        .map(|t| {
            vec![
                s("public"),
                s(t.name.clone()),
                s(pkey_name(t)),
                V::N,
                s(index_def(snap, pkey_index_oid(t)).unwrap_or_default()),
            ]
        })
        .collect();
    build(&cols, rows)
}

fn pg_settings(settings: &BTreeMap<String, String>) -> DfResult<Arc<dyn TableProvider>> {
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

fn pg_roles(
    name: &str,
    who: &Identity,
    known: &[crate::catalog::roles::RoleDef],
) -> DfResult<Arc<dyn TableProvider>> {
    let mut roles: Vec<(String, bool, bool)> = known
        .iter()
        .map(|r| (r.name.clone(), r.superuser, r.login))
        .collect();
    if roles.is_empty() {
        roles.push((BOOTSTRAP_ROLE_NAME.to_string(), true, true));
    }
    // A trusted connection may name a role that was never created.
    if !roles.iter().any(|r| r.0 == who.user) {
        roles.push((who.user.clone(), true, true));
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
            .filter(|(_, r)| r.2)
            .map(|(n, (u, sup, _))| {
                vec![
                    s(u),
                    i(BOOTSTRAP_ROLE + n as i32 * 16374),
                    V::B(sup),
                    V::B(sup),
                    V::B(sup),
                    V::B(sup),
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
    let rows = roles
        .into_iter()
        .enumerate()
        .map(|(n, (u, sup, login))| {
            vec![
                s(u),
                V::B(sup),
                V::B(true),
                V::B(sup),
                V::B(sup),
                V::B(login),
                V::B(sup),
                i(-1),
                s("********"),
                V::N,
                V::B(sup),
                V::N,
                i(BOOTSTRAP_ROLE + n as i32 * 16374),
            ]
        })
        .collect();
    build(&cols, rows)
}

// ------------------------------------------------------------------ information_schema

pub struct InformationSchema {
    pub pg: PgCatalogSchema,
}

impl std::fmt::Debug for InformationSchema {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("InformationSchema")
    }
}

const INFO_TABLES: &[&str] = &[
    "schemata",
    "tables",
    "columns",
    "table_constraints",
    "key_column_usage",
    "views",
    "sequences",
];

#[async_trait]
impl SchemaProvider for InformationSchema {
    fn table_names(&self) -> Vec<String> {
        INFO_TABLES.iter().map(|s| s.to_string()).collect()
    }

    async fn table(&self, name: &str) -> DfResult<Option<Arc<dyn TableProvider>>> {
        if !INFO_TABLES.contains(&name) {
            return Ok(None);
        }
        let Some(snap) = self.pg.snapshot().await? else {
            return Ok(None);
        };
        let db_name = self.pg.meta.identity().database;
        Ok(Some(info_table(name, &snap, &db_name)?))
    }

    fn table_exist(&self, name: &str) -> bool {
        INFO_TABLES.contains(&name)
    }
}

/// information_schema's type names and sizes of a column type: (data_type, udt_name,
/// character_maximum_length, numeric_precision, numeric_precision_radix, numeric_scale,
/// datetime_precision).
#[allow(clippy::type_complexity)]
fn info_type(
    ty: &SqlType,
) -> (
    &'static str,
    &'static str,
    Option<i64>,
    Option<i64>,
    Option<i64>,
    Option<i64>,
    Option<i64>,
) {
    match ty {
        SqlType::SmallInt => ("smallint", "int2", None, Some(16), Some(2), Some(0), None),
        SqlType::Integer => ("integer", "int4", None, Some(32), Some(2), Some(0), None),
        SqlType::BigInt => ("bigint", "int8", None, Some(64), Some(2), Some(0), None),
        SqlType::Real => ("real", "float4", None, Some(24), Some(2), None, None),
        SqlType::Double => (
            "double precision",
            "float8",
            None,
            Some(53),
            Some(2),
            None,
            None,
        ),
        SqlType::Numeric { precision, scale } => (
            "numeric",
            "numeric",
            None,
            Some(*precision as i64),
            Some(10),
            Some(*scale as i64),
            None,
        ),
        SqlType::Text => ("text", "text", None, None, None, None, None),
        SqlType::Varchar { max_chars } => (
            "character varying",
            "varchar",
            max_chars.map(|n| n as i64),
            None,
            None,
            None,
            None,
        ),
        SqlType::Char { chars } => (
            "character",
            "bpchar",
            Some(*chars as i64),
            None,
            None,
            None,
            None,
        ),
        SqlType::Boolean => ("boolean", "bool", None, None, None, None, None),
        SqlType::Bytea => ("bytea", "bytea", None, None, None, None, None),
        SqlType::Date => ("date", "date", None, None, None, None, Some(0)),
        SqlType::Timestamp => (
            "timestamp without time zone",
            "timestamp",
            None,
            None,
            None,
            None,
            Some(6),
        ),
        SqlType::Timestamptz => (
            "timestamp with time zone",
            "timestamptz",
            None,
            None,
            None,
            None,
            Some(6),
        ),
        SqlType::Uuid => ("uuid", "uuid", None, None, None, None, None),
        SqlType::Json => ("json", "json", None, None, None, None, None),
        SqlType::Jsonb => ("jsonb", "jsonb", None, None, None, None, None),
        SqlType::Array(elem) => {
            let udt = match **elem {
                SqlType::SmallInt => "_int2",
                SqlType::Integer => "_int4",
                SqlType::BigInt => "_int8",
                SqlType::Real => "_float4",
                SqlType::Double => "_float8",
                SqlType::Numeric { .. } => "_numeric",
                SqlType::Text => "_text",
                SqlType::Varchar { .. } => "_varchar",
                SqlType::Char { .. } => "_bpchar",
                SqlType::Boolean => "_bool",
                SqlType::Bytea => "_bytea",
                SqlType::Date => "_date",
                SqlType::Timestamp => "_timestamp",
                SqlType::Timestamptz => "_timestamptz",
                SqlType::Uuid => "_uuid",
                SqlType::Json => "_json",
                SqlType::Jsonb => "_jsonb",
                SqlType::Array(_) => "_text",
            };
            ("ARRAY", udt, None, None, None, None, None)
        }
    }
}

fn opt(v: Option<i64>) -> V {
    v.map(V::I).unwrap_or(V::N)
}

fn info_table(name: &str, snap: &Snapshot, db: &str) -> DfResult<Arc<dyn TableProvider>> {
    let yes_no = |b: bool| s(if b { "YES" } else { "NO" });
    match name {
        "schemata" => build(
            &[
                ("catalog_name", K::Text),
                ("schema_name", K::Text),
                ("schema_owner", K::Text),
                ("default_character_set_catalog", K::Text),
                ("default_character_set_schema", K::Text),
                ("default_character_set_name", K::Text),
                ("sql_path", K::Text),
            ],
            [PG_CATALOG, "public", INFORMATION_SCHEMA]
                .into_iter()
                .map(|n| {
                    vec![
                        s(db),
                        s(n),
                        s(if n == "public" {
                            "pg_database_owner"
                        } else {
                            BOOTSTRAP_ROLE_NAME
                        }),
                        V::N,
                        V::N,
                        V::N,
                        V::N,
                    ]
                })
                .collect(),
        ),
        "tables" => build(
            &[
                ("table_catalog", K::Text),
                ("table_schema", K::Text),
                ("table_name", K::Text),
                ("table_type", K::Text),
                ("self_referencing_column_name", K::Text),
                ("reference_generation", K::Text),
                ("user_defined_type_catalog", K::Text),
                ("user_defined_type_schema", K::Text),
                ("user_defined_type_name", K::Text),
                ("is_insertable_into", K::Text),
                ("is_typed", K::Text),
                ("commit_action", K::Text),
            ],
            snap.tables
                .iter()
                .map(|t| {
                    vec![
                        s(db),
                        s("public"),
                        s(t.name.clone()),
                        s("BASE TABLE"),
                        V::N,
                        V::N,
                        V::N,
                        V::N,
                        V::N,
                        s("YES"),
                        s("NO"),
                        V::N,
                    ]
                })
                .collect(),
        ),
        "columns" => {
            let mut rows = Vec::new();
            for t in &snap.tables {
                for (n, c) in t.columns.iter().enumerate() {
                    let (dt, udt, len, prec, radix, scale, dtp) = info_type(&c.ty);
                    rows.push(vec![
                        s(db),
                        s("public"),
                        s(t.name.clone()),
                        s(c.name.clone()),
                        i(n as i64 + 1),
                        default_text(c).map(V::S).unwrap_or(V::N),
                        yes_no(c.nullable),
                        s(dt),
                        opt(len),
                        opt(len.map(|l| l * 4)),
                        opt(prec),
                        opt(radix),
                        opt(scale),
                        opt(dtp),
                        V::N,
                        V::N,
                        s(db),
                        s(PG_CATALOG),
                        s(udt),
                        i(n as i64 + 1),
                        yes_no(c.identity.is_some()),
                        match c.identity.as_deref() {
                            Some("a") => s("ALWAYS"),
                            Some(_) => s("BY DEFAULT"),
                            None => V::N,
                        },
                        s("NEVER"),
                        V::N,
                        s("YES"),
                    ]);
                }
            }
            build(
                &[
                    ("table_catalog", K::Text),
                    ("table_schema", K::Text),
                    ("table_name", K::Text),
                    ("column_name", K::Text),
                    ("ordinal_position", K::I32),
                    ("column_default", K::Text),
                    ("is_nullable", K::Text),
                    ("data_type", K::Text),
                    ("character_maximum_length", K::I32),
                    ("character_octet_length", K::I32),
                    ("numeric_precision", K::I32),
                    ("numeric_precision_radix", K::I32),
                    ("numeric_scale", K::I32),
                    ("datetime_precision", K::I32),
                    ("interval_type", K::Text),
                    ("interval_precision", K::I32),
                    ("udt_catalog", K::Text),
                    ("udt_schema", K::Text),
                    ("udt_name", K::Text),
                    ("dtd_identifier", K::Text),
                    ("is_identity", K::Text),
                    ("identity_generation", K::Text),
                    ("is_generated", K::Text),
                    ("generation_expression", K::Text),
                    ("is_updatable", K::Text),
                ],
                rows.into_iter()
                    .map(|mut r| {
                        // dtd_identifier is text in PostgreSQL.
                        if let V::I(n) = r[19] {
                            r[19] = s(n.to_string());
                        }
                        r
                    })
                    .collect(),
            )
        }
        "table_constraints" => build(
            &[
                ("constraint_catalog", K::Text),
                ("constraint_schema", K::Text),
                ("constraint_name", K::Text),
                ("table_catalog", K::Text),
                ("table_schema", K::Text),
                ("table_name", K::Text),
                ("constraint_type", K::Text),
                ("is_deferrable", K::Text),
                ("initially_deferred", K::Text),
                ("enforced", K::Text),
                ("nulls_distinct", K::Text),
            ],
            snap.tables
                .iter()
                .filter(|t| !t.primary_key.is_empty())
                .map(|t| {
                    vec![
                        s(db),
                        s("public"),
                        s(pkey_name(t)),
                        s(db),
                        s("public"),
                        s(t.name.clone()),
                        s("PRIMARY KEY"),
                        s("NO"),
                        s("NO"),
                        s("YES"),
                        V::N,
                    ]
                })
                .collect(),
        ),
        "key_column_usage" => {
            let mut rows = Vec::new();
            for t in &snap.tables {
                for (n, &k) in t.primary_key.iter().enumerate() {
                    rows.push(vec![
                        s(db),
                        s("public"),
                        s(pkey_name(t)),
                        s(db),
                        s("public"),
                        s(t.name.clone()),
                        s(t.columns[k].name.clone()),
                        i(n as i64 + 1),
                        V::N,
                    ]);
                }
            }
            build(
                &[
                    ("constraint_catalog", K::Text),
                    ("constraint_schema", K::Text),
                    ("constraint_name", K::Text),
                    ("table_catalog", K::Text),
                    ("table_schema", K::Text),
                    ("table_name", K::Text),
                    ("column_name", K::Text),
                    ("ordinal_position", K::I32),
                    ("position_in_unique_constraint", K::I32),
                ],
                rows,
            )
        }
        "views" => build(
            &[
                ("table_catalog", K::Text),
                ("table_schema", K::Text),
                ("table_name", K::Text),
                ("view_definition", K::Text),
            ],
            vec![],
        ),
        _ => build(
            &[
                ("sequence_catalog", K::Text),
                ("sequence_schema", K::Text),
                ("sequence_name", K::Text),
                ("data_type", K::Text),
                ("start_value", K::Text),
                ("minimum_value", K::Text),
                ("maximum_value", K::Text),
                ("increment", K::Text),
                ("cycle_option", K::Text),
            ],
            vec![],
        ),
    }
}
