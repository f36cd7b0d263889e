//! Execute: a portal's rows sent as they are produced, `max_rows` at a time.
//!
//! pgwire's default Execute collects every row a portal has left into one list before it
//! sends the first (its `Portal::fetch`), so a result of any size would be held whole,
//! encoded. This is the same flow with the rows sent one by one from the result stream:
//! at most `max_rows` of them (0: all), then PortalSuspended with the rest of the stream
//! kept in the portal for the next Execute (JDBC's fetch size), or CommandComplete.

use std::fmt::Debug;

use futures::sink::{Sink, SinkExt};
use futures::StreamExt;
use pgwire::api::copy;
use pgwire::api::portal::PortalExecutionState;
use pgwire::api::query::{send_execution_response, ExtendedQueryHandler};
use pgwire::api::results::{QueryResponse, Response, Tag};
use pgwire::api::store::{Entry, PortalStore};
use pgwire::api::{ClientInfo, ClientPortalStore, PgWireConnectionState, DEFAULT_NAME};
use pgwire::error::{PgWireError, PgWireResult};
use pgwire::messages::extendedquery::{Execute, PortalSuspended};
use pgwire::messages::response::EmptyQueryResponse;
use pgwire::messages::PgWireBackendMessage;

/// Sends up to `max_rows` rows of `response` (0: all); whether rows may remain.
async fn send_rows<C>(
    client: &mut C,
    response: &mut QueryResponse,
    max_rows: usize,
) -> PgWireResult<(usize, bool)>
where
    C: Sink<PgWireBackendMessage> + Unpin + Send,
    C::Error: Debug,
    PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
{
    let mut sent = 0;
    while max_rows == 0 || sent < max_rows {
        match response.data_rows().next().await {
            Some(row) => {
                client.feed(PgWireBackendMessage::DataRow(row?)).await?;
                sent += 1;
            }
            None => return Ok((sent, false)),
        }
    }
    Ok((sent, true))
}

/// Runs an Execute message with `handler`'s `do_query`, streaming its rows.
pub async fn execute<H, C>(handler: &H, client: &mut C, message: Execute) -> PgWireResult<()>
where
    H: ExtendedQueryHandler,
    C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
    C::PortalStore: PortalStore<Statement = H::Statement>,
    C::Error: Debug,
    PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
{
    if !matches!(client.state(), PgWireConnectionState::ReadyForQuery) {
        return Err(PgWireError::NotReadyForQuery);
    }
    let mut transaction_status = client.transaction_status();
    client.set_state(PgWireConnectionState::QueryInProgress);
    let portal_name = message.name.as_deref().unwrap_or(DEFAULT_NAME);
    let max_rows = message.max_rows.max(0) as usize;
    let portal = match client.portal_store().get_portal(portal_name) {
        Some(Entry::Value(portal)) => portal,
        Some(Entry::Empty) => {
            client
                .feed(PgWireBackendMessage::EmptyQueryResponse(
                    EmptyQueryResponse::new(),
                ))
                .await?;
            client.set_state(PgWireConnectionState::ReadyForQuery);
            return Ok(());
        }
        None => return Err(PgWireError::PortalNotFound(portal_name.to_owned())),
    };
    // A suspended portal's rest of the stream, or a fresh execution.
    let state = std::mem::replace(
        &mut *portal.state.lock().await,
        PortalExecutionState::Finished,
    );
    let rows = match state {
        PortalExecutionState::Suspended(response) => Some(response),
        PortalExecutionState::Finished => Some(QueryResponse::new(
            Default::default(),
            futures::stream::empty(),
        )),
        PortalExecutionState::Initial => {
            let response = handler.do_query(client, portal.as_ref(), max_rows).await?;
            if !matches!(response, Response::Query(_)) {
                // A command's portal runs again at the next Execute, as pgwire's does.
                *portal.state.lock().await = PortalExecutionState::Initial;
            }
            match response {
                Response::Query(results) => Some(results),
                Response::EmptyQuery => {
                    client
                        .feed(PgWireBackendMessage::EmptyQueryResponse(
                            EmptyQueryResponse::new(),
                        ))
                        .await?;
                    None
                }
                Response::Execution(tag) => {
                    send_execution_response(client, tag).await?;
                    None
                }
                Response::TransactionStart(tag) => {
                    send_execution_response(client, tag).await?;
                    transaction_status = transaction_status.to_in_transaction_state();
                    None
                }
                Response::TransactionEnd(tag) => {
                    send_execution_response(client, tag).await?;
                    transaction_status = transaction_status.to_idle_state();
                    client.portal_store().rm_portal(DEFAULT_NAME);
                    None
                }
                Response::Error(err) => {
                    client
                        .send(PgWireBackendMessage::ErrorResponse((*err).into()))
                        .await?;
                    transaction_status = transaction_status.to_error_state();
                    None
                }
                Response::CopyIn(result) => {
                    client.set_state(PgWireConnectionState::CopyInProgress(true));
                    copy::send_copy_in_response(client, result).await?;
                    None
                }
                Response::CopyOut(result) => {
                    copy::send_copy_out_response(client, result).await?;
                    None
                }
                Response::CopyBoth(result) => {
                    client.set_state(PgWireConnectionState::CopyInProgress(true));
                    copy::send_copy_both_response(client, result).await?;
                    None
                }
            }
        }
    };
    if let Some(mut response) = rows {
        let (sent, more) = send_rows(client, &mut response, max_rows).await?;
        if more {
            *portal.state.lock().await = PortalExecutionState::Suspended(response);
            client
                .send(PgWireBackendMessage::PortalSuspended(PortalSuspended::new()))
                .await?;
        } else {
            let command = match response.command_tag() {
                "" => "SELECT",
                t => t,
            };
            let tag = Tag::new(command).with_rows(sent);
            client
                .send(PgWireBackendMessage::CommandComplete(tag.into()))
                .await?;
        }
    }
    if !matches!(client.state(), PgWireConnectionState::CopyInProgress(_)) {
        client.set_state(PgWireConnectionState::ReadyForQuery);
        client.set_transaction_status(transaction_status);
    }
    Ok(())
}
