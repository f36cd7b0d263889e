//! The journal object format (version 2; version 1 still decodes).
//!
//! ```text
//! header   magic "WEFTJRNL" | format u16 | reserved u16 | journal u32 | epoch u64 |
//!          sequence u64 | first_ts u64 | last_ts u64 | records u32 | header crc32 u32
//! records  (len u32 | crc32(body) u32 | body) * records
//!          v2 body = a FlatBuffers `Record` (schema/journal.fbs): commit_ts and, per table,
//!                    table_id and one Arrow IPC stream of the rows
//!          v1 body = commit_ts u64 | tables u32 | (table_id u64 | ipc_len u32 | Arrow IPC)*
//! footer   magic "WJFOOTER" | records u32 | crc32 of every byte before the footer u32
//! ```
//! All integers little-endian. The fixed-size header stays outside FlatBuffers so that a
//! reader can tell what an object is (and its version) from its first 64 bytes.
//!
//! Decoding verifies every checksum, the record count, the FlatBuffers structure, and that
//! timestamps are strictly increasing and within the header's range; any defect is reported
//! with the byte offset where it was found.
//!
//! An object with no records is an **epoch claim**: a writer that takes over a journal
//! writes one at the next free sequence, so that the previous writer's next conditional put
//! fails. Its `first_ts == last_ts` carry the journal's last timestamp forward.

use std::io::Cursor;
use std::sync::Arc;

use arrow::ipc::reader::StreamReader;
use weft_engine::record::{CommitRecord, TableWrites};
use weft_engine::Timestamp;

use crate::error::JournalError;
use crate::generated::journal_generated::weft::journal::fb;

pub const MAGIC: &[u8; 8] = b"WEFTJRNL";
pub const FOOTER_MAGIC: &[u8; 8] = b"WJFOOTER";
/// The version new objects are written in.
pub const FORMAT_VERSION: u16 = 2;
/// Every version this build reads.
pub const READABLE_VERSIONS: [u16; 2] = [1, 2];
pub const HEADER_LEN: usize = 8 + 2 + 2 + 4 + 8 + 8 + 8 + 8 + 4 + 4;
pub const FOOTER_LEN: usize = 8 + 4 + 4;
/// Upper bound on one record's body; a larger length field is corruption, not a record.
pub const RECORD_BYTES_MAX: usize = 256 << 20;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    pub format_version: u16,
    pub journal_id: u32,
    pub epoch: u64,
    pub sequence: u64,
    pub first_ts: Timestamp,
    pub last_ts: Timestamp,
    pub record_count: u32,
}

impl Header {
    /// An epoch claim: the object without records a writer puts at the first free sequence
    /// when it takes a journal over (writers never write empty batches).
    pub fn is_epoch_claim(&self) -> bool {
        self.record_count == 0
    }
}

/// Encodes one record body (format version 2: a FlatBuffers `Record`).
pub fn encode_record(rec: &CommitRecord) -> Result<Vec<u8>, String> {
    let mut ipcs = Vec::with_capacity(rec.tables.len());
    for t in &rec.tables {
        ipcs.push((t.table_id, crate::ipc::table_ipc(t)?));
    }
    let mut fbb = flatbuffers::FlatBufferBuilder::with_capacity(
        64 + ipcs.iter().map(|(_, i)| i.len() + 32).sum::<usize>(),
    );
    let tables: Vec<_> = ipcs
        .iter()
        .map(|(table_id, ipc)| {
            let ipc = fbb.create_vector(ipc);
            fb::TableWrites::create(
                &mut fbb,
                &fb::TableWritesArgs {
                    table_id: *table_id,
                    ipc: Some(ipc),
                },
            )
        })
        .collect();
    let tables = fbb.create_vector(&tables);
    let root = fb::Record::create(
        &mut fbb,
        &fb::RecordArgs {
            commit_ts: rec.commit_ts,
            tables: Some(tables),
        },
    );
    fb::finish_record_buffer(&mut fbb, root);
    Ok(fbb.finished_data().to_vec())
}

/// The commit timestamp a body is encoded with before its real one is known. Not the
/// field's default (0), so the field is always present and [`set_commit_ts`] can patch it.
pub const COMMIT_TS_PLACEHOLDER: Timestamp = u64::MAX;

