//! Ownership of a cluster's durable objects: owner epochs, and the lease under which an
//! owner answers reads.
//!
//! A process that takes over a cluster's store **claims an epoch**: it creates
//! `clusters/<cluster>/owner/<epoch:020>` with a conditional put (create-if-absent), at one
//! above the highest epoch present. Claims are contiguous (a claimer that loses a race
//! tries the next number), so "a newer owner exists" is exactly "the object at my epoch + 1
//! exists": one GET answers it.
//!
//! Every durable write the owner makes carries its epoch: journal objects (the writer's
//! epoch), manifests (compare-and-swap on the next version, see `storage`), segment names.
//! Those conditional writes fence a stale owner's **writes**. Its **reads** are fenced by
//! the [`Lease`]: an owner may start a read only within [`LeaseConfig::duration`] of
//! sending a check that found no newer epoch, and a new owner acknowledges no commit until
//! `duration` has passed since its claim. So a read that a stale owner starts precedes, in
//! real time, every commit of its successor: it is linearizable, and a stale owner never
//! answers from a view that may miss an acknowledged commit. Both sides measure the
//! duration on monotonic clocks (one machine, or machines whose clock rates agree within
//! the margin the check interval leaves).
//!
//! A claim is pure data ([`OwnerRecord`]); the checking loop ([`Lease::run_checks`]) is the
//! only part that does I/O on its own.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use object_store::path::Path;
use serde::{Deserialize, Serialize};
use tokio::sync::watch;
use tokio::time::Instant;

use crate::error::{EngineError, EngineResult};
use crate::objstore::{Created, DurableStore};

/// How long a successful ownership check lets an owner start reads, and how long a new
/// owner waits after its claim before it acknowledges a commit.
pub const LEASE_DURATION: Duration = Duration::from_millis(1000);
/// How often an owner checks whether a newer epoch exists. A fenced process learns it
/// within this (plus one GET) while it runs; its reads stop at the lease bound regardless.
pub const CHECK_INTERVAL: Duration = Duration::from_millis(200);
// A check interval at or above the lease would let the lease lapse between checks.
const _: () = assert!(CHECK_INTERVAL.as_millis() * 3 <= LEASE_DURATION.as_millis());

/// Claims are tried at most this many times before giving up (another process keeps
/// claiming at the same moment).
const CLAIM_ATTEMPTS_MAX: u32 = 1000;

/// What an owner object says about its owner, for logs and for the error a fenced
/// process's clients get.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct OwnerRecord {
    pub epoch: u64,
    #[serde(default)]
    pub pid: u32,
    #[serde(default)]
    pub host: String,
    /// Where it serves clients (`--listen`), if it does.
    #[serde(default)]
    pub listen: String,
}

impl OwnerRecord {
    pub fn describe(&self) -> String {
        let mut s = format!("owner epoch {}", self.epoch);
        if self.pid != 0 {
            s.push_str(&format!(" (pid {} on {}", self.pid, self.host));
            if !self.listen.is_empty() {
                s.push_str(&format!(", serving {}", self.listen));
            }
            s.push(')');
        }
        s
    }
}

/// The result of a claim.
#[derive(Debug, Clone)]
pub struct Claim {
    pub record: OwnerRecord,
    /// The owner this claim takes over from, if any.
    pub previous: Option<OwnerRecord>,
    /// Whether the previous owner released the store cleanly (it stopped serving before
    /// it released), so that no lease of it can still be running.
    pub previous_released: bool,
    /// When the claim was known to be durable: the new owner acknowledges no commit before
    /// this plus [`LEASE_DURATION`] unless the previous owner released.
    pub at: Instant,
}

impl Claim {
    /// The instant before which this owner must not acknowledge a commit.
    pub fn serve_after(&self) -> Instant {
        if self.previous.is_none() || self.previous_released {
            self.at
        } else {
            self.at + LEASE_DURATION
        }
    }
}

pub fn owner_dir(cluster: &str) -> Path {
    Path::from(format!("clusters/{cluster}/owner"))
}

pub fn owner_path(cluster: &str, epoch: u64) -> Path {
    owner_dir(cluster).join(format!("{epoch:020}"))
}

fn released_path(cluster: &str, epoch: u64) -> Path {
    owner_dir(cluster).join(format!("{epoch:020}.released"))
}

