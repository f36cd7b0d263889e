//! pgbench against weft: its built-in TPC-B-like script (with `--max-tries` retrying the
//! 40001 conflicts that optimistic concurrency gives) in the prepared and extended protocols,
//! and a custom script in the simple protocol, on tables the test creates and loads with
//! COPY in bounded commits. Afterwards the books must balance.

use std::process::Command;

use weft_tests::{pg_bin_dir, pg_required, simple_rows, Server};

fn pgbench(port: u16, args: &[&str]) -> String {
    let bin = pg_bin_dir().expect("pgbench is installed").join("pgbench");
    let out = Command::new(bin)
        .args(["-h", "127.0.0.1", "-p", &port.to_string(), "-U", "postgres"])
        .args(args)
        .arg("postgres")
        .output()
        .expect("run pgbench");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "pgbench {args:?} failed:\n{stdout}\n{stderr}"
    );
    // The report, and the errors of failed attempts (for the assertions' messages).
    format!("{stdout}\n{stderr}")
}

fn field(out: &str, prefix: &str) -> u64 {
    out.lines()
        .find_map(|l| l.trim().strip_prefix(prefix))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no {prefix:?} in:\n{out}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pgbench_builtin_and_custom_scripts() {
    if pg_bin_dir().is_none() {
        assert!(!pg_required(), "pgbench is required (WEFT_REQUIRE_PG=1)");
        eprintln!("skipping: pgbench is not installed");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("data"));
    let c = server.connect().await;
    c.batch_execute(
        "CREATE TABLE pgbench_branches (bid int PRIMARY KEY, bbalance int, filler char(88));
         CREATE TABLE pgbench_tellers (tid int PRIMARY KEY, bid int, tbalance int, filler char(84));
         CREATE TABLE pgbench_accounts (aid int PRIMARY KEY, bid int, abalance int, filler char(84));
         CREATE TABLE pgbench_history (tid int, bid int, aid int, delta int, mtime timestamp, filler char(22));
         INSERT INTO pgbench_branches VALUES (1, 0, NULL);",
    )
    .await
    .unwrap();
    let tellers: String = (1..=10).map(|t| format!("{t}\t1\t0\n")).collect();
    let accounts: String = (1..=100_000).map(|a| format!("{a}\t1\t0\n")).collect();
    for (table, cols, data) in [
        ("pgbench_tellers", "tid, bid, tbalance", tellers),
        ("pgbench_accounts", "aid, bid, abalance", accounts),
    ] {
        let copy = format!("\\copy {table} ({cols}) from stdin");
        let (ok, _, err) = weft_tests::psql(
            server.port,
            &[
                "-v",
                "ON_ERROR_STOP=1",
                "-c",
                "SET weft.copy_commit_rows = 20000",
                "-c",
                &copy,
            ],
            Some(&data),
        );
        assert!(ok, "{err}");
    }
    let n = simple_rows(&c, "SELECT count(*) FROM pgbench_accounts").await;
    assert_eq!(n[0][0].as_deref(), Some("100000"));

    let mut committed = 0;
    for mode in ["prepared", "extended"] {
        let out = pgbench(
            server.port,
            &[
                "-n",
                "-b",
                "tpcb-like",
                "-M",
                mode,
                "-c",
                "3",
                "-j",
                "2",
                "-T",
                "4",
                "--max-tries",
                "200",
            ],
        );
        let processed = field(&out, "number of transactions actually processed:");
        assert!(processed > 0, "{out}");
        assert_eq!(field(&out, "number of failed transactions:"), 0, "{out}");
        committed += processed;
    }
    // A custom script.
    let script = dir.path().join("custom.sql");
    std::fs::write(
        &script,
        "\\set aid random(1, 100000)\n\\set delta random(-5000, 5000)\n\
         BEGIN;\n\
         UPDATE pgbench_accounts SET abalance = abalance + :delta WHERE aid = :aid;\n\
         SELECT abalance FROM pgbench_accounts WHERE aid = :aid;\n\
         INSERT INTO pgbench_history (tid, bid, aid, delta, mtime) VALUES (1, 1, :aid, :delta, CURRENT_TIMESTAMP);\n\
         END;\n",
    )
    .unwrap();
    // The custom script in each protocol mode: simple, extended (unnamed statements) and
    // prepared (named server-side statements).
    let mut custom = 0;
    for mode in ["simple", "extended", "prepared"] {
        let out = pgbench(
            server.port,
            &[
                "-n",
                "-f",
                script.to_str().unwrap(),
                "-M",
                mode,
                "-c",
                "2",
                "-T",
                "3",
                "--max-tries",
                "50",
            ],
        );
        let processed = field(&out, "number of transactions actually processed:");
        assert!(processed > 0, "{mode}: {out}");
        assert_eq!(
            field(&out, "number of failed transactions:"),
            0,
            "{mode}: {out}"
        );
        custom += processed;
    }

    // Every committed transaction left one history row, and its delta in the accounts; the
    // built-in script also moved the branch and teller by the same delta.
    let rows = simple_rows(
        &c,
        "SELECT (SELECT count(*) FROM pgbench_history), \
                (SELECT sum(delta) FROM pgbench_history), \
                (SELECT sum(abalance) FROM pgbench_accounts), \
                (SELECT sum(bbalance) FROM pgbench_branches), \
                (SELECT sum(tbalance) FROM pgbench_tellers)",
    )
    .await;
    let v: Vec<i64> = rows[0]
        .iter()
        .map(|x| x.as_deref().unwrap_or("0").parse().unwrap())
        .collect();
    assert_eq!(
        v[0] as u64,
        committed + custom,
        "history rows vs committed transactions"
    );
    assert_eq!(v[1], v[2], "history deltas vs account balances");
    assert_eq!(v[3], v[4], "branches vs tellers");
}

/// `pgbench -i` as a user runs it: tables, a 100,000-row COPY in one transaction block,
/// `VACUUM ANALYZE`, then `ALTER TABLE ... ADD PRIMARY KEY`. With weft's default limits the
/// COPY is refused with 54000 and a hint naming the flag; with `--txn-rows-max` raised it
/// initializes, and the built-in script runs on what it made.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pgbench_initializes_its_own_tables() {
    if pg_bin_dir().is_none() {
        assert!(!pg_required(), "pgbench is required (WEFT_REQUIRE_PG=1)");
        eprintln!("skipping: pgbench is not installed");
        return;
    }
    let bin = pg_bin_dir().unwrap().join("pgbench");
    let dir = tempfile::tempdir().unwrap();
    {
        let server = Server::start(&dir.path().join("default"));
        let out = Command::new(&bin)
            .args(["-i", "-h", "127.0.0.1", "-p", &server.port.to_string()])
            .args(["-U", "postgres", "postgres"])
            .output()
            .expect("run pgbench -i");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{stderr}");
        assert!(stderr.contains("weft.txn_rows_max"), "{stderr}");
        assert!(stderr.contains("--txn-rows-max"), "{stderr}");
    }
    let server = Server::start_with(&dir.path().join("raised"), &["--txn-rows-max", "200000"]);
    let out = pgbench(server.port, &["-i"]);
    assert!(out.contains("creating primary keys"), "{out}");
    let c = server.connect().await;
    let rows = simple_rows(
        &c,
        "SELECT (SELECT count(*) FROM pgbench_accounts), \
                (SELECT count(*) FROM pgbench_tellers), \
                (SELECT count(*) FROM pgbench_branches), \
                (SELECT count(*) FROM pgbench_history), \
                (SELECT count(*) FROM pg_indexes WHERE indexname LIKE 'pgbench_%_pkey')",
    )
    .await;
    assert_eq!(
        rows[0],
        ["100000", "10", "1", "0", "3"].map(|v| Some(v.to_string())),
        "pgbench -i's tables"
    );
    // A second -i drops and remakes them.
    pgbench(server.port, &["-i", "-q"]);
    let out = pgbench(
        server.port,
        &["-c", "2", "-T", "3", "-M", "prepared", "--max-tries", "200"],
    );
    let processed = field(&out, "number of transactions actually processed:");
    assert!(processed > 0, "{out}");
    assert_eq!(field(&out, "number of failed transactions:"), 0, "{out}");
    let n = simple_rows(&c, "SELECT count(*) FROM pgbench_history").await;
    assert_eq!(n[0][0].as_deref(), Some(processed.to_string().as_str()));
}
