//! API tokens: long-lived bearer credentials for scripts and workers.
//!
//! An [`ApiToken`] is written `sdat_` followed by 43 characters of unpadded base64url (256 bits
//! from the operating system's CSPRNG, made like a [`SessionToken`]). The prefix tells it apart
//! from a session token when both arrive as `Authorization: Bearer …`, and lets secret scanners
//! recognise a leaked one. The store keeps only its [`TokenHash`] — the SHA-256 of the whole
//! token text, prefix included, so an API token never hashes like a session token — under the
//! key [`store_key`], with the [`ApiTokenRecord`] as JSON. The record has a public
//! [`ApiTokenId`] for lists and revocation, which is never accepted as a credential.
//!
//! ```
//! use sessiond_core::api_token::{ApiToken, ApiTokenError, store_key};
//!
//! let token = ApiToken::generate();
//! let text = token.expose(); // shown to its owner once, never stored
//! assert!(text.starts_with("sdat_") && text.len() == 48);
//! assert_eq!(store_key(&ApiToken::parse(&text).unwrap().hash()), store_key(&token.hash()));
//! assert!(ApiToken::claims(&text));
//! assert_eq!(ApiToken::parse("sdat_short").unwrap_err().to_string(), "malformed API token: expected 43 characters, got 5");
//! assert_eq!(ApiToken::parse("ghp_x").unwrap_err(), ApiTokenError::Prefix);
//! ```

use crate::duration::{DurationError, parse_duration};
use crate::time::Timestamp;
use crate::token::{SessionId, SessionToken, TokenError, TokenHash};
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};
use std::fmt;
use std::time::Duration;

/// What every API token starts with.
pub const PREFIX: &str = "sdat_";
/// Length of an API token: the prefix and 43 base64url characters.
pub const API_TOKEN_CHARS: usize = PREFIX.len() + crate::token::TOKEN_CHARS;
/// Longest token name, in characters.
pub const MAX_NAME_CHARS: usize = 64;
/// `last_used_at` is recorded at most this often per token, so using a token is not a store
/// write per request.
pub const LAST_USED_RESOLUTION: Duration = Duration::from_secs(60);
/// The longest lifetime a token may be given; without one it never expires.
pub const MAX_LIFETIME: Duration = Duration::from_secs(100 * 365 * 24 * 3600);
/// How many live tokens one user may hold in one realm.
pub const MAX_TOKENS_PER_USER: usize = 100;

/// Why a presented token, a name or a lifetime was refused. Never carries a token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ApiTokenError {
    /// The value does not start with [`PREFIX`].
    #[error("API tokens start with \"sdat_\"")]
    Prefix,
    /// The part after the prefix is not a canonical 43-character base64url value.
    #[error("malformed API token: {0}")]
    Malformed(TokenError),
    /// The token name breaks the rules of [`validate_name`].
    #[error("invalid token name: {0}")]
    Name(&'static str),
    /// The lifetime is not a duration, is zero, or is longer than [`MAX_LIFETIME`].
    #[error("invalid token lifetime: {0}")]
    Lifetime(String),
}

/// The secret of an API token. Its `Debug` never shows the value.
#[derive(Clone)]
pub struct ApiToken(SessionToken);

impl ApiToken {
    /// A fresh token from the operating system's CSPRNG.
    pub fn generate() -> Self {
        Self(SessionToken::generate())
    }

    /// Whether `text` is meant as one of our API tokens: it starts with the prefix, in any
    /// case. Such a value is ours to check and refuse, never an application's credential to
    /// pass on, even when it does not parse.
    pub fn claims(text: &str) -> bool {
        text.get(..PREFIX.len()).is_some_and(|p| p.eq_ignore_ascii_case(PREFIX))
    }

    /// Parses a presented token; only the exact form [`ApiToken::expose`] writes is accepted
    /// (lower-case prefix, 43 canonical base64url characters).
    ///
    /// # Errors
    /// [`ApiTokenError::Prefix`] without the prefix, [`ApiTokenError::Malformed`] when the rest
    /// has the wrong length or encoding.
    pub fn parse(text: &str) -> Result<Self, ApiTokenError> {
        let rest = text.strip_prefix(PREFIX).ok_or(ApiTokenError::Prefix)?;
        SessionToken::parse(rest).map(Self).map_err(ApiTokenError::Malformed)
    }

