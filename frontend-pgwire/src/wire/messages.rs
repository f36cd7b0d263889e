//! A session's answers as protocol messages: command tags, transaction status, notices and
//! errors.

use std::fmt::Debug;

use futures::sink::{Sink, SinkExt};
use pgwire::api::results::Tag;
use pgwire::error::{ErrorInfo, PgWireError, PgWireResult};
use pgwire::messages::response::{NoticeResponse, TransactionStatus};
use pgwire::messages::PgWireBackendMessage;

use crate::error::SqlError;
use crate::session::machine::TxnStatus;
use crate::sql::outcome::{CommandTag, Notice};
use crate::wire::errors::IntoPgWire;

pub(crate) async fn send_notices<C>(client: &mut C, notices: Vec<Notice>) -> PgWireResult<()>
where
    C: Sink<PgWireBackendMessage> + Unpin + Send,
    C::Error: Debug,
    PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
{
    for n in notices {
        let info = ErrorInfo::new(n.severity.into(), n.code.into(), n.message);
        client
            .feed(PgWireBackendMessage::NoticeResponse(NoticeResponse::from(
                info,
            )))
            .await?;
    }
    Ok(())
}

/// ReadyForQuery's status.
pub(crate) fn wire_status(s: TxnStatus) -> TransactionStatus {
    match s {
        TxnStatus::Idle => TransactionStatus::Idle,
        TxnStatus::InBlock => TransactionStatus::Transaction,
        TxnStatus::Failed => TransactionStatus::Error,
    }
}

/// A command tag as pgwire sends it.
pub(crate) fn wire_tag(t: CommandTag) -> Tag {
    let mut tag = Tag::new(&t.command);
    if let Some(oid) = t.oid {
        tag = tag.with_oid(oid);
    }
    if let Some(rows) = t.rows {
        tag = tag.with_rows(rows);
    }
    tag
}

pub(crate) fn error_message(e: &SqlError) -> PgWireBackendMessage {
    PgWireBackendMessage::ErrorResponse(e.to_error_info().into())
}
