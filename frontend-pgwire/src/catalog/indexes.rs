//! A table's indexes and constraints as the catalog views show them: the primary key's
//! implicit index and constraint beside the declared indexes, UNIQUE and CHECK
//! constraints, each with its object id, so that `pg_class`, `pg_index`, `pg_constraint`,
//! `pg_indexes`, `pg_get_indexdef` and `pg_get_constraintdef` agree.

use weft_engine::schema::TableDef;

use crate::catalog::oids::{pkey_constraint_oid, pkey_index_oid, pkey_name};

/// One index of a table.
pub(crate) struct IndexView {
    pub oid: i32,
    pub name: String,
    /// Key columns, then INCLUDE columns (positions in the table).
    pub columns: Vec<usize>,
    pub key_columns: usize,
    pub unique: bool,
    pub primary: bool,
    pub nulls_not_distinct: bool,
    pub valid: bool,
    /// A partial index's predicate, as SQL text.
    pub predicate: Option<String>,
    /// Per key column: `DESC`, NULLs first, and an operator class named.
    pub descending: Vec<bool>,
    pub nulls_first: Vec<bool>,
    pub opclasses: Vec<Option<String>>,
}

/// One constraint of a table.
pub(crate) struct ConstraintView {
    pub oid: i32,
    pub name: String,
    /// `p`, `u`, `c` or `f`, as pg_constraint.contype.
    pub kind: &'static str,
    pub columns: Vec<usize>,
    /// The index that enforces it (0 for CHECK).
    pub index_oid: i32,
    /// A CHECK's expression.
    pub check: Option<String>,
    /// A FOREIGN KEY's reference.
    pub reference: Option<weft_engine::index::ForeignKeyDef>,
    pub validated: bool,
}

pub(crate) fn indexes_of(t: &TableDef) -> Vec<IndexView> {
    let mut out = Vec::new();
    if !t.primary_key.is_empty() {
        out.push(IndexView {
            oid: pkey_index_oid(t),
            name: pkey_name(t),
            columns: t.primary_key.clone(),
            key_columns: t.primary_key.len(),
            unique: true,
            primary: true,
            nulls_not_distinct: false,
            valid: true,
            predicate: None,
            descending: vec![false; t.primary_key.len()],
            nulls_first: vec![false; t.primary_key.len()],
            opclasses: vec![None; t.primary_key.len()],
        });
    }
    for i in &t.indexes {
        let mut columns = i.columns.clone();
        columns.extend(&i.include);
        out.push(IndexView {
            oid: i.oid as i32,
            name: i.name.clone(),
            columns,
            key_columns: i.columns.len(),
            unique: i.unique,
            primary: false,
            nulls_not_distinct: i.nulls_not_distinct,
            valid: i.valid,
            predicate: i.predicate.clone(),
            descending: (0..i.columns.len()).map(|k| i.is_descending(k)).collect(),
            nulls_first: (0..i.columns.len()).map(|k| i.has_nulls_first(k)).collect(),
            opclasses: (0..i.columns.len())
                .map(|k| i.opclass(k).map(str::to_string))
                .collect(),
        });
    }
    out
}

pub(crate) fn constraints_of(t: &TableDef) -> Vec<ConstraintView> {
    let mut out = Vec::new();
    if !t.primary_key.is_empty() {
        out.push(ConstraintView {
            oid: pkey_constraint_oid(t),
            name: pkey_name(t),
            kind: "p",
            columns: t.primary_key.clone(),
            index_oid: pkey_index_oid(t),
            check: None,
            reference: None,
            validated: true,
        });
    }
    for i in t.indexes.iter().filter(|i| i.constraint) {
        out.push(ConstraintView {
            oid: i.oid as i32 + 1,
            name: i.name.clone(),
            kind: "u",
            columns: i.columns.clone(),
            index_oid: i.oid as i32,
            check: None,
            reference: None,
            validated: true,
        });
    }
    for c in &t.checks {
        out.push(ConstraintView {
            oid: c.oid as i32,
            name: c.name.clone(),
            kind: "c",
            columns: Vec::new(),
            index_oid: 0,
            check: Some(c.expr.clone()),
            reference: None,
            validated: c.validated,
        });
    }
    for f in &t.foreign_keys {
        out.push(ConstraintView {
            oid: f.oid as i32,
            name: f.name.clone(),
            kind: "f",
            columns: f.columns.clone(),
            index_oid: 0,
            check: None,
            reference: Some(f.clone()),
            validated: f.validated,
        });
    }
    out
}
