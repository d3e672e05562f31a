//! A bounded in-memory cache of sessions, in front of a backend.
//!
//! Forward auth asks about the same few sessions thousands of times a second; decoding them from
//! the backend each time costs more than everything else on that path. The cache holds decoded
//! records behind `Arc`, split into shards with a lock each, so concurrent requests rarely meet
//! and no request takes a global lock.
//!
//! Entries are found by a key derived from the token: the token hash itself by default, or any
//! other [`CacheKey`] a backend names sessions by (the Redis store uses the tag its invalidation
//! broadcast carries, so that a message finds the entry, and the shard, it is about).
//!
//! Coherence: every write that can end or change a session goes through the same store and
//! invalidates the entry. A lookup that missed and read the backend inserts its answer only if no
//! invalidation touched its shard meanwhile (a per-shard generation), so a session deleted while
//! it was being read is never cached alive. The cache never decides validity: deadlines are
//! always checked on the record by the caller, so an expired session that is still cached is
//! refused all the same. Entries also age out after `ttl`, which bounds how long another process
//! sharing the backend (several instances on Redis) can be out of step when it misses an
//! invalidation.

use sessiond_core::session::SessionRecord;
use sessiond_core::token::TokenHash;
use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const SHARDS: usize = 64;

/// What a [`SessionCache`] finds sessions by.
pub trait CacheKey: Copy + Eq + Hash {
    /// A byte of the key that is spread evenly over its values: it picks the shard.
    fn spread(&self) -> u8;
}

impl CacheKey for TokenHash {
    fn spread(&self) -> u8 {
        // Token hashes are uniformly random, so one byte spreads sessions evenly.
        self.as_bytes()[0]
    }
}

struct Entry {
    record: Arc<SessionRecord>,
    cached_at: Instant,
}

struct Shard<K> {
    entries: HashMap<K, Entry>,
    generation: u64,
}

impl<K> Default for Shard<K> {
    fn default() -> Self {
        Self { entries: HashMap::new(), generation: 0 }
    }
}

/// A cache of decoded sessions; see the module documentation.
pub struct SessionCache<K = TokenHash> {
    shards: Box<[Mutex<Shard<K>>]>,
    per_shard: usize,
    ttl: Duration,
}

impl<K> std::fmt::Debug for SessionCache<K> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionCache").field("capacity", &(self.per_shard * SHARDS)).field("ttl", &self.ttl).finish()
    }
}

/// What a lookup learned, to hand back to [`SessionCache::insert`] after a miss.
#[derive(Clone, Copy, Debug)]
pub struct Ticket<K = TokenHash> {
    key: K,
    shard: usize,
    generation: u64,
}

impl<K: CacheKey> SessionCache<K> {
    /// A cache of at most about `capacity` sessions, each kept at most `ttl`.
    pub fn new(capacity: usize, ttl: Duration) -> Self {
        let shards = (0..SHARDS).map(|_| Mutex::new(Shard::default())).collect();
        Self { shards, per_shard: capacity.div_ceil(SHARDS).max(1), ttl }
    }

    fn shard_of(key: &K) -> usize {
        usize::from(key.spread()) % SHARDS
    }

    /// The cached session, or a ticket to insert the backend's answer with.
    pub fn get(&self, key: &K) -> Result<Arc<SessionRecord>, Ticket<K>> {
        let shard = Self::shard_of(key);
        let Ok(mut guard) = self.shards[shard].lock() else {
            return Err(Ticket { key: *key, shard, generation: u64::MAX });
        };
        let generation = guard.generation;
        match guard.entries.get(key) {
            Some(entry) if entry.cached_at.elapsed() < self.ttl => Ok(Arc::clone(&entry.record)),
            Some(_) => {
                guard.entries.remove(key);
                Err(Ticket { key: *key, shard, generation })
            }
            None => Err(Ticket { key: *key, shard, generation }),
        }
    }

    /// Caches `record` under the key `ticket` was taken for, unless an invalidation reached its
    /// shard since.
    pub fn insert(&self, ticket: Ticket<K>, record: Arc<SessionRecord>) {
        let Ok(mut guard) = self.shards[ticket.shard].lock() else { return };
        if guard.generation != ticket.generation {
            return;
        }
        if guard.entries.len() >= self.per_shard && !guard.entries.contains_key(&ticket.key) {
            // Full: drop an arbitrary entry. Hot sessions come straight back on their next use.
            if let Some(victim) = guard.entries.keys().next().copied() {
                guard.entries.remove(&victim);
            }
        }
        guard.entries.insert(ticket.key, Entry { record, cached_at: Instant::now() });
    }

