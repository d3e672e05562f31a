//! Session JWTs: short-lived EdDSA (Ed25519) tokens that applications verify without calling
//! sessiond, and the keyring that signs them.
//!
//! A session JWT is never the only proof of a session: it lives for minutes (`jwt.lifetime`),
//! and sessiond itself checks that its `sid` is still a live session whenever one is presented
//! to it. Verification trusts nothing from the token's header but the key id: the algorithm is
//! ours (`EdDSA`) or the token is refused, keys come from our keyring only, and headers that
//! would point elsewhere (`jwk`, `jku`, `x5u`, `x5c`, `crit`) make the token malformed.
//!
//! The [`Keyring`] holds one key that signs, one published ahead of its turn (so applications
//! that cache the JWKS already know it when it starts signing), and keys retired by a rotation,
//! kept published until every token they signed has expired.
//!
//! ```
//! use sessiond_core::jwt::{Claims, Expected, Keyring};
//! use sessiond_core::time::Timestamp;
//! use std::time::Duration;
//!
//! let now = Timestamp::from_unix(1_700_000_000);
//! let ring = Keyring::generate(now);
//! let claims = Claims {
//!     iss: "https://auth.example.com".into(),
//!     aud: "main".into(),
//!     sub: "alice".into(),
//!     sid: "s_123".into(),
//!     iat: now.unix(),
//!     nbf: now.unix(),
//!     exp: now.unix() + 300,
//!     amr: vec!["pwd".into()],
//!     realm: "main".into(),
//!     email: None,
//!     name: None,
//!     groups: vec![],
//!     attributes: Default::default(),
//! };
//! let jwt = ring.sign(&claims);
//! let expected = Expected { issuer: "https://auth.example.com", audience: "main", realm: "main" };
//! assert_eq!(ring.verify(&jwt, &expected, now + Duration::from_secs(60)).unwrap(), claims);
//! assert!(ring.verify(&jwt, &expected, now + Duration::from_secs(400)).is_err());
//! ```

use crate::time::Timestamp;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ed25519_dalek::{Signature, Signer as _, SigningKey, VerifyingKey};
use rand::RngCore as _;
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};
use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

/// How long a session JWT lives by default (`jwt.lifetime`).
pub const DEFAULT_LIFETIME: Duration = Duration::from_secs(300);
/// How often signing keys rotate by default (`jwt.rotation`).
pub const DEFAULT_ROTATION: Duration = Duration::from_secs(30 * 86_400);
/// Clock difference tolerated on `exp`, `nbf` and `iat`.
pub const LEEWAY: Duration = Duration::from_secs(10);
/// Longest token we even try to read.
pub const MAX_TOKEN_LEN: usize = 8192;
/// The only algorithm we sign with and accept.
pub const ALGORITHM: &str = "EdDSA";

/// A realm's JWT settings (`realms.<name>.jwt`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct JwtSettings {
    /// Whether the realm issues session JWTs at all.
    pub enabled: bool,
    /// How long each JWT is valid.
    pub lifetime: Duration,
    /// Whether the JWT is also set in the `<name>_jwt` cookie.
    pub cookie: bool,
    /// Whether forward auth passes the JWT to applications in `Remote-Jwt`.
    pub header: bool,
    /// How often the signing key rotates by itself; `None`: only `sessiond keys rotate`.
    pub rotation: Option<Duration>,
}

impl Default for JwtSettings {
    fn default() -> Self {
        Self {
            enabled: true,
            lifetime: DEFAULT_LIFETIME,
            cookie: false,
            header: false,
            rotation: Some(DEFAULT_ROTATION),
        }
    }
}

/// The claims of a session JWT. Times are seconds since the epoch (RFC 7519 NumericDate).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// Issuer: the realm's portal URL.
    pub iss: String,
    /// Audience: the realm's name.
    pub aud: String,
    /// The user.
    pub sub: String,
    /// The session's public id.
    pub sid: String,
    /// Issued at.
    pub iat: i64,
    /// Not before.
    pub nbf: i64,
    /// Expires at.
    pub exp: i64,
    /// How the user authenticated (`pwd`, `otp`).
    #[serde(default)]
    pub amr: Vec<String>,
    /// The realm.
    pub realm: String,
    /// The user's email address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// The user's display name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The user's groups.
    #[serde(default)]
    pub groups: Vec<String>,
    /// The session's attributes.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub attributes: BTreeMap<String, serde_json::Value>,
}

