//! Password authentication's configuration and secrets.
//!
//! Roles can be configured at start (`--user NAME:PASSWORD`); those live in memory and
//! take precedence over the role table ([`crate::catalog::roles`]).
//!
//! Passwords are kept as SCRAM-SHA-256 secrets: a random salt and the salted password
//! (PBKDF2-HMAC-SHA-256, 4096 iterations, PostgreSQL's default). The salted password is
//! what SCRAM's server side needs to check a proof; like PostgreSQL's stored keys it is a
//! password equivalent for SCRAM logins, so the data directory is to be protected as a
//! PostgreSQL one is. The cleartext password is never stored.
//!
//! When a connection must authenticate is decided by [`AuthMode`]: by default loopback
//! connections are trusted and all others must give a password; `--auth scram` requires a
//! password from everyone; `--auth trust` from no one.

use std::collections::HashMap;
use std::num::NonZeroU32;

use serde::{Deserialize, Serialize};
use weft_engine::storage::segment::hex;
use weft_engine::Entropy;

/// PBKDF2 iterations of every stored secret (PostgreSQL's `scram_iterations` default).
pub const SCRAM_ITERATIONS: usize = 4096;

/// Who must give a password.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AuthMode {
    /// Loopback connections are trusted; others authenticate with SCRAM-SHA-256.
    #[default]
    Default,
    /// Every connection authenticates with SCRAM-SHA-256.
    Scram,
    /// No connection authenticates (a trusted network).
    Trust,
}

impl AuthMode {
    pub fn parse(s: &str) -> Result<AuthMode, String> {
        match s {
            "default" | "loopback-trust" => Ok(AuthMode::Default),
            "scram" | "scram-sha-256" => Ok(AuthMode::Scram),
            "trust" => Ok(AuthMode::Trust),
            other => Err(format!(
                "unknown auth mode {other:?}: expected default, scram or trust"
            )),
        }
    }

    pub fn requires_password(self, peer: std::net::IpAddr) -> bool {
        match self {
            AuthMode::Trust => false,
            AuthMode::Scram => true,
            AuthMode::Default => !peer.is_loopback(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScramSecret {
    pub iterations: usize,
    /// Hex of the salt.
    pub salt: String,
    /// Hex of the salted password.
    pub salted_password: String,
}

impl ScramSecret {
    /// A secret for `password` with a fresh salt from `entropy`.
    pub fn new(password: &str, entropy: &Entropy) -> ScramSecret {
        let salt: [u8; 16] = entropy.bytes();
        let salted = salted_password(password, &salt, SCRAM_ITERATIONS);
        ScramSecret {
            iterations: SCRAM_ITERATIONS,
            salt: hex(&salt),
            salted_password: hex(&salted),
        }
    }
}

/// Authentication as configured at start.
#[derive(Debug, Default)]
pub struct AuthConfig {
    pub mode: AuthMode,
    /// Roles configured at start (`--user NAME:PASSWORD`).
    pub users: HashMap<String, ScramSecret>,
}

impl AuthConfig {
    /// `NAME:PASSWORD` pairs.
    pub fn new(mode: AuthMode, users: &[String], entropy: &Entropy) -> Result<AuthConfig, String> {
        let mut map = HashMap::new();
        for u in users {
            let Some((name, password)) = u.split_once(':') else {
                return Err(format!("--user {u:?}: expected NAME:PASSWORD"));
            };
            if name.is_empty() || password.is_empty() {
                return Err(format!("--user {u:?}: name and password must not be empty"));
            }
            map.insert(name.to_string(), ScramSecret::new(password, entropy));
        }
        Ok(AuthConfig { mode, users: map })
    }
}

/// SCRAM's SaltedPassword (RFC 5802): PBKDF2-HMAC-SHA-256 of the SASLprep-normalized
/// password (the password as given when it does not normalize, as PostgreSQL does).
pub fn salted_password(password: &str, salt: &[u8], iterations: usize) -> Vec<u8> {
    let normalized = stringprep::saslprep(password).unwrap_or(std::borrow::Cow::Borrowed(password));
    let mut out = [0u8; 32];
    let iterations = NonZeroU32::new(u32::try_from(iterations).unwrap_or(u32::MAX).max(1))
        .expect("at least one iteration");
    ring::pbkdf2::derive(
        ring::pbkdf2::PBKDF2_HMAC_SHA256,
        iterations,
        salt,
        normalized.as_bytes(),
        &mut out,
    );
    out.to_vec()
}
