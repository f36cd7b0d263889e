//! The whole system, simulated: a weft [`Node`] (journals, crossbar, storage, adjudicator,
//! sessions) over a fault-injecting in-memory object store, on a tokio runtime whose clock
//! is paused (time moves only when every task waits, so the node's lease waits, flush
//! ticks and timeouts cost nothing), with seeded randomness everywhere.
//!
//! Each seed runs a few clients of a bank: transfers between accounts (read, two updates,
//! an insert into a ledger, commit) and audits (read every balance and the ledger in one
//! snapshot). A driver picks, from the seed, what happens next: a client's next
//! statement, time passing, the store's faults changing (failed puts, puts whose ack is
//! lost, failed gets and lists, hangs, the store down), the node crashing as `kill -9`
//! would (every task stops where it is) or shutting down cleanly, and the node starting
//! again over the same store; or a failover: a second node taking the store over while the
//! first still serves and its clients commit, then the first one stopped. After every step it checks:
//!
//! - **no acknowledged commit is lost**: every transfer whose COMMIT returned is in the
//!   ledger of every later snapshot, across crashes and restarts;
//! - **snapshot-consistent reads**: in every audit, each balance equals its opening balance
//!   plus what the visible ledger moved in and out (a torn or lost update breaks it), and
//!   nothing that failed to commit is visible.
//!
//! One seed fixes the workload, the faults and the crashes. `WEFT_SIM_SEED=n` runs one
//! seed (and prints its steps on failure); `WEFT_SIM_SEEDS` (default 200, in the test command; a soak:
//! `WEFT_SIM_SEEDS=3000 cargo test --workspace --test simulation`) and
//! `WEFT_SIM_STEPS` (default 200) size the run. The interleaving of the node's own tasks is
//! tokio's current-thread scheduler: deterministic for the same operations, except where
//! `tokio::select!` picks among ready branches at random.
//!
//! `the_simulation_catches_lost_updates` plants a bug (the adjudicator's conflict checks
//! off) and requires the checks to catch it.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use arrow::array::{AsArray, RecordBatch};
use arrow::datatypes::Int64Type;
use futures::FutureExt;
use object_store::memory::InMemory;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tokio::task::JoinHandle;
use weft::node::{Node, NodeConfig};
use weft_engine::faults::{Faults, FaultyStore};
use weft_engine::objstore::DurableStore;
use weft_engine::storage::StorageConfig;
use weft_engine::{Entropy, TokioClock};
use weft_frontend_pgwire::error::SqlError;
use weft_frontend_pgwire::session::machine::{Core, Reply};
use weft_frontend_pgwire::sql::outcome::Outcome;

const ACCOUNTS: i64 = 4;
const OPENING: i64 = 1000;
const CLIENTS: usize = 4;
/// Longest one statement may take (simulated time) before the run counts it as stuck.
const STATEMENT_MAX: Duration = Duration::from_secs(120);
/// 2026-01-01T00:00:00Z: where the simulated clock starts.
const ORIGIN_NS: u64 = 1_767_225_600_000_000_000;

#[derive(Debug, Clone, Copy)]
struct Transfer {
    id: i64,
    src: i64,
    dst: i64,
    amount: i64,
}

/// What the driver knows of every transfer it attempted.
#[derive(Default)]
struct Model {
    attempted: BTreeMap<i64, Transfer>,
    /// COMMIT returned: must be visible in every later snapshot.
    acked: BTreeSet<i64>,
    /// Never committed (an error before COMMIT, or 40001 at COMMIT): never visible.
    failed: BTreeSet<i64>,
    /// The client never heard (08007, a crash, a timeout): either is right.
    unknown: BTreeSet<i64>,
    next_id: i64,
}

enum Step {
    Transfer(Transfer, usize),
    Audit(usize),
}

enum ClientState {
    Idle,
    InTxn(Step),
    Committing(i64, JoinHandle<Result<Vec<Reply>, SqlError>>),
}

struct Client {
    core: Arc<Core>,
    state: ClientState,
}

#[derive(Debug, Default, Clone, Copy)]
struct Stats {
    acked: u64,
    failed: u64,
    unknown: u64,
    audits: u64,
    crashes: u64,
    clean_restarts: u64,
    takeovers: u64,
    faults_injected: u64,
}

