//! Each instance's cache of verified sessions, kept coherent with the other instances by an
//! invalidation broadcast on `<prefix>invalidate`.
//!
//! The scripts that end or change sessions publish what they did (see `scripts`): the sids of
//! the sessions, separated by spaces, or `clear` for realm-wide deletes. Sids are HMAC tags that
//! already name the sessions' keys, so the channel shows no token, token hash, user or email.
//!
//! A background task per store holds a subscription on a connection of its own. The cache is
//! used only while that subscription is known to be up: the task marks it live after it
//! subscribed *and* cleared the cache (entries cached before could have missed invalidations),
//! and marks it dead as soon as the link is lost (the connection reports it at once; a link that
//! dies silently fails the heartbeat). While dead, every lookup asks Redis and nothing is served
//! from memory; the task reconnects with a growing delay.

use super::link::Subscriber;
use super::names::Sid;
use crate::CacheStats;
use crate::cache::SessionCache;
use redis::aio::MultiplexedConnection;
use redis::{PushInfo, PushKind, Value};
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;
use tokio::sync::mpsc::{UnboundedReceiver, unbounded_channel};
use tokio::sync::oneshot;
use tokio::task::AbortHandle;
use tokio::time::{Instant, MissedTickBehavior};
use tracing::{debug, info, warn};

/// How often a subscribed connection is asked whether it still answers: how long a link that
/// died without a word (a vanished host, a dropped route) can go unnoticed.
const HEARTBEAT: Duration = Duration::from_secs(1);
/// The first wait before subscribing again, doubled after each failed attempt up to the last.
const FIRST_RETRY: Duration = Duration::from_millis(50);
const LAST_RETRY: Duration = Duration::from_secs(2);
/// A subscription that lasted this long starts the next outage's retries from the first delay.
const STABLE: Duration = Duration::from_secs(10);

/// The word that invalidates every cached session.
const CLEAR: &[u8] = b"clear";

/// The channel the invalidations of the deployment under `prefix` are published on.
pub(crate) fn channel(prefix: &str) -> String {
    format!("{prefix}invalidate")
}

/// Verified sessions kept in memory, and whether they may be served.
pub(crate) struct LocalCache {
    pub(crate) sessions: SessionCache<Sid>,
    /// Set once the subscription is up and the cache was cleared after it came up; unset the
    /// moment the subscription is lost.
    live: AtomicBool,
    /// Lookups answered from memory, and lookups that read Redis (bypassed ones included).
    hits: AtomicU64,
    misses: AtomicU64,
}

impl fmt::Debug for LocalCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LocalCache").field("sessions", &self.sessions).field("live", &self.is_live()).finish()
    }
}

impl LocalCache {
    pub(crate) fn new(capacity: usize, ttl: Duration) -> Self {
        Self {
            sessions: SessionCache::new(capacity, ttl),
            live: AtomicBool::new(false),
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
        }
    }

