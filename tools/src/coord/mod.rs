//! Coordination on etcd: who leads a cluster's adjudicator and storage (the serving
//! process), and where frontends find it.
//!
//! - [`etcd`]: a small client of etcd's v3 API over its JSON gateway (leases, a
//!   create-if-absent transaction, reads, deletes).
//! - [`election`]: campaigning for a key held under a lease, keeping the lease alive, and
//!   noticing its loss.
//!
//! etcd decides who may take the store over and when the leader is gone; the store's own
//! owner epoch and conditional writes remain what fences a stale leader's writes
//! (docs/decisions.md, "Leader election on etcd").

pub mod election;
pub mod etcd;

/// The key a cluster's leader holds.
pub fn leader_key(cluster: &str) -> String {
    format!("/weft/{cluster}/leader")
}
