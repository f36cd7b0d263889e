//! Format evolution: journal objects written by earlier format versions must still decode,
//! to exactly the records they were written with.
//!
//! Each `testdata/journal/<name>.wj` has its expected decoded form beside it in
//! `<name>.expected` (the text `weft inspect journal --records` prints). Objects of older
//! versions are never rewritten. A new golden file is created by running
//! `WEFT_BLESS=1 cargo test -p weft-journal --test golden` once, and then committed.

use std::path::PathBuf;
use std::sync::Arc;

use arrow::datatypes::{DataType, Field, Schema};
use datafusion::scalar::ScalarValue;
use weft_engine::record::{CommitRecord, TableWrites};
use weft_journal::dump::{header_line, records_text};
use weft_journal::format::{
    decode_object, encode_object, encode_record, encode_record_v1, Header, FORMAT_VERSION,
};
use weft_journal::logfile::{scan_log, Tail};

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../testdata/journal")
}

fn records() -> Vec<CommitRecord> {
    let schema = Arc::new(Schema::new(vec![
        Field::new("id", DataType::Int64, true),
        Field::new("name", DataType::Utf8, true),
        Field::new("score", DataType::Float64, true),
    ]));
    vec![
        CommitRecord {
            commit_ts: 1_700_000_000_000_000_001,
            tables: vec![TableWrites {
                table_id: 65_537,
                schema: schema.clone(),
                keys: vec![
                    vec![0x80, 0, 0, 0, 0, 0, 0, 1],
                    vec![0x80, 0, 0, 0, 0, 0, 0, 2],
                ],
                rows: vec![
                    Some(Arc::new(vec![
                        ScalarValue::Int64(Some(1)),
                        ScalarValue::Utf8(Some("ann".into())),
                        ScalarValue::Float64(Some(1.5)),
                    ])),
                    Some(Arc::new(vec![
                        ScalarValue::Int64(Some(2)),
                        ScalarValue::Utf8(None),
                        ScalarValue::Float64(None),
                    ])),
                ],
            }],
        },
        CommitRecord {
            commit_ts: 1_700_000_000_000_000_002,
            tables: vec![TableWrites {
                table_id: 65_537,
                schema,
                keys: vec![vec![0x80, 0, 0, 0, 0, 0, 0, 1]],
                rows: vec![None],
            }],
        },
    ]
}

fn build(version: u16, claim: bool) -> Vec<u8> {
    let records = if claim { Vec::new() } else { records() };
    let bodies: Vec<Vec<u8>> = records
        .iter()
        .map(|r| match version {
            1 => encode_record_v1(r).unwrap(),
            _ => encode_record(r).unwrap(),
        })
        .collect();
    let last = 1_700_000_000_000_000_002;
    let header = Header {
        format_version: version,
        journal_id: 1,
        epoch: if claim { 4 } else { 3 },
        sequence: if claim { 43 } else { 42 },
        first_ts: if claim { last } else { last - 1 },
        last_ts: last,
        record_count: records.len() as u32,
    };
    let refs: Vec<&[u8]> = bodies.iter().map(|b| b.as_slice()).collect();
    encode_object(&header, &refs)
}

/// Decodes a golden object and checks it against its expected text.
fn check(name: &str, version: u16, claim: bool) -> String {
    let path = dir().join(format!("{name}.wj"));
    let expected_path = dir().join(format!("{name}.expected"));
    let bless = std::env::var("WEFT_BLESS").is_ok();
    if bless && !path.exists() {
        assert_eq!(
            version, FORMAT_VERSION,
            "only objects of the current format version can be created"
        );
        std::fs::write(&path, build(version, claim)).unwrap();
    }
    let data = std::fs::read(&path).unwrap_or_else(|e| panic!("golden {}: {e}", path.display()));
    let (h, recs) = decode_object(name, &data).unwrap();
    assert_eq!(h.format_version, version, "{name}");
    let text = format!(
        "{}\n{}",
        header_line(&format!("{name}.wj"), data.len() as u64, &h),
        records_text(&recs)
    );
    if bless && !expected_path.exists() {
        std::fs::write(&expected_path, &text).unwrap();
    }
    let expected = std::fs::read_to_string(&expected_path)
        .unwrap_or_else(|e| panic!("golden {}: {e}", expected_path.display()));
    assert_eq!(text, expected, "{name} no longer decodes as it did");
    text
}

