//! `weft load`: bulk-loads CSV and Parquet files into a table of a running weft (or any
//! PostgreSQL server) through COPY FROM STDIN, printing a progress line as it goes.
//!
//! - A `.csv` file is streamed as it is, `COPY t FROM STDIN (FORMAT csv, HEADER ...)`: the
//!   server parses it, so every rule of COPY's CSV input applies (quotes, NULL as an
//!   unquoted empty field).
//! - A `.parquet` file is read with the parquet crate into Arrow batches and sent in
//!   PostgreSQL's text format, `COPY t (<its columns>) FROM STDIN`: columns are matched by
//!   name, a null is `\N`, every value is printed by Arrow's display of its type and
//!   escaped; binary values are sent as `\x` hex. Lists, structs and maps are refused,
//!   naming the column.
//! - Any other file is taken to be in COPY's text format already.
//!
//! `--commit-rows N` sets `weft.copy_commit_rows`, so a load larger than one transaction may
//! be commits every N rows (docs/decisions.md, "COPY"); without it, the whole file is one
//! transaction, as PostgreSQL's COPY is, and a file too large for one is refused (54000).
#![allow(clippy::disallowed_methods)] // the progress line measures real time

use std::fmt::Write as _;
use std::io::{IsTerminal, Read};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use arrow::array::{Array, AsArray};
use arrow::datatypes::DataType;
use arrow::record_batch::{RecordBatch, RecordBatchReader};
use arrow::util::display::{ArrayFormatter, FormatOptions};
use bytes::{BufMut, Bytes, BytesMut};
use clap::Args;
use futures::SinkExt;
use tokio_postgres::Client;

#[derive(Args, Debug)]
pub struct LoadArgs {
    /// The table to load into, as SQL names it (it must exist).
    #[arg(long)]
    pub table: String,
    /// The files to load, in order: `.csv`, `.parquet`, or COPY's text format.
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
    /// Where to connect: a libpq-style string or a postgres:// URL.
    #[arg(
        long,
        env = "WEFT_URL",
        default_value = "host=127.0.0.1 port=5432 user=postgres dbname=postgres"
    )]
    pub url: String,
    /// CSV files have no header line.
    #[arg(long)]
    pub no_header: bool,
    /// The field delimiter of CSV files.
    #[arg(long, default_value_t = ',')]
    pub delimiter: char,
    /// Commit every N rows (weft.copy_commit_rows); 0 loads each file in one transaction.
    #[arg(long, default_value_t = 0)]
    pub commit_rows: u64,
}

/// How one file is read.
#[derive(Debug, Clone)]
pub struct FileOptions {
    /// Names the loading side in the progress line (e.g. `weft: `); may be empty.
    pub who: String,
    pub header: bool,
    pub delimiter: char,
}

/// Bytes handed to the server per CopyData message.
const CHUNK_BYTES: usize = 1 << 20;
/// Rows per Arrow batch read from a Parquet file.
const PARQUET_BATCH_ROWS: usize = 8192;

pub async fn run(a: LoadArgs) -> anyhow::Result<()> {
    let (client, conn) = tokio_postgres::connect(&a.url, tokio_postgres::NoTls)
        .await
        .with_context(|| format!("connect to {}", a.url))?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    if a.commit_rows > 0 {
        client
            .batch_execute(&format!("SET weft.copy_commit_rows = {}", a.commit_rows))
            .await?;
    }
    let opts = FileOptions {
        who: String::new(),
        header: !a.no_header,
        delimiter: a.delimiter,
    };
    let started = Instant::now();
    let mut total = 0;
    for f in &a.files {
        total += copy_file(&client, &a.table, f, &opts).await?;
    }
    if a.files.len() > 1 {
        eprintln!(
            "loaded {total} rows into {} from {} files in {:.1} s",
            a.table,
            a.files.len(),
            started.elapsed().as_secs_f64()
        );
    }
    Ok(())
}

