//! The promises every [`Store`] backend keeps, written once and run against each backend.
//!
//! Each promise is a `pub async fn` that takes a fresh, empty store and panics when the store
//! breaks the promise. [`conformance_suite!`](crate::conformance_suite) turns them into one
//! `#[tokio::test]` per promise for a backend, so a failure names both the backend and the
//! promise (`embedded::revoke_all_leaves_other_users_alone`):
//!
//! ```no_run
//! mod memory {
//!     sessiond_store::conformance_suite!(|| async { sessiond_store::MemoryStore::default() });
//! }
//! mod embedded {
//!     sessiond_store::conformance_suite!(sessiond_store::conformance::temp_embedded);
//! }
//! ```
//!
//! The factory is called once per case and may return the store itself or anything that
//! implements [`Fixture`], such as an [`InTempDir`] that removes its directory when the case
//! ends. Cases never sleep: every method that depends on time takes `now`.

// Panicking is how a case reports a broken promise, so the crate-wide bans do not apply here.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::{EmbeddedStore, Entry, EntryKind, RealmState, SessionFilter, Store, StoreError};
use sessiond_core::session::{SessionRecord, amr};
use sessiond_core::time::Timestamp;
use sessiond_core::token::{SessionId, SessionToken, TokenHash};
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::Duration;
use tokio::task::JoinSet;

/// The instant the cases start at.
pub const T0: Timestamp = Timestamp::from_unix(1_700_000_000);

/// A store under test, plus whatever must outlive it.
pub trait Fixture: Send + 'static {
    /// The store the cases run against.
    type Store: Store;
    /// A handle on the store; the fixture stays alive until the case ends.
    fn store(&self) -> Self::Store;
}

impl<S: Store> Fixture for S {
    type Store = S;
    fn store(&self) -> S {
        self.clone()
    }
}

/// A store whose files live in a temporary directory, removed when this is dropped.
#[derive(Debug)]
pub struct InTempDir<S> {
    store: S,
    dir: tempfile::TempDir,
}

impl<S> InTempDir<S> {
    /// Ties `store` to `dir`.
    pub fn new(store: S, dir: tempfile::TempDir) -> Self {
        Self { store, dir }
    }

