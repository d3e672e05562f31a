//! A realm's cookie name at run time: set it, reset it to the realm's generated default, and
//! follow a change made elsewhere (another instance, `sessiond realm cookie-name`).
//!
//! The name in force lives in the store with the realm's state, so every instance agrees on it;
//! each one re-reads it on every background tick and swaps its realm when it changed. Changing
//! the name ends every session of the realm: their cookies would no longer be presented under
//! the new name, and a session that quietly outlived a rename would surprise whoever renamed.
//! Client-side sessions, which the store does not hold, end by the cut kept in the same state
//! ([`RealmState::sessions_not_before`]), which moves with the name.

use crate::audit::{AuditEvent, AuditKind};
use crate::revocation;
use crate::state::{App, CookieNameOutcome, Realm};
use sessiond_core::cookie::{default_cookie_name, validate_cookie_name};
use sessiond_core::time::Timestamp;
use sessiond_store::{EntryKind, RealmState, Store, StoreError};
use tracing::{info, warn};

/// What to do with a realm's cookie name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CookieNameChange {
    /// Use this name (already validated for the realm).
    Set(String),
    /// Go back to the realm's generated default.
    Reset,
    /// Keep the name in force (a realm seen for the first time gets its default).
    Keep,
}

/// Applies `change` to the stored state of `realm` and, when the name in force changes, ends
/// every session of the realm. A realm without stored state gets its default generated first.
///
/// # Errors
/// Store errors; nothing is changed when reading the state fails.
pub async fn change_cookie_name(
    store: &impl Store,
    realm: &str,
    change: &CookieNameChange,
    now: Timestamp,
) -> Result<CookieNameOutcome, StoreError> {
    let stored = store.realm_state(realm).await?;
    let mut state = stored.clone().unwrap_or_else(|| {
        let name = default_cookie_name();
        RealmState { default_cookie_name: name.clone(), cookie_name: name, sessions_not_before: None }
    });
    state.cookie_name = match change {
        CookieNameChange::Set(name) => name.clone(),
        CookieNameChange::Reset => state.default_cookie_name.clone(),
        CookieNameChange::Keep => state.cookie_name.clone(),
    };
    let legacy_cut = legacy_realm_cut(store, realm, now).await?;
    if let Some(at) = legacy_cut {
        state.sessions_not_before = state.sessions_not_before.max(Some(at));
    }
    let mut sessions_ended = None;
    if stored.as_ref() != Some(&state) {
        if stored.as_ref().is_some_and(|s| s.cookie_name != state.cookie_name) {
            sessions_ended = Some(store.delete_realm_sessions(realm).await?);
            // Client-side sessions are not in the store: the cut keeps their cookies refused
            // even if the name later comes back to the one they were sealed for. The second
            // of the change itself is spared, so that signing in again at once, under the
            // new name, works; a cookie of the old name sealed in that second is refused by
            // its name as long as the name stays new.
            let at = (now - std::time::Duration::from_secs(1)).unix();
            state.sessions_not_before = state.sessions_not_before.max(Some(at));
        }
        store.put_realm_state(realm, &state).await?;
    }
    if legacy_cut.is_some() {
        store.delete_entry(EntryKind::NotBefore, realm).await?;
    }
    let is_default = state.cookie_name == state.default_cookie_name;
    Ok(CookieNameOutcome {
        realm: realm.to_owned(),
        name: state.cookie_name,
        sessions_ended,
        is_default,
        sessions_not_before: state.sessions_not_before,
    })
}

/// The realm's cut as earlier versions kept it: a not-before entry keyed by the realm's name
/// alone. It moves into the realm's state the first time the realm resolves.
async fn legacy_realm_cut(store: &impl Store, realm: &str, now: Timestamp) -> Result<Option<i64>, StoreError> {
    let Some(entry) = store.entry(EntryKind::NotBefore, realm, now).await? else { return Ok(None) };
    Ok(Some(revocation::NotBefore::decode(&entry.value)?.at))
}

/// Why a new cookie name was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CookieNameRefused {
    /// The configuration sets the name, which would come back at the next start.
    #[error("realms.{0}.cookie.name is set in the configuration; change it there")]
    Configured(String),
    /// Not a name the realm's cookie can have.
    #[error("{0}")]
    Invalid(String),
    /// Another realm uses the name.
    #[error("cookie name {name:?} is the cookie of realm {other}")]
    Taken {
        /// The name.
        name: String,
        /// The realm that has it.
        other: String,
    },
}

