//! Secondary indexes and table constraints: their definitions, and the encoding of index
//! entries.
//!
//! An index is MVCC data like a table. Its entries live in a table of their own
//! ([`IndexDef::id`]), written in the same transaction as the row change they follow, so
//! they are journaled, replayed, kept in memtable and Parquet segments and compacted like
//! any table's rows, and read at the same timestamps.
//!
//! An entry's key is the indexed values in the order-preserving encoding of
//! [`crate::key`] (each prefixed by a tag, so NULL has a place: after every value, as in
//! PostgreSQL's ascending order), followed by the row's primary key. A unique index whose
//! values hold no NULL leaves the primary key out: two rows with the same values then write
//! the same key, so two transactions inserting the same value conflict in the adjudicator
//! like two writers of one row. The entry's single column holds the row's primary key.

use std::sync::Arc;

use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::scalar::ScalarValue;
use serde::{Deserialize, Serialize};

use crate::error::EngineResult;
use crate::key::encode_value;
use crate::row::Row;

/// The one column of an index entry: the indexed row's primary key.
pub const INDEX_PK_COLUMN: &str = "_weft_pk";

/// Tag of a present value in an entry key.
const TAG_VALUE: u8 = 0x01;
/// Tag of a NULL: sorts after every value.
const TAG_NULL: u8 = 0x02;
/// Tag of a NULL in a `NULLS FIRST` column: sorts before every value.
const TAG_NULL_FIRST: u8 = 0x00;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IndexDef {
    pub name: String,
    /// The table id that holds the index's entries.
    pub id: u64,
    /// The object id pg_class gives the index (and pg_constraint its UNIQUE constraint, at
    /// `oid + 1`).
    pub oid: u32,
    /// Indexes into the table's columns, in key order.
    pub columns: Vec<usize>,
    /// `INCLUDE (...)` columns: listed in the catalog, not part of the key.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub include: Vec<usize>,
    pub unique: bool,
    /// `NULLS NOT DISTINCT`: a unique index on which NULLs collide like values.
    #[serde(default)]
    pub nulls_not_distinct: bool,
    /// Made by a UNIQUE constraint (listed in pg_constraint), not by CREATE UNIQUE INDEX.
    #[serde(default)]
    pub constraint: bool,
    /// A partial index's `WHERE` predicate, as SQL text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub predicate: Option<String>,
    /// The index holds an entry for every row: the planner may read it.
    pub valid: bool,
    /// Per key column, whether it is `DESC` (empty: every column ascending).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub descending: Vec<bool>,
    /// Per key column, whether NULLs come before values (empty: PostgreSQL's default, last
    /// when ascending and first when descending).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub nulls_first: Vec<bool>,
    /// Per key column, the operator class named when it is not the type's default (the
    /// `*_pattern_ops` classes, which order as weft's default does); empty: none named.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub opclasses: Vec<Option<String>>,
}

/// A CHECK constraint.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CheckDef {
    pub name: String,
    pub oid: u32,
    /// The boolean expression, as SQL text.
    pub expr: String,
    /// `NOT VALID`: existing rows were not checked.
    #[serde(default = "yes")]
    pub validated: bool,
}

/// A FOREIGN KEY constraint, kept in the referencing (child) table's definition; the
/// referenced (parent) table lists the child in [`crate::schema::TableDef::referenced_by`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ForeignKeyDef {
    pub name: String,
    pub oid: u32,
    /// The referencing columns (positions in the child table).
    pub columns: Vec<usize>,
    /// The referenced table, by name.
    pub parent: String,
    /// The referenced columns (positions in the parent), matching `columns` one for one:
    /// the parent's primary key or a unique index's columns.
    pub parent_columns: Vec<usize>,
    /// `a` NO ACTION, `r` RESTRICT, `c` CASCADE, `n` SET NULL, `d` SET DEFAULT, as
    /// pg_constraint.confdeltype spells them.
    pub on_delete: char,
    pub on_update: char,
    #[serde(default)]
    pub deferrable: bool,
    /// `INITIALLY DEFERRED`: checked at COMMIT.
    #[serde(default)]
    pub deferred: bool,
    #[serde(default = "yes")]
    pub validated: bool,
}

fn yes() -> bool {
    true
}

/// The Arrow schema of an index's entries.
pub fn index_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![Field::new(
        INDEX_PK_COLUMN,
        DataType::Binary,
        false,
    )]))
}

/// Appends one indexed value of an ascending, NULLS LAST column to an entry key.
pub fn encode_index_value(out: &mut Vec<u8>, v: &ScalarValue) -> EngineResult<()> {
    encode_ordered(out, v, false, false)
}

/// Appends one indexed value to an entry key, in its column's order: a descending value's
/// bytes are inverted (the value encoding is prefix-free, so inverting it reverses the
/// order), and a NULL takes its place before or after every value.
fn encode_ordered(
    out: &mut Vec<u8>,
    v: &ScalarValue,
    descending: bool,
    nulls_first: bool,
) -> EngineResult<()> {
    if v.is_null() {
        out.push(if nulls_first {
            TAG_NULL_FIRST
        } else {
            TAG_NULL
        });
        return Ok(());
    }
    out.push(TAG_VALUE);
    let start = out.len();
    encode_value(out, v)?;
    if descending {
        for b in &mut out[start..] {
            *b = !*b;
        }
    }
    Ok(())
}

