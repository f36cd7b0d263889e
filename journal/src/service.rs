//! What a frontend asks of the adjudicator, as a trait: the adjudicator of this process
//! ([`Adjudicator`]) answers it in place, and one of another process answers it over RPC
//! (the `weft-rpc` crate).

use std::sync::Arc;

use async_trait::async_trait;
use weft_engine::Timestamp;

use crate::adjudicator::{Adjudicator, CommitRequest};
use crate::error::CommitError;

#[async_trait]
pub trait CommitService: Send + Sync + 'static {
    /// A linearizable read timestamp: at or above every commit acknowledged before the
    /// call, on any connection of any frontend.
    fn read_ts(&self) -> Timestamp;

    /// The present by the clock's latest bound (for checks that compare a moment with now).
    fn now(&self) -> Timestamp;

    /// A read timestamp at or above every commit assigned a timestamp so far, acknowledged
    /// or not: a read at it waits for the commits in flight (for a retry that must see
    /// the commit it lost to).
    fn last_assigned(&self) -> Timestamp;

    /// Commits assigned a timestamp and not yet durable (`None`: the adjudicator is in
    /// another process).
    fn in_flight(&self) -> Option<usize>;

    /// Commits a transaction: its commit timestamp once the record is durable.
    async fn commit(&self, req: CommitRequest) -> Result<Timestamp, CommitError>;
}

#[async_trait]
impl CommitService for Arc<Adjudicator> {
    fn read_ts(&self) -> Timestamp {
        Adjudicator::read_ts(self)
    }

    fn now(&self) -> Timestamp {
        Adjudicator::now(self)
    }

    fn last_assigned(&self) -> Timestamp {
        self.sequencer().last_assigned()
    }

    fn in_flight(&self) -> Option<usize> {
        Some(self.sequencer().in_flight())
    }

    async fn commit(&self, req: CommitRequest) -> Result<Timestamp, CommitError> {
        Adjudicator::commit(self, req).await
    }
}
