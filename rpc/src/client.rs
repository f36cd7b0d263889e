//! The calling side: a frontend's storage and adjudicator when both are in another
//! process ([`RemoteStorage`], [`RemoteCommits`]). Every call has a deadline; a call that
//! fails in transport is an error the client sees (storage: 08006; a commit: 08007, its
//! outcome unknown), never a wrong answer.

use std::sync::Arc;
use std::time::Duration;

use arrow::datatypes::SchemaRef;
use async_trait::async_trait;
use datafusion::physical_plan::ExecutionPlan;
use prost::Message;
use weft_engine::ownership::Lease;
use weft_engine::service::{KeyedRows, StorageService};
use weft_engine::storage::scan::ScanRequest;
use weft_engine::storage::ReadPin;
use weft_engine::{Clock, EngineError, EngineResult, Row, Timestamp};
use weft_journal::{CommitError, CommitRequest, CommitService};

use crate::peer::{call, commit_error, engine_error, Peer};
use crate::wire::{self, action};

/// Storage in another process.
#[derive(Debug)]
pub struct RemoteStorage {
    peer: Arc<Peer>,
    lease: Arc<Lease>,
    written: std::sync::Mutex<crate::written::WrittenMemo>,
}

impl RemoteStorage {
    pub fn new(peer: Arc<Peer>) -> RemoteStorage {
        RemoteStorage {
            peer,
            // The serving process holds the store's lease and refuses reads once fenced;
            // a frontend's sessions see that as the error of their next read.
            lease: Lease::exclusive(0),
            written: Default::default(),
        }
    }

    fn memo(&self) -> std::sync::MutexGuard<'_, crate::written::WrittenMemo> {
        self.written.lock().unwrap_or_else(|e| e.into_inner())
    }

    async fn rows(&self, name: &str, m: wire::ReadMsg) -> EngineResult<wire::RowsMsg> {
        let body = call(&self.peer, name, m.encode_to_vec())
            .await
            .map_err(engine_error)?;
        wire::RowsMsg::decode(body)
            .map_err(|e| EngineError::Internal(format!("malformed reply to {name}: {e}")))
    }
}

fn present(keys: Vec<Vec<u8>>, rows: Vec<Option<Arc<Row>>>) -> KeyedRows {
    keys.into_iter()
        .zip(rows)
        .filter_map(|(k, r)| r.map(|r| (k, r)))
        .collect()
}

#[async_trait]
impl StorageService for RemoteStorage {
    async fn get(
        &self,
        table_id: u64,
        key: &[u8],
        ts: Timestamp,
    ) -> EngineResult<Option<Arc<Row>>> {
        Ok(self
            .get_many(table_id, &[key], ts)
            .await?
            .into_iter()
            .next()
            .flatten())
    }

