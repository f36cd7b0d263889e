//! CREATE DATABASE and DROP DATABASE, on weft and on PostgreSQL 15 in the same run: a
//! connection's dbname selects a database whose tables, sequences and views are its own;
//! the errors of a test runner's create-migrate-drop cycle (42P04, 25001, 55006, 3D000)
//! are PostgreSQL's; DROP waits for the database's other sessions to end, or ends them
//! WITH (FORCE). weft alone: databases outlive a restart (kill -9).

use tokio_postgres::{Client, NoTls, SimpleQueryMessage};
use weft_tests::{PgServer, Server};

fn in_database(conn: &str, db: &str) -> String {
    conn.replace("dbname=postgres", &format!("dbname={db}"))
}

async fn connect(conn: &str) -> Result<Client, String> {
    match tokio_postgres::connect(conn, NoTls).await {
        Ok((client, c)) => {
            tokio::spawn(async move {
                let _ = c.await;
            });
            Ok(client)
        }
        Err(e) => Err(e.code().map(|c| c.code().to_string()).unwrap_or_default()),
    }
}

/// The rows of a query as text, or its SQLSTATE.
async fn rows(c: &Client, sql: &str) -> Result<Vec<Vec<String>>, String> {
    match c.simple_query(sql).await {
        Ok(msgs) => Ok(msgs
            .into_iter()
            .filter_map(|m| match m {
                SimpleQueryMessage::Row(r) => Some(
                    (0..r.len())
                        .map(|i| r.get(i).unwrap_or("NULL").to_string())
                        .collect(),
                ),
                _ => None,
            })
            .collect()),
        Err(e) => Err(e
            .code()
            .map(|c| c.code().to_string())
            .unwrap_or_else(|| e.to_string())),
    }
}

fn one(v: &str) -> Result<Vec<Vec<String>>, String> {
    Ok(vec![vec![v.to_string()]])
}

