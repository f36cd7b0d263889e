//! A real S3-compatible server for tests and benchmarks: `s3s-fs` (installed by
//! `tests/run`), started on 127.0.0.1 on a free port over a temporary directory, with one
//! bucket and its own credentials. It honours conditional puts (If-None-Match: *).
#![allow(clippy::disallowed_methods)] // test harness deadlines are real time

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const BUCKET: &str = "weft";
const ACCESS_KEY: &str = "weft-test";
const SECRET_KEY: &str = "weft-test-secret";

pub struct S3Server {
    child: Child,
    pub port: u16,
    _root: tempfile::TempDir,
}

/// The s3s-fs binary: `$WEFT_S3S_FS`, on the PATH, or where `tests/run` installs it.
pub fn s3s_fs_bin() -> Option<PathBuf> {
    if let Ok(p) = std::env::var("WEFT_S3S_FS") {
        return Some(PathBuf::from(p));
    }
    let home = std::env::var("HOME").unwrap_or_default();
    let mut candidates: Vec<PathBuf> = std::env::var("PATH")
        .unwrap_or_default()
        .split(':')
        .map(|d| PathBuf::from(d).join("s3s-fs"))
        .collect();
    candidates.push(PathBuf::from(&home).join(".cache/weft-tools/bin/s3s-fs"));
    candidates.push(PathBuf::from(&home).join(".cargo/bin/s3s-fs"));
    candidates.into_iter().find(|p| p.is_file())
}

/// Whether the S3 runs must happen (`tests/run` sets it) rather than be skipped.
pub fn s3_required() -> bool {
    std::env::var("WEFT_REQUIRE_S3").is_ok_and(|v| v == "1")
}

impl S3Server {
    /// Starts s3s-fs, or returns `None` (and says why) when it is missing and not required.
    pub fn start() -> Option<S3Server> {
        let Some(bin) = s3s_fs_bin() else {
            assert!(
                !s3_required(),
                "s3s-fs not found; tests/run installs it (cargo install s3s-fs@0.14.1 --features binary)"
            );
            eprintln!("skipped the S3 run: s3s-fs not installed");
            return None;
        };
        let root = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir_all(root.path().join(BUCKET)).expect("bucket dir");
        let port = crate::free_port();
        let child = Command::new(&bin)
            .args(["--host", "127.0.0.1", "--port", &port.to_string()])
            .args(["--access-key", ACCESS_KEY, "--secret-key", SECRET_KEY])
            .arg(root.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("starting {}: {e}", bin.display()));
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "s3s-fs did not start listening");
            std::thread::sleep(Duration::from_millis(20));
        }
        Some(S3Server {
            child,
            port,
            _root: root,
        })
    }

    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The variables `weft serve --store s3://...` reads.
    pub fn env(&self) -> Vec<(String, String)> {
        [
            ("AWS_ENDPOINT", self.endpoint()),
            ("AWS_ACCESS_KEY_ID", ACCESS_KEY.into()),
            ("AWS_SECRET_ACCESS_KEY", SECRET_KEY.into()),
            ("AWS_REGION", "us-east-1".into()),
            ("AWS_ALLOW_HTTP", "true".into()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect()
    }

    /// A store URL under its own prefix.
    pub fn url(&self, prefix: &str) -> String {
        format!("s3://{BUCKET}/{prefix}")
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
