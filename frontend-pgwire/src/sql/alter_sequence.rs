//! `ALTER SEQUENCE [IF EXISTS] s OWNED BY t.c | NONE`, which pg_dump writes after every
//! SERIAL column's sequence. The SQL parser has no ALTER SEQUENCE, so the statement is
//! read here and carried as a call of weft's internal procedure
//! `weft_alter_sequence(name, if_exists, table, column)`, which the executor runs as the
//! ALTER SEQUENCE it is. Its other forms (RESTART, INCREMENT, ...) answer 0A000.

use datafusion::sql::sqlparser::ast::{Function, ObjectName, Statement};
use datafusion::sql::sqlparser::dialect::PostgreSqlDialect;
use datafusion::sql::sqlparser::keywords::Keyword;
use datafusion::sql::sqlparser::parser::Parser;
use datafusion::sql::sqlparser::tokenizer::Token;

use crate::catalog::txn::Txn;
use crate::error::{codes, SqlError, SqlResult};
use crate::sql::carrier::{arg, object_name};
use crate::sql::exec::Executor;
use crate::sql::names::ident_name;
use crate::sql::outcome::{CommandTag, Notice, Outcome};

/// The internal procedure an ALTER SEQUENCE is carried as.
pub const PROCEDURE: &str = "weft_alter_sequence";

/// The statement, if `sql` is an `ALTER SEQUENCE`. `None` for other statements.
pub fn parse(sql: &str) -> Option<Statement> {
    let head: Vec<&str> = sql.split_whitespace().take(2).collect();
    if head.len() < 2
        || !head[0].eq_ignore_ascii_case("alter")
        || !head[1].eq_ignore_ascii_case("sequence")
    {
        return None;
    }
    let dialect = PostgreSqlDialect {};
    let mut p = Parser::new(&dialect).try_with_sql(sql).ok()?;
    if !p.parse_keywords(&[Keyword::ALTER, Keyword::SEQUENCE]) {
        return None;
    }
    let if_exists = p.parse_keywords(&[Keyword::IF, Keyword::EXISTS]);
    let name = p.parse_object_name(false).ok()?;
    let owner = if p.parse_keywords(&[Keyword::OWNED, Keyword::BY]) {
        if p.parse_keyword(Keyword::NONE) {
            Some(None)
        } else {
            let target = p.parse_object_name(false).ok()?;
            Some(Some(target))
        }
    } else {
        None
    };
    let rest_empty = {
        while p.consume_token(&Token::SemiColon) {}
        p.peek_token().token == Token::EOF
    };
    let args = match owner {
        Some(target) if rest_empty => {
            let (table, column) = match target {
                None => (None, None),
                Some(t) => {
                    let parts: Vec<String> =
                        t.0.iter()
                            .filter_map(|p| p.as_ident())
                            .map(ident_name)
                            .collect();
                    if parts.len() < 2 {
                        return None;
                    }
                    let column = parts[parts.len() - 1].clone();
                    let table = ObjectName::from(
                        t.0[..t.0.len() - 1]
                            .iter()
                            .filter_map(|p| p.as_ident().cloned())
                            .collect::<Vec<_>>(),
                    );
                    (Some(table.to_string()), Some(column))
                }
            };
            vec![
                Some(name.to_string()),
                Some(if_exists.to_string()),
                table,
                column,
            ]
        }
        // Another form: the executor refuses it by name.
        _ => vec![Some(name.to_string()), None, None, None],
    };
    Some(crate::sql::carrier::call(PROCEDURE, args))
}

impl Executor {
    /// Runs an ALTER SEQUENCE carried by [`parse`].
    pub async fn alter_sequence(
        &self,
        txn: &mut Txn,
        f: &Function,
        notices: &mut Vec<Notice>,
    ) -> SqlResult<Outcome> {
        let tag = Outcome::Command(CommandTag::new("ALTER SEQUENCE"));
        let Some(if_exists) = arg(f, 1) else {
            return Err(SqlError::unsupported(
                "ALTER SEQUENCE is supported only as OWNED BY table.column | NONE",
            ));
        };
        let seq_name = self
            .resolve_name(txn, &object_name(&arg(f, 0).unwrap_or_default())?)
            .await?;
        let Some(mut seq) = self.sequence_def(txn, &seq_name).await? else {
            if if_exists == "true" {
                notices.push(Notice {
                    severity: "NOTICE",
                    code: "00000",
                    message: format!("relation \"{seq_name}\" does not exist, skipping"),
                });
                return Ok(tag);
            }
            return Err(SqlError::new(
                codes::UNDEFINED_TABLE,
                format!("relation \"{seq_name}\" does not exist"),
            ));
        };
        seq.owned_by = match (arg(f, 2), arg(f, 3)) {
            (Some(table), Some(column)) => {
                let table = self.resolve_name(txn, &object_name(&table)?).await?;
                let def = self.table_def(txn, &table).await?;
                if def.column_index(&column).is_none() {
                    return Err(SqlError::new(
                        codes::UNDEFINED_COLUMN,
                        format!("column \"{column}\" of relation \"{table}\" does not exist"),
                    ));
                }
                Some((table, column))
            }
            _ => None,
        };
        crate::catalog::sequences::put(self.db.as_ref(), txn, &seq_name, Some(&seq))?;
        Ok(tag)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn owned_by_is_read() {
        let s = parse("ALTER SEQUENCE public.t_id_seq OWNED BY public.t.id;").unwrap();
        assert_eq!(
            s.to_string(),
            "CALL weft_alter_sequence('public.t_id_seq', 'false', 'public.t', 'id')"
        );
        let s = parse("alter sequence if exists s owned by none").unwrap();
        assert_eq!(
            s.to_string(),
            "CALL weft_alter_sequence('s', 'true', NULL, NULL)"
        );
        let s = parse("ALTER SEQUENCE s RESTART WITH 5").unwrap();
        assert_eq!(
            s.to_string(),
            "CALL weft_alter_sequence('s', NULL, NULL, NULL)"
        );
        assert!(parse("ALTER TABLE s OWNER TO x").is_none());
    }
}
