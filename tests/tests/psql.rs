//! psql, the PostgreSQL command-line client, against weft: a short session as a new user
//! would type it, with the output checked.

use std::process::Command;

use weft_tests::Server;

fn psql(server: &Server, args: &[&str]) -> (bool, String, String) {
    let out = Command::new("psql")
        .args([
            "-X",
            "-h",
            "127.0.0.1",
            "-p",
            &server.port.to_string(),
            "-U",
            "postgres",
            "postgres",
        ])
        .args(args)
        .env("PGCONNECT_TIMEOUT", "10")
        .output()
        .expect("psql must be installed (tests/run installs postgresql-client)");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn a_psql_session() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("data"));
    let (ok, out, err) = psql(
        &server,
        &[
            "-v",
            "ON_ERROR_STOP=1",
            "-c",
            "CREATE TABLE notes (id int PRIMARY KEY, body text NOT NULL, score double precision)",
            "-c",
            "INSERT INTO notes VALUES (1, 'hello', 1.5), (2, 'world', 3)",
            "-c",
            "SELECT id, body, score FROM notes ORDER BY id",
        ],
    );
    assert!(ok, "psql failed: {err}");
    let expected = "CREATE TABLE\nINSERT 0 2\n id | body  | score \n----+-------+-------\n  1 | hello |   1.5\n  2 | world |     3\n(2 rows)\n\n";
    assert_eq!(out, expected);

    // Unaligned output of aggregates, with PostgreSQL's column names.
    let (ok, out, err) = psql(
        &server,
        &[
            "-A",
            "-c",
            "SELECT count(*), sum(score), max(body) FROM notes",
        ],
    );
    assert!(ok, "{err}");
    assert_eq!(out, "count|sum|max\n2|4.5|world\n(1 row)\n");

    // An error is reported with its message and psql's exit status says so.
    let (ok, _out, err) = psql(
        &server,
        &[
            "-v",
            "ON_ERROR_STOP=1",
            "-c",
            "INSERT INTO notes VALUES (1, 'again', 0)",
        ],
    );
    assert!(!ok);
    assert!(
        err.contains("duplicate key value violates unique constraint \"notes_pkey\""),
        "{err}"
    );
    assert!(err.contains("Key (id)=(1) already exists."), "{err}");

    // A transaction across several commands in one psql script.
    let (ok, out, err) = psql(
        &server,
        &[
            "-v",
            "ON_ERROR_STOP=1",
            "-q",
            "-A",
            "-t",
            "-c",
            "BEGIN; UPDATE notes SET score = score * 2; COMMIT; SELECT sum(score) FROM notes",
        ],
    );
    assert!(ok, "{err}");
    assert_eq!(out.trim(), "9");
}
