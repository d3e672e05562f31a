//! The SAML service provider's endpoints: its metadata, and the assertion consumer service that
//! the identity provider posts the response to ([`crate::saml`] checks it).
//!
//! The identity provider's form is posted from its own site, and browsers do not send
//! `SameSite=Lax` (or `Strict`) cookies with a cross-site POST: the journey cookie does not
//! come. So the first POST, without it, answers a page that posts the same response again from
//! the portal's own site ([`ContinuePage`], sent by its one hashed line of script, or by its
//! button), and that second POST brings the cookie. Only the second is checked, and it must be
//! same-origin: the response is bound to the journey of the browser that posts it.

use super::login::{provider_answer, refusal_flash, refuse_sign_in, waiting_journey};
use super::{Flash, PageError, headers, render, require_same_origin, valid_redirect};
use crate::error::ApiError;
use crate::extract::{RequestContext, ResponseCookies};
use crate::journeys;
use crate::state::App;
use askama::Template;
use axum::extract::rejection::FormRejection;
use axum::extract::{Form, Path, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use std::sync::Arc;
use tracing::warn;

/// Longest `SAMLResponse` read (base64): signed responses with a few certificates and
/// attributes are a few KiB.
const MAX_RESPONSE: usize = 256 * 1024;

#[derive(Template)]
#[template(path = "login_continue_post.html")]
struct ContinuePage<'a> {
    action: String,
    response: &'a str,
    /// [`headers::CONTINUE_SCRIPT`], which the page's policy allows by its hash.
    script: &'static str,
}

/// `GET /login/{provider}/metadata`: the service provider's metadata
/// (`application/samlmetadata+xml`), to register sessiond at the identity provider: entity id,
/// the assertion consumer service (HTTP-POST), signed assertions wanted. Callers: anyone.
pub(super) async fn metadata(
    State(app): State<App>,
    ctx: RequestContext,
    Path(id): Path<String>,
) -> Result<Response, PageError> {
    let client = app.saml.get(&id).ok_or(PageError::NotFound)?;
    let xml = client.metadata_xml(&ctx.realm).map_err(|e| {
        warn!(provider = %id, error = %e, "SAML metadata unavailable");
        ApiError::ProviderUnavailable(Arc::new(e))
    })?;
    let mut response = xml.into_response();
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/samlmetadata+xml"));
    Ok(response)
}

/// What the identity provider posts to `POST /login/{provider}/acs`.
#[derive(Deserialize)]
pub(super) struct AcsForm {
    #[serde(rename = "SAMLResponse")]
    saml_response: Option<String>,
    /// Set by the continue page: this is the response posted again from the portal's site.
    same_site: Option<String>,
}

/// `POST /login/{provider}/acs` (HTTP-POST binding): the identity provider's response. Posted
/// by the identity provider's form, it answers the continue page (`200`), which posts it again
/// from this site, same-origin, with the journey cookie and `same_site=1`. Then the journey of that cookie must wait for
/// this provider, and the response must pass every check of [`crate::saml`]. Success: `303` to
/// the `rd` given at the start (or `/`) with a fresh session, or to `/login/totp` for users with
/// a second factor. Any refusal ends the journey, is audited as `login_failed` with its reason
/// and goes to `/login` with a message; `503` when the identity provider's metadata is unusable.
/// Callers: the visitor's browser, sent by the identity provider.
pub(super) async fn acs(
    State(app): State<App>,
    ctx: RequestContext,
    cookies: ResponseCookies,
    request_headers: HeaderMap,
    Path(id): Path<String>,
    form: Result<Form<AcsForm>, FormRejection>,
) -> Result<Response, PageError> {
    let realm = &ctx.realm;
    let client = app.saml.get(&id).cloned().ok_or(PageError::NotFound)?;
    let refuse =
        |reason, detail: &str| refuse_sign_in(&app, &ctx, &cookies, &id, reason, detail, Flash::ProviderRefused);
    let Ok(Form(form)) = form else { return Ok(refuse("saml_bad_post", "unreadable form")) };
    let Some(response) = form.saml_response.filter(|r| !r.is_empty() && r.len() <= MAX_RESPONSE) else {
        return Ok(refuse("saml_bad_post", "no SAMLResponse, or one too long"));
    };
    if form.same_site.is_none() {
        let page =
            ContinuePage { action: format!("/login/{id}/acs"), response: &response, script: headers::CONTINUE_SCRIPT };
        let mut answer = render(&app, realm, &page);
        answer.headers_mut().insert(header::CONTENT_SECURITY_POLICY, headers::continue_page_policy(&app, realm));
        return Ok(answer);
    }
    require_same_origin(&request_headers, realm)?;
    let (auth_id, journey) =
        match waiting_journey(&app, &ctx, &cookies, &request_headers, &id, "saml_no_journey").await? {
            Ok(waiting) => waiting,
            Err(refused) => return Ok(refused),
        };
    // Only one request can finish the journey, so one response signs in once at most.
    if let Err(e) = journeys::finish(&app, realm, &journey).await {
        let flash = refusal_flash(&e).ok_or(e)?;
        return Ok(refuse_sign_in(
            &app,
            &ctx,
            &cookies,
            &id,
            "saml_no_journey",
            "the sign-in was answered twice",
            flash,
        ));
    }
    let rd = valid_redirect(&app, realm, journey.state.return_to.as_deref());
    let user = client.sign_in(&app, realm, &auth_id, response).await;
    provider_answer(&app, &ctx, &cookies, &request_headers, &id, user, rd.as_ref()).await
}
