//! `generate_series` in a select list, as PostgreSQL runs it: a set-returning function that
//! gives one row per value (`SELECT generate_series(1, 3)` is three rows). DataFusion's
//! scalar `generate_series` returns one array instead, a wrong answer; the call is wrapped
//! in `unnest`, which DataFusion expands into rows, and keeps PostgreSQL's column name.
//! Only a call that is a whole select-list item is rewritten; one inside a larger
//! expression is left for the planner.

use std::ops::ControlFlow;

use datafusion::sql::sqlparser::ast::{
    self, Expr, Ident, Query, SelectItem, SetExpr, VisitMut, VisitorMut,
};

use crate::sql::compat::call_args as call;

/// The set-returning functions DataFusion has as array-returning scalars.
const SET_RETURNING: [&str; 1] = ["generate_series"];

fn set_returning(e: &Expr) -> Option<String> {
    let Expr::Function(f) = e else { return None };
    let name = f.name.0.last()?.as_ident()?.value.to_ascii_lowercase();
    SET_RETURNING.contains(&name.as_str()).then_some(name)
}

fn rewrite_body(body: &mut SetExpr) {
    match body {
        SetExpr::Select(s) => {
            for item in &mut s.projection {
                match item {
                    SelectItem::UnnamedExpr(e) => {
                        if let Some(name) = set_returning(e) {
                            let expr = call("unnest", vec![e.clone()]);
                            *item = SelectItem::ExprWithAlias {
                                expr,
                                alias: Ident::new(name),
                            };
                        }
                    }
                    SelectItem::ExprWithAlias { expr, .. } if set_returning(expr).is_some() => {
                        *expr = call("unnest", vec![expr.clone()]);
                    }
                    _ => {}
                }
            }
        }
        SetExpr::SetOperation { left, right, .. } => {
            rewrite_body(left);
            rewrite_body(right);
        }
        _ => {}
    }
}

struct Rewrite;

impl VisitorMut for Rewrite {
    type Break = ();

    fn pre_visit_query(&mut self, q: &mut Query) -> ControlFlow<()> {
        rewrite_body(&mut q.body);
        ControlFlow::Continue(())
    }
}

/// Rewrites the statement's select-list `generate_series` calls into rows.
pub fn rewrite(s: &mut ast::Statement) {
    let _ = s.visit(&mut Rewrite);
}

#[cfg(test)]
mod tests {
    use datafusion::sql::sqlparser::dialect::PostgreSqlDialect;
    use datafusion::sql::sqlparser::parser::Parser;

    fn rewritten(sql: &str) -> String {
        let mut s = Parser::parse_sql(&PostgreSqlDialect {}, sql)
            .unwrap()
            .remove(0);
        super::rewrite(&mut s);
        s.to_string()
    }

    #[test]
    fn select_list_calls_become_rows() {
        assert_eq!(
            rewritten("SELECT generate_series(1, 3)"),
            "SELECT unnest(generate_series(1, 3)) AS generate_series"
        );
        assert_eq!(
            rewritten("SELECT generate_series(1, 3) AS g, 'x' FROM t UNION ALL SELECT generate_series(4, 5), 'y'"),
            "SELECT unnest(generate_series(1, 3)) AS g, 'x' FROM t UNION ALL SELECT unnest(generate_series(4, 5)) AS generate_series, 'y'"
        );
        for same in [
            "SELECT * FROM generate_series(1, 3)",
            "SELECT generate_series(1, 3) + 1",
            "SELECT x FROM (SELECT 1 AS x) AS s",
        ] {
            assert_eq!(rewritten(same), same);
        }
    }
}
