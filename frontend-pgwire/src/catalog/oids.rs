//! Object ids: the namespaces, the bootstrap role, the database, access methods, and the
//! oids of a table's row type, primary-key index and constraint (stable: a table's oid is
//! stored in its definition); PostgreSQL's type oids and their array types.

use weft_engine::schema::TableDef;
use weft_engine::types::SqlType;

pub const PG_CATALOG: &str = "pg_catalog";
pub const INFORMATION_SCHEMA: &str = "information_schema";

/// PostgreSQL's fixed namespace oids, and information_schema's as the bundled pg_catalog data
/// (pg_proc, pg_type) names it.
pub const NS_PG_CATALOG: i32 = 11;
pub const NS_PG_TOAST: i32 = 99;
pub const NS_PUBLIC: i32 = 2200;
pub const NS_INFORMATION_SCHEMA: i32 = 13283;
/// The bootstrap superuser's oid, which owns every object.
pub const BOOTSTRAP_ROLE: i32 = 10;
use crate::catalog::roles::BOOTSTRAP_ROLE_NAME;
/// The one database's oid.
pub const DATABASE_OID: i32 = 5;
pub const HEAP_AM: i32 = 2;
pub const BTREE_AM: i32 = 403;

/// The oid of `pg_database_owner`, which owns schema `public`.
pub const DATABASE_OWNER_ROLE: i32 = 6171;
/// The distance between the oids of roles made with CREATE ROLE.
const ROLE_OID_STEP: i32 = 16374;

/// The name of a role oid, as `pg_get_userbyid` prints it, among the roles `known` (in
/// [`crate::catalog::roles::list`]'s order, which fixes their oids).
pub fn role_name(known: &[crate::catalog::roles::RoleDef], oid: i32) -> String {
    match oid {
        BOOTSTRAP_ROLE => BOOTSTRAP_ROLE_NAME.to_string(),
        DATABASE_OWNER_ROLE => crate::catalog::grants::DATABASE_OWNER_ROLE.to_string(),
        _ => known
            .iter()
            .enumerate()
            .find(|(n, _)| BOOTSTRAP_ROLE + *n as i32 * ROLE_OID_STEP == oid)
            .map(|(_, r)| r.name.clone())
            .unwrap_or_else(|| format!("unknown (OID={oid})")),
    }
}

/// The oid `pg_roles` gives role `name` among the roles `known`.
pub fn role_oid(known: &[crate::catalog::roles::RoleDef], name: &str) -> i32 {
    if name == BOOTSTRAP_ROLE_NAME {
        return BOOTSTRAP_ROLE;
    }
    if name == crate::catalog::grants::DATABASE_OWNER_ROLE {
        return DATABASE_OWNER_ROLE;
    }
    known
        .iter()
        .position(|r| r.name == name)
        .map(|n| BOOTSTRAP_ROLE + n as i32 * ROLE_OID_STEP)
        .unwrap_or(0)
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
/// The oid of the default of column `n` (from 0): defaults take oids after the table's
/// fixed ones.
pub(crate) fn attrdef_oid(t: &TableDef, n: usize) -> i32 {
    t.oid() as i32 + 4 + n as i32 % 12
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

/// The oid of a btree pattern operator class (`text_pattern_ops`...), as PostgreSQL 15's.
pub(crate) fn pattern_opclass(name: &str) -> i32 {
    match name {
        "text_pattern_ops" => 4217,
        "varchar_pattern_ops" => 4218,
        _ => 4219,
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

/// PostgreSQL 15's system catalogs and their fixed relation oids: the `tableoid` of their
/// rows, the `classoid` that pg_description and pg_depend name them by, and what
/// `'pg_class'::regclass` is.
const CATALOG_RELATIONS: &[(&str, i32)] = &[
    ("pg_aggregate", 2600),
    ("pg_am", 2601),
    ("pg_amop", 2602),
    ("pg_amproc", 2603),
    ("pg_attrdef", 2604),
    ("pg_attribute", 1249),
    ("pg_auth_members", 1261),
    ("pg_authid", 1260),
    ("pg_cast", 2605),
    ("pg_class", 1259),
    ("pg_collation", 3456),
    ("pg_constraint", 2606),
    ("pg_conversion", 2607),
    ("pg_database", 1262),
    ("pg_db_role_setting", 2964),
    ("pg_default_acl", 826),
    ("pg_depend", 2608),
    ("pg_description", 2609),
    ("pg_enum", 3501),
    ("pg_event_trigger", 3466),
    ("pg_extension", 3079),
    ("pg_foreign_data_wrapper", 2328),
    ("pg_foreign_server", 1417),
    ("pg_foreign_table", 3118),
    ("pg_index", 2610),
    ("pg_inherits", 2611),
    ("pg_init_privs", 3394),
    ("pg_language", 2612),
    ("pg_largeobject", 2613),
    ("pg_largeobject_metadata", 2995),
    ("pg_namespace", 2615),
    ("pg_opclass", 2616),
    ("pg_operator", 2617),
    ("pg_opfamily", 2753),
    ("pg_parameter_acl", 6243),
    ("pg_partitioned_table", 3350),
    ("pg_policy", 3256),
    ("pg_proc", 1255),
    ("pg_publication", 6104),
    ("pg_publication_namespace", 6237),
    ("pg_publication_rel", 6106),
    ("pg_range", 3541),
    ("pg_replication_origin", 6000),
    ("pg_rewrite", 2618),
    ("pg_seclabel", 3596),
    ("pg_sequence", 2224),
    ("pg_shdepend", 1214),
    ("pg_shdescription", 2396),
    ("pg_shseclabel", 3592),
    ("pg_statistic", 2619),
    ("pg_statistic_ext", 3381),
    ("pg_statistic_ext_data", 3429),
    ("pg_subscription", 6100),
    ("pg_subscription_rel", 6102),
    ("pg_tablespace", 1213),
    ("pg_transform", 3576),
    ("pg_trigger", 2620),
    ("pg_ts_config", 3602),
    ("pg_ts_config_map", 3603),
    ("pg_ts_dict", 3600),
    ("pg_ts_parser", 3601),
    ("pg_ts_template", 3764),
    ("pg_type", 1247),
    ("pg_user_mapping", 1418),
];

/// The relation oid of a system catalog, by its name (bare or `pg_catalog.`-qualified).
pub fn catalog_relation_oid(name: &str) -> Option<i32> {
    let bare = name.strip_prefix("pg_catalog.").unwrap_or(name);
    CATALOG_RELATIONS
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(bare))
        .map(|(_, oid)| *oid)
}
