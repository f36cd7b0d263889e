//! Memory: the node's pool and each query's share of it.
//!
//! Every query runs against one DataFusion memory pool per process (`--memory-max`, a
//! [`FairSpillPool`]): sorts, aggregates and joins reserve what they hold from it, and
//! those that can spill to disk do so when their fair share is used up. Each query gets
//! its own [`QueryPool`] in front of the node's, which caps it at `--query-memory-max`,
//! so that one query cannot take the memory every other session needs.
//!
//! Rows a statement has to hold before it can answer (results of DML's RETURNING, of
//! cursors, of `SELECT ... FOR UPDATE`) are reserved from the same pool by
//! [`collect_bounded`]. A query that needs more than it may have fails with SQLSTATE
//! 53200 (out_of_memory); the process never aborts for it.

use std::num::NonZeroUsize;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use arrow::array::RecordBatch;
use datafusion::error::{DataFusionError, Result as DfResult};
use datafusion::execution::memory_pool::{
    FairSpillPool, MemoryConsumer, MemoryLimit, MemoryPool, MemoryReservation, TrackConsumersPool,
};
use datafusion::execution::runtime_env::{RuntimeEnv, RuntimeEnvBuilder};
use datafusion::execution::SendableRecordBatchStream;
use futures::StreamExt;

/// The most memory all queries of a node hold at once unless configured (`--memory-max`).
pub const MEMORY_MAX_DEFAULT: usize = 4 << 30;
/// The most memory one query holds unless configured (`--query-memory-max`).
pub const QUERY_MEMORY_MAX_DEFAULT: usize = 1 << 30;

/// The node's memory bounds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemoryLimits {
    /// All queries together.
    pub max: usize,
    /// One query (never more than `max`).
    pub query_max: usize,
}

impl Default for MemoryLimits {
    fn default() -> Self {
        MemoryLimits {
            max: MEMORY_MAX_DEFAULT,
            query_max: QUERY_MEMORY_MAX_DEFAULT,
        }
    }
}

/// The node's pool: fair shares between spilling operators, and an error that names the
/// largest holders when it is exhausted.
pub fn node_pool(limits: MemoryLimits) -> Arc<dyn MemoryPool> {
    Arc::new(TrackConsumersPool::new(
        FairSpillPool::new(limits.max),
        NonZeroUsize::new(3).expect("3 is not zero"),
    ))
}

/// The runtime one query runs in: the node's, with the query's own share in front of the
/// node's pool.
pub fn query_runtime(node: &RuntimeEnv, query_max: usize) -> DfResult<Arc<RuntimeEnv>> {
    let pool = QueryPool::new(node.memory_pool.clone(), query_max);
    RuntimeEnvBuilder::from_runtime_env(node)
        .with_memory_pool(Arc::new(pool))
        .build_arc()
}

/// One query's share: forwards every reservation to the node's pool and refuses growth
/// beyond `limit` for the query as a whole.
#[derive(Debug)]
pub struct QueryPool {
    node: Arc<dyn MemoryPool>,
    limit: usize,
    used: AtomicUsize,
}

impl QueryPool {
    pub fn new(node: Arc<dyn MemoryPool>, limit: usize) -> QueryPool {
        QueryPool {
            node,
            limit,
            used: AtomicUsize::new(0),
        }
    }
}

impl std::fmt::Display for QueryPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "query pool ({} of {} bytes) over {}",
            self.reserved(),
            self.limit,
            self.node.name()
        )
    }
}

impl MemoryPool for QueryPool {
    fn name(&self) -> &str {
        "query"
    }

    fn register(&self, consumer: &MemoryConsumer) {
        self.node.register(consumer)
    }

    fn unregister(&self, consumer: &MemoryConsumer) {
        self.node.unregister(consumer)
    }

    fn grow(&self, reservation: &MemoryReservation, additional: usize) {
        self.node.grow(reservation, additional);
        self.used.fetch_add(additional, Ordering::Relaxed);
    }

    fn shrink(&self, reservation: &MemoryReservation, shrink: usize) {
        self.node.shrink(reservation, shrink);
        self.used.fetch_sub(shrink, Ordering::Relaxed);
    }

    fn try_grow(&self, reservation: &MemoryReservation, additional: usize) -> DfResult<()> {
        let grown = self
            .used
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |used| {
                used.checked_add(additional).filter(|n| *n <= self.limit)
            });
        if let Err(used) = grown {
            return Err(DataFusionError::ResourcesExhausted(format!(
                "the query needs more than its share of memory ({} bytes, --query-memory-max): \
                 {} held by {}, {additional} more asked",
                self.limit,
                used,
                reservation.consumer().name(),
            )));
        }
        if let Err(e) = self.node.try_grow(reservation, additional) {
            self.used.fetch_sub(additional, Ordering::Relaxed);
            return Err(e);
        }
        Ok(())
    }

    fn reserved(&self) -> usize {
        self.used.load(Ordering::Relaxed)
    }

    fn memory_limit(&self) -> MemoryLimit {
        MemoryLimit::Finite(self.limit)
    }
}

/// Rows held in memory with their reservation: the memory is given back when they are
/// dropped.
#[derive(Debug)]
pub struct HeldRows {
    pub batches: Vec<RecordBatch>,
    pub reservation: MemoryReservation,
}

/// Reads a stream to its end, reserving every batch from `pool` (53200 once the pool
/// refuses).
pub async fn collect_bounded(
    mut stream: SendableRecordBatchStream,
    pool: &Arc<dyn MemoryPool>,
) -> DfResult<HeldRows> {
    let reservation = MemoryConsumer::new("query result").register(pool);
    let mut batches = Vec::new();
    while let Some(batch) = stream.next().await {
        let batch = batch?;
        reservation.try_grow(batch.get_array_memory_size())?;
        batches.push(batch);
    }
    Ok(HeldRows {
        batches,
        reservation,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::execution::memory_pool::GreedyMemoryPool;

    #[test]
    fn a_query_is_capped_at_its_share_and_gives_back_what_it_held() {
        let node: Arc<dyn MemoryPool> = Arc::new(GreedyMemoryPool::new(1000));
        let q1: Arc<dyn MemoryPool> = Arc::new(QueryPool::new(node.clone(), 600));
        let q2: Arc<dyn MemoryPool> = Arc::new(QueryPool::new(node.clone(), 600));
        let a = MemoryConsumer::new("a").register(&q1);
        a.try_grow(500).unwrap();
        // The query's own share.
        assert!(a.try_grow(200).is_err());
        assert_eq!(q1.reserved(), 500);
        let b = MemoryConsumer::new("b").register(&q2);
        // The node's: 500 + 600 > 1000.
        assert!(b.try_grow(600).is_err());
        assert_eq!(q2.reserved(), 0);
        b.try_grow(500).unwrap();
        assert_eq!(node.reserved(), 1000);
        drop(a);
        assert_eq!(q1.reserved(), 0);
        assert_eq!(node.reserved(), 500);
        b.shrink(100);
        assert_eq!(q2.reserved(), 400);
        assert_eq!(node.reserved(), 400);
    }
}