    /// Forgets the session found by `key`, and keeps out answers read before this call.
    pub fn invalidate(&self, key: &K) {
        if let Ok(mut guard) = self.shards[Self::shard_of(key)].lock() {
            guard.generation = guard.generation.wrapping_add(1);
            guard.entries.remove(key);
        }
    }

    /// Forgets everything, and keeps out answers read before this call.
    pub fn clear(&self) {
        for shard in self.shards.iter() {
            if let Ok(mut guard) = shard.lock() {
                guard.generation = guard.generation.wrapping_add(1);
                guard.entries.clear();
            }
        }
    }

    /// How many sessions are cached now.
    pub fn len(&self) -> usize {
        self.shards.iter().filter_map(|s| s.lock().ok().map(|g| g.entries.len())).sum()
    }

    /// Whether nothing is cached.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sessiond_core::time::Timestamp;
    use sessiond_core::token::{SessionId, SessionToken};

    fn record() -> Arc<SessionRecord> {
        let t = Timestamp::from_unix(0);
        Arc::new(SessionRecord {
            id: SessionId::generate(),
            token_hash: SessionToken::generate().hash(),
            realm: "main".into(),
            user: "alice".into(),
            display_name: None,
            email: None,
            groups: vec![],
            amr: vec![],
            created_at: t,
            last_seen_at: t,
            absolute_deadline: t,
            expires_at: t,
            remember_me: false,
            ip: None,
            user_agent: None,
            attributes: Default::default(),
        })
    }

    #[test]
    fn a_miss_then_insert_then_hit() {
        let cache = SessionCache::new(100, Duration::from_secs(60));
        let r = record();
        let ticket = cache.get(&r.token_hash).unwrap_err();
        cache.insert(ticket, Arc::clone(&r));
        assert!(Arc::ptr_eq(&cache.get(&r.token_hash).unwrap(), &r));
    }

    #[test]
    fn an_invalidation_during_the_read_keeps_the_stale_answer_out() {
        let cache = SessionCache::new(100, Duration::from_secs(60));
        let r = record();
        let ticket = cache.get(&r.token_hash).unwrap_err();
        cache.invalidate(&r.token_hash); // a logout raced with the lookup
        cache.insert(ticket, Arc::clone(&r));
        assert!(cache.get(&r.token_hash).is_err());
        let ticket = cache.get(&r.token_hash).unwrap_err();
        cache.clear();
        cache.insert(ticket, r);
        assert!(cache.is_empty());
    }

    #[test]
    fn entries_age_out_and_capacity_is_bounded() {
        let cache = SessionCache::new(64, Duration::ZERO);
        let r = record();
        let ticket = cache.get(&r.token_hash).unwrap_err();
        cache.insert(ticket, Arc::clone(&r));
        assert!(cache.get(&r.token_hash).is_err(), "ttl 0: never served");

        let cache = SessionCache::new(64, Duration::from_secs(60));
        for _ in 0..10_000 {
            let r = record();
            if let Err(ticket) = cache.get(&r.token_hash) {
                cache.insert(ticket, r);
            }
        }
        assert!(cache.len() <= 64, "{}", cache.len());
    }

    /// A key whose shard the test picks: the first byte.
    #[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
    struct Tag([u8; 2]);

    impl CacheKey for Tag {
        fn spread(&self) -> u8 {
            self.0[0]
        }
    }

    #[test]
    fn other_keys_work_and_an_invalidation_holds_back_its_whole_shard() {
        let cache: SessionCache<Tag> = SessionCache::new(100, Duration::from_secs(60));
        let (a, b, elsewhere) = (Tag([1, 0]), Tag([1, 1]), Tag([2, 0]));
        let ticket_b = cache.get(&b).unwrap_err();
        let ticket_elsewhere = cache.get(&elsewhere).unwrap_err();
        // A message about `a` arrives while `b` and `elsewhere` are being read: `a` was never
        // cached, yet the read of `b` (same shard) may have raced the write behind it.
        cache.invalidate(&a);
        cache.insert(ticket_b, record());
        cache.insert(ticket_elsewhere, record());
        assert!(cache.get(&b).is_err(), "same shard: kept out");
        assert!(cache.get(&elsewhere).is_ok(), "other shards are not held back");

        let r = record();
        let ticket = cache.get(&a).unwrap_err();
        cache.insert(ticket, Arc::clone(&r));
        assert!(Arc::ptr_eq(&cache.get(&a).unwrap(), &r), "served under the ticket's key");
        cache.invalidate(&a);
        assert!(cache.get(&a).is_err());
    }
}
