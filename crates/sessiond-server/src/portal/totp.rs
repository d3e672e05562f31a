//! The two-factor page: set up an authenticator app (QR code, secret for manual entry, a code
//! to confirm), or remove it with the password.
//!
//! Setting one up needs a recent sign-in (`server.reauth_window`) or the password; removing
//! always needs the password. The secret appears only on the page that answers the enrollment
//! form, never in a URL.

use super::account::{ConfirmedForm, check_session_form, confirm_sensitive, needs_password, session_csrf};
use super::{Flash, PageError, SignedIn, flash, render, see_other};
use crate::api::totp::{audit_change, issuer};
use crate::extract::{RequestContext, ResponseCookies};
use crate::state::App;
use crate::totp::{self, TotpCheckError};
use askama::Template;
use axum::extract::rejection::FormRejection;
use axum::extract::{Form, State};
use axum::http::HeaderMap;
use axum::response::Response;
use serde::Deserialize;
use sessiond_core::totp::{otpauth_url, qr_svg};

#[derive(Template)]
#[template(path = "totp.html")]
struct TotpPage {
    notice: Option<Flash>,
    csrf: String,
    enrolled: bool,
    needs_password: bool,
}

#[derive(Template)]
#[template(path = "totp_enroll.html")]
struct EnrollPage {
    notice: Option<Flash>,
    csrf: String,
    /// The QR code, an inline SVG made by us (no script, no external reference).
    qr: String,
    /// The secret in base32, in groups of four for reading.
    secret: String,
}

/// `GET /totp`: whether an authenticator app is set up, with the forms to set one up or
/// remove it. Callers: signed in.
pub(super) async fn totp_page(
    State(app): State<App>,
    SignedIn(caller): SignedIn,
    cookies: ResponseCookies,
    headers: HeaderMap,
) -> Result<Response, PageError> {
    let page = TotpPage {
        notice: flash::take(&headers, &caller.realm, &cookies),
        csrf: session_csrf(&app, &caller),
        enrolled: totp::is_enrolled(&app.store, &caller.session.user, app.clock.now()).await?,
        needs_password: needs_password(&app, &caller.session),
    };
    Ok(render(&app, &caller.realm, &page))
}

fn grouped(secret: &str) -> String {
    secret.as_bytes().chunks(4).map(|c| String::from_utf8_lossy(c).into_owned()).collect::<Vec<_>>().join(" ")
}

/// `POST /totp/enroll` (CSRF; the password when the sign-in is not recent): a new secret,
/// shown with its QR code and a form for the confirming code. Callers: signed in.
pub(super) async fn enroll(
    State(app): State<App>,
    SignedIn(caller): SignedIn,
    ctx: RequestContext,
    cookies: ResponseCookies,
    headers: HeaderMap,
    form: Result<Form<ConfirmedForm>, FormRejection>,
) -> Result<Response, PageError> {
    let Form(form) = form.map_err(|_| PageError::BadForm)?;
    check_session_form(&app, &caller, &headers, &form.csrf)?;
    if let Some(refused) = confirm_sensitive(&app, &ctx, &caller, &cookies, form.password, "/totp").await? {
        return Ok(refused);
    }
    let user = &caller.session.user;
    let secret = totp::begin_enrollment(&app.store, &app.totp_sealer, user, app.clock.now()).await?;
    let url = otpauth_url(&issuer(&caller.realm), user, &secret);
    let qr = qr_svg(&url).map_err(crate::error::ApiError::internal)?;
    let page = EnrollPage { notice: None, csrf: session_csrf(&app, &caller), qr, secret: grouped(&secret.to_base32()) };
    let mut response = render(&app, &caller.realm, &page);
    // The page holds the secret: never kept by a cache, never offered again by the back button.
    response.headers_mut().insert(axum::http::header::CACHE_CONTROL, axum::http::HeaderValue::from_static("no-store"));
    Ok(response)
}

/// What the confirmation form posts.
#[derive(Deserialize)]
pub(super) struct CodeForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    code: String,
}

/// `POST /totp/confirm` (CSRF): confirms the enrollment with a code. Success: `303 /totp`
/// with the news; a wrong code: back to `/totp` to start again. Callers: signed in.
pub(super) async fn confirm(
    State(app): State<App>,
    SignedIn(caller): SignedIn,
    ctx: RequestContext,
    cookies: ResponseCookies,
    headers: HeaderMap,
    form: Result<Form<CodeForm>, FormRejection>,
) -> Result<Response, PageError> {
    let Form(form) = form.map_err(|_| PageError::BadForm)?;
    check_session_form(&app, &caller, &headers, &form.csrf)?;
    let user = &caller.session.user;
    let flash = match totp::confirm(&app.store, &app.totp_sealer, user, form.code.trim(), app.clock.now()).await {
        Ok(()) => {
            audit_change(&app, &ctx, user, "enrolled");
            Flash::TotpEnrolled
        }
        Err(TotpCheckError::Store(e)) => return Err(e.into()),
        Err(_) => Flash::InvalidCode,
    };
    flash::set(&cookies, &caller.realm, flash);
    Ok(see_other("/totp"))
}

/// `POST /totp/remove` (CSRF, password): removes the authenticator app. Callers: signed in.
pub(super) async fn remove(
    State(app): State<App>,
    SignedIn(caller): SignedIn,
    ctx: RequestContext,
    cookies: ResponseCookies,
    headers: HeaderMap,
    form: Result<Form<ConfirmedForm>, FormRejection>,
) -> Result<Response, PageError> {
    let Form(form) = form.map_err(|_| PageError::BadForm)?;
    check_session_form(&app, &caller, &headers, &form.csrf)?;
    // Always the password: whoever holds an open session must not quietly weaken the sign-in.
    let password = Some(form.password.unwrap_or_default()).filter(|p| !p.is_empty());
    if password.is_none() {
        flash::set(&cookies, &caller.realm, Flash::WrongPassword);
        return Ok(see_other("/totp"));
    }
    if let Some(refused) = confirm_sensitive(&app, &ctx, &caller, &cookies, password, "/totp").await? {
        return Ok(refused);
    }
    if totp::remove(&app.store, &caller.session.user).await? {
        audit_change(&app, &ctx, &caller.session.user, "removed");
    }
    flash::set(&cookies, &caller.realm, Flash::TotpRemoved);
    Ok(see_other("/totp"))
}
