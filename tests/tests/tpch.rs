//! The 22 TPC-H queries on weft and on PostgreSQL 15, same data, same answers.
//!
//! `tpchgen-cli` (installed by tests/run, named by WEFT_TPCHGEN) generates the data at a
//! small scale factor (WEFT_TPCH_SF, default 0.01); both databases get the schema of
//! testdata/tpch/schema.sql (char(n), varchar(n), decimal(15,2), date, as the
//! specification declares them), and `weft load` loads every table's CSV into both, as a
//! user would. Each query runs on both through the simple query protocol, and the text of
//! every row must be the same, in the same order (numbers by value: weft_tests::tpch).
//! Each query's time on both is printed.
#![allow(clippy::disallowed_methods)] // test harness deadlines are real time

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use tokio_postgres::Client;
use weft_tests::tpch::{self, QUERIES, TABLES};
use weft_tests::{weft_bin, PgServer, Server};

/// Creates the tables and loads them with `weft load`; the time it took.
async fn load(c: &Client, conn: &str, data: &Path, extra: &[&str]) -> Duration {
    let started = Instant::now();
    c.batch_execute(tpch::SCHEMA).await.unwrap();
    for t in TABLES {
        let out = Command::new(weft_bin())
            .args(["load", "--url", conn, "--table", t])
            .args(extra)
            .arg(data.join(format!("{t}.csv")))
            .output()
            .expect("run weft load");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "weft load {t}: {stderr}");
        assert!(
            stderr.contains(&format!("-> {t}: ")) && !stderr.contains(&format!("-> {t}: 0 rows")),
            "weft load {t} says what it loaded: {stderr}"
        );
    }
    started.elapsed()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tpch_queries_answer_as_postgresql_does() {
    let Some(pg) = PgServer::start() else {
        return;
    };
    let Some(gen) = tpch::tpchgen() else {
        assert!(
            std::env::var("WEFT_REQUIRE_TOOLS").is_err(),
            "WEFT_TPCHGEN (tpchgen-cli) is required"
        );
        eprintln!("skipping: set WEFT_TPCHGEN to tpchgen-cli");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("tpch");
    let sf = std::env::var("WEFT_TPCH_SF").unwrap_or_else(|_| "0.01".into());
    tpch::generate(&gen, &sf, "csv", &data).unwrap();
    let weft = Server::start(&dir.path().join("weft"));
    let (w, p) = (weft.connect().await, pg.connect().await);
    // lineitem is larger than one transaction may be: weft commits the COPY in parts.
    let wl = load(&w, &weft.conn_string(), &data, &["--commit-rows", "20000"]).await;
    let pl = load(&p, &pg.conn_string(), &data, &[]).await;
    eprintln!("load: weft {wl:?}, PostgreSQL {pl:?}");

    // The same tables from tpchgen-cli's Parquet files, through `weft load`'s Parquet path,
    // hold the same rows.
    tpch::generate(&gen, &sf, "parquet", &data).unwrap();
    for t in ["nation", "orders", "lineitem"] {
        let create = tpch::SCHEMA
            .lines()
            .find(|l| l.starts_with(&format!("CREATE TABLE {t} (")))
            .unwrap()
            .replacen(&format!("TABLE {t} "), &format!("TABLE {t}_pq "), 1);
        w.batch_execute(&create).await.unwrap();
        let out = Command::new(weft_bin())
            .args([
                "load",
                "--url",
                &weft.conn_string(),
                "--commit-rows",
                "20000",
            ])
            .args(["--table", &format!("{t}_pq")])
            .arg(data.join(format!("{t}.parquet")))
            .output()
            .expect("run weft load");
        assert!(
            out.status.success(),
            "weft load {t}.parquet: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let all = |table: &str| format!("SELECT * FROM {table} ORDER BY 1, 2, 3, 4");
        let (csv, parquet) = (
            tpch::rows(&w, &all(t)).await.unwrap(),
            tpch::rows(&w, &all(&format!("{t}_pq"))).await.unwrap(),
        );
        assert!(!csv.is_empty());
        assert!(
            csv == parquet,
            "{t}: the Parquet load differs from the CSV load"
        );
    }

    let mut failures = Vec::new();
    for (name, sql) in QUERIES {
        let t = Instant::now();
        let expected = tpch::rows(&p, sql)
            .await
            .expect("PostgreSQL runs every query");
        let pg_time = t.elapsed();
        let t = Instant::now();
        let got = tpch::rows(&w, sql).await;
        let weft_time = t.elapsed();
        eprintln!(
            "{name}: {} rows; weft {weft_time:?}, PostgreSQL {pg_time:?}",
            expected.len()
        );
        match got {
            Ok(got) => {
                if let Err(e) = tpch::same_rows(&got, &expected) {
                    failures.push(format!("{name}: {e}"));
                }
            }
            Err(e) => failures.push(format!("{name}: weft failed: {e}")),
        }
    }
    assert!(
        failures.is_empty(),
        "{} of 22 queries differ from PostgreSQL:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// `weft bench tpch` as a user runs it: it loads both servers, checks all 22 results and
/// writes its tables between its markers, leaving the rest of the file as it was.
#[test]
fn bench_tpch_checks_and_reports() {
    if weft_tests::pg_bin_dir().is_none() {
        assert!(!weft_tests::pg_required(), "PostgreSQL 15 is required");
        return;
    }
    let Some(gen) = tpch::tpchgen() else {
        assert!(std::env::var("WEFT_REQUIRE_TOOLS").is_err());
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let md = dir.path().join("benchmarks.md");
    std::fs::write(&md, "# Benchmarks\n\nkept\n").unwrap();
    let out = Command::new(weft_bin())
        .args(["bench", "tpch", "--scale-factor", "0.01", "--runs", "1"])
        .arg("--tpchgen")
        .arg(&gen)
        .arg("--data")
        .arg(dir.path().join("data"))
        .arg("--markdown")
        .arg(&md)
        .output()
        .expect("run weft bench tpch");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "weft bench tpch: {stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = std::fs::read_to_string(&md).unwrap();
    assert!(text.starts_with("# Benchmarks\n\nkept\n"), "{text}");
    assert!(text.contains("<!-- weft bench tpch: begin"), "{text}");
    assert!(text.contains("| lineitem | 60175 |"), "{text}");
    assert!(text.contains("| 22/22 |"), "{text}");
    assert_eq!(text.matches("| yes |").count(), 22, "{text}");
}
