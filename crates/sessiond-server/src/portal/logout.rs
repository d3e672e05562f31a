//! Signing out. `GET /logout` only asks: an image or link on another site must never be able to
//! sign anyone out. `POST /logout` does it.

use super::account::{check_session_form, session_csrf};
use super::{Flash, PageError, SignedIn, flash, render, see_other, valid_redirect};
use crate::audit::{AuditEvent, AuditKind};
use crate::extract::{RequestContext, ResponseCookies};
use crate::metrics::EndKind;
use crate::state::{App, Realm};
use askama::Template;
use axum::extract::rejection::FormRejection;
use axum::extract::{Form, RawQuery, State};
use axum::http::HeaderMap;
use axum::response::Response;
use serde::Deserialize;
use sessiond_core::cookie::JWT_SUFFIX;
use tracing::info;

/// Queues the deletion of the session cookie and its companions (login ticket, JWT).
pub(super) fn delete_cookies(cookies: &ResponseCookies, realm: &Realm) {
    cookies.push(&realm.cookie.delete_cookie());
    cookies.push(&realm.cookie.companion(JWT_SUFFIX).delete_cookie());
    crate::journeys::delete_authn_cookie(cookies, realm);
}

#[derive(Template)]
#[template(path = "logout.html")]
struct LogoutPage<'a> {
    name: &'a str,
    csrf: String,
    rd: Option<&'a str>,
}

/// `GET /logout[?rd=URL]`: asks whether to sign out; changes nothing. Callers: signed in; others
/// are sent to `/login`.
pub(super) async fn logout_form(
    State(app): State<App>,
    SignedIn(caller): SignedIn,
    RawQuery(query): RawQuery,
) -> Response {
    let rd = valid_redirect(&app, &caller.realm, super::query_param(query.as_deref(), "rd").as_deref());
    let identity = super::account::Identity::of(&app, &caller.session.user, Some(&caller.session));
    let page = LogoutPage {
        name: identity.as_ref().map_or(caller.session.user.as_str(), |i| i.greeting()),
        csrf: session_csrf(&app, &caller),
        rd: rd.as_ref().map(|r| r.given.as_str()),
    };
    render(&app, &caller.realm, &page)
}

/// What the sign-out form posts.
#[derive(Deserialize)]
pub(super) struct LogoutForm {
    #[serde(default)]
    csrf: String,
    rd: Option<String>,
}

/// `POST /logout` (CSRF): ends the session, deletes its cookies, and goes on to the allowed `rd`,
/// else to `/login` with "You have signed out". A user of an OpenID provider set to `logout:
/// true` goes to the provider's `end_session_endpoint` instead (with `client_id` and
/// `post_logout_redirect_uri` `<portal_url>/login`), to sign out there too. Callers: signed in.
pub(super) async fn logout_submit(
    State(app): State<App>,
    SignedIn(caller): SignedIn,
    ctx: RequestContext,
    cookies: ResponseCookies,
    headers: HeaderMap,
    form: Result<Form<LogoutForm>, FormRejection>,
) -> Result<Response, PageError> {
    let Form(form) = form.map_err(|_| PageError::BadForm)?;
    check_session_form(&app, &caller, &headers, &form.csrf)?;
    let session = &caller.session;
    let ended = crate::sessions::end(&app, session).await?;
    app.metrics.sessions_ended(EndKind::Logout, usize::from(ended));
    delete_cookies(&cookies, &caller.realm);
    info!(session_id = %session.id, user = %session.user, "logged out");
    app.audit(
        AuditKind::Logout,
        &AuditEvent { ip: ctx.ip.as_deref(), user_agent: ctx.user_agent.as_deref(), ..AuditEvent::of_session(session) },
    );
    if let Some(url) = provider_logout(&app, &caller.realm, &session.user).await {
        flash::set(&cookies, &caller.realm, Flash::LoggedOut);
        return Ok(see_other(url.as_str()));
    }
    match valid_redirect(&app, &caller.realm, form.rd.as_deref()) {
        Some(rd) => Ok(see_other(rd.url.as_str())),
        None => {
            flash::set(&cookies, &caller.realm, Flash::LoggedOut);
            Ok(see_other("/login"))
        }
    }
}

/// The OpenID provider's sign-out page for `user`, when the user came from a provider that signs
/// out there too.
async fn provider_logout(app: &App, realm: &Realm, user: &str) -> Option<url::Url> {
    let (id, _) = user.split_once(':')?;
    app.oidc.get(id)?.logout_url(realm).await
}