/// Runs the scenario; every assertion holds on both systems. Returns what differs in
/// wording only (none expected).
async fn scenario(conn: &str) {
    let admin = connect(conn).await.unwrap();
    for name in ["test_app", "\"Other\""] {
        admin
            .batch_execute(&format!("DROP DATABASE IF EXISTS {name}"))
            .await
            .unwrap();
    }
    // A query string of several statements is one implicit block.
    assert_eq!(
        rows(&admin, "SELECT 1; CREATE DATABASE in_string").await,
        Err("25001".into())
    );
    admin
        .batch_execute(
            "CREATE TABLE shared_name (a int PRIMARY KEY); INSERT INTO shared_name VALUES (1)",
        )
        .await
        .unwrap();
    // A test runner's create; a second create of the name is 42P04, in a block 25001.
    assert_eq!(rows(&admin, "CREATE DATABASE test_app").await, Ok(vec![]));
    assert_eq!(
        rows(&admin, "CREATE DATABASE test_app").await,
        Err("42P04".into())
    );
    assert_eq!(
        rows(&admin, "BEGIN; CREATE DATABASE in_block").await,
        Err("25001".into())
    );
    admin.batch_execute("ROLLBACK").await.unwrap();
    assert_eq!(
        rows(
            &admin,
            "CREATE DATABASE \"Other\" WITH TEMPLATE = template0 ENCODING = 'UTF8' LOCALE = 'C'"
        )
        .await,
        Ok(vec![])
    );
    assert_eq!(
        rows(
            &admin,
            "SELECT datname FROM pg_database WHERE datname IN ('test_app', 'Other', 'postgres') ORDER BY datname"
        )
        .await,
        Ok(vec![
            vec!["Other".to_string()],
            vec!["postgres".to_string()],
            vec!["test_app".to_string()]
        ])
    );

    // The new database is empty, and what it makes is its own.
    let app = connect(&in_database(conn, "test_app")).await.unwrap();
    assert_eq!(
        rows(&app, "SELECT current_database()").await,
        one("test_app")
    );
    assert_eq!(
        rows(&app, "SELECT * FROM shared_name").await,
        Err("42P01".into())
    );
    app.batch_execute(
        "CREATE TABLE shared_name (b text PRIMARY KEY, n serial);
         INSERT INTO shared_name (b) VALUES ('x'), ('y');
         CREATE SEQUENCE s START 100;
         CREATE VIEW v AS SELECT b FROM shared_name WHERE n > 1;
         CREATE INDEX shared_name_n ON shared_name (n);",
    )
    .await
    .unwrap();
    assert_eq!(rows(&app, "SELECT nextval('s')").await, one("100"));
    assert_eq!(rows(&app, "SELECT b FROM v").await, one("y"));
    assert_eq!(
        rows(
            &app,
            "SELECT count(*) FROM pg_class WHERE relname IN ('shared_name', 's', 'v', 'shared_name_n')"
        )
        .await,
        one("4")
    );
    // The default database saw none of it.
    assert_eq!(rows(&admin, "SELECT a FROM shared_name").await, one("1"));
    assert_eq!(rows(&admin, "SELECT * FROM v").await, Err("42P01".into()));
    assert_eq!(
        rows(&admin, "SELECT nextval('s')").await,
        Err("42P01".into())
    );
    // A quoted name is kept as written.
    let other = connect(&in_database(conn, "Other")).await.unwrap();
    assert_eq!(
        rows(&other, "SELECT current_database()").await,
        one("Other")
    );
    drop(other);

    // DROP: not the open database, not in a block; it waits for other sessions to end.
    assert_eq!(
        rows(&app, "DROP DATABASE test_app").await,
        Err("55006".into())
    );
    assert_eq!(
        rows(&admin, "BEGIN; DROP DATABASE test_app").await,
        Err("25001".into())
    );
    admin.batch_execute("ROLLBACK").await.unwrap();
    let dropping = {
        let conn = conn.to_string();
        tokio::spawn(async move {
            let c = connect(&conn).await.unwrap();
            rows(&c, "DROP DATABASE test_app").await
        })
    };
    // The session leaves while the DROP waits for it.
    drop(app);
    assert_eq!(dropping.await.unwrap(), Ok(vec![]));
    assert_eq!(
        connect(&in_database(conn, "test_app")).await.err(),
        Some("3D000".into())
    );
    assert_eq!(
        rows(&admin, "DROP DATABASE test_app").await,
        Err("3D000".into())
    );
    assert_eq!(
        rows(&admin, "DROP DATABASE IF EXISTS test_app").await,
        Ok(vec![])
    );

    // A new database of a dropped one's name starts empty.
    admin
        .batch_execute("CREATE DATABASE test_app")
        .await
        .unwrap();
    let app = connect(&in_database(conn, "test_app")).await.unwrap();
    assert_eq!(
        rows(&app, "SELECT * FROM shared_name").await,
        Err("42P01".into())
    );
    // WITH (FORCE) ends the sessions still connected.
    assert_eq!(
        rows(&admin, "DROP DATABASE test_app WITH (FORCE)").await,
        Ok(vec![])
    );
    assert!(rows(&app, "SELECT 1").await.is_err());
    admin
        .batch_execute("DROP DATABASE \"Other\"")
        .await
        .unwrap();
    admin.batch_execute("DROP TABLE shared_name").await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn databases_behave_as_on_postgresql() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path());
    scenario(&server.conn_string()).await;
    if let Some(pg) = PgServer::start() {
        scenario(&pg.conn_string()).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn databases_outlive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = Server::start(dir.path());
    {
        let admin = server.connect().await;
        admin.batch_execute("CREATE DATABASE kept").await.unwrap();
        let kept = connect(&in_database(&server.conn_string(), "kept"))
            .await
            .unwrap();
        kept.batch_execute("CREATE TABLE t (a int PRIMARY KEY); INSERT INTO t VALUES (7)")
            .await
            .unwrap();
    }
    server.restart();
    let kept = connect(&in_database(&server.conn_string(), "kept"))
        .await
        .unwrap();
    assert_eq!(rows(&kept, "SELECT a FROM t").await, one("7"));
    let admin = server.connect().await;
    assert_eq!(rows(&admin, "SELECT a FROM t").await, Err("42P01".into()));
}
