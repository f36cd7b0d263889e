//! `CREATE DATABASE name [WITH] [option [=] value ...]` and
//! `DROP DATABASE [IF EXISTS] name [[WITH] (FORCE)]`. The SQL parser reads neither with
//! PostgreSQL's options, so both are read here and carried as
//! `CALL weft_database(action, name, ...)` ([`crate::sql::carrier`]).
//!
//! A new database is empty, whatever its template: weft's `template0` and `template1` hold
//! nothing. Options that would make it differ from what weft is (another encoding, a
//! locale other than C, a tablespace, a connection limit) answer 0A000 rather than being
//! ignored. A database's own system tables ([`weft_engine::schema::DatabaseTables`]) are
//! drawn at random, so a dropped database's rows are never seen again, even by a new
//! database of the same name. (Its rows stay in storage, as a dropped table's do.)

use std::time::Duration;

use datafusion::sql::sqlparser::ast::{Function, Ident, Owner, Statement};
use datafusion::sql::sqlparser::dialect::PostgreSqlDialect;
use datafusion::sql::sqlparser::keywords::Keyword;
use datafusion::sql::sqlparser::parser::Parser;
use datafusion::sql::sqlparser::tokenizer::{Token, Word};
use weft_engine::schema::{oid_for_table_id, DatabaseTables, FIRST_USER_TABLE_ID};

use crate::catalog::databases::{DatabaseDef, DATABASES_MAX, DEFAULT_DATABASE};
use crate::catalog::txn::Txn;
use crate::error::{codes, SqlError, SqlResult};
use crate::sql::carrier::{arg, call};
use crate::sql::exec::Executor;
use crate::sql::outcome::{CommandTag, Notice, Outcome};

/// The internal procedure CREATE and DROP DATABASE are carried as.
pub const PROCEDURE: &str = "weft_database";

/// How long DROP DATABASE waits for the database's other sessions to end (PostgreSQL's
/// five seconds).
pub const DROP_WAIT: Duration = Duration::from_secs(5);

/// The statement, if `sql` is a CREATE or DROP DATABASE; `None` for other statements.
pub fn parse(sql: &str) -> Option<SqlResult<Statement>> {
    let head: Vec<String> = sql
        .split_whitespace()
        .take(2)
        .map(str::to_ascii_lowercase)
        .collect();
    if head.len() < 2 || head[1] != "database" {
        return None;
    }
    match head[0].as_str() {
        "create" => Some(parse_create(sql)),
        "drop" => Some(parse_drop(sql)),
        "alter" => Some(parse_alter(sql)),
        _ => None,
    }
}

fn syntax(p: &Parser) -> SqlError {
    SqlError::syntax(format!(
        "syntax error at or near \"{}\"",
        p.peek_token().token
    ))
}

fn at_end(p: &mut Parser) -> bool {
    while p.consume_token(&Token::SemiColon) {}
    p.peek_token().token == Token::EOF
}

/// An option's value: a word, a string or a number (`DEFAULT` reads as `None`).
fn option_value(p: &mut Parser) -> SqlResult<Option<String>> {
    let _ = p.consume_token(&Token::Eq);
    let t = p.next_token().token;
    match t {
        Token::Word(Word {
            keyword: Keyword::DEFAULT,
            quote_style: None,
            ..
        }) => Ok(None),
        Token::Word(w) => Ok(Some(if w.quote_style.is_some() {
            w.value
        } else {
            w.value.to_lowercase()
        })),
        Token::SingleQuotedString(s) => Ok(Some(s)),
        Token::Number(n, _) => Ok(Some(n)),
        Token::Minus => match p.next_token().token {
            Token::Number(n, _) => Ok(Some(format!("-{n}"))),
            other => Err(SqlError::syntax(format!(
                "syntax error at or near \"{other}\""
            ))),
        },
        other => Err(SqlError::syntax(format!(
            "syntax error at or near \"{other}\""
        ))),
    }
}

fn refuse(what: String) -> SqlError {
    SqlError::unsupported(what)
}

