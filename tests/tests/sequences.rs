//! Sequences over the wire: SERIAL, BIGSERIAL, IDENTITY, CREATE SEQUENCE, nextval, currval,
//! setval, across sessions, restarts (kill -9) and journals, and TRUNCATE ... RESTART
//! IDENTITY.

use std::collections::HashSet;

use weft_tests::{simple_rows, sqlstate, Server};

async fn one_i64(c: &tokio_postgres::Client, sql: &str) -> i64 {
    c.query_one(sql, &[]).await.unwrap().get::<_, i64>(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sequences_never_hand_out_a_value_twice() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = Server::start(&dir.path().join("data"));
    let c = server.connect().await;
    c.batch_execute(
        "CREATE TABLE items (id serial PRIMARY KEY, name text, \
         n bigint GENERATED ALWAYS AS IDENTITY, m bigserial)",
    )
    .await
    .unwrap();

    let rows = c
        .query(
            "INSERT INTO items (name) VALUES ('a'), ('b') RETURNING id, n, m",
            &[],
        )
        .await
        .unwrap();
    let got: Vec<(i32, i64, i64)> = rows
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect();
    assert_eq!(got, vec![(1, 1, 1), (2, 2, 2)]);
    assert_eq!(one_i64(&c, "SELECT currval('items_id_seq')").await, 2);
    assert_eq!(one_i64(&c, "SELECT lastval()").await, 2);
    // An explicit value is taken as given.
    c.execute("INSERT INTO items (id, name) VALUES (100000, 'x')", &[])
        .await
        .unwrap();

    // currval before nextval in a session is 55000.
    let other = server.connect().await;
    let e = other
        .query_one("SELECT currval('items_id_seq')", &[])
        .await
        .unwrap_err();
    assert_eq!(sqlstate(&e), "55000", "{e}");

    // Many sessions at once, on both journals: every value distinct.
    let mut tasks = Vec::new();
    for t in 0..4 {
        let c = server.connect().await;
        tasks.push(tokio::spawn(async move {
            let mut ids = Vec::new();
            for k in 0..40 {
                let r = c
                    .query_one(
                        "INSERT INTO items (name) VALUES ($1) RETURNING id",
                        &[&format!("t{t}-{k}")],
                    )
                    .await
                    .unwrap();
                ids.push(r.get::<_, i32>(0));
            }
            ids
        }));
    }
    let mut seen: HashSet<i32> = [1, 2, 100000].into_iter().collect();
    for t in tasks {
        for id in t.await.unwrap() {
            assert!(seen.insert(id), "id {id} handed out twice");
        }
    }
    let before = *seen.iter().filter(|&&v| v != 100000).max().unwrap();

    // kill -9: the values reserved before the crash are never handed out again.
    server.kill9();
    server.restart();
    let c = server.connect().await;
    let r = c
        .query_one(
            "INSERT INTO items (name) VALUES ('after') RETURNING id",
            &[],
        )
        .await
        .unwrap();
    let after: i32 = r.get(0);
    assert!(
        after > before,
        "after a crash nextval gave {after}, not above {before}"
    );
    assert!(!seen.contains(&after));

    // CREATE SEQUENCE with options, setval, bounds.
    c.batch_execute("CREATE SEQUENCE s AS integer INCREMENT BY 5 MAXVALUE 30 START WITH 10")
        .await
        .unwrap();
    assert_eq!(one_i64(&c, "SELECT nextval('s')").await, 10);
    assert_eq!(one_i64(&c, "SELECT nextval('public.s')").await, 15);
    assert_eq!(one_i64(&c, "SELECT setval('s', 25)").await, 25);
    assert_eq!(one_i64(&c, "SELECT nextval('s')").await, 30);
    let e = c.query_one("SELECT nextval('s')", &[]).await.unwrap_err();
    assert_eq!(sqlstate(&e), "2200H", "{e}");
    let e = c
        .query_one("SELECT nextval('nope')", &[])
        .await
        .unwrap_err();
    assert_eq!(sqlstate(&e), "42P01", "{e}");
    let e = c.batch_execute("CREATE SEQUENCE s").await.unwrap_err();
    assert_eq!(sqlstate(&e), "42P07", "{e}");
    c.batch_execute("DROP SEQUENCE s").await.unwrap();
    let e = c.query_one("SELECT nextval('s')", &[]).await.unwrap_err();
    assert_eq!(sqlstate(&e), "42P01", "{e}");

    // The catalog knows the sequences and how the columns use them.
    let rows = simple_rows(
        &c,
        "SELECT sequencename, data_type FROM pg_sequences ORDER BY 1",
    )
    .await;
    let names: Vec<String> = rows.iter().map(|r| r[0].clone().unwrap()).collect();
    assert_eq!(names, vec!["items_id_seq", "items_m_seq", "items_n_seq"]);
    let rows = simple_rows(
        &c,
        "SELECT column_name, column_default, is_identity FROM information_schema.columns \
         WHERE table_name = 'items' ORDER BY ordinal_position",
    )
    .await;
    assert_eq!(
        rows[0][1].as_deref(),
        Some("nextval('items_id_seq'::regclass)")
    );
    assert_eq!(rows[2][2].as_deref(), Some("YES"));

    // An owned sequence cannot be dropped alone; TRUNCATE ... RESTART IDENTITY restarts it.
    let e = c
        .batch_execute("DROP SEQUENCE items_id_seq")
        .await
        .unwrap_err();
    assert_eq!(sqlstate(&e), "2BP01", "{e}");
    c.batch_execute("TRUNCATE items RESTART IDENTITY")
        .await
        .unwrap();
    let r = c
        .query_one(
            "INSERT INTO items (name) VALUES ('again') RETURNING id, n",
            &[],
        )
        .await
        .unwrap();
    assert_eq!((r.get::<_, i32>(0), r.get::<_, i64>(1)), (1, 1));

    // DROP TABLE takes its sequences with it.
    c.batch_execute("DROP TABLE items").await.unwrap();
    let e = c
        .query_one("SELECT nextval('items_id_seq')", &[])
        .await
        .unwrap_err();
    assert_eq!(sqlstate(&e), "42P01", "{e}");
}
