//! Catch-up from the object store: every journal's objects (and log files) read back, verified, merged into
//! the total order, and cut to the window a subscriber missed. Local journals are read
//! through the chosen [`ReadEngine`] (io_uring where available).

use std::sync::Arc;

use bytes::Bytes;
use weft_engine::objstore::DurableStore;
use weft_engine::{CommitRecord, Timestamp};
use weft_journal::reader::{check_follows, entries_of, list_journals, split_entry};

use crate::io::ReadEngine;
use crate::route::{CatchUpRead, CatchUpSource};

pub struct StoreCatchUp {
    pub store: DurableStore,
    pub cluster: String,
    pub engine: Arc<dyn ReadEngine>,
}

impl StoreCatchUp {
    /// Every record of every journal with `after < commit_ts <= upto`, in total order.
    pub async fn read_window(
        &self,
        after: Timestamp,
        upto: Timestamp,
    ) -> Result<Vec<Arc<CommitRecord>>, String> {
        let ids = list_journals(&self.store, &self.cluster)
            .await
            .map_err(|e| e.to_string())?;
        let mut per_journal = Vec::with_capacity(ids.len());
        for j in ids {
            let prefix = weft_journal::journal_prefix(&self.cluster, j);
            let listed = self.store.list(&prefix).await.map_err(|e| e.to_string())?;
            let entries = entries_of(listed);
            let datas: Vec<Bytes> = match entries
                .iter()
                .map(|e| self.store.local_path(&e.path))
                .collect::<Option<Vec<_>>>()
            {
                Some(files) => {
                    let engine = self.engine.clone();
                    tokio::task::spawn_blocking(move || engine.read_files(&files))
                        .await
                        .map_err(|e| e.to_string())?
                        .map_err(|e| format!("reading journal {j}: {e}"))?
                        .into_iter()
                        .map(Bytes::from)
                        .collect()
                }
                None => {
                    let mut out = Vec::with_capacity(entries.len());
                    for e in &entries {
                        out.push(self.store.get(&e.path).await.map_err(|e| e.to_string())?);
                    }
                    out
                }
            };
            let mut prev = None;
            let mut records = Vec::new();
            for (i, (entry, data)) in entries.iter().zip(datas).enumerate() {
                let end_before = entries.get(i + 1).map(|e| e.first);
                let objects =
                    split_entry(entry, j, &data, end_before).map_err(|e| e.to_string())?;
                for o in objects {
                    check_follows(&o.path, &o.header, prev.as_ref()).map_err(|e| e.to_string())?;
                    if o.header.last_ts > after && o.header.first_ts <= upto {
                        records.extend(o.records.into_iter().filter(|r| r.commit_ts <= upto));
                    }
                    prev = Some(o.header);
                }
            }
            per_journal.push(records);
        }
        Ok(crate::replay(per_journal, after))
    }
}

impl CatchUpSource for StoreCatchUp {
    fn read(&self, after: Timestamp, upto: Timestamp) -> CatchUpRead<'_> {
        Box::pin(self.read_window(after, upto))
    }
}