/// Where the commit timestamp of an encoded (version 2) body lies. The body is encoded
/// outside the adjudicator's lock with [`COMMIT_TS_PLACEHOLDER`] and this offset found there
/// too (it verifies the FlatBuffer); under the lock only [`patch_commit_ts`], an 8-byte
/// copy, remains to do.
pub fn commit_ts_offset(body: &[u8]) -> Result<usize, String> {
    let rec = fb::root_as_record(body).map_err(|e| format!("bad FlatBuffers record: {e}"))?;
    let field = rec._tab.vtable().get(fb::Record::VT_COMMIT_TS) as usize;
    if field == 0 {
        return Err("the record has no commit_ts field to patch".into());
    }
    let at = rec._tab.loc() + field;
    if at + 8 > body.len() {
        return Err("commit_ts field out of bounds".into());
    }
    Ok(at)
}

/// Writes `ts` at `offset` (from [`commit_ts_offset`] of this very body).
pub fn patch_commit_ts(body: &mut [u8], offset: usize, ts: Timestamp) {
    body[offset..offset + 8].copy_from_slice(&ts.to_le_bytes());
}

/// Overwrites the commit timestamp of an encoded (version 2) body in place.
pub fn set_commit_ts(body: &mut [u8], ts: Timestamp) -> Result<(), String> {
    let at = commit_ts_offset(body)?;
    patch_commit_ts(body, at, ts);
    Ok(())
}

/// Encodes one record body in format version 1 (kept for the golden tests of old objects).
pub fn encode_record_v1(rec: &CommitRecord) -> Result<Vec<u8>, String> {
    let mut out = Vec::with_capacity(256);
    out.extend_from_slice(&rec.commit_ts.to_le_bytes());
    out.extend_from_slice(&(rec.tables.len() as u32).to_le_bytes());
    for t in &rec.tables {
        let ipc = crate::ipc::table_ipc(t)?;
        out.extend_from_slice(&t.table_id.to_le_bytes());
        out.extend_from_slice(&(ipc.len() as u32).to_le_bytes());
        out.extend_from_slice(&ipc);
    }
    Ok(out)
}

/// Encodes a whole object from already-encoded record bodies with their timestamps.
pub fn encode_object(header: &Header, bodies: &[&[u8]]) -> Vec<u8> {
    let total: usize = bodies.iter().map(|b| b.len() + 8).sum();
    let mut out = Vec::with_capacity(HEADER_LEN + total + FOOTER_LEN);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&header.format_version.to_le_bytes());
    out.extend_from_slice(&0u16.to_le_bytes());
    out.extend_from_slice(&header.journal_id.to_le_bytes());
    out.extend_from_slice(&header.epoch.to_le_bytes());
    out.extend_from_slice(&header.sequence.to_le_bytes());
    out.extend_from_slice(&header.first_ts.to_le_bytes());
    out.extend_from_slice(&header.last_ts.to_le_bytes());
    out.extend_from_slice(&header.record_count.to_le_bytes());
    let crc = crc32fast::hash(&out);
    out.extend_from_slice(&crc.to_le_bytes());
    for b in bodies {
        out.extend_from_slice(&(b.len() as u32).to_le_bytes());
        out.extend_from_slice(&crc32fast::hash(b).to_le_bytes());
        out.extend_from_slice(b);
    }
    let crc = crc32fast::hash(&out);
    out.extend_from_slice(FOOTER_MAGIC);
    out.extend_from_slice(&header.record_count.to_le_bytes());
    out.extend_from_slice(&crc.to_le_bytes());
    out
}

struct Rd<'a> {
    buf: &'a [u8],
    pos: usize,
    path: &'a str,
}

