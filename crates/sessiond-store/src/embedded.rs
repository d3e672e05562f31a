//! Sessions in a single-file database (redb): the default store.
//!
//! Layout (one redb table each):
//! - `sessions`: token hash → the session record as JSON;
//! - `session_ids`: public id → token hash;
//! - `user_sessions` (multimap): (realm, user) → token hashes;
//! - `session_expiry`: (expires_at, token hash) → nothing, ordered by deadline for sweeping;
//! - `session_counts`: realm → how many sessions it holds, for metrics without a scan;
//! - `realm_state`: realm → its state as JSON;
//! - `entries`: (kind, key) → (expiry or `i64::MAX`, value), the small key-value space;
//! - `entry_expiry`: (expiry, kind, key) → nothing, for sweeping entries that expire.
//!
//! Every change to a session updates all five session tables in one transaction, so the indexes
//! and counts never disagree with the records, and every write transaction is committed (fsynced) before
//! the method returns. redb is blocking, so each call runs on tokio's blocking pool.

use crate::cache::SessionCache;
use crate::memory::alive;
use crate::memory::sort_oldest_first;
use crate::{CacheStats, Entry, EntryKind, RealmState, SessionFilter, Store, StoreError};
use redb::{
    Database, DatabaseError, MultimapTable, MultimapTableDefinition, ReadableMultimapTable, ReadableTable, Table,
    TableDefinition, TableHandle, WriteTransaction,
};
use sessiond_core::session::SessionRecord;
use sessiond_core::time::Timestamp;
use sessiond_core::token::{SessionId, TokenHash};
use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

const BACKEND: &str = "embedded";

type Hash = [u8; 32];

const SESSIONS: TableDefinition<'_, Hash, &[u8]> = TableDefinition::new("sessions");
const IDS: TableDefinition<'_, &str, Hash> = TableDefinition::new("session_ids");
const USERS: MultimapTableDefinition<'_, (&str, &str), Hash> = MultimapTableDefinition::new("user_sessions");
const EXPIRY: TableDefinition<'_, (i64, Hash), ()> = TableDefinition::new("session_expiry");
const REALMS: TableDefinition<'_, &str, &[u8]> = TableDefinition::new("realm_state");
const COUNTS: TableDefinition<'_, &str, u64> = TableDefinition::new("session_counts");
const ENTRIES: TableDefinition<'_, (&str, &str), (i64, &[u8])> = TableDefinition::new("entries");
const ENTRY_EXPIRY: TableDefinition<'_, (i64, &str, &str), ()> = TableDefinition::new("entry_expiry");

/// The stored form of "never expires".
const NEVER: i64 = i64::MAX;

fn stored_expiry(expires_at: Option<Timestamp>) -> i64 {
    expires_at.map_or(NEVER, Timestamp::unix)
}

fn read_expiry(stored: i64) -> Option<Timestamp> {
    (stored != NEVER).then(|| Timestamp::from_unix(stored))
}

/// Sessions kept decoded in memory at most; about 1 KiB each.
const CACHE_CAPACITY: usize = 100_000;
/// How long a cached session is served before it is read again.
const CACHE_TTL: std::time::Duration = std::time::Duration::from_secs(300);

/// A store in one redb file. Clones share the open database.
///
/// The file is locked while any clone is alive: a second [`EmbeddedStore::open`] of the same
/// file, from this process or another, fails with [`StoreError::Locked`].
#[derive(Clone)]
pub struct EmbeddedStore {
    db: Arc<Database>,
    path: Arc<Path>,
    /// Decoded sessions for the hot path. This process is the only writer of the file, and
    /// every write below invalidates what it changed after committing, so the cache stays exact.
    cache: Arc<SessionCache>,
    /// How the cache fared, for metrics.
    cache_counters: Arc<CacheCounters>,
}

#[derive(Default)]
struct CacheCounters {
    hits: AtomicU64,
    misses: AtomicU64,
}

impl fmt::Debug for EmbeddedStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EmbeddedStore").field("path", &self.path).finish_non_exhaustive()
    }
}

/// A failure tied to a file or directory, so that the message says which one.
#[derive(Debug, thiserror::Error)]
#[error("{action} {}", path.display())]
struct PathError {
    action: &'static str,
    path: PathBuf,
    #[source]
    source: Box<dyn std::error::Error + Send + Sync>,
}

