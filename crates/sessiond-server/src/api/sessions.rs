//! The session API: check a token, see and end sessions.

use super::openapi::ErrorBody;
use crate::api_tokens::Principal;
use crate::audit::{AuditEvent, AuditKind};
use crate::error::ApiError;
use crate::extract::{Caller, JsonBody, RequestContext, ResponseCookies, TokenSource, find_credential};
use crate::metrics::{EndKind, StoreOp};
use crate::sessions::{self, Credential, NewSession, SessionView, UserView};
use crate::state::App;
use crate::users::User;
use axum::Json;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use serde::{Deserialize, Serialize};
use sessiond_core::realm::{HttpOnlyMode, SessionLocation};
use sessiond_core::token::SessionId;
use sessiond_store::{SessionFilter, Store};
use std::collections::BTreeMap;
use tracing::info;

#[derive(Serialize, utoipa::ToSchema)]
pub(crate) struct CurrentResponse {
    session: SessionView,
    user: UserView,
}

#[derive(Serialize, utoipa::ToSchema)]
pub(crate) struct AuthenticatedResponse {
    session: SessionView,
    user: UserView,
    /// A fresh session JWT, when the realm issues them (left out under the same rule as tokens).
    #[serde(skip_serializing_if = "Option::is_none")]
    session_jwt: Option<String>,
}

#[derive(Deserialize, Default, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct AuthenticateSessionRequest {
    session_token: Option<String>,
    session_jwt: Option<String>,
    #[serde(default)]
    extend: bool,
}

/// `POST /api/v1/sessions/authenticate`: checks a session token (from the body, the
/// `Authorization` header, the header named like the cookie, or the cookie) or a session JWT
/// (from the body), records the activity, and answers the session, its user and a fresh
/// session JWT. A JWT is accepted only while its session is live. Callers: anyone holding a
/// token or a JWT.
#[utoipa::path(post, path = "/api/v1/sessions/authenticate", tag = "sessions",
    request_body(content = AuthenticateSessionRequest, description = "or no body, and the token as a credential"),
    responses((status = 200, body = AuthenticatedResponse), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 503, body = ErrorBody)))]
pub(crate) async fn authenticate_session(
    State(app): State<App>,
    ctx: RequestContext,
    cookies: ResponseCookies,
    headers: HeaderMap,
    JsonBody(request): JsonBody<AuthenticateSessionRequest>,
) -> Result<Json<AuthenticatedResponse>, ApiError> {
    let realm = &ctx.realm;
    let enforced = realm.policy.cookie.http_only == HttpOnlyMode::Enforced;
    if enforced && (request.session_token.is_some() || request.session_jwt.is_some()) {
        return Err(ApiError::BadRequest("this realm accepts session tokens only in its cookie".into()));
    }
    let (session, source) = match (request.session_token.as_deref(), request.session_jwt.as_deref()) {
        (Some(_), Some(_)) => {
            return Err(ApiError::BadRequest("give session_token or session_jwt, not both".into()));
        }
        (None, Some(jwt)) => (sessions::verify_jwt(&app, realm, jwt, request.extend).await?, TokenSource::Body),
        (text, None) => {
            let (credential, source) = match text {
                Some(text) => (Credential::parse(realm, text)?, TokenSource::Body),
                None => find_credential(&app, &headers, realm)?.ok_or(ApiError::Unauthenticated("no session token"))?,
            };
            let from_cookie = source == TokenSource::Cookie;
            match sessions::verify(&app, realm, &credential, request.extend, &cookies, from_cookie).await {
                Ok(s) => (s, source),
                Err(e) => {
                    if from_cookie && matches!(e, ApiError::Unauthenticated(_)) {
                        cookies.end_session(realm);
                    }
                    return Err(e);
                }
            }
        }
    };
    let session_jwt = crate::jwt::issue_and_set(&app, realm, &session, &cookies).await?;
    // A browser that holds its session in an HttpOnly cookie gets no credential in the body.
    let hide = source == TokenSource::Cookie && realm.policy.cookie.http_only != HttpOnlyMode::Off;
    let user = UserView::of(&app, &session);
    Ok(Json(AuthenticatedResponse {
        session: SessionView::new(&app, &session, true),
        user,
        session_jwt: session_jwt.filter(|_| !hide),
    }))
}

