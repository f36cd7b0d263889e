//! `SELECT set_config(name, value, is_local)`: PostgreSQL's function form of `SET`, which
//! pg_dump sends first (`SELECT pg_catalog.set_config('search_path', '', false)`).
//!
//! A statement that is exactly one such call (constant arguments, no FROM) runs as
//! `SET [LOCAL] name = 'value'` and answers one row, `set_config`, holding the value, as
//! PostgreSQL does. A call anywhere else is an ordinary (unknown) function.

use datafusion::sql::sqlparser::ast::{
    Expr, FunctionArg, FunctionArgExpr, FunctionArguments, SelectItem, SetExpr, Statement, Value,
};

/// A `set_config` call: the setting, its new value, and whether it is LOCAL.
#[derive(Debug, PartialEq)]
pub struct SetConfig {
    pub name: String,
    pub value: String,
    pub local: bool,
}

impl SetConfig {
    /// The `SET` statement it stands for.
    pub fn as_set_sql(&self) -> String {
        format!(
            "SET {}{} = '{}'",
            if self.local { "LOCAL " } else { "" },
            self.name,
            self.value.replace('\'', "''")
        )
    }
}

/// The call, if `stmt` is `SELECT [pg_catalog.]set_config('name', 'value', bool)`.
pub fn call(stmt: &Statement) -> Option<SetConfig> {
    let Statement::Query(q) = stmt else {
        return None;
    };
    if q.with.is_some() || q.order_by.is_some() || q.limit_clause.is_some() {
        return None;
    }
    let SetExpr::Select(select) = q.body.as_ref() else {
        return None;
    };
    if !select.from.is_empty() || select.selection.is_some() || select.projection.len() != 1 {
        return None;
    }
    let (SelectItem::UnnamedExpr(Expr::Function(f))
    | SelectItem::ExprWithAlias {
        expr: Expr::Function(f),
        ..
    }) = &select.projection[0]
    else {
        return None;
    };
    let parts: Vec<String> = f
        .name
        .0
        .iter()
        .filter_map(|p| p.as_ident().map(|i| i.value.to_lowercase()))
        .collect();
    let named = matches!(
        parts
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>()
            .as_slice(),
        ["set_config"] | ["pg_catalog", "set_config"]
    );
    let FunctionArguments::List(list) = &f.args else {
        return None;
    };
    if !named || list.args.len() != 3 {
        return None;
    }
    let arg = |i: usize| match &list.args[i] {
        FunctionArg::Unnamed(FunctionArgExpr::Expr(Expr::Value(v))) => Some(&v.value),
        _ => None,
    };
    let text = |v: &Value| match v {
        Value::SingleQuotedString(s) => Some(s.clone()),
        _ => None,
    };
    let name = text(arg(0)?)?;
    let value = text(arg(1)?)?;
    let local = match arg(2)? {
        Value::Boolean(b) => *b,
        other => match text(other)?.to_ascii_lowercase().as_str() {
            "true" | "t" | "on" | "yes" | "1" => true,
            "false" | "f" | "off" | "no" | "0" => false,
            _ => return None,
        },
    };
    if name.is_empty()
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.')
    {
        return None;
    }
    Some(SetConfig { name, value, local })
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::sql::sqlparser::dialect::PostgreSqlDialect;
    use datafusion::sql::sqlparser::parser::Parser;

    fn parse(sql: &str) -> Option<SetConfig> {
        call(&Parser::parse_sql(&PostgreSqlDialect {}, sql).unwrap()[0])
    }

    #[test]
    fn recognizes_the_call() {
        assert_eq!(
            parse("SELECT pg_catalog.set_config('search_path', '', false)"),
            Some(SetConfig {
                name: "search_path".into(),
                value: String::new(),
                local: false
            })
        );
        let c = parse("select set_config('statement_timeout', '5s', true)").unwrap();
        assert_eq!(c.as_set_sql(), "SET LOCAL statement_timeout = '5s'");
        assert_eq!(parse("SELECT set_config('a', 'b', false) FROM t"), None);
        assert_eq!(parse("SELECT set_config('a; drop', 'b', false)"), None);
        assert_eq!(parse("SELECT other('a', 'b', false)"), None);
    }
}
