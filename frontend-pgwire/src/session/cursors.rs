//! SQL cursors: `DECLARE name [SCROLL | NO SCROLL] CURSOR [WITH | WITHOUT HOLD] FOR query`,
//! `FETCH [direction] [FROM | IN] name`, `MOVE [direction] [FROM | IN] name` and
//! `CLOSE name | ALL`, with every direction PostgreSQL has (NEXT, PRIOR, FIRST, LAST,
//! ABSOLUTE n, RELATIVE n, n, ALL, FORWARD [n | ALL], BACKWARD [n | ALL]).
//!
//! Drivers use them to stream large results (psycopg's named cursors, Django's
//! `QuerySet.iterator()`, SQLAlchemy's `yield_per`). weft starts the query when the cursor
//! is declared, in the declaring transaction at its read timestamp. A cursor declared
//! without SCROLL **streams**: it holds the query's result stream and only the rows from
//! its position to the end of the last batch read, so FETCH FORWARD n walks a result of
//! any size in constant memory. A SCROLL cursor keeps the whole result in the session.
//! Either holds at most [`CURSOR_BYTES_MAX`] bytes over all of a session's cursors (54000
//! beyond). A cursor without HOLD ends with its transaction; one WITH HOLD lives
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
use futures::stream::BoxStream;
use futures::StreamExt;

use crate::error::{codes, SqlError, SqlResult};

/// The most bytes of results a session's cursors hold at once.
pub const CURSOR_BYTES_MAX: usize = 256 << 20;

/// A declared cursor: its columns, its rows, and where it is.
#[derive(Debug)]
pub struct Cursor {
    pub schema: SchemaRef,
    /// The rows held: all of them, or (streamed) those from the current one to the end of
    /// the last batch read.
    rows: RecordBatch,
    /// How many rows come before `rows`' first.
    offset: usize,
    /// A streamed cursor's rows not read yet; `None` once every row is in `rows`.
    source: Option<Source>,
    /// 0: before the first row; 1..=n: on that row; n + 1: after the last.
    pos: usize,
    pub scroll: bool,
    pub hold: bool,
    pub bytes: usize,
    /// The DECLARE statement, for `pg_cursors`.
    pub statement: String,
}