/// Loads one file into `table` through COPY FROM STDIN; the rows the server loaded.
pub async fn copy_file(
    c: &Client,
    table: &str,
    path: &Path,
    opts: &FileOptions,
) -> anyhow::Result<u64> {
    let label = format!(
        "{}{} -> {table}",
        opts.who,
        path.file_name().unwrap_or_default().to_string_lossy()
    );
    let mut progress = Progress::new(label);
    let is = |ext: &str| {
        path.extension()
            .is_some_and(|e| e.eq_ignore_ascii_case(ext))
    };
    let rows = if is("parquet") {
        copy_parquet(c, table, path, &mut progress).await
    } else {
        let statement = if is("csv") {
            let delimiter = opts.delimiter.to_string().replace('\'', "''");
            format!(
                "COPY {table} FROM STDIN WITH (FORMAT csv, HEADER {}, DELIMITER '{delimiter}')",
                opts.header
            )
        } else {
            format!("COPY {table} FROM STDIN")
        };
        copy_stream(c, &statement, path, &mut progress).await
    }
    .with_context(|| format!("load {} into {table}", path.display()))?;
    progress.done(rows);
    Ok(rows)
}

/// Sends a file's bytes as they are.
async fn copy_stream(
    c: &Client,
    statement: &str,
    path: &Path,
    progress: &mut Progress,
) -> anyhow::Result<u64> {
    let mut file = std::fs::File::open(path)?;
    let sink = c.copy_in(statement).await?;
    futures::pin_mut!(sink);
    loop {
        let mut buf = vec![0u8; CHUNK_BYTES];
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        buf.truncate(n);
        let lines = buf.iter().filter(|b| **b == b'\n').count() as u64;
        sink.send(Bytes::from(buf)).await?;
        progress.advance(n as u64, lines);
    }
    Ok(sink.finish().await?)
}

/// Reads a Parquet file batch by batch and sends it in COPY's text format.
async fn copy_parquet(
    c: &Client,
    table: &str,
    path: &Path,
    progress: &mut Progress,
) -> anyhow::Result<u64> {
    let file = std::fs::File::open(path)?;
    let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(file)?
        .with_batch_size(PARQUET_BATCH_ROWS)
        .build()?;
    let columns: Vec<String> = reader
        .schema()
        .fields()
        .iter()
        .map(|f| quote_ident(f.name()))
        .collect();
    for f in reader.schema().fields() {
        text_convertible(f.name(), f.data_type())?;
    }
    let statement = format!("COPY {table} ({}) FROM STDIN", columns.join(", "));
    let sink = c.copy_in(&statement).await?;
    futures::pin_mut!(sink);
    let mut buf = BytesMut::with_capacity(CHUNK_BYTES * 2);
    for batch in reader {
        let batch = batch?;
        let lines = batch.num_rows() as u64;
        encode_text(&batch, &mut buf)?;
        let n = buf.len() as u64;
        sink.send(buf.split().freeze()).await?;
        progress.advance(n, lines);
    }
    Ok(sink.finish().await?)
}

/// Whether weft load can send a column of this type in COPY's text format.
fn text_convertible(name: &str, t: &DataType) -> anyhow::Result<()> {
    match t {
        DataType::List(_)
        | DataType::LargeList(_)
        | DataType::ListView(_)
        | DataType::LargeListView(_)
        | DataType::FixedSizeList(..)
        | DataType::Struct(_)
        | DataType::Map(..)
        | DataType::Union(..) => {
            bail!("column {name} is of type {t}, which weft load cannot send as text")
        }
        DataType::Dictionary(_, v) => text_convertible(name, v),
        _ => Ok(()),
    }
}

/// Appends a batch's rows to `out` in COPY's text format (tab-separated, `\N` for NULL,
/// backslash escapes).
pub fn encode_text(batch: &RecordBatch, out: &mut BytesMut) -> anyhow::Result<()> {
    let options = FormatOptions::default();
    let columns = batch.columns();
    let formatters: Vec<ArrayFormatter> = columns
        .iter()
        .map(|a| ArrayFormatter::try_new(a.as_ref(), &options))
        .collect::<Result<_, _>>()?;
    let mut cell = String::new();
    for row in 0..batch.num_rows() {
        for (i, col) in columns.iter().enumerate() {
            if i > 0 {
                out.put_u8(b'\t');
            }
            if col.is_null(row) {
                out.put_slice(b"\\N");
                continue;
            }
            if let Some(bytes) = binary_value(col.as_ref(), row) {
                out.put_slice(b"\\\\x");
                for b in bytes {
                    write!(cell, "{b:02x}")?;
                }
                out.put_slice(cell.as_bytes());
                cell.clear();
                continue;
            }
            write!(cell, "{}", formatters[i].value(row))?;
            escape_into(&cell, out);
            cell.clear();
        }
        out.put_u8(b'\n');
    }
    Ok(())
}

