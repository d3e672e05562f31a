//! Failing closed: while Redis is down or frozen every call is `Unavailable` (the server's 503),
//! answered within the timeout, and the same store works again once Redis is back.

use crate::support::redis::{self as rd, Server};
use sessiond_store::conformance::{T0, at, sample_session};
use sessiond_store::{RedisSettings, RedisStore, SessionFilter, Store, StoreError};
use std::time::{Duration, Instant};

const TIMEOUT: Duration = Duration::from_millis(400);

fn settings(server: &Server) -> RedisSettings {
    let mut settings = RedisSettings::standalone(server.url());
    settings.key_prefix = rd::unique_prefix();
    settings.timeout = TIMEOUT;
    settings
}

fn assert_unavailable<T: std::fmt::Debug>(result: Result<T, StoreError>, what: &str) {
    match result {
        Err(StoreError::Unavailable { backend: "redis", .. }) => {}
        other => panic!("{what}: expected redis unavailable, got {other:?}"),
    }
}

/// Every kind of call fails as unavailable, each within the timeout (plus scheduling slack).
async fn every_call_is_unavailable(store: &RedisStore, what: &str) {
    let (_, record) = sample_session("main", "alice", T0);
    let slack = TIMEOUT + Duration::from_millis(600);
    macro_rules! check {
        ($call:expr, $name:literal) => {{
            let started = Instant::now();
            assert_unavailable($call.await, &format!("{what}: {}", $name));
            assert!(started.elapsed() < slack, "{what}: {} took {:?}", $name, started.elapsed());
        }};
    }
    check!(store.session_by_token(&record.token_hash), "session_by_token");
    check!(store.session_by_id(&record.id), "session_by_id");
    check!(store.touch_session(&record.token_hash, at(1), at(301)), "touch_session");
    check!(store.create_session(&record), "create_session");
    check!(store.delete_session(&record.token_hash), "delete_session");
    check!(store.list_sessions(&SessionFilter::default()), "list_sessions");
    check!(store.delete_user_sessions("main", "alice", None), "delete_user_sessions");
    check!(store.sweep_expired(at(10_000), 10), "sweep_expired");
    check!(store.realm_state("main"), "realm_state");
    check!(store.ping(), "ping");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_redis_is_unavailable_and_the_same_store_recovers_on_restart() {
    if !rd::redis_installed() {
        return;
    }
    let mut server = rd::own_server();
    let store = RedisStore::connect(settings(&server), rd::keys()).await.unwrap();
    let (_, before) = sample_session("main", "alice", T0);
    store.create_session(&before).await.unwrap();

    server.kill();
    every_call_is_unavailable(&store, "killed").await;

    server.restart();
    // The append-only file brought the session back; the store reconnects by itself.
    assert_eq!(store.session_by_token(&before.token_hash).await.unwrap(), Some(before.clone()));
    let (_, after) = sample_session("main", "alice", at(1));
    store.create_session(&after).await.unwrap();
    let listed = store.list_sessions(&SessionFilter::default()).await.unwrap();
    assert_eq!(listed, vec![before, after]);
    store.ping().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn frozen_redis_times_out_and_the_store_recovers_when_it_thaws() {
    if !rd::redis_installed() {
        return;
    }
    let server = rd::own_server();
    let store = RedisStore::connect(settings(&server), rd::keys()).await.unwrap();
    let (_, record) = sample_session("main", "alice", T0);
    store.create_session(&record).await.unwrap();

    server.freeze();
    let started = Instant::now();
    assert_unavailable(store.session_by_token(&record.token_hash).await, "frozen");
    let waited = started.elapsed();
    assert!(waited >= TIMEOUT && waited < TIMEOUT + Duration::from_millis(600), "answered after {waited:?}");
    every_call_is_unavailable(&store, "frozen").await;

    server.thaw();
    assert_eq!(store.session_by_token(&record.token_hash).await.unwrap(), Some(record));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_made_while_redis_is_down_connects_when_it_comes_up() {
    if !rd::redis_installed() {
        return;
    }
    let mut server = rd::own_server();
    server.kill();
    let store = RedisStore::connect(settings(&server), rd::keys()).await.unwrap();
    every_call_is_unavailable(&store, "never reached").await;

    server.restart();
    store.ping().await.unwrap();
    let (_, record) = sample_session("main", "alice", T0);
    store.create_session(&record).await.unwrap();
    assert_eq!(store.session_by_token(&record.token_hash).await.unwrap(), Some(record));
}

/// Sentinel failover: the master dies, the sentinel promotes the replica, and the same store
/// follows it without being made again; what was replicated before is still there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sentinel_failover_is_followed_by_the_same_store() {
    if !rd::redis_installed() {
        return;
    }
    let mut set = rd::SentinelSet::start().await;
    let mut settings = set.settings();
    settings.timeout = TIMEOUT;
    let store = RedisStore::connect(settings, rd::keys()).await.unwrap();
    let (_, before) = sample_session("main", "alice", T0);
    store.create_session(&before).await.unwrap();
    // Acknowledged by the replica before the master goes.
    let mut master = crate::support::redis::Probe::sentinel(&set).await;
    let acked: i64 = master.query(::redis::cmd("WAIT").arg(1).arg(5_000)).await;
    assert_eq!(acked, 1);

    let old_port = set.master.port;
    set.master.kill();
    let started = Instant::now();
    let found = loop {
        match store.session_by_token(&before.token_hash).await {
            Ok(found) => break found,
            Err(StoreError::Unavailable { .. }) if started.elapsed() < Duration::from_secs(30) => {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => panic!("no failover within 30 s: {e:?}"),
        }
    };
    assert_eq!(found, Some(before.clone()));
    assert_eq!(set.master_port_now(), set.replica.port);
    assert_ne!(set.master_port_now(), old_port);

    let (_, after) = sample_session("main", "alice", at(1));
    store.create_session(&after).await.unwrap();
    assert_eq!(store.list_sessions(&SessionFilter::default()).await.unwrap(), vec![before, after]);
}