/// Every owner epoch claimed under `cluster`, ascending, with whether it was released.
pub async fn list_owners(store: &DurableStore, cluster: &str) -> EngineResult<Vec<(u64, bool)>> {
    let mut out: std::collections::BTreeMap<u64, bool> = Default::default();
    for (p, _) in store.list(&owner_dir(cluster)).await? {
        let name = p.filename().unwrap_or_default();
        let (num, released) = match name.strip_suffix(".released") {
            Some(n) => (n, true),
            None => (name, false),
        };
        if let Ok(e) = num.parse::<u64>() {
            let r = out.entry(e).or_default();
            *r |= released;
        }
    }
    Ok(out.into_iter().collect())
}

/// Reads the owner object of `epoch`.
pub async fn read_owner(
    store: &DurableStore,
    cluster: &str,
    epoch: u64,
) -> EngineResult<Option<OwnerRecord>> {
    let path = owner_path(cluster, epoch);
    match store.get_opt(&path).await? {
        None => Ok(None),
        Some(data) => serde_json::from_slice(&data)
            .map(Some)
            .map_err(|e| EngineError::Corrupt {
                path: path.to_string(),
                detail: format!("owner object is not valid: {e}"),
            }),
    }
}

/// Claims the next owner epoch of `cluster` for `me` (its `epoch` field is filled in).
pub async fn claim(
    store: &DurableStore,
    cluster: &str,
    mut me: OwnerRecord,
) -> EngineResult<Claim> {
    let owners = list_owners(store, cluster).await?;
    let mut epoch = owners.last().map(|(e, _)| e + 1).unwrap_or(1);
    for _ in 0..CLAIM_ATTEMPTS_MAX {
        me.epoch = epoch;
        let body = serde_json::to_vec(&me).expect("an owner record serializes");
        match store
            .put_create(&owner_path(cluster, epoch), Bytes::from(body))
            .await?
        {
            Created::Yes => {
                let at = Instant::now();
                let previous = if epoch > 1 {
                    read_owner(store, cluster, epoch - 1).await?
                } else {
                    None
                };
                let previous_released = epoch > 1
                    && store
                        .get_opt(&released_path(cluster, epoch - 1))
                        .await?
                        .is_some();
                return Ok(Claim {
                    record: me,
                    previous,
                    previous_released,
                    at,
                });
            }
            Created::AlreadyExists => epoch += 1,
        }
    }
    Err(EngineError::Internal(format!(
        "could not claim an owner epoch of cluster {cluster}: other processes keep claiming"
    )))
}

/// Marks `epoch` as released: its owner has stopped serving and writing. The next owner
/// then need not wait out the lease. Written last, by a clean shutdown only.
pub async fn release(store: &DurableStore, cluster: &str, epoch: u64) -> EngineResult<()> {
    store
        .put_create(
            &released_path(cluster, epoch),
            Bytes::from_static(b"released\n"),
        )
        .await
        .map(|_| ())
}

#[derive(Debug, Clone, Copy)]
pub struct LeaseConfig {
    pub duration: Duration,
    pub check_interval: Duration,
}

impl Default for LeaseConfig {
    fn default() -> Self {
        LeaseConfig {
            duration: LEASE_DURATION,
            check_interval: CHECK_INTERVAL,
        }
    }
}

/// Why a process stopped owning its store.
#[derive(Debug, Clone, PartialEq)]
pub struct Fence {
    /// The newer epoch (0: this owner stepped down itself).
    pub by_epoch: u64,
    /// How this process learned it.
    pub detail: String,
}

/// An owner's standing: its epoch, whether it may start reads now, and whether it has
/// been fenced. Shared by everything in the process that reads or writes durably.
#[derive(Debug)]
pub struct Lease {
    epoch: u64,
    config: LeaseConfig,
    base: Instant,
    /// Reads may start before this many nanoseconds after `base`. `u64::MAX`: always
    /// (an exclusive lease, for tools and tests that own a store alone).
    valid_until_ns: AtomicU64,
    /// Non-zero once fenced: the newer epoch (or `u64::MAX` when unknown).
    fenced_by: AtomicU64,
    fence: Mutex<Option<Fence>>,
    /// Bumped on every renewal and on the fence, for waiters.
    changes: watch::Sender<u64>,
}

impl Lease {
    /// A lease that must be renewed by [`Lease::run_checks`] (or [`Lease::renewed`]).
    pub fn new(epoch: u64, config: LeaseConfig) -> Arc<Lease> {
        Arc::new(Lease {
            epoch,
            config,
            base: Instant::now(),
            valid_until_ns: AtomicU64::new(0),
            fenced_by: AtomicU64::new(0),
            fence: Mutex::new(None),
            changes: watch::channel(0).0,
        })
    }

    /// A lease that never lapses: for a process that owns its store alone (tools, tests,
    /// benchmarks). It is still fenced when a newer epoch's manifest or journal object
    /// shows up.
    pub fn exclusive(epoch: u64) -> Arc<Lease> {
        let l = Lease::new(epoch, LeaseConfig::default());
        l.valid_until_ns.store(u64::MAX, Ordering::SeqCst);
        l
    }