struct World {
    seed: u64,
    rng: StdRng,
    memory: Arc<InMemory>,
    faults: Arc<Faults>,
    clock: Arc<TokioClock>,
    entropy: Entropy,
    config: NodeConfig,
    node: Option<Node>,
    clients: Vec<Client>,
    model: Model,
    stats: Stats,
    log: Vec<String>,
}

type Check = Result<(), String>;

impl World {
    fn new(seed: u64, config: NodeConfig) -> World {
        World {
            seed,
            rng: StdRng::seed_from_u64(seed),
            memory: Arc::new(InMemory::new()),
            faults: Faults::new(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1),
            clock: Arc::new(TokioClock::new(ORIGIN_NS, 0)),
            entropy: Entropy::seeded(seed),
            config,
            node: None,
            clients: Vec::new(),
            model: Model::default(),
            stats: Stats::default(),
            log: Vec::new(),
        }
    }

    fn note(&mut self, what: impl Into<String>) {
        self.log.push(what.into());
    }

    fn store(&self) -> DurableStore {
        DurableStore::remote(
            Arc::new(FaultyStore::new(self.memory.clone(), self.faults.clone())),
            format!("memory://simulation/{}", self.seed),
        )
    }

    fn set_faults(&self, put_error: u32, lost_ack: u32, get_error: u32, hang: u32) {
        let f = &self.faults;
        f.put_error.store(put_error, Ordering::Relaxed);
        f.lost_ack.store(lost_ack, Ordering::Relaxed);
        f.get_error.store(get_error, Ordering::Relaxed);
        f.list_error.store(get_error, Ordering::Relaxed);
        f.hang.store(hang, Ordering::Relaxed);
        f.hang_ms.store(3_000, Ordering::Relaxed);
    }

    fn faults_off(&self) {
        self.set_faults(0, 0, 0, 0);
        self.faults.down.store(false, Ordering::Relaxed);
    }

    /// Starts a node over the store; with faults on a start may fail, as a real one may:
    /// then the faults are cleared and it starts again.
    async fn start(&mut self) -> Check {
        for attempt in 0..4 {
            let started = tokio::time::timeout(
                Duration::from_secs(600),
                Node::start(
                    self.config.clone(),
                    self.store(),
                    self.clock.clone(),
                    self.entropy.clone(),
                ),
            )
            .await;
            match started {
                Ok(Ok(node)) => {
                    self.note(format!(
                        "node started: epoch {}, replayed {} commits",
                        node.epoch, node.recovered.replayed_commits
                    ));
                    self.clients = (0..CLIENTS)
                        .map(|_| Client {
                            core: Core::new(node.db.clone()),
                            state: ClientState::Idle,
                        })
                        .collect();
                    self.node = Some(node);
                    return Ok(());
                }
                Ok(Err(e)) => self.note(format!("start {attempt} failed: {e:#}")),
                Err(_) => self.note(format!("start {attempt} did not finish")),
            }
            self.faults_off();
        }
        Err("the node could not start again with the store's faults cleared".into())
    }

    /// Ends the node as `kill -9` would. Commits in flight are unknown to their clients.
    fn crash(&mut self) {
        for c in std::mem::take(&mut self.clients) {
            match c.state {
                ClientState::Committing(id, task) if task.is_finished() => {
                    let r = task.now_or_never().expect("finished");
                    self.settle(
                        id,
                        r.unwrap_or_else(|e| Err(SqlError::internal(e.to_string()))),
                    );
                }
                ClientState::Committing(id, task) => {
                    task.abort();
                    self.model.unknown.insert(id);
                }
                ClientState::InTxn(Step::Transfer(t, _)) => {
                    self.model.failed.insert(t.id);
                }
                _ => {}
            }
        }
        if let Some(node) = self.node.take() {
            node.crash();
        }
        self.stats.crashes += 1;
        self.note("node crashed");
    }

    /// A clean stop: commits in flight finish first, then the node flushes and releases.
    async fn shutdown(&mut self) -> Check {
        for i in 0..self.clients.len() {
            self.finish_commit(i, true).await;
            if let ClientState::InTxn(_) = self.clients[i].state {
                self.rollback(i).await;
            }
        }
        self.clients.clear();
        if let Some(node) = self.node.take() {
            let _ = node.shutdown().await;
        }
        self.stats.clean_restarts += 1;
        self.note("node shut down");
        Ok(())
    }

