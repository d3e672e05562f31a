//! Client-side sessions (`location: client`): the whole session travels in the cookie, sealed.
//!
//! The cookie value is the unpadded base64url of a [`Sealer`] value: a version byte, the id of
//! the key (4 bytes), a nonce (24), then the session's binary layout encrypted and authenticated
//! with XChaCha20-Poly1305 (16-byte tag), under a key derived from the server secret with the
//! label `sessiond client session v1`. The key id lets a cookie name the key that opens it, so the
//! secret can be rotated: cookies are sealed under `secret` and open under it or under
//! `secret_previous`. The associated data is the realm's name and its cookie's name, so a cookie
//! taken from another realm, or kept across a change of the cookie name, does not open.
//!
//! The plaintext (integers big-endian; `str` is a LEB128 length, then that many bytes of UTF-8;
//! `list` is a LEB128 count, then that many `str`):
//!
//! ```text
//! id (16 bytes) | created_at (i64, Unix seconds)
//! | last_seen_at (u32, seconds after created_at) | absolute_deadline (u32, seconds after created_at)
//! | flags (u8) | user (str) | display_name (str)? | email (str)? | ip (str)? | user_agent (str)?
//! | groups (list) | amr (list) | attributes (str: a non-empty JSON object)?
//! ```
//!
//! Flags: `1` remember me, and `2` display name, `4` email, `8` ip, `16` user agent, `32`
//! attributes when present. The realm is not in the plaintext: the associated data proves it. A
//! different layout gets a new key label, so old and new cookies never open as each other.
//!
//! Opening never panics and refuses everything it did not make: an input longer than a cookie
//! can be is refused before it is decoded, then anything that is not canonical base64url, is
//! sealed under a key we do not hold, does not verify, or does not decode exactly. Sealing
//! refuses a session whose whole `Set-Cookie` header would pass [`MAX_SET_COOKIE_BYTES`]
//! (browsers drop such cookies without a word); it never truncates.
//!
//! ```
//! use sessiond_core::client_session::{ClientSession, ClientSessionCodec};
//! use sessiond_core::cookie::{CookieSpec, SameSite};
//! use sessiond_core::time::Timestamp;
//! use sessiond_core::token::SessionId;
//! use std::time::Duration;
//!
//! let codec = ClientSessionCodec::new(b"a server secret of at least 32 bytes", None);
//! let now = Timestamp::from_unix(1_800_000_000);
//! let session = ClientSession {
//!     id: SessionId::generate(),
//!     realm: "main".into(),
//!     user: "alice".into(),
//!     display_name: None,
//!     email: None,
//!     groups: vec!["dev".into()],
//!     amr: vec!["pwd".into()],
//!     created_at: now,
//!     last_seen_at: now,
//!     absolute_deadline: now + Duration::from_secs(3600),
//!     remember_me: false,
//!     ip: None,
//!     user_agent: None,
//!     attributes: Default::default(),
//! };
//! let cookie = CookieSpec {
//!     name: "sd_main".into(),
//!     domain: None,
//!     secure: true,
//!     http_only: true,
//!     same_site: SameSite::Lax,
//!     persistent: true,
//! };
//! let sealed = codec.seal(&session, &cookie, Some(Duration::from_secs(300))).unwrap();
//! assert!(sealed.set_cookie.len() <= 4096);
//! assert_eq!(codec.open("main", "sd_main", sealed.value.as_str()).unwrap(), session);
//! // The same cookie presented to another realm does not open.
//! assert!(codec.open("intranet", "sd_main", sealed.value.as_str()).is_err());
//! ```

use crate::cookie::CookieSpec;
use crate::keys::{KEY_ID_LEN, SEAL_OVERHEAD, SealError, Sealer};
use crate::session::SessionRecord;
use crate::time::Timestamp;
use crate::timeout::SessionTimes;
use crate::token::{ID_BYTES, SessionId, TokenHash};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest as _, Sha256};
use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

/// The largest `Set-Cookie` header (name, value and attributes) that every browser keeps.
pub const MAX_SET_COOKIE_BYTES: usize = 4096;
/// The longest cookie value [`ClientSessionCodec::open`] looks at; longer input is refused
/// before it is decoded. No cookie we set can be longer.
pub const MAX_VALUE_CHARS: usize = MAX_SET_COOKIE_BYTES;

/// The HKDF label of the cookie key; a new label means a new, incompatible layout.
const PURPOSE: &str = "sessiond client session v1";
/// Bytes of the fixed part of the plaintext: id, three instants, flags.
const FIXED_LEN: usize = ID_BYTES + 8 + 4 + 4 + 1;
/// The smallest plaintext: the fixed part, an empty user name and two empty lists.
const MIN_PLAINTEXT: usize = FIXED_LEN + 3;
/// The shortest cookie value we can have made.
pub const MIN_VALUE_CHARS: usize = base64_len(SEAL_OVERHEAD + MIN_PLAINTEXT);

const REMEMBER_ME: u8 = 1;
const DISPLAY_NAME: u8 = 2;
const EMAIL: u8 = 4;
const IP: u8 = 8;
const USER_AGENT: u8 = 16;
const ATTRIBUTES: u8 = 32;
const KNOWN_FLAGS: u8 = REMEMBER_ME | DISPLAY_NAME | EMAIL | IP | USER_AGENT | ATTRIBUTES;

