//! The journal from the outside: `weft inspect journal --verify` on real data (objects and
//! log files), retention with a restart (both layouts), injected store faults seen by real clients, a second writer fencing the
//! first, and the conditional-put probe.
#![allow(clippy::disallowed_methods)] // test harness deadlines are real time

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use weft_tests::{sqlstate, weft_bin, Server};

fn journal_files(data: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let root = data.join("clusters/default/journal");
    for j in std::fs::read_dir(&root).into_iter().flatten().flatten() {
        for f in std::fs::read_dir(j.path()).into_iter().flatten().flatten() {
            if f.path().extension().is_some_and(|e| e == "wj") {
                out.push(f.path());
            }
        }
    }
    out.sort();
    out
}

fn inspect(args: &[&str]) -> (bool, String) {
    let out = Command::new(weft_bin())
        .args(["inspect", "journal"])
        .args(args)
        .output()
        .unwrap();
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_finds_a_flipped_byte_in_any_object() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut server = Server::start_with(
        &data,
        &[
            "--journal-retention",
            "false",
            "--journal-layout",
            "objects",
        ],
    );
    {
        let c = server.connect().await;
        c.batch_execute("CREATE TABLE t (id int PRIMARY KEY, v text)")
            .await
            .unwrap();
        for i in 0..6 {
            c.execute("INSERT INTO t VALUES ($1, 'x')", &[&i])
                .await
                .unwrap();
        }
    }
    // Killed, not stopped: nothing was flushed, so a restart needs every object (recovery
    // reads only objects past the storage checkpoint; older ones are covered by segments).
    server.kill9();
    let d = data.to_str().unwrap();
    let (ok, text) = inspect(&[d, "--verify"]);
    assert!(ok, "clean data fails verification:\n{text}");
    assert!(text.contains("no defects"), "{text}");
    let (ok, text) = inspect(&[d, "--records"]);
    assert!(ok && text.contains("put id=5 v=\"x\""), "{text}");

    let files = journal_files(&data);
    assert!(files.len() >= 8, "expected claims and commits: {files:?}");
    for (i, file) in files.iter().enumerate() {
        let good = std::fs::read(file).unwrap();
        // A different position in each object: header, record, footer.
        let at = (i * 7919 + 13) % good.len();
        let mut bad = good.clone();
        bad[at] ^= 0x10;
        std::fs::write(file, &bad).unwrap();
        let (ok, text) = inspect(&[d, "--verify"]);
        std::fs::write(file, &good).unwrap();
        let name = file.file_name().unwrap().to_str().unwrap();
        assert!(
            !ok,
            "byte {at} of {name} flipped, yet verification passed:\n{text}"
        );
        assert!(
            text.lines()
                .any(|l| l.contains("DEFECT") && l.contains(name)),
            "the defect report does not name {name}:\n{text}"
        );
    }
    // Truncation and a missing object are defects too.
    // (A missing first object is what retention leaves, so take one in the middle.)
    let victim = &files[2];
    let good = std::fs::read(victim).unwrap();
    std::fs::write(victim, &good[..good.len() - 5]).unwrap();
    let (ok, text) = inspect(&[d, "--verify"]);
    assert!(!ok && text.contains("DEFECT"), "{text}");
    // The server refuses to start on it, naming the object, rather than skip or half-apply.
    let out = Command::new(weft_bin())
        .args(["serve", "--listen", "127.0.0.1:0", "--data", d])
        .output()
        .unwrap();
    let log = String::from_utf8_lossy(&out.stderr);
    let name = victim.file_name().unwrap().to_str().unwrap();
    assert!(
        !out.status.success(),
        "started on a torn journal object:\n{log}"
    );
    assert!(log.contains(name), "the error does not name {name}:\n{log}");
    std::fs::remove_file(victim).unwrap();
    let (ok, text) = inspect(&[d, "--verify"]);
    assert!(!ok && text.contains("sequence gap"), "{text}");
    std::fs::write(victim, &good).unwrap();
    let (ok, _) = inspect(&[d, "--verify"]);
    assert!(ok);
}

