//! Role membership: `GRANT role [, ...] TO member [, ...] [WITH ADMIN OPTION]` and `REVOKE
//! [ADMIN OPTION FOR] role [, ...] FROM member [, ...]`, which the SQL parser does not read
//! (it expects privileges), carried as `CALL weft_role_membership(action, admin, roles,
//! members)` with comma-joined, already-folded names ([`crate::sql::carrier`]).
//!
//! As in PostgreSQL 15: a superuser, a CREATEROLE role (for roles that are not
//! superusers), or a member holding the ADMIN OPTION may grant a role; a membership that
//! would make a cycle is 0LP01; granting a membership that exists is a notice, revoking one
//! that does not a warning. A member uses the role's privileges when it INHERITs (the
//! default), and may `SET ROLE` to it in any case.

use datafusion::sql::sqlparser::ast::Function;
use datafusion::sql::sqlparser::dialect::PostgreSqlDialect;
use datafusion::sql::sqlparser::keywords::Keyword;
use datafusion::sql::sqlparser::tokenizer::{Token, Tokenizer, Word};

use crate::catalog::roles::{put, resolve, Membership};
use crate::catalog::txn::Txn;
use crate::error::{codes, SqlError, SqlResult};
use crate::sql::carrier::{arg, call};
use crate::sql::exec::Executor;
use crate::sql::outcome::{CommandTag, Notice, Outcome};

pub const PROCEDURE: &str = "weft_role_membership";

fn name_of(w: &Word) -> String {
    if w.quote_style.is_some() {
        w.value.clone()
    } else {
        w.value.to_lowercase()
    }
}

/// The statement, if `sql` is a GRANT or REVOKE of roles (one without `ON`); `None` for
/// other statements.
pub fn parse(sql: &str) -> Option<SqlResult<datafusion::sql::sqlparser::ast::Statement>> {
    let tokens = Tokenizer::new(&PostgreSqlDialect {}, sql).tokenize().ok()?;
    let words: Vec<&Token> = tokens
        .iter()
        .filter(|t| !matches!(t, Token::Whitespace(_) | Token::SemiColon))
        .collect();
    let Some(Token::Word(first)) = words.first() else {
        return None;
    };
    let grant = match first.keyword {
        Keyword::GRANT => true,
        Keyword::REVOKE => false,
        _ => return None,
    };
    if words
        .iter()
        .any(|t| matches!(t, Token::Word(w) if w.keyword == Keyword::ON && w.quote_style.is_none()))
    {
        return None;
    }
    let mut rest = &words[1..];
    let mut admin = false;
    let kw = |t: &Token, k: Keyword| matches!(t, Token::Word(w) if w.keyword == k && w.quote_style.is_none());
    if !grant
        && rest.len() >= 3
        && kw(rest[0], Keyword::ADMIN)
        && kw(rest[1], Keyword::OPTION)
        && kw(rest[2], Keyword::FOR)
    {
        admin = true;
        rest = &rest[3..];
    }
    let split = if grant { Keyword::TO } else { Keyword::FROM };
    let Some(at) = rest.iter().position(|t| kw(t, split)) else {
        return Some(Err(SqlError::syntax(format!(
            "syntax error: {} expects {}",
            if grant { "GRANT" } else { "REVOKE" },
            if grant { "TO" } else { "FROM" }
        ))));
    };
    let list = |toks: &[&Token]| -> SqlResult<Vec<String>> {
        let mut out = Vec::new();
        let mut expect_name = true;
        for t in toks {
            match t {
                Token::Word(w) if expect_name => {
                    out.push(name_of(w));
                    expect_name = false;
                }
                Token::Comma if !expect_name => expect_name = true,
                other => {
                    return Err(SqlError::syntax(format!(
                        "syntax error at or near \"{other}\""
                    )))
                }
            }
        }
        if expect_name {
            return Err(SqlError::syntax("syntax error: a role name is missing"));
        }
        Ok(out)
    };
    let roles = match list(&rest[..at]) {
        Ok(r) => r,
        Err(e) => return Some(Err(e)),
    };
    let mut tail = &rest[at + 1..];
    // Options after the members: WITH ADMIN OPTION, GRANTED BY role, CASCADE, RESTRICT.
    let mut end = tail.len();
    for (i, t) in tail.iter().enumerate() {
        if kw(t, Keyword::WITH)
            || kw(t, Keyword::GRANTED)
            || kw(t, Keyword::CASCADE)
            || kw(t, Keyword::RESTRICT)
        {
            end = i;
            break;
        }
    }
    let options = &tail[end..];
    tail = &tail[..end];
    if grant
        && options.len() >= 3
        && kw(options[0], Keyword::WITH)
        && kw(options[1], Keyword::ADMIN)
        && kw(options[2], Keyword::OPTION)
    {
        admin = true;
    }
    let members = match list(tail) {
        Ok(m) => m,
        Err(e) => return Some(Err(e)),
    };
    Some(Ok(call(
        PROCEDURE,
        vec![
            Some(if grant { "grant" } else { "revoke" }.into()),
            Some(admin.to_string()),
            Some(roles.join(",")),
            Some(members.join(",")),
        ],
    )))
}

