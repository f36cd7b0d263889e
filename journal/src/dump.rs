//! A readable, stable text form of journal objects: what `weft inspect journal` prints and
//! what the golden files under `testdata/journal/` are checked against.

use std::fmt::Write;

use datafusion::scalar::ScalarValue;
use weft_engine::CommitRecord;

use crate::format::Header;

/// One line describing an object's header.
pub fn header_line(path: &str, bytes: u64, h: &Header) -> String {
    let kind = if h.record_count == 0 {
        " (epoch claim)"
    } else {
        ""
    };
    format!(
        "{path}  v{} journal={} epoch={} seq={} ts={}..{} records={} bytes={bytes}{kind}",
        h.format_version, h.journal_id, h.epoch, h.sequence, h.first_ts, h.last_ts, h.record_count
    )
}

/// The records of an object, one line per written key.
pub fn records_text(records: &[impl AsRef<CommitRecord>]) -> String {
    let mut out = String::new();
    for rec in records {
        let rec = rec.as_ref();
        let _ = writeln!(
            out,
            "  commit ts={} writes={}",
            rec.commit_ts,
            rec.write_count()
        );
        for t in &rec.tables {
            let columns: Vec<&str> = t
                .schema
                .fields()
                .iter()
                .map(|f| f.name().as_str())
                .collect();
            for (key, row) in t.keys.iter().zip(&t.rows) {
                let key: String = key.iter().map(|b| format!("{b:02x}")).collect();
                match row {
                    None => {
                        let _ = writeln!(out, "    table={} key={key} delete", t.table_id);
                    }
                    Some(row) => {
                        let values: Vec<String> = columns
                            .iter()
                            .zip(row.iter())
                            .map(|(c, v)| format!("{c}={}", value_text(v)))
                            .collect();
                        let _ = writeln!(
                            out,
                            "    table={} key={key} put {}",
                            t.table_id,
                            values.join(" ")
                        );
                    }
                }
            }
        }
    }
    out
}

fn value_text(v: &ScalarValue) -> String {
    if v.is_null() {
        return "NULL".into();
    }
    match v {
        ScalarValue::Utf8(Some(s)) | ScalarValue::LargeUtf8(Some(s)) => format!("{s:?}"),
        other => other.to_string(),
    }
}
