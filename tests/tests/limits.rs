//! The bounds on what a client can make the server hold, each exceeded on purpose while
//! the server's resident memory is measured from /proc:
//! - 200 clients at once each read a result larger than `--memory-max`: results stream, a
//!   query that finds no room in the node's memory pool gets 53200, the process stays
//!   within the pool plus its fixed costs, and another session keeps answering;
//! - a client that has not authenticated declares a 512 MiB Query and sends it: the
//!   connection ends at the message's header, and nothing of it is buffered;
//! - an authenticated client's message beyond `--message-bytes-max` ends its connection
//!   with FATAL 08P01, and the server carries on;
//! - 10,000 connection attempts beyond `--max-connections` each get 53300 while the open
//!   sessions carry on, and the server's memory does not grow with them.

use std::io::{Read, Write};
use std::time::Duration;

use futures::{pin_mut, TryStreamExt};
use weft_tests::{process_memory, reset_peak_memory, sqlstate, Server};

const MIB: u64 = 1 << 20;

async fn connect(conn: &str) -> Result<tokio_postgres::Client, tokio_postgres::Error> {
    let (c, connection) = tokio_postgres::connect(conn, tokio_postgres::NoTls).await?;
    tokio::spawn(connection);
    Ok(c)
}

/// Reads every row of `sql`, keeping none: the rows and bytes read.
async fn drain(c: &tokio_postgres::Client, sql: &str) -> Result<(u64, u64), tokio_postgres::Error> {
    let rows = c.query_raw(sql, Vec::<i32>::new()).await?;
    pin_mut!(rows);
    let (mut n, mut bytes) = (0, 0);
    while let Some(row) = rows.try_next().await? {
        let s: &str = row.get(1);
        n += 1;
        bytes += s.len() as u64;
    }
    Ok((n, bytes))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_hundred_clients_reading_more_than_memory_max_stay_within_it() {
    let memory_max = 64 * MIB;
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start_with(
        &dir.path().join("data"),
        &[
            "--memory-max",
            &memory_max.to_string(),
            "--query-memory-max",
            &(16 * MIB).to_string(),
        ],
    );
    let pid = server.pid().unwrap();
    let conn = server.conn_string();
    // 40,000 rows of 1000 bytes each: 40 MB per query, 8 GB for the 200.
    let sql = "SELECT g, repeat('x', 1000) FROM generate_series(1, 40000) g";
    let mut clients = Vec::new();
    for _ in 0..200 {
        clients.push(connect(&conn).await.unwrap());
    }
    let watcher = connect(&conn).await.unwrap();
    // One query alone streams to its end.
    assert_eq!(drain(&watcher, sql).await.unwrap(), (40_000, 40_000_000));
    let before = process_memory(pid, "VmRSS");
    reset_peak_memory(pid);

    let tasks: Vec<_> = clients
        .into_iter()
        .map(|c| {
            tokio::spawn(async move {
                let r = drain(&c, sql).await;
                (r, c)
            })
        })
        .collect();
    // Another session answers while they run.
    for i in 0..20 {
        let v: i32 = watcher
            .query_one("SELECT $1::int4", &[&i])
            .await
            .unwrap()
            .get(0);
        assert_eq!(v, i);
    }
    let (mut streamed, mut refused) = (0, 0);
    for t in tasks {
        let (r, c) = t.await.unwrap();
        match r {
            Ok(read) => {
                assert_eq!(read, (40_000, 40_000_000), "a streamed result is whole");
                streamed += 1;
            }
            Err(e) => {
                assert_eq!(sqlstate(&e), "53200", "{e:?}");
                refused += 1;
            }
        }
        // The session is usable after either outcome.
        assert_eq!(c.query("SELECT 1", &[]).await.unwrap().len(), 1);
    }
    let peak = process_memory(pid, "VmHWM");
    let grown = peak.saturating_sub(before);
    println!(
        "200 clients x 40 MB: {streamed} streamed, {refused} refused (53200); \
         resident {} MiB before, peak {} MiB (+{} MiB; --memory-max {} MiB)",
        before / MIB,
        peak / MIB,
        grown / MIB,
        memory_max / MIB
    );
    assert!(streamed >= 1, "some results stream");
    // The stated bound: the pool, plus per-connection buffers (socket buffers and the
    // row being encoded, well under 1 MiB each), plus the allocator's slack.
    let bound = memory_max + 200 * MIB + 128 * MIB;
    assert!(
        grown < bound,
        "the process grew by {} MiB, more than the {} MiB bound",
        grown / MIB,
        bound / MIB
    );
}

/// Sends a startup packet for `user` on a raw connection.
fn raw_startup(port: u16, user: &str) -> std::net::TcpStream {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    let mut body = Vec::new();
    body.extend_from_slice(&196608u32.to_be_bytes());
    for (k, v) in [("user", user), ("database", "postgres")] {
        body.extend_from_slice(k.as_bytes());
        body.push(0);
        body.extend_from_slice(v.as_bytes());
        body.push(0);
    }
    body.push(0);
    let mut packet = ((body.len() + 4) as u32).to_be_bytes().to_vec();
    packet.extend_from_slice(&body);
    s.write_all(&packet).unwrap();
    s
}

/// Writes up to `total` bytes of a message body; how many went out before the server
/// closed the connection.
fn send_body(s: &mut std::net::TcpStream, total: u64) -> u64 {
    let chunk = vec![b'x'; MIB as usize];
    let mut sent = 0;
    while sent < total {
        match s.write(&chunk) {
            Ok(0) | Err(_) => break,
            Ok(n) => sent += n as u64,
        }
    }
    sent
}

/// What the server sent before it closed: the bytes, as text where printable.
fn read_answer(s: &mut std::net::TcpStream) -> String {
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let mut buf = Vec::new();
    let _ = s.read_to_end(&mut buf);
    String::from_utf8_lossy(&buf).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_messages_end_the_connection_at_their_header() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start_with(
        &dir.path().join("data"),
        &[
            "--auth",
            "scram",
            "--user",
            "alice:secret",
            "--message-bytes-max",
            &MIB.to_string(),
        ],
    );
    let pid = server.pid().unwrap();
    let conn = format!("{} user=alice password=secret", server.conn_string());
    let c = connect(&conn).await.unwrap();
    assert_eq!(c.query("SELECT 1", &[]).await.unwrap().len(), 1);
    let before = process_memory(pid, "VmRSS");
    reset_peak_memory(pid);

    // Before authentication: the server asks for SCRAM, the client sends a Query header
    // declaring 512 MiB: the server answers FATAL 08P01 and closes at once, and the body
    // that follows finds the connection gone.
    let mut s = raw_startup(server.port, "alice");
    let mut header = vec![b'Q'];
    header.extend_from_slice(&(512 * MIB as u32 + 4).to_be_bytes());
    s.write_all(&header).unwrap();
    let answer = read_answer(&mut s);
    assert!(
        answer.contains("08P01") && answer.contains("before authentication"),
        "{answer:?}"
    );
    let sent = send_body(&mut s, 512 * MIB);
    assert!(sent < 512 * MIB, "the server took all {sent} bytes");
    let grown = process_memory(pid, "VmHWM").saturating_sub(before);
    println!(
        "unauthenticated 512 MiB Query: {} MiB sent before the server closed; peak +{} MiB",
        sent / MIB,
        grown / MIB
    );
    assert!(grown < 32 * MIB, "the server grew by {} MiB", grown / MIB);

    // After authentication, a message beyond --message-bytes-max (1 MiB).
    let big = connect(&conn).await.unwrap();
    let text = format!("SELECT '{}'", "y".repeat(2 * MIB as usize));
    let e = big.simple_query(&text).await.unwrap_err();
    // The FATAL 08P01, or (when the server's close overtakes it while the client is still
    // writing) the connection reset.
    assert!(
        sqlstate(&e) == "08P01" || e.is_closed() || e.to_string().contains("connection"),
        "{e:?}"
    );
    assert!(big.is_closed() || big.simple_query("SELECT 1").await.is_err());
    // A message within the bound passes, on another session.
    let text = format!("SELECT length('{}')", "y".repeat(MIB as usize / 2));
    let rows = weft_tests::simple_rows(&c, &text).await;
    assert_eq!(rows, vec![vec![Some((MIB / 2).to_string())]]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_attempts_beyond_max_connections_are_refused_in_bounded_memory() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start_with(&dir.path().join("data"), &["--max-connections", "3"]);
    let pid = server.pid().unwrap();
    let conn = server.conn_string();
    let mut open = Vec::new();
    for _ in 0..3 {
        open.push(connect(&conn).await.unwrap());
    }
    // Warm the refusal path, then measure.
    for _ in 0..100 {
        assert_eq!(sqlstate(&connect(&conn).await.unwrap_err()), "53300");
    }
    let before = process_memory(pid, "VmRSS");
    reset_peak_memory(pid);
    let mut refused = 0;
    for _ in 0..100 {
        let attempts: Vec<_> = (0..100)
            .map(|_| {
                let conn = conn.clone();
                tokio::spawn(async move { connect(&conn).await.map(|_| ()) })
            })
            .collect();
        for a in attempts {
            let e = a.await.unwrap().unwrap_err();
            assert_eq!(sqlstate(&e), "53300", "{e:?}");
            refused += 1;
        }
        assert_eq!(open[0].query("SELECT 1", &[]).await.unwrap().len(), 1);
    }
    assert_eq!(refused, 10_000);
    for c in &open {
        assert_eq!(c.query("SELECT 2", &[]).await.unwrap().len(), 1);
    }
    let after = process_memory(pid, "VmRSS");
    let peak = process_memory(pid, "VmHWM");
    println!(
        "10,000 refused connections: resident {} MiB before, {} MiB after, peak {} MiB",
        before / MIB,
        after / MIB,
        peak / MIB
    );
    assert!(
        peak.saturating_sub(before) < 64 * MIB,
        "the server grew by {} MiB",
        peak.saturating_sub(before) / MIB
    );
}
