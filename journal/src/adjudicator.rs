//! The adjudicator: optimistic concurrency control and the hand-off to journals.
//!
//! At COMMIT a transaction sends its write set. If any key it wrote (or locked with
//! `SELECT ... FOR UPDATE`) was committed by another transaction after the transaction's
//! start timestamp, it fails with a data conflict (OC000); if a table it depends on was
//! changed by DDL after its start, with a schema conflict (OC001). Otherwise the
//! adjudicator assigns the commit timestamp and hands the record to one journal. The check
//! and the assignment happen under one lock, so the first committer wins.
//!
//! The conflict table maps each written key to the timestamp of its latest commit. Entries
//! older than the longest a transaction may live are pruned; a transaction that started
//! before the pruning horizon fails with OC000 at commit, since its conflicts can no longer
//! be checked (it could not have lived that long anyway).

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};
use weft_engine::provider::ReadSpan;
use weft_engine::schema::CATALOG_TABLE_ID;
use weft_engine::{Clock, CommitRecord, TableWrites, Timestamp};

use crate::conflict::{full_key, Check, ConflictTable};
use crate::error::CommitError;
use crate::format::{commit_ts_offset, encode_record, patch_commit_ts, COMMIT_TS_PLACEHOLDER};
use crate::sequencer::Sequencer;
use crate::writer::Pending;

#[derive(Debug, Clone)]
pub struct AdjudicatorConfig {
    /// Prune the conflict table when it holds more entries than this.
    pub conflict_entries_max: usize,
    /// The longest a transaction may live; bounds how long conflict entries are needed.
    pub txn_duration_max: Duration,
    /// Off only in tests that prove a history checker can catch what the checks prevent.
    /// Never turn it off in production: every transaction would commit.
    pub check_conflicts: bool,
    /// Where each commit's phases are timed.
    pub phases: crate::metrics::CommitPhases,
    /// A commit that takes longer than this logs its phases (a warning): what the tail of
    /// commit latency is made of. Zero: never.
    pub slow_commit: Duration,
}

/// [`AdjudicatorConfig::slow_commit`]'s default.
pub const SLOW_COMMIT_DEFAULT: Duration = Duration::from_millis(100);

impl Default for AdjudicatorConfig {
    fn default() -> Self {
        AdjudicatorConfig {
            conflict_entries_max: 1 << 20,
            txn_duration_max: Duration::from_secs(300),
            check_conflicts: true,
            phases: Default::default(),
            slow_commit: SLOW_COMMIT_DEFAULT,
        }
    }
}

/// What a transaction asks to commit.
#[derive(Debug, Clone)]
pub struct CommitRequest {
    pub start_ts: Timestamp,
    pub tables: Vec<TableWrites>,
    /// Keys read with `SELECT ... FOR UPDATE`: conflict-checked as if written.
    pub locked: Vec<(u64, Vec<u8>)>,
    /// Catalog keys (table names) of the tables the transaction depends on.
    pub schema_keys: Vec<Vec<u8>>,
    /// The catalog table `schema_keys` are keys of: the transaction's database's.
    pub schema_table: u64,
    /// What a SERIALIZABLE transaction read: validated at commit (nothing it read may have
    /// been written by a transaction that committed after it started). Empty at
    /// REPEATABLE READ.
    pub reads: Vec<(u64, ReadSpan)>,
}

impl Default for CommitRequest {
    fn default() -> Self {
        CommitRequest {
            start_ts: 0,
            tables: Vec::new(),
            locked: Vec::new(),
            schema_keys: Vec::new(),
            schema_table: CATALOG_TABLE_ID,
            reads: Vec::new(),
        }
    }
}

impl CommitRequest {
    pub fn is_read_only(&self) -> bool {
        self.tables.iter().all(|t| t.keys.is_empty()) && self.locked.is_empty()
    }
}

pub struct JournalHandle {
    pub tx: mpsc::Sender<Pending>,
    pub healthy: Arc<AtomicBool>,
}

pub struct Adjudicator {
    conflicts: Mutex<ConflictTable>,
    sequencer: Arc<Sequencer>,
    journals: Vec<JournalHandle>,
    next_journal: AtomicUsize,
    clock: Arc<dyn Clock>,
    config: AdjudicatorConfig,
    /// The owner's lease: once it is fenced, commits are refused (nothing is written).
    lease: std::sync::OnceLock<Arc<weft_engine::ownership::Lease>>,
}

impl Adjudicator {
    pub fn new(
        sequencer: Arc<Sequencer>,
        journals: Vec<JournalHandle>,
        clock: Arc<dyn Clock>,
        config: AdjudicatorConfig,
    ) -> Adjudicator {
        Adjudicator {
            // Every commit of a previous owner is at or below the sequencer's start.
            conflicts: Mutex::new(
                ConflictTable::with_max(config.conflict_entries_max)
                    .taking_over_at(sequencer.last_assigned()),
            ),
            sequencer,
            journals,
            next_journal: AtomicUsize::new(0),
            clock,
            config,
            lease: std::sync::OnceLock::new(),
        }
    }

    /// Sets the owner's lease (once, at start).
    pub fn set_lease(&self, lease: Arc<weft_engine::ownership::Lease>) {
        let _ = self.lease.set(lease);
    }

    pub fn sequencer(&self) -> &Arc<Sequencer> {
        &self.sequencer
    }

