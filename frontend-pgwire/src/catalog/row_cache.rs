//! A cache of catalog lookups by timestamp: what every statement asks the catalog (its
//! table's definition, whether the schemas on its search path exist) is answered from
//! memory while the catalog table it comes from has not been written.
//!
//! An entry remembers the read timestamp `ts0` it was read at. A read at `ts` may use it
//! when the newest commit applied to that catalog table ([`StorageService::written_ts`],
//! asked once every commit at or below `ts` is applied) is at or below both `ts0` and
//! `ts`: then no commit changed the table between the two, and the answer is the one a
//! storage read at `ts` would give. Time travel below the node's opening checkpoint never
//! hits (the table counts as written at that checkpoint). A transaction's own catalog
//! writes are looked at by the callers before this cache.
//!
//! Bound: [`CATALOG_CACHE_MAX`] entries per cache; when full it is emptied and refills.

use std::collections::HashMap;
use std::sync::Mutex;

use weft_engine::service::StorageService;
use weft_engine::Timestamp;

use crate::error::SqlResult;

/// The most entries a cache holds.
pub const CATALOG_CACHE_MAX: usize = 4096;

/// A catalog table and a key in it.
type CatalogKey = (u64, Vec<u8>);

pub struct VersionedCache<V> {
    /// Per key, the read timestamp its value was read at, and the value.
    entries: Mutex<HashMap<CatalogKey, (Timestamp, V)>>,
}

impl<V> Default for VersionedCache<V> {
    fn default() -> Self {
        VersionedCache {
            entries: Mutex::new(HashMap::new()),
        }
    }
}

impl<V: Clone> VersionedCache<V> {
    /// The value of `key` in catalog table `table_id` as of `ts`: from the cache when no
    /// commit wrote the table since it was read, else from `read` (a storage read at
    /// `ts`), kept when it is also the table's newest.
    pub async fn get<F>(
        &self,
        storage: &dyn StorageService,
        table_id: u64,
        key: &[u8],
        ts: Timestamp,
        read: F,
    ) -> SqlResult<V>
    where
        F: std::future::Future<Output = SqlResult<V>>,
    {
        let written = storage.written_ts(table_id, ts).await?;
        if let Some(v) = self.cached(table_id, key, ts, written) {
            return Ok(v);
        }
        let v = read.await?;
        if written <= ts {
            let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
            if entries.len() >= CATALOG_CACHE_MAX {
                entries.clear();
            }
            entries.insert((table_id, key.to_vec()), (ts, v.clone()));
        }
        Ok(v)
    }

    fn cached(&self, table_id: u64, key: &[u8], ts: Timestamp, written: Timestamp) -> Option<V> {
        let entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        let (ts0, v) = entries.get(&(table_id, key.to_vec()))?;
        (written <= ts.min(*ts0)).then(|| v.clone())
    }
}
