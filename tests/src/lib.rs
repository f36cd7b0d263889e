//! Helpers for end-to-end tests: start a real `weft serve` process on a free port with its
//! own data directory, connect real clients to it, kill it with SIGKILL.
#![allow(clippy::disallowed_methods)] // test harness deadlines are real time

pub mod etcd;
pub mod history;
pub mod proxy;
pub mod s3;
pub mod tpch;

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The `weft` binary of this build: `WEFT_BIN`, or `target/<profile>/weft` next to the
/// test executable.
pub fn weft_bin() -> PathBuf {
    if let Ok(p) = std::env::var("WEFT_BIN") {
        return PathBuf::from(p);
    }
    let exe = std::env::current_exe().expect("current exe");
    if exe.file_name().is_some_and(|n| n == "weft") {
        return exe; // `weft bench` starting servers of its own build
    }
    // target/<profile>/deps/<test> -> target/<profile>/weft
    let dir = exe.parent().and_then(|d| d.parent()).expect("target dir");
    let bin = dir.join("weft");
    assert!(
        bin.exists(),
        "{} not found: build it first (cargo build -p weft) or set WEFT_BIN",
        bin.display()
    );
    bin
}

/// The Python the tests drive tools with (`WEFT_PYTHON`, set by tests/run), which must have
/// `needs` installed. `None` (the test skips) when it is not set, unless `WEFT_REQUIRE_TOOLS`
/// is, in which case its absence fails the test.
pub fn python(needs: &str) -> Option<PathBuf> {
    match std::env::var_os("WEFT_PYTHON") {
        Some(p) => Some(PathBuf::from(p)),
        None => {
            assert!(
                std::env::var("WEFT_REQUIRE_TOOLS").is_err(),
                "WEFT_PYTHON (a Python with {needs}) is required"
            );
            eprintln!("skipping: set WEFT_PYTHON to a Python with {needs}");
            None
        }
    }
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

pub struct Server {
    pub child: Option<Child>,
    pub port: u16,
    pub data: PathBuf,
    pub extra_args: Vec<String>,
    /// Environment variables for the server process (e.g. the AWS_* of an S3 store).
    pub env: Vec<(String, String)>,
    /// A `weft frontend` of the process serving storage at this address (else `weft serve`).
    pub frontend_of: Option<String>,
    log: PathBuf,
}

impl Server {
    /// Starts a server on a fresh port over `data`, and waits until it accepts connections.
    pub fn start(data: &Path) -> Server {
        Server::start_with(data, &[])
    }

    pub fn start_with(data: &Path, extra: &[&str]) -> Server {
        Server::start_env(data, extra, Vec::new())
    }

    /// Starts with extra arguments and environment variables.
    pub fn start_env(data: &Path, extra: &[&str], env: Vec<(String, String)>) -> Server {
        Server::start_logged(data, &data.with_extension("log"), extra, env)
    }

    /// A server not yet started, on a fresh port.
    fn unstarted(
        data: &Path,
        log: &Path,
        extra: &[&str],
        env: Vec<(String, String)>,
        frontend_of: Option<String>,
    ) -> Server {
        Server {
            child: None,
            port: free_port(),
            data: data.to_path_buf(),
            extra_args: extra.iter().map(|s| s.to_string()).collect(),
            env,
            frontend_of,
            log: log.to_path_buf(),
        }
    }

    /// Starts with its own log file: for several processes over one store.
    pub fn start_logged(
        data: &Path,
        log: &Path,
        extra: &[&str],
        env: Vec<(String, String)>,
    ) -> Server {
        let mut s = Server::unstarted(data, log, extra, env, None);
        s.spawn();
        s
    }

    /// Starts `weft frontend` with the storage and adjudicator of the process whose
    /// `--rpc-listen` is `storage` (`host:port`), logging to `log`.
    pub fn start_frontend(storage: &str, log: &Path, extra: &[&str]) -> Server {
        let mut s = Server::unstarted(
            &PathBuf::new(),
            log,
            extra,
            Vec::new(),
            Some(storage.to_string()),
        );
        s.spawn();
        s
    }

    /// Starts `weft serve` without waiting for it to accept connections: a standby, which
    /// listens only once it leads. [`Server::wait_serving`] waits for that.
    pub fn start_standby(
        data: &Path,
        log: &Path,
        extra: &[&str],
        env: Vec<(String, String)>,
    ) -> Server {
        let mut s = Server::unstarted(data, log, extra, env, None);
        s.child = Some(s.command().spawn().expect("spawn weft"));
        s
    }

    /// Waits until a process started by [`Server::start_standby`] accepts connections.
    pub fn wait_serving(&mut self) {
        assert!(
            self.wait_ready(0),
            "the port was taken:\n{}",
            self.log_text()
        );
    }

    /// The process id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(|c| c.id())
    }

    /// Sends `signal` (e.g. "STOP", "CONT", "TERM") to the process.
    pub fn signal(&self, signal: &str) {
        if let Some(pid) = self.pid() {
            let _ = Command::new("kill")
                .arg(format!("-{signal}"))
                .arg(pid.to_string())
                .status();
        }
    }

    /// Waits at most `max` for the process to exit by itself; its status if it did.
    pub fn wait_exit(&mut self, max: Duration) -> Option<std::process::ExitStatus> {
        let deadline = Instant::now() + max;
        while Instant::now() < deadline {
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                self.child = None;
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }

    fn spawn(&mut self) {
        // Another test may take the free port first: then try another one.
        for _ in 0..5 {
            if self.spawn_once() {
                return;
            }
            self.port = free_port();
        }
        panic!("weft could not find a free port:\n{}", self.log_text());
    }

    /// The command that starts this weft process, its output appended to its log.
    fn command(&self) -> Command {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .expect("log file");
        let mut command = Command::new(weft_bin());
        match &self.frontend_of {
            // An empty address: the extra arguments say where storage is (--etcd).
            Some(storage) if storage.is_empty() => command.arg("frontend"),
            Some(storage) => command.arg("frontend").arg("--storage").arg(storage),
            None => command.arg("serve").arg("--data").arg(&self.data),
        };
        command
            .arg("--listen")
            .arg(format!("127.0.0.1:{}", self.port))
            .args(&self.extra_args)
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdout(Stdio::from(log.try_clone().expect("log")))
            .stderr(Stdio::from(log));
        command
    }

    /// Starts weft; false if its port turned out to be taken.
    fn spawn_once(&mut self) -> bool {
        let logged = self.log_text().len();
        self.child = Some(self.command().spawn().expect("spawn weft"));
        self.wait_ready(logged)
    }

    /// Waits until this weft (not another process on the port) accepts connections.
    fn wait_ready(&mut self, log_start: usize) -> bool {
        let deadline = Instant::now() + Duration::from_secs(120);
        let ready_line = format!("listen=127.0.0.1:{}", self.port);
        while Instant::now() < deadline {
            let log = self.log_text();
            let ours = log.get(log_start..).is_some_and(|l| {
                l.contains(&ready_line) && l.contains("accepting PostgreSQL connections")
            });
            if ours && std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return true;
            }
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                if log
                    .get(log_start..)
                    .is_some_and(|l| l.contains("Address already in use"))
                {
                    self.child = None;
                    return false;
                }
                panic!(
                    "weft exited with {status} before accepting connections:\n{}",
                    self.log_text()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("weft did not start listening in time:\n{}", self.log_text());
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub fn conn_string(&self) -> String {
        format!(
            "host=127.0.0.1 port={} user=postgres dbname=postgres",
            self.port
        )
    }

    /// SIGKILL, no chance to flush or clean up.
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// SIGTERM and wait for a clean exit.
    pub fn stop(&mut self) -> std::process::ExitStatus {
        let mut c = self.child.take().expect("running");
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(c.id().to_string())
            .status();
        c.wait().expect("wait")
    }

    /// Starts again on the same data directory (and a new port).
    pub fn restart(&mut self) {
        self.kill9();
        self.port = free_port();
        self.spawn();
    }

    pub async fn connect(&self) -> tokio_postgres::Client {
        let (client, conn) = tokio_postgres::connect(&self.conn_string(), tokio_postgres::NoTls)
            .await
            .unwrap_or_else(|e| panic!("connect: {e}\n{}", self.log_text()));
        tokio::spawn(async move {
            let _ = conn.await;
        });
        client
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// The SQLSTATE of a failed statement.
pub fn sqlstate(e: &tokio_postgres::Error) -> String {
    e.code()
        .map(|c| c.code().to_string())
        .unwrap_or_else(|| format!("no sqlstate: {e}"))
}

/// A throwaway PostgreSQL 15 server for side-by-side checks: `initdb` in a temporary
/// directory, its own port, default settings, trust authentication on loopback. Run as the
/// `postgres` user when the tests run as root (PostgreSQL refuses to run as root).
pub struct PgServer {
    child: Option<Child>,
    /// The directory of PostgreSQL's binaries (`pgbench` is there too).
    pub bin: PathBuf,
    pub port: u16,
    data: PathBuf,
    _dir: tempfile::TempDir,
}

/// Where PostgreSQL 15's server binaries are, if installed.
pub fn pg_bin_dir() -> Option<PathBuf> {
    if let Ok(p) = std::env::var("WEFT_PG_BIN") {
        return Some(PathBuf::from(p));
    }
    let debian = PathBuf::from("/usr/lib/postgresql/15/bin");
    if debian.join("postgres").exists() {
        return Some(debian);
    }
    None
}

/// Whether the side-by-side checks must run (the test script installs PostgreSQL and sets
/// this), rather than being skipped with a message when PostgreSQL is missing.
pub fn pg_required() -> bool {
    std::env::var("WEFT_REQUIRE_PG").is_ok_and(|v| v == "1")
}

impl PgServer {
    /// Starts PostgreSQL 15, or returns `None` (and says why) when it is not installed and
    /// not required.
    pub fn start() -> Option<PgServer> {
        PgServer::start_with(&[])
    }

    /// Starts PostgreSQL 15 with extra `-c name=value` settings (later ones win).
    pub fn start_with(settings: &[(&str, &str)]) -> Option<PgServer> {
        let Some(bin) = pg_bin_dir() else {
            assert!(
                !pg_required(),
                "PostgreSQL 15 is required (WEFT_REQUIRE_PG=1) but not installed"
            );
            eprintln!("PostgreSQL 15 is not installed: skipping the side-by-side check");
            return None;
        };
        let dir = tempfile::Builder::new()
            .prefix("weft-pg")
            .tempdir_in("/tmp")
            .expect("temp dir");
        let data = dir.path().join("pgdata");
        let as_root = running_as_root();
        if as_root {
            let status = Command::new("chown")
                .arg("postgres:postgres")
                .arg(dir.path())
                .status()
                .expect("chown");
            assert!(status.success(), "chown the PostgreSQL directory");
        }
        let cmd = |prog: &str| -> Command {
            let path = bin.join(prog);
            if as_root {
                let mut c = Command::new("runuser");
                c.args(["-u", "postgres", "--"]).arg(path);
                c
            } else {
                Command::new(path)
            }
        };
        let out = cmd("initdb")
            .arg("-D")
            .arg(&data)
            .args(["-U", "postgres", "--auth=trust", "--no-sync", "-E", "UTF8"])
            .args(["--locale=C"])
            .output()
            .expect("run initdb");
        assert!(
            out.status.success(),
            "initdb failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let port = free_port();
        let child = cmd("postgres")
            .arg("-D")
            .arg(&data)
            .args(["-p", &port.to_string(), "-c", "listen_addresses=127.0.0.1"])
            .arg("-c")
            .arg(format!("unix_socket_directories={}", dir.path().display()))
            .args(["-c", "max_connections=200"])
            .args(
                settings
                    .iter()
                    .flat_map(|(k, v)| ["-c".to_string(), format!("{k}={v}")]),
            )
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn postgres");
        let pg = PgServer {
            child: Some(child),
            bin,
            port,
            data,
            _dir: dir,
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let ok = Command::new("psql")
                .args(["-h", "127.0.0.1", "-p", &port.to_string(), "-U", "postgres"])
                .args(["-d", "postgres", "-Atc", "SELECT 1"])
                .output()
                .map(|o| o.status.success())
                .unwrap_or(false);
            if ok {
                break;
            }
            assert!(Instant::now() < deadline, "PostgreSQL did not start");
            std::thread::sleep(Duration::from_millis(100));
        }
        Some(pg)
    }

    pub fn conn_string(&self) -> String {
        format!(
            "host=127.0.0.1 port={} user=postgres dbname=postgres",
            self.port
        )
    }

    /// The postmaster's process id.
    pub fn pid(&self) -> Option<u32> {
        std::fs::read_to_string(self.data.join("postmaster.pid"))
            .ok()?
            .lines()
            .next()?
            .trim()
            .parse()
            .ok()
    }

    pub async fn connect(&self) -> tokio_postgres::Client {
        let (client, conn) = tokio_postgres::connect(&self.conn_string(), tokio_postgres::NoTls)
            .await
            .expect("connect to PostgreSQL");
        tokio::spawn(async move {
            let _ = conn.await;
        });
        client
    }
}

impl Drop for PgServer {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            // An immediate shutdown of the postmaster (named in its pid file, since the
            // child may be `runuser`): the cluster is thrown away anyway.
            let pid = std::fs::read_to_string(self.data.join("postmaster.pid"))
                .ok()
                .and_then(|s| s.lines().next().map(str::to_string));
            if let Some(pid) = pid {
                let _ = Command::new("kill").arg("-QUIT").arg(pid).status();
            }
            let _ = c.wait();
        }
    }
}

fn running_as_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

/// The rows of a simple-protocol query as text (NULL is `None`); panics naming the query.
pub async fn simple_rows(c: &tokio_postgres::Client, sql: &str) -> Vec<Vec<Option<String>>> {
    c.simple_query(sql)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
        .into_iter()
        .filter_map(|m| match m {
            tokio_postgres::SimpleQueryMessage::Row(r) => {
                Some((0..r.len()).map(|i| r.get(i).map(str::to_string)).collect())
            }
            _ => None,
        })
        .collect()
}

/// Runs psql against a server on this port (as user postgres, database postgres), feeding
/// it `stdin`: (succeeded, stdout, stderr).
pub fn psql(port: u16, args: &[&str], stdin: Option<&str>) -> (bool, String, String) {
    use std::io::Write;
    let mut child = Command::new("psql")
        .args([
            "-X",
            "-h",
            "127.0.0.1",
            "-p",
            &port.to_string(),
            "-U",
            "postgres",
            "postgres",
        ])
        .args(args)
        .env("PGCONNECT_TIMEOUT", "10")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("psql must be installed (tests/run installs postgresql-client)");
    let mut input = child.stdin.take().expect("psql's stdin");
    // psql may exit before reading everything (an error with ON_ERROR_STOP).
    let _ = input.write_all(stdin.unwrap_or("").as_bytes());
    drop(input);
    let out = child.wait_with_output().expect("wait for psql");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A memory field of /proc/<pid>/status in bytes: `VmRSS` (resident now) or `VmHWM` (the
/// peak since start or since [`reset_peak_memory`]).
pub fn process_memory(pid: u32, field: &str) -> u64 {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = text
        .lines()
        .find(|l| l.starts_with(&format!("{field}:")))
        .unwrap_or_else(|| panic!("{field} in /proc/{pid}/status"));
    let kb: u64 = line
        .split_whitespace()
        .nth(1)
        .and_then(|v| v.parse().ok())
        .unwrap();
    kb * 1024
}

/// Resets a process's peak resident size (`VmHWM`) to its current one.
pub fn reset_peak_memory(pid: u32) {
    std::fs::write(format!("/proc/{pid}/clear_refs"), "5").unwrap();
}
