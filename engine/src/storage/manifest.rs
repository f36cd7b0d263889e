//! The manifest: the list of live segments of a storage range and the checkpoint timestamp
//! up to which they hold every commit. Each version is a new object created with a
//! conditional put, so two writers can never both believe they wrote version N.

use serde::{Deserialize, Serialize};

use crate::time::Timestamp;

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SegmentMeta {
    /// Path relative to the storage range's root.
    pub path: String,
    pub table_id: u64,
    pub versions: u64,
    pub min_ts: Timestamp,
    pub max_ts: Timestamp,
    pub bytes: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    pub format_version: u32,
    pub version: u64,
    /// Every commit with `commit_ts <= checkpoint_ts` is in the listed segments.
    pub checkpoint_ts: Timestamp,
    pub segments: Vec<SegmentMeta>,
}

pub const MANIFEST_FORMAT_VERSION: u32 = 1;

impl Manifest {
    /// Checks the invariants a new manifest must hold relative to its predecessor. A failure
    /// is a bug in the caller: writing it could lose data on the next recovery.
    pub fn check_successor_of(&self, prev: &Manifest) -> Result<(), String> {
        if self.version != prev.version + 1 {
            return Err(format!(
                "version {} does not follow {}",
                self.version, prev.version
            ));
        }
        if self.checkpoint_ts < prev.checkpoint_ts {
            return Err(format!(
                "checkpoint moved backwards from {} to {}",
                prev.checkpoint_ts, self.checkpoint_ts
            ));
        }
        for s in &self.segments {
            if s.max_ts > self.checkpoint_ts {
                return Err(format!(
                    "segment {} holds commits past the checkpoint",
                    s.path
                ));
            }
        }
        Ok(())
    }
}
