//! `weft bench oltp`: weft beside PostgreSQL 15 under pgbench, on the same machine in the
//! same run.
//!
//! It starts a throwaway `weft serve` (embedded, local disk, default settings) and a
//! throwaway PostgreSQL 15 (`initdb` in a temporary directory, its own port, fsync and
//! synchronous_commit on, defaults otherwise; installed from Debian when missing), creates
//! and loads the same TPC-B-like tables in both, and drives both with pgbench running the
//! same custom scripts (`-n -f`, `-M prepared`, `--max-tries` for 40001 and 40P01) at each
//! client count. Latency percentiles come from pgbench's per-transaction log, and the CPU
//! time each server spent per transaction (every process and thread, from /proc) is
//! measured around each run. Then it holds idle connections open against each and reports
//! resident memory per connection.
//!
//! `--markdown` writes the tables, the machine and the command into `docs/benchmarks.md`,
//! between markers, replacing the previous run's.
#![allow(clippy::disallowed_methods)] // benchmarks measure real time

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Args;

#[derive(Args, Debug)]
pub struct OltpArgs {
    /// Client counts, comma-separated.
    #[arg(long, default_value = "1,8,32", value_delimiter = ',')]
    pub clients: Vec<usize>,
    /// Seconds per workload and client count, per system.
    #[arg(long, default_value_t = 10)]
    pub seconds: u64,
    /// Workloads, comma-separated: point-select, range (ten rows by primary key), join (an
    /// account with its branch), update, insert, tpcb, transfer.
    #[arg(
        long,
        default_value = "point-select,range,join,update,insert,tpcb,transfer",
        value_delimiter = ','
    )]
    pub workloads: Vec<String>,
    /// Branches (TPC-B's scale); tellers are 10 per branch.
    #[arg(long, default_value_t = 100)]
    pub branches: u64,
    /// Accounts per branch (pgbench uses 100,000; fewer keep the load short).
    #[arg(long, default_value_t = 10_000)]
    pub accounts_per_branch: u64,
    /// Idle connection counts to measure memory at, comma-separated (0: skip).
    #[arg(long, default_value = "1000,10000", value_delimiter = ',')]
    pub idle: Vec<usize>,
    /// Skip PostgreSQL.
    #[arg(long)]
    pub no_postgres: bool,
    /// Also drive a separate `weft frontend` process over the same `weft serve` (its
    /// storage and adjudicator over RPC), and report it beside the embedded frontend: the
    /// cost of the process boundary.
    #[arg(long)]
    pub frontend: bool,
    /// Write the results into this Markdown file (between markers), e.g. docs/benchmarks.md.
    #[arg(long, num_args = 0..=1, default_missing_value = "docs/benchmarks.md")]
    pub markdown: Option<PathBuf>,
}

