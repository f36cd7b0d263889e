//! Databases: rows of the cluster's database table ([`DATABASE_TABLE_ID`]), written by
//! `CREATE DATABASE` and `DROP DATABASE` (`crate::sql::database_ddl`). Each database has
//! system tables of its own ([`DatabaseTables`]): its tables, sequences and views are
//! apart from every other database's, as PostgreSQL's databases are. Roles are the
//! cluster's. The default database, `postgres`, is not stored: it always exists and owns
//! the fixed system table ids.
//!
//! A connection's `dbname` selects its database at startup (3D000 when there is none).

use serde::{Deserialize, Serialize};
use weft_engine::key::catalog_key;
use weft_engine::schema::{DatabaseTables, DATABASE_TABLE_ID};
use weft_engine::Timestamp;

use crate::catalog::db::Db;
use crate::catalog::txn::Txn;
use crate::error::SqlResult;

/// The database every cluster has, which holds what was made before any other existed.
pub const DEFAULT_DATABASE: &str = "postgres";
/// The default database's oid (PostgreSQL's for `postgres` in a fresh cluster).
pub const DEFAULT_DATABASE_OID: i32 = crate::catalog::oids::DATABASE_OID;
/// Databases at most, besides the default one: each lists its sessions and system tables.
pub const DATABASES_MAX: usize = 4096;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DatabaseDef {
    pub name: String,
    pub oid: i32,
    pub tables: DatabaseTables,
    /// The database's ACL in `aclitem` text form (`None`: the default, CONNECT and
    /// TEMPORARY for PUBLIC). The default database gets a row once GRANT changes it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acl: Option<Vec<String>>,
}

/// The default database.
pub fn default_database() -> DatabaseDef {
    DatabaseDef {
        name: DEFAULT_DATABASE.into(),
        oid: DEFAULT_DATABASE_OID,
        tables: DatabaseTables::DEFAULT,
        acl: None,
    }
}

/// Writes a database (or drops it) in a transaction.
pub fn put(db: &Db, txn: &mut Txn, name: &str, def: Option<&DatabaseDef>) -> SqlResult<()> {
    let conflict = catalog_key(&format!("\u{0}database:{name}"));
    crate::catalog::systable::put(db, txn, DATABASE_TABLE_ID, conflict, name, def)
}

/// A database as of `read_ts`, seeing the transaction's own DDL.
pub async fn lookup(
    db: &Db,
    txn: Option<&Txn>,
    read_ts: Timestamp,
    name: &str,
) -> SqlResult<Option<DatabaseDef>> {
    let stored =
        crate::catalog::systable::lookup(db, txn, DATABASE_TABLE_ID, read_ts, name, "database")
            .await?;
    if name == DEFAULT_DATABASE {
        // Its row, when there is one, holds only the ACL GRANT gave it.
        return Ok(Some(DatabaseDef {
            acl: stored.and_then(|d: DatabaseDef| d.acl),
            ..default_database()
        }));
    }
    Ok(stored)
}

/// Every database as of `read_ts`, the default one first.
pub async fn list(db: &Db, read_ts: Timestamp) -> SqlResult<Vec<DatabaseDef>> {
    let mut out = vec![default_database()];
    for d in crate::catalog::systable::list::<DatabaseDef>(
        db,
        DATABASE_TABLE_ID,
        read_ts,
        None,
        "database",
    )
    .await?
    {
        if d.name == DEFAULT_DATABASE {
            out[0].acl = d.acl;
        } else {
            out.push(d);
        }
    }
    Ok(out)
}
