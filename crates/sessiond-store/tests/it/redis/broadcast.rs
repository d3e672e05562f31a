//! Several instances on one Redis, each with its local cache of verified sessions: a write on
//! one ends or refreshes the cached copy on the others within 100 ms (the invalidation
//! broadcast); while an instance does not receive the broadcast it serves nothing from memory;
//! and the broadcast shows nothing about tokens or users.
//!
//! Latencies are measured from the moment the write returned to the first lookup on the other
//! instance that sees its effect, polling every 5 ms. A test that proves a copy is served from
//! memory erases the session in Redis behind the stores' backs (no broadcast): only a cached copy
//! can still be found then.

use crate::support::redis::{self as rd, Probe, Server};
use redis::{AsyncConnectionConfig, IntoConnectionInfo, ProtocolVersion, PushInfo, PushKind, Value};
use sessiond_core::session::SessionRecord;
use sessiond_core::token::TokenHash;
use sessiond_store::conformance::{T0, at, sample_session};
use sessiond_store::{CacheStats, RedisSettings, RedisStore, Store, StoreError};
use std::future::Future;
use std::time::{Duration, Instant};
use tokio::sync::mpsc::UnboundedReceiver;

/// The promise: every instance refuses an ended session within this long.
const BOUND: Duration = Duration::from_millis(100);
const POLL: Duration = Duration::from_millis(5);

/// Two stores on the same deployment and prefix, the way two sessiond instances share one.
async fn pair(settings: RedisSettings) -> (RedisStore, RedisStore) {
    let a = RedisStore::connect(settings.clone(), rd::keys()).await.unwrap();
    let b = RedisStore::connect(settings, rd::keys()).await.unwrap();
    assert!(a.cache_active() && b.cache_active(), "both subscribed when connect returns");
    (a, b)
}

/// What `store` answers on the verify path.
async fn shared(store: &RedisStore, hash: &TokenHash) -> Option<SessionRecord> {
    store.session_by_token_shared(hash).await.unwrap().map(|record| (*record).clone())
}

/// Looks `record` up on `store` twice, so that the second answer came from its cache.
async fn cache_on(store: &RedisStore, record: &SessionRecord) {
    assert_eq!(shared(store, &record.token_hash).await.as_ref(), Some(record));
    assert_eq!(shared(store, &record.token_hash).await.as_ref(), Some(record));
}

/// Polls `check` every 5 ms (for at most 5 s) until it holds; returns how long after `since`
/// it first held.
async fn held_after<F, Fut>(since: Instant, what: &str, mut check: F) -> Duration
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    while since.elapsed() < Duration::from_secs(5) {
        if check().await {
            return since.elapsed();
        }
        tokio::time::sleep(POLL).await;
    }
    panic!("{what}: still not the case after 5 s");
}

/// Asserts that `store` refuses `hash` within the bound of `since`.
async fn gone_within_bound(store: &RedisStore, hash: &TokenHash, since: Instant, what: &str) {
    let took = held_after(since, what, || async { shared(store, hash).await.is_none() }).await;
    assert!(took < BOUND, "{what}: the other instance still served the session {took:?} after the write");
}

/// Deletes every key of the deployment under `prefix` except its index key, without a word to
/// the stores: afterwards only a cached copy can still be found.
async fn erase_behind_their_backs(probe: &mut Probe, prefix: &str) {
    let keys = probe.keys(prefix).await;
    assert!(!keys.is_empty());
    for key in keys.iter().filter(|key| !key.ends_with("index-key")) {
        probe.query::<i64>(::redis::cmd("DEL").arg(key)).await;
    }
}

/// Polls until `store`'s cache is (or is not) in use.
async fn wait_cache_active(store: &RedisStore, active: bool) {
    let what = if active { "the cache back in use" } else { "the cache bypassed" };
    held_after(Instant::now(), what, || async { store.cache_active() == active }).await;
}

