//! TLS: the embedded default offers it with a self-signed certificate; `--tls-cert` and
//! `--tls-key` serve a given one (checked by a client that verifies it); `--no-tls` refuses
//! it. psql (libpq) is the client.

use std::process::Command;

use weft_tests::Server;

fn psql(conn: &str, sql: &str) -> (bool, String, String) {
    let out = Command::new("psql")
        .args(["-X", "-v", "ON_ERROR_STOP=1", conn, "-c", sql])
        .env("PGCONNECT_TIMEOUT", "10")
        .output()
        .expect("psql");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn tls_by_default_with_given_certificates_and_off() {
    let dir = tempfile::tempdir().unwrap();

    // The default: a self-signed certificate, so sslmode=require works.
    let server = Server::start(&dir.path().join("a"));
    let base = format!(
        "host=127.0.0.1 port={} user=postgres dbname=postgres",
        server.port
    );
    let (ok, out, err) = psql(&format!("{base} sslmode=require"), "\\conninfo");
    assert!(ok, "{err}");
    assert!(out.contains("SSL connection (protocol: TLSv1."), "{out}");
    let (ok, out, err) = psql(
        &format!("{base} sslmode=require"),
        "SELECT 41 + 1 AS answer",
    );
    assert!(ok && out.contains("42"), "{out}{err}");
    // A client that does not ask for TLS still gets in (loopback).
    let (ok, out, err) = psql(&format!("{base} sslmode=disable"), "\\conninfo");
    assert!(ok && !out.contains("SSL connection"), "{out}{err}");
    // The self-signed certificate is not trusted by a verifying client.
    let (ok, _, _) = psql(
        &format!("{base} sslmode=verify-ca sslrootcert=system"),
        "SELECT 1",
    );
    assert!(!ok, "a self-signed certificate must not verify");
    drop(server);

    // A given certificate: a client that verifies it against its CA gets in.
    let ca = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    let cert = dir.path().join("server.crt");
    let key = dir.path().join("server.key");
    std::fs::write(&cert, ca.cert.pem()).unwrap();
    std::fs::write(&key, ca.signing_key.serialize_pem()).unwrap();
    let server = Server::start_with(
        &dir.path().join("b"),
        &[
            "--tls-cert",
            cert.to_str().unwrap(),
            "--tls-key",
            key.to_str().unwrap(),
        ],
    );
    let verified = format!(
        "host=localhost port={} user=postgres dbname=postgres sslmode=verify-full sslrootcert={}",
        server.port,
        cert.display()
    );
    let (ok, out, err) = psql(&verified, "SELECT 'secure' AS s");
    assert!(ok && out.contains("secure"), "{out}{err}");
    drop(server);

    // --no-tls: sslmode=require cannot connect; plain connections can.
    let server = Server::start_with(&dir.path().join("c"), &["--no-tls"]);
    let base = format!(
        "host=127.0.0.1 port={} user=postgres dbname=postgres",
        server.port
    );
    let (ok, _, err) = psql(&format!("{base} sslmode=require"), "SELECT 1");
    assert!(!ok && err.contains("SSL"), "{err}");
    let (ok, _, err) = psql(&format!("{base} sslmode=disable"), "SELECT 1");
    assert!(ok, "{err}");
}

/// `--require-tls`: a client that does not start TLS is refused (FATAL 28000), loopback
/// included; one that does gets in, with a password too.
#[test]
fn require_tls_refuses_plaintext() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start_with(
        &dir.path().join("a"),
        &["--require-tls", "--user", "alice:secret"],
    );
    let base = format!(
        "host=127.0.0.1 port={} user=postgres dbname=postgres",
        server.port
    );
    let (ok, out, err) = psql(&format!("{base} sslmode=disable"), "SELECT 1");
    assert!(!ok, "{out}");
    assert!(err.contains("connection requires TLS"), "{err}");
    let (ok, out, err) = psql(&format!("{base} sslmode=require"), "\\conninfo");
    assert!(ok && out.contains("SSL connection"), "{out}{err}");
    // libpq's default (prefer) starts TLS when offered.
    let (ok, out, err) = psql(&base, "SELECT 40 + 2");
    assert!(ok && out.contains("42"), "{out}{err}");
    let alice = format!(
        "host=127.0.0.1 port={} user=alice password=secret dbname=postgres sslmode=require",
        server.port
    );
    let (ok, out, err) = psql(&alice, "SELECT current_user");
    assert!(ok && out.contains("alice"), "{out}{err}");
}
