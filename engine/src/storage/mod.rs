//! The storage node: applies the crossbar's ordered stream of commits to an MVCC store,
//! answers reads at any timestamp it has applied, and persists what it holds as Parquet
//! segments listed by a manifest.
//!
//! - **Memtables** ([`memtables::Memtables`] of [`mvcc::Mvcc`]): the versions applied since
//!   the last flush, per key; a flush freezes them and writes them out with no lock held.
//! - **Segments** ([`segment`]): immutable Parquet files of older versions, read lazily
//!   (footer once, then only the pages a read needs) through a bounded cache.
//! - **Manifest** ([`manifest`]): which segments are live, the checkpoint they hold every
//!   commit up to, and the horizon below which compaction may have dropped versions.
//! - **Compaction**: merges a table's segments in the background, dropping versions no read
//!   at or above the horizon can see.
//!
//! Recovery = newest manifest + journal replay from its checkpoint, which the caller drives
//! through [`StorageNode::apply`].
//!
//! **Ownership.** A node writes under its owner's [`Lease`] epoch: opening a range claims
//! it (a manifest version at the node's epoch), every later manifest is a compare-and-swap
//! on the version the node last wrote, segment names carry the epoch, and orphan deletion
//! removes only segments of older epochs. A node that sees a newer epoch (a manifest it
//! cannot replace, or the lease's check) stops flushing, compacting and deleting, and
//! refuses reads; reads also wait while the lease is not confirmed.

pub mod cache;
pub mod inspect;
pub mod manifest;
pub mod memtables;
pub mod mvcc;
pub mod scan;
pub mod segment;

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock, RwLock};
use std::time::Duration;

use tokio::time::Instant;

use arrow::array::{Array, BinaryArray, RecordBatch};
use arrow::datatypes::SchemaRef;
use bytes::Bytes;
use datafusion::execution::TaskContext;
use datafusion::physical_plan::metrics::ExecutionPlanMetricsSet;
use datafusion::physical_plan::ExecutionPlan;
use datafusion::prelude::{SessionConfig, SessionContext};
use futures::StreamExt;
use object_store::path::Path;
use object_store::ObjectStoreExt;
use tokio::sync::watch;

use crate::error::{EngineError, EngineResult};
use crate::objstore::{Created, DurableStore};
use crate::ownership::Lease;
use crate::record::{CommitRecord, OP_DELETE};
use crate::row::{batch_row, Row};
use crate::time::Timestamp;
use manifest::{Manifest, SegmentMeta, MANIFEST_FORMAT_VERSION};
use memtables::Memtables;
use mvcc::Version;
use scan::{MvccScanExec, OutColumn, ScanKind, ScanRequest};
use segment::{Segment, SegmentWriter, SliceCache};

#[derive(Debug, Clone)]
pub struct StorageConfig {
    /// How long a read waits for storage to apply commits up to its read timestamp.
    pub read_wait_max: Duration,
    /// Flush to new segments once this many bytes were applied since the last flush.
    pub flush_bytes_min: usize,
    /// Flush anything applied once it has waited this long.
    pub flush_age_max: Duration,
    /// Bound on the decoded segment pages kept for point lookups.
    pub cache_bytes: usize,
    /// Compact a table once it has more than this many segments.
    pub compact_segments_max: usize,
    /// Failure injection for crash tests: abort the process at this named point.
    pub crash_at: Option<String>,
}

impl Default for StorageConfig {
    fn default() -> Self {
        StorageConfig {
            read_wait_max: Duration::from_secs(10),
            flush_bytes_min: 64 << 20,
            flush_age_max: Duration::from_secs(60),
            cache_bytes: 256 << 20,
            compact_segments_max: 4,
            crash_at: None,
        }
    }
}

/// Called when a read needs a watermark at or above a timestamp, so that idle journals
/// publish one at once rather than on a timer tick.
pub type WatermarkRequester =
    Arc<dyn Fn(Timestamp) -> futures::future::BoxFuture<'static, ()> + Send + Sync>;

/// The live segments and horizon, swapped whole when a flush or compaction lands. A read
/// holds the `Arc` it started with, so the segments it reads outlive any compaction.
#[derive(Debug, Default)]
struct View {
    /// Sorted by table, then newest first.
    segments: Vec<Arc<Segment>>,
    horizon: Timestamp,
}

impl View {
    fn new(mut segments: Vec<Arc<Segment>>, horizon: Timestamp) -> View {
        segments.sort_by(|a, b| {
            (a.meta.table_id, std::cmp::Reverse(a.meta.max_ts))
                .cmp(&(b.meta.table_id, std::cmp::Reverse(b.meta.max_ts)))
        });
        View { segments, horizon }
    }

    fn of_table(&self, table_id: u64) -> impl Iterator<Item = &Arc<Segment>> {
        self.segments
            .iter()
            .filter(move |s| s.meta.table_id == table_id)
    }
}

/// What a point lookup read from segments.
#[derive(Debug, Default, Clone, Copy)]
pub struct Probed {
    pub segments: usize,
    /// Rows of the page slices examined (cached or read).
    pub rows: usize,
}

/// Where a flush's time went (logged with the flush, to trace tail latencies).
#[derive(Default)]
struct FlushPhases {
    rows: usize,
    encode: Duration,
    put: Duration,
    manifest: Duration,
}

/// What a compaction did.
#[derive(Debug, Clone)]
pub struct Compaction {
    pub table_id: u64,
    pub inputs: usize,
    pub rows_in: u64,
    pub rows_out: u64,
    pub full: bool,
    pub horizon: Timestamp,
}

/// Most stored rows a segment's part of a short range read ([`StorageNode::range_get`])
/// may span: a few pages of index entries.
pub const SHORT_RANGE_ROWS_MAX: usize = 65_536;

