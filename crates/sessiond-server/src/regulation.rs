//! Brute-force regulation state: recent login failures per user name and per client address.
//!
//! The rules are in `sessiond_core::regulation`. Addresses get ten times the user limit, because
//! many people can share one address (an office behind NAT) and one typo each must not lock them
//! all out.

use sessiond_core::regulation::{Attempts, RegulationPolicy};
use sessiond_core::time::Timestamp;
use std::collections::HashMap;
use std::sync::Mutex;

/// How many more attempts an address may make than a user name.
const ADDRESS_FACTOR: u32 = 10;

/// Which key a ban is on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Banned {
    /// The user name.
    User,
    /// The client address.
    Address,
}

/// Failure counts, kept in memory.
#[derive(Debug)]
pub struct Regulator {
    policy: RegulationPolicy,
    users: Mutex<HashMap<String, Attempts>>,
    addresses: Mutex<HashMap<String, Attempts>>,
}

impl Regulator {
    /// Counts failures under `policy`.
    pub fn new(policy: RegulationPolicy) -> Self {
        Self { policy, users: Mutex::default(), addresses: Mutex::default() }
    }

    /// Whether a login for `user` from `ip` must be refused at `now`.
    pub fn check(&self, user: &str, ip: Option<&str>, now: Timestamp) -> Result<(), Banned> {
        let banned = |map: &Mutex<HashMap<String, Attempts>>, key: &str, policy: &RegulationPolicy| {
            map.lock().map(|m| m.get(key).is_some_and(|a| policy.is_banned(a, now))).unwrap_or(true)
        };
        if banned(&self.users, user, &self.policy) {
            return Err(Banned::User);
        }
        if let Some(ip) = ip {
            if banned(&self.addresses, ip, &self.policy.scaled(ADDRESS_FACTOR)) {
                return Err(Banned::Address);
            }
        }
        Ok(())
    }

    /// Records a failed login; returns which keys it banned.
    pub fn failed(&self, user: &str, ip: Option<&str>, now: Timestamp) -> Vec<Banned> {
        let mut banned = Vec::new();
        let mut record = |map: &Mutex<HashMap<String, Attempts>>, key: &str, policy: RegulationPolicy, kind| {
            if let Ok(mut m) = map.lock() {
                if policy.record_failure(m.entry(key.to_owned()).or_default(), now) {
                    banned.push(kind);
                }
            }
        };
        record(&self.users, user, self.policy, Banned::User);
        if let Some(ip) = ip {
            record(&self.addresses, ip, self.policy.scaled(ADDRESS_FACTOR), Banned::Address);
        }
        banned
    }

    /// Forgets the failures of `user` after a successful login.
    pub fn succeeded(&self, user: &str) {
        if let Ok(mut m) = self.users.lock() {
            m.remove(user);
        }
    }

    /// Drops records that no longer matter, so the maps stay as small as the current attacks.
    pub fn prune(&self, now: Timestamp) {
        if let Ok(mut m) = self.users.lock() {
            m.retain(|_, a| !self.policy.is_stale(a, now));
        }
        let scaled = self.policy.scaled(ADDRESS_FACTOR);
        if let Ok(mut m) = self.addresses.lock() {
            m.retain(|_, a| !scaled.is_stale(a, now));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_user_is_banned_after_three_failures_whatever_the_address() {
        let r = Regulator::new(RegulationPolicy::default());
        let t = Timestamp::from_unix(1000);
        assert!(r.failed("alice", Some("10.0.0.1"), t).is_empty());
        assert!(r.failed("alice", Some("10.0.0.2"), t).is_empty());
        assert_eq!(r.failed("alice", Some("10.0.0.3"), t), vec![Banned::User]);
        assert_eq!(r.check("alice", Some("10.0.0.9"), t), Err(Banned::User));
        assert_eq!(r.check("bob", Some("10.0.0.1"), t), Ok(()));
    }

    #[test]
    fn an_address_is_banned_after_thirty_failures_across_users() {
        let r = Regulator::new(RegulationPolicy::default());
        let t = Timestamp::from_unix(1000);
        for i in 0..29 {
            assert!(!r.failed(&format!("user{i}"), Some("10.0.0.1"), t).contains(&Banned::Address));
        }
        assert!(r.failed("user29", Some("10.0.0.1"), t).contains(&Banned::Address));
        assert_eq!(r.check("fresh", Some("10.0.0.1"), t), Err(Banned::Address));
        assert_eq!(r.check("fresh", Some("10.0.0.2"), t), Ok(()));
    }

    #[test]
    fn success_clears_a_users_failures_and_prune_forgets_old_ones() {
        let r = Regulator::new(RegulationPolicy::default());
        let t = Timestamp::from_unix(1000);
        r.failed("alice", None, t);
        r.failed("alice", None, t);
        r.succeeded("alice");
        assert!(r.failed("alice", None, t).is_empty(), "count restarted");
        r.prune(Timestamp::from_unix(2000));
        assert!(r.users.lock().unwrap().is_empty());
    }
}