/// The pgbench scripts. Both systems run exactly these.
fn script(workload: &str) -> anyhow::Result<&'static str> {
    Ok(match workload {
        "point-select" => {
            "\\set aid random(1, :naccounts)\n\
             SELECT abalance FROM bench_accounts WHERE aid = :aid;\n"
        }
        // Statements no fast path answers: DataFusion plans and runs them.
        "range" => {
            "\\set aid random(1, :naccounts - 9)\n\
             SELECT aid, abalance FROM bench_accounts WHERE aid BETWEEN :aid AND :aid + 9;\n"
        }
        "join" => {
            "\\set aid random(1, :naccounts)\n\
             SELECT a.abalance, b.bbalance FROM bench_accounts a \
             JOIN bench_branches b ON a.bid = b.bid WHERE a.aid = :aid;\n"
        }
        "update" => {
            "\\set aid random(1, :naccounts)\n\
             \\set delta random(-5000, 5000)\n\
             UPDATE bench_accounts SET abalance = abalance + :delta WHERE aid = :aid;\n"
        }
        "insert" => {
            "\\set hid random(1, 9223372036854775806)\n\
             \\set aid random(1, :naccounts)\n\
             \\set delta random(-5000, 5000)\n\
             INSERT INTO bench_history (hid, tid, bid, aid, delta, mtime) \
             VALUES (:hid, 0, 0, :aid, :delta, CURRENT_TIMESTAMP);\n"
        }
        "tpcb" => {
            "\\set aid random(1, :naccounts)\n\
             \\set bid random(1, :nbranches)\n\
             \\set tid random(1, :ntellers)\n\
             \\set delta random(-5000, 5000)\n\
             \\set hid random(1, 9223372036854775806)\n\
             BEGIN;\n\
             UPDATE bench_accounts SET abalance = abalance + :delta WHERE aid = :aid;\n\
             SELECT abalance FROM bench_accounts WHERE aid = :aid;\n\
             UPDATE bench_tellers SET tbalance = tbalance + :delta WHERE tid = :tid;\n\
             UPDATE bench_branches SET bbalance = bbalance + :delta WHERE bid = :bid;\n\
             INSERT INTO bench_history (hid, tid, bid, aid, delta, mtime) \
             VALUES (:hid, :tid, :bid, :aid, :delta, CURRENT_TIMESTAMP);\n\
             END;\n"
        }
        "transfer" => {
            "\\set src random(1, :naccounts)\n\
             \\set dst random(1, :naccounts)\n\
             \\set amount random(1, 100)\n\
             BEGIN;\n\
             SELECT abalance FROM bench_accounts WHERE aid = :src;\n\
             SELECT abalance FROM bench_accounts WHERE aid = :dst;\n\
             UPDATE bench_accounts SET abalance = abalance - :amount WHERE aid = :src;\n\
             UPDATE bench_accounts SET abalance = abalance + :amount WHERE aid = :dst;\n\
             END;\n"
        }
        other => anyhow::bail!(
            "unknown workload {other:?}: point-select, range, join, update, insert, tpcb or \
             transfer"
        ),
    })
}

const SCHEMA: &str = "\
DROP TABLE IF EXISTS bench_branches;
DROP TABLE IF EXISTS bench_tellers;
DROP TABLE IF EXISTS bench_accounts;
DROP TABLE IF EXISTS bench_history;
CREATE TABLE bench_branches (bid int PRIMARY KEY, bbalance bigint NOT NULL, filler text);
CREATE TABLE bench_tellers (tid int PRIMARY KEY, bid int NOT NULL, tbalance bigint NOT NULL, filler text);
CREATE TABLE bench_accounts (aid int PRIMARY KEY, bid int NOT NULL, abalance bigint NOT NULL, filler text);
CREATE TABLE bench_history (hid bigint PRIMARY KEY, tid int, bid int, aid int, delta int, mtime timestamp, filler text);
";

/// Rows per loading transaction (within weft's default transaction limits).
const LOAD_CHUNK: u64 = 25_000;

/// One pgbench run's figures.
#[derive(Debug, Default, Clone)]
pub struct Run {
    pub tps: f64,
    pub transactions: u64,
    pub failed: u64,
    pub retried: u64,
    /// Latencies of the successful transactions, microseconds, sorted.
    pub lat_us: Vec<u64>,
    /// CPU time the server spent per transaction (all its processes and threads, from
    /// /proc), microseconds.
    pub cpu_us_per_txn: Option<f64>,
    /// weft's group commits during the run, from its metrics endpoint: commit records per
    /// journal batch, and the mean time a batch took to become durable (ms).
    pub journal: Option<(f64, f64)>,
}

impl Run {
    pub fn pct_ms(&self, p: f64) -> f64 {
        if self.lat_us.is_empty() {
            return f64::NAN;
        }
        let i = ((self.lat_us.len() as f64 * p).ceil() as usize).clamp(1, self.lat_us.len()) - 1;
        self.lat_us[i] as f64 / 1000.0
    }
}

struct Target {
    name: &'static str,
    host: String,
    port: u16,
    /// The server's processes (PostgreSQL's postmaster; weft's frontend and the process
    /// that serves it), for their CPU time.
    pids: Vec<u32>,
    /// Serves the database of the target before it (loaded once, through that one).
    shares_previous: bool,
    /// weft's metrics endpoint (`host:port`).
    metrics: Option<String>,
}

