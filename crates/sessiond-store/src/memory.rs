//! Sessions in a map in memory: for tests, and for deployments that accept losing every session
//! on restart.

use crate::{Entry, EntryKind, RealmState, SessionFilter, Store, StoreError};
use sessiond_core::session::SessionRecord;
use sessiond_core::time::Timestamp;
use sessiond_core::token::{SessionId, TokenHash};
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::{Arc, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};

/// A store that keeps everything in memory. Clones share the same data.
///
/// Every lookup is a map access; sweeping expired sessions only visits sessions that are due.
#[derive(Clone, Default)]
pub struct MemoryStore {
    inner: Arc<RwLock<Maps>>,
}

impl std::fmt::Debug for MemoryStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryStore").finish_non_exhaustive()
    }
}

/// The sessions and the indexes that must always agree with them.
#[derive(Default)]
struct Maps {
    sessions: HashMap<TokenHash, SessionRecord>,
    ids: HashMap<SessionId, TokenHash>,
    /// realm → user → that user's sessions.
    users: HashMap<String, HashMap<String, HashSet<TokenHash>>>,
    /// Sessions ordered by when they may be swept.
    expiry: BTreeSet<(Timestamp, TokenHash)>,
    /// realm → how many sessions it holds, kept with every insert and remove.
    counts: HashMap<String, u64>,
    realms: HashMap<String, RealmState>,
    /// Entries by kind and key, in key order for listing.
    entries: BTreeMap<(EntryKind, String), (Vec<u8>, Option<Timestamp>)>,
}

/// Whether an entry that expires at `expires_at` still exists at `now`.
pub(crate) fn alive(expires_at: Option<Timestamp>, now: Timestamp) -> bool {
    expires_at.is_none_or(|at| at > now)
}

impl Maps {
    fn insert(&mut self, record: SessionRecord) {
        let hash = record.token_hash;
        self.ids.insert(record.id.clone(), hash);
        self.users.entry(record.realm.clone()).or_default().entry(record.user.clone()).or_default().insert(hash);
        self.expiry.insert((record.expires_at, hash));
        *self.counts.entry(record.realm.clone()).or_default() += 1;
        self.sessions.insert(hash, record);
    }

    /// Removes a session from the map and from every index, dropping index entries that become
    /// empty so that memory is given back.
    fn remove(&mut self, hash: &TokenHash) -> Option<SessionRecord> {
        let record = self.sessions.remove(hash)?;
        self.ids.remove(&record.id);
        self.expiry.remove(&(record.expires_at, *hash));
        if let Some(realm) = self.users.get_mut(&record.realm) {
            if let Some(hashes) = realm.get_mut(&record.user) {
                hashes.remove(hash);
                if hashes.is_empty() {
                    realm.remove(&record.user);
                }
            }
            if realm.is_empty() {
                self.users.remove(&record.realm);
            }
        }
        if let Some(count) = self.counts.get_mut(&record.realm) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                self.counts.remove(&record.realm);
            }
        }
        Some(record)
    }

    fn hashes_of(&self, realm: &str, user: &str) -> Vec<TokenHash> {
        self.users
            .get(realm)
            .and_then(|users| users.get(user))
            .map(|hashes| hashes.iter().copied().collect())
            .unwrap_or_default()
    }

    fn hashes_of_realm(&self, realm: &str) -> Vec<TokenHash> {
        self.users.get(realm).map(|users| users.values().flatten().copied().collect()).unwrap_or_default()
    }
}

impl MemoryStore {
    // A poisoned lock means a thread panicked while holding it. Every update below finishes its
    // map changes without calling anything that can panic, so the data is still consistent and
    // refusing all further requests would only turn one failure into an outage.
    fn read(&self) -> RwLockReadGuard<'_, Maps> {
        self.inner.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn write(&self) -> RwLockWriteGuard<'_, Maps> {
        self.inner.write().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Oldest first; the id breaks ties so that the order is stable between calls.
pub(crate) fn sort_oldest_first(records: &mut [SessionRecord]) {
    records.sort_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
}

impl Store for MemoryStore {
    async fn create_session(&self, record: &SessionRecord) -> Result<(), StoreError> {
        let mut maps = self.write();
        if maps.sessions.contains_key(&record.token_hash) || maps.ids.contains_key(&record.id) {
            return Err(StoreError::Conflict);
        }
        maps.insert(record.clone());
        Ok(())
    }

    async fn session_by_token(&self, hash: &TokenHash) -> Result<Option<SessionRecord>, StoreError> {
        Ok(self.read().sessions.get(hash).cloned())
    }

    async fn session_by_id(&self, id: &SessionId) -> Result<Option<SessionRecord>, StoreError> {
        let maps = self.read();
        Ok(maps.ids.get(id).and_then(|hash| maps.sessions.get(hash)).cloned())
    }

