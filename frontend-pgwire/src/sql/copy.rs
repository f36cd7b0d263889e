//! COPY: `COPY t FROM STDIN` and `COPY t|(query) TO STDOUT`, in PostgreSQL's text and CSV
//! formats.
//!
//! Incoming data is parsed as it streams in, record by record (a CSV field may span lines),
//! into text columns (copy_fields.rs), and written in chunks: as Arrow batches of the
//! table's types (copy_load.rs), or through the ordinary INSERT path when defaults must be
//! evaluated, so that types, NOT NULL and primary keys behave exactly as for INSERT. The rows belong to the
//! session's transaction and count against its limits (54000 when a load is too large for
//! one transaction), unless the session asked for bounded commits with
//! `SET weft.copy_commit_rows = N`: outside a transaction block, a COPY then commits every N
//! rows and a failure keeps the chunks already committed.

use crate::error::{codes, SqlError, SqlResult};
use crate::sql::copy_chunk::Readying;
use crate::sql::copy_fields::{Fields, Records};
pub use crate::sql::copy_format::CopyFormat;

/// The longest line (record) COPY FROM reads; a longer one is 54000 before more of it is
/// buffered.
pub const COPY_LINE_BYTES_MAX: usize = 64 << 20;

/// A COPY FROM STDIN in progress: the bytes not yet parsed and the records parsed.
#[derive(Debug)]
pub struct CopyIn {
    pub table: String,
    pub columns: Vec<String>,
    pub format: CopyFormat,
    pending: Vec<u8>,
    /// How far the record at the start of `pending` has been searched for its end (and,
    /// in CSV, whether that point is inside quotes): a record split over many chunks is
    /// scanned once, not once per chunk.
    scanned: usize,
    scanned_quoted: bool,
    header_done: bool,
    /// `\.` was seen: what follows is ignored.
    ended: bool,
    /// Records parsed and not yet inserted.
    pub records: Records,
    /// The record being parsed (its buffer is reused).
    fields: Fields,
    /// Lines consumed so far (for error messages).
    pub line: usize,
    /// Rows inserted so far.
    pub count: usize,
    /// Rows inserted but not committed (bounded-commit mode).
    pub uncommitted: usize,
    /// The first error: the rest of the data is read and dropped, then it is reported.
    pub failed: Option<SqlError>,
    /// The commit of the rows before, still in flight (bounded-commit mode): the next
    /// records are parsed and made ready while it runs (session/copy_in.rs).
    pub committing: Option<tokio::task::JoinHandle<SqlResult<()>>>,
    /// The table and the keys (ascending) of the commit in flight, when the COPY goes on
    /// without waiting for it: the uniqueness checks of the rows that follow look at these
    /// keys besides the snapshot, which may not include that commit yet. Only for a
    /// table whose writes read nothing else (no secondary index, no foreign key either
    /// way), so that the keys are all there is to see.
    pub committing_keys: Option<(u64, Vec<Vec<u8>>)>,
    /// The table as the direct path last read it (copy_load.rs).
    pub direct: Option<std::sync::Arc<weft_engine::schema::TableDef>>,
    /// The chunk being made ready while the next records are parsed.
    pub readying: Option<Readying>,
}

impl CopyIn {
    pub fn new(table: String, columns: Vec<String>, format: CopyFormat) -> CopyIn {
        let records = Records::new(columns.len());
        CopyIn {
            table,
            columns,
            format,
            pending: Vec::new(),
            scanned: 0,
            scanned_quoted: false,
            header_done: false,
            ended: false,
            records,
            fields: Fields::default(),
            line: 0,
            count: 0,
            uncommitted: 0,
            failed: None,
            committing: None,
            committing_keys: None,
            direct: None,
            readying: None,
        }
    }

    /// Takes more data and parses every complete record in it.
    pub fn feed(&mut self, data: &[u8]) -> SqlResult<()> {
        if self.ended {
            return Ok(());
        }
        self.pending.extend_from_slice(data);
        self.parse(false)
    }

