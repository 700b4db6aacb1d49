//! Certificates and private keys parsed once per process.
//!
//! The Direct transport reads the same few certificates (anchors, our CA, peers') and keys
//! (each sender's, each recipient's) for every message. OpenSSL 3 decodes a key through its
//! provider machinery, about a millisecond each and under global locks; the transport
//! benchmark found a sixth of a message's CPU spent parsing what it had parsed a moment before.
//! Entries are keyed by a hash of the stored bytes, so a changed certificate or key is a new
//! entry and never a stale one. Unsealed keys stay in memory as long as the process uses them
//! (they are unsealed for every use anyway); both maps start over when full.

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};

use openssl::pkey::{PKey, Private};
use openssl::x509::X509;

/// Entries of each map at most.
const MAX_ENTRIES: usize = 4096;

type Digest = [u8; 32];

fn certs() -> &'static Mutex<HashMap<Digest, X509>> {
    static CERTS: OnceLock<Mutex<HashMap<Digest, X509>>> = OnceLock::new();
    CERTS.get_or_init(Mutex::default)
}

fn keys() -> &'static Mutex<HashMap<Digest, PKey<Private>>> {
    static KEYS: OnceLock<Mutex<HashMap<Digest, PKey<Private>>>> = OnceLock::new();
    KEYS.get_or_init(Mutex::default)
}

fn remember<V: Clone>(map: &Mutex<HashMap<Digest, V>>, k: Digest, v: &V) {
    let mut m = map.lock().expect("parse cache lock");
    if m.len() >= MAX_ENTRIES {
        m.clear();
    }
    m.insert(k, v.clone());
}

/// `X509::from_der`, once per distinct certificate.
pub fn certificate(der: &[u8]) -> Result<X509, openssl::error::ErrorStack> {
    let k = *blake3::hash(der).as_bytes();
    if let Some(c) = certs().lock().expect("parse cache lock").get(&k) {
        return Ok(c.clone());
    }
    let c = X509::from_der(der)?;
    remember(certs(), k, &c);
    Ok(c)
}

/// The key `sealed` holds, opened by `open` the first time only.
pub fn key(
    sealed: &[u8],
    open: impl FnOnce() -> anyhow::Result<PKey<Private>>,
) -> anyhow::Result<PKey<Private>> {
    let k = *blake3::hash(sealed).as_bytes();
    if let Some(key) = keys().lock().expect("parse cache lock").get(&k) {
        return Ok(key.clone());
    }
    let key = open()?;
    remember(keys(), k, &key);
    Ok(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_is_opened_once_and_a_certificate_parsed_once() {
        let key = PKey::from_rsa(openssl::rsa::Rsa::generate(2048).unwrap()).unwrap();
        let mut opened = 0;
        for _ in 0..3 {
            let got = super::key(b"sealed bytes of one key", || {
                opened += 1;
                Ok(key.clone())
            })
            .unwrap();
            assert!(got.public_eq(&key));
        }
        assert_eq!(opened, 1);
        assert!(certificate(b"not a certificate").is_err());
    }
}
