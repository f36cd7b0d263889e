//! The cluster on etcd, every role a real process: two `weft serve --etcd` processes (a
//! leader and a standby) over one store, two `weft frontend --etcd` processes that follow
//! the leader, and a real etcd. A write load runs through both frontends (inserts whose
//! acknowledgements are recorded, and bank transfers between accounts) while a fault is
//! injected; afterwards every acknowledged insert is present, nothing is present that was
//! refused, and the bank's total is what it was (no lost update).
//!
//! - `kill -9` of the leader: the standby is elected, takes the store over and serves;
//!   the frontends follow it and the load goes on. The gap is measured and bounded.
//! - SIGSTOP of the leader past its etcd lease: the standby takes over; on SIGCONT the
//!   stalled leader exits without acknowledging anything the new leader does not hold.
//! - etcd killed and restarted under load: the leader leads on, the load goes on.
//! - `weft cluster status` shows every process and the leader.
#![allow(clippy::disallowed_methods)] // test harness deadlines are real time

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use std::collections::HashMap;
use std::sync::atomic::AtomicU64;

use weft_tests::etcd::EtcdServer;
use weft_tests::history::{check, parse_list, Model, Op, Txn};
use weft_tests::{free_port, Server};

const ACCOUNTS: i64 = 10;
const BALANCE: i64 = 1000;
/// The leader's etcd lease: how long a dead leader holds up its standby.
const TTL_S: &str = "2";

struct Cluster {
    _tmp: tempfile::TempDir,
    dir: PathBuf,
    etcd: EtcdServer,
    serving: Vec<Server>,
    frontends: Vec<Server>,
}

