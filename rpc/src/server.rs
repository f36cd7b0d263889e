//! The serving side: a process's storage node and adjudicator behind Arrow Flight, for
//! frontends in other processes. Actions carry point reads, commits and status; `DoGet`
//! streams a scan's record batches as the storage node produces them.

use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use arrow_flight::encode::FlightDataEncoderBuilder;
use arrow_flight::error::FlightError;
use arrow_flight::flight_service_server::{FlightService, FlightServiceServer};
use arrow_flight::{
    Action, ActionType, Criteria, Empty, FlightData, FlightDescriptor, FlightInfo,
    HandshakeRequest, HandshakeResponse, PollInfo, PutResult, SchemaResult, Ticket,
};
use bytes::Bytes;
use futures::stream::BoxStream;
use futures::{Stream, StreamExt, TryStreamExt};
use prost::Message;
use tokio::net::TcpListener;
use tonic::{Request, Response, Status, Streaming};
use weft_engine::service::StorageService;
use weft_engine::storage::StorageNode;
use weft_engine::EngineError;
use weft_journal::{Adjudicator, CommitError};

use crate::wire::{self, action, ErrorMsg};
use crate::{MESSAGE_BYTES_MAX, STREAMS_PER_CONNECTION_MAX};

/// How long a connection may stay silent before the server checks it with a ping.
const KEEPALIVE: Duration = Duration::from_secs(10);

/// What a serving process exposes.
#[derive(Clone)]
pub struct Backend {
    pub storage: Arc<StorageNode>,
    pub adjudicator: Arc<Adjudicator>,
}

/// Serves `backend` on `listener` until the returned future is dropped or fails.
pub async fn serve(listener: TcpListener, backend: Backend) -> Result<(), tonic::transport::Error> {
    let service = FlightServiceServer::new(backend)
        .max_decoding_message_size(MESSAGE_BYTES_MAX)
        .max_encoding_message_size(MESSAGE_BYTES_MAX);
    tonic::transport::Server::builder()
        .http2_keepalive_interval(Some(KEEPALIVE))
        .http2_keepalive_timeout(Some(KEEPALIVE))
        .max_concurrent_streams(Some(STREAMS_PER_CONNECTION_MAX))
        .tcp_nodelay(true)
        .add_service(service)
        .serve_with_incoming(tokio_stream_of(listener))
        .await
}

fn tokio_stream_of(
    listener: TcpListener,
) -> impl Stream<Item = std::io::Result<tokio::net::TcpStream>> {
    futures::stream::unfold(listener, |l| async move {
        let next = l.accept().await.map(|(s, _)| {
            let _ = s.set_nodelay(true);
            s
        });
        Some((next, l))
    })
}

fn status_of(code: tonic::Code, message: String, m: ErrorMsg) -> Status {
    Status::with_details(code, message, Bytes::from(m.encode_to_vec()))
}

fn engine_status(e: EngineError) -> Status {
    let m = wire::engine_error_msg(&e);
    status_of(tonic::Code::Aborted, e.to_string(), m)
}

fn commit_status(e: CommitError) -> Status {
    let m = wire::commit_error_msg(&e);
    status_of(tonic::Code::Aborted, e.to_string(), m)
}

fn bad_request(what: &str, e: impl std::fmt::Display) -> Status {
    Status::invalid_argument(format!("malformed {what}: {e}"))
}

fn one(body: Vec<u8>) -> Response<BoxStream<'static, Result<arrow_flight::Result, Status>>> {
    Response::new(
        futures::stream::once(async move { Ok(arrow_flight::Result { body: body.into() }) })
            .boxed(),
    )
}

impl Backend {
    /// A read at a timestamp far ahead of this process's clock would hold every later
    /// commit's timestamp above it: refused ([`crate::READ_AHEAD_MAX`]).
    fn check_ts(&self, ts: u64) -> Result<(), Status> {
        let now = self.adjudicator.now();
        let max = now.saturating_add(crate::READ_AHEAD_MAX.as_nanos() as u64);
        if ts > max {
            return Err(engine_status(EngineError::InvalidValue(format!(
                "read timestamp {ts} is {} ms ahead of the storage process's clock (at most {} ms): check the frontend's clock",
                (ts - now) / 1_000_000,
                crate::READ_AHEAD_MAX.as_millis()
            ))));
        }
        Ok(())
    }

