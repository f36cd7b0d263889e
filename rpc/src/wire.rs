//! What travels between processes: weft's messages (prost, by hand: no protoc), the rows
//! they carry (Arrow IPC, in the journal's key/op/columns batch), and errors (a message in
//! a gRPC status's details, so that the client rebuilds the error the server had).

use std::sync::Arc;

use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use arrow::ipc::reader::StreamReader;
use arrow::ipc::writer::StreamWriter;
use prost::Message;
use weft_engine::provider::ReadSpan;
use weft_engine::storage::scan::{OutColumn, ScanKind, ScanRequest};
use weft_engine::{EngineError, Row, TableWrites};
use weft_journal::format::{decode_record_body, encode_record};
use weft_journal::{CommitError, CommitRequest};

/// Flight action names, one per call.
pub mod action {
    pub const GET_MANY: &str = "get_many";
    pub const RANGE_GET: &str = "range_get";
    pub const SCAN_ROWS: &str = "scan_rows";
    pub const WRITTEN_TS: &str = "written_ts";
    pub const SEGMENT_BYTES: &str = "segment_bytes";
    pub const COMMIT: &str = "commit";
    pub const STATUS: &str = "status";
}

/// A read of storage at a timestamp.
#[derive(Clone, PartialEq, Message)]
pub struct ReadMsg {
    #[prost(uint64, tag = "1")]
    pub table_id: u64,
    #[prost(uint64, tag = "2")]
    pub ts: u64,
    /// get_many: the keys; range_get: the low end.
    #[prost(bytes = "vec", repeated, tag = "3")]
    pub keys: Vec<Vec<u8>>,
    /// range_get: the high end (exclusive), if any.
    #[prost(bytes = "vec", optional, tag = "4")]
    pub hi: Option<Vec<u8>>,
    #[prost(uint64, tag = "5")]
    pub rows_max: u64,
    /// scan_rows: the table's columns, as an IPC schema message.
    #[prost(bytes = "vec", tag = "6")]
    pub schema: Vec<u8>,
}

/// Rows (keys, and a row or none for each), or a timestamp.
#[derive(Clone, PartialEq, Message)]
pub struct RowsMsg {
    #[prost(bytes = "vec", tag = "1")]
    pub rows: Vec<u8>,
    /// range_get: false when the range was too large to answer by lookups.
    #[prost(bool, tag = "2")]
    pub complete: bool,
    #[prost(uint64, tag = "3")]
    pub ts: u64,
}

/// `written_ts` of several tables at one timestamp: asked with `table_ids`, answered with
/// `written` in the same order.
#[derive(Clone, PartialEq, Message)]
pub struct WrittenMsg {
    #[prost(uint64, tag = "1")]
    pub ts: u64,
    #[prost(uint64, repeated, tag = "2")]
    pub table_ids: Vec<u64>,
    #[prost(uint64, repeated, tag = "3")]
    pub written: Vec<u64>,
}

#[derive(Clone, PartialEq, Message)]
pub struct SizesMsg {
    #[prost(uint64, repeated, tag = "1")]
    pub table_ids: Vec<u64>,
    #[prost(uint64, repeated, tag = "2")]
    pub bytes: Vec<u64>,
}

/// What the serving process is: its owner epoch and where commits stand.
#[derive(Clone, PartialEq, Message)]
pub struct StatusMsg {
    #[prost(uint64, tag = "1")]
    pub epoch: u64,
    #[prost(uint64, tag = "2")]
    pub in_flight: u64,
    #[prost(uint64, tag = "3")]
    pub last_assigned: u64,
    /// The newest commit storage has applied.
    #[prost(uint64, tag = "4")]
    pub applied: u64,
    /// The newest commit durable in every journal.
    #[prost(uint64, tag = "5")]
    pub durable: u64,
}

