//! Transactions over the wire: blocks, own writes, rollback, the aborted state, snapshot
//! reads, and first-committer-wins conflicts reported as 40001.

use weft_tests::{sqlstate, Server};

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
