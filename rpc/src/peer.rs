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

/// While calls are in flight, the connection is pinged this often...
pub const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(2);
/// ... and dropped, failing its calls, when a ping goes unanswered this long: a serving
/// process that stalls (stopped, or its machine gone) holds calls up for at most about
/// the sum of the two, after which the frontend follows the new leader.
pub const KEEPALIVE_TIMEOUT: Duration = Duration::from_secs(3);

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
        .http2_keep_alive_interval(KEEPALIVE_INTERVAL)
        .keep_alive_timeout(KEEPALIVE_TIMEOUT)
        .connect_lazy())
}

/// Streams cancelled on one connection before it is replaced by a fresh one. HTTP/2
/// (h2) counts, over a connection's whole life, the frames a peer sends on streams this
/// side reset, and ends the connection at 1024; a scan cancelled mid-stream (a LIMIT, a
/// cancel request) is one.
pub const CANCELS_PER_CONNECTION_MAX: usize = 256;

/// How long a call keeps trying to reach a serving process that refuses connections (a
/// failover in progress: the old leader is gone and its successor not yet serving). A
/// refused connection never carried the request, so trying again is safe even for a
/// commit.
pub const FAILOVER_WAIT_MAX: Duration = Duration::from_secs(20);

/// The connection to the serving process: to one of the candidate addresses it was given,
/// or to where it is told the leader now is ([`Peer::switch_to`]). Renewed after
/// [`CANCELS_PER_CONNECTION_MAX`] cancelled streams (calls in flight keep the old one).
#[derive(Debug)]
pub struct Peer {
    /// Where a serving process may be; tried in turn when one refuses connections.
    candidates: Vec<String>,
    current: std::sync::Mutex<(String, Channel)>,
    cancelled: std::sync::atomic::AtomicUsize,
}

