//! The connection to the serving process ([`Peer`]): how it is made and renewed, one call
//! over it, and the server's errors rebuilt from what a failed call carries.

use std::sync::Arc;
use std::time::Duration;

use arrow_flight::flight_service_client::FlightServiceClient;
use arrow_flight::Action;
use futures::StreamExt;
use prost::Message;
use tonic::transport::{Channel, Endpoint};
use weft_engine::EngineError;
use weft_journal::CommitError;

use crate::wire;
use crate::MESSAGE_BYTES_MAX;

/// How long a connection attempt to the serving process may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// The deadline of one call (a read waits at most this long for storage to apply up to its
/// timestamp; a commit for its journal batch).
pub const CALL_TIMEOUT: Duration = Duration::from_secs(30);

/// A channel to the serving process at `addr` (`host:port`). It connects lazily and
/// reconnects after failures, so a frontend starts while storage is still starting.
pub fn channel(addr: &str) -> Result<Channel, EngineError> {
    let uri = if addr.contains("://") {
        addr.to_string()
    } else {
        format!("http://{addr}")
    };
    Ok(Endpoint::from_shared(uri)
        .map_err(|e| EngineError::InvalidValue(format!("storage address {addr:?}: {e}")))?
        .connect_timeout(CONNECT_TIMEOUT)
        .timeout(CALL_TIMEOUT)
        .tcp_nodelay(true)
        .http2_keep_alive_interval(Duration::from_secs(10))
        .keep_alive_timeout(Duration::from_secs(10))
        .connect_lazy())
}

/// Streams cancelled on one connection before it is replaced by a fresh one. HTTP/2
/// (h2) counts, over a connection's whole life, the frames a peer sends on streams this
/// side reset, and ends the connection at 1024; a scan cancelled mid-stream (a LIMIT, a
/// cancel request) is one.
pub const CANCELS_PER_CONNECTION_MAX: usize = 256;

/// The connection to the serving process, renewed after
/// [`CANCELS_PER_CONNECTION_MAX`] cancelled streams (calls in flight keep the old one).
#[derive(Debug)]
pub struct Peer {
    addr: String,
    channel: std::sync::Mutex<Channel>,
    cancelled: std::sync::atomic::AtomicUsize,
}

impl Peer {
    pub fn new(addr: &str) -> Result<Arc<Peer>, EngineError> {
        Ok(Arc::new(Peer {
            addr: addr.to_string(),
            channel: std::sync::Mutex::new(channel(addr)?),
            cancelled: Default::default(),
        }))
    }

    pub fn channel(&self) -> Channel {
        self.channel
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// A stream of this connection was dropped before its end.
    pub(crate) fn cancelled(&self) {
        use std::sync::atomic::Ordering;
        if self.cancelled.fetch_add(1, Ordering::Relaxed) + 1 < CANCELS_PER_CONNECTION_MAX {
            return;
        }
        self.cancelled.store(0, Ordering::Relaxed);
        if let Ok(fresh) = channel(&self.addr) {
            *self.channel.lock().unwrap_or_else(|e| e.into_inner()) = fresh;
        }
    }
}

pub(crate) fn client(channel: &Channel) -> FlightServiceClient<Channel> {
    FlightServiceClient::new(channel.clone())
        .max_decoding_message_size(MESSAGE_BYTES_MAX)
        .max_encoding_message_size(MESSAGE_BYTES_MAX)
}

/// The server's error, rebuilt, if the status carries one.
fn details(s: &tonic::Status) -> Option<wire::ErrorMsg> {
    if s.details().is_empty() {
        return None;
    }
    wire::ErrorMsg::decode(s.details()).ok()
}

pub(crate) fn engine_error(s: tonic::Status) -> EngineError {
    match details(&s) {
        Some(m) => wire::engine_error(m),
        None => EngineError::Unavailable(format!("{}: {}", code_name(s.code()), s.message())),
    }
}

pub(crate) fn commit_error(s: tonic::Status) -> CommitError {
    match details(&s) {
        Some(m) => wire::commit_error(m),
        None => CommitError::Unknown(format!(
            "the adjudicator did not answer ({}: {})",
            code_name(s.code()),
            s.message()
        )),
    }
}

fn code_name(c: tonic::Code) -> &'static str {
    match c {
        tonic::Code::Unavailable => "unavailable",
        tonic::Code::DeadlineExceeded => "deadline exceeded",
        tonic::Code::Cancelled => "cancelled",
        tonic::Code::InvalidArgument => "invalid argument",
        tonic::Code::Unimplemented => "unimplemented",
        _ => "error",
    }
}

/// One action: its single reply's body.
pub(crate) async fn call(
    peer: &Peer,
    name: &str,
    body: Vec<u8>,
) -> Result<bytes::Bytes, tonic::Status> {
    let mut stream = client(&peer.channel())
        .do_action(Action {
            r#type: name.to_string(),
            body: body.into(),
        })
        .await?
        .into_inner();
    let reply = match stream.next().await {
        Some(r) => r?.body,
        None => return Err(tonic::Status::internal(format!("no reply to {name}"))),
    };
    // Read the call to its end (its trailers): a stream dropped before it ends is reset,
    // and HTTP/2 ends a connection that resets too many.
    while let Some(r) = stream.next().await {
        r?;
    }
    Ok(reply)
}