    pub fn read_ts(&self) -> Timestamp {
        self.sequencer.read_ts()
    }

    /// The present by the node's clock (its latest bound), for checks that compare a
    /// moment with now (`SET weft.as_of`); a read timestamp may be behind it.
    pub fn now(&self) -> Timestamp {
        self.clock.now().latest
    }

    fn pick_journal(&self) -> Option<usize> {
        let n = self.journals.len();
        let start = self.next_journal.fetch_add(1, Ordering::Relaxed);
        (0..n)
            .map(|i| (start + i) % n)
            .find(|&j| self.journals[j].healthy.load(Ordering::Relaxed))
    }

    /// Commits a transaction: returns its commit timestamp once the record is durable.
    pub async fn commit(&self, req: CommitRequest) -> Result<Timestamp, CommitError> {
        if req.is_read_only() {
            // Read-only transactions never abort.
            return Ok(req.start_ts);
        }
        if let Some(lease) = self.lease.get() {
            if let Some(f) = lease.fenced() {
                return Err(CommitError::Fenced(lease.fenced_error(&f).to_string()));
            }
        }
        let began = tokio::time::Instant::now();
        let record = CommitRecord {
            commit_ts: COMMIT_TS_PLACEHOLDER,
            tables: req
                .tables
                .into_iter()
                .filter(|t| !t.keys.is_empty())
                .collect(),
        };
        let mut body = encode_record(&record)
            .map_err(|e| CommitError::Unavailable(format!("cannot encode commit record: {e}")))?;
        let ts_at = commit_ts_offset(&body)
            .map_err(|e| CommitError::Unavailable(format!("cannot encode commit record: {e}")))?;
        let written: Vec<Vec<u8>> = record
            .tables
            .iter()
            .flat_map(|t| t.keys.iter().map(move |k| full_key(t.table_id, k)))
            .chain(req.locked.iter().map(|(t, k)| full_key(*t, k)))
            .collect();
        let written_tables: Vec<u64> = record.tables.iter().map(|t| t.table_id).collect();
        let reads: Vec<(u64, Option<Vec<u8>>)> = req
            .reads
            .into_iter()
            .map(|(t, span)| match span {
                ReadSpan::Table => (t, None),
                ReadSpan::Key(k) => (t, Some(full_key(t, &k))),
            })
            .collect();
        let schema: Vec<Vec<u8>> = req
            .schema_keys
            .iter()
            .map(|k| full_key(req.schema_table, k))
            .collect();

        let (done_tx, done_rx) = oneshot::channel();
        let encoded = tokio::time::Instant::now();
        let journal = self
            .pick_journal()
            .ok_or_else(|| CommitError::Unavailable("no journal is accepting writes".into()))?;
        // A place in the journal's bounded queue first (waiting while the store is
        // behind), then the conflict check and the timestamp under the lock.
        let permit = self.journals[journal]
            .tx
            .reserve()
            .await
            .map_err(|_| CommitError::Unavailable(format!("journal {journal} has stopped")))?;
        let queued = tokio::time::Instant::now();
        let commit_ts = {
            let mut c = self.conflicts.lock().unwrap_or_else(|e| e.into_inner());
            if self.config.check_conflicts {
                c.check(&Check {
                    start_ts: req.start_ts,
                    schema: &schema,
                    written: &written,
                    reads: &reads,
                })?;
            }
            let (ts, ()) = self.sequencer.assign(journal, |ts| {
                patch_commit_ts(&mut body, ts_at, ts);
                let record = Arc::new(CommitRecord {
                    commit_ts: ts,
                    tables: record.tables,
                });
                permit.send(Pending {
                    record,
                    body,
                    done: done_tx,
                })
            });
            c.record(ts, written, &written_tables);
            let horizon = self
                .clock
                .now()
                .earliest
                .saturating_sub(self.config.txn_duration_max.as_nanos() as u64);
            c.prune(horizon);
            ts
        };
        let checked = tokio::time::Instant::now();
        let outcome = done_rx.await;
        self.timed(
            commit_ts,
            journal,
            [began, encoded, queued, checked, tokio::time::Instant::now()],
        );
        match outcome {
            Ok(Ok(())) => Ok(commit_ts),
            Ok(Err(e)) => Err(e.into()),
            Err(_) => Err(CommitError::Unavailable("journal writer stopped".into())),
        }
    }

    /// Counts a commit's phases, from the instants that end each one (the first is its
    /// start), and logs them when the commit was slow.
    fn timed(&self, commit_ts: Timestamp, journal: usize, at: [tokio::time::Instant; 5]) {
        use crate::metrics::Phase;
        let phases = [Phase::encode, Phase::queue, Phase::check, Phase::durable];
        let spent: Vec<Duration> = at.windows(2).map(|w| w[1] - w[0]).collect();
        for (phase, d) in phases.iter().zip(&spent) {
            self.config.phases.observe(*phase, d.as_secs_f64());
        }
        let total = at[4] - at[0];
        if !self.config.slow_commit.is_zero() && total > self.config.slow_commit {
            let us = |d: &Duration| d.as_micros() as u64;
            tracing::warn!(
                commit_ts,
                journal,
                total_us = us(&total),
                encode_us = us(&spent[0]),
                queue_us = us(&spent[1]),
                check_us = us(&spent[2]),
                durable_us = us(&spent[3]),
                "adjudicator: slow commit"
            );
        }
    }
}
