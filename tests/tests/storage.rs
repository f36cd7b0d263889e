//! Storage over the wire: time travel (`SET weft.as_of`), point lookups that read one page,
//! range pruning, segments readable by pyarrow and DuckDB, corrupt segments and manifests
//! refused by name, and crashes at every step of a flush or a compaction.
#![allow(clippy::disallowed_methods)] // test harness deadlines are real time

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use tokio_postgres::{Client, SimpleQueryMessage};
use weft_tests::{sqlstate, weft_bin, Server};

/// Flush every second and compact as soon as a table has two segments.
const EAGER: &[&str] = &[
    "--flush-bytes-min",
    "1",
    "--flush-age-max-s",
    "1",
    "--compact-segments-max",
    "1",
];

async fn text(c: &Client, sql: &str) -> Vec<Vec<Option<String>>> {
    c.simple_query(sql)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e:?}"))
        .into_iter()
        .filter_map(|m| match m {
            SimpleQueryMessage::Row(r) => {
                Some((0..r.len()).map(|i| r.get(i).map(str::to_string)).collect())
            }
            _ => None,
        })
        .collect()
}

async fn one(c: &Client, sql: &str) -> String {
    text(c, sql).await[0][0].clone().unwrap()
}

async fn explain(c: &Client, sql: &str) -> String {
    text(c, &format!("EXPLAIN {sql}"))
        .await
        .into_iter()
        .map(|r| r.into_iter().flatten().collect::<Vec<_>>().join(" "))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Waits until the table's memtable part is empty: everything is in segments.
async fn wait_flushed(c: &Client, table: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let plan = explain(c, &format!("SELECT * FROM {table}")).await;
        if plan.contains("recent_versions=0") {
            return;
        }
        assert!(Instant::now() < deadline, "never flushed: {plan}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Inserts rows `(x, prefix || x)` for x in `lo..=hi` and waits until they are in a segment.
async fn insert_flushed(c: &Client, table: &str, prefix: &str, lo: i64, hi: i64) {
    c.batch_execute(&format!(
        "INSERT INTO {table} SELECT x, '{prefix}' || x FROM generate_series({lo}, {hi}) AS g(x)"
    ))
    .await
    .unwrap();
    wait_flushed(c, table).await;
}

/// `weft inspect manifest --verify <target>`: whether it found no defect, and its report.
fn verify_manifest(target: &str, env: Vec<(String, String)>) -> (bool, String) {
    let out = std::process::Command::new(weft_bin())
        .args(["inspect", "manifest", "--verify", target])
        .envs(env)
        .output()
        .unwrap();
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), report)
}

fn segments_dir(data: &Path) -> PathBuf {
    data.join("clusters/default/storage/r0/segments")
}

/// A metric of `EXPLAIN ANALYZE` output ("1.02 K" style), as a number.
fn metric(plan: &str, name: &str) -> f64 {
    let at = plan
        .find(&format!("{name}="))
        .unwrap_or_else(|| panic!("no {name} in {plan}"))
        + name.len()
        + 1;
    let v: String = plan[at..]
        .chars()
        .take_while(|c| *c != ',' && *c != ']')
        .collect();
    let mut parts = v.split_whitespace();
    let n: f64 = parts.next().unwrap().parse().unwrap();
    match parts.next() {
        Some("K") => n * 1e3,
        Some("M") => n * 1e6,
        _ => n,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn time_travel_reads_the_past_and_refuses_writes() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start_with(&dir.path().join("data"), EAGER);
    let c = server.connect().await;
    c.batch_execute(
        "CREATE TABLE acct (id int PRIMARY KEY, owner text, balance int);
         INSERT INTO acct VALUES (1, 'ada', 100), (2, 'bob', 50)",
    )
    .await
    .unwrap();
    wait_flushed(&c, "acct").await;
    let before = one(&c, "SELECT now()").await;
    c.batch_execute(
        "UPDATE acct SET balance = 70 WHERE id = 1;
         DELETE FROM acct WHERE id = 2;
         INSERT INTO acct VALUES (3, 'cy', 5)",
    )
    .await
    .unwrap();
    // The changes reach segments and are compacted with the old versions.
    wait_flushed(&c, "acct").await;
    tokio::time::sleep(Duration::from_millis(1500)).await;

    c.batch_execute(&format!("SET weft.as_of = '{before}'"))
        .await
        .unwrap();
    assert!(!one(&c, "SHOW weft.as_of").await.is_empty());
    let past = text(&c, "SELECT id, owner, balance FROM acct ORDER BY id").await;
    assert_eq!(
        past,
        vec![
            vec![Some("1".into()), Some("ada".into()), Some("100".into())],
            vec![Some("2".into()), Some("bob".into()), Some("50".into())],
        ]
    );
    // Point lookups see the past too.
    assert_eq!(
        one(&c, "SELECT balance FROM acct WHERE id = 1").await,
        "100"
    );
    assert_eq!(one(&c, "SELECT count(*) FROM acct WHERE id = 3").await, "0");
    for w in [
        "INSERT INTO acct VALUES (9, 'x', 1)",
        "UPDATE acct SET balance = 0",
        "DELETE FROM acct",
        "CREATE TABLE nope (id int PRIMARY KEY)",
    ] {
        let e = c.batch_execute(w).await.unwrap_err();
        assert_eq!(sqlstate(&e), "25006", "{w}: {e:?}");
    }
    // A transaction block reads the same past.
    c.batch_execute("BEGIN").await.unwrap();
    assert_eq!(one(&c, "SELECT sum(balance) FROM acct").await, "150");
    c.batch_execute("COMMIT").await.unwrap();

    for (bad, why) in [
        ("2999-01-01 00:00:00+00", "future"),
        ("2000-01-01 00:00:00+00", "retention"),
        ("not a time", "invalid value"),
    ] {
        let e = c
            .batch_execute(&format!("SET weft.as_of = '{bad}'"))
            .await
            .unwrap_err();
        assert_eq!(sqlstate(&e), "22023", "{bad}");
        assert!(format!("{e:?}").contains(why), "{bad}: {e:?}");
    }
    // A failed SET leaves the session where it was.
    assert_eq!(one(&c, "SELECT sum(balance) FROM acct").await, "150");

    c.batch_execute("BEGIN").await.unwrap();
    let e = c.batch_execute("RESET weft.as_of").await.unwrap_err();
    assert_eq!(sqlstate(&e), "25001");
    c.batch_execute("ROLLBACK").await.unwrap();

    c.batch_execute("RESET weft.as_of").await.unwrap();
    let now = text(&c, "SELECT id, balance FROM acct ORDER BY id").await;
    assert_eq!(
        now,
        vec![
            vec![Some("1".into()), Some("70".into())],
            vec![Some("3".into()), Some("5".into())],
        ]
    );
    c.batch_execute("INSERT INTO acct VALUES (4, 'di', 1)")
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_below_the_compaction_horizon_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let mut flags = EAGER.to_vec();
    flags.extend(["--version-retention-s", "2", "--txn-duration-max-s", "2"]);
    let server = Server::start_with(&dir.path().join("data"), &flags);
    let c = server.connect().await;
    c.batch_execute("CREATE TABLE k (id int PRIMARY KEY, v int); INSERT INTO k VALUES (1, 0)")
        .await
        .unwrap();
    let then = one(&c, "SELECT now()").await;
    c.batch_execute(&format!("SET weft.as_of = '{then}'"))
        .await
        .unwrap();
    assert_eq!(one(&c, "SELECT v FROM k WHERE id = 1").await, "0");
    // Keep writing for a while: flushes and compactions move the horizon past `then`.
    let w = server.connect().await;
    let deadline = Instant::now() + Duration::from_secs(6);
    let mut i = 0;
    while Instant::now() < deadline {
        i += 1;
        w.execute("UPDATE k SET v = $1 WHERE id = 1", &[&i])
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let e = c
        .query("SELECT v FROM k WHERE id = 1", &[])
        .await
        .unwrap_err();
    assert_eq!(sqlstate(&e), "72000", "{e:?}");
    assert!(format!("{e:?}").contains("snapshot too old"));
    c.batch_execute("RESET weft.as_of").await.unwrap();
    assert_eq!(one(&c, "SELECT v FROM k WHERE id = 1").await, i.to_string());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn point_lookups_read_one_page_and_ranges_prune_segments() {
    let dir = tempfile::tempdir().unwrap();
    // Flush every second, never compact: three batches make three key-disjoint segments.
    let server = Server::start_with(
        &dir.path().join("data"),
        &[
            "--flush-bytes-min",
            "1",
            "--flush-age-max-s",
            "1",
            "--compact-segments-max",
            "100",
        ],
    );
    let c = server.connect().await;
    c.batch_execute("CREATE TABLE big (id bigint PRIMARY KEY, v text)")
        .await
        .unwrap();
    for b in 0..3 {
        insert_flushed(&c, "big", "value ", b * 10_000 + 1, (b + 1) * 10_000).await;
    }
    let plan = explain(&c, "SELECT * FROM big WHERE id = 12345").await;
    assert!(plan.contains("point_lookup keys=1"), "{plan}");
    let analyzed = explain(&c, "ANALYZE SELECT * FROM big WHERE id = 12345").await;
    let read = metric(&analyzed, "segment_rows_read");
    assert!(
        read > 0.0 && read <= 2048.0,
        "a point lookup read {read} rows: {analyzed}"
    );
    assert_eq!(metric(&analyzed, "segments_read"), 1.0, "{analyzed}");
    assert_eq!(
        one(&c, "SELECT v FROM big WHERE id = 12345").await,
        "value 12345"
    );
    // A full scan reads every row: the counter is real.
    let full = explain(&c, "ANALYZE SELECT count(*) FROM big").await;
    assert!(metric(&full, "segment_rows_read") >= 30_000.0, "{full}");

    // Ranges on the key prune segments by their key ranges.
    let plan = explain(&c, "SELECT * FROM big WHERE id BETWEEN 100 AND 200").await;
    assert!(
        plan.contains("range=[") && plan.contains("segments=1/3"),
        "{plan}"
    );
    let plan = explain(&c, "SELECT * FROM big WHERE id > 25000").await;
    assert!(plan.contains("segments=1/3"), "{plan}");
    assert_eq!(
        one(&c, "SELECT count(*) FROM big WHERE id BETWEEN 100 AND 200").await,
        "101"
    );
    assert_eq!(
        one(&c, "SELECT count(*) FROM big WHERE id > 29990").await,
        "10"
    );
    assert_eq!(one(&c, "SELECT count(*) FROM big WHERE id < 5").await, "4");
    assert_eq!(
        one(&c, "SELECT count(*) FROM big WHERE 20000 <= id").await,
        "10001"
    );
    assert_eq!(one(&c, "SELECT sum(id) FROM big").await, "450015000");

    // Scans estimate their rows: a ten-key range runs as one stream (no round-robin split
    // across threads), and a join's small side is collected, not hashed across partitions.
    let plan = explain(&c, "SELECT id, v FROM big WHERE id BETWEEN 12000 AND 12009").await;
    assert!(
        plan.contains("WeftScan") && !plan.contains("RepartitionExec"),
        "{plan}"
    );
    assert_eq!(
        one(
            &c,
            "SELECT sum(id) FROM big WHERE id BETWEEN 12000 AND 12009"
        )
        .await,
        "120045"
    );
    c.batch_execute(
        "CREATE TABLE small (id bigint PRIMARY KEY, w text); \
         INSERT INTO small VALUES (1, 'one'), (12345, 'many'), (29999, 'last')",
    )
    .await
    .unwrap();
    let join = "SELECT b.v, s.w FROM big b JOIN small s ON b.id = s.id";
    let plan = explain(&c, &format!("{join} WHERE b.id = 12345")).await;
    assert!(
        plan.contains("mode=CollectLeft") && !plan.contains("RepartitionExec"),
        "{plan}"
    );
    assert_eq!(
        text(&c, &format!("{join} WHERE b.id = 12345")).await,
        vec![vec![Some("value 12345".into()), Some("many".into())]]
    );
    assert_eq!(
        text(&c, &format!("{join} ORDER BY s.id")).await,
        vec![
            vec![Some("value 1".into()), Some("one".into())],
            vec![Some("value 12345".into()), Some("many".into())],
            vec![Some("value 29999".into()), Some("last".into())],
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn segments_are_plain_parquet_for_pyarrow_and_duckdb() {
    let Some(python) = weft_tests::python("pyarrow and duckdb") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut server = Server::start(&data);
    let c = server.connect().await;
    c.batch_execute(
        "CREATE TABLE p (id int PRIMARY KEY, name text, score double precision);
         INSERT INTO p SELECT x, 'n' || x, x * 0.5 FROM generate_series(1, 1000) AS g(x);
         DELETE FROM p WHERE id <= 10;",
    )
    .await
    .unwrap();
    drop(c);
    // A clean shutdown flushes.
    assert!(server.stop().success());
    let seg = std::fs::read_dir(segments_dir(&data))
        .unwrap()
        .map(|e| e.unwrap().path())
        .max_by_key(|p| std::fs::metadata(p).unwrap().len())
        .unwrap();
    let script = r#"
import sys, pyarrow.parquet as pq, duckdb
path = sys.argv[1]
t = pq.read_table(path)
assert t.column_names == ["_weft_key", "_weft_ts", "_weft_op", "id", "name", "score"], t.column_names
ops = t.column("_weft_op").to_pylist()
live = [i for i, o in zip(t.column("id").to_pylist(), ops) if o == 0]
print("pyarrow", t.num_rows, ops.count(1), sum(live))
n, s = duckdb.sql(f"SELECT count(*), sum(score) FROM read_parquet('{path}') WHERE _weft_op = 0").fetchone()
print("duckdb", n, s)
"#;
    let out = std::process::Command::new(python)
        .arg("-c")
        .arg(script)
        .arg(&seg)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The three statements are one implicit transaction (as in PostgreSQL): rows 1..10
    // are written once, as deletes. One flush at shutdown holds it all.
    let pa: Vec<&str> = stdout.lines().next().unwrap().split(' ').collect();
    let rows: u64 = pa[1].parse().unwrap();
    let tombstones: u64 = pa[2].parse().unwrap();
    assert_eq!(tombstones, 10, "{stdout}");
    assert_eq!(rows, 1000, "{stdout}");
    let dk: Vec<&str> = stdout.lines().nth(1).unwrap().split(' ').collect();
    assert_eq!(dk[1], "990", "{stdout}");
    assert_eq!(dk[2].parse::<f64>().unwrap(), 250_222.5, "{stdout}");
}

fn flip_byte(path: &Path, at: usize) {
    let mut b = std::fs::read(path).unwrap();
    b[at] ^= 0x40;
    std::fs::write(path, b).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn corrupt_segments_and_manifests_are_refused_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut server = Server::start(&data);
    let c = server.connect().await;
    c.batch_execute(
        "CREATE TABLE c (id int PRIMARY KEY, v text);
         INSERT INTO c SELECT x, 'v' || x FROM generate_series(1, 500) AS g(x);
         CREATE TABLE ok (id int PRIMARY KEY);
         INSERT INTO ok VALUES (1)",
    )
    .await
    .unwrap();
    drop(c);
    assert!(server.stop().success());
    let target = data.to_str().unwrap().to_string();
    let (ok, listing) = verify_manifest(&target, Vec::new());
    assert!(ok, "{listing}");
    // The biggest segment holds table c.
    let seg = std::fs::read_dir(segments_dir(&data))
        .unwrap()
        .map(|e| e.unwrap().path())
        .max_by_key(|p| std::fs::metadata(p).unwrap().len())
        .unwrap();
    let name = seg.file_name().unwrap().to_str().unwrap().to_string();
    assert!(listing.contains(&name), "{listing}");
    let len = std::fs::metadata(&seg).unwrap().len() as usize;
    flip_byte(&seg, len / 2);

    // Verification names the damaged segment.
    let (ok, report) = verify_manifest(&target, Vec::new());
    assert!(
        !ok && report.contains("DEFECT") && report.contains(&name),
        "{report}"
    );

    // The server starts (the damage is inside the file), but refuses to read the damaged
    // segment, naming it; everything else is still served.
    server.restart();
    let c = server.connect().await;
    let e = c.query("SELECT count(*) FROM c", &[]).await.unwrap_err();
    assert_eq!(sqlstate(&e), "XX001", "{e:?}");
    assert!(format!("{e:?}").contains(&name), "{e:?}");
    let e = c
        .query("SELECT v FROM c WHERE id = 7", &[])
        .await
        .unwrap_err();
    assert_eq!(sqlstate(&e), "XX001", "{e:?}");
    let n: i64 = c
        .query_one("SELECT count(*) FROM ok", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(n, 1);
    drop(c);
    server.kill9();

    // A truncated segment is caught at start by its size.
    std::fs::write(&seg, b"PAR1").unwrap();
    let out = std::process::Command::new(weft_bin())
        .args(["serve", "--listen", "127.0.0.1:0", "--data"])
        .arg(&data)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(&name) && err.contains("bytes"), "{err}");

    // A damaged manifest stops the start, naming it.
    let mdir = data.join("clusters/default/storage/r0/manifest");
    let newest = std::fs::read_dir(&mdir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .max()
        .unwrap();
    let text = std::fs::read_to_string(&newest).unwrap();
    std::fs::write(&newest, text.replacen("\"version\": ", "\"version\": 9", 1)).unwrap();
    let out = std::process::Command::new(weft_bin())
        .args(["serve", "--listen", "127.0.0.1:0", "--data"])
        .arg(&data)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    let mname = newest.file_name().unwrap().to_str().unwrap();
    assert!(err.contains(mname) && err.contains("checksum"), "{err}");
}

/// Crashes at each step of a flush and of a compaction: after a restart every acknowledged
/// row is there, the manifest verifies, and no orphan segment is left behind.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crashes_during_flush_and_compaction_lose_nothing() {
    for point in [
        "flush-before-manifest",
        "flush-after-manifest",
        "compact-before-manifest",
        "compact-after-manifest",
    ] {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        let mut flags = EAGER.to_vec();
        flags.extend(["--crash-at", point]);
        let mut server = Server::start_with(&data, &flags);
        let mut acked = BTreeSet::new();
        {
            let c = server.connect().await;
            c.batch_execute("CREATE TABLE r (id int PRIMARY KEY, v int)")
                .await
                .unwrap();
            let deadline = Instant::now() + Duration::from_secs(30);
            for id in 0.. {
                match c.execute("INSERT INTO r VALUES ($1, $1)", &[&id]).await {
                    Ok(_) => {
                        acked.insert(id);
                    }
                    Err(_) => break,
                }
                if server.child.as_mut().unwrap().try_wait().unwrap().is_some() {
                    break;
                }
                assert!(Instant::now() < deadline, "{point}: never reached");
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
        // The process aborted itself at the crash point.
        let status = server.child.as_mut().unwrap().wait().unwrap();
        assert!(!status.success(), "{point}: {status:?}");
        assert!(
            server.log_text().contains(&format!("crash point {point}")),
            "{point}"
        );
        server.child = None;
        let mut server = Server::start(&data);
        let c = server.connect().await;
        let got: BTreeSet<i32> = c
            .query("SELECT id FROM r", &[])
            .await
            .unwrap()
            .iter()
            .map(|r| r.get(0))
            .collect();
        for id in &acked {
            assert!(got.contains(id), "{point}: acknowledged row {id} lost");
        }
        drop(c);
        assert!(server.stop().success());
        let (ok, report) = verify_manifest(data.to_str().unwrap(), Vec::new());
        assert!(ok, "{point}: {report}");
        let on_disk: BTreeSet<String> = std::fs::read_dir(segments_dir(&data))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
            .filter(|n| !n.starts_with('.'))
            .collect();
        for n in &on_disk {
            assert!(
                report.contains(n.as_str()),
                "{point}: orphan segment {n} left:\n{report}"
            );
        }
        eprintln!("{point}: {} acknowledged rows survived", acked.len());
    }
}

/// The same storage on a real S3-compatible server: flushes, compaction, lazy range reads
/// of segments, one-page point lookups, time travel, a restart, and `inspect --verify`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn storage_on_s3() {
    let Some(s3) = weft_tests::s3::S3Server::start() else {
        return;
    };
    let url = s3.url("storage");
    let dir = tempfile::tempdir().unwrap();
    let mut flags = vec!["--store", url.as_str()];
    flags.extend_from_slice(EAGER);
    let mut server = Server::start_env(&dir.path().join("data"), &flags, s3.env());
    let c = server.connect().await;
    c.batch_execute("CREATE TABLE s (id bigint PRIMARY KEY, v text)")
        .await
        .unwrap();
    let mut before_last = String::new();
    for b in 0..3 {
        if b == 2 {
            before_last = one(&c, "SELECT now()").await;
        }
        insert_flushed(&c, "s", "v", b * 5_000 + 1, (b + 1) * 5_000).await;
    }
    // Compaction merges the three flushes.
    let deadline = Instant::now() + Duration::from_secs(20);
    while !explain(&c, "SELECT * FROM s")
        .await
        .contains("segments=1/1")
    {
        assert!(Instant::now() < deadline, "never compacted");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let analyzed = explain(&c, "ANALYZE SELECT v FROM s WHERE id = 7777").await;
    assert!(
        metric(&analyzed, "segment_rows_read") <= 2048.0,
        "{analyzed}"
    );
    assert_eq!(one(&c, "SELECT v FROM s WHERE id = 7777").await, "v7777");
    assert_eq!(
        one(&c, "SELECT count(*) FROM s WHERE id > 14000").await,
        "1000"
    );
    c.batch_execute(&format!("SET weft.as_of = '{before_last}'"))
        .await
        .unwrap();
    assert_eq!(one(&c, "SELECT count(*) FROM s").await, "10000");
    drop(c);
    server.restart();
    let c = server.connect().await;
    assert_eq!(one(&c, "SELECT count(*), sum(id) FROM s").await, "15000");
    assert_eq!(one(&c, "SELECT v FROM s WHERE id = 15000").await, "v15000");
    drop(c);
    assert!(server.stop().success());
    let (ok, report) = verify_manifest(&url, s3.env());
    assert!(ok, "{report}");
    assert!(
        report.contains("ok ") && !report.contains("DEFECT"),
        "{report}"
    );
}

/// Key filters pushed down exactly give the same rows as PostgreSQL would: contradictory
/// and overlapping constraints, composite keys pinned in part or whole, other filters
/// beside them, and the transaction's own writes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn key_filters_give_exact_results() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("data"));
    let c = server.connect().await;
    c.batch_execute(
        "CREATE TABLE kv (k int PRIMARY KEY, v int);
         INSERT INTO kv SELECT x, x * 10 FROM generate_series(1, 5) AS g(x);
         CREATE TABLE ab (a int, b int, v int, PRIMARY KEY (a, b));
         INSERT INTO ab VALUES (1, 1, 11), (1, 2, 12), (2, 1, 21);",
    )
    .await
    .unwrap();
    let count = |sql: &'static str| {
        let c = &c;
        async move { one(c, &format!("SELECT count(*) FROM ({sql}) q")).await }
    };
    assert_eq!(
        count("SELECT k FROM kv WHERE k IN (1, 2) AND k = 3").await,
        "0"
    );
    assert_eq!(count("SELECT k FROM kv WHERE k = 1 AND k = 2").await, "0");
    assert_eq!(
        count("SELECT k FROM kv WHERE k IN (1, 2) AND k IN (2, 3)").await,
        "1"
    );
    assert_eq!(count("SELECT k FROM kv WHERE k = 2 AND v = 20").await, "1");
    assert_eq!(count("SELECT k FROM kv WHERE k = 2 AND v = 21").await, "0");
    assert_eq!(count("SELECT k FROM kv WHERE k IN (2, 4, 99)").await, "2");
    assert_eq!(count("SELECT a FROM ab WHERE a = 1").await, "2");
    assert_eq!(count("SELECT a FROM ab WHERE a = 1 AND b = 2").await, "1");
    assert_eq!(
        count("SELECT a FROM ab WHERE a = 1 AND b IN (1, 2)").await,
        "2"
    );
    assert_eq!(
        count("SELECT a FROM ab WHERE a IN (1, 2) AND b = 1").await,
        "2"
    );
    assert_eq!(count("SELECT a FROM ab WHERE b = 1").await, "2");
    c.batch_execute("BEGIN; INSERT INTO kv VALUES (9, 90); DELETE FROM kv WHERE k = 1")
        .await
        .unwrap();
    assert_eq!(one(&c, "SELECT v FROM kv WHERE k = 9").await, "90");
    assert_eq!(count("SELECT k FROM kv WHERE k = 1").await, "0");
    assert_eq!(count("SELECT k FROM kv WHERE k IN (1, 9)").await, "1");
    c.batch_execute("ROLLBACK").await.unwrap();
    assert_eq!(count("SELECT k FROM kv WHERE k IN (1, 9)").await, "1");
}

/// The point-select fast path answers exactly as the planned path: the same column names,
/// types and values for every type, in text and binary, for found and missing keys, own
/// writes and time travel; and it is really taken (`SHOW weft.point_selects`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn point_selects_answer_like_the_planner() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("data"));
    let c = server.connect().await;
    c.batch_execute(
        "CREATE TABLE ty (id bigint PRIMARY KEY, i int, s smallint, t text, f double precision,
                          b boolean, d date, ts timestamp, n numeric(10,2));
         INSERT INTO ty VALUES
           (1, 7, 2, 'seven', 7.5, true, '2026-01-02', '2026-01-02 03:04:05', 12.34),
           (2, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL),
           (-5, -1, -2, '', -0.25, false, '1999-12-31', '1999-12-31 23:59:59.5', -0.01);
         CREATE TABLE two (a text, b int, v int, PRIMARY KEY (a, b));
         INSERT INTO two VALUES ('x', 1, 10), ('x', 2, 20), ('y', 1, 30);",
    )
    .await
    .unwrap();
    let fast = c.prepare("SELECT * FROM ty WHERE id = $1").await.unwrap();
    let slow = c
        .prepare("SELECT * FROM ty WHERE id = $1 ORDER BY id")
        .await
        .unwrap();
    assert_eq!(
        fast.columns()
            .iter()
            .map(|c| (c.name().to_string(), c.type_().clone()))
            .collect::<Vec<_>>(),
        slow.columns()
            .iter()
            .map(|c| (c.name().to_string(), c.type_().clone()))
            .collect::<Vec<_>>()
    );
    for id in [1i64, 2, -5, 99] {
        let before = hits(&c).await;
        let f = c.query(&fast, &[&id]).await.unwrap();
        assert_eq!(
            hits(&c).await,
            before + 1,
            "the fast path was not taken for {id}"
        );
        let s = c.query(&slow, &[&id]).await.unwrap();
        assert_eq!(
            hits(&c).await,
            before + 1,
            "ORDER BY must take the planned path"
        );
        assert_eq!(f.len(), s.len(), "id {id}");
        for (fr, sr) in f.iter().zip(&s) {
            for i in 0..fr.len() {
                // Binary results, compared raw.
                assert_eq!(
                    format!("{:?}", fr.try_get::<_, Raw>(i).unwrap()),
                    format!("{:?}", sr.try_get::<_, Raw>(i).unwrap()),
                    "id {id} column {i}"
                );
            }
        }
        // Text results through the simple protocol.
        let ft = text(&c, &format!("SELECT * FROM ty WHERE id = {id}")).await;
        let st = text(&c, &format!("SELECT * FROM ty WHERE id = {id} ORDER BY id")).await;
        assert_eq!(ft, st, "id {id}");
    }
    // Aliases, qualified names, composite keys, key values as literals.
    for (sql, want) in [
        (
            "SELECT t AS name, i FROM ty WHERE id = 1",
            vec![vec![Some("seven".to_string()), Some("7".to_string())]],
        ),
        (
            "SELECT x.t FROM ty x WHERE x.id = -5",
            vec![vec![Some(String::new())]],
        ),
        (
            "SELECT v FROM two WHERE a = 'x' AND b = 2",
            vec![vec![Some("20".to_string())]],
        ),
        (
            "SELECT v FROM two WHERE b = 1 AND a = 'y'",
            vec![vec![Some("30".to_string())]],
        ),
        ("SELECT v FROM two WHERE a = 'z' AND b = 1", vec![]),
    ] {
        let before = hits(&c).await;
        assert_eq!(text(&c, sql).await, want, "{sql}");
        assert_eq!(hits(&c).await, before + 1, "{sql}");
    }
    // Own writes and deletes inside a transaction.
    c.batch_execute("BEGIN; UPDATE ty SET t = 'changed' WHERE id = 1; DELETE FROM ty WHERE id = 2")
        .await
        .unwrap();
    assert_eq!(one(&c, "SELECT t FROM ty WHERE id = 1").await, "changed");
    assert!(text(&c, "SELECT t FROM ty WHERE id = 2").await.is_empty());
    c.batch_execute("ROLLBACK").await.unwrap();
    assert_eq!(one(&c, "SELECT t FROM ty WHERE id = 1").await, "seven");
    // Time travel.
    let then = one(&c, "SELECT now()").await;
    c.batch_execute("UPDATE ty SET t = 'later' WHERE id = 1")
        .await
        .unwrap();
    c.batch_execute(&format!("SET weft.as_of = '{then}'"))
        .await
        .unwrap();
    assert_eq!(one(&c, "SELECT t FROM ty WHERE id = 1").await, "seven");
    c.batch_execute("RESET weft.as_of").await.unwrap();
    assert_eq!(one(&c, "SELECT t FROM ty WHERE id = 1").await, "later");
    // Not a point select: other filters, missing key columns, expressions.
    for sql in [
        "SELECT t FROM ty WHERE id = 1 AND i = 7",
        "SELECT v FROM two WHERE a = 'x'",
        "SELECT i + 1 FROM ty WHERE id = 1",
        "SELECT t FROM ty WHERE id = 1 LIMIT 1",
    ] {
        let before = hits(&c).await;
        text(&c, sql).await;
        assert_eq!(hits(&c).await, before, "{sql} must be planned");
    }
}

/// An equality on every column of a complete index (unique or not) is answered by the
/// fast path too: the entries, then the rows by key, with the same answers as the planned
/// path for values found and missing, NULLs, blank-padded char(n), composite indexes, own
/// writes that move a row between values, and rows in segments; a non-unique value with
/// many rows, an unindexed column and extra filters are planned.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn indexed_point_selects_answer_like_the_planner() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start_with(&dir.path().join("data"), EAGER);
    let c = server.connect().await;
    c.batch_execute(
        "CREATE TABLE ix (id int PRIMARY KEY, email text UNIQUE, grp int, code char(4),
                          a int, b text, v text);
         CREATE INDEX ix_grp ON ix (grp);
         CREATE INDEX ix_code ON ix (code);
         CREATE UNIQUE INDEX ix_ab ON ix (a, b);
         INSERT INTO ix SELECT x, 'u' || x || '@x', x % 7, 'c' || (x % 3), x % 10, 'b' || x,
                               'v' || x
                        FROM generate_series(1, 300) AS g(x);
         INSERT INTO ix VALUES (1000, NULL, NULL, NULL, NULL, NULL, 'v1000');",
    )
    .await
    .unwrap();
    wait_flushed(&c, "ix").await;
    // (statement, whether the fast path answers it)
    let cases = [
        ("SELECT * FROM ix WHERE email = 'u5@x'", true),
        ("SELECT id, grp FROM ix WHERE email = 'nobody'", true),
        // 'c1' has 100 rows: more than the fast path reads one by one.
        ("SELECT id FROM ix WHERE code = 'c1'", false),
        ("SELECT id, code FROM ix WHERE code = 'c1  '", false),
        ("SELECT id FROM ix WHERE a = 3 AND b = 'b13'", true),
        ("SELECT id FROM ix WHERE b = 'b13' AND a = 3", true),
        ("SELECT id FROM ix WHERE a = 3 AND b = 'b14'", true),
        ("SELECT id FROM ix WHERE grp = 3", true),
        ("SELECT id FROM ix WHERE grp = 99", true),
        ("SELECT v FROM ix x WHERE x.email = 'u7@x'", true),
        ("SELECT id FROM ix WHERE v = 'v5'", false),
        ("SELECT id FROM ix WHERE a = 3", false),
        ("SELECT id FROM ix WHERE email = 'u5@x' AND grp = 5", false),
        ("SELECT id FROM ix WHERE email IS NULL", false),
    ];
    let check = |label: &'static str| {
        let c = &c;
        let cases = &cases;
        async move {
            for (sql, fast) in cases {
                let before = hits(c).await;
                let mut got = text(c, sql).await;
                let taken = hits(c).await - before;
                let mut want = text(c, &format!("{sql} ORDER BY 1")).await;
                got.sort();
                want.sort();
                assert_eq!(got, want, "{label}: {sql}");
                assert_eq!(taken == 1, *fast, "{label}: fast path taken for {sql}");
            }
        }
    };
    check("in segments").await;
    // Own writes: a row moved to another value, a new row, a deleted row.
    c.batch_execute(
        "BEGIN;
         UPDATE ix SET email = 'moved@x', grp = 99, a = 3, b = 'b14' WHERE id = 5;
         INSERT INTO ix VALUES (301, 'u301@x', 3, 'c9', 5, 'new', 'v301');
         DELETE FROM ix WHERE id = 10",
    )
    .await
    .unwrap();
    for (sql, want) in [
        ("SELECT id FROM ix WHERE email = 'u5@x'", vec![]),
        ("SELECT id FROM ix WHERE email = 'moved@x'", vec!["5"]),
        ("SELECT id FROM ix WHERE grp = 99", vec!["5"]),
        ("SELECT id FROM ix WHERE a = 3 AND b = 'b14'", vec!["5"]),
        ("SELECT id FROM ix WHERE email = 'u10@x'", vec![]),
        ("SELECT id FROM ix WHERE a = 5 AND b = 'new'", vec!["301"]),
    ] {
        let before = hits(&c).await;
        let got: Vec<String> = text(&c, sql)
            .await
            .into_iter()
            .map(|r| r[0].clone().unwrap())
            .collect();
        assert_eq!(got, want, "own writes: {sql}");
        assert_eq!(hits(&c).await, before + 1, "own writes: {sql}");
    }
    check("own writes").await;
    c.batch_execute("ROLLBACK").await.unwrap();
    check("after rollback").await;
    assert_eq!(one(&c, "SELECT id FROM ix WHERE email = 'u5@x'").await, "5");
    // Parameters, as drivers send them.
    let by_email = c
        .prepare("SELECT id FROM ix WHERE email = $1")
        .await
        .unwrap();
    let before = hits(&c).await;
    let rows = c.query(&by_email, &[&"u42@x"]).await.unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].get::<_, i32>(0), 42);
    assert_eq!(hits(&c).await, before + 1);
}

