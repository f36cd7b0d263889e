//! Object sizes, as psql's `\dt+`, `\di+` and `\l+` and monitoring queries ask for them:
//! `pg_relation_size`, `pg_table_size`, `pg_indexes_size`, `pg_total_relation_size`,
//! `pg_database_size`, and `pg_size_pretty` to print them. A table's size is the bytes of
//! its Parquet segments in the storage manifest, an index's the bytes of its entries'
//! segments. Rows still in the memtable count nothing until a flush writes them (a table
//! written a moment ago can show 0 bytes); every version a segment holds counts, as dead
//! tuples count in PostgreSQL until VACUUM.

use std::collections::HashMap;
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, Int64Array, StringArray};
use arrow::datatypes::DataType;
use datafusion::error::Result as DfResult;
use datafusion::logical_expr::Volatility;
use datafusion::prelude::SessionContext;
use weft_engine::schema::TableDef;

use crate::catalog::db::Db;
use crate::catalog::pgfuncs::{block_on, external, fun, ints, texts};
use crate::catalog::session_meta::{SessionMeta, Snapshot};

/// What a size function measures of a relation.
#[derive(Clone, Copy)]
enum Part {
    /// The relation itself (a table's rows, or an index's entries).
    Relation,
    /// A table's indexes.
    Indexes,
    /// A table and its indexes.
    Total,
}

/// Bytes of segments per table id, from the storage manifest.
/// Storage that cannot answer (in another process) is an error, not a size of 0.
fn segment_bytes(db: &Db) -> DfResult<HashMap<u64, u64>> {
    Ok(block_on(db.storage.segment_bytes())
        .map_err(|e| external(crate::error::SqlError::from(e)))?
        .into_iter()
        .collect())
}

fn table_bytes(def: &TableDef, bytes: &HashMap<u64, u64>, part: Part) -> u64 {
    let own = bytes.get(&def.id).copied().unwrap_or(0);
    let indexes: u64 = def
        .indexes
        .iter()
        .map(|i| bytes.get(&i.id).copied().unwrap_or(0))
        .sum();
    match part {
        Part::Relation => own,
        Part::Indexes => indexes,
        Part::Total => own + indexes,
    }
}

/// The size of the relation `oid` (NULL when there is none, as in PostgreSQL).
fn relation_size(snap: &Snapshot, bytes: &HashMap<u64, u64>, oid: u32, part: Part) -> Option<i64> {
    for t in &snap.tables {
        if t.oid() == oid {
            return Some(table_bytes(t, bytes, part) as i64);
        }
        // The primary key is the table's own order: it takes no bytes of its own.
        if !t.primary_key.is_empty() && crate::catalog::oids::pkey_index_oid(t) as u32 == oid {
            return Some(0);
        }
        if let Some(i) = t.indexes.iter().find(|i| i.oid == oid) {
            return Some(match part {
                Part::Indexes => 0,
                _ => bytes.get(&i.id).copied().unwrap_or(0) as i64,
            });
        }
    }
    None
}

/// The oids a size function's argument names: oids, or relation names (`'t'`, as the
/// regclass a literal becomes in PostgreSQL).
fn relation_oids(arg: &ArrayRef, snap: &Snapshot) -> DfResult<Vec<Option<u32>>> {
    if matches!(
        arg.data_type(),
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View
    ) {
        let names = texts(arg)?;
        return names
            .iter()
            .map(|n| {
                let Some(n) = n else { return Ok(None) };
                let bare = n.trim_matches('"');
                let bare = bare.strip_prefix("public.").unwrap_or(bare);
                snap.tables
                    .iter()
                    .find_map(|t| {
                        if t.name == bare {
                            Some(t.oid())
                        } else {
                            t.indexes.iter().find(|i| i.name == bare).map(|i| i.oid)
                        }
                    })
                    .map(Some)
                    .ok_or_else(|| {
                        external(crate::error::SqlError::new(
                            crate::error::codes::UNDEFINED_TABLE,
                            format!("relation \"{n}\" does not exist"),
                        ))
                    })
            })
            .collect();
    }
    Ok(ints(arg)?.iter().map(|o| o.map(|o| o as u32)).collect())
}

fn size_udf(
    name: &'static str,
    part: Part,
    db: &Arc<Db>,
    meta: &Arc<SessionMeta>,
) -> datafusion::logical_expr::ScalarUDF {
    let (db, meta) = (db.clone(), meta.clone());
    fun(
        name,
        &[1, 2],
        DataType::Int64,
        Volatility::Volatile,
        move |args, _| {
            let snap = meta.snapshot();
            let bytes = segment_bytes(&db)?;
            let out: Int64Array = relation_oids(&args[0], &snap)?
                .into_iter()
                .map(|o| o.and_then(|o| relation_size(&snap, &bytes, o, part)))
                .collect();
            Ok(Arc::new(out) as ArrayRef)
        },
    )
}