    /// A failover: a second node takes the store over while the first still serves. The
    /// first node's clients commit what they have, racing with the second node's recovery;
    /// then the first node is stopped. Whatever the first node acknowledged must be on the
    /// second.
    async fn takeover(&mut self) -> Check {
        let old = self.node.take();
        let old_clients = std::mem::take(&mut self.clients);
        self.note("a second node takes the store over");
        let mut racing = Vec::new();
        for c in old_clients {
            match c.state {
                ClientState::Committing(id, task) => racing.push((id, task)),
                ClientState::InTxn(Step::Transfer(t, n)) if n >= 4 => {
                    let core = c.core.clone();
                    // At some point during the second node's start.
                    let delay = Duration::from_millis(self.rng.random_range(0..40));
                    racing.push((
                        t.id,
                        tokio::spawn(async move {
                            tokio::time::sleep(delay).await;
                            core.query("COMMIT").await
                        }),
                    ));
                }
                ClientState::InTxn(Step::Transfer(t, _)) => {
                    self.model.failed.insert(t.id);
                }
                _ => {}
            }
        }
        // Store latency lets the first node's commits land while the second reads and
        // claims the journals (an in-memory store otherwise answers without yielding).
        let latency = self.rng.random_range(0..4u64);
        self.faults.latency_ms.store(latency, Ordering::Relaxed);
        let started = self.start().await;
        self.faults.latency_ms.store(0, Ordering::Relaxed);
        for (id, task) in racing {
            let r = match tokio::time::timeout(STATEMENT_MAX, task).await {
                Ok(r) => r.unwrap_or_else(|e| Err(SqlError::internal(e.to_string()))),
                Err(_) => Err(SqlError::internal("COMMIT did not finish")),
            };
            self.settle(id, r);
        }
        if let Some(old) = old {
            old.crash();
        }
        self.stats.takeovers += 1;
        self.note("the first node stopped");
        started?;
        self.check_all().await
    }

    /// Records the outcome of a transfer's COMMIT.
    fn settle(&mut self, id: i64, result: Result<Vec<Reply>, SqlError>) {
        match result {
            Ok(_) => {
                self.model.acked.insert(id);
                self.note(format!("transfer {id}: committed"));
            }
            Err(e) if e.code == "40001" => {
                self.model.failed.insert(id);
                self.note(format!("transfer {id}: 40001"));
            }
            Err(e) => {
                self.model.unknown.insert(id);
                self.note(format!(
                    "transfer {id}: outcome unknown ({} {})",
                    e.code, e.message
                ));
            }
        }
    }

    /// Takes a finished (or, with `wait`, any) COMMIT of client `i`.
    async fn finish_commit(&mut self, i: usize, wait: bool) {
        let ready = match &self.clients[i].state {
            ClientState::Committing(_, task) => wait || task.is_finished(),
            _ => false,
        };
        if !ready {
            return;
        }
        let ClientState::Committing(id, task) =
            std::mem::replace(&mut self.clients[i].state, ClientState::Idle)
        else {
            unreachable!()
        };
        let r = match tokio::time::timeout(STATEMENT_MAX, task).await {
            Ok(r) => r.unwrap_or_else(|e| Err(SqlError::internal(e.to_string()))),
            Err(_) => Err(SqlError::internal("COMMIT did not finish")),
        };
        self.settle(id, r);
    }

    async fn run(&mut self, i: usize, sql: &str) -> Result<Vec<Reply>, SqlError> {
        let core = self.clients[i].core.clone();
        match tokio::time::timeout(STATEMENT_MAX, core.query(sql)).await {
            Ok(r) => r,
            Err(_) => Err(SqlError::internal(format!(
                "statement did not finish: {sql}"
            ))),
        }
    }

    async fn rollback(&mut self, i: usize) {
        if let ClientState::InTxn(Step::Transfer(t, _)) = self.clients[i].state {
            self.model.failed.insert(t.id);
        }
        self.clients[i].state = ClientState::Idle;
        let _ = self.run(i, "ROLLBACK").await;
    }

