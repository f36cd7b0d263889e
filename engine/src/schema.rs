//! Table definitions and the catalog.
//!
//! The catalog is itself a table ([`CATALOG_TABLE_ID`]) keyed by table name whose rows hold
//! a [`TableDef`] as JSON. DDL is therefore an ordinary write: it is versioned by commit
//! timestamp, visible to the transaction that made it before it commits, conflict-checked by
//! the adjudicator, journaled and replayed like any other row.

use std::sync::Arc;

use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use serde::{Deserialize, Serialize};

use crate::index::{CheckDef, ForeignKeyDef, IndexDef};
use crate::types::SqlType;

/// Table id of the catalog itself.
pub const CATALOG_TABLE_ID: u64 = 1;
/// Table id of the sequences: rows keyed by sequence name holding its definition and the
/// last value any node reserved, as JSON.
pub const SEQUENCE_TABLE_ID: u64 = 2;
/// Table id of the roles (`CREATE USER`): rows keyed by role name holding its attributes
/// and SCRAM-SHA-256 secret, as JSON.
pub const ROLE_TABLE_ID: u64 = 3;
/// Table id of the views: rows keyed by view name holding its query and columns, as JSON.
pub const VIEW_TABLE_ID: u64 = 4;
/// Table id of the databases (`CREATE DATABASE`): rows keyed by database name holding
/// where its own system tables are ([`DatabaseTables`]), as JSON.
pub const DATABASE_TABLE_ID: u64 = 5;
/// Table id of the default database's schemas (`CREATE SCHEMA`): rows keyed by schema
/// name holding its object id and owner, as JSON.
pub const SCHEMA_TABLE_ID: u64 = 6;
/// Table ids below this are reserved for system tables.
pub const FIRST_USER_TABLE_ID: u64 = 1 << 16;

/// The schema every database has, where relations go unless another is named.
pub const PUBLIC_SCHEMA: &str = "public";

/// A relation's name as weft keys it: the bare name in `public` (so catalogs written before
/// schemas existed read unchanged), `schema.name` in any other schema. Neither part may
/// contain a dot (CREATE refuses such names), so the key splits back unambiguously
/// ([`split_relation`]).
pub fn relation_key(schema: &str, name: &str) -> String {
    if schema == PUBLIC_SCHEMA {
        name.to_string()
    } else {
        format!("{schema}.{name}")
    }
}

/// The schema and the bare name of a relation key ([`relation_key`]).
pub fn split_relation(key: &str) -> (&str, &str) {
    match key.split_once('.') {
        Some((schema, name)) => (schema, name),
        None => (PUBLIC_SCHEMA, key),
    }
}

/// The system tables of one database: its catalog of tables, its sequences and its views.
/// Roles ([`ROLE_TABLE_ID`]) and the databases themselves ([`DATABASE_TABLE_ID`]) belong to
/// the cluster. The default database (`postgres`) uses the fixed ids above; a database made
/// with `CREATE DATABASE` uses three ids drawn at random from the user range, so its tables
/// can never meet another database's, even one of the same name dropped before.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct DatabaseTables {
    pub catalog: u64,
    pub sequences: u64,
    pub views: u64,
}

impl DatabaseTables {
    /// The table of the database's schemas: [`SCHEMA_TABLE_ID`] in the default database,
    /// the id after the views' in a database made with `CREATE DATABASE` (drawn with the
    /// others, so databases made before schemas existed have one too).
    pub fn schemas(&self) -> u64 {
        if self.catalog == CATALOG_TABLE_ID {
            SCHEMA_TABLE_ID
        } else {
            self.views + 1
        }
    }

    /// The default database's.
    pub const DEFAULT: DatabaseTables = DatabaseTables {
        catalog: CATALOG_TABLE_ID,
        sequences: SEQUENCE_TABLE_ID,
        views: VIEW_TABLE_ID,
    };

    /// A new database's, at `base` (drawn from the user range; `base + 2` must not
    /// overflow).
    pub fn at(base: u64) -> DatabaseTables {
        DatabaseTables {
            catalog: base,
            sequences: base + 1,
            views: base + 2,
        }
    }
}

