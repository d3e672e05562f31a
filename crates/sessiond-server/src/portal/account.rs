//! The account page: who I am, where I am signed in, and signing out other sessions.

use super::csrf::{self, Purpose};
use super::{Flash, PageError, SignedIn, flash, live_sessions, render, see_other};
use crate::audit::{AuditEvent, AuditKind};
use crate::error::ApiError;
use crate::extract::{Caller, RequestContext, ResponseCookies};
use crate::metrics::EndKind;
use crate::state::App;
use askama::Template;
use axum::extract::rejection::FormRejection;
use axum::extract::{Form, Path, State};
use axum::http::HeaderMap;
use axum::response::Response;
use serde::Deserialize;
use sessiond_core::session::SessionRecord;
use sessiond_core::time::Timestamp;
use sessiond_core::token::SessionId;
use tracing::info;

/// Who a user is, as shown on the portal.
pub(super) struct Identity {
    pub(super) name: String,
    pub(super) display_name: Option<String>,
    pub(super) email: Option<String>,
    pub(super) groups: Vec<String>,
}

impl Identity {
    /// The user `name` as the users file has it now, else as `fallback` recorded it at login.
    pub(super) fn of(app: &App, name: &str, fallback: Option<&SessionRecord>) -> Option<Self> {
        match app.users.snapshot().get(name) {
            Some(u) => Some(Self { name: u.name, display_name: u.display_name, email: u.email, groups: u.groups }),
            None => fallback.map(|s| Self {
                name: s.user.clone(),
                display_name: s.display_name.clone(),
                email: s.email.clone(),
                groups: s.groups.clone(),
            }),
        }
    }

    /// The name to greet the user by.
    pub(super) fn greeting(&self) -> &str {
        self.display_name.as_deref().filter(|d| !d.trim().is_empty()).unwrap_or(&self.name)
    }

    /// The first letter of the greeting, for the avatar.
    pub(super) fn initial(&self) -> String {
        self.greeting()
            .chars()
            .find(|c| c.is_alphanumeric())
            .map_or_else(|| "?".to_owned(), |c| c.to_uppercase().collect())
    }
}

/// One session as a row of the sessions table.
pub(super) struct SessionRow {
    pub(super) id: String,
    pub(super) browser: String,
    pub(super) os: String,
    pub(super) ip: String,
    pub(super) created: String,
    pub(super) created_iso: String,
    pub(super) last_seen: String,
    pub(super) last_seen_ago: String,
    pub(super) last_seen_iso: String,
    pub(super) remembered: bool,
    pub(super) current: bool,
}

impl SessionRow {
    pub(super) fn new(s: &SessionRecord, current: bool, now: Timestamp) -> Self {
        let (browser, os) = describe_agent(s.user_agent.as_deref());
        Self {
            id: s.id.to_string(),
            browser,
            os,
            ip: s.ip.clone().unwrap_or_else(|| "unknown".to_owned()),
            created: super::human_utc(s.created_at),
            created_iso: s.created_at.rfc3339(),
            last_seen: super::human_utc(s.last_seen_at),
            last_seen_ago: super::ago(s.last_seen_at, now),
            last_seen_iso: s.last_seen_at.rfc3339(),
            remembered: s.remember_me,
            current,
        }
    }
}

/// Longest product name shown for a user agent woothee does not know.
const MAX_PRODUCT: usize = 40;

/// The browser (with its major version) and the operating system behind a user agent, as
/// people name them: `("Firefox 128", "Linux")`.
pub(super) fn describe_agent(user_agent: Option<&str>) -> (String, String) {
    let Some(ua) = user_agent.filter(|ua| !ua.trim().is_empty()) else {
        return ("Unknown device".to_owned(), String::new());
    };
    let known = |v: &str| !v.is_empty() && v != woothee::woothee::VALUE_UNKNOWN;
    let parsed = woothee::parser::Parser::new().parse(ua);
    let browser = match &parsed {
        Some(r) if known(r.name) => {
            let major = r.version.split('.').next().filter(|v| known(v));
            major.map_or_else(|| r.name.to_owned(), |v| format!("{} {v}", r.name))
        }
        // A script or a tool: its product token (`curl/8.5.0`) says more than "unknown".
        _ => ua.split_whitespace().next().unwrap_or(ua).chars().take(MAX_PRODUCT).collect(),
    };
    let os = match &parsed {
        Some(r) if known(r.os) => r.os.to_owned(),
        _ => String::new(),
    };
    (browser, os)
}

