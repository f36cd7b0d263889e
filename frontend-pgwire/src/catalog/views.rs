//! Views: a row of the view table ([`VIEW_TABLE_ID`]) per view, holding its query as SQL
//! text, its columns and the relations the query reads. A statement that names a view reads
//! its query in its place (`crate::sql::view_expand`), planned at the statement's own read
//! timestamp, as PostgreSQL's rewriter substitutes a view's query.

use serde::{Deserialize, Serialize};
use weft_engine::key::catalog_key;
use weft_engine::schema::DatabaseTables;
use weft_engine::types::SqlType;
use weft_engine::Timestamp;

use crate::catalog::db::Db;
use crate::catalog::txn::Txn;
use crate::error::SqlResult;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ViewDef {
    pub name: String,
    pub oid: u32,
    /// The query, as SQL text (what `pg_get_viewdef` prints).
    pub query: String,
    /// The view's columns: their names (the column list's, else the query's) and types.
    pub columns: Vec<(String, SqlType)>,
    /// The tables and views the query reads, by name: they cannot be dropped while it does.
    pub reads: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    /// The owning role (`None`: the bootstrap superuser); the tables the view reads are
    /// read with its privileges.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
    /// The view's ACL in `aclitem` text form (`None`: the owner's default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acl: Option<Vec<String>>,
}

/// DDL on a view conflicts with DDL on a table or sequence of the same name.
fn view_schema_key(name: &str) -> Vec<u8> {
    catalog_key(name)
}

/// Writes a view's definition (or drops it) in a transaction.
pub fn put(db: &Db, txn: &mut Txn, name: &str, def: Option<&ViewDef>) -> SqlResult<()> {
    let table = txn.database.views;
    crate::catalog::systable::put(db, txn, table, view_schema_key(name), name, def)
}

/// A view as of `read_ts`, seeing the transaction's own DDL.
pub async fn lookup(
    db: &Db,
    tables: DatabaseTables,
    txn: Option<&Txn>,
    read_ts: Timestamp,
    name: &str,
) -> SqlResult<Option<ViewDef>> {
    crate::catalog::systable::lookup(db, txn, tables.views, read_ts, name, "view").await
}

/// Every view as of `read_ts`, seeing the overlay of a transaction's own DDL.
pub async fn list(
    db: &Db,
    tables: DatabaseTables,
    read_ts: Timestamp,
    overlay: Option<&weft_engine::provider::Overlay>,
) -> SqlResult<Vec<ViewDef>> {
    crate::catalog::systable::list(db, tables.views, read_ts, overlay, "view").await
}