    async fn get_many(
        &self,
        table_id: u64,
        keys: &[&[u8]],
        ts: Timestamp,
    ) -> EngineResult<Vec<Option<Arc<Row>>>> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let reply = self
            .rows(
                action::GET_MANY,
                wire::ReadMsg {
                    table_id,
                    ts,
                    keys: keys.iter().map(|k| k.to_vec()).collect(),
                    ..Default::default()
                },
            )
            .await?;
        let (_, rows) = wire::decode_rows(&reply.rows)?;
        if rows.len() != keys.len() {
            return Err(EngineError::Internal(format!(
                "storage answered {} rows for {} keys",
                rows.len(),
                keys.len()
            )));
        }
        Ok(rows)
    }

    async fn range_get(
        &self,
        table_id: u64,
        (lo, hi): (&[u8], Option<&[u8]>),
        ts: Timestamp,
        rows_max: usize,
    ) -> EngineResult<Option<KeyedRows>> {
        let reply = self
            .rows(
                action::RANGE_GET,
                wire::ReadMsg {
                    table_id,
                    ts,
                    keys: vec![lo.to_vec()],
                    hi: hi.map(<[u8]>::to_vec),
                    rows_max: rows_max as u64,
                    ..Default::default()
                },
            )
            .await?;
        if !reply.complete {
            return Ok(None);
        }
        let (keys, rows) = wire::decode_rows(&reply.rows)?;
        Ok(Some(present(keys, rows)))
    }

    async fn plan_scan(
        &self,
        req: ScanRequest,
        _key_columns: Vec<usize>,
    ) -> EngineResult<Arc<dyn ExecutionPlan>> {
        Ok(Arc::new(crate::scan::RemoteScanExec::new(
            self.peer.clone(),
            req,
        )?))
    }

    async fn scan(
        &self,
        table_id: u64,
        schema: SchemaRef,
        ts: Timestamp,
    ) -> EngineResult<KeyedRows> {
        let reply = self
            .rows(
                action::SCAN_ROWS,
                wire::ReadMsg {
                    table_id,
                    ts,
                    schema: wire::encode_schema(&schema)?,
                    ..Default::default()
                },
            )
            .await?;
        let (keys, rows) = wire::decode_rows(&reply.rows)?;
        Ok(present(keys, rows))
    }

    async fn written_ts(&self, table_id: u64, ts: Timestamp) -> EngineResult<Timestamp> {
        let table_ids = {
            let mut memo = self.memo();
            if let Some(w) = memo.lookup(table_id, ts) {
                return Ok(w);
            }
            memo.to_ask(table_id)
        };
        let asked = wire::WrittenMsg {
            ts,
            table_ids,
            written: Vec::new(),
        };
        let body = call(&self.peer, action::WRITTEN_TS, asked.encode_to_vec())
            .await
            .map_err(engine_error)?;
        let reply = wire::WrittenMsg::decode(body)
            .map_err(|e| EngineError::Internal(format!("malformed reply to written_ts: {e}")))?;
        if reply.written.len() != asked.table_ids.len() || reply.written.is_empty() {
            return Err(EngineError::Internal(format!(
                "written_ts: {} answers for {} tables",
                reply.written.len(),
                asked.table_ids.len()
            )));
        }
        let first = reply.written[0];
        self.memo()
            .record(ts, asked.table_ids.into_iter().zip(reply.written));
        Ok(first)
    }

    fn horizon_ts(&self) -> Timestamp {
        // The serving process refuses reads below its horizon (72000) when they come.
        0
    }

    fn pin(&self, ts: Timestamp) -> ReadPin {
        ReadPin::detached(ts)
    }

    async fn segment_bytes(&self) -> EngineResult<Vec<(u64, u64)>> {
        let body = call(&self.peer, action::SEGMENT_BYTES, Vec::new())
            .await
            .map_err(engine_error)?;
        let m = wire::SizesMsg::decode(body)
            .map_err(|e| EngineError::Internal(format!("malformed reply to segment_bytes: {e}")))?;
        Ok(m.table_ids.into_iter().zip(m.bytes).collect())
    }

    fn lease(&self) -> Arc<Lease> {
        self.lease.clone()
    }
}

/// The adjudicator in another process. Read timestamps come from this process's clock
/// (its latest bound); a commit is acknowledged only once this clock's earliest bound has
/// passed its timestamp (commit wait), so that a read that starts afterwards, on any
/// frontend whose clock keeps the same bound, reads at or above it.
pub struct RemoteCommits {
    peer: Arc<Peer>,
    clock: Arc<dyn Clock>,
}

impl RemoteCommits {
    pub fn new(peer: Arc<Peer>, clock: Arc<dyn Clock>) -> RemoteCommits {
        RemoteCommits { peer, clock }
    }

    /// The serving process's owner epoch and where its commits stand.
    pub async fn status(&self) -> Result<wire::StatusMsg, EngineError> {
        let body = call(&self.peer, action::STATUS, Vec::new())
            .await
            .map_err(engine_error)?;
        wire::StatusMsg::decode(body)
            .map_err(|e| EngineError::Internal(format!("malformed reply to status: {e}")))
    }
}

#[async_trait]
impl CommitService for RemoteCommits {
    fn read_ts(&self) -> Timestamp {
        self.clock.now().latest
    }

    fn now(&self) -> Timestamp {
        self.clock.now().latest
    }

    fn last_assigned(&self) -> Timestamp {
        self.clock.now().latest
    }

    fn in_flight(&self) -> Option<usize> {
        None
    }

    async fn commit(&self, req: CommitRequest) -> Result<Timestamp, CommitError> {
        if req.is_read_only() {
            return Ok(req.start_ts);
        }
        let m = wire::encode_commit(req)?;
        let body = call(&self.peer, action::COMMIT, m.encode_to_vec())
            .await
            .map_err(commit_error)?;
        let ts = wire::CommitReplyMsg::decode(body)
            .map_err(|e| CommitError::Unknown(format!("malformed reply to commit: {e}")))?
            .commit_ts;
        // Commit wait: the clock's earliest bound past the commit's timestamp.
        loop {
            let earliest = self.clock.now().earliest;
            if earliest >= ts {
                break;
            }
            tokio::time::sleep(Duration::from_nanos(ts - earliest)).await;
        }
        Ok(ts)
    }
}
