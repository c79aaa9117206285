//! Identifiers, token secrets and their hashes, timestamps.

use sha2::{Digest, Sha256};

/// A new time-ordered id (UUID v7, 32 hex digits).
pub fn new_id() -> String {
    uuid::Uuid::now_v7().simple().to_string()
}

/// A new token secret: `hilt_` and 64 hex digits from two random (v4) UUIDs, 244 random bits.
pub fn new_secret() -> String {
    format!(
        "hilt_{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    )
}

/// What the store keeps of a token: its SHA-256, hex.
pub fn token_hash(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

/// Now as RFC 3339 UTC (`2026-12-02T17:00:00.123456Z`).
pub fn now() -> String {
    jiff::Timestamp::now().to_string()
}

/// Now as Unix milliseconds (lease deadlines).
pub fn now_ms() -> i64 {
    jiff::Timestamp::now().as_millisecond()
}

/// `now_ms` as RFC 3339.
pub fn ms_to_rfc3339(ms: i64) -> String {
    jiff::Timestamp::from_millisecond(ms)
        .map(|t| t.to_string())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    #[test]
    fn secrets_differ_and_hash_is_hex_sha256() {
        let (a, b) = (super::new_secret(), super::new_secret());
        assert_ne!(a, b);
        assert_eq!(a.len(), 5 + 64);
        assert_eq!(
            super::token_hash("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
