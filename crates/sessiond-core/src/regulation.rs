//! Brute-force regulation: after `max_retries` failed logins within `find_time`, further attempts
//! are refused for `ban_time` (Authelia's defaults: 3 within 2m, banned for 5m).
//!
//! This module only counts and decides; the server keeps one [`Attempts`] per user name and per
//! client address and asks before checking a password, so a banned caller never reaches the
//! (slow, timing-sensitive) password check.

use crate::time::Timestamp;
use std::time::Duration;

/// The regulation settings.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RegulationPolicy {
    /// Failures allowed within `find_time`; `0` turns regulation off.
    pub max_retries: u32,
    /// Window in which failures are counted.
    pub find_time: Duration,
    /// How long a ban lasts.
    pub ban_time: Duration,
}

impl Default for RegulationPolicy {
    fn default() -> Self {
        Self { max_retries: 3, find_time: Duration::from_secs(120), ban_time: Duration::from_secs(300) }
    }
}

/// Recent failures of one user or one address.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Attempts {
    /// Instants of the most recent failures, oldest first, at most `max_retries` of them.
    failures: Vec<Timestamp>,
    /// Refused until this instant.
    banned_until: Option<Timestamp>,
}

impl RegulationPolicy {
    /// The same policy with its limit multiplied, for keys shared by many people (an address).
    pub fn scaled(&self, factor: u32) -> Self {
        Self { max_retries: self.max_retries.saturating_mul(factor), ..*self }
    }

    /// Whether attempts are refused at `now`.
    pub fn is_banned(&self, attempts: &Attempts, now: Timestamp) -> bool {
        self.max_retries > 0 && attempts.banned_until.is_some_and(|until| now < until)
    }

    /// Records a failure at `now`; returns `true` when it starts a ban.
    pub fn record_failure(&self, attempts: &mut Attempts, now: Timestamp) -> bool {
        if self.max_retries == 0 || self.is_banned(attempts, now) {
            return false;
        }
        let window_start = now - self.find_time;
        attempts.failures.retain(|t| *t > window_start);
        attempts.failures.push(now);
        let limit = usize::try_from(self.max_retries).unwrap_or(usize::MAX);
        if attempts.failures.len() >= limit {
            attempts.failures.clear();
            attempts.banned_until = Some(now + self.ban_time);
            return true;
        }
        false
    }

    /// Whether the record holds nothing that matters any more at `now` (safe to forget).
    pub fn is_stale(&self, attempts: &Attempts, now: Timestamp) -> bool {
        !self.is_banned(attempts, now) && attempts.failures.iter().all(|t| *t <= now - self.find_time)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn at(s: i64) -> Timestamp {
        Timestamp::from_unix(s)
    }

    #[test]
    fn three_failures_within_two_minutes_ban_for_five() {
        let p = RegulationPolicy::default();
        let mut a = Attempts::default();
        assert!(!p.record_failure(&mut a, at(0)));
        assert!(!p.record_failure(&mut a, at(60)));
        assert!(!p.is_banned(&a, at(61)));
        assert!(p.record_failure(&mut a, at(119)));
        assert!(p.is_banned(&a, at(119)));
        assert!(p.is_banned(&a, at(119 + 299)));
        assert!(!p.is_banned(&a, at(119 + 300)));
    }

    #[test]
    fn failures_outside_the_window_do_not_count() {
        let p = RegulationPolicy::default();
        let mut a = Attempts::default();
        p.record_failure(&mut a, at(0));
        p.record_failure(&mut a, at(100));
        assert!(!p.record_failure(&mut a, at(121)), "the first failure left the window");
        assert!(p.record_failure(&mut a, at(150)));
    }

    #[test]
    fn zero_retries_turns_regulation_off() {
        let p = RegulationPolicy { max_retries: 0, ..RegulationPolicy::default() };
        let mut a = Attempts::default();
        for t in 0..100 {
            assert!(!p.record_failure(&mut a, at(t)));
        }
        assert!(!p.is_banned(&a, at(100)));
    }

    #[test]
    fn staleness_frees_records_only_when_nothing_is_left() {
        let p = RegulationPolicy::default();
        let mut a = Attempts::default();
        p.record_failure(&mut a, at(0));
        assert!(!p.is_stale(&a, at(119)));
        assert!(p.is_stale(&a, at(120)));
        for t in [200, 201, 202] {
            p.record_failure(&mut a, at(t));
        }
        assert!(!p.is_stale(&a, at(400)), "banned until 502");
        assert!(p.is_stale(&a, at(502)));
    }

    proptest! {
        #[test]
        fn never_more_than_max_retries_failures_before_a_ban(gaps in proptest::collection::vec(0i64..200, 1..60)) {
            let p = RegulationPolicy::default();
            let mut a = Attempts::default();
            let mut now = 0;
            let mut accepted_in_window: Vec<i64> = Vec::new();
            for gap in gaps {
                now += gap;
                if p.is_banned(&a, at(now)) {
                    continue;
                }
                accepted_in_window.retain(|t| *t > now - 120);
                accepted_in_window.push(now);
                let banned = p.record_failure(&mut a, at(now));
                prop_assert!(accepted_in_window.len() <= 3);
                if banned {
                    prop_assert_eq!(accepted_in_window.len(), 3);
                    accepted_in_window.clear();
                }
                prop_assert!(a.failures.len() < 3);
            }
        }
    }
}