/// A transaction to commit.
#[derive(Clone, PartialEq, Message)]
pub struct CommitMsg {
    #[prost(uint64, tag = "1")]
    pub start_ts: u64,
    /// The writes, as a journal record body (commit timestamp not yet set).
    #[prost(bytes = "vec", tag = "2")]
    pub record: Vec<u8>,
    #[prost(uint64, repeated, tag = "3")]
    pub locked_tables: Vec<u64>,
    #[prost(bytes = "vec", repeated, tag = "4")]
    pub locked_keys: Vec<Vec<u8>>,
    #[prost(bytes = "vec", repeated, tag = "5")]
    pub schema_keys: Vec<Vec<u8>>,
    #[prost(uint64, tag = "6")]
    pub schema_table: u64,
    #[prost(uint64, repeated, tag = "7")]
    pub read_tables: Vec<u64>,
    /// A key read, or empty with `read_whole` set for a read of the whole table.
    #[prost(bytes = "vec", repeated, tag = "8")]
    pub read_keys: Vec<Vec<u8>>,
    #[prost(bool, repeated, tag = "9")]
    pub read_whole: Vec<bool>,
}

#[derive(Clone, PartialEq, Message)]
pub struct CommitReplyMsg {
    #[prost(uint64, tag = "1")]
    pub commit_ts: u64,
}

/// A scan, as a Flight ticket.
#[derive(Clone, PartialEq, Message)]
pub struct ScanMsg {
    #[prost(uint64, tag = "1")]
    pub table_id: u64,
    #[prost(string, tag = "2")]
    pub table_name: String,
    #[prost(uint64, tag = "3")]
    pub read_ts: u64,
    #[prost(bytes = "vec", tag = "4")]
    pub user_schema: Vec<u8>,
    /// Points (else a range).
    #[prost(bool, tag = "5")]
    pub points: bool,
    #[prost(bytes = "vec", repeated, tag = "6")]
    pub keys: Vec<Vec<u8>>,
    #[prost(bytes = "vec", optional, tag = "7")]
    pub lo: Option<Vec<u8>>,
    #[prost(bytes = "vec", optional, tag = "8")]
    pub hi: Option<Vec<u8>>,
    /// Output columns: a user column's index, or -1 for the key.
    #[prost(int64, repeated, tag = "9")]
    pub columns: Vec<i64>,
    /// The transaction's own writes to the table (rows, as [`encode_rows`] makes them).
    #[prost(bytes = "vec", tag = "10")]
    pub overlay: Vec<u8>,
}

/// An error, as the server had it, in a status's details.
#[derive(Clone, PartialEq, Message)]
pub struct ErrorMsg {
    #[prost(uint32, tag = "1")]
    pub kind: u32,
    #[prost(uint64, tag = "2")]
    pub a: u64,
    #[prost(uint64, tag = "3")]
    pub b: u64,
    #[prost(uint64, tag = "4")]
    pub c: u64,
    #[prost(string, tag = "5")]
    pub text: String,
    #[prost(string, tag = "6")]
    pub text2: String,
}

mod kind {
    pub const INTERNAL: u32 = 0;
    pub const CORRUPT: u32 = 1;
    pub const READ_TIMEOUT: u32 = 2;
    pub const SNAPSHOT_TOO_OLD: u32 = 3;
    pub const FENCED: u32 = 4;
    pub const OWNERSHIP_UNCONFIRMED: u32 = 5;
    pub const INVALID_VALUE: u32 = 6;
    pub const STORE: u32 = 7;
    pub const CONFLICT: u32 = 20;
    pub const COMMIT_UNAVAILABLE: u32 = 21;
    pub const COMMIT_RETRY: u32 = 22;
    pub const COMMIT_FENCED: u32 = 23;
    pub const COMMIT_UNKNOWN: u32 = 24;
}

fn error_msg(kind: u32, text: impl Into<String>) -> ErrorMsg {
    ErrorMsg {
        kind,
        text: text.into(),
        ..Default::default()
    }
}

