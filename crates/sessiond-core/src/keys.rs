//! Keys derived from the server secret, one per purpose, so no key is ever used for two jobs, and
//! [`Sealer`], which encrypts small values under such a key with the key's id beside them, so
//! that values sealed under `secret_previous` still open after a rotation.

use chacha20poly1305::aead::{Aead as _, KeyInit as _, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use hkdf::Hkdf;
use rand::RngCore as _;
use sha2::{Digest as _, Sha256};
use std::fmt;

/// A 256-bit key derived from the secret for one purpose. Its `Debug` never shows it.
#[derive(Clone)]
pub struct DerivedKey([u8; 32]);

impl DerivedKey {
    /// Derives the key for `purpose` (an HKDF-SHA256 `info` label such as `"sessiond journey v1"`).
    pub fn derive(secret: &[u8], purpose: &str) -> Self {
        let mut key = [0u8; 32];
        // 32 bytes is far below HKDF-SHA256's output limit, so expansion cannot fail.
        let _ = Hkdf::<Sha256>::new(Some(b"sessiond"), secret).expand(purpose.as_bytes(), &mut key);
        Self(key)
    }

    /// The key bytes, for the primitive that uses them.
    pub fn bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl fmt::Debug for DerivedKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("DerivedKey([redacted])")
    }
}

/// Bytes of a sealed value's key id.
pub const KEY_ID_LEN: usize = 4;
const SEAL_VERSION: u8 = 1;
const NONCE_LEN: usize = 24;
const TAG_LEN: usize = 16;
/// What sealing adds to a plaintext: version, key id, nonce and tag.
pub const SEAL_OVERHEAD: usize = 1 + KEY_ID_LEN + NONCE_LEN + TAG_LEN;

/// Why a sealed value did not open. Deliberately coarse: the caller treats all of them as "not
/// ours", and the reasons are for logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SealError {
    /// Too short, or a version we never wrote.
    #[error("not a sealed value")]
    Malformed,
    /// Sealed under a key we do not hold (another secret, or one rotated out).
    #[error("sealed under an unknown key")]
    UnknownKey,
    /// The value or its associated data was altered, or it belongs elsewhere.
    #[error("seal does not verify")]
    Forged,
}

/// One key of a [`Sealer`], with its public id.
#[derive(Clone)]
struct SealKey {
    id: [u8; KEY_ID_LEN],
    cipher: XChaCha20Poly1305,
}

impl SealKey {
    fn new(secret: &[u8], purpose: &str) -> Self {
        let key = DerivedKey::derive(secret, purpose);
        let digest = Sha256::new().chain_update(b"sessiond key id\0").chain_update(key.bytes()).finalize();
        let mut id = [0u8; KEY_ID_LEN];
        id.copy_from_slice(&digest[..KEY_ID_LEN]);
        Self { id, cipher: XChaCha20Poly1305::new(key.bytes().into()) }
    }
}

/// Seals small values (XChaCha20-Poly1305) under a key derived from the secret for one purpose.
///
/// Layout: version (1 byte), key id (4), nonce (24), ciphertext and tag. Values seal under the
/// current secret and open under it or under the previous one, so a secret can be rotated
/// without ending what was sealed before. The associated data binds a value to where it belongs
/// (a realm, a key name): the same bytes presented elsewhere do not open.
#[derive(Clone)]
pub struct Sealer {
    current: SealKey,
    previous: Option<SealKey>,
}

impl fmt::Debug for Sealer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sealer").field("previous", &self.previous.is_some()).finish_non_exhaustive()
    }
}

impl Sealer {
    /// A sealer for `purpose` under `secret`, also opening values sealed under `previous`.
    pub fn new(purpose: &str, secret: &[u8], previous: Option<&[u8]>) -> Self {
        Self { current: SealKey::new(secret, purpose), previous: previous.map(|p| SealKey::new(p, purpose)) }
    }

    /// The id of the key new values are sealed under.
    pub fn current_key_id(&self) -> [u8; KEY_ID_LEN] {
        self.current.id
    }

