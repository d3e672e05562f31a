//! Using sessions: verifying a presented credential, creating a session after login, ending
//! sessions wherever they live, and the JSON view.
//!
//! A realm keeps its sessions on the server (`location: server`: the cookie holds a random
//! token, the record lives in the store) or in the cookie (`location: client`: the cookie holds
//! the whole session, sealed; the store keeps only revocations, see [`crate::revocation`]).
//! Handlers do not care which: they verify with [`verify`], create with [`create`] and end
//! sessions with [`end`] and [`end_user_sessions`], which handle both.
//!
//! The rules (deadlines, throttling) are in `sessiond_core::timeout`; this module sequences them
//! with the store and the cookies.

use crate::audit::{AuditEvent, AuditKind};
use crate::error::ApiError;
use crate::extract::ResponseCookies;
use crate::metrics::{EndKind, StoreOp};
use crate::revocation;
use crate::state::{App, Realm};
use crate::users::User;
use serde::Serialize;
use sessiond_core::client_session::{ClientSession, ClientSessionError, SealedSession, binding_hash};
use sessiond_core::realm::SessionLocation;
use sessiond_core::session::SessionRecord;
use sessiond_core::time::Timestamp;
use sessiond_core::timeout::{DeathReason, Verdict};
use sessiond_core::token::{SessionId, SessionToken};
use sessiond_store::Store;
use std::collections::BTreeMap;
use std::sync::Arc;
use tracing::{debug, info, warn};

/// What a client presents as a session: a server-side session's token, or a client-side
/// session's sealed cookie value. Its `Debug` never shows the value.
#[derive(Clone, Debug)]
pub enum Credential {
    /// A session token (`location: server`).
    Token(SessionToken),
    /// A sealed session (`location: client`).
    Sealed(SealedSession),
}

impl Credential {
    /// Reads `text` as a credential of `realm`'s kind.
    ///
    /// # Errors
    /// `unauthenticated` when it cannot be one.
    pub fn parse(realm: &Realm, text: &str) -> Result<Self, ApiError> {
        match realm.policy.location {
            SessionLocation::Server => SessionToken::parse(text)
                .map(Self::Token)
                .map_err(|_| ApiError::Unauthenticated("malformed session token")),
            SessionLocation::Client => SealedSession::parse(text)
                .map(Self::Sealed)
                .map_err(|_| ApiError::Unauthenticated("malformed session cookie")),
        }
    }

    /// The credential as sent to the client: only ever written into a cookie or a response body.
    pub fn expose(&self) -> String {
        match self {
            Self::Token(token) => token.expose(),
            Self::Sealed(sealed) => sealed.as_str().to_owned(),
        }
    }
}

/// Whether `session` is a client-side one (its token hash is the stand-in of its id).
pub fn is_client_side(session: &SessionRecord) -> bool {
    session.token_hash == binding_hash(&session.id)
}

