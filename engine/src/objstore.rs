//! The durable object store every component writes through.
//!
//! `object_store` is the interface; this wrapper adds what weft needs on top of it:
//! - **create-if-absent** for every object weft writes (journal batches, segments,
//!   manifests), so a stale writer can never overwrite what another wrote;
//! - **real durability on local disk**: `object_store`'s local backend does not fsync, so
//!   for a local root weft writes the file itself: write a temporary file, fsync it,
//!   hard-link it into place (which fails if the name exists: the conditional put), then
//!   fsync the directory. On S3 a completed PUT is durable.

use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;

use bytes::Bytes;
use futures::TryStreamExt;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload};

use crate::error::{EngineError, EngineResult};

#[derive(Debug, Clone)]
pub struct DurableStore {
    pub inner: Arc<dyn ObjectStore>,
    /// Set when `inner` is a local filesystem rooted here.
    local_root: Option<PathBuf>,
    /// Describes the store for logs (`file:///...` or `s3://bucket/prefix`).
    pub url: String,
}

/// The outcome of a create-if-absent put.
#[derive(Debug, PartialEq, Eq)]
pub enum Created {
    Yes,
    AlreadyExists,
}

impl DurableStore {
    pub fn local(root: PathBuf) -> EngineResult<DurableStore> {
        std::fs::create_dir_all(&root).map_err(|e| {
            EngineError::Internal(format!(
                "cannot create data directory {}: {e}",
                root.display()
            ))
        })?;
        let root = root.canonicalize().map_err(|e| {
            EngineError::Internal(format!("cannot resolve {}: {e}", root.display()))
        })?;
        let fs = object_store::local::LocalFileSystem::new_with_prefix(&root).map_err(|e| {
            EngineError::Store {
                path: root.display().to_string(),
                source: e,
            }
        })?;
        Ok(DurableStore {
            inner: Arc::new(fs),
            url: format!("file://{}", root.display()),
            local_root: Some(root),
        })
    }

    pub fn remote(inner: Arc<dyn ObjectStore>, url: String) -> DurableStore {
        DurableStore {
            inner,
            local_root: None,
            url,
        }
    }

    /// The same store with every operation going through a [`crate::faults::FaultyStore`].
    /// A local store then writes through `object_store`'s local backend (no fsync): fault
    /// tests trade the durability of the local fast path for the injected faults.
    pub fn with_faults(self, faults: Arc<crate::faults::Faults>) -> EngineResult<DurableStore> {
        let inner: Arc<dyn ObjectStore> = match &self.local_root {
            Some(root) => Arc::new(
                object_store::local::LocalFileSystem::new_with_prefix(root).map_err(|e| {
                    EngineError::Store {
                        path: root.display().to_string(),
                        source: e,
                    }
                })?,
            ),
            None => self.inner.clone(),
        };
        Ok(DurableStore {
            inner: Arc::new(crate::faults::FaultyStore::new(inner, faults)),
            local_root: None,
            url: format!("{} (with injected faults)", self.url),
        })
    }

    /// Checks that the store honours create-if-absent: creates a probe object under
    /// `prefix` twice and expects the second to be refused. A store that silently
    /// overwrites instead would let two journal writers overwrite each other's commits.
    pub async fn honours_conditional_puts(&self, prefix: &Path) -> EngineResult<bool> {
        // A nonce to keep concurrent probes apart, not a timestamp: the wall clock is fine.
        #[allow(clippy::disallowed_methods)]
        let nonce = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        let probe = prefix
            .clone()
            .join(format!("probe-{}-{nonce}", std::process::id()));
        let first = self.put_create(&probe, Bytes::from_static(b"1")).await?;
        let second = self.put_create(&probe, Bytes::from_static(b"2")).await?;
        let _ = self.delete(&probe).await;
        Ok(first == Created::Yes && second == Created::AlreadyExists)
    }

    pub fn is_local(&self) -> bool {
        self.local_root.is_some()
    }

    /// The local file behind `path`, when the store is local.
    pub fn local_path(&self, path: &Path) -> Option<PathBuf> {
        self.local_root.as_ref().map(|r| r.join(path.as_ref()))
    }