fn unavailable(source: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> StoreError {
    StoreError::Unavailable { backend: BACKEND, source: source.into() }
}

fn decode_session(bytes: &[u8]) -> Result<SessionRecord, StoreError> {
    serde_json::from_slice(bytes).map_err(|e| StoreError::Corrupt { what: "session record", reason: e.to_string() })
}

fn encode<T: serde::Serialize>(value: &T) -> Result<Vec<u8>, StoreError> {
    serde_json::to_vec(value).map_err(unavailable)
}

impl EmbeddedStore {
    /// Opens the database at `path`, creating the file and its parent directories when missing.
    ///
    /// This blocks on file I/O (and on a repair after a crash): call it at startup, before
    /// serving, or from a blocking task.
    ///
    /// # Errors
    /// [`StoreError::Locked`] when another process or handle holds the file (a running server);
    /// [`StoreError::Unavailable`] when the directory cannot be created or the file is not a
    /// database of ours.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(|source| {
                unavailable(PathError { action: "creating directory", path: parent.to_owned(), source: source.into() })
            })?;
        }
        // Sessions and realm state are for the server's user only: create the file 0600 before
        // redb initialises it (redb itself would use the process umask).
        #[cfg(unix)]
        if !path.exists() {
            let mut options = std::fs::OpenOptions::new();
            options.write(true).create_new(true);
            std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
            if let Err(source) = options.open(path) {
                if source.kind() != std::io::ErrorKind::AlreadyExists {
                    return Err(unavailable(PathError {
                        action: "creating database",
                        path: path.to_owned(),
                        source: source.into(),
                    }));
                }
            }
        }
        let db = Database::create(path).map_err(|e| match e {
            DatabaseError::DatabaseAlreadyOpen => StoreError::Locked { path: path.to_owned(), source: e.into() },
            other => unavailable(PathError { action: "opening database", path: path.to_owned(), source: other.into() }),
        })?;

        // Creating every table up front lets read transactions open them without a special case
        // for a fresh file, and finds a foreign file with mismatching tables at startup.
        let txn = db.begin_write().map_err(unavailable)?;
        {
            let counted = txn.list_tables().map_err(unavailable)?.any(|table| table.name() == COUNTS.name());
            let mut tables = Tables::open(&txn)?;
            if !counted {
                // A file written before sessions were counted: count them once, from the index.
                tables.recount()?;
            }
            txn.open_table(REALMS).map_err(unavailable)?;
            txn.open_table(ENTRIES).map_err(unavailable)?;
            txn.open_table(ENTRY_EXPIRY).map_err(unavailable)?;
        }
        txn.commit().map_err(unavailable)?;

        Ok(Self {
            db: Arc::new(db),
            path: path.into(),
            cache: Arc::new(SessionCache::new(CACHE_CAPACITY, CACHE_TTL)),
            cache_counters: Arc::default(),
        })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Writes many sessions in one committed transaction, with the same tables, indexes and
    /// counts as [`Store::create_session`] writes one at a time: the way to load a large set of
    /// sessions (an import, a benchmark fill) without one disk commit per session.
    ///
    /// All or nothing: when any record's token hash or id is already in the store, or appears
    /// twice in `records`, nothing is written. Keep batches to some thousands of records, since
    /// the whole transaction is held in memory until it commits.
    ///
    /// # Errors
    /// [`StoreError::Conflict`] on a taken token hash or id; [`StoreError::Unavailable`] when
    /// the file cannot be written.
    pub async fn import_sessions(&self, records: Vec<SessionRecord>) -> Result<usize, StoreError> {
        self.write(move |t| {
            for record in &records {
                let taken = t.sessions.get(record.token_hash.as_bytes()).map_err(unavailable)?.is_some()
                    || t.ids.get(record.id.as_str()).map_err(unavailable)?.is_some();
                if taken {
                    return Err(StoreError::Conflict);
                }
                t.insert(record)?;
            }
            Ok(records.len())
        })
        .await
    }

    /// Runs `work` on the blocking pool, where redb may wait for the disk.
    async fn blocking<T, F>(&self, work: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Database) -> Result<T, StoreError> + Send + 'static,
    {
        let db = Arc::clone(&self.db);
        tokio::task::spawn_blocking(move || work(&db)).await.map_err(unavailable)?
    }

    /// Runs `work` in one write transaction over the session tables and commits it; on error
    /// the transaction is aborted and nothing changes.
    async fn write<T, F>(&self, work: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Tables<'_>) -> Result<T, StoreError> + Send + 'static,
    {
        self.blocking(move |db| {
            let txn = db.begin_write().map_err(unavailable)?;
            let outcome = Tables::open(&txn).and_then(|mut tables| work(&mut tables));
            match outcome {
                Ok(value) => {
                    txn.commit().map_err(unavailable)?;
                    Ok(value)
                }
                Err(e) => {
                    // Dropping the transaction discards it too; the caller needs the first error.
                    if let Err(abort) = txn.abort() {
                        tracing::warn!(error = %abort, "store transaction abort failed");
                    }
                    Err(e)
                }
            }
        })
        .await
    }
}