    pub fn epoch(&self) -> u64 {
        self.epoch
    }

    pub fn config(&self) -> LeaseConfig {
        self.config
    }

    fn now_ns(&self) -> u64 {
        Instant::now()
            .saturating_duration_since(self.base)
            .as_nanos()
            .min(u64::MAX as u128 - 1) as u64
    }

    /// A check sent at `sent` found no newer epoch: reads may start until `sent` plus the
    /// lease duration.
    pub fn renewed(&self, sent: Instant) {
        if self.fenced().is_some() {
            return;
        }
        let until =
            (sent.saturating_duration_since(self.base) + self.config.duration).as_nanos() as u64;
        self.valid_until_ns.fetch_max(until, Ordering::SeqCst);
        self.changes.send_modify(|n| *n += 1);
    }

    /// Records that a newer owner exists. The first fence wins; it is logged once.
    pub fn fence(&self, by_epoch: u64, detail: impl Into<String>) {
        let detail = detail.into();
        let mut f = self.fence.lock().unwrap_or_else(|e| e.into_inner());
        if f.is_some() {
            return;
        }
        if by_epoch != 0 {
            tracing::error!(
                epoch = self.epoch,
                newer_epoch = by_epoch,
                detail = %detail,
                "ownership: fenced by a newer owner; this process stops writing and serving"
            );
        }
        *f = Some(Fence { by_epoch, detail });
        self.fenced_by.store(by_epoch.max(1), Ordering::SeqCst);
        self.valid_until_ns.store(0, Ordering::SeqCst);
        drop(f);
        self.changes.send_modify(|n| *n += 1);
    }

    /// Stops this owner on its own (a clean shutdown): everything fenced reads and writes
    /// refuse from now on. `true` if no newer owner had fenced it first, so that it may
    /// mark its epoch released.
    pub fn step_down(&self) -> bool {
        self.fence(0, "this process is shutting down");
        self.fenced().is_some_and(|f| f.by_epoch == 0)
    }

