//! Bad bytes on the wire: a malformed startup packet, garbage after startup, a truncated
//! frame, a message claiming a huge length, an unknown message type, a body that does not
//! match its message. Each such connection gets FATAL 08P01 and is closed; the server and
//! other sessions carry on.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use weft_tests::Server;

fn raw(server: &Server) -> TcpStream {
    let s = TcpStream::connect(("127.0.0.1", server.port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s
}

fn startup_packet() -> Vec<u8> {
    let mut body = Vec::new();
    body.extend_from_slice(&196608u32.to_be_bytes()); // protocol 3.0
    for (k, v) in [("user", "postgres"), ("database", "postgres")] {
        body.extend_from_slice(k.as_bytes());
        body.push(0);
        body.extend_from_slice(v.as_bytes());
        body.push(0);
    }
    body.push(0);
    let mut p = ((body.len() + 4) as u32).to_be_bytes().to_vec();
    p.extend_from_slice(&body);
    p
}

/// Reads until the peer closes or times out; returns what arrived and whether the peer
/// closed.
fn drain(mut s: TcpStream) -> (Vec<u8>, bool) {
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return (out, true),
            Err(_) => return (out, false),
            Ok(n) => out.extend_from_slice(&buf[..n]),
        }
    }
}

/// The SQLSTATEs of the ErrorResponses in what a server sent.
fn sqlstates(bytes: &[u8]) -> Vec<String> {
    let mut out = Vec::new();
    let mut i = 0;
    while i + 5 <= bytes.len() {
        let ty = bytes[i];
        let len = u32::from_be_bytes(bytes[i + 1..i + 5].try_into().unwrap()) as usize;
        let end = (i + 1 + len).min(bytes.len());
        if ty == b'E' {
            for field in bytes[i + 5..end].split(|b| *b == 0) {
                if let Some(code) = field.strip_prefix(b"C") {
                    out.push(String::from_utf8_lossy(code).into_owned());
                }
            }
        }
        i = 1 + i + len.max(4);
    }
    out
}

/// Sends `bytes` on a fresh connection (after a valid startup when `after_startup`) and
/// checks that the server answers FATAL 08P01 and closes the connection.
fn violation(server: &Server, what: &str, after_startup: bool, bytes: &[u8]) {
    let mut s = raw(server);
    let mut all = Vec::new();
    if after_startup {
        all.extend_from_slice(&startup_packet());
    }
    all.extend_from_slice(bytes);
    s.write_all(&all).unwrap();
    let (got, closed) = drain(s);
    let skip = if after_startup {
        // The startup answers (AuthenticationOk ... ReadyForQuery) come first.
        let pos = got.windows(6).position(|w| w == [b'Z', 0, 0, 0, 5, b'I']);
        pos.map(|p| p + 6).unwrap_or(0)
    } else {
        0
    };
    let codes = sqlstates(&got[skip..]);
    assert_eq!(codes, vec!["08P01".to_string()], "{what}: {got:?}");
    assert!(closed, "{what}: the connection must be closed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_messages_do_not_hurt_the_server() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("data"));
    let healthy = server.connect().await;
    healthy
        .batch_execute("CREATE TABLE p (id int PRIMARY KEY); INSERT INTO p VALUES (1)")
        .await
        .unwrap();

    // A startup packet with an absurd length; garbage instead of a startup packet.
    violation(
        &server,
        "huge startup",
        false,
        &[0x7f, 0xff, 0xff, 0xff, 0, 3, 0, 0],
    );
    violation(&server, "http", false, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    // After a valid startup: an unknown message type.
    violation(&server, "unknown type", true, &[b'@', 0, 0, 0, 4]);
    // A Query whose length exceeds any sane bound.
    violation(
        &server,
        "huge query",
        true,
        &[b'Q', 0x7f, 0xff, 0xff, 0xff, b'S'],
    );
    // A Parse whose body ends inside its own fields (no NUL after the query text).
    violation(
        &server,
        "short parse",
        true,
        &[b'P', 0, 0, 0, 8, 0, b'S', b'E', b'L'],
    );
    // A Bind with a parameter count larger than what follows.
    violation(
        &server,
        "short bind",
        true,
        &[b'B', 0, 0, 0, 10, 0, 0, 0, 0, 0, 9],
    );

    // A truncated frame, then the client disappears: nothing to answer, nothing lost.
    let mut s = raw(&server);
    s.write_all(&startup_packet()).unwrap();
    s.write_all(&[b'Q', 0, 0, 0, 40, b'S', b'E']).unwrap();
    drop(s);

    // The server, the open session and new sessions are fine, and no data was lost.
    let n: i64 = healthy
        .query_one("SELECT count(*) FROM p", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(n, 1);
    let fresh = server.connect().await;
    fresh
        .execute("INSERT INTO p VALUES (2)", &[])
        .await
        .unwrap();
    let n: i64 = fresh
        .query_one("SELECT count(*) FROM p", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(n, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn settings_set_and_show() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("data"));
    let c = server.connect().await;
    c.batch_execute("SET application_name = 'weft-test'; SET TIME ZONE 'UTC'")
        .await
        .unwrap();
    let v: String = c
        .query_one("SHOW application_name", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(v, "weft-test");
    let v: String = c
        .query_one("SHOW server_version", &[])
        .await
        .unwrap()
        .get(0);
    assert!(v.starts_with("15"), "{v}");
    let e = c.batch_execute("SHOW no_such_setting").await.unwrap_err();
    assert_eq!(weft_tests::sqlstate(&e), "42704");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn startup_parameters_become_session_settings() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("data"));
    let conn = format!(
        "{} application_name=from-startup options='-c statement_timeout=1500 --search-path=public -c default_transaction_isolation=serializable'",
        server.conn_string()
    );
    let (c, connection) = tokio_postgres::connect(&conn, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(async move {
        let _ = connection.await;
    });
    for (name, want) in [
        ("application_name", "from-startup"),
        ("statement_timeout", "1500ms"),
        ("search_path", "public"),
        ("default_transaction_isolation", "serializable"),
    ] {
        let got: String = c
            .query_one(&format!("SHOW {name}"), &[])
            .await
            .unwrap()
            .get(0);
        assert_eq!(got, want, "{name}");
    }
    // A session without them keeps the defaults.
    let d = server.connect().await;
    let got: String = d
        .query_one("SHOW statement_timeout", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(got, "0");
}
