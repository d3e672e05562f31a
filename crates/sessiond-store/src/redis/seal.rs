//! Sealing values at rest: XChaCha20-Poly1305 under a key derived from the server secret.
//!
//! A sealed value is `version (1 byte) | key id (4 bytes) | nonce (24 bytes) | ciphertext+tag`.
//! The key id is the first four bytes of SHA-256 of the key, so a value names the key that opens
//! it and the secret can be rotated: values sealed under the previous key still open, new
//! values are sealed under the current one. The associated data is the header plus the name of
//! the place the value is stored in, so a value copied to another key does not open there.

use chacha20poly1305::aead::{Aead, AeadCore, KeyInit, OsRng, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use sessiond_core::keys::DerivedKey;
use sha2::{Digest, Sha256};
use std::fmt;

/// The format version written in front of every sealed value.
const VERSION: u8 = 1;
const KEY_ID_LEN: usize = 4;
const NONCE_LEN: usize = 24;
const TAG_LEN: usize = 16;
const HEADER_LEN: usize = 1 + KEY_ID_LEN + NONCE_LEN;

/// The HKDF label of the at-rest key; a new label means a new, incompatible layout.
const PURPOSE: &str = "sessiond redis v1";

/// A key that seals what sessiond writes to Redis, derived from the server secret.
#[derive(Clone)]
pub struct RedisKey {
    cipher: XChaCha20Poly1305,
    id: [u8; KEY_ID_LEN],
}

impl RedisKey {
    /// Derives the at-rest key from the server secret (HKDF-SHA256, label `sessiond redis v1`).
    pub fn from_secret(secret: &[u8]) -> Self {
        let key = DerivedKey::derive(secret, PURPOSE);
        let digest = Sha256::digest(key.bytes());
        let mut id = [0u8; KEY_ID_LEN];
        id.copy_from_slice(&digest[..KEY_ID_LEN]);
        Self { cipher: XChaCha20Poly1305::new(key.bytes().into()), id }
    }

    /// The key id written into every value this key seals, in hex (safe to log).
    pub fn id(&self) -> String {
        hex(&self.id)
    }
}

impl fmt::Debug for RedisKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisKey").field("id", &self.id()).finish_non_exhaustive()
    }
}

/// The keys the Redis store seals and opens values with.
#[derive(Clone, Debug)]
pub struct RedisKeys {
    /// Seals every new value, and opens values sealed under it.
    pub current: RedisKey,
    /// Only opens values: those written before the secret was rotated.
    pub previous: Option<RedisKey>,
}

impl RedisKeys {
    /// Keys for a secret that has not been rotated.
    pub fn new(current: RedisKey) -> Self {
        Self { current, previous: None }
    }

    /// Also opens values sealed under `previous` (the secret before a rotation).
    #[must_use]
    pub fn with_previous(mut self, previous: RedisKey) -> Self {
        self.previous = Some(previous);
        self
    }

    /// Seals `plaintext` under the current key, bound to `place` (the key name it is stored at).
    pub(crate) fn seal(&self, place: &[u8], plaintext: &[u8]) -> Result<Vec<u8>, SealError> {
        let key = &self.current;
        let nonce = XChaCha20Poly1305::generate_nonce(&mut OsRng);
        let mut out = Vec::with_capacity(HEADER_LEN + plaintext.len() + TAG_LEN);
        out.push(VERSION);
        out.extend_from_slice(&key.id);
        out.extend_from_slice(&nonce);
        let aad = associated_data(&out[..1 + KEY_ID_LEN], place);
        let sealed =
            key.cipher.encrypt(&nonce, Payload { msg: plaintext, aad: &aad }).map_err(|_| SealError::TooLong)?;
        out.extend_from_slice(&sealed);
        Ok(out)
    }

    /// Opens a value read from `place`. Anything that was not sealed by one of our keys for
    /// exactly this place is an error, never a plaintext.
    pub(crate) fn open(&self, place: &[u8], value: &[u8]) -> Result<Opened, SealError> {
        if value.len() < HEADER_LEN + TAG_LEN {
            return Err(SealError::TooShort { len: value.len() });
        }
        let (header, ciphertext) = value.split_at(HEADER_LEN);
        if header[0] != VERSION {
            return Err(SealError::Version(header[0]));
        }
        let id = &header[1..1 + KEY_ID_LEN];
        let (key, by_previous) = if id == self.current.id {
            (&self.current, false)
        } else {
            match &self.previous {
                Some(previous) if id == previous.id => (previous, true),
                _ => return Err(SealError::UnknownKey(hex(id))),
            }
        };
        let nonce = XNonce::from_slice(&header[1 + KEY_ID_LEN..]);
        let aad = associated_data(&header[..1 + KEY_ID_LEN], place);
        let plaintext =
            key.cipher.decrypt(nonce, Payload { msg: ciphertext, aad: &aad }).map_err(|_| SealError::Forged)?;
        Ok(Opened { plaintext, by_previous })
    }
}

/// A value that opened.
#[derive(Debug)]
pub(crate) struct Opened {
    pub(crate) plaintext: Vec<u8>,
    /// Sealed under the previous key: a candidate for sealing again under the current one.
    pub(crate) by_previous: bool,
}

