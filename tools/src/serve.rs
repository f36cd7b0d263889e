//! `weft serve`: recovery, then every component wired together in one process.
//!
//! Start-up order is recovery order: storage loads its newest manifest; every journal is
//! read and verified; the records past the storage checkpoint are replayed in crossbar
//! order; only then do the adjudicator, the journal writers, the live crossbar and the
//! listener start.

use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};
use clap::Args;
use object_store::path::Path;
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use weft_crossbar::catchup::StoreCatchUp;
use weft_crossbar::{Crossbar, Hub, HubConfig, Subscriber, Subscription};
use weft_engine::objstore::DurableStore;
use weft_engine::storage::{StorageConfig, StorageNode};
use weft_engine::{Clock, SystemClock};
use weft_frontend_pgwire::{Db, TxnLimits};
use weft_journal::adjudicator::JournalHandle;
use weft_journal::reader::{list_journals, read_journal};
use weft_journal::writer::{claim, WriterConfig};
use weft_journal::{Adjudicator, AdjudicatorConfig, Sequencer};

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
    /// Who must give a password (SCRAM-SHA-256): `default` trusts loopback connections
    /// and asks everyone else; `scram` asks everyone; `trust` asks no one.
    #[arg(long, default_value = "default", value_parser = weft_frontend_pgwire::roles::AuthMode::parse)]
    pub auth: weft_frontend_pgwire::roles::AuthMode,
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
    /// How long a commit waits for the store to confirm its journal object before its
    /// client is told the outcome is unknown (SQLSTATE 08007).
    #[arg(long, default_value_t = 10_000)]
    pub commit_resolve_timeout_ms: u64,
    /// Delete journal objects that every storage range's checkpoint has passed.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    pub journal_retention: bool,
    /// Testing only: inject faults into every object-store operation (see
    /// engine/src/faults.rs for the spec).
    #[arg(long, hide = true)]
    pub inject_faults: Option<String>,
    /// Testing only: commit every transaction without conflict checks, so that a history
    /// checker can be shown to catch the anomalies this lets through. Loses updates.
    #[arg(long, hide = true)]
    pub unsafe_disable_conflict_checks: bool,
}

fn open_store(args: &ServeArgs) -> anyhow::Result<DurableStore> {
    let store = open_store_at(&args.data, args.store.as_deref())?;
    match &args.inject_faults {
        None => Ok(store),
        Some(spec) => {
            let faults = weft_engine::faults::Faults::parse(spec)
                .map_err(|e| anyhow::anyhow!("--inject-faults: {e}"))?;
            tracing::warn!(spec = %spec, "object store: injecting faults (testing only)");
            Ok(store.with_faults(faults)?)
        }
    }
}

/// The store `weft serve` uses: the local directory `data`, or an `s3://bucket/prefix` URL.
pub fn open_store_at(data: &std::path::Path, url: Option<&str>) -> anyhow::Result<DurableStore> {
    match url {
        None => Ok(DurableStore::local(data.to_path_buf())?),
        Some(url) => {
            let Some(rest) = url.strip_prefix("s3://") else {
                bail!("--store must be an s3:// URL, got {url}");
            };
            let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
            let s3 = object_store::aws::AmazonS3Builder::from_env()
                .with_bucket_name(bucket)
                .build()
                .with_context(|| format!("configuring S3 store {url}"))?;
            let inner: Arc<dyn object_store::ObjectStore> = if prefix.is_empty() {
                Arc::new(s3)
            } else {
                Arc::new(object_store::prefix::PrefixStore::new(
                    s3,
                    prefix.trim_end_matches('/'),
                ))
            };
            Ok(DurableStore::remote(inner, url.to_string()))
        }
    }
}

