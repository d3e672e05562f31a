//! Sessions in Redis: one server, a Sentinel-managed master, or a Cluster, shared by several
//! sessiond instances.
//!
//! # What Redis sees
//! Nothing readable. Every value (session records, realm state) is sealed with
//! XChaCha20-Poly1305 under a key derived from the server secret ([`RedisKeys`]), bound to the
//! name of the place it is stored at. Key names are HMAC-SHA256 tags under an *index key*, so no
//! name contains a token, a token hash, a user or realm name, an email or a session id. The index
//! key is random, made by the first instance that starts, and stored sealed at
//! `<prefix>index-key`; rotating the secret re-seals it and changes no key name. A value that
//! does not open (altered, truncated, sealed under an unknown key, written by another
//! application, or copied from another key) is treated as absent and logged, never trusted.
//!
//! # Layout
//! Sessions are spread over 256 *buckets* chosen from the user's name, and every key of a
//! bucket carries the hash tag `{bb}`, so one user's sessions and the bucket's indexes sit on one
//! cluster slot and change together in one Lua script:
//!
//! | key                          | type   | holds                                             |
//! |------------------------------|--------|---------------------------------------------------|
//! | `s:{bb}:<sid>`               | hash   | `r` sealed record, `t` sealed (last seen, expiry), index tags |
//! | `u:{bb}:<realm+user tag>`    | set    | sids of one user in one realm                     |
//! | `n:{bb}:<user tag>`          | set    | sids of one user in every realm                   |
//! | `m:{bb}:<realm tag>`         | set    | sids of one realm within the bucket               |
//! | `x:{bb}`                     | zset   | sids by `expires_at`: the sweep order and the full list |
//! | `t:<sid>`                    | string | token pointer: the session's bucket               |
//! | `i:<id tag>`                 | string | id pointer: bucket and sid                        |
//! | `r:<realm tag>`              | string | sealed realm state                                |
//!
//! `sid` is the tag of the token hash, so a lookup by token needs no user name: the token
//! pointer gives the bucket. On one server (standalone or Sentinel) a script follows the pointer
//! itself, so a lookup, a touch and a delete are one round trip each and fully atomic. In a
//! cluster the pointer lives on another slot: the store reads it first (two round trips), and
//! the pointers are written before and removed after the bucket's script; a pointer left over
//! by a failure only leads to a session that is not there.
//!
//! Touches rewrite only the small `t` field, in a script that first checks that the session
//! still exists, so a touch racing a delete never brings the session back. Per-user work
//! (listing, "sign out everywhere") is one script on one bucket; realm-wide work, the admin list
//! of all sessions and the sweep run one script per bucket.
//!
//! # Expiry
//! The server decides when a session is over; Redis TTLs only collect garbage. Each write sets
//! the session key's TTL to its remaining idle time (`expires_at - last_seen_at`, applied
//! relative to Redis's own clock, so clock skew between instances and Redis does not matter)
//! plus ten minutes, and the sweep deletes sessions exactly at `expires_at` from the bucket's
//! expiry index. Index keys live at least as long as their longest-lived member; pointers as
//! long as the session can.
//!
//! # Several instances: the local cache and its consistency
//! Each store (each sessiond instance) keeps the sessions it verified in memory for at most
//! [`RedisSettings::cache_ttl`] (default 5 s; `None` turns the cache off) and answers
//! [`Store::session_by_token_shared`], the verify path, from there. Every other method reads
//! Redis. What keeps the copies honest:
//!
//! - **Broadcast.** The script that ends or changes a session (delete, revoke, realm-wide
//!   delete, sweep, touch) also publishes on the channel `<prefix>invalidate`, in the same atomic
//!   step as the write: the sids of the sessions (the HMAC tags that already name their keys,
//!   never a token, token hash, user or email), or `clear` for a realm-wide delete. Every
//!   instance subscribes on a connection of its own and drops the copies named, so a session
//!   ended anywhere is refused everywhere as soon as the message arrives: a few milliseconds,
//!   well within 100 ms. The writing instance drops its own copies
//!   when the write returns. A lookup that raced the write cannot put back what it read: an
//!   invalidation reaching the cache while a lookup reads Redis keeps that lookup's answer out.
//!   In a cluster the message is a plain `PUBLISH`, which the nodes forward to each other, and
//!   each instance listens on one of the configured nodes (list several, so that one being down
//!   does not leave the cache off).
//! - **Bypass while deaf.** The cache is used only while the subscription is up. Until the
//!   first subscription, and from the moment it is lost (a closed connection is noticed at once;
//!   one that dies silently fails a heartbeat sent every second), every lookup goes to Redis and
//!   nothing is served from memory. The instance subscribes again with a growing delay
//!   (50 ms up to 2 s), empties its cache, and only then serves from it again: copies made before
//!   the gap may have missed messages. A warning is logged when the subscription is lost and an
//!   info line when it is back.
//! - **TTL bound.** Should a message still be missed (a window of at most one heartbeat when the
//!   link dies silently), a copy is served for at most the TTL after it was read. Deadlines are
//!   always checked by the caller on the record, so a cached session never outlives its
//!   expiry or idle deadline.
//!
//! Messages on the channel that are not ours (malformed, or from another client) are ignored
//! and logged at debug level; anyone who can publish there can only make instances drop copies,
//! never serve one. The subscription needs Redis 6 or later (RESP3), and an ACL user allowed the
//! channel (`&<prefix>invalidate`); without either, writes still succeed and the cache stays off.
//!
//! # Failures
//! Every command has a deadline ([`RedisSettings::timeout`]); a command that fails or misses it
//! is [`StoreError::Unavailable`], so the server answers 503 and never lets a request pass.
//! Connections are opened on first use and opened again after a failure; with Sentinel the
//! current master is asked for again, so a failover is followed without a restart.
//!
//! Redis must keep keys without a TTL (`maxmemory-policy` `noeviction` or a `volatile-*` one):
//! losing `index-key` makes the sessions unreachable for instances started afterwards.

