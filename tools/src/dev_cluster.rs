//! `weft dev-cluster`: the cluster topology on one machine, without containers, every
//! role its own process: etcd, s3s-fs (an S3-compatible store) unless a local directory
//! is asked for, two serving processes (a leader and a standby, elected through etcd)
//! and frontends that follow the leader. Ctrl-C stops them all, the leader last among
//! weft's processes so that its final flush lands.
#![allow(clippy::disallowed_methods)] // start-up deadlines are real time

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use clap::Args;

#[derive(Args, Debug)]
pub struct DevClusterArgs {
    /// Where the cluster keeps its data and each process's log.
    #[arg(long, default_value = "./weft-dev-cluster")]
    pub dir: PathBuf,
    /// The first frontend's PostgreSQL port; the others follow it. The serving processes
    /// listen at PORT+10.., their RPC at PORT+20.., etcd at PORT+40, s3s-fs at PORT+42.
    #[arg(long, default_value_t = 5433)]
    pub port: u16,
    /// How many frontends.
    #[arg(long, default_value_t = 2)]
    pub frontends: u16,
    /// Keep the store in a local directory instead of s3s-fs.
    #[arg(long)]
    pub local_store: bool,
}

const ACCESS_KEY: &str = "weft-dev";
const SECRET_KEY: &str = "weft-dev-secret";

struct Proc {
    name: String,
    child: Child,
    /// A serving process is started again when it exits (it comes back as a standby),
    /// so that failover can be tried again and again: its arguments and environment.
    respawn: Option<Respawn>,
}

struct Respawn {
    args: Vec<String>,
    env: Vec<(String, String)>,
}

fn log_file(dir: &Path, name: &str) -> anyhow::Result<Stdio> {
    let f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join("logs").join(format!("{name}.log")))
        .with_context(|| format!("opening {name}'s log"))?;
    Ok(Stdio::from(f))
}

fn wait_listening(port: u16, what: &str, procs: &mut [Proc]) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(120);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        for p in procs.iter_mut() {
            if let Ok(Some(status)) = p.child.try_wait() {
                bail!(
                    "{} exited ({status}) before {what} was up; see its log",
                    p.name
                );
            }
        }
        if Instant::now() > deadline {
            bail!("{what} did not listen on port {port} in 120 s");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok(())
}

pub async fn run(args: DevClusterArgs) -> anyhow::Result<()> {
    let dir = std::fs::canonicalize({
        std::fs::create_dir_all(args.dir.join("logs"))?;
        &args.dir
    })?;
    let weft = std::env::current_exe().context("finding the weft binary")?;
    let p = args.port;
    let mut procs: Vec<Proc> = Vec::new();
    let result = start(&args, &dir, &weft, p, &mut procs).await;
    if let Err(e) = result {
        stop(&mut procs);
        return Err(e);
    }
    println!(
        "weft dev-cluster is up ({} processes); logs in {}",
        procs.len(),
        dir.join("logs").display()
    );
    for i in 0..args.frontends {
        println!(
            "  frontend {i}:      psql -h 127.0.0.1 -p {} -U postgres",
            p + i
        );
    }
    println!(
        "  cluster status:  {} cluster status --etcd http://127.0.0.1:{}",
        weft.display(),
        p + 40
    );
    println!(
        "Ctrl-C stops every process. A serving process that exits is started again as a standby."
    );
    let mut exited = vec![false; procs.len()];
    loop {
        tokio::select! {
            _ = crate::serve::shutdown_signal() => break,
            _ = tokio::time::sleep(Duration::from_millis(500)) => {}
        }
        for (i, p) in procs.iter_mut().enumerate() {
            if exited[i] {
                continue;
            }
            let Ok(Some(status)) = p.child.try_wait() else {
                continue;
            };
            let log = dir.join("logs").join(format!("{}.log", p.name));
            let again = p
                .respawn
                .as_ref()
                .map(|r| spawn_weft(&weft, &dir, &p.name, &r.args, &r.env));
            match again {
                Some(Ok(child)) => {
                    println!(
                        "{} exited ({status}); started again as a standby (log: {})",
                        p.name,
                        log.display()
                    );
                    p.child = child;
                }
                Some(Err(e)) => {
                    exited[i] = true;
                    println!(
                        "{} exited ({status}) and could not be started again: {e:#}",
                        p.name
                    );
                }
                None => {
                    exited[i] = true;
                    println!("{} exited ({status}); see {}", p.name, log.display());
                }
            }
        }
    }
    println!("stopping");
    stop(&mut procs);
    Ok(())
}

