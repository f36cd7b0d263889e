//! The system functions that answer from the session's `search_path`: `current_schema()`,
//! `current_schemas(implicit)` and `pg_table_is_visible(oid)`.

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, BooleanArray, ListBuilder, StringArray, StringBuilder};
use datafusion::arrow::datatypes::{DataType, Field};
use datafusion::logical_expr::Volatility;
use datafusion::prelude::SessionContext;

use crate::catalog::oids::PG_CATALOG;
use crate::catalog::pgfuncs::{fun, ints};
use crate::catalog::session_meta::{SessionMeta, Snapshot};

/// The schema and bare name of a relation oid, if it is one of weft's relations.
fn relation_of(snap: &Snapshot, oid: i32) -> Option<(String, String)> {
    use weft_engine::schema::split_relation;
    let split = |key: &str| {
        let (s, n) = split_relation(key);
        (s.to_string(), n.to_string())
    };
    if let Some(q) = snap.sequences.iter().find(|q| q.oid as i32 == oid) {
        return Some(split(&q.name));
    }
    if let Some(v) = snap.views.iter().find(|v| v.oid as i32 == oid) {
        return Some(split(&v.name));
    }
    snap.tables.iter().find_map(|t| {
        if crate::catalog::oids::table_oid(t) == oid {
            return Some(split(&t.name));
        }
        crate::catalog::indexes::indexes_of(t)
            .into_iter()
            .find(|i| i.oid == oid)
            .map(|i| (t.schema().to_string(), i.name))
    })
}

/// Whether a relation is found by its bare name: its schema is on the path, and no schema
/// before it there has a relation of that name.
fn visible(snap: &Snapshot, path: &[String], oid: i32) -> bool {
    let Some((schema, name)) = relation_of(snap, oid) else {
        // PostgreSQL's own relations, in pg_catalog.
        return true;
    };
    match path.iter().position(|s| *s == schema) {
        None => false,
        Some(at) => path[..at]
            .iter()
            .all(|s| crate::catalog::pg_get::relation_oid(snap, s, &name).is_none()),
    }
}

pub fn register(ctx: &SessionContext, meta: &Arc<SessionMeta>) {
    let m = meta.clone();
    ctx.register_udf(fun(
        "current_schema",
        &[0],
        DataType::Utf8,
        Volatility::Stable,
        move |_, rows| {
            let path = m.search_path();
            let first = path.iter().find(|s| s.as_str() != PG_CATALOG).cloned();
            Ok(Arc::new(StringArray::from(vec![first; rows.max(1)])) as ArrayRef)
        },
    ));
    let m = meta.clone();
    ctx.register_udf(fun(
        "current_schemas",
        &[1],
        DataType::List(Arc::new(Field::new("item", DataType::Utf8, true))),
        Volatility::Stable,
        move |args, rows| {
            let path = m.search_path();
            let implicit = args[0]
                .as_any()
                .downcast_ref::<BooleanArray>()
                .map(|b| (0..b.len()).map(|i| b.is_valid(i) && b.value(i)).collect())
                .unwrap_or_else(|| vec![false; rows.max(1)]);
            let mut out = ListBuilder::new(StringBuilder::new());
            for with_implicit in implicit {
                // PostgreSQL lists pg_catalog first when it is searched implicitly.
                if with_implicit && !path.iter().any(|s| s == PG_CATALOG) {
                    out.values().append_value(PG_CATALOG);
                }
                for s in path.iter() {
                    if with_implicit || s != PG_CATALOG {
                        out.values().append_value(s);
                    }
                }
                out.append(true);
            }
            Ok(Arc::new(out.finish()) as ArrayRef)
        },
    ));
    let m = meta.clone();
    ctx.register_udf(fun(
        "pg_table_is_visible",
        &[1],
        DataType::Boolean,
        Volatility::Stable,
        move |args, _| {
            let oids = ints(&args[0])?;
            let snap = m.snapshot();
            let path = m.search_path();
            let out: BooleanArray = oids
                .iter()
                .map(|o| o.map(|o| visible(&snap, &path, o)))
                .collect();
            Ok(Arc::new(out) as ArrayRef)
        },
    ));
}