/// The entries `[lo, hi)` whose leading value is not NULL: the most a range of values on
/// an index's first column can cover.
pub fn non_null_entries() -> (Vec<u8>, Vec<u8>) {
    (vec![TAG_VALUE], vec![TAG_NULL])
}

impl IndexDef {
    /// The values of `row` that this index keys on.
    pub fn values<'a>(&self, row: &'a Row) -> Vec<&'a ScalarValue> {
        self.columns.iter().map(|&c| &row[c]).collect()
    }

    /// Whether two rows have different entries here (their indexed values differ).
    pub fn differs(&self, a: &Row, b: &Row) -> bool {
        self.columns.iter().any(|&c| a[c] != b[c])
    }

    /// Whether entries of `row` are the values alone (the unique form): a unique index and
    /// no NULL among them (NULLs are distinct, as in PostgreSQL, unless declared not).
    pub fn unique_form(&self, row: &Row) -> bool {
        self.unique && (self.nulls_not_distinct || self.columns.iter().all(|&c| !row[c].is_null()))
    }

    /// The entry key of `row`, whose primary key is `pk`.
    pub fn entry_key(&self, row: &Row, pk: &[u8]) -> EngineResult<Vec<u8>> {
        let mut out = self.prefix(&self.values(row))?;
        if !self.unique_form(row) {
            out.extend_from_slice(pk);
        }
        Ok(out)
    }

    /// The encoded prefix that every entry with these leading values starts with.
    pub fn prefix(&self, values: &[&ScalarValue]) -> EngineResult<Vec<u8>> {
        let mut out = Vec::with_capacity(16);
        for (k, v) in values.iter().enumerate() {
            encode_ordered(&mut out, v, self.is_descending(k), self.has_nulls_first(k))?;
        }
        Ok(out)
    }

    /// Whether key column `k` is `DESC`.
    pub fn is_descending(&self, k: usize) -> bool {
        self.descending.get(k).copied().unwrap_or(false)
    }

    /// Whether key column `k` puts NULLs first.
    pub fn has_nulls_first(&self, k: usize) -> bool {
        self.nulls_first
            .get(k)
            .copied()
            .unwrap_or_else(|| self.is_descending(k))
    }

    /// The operator class named for key column `k`, if any.
    pub fn opclass(&self, k: usize) -> Option<&str> {
        self.opclasses.get(k).and_then(|o| o.as_deref())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn idx(unique: bool) -> IndexDef {
        IndexDef {
            name: "i".into(),
            id: 7,
            oid: 0,
            columns: vec![1],
            include: vec![],
            unique,
            nulls_not_distinct: false,
            constraint: false,
            predicate: None,
            valid: true,
            descending: vec![],
            nulls_first: vec![],
            opclasses: vec![],
        }
    }

    fn row(v: Option<i32>) -> Row {
        vec![ScalarValue::Int32(Some(1)), ScalarValue::Int32(v)]
    }

    #[test]
    fn unique_entries_of_equal_values_collide_and_others_do_not() {
        let u = idx(true);
        assert_eq!(
            u.entry_key(&row(Some(5)), b"a").unwrap(),
            u.entry_key(&row(Some(5)), b"b").unwrap()
        );
        // NULLs are distinct.
        assert_ne!(
            u.entry_key(&row(None), b"a").unwrap(),
            u.entry_key(&row(None), b"b").unwrap()
        );
        let n = idx(false);
        assert_ne!(
            n.entry_key(&row(Some(5)), b"a").unwrap(),
            n.entry_key(&row(Some(5)), b"b").unwrap()
        );
    }

    #[test]
    fn entries_sort_by_value_with_null_last() {
        let n = idx(false);
        let a = n.entry_key(&row(Some(-3)), b"z").unwrap();
        let b = n.entry_key(&row(Some(4)), b"a").unwrap();
        let c = n.entry_key(&row(None), b"a").unwrap();
        assert!(a < b && b < c);
        let p = n.prefix(&[&ScalarValue::Int32(Some(4))]).unwrap();
        assert!(b.starts_with(&p));
    }

    #[test]
    fn descending_columns_sort_backwards_with_nulls_first() {
        let mut d = idx(false);
        d.descending = vec![true];
        let key = |v: Option<i32>, pk: &[u8]| d.entry_key(&row(v), pk).unwrap();
        let (null, hi, lo) = (key(None, b"a"), key(Some(4), b"a"), key(Some(-3), b"a"));
        assert!(null < hi && hi < lo, "DESC is NULLS FIRST by default");
        // Ties still sort by primary key, ascending.
        assert!(key(Some(4), b"a") < key(Some(4), b"b"));
        d.nulls_first = vec![false];
        let key = |v: Option<i32>| d.entry_key(&row(v), b"a").unwrap();
        assert!(key(Some(4)) < key(Some(-3)) && key(Some(-3)) < key(None));
        // Strings: a value and its extensions, inverted, still order backwards.
        let mut t = idx(false);
        t.descending = vec![true];
        let s = |v: &str| {
            t.entry_key(
                &vec![
                    ScalarValue::Int32(Some(1)),
                    ScalarValue::Utf8(Some(v.into())),
                ],
                b"k",
            )
            .unwrap()
        };
        assert!(s("b") < s("ab") && s("ab") < s("a") && s("a\0") < s("a") && s("a") < s(""));
    }
}