/// Characters of unpadded base64 for `bytes` bytes.
const fn base64_len(bytes: usize) -> usize {
    (bytes * 4).div_ceil(3)
}

/// Why a cookie value did not open, or a session could not be sealed. Never carries the value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ClientSessionError {
    /// The input is longer than any cookie we set; it was not decoded.
    #[error("cookie value of {len} characters is longer than the {max} accepted")]
    TooLong {
        /// Characters presented.
        len: usize,
        /// The most we accept.
        max: usize,
    },
    /// Not a client-side session value: too short, not canonical base64url, an unknown version,
    /// or a plaintext that does not decode.
    #[error("not a client-side session cookie")]
    Malformed,
    /// Sealed under a key this server does not hold: another secret, or one rotated out.
    #[error("sealed under a key this server does not hold")]
    UnknownKey,
    /// Altered, or made for another realm or cookie name.
    #[error("does not verify: altered, or made for another realm or cookie name")]
    Forged,
    /// The session does not fit in a cookie.
    #[error(
        "the session does not fit in a cookie: its Set-Cookie header would take {len} bytes, \
         at most {max} are allowed"
    )]
    TooLarge {
        /// Bytes the whole `Set-Cookie` header would take.
        len: usize,
        /// The limit, [`MAX_SET_COOKIE_BYTES`].
        max: usize,
    },
    /// A value of the session does not fit the layout (last seen before creation, a deadline
    /// more than 136 years after it).
    #[error("the session cannot be encoded: {0}")]
    Unencodable(&'static str),
}

/// A client-side session cookie value as presented, checked for shape only (length and
/// base64url alphabet); whether it opens is [`ClientSessionCodec::open`]'s business. Its `Debug`
/// never shows it: it is a credential.
#[derive(Clone, PartialEq, Eq)]
pub struct SealedSession(String);

impl SealedSession {
    /// Accepts text that could be one of our values: [`MIN_VALUE_CHARS`] to [`MAX_VALUE_CHARS`]
    /// characters of the base64url alphabet.
    ///
    /// # Errors
    /// [`ClientSessionError::TooLong`] or [`ClientSessionError::Malformed`].
    pub fn parse(text: &str) -> Result<Self, ClientSessionError> {
        if text.len() > MAX_VALUE_CHARS {
            return Err(ClientSessionError::TooLong { len: text.len(), max: MAX_VALUE_CHARS });
        }
        let alphabet = |b: &u8| b.is_ascii_alphanumeric() || *b == b'-' || *b == b'_';
        if text.len() < MIN_VALUE_CHARS || !text.bytes().all(|b| alphabet(&b)) {
            return Err(ClientSessionError::Malformed);
        }
        Ok(Self(text.to_owned()))
    }

    /// The value, as written into the cookie.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for SealedSession {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SealedSession([redacted])")
    }
}

/// The stand-in for a token hash that names a client-side session where server-side sessions
/// use the hash of their token (the binding of the portal's CSRF tokens, "is this the caller's
/// own session"): SHA-256 of a label and the session id. It is never a key in the store, and it
/// changes neither when the cookie is sealed again nor when the secret rotates.
pub fn binding_hash(id: &SessionId) -> TokenHash {
    TokenHash(Sha256::new().chain_update(b"sessiond client session\0").chain_update(id.as_str()).finalize().into())
}

/// Everything a client-side session cookie holds: the fields of [`SessionRecord`] that describe
/// the session (no token hash: there is no token, and no `expires_at`: the policy derives it).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClientSession {
    /// Public id, used in revocations and logs; never a credential.
    pub id: SessionId,
    /// Realm the session belongs to (proved by the associated data, not stored in the plaintext).
    pub realm: String,
    /// User name.
    pub user: String,
    /// Human-readable name of the user.
    pub display_name: Option<String>,
    /// The user's email address.
    pub email: Option<String>,
    /// Groups of the user at login.
    pub groups: Vec<String>,
    /// How the user authenticated (`pwd`, `otp`).
    pub amr: Vec<String>,
    /// When the session was created.
    pub created_at: Timestamp,
    /// When a request last moved the idle deadline.
    pub last_seen_at: Timestamp,
    /// The absolute deadline set at login.
    pub absolute_deadline: Timestamp,
    /// Whether the user ticked "remember me".
    pub remember_me: bool,
    /// Client address at login.
    pub ip: Option<String>,
    /// Client user agent at login.
    pub user_agent: Option<String>,
    /// Free-form attributes attached by the application.
    pub attributes: BTreeMap<String, serde_json::Value>,
}

impl ClientSession {
    /// The session a record describes.
    pub fn from_record(record: &SessionRecord) -> Self {
        Self {
            id: record.id.clone(),
            realm: record.realm.clone(),
            user: record.user.clone(),
            display_name: record.display_name.clone(),
            email: record.email.clone(),
            groups: record.groups.clone(),
            amr: record.amr.clone(),
            created_at: record.created_at,
            last_seen_at: record.last_seen_at,
            absolute_deadline: record.absolute_deadline,
            remember_me: record.remember_me,
            ip: record.ip.clone(),
            user_agent: record.user_agent.clone(),
            attributes: record.attributes.clone(),
        }
    }

