//! `weft token --role r --ttl 15m`: prints a login token for a role without a password
//! (see [`weft_frontend_pgwire::catalog::tokens`]), signed with the cluster's key from the
//! store, as DSQL's `generate-db-connect-auth-token` prints an IAM token.

use std::path::PathBuf;

use clap::Args;
use weft_engine::Clock;

#[derive(Args, Debug)]
pub struct TokenArgs {
    /// The role the token logs in as.
    #[arg(long)]
    pub role: String,
    /// How long the token is accepted: `900s`, `15m`, `1h`, `2d` (at most 7 days).
    #[arg(long, default_value = "15m")]
    pub ttl: String,
    /// Data directory of the cluster (as `weft serve --data`), used unless --store is given.
    #[arg(long, default_value = "./weft-data")]
    pub data: PathBuf,
    /// The cluster's S3-compatible store, `s3://bucket/prefix` (as `weft serve --store`).
    #[arg(long)]
    pub store: Option<String>,
    /// Cluster id (as `weft serve --cluster`).
    #[arg(long, default_value = "default")]
    pub cluster: String,
}

pub async fn run(args: TokenArgs) -> anyhow::Result<()> {
    let ttl =
        weft_frontend_pgwire::catalog::tokens::parse_ttl(&args.ttl).map_err(anyhow::Error::msg)?;
    let store = weft::store::open_store_at(&args.data, args.store.as_deref())?;
    let key =
        weft::token_key::load_or_create(&store, &args.cluster, &weft_engine::Entropy::from_os())
            .await?;
    let now_s = weft_engine::SystemClock::new(0).now().earliest / 1_000_000_000;
    let token =
        weft_frontend_pgwire::catalog::tokens::mint(&key, &args.role, now_s + ttl.as_secs());
    println!("{token}");
    Ok(())
}