impl<'a> Rd<'a> {
    fn corrupt(&self, offset: usize, detail: impl Into<String>) -> JournalError {
        JournalError::Corrupt {
            path: self.path.to_string(),
            offset: offset as u64,
            detail: detail.into(),
        }
    }
    fn take(&mut self, n: usize, what: &str) -> Result<&'a [u8], JournalError> {
        if self.buf.len() - self.pos < n {
            return Err(self.corrupt(
                self.pos,
                format!(
                    "truncated: {what} needs {n} bytes, {} left",
                    self.buf.len() - self.pos
                ),
            ));
        }
        let s = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }
    fn u16(&mut self, w: &str) -> Result<u16, JournalError> {
        Ok(u16::from_le_bytes(
            self.take(2, w)?.try_into().expect("2 bytes"),
        ))
    }
    fn u32(&mut self, w: &str) -> Result<u32, JournalError> {
        Ok(u32::from_le_bytes(
            self.take(4, w)?.try_into().expect("4 bytes"),
        ))
    }
    fn u64(&mut self, w: &str) -> Result<u64, JournalError> {
        Ok(u64::from_le_bytes(
            self.take(8, w)?.try_into().expect("8 bytes"),
        ))
    }
}

/// Decodes and verifies only the header.
pub fn decode_header(path: &str, buf: &[u8]) -> Result<Header, JournalError> {
    let mut r = Rd { buf, pos: 0, path };
    let magic = r.take(8, "magic")?;
    if magic != MAGIC {
        return Err(r.corrupt(0, "bad magic: not a weft journal object"));
    }
    let format_version = r.u16("format version")?;
    if !READABLE_VERSIONS.contains(&format_version) {
        return Err(r.corrupt(8, format!("unknown format version {format_version}")));
    }
    let _reserved = r.u16("reserved")?;
    let journal_id = r.u32("journal id")?;
    let epoch = r.u64("epoch")?;
    let sequence = r.u64("sequence")?;
    let first_ts = r.u64("first ts")?;
    let last_ts = r.u64("last ts")?;
    let record_count = r.u32("record count")?;
    let crc_at = r.pos;
    let crc = r.u32("header crc")?;
    if crc32fast::hash(&buf[..crc_at]) != crc {
        return Err(r.corrupt(crc_at, "header checksum mismatch"));
    }
    Ok(Header {
        format_version,
        journal_id,
        epoch,
        sequence,
        first_ts,
        last_ts,
        record_count,
    })
}

/// The length of the object that starts at `buf[0]`, read from its framing alone (header,
/// record lengths, footer): `None` when `buf` does not start with a valid header or ends
/// before the object does. Checksums of the records are left to [`decode_object`].
pub fn object_len(buf: &[u8]) -> Option<usize> {
    let header = decode_header("", buf).ok()?;
    let mut pos = HEADER_LEN;
    for _ in 0..header.record_count {
        let len = u32::from_le_bytes(buf.get(pos..pos + 4)?.try_into().ok()?) as usize;
        if len > RECORD_BYTES_MAX {
            return None;
        }
        pos = pos.checked_add(8 + len)?;
    }
    let end = pos.checked_add(FOOTER_LEN)?;
    (end <= buf.len()).then_some(end)
}

