//! Journal retention: deleting objects no reader will ever need again.
//!
//! A storage range's checkpoint says every record at or below it is in its segments, so
//! recovery replays only what lies above it. An object whose records all lie at or below
//! the lowest checkpoint of every range is therefore never read again, and is deleted.
//! Deletion goes oldest first and stops at the first object still needed, so what remains
//! is a contiguous run of sequences, below which only epoch claims remain. Each journal's
//! newest object is kept: it tells the next writer the journal's last sequence, epoch and
//! timestamp.
//!
//! **Epoch claims are never deleted.** A claim is the fence of the writer before it: that
//! writer's next conditional put targets exactly the claim's sequence (it writes its
//! sequences in order, and the claim took the first one it had not written). A writer
//! paused in the middle of that put (SIGSTOP, a stalled disk, a request stuck in the
//! network) may land it at any later time; if the claim had been deleted, the put would
//! succeed and the paused writer would acknowledge a commit that no reader ever replays.
//! One claim object (72 bytes) per journal per process start is the price; readers allow
//! the gap that retention leaves after one (see [`crate::reader::verify_object`]).

use weft_engine::objstore::DurableStore;
use weft_engine::Timestamp;

use crate::error::JournalError;
use crate::format::{decode_header, HEADER_LEN};
use crate::reader::list_journals;

/// Deletes, in every journal under `cluster`, the objects whose last record is at or below
/// `checkpoint` (the lowest checkpoint of every storage range), except epoch claims.
/// Returns how many it deleted.
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
            if header.is_epoch_claim() {
                continue; // a fence: kept for ever
            }
            store.delete(&path).await.map_err(store_err)?;
            tracing::debug!(
                journal = j,
                sequence = header.sequence,
                last_ts = header.last_ts,
                checkpoint,
                "journal: retention deleted"
            );
            deleted += 1;
        }
    }
    Ok(deleted)
}
