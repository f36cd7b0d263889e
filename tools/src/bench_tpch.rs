//! `weft bench tpch`: the 22 TPC-H queries on weft, on PostgreSQL 15 and on DataFusion over
//! plain Parquet files of the same data, on the same machine in the same run.
//!
//! It generates the data with `tpchgen-cli` (CSV for the two servers, Parquet for
//! DataFusion), loads it into a `weft serve` of this build and a throwaway PostgreSQL with
//! `weft load`'s COPY path (a progress line per table), runs ANALYZE on PostgreSQL, waits
//! until weft has moved lineitem into segments, then runs each query `--runs` times on each
//! system (the fastest run counts) and checks that weft's rows equal PostgreSQL's, cell by
//! cell and in order (numbers by value). DataFusion's figure is the ceiling of weft's read
//! path: the same engine reading the same data without MVCC, the wire or a catalog.
//! A query that outlasts `--query-timeout-s` is cancelled and reported as such.
//! `--markdown` writes the tables, the machine and the command into docs/benchmarks.md.
#![allow(clippy::disallowed_methods)] // benchmarks measure real time

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Args;
use datafusion::prelude::{ParquetReadOptions, SessionContext};
use tokio_postgres::Client;
use weft_tests::tpch::{self, QUERIES, TABLES};

use crate::load::{copy_file, FileOptions};

#[derive(Args, Debug)]
pub struct TpchArgs {
    /// TPC-H scale factor (1 is about 1 GB of data, 6 million lineitem rows).
    #[arg(long, default_value = "1")]
    pub scale_factor: String,
    /// Keep the generated data here and reuse it when present (default: a temporary
    /// directory).
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// tpchgen-cli (default: WEFT_TPCHGEN, ~/.cache/weft-tools/venv/bin, or PATH).
    #[arg(long)]
    pub tpchgen: Option<PathBuf>,
    /// Runs of each query on each system; the fastest counts.
    #[arg(long, default_value_t = 2)]
    pub runs: usize,
    /// A query running longer than this is cancelled and reported as timed out.
    #[arg(long, default_value_t = 600)]
    pub query_timeout_s: u64,
    /// Rows per commit when loading weft (weft.copy_commit_rows).
    #[arg(long, default_value_t = 100_000)]
    pub commit_rows: u64,
    /// Skip PostgreSQL (then no results are checked).
    #[arg(long)]
    pub no_postgres: bool,
    /// Skip DataFusion over Parquet.
    #[arg(long)]
    pub no_datafusion: bool,
    /// Write the results into this Markdown file (between markers), e.g. docs/benchmarks.md.
    #[arg(long, num_args = 0..=1, default_missing_value = "docs/benchmarks.md")]
    pub markdown: Option<PathBuf>,
}

/// PostgreSQL's settings for an analytic run on this machine: memory for sorts and hashes
/// and a buffer pool that holds the data, as anyone running TPC-H on it would set them.
const PG_SETTINGS: [(&str, &str); 5] = [
    ("shared_buffers", "4GB"),
    ("work_mem", "256MB"),
    ("maintenance_work_mem", "1GB"),
    ("max_wal_size", "16GB"),
    ("effective_cache_size", "12GB"),
];

/// One query's outcome on one system.
enum Outcome {
    /// The fastest run and the rows of the first.
    Rows(Duration, Vec<Vec<Option<String>>>),
    /// DataFusion's fastest run and its row count.
    Count(Duration, usize),
    Failed(String),
    TimedOut,
    Skipped,
}

impl Outcome {
    fn time(&self) -> Option<Duration> {
        match self {
            Outcome::Rows(t, _) | Outcome::Count(t, _) => Some(*t),
            _ => None,
        }
    }

    fn cell(&self) -> String {
        match self {
            Outcome::Rows(t, _) | Outcome::Count(t, _) => secs(*t),
            Outcome::Failed(_) => "error".into(),
            Outcome::TimedOut => "timeout".into(),
            Outcome::Skipped => "-".into(),
        }
    }
}

fn secs(t: Duration) -> String {
    format!("{:.3}", t.as_secs_f64())
}

fn ratio(a: Option<Duration>, b: Option<Duration>) -> String {
    match (a, b) {
        (Some(a), Some(b)) if b.as_secs_f64() > 0.0 => {
            format!("{:.2}x", a.as_secs_f64() / b.as_secs_f64())
        }
        _ => "-".into(),
    }
}

async fn connect(conn: &str) -> anyhow::Result<Client> {
    let (c, conn) = tokio_postgres::connect(conn, tokio_postgres::NoTls).await?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    Ok(c)
}

/// Runs `sql` `runs` times on a server, cancelling a run that outlasts `timeout`.
async fn on_server(c: &Client, sql: &str, runs: usize, timeout: Duration) -> Outcome {
    let mut best: Option<(Duration, Vec<Vec<Option<String>>>)> = None;
    for _ in 0..runs.max(1) {
        let t = Instant::now();
        let got = match tokio::time::timeout(timeout, tpch::rows(c, sql)).await {
            Ok(got) => got,
            Err(_) => {
                let _ = c.cancel_token().cancel_query(tokio_postgres::NoTls).await;
                return Outcome::TimedOut;
            }
        };
        let took = t.elapsed();
        match got {
            Err(e) => return Outcome::Failed(e),
            Ok(rows) => {
                best = Some(match best {
                    Some((b, r)) => (b.min(took), r),
                    None => (took, rows),
                })
            }
        }
    }
    let (t, rows) = best.expect("at least one run");
    Outcome::Rows(t, rows)
}