/// Decodes and verifies a whole object.
pub fn decode_object(
    path: &str,
    buf: &[u8],
) -> Result<(Header, Vec<Arc<CommitRecord>>), JournalError> {
    let header = decode_header(path, buf)?;
    let mut r = Rd {
        buf,
        pos: HEADER_LEN,
        path,
    };
    if buf.len() < HEADER_LEN + FOOTER_LEN {
        return Err(r.corrupt(buf.len(), "truncated: no room for the footer"));
    }
    let footer_at = buf.len() - FOOTER_LEN;
    let object_crc;
    {
        let mut f = Rd {
            buf,
            pos: footer_at,
            path,
        };
        if f.take(8, "footer magic")? != FOOTER_MAGIC {
            return Err(f.corrupt(footer_at, "bad footer magic (torn or truncated object)"));
        }
        let count = f.u32("footer count")?;
        let crc = f.u32("footer crc")?;
        if count != header.record_count {
            return Err(f.corrupt(
                footer_at + 8,
                format!(
                    "footer says {count} records, header {}",
                    header.record_count
                ),
            ));
        }
        object_crc = crc;
    }
    let body_region = Rd {
        buf: &buf[..footer_at],
        pos: HEADER_LEN,
        path,
    };
    r = body_region;
    let mut records = Vec::with_capacity(header.record_count as usize);
    let mut prev_ts: Option<Timestamp> = None;
    for i in 0..header.record_count {
        let at = r.pos;
        let len = r.u32("record length")? as usize;
        if len > RECORD_BYTES_MAX {
            return Err(r.corrupt(at, format!("record {i} claims {len} bytes")));
        }
        let crc = r.u32("record crc")?;
        let body = r.take(len, "record body")?;
        if crc32fast::hash(body) != crc {
            return Err(r.corrupt(at, format!("record {i} checksum mismatch")));
        }
        let rec = decode_record(header.format_version, body)
            .map_err(|d| r.corrupt(at + 8, format!("record {i}: {d}")))?;
        if prev_ts.is_some_and(|p| rec.commit_ts <= p) {
            return Err(r.corrupt(
                at,
                format!("record {i} timestamp {} does not increase", rec.commit_ts),
            ));
        }
        if (i == 0 && rec.commit_ts != header.first_ts)
            || (i + 1 == header.record_count && rec.commit_ts != header.last_ts)
            || rec.commit_ts < header.first_ts
            || rec.commit_ts > header.last_ts
        {
            return Err(r.corrupt(
                at,
                format!(
                    "record {i} timestamp {} outside header range",
                    rec.commit_ts
                ),
            ));
        }
        prev_ts = Some(rec.commit_ts);
        records.push(Arc::new(rec));
    }
    if r.pos != footer_at {
        return Err(r.corrupt(r.pos, "bytes after the last record"));
    }
    // Last, so that a damaged record is reported at its own offset by its own checksum.
    if crc32fast::hash(&buf[..footer_at]) != object_crc {
        return Err(r.corrupt(footer_at + 12, "object checksum mismatch"));
    }
    if header.record_count == 0 && header.first_ts != header.last_ts {
        return Err(r.corrupt(
            HEADER_LEN - 12,
            "an epoch claim (no records) must have first_ts == last_ts",
        ));
    }
    Ok((header, records))
}

fn decode_record(version: u16, body: &[u8]) -> Result<CommitRecord, String> {
    match version {
        1 => decode_record_v1(body),
        _ => decode_record_v2(body),
    }
}

/// A record body made by [`encode_record`], decoded (what a commit sent over RPC carries).
pub fn decode_record_body(body: &[u8]) -> Result<CommitRecord, String> {
    decode_record_v2(body)
}

fn decode_record_v2(body: &[u8]) -> Result<CommitRecord, String> {
    let rec = fb::root_as_record(body).map_err(|e| format!("bad FlatBuffers record: {e}"))?;
    let mut tables = Vec::new();
    for t in rec.tables().iter().flatten() {
        let ipc = t.ipc().ok_or("table writes without rows")?;
        decode_ipc(t.table_id(), ipc.bytes(), &mut tables)?;
    }
    Ok(CommitRecord {
        commit_ts: rec.commit_ts(),
        tables,
    })
}

fn decode_ipc(table_id: u64, ipc: &[u8], out: &mut Vec<TableWrites>) -> Result<(), String> {
    let reader =
        StreamReader::try_new(Cursor::new(ipc), None).map_err(|e| format!("bad Arrow IPC: {e}"))?;
    for batch in reader {
        let batch = batch.map_err(|e| format!("bad Arrow IPC batch: {e}"))?;
        out.push(TableWrites::from_batch(table_id, &batch).map_err(|e| e.to_string())?);
    }
    Ok(())
}

