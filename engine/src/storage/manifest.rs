//! The manifest: the list of live segments of a storage range and the checkpoint timestamp
//! up to which they hold every commit. Each version is a new object created with a
//! conditional put, so two writers can never both believe they wrote version N.
//!
//! Every manifest names the owner epoch of its writer (format 3). A writer creates version
//! N+1 only as the successor of the version N it last read or wrote, and only if N was
//! written at an epoch not above its own: create-if-absent on N+1 makes that a
//! compare-and-swap on the chain, and the epochs make the chain's owners only ever rise,
//! so a fenced owner can never again extend it (see `docs/decisions.md`, "Ownership").
//!
//! On disk a manifest is pretty-printed JSON followed by a last line `# crc32 <hex>` over
//! everything before it (formats 2 and 3; format 1 had no checksum line and is still
//! read; formats 1 and 2 had no epoch, read as epoch 0).

use serde::{Deserialize, Serialize};

use crate::time::Timestamp;

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SegmentMeta {
    /// Object name under the storage range's `segments/`.
    pub path: String,
    pub table_id: u64,
    /// Rows (versions, tombstones included).
    pub versions: u64,
    pub min_ts: Timestamp,
    pub max_ts: Timestamp,
    pub bytes: u64,
    /// Hex of the smallest and largest encoded key (empty in format 1: unknown).
    #[serde(default)]
    pub min_key: String,
    #[serde(default)]
    pub max_key: String,
    /// Distinct keys.
    #[serde(default)]
    pub keys: u64,
    #[serde(default)]
    pub tombstones: u64,
    /// CRC32 of the whole object (absent in format 1).
    #[serde(default)]
    pub crc32: Option<u32>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    pub format_version: u32,
    pub version: u64,
    /// The owner epoch of the process that wrote this version (0: before epochs).
    #[serde(default)]
    pub epoch: u64,
    /// Every commit with `commit_ts <= checkpoint_ts` is in the listed segments.
    pub checkpoint_ts: Timestamp,
    /// Compaction may have dropped versions that only reads below this timestamp could see:
    /// such reads are refused.
    #[serde(default)]
    pub horizon_ts: Timestamp,
    pub segments: Vec<SegmentMeta>,
}

pub const MANIFEST_FORMAT_VERSION: u32 = 3;

const CRC_PREFIX: &str = "# crc32 ";

impl Manifest {
    pub fn encode(&self) -> Vec<u8> {
        let mut body = serde_json::to_vec_pretty(self).expect("a manifest always serializes");
        body.push(b'\n');
        let crc = crc32fast::hash(&body);
        body.extend_from_slice(format!("{CRC_PREFIX}{crc:08x}\n").as_bytes());
        body
    }

    /// Decodes and verifies a manifest object.
    pub fn decode(data: &[u8]) -> Result<Manifest, String> {
        let text = std::str::from_utf8(data).map_err(|_| "not UTF-8".to_string())?;
        let trimmed = text.trim_end_matches('\n');
        let (body, crc) = match trimmed.rfind('\n') {
            Some(i) if trimmed[i + 1..].starts_with(CRC_PREFIX) => {
                (&text[..=i], Some(&trimmed[i + 1 + CRC_PREFIX.len()..]))
            }
            _ => (text, None),
        };
        let m: Manifest =
            serde_json::from_str(body).map_err(|e| format!("manifest is not valid: {e}"))?;
        match crc {
            Some(hex) => {
                let want = u32::from_str_radix(hex.trim(), 16)
                    .map_err(|_| format!("bad checksum line {hex:?}"))?;
                let got = crc32fast::hash(body.as_bytes());
                if got != want {
                    return Err(format!(
                        "checksum mismatch: crc32 {got:08x}, the object says {want:08x}"
                    ));
                }
            }
            None if m.format_version >= 2 => {
                return Err("the checksum line is missing".into());
            }
            None => {}
        }
        if m.format_version > MANIFEST_FORMAT_VERSION {
            return Err(format!(
                "manifest format {} is newer than this build reads",
                m.format_version
            ));
        }
        m.check()
            .map_err(|e| format!("manifest is inconsistent: {e}"))?;
        Ok(m)
    }