pub fn engine_error_msg(e: &EngineError) -> ErrorMsg {
    match e {
        EngineError::Corrupt { path, detail } => ErrorMsg {
            kind: kind::CORRUPT,
            text: path.clone(),
            text2: detail.clone(),
            ..Default::default()
        },
        EngineError::ReadTimeout {
            wanted,
            applied,
            waited_ms,
        } => ErrorMsg {
            kind: kind::READ_TIMEOUT,
            a: *wanted,
            b: *applied,
            c: *waited_ms,
            ..Default::default()
        },
        EngineError::SnapshotTooOld { read_ts, horizon } => ErrorMsg {
            kind: kind::SNAPSHOT_TOO_OLD,
            a: *read_ts,
            b: *horizon,
            ..Default::default()
        },
        EngineError::Fenced {
            epoch,
            by_epoch,
            detail,
        } => ErrorMsg {
            kind: kind::FENCED,
            a: *epoch,
            b: *by_epoch,
            text: detail.clone(),
            ..Default::default()
        },
        EngineError::OwnershipUnconfirmed { epoch, waited_ms } => ErrorMsg {
            kind: kind::OWNERSHIP_UNCONFIRMED,
            a: *epoch,
            b: *waited_ms,
            ..Default::default()
        },
        EngineError::InvalidValue(m) => error_msg(kind::INVALID_VALUE, m.clone()),
        EngineError::Store { .. } => error_msg(kind::STORE, e.to_string()),
        other => error_msg(kind::INTERNAL, other.to_string()),
    }
}

pub fn engine_error(m: ErrorMsg) -> EngineError {
    match m.kind {
        kind::CORRUPT => EngineError::Corrupt {
            path: m.text,
            detail: m.text2,
        },
        kind::READ_TIMEOUT => EngineError::ReadTimeout {
            wanted: m.a,
            applied: m.b,
            waited_ms: m.c,
        },
        kind::SNAPSHOT_TOO_OLD => EngineError::SnapshotTooOld {
            read_ts: m.a,
            horizon: m.b,
        },
        kind::FENCED => EngineError::Fenced {
            epoch: m.a,
            by_epoch: m.b,
            detail: m.text,
        },
        kind::OWNERSHIP_UNCONFIRMED => EngineError::OwnershipUnconfirmed {
            epoch: m.a,
            waited_ms: m.b,
        },
        kind::INVALID_VALUE => EngineError::InvalidValue(m.text),
        // The store's own error type does not travel: the storage process's message does.
        kind::STORE => EngineError::Unavailable(m.text),
        _ => EngineError::Internal(m.text),
    }
}

pub fn commit_error_msg(e: &CommitError) -> ErrorMsg {
    match e {
        CommitError::Conflict { code, detail } => ErrorMsg {
            kind: kind::CONFLICT,
            text: code.to_string(),
            text2: detail.clone(),
            ..Default::default()
        },
        CommitError::Unavailable(m) => error_msg(kind::COMMIT_UNAVAILABLE, m.clone()),
        CommitError::Retry(m) => error_msg(kind::COMMIT_RETRY, m.clone()),
        CommitError::Fenced(m) => error_msg(kind::COMMIT_FENCED, m.clone()),
        CommitError::Unknown(m) => error_msg(kind::COMMIT_UNKNOWN, m.clone()),
    }
}

/// The conflict codes the adjudicator gives (`CommitError::Conflict`'s code is static).
fn conflict_code(code: &str) -> &'static str {
    match code {
        "OC001" => "OC001",
        _ => "OC000",
    }
}

pub fn commit_error(m: ErrorMsg) -> CommitError {
    match m.kind {
        kind::CONFLICT => CommitError::Conflict {
            code: conflict_code(&m.text),
            detail: m.text2,
        },
        kind::COMMIT_UNAVAILABLE => CommitError::Unavailable(m.text),
        kind::COMMIT_RETRY => CommitError::Retry(m.text),
        kind::COMMIT_FENCED => CommitError::Fenced(m.text),
        // Anything else, a transport failure included, leaves the outcome unknown.
        _ => CommitError::Unknown(m.text),
    }
}

fn ipc_error(e: impl std::fmt::Display) -> EngineError {
    EngineError::Internal(format!("cannot encode or decode rows for RPC: {e}"))
}

