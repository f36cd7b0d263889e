//! psql, the PostgreSQL command-line client, against weft: a short session as a new user
//! would type it, with the output checked.

use weft_tests::{PgServer, Server};

fn psql(server: &Server, args: &[&str]) -> (bool, String, String) {
    psql_at(server.port, args)
}

fn psql_at(port: u16, args: &[&str]) -> (bool, String, String) {
    weft_tests::psql(port, args, None)
}

#[test]
fn a_psql_session() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("data"));
    let (ok, out, err) = psql(
        &server,
        &[
            "-v",
            "ON_ERROR_STOP=1",
            "-c",
            "CREATE TABLE notes (id int PRIMARY KEY, body text NOT NULL, score double precision)",
            "-c",
            "INSERT INTO notes VALUES (1, 'hello', 1.5), (2, 'world', 3)",
            "-c",
            "SELECT id, body, score FROM notes ORDER BY id",
        ],
    );
    assert!(ok, "psql failed: {err}");
    let expected = "CREATE TABLE\nINSERT 0 2\n id | body  | score \n----+-------+-------\n  1 | hello |   1.5\n  2 | world |     3\n(2 rows)\n\n";
    assert_eq!(out, expected);

    // Unaligned output of aggregates, with PostgreSQL's column names.
    let (ok, out, err) = psql(
        &server,
        &[
            "-A",
            "-c",
            "SELECT count(*), sum(score), max(body) FROM notes",
        ],
    );
    assert!(ok, "{err}");
    assert_eq!(out, "count|sum|max\n2|4.5|world\n(1 row)\n");

    // An error is reported with its message and psql's exit status says so.
    let (ok, _out, err) = psql(
        &server,
        &[
            "-v",
            "ON_ERROR_STOP=1",
            "-c",
            "INSERT INTO notes VALUES (1, 'again', 0)",
        ],
    );
    assert!(!ok);
    assert!(
        err.contains("duplicate key value violates unique constraint \"notes_pkey\""),
        "{err}"
    );
    assert!(err.contains("Key (id)=(1) already exists."), "{err}");

    // A transaction across several commands in one psql script.
    let (ok, out, err) = psql(
        &server,
        &[
            "-v",
            "ON_ERROR_STOP=1",
            "-q",
            "-A",
            "-t",
            "-c",
            "BEGIN; UPDATE notes SET score = score * 2; COMMIT; SELECT sum(score) FROM notes",
        ],
    );
    assert!(ok, "{err}");
    assert_eq!(out.trim(), "9");
}

