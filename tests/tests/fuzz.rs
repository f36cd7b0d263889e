//! A protocol fuzzer over the frontend's message decoding and session state machine.
//!
//! Seeds are real clients' bytes (testdata/fuzz/seeds/: psql, pgbench in its three query
//! modes, pgjdbc, psycopg, a SCRAM login), recorded with tests/fuzz/record_trace.py. Each
//! case takes a seed apart into its messages, mutates it (bits flipped, lengths and counts
//! set to extremes, messages dropped, repeated, swapped, spliced from another client,
//! type bytes changed, the stream cut short), and sends it over a fresh connection in
//! random pieces to a real `weft serve`: one that trusts loopback and one that asks every
//! client for SCRAM or a token. After each case the server must end or keep answering the
//! connection within a bound, and every few cases a session opened before the fuzzing
//! began must still give the right answer; at the end the server must be alive, must not
//! have panicked, and must have stayed within its memory.
//!
//! It runs for `WEFT_FUZZ_SECONDS` (30 by default, in the README's test command); longer:
//!
//!     WEFT_FUZZ_SECONDS=3600 cargo test -p weft-tests --test fuzz -- --nocapture
//!
//! A failing case is written to `target/fuzz-failures/` and its run is replayed with
//! `WEFT_FUZZ_SEED=<seed printed>`.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::time::Duration;

use tokio::time::Instant;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use weft_tests::Server;

/// How long the server has, after the client stops sending, to end or answer the rest.
const CASE_DEADLINE: Duration = Duration::from_secs(20);
/// Check the long-lived session every this many cases.
const CHECK_EVERY: usize = 25;

/// A recorded client's bytes: the untyped first messages (SSLRequest, startup), then
/// typed ones.
#[derive(Clone)]
struct Trace {
    name: String,
    messages: Vec<Vec<u8>>,
}

fn seeds() -> Vec<Trace> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../testdata/fuzz/seeds");
    let mut out: Vec<Trace> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "bin"))
        .map(|p| Trace {
            name: p.file_name().unwrap().to_string_lossy().into_owned(),
            messages: split(&std::fs::read(&p).unwrap()),
        })
        .collect();
    out.sort_by(|a, b| a.name.cmp(&b.name));
    assert!(
        out.len() >= 6,
        "the seeds are missing from {}",
        dir.display()
    );
    out
}

/// A client's bytes as messages: untyped ones until the startup packet, typed after.
fn split(bytes: &[u8]) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut at = 0;
    let mut started = false;
    while at < bytes.len() {
        let header = if started { 5 } else { 4 };
        if at + header > bytes.len() {
            out.push(bytes[at..].to_vec());
            break;
        }
        let len_at = if started { at + 1 } else { at };
        let len = u32::from_be_bytes(bytes[len_at..len_at + 4].try_into().unwrap()) as usize;
        let end = (len_at + len).min(bytes.len());
        if !started {
            // SSLRequest and GSSENCRequest come before the startup packet.
            let code = bytes
                .get(at + 4..at + 8)
                .map(|c| u32::from_be_bytes(c.try_into().unwrap()));
            started = !matches!(code, Some(80877103) | Some(80877104));
        }
        out.push(bytes[at..end.max(at + 1)].to_vec());
        at = end.max(at + 1);
    }
    out
}

