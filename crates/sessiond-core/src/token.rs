//! Session tokens, their hashes, and public session ids.
//!
//! A [`SessionToken`] is the secret a client presents: 256 bits from the operating system's
//! CSPRNG, written as 43 characters of unpadded base64url. The store only ever sees its
//! [`TokenHash`] (SHA-256 of the token's bytes). A [`SessionId`] is a separate random public name
//! for the session, used in lists and admin calls and never accepted as a credential.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore as _;
use rand::rngs::OsRng;
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};
use std::fmt;
use subtle::ConstantTimeEq as _;

/// Bytes of randomness in a session token (256 bits).
pub const TOKEN_BYTES: usize = 32;
/// Length of a token in its base64url text form.
pub const TOKEN_CHARS: usize = 43;
/// Bytes of randomness in a public session id (128 bits).
pub const ID_BYTES: usize = 16;
/// Length of a session id in its base64url text form.
pub const ID_CHARS: usize = 22;

/// Why a presented token or id was refused. Never carries the token itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TokenError {
    /// The value has the wrong length.
    #[error("expected {expected} characters, got {got}")]
    Length {
        /// The length we accept.
        expected: usize,
        /// The length presented.
        got: usize,
    },
    /// The value is not unpadded base64url, or not in its canonical form.
    #[error("not canonical base64url")]
    Encoding,
}

fn random_bytes<const N: usize>() -> [u8; N] {
    let mut bytes = [0u8; N];
    OsRng.fill_bytes(&mut bytes);
    bytes
}

fn decode_exact<const N: usize>(text: &str, chars: usize) -> Result<[u8; N], TokenError> {
    if text.len() != chars {
        return Err(TokenError::Length { expected: chars, got: text.len() });
    }
    let mut out = [0u8; N];
    // Decoding into a slice of exactly N bytes also rejects non-canonical trailing bits
    // (the engine's default), so every token has exactly one accepted spelling.
    match URL_SAFE_NO_PAD.decode_slice(text.as_bytes(), &mut out) {
        Ok(n) if n == N => Ok(out),
        _ => Err(TokenError::Encoding),
    }
}

/// The secret credential of a session. Its `Debug` never shows the value.
#[derive(Clone)]
pub struct SessionToken([u8; TOKEN_BYTES]);

impl SessionToken {
    /// A fresh token from the operating system's CSPRNG.
    pub fn generate() -> Self {
        Self(random_bytes())
    }

    /// Parses a presented token; anything but 43 canonical base64url characters is refused.
    ///
    /// # Errors
    /// [`TokenError`] when the length or the encoding is wrong.
    pub fn parse(text: &str) -> Result<Self, TokenError> {
        decode_exact(text, TOKEN_CHARS).map(Self)
    }

    /// The SHA-256 of the token, the only form the store keeps.
    pub fn hash(&self) -> TokenHash {
        TokenHash(Sha256::digest(self.0).into())
    }

    /// The token as sent to the client. Only ever written into a cookie or a response body.
    pub fn expose(&self) -> String {
        URL_SAFE_NO_PAD.encode(self.0)
    }
}

impl fmt::Debug for SessionToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SessionToken([redacted])")
    }
}

/// SHA-256 of a [`SessionToken`]: the key of a session at rest.
#[derive(Clone, Copy, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct TokenHash(pub [u8; 32]);

impl TokenHash {
    /// The raw hash bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

// Equality on hashes of secrets is constant time, so lookups that compare them leak nothing.
impl PartialEq for TokenHash {
    fn eq(&self, other: &Self) -> bool {
        self.0.ct_eq(&other.0).into()
    }
}
impl Eq for TokenHash {}

impl std::hash::Hash for TokenHash {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.0.hash(state);
    }
}

impl fmt::Debug for TokenHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // A prefix is enough to tell hashes apart in a test failure and reveals nothing usable.
        write!(f, "TokenHash({:02x}{:02x}{:02x}{:02x}…)", self.0[0], self.0[1], self.0[2], self.0[3])
    }
}

/// The public name of a session: random, 128 bits, never a credential.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct SessionId(String);

impl SessionId {
    /// A fresh random id.
    pub fn generate() -> Self {
        Self(URL_SAFE_NO_PAD.encode(random_bytes::<ID_BYTES>()))
    }

    /// Parses an id from a URL or a command line.
    ///
    /// # Errors
    /// [`TokenError`] when it is not 22 canonical base64url characters.
    pub fn parse(text: &str) -> Result<Self, TokenError> {
        decode_exact::<ID_BYTES>(text, ID_CHARS).map(|_| Self(text.to_owned()))
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for SessionId {
    type Error = TokenError;
    fn try_from(s: String) -> Result<Self, TokenError> {
        Self::parse(&s)
    }
}

impl From<SessionId> for String {
    fn from(id: SessionId) -> String {
        id.0
    }
}

impl fmt::Display for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SessionId({})", self.0)
    }
}

/// Compares two secrets in time independent of where they differ.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.ct_eq(b).into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn generated_tokens_are_43_chars_and_differ() {
        let a = SessionToken::generate();
        let b = SessionToken::generate();
        assert_eq!(a.expose().len(), TOKEN_CHARS);
        assert_ne!(a.expose(), b.expose());
        assert_ne!(a.hash(), b.hash());
    }

    #[test]
    fn token_round_trips_and_hash_is_sha256_of_bytes() {
        let t = SessionToken::generate();
        let parsed = SessionToken::parse(&t.expose()).unwrap();
        assert_eq!(parsed.hash(), t.hash());
        let expected: [u8; 32] = Sha256::digest(URL_SAFE_NO_PAD.decode(t.expose()).unwrap()).into();
        assert_eq!(t.hash().0, expected);
    }

    #[test]
    fn malformed_tokens_are_refused() {
        let err = |s: &str| SessionToken::parse(s).map(|_| ()).unwrap_err();
        assert_eq!(err(""), TokenError::Length { expected: 43, got: 0 });
        assert_eq!(err(&"A".repeat(44)), TokenError::Length { expected: 43, got: 44 });
        assert_eq!(err(&"+".repeat(43)), TokenError::Encoding, "standard base64 is not base64url");
        assert_eq!(err(&format!("{}=", "A".repeat(42))), TokenError::Encoding);
        assert!(SessionToken::parse(&"é".repeat(21)).is_err());
        // The last character carries 2 spare bits; a set spare bit would be a second spelling.
        assert_eq!(err(&format!("{}B", "A".repeat(42))), TokenError::Encoding);
        assert!(SessionToken::parse(&format!("{}A", "A".repeat(42))).is_ok());
    }

    #[test]
    fn debug_never_shows_the_token() {
        let t = SessionToken::generate();
        assert!(!format!("{t:?}").contains(&t.expose()));
    }

    #[test]
    fn session_ids_parse_and_reject_tokens() {
        let id = SessionId::generate();
        assert_eq!(SessionId::parse(id.as_str()).unwrap(), id);
        assert!(SessionId::parse(&SessionToken::generate().expose()).is_err());
        assert!(serde_json::from_str::<SessionId>("\"../../etc\"").is_err());
    }

    proptest! {
        #[test]
        fn parse_never_panics(s in ".{0,64}") {
            let _ = SessionToken::parse(&s);
            let _ = SessionId::parse(&s);
        }
    }
}
