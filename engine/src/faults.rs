//! A fault-injecting wrapper around any `object_store`, for fault tests.
//!
//! It sits between weft and a real store (a local directory or an S3-compatible server)
//! and, per operation, can: fail before doing anything, **do the PUT and then report a
//! timeout** (the ambiguous outcome every client of a remote store must handle), hang for
//! a while and then fail, add latency, take the whole store down, or silently ignore
//! conditional puts (as some S3-compatible stores do). Faults are drawn from a seeded
//! generator, so a failing run can be replayed, and every knob can be changed while the
//! store is in use.
//!
//! `weft serve --inject-faults <spec>` (hidden, testing only) wraps its store in one; the
//! spec is a comma-separated list of `knob=value` (rates in per mille):
//! `put_error=50,lost_ack=20,get_error=10,list_error=10,hang=5,hang_ms=2000,latency_ms=1,
//! journal_put_latency_ms=500,ignore_conditional_puts,seed=7`.

use std::fmt;
use std::ops::Range;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use futures::stream::BoxStream;
use futures::StreamExt;
use object_store::path::Path;
use object_store::{
    CopyOptions, GetOptions, GetResult, ListResult, MultipartUpload, ObjectMeta, ObjectStore,
    PutMode, PutMultipartOptions, PutOptions, PutPayload, PutResult, Result,
};

/// The knobs. Rates are per mille (0..=1000).
#[derive(Debug, Default)]
pub struct Faults {
    /// PUT fails without writing anything.
    pub put_error: AtomicU32,
    /// PUT writes the object, then reports a timeout.
    pub lost_ack: AtomicU32,
    /// PUT hangs for `hang_ms`, then fails without writing.
    pub hang: AtomicU32,
    pub hang_ms: AtomicU64,
    /// GET (and HEAD) fails.
    pub get_error: AtomicU32,
    /// LIST fails.
    pub list_error: AtomicU32,
    /// Added to every operation.
    pub latency_ms: AtomicU64,
    /// Added to every PUT of a journal batch (a path with `/journal/` in it): commits stay
    /// in flight that long, while the rest of the store answers at its own speed.
    pub journal_put_latency_ms: AtomicU64,
    /// Every operation fails while set.
    pub down: AtomicBool,
    /// `PutMode::Create` is treated as an overwrite, as by a store without conditional puts.
    pub ignore_conditional_puts: AtomicBool,
    rng: AtomicU64,
    /// How many faults were injected, for tests to assert that they happened.
    pub injected: AtomicU64,
}

impl Faults {
    pub fn new(seed: u64) -> Arc<Faults> {
        let f = Faults::default();
        f.rng.store(seed.max(1), Ordering::Relaxed);
        Arc::new(f)
    }

    /// Parses a spec such as `put_error=50,lost_ack=20,seed=7` (see the module docs).
    pub fn parse(spec: &str) -> std::result::Result<Arc<Faults>, String> {
        let f = Faults::new(0x5eed);
        for part in spec.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (k, v) = part.split_once('=').unwrap_or((part, "1"));
            let n: u64 = v
                .parse()
                .map_err(|_| format!("fault `{k}`: `{v}` is not a number"))?;
            let rate = || -> std::result::Result<u32, String> {
                if n > 1000 {
                    Err(format!("fault `{k}`: rate {n} is over 1000 per mille"))
                } else {
                    Ok(n as u32)
                }
            };
            match k {
                "put_error" => f.put_error.store(rate()?, Ordering::Relaxed),
                "lost_ack" => f.lost_ack.store(rate()?, Ordering::Relaxed),
                "hang" => f.hang.store(rate()?, Ordering::Relaxed),
                "hang_ms" => f.hang_ms.store(n, Ordering::Relaxed),
                "get_error" => f.get_error.store(rate()?, Ordering::Relaxed),
                "list_error" => f.list_error.store(rate()?, Ordering::Relaxed),
                "latency_ms" => f.latency_ms.store(n, Ordering::Relaxed),
                "journal_put_latency_ms" => f.journal_put_latency_ms.store(n, Ordering::Relaxed),
                "down" => f.down.store(n != 0, Ordering::Relaxed),
                "ignore_conditional_puts" => {
                    f.ignore_conditional_puts.store(n != 0, Ordering::Relaxed)
                }
                "seed" => f.rng.store(n.max(1), Ordering::Relaxed),
                _ => return Err(format!("unknown fault `{k}`")),
            }
        }
        Ok(f)
    }

    /// True with probability `per_mille / 1000` (xorshift, lock-free).
    fn roll(&self, per_mille: &AtomicU32) -> bool {
        let p = per_mille.load(Ordering::Relaxed);
        if p == 0 {
            return false;
        }
        let mut x = self.rng.load(Ordering::Relaxed);
        loop {
            let mut y = x;
            y ^= y << 13;
            y ^= y >> 7;
            y ^= y << 17;
            match self
                .rng
                .compare_exchange_weak(x, y, Ordering::Relaxed, Ordering::Relaxed)
            {
                Ok(_) => {
                    let hit = (y % 1000) < p as u64;
                    if hit {
                        self.injected.fetch_add(1, Ordering::Relaxed);
                    }
                    return hit;
                }
                Err(now) => x = now,
            }
        }
    }

    async fn before(&self, op: &str, location: &str) -> Result<()> {
        let ms = self.latency_ms.load(Ordering::Relaxed);
        if ms > 0 {
            tokio::time::sleep(Duration::from_millis(ms)).await;
        }
        if self.down.load(Ordering::Relaxed) {
            self.injected.fetch_add(1, Ordering::Relaxed);
            return Err(injected(op, location, "store is down"));
        }
        Ok(())
    }
}