    /// The temporary directory.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}

impl<S: Store> Fixture for InTempDir<S> {
    type Store = S;
    fn store(&self) -> S {
        self.store.clone()
    }
}

/// A fresh [`EmbeddedStore`] in a new temporary directory.
pub async fn temp_embedded() -> InTempDir<EmbeddedStore> {
    let dir = tempfile::tempdir().expect("creating a temporary directory");
    let store = EmbeddedStore::open(&dir.path().join("sessiond.redb")).expect("opening the store");
    InTempDir::new(store, dir)
}

/// `T0` plus `secs` seconds (or minus, when negative).
pub fn at(secs: i64) -> Timestamp {
    Timestamp::from_unix(T0.unix() + secs)
}

/// A session of `user` in `realm` created at `now`: a one-hour absolute deadline and a
/// five-minute idle deadline (`expires_at = now + 5m`), as after a password login.
pub fn sample_session(realm: &str, user: &str, now: Timestamp) -> (SessionToken, SessionRecord) {
    let token = SessionToken::generate();
    let record = SessionRecord {
        id: SessionId::generate(),
        token_hash: token.hash(),
        realm: realm.to_owned(),
        user: user.to_owned(),
        display_name: Some(format!("{user} (display)")),
        email: Some(format!("{user}@example.com")),
        groups: vec!["dev".to_owned()],
        amr: vec![amr::PASSWORD.to_owned()],
        created_at: now,
        last_seen_at: now,
        absolute_deadline: now + Duration::from_secs(3600),
        expires_at: now + Duration::from_secs(300),
        remember_me: false,
        ip: Some("192.0.2.1".to_owned()),
        user_agent: Some("conformance/1.0".to_owned()),
        attributes: BTreeMap::new(),
    };
    (token, record)
}

/// Creates a session of `user` in `realm`, created at `created` and due for sweeping at `expires`.
async fn create<S: Store>(store: &S, realm: &str, user: &str, created: i64, expires: i64) -> SessionRecord {
    let (_, mut record) = sample_session(realm, user, at(created));
    record.expires_at = at(expires);
    store.create_session(&record).await.unwrap();
    record
}

async fn list<S: Store>(store: &S, realm: Option<&str>, user: Option<&str>) -> Vec<SessionRecord> {
    let filter = SessionFilter { realm: realm.map(str::to_owned), user: user.map(str::to_owned) };
    store.list_sessions(&filter).await.unwrap()
}

fn ids(records: &[SessionRecord]) -> Vec<SessionId> {
    records.iter().map(|r| r.id.clone()).collect()
}

/// Asserts that `record` is gone by every way of finding it.
async fn assert_gone<S: Store>(store: &S, record: &SessionRecord) {
    assert_eq!(store.session_by_token(&record.token_hash).await.unwrap(), None, "found by token");
    assert_eq!(store.session_by_id(&record.id).await.unwrap(), None, "found by id");
    let listed = list(store, Some(&record.realm), Some(&record.user)).await;
    assert!(!ids(&listed).contains(&record.id), "still in its user's list");
    assert!(!ids(&list(store, None, None).await).contains(&record.id), "still in the full list");
}

/// A created session is found by its token hash and by its id, exactly as stored.
pub async fn create_then_get_by_token_and_by_id<S: Store>(store: S) {
    let (token, record) = sample_session("main", "alice", T0);
    store.create_session(&record).await.unwrap();

    assert_eq!(store.session_by_token(&token.hash()).await.unwrap(), Some(record.clone()));
    assert_eq!(store.session_by_id(&record.id).await.unwrap(), Some(record));
}

/// Unknown tokens and ids are `None`, not an error, even when other sessions exist.
pub async fn unknown_token_and_id_are_none<S: Store>(store: S) {
    create(&store, "main", "alice", 0, 300).await;

    assert_eq!(store.session_by_token(&SessionToken::generate().hash()).await.unwrap(), None);
    assert_eq!(store.session_by_token(&TokenHash([0; 32])).await.unwrap(), None);
    assert_eq!(store.session_by_id(&SessionId::generate()).await.unwrap(), None);
}

/// Creating a session whose token hash or id is taken is a conflict and changes nothing.
pub async fn duplicate_create_is_a_conflict<S: Store>(store: S) {
    let original = create(&store, "main", "alice", 0, 300).await;

    let (_, mut same_hash) = sample_session("main", "mallory", at(1));
    same_hash.token_hash = original.token_hash;
    let err = store.create_session(&same_hash).await.unwrap_err();
    assert!(matches!(err, StoreError::Conflict), "same token hash: {err:?}");

    let (_, mut same_id) = sample_session("other", "mallory", at(2));
    same_id.id = original.id.clone();
    let err = store.create_session(&same_id).await.unwrap_err();
    assert!(matches!(err, StoreError::Conflict), "same id: {err:?}");

    assert_eq!(store.session_by_token(&original.token_hash).await.unwrap(), Some(original.clone()));
    assert_eq!(store.session_by_id(&original.id).await.unwrap(), Some(original.clone()));
    assert_eq!(store.session_by_token(&same_id.token_hash).await.unwrap(), None);
    assert_eq!(store.session_by_id(&same_hash.id).await.unwrap(), None);
    assert_eq!(list(&store, None, Some("mallory")).await, vec![]);
    assert_eq!(list(&store, None, None).await, vec![original]);
    // The refused records left no deadline behind either.
    assert_eq!(store.sweep_expired(at(10_000), 100).await.unwrap(), 1);
}

/// A touch sets `last_seen_at` and `expires_at` and leaves every other field as it was.
pub async fn touch_moves_last_seen_and_expiry<S: Store>(store: S) {
    let record = create(&store, "main", "alice", 0, 300).await;

    assert!(store.touch_session(&record.token_hash, at(60), at(360)).await.unwrap());

    let expected = SessionRecord { last_seen_at: at(60), expires_at: at(360), ..record.clone() };
    assert_eq!(store.session_by_token(&record.token_hash).await.unwrap(), Some(expected.clone()));
    assert_eq!(store.session_by_id(&record.id).await.unwrap(), Some(expected.clone()));
    assert_eq!(list(&store, Some("main"), Some("alice")).await, vec![expected]);
}

/// Touching a session that never existed or was deleted answers `false` and brings nothing back.
pub async fn touch_of_a_gone_session_is_false<S: Store>(store: S) {
    assert!(!store.touch_session(&SessionToken::generate().hash(), at(1), at(301)).await.unwrap());

    let record = create(&store, "main", "alice", 0, 300).await;
    store.delete_session(&record.token_hash).await.unwrap();
    assert!(!store.touch_session(&record.token_hash, at(60), at(360)).await.unwrap());

    assert_gone(&store, &record).await;
    assert_eq!(store.sweep_expired(at(10_000), 100).await.unwrap(), 0, "the touch left a deadline");
}

/// Deleting returns the record and removes it from the id and user indexes; a second delete is
/// `None`.
pub async fn delete_returns_the_record_and_clears_every_index<S: Store>(store: S) {
    let doomed = create(&store, "main", "alice", 0, 300).await;
    let kept = create(&store, "main", "alice", 1, 300).await;

    assert_eq!(store.delete_session(&doomed.token_hash).await.unwrap(), Some(doomed.clone()));

    assert_gone(&store, &doomed).await;
    assert_eq!(list(&store, Some("main"), Some("alice")).await, vec![kept.clone()]);
    assert_eq!(store.delete_session(&doomed.token_hash).await.unwrap(), None);
    assert_eq!(store.delete_session(&SessionToken::generate().hash()).await.unwrap(), None);
    assert_eq!(store.sweep_expired(at(10_000), 100).await.unwrap(), 1, "only the kept session");
    assert_gone(&store, &kept).await;
}

/// Lists filter by realm, by user, by both or by neither, oldest first. Names are matched
/// exactly: a user or realm whose name is a prefix of another's does not see its sessions.
pub async fn list_filters_by_realm_and_user_oldest_first<S: Store>(store: S) {
    // Created out of order, so that insertion order cannot pass for age order.
    let alice_late = create(&store, "main", "alice", 30, 300).await;
    let main2_alice = create(&store, "main2", "alice", 1, 300).await;
    let alice_early = create(&store, "main", "alice", 10, 300).await;
    let al = create(&store, "main", "al", 20, 300).await;
    let other_alice = create(&store, "other", "alice", 2, 300).await;
    let bob = create(&store, "main", "bob", 5, 300).await;

    let both = list(&store, Some("main"), Some("alice")).await;
    assert_eq!(ids(&both), ids(&[alice_early.clone(), alice_late.clone()]));
    assert_eq!(both, vec![alice_early.clone(), alice_late.clone()], "records come back whole");

    let realm = list(&store, Some("main"), None).await;
    assert_eq!(ids(&realm), ids(&[bob.clone(), alice_early.clone(), al.clone(), alice_late.clone()]));

    let user = list(&store, None, Some("alice")).await;
    let expected = [main2_alice.clone(), other_alice.clone(), alice_early.clone(), alice_late.clone()];
    assert_eq!(ids(&user), ids(&expected));

    let all = list(&store, None, None).await;
    let expected = [main2_alice, other_alice, bob, alice_early, al.clone(), alice_late];
    assert_eq!(ids(&all), ids(&expected));

    assert_eq!(ids(&list(&store, Some("main"), Some("al")).await), ids(&[al]));
    assert_eq!(list(&store, Some("mai"), None).await, vec![]);
    assert_eq!(list(&store, Some("main"), Some("ali")).await, vec![]);
    assert_eq!(list(&store, Some("nowhere"), None).await, vec![]);
    assert_eq!(list(&store, None, Some("carol")).await, vec![]);
}

/// Revoking all of a user's sessions in a realm deletes exactly those: other users, and the
/// same user in other realms, keep theirs.
pub async fn revoke_all_leaves_other_users_alone<S: Store>(store: S) {
    let mut alice = Vec::new();
    for i in 0..3 {
        alice.push(create(&store, "main", "alice", i, 300).await);
    }
    let bob = create(&store, "main", "bob", 10, 300).await;
    let alice_elsewhere = create(&store, "other", "alice", 11, 300).await;
    let alice2 = create(&store, "main", "alice2", 12, 300).await;

    let deleted = store.delete_user_sessions("main", "alice", None).await.unwrap();

    assert_eq!(ids(&deleted), ids(&alice));
    for record in &alice {
        assert_gone(&store, record).await;
    }
    assert_eq!(list(&store, Some("main"), Some("alice")).await, vec![]);
    assert_eq!(list(&store, None, None).await, vec![bob, alice_elsewhere, alice2]);
    assert_eq!(store.delete_user_sessions("main", "alice", None).await.unwrap(), vec![]);
    assert_eq!(store.delete_user_sessions("main", "nobody", None).await.unwrap(), vec![]);
}

/// "Sign out everywhere else": the excepted session survives, the user's others go.
pub async fn revoke_all_except_current_keeps_it<S: Store>(store: S) {
    let first = create(&store, "main", "alice", 0, 300).await;
    let current = create(&store, "main", "alice", 1, 300).await;
    let third = create(&store, "main", "alice", 2, 300).await;
    let bob = create(&store, "main", "bob", 3, 300).await;

    let deleted = store.delete_user_sessions("main", "alice", Some(&current.token_hash)).await.unwrap();

    assert_eq!(ids(&deleted), ids(&[first.clone(), third.clone()]));
    assert_gone(&store, &first).await;
    assert_gone(&store, &third).await;
    assert_eq!(list(&store, Some("main"), Some("alice")).await, vec![current.clone()]);
    assert_eq!(store.session_by_token(&current.token_hash).await.unwrap(), Some(current.clone()));

    // Excepting someone else's session protects nothing of this user's, and spares that one.
    let deleted = store.delete_user_sessions("main", "alice", Some(&bob.token_hash)).await.unwrap();
    assert_eq!(deleted, vec![current]);
    assert_eq!(list(&store, None, None).await, vec![bob]);
}

/// Ending every session of a realm leaves other realms' sessions and the realm's state alone.
pub async fn delete_realm_sessions_leaves_other_realms_alone<S: Store>(store: S) {
    let state =
        RealmState { default_cookie_name: "sd_1".into(), cookie_name: "sd_1".into(), sessions_not_before: None };
    store.put_realm_state("main", &state).await.unwrap();
    let doomed = [
        create(&store, "main", "alice", 0, 300).await,
        create(&store, "main", "alice", 1, 300).await,
        create(&store, "main", "bob", 2, 300).await,
    ];
    let prefixed = create(&store, "main2", "alice", 3, 300).await;
    let other = create(&store, "other", "carol", 4, 300).await;

    assert_eq!(store.delete_realm_sessions("main").await.unwrap(), 3);

    for record in &doomed {
        assert_gone(&store, record).await;
    }
    assert_eq!(list(&store, Some("main"), None).await, vec![]);
    assert_eq!(list(&store, None, None).await, vec![prefixed, other]);
    assert_eq!(store.realm_state("main").await.unwrap(), Some(state));
    assert_eq!(store.delete_realm_sessions("main").await.unwrap(), 0);
    assert_eq!(store.delete_realm_sessions("nowhere").await.unwrap(), 0);
}

/// Sweeping deletes sessions with `expires_at <= now` and nothing else.
pub async fn sweep_deletes_only_expired_sessions<S: Store>(store: S) {
    let a = create(&store, "main", "alice", 0, 100).await;
    let b = create(&store, "main", "bob", 0, 200).await;
    let c = create(&store, "main", "carol", 0, 201).await;

    assert_eq!(store.sweep_expired(at(99), 10).await.unwrap(), 0);
    assert_eq!(list(&store, None, None).await.len(), 3);

    // A session is over at its deadline, not a second after.
    assert_eq!(store.sweep_expired(at(200), 10).await.unwrap(), 2);
    assert_gone(&store, &a).await;
    assert_gone(&store, &b).await;
    assert_eq!(store.session_by_token(&c.token_hash).await.unwrap(), Some(c.clone()));
    assert_eq!(list(&store, None, None).await, vec![c]);
}

/// A sweep deletes at most `limit` sessions; calling it again drains the rest.
pub async fn sweep_respects_limit_and_drains<S: Store>(store: S) {
    for i in 0..10 {
        create(&store, "main", &format!("user{i}"), i, i + 1).await;
    }
    let live = [create(&store, "main", "alice", 20, 1_000).await, create(&store, "main", "bob", 21, 1_000).await];

    assert_eq!(store.sweep_expired(at(100), 0).await.unwrap(), 0);
    assert_eq!(list(&store, None, None).await.len(), 12);

    let mut swept = Vec::new();
    loop {
        let n = store.sweep_expired(at(100), 3).await.unwrap();
        assert!(n <= 3, "swept {n} with a limit of 3");
        if n == 0 {
            break;
        }
        swept.push(n);
    }
    assert_eq!(swept, vec![3, 3, 3, 1]);
    assert_eq!(list(&store, None, None).await, live.to_vec());
}

/// A swept session is gone from the id and user indexes, not only from the records.
pub async fn sweep_removes_swept_sessions_from_every_index<S: Store>(store: S) {
    let alice_expired = create(&store, "main", "alice", 0, 100).await;
    let alice_live = create(&store, "main", "alice", 1, 1_000).await;
    let bob_expired = create(&store, "main", "bob", 2, 100).await;

    assert_eq!(store.sweep_expired(at(100), 10).await.unwrap(), 2);

    assert_gone(&store, &alice_expired).await;
    assert_gone(&store, &bob_expired).await;
    assert_eq!(list(&store, Some("main"), Some("alice")).await, vec![alice_live.clone()]);
    assert_eq!(list(&store, Some("main"), None).await, vec![alice_live.clone()]);
    assert_eq!(list(&store, None, Some("bob")).await, vec![]);
    assert_eq!(store.delete_user_sessions("main", "bob", None).await.unwrap(), vec![]);
    assert_eq!(store.delete_user_sessions("main", "alice", None).await.unwrap(), vec![alice_live]);
}

/// The sweep follows the deadline of the last touch: a session whose deadline moved later is
/// not swept at the old one, and one whose deadline moved earlier is swept at the new one.
pub async fn touched_session_is_not_swept_at_its_old_deadline<S: Store>(store: S) {
    let extended = create(&store, "main", "alice", 0, 300).await;
    let shortened = create(&store, "main", "bob", 0, 1_000).await;
    assert!(store.touch_session(&extended.token_hash, at(200), at(500)).await.unwrap());
    assert!(store.touch_session(&shortened.token_hash, at(200), at(400)).await.unwrap());

    assert_eq!(store.sweep_expired(at(300), 10).await.unwrap(), 0);
    assert!(store.session_by_token(&extended.token_hash).await.unwrap().is_some());

    assert_eq!(store.sweep_expired(at(400), 10).await.unwrap(), 1);
    assert_gone(&store, &shortened).await;
    assert_eq!(store.sweep_expired(at(499), 10).await.unwrap(), 0);
    assert_eq!(store.sweep_expired(at(500), 10).await.unwrap(), 1);
    assert_gone(&store, &extended).await;
    assert_eq!(store.sweep_expired(at(10_000), 10).await.unwrap(), 0);
}

/// Realm state reads back as written, per realm, and a second write replaces the first.
pub async fn realm_state_round_trips_and_overwrites<S: Store>(store: S) {
    assert_eq!(store.realm_state("main").await.unwrap(), None);

    let first = RealmState {
        default_cookie_name: "sd_4f9c2a7e".into(),
        cookie_name: "sd_4f9c2a7e".into(),
        sessions_not_before: None,
    };
    let other = RealmState {
        default_cookie_name: "sd_00aa11bb".into(),
        cookie_name: "other_session".into(),
        sessions_not_before: None,
    };
    store.put_realm_state("main", &first).await.unwrap();
    store.put_realm_state("other", &other).await.unwrap();
    assert_eq!(store.realm_state("main").await.unwrap(), Some(first));
    assert_eq!(store.realm_state("other").await.unwrap(), Some(other.clone()));

    let renamed = RealmState {
        default_cookie_name: "sd_4f9c2a7e".into(),
        cookie_name: "__Host-app".into(),
        sessions_not_before: Some(1_800_000_000),
    };
    store.put_realm_state("main", &renamed).await.unwrap();
    assert_eq!(store.realm_state("main").await.unwrap(), Some(renamed));
    assert_eq!(store.realm_state("other").await.unwrap(), Some(other));
    assert_eq!(store.realm_state("mai").await.unwrap(), None);
}

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

/// Entries read back as written until they expire, per kind, and deletes say whether there was
/// anything to delete.
pub async fn entries_round_trip_until_they_expire<S: Store>(store: S) {
    let later = Some(T0 + secs(60));
    assert_eq!(store.entry(EntryKind::ApiToken, "a", T0).await.unwrap(), None);
    store.put_entry(EntryKind::ApiToken, "a", b"first", later, T0).await.unwrap();
    store.put_entry(EntryKind::ApiToken, "forever", &[0, 255, 7], None, T0).await.unwrap();
    store.put_entry(EntryKind::NotBefore, "a", b"other kind", None, T0).await.unwrap();
    let a = Entry { key: "a".into(), value: b"first".to_vec(), expires_at: later };
    assert_eq!(store.entry(EntryKind::ApiToken, "a", T0).await.unwrap(), Some(a.clone()));
    assert_eq!(store.entry(EntryKind::NotBefore, "a", T0).await.unwrap().unwrap().value, b"other kind");
    assert_eq!(store.entry(EntryKind::ApiToken, "a", T0 + secs(59)).await.unwrap(), Some(a.clone()));
    assert_eq!(store.entry(EntryKind::ApiToken, "a", T0 + secs(60)).await.unwrap(), None, "expired at its instant");
    assert_eq!(
        store.entry(EntryKind::ApiToken, "forever", T0 + secs(10_000_000)).await.unwrap().unwrap().value,
        [0, 255, 7]
    );

    // A second write replaces value and expiry.
    store.put_entry(EntryKind::ApiToken, "a", b"second", None, T0).await.unwrap();
    assert_eq!(store.entry(EntryKind::ApiToken, "a", T0 + secs(120)).await.unwrap().unwrap().value, b"second");

    assert!(store.delete_entry(EntryKind::ApiToken, "a").await.unwrap());
    assert!(!store.delete_entry(EntryKind::ApiToken, "a").await.unwrap());
    assert_eq!(store.entry(EntryKind::ApiToken, "a", T0).await.unwrap(), None);
    assert_eq!(store.entry(EntryKind::NotBefore, "a", T0).await.unwrap().unwrap().value, b"other kind");

    // Writing an entry that has already expired leaves nothing readable.
    store.put_entry(EntryKind::Journey, "gone", b"x", Some(T0), T0).await.unwrap();
    assert_eq!(store.entry(EntryKind::Journey, "gone", T0).await.unwrap(), None);
}

/// Listing gives the live entries of one kind, in key order, with their keys.
pub async fn entries_are_listed_per_kind_in_key_order<S: Store>(store: S) {
    for key in ["c", "a", "b", "ключ"] {
        store.put_entry(EntryKind::ApiToken, key, key.as_bytes(), None, T0).await.unwrap();
    }
    store.put_entry(EntryKind::ApiToken, "short", b"s", Some(T0 + secs(5)), T0).await.unwrap();
    store.put_entry(EntryKind::RevokedSession, "z", b"z", None, T0).await.unwrap();
    let keys = |entries: Vec<Entry>| entries.into_iter().map(|e| e.key).collect::<Vec<_>>();
    assert_eq!(keys(store.list_entries(EntryKind::ApiToken, T0).await.unwrap()), ["a", "b", "c", "short", "ключ"]);
    assert_eq!(keys(store.list_entries(EntryKind::ApiToken, T0 + secs(5)).await.unwrap()), ["a", "b", "c", "ключ"]);
    assert_eq!(keys(store.list_entries(EntryKind::RevokedSession, T0).await.unwrap()), ["z"]);
    assert!(store.list_entries(EntryKind::Journey, T0).await.unwrap().is_empty());
    let listed = store.list_entries(EntryKind::ApiToken, T0).await.unwrap();
    assert_eq!(listed[1], Entry { key: "b".into(), value: b"b".to_vec(), expires_at: None });
}

/// `swap_entry` writes only over the expected value, treats an expired entry as absent, and
/// deletes when given no new value.
pub async fn swap_entry_compares_before_it_writes<S: Store>(store: S) {
    let k = EntryKind::Journey;
    assert!(store.swap_entry(k, "j", None, Some((b"1", None)), T0).await.unwrap(), "absent as expected");
    assert!(!store.swap_entry(k, "j", None, Some((b"x", None)), T0).await.unwrap(), "no longer absent");
    assert!(!store.swap_entry(k, "j", Some(b"0"), Some((b"x", None)), T0).await.unwrap(), "wrong value");
    assert_eq!(store.entry(k, "j", T0).await.unwrap().unwrap().value, b"1", "losing swaps change nothing");
    assert!(store.swap_entry(k, "j", Some(b"1"), Some((b"2", Some(T0 + secs(30)))), T0).await.unwrap());
    assert_eq!(store.entry(k, "j", T0).await.unwrap().unwrap().expires_at, Some(T0 + secs(30)));
    // Past its expiry the entry is absent, for swaps too.
    assert!(!store.swap_entry(k, "j", Some(b"2"), Some((b"3", None)), T0 + secs(30)).await.unwrap());
    assert!(store.swap_entry(k, "j", None, Some((b"3", None)), T0 + secs(30)).await.unwrap());
    assert!(store.swap_entry(k, "j", Some(b"3"), None, T0 + secs(31)).await.unwrap(), "swap to nothing deletes");
    assert_eq!(store.entry(k, "j", T0).await.unwrap(), None);
    assert!(!store.delete_entry(k, "j").await.unwrap());
}

/// Of many concurrent swaps from the same value, exactly one wins, and its value is the one kept.
pub async fn concurrent_swaps_have_exactly_one_winner<S: Store>(store: S) {
    store.put_entry(EntryKind::Journey, "race", b"step-1", None, T0).await.unwrap();
    let mut tasks = JoinSet::new();
    for i in 0..16u8 {
        let store = store.clone();
        tasks.spawn(async move {
            let value = [b's', i];
            let won = store.swap_entry(EntryKind::Journey, "race", Some(b"step-1"), Some((&value, None)), T0).await;
            (i, won.unwrap())
        });
    }
    let mut winners = Vec::new();
    while let Some(done) = tasks.join_next().await {
        let (i, won) = done.unwrap();
        if won {
            winners.push(i);
        }
    }
    assert_eq!(winners.len(), 1, "{winners:?}");
    let kept = store.entry(EntryKind::Journey, "race", T0).await.unwrap().unwrap().value;
    assert_eq!(kept, [b's', winners[0]]);
}

/// Sweeping entries removes only expired ones (backends that expire entries themselves may sweep
/// none), and live entries stay readable.
pub async fn sweep_entries_leaves_live_entries<S: Store>(store: S) {
    for i in 0..5u64 {
        store
            .put_entry(EntryKind::RevokedSession, &format!("r{i}"), b"x", Some(T0 + secs(10 * (i + 1))), T0)
            .await
            .unwrap();
    }
    store.put_entry(EntryKind::ApiToken, "keep", b"k", None, T0).await.unwrap();
    let swept = store.sweep_entries(T0 + secs(30), 100).await.unwrap();
    assert!(swept <= 3, "{swept}");
    let left: Vec<String> = store
        .list_entries(EntryKind::RevokedSession, T0 + secs(30))
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.key)
        .collect();
    assert_eq!(left, ["r3", "r4"]);
    assert_eq!(store.sweep_entries(T0 + secs(30), 100).await.unwrap(), 0, "nothing is swept twice");
    assert!(store.entry(EntryKind::ApiToken, "keep", T0 + secs(30)).await.unwrap().is_some());
    // The limit bounds each sweep; a backend that sweeps at all sweeps the two left one by one.
    let first = store.sweep_entries(T0 + secs(100), 1).await.unwrap();
    assert_eq!(first, usize::from(swept > 0));
}