fn decode_record_v1(body: &[u8]) -> Result<CommitRecord, String> {
    let mut r = Rd {
        buf: body,
        pos: 0,
        path: "",
    };
    let e = |e: JournalError| e.to_string();
    let commit_ts = r.u64("commit ts").map_err(e)?;
    let ntables = r.u32("table count").map_err(e)?;
    let mut tables = Vec::with_capacity(ntables.min(1024) as usize);
    for _ in 0..ntables {
        let table_id = r.u64("table id").map_err(e)?;
        let len = r.u32("ipc length").map_err(e)? as usize;
        let ipc = r.take(len, "ipc").map_err(e)?;
        decode_ipc(table_id, ipc, &mut tables)?;
    }
    if r.pos != body.len() {
        return Err("trailing bytes in record".into());
    }
    Ok(CommitRecord { commit_ts, tables })
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::datatypes::{DataType, Field, Schema};
    use datafusion::scalar::ScalarValue;

    fn sample() -> (Header, Vec<u8>) {
        let schema = Arc::new(Schema::new(vec![
            Field::new("id", DataType::Int64, false),
            Field::new("name", DataType::Utf8, true),
        ]));
        let recs: Vec<CommitRecord> = (1..=3u64)
            .map(|ts| CommitRecord {
                commit_ts: ts * 10,
                tables: vec![TableWrites {
                    table_id: 99,
                    schema: schema.clone(),
                    keys: vec![vec![ts as u8], vec![0xff]],
                    rows: vec![
                        Some(Arc::new(vec![
                            ScalarValue::Int64(Some(ts as i64)),
                            ScalarValue::Utf8(Some(format!("r{ts}"))),
                        ])),
                        None,
                    ],
                }],
            })
            .collect();
        let bodies: Vec<Vec<u8>> = recs.iter().map(|r| encode_record(r).unwrap()).collect();
        let header = Header {
            format_version: FORMAT_VERSION,
            journal_id: 2,
            epoch: 3,
            sequence: 4,
            first_ts: 10,
            last_ts: 30,
            record_count: 3,
        };
        let refs: Vec<&[u8]> = bodies.iter().map(|b| b.as_slice()).collect();
        (header.clone(), encode_object(&header, &refs))
    }

    #[test]
    fn round_trip() {
        let (h, obj) = sample();
        let (h2, recs) = decode_object("x", &obj).unwrap();
        assert_eq!(h, h2);
        assert_eq!(recs.len(), 3);
        assert_eq!(recs[1].commit_ts, 20);
        assert_eq!(recs[1].tables[0].keys, vec![vec![2u8], vec![0xff]]);
        assert!(recs[1].tables[0].rows[1].is_none());
        assert_eq!(
            recs[2].tables[0].rows[0].as_ref().unwrap()[1],
            ScalarValue::Utf8(Some("r3".into()))
        );
    }

    #[test]
    fn every_flipped_byte_is_detected() {
        let (_, obj) = sample();
        for i in 0..obj.len() {
            let mut bad = obj.clone();
            bad[i] ^= 0x40;
            assert!(
                decode_object("x", &bad).is_err(),
                "flip at {i} went unnoticed"
            );
        }
    }

    #[test]
    fn commit_ts_is_patched_in_place() {
        let (_, obj) = sample();
        let (_, recs) = decode_object("x", &obj).unwrap();
        let mut rec = (*recs[0]).clone();
        rec.commit_ts = COMMIT_TS_PLACEHOLDER;
        let mut body = encode_record(&rec).unwrap();
        set_commit_ts(&mut body, 12345).unwrap();
        let back = decode_record(FORMAT_VERSION, &body).unwrap();
        assert_eq!(back.commit_ts, 12345);
        assert_eq!(back.tables[0].keys, recs[0].tables[0].keys);
    }

    #[test]
    fn epoch_claims_round_trip() {
        let h = Header {
            format_version: FORMAT_VERSION,
            journal_id: 1,
            epoch: 7,
            sequence: 12,
            first_ts: 99,
            last_ts: 99,
            record_count: 0,
        };
        let obj = encode_object(&h, &[]);
        let (h2, recs) = decode_object("x", &obj).unwrap();
        assert_eq!(h, h2);
        assert!(recs.is_empty());
        let bad = encode_object(
            &Header {
                last_ts: 100,
                ..h.clone()
            },
            &[],
        );
        assert!(decode_object("x", &bad).is_err());
    }

    #[test]
    fn unknown_versions_are_refused() {
        let (_, mut obj) = sample();
        obj[8] = 9;
        let err = decode_object("x", &obj).unwrap_err().to_string();
        assert!(err.contains("format version 9"), "{err}");
    }

    #[test]
    fn every_truncation_is_detected() {
        let (_, obj) = sample();
        for n in 0..obj.len() {
            assert!(
                decode_object("x", &obj[..n]).is_err(),
                "truncation to {n} went unnoticed"
            );
        }
    }
}
