//! The file layout of a journal on local disk: names, and splitting an entry into its
//! objects. Pure: no I/O (the appender is [`crate::logwriter`]).
//!
//! On S3 every group-commit batch is one object. On a local disk a new file per batch
//! costs a create, an fsync, a link and a directory fsync; the file layout instead appends
//! the very same objects ("frames": header, records, footer, every checksum) to a
//! preallocated, zero-filled **log file** and makes each one durable with a single
//! `fdatasync`. A journal's directory (`clusters/<c>/journal/<id>/`) then holds:
//!
//! | name | what |
//! | --- | --- |
//! | `<seq:020>.wj` | an **entry**: one object (an epoch claim, or a batch written by the object layout), or a log file whose first frame holds `seq`, followed by frames of `seq + 1`, ... and then zeros |
//! | `<seq:020>.wj.sealed` | the seal of that log file (below) |
//!
//! An object is simply an entry with one frame and nothing after it, so both layouts share
//! one name space, and one conditional create (a hard link that fails when the name
//! exists) decides every race between them: an epoch claim and a new log file can never
//! both take a sequence.
//!
//! **Which frames count.** An entry's frames are the journal's objects from its first
//! sequence up to, not including, the next entry's first sequence. After its last such
//! frame a log file holds zeros, or the remains of a write that was interrupted (a crash,
//! or a fenced writer's last frame): no reader returns those.
//!
//! **Fencing.** Epoch claims stay one-frame entries, created if absent. A writer taking a
//! journal over first **seals** the newest entry (creates its `.sealed` name), then reads
//! it to its last complete frame, makes it durable, and claims the next sequence. The
//! writer of that file checks for the seal after every `fdatasync`: a frame durable before
//! the seal appeared is read by the claimer (it reads after sealing), so it may be
//! acknowledged; a frame whose writer finds the seal is decided by the claim: acknowledged
//! if the claim lies past it, fenced (read by no one) if not.

use std::sync::Arc;

use weft_engine::CommitRecord;

use crate::error::JournalError;
use crate::format::{decode_header, decode_object, object_len, Header, MAGIC};

pub const ENTRY_SUFFIX: &str = ".wj";
pub const SEAL_SUFFIX: &str = ".wj.sealed";

/// Parses a file name of a journal's directory: the entry's first sequence. `None` for
/// anything else (seals, temporary files).
pub fn parse_entry_name(name: &str) -> Option<u64> {
    let digits = name.strip_suffix(ENTRY_SUFFIX)?;
    if digits.len() != 20 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

pub fn entry_name(first: u64) -> String {
    format!("{first:020}{ENTRY_SUFFIX}")
}

pub fn seal_name(first: u64) -> String {
    format!("{first:020}{SEAL_SUFFIX}")
}

/// One verified frame of a log file.
#[derive(Debug, Clone)]
pub struct Frame {
    pub offset: usize,
    pub len: usize,
    pub header: Header,
    pub records: Vec<Arc<CommitRecord>>,
}

/// What follows a log file's last frame that counts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Tail {
    /// Zeros (the preallocated rest) or the end of the file.
    Clean,
    /// Bytes of an interrupted write: `bytes` from `offset` to the last non-zero byte.
    Interrupted { offset: usize, bytes: usize },
    /// Frames at or past the next entry's first sequence, from `offset`: a fenced writer's.
    Superseded { offset: usize },
}

#[derive(Debug, Clone)]
pub struct LogScan {
    pub frames: Vec<Frame>,
    /// Where the bytes that count end.
    pub end: usize,
    pub tail: Tail,
}

/// Splits log file `buf` (named `path`, of `journal_id`, starting at sequence `first`) into
/// its verified frames, up to `end_before` (the next entry's first sequence, when there is
/// one). Frames must hold consecutive sequences from `first`. A frame that does not verify
/// ends the newest entry (an interrupted write) unless a valid frame header of this journal
/// follows it somewhere: then the file is damaged in the middle, and that is an error
/// naming the offset. In any other entry it is an error too.
pub fn scan_log(
    path: &str,
    journal_id: u32,
    first: u64,
    buf: &[u8],
    end_before: Option<u64>,
) -> Result<LogScan, JournalError> {
    let corrupt = |offset: usize, detail: String| JournalError::Corrupt {
        path: path.to_string(),
        offset: offset as u64,
        detail,
    };
    let mut frames: Vec<Frame> = Vec::new();
    let mut pos = 0usize;
    let mut expected = first;
    loop {
        if end_before.is_some_and(|e| expected >= e) {
            let tail = if frame_follows(buf, pos, journal_id, expected) {
                Tail::Superseded { offset: pos }
            } else {
                Tail::Clean
            };
            return Ok(LogScan {
                frames,
                end: pos,
                tail,
            });
        }
        let rest = &buf[pos..];
        let decoded = object_len(rest).and_then(|len| {
            decode_object(path, &rest[..len])
                .ok()
                .map(|(h, r)| (len, h, r))
        });
        let Some((len, header, records)) = decoded else {
            if pos == buf.len() {
                // The end of a one-object entry (or of a file filled exactly).
                return Ok(LogScan {
                    frames,
                    end: pos,
                    tail: Tail::Clean,
                });
            }
            if let Some(next) = end_before {
                // Frames never end early in a file that another entry follows: a claim
                // starts right after the last complete frame, a new file right after the
                // last frame that fitted.
                return Err(corrupt(
                    pos,
                    format!("frame of sequence {expected} does not verify, and the next entry starts at {next}"),
                ));
            }
            if frame_follows(buf, pos + 1, journal_id, expected) {
                return Err(corrupt(
                    pos,
                    format!(
                        "frame of sequence {expected} does not verify, and later frames follow it"
                    ),
                ));
            }
            let tail = match rest.iter().rposition(|&b| b != 0) {
                None => Tail::Clean,
                Some(last) => Tail::Interrupted {
                    offset: pos,
                    bytes: last + 1,
                },
            };
            return Ok(LogScan {
                frames,
                end: pos,
                tail,
            });
        };
        if header.journal_id != journal_id {
            return Err(corrupt(
                pos,
                format!("frame belongs to journal {}", header.journal_id),
            ));
        }
        if header.sequence != expected {
            return Err(corrupt(
                pos,
                format!(
                    "frame holds sequence {} where {expected} belongs",
                    header.sequence
                ),
            ));
        }
        frames.push(Frame {
            offset: pos,
            len,
            header,
            records,
        });
        pos += len;
        expected += 1;
    }
}

