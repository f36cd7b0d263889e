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
    /// `CREATE USER|ROLE name [WITH] [LOGIN|NOLOGIN] [SUPERUSER] [CREATEROLE] [CREATEDB]
    /// [INHERIT|NOINHERIT] [PASSWORD 'x' | NULL] [IN ROLE r, ...] [ROLE m, ...] [ADMIN m,
    /// ...]`. `CREATE USER` implies LOGIN, as in PostgreSQL. REPLICATION, BYPASSRLS,
    /// CONNECTION LIMIT and VALID UNTIL are accepted and have no effect.
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
            let mut def = RoleDef {
                login: cr.login.unwrap_or(false),
                superuser: cr.superuser.unwrap_or(false),
                password: password.clone(),
                createrole: cr.create_role.unwrap_or(false),
                createdb: cr.create_db.unwrap_or(false),
                inherit: cr.inherit.unwrap_or(true),
                ..RoleDef::new(&name)
            };
            let grantor = self.meta.current_role();
            // IN ROLE r: the new role is a member of r.
            for r in cr.in_role.iter().chain(&cr.in_group) {
                let r = ident_name(r);
                if !exists(&self.db, Some(txn), read_ts, &r).await? {
                    return Err(missing(&r));
                }
                def.member_of.push(crate::catalog::roles::Membership {
                    role: r,
                    admin: false,
                    grantor: grantor.clone(),
                });
            }
            put(&self.db, txn, &name, Some(&def))?;
            // ROLE m / ADMIN m: m becomes a member of the new role (with the admin option).
            let members = cr
                .role
                .iter()
                .chain(&cr.user)
                .map(|m| (m, false))
                .chain(cr.admin.iter().map(|m| (m, true)));
            for (m, admin) in members {
                let m = ident_name(m);
                let Some(mut member) =
                    crate::catalog::roles::resolve(&self.db, Some(txn), read_ts, &m).await?
                else {
                    return Err(missing(&m));
                };
                member.member_of.push(crate::catalog::roles::Membership {
                    role: name.clone(),
                    admin,
                    grantor: grantor.clone(),
                });
                put(&self.db, txn, &m, Some(&member))?;
            }
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
            None if name == BOOTSTRAP_ROLE_NAME => RoleDef::superuser(&name),
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
                RoleOption::SuperUser(b) => {
                    if name == BOOTSTRAP_ROLE_NAME && !*b {
                        return Err(SqlError::new(
                            codes::INSUFFICIENT_PRIVILEGE,
                            "permission denied: bootstrap user must be superuser",
                        ));
                    }
                    def.superuser = *b
                }
                RoleOption::CreateRole(b) => def.createrole = *b,
                RoleOption::CreateDB(b) => def.createdb = *b,
                RoleOption::Inherit(b) => def.inherit = *b,
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
            if let Some(what) = self.depends_on_role(txn, &name).await? {
                return Err(SqlError::new(
                    "2BP01",
                    format!("role \"{name}\" cannot be dropped because some objects depend on it"),
                )
                .with_detail(what));
            }
            put(&self.db, txn, &name, None)?;
            // Memberships in it go with it.
            for mut r in crate::catalog::roles::list(&self.db, read_ts).await? {
                if r.member_of.iter().any(|m| m.role == name) {
                    r.member_of.retain(|m| m.role != name);
                    let member = r.name.clone();
                    put(&self.db, txn, &member, Some(&r))?;
                }
            }
        }
        Ok(Outcome::Command(CommandTag::new("DROP ROLE")))
    }
}

impl Executor {
    /// What in the session's database names role `name` as owner or in an ACL, as
    /// PostgreSQL's detail line says it (`owner of table t`); `None` when nothing does.
    async fn depends_on_role(&self, txn: &Txn, name: &str) -> SqlResult<Option<String>> {
        let read_ts = txn.read_ts()?;
        let named = |owner: Option<&String>, acl: Option<&Vec<String>>| -> (bool, bool) {
            let owns = owner.is_some_and(|o| o == name);
            let granted = acl.is_some_and(|a| {
                a.iter().any(|i| {
                    crate::catalog::acl::AclItem::parse(i)
                        .is_ok_and(|i| i.grantee == name || i.grantor == name)
                })
            });
            (owns, granted)
        };
        let mut lines = Vec::new();
        let mut note = |noun: &str, key: &str, (owns, granted): (bool, bool)| {
            let bare = weft_engine::schema::split_relation(key).1;
            if owns {
                lines.push(format!("owner of {noun} {bare}"));
            } else if granted {
                lines.push(format!("privileges for {noun} {bare}"));
            }
        };
        let catalog = txn.overlay(txn.database.catalog);
        for t in self
            .db
            .list_tables(txn.database, read_ts, catalog.as_deref())
            .await?
            .iter()
        {
            note("table", &t.name, named(t.owner.as_ref(), t.acl.as_ref()));
        }
        let views = txn.overlay(txn.database.views);
        for v in
            crate::catalog::views::list(&self.db, txn.database, read_ts, views.as_deref()).await?
        {
            note("view", &v.name, named(v.owner.as_ref(), v.acl.as_ref()));
        }
        let seqs = txn.overlay(txn.database.sequences);
        for q in crate::catalog::sequences::list(&self.db, txn.database, read_ts, seqs.as_deref())
            .await?
        {
            note("sequence", &q.name, named(q.owner.as_ref(), q.acl.as_ref()));
        }
        let schemas = txn.overlay(txn.database.schemas());
        for s in crate::catalog::schemas::list(&self.db, txn.database, read_ts, schemas.as_deref())
            .await?
        {
            let owns = s.owner == name;
            note("schema", &s.name, (owns, named(None, s.acl.as_ref()).1));
        }
        Ok((!lines.is_empty()).then(|| lines.join("\n")))
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