mod broadcast;
mod entries;
mod link;
mod names;
mod scripts;
mod seal;
mod settings;

pub use seal::{RedisKey, RedisKeys};
pub use settings::{DEFAULT_KEY_PREFIX, DEFAULT_TIMEOUT, RedisMode, RedisSettings};

use crate::memory::sort_oldest_first;
use crate::{CacheStats, Entry, EntryKind, RealmState, SessionFilter, Store, StoreError};
use broadcast::LocalCache;
use chacha20poly1305::aead::OsRng;
use chacha20poly1305::aead::rand_core::RngCore;
use link::{Conn, Link, Subscriber, unavailable};
use names::{IndexKey, Names, Sid, buckets, index_key_name, is_bucket, is_tag};
use redis::{FromRedisValue, Script};
use scripts::Scripts;
use sessiond_core::session::SessionRecord;
use sessiond_core::time::Timestamp;
use sessiond_core::token::{SessionId, TokenHash};
use std::fmt;
use std::future::Future;
use std::sync::Arc;
use tokio::sync::OnceCell;
use tokio::task::{AbortHandle, JoinSet};
use tracing::{info, warn};

/// How long Redis keeps a session past its idle deadline before collecting it, so the sweep
/// (which audits each expiry) sees it first even after a pause.
const GRACE_MS: i64 = 10 * 60 * 1000;

/// A [`Store`] on Redis. Clones share the connection.
#[derive(Clone)]
pub struct RedisStore {
    inner: Arc<Inner>,
}

struct Inner {
    link: Link,
    keys: RedisKeys,
    prefix: String,
    names: OnceCell<Names>,
    scripts: Scripts,
    /// Verified sessions in memory, when the cache is on.
    cache: Option<Arc<LocalCache>>,
    /// The task that keeps the cache subscribed to the invalidation broadcast.
    listener: Option<AbortHandle>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        // The last clone of the store is gone: nobody reads the cache any more.
        if let Some(listener) = &self.listener {
            listener.abort();
        }
    }
}

impl fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisStore")
            .field("prefix", &self.inner.prefix)
            .field("cluster", &self.inner.link.is_cluster())
            .field("cache", &self.inner.cache)
            .finish_non_exhaustive()
    }
}

/// Where a session is, for the bucket scripts.
struct Located {
    /// `KEYS[1]`: the session key, or on one server the pointer the script follows.
    key: String,
    /// The sid, or empty when an id pointer will tell it.
    sid: String,
    /// The bucket, or empty when the script reads the pointer.
    bucket: String,
}