/// A streamed cursor's rows not read yet.
struct Source(BoxStream<'static, SqlResult<RecordBatch>>);

impl std::fmt::Debug for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Source")
    }
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
            offset: 0,
            source: None,
            pos: 0,
            scroll,
            hold,
            bytes,
            statement: String::new(),
        }
    }

    /// A forward-only cursor over a result stream: it reads batches as FETCH needs them.
    pub fn streamed(rows: crate::sql::outcome::RowStream, hold: bool) -> Cursor {
        Cursor {
            rows: RecordBatch::new_empty(rows.schema.clone()),
            schema: rows.schema,
            offset: 0,
            source: Some(Source(rows.batches)),
            pos: 0,
            scroll: false,
            hold,
            bytes: 0,
            statement: String::new(),
        }
    }

    /// Reads batches until the rows up to `want` (a position) are held or the result ends.
    async fn fill(&mut self, want: usize) -> SqlResult<()> {
        while self.offset + self.rows.num_rows() < want {
            let Some(source) = self.source.as_mut() else {
                return Ok(());
            };
            let Some(batch) = source.0.next().await.transpose()? else {
                self.source = None;
                return Ok(());
            };
            self.rows = arrow::compute::concat_batches(&self.schema, [&self.rows, &batch])
                .map_err(|e| SqlError::internal(e.to_string()))?;
            self.bytes = self.rows.get_array_memory_size();
            if self.bytes > CURSOR_BYTES_MAX {
                return Err(SqlError::new(
                    codes::PROGRAM_LIMIT_EXCEEDED,
                    format!(
                        "the cursor would hold {} bytes, more than the {CURSOR_BYTES_MAX} a session may",
                        self.bytes
                    ),
                )
                .with_hint("fetch fewer rows at once"));
            }
        }
        Ok(())
    }

    /// Moves the cursor; the rows it moves onto, in the order it meets them.
    pub async fn fetch(&mut self, m: Motion) -> SqlResult<RecordBatch> {
        if self.source.is_some() {
            let p = self.pos;
            let want = match m {
                Motion::Forward(Some(k)) => p.saturating_add(k),
                Motion::Absolute(k) if k >= 0 => k as usize,
                Motion::Relative(k) if k > 0 => p.saturating_add(k as usize),
                Motion::Forward(None) | Motion::Absolute(_) => usize::MAX,
                Motion::Backward(_) | Motion::Relative(_) => 0,
            };
            self.fill(want).await?;
        }
        // Every row when the result has ended; enough for this motion when it has not.
        let n = self.offset + self.rows.num_rows();
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
        let offset = self.offset;
        let indices = UInt32Array::from_iter_values(rows.iter().map(|r| (*r - 1 - offset) as u32));
        let columns = self
            .rows
            .columns()
            .iter()
            .map(|c| arrow::compute::take(c.as_ref(), &indices, None))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| SqlError::internal(e.to_string()))?;
        let fetched = RecordBatch::try_new_with_options(
            self.schema.clone(),
            columns,
            &arrow::array::RecordBatchOptions::new().with_row_count(Some(rows.len())),
        )
        .map_err(|e| SqlError::internal(e.to_string()))?;
        // A forward-only cursor forgets the rows before its current one.
        if !self.scroll && target > self.offset + 1 {
            let drop = (target - 1 - self.offset).min(self.rows.num_rows());
            self.rows = self.rows.slice(drop, self.rows.num_rows() - drop);
            self.offset += drop;
            self.bytes = self.rows.get_array_memory_size();
        }
        Ok(fetched)
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

    fn block<T>(f: impl std::future::Future<Output = T>) -> T {
        futures::executor::block_on(f)
    }

    #[test]
    fn fetch_moves_as_postgresql_does() {
        use Motion::*;
        let mut c = cursor(true);
        assert_eq!(rows(&block(c.fetch(Forward(Some(2)))).unwrap()), vec![1, 2]);
        assert_eq!(rows(&block(c.fetch(Forward(Some(2)))).unwrap()), vec![3, 4]);
        assert_eq!(rows(&block(c.fetch(Forward(None))).unwrap()), vec![5]);
        assert!(rows(&block(c.fetch(Forward(Some(1)))).unwrap()).is_empty());
        // After the end, PRIOR is the last row.
        assert_eq!(rows(&block(c.fetch(Backward(Some(1)))).unwrap()), vec![5]);
        assert_eq!(
            rows(&block(c.fetch(Backward(Some(2)))).unwrap()),
            vec![4, 3]
        );
        assert_eq!(rows(&block(c.fetch(Relative(0))).unwrap()), vec![3]);
        assert_eq!(rows(&block(c.fetch(Absolute(-1))).unwrap()), vec![5]);
        assert_eq!(rows(&block(c.fetch(Absolute(2))).unwrap()), vec![2]);
        assert_eq!(rows(&block(c.fetch(Relative(2))).unwrap()), vec![4]);
        assert!(rows(&block(c.fetch(Absolute(9))).unwrap()).is_empty());
        assert_eq!(
            rows(&block(c.fetch(Backward(None))).unwrap()),
            vec![5, 4, 3, 2, 1]
        );
        assert_eq!(rows(&block(c.fetch(Forward(Some(1)))).unwrap()), vec![1]);
    }

    #[test]
    fn backward_needs_scroll() {
        let mut c = cursor(false);
        block(c.fetch(Motion::Forward(Some(3)))).unwrap();
        assert!(block(c.fetch(Motion::Backward(Some(1)))).is_err());
        assert!(block(c.fetch(Motion::Absolute(1))).is_err());
        assert_eq!(rows(&block(c.fetch(Motion::Absolute(5))).unwrap()), vec![5]);
    }

    #[test]
    fn a_streamed_cursor_reads_batches_as_fetch_needs_them() {
        use Motion::*;
        let schema = Arc::new(Schema::new(vec![Field::new("x", DataType::Int32, false)]));
        let batch = |v: Vec<i32>| {
            RecordBatch::try_new(schema.clone(), vec![Arc::new(Int32Array::from(v))]).unwrap()
        };
        let read = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counted = read.clone();
        let batches = futures::stream::iter(vec![
            batch(vec![1, 2, 3]),
            batch(vec![4, 5]),
            batch(vec![6, 7, 8]),
        ])
        .inspect(move |_| {
            counted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        })
        .map(Ok)
        .boxed();
        let mut c = Cursor::streamed(
            crate::sql::outcome::RowStream {
                schema: schema.clone(),
                batches,
            },
            false,
        );
        let reads = || read.load(std::sync::atomic::Ordering::SeqCst);
        assert_eq!(reads(), 0);
        assert_eq!(rows(&block(c.fetch(Forward(Some(2)))).unwrap()), vec![1, 2]);
        assert_eq!(reads(), 1);
        assert_eq!(rows(&block(c.fetch(Forward(Some(2)))).unwrap()), vec![3, 4]);
        assert_eq!(reads(), 2);
        // Only the rows from the current one on are held.
        assert_eq!(c.rows.num_rows(), 2);
        assert!(block(c.fetch(Backward(Some(1)))).is_err());
        assert_eq!(rows(&block(c.fetch(Relative(2))).unwrap()), vec![6]);
        assert_eq!(rows(&block(c.fetch(Absolute(-1))).unwrap()), vec![8]);
        assert!(rows(&block(c.fetch(Forward(None))).unwrap()).is_empty());
        assert!(rows(&block(c.fetch(Forward(Some(5)))).unwrap()).is_empty());
    }
}
