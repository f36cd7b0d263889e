//! A view named in a statement reads as its query: `FROM v [AS a]` becomes
//! `FROM (<v's query>) AS a(<v's columns>)` before the statement is planned, as
//! PostgreSQL's rewriter substitutes a view's query, so the query runs at the statement's
//! read timestamp with the statement's own filters around it. Views on views expand in
//! turn, up to [`MAX_DEPTH`].

use std::collections::{HashMap, HashSet};
use std::ops::ControlFlow;

use datafusion::sql::sqlparser::ast::{
    Ident, Query, Statement, TableAlias, TableAliasColumnDef, TableFactor, Visit, VisitMut,
    Visitor, VisitorMut,
};
use datafusion::sql::sqlparser::dialect::PostgreSqlDialect;
use datafusion::sql::sqlparser::parser::Parser;

use crate::catalog::txn::Txn;
use crate::catalog::views::ViewDef;
use crate::error::{SqlError, SqlResult};
use crate::sql::exec::{table_name, Executor};

/// How deep views may be nested in one another.
pub const MAX_DEPTH: usize = 32;

/// The relation names a statement reads that are not the names of its CTEs.
pub(crate) fn relation_names(stmt: &Statement) -> Vec<String> {
    struct V {
        names: Vec<String>,
        ctes: HashSet<String>,
    }
    impl Visitor for V {
        type Break = ();
        fn pre_visit_query(&mut self, q: &Query) -> ControlFlow<()> {
            if let Some(with) = &q.with {
                for c in &with.cte_tables {
                    self.ctes.insert(c.alias.name.value.to_lowercase());
                }
            }
            ControlFlow::Continue(())
        }
        fn pre_visit_table_factor(&mut self, t: &TableFactor) -> ControlFlow<()> {
            if let TableFactor::Table {
                name, args: None, ..
            } = t
            {
                if let Ok(n) = table_name(name) {
                    self.names.push(n);
                }
            }
            ControlFlow::Continue(())
        }
    }
    let mut v = V {
        names: Vec::new(),
        ctes: HashSet::new(),
    };
    let _ = stmt.visit(&mut v);
    let mut names: Vec<String> = v
        .names
        .into_iter()
        .filter(|n| !v.ctes.contains(n))
        .collect();
    names.sort();
    names.dedup();
    names
}

/// A view's query, parsed.
pub(crate) fn view_query(v: &ViewDef) -> SqlResult<Box<Query>> {
    match Parser::parse_sql(&PostgreSqlDialect {}, &v.query)
        .map_err(|e| SqlError::internal(format!("view \"{}\": {e}", v.name)))?
        .pop()
    {
        Some(Statement::Query(q)) => Ok(q),
        _ => Err(SqlError::internal(format!(
            "view \"{}\" holds no query",
            v.name
        ))),
    }
}

fn substitute(stmt: &mut Statement, views: &HashMap<String, ViewDef>) -> SqlResult<()> {
    struct S<'a> {
        views: &'a HashMap<String, ViewDef>,
        error: Option<SqlError>,
    }
    impl VisitorMut for S<'_> {
        type Break = ();
        fn pre_visit_table_factor(&mut self, t: &mut TableFactor) -> ControlFlow<()> {
            let TableFactor::Table {
                name,
                alias,
                args: None,
                ..
            } = t
            else {
                return ControlFlow::Continue(());
            };
            let Some(v) = table_name(name).ok().and_then(|n| self.views.get(&n)) else {
                return ControlFlow::Continue(());
            };
            let subquery = match view_query(v) {
                Ok(q) => q,
                Err(e) => {
                    self.error = Some(e);
                    return ControlFlow::Break(());
                }
            };
            let mut alias = alias.clone().unwrap_or(TableAlias {
                explicit: true,
                name: Ident::new(v.name.clone()),
                columns: vec![],
                at: None,
            });
            if alias.columns.is_empty() {
                alias.columns = v
                    .columns
                    .iter()
                    .map(|(c, _)| TableAliasColumnDef::from_name(c.clone()))
                    .collect();
            }
            *t = TableFactor::Derived {
                lateral: false,
                subquery,
                alias: Some(alias),
                sample: None,
            };
            ControlFlow::Continue(())
        }
    }
    let mut s = S { views, error: None };
    let _ = stmt.visit(&mut s);
    match s.error {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

impl Executor {
    /// Replaces every view `stmt` names with its query.
    pub(crate) async fn expand_views(&self, txn: &Txn, stmt: &mut Statement) -> SqlResult<()> {
        for _ in 0..MAX_DEPTH {
            let mut found = HashMap::new();
            for name in relation_names(stmt) {
                if crate::catalog::pgcatalog::is_catalog_relation(&self.db, &name) {
                    continue;
                }
                if let Some(v) = self.view_def(txn, &name).await? {
                    found.insert(name, v);
                }
            }
            if found.is_empty() {
                return Ok(());
            }
            substitute(stmt, &found)?;
        }
        Err(SqlError::new(
            "42P17",
            "infinite recursion detected in rules for a view",
        ))
    }
}
