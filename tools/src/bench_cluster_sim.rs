//! `weft bench cluster-sim`: the cluster model of [`weft::cluster_sim`] run at growing
//! sizes, then with one node of each kind lost, as a markdown table.

use clap::Args;
use weft::cluster_sim::{simulate, ClusterSimConfig, Loss, Role};

#[derive(Args, Debug)]
pub struct ClusterSimArgs {
    /// Simulated seconds per run (after a warm-up second).
    #[arg(long, default_value_t = 10.0)]
    pub seconds: f64,
    /// Closed-loop clients per frontend.
    #[arg(long, default_value_t = 200)]
    pub clients_per_frontend: usize,
    /// Cores per node.
    #[arg(long, default_value_t = 2)]
    pub cores: usize,
    /// One-way network latency between processes (µs).
    #[arg(long, default_value_t = ClusterSimConfig::default().net_us)]
    pub net_us: u64,
    /// CPU per statement on a frontend (µs).
    #[arg(long, default_value_t = ClusterSimConfig::default().frontend_cpu_us)]
    pub frontend_cpu_us: u64,
    /// CPU per point read on a storage node (µs).
    #[arg(long, default_value_t = ClusterSimConfig::default().storage_cpu_us)]
    pub storage_cpu_us: u64,
    /// CPU per commit on an adjudicator (µs).
    #[arg(long, default_value_t = ClusterSimConfig::default().adjudicator_cpu_us)]
    pub adjudicator_cpu_us: u64,
    /// Time for a journal batch to become durable (µs; an S3 PUT by default).
    #[arg(long, default_value_t = ClusterSimConfig::default().journal_write_us)]
    pub journal_write_us: u64,
    /// How long a lost node's work waits for its takeover (ms).
    #[arg(long, default_value_t = 3_000)]
    pub takeover_ms: u64,
}

pub fn cluster_sim(a: &ClusterSimArgs) {
    let base = ClusterSimConfig {
        cores_per_node: a.cores,
        net_us: a.net_us,
        frontend_cpu_us: a.frontend_cpu_us,
        storage_cpu_us: a.storage_cpu_us,
        adjudicator_cpu_us: a.adjudicator_cpu_us,
        journal_write_us: a.journal_write_us,
        journal_jitter_us: a.journal_write_us / 2,
        seconds: a.seconds,
        ..Default::default()
    };
    println!(
        "| nodes | frontends | storage | adjudicators | clients | commits/s | p50 ms | p99 ms | busiest role (utilization) | lost | longest pause ms |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|");
    let sizes = [
        (1, 1, 1),
        (2, 2, 1),
        (3, 3, 1),
        (4, 4, 2),
        (5, 3, 2),
        (4, 4, 2),
    ];
    let mut rows: Vec<(ClusterSimConfig, &str)> = sizes
        .iter()
        .take(5)
        .map(|&(f, s, j)| {
            (
                ClusterSimConfig {
                    frontends: f,
                    storage_nodes: s,
                    adjudicators: j,
                    clients: f * a.clients_per_frontend,
                    ..base.clone()
                },
                "none",
            )
        })
        .collect();
    let (f, s, j) = sizes[5];
    for (role, label) in [
        (Role::Frontend, "a frontend"),
        (Role::Storage, "a storage node"),
        (Role::Adjudicator, "the leader of one shard"),
    ] {
        rows.push((
            ClusterSimConfig {
                frontends: f,
                storage_nodes: s,
                adjudicators: j,
                clients: f * a.clients_per_frontend,
                loss: Some(Loss {
                    role,
                    at_s: a.seconds / 4.0,
                    takeover_ms: a.takeover_ms,
                }),
                ..base.clone()
            },
            label,
        ));
    }
    for (c, lost) in rows {
        let r = simulate(&c);
        let (role, util) = r
            .utilization
            .iter()
            .copied()
            .max_by(|x, y| x.1.total_cmp(&y.1))
            .expect("three roles");
        println!(
            "| {} | {} | {} | {} | {} | {:.0} | {:.1} | {:.1} | {:?} ({:.0}%) | {lost} | {:.0} |",
            c.frontends + c.storage_nodes + c.adjudicators,
            c.frontends,
            c.storage_nodes,
            c.adjudicators,
            c.clients,
            r.commits_per_s,
            r.p50_ms,
            r.p99_ms,
            role,
            util * 100.0,
            r.longest_gap_ms,
        );
    }
    println!(
        "\nreproduce: weft bench cluster-sim --seconds {} --clients-per-frontend {} --cores {} --net-us {} --frontend-cpu-us {} --storage-cpu-us {} --adjudicator-cpu-us {} --journal-write-us {} --takeover-ms {}",
        a.seconds,
        a.clients_per_frontend,
        a.cores,
        a.net_us,
        a.frontend_cpu_us,
        a.storage_cpu_us,
        a.adjudicator_cpu_us,
        a.journal_write_us,
        a.takeover_ms
    );
}
