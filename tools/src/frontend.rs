//! `weft frontend`: a PostgreSQL listener and SQL engine whose storage and adjudicator run
//! in another weft process (`weft serve --rpc-listen`). It holds no data: any number of
//! frontends, and the serving process's own listener, accept reads and writes at once on
//! the same database.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::Args;
use tokio::net::TcpListener;
use weft_engine::{Clock, SystemClock};
use weft_frontend_pgwire::auth::AuthConfig;
use weft_rpc::client::{RemoteCommits, RemoteStorage};

use crate::session_args::SessionArgs;

#[derive(Args, Debug)]
pub struct FrontendArgs {
    /// The weft process that serves storage and commits (its --rpc-listen address), or
    /// several separated by commas (a leader and its standbys: calls move to the next one
    /// when one refuses connections).
    #[arg(long, value_name = "ADDR", required_unless_present = "etcd")]
    pub storage: Option<String>,
    /// Follow the serving process that etcd at URL says leads the cluster (see `weft
    /// serve --etcd`); several endpoints of one etcd cluster may be given, separated by
    /// commas.
    #[arg(long, value_name = "URL")]
    pub etcd: Option<String>,
    /// The cluster id, as the serving processes were given it (with --etcd).
    #[arg(long, default_value = "default")]
    pub cluster: String,
    #[command(flatten)]
    pub session: SessionArgs,
}

/// How long a frontend waits at start for the serving process to answer.
const STORAGE_WAIT_MAX: Duration = Duration::from_secs(60);

pub async fn run(args: FrontendArgs) -> anyhow::Result<()> {
    let session = &args.session;
    let tls = session.tls()?;
    let clock: Arc<dyn Clock> = Arc::new(SystemClock::new(session.clock_error_us * 1000));
    let entropy = weft_engine::Entropy::from_os();
    let etcd = args
        .etcd
        .as_deref()
        .map(weft::coord::etcd::Etcd::new)
        .transpose()?;
    let storage = match (&args.storage, &etcd) {
        (Some(s), _) => s.clone(),
        (None, Some(etcd)) => wait_for_leader(etcd, &args.cluster).await?,
        (None, None) => anyhow::bail!("give --storage or --etcd"),
    };
    let peer = weft_rpc::peer::Peer::new(&storage).map_err(anyhow::Error::msg)?;
    if let Some(etcd) = &etcd {
        let me = crate::cluster::announcement(
            "frontend",
            &session.listen,
            None,
            session.metrics_listen.as_deref(),
        );
        crate::cluster::join(etcd, &args.cluster, &me);
        tokio::spawn(follow_leader(
            etcd.clone(),
            args.cluster.clone(),
            peer.clone(),
        ));
    }
    let commits = RemoteCommits::new(peer.clone(), clock.clone());
    // The serving process may still be recovering: wait for it (bounded), so that the
    // first client does not meet an error a moment's patience would have avoided.
    let deadline = tokio::time::Instant::now() + STORAGE_WAIT_MAX;
    let status = loop {
        match commits.status().await {
            Ok(s) => break s,
            Err(e) if tokio::time::Instant::now() < deadline => {
                tracing::info!(storage = %storage, error = %e, "frontend: waiting for the storage process");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(e) => {
                return Err(anyhow::anyhow!(
                    "the storage process at {} did not answer in {} s: {e}",
                    storage,
                    STORAGE_WAIT_MAX.as_secs()
                ))
            }
        }
    };
    let db = weft_frontend_pgwire::new_db(
        Arc::new(RemoteStorage::new(peer)),
        Arc::new(commits),
        session.limits(),
        session.memory(),
        entropy.clone(),
    );
    db.set_version_retention(Duration::from_secs(session.version_retention_s));
    db.set_idle_in_transaction_timeout_max(Duration::from_millis(
        session.idle_in_transaction_session_timeout_ms,
    ));
    db.set_max_connections(session.max_connections);
    db.set_message_bytes_max(session.message_bytes_max);
    db.set_require_tls(session.require_tls);
    db.set_connection_age_max(Duration::from_secs(session.connection_age_max_s));
    // Login tokens are signed with a key kept in the store, which a frontend does not
    // reach: passwords (SCRAM) and trust work, tokens do not.
    let auth =
        AuthConfig::new(session.auth, &session.users, &entropy).map_err(anyhow::Error::msg)?;
    db.set_auth(auth);

    let listener = TcpListener::bind(&session.listen)
        .await
        .with_context(|| format!("listening on {}", session.listen))?;
    tracing::info!(
        listen = %session.listen,
        storage = %storage,
        epoch = status.epoch,
        tls = if tls.is_none() { "off" } else if session.tls_cert.is_some() { "on" } else { "on (self-signed)" },
        auth = session.auth_description(),
        "frontend: accepting PostgreSQL connections"
    );
    if let Some(addr) = &session.metrics_listen {
        let l = TcpListener::bind(addr)
            .await
            .with_context(|| format!("listening for metrics on {addr}"))?;
        let mut registry = prometheus_client::registry::Registry::default();
        db.metrics.register(&mut registry);
        registry.register_collector(Box::new(weft::metrics::SessionGauges { db: db.clone() }));
        tracing::info!(listen = %l.local_addr()?, "metrics: serving /metrics");
        tokio::spawn(weft::metrics::serve(l, Arc::new(registry)));
    }
    let server = weft_frontend_pgwire::server::serve(db, listener, tls);
    tokio::select! {
        r = server => r.context("listener failed")?,
        _ = crate::serve::shutdown_signal() => tracing::info!("shutting down"),
    }
    Ok(())
}

/// The leader's RPC address, once there is a leader (bounded by [`STORAGE_WAIT_MAX`]).
async fn wait_for_leader(etcd: &weft::coord::etcd::Etcd, cluster: &str) -> anyhow::Result<String> {
    let deadline = tokio::time::Instant::now() + STORAGE_WAIT_MAX;
    loop {
        match crate::cluster::leader_rpc(etcd, cluster).await {
            Ok(Some(addr)) => return Ok(addr),
            Ok(None) => tracing::info!(cluster, "frontend: no leader in etcd yet; waiting"),
            Err(e) => tracing::info!(error = %e, "frontend: waiting for etcd"),
        }
        if tokio::time::Instant::now() >= deadline {
            anyhow::bail!(
                "no leader of cluster {cluster} in etcd at {} after {} s",
                etcd.url(),
                STORAGE_WAIT_MAX.as_secs()
            );
        }
        tokio::time::sleep(weft::coord::election::POLL_INTERVAL).await;
    }
}

/// Sends calls wherever etcd says the leader is, for the life of the process.
async fn follow_leader(
    etcd: weft::coord::etcd::Etcd,
    cluster: String,
    peer: Arc<weft_rpc::peer::Peer>,
) {
    loop {
        match crate::cluster::leader_rpc(&etcd, &cluster).await {
            Ok(Some(addr)) => peer.switch_to(&addr),
            Ok(None) => {}
            Err(e) => tracing::debug!(error = %e, "frontend: etcd did not answer"),
        }
        tokio::time::sleep(weft::coord::election::POLL_INTERVAL).await;
    }
}
