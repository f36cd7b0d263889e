//! `pg_depend`: the dependencies tools ask about, which pg_dump orders a dump by and psql's
//! `\d` prints:
//! - a sequence owned by a column (SERIAL and OWNED BY: deptype `a`; an identity column's
//!   sequence: `i`): "Owned by", `ALTER SEQUENCE ... OWNED BY`, `ADD GENERATED ... AS
//!   IDENTITY`;
//! - a column default's use of a sequence (`n`), so that the default follows the sequence;
//! - a view's use of the tables and views it reads (`n`, recorded on the view itself, where
//!   PostgreSQL records it on the view's rewrite rule), so that the view follows them.
//!
//! The other dependencies PostgreSQL records (an index on its table, a constraint on its
//! index) follow from weft's table definitions, which drop and rename them together, and
//! are not listed.

use std::sync::Arc;

use datafusion::datasource::TableProvider;
use datafusion::error::Result as DfResult;

use crate::catalog::oids::{attrdef_oid, catalog_relation_oid, table_oid};
use crate::catalog::rows::{build, i, s, K};
use crate::catalog::session_meta::Snapshot;

pub(crate) fn pg_depend(snap: &Snapshot) -> DfResult<Arc<dyn TableProvider>> {
    let cols = [
        ("classid", K::Oid),
        ("objid", K::Oid),
        ("objsubid", K::I32),
        ("refclassid", K::Oid),
        ("refobjid", K::Oid),
        ("refobjsubid", K::I32),
        ("deptype", K::Char),
    ];
    let pg_class = catalog_relation_oid("pg_class").unwrap_or(1259);
    let mut rows = Vec::new();
    for q in &snap.sequences {
        let Some((table, column)) = &q.owned_by else {
            continue;
        };
        let Some(t) = snap.tables.iter().find(|t| &t.name == table) else {
            continue;
        };
        let Some(n) = t.column_index(column) else {
            continue;
        };
        let identity = t.columns[n]
            .identity
            .as_deref()
            .is_some_and(|k| !k.is_empty());
        rows.push(vec![
            i(pg_class),
            i(q.oid as i64),
            i(0),
            i(pg_class),
            i(table_oid(t)),
            i(n as i64 + 1),
            s(if identity { "i" } else { "a" }),
        ]);
    }
    let pg_attrdef = catalog_relation_oid("pg_attrdef").unwrap_or(2604);
    for t in &snap.tables {
        for (n, c) in t.columns.iter().enumerate() {
            let used = c
                .default
                .as_deref()
                .and_then(crate::catalog::sequences::default_sequence)
                .and_then(|name| snap.sequences.iter().find(|q| q.name == name));
            if let Some(q) = used {
                rows.push(vec![
                    i(pg_attrdef),
                    i(attrdef_oid(t, n)),
                    i(0),
                    i(pg_class),
                    i(q.oid as i64),
                    i(0),
                    s("n"),
                ]);
            }
        }
    }
    for v in &snap.views {
        for read in &v.reads {
            let oid = snap
                .tables
                .iter()
                .find(|t| &t.name == read)
                .map(|t| table_oid(t))
                .or_else(|| {
                    snap.views
                        .iter()
                        .find(|w| &w.name == read)
                        .map(|w| w.oid as i32)
                });
            if let Some(oid) = oid {
                rows.push(vec![
                    i(pg_class),
                    i(v.oid as i64),
                    i(0),
                    i(pg_class),
                    i(oid),
                    i(0),
                    s("n"),
                ]);
            }
        }
    }
    build(&cols, rows)
}
