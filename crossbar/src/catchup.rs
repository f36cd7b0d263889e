//! Catch-up from the object store: every journal's objects read back, verified, merged into
//! the total order, and cut to the window a subscriber missed. Local journals are read
//! through the chosen [`ReadEngine`] (io_uring where available).

use std::sync::Arc;

use bytes::Bytes;
use weft_engine::objstore::DurableStore;
use weft_engine::{CommitRecord, Timestamp};
use weft_journal::reader::{list_journals, verify_object};

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
            let mut listed = self.store.list(&prefix).await.map_err(|e| e.to_string())?;
            listed.retain(|(p, _)| p.as_ref().ends_with(".wj"));
            listed.sort_by(|a, b| a.0.as_ref().cmp(b.0.as_ref()));
            let datas: Vec<Bytes> = match listed
                .iter()
                .map(|(p, _)| self.store.local_path(p))
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
                    let mut out = Vec::with_capacity(listed.len());
                    for (p, _) in &listed {
                        out.push(self.store.get(p).await.map_err(|e| e.to_string())?);
                    }
                    out
                }
            };
            let mut prev = None;
            let mut records = Vec::new();
            for ((path, _), data) in listed.iter().zip(datas) {
                let (header, recs) = verify_object(path.as_ref(), j, &data, prev.as_ref())
                    .map_err(|e| e.to_string())?;
                if header.last_ts > after && header.first_ts <= upto {
                    records.extend(recs.into_iter().filter(|r| r.commit_ts <= upto));
                }
                prev = Some(header);
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
