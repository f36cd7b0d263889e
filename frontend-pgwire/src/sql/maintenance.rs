//! `VACUUM` and `ANALYZE` (`ANALYSE`), in PostgreSQL's syntax, read here (the SQL parser
//! knows another dialect's VACUUM) and carried as `CALL weft_maintenance(command, columns?,
//! table...)` ([`crate::sql::carrier`]).
//!
//! Neither has work to do in weft, and both say so only in the documentation, as a
//! successful statement: old row versions are removed by storage's own compaction once
//! they leave the time-travel retention window (earlier would break `weft.as_of`), and the
//! planner reads its statistics from segment metadata, which is always current. What the
//! statements check is PostgreSQL's: the named relations exist (42P01), the columns of a
//! column list exist (42703), a column list comes with ANALYZE, VACUUM runs outside a
//! transaction block (25001), and a relation the role does not own, or one that is not a
//! table, is skipped with PostgreSQL's warning. Tools that end a load with `VACUUM
//! ANALYZE` (pgbench -i, pg_restore's scripts, ORMs' test fixtures) run unchanged.

use datafusion::sql::sqlparser::ast::{Function, ObjectName, Statement};
use datafusion::sql::sqlparser::dialect::PostgreSqlDialect;
use datafusion::sql::sqlparser::keywords::Keyword;
use datafusion::sql::sqlparser::parser::Parser;
use datafusion::sql::sqlparser::tokenizer::Token;

use crate::catalog::txn::Txn;
use crate::error::{codes, SqlError, SqlResult};
use crate::sql::carrier::{arg, call, object_name};
use crate::sql::exec::Executor;
use crate::sql::names::ident_name;
use crate::sql::outcome::{CommandTag, Notice, Outcome};

/// The internal procedure VACUUM and ANALYZE are carried as.
pub const PROCEDURE: &str = "weft_maintenance";

/// The options `VACUUM (...)` accepts (PostgreSQL 15's list).
const VACUUM_OPTIONS: &[&str] = &[
    "full",
    "freeze",
    "verbose",
    "analyze",
    "disable_page_skipping",
    "skip_locked",
    "index_cleanup",
    "process_toast",
    "truncate",
    "parallel",
];

/// The options `ANALYZE (...)` accepts.
const ANALYZE_OPTIONS: &[&str] = &["verbose", "skip_locked"];

/// The statement, if `sql` is a VACUUM or an ANALYZE; `None` for other statements.
pub fn parse(sql: &str) -> Option<SqlResult<Statement>> {
    let first = sql.split_whitespace().next()?.to_ascii_lowercase();
    let first = first.trim_end_matches(';');
    let command = match first.split('(').next()? {
        "vacuum" => "vacuum",
        "analyze" | "analyse" => "analyze",
        _ => return None,
    };
    Some(parse_command(sql, command))
}

fn syntax(p: &Parser) -> SqlError {
    let t = p.peek_token().token;
    if t == Token::EOF {
        SqlError::syntax("syntax error at end of input")
    } else {
        SqlError::syntax(format!("syntax error at or near \"{t}\""))
    }
}

