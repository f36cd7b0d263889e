//! The background tasks of a node and the supervisor that watches them.
//!
//! Every task that keeps the process correct (journal writers, the crossbar and its hub,
//! the storage follower that applies commits, flush, compaction, retention, the ownership
//! check) is registered with the [`Supervisor`]. None of them ends while the process
//! serves, so any end (a panic, or a loop that returned) is a failure: the process logs
//! the cause and exits non-zero at once, rather than acknowledging commits while its
//! reads hang. Every acknowledged commit is in a journal, so the next start loses nothing.

use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use futures::FutureExt;
use object_store::path::Path;
use tokio::sync::Notify;
use tokio::task::{AbortHandle, JoinHandle};
use weft_engine::faults::panic_point;
use weft_engine::objstore::DurableStore;
use weft_engine::storage::{read_manifest, StorageNode};
use weft_engine::Clock;
use weft_journal::Sequencer;

/// Exit status of a process whose background task failed.
pub const EXIT_TASK_FAILED: i32 = 70;
/// Exit status of a process fenced by a newer owner.
pub const EXIT_FENCED: i32 = 75;

/// How often the flush, compaction and retention loops look for work.
const TICK: Duration = Duration::from_secs(1);

/// A runtime of its own, with one worker thread, for a task that must run on time
/// whatever the queries cost: a query's batches are computed inside its connection's
/// task, so under enough CPU-bound queries a task queued behind them on the main
/// runtime's workers (the ownership check) would wait for seconds, and a node whose
/// lease is not renewed refuses every statement. Shut down when dropped.
pub struct Dedicated(Option<tokio::runtime::Runtime>);

impl Dedicated {
    pub fn new(name: &str) -> std::io::Result<Dedicated> {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name(name)
            .enable_all()
            .build()?;
        Ok(Dedicated(Some(rt)))
    }

    /// A runtime for work that may wait, so that requests need not: flushes and
    /// compactions. Its threads (its worker and its blocking pool, where file writes
    /// and fsyncs run) run at CPU niceness [`MAINTENANCE_NICE`] and in the lowest
    /// best-effort I/O class, so a request's thread is scheduled ahead of a merge's.
    /// A maintenance task holds the memtable's and view's locks only for constant-time
    /// swaps, so no request waits behind a low-priority thread for long.
    pub fn low_priority(name: &str) -> std::io::Result<Dedicated> {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name(name)
            .on_thread_start(lower_this_thread)
            .enable_all()
            .build()?;
        Ok(Dedicated(Some(rt)))
    }

    pub fn spawn(
        &self,
        task: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> JoinHandle<()> {
        self.0
            .as_ref()
            .expect("the runtime lives until dropped")
            .spawn(task)
    }
}

/// The CPU niceness of maintenance threads (0 is a request's; 19 the lowest). At 10 the
/// kernel gives a runnable request thread about ten times a maintenance thread's share.
pub const MAINTENANCE_NICE: i32 = 10;

/// Lowers the calling thread's CPU and I/O priority; a failure (a sandbox that forbids
/// it) is logged and the thread runs at normal priority.
fn lower_this_thread() {
    // SAFETY: plain system calls on the calling thread's own id, with no pointers.
    let (cpu, io) = unsafe {
        let tid = libc::syscall(libc::SYS_gettid) as libc::id_t;
        let cpu = libc::setpriority(libc::PRIO_PROCESS, tid, MAINTENANCE_NICE);
        // IOPRIO_WHO_PROCESS (1) takes a thread id; class best-effort (2), level 7.
        let io = libc::syscall(libc::SYS_ioprio_set, 1, tid, (2 << 13) | 7);
        (cpu, io)
    };
    if cpu != 0 || io != 0 {
        tracing::debug!(
            error = %std::io::Error::last_os_error(),
            "maintenance thread: could not lower its priority"
        );
    }
}

impl Drop for Dedicated {
    fn drop(&mut self) {
        if let Some(rt) = self.0.take() {
            rt.shutdown_background();
        }
    }
}

/// Watches named tasks; [`Supervisor::first_exit`] resolves when any of them ends.
#[derive(Default)]
pub struct Supervisor {
    tasks: Vec<BoxFuture<'static, (String, String)>>,
    aborts: Vec<AbortHandle>,
}

impl Supervisor {
    pub fn watch(&mut self, name: impl Into<String>, task: JoinHandle<()>) {
        let name = name.into();
        self.aborts.push(task.abort_handle());
        self.tasks.push(
            async move {
                let why = match task.await {
                    Ok(()) => "it returned".to_string(),
                    Err(e) if e.is_panic() => {
                        let p = e.into_panic();
                        let msg = p
                            .downcast_ref::<String>()
                            .cloned()
                            .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                            .unwrap_or_else(|| "a panic".into());
                        format!("it panicked: {msg}")
                    }
                    Err(e) => format!("it was cancelled: {e}"),
                };
                (name, why)
            }
            .boxed(),
        );
    }