/// The session tables, open in one write transaction.
struct Tables<'txn> {
    sessions: Table<'txn, Hash, &'static [u8]>,
    ids: Table<'txn, &'static str, Hash>,
    users: MultimapTable<'txn, (&'static str, &'static str), Hash>,
    expiry: Table<'txn, (i64, Hash), ()>,
    counts: Table<'txn, &'static str, u64>,
}

impl<'txn> Tables<'txn> {
    fn open(txn: &'txn WriteTransaction) -> Result<Self, StoreError> {
        Ok(Self {
            sessions: txn.open_table(SESSIONS).map_err(unavailable)?,
            ids: txn.open_table(IDS).map_err(unavailable)?,
            users: txn.open_multimap_table(USERS).map_err(unavailable)?,
            expiry: txn.open_table(EXPIRY).map_err(unavailable)?,
            counts: txn.open_table(COUNTS).map_err(unavailable)?,
        })
    }

    /// Adds `delta` (`1` or `-1`) to the session count of `realm`; a count that reaches zero is
    /// removed, so realms without sessions leave nothing behind.
    fn count(&mut self, realm: &str, delta: i64) -> Result<(), StoreError> {
        let now = self.counts.get(realm).map_err(unavailable)?.map_or(0, |c| c.value());
        let next = now.saturating_add_signed(delta);
        if next == 0 {
            self.counts.remove(realm).map_err(unavailable)?;
        } else {
            self.counts.insert(realm, next).map_err(unavailable)?;
        }
        Ok(())
    }

    /// Replaces every count with one made from the per-user index (which lists each session
    /// exactly once) without decoding a record.
    fn recount(&mut self) -> Result<(), StoreError> {
        let mut counts: BTreeMap<String, u64> = BTreeMap::new();
        for entry in self.users.iter().map_err(unavailable)? {
            let (key, hashes) = entry.map_err(unavailable)?;
            *counts.entry(key.value().0.to_owned()).or_default() += hashes.len();
        }
        self.counts.retain(|_, _| false).map_err(unavailable)?;
        for (realm, count) in &counts {
            self.counts.insert(realm.as_str(), count).map_err(unavailable)?;
        }
        Ok(())
    }

    fn insert(&mut self, record: &SessionRecord) -> Result<(), StoreError> {
        let hash = record.token_hash.as_bytes();
        self.sessions.insert(hash, encode(record)?.as_slice()).map_err(unavailable)?;
        self.ids.insert(record.id.as_str(), hash).map_err(unavailable)?;
        self.users.insert((record.realm.as_str(), record.user.as_str()), hash).map_err(unavailable)?;
        self.expiry.insert((record.expires_at.unix(), *hash), ()).map_err(unavailable)?;
        self.count(&record.realm, 1)
    }

    /// Removes a session from the records and every index.
    fn remove(&mut self, hash: &Hash) -> Result<Option<SessionRecord>, StoreError> {
        let Some(record) = load(&self.sessions, hash)? else {
            return Ok(None);
        };
        self.sessions.remove(hash).map_err(unavailable)?;
        self.ids.remove(record.id.as_str()).map_err(unavailable)?;
        self.users.remove((record.realm.as_str(), record.user.as_str()), hash).map_err(unavailable)?;
        self.expiry.remove((record.expires_at.unix(), *hash)).map_err(unavailable)?;
        self.count(&record.realm, -1)?;
        Ok(Some(record))
    }

    /// Removes a record that cannot be decoded, with the id and user entries that point at it.
    /// The record cannot say what those are, so they are found by scanning: slow, and only ever
    /// needed for damaged data.
    fn purge_unreadable(&mut self, hash: &Hash) -> Result<(), StoreError> {
        self.sessions.remove(hash).map_err(unavailable)?;
        self.ids.retain(|_, indexed| indexed != *hash).map_err(unavailable)?;
        let mut owners = Vec::new();
        for entry in self.users.iter().map_err(unavailable)? {
            let (key, hashes) = entry.map_err(unavailable)?;
            for indexed in hashes {
                if indexed.map_err(unavailable)?.value() == *hash {
                    let (realm, user) = key.value();
                    owners.push((realm.to_owned(), user.to_owned()));
                }
            }
        }
        for (realm, user) in &owners {
            self.users.remove((realm.as_str(), user.as_str()), hash).map_err(unavailable)?;
            // The index entry is the only trace of the realm the session was counted in.
            self.count(realm, -1)?;
        }
        Ok(())
    }
}

