//! A bounded least-recently-used cache of decoded segment slices.
//!
//! Segments are immutable, so a cached slice can never be stale: entries are only ever
//! evicted for space. The bound is on the Arrow memory the entries hold.

use std::collections::{BTreeMap, HashMap};
use std::hash::Hash;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

/// Counters, for `weft inspect` and for tests that prove a read did not scan.
#[derive(Debug, Default)]
pub struct CacheStats {
    pub hits: AtomicU64,
    pub misses: AtomicU64,
    pub evictions: AtomicU64,
}

struct Inner<K, V> {
    entries: HashMap<K, (V, usize, u64)>,
    /// Use tick → key, oldest first.
    order: BTreeMap<u64, K>,
    bytes: usize,
    tick: u64,
}

pub struct Lru<K, V> {
    inner: Mutex<Inner<K, V>>,
    capacity: usize,
    pub stats: CacheStats,
}

impl<K: Eq + Hash + Clone, V: Clone> Lru<K, V> {
    pub fn new(capacity_bytes: usize) -> Lru<K, V> {
        Lru {
            inner: Mutex::new(Inner {
                entries: HashMap::new(),
                order: BTreeMap::new(),
                bytes: 0,
                tick: 0,
            }),
            capacity: capacity_bytes,
            stats: CacheStats::default(),
        }
    }

    pub fn get(&self, key: &K) -> Option<V> {
        let mut g = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        g.tick += 1;
        let tick = g.tick;
        let (v, old) = match g.entries.get_mut(key) {
            Some(e) => {
                let old = e.2;
                e.2 = tick;
                (e.0.clone(), old)
            }
            None => {
                self.stats.misses.fetch_add(1, Ordering::Relaxed);
                return None;
            }
        };
        g.order.remove(&old);
        g.order.insert(tick, key.clone());
        self.stats.hits.fetch_add(1, Ordering::Relaxed);
        Some(v)
    }

    /// Inserts an entry of `size` bytes, evicting the least recently used ones to make room.
    /// An entry larger than the whole cache is not kept.
    pub fn insert(&self, key: K, value: V, size: usize) {
        if size > self.capacity {
            return;
        }
        let mut g = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        g.tick += 1;
        let tick = g.tick;
        if let Some((_, old_size, old_tick)) = g.entries.remove(&key) {
            g.order.remove(&old_tick);
            g.bytes -= old_size;
        }
        while g.bytes + size > self.capacity {
            let Some((_, victim)) = g.order.pop_first() else {
                break;
            };
            if let Some((_, s, _)) = g.entries.remove(&victim) {
                g.bytes -= s;
                self.stats.evictions.fetch_add(1, Ordering::Relaxed);
            }
        }
        g.bytes += size;
        g.order.insert(tick, key.clone());
        g.entries.insert(key, (value, size, tick));
    }

    /// Bytes currently held.
    pub fn bytes(&self) -> usize {
        self.inner.lock().unwrap_or_else(|e| e.into_inner()).bytes
    }

    pub fn len(&self) -> usize {
        self.inner
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entries
            .len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stays_within_its_bound_and_evicts_least_recent() {
        let c: Lru<u32, u32> = Lru::new(100);
        for i in 0..10 {
            c.insert(i, i, 20);
            assert!(c.bytes() <= 100);
        }
        assert_eq!(c.len(), 5);
        assert!(c.get(&9).is_some());
        assert!(c.get(&0).is_none());
        // 5 is the least recently used now; touching it protects it.
        assert!(c.get(&5).is_some());
        c.insert(100, 100, 20);
        assert!(c.get(&5).is_some());
        assert!(c.get(&6).is_none());
        // Too big to keep at all.
        c.insert(200, 200, 101);
        assert!(c.get(&200).is_none());
        assert!(c.bytes() <= 100);
    }
}
