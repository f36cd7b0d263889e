//! Golden segments and manifests under `testdata/segments/`: every file must still decode,
//! to exactly the text stored next to it. A new format version adds files; it never changes
//! old ones. `WEFT_BLESS=1 cargo test -p weft-engine --test golden_segments` writes them
//! (only when adding a format version).

use std::path::PathBuf;
use std::sync::Arc;

use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use bytes::Bytes;
use datafusion::scalar::ScalarValue;
use object_store::path::Path;
use weft_engine::storage::inspect::{manifest_report, segment_report};
use weft_engine::storage::manifest::{Manifest, SegmentMeta};
use weft_engine::storage::mvcc::Version;
use weft_engine::storage::segment::{decode, encode, hex, Segment};

/// Every manifest format, oldest first.
const MANIFESTS: [&str; 3] = ["manifest-v1.json", "manifest-v2.json", "manifest-v3.json"];

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../testdata/segments")
}

fn schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("id", DataType::Int64, true),
        Field::new("name", DataType::Utf8, true),
        Field::new("score", DataType::Float64, true),
        Field::new("active", DataType::Boolean, true),
    ]))
}

fn key(i: i64) -> Vec<u8> {
    weft_engine::key::encode_key(&[&ScalarValue::Int64(Some(i))]).unwrap()
}

fn row(id: i64, name: Option<&str>, score: f64, active: bool) -> Option<Arc<Vec<ScalarValue>>> {
    Some(Arc::new(vec![
        ScalarValue::Int64(Some(id)),
        ScalarValue::Utf8(name.map(str::to_string)),
        ScalarValue::Float64(Some(score)),
        ScalarValue::Boolean(Some(active)),
    ]))
}

/// The versions every golden segment holds: several versions of one key, a delete over an
/// older put, a NULL.
fn versions() -> Vec<(Vec<u8>, Version)> {
    let v = |ts, row| Version { ts, row };
    vec![
        (
            key(1),
            v(1_700_000_000_000_000_300, row(1, Some("ada"), 3.5, true)),
        ),
        (
            key(1),
            v(1_700_000_000_000_000_100, row(1, Some("ada"), 1.0, false)),
        ),
        (key(2), v(1_700_000_000_000_000_400, None)),
        (
            key(2),
            v(1_700_000_000_000_000_200, row(2, Some("bob"), 2.25, true)),
        ),
        (
            key(3),
            v(1_700_000_000_000_000_250, row(3, None, -0.5, false)),
        ),
    ]
}

/// Segment format 1: what the first storage version wrote (one uncompressed row group, no
/// per-segment counts).
fn encode_v1() -> Vec<u8> {
    use parquet::arrow::ArrowWriter;
    use parquet::file::metadata::KeyValue;
    use parquet::file::properties::WriterProperties;
    let batch = weft_engine::storage::segment::versions_batch(&schema(), &versions()).unwrap();
    let kv = |k: &str, v: &str| KeyValue::new(k.to_string(), v.to_string());
    let props = WriterProperties::builder()
        .set_key_value_metadata(Some(vec![
            kv("weft.table_id", "65537"),
            kv("weft.rows", "5"),
            kv("weft.min_ts", "1700000000000000100"),
            kv("weft.max_ts", "1700000000000000400"),
            kv("weft.min_key", &hex(&key(1))),
            kv("weft.max_key", &hex(&key(3))),
        ]))
        .build();
    let mut buf = Vec::new();
    let mut w = ArrowWriter::try_new(&mut buf, batch.schema(), Some(props)).unwrap();
    w.write(&batch).unwrap();
    w.close().unwrap();
    buf
}

