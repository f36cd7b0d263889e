//! TPC-H, shared by the side-by-side test and `weft bench tpch`: the schema, the 22
//! queries, data generation with `tpchgen-cli`, and result comparison with PostgreSQL's.

use std::path::{Path, PathBuf};

use tokio_postgres::{Client, SimpleQueryMessage};

/// The tables, smallest first (the order they are loaded in).
pub const TABLES: [&str; 8] = [
    "region", "nation", "part", "supplier", "partsupp", "customer", "orders", "lineitem",
];

/// The schema of the TPC-H specification (char(n), varchar(n), decimal(15,2), date).
pub const SCHEMA: &str = include_str!("../../testdata/tpch/schema.sql");

/// The 22 queries with the specification's validation parameters, by name.
pub const QUERIES: [(&str, &str); 22] = [
    ("q01", include_str!("../../testdata/tpch/queries/q01.sql")),
    ("q02", include_str!("../../testdata/tpch/queries/q02.sql")),
    ("q03", include_str!("../../testdata/tpch/queries/q03.sql")),
    ("q04", include_str!("../../testdata/tpch/queries/q04.sql")),
    ("q05", include_str!("../../testdata/tpch/queries/q05.sql")),
    ("q06", include_str!("../../testdata/tpch/queries/q06.sql")),
    ("q07", include_str!("../../testdata/tpch/queries/q07.sql")),
    ("q08", include_str!("../../testdata/tpch/queries/q08.sql")),
    ("q09", include_str!("../../testdata/tpch/queries/q09.sql")),
    ("q10", include_str!("../../testdata/tpch/queries/q10.sql")),
    ("q11", include_str!("../../testdata/tpch/queries/q11.sql")),
    ("q12", include_str!("../../testdata/tpch/queries/q12.sql")),
    ("q13", include_str!("../../testdata/tpch/queries/q13.sql")),
    ("q14", include_str!("../../testdata/tpch/queries/q14.sql")),
    ("q15", include_str!("../../testdata/tpch/queries/q15.sql")),
    ("q16", include_str!("../../testdata/tpch/queries/q16.sql")),
    ("q17", include_str!("../../testdata/tpch/queries/q17.sql")),
    ("q18", include_str!("../../testdata/tpch/queries/q18.sql")),
    ("q19", include_str!("../../testdata/tpch/queries/q19.sql")),
    ("q20", include_str!("../../testdata/tpch/queries/q20.sql")),
    ("q21", include_str!("../../testdata/tpch/queries/q21.sql")),
    ("q22", include_str!("../../testdata/tpch/queries/q22.sql")),
];

/// `tpchgen-cli`: `WEFT_TPCHGEN`, else the one `tests/run` installs, else on `PATH`.
pub fn tpchgen() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("WEFT_TPCHGEN") {
        return Some(PathBuf::from(p));
    }
    let home = std::env::var_os("HOME").map(PathBuf::from)?;
    let cached = home.join(".cache/weft-tools/venv/bin/tpchgen-cli");
    if cached.exists() {
        return Some(cached);
    }
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join("tpchgen-cli"))
            .find(|p| p.exists())
    })
}

/// Writes every table at scale factor `sf` into `dir` as `<table>.<format>` (`csv` or
/// `parquet`), unless all eight files are there already.
pub fn generate(bin: &Path, sf: &str, format: &str, dir: &Path) -> Result<(), String> {
    if TABLES
        .iter()
        .all(|t| dir.join(format!("{t}.{format}")).exists())
    {
        return Ok(());
    }
    let out = std::process::Command::new(bin)
        .args([format, "-s", sf, "--overwrite", "--output-dir"])
        .arg(dir)
        .output()
        .map_err(|e| format!("run {}: {e}", bin.display()))?;
    if !out.status.success() {
        return Err(format!(
            "tpchgen-cli: {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(())
}

/// A query's rows as text (NULL as None), or its error as `SQLSTATE: message`.
pub async fn rows(c: &Client, sql: &str) -> Result<Vec<Vec<Option<String>>>, String> {
    let msgs = c.simple_query(sql).await.map_err(|e| {
        e.as_db_error()
            .map(|d| format!("{}: {}", d.code().code(), d.message()))
            .unwrap_or_else(|| e.to_string())
    })?;
    Ok(msgs
        .iter()
        .filter_map(|m| match m {
            SimpleQueryMessage::Row(r) => {
                Some((0..r.len()).map(|i| r.get(i).map(str::to_string)).collect())
            }
            _ => None,
        })
        .collect())
}

/// A decimal number without its trailing fractional zeros; anything else as it is. A
/// numeric that PostgreSQL prints with trailing zeros weft may print without
/// (docs/decisions.md, "numeric"); nothing else is forgiven.
fn by_value(cell: &Option<String>) -> Option<String> {
    let s = cell.as_deref()?;
    let digits = s.strip_prefix('-').unwrap_or(s);
    let is_decimal = digits.split_once('.').is_some_and(|(i, f)| {
        !i.is_empty()
            && i.bytes().all(|b| b.is_ascii_digit())
            && f.bytes().all(|b| b.is_ascii_digit())
    });
    Some(if is_decimal {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s.to_string()
    })
}

/// `Ok` when `got` has the rows of `expected`, in the same order, cell by cell (numbers by
/// value); else where the first difference is.
pub fn same_rows(
    got: &[Vec<Option<String>>],
    expected: &[Vec<Option<String>>],
) -> Result<(), String> {
    let norm = |rows: &[Vec<Option<String>>]| -> Vec<Vec<Option<String>>> {
        rows.iter()
            .map(|r| r.iter().map(by_value).collect())
            .collect()
    };
    let (g, e) = (norm(got), norm(expected));
    if g == e {
        return Ok(());
    }
    let first = g
        .iter()
        .zip(&e)
        .position(|(a, b)| a != b)
        .unwrap_or(g.len().min(e.len()));
    Err(format!(
        "{} rows, PostgreSQL {}; first difference at row {first}:\n  weft: {:?}\n  pg:   {:?}",
        got.len(),
        expected.len(),
        got.get(first),
        expected.get(first)
    ))
}