/// Writes (`Some`) or deletes (`None`) one entry and its expiry index entry in `txn`; returns
/// whether an entry was there before.
fn write_entry(
    txn: &WriteTransaction,
    kind: EntryKind,
    key: &str,
    new: Option<(&[u8], Option<Timestamp>)>,
) -> Result<bool, StoreError> {
    let mut entries = txn.open_table(ENTRIES).map_err(unavailable)?;
    let mut expiry = txn.open_table(ENTRY_EXPIRY).map_err(unavailable)?;
    let old = entries.remove((kind.tag(), key)).map_err(unavailable)?.map(|v| v.value().0);
    if let Some(at) = old.filter(|at| *at != NEVER) {
        expiry.remove((at, kind.tag(), key)).map_err(unavailable)?;
    }
    if let Some((value, expires_at)) = new {
        let at = stored_expiry(expires_at);
        entries.insert((kind.tag(), key), (at, value)).map_err(unavailable)?;
        if at != NEVER {
            expiry.insert((at, kind.tag(), key), ()).map_err(unavailable)?;
        }
    }
    Ok(old.is_some())
}

fn load(sessions: &impl ReadableTable<Hash, &'static [u8]>, hash: &Hash) -> Result<Option<SessionRecord>, StoreError> {
    match sessions.get(hash).map_err(unavailable)? {
        Some(bytes) => decode_session(bytes.value()).map(Some),
        None => Ok(None),
    }
}

/// Token hashes of one user's sessions in one realm.
fn user_hashes(
    users: &impl ReadableMultimapTable<(&'static str, &'static str), Hash>,
    realm: &str,
    user: &str,
) -> Result<Vec<Hash>, StoreError> {
    users.get((realm, user)).map_err(unavailable)?.map(|hash| hash.map(|h| h.value()).map_err(unavailable)).collect()
}

/// Token hashes of every session in `realm` (all its users, found by a prefix range).
fn realm_hashes(
    users: &impl ReadableMultimapTable<(&'static str, &'static str), Hash>,
    realm: &str,
) -> Result<Vec<Hash>, StoreError> {
    let mut hashes = Vec::new();
    for entry in users.range((realm, "")..).map_err(unavailable)? {
        let (key, values) = entry.map_err(unavailable)?;
        if key.value().0 != realm {
            break;
        }
        for hash in values {
            hashes.push(hash.map_err(unavailable)?.value());
        }
    }
    Ok(hashes)
}

/// Token hashes of `user`'s sessions in every realm.
fn user_hashes_in_all_realms(
    users: &impl ReadableMultimapTable<(&'static str, &'static str), Hash>,
    user: &str,
) -> Result<Vec<Hash>, StoreError> {
    let mut hashes = Vec::new();
    for entry in users.iter().map_err(unavailable)? {
        let (key, values) = entry.map_err(unavailable)?;
        if key.value().1 != user {
            continue;
        }
        for hash in values {
            hashes.push(hash.map_err(unavailable)?.value());
        }
    }
    Ok(hashes)
}

impl Store for EmbeddedStore {
    async fn create_session(&self, record: &SessionRecord) -> Result<(), StoreError> {
        let record = record.clone();
        self.write(move |t| {
            let taken = t.sessions.get(record.token_hash.as_bytes()).map_err(unavailable)?.is_some()
                || t.ids.get(record.id.as_str()).map_err(unavailable)?.is_some();
            if taken {
                return Err(StoreError::Conflict);
            }
            t.insert(&record)
        })
        .await
    }

    async fn session_by_token_shared(&self, hash: &TokenHash) -> Result<Option<Arc<SessionRecord>>, StoreError> {
        let ticket = match self.cache.get(hash) {
            Ok(record) => {
                self.cache_counters.hits.fetch_add(1, Ordering::Relaxed);
                return Ok(Some(record));
            }
            Err(ticket) => ticket,
        };
        self.cache_counters.misses.fetch_add(1, Ordering::Relaxed);
        let Some(record) = self.session_by_token(hash).await? else { return Ok(None) };
        let record = Arc::new(record);
        self.cache.insert(ticket, Arc::clone(&record));
        Ok(Some(record))
    }

    async fn session_by_token(&self, hash: &TokenHash) -> Result<Option<SessionRecord>, StoreError> {
        // The hot path: a point read in an MVCC read transaction never waits for writers and
        // takes a few microseconds, far less than a hop to the blocking pool, so it runs inline.
        let txn = self.db.begin_read().map_err(unavailable)?;
        load(&txn.open_table(SESSIONS).map_err(unavailable)?, &hash.0)
    }

    async fn session_by_id(&self, id: &SessionId) -> Result<Option<SessionRecord>, StoreError> {
        let id = id.clone();
        self.blocking(move |db| {
            let txn = db.begin_read().map_err(unavailable)?;
            let ids = txn.open_table(IDS).map_err(unavailable)?;
            let Some(hash) = ids.get(id.as_str()).map_err(unavailable)? else {
                return Ok(None);
            };
            load(&txn.open_table(SESSIONS).map_err(unavailable)?, &hash.value())
        })
        .await
    }

