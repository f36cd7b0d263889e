//! The PostgreSQL type a result column goes on the wire as.
//!
//! Arrow types map through arrow-pg; columns weft stores as Utf8 but PostgreSQL types
//! differently (uuid, json, jsonb, varchar, bpchar) carry their type in field metadata, as
//! do the elements of a uuid[].

use std::sync::Arc;

use arrow::datatypes::{DataType, Field};
use postgres_types::Type;

use crate::error::{SqlError, SqlResult};
use weft_engine::types::PG_TYPE_KEY;

/// The wire type of a column that weft stores as Utf8 but PostgreSQL types differently.
pub fn override_type(field: &Field) -> Option<Type> {
    if let DataType::List(elem) = field.data_type() {
        // An array of uuids: its elements carry the type.
        if elem.metadata().get(PG_TYPE_KEY).map(String::as_str) == Some("uuid") {
            return Some(Type::UUID_ARRAY);
        }
    }
    match field.metadata().get(PG_TYPE_KEY)?.as_str() {
        "uuid" => Some(Type::UUID),
        "json" => Some(Type::JSON),
        "jsonb" => Some(Type::JSONB),
        "varchar" => Some(Type::VARCHAR),
        "bpchar" => Some(Type::BPCHAR),
        "int2vector" => Some(Type::INT2_VECTOR),
        "oidvector" => Some(Type::OID_VECTOR),
        "oid[]" => Some(Type::OID_ARRAY),
        _ => None,
    }
}

/// The PostgreSQL type of a column with this field.
/// XX000 for an Arrow type PostgreSQL has no type for.
pub fn pg_type_of(field: &Field) -> SqlResult<Type> {
    if let Some(t) = override_type(field) {
        return Ok(t);
    }
    arrow_pg::datatypes::field_into_pg_type(&Arc::new(field.clone()))
        .map_err(|_| SqlError::internal(format!("Unsupported Datatype {}", field.data_type())))
}
