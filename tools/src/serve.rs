//! `weft serve`: a [`Node`] (recovery, then every component wired together) behind a
//! PostgreSQL listener, until a signal, a fence or a failed background task ends it.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::Args;
use tokio::net::TcpListener;
use weft::background;
use weft::node::{Identity, Node, NodeConfig};
use weft::store::{open_store_at, with_fault_spec};
use weft_engine::storage::StorageConfig;
use weft_engine::{Clock, SystemClock};
use weft_frontend_pgwire::auth::AuthMode;
use weft_frontend_pgwire::TxnLimits;
use weft_journal::writer::{Layout, WriterConfig};

#[derive(Args, Debug)]
pub struct ServeArgs {
    /// Address to listen on for PostgreSQL clients.
    #[arg(long, default_value = "127.0.0.1:5432")]
    pub listen: String,
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
    /// Clock error bound in microseconds.
    #[arg(long, default_value_t = 0)]
    pub clock_error_us: u64,
    /// Most rows one transaction may modify.
    #[arg(long, default_value_t = TxnLimits::default().rows_max)]
    pub txn_rows_max: usize,
    /// Most bytes one transaction may modify.
    #[arg(long, default_value_t = TxnLimits::default().bytes_max)]
    pub txn_bytes_max: usize,
    /// Longest a transaction may stay open, in seconds.
    #[arg(long, default_value_t = 300)]
    pub txn_duration_max_s: u64,
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
    /// How far back reads can go (SET weft.as_of), in seconds: compaction keeps every
    /// version a read at or after now minus this can see. At least --txn-duration-max-s.
    #[arg(long, default_value_t = 3600)]
    pub version_retention_s: u64,
    /// PEM certificate chain for TLS (with --tls-key). Without one, a self-signed
    /// certificate is made at start.
    #[arg(long, requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key for --tls-cert.
    #[arg(long, requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// Refuse TLS (clients with sslmode=require then cannot connect).
    #[arg(long, conflicts_with = "tls_cert")]
    pub no_tls: bool,
    /// Refuse every connection that has not started TLS (FATAL 28000), loopback ones
    /// included: plaintext never carries a password or a row.
    #[arg(long, conflicts_with = "no_tls")]
    pub require_tls: bool,
    /// End a connection that has lived this long (seconds, less up to a tenth at random)
    /// once it is outside a transaction block, with FATAL 57P01, as DSQL ends connections
    /// after an hour; pools open a new one. 0: connections live as long as their clients.
    #[arg(long, default_value_t = 0)]
    pub connection_age_max_s: u64,
    /// Who must give a password (SCRAM-SHA-256): `default` trusts loopback connections
    /// and asks everyone else; `scram` asks everyone; `trust` asks no one.
    #[arg(long, default_value = "default", value_parser = AuthMode::parse)]
    pub auth: AuthMode,
    /// A role configured at start, `NAME:PASSWORD` (repeatable; or WEFT_USERS, comma
    /// separated). Roles made with CREATE USER ... PASSWORD work as well.
    #[arg(long = "user", env = "WEFT_USERS", value_delimiter = ',')]
    pub users: Vec<String>,
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
    /// Longest a session may sit idle inside a transaction block before it is ended
    /// (25P03), in milliseconds; `SET idle_in_transaction_session_timeout` may lower it.
    /// An abandoned transaction would otherwise hold compaction back.
    #[arg(long, default_value_t = 300_000)]
    pub idle_in_transaction_session_timeout_ms: u64,
    /// The most client connections served at once; one more is refused with FATAL 53300
    /// ("sorry, too many clients already"). Cancel requests are not refused.
    #[arg(long, default_value_t = weft_frontend_pgwire::catalog::db::MAX_CONNECTIONS_DEFAULT)]
    pub max_connections: usize,
    /// The largest message a client may send once authenticated (bytes); a longer one ends
    /// its connection with FATAL 08P01 before it is read. Before authentication, a message
    /// may have at most 65539 bytes.
    #[arg(long, default_value_t = weft_frontend_pgwire::catalog::db::MESSAGE_BYTES_MAX_DEFAULT)]
    pub message_bytes_max: usize,
    /// The most memory all queries together may hold (bytes): sorts, aggregates and joins
    /// reserve from it (sorts and aggregates spill to disk at their share), and so do
    /// results held before they are sent. A query that needs more gets 53200.
    #[arg(long, default_value_t = weft_frontend_pgwire::catalog::memory::MEMORY_MAX_DEFAULT)]
    pub memory_max: usize,
    /// The most memory one query may hold (bytes; at most --memory-max).
    #[arg(long, default_value_t = weft_frontend_pgwire::catalog::memory::QUERY_MEMORY_MAX_DEFAULT)]
    pub query_memory_max: usize,
    /// Serve metrics in Prometheus's text format at http://ADDR/metrics (commits, errors
    /// by SQLSTATE, latency histograms, journal writes, lags, cache hits, sessions). Off
    /// unless given; bind it to a private address, as it answers without authentication.
    #[arg(long, value_name = "ADDR")]
    pub metrics_listen: Option<String>,
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
                listen: self.listen.clone(),
            },
            single_writer: self.single_writer,
            limits: TxnLimits {
                rows_max: self.txn_rows_max,
                bytes_max: self.txn_bytes_max,
                duration_max: Duration::from_secs(self.txn_duration_max_s),
            },
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
            version_retention: Duration::from_secs(self.version_retention_s),
            idle_in_transaction_timeout_max: Duration::from_millis(
                self.idle_in_transaction_session_timeout_ms,
            ),
            auth: self.auth,
            max_connections: self.max_connections,
            message_bytes_max: self.message_bytes_max,
            require_tls: self.require_tls,
            connection_age_max: Duration::from_secs(self.connection_age_max_s),
            ownership_thread: true,
            memory: weft_frontend_pgwire::catalog::memory::MemoryLimits {
                max: self.memory_max,
                query_max: self.query_memory_max.min(self.memory_max),
            },
            users: self.users.clone(),
            replay_gets_max: self.replay_gets_max,
            replay_batches_max: self.replay_batches_max,
            journal_retention: self.journal_retention,
            check_conflicts: !self.unsafe_disable_conflict_checks,
            ..NodeConfig::default()
        }
    }

    /// TLS as the arguments ask: their files, none, or a self-signed certificate.
    fn tls(&self) -> anyhow::Result<Option<weft_frontend_pgwire::tls::TlsAcceptor>> {
        if self.no_tls {
            return Ok(None);
        }
        if let (Some(cert), Some(key)) = (&self.tls_cert, &self.tls_key) {
            return Ok(Some(
                weft_frontend_pgwire::tls::from_files(cert, key).map_err(anyhow::Error::msg)?,
            ));
        }
        let mut names = vec!["localhost".to_string()];
        if let Some(host) = self
            .listen
            .rsplit_once(':')
            .map(|(h, _)| h.trim_matches(['[', ']']))
        {
            names.push(host.to_string());
        }
        Ok(Some(
            weft_frontend_pgwire::tls::self_signed(names).map_err(anyhow::Error::msg)?,
        ))
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
    let tls = args.tls()?;
    let clock: Arc<dyn Clock> = Arc::new(SystemClock::new(args.clock_error_us * 1000));
    // Every id, salt and key the node draws comes from this one handle.
    let entropy = weft_engine::Entropy::from_os();
    let mut node = Node::start(args.node_config(), store, clock, entropy).await?;
    let listener = TcpListener::bind(&args.listen)
        .await
        .with_context(|| format!("listening on {}", args.listen))?;
    let epoch = node.epoch;
    tracing::info!(
        listen = %args.listen,
        epoch,
        tls = if tls.is_none() { "off" } else if args.tls_cert.is_some() { "on" } else { "on (self-signed)" },
        auth = match args.auth {
            AuthMode::Default => "loopback trusted, others scram-sha-256",
            AuthMode::Scram => "scram-sha-256",
            AuthMode::Trust => "trust",
        },
        "frontend: accepting PostgreSQL connections"
    );

    if let Some(addr) = &args.metrics_listen {
        let l = TcpListener::bind(addr)
            .await
            .with_context(|| format!("listening for metrics on {addr}"))?;
        tracing::info!(listen = %l.local_addr()?, "metrics: serving /metrics");
        tokio::spawn(weft::metrics::serve(l, node.metrics.clone()));
    }

    let db = node.db.clone();
    let lease = node.lease.clone();
    let server = weft_frontend_pgwire::server::serve(db.clone(), listener, tls);
    tokio::select! {
        r = server => r.context("listener failed")?,
        _ = shutdown_signal() => {
            tracing::info!("shutting down");
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
            let drain_until = tokio::time::Instant::now() + FENCED_DRAIN;
            while db.sessions() > 0 && tokio::time::Instant::now() < drain_until {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
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
    Ok(())
}

/// How long a fenced process gives its sessions to hear FATAL 57P01 before it exits.
const FENCED_DRAIN: Duration = Duration::from_secs(2);

async fn shutdown_signal() {
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
