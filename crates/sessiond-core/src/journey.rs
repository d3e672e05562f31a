//! Login journeys (ForgeRock's authentication sessions): the state of a login in progress, the
//! `auth_id` that carries it from step to step, and allowlisting.
//!
//! A journey is a short sequence of steps: the password, then, for users who enrolled one, a
//! TOTP code. A step-up journey upgrades a signed-in session with the code alone. A journey
//! never grants access to anything; it ends on success, after [`MAX_FAILURES`] wrong answers,
//! at its timeout (`journeys.timeout`, 5 minutes by default) or when an `auth_id` is replayed.
//!
//! Where the state lives (`journeys.location`):
//!
//! - `server`: the `auth_id` is 256 random bits, [`ServerAuthId`]: the first half names the
//!   journey, the whole is the credential. The store holds the state under the SHA-256 of the
//!   journey half, with the SHA-256 of the whole `auth_id` that is current ([`StoredJourney`]).
//! - `client`: the `auth_id` is the state itself, sealed ([`JourneyCodec`]: XChaCha20-Poly1305
//!   under a key derived from the secret, bound to the realm). With allowlisting the store holds
//!   only the hash of the current `auth_id` (and the failures) under the journey's hash.
//!
//! With allowlisting (`journeys.allowlisting`, on by default) every step that succeeds answers a
//! new `auth_id`, and only the current one is accepted: an earlier one (a replay, a rewind to an
//! earlier step, the loser of two concurrent posts) ends the journey with `journey_replayed`.
//! Every change of the stored value is a compare-and-swap, so two posts of the same step cannot
//! both advance it. Without allowlisting a server-side journey keeps one `auth_id` throughout
//! (concurrent posts still cannot both advance it), and a client-side journey keeps nothing in
//! the store: any `auth_id` it answered stays usable until the timeout, replays included, and
//! failures are limited only by login regulation. That is the weaker mode, for deployments that
//! cannot afford a store write per step.

use crate::keys::Sealer;
use crate::time::Timestamp;
use crate::token::{ID_BYTES, SessionId, constant_time_eq};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore as _;
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};
use std::fmt;
use std::time::Duration;

/// How long a login may take by default (`journeys.timeout`).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(300);
/// Wrong answers (password or code) after which a journey ends.
pub const MAX_FAILURES: u32 = 3;
/// Longest `auth_id` we even try to decode: a sealed state is a few hundred characters.
pub const MAX_AUTH_ID_CHARS: usize = 2048;

/// Where a realm's journeys keep their state (`journeys.location`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum JourneyLocation {
    /// In the store, under the hash of the journey's id (default).
    #[default]
    Server,
    /// In the `auth_id` itself, sealed.
    Client,
}

impl JourneyLocation {
    /// The configuration word: `server` or `client`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Server => "server",
            Self::Client => "client",
        }
    }
}

/// A realm's `journeys` settings.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct JourneySettings {
    /// Where the state lives.
    pub location: JourneyLocation,
    /// Whether every step issues a new `auth_id` and only the current one is accepted.
    pub allowlisting: bool,
    /// How long a journey may take from its start.
    pub timeout: Duration,
}

impl Default for JourneySettings {
    fn default() -> Self {
        Self { location: JourneyLocation::Server, allowlisting: true, timeout: DEFAULT_TIMEOUT }
    }
}

/// A callback the client must fill in the current step.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CallbackKind {
    /// The user name.
    Username,
    /// The password.
    Password,
    /// Whether to remember the session.
    RememberMe,
    /// A six-digit code of the user's authenticator app.
    Totp,
}

/// What a journey is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Purpose {
    /// A login: ends in a new session.
    Login,
    /// A second factor for a signed-in session: ends in a new session, with the old one ended.
    StepUp,
}

/// The step a journey waits for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Step {
    /// User name and password.
    Password,
    /// A TOTP code.
    Totp,
    /// The answer of a login provider the browser was sent to (OpenID Connect): it comes back
    /// to the provider's callback, never as a posted callback.
    Provider,
}

impl Step {
    /// The callbacks of this step, in order; `remember_me` only when the realm allows it.
    pub fn callbacks(self, remember_me_allowed: bool) -> Vec<CallbackKind> {
        match self {
            Self::Password if remember_me_allowed => {
                vec![CallbackKind::Username, CallbackKind::Password, CallbackKind::RememberMe]
            }
            Self::Password => vec![CallbackKind::Username, CallbackKind::Password],
            Self::Totp => vec![CallbackKind::Totp],
            Self::Provider => Vec::new(),
        }
    }
}

/// The public name of a journey: 128 random bits. Never a credential on its own.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct JourneyId(String);

impl JourneyId {
    fn from_bytes(bytes: &[u8; ID_BYTES]) -> Self {
        Self(URL_SAFE_NO_PAD.encode(bytes))
    }

