//! A deterministic, seeded model of weft as a cluster of processes: closed-loop clients
//! run transactions through frontends, storage nodes (reads) and adjudicator shards
//! (conflict checks and journal group commits), with network latency on every hop and,
//! optionally, the loss of one node and its takeover.
//!
//! It is a queueing model, not the system: each node is a number of cores that serve
//! requests first come, first served; a journal writes one group-commit batch at a time
//! (what queued during a write goes into the next); a hop costs a one-way latency with
//! uniform jitter. The costs are inputs (`weft bench cluster-sim --help`), taken from the
//! single-node measurements in docs/benchmarks.md. It answers how throughput and latency
//! move as nodes are added, which node kind saturates first, and what a node's loss costs
//! while its work is taken over. Conflicts are not modelled (uniform keys over a large key
//! space make them rare).
//!
//! A transaction is `reads` point SELECTs and one single-row UPDATE in one transaction
//! block, then COMMIT: every statement is a round trip client → frontend; a read and the
//! UPDATE's read of its row go on to the storage node of the key's range; the COMMIT goes
//! to the adjudicator of the key's shard, which checks it and waits for its journal batch
//! to be durable. With several shards, a fraction of transactions write a key of a second
//! shard too and commit in two phases: the second shard's check and durable write, then
//! the coordinator's.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// One node of the model.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Frontend,
    Storage,
    Adjudicator,
}

/// A node lost during the run, and how long until its work is served again.
#[derive(Debug, Clone, Copy)]
pub struct Loss {
    pub role: Role,
    /// When it dies, in simulated seconds from the start.
    pub at_s: f64,
    /// How long its requests wait for the takeover: a lease's expiry plus the new owner's
    /// recovery (storage: replay; adjudicator: claiming the journals; frontend: the
    /// client's reconnect to another frontend).
    pub takeover_ms: u64,
}

#[derive(Debug, Clone)]
pub struct ClusterSimConfig {
    pub frontends: usize,
    pub storage_nodes: usize,
    pub adjudicators: usize,
    pub journals_per_adjudicator: usize,
    pub cores_per_node: usize,
    /// Closed-loop clients, spread over the frontends.
    pub clients: usize,
    /// Point SELECTs before the UPDATE in each transaction.
    pub reads: usize,
    /// With several shards: the fraction of transactions that also write a second shard.
    pub cross_shard: f64,
    /// One-way network latency between any two processes, and uniform jitter on top.
    pub net_us: u64,
    pub net_jitter_us: u64,
    /// CPU per statement on a frontend (parse, plan, execute, encode).
    pub frontend_cpu_us: u64,
    /// CPU per point read on a storage node.
    pub storage_cpu_us: u64,
    /// CPU per commit on an adjudicator (conflict check, record encoding).
    pub adjudicator_cpu_us: u64,
    /// Time for one journal batch to become durable, and uniform jitter on top.
    pub journal_write_us: u64,
    pub journal_jitter_us: u64,
    /// Simulated seconds measured, after a warm-up second.
    pub seconds: f64,
    pub loss: Option<Loss>,
    pub seed: u64,
}

impl Default for ClusterSimConfig {
    fn default() -> Self {
        ClusterSimConfig {
            frontends: 1,
            storage_nodes: 1,
            adjudicators: 1,
            journals_per_adjudicator: 4,
            cores_per_node: 2,
            clients: 64,
            reads: 2,
            cross_shard: 0.1,
            net_us: 250,
            net_jitter_us: 100,
            frontend_cpu_us: 60,
            storage_cpu_us: 15,
            adjudicator_cpu_us: 10,
            journal_write_us: 8_000,
            journal_jitter_us: 4_000,
            seconds: 10.0,
            loss: None,
            seed: 42,
        }
    }
}

/// What a run measured (after the warm-up).
#[derive(Debug, Clone)]
pub struct ClusterSimReport {
    pub commits: u64,
    pub commits_per_s: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    /// Busy core time over available core time, per role.
    pub utilization: [(Role, f64); 3],
    /// The longest stretch of measured simulated time with no commit, in milliseconds.
    pub longest_gap_ms: f64,
}

