//! COPY FROM's records as they are parsed: the fields of one record in a reused buffer
//! ([`Fields`]), then appended to one text column per COPY column ([`Records`]), so that a
//! load allocates per chunk of records, not per field. The columns go on as Arrow string
//! arrays ([`RecordColumns`]), which the direct path casts to the table's types
//! (copy_load.rs) without copying them again.

use std::ops::Range;
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, StringArray, StringBuilder};

use crate::sql::copy_format::CopyFormat;

const NOT_UTF8: &str = "invalid byte sequence for encoding \"UTF8\"";

/// The fields of one record: their bytes (unquoted or unescaped) one after another in
/// `buf`, and each field's span of it (`None` is NULL). Every span is valid UTF-8.
#[derive(Debug, Default)]
pub struct Fields {
    buf: Vec<u8>,
    spans: Vec<Option<Range<usize>>>,
}

impl Fields {
    pub fn len(&self) -> usize {
        self.spans.len()
    }

    pub fn is_empty(&self) -> bool {
        self.spans.is_empty()
    }

    /// Field `i` of the record: `None` for NULL.
    pub fn get(&self, i: usize) -> Option<&str> {
        let span = self.spans.get(i)?.clone()?;
        // Checked when the span was made (`end_field`).
        std::str::from_utf8(&self.buf[span]).ok()
    }

    fn clear(&mut self) {
        self.buf.clear();
        self.spans.clear();
    }

    /// Ends the field whose bytes start at `start` in the buffer.
    fn end_field(&mut self, start: usize, null: bool) -> Result<(), String> {
        if null {
            self.buf.truncate(start);
            self.spans.push(None);
            return Ok(());
        }
        std::str::from_utf8(&self.buf[start..]).map_err(|_| NOT_UTF8.to_string())?;
        self.spans.push(Some(start..self.buf.len()));
        Ok(())
    }

    /// Reads one CSV record (without its newline): quoted fields may hold delimiters,
    /// newlines and doubled (or escaped) quotes; an unquoted field equal to the NULL
    /// string is NULL.
    pub fn parse_csv(&mut self, record: &[u8], f: &CopyFormat) -> Result<(), String> {
        self.clear();
        let mut i = 0;
        loop {
            let start = self.buf.len();
            let raw_start = i;
            let mut quoted = false;
            while i < record.len() && record[i] != f.delimiter {
                if record[i] != f.quote {
                    // A run of plain bytes, copied at once.
                    let run = record[i..]
                        .iter()
                        .position(|&b| b == f.delimiter || b == f.quote)
                        .map_or(record.len(), |p| i + p);
                    self.buf.extend_from_slice(&record[i..run]);
                    i = run;
                    continue;
                }
                quoted = true;
                i += 1;
                loop {
                    if i >= record.len() {
                        return Err("unterminated CSV quoted field".into());
                    }
                    let c = record[i];
                    if c == f.escape && i + 1 < record.len() && record[i + 1] == f.quote {
                        self.buf.push(f.quote);
                        i += 2;
                        continue;
                    }
                    if c == f.quote {
                        i += 1;
                        break;
                    }
                    self.buf.push(c);
                    i += 1;
                }
            }
            let null = !quoted && &record[raw_start..i] == f.null.as_bytes();
            self.end_field(start, null)?;
            if i >= record.len() {
                return Ok(());
            }
            i += 1; // the delimiter
        }
    }

    /// Reads one text-format record: fields split at delimiters that no backslash escapes,
    /// each unescaped; a field spelled as the NULL string (`\N`) is NULL.
    pub fn parse_text(&mut self, record: &[u8], f: &CopyFormat) -> Result<(), String> {
        self.clear();
        let mut from = 0;
        loop {
            let mut i = from;
            while i < record.len() && record[i] != f.delimiter {
                // A backslash escapes what follows it, a delimiter included.
                i += if record[i] == b'\\' { 2 } else { 1 };
            }
            let end = i.min(record.len());
            let raw = &record[from..end];
            let start = self.buf.len();
            let null = raw == f.null.as_bytes();
            if !null {
                unescape_into(raw, &mut self.buf);
            }
            self.end_field(start, null)?;
            if end >= record.len() {
                return Ok(());
            }
            from = end + 1;
        }
    }
}

/// PostgreSQL's text-format escapes: `\b \f \n \r \t \v \\`, octal `\NNN`, hex `\xHH`; any
/// other escaped character stands for itself.
fn unescape_into(raw: &[u8], out: &mut Vec<u8>) {
    let mut i = 0;
    while i < raw.len() {
        let b = raw[i];
        if b != b'\\' || i + 1 >= raw.len() {
            out.push(b);
            i += 1;
            continue;
        }
        let c = raw[i + 1];
        i += 2;
        match c {
            b'b' => out.push(8),
            b'f' => out.push(12),
            b'n' => out.push(b'\n'),
            b'r' => out.push(b'\r'),
            b't' => out.push(b'\t'),
            b'v' => out.push(11),
            b'0'..=b'7' => {
                let mut v = (c - b'0') as u32;
                let mut n = 1;
                while n < 3 && i < raw.len() && (b'0'..=b'7').contains(&raw[i]) {
                    v = v * 8 + (raw[i] - b'0') as u32;
                    i += 1;
                    n += 1;
                }
                out.push(v as u8);
            }
            b'x' if i < raw.len() && raw[i].is_ascii_hexdigit() => {
                let mut v = 0u32;
                let mut n = 0;
                while n < 2 && i < raw.len() && raw[i].is_ascii_hexdigit() {
                    v = v * 16 + (raw[i] as char).to_digit(16).unwrap_or(0);
                    i += 1;
                    n += 1;
                }
                out.push(v as u8);
            }
            other => out.push(other),
        }
    }
}