/// A working store answers `ping`.
pub async fn ping_answers<S: Store>(store: S) {
    store.ping().await.unwrap();
}

/// Touches racing deletes of the same session: exactly one delete wins, and no touch brings
/// the session back into any lookup, list or deadline.
pub async fn concurrent_touches_and_deletes_never_resurrect_a_session<S: Store>(store: S) {
    const ROUNDS: i64 = 4;
    const TASKS: i64 = 32;
    let mut bystanders = Vec::new();
    for round in 0..ROUNDS {
        let target = create(&store, "main", "alice", round * 2, 300).await;
        bystanders.push(create(&store, "main", "alice", round * 2 + 1, 300).await);

        let mut tasks = JoinSet::new();
        for i in 0..TASKS {
            let (store, hash) = (store.clone(), target.token_hash);
            tasks.spawn(async move {
                if i % 4 == 0 {
                    store.delete_session(&hash).await.unwrap().map(|r| r.id)
                } else {
                    store.touch_session(&hash, at(i), at(1_000 + i)).await.unwrap();
                    None
                }
            });
        }
        let mut winners = Vec::new();
        while let Some(joined) = tasks.join_next().await {
            winners.extend(joined.unwrap());
        }

        assert_eq!(winners, vec![target.id.clone()], "round {round}: exactly one delete returns it");
        assert_gone(&store, &target).await;
        assert!(!store.touch_session(&target.token_hash, at(1), at(2_000)).await.unwrap());
    }
    assert_eq!(list(&store, Some("main"), Some("alice")).await, bystanders);
    // Only the bystanders still have deadlines: no deleted target left one behind.
    assert_eq!(store.sweep_expired(at(100_000), 1_000).await.unwrap(), bystanders.len());
}