    pub(crate) fn count_hit(&self) {
        self.hits.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn count_miss(&self) {
        self.misses.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn stats(&self) -> CacheStats {
        CacheStats { hits: self.hits.load(Ordering::Relaxed), misses: self.misses.load(Ordering::Relaxed) }
    }

    /// Whether lookups may be served from memory now.
    pub(crate) fn is_live(&self) -> bool {
        self.live.load(Ordering::Acquire)
    }

    /// Applies one message from the channel: `payload` as published by the scripts.
    fn apply(&self, payload: &[u8]) -> Result<(), Garbage> {
        match parse(payload)? {
            Invalidation::Clear => self.sessions.clear(),
            Invalidation::Sessions(sids) => sids.iter().for_each(|sid| self.sessions.invalidate(sid)),
        }
        Ok(())
    }
}

/// What one message asks for.
#[derive(Debug, PartialEq, Eq)]
enum Invalidation {
    Sessions(Vec<Sid>),
    Clear,
}

/// A message that is not one the scripts write.
#[derive(Debug, PartialEq, Eq)]
struct Garbage;

fn parse(payload: &[u8]) -> Result<Invalidation, Garbage> {
    if payload == CLEAR {
        return Ok(Invalidation::Clear);
    }
    // Parsed whole before anything is applied: a message is ours or ignored, never half-used.
    payload.split(|b| *b == b' ').map(Sid::parse).collect::<Option<Vec<_>>>().map(Invalidation::Sessions).ok_or(Garbage)
}

/// Starts the task that keeps `cache` subscribed. The receiver answers once the first attempt
/// to subscribe is over (whichever way it went); the handle stops the task.
pub(crate) fn spawn(
    subscriber: Subscriber,
    cache: Arc<LocalCache>,
    channel: String,
) -> (AbortHandle, oneshot::Receiver<()>) {
    let (first_tx, first_rx) = oneshot::channel();
    let task = tokio::spawn(keep_subscribed(subscriber, cache, channel, first_tx));
    (task.abort_handle(), first_rx)
}

async fn keep_subscribed(
    mut subscriber: Subscriber,
    cache: Arc<LocalCache>,
    channel: String,
    first: oneshot::Sender<()>,
) {
    let mut first = Some(first);
    let mut retry = FIRST_RETRY;
    // Whether an outage was reported, so that its end is reported too.
    let mut outage = false;
    loop {
        let (pushes, received) = unbounded_channel();
        match subscriber.subscribe(&channel, pushes).await {
            Ok(conn) => {
                // Entries cached before now may have missed invalidations; lookups that read
                // Redis before now may not insert what they read (the generations move).
                cache.sessions.clear();
                cache.live.store(true, Ordering::Release);
                if outage {
                    info!(channel = %channel, "invalidation broadcast received again; local session cache in use");
                } else {
                    info!(channel = %channel, "invalidation broadcast subscribed; local session cache in use");
                }
                if let Some(first) = first.take() {
                    let _ = first.send(());
                }
                let since = Instant::now();
                let lost = listen(&subscriber, conn, received, &cache, &channel).await;
                cache.live.store(false, Ordering::Release);
                warn!(
                    channel = %channel, reason = %lost,
                    "invalidation broadcast lost; local session cache bypassed until it is back"
                );
                outage = true;
                if since.elapsed() >= STABLE {
                    retry = FIRST_RETRY;
                }
            }
            Err(e) => {
                if let Some(first) = first.take() {
                    let _ = first.send(());
                }
                if outage {
                    debug!(channel = %channel, error = %e, "invalidation broadcast not subscribed yet");
                } else {
                    warn!(
                        channel = %channel, error = %e,
                        "invalidation broadcast not subscribed; local session cache bypassed until it is"
                    );
                    outage = true;
                }
            }
        }
        tokio::time::sleep(retry).await;
        retry = (retry * 2).min(LAST_RETRY);
    }
}

/// Why a subscription ended.
enum Lost {
    /// The connection reported that it closed.
    Disconnected,
    /// Redis ended the subscription itself.
    Unsubscribed,
    /// The heartbeat got no answer.
    Silent(crate::StoreError),
}

impl fmt::Display for Lost {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Disconnected => f.write_str("connection closed"),
            Self::Unsubscribed => f.write_str("unsubscribed by redis"),
            Self::Silent(e) => write!(f, "no answer to the heartbeat: {e}"),
        }
    }
}

/// Applies messages until the subscription is lost, and says how.
async fn listen(
    subscriber: &Subscriber,
    mut conn: MultiplexedConnection,
    mut received: UnboundedReceiver<PushInfo>,
    cache: &LocalCache,
    channel: &str,
) -> Lost {
    let mut heartbeat = tokio::time::interval_at(Instant::now() + HEARTBEAT, HEARTBEAT);
    heartbeat.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            biased;
            push = received.recv() => {
                // The connection holds the sender: no more pushes means it is gone.
                let Some(push) = push else { return Lost::Disconnected };
                match push.kind {
                    PushKind::Message => on_message(cache, channel, &push.data),
                    PushKind::Disconnection => return Lost::Disconnected,
                    PushKind::Unsubscribe => return Lost::Unsubscribed,
                    _ => {}
                }
            }
            _ = heartbeat.tick() => {
                if let Err(e) = subscriber.ping(&mut conn).await {
                    return Lost::Silent(e);
                }
            }
        }
    }
}

