//! The sign-in pages: the password form, and the TOTP code form for users with a second factor
//! (also the step-up page a `two_factor` rule sends signed-in visitors to).
//!
//! Both run on the journey engine (`crate::journeys`, `crate::login`): `GET /login` starts a
//! journey and keeps its `auth_id` in the `<name>_authn` cookie; each form carries a CSRF token
//! bound to the journey, so a page elsewhere can neither post the form nor sign the visitor
//! into someone else's account.

use super::csrf::{self, Purpose as CsrfPurpose};
use super::{Flash, PageError, flash, render, see_other, valid_redirect, with_query};
use crate::error::ApiError;
use crate::extract::{Caller, RequestContext, ResponseCookies};
use crate::journeys::{self, Journey};
use crate::login::{Answer, Credentials, Outcome, run_step};
use crate::state::{App, Realm};
use askama::Template;
use axum::Extension;
use axum::extract::rejection::FormRejection;
use axum::extract::{ConnectInfo, Form, Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde::Deserialize;
use sessiond_core::journey::{Purpose, Step};
use sessiond_core::provider::Provider;
use sessiond_core::session::SessionRecord;
use std::net::SocketAddr;

#[derive(Template)]
#[template(path = "login.html")]
struct LoginPage<'a> {
    notice: Option<Flash>,
    csrf: String,
    rd: Option<&'a str>,
    /// How long "remember me" keeps the session, when the realm offers it.
    remember_for: Option<String>,
    /// Buttons for the other login providers: their path and label.
    providers: Vec<(String, String)>,
}

#[derive(Template)]
#[template(path = "login_totp.html")]
struct TotpPage<'a> {
    notice: Option<Flash>,
    csrf: String,
    rd: Option<&'a str>,
    /// Whether this upgrades a signed-in session rather than finishing a login.
    step_up: bool,
}

/// The journey the request's cookie names, when it is live.
async fn presented_journey(app: &App, realm: &Realm, headers: &HeaderMap) -> Option<Journey> {
    let auth_id = journeys::presented_auth_id(headers, realm)?;
    journeys::load(app, realm, auth_id, app.clock.now()).await.ok()
}

fn csrf_for(app: &App, journey: &sessiond_core::journey::JourneyState) -> String {
    csrf::token(&app.csrf, CsrfPurpose::Login, journey.id.as_str().as_bytes())
}