/// What a lookup starts from.
enum By<'a> {
    Token(&'a str),
    Id(&'a str),
}

impl RedisStore {
    /// Prepares the store and, when Redis answers, loads (or creates) the index key.
    ///
    /// Redis being down is not an error here: the store connects on first use and every call
    /// answers [`StoreError::Unavailable`] until Redis is back.
    ///
    /// # Errors
    /// [`StoreError::InvalidSettings`] for settings that cannot work (the setting is named), and
    /// [`StoreError::Corrupt`] when Redis holds an index key that neither the current nor the
    /// previous secret opens: the configured secret is not the one this deployment uses.
    ///
    /// With the cache on ([`RedisSettings::cache_ttl`]) this also starts the task that receives
    /// the invalidation broadcast, and waits for its first attempt to subscribe (at most the
    /// timeout), so that the cache serves from the first request when Redis answers.
    pub async fn connect(settings: RedisSettings, keys: RedisKeys) -> Result<Self, StoreError> {
        settings.validate()?;
        let link = Link::new(&settings)?;
        let (cache, listener, subscribed) = match settings.cache() {
            Some(ttl) => {
                let subscriber = Subscriber::new(&settings)?;
                let cache = Arc::new(LocalCache::new(settings.cache_capacity, ttl));
                let channel = broadcast::channel(&settings.key_prefix);
                let (listener, subscribed) = broadcast::spawn(subscriber, Arc::clone(&cache), channel);
                (Some(cache), Some(listener), Some(subscribed))
            }
            None => (None, None, None),
        };
        let store = Self {
            inner: Arc::new(Inner {
                link,
                keys,
                prefix: settings.key_prefix,
                names: OnceCell::new(),
                scripts: Scripts::new(),
                cache,
                listener,
            }),
        };
        match store.names().await {
            Ok(_) => {}
            Err(StoreError::Unavailable { source, .. }) => {
                warn!(error = %source, "redis unreachable; the store connects when it answers");
            }
            Err(e) => return Err(e),
        }
        if let Some(subscribed) = subscribed {
            // The attempt is bounded by the timeout; an error only means the task is gone.
            let _ = subscribed.await;
        }
        Ok(store)
    }

    /// Whether session lookups are served from this instance's memory now: the cache is on and
    /// the invalidation broadcast is being received. While it is not, every lookup asks Redis.
    pub fn cache_active(&self) -> bool {
        self.live_cache().is_some()
    }

    /// The cache, when it may be served from.
    fn live_cache(&self) -> Option<&LocalCache> {
        self.inner.cache.as_deref().filter(|cache| cache.is_live())
    }

    /// Drops this instance's cached copies of `sids`, after a write that changed or ended them
    /// (the other instances learn it from the broadcast the write published).
    fn forget(&self, sids: impl IntoIterator<Item = Sid>) {
        if let Some(cache) = &self.inner.cache {
            sids.into_iter().for_each(|sid| cache.sessions.invalidate(&sid));
        }
    }

    /// Drops every cached session: after a write whose extent is not known.
    fn forget_all(&self) {
        if let Some(cache) = &self.inner.cache {
            cache.sessions.clear();
        }
    }

    /// Whether the store talks to a Redis Cluster.
    pub fn is_cluster(&self) -> bool {
        self.inner.link.is_cluster()
    }

    /// The key names, once the index key is known.
    async fn names(&self) -> Result<&Names, StoreError> {
        self.inner.names.get_or_try_init(|| self.load_index_key()).await
    }

    async fn load_index_key(&self) -> Result<Names, StoreError> {
        let prefix = &self.inner.prefix;
        let name = index_key_name(prefix);
        let mut fresh = [0u8; 32];
        OsRng.fill_bytes(&mut fresh);
        let sealed = self.seal(name.as_bytes(), &fresh, "redis index key")?;
        let reply: Vec<Vec<u8>> = self.eval(&self.inner.scripts.index_key, &name, &[&sealed]).await?;
        let index = match status(&reply) {
            "created" => {
                info!(key_id = %self.inner.keys.current.id(), "redis index key created");
                IndexKey(fresh)
            }
            "found" => {
                let stored = field(&reply, 1);
                let opened = self.inner.keys.open(name.as_bytes(), stored).map_err(|e| index_key_unreadable(&e))?;
                let Ok(bytes) = <[u8; 32]>::try_from(opened.plaintext.as_slice()) else {
                    return Err(index_key_unreadable(&"not 32 bytes"));
                };
                if opened.by_previous {
                    self.reseal_index_key(&name, stored, &bytes).await;
                }
                IndexKey(bytes)
            }
            _ => return Err(index_key_unreadable(&"not a string value")),
        };
        Ok(Names::new(prefix, index))
    }

    /// Seals the index key under the current key once the secret has been rotated, so that the
    /// previous secret can be dropped later. Best effort: the next start tries again.
    async fn reseal_index_key(&self, name: &str, stored: &[u8], index: &[u8; 32]) {
        let Ok(resealed) = self.seal(name.as_bytes(), index, "redis index key") else { return };
        match self.eval::<i64>(&self.inner.scripts.replace, name, &[stored, &resealed]).await {
            Ok(1) => info!(key_id = %self.inner.keys.current.id(), "redis index key sealed under the current secret"),
            Ok(_) => {}
            Err(e) => warn!(error = %e, "redis index key not resealed; retried at the next start"),
        }
    }

    /// Runs `script` with `key` as `KEYS[1]`, the prefix as `ARGV[1]` and `args` after it.
    async fn eval<T: FromRedisValue>(&self, script: &Script, key: &str, args: &[&[u8]]) -> Result<T, StoreError> {
        let prefix = self.inner.prefix.as_bytes();
        self.inner
            .link
            .run(|mut conn: Conn| async move {
                let mut invocation = script.key(key);
                invocation.arg(prefix);
                for arg in args {
                    invocation.arg(*arg);
                }
                invocation.invoke_async(&mut conn).await
            })
            .await
    }

    /// Runs one plain command.
    async fn query<T: FromRedisValue>(&self, cmd: redis::Cmd) -> Result<T, StoreError> {
        self.inner.link.run(|mut conn: Conn| async move { cmd.query_async(&mut conn).await }).await
    }

    fn seal(&self, place: &[u8], plaintext: &[u8], what: &'static str) -> Result<Vec<u8>, StoreError> {
        self.inner.keys.seal(place, plaintext).map_err(|e| StoreError::Corrupt { what, reason: e.to_string() })
    }

    /// Opens a value, or logs why it is treated as absent.
    fn open(&self, place: &str, value: &[u8], what: &'static str) -> Option<Vec<u8>> {
        match self.inner.keys.open(place.as_bytes(), value) {
            Ok(opened) => Some(opened.plaintext),
            Err(e) => {
                warn!(key = %place, what, reason = %e, "unreadable value in redis, treated as absent");
                None
            }
        }
    }

    /// Where the session found `by` lives. On one server the bucket script reads the pointer
    /// itself; in a cluster the pointer is read here.
    async fn locate(&self, names: &Names, by: By<'_>) -> Result<Option<Located>, StoreError> {
        let pointer = match by {
            By::Token(sid) => names.token_pointer(sid),
            By::Id(id_tag) => names.id_pointer(id_tag),
        };
        if !self.is_cluster() {
            let sid = match by {
                By::Token(sid) => sid.to_owned(),
                By::Id(_) => String::new(),
            };
            return Ok(Some(Located { key: pointer, sid, bucket: String::new() }));
        }
        let reply: Vec<Vec<u8>> = self.eval(&self.inner.scripts.get, &pointer, &[]).await?;
        let value = match status(&reply) {
            "ok" => String::from_utf8_lossy(field(&reply, 1)).into_owned(),
            "none" => return Ok(None),
            _ => return Ok(bad_pointer(&pointer)),
        };
        let (sid, bucket) = match by {
            By::Token(sid) if is_bucket(&value) => (sid.to_owned(), value),
            By::Id(_) if value.len() == 34 && is_bucket(&value[..2]) && is_tag(&value[2..]) => {
                (value[2..].to_owned(), value[..2].to_owned())
            }
            _ => return Ok(bad_pointer(&pointer)),
        };
        Ok(Some(Located { key: names.session(&bucket, &sid), sid, bucket }))
    }

    /// The session whose token hashes to `hash` (`sid` is its tag), read from Redis.
    async fn find_by_token(
        &self,
        names: &Names,
        hash: &TokenHash,
        sid: &str,
    ) -> Result<Option<SessionRecord>, StoreError> {
        let Some(located) = self.locate(names, By::Token(sid)).await? else { return Ok(None) };
        Ok(self.read(names, &located).await?.map(|(_, record)| record).filter(|record| record.token_hash == *hash))
    }

    async fn touch(
        &self,
        names: &Names,
        sid: &str,
        last_seen_at: Timestamp,
        expires_at: Timestamp,
    ) -> Result<bool, StoreError> {
        let Some(located) = self.locate(names, By::Token(sid)).await? else { return Ok(false) };
        let t = self.seal_touch(names, sid, last_seen_at, expires_at)?;
        let score = expires_at.unix().to_string();
        let ttl = ttl_ms(last_seen_at, expires_at);
        let ttl_text = ttl.to_string();
        let args: [&[u8]; 5] =
            [located.sid.as_bytes(), located.bucket.as_bytes(), &t, score.as_bytes(), ttl_text.as_bytes()];
        let reply: Vec<Vec<u8>> = self.eval(&self.inner.scripts.touch, &located.key, &args).await?;
        match status(&reply) {
            "ok" => Ok(true),
            "extend" => {
                // The session now outlives its pointers' lifetime: stretch them (never shorten).
                let id_tag = String::from_utf8_lossy(field(&reply, 1)).into_owned();
                let mut keys = vec![names.token_pointer(sid)];
                if is_tag(&id_tag) {
                    keys.push(names.id_pointer(&id_tag));
                }
                self.each(keys, move |store, key| async move {
                    let mut cmd = redis::cmd("PEXPIRE");
                    cmd.arg(&key).arg(ttl).arg("GT");
                    store.query::<i64>(cmd).await
                })
                .await?;
                Ok(true)
            }
            "bad" => Ok(bad_pointer::<bool>(&located.key).unwrap_or(false)),
            _ => Ok(false),
        }
    }

    async fn delete(&self, names: &Names, hash: &TokenHash, sid: &str) -> Result<Option<SessionRecord>, StoreError> {
        let Some(located) = self.locate(names, By::Token(sid)).await? else { return Ok(None) };
        let args: [&[u8]; 2] = [located.sid.as_bytes(), located.bucket.as_bytes()];
        let reply: Vec<Vec<u8>> = self.eval(&self.inner.scripts.delete, &located.key, &args).await?;
        match status(&reply) {
            "ok" => {
                let id_tag = String::from_utf8_lossy(field(&reply, 5)).into_owned();
                self.drop_pointers(names, vec![(sid.to_owned(), id_tag)]).await;
                let record = self.open_session(names, sid, field(&reply, 3), field(&reply, 4));
                Ok(record.filter(|record| record.token_hash == *hash))
            }
            "bad" => Ok(bad_pointer(&located.key)),
            _ => Ok(None),
        }
    }

    /// Reads the session at `located`: `(sid, record)` when it is there and opens.
    async fn read(&self, names: &Names, located: &Located) -> Result<Option<(String, SessionRecord)>, StoreError> {
        let args: [&[u8]; 2] = [located.sid.as_bytes(), located.bucket.as_bytes()];
        let reply: Vec<Vec<u8>> = self.eval(&self.inner.scripts.read, &located.key, &args).await?;
        match status(&reply) {
            "ok" => {
                let sid = String::from_utf8_lossy(field(&reply, 1)).into_owned();
                Ok(self.open_session(names, &sid, field(&reply, 3), field(&reply, 4)).map(|record| (sid, record)))
            }
            "none" => Ok(None),
            "bad" => Ok(bad_pointer(&located.key)),
            _ => {
                warn!(key = %located.key, "session key holds a value of another type, treated as absent");
                Ok(None)
            }
        }
    }

    /// Opens a session's two sealed fields into a record, or logs why it is treated as absent.
    fn open_session(&self, names: &Names, sid: &str, r: &[u8], t: &[u8]) -> Option<SessionRecord> {
        let record = self.open(&names.session_place(sid, "r"), r, "session record")?;
        let touch = self.open(&names.session_place(sid, "t"), t, "session activity")?;
        let mut record: SessionRecord = match serde_json::from_slice(&record) {
            Ok(record) => record,
            Err(e) => {
                warn!(sid, reason = %e, "session record does not decode, treated as absent");
                return None;
            }
        };
        let Some((last_seen_at, expires_at)) = decode_touch(&touch) else {
            warn!(sid, "session activity does not decode, treated as absent");
            return None;
        };
        if names.sid(&record.token_hash) != sid {
            warn!(sid, "session record belongs to another key, treated as absent");
            return None;
        }
        record.last_seen_at = last_seen_at;
        record.expires_at = expires_at;
        Some(record)
    }

    fn seal_touch(
        &self,
        names: &Names,
        sid: &str,
        last_seen_at: Timestamp,
        expires_at: Timestamp,
    ) -> Result<Vec<u8>, StoreError> {
        self.seal(names.session_place(sid, "t").as_bytes(), &encode_touch(last_seen_at, expires_at), "session activity")
    }

    /// Deletes pointers whose session is gone (cluster only: on one server the scripts do it).
    /// Best effort: a pointer left behind leads nowhere and expires with its session's lifetime.
    async fn drop_pointers(&self, names: &Names, gone: Vec<(String, String)>) {
        if !self.is_cluster() || gone.is_empty() {
            return;
        }
        let keys: Vec<String> = gone
            .iter()
            .flat_map(|(sid, id_tag)| {
                let id_pointer = is_tag(id_tag).then(|| names.id_pointer(id_tag));
                std::iter::once(names.token_pointer(sid)).chain(id_pointer)
            })
            .collect();
        let results = self
            .each(keys, |store, key| async move {
                let mut cmd = redis::cmd("DEL");
                cmd.arg(&key);
                store.query::<i64>(cmd).await
            })
            .await;
        if let Err(e) = results {
            warn!(error = %e, "session pointers not deleted; they expire on their own");
        }
    }

    /// Runs `op` for every item concurrently (each on the shared connection) and collects the
    /// results in item order; the first error wins.
    async fn each<I, T, F, Fut>(&self, items: Vec<I>, op: F) -> Result<Vec<T>, StoreError>
    where
        I: Send + 'static,
        T: Send + 'static,
        F: Fn(RedisStore, I) -> Fut,
        Fut: Future<Output = Result<T, StoreError>> + Send + 'static,
    {
        let mut tasks = JoinSet::new();
        let count = items.len();
        for (i, item) in items.into_iter().enumerate() {
            let work = op(self.clone(), item);
            tasks.spawn(async move { (i, work.await) });
        }
        let mut out: Vec<Option<T>> = (0..count).map(|_| None).collect();
        while let Some(joined) = tasks.join_next().await {
            let (i, result) = joined.map_err(unavailable)?;
            if let Some(slot) = out.get_mut(i) {
                *slot = Some(result?);
            }
        }
        Ok(out.into_iter().flatten().collect())
    }

    /// Opens the `(sid, r, t)` triples of a list reply, skipping (and logging) unreadable ones.
    fn open_listed(&self, names: &Names, reply: &[Vec<u8>], stride: usize) -> Vec<SessionRecord> {
        reply
            .chunks_exact(stride)
            .filter_map(|chunk| self.open_session(names, &String::from_utf8_lossy(&chunk[0]), &chunk[1], &chunk[2]))
            .collect()
    }

    /// `(sid, id tag)` of each `(sid, r, t, id tag)` in a delete reply.
    fn pointers_of(reply: &[Vec<u8>]) -> Vec<(String, String)> {
        reply
            .chunks_exact(4)
            .map(|c| (String::from_utf8_lossy(&c[0]).into_owned(), String::from_utf8_lossy(&c[3]).into_owned()))
            .collect()
    }

    fn pointers_here(&self) -> &'static [u8] {
        if self.is_cluster() { b"0" } else { b"1" }
    }

    /// Lists the sessions in `key` of `bucket` (a set, or the expiry index).
    async fn list_bucket(&self, key: String, bucket: String) -> Result<Vec<SessionRecord>, StoreError> {
        let names = self.names().await?;
        let reply: Vec<Vec<u8>> = self.eval(&self.inner.scripts.list, &key, &[bucket.as_bytes()]).await?;
        Ok(self.open_listed(names, &reply, 3))
    }

    /// Deletes up to `limit` sessions due at `now`, bucket by bucket.
    async fn sweep(&self, now: Timestamp, limit: usize) -> Result<usize, StoreError> {
        if limit == 0 {
            return Ok(0);
        }
        let names = self.names().await?;
        let keys: Vec<String> = buckets().map(|b| names.expiry(&b)).collect();
        let now_text = now.unix().to_string();
        let due = self
            .each(keys, |store, key| {
                let mut cmd = redis::cmd("ZCOUNT");
                cmd.arg(&key).arg("-inf").arg(&now_text);
                async move { store.query::<usize>(cmd).await }
            })
            .await?;
        let mut swept = 0;
        for (bucket, due) in buckets().zip(due) {
            if due == 0 {
                continue;
            }
            loop {
                let left = limit - swept;
                if left == 0 {
                    return Ok(swept);
                }
                let (examined, gone) = self.sweep_bucket(&bucket, now, left).await?;
                swept += gone.len();
                self.forget(gone.iter().filter_map(|(sid, _)| Sid::parse(sid.as_bytes())));
                self.drop_pointers(names, gone).await;
                // Fewer due entries than asked for: this bucket is done.
                if examined < left {
                    break;
                }
            }
        }
        Ok(swept)
    }

    /// Sweeps one bucket: `(due entries looked at, deleted sessions' pointers)`.
    async fn sweep_bucket(
        &self,
        bucket: &str,
        now: Timestamp,
        limit: usize,
    ) -> Result<(usize, Vec<(String, String)>), StoreError> {
        let names = self.names().await?;
        let now = now.unix().to_string();
        let limit = limit.to_string();
        let args: [&[u8]; 4] = [bucket.as_bytes(), now.as_bytes(), limit.as_bytes(), self.pointers_here()];
        let reply: Vec<Vec<u8>> = self.eval(&self.inner.scripts.sweep, &names.expiry(bucket), &args).await?;
        let examined = String::from_utf8_lossy(field(&reply, 0)).parse().unwrap_or(0);
        let gone = reply
            .get(1..)
            .unwrap_or_default()
            .chunks_exact(2)
            .map(|c| (String::from_utf8_lossy(&c[0]).into_owned(), String::from_utf8_lossy(&c[1]).into_owned()))
            .collect();
        Ok((examined, gone))
    }

    /// Checks that the index key in Redis is still the one in use, and puts it back if Redis
    /// lost it (a flush, a failover before replication): otherwise instances started later would
    /// make another one and no longer find these sessions.
    async fn check_index_key(&self, names: &Names) -> Result<(), StoreError> {
        let name = index_key_name(&self.inner.prefix);
        let index = names.index_key();
        let sealed = self.seal(name.as_bytes(), &index.0, "redis index key")?;
        let reply: Vec<Vec<u8>> = self.eval(&self.inner.scripts.index_key, &name, &[&sealed]).await?;
        match status(&reply) {
            "created" => {
                warn!("redis index key was missing (flushed or lost in a failover); restored");
                Ok(())
            }
            "found" => match self.inner.keys.open(name.as_bytes(), field(&reply, 1)) {
                Ok(opened) if opened.plaintext.as_slice() == index.0.as_slice() => Ok(()),
                Ok(_) => Err(StoreError::Corrupt {
                    what: "redis index key",
                    reason: "another index key replaced this instance's; restart it".to_owned(),
                }),
                Err(e) => Err(index_key_unreadable(&e)),
            },
            _ => Err(index_key_unreadable(&"not a string value")),
        }
    }
}

