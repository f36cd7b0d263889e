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