impl Executor {
    /// Runs a membership GRANT or REVOKE carried by [`parse`].
    pub async fn role_membership(
        &self,
        txn: &mut Txn,
        f: &Function,
        notices: &mut Vec<Notice>,
    ) -> SqlResult<Outcome> {
        let grant = arg(f, 0).as_deref() == Some("grant");
        let admin = arg(f, 1).as_deref() == Some("true");
        let split = |s: Option<String>| -> Vec<String> {
            s.unwrap_or_default()
                .split(',')
                .filter(|n| !n.is_empty())
                .map(str::to_string)
                .collect()
        };
        let (roles, members) = (split(arg(f, 2)), split(arg(f, 3)));
        let read_ts = txn.read_ts()?;
        let acting = self.acting(txn).await?;
        for role in &roles {
            let Some(target) = resolve(&self.db, Some(txn), read_ts, role).await? else {
                return Err(missing(role));
            };
            // Who may: a superuser; CREATEROLE for roles that are not superusers; a
            // member holding the ADMIN OPTION.
            let may = acting.superuser
                || (acting.createrole && !target.superuser)
                || self.holds_admin(txn, &acting.role, role).await?;
            if !may {
                return Err(SqlError::new(
                    codes::INSUFFICIENT_PRIVILEGE,
                    if target.superuser {
                        "must be superuser to alter superusers".to_string()
                    } else {
                        format!("must have admin option on role \"{role}\"")
                    },
                ));
            }
            for member in &members {
                let Some(mut def) = resolve(&self.db, Some(txn), read_ts, member).await? else {
                    return Err(missing(member));
                };
                if crate::catalog::roles::always_superuser(&self.db, member)
                    && def.name != crate::catalog::roles::BOOTSTRAP_ROLE_NAME
                {
                    return Err(SqlError::unsupported(format!(
                        "role \"{member}\" is configured at start (--user); its memberships cannot change"
                    )));
                }
                let at = def.member_of.iter().position(|m| m.role == *role);
                if grant {
                    if member == role
                        || crate::catalog::grants::is_member(
                            &self.db,
                            Some(txn),
                            read_ts,
                            role,
                            member,
                        )
                        .await?
                    {
                        return Err(SqlError::new(
                            "0LP01",
                            if member == role {
                                format!("role \"{role}\" is a member of role \"{member}\"")
                            } else {
                                format!("role \"{member}\" is a member of role \"{role}\"")
                            },
                        ));
                    }
                    match at {
                        Some(i) if def.member_of[i].admin || !admin => {
                            notices.push(Notice {
                                severity: "NOTICE",
                                code: "00000",
                                message: format!(
                                    "role \"{member}\" is already a member of role \"{role}\""
                                ),
                            });
                            continue;
                        }
                        Some(i) => def.member_of[i].admin = true,
                        None => def.member_of.push(Membership {
                            role: role.clone(),
                            admin,
                            grantor: acting.role.clone(),
                        }),
                    }
                } else {
                    match at {
                        None => {
                            notices.push(Notice {
                                severity: "WARNING",
                                code: "01000",
                                message: format!(
                                    "role \"{member}\" is not a member of role \"{role}\""
                                ),
                            });
                            continue;
                        }
                        Some(i) if admin => def.member_of[i].admin = false,
                        Some(i) => {
                            def.member_of.remove(i);
                        }
                    }
                }
                put(&self.db, txn, member, Some(&def))?;
            }
        }
        Ok(Outcome::Command(CommandTag::new(if grant {
            "GRANT ROLE"
        } else {
            "REVOKE ROLE"
        })))
    }

    /// Whether `who` holds `role` with the ADMIN OPTION (directly).
    async fn holds_admin(&self, txn: &Txn, who: &str, role: &str) -> SqlResult<bool> {
        let def = resolve(&self.db, Some(txn), txn.read_ts()?, who).await?;
        Ok(def.is_some_and(|d| d.member_of.iter().any(|m| m.role == role && m.admin)))
    }

    /// `SET ROLE name`: the session acts as `name` until `RESET ROLE` or `SET ROLE NONE`.
    /// Only a member of the role (or a superuser login) may (42501).
    pub(crate) async fn set_role(&self, txn: &Txn, role: Option<String>) -> SqlResult<()> {
        let Some(role) = role else {
            self.meta.set_role(None);
            return Ok(());
        };
        let read_ts = txn.read_ts()?;
        let login = self.meta.identity().user;
        let Some(_) = resolve(&self.db, Some(txn), read_ts, &role).await? else {
            return Err(SqlError::new(
                codes::INVALID_PARAMETER_VALUE,
                format!("role \"{role}\" does not exist"),
            ));
        };
        let login_acting =
            crate::catalog::grants::acting(&self.db, Some(txn), read_ts, &login).await?;
        if !login_acting.superuser
            && !crate::catalog::grants::is_member(&self.db, Some(txn), read_ts, &login, &role)
                .await?
        {
            return Err(SqlError::new(
                codes::INSUFFICIENT_PRIVILEGE,
                format!("permission denied to set role \"{role}\""),
            ));
        }
        self.meta.set_role(Some(role));
        Ok(())
    }
}

fn missing(name: &str) -> SqlError {
    SqlError::new(
        codes::UNDEFINED_OBJECT,
        format!("role \"{name}\" does not exist"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(sql: &str) -> Vec<Option<String>> {
        let Some(Ok(datafusion::sql::sqlparser::ast::Statement::Call(f))) = parse(sql) else {
            panic!("{sql} not read");
        };
        (0..4).map(|i| arg(&f, i)).collect()
    }

    #[test]
    fn memberships_are_read_and_object_grants_left_to_the_parser() {
        assert_eq!(
            args("GRANT readers, \"Writers\" TO alice, bob WITH ADMIN OPTION;"),
            vec![
                Some("grant".into()),
                Some("true".into()),
                Some("readers,Writers".into()),
                Some("alice,bob".into())
            ]
        );
        assert_eq!(
            args("revoke admin option for r from u cascade"),
            vec![
                Some("revoke".into()),
                Some("true".into()),
                Some("r".into()),
                Some("u".into())
            ]
        );
        assert!(parse("GRANT SELECT ON t TO u").is_none());
        assert!(parse("SELECT 1").is_none());
        assert!(matches!(parse("GRANT r"), Some(Err(_))));
    }
}