async fn on_datafusion(ctx: &SessionContext, sql: &str, runs: usize, timeout: Duration) -> Outcome {
    let mut best: Option<(Duration, usize)> = None;
    for _ in 0..runs.max(1) {
        let t = Instant::now();
        let run = async {
            let batches = ctx.sql(sql).await?.collect().await?;
            Ok::<_, datafusion::error::DataFusionError>(
                batches.iter().map(|b| b.num_rows()).sum::<usize>(),
            )
        };
        match tokio::time::timeout(timeout, run).await {
            Err(_) => return Outcome::TimedOut,
            Ok(Err(e)) => return Outcome::Failed(e.to_string()),
            Ok(Ok(n)) => {
                let took = t.elapsed();
                best = Some(best.map_or((took, n), |(b, n)| (b.min(took), n)));
            }
        }
    }
    let (t, n) = best.expect("at least one run");
    Outcome::Count(t, n)
}

/// Loads every table's CSV into a server: (table, rows, time) per table.
async fn load(
    who: &str,
    c: &Client,
    data: &Path,
    settings: &str,
) -> anyhow::Result<Vec<(&'static str, u64, Duration)>> {
    c.batch_execute(tpch::SCHEMA)
        .await
        .context("create the TPC-H tables")?;
    if !settings.is_empty() {
        c.batch_execute(settings).await?;
    }
    let opts = FileOptions {
        who: format!("{who}: "),
        header: true,
        delimiter: ',',
    };
    let mut out = Vec::new();
    for t in TABLES {
        let started = Instant::now();
        let rows = copy_file(c, t, &data.join(format!("{t}.csv")), &opts).await?;
        out.push((t, rows, started.elapsed()));
    }
    Ok(out)
}

