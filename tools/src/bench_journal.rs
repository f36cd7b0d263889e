//! `weft bench journal`: group commit on local disk and on a real S3-compatible server,
//! next to the physical floor measured in the same run (one fsync; one PUT).
//!
//! Committers call the journal writer directly (sequencer + writer, no SQL, no conflict
//! checks), each with one ~100-byte row per commit, and wait for its acknowledgement.
#![allow(clippy::disallowed_methods)] // benchmarks measure real time

use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use arrow::datatypes::{DataType, Field, Schema};
use bytes::Bytes;
use clap::Args;
use datafusion::scalar::ScalarValue;
use tokio::sync::oneshot;
use weft_engine::objstore::DurableStore;
use weft_engine::record::{CommitRecord, TableWrites};
use weft_engine::SystemClock;
use weft_journal::format::{encode_record, set_commit_ts, COMMIT_TS_PLACEHOLDER};
use weft_journal::writer::{self, claim, Layout, Pending, WriterConfig};
use weft_journal::Sequencer;

#[derive(Args, Debug)]
pub struct JournalArgs {
    /// Concurrent committer counts, comma-separated.
    #[arg(long, default_value = "1,8,64", value_delimiter = ',')]
    pub clients: Vec<usize>,
    /// Seconds per measurement.
    #[arg(long, default_value_t = 5)]
    pub seconds: u64,
    /// Batch linger times to try, in microseconds, comma-separated.
    #[arg(long, default_value = "0", value_delimiter = ',')]
    pub linger_us: Vec<u64>,
    /// Where the local journal goes (a temporary directory under it): put it on the disk
    /// you want measured.
    #[arg(long, default_value = ".")]
    pub dir: std::path::PathBuf,
    /// Skip the S3 side (which starts s3s-fs when it is installed).
    #[arg(long)]
    pub no_s3: bool,
}

fn pct(sorted: &[u64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() as f64 * p) as usize).min(sorted.len() - 1)] as f64 / 1000.0
}

fn record() -> CommitRecord {
    let schema = Arc::new(Schema::new(vec![
        Field::new("id", DataType::Int64, true),
        Field::new("v", DataType::Utf8, true),
    ]));
    CommitRecord {
        commit_ts: COMMIT_TS_PLACEHOLDER,
        tables: vec![TableWrites {
            table_id: 1,
            schema,
            keys: vec![vec![1; 8]],
            rows: vec![Some(Arc::new(vec![
                ScalarValue::Int64(Some(1)),
                ScalarValue::Utf8(Some("x".repeat(100))),
            ]))],
        }],
    }
}

/// Commits/s and sorted latencies (µs) of `clients` committers for `seconds`.
async fn run_journal(
    store: &DurableStore,
    cluster: &str,
    clients: usize,
    seconds: u64,
    linger: Duration,
    layout: Layout,
) -> anyhow::Result<(f64, Vec<u64>, f64)> {
    let (start, _) = claim(store, cluster, 0, None, 0).await?;
    let (etx, mut erx) = weft_journal::events_channel();
    // Drain what the crossbar would receive, counting objects.
    let objects = Arc::new(std::sync::atomic::AtomicU64::new(0));
    {
        let objects = objects.clone();
        tokio::spawn(async move {
            while let Some(ev) = erx.recv().await {
                if !ev.records.is_empty() {
                    objects.fetch_add(1, Ordering::Relaxed);
                }
            }
        });
    }
    let sequencer = Arc::new(Sequencer::new(1, 0, Arc::new(SystemClock::new(0)), etx));
    let tx = writer::spawn(
        store.clone(),
        cluster.to_string(),
        start,
        sequencer.clone(),
        WriterConfig {
            batch_linger: linger,
            layout,
            ..Default::default()
        },
        Arc::new(AtomicBool::new(true)),
    );
    let template = encode_record(&record()).map_err(anyhow::Error::msg)?;
    let stop = Arc::new(AtomicBool::new(false));
    let began = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..clients {
        let (tx, sequencer, stop, template) = (
            tx.clone(),
            sequencer.clone(),
            stop.clone(),
            template.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                let t = Instant::now();
                let (done, rx) = oneshot::channel();
                let mut body = template.clone();
                // A place in the writer's bounded queue first, then the timestamp and the
                // send under the sequencer's lock, as the adjudicator does.
                let Ok(permit) = tx.reserve().await else {
                    break;
                };
                sequencer.assign(0, |ts| {
                    set_commit_ts(&mut body, ts).expect("patch");
                    let mut rec = record();
                    rec.commit_ts = ts;
                    permit.send(Pending {
                        record: Arc::new(rec),
                        body,
                        done,
                    });
                });
                if rx.await.map(|r| r.is_ok()).unwrap_or(false) {
                    lat.push(t.elapsed().as_micros() as u64);
                }
            }
            lat
        }));
    }
    tokio::time::sleep(Duration::from_secs(seconds)).await;
    stop.store(true, Ordering::Relaxed);
    let mut lat = Vec::new();
    for t in tasks {
        lat.extend(t.await?);
    }
    let secs = began.elapsed().as_secs_f64();
    lat.sort_unstable();
    let per_object = lat.len() as f64 / objects.load(Ordering::Relaxed).max(1) as f64;
    Ok((lat.len() as f64 / secs, lat, per_object))
}