fn targets_of(
    weft: &weft_tests::Server,
    metrics_port: Option<u16>,
    pg: Option<&weft_tests::PgServer>,
    frontend: Option<&weft_tests::Server>,
) -> Vec<Target> {
    let metrics = metrics_port.map(|p| format!("127.0.0.1:{p}"));
    let mut targets = vec![Target {
        name: "weft",
        host: "127.0.0.1".into(),
        port: weft.port,
        pids: weft.pid().into_iter().collect(),
        shares_previous: false,
        metrics: metrics.clone(),
    }];
    if let Some(pg) = pg {
        targets.push(Target {
            name: "PostgreSQL 15",
            host: "127.0.0.1".into(),
            port: pg.port,
            pids: pg.pid().into_iter().collect(),
            shares_previous: false,
            metrics: None,
        });
    }
    if let Some(f) = frontend {
        targets.push(Target {
            name: "weft frontend",
            host: "127.0.0.1".into(),
            port: f.port,
            pids: f.pid().into_iter().chain(weft.pid()).collect(),
            shares_previous: true,
            metrics,
        });
    }
    targets
}

async fn connect(host: &str, port: u16) -> anyhow::Result<tokio_postgres::Client> {
    let conn = format!("host={host} port={port} user=postgres dbname=postgres");
    let (c, conn) = tokio_postgres::connect(&conn, tokio_postgres::NoTls).await?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    Ok(c)
}

async fn load(t: &Target, a: &OltpArgs) -> anyhow::Result<f64> {
    let c = connect(&t.host, t.port).await?;
    c.batch_execute(SCHEMA).await.context("create tables")?;
    let started = Instant::now();
    let filler = "repeat(' ', 84)";
    c.batch_execute(&format!(
        "INSERT INTO bench_branches SELECT x, 0, {filler} FROM generate_series(1, {}) AS g(x)",
        a.branches
    ))
    .await?;
    c.batch_execute(&format!(
        "INSERT INTO bench_tellers SELECT x, (x - 1) / 10 + 1, 0, {filler} \
         FROM generate_series(1, {}) AS g(x)",
        a.branches * 10
    ))
    .await?;
    let accounts = a.branches * a.accounts_per_branch;
    let mut lo = 1;
    while lo <= accounts {
        let hi = (lo + LOAD_CHUNK - 1).min(accounts);
        c.batch_execute(&format!(
            "INSERT INTO bench_accounts SELECT x, (x - 1) / {} + 1, 0, {filler} \
             FROM generate_series({lo}, {hi}) AS g(x)",
            a.accounts_per_branch
        ))
        .await
        .with_context(|| format!("{}: loading accounts {lo}..{hi}", t.name))?;
        lo = hi + 1;
    }
    if t.name == "PostgreSQL 15" {
        c.batch_execute("VACUUM ANALYZE").await?;
    }
    Ok(started.elapsed().as_secs_f64())
}

/// Sums that the workloads keep: tellers and branches move by the same deltas (tpcb), and a
/// transfer moves money between accounts without creating any.
async fn balances(t: &Target) -> anyhow::Result<(i64, i64, i64)> {
    let c = connect(&t.host, t.port).await?;
    // Through the simple protocol, as text: sum(bigint) is numeric in PostgreSQL.
    let rows = c
        .simple_query(
            "SELECT (SELECT sum(abalance) FROM bench_accounts), \
                    (SELECT sum(tbalance) FROM bench_tellers), \
                    (SELECT sum(bbalance) FROM bench_branches)",
        )
        .await?;
    let row = rows
        .iter()
        .find_map(|m| match m {
            tokio_postgres::SimpleQueryMessage::Row(r) => Some(r),
            _ => None,
        })
        .context("no balances row")?;
    let get = |i: usize| -> anyhow::Result<i64> {
        Ok(row.get(i).map(str::parse).transpose()?.unwrap_or(0))
    };
    Ok((get(0)?, get(1)?, get(2)?))
}

fn pgbench_bin(pg_bin: Option<&Path>) -> PathBuf {
    pg_bin
        .map(|b| b.join("pgbench"))
        .filter(|p| p.exists())
        .unwrap_or_else(|| PathBuf::from("pgbench"))
}