/// Concurrent touches of one session leave it with the fields of one touch, whole, and with a
/// single deadline in the sweep order (a stale one would end it early).
pub async fn concurrent_touches_leave_exactly_one_deadline<S: Store>(store: S) {
    let target = create(&store, "main", "alice", 0, 100).await;

    let mut tasks = JoinSet::new();
    for i in 0..32 {
        let (store, hash) = (store.clone(), target.token_hash);
        tasks.spawn(async move { store.touch_session(&hash, at(i), at(1_000 + i)).await.unwrap() });
    }
    while let Some(joined) = tasks.join_next().await {
        assert!(joined.unwrap(), "a touch of a live session answered false");
    }

    let after = store.session_by_token(&target.token_hash).await.unwrap().unwrap();
    let offset = after.expires_at.unix() - T0.unix() - 1_000;
    assert!((0..32).contains(&offset), "expires_at {} is no touch's", after.expires_at);
    assert_eq!(after.last_seen_at, at(offset), "last_seen_at and expires_at come from different touches");
    assert_eq!(after, SessionRecord { last_seen_at: after.last_seen_at, expires_at: after.expires_at, ..target });

    assert_eq!(store.sweep_expired(Timestamp::from_unix(after.expires_at.unix() - 1), 100).await.unwrap(), 0);
    assert!(store.session_by_token(&after.token_hash).await.unwrap().is_some());
    assert_eq!(store.sweep_expired(after.expires_at, 100).await.unwrap(), 1);
    assert_gone(&store, &after).await;
}

