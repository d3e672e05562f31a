//! A realm's cookie name at run time: set it, reset it to the realm's generated default, and
//! follow a change made elsewhere (another instance, `sessiond realm cookie-name`).
//!
//! The name in force lives in the store with the realm's state, so every instance agrees on it;
//! each one re-reads it on every background tick and swaps its realm when it changed. Changing
//! the name ends every session of the realm: their cookies would no longer be presented under
//! the new name, and a session that quietly outlived a rename would surprise whoever renamed.

use crate::audit::{AuditEvent, AuditKind};
use crate::revocation;
use crate::state::{App, CookieNameOutcome, Realm};
use sessiond_core::cookie::{default_cookie_name, validate_cookie_name};
use sessiond_core::time::Timestamp;
use sessiond_store::{RealmState, Store, StoreError};
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
        RealmState { default_cookie_name: name.clone(), cookie_name: name }
    });
    state.cookie_name = match change {
        CookieNameChange::Set(name) => name.clone(),
        CookieNameChange::Reset => state.default_cookie_name.clone(),
        CookieNameChange::Keep => state.cookie_name.clone(),
    };
    let mut sessions_ended = None;
    if stored.as_ref() != Some(&state) {
        if stored.as_ref().is_some_and(|s| s.cookie_name != state.cookie_name) {
            sessions_ended = Some(store.delete_realm_sessions(realm).await?);
            // Client-side sessions are not in the store: a cut keeps their cookies refused
            // even if the name later comes back to the one they were sealed for.
            revocation::cut_realm_sessions(store, realm, now).await?;
        }
        store.put_realm_state(realm, &state).await?;
    }
    let is_default = state.cookie_name == state.default_cookie_name;
    Ok(CookieNameOutcome { realm: realm.to_owned(), name: state.cookie_name, sessions_ended, is_default })
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
    if outcome.name != realm.cookie.name {
        app.replace_realm(Realm::new(realm.policy.clone(), &outcome.name));
        info!(realm = %realm.name(), cookie = %outcome.name, ended = outcome.sessions_ended.unwrap_or(0), "cookie name changed");
    }
    if let Some(ended) = outcome.sessions_ended {
        app.metrics.sessions_ended(crate::metrics::EndKind::Admin, ended);
        let detail = AuditEvent { realm: Some(realm.name()), actor, count: Some(ended), ..AuditEvent::default() };
        app.audit(AuditKind::CookieNameChanged, &detail);
    }
}

/// Background work: adopts cookie names changed by another instance or by the command line.
pub async fn follow(app: &App) {
    for realm in app.realms().iter() {
        match app.store.realm_state(realm.name()).await {
            Ok(Some(state)) if state.cookie_name != realm.cookie.name => {
                info!(realm = %realm.name(), cookie = %state.cookie_name, "cookie name changed elsewhere; following");
                app.replace_realm(Realm::new(realm.policy.clone(), &state.cookie_name));
            }
            Ok(_) => {}
            Err(e) => warn!(realm = %realm.name(), error = %e, "realm state not read"),
        }
    }
}
