//! System tables whose rows are a name and its definition as JSON, keyed by the name: the
//! sequences ([`crate::catalog::sequences`]), the roles ([`crate::catalog::roles`]) and the
//! views ([`crate::catalog::views`]). Their schema is the
//! catalog's ([`weft_engine::schema::catalog_schema`]).

use std::sync::Arc;

use datafusion::scalar::ScalarValue;
use serde::de::DeserializeOwned;
use serde::Serialize;
use weft_engine::key::catalog_key;
use weft_engine::schema::catalog_schema;
use weft_engine::Timestamp;

use crate::catalog::db::Db;
use crate::catalog::txn::Txn;
use crate::error::{SqlError, SqlResult};

/// A row's definition; `what` names the table in errors.
pub fn parse<T: DeserializeOwned>(row: &[ScalarValue], what: &str) -> SqlResult<T> {
    match row.get(1) {
        Some(ScalarValue::Utf8(Some(json))) => serde_json::from_str(json)
            .map_err(|e| SqlError::internal(format!("bad {what} definition: {e}"))),
        _ => Err(SqlError::internal(format!("malformed {what} row"))),
    }
}

/// Writes `name`'s definition (or drops it, with `None`) in a transaction. DDL on the same
/// name conflicts through `conflict_key`.
pub fn put<T: Serialize>(
    db: &Db,
    txn: &mut Txn,
    table_id: u64,
    conflict_key: Vec<u8>,
    name: &str,
    def: Option<&T>,
) -> SqlResult<()> {
    let row = def
        .map(|d| {
            serde_json::to_string(d)
                .map(|json| {
                    Arc::new(vec![
                        ScalarValue::Utf8(Some(name.to_string())),
                        ScalarValue::Utf8(Some(json)),
                    ])
                })
                .map_err(|e| SqlError::internal(format!("a definition of {name}: {e}")))
        })
        .transpose()?;
    txn.schema_keys.insert(conflict_key);
    txn.put(
        &db.limits,
        table_id,
        &catalog_schema(),
        catalog_key(name),
        row,
    )
}

/// `name`'s definition as of `read_ts`, seeing the transaction's own writes.
pub async fn lookup<T: DeserializeOwned>(
    db: &Db,
    txn: Option<&Txn>,
    table_id: u64,
    read_ts: Timestamp,
    name: &str,
    what: &str,
) -> SqlResult<Option<T>> {
    let key = catalog_key(name);
    if let Some(own) = txn.and_then(|t| t.own_write(table_id, &key)) {
        return own.map(|r| parse(&r, what)).transpose();
    }
    let read = async { Ok(db.storage.get(table_id, &key, read_ts).await?) };
    match db
        .catalog_rows
        .get(&*db.storage, table_id, &key, read_ts, read)
        .await?
    {
        Some(r) => Ok(Some(parse(&r, what)?)),
        None => Ok(None),
    }
}

/// Every definition as of `read_ts`, seeing the overlay of a transaction's own writes, in
/// name order.
pub async fn list<T: DeserializeOwned>(
    db: &Db,
    table_id: u64,
    read_ts: Timestamp,
    overlay: Option<&weft_engine::provider::Overlay>,
    what: &str,
) -> SqlResult<Vec<T>> {
    let mut rows: std::collections::BTreeMap<Vec<u8>, Option<Arc<weft_engine::Row>>> = db
        .storage
        .scan(table_id, catalog_schema(), read_ts)
        .await?
        .into_iter()
        .map(|(k, r)| (k, Some(r)))
        .collect();
    if let Some(o) = overlay {
        for (k, v) in o {
            rows.insert(k.clone(), v.clone());
        }
    }
    rows.into_values()
        .flatten()
        .map(|r| parse(&r, what))
        .collect()
}
