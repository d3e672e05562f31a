//! Using sessions: verifying a presented token, creating a session after login, and the JSON view.
//!
//! The rules (deadlines, throttling) are in `sessiond_core::timeout`; this module sequences them
//! with the store and the cookies.

use crate::audit::{AuditEvent, AuditKind};
use crate::error::ApiError;
use crate::extract::ResponseCookies;
use crate::metrics::{EndKind, StoreOp};
use crate::state::{App, Realm};
use crate::users::User;
use serde::Serialize;
use sessiond_core::session::SessionRecord;
use sessiond_core::time::Timestamp;
use sessiond_core::timeout::{DeathReason, Verdict};
use sessiond_core::token::{SessionId, SessionToken};
use sessiond_store::Store;
use std::collections::BTreeMap;
use std::sync::Arc;
use tracing::{debug, info};

/// Checks `token` against the store and the realm's timeouts, and records the activity when due.
/// A dead session is deleted on the spot. `force_touch` writes `last_seen` even inside the
/// throttle interval. When the idle deadline moved and the token came in a cookie, a refreshed
/// cookie is queued.
///
/// # Errors
/// `unauthenticated` for unknown, foreign-realm, expired or revoked sessions; `store_unavailable`
/// when the store cannot answer (never a pass).
pub async fn verify(
    app: &App,
    realm: &Realm,
    token: &SessionToken,
    force_touch: bool,
    cookies: &ResponseCookies,
    from_cookie: bool,
) -> Result<Arc<SessionRecord>, ApiError> {
    verify_hash(app, realm, &token.hash(), force_touch, from_cookie.then_some((token, cookies))).await
}

/// Checks a session JWT: its signature and time window, then that its session is still live
/// in the realm and belongs to its subject, exactly as if the session's token had been
/// presented (timeouts applied, activity recorded). A JWT of an ended session is refused even
/// within its own lifetime.
///
/// # Errors
/// `unauthenticated` for a refused JWT or an ended session; `store_unavailable`.
pub async fn verify_jwt(
    app: &App,
    realm: &Realm,
    jwt: &str,
    force_touch: bool,
) -> Result<Arc<SessionRecord>, ApiError> {
    let claims = crate::jwt::check(app, realm, jwt).await?;
    let id = SessionId::parse(&claims.sid).map_err(|_| ApiError::Unauthenticated("invalid session JWT"))?;
    let session = app
        .metrics
        .store(StoreOp::SessionById, app.store.session_by_id(&id))
        .await?
        .filter(|s| s.realm == realm.name() && s.user == claims.sub)
        .ok_or(ApiError::Unauthenticated("unknown or ended session"))?;
    verify_hash(app, realm, &session.token_hash, force_touch, None).await
}

/// [`verify`] for a session found by its token's hash; `refresh` is the token and where to
/// queue its refreshed cookie, when it came in a cookie.
async fn verify_hash(
    app: &App,
    realm: &Realm,
    hash: &sessiond_core::token::TokenHash,
    force_touch: bool,
    refresh: Option<(&SessionToken, &ResponseCookies)>,
) -> Result<Arc<SessionRecord>, ApiError> {
    let hash = *hash;
    let now = app.clock.now();
    let session = app
        .metrics
        .store(StoreOp::SessionByToken, app.store.session_by_token_shared(&hash))
        .await?
        .ok_or(ApiError::Unauthenticated("unknown or ended session"))?;
    if session.realm != realm.name() {
        return Err(ApiError::Unauthenticated("unknown or ended session"));
    }
    if !user_still_active(app, &session) {
        let ended = app.metrics.store(StoreOp::DeleteSession, app.store.delete_session(&hash)).await?;
        app.metrics.sessions_ended(EndKind::UserDisabled, usize::from(ended.is_some()));
        info!(session_id = %session.id, user = %session.user, "session ended: user disabled or removed");
        app.audit(AuditKind::UserDisabled, &AuditEvent::of_session(&session));
        return Err(ApiError::Unauthenticated("unknown or ended session"));
    }
    let timeouts = realm.policy.timeouts;
    match timeouts.verdict(&session.times(), now) {
        Verdict::Dead(reason) => {
            let ended = app.metrics.store(StoreOp::DeleteSession, app.store.delete_session(&hash)).await?;
            app.metrics.sessions_ended(EndKind::Expired, usize::from(ended.is_some()));
            let why = match reason {
                DeathReason::Expired => "expired",
                DeathReason::Idle => "idle",
            };
            info!(session_id = %session.id, user = %session.user, reason = why, "session ended");
            app.audit(AuditKind::Expired, &AuditEvent { reason: Some(why), ..AuditEvent::of_session(&session) });
            Err(ApiError::Unauthenticated("session expired"))
        }
        Verdict::Alive(alive) => {
            let touch = alive.touch || (force_touch && now > session.last_seen_at);
            if touch {
                let last_seen_at = now;
                let expires_at =
                    timeouts.expires_at(&sessiond_core::timeout::SessionTimes { last_seen_at, ..session.times() });
                let touching = app.store.touch_session(&hash, last_seen_at, expires_at);
                if !app.metrics.store(StoreOp::TouchSession, touching).await? {
                    return Err(ApiError::Unauthenticated("unknown or ended session"));
                }
                // Touches are throttled, so copying the record here is rare.
                let mut touched = (*session).clone();
                touched.last_seen_at = last_seen_at;
                touched.expires_at = expires_at;
                let session = Arc::new(touched);
                if let Some((token, cookies)) = refresh {
                    cookies.push(&realm.cookie.set_cookie(&token.expose(), Some(now.until(expires_at))));
                }
                debug!(session_id = %session.id, "session touched");
                return Ok(session);
            }
            Ok(session)
        }
    }
}

