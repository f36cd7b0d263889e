//! The object store a node runs on: a local directory or an `s3://bucket/prefix` URL,
//! optionally behind the fault-injecting wrapper (testing only).

use std::sync::Arc;

use anyhow::{bail, Context};
use weft_engine::objstore::DurableStore;

/// The store at the local directory `data`, or at an `s3://bucket/prefix` URL configured
/// by the AWS_* variables.
pub fn open_store_at(data: &std::path::Path, url: Option<&str>) -> anyhow::Result<DurableStore> {
    match url {
        None => Ok(DurableStore::local(data.to_path_buf())?),
        Some(url) => {
            let Some(rest) = url.strip_prefix("s3://") else {
                bail!("--store must be an s3:// URL, got {url}");
            };
            let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
            let s3 = object_store::aws::AmazonS3Builder::from_env()
                .with_bucket_name(bucket)
                .build()
                .with_context(|| format!("configuring S3 store {url}"))?;
            let inner: Arc<dyn object_store::ObjectStore> = if prefix.is_empty() {
                Arc::new(s3)
            } else {
                Arc::new(object_store::prefix::PrefixStore::new(
                    s3,
                    prefix.trim_end_matches('/'),
                ))
            };
            Ok(DurableStore::remote(inner, url.to_string()))
        }
    }
}

/// `store` behind injected faults, as `--inject-faults <spec>` asks (engine/src/faults.rs).
pub fn with_fault_spec(store: DurableStore, spec: &str) -> anyhow::Result<DurableStore> {
    let faults = weft_engine::faults::Faults::parse(spec)
        .map_err(|e| anyhow::anyhow!("--inject-faults: {e}"))?;
    tracing::warn!(spec = %spec, "object store: injecting faults (testing only)");
    Ok(store.with_faults(faults)?)
}
