//! The [`Store`] trait and its backends.
//!
//! The store keeps everything that must survive a restart: sessions (by token hash, with a
//! per-user index) and realm state (the realm's cookie name). It knows nothing of HTTP and makes
//! no decisions: the rules live in `sessiond-core`, and every method that depends on time takes
//! `now` as an argument.
//!
//! Backends:
//! - [`MemoryStore`]: a map in memory, for tests and throwaway deployments.
//! - [`EmbeddedStore`]: a single-file database (redb) — the default. Every write is committed
//!   before the method returns, so an acknowledged write survives a crash.
//! - [`RedisStore`]: Redis (standalone, Sentinel or Cluster), shared by several sessiond
//!   instances; every value is sealed and no key name reveals a token or a user.
//!
//! [`AnyStore`] picks one at runtime without `dyn`.
//!
//! Where to start reading: the [`Store`] trait and its contract, then [`MemoryStore`] (the
//! simplest backend that keeps it). With the `conformance` feature, the `conformance` module
//! holds that contract as executable cases and `conformance_suite!` runs them against a backend.
//!
//! ```
//! use sessiond_core::session::SessionRecord;
//! use sessiond_core::time::Timestamp;
//! use sessiond_core::token::{SessionId, SessionToken};
//! use sessiond_store::{MemoryStore, SessionFilter, Store};
//! use std::time::Duration;
//!
//! # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
//! let store = MemoryStore::default(); // or EmbeddedStore::open(path)?
//! let now = Timestamp::from_unix(1_700_000_000);
//! let token = SessionToken::generate(); // goes to the browser; the store only sees its hash
//! let record = SessionRecord {
//!     id: SessionId::generate(),
//!     token_hash: token.hash(),
//!     realm: "main".into(),
//!     user: "alice".into(),
//!     display_name: None,
//!     email: None,
//!     groups: vec!["dev".into()],
//!     amr: vec!["pwd".into()],
//!     created_at: now,
//!     last_seen_at: now,
//!     absolute_deadline: now + Duration::from_secs(3600),
//!     expires_at: now + Duration::from_secs(300),
//!     remember_me: false,
//!     ip: None,
//!     user_agent: None,
//!     attributes: Default::default(),
//! };
//! store.create_session(&record).await?;
//! assert_eq!(store.session_by_token(&token.hash()).await?, Some(record.clone()));
//!
//! // Five minutes without a touch: the sweep removes it from every index.
//! assert_eq!(store.sweep_expired(now + Duration::from_secs(300), 100).await?, 1);
//! assert!(store.list_sessions(&SessionFilter::default()).await?.is_empty());
//! # Ok::<(), sessiond_store::StoreError>(())
//! # }).unwrap();
//! ```

mod any;
pub mod cache;
mod embedded;
mod error;
mod memory;
mod redis;

#[cfg(feature = "conformance")]
pub mod conformance;

pub use any::AnyStore;
pub use embedded::EmbeddedStore;
pub use error::StoreError;
pub use memory::MemoryStore;

pub use redis::{DEFAULT_KEY_PREFIX, DEFAULT_TIMEOUT, RedisKey, RedisKeys, RedisMode, RedisSettings, RedisStore};

use serde::{Deserialize, Serialize};
use sessiond_core::session::SessionRecord;
use sessiond_core::time::Timestamp;
use sessiond_core::token::{SessionId, TokenHash};
use std::future::Future;

/// State of a realm that must outlive restarts.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RealmState {
    /// The pseudo-random default cookie name, generated once.
    pub default_cookie_name: String,
    /// The cookie name in force (the default unless set by config, CLI or API).
    pub cookie_name: String,
    /// Client-side sessions of the realm created at or before this instant (Unix seconds) are
    /// refused. Moved forward when the cookie name changes: a cookie is sealed for its name, so
    /// a new name refuses the old cookies, and this keeps them refused when the name later
    /// comes back to theirs. Kept here, beside the name, so that each instance holds both in
    /// memory and a verify reads neither from the store.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sessions_not_before: Option<i64>,
}

