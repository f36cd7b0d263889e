//! The cluster side of `weft serve --etcd` and `weft frontend --etcd`: electing the
//! serving process, announcing every process as a member, finding the leader, and
//! `weft cluster status`.

use std::time::Duration;

use anyhow::{bail, Context};
use clap::Args;
use serde_json::{json, Value};
use weft::coord::election::{self, Leadership};
use weft::coord::etcd::Etcd;
use weft::coord::leader_key;

/// The time to live of a member's registration.
const MEMBER_TTL: Duration = Duration::from_secs(3);

fn members_prefix(cluster: &str) -> String {
    format!("/weft/{cluster}/members/")
}

fn host() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_default()
}

/// What a process says of itself in etcd.
pub fn announcement(role: &str, listen: &str, rpc: Option<&str>, metrics: Option<&str>) -> Value {
    json!({
        "role": role,
        "listen": listen,
        "rpc": rpc,
        "metrics": metrics,
        "pid": std::process::id(),
        "host": host(),
    })
}

/// Announces this process as a member of `cluster` for as long as it lives.
pub fn join(etcd: &Etcd, cluster: &str, me: &Value) {
    let key = format!(
        "{}{}/{}@{}",
        members_prefix(cluster),
        me["role"].as_str().unwrap_or("?"),
        std::process::id(),
        host()
    );
    election::register(etcd.clone(), key, me.to_string().into_bytes(), MEMBER_TTL);
}

/// Who campaigns: a serving process's cluster and addresses.
pub struct Candidate<'a> {
    pub etcd: &'a str,
    pub cluster: &'a str,
    /// Its PostgreSQL listener.
    pub listen: &'a str,
    /// Where frontends reach its RPC listener.
    pub rpc: Option<&'a str>,
    /// Its metrics endpoint, if any.
    pub metrics: Option<&'a str>,
    pub ttl: Duration,
}

/// Waits until this process leads its cluster, then returns its leadership.
pub async fn lead(c: Candidate<'_>) -> anyhow::Result<Leadership> {
    let Some(rpc) = c.rpc else {
        bail!("--etcd needs --rpc-listen: frontends reach the leader there");
    };
    let etcd = Etcd::new(c.etcd)?;
    let me = announcement("serve", c.listen, Some(rpc), c.metrics);
    join(&etcd, c.cluster, &me);
    let key = leader_key(c.cluster);
    tracing::info!(etcd = %etcd.url(), key = %key, "etcd: campaigning to lead the cluster");
    let ttl = c.ttl;
    let leadership = election::campaign(&etcd, &key, me.to_string().as_bytes(), ttl, |holder| {
        tracing::info!(
            leader = %String::from_utf8_lossy(&holder.value),
            term = holder.create_revision,
            "etcd: standing by; another process leads"
        )
    })
    .await?;
    tracing::info!(
        term = leadership.term,
        lease_ttl_s = ttl.as_secs(),
        "etcd: elected leader; taking the store over"
    );
    Ok(leadership)
}

/// The leader's announced RPC address, if there is a leader.
pub async fn leader_rpc(etcd: &Etcd, cluster: &str) -> anyhow::Result<Option<String>> {
    let Some(kv) = etcd.get(&leader_key(cluster)).await? else {
        return Ok(None);
    };
    let v: Value = serde_json::from_slice(&kv.value).context("the leader key's value")?;
    Ok(v["rpc"].as_str().map(str::to_string))
}

#[derive(Args, Debug)]
pub struct ClusterStatusArgs {
    /// etcd, `http://host:port` (several separated by commas).
    #[arg(long, value_name = "URL")]
    pub etcd: String,
    /// The cluster id.
    #[arg(long, default_value = "default")]
    pub cluster: String,
}

/// `weft cluster status`: every live process of the cluster, its role, and the leader's
/// epoch and lag as it reports them.
pub async fn status(args: ClusterStatusArgs) -> anyhow::Result<()> {
    let etcd = Etcd::new(&args.etcd)?;
    let version = etcd
        .version()
        .await
        .with_context(|| format!("etcd at {}", etcd.url()))?;
    let leader = etcd.get(&leader_key(&args.cluster)).await?;
    let leader_v: Option<Value> = leader
        .as_ref()
        .and_then(|kv| serde_json::from_slice(&kv.value).ok());
    println!(
        "cluster {}  (etcd {} at {})",
        args.cluster,
        version,
        etcd.url()
    );
    match (&leader, &leader_v) {
        (Some(kv), Some(v)) => {
            let rpc = v["rpc"].as_str().unwrap_or("?");
            let detail = match weft_rpc::peer::Peer::new(rpc) {
                Ok(peer) => {
                    let commits = weft_rpc::client::RemoteCommits::new(
                        peer,
                        std::sync::Arc::new(weft_engine::SystemClock::new(0)),
                    );
                    match commits.status().await {
                        Ok(s) => format!(
                            "epoch {}  commits in flight {}  storage applied {} ms behind the newest durable commit",
                            s.epoch,
                            s.in_flight,
                            s.durable.saturating_sub(s.applied) / 1_000_000
                        ),
                        Err(e) => format!("not answering: {e}"),
                    }
                }
                Err(e) => format!("bad address: {e}"),
            };
            println!(
                "leader: pid {} on {}  rpc {}  term {}  {}",
                v["pid"],
                v["host"].as_str().unwrap_or("?"),
                rpc,
                kv.create_revision,
                detail
            );
        }
        _ => println!("leader: none"),
    }
    println!(
        "{:<10} {:<8} {:<16} {:<22} {:<22} state",
        "role", "pid", "host", "listen", "rpc"
    );
    let mut members = etcd.list(&members_prefix(&args.cluster)).await?;
    members.sort_by(|a, b| a.key.cmp(&b.key));
    for m in members {
        let v: Value = serde_json::from_slice(&m.value).unwrap_or(Value::Null);
        let is_leader = leader_v
            .as_ref()
            .is_some_and(|l| l["pid"] == v["pid"] && l["host"] == v["host"]);
        let role = v["role"].as_str().unwrap_or("?");
        let state = match role {
            "serve" if is_leader => "leader",
            "serve" => "standby",
            _ => "serving",
        };
        println!(
            "{:<10} {:<8} {:<16} {:<22} {:<22} {:<22} {}",
            role,
            v["pid"],
            v["host"].as_str().unwrap_or("?"),
            v["listen"].as_str().unwrap_or("-"),
            v["rpc"].as_str().unwrap_or("-"),
            v["metrics"].as_str().unwrap_or("-"),
            state
        );
    }
    Ok(())
}