/// `GET /api/v1/sessions/current`: the caller's session and user. Callers: signed in.
#[utoipa::path(get, path = "/api/v1/sessions/current", tag = "sessions", security(("session" = [])),
    responses((status = 200, body = CurrentResponse), (status = 401, body = ErrorBody), (status = 503, body = ErrorBody)))]
pub(crate) async fn current_session(State(app): State<App>, caller: Caller) -> Json<CurrentResponse> {
    let user = UserView::of(&app, &caller.session);
    Json(CurrentResponse { session: SessionView::new(&app, &caller.session, true), user })
}

/// `DELETE /api/v1/sessions/current`: logs out — ends the caller's session and deletes its
/// cookie. Callers: signed in.
#[utoipa::path(delete, path = "/api/v1/sessions/current", tag = "sessions", security(("session" = [])),
    responses((status = 204, description = "logged out; the cookies are deleted"), (status = 401, body = ErrorBody)))]
pub(crate) async fn end_current_session(
    State(app): State<App>,
    caller: Caller,
    cookies: ResponseCookies,
) -> Result<StatusCode, ApiError> {
    let ended = sessions::end(&app, &caller.session).await?;
    app.metrics.sessions_ended(EndKind::Logout, usize::from(ended));
    cookies.end_session(&caller.realm);
    info!(session_id = %caller.session.id, user = %caller.session.user, "logged out");
    app.audit(AuditKind::Logout, &AuditEvent::of_session(&caller.session));
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Serialize, utoipa::ToSchema)]
pub(crate) struct SessionList {
    sessions: Vec<SessionView>,
}

fn query_pairs(query: Option<&str>) -> Result<BTreeMap<String, String>, ApiError> {
    let mut out = BTreeMap::new();
    for (k, v) in url::form_urlencoded::parse(query.unwrap_or("").as_bytes()) {
        if !matches!(k.as_ref(), "user" | "realm") {
            return Err(ApiError::BadRequest(format!("unknown query parameter {k:?}")));
        }
        if out.insert(k.into_owned(), v.into_owned()).is_some() {
            return Err(ApiError::BadRequest("query parameter given twice".into()));
        }
    }
    Ok(out)
}

/// `GET /api/v1/sessions[?user=U][&realm=R]`: the caller's sessions in this realm, newest last.
/// Callers: signed in; `user` other than oneself and `realm` other than the caller's: admins.
/// A client-side realm keeps no records of its sessions: the list holds the caller's own
/// session when the query covers it, and nothing else.
#[utoipa::path(get, path = "/api/v1/sessions", tag = "sessions", security(("session" = [])),
    params(("user" = Option<String>, Query, description = "administrators: another user"),
        ("realm" = Option<String>, Query, description = "administrators: another realm")),
    responses((status = 200, body = SessionList), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody)))]
pub(crate) async fn list_sessions(
    State(app): State<App>,
    caller: Caller,
    RawQuery(query): RawQuery,
) -> Result<Json<SessionList>, ApiError> {
    let query = query_pairs(query.as_deref())?;
    let user = query.get("user").cloned().unwrap_or_else(|| caller.session.user.clone());
    let realm = query.get("realm").cloned().unwrap_or_else(|| caller.session.realm.clone());
    if user != caller.session.user || realm != caller.session.realm {
        caller.require_admin()?;
    }
    if app.realm(&realm).is_some_and(|r| r.policy.location == SessionLocation::Client) {
        let own = user == caller.session.user && realm == caller.session.realm;
        let sessions = own.then(|| SessionView::new(&app, &caller.session, true)).into_iter().collect();
        return Ok(Json(SessionList { sessions }));
    }
    let filter = SessionFilter { realm: Some(realm), user: Some(user) };
    let now = app.clock.now();
    let sessions = app
        .metrics
        .store(StoreOp::ListSessions, app.store.list_sessions(&filter))
        .await?
        .into_iter()
        // Sessions past their deadline are swept in the background; never show them as live.
        .filter(|s| {
            app.realm(&s.realm).is_some_and(|r| {
                matches!(r.policy.timeouts.verdict(&s.times(), now), sessiond_core::timeout::Verdict::Alive(_))
            })
        })
        .map(|s| {
            let current = s.token_hash == caller.session.token_hash;
            SessionView::new(&app, &s, current)
        })
        .collect();
    Ok(Json(SessionList { sessions }))
}

