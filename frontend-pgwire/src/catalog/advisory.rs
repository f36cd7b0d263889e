//! Advisory locks (`pg_advisory_lock` and its family), which migration tools take around
//! their work: held by a session (until unlocked or the session ends) or by its
//! transaction (until it ends), exclusive or shared, re-entrant as in PostgreSQL.
//!
//! They live in this process, in the frontend: every session of one `weft serve` sees the
//! same locks. They are not data, so they are not journaled: a restart releases them, as
//! PostgreSQL's restart does. Across several frontends (the multi-process topology) they
//! need a coordination service: the cluster's etcd would hold them as leased keys.
//!
//! A waiting `pg_advisory_lock` wakes when any lock is released, and gives up on the
//! session's cancel request, its `lock_timeout` (55P03) or its `statement_timeout`
//! (57014). There is no deadlock detection: two sessions waiting on each other wait until
//! one of those bounds ends a wait.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use tokio::sync::Notify;

use crate::error::{codes, SqlError, SqlResult};

/// A lock's key: PostgreSQL keeps the one-bigint and the two-int4 forms apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LockKey {
    Big(i64),
    Pair(i32, i32),
}

/// How long a lock is held.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    Session,
    Transaction,
}

#[derive(Debug, Default, Clone, Copy)]
struct Counts {
    session: u32,
    xact: u32,
}

impl Counts {
    fn add(&mut self, scope: Scope) {
        match scope {
            Scope::Session => self.session += 1,
            Scope::Transaction => self.xact += 1,
        }
    }
    fn is_empty(&self) -> bool {
        self.session == 0 && self.xact == 0
    }
}

#[derive(Debug, Default)]
struct Holders {
    exclusive: HashMap<i32, Counts>,
    shared: HashMap<i32, Counts>,
}

/// Every advisory lock held in this process.
#[derive(Debug, Default)]
pub struct AdvisoryLocks {
    held: Mutex<HashMap<LockKey, Holders>>,
    released: Notify,
}

impl AdvisoryLocks {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<LockKey, Holders>> {
        self.held.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Takes the lock for session `pid` if no other session holds it in a conflicting
    /// mode (exclusive conflicts with everything, shared with exclusive).
    pub fn try_lock(&self, pid: i32, key: LockKey, shared: bool, scope: Scope) -> bool {
        let mut m = self.lock();
        let h = m.entry(key).or_default();
        let others_exclusive = h.exclusive.keys().any(|p| *p != pid);
        let others_shared = h.shared.keys().any(|p| *p != pid);
        if others_exclusive || (!shared && others_shared) {
            return false;
        }
        let side = if shared {
            &mut h.shared
        } else {
            &mut h.exclusive
        };
        side.entry(pid).or_default().add(scope);
        true
    }

