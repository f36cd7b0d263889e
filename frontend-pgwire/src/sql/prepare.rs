//! A statement's preparation: parsing with PostgreSQL's dialect, the syntax weft reads
//! differently (`CREATE USER`, `ABORT`), and the compatibility rewrites every statement
//! passes before Describe and Execute alike.

use datafusion::sql::sqlparser::ast::Statement;
use datafusion::sql::sqlparser::dialect::PostgreSqlDialect;
use datafusion::sql::sqlparser::parser::{Parser, ParserError};

use crate::error::{SqlError, SqlResult};

/// `CREATE USER` and `ALTER USER` as PostgreSQL means them: the parser reads them in
/// another dialect's syntax, so they are parsed as `CREATE|ALTER ROLE`, `CREATE USER`
/// implying LOGIN.
pub(crate) fn parse_user_statement(sql: &str) -> Option<Result<Vec<Statement>, ParserError>> {
    let t = sql.trim_start();
    let first_end = t.find(char::is_whitespace)?;
    let verb = &t[..first_end];
    let rest = t[first_end..].trim_start();
    let second_end = rest.find(char::is_whitespace).unwrap_or(rest.len());
    if !rest[..second_end].eq_ignore_ascii_case("user") {
        return None;
    }
    let create = verb.eq_ignore_ascii_case("create");
    if !create && !verb.eq_ignore_ascii_case("alter") {
        return None;
    }
    let text = format!("{verb} ROLE{}", &rest[second_end..]);
    Some(
        Parser::parse_sql(&PostgreSqlDialect {}, &text).map(|mut stmts| {
            for s in &mut stmts {
                if let Statement::CreateRole(cr) = s {
                    if create && cr.login.is_none() {
                        cr.login = Some(true);
                    }
                }
            }
            stmts
        }),
    )
}

/// Whether `CREATE USER` or `ALTER USER` may start one of the statements of `sql` (a
/// cheap test of its words, before it is cut into statements).
fn has_user_statement(sql: &str) -> bool {
    let words: Vec<&str> = sql
        .split(|c: char| c.is_whitespace() || c == ';')
        .filter(|w| !w.is_empty())
        .collect();
    words.windows(2).any(|w| {
        (w[0].eq_ignore_ascii_case("create") || w[0].eq_ignore_ascii_case("alter"))
            && w[1].eq_ignore_ascii_case("user")
    })
}

/// `ABORT [WORK | TRANSACTION] ...`: PostgreSQL's synonym of ROLLBACK, which the parser
/// does not know.
pub(crate) fn abort_as_rollback(sql: &str) -> Option<String> {
    let t = sql.trim_start();
    let end = t
        .find(|c: char| c.is_whitespace() || c == ';')
        .unwrap_or(t.len());
    t[..end]
        .eq_ignore_ascii_case("abort")
        .then(|| format!("ROLLBACK{}", &t[end..]))
}

/// Whether `sql` is `ALTER DEFAULT PRIVILEGES ...`.
fn is_alter_default_privileges(sql: &str) -> bool {
    let words: Vec<String> = sql
        .split_whitespace()
        .take(3)
        .map(|w| w.to_ascii_lowercase())
        .collect();
    words == ["alter", "default", "privileges"]
}

pub(crate) fn contains_ignore_case(haystack: &str, needle: &str) -> bool {
    haystack
        .as_bytes()
        .windows(needle.len())
        .any(|w| w.eq_ignore_ascii_case(needle.as_bytes()))
}

