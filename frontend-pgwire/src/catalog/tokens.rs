//! Short-lived login tokens, as DSQL's IAM authentication tokens: `weft token --role r
//! --ttl 15m` prints a token signed with the cluster's token key, and a client gives it as
//! the password of role `r` until it expires. Checking one needs the key and a clock, never
//! the catalog.
//!
//! A token is `weft1.<role, base64url>.<expiry, Unix seconds>.<HMAC-SHA-256, base64url>`,
//! the HMAC taken over everything before its dot. A token is a bearer secret: whoever
//! holds it logs in as its role until it expires, so it is sent only over TLS (or
//! loopback), and its lifetime is bounded ([`TOKEN_TTL_MAX`]).
//!
//! A pure core: the key and the time are the caller's.

use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;

/// The longest a token may live (DSQL's IAM tokens: a week).
pub const TOKEN_TTL_MAX: Duration = Duration::from_secs(7 * 24 * 3600);

const PREFIX: &str = "weft1";

/// The cluster's token key: 32 random bytes kept in the object store beside the data
/// (whoever can read the store can read the data, and so may mint tokens).
#[derive(Clone)]
pub struct TokenKey(pub [u8; 32]);

impl std::fmt::Debug for TokenKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TokenKey(..)")
    }
}

/// Why a token was refused. The client sees 28P01 for each, as for a wrong password.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenError {
    /// Not a weft token at all (perhaps a password).
    NotAToken,
    /// The signature does not match: tampered with, or signed with another key.
    BadSignature,
    /// Signed for another role.
    WrongRole { token_role: String },
    /// Past its expiry.
    Expired { expired_unix_s: u64 },
}

impl std::fmt::Display for TokenError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TokenError::NotAToken => f.write_str("not a weft token"),
            TokenError::BadSignature => f.write_str("the token's signature does not match"),
            TokenError::WrongRole { token_role } => {
                write!(f, "the token is for role \"{token_role}\"")
            }
            TokenError::Expired { expired_unix_s } => {
                write!(f, "the token expired at {expired_unix_s} (Unix seconds)")
            }
        }
    }
}

fn sign(key: &TokenKey, payload: &str) -> String {
    URL_SAFE_NO_PAD.encode(crate::catalog::crypto::hmac_sha256(
        &key.0,
        payload.as_bytes(),
    ))
}

/// A token for `role` that expires at `expires_unix_s`.
pub fn mint(key: &TokenKey, role: &str, expires_unix_s: u64) -> String {
    let payload = format!(
        "{PREFIX}.{}.{expires_unix_s}",
        URL_SAFE_NO_PAD.encode(role.as_bytes())
    );
    let signature = sign(key, &payload);
    format!("{payload}.{signature}")
}

/// Checks `token` as the password of `role` at `now_unix_s`.
pub fn verify(key: &TokenKey, token: &str, role: &str, now_unix_s: u64) -> Result<(), TokenError> {
    let (payload, signature) = token.rsplit_once('.').ok_or(TokenError::NotAToken)?;
    let mut parts = payload.split('.');
    let (Some(PREFIX), Some(role_b64), Some(expires), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(TokenError::NotAToken);
    };
    let given = URL_SAFE_NO_PAD
        .decode(signature)
        .map_err(|_| TokenError::BadSignature)?;
    let expected = crate::catalog::crypto::hmac_sha256(&key.0, payload.as_bytes());
    if !crate::catalog::crypto::constant_time_eq(&given, &expected) {
        return Err(TokenError::BadSignature);
    }
    // Signed by the key: what follows was written by `mint`.
    let token_role = URL_SAFE_NO_PAD
        .decode(role_b64)
        .ok()
        .and_then(|r| String::from_utf8(r).ok())
        .ok_or(TokenError::BadSignature)?;
    let expires: u64 = expires.parse().map_err(|_| TokenError::BadSignature)?;
    if token_role != role {
        return Err(TokenError::WrongRole { token_role });
    }
    if now_unix_s >= expires {
        return Err(TokenError::Expired {
            expired_unix_s: expires,
        });
    }
    Ok(())
}

/// `15m`, `1h`, `900s`, `2d` or plain seconds: a token's lifetime, at most
/// [`TOKEN_TTL_MAX`].
pub fn parse_ttl(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let (number, unit) = match text.find(|c: char| !c.is_ascii_digit()) {
        Some(i) => text.split_at(i),
        None => (text, "s"),
    };
    let n: u64 = number
        .parse()
        .map_err(|_| format!("--ttl {text:?}: expected a number and a unit (s, m, h, d)"))?;
    let secs = match unit {
        "s" => n,
        "m" => n.saturating_mul(60),
        "h" => n.saturating_mul(3600),
        "d" => n.saturating_mul(86400),
        other => {
            return Err(format!(
                "--ttl {text:?}: unknown unit {other:?} (s, m, h, d)"
            ))
        }
    };
    let ttl = Duration::from_secs(secs);
    if ttl.is_zero() || ttl > TOKEN_TTL_MAX {
        return Err(format!(
            "--ttl {text:?}: a token lives between 1 second and {} days",
            TOKEN_TTL_MAX.as_secs() / 86400
        ));
    }
    Ok(ttl)
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: TokenKey = TokenKey([3u8; 32]);

    #[test]
    fn a_token_logs_in_its_role_until_it_expires() {
        let t = mint(&KEY, "app", 1_000);
        assert_eq!(verify(&KEY, &t, "app", 999), Ok(()));
        assert_eq!(
            verify(&KEY, &t, "app", 1_000),
            Err(TokenError::Expired {
                expired_unix_s: 1_000
            })
        );
        assert_eq!(
            verify(&KEY, &t, "admin", 10),
            Err(TokenError::WrongRole {
                token_role: "app".into()
            })
        );
    }

    #[test]
    fn a_changed_token_or_another_key_is_refused() {
        let t = mint(&KEY, "app", 1_000);
        // A later expiry, a role swapped in, a flipped signature character.
        let later = t.replace(".1000.", ".9000.");
        let admin = t.replace(
            &URL_SAFE_NO_PAD.encode("app"),
            &URL_SAFE_NO_PAD.encode("adm"),
        );
        let mut flipped = t.clone().into_bytes();
        let last = flipped.len() - 2;
        flipped[last] = if flipped[last] == b'A' { b'B' } else { b'A' };
        for bad in [later, admin, String::from_utf8(flipped).unwrap()] {
            assert_eq!(
                verify(&KEY, &bad, "app", 10),
                Err(TokenError::BadSignature),
                "{bad}"
            );
        }
        assert_eq!(
            verify(&TokenKey([4u8; 32]), &t, "app", 10),
            Err(TokenError::BadSignature)
        );
        for not in ["secret", "a.b.c.d.e", "weft1..", ""] {
            assert!(verify(&KEY, not, "app", 10).is_err(), "{not}");
        }
    }

    #[test]
    fn ttls_parse_with_units_and_are_bounded() {
        assert_eq!(parse_ttl("15m"), Ok(Duration::from_secs(900)));
        assert_eq!(parse_ttl("900"), Ok(Duration::from_secs(900)));
        assert_eq!(parse_ttl("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse_ttl("7d"), Ok(TOKEN_TTL_MAX));
        for bad in ["0s", "8d", "15x", "m", ""] {
            assert!(parse_ttl(bad).is_err(), "{bad}");
        }
    }
}
