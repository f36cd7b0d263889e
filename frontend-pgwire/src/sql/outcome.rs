//! What a statement produced, in weft's terms: rows, a command tag, COPY's data, notices.
//! The wire layer turns these into protocol messages.

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use futures::stream::BoxStream;
use futures::TryStreamExt;

use crate::error::SqlResult;

/// A command's completion tag (`INSERT 0 3`, `UPDATE 1`, `CREATE TABLE`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandTag {
    pub command: String,
    /// INSERT's oid field (always 0 in PostgreSQL 12 and later).
    pub oid: Option<u32>,
    pub rows: Option<usize>,
}

impl CommandTag {
    pub fn new(command: &str) -> CommandTag {
        CommandTag {
            command: command.to_string(),
            oid: None,
            rows: None,
        }
    }

    pub fn with_rows(mut self, rows: usize) -> CommandTag {
        self.rows = Some(rows);
        self
    }

    pub fn with_oid(mut self, oid: u32) -> CommandTag {
        self.oid = Some(oid);
        self
    }
}

/// What a statement produced.
#[derive(Debug)]
pub enum Outcome {
    Rows {
        schema: SchemaRef,
        batches: Vec<RecordBatch>,
    },
    /// A query's rows, produced batch by batch as the client reads them.
    Stream(RowStream),
    Command(CommandTag),
    /// The rows an INSERT, UPDATE or DELETE returned (RETURNING). Its command tag is the
    /// statement's, with the count of rows sent: `command` is `INSERT 0`, `UPDATE` or
    /// `DELETE`.
    Returned {
        command: &'static str,
        schema: SchemaRef,
        batches: Vec<RecordBatch>,
    },
    /// FETCH's rows (command tag `FETCH n`).
    Fetched {
        schema: SchemaRef,
        batches: Vec<RecordBatch>,
    },
    /// COPY FROM STDIN is ready for the client's data.
    CopyIn(Box<crate::sql::copy::CopyIn>),
    /// COPY TO STDOUT: the rows, to send in `format`.
    CopyOut {
        schema: SchemaRef,
        batches: Vec<RecordBatch>,
        format: crate::sql::copy::CopyFormat,
    },
}

impl Outcome {
    /// The outcome with a streamed result read to its end (for what needs every row at
    /// once: a cursor, COPY TO, EXECUTE's arguments).
    pub async fn materialized(self) -> SqlResult<Outcome> {
        match self {
            Outcome::Stream(s) => {
                let schema = s.schema.clone();
                let batches = s.batches.try_collect().await?;
                Ok(Outcome::Rows { schema, batches })
            }
            other => Ok(other),
        }
    }
}

/// A query's result as a stream of batches. Whatever the rows are read from (the
/// snapshot's segments, the read timestamp's pin, the query's memory) lives as long as
/// the stream.
pub struct RowStream {
    pub schema: SchemaRef,
    pub batches: BoxStream<'static, SqlResult<RecordBatch>>,
}

impl std::fmt::Debug for RowStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RowStream")
            .field("schema", &self.schema)
            .finish_non_exhaustive()
    }
}

/// A NOTICE or WARNING to send before the statement's result.
#[derive(Debug, Clone)]
pub struct Notice {
    pub severity: &'static str,
    pub code: &'static str,
    pub message: String,
}
