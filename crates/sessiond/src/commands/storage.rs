//! `sessiond storage copy`: moving sessions and realm state from one store to another, such as
//! from the embedded store of one machine to the Redis store several instances share.

use super::{print_json, print_stdout};
use crate::cli::StorageCopy;
use crate::config::{self, Config, StorageConfig};
use anyhow::{Context as _, bail};
use serde::Serialize;
use sessiond_core::time::Timestamp;
use sessiond_server::clock::{Clock as _, SystemClock};
use sessiond_store::{AnyStore, EmbeddedStore, RedisMode, RedisSettings, SessionFilter, Store, StoreError};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use tokio::task::JoinSet;

/// How many sessions are written to the target at once.
const PARALLEL_WRITES: usize = 64;

/// `sessiond storage copy --from FILE --to FILE`: copies every live session of the store that
/// `--from` configures into the store that `--to` configures, and the state (cookie name) of
/// every realm named in either file.
///
/// Each file is read on its own, without the `SESSIOND__` environment (which would apply to
/// both). A session the target already holds is left as it is and counted; a session past its
/// deadline is not copied. Tokens stay valid: the stores keep token hashes, which do not depend
/// on the secret.
///
/// Text output: `copied N sessions (A already there, E expired and left out) and the state of R
/// realms`. `--json`: `{"sessions_copied":N,"sessions_already_there":A,"sessions_expired":E,
/// "realms_copied":R}`.
///
/// # Errors
/// A configuration that does not load; both files naming the same store; a memory store (it
/// lives only inside its server); an embedded store held by a running server, or a source file
/// that does not exist; a store that fails or does not answer. Sessions written before a
/// failure stay in the target, and running the command again skips them.
pub(crate) async fn storage_copy(args: &StorageCopy, json: bool) -> anyhow::Result<()> {
    let from = load("--from", &args.from)?;
    let to = load("--to", &args.to)?;
    if same_store(&from.storage, &to.storage) {
        bail!(
            "--from {} and --to {} name the same store; copy between two different stores",
            args.from.display(),
            args.to.display()
        );
    }
    let source = open("--from", &args.from, &from, Role::Source).await?;
    let target = open("--to", &args.to, &to, Role::Target).await?;
    let realms: BTreeSet<String> = from.realms.iter().chain(&to.realms).map(|r| r.name.clone()).collect();
    let report = copy(&source, &target, &realms, SystemClock.now()).await?;
    for realm in &to.realms {
        let copied = report.cookie_names.iter().find(|(name, _)| *name == realm.name).map(|(_, cookie)| cookie);
        if let (Some(copied), Some(configured)) = (copied, &realm.cookie.name) {
            if copied != configured {
                eprintln!(
                    "warning: realm {name}: {to} sets cookie name {configured:?}, but the copied sessions use {copied:?}; \
                     a server started on {to} ends them (set realms.{name}.cookie.name: {copied} to keep them)",
                    name = realm.name,
                    to = args.to.display(),
                );
            }
        }
    }
    let counts = report.counts;
    if json {
        return print_json(&counts);
    }
    let sessions = if counts.sessions_copied == 1 { "session" } else { "sessions" };
    let realms = if counts.realms_copied == 1 { "realm" } else { "realms" };
    print_stdout(&format!(
        "copied {} {sessions} ({} already there, {} expired and left out) and the state of {} {realms} from {} to {}\n",
        counts.sessions_copied,
        counts.sessions_already_there,
        counts.sessions_expired,
        counts.realms_copied,
        args.from.display(),
        args.to.display(),
    ))
}

/// What a copy did; also the `--json` output.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub(crate) struct Counts {
    /// Sessions written to the target.
    pub(crate) sessions_copied: usize,
    /// Sessions the target held already (same token or id), left as they were.
    pub(crate) sessions_already_there: usize,
    /// Sessions past their deadline, not copied.
    pub(crate) sessions_expired: usize,
    /// Realms whose stored state was copied.
    pub(crate) realms_copied: usize,
}

/// A copy's counts, and the cookie name of each realm whose state was copied.
#[derive(Debug, Default)]
pub(crate) struct Report {
    pub(crate) counts: Counts,
    pub(crate) cookie_names: Vec<(String, String)>,
}

