//! The OLTP fast paths and the `weft bench oltp` command, over the wire.

use tokio_postgres::Client;
use weft_tests::{simple_rows, sqlstate, weft_bin, Server};

async fn counter(c: &Client, name: &str) -> u64 {
    simple_rows(c, &format!("SHOW weft.{name}")).await[0][0]
        .as_deref()
        .unwrap()
        .parse()
        .unwrap()
}

/// Runs `sql` and returns its outcome: the rows affected, or the SQLSTATE.
async fn outcome(c: &Client, sql: &str) -> Result<u64, String> {
    c.execute(sql, &[]).await.map_err(|e| sqlstate(&e))
}

/// Every point write runs twice, on two identical tables: once as written (the fast path)
/// and once with a condition or clause that only the planned path takes. Row counts,
/// errors and the tables' contents must agree, and the fast path must have been taken.
#[tokio::test]
async fn point_writes_answer_like_the_planner() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("data"));
    let c = server.connect().await;
    for t in ["fa", "sl"] {
        c.batch_execute(&format!(
            "CREATE TABLE {t} (id bigint PRIMARY KEY, i int, s smallint, t text NOT NULL,
                               b boolean, ts timestamp, n bigint)"
        ))
        .await
        .unwrap();
    }
    // (statement with {T}, whether the fast path takes it)
    let cases: &[(&str, bool)] = &[
        (
            "INSERT INTO {T} VALUES (1, 7, 2, 'x', true, NULL, 10)",
            true,
        ),
        (
            "INSERT INTO {T} (id, i, t) VALUES (2, NULL, 'y'), (3, -5, 'z')",
            true,
        ),
        ("INSERT INTO {T} (t, id) VALUES ('w', 6)", true),
        ("INSERT INTO {T} (id, t) VALUES (1, 'dup')", true),
        (
            "INSERT INTO {T} (id, t) VALUES (1, 'dup') ON CONFLICT DO NOTHING",
            true,
        ),
        (
            "INSERT INTO {T} (id, t) VALUES (7, 'new') ON CONFLICT (id) DO NOTHING",
            true,
        ),
        (
            "INSERT INTO {T} (id, i, t) VALUES (4, 2147483648, 'big')",
            false,
        ),
        ("INSERT INTO {T} (id, t) VALUES (5, NULL)", true),
        ("INSERT INTO {T} (id, s, t) VALUES (8, -(3), 'neg')", true),
        ("UPDATE {T} SET i = i + 5, n = n * 2 WHERE id = 1", true),
        ("UPDATE {T} SET i = i + 1 WHERE id = 2", true),
        (
            "UPDATE {T} SET t = 'new', b = false, s = 9 WHERE id = 3",
            true,
        ),
        ("UPDATE {T} SET i = s, s = 1 WHERE {T}.id = 3", true),
        ("UPDATE {T} SET i = 2147483647 + i WHERE id = 1", false),
        ("UPDATE {T} SET t = NULL WHERE id = 1", true),
        ("UPDATE {T} SET i = 1 WHERE id = 99", true),
        ("UPDATE {T} SET i = i - 1 WHERE 1 = id", true),
        ("UPDATE {T} SET ts = CURRENT_TIMESTAMP WHERE id = 2", true),
        ("UPDATE {T} SET t = 'upper' WHERE id = 6", true),
        ("DELETE FROM {T} WHERE id = 7", true),
        ("DELETE FROM {T} WHERE id = 7", true),
    ];
    for (case, fast) in cases {
        let f = case.replace("{T}", "fa");
        let s = if case.starts_with("INSERT") {
            format!("{} RETURNING id", case.replace("{T}", "sl"))
        } else {
            format!("{} AND 1 = 1", case.replace("{T}", "sl"))
        };
        let before = counter(&c, "point_writes").await;
        let fo = outcome(&c, &f).await;
        let taken = counter(&c, "point_writes").await - before;
        let so = outcome(&c, &s).await;
        assert_eq!(
            counter(&c, "point_writes").await - before,
            taken,
            "{s} must take the planned path"
        );
        assert_eq!(fo, so, "{f}");
        // A statement that fails may fail before or after the fast path's checks; one that
        // succeeds must have been answered by the fast path when it is one.
        if fo.is_ok() {
            assert_eq!(taken == 1, *fast, "fast path taken for {f}");
        }
    }
    // Bound parameters, as drivers and pgbench send them.
    let up = c
        .prepare("UPDATE fa SET n = n + $1, i = $2 WHERE id = $3")
        .await
        .unwrap();
    let up_slow = c
        .prepare("UPDATE sl SET n = n + $1, i = $2 WHERE id = $3 AND 1 = 1")
        .await
        .unwrap();
    let ins = c
        .prepare("INSERT INTO fa (id, t, n) VALUES ($1, $2, $3)")
        .await
        .unwrap();
    let ins_slow = c
        .prepare("INSERT INTO sl (id, t, n) VALUES ($1, $2, $3) RETURNING id")
        .await
        .unwrap();
    let before = counter(&c, "point_writes").await;
    for (id, d, i) in [(1i64, 5i64, 70i32), (2, -3, 0), (99, 1, 1)] {
        let f = c.execute(&up, &[&d, &i, &id]).await.unwrap();
        let s = c.execute(&up_slow, &[&d, &i, &id]).await.unwrap();
        assert_eq!(f, s, "update id {id}");
    }
    for (id, t, n) in [(20i64, "p", Some(3i64)), (21, "q", None)] {
        assert_eq!(c.execute(&ins, &[&id, &t, &n]).await.unwrap(), 1);
        assert_eq!(c.execute(&ins_slow, &[&id, &t, &n]).await.unwrap(), 1);
    }
    let e = c
        .execute(&ins, &[&20i64, &"again", &None::<i64>])
        .await
        .unwrap_err();
    assert_eq!(sqlstate(&e), "23505");
    assert_eq!(counter(&c, "point_writes").await - before, 5);
    let cols = "id, i, s, t, b, ts IS NOT NULL, ts > now() - interval '1 minute', n";
    assert_eq!(
        simple_rows(&c, &format!("SELECT {cols} FROM fa ORDER BY id")).await,
        simple_rows(&c, &format!("SELECT {cols} FROM sl ORDER BY id")).await
    );
    // Inside a transaction: own writes are read back and a conflict still aborts.
    let c2 = server.connect().await;
    c.batch_execute(
        "BEGIN; UPDATE fa SET n = 1000 WHERE id = 1; UPDATE fa SET n = n + 1 WHERE id = 1",
    )
    .await
    .unwrap();
    c2.batch_execute("UPDATE fa SET n = 5 WHERE id = 1")
        .await
        .unwrap();
    let e = c.batch_execute("COMMIT").await.unwrap_err();
    assert_eq!(sqlstate(&e), "40001");
    assert_eq!(
        simple_rows(&c, "SELECT n FROM fa WHERE id = 1").await[0][0].as_deref(),
        Some("5")
    );
    c.batch_execute(
        "BEGIN; UPDATE fa SET n = 1000 WHERE id = 1; UPDATE fa SET n = n + 1 WHERE id = 1; COMMIT",
    )
    .await
    .unwrap();
    assert_eq!(
        simple_rows(&c, "SELECT n FROM fa WHERE id = 1").await[0][0].as_deref(),
        Some("1001")
    );
}