async fn delete_reaches_the_other_instance(settings: RedisSettings) {
    let (a, b) = pair(settings).await;
    let (_, record) = sample_session("main", "alice", T0);
    b.create_session(&record).await.unwrap();
    cache_on(&a, &record).await;

    b.delete_session(&record.token_hash).await.unwrap();
    gone_within_bound(&a, &record.token_hash, Instant::now(), "delete").await;
    assert_eq!(shared(&b, &record.token_hash).await, None, "the writer's own cache at once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delete_on_one_instance_ends_the_cached_copy_on_the_other_within_100ms() {
    let Some(deployment) = rd::standalone().await else { return };
    delete_reaches_the_other_instance(deployment.settings()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sentinel_a_delete_reaches_the_other_instance_within_100ms() {
    let Some(set) = rd::sentinel_set().await else { return };
    delete_reaches_the_other_instance(set.settings()).await;
}

/// The message is published on the session's node and forwarded over the cluster bus to the
/// node the other instance listens on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_a_delete_reaches_the_other_instance_within_100ms() {
    let Some(cluster) = rd::cluster().await else { return };
    delete_reaches_the_other_instance(cluster.settings()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revoking_a_users_sessions_reaches_the_other_instance_within_100ms() {
    let Some(deployment) = rd::standalone().await else { return };
    let (a, b) = pair(deployment.settings()).await;
    let (_, first) = sample_session("main", "alice", T0);
    let (_, second) = sample_session("main", "alice", at(1));
    let (_, kept) = sample_session("main", "alice", at(2));
    for record in [&first, &second, &kept] {
        b.create_session(record).await.unwrap();
        cache_on(&a, record).await;
    }

    let revoked = b.delete_user_sessions("main", "alice", Some(&kept.token_hash)).await.unwrap();
    let written = Instant::now();
    assert_eq!(revoked.len(), 2);
    gone_within_bound(&a, &first.token_hash, written, "revoke all").await;
    gone_within_bound(&a, &second.token_hash, written, "revoke all").await;
    assert_eq!(shared(&a, &kept.token_hash).await, Some(kept), "the session kept is still served");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_touch_reaches_the_other_instance_within_100ms() {
    let Some(deployment) = rd::standalone().await else { return };
    let (a, b) = pair(deployment.settings()).await;
    let (_, record) = sample_session("main", "alice", T0);
    b.create_session(&record).await.unwrap();
    cache_on(&a, &record).await;

    assert!(b.touch_session(&record.token_hash, at(60), at(360)).await.unwrap());
    let written = Instant::now();
    let took = held_after(written, "touch", || async {
        shared(&a, &record.token_hash).await.is_some_and(|seen| seen.last_seen_at == at(60))
    })
    .await;
    assert!(took < BOUND, "the other instance saw the old last_seen {took:?} after the touch");
    let seen = shared(&a, &record.token_hash).await.unwrap();
    assert_eq!((seen.last_seen_at, seen.expires_at), (at(60), at(360)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ending_a_realm_reaches_the_other_instance_within_100ms() {
    let Some(deployment) = rd::standalone().await else { return };
    let (a, b) = pair(deployment.settings()).await;
    let (_, alice) = sample_session("main", "alice", T0);
    let (_, bob) = sample_session("main", "bob", T0);
    let (_, elsewhere) = sample_session("other", "carol", T0);
    for record in [&alice, &bob, &elsewhere] {
        b.create_session(record).await.unwrap();
        cache_on(&a, record).await;
    }

    assert_eq!(b.delete_realm_sessions("main").await.unwrap(), 2);
    let written = Instant::now();
    gone_within_bound(&a, &alice.token_hash, written, "realm ended").await;
    gone_within_bound(&a, &bob.token_hash, written, "realm ended").await;
    assert_eq!(shared(&a, &elsewhere.token_hash).await, Some(elsewhere), "other realms still served");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sweep_reaches_the_other_instance_within_100ms() {
    let Some(deployment) = rd::standalone().await else { return };
    let (a, b) = pair(deployment.settings()).await;
    let (_, record) = sample_session("main", "alice", T0);
    b.create_session(&record).await.unwrap();
    cache_on(&a, &record).await;

    assert_eq!(b.sweep_expired(record.expires_at, 100).await.unwrap(), 1);
    gone_within_bound(&a, &record.token_hash, Instant::now(), "sweep").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cached_copies_are_served_from_memory_for_at_most_the_ttl() {
    let Some(deployment) = rd::standalone().await else { return };
    let mut settings = deployment.settings();
    // Long enough to look twice on a busy machine, far below the default of 5 s.
    let ttl = Duration::from_secs(1);
    settings.cache_ttl = Some(ttl);
    let prefix = settings.key_prefix.clone();
    let store = RedisStore::connect(settings, rd::keys()).await.unwrap();
    assert!(store.cache_active());
    assert_eq!(store.cache_stats(), Some(CacheStats { hits: 0, misses: 0 }));
    let (_, record) = sample_session("main", "alice", T0);
    store.create_session(&record).await.unwrap();
    cache_on(&store, &record).await;
    assert_eq!(store.cache_stats(), Some(CacheStats { hits: 1, misses: 1 }));

    let mut probe = Probe::standalone(&deployment.server.url()).await;
    erase_behind_their_backs(&mut probe, &prefix).await;
    let erased = Instant::now();
    assert_eq!(store.session_by_token(&record.token_hash).await.unwrap(), None, "gone from redis");
    assert_eq!(shared(&store, &record.token_hash).await, Some(record.clone()), "served from memory");
    let took =
        held_after(erased, "the copy aged out", || async { shared(&store, &record.token_hash).await.is_none() }).await;
    assert!(took <= ttl + Duration::from_secs(1), "served {took:?} after it was erased, ttl {ttl:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_cache_every_lookup_asks_redis() {
    let Some(deployment) = rd::standalone().await else { return };
    for off in [None, Some(Duration::ZERO)] {
        let mut settings = deployment.settings();
        settings.cache_ttl = off;
        let prefix = settings.key_prefix.clone();
        let store = RedisStore::connect(settings, rd::keys()).await.unwrap();
        assert!(!store.cache_active(), "{off:?}");
        assert_eq!(store.cache_stats(), None, "{off:?}");
        let (_, record) = sample_session("main", "alice", T0);
        store.create_session(&record).await.unwrap();
        cache_on(&store, &record).await;
        erase_behind_their_backs(&mut Probe::standalone(&deployment.server.url()).await, &prefix).await;
        assert_eq!(shared(&store, &record.token_hash).await, None, "{off:?}");
    }
}

fn own_settings(server: &Server) -> RedisSettings {
    let mut settings = RedisSettings::standalone(server.url());
    settings.key_prefix = rd::unique_prefix();
    settings
}

/// The subscription is killed and kept from coming back (the ACL forbids the channel): the
/// instance serves nothing from memory, even a session it had cached; once the channel is
/// allowed again it subscribes by itself and caches again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn while_the_broadcast_is_not_received_the_cache_is_bypassed_and_afterwards_used_again() {
    if !rd::redis_installed() {
        return;
    }
    let server = rd::own_server();
    let settings = own_settings(&server);
    let prefix = settings.key_prefix.clone();
    let (a, b) = pair(settings).await;
    let mut probe = Probe::standalone(&server.url()).await;
    let (_, cached) = sample_session("main", "alice", T0);
    b.create_session(&cached).await.unwrap();
    cache_on(&a, &cached).await;

    let channel = format!("{prefix}invalidate");
    assert_eq!(numsub(&mut probe, &channel).await, 2);
    // Redis 7 already drops subscribers whose channel the ACL no longer allows; the kill makes
    // sure on any version.
    probe.query::<()>(::redis::cmd("ACL").arg("SETUSER").arg("default").arg("resetchannels")).await;
    probe.query::<i64>(::redis::cmd("CLIENT").arg("KILL").arg("TYPE").arg("pubsub")).await;
    assert_eq!(numsub(&mut probe, &channel).await, 0, "both instances' subscriptions gone");
    wait_cache_active(&a, false).await;

    // Writes still succeed though nothing can be published, and nobody needs it: the other
    // instance asks Redis.
    b.delete_session(&cached.token_hash).await.unwrap();
    assert_eq!(shared(&a, &cached.token_hash).await, None, "the cached copy is not served");
    let (_, fresh) = sample_session("main", "bob", at(1));
    b.create_session(&fresh).await.unwrap();
    cache_on(&a, &fresh).await;
    let before = a.cache_stats().unwrap();
    erase_behind_their_backs(&mut probe, &prefix).await;
    assert_eq!(shared(&a, &fresh.token_hash).await, None, "nothing was cached while bypassed");
    assert!(!a.cache_active(), "the channel is still forbidden");
    let after = a.cache_stats().unwrap();
    assert_eq!((after.hits, after.misses), (before.hits, before.misses + 1), "a bypassed lookup is a miss");

    probe.query::<()>(::redis::cmd("ACL").arg("SETUSER").arg("default").arg("allchannels")).await;
    wait_cache_active(&a, true).await;
    wait_cache_active(&b, true).await;
    let (_, later) = sample_session("main", "carol", at(2));
    b.create_session(&later).await.unwrap();
    cache_on(&a, &later).await;
    erase_behind_their_backs(&mut probe, &prefix).await;
    assert_eq!(shared(&a, &later.token_hash).await, Some(later.clone()), "served from memory again");

    let (_, last) = sample_session("main", "dave", at(3));
    b.create_session(&last).await.unwrap();
    cache_on(&a, &last).await;
    b.delete_session(&last.token_hash).await.unwrap();
    gone_within_bound(&a, &last.token_hash, Instant::now(), "delete after the link came back").await;
}

/// Only the subscriptions are killed (CLIENT KILL TYPE pubsub, from a third connection): the
/// instances notice, subscribe again by themselves, and the cache follows writes again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_subscription_comes_back_and_the_cache_follows_writes_again() {
    if !rd::redis_installed() {
        return;
    }
    let server = rd::own_server();
    let settings = own_settings(&server);
    let prefix = settings.key_prefix.clone();
    let channel = format!("{prefix}invalidate");
    let (a, b) = pair(settings).await;
    let mut probe = Probe::standalone(&server.url()).await;
    assert_eq!(numsub(&mut probe, &channel).await, 2, "one subscription per instance");
    let (_, before) = sample_session("main", "alice", T0);
    b.create_session(&before).await.unwrap();
    cache_on(&a, &before).await;

    let killed: i64 = probe.query(::redis::cmd("CLIENT").arg("KILL").arg("TYPE").arg("pubsub")).await;
    assert_eq!(killed, 2);
    // Deleted while the instances may not even know yet that they stopped listening.
    b.delete_session(&before.token_hash).await.unwrap();
    gone_within_bound(&a, &before.token_hash, Instant::now(), "delete while the link was down").await;

    let killed_at = Instant::now();
    while numsub(&mut probe, &channel).await < 2 {
        assert!(killed_at.elapsed() < Duration::from_secs(5), "the instances did not subscribe again");
        tokio::time::sleep(POLL).await;
    }
    wait_cache_active(&a, true).await;
    let (_, after) = sample_session("main", "bob", at(1));
    b.create_session(&after).await.unwrap();
    cache_on(&a, &after).await;
    b.delete_session(&after.token_hash).await.unwrap();
    gone_within_bound(&a, &after.token_hash, Instant::now(), "delete after resubscribing").await;

    let (_, cached) = sample_session("main", "carol", at(2));
    b.create_session(&cached).await.unwrap();
    cache_on(&a, &cached).await;
    erase_behind_their_backs(&mut probe, &prefix).await;
    assert_eq!(shared(&a, &cached.token_hash).await, Some(cached.clone()), "served from memory again");
}

async fn numsub(probe: &mut Probe, channel: &str) -> i64 {
    let reply: (String, i64) = probe.query(::redis::cmd("PUBSUB").arg("NUMSUB").arg(channel)).await;
    reply.1
}

async fn publish(probe: &mut Probe, channel: &str, payload: &[u8]) {
    probe.query::<i64>(::redis::cmd("PUBLISH").arg(channel).arg(payload)).await;
}

/// Redis dies and comes back (with its data): the instance never serves a copy cached before,
/// even when the session was deleted right after the restart, before it resubscribed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_redis_restart_no_stale_copy_is_served() {
    if !rd::redis_installed() {
        return;
    }
    let mut server = rd::own_server();
    let mut settings = own_settings(&server);
    settings.timeout = Duration::from_millis(500);
    let (a, b) = pair(settings).await;
    let (_, record) = sample_session("main", "alice", T0);
    b.create_session(&record).await.unwrap();
    cache_on(&a, &record).await;

    server.restart();
    let deleted = Instant::now();
    loop {
        match b.delete_session(&record.token_hash).await {
            Ok(found) => break assert_eq!(found, Some(record.clone()), "the session outlived the restart"),
            Err(StoreError::Unavailable { .. }) if deleted.elapsed() < Duration::from_secs(10) => {
                tokio::time::sleep(POLL).await;
            }
            Err(e) => panic!("redis did not come back: {e:?}"),
        }
    }
    // Until the instance has its connection back a lookup may fail; it must never pass.
    let started = Instant::now();
    loop {
        match a.session_by_token_shared(&record.token_hash).await {
            Ok(found) => break assert_eq!(found, None, "a copy cached before the restart was served"),
            Err(StoreError::Unavailable { .. }) if started.elapsed() < Duration::from_secs(10) => {
                tokio::time::sleep(POLL).await;
            }
            Err(e) => panic!("redis did not come back: {e:?}"),
        }
    }

    wait_cache_active(&a, true).await;
    let (_, later) = sample_session("main", "bob", at(1));
    b.create_session(&later).await.unwrap();
    cache_on(&a, &later).await;
    b.delete_session(&later.token_hash).await.unwrap();
    gone_within_bound(&a, &later.token_hash, Instant::now(), "delete after the restart").await;
}

/// A connection of the test's own, listening to every channel under `prefix`.
async fn listen(url: &str, prefix: &str) -> (redis::aio::MultiplexedConnection, UnboundedReceiver<PushInfo>) {
    let mut info = url.into_connection_info().unwrap();
    info.redis.protocol = ProtocolVersion::RESP3;
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let config = AsyncConnectionConfig::new().set_push_sender(tx);
    let client = redis::Client::open(info).unwrap();
    let mut conn = client.get_multiplexed_async_connection_with_config(&config).await.unwrap();
    conn.psubscribe(format!("{prefix}*")).await.unwrap();
    (conn, rx)
}

/// `(channel, payload)` of every message received until `marker` arrives.
async fn messages_until(received: &mut UnboundedReceiver<PushInfo>, marker: &[u8]) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    loop {
        let push = tokio::time::timeout(Duration::from_secs(5), received.recv()).await.unwrap().unwrap();
        if push.kind != PushKind::PMessage {
            continue;
        }
        // pmessage: pattern, channel, payload.
        let [_, Value::BulkString(channel), Value::BulkString(payload)] = push.data.as_slice() else {
            panic!("unexpected push {push:?}");
        };
        if payload == marker {
            return out;
        }
        out.push((String::from_utf8(channel.clone()).unwrap(), payload.clone()));
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The sids named by the session keys under `prefix` (`<prefix>s:{bb}:<sid>`).
async fn sids_in_redis(probe: &Probe, prefix: &str) -> Vec<String> {
    let keys = probe.keys_of(prefix, "s").await;
    keys.iter().map(|key| key.rsplit(':').next().unwrap().to_owned()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_channel_carries_no_token_hash_user_or_email() {
    let Some(deployment) = rd::standalone().await else { return };
    let settings = deployment.settings();
    let prefix = settings.key_prefix.clone();
    let store = RedisStore::connect(settings, rd::keys()).await.unwrap();
    let mut probe = Probe::standalone(&deployment.server.url()).await;
    let (_conn, mut received) = listen(&deployment.server.url(), &prefix).await;

    const USER: &str = "zelda.hyrule-7f3";
    const EMAIL: &str = "zelda@hyrule.example";
    const REALM: &str = "realm-kokiri";
    let mut sessions = Vec::new();
    for (realm, user, created) in
        [(REALM, USER, 0), (REALM, USER, 1), (REALM, USER, 2), (REALM, "link", 3), ("elsewhere", USER, 4)]
    {
        let (token, mut record) = sample_session(realm, user, at(created));
        if user == USER {
            record.email = Some(EMAIL.into());
            record.display_name = Some("Princess Zelda of Hyrule".into());
        }
        store.create_session(&record).await.unwrap();
        sessions.push((token, record));
    }
    let (sweep_token, mut swept) = sample_session(REALM, "sheik", T0);
    swept.expires_at = at(10);
    store.create_session(&swept).await.unwrap();
    sessions.push((sweep_token, swept.clone()));
    let sids = sids_in_redis(&probe, &prefix).await;
    assert_eq!(sids.len(), sessions.len());

    let hash = |i: usize| sessions[i].1.token_hash;
    assert!(store.touch_session(&hash(0), at(60), at(360)).await.unwrap());
    store.delete_session(&hash(0)).await.unwrap();
    assert_eq!(store.delete_user_sessions(REALM, USER, Some(&hash(1))).await.unwrap().len(), 1);
    assert_eq!(store.sweep_expired(at(20), 100).await.unwrap(), 1);
    assert_eq!(store.delete_realm_sessions(REALM).await.unwrap(), 2);
    let marker = b"end-of-test";
    publish(&mut probe, &format!("{prefix}invalidate"), marker).await;
    let messages = messages_until(&mut received, marker).await;

    let payloads: Vec<&[u8]> = messages.iter().map(|(_, payload)| payload.as_slice()).collect();
    assert!(messages.iter().all(|(channel, _)| *channel == format!("{prefix}invalidate")), "{messages:?}");
    // touch, delete, revoke, sweep: one sid each; the realm: `clear` from each bucket it had.
    assert!(payloads.len() >= 5, "{messages:?}");
    for named in &payloads[..4] {
        let named = std::str::from_utf8(named).unwrap();
        assert!(sids.iter().any(|sid| sid == named), "{named} is not one of the sessions' sids");
    }
    assert_eq!(payloads[0], payloads[1], "the touch and the delete name the same session");
    assert!(payloads[4..].iter().all(|payload| *payload == b"clear"), "{messages:?}");

    let mut needles: Vec<(String, Vec<u8>)> = vec![
        ("user".into(), USER.into()),
        ("email".into(), EMAIL.into()),
        ("display name".into(), b"Zelda".to_vec()),
        ("realm".into(), REALM.into()),
    ];
    for (token, record) in &sessions {
        needles.push(("token".into(), token.expose().into_bytes()));
        needles.push(("token hash".into(), record.token_hash.as_bytes().to_vec()));
        needles.push(("token hash in hex".into(), hex(record.token_hash.as_bytes()).into_bytes()));
        needles.push(("session id".into(), record.id.as_str().as_bytes().to_vec()));
    }
    for (_, payload) in &messages {
        for (what, needle) in &needles {
            assert!(!contains(payload, needle), "a message shows a {what}: {}", String::from_utf8_lossy(payload));
        }
    }
}

/// Messages that are not the stores' own (garbage, or another deployment's channel) change
/// nothing; one naming a cached session's sid, or `clear`, drops it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn foreign_and_garbage_messages_are_ignored() {
    let Some(deployment) = rd::standalone().await else { return };
    let settings = deployment.settings();
    let prefix = settings.key_prefix.clone();
    let store = RedisStore::connect(settings, rd::keys()).await.unwrap();
    let mut probe = Probe::standalone(&deployment.server.url()).await;
    let (_, one) = sample_session("main", "alice", T0);
    let (_, two) = sample_session("main", "bob", T0);
    store.create_session(&one).await.unwrap();
    let sid_one = sids_in_redis(&probe, &prefix).await.pop().unwrap();
    store.create_session(&two).await.unwrap();
    cache_on(&store, &one).await;
    cache_on(&store, &two).await;
    erase_behind_their_backs(&mut probe, &prefix).await;

    let ours = format!("{prefix}invalidate");
    let other = format!("{}invalidate", rd::unique_prefix());
    for (channel, payload) in [
        (other.as_str(), sid_one.as_bytes().to_vec()),
        (other.as_str(), b"clear".to_vec()),
        (ours.as_str(), b"".to_vec()),
        (ours.as_str(), b"CLEAR".to_vec()),
        (ours.as_str(), format!("{sid_one} not-a-sid").into_bytes()),
        (ours.as_str(), sid_one.to_uppercase().into_bytes()),
        (ours.as_str(), vec![0xff; 40]),
    ] {
        publish(&mut probe, channel, &payload).await;
    }
    // Published in order: once a later message is applied, the earlier ones were too.
    publish(&mut probe, &ours, sid_one.as_bytes()).await;
    let applied = Instant::now();
    gone_within_bound(&store, &one.token_hash, applied, "a message naming the sid").await;
    assert_eq!(shared(&store, &two.token_hash).await, Some(two.clone()), "still served from memory");
    assert!(store.cache_active(), "garbage does not break the subscription");

    publish(&mut probe, &ours, b"clear").await;
    gone_within_bound(&store, &two.token_hash, Instant::now(), "clear").await;
}
