//! COPY over the wire: psql's \copy in text and CSV, both ways, checked against what
//! PostgreSQL 15 stores and prints for the same data; tokio-postgres's copy_in/copy_out
//! (the extended protocol); errors that keep the session and lose nothing; loads larger
//! than a transaction (54000, or bounded commits when asked for).

use futures::{SinkExt, TryStreamExt};
use weft_tests::{simple_rows, sqlstate, PgServer, Server};

fn psql(port: u16, args: &[&str], stdin: Option<&str>) -> (bool, String, String) {
    weft_tests::psql(port, &[&["-v", "ON_ERROR_STOP=1"], args].concat(), stdin)
}

const CSV_IN: &str = "id,name,score,at,note\n\
1,ann,1.5,2024-01-02 03:04:05+00,plain\n\
2,\"bob, jr\",,2024-02-03 04:05:06+00,\"say \"\"hi\"\"\"\n\
3,\"multi\nline\",3,,\"\"\n\
4,tab\there,-2.25,2024-03-04 05:06:07.5+00,\\N\n";

const TEXT_IN: &str =
    "10\tback\\\\slash\t0.5\t\\N\tx\n11\tnew\\nline\t\\N\t2024-05-06 07:08:09+00\t\n\\.\n";

/// psql's `\copy` of `data` into `table`, committing every 1,000 rows.
fn bounded_copy(port: u16, table: &str, data: &str) -> (bool, String, String) {
    let copy = format!("\\copy {table} from stdin");
    psql(
        port,
        &["-c", "SET weft.copy_commit_rows = 1000", "-c", &copy],
        Some(data),
    )
}

