//! A bounded in-memory cache of sessions by token hash, in front of a backend.
//!
//! Forward auth asks about the same few sessions thousands of times a second; decoding them from
//! the backend each time costs more than everything else on that path. The cache holds decoded
//! records behind `Arc`, split into shards with a lock each, so concurrent requests rarely meet
//! and no request takes a global lock.
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
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const SHARDS: usize = 64;

struct Entry {
    record: Arc<SessionRecord>,
    cached_at: Instant,
}

#[derive(Default)]
struct Shard {
    entries: HashMap<TokenHash, Entry>,
    generation: u64,
}

/// A cache of decoded sessions; see the module documentation.
pub struct SessionCache {
    shards: Box<[Mutex<Shard>]>,
    per_shard: usize,
    ttl: Duration,
}

impl std::fmt::Debug for SessionCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionCache").field("capacity", &(self.per_shard * SHARDS)).field("ttl", &self.ttl).finish()
    }
}

/// What a lookup learned, to hand back to [`SessionCache::insert`] after a miss.
#[derive(Clone, Copy, Debug)]
pub struct Ticket {
    shard: usize,
    generation: u64,
}

impl SessionCache {
    /// A cache of at most about `capacity` sessions, each kept at most `ttl`.
    pub fn new(capacity: usize, ttl: Duration) -> Self {
        let shards = (0..SHARDS).map(|_| Mutex::new(Shard::default())).collect();
        Self { shards, per_shard: capacity.div_ceil(SHARDS).max(1), ttl }
    }

    fn shard_of(hash: &TokenHash) -> usize {
        // Token hashes are uniformly random, so one byte spreads sessions evenly.
        usize::from(hash.as_bytes()[0]) % SHARDS
    }

    /// The cached session, or a ticket to insert the backend's answer with.
    pub fn get(&self, hash: &TokenHash) -> Result<Arc<SessionRecord>, Ticket> {
        let shard = Self::shard_of(hash);
        let Ok(mut guard) = self.shards[shard].lock() else {
            return Err(Ticket { shard, generation: u64::MAX });
        };
        let generation = guard.generation;
        match guard.entries.get(hash) {
            Some(entry) if entry.cached_at.elapsed() < self.ttl => Ok(Arc::clone(&entry.record)),
            Some(_) => {
                guard.entries.remove(hash);
                Err(Ticket { shard, generation })
            }
            None => Err(Ticket { shard, generation }),
        }
    }

    /// Caches `record`, unless an invalidation reached its shard since `ticket` was taken.
    pub fn insert(&self, ticket: Ticket, record: Arc<SessionRecord>) {
        let Ok(mut guard) = self.shards[ticket.shard].lock() else { return };
        if guard.generation != ticket.generation || Self::shard_of(&record.token_hash) != ticket.shard {
            return;
        }
        if guard.entries.len() >= self.per_shard {
            // Full: drop an arbitrary entry. Hot sessions come straight back on their next use.
            if let Some(victim) = guard.entries.keys().next().copied() {
                guard.entries.remove(&victim);
            }
        }
        guard.entries.insert(record.token_hash, Entry { record, cached_at: Instant::now() });
    }

    /// Forgets the session whose token hashes to `hash`.
    pub fn invalidate(&self, hash: &TokenHash) {
        if let Ok(mut guard) = self.shards[Self::shard_of(hash)].lock() {
            guard.generation = guard.generation.wrapping_add(1);
            guard.entries.remove(hash);
        }
    }

    /// Forgets everything.
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
}