/// A hundred sessions of one user are all listed, oldest first, and all revoked but one.
pub async fn many_sessions_per_user_are_listed<S: Store>(store: S) {
    let mut created = Vec::new();
    for i in 0..100 {
        // 37 is coprime with 100: every age once, in scrambled order.
        created.push(create(&store, "main", "alice", (i * 37) % 100, 10_000).await);
    }
    create(&store, "main", "bob", 50, 10_000).await;

    let listed = list(&store, Some("main"), Some("alice")).await;
    assert_eq!(listed.len(), 100);
    assert!(listed.windows(2).all(|w| w[0].created_at < w[1].created_at), "not oldest first");
    let listed_ids: BTreeSet<_> = ids(&listed).into_iter().collect();
    assert_eq!(listed_ids, ids(&created).into_iter().collect());

    let keep = &created[42];
    let deleted = store.delete_user_sessions("main", "alice", Some(&keep.token_hash)).await.unwrap();
    assert_eq!(deleted.len(), 99);
    assert!(!ids(&deleted).contains(&keep.id));
    assert_eq!(list(&store, Some("main"), Some("alice")).await, vec![keep.clone()]);
    assert_eq!(list(&store, Some("main"), None).await.len(), 2);
}

/// Names and attributes outside ASCII come back byte for byte, and names are compared exactly
/// (no case folding or Unicode normalisation).
pub async fn unicode_names_and_attributes_round_trip<S: Store>(store: S) {
    let realm = "réalm-東京";
    let user = "Zoë 👩‍💻 Ångström";
    let (token, mut record) = sample_session(realm, user, T0);
    record.display_name = Some("Zoe\u{301} \"the\" \\ admin".to_owned());
    record.email = Some("zoë@bücher.example".to_owned());
    record.groups = vec!["développeurs".to_owned(), "管理者".to_owned()];
    record.user_agent = Some("Mozilla/5.0 (X11; Linux) \u{0}\u{7f}\u{feff}".to_owned());
    record.attributes = BTreeMap::from([
        ("clé".to_owned(), serde_json::json!("valeur ✓")),
        ("".to_owned(), serde_json::json!("empty key")),
        ("nested".to_owned(), serde_json::json!({"emoji": "🎉", "list": [1, "ü", null, true, -2.5]})),
    ]);
    store.create_session(&record).await.unwrap();
    // The same name in decomposed form (e + combining diaeresis) is a different user.
    let decomposed = create(&store, realm, "Zoe\u{308} 👩‍💻 Ångström", 1, 300).await;

    assert_eq!(store.session_by_token(&token.hash()).await.unwrap(), Some(record.clone()));
    assert_eq!(store.session_by_id(&record.id).await.unwrap(), Some(record.clone()));
    assert_eq!(list(&store, Some(realm), Some(user)).await, vec![record.clone()]);
    assert_eq!(list(&store, None, Some(user)).await, vec![record.clone()]);
    assert_eq!(list(&store, Some(realm), None).await, vec![record.clone(), decomposed.clone()]);
    assert_eq!(list(&store, Some("RÉALM-東京"), None).await, vec![]);

    assert_eq!(store.delete_user_sessions(realm, user, None).await.unwrap(), vec![record]);
    assert_eq!(list(&store, Some(realm), None).await, vec![decomposed]);
}

