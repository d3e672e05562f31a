//! The TOTP endpoints: see, enroll, confirm and remove the caller's second factor.
//!
//! All need a signed-in session (never an API token: a leaked token must not change how its
//! user signs in). Enrolling needs a recent sign-in (`server.reauth_window`) or the password in
//! the body; removing always needs the password.

use super::openapi::ErrorBody;
use crate::audit::{AuditEvent, AuditKind};
use crate::error::ApiError;
use crate::extract::{Caller, JsonBody, RequestContext};
use crate::login::require_recent_sign_in;
use crate::state::{App, Realm};
use crate::totp::{self, TotpCheckError};
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use sessiond_core::totp::otpauth_url;

/// Longest password looked at.
const MAX_PASSWORD: usize = 1024;

#[derive(Serialize, utoipa::ToSchema)]
pub(crate) struct TotpStatus {
    enrolled: bool,
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct PasswordRequest {
    /// The caller's password: needed when the sign-in is older than `server.reauth_window`
    /// (enroll), always (remove).
    password: Option<String>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub(crate) struct Enrollment {
    /// The secret in base32, for manual entry in an authenticator app.
    secret: String,
    /// The `otpauth://` URL an authenticator app reads from a QR code.
    otpauth_url: String,
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ConfirmRequest {
    /// A current code of the secret being enrolled.
    code: String,
}

/// The issuer shown in authenticator apps: the portal's host.
pub(crate) fn issuer(realm: &Realm) -> String {
    realm.policy.portal_url.host_str().unwrap_or("sessiond").to_owned()
}

fn password(request: PasswordRequest) -> Result<Option<String>, ApiError> {
    match request.password {
        Some(p) if p.len() > MAX_PASSWORD => Err(ApiError::BadRequest("password is too long".into())),
        Some(p) if p.is_empty() => Err(ApiError::BadRequest("password is empty".into())),
        other => Ok(other),
    }
}

pub(crate) fn audit_change(app: &App, ctx: &RequestContext, user: &str, reason: &'static str) {
    let event = AuditEvent {
        realm: Some(ctx.realm.name()),
        user: Some(user),
        actor: Some(user),
        reason: Some(reason),
        ip: ctx.ip.as_deref(),
        user_agent: ctx.user_agent.as_deref(),
        ..AuditEvent::default()
    };
    app.audit(AuditKind::TotpChanged, &event);
}

/// `GET /api/v1/totp`: whether the caller has a second factor. Callers: signed in.
#[utoipa::path(get, path = "/api/v1/totp", tag = "totp", security(("session" = [])),
    responses((status = 200, body = TotpStatus), (status = 401, body = ErrorBody)))]
pub(crate) async fn totp_status(State(app): State<App>, caller: Caller) -> Result<Json<TotpStatus>, ApiError> {
    let enrolled = totp::is_enrolled(&app.store, &caller.session.user, app.clock.now()).await?;
    Ok(Json(TotpStatus { enrolled }))
}

/// `POST /api/v1/totp/enroll [{password}]`: a new secret for the caller, pending until
/// `confirm` sees a code of it (within ten minutes). A TOTP in force stays in force until then.
/// Callers: signed in recently, or with the password.
#[utoipa::path(post, path = "/api/v1/totp/enroll", tag = "totp", security(("session" = [])), request_body = PasswordRequest,
    responses((status = 200, body = Enrollment, description = "the secret, shown only here"), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody, description = "unauthenticated, reauthentication_required, invalid_credentials"),
        (status = 429, body = ErrorBody)))]
pub(crate) async fn enroll(
    State(app): State<App>,
    ctx: RequestContext,
    caller: Caller,
    JsonBody(request): JsonBody<PasswordRequest>,
) -> Result<Json<Enrollment>, ApiError> {
    require_recent_sign_in(&app, &ctx, &caller.session, password(request)?).await?;
    let user = &caller.session.user;
    let secret = totp::begin_enrollment(&app.store, &app.totp_sealer, user, app.clock.now()).await?;
    Ok(Json(Enrollment { otpauth_url: otpauth_url(&issuer(&ctx.realm), user, &secret), secret: secret.to_base32() }))
}

/// `POST /api/v1/totp/confirm {code}`: confirms the pending enrollment; from then on the
/// caller's logins ask for a code, and `two_factor` rules pass sessions made with one. Callers:
/// signed in.
#[utoipa::path(post, path = "/api/v1/totp/confirm", tag = "totp", security(("session" = [])), request_body = ConfirmRequest,
    responses((status = 200, body = TotpStatus), (status = 400, body = ErrorBody, description = "bad_request: wrong code, or nothing pending"),
        (status = 401, body = ErrorBody)))]
pub(crate) async fn confirm(
    State(app): State<App>,
    ctx: RequestContext,
    caller: Caller,
    JsonBody(request): JsonBody<ConfirmRequest>,
) -> Result<Json<TotpStatus>, ApiError> {
    let user = &caller.session.user;
    let code = request.code.trim();
    match totp::confirm(&app.store, &app.totp_sealer, user, code, app.clock.now()).await {
        Ok(()) => {
            audit_change(&app, &ctx, user, "enrolled");
            Ok(Json(TotpStatus { enrolled: true }))
        }
        Err(TotpCheckError::NotEnrolled) => {
            Err(ApiError::BadRequest("no enrollment is pending (or it is older than ten minutes); enroll again".into()))
        }
        Err(TotpCheckError::Invalid | TotpCheckError::Replayed) => {
            Err(ApiError::BadRequest("wrong code; enter the current code from the authenticator app".into()))
        }
        Err(TotpCheckError::Store(e)) => Err(e.into()),
    }
}

/// `DELETE /api/v1/totp {password}`: removes the caller's second factor; logins ask for the
/// password alone from then on. Answers `204`. Callers: signed in, with the password.
#[utoipa::path(delete, path = "/api/v1/totp", tag = "totp", security(("session" = [])), request_body = PasswordRequest,
    responses((status = 204, description = "removed (or there was none)"), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody, description = "unauthenticated, reauthentication_required, invalid_credentials"),
        (status = 429, body = ErrorBody)))]
pub(crate) async fn remove(
    State(app): State<App>,
    ctx: RequestContext,
    caller: Caller,
    JsonBody(request): JsonBody<PasswordRequest>,
) -> Result<StatusCode, ApiError> {
    let password = password(request)?.ok_or(ApiError::ReauthenticationRequired)?;
    require_recent_sign_in(&app, &ctx, &caller.session, Some(password)).await?;
    if totp::remove(&app.store, &caller.session.user).await? {
        audit_change(&app, &ctx, &caller.session.user, "removed");
    }
    Ok(StatusCode::NO_CONTENT)
}
