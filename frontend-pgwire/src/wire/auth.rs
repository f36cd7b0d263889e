//! The password of a role, for its SCRAM-SHA-256 exchange: a role configured at start
//! first, then the latest committed role definition.

use std::sync::Arc;

use async_trait::async_trait;
use pgwire::api::auth::{AuthSource, LoginInfo, Password};
use pgwire::error::{PgWireError, PgWireResult};
use weft_engine::storage::segment::unhex;

use crate::catalog::auth::SCRAM_ITERATIONS;
use crate::catalog::db::Db;
use crate::catalog::roles::lookup;

/// The SCRAM secret of the role logging in.
pub struct WeftAuthSource {
    pub db: Arc<Db>,
}

impl std::fmt::Debug for WeftAuthSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("WeftAuthSource")
    }
}

fn bad_password(user: &str) -> PgWireError {
    PgWireError::InvalidPassword(user.to_string())
}

#[async_trait]
impl AuthSource for WeftAuthSource {
    async fn get_password(&self, login: &LoginInfo) -> PgWireResult<Password> {
        let user = login.user().unwrap_or_default().to_string();
        let secret = match self.db.auth().users.get(&user) {
            Some(s) => Some(s.clone()),
            None => {
                let read_ts = self.db.adjudicator.read_ts();
                match lookup(&self.db, None, read_ts, &user).await {
                    Ok(Some(role)) if role.login => role.password,
                    Ok(_) => None,
                    Err(e) => {
                        tracing::warn!(user, error = %e, "reading a role for authentication");
                        None
                    }
                }
            }
        };
        // A missing role and a wrong password look the same to the client, as in
        // PostgreSQL; SCRAM still runs to the end with a secret nobody knows.
        let Some(secret) = secret else {
            return Ok(Password::new(
                Some(self.db.entropy.bytes::<16>().to_vec()),
                self.db.entropy.bytes::<32>().to_vec(),
            ));
        };
        let (Some(salt), Some(salted)) = (unhex(&secret.salt), unhex(&secret.salted_password))
        else {
            return Err(bad_password(&user));
        };
        if secret.iterations != SCRAM_ITERATIONS {
            return Err(bad_password(&user));
        }
        Ok(Password::new(Some(salt), salted))
    }
}

#[cfg(test)]
mod tests {
    /// weft's salted passwords are the ones pgwire's SCRAM exchange expects.
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