    async fn touch_session(
        &self,
        hash: &TokenHash,
        last_seen_at: Timestamp,
        expires_at: Timestamp,
    ) -> Result<bool, StoreError> {
        let mut maps = self.write();
        let Some(record) = maps.sessions.get_mut(hash) else {
            return Ok(false);
        };
        let old_expiry = record.expires_at;
        record.last_seen_at = last_seen_at;
        record.expires_at = expires_at;
        maps.expiry.remove(&(old_expiry, *hash));
        maps.expiry.insert((expires_at, *hash));
        Ok(true)
    }

    async fn delete_session(&self, hash: &TokenHash) -> Result<Option<SessionRecord>, StoreError> {
        Ok(self.write().remove(hash))
    }

    async fn list_sessions(&self, filter: &SessionFilter) -> Result<Vec<SessionRecord>, StoreError> {
        let mut records: Vec<SessionRecord> = {
            let maps = self.read();
            let hashes: Vec<TokenHash> = match (&filter.realm, &filter.user) {
                (Some(realm), Some(user)) => maps.hashes_of(realm, user),
                (Some(realm), None) => maps.hashes_of_realm(realm),
                (None, Some(user)) => {
                    maps.users.values().filter_map(|users| users.get(user)).flatten().copied().collect()
                }
                (None, None) => maps.sessions.keys().copied().collect(),
            };
            hashes.iter().filter_map(|hash| maps.sessions.get(hash)).cloned().collect()
        };
        sort_oldest_first(&mut records);
        Ok(records)
    }

    async fn delete_user_sessions(
        &self,
        realm: &str,
        user: &str,
        except: Option<&TokenHash>,
    ) -> Result<Vec<SessionRecord>, StoreError> {
        let mut deleted: Vec<SessionRecord> = {
            let mut maps = self.write();
            maps.hashes_of(realm, user)
                .iter()
                .filter(|hash| Some(*hash) != except)
                .filter_map(|hash| maps.remove(hash))
                .collect()
        };
        sort_oldest_first(&mut deleted);
        Ok(deleted)
    }

    async fn delete_realm_sessions(&self, realm: &str) -> Result<usize, StoreError> {
        let mut maps = self.write();
        let hashes = maps.hashes_of_realm(realm);
        Ok(hashes.iter().filter_map(|hash| maps.remove(hash)).count())
    }

    async fn sweep_expired(&self, now: Timestamp, limit: usize) -> Result<usize, StoreError> {
        let mut maps = self.write();
        // The expiry index is ordered by deadline, so this visits only the sessions that are due.
        let due: Vec<TokenHash> = maps
            .expiry
            .iter()
            .take_while(|(expires_at, _)| *expires_at <= now)
            .take(limit)
            .map(|(_, hash)| *hash)
            .collect();
        Ok(due.iter().filter_map(|hash| maps.remove(hash)).count())
    }

    async fn realm_state(&self, realm: &str) -> Result<Option<RealmState>, StoreError> {
        Ok(self.read().realms.get(realm).cloned())
    }

    async fn put_realm_state(&self, realm: &str, state: &RealmState) -> Result<(), StoreError> {
        self.write().realms.insert(realm.to_owned(), state.clone());
        Ok(())
    }

    async fn entry(&self, kind: EntryKind, key: &str, now: Timestamp) -> Result<Option<Entry>, StoreError> {
        let maps = self.read();
        Ok(maps.entries.get(&(kind, key.to_owned())).filter(|(_, at)| alive(*at, now)).map(|(value, at)| Entry {
            key: key.to_owned(),
            value: value.clone(),
            expires_at: *at,
        }))
    }

    async fn put_entry(
        &self,
        kind: EntryKind,
        key: &str,
        value: &[u8],
        expires_at: Option<Timestamp>,
        _now: Timestamp,
    ) -> Result<(), StoreError> {
        self.write().entries.insert((kind, key.to_owned()), (value.to_vec(), expires_at));
        Ok(())
    }

    async fn swap_entry(
        &self,
        kind: EntryKind,
        key: &str,
        expected: Option<&[u8]>,
        new: Option<(&[u8], Option<Timestamp>)>,
        now: Timestamp,
    ) -> Result<bool, StoreError> {
        let mut maps = self.write();
        let slot = (kind, key.to_owned());
        let current = maps.entries.get(&slot).filter(|(_, at)| alive(*at, now)).map(|(value, _)| value.as_slice());
        if current != expected {
            return Ok(false);
        }
        match new {
            Some((value, expires_at)) => maps.entries.insert(slot, (value.to_vec(), expires_at)),
            None => maps.entries.remove(&slot),
        };
        Ok(true)
    }

    async fn delete_entry(&self, kind: EntryKind, key: &str) -> Result<bool, StoreError> {
        Ok(self.write().entries.remove(&(kind, key.to_owned())).is_some())
    }