fn index_key_unreadable(reason: &dyn fmt::Display) -> StoreError {
    tracing::error!(reason = %reason, "redis index key does not open with the configured secrets");
    StoreError::Corrupt {
        what: "redis index key",
        reason: format!("{reason} (is the secret, or secret_previous, the one this Redis was used with?)"),
    }
}

fn bad_pointer<T>(pointer: &str) -> Option<T> {
    warn!(key = %pointer, "malformed session pointer in redis, treated as absent");
    None
}

/// The status word of a script reply.
fn status(reply: &[Vec<u8>]) -> &str {
    reply.first().and_then(|s| std::str::from_utf8(s).ok()).unwrap_or("")
}

fn field(reply: &[Vec<u8>], i: usize) -> &[u8] {
    reply.get(i).map(Vec::as_slice).unwrap_or_default()
}

fn encode_touch(last_seen_at: Timestamp, expires_at: Timestamp) -> [u8; 16] {
    let mut out = [0u8; 16];
    out[..8].copy_from_slice(&last_seen_at.unix().to_be_bytes());
    out[8..].copy_from_slice(&expires_at.unix().to_be_bytes());
    out
}

fn decode_touch(bytes: &[u8]) -> Option<(Timestamp, Timestamp)> {
    let bytes: [u8; 16] = bytes.try_into().ok()?;
    let mut last_seen = [0u8; 8];
    let mut expires = [0u8; 8];
    last_seen.copy_from_slice(&bytes[..8]);
    expires.copy_from_slice(&bytes[8..]);
    Some((Timestamp::from_unix(i64::from_be_bytes(last_seen)), Timestamp::from_unix(i64::from_be_bytes(expires))))
}