/// What a verified token must say about where it comes from and whom it is for.
#[derive(Clone, Copy, Debug)]
pub struct Expected<'a> {
    /// `iss`.
    pub issuer: &'a str,
    /// One of `aud`.
    pub audience: &'a str,
    /// `realm`.
    pub realm: &'a str,
}

/// Why a token was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum JwtError {
    /// Not a compact JWS we can read: parts, base64url, JSON, header fields, length.
    #[error("malformed session JWT")]
    Malformed,
    /// `alg` is not `EdDSA`.
    #[error("unsupported JWT algorithm")]
    Algorithm,
    /// `kid` names no key of ours.
    #[error("session JWT signed by an unknown key")]
    UnknownKey,
    /// The signature does not verify under the key `kid` names.
    #[error("session JWT signature does not verify")]
    Signature,
    /// Past `exp`.
    #[error("session JWT has expired")]
    Expired,
    /// Before `nbf`, or issued in the future.
    #[error("session JWT is not valid yet")]
    NotYetValid,
    /// `iss`, `aud` or `realm` is not ours.
    #[error("session JWT was issued for someone else")]
    WrongParty,
}

/// Where a key stands in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "state", content = "since")]
pub enum KeyState {
    /// Published, signing from the next rotation on.
    Next,
    /// Signs new tokens.
    Current,
    /// Retired by a rotation at this instant; still verifies what it signed.
    Retired(Timestamp),
}

/// One signing key. Its `Debug` never shows the private half.
#[derive(Clone)]
pub struct KeyEntry {
    /// Key id: the RFC 7638 thumbprint of the public key.
    pub kid: String,
    /// When the key was made.
    pub created_at: Timestamp,
    /// Where it stands.
    pub state: KeyState,
    signing: SigningKey,
}

impl fmt::Debug for KeyEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyEntry")
            .field("kid", &self.kid)
            .field("created_at", &self.created_at)
            .field("state", &self.state)
            .finish_non_exhaustive()
    }
}

impl PartialEq for KeyEntry {
    fn eq(&self, other: &Self) -> bool {
        self.kid == other.kid && self.created_at == other.created_at && self.state == other.state
    }
}

impl KeyEntry {
    fn generate(now: Timestamp, state: KeyState) -> Self {
        let mut seed = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut seed);
        Self::from_seed(&seed, now, state)
    }

    fn from_seed(seed: &[u8; 32], created_at: Timestamp, state: KeyState) -> Self {
        let signing = SigningKey::from_bytes(seed);
        Self { kid: thumbprint(&signing.verifying_key()), created_at, state, signing }
    }

    /// The public half as a JWK.
    pub fn jwk(&self) -> Jwk {
        Jwk {
            kty: "OKP",
            crv: "Ed25519",
            x: URL_SAFE_NO_PAD.encode(self.signing.verifying_key().as_bytes()),
            kid: self.kid.clone(),
            alg: ALGORITHM,
            key_use: "sig",
        }
    }
}

/// RFC 7638 thumbprint of an Ed25519 public key (RFC 8037): the members in lexical order.
fn thumbprint(key: &VerifyingKey) -> String {
    let canonical = format!(r#"{{"crv":"Ed25519","kty":"OKP","x":"{}"}}"#, URL_SAFE_NO_PAD.encode(key.as_bytes()));
    URL_SAFE_NO_PAD.encode(Sha256::digest(canonical.as_bytes()))
}

/// A public key as published in the JWKS.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Jwk {
    /// `OKP`.
    pub kty: &'static str,
    /// `Ed25519`.
    pub crv: &'static str,
    /// The public key, base64url.
    pub x: String,
    /// Key id.
    pub kid: String,
    /// `EdDSA`.
    pub alg: &'static str,
    /// `sig`.
    #[serde(rename = "use")]
    pub key_use: &'static str,
}

/// `GET /.well-known/jwks.json`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Jwks {
    /// Every key that verifies: the current one, the next one, the retired ones still in use.
    pub keys: Vec<Jwk>,
}