fn pgbench(
    bin: &Path,
    t: &Target,
    workload: &str,
    clients: usize,
    a: &OltpArgs,
) -> anyhow::Result<Run> {
    let dir = tempfile::tempdir()?;
    let file = dir.path().join(format!("{workload}.sql"));
    std::fs::write(&file, script(workload)?)?;
    let prefix = dir.path().join("log");
    let accounts = a.branches * a.accounts_per_branch;
    let cpu_of = |pids: &[u32]| -> anyhow::Result<Option<f64>> {
        if pids.is_empty() {
            return Ok(None);
        }
        let mut sum = 0.0;
        for &p in pids {
            sum += tree_cpu_seconds(p)?;
        }
        Ok(Some(sum))
    };
    let cpu_before = cpu_of(&t.pids)?;
    let journal_before = t.metrics.as_deref().map(journal_counters).transpose()?;
    let out = Command::new(bin)
        // Both servers unencrypted (weft offers TLS by default, this PostgreSQL does not).
        .env("PGSSLMODE", "disable")
        .args(["-n", "-M", "prepared", "--max-tries", "100", "-l"])
        .arg(format!("--log-prefix={}", prefix.display()))
        .arg("-f")
        .arg(&file)
        .args(["-c", &clients.to_string()])
        .args(["-j", &clients.min(2).to_string()])
        .args(["-T", &a.seconds.to_string()])
        .args(["-D", &format!("naccounts={accounts}")])
        .args(["-D", &format!("nbranches={}", a.branches)])
        .args(["-D", &format!("ntellers={}", a.branches * 10)])
        .args(["-h", &t.host, "-p", &t.port.to_string(), "-U", "postgres"])
        .arg("postgres")
        .output()
        .context("run pgbench (is PostgreSQL 15's pgbench installed?)")?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    anyhow::ensure!(
        out.status.success(),
        "{}: pgbench {workload} with {clients} clients failed: {}\n{stdout}\n{stderr}",
        t.name,
        out.status
    );
    let field = |label: &str| -> Option<f64> {
        stdout.lines().find_map(|l| {
            let rest = l.trim().strip_prefix(label)?;
            rest.split_whitespace().next()?.parse().ok()
        })
    };
    // PostgreSQL's backends have exited (pgbench disconnected) and been reaped into the
    // postmaster's children's time, or are about to be: give them a moment.
    std::thread::sleep(Duration::from_millis(300));
    let cpu = match (cpu_before, cpu_of(&t.pids)?) {
        (Some(b), Some(a)) => Some(a - b),
        _ => None,
    };
    let transactions = field("number of transactions actually processed:").unwrap_or(0.0) as u64;
    let journal = match (journal_before, t.metrics.as_deref()) {
        (Some(b), Some(m)) => {
            let a = journal_counters(m)?;
            let batches = (a.1 - b.1).max(1.0);
            Some(((a.0 - b.0) / batches, (a.2 - b.2) * 1e3 / batches))
        }
        _ => None,
    };
    let mut run = Run {
        journal,
        cpu_us_per_txn: cpu.map(|c| c * 1e6 / transactions.max(1) as f64),
        tps: field("tps =").context("pgbench printed no tps")?,
        transactions,
        failed: field("number of failed transactions:").unwrap_or(0.0) as u64,
        retried: field("number of transactions retried:").unwrap_or(0.0) as u64,
        lat_us: Vec::new(),
    };
    for entry in std::fs::read_dir(dir.path())? {
        let p = entry?.path();
        if !p
            .file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.starts_with("log."))
        {
            continue;
        }
        for line in std::fs::read_to_string(&p)?.lines() {
            // client_id transaction_no time script_no time_epoch time_us [retries]
            if let Some(us) = line.split_whitespace().nth(2).and_then(|f| f.parse().ok()) {
                run.lat_us.push(us);
            }
        }
    }
    run.lat_us.sort_unstable();
    anyhow::ensure!(
        run.transactions > 0 && !run.lat_us.is_empty(),
        "{}: pgbench {workload} with {clients} clients completed no transaction:\n{stdout}",
        t.name
    );
    Ok(run)
}

