//! Password login, shared by the JSON API and the portal: regulation, the password check, an end
//! to whatever session came with the request, and a fresh session.

use crate::audit::{AuditEvent, AuditKind};
use crate::error::ApiError;
use crate::extract::{RequestContext, ResponseCookies, find_credential};
use crate::metrics::{EndKind, LoginProvider, LoginResult};
use crate::regulation::Banned;
use crate::sessions::{self, Credential, NewSession};
use crate::state::App;
use crate::users::PasswordCheck;
use axum::http::HeaderMap;
use sessiond_core::session::{SessionRecord, amr};
use std::collections::BTreeMap;
use tracing::{info, warn};

/// What a person typed.
pub struct Credentials {
    /// User name.
    pub username: String,
    /// Password.
    pub password: String,
    /// Whether to remember the session.
    pub remember_me: bool,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials").field("username", &self.username).field("password", &"[redacted]").finish()
    }
}

/// The audit fields of a login attempt.
fn attempt<'a>(ctx: &'a RequestContext, user: &'a str) -> AuditEvent<'a> {
    AuditEvent {
        realm: Some(ctx.realm.name()),
        user: Some(user),
        ip: ctx.ip.as_deref(),
        user_agent: ctx.user_agent.as_deref(),
        ..AuditEvent::default()
    }
}

/// Checks `credentials` and, when they are right, creates a session with a fresh token (its cookie
/// queued in `cookies`). A session presented with the request is ended first, so a planted
/// session can never become a signed-in one.
///
/// # Errors
/// `too_many_attempts` while a ban is in force (the password is not even checked),
/// `invalid_credentials` for a wrong password or an unknown or disabled user, and store errors.
pub async fn password_login(
    app: &App,
    ctx: &RequestContext,
    headers: &HeaderMap,
    cookies: &ResponseCookies,
    credentials: Credentials,
) -> Result<(Credential, SessionRecord), ApiError> {
    let realm = &ctx.realm;
    let now = app.clock.now();
    if let Err(banned) = app.regulator.check(&credentials.username, ctx.ip.as_deref(), now) {
        warn!(user = %credentials.username, ip = ctx.ip.as_deref().unwrap_or("-"), on = ?banned, "login refused: too many failures");
        app.audit(
            AuditKind::LoginFailed,
            &AuditEvent { reason: Some("too_many_attempts"), ..attempt(ctx, &credentials.username) },
        );
        app.metrics.login(LoginProvider::Password, LoginResult::Banned);
        return Err(ApiError::TooManyAttempts);
    }

    let permit = app.hashing.acquire().await.map_err(ApiError::internal)?;
    let users = app.users.clone();
    let username = credentials.username.clone();
    let check = tokio::task::spawn_blocking(move || users.check_password(&username, &credentials.password))
        .await
        .map_err(ApiError::internal)?;
    drop(permit);
    let user = match check {
        PasswordCheck::Valid(user) => user,
        PasswordCheck::Invalid => {
            info!(user = %credentials.username, realm = %realm.name(), ip = ctx.ip.as_deref().unwrap_or("-"), "login failed");
            app.audit(
                AuditKind::LoginFailed,
                &AuditEvent { reason: Some("invalid_credentials"), ..attempt(ctx, &credentials.username) },
            );
            app.metrics.login(LoginProvider::Password, LoginResult::InvalidCredentials);
            for banned in app.regulator.failed(&credentials.username, ctx.ip.as_deref(), now) {
                warn!(user = %credentials.username, ip = ctx.ip.as_deref().unwrap_or("-"), on = ?banned, "banned after repeated login failures");
                let reason = match banned {
                    Banned::User => "user",
                    Banned::Address => "address",
                };
                app.audit(
                    AuditKind::Banned,
                    &AuditEvent { reason: Some(reason), ..attempt(ctx, &credentials.username) },
                );
                app.metrics.banned(banned);
            }
            return Err(ApiError::InvalidCredentials);
        }
    };
    app.regulator.succeeded(&user.name);

    // No fixation: whatever session the client came with ends here.
    if let Ok(Some((presented, _))) = find_credential(app, headers, realm) {
        if let Some(old) = sessions::end_presented(app, realm, &presented).await? {
            app.metrics.sessions_ended(EndKind::Logout, 1);
            info!(session_id = %old.id, "session replaced by a new login");
            app.audit(AuditKind::Logout, &AuditEvent { reason: Some("new_login"), ..AuditEvent::of_session(&old) });
        }
    }
    let new = NewSession {
        user: &user,
        amr: vec![amr::PASSWORD.to_owned()],
        remember_me: credentials.remember_me,
        ip: ctx.ip.clone(),
        user_agent: ctx.user_agent.clone(),
        attributes: BTreeMap::new(),
    };
    let (token, record) = sessions::create(app, realm, new, now, cookies).await?;
    app.metrics.login(LoginProvider::Password, LoginResult::Success);
    app.audit(
        AuditKind::LoginSucceeded,
        &AuditEvent { session_id: Some(record.id.as_str()), ..attempt(ctx, &record.user) },
    );
    if credentials.remember_me && !record.remember_me {
        warn!(realm = %realm.name(), "remember me asked for but turned off in this realm");
    }
    Ok((token, record))
}
