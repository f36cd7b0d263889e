//! `weft serve`: a [`Node`] (recovery, then every component wired together) behind a
//! PostgreSQL listener, until a signal, a fence or a failed background task ends it.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::Args;

use crate::session_args::SessionArgs;
use tokio::net::TcpListener;
use weft::background;
use weft::node::{Identity, Node, NodeConfig};
use weft::store::{open_store_at, with_fault_spec};
use weft_engine::storage::StorageConfig;
use weft_engine::{Clock, SystemClock};
use weft_journal::writer::{Layout, WriterConfig};

#[derive(Args, Debug)]
pub struct ServeArgs {
    #[command(flatten)]
    pub session: SessionArgs,
    /// Serve storage and commits to `weft frontend` processes at ADDR (Arrow Flight over
    /// gRPC). Off unless given; bind it to a private address: it answers without
    /// authentication, as the store itself would.
    #[arg(long, value_name = "ADDR")]
    pub rpc_listen: Option<String>,
    /// Elect the serving process through etcd at URL (`http://host:port`; several
    /// endpoints of one etcd cluster separated by commas): the process
    /// that holds the cluster's leader key takes the store over and serves; others wait as
    /// standbys and take over when the leader's etcd lease expires. Frontends started
    /// with the same --etcd follow the leader. Needs --rpc-listen.
    #[arg(long, value_name = "URL")]
    pub etcd: Option<String>,
    /// The time to live of the leader's etcd lease, in seconds: how long a dead or stalled
    /// leader holds up a standby (at least 2).
    #[arg(long, default_value_t = 3)]
    pub etcd_lease_ttl_s: u64,
    /// The address frontends reach this process's --rpc-listen at, as announced in etcd
    /// (default: the --rpc-listen address itself).
    #[arg(long, value_name = "ADDR")]
    pub advertise_rpc: Option<String>,
    /// Data directory (the local object store), used unless --store is given.
    #[arg(long, default_value = "./weft-data")]
    pub data: PathBuf,
    /// An S3-compatible store, `s3://bucket/prefix`, configured by the AWS_* variables
    /// (AWS_ENDPOINT, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_REGION, AWS_ALLOW_HTTP).
    #[arg(long)]
    pub store: Option<String>,
    /// Number of journals commits are spread across.
    #[arg(long, default_value_t = 2)]
    pub journals: u32,
    /// Cluster id: the prefix under which this cluster's objects live.
    #[arg(long, default_value = "default")]
    pub cluster: String,
    /// Flush the memtable to a Parquet segment after this many bytes were applied.
    #[arg(long, default_value_t = StorageConfig::default().flush_bytes_min)]
    pub flush_bytes_min: usize,
    /// ... or once applied data has waited this many seconds.
    #[arg(long, default_value_t = StorageConfig::default().flush_age_max.as_secs())]
    pub flush_age_max_s: u64,
    /// Bound on the decoded segment pages cached for point lookups, in bytes.
    #[arg(long, default_value_t = StorageConfig::default().cache_bytes)]
    pub segment_cache_bytes: usize,
    /// Compact a table once it has more than this many segments.
    #[arg(long, default_value_t = StorageConfig::default().compact_segments_max)]
    pub compact_segments_max: usize,
    /// Testing only: abort the process at a named point of a flush or compaction
    /// (flush-before-manifest, flush-after-manifest, compact-before-manifest,
    /// compact-after-manifest).
    #[arg(long, hide = true)]
    pub crash_at: Option<String>,
    /// Run even if the object store ignores conditional puts (create-if-absent). Only safe
    /// when you guarantee that a single weft process ever writes this cluster: without
    /// conditional puts nothing stops a second writer from overwriting journal objects.
    #[arg(long)]
    pub single_writer: bool,
    /// Group commit: a journal batch closes at this many bytes...
    #[arg(long, default_value_t = WriterConfig::default().batch_bytes_max)]
    pub batch_bytes_max: usize,
    /// ... or when its first commit has waited this many microseconds (0: a batch is what
    /// queued while the previous object was written).
    #[arg(long, default_value_t = 0)]
    pub batch_linger_us: u64,
    /// How journals write on a local directory: `files` appends each batch to a
    /// preallocated log file with one fdatasync; `objects` writes one file per batch (the
    /// layout every object store uses). On S3 journals always write objects.
    #[arg(long, value_enum, default_value_t = JournalLayoutArg::Files)]
    pub journal_layout: JournalLayoutArg,
    /// The size of a journal log file (the file layout): a full file is followed by a new
    /// one, prepared in the background.
    #[arg(long, default_value_t = weft_journal::logwriter::LOG_FILE_BYTES_DEFAULT)]
    pub journal_file_bytes: u64,
    /// How long a commit waits for the store to confirm its journal object before its
    /// client is told the outcome is unknown (SQLSTATE 08007).
    #[arg(long, default_value_t = 10_000)]
    pub commit_resolve_timeout_ms: u64,
    /// Delete journal objects that every storage range's checkpoint has passed.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    pub journal_retention: bool,
    /// Testing only: make a background task panic the n-th time it runs
    /// (`flush|compaction|retention|journal|crossbar|apply|ownership[:n]`), to prove the
    /// process then exits non-zero instead of serving half-alive.
    #[arg(long, hide = true)]
    pub panic_in: Option<String>,
    /// Recovery fetches at most this many journal objects at once.
    #[arg(long, default_value_t = 64)]
    pub replay_gets_max: usize,
    /// Flush once this many journal objects were written since the last flush: a restart
    /// replays at most about this many (plus what one flush cycle adds).
    #[arg(long, default_value_t = 4000)]
    pub replay_batches_max: u64,
    /// Log a warning with the phases of every commit slower than this, in milliseconds
    /// (encode, queue, check, durable; all are also histograms at --metrics-listen). 0: never.
    #[arg(long, default_value_t = 100)]
    pub slow_commit_log_ms: u64,
    /// Testing only: inject faults into every object-store operation (see
    /// engine/src/faults.rs for the spec).
    #[arg(long, hide = true)]
    pub inject_faults: Option<String>,
    /// Testing only: commit every transaction without conflict checks, so that a history
    /// checker can be shown to catch the anomalies this lets through. Loses updates.
    #[arg(long, hide = true)]
    pub unsafe_disable_conflict_checks: bool,
}