    async fn act(&self, action: Action) -> Result<Vec<u8>, Status> {
        match action.r#type.as_str() {
            action::GET_MANY => {
                let m = wire::ReadMsg::decode(action.body).map_err(|e| bad_request("read", e))?;
                self.check_ts(m.ts)?;
                let keys: Vec<&[u8]> = m.keys.iter().map(Vec::as_slice).collect();
                let rows = self
                    .storage
                    .get_many(m.table_id, &keys, m.ts)
                    .await
                    .map_err(engine_status)?;
                let bytes = wire::encode_rows(m.keys.clone(), rows).map_err(engine_status)?;
                Ok(wire::RowsMsg {
                    rows: bytes,
                    complete: true,
                    ts: 0,
                }
                .encode_to_vec())
            }
            action::RANGE_GET => {
                let m = wire::ReadMsg::decode(action.body).map_err(|e| bad_request("read", e))?;
                self.check_ts(m.ts)?;
                let lo = m.keys.first().cloned().unwrap_or_default();
                let found = self
                    .storage
                    .range_get(
                        m.table_id,
                        (&lo, m.hi.as_deref()),
                        m.ts,
                        m.rows_max as usize,
                    )
                    .await
                    .map_err(engine_status)?;
                let (rows, complete) = match found {
                    Some(rows) => {
                        let (k, r): (Vec<_>, Vec<_>) =
                            rows.into_iter().map(|(k, r)| (k, Some(r))).unzip();
                        (wire::encode_rows(k, r).map_err(engine_status)?, true)
                    }
                    None => (Vec::new(), false),
                };
                Ok(wire::RowsMsg {
                    rows,
                    complete,
                    ts: 0,
                }
                .encode_to_vec())
            }
            action::SCAN_ROWS => {
                let m = wire::ReadMsg::decode(action.body).map_err(|e| bad_request("read", e))?;
                self.check_ts(m.ts)?;
                let schema = wire::decode_schema(&m.schema).map_err(engine_status)?;
                let found = self
                    .storage
                    .scan(m.table_id, schema, m.ts)
                    .await
                    .map_err(engine_status)?;
                let (k, r): (Vec<_>, Vec<_>) = found.into_iter().map(|(k, r)| (k, Some(r))).unzip();
                Ok(wire::RowsMsg {
                    rows: wire::encode_rows(k, r).map_err(engine_status)?,
                    complete: true,
                    ts: 0,
                }
                .encode_to_vec())
            }
            action::WRITTEN_TS => {
                let mut m =
                    wire::WrittenMsg::decode(action.body).map_err(|e| bad_request("written", e))?;
                self.check_ts(m.ts)?;
                if m.table_ids.len() > crate::written::TABLES_MAX {
                    return Err(Status::invalid_argument("too many tables in one call"));
                }
                // The first waits for storage to apply up to `ts`; the others are lookups.
                let mut written = Vec::with_capacity(m.table_ids.len());
                for &t in &m.table_ids {
                    written.push(
                        self.storage
                            .written_ts(t, m.ts)
                            .await
                            .map_err(engine_status)?,
                    );
                }
                m.written = written;
                Ok(m.encode_to_vec())
            }
            action::SEGMENT_BYTES => {
                let (table_ids, bytes) = StorageService::segment_bytes(&self.storage)
                    .await
                    .map_err(engine_status)?
                    .into_iter()
                    .unzip();
                Ok(wire::SizesMsg { table_ids, bytes }.encode_to_vec())
            }
            action::STATUS => Ok(wire::StatusMsg {
                epoch: self.storage.lease().epoch(),
                in_flight: self.adjudicator.sequencer().in_flight() as u64,
                last_assigned: self.adjudicator.sequencer().last_assigned(),
                applied: self.storage.applied_ts(),
                durable: self.adjudicator.sequencer().durable_max(),
            }
            .encode_to_vec()),
            action::COMMIT => {
                let m =
                    wire::CommitMsg::decode(action.body).map_err(|e| bad_request("commit", e))?;
                let req = wire::decode_commit(m).map_err(commit_status)?;
                self.check_ts(req.start_ts)?;
                // The transaction read at a timestamp of the frontend's clock: its commit
                // must be ordered after it.
                self.adjudicator.sequencer().observe(req.start_ts);
                let ts = self.adjudicator.commit(req).await.map_err(commit_status)?;
                Ok(wire::CommitReplyMsg { commit_ts: ts }.encode_to_vec())
            }
            other => Err(Status::unimplemented(format!("no action {other:?}"))),
        }
    }
}

