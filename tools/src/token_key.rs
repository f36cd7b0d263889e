//! The cluster's token key ([`weft_frontend_pgwire::catalog::tokens`]): 32 random bytes at
//! `clusters/<cluster>/keys/token`, made by the first node (or `weft token`) that finds
//! none. A conditional put decides the race between two makers; both then read the one
//! that landed.

use bytes::Bytes;
use object_store::path::Path;
use weft_engine::objstore::{Created, DurableStore};
use weft_engine::Entropy;
use weft_frontend_pgwire::catalog::tokens::TokenKey;

fn path(cluster: &str) -> Path {
    Path::from(format!("clusters/{cluster}/keys/token"))
}

/// The cluster's token key, made now if the cluster has none.
pub async fn load_or_create(
    store: &DurableStore,
    cluster: &str,
    entropy: &Entropy,
) -> anyhow::Result<TokenKey> {
    let at = path(cluster);
    if let Some(bytes) = store.get_opt(&at).await? {
        return parse(&bytes, &at);
    }
    let fresh: [u8; 32] = entropy.bytes();
    match store
        .put_create(&at, Bytes::copy_from_slice(&fresh))
        .await?
    {
        Created::Yes => Ok(TokenKey(fresh)),
        Created::AlreadyExists => parse(&store.get(&at).await?, &at),
    }
}

fn parse(bytes: &[u8], at: &Path) -> anyhow::Result<TokenKey> {
    let key: [u8; 32] = bytes
        .try_into()
        .map_err(|_| anyhow::anyhow!("the token key at {at} is {} bytes, not 32", bytes.len()))?;
    Ok(TokenKey(key))
}