/// The frames `weft inspect journal` lists, as (file, offset, bytes), in journal order.
fn frames(text: &str, data: &Path) -> Vec<(PathBuf, usize, usize)> {
    text.lines()
        .filter_map(|l| {
            let l = l.trim();
            let (name, rest) = l.split_once("  v2 ")?;
            let (file, offset) = match name.split_once('@') {
                Some((f, o)) => (f, o.parse().ok()?),
                None => (name, 0),
            };
            let bytes = rest.rsplit("bytes=").next()?.trim().parse().ok()?;
            Some((data.join(file), offset, bytes))
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_finds_damage_in_log_files_and_an_interrupted_write_is_not_damage() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let flags = [
        "--journal-retention",
        "false",
        "--journal-file-bytes",
        "65536",
    ];
    let mut server = Server::start_with(&data, &flags);
    let rows = 300;
    {
        let c = server.connect().await;
        c.batch_execute("CREATE TABLE t (id int PRIMARY KEY, v text)")
            .await
            .unwrap();
        for i in 0..rows {
            c.execute("INSERT INTO t VALUES ($1, repeat('x', 200))", &[&i])
                .await
                .unwrap();
        }
    }
    server.kill9();
    let d = data.to_str().unwrap();
    let (ok, text) = inspect(&[d, "--verify"]);
    assert!(ok && text.contains("no defects"), "{text}");
    assert!(text.contains("log file"), "{text}");
    let all = frames(&text, &data);
    let in_logs: Vec<_> = all.iter().filter(|f| f.1 > 0).collect();
    assert!(
        in_logs.len() > 50,
        "batches are frames of log files: {text}"
    );
    let files: std::collections::BTreeSet<_> = all.iter().map(|f| f.0.clone()).collect();
    assert!(files.len() >= 3, "64 KiB log files rotate: {files:?}");
    // A flipped byte in any frame but the journal's very last (which a crash in the
    // middle of its write would leave the same way) is a defect naming its file.
    let last_of: std::collections::HashMap<_, _> = all
        .iter()
        .map(|f| (f.0.parent().unwrap().to_path_buf(), f.clone()))
        .collect();
    for (i, (file, offset, bytes)) in all.iter().enumerate().step_by(7) {
        if last_of.get(file.parent().unwrap()) == Some(&(file.clone(), *offset, *bytes)) {
            continue;
        }
        let good = std::fs::read(file).unwrap();
        let at = offset + (i * 7919 + 13) % bytes;
        let mut bad = good.clone();
        bad[at] ^= 0x10;
        std::fs::write(file, &bad).unwrap();
        let (ok, text) = inspect(&[d, "--verify"]);
        std::fs::write(file, &good).unwrap();
        let name = file.file_name().unwrap().to_str().unwrap();
        assert!(
            !ok && text
                .lines()
                .any(|l| l.contains("DEFECT") && l.contains(name)),
            "byte {at} of {name} flipped, yet:\n{text}"
        );
    }
    // Half a frame after the last one, as a crash in the middle of a write leaves it: not
    // part of the journal, reported, and a restart has every row.
    let (file, offset, bytes) = all.last().unwrap().clone();
    let mut f = std::fs::read(&file).unwrap();
    let frame = f[offset..offset + bytes].to_vec();
    f[offset + bytes..offset + bytes + bytes / 2].copy_from_slice(&frame[..bytes / 2]);
    std::fs::write(&file, &f).unwrap();
    let (ok, text) = inspect(&[d, "--verify"]);
    assert!(ok && text.contains("interrupted write"), "{text}");
    let server = Server::start_with(&data, &flags);
    let c = server.connect().await;
    let n: i64 = c
        .query_one("SELECT count(*) FROM t", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(n, rows as i64);
}

/// A server on `data` started with `flags`, and a client of it that created table `t`.
async fn with_table(data: &Path, flags: &[&str]) -> (Server, tokio_postgres::Client) {
    let server = Server::start_with(data, flags);
    let c = server.connect().await;
    c.batch_execute("CREATE TABLE t (id int PRIMARY KEY, v text)")
        .await
        .unwrap();
    (server, c)
}

/// Inserts `count` rows of `t` from id `*n` on, each `width` bytes wide.
async fn insert_rows(c: &tokio_postgres::Client, n: &mut i32, count: usize, width: i32) {
    for _ in 0..count {
        c.execute(
            &format!("INSERT INTO t VALUES ($1, repeat('v', {width}))"),
            &[&*n],
        )
        .await
        .unwrap();
        *n += 1;
    }
}

/// A few more commits that only the journal holds (rows `n..n+5` of `t`, which holds `n`),
/// then kill -9 and a restart: every row is there, and the journal verifies.
async fn tail_survives_a_restart(
    server: &mut Server,
    c: tokio_postgres::Client,
    mut n: i32,
    data: &Path,
) {
    for _ in 0..5 {
        c.execute("INSERT INTO t VALUES ($1, 'tail')", &[&n])
            .await
            .unwrap();
        n += 1;
    }
    drop(c);
    server.restart(); // kill -9, then start again
    let c = server.connect().await;
    let count: i64 = c
        .query_one("SELECT count(*) FROM t", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(count, n as i64, "rows lost after retention and a restart");
    let (ok, text) = inspect(&[data.to_str().unwrap(), "--verify"]);
    assert!(ok, "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retention_deletes_passed_log_files_and_a_restart_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let (mut server, c) = with_table(
        &data,
        &["--flush-bytes-min", "1024", "--journal-file-bytes", "65536"],
    )
    .await;
    let logs = |data: &Path| -> Vec<PathBuf> {
        journal_files(data)
            .into_iter()
            .filter(|f| std::fs::metadata(f).is_ok_and(|m| m.len() >= 65536))
            .collect()
    };
    let mut seen = std::collections::BTreeSet::new();
    let mut n = 0i32;
    let deadline = Instant::now() + Duration::from_secs(90);
    // Write until retention has deleted a log file it saw.
    loop {
        insert_rows(&c, &mut n, 50, 300).await;
        let now = logs(&data);
        seen.extend(now.iter().cloned());
        if seen.iter().any(|f| !now.contains(f)) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "retention deleted no log file ({} files)",
            now.len()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    tail_survives_a_restart(&mut server, c, n, &data).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retention_never_deletes_what_a_restart_needs() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let (mut server, c) = with_table(
        &data,
        &["--flush-bytes-min", "1024", "--journal-layout", "objects"],
    )
    .await;
    let mut peak = 0;
    let mut n = 0i32;
    let deadline = Instant::now() + Duration::from_secs(60);
    // Write until retention has visibly deleted objects.
    loop {
        insert_rows(&c, &mut n, 20, 100).await;
        let files = journal_files(&data).len();
        peak = peak.max(files);
        if peak > 10 && files < peak / 2 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "retention deleted nothing ({files} objects)"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    // Object 0 is the first writer's epoch claim, which retention keeps (a fence); the
    // commits after it are gone.
    let left: Vec<String> = journal_files(&data)
        .iter()
        .map(|f| f.file_name().unwrap().to_str().unwrap().to_string())
        .collect();
    assert!(
        !left.iter().any(|f| f == "00000000000000000001.wj"),
        "old objects were deleted: {left:?}"
    );
    tail_survives_a_restart(&mut server, c, n, &data).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn store_faults_never_turn_a_failure_into_success() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    // Ambiguous PUTs, failed PUTs and GETs, and one short resolve timeout: clients see
    // successes, and failures with their class; never a success that is not durable.
    let mut server = Server::start_with(
        &data,
        &[
            "--inject-faults",
            "put_error=100,lost_ack=100,get_error=50,hang=20,hang_ms=400,seed=3",
            "--commit-resolve-timeout-ms",
            "300",
            "--flush-bytes-min",
            "100000000",
        ],
    );
    let mut ddl_ok = false;
    for _ in 0..20 {
        let c = server.connect().await;
        if c.batch_execute("CREATE TABLE t (id int PRIMARY KEY)")
            .await
            .is_ok()
        {
            ddl_ok = true;
            break;
        }
        if c.query("SELECT 1 FROM t", &[]).await.is_ok() {
            ddl_ok = true;
            break;
        }
    }
    assert!(ddl_ok);
    let mut acked = Vec::new();
    let mut unknown = Vec::new();
    let mut classes = std::collections::BTreeMap::<String, usize>::new();
    let c = server.connect().await;
    for i in 0..150i32 {
        match c.execute("INSERT INTO t VALUES ($1)", &[&i]).await {
            Ok(_) => acked.push(i),
            Err(e) => {
                let code = sqlstate(&e);
                *classes.entry(code.clone()).or_default() += 1;
                assert!(
                    ["08007", "40001", "58030"].contains(&code.as_str()),
                    "unexpected failure {code}: {e}"
                );
                if code == "08007" {
                    unknown.push(i);
                }
            }
        }
    }
    eprintln!(
        "{} acknowledged, failures by SQLSTATE: {classes:?}",
        acked.len()
    );
    assert!(acked.len() > 50, "too few commits succeeded: {classes:?}");
    // The faults really happened, and the writer resolved them (a run without them would
    // prove nothing).
    let log = server.log_text();
    assert!(
        log.contains("injecting faults") && log.matches("write failed; resolving").count() >= 5,
        "the store faults were not exercised:\n{log}"
    );
    drop(c);
    // Restart without faults: every acknowledged row is there, each once (the primary key
    // would refuse a duplicate apply... so count them against the journal as well).
    server.kill9();
    let mut clean = Server::start_with(&data, &[]);
    let c = clean.connect().await;
    let rows: Vec<i32> = c
        .query("SELECT id FROM t ORDER BY id", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    for i in &acked {
        assert!(rows.contains(i), "acknowledged row {i} lost");
    }
    for r in &rows {
        assert!(
            acked.contains(r) || unknown.contains(r),
            "row {r} is committed though its client was told it failed for certain"
        );
    }
    let (ok, text) = inspect(&[data.to_str().unwrap(), "--verify", "--records"]);
    assert!(ok, "{text}");
    let puts = text.lines().filter(|l| l.contains(" put id=")).count();
    assert_eq!(
        puts,
        rows.len(),
        "a commit was written to the journal twice:\n{text}"
    );
    clean.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_process_fences_the_first() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let flags = ["--journals", "1", "--flush-bytes-min", "100000000"];
    let first = Server::start_with(&data, &flags);
    let a = first.connect().await;
    a.batch_execute("CREATE TABLE t (id int PRIMARY KEY)")
        .await
        .unwrap();
    a.execute("INSERT INTO t VALUES (1)", &[]).await.unwrap();
    // Split brain: a second process on the same data takes the journal over.
    let second = Server::start_with(&data, &flags);
    let b = second.connect().await;
    let err = a
        .execute("INSERT INTO t VALUES (2)", &[])
        .await
        .expect_err("the fenced process committed");
    // The first process ended the session when it learned of the second (FATAL 57P01),
    // or refuses the commit: either way nothing is committed.
    assert!(
        a.is_closed() || ["40001", "58030", "57P01"].contains(&sqlstate(&err).as_str()),
        "{err:?}"
    );
    b.execute("INSERT INTO t VALUES (3)", &[]).await.unwrap();
    let ids: Vec<i32> = b
        .query("SELECT id FROM t ORDER BY id", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(ids, vec![1, 3]);
    drop(first);
}

#[test]
fn a_store_without_conditional_puts_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(weft_bin())
        .args(["serve", "--listen", "127.0.0.1:0", "--data"])
        .arg(dir.path().join("data"))
        .args(["--inject-faults", "ignore_conditional_puts"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(!out.status.success());
    assert!(
        text.contains("does not honour conditional puts") && text.contains("--single-writer"),
        "{text}"
    );
    // The operator's explicit promise lets it run.
    let mut s = Server::start_with(
        &dir.path().join("data"),
        &[
            "--inject-faults",
            "ignore_conditional_puts",
            "--single-writer",
        ],
    );
    s.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_s3_inspect_and_fencing_work_the_same() {
    let Some(s3) = weft_tests::s3::S3Server::start() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let url = s3.url("fence");
    let flags = ["--store", url.as_str(), "--journals", "1"];
    let first = Server::start_env(&dir.path().join("a"), &flags, s3.env());
    let a = first.connect().await;
    a.batch_execute("CREATE TABLE t (id int PRIMARY KEY)")
        .await
        .unwrap();
    a.execute("INSERT INTO t VALUES (1)", &[]).await.unwrap();
    let second = Server::start_env(&dir.path().join("b"), &flags, s3.env());
    let b = second.connect().await;
    let err = a
        .execute("INSERT INTO t VALUES (2)", &[])
        .await
        .expect_err("the fenced process committed");
    assert!(
        a.is_closed() || ["40001", "57P01"].contains(&sqlstate(&err).as_str()),
        "{err:?}"
    );
    b.execute("INSERT INTO t VALUES (3)", &[]).await.unwrap();
    drop((first, second));
    let out = Command::new(weft_bin())
        .args(["inspect", "journal", &url, "--verify", "--records"])
        .envs(s3.env())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains("epoch=2") && text.contains("(epoch claim)"),
        "{text}"
    );
    assert!(
        text.contains("put id=3") && !text.contains("put id=2"),
        "{text}"
    );
}
