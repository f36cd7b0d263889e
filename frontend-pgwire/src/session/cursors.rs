//! SQL cursors: `DECLARE name [SCROLL | NO SCROLL] CURSOR [WITH | WITHOUT HOLD] FOR query`,
//! `FETCH [direction] [FROM | IN] name`, `MOVE [direction] [FROM | IN] name` and
//! `CLOSE name | ALL`, with every direction PostgreSQL has (NEXT, PRIOR, FIRST, LAST,
//! ABSOLUTE n, RELATIVE n, n, ALL, FORWARD [n | ALL], BACKWARD [n | ALL]).
//!
//! Drivers use them to stream large results (psycopg's named cursors, Django's
//! `QuerySet.iterator()`, SQLAlchemy's `yield_per`). weft runs the query when the cursor is
//! declared, in the declaring transaction at its read timestamp, and keeps the result in
//! the session, at most [`CURSOR_BYTES_MAX`] bytes of it over all of a session's cursors
//! (54000 beyond). A cursor without HOLD ends with its transaction; one WITH HOLD lives
//! until CLOSE or the end of the session, as in PostgreSQL.
//!
//! The position follows PostgreSQL's model (0 is before the first row, n + 1 after the
//! last): FETCH returns the rows it moves onto, backward ones in backward order, and its
//! command tag is `FETCH n`; MOVE moves the same way and answers `MOVE n`. Moving backward
//! needs a SCROLL cursor (55000 "cursor can only scan forward" otherwise; PostgreSQL allows
//! it for some plans of a cursor declared without either word, weft for none).

use arrow::array::{RecordBatch, UInt32Array};
use arrow::datatypes::SchemaRef;
use datafusion::sql::sqlparser::ast::{
    DeclareType, FetchDirection, Ident, Query, Statement, Value,
};

use crate::error::{codes, SqlError, SqlResult};

/// The most bytes of results a session's cursors hold at once.
pub const CURSOR_BYTES_MAX: usize = 256 << 20;

/// A declared cursor: its columns, its rows, and where it is.
#[derive(Debug)]
pub struct Cursor {
    pub schema: SchemaRef,
    rows: RecordBatch,
    /// 0: before the first row; 1..=n: on that row; n + 1: after the last.
    pos: usize,
    pub scroll: bool,
    pub hold: bool,
    pub bytes: usize,
    /// The DECLARE statement, for `pg_cursors`.
    pub statement: String,
}

/// Where a FETCH or MOVE goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Motion {
    /// The next n rows (`None`: all of them).
    Forward(Option<usize>),
    /// The previous n rows, nearest first (`None`: all of them).
    Backward(Option<usize>),
    /// Onto row k (negative: from the end; 0: before the first row).
    Absolute(i64),
    /// Onto the row k away (0: the current row again).
    Relative(i64),
}

impl Cursor {
    pub fn new(schema: SchemaRef, batches: Vec<RecordBatch>, hold: bool, scroll: bool) -> Cursor {
        let bytes = batches.iter().map(|b| b.get_array_memory_size()).sum();
        let rows = arrow::compute::concat_batches(&schema, &batches)
            .unwrap_or_else(|_| RecordBatch::new_empty(schema.clone()));
        Cursor {
            schema,
            rows,
            pos: 0,
            scroll,
            hold,
            bytes,
            statement: String::new(),
        }
    }

    /// Moves the cursor; the rows it moves onto, in the order it meets them.
    pub fn fetch(&mut self, m: Motion) -> SqlResult<RecordBatch> {
        let n = self.rows.num_rows();
        let p = self.pos.min(n + 1);
        let (target, rows): (usize, Vec<usize>) = match m {
            Motion::Forward(k) => {
                let k = k.unwrap_or(usize::MAX);
                let last = p.saturating_add(k).min(n);
                let rows: Vec<usize> = (p + 1..=last).collect();
                let end = if p.saturating_add(k) > n {
                    n + 1
                } else {
                    p + k
                };
                (end, rows)
            }
            Motion::Backward(k) => {
                let k = k.unwrap_or(usize::MAX);
                let first = p.saturating_sub(k).max(1);
                let rows: Vec<usize> = (first..p.min(n + 1)).rev().collect();
                (p.saturating_sub(k), rows)
            }
            Motion::Absolute(k) => {
                let t = if k >= 0 { k } else { n as i64 + 1 + k };
                let t = t.clamp(0, n as i64 + 1) as usize;
                let rows = if (1..=n).contains(&t) {
                    vec![t]
                } else {
                    vec![]
                };
                (t, rows)
            }
            Motion::Relative(k) => {
                let t = (p as i64 + k).clamp(0, n as i64 + 1) as usize;
                let rows = if (1..=n).contains(&t) {
                    vec![t]
                } else {
                    vec![]
                };
                (t, rows)
            }
        };
        let backward = target < p || matches!(m, Motion::Relative(0) | Motion::Backward(_));
        if backward && !self.scroll {
            return Err(SqlError::new(
                codes::OBJECT_NOT_IN_PREREQUISITE_STATE,
                "cursor can only scan forward",
            )
            .with_hint("Declare it with SCROLL option to enable backward scan."));
        }
        self.pos = target;
        let indices = UInt32Array::from_iter_values(rows.iter().map(|r| (*r - 1) as u32));
        let columns = self
            .rows
            .columns()
            .iter()
            .map(|c| arrow::compute::take(c.as_ref(), &indices, None))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| SqlError::internal(e.to_string()))?;
        RecordBatch::try_new_with_options(
            self.schema.clone(),
            columns,
            &arrow::array::RecordBatchOptions::new().with_row_count(Some(rows.len())),
        )
        .map_err(|e| SqlError::internal(e.to_string()))
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

/// A DECLARE ... CURSOR: its name, whether WITH HOLD, whether SCROLL, and its query.
pub fn declared(stmt: &Statement) -> Option<(String, bool, bool, Query)> {
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
    Some((
        name(&d.names[0]),
        d.hold == Some(true),
        d.scroll == Some(true),
        q.as_ref().clone(),
    ))
}

/// Whether the DECLARE asks for what weft's cursors cannot do (BINARY).
pub fn unsupported_options(stmt: &Statement) -> Option<&'static str> {
    let Statement::Declare { stmts } = stmt else {
        return None;
    };
    let d = stmts.first()?;
    if d.binary == Some(true) {
        Some("BINARY cursors are not supported")
    } else {
        None
    }
}

