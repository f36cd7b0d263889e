//! Engine errors, grouped by what the caller should do about them.

use thiserror::Error;

#[derive(Debug, Error)]
pub enum EngineError {
    /// Durable data failed verification. The node must not serve it.
    #[error("corrupt data in {path}: {detail}")]
    Corrupt { path: String, detail: String },
    /// The object store could not be reached or refused a request; retrying may help.
    #[error("object store error on {path}: {source}")]
    Store {
        path: String,
        #[source]
        source: object_store::Error,
    },
    /// A read waited longer than its bound for storage to apply commits up to its timestamp.
    #[error("storage has applied commits up to {applied} but the read needs {wanted}; gave up after {waited_ms} ms")]
    ReadTimeout {
        wanted: u64,
        applied: u64,
        waited_ms: u64,
    },
    /// The read timestamp is below the horizon: compaction may have dropped versions the
    /// read would need, so it is refused rather than answered wrongly.
    #[error("snapshot too old: reading as of {read_ts} but versions older than {horizon} may have been compacted away")]
    SnapshotTooOld { read_ts: u64, horizon: u64 },
    /// A newer owner has taken over the store: this process must stop writing and serving.
    #[error("this weft process (owner epoch {epoch}) no longer serves: {detail}")]
    Fenced {
        epoch: u64,
        by_epoch: u64,
        detail: String,
    },
    /// No ownership check succeeded within the bound (the store is not answering), so
    /// this process cannot know that it still owns the store and refuses to read.
    #[error("cannot confirm that this weft process (owner epoch {epoch}) still owns the store: no ownership check succeeded in {waited_ms} ms")]
    OwnershipUnconfirmed { epoch: u64, waited_ms: u64 },
    #[error("invalid value: {0}")]
    InvalidValue(String),
    /// Storage is in another process that did not answer (refused, timed out, gone).
    #[error("storage unavailable: {0}")]
    Unavailable(String),
    #[error("arrow: {0}")]
    Arrow(#[from] arrow::error::ArrowError),
    #[error("parquet: {0}")]
    Parquet(#[from] parquet::errors::ParquetError),
    #[error("datafusion: {0}")]
    DataFusion(#[from] datafusion::error::DataFusionError),
    #[error("internal error: {0}")]
    Internal(String),
}

pub type EngineResult<T> = Result<T, EngineError>;