    /// The first task to end: its name and how it ended. Pending forever with no tasks.
    pub async fn first_exit(&mut self) -> (String, String) {
        if self.tasks.is_empty() {
            return std::future::pending().await;
        }
        futures::future::select_all(self.tasks.iter_mut()).await.0
    }

    /// Stops every watched task where it is.
    pub fn abort_all(&self) {
        for a in &self.aborts {
            a.abort();
        }
    }
}

/// Flushes the memtable (on `on`, the maintenance runtime) when it reaches its byte or age bound, or when the journal holds
/// more than `replay_batches_max` objects past the last checkpoint: this bounds what a
/// restart replays.
pub fn flusher(
    on: &Dedicated,
    storage: Arc<StorageNode>,
    sequencer: Arc<Sequencer>,
    replay_batches_max: u64,
    flushed: Arc<Notify>,
) -> JoinHandle<()> {
    on.spawn(async move {
        let mut tick = tokio::time::interval(TICK);
        let mut batches_at_flush = sequencer.batches_durable();
        loop {
            tick.tick().await;
            panic_point("flush");
            if storage.lease().fenced().is_some() {
                tracing::info!("flush: stopped: this process no longer owns the store");
                std::future::pending::<()>().await;
            }
            let batches = sequencer.batches_durable();
            let journal_due = batches.saturating_sub(batches_at_flush) >= replay_batches_max;
            if !(journal_due || storage.wants_flush()) {
                continue;
            }
            match storage.flush().await {
                Ok(landed) => {
                    batches_at_flush = batches;
                    if landed.is_some() {
                        // Retention can delete what the new checkpoint covers now.
                        flushed.notify_one();
                    }
                }
                Err(weft_engine::EngineError::Fenced { .. }) => {}
                Err(e) => tracing::error!(error = %e, "flush failed; will retry"),
            }
        }
    })
}

/// Deletes journal objects below the checkpoint of the current manifest, read from the
/// store each time (never this process's own idea of it), and only while this process is
/// not fenced. Runs after each flush, and every tick (another owner's flushes).
pub fn retention(
    storage: Arc<StorageNode>,
    store: DurableStore,
    cluster: String,
    ranges: Vec<Path>,
    flushed: Arc<Notify>,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(TICK);
        let mut pruned_to = 0;
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = flushed.notified() => {}
            }
            panic_point("retention");
            if storage.lease().fenced().is_some() {
                tracing::info!("journal retention: stopped: this process no longer owns the store");
                std::future::pending::<()>().await;
            }
            // The lowest checkpoint of every range's newest manifest.
            let mut lowest = u64::MAX;
            for root in &ranges {
                match read_manifest(&store, root).await {
                    Ok((m, _)) if m.epoch > storage.lease().epoch() => {
                        storage.lease().fence(
                            m.epoch,
                            format!(
                                "manifest {} was written by owner epoch {}",
                                m.version, m.epoch
                            ),
                        );
                        lowest = 0;
                    }
                    Ok((m, _)) => lowest = lowest.min(m.checkpoint_ts),
                    Err(e) => {
                        tracing::warn!(error = %e, "journal retention: reading the manifest failed; will retry");
                        lowest = 0;
                    }
                }
            }
            if lowest == 0 || lowest == u64::MAX || lowest <= pruned_to {
                continue;
            }
            match weft_journal::retention::prune(&store, &cluster, lowest).await {
                Ok(n) => {
                    pruned_to = lowest;
                    if n > 0 {
                        tracing::debug!(deleted = n, checkpoint = lowest, "journal: retention");
                    }
                }
                Err(e) => tracing::warn!(error = %e, "journal retention failed; will retry"),
            }
        }
    })
}

/// Compacts tables with too many segments and deletes retired segments, on `on`. Runs apart from
/// flushing, so a long merge never holds up a flush.
pub fn compactor(
    on: &Dedicated,
    storage: Arc<StorageNode>,
    clock: Arc<dyn Clock>,
    retention: Duration,
) -> JoinHandle<()> {
    on.spawn(async move {
        let mut tick = tokio::time::interval(TICK);
        loop {
            tick.tick().await;
            panic_point("compaction");
            if storage.lease().fenced().is_some() {
                tracing::info!("compaction: stopped: this process no longer owns the store");
                std::future::pending::<()>().await;
            }
            let horizon = clock
                .now()
                .earliest
                .saturating_sub(retention.as_nanos() as u64);
            loop {
                match storage.compact(horizon, false).await {
                    Ok(Some(c)) => tracing::debug!(
                        table_id = c.table_id,
                        inputs = c.inputs,
                        rows_in = c.rows_in,
                        rows_out = c.rows_out,
                        "compaction done"
                    ),
                    Ok(None) | Err(weft_engine::EngineError::Fenced { .. }) => break,
                    Err(e) => {
                        tracing::error!(error = %e, "compaction failed; will retry");
                        break;
                    }
                }
            }
            match storage.collect_garbage().await {
                Ok(_) | Err(weft_engine::EngineError::Fenced { .. }) => {}
                Err(e) => {
                    tracing::warn!(error = %e, "deleting retired segments failed; will retry")
                }
            }
        }
    })
}
