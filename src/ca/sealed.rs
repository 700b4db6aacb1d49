//! Private keys at rest: AES-256-GCM under a key derived from the configured key-encryption key.
//! What is stored is `GWK1 | nonce | tag | ciphertext`, never a parseable key.

use openssl::pkey::{PKey, Private};
use openssl::rand::rand_bytes;
use openssl::symm::{Cipher, decrypt_aead, encrypt_aead};
use sha2::{Digest, Sha256};

use crate::config::Secret;

const MAGIC: &[u8; 4] = b"GWK1";
const AAD: &[u8] = b"hisp-gateway private key";

/// The derived AES key; deliberately without `Debug`.
#[derive(Clone)]
pub struct KeyEncryptionKey([u8; 32]);

impl KeyEncryptionKey {
    pub fn derive(secret: &Secret) -> Self {
        let mut h = Sha256::new();
        h.update(b"hisp-gateway key-encryption-key v1\0");
        h.update(secret.expose().as_bytes());
        Self(h.finalize().into())
    }

    pub fn seal(&self, key: &PKey<Private>) -> anyhow::Result<Vec<u8>> {
        self.seal_with(AAD, &key.private_key_to_der()?)
    }

    /// Seals other secrets we must be able to use again (credentials we present to vendors,
    /// webhook signing keys). `purpose` binds the ciphertext to its use.
    pub fn seal_bytes(&self, purpose: &str, data: &[u8]) -> anyhow::Result<Vec<u8>> {
        self.seal_with(purpose.as_bytes(), data)
    }

    pub fn open_bytes(&self, purpose: &str, sealed: &[u8]) -> anyhow::Result<Vec<u8>> {
        self.open_with(purpose.as_bytes(), sealed)
    }

    fn seal_with(&self, aad: &[u8], der: &[u8]) -> anyhow::Result<Vec<u8>> {
        let mut nonce = [0u8; 12];
        rand_bytes(&mut nonce)?;
        let mut tag = [0u8; 16];
        let ct = encrypt_aead(
            Cipher::aes_256_gcm(),
            &self.0,
            Some(&nonce),
            aad,
            der,
            &mut tag,
        )?;
        Ok([MAGIC.as_slice(), &nonce, &tag, &ct].concat())
    }

    pub fn open(&self, sealed: &[u8]) -> anyhow::Result<PKey<Private>> {
        let der = self.open_with(AAD, sealed)?;
        Ok(PKey::private_key_from_der(&der)?)
    }

    fn open_with(&self, aad: &[u8], sealed: &[u8]) -> anyhow::Result<Vec<u8>> {
        anyhow::ensure!(
            sealed.len() > 32 && &sealed[..4] == MAGIC,
            "not a sealed key"
        );
        let (nonce, rest) = sealed[4..].split_at(12);
        let (tag, ct) = rest.split_at(16);
        decrypt_aead(Cipher::aes_256_gcm(), &self.0, Some(nonce), aad, ct, tag).map_err(|_| {
            anyhow::anyhow!("a sealed secret cannot be decrypted: the key-encryption key (ca.key_encryption_key) is not the one it was sealed with")
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use openssl::rsa::Rsa;

    #[test]
    fn sealed_keys_open_only_with_their_kek_and_do_not_parse() {
        let key = PKey::from_rsa(Rsa::generate(2048).unwrap()).unwrap();
        let kek = KeyEncryptionKey::derive(&Secret::new("correct horse battery staple 123"));
        let sealed = kek.seal(&key).unwrap();
        assert!(PKey::private_key_from_der(&sealed).is_err());
        assert!(PKey::private_key_from_der(&sealed[4..]).is_err());
        let opened = kek.open(&sealed).unwrap();
        assert!(opened.public_eq(&key));
        let other = KeyEncryptionKey::derive(&Secret::new("another key entirely, also long"));
        assert!(
            other
                .open(&sealed)
                .unwrap_err()
                .to_string()
                .contains("key-encryption key")
        );
    }
}