fn parse_command(sql: &str, command: &str) -> SqlResult<Statement> {
    let mut p = Parser::new(&PostgreSqlDialect {})
        .try_with_sql(sql)
        .map_err(|e| SqlError::syntax(e.to_string()))?;
    p.next_token(); // VACUUM / ANALYZE
    let mut analyze = command == "analyze";
    if p.consume_token(&Token::LParen) {
        let allowed = if analyze {
            ANALYZE_OPTIONS
        } else {
            VACUUM_OPTIONS
        };
        loop {
            let Token::Word(w) = p.next_token().token else {
                return Err(syntax(&p));
            };
            let option = w.value.to_ascii_lowercase();
            if !allowed.contains(&option.as_str()) {
                return Err(SqlError::syntax(format!(
                    "unrecognized {} option \"{option}\"",
                    command.to_ascii_uppercase()
                )));
            }
            // An option's value: a boolean, a number or a word (AUTO).
            let value_off = match p.peek_token().token {
                Token::Word(v) => {
                    p.next_token();
                    matches!(v.value.to_ascii_lowercase().as_str(), "off" | "false")
                }
                Token::Number(n, _) => {
                    p.next_token();
                    n == "0" && option != "parallel"
                }
                Token::SingleQuotedString(_) => {
                    p.next_token();
                    false
                }
                _ => false,
            };
            if option == "analyze" && !value_off {
                analyze = true;
            }
            if p.consume_token(&Token::RParen) {
                break;
            }
            if !p.consume_token(&Token::Comma) {
                return Err(syntax(&p));
            }
        }
    } else {
        let words: &[Keyword] = if analyze {
            &[Keyword::VERBOSE]
        } else {
            &[
                Keyword::FULL,
                Keyword::FREEZE,
                Keyword::VERBOSE,
                Keyword::ANALYZE,
            ]
        };
        for w in words {
            if p.parse_keyword(*w) && *w == Keyword::ANALYZE {
                analyze = true;
            }
        }
        if !analyze && p.parse_keyword(Keyword::ANALYZE) {
            analyze = true;
        }
    }
    let mut tables: Vec<(ObjectName, Vec<String>)> = Vec::new();
    while p.consume_token(&Token::SemiColon) {}
    if p.peek_token().token != Token::EOF {
        loop {
            let name = p.parse_object_name(false).map_err(|_| syntax(&p))?;
            let mut columns = Vec::new();
            if p.consume_token(&Token::LParen) {
                loop {
                    let c = p.parse_identifier().map_err(|_| syntax(&p))?;
                    columns.push(ident_name(&c));
                    if p.consume_token(&Token::RParen) {
                        break;
                    }
                    if !p.consume_token(&Token::Comma) {
                        return Err(syntax(&p));
                    }
                }
            }
            tables.push((name, columns));
            if !p.consume_token(&Token::Comma) {
                break;
            }
        }
    }
    while p.consume_token(&Token::SemiColon) {}
    if p.peek_token().token != Token::EOF {
        return Err(syntax(&p));
    }
    if !analyze && tables.iter().any(|(_, c)| !c.is_empty()) {
        return Err(SqlError::new(
            codes::FEATURE_NOT_SUPPORTED,
            "ANALYZE option must be specified when a column list is provided",
        ));
    }
    // Arguments: the command, whether it analyzes, then per relation its name and its
    // column list (comma-separated, empty for none).
    let mut args = vec![Some(command.to_string()), Some(analyze.to_string())];
    for (name, columns) in tables {
        args.push(Some(name.to_string()));
        args.push(Some(columns.join(",")));
    }
    Ok(call(PROCEDURE, args))
}

/// The relations a carried VACUUM or ANALYZE names, as written.
pub fn relations(f: &Function) -> Vec<String> {
    (0..)
        .map(|i| arg(f, 2 + 2 * i))
        .take_while(Option::is_some)
        .flatten()
        .collect()
}