pub struct StorageNode {
    /// Lock order: `mvcc`, then `view`.
    mvcc: RwLock<Memtables>,
    view: RwLock<Arc<View>>,
    applied: watch::Sender<Timestamp>,
    store: DurableStore,
    root: Path,
    manifest: tokio::sync::Mutex<Manifest>,
    unflushed_bytes: AtomicUsize,
    last_flush: Mutex<Instant>,
    requester: OnceLock<WatermarkRequester>,
    config: StorageConfig,
    pub(crate) task_ctx: Arc<TaskContext>,
    cache: SliceCache,
    /// Segments compacted away, deleted once no read holds them.
    retired: Mutex<Vec<Arc<Segment>>>,
    compacting: tokio::sync::Mutex<()>,
    /// Read timestamps of open transactions: compaction keeps what they can see.
    pins: Arc<Mutex<std::collections::BTreeMap<Timestamp, usize>>>,
    /// When this node started, in nanoseconds since the epoch, and how many segment writes
    /// it has attempted: together with the epoch they name every segment uniquely, so a
    /// retried flush or compaction never collides with an object an earlier, failed attempt
    /// left behind.
    started_ns: u128,
    /// The owner's standing: its epoch names every object this node writes.
    lease: Arc<Lease>,
    attempts: AtomicU64,
}

/// Holds a read timestamp open: while it lives, compaction keeps every version a read at
/// that timestamp can see.
#[derive(Debug)]
pub struct ReadPin {
    ts: Timestamp,
    pins: Arc<Mutex<std::collections::BTreeMap<Timestamp, usize>>>,
}

impl ReadPin {
    /// A pin that holds nothing back: for a storage node in another process, which keeps
    /// versions for its retention and refuses reads below its horizon.
    pub fn detached(ts: Timestamp) -> ReadPin {
        let pins = Arc::new(Mutex::new(std::collections::BTreeMap::from([(ts, 1)])));
        ReadPin { ts, pins }
    }
}

impl Drop for ReadPin {
    fn drop(&mut self) {
        let mut p = self.pins.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(n) = p.get_mut(&self.ts) {
            *n -= 1;
            if *n == 0 {
                p.remove(&self.ts);
            }
        }
    }
}

impl std::fmt::Debug for StorageNode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StorageNode")
            .field("root", &self.root)
            .finish()
    }
}

/// The newest manifest of a storage range, or an empty one. A newest manifest that does
/// not verify is an error naming it: recovering from an older one would silently lose
/// what the newer one recorded.
pub async fn read_manifest(
    store: &DurableStore,
    root: &Path,
) -> EngineResult<(Manifest, Option<Path>)> {
    let mut manifests = store.list(&root.clone().join("manifest")).await?;
    manifests.retain(|(p, _)| is_manifest_name(p));
    match manifests.last() {
        None => Ok((
            Manifest {
                format_version: MANIFEST_FORMAT_VERSION,
                ..Default::default()
            },
            None,
        )),
        Some((path, _)) => {
            let data = store.get(path).await?;
            let m = Manifest::decode(&data).map_err(|detail| EngineError::Corrupt {
                path: path.to_string(),
                detail,
            })?;
            Ok((m, Some(path.clone())))
        }
    }
}

impl StorageNode {
    /// Opens the storage range at `root` under `lease`'s epoch: claims it (writes the newest
    /// manifest again at this epoch, so that no older owner can extend the chain), checks
    /// that each listed segment exists with the recorded size, and removes orphan segments
    /// of older epochs (written by a flush or compaction that crashed, or was fenced,
    /// before its manifest). Segment contents are read
    /// lazily and verified against their checksum on first use.
    pub async fn open(
        store: DurableStore,
        root: Path,
        config: StorageConfig,
        lease: Arc<Lease>,
    ) -> EngineResult<Arc<StorageNode>> {
        let manifest = claim_range(&store, &root, &lease).await?;
        let seg_dir = root.clone().join("segments");
        let present: std::collections::HashMap<String, u64> = store
            .list(&seg_dir)
            .await?
            .into_iter()
            .map(|(p, size)| (p.filename().unwrap_or_default().to_string(), size))
            .collect();
        let mut segments = Vec::with_capacity(manifest.segments.len());
        for meta in &manifest.segments {
            let path = seg_dir.clone().join(meta.path.as_str());
            match present.get(&meta.path) {
                None => {
                    return Err(EngineError::Corrupt {
                        path: path.to_string(),
                        detail: format!(
                            "segment listed in manifest {} is missing",
                            manifest.version
                        ),
                    })
                }
                Some(&size) if size != meta.bytes => {
                    return Err(EngineError::Corrupt {
                        path: path.to_string(),
                        detail: format!(
                            "is {size} bytes, manifest {} says {}",
                            manifest.version, meta.bytes
                        ),
                    })
                }
                Some(_) => {}
            }
            segments.push(Arc::new(Segment::new(meta.clone(), path)));
        }
        let live: std::collections::HashSet<&str> =
            manifest.segments.iter().map(|s| s.path.as_str()).collect();
        for name in present.keys() {
            // A segment of this epoch or a newer one may belong to a flush in progress of
            // a live owner: never an orphan of ours to delete.
            if !live.contains(name.as_str()) && segment_epoch(name) < lease.epoch() {
                let path = seg_dir.clone().join(name.as_str());
                tracing::info!(%path, "removing orphan segment");
                store.delete(&path).await?;
            }
        }
        let runtime = datafusion::execution::runtime_env::RuntimeEnvBuilder::new()
            .build_arc()
            .map_err(EngineError::DataFusion)?;
        let url = datafusion::execution::object_store::ObjectStoreUrl::parse(scan::STORE_URL)?;
        runtime.register_object_store(url.as_ref(), store.inner.clone());
        let ctx =
            SessionContext::new_with_config_rt(SessionConfig::new().with_batch_size(8192), runtime);
        let (applied, _) = watch::channel(manifest.checkpoint_ts);
        let view = View::new(segments, manifest.horizon_ts);
        Ok(Arc::new(StorageNode {
            mvcc: RwLock::new(Memtables::opened_at(manifest.checkpoint_ts)),
            view: RwLock::new(Arc::new(view)),
            applied,
            store,
            root,
            manifest: tokio::sync::Mutex::new(manifest),
            unflushed_bytes: AtomicUsize::new(0),
            last_flush: Mutex::new(Instant::now()),
            requester: OnceLock::new(),
            cache: SliceCache::new(config.cache_bytes),
            config,
            task_ctx: ctx.task_ctx(),
            retired: Mutex::new(Vec::new()),
            compacting: tokio::sync::Mutex::new(()),
            pins: Arc::new(Mutex::new(Default::default())),
            started_ns: start_nonce(),
            attempts: AtomicU64::new(0),
            lease,
        }))
    }

