//! Format evolution: journal objects written by earlier versions must still decode.
//!
//! `testdata/journal/v1-basic.wj` was written by format version 1. Regenerate only when
//! adding a new golden file: `WEFT_BLESS=1 cargo test -p weft-journal --test golden`.

use std::path::PathBuf;
use std::sync::Arc;

use arrow::datatypes::{DataType, Field, Schema};
use datafusion::scalar::ScalarValue;
use weft_engine::record::{CommitRecord, TableWrites};
use weft_journal::format::{decode_object, encode_object, encode_record, Header};

fn golden_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../testdata/journal/v1-basic.wj")
}

fn build() -> Vec<u8> {
    let schema = Arc::new(Schema::new(vec![
        Field::new("id", DataType::Int64, true),
        Field::new("name", DataType::Utf8, true),
        Field::new("score", DataType::Float64, true),
    ]));
    let records = vec![
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
    ];
    let bodies: Vec<Vec<u8>> = records.iter().map(|r| encode_record(r).unwrap()).collect();
    let header = Header {
        format_version: 1,
        journal_id: 1,
        epoch: 3,
        sequence: 42,
        first_ts: records[0].commit_ts,
        last_ts: records[1].commit_ts,
        record_count: 2,
    };
    let refs: Vec<&[u8]> = bodies.iter().map(|b| b.as_slice()).collect();
    encode_object(&header, &refs)
}

#[test]
fn v1_golden_object_still_decodes() {
    let path = golden_path();
    if std::env::var("WEFT_BLESS").is_ok() {
        std::fs::write(&path, build()).unwrap();
    }
    let data = std::fs::read(&path).expect("golden object");
    let (h, records) = decode_object("v1-basic.wj", &data).unwrap();
    assert_eq!(
        (
            h.format_version,
            h.journal_id,
            h.epoch,
            h.sequence,
            h.record_count
        ),
        (1, 1, 3, 42, 2)
    );
    assert_eq!(records.len(), 2);
    let first = &records[0].tables[0];
    assert_eq!(first.table_id, 65_537);
    assert_eq!(first.keys.len(), 2);
    let row = first.rows[0].as_ref().unwrap();
    assert_eq!(row[0], ScalarValue::Int64(Some(1)));
    assert_eq!(row[1], ScalarValue::Utf8(Some("ann".into())));
    assert_eq!(row[2], ScalarValue::Float64(Some(1.5)));
    assert!(first.rows[1].as_ref().unwrap()[1].is_null());
    assert!(
        records[1].tables[0].rows[0].is_none(),
        "the second record is a delete"
    );
}