    /// Client `i`'s next statement.
    async fn advance(&mut self, i: usize) -> Check {
        self.finish_commit(i, false).await;
        let state = std::mem::replace(&mut self.clients[i].state, ClientState::Idle);
        match state {
            ClientState::Committing(..) => {
                self.clients[i].state = state;
                Ok(())
            }
            ClientState::Idle => {
                let step = if self.rng.random_ratio(3, 4) {
                    self.model.next_id += 1;
                    let src = self.rng.random_range(1..=ACCOUNTS);
                    let mut dst = self.rng.random_range(1..ACCOUNTS);
                    if dst >= src {
                        dst += 1;
                    }
                    let t = Transfer {
                        id: self.model.next_id,
                        src,
                        dst,
                        amount: self.rng.random_range(1..=50),
                    };
                    self.model.attempted.insert(t.id, t);
                    Step::Transfer(t, 0)
                } else {
                    Step::Audit(0)
                };
                match self.run(i, "BEGIN").await {
                    Ok(_) => self.clients[i].state = ClientState::InTxn(step),
                    Err(e) => {
                        self.note(format!("client {i}: BEGIN: {}", e.message));
                        if let Step::Transfer(t, _) = step {
                            self.model.failed.insert(t.id);
                        }
                    }
                }
                Ok(())
            }
            ClientState::InTxn(Step::Transfer(t, n)) => {
                let sql = match n {
                    0 => format!("SELECT balance FROM accounts WHERE id = {}", t.src),
                    1 => format!(
                        "UPDATE accounts SET balance = balance - {} WHERE id = {}",
                        t.amount, t.src
                    ),
                    2 => format!(
                        "UPDATE accounts SET balance = balance + {} WHERE id = {}",
                        t.amount, t.dst
                    ),
                    3 => format!(
                        "INSERT INTO ledger (id, src, dst, amount) VALUES ({}, {}, {}, {})",
                        t.id, t.src, t.dst, t.amount
                    ),
                    _ => {
                        let core = self.clients[i].core.clone();
                        let task = tokio::spawn(async move { core.query("COMMIT").await });
                        self.clients[i].state = ClientState::Committing(t.id, task);
                        return Ok(());
                    }
                };
                match self.run(i, &sql).await {
                    Ok(_) => self.clients[i].state = ClientState::InTxn(Step::Transfer(t, n + 1)),
                    Err(e) => {
                        self.note(format!(
                            "transfer {}: {}: {} {}",
                            t.id, sql, e.code, e.message
                        ));
                        self.clients[i].state = ClientState::InTxn(Step::Transfer(t, n));
                        self.rollback(i).await;
                    }
                }
                Ok(())
            }
            ClientState::InTxn(Step::Audit(0)) => {
                // The snapshot is taken by this statement: every transfer acknowledged
                // before it must be visible.
                let acked = self.model.acked.clone();
                let core = self.clients[i].core.clone();
                match self.audit_in_txn(&core, &acked).await {
                    Ok(()) => {
                        self.stats.audits += 1;
                        self.clients[i].state = ClientState::InTxn(Step::Audit(1));
                        Ok(())
                    }
                    Err(AuditError::Sql(e)) => {
                        self.note(format!("client {i}: audit: {} {}", e.code, e.message));
                        self.rollback(i).await;
                        Ok(())
                    }
                    Err(AuditError::Violation(v)) => Err(v),
                }
            }
            ClientState::InTxn(Step::Audit(..)) => {
                let _ = self.run(i, "COMMIT").await;
                Ok(())
            }
        }
    }

    /// Reads every balance and the ledger in the session's open transaction (one
    /// snapshot) and checks them against the model.
    async fn audit_in_txn(&self, core: &Core, acked: &BTreeSet<i64>) -> Result<(), AuditError> {
        let balances = rows(
            core.query("SELECT id, balance FROM accounts ORDER BY id")
                .await?,
        );
        let ledger = rows(
            core.query("SELECT id, src, dst, amount FROM ledger")
                .await?,
        );
        self.check_snapshot(&balances, &ledger, acked)
            .map_err(AuditError::Violation)
    }

