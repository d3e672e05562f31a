//! The timeout policy: when a session dies, and when its last-seen time must be written.
//!
//! - `expiration`: absolute lifetime from login; activity never extends it.
//! - `inactivity`: the session dies when no request used it for this long; each request resets it.
//!   Off when `None`. Does not apply to remembered sessions.
//! - `remember_me`: replaces `expiration` for sessions where the user ticked "remember me". `None`
//!   means the feature is off (`-1` in config); sessions remembered before it was turned off fall
//!   back to `expiration`, and inactivity applies to them again.
//!
//! The deadline stored at login is capped by the policy in force at every check, so shortening a
//! timeout in config shortens existing sessions too. Nothing here trusts the client: the cookie's
//! `Max-Age` is derived from these deadlines and is only a hint to the browser.

use crate::time::Timestamp;
use std::time::Duration;

/// How often `last_seen` is written when inactivity does not bound it.
pub const DEFAULT_TOUCH_INTERVAL: Duration = Duration::from_secs(60);

/// The timeout settings of a realm.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timeouts {
    /// Absolute lifetime of a session from login.
    pub expiration: Duration,
    /// Idle limit; `None` turns it off.
    pub inactivity: Option<Duration>,
    /// Lifetime of a remembered session; `None` turns "remember me" off.
    pub remember_me: Option<Duration>,
}

impl Default for Timeouts {
    /// Authelia's defaults: `1h` expiration, `5m` inactivity, `1M` remember me.
    fn default() -> Self {
        Self {
            expiration: Duration::from_secs(3600),
            inactivity: Some(Duration::from_secs(300)),
            remember_me: Some(Duration::from_secs(30 * 86_400)),
        }
    }
}

/// The instants of a session that the policy reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SessionTimes {
    /// Login time.
    pub created_at: Timestamp,
    /// Last recorded use.
    pub last_seen_at: Timestamp,
    /// Deadline fixed at login.
    pub absolute_deadline: Timestamp,
    /// Whether the user asked to be remembered.
    pub remember_me: bool,
}

/// Why a session is no longer valid.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeathReason {
    /// The absolute lifetime ran out.
    Expired,
    /// No request used the session for longer than the idle limit.
    Idle,
}

/// A live session's state after the current request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Alive {
    /// Whether this request must write `last_seen_at = now` (throttled).
    pub touch: bool,
    /// The last-seen time the store will hold after this request.
    pub last_seen_at: Timestamp,
    /// The earlier of the absolute and the idle deadline after this request.
    pub expires_at: Timestamp,
}

/// The policy's answer for one request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// The session may be used.
    Alive(Alive),
    /// The session is over and must be deleted.
    Dead(DeathReason),
}

impl Timeouts {
    /// Whether a session with this choice is remembered under the policy in force.
    pub fn is_remembered(&self, remember_me_requested: bool) -> bool {
        remember_me_requested && self.remember_me.is_some()
    }

    fn lifetime(&self, remembered: bool) -> Duration {
        match (remembered, self.remember_me) {
            (true, Some(d)) => d,
            _ => self.expiration,
        }
    }

    fn idle_limit(&self, remembered: bool) -> Option<Duration> {
        if remembered { None } else { self.inactivity.filter(|d| !d.is_zero()) }
    }

    /// The interval at which `last_seen` writes are throttled: a tenth of the idle limit (at least
    /// one second), or [`DEFAULT_TOUCH_INTERVAL`] when no idle limit applies.
    pub fn touch_interval(&self, remembered: bool) -> Duration {
        match self.idle_limit(remembered) {
            Some(limit) => (limit / 10).max(Duration::from_secs(1)),
            None => DEFAULT_TOUCH_INTERVAL,
        }
    }

    /// The times of a session created at `now`. `remember_me` is ignored when the feature is off.
    pub fn at_login(&self, now: Timestamp, remember_me: bool) -> SessionTimes {
        let remembered = self.is_remembered(remember_me);
        SessionTimes {
            created_at: now,
            last_seen_at: now,
            absolute_deadline: now + self.lifetime(remembered),
            remember_me: remembered,
        }
    }

    /// The absolute deadline under the policy in force: the stored one, capped by the current
    /// lifetime counted from login.
    pub fn effective_deadline(&self, times: &SessionTimes) -> Timestamp {
        let remembered = self.is_remembered(times.remember_me);
        times.absolute_deadline.min(times.created_at + self.lifetime(remembered))
    }

    /// The earliest instant the session can die if nothing touches it again.
    pub fn expires_at(&self, times: &SessionTimes) -> Timestamp {
        let absolute = self.effective_deadline(times);
        match self.idle_limit(self.is_remembered(times.remember_me)) {
            Some(limit) => absolute.min(times.last_seen_at + limit),
            None => absolute,
        }
    }

    /// Decides whether a request at `now` may use the session, and whether it must be touched.
    pub fn verdict(&self, times: &SessionTimes, now: Timestamp) -> Verdict {
        let remembered = self.is_remembered(times.remember_me);
        if now >= self.effective_deadline(times) {
            return Verdict::Dead(DeathReason::Expired);
        }
        if let Some(limit) = self.idle_limit(remembered) {
            if now >= times.last_seen_at + limit {
                return Verdict::Dead(DeathReason::Idle);
            }
        }
        // A clock that stepped backwards never moves last_seen back.
        let touch = now >= times.last_seen_at + self.touch_interval(remembered);
        let last_seen_at = if touch { now } else { times.last_seen_at };
        let expires_at = self.expires_at(&SessionTimes { last_seen_at, ..*times });
        Verdict::Alive(Alive { touch, last_seen_at, expires_at })
    }
}
