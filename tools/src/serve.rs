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
use weft_engine::ownership::{self, Lease, LeaseConfig, OwnerRecord};
use weft_engine::storage::{StorageConfig, StorageNode};
use weft_engine::{Clock, SystemClock};
use weft_frontend_pgwire::TxnLimits;
use weft_journal::adjudicator::JournalHandle;
use weft_journal::reader::read_for_recovery;
use weft_journal::writer::{claim as claim_journal, WriterConfig};

use crate::background::{self, Supervisor};
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
    #[arg(long, default_value = "default", value_parser = weft_frontend_pgwire::auth::AuthMode::parse)]
    pub auth: weft_frontend_pgwire::auth::AuthMode,
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
    if let Some(spec) = &args.panic_in {
        weft_engine::faults::arm_panic(spec).map_err(|e| anyhow::anyhow!("--panic-in: {e}"))?;
        tracing::warn!(spec = %spec, "background task panic armed (testing only)");
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
    // Every id, salt and key the node draws comes from this one handle.
    let entropy = weft_engine::Entropy::from_os();
    if args.version_retention_s < args.txn_duration_max_s {
        bail!(
            "--version-retention-s ({}) must be at least --txn-duration-max-s ({}): a \
             transaction must be able to read at its read timestamp until it ends",
            args.version_retention_s,
            args.txn_duration_max_s
        );
    }
    let mut supervisor = Supervisor::default();

    // Ownership first: every durable write of this process carries its epoch.
    let claim = ownership::claim(
        &store,
        &cluster,
        OwnerRecord {
            epoch: 0,
            pid: std::process::id(),
            host: std::fs::read_to_string("/proc/sys/kernel/hostname")
                .map(|h| h.trim().to_string())
                .unwrap_or_default(),
            listen: args.listen.clone(),
        },
    )
    .await
    .context("claiming ownership of the store")?;
    let epoch = claim.record.epoch;
    tracing::info!(
        epoch,
        previous = %claim.previous.as_ref().map(|p| p.describe()).unwrap_or_else(|| "none".into()),
        previous_released = claim.previous_released,
        "ownership: claimed the store"
    );
    let lease = Lease::new(epoch, LeaseConfig::default());
    supervisor.watch(
        "ownership check",
        tokio::spawn(lease.clone().run_checks(store.clone(), cluster.clone())),
    );

    // Storage: claim the range and load its newest manifest.
    let storage_config = StorageConfig {
        flush_bytes_min: args.flush_bytes_min,
        flush_age_max: Duration::from_secs(args.flush_age_max_s),
        cache_bytes: args.segment_cache_bytes,
        compact_segments_max: args.compact_segments_max,
        crash_at: args.crash_at.clone(),
        ..Default::default()
    };
    let storage_root = Path::from(format!("clusters/{cluster}/storage/r0"));
    let storage = StorageNode::open(
        store.clone(),
        storage_root.clone(),
        storage_config,
        lease.clone(),
    )
    .await
    .context("opening storage")?;
    let checkpoint = storage.checkpoint_ts().await;

    // Journals: read what lies past the checkpoint (many objects at once), take each
    // journal over, replay.
    let recovered = read_for_recovery(&store, &cluster, checkpoint, args.replay_gets_max)
        .await
        .context("reading the journals")?;
    let count = (args.journals as usize).max(
        recovered
            .iter()
            .map(|j| j.journal_id as usize + 1)
            .max()
            .unwrap_or(0),
    );
    let mut per_journal = vec![Vec::new(); count];
    let mut starts = Vec::with_capacity(count);
    let mut recovered_ts = checkpoint;
    let (mut replayed_objects, mut skipped_objects) = (0usize, 0usize);
    for j in 0..count as u32 {
        let mut found = recovered
            .iter()
            .find(|r| r.journal_id == j)
            .cloned()
            .unwrap_or_default();
        // Take the journal over: a previous writer can no longer append after this.
        let (start, appeared) = claim_journal(&store, &cluster, j, found.last_header(), epoch)
            .await
            .with_context(|| format!("claiming journal {j}"))?;
        found.objects.extend(appeared);
        replayed_objects += found.objects.len();
        skipped_objects += found.skipped;
        if let Some(h) = found.last_header() {
            recovered_ts = recovered_ts.max(h.last_ts);
        }
        tracing::debug!(
            journal = j,
            epoch = start.epoch,
            next_sequence = start.next_sequence,
            "journal: claimed"
        );
        starts.push(start);
        per_journal[j as usize] = found
            .objects
            .into_iter()
            .flat_map(|o| o.records)
            .collect::<Vec<_>>();
    }
    let replay = weft_crossbar::replay(per_journal, checkpoint);
    let replayed = replay.len();
    storage.deliver(&replay, recovered_ts);
    drop(replay);
    tracing::info!(
        store = %store.url,
        checkpoint,
        replayed_commits = replayed,
        journal_objects = replayed_objects,
        journal_objects_skipped = skipped_objects,
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
        let (tx, task) = weft_journal::writer::spawn_task(
            store.clone(),
            cluster.clone(),
            start,
            sequencer.clone(),
            WriterConfig {
                batch_bytes_max: args.batch_bytes_max,
                batch_linger: Duration::from_micros(args.batch_linger_us),
                resolve_timeout: Duration::from_millis(args.commit_resolve_timeout_ms),
                lease: Some(lease.clone()),
                ..WriterConfig::default()
            },
            healthy.clone(),
        );
        supervisor.watch(format!("journal writer {j}"), task);
        handles.push(JournalHandle { tx, healthy });
    }
    tracing::info!(journals = args.journals, cluster = %cluster, "journal: writers started");
    let (hub, hub_task) = Hub::spawn_task(recovered_ts, HubConfig::default());
    supervisor.watch("crossbar hub", hub_task);
    let engine = weft_crossbar::io::choose();
    // The one storage range holds every table: it subscribes to every key.
    supervisor.watch(
        "storage apply",
        hub.follow(
            Subscription::everything(),
            storage.clone() as Arc<dyn Subscriber>,
            Arc::new(StoreCatchUp {
                store: store.clone(),
                cluster: cluster.clone(),
                engine: engine.clone(),
            }),
            recovered_ts,
        ),
    );
    supervisor.watch(
        "crossbar",
        Crossbar::spawn(count, recovered_ts, events_rx, hub),
    );
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
        sequencer.clone(),
        handles,
        clock.clone(),
        AdjudicatorConfig {
            txn_duration_max: Duration::from_secs(args.txn_duration_max_s),
            check_conflicts: !args.unsafe_disable_conflict_checks,
            ..Default::default()
        },
    ));
    adjudicator.set_lease(lease.clone());
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
    let db = weft_frontend_pgwire::new_db(storage.clone(), adjudicator, limits, entropy.clone());
    db.set_version_retention(retention);
    db.set_idle_in_transaction_timeout_max(Duration::from_millis(
        args.idle_in_transaction_session_timeout_ms,
    ));
    db.set_auth(
        weft_frontend_pgwire::auth::AuthConfig::new(args.auth, &args.users, &entropy)
            .map_err(anyhow::Error::msg)?,
    );
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

    let flushed = Arc::new(tokio::sync::Notify::new());
    supervisor.watch(
        "flush",
        background::flusher(
            storage.clone(),
            sequencer,
            args.replay_batches_max,
            flushed.clone(),
        ),
    );
    if args.journal_retention {
        supervisor.watch(
            "journal retention",
            background::retention(
                storage.clone(),
                store.clone(),
                cluster.clone(),
                vec![storage_root.clone()],
                flushed,
            ),
        );
    }

    // A previous owner that did not release the store may still answer reads until its
    // lease runs out: no commit of ours may become visible before then.
    let wait = claim
        .serve_after()
        .saturating_duration_since(tokio::time::Instant::now());
    if !wait.is_zero() {
        tracing::info!(
            wait_ms = wait.as_millis() as u64,
            "ownership: waiting out the previous owner's read lease before serving"
        );
        tokio::time::sleep(wait).await;
    }
    lease
        .ready_to_read(Duration::from_secs(30))
        .await
        .context("confirming ownership of the store")?;
    // Compaction deletes the segments it replaces: only once the previous owner, which
    // may still have been reading them, has stopped.
    supervisor.watch(
        "compaction",
        background::compactor(storage.clone(), clock.clone(), retention),
    );
    let listener = TcpListener::bind(&args.listen)
        .await
        .with_context(|| format!("listening on {}", args.listen))?;
    tracing::info!(
        listen = %args.listen,
        epoch,
        tls = if tls.is_none() { "off" } else if args.tls_cert.is_some() { "on" } else { "on (self-signed)" },
        auth = match args.auth {
            weft_frontend_pgwire::auth::AuthMode::Default => "loopback trusted, others scram-sha-256",
            weft_frontend_pgwire::auth::AuthMode::Scram => "scram-sha-256",
            weft_frontend_pgwire::auth::AuthMode::Trust => "trust",
        },
        "frontend: accepting PostgreSQL connections"
    );

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
        (task, why) = supervisor.first_exit() => {
            tracing::error!(task = %task, why = %why, "a background task stopped; exiting (every acknowledged commit is in the journal)");
            std::process::exit(background::EXIT_TASK_FAILED);
        }
    }
    if lease.fenced().is_some() {
        tracing::warn!("no final flush: this process no longer owns the store");
        std::process::exit(background::EXIT_FENCED);
    }
    // A clean shutdown applies every acknowledged commit and flushes, so that the next start
    // replays nothing. The manifest's compare-and-swap keeps a fenced process's flush from
    // landing.
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
    if lease.fenced().is_some() {
        // The final flush found a newer owner's manifest: it did not land, and this
        // process did not end cleanly.
        std::process::exit(background::EXIT_FENCED);
    }
    // Stop serving, then say so: the next owner need not wait out our lease.
    if lease.step_down() {
        match ownership::release(&store, &cluster, epoch).await {
            Ok(()) => tracing::info!(epoch, "ownership: released"),
            Err(e) => {
                tracing::warn!(error = %e, "could not mark the store released; the next owner waits out the lease")
            }
        }
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