#[derive(Template)]
#[template(path = "account.html")]
struct AccountPage {
    notice: Option<Flash>,
    user: Identity,
    sessions: Vec<SessionRow>,
    csrf: String,
    is_admin: bool,
    /// The realm keeps sessions in cookies: the others exist, but only this one is known.
    in_cookies: bool,
    /// The sign-in is older than `server.reauth_window`: sensitive forms ask for the password.
    needs_password: bool,
    /// The visitor has a second factor.
    totp_enrolled: bool,
    /// This session was made with the second factor.
    with_second_factor: bool,
}

/// Whether the session's sign-in is older than `server.reauth_window`.
pub(super) fn needs_password(app: &App, session: &sessiond_core::session::SessionRecord) -> bool {
    let window = app.settings.reauth_window;
    window.is_zero() || session.created_at + window < app.clock.now()
}

/// The CSRF token of a signed-in visitor's forms.
pub(super) fn session_csrf(app: &App, caller: &Caller) -> String {
    csrf::token(&app.csrf, Purpose::Session, caller.session.token_hash.as_bytes())
}

/// Checks a signed-in visitor's form: sent from our own pages, with the session's CSRF token.
pub(super) fn check_session_form(
    app: &App,
    caller: &Caller,
    headers: &HeaderMap,
    presented: &str,
) -> Result<(), PageError> {
    super::require_same_origin(headers, &caller.realm)?;
    if csrf::verify(&app.csrf, Purpose::Session, caller.session.token_hash.as_bytes(), presented) {
        Ok(())
    } else {
        Err(PageError::FormExpired)
    }
}

/// `GET /`: the account page — identity, live sessions, and the buttons to end them.
/// Callers: signed in; others are sent to `/login`.
pub(super) async fn account_page(
    State(app): State<App>,
    SignedIn(caller): SignedIn,
    cookies: ResponseCookies,
    headers: HeaderMap,
) -> Result<Response, PageError> {
    let session = &caller.session;
    let now = app.clock.now();
    let sessions = live_sessions(&app, &caller.realm, &session.user, session)
        .await?
        .iter()
        .map(|s| SessionRow::new(s, s.token_hash == session.token_hash, now))
        .collect();
    let user = Identity::of(&app, &session.user, Some(session)).ok_or(PageError::NotFound)?;
    let page = AccountPage {
        notice: flash::take(&headers, &caller.realm, &cookies),
        user,
        sessions,
        csrf: session_csrf(&app, &caller),
        is_admin: caller.is_admin,
        in_cookies: caller.realm.policy.location == sessiond_core::realm::SessionLocation::Client,
        needs_password: needs_password(&app, session),
        totp_enrolled: crate::totp::is_enrolled(&app.store, &session.user, now).await?,
        with_second_factor: session.amr.iter().any(|m| m == sessiond_core::session::amr::OTP),
    };
    Ok(render(&app, &caller.realm, &page))
}

/// A form that carries only the CSRF token.
#[derive(Deserialize)]
pub(super) struct CsrfForm {
    #[serde(default)]
    pub(super) csrf: String,
}

/// A sensitive form: the CSRF token, and the password when the sign-in is not recent.
#[derive(Deserialize)]
pub(super) struct ConfirmedForm {
    #[serde(default)]
    pub(super) csrf: String,
    pub(super) password: Option<String>,
}

/// Lets a sensitive form go ahead (see [`crate::login::require_recent_sign_in`]); otherwise
/// answers where to send the visitor, with the flash that says why.
pub(super) async fn confirm_sensitive(
    app: &App,
    ctx: &RequestContext,
    caller: &Caller,
    cookies: &ResponseCookies,
    password: Option<String>,
    back_to: &str,
) -> Result<Option<Response>, PageError> {
    let password = password.filter(|p| !p.is_empty());
    match crate::login::require_recent_sign_in(app, ctx, &caller.session, password).await {
        Ok(()) => Ok(None),
        Err(ApiError::ReauthenticationRequired | ApiError::InvalidCredentials) => {
            flash::set(cookies, &caller.realm, Flash::WrongPassword);
            Ok(Some(see_other(back_to)))
        }
        Err(ApiError::TooManyAttempts) => {
            flash::set(cookies, &caller.realm, Flash::TooManyAttempts);
            Ok(Some(see_other(back_to)))
        }
        Err(e) => Err(e.into()),
    }
}

