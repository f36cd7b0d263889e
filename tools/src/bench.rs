//! `weft bench`: benchmarks that print their figures and the command that reproduces them.
//!
//! - `weft bench adjudicator`: conflict checks per second on one core (check + record of a
//!   transaction's write set against a conflict table in its steady state).
//! - `weft bench commits`: end-to-end commits per second and commit latency percentiles at
//!   several client counts, against a `weft serve` this command starts on a temporary data
//!   directory, and side by side against a throwaway PostgreSQL 15 (fsync on,
//!   synchronous_commit on) when it is installed.
//! - `weft bench cluster-sim`: a deterministic model of the cluster (see
//!   weft::cluster_sim) at growing sizes and with a node lost.
//! - `weft bench journal`: group commit alone (commits/s, latency percentiles) on local disk
//!   and on an S3-compatible server, beside one fsync and one PUT (see bench_journal.rs).
//! - `weft bench storage`: point lookups and scan + aggregate on a 10-million-row table,
//!   beside raw DataFusion over plain Parquet and PostgreSQL 15 (see bench_storage.rs).
//! - `weft bench oltp`: pgbench workloads and idle connections' memory, beside PostgreSQL
//!   15 (see bench_oltp.rs).
//! - `weft bench tpch`: the 22 TPC-H queries and the loads, beside PostgreSQL 15 and
//!   DataFusion over Parquet (see bench_tpch.rs).
#![allow(clippy::disallowed_methods)] // benchmarks measure real time

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::{Args, Subcommand};
use rand::{Rng, SeedableRng};
use weft_journal::conflict::{full_key, Check, ConflictTable};

#[derive(Subcommand, Debug)]
pub enum BenchCommand {
    /// Conflict checks per second on one core.
    Adjudicator(AdjudicatorArgs),
    /// End-to-end commits per second and latency, weft beside PostgreSQL.
    Commits(CommitsArgs),
    /// Crossbar merge rate, catch-up read engines, and the stall experiment.
    Crossbar(CrossbarArgs),
    /// A deterministic model of weft as a cluster (frontends, storage nodes, adjudicator
    /// shards, journals, network hops, a node's loss): throughput and latency as nodes are
    /// added.
    ClusterSim(crate::bench_cluster_sim::ClusterSimArgs),
    /// Group commit on local disk and S3 next to one fsync and one PUT.
    Journal(crate::bench_journal::JournalArgs),
    /// Point lookups and full scans on a large table: weft, raw DataFusion over Parquet,
    /// PostgreSQL.
    Storage(crate::bench_storage::StorageArgs),
    /// pgbench workloads (point select, update, insert, TPC-B-like, transfer) and idle
    /// connections' memory: weft beside PostgreSQL 15.
    Oltp(crate::bench_oltp::OltpArgs),
    /// The 22 TPC-H queries: weft beside PostgreSQL 15 and DataFusion over Parquet, results
    /// checked against PostgreSQL's, and the loads' rates.
    Tpch(crate::bench_tpch::TpchArgs),
}

#[derive(Args, Debug)]
pub struct CrossbarArgs {
    /// Records merged per journal count.
    #[arg(long, default_value_t = 10_000_000)]
    pub records: u64,
    /// Simulated commits per second in the stall experiment.
    #[arg(long, default_value_t = 1_000_000)]
    pub rate: u64,
    /// Simulated seconds per stall-experiment run.
    #[arg(long, default_value_t = 10)]
    pub seconds: u64,
    /// Journal objects written and read back to compare the read engines.
    #[arg(long, default_value_t = 2_000)]
    pub objects: usize,
}

#[derive(Args, Debug)]
pub struct AdjudicatorArgs {
    /// Keys in each transaction's write set.
    #[arg(long, default_value_t = 10)]
    pub keys: usize,
    /// Transactions to check.
    #[arg(long, default_value_t = 2_000_000)]
    pub txns: usize,
    /// Distinct keys the write sets are drawn from.
    #[arg(long, default_value_t = 10_000_000)]
    pub key_space: u64,
    /// Entries the conflict table holds before it prunes (the server's default).
    #[arg(long, default_value_t = 1 << 20)]
    pub table_max: usize,
}