/// One mutation of a trace's messages.
fn mutate(rng: &mut StdRng, trace: &mut Vec<Vec<u8>>, others: &[Trace]) {
    if trace.is_empty() {
        return;
    }
    let i = rng.random_range(0..trace.len());
    match rng.random_range(0..10) {
        // Flip bits in a message.
        0 => {
            let m = &mut trace[i];
            for _ in 0..rng.random_range(1..4) {
                let b = rng.random_range(0..m.len());
                m[b] ^= 1 << rng.random_range(0..8);
            }
        }
        // A length field set to an extreme.
        1 => {
            let m = &mut trace[i];
            let at = if i == 0 || m.len() < 5 { 0 } else { 1 };
            if m.len() >= at + 4 {
                let v: u32 = *[0u32, 3, 4, 5, 0x7fff_ffff, 0xffff_ffff, 1 << 20, 65540]
                    .get(rng.random_range(0..8))
                    .unwrap();
                m[at..at + 4].copy_from_slice(&v.to_be_bytes());
            }
        }
        // A 16- or 32-bit field inside a message (counts, formats, oids) set to an extreme.
        2 => {
            let m = &mut trace[i];
            if m.len() > 7 {
                let at = rng.random_range(5..m.len() - 1);
                let v = [0x00u8, 0xff, 0x7f, 0x80][rng.random_range(0..4)];
                let n = if rng.random_bool(0.5) { 2 } else { 4 }.min(m.len() - at);
                m[at..at + n].fill(v);
            }
        }
        // Drop, repeat or swap messages.
        3 => {
            trace.remove(i);
        }
        4 => {
            let m = trace[i].clone();
            for _ in 0..rng.random_range(1..4) {
                trace.insert(i, m.clone());
            }
        }
        5 => {
            let j = rng.random_range(0..trace.len());
            trace.swap(i, j);
        }
        // A message from another client.
        6 => {
            let other = &others[rng.random_range(0..others.len())];
            if other.messages.len() > 1 {
                let m = other.messages[rng.random_range(1..other.messages.len())].clone();
                trace.insert(i, m);
            }
        }
        // Another type byte.
        7 => {
            if i > 0 && !trace[i].is_empty() {
                trace[i][0] = rng.random();
            }
        }
        // Bytes cut from or added to a message.
        8 => {
            let m = &mut trace[i];
            if rng.random_bool(0.5) && m.len() > 1 {
                let cut = rng.random_range(1..m.len());
                m.truncate(cut);
            } else {
                let extra: Vec<u8> = (0..rng.random_range(1..64)).map(|_| rng.random()).collect();
                let at = rng.random_range(0..=m.len());
                m.splice(at..at, extra);
            }
        }
        // The stream cut short.
        _ => trace.truncate(i.max(1)),
    }
}

/// Sends a case and waits for the server to end the connection or go quiet. `Err` when
/// the server neither closed nor stopped answering in time.
fn run_case(port: u16, bytes: &[u8], rng: &mut StdRng) -> Result<(), String> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).map_err(|e| format!("connect: {e}"))?;
    s.set_write_timeout(Some(CASE_DEADLINE)).unwrap();
    let mut at = 0;
    while at < bytes.len() {
        let n = rng
            .random_range(1..=bytes.len() - at)
            .min(1 + rng.random_range(0..4096));
        if s.write_all(&bytes[at..at + n]).is_err() {
            // The server ended the connection: a fine answer to bad bytes.
            return Ok(());
        }
        at += n;
    }
    let _ = s.shutdown(std::net::Shutdown::Write);
    // The client sent everything and said so: the server must finish and close.
    let deadline = Instant::now() + CASE_DEADLINE;
    let mut buf = vec![0u8; 64 << 10];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err("the server kept the connection open after the client finished".into());
        }
        s.set_read_timeout(Some(left)).unwrap();
        match s.read(&mut buf) {
            Ok(0) => return Ok(()),
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return Ok(()),
            Err(e)
                if e.kind() == std::io::ErrorKind::WouldBlock
                    || e.kind() == std::io::ErrorKind::TimedOut =>
            {
                return Err("the server kept the connection open after the client finished".into())
            }
            Err(e) => return Err(format!("read: {e}")),
        }
    }
}

/// The control data's answer is unchanged.
async fn check(c: &tokio_postgres::Client) {
    let row = c
        .query_one("SELECT count(*), sum(id), min(v) FROM kept", &[])
        .await
        .expect("the control session answers");
    assert_eq!(row.get::<_, i64>(0), 100);
    assert_eq!(row.get::<_, i64>(1), 5050);
    assert_eq!(row.get::<_, String>(2), "v1");
}

