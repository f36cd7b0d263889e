//! A weft node as a library: [`Node::start`] recovers from the store and wires every
//! component together; [`Node::shutdown`] ends it cleanly; [`Node::crash`] ends it as
//! `kill -9` would.
//!
//! `weft serve` is this plus a listener and signal handling; the whole-system simulation
//! (tools/tests/simulation.rs) starts the same node over a fault-injecting in-memory store
//! with a simulated clock and seeded randomness. Everything a node reads from its
//! surroundings comes in: the [`NodeConfig`], the object store, the [`Clock`] and the
//! [`Entropy`].
//!
//! Start-up order is recovery order: ownership is claimed (every durable write carries the
//! epoch); storage loads its newest manifest; every journal is read and verified and taken
//! over; the records past the storage checkpoint are replayed in crossbar order; only then
//! do the adjudicator, the journal writers, the live crossbar and the background tasks
//! start, and the node waits out a previous owner's read lease before it answers anyone.

use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};
use object_store::path::Path;
use weft_crossbar::catchup::StoreCatchUp;
use weft_crossbar::{Crossbar, Hub, HubConfig, Subscriber, Subscription};
use weft_engine::objstore::DurableStore;
use weft_engine::ownership::{self, Lease, LeaseConfig, OwnerRecord};
use weft_engine::storage::{StorageConfig, StorageNode};
use weft_engine::{Clock, Entropy};
use weft_frontend_pgwire::auth::{AuthConfig, AuthMode};
use weft_frontend_pgwire::{Db, TxnLimits};
use weft_journal::adjudicator::JournalHandle;
use weft_journal::reader::read_for_recovery;
use weft_journal::writer::{claim as claim_journal, WriterConfig};
use weft_journal::{Adjudicator, AdjudicatorConfig, Sequencer};

use crate::background::{self, Dedicated, Supervisor};

/// Everything that shapes a node, with `weft serve`'s defaults.
#[derive(Debug, Clone)]
pub struct NodeConfig {
    /// The prefix under which this cluster's objects live.
    pub cluster: String,
    /// Number of journals commits are spread across (1..=1024).
    pub journals: u32,
    /// Who this node is, as its ownership record tells the next owner.
    pub identity: Identity,
    /// Run even if the store ignores conditional puts (see `weft serve --single-writer`).
    pub single_writer: bool,
    pub limits: TxnLimits,
    pub storage: StorageConfig,
    /// Group commit and the store's ambiguity timeout (the lease is the node's own).
    pub writer: WriterConfig,
    /// How far back reads can go: at least `limits.duration_max`.
    pub version_retention: Duration,
    pub idle_in_transaction_timeout_max: Duration,
    pub auth: AuthMode,
    /// The most client connections served at once.
    pub max_connections: usize,
    /// The largest message a client may send once authenticated.
    pub message_bytes_max: usize,
    /// Refuse connections without TLS.
    pub require_tls: bool,
    /// How long a connection may live (zero: no bound).
    pub connection_age_max: Duration,
    /// Run the ownership check on a runtime of its own thread, so that no load of queries
    /// starves it (a process's setting: a simulation, whose clock is paused and advanced
    /// by its runtime, keeps it on that runtime).
    pub ownership_thread: bool,
    /// The memory all queries, and each one, may hold.
    pub memory: weft_frontend_pgwire::catalog::memory::MemoryLimits,
    /// `NAME:PASSWORD` roles configured at start.
    pub users: Vec<String>,
    /// Recovery fetches at most this many journal objects at once.
    pub replay_gets_max: usize,
    /// Flush once this many journal objects were written since the last flush.
    pub replay_batches_max: u64,
    /// Log the phases of commits slower than this (zero: never).
    pub slow_commit: Duration,
    /// Delete journal objects every storage range's checkpoint has passed.
    pub journal_retention: bool,
    /// Off only to prove that a checker catches what conflict checks prevent.
    pub check_conflicts: bool,
    pub lease: LeaseConfig,
    /// Longest a start waits to confirm its ownership before it gives up.
    pub ownership_confirm_max: Duration,
}

/// The node's ownership record: where it runs and where it listens.
#[derive(Debug, Clone, Default)]
pub struct Identity {
    pub pid: u32,
    pub host: String,
    pub listen: String,
}