/// `DELETE /api/v1/sessions/{id}`: ends one session. Callers: its owner, or an admin. Others get
/// `404`, so ids of other people's sessions cannot be probed. In a client-side realm, where the
/// server knows no session but the caller's own, an admin's id of another session is refused
/// from then on without being checked.
#[utoipa::path(delete, path = "/api/v1/sessions/{id}", tag = "sessions", security(("session" = [])),
    params(("id" = String, Path, description = "public session id")),
    responses((status = 204, description = "ended"), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub(crate) async fn revoke_session(
    State(app): State<App>,
    caller: Caller,
    cookies: ResponseCookies,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let not_found = ApiError::NotFound("no such session");
    let id = SessionId::parse(&id).map_err(|_| ApiError::NotFound("no such session"))?;
    let Some(target) = sessions::by_id(&app, &id, &caller.session).await? else {
        if caller.is_admin && caller.realm.policy.location == SessionLocation::Client {
            sessions::revoke_client_id(&app, &caller.realm, &id).await?;
            app.metrics.sessions_ended(EndKind::Admin, 1);
            info!(session_id = %id, realm = %caller.realm.name(), by = %caller.session.user, "session revoked");
            let detail = AuditEvent {
                realm: Some(caller.realm.name()),
                session_id: Some(id.as_str()),
                actor: Some(&caller.session.user),
                ..AuditEvent::default()
            };
            app.audit(AuditKind::Revoked, &detail);
            return Ok(StatusCode::NO_CONTENT);
        }
        return Err(not_found);
    };
    let own = target.user == caller.session.user && target.realm == caller.session.realm;
    if !own && !caller.is_admin {
        return Err(ApiError::NotFound("no such session"));
    }
    let ended = sessions::end(&app, &target).await?;
    let kind = match (own, target.token_hash == caller.session.token_hash) {
        (false, _) => EndKind::Admin,
        (true, true) => EndKind::Logout,
        (true, false) => EndKind::Revoke,
    };
    app.metrics.sessions_ended(kind, usize::from(ended));
    if target.token_hash == caller.session.token_hash {
        cookies.end_session(&caller.realm);
    }
    info!(session_id = %target.id, user = %target.user, by = %caller.session.user, "session revoked");
    app.audit(AuditKind::Revoked, &AuditEvent { actor: Some(&caller.session.user), ..AuditEvent::of_session(&target) });
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize, Default, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct RevokeRequest {
    user: Option<String>,
    #[serde(default)]
    except_current: bool,
    /// The caller's password, when `except_current` is asked for and the sign-in is older
    /// than `server.reauth_window`.
    password: Option<String>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub(crate) struct RevokeResponse {
    revoked: usize,
}

/// `POST /api/v1/sessions/revoke {user?, except_current?, password?}`: ends every session of a
/// user in the caller's realm ("sign out everywhere"; with `except_current`, everywhere else,
/// which needs a sign-in within `server.reauth_window` or the password). Callers: signed in for
/// themselves; admins for anyone. `revoked` counts the sessions known to have ended: in a
/// client-side realm, which keeps no list, only the caller's own (when it ended too), although
/// every session of the user created until now is refused from then on.
#[utoipa::path(post, path = "/api/v1/sessions/revoke", tag = "sessions", security(("session" = [])),
    request_body = RevokeRequest,
    responses((status = 200, body = RevokeResponse),
        (status = 401, body = ErrorBody, description = "unauthenticated, reauthentication_required, invalid_credentials"),
        (status = 403, body = ErrorBody)))]
pub(crate) async fn revoke_sessions(
    State(app): State<App>,
    ctx: RequestContext,
    caller: Caller,
    cookies: ResponseCookies,
    JsonBody(request): JsonBody<RevokeRequest>,
) -> Result<Json<RevokeResponse>, ApiError> {
    let user = request.user.unwrap_or_else(|| caller.session.user.clone());
    let own = user == caller.session.user;
    if !own {
        caller.require_admin()?;
    }
    // Keeping this session while ending the others is what someone who took it over would do.
    if own && request.except_current {
        if request.password.as_ref().is_some_and(|p| p.len() > 1024) {
            return Err(ApiError::BadRequest("password is too long".into()));
        }
        crate::login::require_recent_sign_in(&app, &ctx, &caller.session, request.password).await?;
    }
    let except = (own && request.except_current).then_some(&*caller.session);
    let ended = sessions::end_user_sessions(&app, &caller.realm, &user, except, Some(&caller.session)).await?;
    app.metrics.sessions_ended(if own { EndKind::RevokeAll } else { EndKind::Admin }, ended.len());
    if ended.iter().any(|s| s.token_hash == caller.session.token_hash) {
        cookies.end_session(&caller.realm);
    }
    info!(user = %user, realm = %caller.session.realm, by = %caller.session.user, count = ended.len(), "sessions revoked");
    app.audit(
        AuditKind::Revoked,
        &AuditEvent {
            realm: Some(&caller.session.realm),
            user: Some(&user),
            actor: Some(&caller.session.user),
            count: Some(ended.len()),
            ..AuditEvent::default()
        },
    );
    Ok(Json(RevokeResponse { revoked: ended.len() }))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct CreateSessionRequest {
    user: String,
    #[serde(default)]
    groups: Vec<String>,
    email: Option<String>,
    display_name: Option<String>,
    #[serde(default)]
    amr: Vec<String>,
    #[serde(default)]
    #[schema(value_type = Object)]
    attributes: BTreeMap<String, serde_json::Value>,
    #[serde(default)]
    remember_me: bool,
}

#[derive(Serialize, utoipa::ToSchema)]
pub(crate) struct CreatedSession {
    session: SessionView,
    session_token: String,
}

/// Largest attribute map accepted, serialized.
const MAX_ATTRIBUTES_BYTES: usize = 4096;

/// `POST /api/v1/sessions`: creates a session for a user authenticated elsewhere (SSO, a trusted
/// header). The token is in the answer only; no cookie is set on the admin's client. Callers:
/// admins, signed in or with an API token.
#[utoipa::path(post, path = "/api/v1/sessions", tag = "sessions", security(("session" = [])),
    request_body = CreateSessionRequest,
    responses((status = 201, body = CreatedSession), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody)))]
