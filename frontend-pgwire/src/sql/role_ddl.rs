//! `CREATE|ALTER|DROP ROLE|USER`: role rows written in the session's transaction.

use crate::catalog::auth::ScramSecret;
use crate::catalog::roles::{exists, lookup, put, RoleDef, BOOTSTRAP_ROLE_NAME};
use crate::catalog::txn::Txn;
use crate::error::{codes, SqlError, SqlResult};
use crate::sql::exec::Executor;
use crate::sql::names::ident_name;
use crate::sql::outcome::CommandTag;
use crate::sql::outcome::{Notice, Outcome};
use datafusion::sql::sqlparser::ast::{self, RoleOption};

fn role_name(n: &ast::ObjectName) -> SqlResult<String> {
    match n.0.as_slice() {
        [p] => p
            .as_ident()
            .map(ident_name)
            .ok_or_else(|| SqlError::new(codes::SYNTAX_ERROR, format!("invalid role name {n}"))),
        _ => Err(SqlError::new(
            codes::SYNTAX_ERROR,
            format!("invalid role name {n}"),
        )),
    }
}

fn duplicate(name: &str) -> SqlError {
    SqlError::new("42710", format!("role \"{name}\" already exists"))
}

fn missing(name: &str) -> SqlError {
    SqlError::new(
        codes::UNDEFINED_OBJECT,
        format!("role \"{name}\" does not exist"),
    )
}

impl Executor {
    /// `CREATE USER|ROLE name [WITH] [LOGIN|NOLOGIN] [SUPERUSER] [PASSWORD 'x' | NULL]`.
    /// `CREATE USER` implies LOGIN, as in PostgreSQL; the other attributes are accepted
    /// and have no effect (weft has no privileges yet: every role may do everything).
    pub async fn create_role(&self, txn: &mut Txn, cr: &ast::CreateRole) -> SqlResult<Outcome> {
        let read_ts = txn.read_ts()?;
        let password = cr
            .password
            .as_ref()
            .map(|p| password_secret(p, &self.db.entropy))
            .transpose()?
            .flatten();
        for n in &cr.names {
            let name = role_name(n)?;
            if name.starts_with("pg_") {
                return Err(
                    SqlError::new("42939", format!("role name \"{name}\" is reserved"))
                        .with_detail("Role names starting with \"pg_\" are reserved."),
                );
            }
            if exists(&self.db, Some(txn), read_ts, &name).await? {
                if cr.if_not_exists {
                    continue;
                }
                return Err(duplicate(&name));
            }
            let def = RoleDef {
                name: name.clone(),
                login: cr.login.unwrap_or(false),
                superuser: cr.superuser.unwrap_or(false),
                password: password.clone(),
            };
            put(&self.db, txn, &name, Some(&def))?;
        }
        Ok(Outcome::Command(CommandTag::new("CREATE ROLE")))
    }

    /// `ALTER USER|ROLE name [WITH] PASSWORD 'x' | LOGIN | NOLOGIN | ...`.
    pub async fn alter_role(
        &self,
        txn: &mut Txn,
        name: &ast::Ident,
        op: &ast::AlterRoleOperation,
    ) -> SqlResult<Outcome> {
        let name = ident_name(name);
        let read_ts = txn.read_ts()?;
        let ast::AlterRoleOperation::WithOptions { options } = op else {
            return Err(SqlError::unsupported(
                "ALTER ROLE supports only [WITH] options (PASSWORD, LOGIN, SUPERUSER, ...)",
            ));
        };
        let mut def = match lookup(&self.db, Some(txn), read_ts, &name).await? {
            Some(d) => d,
            None if name == BOOTSTRAP_ROLE_NAME => RoleDef {
                name: name.clone(),
                login: true,
                superuser: true,
                password: None,
            },
            None if self.db.auth().users.contains_key(&name) => {
                return Err(SqlError::unsupported(format!(
                    "role \"{name}\" is configured at start (--user); change it there"
                )))
            }
            None => return Err(missing(&name)),
        };
        for o in options {
            match o {
                RoleOption::Password(p) => def.password = password_secret(p, &self.db.entropy)?,
                RoleOption::Login(b) => def.login = *b,
                RoleOption::SuperUser(b) => def.superuser = *b,
                _ => {}
            }
        }
        put(&self.db, txn, &name, Some(&def))?;
        Ok(Outcome::Command(CommandTag::new("ALTER ROLE")))
    }

    /// `DROP USER|ROLE [IF EXISTS] name, ...`.
    pub async fn drop_roles(
        &self,
        txn: &mut Txn,
        names: &[ast::ObjectName],
        if_exists: bool,
        notices: &mut Vec<Notice>,
    ) -> SqlResult<Outcome> {
        let read_ts = txn.read_ts()?;
        for n in names {
            let name = role_name(n)?;
            if name == BOOTSTRAP_ROLE_NAME {
                return Err(SqlError::new(
                    "55006",
                    format!(
                        "cannot drop role {name} because it is required by the database system"
                    ),
                ));
            }
            if lookup(&self.db, Some(txn), read_ts, &name).await?.is_none() {
                if if_exists {
                    notices.push(Notice {
                        severity: "NOTICE",
                        code: "00000",
                        message: format!("role \"{name}\" does not exist, skipping"),
                    });
                    continue;
                }
                return Err(missing(&name));
            }
            put(&self.db, txn, &name, None)?;
        }
        Ok(Outcome::Command(CommandTag::new("DROP ROLE")))
    }
}

/// The password of `CREATE|ALTER ROLE ... PASSWORD 'x'`: a SCRAM verifier made here (or
/// given, in PostgreSQL's form), or none for `PASSWORD NULL`. MD5 hashes cannot be used.
pub fn password_secret(
    p: &datafusion::sql::sqlparser::ast::Password,
    entropy: &weft_engine::Entropy,
) -> SqlResult<Option<ScramSecret>> {
    use datafusion::sql::sqlparser::ast::{Expr, Password as P, Value};
    match p {
        P::NullPassword => Ok(None),
        P::Password(Expr::Value(v)) => match &v.value {
            Value::SingleQuotedString(s) | Value::EscapedStringLiteral(s) => {
                // A SCRAM verifier made elsewhere (pg_dumpall writes them) is stored as
                // given; a string that only looks like one is a password, as in PostgreSQL.
                if let Some(verifier) = ScramSecret::parse(s) {
                    return Ok(Some(verifier));
                }
                if s.len() == 35 && s.starts_with("md5") {
                    return Err(SqlError::unsupported(
                        "MD5 password hashes are not supported: give the password itself, or \
                         a SCRAM-SHA-256 verifier",
                    ));
                }
                if s.is_empty() {
                    return Ok(None);
                }
                Ok(Some(ScramSecret::new(s, entropy)))
            }
            Value::Null => Ok(None),
            _ => Err(SqlError::new(
                codes::SYNTAX_ERROR,
                "a password must be a string literal",
            )),
        },
        P::Password(_) => Err(SqlError::new(
            codes::SYNTAX_ERROR,
            "a password must be a string literal",
        )),
    }
}