/// A step of a transaction, done in order.
#[derive(Debug, Clone, Copy)]
enum Step {
    Net,
    Cpu(Role, usize, u64),
    Journal(usize),
}

struct Node {
    /// When each core is next free (ns).
    cores: Vec<u64>,
    busy_ns: u64,
    /// Requests that arrive before this wait until then (a lost node's takeover).
    down_until: u64,
    /// A node taken over serves from here on (storage: the next node's; frontend: another).
    moved_to: Option<usize>,
}

impl Node {
    fn new(cores: usize) -> Node {
        Node {
            cores: vec![0; cores.max(1)],
            busy_ns: 0,
            down_until: 0,
            moved_to: None,
        }
    }

    /// Serves `cost` arriving at `now`, first come, first served; returns when it is done.
    fn serve(&mut self, now: u64, cost: u64) -> u64 {
        let start = now.max(self.down_until);
        let (i, free) = self
            .cores
            .iter()
            .copied()
            .enumerate()
            .min_by_key(|&(_, f)| f)
            .expect("a node has a core");
        let begin = start.max(free);
        self.cores[i] = begin + cost;
        self.busy_ns += cost;
        begin + cost
    }
}

/// A journal: one batch in flight at a time; what arrives meanwhile goes into the next.
#[derive(Default)]
struct Journal {
    /// When the batch in flight is durable.
    busy_until: u64,
    /// When the next batch (already collecting commits) will be durable.
    next_done: Option<u64>,
}

impl Journal {
    fn commit(&mut self, now: u64, write: u64) -> u64 {
        if self.busy_until <= now {
            // Idle: the next batch, if it was collecting, has started and ended already.
            self.next_done = None;
            self.busy_until = now + write;
            return self.busy_until;
        }
        match self.next_done {
            Some(done) => done,
            None => {
                let done = self.busy_until + write;
                self.next_done = Some(done);
                done
            }
        }
    }

    /// Moves the batch collecting into flight when the one in flight ends.
    fn settle(&mut self, now: u64) {
        if let Some(done) = self.next_done {
            if self.busy_until <= now {
                self.busy_until = done;
                self.next_done = None;
            }
        }
    }
}

struct Client {
    frontend: usize,
    steps: Vec<Step>,
    next: usize,
    started: u64,
}