    fn check_snapshot(
        &self,
        balances: &[Vec<i64>],
        ledger: &[Vec<i64>],
        acked: &BTreeSet<i64>,
    ) -> Check {
        let mut expected: BTreeMap<i64, i64> = (1..=ACCOUNTS).map(|a| (a, OPENING)).collect();
        let mut visible = BTreeSet::new();
        for row in ledger {
            let (id, src, dst, amount) = (row[0], row[1], row[2], row[3]);
            let Some(t) = self.model.attempted.get(&id) else {
                return Err(format!("ledger row {id} was never written"));
            };
            if (t.src, t.dst, t.amount) != (src, dst, amount) {
                return Err(format!(
                    "ledger row {id} reads {row:?}, was written as {t:?}"
                ));
            }
            if self.model.failed.contains(&id) {
                return Err(format!("transfer {id} is visible, but it never committed"));
            }
            if !visible.insert(id) {
                return Err(format!("ledger row {id} is visible twice"));
            }
            *expected.get_mut(&src).expect("account") -= amount;
            *expected.get_mut(&dst).expect("account") += amount;
        }
        if let Some(lost) = acked.difference(&visible).next() {
            return Err(format!(
                "transfer {lost} was acknowledged, but a later snapshot does not hold it (lost commit)"
            ));
        }
        let got: BTreeMap<i64, i64> = balances.iter().map(|r| (r[0], r[1])).collect();
        if got != expected {
            return Err(format!(
                "balances {got:?} do not match the visible ledger, which implies {expected:?} \
                 (a torn or lost update)"
            ));
        }
        Ok(())
    }

