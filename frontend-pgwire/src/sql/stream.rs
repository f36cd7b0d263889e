//! A query's rows as a stream: DataFusion's record batches go to the client as they are
//! computed, so that a result larger than memory is never held whole, whatever the
//! client asks for. Each query runs in its own share of the node's memory pool
//! ([`crate::catalog::memory`]).
//!
//! The stream holds what its rows are read from: the physical plan (and through it the
//! snapshot's segments, which compaction deletes only when no plan holds them) and a pin
//! of the read timestamp (so that compaction keeps the versions it reads). The first
//! batch is computed before the statement returns, so that an error there fails the
//! statement as a materialized one would; an error in a later batch reaches the client
//! after the rows before it, as in PostgreSQL.
//!
//! A plan that calls a volatile function (`nextval`, `setval`, `set_config`, `random`,
//! advisory locks) is run to its end before the statement returns: its effects belong to
//! the statement's transaction, which an autocommit statement commits before its rows
//! are read.
//!
//! The batch being sent is reserved from the query's memory until the client has its
//! rows, so that the sessions streaming at once share the node's pool: a query that finds
//! no room gets 53200 instead of growing the process.

use std::sync::Arc;

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::execution::memory_pool::MemoryConsumer;
use datafusion::execution::TaskContext;
use datafusion::logical_expr::LogicalPlan;
use datafusion::physical_plan::ExecutionPlan;
use futures::StreamExt;

use crate::catalog::memory::{collect_bounded, query_runtime};
use crate::error::{SqlError, SqlResult};
use crate::sql::outcome::RowStream;

/// Whether a plan calls a function whose result or effect differs per call.
pub fn is_volatile(plan: &LogicalPlan) -> bool {
    let mut volatile = false;
    let _ = plan.apply_with_subqueries(|node| {
        let _ = node.apply_expressions(|e| {
            if e.is_volatile() {
                volatile = true;
                return Ok(TreeNodeRecursion::Stop);
            }
            Ok(TreeNodeRecursion::Continue)
        });
        Ok(if volatile {
            TreeNodeRecursion::Stop
        } else {
            TreeNodeRecursion::Continue
        })
    });
    volatile
}

/// The task context a statement's plan runs in: `state`'s (a fresh copy per statement),
/// in the statement's own share of the node's memory.
pub fn query_task(
    state: &datafusion::execution::SessionState,
    query_max: usize,
) -> SqlResult<Arc<TaskContext>> {
    let runtime = query_runtime(state.runtime_env(), query_max)?;
    Ok(Arc::new(TaskContext::from(state).with_runtime(runtime)))
}

/// Runs a physical plan to its end, its rows reserved from the task's memory (53200
/// beyond it).
pub async fn run_to_end(
    physical: Arc<dyn ExecutionPlan>,
    task: Arc<TaskContext>,
) -> SqlResult<Vec<RecordBatch>> {
    let pool = task.memory_pool().clone();
    let stream = datafusion::physical_plan::execute_stream(physical, task)?;
    Ok(collect_bounded(stream, &pool).await?.batches)
}

/// Starts a physical plan and computes its first batch; the rest is computed as the
/// returned stream is read. `pin` keeps the read timestamp's versions while it is.
pub async fn start(
    schema: SchemaRef,
    physical: Arc<dyn ExecutionPlan>,
    task: Arc<TaskContext>,
    pin: weft_engine::storage::ReadPin,
) -> SqlResult<RowStream> {
    // The batch being sent is reserved from the query's memory until the next one is
    // asked for: sessions streaming at once share the node's pool.
    let sending = MemoryConsumer::new("query result").register(task.memory_pool());
    let mut stream = datafusion::physical_plan::execute_stream(physical, task)?;
    let first = stream.next().await.transpose()?;
    if let Some(b) = &first {
        sending.try_resize(b.get_array_memory_size())?;
    }
    let rest = futures::stream::unfold(
        (stream, pin, sending),
        |(mut stream, pin, sending)| async move {
            // The batch before has been sent.
            sending.free();
            let next = match stream.next().await? {
                Ok(b) => match sending.try_resize(b.get_array_memory_size()) {
                    Ok(()) => Ok(b),
                    Err(e) => Err(SqlError::from(e)),
                },
                Err(e) => Err(SqlError::from(e)),
            };
            Some((next, (stream, pin, sending)))
        },
    );
    let batches = futures::stream::iter(first.map(Ok)).chain(rest).boxed();
    Ok(RowStream { schema, batches })
}

/// `rows`, ended with 57014 when `cancel` is notified (a cancel request) or at `deadline`
/// (statement_timeout), as the statement that produced it would have been.
pub fn interruptible(
    rows: RowStream,
    cancel: Arc<tokio::sync::Notify>,
    deadline: Option<tokio::time::Instant>,
) -> RowStream {
    let batches = futures::stream::unfold(Some(rows.batches), move |inner| {
        let cancel = cancel.clone();
        async move {
            let mut inner = inner?;
            let timeout = async {
                match deadline {
                    Some(d) => tokio::time::sleep_until(d).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                b = inner.next() => b.map(|b| (b, Some(inner))),
                _ = timeout => Some((
                    Err(SqlError::new(
                        crate::error::codes::QUERY_CANCELED,
                        "canceling statement due to statement timeout",
                    )),
                    None,
                )),
                _ = cancel.notified() => Some((
                    Err(SqlError::new(
                        crate::error::codes::QUERY_CANCELED,
                        "canceling statement due to user request",
                    )),
                    None,
                )),
            }
        }
    })
    .boxed();
    RowStream {
        schema: rows.schema,
        batches,
    }
}