/// Milliseconds Redis should keep something that stays useful from `from` to `until` (in the
/// caller's clock), plus the grace period.
fn ttl_ms(from: Timestamp, until: Timestamp) -> i64 {
    until.unix().saturating_sub(from.unix()).max(0).saturating_mul(1000).saturating_add(GRACE_MS)
}

impl Store for RedisStore {
    async fn create_session(&self, record: &SessionRecord) -> Result<(), StoreError> {
        let names = self.names().await?;
        let sid = names.sid(&record.token_hash);
        let id_tag = names.id_tag(&record.id);
        let place = names.user_place(&record.user);
        let realm_user = names.realm_user_tag(&record.realm, &record.user);
        let realm = names.realm_tag(&record.realm);
        let json = serde_json::to_vec(record)
            .map_err(|e| StoreError::Corrupt { what: "session record", reason: e.to_string() })?;
        let r = self.seal(names.session_place(&sid, "r").as_bytes(), &json, "session record")?;
        let t = self.seal_touch(names, &sid, record.last_seen_at, record.expires_at)?;
        let pointer_deadline = record.absolute_deadline.max(record.expires_at);
        let ttl = ttl_ms(record.last_seen_at, record.expires_at).to_string();
        let pointer_ttl = ttl_ms(record.last_seen_at, pointer_deadline);
        let (token_pointer, id_pointer) = (names.token_pointer(&sid), names.id_pointer(&id_tag));

        if self.is_cluster() {
            // Pointers first, each claimed only if free: that is the uniqueness check.
            let claim = |key: &str, value: String| {
                let mut cmd = redis::cmd("SET");
                cmd.arg(key).arg(value).arg("NX").arg("PX").arg(pointer_ttl);
                self.query::<Option<String>>(cmd)
            };
            if claim(&token_pointer, place.bucket.clone()).await?.is_none() {
                return Err(StoreError::Conflict);
            }
            match claim(&id_pointer, format!("{}{sid}", place.bucket)).await {
                Ok(Some(_)) => {}
                Ok(None) => {
                    self.drop_pointers(names, vec![(sid, String::new())]).await;
                    return Err(StoreError::Conflict);
                }
                Err(e) => return Err(e),
            }
        }
        let pointer_deadline = pointer_deadline.unix().to_string();
        let expires_at = record.expires_at.unix().to_string();
        let pointer_ttl = pointer_ttl.to_string();
        let args: [&[u8]; 13] = [
            sid.as_bytes(),
            place.bucket.as_bytes(),
            &r,
            &t,
            id_tag.as_bytes(),
            realm_user.as_bytes(),
            place.user.as_bytes(),
            realm.as_bytes(),
            pointer_deadline.as_bytes(),
            expires_at.as_bytes(),
            ttl.as_bytes(),
            pointer_ttl.as_bytes(),
            self.pointers_here(),
        ];
        let outcome: String = self.eval(&self.inner.scripts.create, &names.session(&place.bucket, &sid), &args).await?;
        if outcome == "ok" {
            return Ok(());
        }
        // Only a pointer that outlived its session can get here; the claims above are ours.
        if self.is_cluster() {
            self.drop_pointers(names, vec![(sid, id_tag)]).await;
        }
        Err(StoreError::Conflict)
    }