    /// The session as a record, for code that handles both locations; its token hash is the
    /// session's [`binding_hash`].
    pub fn into_record(self, expires_at: Timestamp) -> SessionRecord {
        SessionRecord {
            token_hash: binding_hash(&self.id),
            id: self.id,
            realm: self.realm,
            user: self.user,
            display_name: self.display_name,
            email: self.email,
            groups: self.groups,
            amr: self.amr,
            created_at: self.created_at,
            last_seen_at: self.last_seen_at,
            absolute_deadline: self.absolute_deadline,
            expires_at,
            remember_me: self.remember_me,
            ip: self.ip,
            user_agent: self.user_agent,
            attributes: self.attributes,
        }
    }

    /// The instants the timeout policy needs.
    pub fn times(&self) -> SessionTimes {
        SessionTimes {
            created_at: self.created_at,
            last_seen_at: self.last_seen_at,
            absolute_deadline: self.absolute_deadline,
            remember_me: self.remember_me,
        }
    }
}

/// A sealed session: the cookie value and the whole `Set-Cookie` header that carries it.
#[derive(Clone)]
pub struct SealedCookie {
    /// The cookie value.
    pub value: SealedSession,
    /// The `Set-Cookie` header value, at most [`MAX_SET_COOKIE_BYTES`] long.
    pub set_cookie: String,
}

impl fmt::Debug for SealedCookie {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SealedCookie([redacted])")
    }
}

/// A cookie value that opened.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Opened {
    /// The session it holds.
    pub session: ClientSession,
    /// Sealed under `secret_previous`: worth sealing again under the current secret.
    pub under_previous_key: bool,
}

/// Seals sessions into cookie values and opens them again.
#[derive(Clone, Debug)]
pub struct ClientSessionCodec {
    sealer: Sealer,
    /// Ids of the keys that open cookies: the current one, then the previous one.
    key_ids: Vec<[u8; KEY_ID_LEN]>,
}

impl ClientSessionCodec {
    /// A codec under `secret`, also opening cookies sealed under `previous` (the secret before a
    /// rotation).
    pub fn new(secret: &[u8], previous: Option<&[u8]>) -> Self {
        let sealer = Sealer::new(PURPOSE, secret, previous);
        let mut key_ids = vec![sealer.current_key_id()];
        key_ids.extend(previous.map(|p| Sealer::new(PURPOSE, p, None).current_key_id()));
        Self { sealer, key_ids }
    }

    /// Whether `value` has the shape of our cookie values and names a key this codec holds,
    /// without opening it: how a bearer token of ours is told apart from an application's own
    /// (which a proxy passes along, and which must not hide the session cookie). A value of
    /// ours sealed under a secret since rotated out is no longer ours.
    pub fn is_ours(&self, value: &str) -> bool {
        if SealedSession::parse(value).is_err() {
            return false;
        }
        // Eight characters are six whole bytes: the version, the key id and a byte of nonce.
        let mut head = [0u8; 6];
        let decoded = value.get(..8).map(|start| URL_SAFE_NO_PAD.decode_slice(start, &mut head));
        matches!(decoded, Some(Ok(6))) && self.key_ids.iter().any(|id| head[1..1 + KEY_ID_LEN] == *id)
    }

    /// Seals `session` for its realm and `cookie`'s name, and writes the `Set-Cookie` header
    /// that carries it (see [`CookieSpec::set_cookie`] for `max_age`).
    ///
    /// # Errors
    /// [`ClientSessionError::TooLarge`] when the header would pass [`MAX_SET_COOKIE_BYTES`] (the
    /// size is known before anything is encrypted), [`ClientSessionError::Unencodable`] for
    /// instants the layout cannot hold.
    pub fn seal(
        &self,
        session: &ClientSession,
        cookie: &CookieSpec,
        max_age: Option<Duration>,
    ) -> Result<SealedCookie, ClientSessionError> {
        let plaintext = encode(session)?;
        let len = cookie.set_cookie("", max_age).len().saturating_add(base64_len(SEAL_OVERHEAD + plaintext.len()));
        if len > MAX_SET_COOKIE_BYTES {
            return Err(ClientSessionError::TooLarge { len, max: MAX_SET_COOKIE_BYTES });
        }
        let sealed = self.sealer.seal(&associated_data(&session.realm, &cookie.name), &plaintext);
        let value = URL_SAFE_NO_PAD.encode(sealed);
        let set_cookie = cookie.set_cookie(&value, max_age);
        Ok(SealedCookie { value: SealedSession(value), set_cookie })
    }

    /// Opens the cookie `value` presented to `realm` under the cookie called `cookie_name`.
    /// Never panics, whatever the input: this is the fuzz target of the format.
    ///
    /// # Errors
    /// [`ClientSessionError`]: too long, malformed, unknown key, forged (which includes another
    /// realm's or another cookie name's value).
    pub fn open(&self, realm: &str, cookie_name: &str, value: &str) -> Result<ClientSession, ClientSessionError> {
        self.open_detailed(realm, cookie_name, value).map(|opened| opened.session)
    }

    /// [`ClientSessionCodec::open`], also saying whether the value was sealed under the previous
    /// secret.
    ///
    /// # Errors
    /// As [`ClientSessionCodec::open`].
    pub fn open_detailed(&self, realm: &str, cookie_name: &str, value: &str) -> Result<Opened, ClientSessionError> {
        let value = SealedSession::parse(value)?;
        let sealed = URL_SAFE_NO_PAD.decode(value.as_str()).map_err(|_| ClientSessionError::Malformed)?;
        let plaintext = self.sealer.open(&associated_data(realm, cookie_name), &sealed).map_err(|e| match e {
            SealError::UnknownKey => ClientSessionError::UnknownKey,
            SealError::Forged => ClientSessionError::Forged,
            _ => ClientSessionError::Malformed,
        })?;
        let under_previous_key = sealed.get(1..1 + KEY_ID_LEN) != Some(self.sealer.current_key_id().as_slice());
        let session = decode(realm, &plaintext)?;
        Ok(Opened { session, under_previous_key })
    }
}