impl Default for NodeConfig {
    fn default() -> Self {
        NodeConfig {
            cluster: "default".into(),
            journals: 2,
            identity: Identity::default(),
            single_writer: false,
            limits: TxnLimits::default(),
            storage: StorageConfig::default(),
            writer: WriterConfig::default(),
            version_retention: Duration::from_secs(3600),
            idle_in_transaction_timeout_max: Duration::from_secs(300),
            auth: AuthMode::Default,
            max_connections: weft_frontend_pgwire::catalog::db::MAX_CONNECTIONS_DEFAULT,
            memory: Default::default(),
            message_bytes_max: weft_frontend_pgwire::catalog::db::MESSAGE_BYTES_MAX_DEFAULT,
            require_tls: false,
            connection_age_max: Duration::ZERO,
            ownership_thread: false,
            users: Vec::new(),
            replay_gets_max: 64,
            replay_batches_max: 4000,
            slow_commit: weft_journal::adjudicator::SLOW_COMMIT_DEFAULT,
            journal_retention: true,
            check_conflicts: true,
            lease: LeaseConfig::default(),
            ownership_confirm_max: Duration::from_secs(30),
        }
    }
}

/// What a start recovered, for its log line and for tests.
#[derive(Debug, Clone, Copy)]
pub struct Recovered {
    pub checkpoint: u64,
    pub recovered_ts: u64,
    pub replayed_commits: usize,
    pub journal_objects: usize,
}

/// A running node: its components and the background tasks that keep it correct.
pub struct Node {
    pub store: DurableStore,
    pub cluster: String,
    pub epoch: u64,
    pub lease: Arc<Lease>,
    pub storage: Arc<StorageNode>,
    pub adjudicator: Arc<Adjudicator>,
    /// What sessions open: `weft_frontend_pgwire::session::machine::Core::new(db)`.
    pub db: Arc<Db>,
    pub recovered: Recovered,
    /// Every component's counters, histograms and gauges (see [`crate::metrics`]).
    pub metrics: Arc<prometheus_client::registry::Registry>,
    supervisor: Supervisor,
    /// The ownership check's runtime, when it has its own.
    _dedicated: Option<Dedicated>,
    /// Where flushes and compactions run; dropped (and its tasks stopped) with the node.
    _maintenance: Dedicated,
}

