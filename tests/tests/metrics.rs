//! The metrics endpoint (`weft serve --metrics-listen`): scraped as Prometheus would, and
//! parsed by the Prometheus project's Python client (tests/metrics/scrape.py), its
//! counters and histograms must move by exactly what clients did (commits, a conflict's
//! 40001, a statement error, reads by the fast path, journal records), its gauges must say
//! how many sessions are open, and its bounds (connections, methods, paths) must hold.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Command;

use weft_tests::{free_port, sqlstate, Server};

fn python() -> Option<PathBuf> {
    weft_tests::python("prometheus_client")
}

struct Scrape {
    status: u64,
    content_type: String,
    families: BTreeMap<String, String>,
    samples: BTreeMap<String, f64>,
}

impl Scrape {
    /// The sample `key` (`name{label=value,...}`, labels sorted); panics if absent.
    fn get(&self, key: &str) -> f64 {
        *self
            .samples
            .get(key)
            .unwrap_or_else(|| panic!("no sample {key} in {:#?}", self.samples.keys()))
    }

    /// The sample `key`, or 0 when it does not exist yet (a label never seen).
    fn get_or_zero(&self, key: &str) -> f64 {
        self.samples.get(key).copied().unwrap_or(0.0)
    }

    /// The sum of every sample of `name`, whatever its labels.
    fn sum(&self, name: &str) -> f64 {
        self.samples
            .iter()
            .filter(|(k, _)| k.split('{').next() == Some(name))
            .map(|(_, v)| v)
            .sum()
    }
}

/// Runs the scraper; `Err` with its stderr when it could not scrape.
fn try_scrape(python: &PathBuf, url: &str, method: &str) -> Result<Scrape, String> {
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("metrics")
        .join("scrape.py");
    let out = Command::new(python)
        .arg(script)
        .arg(url)
        .arg(method)
        .output()
        .expect("run the scraper");
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).into_owned());
    }
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("the scraper's JSON");
    let map = |k: &str| {
        v.get(k)
            .and_then(|m| m.as_object())
            .cloned()
            .unwrap_or_default()
    };
    Ok(Scrape {
        status: v["status"].as_u64().unwrap(),
        content_type: v["content_type"].as_str().unwrap_or_default().to_string(),
        families: map("families")
            .into_iter()
            .map(|(k, t)| (k, t.as_str().unwrap().to_string()))
            .collect(),
        samples: map("samples")
            .into_iter()
            .map(|(k, x)| (k, x.as_f64().unwrap()))
            .collect(),
    })
}

fn scrape(python: &PathBuf, url: &str) -> Scrape {
    try_scrape(python, url, "GET").unwrap_or_else(|e| panic!("scraping {url}: {e}"))
}

