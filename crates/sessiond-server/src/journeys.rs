//! The journey engine: starts journeys, loads the one an `auth_id` names, and moves it on by
//! compare-and-swap, for the JSON API and the portal alike.
//!
//! The rules are in `sessiond_core::journey`: where the state lives, allowlisting, replay. This
//! module turns them into store operations. Every change of a stored journey is a
//! compare-and-swap against the value read when the step began, so of two posts of the same
//! step at most one moves the journey on; the other finds the value changed and is answered as
//! a replay.

use crate::audit::{AuditEvent, AuditKind};
use crate::error::ApiError;
use crate::extract::ResponseCookies;
use crate::state::{App, Realm};
use axum::http::{HeaderMap, HeaderValue, header};
use sessiond_core::cookie::{AUTHN_SUFFIX, CookieSpec, SameSite, find_cookie};
use sessiond_core::journey::{
    JourneyError, JourneyLocation, JourneySettings, JourneyState, MAX_FAILURES, Purpose, ServerAuthId, Step,
    StoredJourney, auth_id_hash,
};
use sessiond_core::time::Timestamp;
use sessiond_store::{EntryKind, Store};
use tracing::info;

/// A journey loaded for one step: its state, the `auth_id` it was presented with, and the stored
/// value the step must still find when it writes.
#[derive(Debug)]
pub struct Journey {
    /// The state.
    pub state: JourneyState,
    auth_id: String,
    /// The stored value as read, when the journey keeps one.
    stored: Option<(StoredJourney, Vec<u8>)>,
    /// Started by this request and not stored yet ([`ephemeral`]).
    fresh: bool,
}

/// The journey cookie of `realm` (`<name>_authn`): `HttpOnly` and `SameSite=Lax` at least,
/// whatever the session cookie's settings, so that no script and no other site's form can use it.
pub fn authn_cookie(realm: &Realm) -> CookieSpec {
    let same_site = if realm.cookie.same_site == SameSite::Strict { SameSite::Strict } else { SameSite::Lax };
    CookieSpec { http_only: true, persistent: true, same_site, ..realm.cookie.companion(AUTHN_SUFFIX) }
}

/// Queues the journey cookie carrying `auth_id`, for as long as a journey lasts.
pub fn set_authn_cookie(cookies: &ResponseCookies, realm: &Realm, auth_id: &str) {
    cookies.push(&authn_cookie(realm).set_cookie(auth_id, Some(settings(realm).timeout)));
}

/// Queues the deletion of the journey cookie: the journey has ended.
pub fn delete_authn_cookie(cookies: &ResponseCookies, realm: &Realm) {
    cookies.push(&authn_cookie(realm).delete_cookie());
}

/// The `auth_id` in the journey cookie of the request, if any.
pub fn presented_auth_id<'h>(headers: &'h HeaderMap, realm: &Realm) -> Option<&'h str> {
    find_cookie(headers.get_all(header::COOKIE).iter().map(HeaderValue::as_bytes), &authn_cookie(realm).name)
        .ok()
        .flatten()
}

/// The realm's journey settings.
fn settings(realm: &Realm) -> JourneySettings {
    realm.policy.journeys
}

/// Whether journeys of `realm` keep a value in the store.
fn keeps_stored(realm: &Realm) -> bool {
    let s = settings(realm);
    s.location == JourneyLocation::Server || s.allowlisting
}

/// The `auth_id` that carries `state` now: a new random one (server-side, when the journey
/// starts or with allowlisting), `previous` kept (server-side without allowlisting), or the
/// state sealed (client-side).
fn auth_id_for(app: &App, realm: &Realm, state: &JourneyState, previous: Option<&str>) -> String {
    match (settings(realm).location, previous) {
        (JourneyLocation::Client, _) => app.journey_codec.seal(state),
        (JourneyLocation::Server, Some(kept)) if !settings(realm).allowlisting => kept.to_owned(),
        (JourneyLocation::Server, _) => ServerAuthId::issue(&state.id).as_str().to_owned(),
    }
}