fn save_failure(seed: u64, case: usize, bytes: &[u8]) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/fuzz-failures");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(format!("seed-{seed}-case-{case}.bin"));
    std::fs::write(&path, bytes).unwrap();
    path
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mutated_client_traces_never_crash_hang_or_corrupt_the_server() {
    let seconds: u64 = std::env::var("WEFT_FUZZ_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(30);
    let seed: u64 = std::env::var("WEFT_FUZZ_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        // A new seed each run (from the standard library's per-process hash keys), printed
        // so that a failure replays.
        .unwrap_or_else(|| {
            use std::hash::BuildHasher;
            std::collections::hash_map::RandomState::new().hash_one(0u64)
        });
    eprintln!("fuzz: seed {seed} (replay with WEFT_FUZZ_SEED={seed}), {seconds} s");
    let traces = seeds();

    let trust_dir = tempfile::tempdir().unwrap();
    let scram_dir = tempfile::tempdir().unwrap();
    let mut trust = Server::start_with(trust_dir.path(), &["--no-tls"]);
    let mut scram = Server::start_with(
        scram_dir.path(),
        &["--no-tls", "--auth", "scram", "--user", "fuzz:secret"],
    );
    // A session opened before the fuzzing, with data whose answer is known.
    let control = trust.connect().await;
    control
        .batch_execute(
            "CREATE TABLE kept (id int PRIMARY KEY, v text);
             INSERT INTO kept SELECT g, 'v' || g FROM generate_series(1, 100) g;",
        )
        .await
        .unwrap();
    let mut rng = StdRng::seed_from_u64(seed);
    let until = Instant::now() + Duration::from_secs(seconds);
    let mut cases = 0usize;
    let mut failures = Vec::new();
    while Instant::now() < until {
        let base = &traces[rng.random_range(0..traces.len())];
        let mut messages = base.messages.clone();
        for _ in 0..rng.random_range(1..6) {
            mutate(&mut rng, &mut messages, &traces);
        }
        let bytes: Vec<u8> = messages.concat();
        let port = if rng.random_bool(0.75) {
            trust.port
        } else {
            scram.port
        };
        let mut case_rng = StdRng::seed_from_u64(rng.random());
        let b = bytes.clone();
        let result = tokio::task::spawn_blocking(move || run_case(port, &b, &mut case_rng))
            .await
            .unwrap();
        if let Err(why) = result {
            let path = save_failure(seed, cases, &bytes);
            failures.push(format!(
                "case {cases} (from {}): {why}; bytes in {}",
                base.name,
                path.display()
            ));
            if failures.len() >= 5 {
                break;
            }
        }
        cases += 1;
        if cases.is_multiple_of(CHECK_EVERY) {
            check(&control).await;
        }
    }
    check(&control).await;
    for (name, server) in [("trust", &mut trust), ("scram", &mut scram)] {
        assert!(
            server.wait_exit(Duration::ZERO).is_none(),
            "the {name} server exited (seed {seed}):\n{}",
            server.log_text()
        );
        let log = server.log_text();
        assert!(
            !log.contains("panicked"),
            "the {name} server panicked (seed {seed}):\n{log}"
        );
        let pid = server.pid().expect("the server runs");
        let rss = weft_tests::process_memory(pid, "VmHWM");
        assert!(
            rss < 1 << 30,
            "the {name} server peaked at {} MiB (seed {seed})",
            rss >> 20
        );
        // It still accepts a new connection and answers.
        if name == "trust" {
            let c = server.connect().await;
            check(&c).await;
        }
    }
    eprintln!("fuzz: {cases} cases, {} failures", failures.len());
    assert!(failures.is_empty(), "seed {seed}:\n{}", failures.join("\n"));
    assert!(cases > 0);
}
