//! Object ids: the namespaces, the bootstrap role, the database, access methods, and the
//! oids of a table's row type, primary-key index and constraint (stable: a table's oid is
//! stored in its definition); PostgreSQL's type oids and their array types.

use weft_engine::schema::TableDef;
use weft_engine::types::SqlType;

pub const PG_CATALOG: &str = "pg_catalog";
pub const INFORMATION_SCHEMA: &str = "information_schema";

/// PostgreSQL's fixed namespace oids (and information_schema's in a PostgreSQL 15 cluster).
pub const NS_PG_CATALOG: i32 = 11;
pub const NS_PG_TOAST: i32 = 99;
pub const NS_PUBLIC: i32 = 2200;
pub const NS_INFORMATION_SCHEMA: i32 = 13183;
/// The bootstrap superuser's oid, which owns every object.
pub const BOOTSTRAP_ROLE: i32 = 10;
use crate::catalog::roles::BOOTSTRAP_ROLE_NAME;
/// The one database's oid.
pub const DATABASE_OID: i32 = 5;
pub const HEAP_AM: i32 = 2;
pub const BTREE_AM: i32 = 403;

/// The name of a role oid, as `pg_get_userbyid` prints it.
pub fn role_name(oid: i32) -> String {
    match oid {
        BOOTSTRAP_ROLE => BOOTSTRAP_ROLE_NAME.to_string(),
        6171 => "pg_database_owner".to_string(),
        _ => format!("unknown (OID={oid})"),
    }
}

pub(crate) fn table_oid(t: &TableDef) -> i32 {
    t.oid() as i32
}
pub(crate) fn rowtype_oid(t: &TableDef) -> i32 {
    t.oid() as i32 + 1
}
pub(crate) fn pkey_index_oid(t: &TableDef) -> i32 {
    t.oid() as i32 + 2
}
pub(crate) fn pkey_constraint_oid(t: &TableDef) -> i32 {
    t.oid() as i32 + 3
}
pub(crate) fn pkey_name(t: &TableDef) -> String {
    t.pkey_name()
}

/// How PostgreSQL describes a type in pg_attribute: (type oid, typmod, length, by value,
/// alignment, storage, collation).
pub(crate) struct PgTypeInfo {
    pub(crate) oid: i32,
    pub(crate) typmod: i32,
    pub(crate) len: i16,
    pub(crate) byval: bool,
    pub(crate) align: &'static str,
    pub(crate) storage: &'static str,
    pub(crate) collation: i32,
}

pub(crate) fn type_info(ty: &SqlType) -> PgTypeInfo {
    let t = |oid, len, byval, align, storage| PgTypeInfo {
        oid,
        typmod: -1,
        len,
        byval,
        align,
        storage,
        collation: 0,
    };
    match ty {
        SqlType::SmallInt => t(21, 2, true, "s", "p"),
        SqlType::Integer => t(23, 4, true, "i", "p"),
        SqlType::BigInt => t(20, 8, true, "d", "p"),
        SqlType::Real => t(700, 4, true, "i", "p"),
        SqlType::Double => t(701, 8, true, "d", "p"),
        SqlType::Numeric { precision, scale } => PgTypeInfo {
            typmod: ((*precision as i32) << 16 | (*scale as i32 & 0xffff)) + 4,
            ..t(1700, -1, false, "i", "m")
        },
        SqlType::Text => PgTypeInfo {
            collation: 100,
            ..t(25, -1, false, "i", "x")
        },
        SqlType::Varchar { max_chars } => PgTypeInfo {
            typmod: max_chars.map(|n| n as i32 + 4).unwrap_or(-1),
            collation: 100,
            ..t(1043, -1, false, "i", "x")
        },
        SqlType::Char { chars } => PgTypeInfo {
            typmod: *chars as i32 + 4,
            collation: 100,
            ..t(1042, -1, false, "i", "x")
        },
        SqlType::Boolean => t(16, 1, true, "c", "p"),
        SqlType::Bytea => t(17, -1, false, "i", "x"),
        SqlType::Date => t(1082, 4, true, "i", "p"),
        SqlType::Timestamp => t(1114, 8, true, "d", "p"),
        SqlType::Timestamptz => t(1184, 8, true, "d", "p"),
        SqlType::Uuid => t(2950, 16, false, "c", "p"),
        SqlType::Json => t(114, -1, false, "i", "x"),
        SqlType::Jsonb => t(3802, -1, false, "i", "x"),
        SqlType::Array(elem) => PgTypeInfo {
            typmod: type_info(elem).typmod,
            collation: type_info(elem).collation,
            ..t(
                array_oid(elem),
                -1,
                false,
                if matches!(
                    **elem,
                    SqlType::BigInt | SqlType::Double | SqlType::Timestamp | SqlType::Timestamptz
                ) {
                    "d"
                } else {
                    "i"
                },
                "x",
            )
        },
    }
}

/// The oid of the default btree operator class of a type (pg_opclass), as an index's
/// `indclass` lists it.
pub(crate) fn btree_opclass(ty: &SqlType) -> i32 {
    match ty {
        SqlType::SmallInt => 1979,
        SqlType::Integer => 1978,
        SqlType::BigInt => 3124,
        SqlType::Real => 1970,
        SqlType::Double => 1971,
        SqlType::Numeric { .. } => 3125,
        SqlType::Text | SqlType::Varchar { .. } => 3126,
        SqlType::Char { .. } => 426,
        SqlType::Boolean => 424,
        SqlType::Bytea => 428,
        SqlType::Date => 3122,
        SqlType::Timestamp => 3128,
        SqlType::Timestamptz => 3127,
        SqlType::Uuid => 2968,
        SqlType::Json | SqlType::Jsonb => 4033,
        SqlType::Array(_) => 397,
    }
}

/// The oid of the array type whose elements are `elem` (`integer[]` is 1007).
pub(crate) fn array_oid(elem: &SqlType) -> i32 {
    match elem {
        SqlType::SmallInt => 1005,
        SqlType::Integer => 1007,
        SqlType::BigInt => 1016,
        SqlType::Real => 1021,
        SqlType::Double => 1022,
        SqlType::Numeric { .. } => 1231,
        SqlType::Text => 1009,
        SqlType::Varchar { .. } => 1015,
        SqlType::Char { .. } => 1014,
        SqlType::Boolean => 1000,
        SqlType::Bytea => 1001,
        SqlType::Date => 1182,
        SqlType::Timestamp => 1115,
        SqlType::Timestamptz => 1185,
        SqlType::Uuid => 2951,
        SqlType::Json => 199,
        SqlType::Jsonb => 3807,
        SqlType::Array(inner) => array_oid(inner),
    }
}