    fn generate() -> Self {
        let mut bytes = [0u8; ID_BYTES];
        rand::rngs::OsRng.fill_bytes(&mut bytes);
        Self::from_bytes(&bytes)
    }

    /// The id as text; what CSRF tokens of the portal are bound to.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The key of the journey in the store: the hex SHA-256 of the id, so the store never holds
    /// a part of a live `auth_id`.
    pub fn store_key(&self) -> String {
        hex(&Sha256::digest(self.0.as_bytes()))
    }
}

impl fmt::Debug for JourneyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "JourneyId({})", self.0)
    }
}

/// The state of a journey in progress.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JourneyState {
    /// The journey's id.
    pub id: JourneyId,
    /// The realm it logs into; a journey of another realm is unknown here.
    pub realm: String,
    /// What it is for.
    pub purpose: Purpose,
    /// The step it waits for.
    pub step: Step,
    /// The user, once known (after the password, or from the session a step-up upgrades).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// Whether the session to be made is remembered.
    #[serde(default)]
    pub remember_me: bool,
    /// Authentication methods passed so far.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub amr: Vec<String>,
    /// The session a step-up upgrades (its public id).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upgrades: Option<SessionId>,
    /// Who the user is, for users a login provider vouched for (they are in no users file).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profile: Option<Profile>,
    /// The login provider whose answer the journey waits for ([`Step::Provider`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider: Option<String>,
    /// Where the visitor goes after signing in (the portal's `rd`, as given, checked again when
    /// used), kept across a trip to a login provider.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub return_to: Option<String>,
    /// Steps passed; part of every sealed state, so each sealed `auth_id` differs.
    pub seq: u32,
    /// When the journey ends, whatever happens.
    pub expires_at: Timestamp,
}

impl JourneyState {
    /// A new journey of `realm` waiting for `step`, ending `timeout` after `now`.
    pub fn start(realm: &str, purpose: Purpose, step: Step, now: Timestamp, timeout: Duration) -> Self {
        Self {
            id: JourneyId::generate(),
            realm: realm.to_owned(),
            purpose,
            step,
            user: None,
            remember_me: false,
            amr: Vec::new(),
            upgrades: None,
            profile: None,
            provider: None,
            return_to: None,
            seq: 0,
            expires_at: now + timeout,
        }
    }

    /// Whether the journey's time is up at `now`.
    pub fn is_expired(&self, now: Timestamp) -> bool {
        now >= self.expires_at
    }

    /// The state after a step passed: the next step, one more in the count.
    pub fn advanced(&self, step: Step) -> Self {
        Self { step, seq: self.seq.saturating_add(1), ..self.clone() }
    }
}

/// The identity a login provider passed, kept until the session is made.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Profile {
    /// Display name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    /// Email address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// Groups.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub groups: Vec<String>,
}

/// What the store holds for a journey (server-side, or client-side with allowlisting).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoredJourney {
    /// The hex SHA-256 of the `auth_id` accepted now.
    pub current: String,
    /// Wrong answers so far.
    #[serde(default)]
    pub failures: u32,
    /// The state, for server-side journeys.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<JourneyState>,
}

impl StoredJourney {
    /// The stored form.
    pub fn encode(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// Reads the stored form.
    ///
    /// # Errors
    /// [`JourneyError::Unknown`] when it does not decode.
    pub fn decode(bytes: &[u8]) -> Result<Self, JourneyError> {
        serde_json::from_slice(bytes).map_err(|_| JourneyError::Unknown)
    }

    /// Whether `auth_id` is the one accepted now (constant time).
    pub fn is_current(&self, auth_id: &str) -> bool {
        constant_time_eq(self.current.as_bytes(), auth_id_hash(auth_id).as_bytes())
    }
}

/// The hex SHA-256 of an `auth_id`, as [`StoredJourney::current`] holds it.
pub fn auth_id_hash(auth_id: &str) -> String {
    hex(&Sha256::digest(auth_id.as_bytes()))
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    bytes.iter().fold(String::with_capacity(bytes.len() * 2), |mut out, b| {
        let _ = write!(out, "{b:02x}");
        out
    })
}

/// Why an `auth_id` was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum JourneyError {
    /// Not an `auth_id` we issued for this realm (malformed, tampered, another realm's, or a
    /// journey that has ended).
    #[error("unknown or ended login")]
    Unknown,
    /// The journey's time is up.
    #[error("the login has expired")]
    Expired,
    /// An `auth_id` that was current once but is no longer.
    #[error("this step of the login was already used")]
    Replayed,
}

/// A server-side `auth_id`: 256 random bits, the first 128 naming the journey.
#[derive(Clone)]
pub struct ServerAuthId {
    text: String,
    id: JourneyId,
}