    /// The data is complete: parses a last record without a final newline.
    pub fn finish(&mut self) -> SqlResult<()> {
        if self.ended {
            return Ok(());
        }
        self.parse(true)
    }

    fn parse(&mut self, at_end: bool) -> SqlResult<()> {
        let mut start = 0;
        // The first record resumes where the last call's search stopped.
        let (mut from, mut quoted) = (self.scanned, self.scanned_quoted);
        loop {
            let end = if self.format.csv {
                csv_record_end(
                    &self.pending[start..],
                    from,
                    quoted,
                    self.format.quote,
                    self.format.escape,
                )
            } else {
                match self.pending[start + from..]
                    .iter()
                    .position(|&b| b == b'\n')
                {
                    Some(e) => Ok(from + e),
                    None => Err((self.pending.len() - start, false)),
                }
            };
            let (record, next) = match end {
                Ok(e) => (&self.pending[start..start + e], start + e + 1),
                Err(_) if at_end && start < self.pending.len() => {
                    (&self.pending[start..], self.pending.len())
                }
                Err((searched, in_quotes)) => {
                    if self.pending.len() - start > COPY_LINE_BYTES_MAX {
                        return Err(SqlError::new(
                            codes::PROGRAM_LIMIT_EXCEEDED,
                            format!(
                                "COPY line {} is longer than the {COPY_LINE_BYTES_MAX} bytes a line may have",
                                self.line + 1
                            ),
                        )
                        .with_detail(format!("COPY {}", self.table)));
                    }
                    (from, quoted) = (searched, in_quotes);
                    break;
                }
            };
            (from, quoted) = (0, false);
            let record = record.strip_suffix(b"\r").unwrap_or(record);
            self.line += 1;
            start = next;
            if record == b"\\." {
                self.ended = true;
                break;
            }
            if self.format.csv && self.format.header && !self.header_done {
                self.header_done = true;
                continue;
            }
            let parsed = if self.format.csv {
                self.fields.parse_csv(record, &self.format)
            } else {
                self.fields.parse_text(record, &self.format)
            };
            parsed.map_err(|m| self.error(m))?;
            let n = self.fields.len();
            if n != self.columns.len() {
                let m = if n < self.columns.len() {
                    format!("missing data for column \"{}\"", self.columns[n])
                } else {
                    "extra data after last expected column".to_string()
                };
                return Err(self.error(m));
            }
            self.records.push(&self.fields);
        }
        self.pending.drain(..start);
        (self.scanned, self.scanned_quoted) = (from, quoted);
        Ok(())
    }

    /// A data error at the current line, as PostgreSQL reports it (22P04).
    pub fn error(&self, m: impl Into<String>) -> SqlError {
        SqlError::new("22P04", m.into())
            .with_detail(format!("COPY {}, line {}", self.table, self.line))
    }
}

