//! SQL cursors: `DECLARE name [NO SCROLL] CURSOR [WITH | WITHOUT HOLD] FOR query`,
//! `FETCH [NEXT | FORWARD [n | ALL] | n | ALL] [FROM | IN] name` and `CLOSE name | ALL`.
//!
//! Drivers use them to stream large results (psycopg's named cursors, Django's
//! `QuerySet.iterator()`, SQLAlchemy's `yield_per`). weft runs the query when the cursor is
//! declared, in the declaring transaction at its read timestamp, and keeps the result in
//! the session, at most [`CURSOR_BYTES_MAX`] bytes of it over all of a session's cursors
//! (54000 beyond). FETCH hands the rows out in order. A cursor without HOLD ends with its
//! transaction; one WITH HOLD lives until CLOSE or the end of the session, as in
//! PostgreSQL. Cursors only move forward (FETCH PRIOR, BACKWARD, ABSOLUTE, RELATIVE, FIRST
//! and LAST answer 0A000), and FETCH's command tag is `SELECT n` where PostgreSQL's is
//! `FETCH n`.

use std::collections::VecDeque;

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use datafusion::sql::sqlparser::ast::{
    DeclareType, FetchDirection, Ident, Query, Statement, Value,
};

use crate::error::{codes, SqlError, SqlResult};

/// The most bytes of results a session's cursors hold at once.
pub const CURSOR_BYTES_MAX: usize = 256 << 20;

/// A declared cursor: its columns and the rows not fetched yet.
#[derive(Debug)]
pub struct Cursor {
    pub schema: SchemaRef,
    remaining: VecDeque<RecordBatch>,
    pub hold: bool,
    pub bytes: usize,
    /// The DECLARE statement, for `pg_cursors`.
    pub statement: String,
}

impl Cursor {
    pub fn new(schema: SchemaRef, batches: Vec<RecordBatch>, hold: bool) -> Cursor {
        let bytes = batches.iter().map(|b| b.get_array_memory_size()).sum();
        Cursor {
            schema,
            remaining: batches.into_iter().filter(|b| b.num_rows() > 0).collect(),
            hold,
            bytes,
            statement: String::new(),
        }
    }

    /// The next `n` rows (all that are left for `None`).
    pub fn take(&mut self, n: Option<usize>) -> Vec<RecordBatch> {
        let mut want = n.unwrap_or(usize::MAX);
        let mut out = Vec::new();
        while want > 0 {
            let Some(b) = self.remaining.pop_front() else {
                break;
            };
            if b.num_rows() <= want {
                want -= b.num_rows();
                out.push(b);
            } else {
                out.push(b.slice(0, want));
                self.remaining
                    .push_front(b.slice(want, b.num_rows() - want));
                want = 0;
            }
        }
        out
    }
}

/// A cursor's name as the session keys it (unquoted names fold to lower case).
pub fn name(i: &Ident) -> String {
    if i.quote_style.is_some() {
        i.value.clone()
    } else {
        i.value.to_lowercase()
    }
}

/// A DECLARE ... CURSOR: its name, whether WITH HOLD, and its query.
pub fn declared(stmt: &Statement) -> Option<(String, bool, Query)> {
    let Statement::Declare { stmts } = stmt else {
        return None;
    };
    let [d] = stmts.as_slice() else {
        return None;
    };
    if !matches!(d.declare_type, Some(DeclareType::Cursor)) || d.names.len() != 1 {
        return None;
    }
    let q = d.for_query.as_ref()?;
    Some((name(&d.names[0]), d.hold == Some(true), q.as_ref().clone()))
}

/// Whether the DECLARE asks for what weft's cursors cannot do (SCROLL, BINARY).
pub fn unsupported_options(stmt: &Statement) -> Option<&'static str> {
    let Statement::Declare { stmts } = stmt else {
        return None;
    };
    let d = stmts.first()?;
    if d.scroll == Some(true) {
        Some("SCROLL cursors are not supported: weft's cursors only move forward")
    } else if d.binary == Some(true) {
        Some("BINARY cursors are not supported")
    } else {
        None
    }
}

/// How many rows a FETCH takes: `None` for all.
pub fn fetch_count(direction: &FetchDirection) -> SqlResult<Option<usize>> {
    let count = |v: &Value| -> SqlResult<Option<usize>> {
        match v {
            Value::Number(n, _) => match n.parse::<i64>() {
                Ok(n) if n >= 0 => Ok(Some(n as usize)),
                _ => Err(backward()),
            },
            _ => Err(SqlError::syntax(format!("FETCH count {v} is not a number"))),
        }
    };
    match direction {
        FetchDirection::Next => Ok(Some(1)),
        FetchDirection::Forward { limit: None } => Ok(Some(1)),
        FetchDirection::Forward { limit: Some(v) } | FetchDirection::Count { limit: v } => {
            count(&v.value)
        }
        FetchDirection::All | FetchDirection::ForwardAll => Ok(None),
        _ => Err(backward()),
    }
}

fn backward() -> SqlError {
    SqlError::new(
        codes::FEATURE_NOT_SUPPORTED,
        "weft's cursors only move forward: FETCH NEXT, FORWARD [n | ALL], n or ALL",
    )
}

pub fn does_not_exist(name: &str) -> SqlError {
    SqlError::new("34000", format!("cursor \"{name}\" does not exist"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::Int32Array;
    use arrow::datatypes::{DataType, Field, Schema};
    use std::sync::Arc;

    #[test]
    fn fetch_hands_rows_out_in_order() {
        let schema = Arc::new(Schema::new(vec![Field::new("x", DataType::Int32, false)]));
        let batch = |v: Vec<i32>| {
            RecordBatch::try_new(schema.clone(), vec![Arc::new(Int32Array::from(v))]).unwrap()
        };
        let mut c = Cursor::new(
            schema.clone(),
            vec![batch(vec![1, 2, 3]), batch(vec![4, 5])],
            false,
        );
        let rows = |bs: Vec<RecordBatch>| -> Vec<i32> {
            bs.iter()
                .flat_map(|b| {
                    b.column(0)
                        .as_any()
                        .downcast_ref::<Int32Array>()
                        .unwrap()
                        .values()
                        .to_vec()
                })
                .collect()
        };
        assert_eq!(rows(c.take(Some(2))), vec![1, 2]);
        assert_eq!(rows(c.take(Some(2))), vec![3, 4]);
        assert_eq!(rows(c.take(None)), vec![5]);
        assert!(c.take(Some(1)).is_empty());
    }
}
