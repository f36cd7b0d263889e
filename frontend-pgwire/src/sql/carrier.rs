//! Statements the SQL parser cannot read are read by hand and carried to the executor as a
//! call of one of weft's internal procedures (`CALL weft_...('arg', ...)`), whose text
//! arguments say what the statement asked. The executor runs such a call as the statement
//! it carries (`crate::sql::alter_sequence`, `crate::sql::database_ddl`).

use datafusion::sql::sqlparser::ast::{
    Expr, Function, FunctionArg, FunctionArgExpr, FunctionArgumentList, FunctionArguments,
    ObjectName, Statement, Value,
};

/// `CALL procedure(args...)`, each argument a text constant or NULL.
pub fn call(procedure: &str, args: Vec<Option<String>>) -> Statement {
    let args = args
        .into_iter()
        .map(|v| {
            let value = match v {
                Some(s) => Value::SingleQuotedString(s),
                None => Value::Null,
            };
            FunctionArg::Unnamed(FunctionArgExpr::Expr(Expr::Value(value.into())))
        })
        .collect();
    Statement::Call(Function {
        name: ObjectName::from(vec![procedure.into()]),
        uses_odbc_syntax: false,
        parameters: FunctionArguments::None,
        args: FunctionArguments::List(FunctionArgumentList {
            duplicate_treatment: None,
            args,
            clauses: vec![],
        }),
        filter: None,
        null_treatment: None,
        over: None,
        within_group: vec![],
    })
}

/// The carried call's `n`th argument (`None` for NULL).
pub fn arg(f: &Function, n: usize) -> Option<String> {
    let FunctionArguments::List(l) = &f.args else {
        return None;
    };
    match l.args.get(n)? {
        FunctionArg::Unnamed(FunctionArgExpr::Expr(Expr::Value(v))) => match &v.value {
            Value::SingleQuotedString(s) => Some(s.clone()),
            _ => None,
        },
        _ => None,
    }
}

/// A carried argument that holds a name as written (`s.t`, `"T"`), read back as a name.
pub fn object_name(text: &str) -> crate::error::SqlResult<ObjectName> {
    use datafusion::sql::sqlparser::dialect::PostgreSqlDialect;
    datafusion::sql::sqlparser::parser::Parser::new(&PostgreSqlDialect {})
        .try_with_sql(text)
        .and_then(|mut p| p.parse_object_name(false))
        .map_err(|e| crate::error::SqlError::syntax(e.to_string()))
}

/// `sql` cut after its first statement's semicolon: the statement (with its semicolon) and
/// what follows. `None` when `sql` holds one statement.
pub fn split_first(sql: &str) -> Option<(&str, &str)> {
    use datafusion::sql::sqlparser::dialect::PostgreSqlDialect;
    use datafusion::sql::sqlparser::tokenizer::{Token, Tokenizer};
    let tokens = Tokenizer::new(&PostgreSqlDialect {}, sql)
        .tokenize_with_location()
        .ok()?;
    let semi = tokens.iter().find(|t| t.token == Token::SemiColon)?;
    let (line, column) = (semi.span.start.line, semi.span.start.column);
    // Locations count lines and characters from 1.
    let line_start: usize = sql
        .split_inclusive('\n')
        .take(line.saturating_sub(1) as usize)
        .map(str::len)
        .sum();
    let within: usize = sql[line_start..]
        .chars()
        .take(column.saturating_sub(1) as usize)
        .map(char::len_utf8)
        .sum();
    let end = line_start + within + 1;
    let rest = &sql[end..];
    if rest.trim().trim_matches(';').trim().is_empty() {
        return None;
    }
    Some((&sql[..end], rest))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_first_cuts_after_the_first_statement() {
        assert_eq!(
            split_first("DROP DATABASE a; DROP DATABASE \"b;c\";"),
            Some(("DROP DATABASE a;", " DROP DATABASE \"b;c\";"))
        );
        assert_eq!(
            split_first("select 'é;';\n  select 2"),
            Some(("select 'é;';", "\n  select 2"))
        );
        assert_eq!(split_first("select 1;  "), None);
        assert_eq!(split_first("select 1"), None);
    }
}