impl Peer {
    /// `addrs`: one address, or several separated by commas (a leader and its standbys).
    pub fn new(addrs: &str) -> Result<Arc<Peer>, EngineError> {
        let candidates: Vec<String> = addrs
            .split(',')
            .map(str::trim)
            .filter(|a| !a.is_empty())
            .map(str::to_string)
            .collect();
        let Some(first) = candidates.first().cloned() else {
            return Err(EngineError::InvalidValue("no storage address given".into()));
        };
        for a in &candidates[1..] {
            channel(a)?;
        }
        Ok(Arc::new(Peer {
            current: std::sync::Mutex::new((first.clone(), channel(&first)?)),
            candidates,
            cancelled: Default::default(),
        }))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, (String, Channel)> {
        self.current.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn channel(&self) -> Channel {
        self.lock().1.clone()
    }

    /// The address calls go to now.
    pub fn addr(&self) -> String {
        self.lock().0.clone()
    }

    /// Sends later calls to `addr` (the leader moved). Calls in flight finish where they
    /// are.
    pub fn switch_to(&self, addr: &str) {
        let mut cur = self.lock();
        if cur.0 == addr {
            return;
        }
        match channel(addr) {
            Ok(c) => {
                tracing::info!(from = %cur.0, to = %addr, "rpc: following the serving process");
                *cur = (addr.to_string(), c);
            }
            Err(e) => tracing::warn!(addr = %addr, error = %e, "rpc: cannot follow"),
        }
    }

    /// The current address refused a connection: move to the next candidate, if any.
    fn refused(&self, addr: &str) {
        if self.candidates.len() < 2 {
            return;
        }
        let i = self.candidates.iter().position(|a| a == addr).unwrap_or(0);
        let next = self.candidates[(i + 1) % self.candidates.len()].clone();
        let mut cur = self.lock();
        if cur.0 == addr {
            if let Ok(c) = channel(&next) {
                *cur = (next, c);
            }
        }
    }

    /// A stream of this connection was dropped before its end.
    pub(crate) fn cancelled(&self) {
        use std::sync::atomic::Ordering;
        if self.cancelled.fetch_add(1, Ordering::Relaxed) + 1 < CANCELS_PER_CONNECTION_MAX {
            return;
        }
        self.cancelled.store(0, Ordering::Relaxed);
        let mut cur = self.lock();
        if let Ok(fresh) = channel(&cur.0) {
            cur.1 = fresh;
        }
    }
}

/// Whether a call that failed may be sent again: it failed in transport (not with the
/// server's answer), and either it changes nothing (a read) or it never reached a server
/// (its connection was refused or could not be made).
fn may_retry(s: &tonic::Status, idempotent: bool) -> bool {
    // A transport failure is Unavailable, or Unknown ("transport error") or Cancelled
    // ("operation was canceled") when the connection died under the call; the server's
    // own errors carry details.
    let transport = matches!(
        s.code(),
        tonic::Code::Unavailable | tonic::Code::Unknown | tonic::Code::Cancelled
    );
    if !transport || !s.details().is_empty() {
        return false;
    }
    idempotent || never_sent(s)
}

/// Whether a failed call never left this process: its connection could not be opened
/// (tonic answers Unavailable with the connector's error). Only the connector's own
/// words count: a connection that died under a call ("connection error", a keepalive
/// timeout) may have carried the request, and a commit sent twice could be refused the
/// second time after it committed the first.
fn never_sent(s: &tonic::Status) -> bool {
    s.code() == tonic::Code::Unavailable
        && ["tcp connect error", "tcp open error", "dns error"]
            .iter()
            .any(|m| s.message().starts_with(m))
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

/// One action: its single reply's body. While the serving process refuses connections
/// (a failover), the call tries again, for at most [`FAILOVER_WAIT_MAX`]; a read is tried
/// again after any failure in transport (a connection that died with the old leader), a
/// commit only when it was never sent.
pub(crate) async fn call(
    peer: &Peer,
    name: &str,
    body: Vec<u8>,
) -> Result<bytes::Bytes, tonic::Status> {
    let give_up = tokio::time::Instant::now() + FAILOVER_WAIT_MAX;
    let mut pause = Duration::from_millis(20);
    let body = bytes::Bytes::from(body);
    let idempotent = name != crate::wire::action::COMMIT;
    loop {
        let addr = peer.addr();
        match call_once(peer, name, body.clone()).await {
            Err(s)
                if may_retry(&s, idempotent) && tokio::time::Instant::now() + pause < give_up =>
            {
                peer.refused(&addr);
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_millis(500));
            }
            r => return r,
        }
    }
}

async fn call_once(
    peer: &Peer,
    name: &str,
    body: bytes::Bytes,
) -> Result<bytes::Bytes, tonic::Status> {
    let mut stream = client(&peer.channel())
        .do_action(Action {
            r#type: name.to_string(),
            body,
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

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_refused_connection_is_never_sent_and_a_dead_one_may_have_been() {
        // A port nobody listens on: the connector's own error.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let peer = Peer::new(&format!("127.0.0.1:{port}")).unwrap();
        let s = call_once(&peer, crate::wire::action::STATUS, bytes::Bytes::new())
            .await
            .unwrap_err();
        assert!(never_sent(&s), "{s:?}");
        assert!(
            may_retry(&s, false),
            "a commit never sent may be sent again"
        );

        for died in [
            tonic::Status::unknown("transport error"),
            tonic::Status::cancelled("operation was canceled"),
            tonic::Status::unavailable("connection error: keep-alive timed out"),
            tonic::Status::unavailable("error reading a body from connection"),
        ] {
            assert!(!never_sent(&died), "{died:?}");
            assert!(
                !may_retry(&died, false),
                "a commit that may have been sent: {died:?}"
            );
            assert!(may_retry(&died, true), "a read may be sent again: {died:?}");
        }
        let answered = tonic::Status::with_details(
            tonic::Code::Unavailable,
            "refused",
            bytes::Bytes::from_static(b"x"),
        );
        assert!(!may_retry(&answered, true), "the server's own answer");
    }
}