/// Checks `credential` against the realm's sessions and timeouts, and records the activity when
/// due. `force_touch` moves `last_seen` even inside the throttle interval. When the idle deadline
/// moved and the credential came in a cookie, a refreshed cookie is queued in `cookies`; pass
/// `from_cookie: false` where the response cannot set cookies (forward auth).
///
/// A dead server-side session is deleted on the spot. A client-side session is opened from its
/// cookie, checked against the revocations in the store, and sealed again into a new cookie
/// when its idle deadline moves (or when it was sealed under `secret_previous`): that cookie is
/// the only record of the move, so where no cookie can be set the deadline stays where it was.
///
/// # Errors
/// `unauthenticated` for unknown, foreign-realm, expired or revoked sessions; `store_unavailable`
/// when the store cannot answer (never a pass).
pub async fn verify(
    app: &App,
    realm: &Realm,
    credential: &Credential,
    force_touch: bool,
    cookies: &ResponseCookies,
    from_cookie: bool,
) -> Result<Arc<SessionRecord>, ApiError> {
    match (credential, realm.policy.location) {
        (Credential::Token(token), SessionLocation::Server) => {
            verify_hash(app, realm, &token.hash(), force_touch, from_cookie.then_some((token, cookies))).await
        }
        (Credential::Sealed(sealed), SessionLocation::Client) => {
            verify_client(app, realm, sealed, force_touch, from_cookie.then_some(cookies)).await
        }
        _ => Err(ApiError::Unauthenticated("unknown or ended session")),
    }
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
    if realm.policy.location == SessionLocation::Client {
        return Err(ApiError::Unauthenticated("this realm keeps sessions in cookies; present the session cookie"));
    }
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

/// [`verify`] for a client-side session; `refresh` is where to queue its next cookie, when it
/// came in one.
async fn verify_client(
    app: &App,
    realm: &Realm,
    sealed: &SealedSession,
    force_touch: bool,
    refresh: Option<&ResponseCookies>,
) -> Result<Arc<SessionRecord>, ApiError> {
    let now = app.clock.now();
    let opened = app.client_sessions.open_detailed(realm.name(), &realm.cookie.name, sealed.as_str()).map_err(|e| {
        debug!(realm = %realm.name(), reason = %e, "client session cookie refused");
        ApiError::Unauthenticated("unknown or ended session")
    })?;
    let session = opened.session;
    if revocation::is_revoked(&app.store, &session, realm.sessions_not_before, now).await? {
        debug!(session_id = %session.id, "client session refused: revoked");
        return Err(ApiError::Unauthenticated("unknown or ended session"));
    }
    let timeouts = realm.policy.timeouts;
    let record = session.clone().into_record(timeouts.expires_at(&session.times()));
    if !user_still_active(app, &record) {
        // Recorded, so that the session stays ended if the user comes back.
        revocation::cut_user_sessions(&app.store, realm.name(), &record.user, None, now).await?;
        app.metrics.sessions_ended(EndKind::UserDisabled, 1);
        info!(session_id = %record.id, user = %record.user, "session ended: user disabled or removed");
        app.audit(AuditKind::UserDisabled, &AuditEvent::of_session(&record));
        return Err(ApiError::Unauthenticated("unknown or ended session"));
    }
    match timeouts.verdict(&session.times(), now) {
        Verdict::Dead(reason) => {
            let why = match reason {
                DeathReason::Expired => "expired",
                DeathReason::Idle => "idle",
            };
            // Counted and audited where the answer deletes the cookie, so once per browser
            // rather than once per request that still carries the dead cookie.
            if refresh.is_some() {
                app.metrics.sessions_ended(EndKind::Expired, 1);
                info!(session_id = %record.id, user = %record.user, reason = why, "session ended");
                app.audit(AuditKind::Expired, &AuditEvent { reason: Some(why), ..AuditEvent::of_session(&record) });
            }
            Err(ApiError::Unauthenticated("session expired"))
        }
        Verdict::Alive(alive) => {
            let touch = alive.touch || (force_touch && now > session.last_seen_at);
            let Some(cookies) = refresh.filter(|_| touch || opened.under_previous_key) else {
                return Ok(Arc::new(record));
            };
            let moved = ClientSession { last_seen_at: if touch { now } else { session.last_seen_at }, ..session };
            let expires_at = timeouts.expires_at(&moved.times());
            match app.client_sessions.seal(&moved, &realm.cookie, Some(now.until(expires_at))) {
                Ok(next) => {
                    cookies.push(&next.set_cookie);
                    debug!(session_id = %moved.id, "client session cookie reissued");
                    Ok(Arc::new(moved.into_record(expires_at)))
                }
                Err(e) => {
                    // Only a change of configuration (a longer inactivity, a domain) can make a
                    // cookie that fitted at login outgrow the limit; the old one stays valid.
                    warn!(session_id = %record.id, error = %e, "client session cookie not reissued");
                    Ok(Arc::new(record))
                }
            }
        }
    }
}

fn user_still_active(app: &App, session: &SessionRecord) -> bool {
    // Sessions of users from the users file end when the user is disabled or removed. Sessions
    // created through the admin API for users known elsewhere carry no password method, and a
    // provider's users (`<id>:<name>`, an LDAP password among them) are in no users file: the
    // background refresh asks their directory instead.
    let from_users_file =
        !session.user.contains(':') && session.amr.iter().any(|m| m == sessiond_core::session::amr::PASSWORD);
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

/// Creates a session with a fresh credential and queues its cookie: a token and a stored record
/// in a server-side realm, the sealed session in a client-side one (nothing is stored).
///
/// # Errors
/// `store_unavailable` when it cannot be stored; `session_too_large` when a client-side session
/// does not fit in its cookie.
pub async fn create(
    app: &App,
    realm: &Realm,
    new: NewSession<'_>,
    now: Timestamp,
    cookies: &ResponseCookies,
) -> Result<(Credential, SessionRecord), ApiError> {
    let timeouts = realm.policy.timeouts;
    let times = timeouts.at_login(now, new.remember_me);
    let id = SessionId::generate();
    let token = match realm.policy.location {
        SessionLocation::Server => Some(SessionToken::generate()),
        SessionLocation::Client => None,
    };
    let record = SessionRecord {
        token_hash: token.as_ref().map_or_else(|| binding_hash(&id), SessionToken::hash),
        id,
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
    let max_age = Some(now.until(record.expires_at));
    let credential = match token {
        Some(token) => {
            app.metrics.store(StoreOp::CreateSession, app.store.create_session(&record)).await?;
            cookies.push(&realm.cookie.set_cookie(&token.expose(), max_age));
            Credential::Token(token)
        }
        None => {
            let sealed = app.client_sessions.seal(&ClientSession::from_record(&record), &realm.cookie, max_age).map_err(
                |e| match e {
                    ClientSessionError::TooLarge { len, .. } => {
                        info!(user = %record.user, realm = %record.realm, bytes = len, "session refused: too large for a cookie");
                        ApiError::SessionTooLarge(len)
                    }
                    other => ApiError::internal(other),
                },
            )?;
            cookies.push(&sealed.set_cookie);
            Credential::Sealed(sealed.value)
        }
    };
    info!(session_id = %record.id, user = %record.user, realm = %record.realm, remember_me = record.remember_me, "session created");
    Ok((credential, record))
}

/// Ends `session` wherever it lives: deletes a server-side one, revokes a client-side one (until
/// its absolute deadline). `true` when it was live (a client-side session always counts).
///
/// # Errors
/// `store_unavailable`; nothing was ended then.
pub async fn end(app: &App, session: &SessionRecord) -> Result<bool, ApiError> {
    if is_client_side(session) {
        let now = app.clock.now();
        revocation::revoke_session(&app.store, &session.realm, &session.id, session.absolute_deadline, now).await?;
        return Ok(true);
    }
    let ended = app.metrics.store(StoreOp::DeleteSession, app.store.delete_session(&session.token_hash)).await?;
    Ok(ended.is_some())
}

/// Ends the session a client presented (a new login over it, so that a planted session can never
/// become a signed-in one); returns it when it was one.
///
/// # Errors
/// `store_unavailable`.
pub async fn end_presented(
    app: &App,
    realm: &Realm,
    credential: &Credential,
) -> Result<Option<SessionRecord>, ApiError> {
    match credential {
        Credential::Token(token) => {
            Ok(app.metrics.store(StoreOp::DeleteSession, app.store.delete_session(&token.hash())).await?)
        }
        Credential::Sealed(sealed) => {
            let Ok(session) = app.client_sessions.open(realm.name(), &realm.cookie.name, sealed.as_str()) else {
                return Ok(None);
            };
            let record = session.into_record(app.clock.now());
            end(app, &record).await?;
            Ok(Some(record))
        }
    }
}

/// Ends every session of `user` in `realm` but `except` ("sign out everywhere (else)", an
/// administrator's revoke, a user disabled), wherever they live. Returns the sessions known to
/// have ended: every server-side one; of client-side ones, which the server does not list, only
/// `current` (the caller's session) when it was among them.
///
/// # Errors
/// `store_unavailable`; nothing was ended then.
pub async fn end_user_sessions(
    app: &App,
    realm: &Realm,
    user: &str,
    except: Option<&SessionRecord>,
    current: Option<&SessionRecord>,
) -> Result<Vec<SessionRecord>, ApiError> {
    let ending = app.store.delete_user_sessions(realm.name(), user, except.map(|s| &s.token_hash));
    let mut ended = app.metrics.store(StoreOp::DeleteUserSessions, ending).await?;
    if realm.policy.location == SessionLocation::Client {
        let now = app.clock.now();
        revocation::cut_user_sessions(&app.store, realm.name(), user, except.map(|s| &s.id), now).await?;
        let spared = |s: &SessionRecord| except.is_some_and(|e| e.id == s.id);
        if let Some(current) =
            current.filter(|c| is_client_side(c) && c.realm == realm.name() && c.user == user && !spared(c))
        {
            ended.push(current.clone());
        }
    }
    Ok(ended)
}

/// Refuses the client-side session `id` of `realm` without knowing it (an administrator's revoke
/// by id): until the longest a session of the realm can live.
///
/// # Errors
/// `store_unavailable`.
pub async fn revoke_client_id(app: &App, realm: &Realm, id: &SessionId) -> Result<(), ApiError> {
    let now = app.clock.now();
    let until = now + realm.policy.timeouts.longest_lifetime();
    revocation::revoke_session(&app.store, realm.name(), id, until, now).await?;
    Ok(())
}

/// The session with public id `id` as the caller may address it: from the store, or the
/// caller's own client-side session (the server keeps no other record of it).
///
/// # Errors
/// `store_unavailable`.
pub async fn by_id(app: &App, id: &SessionId, caller: &SessionRecord) -> Result<Option<SessionRecord>, ApiError> {
    if caller.id == *id && is_client_side(caller) {
        return Ok(Some(caller.clone()));
    }
    Ok(app.metrics.store(StoreOp::SessionById, app.store.session_by_id(id)).await?)
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