/// `GET /login[?rd=URL]`: the sign-in form. A visitor who is signed in already goes straight on
/// to `rd` (when it is allowed) or to the account page; one whose login waits for a code goes to
/// the code form. Shows the waiting flash message once. Callers: anyone.
pub(super) async fn login_form(
    State(app): State<App>,
    ctx: RequestContext,
    caller: Result<Caller, Response>,
    cookies: ResponseCookies,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Result<Response, PageError> {
    let realm = &ctx.realm;
    let rd = valid_redirect(&app, realm, super::query_param(query.as_deref(), "rd").as_deref());
    let rd_given = rd.as_ref().map(|r| r.given.as_str());
    if caller.is_ok() {
        return Ok(see_other(rd.as_ref().map_or("/", |r| r.url.as_str())));
    }
    let mut notice = flash::take(&headers, realm, &cookies);
    let session_ended = matches!(&caller, Err(r) if r.status() == StatusCode::UNAUTHORIZED);
    if notice.is_none() && session_ended && crate::extract::has_session_cookie(&headers, realm) {
        notice = Some(Flash::SessionExpired);
    }

    // A journey that will still be good for half its timeout is kept, so that two open sign-in
    // tabs do not end each other's; otherwise a new one starts.
    let now = app.clock.now();
    let timeout = realm.policy.journeys.timeout;
    let state = match presented_journey(&app, realm, &headers).await {
        Some(j) if j.state.purpose == Purpose::Login && j.state.step == Step::Totp => {
            if let Some(notice) = notice {
                flash::set(&cookies, realm, notice);
            }
            return Ok(see_other(&with_query("/login/totp", "rd", rd_given)));
        }
        Some(j) if j.state.purpose == Purpose::Login && !j.state.is_expired(now + timeout / 2) => j.state,
        _ => {
            let state = journeys::new_state(realm, Purpose::Login, Step::Password, now);
            let auth_id = journeys::start(&app, realm, state.clone()).await?;
            journeys::set_authn_cookie(&cookies, realm, &auth_id);
            state
        }
    };
    let page = LoginPage {
        notice,
        csrf: csrf_for(&app, &state),
        rd: rd_given,
        remember_for: realm.policy.timeouts.remember_me.map(super::human_duration),
        providers: app
            .settings
            .providers
            .iter()
            .filter(|p| p.has_own_journey())
            .map(|p| (with_query(&format!("/login/{}", p.id()), "rd", rd_given), p.label().to_owned()))
            .collect(),
    };
    Ok(render(&app, realm, &page))
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

/// The journey a form was posted for: the one in the cookie, with the form's CSRF token bound
/// to it. Otherwise the flash that tells the visitor what happened.
async fn posted_journey(
    app: &App,
    realm: &Realm,
    headers: &HeaderMap,
    cookies: &ResponseCookies,
    csrf_token: &str,
) -> Result<Result<Journey, Flash>, PageError> {
    let Some(auth_id) = journeys::presented_auth_id(headers, realm) else { return Ok(Err(Flash::Csrf)) };
    let now = app.clock.now();
    let journey = match journeys::load(app, realm, auth_id, now).await {
        Ok(journey) => journey,
        Err(e) => {
            journeys::delete_authn_cookie(cookies, realm);
            return match e {
                // Junk in the cookie is a forgery, not a form left open too long.
                ApiError::JourneyExpired if !journeys::is_well_formed(app, realm, auth_id, now) => Ok(Err(Flash::Csrf)),
                ApiError::JourneyExpired => Ok(Err(Flash::JourneyExpired)),
                ApiError::JourneyReplayed => Ok(Err(Flash::JourneyReplayed)),
                other => Err(other.into()),
            };
        }
    };
    if !csrf::verify(&app.csrf, CsrfPurpose::Login, journey.state.id.as_str().as_bytes(), csrf_token) {
        return Ok(Err(Flash::Csrf));
    }
    Ok(Ok(journey))
}

/// Where a step's outcome sends the browser.
async fn after_step(
    app: &App,
    realm: &Realm,
    cookies: &ResponseCookies,
    outcome: Outcome,
    rd: Option<&super::Redirect>,
) -> Result<Response, PageError> {
    match outcome {
        Outcome::Done { record, .. } => {
            signed_in(app, realm, cookies, &record).await?;
            Ok(see_other(rd.map_or("/", |r| r.url.as_str())))
        }
        Outcome::Next { auth_id, step: Step::Totp } => {
            journeys::set_authn_cookie(cookies, realm, &auth_id);
            Ok(see_other(&with_query("/login/totp", "rd", rd.map(|r| r.given.as_str()))))
        }
        Outcome::Next { auth_id, step: Step::Password } => {
            journeys::set_authn_cookie(cookies, realm, &auth_id);
            Ok(see_other(&with_query("/login", "rd", rd.map(|r| r.given.as_str()))))
        }
    }
}

async fn signed_in(
    app: &App,
    realm: &Realm,
    cookies: &ResponseCookies,
    record: &SessionRecord,
) -> Result<(), PageError> {
    journeys::delete_authn_cookie(cookies, realm);
    if realm.policy.jwt.cookie {
        crate::jwt::issue_and_set(app, realm, record, cookies).await?;
    }
    Ok(())
}

/// The flash for a refused step, when it is one the visitor can act on.
fn refusal_flash(e: &ApiError) -> Option<Flash> {
    match e {
        ApiError::InvalidCredentials => Some(Flash::InvalidCredentials),
        ApiError::TooManyAttempts => Some(Flash::TooManyAttempts),
        ApiError::JourneyExpired => Some(Flash::JourneyExpired),
        ApiError::JourneyReplayed => Some(Flash::JourneyReplayed),
        ApiError::Unauthenticated(_) => Some(Flash::SessionExpired),
        _ => None,
    }
}

/// `POST /login`: the password step. Success: `303` to the allowed `rd` or `/` with a fresh
/// session cookie (a session presented with the request ends), or to `/login/totp` when the
/// user has a second factor. Failure: `303 /login[?rd=…]` with a flash message. Callers: anyone
/// holding the form.
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
    let journey = match posted_journey(&app, realm, &headers, &cookies, &form.csrf).await? {
        Ok(journey) if journey.state.step == Step::Password => journey,
        Ok(_) => return Ok(see_other(&with_query("/login/totp", "rd", rd.as_ref().map(|r| r.given.as_str())))),
        Err(flash) => return retry(flash),
    };
    let credentials =
        Credentials { username: form.username, password: form.password, remember_me: form.remember_me.is_some() };
    match run_step(&app, &ctx, &headers, &cookies, journey, Answer::Password(credentials)).await {
        Ok(outcome) => after_step(&app, realm, &cookies, outcome, rd.as_ref()).await,
        Err(e) => match refusal_flash(&e) {
            Some(flash) => retry(flash),
            None => Err(e.into()),
        },
    }
}

/// `GET /login/totp[?rd=URL]`: the code form. It finishes a login waiting for its second
/// factor, or, for a signed-in visitor (sent here by a `two_factor` rule), starts a step-up
/// that upgrades the session. Without either it sends the visitor to `/login`; a signed-in
/// visitor with no TOTP goes to the account page to set one up. Callers: anyone.
pub(super) async fn totp_form(
    State(app): State<App>,
    ctx: RequestContext,
    caller: Result<Caller, Response>,
    cookies: ResponseCookies,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Result<Response, PageError> {
    let realm = &ctx.realm;
    let rd = valid_redirect(&app, realm, super::query_param(query.as_deref(), "rd").as_deref());
    let rd_given = rd.as_ref().map(|r| r.given.as_str());
    let notice = flash::take(&headers, realm, &cookies);
    let now = app.clock.now();
    // Only the session is kept: a rejection (a `Response`) cannot be held across awaits.
    let session = caller.ok().map(|c| c.session);
    let state = match (presented_journey(&app, realm, &headers).await, session) {
        (Some(j), _) if j.state.step == Step::Totp => j.state,
        (_, Some(session)) => {
            if session.amr.iter().any(|m| m == sessiond_core::session::amr::OTP) {
                return Ok(see_other(rd.as_ref().map_or("/", |r| r.url.as_str())));
            }
            if !crate::totp::is_enrolled(&app.store, &session.user, now).await? {
                flash::set(&cookies, realm, Flash::TotpNeeded);
                return Ok(see_other("/totp"));
            }
            let state = crate::login::step_up_state(realm, &session, now);
            let auth_id = journeys::start(&app, realm, state.clone()).await?;
            journeys::set_authn_cookie(&cookies, realm, &auth_id);
            state
        }
        _ => {
            if let Some(notice) = notice {
                flash::set(&cookies, realm, notice);
            }
            return Ok(see_other(&with_query("/login", "rd", rd_given)));
        }
    };
    let page =
        TotpPage { notice, csrf: csrf_for(&app, &state), rd: rd_given, step_up: state.purpose == Purpose::StepUp };
    Ok(render(&app, realm, &page))
}

/// What the code form posts.
#[derive(Deserialize)]
pub(super) struct TotpForm {
    #[serde(default)]
    code: String,
    #[serde(default)]
    csrf: String,
    rd: Option<String>,
}

/// `POST /login/totp`: the code step. Success: `303` to the allowed `rd` or `/` with a new
/// session whose `amr` holds `otp` (the session it upgrades, or came with, ends). A wrong code:
/// back to the form with a flash; after three the login starts again. Callers: anyone holding
/// the form.
pub(super) async fn totp_submit(
    State(app): State<App>,
    ctx: RequestContext,
    cookies: ResponseCookies,
    headers: HeaderMap,
    form: Result<Form<TotpForm>, FormRejection>,
) -> Result<Response, PageError> {
    let realm = &ctx.realm;
    super::require_same_origin(&headers, realm)?;
    let Form(form) = form.map_err(|_| PageError::BadForm)?;
    let rd = valid_redirect(&app, realm, form.rd.as_deref());
    let rd_given = rd.as_ref().map(|r| r.given.as_str());
    let back = |flash: Flash, to: &str| {
        flash::set(&cookies, realm, flash);
        Ok(see_other(&with_query(to, "rd", rd_given)))
    };
    let journey = match posted_journey(&app, realm, &headers, &cookies, &form.csrf).await? {
        Ok(journey) if journey.state.step == Step::Totp => journey,
        Ok(_) => return Ok(see_other(&with_query("/login", "rd", rd_given))),
        Err(flash) => return back(flash, "/login"),
    };
    let code = form.code.trim().to_owned();
    match run_step(&app, &ctx, &headers, &cookies, journey, Answer::Totp(code)).await {
        Ok(outcome) => after_step(&app, realm, &cookies, outcome, rd.as_ref()).await,
        Err(ApiError::InvalidCredentials) => {
            // The journey lives on after a wrong code, until the third.
            let alive = presented_journey(&app, realm, &headers).await.is_some();
            if alive { back(Flash::InvalidCode, "/login/totp") } else { back(Flash::InvalidCode, "/login") }
        }
        Err(e) => match refusal_flash(&e) {
            Some(flash) => back(flash, "/login"),
            None => Err(e.into()),
        },
    }
}

/// `GET /login/{provider}[?rd=URL]`: signs in with a login provider (`authentication.providers`).
/// For a `header` provider, the trusted proxy in front of this path has authenticated the visitor
/// and names them in its headers: `303` to `rd` (or `/`) with a fresh session, or to
/// `/login/totp` when the user has a second factor. The headers from any other peer are refused
/// (`403`). Callers: anyone, through the provider.
pub(super) async fn provider_login(
    State(app): State<App>,
    ctx: RequestContext,
    cookies: ResponseCookies,
    headers: HeaderMap,
    connect: Option<Extension<ConnectInfo<SocketAddr>>>,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
) -> Result<Response, PageError> {
    let realm = &ctx.realm;
    let rd = valid_redirect(&app, realm, super::query_param(query.as_deref(), "rd").as_deref());
    let Some(provider) = crate::providers::find(&app, &id).cloned() else { return Err(PageError::NotFound) };
    let user = match &provider {
        Provider::Header(header) => {
            crate::providers::header_identity(&app, &ctx, header, connect.map(|c| c.0.0), &headers)?
        }
        _ => return Err(PageError::NotFound),
    };
    let outcome = crate::login::external_login(&app, &ctx, &headers, &cookies, &provider, user).await;
    match outcome {
        Ok(outcome) => after_step(&app, realm, &cookies, outcome, rd.as_ref()).await,
        Err(ApiError::TooManyAttempts) => {
            flash::set(&cookies, realm, Flash::TooManyAttempts);
            Ok(see_other(&with_query("/login", "rd", rd.as_ref().map(|r| r.given.as_str()))))
        }
        Err(e) => Err(e.into()),
    }
}
