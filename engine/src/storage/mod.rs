//! The storage node: applies the crossbar's ordered stream of commits to an MVCC store,
//! answers reads at any timestamp it has applied, and persists what it holds as Parquet
//! segments listed by a manifest.
//!
//! Recovery = newest manifest (its segments are loaded) + journal replay from its
//! checkpoint, which the caller drives through [`StorageNode::apply`].
//!
//! In this version every loaded segment is held in memory (the manifest's segments are read
//! at startup); segments exist so that a restart does not need the journal from the
//! beginning of time, and so that journals can later be truncated.

pub mod manifest;
pub mod mvcc;
pub mod segment;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock, RwLock};
use std::time::Duration;

use bytes::Bytes;
use object_store::path::Path;
use tokio::sync::watch;

use crate::error::{EngineError, EngineResult};
use crate::objstore::{Created, DurableStore};
use crate::record::CommitRecord;
use crate::row::Row;
use crate::time::Timestamp;
use manifest::{Manifest, SegmentMeta, MANIFEST_FORMAT_VERSION};
use mvcc::Mvcc;

#[derive(Debug, Clone)]
pub struct StorageConfig {
    /// How long a read waits for storage to apply commits up to its read timestamp.
    pub read_wait_max: Duration,
    /// Flush to a new segment once this many bytes were applied since the last flush.
    pub flush_bytes_min: usize,
}

impl Default for StorageConfig {
    fn default() -> Self {
        StorageConfig {
            read_wait_max: Duration::from_secs(10),
            flush_bytes_min: 64 << 20,
        }
    }
}

/// Called when a read needs a watermark at or above a timestamp, so that idle journals
/// publish one at once rather than on a timer tick.
pub type WatermarkRequester = Arc<dyn Fn(Timestamp) + Send + Sync>;

pub struct StorageNode {
    mvcc: RwLock<Mvcc>,
    applied: watch::Sender<Timestamp>,
    store: DurableStore,
    root: Path,
    manifest: tokio::sync::Mutex<Manifest>,
    unflushed_bytes: AtomicUsize,
    requester: OnceLock<WatermarkRequester>,
    config: StorageConfig,
}

impl std::fmt::Debug for StorageNode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StorageNode")
            .field("root", &self.root)
            .finish()
    }
}

impl StorageNode {
    /// Opens the storage range at `root`: loads the newest manifest and its segments and
    /// removes orphan segments (written by a flush that crashed before its manifest).
    pub async fn open(
        store: DurableStore,
        root: Path,
        config: StorageConfig,
    ) -> EngineResult<Arc<StorageNode>> {
        let manifest_dir = root.clone().join("manifest");
        let manifests = store.list(&manifest_dir).await?;
        let manifest = match manifests.last() {
            None => Manifest {
                format_version: MANIFEST_FORMAT_VERSION,
                ..Default::default()
            },
            Some((path, _)) => {
                let data = store.get(path).await?;
                let m: Manifest =
                    serde_json::from_slice(&data).map_err(|e| EngineError::Corrupt {
                        path: path.to_string(),
                        detail: format!("manifest is not valid: {e}"),
                    })?;
                if m.format_version > MANIFEST_FORMAT_VERSION {
                    return Err(EngineError::Corrupt {
                        path: path.to_string(),
                        detail: format!(
                            "manifest format {} is newer than this build reads",
                            m.format_version
                        ),
                    });
                }
                m
            }
        };
        let mut mvcc = Mvcc::default();
        for seg in &manifest.segments {
            let path = root.clone().join("segments").join(seg.path.as_str());
            let data = store.get(&path).await.map_err(|e| match e {
                EngineError::Store {
                    source: object_store::Error::NotFound { .. },
                    ..
                } => EngineError::Corrupt {
                    path: path.to_string(),
                    detail: format!("segment listed in manifest {} is missing", manifest.version),
                },
                e => e,
            })?;
            let decoded = segment::decode(path.as_ref(), data)?;
            if decoded.versions.len() as u64 != seg.versions {
                return Err(EngineError::Corrupt {
                    path: path.to_string(),
                    detail: format!(
                        "holds {} versions, the manifest says {}",
                        decoded.versions.len(),
                        seg.versions
                    ),
                });
            }
            for (key, v) in decoded.versions {
                mvcc.load_version(seg.table_id, &decoded.schema, key, v);
            }
        }
        // Orphans: segments a crashed flush wrote but no manifest lists.
        let live: std::collections::HashSet<&str> =
            manifest.segments.iter().map(|s| s.path.as_str()).collect();
        for (path, _) in store.list(&root.clone().join("segments")).await? {
            let name = path.filename().unwrap_or_default();
            if !live.contains(name) {
                tracing::info!(%path, "removing orphan segment");
                store.delete(&path).await?;
            }
        }
        let (applied, _) = watch::channel(manifest.checkpoint_ts);
        Ok(Arc::new(StorageNode {
            mvcc: RwLock::new(mvcc),
            applied,
            store,
            root,
            manifest: tokio::sync::Mutex::new(manifest),
            unflushed_bytes: AtomicUsize::new(0),
            requester: OnceLock::new(),
            config,
        }))
    }

    pub fn set_watermark_requester(&self, r: WatermarkRequester) {
        let _ = self.requester.set(r);
    }

    /// The checkpoint of the manifest this node started from or last wrote.
    pub async fn checkpoint_ts(&self) -> Timestamp {
        self.manifest.lock().await.checkpoint_ts
    }

    pub fn applied_ts(&self) -> Timestamp {
        *self.applied.borrow()
    }

