//! What Redis holds: nothing readable, and nothing trusted that does not open.

use crate::support::redis::{self as rd, Probe};
use sessiond_core::session::SessionRecord;
use sessiond_store::conformance::{T0, at, sample_session};
use sessiond_store::{RealmState, RedisKey, RedisKeys, RedisStore, SessionFilter, Store, StoreError};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

const USER: &str = "zelda.hyrule-7f3";
const EMAIL: &str = "zelda@hyrule.example";
const REALM: &str = "realm-kokiri";

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// A store on its own prefix, and a probe on the same Redis.
async fn standalone() -> Option<(RedisStore, Probe, String)> {
    let deployment = rd::standalone().await?;
    let settings = deployment.settings();
    let prefix = settings.key_prefix.clone();
    let store = RedisStore::connect(settings, rd::keys()).await.unwrap();
    Some((store, Probe::standalone(&deployment.server.url()).await, prefix))
}

async fn cluster() -> Option<(RedisStore, Probe, String)> {
    let deployment = rd::cluster().await?;
    let settings = deployment.settings();
    let prefix = settings.key_prefix.clone();
    let store = RedisStore::connect(settings, rd::keys()).await.unwrap();
    Some((store, Probe::cluster(deployment).await, prefix))
}

async fn sentinel() -> Option<(RedisStore, Probe, String)> {
    let deployment = rd::sentinel_set().await?;
    let settings = deployment.settings();
    let prefix = settings.key_prefix.clone();
    let store = RedisStore::connect(settings, rd::keys()).await.unwrap();
    Some((store, Probe::sentinel(deployment).await, prefix))
}

