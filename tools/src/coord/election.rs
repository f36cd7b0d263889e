//! Leader election on etcd: a candidate holds the leader key under a lease of its own
//! ([`campaign`]); while it leads, a task renews the lease every third of its time to
//! live and reports the lease lost ([`Leadership::lost`]) as soon as etcd refuses a
//! renewal (a process that was stopped, by SIGSTOP or a long pause, learns it on waking;
//! by then its successor's claim of the store has fenced it anyway).
//!
//! A candidate that finds the key held waits, polling, for it to go (its holder
//! resigned, or its lease expired with the holder), then tries again. Members register
//! under a lease too ([`register`]), so that `weft cluster status` lists live processes.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::time::Instant;

use super::etcd::{Etcd, Kv};

/// How often a waiting candidate looks at the leader key.
pub const POLL_INTERVAL: Duration = Duration::from_millis(250);

/// The shortest lease etcd's second granularity makes safe.
pub const TTL_MIN: Duration = Duration::from_secs(2);

/// What a leader holds: its lease, its term (the revision that created its key, larger
/// for every later leader) and the news of its loss.
#[derive(Debug)]
pub struct Leadership {
    pub lease: i64,
    pub term: i64,
    lost: watch::Receiver<Option<String>>,
    etcd: Etcd,
    /// Stops the keeper (on its own thread) at its next renewal.
    stop: Arc<AtomicBool>,
}

impl Leadership {
    /// Pending while the lease holds; then why it was lost.
    pub async fn lost(&mut self) -> String {
        loop {
            if let Some(why) = self.lost.borrow().clone() {
                return why;
            }
            if self.lost.changed().await.is_err() {
                return "the lease's keeper stopped".into();
            }
        }
    }

    /// Gives the key up at once, so that a standby need not wait out the lease.
    pub async fn resign(self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Err(e) = self.etcd.revoke(self.lease).await {
            tracing::warn!(error = %e, "etcd: could not revoke the leader's lease; a standby waits for it to expire");
        }
    }
}

/// Campaigns for `key` with `value` until this process holds it. `waiting` is told, once
/// per holder, who holds it meanwhile.
pub async fn campaign(
    etcd: &Etcd,
    key: &str,
    value: &[u8],
    ttl: Duration,
    mut waiting: impl FnMut(&Kv),
) -> anyhow::Result<Leadership> {
    let ttl = ttl.max(TTL_MIN);
    let mut lease = 0i64;
    let mut seen_holder = None;
    let mut failures = 0u32;
    loop {
        let attempt = async {
            if lease == 0 || etcd.keep_alive(lease).await? <= 0 {
                lease = etcd.grant(ttl.as_secs()).await?;
            }
            etcd.create_if_absent(key, value, lease).await
        };
        match attempt.await {
            Ok(Ok(term)) => {
                let (tx, rx) = watch::channel(None);
                let stop = Arc::new(AtomicBool::new(false));
                keep_alive_thread(etcd.fresh()?, lease, ttl, tx, stop.clone())?;
                return Ok(Leadership {
                    lease,
                    term,
                    stop,
                    lost: rx,
                    etcd: etcd.clone(),
                });
            }
            Ok(Err(holder)) => {
                failures = 0;
                if seen_holder != Some(holder.create_revision) && holder.create_revision != 0 {
                    seen_holder = Some(holder.create_revision);
                    waiting(&holder);
                }
            }
            Err(e) => {
                failures += 1;
                // etcd restarting, or not up yet: keep trying, and say so now and then.
                if failures == 1 || failures.is_multiple_of(20) {
                    tracing::warn!(etcd = %etcd.url(), error = %e, "etcd: cannot campaign yet");
                }
            }
        }
        tokio::time::sleep(POLL_INTERVAL).await;
    }
}

/// Runs [`keep_alive`] on a thread and runtime of its own, so that no load of queries on
/// the process's runtime delays a renewal past the lease (as the store's ownership check
/// has its own thread).
fn keep_alive_thread(
    etcd: Etcd,
    lease: i64,
    ttl: Duration,
    lost: watch::Sender<Option<String>>,
    stop: Arc<AtomicBool>,
) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    std::thread::Builder::new()
        .name("weft-etcd-lease".into())
        .spawn(move || runtime.block_on(keep_alive(etcd, lease, ttl, lost, stop)))?;
    Ok(())
}

/// Renews `lease` every `ttl / 3`; reports its loss on `lost` once etcd says it expired.
/// While etcd cannot be reached the leader keeps leading: a standby cannot be elected
/// then either, and if one is elected later it claims the store under a newer epoch,
/// which fences this process's writes and reads whatever etcd said (so an etcd restart
/// does not stop the cluster).
async fn keep_alive(
    etcd: Etcd,
    lease: i64,
    ttl: Duration,
    lost: watch::Sender<Option<String>>,
    stop: Arc<AtomicBool>,
) {
    let mut renewed = Instant::now();
    let mut unreachable_since: Option<Instant> = None;
    loop {
        tokio::time::sleep(ttl / 3).await;
        if stop.load(Ordering::SeqCst) {
            return;
        }
        let sent = Instant::now();
        match etcd.keep_alive(lease).await {
            Ok(t) if t > 0 => {
                if let Some(since) = unreachable_since.take() {
                    tracing::info!(
                        unreachable_ms = sent.duration_since(since).as_millis() as u64,
                        "etcd: reachable again; still the leader"
                    );
                }
                renewed = sent;
            }
            Ok(_) => {
                let _ = lost.send(Some(format!(
                    "etcd says the lease expired ({} ms after its last renewal)",
                    sent.duration_since(renewed).as_millis()
                )));
                return;
            }
            Err(e) => {
                if unreachable_since.is_none() {
                    tracing::warn!(error = %e, "etcd: cannot renew the leader's lease; leading on (the store's epoch still fences)");
                    unreachable_since = Some(sent);
                }
            }
        }
    }
}

/// Keeps `key` = `value` in etcd under a lease of its own while the process lives
/// (re-created if etcd forgot it, for example after a restart of etcd without its data).
pub fn register(
    etcd: Etcd,
    key: String,
    value: Vec<u8>,
    ttl: Duration,
) -> tokio::task::JoinHandle<()> {
    let ttl = ttl.max(TTL_MIN);
    tokio::spawn(async move {
        let mut lease = 0i64;
        loop {
            let step = async {
                if lease == 0 || etcd.keep_alive(lease).await? <= 0 {
                    lease = etcd.grant(ttl.as_secs()).await?;
                    etcd.put(&key, &value, lease).await?;
                }
                anyhow::Ok(())
            };
            if let Err(e) = step.await {
                tracing::debug!(error = %e, "etcd: membership not renewed");
            }
            tokio::time::sleep(ttl / 3).await;
        }
    })
}
