//! The listener: accepts connections and runs one session per connection.

use std::sync::Arc;

use tokio::net::TcpListener;

use crate::db::Db;
use crate::session::Handlers;

/// Accepts connections until the listener fails or the task is dropped.
/// With `tls`, clients may ask for TLS (SSLRequest) and get it.
pub async fn serve(
    db: Arc<Db>,
    listener: TcpListener,
    tls: Option<pgwire::tokio::TlsAcceptor>,
) -> std::io::Result<()> {
    loop {
        let (socket, peer) = listener.accept().await?;
        let _ = socket.set_nodelay(true);
        let db = db.clone();
        let tls = tls.clone();
        tokio::spawn(async move {
            tracing::debug!(%peer, "connection");
            if let Err(e) = pgwire::tokio::process_socket(socket, tls, Handlers::new(db)).await {
                tracing::debug!(%peer, error = %e, "connection ended with an error");
            }
        });
    }
}