#[derive(Args, Debug)]
pub struct CommitsArgs {
    /// Client counts to run, comma-separated.
    #[arg(long, default_value = "1,8,64", value_delimiter = ',')]
    pub clients: Vec<usize>,
    /// Seconds to run each client count.
    #[arg(long, default_value_t = 10)]
    pub seconds: u64,
    /// Distinct rows the clients write (uniformly: few conflicts).
    #[arg(long, default_value_t = 100_000)]
    pub rows: i64,
    /// Skip the PostgreSQL side.
    #[arg(long)]
    pub no_postgres: bool,
}

pub fn run(cmd: BenchCommand, runtime: &tokio::runtime::Runtime) -> anyhow::Result<()> {
    match cmd {
        BenchCommand::Adjudicator(a) => {
            adjudicator(&a);
            Ok(())
        }
        BenchCommand::Commits(a) => runtime.block_on(commits(a)),
        BenchCommand::Crossbar(a) => crossbar(&a),
        BenchCommand::ClusterSim(a) => {
            crate::bench_cluster_sim::cluster_sim(&a);
            Ok(())
        }
        BenchCommand::Journal(a) => runtime.block_on(crate::bench_journal::journal(a)),
        BenchCommand::Storage(a) => runtime.block_on(crate::bench_storage::storage(a)),
        BenchCommand::Oltp(a) => runtime.block_on(crate::bench_oltp::oltp(a)),
        BenchCommand::Tpch(a) => runtime.block_on(crate::bench_tpch::tpch(a)),
    }
}

/// Merges `records` timestamps spread over `journals`, delivered in batches of `batch` per
/// journal with a watermark each, `run` consecutive timestamps per journal at a time.
fn merge_rate(journals: usize, records: u64, run: u64, batch: usize) -> f64 {
    use weft_crossbar::Merger;
    let mut m: Merger<u64> = Merger::new(journals, 0);
    let mut per: Vec<Vec<u64>> = vec![Vec::with_capacity(batch); journals];
    let mut out = Vec::with_capacity(batch * journals);
    let mut merged = 0u64;
    let start = Instant::now();
    let mut ts = 1u64;
    while ts <= records {
        // Fill one round of batches.
        for p in per.iter_mut() {
            p.clear();
        }
        let round_end = (ts + (batch * journals) as u64).min(records + 1);
        while ts < round_end {
            let j = ((ts / run) as usize) % journals;
            per[j].push(ts);
            ts += 1;
        }
        let wm = ts - 1;
        for (j, p) in per.iter_mut().enumerate() {
            m.push(j, p.drain(..), wm);
        }
        out.clear();
        m.release_into(&mut out);
        merged += out.len() as u64;
    }
    assert_eq!(merged, records, "every record is released once");
    records as f64 / start.elapsed().as_secs_f64()
}

