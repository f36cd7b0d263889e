//! Reading journals back: recovery and inspection.
//!
//! Objects are read in sequence order and each is fully verified before any of its records
//! is returned. A gap in the sequence, a timestamp that does not increase across objects,
//! or a corrupt object is an error naming the object: never skipped, never half-applied.

use std::sync::Arc;

use weft_engine::objstore::DurableStore;
use weft_engine::{CommitRecord, Timestamp};

use crate::error::JournalError;
use crate::format::{decode_object, Header};

/// One journal object, read and verified.
#[derive(Debug, Clone)]
pub struct JournalObject {
    pub path: String,
    pub bytes: u64,
    pub header: Header,
    pub records: Vec<Arc<CommitRecord>>,
}

/// The journal ids present under a cluster.
pub async fn list_journals(store: &DurableStore, cluster: &str) -> Result<Vec<u32>, JournalError> {
    let prefix = object_store::path::Path::from(format!("clusters/{cluster}/journal"));
    let objects = store
        .list(&prefix)
        .await
        .map_err(|e| JournalError::Store(e.to_string()))?;
    let mut ids: Vec<u32> = objects
        .iter()
        .filter_map(|(p, _)| {
            let parts: Vec<_> = p.parts().collect();
            parts.get(3).and_then(|s| s.as_ref().parse().ok())
        })
        .collect();
    ids.sort();
    ids.dedup();
    Ok(ids)
}

/// Reads every object of one journal, in sequence order, verifying continuity.
pub async fn read_journal(
    store: &DurableStore,
    cluster: &str,
    journal_id: u32,
) -> Result<Vec<JournalObject>, JournalError> {
    let prefix = crate::journal_prefix(cluster, journal_id);
    let listed = store
        .list(&prefix)
        .await
        .map_err(|e| JournalError::Store(e.to_string()))?;
    let mut out: Vec<JournalObject> = Vec::with_capacity(listed.len());
    for (path, size) in listed {
        let name = path.filename().unwrap_or_default();
        if !name.ends_with(".wj") {
            continue; // temporary files of an interrupted local write
        }
        let data = store
            .get(&path)
            .await
            .map_err(|e| JournalError::Store(e.to_string()))?;
        let (header, records) = verify_object(
            path.as_ref(),
            journal_id,
            &data,
            out.last().map(|o| &o.header),
        )?;
        out.push(JournalObject {
            path: path.to_string(),
            bytes: size,
            header,
            records,
        });
    }
    Ok(out)
}

/// Decodes and verifies one object of `journal_id` read from `path`, which must follow
/// `prev` (the journal's previous object present) without a gap, unless `prev` is an epoch
/// claim, which retention keeps while deleting what follows it: its sequence, name,
/// timestamps and epoch are checked along with every checksum.
pub fn verify_object(
    path: &str,
    journal_id: u32,
    data: &[u8],
    prev: Option<&Header>,
) -> Result<(Header, Vec<Arc<CommitRecord>>), JournalError> {
    let (header, records) = decode_object(path, data)?;
    let corrupt = |detail: String| JournalError::Corrupt {
        path: path.to_string(),
        offset: 0,
        detail,
    };
    if header.journal_id != journal_id {
        return Err(corrupt(format!("belongs to journal {}", header.journal_id)));
    }
    let name = path.rsplit('/').next().unwrap_or(path);
    let expected_name = format!("{:020}.wj", header.sequence);
    if name != expected_name {
        return Err(corrupt(format!(
            "holds sequence {} but is named {name}",
            header.sequence
        )));
    }
    if let Some(prev) = prev {
        // Retention keeps epoch claims (fences) and deletes what follows them, so after a
        // claim the next object present may be any later one; every other check holds.
        let gap_allowed = prev.is_epoch_claim() && header.sequence > prev.sequence;
        if header.sequence != prev.sequence + 1 && !gap_allowed {
            return Err(corrupt(format!(
                "sequence gap: {} follows {}",
                header.sequence, prev.sequence
            )));
        }
        if header.record_count == 0 {
            if header.last_ts < prev.last_ts {
                return Err(corrupt(format!(
                    "epoch claim carries timestamp {} back before {}",
                    header.last_ts, prev.last_ts
                )));
            }
            if header.epoch <= prev.epoch {
                return Err(corrupt(format!(
                    "epoch claim {} does not raise epoch {}",
                    header.epoch, prev.epoch
                )));
            }
        } else if header.first_ts <= prev.last_ts {
            return Err(corrupt(format!(
                "timestamps go backwards: first {} after {}",
                header.first_ts, prev.last_ts
            )));
        }
        if header.epoch < prev.epoch {
            return Err(corrupt(format!(
                "epoch {} after {}",
                header.epoch, prev.epoch
            )));
        }
    }
    Ok((header, records))
}

