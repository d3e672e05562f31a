//! The embedded store on disk: what survives a restart, what happens when the file is held by
//! another handle, and how unreadable data is reported.

use redb::{
    Database, MultimapTableDefinition, ReadableMultimapTable as _, ReadableTableMetadata as _, TableDefinition,
};
use sessiond_store::conformance::{T0, at, sample_session};
use sessiond_store::{EmbeddedStore, RealmState, SessionFilter, Store, StoreError};
use std::path::Path;

// The on-disk layout, as the store writes it; tests reach past the store to damage it.
const SESSIONS: TableDefinition<'_, [u8; 32], &[u8]> = TableDefinition::new("sessions");
const REALMS: TableDefinition<'_, &str, &[u8]> = TableDefinition::new("realm_state");
const IDS: TableDefinition<'_, &str, [u8; 32]> = TableDefinition::new("session_ids");
const USERS: MultimapTableDefinition<'_, (&str, &str), [u8; 32]> = MultimapTableDefinition::new("user_sessions");
const EXPIRY: TableDefinition<'_, (i64, [u8; 32]), ()> = TableDefinition::new("session_expiry");

/// Entries in the sessions, ids, user and expiry tables of a closed store.
fn table_sizes(path: &Path) -> [u64; 4] {
    let db = Database::create(path).unwrap();
    let txn = db.begin_read().unwrap();
    let users = txn.open_multimap_table(USERS).unwrap();
    let user_entries = users.iter().unwrap().map(|e| e.unwrap().1.len()).sum();
    [
        txn.open_table(SESSIONS).unwrap().len().unwrap(),
        txn.open_table(IDS).unwrap().len().unwrap(),
        user_entries,
        txn.open_table(EXPIRY).unwrap().len().unwrap(),
    ]
}

fn all() -> SessionFilter {
    SessionFilter::default()
}

fn overwrite<K: redb::Key + 'static>(
    path: &Path,
    table: TableDefinition<'_, K, &[u8]>,
    key: K::SelfType<'_>,
    bytes: &[u8],
) {
    let db = Database::create(path).unwrap();
    let txn = db.begin_write().unwrap();
    txn.open_table(table).unwrap().insert(key, bytes).unwrap();
    txn.commit().unwrap();
}

#[tokio::test]
async fn data_survives_close_and_reopen() {
    let dir = tempfile::tempdir().unwrap();
    // Parent directories are created on first open.
    let path = dir.path().join("data").join("nested").join("sessiond.redb");
    let (kept_token, kept) = sample_session("main", "alice", T0);
    let (_, deleted) = sample_session("main", "alice", at(1));
    let (_, touched) = sample_session("main", "bob", at(2));
    let state =
        RealmState { default_cookie_name: "sd_4f9c2a7e".into(), cookie_name: "app".into(), sessions_not_before: None };
    {
        let store = EmbeddedStore::open(&path).unwrap();
        assert_eq!(store.path(), path);
        for record in [&kept, &deleted, &touched] {
            store.create_session(record).await.unwrap();
        }
        store.delete_session(&deleted.token_hash).await.unwrap();
        assert!(store.touch_session(&touched.token_hash, at(100), at(1_000)).await.unwrap());
        store.put_realm_state("main", &state).await.unwrap();
    }

    let kept_expires_at = kept.expires_at;
    let store = EmbeddedStore::open(&path).unwrap();
    let touched = sessiond_core::session::SessionRecord { last_seen_at: at(100), expires_at: at(1_000), ..touched };
    assert_eq!(store.session_by_token(&kept_token.hash()).await.unwrap(), Some(kept.clone()));
    assert_eq!(store.session_by_id(&touched.id).await.unwrap(), Some(touched.clone()));
    assert_eq!(store.session_by_id(&deleted.id).await.unwrap(), None);
    assert_eq!(store.list_sessions(&all()).await.unwrap(), vec![kept.clone(), touched.clone()]);
    let alice = SessionFilter { realm: Some("main".into()), user: Some("alice".into()) };
    assert_eq!(store.list_sessions(&alice).await.unwrap(), vec![kept]);
    assert_eq!(store.realm_state("main").await.unwrap(), Some(state));
    // The sweep order survived too, with the touched deadline.
    assert_eq!(store.sweep_expired(kept_expires_at, 10).await.unwrap(), 1);
    assert_eq!(store.sweep_expired(at(999), 10).await.unwrap(), 0);
    assert_eq!(store.sweep_expired(at(1_000), 10).await.unwrap(), 1);
}

#[tokio::test]
async fn second_open_while_held_is_locked() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sessiond.redb");
    let first = EmbeddedStore::open(&path).unwrap();
    let clone = first.clone();
    drop(first);

    // Any live clone holds the file.
    let err = EmbeddedStore::open(&path).unwrap_err();
    assert!(err.is_locked(), "{err:?}");
    assert!(matches!(&err, StoreError::Locked { path: p, .. } if p == &path), "{err:?}");
    let message = err.to_string();
    assert!(message.contains(&path.display().to_string()), "{message}");
    assert!(message.contains("in use"), "{message}");
    clone.ping().await.unwrap();

    drop(clone);
    let reopened = EmbeddedStore::open(&path).unwrap();
    reopened.ping().await.unwrap();
}