fn serving_args(etcd: &str) -> Vec<String> {
    let rpc = format!("127.0.0.1:{}", free_port());
    [
        "--rpc-listen",
        &rpc,
        "--etcd",
        etcd,
        "--etcd-lease-ttl-s",
        TTL_S,
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

fn start_standby(dir: &Path, etcd: &str, n: usize) -> Server {
    let args = serving_args(etcd);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let s = Server::start_standby(
        &dir.join("data"),
        &dir.join(format!("serve{n}.log")),
        &args,
        Vec::new(),
    );
    // Standing by (not racing the leader for the key) before anything else happens.
    wait_for(Duration::from_secs(60), "the standby to stand by", || {
        s.log_text().contains("standing by")
    });
    s
}

fn wait_for(max: Duration, what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + max;
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

async fn cluster() -> Option<Cluster> {
    let etcd = EtcdServer::start()?;
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().to_path_buf();
    let args = serving_args(&etcd.url());
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let leader = Server::start_logged(
        &dir.join("data"),
        &dir.join("serve0.log"),
        &args,
        Vec::new(),
    );
    let standby = start_standby(&dir, &etcd.url(), 1);
    let frontends = (0..2)
        .map(|i| {
            Server::start_frontend(
                "",
                &dir.join(format!("frontend{i}.log")),
                &["--etcd", &etcd.url()],
            )
        })
        .collect();
    let cl = Cluster {
        _tmp: tmp,
        dir,
        etcd,
        serving: vec![leader, standby],
        frontends,
    };
    let c = cl.frontends[0].connect().await;
    c.batch_execute(&format!(
        "CREATE TABLE w (id bigint PRIMARY KEY);
         CREATE TABLE bank (id int PRIMARY KEY, balance bigint NOT NULL);
         INSERT INTO bank SELECT g, {BALANCE} FROM generate_series(1, {ACCOUNTS}) g;
         CREATE TABLE la (k int PRIMARY KEY, v text);"
    ))
    .await
    .unwrap();
    Some(cl)
}

#[derive(Default)]
struct Ledger {
    acked: BTreeSet<i64>,
    /// No answer, or 08007: either outcome.
    unknown: BTreeSet<i64>,
    /// Inserts refused with a definite error, and what it said.
    refused: std::collections::BTreeMap<i64, String>,
    /// When each acknowledgement came.
    acked_at: Vec<Instant>,
    transfers: u64,
    /// List-append transactions, and those whose outcome is unknown (by index).
    history: Vec<Txn>,
    in_doubt: Vec<usize>,
}

/// What became of a list-append transaction.
enum Outcome {
    Committed,
    Failed,
    Unknown,
}

/// One SERIALIZABLE list-append transaction of 1 to 3 operations on 8 keys.
async fn list_append(c: &tokio_postgres::Client, n: u64, values: &AtomicU64) -> (Vec<Op>, Outcome) {
    let mut ops = Vec::new();
    if c.batch_execute("BEGIN ISOLATION LEVEL SERIALIZABLE")
        .await
        .is_err()
    {
        return (ops, Outcome::Failed);
    }
    for i in 0..(n % 3 + 1) {
        let key = ((n * 31 + i * 7) % 8) as u32;
        let r = if (n + i).is_multiple_of(2) {
            let value = values.fetch_add(1, Ordering::Relaxed);
            ops.push(Op::Append { key, value });
            c.execute(
                "INSERT INTO la (k, v) VALUES ($1, $2) \
                 ON CONFLICT (k) DO UPDATE SET v = la.v || ',' || excluded.v",
                &[&(key as i32), &value.to_string()],
            )
            .await
            .map(|_| ())
        } else {
            c.query_opt("SELECT v FROM la WHERE k = $1", &[&(key as i32)])
                .await
                .map(|row| {
                    let list = parse_list(row.and_then(|r| r.get(0)));
                    ops.push(Op::Read { key, list });
                })
        };
        if r.is_err() {
            let _ = c.batch_execute("ROLLBACK").await;
            return (ops, Outcome::Failed);
        }
    }
    match c.batch_execute("COMMIT").await {
        Ok(()) => (ops, Outcome::Committed),
        Err(e) => match e.code().map(|c| c.code()) {
            None | Some("08007") => (ops, Outcome::Unknown),
            Some(_) => (ops, Outcome::Failed),
        },
    }
}

async fn connect(conn: &str) -> Option<tokio_postgres::Client> {
    let (c, connection) = tokio_postgres::connect(conn, tokio_postgres::NoTls)
        .await
        .ok()?;
    tokio::spawn(async move {
        let _ = connection.await;
    });
    Some(c)
}

/// Through `conn` until `stop`: inserts `first, first + step, ...`, moves money between
/// accounts and runs list-append transactions, recording what was acknowledged.
/// Reconnects when the frontend drops the connection (a retry pause, not a
/// synchronisation).
async fn writer(
    conn: String,
    first: i64,
    step: i64,
    stop: Arc<AtomicBool>,
    ledger: Arc<Mutex<Ledger>>,
    values: Arc<AtomicU64>,
) {
    let mut id = first;
    let mut client: Option<tokio_postgres::Client> = None;
    let mut n = 0u64;
    while !stop.load(Ordering::SeqCst) {
        let Some(c) = client.as_ref().filter(|c| !c.is_closed()) else {
            client = connect(&conn).await;
            if client.is_none() {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            continue;
        };
        n += 1;
        if n % 3 == 2 {
            let (ops, outcome) = list_append(c, n + first as u64, &values).await;
            let mut l = ledger.lock().unwrap();
            if matches!(outcome, Outcome::Unknown) {
                let i = l.history.len();
                l.in_doubt.push(i);
            }
            l.history.push(Txn {
                ops,
                committed: matches!(outcome, Outcome::Committed),
            });
            continue;
        }
        if n % 3 == 1 {
            let from = (n as i64 * 7 + first) % ACCOUNTS + 1;
            let to = from % ACCOUNTS + 1;
            let r = c
                .batch_execute(&format!(
                    "BEGIN; UPDATE bank SET balance = balance - 1 WHERE id = {from};
                     UPDATE bank SET balance = balance + 1 WHERE id = {to}; COMMIT"
                ))
                .await;
            match r {
                Ok(()) => ledger.lock().unwrap().transfers += 1,
                Err(_) => {
                    let _ = c.batch_execute("ROLLBACK").await;
                }
            }
            continue;
        }
        match c.execute("INSERT INTO w VALUES ($1)", &[&id]).await {
            Ok(_) => {
                let mut l = ledger.lock().unwrap();
                l.acked.insert(id);
                l.acked_at.push(Instant::now());
            }
            Err(e) => {
                let code = e.code().map(|c| c.code().to_string());
                if code.is_none() || code.as_deref() == Some("08007") {
                    ledger.lock().unwrap().unknown.insert(id);
                } else {
                    ledger.lock().unwrap().refused.insert(id, format!("{e:?}"));
                }
            }
        }
        id += step;
    }
}

struct Load {
    stop: Arc<AtomicBool>,
    ledger: Arc<Mutex<Ledger>>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

/// Two writers on each frontend; writer `i` uses ids `i, i + 4, ...`.
fn load(frontends: &[String]) -> Load {
    let stop = Arc::new(AtomicBool::new(false));
    let ledger = Arc::new(Mutex::new(Ledger::default()));
    let values = Arc::new(AtomicU64::new(1));
    let mut tasks = Vec::new();
    for (f, conn) in frontends.iter().enumerate() {
        for j in 0..2 {
            tasks.push(tokio::spawn(writer(
                conn.clone(),
                (f * 2 + j) as i64,
                4,
                stop.clone(),
                ledger.clone(),
                values.clone(),
            )));
        }
    }
    Load {
        stop,
        ledger,
        tasks,
    }
}

impl Load {
    /// Acknowledged inserts through frontend `f`.
    fn acked_through(&self, f: i64) -> usize {
        let l = self.ledger.lock().unwrap();
        l.acked.iter().filter(|id| (*id % 4) / 2 == f).count()
    }

    /// Waits until `n` more inserts were acknowledged through each frontend.
    async fn progresses(&self, n: usize, what: &str) {
        let base = [self.acked_through(0), self.acked_through(1)];
        let deadline = Instant::now() + Duration::from_secs(90);
        while self.acked_through(0) < base[0] + n || self.acked_through(1) < base[1] + n {
            assert!(
                Instant::now() < deadline,
                "the load did not progress {what}: {} / {} more",
                self.acked_through(0) - base[0],
                self.acked_through(1) - base[1]
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Stops the writers; the longest wait between two acknowledgements.
    async fn finish(self) -> (Ledger, Duration) {
        self.stop.store(true, Ordering::SeqCst);
        for t in self.tasks {
            t.await.unwrap();
        }
        let mut l = std::mem::take(&mut *self.ledger.lock().unwrap());
        l.acked_at.sort();
        let gap = l
            .acked_at
            .windows(2)
            .map(|w| w[1] - w[0])
            .max()
            .unwrap_or_default();
        (l, gap)
    }
}

/// Every acknowledged insert is stored, nothing refused is, and the bank adds up.
async fn verify(through: &Server, l: &Ledger) {
    let c = through.connect().await;
    let stored: BTreeSet<i64> = c
        .query("SELECT id FROM w", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    let lost: Vec<_> = l.acked.difference(&stored).collect();
    assert!(lost.is_empty(), "acknowledged and lost: {lost:?}");
    let phantom: Vec<_> = stored
        .difference(&l.acked)
        .filter(|id| !l.unknown.contains(id))
        .collect();
    let why: Vec<_> = phantom.iter().map(|id| l.refused.get(id)).collect();
    assert!(
        phantom.is_empty(),
        "stored but refused: {phantom:?}: {why:?}"
    );
    let total: i64 = c
        .query_one("SELECT sum(balance)::bigint FROM bank", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(total, ACCOUNTS * BALANCE, "money appeared or vanished");
    assert!(l.transfers > 0, "no transfer committed");

    // The list-append history, with each transaction in doubt resolved by what is stored.
    let finals: HashMap<u32, Vec<u64>> = c
        .query("SELECT k, v FROM la", &[])
        .await
        .unwrap()
        .into_iter()
        .map(|r| (r.get::<_, i32>(0) as u32, parse_list(r.get(1))))
        .collect();
    let visible: BTreeSet<u64> = finals.values().flatten().copied().collect();
    let mut history = l.history.clone();
    for &i in &l.in_doubt {
        history[i].committed = history[i]
            .ops
            .iter()
            .any(|o| matches!(o, Op::Append { value, .. } if visible.contains(value)));
    }
    let committed = history.iter().filter(|t| t.committed).count();
    assert!(committed > 0, "no list-append transaction committed");
    let anomalies = check(&history, &finals, Model::Serializable);
    assert!(
        anomalies.is_empty(),
        "{} list-append transactions ({committed} committed): {anomalies:#?}",
        history.len()
    );
}

fn status(etcd: &str) -> String {
    let out = std::process::Command::new(weft_tests::weft_bin())
        .args(["cluster", "status", "--etcd", etcd])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_standby_takes_over_a_killed_or_stalled_leader_and_loses_nothing() {
    let Some(mut cl) = cluster().await else {
        return;
    };
    let st = status(&cl.etcd.url());
    assert_eq!(st.matches("\nfrontend ").count(), 2, "{st}");
    assert!(
        st.contains(" leader\n") && st.contains(" standby\n"),
        "{st}"
    );
    assert!(st.contains("epoch 1 "), "{st}");

    let conns: Vec<String> = cl.frontends.iter().map(Server::conn_string).collect();
    let work = load(&conns);
    work.progresses(50, "before the kill").await;

    // kill -9 of the leader: the standby is elected and serves; the frontends follow.
    let killed_at = Instant::now();
    cl.serving[0].kill9();
    work.progresses(50, "after the leader was killed").await;
    let took_over = killed_at.elapsed();
    let new_leader = &mut cl.serving[1];
    new_leader.wait_serving();
    assert!(new_leader.log_text().contains("elected leader"));
    let st = status(&cl.etcd.url());
    assert!(st.contains("epoch 2 "), "{st}");

    // The killed one comes back as the standby; then the leader stalls past its lease.
    cl.serving[0] = start_standby(&cl.dir, &cl.etcd.url(), 2);
    cl.serving[1].signal("STOP");
    let stopped_at = Instant::now();
    wait_for(Duration::from_secs(60), "the standby to take over", || {
        cl.serving[0].log_text().contains("elected leader")
    });
    cl.serving[0].wait_serving();
    work.progresses(50, "after the leader stalled").await;
    let stall_took_over = stopped_at.elapsed();
    cl.serving[1].signal("CONT");
    // Woken, the stalled leader learns it was replaced and exits: it serves nothing more.
    let exit = cl.serving[1].wait_exit(Duration::from_secs(30));
    assert!(
        exit.is_some_and(|s| !s.success()),
        "the stalled leader did not exit: {exit:?}\n{}",
        cl.serving[1].log_text()
    );
    work.progresses(50, "after the stalled leader woke").await;

    let (ledger, gap) = work.finish().await;
    eprintln!(
        "kill -9: load resumed on both frontends after {took_over:?}; SIGSTOP: after \
         {stall_took_over:?}; longest wait between acknowledgements {gap:?}; {} inserts \
         acknowledged, {} in doubt, {} transfers, {} list-append transactions",
        ledger.acked.len(),
        ledger.unknown.len(),
        ledger.transfers,
        ledger.history.len()
    );
    assert!(gap < Duration::from_secs(20), "a {gap:?} gap");
    verify(&cl.frontends[1], &ledger).await;
    verify(&cl.serving[0], &ledger).await;
    let st = status(&cl.etcd.url());
    assert!(st.contains("epoch 3 "), "{st}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn frontend_and_etcd_faults_lose_nothing() {
    let Some(mut cl) = cluster().await else {
        return;
    };
    let conns: Vec<String> = cl.frontends.iter().map(Server::conn_string).collect();
    let work = load(&conns);
    work.progresses(50, "at first").await;

    // etcd killed: the leader leads on and the frontends keep their leader.
    cl.etcd.kill();
    let down_at = tokio::time::Instant::now();
    work.progresses(50, "while etcd was down").await;
    // The outage lasts longer than the leader's lease.
    tokio::time::sleep_until(down_at + Duration::from_secs(3)).await;
    work.progresses(20, "with etcd down past the lease").await;
    cl.etcd.resume();
    work.progresses(50, "after etcd came back").await;
    let st = status(&cl.etcd.url());
    assert!(st.contains("epoch 1 "), "the leader changed: {st}");
    assert!(cl.serving[1].log_text().contains("standing by"));
    assert!(!cl.serving[1].log_text().contains("elected leader"));

    // kill -9 of a frontend: the other frontend's writers never stop.
    let before = work.acked_through(1);
    cl.frontends[0].kill9();
    let deadline = Instant::now() + Duration::from_secs(60);
    while work.acked_through(1) < before + 50 {
        assert!(
            Instant::now() < deadline,
            "frontend 1 stalled after frontend 0 was killed"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let (ledger, _) = work.finish().await;
    verify(&cl.frontends[1], &ledger).await;
    verify(&cl.serving[0], &ledger).await;
    // A frontend started now sees everything, and a refused connection says why.
    let f = Server::start_frontend(
        "",
        &cl.dir.join("frontend2.log"),
        &["--etcd", &cl.etcd.url()],
    );
    verify(&f, &ledger).await;
    let gone = tokio_postgres::connect(&cl.frontends[0].conn_string(), tokio_postgres::NoTls).await;
    assert!(gone.is_err());
}

/// A base port with the 43 ports `weft dev-cluster --port` uses free.
fn free_port_block() -> u16 {
    let seed = std::process::id() as u16;
    for i in 0..200u16 {
        let base = 20000 + (seed.wrapping_add(i * 97) % 40000);
        if (0..43).all(|k| std::net::TcpListener::bind(("127.0.0.1", base + k)).is_ok()) {
            return base;
        }
    }
    panic!("no block of 43 free ports");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dev_cluster_starts_a_cluster_a_user_can_use() {
    if weft_tests::etcd::etcd_bin().is_none() {
        assert!(
            std::env::var("WEFT_REQUIRE_TOOLS").is_err(),
            "etcd not installed"
        );
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let port = free_port_block();
    let mut args = vec![
        "dev-cluster".to_string(),
        "--dir".into(),
        dir.path().display().to_string(),
        "--port".into(),
        port.to_string(),
    ];
    if weft_tests::s3::s3s_fs_bin().is_none() {
        assert!(!weft_tests::s3::s3_required(), "s3s-fs not installed");
        args.push("--local-store".into());
    }
    let mut child = std::process::Command::new(weft_tests::weft_bin())
        .args(&args)
        .env(
            "PATH",
            format!(
                "{}:{}",
                weft_tests::s3::s3s_fs_bin()
                    .and_then(|p| p.parent().map(Path::to_path_buf))
                    .unwrap_or_default()
                    .display(),
                std::env::var("PATH").unwrap_or_default()
            ),
        )
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // It says when it is up.
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
        {
            let _ = tx.send(line);
        }
    });
    let mut printed = String::new();
    while !printed.contains("is up") {
        match rx.recv_timeout(Duration::from_secs(180)) {
            Ok(line) => printed.push_str(&(line + "\n")),
            Err(_) => {
                let _ = child.kill();
                let out = child.wait_with_output().unwrap();
                panic!(
                    "dev-cluster did not come up:\n{printed}\n{}",
                    String::from_utf8_lossy(&out.stderr)
                );
            }
        }
    }
    let conn = |p: u16| format!("host=127.0.0.1 port={p} user=postgres dbname=postgres");
    let (f0, c0) = tokio_postgres::connect(&conn(port), tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(c0);
    let (f1, c1) = tokio_postgres::connect(&conn(port + 1), tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(c1);
    f0.batch_execute(
        "CREATE TABLE hello (id int PRIMARY KEY, v text); INSERT INTO hello VALUES (1, 'one')",
    )
    .await
    .unwrap();
    let v: String = f1
        .query_one("SELECT v FROM hello WHERE id = 1", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(v, "one");
    let etcd = format!("http://127.0.0.1:{}", port + 40);
    let st = status(&etcd);
    assert_eq!(st.matches("\nfrontend ").count(), 2, "{st}");
    assert!(
        st.contains(" leader\n") && st.contains(" standby\n"),
        "{st}"
    );
    let leader_pid = |st: &str| -> u32 {
        let rest = st.split("leader: pid ").nth(1).expect("a leader");
        rest.split_whitespace().next().unwrap().parse().unwrap()
    };

    // kill -9 of the leader: the standby serves, and the killed one comes back as the
    // next standby.
    let old = leader_pid(&st);
    let _ = std::process::Command::new("kill")
        .args(["-KILL", &old.to_string()])
        .status();
    // The statement waits for the new leader. Only a COMMIT whose answer was lost with
    // the old leader (08007) may fail, and then the row is there or not: look, and retry.
    for attempt in 0.. {
        match f0.execute("INSERT INTO hello VALUES (2, 'two')", &[]).await {
            Ok(_) => break,
            Err(e) if weft_tests::sqlstate(&e) == "08007" && attempt < 3 => {
                let n: i64 = f0
                    .query_one("SELECT count(*) FROM hello WHERE id = 2", &[])
                    .await
                    .unwrap()
                    .get(0);
                if n == 1 {
                    break;
                }
            }
            Err(e) => panic!("{e:?}"),
        }
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let st = status(&etcd);
        if st.contains(" leader\n") && st.contains(" standby\n") && leader_pid(&st) != old {
            break;
        }
        assert!(Instant::now() < deadline, "no new leader and standby: {st}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let n: i64 = f1
        .query_one("SELECT count(*) FROM hello", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(n, 2);
    drop((f0, f1));

    // Ctrl-C (SIGTERM here) stops every process.
    let _ = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let deadline = Instant::now() + Duration::from_secs(90);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(Instant::now() < deadline, "dev-cluster did not stop");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "{status}");
    for p in [port, port + 1, port + 10, port + 20, port + 40] {
        assert!(
            std::net::TcpStream::connect(("127.0.0.1", p)).is_err(),
            "port {p} still open after the cluster stopped"
        );
    }
}

/// A transaction that began before a takeover cannot be checked against the commits the
/// old leader made after it began: the new leader refuses it (40001) rather than let it
/// overwrite an update it never saw.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transaction_older_than_the_takeover_gets_40001_not_a_lost_update() {
    let Some(mut cl) = cluster().await else {
        return;
    };
    let c1 = cl.frontends[0].connect().await;
    let c2 = cl.frontends[1].connect().await;
    c1.batch_execute("BEGIN").await.unwrap();
    let seen: i64 = c1
        .query_one("SELECT balance FROM bank WHERE id = 1", &[])
        .await
        .unwrap()
        .get(0);
    // Another client's update commits on the old leader after c1 began...
    c2.execute("UPDATE bank SET balance = balance + 5 WHERE id = 1", &[])
        .await
        .unwrap();
    // ...and the old leader dies, so its conflict state goes with it.
    cl.serving[0].kill9();
    cl.serving[1].wait_serving();
    c1.execute("UPDATE bank SET balance = $1 WHERE id = 1", &[&(seen - 1)])
        .await
        .unwrap();
    let e = c1
        .batch_execute("COMMIT")
        .await
        .expect_err("a commit over an update it never saw");
    assert_eq!(weft_tests::sqlstate(&e), "40001", "{e}");
    let db = e.as_db_error().expect("a server error");
    let text = format!("{} {}", db.message(), db.detail().unwrap_or_default());
    assert!(text.contains("took over"), "{text}");
    let now: i64 = c2
        .query_one("SELECT balance FROM bank WHERE id = 1", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(now, seen + 5, "the acknowledged update was lost");
}