impl ServerAuthId {
    /// A new `auth_id` for the journey `id`.
    pub fn issue(id: &JourneyId) -> Self {
        let mut bytes = [0u8; 2 * ID_BYTES];
        // The journey half is the id itself; the other half is fresh for every step.
        let mut journey = [0u8; ID_BYTES];
        match URL_SAFE_NO_PAD.decode_slice(id.as_str(), &mut journey) {
            Ok(ID_BYTES) => bytes[..ID_BYTES].copy_from_slice(&journey),
            _ => rand::rngs::OsRng.fill_bytes(&mut bytes[..ID_BYTES]),
        }
        rand::rngs::OsRng.fill_bytes(&mut bytes[ID_BYTES..]);
        Self::from_bytes(&bytes)
    }

    fn from_bytes(bytes: &[u8; 2 * ID_BYTES]) -> Self {
        let mut journey = [0u8; ID_BYTES];
        journey.copy_from_slice(&bytes[..ID_BYTES]);
        Self { text: URL_SAFE_NO_PAD.encode(bytes), id: JourneyId::from_bytes(&journey) }
    }

    /// Parses a presented `auth_id`; only the canonical spelling of 32 bytes is accepted.
    ///
    /// # Errors
    /// [`JourneyError::Unknown`] for anything else.
    pub fn parse(text: &str) -> Result<Self, JourneyError> {
        let mut bytes = [0u8; 2 * ID_BYTES];
        match URL_SAFE_NO_PAD.decode_slice(text, &mut bytes) {
            Ok(n) if n == 2 * ID_BYTES && text.len() == 43 => {}
            _ => return Err(JourneyError::Unknown),
        }
        let parsed = Self::from_bytes(&bytes);
        // One spelling per value: the base64 tail bits must be zero.
        if parsed.text != text {
            return Err(JourneyError::Unknown);
        }
        Ok(parsed)
    }

    /// The journey it belongs to.
    pub fn journey(&self) -> &JourneyId {
        &self.id
    }

    /// The text handed to the client.
    pub fn as_str(&self) -> &str {
        &self.text
    }
}

impl fmt::Debug for ServerAuthId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ServerAuthId({:?}, [redacted])", self.id)
    }
}

/// Seals client-side journey states into `auth_id`s and opens them again.
#[derive(Clone, Debug)]
pub struct JourneyCodec {
    sealer: Sealer,
}

impl JourneyCodec {
    /// A codec under `secret`, also opening states sealed under `previous`.
    pub fn new(secret: &[u8], previous: Option<&[u8]>) -> Self {
        Self { sealer: Sealer::new("sessiond journey v1", secret, previous) }
    }

    fn associated_data(realm: &str) -> Vec<u8> {
        let mut aad = b"sessiond journey\0".to_vec();
        aad.extend_from_slice(realm.as_bytes());
        aad
    }

    /// The `auth_id` that carries `state`.
    pub fn seal(&self, state: &JourneyState) -> String {
        let json = serde_json::to_vec(state).unwrap_or_default();
        URL_SAFE_NO_PAD.encode(self.sealer.seal(&Self::associated_data(&state.realm), &json))
    }

