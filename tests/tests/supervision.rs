//! Supervised background tasks: a panic in any of them takes the process down with a
//! non-zero status (70) instead of leaving it acknowledging commits it cannot serve, and
//! every commit acknowledged before the failure is readable after a restart.
#![allow(clippy::disallowed_methods)] // the test waits for a real process's exit

use std::collections::BTreeSet;
use std::time::Duration;

use weft_tests::Server;

/// Starts weft with a panic armed in `task`, writes until the process dies, restarts it,
/// and checks every acknowledged row.
async fn panic_in(task: &str, extra: &[&str]) {
    let dir = tempfile::tempdir().unwrap();
    let spec = task.to_string();
    let mut args = vec!["--panic-in", spec.as_str()];
    args.extend_from_slice(extra);
    let mut server = Server::start_with(&dir.path().join("data"), &args);
    let c = server.connect().await;
    c.batch_execute("CREATE TABLE t (id bigint PRIMARY KEY, v text)")
        .await
        .unwrap();
    let mut acked = BTreeSet::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    for id in 0i64.. {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the panic in {task} never fired:\n{}",
            server.log_text()
        );
        match c
            .execute("INSERT INTO t VALUES ($1, repeat('x', 200))", &[&id])
            .await
        {
            Ok(_) => {
                acked.insert(id);
            }
            Err(_) => break,
        }
    }
    let status = tokio::task::block_in_place(|| server.wait_exit(Duration::from_secs(20)))
        .unwrap_or_else(|| {
            panic!(
                "weft kept running after {task} failed:\n{}",
                server.log_text()
            )
        });
    let log = server.log_text();
    assert_eq!(status.code(), Some(70), "{task}: {status}\n{log}");
    assert!(
        log.contains("a background task stopped") && log.contains("injected panic"),
        "{task}: the cause is not logged:\n{log}"
    );
    // Restart without the panic: everything acknowledged is there.
    server
        .extra_args
        .retain(|a| a != "--panic-in" && *a != spec);
    server.restart();
    let c = server.connect().await;
    let rows: BTreeSet<i64> = c
        .query("SELECT id FROM t", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    let lost: Vec<_> = acked.difference(&rows).collect();
    assert!(lost.is_empty(), "{task}: acknowledged rows lost: {lost:?}");
    eprintln!(
        "{task}: {} acknowledged before the failure, all recovered",
        acked.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panicking_flush_ends_the_process() {
    panic_in("flush:3", &["--flush-bytes-min", "1024"]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panicking_compaction_ends_the_process() {
    panic_in(
        "compaction:4",
        &["--flush-bytes-min", "1024", "--compact-segments-max", "1"],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panicking_retention_ends_the_process() {
    panic_in("retention:3", &["--flush-bytes-min", "1024"]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panicking_journal_writer_ends_the_process() {
    panic_in("journal:40", &[]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panicking_crossbar_ends_the_process() {
    panic_in("crossbar:40", &[]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panicking_apply_ends_the_process() {
    panic_in("apply:40", &[]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panicking_ownership_check_ends_the_process() {
    panic_in("ownership:10", &[]).await;
}