    async fn touch_session(
        &self,
        hash: &TokenHash,
        last_seen_at: Timestamp,
        expires_at: Timestamp,
    ) -> Result<bool, StoreError> {
        let key = *hash;
        let hash = hash.0;
        let touched = self
            .write(move |t| {
                let Some(mut record) = load(&t.sessions, &hash)? else {
                    return Ok(false);
                };
                t.expiry.remove((record.expires_at.unix(), hash)).map_err(unavailable)?;
                record.last_seen_at = last_seen_at;
                record.expires_at = expires_at;
                t.sessions.insert(hash, encode(&record)?.as_slice()).map_err(unavailable)?;
                t.expiry.insert((expires_at.unix(), hash), ()).map_err(unavailable)?;
                Ok(true)
            })
            .await;
        self.cache.invalidate(&key);
        touched
    }

    async fn delete_session(&self, hash: &TokenHash) -> Result<Option<SessionRecord>, StoreError> {
        let key = *hash;
        let hash = hash.0;
        let deleted = self.write(move |t| t.remove(&hash)).await;
        self.cache.invalidate(&key);
        deleted
    }

    async fn list_sessions(&self, filter: &SessionFilter) -> Result<Vec<SessionRecord>, StoreError> {
        let filter = filter.clone();
        let mut records = self
            .blocking(move |db| {
                let txn = db.begin_read().map_err(unavailable)?;
                let sessions = txn.open_table(SESSIONS).map_err(unavailable)?;
                let users = txn.open_multimap_table(USERS).map_err(unavailable)?;
                let hashes = match (&filter.realm, &filter.user) {
                    (Some(realm), Some(user)) => user_hashes(&users, realm, user)?,
                    (Some(realm), None) => realm_hashes(&users, realm)?,
                    (None, Some(user)) => user_hashes_in_all_realms(&users, user)?,
                    (None, None) => {
                        let mut all = Vec::new();
                        for entry in sessions.iter().map_err(unavailable)? {
                            let (_, bytes) = entry.map_err(unavailable)?;
                            all.push(decode_session(bytes.value())?);
                        }
                        return Ok(all);
                    }
                };
                let mut records = Vec::with_capacity(hashes.len());
                for hash in &hashes {
                    records.extend(load(&sessions, hash)?);
                }
                Ok(records)
            })
            .await?;
        sort_oldest_first(&mut records);
        Ok(records)
    }

    async fn delete_user_sessions(
        &self,
        realm: &str,
        user: &str,
        except: Option<&TokenHash>,
    ) -> Result<Vec<SessionRecord>, StoreError> {
        let (realm, user, except) = (realm.to_owned(), user.to_owned(), except.map(|h| h.0));
        let deleted = self
            .write(move |t| {
                let mut deleted = Vec::new();
                for hash in user_hashes(&t.users, &realm, &user)? {
                    if Some(hash) != except {
                        deleted.extend(t.remove(&hash)?);
                    }
                }
                Ok(deleted)
            })
            .await;
        let Ok(mut deleted) = deleted else {
            // Whatever the failure left behind, nothing stale may be served from the cache.
            self.cache.clear();
            return deleted;
        };
        for record in &deleted {
            self.cache.invalidate(&record.token_hash);
        }
        sort_oldest_first(&mut deleted);
        Ok(deleted)
    }

    async fn delete_realm_sessions(&self, realm: &str) -> Result<usize, StoreError> {
        let realm = realm.to_owned();
        let count = self
            .write(move |t| {
                let mut count = 0;
                for hash in realm_hashes(&t.users, &realm)? {
                    count += usize::from(t.remove(&hash)?.is_some());
                }
                Ok(count)
            })
            .await;
        self.cache.clear();
        count
    }

    async fn sweep_expired(&self, now: Timestamp, limit: usize) -> Result<usize, StoreError> {
        let (count, swept) = self
            .write(move |t| {
                // The expiry index is ordered by deadline, so the range holds only sessions that are
                // due, and `take` bounds the work.
                let due = t
                    .expiry
                    .range(..=(now.unix(), [u8::MAX; 32]))
                    .map_err(unavailable)?
                    .take(limit)
                    .map(|entry| entry.map(|(key, _)| key.value()).map_err(unavailable))
                    .collect::<Result<Vec<_>, _>>()?;
                let mut count = 0;
                let mut swept = Vec::with_capacity(due.len());
                for key @ (_, hash) in due {
                    swept.push(hash);
                    match t.remove(&hash) {
                        Ok(removed) => count += usize::from(removed.is_some()),
                        // One unreadable record must not stall every later sweep: it goes too.
                        Err(StoreError::Corrupt { reason, .. }) => {
                            tracing::warn!(token_hash = ?TokenHash(hash), %reason, "corrupt session swept");
                            t.purge_unreadable(&hash)?;
                            count += 1;
                        }
                        Err(e) => return Err(e),
                    }
                    // The record's deadline went with it, unless the record could not be read.
                    t.expiry.remove(key).map_err(unavailable)?;
                }
                Ok((count, swept))
            })
            .await?;
        // Swept sessions are never asked about again, as a rule (their users left): without
        // this their cached copies would stay until the cache is full, holding memory that
        // grows with the login rate.
        for hash in &swept {
            self.cache.invalidate(&TokenHash(*hash));
        }
        Ok(count)
    }

