//! The few cryptographic steps authentication needs, over `ring`: SHA-256, HMAC-SHA-256
//! (SCRAM's arithmetic and the login tokens' signatures) and a comparison of secrets in
//! constant time.

/// Whether two byte strings are equal, in time that depends only on their lengths (a
/// comparison of secrets must not tell how much of them matched).
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len()
        && std::hint::black_box(a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y))) == 0
}

/// HMAC-SHA-256.
pub fn hmac_sha256(key: &[u8], data: &[u8]) -> [u8; 32] {
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, key);
    let tag = ring::hmac::sign(&key, data);
    tag.as_ref().try_into().expect("SHA-256 is 32 bytes")
}

/// SHA-256.
pub fn sha256(data: &[u8]) -> [u8; 32] {
    ring::digest::digest(&ring::digest::SHA256, data)
        .as_ref()
        .try_into()
        .expect("SHA-256 is 32 bytes")
}