/// weft's journal counters, summed over its journals, from its metrics endpoint at
/// `addr`: (records, batches, seconds writing). A plain HTTP/1.0 GET: the benchmark's
/// only use of HTTP.
fn journal_counters(addr: &str) -> anyhow::Result<(f64, f64, f64)> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).context("connecting to weft's metrics")?;
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    s.write_all(b"GET /metrics HTTP/1.0\r\nHost: weft\r\n\r\n")?;
    let mut body = String::new();
    s.read_to_string(&mut body)?;
    anyhow::ensure!(
        body.starts_with("HTTP/1.0 200") || body.starts_with("HTTP/1.1 200"),
        "weft's metrics answered: {}",
        body.lines().next().unwrap_or("")
    );
    let sum = |name: &str| -> f64 {
        body.lines()
            .filter_map(|l| {
                let rest = l.strip_prefix(name)?;
                if !(rest.starts_with('{') || rest.starts_with(' ')) {
                    return None;
                }
                l.rsplit(' ').next()?.parse::<f64>().ok()
            })
            .sum()
    };
    Ok((
        sum("weft_journal_records_total"),
        sum("weft_journal_batches_total"),
        sum("weft_journal_write_seconds_sum"),
    ))
}

/// `pid` and its descendants.
fn process_tree(pid: u32) -> anyhow::Result<Vec<u32>> {
    let mut parents: std::collections::HashMap<u32, Vec<u32>> = Default::default();
    for e in std::fs::read_dir("/proc")? {
        let e = e?;
        let Some(p) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{p}/stat")) else {
            continue;
        };
        // pid (comm) state ppid ...: comm may hold spaces, so split after the last ')'.
        let Some(after) = stat.rsplit_once(')').map(|(_, r)| r) else {
            continue;
        };
        if let Some(ppid) = after.split_whitespace().nth(1).and_then(|s| s.parse().ok()) {
            parents.entry(ppid).or_default().push(p);
        }
    }
    let mut out = Vec::new();
    let mut stack = vec![pid];
    while let Some(p) = stack.pop() {
        out.push(p);
        stack.extend(parents.get(&p).into_iter().flatten());
    }
    Ok(out)
}