/// `pg_database_size(name | oid)`: every table and index of the database.
fn database_size_udf(db: &Arc<Db>, meta: &Arc<SessionMeta>) -> datafusion::logical_expr::ScalarUDF {
    let (db, meta) = (db.clone(), meta.clone());
    fun(
        "pg_database_size",
        &[1],
        DataType::Int64,
        Volatility::Volatile,
        move |args, _| {
            let snap = meta.snapshot();
            let bytes = segment_bytes(&db)?;
            let by_name = matches!(args[0].data_type(), DataType::Utf8 | DataType::Utf8View);
            let (names, oids) = if by_name {
                (Some(texts(&args[0])?), None)
            } else {
                (None, Some(ints(&args[0])?))
            };
            let mut out = Vec::with_capacity(args[0].len());
            for i in 0..args[0].len() {
                let def = snap.databases.iter().find(|d| match (&names, &oids) {
                    (Some(n), _) => !n.is_null(i) && n.value(i) == d.name,
                    (_, Some(o)) => !o.is_null(i) && o.value(i) == d.oid,
                    _ => false,
                });
                let Some(def) = def else {
                    out.push(None);
                    continue;
                };
                let tables =
                    block_on(db.list_tables(def.tables, snap.read_ts, None)).map_err(external)?;
                let own: u64 = [def.tables.catalog, def.tables.sequences, def.tables.views]
                    .iter()
                    .map(|t| bytes.get(t).copied().unwrap_or(0))
                    .sum();
                let total: u64 = tables
                    .iter()
                    .map(|t| table_bytes(t, &bytes, Part::Total))
                    .sum();
                out.push(Some((own + total) as i64));
            }
            Ok(Arc::new(Int64Array::from(out)) as ArrayRef)
        },
    )
}

/// `pg_size_pretty(bigint)`, PostgreSQL 15's: bytes below 10 kB, then kB, MB, GB, TB and
/// PB, each below 20480 of itself, rounded half away from zero.
pub fn size_pretty(size: i64) -> String {
    // (name, limit, rounds, bits)
    const UNITS: [(&str, i64, bool, u32); 6] = [
        ("bytes", 10 * 1024, false, 0),
        ("kB", 20 * 1024 - 1, true, 10),
        ("MB", 20 * 1024 - 1, true, 20),
        ("GB", 20 * 1024 - 1, true, 30),
        ("TB", 20 * 1024 - 1, true, 40),
        ("PB", 20 * 1024 - 1, true, 50),
    ];
    let mut size = size;
    for (n, &(name, limit, round, bits)) in UNITS.iter().enumerate() {
        let last = n + 1 == UNITS.len();
        if last || size.abs() < limit {
            if round {
                size = (size + if size < 0 { -1 } else { 1 }) / 2;
            }
            return format!("{size} {name}");
        }
        let (_, _, next_round, next_bits) = UNITS[n + 1];
        let shift = next_bits - bits - u32::from(next_round) + u32::from(round);
        size /= 1i64 << shift;
    }
    unreachable!("the last unit always answers")
}

/// Registers the size functions in a session's context.
pub fn register(ctx: &SessionContext, db: &Arc<Db>, meta: &Arc<SessionMeta>) {
    for (name, part) in [
        ("pg_relation_size", Part::Relation),
        ("pg_table_size", Part::Relation),
        ("pg_indexes_size", Part::Indexes),
        ("pg_total_relation_size", Part::Total),
    ] {
        ctx.register_udf(size_udf(name, part, db, meta));
    }
    ctx.register_udf(database_size_udf(db, meta));
    ctx.register_udf(fun(
        "pg_size_pretty",
        &[1],
        DataType::Utf8,
        Volatility::Immutable,
        |args, _| {
            let v = arrow::compute::cast(&args[0], &DataType::Int64)?;
            let v = v
                .as_any()
                .downcast_ref::<Int64Array>()
                .expect("a cast to Int64 gives Int64");
            let out: StringArray = v.iter().map(|s| s.map(size_pretty)).collect();
            Ok(Arc::new(out) as ArrayRef)
        },
    ));
}

#[cfg(test)]
mod tests {
    use super::size_pretty;

    #[test]
    fn sizes_print_as_postgresql_prints_them() {
        // PostgreSQL 15's answers.
        for (v, want) in [
            (0, "0 bytes"),
            (10239, "10239 bytes"),
            (10240, "10 kB"),
            (10752, "11 kB"),
            (20971520, "20 MB"),
            (20971519, "20 MB"),
            (1_000_000_000, "954 MB"),
            (-10240, "-10 kB"),
            (1i64 << 50, "1024 TB"),
            (i64::MAX, "8192 PB"),
        ] {
            assert_eq!(size_pretty(v), want, "{v}");
        }
    }
}