pub async fn tpch(a: TpchArgs) -> anyhow::Result<()> {
    let tmp = tempfile::tempdir()?;
    let data = a.data.clone().unwrap_or_else(|| tmp.path().join("tpch"));
    std::fs::create_dir_all(&data)?;
    let gen = a
        .tpchgen
        .clone()
        .or_else(tpch::tpchgen)
        .context("tpchgen-cli not found: pip install tpchgen-cli, or pass --tpchgen")?;
    let t = Instant::now();
    tpch::generate(&gen, &a.scale_factor, "csv", &data).map_err(anyhow::Error::msg)?;
    if !a.no_datafusion {
        tpch::generate(&gen, &a.scale_factor, "parquet", &data).map_err(anyhow::Error::msg)?;
    }
    eprintln!(
        "data: {} ({:.0} s)",
        data.display(),
        t.elapsed().as_secs_f64()
    );

    let weft = weft_tests::Server::start_with(&tmp.path().join("weft"), &[]);
    let pg = if a.no_postgres {
        None
    } else {
        crate::bench_oltp::ensure_postgres()?;
        weft_tests::PgServer::start_with(&PG_SETTINGS)
    };
    let w = connect(&weft.conn_string()).await?;
    let p = match &pg {
        Some(pg) => Some(connect(&pg.conn_string()).await?),
        None => None,
    };

    let mut out = String::new();
    let w_load = load(
        "weft",
        &w,
        &data,
        &format!("SET weft.copy_commit_rows = {}", a.commit_rows),
    )
    .await?;
    let p_load = match &p {
        Some(p) => {
            let l = load("PostgreSQL", p, &data, "").await?;
            let t = Instant::now();
            p.batch_execute("ANALYZE").await?;
            eprintln!("PostgreSQL: ANALYZE in {:.1} s", t.elapsed().as_secs_f64());
            Some(l)
        }
        None => None,
    };
    writeln!(out, "| table | rows | weft load s | weft rows/s | PostgreSQL load s | PostgreSQL rows/s | weft/PG rows/s |")?;
    writeln!(out, "|---|---|---|---|---|---|---|")?;
    let rate = |rows: u64, t: Duration| rows as f64 / t.as_secs_f64().max(1e-9);
    let mut totals = (0u64, Duration::ZERO, Duration::ZERO);
    for (i, (t, rows, wt)) in w_load.iter().enumerate() {
        let pt = p_load.as_ref().map(|l| l[i].2);
        totals.0 += rows;
        totals.1 += *wt;
        totals.2 += pt.unwrap_or_default();
        writeln!(
            out,
            "| {t} | {rows} | {} | {:.0} | {} | {} | {} |",
            secs(*wt),
            rate(*rows, *wt),
            pt.map(secs).unwrap_or_else(|| "-".into()),
            pt.map(|pt| format!("{:.0}", rate(*rows, pt)))
                .unwrap_or_else(|| "-".into()),
            pt.map(|pt| format!("{:.2}x", rate(*rows, *wt) / rate(*rows, pt)))
                .unwrap_or_else(|| "-".into()),
        )?;
    }
    writeln!(
        out,
        "| all | {} | {} | {:.0} | {} | {:.0} | {} |\n",
        totals.0,
        secs(totals.1),
        rate(totals.0, totals.1),
        secs(totals.2),
        rate(totals.0, totals.2),
        ratio(Some(totals.2), Some(totals.1)),
    )?;
    print!("{out}");

    let t = Instant::now();
    crate::bench_storage::weft_settled(&weft.conn_string(), "lineitem").await?;
    eprintln!("weft: settled in {:.0} s", t.elapsed().as_secs_f64());

    let ctx = SessionContext::new();
    if !a.no_datafusion {
        for t in TABLES {
            let path = data.join(format!("{t}.parquet"));
            ctx.register_parquet(
                t,
                path.to_string_lossy().as_ref(),
                ParquetReadOptions::default(),
            )
            .await?;
        }
    }

    let timeout = Duration::from_secs(a.query_timeout_s);
    let mut table = String::new();
    writeln!(table, "| query | rows | weft s | PostgreSQL s | DataFusion s | weft/PG | weft/DataFusion | weft = PG |")?;
    writeln!(table, "|---|---|---|---|---|---|---|---|")?;
    let mut equal = 0;
    let mut differences = Vec::new();
    let mut sums = [Duration::ZERO; 3];
    for (name, sql) in QUERIES {
        let wo = on_server(&w, sql, a.runs, timeout).await;
        let po = match &p {
            Some(p) => on_server(p, sql, a.runs, timeout).await,
            None => Outcome::Skipped,
        };
        let dfo = if a.no_datafusion {
            Outcome::Skipped
        } else {
            on_datafusion(&ctx, sql, a.runs, timeout).await
        };
        let verdict = match (&wo, &po) {
            (Outcome::Rows(_, got), Outcome::Rows(_, expected)) => {
                match tpch::same_rows(got, expected) {
                    Ok(()) => {
                        equal += 1;
                        "yes".to_string()
                    }
                    Err(e) => {
                        differences.push(format!("{name}: {e}"));
                        "NO".into()
                    }
                }
            }
            (Outcome::Failed(e), _) => {
                differences.push(format!("{name}: weft failed: {e}"));
                "NO".into()
            }
            _ => "-".into(),
        };
        let rows = match (&wo, &po) {
            (_, Outcome::Rows(_, r)) | (Outcome::Rows(_, r), _) => r.len().to_string(),
            _ => "-".into(),
        };
        let rows = match &dfo {
            Outcome::Count(_, n) if n.to_string() != rows => format!("{rows} (DataFusion {n})"),
            _ => rows,
        };
        for (s, o) in sums.iter_mut().zip([&wo, &po, &dfo]) {
            *s += o.time().unwrap_or_default();
        }
        let line = format!(
            "| {name} | {rows} | {} | {} | {} | {} | {} | {verdict} |",
            wo.cell(),
            po.cell(),
            dfo.cell(),
            ratio(wo.time(), po.time()),
            ratio(wo.time(), dfo.time()),
        );
        eprintln!("{line}");
        writeln!(table, "{line}")?;
    }
    writeln!(
        table,
        "| total | | {} | {} | {} | {} | {} | {equal}/22 |",
        secs(sums[0]),
        secs(sums[1]),
        secs(sums[2]),
        ratio(Some(sums[0]), Some(sums[1])),
        ratio(Some(sums[0]), Some(sums[2])),
    )?;
    print!("\n{table}");
    for d in &differences {
        println!("{d}");
    }
    let command = format!(
        "weft bench tpch --scale-factor {} --runs {} --query-timeout-s {} --commit-rows {}{}{}",
        a.scale_factor,
        a.runs,
        a.query_timeout_s,
        a.commit_rows,
        if a.no_postgres { " --no-postgres" } else { "" },
        if a.no_datafusion {
            " --no-datafusion"
        } else {
            ""
        },
    );
    println!("reproduce: {command}");
    if let Some(path) = &a.markdown {
        let body = format!(
            "Machine: {}. Run {} (UTC). PostgreSQL 15 with {}.\n\n\
             ```sh\ncargo build --release -p weft\ntarget/release/{command}\n```\n\n\
             Loads (COPY FROM STDIN of tpchgen-cli's CSV, `weft load`'s path):\n\n{out}\
             Queries (fastest of {} runs; DataFusion reads tpchgen-cli's Parquet files):\n\n{table}\n{}",
            crate::report::machine(),
            crate::report::utc_now(),
            PG_SETTINGS
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join(", "),
            a.runs,
            differences
                .iter()
                .map(|d| format!("- {d}\n"))
                .collect::<String>(),
        );
        crate::report::write_section(
            path,
            "tpch",
            "TPC-H (weft beside PostgreSQL 15 and DataFusion)",
            &body,
        )?;
        eprintln!("wrote the results into {}", path.display());
    }
    anyhow::ensure!(
        differences.is_empty(),
        "{} of 22 queries differ from PostgreSQL",
        differences.len()
    );
    Ok(())
}
