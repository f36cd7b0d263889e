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

/// In FROM, `generate_series(1, 10)`'s integer literals are `integer`s, as PostgreSQL
/// types them, so that the series is an integer column (`crate::types::series`):
/// DataFusion reads every integer literal as a bigint, and a table function's arguments
/// are folded to constants before any later typing of the plan sees them. A literal past
/// 32 bits stays a bigint, as in PostgreSQL.
pub fn series_literals(s: &mut ast::Statement) {
    struct Literals;
    impl VisitorMut for Literals {
        type Break = ();
        fn pre_visit_table_factor(&mut self, t: &mut ast::TableFactor) -> ControlFlow<()> {
            let ast::TableFactor::Table {
                name,
                args: Some(args),
                ..
            } = t
            else {
                return ControlFlow::Continue(());
            };
            let is_series = name
                .0
                .last()
                .and_then(|p| p.as_ident())
                .is_some_and(|i| i.value.eq_ignore_ascii_case("generate_series"));
            if is_series {
                for arg in &mut args.args {
                    if let ast::FunctionArg::Unnamed(ast::FunctionArgExpr::Expr(e)) = arg {
                        let _ = e.visit(&mut Int4);
                    }
                }
            }
            ControlFlow::Continue(())
        }
    }
    struct Int4;
    impl VisitorMut for Int4 {
        type Break = ();
        fn post_visit_expr(&mut self, e: &mut Expr) -> ControlFlow<()> {
            if let Expr::Value(v) = e {
                if let ast::Value::Number(n, false) = &v.value {
                    if n.parse::<i32>().is_ok() {
                        *e = Expr::Cast {
                            kind: ast::CastKind::DoubleColon,
                            expr: Box::new(e.clone()),
                            data_type: ast::DataType::Integer(None),
                            array: false,
                            format: None,
                        };
                    }
                }
            }
            ControlFlow::Continue(())
        }
    }
    let _ = s.visit(&mut Literals);
}

/// `WITH ORDINALITY` on a FROM function other than `unnest` (which weft rewrites,
/// `crate::sql::unnest_syntax`): DataFusion would drop the column without a word, so it
/// is refused (0A000) rather than answered wrongly.
pub fn refuse_ordinality(s: &mut ast::Statement) -> crate::error::SqlResult<()> {
    struct Find(Option<String>);
    impl VisitorMut for Find {
        type Break = ();
        fn pre_visit_table_factor(&mut self, t: &mut ast::TableFactor) -> ControlFlow<()> {
            if let ast::TableFactor::Table {
                name,
                args: Some(_),
                with_ordinality: true,
                ..
            } = t
            {
                self.0 = Some(name.to_string());
                return ControlFlow::Break(());
            }
            ControlFlow::Continue(())
        }
    }
    let mut find = Find(None);
    let _ = s.visit(&mut find);
    match find.0 {
        Some(name) => Err(crate::error::SqlError::unsupported(format!(
            "WITH ORDINALITY is supported only for unnest, not for {name}"
        ))),
        None => Ok(()),
    }
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