    /// SHA-256 of the token text, prefix included: the only form the store keeps.
    pub fn hash(&self) -> TokenHash {
        let mut hasher = Sha256::new();
        hasher.update(PREFIX.as_bytes());
        hasher.update(self.0.expose().as_bytes());
        TokenHash(hasher.finalize().into())
    }

    /// The token as given to its owner, once.
    pub fn expose(&self) -> String {
        format!("{PREFIX}{}", self.0.expose())
    }
}

impl fmt::Debug for ApiToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ApiToken([redacted])")
    }
}

/// The key of a token's entry in the store: the hash in lower-case hex.
pub fn store_key(hash: &TokenHash) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut key = String::with_capacity(64);
    for b in hash.as_bytes() {
        key.push(char::from(HEX[usize::from(b >> 4)]));
        key.push(char::from(HEX[usize::from(b & 0xf)]));
    }
    key
}

/// Reads a [`store_key`] back; `None` for anything but 64 lower-case hex digits.
pub fn parse_store_key(key: &str) -> Option<TokenHash> {
    let digit = |c: u8| match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        _ => None,
    };
    let bytes = key.as_bytes();
    if bytes.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (slot, pair) in out.iter_mut().zip(bytes.chunks_exact(2)) {
        *slot = digit(pair[0])? << 4 | digit(pair[1])?;
    }
    Some(TokenHash(out))
}

/// The public name of an API token: random, 128 bits, never a credential.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ApiTokenId(SessionId);

impl ApiTokenId {
    /// A fresh random id.
    pub fn generate() -> Self {
        Self(SessionId::generate())
    }

    /// Parses an id from a URL or a command line.
    ///
    /// # Errors
    /// [`TokenError`] when it is not 22 canonical base64url characters.
    pub fn parse(text: &str) -> Result<Self, TokenError> {
        SessionId::parse(text).map(Self)
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        self.0.as_str()
    }
}

impl TryFrom<String> for ApiTokenId {
    type Error = TokenError;
    fn try_from(s: String) -> Result<Self, TokenError> {
        Self::parse(&s)
    }
}

impl From<ApiTokenId> for String {
    fn from(id: ApiTokenId) -> String {
        id.0.into()
    }
}

impl fmt::Display for ApiTokenId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for ApiTokenId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ApiTokenId({})", self.as_str())
    }
}

/// Checks a token name: 1 to [`MAX_NAME_CHARS`] characters of ASCII letters, digits, spaces and
/// `-_.:@/`, not starting or ending with a space. Names are labels for people; they need not be
/// unique.
///
/// # Errors
/// [`ApiTokenError::Name`] saying what is wrong.
pub fn validate_name(name: &str) -> Result<(), ApiTokenError> {
    if name.is_empty() {
        return Err(ApiTokenError::Name("it is empty"));
    }
    if name.chars().count() > MAX_NAME_CHARS {
        return Err(ApiTokenError::Name("it is longer than 64 characters"));
    }
    if !name.chars().all(|c| c.is_ascii_alphanumeric() || " -_.:@/".contains(c)) {
        return Err(ApiTokenError::Name("only letters, digits, spaces and -_.:@/ are allowed"));
    }
    if name.starts_with(' ') || name.ends_with(' ') {
        return Err(ApiTokenError::Name("it starts or ends with a space"));
    }
    Ok(())
}

/// Parses a token lifetime in the duration notation (`90d`, `1y`, `12h`): at least one second,
/// at most [`MAX_LIFETIME`].
///
/// # Errors
/// [`ApiTokenError::Lifetime`] quoting the input.
pub fn parse_lifetime(text: &str) -> Result<Duration, ApiTokenError> {
    let lifetime = parse_duration(text).map_err(|e: DurationError| ApiTokenError::Lifetime(e.to_string()))?;
    if lifetime.is_zero() {
        return Err(ApiTokenError::Lifetime(format!("{text:?} is zero; leave it out for a token that never expires")));
    }
    if lifetime > MAX_LIFETIME {
        return Err(ApiTokenError::Lifetime(format!("{text:?} is longer than 100 years")));
    }
    Ok(lifetime)
}

