//! The 22 TPC-H queries on weft and on PostgreSQL 15, same data, same answers.
//!
//! `tpchgen-cli` (installed by tests/run, named by WEFT_TPCHGEN) generates the data at a
//! small scale factor (WEFT_TPCH_SF, default 0.01); both databases get the schema of
//! testdata/tpch/schema.sql (char(n), varchar(n), decimal(15,2), date, as the
//! specification declares them) and load every table with COPY FROM STDIN (CSV). Each query
//! of testdata/tpch/queries runs on both through the simple query protocol, and the text of
//! every row must be the same, in the same order. Numbers compare by value: a numeric that
//! PostgreSQL prints with trailing zeros weft may print without (docs/decisions.md,
//! "numeric"), and nothing else is forgiven. Each query's time on both is printed.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use futures::SinkExt;
use tokio_postgres::{Client, SimpleQueryMessage};
use weft_tests::{PgServer, Server};

const TABLES: [&str; 8] = [
    "region", "nation", "part", "supplier", "partsupp", "customer", "orders", "lineitem",
];

fn testdata() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join("testdata")
        .join("tpch")
}

fn generate(dir: &Path) -> Option<()> {
    let bin = match std::env::var_os("WEFT_TPCHGEN") {
        Some(p) => PathBuf::from(p),
        None => {
            assert!(
                std::env::var("WEFT_REQUIRE_TOOLS").is_err(),
                "WEFT_TPCHGEN (tpchgen-cli) is required"
            );
            eprintln!("skipping: set WEFT_TPCHGEN to tpchgen-cli");
            return None;
        }
    };
    let sf = std::env::var("WEFT_TPCH_SF").unwrap_or_else(|_| "0.01".into());
    let out = std::process::Command::new(bin)
        .args(["csv", "-s", &sf, "--output-dir"])
        .arg(dir)
        .output()
        .expect("run tpchgen-cli");
    assert!(
        out.status.success(),
        "tpchgen-cli: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Some(())
}

async fn load(c: &Client, data: &Path, settings: &str) -> Duration {
    let started = Instant::now();
    let schema = std::fs::read_to_string(testdata().join("schema.sql")).unwrap();
    c.batch_execute(&schema).await.unwrap();
    c.batch_execute(settings).await.unwrap();
    for t in TABLES {
        let bytes = std::fs::read(data.join(format!("{t}.csv"))).unwrap();
        let sink = c
            .copy_in(&format!(
                "COPY {t} FROM STDIN WITH (FORMAT csv, HEADER true)"
            ))
            .await
            .unwrap();
        futures::pin_mut!(sink);
        for chunk in bytes.chunks(1 << 20) {
            sink.send(bytes::Bytes::copy_from_slice(chunk))
                .await
                .unwrap();
        }
        let rows = sink
            .finish()
            .await
            .unwrap_or_else(|e| panic!("COPY {t}: {e}: {:?}", e.as_db_error()));
        assert!(rows > 0, "{t} is empty");
    }
    started.elapsed()
}

/// Every row of the query's result as text (NULL as None).
async fn rows(c: &Client, sql: &str) -> Result<Vec<Vec<Option<String>>>, String> {
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

/// A decimal number without its trailing fractional zeros; anything else as it is.
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tpch_queries_answer_as_postgresql_does() {
    let Some(pg) = PgServer::start() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("tpch");
    if generate(&data).is_none() {
        return;
    }
    let weft = Server::start(&dir.path().join("weft"));
    let (w, p) = (weft.connect().await, pg.connect().await);
    // lineitem is larger than one transaction may be: weft commits the COPY in parts.
    let wl = load(&w, &data, "SET weft.copy_commit_rows = 20000").await;
    let pl = load(&p, &data, "").await;
    eprintln!("load: weft {wl:?}, PostgreSQL {pl:?}");

    let mut queries: Vec<PathBuf> = std::fs::read_dir(testdata().join("queries"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    queries.sort();
    assert_eq!(queries.len(), 22);
    let mut failures = Vec::new();
    for q in &queries {
        let name = q.file_stem().unwrap().to_string_lossy().to_string();
        let sql = std::fs::read_to_string(q).unwrap();
        let t = Instant::now();
        let expected = rows(&p, &sql).await.expect("PostgreSQL runs every query");
        let pg_time = t.elapsed();
        let t = Instant::now();
        let got = rows(&w, &sql).await;
        let weft_time = t.elapsed();
        eprintln!(
            "{name}: {} rows; weft {weft_time:?}, PostgreSQL {pg_time:?}",
            expected.len()
        );
        let got = match got {
            Ok(g) => g,
            Err(e) => {
                failures.push(format!("{name}: weft failed: {e}"));
                continue;
            }
        };
        let norm = |rows: &[Vec<Option<String>>]| -> Vec<Vec<Option<String>>> {
            rows.iter()
                .map(|r| r.iter().map(by_value).collect())
                .collect()
        };
        if norm(&got) != norm(&expected) {
            let first = norm(&got)
                .iter()
                .zip(norm(&expected))
                .position(|(a, b)| *a != b)
                .unwrap_or(got.len().min(expected.len()));
            failures.push(format!(
                "{name}: {} rows, PostgreSQL {}; first difference at row {first}:\n  weft: {:?}\n  pg:   {:?}",
                got.len(),
                expected.len(),
                got.get(first),
                expected.get(first)
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of 22 queries differ from PostgreSQL:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