/// Why a stored keyring could not be read.
#[derive(Debug, thiserror::Error)]
#[error("unreadable signing keys: {0}")]
pub struct KeyringError(String);

/// The signing keys of one realm.
#[derive(Clone, Debug, PartialEq)]
pub struct Keyring {
    keys: Vec<KeyEntry>,
}

#[derive(Serialize, Deserialize)]
struct StoredKey {
    kid: String,
    created_at: Timestamp,
    #[serde(flatten)]
    state: KeyState,
    seed: String,
}

#[derive(Serialize, Deserialize)]
struct StoredKeyring {
    version: u8,
    keys: Vec<StoredKey>,
}

#[derive(Deserialize)]
struct Header {
    alg: String,
    kid: Option<String>,
}

/// Header members we read or tolerate; any other member (`jwk`, `jku`, `x5u`, `x5c`, `crit`, …)
/// makes a token malformed, so nothing in a token can point verification elsewhere.
const KNOWN_HEADER: [&str; 3] = ["alg", "kid", "typ"];

impl Keyring {
    /// A new keyring: a current key and the next one.
    pub fn generate(now: Timestamp) -> Self {
        Self { keys: vec![KeyEntry::generate(now, KeyState::Current), KeyEntry::generate(now, KeyState::Next)] }
    }

    /// Every key, current first, then next, then retired ones (newest first).
    pub fn keys(&self) -> &[KeyEntry] {
        &self.keys
    }

    /// The key that signs.
    pub fn current(&self) -> &KeyEntry {
        // A keyring always has a current key: generate, decode and rotate keep it so.
        self.keys.iter().find(|k| k.state == KeyState::Current).unwrap_or(&self.keys[0])
    }

    /// Whether the current key is older than `rotation`.
    pub fn rotation_due(&self, now: Timestamp, rotation: Duration) -> bool {
        self.current().created_at + rotation <= now
    }

    /// Retires the current key, promotes the next one and publishes a new next key. Retired keys
    /// are dropped once every token they could have signed has expired (`lifetime` plus leeway).
    pub fn rotate(&mut self, now: Timestamp, lifetime: Duration) {
        for key in &mut self.keys {
            key.state = match key.state {
                KeyState::Current => KeyState::Retired(now),
                KeyState::Next => KeyState::Current,
                retired => retired,
            };
        }
        self.keys.push(KeyEntry::generate(now, KeyState::Next));
        self.prune(now, lifetime);
        self.order();
    }

    /// Drops retired keys that can no longer have signed a valid token.
    pub fn prune(&mut self, now: Timestamp, lifetime: Duration) {
        self.keys.retain(|k| match k.state {
            KeyState::Retired(at) => at + lifetime + LEEWAY > now,
            _ => true,
        });
    }

    fn order(&mut self) {
        self.keys.sort_by_key(|k| match k.state {
            KeyState::Current => (0, 0),
            KeyState::Next => (1, 0),
            KeyState::Retired(at) => (2, -at.unix()),
        });
    }

    /// The published keys.
    pub fn jwks(&self) -> Jwks {
        Jwks { keys: self.keys.iter().map(KeyEntry::jwk).collect() }
    }