/// Whether an option's value is what weft's databases are; a refusal naming it if not.
fn check_option(name: &str, value: &str) -> SqlResult<()> {
    let v = value.to_ascii_lowercase();
    let ok = match name {
        "template" => matches!(v.as_str(), "template0" | "template1"),
        "encoding" => matches!(v.as_str(), "utf8" | "utf-8" | "unicode" | "6"),
        "locale" | "lc_collate" | "lc_ctype" => {
            matches!(v.as_str(), "c" | "posix" | "c.utf8" | "c.utf-8")
        }
        "locale_provider" => v == "libc",
        "strategy" => matches!(v.as_str(), "wal_log" | "file_copy"),
        "tablespace" => v == "pg_default",
        "allow_connections" => matches!(v.as_str(), "true" | "on" | "1" | "yes"),
        "is_template" => matches!(v.as_str(), "false" | "off" | "0" | "no"),
        "connection limit" => v == "-1",
        _ => false,
    };
    if ok {
        return Ok(());
    }
    Err(match name {
        "template" => refuse(format!(
            "CREATE DATABASE ... TEMPLATE {value} is not supported: a new database is empty (TEMPLATE template0 or template1)"
        )),
        "encoding" => refuse(format!(
            "encoding \"{value}\" is not supported: weft's databases are UTF8"
        )),
        "locale" | "lc_collate" | "lc_ctype" | "locale_provider" => refuse(format!(
            "{} \"{value}\" is not supported: weft's databases use the C locale",
            name.to_uppercase()
        )),
        _ => refuse(format!(
            "CREATE DATABASE ... {} {value} is not supported",
            name.to_uppercase()
        )),
    })
}

fn parse_create(sql: &str) -> SqlResult<Statement> {
    let dialect = PostgreSqlDialect {};
    let mut p = Parser::new(&dialect)
        .try_with_sql(sql)
        .map_err(|e| SqlError::syntax(e.to_string()))?;
    if !p.parse_keywords(&[Keyword::CREATE, Keyword::DATABASE]) {
        return Err(syntax(&p));
    }
    let name = p.parse_identifier().map_err(|_| syntax(&p))?;
    let name = crate::sql::names::ident_name(&name);
    let _ = p.parse_keyword(Keyword::WITH);
    let mut owner = None;
    while !at_end(&mut p) {
        let Token::Word(w) = p.next_token().token else {
            p.prev_token();
            return Err(syntax(&p));
        };
        let mut option = w.value.to_lowercase();
        if option == "connection" {
            if !p.parse_keyword(Keyword::LIMIT) {
                return Err(syntax(&p));
            }
            option = "connection limit".into();
        }
        let known = [
            "owner",
            "template",
            "encoding",
            "strategy",
            "locale",
            "lc_collate",
            "lc_ctype",
            "icu_locale",
            "icu_rules",
            "locale_provider",
            "collation_version",
            "tablespace",
            "allow_connections",
            "connection limit",
            "is_template",
            "oid",
        ];
        if !known.contains(&option.as_str()) {
            return Err(SqlError::syntax(format!(
                "option \"{option}\" not recognized"
            )));
        }
        let value = option_value(&mut p)?;
        match (option.as_str(), value) {
            (_, None) => {}
            ("owner", Some(v)) => owner = Some(v),
            (o, Some(v)) => check_option(o, &v)?,
        }
    }
    Ok(call(
        PROCEDURE,
        vec![
            Some("create".into()),
            Some(name),
            Some("false".into()),
            owner,
        ],
    ))
}

/// `ALTER DATABASE name OWNER TO role`, which `pg_dump --create` writes; its other forms
/// (RENAME, SET, CONNECTION LIMIT, ...) answer 0A000.
fn parse_alter(sql: &str) -> SqlResult<Statement> {
    let dialect = PostgreSqlDialect {};
    let mut p = Parser::new(&dialect)
        .try_with_sql(sql)
        .map_err(|e| SqlError::syntax(e.to_string()))?;
    if !p.parse_keywords(&[Keyword::ALTER, Keyword::DATABASE]) {
        return Err(syntax(&p));
    }
    let name = p.parse_identifier().map_err(|_| syntax(&p))?;
    let name = crate::sql::names::ident_name(&name);
    if !p.parse_keywords(&[Keyword::OWNER, Keyword::TO]) {
        return Err(SqlError::unsupported(
            "ALTER DATABASE is supported only as OWNER TO",
        ));
    }
    let owner = p.parse_identifier().map_err(|_| syntax(&p))?;
    if !at_end(&mut p) {
        return Err(syntax(&p));
    }
    Ok(call(
        PROCEDURE,
        vec![
            Some("owner".into()),
            Some(name),
            Some("false".into()),
            Some(crate::sql::names::ident_name(&owner)),
        ],
    ))
}