/// Resident memory of a process tree, bytes: the proportional set size (shared pages split
/// among the processes sharing them) of `pid` and its descendants.
fn tree_pss(pid: u32) -> anyhow::Result<u64> {
    let mut total = 0u64;
    for p in process_tree(pid)? {
        if let Ok(s) = std::fs::read_to_string(format!("/proc/{p}/smaps_rollup")) {
            total += s
                .lines()
                .find_map(|l| l.strip_prefix("Pss:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
                .unwrap_or(0)
                * 1024;
        }
    }
    Ok(total)
}

/// CPU time of a process tree, seconds: user and system time of `pid` and of its living
/// descendants (every thread), plus that of the children it has reaped.
fn tree_cpu_seconds(pid: u32) -> anyhow::Result<f64> {
    // Clock ticks per second: 100 on every Linux weft runs on (USER_HZ).
    const TICKS: f64 = 100.0;
    let mut ticks = 0u64;
    for p in process_tree(pid)? {
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{p}/stat")) else {
            continue; // exited meanwhile: its time is in its parent's children's time
        };
        let Some(after) = stat.rsplit_once(')').map(|(_, r)| r) else {
            continue;
        };
        let f: Vec<u64> = after
            .split_whitespace()
            .map(|x| x.parse().unwrap_or(0))
            .collect();
        // After the command: state(0) ppid(1) ... utime(11) stime(12) cutime(13) cstime(14).
        ticks += f.get(11..15).map(|v| v.iter().sum()).unwrap_or(0);
    }
    Ok(ticks as f64 / TICKS)
}

fn mem_available() -> u64 {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("MemAvailable:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        })
        .unwrap_or(0)
        * 1024
}

/// Opens `n` connections that finish the startup handshake and then sit idle; returns the
/// server's resident memory with them open. The connections close when dropped.
async fn idle(
    t: &Target,
    pid: u32,
    n: usize,
) -> anyhow::Result<(u64, Vec<tokio_postgres::Client>)> {
    let mut clients = Vec::with_capacity(n);
    let mut pending = tokio::task::JoinSet::new();
    let host = t.host.clone();
    let port = t.port;
    let mut opened = 0;
    // A few hundred handshakes in flight at a time.
    while opened < n || !pending.is_empty() {
        while opened < n && pending.len() < 256 {
            let host = host.clone();
            pending.spawn(async move { connect(&host, port).await });
            opened += 1;
        }
        if let Some(r) = pending.join_next().await {
            clients.push(r?.with_context(|| format!("{}: idle connection", t.name))?);
        }
    }
    // Every session answers: they are established, not just accepted. (SHOW, not SELECT:
    // a weft session makes its DataFusion context at its first planned statement.)
    for c in clients.iter().step_by((n / 50).max(1)) {
        c.simple_query("SHOW server_version").await?;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    Ok((tree_pss(pid)?, clients))
}

pub(crate) fn ensure_postgres() -> anyhow::Result<Option<PathBuf>> {
    if let Some(b) = weft_tests::pg_bin_dir() {
        return Ok(Some(b));
    }
    eprintln!("PostgreSQL 15 is not installed: installing it from Debian");
    let status = Command::new("bash")
        .arg("-c")
        .arg(include_str!("../scripts/install-postgres.sh"))
        .status()
        .context("run the PostgreSQL installer")?;
    anyhow::ensure!(status.success(), "installing PostgreSQL 15 failed");
    Ok(weft_tests::pg_bin_dir())
}

fn ms(v: f64) -> String {
    if v.is_nan() {
        "-".into()
    } else if v < 10.0 {
        format!("{v:.3}")
    } else {
        format!("{v:.1}")
    }
}

pub async fn oltp(mut a: OltpArgs) -> anyhow::Result<()> {
    a.idle.retain(|&n| n > 0);
    for w in &a.workloads {
        script(w)?;
    }
    let pg_bin = if a.no_postgres {
        weft_tests::pg_bin_dir()
    } else {
        ensure_postgres()?
    };
    let pgbench_path = pgbench_bin(pg_bin.as_deref());
    let dir = tempfile::tempdir()?;
    let metrics_port = weft_tests::free_port();
    let rpc = format!("127.0.0.1:{}", weft_tests::free_port());
    let mut weft_args = vec![
        "--metrics-listen".to_string(),
        format!("127.0.0.1:{metrics_port}"),
    ];
    if a.frontend {
        weft_args.extend(["--rpc-listen".to_string(), rpc.clone()]);
    }
    let weft_args: Vec<&str> = weft_args.iter().map(String::as_str).collect();
    let weft = weft_tests::Server::start_with(&dir.path().join("weft"), &weft_args);
    let frontend = a
        .frontend
        .then(|| weft_tests::Server::start_frontend(&rpc, &dir.path().join("frontend.log"), &[]));
    let pg = if a.no_postgres {
        None
    } else {
        Some(
            weft_tests::PgServer::start_with(&[("fsync", "on"), ("synchronous_commit", "on")])
                .context("PostgreSQL 15 did not start")?,
        )
    };
    let targets = targets_of(&weft, Some(metrics_port), pg.as_ref(), frontend.as_ref());
    let mut out = String::new();
    let accounts = a.branches * a.accounts_per_branch;
    for t in targets.iter().filter(|t| !t.shares_previous) {
        let s = load(t, &a).await?;
        eprintln!(
            "{}: loaded {} branches, {} tellers, {accounts} accounts in {s:.1} s",
            t.name,
            a.branches,
            a.branches * 10
        );
    }
    let _ = writeln!(
        out,
        "| workload | clients | weft TPS | PG TPS | weft/PG TPS | weft p50 ms | PG p50 ms | weft p99 ms | PG p99 ms | weft p99.9 ms | PG p99.9 ms | weft max ms | PG max ms | weft retried / failed | PG retried / failed | weft CPU µs/txn | PG CPU µs/txn | weft commits/batch | weft batch write ms |{}",
        if a.frontend {
            " frontend TPS | frontend/weft TPS | frontend p50 ms | frontend p99.9 ms | frontend retried / failed | frontend CPU µs/txn (both processes) |"
        } else {
            ""
        }
    );
    let _ = writeln!(
        out,
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|{}",
        if a.frontend {
            "---|---|---|---|---|---|"
        } else {
            ""
        }
    );
    println!("{}", out.trim_end());
    let mut results: Vec<(String, usize, Run, Option<Run>)> = Vec::new();
    for w in &a.workloads {
        let before: Vec<(i64, i64, i64)> = if w == "transfer" || w == "tpcb" {
            let mut v = Vec::new();
            for t in &targets {
                v.push(balances(t).await?);
            }
            v
        } else {
            Vec::new()
        };
        for &n in &a.clients {
            let mut runs = Vec::new();
            for t in &targets {
                let run = pgbench(&pgbench_path, t, w, n, &a).with_context(|| {
                    // What weft's processes logged last, to say why.
                    let tail = |s: &weft_tests::Server| {
                        let log = s.log_text();
                        let lines: Vec<&str> = log.lines().collect();
                        lines[lines.len().saturating_sub(20)..].join("\n")
                    };
                    let mut why = format!("weft serve logged:\n{}", tail(&weft));
                    if let Some(f) = &frontend {
                        why.push_str(&format!("\nweft frontend logged:\n{}", tail(f)));
                    }
                    why
                })?;
                runs.push(run);
            }
            let fr = if a.frontend { runs.pop() } else { None };
            let wr = runs.remove(0);
            let pr = runs.pop();
            let ratio = pr
                .as_ref()
                .map(|p| format!("{:.2}x", wr.tps / p.tps))
                .unwrap_or_default();
            let pick = |f: &dyn Fn(&Run) -> String| {
                (f(&wr), pr.as_ref().map(f).unwrap_or_else(|| "-".into()))
            };
            let tps = pick(&|r| format!("{:.0}", r.tps));
            let p50 = pick(&|r| ms(r.pct_ms(0.5)));
            let p99 = pick(&|r| ms(r.pct_ms(0.99)));
            let p999 = pick(&|r| ms(r.pct_ms(0.999)));
            let max = pick(&|r| ms(r.pct_ms(1.0)));
            let fails = pick(&|r| format!("{} / {}", r.retried, r.failed));
            let cpu = pick(&|r| {
                r.cpu_us_per_txn
                    .map(|c| format!("{c:.0}"))
                    .unwrap_or_else(|| "-".into())
            });
            let (per_batch, write_ms) = match wr.journal {
                // A read-only workload writes no batch.
                Some((r, w)) if r > 0.0 => (format!("{r:.1}"), format!("{w:.3}")),
                _ => ("-".into(), "-".into()),
            };
            let mut line = format!(
                "| {w} | {n} | {} | {} | {ratio} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {per_batch} | {write_ms} |",
                tps.0, tps.1, p50.0, p50.1, p99.0, p99.1, p999.0, p999.1, max.0, max.1, fails.0, fails.1, cpu.0, cpu.1
            );
            if let Some(f) = &fr {
                let _ = write!(
                    line,
                    " {:.0} | {:.2}x | {} | {} | {} | {} |",
                    f.tps,
                    f.tps / wr.tps,
                    ms(f.pct_ms(0.5)),
                    ms(f.pct_ms(0.999)),
                    format_args!("{} / {}", f.retried, f.failed),
                    f.cpu_us_per_txn
                        .map(|c| format!("{c:.0}"))
                        .unwrap_or_else(|| "-".into())
                );
            }
            println!("{line}");
            let _ = writeln!(out, "{line}");
            results.push((w.clone(), n, wr, pr));
        }
        for (i, t) in targets.iter().enumerate() {
            if before.is_empty() {
                break;
            }
            let (a0, t0, b0) = before[i];
            let (a1, t1, b1) = balances(t).await?;
            if w == "transfer" {
                anyhow::ensure!(
                    a1 == a0,
                    "{}: transfers changed the total balance from {a0} to {a1}",
                    t.name
                );
            } else {
                anyhow::ensure!(
                    t1 - t0 == b1 - b0,
                    "{}: tellers moved by {} but branches by {}",
                    t.name,
                    t1 - t0,
                    b1 - b0
                );
            }
        }
    }
    // Idle connections, against fresh servers: the loaded ones' memory moves with their
    // data (weft's memtable shrinks at each flush), which would drown the connections' cost.
    drop(frontend);
    drop(weft);
    drop(pg);
    let mut idle_out = String::new();
    if !a.idle.is_empty() {
        let weft = weft_tests::Server::start_with(&dir.path().join("weft-idle"), &[]);
        let weft_pid = weft.child.as_ref().map(|c| c.id()).context("weft pid")?;
        let pg = if a.no_postgres {
            None
        } else {
            let max = a.idle.iter().copied().max().unwrap_or(0) + 64;
            Some(
                weft_tests::PgServer::start_with(&[("max_connections", &max.max(200).to_string())])
                    .context("PostgreSQL 15 did not start")?,
            )
        };
        let targets = targets_of(&weft, None, pg.as_ref(), None);
        let _ = writeln!(
            idle_out,
            "| idle connections | weft resident MiB | weft bytes per connection | PostgreSQL resident MiB (PSS, all processes) | PostgreSQL bytes per connection |"
        );
        let _ = writeln!(idle_out, "|---|---|---|---|---|");
        print!("\n{idle_out}");
        let mut pg_per_conn: Option<f64> = None;
        for &n in &a.idle {
            let mut cells = Vec::new();
            for (t, pid) in targets
                .iter()
                .zip([Some(weft_pid), pg.as_ref().and_then(|p| p.pid())])
            {
                let Some(pid) = pid else { continue };
                if t.name != "weft" {
                    // PostgreSQL forks a process per connection: skip counts that would not
                    // fit in half the memory left, by the per-connection cost measured so far.
                    if let Some(per) = pg_per_conn {
                        if per * n as f64 > mem_available() as f64 / 2.0 {
                            cells.push(format!(
                                "not run: about {:.1} GiB needed, {:.1} GiB available",
                                per * n as f64 / (1u64 << 30) as f64,
                                mem_available() as f64 / (1u64 << 30) as f64
                            ));
                            cells.push("-".into());
                            continue;
                        }
                    }
                }
                let base = tree_pss(pid)?;
                let (with, clients) = idle(t, pid, n).await?;
                drop(clients);
                let per = with.saturating_sub(base) as f64 / n as f64;
                if t.name != "weft" {
                    pg_per_conn = Some(per);
                }
                cells.push(format!("{:.0}", with as f64 / (1u64 << 20) as f64));
                cells.push(format!("{per:.0}"));
                // Let the server close them all before the next measurement.
                tokio::time::sleep(Duration::from_secs(3)).await;
            }
            while cells.len() < 4 {
                cells.push("-".into());
            }
            let line = format!("| {n} | {} |", cells.join(" | "));
            println!("{line}");
            let _ = writeln!(idle_out, "{line}");
        }
    }
    let command = format!(
        "weft bench oltp --clients {} --seconds {} --workloads {} --branches {} --accounts-per-branch {} --idle {}{}",
        a.clients.iter().map(|c| c.to_string()).collect::<Vec<_>>().join(","),
        a.seconds,
        a.workloads.join(","),
        a.branches,
        a.accounts_per_branch,
        if a.idle.is_empty() {
            "0".to_string()
        } else {
            a.idle.iter().map(|c| c.to_string()).collect::<Vec<_>>().join(",")
        },
        if a.no_postgres { " --no-postgres" } else { "" }
    );
    let command = if a.frontend {
        format!("{command} --frontend")
    } else {
        command
    };
    println!("reproduce: {command}");
    if let Some(path) = &a.markdown {
        let section = format!(
            "Machine: {}. Run {} (UTC).\n\n\
             ```sh\ncargo build --release -p weft\ntarget/release/{command}\n```\n\n\
             {}\n{}",
            crate::report::machine(),
            crate::report::utc_now(),
            out,
            if idle_out.is_empty() {
                String::new()
            } else {
                format!("\n{idle_out}")
            }
        );
        if a.frontend {
            crate::report::write_section(
                path,
                "oltp-frontend",
                "OLTP under pgbench through a separate frontend process (weft frontend and weft serve beside the embedded frontend and PostgreSQL 15)",
                &section,
            )?;
        } else {
            crate::report::write_section(
                path,
                "oltp",
                "OLTP under pgbench (weft beside PostgreSQL 15)",
                &section,
            )?;
        }
        eprintln!("wrote the results into {}", path.display());
    }
    Ok(())
}