/// `POST /sessions/{id}/revoke` (CSRF): ends one of the visitor's own sessions; ending the
/// current one signs this browser out. Callers: signed in, for their own sessions in this realm;
/// other ids answer 404.
pub(super) async fn revoke_session(
    State(app): State<App>,
    SignedIn(caller): SignedIn,
    ctx: RequestContext,
    cookies: ResponseCookies,
    headers: HeaderMap,
    Path(id): Path<String>,
    form: Result<Form<CsrfForm>, FormRejection>,
) -> Result<Response, PageError> {
    let Form(form) = form.map_err(|_| PageError::BadForm)?;
    check_session_form(&app, &caller, &headers, &form.csrf)?;
    let id = SessionId::parse(&id).map_err(|_| PageError::NotFound)?;
    let target = crate::sessions::by_id(&app, &id, &caller.session).await?.ok_or(PageError::NotFound)?;
    if target.user != caller.session.user || target.realm != caller.session.realm {
        return Err(PageError::NotFound);
    }
    let ended = crate::sessions::end(&app, &target).await?;
    let kind = if target.token_hash == caller.session.token_hash { EndKind::Logout } else { EndKind::Revoke };
    app.metrics.sessions_ended(kind, usize::from(ended));
    let detail = AuditEvent {
        actor: Some(&caller.session.user),
        ip: ctx.ip.as_deref(),
        user_agent: ctx.user_agent.as_deref(),
        ..AuditEvent::of_session(&target)
    };
    if target.token_hash == caller.session.token_hash {
        info!(session_id = %target.id, user = %target.user, "logged out");
        app.audit(AuditKind::Logout, &AuditEvent { actor: None, ..detail });
        super::logout::delete_cookies(&cookies, &caller.realm);
        flash::set(&cookies, &caller.realm, Flash::LoggedOut);
        return Ok(see_other("/login"));
    }
    info!(session_id = %target.id, user = %target.user, by = %caller.session.user, "session revoked");
    app.audit(AuditKind::Revoked, &detail);
    flash::set(&cookies, &caller.realm, Flash::SessionEnded);
    Ok(see_other("/"))
}

/// `POST /sessions/revoke-others` (CSRF): "sign out everywhere else" — ends every session of the
/// visitor in this realm except the current one. Callers: signed in.
pub(super) async fn revoke_other_sessions(
    State(app): State<App>,
    SignedIn(caller): SignedIn,
    ctx: RequestContext,
    cookies: ResponseCookies,
    headers: HeaderMap,
    form: Result<Form<ConfirmedForm>, FormRejection>,
) -> Result<Response, PageError> {
    let Form(form) = form.map_err(|_| PageError::BadForm)?;
    check_session_form(&app, &caller, &headers, &form.csrf)?;
    if let Some(refused) = confirm_sensitive(&app, &ctx, &caller, &cookies, form.password, "/").await? {
        return Ok(refused);
    }
    let session = &caller.session;
    let ended =
        crate::sessions::end_user_sessions(&app, &caller.realm, &session.user, Some(session), Some(session)).await?;
    app.metrics.sessions_ended(EndKind::RevokeAll, ended.len());
    info!(user = %session.user, realm = %session.realm, count = ended.len(), "other sessions revoked");
    app.audit(
        AuditKind::Revoked,
        &AuditEvent {
            realm: Some(&session.realm),
            user: Some(&session.user),
            actor: Some(&session.user),
            ip: ctx.ip.as_deref(),
            user_agent: ctx.user_agent.as_deref(),
            reason: Some("everywhere_else"),
            count: Some(ended.len()),
            ..AuditEvent::default()
        },
    );
    flash::set(&cookies, &caller.realm, Flash::OthersEnded);
    Ok(see_other("/"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn browsers_and_systems_are_named_like_people_name_them() {
        let firefox = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0";
        assert_eq!(describe_agent(Some(firefox)), ("Firefox 128".to_owned(), "Linux".to_owned()));
        let chrome = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36";
        let (browser, os) = describe_agent(Some(chrome));
        assert_eq!(browser, "Chrome 126");
        assert!(os.starts_with("Windows"), "{os}");
    }

    #[test]
    fn tools_and_missing_agents_still_read_sensibly() {
        assert!(describe_agent(Some("curl/8.5.0")).0.contains("curl"));
        assert_eq!(describe_agent(Some("acme-sync/2.1 (+https://acme.test)")).0, "acme-sync/2.1");
        assert_eq!(describe_agent(None).0, "Unknown device");
        assert_eq!(describe_agent(Some("  ")).0, "Unknown device");
        assert_eq!(describe_agent(Some(&"x".repeat(500))).0.len(), MAX_PRODUCT);
    }
}
