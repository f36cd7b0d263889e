//! A client of etcd's v3 API through its JSON gateway (`POST /v3/...`, keys and values in
//! base64, 64-bit numbers as strings). The gateway ships with every etcd server since
//! 3.3, so weft needs neither protoc nor a generated gRPC client for the few calls it
//! makes. Every call has a deadline ([`CALL_TIMEOUT`]).

use std::time::Duration;

use anyhow::{anyhow, bail, Context};
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use serde_json::{json, Value};

/// The deadline of one call to etcd.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(2);

/// A key's stored value and the revision that created it (a leader's term).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Kv {
    pub key: String,
    pub value: Vec<u8>,
    pub create_revision: i64,
    pub lease: i64,
}

/// An etcd cluster, by one or more of its members' endpoints (`http://host:port`). A
/// call goes to the endpoint that answered last; one that cannot be reached moves calls
/// to the next.
#[derive(Debug, Clone)]
pub struct Etcd {
    http: reqwest::Client,
    endpoints: std::sync::Arc<Vec<String>>,
    current: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

fn num(v: &Value) -> i64 {
    match v {
        Value::String(s) => s.parse().unwrap_or(0),
        Value::Number(n) => n.as_i64().unwrap_or(0),
        _ => 0,
    }
}

fn kv(v: &Value) -> anyhow::Result<Kv> {
    let field = |name: &str| -> anyhow::Result<Vec<u8>> {
        match v.get(name).and_then(Value::as_str) {
            Some(s) => B64
                .decode(s)
                .with_context(|| format!("etcd: {name} is not base64")),
            None => Ok(Vec::new()),
        }
    };
    Ok(Kv {
        key: String::from_utf8_lossy(&field("key")?).into_owned(),
        value: field("value")?,
        create_revision: v.get("create_revision").map(num).unwrap_or(0),
        lease: v.get("lease").map(num).unwrap_or(0),
    })
}

impl Etcd {
    /// `urls`: `http://host:port` or `host:port`, several separated by commas.
    pub fn new(urls: &str) -> anyhow::Result<Etcd> {
        let endpoints: Vec<String> = urls
            .split(',')
            .map(str::trim)
            .filter(|u| !u.is_empty())
            .map(|u| {
                if u.contains("://") {
                    u.trim_end_matches('/').to_string()
                } else {
                    format!("http://{}", u.trim_end_matches('/'))
                }
            })
            .collect();
        if endpoints.is_empty() {
            bail!("no etcd endpoint given");
        }
        let http = reqwest::Client::builder()
            .timeout(CALL_TIMEOUT)
            .connect_timeout(CALL_TIMEOUT)
            .build()
            .context("building the etcd client")?;
        Ok(Etcd {
            http,
            endpoints: std::sync::Arc::new(endpoints),
            current: Default::default(),
        })
    }

    /// A client of the same endpoints with a connection pool of its own: for use on
    /// another runtime (a pooled connection belongs to the runtime that made it).
    pub fn fresh(&self) -> anyhow::Result<Etcd> {
        Etcd::new(&self.endpoints.join(","))
    }

    /// The endpoint calls go to now.
    pub fn url(&self) -> &str {
        let i = self.current.load(std::sync::atomic::Ordering::Relaxed);
        &self.endpoints[i % self.endpoints.len()]
    }

    async fn post(&self, path: &str, body: Value) -> anyhow::Result<Value> {
        let i = self.current.load(std::sync::atomic::Ordering::Relaxed);
        let base = &self.endpoints[i % self.endpoints.len()];
        let sent = self
            .http
            .post(format!("{base}/v3/{path}"))
            .body(body.to_string())
            .send()
            .await;
        let resp = match sent {
            Ok(r) => r,
            Err(e) => {
                // Unreachable: the next call tries the next member.
                let _ = self.current.compare_exchange(
                    i,
                    (i + 1) % self.endpoints.len(),
                    std::sync::atomic::Ordering::Relaxed,
                    std::sync::atomic::Ordering::Relaxed,
                );
                return Err(anyhow!(e).context(format!("etcd at {base}")));
            }
        };
        let status = resp.status();
        let text = resp
            .text()
            .await
            .with_context(|| format!("etcd at {base}"))?;
        if !status.is_success() {
            bail!("etcd at {base} answered {status} to {path}: {text}");
        }
        serde_json::from_str(&text).with_context(|| format!("etcd's answer to {path}: {text}"))
    }

