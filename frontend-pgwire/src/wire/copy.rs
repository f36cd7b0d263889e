//! The COPY sub-protocol: CopyData, CopyDone and CopyFail for COPY FROM STDIN.

use std::fmt::Debug;

use async_trait::async_trait;
use futures::sink::Sink;
use pgwire::api::query::send_execution_response;
use pgwire::api::results::Tag;
use pgwire::api::ClientInfo;
use pgwire::error::{PgWireError, PgWireResult};
use pgwire::messages::PgWireBackendMessage;

use crate::error::{codes, SqlError};
use crate::wire::connection::SessionHandler;
use crate::wire::errors::IntoPgWire;
use crate::wire::messages::wire_status;

#[async_trait]
impl pgwire::api::copy::CopyHandler for SessionHandler {
    async fn on_copy_data<C>(
        &self,
        _client: &mut C,
        data: pgwire::messages::copy::CopyData,
    ) -> PgWireResult<()>
    where
        C: ClientInfo + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let core = &self.core;
        let mut st = core.state.lock().await;
        let Some(copy) = st.copy.as_mut() else {
            return Ok(());
        };
        if copy.failed.is_some() {
            // After an error the rest of the data is read and dropped.
            return Ok(());
        }
        if let Err(e) = copy.feed(&data.data) {
            copy.failed = Some(e);
            return Ok(());
        }
        if let Err(e) = core.copy_flush(&mut st, false).await {
            if let Some(c) = st.copy.as_mut() {
                c.failed = Some(e);
            }
        }
        Ok(())
    }

    async fn on_copy_done<C>(
        &self,
        client: &mut C,
        _done: pgwire::messages::copy::CopyDone,
    ) -> PgWireResult<()>
    where
        C: ClientInfo + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let core = &self.core;
        let mut st = core.state.lock().await;
        let result = core.copy_done(&mut st).await;
        if st.txn.as_ref().is_some_and(|t| !t.explicit) {
            st.txn = None;
        }
        client.set_transaction_status(wire_status(core.ready_status(&st)));
        match result {
            Ok(n) => {
                send_execution_response(client, Tag::new("COPY").with_rows(n)).await?;
                Ok(())
            }
            Err(e) => Err(e.into_pgwire()),
        }
    }

    async fn on_copy_fail<C>(
        &self,
        client: &mut C,
        fail: pgwire::messages::copy::CopyFail,
    ) -> PgWireError
    where
        C: ClientInfo + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let core = &self.core;
        let mut st = core.state.lock().await;
        if let Some(committing) = st.copy.take().and_then(|mut c| c.committing.take()) {
            // The rows committed before the failure stay committed, as they would have
            // had the commit finished before the CopyFail arrived.
            let _ = crate::session::copy_in::settle(committing).await;
        }
        core.fail(&mut st);
        client.set_transaction_status(wire_status(core.ready_status(&st)));
        SqlError::new(
            codes::QUERY_CANCELED,
            format!("COPY from stdin failed: {}", fail.message),
        )
        .into_pgwire()
    }
}