/// Where the first CSV record in `data` ends (its newline outside quotes), searching from
/// `from` (inside quotes or not); when it does not end in `data`, where to resume.
fn csv_record_end(
    data: &[u8],
    from: usize,
    quoted: bool,
    quote: u8,
    escape: u8,
) -> Result<usize, (usize, bool)> {
    let mut in_quotes = quoted;
    let mut i = from;
    while i < data.len() {
        let b = data[i];
        if in_quotes {
            if b == escape && escape != quote {
                if i + 1 == data.len() {
                    // Whether it escapes a quote is decided by the next chunk.
                    return Err((i, true));
                }
                if data[i + 1] == quote {
                    i += 2;
                    continue;
                }
            }
            if b == quote {
                in_quotes = false;
            }
        } else if b == quote {
            in_quotes = true;
        } else if b == b'\n' {
            return Ok(i);
        }
        i += 1;
    }
    Err((i, in_quotes))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text() -> CopyFormat {
        CopyFormat::from_options(&[], &[]).unwrap()
    }

    fn csv(header: bool) -> CopyFormat {
        let mut f = text();
        f.csv = true;
        f.delimiter = b',';
        f.null = String::new();
        f.header = header;
        f
    }

    #[test]
    fn text_records_split_across_chunks() {
        let mut c = CopyIn::new("t".into(), vec!["a".into(), "b".into()], text());
        c.feed(b"1\thel").unwrap();
        assert!(c.records.is_empty());
        c.feed(b"lo\\tworld\n2\t\\N\n3\ta\\\\b\\\tc\n").unwrap();
        c.finish().unwrap();
        assert_eq!(
            c.records.take().rows(),
            vec![
                vec![Some("1".into()), Some("hello\tworld".into())],
                vec![Some("2".into()), None],
                vec![Some("3".into()), Some("a\\b\tc".into())],
            ]
        );
    }

    #[test]
    fn csv_quotes_newlines_nulls_and_header() {
        let mut c = CopyIn::new("t".into(), vec!["a".into(), "b".into()], csv(true));
        c.feed(b"a,b\n1,\"x, \"\"y\"\"\nz\"\n2,\n3,\"\"").unwrap();
        c.finish().unwrap();
        assert_eq!(
            c.records.take().rows(),
            vec![
                vec![Some("1".into()), Some("x, \"y\"\nz".into())],
                vec![Some("2".into()), None],
                vec![Some("3".into()), Some(String::new())],
            ]
        );
    }

    #[test]
    fn wrong_field_counts_name_the_line() {
        let mut c = CopyIn::new("t".into(), vec!["a".into(), "b".into()], text());
        let e = c.feed(b"1\t2\n3\n").unwrap_err();
        assert_eq!(e.code, "22P04");
        assert!(
            e.message.contains("missing data for column \"b\""),
            "{}",
            e.message
        );
        assert_eq!(e.detail.as_deref(), Some("COPY t, line 2"));
        let mut c = CopyIn::new("t".into(), vec!["a".into()], text());
        let e = c.feed(b"1\t2\n").unwrap_err();
        assert!(e.message.contains("extra data"), "{}", e.message);
    }

    #[test]
    fn output_round_trips_through_input() {
        for f in [text(), csv(false)] {
            let vals: Vec<Option<&[u8]>> = vec![
                Some(b"plain"),
                None,
                Some(b"tab\tnew\nline \\ \"q\", comma"),
                Some(b""),
            ];
            let line = f.line(&vals);
            let mut c = CopyIn::new("t".into(), (0..4).map(|i| i.to_string()).collect(), f);
            c.feed(&line).unwrap();
            c.finish().unwrap();
            let back: Vec<Option<String>> = vals
                .iter()
                .map(|v| v.map(|b| String::from_utf8(b.to_vec()).unwrap()))
                .collect();
            assert_eq!(c.records.take().rows(), vec![back]);
        }
    }

    #[test]
    fn a_long_line_split_into_many_chunks_parses_in_linear_time() {
        for f in [text(), csv(false)] {
            let parse = |mb: usize| {
                let mut line = vec![b'x'; mb << 20];
                if f.csv {
                    // One quoted field, an escaped quote inside.
                    line[0] = b'"';
                    line[5] = b'"';
                    line[6] = b'"';
                    line.push(b'"');
                }
                line.push(b'\n');
                let mut c = CopyIn::new("t".into(), vec!["a".into()], f.clone());
                for chunk in line.chunks(64 << 10) {
                    c.feed(chunk).unwrap();
                }
                c.finish().unwrap();
                assert_eq!(c.records.len(), 1);
            };
            crate::types::assert_linear(if f.csv { "csv" } else { "text" }, parse);
        }
    }

    #[test]
    fn a_line_beyond_the_bound_is_refused_before_it_is_held() {
        let mut c = CopyIn::new("t".into(), vec!["a".into()], text());
        let chunk = vec![b'x'; 1 << 20];
        let mut fed = 0;
        let e = loop {
            match c.feed(&chunk) {
                Ok(()) => fed += chunk.len(),
                Err(e) => break e,
            }
        };
        assert_eq!(e.code, "54000", "{e:?}");
        assert!(fed <= COPY_LINE_BYTES_MAX, "{fed} bytes held");
    }
}