/// Checks that `realm` may take `change` now: its name is not fixed by configuration, and a
/// new name suits its cookie (`Secure`, `Domain`) and is no other realm's.
///
/// # Errors
/// [`CookieNameRefused`] says why.
pub fn check_change(app: &App, realm: &Realm, change: &CookieNameChange) -> Result<(), CookieNameRefused> {
    if realm.policy.cookie.name.is_some() {
        return Err(CookieNameRefused::Configured(realm.name().to_owned()));
    }
    let CookieNameChange::Set(name) = change else { return Ok(()) };
    validate_cookie_name(name, realm.cookie.secure, realm.policy.cookie.domain.as_deref())
        .map_err(|e| CookieNameRefused::Invalid(e.to_string()))?;
    let realms = app.realms();
    if let Some(other) = realms.iter().find(|r| r.name() != realm.name() && r.cookie.name.eq_ignore_ascii_case(name)) {
        return Err(CookieNameRefused::Taken { name: name.clone(), other: other.name().to_owned() });
    }
    Ok(())
}

/// Puts the outcome of a change in force on this instance at once, and records it.
pub fn adopt(app: &App, realm: &Realm, outcome: &CookieNameOutcome, actor: Option<&str>) {
    if outcome.name != realm.cookie.name || outcome.sessions_not_before != realm.sessions_not_before {
        app.replace_realm(Realm::resolved(realm.policy.clone(), &outcome.name, outcome.sessions_not_before));
        info!(realm = %realm.name(), cookie = %outcome.name, ended = outcome.sessions_ended.unwrap_or(0), "cookie name changed");
    }
    if let Some(ended) = outcome.sessions_ended {
        app.metrics.sessions_ended(crate::metrics::EndKind::Admin, ended);
        let detail = AuditEvent { realm: Some(realm.name()), actor, count: Some(ended), ..AuditEvent::default() };
        app.audit(AuditKind::CookieNameChanged, &detail);
    }
}

/// Background work: adopts cookie names (and the cuts that came with them) changed by another
/// instance or by the command line.
pub async fn follow(app: &App) {
    for realm in app.realms().iter() {
        match app.store.realm_state(realm.name()).await {
            Ok(Some(state))
                if state.cookie_name != realm.cookie.name || state.sessions_not_before != realm.sessions_not_before =>
            {
                info!(realm = %realm.name(), cookie = %state.cookie_name, "cookie name changed elsewhere; following");
                let followed = Realm::resolved(realm.policy.clone(), &state.cookie_name, state.sessions_not_before);
                app.replace_realm(followed);
            }
            Ok(_) => {}
            Err(e) => warn!(realm = %realm.name(), error = %e, "realm state not read"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sessiond_store::MemoryStore;
    use std::time::Duration;

    const NOW: Timestamp = Timestamp::from_unix(1_800_000_000);

    async fn resolve(store: &MemoryStore, change: CookieNameChange, now: Timestamp) -> CookieNameOutcome {
        change_cookie_name(store, "main", &change, now).await.unwrap()
    }

    #[tokio::test]
    async fn a_change_of_name_cuts_the_realm_in_its_state_and_keeping_it_does_not() {
        let store = MemoryStore::default();
        let first = resolve(&store, CookieNameChange::Keep, NOW).await;
        assert_eq!(first.sessions_not_before, None, "a new realm cuts nothing");

        let renamed = resolve(&store, CookieNameChange::Set("acme_session".into()), NOW).await;
        let cut = Some((NOW - Duration::from_secs(1)).unix());
        assert_eq!(renamed.sessions_not_before, cut, "the second before the change");
        let stored = store.realm_state("main").await.unwrap().unwrap();
        assert_eq!((stored.cookie_name.as_str(), stored.sessions_not_before), ("acme_session", cut));

        let kept = resolve(&store, CookieNameChange::Keep, NOW + Duration::from_secs(60)).await;
        assert_eq!(kept.sessions_not_before, cut, "a restart keeps the cut where it was");
        let back = resolve(&store, CookieNameChange::Reset, NOW + Duration::from_secs(60)).await;
        assert_eq!(back.name, first.name);
        assert_eq!(back.sessions_not_before, Some((NOW + Duration::from_secs(59)).unix()), "and a change moves it on");
    }

    #[tokio::test]
    async fn a_cut_kept_as_an_entry_by_earlier_versions_moves_into_the_state() {
        let store = MemoryStore::default();
        resolve(&store, CookieNameChange::Keep, NOW).await;
        let legacy = (NOW - Duration::from_secs(30)).unix();
        let value = format!(r#"{{"at":{legacy}}}"#);
        store.put_entry(EntryKind::NotBefore, "main", value.as_bytes(), None, NOW).await.unwrap();
        revocation::cut_user_sessions(&store, "main", "alice", None, NOW).await.unwrap();

        let outcome = resolve(&store, CookieNameChange::Keep, NOW).await;
        assert_eq!(outcome.sessions_not_before, Some(legacy));
        assert_eq!(store.realm_state("main").await.unwrap().unwrap().sessions_not_before, Some(legacy));
        assert!(store.entry(EntryKind::NotBefore, "main", NOW).await.unwrap().is_none(), "the old entry is gone");
        let alice = revocation::not_before_key("main", "alice");
        assert!(store.entry(EntryKind::NotBefore, &alice, NOW).await.unwrap().is_some(), "a user's cut stays");
    }
}