/// An API token at rest (the value of its store entry, as JSON). Holds no secret: the token is
/// the entry's key, hashed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiTokenRecord {
    /// Public id, for lists and revocation.
    pub id: ApiTokenId,
    /// A label chosen by its owner.
    pub name: String,
    /// The user the token acts as.
    pub user: String,
    /// The realm the token is valid in.
    pub realm: String,
    /// When it was made.
    pub created_at: Timestamp,
    /// When it was last accepted, to within [`LAST_USED_RESOLUTION`]; `None` until first used.
    #[serde(default)]
    pub last_used_at: Option<Timestamp>,
    /// When it stops working; `None`: never.
    #[serde(default)]
    pub expires_at: Option<Timestamp>,
    /// The user's groups when the token was made; used only for users not in the users file.
    #[serde(default)]
    pub groups: Vec<String>,
    /// The user's name for people when the token was made (users not in the users file).
    #[serde(default)]
    pub display_name: Option<String>,
    /// The user's email address when the token was made (users not in the users file).
    #[serde(default)]
    pub email: Option<String>,
    /// Whether the user was in the users file when the token was made: then the token works only
    /// while the user is there and enabled, with the groups the file gives now.
    #[serde(default)]
    pub from_users_file: bool,
}

impl ApiTokenRecord {
    /// Whether the token no longer works at `now`.
    pub fn is_expired(&self, now: Timestamp) -> bool {
        self.expires_at.is_some_and(|at| at <= now)
    }

    /// Whether a use at `now` should be recorded: never recorded before, or the recorded use is
    /// at least [`LAST_USED_RESOLUTION`] old. A clock that went back records nothing.
    pub fn use_is_due(&self, now: Timestamp) -> bool {
        self.last_used_at.is_none_or(|last| now >= last + LAST_USED_RESOLUTION)
    }

    /// The record as stored.
    ///
    /// # Errors
    /// Never in practice (strings and numbers only); the error is serde's.
    pub fn to_json(&self) -> Result<Vec<u8>, serde_json::Error> {
        serde_json::to_vec(self)
    }