/// The largest commit timestamp in a journal's objects.
pub fn max_ts(objects: &[JournalObject]) -> Timestamp {
    objects.last().map(|o| o.header.last_ts).unwrap_or(0)
}

/// Follows one journal from any sequence: each [`Tailer::next`] fetches the object at the
/// next sequence by name (one GET, no listing), verifies it against the one before, and
/// returns it; `None` means it does not exist yet. A missing object with later objects
/// present (a hole) is an error naming the missing sequence, never skipped.
pub struct Tailer {
    store: DurableStore,
    cluster: String,
    journal_id: u32,
    next_sequence: u64,
    prev: Option<Header>,
}

impl Tailer {
    /// Starts at `from_sequence`. `prev` is the header of the object before it, when known,
    /// so that continuity is checked from the first object on.
    pub fn new(
        store: DurableStore,
        cluster: &str,
        journal_id: u32,
        from_sequence: u64,
        prev: Option<Header>,
    ) -> Tailer {
        Tailer {
            store,
            cluster: cluster.to_string(),
            journal_id,
            next_sequence: from_sequence,
            prev,
        }
    }

    /// The sequence the next object will have.
    pub fn next_sequence(&self) -> u64 {
        self.next_sequence
    }

    pub async fn next(&mut self) -> Result<Option<JournalObject>, JournalError> {
        let path = crate::object_path(&self.cluster, self.journal_id, self.next_sequence);
        let store_err = |e: weft_engine::EngineError| JournalError::Store(e.to_string());
        let Some(data) = self.store.get_opt(&path).await.map_err(store_err)? else {
            // Not written yet, or missing: a later object means a hole.
            let later = self
                .store
                .list_after(
                    &crate::journal_prefix(&self.cluster, self.journal_id),
                    &path,
                )
                .await
                .map_err(store_err)?;
            if let Some((p, _)) = later.iter().find(|(p, _)| p.as_ref().ends_with(".wj")) {
                return Err(JournalError::Corrupt {
                    path: path.to_string(),
                    offset: 0,
                    detail: format!("missing object: {p} exists after it"),
                });
            }
            return Ok(None);
        };
        let (header, records) =
            verify_object(path.as_ref(), self.journal_id, &data, self.prev.as_ref())?;
        self.next_sequence += 1;
        self.prev = Some(header.clone());
        Ok(Some(JournalObject {
            path: path.to_string(),
            bytes: data.len() as u64,
            header,
            records,
        }))
    }
}

/// What recovery read of one journal.
#[derive(Debug, Clone, Default)]
pub struct RecoveredJournal {
    pub journal_id: u32,
    /// The objects from the first one holding a record past the checkpoint (or the
    /// newest, when none does) to the newest, verified and in order.
    pub objects: Vec<JournalObject>,
    /// Objects left unread: every record in them is at or below the checkpoint.
    pub skipped: usize,
}

impl RecoveredJournal {
    /// The newest object's header: where the next writer continues.
    pub fn last_header(&self) -> Option<Header> {
        self.objects.last().map(|o| o.header.clone())
    }
}