    async fn list_entries(&self, kind: EntryKind, now: Timestamp) -> Result<Vec<Entry>, StoreError> {
        let maps = self.read();
        Ok(maps
            .entries
            .range((kind, String::new())..)
            .take_while(|((k, _), _)| *k == kind)
            .filter(|(_, (_, at))| alive(*at, now))
            .map(|((_, key), (value, at))| Entry { key: key.clone(), value: value.clone(), expires_at: *at })
            .collect())
    }

    async fn sweep_entries(&self, now: Timestamp, limit: usize) -> Result<usize, StoreError> {
        let mut maps = self.write();
        let due: Vec<(EntryKind, String)> =
            maps.entries.iter().filter(|(_, (_, at))| !alive(*at, now)).take(limit).map(|(k, _)| k.clone()).collect();
        for slot in &due {
            maps.entries.remove(slot);
        }
        Ok(due.len())
    }

    async fn ping(&self) -> Result<(), StoreError> {
        Ok(())
    }

    async fn session_count(&self, realm: &str) -> Result<Option<u64>, StoreError> {
        Ok(Some(self.read().counts.get(realm).copied().unwrap_or(0)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sessiond_core::token::SessionToken;
    use std::collections::BTreeMap;
    use std::time::Duration;

    fn record(realm: &str, user: &str, expires_at: i64) -> SessionRecord {
        let now = Timestamp::from_unix(1_700_000_000);
        SessionRecord {
            id: SessionId::generate(),
            token_hash: SessionToken::generate().hash(),
            realm: realm.to_owned(),
            user: user.to_owned(),
            display_name: None,
            email: None,
            groups: Vec::new(),
            amr: Vec::new(),
            created_at: now,
            last_seen_at: now,
            absolute_deadline: now + Duration::from_secs(3600),
            expires_at: Timestamp::from_unix(expires_at),
            remember_me: false,
            ip: None,
            user_agent: None,
            attributes: BTreeMap::new(),
        }
    }

    fn sizes(store: &MemoryStore) -> (usize, usize, usize, usize) {
        let maps = store.read();
        assert_eq!(maps.counts.len(), maps.users.len(), "a count for exactly the realms that have sessions");
        (maps.sessions.len(), maps.ids.len(), maps.users.len(), maps.expiry.len())
    }

    #[tokio::test]
    async fn sweeping_everything_empties_every_map() {
        let store = MemoryStore::default();
        for (i, (realm, user)) in [("main", "alice"), ("main", "bob"), ("other", "alice")].iter().enumerate() {
            for j in 0..5 {
                store.create_session(&record(realm, user, 100 + (i * 5 + j) as i64)).await.unwrap();
            }
        }
        assert_eq!(sizes(&store), (15, 15, 2, 15));

        assert_eq!(store.sweep_expired(Timestamp::from_unix(1_000), 10).await.unwrap(), 10);
        assert_eq!(store.sweep_expired(Timestamp::from_unix(1_000), 10).await.unwrap(), 5);
        assert_eq!(sizes(&store), (0, 0, 0, 0), "no index keeps entries of swept sessions");
    }

    #[tokio::test]
    async fn deleting_a_users_last_session_drops_the_users_index_entry() {
        let store = MemoryStore::default();
        let a = record("main", "alice", 100);
        let b = record("main", "bob", 100);
        store.create_session(&a).await.unwrap();
        store.create_session(&b).await.unwrap();

        store.delete_session(&a.token_hash).await.unwrap();
        {
            let maps = store.read();
            assert!(!maps.users["main"].contains_key("alice"));
            assert!(maps.users["main"].contains_key("bob"));
        }
        store.delete_user_sessions("main", "bob", None).await.unwrap();
        assert_eq!(sizes(&store), (0, 0, 0, 0));
    }

    #[tokio::test]
    async fn sweep_leaves_sessions_that_are_not_due_in_every_index() {
        let store = MemoryStore::default();
        store.create_session(&record("main", "alice", 100)).await.unwrap();
        let kept = record("main", "alice", 200);
        store.create_session(&kept).await.unwrap();

        assert_eq!(store.sweep_expired(Timestamp::from_unix(150), 10).await.unwrap(), 1);
        assert_eq!(sizes(&store), (1, 1, 1, 1));
        let maps = store.read();
        assert!(maps.expiry.contains(&(kept.expires_at, kept.token_hash)));
        assert!(maps.ids.contains_key(&kept.id));
    }

    #[tokio::test]
    async fn touch_replaces_the_expiry_entry_instead_of_adding_one() {
        let store = MemoryStore::default();
        let a = record("main", "alice", 100);
        store.create_session(&a).await.unwrap();
        let later = Timestamp::from_unix(500);
        assert!(store.touch_session(&a.token_hash, Timestamp::from_unix(50), later).await.unwrap());

        let maps = store.read();
        assert_eq!(maps.expiry.iter().collect::<Vec<_>>(), vec![&(later, a.token_hash)]);
    }
}