    /// Invariants of one manifest: no segment past the checkpoint, no segment listed
    /// twice, and the segments of one table hold disjoint timestamp ranges (so the newest
    /// segment with a version of a key has the key's newest version).
    pub fn check(&self) -> Result<(), String> {
        let mut seen = std::collections::HashSet::new();
        let mut by_table: std::collections::BTreeMap<u64, Vec<(Timestamp, Timestamp, &str)>> =
            Default::default();
        for s in &self.segments {
            if !seen.insert(s.path.as_str()) {
                return Err(format!("segment {} is listed twice", s.path));
            }
            if s.max_ts > self.checkpoint_ts {
                return Err(format!(
                    "segment {} holds commits past the checkpoint",
                    s.path
                ));
            }
            if s.min_ts > s.max_ts {
                return Err(format!("segment {} has an empty timestamp range", s.path));
            }
            by_table
                .entry(s.table_id)
                .or_default()
                .push((s.min_ts, s.max_ts, &s.path));
        }
        for ranges in by_table.values_mut() {
            ranges.sort();
            for w in ranges.windows(2) {
                if w[1].0 <= w[0].1 {
                    return Err(format!(
                        "segments {} and {} overlap in time",
                        w[0].2, w[1].2
                    ));
                }
            }
        }
        Ok(())
    }

    /// Checks the invariants a new manifest must hold relative to its predecessor. A failure
    /// is a bug in the caller: writing it could lose data on the next recovery.
    pub fn check_successor_of(&self, prev: &Manifest) -> Result<(), String> {
        if self.version != prev.version + 1 {
            return Err(format!(
                "version {} does not follow {}",
                self.version, prev.version
            ));
        }
        if self.epoch < prev.epoch {
            return Err(format!(
                "epoch {} would follow a version written at epoch {}: a fenced owner",
                self.epoch, prev.epoch
            ));
        }
        if self.checkpoint_ts < prev.checkpoint_ts {
            return Err(format!(
                "checkpoint moved backwards from {} to {}",
                prev.checkpoint_ts, self.checkpoint_ts
            ));
        }
        if self.horizon_ts < prev.horizon_ts {
            return Err(format!(
                "horizon moved backwards from {} to {}",
                prev.horizon_ts, self.horizon_ts
            ));
        }
        self.check()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seg(path: &str, table: u64, lo: u64, hi: u64) -> SegmentMeta {
        SegmentMeta {
            path: path.into(),
            table_id: table,
            versions: 1,
            min_ts: lo,
            max_ts: hi,
            bytes: 1,
            ..Default::default()
        }
    }

    #[test]
    fn round_trips_and_detects_damage() {
        let m = Manifest {
            format_version: MANIFEST_FORMAT_VERSION,
            version: 3,
            epoch: 2,
            checkpoint_ts: 100,
            horizon_ts: 5,
            segments: vec![seg("a", 1, 1, 10), seg("b", 1, 11, 20), seg("c", 2, 1, 20)],
        };
        let bytes = m.encode();
        assert_eq!(Manifest::decode(&bytes).unwrap(), m);
        // A digit changed inside the JSON still parses; the checksum catches it.
        let text = String::from_utf8(bytes)
            .unwrap()
            .replace("\"checkpoint_ts\": 100", "\"checkpoint_ts\": 900");
        let err = Manifest::decode(text.as_bytes()).unwrap_err();
        assert!(err.contains("checksum mismatch"), "{err}");
    }

    #[test]
    fn refuses_overlap_and_backwards_moves() {
        let mut m = Manifest {
            format_version: MANIFEST_FORMAT_VERSION,
            version: 1,
            epoch: 1,
            checkpoint_ts: 100,
            horizon_ts: 0,
            segments: vec![seg("a", 1, 1, 10), seg("b", 1, 10, 20)],
        };
        assert!(m.check().unwrap_err().contains("overlap"));
        m.segments[1].min_ts = 11;
        m.check().unwrap();
        let mut next = m.clone();
        next.version = 2;
        m.epoch = 2;
        next.epoch = 1;
        assert!(next.check_successor_of(&m).unwrap_err().contains("fenced"));
        next.epoch = 2;
        next.checkpoint_ts = 50;
        assert!(next
            .check_successor_of(&m)
            .unwrap_err()
            .contains("backwards"));
        next.checkpoint_ts = 100;
        next.segments.push(seg("c", 1, 101, 120));
        assert!(next
            .check_successor_of(&m)
            .unwrap_err()
            .contains("past the checkpoint"));
    }
}
