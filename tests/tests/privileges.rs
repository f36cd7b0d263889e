//! Privileges, on weft and on PostgreSQL 15 in the same run: the same roles, objects and
//! grants are made on both, then a matrix of role × object × privilege is tried on both
//! (each role by `SET ROLE`, and some by logging in as it), and every outcome (the
//! SQLSTATE, or the answer) must be the same. The matrix covers owners, direct grants,
//! grants WITH GRANT OPTION (and grants by their holder), PUBLIC, role membership with and
//! without INHERIT, schema USAGE and CREATE, sequences (nextval, currval, setval, a SERIAL
//! default), views read with their owner's privileges, ownership for ALTER, DROP and CREATE
//! INDEX, CREATEROLE, CREATE and CONNECT on the database, REVOKE, the catalog's ACLs
//! (`pg_class.relacl`, `pg_namespace.nspacl`, `pg_database.datacl`), the `has_*_privilege`
//! functions, and psql's `\dp`, `\du` and `\dn+`.

use tokio_postgres::{Client, NoTls, SimpleQueryMessage};
use weft_tests::{PgServer, Server};

async fn connect(conn: &str) -> Client {
    let (client, c) = tokio_postgres::connect(conn, NoTls).await.expect("connect");
    tokio::spawn(async move {
        let _ = c.await;
    });
    client
}

/// A statement's outcome: `ok` and its first row's values, or the SQLSTATE.
async fn outcome(c: &Client, sql: &str) -> String {
    match c.simple_query(sql).await {
        Ok(msgs) => {
            let row = msgs.into_iter().find_map(|m| match m {
                SimpleQueryMessage::Row(r) => Some(
                    (0..r.len())
                        .map(|i| r.get(i).unwrap_or("NULL").to_string())
                        .collect::<Vec<_>>()
                        .join("|"),
                ),
                _ => None,
            });
            match row {
                Some(r) => format!("ok {r}"),
                None => "ok".into(),
            }
        }
        Err(e) => e
            .code()
            .map(|c| c.code().to_string())
            .unwrap_or_else(|| e.to_string()),
    }
}

const SETUP: &[&str] = &[
    "CREATE ROLE owner_r LOGIN",
    "CREATE ROLE reader LOGIN",
    "CREATE ROLE writer LOGIN",
    "CREATE ROLE grp NOLOGIN",
    "CREATE ROLE member_r LOGIN IN ROLE grp",
    "CREATE ROLE noinh LOGIN NOINHERIT",
    "GRANT grp TO noinh",
    "CREATE ROLE nobody LOGIN",
    "CREATE ROLE admin_r LOGIN CREATEROLE",
    "CREATE SCHEMA app AUTHORIZATION owner_r",
    "GRANT CREATE ON SCHEMA public TO owner_r",
    "SET ROLE owner_r",
    "CREATE TABLE t (id int PRIMARY KEY, v text)",
    "CREATE TABLE app.t2 (id serial PRIMARY KEY, v text)",
    "CREATE SEQUENCE s",
    "CREATE VIEW vw AS SELECT id, v FROM t",
    "INSERT INTO t VALUES (1, 'a'), (2, 'b')",
    "GRANT SELECT ON t TO reader",
    "GRANT SELECT, INSERT, UPDATE ON t TO writer WITH GRANT OPTION",
    "GRANT DELETE, TRUNCATE ON t TO grp",
    "GRANT USAGE ON SEQUENCE s TO reader",
    "GRANT SELECT ON vw TO nobody",
    "GRANT USAGE ON SCHEMA app TO reader, writer",
    "GRANT SELECT ON app.t2 TO reader",
    "GRANT INSERT ON app.t2 TO writer",
    "GRANT CREATE ON DATABASE postgres TO admin_r",
    "GRANT SELECT ON t TO PUBLIC",
    "REVOKE SELECT ON t FROM PUBLIC",
    "RESET ROLE",
];

/// The roles that try, in order; the owner comes last (it may drop the table).
const ROLES: &[&str] = &["reader", "writer", "member_r", "noinh", "nobody", "admin_r"];
const OWNER: &str = "owner_r";