pub(crate) async fn create_session(
    State(app): State<App>,
    caller: Principal,
    ctx: RequestContext,
    JsonBody(request): JsonBody<CreateSessionRequest>,
) -> Result<(StatusCode, Json<CreatedSession>), ApiError> {
    caller.require_admin()?;
    if request.user.is_empty() || request.user.len() > 256 || request.user.chars().any(char::is_control) {
        return Err(ApiError::BadRequest("user must be 1 to 256 printable characters".into()));
    }
    if request.amr.iter().any(|m| m == sessiond_core::session::amr::PASSWORD) {
        return Err(ApiError::BadRequest("amr \"pwd\" is reserved for logins through sessiond".into()));
    }
    if serde_json::to_vec(&request.attributes).map_or(usize::MAX, |v| v.len()) > MAX_ATTRIBUTES_BYTES {
        return Err(ApiError::BadRequest(format!("attributes are limited to {MAX_ATTRIBUTES_BYTES} bytes")));
    }
    let user = User {
        name: request.user,
        display_name: request.display_name,
        email: request.email,
        groups: request.groups,
        disabled: false,
    };
    let new = NewSession {
        user: &user,
        amr: request.amr,
        remember_me: request.remember_me,
        ip: None,
        user_agent: None,
        attributes: request.attributes,
    };
    // The cookie belongs to the user's browser, not to the admin's client: discard it.
    let discard = ResponseCookies::default();
    let (credential, record) = sessions::create(&app, &ctx.realm, new, app.clock.now(), &discard).await?;
    info!(session_id = %record.id, user = %record.user, by = %caller.user(), "session created for user");
    let token_id = match &caller {
        Principal::Token(t) => Some(t.record.id.as_str()),
        Principal::Session(_) => None,
    };
    app.audit(
        AuditKind::SessionCreated,
        &AuditEvent { actor: Some(caller.user()), token_id, ..AuditEvent::of_session(&record) },
    );
    Ok((
        StatusCode::CREATED,
        Json(CreatedSession { session: SessionView::new(&app, &record, false), session_token: credential.expose() }),
    ))
}