pub fn simulate(c: &ClusterSimConfig) -> ClusterSimReport {
    let mut rng = StdRng::seed_from_u64(c.seed);
    let us = 1_000u64;
    let mut nodes: Vec<Vec<Node>> = [c.frontends, c.storage_nodes, c.adjudicators]
        .iter()
        .map(|&n| (0..n.max(1)).map(|_| Node::new(c.cores_per_node)).collect())
        .collect();
    let role_index = |r: Role| match r {
        Role::Frontend => 0,
        Role::Storage => 1,
        Role::Adjudicator => 2,
    };
    let shards = c.adjudicators.max(1);
    let mut journals: Vec<Journal> = (0..shards * c.journals_per_adjudicator.max(1))
        .map(|_| Journal::default())
        .collect();
    let warmup = 1_000_000_000u64;
    let end = warmup + (c.seconds * 1e9) as u64;
    let loss_at = c.loss.map(|l| warmup + (l.at_s * 1e9) as u64);
    let mut lost = false;

    let mut clients: Vec<Client> = (0..c.clients)
        .map(|i| Client {
            frontend: i % c.frontends.max(1),
            steps: Vec::new(),
            next: 0,
            started: 0,
        })
        .collect();
    // (time, sequence, client): the sequence makes ties deterministic.
    let mut events: BinaryHeap<Reverse<(u64, u64, usize)>> = BinaryHeap::new();
    let mut seq = 0u64;
    let mut latencies: Vec<u64> = Vec::new();
    let mut commit_times: Vec<u64> = Vec::new();
    for i in 0..clients.len() {
        events.push(Reverse((i as u64 * 1_000, seq, i)));
        seq += 1;
    }

    while let Some(Reverse((now, _, i))) = events.pop() {
        if now >= end {
            break;
        }
        if let (Some(at), false) = (loss_at, lost) {
            if now >= at {
                lost = true;
                let l = c.loss.expect("a loss is configured");
                let r = role_index(l.role);
                let until = at + l.takeover_ms * 1_000_000;
                let count = nodes[r].len();
                nodes[r][0].down_until = until;
                if l.role != Role::Adjudicator && count > 1 {
                    // Its work moves to a survivor, which serves it after the takeover. (A
                    // lost adjudicator's standby takes over the same shard.)
                    nodes[r][0].moved_to = Some(1);
                }
            }
        }
        let client = &mut clients[i];
        if client.next == client.steps.len() {
            // A transaction ends (or the first begins): record it, then plan the next.
            if client.started > 0 && now >= warmup {
                latencies.push(now - client.started);
                commit_times.push(now);
            }
            client.steps = plan(c, &mut rng, client.frontend, shards);
            client.next = 0;
            client.started = now;
        }
        let step = client.steps[client.next];
        client.next += 1;
        let done = match step {
            Step::Net => now + c.net_us * us + rng.random_range(0..=c.net_jitter_us) * us,
            Step::Cpu(role, n, cost) => {
                let r = role_index(role);
                let n = n % nodes[r].len();
                // A lost node's requests wait out its takeover, then its successor serves.
                let at = now.max(nodes[r][n].down_until);
                let n = nodes[r][n].moved_to.unwrap_or(n);
                nodes[r][n].serve(at, cost * us)
            }
            Step::Journal(j) => {
                let shard = j / c.journals_per_adjudicator.max(1);
                let down = nodes[2][shard].down_until;
                let at = now.max(down);
                journals[j].settle(at);
                journals[j].commit(
                    at,
                    c.journal_write_us * us + rng.random_range(0..=c.journal_jitter_us) * us,
                )
            }
        };
        events.push(Reverse((done, seq, i)));
        seq += 1;
    }

    latencies.sort_unstable();
    // The measured span's ends count as commits for the gaps: a run that stops committing
    // before its end has paused until then.
    commit_times.push(warmup);
    commit_times.push(end);
    commit_times.sort_unstable();
    let pct = |p: f64| {
        if latencies.is_empty() {
            0.0
        } else {
            let k = ((latencies.len() as f64 * p).ceil() as usize).clamp(1, latencies.len()) - 1;
            latencies[k] as f64 / 1e6
        }
    };
    let longest_gap = commit_times
        .windows(2)
        .map(|w| w[1] - w[0])
        .max()
        .unwrap_or(0);
    let span = end as f64;
    let util = |r: usize| {
        let cores: usize = nodes[r].iter().map(|n| n.cores.len()).sum();
        nodes[r].iter().map(|n| n.busy_ns).sum::<u64>() as f64 / (cores as f64 * span)
    };
    ClusterSimReport {
        commits: latencies.len() as u64,
        commits_per_s: latencies.len() as f64 / c.seconds,
        p50_ms: pct(0.5),
        p99_ms: pct(0.99),
        max_ms: latencies.last().map(|&l| l as f64 / 1e6).unwrap_or(0.0),
        utilization: [
            (Role::Frontend, util(0)),
            (Role::Storage, util(1)),
            (Role::Adjudicator, util(2)),
        ],
        longest_gap_ms: longest_gap as f64 / 1e6,
    }
}