    async fn realm_state(&self, realm: &str) -> Result<Option<RealmState>, StoreError> {
        let realm = realm.to_owned();
        self.blocking(move |db| {
            let txn = db.begin_read().map_err(unavailable)?;
            let realms = txn.open_table(REALMS).map_err(unavailable)?;
            let Some(bytes) = realms.get(realm.as_str()).map_err(unavailable)? else {
                return Ok(None);
            };
            serde_json::from_slice(bytes.value())
                .map(Some)
                .map_err(|e| StoreError::Corrupt { what: "realm state", reason: e.to_string() })
        })
        .await
    }

    async fn put_realm_state(&self, realm: &str, state: &RealmState) -> Result<(), StoreError> {
        let (realm, bytes) = (realm.to_owned(), encode(state)?);
        self.blocking(move |db| {
            let txn = db.begin_write().map_err(unavailable)?;
            txn.open_table(REALMS)
                .map_err(unavailable)?
                .insert(realm.as_str(), bytes.as_slice())
                .map_err(unavailable)?;
            txn.commit().map_err(unavailable)
        })
        .await
    }

    async fn entry(&self, kind: EntryKind, key: &str, now: Timestamp) -> Result<Option<Entry>, StoreError> {
        // One point read, on the hot path of client-side sessions: inline, like the token lookup.
        let txn = self.db.begin_read().map_err(unavailable)?;
        let entries = txn.open_table(ENTRIES).map_err(unavailable)?;
        let Some(found) = entries.get((kind.tag(), key)).map_err(unavailable)? else { return Ok(None) };
        let (expiry, value) = found.value();
        let expires_at = read_expiry(expiry);
        Ok(alive(expires_at, now).then(|| Entry { key: key.to_owned(), value: value.to_vec(), expires_at }))
    }

    async fn put_entry(
        &self,
        kind: EntryKind,
        key: &str,
        value: &[u8],
        expires_at: Option<Timestamp>,
        _now: Timestamp,
    ) -> Result<(), StoreError> {
        let (key, value) = (key.to_owned(), value.to_vec());
        self.blocking(move |db| {
            let txn = db.begin_write().map_err(unavailable)?;
            write_entry(&txn, kind, &key, Some((&value, expires_at)))?;
            txn.commit().map_err(unavailable)
        })
        .await
    }

    async fn swap_entry(
        &self,
        kind: EntryKind,
        key: &str,
        expected: Option<&[u8]>,
        new: Option<(&[u8], Option<Timestamp>)>,
        now: Timestamp,
    ) -> Result<bool, StoreError> {
        let (key, expected) = (key.to_owned(), expected.map(<[u8]>::to_vec));
        let new = new.map(|(value, at)| (value.to_vec(), at));
        self.blocking(move |db| {
            // redb has one writer at a time, so the read and the write below are one atomic step.
            let txn = db.begin_write().map_err(unavailable)?;
            let current = {
                let entries = txn.open_table(ENTRIES).map_err(unavailable)?;
                let found = entries.get((kind.tag(), key.as_str())).map_err(unavailable)?;
                found.and_then(|f| {
                    let (expiry, value) = f.value();
                    alive(read_expiry(expiry), now).then(|| value.to_vec())
                })
            };
            if current != expected {
                return Ok(false);
            }
            write_entry(&txn, kind, &key, new.as_ref().map(|(v, at)| (v.as_slice(), *at)))?;
            txn.commit().map_err(unavailable)?;
            Ok(true)
        })
        .await
    }

    async fn delete_entry(&self, kind: EntryKind, key: &str) -> Result<bool, StoreError> {
        let key = key.to_owned();
        self.blocking(move |db| {
            let txn = db.begin_write().map_err(unavailable)?;
            let existed = write_entry(&txn, kind, &key, None)?;
            txn.commit().map_err(unavailable)?;
            Ok(existed)
        })
        .await
    }

    async fn list_entries(&self, kind: EntryKind, now: Timestamp) -> Result<Vec<Entry>, StoreError> {
        self.blocking(move |db| {
            let txn = db.begin_read().map_err(unavailable)?;
            let entries = txn.open_table(ENTRIES).map_err(unavailable)?;
            let mut out = Vec::new();
            for item in entries.range((kind.tag(), "")..).map_err(unavailable)? {
                let (k, v) = item.map_err(unavailable)?;
                let (tag, key) = k.value();
                if tag != kind.tag() {
                    break;
                }
                let (expiry, value) = v.value();
                let expires_at = read_expiry(expiry);
                if alive(expires_at, now) {
                    out.push(Entry { key: key.to_owned(), value: value.to_vec(), expires_at });
                }
            }
            Ok(out)
        })
        .await
    }

