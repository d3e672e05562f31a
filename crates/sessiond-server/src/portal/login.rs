//! The sign-in form and its submission.
//!
//! `GET /login` hands out a login ticket in the `<name>_authn` cookie and a CSRF token bound to
//! it in the form; `POST /login` needs both, so a page elsewhere can neither post the form nor
//! sign the visitor into someone else's account.

use super::csrf::{self, Purpose};
use super::{Flash, PageError, flash, render, see_other, valid_redirect, with_query};
use crate::error::ApiError;
use crate::extract::{Caller, RequestContext, ResponseCookies};
use crate::login::{Credentials, password_login};
use crate::state::{App, Realm};
use askama::Template;
use axum::extract::rejection::FormRejection;
use axum::extract::{Form, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::Response;
use serde::Deserialize;
use sessiond_core::cookie::{AUTHN_SUFFIX, CookieSpec, SameSite, find_cookie};
use sessiond_core::journey::JourneyError;

#[derive(Template)]
#[template(path = "login.html")]
struct LoginPage<'a> {
    notice: Option<Flash>,
    csrf: String,
    rd: Option<&'a str>,
    /// How long "remember me" keeps the session, when the realm offers it.
    remember_for: Option<String>,
}

/// The login-ticket cookie of `realm`: `HttpOnly` and `SameSite=Lax` at least, whatever the
/// session cookie's settings, so that no script and no other site's form can use it.
fn authn_spec(realm: &Realm) -> CookieSpec {
    let same_site = if realm.cookie.same_site == SameSite::Strict { SameSite::Strict } else { SameSite::Lax };
    CookieSpec { http_only: true, persistent: true, same_site, ..realm.cookie.companion(AUTHN_SUFFIX) }
}

/// Deletes the login-ticket cookie.
pub(super) fn delete_authn_cookie(cookies: &ResponseCookies, realm: &Realm) {
    cookies.push(&authn_spec(realm).delete_cookie());
}

/// The login ticket the request carries, if any.
fn presented_ticket<'h>(headers: &'h HeaderMap, realm: &Realm) -> Option<&'h str> {
    find_cookie(headers.get_all(header::COOKIE).iter().map(HeaderValue::as_bytes), &authn_spec(realm).name)
        .ok()
        .flatten()
}

/// `GET /login[?rd=URL]`: the sign-in form. A visitor who is signed in already goes straight on
/// to `rd` (when it is allowed) or to the account page. Shows the waiting flash message once.
/// Callers: anyone.
pub(super) async fn login_form(
    State(app): State<App>,
    ctx: RequestContext,
    caller: Result<Caller, Response>,
    cookies: ResponseCookies,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let realm = &ctx.realm;
    let rd = valid_redirect(&app, realm, super::query_param(query.as_deref(), "rd").as_deref());
    if caller.is_ok() {
        return see_other(rd.as_ref().map_or("/", |r| r.url.as_str()));
    }
    let mut notice = flash::take(&headers, realm, &cookies);
    let session_ended = matches!(&caller, Err(r) if r.status() == StatusCode::UNAUTHORIZED);
    if notice.is_none() && session_ended && crate::extract::has_session_cookie(&headers, realm) {
        notice = Some(Flash::SessionExpired);
    }

    // A ticket that will still be good for half the journey timeout is kept, so that two open
    // sign-in tabs do not invalidate each other; otherwise a new one is handed out.
    let now = app.clock.now();
    let timeout = app.settings.journey_timeout;
    let ticket = match presented_ticket(&headers, realm) {
        Some(t) if app.tickets.check(realm.name(), t, now + timeout / 2).is_ok() => t.to_owned(),
        _ => {
            let t = app.tickets.issue(realm.name(), now, timeout);
            cookies.push(&authn_spec(realm).set_cookie(&t, Some(timeout)));
            t
        }
    };
    let page = LoginPage {
        notice,
        csrf: csrf::token(&app.csrf, Purpose::Login, ticket.as_bytes()),
        rd: rd.as_ref().map(|r| r.given.as_str()),
        remember_for: realm.policy.timeouts.remember_me.map(super::human_duration),
    };
    render(&app, realm, &page)
}

/// What the sign-in form posts. Never `Debug`: it holds the password.
#[derive(Deserialize)]
pub(super) struct LoginForm {
    #[serde(default)]
    username: String,
    #[serde(default)]
    password: String,
    remember_me: Option<String>,
    #[serde(default)]
    csrf: String,
    rd: Option<String>,
}

/// `POST /login`: checks the login ticket, the CSRF token and the credentials. Success: `303` to
/// the allowed `rd` or `/`, with a fresh session cookie (a session presented with the request
/// ends). Failure: `303 /login[?rd=…]` with a flash message. Callers: anyone holding the form.
pub(super) async fn login_submit(
    State(app): State<App>,
    ctx: RequestContext,
    cookies: ResponseCookies,
    headers: HeaderMap,
    form: Result<Form<LoginForm>, FormRejection>,
) -> Result<Response, PageError> {
    let realm = &ctx.realm;
    super::require_same_origin(&headers, realm)?;
    let Form(form) = form.map_err(|_| PageError::BadForm)?;
    let rd = valid_redirect(&app, realm, form.rd.as_deref());
    let retry = |flash: Flash| {
        flash::set(&cookies, realm, flash);
        Ok(see_other(&with_query("/login", "rd", rd.as_ref().map(|r| r.given.as_str()))))
    };

    let now = app.clock.now();
    let Some(ticket) = presented_ticket(&headers, realm) else { return retry(Flash::Csrf) };
    match app.tickets.check(realm.name(), ticket, now) {
        Ok(()) => {}
        Err(JourneyError::Expired) => return retry(Flash::JourneyExpired),
        Err(_) => return retry(Flash::Csrf),
    }
    if !csrf::verify(&app.csrf, Purpose::Login, ticket.as_bytes(), &form.csrf) {
        return retry(Flash::Csrf);
    }

    let credentials =
        Credentials { username: form.username, password: form.password, remember_me: form.remember_me.is_some() };
    match password_login(&app, &ctx, &headers, &cookies, credentials).await {
        Ok((_, record)) => {
            delete_authn_cookie(&cookies, realm);
            if realm.policy.jwt.cookie {
                crate::jwt::issue_and_set(&app, realm, &record, &cookies).await?;
            }
            Ok(see_other(rd.as_ref().map_or("/", |r| r.url.as_str())))
        }
        Err(ApiError::InvalidCredentials) => retry(Flash::InvalidCredentials),
        Err(ApiError::TooManyAttempts) => retry(Flash::TooManyAttempts),
        Err(e) => Err(e.into()),
    }
}