/// The shared lookup (the hot path, cached by some backends) agrees with the store after every
/// kind of write: a touch shows, and a deleted, revoked or realm-wide ended session is gone.
pub async fn shared_lookup_follows_every_write<S: Store>(store: S) {
    let shared = |store: &S, hash| {
        let store = store.clone();
        async move { store.session_by_token_shared(&hash).await.unwrap().map(|r| (*r).clone()) }
    };
    let one = create(&store, "main", "alice", 0, 300).await;
    assert_eq!(shared(&store, one.token_hash).await, Some(one.clone()));
    assert_eq!(shared(&store, one.token_hash).await, Some(one.clone()), "asked twice, same answer");

    assert!(store.touch_session(&one.token_hash, at(60), at(360)).await.unwrap());
    let touched = shared(&store, one.token_hash).await.unwrap();
    assert_eq!((touched.last_seen_at, touched.expires_at), (at(60), at(360)));

    store.delete_session(&one.token_hash).await.unwrap();
    assert_eq!(shared(&store, one.token_hash).await, None, "deleted");

    let two = create(&store, "main", "bob", 0, 300).await;
    let keep = create(&store, "main", "bob", 1, 300).await;
    assert!(shared(&store, two.token_hash).await.is_some());
    assert!(shared(&store, keep.token_hash).await.is_some());
    store.delete_user_sessions("main", "bob", Some(&keep.token_hash)).await.unwrap();
    assert_eq!(shared(&store, two.token_hash).await, None, "revoked");
    assert!(shared(&store, keep.token_hash).await.is_some(), "the kept one stays");

    let other = create(&store, "other", "carol", 0, 300).await;
    assert!(shared(&store, other.token_hash).await.is_some());
    store.delete_realm_sessions("main").await.unwrap();
    assert_eq!(shared(&store, keep.token_hash).await, None, "realm ended");
    assert!(shared(&store, other.token_hash).await.is_some(), "other realms untouched");
}