async fn start(
    args: &DevClusterArgs,
    dir: &Path,
    weft: &Path,
    p: u16,
    procs: &mut Vec<Proc>,
) -> anyhow::Result<()> {
    let etcd_bin = weft_tests::etcd::etcd_bin().context(
        "etcd is not installed: `apt-get install etcd-server` (or set WEFT_ETCD to its binary)",
    )?;
    std::fs::create_dir_all(dir.join("etcd"))?;
    let etcd_url = format!("http://127.0.0.1:{}", p + 40);
    let etcd = Command::new(&etcd_bin)
        .arg("--name")
        .arg("weft")
        .arg("--data-dir")
        .arg(dir.join("etcd"))
        .args([
            "--listen-client-urls",
            &etcd_url,
            "--advertise-client-urls",
            &etcd_url,
        ])
        .args([
            "--listen-peer-urls",
            &format!("http://127.0.0.1:{}", p + 41),
        ])
        .args([
            "--initial-advertise-peer-urls",
            &format!("http://127.0.0.1:{}", p + 41),
        ])
        .args([
            "--initial-cluster",
            &format!("weft=http://127.0.0.1:{}", p + 41),
        ])
        .stdout(Stdio::null())
        .stderr(log_file(dir, "etcd")?)
        .spawn()
        .context("starting etcd")?;
    procs.push(Proc {
        name: "etcd".into(),
        child: etcd,
        respawn: None,
    });
    wait_listening(p + 40, "etcd", procs)?;

    let mut env: Vec<(String, String)> = Vec::new();
    let store = if args.local_store {
        vec![
            "--data".to_string(),
            dir.join("store").display().to_string(),
        ]
    } else {
        let bin = weft_tests::s3::s3s_fs_bin().context(
            "s3s-fs is not installed: `cargo install s3s-fs@0.14.1 --features binary`, or pass --local-store",
        )?;
        std::fs::create_dir_all(dir.join("s3").join("weft"))?;
        let s3 = Command::new(bin)
            .args(["--host", "127.0.0.1", "--port", &(p + 42).to_string()])
            .args(["--access-key", ACCESS_KEY, "--secret-key", SECRET_KEY])
            .arg(dir.join("s3"))
            .stdout(Stdio::null())
            .stderr(log_file(dir, "s3s-fs")?)
            .spawn()
            .context("starting s3s-fs")?;
        procs.push(Proc {
            name: "s3s-fs".into(),
            child: s3,
            respawn: None,
        });
        wait_listening(p + 42, "s3s-fs", procs)?;
        for (k, v) in [
            ("AWS_ENDPOINT", format!("http://127.0.0.1:{}", p + 42)),
            ("AWS_ACCESS_KEY_ID", ACCESS_KEY.into()),
            ("AWS_SECRET_ACCESS_KEY", SECRET_KEY.into()),
            ("AWS_REGION", "us-east-1".into()),
            ("AWS_ALLOW_HTTP", "true".into()),
        ] {
            env.push((k.into(), v));
        }
        vec!["--store".to_string(), "s3://weft/dev".to_string()]
    };
    for i in 0..2u16 {
        let name = format!("serve-{i}");
        let args: Vec<String> = ["serve".to_string()]
            .into_iter()
            .chain(store.iter().cloned())
            .chain([
                format!("--listen=127.0.0.1:{}", p + 10 + i),
                format!("--rpc-listen=127.0.0.1:{}", p + 20 + i),
                format!("--metrics-listen=127.0.0.1:{}", p + 30 + i),
                format!("--etcd={etcd_url}"),
            ])
            .collect();
        let child = spawn_weft(weft, dir, &name, &args, &env)?;
        procs.push(Proc {
            name,
            child,
            respawn: Some(Respawn {
                args,
                env: env.clone(),
            }),
        });
        if i == 0 {
            // The first one leads: let it take the store before its standby campaigns.
            wait_listening(p + 20, "the leader's RPC", procs)?;
        }
    }
    for i in 0..args.frontends {
        let name = format!("frontend-{i}");
        let args = vec![
            "frontend".to_string(),
            format!("--etcd={etcd_url}"),
            format!("--listen=127.0.0.1:{}", p + i),
            format!("--metrics-listen=127.0.0.1:{}", p + 32 + i),
        ];
        let child = spawn_weft(weft, dir, &name, &args, &[])?;
        procs.push(Proc {
            name,
            child,
            respawn: None,
        });
    }
    for i in 0..args.frontends {
        wait_listening(p + i, &format!("frontend-{i}"), procs)?;
    }
    Ok(())
}

/// Starts `weft ARGS`, its output appended to its log.
fn spawn_weft(
    weft: &Path,
    dir: &Path,
    name: &str,
    args: &[String],
    env: &[(String, String)],
) -> anyhow::Result<Child> {
    Command::new(weft)
        .args(args)
        .envs(env.iter().cloned())
        .stdout(log_file(dir, name)?)
        .stderr(log_file(dir, name)?)
        .spawn()
        .with_context(|| format!("starting {name}"))
}

/// SIGTERM to every process, frontends first, the serving processes' standby before its
/// leader, the store and etcd last; each is waited for (and killed after 30 s).
fn stop(procs: &mut [Proc]) {
    for p in procs.iter_mut().rev() {
        let pid = p.child.id() as libc::pid_t;
        // SAFETY: kill(2) on a child this process started and has not reaped.
        unsafe {
            libc::kill(pid, libc::SIGTERM);
        }
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            match p.child.try_wait() {
                Ok(Some(_)) | Err(_) => break,
                Ok(None) if Instant::now() > deadline => {
                    let _ = p.child.kill();
                    let _ = p.child.wait();
                    break;
                }
                Ok(None) => std::thread::sleep(Duration::from_millis(50)),
            }
        }
    }
}