    pub fn fenced(&self) -> Option<Fence> {
        if self.fenced_by.load(Ordering::SeqCst) == 0 {
            return None;
        }
        self.fence.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// The error for work refused because this owner was fenced.
    pub fn fenced_error(&self, f: &Fence) -> EngineError {
        EngineError::Fenced {
            epoch: self.epoch,
            by_epoch: f.by_epoch,
            detail: f.detail.clone(),
        }
    }

    /// `Err(Fenced)` once a newer owner is known. For writes, which conditional puts fence
    /// anyway: this only stops them early.
    pub fn ensure_not_fenced(&self) -> EngineResult<()> {
        match self.fenced() {
            Some(f) => Err(self.fenced_error(&f)),
            None => Ok(()),
        }
    }

    /// Whether a read may start now (cheap: two atomic loads).
    pub fn may_read(&self) -> bool {
        self.fenced_by.load(Ordering::SeqCst) == 0
            && self.now_ns() < self.valid_until_ns.load(Ordering::SeqCst)
    }

    /// Waits, at most `wait_max`, until a read may start: `Ok` under a valid lease,
    /// `Err(Fenced)` once fenced, `Err(OwnershipUnconfirmed)` if no check succeeded in time
    /// (the store is not answering).
    pub async fn ready_to_read(&self, wait_max: Duration) -> EngineResult<()> {
        if self.may_read() {
            return Ok(());
        }
        let mut rx = self.changes.subscribe();
        let deadline = Instant::now() + wait_max;
        loop {
            if let Some(f) = self.fenced() {
                return Err(self.fenced_error(&f));
            }
            if self.may_read() {
                return Ok(());
            }
            if tokio::time::timeout_at(deadline, rx.changed())
                .await
                .is_err()
            {
                return Err(EngineError::OwnershipUnconfirmed {
                    epoch: self.epoch,
                    waited_ms: wait_max.as_millis() as u64,
                });
            }
        }
    }

    /// Resolves once this lease is fenced.
    pub async fn wait_fenced(&self) -> Fence {
        let mut rx = self.changes.subscribe();
        loop {
            if let Some(f) = self.fenced() {
                return f;
            }
            if rx.changed().await.is_err() {
                std::future::pending::<()>().await;
            }
        }
    }

    /// The checking loop: every `check_interval`, one GET of the next epoch's owner
    /// object. Absent: the lease is renewed from the moment the GET was sent. Present: the
    /// lease is fenced and the loop ends. A failed GET renews nothing, so the lease lapses
    /// (reads wait, then fail) while the store does not answer.
    pub async fn run_checks(self: Arc<Self>, store: DurableStore, cluster: String) {
        let next = owner_path(&cluster, self.epoch + 1);
        let mut failures = 0u32;
        loop {
            crate::faults::panic_point("ownership");
            let sent = Instant::now();
            match store.get_opt(&next).await {
                Ok(None) => {
                    failures = 0;
                    self.renewed(sent);
                }
                Ok(Some(data)) => {
                    let who = serde_json::from_slice::<OwnerRecord>(&data)
                        .map(|r| r.describe())
                        .unwrap_or_else(|_| format!("owner epoch {}", self.epoch + 1));
                    self.fence(self.epoch + 1, format!("{who} has claimed the store"));
                    return;
                }
                Err(e) => {
                    failures += 1;
                    if failures == 1 || failures.is_power_of_two() {
                        tracing::warn!(error = %e, failures, "ownership: check failed; reads wait until one succeeds");
                    }
                }
            }
            tokio::time::sleep(self.config.check_interval).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A short lease, so that the test can watch it lapse in real time.
    fn short() -> LeaseConfig {
        LeaseConfig {
            duration: Duration::from_millis(100),
            check_interval: Duration::from_millis(20),
        }
    }

    #[tokio::test]
    async fn a_lease_lapses_without_checks_and_a_fence_is_final() {
        let l = Lease::new(3, short());
        assert!(
            !l.may_read(),
            "a new lease is not valid before its first check"
        );
        l.renewed(Instant::now());
        assert!(l.may_read());
        tokio::time::sleep(Duration::from_millis(120)).await;
        assert!(!l.may_read(), "a lease lapses without renewal");
        let err = l
            .ready_to_read(Duration::from_millis(50))
            .await
            .unwrap_err();
        assert!(
            matches!(err, EngineError::OwnershipUnconfirmed { .. }),
            "{err}"
        );
        l.renewed(Instant::now());
        assert!(l.may_read());
        l.fence(4, "test");
        assert!(!l.may_read());
        l.renewed(Instant::now());
        assert!(
            !l.may_read(),
            "a renewal after the fence does not revive the lease"
        );
        let err = l
            .ready_to_read(Duration::from_millis(50))
            .await
            .unwrap_err();
        assert!(
            matches!(
                err,
                EngineError::Fenced {
                    epoch: 3,
                    by_epoch: 4,
                    ..
                }
            ),
            "{err}"
        );
        assert!(!l.step_down(), "a fenced owner cannot release");
    }

    #[tokio::test]
    async fn a_renewal_counts_from_when_the_check_was_sent() {
        let l = Lease::new(1, short());
        let sent = Instant::now();
        tokio::time::sleep(Duration::from_millis(120)).await;
        // The answer came back a whole lease after it was asked (a process stopped in
        // between): it proves nothing about now.
        l.renewed(sent);
        assert!(!l.may_read());
        assert!(l.step_down(), "an owner no one fenced steps down");
    }

    #[tokio::test]
    async fn claims_are_contiguous_and_a_checker_sees_the_next_one() {
        let dir = tempfile::tempdir().unwrap();
        let store = DurableStore::local(dir.path().to_path_buf()).unwrap();
        let a = claim(&store, "c", OwnerRecord::default()).await.unwrap();
        assert_eq!(a.record.epoch, 1);
        assert!(a.previous.is_none());
        let lease = Lease::new(1, LeaseConfig::default());
        let checker = tokio::spawn(lease.clone().run_checks(store.clone(), "c".into()));
        lease.ready_to_read(Duration::from_secs(5)).await.unwrap();
        let b = claim(
            &store,
            "c",
            OwnerRecord {
                pid: 42,
                host: "h".into(),
                ..Default::default()
            },
        )
        .await
        .unwrap();
        assert_eq!(b.record.epoch, 2);
        assert_eq!(b.previous.as_ref().map(|p| p.epoch), Some(1));
        assert!(!b.previous_released);
        assert!(
            b.serve_after() > b.at,
            "an unreleased predecessor's lease is waited out"
        );
        let f = tokio::time::timeout(Duration::from_secs(5), lease.wait_fenced())
            .await
            .unwrap();
        assert_eq!(f.by_epoch, 2);
        assert!(f.detail.contains("pid 42"), "{}", f.detail);
        checker.await.unwrap();
        release(&store, "c", 2).await.unwrap();
        let c = claim(&store, "c", OwnerRecord::default()).await.unwrap();
        assert_eq!(c.record.epoch, 3);
        assert!(c.previous_released);
        assert_eq!(c.serve_after(), c.at);
    }
}