    /// A stored record.
    ///
    /// # Errors
    /// When `bytes` is not a record.
    pub fn from_json(bytes: &[u8]) -> Result<Self, serde_json::Error> {
        serde_json::from_slice(bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine as _;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use proptest::prelude::*;

    const NOW: Timestamp = Timestamp::from_unix(1_800_000_000);

    fn record(last_used_at: Option<Timestamp>, expires_at: Option<Timestamp>) -> ApiTokenRecord {
        ApiTokenRecord {
            id: ApiTokenId::generate(),
            name: "deploy".into(),
            user: "alice".into(),
            realm: "main".into(),
            created_at: NOW,
            last_used_at,
            expires_at,
            groups: vec!["dev".into()],
            display_name: None,
            email: None,
            from_users_file: true,
        }
    }

    #[test]
    fn generated_tokens_have_the_prefix_and_differ() {
        let a = ApiToken::generate();
        let b = ApiToken::generate();
        assert!(a.expose().starts_with(PREFIX));
        assert_eq!(a.expose().len(), API_TOKEN_CHARS);
        assert_ne!(a.expose(), b.expose());
        assert_ne!(a.hash(), b.hash());
    }

    #[test]
    fn parse_round_trips_and_the_hash_is_sha256_of_the_whole_text() {
        let t = ApiToken::generate();
        let parsed = ApiToken::parse(&t.expose()).unwrap();
        assert_eq!(parsed.hash(), t.hash());
        let expected: [u8; 32] = Sha256::digest(t.expose().as_bytes()).into();
        assert_eq!(t.hash().0, expected);
    }

    #[test]
    fn an_api_token_never_hashes_like_the_session_token_of_the_same_bytes() {
        let t = ApiToken::generate();
        let bare = SessionToken::parse(&t.expose()[PREFIX.len()..]).unwrap();
        assert_ne!(bare.hash(), t.hash());
        assert!(SessionToken::parse(&t.expose()).is_err(), "an API token is not a session token");
    }

    #[test]
    fn only_the_canonical_form_parses() {
        let good = ApiToken::generate().expose();
        let rest = &good[PREFIX.len()..];
        let err = |s: &str| ApiToken::parse(s).map(|_| ()).unwrap_err();
        assert_eq!(err(rest), ApiTokenError::Prefix, "the bare value is not an API token");
        assert_eq!(err(&format!("SDAT_{rest}")), ApiTokenError::Prefix, "the prefix is lower case");
        assert_eq!(err(&format!("sdpt_{rest}")), ApiTokenError::Prefix);
        assert_eq!(err("sdat_"), ApiTokenError::Malformed(TokenError::Length { expected: 43, got: 0 }));
        assert_eq!(err(&format!("{good}A")), ApiTokenError::Malformed(TokenError::Length { expected: 43, got: 44 }));
        assert_eq!(
            err(&good[..good.len() - 1]),
            ApiTokenError::Malformed(TokenError::Length { expected: 43, got: 42 })
        );
        assert_eq!(err(&format!("sdat_{}", "+".repeat(43))), ApiTokenError::Malformed(TokenError::Encoding));
        assert_eq!(err(&format!("sdat_{}=", "A".repeat(42))), ApiTokenError::Malformed(TokenError::Encoding));
        // The last character carries 2 spare bits; a set spare bit would be a second spelling.
        assert_eq!(err(&format!("sdat_{}B", "A".repeat(42))), ApiTokenError::Malformed(TokenError::Encoding));
        assert!(ApiToken::parse(&format!("sdat_{}A", "A".repeat(42))).is_ok());
        assert_eq!(err(&format!(" {good}")), ApiTokenError::Prefix, "no surrounding space");
        assert!(ApiToken::parse(&format!("{good} ")).is_err(), "no surrounding space");
        assert!(ApiToken::parse(&format!("sdat_{}", "é".repeat(21))).is_err());
    }

    #[test]
    fn claims_covers_every_spelling_of_the_prefix_and_nothing_else() {
        for ours in ["sdat_", "sdat_x", "SDAT_abc", "Sdat_", &ApiToken::generate().expose()] {
            assert!(ApiToken::claims(ours), "{ours}");
        }
        for theirs in ["", "sdat", "sdatx", "ghp_abc", "eyJhbGciOi", &SessionToken::generate().expose(), "é"] {
            assert!(!ApiToken::claims(theirs), "{theirs}");
        }
    }

    #[test]
    fn debug_never_shows_the_token() {
        let t = ApiToken::generate();
        let shown = format!("{t:?}");
        assert!(!shown.contains(&t.expose()[PREFIX.len()..]), "{shown}");
    }

    #[test]
    fn store_keys_are_lower_case_hex_and_read_back() {
        let hash = ApiToken::generate().hash();
        let key = store_key(&hash);
        assert_eq!(key.len(), 64);
        assert!(key.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)), "{key}");
        assert_eq!(parse_store_key(&key), Some(hash));
        assert_eq!(store_key(&TokenHash([0xab; 32])), "ab".repeat(32));
        assert_eq!(parse_store_key(&key.to_uppercase()), None);
        assert_eq!(parse_store_key(&key[..62]), None);
        assert_eq!(parse_store_key(&format!("{}zz", &key[..62])), None);
    }

    #[test]
    fn ids_are_not_tokens() {
        let id = ApiTokenId::generate();
        assert_eq!(ApiTokenId::parse(id.as_str()).unwrap(), id);
        assert!(ApiTokenId::parse(&ApiToken::generate().expose()).is_err());
        assert!(serde_json::from_str::<ApiTokenId>("\"../../etc\"").is_err());
        assert_eq!(serde_json::to_string(&id).unwrap(), format!("\"{id}\""));
    }