/// Writes the golden files that do not exist yet (with their expected text). Existing ones
/// are never rewritten: they are what older versions wrote.
fn bless() {
    std::fs::create_dir_all(dir()).unwrap();
    let write_new = |name: &str, data: &[u8]| {
        let path = dir().join(name);
        if !path.exists() {
            std::fs::write(path, data).unwrap();
        }
    };
    write_new("segment-v1.parquet", &encode_v1());
    let (v2, stats) = encode(65537, &schema(), &versions()).unwrap();
    write_new("segment-v2.parquet", &v2);
    for name in ["segment-v1.parquet", "segment-v2.parquet"] {
        let data = std::fs::read(dir().join(name)).unwrap();
        let text = segment_report(name, Bytes::from(data), true).unwrap();
        write_new(&format!("{name}.txt"), text.as_bytes());
    }
    // Manifest format 1: JSON with no checksum line and no per-segment key ranges.
    let v1 = std::fs::read(dir().join("segment-v1.parquet")).unwrap();
    let m1 = r#"{
  "format_version": 1,
  "version": 2,
  "checkpoint_ts": 1700000000000000500,
  "segments": [
    {
      "path": "segment-v1.parquet",
      "table_id": 65537,
      "versions": 5,
      "min_ts": 1700000000000000100,
      "max_ts": 1700000000000000400,
      "bytes": BYTES
    }
  ]
}"#
    .replace("BYTES", &v1.len().to_string());
    write_new("manifest-v1.json", m1.as_bytes());
    let v2 = std::fs::read(dir().join("segment-v2.parquet")).unwrap();
    let m2 = Manifest {
        format_version: 2,
        version: 7,
        epoch: 0,
        checkpoint_ts: 1_700_000_000_000_000_500,
        horizon_ts: 1_700_000_000_000_000_050,
        segments: vec![SegmentMeta {
            path: "segment-v2.parquet".into(),
            table_id: 65537,
            versions: stats.rows,
            min_ts: stats.min_ts,
            max_ts: stats.max_ts,
            bytes: v2.len() as u64,
            min_key: hex(&stats.min_key),
            max_key: hex(&stats.max_key),
            keys: stats.keys,
            tombstones: stats.tombstones,
            crc32: Some(crc32fast::hash(&v2)),
        }],
    };
    write_new("manifest-v2.json", &m2.encode());
    // Format 3 adds the writer's owner epoch; it lists the same segment as format 2.
    let mut m3 = Manifest::decode(&std::fs::read(dir().join("manifest-v2.json")).unwrap()).unwrap();
    m3.format_version = 3;
    m3.epoch = 4;
    write_new("manifest-v3.json", &m3.encode());
    for name in MANIFESTS {
        let m = Manifest::decode(&std::fs::read(dir().join(name)).unwrap()).unwrap();
        write_new(&format!("{name}.txt"), manifest_report(name, &m).as_bytes());
    }
}

#[test]
fn golden_segments_and_manifests_still_decode() {
    if std::env::var("WEFT_BLESS").is_ok_and(|v| v == "1") {
        bless();
    }
    for name in ["segment-v1.parquet", "segment-v2.parquet"] {
        let data = Bytes::from(std::fs::read(dir().join(name)).expect("golden segment"));
        let want = std::fs::read_to_string(dir().join(format!("{name}.txt"))).unwrap();
        assert_eq!(
            segment_report(name, data.clone(), true).unwrap(),
            want,
            "{name}"
        );
        // Both formats hold exactly the same versions.
        let got = decode(name, data).unwrap();
        let expect = versions();
        assert_eq!(got.versions.len(), expect.len());
        for ((gk, gv), (ek, ev)) in got.versions.iter().zip(&expect) {
            assert_eq!(gk, ek);
            assert_eq!(gv.ts, ev.ts);
            assert_eq!(gv.row, ev.row, "{name}");
        }
    }
    for name in MANIFESTS {
        let m = Manifest::decode(&std::fs::read(dir().join(name)).unwrap()).unwrap();
        let want = std::fs::read_to_string(dir().join(format!("{name}.txt"))).unwrap();
        assert_eq!(manifest_report(name, &m), want, "{name}");
        // Each manifest's segment passes its size (and, from format 2, checksum) check.
        for s in &m.segments {
            let data = std::fs::read(dir().join(&s.path)).unwrap();
            Segment::new(s.clone(), Path::from(s.path.as_str()))
                .verify(&data)
                .unwrap();
        }
    }
}

/// A changed byte anywhere in a segment is caught by the manifest's checksum, named.
#[test]
fn a_damaged_golden_segment_is_refused() {
    let m = Manifest::decode(&std::fs::read(dir().join("manifest-v2.json")).unwrap()).unwrap();
    let s = &m.segments[0];
    let mut data = std::fs::read(dir().join(&s.path)).unwrap();
    let mid = data.len() / 2;
    data[mid] ^= 0x01;
    let err = Segment::new(s.clone(), Path::from("segments/x.parquet"))
        .verify(&data)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("segments/x.parquet") && err.contains("checksum mismatch"),
        "{err}"
    );
}