    async fn sweep_entries(&self, now: Timestamp, limit: usize) -> Result<usize, StoreError> {
        self.blocking(move |db| {
            let txn = db.begin_write().map_err(unavailable)?;
            let due = {
                let expiry = txn.open_table(ENTRY_EXPIRY).map_err(unavailable)?;
                expiry
                    .range(..(now.unix().saturating_add(1), "", ""))
                    .map_err(unavailable)?
                    .take(limit)
                    .map(|item| {
                        item.map(|(k, _)| {
                            let (_, tag, key) = k.value();
                            (tag.to_owned(), key.to_owned())
                        })
                        .map_err(unavailable)
                    })
                    .collect::<Result<Vec<_>, _>>()?
            };
            let mut entries = txn.open_table(ENTRIES).map_err(unavailable)?;
            let mut expiry = txn.open_table(ENTRY_EXPIRY).map_err(unavailable)?;
            for (tag, key) in &due {
                let stored = entries.remove((tag.as_str(), key.as_str())).map_err(unavailable)?.map(|v| v.value().0);
                if let Some(at) = stored {
                    expiry.remove((at, tag.as_str(), key.as_str())).map_err(unavailable)?;
                }
            }
            drop((entries, expiry));
            txn.commit().map_err(unavailable)?;
            Ok(due.len())
        })
        .await
    }

    async fn ping(&self) -> Result<(), StoreError> {
        self.blocking(|db| {
            let txn = db.begin_read().map_err(unavailable)?;
            txn.open_table(SESSIONS).map_err(unavailable)?;
            Ok(())
        })
        .await
    }

    async fn session_count(&self, realm: &str) -> Result<Option<u64>, StoreError> {
        // One point read, like the token lookup: cheaper inline than a hop to the blocking pool.
        let txn = self.db.begin_read().map_err(unavailable)?;
        let counts = txn.open_table(COUNTS).map_err(unavailable)?;
        let count = counts.get(realm).map_err(unavailable)?.map_or(0, |c| c.value());
        Ok(Some(count))
    }

    fn cache_stats(&self) -> Option<CacheStats> {
        Some(CacheStats {
            hits: self.cache_counters.hits.load(Ordering::Relaxed),
            misses: self.cache_counters.misses.load(Ordering::Relaxed),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sessiond_core::token::SessionToken;
    use std::time::Duration;

    fn record(realm: &str, user: &str) -> SessionRecord {
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
            expires_at: now + Duration::from_secs(300),
            remember_me: false,
            ip: None,
            user_agent: None,
            attributes: BTreeMap::new(),
        }
    }

    async fn counts(store: &EmbeddedStore) -> (Option<u64>, Option<u64>) {
        (store.session_count("main").await.unwrap(), store.session_count("other").await.unwrap())
    }

    /// A bulk import leaves what one create per session leaves: findable by token, id and user,
    /// counted, swept when due; and a batch with one taken key writes nothing.
    #[tokio::test]
    async fn imported_sessions_are_indexed_counted_and_all_or_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let store = EmbeddedStore::open(&dir.path().join("sessiond.redb")).unwrap();
        let batch: Vec<SessionRecord> = [("main", "alice"), ("main", "alice"), ("main", "bob"), ("other", "carol")]
            .map(|(r, u)| record(r, u))
            .into();
        assert_eq!(store.import_sessions(batch.clone()).await.unwrap(), 4);
        assert_eq!(counts(&store).await, (Some(3), Some(1)));
        for imported in &batch {
            let by_token = store.session_by_token(&imported.token_hash).await.unwrap();
            assert_eq!(by_token.as_ref().map(|r| &r.id), Some(&imported.id));
            assert!(store.session_by_id(&imported.id).await.unwrap().is_some());
        }
        let filter = SessionFilter { realm: Some("main".to_owned()), user: Some("alice".to_owned()) };
        assert_eq!(store.list_sessions(&filter).await.unwrap().len(), 2);

        let fresh = record("main", "dave");
        let clash = vec![fresh.clone(), batch[2].clone()];
        assert!(matches!(store.import_sessions(clash).await, Err(StoreError::Conflict)));
        assert!(store.session_by_token(&fresh.token_hash).await.unwrap().is_none(), "the batch was rolled back");
        let twice = vec![fresh.clone(), fresh.clone()];
        assert!(matches!(store.import_sessions(twice).await, Err(StoreError::Conflict)));
        assert_eq!(counts(&store).await, (Some(3), Some(1)));

        let after_deadline = batch[0].expires_at + Duration::from_secs(1);
        assert_eq!(store.sweep_expired(after_deadline, 100).await.unwrap(), 4);
        assert_eq!(counts(&store).await, (Some(0), Some(0)));
    }

    /// Found by a soak test: sessions abandoned by their users stayed in the session cache after
    /// the sweep removed them, so memory grew with every login until the cache was full.
    #[tokio::test]
    async fn sweeping_frees_the_cached_copies_of_swept_sessions() {
        let dir = tempfile::tempdir().unwrap();
        let store = EmbeddedStore::open(&dir.path().join("sessiond.redb")).unwrap();
        let (kept, gone) = (record("main", "alice"), record("main", "bob"));
        let mut gone = gone;
        gone.expires_at = kept.expires_at - Duration::from_secs(60);
        for session in [&kept, &gone] {
            store.create_session(session).await.unwrap();
            assert!(store.session_by_token_shared(&session.token_hash).await.unwrap().is_some());
        }
        assert_eq!(store.cache.len(), 2);
        assert_eq!(store.sweep_expired(gone.expires_at, 100).await.unwrap(), 1);
        assert_eq!(store.cache.len(), 1, "only the live session stays cached");
        assert!(store.session_by_token_shared(&gone.token_hash).await.unwrap().is_none());
    }

    /// Files written before sessions were counted have no counts table: the first open counts
    /// the sessions already there, and later writes keep counting from that.
    #[tokio::test]
    async fn a_file_without_counts_is_counted_on_open() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sessiond.redb");
        {
            let store = EmbeddedStore::open(&path).unwrap();
            for (realm, user) in [("main", "alice"), ("main", "alice"), ("main", "bob"), ("other", "carol")] {
                store.create_session(&record(realm, user)).await.unwrap();
            }
        }
        {
            let db = Database::create(&path).unwrap();
            let txn = db.begin_write().unwrap();
            assert!(txn.delete_table(COUNTS).unwrap());
            txn.commit().unwrap();
        }
        let store = EmbeddedStore::open(&path).unwrap();
        assert_eq!(counts(&store).await, (Some(3), Some(1)));
        store.create_session(&record("other", "dave")).await.unwrap();
        assert_eq!(counts(&store).await, (Some(3), Some(2)));
        drop(store);

        // Reopening a counted file keeps the counts it has.
        let store = EmbeddedStore::open(&path).unwrap();
        assert_eq!(counts(&store).await, (Some(3), Some(2)));
    }

