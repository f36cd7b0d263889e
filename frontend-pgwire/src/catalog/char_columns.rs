//! PostgreSQL's `"char"` columns (`pg_type.typtype`, `pg_proc.prokind`, ...) in the
//! bundled catalog rows, marked so that they go on the wire as `"char"` (oid 18), not text.
//!
//! Drivers decode them by that type: asyncpg compares `typtype` with the byte `b'b'`, and
//! a text column gives it the string `'b'`, which matches none of its kinds (so it refuses
//! custom codecs even on json). weft's own catalog tables mark their `"char"` columns when
//! they are built (`rows::K::Char`); these are the bundled ones.

use std::sync::Arc;

use arrow::datatypes::{DataType, Field, Schema};
use datafusion_pg_catalog::pg_catalog::{ArrowTable, PgCatalogStaticTables};

/// The `"char"` columns of the bundled tables, by table.
const CHAR_COLUMNS: &[(&str, &[&str])] = &[
    (
        "pg_type",
        &[
            "typtype",
            "typcategory",
            "typdelim",
            "typalign",
            "typstorage",
        ],
    ),
    ("pg_proc", &["prokind", "provolatile", "proparallel"]),
    ("pg_cast", &["castcontext", "castmethod"]),
    ("pg_operator", &["oprkind"]),
    ("pg_aggregate", &["aggkind"]),
    ("pg_am", &["amtype"]),
    ("pg_collation", &["collprovider"]),
];

/// `statics` with the `"char"` columns of [`CHAR_COLUMNS`] marked.
pub fn mark(statics: &mut PgCatalogStaticTables) {
    for (table, columns) in CHAR_COLUMNS {
        let slot = match *table {
            "pg_type" => &mut statics.pg_type,
            "pg_proc" => &mut statics.pg_proc,
            "pg_cast" => &mut statics.pg_cast,
            "pg_operator" => &mut statics.pg_operator,
            "pg_aggregate" => &mut statics.pg_aggregate,
            "pg_am" => &mut statics.pg_am,
            "pg_collation" => &mut statics.pg_collation,
            _ => continue,
        };
        if let Some(marked) = marked(slot, columns) {
            *slot = Arc::new(marked);
        }
    }
}

/// `table` with `columns` (those that are text) marked `"char"`; `None` if none is.
fn marked(table: &ArrowTable, columns: &[&str]) -> Option<ArrowTable> {
    let schema = table.schema();
    let is_char =
        |f: &Field| columns.contains(&f.name().as_str()) && f.data_type() == &DataType::Utf8;
    if !schema.fields().iter().any(|f| is_char(f)) {
        return None;
    }
    let fields: Vec<Field> = schema
        .fields()
        .iter()
        .map(|f| {
            let mut f = f.as_ref().clone();
            if is_char(&f) {
                let mut md = f.metadata().clone();
                md.insert(
                    arrow_pg::datatypes::PG_CHAR_KEY.to_string(),
                    "char".to_string(),
                );
                f = f.with_metadata(md);
            }
            f
        })
        .collect();
    let schema = Arc::new(Schema::new_with_metadata(fields, schema.metadata().clone()));
    // ArrowTable is built from Arrow IPC bytes only.
    let mut bytes = Vec::new();
    {
        let mut w = arrow::ipc::writer::FileWriter::try_new(&mut bytes, &schema).ok()?;
        for b in table.data() {
            let b =
                arrow::array::RecordBatch::try_new(schema.clone(), b.columns().to_vec()).ok()?;
            w.write(&b).ok()?;
        }
        w.finish().ok()?;
    }
    ArrowTable::from_ipc_data(bytes).ok()
}
