//! `generate_series` in a select list, as PostgreSQL runs it: a set-returning function that
//! gives one row per value (`SELECT generate_series(1, 3)` is three rows). DataFusion's
//! scalar `generate_series` returns one array instead, a wrong answer; the call is wrapped
//! in `unnest`, which DataFusion expands into rows, and keeps PostgreSQL's column name.
//! Only a call that is a whole select-list item is rewritten; one inside a larger
//! expression is left for the planner.
//!
//! In FROM, a `generate_series` of integers (literals, parameters, casts to an integer
//! type) becomes a derived table over the same unnest: DataFusion's own table function
//! takes only literal arguments (`generate_series(1, $1)` was an error), names its column
//! `value` and makes it a bigint. PostgreSQL names the column after the function, or after
//! the alias (`generate_series(1, 3) AS g` has a column `g`, `AS g(x)` one `x`), and types it
//! `integer` when every argument is one; a parameter takes the other arguments' type. Calls
//! over other types (timestamps, numerics, columns) are left to DataFusion's function.

use std::ops::ControlFlow;

use datafusion::sql::sqlparser::ast::{
    self, DataType, Expr, FunctionArg, FunctionArgExpr, Ident, Query, SelectItem, SetExpr,
    TableFactor, UnaryOperator, Value, VisitMut, VisitorMut,
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

/// The integer width of a series argument: `Some(false)` for integer, `Some(true)` for
/// bigint, `None` when it is not an integer argument this rewrite knows.
fn wide_integer(e: &Expr) -> Option<bool> {
    match e {
        Expr::Value(v) => match &v.value {
            Value::Number(n, _) => {
                let n: i64 = n.parse().ok()?;
                Some(i32::try_from(n).is_err())
            }
            Value::Placeholder(_) => Some(false),
            _ => None,
        },
        Expr::UnaryOp {
            op: UnaryOperator::Minus | UnaryOperator::Plus,
            expr,
        }
        | Expr::Nested(expr) => wide_integer(expr),
        Expr::Cast { data_type, .. } => match data_type {
            DataType::Int(_)
            | DataType::Integer(_)
            | DataType::Int4(_)
            | DataType::SmallInt(_)
            | DataType::Int2(_) => Some(false),
            DataType::BigInt(_) | DataType::Int8(_) => Some(true),
            _ => None,
        },
        _ => None,
    }
}

/// A parameter among the arguments, cast to the series' type.
fn typed_argument(e: &Expr, ty: &str) -> String {
    match e {
        Expr::Value(v) if matches!(v.value, Value::Placeholder(_)) => format!("CAST({e} AS {ty})"),
        _ => e.to_string(),
    }
}

/// The derived table an integer `generate_series` in FROM becomes (module docs).
fn series_table(tf: &TableFactor) -> Option<TableFactor> {
    let TableFactor::Table {
        name,
        alias,
        args: Some(args),
        with_ordinality: false,
        ..
    } = tf
    else {
        return None;
    };
    let function = name.0.last()?.as_ident()?.value.to_ascii_lowercase();
    if function != "generate_series" || name.0.len() > 2 || args.settings.is_some() {
        return None;
    }
    let exprs: Vec<&Expr> = args
        .args
        .iter()
        .map(|a| match a {
            FunctionArg::Unnamed(FunctionArgExpr::Expr(e)) => Some(e),
            _ => None,
        })
        .collect::<Option<_>>()?;
    if !(2..=3).contains(&exprs.len()) {
        return None;
    }
    let mut wide = false;
    for e in &exprs {
        wide |= wide_integer(e)?;
    }
    let ty = if wide { "BIGINT" } else { "INTEGER" };
    let table = alias
        .as_ref()
        .map(|a| a.name.clone())
        .unwrap_or_else(|| Ident::new("generate_series"));
    let column = alias
        .as_ref()
        .and_then(|a| a.columns.first().map(|c| c.name.clone()))
        .unwrap_or_else(|| table.clone());
    let list = exprs
        .iter()
        .map(|e| typed_argument(e, ty))
        .collect::<Vec<_>>()
        .join(", ");
    let sql = format!(
        "SELECT * FROM (SELECT CAST(weft_series_value AS {ty}) AS {column} FROM \
         (SELECT unnest(generate_series({list})) AS weft_series_value) AS weft_series) AS {table}"
    );
    let mut stmts = datafusion::sql::sqlparser::parser::Parser::parse_sql(
        &datafusion::sql::sqlparser::dialect::PostgreSqlDialect {},
        &sql,
    )
    .ok()?;
    let ast::Statement::Query(q) = stmts.pop()? else {
        return None;
    };
    let SetExpr::Select(select) = *q.body else {
        return None;
    };
    select.from.into_iter().next().map(|f| f.relation)
}

struct Rewrite;

impl VisitorMut for Rewrite {
    type Break = ();

    fn pre_visit_query(&mut self, q: &mut Query) -> ControlFlow<()> {
        rewrite_body(&mut q.body);
        ControlFlow::Continue(())
    }

    fn pre_visit_table_factor(&mut self, tf: &mut TableFactor) -> ControlFlow<()> {
        if let Some(derived) = series_table(tf) {
            *tf = derived;
        }
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
            "SELECT generate_series(1, 3) + 1",
            "SELECT x FROM (SELECT 1 AS x) AS s",
        ] {
            assert_eq!(rewritten(same), same);
        }
    }

    #[test]
    fn integer_series_in_from_become_derived_tables() {
        assert_eq!(
            rewritten("SELECT * FROM generate_series(1, $1)"),
            "SELECT * FROM (SELECT CAST(weft_series_value AS INTEGER) AS generate_series FROM \
             (SELECT unnest(generate_series(1, CAST($1 AS INTEGER))) AS weft_series_value) AS \
             weft_series) AS generate_series"
        );
        assert_eq!(
            rewritten("SELECT g FROM generate_series(1, 10000000000, 2) AS g"),
            "SELECT g FROM (SELECT CAST(weft_series_value AS BIGINT) AS g FROM \
             (SELECT unnest(generate_series(1, 10000000000, 2)) AS weft_series_value) AS \
             weft_series) AS g"
        );
        assert!(
            rewritten("SELECT x FROM generate_series(-3, 3::int) AS s(x)").contains("AS x FROM")
        );
        for same in [
            "SELECT * FROM generate_series('2024-01-01'::TIMESTAMP, '2024-01-02'::TIMESTAMP, INTERVAL '1 hour')",
            "SELECT * FROM generate_series(1.5, 3)",
            "SELECT * FROM t",
        ] {
            assert_eq!(rewritten(same), same);
        }
    }
}