/// `weft bench oltp` end to end, small: loads both systems, drives every workload with
/// pgbench (`-M prepared`, retries on 40001), checks the workloads' invariants on both,
/// holds idle connections, and writes its Markdown table.
#[test]
fn bench_oltp_runs_and_writes_its_table() {
    if weft_tests::pg_bin_dir().is_none() && !weft_tests::pg_required() {
        eprintln!("PostgreSQL 15 (and pgbench) is not installed: skipping");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let md = dir.path().join("bench.md");
    std::fs::write(&md, "# Benchmarks\n\nearlier text\n").unwrap();
    let run = || {
        let out = std::process::Command::new(weft_bin())
            .args(["bench", "oltp", "--clients", "1,4", "--seconds", "2"])
            .args([
                "--branches",
                "4",
                "--accounts-per-branch",
                "500",
                "--idle",
                "100",
            ])
            .arg(format!("--markdown={}", md.display()))
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout).to_string();
        assert!(
            out.status.success(),
            "weft bench oltp failed:\n{stdout}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        stdout
    };
    let stdout = run();
    for w in [
        "point-select",
        "range",
        "join",
        "update",
        "insert",
        "tpcb",
        "transfer",
    ] {
        for n in [1, 4] {
            let line = stdout
                .lines()
                .find(|l| l.starts_with(&format!("| {w} | {n} |")))
                .unwrap_or_else(|| panic!("no row for {w} at {n} clients:\n{stdout}"));
            let cells: Vec<&str> = line.split('|').map(str::trim).collect();
            let weft_tps: f64 = cells[3].parse().unwrap();
            let pg_tps: f64 = cells[4].parse().unwrap();
            assert!(weft_tps > 0.0 && pg_tps > 0.0, "{line}");
        }
    }
    let idle = stdout
        .lines()
        .find(|l| l.starts_with("| 100 |"))
        .unwrap_or_else(|| panic!("no idle-connection row:\n{stdout}"));
    let per_conn: f64 = idle
        .split('|')
        .map(str::trim)
        .nth(3)
        .unwrap()
        .parse()
        .unwrap();
    assert!(per_conn > 0.0, "{idle}");
    // The section replaces itself on a second run, and keeps what was there before.
    run();
    let text = std::fs::read_to_string(&md).unwrap();
    assert!(text.starts_with("# Benchmarks\n\nearlier text\n"), "{text}");
    assert_eq!(text.matches("weft bench oltp: begin").count(), 1, "{text}");
    assert_eq!(text.matches("| tpcb | 4 |").count(), 1, "{text}");
    assert!(text.contains("target/release/weft bench oltp"), "{text}");
}