/// The statements each role tries, in order (`{r}` is the role's name).
const TRIES: &[&str] = &[
    "SELECT current_user, session_user",
    "SELECT v FROM t WHERE id = 1",
    "SELECT count(*) FROM t",
    "SELECT * FROM vw ORDER BY id LIMIT 1",
    "INSERT INTO t VALUES (10 + length('{r}'), 'x')",
    "UPDATE t SET v = 'y'",
    "UPDATE t SET v = v || '!' WHERE id = 1",
    "DELETE FROM t WHERE id = 999",
    "DELETE FROM t WHERE false",
    "SELECT count(*) FROM app.t2",
    "INSERT INTO app.t2 (v) VALUES ('{r}')",
    "SELECT nextval('s') > 0",
    "SELECT currval('s') > 0",
    "SELECT setval('s', 100)",
    "CREATE TABLE new_{r} (a int)",
    "CREATE TABLE app.new_{r} (a int)",
    "ALTER TABLE t ADD COLUMN c_{r} int",
    "CREATE INDEX t_v_{r} ON t (v)",
    "COMMENT ON TABLE t IS 'by {r}'",
    "GRANT SELECT ON t TO nobody",
    "GRANT DELETE ON t TO nobody",
    "REVOKE SELECT ON t FROM nobody",
    "CREATE SCHEMA sch_{r}",
    "CREATE ROLE made_by_{r}",
    "DROP ROLE made_by_{r}",
    "SET ROLE grp",
    "RESET ROLE",
    "SELECT has_table_privilege('t', 'SELECT'), has_table_privilege('t', 'INSERT, DELETE'), \
     has_table_privilege('t', 'UPDATE WITH GRANT OPTION')",
    "SELECT has_schema_privilege('app', 'USAGE'), has_schema_privilege('public', 'CREATE'), \
     has_sequence_privilege('s', 'USAGE')",
    "SELECT pg_has_role('grp', 'MEMBER'), pg_has_role('grp', 'USAGE')",
    "TRUNCATE t",
    "DROP TABLE t",
];