impl ServeArgs {
    /// The node these arguments describe.
    fn node_config(&self) -> NodeConfig {
        NodeConfig {
            cluster: self.cluster.clone(),
            journals: self.journals,
            identity: Identity {
                pid: std::process::id(),
                host: std::fs::read_to_string("/proc/sys/kernel/hostname")
                    .map(|h| h.trim().to_string())
                    .unwrap_or_default(),
                listen: self.session.listen.clone(),
            },
            single_writer: self.single_writer,
            limits: self.session.limits(),
            storage: StorageConfig {
                flush_bytes_min: self.flush_bytes_min,
                flush_age_max: Duration::from_secs(self.flush_age_max_s),
                cache_bytes: self.segment_cache_bytes,
                compact_segments_max: self.compact_segments_max,
                crash_at: self.crash_at.clone(),
                ..Default::default()
            },
            writer: WriterConfig {
                batch_bytes_max: self.batch_bytes_max,
                batch_linger: Duration::from_micros(self.batch_linger_us),
                resolve_timeout: Duration::from_millis(self.commit_resolve_timeout_ms),
                layout: match self.journal_layout {
                    JournalLayoutArg::Files => Layout::Files {
                        file_bytes: self.journal_file_bytes,
                    },
                    JournalLayoutArg::Objects => Layout::Objects,
                },
                ..WriterConfig::default()
            },
            version_retention: Duration::from_secs(self.session.version_retention_s),
            idle_in_transaction_timeout_max: Duration::from_millis(
                self.session.idle_in_transaction_session_timeout_ms,
            ),
            auth: self.session.auth,
            max_connections: self.session.max_connections,
            message_bytes_max: self.session.message_bytes_max,
            require_tls: self.session.require_tls,
            connection_age_max: Duration::from_secs(self.session.connection_age_max_s),
            ownership_thread: true,
            memory: self.session.memory(),
            users: self.session.users.clone(),
            replay_gets_max: self.replay_gets_max,
            replay_batches_max: self.replay_batches_max,
            slow_commit: Duration::from_millis(self.slow_commit_log_ms),
            journal_retention: self.journal_retention,
            check_conflicts: !self.unsafe_disable_conflict_checks,
            ..NodeConfig::default()
        }
    }
}