    /// The owner's lease this node writes and reads under.
    pub fn lease(&self) -> &Arc<Lease> {
        &self.lease
    }

    pub fn set_watermark_requester(&self, r: WatermarkRequester) {
        let _ = self.requester.set(r);
    }

    /// The checkpoint of the manifest this node started from or last wrote.
    pub async fn checkpoint_ts(&self) -> Timestamp {
        self.manifest.lock().await.checkpoint_ts
    }

    /// A copy of the manifest this node last read or wrote.
    pub async fn manifest(&self) -> Manifest {
        self.manifest.lock().await.clone()
    }

    pub fn applied_ts(&self) -> Timestamp {
        *self.applied.borrow()
    }

    /// Reads below this timestamp are refused: compaction may have dropped what they need.
    pub fn horizon_ts(&self) -> Timestamp {
        self.view.read().unwrap_or_else(|e| e.into_inner()).horizon
    }

    /// Pins `ts` until the returned guard is dropped (a transaction's read timestamp).
    pub fn pin(&self, ts: Timestamp) -> ReadPin {
        *self
            .pins
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(ts)
            .or_default() += 1;
        ReadPin {
            ts,
            pins: self.pins.clone(),
        }
    }

    /// The oldest pinned read timestamp.
    pub fn oldest_pin(&self) -> Option<Timestamp> {
        self.pins
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .keys()
            .next()
            .copied()
    }

    pub fn cache(&self) -> &SliceCache {
        &self.cache
    }

    pub fn store(&self) -> &DurableStore {
        &self.store
    }