    async fn session_by_token(&self, hash: &TokenHash) -> Result<Option<SessionRecord>, StoreError> {
        let names = self.names().await?;
        self.find_by_token(names, hash, &names.sid(hash)).await
    }

    async fn session_by_token_shared(&self, hash: &TokenHash) -> Result<Option<Arc<SessionRecord>>, StoreError> {
        let Some(cache) = self.live_cache() else {
            if let Some(bypassed) = &self.inner.cache {
                bypassed.count_miss();
            }
            return Ok(self.session_by_token(hash).await?.map(Arc::new));
        };
        let names = self.names().await?;
        let sid = names.sid_tag(hash);
        let ticket = match cache.sessions.get(&sid) {
            Ok(record) if record.token_hash == *hash => {
                cache.count_hit();
                return Ok(Some(record));
            }
            // Another token with the same 128-bit tag: never in practice, and never served.
            Ok(_) => {
                cache.count_miss();
                return Ok(self.find_by_token(names, hash, &sid.hex()).await?.map(Arc::new));
            }
            Err(ticket) => ticket,
        };
        cache.count_miss();
        let Some(record) = self.find_by_token(names, hash, &sid.hex()).await? else { return Ok(None) };
        let record = Arc::new(record);
        // Refused if an invalidation, local or broadcast, reached the entry's shard meanwhile.
        cache.sessions.insert(ticket, Arc::clone(&record));
        Ok(Some(record))
    }