fn stored_value(realm: &Realm, state: &JourneyState, auth_id: &str, failures: u32) -> Vec<u8> {
    let state = (settings(realm).location == JourneyLocation::Server).then(|| state.clone());
    StoredJourney { current: auth_id_hash(auth_id), failures, state }.encode()
}

/// Starts a journey of `realm` waiting for `step`; answers its first `auth_id`.
///
/// # Errors
/// Store errors.
pub async fn start(app: &App, realm: &Realm, state: JourneyState) -> Result<String, ApiError> {
    let auth_id = auth_id_for(app, realm, &state, None);
    if keeps_stored(realm) {
        let value = stored_value(realm, &state, &auth_id, 0);
        app.store
            .put_entry(EntryKind::Journey, &state.id.store_key(), &value, Some(state.expires_at), app.clock.now())
            .await?;
    }
    Ok(auth_id)
}

/// A fresh state for a journey of `realm`.
pub fn new_state(realm: &Realm, purpose: Purpose, step: Step, now: Timestamp) -> JourneyState {
    JourneyState::start(realm.name(), purpose, step, now, settings(realm).timeout)
}

/// Whether `auth_id` has the shape of one we issue in `realm` (for client-side journeys: opens,
/// even if expired), as opposed to junk or a forgery; only to choose the words of a refusal.
pub fn is_well_formed(app: &App, realm: &Realm, auth_id: &str, now: Timestamp) -> bool {
    match settings(realm).location {
        JourneyLocation::Server => ServerAuthId::parse(auth_id).is_ok(),
        JourneyLocation::Client => {
            !matches!(app.journey_codec.open(realm.name(), auth_id, now), Err(JourneyError::Unknown))
        }
    }
}

/// A journey started by this request and run at once (the callbacks of a login posted without
/// an `auth_id`): nothing is stored unless it needs a further step.
pub fn ephemeral(state: JourneyState) -> Journey {
    Journey { state, auth_id: String::new(), stored: None, fresh: true }
}

/// Loads the journey `auth_id` names in `realm`.
///
/// # Errors
/// `journey_expired` for an `auth_id` that names no live journey of this realm (malformed,
/// forged, ended, timed out); `journey_replayed` for one that is no longer current, and the
/// journey ends then; store errors.
pub async fn load(app: &App, realm: &Realm, auth_id: &str, now: Timestamp) -> Result<Journey, ApiError> {
    let s = settings(realm);
    let (id, sealed_state) = match s.location {
        JourneyLocation::Server => (ServerAuthId::parse(auth_id).map_err(expired)?.journey().clone(), None),
        JourneyLocation::Client => {
            let state = app.journey_codec.open(realm.name(), auth_id, now).map_err(expired)?;
            (state.id.clone(), Some(state))
        }
    };
    if !keeps_stored(realm) {
        let state = sealed_state.ok_or(ApiError::JourneyExpired)?;
        return Ok(Journey { state, auth_id: auth_id.to_owned(), stored: None, fresh: false });
    }
    let key = id.store_key();
    let entry = app.store.entry(EntryKind::Journey, &key, now).await?.ok_or(ApiError::JourneyExpired)?;
    let stored = StoredJourney::decode(&entry.value).map_err(expired)?;
    if !stored.is_current(auth_id) {
        return Err(replayed(app, realm, &key, "an earlier auth_id was presented").await);
    }
    let state = match (sealed_state, &stored.state) {
        (Some(sealed), _) => sealed,
        (None, Some(kept)) => kept.clone(),
        (None, None) => return Err(ApiError::JourneyExpired),
    };
    if state.realm != realm.name() || state.id != id {
        return Err(ApiError::JourneyExpired);
    }
    if state.is_expired(now) {
        app.store.delete_entry(EntryKind::Journey, &key).await?;
        return Err(ApiError::JourneyExpired);
    }
    Ok(Journey { state, auth_id: auth_id.to_owned(), stored: Some((stored, entry.value)), fresh: false })
}