    fn err(path: &Path, source: object_store::Error) -> EngineError {
        EngineError::Store {
            path: path.to_string(),
            source,
        }
    }

    /// Creates `path` with `data` if no object has that name; durable when it returns `Yes`.
    pub async fn put_create(&self, path: &Path, data: Bytes) -> EngineResult<Created> {
        if let Some(file) = self.local_path(path) {
            let p = path.clone();
            return tokio::task::spawn_blocking(move || local_put_create(&file, &data))
                .await
                .map_err(|e| EngineError::Internal(format!("put task failed: {e}")))?
                .map_err(|e| EngineError::Internal(format!("writing {p}: {e}")));
        }
        let opts = PutOptions {
            mode: PutMode::Create,
            ..Default::default()
        };
        match self
            .inner
            .put_opts(path, PutPayload::from(data), opts)
            .await
        {
            Ok(_) => Ok(Created::Yes),
            Err(object_store::Error::AlreadyExists { .. })
            | Err(object_store::Error::Precondition { .. }) => Ok(Created::AlreadyExists),
            Err(e) => Err(Self::err(path, e)),
        }
    }

    pub async fn get(&self, path: &Path) -> EngineResult<Bytes> {
        let r = self.inner.get(path).await.map_err(|e| Self::err(path, e))?;
        r.bytes().await.map_err(|e| Self::err(path, e))
    }

    /// The object at `path`, or `None` if there is none.
    pub async fn get_opt(&self, path: &Path) -> EngineResult<Option<Bytes>> {
        match self.inner.get(path).await {
            Ok(r) => Ok(Some(r.bytes().await.map_err(|e| Self::err(path, e))?)),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(Self::err(path, e)),
        }
    }

    /// The first `len` bytes of the object at `path` (fewer if it is shorter).
    pub async fn get_prefix(&self, path: &Path, len: u64) -> EngineResult<Bytes> {
        let opts = object_store::GetOptions {
            range: Some(object_store::GetRange::Bounded(0..len)),
            ..Default::default()
        };
        let r = self
            .inner
            .get_opts(path, opts)
            .await
            .map_err(|e| Self::err(path, e))?;
        r.bytes().await.map_err(|e| Self::err(path, e))
    }

    /// Lists object paths under `prefix` that sort after `offset`, sorted.
    pub async fn list_after(&self, prefix: &Path, offset: &Path) -> EngineResult<Vec<(Path, u64)>> {
        sorted(prefix, self.inner.list_with_offset(Some(prefix), offset)).await
    }

    /// Lists object paths under `prefix`, sorted.
    pub async fn list(&self, prefix: &Path) -> EngineResult<Vec<(Path, u64)>> {
        sorted(prefix, self.inner.list(Some(prefix))).await
    }

    pub async fn delete(&self, path: &Path) -> EngineResult<()> {
        match self.inner.delete(path).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(Self::err(path, e)),
        }
    }
}

/// Collects a listing of `prefix` as sorted `(path, size)` pairs.
async fn sorted(
    prefix: &Path,
    listing: futures::stream::BoxStream<'static, object_store::Result<object_store::ObjectMeta>>,
) -> EngineResult<Vec<(Path, u64)>> {
    let mut out: Vec<(Path, u64)> = listing
        .map_ok(|m| (m.location, m.size))
        .try_collect()
        .await
        .map_err(|e| DurableStore::err(prefix, e))?;
    out.sort();
    Ok(out)
}

fn local_put_create(file: &std::path::Path, data: &[u8]) -> std::io::Result<Created> {
    let dir = file
        .parent()
        .ok_or_else(|| std::io::Error::other("object path has no parent directory"))?;
    std::fs::create_dir_all(dir)?;
    let name = file
        .file_name()
        .and_then(|n| n.to_str())
        .ok_or_else(|| std::io::Error::other("bad object name"))?;
    let tmp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(data)?;
        f.sync_all()?;
    }
    let linked = std::fs::hard_link(&tmp, file);
    let _ = std::fs::remove_file(&tmp);
    match linked {
        Ok(()) => {
            std::fs::File::open(dir)?.sync_all()?;
            Ok(Created::Yes)
        }
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(Created::AlreadyExists),
        Err(e) => Err(e),
    }
}
