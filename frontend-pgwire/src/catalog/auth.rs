//! Password authentication's configuration and secrets.
//!
//! Roles can be configured at start (`--user NAME:PASSWORD`); those live in memory and
//! take precedence over the role table ([`crate::catalog::roles`]).
//!
//! Passwords are kept as SCRAM-SHA-256 verifiers, as PostgreSQL keeps them: a random salt,
//! the iteration count (4096, PostgreSQL's default), StoredKey and ServerKey. Neither the
//! password nor anything enough to log in with is stored; whoever reads a verifier can
//! still try to guess the password offline, as with PostgreSQL's.
//!
//! When a connection must authenticate is decided by [`AuthMode`]: by default loopback
//! connections are trusted and all others must give a password; `--auth scram` requires a
//! password from everyone; `--auth trust` from no one.

use std::collections::HashMap;
use std::num::NonZeroU32;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use serde::{Deserialize, Serialize};
use weft_engine::storage::segment::unhex;
use weft_engine::Entropy;

use crate::catalog::crypto::{constant_time_eq, hmac_sha256, sha256};

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

/// A role's SCRAM-SHA-256 verifier, as PostgreSQL stores it
/// (`SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>`, base64). StoredKey checks
/// a client's proof and ServerKey signs the server's answer; neither is enough to log in,
/// since a proof needs ClientKey, whose hash StoredKey is.
///
/// Roles written before verifiers were stored this way hold the salted password; they are
/// read into this form (see [`StoredSecret`]) and rewritten at the next start.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "StoredSecret", into = "StoredSecret")]
pub struct ScramSecret {
    pub iterations: usize,
    pub salt: Vec<u8>,
    pub stored_key: [u8; 32],
    pub server_key: [u8; 32],
    /// Read from the old form (the salted password): to be rewritten.
    pub legacy: bool,
}

impl std::fmt::Debug for ScramSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ScramSecret(..)")
    }
}

/// The serialized forms of a [`ScramSecret`]: PostgreSQL's verifier text, or the salted
/// password of roles written before it.
#[derive(Serialize, Deserialize)]
#[serde(untagged)]
enum StoredSecret {
    Verifier {
        scram: String,
    },
    SaltedPassword {
        iterations: usize,
        salt: String,
        salted_password: String,
    },
}

impl TryFrom<StoredSecret> for ScramSecret {
    type Error = String;
    fn try_from(s: StoredSecret) -> Result<ScramSecret, String> {
        match s {
            StoredSecret::Verifier { scram } => ScramSecret::parse(&scram)
                .ok_or_else(|| "a stored SCRAM verifier does not parse".to_string()),
            StoredSecret::SaltedPassword {
                iterations,
                salt,
                salted_password,
            } => {
                let (Some(salt), Some(salted)) = (unhex(&salt), unhex(&salted_password)) else {
                    return Err("a stored SCRAM secret is not hex".to_string());
                };
                let mut s = ScramSecret::from_salted(iterations, salt, &salted);
                s.legacy = true;
                Ok(s)
            }
        }
    }
}

impl From<ScramSecret> for StoredSecret {
    fn from(s: ScramSecret) -> StoredSecret {
        StoredSecret::Verifier {
            scram: s.verifier(),
        }
    }
}

impl ScramSecret {
    /// A verifier for `password` with a fresh salt from `entropy`.
    pub fn new(password: &str, entropy: &Entropy) -> ScramSecret {
        let salt: [u8; 16] = entropy.bytes();
        let salted = salted_password(password, &salt, SCRAM_ITERATIONS);
        ScramSecret::from_salted(SCRAM_ITERATIONS, salt.to_vec(), &salted)
    }

    /// The verifier of a salted password (RFC 5802: ClientKey = HMAC(SaltedPassword,
    /// "Client Key"), StoredKey = H(ClientKey), ServerKey = HMAC(SaltedPassword,
    /// "Server Key")).
    pub fn from_salted(iterations: usize, salt: Vec<u8>, salted: &[u8]) -> ScramSecret {
        ScramSecret {
            iterations,
            salt,
            stored_key: sha256(&hmac_sha256(salted, b"Client Key")),
            server_key: hmac_sha256(salted, b"Server Key"),
            legacy: false,
        }
    }

    /// PostgreSQL's text form, as `pg_authid.rolpassword` shows it.
    pub fn verifier(&self) -> String {
        format!(
            "SCRAM-SHA-256${}:{}${}:{}",
            self.iterations,
            STANDARD.encode(&self.salt),
            STANDARD.encode(self.stored_key),
            STANDARD.encode(self.server_key)
        )
    }