    /// A fresh session reads everything in one snapshot: every acknowledged commit so far
    /// must be there.
    async fn check_all(&mut self) -> Check {
        let Some(node) = &self.node else {
            return Ok(());
        };
        let core = Core::new(node.db.clone());
        let acked = self.model.acked.clone();
        let mut last = String::new();
        // Reads may fail while the store's faults last; retry a few times, then clear them.
        for attempt in 0..6 {
            if attempt == 3 {
                self.faults_off();
            }
            let r = async {
                core.query("BEGIN").await?;
                let r = self.audit_in_txn(&core, &acked).await;
                let _ = core.query("ROLLBACK").await;
                r
            };
            match tokio::time::timeout(STATEMENT_MAX, r).await {
                Ok(Ok(())) => return Ok(()),
                Ok(Err(AuditError::Violation(v))) => return Err(v),
                Ok(Err(AuditError::Sql(e))) => last = format!("{} {}", e.code, e.message),
                Err(_) => last = "the audit did not finish".into(),
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        Err(format!(
            "no audit could read the data with the faults cleared: {last}"
        ))
    }

    async fn setup(&mut self) -> Check {
        self.start().await?;
        let core = Core::new(self.node.as_ref().expect("node").db.clone());
        let mut sql = String::from(
            "CREATE TABLE accounts (id bigint PRIMARY KEY, balance bigint NOT NULL); \
             CREATE TABLE ledger (id bigint PRIMARY KEY, src bigint NOT NULL, \
             dst bigint NOT NULL, amount bigint NOT NULL); \
             INSERT INTO accounts VALUES ",
        );
        let values: Vec<String> = (1..=ACCOUNTS)
            .map(|a| format!("({a}, {OPENING})"))
            .collect();
        sql.push_str(&values.join(", "));
        for stmt in sql.split("; ") {
            core.query(stmt)
                .await
                .map_err(|e| format!("setup: {stmt}: {} {}", e.code, e.message))?;
        }
        Ok(())
    }

    /// One step of the world, drawn from the seed.
    async fn step(&mut self) -> Check {
        if let Some(node) = self.node.as_mut() {
            if let Some((task, why)) = node.first_task_exit().now_or_never() {
                // `weft serve` exits here; the simulation restarts the node.
                self.note(format!("background task {task} ended: {why}"));
                self.crash();
                self.start().await?;
                return self.check_all().await;
            }
        }
        let roll = self.rng.random_range(0..1000);
        match roll {
            0..=779 => {
                let i = self.rng.random_range(0..self.clients.len());
                self.advance(i).await
            }
            780..=899 => {
                let ms = self.rng.random_range(1..2_000);
                tokio::time::sleep(Duration::from_millis(ms)).await;
                Ok(())
            }
            900..=959 => {
                let pick =
                    |rng: &mut StdRng, choices: &[u32]| choices[rng.random_range(0..choices.len())];
                let put = pick(&mut self.rng, &[0, 0, 20, 100]);
                let lost = pick(&mut self.rng, &[0, 0, 20, 100]);
                let get = pick(&mut self.rng, &[0, 0, 10, 50]);
                let hang = pick(&mut self.rng, &[0, 0, 0, 5]);
                self.set_faults(put, lost, get, hang);
                self.note(format!(
                    "faults: put_error {put}, lost_ack {lost}, get_error {get}, hang {hang} (per mille)"
                ));
                Ok(())
            }
            960..=974 => {
                let down = !self.faults.down.load(Ordering::Relaxed);
                self.faults.down.store(down, Ordering::Relaxed);
                self.note(if down { "store down" } else { "store up" });
                Ok(())
            }
            975..=980 => {
                self.crash();
                self.start().await?;
                self.check_all().await
            }
            981..=983 => {
                self.shutdown().await?;
                self.start().await?;
                self.check_all().await
            }
            984..=986 => self.takeover().await,
            _ => {
                // A long pause: flushes, compactions, retention and lease checks run.
                let s = self.rng.random_range(5..120);
                tokio::time::sleep(Duration::from_secs(s)).await;
                self.note(format!("{s} s passed"));
                Ok(())
            }
        }
    }

    async fn run_all(&mut self, steps: usize) -> Check {
        self.setup().await?;
        let check_every = env_u64("WEFT_SIM_CHECK_EVERY", 1).max(1) as usize;
        for n in 0..steps {
            self.note(format!("-- step {n}"));
            self.step().await?;
            if n % check_every == 0 {
                self.check_all().await?;
            }
        }
        // The end: faults cleared, every commit settled, everything acknowledged visible.
        self.faults_off();
        for i in 0..self.clients.len() {
            self.finish_commit(i, true).await;
        }
        self.check_all().await?;
        self.crash();
        self.start().await?;
        self.check_all().await
    }
}

enum AuditError {
    Sql(SqlError),
    Violation(String),
}

impl From<SqlError> for AuditError {
    fn from(e: SqlError) -> Self {
        AuditError::Sql(e)
    }
}

/// The rows of the last result, as i64 columns.
fn rows(replies: Vec<Reply>) -> Vec<Vec<i64>> {
    let batches: Vec<RecordBatch> = replies
        .into_iter()
        .filter_map(|r| match r {
            Reply::Outcome(Outcome::Rows { batches, .. }) => Some(batches),
            _ => None,
        })
        .next_back()
        .unwrap_or_default();
    let mut out = Vec::new();
    for b in &batches {
        for r in 0..b.num_rows() {
            out.push(
                b.columns()
                    .iter()
                    .map(|c| c.as_primitive::<Int64Type>().value(r))
                    .collect(),
            );
        }
    }
    out
}

/// The node as the simulation runs it: small flush and compaction thresholds, so that
/// a run crosses flushes, compactions, journal retention and checkpoints many times.
fn sim_config() -> NodeConfig {
    NodeConfig {
        cluster: "sim".into(),
        journals: 2,
        storage: StorageConfig {
            flush_bytes_min: 2 << 10,
            flush_age_max: Duration::from_secs(5),
            compact_segments_max: 3,
            ..StorageConfig::default()
        },
        replay_batches_max: 16,
        ..NodeConfig::default()
    }
}

struct Outcome1 {
    seed: u64,
    result: Check,
    stats: Stats,
    log: Vec<String>,
}

fn run_seed(seed: u64, config: NodeConfig, steps: usize) -> Outcome1 {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .start_paused(true)
        .build()
        .expect("runtime");
    let mut world = World::new(seed, config);
    let result = runtime.block_on(world.run_all(steps));
    world.stats.acked = world.model.acked.len() as u64;
    world.stats.failed = world.model.failed.len() as u64;
    world.stats.unknown = world.model.unknown.len() as u64;
    world.stats.faults_injected = world.faults.injected.load(Ordering::Relaxed);
    let (stats, log) = (world.stats, std::mem::take(&mut world.log));
    drop(world);
    runtime.shutdown_background();
    Outcome1 {
        seed,
        result,
        stats,
        log,
    }
}

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Runs `seeds` on two threads; returns every outcome, by seed.
fn run_seeds(
    seeds: Vec<u64>,
    config: NodeConfig,
    steps: usize,
    stop_at_first_failure: bool,
) -> Vec<Outcome1> {
    let queue = Arc::new(Mutex::new(seeds.into_iter()));
    let failed = Arc::new(AtomicU64::new(0));
    let threads: Vec<_> = (0..2)
        .map(|_| {
            let (queue, failed, config) = (queue.clone(), failed.clone(), config.clone());
            // Debug builds of DataFusion's planner need more than a thread's default stack.
            std::thread::Builder::new()
                .stack_size(256 << 20)
                .spawn(move || {
                    let mut out = Vec::new();
                    loop {
                        if stop_at_first_failure && failed.load(Ordering::Relaxed) > 0 {
                            break;
                        }
                        let Some(seed) = queue.lock().expect("queue").next() else {
                            break;
                        };
                        let o = run_seed(seed, config.clone(), steps);
                        if o.result.is_err() {
                            failed.fetch_add(1, Ordering::Relaxed);
                        }
                        out.push(o);
                    }
                    out
                })
                .expect("simulation thread")
        })
        .collect();
    let mut all: Vec<Outcome1> = threads
        .into_iter()
        .flat_map(|t| t.join().expect("simulation thread"))
        .collect();
    all.sort_by_key(|o| o.seed);
    all
}

#[test]
fn no_acknowledged_commit_is_lost_and_every_snapshot_is_consistent() {
    let steps = env_u64("WEFT_SIM_STEPS", 200) as usize;
    let seeds: Vec<u64> = match std::env::var("WEFT_SIM_SEED") {
        Ok(s) => vec![s.parse().expect("WEFT_SIM_SEED is a number")],
        Err(_) => (0..env_u64("WEFT_SIM_SEEDS", 200)).collect(),
    };
    let one = seeds.len() == 1;
    let outcomes = run_seeds(seeds, sim_config(), steps, false);
    let mut total = Stats::default();
    for o in &outcomes {
        total.acked += o.stats.acked;
        total.failed += o.stats.failed;
        total.unknown += o.stats.unknown;
        total.audits += o.stats.audits;
        total.crashes += o.stats.crashes;
        total.clean_restarts += o.stats.clean_restarts;
        total.takeovers += o.stats.takeovers;
        total.faults_injected += o.stats.faults_injected;
        if one {
            for line in &o.log {
                eprintln!("{line}");
            }
        }
    }
    eprintln!(
        "simulation: {} seeds x {steps} steps: {total:?}",
        outcomes.len()
    );
    let failures: Vec<String> = outcomes
        .iter()
        .filter_map(|o| {
            o.result.as_ref().err().map(|e| {
                let tail = o.log.len().saturating_sub(30);
                format!(
                    "seed {}: {e}\n  last steps:\n    {}\n  replay: WEFT_SIM_SEED={} cargo test -p weft --test simulation",
                    o.seed,
                    o.log[tail..].join("\n    "),
                    o.seed
                )
            })
        })
        .collect();
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
    // The run exercised what it claims to.
    // The run exercised what it claims to (not checked for a single replayed seed).
    if !one {
        assert!(
            total.acked > 0
                && total.crashes > 0
                && total.clean_restarts > 0
                && total.takeovers > 0
                && total.faults_injected > 0
                && total.audits > 0,
            "{total:?}"
        );
    }
}

#[test]
fn the_simulation_catches_lost_updates() {
    // The planted bug: the adjudicator commits every transaction without conflict
    // checks, so two concurrent transfers from one account lose an update.
    let config = NodeConfig {
        check_conflicts: false,
        ..sim_config()
    };
    let outcomes = run_seeds((0..40).collect(), config, 150, true);
    let caught = outcomes
        .iter()
        .find_map(|o| o.result.as_ref().err().map(|e| (o.seed, e.clone())));
    let Some((seed, why)) = caught else {
        panic!(
            "no seed caught the planted lost update in {} runs",
            outcomes.len()
        );
    };
    eprintln!("seed {seed} caught the planted bug: {why}");
    assert!(why.contains("lost update") || why.contains("torn"), "{why}");
}
