//! PostgreSQL's system columns and catalog relation oids in catalog queries.
//!
//! Every PostgreSQL row has a `tableoid`: the oid of the relation it is in. Tools that
//! identify catalog objects by `(classoid, objid)` (pg_dump above all) select
//! `x.tableoid` from the system catalogs. weft's catalog tables have no such column, so a
//! reference to it becomes the catalog's fixed oid, and `'pg_class'::regclass` names a
//! catalog by the same oid. References to the `tableoid` of a user table stay as they are
//! (and fail: weft's tables have no system columns).

use std::collections::HashMap;
use std::ops::ControlFlow;

use datafusion::sql::sqlparser::ast::{
    DataType, Expr, ObjectName, Query, SelectItem, SetExpr, Statement, TableFactor, TableWithJoins,
    Value, ValueWithSpan, VisitMut, VisitorMut,
};
use datafusion_pg_catalog::sql::rules::SqlStatementRewriteRule;

use crate::catalog::oids::catalog_relation_oid;

fn object_name(n: &ObjectName) -> String {
    n.0.iter()
        .filter_map(|p| p.as_ident())
        .map(|i| i.value.clone())
        .collect::<Vec<_>>()
        .join(".")
}

/// `CAST(<oid> AS oid)`.
fn oid_literal(oid: i32) -> Expr {
    Expr::Cast {
        kind: datafusion::sql::sqlparser::ast::CastKind::Cast,
        expr: Box::new(Expr::Value(Value::Number(oid.to_string(), false).into())),
        data_type: DataType::Custom(ObjectName::from(vec!["oid".into()]), vec![]),
        array: false,
        format: None,
    }
}

/// The catalog relations a query's FROM clauses read, by the name they are referred to
/// with (the alias, else the bare table name).
fn catalog_scope(body: &SetExpr, scope: &mut HashMap<String, i32>) {
    fn from(tables: &[TableWithJoins], scope: &mut HashMap<String, i32>) {
        let factors = tables
            .iter()
            .flat_map(|t| std::iter::once(&t.relation).chain(t.joins.iter().map(|j| &j.relation)));
        for f in factors {
            if let TableFactor::Table { name, alias, .. } = f {
                let full = object_name(name);
                if let Some(oid) = catalog_relation_oid(&full) {
                    let bare = full.rsplit('.').next().unwrap_or(&full).to_lowercase();
                    let key = alias
                        .as_ref()
                        .map(|a| a.name.value.to_lowercase())
                        .unwrap_or(bare);
                    scope.insert(key, oid);
                }
            }
        }
    }
    match body {
        SetExpr::Select(s) => from(&s.from, scope),
        SetExpr::SetOperation { left, right, .. } => {
            catalog_scope(left, scope);
            catalog_scope(right, scope);
        }
        SetExpr::Query(q) => catalog_scope(&q.body, scope),
        _ => {}
    }
}

/// A selected `tableoid` that becomes a constant keeps its name.
fn keep_names(body: &mut SetExpr, scope: &HashMap<String, i32>) {
    match body {
        SetExpr::Select(s) => {
            for item in &mut s.projection {
                if let SelectItem::UnnamedExpr(e) = item {
                    let named = match e {
                        Expr::Identifier(id) if scope.len() == 1 => Some(id.clone()),
                        Expr::CompoundIdentifier(ids)
                            if ids.len() == 2
                                && scope.contains_key(&ids[0].value.to_lowercase()) =>
                        {
                            Some(ids[1].clone())
                        }
                        _ => None,
                    };
                    if let Some(id) = named.filter(|i| i.value.eq_ignore_ascii_case("tableoid")) {
                        *item = SelectItem::ExprWithAlias {
                            expr: e.clone(),
                            alias: id,
                        };
                    }
                }
            }
        }
        SetExpr::SetOperation { left, right, .. } => {
            keep_names(left, scope);
            keep_names(right, scope);
        }
        _ => {}
    }
}

/// `x.tableoid` and a bare `tableoid` over a system catalog become the catalog's oid.
#[derive(Debug)]
pub struct TableOidColumn;

struct Scopes(Vec<HashMap<String, i32>>);