    /// Signs `claims` with the current key.
    pub fn sign(&self, claims: &Claims) -> String {
        let key = self.current();
        let header = format!(r#"{{"alg":"{ALGORITHM}","typ":"JWT","kid":"{}"}}"#, key.kid);
        // Claims are plain data: serialising them cannot fail.
        let payload = serde_json::to_vec(claims).unwrap_or_default();
        let mut out = URL_SAFE_NO_PAD.encode(header);
        out.push('.');
        out.push_str(&URL_SAFE_NO_PAD.encode(payload));
        let signature = key.signing.sign(out.as_bytes());
        out.push('.');
        out.push_str(&URL_SAFE_NO_PAD.encode(signature.to_bytes()));
        out
    }

    /// Verifies `token` at `now`: our algorithm, one of our keys, a valid signature, the time
    /// window (with [`LEEWAY`]), and issuer, audience and realm. Whether the session is still
    /// live is for the caller to check.
    ///
    /// # Errors
    /// [`JwtError`] says why the token was refused.
    pub fn verify(&self, token: &str, expected: &Expected<'_>, now: Timestamp) -> Result<Claims, JwtError> {
        let (header_part, payload, signature) = split(token)?;
        let header_json = decode_part(header_part)?;
        let members: BTreeMap<String, serde_json::Value> =
            serde_json::from_slice(&header_json).map_err(|_| JwtError::Malformed)?;
        if members.keys().any(|k| !KNOWN_HEADER.contains(&k.as_str())) {
            return Err(JwtError::Malformed);
        }
        let header: Header = serde_json::from_slice(&header_json).map_err(|_| JwtError::Malformed)?;
        if header.alg != ALGORITHM {
            return Err(JwtError::Algorithm);
        }
        let kid = header.kid.ok_or(JwtError::UnknownKey)?;
        let key = self.keys.iter().find(|k| k.kid == kid).ok_or(JwtError::UnknownKey)?;
        let signature: [u8; 64] = decode_part(signature)?.try_into().map_err(|_| JwtError::Signature)?;
        let signed = &token[..header_part.len() + 1 + payload.len()];
        key.signing
            .verifying_key()
            .verify_strict(signed.as_bytes(), &Signature::from_bytes(&signature))
            .map_err(|_| JwtError::Signature)?;
        let claims: Claims = serde_json::from_slice(&decode_part(payload)?).map_err(|_| JwtError::Malformed)?;
        let now_s = now.unix();
        let leeway = LEEWAY.as_secs() as i64;
        if now_s >= claims.exp.saturating_add(leeway) {
            return Err(JwtError::Expired);
        }
        if claims.nbf > now_s.saturating_add(leeway) || claims.iat > now_s.saturating_add(leeway) {
            return Err(JwtError::NotYetValid);
        }
        if claims.iss != expected.issuer || claims.aud != expected.audience || claims.realm != expected.realm {
            return Err(JwtError::WrongParty);
        }
        Ok(claims)
    }

    /// The keyring as bytes, private keys included: seal them before they leave the process.
    pub fn to_bytes(&self) -> Vec<u8> {
        let stored = StoredKeyring {
            version: 1,
            keys: self
                .keys
                .iter()
                .map(|k| StoredKey {
                    kid: k.kid.clone(),
                    created_at: k.created_at,
                    state: k.state,
                    seed: URL_SAFE_NO_PAD.encode(k.signing.to_bytes()),
                })
                .collect(),
        };
        serde_json::to_vec(&stored).unwrap_or_default()
    }

    /// Reads [`Keyring::to_bytes`] back, checking each key against its id.
    ///
    /// # Errors
    /// [`KeyringError`] for anything else, a key whose id does not match, or a keyring without
    /// exactly one current key.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, KeyringError> {
        let stored: StoredKeyring = serde_json::from_slice(bytes).map_err(|e| KeyringError(e.to_string()))?;
        if stored.version != 1 {
            return Err(KeyringError(format!("version {}", stored.version)));
        }
        let mut keys = Vec::with_capacity(stored.keys.len());
        for k in stored.keys {
            let seed: [u8; 32] = URL_SAFE_NO_PAD
                .decode(&k.seed)
                .ok()
                .and_then(|s| s.try_into().ok())
                .ok_or_else(|| KeyringError(format!("key {}: bad seed", k.kid)))?;
            let entry = KeyEntry::from_seed(&seed, k.created_at, k.state);
            if entry.kid != k.kid {
                return Err(KeyringError(format!("key {}: id does not match the key", k.kid)));
            }
            keys.push(entry);
        }
        if keys.iter().filter(|k| k.state == KeyState::Current).count() != 1 {
            return Err(KeyringError("not exactly one current key".into()));
        }
        let mut ring = Self { keys };
        ring.order();
        Ok(ring)
    }
}

fn split(token: &str) -> Result<(&str, &str, &str), JwtError> {
    if token.is_empty() || token.len() > MAX_TOKEN_LEN {
        return Err(JwtError::Malformed);
    }
    let mut parts = token.split('.');
    match (parts.next(), parts.next(), parts.next(), parts.next()) {
        (Some(h), Some(p), Some(s), None) if !h.is_empty() && !p.is_empty() => Ok((h, p, s)),
        _ => Err(JwtError::Malformed),
    }
}