    /// The state an `auth_id` presented to `realm` carries, if it is one we sealed for `realm`
    /// and its time is not up. Never panics, whatever the input.
    ///
    /// # Errors
    /// [`JourneyError::Unknown`] for anything we did not seal for this realm,
    /// [`JourneyError::Expired`] past the journey's deadline.
    pub fn open(&self, realm: &str, auth_id: &str, now: Timestamp) -> Result<JourneyState, JourneyError> {
        if auth_id.len() > MAX_AUTH_ID_CHARS {
            return Err(JourneyError::Unknown);
        }
        let sealed = URL_SAFE_NO_PAD.decode(auth_id).map_err(|_| JourneyError::Unknown)?;
        let json = self.sealer.open(&Self::associated_data(realm), &sealed).map_err(|_| JourneyError::Unknown)?;
        let state: JourneyState = serde_json::from_slice(&json).map_err(|_| JourneyError::Unknown)?;
        if state.realm != realm {
            return Err(JourneyError::Unknown);
        }
        if state.is_expired(now) {
            return Err(JourneyError::Expired);
        }
        Ok(state)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const SECRET: &[u8] = b"a secret of at least thirty-two bytes!!";
    const T0: Timestamp = Timestamp::from_unix(1_800_000_000);

    fn state() -> JourneyState {
        JourneyState::start("main", Purpose::Login, Step::Password, T0, DEFAULT_TIMEOUT)
    }

    #[test]
    fn callbacks_follow_the_step_and_the_realm() {
        assert_eq!(Step::Password.callbacks(false), vec![CallbackKind::Username, CallbackKind::Password]);
        assert_eq!(Step::Password.callbacks(true).len(), 3);
        assert_eq!(Step::Totp.callbacks(true), vec![CallbackKind::Totp]);
    }

    #[test]
    fn server_auth_ids_name_their_journey_and_differ_per_step() {
        let s = state();
        let first = ServerAuthId::issue(&s.id);
        let second = ServerAuthId::issue(&s.id);
        assert_eq!(first.journey(), &s.id);
        assert_eq!(second.journey(), &s.id);
        assert_ne!(first.as_str(), second.as_str());
        assert_eq!(first.as_str().len(), 43);
        let parsed = ServerAuthId::parse(first.as_str()).unwrap();
        assert_eq!(parsed.journey(), &s.id);
        for junk in
            ["", "x", &"A".repeat(42), &"A".repeat(44), &format!("{}=", first.as_str()), "!".repeat(43).as_str()]
        {
            assert!(ServerAuthId::parse(junk).is_err(), "{junk:?}");
        }
        // 32 bytes take 43 characters with two bits to spare: set, they are another spelling.
        let mut raw = [0u8; 32];
        URL_SAFE_NO_PAD.decode_slice(first.as_str(), &mut raw).unwrap();
        let canonical = URL_SAFE_NO_PAD.encode(raw);
        let last = canonical.chars().last().unwrap();
        let index = base64_index(last);
        let spelled = format!("{}{}", &canonical[..42], base64_char(index | 1));
        if index & 1 == 0 {
            assert!(ServerAuthId::parse(&spelled).is_err(), "{spelled}");
        }
    }

    #[test]
    fn stored_journeys_know_their_current_auth_id() {
        let s = state();
        let a = ServerAuthId::issue(&s.id);
        let b = ServerAuthId::issue(&s.id);
        let stored = StoredJourney { current: auth_id_hash(a.as_str()), failures: 0, state: Some(s) };
        assert!(stored.is_current(a.as_str()));
        assert!(!stored.is_current(b.as_str()));
        assert_eq!(StoredJourney::decode(&stored.encode()).unwrap(), stored);
        assert!(StoredJourney::decode(b"{\"current\":\"x\",\"extra\":1}").is_err());
        assert_ne!(s_key(&stored), auth_id_hash(a.as_str()), "the store key is not the auth_id's hash");
    }

    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

    fn base64_index(c: char) -> usize {
        ALPHABET.iter().position(|&b| b as char == c).unwrap()
    }

    fn base64_char(i: usize) -> char {
        ALPHABET[i] as char
    }

    fn s_key(stored: &StoredJourney) -> String {
        stored.state.as_ref().unwrap().id.store_key()
    }

    #[test]
    fn sealed_states_open_only_in_their_realm_and_until_their_deadline() {
        let codec = JourneyCodec::new(SECRET, None);
        let s = state();
        let auth_id = codec.seal(&s);
        assert_eq!(codec.open("main", &auth_id, T0).unwrap(), s);
        assert_eq!(codec.open("other", &auth_id, T0), Err(JourneyError::Unknown));
        assert_eq!(codec.open("main", &auth_id, T0 + DEFAULT_TIMEOUT), Err(JourneyError::Expired));
        assert_ne!(codec.seal(&s.advanced(Step::Totp)), auth_id);
        let stranger = JourneyCodec::new(b"another secret of thirty-two bytes!!!!", None);
        assert_eq!(stranger.open("main", &auth_id, T0), Err(JourneyError::Unknown));
        let rotated = JourneyCodec::new(b"the new secret of thirty-two bytes!!!!", Some(SECRET));
        assert_eq!(rotated.open("main", &auth_id, T0).unwrap(), s, "secret_previous still opens");
        let mut raw = URL_SAFE_NO_PAD.decode(&auth_id).unwrap();
        let last = raw.len() - 1;
        raw[last] ^= 1;
        assert_eq!(codec.open("main", &URL_SAFE_NO_PAD.encode(&raw), T0), Err(JourneyError::Unknown));
        for junk in ["", "x", "!!!!", &"A".repeat(MAX_AUTH_ID_CHARS + 1)] {
            assert_eq!(codec.open("main", junk, T0), Err(JourneyError::Unknown));
        }
    }

    #[test]
    fn advancing_counts_steps_and_keeps_the_deadline() {
        let s = state();
        let next = s.advanced(Step::Totp);
        assert_eq!((next.step, next.seq, next.expires_at, &next.id), (Step::Totp, 1, s.expires_at, &s.id));
    }

    proptest! {
        #[test]
        fn no_random_text_opens(text in "[A-Za-z0-9_-]{0,400}") {
            let codec = JourneyCodec::new(SECRET, None);
            prop_assert!(codec.open("main", &text, T0).is_err());
        }
    }
}