/// Copies the state of each of `realms` that `source` holds, then every session live at `now`.
///
/// Realm state goes first: a server started on the target must present the copied sessions'
/// cookies under the name they were issued with.
///
/// # Errors
/// The first store failure; what was written before it stays written.
pub(crate) async fn copy<S: Store, T: Store>(
    source: &S,
    target: &T,
    realms: &BTreeSet<String>,
    now: Timestamp,
) -> Result<Report, StoreError> {
    let mut report = Report::default();
    for realm in realms {
        if let Some(state) = source.realm_state(realm).await? {
            target.put_realm_state(realm, &state).await?;
            report.counts.realms_copied += 1;
            report.cookie_names.push((realm.clone(), state.cookie_name));
        }
    }
    let mut writes = JoinSet::new();
    for record in source.list_sessions(&SessionFilter::default()).await? {
        if record.expires_at <= now {
            report.counts.sessions_expired += 1;
            continue;
        }
        if writes.len() >= PARALLEL_WRITES {
            if let Some(done) = writes.join_next().await {
                tally(&mut report.counts, done)?;
            }
        }
        let target = target.clone();
        writes.spawn(async move { target.create_session(&record).await });
    }
    while let Some(done) = writes.join_next().await {
        tally(&mut report.counts, done)?;
    }
    Ok(report)
}

fn tally(counts: &mut Counts, done: Result<Result<(), StoreError>, tokio::task::JoinError>) -> Result<(), StoreError> {
    match done {
        Ok(Ok(())) => counts.sessions_copied += 1,
        Ok(Err(StoreError::Conflict)) => counts.sessions_already_there += 1,
        Ok(Err(e)) => return Err(e),
        // A write task only ends early when it panicked: a bug, reported as a failed write.
        Err(e) => return Err(StoreError::Unavailable { backend: "copy", source: Box::new(e) }),
    }
    Ok(())
}

/// Loads one side's configuration, without the environment.
fn load(flag: &str, path: &Path) -> anyhow::Result<Config> {
    config::load(Some(path), std::iter::empty()).map_err(|e| anyhow::anyhow!("{flag} {}: {e}", path.display()))
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Role {
    Source,
    Target,
}

async fn open(flag: &str, file: &Path, config: &Config, role: Role) -> anyhow::Result<AnyStore> {
    match &config.storage {
        StorageConfig::Memory => bail!(
            "{flag} {}: storage.kind is memory; a memory store lives only inside its server and cannot be copied",
            file.display()
        ),
        StorageConfig::Embedded { path } => {
            if role == Role::Source && !path.exists() {
                bail!("{flag} {}: there is no embedded store at {}", file.display(), path.display());
            }
            if role == Role::Target {
                if let Some(dir) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
                    crate::serve::create_private_dir(dir)?;
                }
            }
            let owned = path.clone();
            let opened =
                tokio::task::spawn_blocking(move || EmbeddedStore::open(&owned)).await.context("opening the store")?;
            match opened {
                Ok(store) => Ok(AnyStore::Embedded(store)),
                Err(e) if e.is_locked() => bail!(
                    "{flag} {}: the store {} is in use by another process (is a sessiond server running on it?); \
                     stop that server first: copying needs the file to itself",
                    file.display(),
                    path.display()
                ),
                Err(e) => {
                    Err(e).with_context(|| format!("{flag} {}: opening store {}", file.display(), path.display()))
                }
            }
        }
        StorageConfig::Redis(settings) => {
            let store = crate::serve::open_redis(config, settings)
                .await
                .with_context(|| format!("{flag} {}", file.display()))?;
            let store = AnyStore::Redis(store);
            store.ping().await.with_context(|| format!("{flag} {}: redis does not answer", file.display()))?;
            Ok(store)
        }
    }
}

/// Whether two configurations name one store: the same database file, or the same Redis
/// deployment (an address in common) under the same key prefix.
fn same_store(a: &StorageConfig, b: &StorageConfig) -> bool {
    match (a, b) {
        (StorageConfig::Embedded { path: a }, StorageConfig::Embedded { path: b }) => absolute(a) == absolute(b),
        (StorageConfig::Redis(a), StorageConfig::Redis(b)) => {
            a.key_prefix == b.key_prefix && !redis_places(a).is_disjoint(&redis_places(b))
        }
        _ => false,
    }
}