    /// A lease of `ttl` seconds: its id.
    pub async fn grant(&self, ttl_s: u64) -> anyhow::Result<i64> {
        let v = self.post("lease/grant", json!({ "TTL": ttl_s })).await?;
        if let Some(e) = v.get("error").and_then(Value::as_str) {
            bail!("etcd refused a lease: {e}");
        }
        let id = v.get("ID").map(num).unwrap_or(0);
        if id == 0 {
            bail!("etcd granted no lease: {v}");
        }
        Ok(id)
    }

    /// Renews a lease: the seconds it now has left, 0 when it has already expired.
    pub async fn keep_alive(&self, lease: i64) -> anyhow::Result<i64> {
        let v = self
            .post("lease/keepalive", json!({ "ID": lease.to_string() }))
            .await?;
        let r = v.get("result").unwrap_or(&v);
        Ok(r.get("TTL").map(num).unwrap_or(0))
    }

    pub async fn revoke(&self, lease: i64) -> anyhow::Result<()> {
        self.post("lease/revoke", json!({ "ID": lease.to_string() }))
            .await?;
        Ok(())
    }

    /// Creates `key` under `lease` unless it exists: `Ok(revision)` when created, else
    /// `Err` with what is there.
    pub async fn create_if_absent(
        &self,
        key: &str,
        value: &[u8],
        lease: i64,
    ) -> anyhow::Result<Result<i64, Kv>> {
        let k = B64.encode(key);
        let v = self
            .post(
                "kv/txn",
                json!({
                    "compare": [{ "key": k, "target": "CREATE", "create_revision": "0" }],
                    "success": [{ "requestPut": { "key": k, "value": B64.encode(value), "lease": lease.to_string() } }],
                    "failure": [{ "requestRange": { "key": k } }],
                }),
            )
            .await?;
        let revision = v
            .get("header")
            .and_then(|h| h.get("revision"))
            .map(num)
            .unwrap_or(0);
        if v.get("succeeded").and_then(Value::as_bool) == Some(true) {
            return Ok(Ok(revision));
        }
        let existing = v
            .get("responses")
            .and_then(|r| r.get(0))
            .and_then(|r| r.get("response_range"))
            .and_then(|r| r.get("kvs"))
            .and_then(|k| k.get(0));
        match existing {
            Some(e) => Ok(Err(kv(e)?)),
            // Deleted between the compare and the read: try again.
            None => Ok(Err(Kv {
                key: key.into(),
                value: Vec::new(),
                create_revision: 0,
                lease: 0,
            })),
        }
    }

    pub async fn get(&self, key: &str) -> anyhow::Result<Option<Kv>> {
        let v = self
            .post("kv/range", json!({ "key": B64.encode(key) }))
            .await?;
        match v.get("kvs").and_then(|k| k.get(0)) {
            Some(e) => Ok(Some(kv(e)?)),
            None => Ok(None),
        }
    }

    /// Every key under `prefix`.
    pub async fn list(&self, prefix: &str) -> anyhow::Result<Vec<Kv>> {
        let mut end = prefix.as_bytes().to_vec();
        match end.last_mut() {
            Some(b) if *b < 0xff => *b += 1,
            _ => return Err(anyhow!("etcd: an empty or 0xff-ended prefix")),
        }
        let v = self
            .post(
                "kv/range",
                json!({ "key": B64.encode(prefix), "range_end": B64.encode(end) }),
            )
            .await?;
        v.get("kvs")
            .and_then(Value::as_array)
            .map(|a| a.iter().map(kv).collect())
            .unwrap_or(Ok(Vec::new()))
    }

    /// Puts `key` under `lease` (0: none).
    pub async fn put(&self, key: &str, value: &[u8], lease: i64) -> anyhow::Result<()> {
        self.post(
            "kv/put",
            json!({ "key": B64.encode(key), "value": B64.encode(value), "lease": lease.to_string() }),
        )
        .await?;
        Ok(())
    }

    /// The server's version (a liveness probe).
    pub async fn version(&self) -> anyhow::Result<String> {
        let v = self.post("maintenance/status", json!({})).await?;
        Ok(v.get("version")
            .and_then(Value::as_str)
            .unwrap_or("?")
            .to_string())
    }
}