    /// Seals `plaintext`, bound to `aad`.
    pub fn seal(&self, aad: &[u8], plaintext: &[u8]) -> Vec<u8> {
        let mut nonce = [0u8; NONCE_LEN];
        rand::rngs::OsRng.fill_bytes(&mut nonce);
        let mut out = Vec::with_capacity(SEAL_OVERHEAD + plaintext.len());
        out.push(SEAL_VERSION);
        out.extend_from_slice(&self.current.id);
        out.extend_from_slice(&nonce);
        // Encryption fails only past the cipher's length limit (256 GiB), far above anything we
        // seal; an empty ciphertext would then fail to open, never pass.
        let sealed = self.current.cipher.encrypt(XNonce::from_slice(&nonce), Payload { msg: plaintext, aad });
        out.extend_from_slice(&sealed.unwrap_or_default());
        out
    }

    /// Opens a value sealed by [`Sealer::seal`] with the same `aad`.
    ///
    /// # Errors
    /// [`SealError`] for anything that is not a value we sealed for `aad` under a key we hold.
    pub fn open(&self, aad: &[u8], sealed: &[u8]) -> Result<Vec<u8>, SealError> {
        if sealed.len() < SEAL_OVERHEAD || sealed[0] != SEAL_VERSION {
            return Err(SealError::Malformed);
        }
        let id = &sealed[1..1 + KEY_ID_LEN];
        let key = [Some(&self.current), self.previous.as_ref()]
            .into_iter()
            .flatten()
            .find(|k| k.id == id)
            .ok_or(SealError::UnknownKey)?;
        let nonce = XNonce::from_slice(&sealed[1 + KEY_ID_LEN..1 + KEY_ID_LEN + NONCE_LEN]);
        let msg = &sealed[1 + KEY_ID_LEN + NONCE_LEN..];
        key.cipher.decrypt(nonce, Payload { msg, aad }).map_err(|_| SealError::Forged)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn sealed_values_open_under_the_current_and_previous_secret_only() {
        let old: &[u8] = b"the old secret, thirty-two bytes long";
        let new: &[u8] = b"the new secret, thirty-two bytes long";
        let before = Sealer::new("test v1", old, None);
        let sealed = before.seal(b"here", b"value");
        assert_eq!(before.open(b"here", &sealed), Ok(b"value".to_vec()));
        assert_eq!(before.open(b"elsewhere", &sealed), Err(SealError::Forged));
        let rotated = Sealer::new("test v1", new, Some(old));
        assert_eq!(rotated.open(b"here", &sealed), Ok(b"value".to_vec()), "previous secret still opens");
        assert_ne!(rotated.current_key_id(), before.current_key_id());
        let resealed = rotated.seal(b"here", b"value");
        assert_eq!(before.open(b"here", &resealed), Err(SealError::UnknownKey));
        let after = Sealer::new("test v1", new, None);
        assert_eq!(after.open(b"here", &sealed), Err(SealError::UnknownKey), "rotated out");
        assert_eq!(Sealer::new("other v1", old, None).open(b"here", &sealed), Err(SealError::UnknownKey));
    }

    #[test]
    fn altered_and_short_values_do_not_open() {
        let sealer = Sealer::new("test v1", b"a secret of at least thirty-two bytes", None);
        let sealed = sealer.seal(b"", b"some plaintext");
        for i in 0..sealed.len() {
            let mut bad = sealed.clone();
            bad[i] ^= 0x01;
            assert!(sealer.open(b"", &bad).is_err(), "byte {i}");
        }
        for cut in 0..sealed.len() {
            assert!(sealer.open(b"", &sealed[..cut]).is_err(), "cut at {cut}");
        }
        assert_eq!(sealed.len(), SEAL_OVERHEAD + 14);
    }

    #[test]
    fn purposes_and_secrets_give_different_keys() {
        let a = DerivedKey::derive(b"0123456789abcdef0123456789abcdef", "one");
        let b = DerivedKey::derive(b"0123456789abcdef0123456789abcdef", "two");
        let c = DerivedKey::derive(b"0123456789abcdef0123456789abcdeX", "one");
        assert_ne!(a.bytes(), b.bytes());
        assert_ne!(a.bytes(), c.bytes());
        assert_eq!(a.bytes(), DerivedKey::derive(b"0123456789abcdef0123456789abcdef", "one").bytes());
        assert_eq!(format!("{a:?}"), "DerivedKey([redacted])");
    }
}
