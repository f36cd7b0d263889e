//! Helpers for end-to-end tests: start a real `weft serve` process on a free port with its
//! own data directory, connect real clients to it, kill it with SIGKILL.

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
    log: PathBuf,
}

impl Server {
    /// Starts a server on a fresh port over `data`, and waits until it accepts connections.
    pub fn start(data: &Path) -> Server {
        Server::start_with(data, &[])
    }

    pub fn start_with(data: &Path, extra: &[&str]) -> Server {
        let mut s = Server {
            child: None,
            port: free_port(),
            data: data.to_path_buf(),
            extra_args: extra.iter().map(|s| s.to_string()).collect(),
            log: data.with_extension("log"),
        };
        s.spawn();
        s
    }

    fn spawn(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .expect("log file");
        let child = Command::new(weft_bin())
            .arg("serve")
            .arg("--listen")
            .arg(format!("127.0.0.1:{}", self.port))
            .arg("--data")
            .arg(&self.data)
            .args(&self.extra_args)
            .stdout(Stdio::from(log.try_clone().expect("log")))
            .stderr(Stdio::from(log))
            .spawn()
            .expect("spawn weft");
        self.child = Some(child);
        self.wait_ready();
    }

    fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(120);
        while Instant::now() < deadline {
            if std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return;
            }
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
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
