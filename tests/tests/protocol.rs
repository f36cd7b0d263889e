//! Bad bytes on the wire: a malformed startup packet, garbage after startup, a truncated
//! frame, a message claiming a huge length. Each connection fails on its own; the server
//! and other sessions carry on.

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

/// Reads until the peer closes or times out; returns what arrived.
fn drain(mut s: TcpStream) -> Vec<u8> {
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match s.read(&mut buf) {
            Ok(0) | Err(_) => return out,
            Ok(n) => out.extend_from_slice(&buf[..n]),
        }
    }
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

    // 1. A startup packet with an absurd length.
    let mut s = raw(&server);
    s.write_all(&[0x7f, 0xff, 0xff, 0xff, 0, 3, 0, 0]).unwrap();
    drain(s);

    // 2. Garbage instead of a startup packet.
    let mut s = raw(&server);
    s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    drain(s);

    // 3. A valid startup, then an unknown message type.
    let mut s = raw(&server);
    s.write_all(&startup_packet()).unwrap();
    s.write_all(&[b'@', 0, 0, 0, 4]).unwrap();
    drain(s);

    // 4. A valid startup, then a Query message whose length exceeds any sane bound.
    let mut s = raw(&server);
    s.write_all(&startup_packet()).unwrap();
    s.write_all(&[b'Q', 0x7f, 0xff, 0xff, 0xff]).unwrap();
    s.write_all(b"SELECT 1").unwrap();
    drain(s);

    // 5. A truncated frame, then the client disappears.
    let mut s = raw(&server);
    s.write_all(&startup_packet()).unwrap();
    s.write_all(&[b'Q', 0, 0, 0, 40, b'S', b'E']).unwrap();
    drop(s);

    // 6. A Query whose text is not UTF-8 and not NUL-terminated.
    let mut s = raw(&server);
    s.write_all(&startup_packet()).unwrap();
    s.write_all(&[b'Q', 0, 0, 0, 8, 0xff, 0xfe, 0xfd, 0xfc])
        .unwrap();
    drain(s);

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