fn injected(op: &str, location: &str, what: &str) -> object_store::Error {
    object_store::Error::Generic {
        store: "faults",
        source: format!("injected fault: {op} {location}: {what}").into(),
    }
}

/// An `ObjectStore` that injects [`Faults`] in front of `inner`.
#[derive(Debug)]
pub struct FaultyStore {
    inner: Arc<dyn ObjectStore>,
    faults: Arc<Faults>,
}

impl FaultyStore {
    pub fn new(inner: Arc<dyn ObjectStore>, faults: Arc<Faults>) -> FaultyStore {
        FaultyStore { inner, faults }
    }
}

impl fmt::Display for FaultyStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "FaultyStore({})", self.inner)
    }
}

#[async_trait]
impl ObjectStore for FaultyStore {
    async fn put_opts(
        &self,
        location: &Path,
        payload: PutPayload,
        mut opts: PutOptions,
    ) -> Result<PutResult> {
        let f = &self.faults;
        f.before("PUT", location.as_ref()).await?;
        let journal_ms = f.journal_put_latency_ms.load(Ordering::Relaxed);
        if journal_ms > 0 && location.as_ref().contains("/journal/") {
            tokio::time::sleep(Duration::from_millis(journal_ms)).await;
        }
        if f.roll(&f.hang) {
            tokio::time::sleep(Duration::from_millis(f.hang_ms.load(Ordering::Relaxed))).await;
            return Err(injected("PUT", location.as_ref(), "timed out (hung)"));
        }
        if f.roll(&f.put_error) {
            return Err(injected("PUT", location.as_ref(), "connection reset"));
        }
        if f.ignore_conditional_puts.load(Ordering::Relaxed) && opts.mode == PutMode::Create {
            opts.mode = PutMode::Overwrite;
        }
        let lost_ack = f.roll(&f.lost_ack);
        let r = self.inner.put_opts(location, payload, opts).await?;
        if lost_ack {
            return Err(injected(
                "PUT",
                location.as_ref(),
                "timed out (the object was written)",
            ));
        }
        Ok(r)
    }

    async fn put_multipart_opts(
        &self,
        location: &Path,
        opts: PutMultipartOptions,
    ) -> Result<Box<dyn MultipartUpload>> {
        self.faults.before("PUT", location.as_ref()).await?;
        self.inner.put_multipart_opts(location, opts).await
    }

    async fn get_opts(&self, location: &Path, options: GetOptions) -> Result<GetResult> {
        let f = &self.faults;
        f.before("GET", location.as_ref()).await?;
        if f.roll(&f.get_error) {
            return Err(injected("GET", location.as_ref(), "connection reset"));
        }
        self.inner.get_opts(location, options).await
    }

    async fn get_ranges(&self, location: &Path, ranges: &[Range<u64>]) -> Result<Vec<Bytes>> {
        let f = &self.faults;
        f.before("GET", location.as_ref()).await?;
        if f.roll(&f.get_error) {
            return Err(injected("GET", location.as_ref(), "connection reset"));
        }
        self.inner.get_ranges(location, ranges).await
    }

