//! `weft bench storage`: point lookups by primary key (latency percentiles), a full scan
//! with aggregates (rows per second), and then the build of a secondary index and lookups
//! through it, on a large table, for weft, for raw DataFusion over the same rows written as
//! one plain Parquet file (no index), and for PostgreSQL 15, in the same run.
//!
//! weft and PostgreSQL are measured over the wire from one client; raw DataFusion runs in
//! this process (no wire, no MVCC), which makes it the ceiling for weft's read path.
#![allow(clippy::disallowed_methods)] // benchmarks measure real time

use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Args;
use datafusion::prelude::{ParquetReadOptions, SessionConfig, SessionContext};
use rand::{Rng, SeedableRng};

#[derive(Args, Debug)]
pub struct StorageArgs {
    /// Rows in the table.
    #[arg(long, default_value_t = 10_000_000)]
    pub rows: i64,
    /// Rows per loading transaction.
    #[arg(long, default_value_t = 250_000)]
    pub chunk: i64,
    /// Point lookups timed per system (after as many for warm-up).
    #[arg(long, default_value_t = 20_000)]
    pub lookups: usize,
    /// Point lookups timed for raw DataFusion (each is a pruned scan of a Parquet file).
    #[arg(long, default_value_t = 300)]
    pub datafusion_lookups: usize,
    /// Full scans timed per system (the median is reported).
    #[arg(long, default_value_t = 5)]
    pub scans: usize,
    /// Lookups through a secondary index on `v` timed per system (after as many for
    /// warm-up), once `CREATE INDEX` has built it; 0 skips the index.
    #[arg(long, default_value_t = 5_000)]
    pub indexed_lookups: usize,
    /// Skip PostgreSQL.
    #[arg(long)]
    pub no_postgres: bool,
}

const SCAN: &str = "SELECT count(*), sum(v), max(s) FROM bench_kv";

struct Result {
    system: &'static str,
    load_s: f64,
    lookups_ms: Vec<f64>,
    scans_s: Vec<f64>,
    /// CREATE INDEX on `v` (outside a transaction block), and lookups through it.
    index_build_s: Option<f64>,
    indexed_ms: Vec<f64>,
}

fn pct(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() as f64 * p) as usize).min(sorted.len() - 1)]
}

fn median(v: &[f64]) -> f64 {
    let mut s = v.to_vec();
    s.sort_by(|a, b| a.total_cmp(b));
    pct(&s, 0.5)
}

async fn connect(conn: &str) -> anyhow::Result<tokio_postgres::Client> {
    let (c, conn) = tokio_postgres::connect(conn, tokio_postgres::NoTls).await?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    Ok(c)
}

/// Loads, then times lookups and scans over the wire.
async fn over_wire(
    system: &'static str,
    conn: &str,
    a: &StorageArgs,
    settle: impl std::future::Future<Output = anyhow::Result<()>>,
) -> anyhow::Result<Result> {
    let c = connect(conn).await?;
    c.batch_execute(
        "DROP TABLE IF EXISTS bench_kv; \
         CREATE TABLE bench_kv (id bigint PRIMARY KEY, v bigint NOT NULL, s text NOT NULL)",
    )
    .await?;
    let t = Instant::now();
    let mut lo = 1;
    while lo <= a.rows {
        let hi = (lo + a.chunk - 1).min(a.rows);
        c.batch_execute(&format!(
            "INSERT INTO bench_kv SELECT x, x * 7, 'row ' || x FROM generate_series({lo}, {hi}) AS g(x)"
        ))
        .await
        .with_context(|| format!("{system}: loading rows {lo}..{hi}"))?;
        lo = hi + 1;
    }
    settle.await?;
    let load_s = t.elapsed().as_secs_f64();
    eprintln!("{system}: loaded {} rows in {load_s:.1} s", a.rows);
    let stmt = c.prepare("SELECT v FROM bench_kv WHERE id = $1").await?;
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    let mut lookups_ms = Vec::with_capacity(a.lookups);
    for i in 0..2 * a.lookups {
        let id: i64 = rng.random_range(1..=a.rows);
        let t = Instant::now();
        let rows = c.query(&stmt, &[&id]).await?;
        let ms = t.elapsed().as_secs_f64() * 1e3;
        anyhow::ensure!(rows.len() == 1, "{system}: id {id} not found");
        let v: i64 = rows[0].get(0);
        anyhow::ensure!(v == id * 7, "{system}: id {id} has v {v}");
        if i >= a.lookups {
            lookups_ms.push(ms);
        }
    }
    lookups_ms.sort_by(|a, b| a.total_cmp(b));
    let mut scans_s = Vec::new();
    for _ in 0..a.scans {
        let t = Instant::now();
        let rows = c.simple_query(SCAN).await?;
        scans_s.push(t.elapsed().as_secs_f64());
        let count = rows.iter().find_map(|m| match m {
            tokio_postgres::SimpleQueryMessage::Row(r) => r.get(0).map(str::to_string),
            _ => None,
        });
        anyhow::ensure!(
            count.as_deref() == Some(a.rows.to_string().as_str()),
            "{system}: count(*) was {count:?}"
        );
    }
    let (index_build_s, indexed_ms) = indexed(system, &c, a).await?;
    Ok(Result {
        system,
        load_s,
        lookups_ms,
        scans_s,
        index_build_s,
        indexed_ms,
    })
}