fn absolute(path: &Path) -> PathBuf {
    path.canonicalize().or_else(|_| std::path::absolute(path)).unwrap_or_else(|_| path.to_path_buf())
}

/// The addresses a Redis configuration reaches, normalised (`host:port/db`), credentials aside.
fn redis_places(settings: &RedisSettings) -> BTreeSet<String> {
    match &settings.mode {
        RedisMode::Standalone { url } => BTreeSet::from([place(url, None)]),
        RedisMode::Sentinel { master, nodes, db, .. } => {
            nodes.iter().map(|node| format!("sentinel {master} {}", place(node, *db))).collect()
        }
        RedisMode::Cluster { nodes } => nodes.iter().map(|node| format!("cluster {}", place(node, None))).collect(),
    }
}

/// `host:port/db` of a URL or a bare `host:port` (`path?db=N` for a socket).
fn place(address: &str, db: Option<i64>) -> String {
    let text = if address.contains("://") { address.to_owned() } else { format!("redis://{address}") };
    let Ok(url) = url::Url::parse(&text) else { return address.to_owned() };
    let query_db = url.query_pairs().find(|(k, _)| k == "db").map(|(_, v)| v.into_owned());
    match url.scheme() {
        "unix" | "redis+unix" => format!("{}/{}", url.path(), query_db.unwrap_or_else(|| "0".to_owned())),
        _ => {
            let host = url.host_str().unwrap_or_default().to_ascii_lowercase();
            let port = url.port().unwrap_or(6379);
            let path_db = url.path().trim_start_matches('/');
            let db = match db {
                Some(db) => db.to_string(),
                None if path_db.is_empty() => "0".to_owned(),
                None => path_db.to_owned(),
            };
            format!("{host}:{port}/{db}")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::commands::ops::tests::{NOW, record};
    use sessiond_store::{MemoryStore, RealmState};

    fn realms(names: &[&str]) -> BTreeSet<String> {
        names.iter().map(|n| (*n).to_owned()).collect()
    }

    fn state(name: &str) -> RealmState {
        RealmState { default_cookie_name: "sd_00000000".into(), cookie_name: name.into(), sessions_not_before: None }
    }

    #[tokio::test]
    async fn copies_live_sessions_and_named_realm_states() {
        let source = MemoryStore::default();
        let live = record("main", "alice", 600);
        let other_realm = record("old", "bob", 600);
        let dead = record("main", "carol", 0);
        for r in [&live, &other_realm, &dead] {
            source.create_session(r).await.unwrap();
        }
        source.put_realm_state("main", &state("sid")).await.unwrap();
        source.put_realm_state("unnamed", &state("x")).await.unwrap();
        let target = MemoryStore::default();

        let report = copy(&source, &target, &realms(&["main", "partners"]), NOW).await.unwrap();
        assert_eq!(
            report.counts,
            Counts { sessions_copied: 2, sessions_already_there: 0, sessions_expired: 1, realms_copied: 1 }
        );
        assert_eq!(report.cookie_names, [("main".to_owned(), "sid".to_owned())]);
        assert_eq!(target.session_by_token(&live.token_hash).await.unwrap(), Some(live.clone()));
        assert_eq!(target.session_by_token(&other_realm.token_hash).await.unwrap(), Some(other_realm));
        assert_eq!(target.session_by_token(&dead.token_hash).await.unwrap(), None);
        assert_eq!(target.realm_state("main").await.unwrap(), Some(state("sid")));
        assert_eq!(target.realm_state("unnamed").await.unwrap(), None, "only realms named in a configuration");
    }

    #[tokio::test]
    async fn sessions_already_in_the_target_are_counted_and_left_alone() {
        let source = MemoryStore::default();
        let target = MemoryStore::default();
        let a = record("main", "alice", 600);
        let b = record("main", "bob", 600);
        source.create_session(&a).await.unwrap();
        source.create_session(&b).await.unwrap();
        let mut touched = a.clone();
        touched.last_seen_at = NOW + std::time::Duration::from_secs(5);
        target.create_session(&touched).await.unwrap();

        let report = copy(&source, &target, &realms(&[]), NOW).await.unwrap();
        assert_eq!(report.counts.sessions_copied, 1);
        assert_eq!(report.counts.sessions_already_there, 1);
        let kept = target.session_by_token(&a.token_hash).await.unwrap().unwrap();
        assert_eq!(kept.last_seen_at, touched.last_seen_at, "the target's own record wins");

        let again = copy(&source, &target, &realms(&[]), NOW).await.unwrap();
        assert_eq!(again.counts.sessions_copied, 0);
        assert_eq!(again.counts.sessions_already_there, 2);
    }

    #[tokio::test]
    async fn many_sessions_are_all_copied() {
        let source = MemoryStore::default();
        for i in 0..(PARALLEL_WRITES * 3 + 7) {
            source.create_session(&record("main", &format!("user{i}"), 600)).await.unwrap();
        }
        let target = MemoryStore::default();
        let report = copy(&source, &target, &realms(&["main"]), NOW).await.unwrap();
        assert_eq!(report.counts.sessions_copied, PARALLEL_WRITES * 3 + 7);
        assert_eq!(target.list_sessions(&SessionFilter::default()).await.unwrap().len(), PARALLEL_WRITES * 3 + 7);
    }

    fn redis(mode: RedisMode, prefix: &str) -> StorageConfig {
        let mut settings = RedisSettings::new(mode);
        settings.key_prefix = prefix.to_owned();
        StorageConfig::Redis(settings)
    }

    fn standalone(url: &str) -> RedisMode {
        RedisMode::Standalone { url: url.to_owned() }
    }

    #[test]
    fn the_same_redis_is_recognised_whatever_the_spelling() {
        let a = redis(standalone("redis://127.0.0.1:6379"), "sessiond:");
        let same = [
            redis(standalone("redis://:pw@127.0.0.1"), "sessiond:"),
            redis(standalone("redis://127.0.0.1:6379/0"), "sessiond:"),
            redis(standalone("rediss://127.0.0.1:6379/"), "sessiond:"),
        ];
        for b in &same {
            assert!(same_store(&a, b), "{b:?}");
        }
        let different = [
            redis(standalone("redis://127.0.0.1:6380"), "sessiond:"),
            redis(standalone("redis://127.0.0.1:6379/1"), "sessiond:"),
            redis(standalone("redis://127.0.0.1:6379"), "other:"),
            redis(standalone("redis://10.0.0.1:6379"), "sessiond:"),
        ];
        for b in &different {
            assert!(!same_store(&a, b), "{b:?}");
        }
        let cluster =
            |nodes: &[&str]| redis(RedisMode::Cluster { nodes: nodes.iter().map(|n| (*n).to_owned()).collect() }, "p:");
        assert!(same_store(&cluster(&["a:7000", "b:7000"]), &cluster(&["redis://B:7000"])));
        assert!(!same_store(&cluster(&["a:7000"]), &cluster(&["a:7001"])));
        let sentinel = |master: &str, db| {
            redis(
                RedisMode::Sentinel { master: master.into(), nodes: vec!["s:26379".into()], password: None, db },
                "p:",
            )
        };
        assert!(same_store(&sentinel("m", None), &sentinel("m", Some(0))));
        assert!(!same_store(&sentinel("m", None), &sentinel("n", None)));
        assert!(!same_store(&sentinel("m", None), &sentinel("m", Some(2))));
    }

    #[test]
    fn the_same_file_is_recognised_and_different_kinds_never_match() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("s.redb");
        std::fs::write(&file, b"").unwrap();
        let a = StorageConfig::Embedded { path: file };
        let b = StorageConfig::Embedded { path: dir.path().join(".").join("s.redb") };
        assert!(same_store(&a, &b));
        assert!(!same_store(&a, &StorageConfig::Embedded { path: dir.path().join("t.redb") }));
        assert!(!same_store(&a, &redis(standalone("redis://127.0.0.1"), "sessiond:")));
        assert!(!same_store(&StorageConfig::Memory, &StorageConfig::Memory), "refused for being memory instead");
    }
}