/// Loads the same rows with \copy into a server and prints them back in every format.
fn load_and_dump(port: u16, dir: &std::path::Path) -> String {
    let (ok, _, err) = psql(
        port,
        &[
            "-c",
            "CREATE TABLE c (id int PRIMARY KEY, name text, score double precision, \
                 at timestamptz, note text)",
        ],
        None,
    );
    assert!(ok, "{err}");
    let csv = dir.join("in.csv");
    std::fs::write(&csv, CSV_IN).unwrap();
    let (ok, out, err) = psql(
        port,
        &[
            "-c",
            &format!(
                // Boolean options spelled as PostgreSQL also takes them (1, off).
                "\\copy c from '{}' with (format csv, header 1, freeze off)",
                csv.display()
            ),
        ],
        None,
    );
    assert!(ok, "{err}");
    assert_eq!(out, "COPY 4\n");
    let (ok, out, err) = psql(port, &["-c", "\\copy c from stdin"], Some(TEXT_IN));
    assert!(ok, "{err}");
    assert_eq!(out, "COPY 2\n");
    let mut all = String::new();
    for (n, cmd) in [
        "\\copy c to stdout",
        "\\copy (SELECT id, name, note FROM c ORDER BY id DESC) to stdout with (format csv, header)",
        "\\copy c (id, score) to stdout csv",
        "\\copy (SELECT id, score FROM c WHERE score IS NULL ORDER BY id) to stdout with (format csv, null 'NULL')",
    ]
    .iter()
    .enumerate()
    {
        let (ok, out, err) = psql(port, &["-c", cmd], None);
        assert!(ok, "{cmd}: {err}");
        // The table's own order is the key's in weft, arbitrary in PostgreSQL: sort.
        let mut lines: Vec<&str> = out.lines().collect();
        if n != 1 {
            lines.sort();
        }
        all.push_str(&lines.join("\n"));
        all.push_str("\n--\n");
    }
    let (ok, out, err) = psql(port, &["-A", "-c", "SELECT * FROM c ORDER BY id"], None);
    assert!(ok, "{err}");
    all.push_str(&out);
    all
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn psql_copy_matches_postgresql() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("data"));
    let weft = load_and_dump(server.port, dir.path());
    for expected in [
        "2,\"bob, jr\",\"say \"\"hi\"\"\"",
        "3,\"multi\nline\",\"\"",
        "10\tback\\\\slash\t0.5\t\\N\tx",
        "11,NULL",
        // In CSV, \N is text; in text format it is NULL.
        "4\ttab\\there\t-2.25\t2024-03-04 05:06:07.5+00\t\\\\N",
    ] {
        assert!(weft.contains(expected), "missing {expected:?} in:\n{weft}");
    }
    let Some(pg) = PgServer::start() else { return };
    let pg_dir = tempfile::tempdir().unwrap();
    let postgres = load_and_dump(pg.port, pg_dir.path());
    assert_eq!(
        weft, postgres,
        "weft (left) and PostgreSQL 15 (right) differ"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn copy_errors_and_large_loads() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start_with(&dir.path().join("data"), &["--txn-rows-max", "2000"]);
    let c = server.connect().await;
    c.batch_execute("CREATE TABLE t (id bigserial PRIMARY KEY, v int NOT NULL, s text)")
        .await
        .unwrap();

    // tokio-postgres: COPY through the extended protocol, both ways.
    let sink = c.copy_in("COPY t (v, s) FROM STDIN").await.unwrap();
    futures::pin_mut!(sink);
    sink.send(bytes::Bytes::from_static(b"1\tone\n2\ttwo\n3\t\\N\n"))
        .await
        .unwrap();
    assert_eq!(sink.finish().await.unwrap(), 3);
    let out: Vec<bytes::Bytes> = c
        .copy_out("COPY (SELECT id, v, s FROM t ORDER BY id) TO STDOUT WITH (FORMAT csv)")
        .await
        .unwrap()
        .try_collect()
        .await
        .unwrap();
    let text: String = out
        .iter()
        .map(|b| String::from_utf8_lossy(b).into_owned())
        .collect();
    assert_eq!(text, "1,1,one\n2,2,two\n3,3,\n");

    // A bad value: 22P02 for the whole COPY, nothing of it kept, the session goes on.
    let sink = c.copy_in("COPY t (v, s) FROM STDIN").await.unwrap();
    futures::pin_mut!(sink);
    sink.send(bytes::Bytes::from_static(b"4\tfour\nfive\tfive\n"))
        .await
        .unwrap();
    let e = sink.finish().await.unwrap_err();
    assert_eq!(sqlstate(&e), "22P02", "{e}");
    // A missing column: 22P04 naming the line.
    let sink = c.copy_in("COPY t (v, s) FROM STDIN").await.unwrap();
    futures::pin_mut!(sink);
    sink.send(bytes::Bytes::from_static(b"4\tfour\n5\n"))
        .await
        .unwrap();
    let e = sink.finish().await.unwrap_err();
    assert_eq!(sqlstate(&e), "22P04", "{e}");
    let db = e.as_db_error().unwrap();
    assert_eq!(db.detail(), Some("COPY t, line 2"), "{e}");
    // NOT NULL holds.
    let (ok, _, err) = psql(
        server.port,
        &["-c", "\\copy t (v, s) from stdin"],
        Some("\\N\tx\n"),
    );
    assert!(!ok && err.contains("null value in column \"v\""), "{err}");
    let count = |rows: Vec<Vec<Option<String>>>| rows[0][0].clone().unwrap();
    assert_eq!(count(simple_rows(&c, "SELECT count(*) FROM t").await), "3");

    // Inside a transaction block, a COPY rolls back with it.
    c.batch_execute("BEGIN").await.unwrap();
    let sink = c.copy_in("COPY t (v) FROM STDIN").await.unwrap();
    futures::pin_mut!(sink);
    sink.send(bytes::Bytes::from_static(b"7\n8\n"))
        .await
        .unwrap();
    assert_eq!(sink.finish().await.unwrap(), 2);
    c.batch_execute("ROLLBACK").await.unwrap();
    assert_eq!(count(simple_rows(&c, "SELECT count(*) FROM t").await), "3");

    // Larger than a transaction: 54000 and nothing kept...
    let big: String = (0..5000).map(|i| format!("{i}\tbulk\n")).collect();
    let (ok, _, err) = psql(
        server.port,
        &["-c", "\\copy t (v, s) from stdin"],
        Some(&big),
    );
    assert!(
        !ok && err.contains("54000") || err.contains("more than 2000 rows"),
        "{err}"
    );
    assert_eq!(count(simple_rows(&c, "SELECT count(*) FROM t").await), "3");
    // ...unless the session asks for bounded commits.
    let (ok, out, err) = psql(
        server.port,
        &[
            "-c",
            "SET weft.copy_commit_rows = 1000",
            "-c",
            "\\copy t (v, s) from stdin",
        ],
        Some(&big),
    );
    assert!(ok, "{err}");
    assert!(out.contains("COPY 5000"), "{out}");
    assert_eq!(
        count(simple_rows(&c, "SELECT count(*) FROM t").await),
        "5003"
    );

    // Bounded commits on the direct path (every column given): each commit starts while
    // the next records are read, and a key committed by an earlier commit is still seen
    // as taken (23505), with the commits before the failing one kept: a prefix of at
    // least 1,000 rows (commits fall where a thousand rows have been written since the
    // last one, so where depends on how the client split the data).
    c.batch_execute("CREATE TABLE k (k int PRIMARY KEY, v text)")
        .await
        .unwrap();
    let with_dup: String = (0..3000)
        .map(|i| format!("{}\tv{i}\n", if i == 2500 { 10 } else { i }))
        .collect();
    let (ok, _, err) = bounded_copy(server.port, "k", &with_dup);
    assert!(!ok && err.contains("Key (k)=(10) already exists"), "{err}");
    let kept = simple_rows(&c, "SELECT count(*), max(k) FROM k").await;
    let n: i64 = kept[0][0].as_deref().unwrap().parse().unwrap();
    let max: i64 = kept[0][1].as_deref().unwrap().parse().unwrap();
    assert!((1000..=2500).contains(&n) && max == n - 1, "{kept:?}");
    // A key taken by the commit just before, possibly still in flight when the rows that
    // follow are checked: still 23505, and still a prefix kept.
    c.batch_execute("CREATE TABLE k2 (k int PRIMARY KEY, v text)")
        .await
        .unwrap();
    let back: String = (0..6000)
        .map(|i| format!("{}\tv{i}\n", if i == 4321 { 4321 - 900 } else { i }))
        .collect();
    let (ok, _, err) = bounded_copy(server.port, "k2", &back);
    assert!(
        !ok && err.contains("Key (k)=(3421) already exists"),
        "{err}"
    );
    let kept = simple_rows(&c, "SELECT count(*), max(k) FROM k2").await;
    let n2: i64 = kept[0][0].as_deref().unwrap().parse().unwrap();
    let max2: i64 = kept[0][1].as_deref().unwrap().parse().unwrap();
    assert!((1000..=4321).contains(&n2) && max2 == n2 - 1, "{kept:?}");

    let clean: String = (3000..7500).map(|i| format!("{i}\tv{i}\n")).collect();
    let (ok, out, err) = bounded_copy(server.port, "k", &clean);
    assert!(ok && out.contains("COPY 4500"), "{out} {err}");
    assert_eq!(
        simple_rows(&c, "SELECT count(*), max(k) FROM k").await[0],
        vec![Some((n + 4500).to_string()), Some("7499".to_string())]
    );

    // COPY to a server-side file is not something weft does.
    let e = c.batch_execute("COPY t TO '/tmp/x'").await.unwrap_err();
    assert_eq!(sqlstate(&e), "0A000", "{e}");
    // Binary format neither.
    let e = c
        .batch_execute("COPY t TO STDOUT (FORMAT binary)")
        .await
        .unwrap_err();
    assert_eq!(sqlstate(&e), "0A000", "{e}");
}
