//! `ARRAY(subquery)`: the subquery's rows as an array, which DataFusion does not have.
//!
//! `ARRAY(SELECT e FROM ... [ORDER BY o])` becomes the scalar subquery
//! `(SELECT array_agg(e ORDER BY o) FROM ...)`, which DataFusion runs correlated or not
//! (psql's `\du` lists each role's memberships this way). A subquery of another shape
//! (UNION, GROUP BY, DISTINCT, LIMIT) is aggregated from outside instead:
//! `(SELECT array_agg(x) FROM (subquery) AS a(x))`, which keeps no order and cannot refer
//! to the outer query. A subquery without rows gives an empty array (`coalesce` with
//! `make_array()`), and an unaliased `ARRAY(...)` column is named `array`.

use std::ops::ControlFlow;

use datafusion::sql::sqlparser::ast::{
    visit_expressions_mut, Expr, FunctionArguments, GroupByExpr, OrderByKind, Query, SelectItem,
    SetExpr, Statement, Value,
};
use datafusion::sql::sqlparser::dialect::PostgreSqlDialect;
use datafusion::sql::sqlparser::parser::Parser;

/// Rewrites every `ARRAY(subquery)` in `s`.
pub fn rewrite(s: &mut Statement) {
    // An unaliased ARRAY(...) in a select list is the column `array`, as in PostgreSQL.
    crate::sql::compat::name_unnamed_items(s, |e| array_subquery(e).map(|_| "array".to_string()));
    let _ = visit_expressions_mut(s, |e| {
        if let Some(q) = array_subquery(e) {
            if let Some(new) = aggregated(q) {
                // No rows make an empty array, not NULL.
                let empty = crate::sql::compat::call_args("make_array", vec![]);
                *e = crate::sql::compat::call_args("coalesce", vec![new, empty]);
            }
        }
        ControlFlow::<()>::Continue(())
    });
}

fn array_subquery(e: &Expr) -> Option<&Query> {
    let Expr::Function(f) = e else {
        return None;
    };
    let [name] = f.name.0.as_slice() else {
        return None;
    };
    let ident = name.as_ident()?;
    if !ident.value.eq_ignore_ascii_case("array") || ident.quote_style.is_some() {
        return None;
    }
    match &f.args {
        FunctionArguments::Subquery(q) => Some(q),
        _ => None,
    }
}

fn parse_expr(sql: &str) -> Option<Expr> {
    Parser::new(&PostgreSqlDialect {})
        .try_with_sql(sql)
        .and_then(|mut p| p.parse_expr())
        .ok()
}

fn aggregated(q: &Query) -> Option<Expr> {
    if let Some(direct) = direct(q) {
        return Some(direct);
    }
    parse_expr(&format!(
        "(SELECT array_agg(\"__array\".\"x\") AS \"array\" FROM ({q}) AS \"__array\"(\"x\"))"
    ))
}

/// `array_agg` inside a plain one-column SELECT.
fn direct(q: &Query) -> Option<Expr> {
    let SetExpr::Select(select) = q.body.as_ref() else {
        return None;
    };
    let simple_group =
        matches!(&select.group_by, GroupByExpr::Expressions(g, m) if g.is_empty() && m.is_empty());
    if q.with.is_some()
        || q.limit_clause.is_some()
        || q.fetch.is_some()
        || select.distinct.is_some()
        || select.having.is_some()
        || !simple_group
        || select.projection.len() != 1
    {
        return None;
    }
    let item = match &select.projection[0] {
        SelectItem::UnnamedExpr(e) | SelectItem::ExprWithAlias { expr: e, .. } => e,
        _ => return None,
    };
    // ORDER BY 1 names the (only) column; inside array_agg it would be the constant 1.
    let order = match q.order_by.as_ref().map(|o| &o.kind) {
        None => String::new(),
        Some(OrderByKind::Expressions(list)) => {
            let parts: Vec<String> = list
                .iter()
                .map(|o| {
                    let e = match &o.expr {
                        Expr::Value(v) if v.value == Value::Number("1".into(), false) => {
                            item.to_string()
                        }
                        e => e.to_string(),
                    };
                    format!("{e}{}", o.options)
                })
                .collect();
            format!(" ORDER BY {}", parts.join(", "))
        }
        Some(_) => return None,
    };
    let agg = parse_expr(&format!("array_agg({item}{order})"))?;
    // The result column is named `array`, as PostgreSQL names it.
    let agg = SelectItem::ExprWithAlias {
        expr: agg,
        alias: datafusion::sql::sqlparser::ast::Ident::with_quote('"', "array"),
    };
    let mut inner = q.clone();
    inner.order_by = None;
    let SetExpr::Select(sel) = inner.body.as_mut() else {
        return None;
    };
    sel.projection = vec![agg];
    Some(Expr::Subquery(Box::new(inner)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rewritten(sql: &str) -> String {
        let mut s = Parser::parse_sql(&PostgreSqlDialect {}, sql)
            .unwrap()
            .remove(0);
        rewrite(&mut s);
        s.to_string()
    }

    #[test]
    fn array_of_a_subquery_aggregates() {
        assert_eq!(
            rewritten("SELECT ARRAY(SELECT b.name FROM m JOIN b ON m.r = b.oid WHERE m.member = r.oid ORDER BY 1) AS memberof FROM r"),
            "SELECT coalesce((SELECT array_agg(b.name ORDER BY b.name) AS \"array\" FROM m JOIN b ON m.r = b.oid WHERE m.member = r.oid), make_array()) AS memberof FROM r"
        );
        assert_eq!(
            rewritten("SELECT ARRAY(SELECT 1 UNION SELECT 2)"),
            "SELECT coalesce((SELECT array_agg(\"__array\".\"x\") AS \"array\" FROM (SELECT 1 UNION SELECT 2) AS \"__array\" (\"x\")), make_array()) AS array"
        );
        assert_eq!(rewritten("SELECT ARRAY[1, 2]"), "SELECT ARRAY[1, 2]");
    }
}
