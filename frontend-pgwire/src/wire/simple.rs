//! The simple query protocol, and how a statement's reply, notices and errors go out.

use std::fmt::Debug;

use async_trait::async_trait;
use futures::sink::{Sink, SinkExt};
use pgwire::api::portal::Format;
use pgwire::api::query::{
    send_execution_response, send_query_response, send_ready_for_query, SimpleQueryHandler,
};
use pgwire::api::results::{Response, Tag};
use pgwire::api::store::PortalStore;
use pgwire::api::{ClientInfo, ClientPortalStore, PgWireConnectionState};
use pgwire::error::{PgWireError, PgWireResult};
use pgwire::messages::response::EmptyQueryResponse;
use pgwire::messages::simplequery::Query;
use pgwire::messages::PgWireBackendMessage;

use crate::error::SqlError;
use crate::session::machine::Core;
use crate::session::machine::Reply;
use crate::sql::outcome::Outcome;
use crate::wire::connection::SessionHandler;
use crate::wire::encode::{query_response, stream_response};
use crate::wire::errors::IntoPgWire;
use crate::wire::messages::error_message;
use crate::wire::messages::send_notices;
use crate::wire::messages::wire_status;
use crate::wire::messages::wire_tag;

#[async_trait]
impl SimpleQueryHandler for SessionHandler {
    async fn on_query<C>(&self, client: &mut C, query: Query) -> PgWireResult<()>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        if !matches!(client.state(), PgWireConnectionState::ReadyForQuery) {
            return Err(PgWireError::NotReadyForQuery);
        }
        client.set_state(PgWireConnectionState::QueryInProgress);
        let core = &self.core;
        let mut st = core.state.lock().await;
        core.activity_begin(&st, &query.query);
        match core.parse_query_string(&mut st, &query.query) {
            Err(e) => {
                core.count_error(e.code);
                client.feed(error_message(&e)).await?
            }
            Ok(stmts) if stmts.is_empty() => {
                client
                    .feed(PgWireBackendMessage::EmptyQueryResponse(
                        EmptyQueryResponse::new(),
                    ))
                    .await?;
            }
            Ok(stmts) => {
                let count = stmts.len();
                let mut failed = false;
                for stmt in stmts {
                    let mut notices = Vec::new();
                    let started = tokio::time::Instant::now();
                    let result = core
                        .run_in_query_string(&mut st, stmt, count, &mut notices)
                        .await
                        .map(|r| core.interruptible(&st, r, started));
                    send_notices(client, notices).await?;
                    match result {
                        Ok(reply) => match send_reply(client, reply).await {
                            Ok(()) => {}
                            // A streamed result met an error after its statement returned:
                            // the statement failed.
                            Err(PgWireError::UserError(info)) => {
                                client
                                    .feed(PgWireBackendMessage::ErrorResponse((*info).into()))
                                    .await?;
                                core.fail(&mut st);
                                failed = true;
                                break;
                            }
                            Err(e) => return Err(e),
                        },
                        Err(e) => {
                            client.feed(error_message(&e)).await?;
                            failed = true;
                            break;
                        }
                    }
                }
                if let Err(e) = core.end_query_string(&mut st, count, failed).await {
                    client.feed(error_message(&e)).await?;
                }
                if st.copy.is_some() {
                    // The client sends the data next; ReadyForQuery follows CopyDone.
                    client.set_transaction_status(wire_status(Core::status(&st)));
                    client.set_state(PgWireConnectionState::CopyInProgress(false));
                    client.flush().await?;
                    return Ok(());
                }
            }
        }
        core.activity_end(&st);
        let status = wire_status(core.ready_status(&st));
        drop(st);
        client.set_state(PgWireConnectionState::ReadyForQuery);
        client.set_transaction_status(status);
        send_ready_for_query(client, status).await?;
        Ok(())
    }

    async fn do_query<C>(&self, _client: &mut C, _query: &str) -> PgWireResult<Vec<Response>>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        // `on_query` is overridden and never calls this.
        Err(SqlError::internal("simple query dispatch").into_pgwire())
    }
}

pub(crate) async fn send_reply<C>(client: &mut C, reply: Reply) -> PgWireResult<()>
where
    C: Sink<PgWireBackendMessage> + Unpin + Send,
    C::Error: Debug,
    PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
{
    match reply {
        Reply::Outcome(Outcome::Rows { schema, batches }) => {
            let resp = query_response(&schema, batches, &Format::UnifiedText)?;
            send_query_response(client, resp, true).await
        }
        Reply::Outcome(Outcome::Stream(rows)) => {
            let resp = stream_response(&rows.schema, rows.batches, &Format::UnifiedText)?;
            send_query_response(client, resp, true).await
        }
        Reply::Outcome(Outcome::Returned {
            command,
            schema,
            batches,
        }) => {
            let mut resp = query_response(&schema, batches, &Format::UnifiedText)?;
            resp.set_command_tag(command);
            send_query_response(client, resp, true).await
        }
        Reply::Outcome(Outcome::Fetched { schema, batches }) => {
            let mut resp = query_response(&schema, batches, &Format::UnifiedText)?;
            resp.set_command_tag("FETCH");
            send_query_response(client, resp, true).await
        }
        Reply::Outcome(Outcome::Command(tag)) => {
            send_execution_response(client, wire_tag(tag)).await
        }
        Reply::Begin => send_execution_response(client, Tag::new("BEGIN")).await,
        Reply::End(tag) => send_execution_response(client, Tag::new(tag)).await,
        Reply::CopyIn { columns } => {
            let resp =
                pgwire::api::results::CopyResponse::new(0, columns, futures::stream::empty());
            client
                .feed(PgWireBackendMessage::CopyInResponse(
                    pgwire::messages::copy::CopyInResponse::new(
                        0,
                        columns as i16,
                        resp.column_formats(),
                    ),
                ))
                .await?;
            Ok(())
        }
        Reply::Outcome(Outcome::CopyOut {
            schema,
            batches,
            format,
        }) => {
            let columns = schema.fields().len();
            let (lines, rows) = crate::wire::encode::copy_out_lines(&schema, &batches, &format)
                .map_err(|e| e.into_pgwire())?;
            client
                .feed(PgWireBackendMessage::CopyOutResponse(
                    pgwire::messages::copy::CopyOutResponse::new(
                        0,
                        columns as i16,
                        vec![0; columns],
                    ),
                ))
                .await?;
            for l in lines {
                client
                    .feed(PgWireBackendMessage::CopyData(
                        pgwire::messages::copy::CopyData::new(bytes::Bytes::from(l)),
                    ))
                    .await?;
            }
            client
                .feed(PgWireBackendMessage::CopyDone(
                    pgwire::messages::copy::CopyDone::new(),
                ))
                .await?;
            send_execution_response(client, Tag::new("COPY").with_rows(rows)).await
        }
        Reply::Outcome(Outcome::CopyIn(_)) => Err(PgWireError::ApiError(
            "a COPY FROM outcome escaped the session".into(),
        )),
    }
}
