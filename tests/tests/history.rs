//! History checks: concurrent clients run list-append transactions against a real server;
//! the recorded history is checked for the anomalies the isolation level forbids
//! (`weft_tests::history`). A server started with conflict checks off must make the checker
//! fail, which proves the check can fail.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use weft_tests::history::{check, parse_list, Model, Op, Txn};
use weft_tests::{sqlstate, Server};

struct Workload {
    clients: usize,
    txns_per_client: usize,
    keys: u32,
    level: &'static str,
    seed: u64,
}

async fn run(server: &Server, w: &Workload) -> (Vec<Txn>, HashMap<u32, Vec<u64>>, usize) {
    let setup = server.connect().await;
    setup
        .batch_execute("DROP TABLE IF EXISTS la; CREATE TABLE la (k int PRIMARY KEY, v text)")
        .await
        .unwrap();
    let next_value = Arc::new(AtomicU64::new(1));
    let mut tasks = Vec::new();
    for c in 0..w.clients {
        let client = server.connect().await;
        let next_value = next_value.clone();
        let (n, keys, level) = (w.txns_per_client, w.keys, w.level);
        let mut rng = StdRng::seed_from_u64(w.seed ^ (c as u64) << 32);
        tasks.push(tokio::spawn(async move {
            let append = client
                .prepare(
                    "INSERT INTO la (k, v) VALUES ($1, $2) \
                     ON CONFLICT (k) DO UPDATE SET v = la.v || ',' || excluded.v",
                )
                .await
                .unwrap();
            let read = client
                .prepare("SELECT v FROM la WHERE k = $1")
                .await
                .unwrap();
            let mut history = Vec::new();
            let mut conflicts = 0;
            for _ in 0..n {
                let plan: Vec<(bool, u32)> = (0..rng.random_range(1..=4))
                    .map(|_| (rng.random_bool(0.5), rng.random_range(0..keys)))
                    .collect();
                client
                    .batch_execute(&format!("BEGIN ISOLATION LEVEL {level}"))
                    .await
                    .unwrap();
                let mut ops = Vec::new();
                let mut failed = None;
                for (is_append, key) in plan {
                    let r = if is_append {
                        let value = next_value.fetch_add(1, Ordering::Relaxed);
                        ops.push(Op::Append { key, value });
                        client
                            .execute(&append, &[&(key as i32), &value.to_string()])
                            .await
                            .map(|_| ())
                    } else {
                        client.query_opt(&read, &[&(key as i32)]).await.map(|row| {
                            let list = parse_list(row.and_then(|r| r.get(0)));
                            ops.push(Op::Read { key, list });
                        })
                    };
                    if let Err(e) = r {
                        failed = Some(e);
                        break;
                    }
                }
                let committed = match failed {
                    Some(e) => {
                        panic!("statement failed: {e:?}");
                    }
                    None => match client.batch_execute("COMMIT").await {
                        Ok(()) => true,
                        Err(e) => {
                            assert_eq!(sqlstate(&e), "40001", "{e:?}");
                            conflicts += 1;
                            false
                        }
                    },
                };
                history.push(Txn { ops, committed });
            }
            (history, conflicts)
        }));
    }
    let mut history = Vec::new();
    let mut conflicts = 0;
    for t in tasks {
        let (h, c) = t.await.unwrap();
        history.extend(h);
        conflicts += c;
    }
    let finals = setup
        .query("SELECT k, v FROM la", &[])
        .await
        .unwrap()
        .into_iter()
        .map(|r| (r.get::<_, i32>(0) as u32, parse_list(r.get(1))))
        .collect();
    (history, finals, conflicts)
}

fn summary(history: &[Txn], conflicts: usize) -> String {
    let ok = history.iter().filter(|t| t.committed).count();
    format!(
        "{} transactions, {ok} committed, {conflicts} failed with 40001",
        history.len()
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_append_histories_are_snapshot_isolated_and_serializable() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("data"));
    for (level, model) in [
        ("REPEATABLE READ", Model::SnapshotIsolation),
        ("SERIALIZABLE", Model::Serializable),
    ] {
        let w = Workload {
            clients: 8,
            txns_per_client: 40,
            keys: 6,
            level,
            seed: 7,
        };
        let (history, finals, conflicts) = run(&server, &w).await;
        eprintln!("{level}: {}", summary(&history, conflicts));
        assert!(
            history.iter().filter(|t| t.committed).count() > history.len() / 4,
            "too few transactions committed to say anything"
        );
        let anomalies = check(&history, &finals, model);
        assert!(anomalies.is_empty(), "{level}: {anomalies:#?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_checker_catches_a_server_without_conflict_checks() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start_with(
        &dir.path().join("data"),
        &["--unsafe-disable-conflict-checks"],
    );
    let mut found = Vec::new();
    for seed in 0..5 {
        let w = Workload {
            clients: 8,
            txns_per_client: 30,
            keys: 3,
            level: "REPEATABLE READ",
            seed,
        };
        let (history, finals, conflicts) = run(&server, &w).await;
        assert_eq!(conflicts, 0, "nothing can conflict with the checks off");
        found = check(&history, &finals, Model::SnapshotIsolation);
        eprintln!(
            "seed {seed}: {}, {} anomalies",
            summary(&history, conflicts),
            found.len()
        );
        if !found.is_empty() {
            break;
        }
    }
    assert!(
        !found.is_empty(),
        "the checker found nothing wrong with a broken server"
    );
    eprintln!("first anomalies: {:#?}", &found[..found.len().min(5)]);
}
