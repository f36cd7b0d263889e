//! `information_schema`'s views (tables, columns, constraints, ...), built from the same
//! snapshot as `pg_catalog`.

use std::sync::Arc;

use async_trait::async_trait;
use datafusion::catalog::SchemaProvider;
use datafusion::datasource::TableProvider;
use datafusion::error::Result as DfResult;
use weft_engine::types::SqlType;

use crate::catalog::indexes::constraints_of;
use crate::catalog::oids::INFORMATION_SCHEMA;
use crate::catalog::oids::PG_CATALOG;
use crate::catalog::pg_get::default_text;
use crate::catalog::pgcatalog::PgCatalogSchema;
use crate::catalog::roles::BOOTSTRAP_ROLE_NAME;
use crate::catalog::rows::build;
use crate::catalog::rows::i;
use crate::catalog::rows::s;
use crate::catalog::rows::K;
use crate::catalog::rows::V;
use crate::catalog::session_meta::Snapshot;

pub struct InformationSchema {
    pub pg: PgCatalogSchema,
}

impl std::fmt::Debug for InformationSchema {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("InformationSchema")
    }
}

pub(crate) const INFO_TABLES: &[&str] = &[
    "schemata",
    "tables",
    "columns",
    "table_constraints",
    "key_column_usage",
    "referential_constraints",
    "views",
    "sequences",
];

#[async_trait]
impl SchemaProvider for InformationSchema {
    fn table_names(&self) -> Vec<String> {
        INFO_TABLES.iter().map(|s| s.to_string()).collect()
    }

    async fn table(&self, name: &str) -> DfResult<Option<Arc<dyn TableProvider>>> {
        if !INFO_TABLES.contains(&name) {
            return Ok(None);
        }
        let Some(snap) = self.pg.snapshot().await? else {
            return Ok(None);
        };
        let db_name = self.pg.meta.identity().database;
        Ok(Some(info_table(
            name,
            &snap,
            &db_name,
            &self.pg.meta.search_path(),
        )?))
    }

    fn table_exist(&self, name: &str) -> bool {
        INFO_TABLES.contains(&name)
    }
}

/// information_schema's type names and sizes of a column type: (data_type, udt_name,
/// character_maximum_length, numeric_precision, numeric_precision_radix, numeric_scale,
/// datetime_precision).
#[allow(clippy::type_complexity)]
pub(crate) fn info_type(
    ty: &SqlType,
) -> (
    &'static str,
    &'static str,
    Option<i64>,
    Option<i64>,
    Option<i64>,
    Option<i64>,
    Option<i64>,
) {
    match ty {
        SqlType::SmallInt => ("smallint", "int2", None, Some(16), Some(2), Some(0), None),
        SqlType::Integer => ("integer", "int4", None, Some(32), Some(2), Some(0), None),
        SqlType::BigInt => ("bigint", "int8", None, Some(64), Some(2), Some(0), None),
        SqlType::Real => ("real", "float4", None, Some(24), Some(2), None, None),
        SqlType::Double => (
            "double precision",
            "float8",
            None,
            Some(53),
            Some(2),
            None,
            None,
        ),
        SqlType::Numeric { precision, scale } => (
            "numeric",
            "numeric",
            None,
            Some(*precision as i64),
            Some(10),
            Some(*scale as i64),
            None,
        ),
        SqlType::Text => ("text", "text", None, None, None, None, None),
        SqlType::Varchar { max_chars } => (
            "character varying",
            "varchar",
            max_chars.map(|n| n as i64),
            None,
            None,
            None,
            None,
        ),
        SqlType::Char { chars } => (
            "character",
            "bpchar",
            Some(*chars as i64),
            None,
            None,
            None,
            None,
        ),
        SqlType::Boolean => ("boolean", "bool", None, None, None, None, None),
        SqlType::Bytea => ("bytea", "bytea", None, None, None, None, None),
        SqlType::Date => ("date", "date", None, None, None, None, Some(0)),
        SqlType::Timestamp => (
            "timestamp without time zone",
            "timestamp",
            None,
            None,
            None,
            None,
            Some(6),
        ),
        SqlType::Timestamptz => (
            "timestamp with time zone",
            "timestamptz",
            None,
            None,
            None,
            None,
            Some(6),
        ),
        SqlType::Uuid => ("uuid", "uuid", None, None, None, None, None),
        SqlType::Json => ("json", "json", None, None, None, None, None),
        SqlType::Jsonb => ("jsonb", "jsonb", None, None, None, None, None),
        SqlType::Array(elem) => {
            let udt = match **elem {
                SqlType::SmallInt => "_int2",
                SqlType::Integer => "_int4",
                SqlType::BigInt => "_int8",
                SqlType::Real => "_float4",
                SqlType::Double => "_float8",
                SqlType::Numeric { .. } => "_numeric",
                SqlType::Text => "_text",
                SqlType::Varchar { .. } => "_varchar",
                SqlType::Char { .. } => "_bpchar",
                SqlType::Boolean => "_bool",
                SqlType::Bytea => "_bytea",
                SqlType::Date => "_date",
                SqlType::Timestamp => "_timestamp",
                SqlType::Timestamptz => "_timestamptz",
                SqlType::Uuid => "_uuid",
                SqlType::Json => "_json",
                SqlType::Jsonb => "_jsonb",
                SqlType::Array(_) => "_text",
            };
            ("ARRAY", udt, None, None, None, None, None)
        }
    }
}

