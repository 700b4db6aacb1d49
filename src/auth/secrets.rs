//! Secret generation, argon2id hashing and keyed hashes. Hashing is CPU- and memory-heavy:
//! async callers use `hash_secret`/`verify_secret`, which go through `argon`'s bounded slots.

use argon2::Argon2;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::Sha256;

/// A new random secret: 32 bytes, URL-safe base64 (43 characters).
pub fn generate_secret() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// The argon2id PHC string of `secret`, with a fresh random salt.
pub fn hash_secret_sync(secret: &str) -> anyhow::Result<String> {
    Argon2::default()
        .hash_password(secret.as_bytes())
        .map(|h| h.to_string())
        .map_err(|e| anyhow::anyhow!("argon2 hashing failed: {e}"))
}

pub fn verify_secret_sync(secret: &str, phc: &str) -> bool {
    Argon2::default()
        .verify_password(secret.as_bytes(), phc)
        .is_ok()
}

/// The argon2id PHC string of `secret`, computed within the gateway's bound on argon2 work.
pub async fn hash_secret(secret: String) -> Result<String, super::argon::Busy> {
    super::argon::hash(secret).await
}

/// Whether `secret` matches `phc`, within the gateway's bound on argon2 work.
pub async fn verify_secret(secret: String, phc: String) -> Result<bool, super::argon::Busy> {
    super::argon::verify(secret, phc).await
}

/// HMAC-SHA256 of `value` under `key`, hex: lets us match a value without storing it.
/// `purpose` separates the uses of one key.
pub fn keyed_hash(key: &[u8], purpose: &str, value: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes any key length");
    mac.update(purpose.as_bytes());
    mac.update(b"\0");
    mac.update(value.as_bytes());
    hex(&mac.finalize().into_bytes())
}

pub fn sha256_hex(value: &[u8]) -> String {
    use sha2::Digest;
    hex(&Sha256::digest(value))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_are_argon2id_and_verify() {
        let s = generate_secret();
        assert_eq!(s.len(), 43);
        let h = hash_secret_sync(&s).unwrap();
        assert!(h.starts_with("$argon2id$"), "{h}");
        assert!(verify_secret_sync(&s, &h));
        assert!(!verify_secret_sync("wrong", &h));
        assert!(!verify_secret_sync(&s, "not a hash"));
    }

    #[test]
    fn keyed_hash_depends_on_key_and_purpose() {
        let a = keyed_hash(b"k1", "ssn", "1234");
        assert_eq!(a, keyed_hash(b"k1", "ssn", "1234"));
        assert_ne!(a, keyed_hash(b"k2", "ssn", "1234"));
        assert_ne!(a, keyed_hash(b"k1", "other", "1234"));
        assert!(!a.contains("1234"));
    }
}