#[tokio::test]
async fn corrupt_record_is_reported_not_panicked() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sessiond.redb");
    let (_, damaged) = sample_session("main", "alice", T0);
    let (_, healthy) = sample_session("main", "alice", at(1));
    {
        let store = EmbeddedStore::open(&path).unwrap();
        store.create_session(&damaged).await.unwrap();
        store.create_session(&healthy).await.unwrap();
    }
    overwrite(&path, SESSIONS, *damaged.token_hash.as_bytes(), b"\xff{not json");

    let store = EmbeddedStore::open(&path).unwrap();
    let is_corrupt = |r: Result<_, StoreError>| matches!(r, Err(StoreError::Corrupt { what: "session record", .. }));
    assert!(is_corrupt(store.session_by_token(&damaged.token_hash).await.map(|_| ())));
    assert!(is_corrupt(store.session_by_id(&damaged.id).await.map(|_| ())));
    assert!(is_corrupt(store.list_sessions(&all()).await.map(|_| ())));
    assert!(is_corrupt(store.touch_session(&damaged.token_hash, at(5), at(500)).await.map(|_| ())));
    assert!(is_corrupt(store.delete_session(&damaged.token_hash).await.map(|_| ())));
    // A failed write changed nothing, and the other session is unaffected.
    assert_eq!(store.session_by_token(&healthy.token_hash).await.unwrap(), Some(healthy.clone()));

    // Sweeping still gets rid of it, so one bad record cannot stall expiry forever; the indexes
    // that pointed at it no longer surface it.
    assert_eq!(store.sweep_expired(damaged.expires_at, 10).await.unwrap(), 1);
    assert_eq!(store.session_by_token(&damaged.token_hash).await.unwrap(), None);
    assert_eq!(store.session_by_id(&damaged.id).await.unwrap(), None);
    assert_eq!(store.list_sessions(&all()).await.unwrap(), vec![healthy.clone()]);
    let deleted = store.delete_user_sessions("main", "alice", None).await.unwrap();
    assert_eq!(deleted, vec![healthy]);
    assert_eq!(store.sweep_expired(at(100_000), 10).await.unwrap(), 0);
    drop(store);
    assert_eq!(table_sizes(&path), [0; 4], "the corrupt record left index entries behind");
}

#[tokio::test]
async fn every_way_of_ending_sessions_empties_every_table() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sessiond.redb");
    let store = EmbeddedStore::open(&path).unwrap();
    let mut records = Vec::new();
    let owners = [("main", "alice"), ("main", "bob"), ("main", "carol"), ("other", "dave")];
    for (i, (realm, user)) in (0..).zip(owners) {
        for j in 0..3 {
            let (_, record) = sample_session(realm, user, at(i * 3 + j));
            store.create_session(&record).await.unwrap();
            records.push(record);
        }
    }
    store.touch_session(&records[0].token_hash, at(50), at(5_000)).await.unwrap();
    store.touch_session(&records[9].token_hash, at(50), at(5_000)).await.unwrap();
    drop(store);
    assert_eq!(table_sizes(&path), [12; 4]);

    let store = EmbeddedStore::open(&path).unwrap();
    store.delete_session(&records[1].token_hash).await.unwrap();
    store.delete_user_sessions("main", "alice", Some(&records[2].token_hash)).await.unwrap();
    store.delete_user_sessions("main", "bob", None).await.unwrap();
    assert_eq!(store.delete_realm_sessions("other").await.unwrap(), 3);
    // Left: alice's excepted session and carol's three.
    assert_eq!(store.sweep_expired(at(100_000), 100).await.unwrap(), 4);
    drop(store);
    assert_eq!(table_sizes(&path), [0; 4]);
}

#[tokio::test]
async fn corrupt_realm_state_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sessiond.redb");
    drop(EmbeddedStore::open(&path).unwrap());
    overwrite(&path, REALMS, "main", b"[1, 2");

    let store = EmbeddedStore::open(&path).unwrap();
    let err = store.realm_state("main").await.unwrap_err();
    assert!(matches!(err, StoreError::Corrupt { what: "realm state", .. }), "{err:?}");
    assert_eq!(store.realm_state("other").await.unwrap(), None);
}

#[tokio::test]
async fn a_file_that_is_not_a_database_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sessiond.redb");
    std::fs::write(&path, b"this is a configuration file, not a database\n".repeat(200)).unwrap();

    let err = EmbeddedStore::open(&path).unwrap_err();
    assert!(matches!(err, StoreError::Unavailable { backend: "embedded", .. }), "{err:?}");
    assert!(!err.is_locked());
    let chain = std::error::Error::source(&err).unwrap().to_string();
    assert!(chain.contains(&path.display().to_string()), "{chain}");
}

#[tokio::test]
async fn a_parent_that_is_a_file_is_refused_with_its_path() {
    let dir = tempfile::tempdir().unwrap();
    let blocker = dir.path().join("not-a-dir");
    std::fs::write(&blocker, b"").unwrap();

    let err = EmbeddedStore::open(&blocker.join("sessiond.redb")).unwrap_err();
    assert!(matches!(err, StoreError::Unavailable { backend: "embedded", .. }), "{err:?}");
    let source = std::error::Error::source(&err).unwrap().to_string();
    assert_eq!(source, format!("creating directory {}", blocker.display()));
}
