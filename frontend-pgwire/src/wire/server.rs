//! The listener: accepts connections and runs one session per connection.
//!
//! The connection loop is pgwire's, with one difference: a frame pgwire's codec cannot
//! decode (an unknown message type, a length beyond the limit, a body that does not match
//! its message) gets PostgreSQL's answer, a FATAL 08P01 naming the problem, before the
//! connection closes. The server and every other session carry on.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures::{FutureExt, SinkExt, StreamExt};
use pgwire::api::{ClientInfo, PgWireConnectionState, PgWireServerHandlers};
use pgwire::error::ErrorInfo;
use pgwire::messages::{PgWireBackendMessage, PgWireFrontendMessage};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::codec::{Framed, FramedParts};

use crate::catalog::db::Db;
use crate::wire::errors::IntoPgWire;
use crate::wire::frame_guard::FrameGuard;
use crate::wire::handlers::Handlers;

/// How long a client may take to finish startup and authentication.
const STARTUP_TIMEOUT: Duration = Duration::from_secs(60);

/// Accepts connections until the listener fails or the task is dropped.
/// With `tls`, clients may ask for TLS (SSLRequest) and get it.
pub async fn serve(
    db: Arc<Db>,
    listener: TcpListener,
    tls: Option<pgwire::tokio::TlsAcceptor>,
) -> std::io::Result<()> {
    crate::wire::decode_panics::install_hook();
    loop {
        let (socket, peer) = listener.accept().await?;
        let _ = socket.set_nodelay(true);
        let db = db.clone();
        let tls = tls.clone();
        tokio::spawn(async move {
            tracing::debug!(%peer, "connection");
            let _counted = db.session_opened();
            if let Err(e) = connection(socket, tls, Handlers::new(db.clone()), &db).await {
                tracing::debug!(%peer, error = %e, "connection ended with an error");
            }
        });
    }
}