/// The same schema in weft and in PostgreSQL 15, described by psql's meta-commands: the
/// output must be the same, character for character.
#[test]
fn meta_commands_print_what_postgresql_prints() {
    let schema = [
        "CREATE TABLE accounts (id bigint PRIMARY KEY, owner varchar(40) NOT NULL, \
         balance numeric(12,2) DEFAULT 0, status text DEFAULT 'open', created timestamptz)",
        "CREATE TABLE notes (body text, n integer)",
        "CREATE TABLE pairs (a int, b text, c boolean NOT NULL, d real, e date, f bytea, \
         g char(3), h smallint, i double precision, PRIMARY KEY (a, b))",
        "CREATE TABLE \"Mixed Case\" (k text PRIMARY KEY, v int DEFAULT 42)",
        "INSERT INTO accounts (id, owner, balance) VALUES (1, 'ann', 10.5), (2, 'bob', 20)",
        "CREATE TABLE owners (id int PRIMARY KEY, email text UNIQUE, age int CHECK (age >= 0))",
        "CREATE TABLE pets (id int PRIMARY KEY, owner_id int REFERENCES owners ON DELETE CASCADE, \
         name text NOT NULL, CONSTRAINT one_name UNIQUE (owner_id, name))",
        "CREATE INDEX pets_name ON pets (name)",
    ];
    let script = [
        "\\dt",
        "\\d accounts",
        "\\d+ accounts",
        "\\d notes",
        "\\d pairs",
        "\\d \"Mixed Case\"",
        "\\dn",
        "\\d owners",
        "\\d pets",
        "\\di",
        "\\x",
        "SELECT id, owner, balance, status FROM accounts ORDER BY id;",
        "\\x",
        "SELECT table_name, column_name, data_type, is_nullable, column_default \
         FROM information_schema.columns WHERE table_name = 'accounts' ORDER BY ordinal_position;",
        "SELECT tc.table_name, kcu.column_name, kcu.ordinal_position FROM \
         information_schema.table_constraints tc JOIN information_schema.key_column_usage kcu \
         ON tc.constraint_name = kcu.constraint_name WHERE tc.constraint_type = 'PRIMARY KEY' \
         AND tc.table_schema = 'public' \
         ORDER BY 1, 3;",
        "SELECT relname, relkind FROM pg_class WHERE relnamespace = 'public'::regnamespace ORDER BY 1;",
        "SELECT 'accounts'::regclass = (SELECT oid FROM pg_class WHERE relname = 'accounts') AS same;",
        "SELECT format_type(atttypid, atttypmod) FROM pg_attribute \
         WHERE attrelid = 'pairs'::regclass AND attnum > 0 ORDER BY attnum;",
        "SELECT current_database(), current_schema(), current_setting('DateStyle');",
    ]
    .join("\n");
    let script_file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(script_file.path(), format!("{script}\n")).unwrap();
    let run = |port: u16| -> String {
        for sql in schema {
            let (ok, _, err) = psql_at(port, &["-q", "-v", "ON_ERROR_STOP=1", "-c", sql]);
            assert!(ok, "{sql}: {err}");
        }
        let (ok, out, err) = psql_at(
            port,
            &[
                "-v",
                "ON_ERROR_STOP=1",
                "-f",
                script_file.path().to_str().unwrap(),
            ],
        );
        assert!(ok, "psql script failed on port {port}: {err}\n{out}");
        out
    };

    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("data"));
    let weft = run(server.port);
    // Spot checks that hold whether or not PostgreSQL is here to compare with.
    for expected in [
        " public | accounts   | table | postgres",
        " balance | numeric(12,2)            |           |          | 0",
        " status  | text                     |           |          | 'open'::text",
        "    \"accounts_pkey\" PRIMARY KEY, btree (id)",
        "    \"pairs_pkey\" PRIMARY KEY, btree (a, b)",
        "    \"Mixed Case_pkey\" PRIMARY KEY, btree (k)",
        "Access method: heap",
        "-[ RECORD 2 ]",
        "owner   | bob",
    ] {
        assert!(weft.contains(expected), "missing {expected:?} in:\n{weft}");
    }

    let Some(pg) = PgServer::start() else { return };
    let postgres = run(pg.port);
    assert_eq!(
        weft, postgres,
        "psql prints differently for weft (left) and PostgreSQL 15 (right)"
    );

    // \l: weft has one database, listed as PostgreSQL lists its own.
    let row = |out: &str| -> Vec<String> {
        out.lines()
            .find(|l| l.starts_with(" postgres "))
            .unwrap_or_default()
            .split('|')
            .map(|f| f.trim().to_string())
            .collect()
    };
    let (ok, weft_l, err) = psql(&server, &["-c", "\\l"]);
    assert!(ok, "{err}");
    let (ok, pg_l, err) = psql_at(pg.port, &["-c", "\\l"]);
    assert!(ok, "{err}");
    assert_eq!(row(&weft_l), row(&pg_l), "\\l:\n{weft_l}\n{pg_l}");

    // \timing prints how long each statement took.
    let (ok, out, err) = psql(&server, &["-c", "\\timing on", "-c", "SELECT 1 AS one"]);
    assert!(ok, "{err}");
    assert!(
        out.contains("Timing is on.") && out.contains("Time: "),
        "{out}"
    );
}

/// psql's `\dt+`, `\di+` and `\l+` show sizes: a table's and an index's are the bytes of
/// their segments once flushed, the total is their sum, and a name that is no relation is
/// 42P01 as in PostgreSQL.
#[test]
fn sizes_of_tables_indexes_and_databases() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start_with(&dir.path().join("data"), &["--flush-age-max-s", "1"]);
    let (ok, _, err) = psql(
        &server,
        &[
            "-v",
            "ON_ERROR_STOP=1",
            "-c",
            "CREATE TABLE sized (id int PRIMARY KEY, body text); \
             INSERT INTO sized SELECT g, repeat('x', 100) || g FROM generate_series(1, 2000) g; \
             CREATE INDEX sized_body ON sized (body)",
        ],
    );
    assert!(ok, "{err}");
    // Sizes count flushed segments: wait (bounded) for the flush.
    let sizes = || {
        let (ok, out, err) = psql(
            &server,
            &[
                "-At",
                "-c",
                "SELECT pg_relation_size('sized'), pg_indexes_size('sized'), \
                 pg_total_relation_size('sized'), pg_database_size('postgres')",
            ],
        );
        assert!(ok, "{err}");
        out.trim()
            .split('|')
            .map(|v| v.parse::<i64>().unwrap())
            .collect::<Vec<_>>()
    };
    let mut s = sizes();
    for attempt in 0.. {
        if s[0] > 0 && s[1] > 0 {
            break;
        }
        assert!(attempt < 300, "never flushed: {s:?}");
        std::thread::sleep(std::time::Duration::from_millis(200));
        s = sizes();
    }
    assert!(s[0] > 4000, "{s:?}");
    assert_eq!(s[2], s[0] + s[1], "{s:?}");
    assert!(s[3] >= s[2], "{s:?}");
    let (ok, out, err) = psql(&server, &["-c", "\\dt+", "-c", "\\di+", "-c", "\\l+"]);
    assert!(ok, "{err}");
    assert!(out.contains(" sized ") && out.contains(" kB"), "{out}");
    assert!(out.contains("sized_body"), "{out}");
    let (ok, _, err) = psql(&server, &["-c", "SELECT pg_relation_size('no_such_table')"]);
    assert!(!ok && err.contains("does not exist"), "{err}");
}
