//! Views as the catalogs show them: `pg_views` and `pg_get_viewdef`. A view's definition
//! is its query as weft stores it, in PostgreSQL's shape (a leading blank and a trailing
//! semicolon, which pg_dump strips) but not PostgreSQL's layout: weft prints the query as
//! parsed, on one line, with names as written.

use std::sync::Arc;

use datafusion::datasource::TableProvider;
use datafusion::error::Result as DfResult;

use crate::catalog::roles::BOOTSTRAP_ROLE_NAME;
use crate::catalog::rows::{build, s, K};
use crate::catalog::session_meta::Snapshot;

/// What `pg_get_viewdef` prints for a view oid.
pub fn view_def(snap: &Snapshot, _path: &[String], oid: i32) -> Option<String> {
    snap.views
        .iter()
        .find(|v| v.oid as i32 == oid)
        .map(|v| format!(" {};", v.query))
}

pub(crate) fn pg_views(snap: &Snapshot) -> DfResult<Arc<dyn TableProvider>> {
    build(
        &[
            ("schemaname", K::Text),
            ("viewname", K::Text),
            ("viewowner", K::Text),
            ("definition", K::Text),
        ],
        snap.views
            .iter()
            .map(|v| {
                let (schema, name) = weft_engine::schema::split_relation(&v.name);
                vec![
                    s(schema),
                    s(name),
                    s(BOOTSTRAP_ROLE_NAME),
                    s(format!(" {};", v.query)),
                ]
            })
            .collect(),
    )
}