/// Reads what recovery needs of every journal under `cluster`: the objects that may hold
/// a record above `checkpoint`, fetched at most `gets_max` at a time and verified in
/// sequence order as they arrive.
///
/// The first needed object is found by a binary search over headers (a journal's last
/// timestamps never decrease with its sequence), so objects that retention has not yet
/// deleted cost nothing. An object that vanishes during the search was deleted by
/// retention, which deletes only objects at or below a checkpoint of the current owner
/// chain, itself at or below `checkpoint`: it counts as not needed. From the first needed
/// object on, a missing or damaged object is an error naming it.
pub async fn read_for_recovery(
    store: &DurableStore,
    cluster: &str,
    checkpoint: Timestamp,
    gets_max: usize,
) -> Result<Vec<RecoveredJournal>, JournalError> {
    use futures::StreamExt;
    let store_err = |e: weft_engine::EngineError| JournalError::Store(e.to_string());
    let prefix = object_store::path::Path::from(format!("clusters/{cluster}/journal"));
    let mut by_journal: std::collections::BTreeMap<u32, Vec<(object_store::path::Path, u64)>> =
        Default::default();
    for (path, size) in store.list(&prefix).await.map_err(store_err)? {
        let parts: Vec<_> = path.parts().collect();
        let Some(id) = parts.get(3).and_then(|s| s.as_ref().parse::<u32>().ok()) else {
            continue;
        };
        let entry = by_journal.entry(id).or_default();
        if path.filename().unwrap_or_default().ends_with(".wj") {
            entry.push((path, size));
        }
    }
    // Where each journal's needed objects start (binary searches run concurrently).
    let searches = by_journal.iter().map(|(&id, listed)| async move {
        first_needed(store, id, listed, checkpoint)
            .await
            .map(|start| (id, start))
    });
    let starts: Vec<(u32, usize)> = futures::future::try_join_all(searches).await?;
    let wanted: Vec<(u32, object_store::path::Path, u64)> = starts
        .iter()
        .flat_map(|&(id, start)| {
            by_journal[&id][start..]
                .iter()
                .map(move |(p, size)| (id, p.clone(), *size))
        })
        .collect();
    let mut out: std::collections::BTreeMap<u32, RecoveredJournal> = starts
        .iter()
        .map(|&(id, start)| {
            (
                id,
                RecoveredJournal {
                    journal_id: id,
                    objects: Vec::new(),
                    skipped: start,
                },
            )
        })
        .collect();
    let mut fetched =
        futures::stream::iter(wanted.into_iter().map(|(id, path, size)| async move {
            let data = store.get(&path).await;
            (id, path, size, data)
        }))
        .buffered(gets_max.max(1));
    while let Some((id, path, size, data)) = fetched.next().await {
        let data = data.map_err(store_err)?;
        let journal = out
            .get_mut(&id)
            .expect("every fetched journal has an entry");
        let (header, records) = verify_object(
            path.as_ref(),
            id,
            &data,
            journal.objects.last().map(|o| &o.header),
        )?;
        journal.objects.push(JournalObject {
            path: path.to_string(),
            bytes: size,
            header,
            records,
        });
    }
    for j in out.values() {
        tracing::debug!(
            journal = j.journal_id,
            skipped = j.skipped,
            first = j.objects.first().map(|o| o.header.sequence),
            last = j.objects.last().map(|o| o.header.sequence),
            last_ts = j.objects.last().map(|o| o.header.last_ts),
            "journal: read for recovery"
        );
    }
    Ok(out.into_values().collect())
}

/// The index of the first object in `listed` (one journal's objects, in sequence order)
/// whose last record lies above `checkpoint`; the newest object's index when none does.
async fn first_needed(
    store: &DurableStore,
    journal_id: u32,
    listed: &[(object_store::path::Path, u64)],
    checkpoint: Timestamp,
) -> Result<usize, JournalError> {
    if listed.is_empty() {
        return Ok(0);
    }
    let (mut lo, mut hi) = (0usize, listed.len() - 1);
    // Invariant: every object before `lo` is not needed; the object at `hi` is needed or
    // is the newest.
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        let path = &listed[mid].0;
        let needed = match store
            .get_prefix(path, crate::format::HEADER_LEN as u64)
            .await
        {
            Ok(head) => {
                let h = crate::format::decode_header(path.as_ref(), &head)?;
                if h.journal_id != journal_id {
                    return Err(JournalError::Corrupt {
                        path: path.to_string(),
                        offset: 0,
                        detail: format!("belongs to journal {}", h.journal_id),
                    });
                }
                h.last_ts > checkpoint
            }
            Err(weft_engine::EngineError::Store {
                source: object_store::Error::NotFound { .. },
                ..
            }) => false, // deleted by retention: at or below the checkpoint
            Err(e) => return Err(JournalError::Store(e.to_string())),
        };
        if needed {
            hi = mid;
        } else {
            lo = mid + 1;
        }
    }
    Ok(lo)
}