/// base64url without padding, canonical only (the engine refuses padding and stray bits).
fn decode_part(part: &str) -> Result<Vec<u8>, JwtError> {
    URL_SAFE_NO_PAD.decode(part).map_err(|_| JwtError::Malformed)
}

/// The parse-and-verify entry point for fuzzing: any input, one fixed keyring.
pub fn fuzz_verify(ring: &Keyring, token: &str, now: Timestamp) -> Result<Claims, JwtError> {
    ring.verify(token, &Expected { issuer: "https://auth.example.com", audience: "main", realm: "main" }, now)
}

#[cfg(test)]
mod tests {
    use super::*;
    use hmac::{Hmac, Mac as _};

    const T0: Timestamp = Timestamp::from_unix(1_800_000_000);
    const EXPECTED: Expected<'static> =
        Expected { issuer: "https://auth.example.com", audience: "main", realm: "main" };

    fn claims(iat: i64) -> Claims {
        Claims {
            iss: EXPECTED.issuer.into(),
            aud: "main".into(),
            sub: "alice".into(),
            sid: "sid-1".into(),
            iat,
            nbf: iat,
            exp: iat + 300,
            amr: vec!["pwd".into()],
            realm: "main".into(),
            email: Some("alice@example.com".into()),
            name: Some("Alice".into()),
            groups: vec!["dev".into()],
            attributes: BTreeMap::from([("plan".to_owned(), serde_json::json!("pro"))]),
        }
    }

    fn b64(bytes: impl AsRef<[u8]>) -> String {
        URL_SAFE_NO_PAD.encode(bytes)
    }

    /// A token with this header and payload, signed by `key` (or with `signature` as is).
    fn forge(header: &str, payload: &Claims, key: &KeyEntry) -> String {
        let signed = format!("{}.{}", b64(header), b64(serde_json::to_vec(payload).unwrap()));
        let signature = key.signing.sign(signed.as_bytes());
        format!("{signed}.{}", b64(signature.to_bytes()))
    }

    #[test]
    fn signed_tokens_verify_within_their_window_only() {
        let ring = Keyring::generate(T0);
        let jwt = ring.sign(&claims(T0.unix()));
        assert_eq!(ring.verify(&jwt, &EXPECTED, T0), Ok(claims(T0.unix())));
        assert!(ring.verify(&jwt, &EXPECTED, T0 + Duration::from_secs(309)).is_ok(), "leeway");
        assert_eq!(ring.verify(&jwt, &EXPECTED, T0 + Duration::from_secs(310)), Err(JwtError::Expired));
        let early = ring.sign(&Claims { nbf: T0.unix() + 60, ..claims(T0.unix()) });
        assert_eq!(ring.verify(&early, &EXPECTED, T0), Err(JwtError::NotYetValid));
        assert!(ring.verify(&early, &EXPECTED, T0 + Duration::from_secs(50)).is_ok());
        let future = ring.sign(&claims(T0.unix() + 3600));
        assert_eq!(ring.verify(&future, &EXPECTED, T0), Err(JwtError::NotYetValid));
    }