fn on_message(cache: &LocalCache, channel: &str, data: &[Value]) {
    let (Some(Value::BulkString(from)), Some(Value::BulkString(payload))) = (data.first(), data.get(1)) else {
        debug!(channel, "malformed push on the invalidation channel ignored");
        return;
    };
    if from.as_slice() != channel.as_bytes() {
        debug!(channel, from = %String::from_utf8_lossy(from), "message from another channel ignored");
        return;
    }
    if cache.apply(payload).is_err() {
        debug!(channel, bytes = payload.len(), "unrecognised invalidation message ignored");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sessiond_core::session::SessionRecord;
    use sessiond_core::time::Timestamp;
    use sessiond_core::token::{SessionId, SessionToken};

    fn sid(byte: u8) -> Sid {
        Sid([byte; 16])
    }

    #[test]
    fn messages_name_sessions_or_clear_and_anything_else_is_garbage() {
        assert_eq!(parse(b"clear"), Ok(Invalidation::Clear));
        let one = sid(0xab).hex();
        assert_eq!(parse(one.as_bytes()), Ok(Invalidation::Sessions(vec![sid(0xab)])));
        let two = format!("{} {}", sid(1).hex(), sid(2).hex());
        assert_eq!(parse(two.as_bytes()), Ok(Invalidation::Sessions(vec![sid(1), sid(2)])));
        let half = format!("{} not-a-sid", sid(1).hex());
        let trailing = format!("{} ", sid(1).hex());
        for garbage in ["", "CLEAR", "clear ", " ", &half, &trailing, &one.to_uppercase(), "\u{1F600}"] {
            assert_eq!(parse(garbage.as_bytes()), Err(Garbage), "{garbage:?}");
        }
    }

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

    fn cached(cache: &LocalCache, key: Sid) {
        let ticket = cache.sessions.get(&key).unwrap_err();
        cache.sessions.insert(ticket, record());
        assert!(cache.sessions.get(&key).is_ok());
    }

    fn message(channel: &str, payload: &[u8]) -> Vec<Value> {
        vec![Value::BulkString(channel.as_bytes().to_vec()), Value::BulkString(payload.to_vec())]
    }

    #[test]
    fn a_message_drops_what_it_names_and_garbage_or_other_channels_drop_nothing() {
        let cache = LocalCache::new(100, Duration::from_secs(60));
        let ours = channel("app:");
        for key in [sid(1), sid(2), sid(3)] {
            cached(&cache, key);
        }
        on_message(&cache, &ours, &message(&ours, sid(1).hex().as_bytes()));
        assert!(cache.sessions.get(&sid(1)).is_err());
        assert!(cache.sessions.get(&sid(2)).is_ok());

        on_message(&cache, &ours, &message(&channel("other:"), sid(2).hex().as_bytes()));
        on_message(&cache, &ours, &message(&ours, b"garbage"));
        on_message(&cache, &ours, &message(&ours, format!("{} junk", sid(2).hex()).as_bytes()));
        on_message(&cache, &ours, &[Value::Int(1)]);
        assert!(cache.sessions.get(&sid(2)).is_ok(), "ignored, and nothing half-applied");

        on_message(&cache, &ours, &message(&ours, b"clear"));
        assert!(cache.sessions.is_empty());
    }

    #[test]
    fn a_new_cache_is_not_live() {
        assert!(!LocalCache::new(10, Duration::from_secs(1)).is_live());
        assert_eq!(channel("sessiond:"), "sessiond:invalidate");
    }
}