/// Keys with a row or none each, as one IPC stream of the journal's write batch.
pub fn encode_rows(
    keys: Vec<Vec<u8>>,
    rows: Vec<Option<Arc<Row>>>,
) -> Result<Vec<u8>, EngineError> {
    let ncols = rows.iter().flatten().map(|r| r.len()).max().unwrap_or(0);
    let fields: Vec<Field> = (0..ncols)
        .map(|c| {
            let mut present = rows.iter().flatten().filter_map(|r| r.get(c));
            let first = present.clone().next();
            let ty = present
                .find(|v| !v.is_null())
                .or(first)
                .map(|v| v.data_type())
                .unwrap_or(DataType::Null);
            Field::new(format!("c{c}"), ty, true)
        })
        .collect();
    let writes = TableWrites {
        table_id: 0,
        schema: Arc::new(Schema::new(fields)),
        keys,
        rows,
    };
    let batch = writes.to_batch()?;
    let mut out = Vec::new();
    let mut w = StreamWriter::try_new(&mut out, &batch.schema()).map_err(ipc_error)?;
    w.write(&batch).map_err(ipc_error)?;
    w.finish().map_err(ipc_error)?;
    drop(w);
    Ok(out)
}

/// Keys, and a row or none for each (a delete, or a key without a row).
pub type Rows = (Vec<Vec<u8>>, Vec<Option<Arc<Row>>>);

pub fn decode_rows(bytes: &[u8]) -> Result<Rows, EngineError> {
    let mut keys = Vec::new();
    let mut rows = Vec::new();
    if bytes.is_empty() {
        return Ok((keys, rows));
    }
    let reader = StreamReader::try_new(bytes, None).map_err(ipc_error)?;
    for batch in reader {
        let batch = batch.map_err(ipc_error)?;
        let w = TableWrites::from_batch(0, &batch)?;
        keys.extend(w.keys);
        rows.extend(w.rows);
    }
    Ok((keys, rows))
}

pub fn encode_schema(schema: &SchemaRef) -> Result<Vec<u8>, EngineError> {
    let mut out = Vec::new();
    let mut w = StreamWriter::try_new(&mut out, schema).map_err(ipc_error)?;
    w.finish().map_err(ipc_error)?;
    drop(w);
    Ok(out)
}

pub fn decode_schema(bytes: &[u8]) -> Result<SchemaRef, EngineError> {
    Ok(StreamReader::try_new(bytes, None)
        .map_err(ipc_error)?
        .schema())
}

pub fn encode_scan(req: &ScanRequest) -> Result<ScanMsg, EngineError> {
    let (points, keys, lo, hi) = match &req.kind {
        ScanKind::Points(keys) => (true, keys.clone(), None, None),
        ScanKind::Range { lo, hi } => (false, Vec::new(), lo.clone(), hi.clone()),
    };
    let overlay = if req.overlay.is_empty() {
        Vec::new()
    } else {
        let (k, r): (Vec<_>, Vec<_>) = req.overlay.iter().cloned().unzip();
        encode_rows(k, r)?
    };
    Ok(ScanMsg {
        table_id: req.table_id,
        table_name: req.table_name.clone(),
        read_ts: req.read_ts,
        user_schema: encode_schema(&req.user_schema)?,
        points,
        keys,
        lo,
        hi,
        columns: req
            .columns
            .iter()
            .map(|c| match c {
                OutColumn::User(i) => *i as i64,
                OutColumn::Key => -1,
            })
            .collect(),
        overlay,
    })
}

pub fn decode_scan(m: ScanMsg) -> Result<ScanRequest, EngineError> {
    let user_schema = decode_schema(&m.user_schema)?;
    let ncols = user_schema.fields().len();
    let columns = m
        .columns
        .iter()
        .map(|&c| match c {
            -1 => Ok(OutColumn::Key),
            i if i >= 0 && (i as usize) < ncols => Ok(OutColumn::User(i as usize)),
            i => Err(EngineError::InvalidValue(format!(
                "scan column {i} out of range"
            ))),
        })
        .collect::<Result<Vec<_>, _>>()?;
    let (k, r) = decode_rows(&m.overlay)?;
    Ok(ScanRequest {
        table_id: m.table_id,
        table_name: m.table_name,
        read_ts: m.read_ts,
        user_schema,
        kind: if m.points {
            ScanKind::Points(m.keys)
        } else {
            ScanKind::Range { lo: m.lo, hi: m.hi }
        },
        columns,
        overlay: k.into_iter().zip(r).collect(),
        partitions: 1,
    })
}