    async fn session_by_id(&self, id: &SessionId) -> Result<Option<SessionRecord>, StoreError> {
        let names = self.names().await?;
        let id_tag = names.id_tag(id);
        let Some(located) = self.locate(names, By::Id(&id_tag)).await? else { return Ok(None) };
        let found = self.read(names, &located).await?;
        Ok(found.map(|(_, record)| record).filter(|record| record.id == *id))
    }

    async fn touch_session(
        &self,
        hash: &TokenHash,
        last_seen_at: Timestamp,
        expires_at: Timestamp,
    ) -> Result<bool, StoreError> {
        let names = self.names().await?;
        let sid = names.sid_tag(hash);
        // Committed, or failed in a way that may still have committed: the copy is stale.
        let touched = self.touch(names, &sid.hex(), last_seen_at, expires_at).await;
        self.forget([sid]);
        touched
    }

    async fn delete_session(&self, hash: &TokenHash) -> Result<Option<SessionRecord>, StoreError> {
        let names = self.names().await?;
        let sid = names.sid_tag(hash);
        let deleted = self.delete(names, hash, &sid.hex()).await;
        self.forget([sid]);
        deleted
    }

    async fn list_sessions(&self, filter: &SessionFilter) -> Result<Vec<SessionRecord>, StoreError> {
        let names = self.names().await?;
        let mut records = match (&filter.realm, &filter.user) {
            (Some(realm), Some(user)) => {
                let place = names.user_place(user);
                let key = names.user_set(&place.bucket, &names.realm_user_tag(realm, user));
                self.list_bucket(key, place.bucket).await?
            }
            (None, Some(user)) => {
                let place = names.user_place(user);
                let key = names.any_realm_set(&place.bucket, &place.user);
                self.list_bucket(key, place.bucket).await?
            }
            (Some(realm), None) => {
                let realm = names.realm_tag(realm);
                let keys: Vec<(String, String)> = buckets().map(|b| (names.realm_set(&b, &realm), b)).collect();
                self.each(keys, |store, (key, bucket)| async move { store.list_bucket(key, bucket).await })
                    .await?
                    .concat()
            }
            (None, None) => {
                let keys: Vec<(String, String)> = buckets().map(|b| (names.expiry(&b), b)).collect();
                self.each(keys, |store, (key, bucket)| async move { store.list_bucket(key, bucket).await })
                    .await?
                    .concat()
            }
        };
        // The indexes only narrow the search; the sealed records decide what matches.
        records.retain(|record| {
            filter.realm.as_ref().is_none_or(|realm| *realm == record.realm)
                && filter.user.as_ref().is_none_or(|user| *user == record.user)
        });
        sort_oldest_first(&mut records);
        Ok(records)
    }

    async fn delete_user_sessions(
        &self,
        realm: &str,
        user: &str,
        except: Option<&TokenHash>,
    ) -> Result<Vec<SessionRecord>, StoreError> {
        let names = self.names().await?;
        let place = names.user_place(user);
        let key = names.user_set(&place.bucket, &names.realm_user_tag(realm, user));
        let keep = except.map(|hash| names.sid(hash)).unwrap_or_default();
        let args: [&[u8]; 5] = [place.bucket.as_bytes(), keep.as_bytes(), self.pointers_here(), b"1", b"s"];
        let reply = match self.eval::<Vec<Vec<u8>>>(&self.inner.scripts.delete_set, &key, &args).await {
            Ok(reply) => reply,
            Err(e) => {
                // It may have committed, and which sessions it ended is not known.
                self.forget_all();
                return Err(e);
            }
        };
        let gone = Self::pointers_of(&reply);
        self.forget(gone.iter().filter_map(|(sid, _)| Sid::parse(sid.as_bytes())));
        self.drop_pointers(names, gone).await;
        let mut deleted = self.open_listed(names, &reply, 4);
        sort_oldest_first(&mut deleted);
        Ok(deleted)
    }

