//! Keys derived from the server secret, one per purpose, so no key is ever used for two jobs.

use hkdf::Hkdf;
use sha2::Sha256;
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

#[cfg(test)]
mod tests {
    use super::*;

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
