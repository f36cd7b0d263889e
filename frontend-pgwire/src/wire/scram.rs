//! The server side of a SCRAM-SHA-256 exchange (RFC 5802, RFC 7677), checked against a
//! stored verifier: StoredKey and ServerKey, never the password or the salted password.
//!
//! A pure core: the caller draws the server's nonce and carries the [`Pending`] state from
//! the client's first message to its last. Channel binding (SCRAM-SHA-256-PLUS) is not
//! offered; a client that supports it says `y` and is accepted, as PostgreSQL does when it
//! does not offer it either.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;

use crate::catalog::auth::ScramSecret;
use crate::catalog::crypto::{constant_time_eq, hmac_sha256, sha256};

/// Why an exchange failed. Every variant ends the login with 28P01 (a malformed message
/// with 08P01), and the client learns no more than that.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScramError {
    /// A message that is not SCRAM's.
    Malformed(&'static str),
    /// The proof does not match the stored verifier.
    WrongProof,
}

impl std::fmt::Display for ScramError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ScramError::Malformed(what) => write!(f, "malformed SCRAM message: {what}"),
            ScramError::WrongProof => f.write_str("the SCRAM proof does not match"),
        }
    }
}

/// What the server remembers between its first message and the client's last.
#[derive(Debug, Clone)]
pub struct Pending {
    gs2_header: String,
    client_first_bare: String,
    server_first: String,
    nonce: String,
    stored_key: [u8; 32],
    server_key: [u8; 32],
}

/// The client's first message (`n,,n=user,r=nonce`): answers with the server's first
/// message (`r=nonce,s=salt,i=iterations`). `server_nonce` is printable and has no comma.
pub fn client_first(
    message: &[u8],
    secret: &ScramSecret,
    server_nonce: &str,
) -> Result<(String, Pending), ScramError> {
    let text = std::str::from_utf8(message).map_err(|_| ScramError::Malformed("not UTF-8"))?;
    // gs2-header = gs2-cbind-flag "," [authzid] ","
    let mut parts = text.splitn(3, ',');
    let flag = parts.next().unwrap_or_default();
    let authzid = parts.next().ok_or(ScramError::Malformed("no gs2 header"))?;
    let bare = parts.next().ok_or(ScramError::Malformed("no gs2 header"))?;
    match flag {
        "n" | "y" => {}
        f if f.starts_with("p=") => {
            return Err(ScramError::Malformed(
                "channel binding was not offered (SCRAM-SHA-256-PLUS)",
            ))
        }
        _ => return Err(ScramError::Malformed("bad channel-binding flag")),
    }
    if !(authzid.is_empty() || authzid.starts_with("a=")) {
        return Err(ScramError::Malformed("bad authzid"));
    }
    let mut client_nonce = None;
    for attr in bare.split(',') {
        if attr.starts_with("m=") {
            return Err(ScramError::Malformed(
                "mandatory extensions are not supported",
            ));
        }
        if let Some(n) = attr.strip_prefix("r=") {
            client_nonce = Some(n);
        }
    }
    let client_nonce = client_nonce
        .filter(|n| !n.is_empty())
        .ok_or(ScramError::Malformed("no nonce"))?;
    let nonce = format!("{client_nonce}{server_nonce}");
    let server_first = format!(
        "r={nonce},s={},i={}",
        STANDARD.encode(&secret.salt),
        secret.iterations
    );
    let pending = Pending {
        gs2_header: format!("{flag},{authzid},"),
        client_first_bare: bare.to_string(),
        server_first: server_first.clone(),
        nonce,
        stored_key: secret.stored_key,
        server_key: secret.server_key,
    };
    Ok((server_first, pending))
}