impl Default for DatabaseTables {
    fn default() -> Self {
        DatabaseTables::DEFAULT
    }
}
/// Column name prefix reserved for weft's own columns.
pub const RESERVED_PREFIX: &str = "_weft_";
/// Name of the hidden column that carries a row's encoded key in DML plans and segments.
pub const KEY_COLUMN: &str = "_weft_key";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ColumnDef {
    pub name: String,
    pub ty: SqlType,
    pub nullable: bool,
    /// The DEFAULT expression as SQL text, evaluated when a row is inserted.
    pub default: Option<String>,
    /// `GENERATED ALWAYS AS IDENTITY` ("a") or `BY DEFAULT` ("d"): the default draws from
    /// the column's sequence.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identity: Option<String>,
    /// `COMMENT ON COLUMN`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TableDef {
    pub id: u64,
    /// The table's relation key: its name, qualified by its schema unless that is
    /// `public` ([`relation_key`]).
    pub name: String,
    pub columns: Vec<ColumnDef>,
    /// Indexes into `columns`, in key order. Empty: the table has no primary key and each
    /// row gets a hidden unique row id as its key.
    pub primary_key: Vec<usize>,
    /// The PostgreSQL object id the catalog views (`pg_class`, ...) give the table, fixed
    /// when it is created and kept by TRUNCATE. 0 in definitions written before oids were
    /// stored: [`TableDef::oid`] then derives it from the id.
    #[serde(default)]
    pub oid: u32,
    /// Secondary indexes, those of UNIQUE constraints included.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub indexes: Vec<IndexDef>,
    /// CHECK constraints.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub checks: Vec<CheckDef>,
    /// FOREIGN KEY constraints of this table.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub foreign_keys: Vec<ForeignKeyDef>,
    /// The tables whose foreign keys reference this one, by name.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub referenced_by: Vec<String>,
    /// `COMMENT ON TABLE`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    /// The primary key constraint's name when it was given (`CONSTRAINT pk PRIMARY KEY`);
    /// otherwise PostgreSQL's `<table>_pkey`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pkey_name: Option<String>,
    /// The owning role; `None` is the bootstrap superuser. The frontend's privilege checks
    /// read it; the engine does not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
    /// The table's access control list, in PostgreSQL's `aclitem` text form
    /// (`role=arwdDxt/grantor`); `None` is the default, the owner's privileges alone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acl: Option<Vec<String>>,
}

/// The first object id of user objects, as in PostgreSQL.
pub const FIRST_USER_OID: u32 = 16384;
/// Object ids per table: the table, its row type, its primary key index and constraint,
/// and its sequences.
pub const OIDS_PER_TABLE: u32 = 16;

/// The object id of a table with this id: spread over [FIRST_USER_OID, 2^31) in steps of
/// [`OIDS_PER_TABLE`], the same on every node and across restarts.
pub fn oid_for_table_id(id: u64) -> u32 {
    let slots = (i32::MAX as u32 - FIRST_USER_OID) / OIDS_PER_TABLE;
    // A fixed mix of the id (splitmix64's finalizer), so neighbouring ids spread out.
    let mut z = id.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^= z >> 31;
    FIRST_USER_OID + (z % slots as u64) as u32 * OIDS_PER_TABLE
}

impl TableDef {
    /// The table's user-visible Arrow schema.
    pub fn arrow_schema(&self) -> SchemaRef {
        Arc::new(Schema::new(
            self.columns
                .iter()
                .map(|c| c.ty.arrow_field(&c.name, c.nullable))
                .collect::<Vec<Field>>(),
        ))
    }

    /// The schema with the hidden key column appended, used to plan UPDATE and DELETE so that
    /// each produced row still knows which stored row it came from.
    pub fn arrow_schema_with_key(&self) -> SchemaRef {
        let mut fields: Vec<Field> = self
            .columns
            .iter()
            .map(|c| c.ty.arrow_field(&c.name, c.nullable))
            .collect();
        fields.push(Field::new(KEY_COLUMN, DataType::Binary, false));
        Arc::new(Schema::new(fields))
    }

    /// The table's PostgreSQL object id (see [`oid_for_table_id`]).
    pub fn oid(&self) -> u32 {
        if self.oid != 0 {
            self.oid
        } else {
            oid_for_table_id(self.id)
        }
    }

    /// The name of the primary key's constraint and index.
    pub fn pkey_name(&self) -> String {
        self.pkey_name
            .clone()
            .unwrap_or_else(|| format!("{}_pkey", self.relname()))
    }

    /// The schema the table is in (`name` is its relation key, [`relation_key`]).
    pub fn schema(&self) -> &str {
        split_relation(&self.name).0
    }

    /// The table's name within its schema, as `pg_class.relname` shows it.
    pub fn relname(&self) -> &str {
        split_relation(&self.name).1
    }

    pub fn column_index(&self, name: &str) -> Option<usize> {
        self.columns.iter().position(|c| c.name == name)
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("a TableDef always serializes")
    }

    pub fn from_json(s: &str) -> Result<TableDef, String> {
        serde_json::from_str(s).map_err(|e| format!("bad table definition in catalog: {e}"))
    }
}

/// The Arrow schema of the catalog table: (name, definition as JSON).
pub fn catalog_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("name", DataType::Utf8, false),
        Field::new("def", DataType::Utf8, false),
    ]))
}
