//! Schemas: a row of the database's schema table ([`DatabaseTables::schemas`]) per schema
//! made with `CREATE SCHEMA`, holding its object id. `public`, `pg_catalog` and
//! `information_schema` always exist and are not stored.
//!
//! A relation in a schema is keyed by its relation key
//! ([`weft_engine::schema::relation_key`]): `schema.name`, or the bare name in `public`.

use serde::{Deserialize, Serialize};
use weft_engine::key::catalog_key;
use weft_engine::schema::{DatabaseTables, PUBLIC_SCHEMA};
use weft_engine::Timestamp;

use crate::catalog::db::Db;
use crate::catalog::oids::{
    INFORMATION_SCHEMA, NS_INFORMATION_SCHEMA, NS_PG_CATALOG, NS_PUBLIC, PG_CATALOG,
};
use crate::catalog::txn::Txn;
use crate::error::SqlResult;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SchemaDef {
    pub name: String,
    pub oid: u32,
    /// The owning role's name (`CREATE SCHEMA s AUTHORIZATION r`, else its creator).
    pub owner: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    /// The schema's ACL in `aclitem` text form; `None` is the default (the owner's USAGE
    /// and CREATE).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acl: Option<Vec<String>>,
}

/// The schemas every database has, with their oids.
pub const BUILT_IN: [(&str, i32); 3] = [
    (PG_CATALOG, NS_PG_CATALOG),
    (PUBLIC_SCHEMA, NS_PUBLIC),
    (INFORMATION_SCHEMA, NS_INFORMATION_SCHEMA),
];

/// Whether `name` is a schema every database has.
pub fn is_built_in(name: &str) -> bool {
    BUILT_IN.iter().any(|(n, _)| *n == name)
}

/// DDL on a schema conflicts with other DDL on the same schema, and with making a relation
/// in it (so a relation cannot be made in a schema a concurrent transaction drops).
pub(crate) fn conflict_key(name: &str) -> Vec<u8> {
    catalog_key(&format!("\u{0}schema:{name}"))
}

/// Writes a schema (or drops it) in a transaction.
pub fn put(db: &Db, txn: &mut Txn, name: &str, def: Option<&SchemaDef>) -> SqlResult<()> {
    let table = txn.database.schemas();
    crate::catalog::systable::put(db, txn, table, conflict_key(name), name, def)
}

/// A schema made with `CREATE SCHEMA` as of `read_ts`, seeing the transaction's own DDL.
pub async fn lookup(
    db: &Db,
    tables: DatabaseTables,
    txn: Option<&Txn>,
    read_ts: Timestamp,
    name: &str,
) -> SqlResult<Option<SchemaDef>> {
    crate::catalog::systable::lookup(db, txn, tables.schemas(), read_ts, name, "schema").await
}

/// Whether schema `name` exists (built in, or made with `CREATE SCHEMA`).
pub async fn exists(
    db: &Db,
    tables: DatabaseTables,
    txn: Option<&Txn>,
    read_ts: Timestamp,
    name: &str,
) -> SqlResult<bool> {
    Ok(is_built_in(name) || lookup(db, tables, txn, read_ts, name).await?.is_some())
}

/// Every schema made with `CREATE SCHEMA` as of `read_ts`, seeing the overlay of a
/// transaction's own DDL, in name order.
pub async fn list(
    db: &Db,
    tables: DatabaseTables,
    read_ts: Timestamp,
    overlay: Option<&weft_engine::provider::Overlay>,
) -> SqlResult<Vec<SchemaDef>> {
    let mut all = list_rows(db, tables, read_ts, overlay).await?;
    // A built-in schema has a row only to hold its ACL once GRANT changed it.
    all.retain(|s| !is_built_in(&s.name));
    Ok(all)
}

/// Every schema row as of `read_ts`: those of `CREATE SCHEMA`, and those holding the ACLs
/// GRANT gave built-in schemas.
pub async fn list_rows(
    db: &Db,
    tables: DatabaseTables,
    read_ts: Timestamp,
    overlay: Option<&weft_engine::provider::Overlay>,
) -> SqlResult<Vec<SchemaDef>> {
    crate::catalog::systable::list(db, tables.schemas(), read_ts, overlay, "schema").await
}