    #[test]
    fn header_names_our_key_and_algorithm() {
        let ring = Keyring::generate(T0);
        let jwt = ring.sign(&claims(T0.unix()));
        let header: serde_json::Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(jwt.split('.').next().unwrap()).unwrap()).unwrap();
        assert_eq!(header, serde_json::json!({"alg": "EdDSA", "typ": "JWT", "kid": ring.current().kid}));
    }

    #[test]
    fn tokens_for_another_party_are_refused() {
        let ring = Keyring::generate(T0);
        for wrong in [
            Claims { iss: "https://evil.example".into(), ..claims(T0.unix()) },
            Claims { aud: "other".into(), ..claims(T0.unix()) },
            Claims { realm: "other".into(), ..claims(T0.unix()) },
        ] {
            assert_eq!(ring.verify(&ring.sign(&wrong), &EXPECTED, T0), Err(JwtError::WrongParty));
        }
    }

    #[test]
    fn alg_none_and_hs256_with_the_public_key_are_refused() {
        let ring = Keyring::generate(T0);
        let kid = ring.current().kid.clone();
        let payload = b64(serde_json::to_vec(&claims(T0.unix())).unwrap());
        for header in [r#"{"alg":"none","typ":"JWT"}"#.to_owned(), format!(r#"{{"alg":"none","kid":"{kid}"}}"#)] {
            let none = format!("{}.{payload}.", b64(header));
            assert_eq!(ring.verify(&none, &EXPECTED, T0), Err(JwtError::Algorithm));
        }
        // The classic confusion: HMAC keyed with the public key the JWKS publishes.
        let public = ring.current().signing.verifying_key().to_bytes();
        let signed = format!("{}.{payload}", b64(format!(r#"{{"alg":"HS256","typ":"JWT","kid":"{kid}"}}"#)));
        let mut mac = <Hmac<Sha256> as hmac::digest::KeyInit>::new_from_slice(&public).unwrap();
        mac.update(signed.as_bytes());
        let hs = format!("{signed}.{}", b64(mac.finalize().into_bytes()));
        assert_eq!(ring.verify(&hs, &EXPECTED, T0), Err(JwtError::Algorithm));
        for alg in ["eddsa", "EdDSA ", "ES256", "Ed25519"] {
            let header = format!(r#"{{"alg":"{alg}","kid":"{kid}"}}"#);
            assert_eq!(
                ring.verify(&forge(&header, &claims(T0.unix()), ring.current()), &EXPECTED, T0),
                Err(JwtError::Algorithm),
                "{alg}"
            );
        }
    }

    #[test]
    fn foreign_keys_and_swapped_kids_are_refused() {
        let ring = Keyring::generate(T0);
        let stranger = Keyring::generate(T0);
        let ours = ring.current().kid.clone();
        // A stranger's key under our kid, and under its own.
        let header = format!(r#"{{"alg":"EdDSA","kid":"{ours}"}}"#);
        let forged = forge(&header, &claims(T0.unix()), stranger.current());
        assert_eq!(ring.verify(&forged, &EXPECTED, T0), Err(JwtError::Signature));
        assert_eq!(ring.verify(&stranger.sign(&claims(T0.unix())), &EXPECTED, T0), Err(JwtError::UnknownKey));
        // Our current key's signature presented under our next key's kid.
        let next = ring.keys().iter().find(|k| k.state == KeyState::Next).unwrap().kid.clone();
        let swapped = forge(&format!(r#"{{"alg":"EdDSA","kid":"{next}"}}"#), &claims(T0.unix()), ring.current());
        assert_eq!(ring.verify(&swapped, &EXPECTED, T0), Err(JwtError::Signature));
        let no_kid = forge(r#"{"alg":"EdDSA"}"#, &claims(T0.unix()), ring.current());
        assert_eq!(ring.verify(&no_kid, &EXPECTED, T0), Err(JwtError::UnknownKey));
    }

    #[test]
    fn headers_that_point_elsewhere_make_a_token_malformed() {
        let ring = Keyring::generate(T0);
        let kid = &ring.current().kid;
        let jwk = serde_json::to_string(&ring.current().jwk()).unwrap();
        for extra in [
            format!(r#""jwk":{jwk}"#),
            r#""jku":"https://evil.example/jwks.json""#.to_owned(),
            r#""x5u":"https://evil.example/cert""#.to_owned(),
            r#""x5c":["MIIB"]"#.to_owned(),
            r#""crit":["exp"]"#.to_owned(),
        ] {
            let header = format!(r#"{{"alg":"EdDSA","kid":"{kid}",{extra}}}"#);
            let token = forge(&header, &claims(T0.unix()), ring.current());
            assert_eq!(ring.verify(&token, &EXPECTED, T0), Err(JwtError::Malformed), "{extra}");
        }
    }

    #[test]
    fn stripped_altered_and_garbled_tokens_are_refused() {
        let ring = Keyring::generate(T0);
        let jwt = ring.sign(&claims(T0.unix()));
        let (signed, signature) = jwt.rsplit_once('.').unwrap();
        assert_eq!(ring.verify(&format!("{signed}."), &EXPECTED, T0), Err(JwtError::Signature), "stripped");
        assert_eq!(ring.verify(signed, &EXPECTED, T0), Err(JwtError::Malformed), "two parts");
        let mut raw = URL_SAFE_NO_PAD.decode(signature).unwrap();
        raw[10] ^= 1;
        assert_eq!(ring.verify(&format!("{signed}.{}", b64(&raw)), &EXPECTED, T0), Err(JwtError::Signature));
        // The payload changed under the same signature: another user.
        let (header, _) = signed.split_once('.').unwrap();
        let other = b64(serde_json::to_vec(&Claims { sub: "mallory".into(), ..claims(T0.unix()) }).unwrap());
        assert_eq!(ring.verify(&format!("{header}.{other}.{signature}"), &EXPECTED, T0), Err(JwtError::Signature));
        for junk in
            ["", ".", "..", "...", "a.b.c", &format!("{jwt}.x"), &format!("{jwt}="), &"a".repeat(MAX_TOKEN_LEN + 1)]
        {
            assert!(ring.verify(junk, &EXPECTED, T0).is_err(), "{junk:.40}");
        }
        // Padding or stray bits make base64 non-canonical.
        assert_eq!(ring.verify(&format!("{signed}.{signature}="), &EXPECTED, T0), Err(JwtError::Malformed));
    }

    #[test]
    fn rotation_keeps_old_keys_published_until_their_tokens_expire() {
        let mut ring = Keyring::generate(T0);
        let first = ring.current().kid.clone();
        let next = ring.keys()[1].kid.clone();
        let old_token = ring.sign(&claims(T0.unix()));
        assert!(!ring.rotation_due(T0 + Duration::from_secs(59), Duration::from_secs(60)));
        assert!(ring.rotation_due(T0 + Duration::from_secs(60), Duration::from_secs(60)));

        let t1 = T0 + Duration::from_secs(100);
        ring.rotate(t1, DEFAULT_LIFETIME);
        assert_eq!(ring.current().kid, next, "the key published ahead signs now");
        let kids: Vec<String> = ring.jwks().keys.into_iter().map(|k| k.kid).collect();
        assert_eq!(kids.len(), 3);
        assert!(kids.contains(&first));
        assert!(ring.verify(&old_token, &EXPECTED, t1).is_ok(), "tokens of the retired key still verify");
        assert_ne!(ring.sign(&claims(t1.unix())).split('.').next(), old_token.split('.').next());

        // Once no token of the retired key can be valid, it goes.
        let t2 = t1 + DEFAULT_LIFETIME + LEEWAY;
        ring.prune(t2, DEFAULT_LIFETIME);
        assert!(ring.keys().iter().all(|k| k.kid != first));
        assert_eq!(ring.verify(&old_token, &EXPECTED, t2), Err(JwtError::UnknownKey));
    }

    #[test]
    fn keyrings_round_trip_and_refuse_tampering() {
        let mut ring = Keyring::generate(T0);
        ring.rotate(T0 + Duration::from_secs(5), DEFAULT_LIFETIME);
        let back = Keyring::from_bytes(&ring.to_bytes()).unwrap();
        assert_eq!(back, ring);
        let token = ring.sign(&claims(T0.unix() + 5));
        assert!(back.verify(&token, &EXPECTED, T0 + Duration::from_secs(5)).is_ok());
        let text = String::from_utf8(ring.to_bytes()).unwrap();
        let swapped = text.replacen(&ring.keys()[0].kid, &ring.keys()[1].kid, 1);
        assert!(Keyring::from_bytes(swapped.as_bytes()).is_err(), "a key under another key's id");
        assert!(Keyring::from_bytes(text.replace("\"current\"", "\"next\"").as_bytes()).is_err());
        assert!(Keyring::from_bytes(b"{}").is_err());
        assert!(!format!("{:?}", ring.current()).contains("signing"), "no private key in Debug");
    }

    #[test]
    fn thumbprint_matches_rfc_8037_example() {
        // RFC 8037, appendix A.3: the thumbprint of the example Ed25519 key.
        let x = URL_SAFE_NO_PAD.decode("11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo").unwrap();
        let key = VerifyingKey::from_bytes(&x.try_into().unwrap()).unwrap();
        assert_eq!(thumbprint(&key), "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k");
    }
}