/// Builds an index on `v` and times `SELECT id, s FROM bench_kv WHERE v = $1` through it.
async fn indexed(
    system: &str,
    c: &tokio_postgres::Client,
    a: &StorageArgs,
) -> anyhow::Result<(Option<f64>, Vec<f64>)> {
    if a.indexed_lookups == 0 {
        return Ok((None, Vec::new()));
    }
    let t = Instant::now();
    c.batch_execute("CREATE INDEX bench_kv_v ON bench_kv (v)")
        .await
        .with_context(|| format!("{system}: CREATE INDEX"))?;
    let build_s = t.elapsed().as_secs_f64();
    eprintln!("{system}: built the index on v in {build_s:.1} s");
    let stmt = c.prepare("SELECT id, s FROM bench_kv WHERE v = $1").await?;
    let mut rng = rand::rngs::StdRng::seed_from_u64(11);
    let mut ms_all = Vec::with_capacity(a.indexed_lookups);
    for i in 0..2 * a.indexed_lookups {
        let id: i64 = rng.random_range(1..=a.rows);
        let t = Instant::now();
        let rows = c.query(&stmt, &[&(id * 7)]).await?;
        let ms = t.elapsed().as_secs_f64() * 1e3;
        anyhow::ensure!(
            rows.len() == 1,
            "{system}: v {} found {} rows",
            id * 7,
            rows.len()
        );
        let got: i64 = rows[0].get(0);
        anyhow::ensure!(got == id, "{system}: v {} is row {got}, not {id}", id * 7);
        if i >= a.indexed_lookups {
            ms_all.push(ms);
        }
    }
    ms_all.sort_by(|a, b| a.total_cmp(b));
    Ok((Some(build_s), ms_all))
}

/// Raw DataFusion over one plain Parquet file of the same rows (sorted by id, default
/// writer settings).
async fn raw_datafusion(a: &StorageArgs, dir: &std::path::Path) -> anyhow::Result<Result> {
    let ctx = SessionContext::new_with_config(SessionConfig::new().with_target_partitions(2));
    let file = dir.join("plain.parquet");
    let t = Instant::now();
    ctx.sql(&format!(
        "COPY (SELECT value AS id, value * 7 AS v, concat('row ', value) AS s \
         FROM generate_series(1, {}) ORDER BY id) TO '{}' STORED AS PARQUET",
        a.rows,
        file.display()
    ))
    .await?
    .collect()
    .await?;
    let load_s = t.elapsed().as_secs_f64();
    ctx.register_parquet(
        "bench_kv",
        file.to_str().unwrap(),
        ParquetReadOptions::default(),
    )
    .await?;
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    let mut lookups_ms = Vec::new();
    for i in 0..a.datafusion_lookups + 20 {
        let id: i64 = rng.random_range(1..=a.rows);
        let t = Instant::now();
        let out = ctx
            .sql(&format!("SELECT v FROM bench_kv WHERE id = {id}"))
            .await?
            .collect()
            .await?;
        let ms = t.elapsed().as_secs_f64() * 1e3;
        anyhow::ensure!(out.iter().map(|b| b.num_rows()).sum::<usize>() == 1);
        if i >= 20 {
            lookups_ms.push(ms);
        }
    }
    lookups_ms.sort_by(|a, b| a.total_cmp(b));
    let mut scans_s = Vec::new();
    for _ in 0..a.scans {
        let t = Instant::now();
        ctx.sql(SCAN).await?.collect().await?;
        scans_s.push(t.elapsed().as_secs_f64());
    }
    Ok(Result {
        system: "DataFusion + Parquet (in-process)",
        load_s,
        lookups_ms,
        scans_s,
        index_build_s: None,
        indexed_ms: Vec::new(),
    })
}