pub async fn run(args: ServeArgs) -> anyhow::Result<()> {
    if let Some(spec) = &args.panic_in {
        weft_engine::faults::arm_panic(spec).map_err(|e| anyhow::anyhow!("--panic-in: {e}"))?;
        tracing::warn!(spec = %spec, "background task panic armed (testing only)");
    }
    let mut store = open_store_at(&args.data, args.store.as_deref())?;
    if let Some(spec) = &args.inject_faults {
        store = with_fault_spec(store, spec)?;
    }
    let tls = args.session.tls()?;
    let clock: Arc<dyn Clock> = Arc::new(SystemClock::new(args.session.clock_error_us * 1000));
    // With etcd, only the elected leader touches the store: a standby waits here.
    let mut leadership = match &args.etcd {
        Some(url) => Some(
            crate::cluster::lead(crate::cluster::Candidate {
                etcd: url,
                cluster: &args.cluster,
                listen: &args.session.listen,
                rpc: args.advertise_rpc.as_deref().or(args.rpc_listen.as_deref()),
                metrics: args.session.metrics_listen.as_deref(),
                ttl: Duration::from_secs(args.etcd_lease_ttl_s),
            })
            .await?,
        ),
        None => None,
    };
    // Every id, salt and key the node draws comes from this one handle.
    let entropy = weft_engine::Entropy::from_os();
    let mut node = Node::start(args.node_config(), store, clock, entropy).await?;
    let listener = TcpListener::bind(&args.session.listen)
        .await
        .with_context(|| format!("listening on {}", args.session.listen))?;
    let epoch = node.epoch;
    tracing::info!(
        listen = %args.session.listen,
        epoch,
        tls = if tls.is_none() { "off" } else if args.session.tls_cert.is_some() { "on" } else { "on (self-signed)" },
        auth = args.session.auth_description(),
        "frontend: accepting PostgreSQL connections"
    );

    if let Some(addr) = &args.session.metrics_listen {
        let l = TcpListener::bind(addr)
            .await
            .with_context(|| format!("listening for metrics on {addr}"))?;
        tracing::info!(listen = %l.local_addr()?, "metrics: serving /metrics");
        tokio::spawn(weft::metrics::serve(l, node.metrics.clone()));
    }

    if let Some(addr) = &args.rpc_listen {
        let l = TcpListener::bind(addr)
            .await
            .with_context(|| format!("listening for frontends on {addr}"))?;
        tracing::info!(listen = %l.local_addr()?, "rpc: serving storage and commits to `weft frontend` processes");
        let backend = weft_rpc::server::Backend {
            storage: node.storage.clone(),
            adjudicator: node.adjudicator.clone(),
        };
        tokio::spawn(async move {
            if let Err(e) = weft_rpc::server::serve(l, backend).await {
                tracing::error!(error = %e, "rpc: listener failed");
            }
        });
    }

    let db = node.db.clone();
    let lease = node.lease.clone();
    let server = weft_frontend_pgwire::server::serve(db.clone(), listener, tls);
    let lost = async {
        match leadership.as_mut() {
            Some(l) => l.lost().await,
            None => std::future::pending().await,
        }
    };
    tokio::select! {
        r = server => r.context("listener failed")?,
        _ = shutdown_signal() => {
            tracing::info!("shutting down");
        }
        why = lost => {
            // Another process may lead by now: acknowledge nothing more. The store's
            // epoch fences whatever this process still had in flight.
            tracing::error!(epoch, why = %why, "etcd: leadership lost; ending every session and exiting");
            lease.fence(0, format!("this process lost its leadership: {why}"));
            drain(&db).await;
            std::process::exit(background::EXIT_FENCED);
        }
        fence = lease.wait_fenced() => {
            // Sessions see the fence on their own (their connection loops watch the same
            // lease) and end with FATAL 57P01; give them a bounded moment to hear it.
            tracing::error!(
                epoch,
                newer_epoch = fence.by_epoch,
                detail = %fence.detail,
                "ownership: fenced; ending every session and exiting"
            );
            drain(&db).await;
            std::process::exit(background::EXIT_FENCED);
        }
        (task, why) = node.first_task_exit() => {
            tracing::error!(task = %task, why = %why, "a background task stopped; exiting (every acknowledged commit is in the journal)");
            std::process::exit(background::EXIT_TASK_FAILED);
        }
    }
    if node.shutdown().await.is_err() {
        std::process::exit(background::EXIT_FENCED);
    }
    // The store is released: a standby may take over at once.
    if let Some(l) = leadership {
        l.resign().await;
    }
    Ok(())
}

/// Gives sessions a bounded moment to hear FATAL 57P01.
async fn drain(db: &weft_frontend_pgwire::Db) {
    let drain_until = tokio::time::Instant::now() + FENCED_DRAIN;
    while db.sessions() > 0 && tokio::time::Instant::now() < drain_until {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// How long a fenced process gives its sessions to hear FATAL 57P01 before it exits.
const FENCED_DRAIN: Duration = Duration::from_secs(2);

pub(crate) async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("installing SIGTERM handler");
        tokio::select! {
            _ = ctrl_c => {},
            _ = term.recv() => {},
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}

/// `--journal-layout`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum JournalLayoutArg {
    Files,
    Objects,
}
