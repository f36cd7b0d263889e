//! Cancel requests.

use std::sync::Arc;

use async_trait::async_trait;
use pgwire::messages::startup::SecretKey;

use crate::catalog::db::Db;

/// Cancel requests: a separate connection naming a session by its process id and secret
/// key cancels the statement that session is running (57014), as in PostgreSQL.
pub(crate) struct CancelRequests(pub(crate) Arc<Db>);

#[async_trait]
impl pgwire::api::cancel::CancelHandler for CancelRequests {
    async fn on_cancel_request(&self, req: pgwire::messages::cancel::CancelRequest) {
        let secret = match &req.secret_key {
            SecretKey::I32(s) => Some(*s),
            SecretKey::Bytes(b) => <[u8; 4]>::try_from(b.as_ref()).ok().map(i32::from_be_bytes),
        };
        match secret {
            Some(secret) => self.0.backends.cancel_request(req.pid, secret),
            None => tracing::info!(pid = req.pid, "cancel request with a malformed key ignored"),
        }
    }
}