/// Everything the scenario saw, a line per statement.
async fn scenario(conn: &str, port: u16) -> Vec<String> {
    let admin = connect(conn).await;
    let mut seen = Vec::new();
    for sql in SETUP {
        let o = outcome(&admin, sql).await;
        seen.push(format!("setup {sql}: {o}"));
    }
    for role in ROLES {
        tries(conn, role, &mut seen).await;
    }
    // Logged in as a role, not SET ROLE to it.
    let base = conn.replace("user=postgres", "user=reader");
    let reader = connect(&base).await;
    for sql in [
        "SELECT current_user, session_user",
        "SELECT v FROM t WHERE id = 2",
        "INSERT INTO t VALUES (50, 'r')",
        "SET ROLE writer",
    ] {
        let o = outcome(&reader, sql).await;
        seen.push(format!("login reader: {sql}: {o}"));
    }
    for sql in [
        "SELECT array_to_string(relacl, ',') FROM pg_class WHERE relname = 't'",
        "SELECT array_to_string(relacl, ',') FROM pg_class WHERE relname = 's'",
        "SELECT array_to_string(relacl, ',') FROM pg_class WHERE relname = 'vw'",
        "SELECT array_to_string(nspacl, ',') FROM pg_namespace WHERE nspname = 'public'",
        "SELECT array_to_string(nspacl, ',') FROM pg_namespace WHERE nspname = 'app'",
        "SELECT pg_get_userbyid(relowner) FROM pg_class WHERE relname = 't2'",
        "SELECT pg_get_userbyid(nspowner) FROM pg_namespace WHERE nspname = 'app'",
        "SELECT has_table_privilege('member_r', 't', 'DELETE'), \
         has_table_privilege('noinh', 't', 'DELETE'), has_table_privilege('nobody', 'vw', 'SELECT')",
        "SELECT r.rolname FROM pg_auth_members m JOIN pg_roles r ON r.oid = m.roleid \
         JOIN pg_roles u ON u.oid = m.member WHERE u.rolname = 'member_r'",
        "SELECT rolcreaterole, rolinherit FROM pg_roles WHERE rolname = 'admin_r'",
        "SELECT rolinherit FROM pg_roles WHERE rolname = 'noinh'",
        "DROP ROLE owner_r",
        "SELECT has_database_privilege('nobody', 'postgres', 'CONNECT'), \
         has_database_privilege('admin_r', 'postgres', 'CREATE'), \
         has_database_privilege('reader', 'postgres', 'CREATE')",
        "REVOKE CONNECT ON DATABASE postgres FROM PUBLIC",
        "GRANT CONNECT ON DATABASE postgres TO reader",
        "SELECT array_to_string(datacl, ',') FROM pg_database WHERE datname = 'postgres'",
    ] {
        let o = outcome(&admin, sql).await;
        seen.push(format!("catalog: {sql}: {o}"));
    }
    // CONNECT is checked at login.
    for role in ["nobody", "reader"] {
        let login = conn.replace("user=postgres", &format!("user={role}"));
        let o = match tokio_postgres::connect(&login, NoTls).await {
            Ok(_) => "ok".to_string(),
            Err(e) => e
                .code()
                .map(|c| c.code().to_string())
                .unwrap_or_else(|| e.to_string()),
        };
        seen.push(format!("connect as {role} without CONNECT for PUBLIC: {o}"));
    }
    outcome(&admin, "GRANT CONNECT ON DATABASE postgres TO PUBLIC").await;
    // psql's \dp, \du and \dn+, as PostgreSQL prints them.
    for meta in ["\\dp", "\\du", "\\dn+"] {
        let (ok, out, err) = weft_tests::psql(port, &["-c", meta], None);
        seen.push(format!("psql {meta}: {ok} {err}\n{out}"));
    }
    tries(conn, OWNER, &mut seen).await;
    seen
}

/// `role` tries every statement of [`TRIES`], after `SET ROLE`.
async fn tries(conn: &str, role: &str, seen: &mut Vec<String>) {
    let c = connect(conn).await;
    assert_eq!(outcome(&c, &format!("SET ROLE {role}")).await, "ok");
    for t in TRIES {
        let sql = t.replace("{r}", role);
        let o = outcome(&c, &sql).await;
        seen.push(format!("{role}: {sql}: {o}"));
        // RESET ROLE goes back to the login role: set the role under test again.
        if sql == "RESET ROLE" {
            outcome(&c, &format!("SET ROLE {role}")).await;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn privileges_match_postgresql_on_the_matrix() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("data"));
    let weft = scenario(&server.conn_string(), server.port).await;
    // The matrix checks something: a reader may read and may not write, nobody may not
    // read the table but may read the view over it, and only the owner may drop it.
    let line = |prefix: &str| {
        weft.iter()
            .find(|l| l.starts_with(prefix))
            .cloned()
            .unwrap_or_else(|| panic!("no line {prefix}"))
    };
    assert!(line("reader: SELECT v FROM t WHERE id = 1:").ends_with(": ok a"));
    assert!(line("reader: INSERT INTO t").ends_with(": 42501"));
    assert!(line("nobody: SELECT count(*) FROM t:").ends_with(": 42501"));
    assert!(line("nobody: SELECT * FROM vw").contains(": ok"));
    assert!(line("writer: DROP TABLE t:").ends_with(": 42501"));
    let Some(pg) = PgServer::start() else { return };
    let postgres = scenario(&pg.conn_string(), pg.port).await;
    let mut differ = Vec::new();
    for (w, p) in weft.iter().zip(&postgres) {
        if w != p {
            differ.push(format!("weft:       {w}\npostgresql: {p}"));
        }
    }
    assert_eq!(weft.len(), postgres.len());
    assert!(
        differ.is_empty(),
        "{} of {} outcomes differ:\n{}",
        differ.len(),
        weft.len(),
        differ.join("\n")
    );
}