    #[test]
    fn names_are_short_printable_labels() {
        for good in ["deploy", "CI runner 1", "ci/prod-2026.01", "bot@host:8080", "a"] {
            assert_eq!(validate_name(good), Ok(()), "{good}");
        }
        assert_eq!(validate_name(&"a".repeat(64)), Ok(()));
        for bad in ["", " lead", "trail ", "tab\there", "new\nline", "<script>", "é", "quote\"", &"a".repeat(65)] {
            assert!(matches!(validate_name(bad), Err(ApiTokenError::Name(_))), "{bad:?}");
        }
    }

    #[test]
    fn lifetimes_use_the_duration_notation_and_are_bounded() {
        assert_eq!(parse_lifetime("90d").unwrap(), Duration::from_secs(90 * 86_400));
        assert_eq!(parse_lifetime("1h30m").unwrap(), Duration::from_secs(5400));
        assert_eq!(parse_lifetime("100y").unwrap(), MAX_LIFETIME);
        for bad in ["0", "0s", "-1", "5x", "", "101y", "1 d"] {
            assert!(matches!(parse_lifetime(bad), Err(ApiTokenError::Lifetime(_))), "{bad:?}");
        }
        assert!(parse_lifetime("0").unwrap_err().to_string().contains("never expires"));
    }

    #[test]
    fn expiry_is_exclusive_of_the_deadline_and_absent_means_never() {
        let r = record(None, Some(NOW + Duration::from_secs(10)));
        assert!(!r.is_expired(NOW));
        assert!(!r.is_expired(NOW + Duration::from_secs(9)));
        assert!(r.is_expired(NOW + Duration::from_secs(10)));
        assert!(!record(None, None).is_expired(Timestamp::from_unix(i64::MAX)));
    }

    #[test]
    fn uses_are_recorded_at_most_once_a_minute() {
        assert!(record(None, None).use_is_due(NOW), "the first use is recorded");
        let r = record(Some(NOW), None);
        assert!(!r.use_is_due(NOW));
        assert!(!r.use_is_due(NOW + Duration::from_secs(59)));
        assert!(r.use_is_due(NOW + Duration::from_secs(60)));
        assert!(!r.use_is_due(NOW - Duration::from_secs(3600)), "a clock that went back writes nothing");
    }

    #[test]
    fn records_round_trip_and_hold_no_secret() {
        let r = record(Some(NOW), Some(NOW + Duration::from_secs(60)));
        let bytes = r.to_json().unwrap();
        assert_eq!(ApiTokenRecord::from_json(&bytes).unwrap(), r);
        let minimal =
            format!(r#"{{"id":"{}","name":"n","user":"u","realm":"main","created_at":1}}"#, ApiTokenId::generate());
        let read = ApiTokenRecord::from_json(minimal.as_bytes()).unwrap();
        assert_eq!((read.last_used_at, read.expires_at, read.from_users_file), (None, None, false));
        assert!(ApiTokenRecord::from_json(b"{}").is_err());
        assert!(ApiTokenRecord::from_json(&bytes[..bytes.len() - 1]).is_err());
    }

    proptest! {
        #[test]
        fn parse_never_panics_and_claims_whatever_parses(s in ".{0,64}") {
            if ApiToken::parse(&s).is_ok() {
                prop_assert!(ApiToken::claims(&s));
            }
        }

        #[test]
        fn any_32_bytes_round_trip(bytes in proptest::array::uniform32(any::<u8>())) {
            let text = format!("{PREFIX}{}", URL_SAFE_NO_PAD.encode(bytes));
            let token = ApiToken::parse(&text).unwrap();
            prop_assert_eq!(token.expose(), text);
        }

        #[test]
        fn recorded_uses_are_never_closer_than_the_resolution(last in 0i64..4_000_000_000, after in 0u64..200) {
            let last = Timestamp::from_unix(last);
            let r = record(Some(last), None);
            let now = last + Duration::from_secs(after);
            prop_assert_eq!(r.use_is_due(now), after >= LAST_USED_RESOLUTION.as_secs());
        }
    }
}