fn crossbar(a: &CrossbarArgs) -> anyhow::Result<()> {
    println!("## Merge rate (one core, 8-byte records, batches of 256 per journal)\n");
    println!("| journals | interleaved (round robin per commit) | runs of 64 per journal |");
    println!("|---|---|---|");
    for n in [2usize, 8, 40, 64] {
        let inter = merge_rate(n, a.records, 1, 256);
        let runs = merge_rate(n, a.records, 64, 256);
        println!(
            "| {n} | {:.1} M records/s | {:.1} M records/s |",
            inter / 1e6,
            runs / 1e6
        );
    }

    println!("\n## Catch-up reads of local journal objects\n");
    let dir = tempfile::tempdir()?;
    let mut paths = Vec::new();
    let body: Vec<u8> = (0..64 * 1024).map(|i| (i * 7) as u8).collect();
    for i in 0..a.objects {
        let p = dir.path().join(format!("{i:020}.wj"));
        std::fs::write(&p, &body)?;
        paths.push(p);
    }
    let mb = (a.objects * body.len()) as f64 / (1 << 20) as f64;
    let mut engines: Vec<std::sync::Arc<dyn weft_crossbar::io::ReadEngine>> =
        vec![std::sync::Arc::new(weft_crossbar::io::StdReads)];
    match weft_crossbar::io::UringReads::probe(64) {
        Some(u) => engines.push(std::sync::Arc::new(u)),
        None => println!("(io_uring is unavailable on this machine)"),
    }
    println!("| engine | objects/s | MiB/s |");
    println!("|---|---|---|");
    for e in engines {
        let _ = e.read_files(&paths)?; // warm the page cache alike for both
        let t = Instant::now();
        let rounds = 5;
        for _ in 0..rounds {
            let got = e.read_files(&paths)?;
            assert_eq!(got.len(), paths.len());
        }
        let s = t.elapsed().as_secs_f64() / rounds as f64;
        println!(
            "| {} | {:.0} | {:.0} |",
            e.name(),
            a.objects as f64 / s,
            mb / s
        );
    }

    println!(
        "\n## The stall experiment: 40 journals, {} commits/s offered, {} s\n",
        a.rate, a.seconds
    );
    println!("| stalls | a stuck write | stalls injected | delivered/s (mean) | worst second | p50 ms | p99 ms | p99.9 ms | max ms | ordered, complete |");
    println!("|---|---|---|---|---|---|---|---|---|---|");
    use weft_crossbar::sim::{simulate, SimConfig};
    let runs = [
        ("none", 0.0, 0),
        ("1 s, every 60 s per journal", 60.0, 0),
        ("1 s, every 60 s per journal", 60.0, 50),
        ("1 s, every 10 s per journal", 10.0, 0),
        ("1 s, every 10 s per journal", 10.0, 50),
    ];
    for (label, every, preempt) in runs {
        let r = simulate(&SimConfig {
            journals: 40,
            rate: a.rate,
            seconds: a.seconds,
            stall_every_s: every,
            stall_ms: 1000,
            preempt_after_ms: preempt,
            seed: 42,
            ..Default::default()
        });
        println!(
            "| {label} | {} | {} | {:.0} | {} | {:.1} | {:.1} | {:.1} | {:.1} | {} |",
            if preempt > 0 {
                format!("preempt after {preempt} ms ({} retried)", r.retried)
            } else {
                "wait for the stalled write".to_string()
            },
            r.stalls,
            r.throughput(),
            r.worst_second(a.seconds),
            r.p50_ms,
            r.p99_ms,
            r.p999_ms,
            r.max_ms,
            if r.ordered && r.delivered == r.arrived {
                "yes"
            } else {
                "NO"
            }
        );
    }
    println!(
        "\nreproduce: weft bench crossbar --records {} --rate {} --seconds {} --objects {}",
        a.records, a.rate, a.seconds, a.objects
    );
    Ok(())
}

fn adjudicator(a: &AdjudicatorArgs) {
    let mut rng = rand::rngs::StdRng::seed_from_u64(1);
    let mut table = ConflictTable::with_max(a.table_max);
    let mut ts: u64 = 1_000_000;
    // Warm up to the steady state: a table at its size bound.
    let fill = a.table_max.min(a.key_space as usize);
    for i in 0..fill as u64 {
        table.record(i + 1, vec![full_key(1 << 16, &i.to_be_bytes())], &[1 << 16]);
    }
    let write_sets: Vec<Vec<Vec<u8>>> = (0..a.txns.min(200_000))
        .map(|_| {
            (0..a.keys)
                .map(|_| full_key(1 << 16, &rng.random_range(0..a.key_space).to_be_bytes()))
                .collect()
        })
        .collect();
    let tables = [1u64 << 16];
    let mut conflicts = 0u64;
    let mut lat = Vec::with_capacity(a.txns / 1000 + 1);
    let start = Instant::now();
    let mut chunk = Instant::now();
    for i in 0..a.txns {
        let written = write_sets[i % write_sets.len()].clone();
        ts += 1;
        // Transactions started a little while ago: a realistic window for conflicts.
        let check = Check {
            start_ts: ts - 50,
            written: &written,
            ..Default::default()
        };
        if table.check(&check).is_err() {
            conflicts += 1;
        } else {
            table.record(ts, written, &tables);
        }
        if i % 1000 == 999 {
            lat.push(chunk.elapsed().as_nanos() as u64 / 1000);
            chunk = Instant::now();
        }
    }
    let secs = start.elapsed().as_secs_f64();
    lat.sort_unstable();
    let pct = |p: f64| lat[((lat.len() as f64 * p) as usize).min(lat.len() - 1)];
    println!(
        "adjudicator: {} transactions of {} keys in {:.2} s on one core: {:.0} checks/s \
         ({} conflicts); per check p50 {} ns, p99 {} ns, p99.9 {} ns (means of 1,000)",
        a.txns,
        a.keys,
        secs,
        a.txns as f64 / secs,
        conflicts,
        pct(0.5),
        pct(0.99),
        pct(0.999)
    );
    println!(
        "reproduce: weft bench adjudicator --keys {} --txns {} --key-space {} --table-max {}",
        a.keys, a.txns, a.key_space, a.table_max
    );
}

struct Figures {
    commits: usize,
    secs: f64,
    lat_us: Vec<u64>,
    conflicts: usize,
}

