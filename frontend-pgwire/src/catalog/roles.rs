//! Roles: rows of the role table ([`ROLE_TABLE_ID`]) written by `CREATE USER|ROLE` and
//! `ALTER USER|ROLE ... PASSWORD` in an ordinary transaction, so every node sees them once
//! committed. Roles configured at start ([`crate::catalog::auth::AuthConfig`]) live in
//! memory and take precedence. The statements are `crate::sql::role_ddl`'s; the password
//! exchange is `crate::wire::auth`'s.

use serde::{Deserialize, Serialize};
use weft_engine::key::catalog_key;
use weft_engine::schema::ROLE_TABLE_ID;
use weft_engine::Timestamp;

use crate::catalog::auth::ScramSecret;
use crate::catalog::db::Db;
use crate::catalog::txn::Txn;
use crate::error::SqlResult;

/// The role every cluster has, a superuser (PostgreSQL's bootstrap superuser).
pub const BOOTSTRAP_ROLE_NAME: &str = "postgres";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RoleDef {
    pub name: String,
    pub login: bool,
    pub superuser: bool,
    pub password: Option<ScramSecret>,
    /// CREATEROLE: may create, alter and drop roles that are not superusers.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub createrole: bool,
    /// CREATEDB: may create databases.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub createdb: bool,
    /// NOINHERIT turns this off: the role then uses the privileges of the roles it is a
    /// member of only after `SET ROLE`.
    #[serde(default = "yes", skip_serializing_if = "is_true")]
    pub inherit: bool,
    /// The roles this one is a member of (`GRANT role TO this`), PostgreSQL's
    /// `pg_auth_members` rows whose member it is.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub member_of: Vec<Membership>,
}

fn yes() -> bool {
    true
}

fn is_true(b: &bool) -> bool {
    *b
}

/// Membership in a role: `GRANT role TO member [WITH ADMIN OPTION]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Membership {
    pub role: String,
    pub admin: bool,
    pub grantor: String,
}

impl RoleDef {
    /// A role as `CREATE ROLE name` makes it: no login, no attributes, no password.
    pub fn new(name: &str) -> RoleDef {
        RoleDef {
            name: name.to_string(),
            login: false,
            superuser: false,
            password: None,
            createrole: false,
            createdb: false,
            inherit: true,
            member_of: Vec::new(),
        }
    }

    /// A superuser that logs in (the bootstrap role, and roles configured at start).
    pub fn superuser(name: &str) -> RoleDef {
        RoleDef {
            login: true,
            superuser: true,
            createrole: true,
            createdb: true,
            ..RoleDef::new(name)
        }
    }
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
    let mut roles = vec![RoleDef::superuser(BOOTSTRAP_ROLE_NAME)];
    let auth = db.auth();
    let mut configured: Vec<&String> = auth.users.keys().collect();
    configured.sort();
    roles.extend(configured.into_iter().map(|n| RoleDef::superuser(n)));
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
    Ok(name == BOOTSTRAP_ROLE_NAME
        || db.auth().users.contains_key(name)
        || lookup(db, txn, read_ts, name).await?.is_some())
}

/// A role as of `read_ts` wherever it is defined: a created role (or a stored row of the
/// bootstrap role), else the bootstrap superuser or a role configured at start.
pub async fn resolve(
    db: &Db,
    txn: Option<&Txn>,
    read_ts: Timestamp,
    name: &str,
) -> SqlResult<Option<RoleDef>> {
    if db.auth().users.contains_key(name) {
        return Ok(Some(RoleDef::superuser(name)));
    }
    let stored = lookup(db, txn, read_ts, name).await?;
    Ok(match stored {
        // The bootstrap role stays a superuser whatever its row says (as in PostgreSQL,
        // where it cannot lose the attribute).
        Some(d) if name == BOOTSTRAP_ROLE_NAME => Some(RoleDef {
            superuser: true,
            ..d
        }),
        None if name == BOOTSTRAP_ROLE_NAME => Some(RoleDef::superuser(name)),
        other => other,
    })
}

/// Whether `name` is a superuser without reading the catalog: the bootstrap role and the
/// roles configured at start always are.
pub fn always_superuser(db: &Db, name: &str) -> bool {
    name == BOOTSTRAP_ROLE_NAME || db.auth().users.contains_key(name)
}

/// Rewrites every role whose password is still in the old stored form (the salted
/// password, enough to log in with) as a SCRAM verifier, in one transaction. Returns how
/// many were rewritten. Run at start; the old versions leave the history with the
/// version retention, as every overwritten row does.
pub async fn migrate_legacy_secrets(db: &Db) -> SqlResult<usize> {
    let mut txn = Txn::new(false, crate::catalog::txn::Isolation::RepeatableRead, false);
    let read_ts = txn.snapshot(&*db.adjudicator, &*db.storage);
    let schema = weft_engine::schema::catalog_schema();
    let mut rewritten = 0;
    for (_, row) in db.storage.scan(ROLE_TABLE_ID, schema, read_ts).await? {
        let r: RoleDef = crate::catalog::systable::parse(&row, "role")?;
        if r.password.as_ref().is_some_and(|p| p.legacy) {
            put(db, &mut txn, &r.name.clone(), Some(&r))?;
            rewritten += 1;
        }
    }
    if rewritten > 0 {
        db.adjudicator
            .commit(txn.into_commit_request())
            .await
            .map_err(crate::error::SqlError::from)?;
    }
    Ok(rewritten)
}