impl Executor {
    /// Runs a VACUUM or ANALYZE carried by [`parse`] (see the module's overview).
    pub async fn maintenance(
        &self,
        txn: &mut Txn,
        f: &Function,
        notices: &mut Vec<Notice>,
    ) -> SqlResult<Outcome> {
        let command = arg(f, 0).unwrap_or_default();
        let (tag, verb) = if command == "vacuum" {
            ("VACUUM", "vacuum")
        } else {
            ("ANALYZE", "analyze")
        };
        if command == "vacuum" && txn.explicit {
            return Err(SqlError::new(
                codes::ACTIVE_SQL_TRANSACTION,
                "VACUUM cannot run inside a transaction block",
            ));
        }
        let acting = self.acting(txn).await?;
        for (i, written) in relations(f).iter().enumerate() {
            let columns = arg(f, 3 + 2 * i).unwrap_or_default();
            let name = self.resolve_name(txn, &object_name(written)?).await?;
            let Some(rel) = self.relation(txn, &name).await? else {
                return Err(SqlError::new(
                    codes::UNDEFINED_TABLE,
                    format!("relation \"{written}\" does not exist"),
                ));
            };
            let shown = weft_engine::schema::split_relation(&name).1.to_string();
            if rel.noun != "table" {
                notices.push(Notice {
                    severity: "WARNING",
                    code: codes::WARNING,
                    message: format!(
                        "skipping \"{shown}\" --- cannot {verb} non-tables or special system tables"
                    ),
                });
                continue;
            }
            let def = self.table_def(txn, &name).await?;
            for c in columns.split(',').filter(|c| !c.is_empty()) {
                if def.column_index(c).is_none() {
                    return Err(SqlError::new(
                        codes::UNDEFINED_COLUMN,
                        format!("column \"{c}\" of relation \"{shown}\" does not exist"),
                    ));
                }
            }
            if !acting.owns(&rel.owner) {
                notices.push(Notice {
                    severity: "WARNING",
                    code: codes::WARNING,
                    message: format!(
                        "skipping \"{shown}\" --- only table or database owner can {verb} it"
                    ),
                });
            }
        }
        Ok(Outcome::Command(CommandTag::new(tag)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn carried(sql: &str) -> Vec<Option<String>> {
        let Some(Ok(Statement::Call(f))) = parse(sql) else {
            panic!("{sql} was not read");
        };
        (0..8).map(|i| arg(&f, i)).collect()
    }

    #[test]
    fn statements_are_read_in_postgresqls_forms() {
        assert!(parse("SELECT 1").is_none());
        assert!(parse("vacuuming").is_none());
        let v = carried("VACUUM");
        assert_eq!(v[0].as_deref(), Some("vacuum"));
        assert_eq!(v[1].as_deref(), Some("false"));
        assert_eq!(v[2], None);
        let v = carried("vacuum analyze pgbench_branches");
        assert_eq!(v[1].as_deref(), Some("true"));
        assert_eq!(v[2].as_deref(), Some("pgbench_branches"));
        let v = carried("VACUUM FULL FREEZE VERBOSE ANALYZE s.t (a, \"B\"), u;");
        assert_eq!(v[1].as_deref(), Some("true"));
        assert_eq!(v[2].as_deref(), Some("s.t"));
        assert_eq!(v[3].as_deref(), Some("a,B"));
        assert_eq!(v[4].as_deref(), Some("u"));
        assert_eq!(v[5].as_deref(), Some(""));
        let v = carried("vacuum (full off, analyze, index_cleanup auto, parallel 2) t");
        assert_eq!(v[1].as_deref(), Some("true"));
        let v = carried("vacuum (analyze false) t");
        assert_eq!(v[1].as_deref(), Some("false"));
        let v = carried("ANALYSE VERBOSE t(b)");
        assert_eq!(v[0].as_deref(), Some("analyze"));
        assert_eq!(v[3].as_deref(), Some("b"));
    }

    #[test]
    fn bad_forms_are_refused_as_postgresql_refuses_them() {
        let e = parse("vacuum (bogus) t").unwrap().unwrap_err();
        assert!(e
            .to_string()
            .contains("unrecognized VACUUM option \"bogus\""));
        let e = parse("analyze (full) t").unwrap().unwrap_err();
        assert!(e.to_string().contains("unrecognized ANALYZE option"));
        let e = parse("vacuum t(a)").unwrap().unwrap_err();
        assert!(e.to_string().contains("ANALYZE option must be specified"));
        assert!(parse("vacuum t u").unwrap().is_err());
        assert!(parse("vacuum (full").unwrap().is_err());
    }
}