/// Why a stored value did not open. Every case means "not ours, or not intact": never trust it.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub(crate) enum SealError {
    #[error("value too short to be sealed ({len} bytes)")]
    TooShort { len: usize },
    #[error("unknown format version {0}")]
    Version(u8),
    #[error("sealed under unknown key id {0}")]
    UnknownKey(String),
    #[error("authentication failed (altered, or stored under another key)")]
    Forged,
    #[error("value too long to seal")]
    TooLong,
}

/// The header (version and key id) followed by the place: both are authenticated.
fn associated_data(header: &[u8], place: &[u8]) -> Vec<u8> {
    let mut aad = Vec::with_capacity(header.len() + place.len());
    aad.extend_from_slice(header);
    aad.extend_from_slice(place);
    aad
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes.iter().fold(String::with_capacity(bytes.len() * 2), |mut out, b| {
        let _ = write!(out, "{b:02x}");
        out
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &[u8] = b"0123456789abcdef0123456789abcdef";
    const OTHER: &[u8] = b"fedcba9876543210fedcba9876543210";

    fn keys() -> RedisKeys {
        RedisKeys::new(RedisKey::from_secret(SECRET))
    }

    #[test]
    fn sealed_value_opens_at_its_place_only() {
        let keys = keys();
        let sealed = keys.seal(b"sessiond:r:aa", b"hello").unwrap();
        let opened = keys.open(b"sessiond:r:aa", &sealed).unwrap();
        assert_eq!(opened.plaintext, b"hello");
        assert!(!opened.by_previous);
        assert_eq!(keys.open(b"sessiond:r:ab", &sealed).unwrap_err(), SealError::Forged);
    }

    #[test]
    fn layout_is_version_key_id_nonce_ciphertext() {
        let keys = keys();
        let sealed = keys.seal(b"p", b"hello").unwrap();
        assert_eq!(sealed.len(), 1 + 4 + 24 + 5 + 16);
        assert_eq!(sealed[0], 1);
        assert_eq!(hex(&sealed[1..5]), keys.current.id());
        assert!(!sealed.windows(5).any(|w| w == b"hello"), "plaintext visible");
        // A fresh nonce each time: the same plaintext never seals to the same bytes.
        assert_ne!(sealed, keys.seal(b"p", b"hello").unwrap());
    }

    #[test]
    fn every_flipped_byte_is_refused() {
        let keys = keys();
        let sealed = keys.seal(b"p", b"a session record").unwrap();
        for i in 0..sealed.len() {
            let mut bad = sealed.clone();
            bad[i] ^= 0x01;
            assert!(keys.open(b"p", &bad).is_err(), "byte {i} flipped and still opened");
        }
    }

    #[test]
    fn truncated_values_are_refused() {
        let keys = keys();
        let sealed = keys.seal(b"p", b"a session record").unwrap();
        for len in 0..sealed.len() {
            assert!(keys.open(b"p", &sealed[..len]).is_err(), "opened with {len} bytes");
        }
        assert_eq!(keys.open(b"p", b"").unwrap_err(), SealError::TooShort { len: 0 });
    }

    #[test]
    fn foreign_plain_values_are_refused() {
        let keys = keys();
        let plain = br#"{"user":"alice","email":"alice@example.com","token":"0123456789"}"#;
        assert!(matches!(keys.open(b"p", plain).unwrap_err(), SealError::Version(b'{')));
        let mut versioned = plain.to_vec();
        versioned[0] = 1;
        assert!(matches!(keys.open(b"p", &versioned).unwrap_err(), SealError::UnknownKey(_)));
    }

    #[test]
    fn rotation_opens_previous_values_and_seals_under_current() {
        let old = RedisKeys::new(RedisKey::from_secret(OTHER));
        let before = old.seal(b"p", b"old").unwrap();

        let rotated = RedisKeys::new(RedisKey::from_secret(SECRET)).with_previous(RedisKey::from_secret(OTHER));
        let opened = rotated.open(b"p", &before).unwrap();
        assert_eq!(opened.plaintext, b"old");
        assert!(opened.by_previous);

        let after = rotated.seal(b"p", b"new").unwrap();
        assert!(!rotated.open(b"p", &after).unwrap().by_previous);
        assert!(matches!(old.open(b"p", &after).unwrap_err(), SealError::UnknownKey(_)));
        // Once the previous secret is dropped, its values no longer open.
        assert!(matches!(keys().open(b"p", &before).unwrap_err(), SealError::UnknownKey(_)));
    }

    #[test]
    fn a_value_claiming_another_key_id_is_refused() {
        let keys = keys();
        let mut sealed = keys.seal(b"p", b"x").unwrap();
        sealed[1..5].copy_from_slice(&[0xde, 0xad, 0xbe, 0xef]);
        assert_eq!(keys.open(b"p", &sealed).unwrap_err(), SealError::UnknownKey("deadbeef".into()));
    }

    #[test]
    fn debug_shows_the_key_id_only() {
        let key = RedisKey::from_secret(SECRET);
        let shown = format!("{key:?}");
        assert!(shown.contains(&key.id()));
        assert_eq!(key.id().len(), 8);
        assert_ne!(key.id(), RedisKey::from_secret(OTHER).id());
    }
}
