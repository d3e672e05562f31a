//! The sign-in pages: the password form, and the TOTP code form for users with a second factor
//! (also the step-up page a `two_factor` rule sends signed-in visitors to).
//!
//! Both run on the journey engine (`crate::journeys`, `crate::login`): `GET /login` starts a
//! journey and keeps its `auth_id` in the `<name>_authn` cookie; each form carries a CSRF token
//! bound to the journey, so a page elsewhere can neither post the form nor sign the visitor
//! into someone else's account.

use super::csrf::{self, Purpose as CsrfPurpose};
use super::{Flash, PageError, flash, render, see_other, valid_redirect, with_query};
use crate::audit::{AuditEvent, AuditKind};
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
use sessiond_core::cookie::SameSite;
use sessiond_core::journey::{Purpose, Step};
use sessiond_core::provider::Provider;
use sessiond_core::session::SessionRecord;
use std::net::SocketAddr;
use tracing::warn;

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
#[template(path = "login_continue.html")]
struct ContinuePage {
    /// The same callback, asked again from the portal's own page.
    href: String,
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
        // No step leads back to a provider; should one, the sign-in starts over.
        Outcome::Next { auth_id, step: Step::Password | Step::Provider } => {
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
pub(super) fn refusal_flash(e: &ApiError) -> Option<Flash> {
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
    // Only the session is kept: a rejection (a `Response`) cannot be held across awaits.
    let session = caller.ok().map(|c| c.session);
    let state = match (presented_journey(&app, realm, &headers).await, session) {
        (Some(j), _) if j.state.step == Step::Totp => j.state,
        (_, Some(session)) => {
            if session.amr.iter().any(|m| m == sessiond_core::session::amr::OTP) {
                return Ok(see_other(rd.as_ref().map_or("/", |r| r.url.as_str())));
            }
            let Some((auth_id, state)) = crate::login::start_step_up(&app, realm, &session).await? else {
                flash::set(&cookies, realm, Flash::TotpNeeded);
                return Ok(see_other("/totp"));
            };
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
/// (`403`). For an `oidc` provider: a journey starts (its `auth_id` in the `<name>_authn`
/// cookie) and the visitor is sent (`303`) to the provider's authorization endpoint; `503` when
/// the provider cannot be discovered. Callers: anyone, through the provider.
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
        Provider::Oidc(_) | Provider::Saml(_) => {
            return start_external(&app, realm, &cookies, &id, rd.as_ref().map(|r| r.given.clone())).await;
        }
        _ => return Err(PageError::NotFound),
    };
    let outcome = crate::login::external_login(&app, &ctx, &headers, &cookies, &provider, user).await;
    external_outcome(&app, realm, &cookies, outcome, rd.as_ref()).await
}

/// Sends the visitor to sign in at the OpenID or SAML provider `id`, in a new journey.
async fn start_external(
    app: &App,
    realm: &Realm,
    cookies: &ResponseCookies,
    id: &str,
    return_to: Option<String>,
) -> Result<Response, PageError> {
    let mut state = journeys::new_state(realm, Purpose::Login, Step::Provider, app.clock.now());
    state.provider = Some(id.to_owned());
    state.return_to = return_to;
    let auth_id = journeys::start(app, realm, state).await?;
    let url = match app.oidc.get(id) {
        Some(oidc) => oidc.authorization_url(app, realm, &auth_id).await,
        None => saml_authorization_url(app, realm, id, &auth_id).ok_or(PageError::NotFound)?,
    };
    let url = url.map_err(|e| {
        warn!(provider = %id, error = %e, "sign-in at the identity provider cannot start");
        ApiError::ProviderUnavailable(std::sync::Arc::new(e))
    })?;
    journeys::set_authn_cookie(cookies, realm, &auth_id);
    Ok(see_other(url.as_str()))
}

/// Where the SAML provider `id` signs the journey of `auth_id` in; none when there is no such
/// provider.
#[cfg(feature = "saml")]
fn saml_authorization_url(
    app: &App,
    realm: &Realm,
    id: &str,
    auth_id: &str,
) -> Option<Result<url::Url, crate::providers::SignInError>> {
    app.saml.get(id).map(|saml| saml.authorization_url(app, realm, auth_id))
}

/// Without the `saml` feature there is no SAML provider.
#[cfg(not(feature = "saml"))]
fn saml_authorization_url(
    _: &App,
    _: &Realm,
    _: &str,
    _: &str,
) -> Option<Result<url::Url, crate::providers::SignInError>> {
    None
}

/// What the provider sends back to `GET /login/{provider}/callback`.
#[derive(Deserialize)]
pub(super) struct CallbackQuery {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
    /// Set by [`same_site_reload`]: this is the callback asked again from the portal's page.
    same_site: Option<String>,
}

/// Longest `code` or `state` read from a callback.
const MAX_CALLBACK_PARAM: usize = 2048;

/// `GET /login/{provider}/callback?code=…&state=…`: the OpenID provider sends the visitor back.
/// The journey named by the `<name>_authn` cookie must wait for this provider, and `state`
/// must be the one made for it (constant-time); then the code is exchanged and the ID token
/// checked ([`crate::oidc`]). Success: `303` to the `rd` given at the start (or `/`) with a
/// fresh session, or to `/login/totp` when the user has a second factor. Any refusal (no
/// journey, a `state` of another sign-in, an `error` from the provider, a code or ID token the
/// checks refuse) ends the journey, is audited as `login_failed` with its reason, and goes to
/// `/login` with a message; `503` when the provider cannot be reached. Callers: the visitor's
/// browser, sent by the provider.
pub(super) async fn provider_callback(
    State(app): State<App>,
    ctx: RequestContext,
    cookies: ResponseCookies,
    headers: HeaderMap,
    Path(id): Path<String>,
    query: Result<axum::extract::Query<CallbackQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, PageError> {
    let realm = &ctx.realm;
    let client = app.oidc.get(&id).cloned().ok_or(PageError::NotFound)?;
    let refuse = |reason: &'static str, detail: &str, flash: Flash| {
        refuse_sign_in(&app, &ctx, &cookies, &id, reason, detail, flash)
    };
    let Ok(axum::extract::Query(query)) = query else {
        return Ok(refuse("oidc_bad_callback", "unreadable query", Flash::ProviderRefused));
    };
    let presented = journeys::presented_auth_id(&headers, realm).is_some();
    if !presented && query.same_site.is_none() && journeys::authn_cookie(realm).same_site == SameSite::Strict {
        return Ok(same_site_reload(&app, realm, &id, &query));
    }
    let (auth_id, journey) = match waiting_journey(&app, &ctx, &cookies, &headers, &id, "oidc_no_journey").await? {
        Ok(waiting) => waiting,
        Err(refused) => return Ok(refused),
    };
    let state_ok = query
        .state
        .as_deref()
        .is_some_and(|s| s.len() <= MAX_CALLBACK_PARAM && crate::oidc::state_matches(&app, &auth_id, s));
    if !state_ok {
        journeys::end(&app, &journey).await?;
        return Ok(refuse("oidc_state_mismatch", "the state is not this sign-in's", Flash::ProviderRefused));
    }
    if let Some(error) = &query.error {
        journeys::end(&app, &journey).await?;
        let error: String = error.chars().take(64).filter(|c| !c.is_control()).collect();
        return Ok(refuse("oidc_provider_error", &error, Flash::ProviderRefused));
    }
    let Some(code) = query.code.filter(|c| !c.is_empty() && c.len() <= MAX_CALLBACK_PARAM) else {
        journeys::end(&app, &journey).await?;
        return Ok(refuse("oidc_bad_callback", "no code", Flash::ProviderRefused));
    };
    // Only one request can finish the journey, so one code is exchanged once at most.
    if let Err(e) = journeys::finish(&app, realm, &journey).await {
        let flash = refusal_flash(&e).ok_or(e)?;
        return Ok(refuse("oidc_no_journey", "the sign-in was answered twice", flash));
    }
    let rd = valid_redirect(&app, realm, journey.state.return_to.as_deref());
    let user = client.sign_in(&app, realm, &auth_id, &code).await;
    provider_answer(&app, &ctx, &cookies, &headers, &id, user, rd.as_ref()).await
}

/// Ends a sign-in at an identity provider that failed a check: logged, audited as
/// `login_failed` with `reason`, the journey cookie deleted, and `303 /login` with `flash`.
pub(super) fn refuse_sign_in(
    app: &App,
    ctx: &RequestContext,
    cookies: &ResponseCookies,
    id: &str,
    reason: &'static str,
    detail: &str,
    flash: Flash,
) -> Response {
    let realm = &ctx.realm;
    warn!(provider = %id, realm = %realm.name(), reason, detail, "sign-in with an identity provider refused");
    app.audit(
        AuditKind::LoginFailed,
        &AuditEvent {
            realm: Some(realm.name()),
            reason: Some(reason),
            ip: ctx.ip.as_deref(),
            user_agent: ctx.user_agent.as_deref(),
            ..AuditEvent::default()
        },
    );
    journeys::delete_authn_cookie(cookies, realm);
    flash::set(cookies, realm, flash);
    see_other("/login")
}

/// The `auth_id` and journey of the request's journey cookie, when that journey waits for
/// provider `id`; otherwise the refusal (`no_journey`), the journey ended.
pub(super) async fn waiting_journey(
    app: &App,
    ctx: &RequestContext,
    cookies: &ResponseCookies,
    headers: &HeaderMap,
    id: &str,
    no_journey: &'static str,
) -> Result<Result<(String, Journey), Response>, PageError> {
    let realm = &ctx.realm;
    let refuse = |detail: &str, flash| Ok(Err(refuse_sign_in(app, ctx, cookies, id, no_journey, detail, flash)));
    let Some(auth_id) = journeys::presented_auth_id(headers, realm).map(str::to_owned) else {
        return refuse("no sign-in cookie came back", Flash::JourneyExpired);
    };
    let journey = match journeys::load(app, realm, &auth_id, app.clock.now()).await {
        Ok(journey) => journey,
        Err(e) => {
            let flash = refusal_flash(&e).ok_or(e)?;
            return refuse("the sign-in ended or was never started here", flash);
        }
    };
    if journey.state.step != Step::Provider || journey.state.provider.as_deref() != Some(id) {
        journeys::end(app, &journey).await?;
        return refuse("the sign-in waits for something else", Flash::JourneyExpired);
    }
    Ok(Ok((auth_id, journey)))
}

/// Goes on from an identity provider's answer: a refusal ends the sign-in, an unreachable
/// provider is `503`, a user signs in through the journey engine.
pub(super) async fn provider_answer(
    app: &App,
    ctx: &RequestContext,
    cookies: &ResponseCookies,
    headers: &HeaderMap,
    id: &str,
    user: Result<crate::users::User, crate::providers::SignInError>,
    rd: Option<&super::Redirect>,
) -> Result<Response, PageError> {
    let realm = &ctx.realm;
    let user = match user {
        Ok(user) => user,
        Err(crate::providers::SignInError::Refused { reason, detail }) => {
            return Ok(refuse_sign_in(app, ctx, cookies, id, reason, &detail, Flash::ProviderRefused));
        }
        Err(e @ crate::providers::SignInError::Unavailable(_)) => {
            warn!(provider = %id, error = %e, "identity provider unavailable at a sign-in");
            journeys::delete_authn_cookie(cookies, realm);
            return Err(ApiError::ProviderUnavailable(std::sync::Arc::new(e)).into());
        }
    };
    let provider = crate::providers::find(app, id).cloned().ok_or(PageError::NotFound)?;
    let outcome = crate::login::external_login(app, ctx, headers, cookies, &provider, user).await;
    external_outcome(app, realm, cookies, outcome, rd).await
}

/// A page that asks for the same callback again, from the portal's own site: a browser does not
/// send a `SameSite=Strict` journey cookie with the navigation that came from the provider's
/// site, and does with one that starts on this page. Only the parameters sessiond reads are
/// carried over, with `same_site=1` so that this happens once.
fn same_site_reload(app: &App, realm: &Realm, id: &str, query: &CallbackQuery) -> Response {
    let mut params = url::form_urlencoded::Serializer::new(String::new());
    for (name, value) in [("code", &query.code), ("state", &query.state), ("error", &query.error)] {
        if let Some(value) = value {
            params.append_pair(name, value);
        }
    }
    params.append_pair("same_site", "1");
    let href = format!("/login/{id}/callback?{}", params.finish());
    let mut response = render(app, realm, &ContinuePage { href });
    response.headers_mut().insert(axum::http::header::CACHE_CONTROL, axum::http::HeaderValue::from_static("no-store"));
    response
}

/// Where a provider's sign-in goes from its outcome.
pub(super) async fn external_outcome(
    app: &App,
    realm: &Realm,
    cookies: &ResponseCookies,
    outcome: Result<Outcome, ApiError>,
    rd: Option<&super::Redirect>,
) -> Result<Response, PageError> {
    match outcome {
        Ok(outcome) => after_step(app, realm, cookies, outcome, rd).await,
        Err(ApiError::TooManyAttempts) => {
            flash::set(cookies, realm, Flash::TooManyAttempts);
            Ok(see_other(&with_query("/login", "rd", rd.map(|r| r.given.as_str()))))
        }
        Err(e) => Err(e.into()),
    }
}