/// A backend that counts sessions per realm keeps every count exact through creates (refused
/// duplicates included), touches, single deletes, revoke-all, sweeps, realm deletes and
/// concurrent writes; unknown realms count zero. Backends that keep no count answer `None`
/// for every realm, and the case has nothing more to check.
pub async fn session_counts_follow_every_write<S: Store>(store: S) {
    let count = |realm: &'static str| {
        let store = store.clone();
        async move { store.session_count(realm).await.unwrap() }
    };
    if count("main").await.is_none() {
        assert_eq!(count("other").await, None, "a backend counts every realm or none");
        return;
    }
    let counts = || async { (count("main").await, count("other").await, count("nowhere").await) };
    assert_eq!(counts().await, (Some(0), Some(0), Some(0)));

    let alice = create(&store, "main", "alice", 0, 100).await;
    let alice_too = create(&store, "main", "alice", 1, 100).await;
    create(&store, "main", "alice", 2, 1_000).await;
    create(&store, "main", "bob", 3, 1_000).await;
    create(&store, "other", "alice", 4, 100).await;
    create(&store, "other", "carol", 5, 1_000).await;
    assert_eq!(counts().await, (Some(4), Some(2), Some(0)));

    let (_, mut duplicate) = sample_session("other", "mallory", at(6));
    duplicate.token_hash = alice.token_hash;
    assert!(matches!(store.create_session(&duplicate).await, Err(StoreError::Conflict)));
    assert!(store.touch_session(&alice.token_hash, at(10), at(110)).await.unwrap());
    assert_eq!(counts().await, (Some(4), Some(2), Some(0)), "a refused create or a touch counts nothing");

    store.delete_session(&alice_too.token_hash).await.unwrap();
    store.delete_session(&alice_too.token_hash).await.unwrap();
    store.delete_session(&SessionToken::generate().hash()).await.unwrap();
    assert_eq!(counts().await, (Some(3), Some(2), Some(0)), "only a delete that found the session counts");

    let ended = store.delete_user_sessions("main", "alice", Some(&alice.token_hash)).await.unwrap();
    assert_eq!(ended.len(), 1);
    assert_eq!(counts().await, (Some(2), Some(2), Some(0)), "revoke-all except the current one");

    // Due at 100 (other) and, after the touch, 110 (main): both swept at 200.
    assert_eq!(store.sweep_expired(at(200), 100).await.unwrap(), 2);
    assert_eq!(counts().await, (Some(1), Some(1), Some(0)), "swept sessions no longer count");

    assert_eq!(store.delete_realm_sessions("other").await.unwrap(), 1);
    assert_eq!(counts().await, (Some(1), Some(0), Some(0)), "a realm delete leaves other realms alone");

    let mut tasks = JoinSet::new();
    for i in 0..24 {
        let store = store.clone();
        tasks.spawn(async move {
            let realm = if i % 2 == 0 { "main" } else { "other" };
            let record = create(&store, realm, &format!("user{i}"), 10 + i, 5_000).await;
            if i % 3 == 0 {
                assert!(store.delete_session(&record.token_hash).await.unwrap().is_some());
            }
        });
    }
    while let Some(joined) = tasks.join_next().await {
        joined.unwrap();
    }
    // 24 created (12 per realm), 8 of them deleted again (i = 0, 6, 12, 18 in main; 3, 9, 15, 21 in other).
    assert_eq!(counts().await, (Some(1 + 12 - 4), Some(12 - 4), Some(0)), "concurrent writes");
    for realm in ["main", "other"] {
        let listed = list(&store, Some(realm), None).await.len() as u64;
        assert_eq!(count(realm).await, Some(listed), "{realm}: the count agrees with the sessions listed");
    }
}