#[test]
fn v1_objects_still_decode() {
    let text = check("v1-basic", 1, false);
    assert!(text.contains(r#"put id=1 name="ann" score=1.5"#), "{text}");
    assert!(text.contains("delete"), "{text}");
}

#[test]
fn v2_objects_still_decode() {
    check("v2-basic", 2, false);
    check("v2-epoch-claim", 2, true);
}

#[test]
fn versions_agree_on_the_records() {
    // The same records written in every version decode to the same rows.
    let v1 = check("v1-basic", 1, false);
    let v2 = check("v2-basic", 2, false);
    let body = |t: &str| t.lines().skip(1).collect::<Vec<_>>().join("\n");
    assert_eq!(body(&v1), body(&v2));
}

#[test]
fn the_current_encoder_still_writes_the_golden_bytes() {
    // A format change that alters the bytes of the current version must bump the version.
    let golden = std::fs::read(dir().join("v2-basic.wj")).unwrap();
    assert_eq!(build(FORMAT_VERSION, false), golden);
}

/// A log file of the file layout (local disk): frames of sequences 42, 43 and 44 (the
/// batch of `v2-basic`, split in two, then the last record again as a third), then the
/// first half of an interrupted fourth frame, then zeros up to 8 KiB.
fn build_log() -> Vec<u8> {
    let recs = records();
    let last = 1_700_000_000_000_000_002u64;
    let frame = |seq: u64, ts: u64, r: &CommitRecord| {
        let mut r = r.clone();
        r.commit_ts = ts;
        let body = encode_record(&r).unwrap();
        encode_object(
            &Header {
                format_version: FORMAT_VERSION,
                journal_id: 1,
                epoch: 3,
                sequence: seq,
                first_ts: ts,
                last_ts: ts,
                record_count: 1,
            },
            &[body.as_slice()],
        )
    };
    let mut out = frame(42, last - 1, &recs[0]);
    out.extend(frame(43, last, &recs[1]));
    out.extend(frame(44, last + 1, &recs[1]));
    let torn = frame(45, last + 2, &recs[0]);
    out.extend_from_slice(&torn[..torn.len() / 2]);
    out.resize(8192, 0);
    out
}

#[test]
fn log_files_still_decode() {
    let name = "v2-log";
    let path = dir().join(format!("{name}.wj"));
    let expected_path = dir().join(format!("{name}.expected"));
    let bless = std::env::var("WEFT_BLESS").is_ok();
    if bless && !path.exists() {
        std::fs::write(&path, build_log()).unwrap();
    }
    let data = std::fs::read(&path).unwrap_or_else(|e| panic!("golden {}: {e}", path.display()));
    let scan = scan_log(name, 1, 42, &data, None).unwrap();
    let mut text = String::new();
    for f in &scan.frames {
        text.push_str(&header_line(
            &format!("{name}.wj@{}", f.offset),
            f.len as u64,
            &f.header,
        ));
        text.push('\n');
        text.push_str(&records_text(&f.records));
    }
    text.push_str(&format!("tail {:?}\n", scan.tail));
    if bless && !expected_path.exists() {
        std::fs::write(&expected_path, &text).unwrap();
    }
    let expected = std::fs::read_to_string(&expected_path)
        .unwrap_or_else(|e| panic!("golden {}: {e}", expected_path.display()));
    assert_eq!(text, expected, "{name} no longer decodes as it did");
    assert_eq!(scan.frames.len(), 3);
    assert!(matches!(scan.tail, Tail::Interrupted { .. }));
    // Cut at the next entry's first sequence, the third frame does not count.
    let cut = scan_log(name, 1, 42, &data, Some(44)).unwrap();
    assert_eq!(cut.frames.len(), 2);
    assert!(matches!(cut.tail, Tail::Superseded { .. }));
    assert_eq!(
        build_log(),
        data,
        "the log layout's bytes changed: bump the version"
    );
}