/// What a value is bound to: a label, the realm and the cookie name, each length-prefixed so
/// that no two pairs give the same bytes.
fn associated_data(realm: &str, cookie_name: &str) -> Vec<u8> {
    let mut aad = Vec::with_capacity(32 + realm.len() + cookie_name.len());
    aad.extend_from_slice(b"sessiond client session\0");
    for part in [realm, cookie_name] {
        aad.extend_from_slice(&u64::try_from(part.len()).unwrap_or(u64::MAX).to_be_bytes());
        aad.extend_from_slice(part.as_bytes());
    }
    aad
}

fn put_varint(out: &mut Vec<u8>, mut n: u32) {
    while n >= 0x80 {
        out.push((n & 0x7f) as u8 | 0x80);
        n >>= 7;
    }
    out.push(n as u8);
}

fn put_str(out: &mut Vec<u8>, s: &str) -> Result<(), ClientSessionError> {
    let len = u32::try_from(s.len()).map_err(|_| ClientSessionError::Unencodable("a text is longer than 4 GiB"))?;
    put_varint(out, len);
    out.extend_from_slice(s.as_bytes());
    Ok(())
}

fn put_list(out: &mut Vec<u8>, items: &[String]) -> Result<(), ClientSessionError> {
    let count = u32::try_from(items.len()).map_err(|_| ClientSessionError::Unencodable("a list is too long"))?;
    put_varint(out, count);
    items.iter().try_for_each(|item| put_str(out, item))
}

fn seconds_after(start: Timestamp, t: Timestamp, what: &'static str) -> Result<u32, ClientSessionError> {
    t.unix().checked_sub(start.unix()).and_then(|d| u32::try_from(d).ok()).ok_or(ClientSessionError::Unencodable(what))
}

/// The plaintext layout of `session` (see the module doc).
fn encode(session: &ClientSession) -> Result<Vec<u8>, ClientSessionError> {
    let mut id = [0u8; ID_BYTES];
    match URL_SAFE_NO_PAD.decode_slice(session.id.as_str(), &mut id) {
        Ok(ID_BYTES) => {}
        _ => return Err(ClientSessionError::Unencodable("session id")),
    }
    let last_seen = seconds_after(session.created_at, session.last_seen_at, "last seen before creation")?;
    let deadline = seconds_after(session.created_at, session.absolute_deadline, "deadline out of range")?;
    let attributes = if session.attributes.is_empty() {
        None
    } else {
        let json = serde_json::to_string(&session.attributes)
            .map_err(|_| ClientSessionError::Unencodable("attributes are not JSON"))?;
        Some(json)
    };
    let mut flags = 0;
    for (flag, present) in [
        (REMEMBER_ME, session.remember_me),
        (DISPLAY_NAME, session.display_name.is_some()),
        (EMAIL, session.email.is_some()),
        (IP, session.ip.is_some()),
        (USER_AGENT, session.user_agent.is_some()),
        (ATTRIBUTES, attributes.is_some()),
    ] {
        if present {
            flags |= flag;
        }
    }
    let mut out = Vec::with_capacity(128);
    out.extend_from_slice(&id);
    out.extend_from_slice(&session.created_at.unix().to_be_bytes());
    out.extend_from_slice(&last_seen.to_be_bytes());
    out.extend_from_slice(&deadline.to_be_bytes());
    out.push(flags);
    put_str(&mut out, &session.user)?;
    for text in [&session.display_name, &session.email, &session.ip, &session.user_agent].into_iter().flatten() {
        put_str(&mut out, text)?;
    }
    put_list(&mut out, &session.groups)?;
    put_list(&mut out, &session.amr)?;
    if let Some(json) = &attributes {
        put_str(&mut out, json)?;
    }
    Ok(out)
}

/// Reads the plaintext layout; anything short, long or out of shape is `Malformed`.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], ClientSessionError> {
        if n > self.0.len() {
            return Err(ClientSessionError::Malformed);
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], ClientSessionError> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }

    /// A LEB128 `u32` in its shortest form: an overlong or overflowing one is refused, so every
    /// number has exactly one spelling.
    fn varint(&mut self) -> Result<u32, ClientSessionError> {
        let mut value: u32 = 0;
        for i in 0..5 {
            let [byte] = self.array::<1>()?;
            let bits = u32::from(byte & 0x7f);
            if i == 4 && bits > 0x0f {
                return Err(ClientSessionError::Malformed);
            }
            value |= bits << (7 * i);
            if byte & 0x80 == 0 {
                if i > 0 && byte == 0 {
                    return Err(ClientSessionError::Malformed);
                }
                return Ok(value);
            }
        }
        Err(ClientSessionError::Malformed)
    }

    fn string(&mut self) -> Result<String, ClientSessionError> {
        let len = usize::try_from(self.varint()?).map_err(|_| ClientSessionError::Malformed)?;
        let bytes = self.take(len)?;
        String::from_utf8(bytes.to_vec()).map_err(|_| ClientSessionError::Malformed)
    }

    fn list(&mut self) -> Result<Vec<String>, ClientSessionError> {
        let count = usize::try_from(self.varint()?).map_err(|_| ClientSessionError::Malformed)?;
        // Every item takes at least its length byte: a count beyond what is left is a lie.
        if count > self.0.len() {
            return Err(ClientSessionError::Malformed);
        }
        (0..count).map(|_| self.string()).collect()
    }
}