/// Records parsed and not yet written: one growing text column per COPY column.
#[derive(Debug)]
pub struct Records {
    columns: Vec<StringBuilder>,
    rows: usize,
}

impl Records {
    pub fn new(columns: usize) -> Records {
        Records {
            columns: (0..columns).map(|_| StringBuilder::new()).collect(),
            rows: 0,
        }
    }

    pub fn len(&self) -> usize {
        self.rows
    }

    pub fn is_empty(&self) -> bool {
        self.rows == 0
    }

    /// Appends a record; the caller has checked that it has a field per column.
    pub fn push(&mut self, fields: &Fields) {
        for (i, col) in self.columns.iter_mut().enumerate() {
            col.append_option(fields.get(i));
        }
        self.rows += 1;
    }

    /// The records so far as columns; the builders start over, empty.
    pub fn take(&mut self) -> RecordColumns {
        let rows = std::mem::take(&mut self.rows);
        RecordColumns {
            columns: self
                .columns
                .iter_mut()
                .map(|b| Arc::new(b.finish()) as ArrayRef)
                .collect(),
            rows,
        }
    }
}

/// Parsed records as Arrow text columns (Utf8), one per COPY column.
#[derive(Debug, Clone)]
pub struct RecordColumns {
    pub columns: Vec<ArrayRef>,
    pub rows: usize,
}

impl RecordColumns {
    /// Records `offset..offset + len`, sharing the columns' buffers.
    pub fn slice(&self, offset: usize, len: usize) -> RecordColumns {
        RecordColumns {
            columns: self.columns.iter().map(|c| c.slice(offset, len)).collect(),
            rows: len,
        }
    }

    /// Field `col` of record `row`: `None` for NULL.
    pub fn field(&self, row: usize, col: usize) -> Option<&str> {
        let c = self.columns[col].as_any().downcast_ref::<StringArray>()?;
        (!c.is_null(row)).then(|| c.value(row))
    }

    /// Records given as rows of fields (tests).
    #[cfg(test)]
    pub fn from_rows(columns: usize, rows: &[Vec<Option<&str>>]) -> RecordColumns {
        RecordColumns {
            columns: (0..columns)
                .map(|c| Arc::new(rows.iter().map(|r| r[c]).collect::<StringArray>()) as ArrayRef)
                .collect(),
            rows: rows.len(),
        }
    }

    /// The records as rows of fields (the INSERT path and tests).
    pub fn rows(&self) -> Vec<Vec<Option<String>>> {
        (0..self.rows)
            .map(|r| {
                (0..self.columns.len())
                    .map(|c| self.field(r, c).map(str::to_string))
                    .collect()
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn csv() -> CopyFormat {
        let mut f = CopyFormat::from_options(&[], &[]).unwrap();
        f.csv = true;
        f.delimiter = b',';
        f.null = String::new();
        f
    }

    fn fields(f: &Fields) -> Vec<Option<String>> {
        (0..f.len()).map(|i| f.get(i).map(str::to_string)).collect()
    }

    #[test]
    fn csv_fields_quoted_escaped_and_null() {
        let mut f = Fields::default();
        f.parse_csv(b"1,\"a,\"\"b\"\"\",,\"\",x\"y\"z", &csv())
            .unwrap();
        assert_eq!(
            fields(&f),
            vec![
                Some("1".into()),
                Some("a,\"b\"".into()),
                None,
                Some(String::new()),
                Some("xyz".into()),
            ]
        );
        assert!(f.parse_csv(b"1,\"open", &csv()).is_err());
    }

    #[test]
    fn a_multibyte_character_split_by_a_delimiter_is_refused() {
        let mut f = Fields::default();
        // Each field alone is invalid, although the two joined would be "é".
        let e = f.parse_csv(b"\xC3,\xA9", &csv()).unwrap_err();
        assert_eq!(e, NOT_UTF8);
        let text = CopyFormat::from_options(&[], &[]).unwrap();
        assert_eq!(f.parse_text(b"\xC3\t\xA9", &text).unwrap_err(), NOT_UTF8);
        // An escape that makes an invalid byte is refused as well.
        assert_eq!(f.parse_text(b"\\xff", &text).unwrap_err(), NOT_UTF8);
    }

    #[test]
    fn text_fields_escaped_delimiters_and_null() {
        let text = CopyFormat::from_options(&[], &[]).unwrap();
        let mut f = Fields::default();
        f.parse_text(b"a\\\tb\t\\N\tc\\\\\td\\", &text).unwrap();
        assert_eq!(
            fields(&f),
            vec![
                Some("a\tb".into()),
                None,
                Some("c\\".into()),
                Some("d\\".into()),
            ]
        );
    }

    #[test]
    fn records_become_columns_and_slices_share_them() {
        let mut r = Records::new(2);
        let mut f = Fields::default();
        for line in [&b"1,x"[..], b"2,", b"3,z"] {
            f.parse_csv(line, &csv()).unwrap();
            r.push(&f);
        }
        let cols = r.take();
        assert!(r.is_empty());
        assert_eq!(cols.rows, 3);
        let tail = cols.slice(1, 2);
        assert_eq!(
            tail.rows(),
            vec![
                vec![Some("2".into()), None],
                vec![Some("3".into()), Some("z".into())]
            ]
        );
    }
}