fn expired(_: JourneyError) -> ApiError {
    ApiError::JourneyExpired
}

/// Moves the journey on to `next`; answers the `auth_id` that carries it from now on.
///
/// # Errors
/// `journey_replayed` when another request moved or ended the journey since it was loaded
/// (two posts of the same step: only one moves it on); store errors.
pub async fn advance(app: &App, realm: &Realm, journey: Journey, next: JourneyState) -> Result<String, ApiError> {
    if journey.fresh {
        return start(app, realm, next).await;
    }
    let auth_id = auth_id_for(app, realm, &next, Some(&journey.auth_id));
    if let Some((stored, read)) = &journey.stored {
        let value = stored_value(realm, &next, &auth_id, stored.failures);
        swap(app, realm, &next, read, Some(&value)).await?;
    }
    Ok(auth_id)
}

/// Ends the journey because it succeeded: only one request can.
///
/// # Errors
/// `journey_replayed` when another request moved or ended it first; store errors.
pub async fn finish(app: &App, realm: &Realm, journey: &Journey) -> Result<(), ApiError> {
    match &journey.stored {
        Some((_, read)) => swap(app, realm, &journey.state, read, None).await,
        None => Ok(()),
    }
}

/// Counts a wrong answer; after [`MAX_FAILURES`] the journey ends. Answers whether it ended.
///
/// # Errors
/// Store errors.
pub async fn fail(app: &App, realm: &Realm, journey: &Journey) -> Result<bool, ApiError> {
    let Some((stored, read)) = &journey.stored else { return Ok(false) };
    let failures = stored.failures.saturating_add(1);
    if failures >= MAX_FAILURES {
        info!(realm = %realm.name(), "login journey ended: too many wrong answers");
        app.store.delete_entry(EntryKind::Journey, &journey.state.id.store_key()).await?;
        return Ok(true);
    }
    let value = StoredJourney { failures, ..stored.clone() }.encode();
    // A lost race means another request changed the journey; its own outcome stands.
    let key = journey.state.id.store_key();
    let _ = app
        .store
        .swap_entry(
            EntryKind::Journey,
            &key,
            Some(read),
            Some((&value, Some(journey.state.expires_at))),
            app.clock.now(),
        )
        .await?;
    Ok(false)
}

/// Ends the journey whatever state it is in (a refusal that must not be retried).
///
/// # Errors
/// Store errors.
pub async fn end(app: &App, journey: &Journey) -> Result<(), ApiError> {
    if journey.stored.is_some() {
        app.store.delete_entry(EntryKind::Journey, &journey.state.id.store_key()).await?;
    }
    Ok(())
}

/// Replaces the stored value read at the start of the step. Losing means another request used
/// the same `auth_id` at the same time: with allowlisting that is a replay, and the journey ends.
async fn swap(app: &App, realm: &Realm, state: &JourneyState, read: &[u8], new: Option<&[u8]>) -> Result<(), ApiError> {
    let key = state.id.store_key();
    let new = new.map(|value| (value, Some(state.expires_at)));
    if app.store.swap_entry(EntryKind::Journey, &key, Some(read), new, app.clock.now()).await? {
        return Ok(());
    }
    if settings(realm).allowlisting {
        return Err(replayed(app, realm, &key, "one auth_id was used twice at once").await);
    }
    Err(ApiError::JourneyReplayed)
}

/// Ends the journey at `key` after a replay, and says so.
async fn replayed(app: &App, realm: &Realm, key: &str, why: &'static str) -> ApiError {
    info!(realm = %realm.name(), why, "login journey ended: replayed");
    app.audit(
        AuditKind::JourneyReplayed,
        &AuditEvent { realm: Some(realm.name()), reason: Some(why), ..AuditEvent::default() },
    );
    match app.store.delete_entry(EntryKind::Journey, key).await {
        Ok(_) => ApiError::JourneyReplayed,
        Err(e) => e.into(),
    }
}
