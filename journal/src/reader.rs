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
use crate::logfile::{parse_entry_name, scan_log, seal_name};

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

/// One entry of a journal's directory: one object, or (on local disk) a log file of
/// objects. See [`crate::logfile`].
#[derive(Debug, Clone)]
pub struct Entry {
    pub path: object_store::path::Path,
    pub size: u64,
    /// The sequence of its first (or only) object.
    pub first: u64,
}

/// A journal's entries from a listing of its prefix, in sequence order.
pub fn entries_of(listed: Vec<(object_store::path::Path, u64)>) -> Vec<Entry> {
    let mut entries: Vec<Entry> = listed
        .into_iter()
        .filter_map(|(path, size)| {
            let first = parse_entry_name(path.filename()?)?;
            Some(Entry { path, size, first })
        })
        .collect();
    entries.sort_by_key(|e| e.first);
    entries
}

/// One journal's entries, in order.
pub async fn list_entries(
    store: &DurableStore,
    cluster: &str,
    journal_id: u32,
) -> Result<Vec<Entry>, JournalError> {
    let listed = store
        .list(&crate::journal_prefix(cluster, journal_id))
        .await
        .map_err(|e| JournalError::Store(e.to_string()))?;
    Ok(entries_of(listed))
}

/// The objects entry `entry` holds, read whole as `data`, each verified on its own (the
/// caller checks continuity with [`check_follows`]). `end_before` is the next entry's first
/// sequence: a log file's frames from there on do not count. The objects of a log file
/// after its first are named `<file>@<offset>`.
pub fn split_entry(
    entry: &Entry,
    journal_id: u32,
    data: &[u8],
    end_before: Option<u64>,
) -> Result<Vec<JournalObject>, JournalError> {
    let scan = scan_log(
        entry.path.as_ref(),
        journal_id,
        entry.first,
        data,
        end_before,
    )?;
    if scan.frames.is_empty() {
        // An entry is created with its first frame in place: anything else is damage.
        return Err(match decode_object(entry.path.as_ref(), data) {
            Err(e) => e,
            Ok(_) => JournalError::Corrupt {
                path: entry.path.to_string(),
                offset: 0,
                detail: "no object in it".into(),
            },
        });
    }
    Ok(scan
        .frames
        .into_iter()
        .map(|f| JournalObject {
            path: if f.offset == 0 {
                entry.path.to_string()
            } else {
                format!("{}@{}", entry.path, f.offset)
            },
            bytes: f.len as u64,
            header: f.header,
            records: f.records,
        })
        .collect())
}

/// Appends `objects` (split from one entry) to `out`, checking each follows the one before.
fn push_following(
    out: &mut Vec<JournalObject>,
    objects: Vec<JournalObject>,
) -> Result<(), JournalError> {
    for o in objects {
        check_follows(&o.path, &o.header, out.last().map(|p| &p.header))?;
        out.push(o);
    }
    Ok(())
}

