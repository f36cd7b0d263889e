//! How a column default and a CHECK expression are stored, so that what pg_dump writes
//! restores to the same definition. A default is its SQL text with `nextval('s'::regclass)`
//! (the form PostgreSQL prints and pg_dump writes) stored as `nextval('s')`, the form weft
//! evaluates and recognizes as drawing from sequence `s`. A `public.` qualifier on the
//! sequence goes too; another schema's stays, as a sequence there is keyed `schema.name`.

use std::ops::ControlFlow;

use datafusion::sql::sqlparser::ast::{
    visit_expressions_mut, DataType, Expr, FunctionArg, FunctionArgExpr, FunctionArguments, Value,
    ValueWithSpan,
};

pub fn default_text(e: &Expr) -> String {
    let mut e = e.clone();
    let _ = visit_expressions_mut(&mut e, |x| {
        let Expr::Function(f) = x else {
            return ControlFlow::<()>::Continue(());
        };
        let is_nextval = f
            .name
            .0
            .last()
            .and_then(|p| p.as_ident())
            .is_some_and(|i| i.value.eq_ignore_ascii_case("nextval"));
        let FunctionArguments::List(list) = &mut f.args else {
            return ControlFlow::Continue(());
        };
        if !is_nextval || list.args.len() != 1 {
            return ControlFlow::Continue(());
        }
        if let FunctionArg::Unnamed(FunctionArgExpr::Expr(arg)) = &mut list.args[0] {
            let name = match arg {
                Expr::Cast {
                    expr, data_type, ..
                } if matches!(data_type, DataType::Regclass)
                    || data_type
                        .to_string()
                        .to_ascii_lowercase()
                        .ends_with("regclass") =>
                {
                    match expr.as_ref() {
                        Expr::Value(ValueWithSpan {
                            value: Value::SingleQuotedString(s),
                            ..
                        }) => Some(s.clone()),
                        _ => None,
                    }
                }
                Expr::Value(ValueWithSpan {
                    value: Value::SingleQuotedString(s),
                    ..
                }) => Some(s.clone()),
                _ => None,
            };
            if let Some(name) = name {
                let bare = name.strip_prefix("public.").unwrap_or(&name).to_string();
                *arg = Expr::Value(Value::SingleQuotedString(bare).into());
            }
        }
        ControlFlow::Continue(())
    });
    e.to_string()
}

/// How a CHECK expression is stored: its SQL text without the parentheses around the whole
/// (`CHECK ((a > 0))`, as pg_get_constraintdef prints it and pg_dump writes it, is stored
/// as `a > 0`), so that a dump and restore gives back the same definition.
pub fn check_text(e: &Expr) -> String {
    let mut e = e;
    while let Expr::Nested(inner) = e {
        e = inner;
    }
    e.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::sql::sqlparser::dialect::PostgreSqlDialect;
    use datafusion::sql::sqlparser::parser::Parser;

    fn text(sql: &str) -> String {
        let e = Parser::new(&PostgreSqlDialect {})
            .try_with_sql(sql)
            .unwrap()
            .parse_expr()
            .unwrap();
        default_text(&e)
    }

    #[test]
    fn nextval_of_a_regclass_is_stored_plain() {
        assert_eq!(
            text("nextval('public.t_id_seq'::regclass)"),
            "nextval('t_id_seq')"
        );
        assert_eq!(text("nextval('s'::pg_catalog.regclass)"), "nextval('s')");
        assert_eq!(text("nextval('s')"), "nextval('s')");
        assert_eq!(text("'abc'"), "'abc'");
        assert_eq!(text("now()"), "now()");
    }
}
