//! Transactions over the wire: blocks, own writes, rollback, the aborted state, snapshot
//! reads, and first-committer-wins conflicts reported as 40001.

use weft_tests::{simple_rows, sqlstate, Server};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blocks_own_writes_and_rollback() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("data"));
    let a = server.connect().await;
    let b = server.connect().await;
    a.batch_execute("CREATE TABLE t (id int PRIMARY KEY, v int)")
        .await
        .unwrap();

    a.batch_execute("BEGIN; INSERT INTO t VALUES (1, 10)")
        .await
        .unwrap();
    // Own writes are visible inside the transaction, invisible outside until COMMIT.
    let n: i64 = a
        .query_one("SELECT count(*) FROM t", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(n, 1);
    let n: i64 = b
        .query_one("SELECT count(*) FROM t", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(n, 0);
    a.batch_execute("UPDATE t SET v = v + 1 WHERE id = 1")
        .await
        .unwrap();
    a.batch_execute("COMMIT").await.unwrap();
    let v: i32 = b
        .query_one("SELECT v FROM t WHERE id = 1", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(
        v, 11,
        "a transaction that starts after COMMIT returned sees it"
    );

    a.batch_execute("BEGIN; DELETE FROM t; INSERT INTO t VALUES (2, 2)")
        .await
        .unwrap();
    a.batch_execute("ROLLBACK").await.unwrap();
    let ids: Vec<i32> = a
        .query("SELECT id FROM t", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(ids, vec![1], "ROLLBACK forgets every write");

    // Snapshot: a transaction keeps reading what it first saw.
    b.batch_execute("BEGIN").await.unwrap();
    let v: i32 = b
        .query_one("SELECT v FROM t WHERE id = 1", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(v, 11);
    a.batch_execute("UPDATE t SET v = 99 WHERE id = 1")
        .await
        .unwrap();
    let v: i32 = b
        .query_one("SELECT v FROM t WHERE id = 1", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(v, 11, "repeatable read inside the block");
    b.batch_execute("COMMIT").await.unwrap();
    let v: i32 = b
        .query_one("SELECT v FROM t WHERE id = 1", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(v, 99);

    // END is COMMIT.
    a.batch_execute("BEGIN; INSERT INTO t VALUES (3, 3); END")
        .await
        .unwrap();
    let n: i64 = b
        .query_one("SELECT count(*) FROM t", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(n, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_error_aborts_the_block_until_rollback() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("data"));
    let a = server.connect().await;
    a.batch_execute("CREATE TABLE t (id int PRIMARY KEY)")
        .await
        .unwrap();
    a.batch_execute("BEGIN; INSERT INTO t VALUES (1)")
        .await
        .unwrap();
    let e = a
        .batch_execute("INSERT INTO t VALUES (1)")
        .await
        .unwrap_err();
    assert_eq!(sqlstate(&e), "23505");
    let e = a.batch_execute("SELECT 1").await.unwrap_err();
    assert_eq!(sqlstate(&e), "25P02");
    let e = a.query("SELECT 1", &[]).await.unwrap_err();
    assert_eq!(sqlstate(&e), "25P02", "extended protocol too");
    // COMMIT of a failed block rolls back.
    let msgs = a.simple_query("COMMIT").await.unwrap();
    assert!(matches!(
        &msgs[0],
        tokio_postgres::SimpleQueryMessage::CommandComplete(_)
    ));
    let n: i64 = a
        .query_one("SELECT count(*) FROM t", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(n, 0, "nothing of the failed block is committed");
    a.batch_execute("BEGIN; SELECT 1/0").await.unwrap_err();
    a.batch_execute("ROLLBACK").await.unwrap();
    a.batch_execute("INSERT INTO t VALUES (5)").await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn first_committer_wins_and_the_loser_gets_40001() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("data"));
    let a = server.connect().await;
    let b = server.connect().await;
    a.batch_execute("CREATE TABLE acct (id int PRIMARY KEY, balance int NOT NULL); INSERT INTO acct VALUES (1, 100), (2, 100)")
        .await
        .unwrap();

    a.batch_execute("BEGIN; UPDATE acct SET balance = balance - 10 WHERE id = 1")
        .await
        .unwrap();
    b.batch_execute("BEGIN; UPDATE acct SET balance = balance - 20 WHERE id = 1")
        .await
        .unwrap();
    a.batch_execute("COMMIT").await.unwrap();
    let e = b.batch_execute("COMMIT").await.unwrap_err();
    assert_eq!(sqlstate(&e), "40001", "{e:?}");
    assert!(e.to_string().contains("OC000") || format!("{e:?}").contains("OC000"));
    // The loser's session is usable and idle; the winner's write stands alone.
    let bal: i32 = b
        .query_one("SELECT balance FROM acct WHERE id = 1", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(bal, 90);

    // Disjoint keys do not conflict.
    a.batch_execute("BEGIN; UPDATE acct SET balance = 0 WHERE id = 1")
        .await
        .unwrap();
    b.batch_execute("BEGIN; UPDATE acct SET balance = 0 WHERE id = 2")
        .await
        .unwrap();
    a.batch_execute("COMMIT").await.unwrap();
    b.batch_execute("COMMIT").await.unwrap();

    // Read-only transactions never abort.
    b.batch_execute("BEGIN").await.unwrap();
    b.query("SELECT * FROM acct", &[]).await.unwrap();
    a.batch_execute("UPDATE acct SET balance = 7")
        .await
        .unwrap();
    b.batch_execute("COMMIT").await.unwrap();

    // Concurrent DDL on a table a transaction writes is a schema conflict (OC001).
    b.batch_execute("BEGIN; INSERT INTO acct VALUES (3, 3)")
        .await
        .unwrap();
    a.batch_execute("DROP TABLE acct").await.unwrap();
    let e = b.batch_execute("COMMIT").await.unwrap_err();
    assert_eq!(sqlstate(&e), "40001");
    assert!(format!("{e:?}").contains("OC001"), "{e:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_increments_lose_no_update() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("data"));
    let setup = server.connect().await;
    setup
        .batch_execute(
            "CREATE TABLE c (id int PRIMARY KEY, n int NOT NULL); INSERT INTO c VALUES (1, 0)",
        )
        .await
        .unwrap();
    let workers = 6;
    let per_worker = 15;
    let mut tasks = Vec::new();
    for _ in 0..workers {
        let c = server.connect().await;
        tasks.push(tokio::spawn(async move {
            let mut done = 0;
            let mut conflicts = 0;
            while done < per_worker {
                match c
                    .batch_execute("BEGIN; UPDATE c SET n = n + 1 WHERE id = 1; COMMIT")
                    .await
                {
                    Ok(()) => done += 1,
                    Err(e) => {
                        assert_eq!(sqlstate(&e), "40001", "{e:?}");
                        conflicts += 1;
                    }
                }
            }
            conflicts
        }));
    }
    let mut conflicts = 0;
    for t in tasks {
        conflicts += t.await.unwrap();
    }
    let n: i32 = setup
        .query_one("SELECT n FROM c WHERE id = 1", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(
        n,
        workers * per_worker,
        "every acknowledged increment is there exactly once"
    );
    eprintln!("{conflicts} conflicts retried");
}

async fn show(c: &tokio_postgres::Client, name: &str) -> String {
    c.query_one(&format!("SHOW {name}"), &[])
        .await
        .unwrap()
        .get(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn isolation_levels_and_access_modes() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("data"));
    let c = server.connect().await;
    c.batch_execute("CREATE TABLE t (id int PRIMARY KEY)")
        .await
        .unwrap();
    assert_eq!(show(&c, "transaction_isolation").await, "repeatable read");
    assert_eq!(
        show(&c, "default_transaction_isolation").await,
        "repeatable read"
    );

    c.batch_execute("BEGIN ISOLATION LEVEL SERIALIZABLE")
        .await
        .unwrap();
    assert_eq!(
        show(&c, "transaction isolation level").await,
        "serializable"
    );
    c.batch_execute("COMMIT").await.unwrap();
    assert_eq!(show(&c, "transaction_isolation").await, "repeatable read");

    // SET TRANSACTION works before the first query only.
    c.batch_execute("BEGIN; SET TRANSACTION ISOLATION LEVEL SERIALIZABLE")
        .await
        .unwrap();
    assert_eq!(show(&c, "transaction_isolation").await, "serializable");
    c.query("SELECT * FROM t", &[]).await.unwrap();
    let e = c
        .batch_execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        .await
        .unwrap_err();
    assert_eq!(sqlstate(&e), "25001", "{e:?}");
    c.batch_execute("ROLLBACK").await.unwrap();

    // Session defaults, in both spellings.
    c.batch_execute("SET default_transaction_isolation = 'serializable'")
        .await
        .unwrap();
    assert_eq!(show(&c, "transaction_isolation").await, "serializable");
    c.batch_execute("SET SESSION CHARACTERISTICS AS TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        .await
        .unwrap();
    assert_eq!(
        show(&c, "default_transaction_isolation").await,
        "repeatable read"
    );
    let e = c
        .batch_execute("SET default_transaction_isolation = 'chaos'")
        .await
        .unwrap_err();
    assert_eq!(sqlstate(&e), "22023", "{e:?}");

    // READ COMMITTED runs as REPEATABLE READ, and says so.
    c.batch_execute("BEGIN ISOLATION LEVEL READ COMMITTED")
        .await
        .unwrap();
    assert_eq!(show(&c, "transaction_isolation").await, "repeatable read");
    c.batch_execute("COMMIT").await.unwrap();
    let out = std::process::Command::new("psql")
        .arg(server.conn_string())
        .args(["-c", "BEGIN ISOLATION LEVEL READ COMMITTED", "-c", "COMMIT"])
        .output()
        .expect("psql");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("NOTICE:") && stderr.contains("REPEATABLE READ"),
        "{stderr}"
    );

    // READ ONLY refuses writes with 25006 and the session goes on.
    c.batch_execute("BEGIN READ ONLY").await.unwrap();
    assert_eq!(show(&c, "transaction_read_only").await, "on");
    let e = c
        .batch_execute("INSERT INTO t VALUES (1)")
        .await
        .unwrap_err();
    assert_eq!(sqlstate(&e), "25006", "{e:?}");
    assert!(e.as_db_error().unwrap().message().contains("INSERT"));
    c.batch_execute("ROLLBACK").await.unwrap();
    c.batch_execute("SET default_transaction_read_only = on")
        .await
        .unwrap();
    let e = c.batch_execute("DELETE FROM t").await.unwrap_err();
    assert_eq!(sqlstate(&e), "25006", "{e:?}");
    c.batch_execute("SET default_transaction_read_only = off; INSERT INTO t VALUES (1)")
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serializable_point_reads_conflict_only_on_the_keys_read() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("data"));
    let a = server.connect().await;
    let b = server.connect().await;
    a.batch_execute(
        "CREATE TABLE kv (k int PRIMARY KEY, v int); \
         INSERT INTO kv VALUES (1, 1), (2, 2), (3, 3)",
    )
    .await
    .unwrap();
    // A reads key 1 and writes key 3; B changes key 2: no conflict, A read no key 2.
    a.batch_execute("BEGIN ISOLATION LEVEL SERIALIZABLE")
        .await
        .unwrap();
    a.query("SELECT v FROM kv WHERE k = 1", &[]).await.unwrap();
    b.batch_execute("UPDATE kv SET v = 20 WHERE k = 2")
        .await
        .unwrap();
    a.batch_execute("UPDATE kv SET v = 30 WHERE k = 3; COMMIT")
        .await
        .unwrap();
    // A reads key 1 (a parameter, extended protocol) and B then changes it: conflict.
    a.batch_execute("BEGIN ISOLATION LEVEL SERIALIZABLE")
        .await
        .unwrap();
    a.query("SELECT v FROM kv WHERE k = $1", &[&1i32])
        .await
        .unwrap();
    b.batch_execute("UPDATE kv SET v = 10 WHERE k = 1")
        .await
        .unwrap();
    a.batch_execute("UPDATE kv SET v = 31 WHERE k = 3")
        .await
        .unwrap();
    let e = a.batch_execute("COMMIT").await.unwrap_err();
    assert_eq!(sqlstate(&e), "40001", "{e:?}");
    // Reading a key that does not exist, then someone inserting it: a phantom, refused.
    a.batch_execute("BEGIN ISOLATION LEVEL SERIALIZABLE")
        .await
        .unwrap();
    assert!(a
        .query("SELECT v FROM kv WHERE k IN (7, 8)", &[])
        .await
        .unwrap()
        .is_empty());
    b.batch_execute("INSERT INTO kv VALUES (8, 8)")
        .await
        .unwrap();
    a.batch_execute("INSERT INTO kv VALUES (9, 9)")
        .await
        .unwrap();
    let e = a.batch_execute("COMMIT").await.unwrap_err();
    assert_eq!(sqlstate(&e), "40001", "{e:?}");
    // ON CONFLICT DO NOTHING skipping a row is a read of it: deleting that row meanwhile
    // invalidates the transaction.
    a.batch_execute(
        "BEGIN ISOLATION LEVEL SERIALIZABLE; INSERT INTO kv VALUES (1, 0) ON CONFLICT DO NOTHING",
    )
    .await
    .unwrap();
    b.batch_execute("DELETE FROM kv WHERE k = 1").await.unwrap();
    a.batch_execute("INSERT INTO kv VALUES (11, 11)")
        .await
        .unwrap();
    let e = a.batch_execute("COMMIT").await.unwrap_err();
    assert_eq!(sqlstate(&e), "40001", "{e:?}");
    // The same at REPEATABLE READ commits (write skew is allowed there).
    a.batch_execute("BEGIN ISOLATION LEVEL REPEATABLE READ")
        .await
        .unwrap();
    a.query("SELECT v FROM kv WHERE k = 7", &[]).await.unwrap();
    b.batch_execute("INSERT INTO kv VALUES (7, 7)")
        .await
        .unwrap();
    a.batch_execute("INSERT INTO kv VALUES (10, 10); COMMIT")
        .await
        .unwrap();
    // EXPLAIN shows the key filter handed to the scan whole (no filter is left above it)
    // and the scan doing a point lookup.
    let plan: Vec<String> = a
        .query("EXPLAIN SELECT v FROM kv WHERE k = 2", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get::<_, String>(1))
        .collect();
    assert!(
        plan.iter()
            .any(|l| l.contains("full_filters") && l.contains("k = Int32(2)")),
        "{plan:#?}"
    );
    assert!(
        plan.iter().any(|l| l.contains("point_lookup keys=1"))
            && !plan.iter().any(|l| l.contains("FilterExec")),
        "{plan:#?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn limits_are_54000_and_the_session_survives() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start_with(
        &dir.path().join("data"),
        &[
            "--txn-rows-max",
            "10",
            "--txn-bytes-max",
            "4096",
            "--txn-duration-max-s",
            "1",
        ],
    );
    let c = server.connect().await;
    c.batch_execute("CREATE TABLE t (id int PRIMARY KEY, s text)")
        .await
        .unwrap();
    let e = c
        .batch_execute(
            "INSERT INTO t VALUES (1,'x'),(2,'x'),(3,'x'),(4,'x'),(5,'x'),(6,'x'),(7,'x'),\
             (8,'x'),(9,'x'),(10,'x'),(11,'x')",
        )
        .await
        .unwrap_err();
    assert_eq!(sqlstate(&e), "54000", "{e:?}");
    assert!(e.as_db_error().unwrap().message().contains("txn_rows_max"));
    let hint = e
        .as_db_error()
        .unwrap()
        .hint()
        .unwrap_or_default()
        .to_string();
    assert!(hint.contains("--txn-rows-max"), "{hint}");
    // The limits the message names are shown as settings, and only the server's start
    // changes them.
    for (name, value) in [
        ("weft.txn_rows_max", "10"),
        ("weft.txn_bytes_max", "4096"),
        ("weft.txn_duration_max", "1s"),
    ] {
        let shown = simple_rows(&c, &format!("SHOW {name}")).await;
        assert_eq!(shown, vec![vec![Some(value.to_string())]], "{name}");
        let e = c
            .batch_execute(&format!("SET {name} = 100"))
            .await
            .unwrap_err();
        assert_eq!(sqlstate(&e), "55P02", "{e:?}");
    }
    // Across statements of one block, too.
    c.batch_execute("BEGIN").await.unwrap();
    for i in 0..10 {
        c.execute("INSERT INTO t VALUES ($1, 'x')", &[&i])
            .await
            .unwrap();
    }
    let e = c
        .execute("INSERT INTO t VALUES (10, 'x')", &[])
        .await
        .unwrap_err();
    assert_eq!(sqlstate(&e), "54000", "{e:?}");
    c.batch_execute("ROLLBACK").await.unwrap();
    let big = "y".repeat(5000);
    let e = c
        .execute("INSERT INTO t VALUES (1, $1)", &[&big])
        .await
        .unwrap_err();
    assert_eq!(sqlstate(&e), "54000", "{e:?}");
    assert!(e.as_db_error().unwrap().message().contains("txn_bytes_max"));
    c.batch_execute("BEGIN; SELECT 1").await.unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(1200)).await;
    let e = c
        .batch_execute("INSERT INTO t VALUES (1, 'late')")
        .await
        .unwrap_err();
    assert_eq!(sqlstate(&e), "54000", "{e:?}");
    assert!(e
        .as_db_error()
        .unwrap()
        .message()
        .contains("txn_duration_max"));
    c.batch_execute("ROLLBACK").await.unwrap();
    // Nothing of the refused transactions is there, and the session works.
    c.batch_execute("INSERT INTO t VALUES (1, 'ok')")
        .await
        .unwrap();
    let n: i64 = c
        .query_one("SELECT count(*) FROM t", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(n, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_commit_is_visible_to_every_later_transaction_across_journals() {
    let dir = tempfile::tempdir().unwrap();
    // Four journals and a clock error bound: consecutive commits go to different journals,
    // and read timestamps are in the future of every acknowledged commit.
    let server = Server::start_with(
        &dir.path().join("data"),
        &["--journals", "4", "--clock-error-us", "2000"],
    );
    let w = server.connect().await;
    let r = server.connect().await;
    w.batch_execute("CREATE TABLE lin (id int PRIMARY KEY)")
        .await
        .unwrap();
    let insert = w.prepare("INSERT INTO lin VALUES ($1)").await.unwrap();
    let read = r
        .prepare("SELECT count(*) FROM lin WHERE id = $1")
        .await
        .unwrap();
    for i in 0..200i32 {
        w.execute(&insert, &[&i]).await.unwrap();
        let n: i64 = r.query_one(&read, &[&i]).await.unwrap().get(0);
        assert_eq!(
            n, 1,
            "commit {i} was acknowledged but a later read missed it"
        );
    }
}

/// A read that starts after a COMMIT returned sees it, on any connection, and does not
/// wait for commits still being written: every journal batch takes 1.5 s to write here,
/// and reads answer while one is in flight.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_see_acknowledged_commits_without_waiting_for_those_in_flight() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start_with(
        &dir.path().join("data"),
        &["--inject-faults", "journal_put_latency_ms=1500"],
    );
    let w = server.connect().await;
    w.batch_execute("CREATE TABLE seen (id int PRIMARY KEY)")
        .await
        .unwrap();
    w.batch_execute("INSERT INTO seen VALUES (1)")
        .await
        .unwrap();
    // Another connection's commit is in flight for 1.5 s from here.
    let slow = server.connect().await;
    let in_flight =
        tokio::spawn(async move { slow.batch_execute("INSERT INTO seen VALUES (2)").await });
    let watcher = server.connect().await;
    loop {
        let n: String = watcher
            .query_one("SHOW weft.commits_in_flight", &[])
            .await
            .unwrap()
            .get(0);
        if n != "0" {
            break;
        }
        assert!(!in_flight.is_finished(), "the commit never went in flight");
        tokio::task::yield_now().await;
    }
    // Reads on fresh connections see the acknowledged row, not the one in flight, and
    // return while it still is.
    for _ in 0..3 {
        let r = server.connect().await;
        let ids: Vec<i32> = r
            .query("SELECT id FROM seen ORDER BY id", &[])
            .await
            .unwrap()
            .iter()
            .map(|row| row.get(0))
            .collect();
        assert_eq!(ids, vec![1]);
    }
    assert!(
        !in_flight.is_finished(),
        "the reads waited for the commit in flight"
    );
    in_flight.await.unwrap().unwrap();
    // Once it returned, every read sees it.
    let ids: Vec<i32> = w
        .query("SELECT id FROM seen ORDER BY id", &[])
        .await
        .unwrap()
        .iter()
        .map(|row| row.get(0))
        .collect();
    assert_eq!(ids, vec![1, 2]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn savepoints_undo_part_of_a_block() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("data"));
    let c = server.connect().await;
    c.batch_execute("CREATE TABLE sp (id int PRIMARY KEY, v text)")
        .await
        .unwrap();
    c.batch_execute(
        "BEGIN; INSERT INTO sp VALUES (1, 'a'); SAVEPOINT one; INSERT INTO sp VALUES (2, 'b'); \
         SAVEPOINT two; UPDATE sp SET v = 'changed' WHERE id = 1; ROLLBACK TO SAVEPOINT one; \
         INSERT INTO sp VALUES (3, 'c'); RELEASE one; COMMIT",
    )
    .await
    .unwrap();
    let rows: Vec<(i32, String)> = c
        .query("SELECT id, v FROM sp ORDER BY id", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    assert_eq!(rows, vec![(1, "a".into()), (3, "c".into())]);

    // An error inside a block: ROLLBACK TO SAVEPOINT resumes it.
    c.batch_execute("BEGIN; SAVEPOINT s").await.unwrap();
    let e = c
        .batch_execute("INSERT INTO sp VALUES (1, 'dup')")
        .await
        .unwrap_err();
    assert_eq!(sqlstate(&e), "23505");
    let e = c.batch_execute("SELECT 1").await.unwrap_err();
    assert_eq!(sqlstate(&e), "25P02");
    c.batch_execute("ROLLBACK TO s; INSERT INTO sp VALUES (4, 'd'); COMMIT")
        .await
        .unwrap();
    let n: i64 = c
        .query_one("SELECT count(*) FROM sp", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(n, 3);

    let e = c.batch_execute("SAVEPOINT outside").await.unwrap_err();
    assert_eq!(sqlstate(&e), "25P01");
    let e = c
        .batch_execute("BEGIN; RELEASE SAVEPOINT nope")
        .await
        .unwrap_err();
    assert_eq!(sqlstate(&e), "3B001");
    c.batch_execute("ROLLBACK").await.unwrap();
}