    /// Waits for the lock; `cancel` is the session's cancel signal, `timeout` the
    /// shorter of its lock_timeout and statement_timeout (with the SQLSTATE to give).
    pub async fn lock_waiting(
        &self,
        pid: i32,
        key: LockKey,
        shared: bool,
        scope: Scope,
        cancel: Option<&Notify>,
        timeout: Option<(Duration, &'static str)>,
    ) -> SqlResult<()> {
        let deadline = timeout.map(|(d, code)| (tokio::time::Instant::now() + d, code));
        loop {
            let released = self.released.notified();
            tokio::pin!(released);
            released.as_mut().enable();
            if self.try_lock(pid, key, shared, scope) {
                return Ok(());
            }
            let cancelled = async {
                match cancel {
                    Some(c) => c.notified().await,
                    None => std::future::pending().await,
                }
            };
            let expired = async {
                match deadline {
                    Some((at, _)) => tokio::time::sleep_until(at).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                _ = &mut released => {}
                _ = cancelled => {
                    return Err(SqlError::new(
                        codes::QUERY_CANCELED,
                        "canceling statement due to user request",
                    ))
                }
                _ = expired => {
                    let code = deadline.map_or(codes::QUERY_CANCELED, |(_, c)| c);
                    let what = if code == codes::QUERY_CANCELED {
                        "statement timeout"
                    } else {
                        "lock timeout"
                    };
                    return Err(SqlError::new(code, format!("canceling statement due to {what}")));
                }
            }
        }
    }

    /// Releases one session-level hold; false when the session held none (PostgreSQL
    /// warns and returns false).
    pub fn unlock(&self, pid: i32, key: LockKey, shared: bool) -> bool {
        let mut m = self.lock();
        let Some(h) = m.get_mut(&key) else {
            return false;
        };
        let side = if shared {
            &mut h.shared
        } else {
            &mut h.exclusive
        };
        let Some(c) = side.get_mut(&pid) else {
            return false;
        };
        if c.session == 0 {
            return false;
        }
        c.session -= 1;
        if c.is_empty() {
            side.remove(&pid);
        }
        if h.exclusive.is_empty() && h.shared.is_empty() {
            m.remove(&key);
        }
        drop(m);
        self.released.notify_waiters();
        true
    }

    /// Releases what session `pid` holds at `scope` (its transaction ended), or
    /// everything (`None`: the session ended, or `pg_advisory_unlock_all`).
    pub fn release(&self, pid: i32, scope: Option<Scope>) {
        let mut m = self.lock();
        let mut any = false;
        m.retain(|_, h| {
            for side in [&mut h.exclusive, &mut h.shared] {
                if let Some(c) = side.get_mut(&pid) {
                    match scope {
                        Some(Scope::Transaction) => {
                            any |= c.xact > 0;
                            c.xact = 0;
                        }
                        Some(Scope::Session) => {
                            any |= c.session > 0;
                            c.session = 0;
                        }
                        None => {
                            any = true;
                            c.xact = 0;
                            c.session = 0;
                        }
                    }
                    if c.is_empty() {
                        side.remove(&pid);
                    }
                }
            }
            !(h.exclusive.is_empty() && h.shared.is_empty())
        });
        drop(m);
        if any {
            self.released.notify_waiters();
        }
    }

    /// Whether session `pid` holds any transaction-level lock.
    pub fn holds_transaction_locks(&self, pid: i32) -> bool {
        self.lock().values().any(|h| {
            h.exclusive.get(&pid).is_some_and(|c| c.xact > 0)
                || h.shared.get(&pid).is_some_and(|c| c.xact > 0)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exclusive_and_shared_holds_conflict_as_in_postgres() {
        let l = AdvisoryLocks::default();
        let k = LockKey::Big(7);
        assert!(l.try_lock(1, k, false, Scope::Session));
        assert!(l.try_lock(1, k, false, Scope::Session), "re-entrant");
        assert!(!l.try_lock(2, k, false, Scope::Session));
        assert!(!l.try_lock(2, k, true, Scope::Session));
        assert!(l.unlock(1, k, false));
        assert!(!l.try_lock(2, k, true, Scope::Session), "still held once");
        assert!(l.unlock(1, k, false));
        assert!(!l.unlock(1, k, false), "no longer held");
        assert!(l.try_lock(2, k, true, Scope::Session));
        assert!(l.try_lock(3, k, true, Scope::Session));
        assert!(!l.try_lock(1, k, false, Scope::Session));
        // The two key forms are different locks.
        assert!(l.try_lock(1, LockKey::Pair(0, 7), false, Scope::Session));
    }

    #[test]
    fn transaction_holds_go_with_the_transaction_and_all_with_the_session() {
        let l = AdvisoryLocks::default();
        let k = LockKey::Big(1);
        assert!(l.try_lock(1, k, false, Scope::Transaction));
        assert!(l.holds_transaction_locks(1));
        assert!(
            !l.unlock(1, k, false),
            "unlock does not release a transaction hold"
        );
        l.release(1, Some(Scope::Transaction));
        assert!(l.try_lock(2, k, false, Scope::Session));
        l.release(2, None);
        assert!(l.try_lock(1, k, false, Scope::Session));
    }

    #[tokio::test(start_paused = true)]
    async fn a_waiter_gets_the_lock_when_it_is_released_or_times_out() {
        let l = std::sync::Arc::new(AdvisoryLocks::default());
        let k = LockKey::Big(9);
        assert!(l.try_lock(1, k, false, Scope::Session));
        let e = l
            .lock_waiting(
                2,
                k,
                false,
                Scope::Session,
                None,
                Some((Duration::from_secs(1), "55P03")),
            )
            .await
            .unwrap_err();
        assert_eq!(e.code, "55P03");
        let l2 = l.clone();
        let waiter = tokio::spawn(async move {
            l2.lock_waiting(2, k, false, Scope::Session, None, None)
                .await
        });
        tokio::task::yield_now().await;
        assert!(!waiter.is_finished());
        l.release(1, None);
        waiter.await.unwrap().unwrap();
        assert!(!l.try_lock(1, k, false, Scope::Session));
    }
}