    /// A record that cannot be decoded is swept with its index entries; the realm it was counted
    /// in, known only from the per-user index, counts it no more.
    #[tokio::test]
    async fn sweeping_an_unreadable_record_uncounts_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sessiond.redb");
        let broken = record("main", "alice");
        {
            let store = EmbeddedStore::open(&path).unwrap();
            store.create_session(&broken).await.unwrap();
            store.create_session(&record("main", "bob")).await.unwrap();
        }
        {
            let db = Database::create(&path).unwrap();
            let txn = db.begin_write().unwrap();
            txn.open_table(SESSIONS).unwrap().insert(broken.token_hash.as_bytes(), b"not json".as_slice()).unwrap();
            txn.commit().unwrap();
        }
        let store = EmbeddedStore::open(&path).unwrap();
        assert_eq!(store.sweep_expired(broken.expires_at, 10).await.unwrap(), 2);
        assert_eq!(counts(&store).await, (Some(0), Some(0)));
    }

    #[tokio::test]
    async fn cache_stats_count_hits_and_misses_of_token_lookups() {
        let dir = tempfile::tempdir().unwrap();
        let store = EmbeddedStore::open(&dir.path().join("sessiond.redb")).unwrap();
        assert_eq!(store.cache_stats(), Some(CacheStats { hits: 0, misses: 0 }));
        let session = record("main", "alice");
        store.create_session(&session).await.unwrap();

        assert!(store.session_by_token_shared(&session.token_hash).await.unwrap().is_some());
        assert!(store.session_by_token_shared(&session.token_hash).await.unwrap().is_some());
        assert!(store.session_by_token_shared(&session.token_hash).await.unwrap().is_some());
        assert!(store.session_by_token_shared(&SessionToken::generate().hash()).await.unwrap().is_none());
        assert_eq!(store.cache_stats(), Some(CacheStats { hits: 2, misses: 2 }));

        // A touch invalidates the entry: the next lookup misses.
        let later = session.expires_at + Duration::from_secs(60);
        assert!(store.touch_session(&session.token_hash, session.created_at, later).await.unwrap());
        assert!(store.session_by_token_shared(&session.token_hash).await.unwrap().is_some());
        assert_eq!(store.cache_stats(), Some(CacheStats { hits: 2, misses: 3 }));
        // Clones share the counters.
        assert_eq!(store.clone().cache_stats(), store.cache_stats());
    }
}
