//! Roles and password authentication.
//!
//! A role is a row of the role table ([`ROLE_TABLE_ID`]) written by `CREATE USER|ROLE` and
//! `ALTER USER|ROLE ... PASSWORD` in an ordinary transaction, so every node sees it once
//! committed. Roles can also be configured at start (`--user NAME:PASSWORD`); those live
//! in memory and take precedence.
//!
//! Passwords are kept as SCRAM-SHA-256 secrets: a random salt and the salted password
//! (PBKDF2-HMAC-SHA-256, 4096 iterations, PostgreSQL's default). The salted password is
//! what SCRAM's server side needs to check a proof; like PostgreSQL's stored keys it is a
//! password equivalent for SCRAM logins, so the data directory is to be protected as a
//! PostgreSQL one is. The cleartext password is never stored.
//!
//! When a connection must authenticate is decided by [`AuthMode`]: by default loopback
//! connections are trusted and all others must give a password; `--auth scram` requires a
//! password from everyone; `--auth trust` from no one.

use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;
use pgwire::api::auth::{AuthSource, LoginInfo, Password};
use pgwire::error::{PgWireError, PgWireResult};
use serde::{Deserialize, Serialize};
use weft_engine::key::catalog_key;
use weft_engine::schema::ROLE_TABLE_ID;
use weft_engine::Timestamp;

use crate::catalog::db::Db;
use crate::error::{codes, SqlError, SqlResult};
use crate::catalog::txn::Txn;
use weft_engine::storage::segment::{hex, unhex};

/// PBKDF2 iterations of every stored secret (PostgreSQL's `scram_iterations` default).
pub const SCRAM_ITERATIONS: usize = 4096;

/// Who must give a password.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AuthMode {
    /// Loopback connections are trusted; others authenticate with SCRAM-SHA-256.
    #[default]
    Default,
    /// Every connection authenticates with SCRAM-SHA-256.
    Scram,
    /// No connection authenticates (a trusted network).
    Trust,
}

impl AuthMode {
    pub fn parse(s: &str) -> Result<AuthMode, String> {
        match s {
            "default" | "loopback-trust" => Ok(AuthMode::Default),
            "scram" | "scram-sha-256" => Ok(AuthMode::Scram),
            "trust" => Ok(AuthMode::Trust),
            other => Err(format!(
                "unknown auth mode {other:?}: expected default, scram or trust"
            )),
        }
    }

