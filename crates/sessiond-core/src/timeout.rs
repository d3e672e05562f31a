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

    /// The longest a session of this policy can live: the larger of `expiration` and
    /// `remember_me`.
    pub fn longest_lifetime(&self) -> Duration {
        self.remember_me.map_or(self.expiration, |d| d.max(self.expiration))
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

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const LOGIN: Timestamp = Timestamp::from_unix(1_700_000_000);

    fn secs(n: u64) -> Duration {
        Duration::from_secs(n)
    }

    fn at(offset: u64) -> Timestamp {
        LOGIN + secs(offset)
    }

    fn alive(timeouts: &Timeouts, times: &SessionTimes, now: Timestamp) -> Alive {
        match timeouts.verdict(times, now) {
            Verdict::Alive(a) => a,
            Verdict::Dead(reason) => panic!("dead ({reason:?}) at +{}s", now.unix() - LOGIN.unix()),
        }
    }

    /// Applies a live verdict the way the store would: writes `last_seen_at` only on a touch.
    fn apply(times: &mut SessionTimes, a: &Alive) {
        if a.touch {
            times.last_seen_at = a.last_seen_at;
        }
    }

    #[test]
    fn defaults_are_one_hour_five_minutes_one_month() {
        let t = Timeouts::default();
        assert_eq!(t.expiration, secs(3600));
        assert_eq!(t.inactivity, Some(secs(300)));
        assert_eq!(t.remember_me, Some(secs(30 * 86_400)));
        assert_eq!(t.touch_interval(false), secs(30));
        assert_eq!(t.touch_interval(true), DEFAULT_TOUCH_INTERVAL);
    }

    #[test]
    fn login_fixes_the_absolute_deadline() {
        let t = Timeouts::default();
        let times = t.at_login(LOGIN, false);
        assert_eq!(times.created_at, LOGIN);
        assert_eq!(times.last_seen_at, LOGIN);
        assert_eq!(times.absolute_deadline, at(3600));
        assert!(!times.remember_me);
        assert_eq!(t.expires_at(&times), at(300), "the idle deadline comes first");

        let remembered = t.at_login(LOGIN, true);
        assert!(remembered.remember_me);
        assert_eq!(remembered.absolute_deadline, at(30 * 86_400));
        assert_eq!(t.expires_at(&remembered), at(30 * 86_400));
    }

    #[test]
    fn the_longest_lifetime_is_expiration_or_remember_me() {
        let t = Timeouts::default();
        assert_eq!(t.longest_lifetime(), secs(30 * 86_400));
        assert_eq!(Timeouts { remember_me: None, ..t }.longest_lifetime(), secs(3600));
        assert_eq!(Timeouts { remember_me: Some(secs(60)), ..t }.longest_lifetime(), secs(3600));
    }

    #[test]
    fn fresh_session_is_alive_without_a_touch() {
        let t = Timeouts::default();
        let times = t.at_login(LOGIN, false);
        let a = alive(&t, &times, LOGIN);
        assert_eq!(a, Alive { touch: false, last_seen_at: LOGIN, expires_at: at(300) });
    }

    #[test]
    fn activity_never_extends_expiration() {
        let t = Timeouts::default();
        let mut times = t.at_login(LOGIN, false);
        let mut now = 0;
        while now + 60 < 3600 {
            now += 60;
            let a = alive(&t, &times, at(now));
            assert!(a.expires_at <= at(3600));
            apply(&mut times, &a);
        }
        assert_eq!(times.last_seen_at, at(3540));
        assert_eq!(alive(&t, &times, at(3599)).expires_at, at(3600));
        assert_eq!(t.verdict(&times, at(3600)), Verdict::Dead(DeathReason::Expired));
        assert_eq!(t.verdict(&times, at(3601)), Verdict::Dead(DeathReason::Expired));
    }

    #[test]
    fn idle_session_ends_after_inactivity() {
        let t = Timeouts::default();
        let times = t.at_login(LOGIN, false);
        assert!(matches!(t.verdict(&times, at(299)), Verdict::Alive(_)));
        assert_eq!(t.verdict(&times, at(300)), Verdict::Dead(DeathReason::Idle));
        assert_eq!(t.verdict(&times, at(1000)), Verdict::Dead(DeathReason::Idle));
    }

    #[test]
    fn expiration_wins_when_both_deadlines_passed() {
        let t = Timeouts::default();
        let times = t.at_login(LOGIN, false);
        assert_eq!(t.verdict(&times, at(4000)), Verdict::Dead(DeathReason::Expired));
    }

    #[test]
    fn a_touch_moves_the_idle_deadline() {
        let t = Timeouts::default();
        let mut times = t.at_login(LOGIN, false);
        let a = alive(&t, &times, at(200));
        assert_eq!(a, Alive { touch: true, last_seen_at: at(200), expires_at: at(500) });
        apply(&mut times, &a);
        assert!(matches!(t.verdict(&times, at(499)), Verdict::Alive(_)));
        assert_eq!(t.verdict(&times, at(500)), Verdict::Dead(DeathReason::Idle));
    }

    #[test]
    fn inactivity_zero_or_none_turns_idle_limit_off() {
        for inactivity in [None, Some(Duration::ZERO)] {
            let t = Timeouts { inactivity, ..Timeouts::default() };
            let times = t.at_login(LOGIN, false);
            let a = alive(&t, &times, at(3599));
            assert_eq!(a.expires_at, at(3600));
            assert_eq!(t.expires_at(&times), at(3600));
            assert_eq!(t.touch_interval(false), DEFAULT_TOUCH_INTERVAL);
            assert_eq!(t.verdict(&times, at(3600)), Verdict::Dead(DeathReason::Expired));
        }
    }

    #[test]
    fn remember_me_ignores_inactivity() {
        let t = Timeouts::default();
        let times = t.at_login(LOGIN, true);
        // A week without any request: a plain session would have died after 5 minutes.
        let a = alive(&t, &times, at(7 * 86_400));
        assert_eq!(a.expires_at, at(30 * 86_400));
        assert!(a.touch);
        assert_eq!(t.verdict(&times, at(30 * 86_400)), Verdict::Dead(DeathReason::Expired));
    }

    #[test]
    fn remember_me_requested_while_off_is_a_plain_session() {
        let t = Timeouts { remember_me: None, ..Timeouts::default() };
        let times = t.at_login(LOGIN, true);
        assert!(!times.remember_me);
        assert_eq!(times.absolute_deadline, at(3600));
        assert_eq!(t.verdict(&times, at(300)), Verdict::Dead(DeathReason::Idle));
    }

    #[test]
    fn turning_remember_me_off_ends_remembered_sessions_at_expiration() {
        let on = Timeouts::default();
        let times = on.at_login(LOGIN, true);
        let off = Timeouts { remember_me: None, ..on };
        assert!(!off.is_remembered(times.remember_me));
        assert_eq!(off.effective_deadline(&times), at(3600));
        // Two hours after login: alive under the old policy, expired under the new one.
        assert!(matches!(on.verdict(&times, at(7200)), Verdict::Alive(_)));
        assert_eq!(off.verdict(&times, at(7200)), Verdict::Dead(DeathReason::Expired));
    }

    #[test]
    fn turning_remember_me_off_makes_inactivity_apply_again() {
        let on = Timeouts::default();
        let times = on.at_login(LOGIN, true);
        let off = Timeouts { remember_me: None, ..on };
        assert_eq!(off.verdict(&times, at(300)), Verdict::Dead(DeathReason::Idle));
        assert_eq!(off.expires_at(&times), at(300));
        // A request just in time is a touch again and moves the idle deadline.
        let a = alive(&off, &times, at(299));
        assert!(a.touch);
        assert_eq!(a.expires_at, at(599));
        assert_eq!(off.touch_interval(off.is_remembered(times.remember_me)), secs(30));
    }

    #[test]
    fn shortening_expiration_shortens_existing_sessions() {
        let long = Timeouts { expiration: secs(8 * 3600), inactivity: None, ..Timeouts::default() };
        let times = long.at_login(LOGIN, false);
        let short = Timeouts { expiration: secs(3600), ..long };
        assert_eq!(short.effective_deadline(&times), at(3600));
        assert_eq!(alive(&short, &times, at(3000)).expires_at, at(3600));
        assert_eq!(short.verdict(&times, at(3600)), Verdict::Dead(DeathReason::Expired));
        // Lengthening it again does not stretch past what was promised at login.
        let longer = Timeouts { expiration: secs(24 * 3600), ..long };
        assert_eq!(longer.effective_deadline(&times), at(8 * 3600));
    }

    #[test]
    fn shortening_remember_me_shortens_remembered_sessions() {
        let t = Timeouts::default();
        let times = t.at_login(LOGIN, true);
        let week = Timeouts { remember_me: Some(secs(7 * 86_400)), ..t };
        assert_eq!(week.effective_deadline(&times), at(7 * 86_400));
        assert_eq!(week.verdict(&times, at(7 * 86_400)), Verdict::Dead(DeathReason::Expired));
    }

    #[test]
    fn shortening_inactivity_shortens_existing_sessions() {
        let t = Timeouts::default();
        let times = t.at_login(LOGIN, false);
        let strict = Timeouts { inactivity: Some(secs(60)), ..t };
        assert_eq!(strict.expires_at(&times), at(60));
        assert_eq!(strict.verdict(&times, at(60)), Verdict::Dead(DeathReason::Idle));
    }

    #[test]
    fn touches_are_throttled_to_one_per_interval() {
        let t = Timeouts::default(); // interval 30 s
        let mut times = t.at_login(LOGIN, false);
        let a = alive(&t, &times, at(29));
        assert_eq!(a, Alive { touch: false, last_seen_at: LOGIN, expires_at: at(300) });
        let a = alive(&t, &times, at(30));
        assert_eq!(a, Alive { touch: true, last_seen_at: at(30), expires_at: at(330) });
        apply(&mut times, &a);
        assert!(!alive(&t, &times, at(59)).touch);
        assert!(alive(&t, &times, at(60)).touch);
    }

    #[test]
    fn short_inactivity_touches_at_most_every_second() {
        let t = Timeouts { inactivity: Some(secs(5)), ..Timeouts::default() };
        assert_eq!(t.touch_interval(false), secs(1));
        let times = t.at_login(LOGIN, false);
        assert!(!alive(&t, &times, LOGIN).touch);
        assert!(alive(&t, &times, at(1)).touch);
    }

    #[test]
    fn clock_going_backwards_never_touches() {
        let t = Timeouts::default();
        let mut times = t.at_login(LOGIN, false);
        let first = alive(&t, &times, at(200));
        apply(&mut times, &first);
        assert_eq!(times.last_seen_at, at(200));
        for back in [at(199), at(100), LOGIN, LOGIN - secs(3600)] {
            let a = alive(&t, &times, back);
            assert!(!a.touch);
            assert_eq!(a.last_seen_at, at(200), "last_seen never moves back");
            assert_eq!(a.expires_at, at(500));
        }
    }

    /// A policy with an idle limit, and a sequence of gaps between requests short enough that the
    /// session should never idle out: each at most `inactivity - interval`.
    fn policy_and_gaps() -> impl Strategy<Value = (Timeouts, Vec<u64>)> {
        (2u64..2_000, 1u64..50_000).prop_flat_map(|(inactivity, expiration)| {
            let t = Timeouts { expiration: secs(expiration), inactivity: Some(secs(inactivity)), remember_me: None };
            let max_gap = inactivity - t.touch_interval(false).as_secs();
            (Just(t), proptest::collection::vec(0..=max_gap, 1..300))
        })
    }

    proptest! {
        #[test]
        fn regular_use_keeps_a_session_alive_until_its_deadline_and_never_past((t, gaps) in policy_and_gaps()) {
            let mut times = t.at_login(LOGIN, false);
            let deadline = t.effective_deadline(&times);
            let interval = t.touch_interval(false).as_secs();
            let mut now = LOGIN;
            let mut touches = 0u64;
            let mut previous_touch = LOGIN;
            for gap in gaps {
                now = now + secs(gap);
                match t.verdict(&times, now) {
                    Verdict::Alive(a) => {
                        prop_assert!(now < deadline, "alive at or past the deadline");
                        prop_assert!(a.expires_at > now);
                        prop_assert!(a.expires_at <= deadline);
                        if a.touch {
                            touches += 1;
                            prop_assert!(now.unix() - previous_touch.unix() >= interval as i64);
                            previous_touch = now;
                            prop_assert_eq!(a.last_seen_at, now);
                        } else {
                            prop_assert_eq!(a.last_seen_at, times.last_seen_at);
                        }
                        apply(&mut times, &a);
                    }
                    Verdict::Dead(reason) => {
                        prop_assert!(now >= deadline, "died early ({:?})", reason);
                        prop_assert_eq!(reason, DeathReason::Expired);
                    }
                }
            }
            let elapsed = (now.unix() - LOGIN.unix()) as u64;
            prop_assert!(touches <= elapsed / interval + 1);
            // Touches are spaced by at least the interval, starting one interval after login.
            prop_assert!(touches <= elapsed / interval);
        }

        #[test]
        fn expires_at_never_exceeds_the_effective_deadline(
            expiration in 0u64..100_000,
            inactivity in proptest::option::of(0u64..10_000),
            remember_me in proptest::option::of(0u64..1_000_000),
            remember_at_login in any::<bool>(),
            later_remember_me in proptest::option::of(0u64..1_000_000),
            seen in 0u64..200_000,
            now in 0u64..200_000,
        ) {
            let at_login = Timeouts {
                expiration: secs(expiration),
                inactivity: inactivity.map(secs),
                remember_me: remember_me.map(secs),
            };
            let mut times = at_login.at_login(LOGIN, remember_at_login);
            times.last_seen_at = at(seen);
            // The policy may have changed since login.
            let t = Timeouts { remember_me: later_remember_me.map(secs), ..at_login };
            let deadline = t.effective_deadline(&times);
            prop_assert!(deadline <= times.absolute_deadline);
            prop_assert!(t.expires_at(&times) <= deadline);
            if let Verdict::Alive(a) = t.verdict(&times, at(now)) {
                prop_assert!(a.expires_at <= deadline);
                prop_assert!(a.expires_at > at(now));
                prop_assert!(a.last_seen_at >= times.last_seen_at);
            }
        }

        #[test]
        fn a_dead_verdict_is_final_without_a_touch(
            expiration in 0u64..100_000,
            inactivity in proptest::option::of(0u64..10_000),
            remember in any::<bool>(),
            seen in 0u64..100_000,
            first in 0u64..200_000,
            later in 0u64..200_000,
        ) {
            let t = Timeouts { expiration: secs(expiration), inactivity: inactivity.map(secs), ..Timeouts::default() };
            let mut times = t.at_login(LOGIN, remember);
            times.last_seen_at = at(seen);
            if let Verdict::Dead(_) = t.verdict(&times, at(first)) {
                let after = at(first) + secs(later);
                prop_assert!(matches!(t.verdict(&times, after), Verdict::Dead(_)));
            }
        }

        #[test]
        fn remembered_sessions_live_to_their_deadline_whatever_the_gaps(
            lifetime in 1u64..10_000_000,
            inactivity in 1u64..10_000,
            now in 0u64..20_000_000,
        ) {
            let t = Timeouts { remember_me: Some(secs(lifetime)), inactivity: Some(secs(inactivity)), ..Timeouts::default() };
            let times = t.at_login(LOGIN, true);
            match t.verdict(&times, at(now)) {
                Verdict::Alive(a) => {
                    prop_assert!(now < lifetime);
                    prop_assert_eq!(a.expires_at, at(lifetime));
                }
                Verdict::Dead(reason) => {
                    prop_assert!(now >= lifetime);
                    prop_assert_eq!(reason, DeathReason::Expired);
                }
            }
        }

        #[test]
        fn backwards_clock_never_touches(
            seen in 0u64..10_000,
            back in 1u64..100_000,
            remember in any::<bool>(),
        ) {
            let t = Timeouts::default();
            let mut times = t.at_login(LOGIN, remember);
            times.last_seen_at = at(seen);
            let now = at(seen) - secs(back);
            if let Verdict::Alive(a) = t.verdict(&times, now) {
                prop_assert!(!a.touch);
                prop_assert_eq!(a.last_seen_at, at(seen));
            }
        }
    }
}
