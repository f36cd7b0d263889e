//! The sqllogictest suite (`tests/slt/**/*.test` and `*.slt`): every file runs against a fresh
//! weft and, in the same run, against PostgreSQL 15 (a fresh database per file), so that the
//! expectations themselves are proven right. Records run with the label `postgresql`.
//!
//! A file's records all run even after a failure; the test fails listing every failing
//! record (up to a limit per file). `WEFT_SLT=select1` runs only the files whose path contains
//! the given text.

use std::path::{Path, PathBuf};
use std::time::Duration;

use sqllogictest::{AsyncDB, DBOutput, DefaultColumnType, Record, Runner};
use tokio_postgres::{Client, SimpleQueryMessage};
use weft_tests::{PgServer, Server};

/// One connection, speaking the simple query protocol and printing values as psql's
/// unaligned output would, with sqllogictest's conventions for NULL and the empty string.
struct Conn {
    client: Client,
}

#[derive(Debug, thiserror::Error)]
#[error("{}", describe(.0))]
struct DbError(#[from] tokio_postgres::Error);

/// The server's message and SQLSTATE, not just tokio-postgres's "db error".
fn describe(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => format!("{} ({})", db.message(), db.code().code()),
        None => e.to_string(),
    }
}

#[async_trait::async_trait]
impl AsyncDB for Conn {
    type Error = DbError;
    type ColumnType = DefaultColumnType;

    async fn run(&mut self, sql: &str) -> Result<DBOutput<DefaultColumnType>, DbError> {
        let messages = self.client.simple_query(sql).await?;
        let mut rows = Vec::new();
        let mut columns = None;
        let mut count = 0;
        for m in messages {
            match m {
                SimpleQueryMessage::RowDescription(cols) => columns = Some(cols.len()),
                SimpleQueryMessage::Row(r) => {
                    columns = Some(r.len());
                    rows.push(
                        (0..r.len())
                            .map(|i| match r.get(i) {
                                None => "NULL".to_string(),
                                Some("") => "(empty)".to_string(),
                                Some(v) => v.to_string(),
                            })
                            .collect(),
                    );
                }
                SimpleQueryMessage::CommandComplete(n) => count = n,
                _ => {}
            }
        }
        Ok(match columns {
            Some(n) => DBOutput::Rows {
                types: vec![DefaultColumnType::Any; n],
                rows,
            },
            None => DBOutput::StatementComplete(count),
        })
    }

    async fn shutdown(&mut self) {}

    fn engine_name(&self) -> &str {
        "postgres"
    }

    async fn sleep(dur: Duration) {
        tokio::time::sleep(dur).await
    }

    fn error_sql_state(err: &DbError) -> Option<String> {
        err.0.code().map(|c| c.code().to_string())
    }
}

fn slt_files() -> Vec<PathBuf> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        let mut entries: Vec<_> = std::fs::read_dir(dir)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .map(|e| e.unwrap().path())
            .collect();
        entries.sort();
        for p in entries {
            if p.is_dir() {
                walk(&p, out);
            } else if matches!(p.extension().and_then(|e| e.to_str()), Some("slt" | "test")) {
                out.push(p);
            }
        }
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("slt");
    let mut files = Vec::new();
    walk(&root, &mut files);
    assert!(files.len() >= 6, "tests/slt has too few files: {files:?}");
    let filter = std::env::var("WEFT_SLT").unwrap_or_default();
    files.retain(|f| f.to_string_lossy().contains(&filter));
    files
}

/// Runs every record of `file` on connections made by `connect`; returns the failures.
async fn run_file(file: &Path, conn_string: String) -> (usize, Vec<String>) {
    let records = sqllogictest::parse_file::<DefaultColumnType>(file)
        .unwrap_or_else(|e| panic!("{}: {e}", file.display()));
    let mut runner = Runner::new(move || {
        let conn_string = conn_string.clone();
        async move {
            let (client, conn) =
                tokio_postgres::connect(&conn_string, tokio_postgres::NoTls).await?;
            tokio::spawn(async move {
                let _ = conn.await;
            });
            Ok::<_, DbError>(Conn { client })
        }
    });
    runner.add_label("postgresql");
    let mut failures = Vec::new();
    let mut ran = 0;
    for record in records {
        let counts = matches!(record, Record::Statement { .. } | Record::Query { .. });
        if let Record::Halt { .. } = record {
            break;
        }
        match runner.run_async(record).await {
            Ok(_) => ran += counts as usize,
            Err(e) => {
                ran += counts as usize;
                failures.push(e.display(false).to_string());
            }
        }
    }
    (ran, failures)
}

fn report(system: &str, file: &Path, ran: usize, failures: &[String]) -> Option<String> {
    eprintln!(
        "slt {system}: {}: {ran} records, {} failed",
        file.display(),
        failures.len()
    );
    if failures.is_empty() {
        return None;
    }
    let shown: Vec<&str> = failures
        .iter()
        .take(
            std::env::var("WEFT_SLT_SHOW")
                .ok()
                .and_then(|v| v.parse().ok())
                .unwrap_or(15),
        )
        .map(String::as_str)
        .collect();
    Some(format!(
        "{system}: {}: {} of {ran} records failed:\n{}",
        file.display(),
        failures.len(),
        shown.join("\n---\n")
    ))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqllogictest_files_pass_on_weft() {
    let mut problems = Vec::new();
    for file in slt_files() {
        let dir = tempfile::tempdir().unwrap();
        let server = Server::start(dir.path());
        let (ran, failures) = run_file(&file, server.conn_string()).await;
        problems.extend(report("weft", &file, ran, &failures));
        drop(server);
    }
    assert!(problems.is_empty(), "{}", problems.join("\n\n"));
}

/// The same files through a `weft frontend` process, whose storage and adjudicator are
/// another process's: every answer must be the one the embedded frontend gives.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqllogictest_files_pass_on_a_separate_frontend() {
    let mut problems = Vec::new();
    for file in slt_files() {
        let dir = tempfile::tempdir().unwrap();
        let rpc = format!("127.0.0.1:{}", weft_tests::free_port());
        let storage = Server::start_logged(
            &dir.path().join("data"),
            &dir.path().join("storage.log"),
            &["--rpc-listen", &rpc],
            Vec::new(),
        );
        let frontend = Server::start_frontend(&rpc, &dir.path().join("frontend.log"), &[]);
        let (ran, failures) = run_file(&file, frontend.conn_string()).await;
        problems.extend(report("weft frontend", &file, ran, &failures));
        drop(frontend);
        drop(storage);
    }
    assert!(problems.is_empty(), "{}", problems.join("\n\n"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqllogictest_files_pass_on_postgresql() {
    let Some(pg) = PgServer::start() else {
        return;
    };
    let admin = pg.connect().await;
    let mut problems = Vec::new();
    for (i, file) in slt_files().into_iter().enumerate() {
        let db = format!("slt{i}");
        admin
            .batch_execute(&format!("CREATE DATABASE {db}"))
            .await
            .unwrap();
        let conn_string = pg
            .conn_string()
            .replace("dbname=postgres", &format!("dbname={db}"));
        let (ran, failures) = run_file(&file, conn_string).await;
        problems.extend(report("PostgreSQL 15", &file, ran, &failures));
    }
    assert!(problems.is_empty(), "{}", problems.join("\n\n"));
}
