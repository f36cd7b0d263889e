//! System catalogs of features weft does not have, which the static pg_catalog lacks:
//! present with PostgreSQL 15's columns and no rows, so that tools reading them (pg_dump
//! reads every one) see an empty catalog rather than an error.

use std::sync::Arc;

use datafusion::datasource::TableProvider;
use datafusion::error::Result as DfResult;

use crate::catalog::rows::{build, K};

/// The absent catalogs' names.
pub(crate) const ABSENT: &[&str] = &["pg_transform", "pg_seclabels", "pg_policy"];

/// An absent catalog, empty.
pub(crate) fn table(name: &str) -> Option<DfResult<Arc<dyn TableProvider>>> {
    let cols: &[(&str, K)] = match name {
        "pg_transform" => &[
            ("oid", K::Oid),
            ("trftype", K::Oid),
            ("trflang", K::Oid),
            ("trffromsql", K::Oid),
            ("trftosql", K::Oid),
        ],
        "pg_seclabels" => &[
            ("objoid", K::Oid),
            ("classoid", K::Oid),
            ("objsubid", K::I32),
            ("objtype", K::Text),
            ("objnamespace", K::Oid),
            ("objname", K::Text),
            ("provider", K::Text),
            ("label", K::Text),
        ],
        // Row-level security policies (psql's `\dp` reads them): none.
        "pg_policy" => &[
            ("oid", K::Oid),
            ("polname", K::Text),
            ("polrelid", K::Oid),
            ("polcmd", K::Char),
            ("polpermissive", K::Bool),
            ("polroles", K::OidList),
            ("polqual", K::Text),
            ("polwithcheck", K::Text),
        ],
        _ => return None,
    };
    Some(build(cols, vec![]))
}
