//! Redis TTLs: garbage collection that follows each session's deadline, never a decision.

use crate::support::redis::{self as rd, Probe};
use sessiond_store::conformance::{T0, at, sample_session};
use sessiond_store::{RealmState, RedisStore, Store};

/// How long Redis keeps a session past its idle deadline (the store's grace period).
const GRACE_MS: i64 = 10 * 60 * 1000;

/// `actual` is `expected` milliseconds, give or take the seconds the test takes.
fn about(actual: i64, expected: i64, what: &str) {
    assert!((expected - 5_000..=expected).contains(&actual), "{what}: TTL {actual} ms, expected about {expected} ms");
}

async fn ttls_follow_the_deadlines(store: RedisStore, mut probe: Probe, prefix: &str) {
    // Created at T0 (long ago by the wall clock): the TTL counts from the record's own times.
    let (token, record) = sample_session("main", "alice", T0);
    store.create_session(&record).await.unwrap();
    let session = probe.keys_of(prefix, "s").await.pop().unwrap();
    let token_pointer = probe.keys_of(prefix, "t").await.pop().unwrap();
    let id_pointer = probe.keys_of(prefix, "i").await.pop().unwrap();
    about(probe.pttl(&session).await, 300_000 + GRACE_MS, "session");
    // Pointers live as long as the session can: to its absolute deadline.
    about(probe.pttl(&token_pointer).await, 3_600_000 + GRACE_MS, "token pointer");
    about(probe.pttl(&id_pointer).await, 3_600_000 + GRACE_MS, "id pointer");
    for kind in ["u", "n", "m", "x"] {
        let key = probe.keys_of(prefix, kind).await.pop().unwrap();
        about(probe.pttl(&key).await, 300_000 + GRACE_MS, kind);
    }

    // A touch moves the session's TTL with its new deadline, later or earlier.
    assert!(store.touch_session(&token.hash(), at(100), at(1_300)).await.unwrap());
    about(probe.pttl(&session).await, 1_200_000 + GRACE_MS, "session after a touch");
    assert!(store.touch_session(&token.hash(), at(200), at(260)).await.unwrap());
    about(probe.pttl(&session).await, 60_000 + GRACE_MS, "session after a shortening touch");
    // Indexes never shrink below a member's lifetime.
    for kind in ["u", "n", "m", "x"] {
        let key = probe.keys_of(prefix, kind).await.pop().unwrap();
        about(probe.pttl(&key).await, 1_200_000 + GRACE_MS, kind);
    }
    about(probe.pttl(&token_pointer).await, 3_600_000 + GRACE_MS, "token pointer untouched");

    // A deadline past the absolute one (a remembered session) stretches the pointers too.
    assert!(store.touch_session(&token.hash(), at(300), at(300 + 7_200)).await.unwrap());
    about(probe.pttl(&session).await, 7_200_000 + GRACE_MS, "remembered session");
    about(probe.pttl(&token_pointer).await, 7_200_000 + GRACE_MS, "token pointer stretched");
    about(probe.pttl(&id_pointer).await, 7_200_000 + GRACE_MS, "id pointer stretched");

    // State that must outlive every session has no TTL.
    store.put_realm_state("main", &RealmState::default()).await.unwrap();
    let realm = probe.keys_of(prefix, "r").await.pop().unwrap();
    assert_eq!(probe.pttl(&realm).await, -1, "realm state");
    assert_eq!(probe.pttl(&format!("{prefix}index-key")).await, -1, "index key");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn standalone_ttls_follow_the_deadlines() {
    let Some(deployment) = rd::standalone().await else { return };
    let settings = deployment.settings();
    let prefix = settings.key_prefix.clone();
    let store = RedisStore::connect(settings, rd::keys()).await.unwrap();
    ttls_follow_the_deadlines(store, Probe::standalone(&deployment.server.url()).await, &prefix).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_ttls_follow_the_deadlines() {
    let Some(deployment) = rd::cluster().await else { return };
    let settings = deployment.settings();
    let prefix = settings.key_prefix.clone();
    let store = RedisStore::connect(settings, rd::keys()).await.unwrap();
    ttls_follow_the_deadlines(store, Probe::cluster(deployment).await, &prefix).await;
}