/// Expands to one `#[tokio::test]` per conformance case, each on a fresh store from `$factory`.
///
/// `$factory` is called with no arguments and returns a future of a store or a
/// [`Fixture`](crate::conformance::Fixture). The calling crate needs `tokio` with the `macros`
/// and `rt-multi-thread` features.
#[macro_export]
macro_rules! conformance_suite {
    (@cases $factory:expr; $($case:ident),+ $(,)?) => {
        $(
            #[::tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn $case() {
                let fixture = ($factory)().await;
                let store = $crate::conformance::Fixture::store(&fixture);
                $crate::conformance::$case(store).await;
            }
        )+
    };
    ($factory:expr $(,)?) => {
        $crate::conformance_suite!(@cases $factory;
            create_then_get_by_token_and_by_id,
            unknown_token_and_id_are_none,
            duplicate_create_is_a_conflict,
            touch_moves_last_seen_and_expiry,
            touch_of_a_gone_session_is_false,
            delete_returns_the_record_and_clears_every_index,
            list_filters_by_realm_and_user_oldest_first,
            revoke_all_leaves_other_users_alone,
            revoke_all_except_current_keeps_it,
            delete_realm_sessions_leaves_other_realms_alone,
            sweep_deletes_only_expired_sessions,
            sweep_respects_limit_and_drains,
            sweep_removes_swept_sessions_from_every_index,
            touched_session_is_not_swept_at_its_old_deadline,
            realm_state_round_trips_and_overwrites,
            ping_answers,
            concurrent_touches_and_deletes_never_resurrect_a_session,
            concurrent_touches_leave_exactly_one_deadline,
            many_sessions_per_user_are_listed,
            unicode_names_and_attributes_round_trip,
            shared_lookup_follows_every_write,
            session_counts_follow_every_write,
            entries_round_trip_until_they_expire,
            entries_are_listed_per_kind_in_key_order,
            swap_entry_compares_before_it_writes,
            concurrent_swaps_have_exactly_one_winner,
            sweep_entries_leaves_live_entries,
        );
    };
}