fn binary_value(a: &dyn Array, row: usize) -> Option<&[u8]> {
    match a.data_type() {
        DataType::Binary => Some(a.as_binary::<i32>().value(row)),
        DataType::LargeBinary => Some(a.as_binary::<i64>().value(row)),
        DataType::BinaryView => Some(a.as_binary_view().value(row)),
        DataType::FixedSizeBinary(_) => Some(a.as_fixed_size_binary().value(row)),
        _ => None,
    }
}

/// COPY text format's escapes: backslash, tab, newline, carriage return.
fn escape_into(s: &str, out: &mut BytesMut) {
    for b in s.bytes() {
        match b {
            b'\\' => out.put_slice(b"\\\\"),
            b'\t' => out.put_slice(b"\\t"),
            b'\n' => out.put_slice(b"\\n"),
            b'\r' => out.put_slice(b"\\r"),
            _ => out.put_u8(b),
        }
    }
}

fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// A progress line on stderr: rewritten in place on a terminal, else one line every ten
/// seconds.
pub struct Progress {
    label: String,
    started: Instant,
    printed: Instant,
    bytes: u64,
    lines: u64,
    tty: bool,
}

impl Progress {
    pub fn new(label: String) -> Progress {
        let now = Instant::now();
        Progress {
            label,
            started: now,
            printed: now,
            bytes: 0,
            lines: 0,
            tty: std::io::stderr().is_terminal(),
        }
    }

    pub fn advance(&mut self, bytes: u64, lines: u64) {
        self.bytes += bytes;
        self.lines += lines;
        let every = if self.tty {
            Duration::from_millis(500)
        } else {
            Duration::from_secs(10)
        };
        if self.printed.elapsed() >= every {
            self.printed = Instant::now();
            let line = format!(
                "{}: ~{} rows, {:.0} MiB, {:.1} MiB/s",
                self.label,
                self.lines,
                self.bytes as f64 / (1 << 20) as f64,
                self.bytes as f64 / (1 << 20) as f64 / self.started.elapsed().as_secs_f64()
            );
            if self.tty {
                eprint!("\r{line}\x1b[K");
            } else {
                eprintln!("{line}");
            }
        }
    }

    /// The closing line: rows the server loaded, time, rate. The time it took.
    pub fn done(&self, rows: u64) -> Duration {
        let took = self.started.elapsed();
        let secs = took.as_secs_f64().max(1e-9);
        let line = format!(
            "{}: {rows} rows in {secs:.2} s ({:.0} rows/s, {:.1} MiB/s)",
            self.label,
            rows as f64 / secs,
            self.bytes as f64 / (1 << 20) as f64 / secs
        );
        if self.tty {
            eprintln!("\r{line}\x1b[K");
        } else {
            eprintln!("{line}");
        }
        took
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{BinaryArray, Date32Array, Int32Array, StringArray};
    use arrow::datatypes::{Field, Schema};
    use std::sync::Arc;

    #[test]
    fn text_format_escapes_and_marks_nulls() {
        let schema = Arc::new(Schema::new(vec![
            Field::new("i", DataType::Int32, true),
            Field::new("s", DataType::Utf8, true),
            Field::new("b", DataType::Binary, true),
            Field::new("d", DataType::Date32, true),
        ]));
        let batch = RecordBatch::try_new(
            schema,
            vec![
                Arc::new(Int32Array::from(vec![Some(1), None])),
                Arc::new(StringArray::from(vec![Some("a\tb\\c\nd"), Some("")])),
                Arc::new(BinaryArray::from(vec![Some(&b"\x00\xff"[..]), None])),
                Arc::new(Date32Array::from(vec![Some(0), Some(10_000)])),
            ],
        )
        .unwrap();
        let mut out = BytesMut::new();
        encode_text(&batch, &mut out).unwrap();
        assert_eq!(
            std::str::from_utf8(&out).unwrap(),
            "1\ta\\tb\\\\c\\nd\t\\\\x00ff\t1970-01-01\n\\N\t\t\\N\t1997-05-19\n"
        );
    }

    #[test]
    fn nested_columns_are_refused_by_name() {
        let t = DataType::List(Arc::new(Field::new("item", DataType::Int32, true)));
        let e = text_convertible("xs", &t).unwrap_err().to_string();
        assert!(e.contains("xs"), "{e}");
    }
}