/// `ORDER BY <primary key> LIMIT n` reads the table in key order and stops after n rows
/// that pass the filters: it reads a few pages of a segment, not the table, and answers as
/// the full sort does. Descending orders and orders on other columns are sorted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn order_by_key_with_a_limit_stops_early() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start_with(&dir.path().join("data"), EAGER);
    let c = server.connect().await;
    c.batch_execute("CREATE TABLE page (id bigint PRIMARY KEY, v int, s text)")
        .await
        .unwrap();
    for lo in [1, 30001] {
        c.batch_execute(&format!(
            "INSERT INTO page SELECT x, x % 13, 'row ' || x
             FROM generate_series({lo}, {lo} + 29999) AS g(x)"
        ))
        .await
        .unwrap();
    }
    wait_flushed(&c, "page").await;
    let sql = "SELECT id, s FROM page WHERE id > 30000 AND v = 5 ORDER BY id LIMIT 20";
    let plan = explain(&c, sql).await;
    assert!(plan.contains("in_key_order"), "{plan}");
    assert!(!plan.contains("SortExec"), "{plan}");
    let analyzed = explain(&c, &format!("ANALYZE {sql}")).await;
    let read: f64 = analyzed
        .split("segment_rows_read=")
        .nth(1)
        .and_then(|t| t.split([',', ']']).next())
        .map(|n| match n.strip_suffix(" K") {
            Some(k) => k.trim().parse::<f64>().unwrap() * 1000.0,
            None => n.trim().parse().unwrap(),
        })
        .unwrap_or_else(|| panic!("no segment_rows_read in {analyzed}"));
    assert!(read < 10_000.0, "read {read} rows for 20: {analyzed}");
    // The same rows as the sorted plan (a descending sort of the negated key).
    let got = text(&c, sql).await;
    let want = text(
        &c,
        "SELECT id, s FROM (SELECT id, s, -id AS n FROM page WHERE id > 30000 AND v = 5
                            ORDER BY n DESC LIMIT 20) AS sub ORDER BY id",
    )
    .await;
    assert_eq!(got.len(), 20);
    assert_eq!(got, want);
    for sorted in [
        "SELECT id FROM page ORDER BY id DESC LIMIT 5",
        "SELECT id FROM page ORDER BY v, id LIMIT 5",
        "SELECT id FROM page ORDER BY id",
    ] {
        let plan = explain(&c, sorted).await;
        assert!(!plan.contains("in_key_order"), "{sorted}: {plan}");
    }
}