/// What an entry of the store's small key-value space holds. Each kind has keys of its own, so
/// two features never read each other's values. The store gives entries no meaning: the server
/// encodes and decodes them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum EntryKind {
    /// The JWT signing keys, sealed with a key derived from the secret.
    SigningKeys,
    /// An API token, keyed by the hex SHA-256 of the token.
    ApiToken,
    /// A revoked client-side session, keyed by realm and session id, kept until its deadline.
    RevokedSession,
    /// The instant before which a user's (or a realm's) client-side sessions no longer count.
    NotBefore,
    /// The state of a login journey in progress.
    Journey,
    /// A user's TOTP secret (sealed) and the counter of the last code used, or a pending
    /// enrollment.
    Totp,
}

impl EntryKind {
    /// Every kind, for backends that keep one index per kind.
    pub const ALL: [EntryKind; 6] =
        [Self::SigningKeys, Self::ApiToken, Self::RevokedSession, Self::NotBefore, Self::Journey, Self::Totp];

    /// A short, stable name for key names and tables; never changes once written.
    pub fn tag(self) -> &'static str {
        match self {
            Self::SigningKeys => "signing-keys",
            Self::ApiToken => "api-token",
            Self::RevokedSession => "revoked",
            Self::NotBefore => "not-before",
            Self::Journey => "journey",
            Self::Totp => "totp",
        }
    }
}

/// One entry as stored: its value and, when it has one, the instant it stops existing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    /// The key, as given to [`Store::put_entry`].
    pub key: String,
    /// The value, as given.
    pub value: Vec<u8>,
    /// When the entry expires; `None` keeps it until it is deleted.
    pub expires_at: Option<Timestamp>,
}

/// How often a backend's in-process session cache answered a lookup itself, since the store was
/// opened. The hit ratio tells whether the cache is large enough for the sessions in use.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CacheStats {
    /// Lookups answered from the cache.
    pub hits: u64,
    /// Lookups that had to read the backend.
    pub misses: u64,
}

/// Which sessions to list.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SessionFilter {
    /// Only this realm.
    pub realm: Option<String>,
    /// Only this user (within `realm` when given).
    pub user: Option<String>,
}