impl VisitorMut for Scopes {
    type Break = ();
    fn pre_visit_query(&mut self, q: &mut Query) -> ControlFlow<()> {
        let mut scope = HashMap::new();
        catalog_scope(&q.body, &mut scope);
        if !scope.is_empty() {
            keep_names(&mut q.body, &scope);
        }
        self.0.push(scope);
        ControlFlow::Continue(())
    }
    fn post_visit_query(&mut self, _: &mut Query) -> ControlFlow<()> {
        self.0.pop();
        ControlFlow::Continue(())
    }
    fn pre_visit_expr(&mut self, e: &mut Expr) -> ControlFlow<()> {
        let oid = match e {
            Expr::Identifier(id) if id.value.eq_ignore_ascii_case("tableoid") => {
                // Unqualified: the one catalog of the innermost query that has it.
                self.0
                    .last()
                    .filter(|s| s.len() == 1)
                    .and_then(|s| s.values().next().copied())
            }
            Expr::CompoundIdentifier(ids)
                if ids.len() == 2 && ids[1].value.eq_ignore_ascii_case("tableoid") =>
            {
                let q = ids[0].value.to_lowercase();
                self.0.iter().rev().find_map(|s| s.get(&q).copied())
            }
            _ => None,
        };
        if let Some(oid) = oid {
            *e = oid_literal(oid);
        }
        ControlFlow::Continue(())
    }
}

impl SqlStatementRewriteRule for TableOidColumn {
    fn rewrite(&self, mut s: Statement) -> Statement {
        let _ = s.visit(&mut Scopes(Vec::new()));
        s
    }
}

/// `'pg_extension'::regclass` (or `::pg_catalog.regclass`) of a system catalog: its fixed oid.
/// weft's pg_class lists the database's own relations, not the catalogs.
#[derive(Debug)]
pub struct CatalogRegclass;

impl SqlStatementRewriteRule for CatalogRegclass {
    fn rewrite(&self, mut s: Statement) -> Statement {
        let _ = datafusion::sql::sqlparser::ast::visit_expressions_mut(&mut s, |e| {
            if let Expr::Cast {
                expr, data_type, ..
            } = e
            {
                let regclass = matches!(data_type, DataType::Regclass)
                    || matches!(data_type, DataType::Custom(n, a) if a.is_empty()
                    && n.0.last().and_then(|p| p.as_ident())
                        .is_some_and(|i| i.value.eq_ignore_ascii_case("regclass")));
                if let (
                    true,
                    Expr::Value(ValueWithSpan {
                        value: Value::SingleQuotedString(name),
                        ..
                    }),
                ) = (regclass, expr.as_ref())
                {
                    if let Some(oid) = catalog_relation_oid(name) {
                        *e = oid_literal(oid);
                    }
                }
            }
            ControlFlow::<()>::Continue(())
        });
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::sql::sqlparser::dialect::PostgreSqlDialect;
    use datafusion::sql::sqlparser::parser::Parser;

    fn rewrite(sql: &str) -> String {
        let s = Parser::parse_sql(&PostgreSqlDialect {}, sql)
            .unwrap()
            .remove(0);
        CatalogRegclass
            .rewrite(TableOidColumn.rewrite(s))
            .to_string()
    }

    #[test]
    fn tableoid_of_a_catalog_is_its_oid() {
        assert_eq!(
            rewrite("SELECT x.tableoid, n.tableoid FROM pg_extension x JOIN pg_catalog.pg_namespace n ON true"),
            "SELECT CAST(3079 AS oid) AS tableoid, CAST(2615 AS oid) AS tableoid FROM pg_extension x JOIN pg_catalog.pg_namespace n ON true"
        );
        assert_eq!(
            rewrite("SELECT tableoid, oid FROM pg_am"),
            "SELECT CAST(2601 AS oid) AS tableoid, oid FROM pg_am"
        );
        // Inside a subquery, the subquery's catalog; outside, the outer one.
        assert_eq!(
            rewrite("SELECT tableoid, (SELECT tableoid FROM pg_type) FROM pg_class"),
            "SELECT CAST(1259 AS oid) AS tableoid, (SELECT CAST(1247 AS oid) AS tableoid FROM pg_type) FROM pg_class"
        );
    }

    #[test]
    fn user_tables_and_ambiguity_are_left_alone() {
        assert_eq!(rewrite("SELECT tableoid FROM t"), "SELECT tableoid FROM t");
        assert_eq!(
            rewrite("SELECT tableoid FROM pg_class, pg_type"),
            "SELECT tableoid FROM pg_class, pg_type"
        );
    }

    #[test]
    fn regclass_of_a_catalog() {
        assert_eq!(
            rewrite("SELECT 1 WHERE c = 'pg_catalog.pg_class'::pg_catalog.regclass AND d = 'pg_extension'::regclass AND e = 't'::regclass"),
            "SELECT 1 WHERE c = CAST(1259 AS oid) AND d = CAST(3079 AS oid) AND e = 't'::REGCLASS"
        );
    }
}