impl Figures {
    fn tps(&self) -> f64 {
        self.commits as f64 / self.secs
    }
    fn pct(&self, p: f64) -> f64 {
        if self.lat_us.is_empty() {
            return f64::NAN;
        }
        let i = ((self.lat_us.len() as f64 * p) as usize).min(self.lat_us.len() - 1);
        self.lat_us[i] as f64 / 1000.0
    }
}

async fn connect(conn: &str) -> anyhow::Result<tokio_postgres::Client> {
    let (c, conn) = tokio_postgres::connect(conn, tokio_postgres::NoTls).await?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    Ok(c)
}

/// Single-row upserts, one per transaction, from `clients` connections for `seconds`.
async fn drive(conn: &str, clients: usize, seconds: u64, rows: i64) -> anyhow::Result<Figures> {
    let setup = connect(conn).await?;
    setup
        .batch_execute(
            "DROP TABLE IF EXISTS bench_kv; \
             CREATE TABLE bench_kv (k bigint PRIMARY KEY, v bigint NOT NULL)",
        )
        .await?;
    let stop = Arc::new(AtomicBool::new(false));
    let mut tasks = Vec::new();
    for n in 0..clients {
        let c = connect(conn).await?;
        let stop = stop.clone();
        tasks.push(tokio::spawn(async move {
            let stmt = c
                .prepare(
                    "INSERT INTO bench_kv (k, v) VALUES ($1, $2) \
                     ON CONFLICT (k) DO UPDATE SET v = excluded.v",
                )
                .await?;
            let mut rng = rand::rngs::StdRng::seed_from_u64(n as u64);
            let mut lat = Vec::new();
            let mut conflicts = 0;
            while !stop.load(Ordering::Relaxed) {
                let k: i64 = rng.random_range(0..rows);
                let t = Instant::now();
                match c.execute(&stmt, &[&k, &(n as i64)]).await {
                    Ok(_) => lat.push(t.elapsed().as_micros() as u64),
                    Err(e) if e.code().is_some_and(|c| c.code() == "40001") => conflicts += 1,
                    Err(e) => return Err(anyhow::anyhow!(e)),
                }
            }
            Ok::<_, anyhow::Error>((lat, conflicts))
        }));
    }
    let start = Instant::now();
    tokio::time::sleep(Duration::from_secs(seconds)).await;
    stop.store(true, Ordering::Relaxed);
    let mut all = Vec::new();
    let mut conflicts = 0;
    for t in tasks {
        let (l, c) = t.await??;
        all.extend(l);
        conflicts += c;
    }
    let secs = start.elapsed().as_secs_f64();
    all.sort_unstable();
    Ok(Figures {
        commits: all.len(),
        secs,
        lat_us: all,
        conflicts,
    })
}

async fn commits(a: CommitsArgs) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let weft = weft_tests::Server::start_with(&dir.path().join("data"), &[]);
    let pg = if a.no_postgres {
        None
    } else {
        weft_tests::PgServer::start()
    };
    println!(
        "| clients | system | commits/s | p50 ms | p99 ms | p99.9 ms | max ms | 40001 | weft/PG commits/s |"
    );
    println!("|---|---|---|---|---|---|---|---|---|");
    for &n in &a.clients {
        let w = drive(&weft.conn_string(), n, a.seconds, a.rows).await?;
        let p = match &pg {
            Some(pg) => Some(drive(&pg.conn_string(), n, a.seconds, a.rows).await?),
            None => None,
        };
        let row = |name: &str, f: &Figures, ratio: String| {
            println!(
                "| {n} | {name} | {:.0} | {:.2} | {:.2} | {:.2} | {:.2} | {} | {ratio} |",
                f.tps(),
                f.pct(0.5),
                f.pct(0.99),
                f.pct(0.999),
                f.pct(1.0),
                f.conflicts
            )
        };
        let ratio = p
            .as_ref()
            .map(|p| format!("{:.2}x", w.tps() / p.tps()))
            .unwrap_or_default();
        row("weft", &w, ratio);
        if let Some(p) = &p {
            row("PostgreSQL 15", p, String::new());
        }
    }
    println!(
        "reproduce: weft bench commits --clients {} --seconds {} --rows {}{}",
        a.clients
            .iter()
            .map(|c| c.to_string())
            .collect::<Vec<_>>()
            .join(","),
        a.seconds,
        a.rows,
        if a.no_postgres { " --no-postgres" } else { "" }
    );
    Ok(())
}
