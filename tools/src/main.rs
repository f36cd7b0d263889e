//! The `weft` binary: `weft serve` runs every component in one process; `weft frontend`
//! serves clients with the storage and adjudicator of another.

mod bench;
mod bench_cluster_sim;
mod bench_journal;
mod bench_oltp;
mod bench_storage;
mod bench_tpch;
mod cluster;
mod dev_cluster;
mod frontend;
mod inspect;
mod load;
mod report;
mod serve;
mod session_args;
mod token;

use clap::{Parser, Subcommand};

/// jemalloc rather than the system allocator: bulk loads build and drop large Arrow buffers
/// at a high rate, which glibc's allocator returns to the kernel and faults back in
/// (docs/decisions.md, "Allocator").
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// jemalloc's options, read at its start: freed pages are kept for a minute (its default is
/// ten seconds for dirty pages) before they go back to the kernel, so that a load's steady
/// churn of batches reuses them instead of faulting in fresh zeroed pages. The peak does
/// not grow: kept pages are the ones reused. `_RJEM_MALLOC_CONF` in the environment
/// overrides it.
#[export_name = "_rjem_malloc_conf"]
static JEMALLOC_CONF: &[u8; 42] = b"dirty_decay_ms:60000,muzzy_decay_ms:60000\0";

#[derive(Parser)]
#[command(
    name = "weft",
    version,
    about = "weft: a PostgreSQL-compatible distributed SQL database"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

// Parsed once per process: the size of `serve`'s arguments does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Subcommand)]
enum Command {
    /// Run every component (frontend, adjudicator, journals, crossbar, storage) in one process.
    Serve(serve::ServeArgs),
    /// Serve PostgreSQL clients with the storage and adjudicator of another weft process
    /// (`weft serve --rpc-listen`): a stateless frontend; run as many as you like.
    Frontend(frontend::FrontendArgs),
    /// Benchmarks that print their figures and how to reproduce them.
    #[command(subcommand)]
    Bench(bench::BenchCommand),
    /// Bulk-load CSV or Parquet files into a table through COPY, with a progress line.
    Load(load::LoadArgs),
    /// Look inside stored data: journals.
    #[command(subcommand)]
    Inspect(inspect::InspectCommand),
    /// Print a short-lived login token for a role without a password.
    Token(token::TokenArgs),
    /// A cluster's processes, as etcd knows them.
    #[command(subcommand)]
    Cluster(ClusterCommand),
    /// Start a cluster on this machine, every role its own process: etcd, an S3-compatible
    /// store (s3s-fs), a serving process with a standby, and frontends.
    DevCluster(dev_cluster::DevClusterArgs),
}

#[derive(Subcommand)]
enum ClusterCommand {
    /// Every live process of the cluster: role, addresses, leader and epoch.
    Status(cluster::ClusterStatusArgs),
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("WEFT_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,tokio_postgres=warn")),
        )
        .with_target(false)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    match cli.command {
        Command::Serve(args) => runtime.block_on(serve::run(args)),
        Command::Frontend(args) => runtime.block_on(frontend::run(args)),
        Command::Bench(cmd) => bench::run(cmd, &runtime),
        Command::Inspect(cmd) => inspect::run(cmd, &runtime),
        Command::Load(args) => runtime.block_on(load::run(args)),
        Command::Token(args) => runtime.block_on(token::run(args)),
        Command::Cluster(ClusterCommand::Status(args)) => runtime.block_on(cluster::status(args)),
        Command::DevCluster(args) => runtime.block_on(dev_cluster::run(args)),
    }
}