pub async fn run(args: ServeArgs) -> anyhow::Result<()> {
    if args.journals == 0 || args.journals > 1024 {
        bail!("--journals must be between 1 and 1024");
    }
    let store = open_store(&args)?;
    let cluster = args.cluster.clone();
    if !store
        .honours_conditional_puts(&Path::from(format!("clusters/{cluster}/probe")))
        .await
        .context("probing the object store")?
    {
        if !args.single_writer {
            bail!(
                "the object store {} does not honour conditional puts (PUT with \
                 If-None-Match: *): journal writers could silently overwrite each other's \
                 commits. Use a store that supports them (AWS S3, MinIO, s3s-fs...), or pass \
                 --single-writer if you guarantee that only one weft process ever writes \
                 this cluster",
                store.url
            );
        }
        tracing::warn!(store = %store.url, "object store ignores conditional puts; running because --single-writer promises a single writer");
    }
    let clock: Arc<dyn Clock> = Arc::new(SystemClock::new(args.clock_error_us * 1000));

    // Storage: newest manifest and its segments.
    if args.version_retention_s < args.txn_duration_max_s {
        bail!(
            "--version-retention-s ({}) must be at least --txn-duration-max-s ({}): a \
             transaction must be able to read at its read timestamp until it ends",
            args.version_retention_s,
            args.txn_duration_max_s
        );
    }
    let storage_config = StorageConfig {
        flush_bytes_min: args.flush_bytes_min,
        flush_age_max: Duration::from_secs(args.flush_age_max_s),
        cache_bytes: args.segment_cache_bytes,
        compact_segments_max: args.compact_segments_max,
        crash_at: args.crash_at.clone(),
        ..Default::default()
    };
    let storage_root = Path::from(format!("clusters/{cluster}/storage/r0"));
    let storage = StorageNode::open(store.clone(), storage_root, storage_config)
        .await
        .context("opening storage")?;
    let checkpoint = storage.checkpoint_ts().await;

    // Journals: read and verify everything, replay what storage lacks.
    let existing = list_journals(&store, &cluster).await?;
    let count =
        (args.journals as usize).max(existing.iter().map(|j| *j as usize + 1).max().unwrap_or(0));
    let mut per_journal = Vec::with_capacity(count);
    let mut starts = Vec::with_capacity(count);
    let mut recovered_ts = checkpoint;
    let mut replayed_objects = 0usize;
    for j in 0..count as u32 {
        let mut objects = read_journal(&store, &cluster, j)
            .await
            .with_context(|| format!("reading journal {j}"))?;
        // Take the journal over: a previous writer can no longer append after this.
        let (start, appeared) = claim(
            &store,
            &cluster,
            j,
            objects.last().map(|o| o.header.clone()),
        )
        .await
        .with_context(|| format!("claiming journal {j}"))?;
        objects.extend(appeared);
        replayed_objects += objects.len();
        if let Some(o) = objects.last() {
            recovered_ts = recovered_ts.max(o.header.last_ts);
        }
        tracing::debug!(
            journal = j,
            epoch = start.epoch,
            next_sequence = start.next_sequence,
            "journal: claimed"
        );
        starts.push(start);
        per_journal.push(
            objects
                .into_iter()
                .flat_map(|o| o.records)
                .collect::<Vec<_>>(),
        );
    }
    let replay = weft_crossbar::replay(per_journal, checkpoint);
    let replayed = replay.len();
    storage.deliver(&replay, recovered_ts);
    tracing::info!(
        store = %store.url,
        checkpoint,
        replayed_commits = replayed,
        journal_objects = replayed_objects,
        "storage: recovered"
    );

    // The live path: sequencer, journal writers, crossbar, adjudicator.
    let (events_tx, events_rx) = mpsc::unbounded_channel();
    let sequencer = Arc::new(Sequencer::new(
        count,
        recovered_ts,
        clock.clone(),
        events_tx,
    ));
    let mut handles = Vec::with_capacity(count);
    for (j, start) in starts.into_iter().enumerate() {
        let healthy = Arc::new(AtomicBool::new(j < args.journals as usize));
        let tx = weft_journal::writer::spawn(
            store.clone(),
            cluster.clone(),
            start,
            sequencer.clone(),
            WriterConfig {
                batch_bytes_max: args.batch_bytes_max,
                batch_linger: Duration::from_micros(args.batch_linger_us),
                resolve_timeout: Duration::from_millis(args.commit_resolve_timeout_ms),
                ..WriterConfig::default()
            },
            healthy.clone(),
        );
        handles.push(JournalHandle { tx, healthy });
    }
    tracing::info!(journals = args.journals, cluster = %cluster, "journal: writers started");
    let hub = Hub::spawn(recovered_ts, HubConfig::default());
    let engine = weft_crossbar::io::choose();
    // The one storage range holds every table: it subscribes to every key.
    let _follower = hub.follow(
        Subscription::everything(),
        storage.clone() as Arc<dyn Subscriber>,
        Arc::new(StoreCatchUp {
            store: store.clone(),
            cluster: cluster.clone(),
            engine: engine.clone(),
        }),
        recovered_ts,
    );
    let _crossbar = Crossbar::spawn(count, recovered_ts, events_rx, hub);
    {
        let seq = sequencer.clone();
        storage.set_watermark_requester(Arc::new(move |ts| seq.request_watermark(ts)));
    }
    tracing::info!(
        journals = count,
        catch_up_reads = engine.name(),
        "crossbar: merging"
    );
    let adjudicator = Arc::new(Adjudicator::new(
        sequencer,
        handles,
        clock.clone(),
        AdjudicatorConfig {
            txn_duration_max: Duration::from_secs(args.txn_duration_max_s),
            check_conflicts: !args.unsafe_disable_conflict_checks,
            ..Default::default()
        },
    ));
    if args.unsafe_disable_conflict_checks {
        tracing::warn!("adjudicator: conflict checks are OFF (testing only): updates will be lost");
    }
    tracing::info!(recovered_ts, "adjudicator: ready");

    let limits = TxnLimits {
        rows_max: args.txn_rows_max,
        bytes_max: args.txn_bytes_max,
        duration_max: Duration::from_secs(args.txn_duration_max_s),
    };
    let retention = Duration::from_secs(args.version_retention_s);
    let adjudicator_for_shutdown = adjudicator.clone();
    let db = Db::new(storage.clone(), adjudicator, limits);
    db.set_version_retention(retention);
    db.set_auth(
        weft_frontend_pgwire::roles::AuthConfig::new(args.auth, &args.users)
            .map_err(anyhow::Error::msg)?,
    );
    let listener = TcpListener::bind(&args.listen)
        .await
        .with_context(|| format!("listening on {}", args.listen))?;
    let tls = if args.no_tls {
        None
    } else if let (Some(cert), Some(key)) = (&args.tls_cert, &args.tls_key) {
        Some(weft_frontend_pgwire::tls::from_files(cert, key).map_err(anyhow::Error::msg)?)
    } else {
        let mut names = vec!["localhost".to_string()];
        if let Some(host) = args
            .listen
            .rsplit_once(':')
            .map(|(h, _)| h.trim_matches(['[', ']']))
        {
            names.push(host.to_string());
        }
        Some(weft_frontend_pgwire::tls::self_signed(names).map_err(anyhow::Error::msg)?)
    };
    tracing::info!(
        listen = %args.listen,
        tls = if tls.is_none() { "off" } else if args.tls_cert.is_some() { "on" } else { "on (self-signed)" },
        auth = match args.auth {
            weft_frontend_pgwire::roles::AuthMode::Default => "loopback trusted, others scram-sha-256",
            weft_frontend_pgwire::roles::AuthMode::Scram => "scram-sha-256",
            weft_frontend_pgwire::roles::AuthMode::Trust => "trust",
        },
        "frontend: accepting PostgreSQL connections"
    );

    let flusher = {
        let storage = storage.clone();
        let store = store.clone();
        let cluster = cluster.clone();
        let retention = args.journal_retention;
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            loop {
                tick.tick().await;
                if storage.wants_flush() {
                    match storage.flush().await {
                        Ok(Some(checkpoint)) if retention => {
                            // The one storage range's checkpoint is the lowest of all.
                            match weft_journal::retention::prune(&store, &cluster, checkpoint).await
                            {
                                Ok(0) => {}
                                Ok(n) => {
                                    tracing::debug!(deleted = n, checkpoint, "journal: retention")
                                }
                                Err(e) => {
                                    tracing::warn!(error = %e, "journal retention failed; will retry")
                                }
                            }
                        }
                        Ok(_) => {}
                        Err(e) => tracing::error!(error = %e, "flush failed; will retry"),
                    }
                }
            }
        })
    };

    // Compaction runs apart from flushing, so a long merge never holds up a flush.
    let compactor = {
        let storage = storage.clone();
        let clock = clock.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            loop {
                tick.tick().await;
                let horizon = clock
                    .now()
                    .earliest
                    .saturating_sub(retention.as_nanos() as u64);
                loop {
                    match storage.compact(horizon, false).await {
                        Ok(Some(c)) => tracing::debug!(
                            table_id = c.table_id,
                            inputs = c.inputs,
                            rows_in = c.rows_in,
                            rows_out = c.rows_out,
                            "compaction done"
                        ),
                        Ok(None) => break,
                        Err(e) => {
                            tracing::error!(error = %e, "compaction failed; will retry");
                            break;
                        }
                    }
                }
                if let Err(e) = storage.collect_garbage().await {
                    tracing::warn!(error = %e, "deleting retired segments failed; will retry");
                }
            }
        })
    };

    let server = weft_frontend_pgwire::server::serve(db, listener, tls);
    tokio::select! {
        r = server => r.context("listener failed")?,
        _ = shutdown_signal() => {
            tracing::info!("shutting down");
        }
    }
    flusher.abort();
    compactor.abort();
    // A clean shutdown applies every acknowledged commit and flushes, so that the next start
    // replays nothing.
    if let Err(e) = storage
        .wait_applied(adjudicator_for_shutdown.read_ts())
        .await
    {
        tracing::warn!(error = %e, "could not apply every commit before the final flush; the next start replays them");
    }
    match storage.flush().await {
        Ok(Some(ts)) => tracing::info!(checkpoint = ts, "storage: flushed"),
        Ok(None) => {}
        Err(e) => {
            tracing::error!(error = %e, "final flush failed; the journal still holds every commit")
        }
    }
    Ok(())
}

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
