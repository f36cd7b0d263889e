//! SQL over the wire with tokio-postgres: DDL, every supported type, DML with RETURNING and
//! ON CONFLICT, queries, errors with their SQLSTATEs, simple and extended protocol.
#![allow(clippy::disallowed_methods)] // test harness deadlines are real time

use tokio_postgres::types::Type;
use tokio_postgres::SimpleQueryMessage;
use weft_tests::{sqlstate, Server};

fn rows_of(msgs: &[SimpleQueryMessage]) -> Vec<Vec<Option<String>>> {
    msgs.iter()
        .filter_map(|m| match m {
            SimpleQueryMessage::Row(r) => {
                Some((0..r.len()).map(|i| r.get(i).map(str::to_string)).collect())
            }
            _ => None,
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ddl_dml_and_queries() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("data"));
    let c = server.connect().await;

    c.batch_execute(
        "CREATE TABLE accounts (id bigint PRIMARY KEY, owner text NOT NULL, balance numeric(12,2) DEFAULT 0);
         CREATE TABLE IF NOT EXISTS accounts (id int);
         CREATE TABLE orders (account bigint, n int, amount double precision, PRIMARY KEY (account, n));",
    )
    .await
    .unwrap();

    // Extended protocol with parameters.
    let n = c
        .execute(
            "INSERT INTO accounts (id, owner) VALUES ($1, $2), ($3, $4)",
            &[&1i64, &"ann", &2i64, &"bob"],
        )
        .await
        .unwrap();
    assert_eq!(n, 2);
    let row = c
        .query_one(
            "SELECT owner, balance::text FROM accounts WHERE id = $1",
            &[&1i64],
        )
        .await
        .unwrap();
    assert_eq!(row.get::<_, String>(0), "ann");
    assert_eq!(row.get::<_, String>(1), "0.00", "DEFAULT fills the column");

    // INSERT ... SELECT, UPDATE with RETURNING, DELETE.
    c.execute("INSERT INTO orders SELECT id, 1, 10.5 FROM accounts", &[])
        .await
        .unwrap();
    c.execute("INSERT INTO orders VALUES (1, 2, 4.5), (2, 2, 1)", &[])
        .await
        .unwrap();
    let updated = c
        .query("UPDATE accounts SET balance = balance + 5 WHERE owner = $1 RETURNING id, balance::text AS b", &[&"bob"])
        .await
        .unwrap();
    assert_eq!(updated.len(), 1);
    assert_eq!(updated[0].get::<_, i64>("id"), 2);
    assert_eq!(updated[0].get::<_, String>("b"), "5.00");

    // Joins, aggregates, GROUP BY, ORDER BY, LIMIT/OFFSET, subqueries.
    let rows = c
        .query(
            "SELECT a.owner, count(*) AS n, sum(o.amount) AS total
             FROM accounts a JOIN orders o ON o.account = a.id
             GROUP BY a.owner ORDER BY a.owner",
            &[],
        )
        .await
        .unwrap();
    let got: Vec<(String, i64, f64)> = rows
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect();
    assert_eq!(
        got,
        vec![("ann".to_string(), 2, 15.0), ("bob".to_string(), 2, 11.5)]
    );
    let rows = c
        .query("SELECT id FROM accounts WHERE id IN (SELECT account FROM orders WHERE amount > 10) ORDER BY id DESC LIMIT 1 OFFSET 1", &[])
        .await
        .unwrap();
    assert_eq!(
        rows.iter().map(|r| r.get::<_, i64>(0)).collect::<Vec<_>>(),
        vec![1]
    );

    let deleted = c
        .execute("DELETE FROM orders WHERE n = 2", &[])
        .await
        .unwrap();
    assert_eq!(deleted, 2);
    let left: i64 = c
        .query_one("SELECT count(*) FROM orders", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(left, 2);

    // Changing a primary key moves the row.
    c.execute("UPDATE orders SET n = 9 WHERE account = 1", &[])
        .await
        .unwrap();
    let ns: Vec<i32> = c
        .query("SELECT n FROM orders ORDER BY account", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(ns, vec![9, 1]);

    // DROP TABLE, then the name is free again.
    c.batch_execute(
        "DROP TABLE orders; DROP TABLE IF EXISTS orders; CREATE TABLE orders (x int PRIMARY KEY)",
    )
    .await
    .unwrap();
    let n: i64 = c
        .query_one("SELECT count(*) FROM orders", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(n, 0, "a re-created table starts empty");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upserts() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("data"));
    let c = server.connect().await;
    c.batch_execute("CREATE TABLE kv (k text PRIMARY KEY, v int NOT NULL)")
        .await
        .unwrap();
    c.execute("INSERT INTO kv VALUES ('a', 1), ('b', 2)", &[])
        .await
        .unwrap();
    let n = c
        .execute(
            "INSERT INTO kv VALUES ('a', 10), ('c', 3) ON CONFLICT DO NOTHING",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(n, 1, "only the new key is inserted");
    let rows = c
        .query(
            "INSERT INTO kv VALUES ('a', 5), ('d', 4) ON CONFLICT (k) DO UPDATE SET v = kv.v + excluded.v RETURNING k, v",
            &[],
        )
        .await
        .unwrap();
    let mut got: Vec<(String, i32)> = rows.iter().map(|r| (r.get(0), r.get(1))).collect();
    got.sort();
    assert_eq!(got, vec![("a".into(), 6), ("d".into(), 4)]);
    let all: Vec<(String, i32)> = c
        .query("SELECT k, v FROM kv ORDER BY k", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    assert_eq!(
        all,
        vec![
            ("a".into(), 6),
            ("b".into(), 2),
            ("c".into(), 3),
            ("d".into(), 4)
        ]
    );
    // DO UPDATE ... WHERE false leaves the row alone.
    c.execute("INSERT INTO kv VALUES ('b', 100) ON CONFLICT (k) DO UPDATE SET v = excluded.v WHERE kv.v > 50", &[])
        .await
        .unwrap();
    let v: i32 = c
        .query_one("SELECT v FROM kv WHERE k = 'b'", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(v, 2);
    // The same key twice in one upsert is PostgreSQL's cardinality violation.
    let e = c
        .execute(
            "INSERT INTO kv VALUES ('a', 1), ('a', 2) ON CONFLICT (k) DO UPDATE SET v = excluded.v",
            &[],
        )
        .await
        .unwrap_err();
    assert_eq!(sqlstate(&e), "21000");
    // A conflict target that is not the primary key.
    let e = c
        .execute(
            "INSERT INTO kv VALUES ('a', 1) ON CONFLICT (v) DO NOTHING",
            &[],
        )
        .await
        .unwrap_err();
    assert_eq!(sqlstate(&e), "42P10");
    // DELETE with an alias and RETURNING, prepared (extended protocol).
    let rows = c
        .query("DELETE FROM kv AS x WHERE x.k = $1 RETURNING x.v", &[&"a"])
        .await
        .unwrap();
    assert_eq!(
        rows.iter().map(|r| r.get::<_, i32>(0)).collect::<Vec<_>>(),
        vec![6]
    );
    let n: i64 = c
        .query_one("SELECT count(*) FROM kv", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(n, 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_type_round_trips_in_text_and_binary() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("data"));
    let c = server.connect().await;
    c.batch_execute(
        "CREATE TABLE ty (id int PRIMARY KEY, s smallint, i integer, b bigint, r real, d double precision,
           n numeric(10,2), t text, vc varchar(5), ch char(3), bo boolean, by bytea, dt date,
           ts timestamp, tz timestamptz, u uuid, j json, jb jsonb)",
    )
    .await
    .unwrap();
    c.batch_execute(
        "INSERT INTO ty VALUES (1, -2, 3, 4000000000, 1.25, -2.5, 12.34, 'txt', 'abc', 'x', true, NULL,
           '2024-01-02', '2024-01-02 03:04:05.5', '2024-01-02 03:04:05+02',
           'A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11', '{\"a\": 1}', '[1, 2]')",
    )
    .await
    .unwrap();
    // Binary results (extended protocol).
    let r = c.query_one("SELECT * FROM ty", &[]).await.unwrap();
    assert_eq!(r.columns()[14].type_(), &Type::TIMESTAMPTZ);
    assert_eq!(r.columns()[15].type_(), &Type::UUID);
    assert_eq!(r.columns()[16].type_(), &Type::JSON);
    assert_eq!(r.columns()[17].type_(), &Type::JSONB);
    assert_eq!(r.columns()[8].type_(), &Type::VARCHAR);
    assert_eq!(r.columns()[9].type_(), &Type::BPCHAR);
    assert_eq!(r.get::<_, i16>(1), -2);
    assert_eq!(r.get::<_, i32>(2), 3);
    assert_eq!(r.get::<_, i64>(3), 4_000_000_000);
    assert_eq!(r.get::<_, f32>(4), 1.25);
    assert_eq!(r.get::<_, f64>(5), -2.5);
    assert_eq!(r.get::<_, String>(7), "txt");
    assert_eq!(r.get::<_, String>(8), "abc");
    assert_eq!(r.get::<_, String>(9), "x  ", "char(n) pads with spaces");
    assert!(r.get::<_, bool>(10));
    assert_eq!(r.get::<_, Option<Vec<u8>>>(11), None);
    // Text results (simple protocol) print what PostgreSQL prints.
    let msgs = c
        .simple_query("SELECT n, d, dt, ts, tz, u, j, jb, bo FROM ty")
        .await
        .unwrap();
    let row = &rows_of(&msgs)[0];
    let expect = [
        "12.34",
        "-2.5",
        "2024-01-02",
        "2024-01-02 03:04:05.5",
        "2024-01-02 01:04:05+00",
        "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11",
        "{\"a\": 1}",
        "[1, 2]",
        "t",
    ];
    let got: Vec<String> = row.iter().map(|v| v.clone().unwrap()).collect();
    assert_eq!(got, expect);
    // Parameters bound in binary.
    c.execute(
        "INSERT INTO ty (id, by, d, t, bo) VALUES ($1, $2, $3, $4, $5)",
        &[&2i32, &vec![0u8, 1, 255], &0.5f64, &"p", &false],
    )
    .await
    .unwrap();
    let r = c
        .query_one("SELECT by, d, t, bo FROM ty WHERE id = $1", &[&2i32])
        .await
        .unwrap();
    assert_eq!(r.get::<_, Vec<u8>>(0), vec![0u8, 1, 255]);
    // bytea input syntax in SQL text, hex and escape formats.
    c.batch_execute("INSERT INTO ty (id, by) VALUES (3, '\\xdeadBEEF'), (4, 'a\\000b')")
        .await
        .unwrap();
    c.batch_execute("UPDATE ty SET by = '\\x00ff' WHERE id = 2")
        .await
        .unwrap();
    let got: Vec<Vec<u8>> = c
        .query("SELECT by FROM ty WHERE id >= 2 ORDER BY id", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(
        got,
        vec![
            vec![0u8, 255],
            vec![0xde, 0xad, 0xbe, 0xef],
            vec![b'a', 0, b'b']
        ]
    );
    let msgs = c
        .simple_query("SELECT by FROM ty WHERE id = 3")
        .await
        .unwrap();
    assert_eq!(rows_of(&msgs)[0][0].as_deref(), Some("\\xdeadbeef"));
    assert_eq!(r.get::<_, f64>(1), 0.5);
    assert!(!r.get::<_, bool>(3));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_have_sqlstates_and_sessions_survive() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("data"));
    let c = server.connect().await;
    c.batch_execute("CREATE TABLE e (id int PRIMARY KEY, name text NOT NULL, v int, s varchar(3))")
        .await
        .unwrap();
    c.execute("INSERT INTO e VALUES (1, 'a', 1, 'x')", &[])
        .await
        .unwrap();
    let cases: &[(&str, &str)] = &[
        ("INSERT INTO e VALUES (1, 'dup', 0, 'x')", "23505"),
        ("INSERT INTO e (id, name) VALUES (2, NULL)", "23502"),
        ("INSERT INTO e (id) VALUES (3)", "23502"),
        ("SELECT * FROM missing", "42P01"),
        ("SELECT nope FROM e", "42703"),
        ("SELEC 1", "42601"),
        ("INSERT INTO e VALUES ('abc', 'x')", "22P02"),
        ("SELECT 1 / 0", "22012"),
        ("SELECT v / 0 FROM e", "22012"),
        ("INSERT INTO e VALUES (4, 'x', 1, 'toolong')", "22001"),
        ("CREATE TABLE e (id int)", "42P07"),
        ("DROP TABLE missing", "42P01"),
        ("CREATE INDEX ON e ((v + 1))", "0A000"),
        ("SAVEPOINT s", "25P01"),
    ];
    for (sql, code) in cases {
        let e = c.batch_execute(sql).await.unwrap_err();
        assert_eq!(sqlstate(&e), *code, "{sql}: {e:?}");
        // The session is still usable after every error.
        let n: i64 = c
            .query_one("SELECT count(*) FROM e", &[])
            .await
            .unwrap()
            .get(0);
        assert_eq!(n, 1, "after {sql}");
    }
    // A boolean assigned to an integer column is PostgreSQL's 42804, for INSERT and UPDATE.
    let e = c
        .batch_execute("INSERT INTO e VALUES (5, 'x', true)")
        .await
        .unwrap_err();
    assert_eq!(sqlstate(&e), "42804", "{e:?}");
    let e = c.batch_execute("UPDATE e SET v = false").await.unwrap_err();
    assert_eq!(sqlstate(&e), "42804", "{e:?}");
    let n: i64 = c
        .query_one("SELECT count(*) FROM e", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(n, 1);
    // An explicit cast is the user's choice and is allowed, as in PostgreSQL.
    c.batch_execute("INSERT INTO e VALUES (6, 'y', true::int)")
        .await
        .unwrap();
    let v: i32 = c
        .query_one("SELECT v FROM e WHERE id = 6", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(v, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn multi_statement_queries_are_one_implicit_transaction() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("data"));
    let c = server.connect().await;
    // DDL and DML in one query string; the table exists for the statements after it.
    c.batch_execute(
        "CREATE TABLE m (id int PRIMARY KEY); INSERT INTO m VALUES (1); INSERT INTO m VALUES (2)",
    )
    .await
    .unwrap();
    // A failure rolls back the whole query string, as in PostgreSQL.
    let e = c
        .batch_execute("INSERT INTO m VALUES (3); INSERT INTO m VALUES (1)")
        .await
        .unwrap_err();
    assert_eq!(sqlstate(&e), "23505");
    let ids: Vec<i32> = c
        .query("SELECT id FROM m ORDER BY id", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(
        ids,
        vec![1, 2],
        "row 3 must not survive the failed query string"
    );
    let e = c
        .batch_execute("CREATE TABLE m2 (id int PRIMARY KEY); SELECT 1/0")
        .await
        .unwrap_err();
    assert_eq!(sqlstate(&e), "22012");
    let e = c.batch_execute("SELECT * FROM m2").await.unwrap_err();
    assert_eq!(
        sqlstate(&e),
        "42P01",
        "DDL in a failed query string is rolled back too"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn truncate_is_transactional_and_conflicts_with_writers() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = Server::start(&dir.path().join("data"));
    let c = server.connect().await;
    c.batch_execute(
        "CREATE TABLE t (id int PRIMARY KEY, v text); CREATE TABLE u (v text);
         INSERT INTO t VALUES (1, 'a'), (2, 'b'); INSERT INTO u VALUES ('x'), ('y')",
    )
    .await
    .unwrap();
    let n = |rows: Vec<tokio_postgres::Row>| rows[0].get::<_, i64>(0);

    // Rolled back: the rows stay.
    c.batch_execute("BEGIN; TRUNCATE t; ROLLBACK")
        .await
        .unwrap();
    assert_eq!(n(c.query("SELECT count(*) FROM t", &[]).await.unwrap()), 2);

    // Inside a transaction: empty at once, refillable, and the whole thing commits.
    c.batch_execute("BEGIN").await.unwrap();
    c.batch_execute("TRUNCATE TABLE t, u").await.unwrap();
    assert_eq!(n(c.query("SELECT count(*) FROM t", &[]).await.unwrap()), 0);
    c.execute("INSERT INTO t VALUES (1, 'new')", &[])
        .await
        .unwrap();
    c.batch_execute("COMMIT").await.unwrap();
    let rows = c.query("SELECT id, v FROM t", &[]).await.unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].get::<_, String>(1), "new");
    assert_eq!(n(c.query("SELECT count(*) FROM u", &[]).await.unwrap()), 0);

    // A writer that started before the TRUNCATE committed loses (40001).
    let w = server.connect().await;
    w.batch_execute("BEGIN; INSERT INTO t VALUES (5, 'late')")
        .await
        .unwrap();
    c.batch_execute("TRUNCATE t").await.unwrap();
    let err = w.batch_execute("COMMIT").await.unwrap_err();
    assert_eq!(sqlstate(&err), "40001", "{err:?}");

    let err = c.batch_execute("TRUNCATE nosuch").await.unwrap_err();
    assert_eq!(sqlstate(&err), "42P01");
    // RESTART IDENTITY on a table without sequences truncates it (tests/sequences.rs
    // covers the restart itself).
    c.batch_execute("TRUNCATE t RESTART IDENTITY")
        .await
        .unwrap();

    // It survives a crash.
    c.execute("INSERT INTO t VALUES (7, 'kept')", &[])
        .await
        .unwrap();
    server.restart();
    let c = server.connect().await;
    let ids: Vec<i32> = c
        .query("SELECT id FROM t ORDER BY id", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(ids, vec![7]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_request_cancels_the_running_statement_with_57014() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("data"));
    let c = server.connect().await;
    let token = c.cancel_token();
    let slow = "SELECT count(*) FROM generate_series(1, 2000000000)";
    let started = std::time::Instant::now();
    let canceller = tokio::spawn(async move {
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        token.cancel_query(tokio_postgres::NoTls).await
    });
    let err = c.query(slow, &[]).await.unwrap_err();
    canceller.await.unwrap().unwrap();
    assert_eq!(sqlstate(&err), "57014", "{err:?}");
    assert!(
        err.as_db_error()
            .unwrap()
            .message()
            .contains("user request"),
        "{err:?}"
    );
    assert!(started.elapsed() < std::time::Duration::from_secs(20));
    // The session goes on, and a cancel with a wrong key or for no running statement is
    // ignored.
    assert_eq!(c.query("SELECT 1", &[]).await.unwrap().len(), 1);
    c.cancel_token()
        .cancel_query(tokio_postgres::NoTls)
        .await
        .unwrap();
    assert_eq!(c.query("SELECT 2", &[]).await.unwrap().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn statement_timeout_cancels_with_57014() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("data"));
    let c = server.connect().await;
    let slow = "SELECT count(*) FROM generate_series(1, 2000000000)";
    c.batch_execute("SET statement_timeout = 100")
        .await
        .unwrap();
    let shown: String = c
        .query_one("SHOW statement_timeout", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(shown, "100ms");
    let started = std::time::Instant::now();
    let err = c.query(slow, &[]).await.unwrap_err();
    assert_eq!(sqlstate(&err), "57014", "{err:?}");
    assert!(started.elapsed() < std::time::Duration::from_secs(20));
    // The session goes on.
    assert_eq!(c.query("SELECT 1", &[]).await.unwrap().len(), 1);
    // In a transaction block the timeout fails the block, as in PostgreSQL.
    c.batch_execute("BEGIN").await.unwrap();
    assert_eq!(sqlstate(&c.query(slow, &[]).await.unwrap_err()), "57014");
    assert_eq!(
        sqlstate(&c.query("SELECT 1", &[]).await.unwrap_err()),
        "25P02"
    );
    c.batch_execute("ROLLBACK").await.unwrap();
    // Units, and bad values.
    c.batch_execute("SET statement_timeout = '2min'")
        .await
        .unwrap();
    let shown: String = c
        .query_one("SHOW statement_timeout", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(shown, "2min");
    let err = c
        .batch_execute("SET statement_timeout = 'soon'")
        .await
        .unwrap_err();
    assert_eq!(sqlstate(&err), "22023");
    c.batch_execute("SET statement_timeout = 0").await.unwrap();
    let n: i64 = c
        .query_one("SELECT count(*) FROM generate_series(1, 1000)", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(n, 1000);
}

/// Where weft's views differ from PostgreSQL's (which are updatable and follow renames by
/// oid): a write to a view, and a rename under one, answer 0A000 rather than change what
/// the view means; the view keeps answering.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn views_refuse_what_would_change_their_meaning() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("data"));
    let c = server.connect().await;
    c.batch_execute(
        "CREATE TABLE items (id int PRIMARY KEY, name text, qty int);
         INSERT INTO items VALUES (1, 'a', 5), (2, 'b', 0);
         CREATE VIEW stocked AS SELECT id, name FROM items WHERE qty > 0;",
    )
    .await
    .unwrap();
    for sql in [
        "INSERT INTO stocked VALUES (3, 'c')",
        "UPDATE stocked SET name = 'z'",
        "DELETE FROM stocked",
        "ALTER TABLE items RENAME TO goods",
        "ALTER TABLE items RENAME COLUMN name TO title",
        "ALTER TABLE items DROP COLUMN qty",
        "CREATE MATERIALIZED VIEW m AS SELECT 1",
    ] {
        let e = c.batch_execute(sql).await.expect_err(sql);
        assert_eq!(sqlstate(&e), "0A000", "{sql}: {e:?}");
    }
    // Changes that keep the names are allowed, and the view still reads the table.
    c.batch_execute(
        "ALTER TABLE items ADD COLUMN note text; UPDATE items SET qty = 1 WHERE id = 2",
    )
    .await
    .unwrap();
    let rows = rows_of(
        &c.simple_query("SELECT id, name FROM stocked ORDER BY id")
            .await
            .unwrap(),
    );
    assert_eq!(
        rows,
        vec![
            vec![Some("1".into()), Some("a".into())],
            vec![Some("2".into()), Some("b".into())]
        ]
    );
    // Without the view, the rename goes through.
    c.batch_execute("DROP VIEW stocked; ALTER TABLE items RENAME TO goods")
        .await
        .unwrap();
}

/// The built-in schemas cannot be dropped: 0A000 (PostgreSQL lets a superuser drop
/// `public`); other schema statements are compared with PostgreSQL's in
/// tests/slt/weft/schemas.slt.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn built_in_schemas_are_not_dropped() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("data"));
    let c = server.connect().await;
    for sql in [
        "DROP SCHEMA public",
        "DROP SCHEMA IF EXISTS public CASCADE",
        "DROP SCHEMA information_schema",
    ] {
        let e = c.batch_execute(sql).await.expect_err(sql);
        assert_eq!(sqlstate(&e), "0A000", "{sql}: {e:?}");
    }
    // Nothing was lost.
    let n: i64 = c
        .query_one(
            "SELECT count(*) FROM pg_namespace WHERE nspname IN ('public', 'information_schema')",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(n, 2);
}