/// Writes sessions and realm state full of recognisable text, then reads every key name and
/// every byte stored under the prefix: none of it may show.
async fn nothing_readable_in_any_key_or_value(store: RedisStore, mut probe: Probe, prefix: &str) {
    let mut needles: Vec<(&str, Vec<u8>)> = Vec::new();
    let mut records = Vec::new();
    for created in 0..3 {
        let (token, mut record) = sample_session(REALM, USER, at(created));
        record.display_name = Some("Princess Zelda of Hyrule".into());
        record.email = Some(EMAIL.into());
        record.ip = Some("198.51.100.77".into());
        record.user_agent = Some("HyruleBrowser/9.1".into());
        record.attributes = BTreeMap::from([("quest".to_owned(), serde_json::json!("triforce-of-wisdom"))]);
        store.create_session(&record).await.unwrap();
        needles.push(("token", token.expose().into_bytes()));
        needles.push(("token hash", token.hash().as_bytes().to_vec()));
        needles.push(("token hash in hex", hex(token.hash().as_bytes()).into_bytes()));
        needles.push(("session id", record.id.as_str().as_bytes().to_vec()));
        records.push(record);
    }
    assert!(store.touch_session(&records[0].token_hash, at(60), at(360)).await.unwrap());
    store.delete_session(&records[2].token_hash).await.unwrap();
    let state = RealmState {
        default_cookie_name: "sd_c0ffee42".into(),
        cookie_name: "hyrule_session".into(),
        sessions_not_before: None,
    };
    store.put_realm_state(REALM, &state).await.unwrap();
    for (what, text) in [
        ("user", USER),
        ("email", EMAIL),
        ("realm", REALM),
        ("display name", "Zelda"),
        ("ip", "198.51.100.77"),
        ("user agent", "HyruleBrowser"),
        ("attribute", "triforce"),
        ("group", "dev"),
        ("cookie name", "hyrule_session"),
        ("default cookie name", "sd_c0ffee42"),
    ] {
        needles.push((what, text.as_bytes().to_vec()));
    }

    let keys = probe.keys(prefix).await;
    // Two sessions (hash, two pointers, three sets, the expiry index), realm state, index key.
    assert!(keys.len() >= 10, "too few keys to be a fair check: {keys:?}");
    let key_id = RedisKey::from_secret(rd::SECRET).id();
    for key in &keys {
        for (what, needle) in &needles {
            assert!(!contains(key.as_bytes(), needle), "the {what} shows in key {key}");
        }
        for value in probe.dump(key).await {
            for (what, needle) in &needles {
                assert!(!contains(&value, needle), "the {what} shows in the value of {key}");
            }
        }
    }
    // Sealed values carry the format version and the current key's id, and nothing else is
    // stored in the clear but hex names and numbers.
    let sealed_keys = keys.iter().filter(|k| k.starts_with(&format!("{prefix}r:")) || k.ends_with("index-key"));
    for key in sealed_keys {
        let value = probe.get(key).await;
        assert_eq!((value[0], hex(&value[1..5])), (1, key_id.clone()), "{key}");
    }
    for key in probe.keys_of(prefix, "s").await {
        for field in ["r", "t"] {
            let value = probe.hget(&key, field).await;
            assert_eq!((value[0], hex(&value[1..5])), (1, key_id.clone()), "{key} {field}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn standalone_holds_nothing_readable() {
    let Some((store, probe, prefix)) = standalone().await else { return };
    nothing_readable_in_any_key_or_value(store, probe, &prefix).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sentinel_master_holds_nothing_readable() {
    let Some((store, probe, prefix)) = sentinel().await else { return };
    nothing_readable_in_any_key_or_value(store, probe, &prefix).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_holds_nothing_readable() {
    let Some((store, probe, prefix)) = cluster().await else { return };
    nothing_readable_in_any_key_or_value(store, probe, &prefix).await;
}

/// Log lines written while the guard lives (on this thread: use a current-thread runtime).
struct Logs {
    lines: Arc<Mutex<Vec<u8>>>,
    _guard: tracing::subscriber::DefaultGuard,
}

impl Logs {
    fn capture() -> Self {
        let lines = Arc::new(Mutex::new(Vec::new()));
        let sink = lines.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::WARN)
            .with_ansi(false)
            .with_writer(move || Sink(sink.clone()))
            .finish();
        Self { lines, _guard: tracing::subscriber::set_default(subscriber) }
    }

    fn take(&self) -> String {
        String::from_utf8(std::mem::take(&mut *self.lines.lock().unwrap())).unwrap()
    }
}

struct Sink(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Sink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The victim is gone by every way of finding it, and the bystander is untouched.
async fn assert_absent(store: &RedisStore, victim: &SessionRecord, bystander: &SessionRecord, how: &str) {
    assert_eq!(store.session_by_token(&victim.token_hash).await.unwrap(), None, "{how}: by token");
    assert_eq!(store.session_by_id(&victim.id).await.unwrap(), None, "{how}: by id");
    let mine = SessionFilter { realm: Some(REALM.into()), user: Some(USER.into()) };
    for filter in [mine, SessionFilter::default(), SessionFilter { realm: Some(REALM.into()), user: None }] {
        assert_eq!(store.list_sessions(&filter).await.unwrap(), vec![bystander.clone()], "{how}: {filter:?}");
    }
    assert_eq!(store.session_by_token(&bystander.token_hash).await.unwrap(), Some(bystander.clone()), "{how}");
}

/// The one session key under `prefix`.
async fn only_session_key(probe: &Probe, prefix: &str) -> String {
    let keys = probe.keys_of(prefix, "s").await;
    assert_eq!(keys.len(), 1, "{keys:?}");
    keys.into_iter().next().unwrap()
}

/// Every way a stored session can be spoiled: each is absent (and logged), never a panic or an
/// error, and the user's other sessions are untouched.
#[tokio::test(flavor = "current_thread")]
async fn spoiled_session_values_are_absent_and_logged() {
    if rd::standalone().await.is_none() {
        return;
    }
    let logs = Logs::capture();
    type Spoil = fn(Vec<u8>, &SessionRecord) -> Vec<u8>;
    let spoil_record: [(&str, Spoil); 6] = [
        ("flipped byte", |mut v, _| {
            let middle = v.len() / 2;
            v[middle] ^= 0x40;
            v
        }),
        ("truncated", |v, _| v[..v.len() - 1].to_vec()),
        ("cut to a header", |v, _| v[..20].to_vec()),
        ("unknown key id", |mut v, _| {
            v[1..5].copy_from_slice(&[0xde, 0xad, 0xbe, 0xef]);
            v
        }),
        ("another app's plain value", |_, record| serde_json::to_vec(record).unwrap()),
        ("empty", |_, _| Vec::new()),
    ];
    for (how, spoil) in spoil_record {
        for field in ["r", "t"] {
            let (store, mut probe, prefix) = standalone().await.unwrap();
            let (_, victim) = sample_session(REALM, USER, T0);
            store.create_session(&victim).await.unwrap();
            let key = only_session_key(&probe, &prefix).await;
            let (_, bystander) = sample_session(REALM, USER, at(1));
            store.create_session(&bystander).await.unwrap();

            let value = probe.hget(&key, field).await;
            probe.hset(&key, field, &spoil(value, &victim)).await;

            let how = format!("{how} in {field}");
            assert_absent(&store, &victim, &bystander, &how).await;
            assert!(logs.take().contains("treated as absent"), "{how}: not logged");
            // Ending the user's sessions still works and reports only what could be read.
            let ended = store.delete_user_sessions(REALM, USER, None).await.unwrap();
            assert_eq!(ended, vec![bystander.clone()], "{how}");
            assert_eq!(probe.keys_of(&prefix, "s").await, Vec::<String>::new(), "{how}: spoiled session left behind");
        }
    }
}

/// Another application's value of another type at a session key or a pointer is absent too.
#[tokio::test(flavor = "current_thread")]
async fn foreign_types_at_our_keys_are_absent() {
    let Some((store, mut probe, prefix)) = standalone().await else { return };
    let logs = Logs::capture();
    let (_, victim) = sample_session(REALM, USER, T0);
    store.create_session(&victim).await.unwrap();
    let key = only_session_key(&probe, &prefix).await;
    let (_, bystander) = sample_session(REALM, USER, at(1));
    store.create_session(&bystander).await.unwrap();

    probe.query::<()>(::redis::cmd("DEL").arg(&key)).await;
    probe.set(&key, br#"{"user":"zelda.hyrule-7f3"}"#).await;
    assert_absent(&store, &victim, &bystander, "string at the session key").await;
    assert!(!store.touch_session(&victim.token_hash, at(5), at(500)).await.unwrap());
    assert!(logs.take().contains("another type"));
    assert_eq!(store.delete_session(&victim.token_hash).await.unwrap(), None);
    // The foreign value is not ours to delete.
    assert_eq!(probe.get(&key).await, br#"{"user":"zelda.hyrule-7f3"}"#);
}

/// Pointers that lead elsewhere, or nowhere, never return another session.
#[tokio::test(flavor = "current_thread")]
async fn misleading_pointers_never_return_another_session() {
    for cluster_mode in [false, true] {
        let setup = if cluster_mode { cluster().await } else { standalone().await };
        let Some((store, mut probe, prefix)) = setup else { return };
        let logs = Logs::capture();
        let (_, victim) = sample_session(REALM, USER, T0);
        store.create_session(&victim).await.unwrap();
        let victim_pointers = (probe.keys_of(&prefix, "t").await, probe.keys_of(&prefix, "i").await);
        let (_, bystander) = sample_session(REALM, "somebody-else", at(1));
        store.create_session(&bystander).await.unwrap();
        let bystander_id_pointer =
            probe.keys_of(&prefix, "i").await.into_iter().find(|k| !victim_pointers.1.contains(k)).unwrap();
        let (token_pointer, id_pointer) = (&victim_pointers.0[0], &victim_pointers.1[0]);

        // The victim's id pointer now leads to the bystander's record.
        let elsewhere = probe.get(&bystander_id_pointer).await;
        probe.set(id_pointer, &elsewhere).await;
        assert_eq!(store.session_by_id(&victim.id).await.unwrap(), None, "cluster: {cluster_mode}");

        for garbage in [&b"zz"[..], b"0", b"not a bucket at all", b""] {
            probe.set(token_pointer, garbage).await;
            probe.set(id_pointer, garbage).await;
            assert_eq!(store.session_by_token(&victim.token_hash).await.unwrap(), None);
            assert_eq!(store.session_by_id(&victim.id).await.unwrap(), None);
            assert!(!store.touch_session(&victim.token_hash, at(5), at(500)).await.unwrap());
            assert!(logs.take().contains("malformed session pointer"), "{garbage:?} not logged");
        }
        probe.query::<()>(::redis::cmd("DEL").arg(token_pointer)).await;
        probe.query::<()>(::redis::cmd("HSET").arg(token_pointer).arg("f").arg("v")).await;
        assert_eq!(store.session_by_token(&victim.token_hash).await.unwrap(), None);
        assert_eq!(store.delete_session(&victim.token_hash).await.unwrap(), None);
        assert_eq!(store.session_by_token(&bystander.token_hash).await.unwrap(), Some(bystander));
    }
}

/// A session value copied onto another session's key does not open there.
#[tokio::test(flavor = "current_thread")]
async fn a_value_moved_to_another_key_does_not_open() {
    let Some((store, mut probe, prefix)) = standalone().await else { return };
    let (_, victim) = sample_session(REALM, USER, T0);
    store.create_session(&victim).await.unwrap();
    let victim_key = only_session_key(&probe, &prefix).await;
    let (_, source) = sample_session(REALM, USER, at(1));
    store.create_session(&source).await.unwrap();
    let source_key = probe.keys_of(&prefix, "s").await.into_iter().find(|k| *k != victim_key).unwrap();

    for field in ["r", "t"] {
        let moved = probe.hget(&source_key, field).await;
        probe.hset(&victim_key, field, &moved).await;
        assert_absent(&store, &victim, &source, &format!("{field} moved")).await;
    }

    // Realm state copied onto another realm's key opens only where it was written.
    let main = RealmState { default_cookie_name: "sd_1".into(), cookie_name: "one".into(), sessions_not_before: None };
    let other = RealmState { default_cookie_name: "sd_2".into(), cookie_name: "two".into(), sessions_not_before: None };
    store.put_realm_state("main", &main).await.unwrap();
    let main_key = probe.keys_of(&prefix, "r").await.pop().unwrap();
    store.put_realm_state("other", &other).await.unwrap();
    let other_key = probe.keys_of(&prefix, "r").await.into_iter().find(|k| *k != main_key).unwrap();
    let copied = probe.get(&main_key).await;
    probe.set(&other_key, &copied).await;
    assert_eq!(store.realm_state("other").await.unwrap(), None);
    assert_eq!(store.realm_state("main").await.unwrap(), Some(main));
}

/// Realm state that was altered or written by someone else is absent, not an error.
#[tokio::test(flavor = "current_thread")]
async fn spoiled_realm_state_is_absent() {
    let Some((store, mut probe, prefix)) = standalone().await else { return };
    let logs = Logs::capture();
    let state = RealmState { default_cookie_name: "sd_1".into(), cookie_name: "one".into(), sessions_not_before: None };
    store.put_realm_state("main", &state).await.unwrap();
    let key = probe.keys_of(&prefix, "r").await.pop().unwrap();
    let sealed = probe.get(&key).await;

    let mut flipped = sealed.clone();
    *flipped.last_mut().unwrap() ^= 1;
    for spoiled in [flipped, sealed[..sealed.len() - 3].to_vec(), serde_json::to_vec(&state).unwrap()] {
        probe.set(&key, &spoiled).await;
        assert_eq!(store.realm_state("main").await.unwrap(), None);
        assert!(logs.take().contains("treated as absent"));
    }
    probe.query::<()>(::redis::cmd("DEL").arg(&key)).await;
    probe.query::<()>(::redis::cmd("SADD").arg(&key).arg("x")).await;
    assert_eq!(store.realm_state("main").await.unwrap(), None);
    store.put_realm_state("main", &state).await.unwrap();
    assert_eq!(store.realm_state("main").await.unwrap(), Some(state));
}

/// Rotating the secret: the previous secret still opens what it sealed (and the index key is
/// sealed again under the new one), new writes use the new one, and once the previous secret is
/// dropped its values are absent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotation_opens_previous_values_and_writes_under_the_current_key() {
    let Some(deployment) = rd::standalone().await else { return };
    let settings = deployment.settings();
    let prefix = settings.key_prefix.clone();
    let mut probe = Probe::standalone(&deployment.server.url()).await;
    let (old, new) = (
        RedisKey::from_secret(b"the old secret, 32 bytes or more!"),
        RedisKey::from_secret(b"the new secret, 32 bytes or more!"),
    );

    let before = RedisStore::connect(settings.clone(), RedisKeys::new(old.clone())).await.unwrap();
    let (_, early) = sample_session(REALM, USER, T0);
    before.create_session(&early).await.unwrap();
    let state = RealmState { default_cookie_name: "sd_1".into(), cookie_name: "one".into(), sessions_not_before: None };
    before.put_realm_state(REALM, &state).await.unwrap();

    let rotating =
        RedisStore::connect(settings.clone(), RedisKeys::new(new.clone()).with_previous(old.clone())).await.unwrap();
    assert_eq!(rotating.session_by_token(&early.token_hash).await.unwrap(), Some(early.clone()));
    assert_eq!(rotating.realm_state(REALM).await.unwrap(), Some(state));
    let (_, late) = sample_session(REALM, USER, at(1));
    rotating.create_session(&late).await.unwrap();
    assert_eq!(rotating.list_sessions(&SessionFilter::default()).await.unwrap(), vec![early.clone(), late.clone()]);
    let index = probe.get(&format!("{prefix}index-key")).await;
    assert_eq!(hex(&index[1..5]), new.id(), "the index key is sealed under the new secret");
    // The running old instance keeps working with what it can open.
    assert_eq!(before.session_by_token(&early.token_hash).await.unwrap(), Some(early.clone()));
    assert_eq!(before.session_by_token(&late.token_hash).await.unwrap(), None);

    let after = RedisStore::connect(settings.clone(), RedisKeys::new(new.clone())).await.unwrap();
    assert_eq!(after.session_by_token(&late.token_hash).await.unwrap(), Some(late.clone()));
    assert_eq!(after.session_by_token(&early.token_hash).await.unwrap(), None, "sealed under the dropped secret");
    assert_eq!(after.list_sessions(&SessionFilter::default()).await.unwrap(), vec![late]);

    // An instance with neither secret refuses to start instead of writing where nobody can read.
    let wrong = RedisStore::connect(settings.clone(), RedisKeys::new(old)).await.unwrap_err();
    assert!(matches!(wrong, StoreError::Corrupt { what: "redis index key", .. }), "{wrong:?}");
}

/// The index key: a spoiled one stops startup; a lost one is put back by `ping`; one replaced
/// by another instance's fails `ping` so that instance is restarted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn index_key_is_checked_and_restored() {
    let Some(deployment) = rd::standalone().await else { return };
    let settings = deployment.settings();
    let name = format!("{}index-key", settings.key_prefix);
    let mut probe = Probe::standalone(&deployment.server.url()).await;
    let store = RedisStore::connect(settings.clone(), rd::keys()).await.unwrap();
    let (_, record) = sample_session(REALM, USER, T0);
    store.create_session(&record).await.unwrap();
    let sealed = probe.get(&name).await;

    // Lost (a flush): ping puts it back, and a new instance finds the same sessions.
    probe.query::<()>(::redis::cmd("DEL").arg(&name)).await;
    store.ping().await.unwrap();
    let fresh = RedisStore::connect(settings.clone(), rd::keys()).await.unwrap();
    assert_eq!(fresh.session_by_token(&record.token_hash).await.unwrap(), Some(record.clone()));

    // Replaced by another instance's: this one must not go on as if nothing happened.
    probe.query::<()>(::redis::cmd("DEL").arg(&name)).await;
    let other = RedisStore::connect(settings.clone(), rd::keys()).await.unwrap();
    other.ping().await.unwrap();
    let err = store.ping().await.unwrap_err();
    assert!(matches!(err, StoreError::Corrupt { what: "redis index key", .. }), "{err:?}");

    // Spoiled: startup refuses.
    let mut spoiled = sealed;
    spoiled[40] ^= 1;
    probe.set(&name, &spoiled).await;
    let err = RedisStore::connect(settings.clone(), rd::keys()).await.unwrap_err();
    assert!(matches!(err, StoreError::Corrupt { what: "redis index key", .. }), "{err:?}");
    probe.query::<()>(::redis::cmd("DEL").arg(&name)).await;
    probe.query::<()>(::redis::cmd("HSET").arg(&name).arg("a").arg("b")).await;
    let err = RedisStore::connect(settings, rd::keys()).await.unwrap_err();
    assert!(matches!(err, StoreError::Corrupt { what: "redis index key", .. }), "{err:?}");
}