pub(crate) fn opt(v: Option<i64>) -> V {
    v.map(V::I).unwrap_or(V::N)
}

pub(crate) fn info_table(
    name: &str,
    snap: &Snapshot,
    db: &str,
    path: &[String],
) -> DfResult<Arc<dyn TableProvider>> {
    let yes_no = |b: bool| s(if b { "YES" } else { "NO" });
    match name {
        "schemata" => build(
            &[
                ("catalog_name", K::Text),
                ("schema_name", K::Text),
                ("schema_owner", K::Text),
                ("default_character_set_catalog", K::Text),
                ("default_character_set_schema", K::Text),
                ("default_character_set_name", K::Text),
                ("sql_path", K::Text),
            ],
            [PG_CATALOG, "public", INFORMATION_SCHEMA]
                .into_iter()
                .map(str::to_string)
                .chain(snap.schemas.iter().map(|d| d.name.clone()))
                .map(|n| {
                    vec![
                        s(db),
                        s(n.clone()),
                        s(if n == "public" {
                            "pg_database_owner"
                        } else {
                            BOOTSTRAP_ROLE_NAME
                        }),
                        V::N,
                        V::N,
                        V::N,
                        V::N,
                    ]
                })
                .collect(),
        ),
        "tables" => build(
            &[
                ("table_catalog", K::Text),
                ("table_schema", K::Text),
                ("table_name", K::Text),
                ("table_type", K::Text),
                ("self_referencing_column_name", K::Text),
                ("reference_generation", K::Text),
                ("user_defined_type_catalog", K::Text),
                ("user_defined_type_schema", K::Text),
                ("user_defined_type_name", K::Text),
                ("is_insertable_into", K::Text),
                ("is_typed", K::Text),
                ("commit_action", K::Text),
            ],
            snap.tables
                .iter()
                .map(|t| {
                    vec![
                        s(db),
                        s(weft_engine::schema::split_relation(&t.name).0),
                        s(weft_engine::schema::split_relation(&t.name).1),
                        s("BASE TABLE"),
                        V::N,
                        V::N,
                        V::N,
                        V::N,
                        V::N,
                        s("YES"),
                        s("NO"),
                        V::N,
                    ]
                })
                .chain(snap.views.iter().map(|v| {
                    vec![
                        s(db),
                        s(weft_engine::schema::split_relation(&v.name).0),
                        s(weft_engine::schema::split_relation(&v.name).1),
                        s("VIEW"),
                        V::N,
                        V::N,
                        V::N,
                        V::N,
                        V::N,
                        s("NO"),
                        s("NO"),
                        V::N,
                    ]
                }))
                .collect(),
        ),
        "columns" => {
            let mut rows = Vec::new();
            for t in &snap.tables {
                for (n, c) in t.columns.iter().enumerate() {
                    let (dt, udt, len, prec, radix, scale, dtp) = info_type(&c.ty);
                    rows.push(vec![
                        s(db),
                        s(weft_engine::schema::split_relation(&t.name).0),
                        s(weft_engine::schema::split_relation(&t.name).1),
                        s(c.name.clone()),
                        i(n as i64 + 1),
                        default_text(c, path).map(V::S).unwrap_or(V::N),
                        yes_no(c.nullable),
                        s(dt),
                        opt(len),
                        opt(len.map(|l| l * 4)),
                        opt(prec),
                        opt(radix),
                        opt(scale),
                        opt(dtp),
                        V::N,
                        V::N,
                        s(db),
                        s(PG_CATALOG),
                        s(udt),
                        i(n as i64 + 1),
                        yes_no(c.identity.is_some()),
                        match c.identity.as_deref() {
                            Some("a") => s("ALWAYS"),
                            Some(_) => s("BY DEFAULT"),
                            None => V::N,
                        },
                        s("NEVER"),
                        V::N,
                        s("YES"),
                    ]);
                }
            }
            build(
                &[
                    ("table_catalog", K::Text),
                    ("table_schema", K::Text),
                    ("table_name", K::Text),
                    ("column_name", K::Text),
                    ("ordinal_position", K::I32),
                    ("column_default", K::Text),
                    ("is_nullable", K::Text),
                    ("data_type", K::Text),
                    ("character_maximum_length", K::I32),
                    ("character_octet_length", K::I32),
                    ("numeric_precision", K::I32),
                    ("numeric_precision_radix", K::I32),
                    ("numeric_scale", K::I32),
                    ("datetime_precision", K::I32),
                    ("interval_type", K::Text),
                    ("interval_precision", K::I32),
                    ("udt_catalog", K::Text),
                    ("udt_schema", K::Text),
                    ("udt_name", K::Text),
                    ("dtd_identifier", K::Text),
                    ("is_identity", K::Text),
                    ("identity_generation", K::Text),
                    ("is_generated", K::Text),
                    ("generation_expression", K::Text),
                    ("is_updatable", K::Text),
                ],
                rows.into_iter()
                    .map(|mut r| {
                        // dtd_identifier is text in PostgreSQL.
                        if let V::I(n) = r[19] {
                            r[19] = s(n.to_string());
                        }
                        r
                    })
                    .collect(),
            )
        }
        "table_constraints" => build(
            &[
                ("constraint_catalog", K::Text),
                ("constraint_schema", K::Text),
                ("constraint_name", K::Text),
                ("table_catalog", K::Text),
                ("table_schema", K::Text),
                ("table_name", K::Text),
                ("constraint_type", K::Text),
                ("is_deferrable", K::Text),
                ("initially_deferred", K::Text),
                ("enforced", K::Text),
                ("nulls_distinct", K::Text),
            ],
            snap.tables
                .iter()
                .flat_map(|t| {
                    constraints_of(t).into_iter().map(move |c| {
                        let kind = match c.kind {
                            "p" => "PRIMARY KEY",
                            "u" => "UNIQUE",
                            "f" => "FOREIGN KEY",
                            _ => "CHECK",
                        };
                        let f = c.reference.as_ref();
                        let yes_no = |b: bool| s(if b { "YES" } else { "NO" });
                        vec![
                            s(db),
                            s(weft_engine::schema::split_relation(&t.name).0),
                            s(c.name.clone()),
                            s(db),
                            s(weft_engine::schema::split_relation(&t.name).0),
                            s(weft_engine::schema::split_relation(&t.name).1),
                            s(kind),
                            yes_no(f.is_some_and(|f| f.deferrable)),
                            yes_no(f.is_some_and(|f| f.deferred)),
                            s("YES"),
                            if c.kind == "u" { s("YES") } else { V::N },
                        ]
                    })
                })
                .collect(),
        ),
        "referential_constraints" => build(
            &[
                ("constraint_catalog", K::Text),
                ("constraint_schema", K::Text),
                ("constraint_name", K::Text),
                ("unique_constraint_catalog", K::Text),
                ("unique_constraint_schema", K::Text),
                ("unique_constraint_name", K::Text),
                ("match_option", K::Text),
                ("update_rule", K::Text),
                ("delete_rule", K::Text),
            ],
            snap.tables
                .iter()
                .flat_map(|t| {
                    t.foreign_keys.iter().map(move |f| {
                        let rule = |a: char| match a {
                            'r' => "RESTRICT",
                            'c' => "CASCADE",
                            'n' => "SET NULL",
                            'd' => "SET DEFAULT",
                            _ => "NO ACTION",
                        };
                        let unique = snap
                            .tables
                            .iter()
                            .find(|p| p.name == f.parent)
                            .and_then(|p| unique_name_for(p, &f.parent_columns));
                        vec![
                            s(db),
                            s(weft_engine::schema::split_relation(&t.name).0),
                            s(f.name.clone()),
                            s(db),
                            s(weft_engine::schema::split_relation(&f.parent).0),
                            unique.map_or(V::N, s),
                            s("NONE"),
                            s(rule(f.on_update)),
                            s(rule(f.on_delete)),
                        ]
                    })
                })
                .collect(),
        ),
        "key_column_usage" => {
            let mut rows = Vec::new();
            for t in &snap.tables {
                for c in constraints_of(t).into_iter().filter(|c| c.kind != "c") {
                    // A foreign key's columns name their place in the referenced key.
                    let parent = c.reference.as_ref().and_then(|f| {
                        let p = snap.tables.iter().find(|p| p.name == f.parent)?;
                        let key = unique_columns_for(p, &f.parent_columns)?;
                        Some((f.parent_columns.clone(), key))
                    });
                    for (n, &k) in c.columns.iter().enumerate() {
                        let in_unique = parent.as_ref().and_then(|(pcols, key)| {
                            let pc = pcols.get(n)?;
                            key.iter().position(|x| x == pc).map(|p| p as i64 + 1)
                        });
                        rows.push(vec![
                            s(db),
                            s(weft_engine::schema::split_relation(&t.name).0),
                            s(c.name.clone()),
                            s(db),
                            s(weft_engine::schema::split_relation(&t.name).0),
                            s(weft_engine::schema::split_relation(&t.name).1),
                            s(t.columns[k].name.clone()),
                            i(n as i64 + 1),
                            in_unique.map_or(V::N, i),
                        ]);
                    }
                }
            }
            build(
                &[
                    ("constraint_catalog", K::Text),
                    ("constraint_schema", K::Text),
                    ("constraint_name", K::Text),
                    ("table_catalog", K::Text),
                    ("table_schema", K::Text),
                    ("table_name", K::Text),
                    ("column_name", K::Text),
                    ("ordinal_position", K::I32),
                    ("position_in_unique_constraint", K::I32),
                ],
                rows,
            )
        }
        "views" => build(
            &[
                ("table_catalog", K::Text),
                ("table_schema", K::Text),
                ("table_name", K::Text),
                ("view_definition", K::Text),
                ("check_option", K::Text),
                ("is_updatable", K::Text),
                ("is_insertable_into", K::Text),
                ("is_trigger_updatable", K::Text),
                ("is_trigger_deletable", K::Text),
                ("is_trigger_insertable_into", K::Text),
            ],
            snap.views
                .iter()
                .map(|v| {
                    let mut row = vec![
                        s(db),
                        s(weft_engine::schema::split_relation(&v.name).0),
                        s(weft_engine::schema::split_relation(&v.name).1),
                        s(format!(" {};", v.query)),
                        s("NONE"),
                    ];
                    row.extend((0..5).map(|_| s("NO")));
                    row
                })
                .collect(),
        ),
        _ => build(
            &[
                ("sequence_catalog", K::Text),
                ("sequence_schema", K::Text),
                ("sequence_name", K::Text),
                ("data_type", K::Text),
                ("start_value", K::Text),
                ("minimum_value", K::Text),
                ("maximum_value", K::Text),
                ("increment", K::Text),
                ("cycle_option", K::Text),
            ],
            vec![],
        ),
    }
}

/// The name of the unique constraint (or primary key) of `t` over exactly `columns`.
fn unique_name_for(t: &weft_engine::schema::TableDef, columns: &[usize]) -> Option<String> {
    constraints_of(t)
        .into_iter()
        .find(|c| (c.kind == "p" || c.kind == "u") && same_set(&c.columns, columns))
        .map(|c| c.name)
}

/// The columns, in key order, of the unique constraint of `t` over `columns`.
fn unique_columns_for(t: &weft_engine::schema::TableDef, columns: &[usize]) -> Option<Vec<usize>> {
    constraints_of(t)
        .into_iter()
        .find(|c| (c.kind == "p" || c.kind == "u") && same_set(&c.columns, columns))
        .map(|c| c.columns)
}

fn same_set(a: &[usize], b: &[usize]) -> bool {
    let (mut a, mut b) = (a.to_vec(), b.to_vec());
    a.sort();
    b.sort();
    a == b
}