/// Persistence for sessions and realm state.
///
/// Contract (checked by the `conformance` suite against every backend):
/// - a method that returns `Ok` has made its write durable for the backend;
/// - "not found" is `Ok(None)` / `Ok(false)`, never an error;
/// - the per-user index always agrees with the sessions: a session deleted by any path is gone
///   from its user's list;
/// - `sweep_expired` deletes only sessions whose `expires_at <= now`, at most `limit` per call
///   (and `sweep_entries` the same for entries);
/// - an entry is never answered past its `expires_at`, and `swap_entry` is atomic;
/// - a backend that counts sessions per realm ([`Store::session_count`]) keeps the count equal to
///   the sessions stored, whichever path created or deleted them.
pub trait Store: Clone + Send + Sync + 'static {
    /// Stores a new session. A session with the same token hash or id is a [`StoreError::Conflict`].
    fn create_session(&self, record: &SessionRecord) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// The session whose token hashes to `hash`.
    fn session_by_token(
        &self,
        hash: &TokenHash,
    ) -> impl Future<Output = Result<Option<SessionRecord>, StoreError>> + Send;

    /// Like [`Store::session_by_token`], shared: backends that cache decoded sessions hand out
    /// the cached record without copying it. This is the hot path of every verify.
    fn session_by_token_shared(
        &self,
        hash: &TokenHash,
    ) -> impl Future<Output = Result<Option<std::sync::Arc<SessionRecord>>, StoreError>> + Send {
        async move { self.session_by_token(hash).await.map(|found| found.map(std::sync::Arc::new)) }
    }

    /// The session with public id `id`.
    fn session_by_id(&self, id: &SessionId) -> impl Future<Output = Result<Option<SessionRecord>, StoreError>> + Send;

    /// Records activity: sets `last_seen_at` and `expires_at`. `false` when the session is gone.
    fn touch_session(
        &self,
        hash: &TokenHash,
        last_seen_at: Timestamp,
        expires_at: Timestamp,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Deletes one session; returns it when it existed.
    fn delete_session(
        &self,
        hash: &TokenHash,
    ) -> impl Future<Output = Result<Option<SessionRecord>, StoreError>> + Send;

    /// Sessions matching `filter`, oldest first.
    fn list_sessions(
        &self,
        filter: &SessionFilter,
    ) -> impl Future<Output = Result<Vec<SessionRecord>, StoreError>> + Send;

    /// Deletes every session of `user` in `realm` except the one whose token hashes to `except`;
    /// returns the deleted sessions.
    fn delete_user_sessions(
        &self,
        realm: &str,
        user: &str,
        except: Option<&TokenHash>,
    ) -> impl Future<Output = Result<Vec<SessionRecord>, StoreError>> + Send;

    /// Deletes every session of `realm`; returns how many.
    fn delete_realm_sessions(&self, realm: &str) -> impl Future<Output = Result<usize, StoreError>> + Send;

    /// Deletes up to `limit` sessions with `expires_at <= now`; returns how many.
    fn sweep_expired(&self, now: Timestamp, limit: usize) -> impl Future<Output = Result<usize, StoreError>> + Send;

    /// The stored state of `realm`.
    fn realm_state(&self, realm: &str) -> impl Future<Output = Result<Option<RealmState>, StoreError>> + Send;

    /// Replaces the stored state of `realm`.
    fn put_realm_state(&self, realm: &str, state: &RealmState) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// The entry `kind`/`key`; `None` when absent or expired at `now`.
    fn entry(
        &self,
        kind: EntryKind,
        key: &str,
        now: Timestamp,
    ) -> impl Future<Output = Result<Option<Entry>, StoreError>> + Send;

    /// Writes the entry `kind`/`key`, replacing any value it had. `now` is the present, from
    /// which backends that expire keys themselves (Redis) count the time left.
    fn put_entry(
        &self,
        kind: EntryKind,
        key: &str,
        value: &[u8],
        expires_at: Option<Timestamp>,
        now: Timestamp,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Compare and swap: when the entry's value at `now` is `expected` (`None`: absent or
    /// expired), writes `new` (`None`: deletes it) and returns `true`; otherwise changes nothing
    /// and returns `false`. Of concurrent swaps from the same expected value, exactly one wins.
    fn swap_entry(
        &self,
        kind: EntryKind,
        key: &str,
        expected: Option<&[u8]>,
        new: Option<(&[u8], Option<Timestamp>)>,
        now: Timestamp,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Deletes the entry; `true` when it existed (expired or not).
    fn delete_entry(&self, kind: EntryKind, key: &str) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Every entry of `kind` alive at `now`, in key order.
    fn list_entries(
        &self,
        kind: EntryKind,
        now: Timestamp,
    ) -> impl Future<Output = Result<Vec<Entry>, StoreError>> + Send;

    /// Deletes up to `limit` entries whose `expires_at <= now`; returns how many. Backends whose
    /// entries expire by themselves (Redis) may answer `0`.
    fn sweep_entries(&self, now: Timestamp, limit: usize) -> impl Future<Output = Result<usize, StoreError>> + Send;

    /// Checks that the backend answers (for `/readyz`).
    fn ping(&self) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// How many sessions `realm` holds, read from a count the backend keeps exact with every
    /// write that creates or deletes a session (never a scan, so it is cheap enough to ask on
    /// every metrics scrape). A session counts from its creation until it is deleted, revoked or
    /// swept, including while it waits for the sweep past its deadline. An unknown realm has
    /// `Some(0)`. `Ok(None)` when the backend keeps no such count.
    fn session_count(&self, _realm: &str) -> impl Future<Output = Result<Option<u64>, StoreError>> + Send {
        async { Ok(None) }
    }

    /// Hits and misses of the backend's in-process session cache; `None` when it has none.
    fn cache_stats(&self) -> Option<CacheStats> {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::RealmState;

    #[test]
    fn a_realm_state_written_before_the_realm_cut_moved_into_it_still_reads() {
        let old = r#"{"default_cookie_name":"sd_4f9c2a7e","cookie_name":"app"}"#;
        let state: RealmState = serde_json::from_str(old).unwrap();
        assert_eq!(state.sessions_not_before, None);
        assert_eq!(serde_json::to_string(&state).unwrap(), old, "no cut, nothing more written");
    }
}