pub fn encode_commit(req: CommitRequest) -> Result<CommitMsg, CommitError> {
    let record = encode_record(&weft_engine::CommitRecord {
        commit_ts: 0,
        tables: req.tables,
    })
    .map_err(|e| CommitError::Unavailable(format!("cannot encode commit record: {e}")))?;
    let (locked_tables, locked_keys) = req.locked.into_iter().unzip();
    let mut m = CommitMsg {
        start_ts: req.start_ts,
        record,
        locked_tables,
        locked_keys,
        schema_keys: req.schema_keys,
        schema_table: req.schema_table,
        ..Default::default()
    };
    for (t, span) in req.reads {
        m.read_tables.push(t);
        match span {
            ReadSpan::Table => {
                m.read_keys.push(Vec::new());
                m.read_whole.push(true);
            }
            ReadSpan::Key(k) => {
                m.read_keys.push(k);
                m.read_whole.push(false);
            }
        }
    }
    Ok(m)
}

pub fn decode_commit(m: CommitMsg) -> Result<CommitRequest, CommitError> {
    let record = decode_record_body(&m.record)
        .map_err(|e| CommitError::Unavailable(format!("cannot decode commit record: {e}")))?;
    if m.locked_tables.len() != m.locked_keys.len()
        || m.read_tables.len() != m.read_keys.len()
        || m.read_tables.len() != m.read_whole.len()
    {
        return Err(CommitError::Unavailable("malformed commit message".into()));
    }
    Ok(CommitRequest {
        start_ts: m.start_ts,
        tables: record.tables,
        locked: m.locked_tables.into_iter().zip(m.locked_keys).collect(),
        schema_keys: m.schema_keys,
        schema_table: m.schema_table,
        reads: m
            .read_tables
            .into_iter()
            .zip(m.read_keys)
            .zip(m.read_whole)
            .map(|((t, k), whole)| {
                (
                    t,
                    if whole {
                        ReadSpan::Table
                    } else {
                        ReadSpan::Key(k)
                    },
                )
            })
            .collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::scalar::ScalarValue;

    #[test]
    fn rows_survive_the_trip_with_their_types_and_deletes() {
        let rows = vec![
            Some(Arc::new(vec![
                ScalarValue::Int32(Some(7)),
                ScalarValue::Utf8(None),
                ScalarValue::Decimal128(Some(12345), 10, 2),
            ])),
            None,
            Some(Arc::new(vec![
                ScalarValue::Int32(None),
                ScalarValue::Utf8(Some("x".into())),
                ScalarValue::Decimal128(None, 10, 2),
            ])),
        ];
        let keys = vec![b"a".to_vec(), b"b".to_vec(), b"c".to_vec()];
        let bytes = encode_rows(keys.clone(), rows.clone()).unwrap();
        let (k, r) = decode_rows(&bytes).unwrap();
        assert_eq!(k, keys);
        assert_eq!(r, rows);
        let (k, r) = decode_rows(&encode_rows(Vec::new(), Vec::new()).unwrap()).unwrap();
        assert!(k.is_empty() && r.is_empty());
    }

    #[test]
    fn a_commit_request_survives_the_trip() {
        let req = CommitRequest {
            start_ts: 42,
            tables: Vec::new(),
            locked: vec![(5, b"k".to_vec())],
            schema_keys: vec![b"t".to_vec()],
            schema_table: 3,
            reads: vec![(5, ReadSpan::Table), (6, ReadSpan::Key(b"q".to_vec()))],
        };
        let back = decode_commit(encode_commit(req).unwrap()).unwrap();
        assert_eq!(back.start_ts, 42);
        assert_eq!(back.locked, vec![(5, b"k".to_vec())]);
        assert_eq!(back.schema_table, 3);
        assert_eq!(
            back.reads,
            vec![(5, ReadSpan::Table), (6, ReadSpan::Key(b"q".to_vec()))]
        );
    }

    #[test]
    fn errors_come_back_as_the_server_had_them() {
        let e = engine_error(engine_error_msg(&EngineError::SnapshotTooOld {
            read_ts: 1,
            horizon: 2,
        }));
        assert!(matches!(
            e,
            EngineError::SnapshotTooOld {
                read_ts: 1,
                horizon: 2
            }
        ));
        let c = commit_error(commit_error_msg(&CommitError::Retry("r".into())));
        assert!(matches!(c, CommitError::Retry(m) if m == "r"));
    }
}
