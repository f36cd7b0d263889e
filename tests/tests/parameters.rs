//! Parameter types as PostgreSQL describes them, to a client that binds by them.
//!
//! tokio-postgres (like asyncpg and pgjdbc's binary mode) sends each parameter in the
//! binary format of the type the server described at Parse, and refuses a Rust value of
//! another type: a parameter PostgreSQL types `integer` (`$1::int4`, `id = ANY($1)` on an
//! integer column, `CAST($1 AS bigint)`) must be described so by weft too, and so must a
//! result column (`SELECT 1` is an integer, read as i32). The same statements run on weft
//! and on PostgreSQL 15, and their transcripts must be equal.

use weft_tests::{pg_required, PgServer, Server};

/// Prepares and runs each statement on `conn`, and writes what the client was told and
/// what it read back.
async fn transcript(conn: &str) -> Vec<String> {
    let (c, connection) = tokio_postgres::connect(conn, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(connection);
    c.batch_execute(
        "DROP TABLE IF EXISTS pt;
         CREATE TABLE pt (id int PRIMARY KEY, big bigint, name varchar(20), score float8);
         INSERT INTO pt VALUES (1, 10, 'a', 1.5), (2, 20, 'b', 2.5), (3, 30, 'c', 3.5)",
    )
    .await
    .unwrap();
    let mut out = Vec::new();
    for q in [
        "SELECT $1::int4",
        "SELECT CAST($1 AS bigint), $2::int2, $3::float8, $4::bool, $5::text",
        "SELECT $1::int4[]",
        "SELECT id FROM pt WHERE id = ANY($1) ORDER BY id",
        "SELECT id FROM pt WHERE big > $1::int8 AND name <> $2::varchar ORDER BY id",
        "INSERT INTO pt VALUES ($1::int4, $2::int8, $3::varchar, $4::float8)",
        "UPDATE pt SET score = $1::float8 WHERE id = $2::int4",
        // Integer literals are integers where they fit, bigints beyond.
        "SELECT 1",
        "SELECT 42 AS answer, 10000000000 AS big, -7 AS neg",
        "SELECT x + 1 FROM (SELECT 1 AS x) s",
        "SELECT 1 UNION SELECT 10000000000",
        "SELECT id, 1 AS one FROM pt WHERE id = 1",
        // With parameters too: the plan is described as it will run.
        "SELECT $1::int4 + 1",
        "SELECT $1::int2 + $2::int2, $3::int8 * 2",
        "SELECT id + $1::int4 FROM pt WHERE id = 1",
        // An array of small integer literals is an integer[].
        "SELECT ARRAY[1, 2], ARRAY[1, 10000000000], ARRAY[id, 1] FROM pt WHERE id = 1",
    ] {
        let st = c.prepare(q).await.unwrap();
        let params: Vec<String> = st.params().iter().map(|t| t.name().to_string()).collect();
        let cols: Vec<String> = st
            .columns()
            .iter()
            .map(|c| c.type_().name().to_string())
            .collect();
        out.push(format!("{q}: parameters {params:?} columns {cols:?}"));
    }
    let one: i32 = c
        .query_one("SELECT $1::int4", &[&41i32])
        .await
        .unwrap()
        .get(0);
    out.push(format!("$1::int4 = {one}"));
    let row = c
        .query_one(
            "SELECT CAST($1 AS bigint), $2::int2, $3::float8, $4::bool, $5::text",
            &[&(1i64 << 40), &7i16, &0.25f64, &true, &"x"],
        )
        .await
        .unwrap();
    out.push(format!(
        "casts = {} {} {} {} {}",
        row.get::<_, i64>(0),
        row.get::<_, i16>(1),
        row.get::<_, f64>(2),
        row.get::<_, bool>(3),
        row.get::<_, String>(4)
    ));
    let arr: Vec<i32> = c
        .query_one("SELECT $1::int4[]", &[&vec![3i32, 1, 2]])
        .await
        .unwrap()
        .get(0);
    out.push(format!("$1::int4[] = {arr:?}"));
    let ids: Vec<i32> = c
        .query(
            "SELECT id FROM pt WHERE id = ANY($1) ORDER BY id",
            &[&vec![3i32, 1]],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    out.push(format!("ANY = {ids:?}"));
    let n = c
        .execute(
            "INSERT INTO pt VALUES ($1::int4, $2::int8, $3::varchar, $4::float8)",
            &[&4i32, &40i64, &"d", &4.5f64],
        )
        .await
        .unwrap();
    let m = c
        .execute(
            "UPDATE pt SET score = $1::float8 WHERE id = $2::int4",
            &[&9.25f64, &4i32],
        )
        .await
        .unwrap();
    let ids: Vec<i32> = c
        .query(
            "SELECT id FROM pt WHERE big > $1::int8 AND name <> $2::varchar ORDER BY id",
            &[&15i64, &"c"],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    out.push(format!("inserted {n}, updated {m}, filtered {ids:?}"));
    let score: f64 = c
        .query_one("SELECT score FROM pt WHERE id = 4", &[])
        .await
        .unwrap()
        .get(0);
    out.push(format!("score = {score}"));
    let answer: i32 = c
        .query_one("SELECT 41 + 1 AS answer", &[])
        .await
        .unwrap()
        .get(0);
    out.push(format!("41 + 1 = {answer}"));
    let next: i32 = c
        .query_one("SELECT $1::int4 + 1", &[&41i32])
        .await
        .unwrap()
        .get(0);
    out.push(format!("$1::int4 + 1 = {next}"));
    let arr: Vec<i32> = c.query_one("SELECT ARRAY[1, 2]", &[]).await.unwrap().get(0);
    out.push(format!("ARRAY[1, 2] = {arr:?}"));
    let overflow = c
        .query_one(
            "WITH x AS (SELECT 1 AS n) SELECT n + 2147483647 FROM x",
            &[],
        )
        .await
        .unwrap_err();
    out.push(format!(
        "integer overflow: {:?}",
        overflow.code().map(|c| c.code().to_string())
    ));
    c.batch_execute("DROP TABLE pt").await.unwrap();
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn casts_and_any_give_parameters_their_types() {
    let dir = tempfile::tempdir().unwrap();
    let weft = Server::start(&dir.path().join("data"));
    let on_weft = transcript(&weft.conn_string()).await;
    assert!(on_weft.iter().any(|l| l == "$1::int4 = 41"), "{on_weft:#?}");
    match PgServer::start() {
        Some(pg) => assert_eq!(on_weft, transcript(&pg.conn_string()).await),
        None => assert!(
            !pg_required(),
            "PostgreSQL 15 is required (WEFT_REQUIRE_PG)"
        ),
    }
}