    /// Applies commits (in timestamp order) and advances the applied watermark.
    pub fn apply(&self, records: &[Arc<CommitRecord>], watermark: Timestamp) {
        if !records.is_empty() {
            let mut m = self.mvcc.write().unwrap_or_else(|e| e.into_inner());
            let grown = m.apply(records, watermark);
            self.unflushed_bytes.fetch_add(grown, Ordering::Relaxed);
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

    /// Whether the memtable has reached its byte bound, or has held data for longer than
    /// its age bound.
    pub fn wants_flush(&self) -> bool {
        let bytes = self.unflushed_bytes.load(Ordering::Relaxed);
        bytes >= self.config.flush_bytes_min
            || (bytes > 0
                && self
                    .last_flush
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .elapsed()
                    >= self.config.flush_age_max)
    }

    /// Waits until every commit with `commit_ts <= ts` is applied.
    /// Every read starts here, so a read is also where the owner's lease is checked: a
    /// fenced node answers no read, and one whose lease is unconfirmed waits for a check.
    pub async fn wait_applied(&self, ts: Timestamp) -> EngineResult<()> {
        self.lease.ready_to_read(self.config.read_wait_max).await?;
        let mut rx = self.applied.subscribe();
        if *rx.borrow() >= ts {
            return Ok(());
        }
        let requested = self.requester.get().map(|r| r(ts));
        let outcome = tokio::time::timeout(self.config.read_wait_max, async {
            if let Some(r) = requested {
                r.await;
            }
            rx.wait_for(|a| *a >= ts).await.map(|_| ())
        })
        .await;
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

    fn check_horizon(view: &View, ts: Timestamp) -> EngineResult<()> {
        if ts < view.horizon {
            return Err(EngineError::SnapshotTooOld {
                read_ts: ts,
                horizon: view.horizon,
            });
        }
        Ok(())
    }

    /// Once every commit at or below `ts` is applied (as for a read at `ts`): the
    /// timestamp of the newest commit applied so far that wrote `table_id`. A value read
    /// at `ts0` still holds at `ts` when this is at or below both: what callers cache
    /// catalog rows by.
    pub async fn written_ts(&self, table_id: u64, ts: Timestamp) -> EngineResult<Timestamp> {
        self.wait_applied(ts).await?;
        Ok(self
            .mvcc
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .written_ts(table_id))
    }

    /// The row with `key` in `table_id` as of `ts`.
    pub async fn get(
        &self,
        table_id: u64,
        key: &[u8],
        ts: Timestamp,
    ) -> EngineResult<Option<Arc<Row>>> {
        self.wait_applied(ts).await?;
        let (recent, view) = {
            let m = self.mvcc.read().unwrap_or_else(|e| e.into_inner());
            let v = self.view.read().unwrap_or_else(|e| e.into_inner()).clone();
            (m.version(table_id, key, ts), v)
        };
        Self::check_horizon(&view, ts)?;
        if let Some(v) = recent {
            return Ok(v.row);
        }
        let segs: Vec<Arc<Segment>> = view.of_table(table_id).cloned().collect();
        let (v, _) = self.segment_version(&segs, key, ts).await?;
        Ok(v.and_then(|v| v.row))
    }

    /// [`StorageNode::get`] of many keys at one timestamp: one wait, one look at the
    /// memtable and one capture of the segments for all of them (a bulk load's uniqueness
    /// check). The answers are in the keys' order.
    pub async fn get_many(
        &self,
        table_id: u64,
        keys: &[&[u8]],
        ts: Timestamp,
    ) -> EngineResult<Vec<Option<Arc<Row>>>> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        self.wait_applied(ts).await?;
        let (recent, view) = {
            let m = self.mvcc.read().unwrap_or_else(|e| e.into_inner());
            let v = self.view.read().unwrap_or_else(|e| e.into_inner()).clone();
            let recent: Vec<Option<Version>> =
                keys.iter().map(|k| m.version(table_id, k, ts)).collect();
            (recent, v)
        };
        Self::check_horizon(&view, ts)?;
        let segs: Vec<Arc<Segment>> = view.of_table(table_id).cloned().collect();
        let mut out = Vec::with_capacity(keys.len());
        for (key, recent) in keys.iter().zip(recent) {
            out.push(match recent {
                Some(v) => v.row,
                None if segs.is_empty() => None,
                None => self
                    .segment_version(&segs, key, ts)
                    .await?
                    .0
                    .and_then(|v| v.row),
            });
        }
        Ok(out)
    }

    /// The live rows of `table_id` with keys in `[lo, hi)` as of `ts`, in key order, read
    /// as point lookups read (the memtable, then the page slices of each segment that
    /// holds the range, cached), without planning a scan; `None` when a segment's part of
    /// the range spans more than `rows_max` stored rows (then a scan is the better read).
    /// For short ranges: an index's entries for one value ([`SHORT_RANGE_ROWS_MAX`]).
    pub async fn range_get(
        &self,
        table_id: u64,
        (lo, hi): (&[u8], Option<&[u8]>),
        ts: Timestamp,
        rows_max: usize,
    ) -> EngineResult<Option<Vec<(Vec<u8>, Arc<Row>)>>> {
        self.wait_applied(ts).await?;
        let (recent, view) = {
            let m = self.mvcc.read().unwrap_or_else(|e| e.into_inner());
            let v = self.view.read().unwrap_or_else(|e| e.into_inner()).clone();
            (m.snapshot(table_id, ts, Some(lo), hi), v)
        };
        Self::check_horizon(&view, ts)?;
        // Newest first: the memtable, then segments newest first (their timestamp ranges
        // are disjoint), so a key's first version found is its newest at or below `ts`.
        let mut found: std::collections::BTreeMap<Vec<u8>, Option<Arc<Row>>> =
            recent.into_iter().map(|(k, v)| (k, v.row)).collect();
        for seg in view.of_table(table_id) {
            if seg.meta.min_ts > ts || !seg.may_hold_range(Some(lo), hi) {
                continue;
            }
            let Some(versions) = seg
                .range_versions(&self.store, &self.cache, (lo, hi), ts, rows_max)
                .await?
            else {
                return Ok(None);
            };
            for (k, v) in versions {
                found.entry(k).or_insert(v.row);
            }
        }
        Ok(Some(
            found
                .into_iter()
                .filter_map(|(k, row)| row.map(|r| (k, r)))
                .collect(),
        ))
    }

    /// The newest version of `key` at or below `ts` in `segments` (one table's, newest
    /// first): the first segment whose key range holds the key and that has a version of
    /// it answers, because segments of a table hold disjoint timestamp ranges.
    pub(crate) async fn segment_version(
        &self,
        segments: &[Arc<Segment>],
        key: &[u8],
        ts: Timestamp,
    ) -> EngineResult<(Option<Version>, Probed)> {
        let mut probed = Probed::default();
        for seg in segments {
            if seg.meta.min_ts > ts || !seg.may_hold_key(key) {
                continue;
            }
            probed.segments += 1;
            if let Some(v) = seg
                .lookup(&self.store, &self.cache, key, ts, &mut probed.rows)
                .await?
            {
                return Ok((Some(v), probed));
            }
        }
        Ok((None, probed))
    }

    /// Plans a scan: waits until `read_ts` is applied, then captures the memtable's part and
    /// the live segments the scan needs (opening and verifying each).
    pub async fn plan_scan(self: &Arc<Self>, req: ScanRequest) -> EngineResult<MvccScanExec> {
        self.wait_applied(req.read_ts).await?;
        let (recent, view) = {
            let m = self.mvcc.read().unwrap_or_else(|e| e.into_inner());
            let v = self.view.read().unwrap_or_else(|e| e.into_inner()).clone();
            let recent = match &req.kind {
                ScanKind::Range { lo, hi } => {
                    m.snapshot(req.table_id, req.read_ts, lo.as_deref(), hi.as_deref())
                }
                ScanKind::Points(keys) => keys
                    .iter()
                    .filter_map(|k| {
                        m.version(req.table_id, k, req.read_ts)
                            .map(|v| (k.clone(), v))
                    })
                    .collect(),
            };
            (recent, v)
        };
        Self::check_horizon(&view, req.read_ts)?;
        let all: Vec<Arc<Segment>> = view.of_table(req.table_id).cloned().collect();
        let total = all.len();
        let segments: Vec<Arc<Segment>> = match &req.kind {
            ScanKind::Range { lo, hi } => all
                .into_iter()
                .filter(|s| {
                    s.meta.min_ts <= req.read_ts && s.may_hold_range(lo.as_deref(), hi.as_deref())
                })
                .collect(),
            ScanKind::Points(keys) => all
                .into_iter()
                .filter(|s| s.meta.min_ts <= req.read_ts && keys.iter().any(|k| s.may_hold_key(k)))
                .collect(),
        };
        let mut splits = Vec::new();
        if let ScanKind::Range { lo, hi } = &req.kind {
            // Row groups' first keys, weighted by rows: the partition boundaries.
            let mut starts: Vec<(Vec<u8>, u64)> = Vec::new();
            for s in &segments {
                let md = s.open(&self.store).await?.metadata().clone();
                for rg in md.row_groups() {
                    if let Some(min) = rg.column(0).statistics().and_then(|st| st.min_bytes_opt()) {
                        starts.push((min.to_vec(), rg.num_rows() as u64));
                    }
                }
            }
            let total: u64 = starts.iter().map(|s| s.1).sum();
            if req.partitions > 1 && total >= SPLIT_ROWS_MIN {
                starts.sort();
                let per = total / req.partitions as u64;
                let mut acc = 0;
                for (key, rows) in starts {
                    if acc >= per * (splits.len() as u64 + 1)
                        && splits.len() + 1 < req.partitions
                        && lo.as_ref().is_none_or(|l| &key > l)
                        && hi.as_ref().is_none_or(|h| &key < h)
                        && splits.last() != Some(&key)
                    {
                        splits.push(key);
                    }
                    acc += rows;
                }
            }
        }
        Ok(MvccScanExec::new(
            self.clone(),
            req,
            segments,
            total,
            recent,
            splits,
        ))
    }

    /// A scan's rows as one stream (the scan in one partition): what a storage node
    /// streams to a frontend in another process.
    pub async fn scan_stream(
        self: &Arc<Self>,
        req: ScanRequest,
    ) -> EngineResult<datafusion::physical_plan::SendableRecordBatchStream> {
        let plan = self
            .plan_scan(ScanRequest {
                partitions: 1,
                ..req
            })
            .await?;
        Ok(plan.execute(0, self.task_ctx.clone())?)
    }

    /// Every live row of `table_id` (whose columns are `schema`) as of `ts`, in key order.
    pub async fn scan(
        self: &Arc<Self>,
        table_id: u64,
        schema: SchemaRef,
        ts: Timestamp,
    ) -> EngineResult<Vec<(Vec<u8>, Arc<Row>)>> {
        let ncols = schema.fields().len();
        let mut columns: Vec<OutColumn> = (0..ncols).map(OutColumn::User).collect();
        columns.push(OutColumn::Key);
        let plan = self
            .plan_scan(ScanRequest {
                table_id,
                table_name: table_id.to_string(),
                read_ts: ts,
                user_schema: schema,
                kind: ScanKind::Range { lo: None, hi: None },
                columns,
                overlay: Vec::new(),
                partitions: 1,
            })
            .await?;
        let mut stream = plan.execute(0, self.task_ctx.clone())?;
        let mut out = Vec::new();
        while let Some(batch) = stream.next().await {
            let batch = batch?;
            let keys = batch
                .column(ncols)
                .as_any()
                .downcast_ref::<BinaryArray>()
                .ok_or_else(|| EngineError::Internal("key column is not binary".into()))?;
            for i in 0..batch.num_rows() {
                out.push((
                    keys.value(i).to_vec(),
                    Arc::new(batch_row(&batch, i, ncols)?),
                ));
            }
        }
        Ok(out)
    }

    fn crash_point(&self, name: &str) {
        if self.config.crash_at.as_deref() == Some(name) {
            eprintln!("weft: crash point {name} reached: aborting");
            std::process::abort();
        }
    }

    fn segment_path(&self, name: &str) -> Path {
        self.root.clone().join("segments").join(name)
    }

    /// Writes a segment and returns its manifest entry.
    async fn put_segment(
        &self,
        name: String,
        table_id: u64,
        data: Vec<u8>,
        stats: segment::SegmentStats,
    ) -> EngineResult<SegmentMeta> {
        let path = self.segment_path(&name);
        let meta = SegmentMeta {
            path: name,
            table_id,
            versions: stats.rows,
            min_ts: stats.min_ts,
            max_ts: stats.max_ts,
            bytes: data.len() as u64,
            min_key: segment::hex(&stats.min_key),
            max_key: segment::hex(&stats.max_key),
            keys: stats.keys,
            tombstones: stats.tombstones,
            crc32: Some(crc32fast::hash(&data)),
        };
        if self.store.put_create(&path, Bytes::from(data)).await? == Created::AlreadyExists {
            return Err(EngineError::Internal(format!(
                "segment {path} already exists"
            )));
        }
        Ok(meta)
    }

    /// Writes `next` as the manifest's next version (create-if-absent), after checking its
    /// invariants and that every segment it adds exists with the recorded size.
    async fn put_manifest(&self, prev: &Manifest, next: &Manifest) -> EngineResult<()> {
        next.check_successor_of(prev)
            .map_err(|e| EngineError::Internal(format!("refusing to write manifest: {e}")))?;
        let before: std::collections::HashSet<&str> =
            prev.segments.iter().map(|s| s.path.as_str()).collect();
        for s in next
            .segments
            .iter()
            .filter(|s| !before.contains(s.path.as_str()))
        {
            let path = self.segment_path(&s.path);
            let head = self
                .store
                .inner
                .head(&path)
                .await
                .map_err(|e| EngineError::Store {
                    path: path.to_string(),
                    source: e,
                })?;
            if head.size != s.bytes {
                return Err(EngineError::Internal(format!(
                    "refusing to write manifest: segment {path} is {} bytes, expected {}",
                    head.size, s.bytes
                )));
            }
        }
        let path = self
            .root
            .clone()
            .join("manifest")
            .join(format!("{:020}", next.version));
        let bytes = Bytes::from(next.encode());
        // A PUT can fail after the store took it (a lost acknowledgement), so neither an
        // error nor "already exists" settles the outcome: reading the object back does.
        // Our exact bytes there mean the write took effect; other bytes mean another node
        // wrote this version; nothing there means it did not happen and may be retried.
        let mut last_err = None;
        for attempt in 0..MANIFEST_PUT_ATTEMPTS {
            if attempt > 0 {
                tokio::time::sleep(Duration::from_millis(20 << attempt.min(6))).await;
            }
            match self.store.put_create(&path, bytes.clone()).await {
                Ok(Created::Yes) => return self.check_newest(&path).await,
                Ok(Created::AlreadyExists) => {}
                Err(e) => last_err = Some(e),
            }
            match self.store.get_opt(&path).await {
                Ok(Some(found)) if found == bytes => return self.check_newest(&path).await,
                Ok(Some(found)) => return Err(self.lost_manifest_race(&path, &found)),
                Ok(None) => {}
                Err(e) => last_err = Some(e),
            }
        }
        Err(last_err.unwrap_or_else(|| {
            EngineError::Internal(format!("manifest {path} could not be written"))
        }))
    }

    /// After creating manifest `path`: no later version may exist. One can only if this
    /// node's version was free because a newer owner's garbage collection had deleted it
    /// (a newer owner keeps only its last few versions, and never its newest), or because
    /// a newer owner claimed the range right after: either way this node is fenced.
    async fn check_newest(&self, path: &Path) -> EngineResult<()> {
        let mut later = self
            .store
            .list_after(&self.root.clone().join("manifest"), path)
            .await?;
        later.retain(|(p, _)| is_manifest_name(p));
        let Some((newest, _)) = later.last() else {
            return Ok(());
        };
        let found = self.store.get(newest).await?;
        // Left in place: no reader takes it (recovery reads the newest version, and a
        // newer owner extends only its own versions), and `weft inspect manifest
        // --verify` names it as a fenced owner's stray.
        Err(self.lost_manifest_race(newest, &found))
    }

    /// Another writer created the manifest version this node meant to write. One of a
    /// newer epoch has taken the range over: the lease is fenced. Any other writer breaks
    /// the ownership protocol (an older epoch cannot follow this node's versions).
    fn lost_manifest_race(&self, path: &Path, found: &[u8]) -> EngineError {
        match Manifest::decode(found) {
            Ok(m) if m.epoch > self.lease.epoch() => {
                self.lease.fence(
                    m.epoch,
                    format!(
                        "manifest {} was written by owner epoch {}",
                        m.version, m.epoch
                    ),
                );
                self.lease.ensure_not_fenced().unwrap_err()
            }
            Ok(m) => EngineError::Internal(format!(
                "manifest {path} already exists, written at epoch {} (this node's epoch is \
                 {}): another storage node writes this range",
                m.epoch,
                self.lease.epoch()
            )),
            Err(detail) => EngineError::Corrupt {
                path: path.to_string(),
                detail,
            },
        }
    }

    /// A name part no other segment write of any node run shares:
    /// `e{epoch}-{start}-{counter}`. The epoch comes first so that orphan deletion can tell
    /// whose a segment is.
    fn next_attempt(&self) -> String {
        let n = self.attempts.fetch_add(1, Ordering::Relaxed);
        format!("e{}-{:x}-{n}", self.lease.epoch(), self.started_ns)
    }

    /// Writes everything applied since the last checkpoint to new segments, then a new
    /// manifest whose checkpoint is the applied watermark, then drops the flushed versions
    /// from the memtable. Segments first, manifest last: a crash in between leaves orphan
    /// segments (removed at the next open), never a manifest that lists a missing segment.
    pub async fn flush(&self) -> EngineResult<Option<Timestamp>> {
        self.lease.ensure_not_fenced()?;
        let mut manifest = self.manifest.lock().await;
        let started = Instant::now();
        // Freeze: a swap under the lock. Applies and reads go on while the frozen
        // memtable is written out.
        let frozen = {
            let mut m = self.mvcc.write().unwrap_or_else(|e| e.into_inner());
            let frozen = m.freeze(manifest.checkpoint_ts, self.applied_ts());
            self.unflushed_bytes
                .store(m.active_bytes(), Ordering::Relaxed);
            frozen
        };
        let Some((frozen, upto)) = frozen else {
            return Ok(None);
        };
        let froze = started.elapsed();
        let content = memtables::flush_content(&frozen);
        let mut next = Manifest {
            format_version: MANIFEST_FORMAT_VERSION,
            version: manifest.version + 1,
            epoch: self.lease.epoch(),
            checkpoint_ts: upto,
            horizon_ts: manifest.horizon_ts,
            segments: manifest.segments.clone(),
        };
        let mut added = Vec::new();
        let mut phases = FlushPhases::default();
        for (table_id, schema, versions) in content {
            let name = format!(
                "{upto:020}-{table_id:016x}-f-{}.parquet",
                self.next_attempt()
            );
            let t = Instant::now();
            let (data, stats) = segment::encode(table_id, &schema, &versions)?;
            phases.encode += t.elapsed();
            if stats.rows != versions.len() as u64 {
                return Err(EngineError::Internal(format!(
                    "segment {name} did not take every version"
                )));
            }
            phases.rows += versions.len();
            let t = Instant::now();
            let meta = self.put_segment(name, table_id, data, stats).await?;
            phases.put += t.elapsed();
            added.push(meta.clone());
            next.segments.push(meta);
        }
        self.crash_point("flush-before-manifest");
        let t = Instant::now();
        self.put_manifest(&manifest, &next).await?;
        phases.manifest = t.elapsed();
        self.crash_point("flush-after-manifest");
        let t = Instant::now();
        let released =
            {
                let mut m = self.mvcc.write().unwrap_or_else(|e| e.into_inner());
                let mut v = self.view.write().unwrap_or_else(|e| e.into_inner());
                let mut segments = v.segments.clone();
                segments.extend(added.iter().map(|meta| {
                    Arc::new(Segment::new(meta.clone(), self.segment_path(&meta.path)))
                }));
                *v = Arc::new(View::new(segments, v.horizon));
                m.release()
            };
        let landed = t.elapsed();
        // The frozen memtable is freed here, outside the locks.
        drop((released, frozen));
        *self.last_flush.lock().unwrap_or_else(|e| e.into_inner()) = Instant::now();
        *manifest = next;
        tracing::debug!(
            version = manifest.version,
            checkpoint = upto,
            segments = added.len(),
            rows = phases.rows,
            freeze_us = froze.as_micros() as u64,
            encode_ms = phases.encode.as_millis() as u64,
            put_ms = phases.put.as_millis() as u64,
            manifest_ms = phases.manifest.as_millis() as u64,
            land_us = landed.as_micros() as u64,
            total_ms = started.elapsed().as_millis() as u64,
            "manifest written (flush)"
        );
        Ok(Some(upto))
    }

    /// Picks the table most in need of compaction and its input segments: when a table has
    /// more than `compact_segments_max` segments, either everything (when the newer
    /// segments add up to a quarter of the oldest, or `full` is asked), which also drops
    /// tombstones, or every segment but the oldest.
    fn pick_compaction(&self, view: &View, full: bool) -> Option<(u64, Vec<Arc<Segment>>, bool)> {
        let mut tables: std::collections::BTreeMap<u64, Vec<Arc<Segment>>> = Default::default();
        for s in &view.segments {
            tables.entry(s.meta.table_id).or_default().push(s.clone());
        }
        let (table_id, mut segs) = tables
            .into_iter()
            .filter(|(_, segs)| {
                if full {
                    segs.len() > 1 || segs.iter().any(|s| s.meta.tombstones > 0)
                } else {
                    segs.len() > self.config.compact_segments_max
                }
            })
            .max_by_key(|(_, segs)| segs.len())?;
        segs.sort_by_key(|s| s.meta.min_ts);
        let base = segs[0].meta.bytes;
        let newer: u64 = segs[1..].iter().map(|s| s.meta.bytes).sum();
        if full || newer.saturating_mul(4) >= base || segs.len() < 3 {
            Some((table_id, segs, true))
        } else {
            segs.remove(0);
            Some((table_id, segs, false))
        }
    }

    /// Compacts one table, if one needs it (or, with `full`, merges every table's segments
    /// into one): merges its segments into one, keeping every version newer than the
    /// horizon and, per key, the newest version at or below it (dropped when it is a delete
    /// and the merge includes the table's oldest segment). `horizon` is the oldest
    /// timestamp reads must still be able to use (now minus the retention window); it is
    /// lowered to the oldest pinned read timestamp and clamped to the checkpoint.
    ///
    /// Memory: the merge streams, batch by batch; the output segment is built in memory
    /// before it is written.
    pub async fn compact(
        &self,
        horizon: Timestamp,
        full: bool,
    ) -> EngineResult<Option<Compaction>> {
        self.lease.ensure_not_fenced()?;
        let _one_at_a_time = self.compacting.lock().await;
        let view = self.view.read().unwrap_or_else(|e| e.into_inner()).clone();
        let Some((table_id, inputs, drop_tombstones)) = self.pick_compaction(&view, full) else {
            return Ok(None);
        };
        let checkpoint = self.manifest.lock().await.checkpoint_ts;
        // Never past what an open transaction reads, nor past the checkpoint; never back.
        let horizon = horizon
            .min(self.oldest_pin().unwrap_or(Timestamp::MAX))
            .min(checkpoint)
            .max(view.horizon);
        for s in &inputs {
            s.open(&self.store).await?;
        }
        // Every input holds the table's schema as of its flush; the newest is the widest.
        let newest = inputs
            .iter()
            .max_by_key(|s| s.meta.max_ts)
            .expect("inputs are not empty");
        let fschema = newest.open(&self.store).await?.schema().clone();
        let user_schema = Arc::new(arrow::datatypes::Schema::new(
            fschema.fields()[segment::SYSTEM_COLUMNS..].to_vec(),
        ));
        let needed: Vec<usize> = (0..user_schema.fields().len()).collect();
        let mut streams = Vec::new();
        for s in &inputs {
            streams.push(scan::segment_stream(
                s,
                &self.store,
                &user_schema,
                &needed,
                None,
                (None, None),
                self.task_ctx.clone(),
            )?);
        }
        let metrics = ExecutionPlanMetricsSet::new();
        let mut merged = scan::merge_streams(streams, fschema.clone(), &self.task_ctx, &metrics)?;
        let mut writer = SegmentWriter::new(table_id, fschema.clone())?;
        let mut gc = Gc {
            horizon,
            drop_tombstones,
            last_key: None,
            kept_old: false,
        };
        let mut rows_in = 0u64;
        while let Some(batch) = merged.next().await {
            let batch = batch?;
            rows_in += batch.num_rows() as u64;
            let kept = gc.filter(&batch)?;
            writer.write(&kept)?;
        }
        let rows_out = writer.rows();
        let output = if rows_out > 0 {
            let (data, stats) = writer.finish()?;
            let version = self.manifest.lock().await.version + 1;
            let name = format!(
                "{:020}-{table_id:016x}-c{version:08}-{}.parquet",
                stats.max_ts,
                self.next_attempt()
            );
            Some(self.put_segment(name, table_id, data, stats).await?)
        } else {
            None
        };
        self.crash_point("compact-before-manifest");
        let mut manifest = self.manifest.lock().await;
        let gone: std::collections::HashSet<&str> =
            inputs.iter().map(|s| s.meta.path.as_str()).collect();
        let mut next = Manifest {
            format_version: MANIFEST_FORMAT_VERSION,
            version: manifest.version + 1,
            epoch: self.lease.epoch(),
            checkpoint_ts: manifest.checkpoint_ts,
            horizon_ts: manifest.horizon_ts.max(horizon),
            segments: manifest
                .segments
                .iter()
                .filter(|s| !gone.contains(s.path.as_str()))
                .cloned()
                .collect(),
        };
        next.segments.extend(output.clone());
        self.put_manifest(&manifest, &next).await?;
        self.crash_point("compact-after-manifest");
        {
            let mut v = self.view.write().unwrap_or_else(|e| e.into_inner());
            let mut segments: Vec<Arc<Segment>> = v
                .segments
                .iter()
                .filter(|s| !gone.contains(s.meta.path.as_str()))
                .cloned()
                .collect();
            if let Some(meta) = &output {
                segments.push(Arc::new(Segment::new(
                    meta.clone(),
                    self.segment_path(&meta.path),
                )));
            }
            *v = Arc::new(View::new(segments, next.horizon_ts));
        }
        tracing::debug!(
            table_id,
            inputs = inputs.len(),
            rows_in,
            rows_out,
            horizon,
            version = next.version,
            "compacted"
        );
        *manifest = next;
        drop(manifest);
        let report = Compaction {
            table_id,
            inputs: inputs.len(),
            rows_in,
            rows_out,
            full: drop_tombstones,
            horizon,
        };
        self.retired
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .extend(inputs);
        drop(view);
        self.collect_garbage().await?;
        Ok(Some(report))
    }

    /// Deletes retired segments no read holds any more, and manifests older than the
    /// newest few. Returns how many objects were deleted.
    pub async fn collect_garbage(&self) -> EngineResult<usize> {
        self.lease.ensure_not_fenced()?;
        let free: Vec<Arc<Segment>> = {
            let mut r = self.retired.lock().unwrap_or_else(|e| e.into_inner());
            let (free, held): (Vec<_>, Vec<_>) =
                r.drain(..).partition(|s| Arc::strong_count(s) == 1);
            *r = held;
            free
        };
        let mut deleted = 0;
        for s in free {
            self.store.delete(&s.path).await?;
            deleted += 1;
        }
        let current = self.manifest.lock().await.version;
        let manifests = self.store.list(&self.root.clone().join("manifest")).await?;
        for (path, _) in manifests {
            // Anything else there (another process's temporary file of a local put) is
            // not ours to delete.
            let Some(v) = path.filename().and_then(|n| n.parse::<u64>().ok()) else {
                continue;
            };
            if v.saturating_add(MANIFESTS_KEPT) <= current {
                self.store.delete(&path).await?;
                deleted += 1;
            }
        }
        Ok(deleted)
    }
}

/// Whether `path` names a manifest version (and not, say, another process's temporary
/// file of a local put in the same directory).
pub fn is_manifest_name(path: &Path) -> bool {
    path.filename()
        .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
}

/// Claims the storage range at `root` for `lease`'s epoch: the newest manifest, written
/// again as the next version at this epoch. From then on an older owner's next manifest
/// (the successor of a version it read before) finds its version taken and learns it is
/// fenced, so the chain this node continues is the only one. A newest manifest of a newer
/// epoch means this node is fenced already. Reopening in the same epoch claims nothing.
async fn claim_range(store: &DurableStore, root: &Path, lease: &Lease) -> EngineResult<Manifest> {
    for _ in 0..MANIFEST_PUT_ATTEMPTS * 20 {
        let (newest, path) = read_manifest(store, root).await?;
        if newest.epoch > lease.epoch() {
            lease.fence(
                newest.epoch,
                format!(
                    "manifest {} of {root} was written by owner epoch {}",
                    newest.version, newest.epoch
                ),
            );
            return Err(lease.ensure_not_fenced().unwrap_err());
        }
        if newest.epoch == lease.epoch() && path.is_some() {
            return Ok(newest);
        }
        let mut next = newest.clone();
        next.format_version = MANIFEST_FORMAT_VERSION;
        next.version = newest.version + 1;
        next.epoch = lease.epoch();
        next.check_successor_of(&newest)
            .map_err(|e| EngineError::Internal(format!("refusing to claim {root}: {e}")))?;
        let at = root
            .clone()
            .join("manifest")
            .join(format!("{:020}", next.version));
        let bytes = Bytes::from(next.encode());
        match store.put_create(&at, bytes.clone()).await {
            Ok(Created::Yes) => {
                tracing::info!(range = %root, version = next.version, epoch = next.epoch, checkpoint = next.checkpoint_ts, "storage: range claimed");
                return Ok(next);
            }
            // Another owner wrote this version first (or ours landed and the answer was
            // lost): read the chain again.
            Ok(Created::AlreadyExists) => {}
            Err(e) => {
                tracing::warn!(error = %e, "storage: claiming the range failed; retrying");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
    Err(EngineError::Internal(format!(
        "could not claim storage range {root}: its manifest keeps changing"
    )))
}

/// The owner epoch a segment's name carries (`...-e{epoch}-...`); 0 for names from
/// before epochs.
/// Names are `{max_ts}-{table}-f-e{epoch}-{nonce}-{n}` (flush) and
/// `{max_ts}-{table}-c{version}-e{epoch}-{nonce}-{n}` (compaction).
pub fn segment_epoch(name: &str) -> u64 {
    name.split('-')
        .nth(3)
        .and_then(|part| part.strip_prefix('e'))
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

/// Range scans over fewer segment rows than this run as one partition.
const SPLIT_ROWS_MIN: u64 = 256 * 1024;

/// Manifest versions kept besides the newest (for inspection after the fact).
const MANIFESTS_KEPT: u64 = 4;

/// A nonce that tells this node run's segment names from every other run's: the start
/// time in nanoseconds. Not a timestamp of anything, so the wall clock is fine.
fn start_nonce() -> u128 {
    #[allow(clippy::disallowed_methods)]
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0)
}

/// How many times a manifest write whose outcome is unknown is tried before the flush or
/// compaction gives up (and is tried again later, whole).
const MANIFEST_PUT_ATTEMPTS: u32 = 5;

/// The version filter of a compaction, over a version-ordered stream.
struct Gc {
    horizon: Timestamp,
    drop_tombstones: bool,
    last_key: Option<Vec<u8>>,
    /// Whether the current key's newest version at or below the horizon was seen.
    kept_old: bool,
}

impl Gc {
    fn filter(&mut self, batch: &RecordBatch) -> EngineResult<RecordBatch> {
        let (keys, tss, ops) = segment::system_columns(batch, "segments being compacted")?;
        let mut keep = Vec::with_capacity(batch.num_rows());
        for i in 0..batch.num_rows() {
            let key = keys.value(i);
            if self.last_key.as_deref() != Some(key) {
                self.last_key = Some(key.to_vec());
                self.kept_old = false;
            }
            let k = if tss.value(i) > self.horizon {
                true
            } else if !self.kept_old {
                // The version reads at the horizon see: needed unless it is a delete with
                // nothing older left anywhere to hide.
                self.kept_old = true;
                !(self.drop_tombstones && ops.value(i) == OP_DELETE)
            } else {
                false
            };
            keep.push(k);
        }
        Ok(arrow::compute::filter_record_batch(
            batch,
            &arrow::array::BooleanArray::from(keep),
        )?)
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn segment_names_carry_their_epoch() {
        use super::segment_epoch;
        assert_eq!(
            segment_epoch("00000000000000000100-0000000000000003-f-e7-18a2b-0.parquet"),
            7
        );
        assert_eq!(
            segment_epoch("00000000000000000100-0000000000000003-c00000012-e12-18a2b-4.parquet"),
            12
        );
        // Names from before epochs.
        assert_eq!(
            segment_epoch("00000000000000000100-0000000000000003-f18a2b-0.parquet"),
            0
        );
        assert_eq!(
            segment_epoch("00000000000000000100-0000000000000003-c00000012-18a2b-4.parquet"),
            0
        );
    }
}