async fn hits(c: &Client) -> u64 {
    one(c, "SHOW weft.point_selects").await.parse().unwrap()
}

/// Any column value as its raw wire bytes, to compare two results byte for byte (through
/// its Debug form).
#[derive(Debug)]
#[allow(dead_code)]
struct Raw(Option<Vec<u8>>);

impl<'a> tokio_postgres::types::FromSql<'a> for Raw {
    fn from_sql(
        _: &tokio_postgres::types::Type,
        raw: &'a [u8],
    ) -> Result<Self, Box<dyn std::error::Error + Sync + Send>> {
        Ok(Raw(Some(raw.to_vec())))
    }
    fn from_sql_null(
        _: &tokio_postgres::types::Type,
    ) -> Result<Self, Box<dyn std::error::Error + Sync + Send>> {
        Ok(Raw(None))
    }
    fn accepts(_: &tokio_postgres::types::Type) -> bool {
        true
    }
}

/// Two sessions: what one commits (rows, a new column, a schema on the other's search
/// path) the other's next statement sees, on weft while flushes freeze the memtable every
/// second and compactions run, and on PostgreSQL. Catalog lookups are cached by the
/// catalog's newest write, and a flush's frozen memtable is read beside the active one:
/// both must stay exact.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_next_statement_sees_a_commit_while_flushes_and_caches_run() {
    async fn scenario(a: &Client, b: &Client, flushing: Option<&Path>) -> Vec<String> {
        a.batch_execute(
            "DROP TABLE IF EXISTS fresh; DROP SCHEMA IF EXISTS app CASCADE;
             CREATE TABLE fresh (id int PRIMARY KEY, v int);
             INSERT INTO fresh SELECT g, 0 FROM generate_series(1, 50) g;",
        )
        .await
        .unwrap();
        let read = a
            .prepare("SELECT v FROM fresh WHERE id = $1")
            .await
            .unwrap();
        // The flushes' segments (named `-f-`; compaction's are `-c`), as they appear.
        let flushed_segments = |d: &Path| -> BTreeSet<String> {
            std::fs::read_dir(segments_dir(d))
                .map(|r| {
                    r.filter_map(|e| e.ok())
                        .map(|e| e.file_name().to_string_lossy().into_owned())
                        .filter(|n| n.contains("-f-"))
                        .collect()
                })
                .unwrap_or_default()
        };
        let before = flushing.map(flushed_segments).unwrap_or_default();
        let mut flushes = BTreeSet::new();
        let deadline = Instant::now() + Duration::from_secs(60);
        let mut n = 0i32;
        // Until at least two flushes landed under the load (weft), or 200 rounds.
        loop {
            n += 1;
            let id = n % 50 + 1;
            b.execute("UPDATE fresh SET v = $2 WHERE id = $1", &[&id, &n])
                .await
                .unwrap();
            let v: i32 = a.query_one(&read, &[&id]).await.unwrap().get(0);
            assert_eq!(v, n, "round {n}: a committed update is not seen");
            if let Some(d) = flushing {
                flushes.extend(flushed_segments(d).difference(&before).cloned());
            }
            let flushed = flushing.is_none() || flushes.len() >= 2;
            if n >= 200 && flushed {
                break;
            }
            assert!(Instant::now() < deadline, "no flush landed in 60 s");
        }
        let mut seen = Vec::new();
        // A column added by the other session.
        seen.push(one(a, "SELECT count(*)::text FROM fresh WHERE v > 0").await);
        b.batch_execute("ALTER TABLE fresh ADD COLUMN w int DEFAULT 7")
            .await
            .unwrap();
        seen.push(one(a, "SELECT w::text FROM fresh WHERE id = 1").await);
        // A schema created by the other session, earlier on this one's search path.
        a.batch_execute("SET search_path = app, public")
            .await
            .unwrap();
        seen.push(one(a, "SELECT count(*)::text FROM fresh").await);
        b.batch_execute(
            "CREATE SCHEMA app; CREATE TABLE app.fresh (id int PRIMARY KEY, v text);
             INSERT INTO app.fresh VALUES (1, 'in app');",
        )
        .await
        .unwrap();
        seen.push(one(a, "SELECT v::text FROM fresh WHERE id = 1").await);
        b.batch_execute("DROP TABLE app.fresh").await.unwrap();
        seen.push(one(a, "SELECT w::text FROM fresh WHERE id = 2").await);
        a.batch_execute("RESET search_path").await.unwrap();
        seen
    }
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let server = Server::start_with(&data, EAGER);
    let (a, b) = (server.connect().await, server.connect().await);
    let on_weft = scenario(&a, &b, Some(&data)).await;
    let Some(pg) = weft_tests::PgServer::start() else {
        return;
    };
    let (a, b) = (pg.connect().await, pg.connect().await);
    let on_pg = scenario(&a, &b, None).await;
    assert_eq!(on_weft, on_pg);
}
