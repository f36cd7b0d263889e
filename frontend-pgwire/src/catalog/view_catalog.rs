//! Views as the catalogs show them: `pg_views` and `pg_get_viewdef`. A view's definition
//! is its query as weft stores it, in PostgreSQL's shape (a leading blank and a trailing
//! semicolon, which pg_dump strips) but not PostgreSQL's layout: weft prints the query as
//! parsed, on one line, with names as written, except that a relation of `public` is
//! qualified (`public.t`) when `public` is not on the search path, as PostgreSQL prints a
//! relation the path does not find (pg_dump reads definitions with an empty path).

use std::sync::Arc;

use datafusion::datasource::TableProvider;
use datafusion::error::Result as DfResult;

use crate::catalog::roles::BOOTSTRAP_ROLE_NAME;
use crate::catalog::rows::{build, s, K};
use crate::catalog::session_meta::Snapshot;
use weft_engine::schema::PUBLIC_SCHEMA;

/// What `pg_get_viewdef` prints for a view oid.
pub fn view_def(snap: &Snapshot, path: &[String], oid: i32) -> Option<String> {
    let v = snap.views.iter().find(|v| v.oid as i32 == oid)?;
    let query = if path.iter().any(|s| s == PUBLIC_SCHEMA) {
        v.query.clone()
    } else {
        qualify_public(snap, &v.query)
    };
    Some(format!(" {query};"))
}

/// `query` with each unqualified name of a relation in `public` qualified by it (names its
/// WITH clauses define are left alone).
fn qualify_public(snap: &Snapshot, query: &str) -> String {
    use datafusion::sql::sqlparser::ast::{
        Ident, ObjectName, ObjectNamePart, Query, Statement, VisitMut, VisitorMut,
    };
    use datafusion::sql::sqlparser::dialect::PostgreSqlDialect;
    use datafusion::sql::sqlparser::parser::Parser;
    use std::ops::ControlFlow;

    struct Qualify<'a> {
        snap: &'a Snapshot,
        ctes: Vec<String>,
    }
    impl VisitorMut for Qualify<'_> {
        type Break = ();
        fn pre_visit_query(&mut self, q: &mut Query) -> ControlFlow<()> {
            if let Some(with) = &q.with {
                self.ctes.extend(
                    with.cte_tables
                        .iter()
                        .map(|c| c.alias.name.value.to_lowercase()),
                );
            }
            ControlFlow::Continue(())
        }
        fn pre_visit_relation(&mut self, name: &mut ObjectName) -> ControlFlow<()> {
            if let [ObjectNamePart::Identifier(id)] = name.0.as_slice() {
                let bare = if id.quote_style.is_some() {
                    id.value.clone()
                } else {
                    id.value.to_lowercase()
                };
                let in_public =
                    crate::catalog::pg_get::relation_oid(self.snap, PUBLIC_SCHEMA, &bare).is_some();
                if in_public && !self.ctes.contains(&bare) {
                    let id = id.clone();
                    name.0 = vec![
                        ObjectNamePart::Identifier(Ident::new(PUBLIC_SCHEMA)),
                        ObjectNamePart::Identifier(id),
                    ];
                }
            }
            ControlFlow::Continue(())
        }
    }
    let Ok(mut stmts) = Parser::parse_sql(&PostgreSqlDialect {}, query) else {
        return query.to_string();
    };
    let [Statement::Query(q)] = stmts.as_mut_slice() else {
        return query.to_string();
    };
    let _ = q.visit(&mut Qualify {
        snap,
        ctes: Vec::new(),
    });
    q.to_string()
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