/// Schema `name`'s owner and ACL (`None`: the owner's default), as of `read_ts`; `None`
/// when there is no such schema. `public` is owned by `pg_database_owner` and PUBLIC may
/// use it, as in PostgreSQL 15; the system schemas are the bootstrap superuser's and
/// PUBLIC may use them.
pub async fn acl_of(
    db: &Db,
    tables: DatabaseTables,
    txn: Option<&Txn>,
    read_ts: Timestamp,
    name: &str,
) -> SqlResult<Option<(String, Vec<crate::catalog::acl::AclItem>)>> {
    use crate::catalog::acl::{self, ObjectKind};
    let stored = lookup(db, tables, txn, read_ts, name).await?;
    let built_in_owner = match name {
        PUBLIC_SCHEMA => crate::catalog::grants::DATABASE_OWNER_ROLE,
        _ if is_built_in(name) => crate::catalog::roles::BOOTSTRAP_ROLE_NAME,
        _ => "",
    };
    let (owner, acl) = match stored {
        Some(d) => (
            d.owner.clone(),
            crate::catalog::grants::parse_acl(d.acl.as_ref())?,
        ),
        None if !built_in_owner.is_empty() => (built_in_owner.to_string(), None),
        None => return Ok(None),
    };
    let acl = match acl {
        Some(a) => a,
        None if !built_in_owner.is_empty() => {
            let mut a = acl::default_acl(ObjectKind::Schema, &owner);
            acl::grant(&mut a, "", &owner, acl::USAGE, false);
            a
        }
        None => acl::default_acl(ObjectKind::Schema, &owner),
    };
    Ok(Some((owner, acl)))
}

/// The oid of schema `name` among `made` (the snapshot's), if it exists.
pub fn oid_of(made: &[SchemaDef], name: &str) -> Option<i32> {
    BUILT_IN
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, oid)| *oid)
        .or_else(|| made.iter().find(|s| s.name == name).map(|s| s.oid as i32))
}

/// The name of schema `oid` among `made`, if it exists.
pub fn name_of(made: &[SchemaDef], oid: i32) -> Option<String> {
    BUILT_IN
        .iter()
        .find(|(_, o)| *o == oid)
        .map(|(n, _)| n.to_string())
        .or_else(|| {
            made.iter()
                .find(|s| s.oid as i32 == oid)
                .map(|s| s.name.clone())
        })
}

/// The names of a `search_path` value, in order, as they are written (`$user` kept):
/// unquoted names fold to lower case, quoted ones keep their case.
pub fn path_names(setting: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    let mut was_quoted = false;
    let mut chars = setting.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' if quoted && chars.peek() == Some(&'"') => {
                chars.next();
                cur.push('"');
            }
            '"' => {
                quoted = !quoted;
                was_quoted = true;
            }
            ',' if !quoted => {
                push_name(&mut out, &cur, was_quoted);
                cur.clear();
                was_quoted = false;
            }
            c if !quoted && c.is_whitespace() => {}
            c => cur.push(if quoted { c } else { c.to_ascii_lowercase() }),
        }
    }
    push_name(&mut out, &cur, was_quoted);
    out
}

fn push_name(out: &mut Vec<String>, name: &str, quoted: bool) {
    if !name.is_empty() || quoted {
        out.push(name.to_string());
    }
}

/// A name as PostgreSQL prints it in a setting: quoted unless it is a plain lower-case
/// identifier.
pub fn quote_if_needed(name: &str) -> String {
    let plain = !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        && !name.starts_with(|c: char| c.is_ascii_digit());
    if plain {
        name.to_string()
    } else {
        format!("\"{}\"", name.replace('"', "\"\""))
    }
}

/// The name of a relation key as SQL names it: `t`, or `s.t` (quoted where needed).
pub fn sql_name(key: &str) -> String {
    let (schema, name) = weft_engine::schema::split_relation(key);
    if schema == PUBLIC_SCHEMA {
        quote_if_needed(name)
    } else {
        format!("{}.{}", quote_if_needed(schema), quote_if_needed(name))
    }
}

/// The name of a relation key as PostgreSQL prints a relation (regclass, a foreign key's
/// table): bare when its schema is on the search path `path`, else qualified.
pub fn visible_name(key: &str, path: &[String]) -> String {
    let (schema, name) = weft_engine::schema::split_relation(key);
    if path.iter().any(|s| s == schema) {
        quote_if_needed(name)
    } else {
        format!("{}.{}", quote_if_needed(schema), quote_if_needed(name))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_names_fold_unquoted_names_and_keep_quoted_ones() {
        assert_eq!(path_names("\"$user\", public"), vec!["$user", "public"]);
        assert_eq!(path_names("A, \"B c\",d"), vec!["a", "B c", "d"]);
        assert_eq!(path_names(""), Vec::<String>::new());
        assert_eq!(path_names("\"\""), vec![""]);
        assert_eq!(path_names("\"a\"\"b\""), vec!["a\"b"]);
    }

    #[test]
    fn names_are_quoted_where_postgresql_quotes_them() {
        assert_eq!(quote_if_needed("public"), "public");
        assert_eq!(quote_if_needed("$user"), "\"$user\"");
        assert_eq!(quote_if_needed("My"), "\"My\"");
        assert_eq!(sql_name("s.t"), "s.t");
        assert_eq!(sql_name("t"), "t");
        assert_eq!(sql_name("S.t"), "\"S\".t");
        let path = vec!["app".to_string()];
        assert_eq!(visible_name("app.t", &path), "t");
        assert_eq!(visible_name("t", &path), "public.t");
        assert_eq!(visible_name("t", &[]), "public.t");
    }
}
