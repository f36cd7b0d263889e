//! Human-readable reports of segments and manifests, for `weft inspect` and for the golden
//! files under `testdata/segments/` (whose expected decoded form is exactly this text).

use std::collections::BTreeMap;
use std::fmt::Write;

use bytes::Bytes;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::file::statistics::Statistics;

use crate::error::{EngineError, EngineResult};
use crate::storage::manifest::Manifest;
use crate::storage::segment::{decode, hex};
use crate::time::Timestamp;

/// A timestamp as nanoseconds and as UTC time.
pub fn ts_text(ts: Timestamp) -> String {
    let t = chrono::DateTime::from_timestamp_nanos(ts as i64);
    format!("{ts} ({})", t.format("%Y-%m-%d %H:%M:%S%.9f UTC"))
}

/// The report of one segment file: metadata, columns, row groups with their key and
/// timestamp statistics, versions per key, tombstones; with `rows`, every version.
pub fn segment_report(name: &str, data: Bytes, rows: bool) -> EngineResult<String> {
    let corrupt = |detail: String| EngineError::Corrupt {
        path: name.to_string(),
        detail,
    };
    let builder = ParquetRecordBatchReaderBuilder::try_new(data.clone())
        .map_err(|e| corrupt(format!("not a readable Parquet file: {e}")))?;
    let md = builder.metadata().clone();
    let schema = builder.schema().clone();
    let decoded = decode(name, data)?;
    let mut out = String::new();
    let kv: BTreeMap<String, String> = md
        .file_metadata()
        .key_value_metadata()
        .map(|kvs| {
            kvs.iter()
                .filter(|kv| kv.key.starts_with("weft."))
                .map(|kv| (kv.key.clone(), kv.value.clone().unwrap_or_default()))
                .collect()
        })
        .unwrap_or_default();
    writeln!(out, "segment {name}").ok();
    for (k, v) in &kv {
        writeln!(out, "  {k} = {v}").ok();
    }
    let versions = &decoded.versions;
    let tombstones = versions.iter().filter(|(_, v)| v.row.is_none()).count();
    let mut per_key: BTreeMap<usize, usize> = BTreeMap::new();
    let mut i = 0;
    while i < versions.len() {
        let mut j = i;
        while j < versions.len() && versions[j].0 == versions[i].0 {
            j += 1;
        }
        *per_key.entry(j - i).or_default() += 1;
        i = j;
    }
    let keys: usize = per_key.values().sum();
    writeln!(
        out,
        "versions {} keys {} tombstones {}",
        versions.len(),
        keys,
        tombstones
    )
    .ok();
    if let (Some(first), Some(last)) = (versions.first(), versions.last()) {
        writeln!(out, "key range {} .. {}", hex(&first.0), hex(&last.0)).ok();
        let lo = versions.iter().map(|(_, v)| v.ts).min().unwrap_or(0);
        let hi = versions.iter().map(|(_, v)| v.ts).max().unwrap_or(0);
        writeln!(out, "ts range {} .. {}", ts_text(lo), ts_text(hi)).ok();
    }
    writeln!(out, "versions per key:").ok();
    for (n, count) in &per_key {
        writeln!(out, "  {n}: {count} key(s)").ok();
    }
    writeln!(out, "columns:").ok();
    for (c, f) in schema.fields().iter().enumerate() {
        let role = match c {
            0 => " (system: encoded primary key, memcomparable)",
            1 => " (system: commit timestamp, ns since the Unix epoch)",
            2 => " (system: 0 put, 1 delete)",
            _ => "",
        };
        writeln!(out, "  {} {}{}", f.name(), f.data_type(), role).ok();
    }
    writeln!(out, "row groups: {}", md.num_row_groups()).ok();
    for rg in 0..md.num_row_groups() {
        let r = md.row_group(rg);
        let range = |c: usize| -> String {
            match r.column(c).statistics() {
                Some(Statistics::ByteArray(s)) => format!(
                    "{} .. {}",
                    s.min_opt().map(|v| hex(v.data())).unwrap_or_default(),
                    s.max_opt().map(|v| hex(v.data())).unwrap_or_default()
                ),
                Some(Statistics::Int64(s)) => format!(
                    "{} .. {}",
                    s.min_opt().map(|v| *v as u64).unwrap_or_default(),
                    s.max_opt().map(|v| *v as u64).unwrap_or_default()
                ),
                _ => "-".into(),
            }
        };
        writeln!(
            out,
            "  {rg}: rows {} compressed bytes {} keys {} ts {}",
            r.num_rows(),
            r.compressed_size(),
            range(0),
            range(1)
        )
        .ok();
    }
    if rows {
        writeln!(out, "rows (key, ts, op, columns...):").ok();
        for (k, v) in versions {
            let values = match &v.row {
                None => "DELETE".to_string(),
                Some(r) => r
                    .iter()
                    .map(|s| {
                        if s.is_null() {
                            "NULL".to_string()
                        } else {
                            s.to_string()
                        }
                    })
                    .collect::<Vec<_>>()
                    .join(", "),
            };
            let op = if v.row.is_some() { "put" } else { "delete" };
            writeln!(out, "  {} {} {op} {values}", hex(k), v.ts).ok();
        }
    }
    Ok(out)
}

/// The report of a manifest: version, checkpoint, horizon, and one line per live segment.
pub fn manifest_report(path: &str, m: &Manifest) -> String {
    let mut out = String::new();
    writeln!(out, "manifest {path}").ok();
    if m.format_version >= 3 {
        writeln!(
            out,
            "  format {} version {} epoch {}",
            m.format_version, m.version, m.epoch
        )
        .ok();
    } else {
        writeln!(out, "  format {} version {}", m.format_version, m.version).ok();
    }
    writeln!(out, "  checkpoint {}", ts_text(m.checkpoint_ts)).ok();
    writeln!(out, "  horizon {}", ts_text(m.horizon_ts)).ok();
    writeln!(out, "  segments {}", m.segments.len()).ok();
    for s in &m.segments {
        writeln!(
            out,
            "  {} table {} versions {} keys {} tombstones {} bytes {} crc32 {} ts {} .. {} keys {} .. {}",
            s.path,
            s.table_id,
            s.versions,
            s.keys,
            s.tombstones,
            s.bytes,
            s.crc32.map(|c| format!("{c:08x}")).unwrap_or_else(|| "-".into()),
            s.min_ts,
            s.max_ts,
            if s.min_key.is_empty() { "-" } else { &s.min_key },
            if s.max_key.is_empty() { "-" } else { &s.max_key },
        )
        .ok();
    }
    out
}