/// Reads every object of one journal, in sequence order, verifying continuity.
pub async fn read_journal(
    store: &DurableStore,
    cluster: &str,
    journal_id: u32,
) -> Result<Vec<JournalObject>, JournalError> {
    let entries = list_entries(store, cluster, journal_id).await?;
    let mut out: Vec<JournalObject> = Vec::with_capacity(entries.len());
    for (i, entry) in entries.iter().enumerate() {
        let data = store
            .get(&entry.path)
            .await
            .map_err(|e| JournalError::Store(e.to_string()))?;
        let end_before = entries.get(i + 1).map(|e| e.first);
        push_following(&mut out, split_entry(entry, journal_id, &data, end_before)?)?;
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
    check_follows(path, &header, prev)?;
    Ok((header, records))
}

/// Checks that the object `header` (read from `path`) may follow `prev`, the journal's
/// previous object present: the next sequence (or any later one after an epoch claim,
/// which retention keeps while deleting what follows it), timestamps that go forward, and
/// epochs that never go back.
pub fn check_follows(
    path: &str,
    header: &Header,
    prev: Option<&Header>,
) -> Result<(), JournalError> {
    let corrupt = |detail: String| JournalError::Corrupt {
        path: path.to_string(),
        offset: 0,
        detail,
    };
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
    Ok(())
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
        let found = match self.store.get_opt(&path).await.map_err(store_err)? {
            Some(data) => {
                let entry = Entry {
                    path: path.clone(),
                    size: data.len() as u64,
                    first: self.next_sequence,
                };
                split_entry(&entry, self.journal_id, &data, None)?
                    .into_iter()
                    .next()
            }
            None => self.frame_in_log_or_hole(&path).await?,
        };
        let Some(object) = found else {
            return Ok(None);
        };
        check_follows(&object.path, &object.header, self.prev.as_ref())?;
        self.next_sequence += 1;
        self.prev = Some(object.header.clone());
        Ok(Some(object))
    }

    /// The object at the next sequence when no object of that name exists: a frame of a
    /// log file, `None` when it is not written yet (or not decided: its file is sealed and
    /// the claim that decides it is not there yet), or an error for a hole.
    async fn frame_in_log_or_hole(
        &self,
        path: &object_store::path::Path,
    ) -> Result<Option<JournalObject>, JournalError> {
        let store_err = |e: weft_engine::EngineError| JournalError::Store(e.to_string());
        let seq = self.next_sequence;
        let entries = list_entries(&self.store, &self.cluster, self.journal_id).await?;
        let holder = entries.iter().rposition(|e| e.first <= seq);
        if let Some(i) = holder {
            let entry = &entries[i];
            let end_before = entries.get(i + 1).map(|e| e.first);
            if end_before.is_none_or(|e| seq < e) {
                let data = self.store.get(&entry.path).await.map_err(store_err)?;
                let frame = split_entry(entry, self.journal_id, &data, end_before)?
                    .into_iter()
                    .find(|o| o.header.sequence == seq);
                if let Some(frame) = frame {
                    // Read before looking for the seal: a frame complete before the file was
                    // sealed is read by whoever sealed it, so it counts.
                    let sealed = self
                        .store
                        .local_path(&entry.path)
                        .map(|p| p.with_file_name(seal_name(entry.first)).exists())
                        .unwrap_or(false);
                    if end_before.is_none() && sealed {
                        return Ok(None);
                    }
                    return Ok(Some(frame));
                }
            }
        }
        if let Some(later) = entries.iter().find(|e| e.first > seq) {
            return Err(JournalError::Corrupt {
                path: path.to_string(),
                offset: 0,
                detail: format!("missing object: {} exists after it", later.path),
            });
        }
        Ok(None)
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
    let mut listed_by_journal: std::collections::BTreeMap<
        u32,
        Vec<(object_store::path::Path, u64)>,
    > = Default::default();
    for (path, size) in store.list(&prefix).await.map_err(store_err)? {
        let parts: Vec<_> = path.parts().collect();
        let Some(id) = parts.get(3).and_then(|s| s.as_ref().parse::<u32>().ok()) else {
            continue;
        };
        listed_by_journal.entry(id).or_default().push((path, size));
    }
    let by_journal: std::collections::BTreeMap<u32, Vec<Entry>> = listed_by_journal
        .into_iter()
        .map(|(id, listed)| (id, entries_of(listed)))
        .collect();
    // Where each journal's needed entries start (binary searches run concurrently).
    let searches = by_journal.iter().map(|(&id, entries)| async move {
        first_needed(store, id, entries, checkpoint)
            .await
            .map(|start| (id, start))
    });
    let starts: Vec<(u32, usize)> = futures::future::try_join_all(searches).await?;
    let wanted: Vec<(u32, Entry, Option<u64>)> = starts
        .iter()
        .flat_map(|&(id, start)| {
            let entries = &by_journal[&id];
            (start..entries.len())
                .map(move |i| (id, entries[i].clone(), entries.get(i + 1).map(|e| e.first)))
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
    let mut fetched = futures::stream::iter(wanted.into_iter().map(
        |(id, entry, end_before)| async move {
            let data = store.get(&entry.path).await;
            (id, entry, end_before, data)
        },
    ))
    .buffered(gets_max.max(1));
    while let Some((id, entry, end_before, data)) = fetched.next().await {
        let data = data.map_err(store_err)?;
        let journal = out
            .get_mut(&id)
            .expect("every fetched journal has an entry");
        push_following(
            &mut journal.objects,
            split_entry(&entry, id, &data, end_before)?,
        )?;
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

/// The index of the first entry in `entries` (one journal's, in order) that may hold a
/// record above `checkpoint`; the newest entry's index when none does. An entry's last
/// timestamp is bounded by the next entry's first header: an epoch claim carries the
/// journal's last timestamp, and a batch starts above it.
async fn first_needed(
    store: &DurableStore,
    journal_id: u32,
    entries: &[Entry],
    checkpoint: Timestamp,
) -> Result<usize, JournalError> {
    if entries.is_empty() {
        return Ok(0);
    }
    let (mut lo, mut hi) = (0usize, entries.len() - 1);
    // Invariant: every entry before `lo` is not needed; the entry at `hi` is needed or
    // is the newest.
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        let probe = &entries[mid + 1].path;
        let needed = match store
            .get_prefix(probe, crate::format::HEADER_LEN as u64)
            .await
        {
            Ok(head) => {
                let h = crate::format::decode_header(probe.as_ref(), &head)?;
                if h.journal_id != journal_id {
                    return Err(JournalError::Corrupt {
                        path: probe.to_string(),
                        offset: 0,
                        detail: format!("belongs to journal {}", h.journal_id),
                    });
                }
                last_ts_bound(&h) > checkpoint
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

/// The highest timestamp the entry before the one headed by `next` can hold.
pub fn last_ts_bound(next: &Header) -> Timestamp {
    if next.is_epoch_claim() {
        next.last_ts
    } else {
        next.first_ts.saturating_sub(1)
    }
}