    pub fn requires_password(self, peer: std::net::IpAddr) -> bool {
        match self {
            AuthMode::Trust => false,
            AuthMode::Scram => true,
            AuthMode::Default => !peer.is_loopback(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScramSecret {
    pub iterations: usize,
    /// Hex of the salt.
    pub salt: String,
    /// Hex of the salted password.
    pub salted_password: String,
}

impl ScramSecret {
    pub fn new(password: &str) -> ScramSecret {
        let salt: [u8; 16] = rand::random();
        let salted =
            pgwire::api::auth::sasl::scram::gen_salted_password(password, &salt, SCRAM_ITERATIONS);
        ScramSecret {
            iterations: SCRAM_ITERATIONS,
            salt: hex(&salt),
            salted_password: hex(&salted),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RoleDef {
    pub name: String,
    pub login: bool,
    pub superuser: bool,
    pub password: Option<ScramSecret>,
}

/// Writes a role (or drops it) in a transaction.
pub fn put(db: &Db, txn: &mut Txn, name: &str, def: Option<&RoleDef>) -> SqlResult<()> {
    // DDL on the same role conflicts (a prefix keeps it apart from table names).
    let conflict = catalog_key(&format!("\u{0}role:{name}"));
    crate::catalog::systable::put(db, txn, ROLE_TABLE_ID, conflict, name, def)
}

/// A role as of `read_ts`, seeing the transaction's own DDL.
pub async fn lookup(
    db: &Db,
    txn: Option<&Txn>,
    read_ts: Timestamp,
    name: &str,
) -> SqlResult<Option<RoleDef>> {
    crate::catalog::systable::lookup(db, txn, ROLE_TABLE_ID, read_ts, name, "role").await
}

/// Every role as of `read_ts`: the bootstrap superuser, those configured at start, then
/// those created, by name.
pub async fn list(db: &Db, read_ts: Timestamp) -> SqlResult<Vec<RoleDef>> {
    let mut roles = vec![RoleDef {
        name: crate::catalog::pgcatalog::BOOTSTRAP_ROLE_NAME.to_string(),
        login: true,
        superuser: true,
        password: None,
    }];
    let auth = db.auth();
    let mut configured: Vec<&String> = auth.users.keys().collect();
    configured.sort();
    roles.extend(configured.into_iter().map(|n| RoleDef {
        name: n.clone(),
        login: true,
        superuser: true,
        password: None,
    }));
    let schema = weft_engine::schema::catalog_schema();
    for (_, row) in db.storage.scan(ROLE_TABLE_ID, schema, read_ts).await? {
        let r: RoleDef = crate::catalog::systable::parse(&row, "role")?;
        if !roles.iter().any(|x| x.name == r.name) {
            roles.push(r);
        }
    }
    Ok(roles)
}

/// Whether a role exists (configured at start, the bootstrap superuser, or created).
pub async fn exists(db: &Db, txn: Option<&Txn>, read_ts: Timestamp, name: &str) -> SqlResult<bool> {
    Ok(name == crate::catalog::pgcatalog::BOOTSTRAP_ROLE_NAME
        || db.auth().users.contains_key(name)
        || lookup(db, txn, read_ts, name).await?.is_some())
}

/// The password of a role, for its SCRAM-SHA-256 exchange: a role configured at start
/// first, then the latest committed role definition.
pub struct WeftAuthSource {
    pub db: Arc<Db>,
}

impl std::fmt::Debug for WeftAuthSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("WeftAuthSource")
    }
}

fn bad_password(user: &str) -> PgWireError {
    PgWireError::InvalidPassword(user.to_string())
}

#[async_trait]
impl AuthSource for WeftAuthSource {
    async fn get_password(&self, login: &LoginInfo) -> PgWireResult<Password> {
        let user = login.user().unwrap_or_default().to_string();
        let secret = match self.db.auth().users.get(&user) {
            Some(s) => Some(s.clone()),
            None => {
                let read_ts = self.db.adjudicator.read_ts();
                match lookup(&self.db, None, read_ts, &user).await {
                    Ok(Some(role)) if role.login => role.password,
                    Ok(_) => None,
                    Err(e) => {
                        tracing::warn!(user, error = %e, "reading a role for authentication");
                        None
                    }
                }
            }
        };
        // A missing role and a wrong password look the same to the client, as in
        // PostgreSQL; SCRAM still runs to the end with a secret nobody knows.
        let Some(secret) = secret else {
            return Ok(Password::new(
                Some(rand::random::<[u8; 16]>().to_vec()),
                rand::random::<[u8; 32]>().to_vec(),
            ));
        };
        let (Some(salt), Some(salted)) = (unhex(&secret.salt), unhex(&secret.salted_password))
        else {
            return Err(bad_password(&user));
        };
        if secret.iterations != SCRAM_ITERATIONS {
            return Err(bad_password(&user));
        }
        Ok(Password::new(Some(salt), salted))
    }
}

/// Authentication as configured at start.
#[derive(Debug, Default)]
pub struct AuthConfig {
    pub mode: AuthMode,
    /// Roles configured at start (`--user NAME:PASSWORD`).
    pub users: HashMap<String, ScramSecret>,
}

impl AuthConfig {
    /// `NAME:PASSWORD` pairs.
    pub fn new(mode: AuthMode, users: &[String]) -> Result<AuthConfig, String> {
        let mut map = HashMap::new();
        for u in users {
            let Some((name, password)) = u.split_once(':') else {
                return Err(format!("--user {u:?}: expected NAME:PASSWORD"));
            };
            if name.is_empty() || password.is_empty() {
                return Err(format!("--user {u:?}: name and password must not be empty"));
            }
            map.insert(name.to_string(), ScramSecret::new(password));
        }
        Ok(AuthConfig { mode, users: map })
    }
}

/// The password of `CREATE|ALTER ROLE ... PASSWORD 'x'`: a SCRAM secret made here, or
/// none for `PASSWORD NULL`. Hashes made elsewhere cannot be used by weft's SCRAM.
pub fn password_secret(
    p: &datafusion::sql::sqlparser::ast::Password,
) -> SqlResult<Option<ScramSecret>> {
    use datafusion::sql::sqlparser::ast::{Expr, Password as P, Value};
    match p {
        P::NullPassword => Ok(None),
        P::Password(Expr::Value(v)) => match &v.value {
            Value::SingleQuotedString(s) | Value::EscapedStringLiteral(s) => {
                if s.starts_with("SCRAM-SHA-256$") || (s.len() == 35 && s.starts_with("md5")) {
                    return Err(SqlError::unsupported(
                        "passwords given as hashes are not supported: give the password itself",
                    ));
                }
                if s.is_empty() {
                    return Ok(None);
                }
                Ok(Some(ScramSecret::new(s)))
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

use crate::sql::exec::{ident_name, Executor, Notice, Outcome};
use datafusion::sql::sqlparser::ast::{self, RoleOption};
use pgwire::api::results::Tag;

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
        let read_ts = txn.read_ts.unwrap_or(0);
        let password = cr
            .password
            .as_ref()
            .map(password_secret)
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
        Ok(Outcome::Command(Tag::new("CREATE ROLE")))
    }

    /// `ALTER USER|ROLE name [WITH] PASSWORD 'x' | LOGIN | NOLOGIN | ...`.
    pub async fn alter_role(
        &self,
        txn: &mut Txn,
        name: &ast::Ident,
        op: &ast::AlterRoleOperation,
    ) -> SqlResult<Outcome> {
        let name = ident_name(name);
        let read_ts = txn.read_ts.unwrap_or(0);
        let ast::AlterRoleOperation::WithOptions { options } = op else {
            return Err(SqlError::unsupported(
                "ALTER ROLE supports only [WITH] options (PASSWORD, LOGIN, SUPERUSER, ...)",
            ));
        };
        let mut def = match lookup(&self.db, Some(txn), read_ts, &name).await? {
            Some(d) => d,
            None if name == crate::catalog::pgcatalog::BOOTSTRAP_ROLE_NAME => RoleDef {
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
                RoleOption::Password(p) => def.password = password_secret(p)?,
                RoleOption::Login(b) => def.login = *b,
                RoleOption::SuperUser(b) => def.superuser = *b,
                _ => {}
            }
        }
        put(&self.db, txn, &name, Some(&def))?;
        Ok(Outcome::Command(Tag::new("ALTER ROLE")))
    }

    /// `DROP USER|ROLE [IF EXISTS] name, ...`.
    pub async fn drop_roles(
        &self,
        txn: &mut Txn,
        names: &[ast::ObjectName],
        if_exists: bool,
        notices: &mut Vec<Notice>,
    ) -> SqlResult<Outcome> {
        let read_ts = txn.read_ts.unwrap_or(0);
        for n in names {
            let name = role_name(n)?;
            if name == crate::catalog::pgcatalog::BOOTSTRAP_ROLE_NAME {
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
        Ok(Outcome::Command(Tag::new("DROP ROLE")))
    }
}