fn user_still_active(app: &App, session: &SessionRecord) -> bool {
    // Sessions of users from the users file end when the user is disabled or removed. Sessions
    // created through the admin API for users known elsewhere carry no password method.
    let from_users_file = session.amr.iter().any(|m| m == sessiond_core::session::amr::PASSWORD);
    !from_users_file || app.users.snapshot().is_active(&session.user)
}

/// Whether the session's user belongs to `server.admin_group`, by the users file as it is now
/// (falling back to the groups recorded at login for users not in the file).
pub fn is_admin(app: &App, session: &SessionRecord) -> bool {
    let group = app.settings.admin_group.as_str();
    match app.users.snapshot().get(&session.user) {
        Some(user) => !user.disabled && user.groups.iter().any(|g| g == group),
        None => session.groups.iter().any(|g| g == group),
    }
}

/// What a new session is made of.
pub struct NewSession<'a> {
    /// The user.
    pub user: &'a User,
    /// Authentication methods.
    pub amr: Vec<String>,
    /// Whether the user asked to be remembered.
    pub remember_me: bool,
    /// Client address.
    pub ip: Option<String>,
    /// Client user agent.
    pub user_agent: Option<String>,
    /// Application attributes.
    pub attributes: BTreeMap<String, serde_json::Value>,
}

/// Creates a session with a fresh token and queues its cookie.
///
/// # Errors
/// `store_unavailable` when it cannot be stored.
pub async fn create(
    app: &App,
    realm: &Realm,
    new: NewSession<'_>,
    now: Timestamp,
    cookies: &ResponseCookies,
) -> Result<(SessionToken, SessionRecord), ApiError> {
    let timeouts = realm.policy.timeouts;
    let times = timeouts.at_login(now, new.remember_me);
    let token = SessionToken::generate();
    let record = SessionRecord {
        id: SessionId::generate(),
        token_hash: token.hash(),
        realm: realm.name().to_owned(),
        user: new.user.name.clone(),
        display_name: new.user.display_name.clone(),
        email: new.user.email.clone(),
        groups: new.user.groups.clone(),
        amr: new.amr,
        created_at: times.created_at,
        last_seen_at: times.last_seen_at,
        absolute_deadline: times.absolute_deadline,
        expires_at: timeouts.expires_at(&times),
        remember_me: times.remember_me,
        ip: new.ip,
        user_agent: new.user_agent,
        attributes: new.attributes,
    };
    app.metrics.store(StoreOp::CreateSession, app.store.create_session(&record)).await?;
    cookies.push(&realm.cookie.set_cookie(&token.expose(), Some(now.until(record.expires_at))));
    info!(session_id = %record.id, user = %record.user, realm = %record.realm, remember_me = record.remember_me, "session created");
    Ok((token, record))
}

/// A session as shown in JSON (DESIGN.md's `Session`). Never contains the token.
#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = Session)]
pub struct SessionView {
    id: String,
    realm: String,
    user: String,
    display_name: Option<String>,
    email: Option<String>,
    groups: Vec<String>,
    amr: Vec<String>,
    created_at: String,
    last_seen_at: String,
    expires_at: String,
    remember_me: bool,
    ip: Option<String>,
    user_agent: Option<String>,
    current: bool,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    #[schema(value_type = Object)]
    attributes: BTreeMap<String, serde_json::Value>,
}

impl SessionView {
    /// The view of `s`; `current` marks the caller's own session. `expires_at` is the earlier of
    /// the absolute and the idle deadline under the realm's policy.
    pub fn new(app: &App, s: &SessionRecord, current: bool) -> Self {
        let expires_at = app.realm(&s.realm).map_or(s.expires_at, |r| r.policy.timeouts.expires_at(&s.times()));
        Self {
            id: s.id.to_string(),
            realm: s.realm.clone(),
            user: s.user.clone(),
            display_name: s.display_name.clone(),
            email: s.email.clone(),
            groups: s.groups.clone(),
            amr: s.amr.clone(),
            created_at: s.created_at.rfc3339(),
            last_seen_at: s.last_seen_at.rfc3339(),
            expires_at: expires_at.rfc3339(),
            remember_me: s.remember_me,
            ip: s.ip.clone(),
            user_agent: s.user_agent.clone(),
            current,
            attributes: s.attributes.clone(),
        }
    }
}

/// The user as shown in JSON.
#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = User)]
pub struct UserView {
    name: String,
    display_name: Option<String>,
    email: Option<String>,
    groups: Vec<String>,
}

impl UserView {
    /// The user of a session, from the users file when known there, else from the session.
    pub fn of(app: &App, s: &SessionRecord) -> Self {
        match app.users.snapshot().get(&s.user) {
            Some(u) => Self { name: u.name, display_name: u.display_name, email: u.email, groups: u.groups },
            None => Self {
                name: s.user.clone(),
                display_name: s.display_name.clone(),
                email: s.email.clone(),
                groups: s.groups.clone(),
            },
        }
    }
}