fn parse_drop(sql: &str) -> SqlResult<Statement> {
    let dialect = PostgreSqlDialect {};
    let mut p = Parser::new(&dialect)
        .try_with_sql(sql)
        .map_err(|e| SqlError::syntax(e.to_string()))?;
    if !p.parse_keywords(&[Keyword::DROP, Keyword::DATABASE]) {
        return Err(syntax(&p));
    }
    let if_exists = p.parse_keywords(&[Keyword::IF, Keyword::EXISTS]);
    let name = p.parse_identifier().map_err(|_| syntax(&p))?;
    let name = crate::sql::names::ident_name(&name);
    let mut force = false;
    if !at_end(&mut p) {
        let _ = p.parse_keyword(Keyword::WITH);
        if !p.consume_token(&Token::LParen) {
            return Err(syntax(&p));
        }
        loop {
            match p.next_token().token {
                Token::Word(w) if w.value.eq_ignore_ascii_case("force") => force = true,
                Token::Word(w) => {
                    return Err(SqlError::syntax(format!(
                        "unrecognized DROP DATABASE option \"{}\"",
                        w.value
                    )))
                }
                _ => {
                    p.prev_token();
                    return Err(syntax(&p));
                }
            }
            if p.consume_token(&Token::RParen) {
                break;
            }
            if !p.consume_token(&Token::Comma) {
                return Err(syntax(&p));
            }
        }
        if !at_end(&mut p) {
            return Err(syntax(&p));
        }
    }
    Ok(call(
        PROCEDURE,
        vec![
            Some("drop".into()),
            Some(name),
            Some("false".into()),
            Some(if_exists.to_string()),
            Some(force.to_string()),
        ],
    ))
}

/// Marks the CREATE and DROP DATABASE among `stmts`, a query string of several
/// statements: such a string is one implicit transaction block, where they cannot run.
pub fn in_query_string(stmts: &mut [Statement]) {
    if stmts.len() < 2 {
        return;
    }
    for s in stmts {
        if let Statement::Call(f) = s {
            if f.name.to_string() == PROCEDURE {
                let mut args: Vec<Option<String>> = (0..5).map(|n| arg(f, n)).collect();
                args[2] = Some("true".into());
                while args.last().is_some_and(Option::is_none) {
                    args.pop();
                }
                *s = call(PROCEDURE, args);
            }
        }
    }
}

impl Executor {
    /// Runs a CREATE or DROP DATABASE carried by [`parse`].
    pub async fn database_ddl(
        &self,
        txn: &mut Txn,
        f: &Function,
        notices: &mut Vec<Notice>,
    ) -> SqlResult<Outcome> {
        let action = arg(f, 0).unwrap_or_default();
        let name = arg(f, 1).unwrap_or_default();
        let what = match action.as_str() {
            "create" => "CREATE DATABASE",
            "owner" => "ALTER DATABASE",
            _ => "DROP DATABASE",
        };
        if action == "owner" {
            // As PostgreSQL, in a transaction block too.
            let read_ts = txn.read_ts()?;
            if crate::catalog::databases::lookup(&self.db, Some(txn), read_ts, &name)
                .await?
                .is_none()
            {
                return Err(SqlError::new(
                    codes::INVALID_CATALOG_NAME,
                    format!("database \"{name}\" does not exist"),
                ));
            }
            let owner = arg(f, 3).unwrap_or_default();
            self.database_owner_to(txn, &Owner::Ident(Ident::with_quote('"', owner)))
                .await?;
            return Ok(Outcome::Command(CommandTag::new(what)));
        }
        if txn.explicit || arg(f, 2).as_deref() == Some("true") {
            return Err(SqlError::new(
                codes::ACTIVE_SQL_TRANSACTION,
                format!("{what} cannot run inside a transaction block"),
            ));
        }
        if action == "create" {
            self.create_database(txn, &name, arg(f, 3)).await?;
        } else {
            let if_exists = arg(f, 3).as_deref() == Some("true");
            let force = arg(f, 4).as_deref() == Some("true");
            self.drop_database(txn, &name, if_exists, force, notices)
                .await?;
        }
        Ok(Outcome::Command(CommandTag::new(what)))
    }

    async fn create_database(
        &self,
        txn: &mut Txn,
        name: &str,
        owner: Option<String>,
    ) -> SqlResult<()> {
        if let Some(o) = owner {
            self.database_owner_to(txn, &Owner::Ident(Ident::with_quote('"', o)))
                .await?;
        }
        let read_ts = txn.read_ts()?;
        let db = self.db.as_ref();
        if crate::catalog::databases::lookup(db, Some(txn), read_ts, name)
            .await?
            .is_some()
        {
            return Err(SqlError::new(
                codes::DUPLICATE_DATABASE,
                format!("database \"{name}\" already exists"),
            ));
        }
        if crate::catalog::databases::list(db, read_ts).await?.len() > DATABASES_MAX {
            return Err(SqlError::new(
                codes::PROGRAM_LIMIT_EXCEEDED,
                format!("a cluster holds at most {DATABASES_MAX} databases besides \"{DEFAULT_DATABASE}\""),
            ));
        }
        let base =
            FIRST_USER_TABLE_ID + self.db.entropy.u64() % (u64::MAX - FIRST_USER_TABLE_ID - 4);
        let def = DatabaseDef {
            name: name.to_string(),
            oid: oid_for_table_id(base) as i32,
            tables: DatabaseTables::at(base),
            acl: None,
        };
        crate::catalog::databases::put(db, txn, name, Some(&def))
    }