impl Node {
    /// Claims the store, recovers and starts every component. Returns once the node may
    /// answer reads (a previous owner's read lease has run out).
    pub async fn start(
        config: NodeConfig,
        store: DurableStore,
        clock: Arc<dyn Clock>,
        entropy: Entropy,
    ) -> anyhow::Result<Node> {
        if config.journals == 0 || config.journals > 1024 {
            bail!("--journals must be between 1 and 1024");
        }
        if let weft_journal::writer::Layout::Files { file_bytes } = config.writer.layout {
            if file_bytes < weft_journal::logwriter::LOG_FILE_BYTES_MIN {
                bail!(
                    "--journal-file-bytes must be at least {} (got {file_bytes})",
                    weft_journal::logwriter::LOG_FILE_BYTES_MIN
                );
            }
        }
        if config.version_retention < config.limits.duration_max {
            bail!(
                "--version-retention-s ({}) must be at least --txn-duration-max-s ({}): a \
                 transaction must be able to read at its read timestamp until it ends",
                config.version_retention.as_secs(),
                config.limits.duration_max.as_secs()
            );
        }
        let cluster = config.cluster.clone();
        check_conditional_puts(&store, &cluster, config.single_writer).await?;
        let mut supervisor = Supervisor::default();

        // Ownership first: every durable write of this node carries its epoch.
        let claim = ownership::claim(
            &store,
            &cluster,
            OwnerRecord {
                epoch: 0,
                pid: config.identity.pid,
                host: config.identity.host.clone(),
                listen: config.identity.listen.clone(),
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
        let lease = Lease::new(epoch, config.lease);
        // On a runtime of its own where asked: no load of queries may starve the lease.
        let checks = lease.clone().run_checks(store.clone(), cluster.clone());
        let dedicated = if config.ownership_thread {
            let d = Dedicated::new("weft-ownership")
                .context("starting the ownership check's thread")?;
            supervisor.watch("ownership check", d.spawn(checks));
            Some(d)
        } else {
            supervisor.watch("ownership check", tokio::spawn(checks));
            None
        };

        // Storage: claim the range and load its newest manifest.
        let storage_root = Path::from(format!("clusters/{cluster}/storage/r0"));
        let storage = StorageNode::open(
            store.clone(),
            storage_root.clone(),
            config.storage.clone(),
            lease.clone(),
        )
        .await
        .context("opening storage")?;

        let (count, starts, recovered) = recover(&config, &store, &storage, epoch).await?;

        // The live path: sequencer, journal writers, crossbar, adjudicator.
        let (events_tx, events_rx) = weft_journal::events_channel();
        let sequencer = Arc::new(Sequencer::new(
            count,
            recovered.recovered_ts,
            clock.clone(),
            events_tx,
        ));
        let journal_metrics = weft_journal::metrics::JournalMetrics::default();
        let commit_phases = weft_journal::metrics::CommitPhases::default();
        let mut handles = Vec::with_capacity(count);
        for (j, start) in starts.into_iter().enumerate() {
            let healthy = Arc::new(AtomicBool::new(j < config.journals as usize));
            let (tx, task) = weft_journal::writer::spawn_task(
                store.clone(),
                cluster.clone(),
                start,
                sequencer.clone(),
                WriterConfig {
                    lease: Some(lease.clone()),
                    metrics: journal_metrics.clone(),
                    ..config.writer.clone()
                },
                healthy.clone(),
            );
            supervisor.watch(format!("journal writer {j}"), task);
            handles.push(JournalHandle { tx, healthy });
        }
        tracing::info!(journals = config.journals, cluster = %cluster, "journal: writers started");
        let (hub, hub_task) = Hub::spawn_task(recovered.recovered_ts, HubConfig::default());
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
                recovered.recovered_ts,
            ),
        );
        supervisor.watch(
            "crossbar",
            Crossbar::spawn(count, recovered.recovered_ts, events_rx, hub.clone()),
        );
        {
            let seq = sequencer.clone();
            storage.set_watermark_requester(Arc::new(move |ts| {
                let seq = seq.clone();
                Box::pin(async move { seq.request_watermark(ts).await })
            }));
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
                txn_duration_max: config.limits.duration_max,
                check_conflicts: config.check_conflicts,
                phases: commit_phases.clone(),
                slow_commit: config.slow_commit,
                ..Default::default()
            },
        ));
        adjudicator.set_lease(lease.clone());
        if !config.check_conflicts {
            tracing::warn!(
                "adjudicator: conflict checks are OFF (testing only): updates will be lost"
            );
        }
        tracing::info!(recovered_ts = recovered.recovered_ts, "adjudicator: ready");

        let db = weft_frontend_pgwire::new_db(
            Arc::new(storage.clone()),
            Arc::new(adjudicator.clone()),
            config.limits.clone(),
            config.memory,
            entropy.clone(),
        );
        db.set_version_retention(config.version_retention);
        db.set_idle_in_transaction_timeout_max(config.idle_in_transaction_timeout_max);
        db.set_max_connections(config.max_connections);
        db.set_message_bytes_max(config.message_bytes_max);
        db.set_require_tls(config.require_tls);
        db.set_connection_age_max(config.connection_age_max);
        let mut auth =
            AuthConfig::new(config.auth, &config.users, &entropy).map_err(anyhow::Error::msg)?;
        auth.tokens = Some(weft_frontend_pgwire::catalog::auth::TokenVerifier {
            key: crate::token_key::load_or_create(&store, &cluster, &entropy)
                .await
                .context("loading the cluster's token key")?,
            clock: clock.clone(),
        });
        db.set_auth(auth);

        let mut registry = prometheus_client::registry::Registry::default();
        journal_metrics.register(&mut registry);
        commit_phases.register(&mut registry);
        db.metrics.register(&mut registry);
        registry.register_collector(Box::new(crate::metrics::SessionGauges { db: db.clone() }));
        registry.register_collector(Box::new(crate::metrics::NodeGauges {
            epoch,
            clock: clock.clone(),
            sequencer: sequencer.clone(),
            hub,
            storage: storage.clone(),
        }));

        // Flushes and compactions run on a runtime of their own, at low priority.
        let maintenance = Dedicated::low_priority("weft-maintenance")
            .context("starting the maintenance thread")?;
        let flushed = Arc::new(tokio::sync::Notify::new());
        supervisor.watch(
            "flush",
            background::flusher(
                &maintenance,
                storage.clone(),
                sequencer,
                config.replay_batches_max,
                flushed.clone(),
            ),
        );
        if config.journal_retention {
            supervisor.watch(
                "journal retention",
                background::retention(
                    storage.clone(),
                    store.clone(),
                    cluster.clone(),
                    vec![storage_root],
                    flushed,
                ),
            );
        }

        // A previous owner that did not release the store may still answer reads until
        // its lease runs out: no commit of ours may become visible before then.
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
            .ready_to_read(config.ownership_confirm_max)
            .await
            .context("confirming ownership of the store")?;
        // Roles written before verifiers were stored hold their salted password: rewrite
        // them, so that nothing stored from now on is enough to log in with.
        match weft_frontend_pgwire::catalog::roles::migrate_legacy_secrets(&db).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(
                roles = n,
                "auth: stored passwords rewritten as SCRAM verifiers"
            ),
            Err(e) => {
                tracing::warn!(error = %e, "auth: could not rewrite old stored passwords; the next start retries")
            }
        }
        // Compaction deletes the segments it replaces: only once the previous owner, which
        // may still have been reading them, has stopped.
        supervisor.watch(
            "compaction",
            background::compactor(
                &maintenance,
                storage.clone(),
                clock,
                config.version_retention,
            ),
        );
        Ok(Node {
            store,
            cluster,
            epoch,
            lease,
            storage,
            adjudicator,
            db,
            recovered,
            metrics: Arc::new(registry),
            supervisor,
            _dedicated: dedicated,
            _maintenance: maintenance,
        })
    }

    /// The first background task to end, and how: a node whose task ended must stop
    /// (every acknowledged commit is in a journal). Pending while all run.
    pub async fn first_task_exit(&mut self) -> (String, String) {
        self.supervisor.first_exit().await
    }

    /// Ends the node as `kill -9` would: every task stops where it is, nothing is flushed
    /// or released. Sessions still open see their commits fail.
    pub fn crash(self) {
        self.supervisor.abort_all();
    }

    /// A clean end: applies every acknowledged commit and flushes, so that the next start
    /// replays nothing, then releases ownership so that the next owner need not wait out
    /// the lease. `Err` when this node no longer owns the store (it was fenced).
    pub async fn shutdown(self) -> Result<(), Fenced> {
        if self.lease.fenced().is_some() {
            tracing::warn!("no final flush: this process no longer owns the store");
            self.supervisor.abort_all();
            return Err(Fenced);
        }
        // The manifest's compare-and-swap keeps a fenced node's flush from landing.
        if let Err(e) = self.storage.wait_applied(self.adjudicator.read_ts()).await {
            tracing::warn!(error = %e, "could not apply every commit before the final flush; the next start replays them");
        }
        match self.storage.flush().await {
            Ok(Some(ts)) => tracing::info!(checkpoint = ts, "storage: flushed"),
            Ok(None) => {}
            Err(e) => {
                tracing::error!(error = %e, "final flush failed; the journal still holds every commit")
            }
        }
        self.supervisor.abort_all();
        if self.lease.fenced().is_some() {
            // The final flush found a newer owner's manifest: it did not land.
            return Err(Fenced);
        }
        // Stop serving, then say so.
        if self.lease.step_down() {
            match ownership::release(&self.store, &self.cluster, self.epoch).await {
                Ok(()) => tracing::info!(epoch = self.epoch, "ownership: released"),
                Err(e) => {
                    tracing::warn!(error = %e, "could not mark the store released; the next owner waits out the lease")
                }
            }
        }
        Ok(())
    }
}