/// Whether a valid frame header of `journal_id` at a sequence at or past `from_seq` starts
/// anywhere at or after `pos`.
fn frame_follows(buf: &[u8], pos: usize, journal_id: u32, from_seq: u64) -> bool {
    if pos >= buf.len() || buf[pos..].iter().all(|&b| b == 0) {
        return false;
    }
    let mut at = pos;
    while let Some(i) = find(&buf[at..], MAGIC) {
        let start = at + i;
        if let Ok(h) = decode_header("", &buf[start..]) {
            if h.journal_id == journal_id && h.sequence >= from_seq {
                return true;
            }
        }
        at = start + 1;
    }
    false
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::{encode_object, FORMAT_VERSION};

    fn frame(seq: u64, ts: u64) -> Vec<u8> {
        let h = Header {
            format_version: FORMAT_VERSION,
            journal_id: 3,
            epoch: 1,
            sequence: seq,
            first_ts: ts,
            last_ts: ts,
            record_count: 0,
        };
        encode_object(&h, &[])
    }

    fn file(frames: &[Vec<u8>], zeros: usize) -> Vec<u8> {
        let mut out: Vec<u8> = frames.concat();
        out.resize(out.len() + zeros, 0);
        out
    }

    #[test]
    fn names_round_trip() {
        assert_eq!(parse_entry_name(&entry_name(42)), Some(42));
        assert_eq!(parse_entry_name("00000000000000000007.wj"), Some(7));
        assert_eq!(parse_entry_name(&seal_name(42)), None);
        assert_eq!(parse_entry_name("7.wj"), None);
        assert_eq!(parse_entry_name(".spare-1.tmp"), None);
    }

    #[test]
    fn one_object_is_an_entry_of_one_frame() {
        let buf = frame(10, 1);
        let s = scan_log("f", 3, 10, &buf, None).unwrap();
        assert_eq!(s.frames.len(), 1);
        assert_eq!((s.end, s.tail), (buf.len(), Tail::Clean));
    }

    #[test]
    fn frames_then_zeros() {
        let buf = file(&[frame(10, 1), frame(11, 2)], 4096);
        let s = scan_log("f", 3, 10, &buf, None).unwrap();
        assert_eq!(s.frames.len(), 2);
        assert_eq!(s.frames[1].header.sequence, 11);
        assert_eq!(s.tail, Tail::Clean);
        assert_eq!(s.end, 2 * frame(0, 0).len());
    }

    #[test]
    fn an_interrupted_last_frame_ends_the_file() {
        let mut torn = frame(12, 3);
        torn.truncate(torn.len() - 5);
        let buf = file(&[frame(10, 1), frame(11, 2), torn], 100);
        let s = scan_log("f", 3, 10, &buf, None).unwrap();
        assert_eq!(s.frames.len(), 2);
        assert!(matches!(s.tail, Tail::Interrupted { .. }));
    }

    #[test]
    fn damage_in_the_middle_is_an_error() {
        let mut buf = file(&[frame(10, 1), frame(11, 2), frame(12, 3)], 100);
        let at = frame(0, 0).len() + 30;
        buf[at] ^= 0xff;
        let e = scan_log("f", 3, 10, &buf, None).unwrap_err();
        assert!(e.to_string().contains("later frames follow"), "{e}");
    }

    #[test]
    fn frames_past_the_next_entry_are_superseded() {
        let buf = file(&[frame(10, 1), frame(11, 2), frame(12, 3)], 0);
        let s = scan_log("f", 3, 10, &buf, Some(12)).unwrap();
        assert_eq!(s.frames.len(), 2);
        assert!(matches!(s.tail, Tail::Superseded { .. }));
    }

    #[test]
    fn a_damaged_last_frame_before_the_next_entry_is_an_error() {
        let mut torn = frame(12, 3);
        torn.truncate(torn.len() - 5);
        let buf = file(&[frame(10, 1), frame(11, 2), torn], 100);
        let e = scan_log("f", 3, 10, &buf, Some(13)).unwrap_err();
        assert!(e.to_string().contains("next entry starts at 13"), "{e}");
    }

    #[test]
    fn a_frame_out_of_sequence_is_an_error() {
        let buf = file(&[frame(10, 1), frame(12, 2)], 0);
        assert!(scan_log("f", 3, 10, &buf, None).is_err());
    }
}