/// Latencies (µs, sorted) of `n` single 1 KiB writes into a zero-filled, already durable
/// file, each followed by fdatasync: the least a durable append costs on this disk (what
/// PostgreSQL's WAL pays per commit, and what a journal log file pays per batch).
fn fsync_floor(dir: &std::path::Path, n: usize) -> anyhow::Result<Vec<u64>> {
    use std::os::unix::fs::FileExt;
    let path = dir.join("fsync-probe");
    let mut f = std::fs::File::create(&path)?;
    f.write_all(&vec![0u8; (n + 1) * 1024])?;
    f.sync_all()?;
    let buf = vec![7u8; 1024];
    let mut lat = Vec::with_capacity(n);
    for i in 0..n {
        let t = Instant::now();
        f.write_all_at(&buf, (i * 1024) as u64)?;
        f.sync_data()?;
        lat.push(t.elapsed().as_micros() as u64);
    }
    lat.sort_unstable();
    Ok(lat)
}

/// Latencies (µs, sorted) of `n` new durable 1 KiB files: create, write, fsync, fsync the
/// directory: the least a new object on local disk costs.
fn new_file_floor(dir: &std::path::Path, n: usize) -> anyhow::Result<Vec<u64>> {
    let sub = dir.join("new-file-probe");
    std::fs::create_dir_all(&sub)?;
    let d = std::fs::File::open(&sub)?;
    let buf = vec![7u8; 1024];
    let mut lat = Vec::with_capacity(n);
    for i in 0..n {
        let t = Instant::now();
        let mut f = std::fs::File::create(sub.join(i.to_string()))?;
        f.write_all(&buf)?;
        f.sync_all()?;
        d.sync_all()?;
        lat.push(t.elapsed().as_micros() as u64);
    }
    lat.sort_unstable();
    Ok(lat)
}

/// Latencies (µs, sorted) of `n` conditional 1 KiB PUTs.
async fn put_floor(store: &DurableStore, n: usize) -> anyhow::Result<Vec<u64>> {
    let data = Bytes::from(vec![7u8; 1024]);
    let mut lat = Vec::with_capacity(n);
    for i in 0..n {
        let p = object_store::path::Path::from(format!("floor/{i}"));
        let t = Instant::now();
        store.put_create(&p, data.clone()).await?;
        lat.push(t.elapsed().as_micros() as u64);
    }
    lat.sort_unstable();
    Ok(lat)
}

pub async fn journal(a: JournalArgs) -> anyhow::Result<()> {
    let dir = tempfile::tempdir_in(&a.dir)?;
    let local = DurableStore::local(dir.path().join("store"))?;
    let s3 = if a.no_s3 {
        None
    } else {
        weft_tests::s3::S3Server::start()
    };
    let mut backends: Vec<(&str, DurableStore, Vec<u64>, &str, Layout)> = Vec::new();
    let new_file = new_file_floor(dir.path(), 200)?;
    println!(
        "local disk, new durable 1 KiB file (create + fsync + directory fsync): p50 {:.2} ms, p99 {:.2} ms",
        pct(&new_file, 0.5),
        pct(&new_file, 0.99)
    );
    let floor = fsync_floor(dir.path(), 200)?;
    backends.push((
        "local disk, log files",
        local.clone(),
        floor.clone(),
        "write 1 KiB into a preallocated file + fdatasync",
        Layout::Files {
            file_bytes: weft_journal::logwriter::LOG_FILE_BYTES_DEFAULT,
        },
    ));
    backends.push((
        "local disk, objects",
        local.clone(),
        floor,
        "write 1 KiB into a preallocated file + fdatasync",
        Layout::Objects,
    ));
    if let Some(s3) = &s3 {
        let env = s3.env();
        let store = object_store::aws::AmazonS3Builder::new()
            .with_endpoint(s3.endpoint())
            .with_allow_http(true)
            .with_region("us-east-1")
            .with_bucket_name(weft_tests::s3::BUCKET)
            .with_access_key_id(&env[1].1)
            .with_secret_access_key(&env[2].1)
            .build()?;
        let store = DurableStore::remote(Arc::new(store), s3.url(""));
        let floor = put_floor(&store, 200).await?;
        backends.push((
            "s3s-fs (S3 API)",
            store,
            floor,
            "conditional PUT of 1 KiB",
            Layout::Objects,
        ));
    }
    println!("| store | floor | floor p50 ms | floor p99 ms |");
    println!("|---|---|---|---|");
    for (name, _, floor, what, _) in &backends {
        println!(
            "| {name} | {what} | {:.2} | {:.2} |",
            pct(floor, 0.5),
            pct(floor, 0.99)
        );
    }
    println!();
    println!("| store | linger µs | committers | commits/s | commits/object | p50 ms | p99 ms | p99.9 ms | p50 / floor p50 |");
    println!("|---|---|---|---|---|---|---|---|---|");
    let mut run = 0;
    for (name, store, floor, _, layout) in &backends {
        for &linger in &a.linger_us {
            for &n in &a.clients {
                run += 1;
                let (tps, lat, per_object) = run_journal(
                    store,
                    &format!("bench{run}"),
                    n,
                    a.seconds,
                    Duration::from_micros(linger),
                    *layout,
                )
                .await?;
                println!(
                    "| {name} | {linger} | {n} | {tps:.0} | {per_object:.1} | {:.2} | {:.2} | {:.2} | {:.1}x |",
                    pct(&lat, 0.5),
                    pct(&lat, 0.99),
                    pct(&lat, 0.999),
                    pct(&lat, 0.5) / pct(floor, 0.5)
                );
            }
        }
    }
    let list = |v: &[usize]| {
        v.iter()
            .map(|x| x.to_string())
            .collect::<Vec<_>>()
            .join(",")
    };
    println!(
        "reproduce: weft bench journal --clients {} --seconds {} --linger-us {}{}",
        list(&a.clients),
        a.seconds,
        a.linger_us
            .iter()
            .map(|x| x.to_string())
            .collect::<Vec<_>>()
            .join(","),
        if a.no_s3 { " --no-s3" } else { "" }
    );
    Ok(())
}
