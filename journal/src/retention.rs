//! Journal retention: deleting objects and log files no reader will ever need again.
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
use crate::logfile::seal_name;
use crate::reader::{last_ts_bound, list_entries, list_journals};

/// Deletes, in every journal under `cluster`, the entries (objects and log files) whose
/// last record is at or below `checkpoint` (the lowest checkpoint of every storage range),
/// except epoch claims. Returns how many it deleted.
///
/// An entry's last timestamp is bounded by the next entry's first header (see
/// [`crate::reader::last_ts_bound`]). A log file goes before its seal, so that a writer
/// still holding it finds either the seal or, at its next new file, the claim.
pub async fn prune(
    store: &DurableStore,
    cluster: &str,
    checkpoint: Timestamp,
) -> Result<usize, JournalError> {
    let store_err = |e: weft_engine::EngineError| JournalError::Store(e.to_string());
    let head = |path: object_store::path::Path| async move {
        let bytes = store
            .get_prefix(&path, HEADER_LEN as u64)
            .await
            .map_err(store_err)?;
        decode_header(path.as_ref(), &bytes)
    };
    let mut deleted = 0;
    for j in list_journals(store, cluster).await? {
        let entries = list_entries(store, cluster, j).await?;
        // The newest entry always stays.
        for (i, entry) in entries
            .iter()
            .enumerate()
            .take(entries.len().saturating_sub(1))
        {
            let next = head(entries[i + 1].path.clone()).await?;
            if last_ts_bound(&next) > checkpoint {
                break;
            }
            if head(entry.path.clone()).await?.is_epoch_claim() {
                continue; // a fence: kept for ever
            }
            store.delete(&entry.path).await.map_err(store_err)?;
            if let Some(seal) = store
                .local_path(&entry.path)
                .map(|p| p.with_file_name(seal_name(entry.first)))
            {
                match std::fs::remove_file(&seal) {
                    Ok(()) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => {
                        return Err(JournalError::Store(format!(
                            "deleting {}: {e}",
                            seal.display()
                        )))
                    }
                }
            }
            tracing::debug!(
                journal = j,
                first = entry.first,
                checkpoint,
                "journal: retention deleted"
            );
            deleted += 1;
        }
    }
    Ok(deleted)
}