/// A node that found a newer owner: it must not flush or release.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fenced;

/// Refuses a store that ignores conditional puts, unless a single writer is promised.
async fn check_conditional_puts(
    store: &DurableStore,
    cluster: &str,
    single_writer: bool,
) -> anyhow::Result<()> {
    if store
        .honours_conditional_puts(&Path::from(format!("clusters/{cluster}/probe")))
        .await
        .context("probing the object store")?
    {
        return Ok(());
    }
    if !single_writer {
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
    Ok(())
}

/// Reads what lies past the storage checkpoint in every journal (many objects at once),
/// takes each journal over and replays into storage. Returns the journal count, each
/// journal's writer start and what was recovered.
async fn recover(
    config: &NodeConfig,
    store: &DurableStore,
    storage: &Arc<StorageNode>,
    epoch: u64,
) -> anyhow::Result<(usize, Vec<weft_journal::writer::WriterStart>, Recovered)> {
    let cluster = &config.cluster;
    let checkpoint = storage.checkpoint_ts().await;
    let recovered = read_for_recovery(store, cluster, checkpoint, config.replay_gets_max)
        .await
        .context("reading the journals")?;
    let count = (config.journals as usize).max(
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
        let (start, appeared) = claim_journal(store, cluster, j, found.last_header(), epoch)
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
    Ok((
        count,
        starts,
        Recovered {
            checkpoint,
            recovered_ts,
            replayed_commits: replayed,
            journal_objects: replayed_objects,
        },
    ))
}