/// The session of `realm` held by `plaintext`.
fn decode(realm: &str, plaintext: &[u8]) -> Result<ClientSession, ClientSessionError> {
    let malformed = ClientSessionError::Malformed;
    let mut r = Reader(plaintext);
    let id = SessionId::parse(&URL_SAFE_NO_PAD.encode(r.array::<ID_BYTES>()?)).map_err(|_| malformed.clone())?;
    let created_at = Timestamp::from_unix(i64::from_be_bytes(r.array()?));
    let last_seen_at = created_at + Duration::from_secs(u64::from(u32::from_be_bytes(r.array()?)));
    let absolute_deadline = created_at + Duration::from_secs(u64::from(u32::from_be_bytes(r.array()?)));
    let [flags] = r.array::<1>()?;
    if flags & !KNOWN_FLAGS != 0 {
        return Err(malformed);
    }
    let user = r.string()?;
    let mut optional = |flag: u8| if flags & flag != 0 { r.string().map(Some) } else { Ok(None) };
    let display_name = optional(DISPLAY_NAME)?;
    let email = optional(EMAIL)?;
    let ip = optional(IP)?;
    let user_agent = optional(USER_AGENT)?;
    let groups = r.list()?;
    let amr = r.list()?;
    let attributes = if flags & ATTRIBUTES != 0 {
        let json = r.string()?;
        let map: BTreeMap<String, serde_json::Value> = serde_json::from_str(&json).map_err(|_| malformed.clone())?;
        if map.is_empty() {
            return Err(malformed);
        }
        map
    } else {
        BTreeMap::new()
    };
    if !r.0.is_empty() {
        return Err(malformed);
    }
    Ok(ClientSession {
        id,
        realm: realm.to_owned(),
        user,
        display_name,
        email,
        groups,
        amr,
        created_at,
        last_seen_at,
        absolute_deadline,
        remember_me: flags & REMEMBER_ME != 0,
        ip,
        user_agent,
        attributes,
    })
}