/// Waits until weft has flushed the table and compaction has settled.
/// Waits until weft has moved every version of `table` out of its recent versions into
/// segments and its segment set has stopped changing: the state a read-heavy benchmark
/// measures.
pub(crate) async fn weft_settled(conn: &str, table: &str) -> anyhow::Result<()> {
    let c = connect(conn).await?;
    let deadline = Instant::now() + Duration::from_secs(1800);
    let mut last = String::new();
    let mut stable = 0;
    loop {
        let plan: String = c
            .simple_query(&format!("EXPLAIN SELECT * FROM {table}"))
            .await?
            .iter()
            .filter_map(|m| match m {
                tokio_postgres::SimpleQueryMessage::Row(r) => r.get(1).map(str::to_string),
                _ => None,
            })
            .collect();
        let state = plan
            .split("segments=")
            .nth(1)
            .unwrap_or_default()
            .to_string();
        if state.contains("recent_versions=0") && state == last {
            stable += 1;
            if stable >= 3 {
                eprintln!("weft: settled at segments={}", state.trim());
                return Ok(());
            }
        } else {
            stable = 0;
        }
        last = state;
        anyhow::ensure!(Instant::now() < deadline, "weft never settled: {plan}");
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
}

pub async fn storage(a: StorageArgs) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    let mut results = Vec::new();
    {
        let weft = weft_tests::Server::start_with(
            &dir.path().join("weft"),
            &[
                "--txn-rows-max",
                "10000000",
                "--txn-bytes-max",
                "4294967296",
                "--flush-age-max-s",
                "1",
            ],
        );
        let conn = weft.conn_string();
        results.push(over_wire("weft", &conn, &a, weft_settled(&conn, "bench_kv")).await?);
    }
    results.push(raw_datafusion(&a, dir.path()).await?);
    if !a.no_postgres {
        match weft_tests::PgServer::start() {
            Some(pg) => {
                let conn = pg.conn_string();
                let c = connect(&conn).await?;
                let settle = async move {
                    c.batch_execute("VACUUM ANALYZE bench_kv").await?;
                    Ok(())
                };
                results.push(over_wire("PostgreSQL 15", &conn, &a, settle).await?);
            }
            None => eprintln!("PostgreSQL 15 not found: skipping it"),
        }
    }
    println!(
        "| system | load s | lookup p50 ms | p99 ms | p99.9 ms | scan+aggregate s (median of {}) | rows/s | rows/s per core ({cores} cores) |",
        a.scans
    );
    println!("|---|---|---|---|---|---|---|---|");
    for r in &results {
        let scan = median(&r.scans_s);
        let rate = a.rows as f64 / scan;
        println!(
            "| {} | {:.1} | {:.3} | {:.3} | {:.3} | {:.3} | {:.0} | {:.0} |",
            r.system,
            r.load_s,
            pct(&r.lookups_ms, 0.5),
            pct(&r.lookups_ms, 0.99),
            pct(&r.lookups_ms, 0.999),
            scan,
            rate,
            rate / cores as f64
        );
    }
    let w = &results[0];
    for r in &results[1..] {
        println!(
            "weft / {}: lookup p50 {:.2}x the latency, p99 {:.2}x; scan {:.2}x the rows/s",
            r.system,
            pct(&w.lookups_ms, 0.5) / pct(&r.lookups_ms, 0.5),
            pct(&w.lookups_ms, 0.99) / pct(&r.lookups_ms, 0.99),
            median(&r.scans_s) / median(&w.scans_s),
        );
    }
    if a.indexed_lookups > 0 {
        println!();
        println!("| system | CREATE INDEX s | indexed lookup p50 ms | p99 ms | p99.9 ms |");
        println!("|---|---|---|---|---|");
        for r in results.iter().filter(|r| r.index_build_s.is_some()) {
            println!(
                "| {} | {:.1} | {:.3} | {:.3} | {:.3} |",
                r.system,
                r.index_build_s.unwrap_or(f64::NAN),
                pct(&r.indexed_ms, 0.5),
                pct(&r.indexed_ms, 0.99),
                pct(&r.indexed_ms, 0.999),
            );
        }
        for r in results[1..].iter().filter(|r| r.index_build_s.is_some()) {
            println!(
                "weft / {}: indexed lookup p50 {:.2}x the latency, p99 {:.2}x; index build {:.2}x the time",
                r.system,
                pct(&w.indexed_ms, 0.5) / pct(&r.indexed_ms, 0.5),
                pct(&w.indexed_ms, 0.99) / pct(&r.indexed_ms, 0.99),
                w.index_build_s.unwrap_or(f64::NAN) / r.index_build_s.unwrap_or(f64::NAN),
            );
        }
    }
    println!(
        "reproduce: weft bench storage --rows {} --chunk {} --lookups {} --datafusion-lookups {} --scans {} --indexed-lookups {}{}",
        a.rows,
        a.chunk,
        a.lookups,
        a.datafusion_lookups,
        a.scans,
        a.indexed_lookups,
        if a.no_postgres { " --no-postgres" } else { "" }
    );
    Ok(())
}
