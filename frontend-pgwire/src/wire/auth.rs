//! How a role proves who it is: its SCRAM-SHA-256 verifier (a role configured at start
//! first, then the latest committed role definition), or, for a role without a password,
//! a token ([`crate::catalog::tokens`]).

use std::sync::Arc;

use crate::catalog::auth::ScramSecret;
use crate::catalog::db::Db;
use crate::catalog::roles::lookup;

/// How the role logging in authenticates.
pub enum Method {
    /// SCRAM-SHA-256 against the role's verifier.
    Scram(ScramSecret),
    /// A password sent in clear text (over TLS or loopback), accepted only as a token of
    /// the role: roles without a password, and names that are no role's.
    Token,
}

/// The method for `user`. A role that does not exist, or may not log in, gets the token
/// method, as a role without a password does, so the server's first answer does not tell
/// which names are roles; the login then fails as a wrong password would.
pub async fn method(db: &Arc<Db>, user: &str) -> Method {
    if let Some(s) = db.auth().users.get(user) {
        return Method::Scram(s.clone());
    }
    let read_ts = db.adjudicator.read_ts();
    match lookup(db, None, read_ts, user).await {
        Ok(Some(role)) if role.login => match role.password {
            Some(secret) => Method::Scram(secret),
            None => Method::Token,
        },
        Ok(_) => Method::Token,
        Err(e) => {
            tracing::warn!(user, error = %e, "reading a role for authentication");
            Method::Token
        }
    }
}

/// Whether a role that exists and may log in is named `user` (a token names its role, and
/// the signature alone does not prove that the role still exists).
pub async fn may_log_in(db: &Arc<Db>, user: &str) -> bool {
    if user == crate::catalog::roles::BOOTSTRAP_ROLE_NAME || db.auth().users.contains_key(user) {
        return true;
    }
    let read_ts = db.adjudicator.read_ts();
    matches!(lookup(db, None, read_ts, user).await, Ok(Some(role)) if role.login)
}

#[cfg(test)]
mod tests {
    /// weft's salted passwords are the ones SCRAM clients compute.
    #[test]
    fn salted_password_is_scrams() {
        for (password, salt) in [
            ("secret", &b"0123456789abcdef"[..]),
            ("p\u{e4}ss word", b"salt"),
        ] {
            assert_eq!(
                crate::catalog::auth::salted_password(password, salt, 4096),
                pgwire::api::auth::sasl::scram::gen_salted_password(password, salt, 4096),
            );
        }
    }
}