pub(crate) fn parse(sql: &str) -> SqlResult<Vec<Statement>> {
    let rollback;
    let sql = match abort_as_rollback(sql) {
        Some(r) => {
            rollback = r;
            rollback.as_str()
        }
        None => sql,
    };
    let reordered;
    let sql = match crate::sql::sequence_syntax::in_parser_order(sql) {
        Some(r) => {
            reordered = r;
            reordered.as_str()
        }
        None => sql,
    };
    let spelled;
    let sql = match crate::sql::copy_syntax::parser_booleans(sql) {
        Some(s) => {
            spelled = s;
            spelled.as_str()
        }
        None => sql,
    };
    let moved;
    let sql = match crate::sql::fetch_syntax::readable_fetch(sql) {
        Some(m) => {
            moved = m;
            moved.as_str()
        }
        None => sql,
    };
    if contains_ignore_case(sql, "constraints") && !sql.trim().trim_end_matches(';').contains(';') {
        if let Some(s) = crate::sql::constraint_mode::parse(sql) {
            return Ok(vec![s?]);
        }
    }
    if contains_ignore_case(sql, "vacuum") || contains_ignore_case(sql, "analy") {
        if let Some((first, rest)) = crate::sql::carrier::split_first(sql) {
            if crate::sql::maintenance::parse(first).is_some()
                || crate::sql::maintenance::parse(rest).is_some()
                || contains_ignore_case(rest, "vacuum")
                || contains_ignore_case(rest, "analy")
            {
                let mut out = parse(first)?;
                out.extend(parse(rest)?);
                return Ok(out);
            }
        } else if let Some(s) = crate::sql::maintenance::parse(sql) {
            return Ok(vec![s?]);
        }
    }
    if contains_ignore_case(sql, "default privileges") && is_alter_default_privileges(sql) {
        return Err(SqlError::unsupported(
            "ALTER DEFAULT PRIVILEGES is not supported: GRANT on objects once they are made \
             (GRANT ... ON ALL TABLES IN SCHEMA covers the ones that exist)",
        ));
    }
    if (contains_ignore_case(sql, "grant") || contains_ignore_case(sql, "revoke"))
        && !sql.trim().trim_end_matches(';').contains(';')
    {
        if let Some(s) = crate::sql::role_grant::parse(sql) {
            return Ok(vec![s?]);
        }
    }
    // Statements read by hand (CREATE and DROP DATABASE, ALTER SEQUENCE, CREATE and ALTER
    // USER) are read one at a time: a query string holding one is cut into its statements.
    if contains_ignore_case(sql, "user") && sql.contains(';') && has_user_statement(sql) {
        if let Some((first, rest)) = crate::sql::carrier::split_first(sql) {
            let mut out = parse(first)?;
            out.extend(parse(rest)?);
            return Ok(out);
        }
    }
    if contains_ignore_case(sql, "database") || contains_ignore_case(sql, "sequence") {
        if let Some((first, rest)) = crate::sql::carrier::split_first(sql) {
            let mut out = parse(first)?;
            out.extend(parse(rest)?);
            crate::sql::database_ddl::in_query_string(&mut out);
            return Ok(out);
        }
        if let Some(s) = crate::sql::database_ddl::parse(sql) {
            return Ok(vec![s?]);
        }
        if let Some(s) = crate::sql::alter_sequence::parse(sql) {
            return Ok(vec![s]);
        }
    }
    // (Once in the parser's form, the text is its own rewrite: no second pass.)
    if let Some((stripped, name)) =
        crate::sql::identity::without_sequence_name(sql).filter(|(s, _)| s != sql)
    {
        let stmts = parse(&stripped)?;
        if let Some(name) = name {
            crate::sql::identity::check_sequence_name(&stmts, &name)?;
        }
        return Ok(stmts);
    }
    let parsed = if let Some(p) = parse_user_statement(sql) {
        p
    } else if crate::sql::compat::is_catalog_query(sql) {
        crate::sql::compat::parse_catalog_query(sql)
    } else {
        Parser::parse_sql(&PostgreSqlDialect {}, sql)
    };
    let mut stmts = parsed.map_err(|e| {
        let m = e.to_string();
        SqlError::syntax(m.trim_start_matches("sql parser error: ").to_string())
    })?;
    if contains_ignore_case(sql, "generate_series") {
        for s in &mut stmts {
            crate::sql::srf_syntax::rewrite(s);
        }
    }
    if contains_ignore_case(sql, "unnest") {
        for s in &mut stmts {
            crate::sql::unnest_syntax::rewrite(s);
        }
    }
    if crate::sql::compat::may_have_subquery(sql) {
        for s in &mut stmts {
            crate::sql::compat::single_row_subqueries(s);
        }
    }
    if contains_ignore_case(sql, "array(") || contains_ignore_case(sql, "array (") {
        for s in &mut stmts {
            crate::sql::array_subquery::rewrite(s);
        }
    }
    if contains_ignore_case(sql, "json") {
        for s in &mut stmts {
            crate::sql::jsonb_syntax::rewrite(s);
        }
    }
    // A number with an exponent (`1e5`).
    let exponent = sql
        .as_bytes()
        .windows(2)
        .any(|w| w[0].is_ascii_digit() && w[1] | 0x20 == b'e');
    if exponent {
        for s in &mut stmts {
            crate::types::floats::literal_casts(s);
        }
    }
    if contains_ignore_case(sql, "time zone") {
        for s in &mut stmts {
            crate::sql::datetime_syntax::rewrite(s);
        }
    }
    if contains_ignore_case(sql, "generate_s") || contains_ignore_case(sql, "unnest") {
        for s in &mut stmts {
            crate::sql::compat::scalar_function_aliases(s);
        }
    }
    Ok(stmts)
}