    /// A verifier in PostgreSQL's text form (what `CREATE ROLE ... PASSWORD
    /// 'SCRAM-SHA-256$...'` and pg_dumpall give).
    pub fn parse(text: &str) -> Option<ScramSecret> {
        let rest = text.strip_prefix("SCRAM-SHA-256$")?;
        let (params, keys) = rest.split_once('$')?;
        let (iterations, salt) = params.split_once(':')?;
        let (stored, server) = keys.split_once(':')?;
        let iterations: usize = iterations.parse().ok().filter(|i| *i >= 1)?;
        let salt = STANDARD.decode(salt).ok().filter(|s| !s.is_empty())?;
        let stored_key = STANDARD.decode(stored).ok()?.try_into().ok()?;
        let server_key = STANDARD.decode(server).ok()?.try_into().ok()?;
        Some(ScramSecret {
            iterations,
            salt,
            stored_key,
            server_key,
            legacy: false,
        })
    }

    /// Whether `password` is this verifier's (for a password sent in clear text, over TLS).
    pub fn matches_password(&self, password: &str) -> bool {
        let salted = salted_password(password, &self.salt, self.iterations);
        let stored = sha256(&hmac_sha256(&salted, b"Client Key"));
        constant_time_eq(&stored, &self.stored_key)
    }
}

/// Authentication as configured at start.
#[derive(Debug, Default)]
pub struct AuthConfig {
    pub mode: AuthMode,
    /// Roles configured at start (`--user NAME:PASSWORD`).
    pub users: HashMap<String, ScramSecret>,
    /// The cluster's token key, for roles that log in with tokens (none: no token is
    /// accepted).
    pub tokens: Option<TokenVerifier>,
}

/// Checks login tokens ([`crate::catalog::tokens`]) with the cluster's key and the node's
/// clock.
pub struct TokenVerifier {
    pub key: crate::catalog::tokens::TokenKey,
    pub clock: std::sync::Arc<dyn weft_engine::Clock>,
}

impl std::fmt::Debug for TokenVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TokenVerifier(..)")
    }
}

impl TokenVerifier {
    /// `token` as the password of `role`, now. The clock's latest bound decides expiry:
    /// a token that may have expired has.
    pub fn verify(
        &self,
        token: &str,
        role: &str,
    ) -> Result<(), crate::catalog::tokens::TokenError> {
        let now_s = self.clock.now().latest / 1_000_000_000;
        crate::catalog::tokens::verify(&self.key, token, role, now_s)
    }
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
        Ok(AuthConfig {
            mode,
            users: map,
            tokens: None,
        })
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verifiers_round_trip_in_postgresqls_form() {
        let s = ScramSecret::from_salted(4096, b"saltsaltsaltsalt".to_vec(), &[9u8; 32]);
        let text = s.verifier();
        assert!(
            text.starts_with("SCRAM-SHA-256$4096:c2FsdHNhbHRzYWx0c2FsdA==$"),
            "{text}"
        );
        assert_eq!(ScramSecret::parse(&text), Some(s.clone()));
        // Stored as the verifier text.
        let json = serde_json::to_string(&s).unwrap();
        assert_eq!(json, format!("{{\"scram\":\"{text}\"}}"));
        assert_eq!(serde_json::from_str::<ScramSecret>(&json).unwrap(), s);
        for bad in [
            "SCRAM-SHA-256$4096:c2FsdA==$a:b",
            "SCRAM-SHA-256$0:c2FsdA==$AAAA:AAAA",
            "SCRAM-SHA-256$4096:$AAAA:AAAA",
            "md5abc",
        ] {
            assert_eq!(ScramSecret::parse(bad), None, "{bad}");
        }
    }

    /// Roles written before verifiers were stored hold the salted password: they read as
    /// the same verifier, marked for rewriting, and the password still matches.
    #[test]
    fn the_old_stored_form_reads_as_a_verifier() {
        let salted = salted_password("pw", b"0123456789abcdef", 4096);
        let old = format!(
            "{{\"iterations\":4096,\"salt\":\"{}\",\"salted_password\":\"{}\"}}",
            weft_engine::storage::segment::hex(b"0123456789abcdef"),
            weft_engine::storage::segment::hex(&salted)
        );
        let s: ScramSecret = serde_json::from_str(&old).unwrap();
        assert!(s.legacy);
        assert!(s.matches_password("pw"));
        assert!(!s.matches_password("pW"));
        let rewritten = serde_json::to_string(&s).unwrap();
        assert!(!rewritten.contains(&weft_engine::storage::segment::hex(&salted)));
        let again: ScramSecret = serde_json::from_str(&rewritten).unwrap();
        assert!(!again.legacy);
        assert_eq!(again.stored_key, s.stored_key);
    }
}
