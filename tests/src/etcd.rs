//! A real etcd server for the cluster tests: the `etcd` binary of Debian's `etcd-server`
//! package (installed by `tests/run`), one member on 127.0.0.1 on free ports over a
//! temporary directory. It can be stopped and started again on the same data.
#![allow(clippy::disallowed_methods)] // test harness deadlines are real time

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The etcd binary: `$WEFT_ETCD`, or `etcd` on the PATH.
pub fn etcd_bin() -> Option<PathBuf> {
    if let Ok(p) = std::env::var("WEFT_ETCD") {
        return Some(PathBuf::from(p));
    }
    std::env::var("PATH")
        .unwrap_or_default()
        .split(':')
        .map(|d| PathBuf::from(d).join("etcd"))
        .find(|p| p.is_file())
}

/// Starts one etcd member on `client_port` and `peer_port` over `dir`; its output goes to
/// `log`. Waits until it answers.
pub fn spawn_etcd(bin: &Path, dir: &Path, client_port: u16, peer_port: u16, log: Stdio) -> Child {
    let client = format!("http://127.0.0.1:{client_port}");
    let peer = format!("http://127.0.0.1:{peer_port}");
    let child = Command::new(bin)
        .arg("--name")
        .arg("weft")
        .arg("--data-dir")
        .arg(dir)
        .args([
            "--listen-client-urls",
            &client,
            "--advertise-client-urls",
            &client,
        ])
        .args([
            "--listen-peer-urls",
            &peer,
            "--initial-advertise-peer-urls",
            &peer,
        ])
        .args(["--initial-cluster", &format!("weft={peer}")])
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap_or_else(|e| panic!("starting {}: {e}", bin.display()));
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::net::TcpStream::connect(("127.0.0.1", client_port)).is_err() {
        assert!(Instant::now() < deadline, "etcd did not start listening");
        std::thread::sleep(Duration::from_millis(20));
    }
    child
}

pub struct EtcdServer {
    child: Option<Child>,
    pub port: u16,
    peer_port: u16,
    bin: PathBuf,
    root: tempfile::TempDir,
}

impl EtcdServer {
    /// Starts etcd, or returns `None` (and says why) when it is missing and not required.
    pub fn start() -> Option<EtcdServer> {
        let Some(bin) = etcd_bin() else {
            assert!(
                std::env::var("WEFT_REQUIRE_TOOLS").is_err(),
                "etcd not found; tests/run installs it (apt-get install etcd-server)"
            );
            eprintln!("skipped: etcd not installed");
            return None;
        };
        let root = tempfile::tempdir().expect("tempdir");
        let (port, peer_port) = (crate::free_port(), crate::free_port());
        let mut s = EtcdServer {
            child: None,
            port,
            peer_port,
            bin,
            root,
        };
        s.resume();
        Some(s)
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Stops etcd (SIGKILL); its data stays.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Starts etcd again on the same data and ports.
    pub fn resume(&mut self) {
        assert!(self.child.is_none());
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.root.path().join("etcd.log"))
            .expect("etcd log");
        self.child = Some(spawn_etcd(
            &self.bin,
            &self.root.path().join("data"),
            self.port,
            self.peer_port,
            Stdio::from(log),
        ));
    }
}

impl Drop for EtcdServer {
    fn drop(&mut self) {
        self.kill();
    }
}