fn start() -> (tempfile::TempDir, Server, String) {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let server = Server::start_with(&dir.path().join("data"), &["--metrics-listen", &listen]);
    (dir, server, format!("http://{listen}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn counters_move_by_what_clients_did() {
    let Some(py) = python() else { return };
    let (_dir, server, base) = start();
    let url = format!("{base}/metrics");
    let before = scrape(&py, &url);
    assert_eq!(before.status, 200);
    assert!(
        before
            .content_type
            .starts_with("application/openmetrics-text"),
        "{}",
        before.content_type
    );
    for (name, kind) in [
        ("weft_commits", "counter"),
        ("weft_commit_seconds", "histogram"),
        ("weft_statement_seconds", "histogram"),
        ("weft_journal_write_seconds", "histogram"),
        ("weft_sessions", "gauge"),
        ("weft_journal_watermark_lag_seconds", "gauge"),
        ("weft_crossbar_lag_seconds", "gauge"),
        ("weft_storage_apply_lag_seconds", "gauge"),
        ("weft_segment_cache_hits", "counter"),
    ] {
        assert_eq!(
            before.families.get(name).map(String::as_str),
            Some(kind),
            "family {name} in {:?}",
            before.families
        );
    }
    assert_eq!(before.get("weft_sessions{}"), 0.0);
    // The default node has two journals: each has its lag, and no commit waits.
    assert_eq!(
        before.get("weft_journal_watermark_lag_seconds{journal=0}"),
        0.0
    );
    assert_eq!(
        before.get("weft_journal_watermark_lag_seconds{journal=1}"),
        0.0
    );

    let c = server.connect().await;
    c.batch_execute("CREATE TABLE m (id int PRIMARY KEY, v int)")
        .await
        .unwrap();
    for i in 0..10i32 {
        c.execute("INSERT INTO m VALUES ($1, 0)", &[&i])
            .await
            .unwrap();
    }
    for i in 0..5i32 {
        let rows = c
            .query("SELECT v FROM m WHERE id = $1", &[&i])
            .await
            .unwrap();
        assert_eq!(rows.len(), 1);
    }
    // First committer wins; the second COMMIT is refused with 40001.
    let a = server.connect().await;
    let b = server.connect().await;
    a.batch_execute("BEGIN").await.unwrap();
    a.execute("UPDATE m SET v = 1 WHERE id = 1", &[])
        .await
        .unwrap();
    b.batch_execute("BEGIN").await.unwrap();
    b.execute("UPDATE m SET v = 2 WHERE id = 1", &[])
        .await
        .unwrap();
    a.batch_execute("COMMIT").await.unwrap();
    let e = b.batch_execute("COMMIT").await.unwrap_err();
    assert_eq!(sqlstate(&e), "40001");
    let e = c.query("SELECT 1 / 0", &[]).await.unwrap_err();
    assert_eq!(sqlstate(&e), "22012");
    // Errors before a statement runs count too: a syntax error in a query string, and a
    // Parse naming a table that does not exist.
    let e = c.batch_execute("SELEC 1").await.unwrap_err();
    assert_eq!(sqlstate(&e), "42601");
    let e = c.prepare("SELECT * FROM no_such_table").await.unwrap_err();
    assert_eq!(sqlstate(&e), "42P01");

    let after = scrape(&py, &url);
    let delta = |key: &str| after.get(key) - before.get_or_zero(key);
    // CREATE TABLE, ten inserts and the winner's update.
    assert_eq!(delta("weft_commits_total{}"), 12.0);
    assert_eq!(delta("weft_commit_seconds_count{}"), 12.0);
    assert!(delta("weft_commit_seconds_sum{}") > 0.0);
    assert_eq!(delta("weft_commit_failures_total{sqlstate=40001}"), 1.0);
    assert_eq!(delta("weft_statement_errors_total{sqlstate=40001}"), 1.0);
    assert_eq!(delta("weft_statement_errors_total{sqlstate=22012}"), 1.0);
    assert_eq!(delta("weft_statement_errors_total{sqlstate=42601}"), 1.0);
    assert_eq!(delta("weft_statement_errors_total{sqlstate=42P01}"), 1.0);
    assert_eq!(delta("weft_statements_total{kind=write}"), 12.0);
    assert_eq!(delta("weft_statement_seconds_count{kind=write}"), 12.0);
    assert_eq!(delta("weft_statements_total{kind=read}"), 6.0);
    assert_eq!(delta("weft_statements_total{kind=transaction}"), 4.0);
    assert_eq!(delta("weft_statements_total{kind=other}"), 1.0);
    assert_eq!(delta("weft_point_selects_total{}"), 5.0);
    // Every commit's record went into one journal batch or another.
    let records =
        after.sum("weft_journal_records_total") - before.sum("weft_journal_records_total");
    let batches =
        after.sum("weft_journal_batches_total") - before.sum("weft_journal_batches_total");
    assert_eq!(records, 12.0);
    // Every commit that wrote went through each phase once.
    for phase in ["encode", "queue", "check", "durable"] {
        assert_eq!(
            delta(&format!("weft_commit_phase_seconds_count{{phase={phase}}}")),
            12.0,
            "{phase}"
        );
    }
    assert!((1.0..=12.0).contains(&batches), "{batches} batches");
    assert_eq!(
        after.sum("weft_journal_write_seconds_count"),
        after.sum("weft_journal_batches_total")
    );
    // A histogram's +Inf bucket holds every observation.
    assert_eq!(
        after.get("weft_commit_seconds_bucket{le=+Inf}"),
        after.get("weft_commit_seconds_count{}")
    );
    assert_eq!(after.get("weft_sessions{}"), 3.0);
    drop((a, b));
    // Sessions end asynchronously on the server: wait, bounded, for the count to fall.
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let s = scrape(&py, &url).get("weft_sessions{}");
        if s == 1.0 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{s} sessions still counted"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_get_metrics_answers_and_connections_are_bounded() {
    let Some(py) = python() else { return };
    let (_dir, _server, base) = start();
    let status = |path: &str, method: &str| {
        try_scrape(&py, &format!("{base}{path}"), method)
            .unwrap()
            .status
    };
    assert_eq!(status("/", "HEAD"), 404);
    assert_eq!(status("/metricsx", "HEAD"), 404);
    assert_eq!(status("/metrics", "POST"), 405);
    assert_eq!(status("/metrics", "HEAD"), 200);

    // METRICS_CONNECTIONS_MAX (16) idle connections hold every slot: one more is closed
    // unanswered (the listener accepts in order, so these are accepted first).
    let addr = base.trim_start_matches("http://").to_string();
    let idle: Vec<_> = (0..16)
        .map(|_| std::net::TcpStream::connect(&addr).unwrap())
        .collect();
    let refused = try_scrape(&py, &format!("{base}/metrics"), "GET");
    assert!(refused.is_err(), "a 17th connection was answered");
    drop(idle);
    // Their slots free as the server sees them close.
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        match try_scrape(&py, &format!("{base}/metrics"), "GET") {
            Ok(s) => {
                assert_eq!(s.status, 200);
                break;
            }
            Err(e) => assert!(tokio::time::Instant::now() < deadline, "still refused: {e}"),
        }
    }
}
