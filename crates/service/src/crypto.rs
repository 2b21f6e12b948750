//! Sealing of sensitive fields (ID numbers, phones): AES-256-GCM for the
//! value and a keyed HMAC-SHA256 blind index for exact-match lookup. Two
//! sub-keys are derived from the one configured secret, so the index key can
//! never decrypt and the encryption key never appears in an index.

use aes_gcm::aead::{Aead, KeyInit};
use aes_gcm::{Aes256Gcm, Nonce};
use epigrid_store::SealedField;
use hmac::{Hmac, Mac};
use secrecy::{ExposeSecret, SecretBox};
use sha2::Sha256;

const NONCE_LEN: usize = 12;

/// The master secret: 32 bytes, given as 64 hex characters.
pub struct SecretKey(SecretBox<[u8; 32]>);

impl std::fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretKey([REDACTED])")
    }
}

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("the secret key must be 64 hexadecimal characters (32 bytes)")]
    Format,
}

impl SecretKey {
    pub fn from_hex(text: &str) -> Result<Self, KeyError> {
        let bytes = hex::decode(text.trim()).map_err(|_| KeyError::Format)?;
        let array: [u8; 32] = bytes.try_into().map_err(|_| KeyError::Format)?;
        Ok(Self(SecretBox::new(Box::new(array))))
    }

    /// A fresh random key, as hex, for `demo` and first-time setup.
    pub fn generate_hex() -> String {
        hex::encode(rand::random::<[u8; 32]>())
    }

    fn derive(&self, purpose: &[u8]) -> [u8; 32] {
        let mut mac = <Hmac<Sha256> as hmac::KeyInit>::new_from_slice(self.0.expose_secret())
            .expect("HMAC takes any key length");
        mac.update(purpose);
        mac.finalize().into_bytes().into()
    }
}

#[derive(Clone)]
pub struct FieldCipher {
    aead: Aes256Gcm,
    blind_key: [u8; 32],
}

impl std::fmt::Debug for FieldCipher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("FieldCipher([REDACTED])")
    }
}

#[derive(Debug, thiserror::Error)]
#[error("a sealed field could not be opened: wrong key or corrupted data")]
pub struct OpenError;

impl FieldCipher {
    pub fn new(key: &SecretKey) -> Self {
        let enc_key = key.derive(b"epigrid field encryption v1");
        Self {
            aead: <Aes256Gcm as KeyInit>::new(&enc_key.into()),
            blind_key: key.derive(b"epigrid blind index v1"),
        }
    }

    /// The blind index of a lookup key. The field name is mixed in so that
    /// equal strings in different fields do not share an index value.
    pub fn blind_index(&self, field: &str, value: &str) -> Vec<u8> {
        let mut mac = <Hmac<Sha256> as hmac::KeyInit>::new_from_slice(&self.blind_key)
            .expect("HMAC takes any key length");
        mac.update(field.as_bytes());
        mac.update(&[0]);
        mac.update(value.as_bytes());
        mac.finalize().into_bytes().to_vec()
    }

    /// Seals `value`, indexing it by `lookup_key` (usually the value itself).
    pub fn seal(&self, field: &str, value: &str, lookup_key: &str) -> SealedField {
        let nonce_bytes: [u8; NONCE_LEN] = rand::random();
        let nonce = Nonce::from(nonce_bytes);
        let mut ciphertext = nonce_bytes.to_vec();
        ciphertext.extend(
            self.aead
                .encrypt(&nonce, value.as_bytes())
                .expect("AES-GCM encryption of a short field cannot fail"),
        );
        SealedField { ciphertext, blind_index: self.blind_index(field, lookup_key) }
    }

    pub fn open(&self, sealed: &SealedField) -> Result<String, OpenError> {
        if sealed.ciphertext.len() <= NONCE_LEN {
            return Err(OpenError);
        }
        let (nonce, body) = sealed.ciphertext.split_at(NONCE_LEN);
        let nonce: [u8; NONCE_LEN] = nonce.try_into().map_err(|_| OpenError)?;
        let plain = self.aead.decrypt(&Nonce::from(nonce), body).map_err(|_| OpenError)?;
        String::from_utf8(plain).map_err(|_| OpenError)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cipher() -> FieldCipher {
        FieldCipher::new(&SecretKey::from_hex(&"ab".repeat(32)).unwrap())
    }

    #[test]
    fn seal_round_trips_and_hides_the_value() {
        let c = cipher();
        let sealed = c.seal("id", "11010519491231002X", "11010519491231002X");
        assert_eq!(c.open(&sealed).unwrap(), "11010519491231002X");
        let haystack = String::from_utf8_lossy(&sealed.ciphertext);
        assert!(!haystack.contains("1101051949"));
        // A fresh nonce each time: equal values give different ciphertexts
        // but the same blind index.
        let again = c.seal("id", "11010519491231002X", "11010519491231002X");
        assert_ne!(again.ciphertext, sealed.ciphertext);
        assert_eq!(again.blind_index, sealed.blind_index);
        assert_ne!(c.blind_index("phone", "x"), c.blind_index("id", "x"));
    }

    #[test]
    fn another_key_cannot_open_or_match() {
        let sealed = cipher().seal("phone", "13800138000", "13800138000");
        let other = FieldCipher::new(&SecretKey::from_hex(&"cd".repeat(32)).unwrap());
        assert!(other.open(&sealed).is_err());
        assert_ne!(other.blind_index("phone", "13800138000"), sealed.blind_index);
    }

    #[test]
    fn bad_keys_are_rejected() {
        assert!(SecretKey::from_hex("abc").is_err());
        assert!(SecretKey::from_hex(&"zz".repeat(32)).is_err());
        assert_eq!(SecretKey::generate_hex().len(), 64);
    }
}
