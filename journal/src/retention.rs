//! Journal retention: deleting objects no reader will ever need again.
//!
//! A storage range's checkpoint says every record at or below it is in its segments, so
//! recovery replays only what lies above it. An object whose records all lie at or below
//! the lowest checkpoint of every range is therefore never read again, and is deleted.
//! Deletion goes oldest first and stops at the first object still needed, so what remains
//! is always a contiguous run of sequences. Each journal's newest object is kept: it tells
//! the next writer the journal's last sequence, epoch and timestamp.

use weft_engine::objstore::DurableStore;
use weft_engine::Timestamp;

use crate::error::JournalError;
use crate::format::{decode_header, HEADER_LEN};
use crate::reader::list_journals;

/// Deletes, in every journal under `cluster`, the objects whose last record is at or below
/// `checkpoint` (the lowest checkpoint of every storage range). Returns how many it deleted.
pub async fn prune(
    store: &DurableStore,
    cluster: &str,
    checkpoint: Timestamp,
) -> Result<usize, JournalError> {
    let store_err = |e: weft_engine::EngineError| JournalError::Store(e.to_string());
    let mut deleted = 0;
    for j in list_journals(store, cluster).await? {
        let mut objects = store
            .list(&crate::journal_prefix(cluster, j))
            .await
            .map_err(store_err)?;
        objects.retain(|(p, _)| p.as_ref().ends_with(".wj"));
        objects.pop(); // the newest object always stays
        for (path, _) in objects {
            let head = store
                .get_prefix(&path, HEADER_LEN as u64)
                .await
                .map_err(store_err)?;
            let header = decode_header(path.as_ref(), &head)?;
            if header.last_ts > checkpoint {
                break;
            }
            store.delete(&path).await.map_err(store_err)?;
            deleted += 1;
        }
    }
    Ok(deleted)
}