async fn connection(
    tcp: TcpStream,
    tls: Option<pgwire::tokio::TlsAcceptor>,
    handlers: Handlers,
    db: &Db,
) -> std::io::Result<()> {
    let startup_timeout = tokio::time::sleep(STARTUP_TIMEOUT);
    tokio::pin!(startup_timeout);
    // `--connection-age-max`, less up to a tenth at random, so that the connections a pool
    // opened together do not all end together.
    let age_max = db.connection_age_max();
    let age_limited = !age_max.is_zero();
    let jitter = age_max.mul_f64(db.entropy.u64() as f64 / u64::MAX as f64 / 10.0);
    let aged = tokio::time::sleep(age_max.saturating_sub(jitter));
    tokio::pin!(aged);
    let socket = tokio::select! {
        _ = &mut startup_timeout => return Ok(()),
        s = pgwire::tokio::server::negotiate_tls(tcp, tls) => s?,
    };
    // A client that starts TLS directly when weft has no certificate.
    let Some(socket) = socket else {
        return Ok(());
    };
    // Message sizes are bounded as their headers arrive (wire/frame_guard.rs).
    let authenticated = Arc::new(AtomicBool::new(false));
    let parts = socket.into_parts();
    let guard = FrameGuard::new(
        parts.io,
        &parts.read_buf,
        authenticated.clone(),
        db.message_bytes_max(),
    );
    let mut guarded = FramedParts::new(guard, parts.codec);
    guarded.read_buf = parts.read_buf;
    guarded.write_buf = parts.write_buf;
    let mut socket = Framed::from_parts(guarded);
    let startup = handlers.startup_handler();
    let simple = handlers.simple_query_handler();
    let extended = handlers.extended_query_handler();
    let copy = handlers.copy_handler();
    let cancel = handlers.cancel_handler();
    let mut in_pipeline = false;
    loop {
        let starting = matches!(
            socket.state(),
            PgWireConnectionState::AwaitingStartup
                | PgWireConnectionState::AuthenticationInProgress
        );
        authenticated.store(!starting, Ordering::Release);
        // pgwire's decoder panics on some bodies that do not match their message (a Parse
        // cut short inside its declared length): that is a protocol violation too.
        let next =
            std::panic::AssertUnwindSafe(crate::wire::decode_panics::Decoding(socket.next()))
                .catch_unwind();
        let idle_max = if starting {
            None
        } else {
            handlers.idle_in_transaction_timeout()
        };
        let idle = async {
            match idle_max {
                Some(d) => tokio::time::sleep(d).await,
                None => std::future::pending().await,
            }
        };
        let lease = db.storage.lease();
        let backend = handlers.backend();
        let may_age_out =
            age_limited && !starting && !in_pipeline && !handlers.in_transaction_block();
        let terminated = async {
            match &backend {
                Some(b) => b.terminated().await,
                None => std::future::pending().await,
            }
        };
        let msg = tokio::select! {
            // Messages the client already sent come first.
            biased;
            _ = &mut startup_timeout, if starting => None,
            m = next => Some(m),
            // PostgreSQL ends a session idle in a transaction block past its bound, so
            // that it cannot hold resources (here: compaction's horizon) forever.
            _ = idle => {
                let info = ErrorInfo::new(
                    "FATAL".into(),
                    crate::error::codes::IDLE_IN_TRANSACTION_SESSION_TIMEOUT.into(),
                    "terminating connection due to idle-in-transaction timeout".into(),
                );
                farewell(&mut socket, info).await;
                return Ok(());
            }
            // A newer owner serves the store: end the session (57P01), idle or not, but
            // never between an Execute and its Sync: an autocommit statement has committed
            // at its Execute, and its answer is only sent at the Sync. A FATAL error in
            // between would tell the client that a durable commit failed.
            // pg_terminate_backend: between statements, as a fence is.
            _ = terminated, if !in_pipeline => {
                let info = ErrorInfo::new(
                    "FATAL".into(),
                    crate::error::codes::ADMIN_SHUTDOWN.into(),
                    "terminating connection due to administrator command".into(),
                );
                farewell(&mut socket, info).await;
                return Ok(());
            }
            // The connection has lived past --connection-age-max: end it between
            // transactions, never inside one (as DSQL's connection lifetime).
            _ = &mut aged, if may_age_out => {
                let info = ErrorInfo::new(
                    "FATAL".into(),
                    crate::error::codes::ADMIN_SHUTDOWN.into(),
                    "terminating connection due to connection age limit (--connection-age-max-s)"
                        .into(),
                );
                farewell(&mut socket, info).await;
                return Ok(());
            }
            fence = lease.wait_fenced(), if !in_pipeline => {
                let e = crate::error::SqlError::from(lease.fenced_error(&fence));
                farewell(&mut socket, e.to_error_info()).await;
                return Ok(());
            }
        };
        let msg = match msg {
            Some(Ok(Some(Ok(m)))) => m,
            Some(Ok(None)) | None => return Ok(()),
            Some(Err(_panic)) => {
                violation(&mut socket, "a message's contents do not match its type").await;
                return Ok(());
            }
            Some(Ok(Some(Err(e)))) => {
                // The frame cannot be decoded: the stream can no longer be trusted.
                violation(&mut socket, &e.to_string()).await;
                return Ok(());
            }
        };
        // Terminate: the client is leaving; close without waiting (asyncpg waits for it).
        if matches!(msg, PgWireFrontendMessage::Terminate(_)) {
            return Ok(());
        }
        let extended_query = match socket.state() {
            PgWireConnectionState::CopyInProgress(extended) => extended,
            _ => msg.is_extended_query(),
        };
        // Between an extended-protocol message and the Sync that answers it.
        in_pipeline = match &msg {
            PgWireFrontendMessage::Sync(_) | PgWireFrontendMessage::Query(_) => false,
            m if m.is_extended_query() => true,
            _ => in_pipeline,
        };
        // A connection without TLS where TLS is required: refused once it has said who it
        // is, as PostgreSQL refuses one that matches only `hostssl` lines.
        if let PgWireFrontendMessage::Startup(s) = &msg {
            if db.require_tls() && !socket.is_secure() {
                let p = |k: &str| s.parameters.get(k).cloned().unwrap_or_default();
                let user = p("user");
                let database = s
                    .parameters
                    .get("database")
                    .cloned()
                    .unwrap_or(user.clone());
                let info = ErrorInfo::new(
                    "FATAL".into(),
                    crate::error::codes::INVALID_AUTHORIZATION.into(),
                    format!(
                        "connection requires TLS (--require-tls): host \"{}\", user \"{user}\", database \"{database}\", no encryption",
                        socket.socket_addr().ip()
                    ),
                );
                farewell(&mut socket, info).await;
                return Ok(());
            }
        }
        // Beyond max_connections a client is told so once it has said who it is, as
        // PostgreSQL does; a cancel request still goes through.
        if matches!(msg, PgWireFrontendMessage::Startup(_)) && db.sessions() > db.max_connections()
        {
            let info = ErrorInfo::new(
                "FATAL".into(),
                crate::error::codes::TOO_MANY_CONNECTIONS.into(),
                "sorry, too many clients already".into(),
            );
            farewell(&mut socket, info).await;
            return Ok(());
        }
        if let Err(e) = pgwire::tokio::server::process_message(
            msg,
            &mut socket,
            startup.clone(),
            simple.clone(),
            extended.clone(),
            copy.clone(),
            cancel.clone(),
        )
        .await
        {
            // A FATAL error ends the connection: pgwire's error path would mark it ready for
            // queries and go on reading from it.
            let info = ErrorInfo::from(e);
            let fatal = info.is_fatal();
            pgwire::tokio::server::process_error(
                &mut socket,
                pgwire::error::PgWireError::UserError(Box::new(info)),
                extended_query,
            )
            .await?;
            if fatal {
                return Ok(());
            }
        }
    }
}

/// Sends a last error and closes the connection.
async fn farewell<T>(socket: &mut T, info: ErrorInfo)
where
    T: futures::Sink<PgWireBackendMessage> + ClientInfo + Unpin,
{
    tracing::info!(peer = %socket.socket_addr(), code = %info.code, "ending the session: {}", info.message);
    let _ = socket
        .send(PgWireBackendMessage::ErrorResponse(info.into()))
        .await;
    let _ = socket.close().await;
}

/// Answers a frame that cannot be decoded with FATAL 08P01, then closes the connection.
async fn violation<T>(socket: &mut T, what: &str)
where
    T: futures::Sink<PgWireBackendMessage> + ClientInfo + Unpin,
{
    tracing::info!(peer = %socket.socket_addr(), error = what, "protocol violation");
    let info = ErrorInfo::new(
        "FATAL".to_string(),
        "08P01".to_string(),
        format!("invalid frontend message: {what}"),
    );
    farewell(socket, info).await;
}