    /// Applies commits (in timestamp order) and advances the applied watermark.
    pub fn apply(&self, records: &[Arc<CommitRecord>], watermark: Timestamp) {
        if !records.is_empty() {
            let mut m = self.mvcc.write().unwrap_or_else(|e| e.into_inner());
            let before = m.bytes;
            for r in records {
                m.apply(r);
            }
            self.unflushed_bytes
                .fetch_add(m.bytes - before, Ordering::Relaxed);
        }
        self.applied.send_if_modified(|a| {
            if watermark > *a {
                *a = watermark;
                true
            } else {
                false
            }
        });
    }

    pub fn wants_flush(&self) -> bool {
        self.unflushed_bytes.load(Ordering::Relaxed) >= self.config.flush_bytes_min
    }

    /// Waits until every commit with `commit_ts <= ts` is applied.
    pub async fn wait_applied(&self, ts: Timestamp) -> EngineResult<()> {
        let mut rx = self.applied.subscribe();
        if *rx.borrow() >= ts {
            return Ok(());
        }
        if let Some(r) = self.requester.get() {
            r(ts);
        }
        let outcome = tokio::time::timeout(self.config.read_wait_max, rx.wait_for(|a| *a >= ts))
            .await
            .map(|r| r.map(|_| ()));
        match outcome {
            Ok(Ok(())) => Ok(()),
            Ok(Err(_)) => Err(EngineError::Internal("storage node shut down".into())),
            Err(_) => Err(EngineError::ReadTimeout {
                wanted: ts,
                applied: self.applied_ts(),
                waited_ms: self.config.read_wait_max.as_millis() as u64,
            }),
        }
    }

    /// The row with `key` in `table_id` as of `ts`.
    pub async fn get(
        &self,
        table_id: u64,
        key: &[u8],
        ts: Timestamp,
    ) -> EngineResult<Option<Arc<Row>>> {
        self.wait_applied(ts).await?;
        let m = self.mvcc.read().unwrap_or_else(|e| e.into_inner());
        Ok(m.get(table_id, key, ts))
    }

    /// Every live row of `table_id` as of `ts`, in key order.
    pub async fn scan(
        &self,
        table_id: u64,
        ts: Timestamp,
    ) -> EngineResult<Vec<(Vec<u8>, Arc<Row>)>> {
        self.wait_applied(ts).await?;
        let m = self.mvcc.read().unwrap_or_else(|e| e.into_inner());
        Ok(m.scan(table_id, ts))
    }

    /// Writes everything applied since the last checkpoint to new segments, then a new
    /// manifest whose checkpoint is the applied watermark. Segments first, manifest last: a
    /// crash in between leaves orphan segments (removed at the next open), never a manifest
    /// that lists a missing segment.
    pub async fn flush(&self) -> EngineResult<Option<Timestamp>> {
        let mut manifest = self.manifest.lock().await;
        let upto = self.applied_ts();
        if upto <= manifest.checkpoint_ts {
            return Ok(None);
        }
        let unflushed = self.unflushed_bytes.swap(0, Ordering::Relaxed);
        let content = {
            let m = self.mvcc.read().unwrap_or_else(|e| e.into_inner());
            m.versions_between(manifest.checkpoint_ts, upto)
        };
        let mut next = Manifest {
            format_version: MANIFEST_FORMAT_VERSION,
            version: manifest.version + 1,
            checkpoint_ts: upto,
            segments: manifest.segments.clone(),
        };
        let result = self.write_segments(&mut next, content).await;
        if let Err(e) = result {
            self.unflushed_bytes.fetch_add(unflushed, Ordering::Relaxed);
            return Err(e);
        }
        next.check_successor_of(&manifest)
            .map_err(|e| EngineError::Internal(format!("refusing to write manifest: {e}")))?;
        let path = self
            .root
            .clone()
            .join("manifest")
            .join(format!("{:020}", next.version));
        let data =
            serde_json::to_vec_pretty(&next).map_err(|e| EngineError::Internal(e.to_string()))?;
        match self.store.put_create(&path, Bytes::from(data)).await? {
            Created::Yes => {}
            Created::AlreadyExists => {
                return Err(EngineError::Internal(format!(
                    "manifest {path} already exists: another storage node owns this range"
                )))
            }
        }
        tracing::debug!(
            version = next.version,
            checkpoint = upto,
            "manifest written"
        );
        *manifest = next;
        Ok(Some(upto))
    }

    async fn write_segments(
        &self,
        next: &mut Manifest,
        content: Vec<mvcc::FlushTable>,
    ) -> EngineResult<()> {
        for (table_id, schema, versions) in content {
            let name = format!("{:020}-{:016x}.parquet", next.checkpoint_ts, table_id);
            let data = segment::encode(table_id, &schema, &versions)?;
            // Read back before listing it: a segment that does not decode must never be
            // referenced by a manifest.
            let check = segment::decode(&name, Bytes::from(data.clone()))?;
            if check.versions.len() != versions.len() {
                return Err(EngineError::Internal(format!(
                    "segment {name} did not round-trip"
                )));
            }
            let path = self.root.clone().join("segments").join(name.as_str());
            let bytes = data.len() as u64;
            if self.store.put_create(&path, Bytes::from(data)).await? == Created::AlreadyExists {
                return Err(EngineError::Internal(format!(
                    "segment {path} already exists"
                )));
            }
            next.segments.push(SegmentMeta {
                path: name,
                table_id,
                versions: versions.len() as u64,
                min_ts: versions.iter().map(|v| v.1.ts).min().unwrap_or(0),
                max_ts: versions.iter().map(|v| v.1.ts).max().unwrap_or(0),
                bytes,
            });
        }
        Ok(())
    }
}