type Boxed<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send + 'static>>;

#[tonic::async_trait]
impl FlightService for Backend {
    type HandshakeStream = Boxed<HandshakeResponse>;
    type ListFlightsStream = Boxed<FlightInfo>;
    type DoGetStream = Boxed<FlightData>;
    type DoPutStream = Boxed<PutResult>;
    type DoExchangeStream = Boxed<FlightData>;
    type DoActionStream = BoxStream<'static, Result<arrow_flight::Result, Status>>;
    type ListActionsStream = Boxed<ActionType>;

    async fn do_action(
        &self,
        request: Request<Action>,
    ) -> Result<Response<Self::DoActionStream>, Status> {
        let body = self.act(request.into_inner()).await?;
        Ok(one(body))
    }

    async fn do_get(
        &self,
        request: Request<Ticket>,
    ) -> Result<Response<Self::DoGetStream>, Status> {
        let m = wire::ScanMsg::decode(request.into_inner().ticket)
            .map_err(|e| bad_request("scan", e))?;
        let req = wire::decode_scan(m).map_err(engine_status)?;
        self.check_ts(req.read_ts)?;
        let schema = weft_engine::storage::scan::scan_schema(&req);
        let stream = self.storage.scan_stream(req).await.map_err(engine_status)?;
        let batches = stream.map_err(|e| FlightError::ExternalError(Box::new(e)));
        let data = FlightDataEncoderBuilder::new()
            .with_schema(schema)
            .build(batches)
            .map_err(|e| match e {
                FlightError::Tonic(s) => *s,
                other => engine_status(EngineError::Internal(other.to_string())),
            });
        Ok(Response::new(Box::pin(data)))
    }

    async fn list_actions(
        &self,
        _request: Request<Empty>,
    ) -> Result<Response<Self::ListActionsStream>, Status> {
        let names = [
            action::GET_MANY,
            action::RANGE_GET,
            action::SCAN_ROWS,
            action::WRITTEN_TS,
            action::SEGMENT_BYTES,
            action::STATUS,
            action::COMMIT,
        ];
        let types: Vec<Result<ActionType, Status>> = names
            .iter()
            .map(|n| {
                Ok(ActionType {
                    r#type: n.to_string(),
                    description: String::new(),
                })
            })
            .collect();
        Ok(Response::new(Box::pin(futures::stream::iter(types))))
    }

    async fn handshake(
        &self,
        _request: Request<Streaming<HandshakeRequest>>,
    ) -> Result<Response<Self::HandshakeStream>, Status> {
        Err(Status::unimplemented("handshake"))
    }

    async fn list_flights(
        &self,
        _request: Request<Criteria>,
    ) -> Result<Response<Self::ListFlightsStream>, Status> {
        Err(Status::unimplemented("list_flights"))
    }

    async fn get_flight_info(
        &self,
        _request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        Err(Status::unimplemented("get_flight_info"))
    }

    async fn poll_flight_info(
        &self,
        _request: Request<FlightDescriptor>,
    ) -> Result<Response<PollInfo>, Status> {
        Err(Status::unimplemented("poll_flight_info"))
    }

    async fn get_schema(
        &self,
        _request: Request<FlightDescriptor>,
    ) -> Result<Response<SchemaResult>, Status> {
        Err(Status::unimplemented("get_schema"))
    }

    async fn do_put(
        &self,
        _request: Request<Streaming<FlightData>>,
    ) -> Result<Response<Self::DoPutStream>, Status> {
        Err(Status::unimplemented("do_put"))
    }

    async fn do_exchange(
        &self,
        _request: Request<Streaming<FlightData>>,
    ) -> Result<Response<Self::DoExchangeStream>, Status> {
        Err(Status::unimplemented("do_exchange"))
    }
}