    async fn drop_database(
        &self,
        txn: &mut Txn,
        name: &str,
        if_exists: bool,
        force: bool,
        notices: &mut Vec<Notice>,
    ) -> SqlResult<()> {
        let read_ts = txn.read_ts()?;
        let db = self.db.as_ref();
        if crate::catalog::databases::lookup(db, Some(txn), read_ts, name)
            .await?
            .is_none()
        {
            if if_exists {
                notices.push(Notice {
                    severity: "NOTICE",
                    code: "00000",
                    message: format!("database \"{name}\" does not exist, skipping"),
                });
                return Ok(());
            }
            return Err(SqlError::new(
                codes::INVALID_CATALOG_NAME,
                format!("database \"{name}\" does not exist"),
            ));
        }
        if self.meta.identity().database == name {
            return Err(SqlError::new(
                codes::OBJECT_IN_USE,
                "cannot drop the currently open database",
            ));
        }
        if name == DEFAULT_DATABASE {
            return Err(SqlError::unsupported(format!(
                "dropping the default database \"{DEFAULT_DATABASE}\" is not supported"
            )));
        }
        self.wait_for_sessions(name, force).await?;
        crate::catalog::databases::put(db, txn, name, None)
    }

    /// Waits (up to [`DROP_WAIT`]) until no other session is connected to `name`, having
    /// ended them first with `force`.
    async fn wait_for_sessions(&self, name: &str, force: bool) -> SqlResult<()> {
        let deadline = tokio::time::Instant::now() + DROP_WAIT;
        loop {
            let others: Vec<_> = self
                .db
                .backends
                .list()
                .into_iter()
                .filter(|b| b.database == name)
                .collect();
            if others.is_empty() {
                return Ok(());
            }
            if force {
                for b in &others {
                    b.terminate();
                }
            }
            if tokio::time::Instant::now() >= deadline {
                let n = others.len();
                return Err(SqlError::new(
                    codes::OBJECT_IN_USE,
                    format!("database \"{name}\" is being accessed by other users"),
                )
                .with_detail(if n == 1 {
                    "There is 1 other session using the database.".to_string()
                } else {
                    format!("There are {n} other sessions using the database.")
                }));
            }
            // Sessions end on their own connections' tasks; PostgreSQL polls the same way.
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn carried(sql: &str) -> String {
        parse(sql).unwrap().unwrap().to_string()
    }

    #[test]
    fn create_reads_postgresql_options() {
        assert_eq!(
            carried("CREATE DATABASE Test_X"),
            "CALL weft_database('create', 'test_x', 'false', NULL)"
        );
        assert_eq!(
            carried("create database \"App\" WITH OWNER = postgres TEMPLATE = template0 ENCODING = 'UTF8' LOCALE_PROVIDER = libc LOCALE = 'C' CONNECTION LIMIT = -1;"),
            "CALL weft_database('create', 'App', 'false', 'postgres')"
        );
        assert_eq!(
            carried("CREATE DATABASE x ENCODING 'unicode'"),
            "CALL weft_database('create', 'x', 'false', NULL)"
        );
    }

    #[test]
    fn create_refuses_what_weft_is_not() {
        for (sql, code) in [
            ("CREATE DATABASE x ENCODING 'LATIN1'", "0A000"),
            ("CREATE DATABASE x LOCALE 'en_US.UTF-8'", "0A000"),
            ("CREATE DATABASE x TEMPLATE app", "0A000"),
            ("CREATE DATABASE x TABLESPACE fast", "0A000"),
            ("CREATE DATABASE x COLOUR blue", "42601"),
            ("CREATE DATABASE IF NOT EXISTS x", "42601"),
        ] {
            let e = parse(sql).unwrap().unwrap_err();
            assert_eq!(e.code, code, "{sql}: {}", e.message);
        }
    }

    #[test]
    fn drop_reads_if_exists_and_force() {
        assert_eq!(
            carried("DROP DATABASE IF EXISTS t WITH (FORCE)"),
            "CALL weft_database('drop', 't', 'false', 'true', 'true')"
        );
        assert_eq!(
            carried("drop database t;"),
            "CALL weft_database('drop', 't', 'false', 'false', 'false')"
        );
        assert!(parse("DROP DATABASE t (SOMETHING)").unwrap().is_err());
        assert!(parse("DROP TABLE t").is_none());
        assert_eq!(
            parse("ALTER DATABASE t RENAME TO u")
                .unwrap()
                .unwrap_err()
                .code,
            "0A000"
        );
        assert_eq!(
            carried("ALTER DATABASE app OWNER TO postgres;"),
            "CALL weft_database('owner', 'app', 'false', 'postgres')"
        );
    }
}