    async fn delete_realm_sessions(&self, realm: &str) -> Result<usize, StoreError> {
        let names = self.names().await?;
        let realm = names.realm_tag(realm);
        let keys: Vec<(String, String)> = buckets().map(|b| (names.realm_set(&b, &realm), b)).collect();
        let replies = self
            .each(keys, |store, (key, bucket)| async move {
                let args: [&[u8]; 5] = [bucket.as_bytes(), b"", store.pointers_here(), b"0", b"c"];
                store.eval::<Vec<Vec<u8>>>(&store.inner.scripts.delete_set, &key, &args).await
            })
            .await;
        // A realm's sessions are not known by sid here; whatever committed, nothing stays.
        self.forget_all();
        let replies = replies?;
        let gone: Vec<(String, String)> = replies.iter().flat_map(|reply| Self::pointers_of(reply)).collect();
        let count = gone.len();
        self.drop_pointers(names, gone).await;
        Ok(count)
    }

    async fn sweep_expired(&self, now: Timestamp, limit: usize) -> Result<usize, StoreError> {
        let swept = self.sweep(now, limit).await;
        if swept.is_err() {
            // A bucket's script may have committed without its reply arriving.
            self.forget_all();
        }
        swept
    }

    async fn realm_state(&self, realm: &str) -> Result<Option<RealmState>, StoreError> {
        let names = self.names().await?;
        let key = names.realm_state(realm);
        let reply: Vec<Vec<u8>> = self.eval(&self.inner.scripts.get, &key, &[]).await?;
        match status(&reply) {
            "ok" => {
                let Some(plain) = self.open(&key, field(&reply, 1), "realm state") else { return Ok(None) };
                match serde_json::from_slice(&plain) {
                    Ok(state) => Ok(Some(state)),
                    Err(e) => {
                        warn!(key = %key, reason = %e, "realm state does not decode, treated as absent");
                        Ok(None)
                    }
                }
            }
            "none" => Ok(None),
            _ => {
                warn!(key = %key, "realm state key holds a value of another type, treated as absent");
                Ok(None)
            }
        }
    }

    async fn put_realm_state(&self, realm: &str, state: &RealmState) -> Result<(), StoreError> {
        let names = self.names().await?;
        let key = names.realm_state(realm);
        let json = serde_json::to_vec(state)
            .map_err(|e| StoreError::Corrupt { what: "realm state", reason: e.to_string() })?;
        let sealed = self.seal(key.as_bytes(), &json, "realm state")?;
        let mut cmd = redis::cmd("SET");
        cmd.arg(&key).arg(sealed);
        self.query::<()>(cmd).await
    }

    async fn entry(&self, kind: EntryKind, key: &str, now: Timestamp) -> Result<Option<Entry>, StoreError> {
        self.get_entry(kind, key, now).await
    }

    async fn put_entry(
        &self,
        kind: EntryKind,
        key: &str,
        value: &[u8],
        expires_at: Option<Timestamp>,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        self.write_entry(kind, key, value, expires_at, now).await
    }

    async fn swap_entry(
        &self,
        kind: EntryKind,
        key: &str,
        expected: Option<&[u8]>,
        new: Option<(&[u8], Option<Timestamp>)>,
        now: Timestamp,
    ) -> Result<bool, StoreError> {
        self.compare_and_swap_entry(kind, key, expected, new, now).await
    }

    async fn delete_entry(&self, kind: EntryKind, key: &str) -> Result<bool, StoreError> {
        self.remove_entry(kind, key).await
    }

    async fn list_entries(&self, kind: EntryKind, now: Timestamp) -> Result<Vec<Entry>, StoreError> {
        self.all_entries(kind, now).await
    }

    async fn sweep_entries(&self, _now: Timestamp, _limit: usize) -> Result<usize, StoreError> {
        // Redis expires entries by itself.
        Ok(0)
    }

    /// The sizes of the realm's member set in every bucket, which the bucket scripts change in
    /// the same atomic step as the sessions: 256 constant-time `SCARD`s sent at once, never a
    /// walk over sessions.
    async fn session_count(&self, realm: &str) -> Result<Option<u64>, StoreError> {
        let names = self.names().await?;
        let realm = names.realm_tag(realm);
        let keys: Vec<String> = buckets().map(|b| names.realm_set(&b, &realm)).collect();
        let counts = self
            .each(keys, |store, key| async move {
                let mut cmd = redis::cmd("SCARD");
                cmd.arg(key);
                store.query::<u64>(cmd).await
            })
            .await?;
        Ok(Some(counts.into_iter().sum()))
    }

    async fn ping(&self) -> Result<(), StoreError> {
        let names = self.names().await?;
        // In a cluster PING goes to every master, so one unreachable slot range fails it too.
        self.query::<()>(redis::cmd("PING")).await?;
        self.check_index_key(names).await
    }

    fn cache_stats(&self) -> Option<CacheStats> {
        self.inner.cache.as_ref().map(|cache| cache.stats())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ttl_is_the_time_left_plus_grace_and_never_negative() {
        let t = Timestamp::from_unix;
        assert_eq!(ttl_ms(t(100), t(400)), 300_000 + GRACE_MS);
        assert_eq!(ttl_ms(t(400), t(100)), GRACE_MS);
        assert_eq!(ttl_ms(t(i64::MIN), t(i64::MAX)), i64::MAX);
    }

    #[test]
    fn activity_round_trips_and_refuses_other_lengths() {
        let (a, b) = (Timestamp::from_unix(1_700_000_000), Timestamp::from_unix(-5));
        assert_eq!(decode_touch(&encode_touch(a, b)), Some((a, b)));
        assert_eq!(decode_touch(&[0; 15]), None);
        assert_eq!(decode_touch(&[0; 17]), None);
    }
}
