//! Login journeys: the `auth_id` that ties the steps of a login together.
//!
//! The password journey has a single step. Its `auth_id` is a self-contained ticket: the realm, an
//! expiry instant and a random nonce, authenticated with a key derived from the server secret. A
//! ticket from another realm, a tampered one, or one past `journeys.timeout` is refused.

use crate::keys::DerivedKey;
use crate::time::Timestamp;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac as _};
use rand::RngCore as _;
use sha2::Sha256;
use std::time::Duration;

/// How long a login may take by default (`journeys.timeout`).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(300);

const VERSION: u8 = 1;
const NONCE: usize = 16;
const BODY: usize = 1 + 8 + NONCE;
const TAG: usize = 32;
/// Longest `auth_id` we even try to decode.
const MAX_CHARS: usize = 128;

/// A callback the client must fill in the current step.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CallbackKind {
    /// The user name.
    Username,
    /// The password.
    Password,
    /// Whether to remember the session.
    RememberMe,
}

/// The callbacks of the password step, in order; `remember_me` only when the realm allows it.
pub fn password_step(remember_me_allowed: bool) -> Vec<CallbackKind> {
    let mut callbacks = vec![CallbackKind::Username, CallbackKind::Password];
    if remember_me_allowed {
        callbacks.push(CallbackKind::RememberMe);
    }
    callbacks
}

/// Why an `auth_id` was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum JourneyError {
    /// Not a ticket we issued for this realm (malformed, tampered, or another realm's).
    #[error("unknown login")]
    Unknown,
    /// The ticket's time is up.
    #[error("the login has expired")]
    Expired,
}

/// Issues and checks journey tickets for one realm.
#[derive(Clone, Debug)]
pub struct JourneyTickets {
    key: DerivedKey,
}

impl JourneyTickets {
    /// Tickets authenticated with a key derived from `secret`.
    pub fn new(secret: &[u8]) -> Self {
        Self { key: DerivedKey::derive(secret, "sessiond journey ticket v1") }
    }

    fn tag(&self, realm: &str, body: &[u8]) -> Hmac<Sha256> {
        // HMAC zero-pads its key to the block size, so padding it here gives the same MAC and lets
        // us use the infallible fixed-size constructor.
        let mut block = [0u8; 64];
        block[..32].copy_from_slice(self.key.bytes());
        let mut mac = <Hmac<Sha256> as hmac::digest::KeyInit>::new(&block.into());
        mac.update(realm.as_bytes());
        mac.update(&[0]);
        mac.update(body);
        mac
    }

    /// A new ticket for `realm`, valid until `now + timeout`.
    pub fn issue(&self, realm: &str, now: Timestamp, timeout: Duration) -> String {
        let mut body = [0u8; BODY];
        body[0] = VERSION;
        body[1..9].copy_from_slice(&(now + timeout).unix().to_be_bytes());
        rand::rngs::OsRng.fill_bytes(&mut body[9..]);
        let tag = self.tag(realm, &body).finalize().into_bytes();
        let mut out = Vec::with_capacity(BODY + TAG);
        out.extend_from_slice(&body);
        out.extend_from_slice(&tag);
        URL_SAFE_NO_PAD.encode(out)
    }

    /// Checks a ticket presented for `realm` at `now`.
    ///
    /// # Errors
    /// [`JourneyError::Unknown`] for anything not issued by us for this realm,
    /// [`JourneyError::Expired`] past its deadline.
    pub fn check(&self, realm: &str, auth_id: &str, now: Timestamp) -> Result<(), JourneyError> {
        if auth_id.len() > MAX_CHARS {
            return Err(JourneyError::Unknown);
        }
        let raw = URL_SAFE_NO_PAD.decode(auth_id).map_err(|_| JourneyError::Unknown)?;
        if raw.len() != BODY + TAG || raw[0] != VERSION {
            return Err(JourneyError::Unknown);
        }
        let (body, tag) = raw.split_at(BODY);
        // verify_slice compares in constant time.
        self.tag(realm, body).verify_slice(tag).map_err(|_| JourneyError::Unknown)?;
        let mut deadline = [0u8; 8];
        deadline.copy_from_slice(&body[1..9]);
        if now >= Timestamp::from_unix(i64::from_be_bytes(deadline)) {
            return Err(JourneyError::Expired);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &[u8] = b"a secret of at least thirty-two bytes!!";

    #[test]
    fn ticket_is_accepted_until_its_deadline() {
        let tickets = JourneyTickets::new(SECRET);
        let t0 = Timestamp::from_unix(1_000);
        let id = tickets.issue("main", t0, DEFAULT_TIMEOUT);
        assert_eq!(tickets.check("main", &id, t0), Ok(()));
        assert_eq!(tickets.check("main", &id, t0 + Duration::from_secs(299)), Ok(()));
        assert_eq!(tickets.check("main", &id, t0 + DEFAULT_TIMEOUT), Err(JourneyError::Expired));
    }

    #[test]
    fn tampered_foreign_and_garbage_tickets_are_unknown() {
        let tickets = JourneyTickets::new(SECRET);
        let t0 = Timestamp::from_unix(1_000);
        let id = tickets.issue("main", t0, DEFAULT_TIMEOUT);
        assert_eq!(tickets.check("other", &id, t0), Err(JourneyError::Unknown));
        assert_eq!(
            JourneyTickets::new(b"another secret of thirty-two bytes!!!!").check("main", &id, t0),
            Err(JourneyError::Unknown)
        );
        let mut raw = URL_SAFE_NO_PAD.decode(&id).unwrap();
        raw[3] ^= 1; // push the deadline around
        assert_eq!(tickets.check("main", &URL_SAFE_NO_PAD.encode(&raw), t0), Err(JourneyError::Unknown));
        for junk in ["", "x", "!!!!", &"A".repeat(4096)] {
            assert_eq!(tickets.check("main", junk, t0), Err(JourneyError::Unknown));
        }
    }

    #[test]
    fn remember_me_callback_only_when_allowed() {
        assert_eq!(password_step(false), vec![CallbackKind::Username, CallbackKind::Password]);
        assert_eq!(password_step(true).len(), 3);
    }
}