impl Pending {
    /// The client's final message (`c=...,r=...,p=proof`): checks the proof against
    /// StoredKey and answers with the server's signature (`v=...`), which proves to the
    /// client that the server holds ServerKey.
    pub fn client_final(&self, message: &[u8]) -> Result<String, ScramError> {
        let text = std::str::from_utf8(message).map_err(|_| ScramError::Malformed("not UTF-8"))?;
        let (without_proof, proof) = text
            .rsplit_once(",p=")
            .ok_or(ScramError::Malformed("no proof"))?;
        let mut binding = None;
        let mut nonce = None;
        for attr in without_proof.split(',') {
            if let Some(c) = attr.strip_prefix("c=") {
                binding = Some(c);
            } else if let Some(r) = attr.strip_prefix("r=") {
                nonce = Some(r);
            }
        }
        if binding != Some(STANDARD.encode(&self.gs2_header).as_str()) {
            return Err(ScramError::Malformed(
                "channel binding differs from the first message",
            ));
        }
        if nonce != Some(self.nonce.as_str()) {
            return Err(ScramError::Malformed("nonce differs from the server's"));
        }
        let proof = STANDARD
            .decode(proof)
            .map_err(|_| ScramError::Malformed("proof is not base64"))?;
        if proof.len() != 32 {
            return Err(ScramError::WrongProof);
        }
        let auth_message = format!(
            "{},{},{}",
            self.client_first_bare, self.server_first, without_proof
        );
        let signature = hmac_sha256(&self.stored_key, auth_message.as_bytes());
        let client_key: Vec<u8> = proof.iter().zip(signature).map(|(p, s)| p ^ s).collect();
        // Constant time: the comparison must not tell how much of the key matched.
        if !constant_time_eq(&sha256(&client_key), &self.stored_key) {
            return Err(ScramError::WrongProof);
        }
        let server_signature = hmac_sha256(&self.server_key, auth_message.as_bytes());
        Ok(format!("v={}", STANDARD.encode(server_signature)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::auth::salted_password;

    /// A client's side, from the salted password (as libpq computes it).
    fn client_proof(password: &str, pending: &Pending, without_proof: &str) -> String {
        let salted = salted_password(password, &[7u8; 16], 4096);
        let client_key = hmac_sha256(&salted, b"Client Key");
        let stored = sha256(&client_key);
        let auth = format!(
            "{},{},{}",
            pending.client_first_bare, pending.server_first, without_proof
        );
        let sig = hmac_sha256(&stored, auth.as_bytes());
        let proof: Vec<u8> = client_key.iter().zip(sig).map(|(a, b)| a ^ b).collect();
        STANDARD.encode(proof)
    }

    fn secret() -> ScramSecret {
        ScramSecret::from_salted(
            4096,
            vec![7u8; 16],
            &salted_password("pencil", &[7u8; 16], 4096),
        )
    }

    fn exchange(password: &str) -> Result<String, ScramError> {
        let (first, pending) = client_first(b"n,,n=,r=abc", &secret(), "XYZ").unwrap();
        assert_eq!(
            first,
            format!("r=abcXYZ,s={},i=4096", STANDARD.encode([7u8; 16]))
        );
        let without_proof = format!("c={},r=abcXYZ", STANDARD.encode("n,,"));
        let proof = client_proof(password, &pending, &without_proof);
        pending.client_final(format!("{without_proof},p={proof}").as_bytes())
    }

    #[test]
    fn the_right_password_is_accepted_and_the_server_proves_itself() {
        let reply = exchange("pencil").unwrap();
        // The client checks v= with ServerKey computed from the password.
        let salted = salted_password("pencil", &[7u8; 16], 4096);
        let server_key = hmac_sha256(&salted, b"Server Key");
        let (_, pending) = client_first(b"n,,n=,r=abc", &secret(), "XYZ").unwrap();
        let auth = format!(
            "{},{},c={},r=abcXYZ",
            pending.client_first_bare,
            pending.server_first,
            STANDARD.encode("n,,")
        );
        assert_eq!(
            reply,
            format!(
                "v={}",
                STANDARD.encode(hmac_sha256(&server_key, auth.as_bytes()))
            )
        );
    }

    #[test]
    fn a_wrong_password_is_refused() {
        assert_eq!(exchange("pen"), Err(ScramError::WrongProof));
    }

    #[test]
    fn a_proof_from_the_stored_verifier_alone_is_refused() {
        // Whoever reads StoredKey cannot make a proof: they would need ClientKey, whose
        // hash StoredKey is.
        let s = secret();
        let (_, pending) = client_first(b"n,,n=,r=abc", &s, "XYZ").unwrap();
        let without_proof = format!("c={},r=abcXYZ", STANDARD.encode("n,,"));
        let auth = format!(
            "{},{},{}",
            pending.client_first_bare, pending.server_first, without_proof
        );
        let sig = hmac_sha256(&s.stored_key, auth.as_bytes());
        let forged: Vec<u8> = s.stored_key.iter().zip(sig).map(|(a, b)| a ^ b).collect();
        let msg = format!("{without_proof},p={}", STANDARD.encode(forged));
        assert_eq!(
            pending.client_final(msg.as_bytes()),
            Err(ScramError::WrongProof)
        );
    }

    #[test]
    fn malformed_messages_are_refused() {
        let s = secret();
        for bad in [
            &b"x,,n=,r=a"[..],
            b"n,,n=",
            b"p=tls-server-end-point,,n=,r=a",
            b"\xff",
        ] {
            assert!(matches!(
                client_first(bad, &s, "N"),
                Err(ScramError::Malformed(_))
            ));
        }
        let (_, pending) = client_first(b"y,,n=,r=abc", &s, "XYZ").unwrap();
        // Wrong nonce, wrong binding, no proof.
        for bad in [
            format!("c={},r=abcXYQ,p=AAAA", STANDARD.encode("y,,")),
            format!("c={},r=abcXYZ,p=AAAA", STANDARD.encode("n,,")),
            format!("c={},r=abcXYZ", STANDARD.encode("y,,")),
        ] {
            assert!(matches!(
                pending.client_final(bad.as_bytes()),
                Err(ScramError::Malformed(_))
            ));
        }
    }
}
