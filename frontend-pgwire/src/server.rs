//! The listener: accepts connections and runs one session per connection.

use std::sync::Arc;

use tokio::net::TcpListener;

use crate::db::Db;
use crate::session::Handlers;

/// Accepts connections until the listener fails or the task is dropped.
pub async fn serve(db: Arc<Db>, listener: TcpListener) -> std::io::Result<()> {
    loop {
        let (socket, peer) = listener.accept().await?;
        let _ = socket.set_nodelay(true);
        let db = db.clone();
        tokio::spawn(async move {
            tracing::debug!(%peer, "connection");
            if let Err(e) = pgwire::tokio::process_socket(socket, None, Handlers::new(db)).await {
                tracing::debug!(%peer, error = %e, "connection ended with an error");
            }
        });
    }
}