/// The steps of one transaction from a client of `frontend`.
fn plan(c: &ClusterSimConfig, rng: &mut StdRng, frontend: usize, shards: usize) -> Vec<Step> {
    let fe = |cost| Step::Cpu(Role::Frontend, frontend, cost);
    let storage = c.storage_nodes.max(1);
    let mut steps = Vec::new();
    // A statement: client → frontend, the frontend's work, (a storage read), → client.
    let statement = |steps: &mut Vec<Step>, key: Option<u64>| {
        steps.push(Step::Net);
        steps.push(fe(c.frontend_cpu_us));
        if let Some(k) = key {
            steps.push(Step::Net);
            steps.push(Step::Cpu(
                Role::Storage,
                (k % storage as u64) as usize,
                c.storage_cpu_us,
            ));
            steps.push(Step::Net);
        }
        steps.push(Step::Net);
    };
    statement(&mut steps, None); // BEGIN
    for _ in 0..c.reads {
        statement(&mut steps, Some(rng.random()));
    }
    let key: u64 = rng.random();
    statement(&mut steps, Some(key)); // UPDATE: reads its row, buffers the write
                                      // COMMIT: client → frontend → adjudicator(s) → journal → frontend → client.
    steps.push(Step::Net);
    steps.push(fe(c.frontend_cpu_us));
    let shard = (key % shards as u64) as usize;
    let journal = |rng: &mut StdRng, s: usize| {
        Step::Journal(
            s * c.journals_per_adjudicator.max(1)
                + rng.random_range(0..c.journals_per_adjudicator.max(1)),
        )
    };
    if shards > 1 && rng.random_bool(c.cross_shard.clamp(0.0, 1.0)) {
        // Two phases: the other shard prepares durably, then the coordinator commits.
        let other = (shard + 1 + rng.random_range(0..shards - 1)) % shards;
        steps.push(Step::Net);
        steps.push(Step::Cpu(Role::Adjudicator, other, c.adjudicator_cpu_us));
        steps.push(journal(rng, other));
        steps.push(Step::Net);
    }
    steps.push(Step::Net);
    steps.push(Step::Cpu(Role::Adjudicator, shard, c.adjudicator_cpu_us));
    steps.push(journal(rng, shard));
    steps.push(Step::Net);
    steps.push(Step::Net);
    steps
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(f: usize, s: usize, a: usize, clients: usize) -> ClusterSimReport {
        simulate(&ClusterSimConfig {
            frontends: f,
            storage_nodes: s,
            adjudicators: a,
            clients,
            seconds: 3.0,
            ..Default::default()
        })
    }

    #[test]
    fn a_seed_replays_alike() {
        let a = run(2, 2, 1, 64);
        let b = run(2, 2, 1, 64);
        assert_eq!(a.commits, b.commits);
        assert_eq!(a.p99_ms, b.p99_ms);
    }

    #[test]
    fn an_idle_transaction_costs_its_hops_and_one_journal_write() {
        // One client: no queueing. BEGIN, 2 reads, UPDATE, COMMIT: 5 client round trips,
        // 3 storage round trips, 1 adjudicator round trip = 18 hops of 250-350 µs, 5 frontend
        // statements, and one journal write of 8-12 ms.
        let r = run(1, 1, 1, 1);
        assert!(
            r.p50_ms > 18.0 * 0.25 + 8.0 && r.p50_ms < 18.0 * 0.35 + 12.5,
            "{r:?}"
        );
    }

    #[test]
    fn frontends_saturate_first_and_adding_them_scales_throughput() {
        // Many clients per frontend: the frontends' cores are the bottleneck.
        let one = run(1, 1, 1, 400);
        let four = run(4, 4, 1, 1600);
        assert!(one.utilization[0].1 > 0.9, "{one:?}");
        assert!(
            four.commits_per_s > 3.5 * one.commits_per_s,
            "{} vs {}",
            four.commits_per_s,
            one.commits_per_s
        );
    }

    #[test]
    fn a_lost_storage_node_stops_commits_for_about_its_takeover() {
        let r = simulate(&ClusterSimConfig {
            frontends: 2,
            storage_nodes: 2,
            clients: 128,
            seconds: 4.0,
            loss: Some(Loss {
                role: Role::Storage,
                at_s: 1.0,
                takeover_ms: 2_000,
            }),
            ..Default::default()
        });
        // Every transaction reads from both ranges sooner or later: commits stop while the
        // lost range's reads wait, then resume.
        assert!(
            r.longest_gap_ms > 1_500.0 && r.longest_gap_ms < 2_100.0,
            "{r:?}"
        );
        assert!(r.commits > 0);
    }
}