/// Where a FETCH or MOVE direction goes.
pub fn motion(direction: &FetchDirection) -> SqlResult<Motion> {
    let count = |v: &Value| -> SqlResult<i64> {
        match v {
            Value::Number(n, _) => n
                .parse::<i64>()
                .map_err(|_| SqlError::syntax(format!("FETCH count {n} is not an integer"))),
            _ => Err(SqlError::syntax(format!("FETCH count {v} is not a number"))),
        }
    };
    let signed = |k: i64, forward: bool| {
        if (k >= 0) == forward {
            Motion::Forward(Some(k.unsigned_abs() as usize))
        } else {
            Motion::Backward(Some(k.unsigned_abs() as usize))
        }
    };
    Ok(match direction {
        FetchDirection::Next | FetchDirection::Forward { limit: None } => Motion::Forward(Some(1)),
        FetchDirection::Prior | FetchDirection::Backward { limit: None } => {
            Motion::Backward(Some(1))
        }
        FetchDirection::First => Motion::Absolute(1),
        FetchDirection::Last => Motion::Absolute(-1),
        FetchDirection::Absolute { limit } => Motion::Absolute(count(&limit.value)?),
        FetchDirection::Relative { limit } => Motion::Relative(count(&limit.value)?),
        // FETCH 0, FORWARD 0 and BACKWARD 0 fetch the current row again.
        FetchDirection::Count { limit } | FetchDirection::Forward { limit: Some(limit) } => {
            match count(&limit.value)? {
                0 => Motion::Relative(0),
                k => signed(k, true),
            }
        }
        FetchDirection::Backward { limit: Some(limit) } => match count(&limit.value)? {
            0 => Motion::Relative(0),
            k => signed(k, false),
        },
        FetchDirection::All | FetchDirection::ForwardAll => Motion::Forward(None),
        FetchDirection::BackwardAll => Motion::Backward(None),
    })
}

impl Motion {
    /// The same motion with its count negated.
    pub fn negated(self) -> Motion {
        match self {
            Motion::Forward(k) => Motion::Backward(k),
            Motion::Backward(k) => Motion::Forward(k),
            Motion::Absolute(k) => Motion::Absolute(-k),
            Motion::Relative(k) => Motion::Relative(-k),
        }
    }
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

    fn rows(b: &RecordBatch) -> Vec<i32> {
        b.column(0)
            .as_any()
            .downcast_ref::<Int32Array>()
            .unwrap()
            .values()
            .to_vec()
    }

    fn cursor(scroll: bool) -> Cursor {
        let schema = Arc::new(Schema::new(vec![Field::new("x", DataType::Int32, false)]));
        let batch = |v: Vec<i32>| {
            RecordBatch::try_new(schema.clone(), vec![Arc::new(Int32Array::from(v))]).unwrap()
        };
        Cursor::new(
            schema.clone(),
            vec![batch(vec![1, 2, 3]), batch(vec![4, 5])],
            false,
            scroll,
        )
    }

    #[test]
    fn fetch_moves_as_postgresql_does() {
        use Motion::*;
        let mut c = cursor(true);
        assert_eq!(rows(&c.fetch(Forward(Some(2))).unwrap()), vec![1, 2]);
        assert_eq!(rows(&c.fetch(Forward(Some(2))).unwrap()), vec![3, 4]);
        assert_eq!(rows(&c.fetch(Forward(None)).unwrap()), vec![5]);
        assert!(rows(&c.fetch(Forward(Some(1))).unwrap()).is_empty());
        // After the end, PRIOR is the last row.
        assert_eq!(rows(&c.fetch(Backward(Some(1))).unwrap()), vec![5]);
        assert_eq!(rows(&c.fetch(Backward(Some(2))).unwrap()), vec![4, 3]);
        assert_eq!(rows(&c.fetch(Relative(0)).unwrap()), vec![3]);
        assert_eq!(rows(&c.fetch(Absolute(-1)).unwrap()), vec![5]);
        assert_eq!(rows(&c.fetch(Absolute(2)).unwrap()), vec![2]);
        assert_eq!(rows(&c.fetch(Relative(2)).unwrap()), vec![4]);
        assert!(rows(&c.fetch(Absolute(9)).unwrap()).is_empty());
        assert_eq!(rows(&c.fetch(Backward(None)).unwrap()), vec![5, 4, 3, 2, 1]);
        assert_eq!(rows(&c.fetch(Forward(Some(1))).unwrap()), vec![1]);
    }

    #[test]
    fn backward_needs_scroll() {
        let mut c = cursor(false);
        c.fetch(Motion::Forward(Some(3))).unwrap();
        assert!(c.fetch(Motion::Backward(Some(1))).is_err());
        assert!(c.fetch(Motion::Absolute(1)).is_err());
        assert_eq!(rows(&c.fetch(Motion::Absolute(5)).unwrap()), vec![5]);
    }
}
