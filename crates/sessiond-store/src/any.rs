//! One store type for whichever backend the configuration picks, without `dyn`.

use crate::{
    CacheStats, EmbeddedStore, Entry, EntryKind, MemoryStore, RealmState, RedisStore, SessionFilter, Store, StoreError,
};
use sessiond_core::session::SessionRecord;
use sessiond_core::time::Timestamp;
use sessiond_core::token::{SessionId, TokenHash};

/// The backend chosen at startup (`storage.kind`).
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum AnyStore {
    /// `storage.kind: memory`.
    Memory(MemoryStore),
    /// `storage.kind: embedded`.
    Embedded(EmbeddedStore),
    /// `storage.kind: redis`.
    Redis(RedisStore),
}

impl AnyStore {
    /// The backend's name as written in configuration, for logs and `/readyz`.
    pub fn backend_name(&self) -> &'static str {
        match self {
            Self::Memory(_) => "memory",
            Self::Embedded(_) => "embedded",
            Self::Redis(_) => "redis",
        }
    }
}

impl From<MemoryStore> for AnyStore {
    fn from(store: MemoryStore) -> Self {
        Self::Memory(store)
    }
}

impl From<EmbeddedStore> for AnyStore {
    fn from(store: EmbeddedStore) -> Self {
        Self::Embedded(store)
    }
}

impl From<RedisStore> for AnyStore {
    fn from(store: RedisStore) -> Self {
        Self::Redis(store)
    }
}

/// Calls the same method on whichever backend is inside.
macro_rules! delegate {
    ($self:ident.$method:ident($($arg:expr),*)) => {
        match $self {
            AnyStore::Memory(store) => store.$method($($arg),*).await,
            AnyStore::Embedded(store) => store.$method($($arg),*).await,
            AnyStore::Redis(store) => store.$method($($arg),*).await,
        }
    };
}

impl Store for AnyStore {
    async fn create_session(&self, record: &SessionRecord) -> Result<(), StoreError> {
        delegate!(self.create_session(record))
    }

    async fn session_by_token(&self, hash: &TokenHash) -> Result<Option<SessionRecord>, StoreError> {
        delegate!(self.session_by_token(hash))
    }

    async fn session_by_token_shared(
        &self,
        hash: &TokenHash,
    ) -> Result<Option<std::sync::Arc<SessionRecord>>, StoreError> {
        delegate!(self.session_by_token_shared(hash))
    }

    async fn session_by_id(&self, id: &SessionId) -> Result<Option<SessionRecord>, StoreError> {
        delegate!(self.session_by_id(id))
    }

    async fn touch_session(
        &self,
        hash: &TokenHash,
        last_seen_at: Timestamp,
        expires_at: Timestamp,
    ) -> Result<bool, StoreError> {
        delegate!(self.touch_session(hash, last_seen_at, expires_at))
    }

    async fn delete_session(&self, hash: &TokenHash) -> Result<Option<SessionRecord>, StoreError> {
        delegate!(self.delete_session(hash))
    }

    async fn list_sessions(&self, filter: &SessionFilter) -> Result<Vec<SessionRecord>, StoreError> {
        delegate!(self.list_sessions(filter))
    }

    async fn delete_user_sessions(
        &self,
        realm: &str,
        user: &str,
        except: Option<&TokenHash>,
    ) -> Result<Vec<SessionRecord>, StoreError> {
        delegate!(self.delete_user_sessions(realm, user, except))
    }

    async fn delete_realm_sessions(&self, realm: &str) -> Result<usize, StoreError> {
        delegate!(self.delete_realm_sessions(realm))
    }

    async fn sweep_expired(&self, now: Timestamp, limit: usize) -> Result<usize, StoreError> {
        delegate!(self.sweep_expired(now, limit))
    }

    async fn realm_state(&self, realm: &str) -> Result<Option<RealmState>, StoreError> {
        delegate!(self.realm_state(realm))
    }

    async fn put_realm_state(&self, realm: &str, state: &RealmState) -> Result<(), StoreError> {
        delegate!(self.put_realm_state(realm, state))
    }

    async fn entry(&self, kind: EntryKind, key: &str, now: Timestamp) -> Result<Option<Entry>, StoreError> {
        delegate!(self.entry(kind, key, now))
    }

    async fn put_entry(
        &self,
        kind: EntryKind,
        key: &str,
        value: &[u8],
        expires_at: Option<Timestamp>,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        delegate!(self.put_entry(kind, key, value, expires_at, now))
    }

    async fn swap_entry(
        &self,
        kind: EntryKind,
        key: &str,
        expected: Option<&[u8]>,
        new: Option<(&[u8], Option<Timestamp>)>,
        now: Timestamp,
    ) -> Result<bool, StoreError> {
        delegate!(self.swap_entry(kind, key, expected, new, now))
    }

    async fn delete_entry(&self, kind: EntryKind, key: &str) -> Result<bool, StoreError> {
        delegate!(self.delete_entry(kind, key))
    }

    async fn list_entries(&self, kind: EntryKind, now: Timestamp) -> Result<Vec<Entry>, StoreError> {
        delegate!(self.list_entries(kind, now))
    }

    async fn sweep_entries(&self, now: Timestamp, limit: usize) -> Result<usize, StoreError> {
        delegate!(self.sweep_entries(now, limit))
    }

    async fn ping(&self) -> Result<(), StoreError> {
        delegate!(self.ping())
    }

    async fn session_count(&self, realm: &str) -> Result<Option<u64>, StoreError> {
        delegate!(self.session_count(realm))
    }

    fn cache_stats(&self) -> Option<CacheStats> {
        match self {
            Self::Memory(store) => store.cache_stats(),
            Self::Embedded(store) => store.cache_stats(),
            Self::Redis(store) => store.cache_stats(),
        }
    }
}