/// The plaintext decoder on its own, for fuzzing: what the cipher hides from random input.
/// Whatever decodes must encode again and decode to the same session.
///
/// # Errors
/// As the decoder: [`ClientSessionError::Malformed`] for anything out of shape.
#[doc(hidden)]
pub fn fuzz_decode(plaintext: &[u8]) -> Result<ClientSession, ClientSessionError> {
    let session = decode("main", plaintext)?;
    if let Ok(again) = encode(&session) {
        assert_eq!(decode("main", &again).as_ref(), Ok(&session), "a decoded session did not survive encoding");
    }
    Ok(session)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cookie::SameSite;
    use proptest::prelude::*;

    const SECRET: &[u8] = b"the current secret, thirty-two bytes";
    const OLD: &[u8] = b"the previous secret, thirty-two bytes";
    const NOW: Timestamp = Timestamp::from_unix(1_800_000_000);

    fn codec() -> ClientSessionCodec {
        ClientSessionCodec::new(SECRET, None)
    }

    fn cookie(name: &str) -> CookieSpec {
        CookieSpec {
            name: name.to_owned(),
            domain: Some("example.com".to_owned()),
            secure: true,
            http_only: true,
            same_site: SameSite::Lax,
            persistent: true,
        }
    }

    fn session() -> ClientSession {
        ClientSession {
            id: SessionId::generate(),
            realm: "main".to_owned(),
            user: "alice".to_owned(),
            display_name: Some("Alice Liddell".to_owned()),
            email: Some("alice@example.com".to_owned()),
            groups: vec!["admins".to_owned(), "dev".to_owned()],
            amr: vec!["pwd".to_owned(), "otp".to_owned()],
            created_at: NOW,
            last_seen_at: NOW + Duration::from_secs(90),
            absolute_deadline: NOW + Duration::from_secs(3600),
            remember_me: false,
            ip: Some("192.0.2.7".to_owned()),
            user_agent: Some("Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0".to_owned()),
            attributes: BTreeMap::from([("tenant".to_owned(), serde_json::json!("acme"))]),
        }
    }

    fn seal(codec: &ClientSessionCodec, s: &ClientSession) -> String {
        codec.seal(s, &cookie("sd_main"), Some(Duration::from_secs(300))).unwrap().value.as_str().to_owned()
    }

    #[test]
    fn a_sealed_session_opens_whole_in_its_realm() {
        let codec = codec();
        let s = session();
        let value = seal(&codec, &s);
        let opened = codec.open_detailed("main", "sd_main", &value).unwrap();
        assert_eq!(opened.session, s);
        assert!(!opened.under_previous_key);
        // Nothing of the session shows through.
        for secret in ["alice", "Liddell", "acme", "Firefox", "192.0.2.7"] {
            let decoded = URL_SAFE_NO_PAD.decode(&value).unwrap();
            assert!(!decoded.windows(secret.len()).any(|w| w == secret.as_bytes()), "{secret} visible");
        }
        // A fresh nonce each time.
        assert_ne!(value, seal(&codec, &s));
    }

    #[test]
    fn a_minimal_session_round_trips() {
        let codec = codec();
        let s = ClientSession {
            user: String::new(),
            display_name: None,
            email: None,
            groups: vec![],
            amr: vec![],
            last_seen_at: NOW,
            absolute_deadline: NOW,
            ip: None,
            user_agent: None,
            attributes: BTreeMap::new(),
            remember_me: true,
            ..session()
        };
        let value = seal(&codec, &s);
        assert_eq!(value.len(), MIN_VALUE_CHARS);
        assert_eq!(codec.open("main", "sd_main", &value).unwrap(), s);
    }

    #[test]
    fn the_encoding_is_compact() {
        // A full session with a long browser user agent: well under a kilobyte.
        let sealed = codec().seal(&session(), &cookie("sd_main"), Some(Duration::from_secs(300))).unwrap();
        let plaintext = encode(&session()).unwrap();
        assert_eq!(sealed.value.as_str().len(), base64_len(SEAL_OVERHEAD + plaintext.len()));
        assert!(sealed.value.as_str().len() < 400, "{} characters", sealed.value.as_str().len());
        assert!(sealed.set_cookie.starts_with("sd_main="));
        assert!(
            sealed.set_cookie.ends_with("; Path=/; Domain=example.com; Max-Age=300; HttpOnly; Secure; SameSite=Lax")
        );
    }

    #[test]
    fn another_realm_or_cookie_name_is_refused() {
        let codec = codec();
        let value = seal(&codec, &session());
        assert_eq!(codec.open("intranet", "sd_main", &value), Err(ClientSessionError::Forged));
        assert_eq!(codec.open("main", "sd_other", &value), Err(ClientSessionError::Forged));
        // The length prefixes keep ("ma", "insd_main") apart from ("main", "sd_main").
        assert_eq!(codec.open("ma", "insd_main", &value), Err(ClientSessionError::Forged));
    }

    #[test]
    fn every_flipped_byte_and_character_is_refused() {
        let codec = codec();
        let value = seal(&codec, &session());
        let bytes = URL_SAFE_NO_PAD.decode(&value).unwrap();
        for i in 0..bytes.len() {
            for bit in [0x01, 0x80] {
                let mut bad = bytes.clone();
                bad[i] ^= bit;
                assert!(codec.open("main", "sd_main", &URL_SAFE_NO_PAD.encode(&bad)).is_err(), "byte {i}");
            }
        }
        for i in 0..value.len() {
            let mut bad = value.clone().into_bytes();
            bad[i] = if bad[i] == b'A' { b'B' } else { b'A' };
            let bad = String::from_utf8(bad).unwrap();
            assert!(codec.open("main", "sd_main", &bad).is_err(), "character {i}");
        }
    }

    #[test]
    fn truncated_and_extended_values_are_refused() {
        let codec = codec();
        let value = seal(&codec, &session());
        for len in 0..value.len() {
            assert!(codec.open("main", "sd_main", &value[..len]).is_err(), "opened with {len} characters");
        }
        for extra in ["A", "AA", "AAA", "AAAA", "="] {
            assert!(codec.open("main", "sd_main", &format!("{value}{extra}")).is_err(), "{extra}");
        }
    }

    #[test]
    fn oversize_input_is_refused_before_decoding() {
        let codec = codec();
        let huge = "A".repeat(MAX_VALUE_CHARS + 1);
        assert_eq!(
            codec.open("main", "sd_main", &huge),
            Err(ClientSessionError::TooLong { len: MAX_VALUE_CHARS + 1, max: MAX_VALUE_CHARS })
        );
        assert!(matches!(codec.open("main", "sd_main", &"é".repeat(100_000)), Err(ClientSessionError::TooLong { .. })));
    }

    #[test]
    fn foreign_values_are_refused() {
        let codec = codec();
        for foreign in [
            "",
            "not base64!",
            &crate::token::SessionToken::generate().expose(),
            &"A".repeat(200),
            &URL_SAFE_NO_PAD.encode(br#"{"user":"alice","groups":["admins"]}"#.repeat(3)),
            &format!("{}==", "A".repeat(200)),
            &"+/+/".repeat(50),
        ] {
            assert!(codec.open("main", "sd_main", foreign).is_err(), "{foreign:?}");
        }
        // Standard base64 with padding is not our encoding, even of our own bytes.
        let value = seal(&codec, &session());
        let standard = base64::engine::general_purpose::STANDARD.encode(URL_SAFE_NO_PAD.decode(&value).unwrap());
        if standard != value {
            assert!(codec.open("main", "sd_main", &standard).is_err());
        }
    }

    #[test]
    fn rotation_opens_previous_cookies_until_the_previous_secret_goes() {
        let before = ClientSessionCodec::new(OLD, None);
        let old_value = seal(&before, &session());
        let rotated = ClientSessionCodec::new(SECRET, Some(OLD));
        let opened = rotated.open_detailed("main", "sd_main", &old_value).unwrap();
        assert!(opened.under_previous_key);
        let new_value = seal(&rotated, &opened.session);
        assert!(!rotated.open_detailed("main", "sd_main", &new_value).unwrap().under_previous_key);
        assert_eq!(before.open("main", "sd_main", &new_value), Err(ClientSessionError::UnknownKey));
        // Once secret_previous is removed, cookies of the old secret no longer open.
        assert_eq!(codec().open("main", "sd_main", &old_value), Err(ClientSessionError::UnknownKey));
        assert_eq!(
            ClientSessionCodec::new(b"another server's secret, 32 bytes!", None).open("main", "sd_main", &new_value),
            Err(ClientSessionError::UnknownKey)
        );
    }

    #[test]
    fn sealing_refuses_sessions_past_the_cookie_limit_and_never_truncates() {
        let codec = codec();
        let spec = cookie("sd_main");
        let mut s = session();
        let mut last_fitting = None;
        for n in (0..3000).step_by(7) {
            s.attributes.insert("blob".to_owned(), serde_json::json!("x".repeat(n)));
            match codec.seal(&s, &spec, Some(Duration::from_secs(2_592_000))) {
                Ok(sealed) => {
                    assert!(sealed.set_cookie.len() <= MAX_SET_COOKIE_BYTES);
                    assert_eq!(codec.open("main", "sd_main", sealed.value.as_str()).unwrap(), s);
                    last_fitting = Some(sealed.set_cookie.len());
                }
                Err(ClientSessionError::TooLarge { len, max }) => {
                    assert_eq!(max, MAX_SET_COOKIE_BYTES);
                    assert!(len > MAX_SET_COOKIE_BYTES && len <= MAX_SET_COOKIE_BYTES + 10, "{len}");
                    assert!(last_fitting.is_some_and(|l| l > MAX_SET_COOKIE_BYTES - 10), "{last_fitting:?}");
                    return;
                }
                Err(e) => panic!("{e}"),
            }
        }
        panic!("3000 bytes of attributes fitted in a cookie");
    }

    #[test]
    fn many_groups_are_refused_with_the_size() {
        let s = ClientSession { groups: (0..1000).map(|i| format!("group-{i}")).collect(), ..session() };
        let err = codec().seal(&s, &cookie("sd_main"), None).unwrap_err();
        assert!(matches!(err, ClientSessionError::TooLarge { len, .. } if len > 8000), "{err:?}");
        assert!(err.to_string().contains("at most 4096"), "{err}");
    }

    #[test]
    fn instants_the_layout_cannot_hold_are_refused() {
        let codec = codec();
        let spec = cookie("sd_main");
        let early = ClientSession { last_seen_at: NOW - Duration::from_secs(1), ..session() };
        assert!(matches!(codec.seal(&early, &spec, None), Err(ClientSessionError::Unencodable(_))));
        let far = ClientSession { absolute_deadline: NOW + Duration::from_secs(1 << 33), ..session() };
        assert!(matches!(codec.seal(&far, &spec, None), Err(ClientSessionError::Unencodable(_))));
    }

    #[test]
    fn the_plaintext_decodes_only_in_its_exact_form() {
        let s = session();
        let plain = encode(&s).unwrap();
        assert_eq!(decode("main", &plain).unwrap(), s);
        for len in 0..plain.len() {
            assert!(decode("main", &plain[..len]).is_err(), "{len} bytes");
        }
        let mut longer = plain.clone();
        longer.push(0);
        assert!(decode("main", &longer).is_err(), "trailing byte");
        let mut flags = plain;
        flags[FIXED_LEN - 1] |= 0x40;
        assert!(decode("main", &flags).is_err(), "unknown flag");
        // Attributes flagged but an empty object: we never write that.
        let empty = ClientSession { attributes: BTreeMap::new(), ..s };
        let mut plain = encode(&empty).unwrap();
        plain[FIXED_LEN - 1] |= ATTRIBUTES;
        plain.extend_from_slice(b"\x02{}");
        assert!(decode("main", &plain).is_err());
    }

    #[test]
    fn varints_have_one_spelling() {
        let read = |bytes: &[u8]| Reader(bytes).varint();
        assert_eq!(read(&[0]), Ok(0));
        assert_eq!(read(&[0x7f]), Ok(127));
        assert_eq!(read(&[0x80, 0x01]), Ok(128));
        assert_eq!(read(&[0xff, 0xff, 0xff, 0xff, 0x0f]), Ok(u32::MAX));
        assert!(read(&[0x80, 0x00]).is_err(), "overlong zero");
        assert!(read(&[0xff, 0x00]).is_err(), "overlong");
        assert!(read(&[0xff, 0xff, 0xff, 0xff, 0x1f]).is_err(), "overflow");
        assert!(read(&[0xff, 0xff, 0xff, 0xff, 0xff, 0x01]).is_err(), "too long");
        assert!(read(&[0x80]).is_err(), "cut");
        for n in [0, 1, 127, 128, 300, 16_383, 16_384, u32::MAX] {
            let mut out = Vec::new();
            put_varint(&mut out, n);
            assert_eq!(read(&out), Ok(n));
        }
    }

    #[test]
    fn shape_checks_and_debug_keep_the_value_secret() {
        let value = seal(&codec(), &session());
        let parsed = SealedSession::parse(&value).unwrap();
        assert_eq!(parsed.as_str(), value);
        assert_eq!(format!("{parsed:?}"), "SealedSession([redacted])");
        let sealed = codec().seal(&session(), &cookie("sd_main"), None).unwrap();
        assert!(!format!("{sealed:?}").contains(sealed.value.as_str()));
        assert!(SealedSession::parse(&crate::token::SessionToken::generate().expose()).is_err(), "too short");
        assert!(SealedSession::parse(&format!("{value}=")).is_err());
    }

    #[test]
    fn values_of_our_keys_are_told_from_other_tokens() {
        let rotated = ClientSessionCodec::new(SECRET, Some(OLD));
        let old_value = seal(&ClientSessionCodec::new(OLD, None), &session());
        let value = seal(&codec(), &session());
        assert!(codec().is_ours(&value));
        assert!(rotated.is_ours(&value) && rotated.is_ours(&old_value));
        assert!(!codec().is_ours(&old_value), "rotated out");
        for other in [
            "eyJhbGciOiJFZERTQSJ9.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJl",
            &crate::token::SessionToken::generate().expose(),
            &"A".repeat(100),
            "",
        ] {
            assert!(!rotated.is_ours(other), "{other}");
        }
    }

    #[test]
    fn binding_hashes_are_stable_and_distinct() {
        let a = SessionId::generate();
        let b = SessionId::generate();
        assert_eq!(binding_hash(&a), binding_hash(&a.clone()));
        assert_ne!(binding_hash(&a), binding_hash(&b));
        let record = session().into_record(NOW + Duration::from_secs(300));
        assert_eq!(record.token_hash, binding_hash(&record.id));
        assert_eq!(ClientSession::from_record(&record), ClientSession { id: record.id.clone(), ..session() });
    }

    fn text() -> impl Strategy<Value = String> {
        ".{0,40}"
    }

    fn json_value() -> impl Strategy<Value = serde_json::Value> {
        prop_oneof![
            any::<bool>().prop_map(serde_json::Value::from),
            any::<i64>().prop_map(serde_json::Value::from),
            text().prop_map(serde_json::Value::from),
            Just(serde_json::Value::Null),
            proptest::collection::vec(text(), 0..3).prop_map(serde_json::Value::from),
        ]
    }

    prop_compose! {
        fn any_session()(
            realm in "[a-z0-9_-]{1,20}",
            user in text(),
            display_name in proptest::option::of(text()),
            email in proptest::option::of(text()),
            groups in proptest::collection::vec(text(), 0..8),
            amr in proptest::collection::vec("[a-z]{1,5}", 0..3),
            created in -1_000_000_000_000i64..1_000_000_000_000,
            seen in 0u32..=u32::MAX,
            deadline in 0u32..=u32::MAX,
            remember_me in any::<bool>(),
            ip in proptest::option::of(text()),
            user_agent in proptest::option::of(".{0,200}"),
            attributes in proptest::collection::btree_map(text(), json_value(), 0..5),
        ) -> ClientSession {
            let created_at = Timestamp::from_unix(created);
            ClientSession {
                id: SessionId::generate(),
                realm,
                user,
                display_name,
                email,
                groups,
                amr,
                created_at,
                last_seen_at: created_at + Duration::from_secs(u64::from(seen)),
                absolute_deadline: created_at + Duration::from_secs(u64::from(deadline)),
                remember_me,
                ip,
                user_agent,
                attributes,
            }
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn random_sessions_round_trip(s in any_session(), cookie_name in "[A-Za-z0-9_]{1,40}") {
            let codec = codec();
            let spec = cookie(&cookie_name);
            match codec.seal(&s, &spec, Some(Duration::from_secs(3600))) {
                Ok(sealed) => {
                    prop_assert!(sealed.set_cookie.len() <= MAX_SET_COOKIE_BYTES);
                    let opened = codec.open(&s.realm, &cookie_name, sealed.value.as_str());
                    prop_assert_eq!(opened, Ok(s.clone()));
                    let other = format!("{}x", s.realm);
                    prop_assert_eq!(codec.open(&other, &cookie_name, sealed.value.as_str()), Err(ClientSessionError::Forged));
                }
                Err(ClientSessionError::TooLarge { len, .. }) => prop_assert!(len > MAX_SET_COOKIE_BYTES),
                Err(e) => prop_assert!(false, "{}", e),
            }
        }

        #[test]
        fn no_random_text_opens(value in ".{0,600}") {
            prop_assert!(codec().open("main", "sd_main", &value).is_err());
        }

        #[test]
        fn no_random_base64url_opens(value in "[A-Za-z0-9_-]{0,1200}") {
            prop_assert!(codec().open("main", "sd_main", &value).is_err());
        }

        /// Bytes that carry our version and key id, so that they reach the cipher: still refused.
        #[test]
        fn no_random_bytes_under_our_key_id_open(body in proptest::collection::vec(any::<u8>(), 0..1000)) {
            let codec = codec();
            let mut bytes = vec![1];
            bytes.extend_from_slice(&codec.sealer.current_key_id());
            bytes.extend_from_slice(&body);
            prop_assert!(codec.open("main", "sd_main", &URL_SAFE_NO_PAD.encode(&bytes)).is_err());
        }

        /// Numbers in attributes come back exactly (found by fuzzing: `22e202` moved by one bit).
        #[test]
        fn attribute_numbers_survive_sealing(x in any::<f64>().prop_filter("finite", |x| x.is_finite())) {
            let codec = codec();
            let mut s = session();
            s.attributes.insert("n".into(), serde_json::json!(x));
            let sealed = seal(&codec, &s);
            prop_assert_eq!(codec.open("main", "sd_main", &sealed).unwrap(), s);
        }

        #[test]
        fn random_plaintexts_never_panic_the_decoder(plain in proptest::collection::vec(any::<u8>(), 0..400)) {
            let _ = decode("main", &plain);
        }
    }
}