    fn delete_stream(
        &self,
        locations: BoxStream<'static, Result<Path>>,
    ) -> BoxStream<'static, Result<Path>> {
        if self.faults.down.load(Ordering::Relaxed) {
            return locations
                .map(|p| p.and_then(|p| Err(injected("DELETE", p.as_ref(), "store is down"))))
                .boxed();
        }
        self.inner.delete_stream(locations)
    }

    fn list(&self, prefix: Option<&Path>) -> BoxStream<'static, Result<ObjectMeta>> {
        let f = &self.faults;
        let at = prefix.map(|p| p.to_string()).unwrap_or_default();
        if f.down.load(Ordering::Relaxed) || f.roll(&f.list_error) {
            return futures::stream::once(async move { Err(injected("LIST", &at, "failed")) })
                .boxed();
        }
        self.inner.list(prefix)
    }

    fn list_with_offset(
        &self,
        prefix: Option<&Path>,
        offset: &Path,
    ) -> BoxStream<'static, Result<ObjectMeta>> {
        let f = &self.faults;
        let at = prefix.map(|p| p.to_string()).unwrap_or_default();
        if f.down.load(Ordering::Relaxed) || f.roll(&f.list_error) {
            return futures::stream::once(async move { Err(injected("LIST", &at, "failed")) })
                .boxed();
        }
        self.inner.list_with_offset(prefix, offset)
    }

    async fn list_with_delimiter(&self, prefix: Option<&Path>) -> Result<ListResult> {
        let at = prefix.map(|p| p.to_string()).unwrap_or_default();
        self.faults.before("LIST", &at).await?;
        self.inner.list_with_delimiter(prefix).await
    }

    async fn copy_opts(&self, from: &Path, to: &Path, options: CopyOptions) -> Result<()> {
        self.faults.before("COPY", from.as_ref()).await?;
        self.inner.copy_opts(from, to, options).await
    }
}

/// Testing only: `weft serve --panic-in task[:n]` makes the named background task panic
/// the n-th time it passes its panic point (default 1), to prove that a failed task takes
/// the process down instead of leaving it acknowledging commits it cannot serve.
static PANIC_AT: std::sync::OnceLock<(String, AtomicU64)> = std::sync::OnceLock::new();

/// Arms the panic point `spec` (`task` or `task:n`). Once per process.
pub fn arm_panic(spec: &str) -> std::result::Result<(), String> {
    let (task, n) = match spec.split_once(':') {
        Some((t, n)) => (
            t,
            n.parse::<u64>()
                .map_err(|_| format!("bad count in {spec:?}"))?
                .max(1),
        ),
        None => (spec, 1),
    };
    PANIC_AT
        .set((task.to_string(), AtomicU64::new(n)))
        .map_err(|_| "a panic point is already armed".to_string())
}

/// A named point in a background task's loop where an armed panic fires.
pub fn panic_point(task: &str) {
    if let Some((t, left)) = PANIC_AT.get() {
        if t == task && left.fetch_sub(1, Ordering::SeqCst) == 1 {
            panic!("injected panic in background task {task} (--panic-in)");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use object_store::memory::InMemory;
    use object_store::ObjectStoreExt;

    #[tokio::test]
    async fn lost_acks_write_and_fail() {
        let faults = Faults::parse("lost_ack=1000").unwrap();
        let store = FaultyStore::new(Arc::new(InMemory::new()), faults.clone());
        let p = Path::from("a/b");
        assert!(store.put(&p, PutPayload::from_static(b"x")).await.is_err());
        faults.lost_ack.store(0, Ordering::Relaxed);
        let got = store.get(&p).await.unwrap().bytes().await.unwrap();
        assert_eq!(&got[..], b"x", "the PUT that reported failure did write");
        assert_eq!(faults.injected.load(Ordering::Relaxed), 1);
    }

    #[tokio::test]
    async fn conditional_puts_can_be_ignored() {
        let faults = Faults::parse("ignore_conditional_puts").unwrap();
        let store = FaultyStore::new(Arc::new(InMemory::new()), faults);
        let p = Path::from("a");
        let create = || PutOptions {
            mode: PutMode::Create,
            ..Default::default()
        };
        store
            .put_opts(&p, PutPayload::from_static(b"1"), create())
            .await
            .unwrap();
        store
            .put_opts(&p, PutPayload::from_static(b"2"), create())
            .await
            .expect("a store that ignores conditional puts overwrites");
    }

    #[test]
    fn specs_are_checked() {
        assert!(Faults::parse("put_error=2000").is_err());
        assert!(Faults::parse("nonsense=1").is_err());
        let f = Faults::parse("put_error=5, seed=9 ,down").unwrap();
        assert_eq!(f.put_error.load(Ordering::Relaxed), 5);
        assert!(f.down.load(Ordering::Relaxed));
    }
}
