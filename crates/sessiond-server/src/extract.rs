//! Extractors: request bodies in our error shape, the request's realm and client, and the caller's
//! session.

use crate::error::ApiError;
use crate::sessions::{self, Credential};
use crate::state::{App, Realm};
use axum::extract::{ConnectInfo, FromRef, FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use serde::de::DeserializeOwned;
use sessiond_core::client_session::SealedSession;
use sessiond_core::realm::SessionLocation;
use sessiond_core::session::SessionRecord;
use sessiond_core::token::SessionToken;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

/// Longest `Host` header we look at.
const MAX_HOST: usize = 255;
/// Longest user agent we keep with a session.
const MAX_USER_AGENT: usize = 512;

/// A JSON body; an empty body reads as `{}`. Bad bodies answer `bad_request`, oversized ones
/// `payload_too_large`, in our error shape. Browsers' cross-site requests are refused first.
pub struct JsonBody<T>(pub T);

/// Refuses a request that a browser sent from another site: `Sec-Fetch-Site: cross-site`, or an
/// `Origin` outside the realm's domain and `server.allowed_redirects`. A cross-site page can post
/// a JSON-looking `text/plain` body without any CORS check, so without this an attacker's page
/// could log a visitor into the attacker's account or act with the visitor's cookie.
fn refuse_cross_site(headers: &HeaderMap, app: &App) -> Result<(), ApiError> {
    let refused = ApiError::Forbidden("cross-site request refused");
    if headers.get_all("sec-fetch-site").iter().any(|v| v.as_bytes().eq_ignore_ascii_case(b"cross-site")) {
        return Err(refused);
    }
    let mut origins = headers.get_all(header::ORIGIN).iter();
    let Some(origin) = origins.next() else { return Ok(()) };
    if origins.next().is_some() {
        return Err(refused);
    }
    let origin = origin.to_str().map_err(|_| ApiError::Forbidden("cross-site request refused"))?;
    let realm = &app.realm_for_host(request_host(headers));
    let policy = realm.redirect_policy(&app.settings.allowed_redirects);
    match sessiond_core::redirect::validate_redirect(origin, &realm.policy.portal_url, &policy) {
        // An origin is scheme, host and port only; anything else is not an origin.
        Ok(url) if origin.starts_with("http") && url.path() == "/" && !origin.ends_with('/') => Ok(()),
        _ => Err(refused),
    }
}

impl<S, T> FromRequest<S> for JsonBody<T>
where
    App: FromRef<S>,
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        refuse_cross_site(req.headers(), &App::from_ref(state))?;
        let bytes = Bytes::from_request(req, state).await.map_err(|rejection| {
            if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::PayloadTooLarge
            } else {
                ApiError::BadRequest("could not read the request body".into())
            }
        })?;
        let text: &[u8] = if bytes.iter().all(u8::is_ascii_whitespace) { b"{}" } else { &bytes };
        serde_json::from_slice(text).map(JsonBody).map_err(|e| ApiError::BadRequest(format!("invalid JSON body: {e}")))
    }
}

/// Where a request comes from and which realm it addresses.
#[derive(Clone)]
pub struct RequestContext {
    /// The realm picked by the request host.
    pub realm: Arc<Realm>,
    /// The client's address: the peer, or the client behind it when the peer is one of
    /// `server.trusted_proxies`.
    pub ip: Option<String>,
    /// The `User-Agent`, truncated.
    pub user_agent: Option<String>,
}

/// The request's host without its port, when it is a plausible host.
pub(crate) fn request_host(headers: &HeaderMap) -> Option<&str> {
    let host = headers.get(header::HOST)?.to_str().ok()?;
    if host.len() > MAX_HOST {
        return None;
    }
    // Strip the port; keep IPv6 literals whole.
    Some(match host.rfind(':') {
        Some(i) if !host.ends_with(']') => &host[..i],
        _ => host,
    })
}

impl<S> FromRequestParts<S> for RequestContext
where
    App: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let app = App::from_ref(state);
        let realm = app.realm_for_host(request_host(&parts.headers));
        let ip = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| crate::forwarded::client_ip(c.0, &parts.headers, &app.settings.trusted_proxies).to_string());
        let user_agent = parts
            .headers
            .get(header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .map(|ua| ua.chars().take(MAX_USER_AGENT).collect());
        Ok(Self { realm, ip, user_agent })
    }
}

/// Where the caller's token came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TokenSource {
    /// The realm's session cookie.
    Cookie,
    /// The header named like the cookie.
    Header,
    /// `Authorization: Bearer`.
    Bearer,
    /// The JSON body.
    Body,
}

/// Finds the caller's token: `Authorization: Bearer`, then the header named like the cookie, then
/// the cookie. Our own credential slots (the cookie and its header) that are present but malformed
/// fail here; they never fall through to the next source. An `Authorization` header that does not
/// hold one of our tokens (Basic, or a bearer token of the application's own) belongs to the
/// application behind the proxy: it is passed over, never accepted. An API token (`sdat_…`) is
/// ours but not a session: it is refused here, never passed over (see [`crate::api_tokens`]).
///
/// # Errors
/// `unauthenticated` for an unusable credential.
pub fn find_token(headers: &HeaderMap, realm: &Realm) -> Result<Option<(SessionToken, TokenSource)>, ApiError> {
    let parse =
        |text: &str| SessionToken::parse(text).map_err(|_| ApiError::Unauthenticated("malformed session token"));
    find_in(headers, realm, |text| SessionToken::parse(text).ok(), parse)
}

/// Finds the caller's credential the way [`find_token`] finds tokens, for the realm's kind of
/// session: a token in a server-side realm, the sealed session in a client-side one (a bearer
/// counts as ours only when it names one of our cookie keys; see
/// `ClientSessionCodec::is_ours`).
///
/// # Errors
/// `unauthenticated` for an unusable credential.
pub fn find_credential(
    app: &App,
    headers: &HeaderMap,
    realm: &Realm,
) -> Result<Option<(Credential, TokenSource)>, ApiError> {
    match realm.policy.location {
        SessionLocation::Server => {
            Ok(find_token(headers, realm)?.map(|(token, source)| (Credential::Token(token), source)))
        }
        SessionLocation::Client => {
            let bearer = |text: &str| {
                SealedSession::parse(text).ok().filter(|_| app.client_sessions.is_ours(text)).map(Credential::Sealed)
            };
            find_in(headers, realm, bearer, |text| Credential::parse(realm, text))
        }
    }
}

/// The search of [`find_token`]: `bearer` says whether an `Authorization: Bearer` value is ours,
/// `parse` reads the header and the cookie, which are ours whatever they hold.
fn find_in<T>(
    headers: &HeaderMap,
    realm: &Realm,
    bearer: impl Fn(&str) -> Option<T>,
    parse: impl Fn(&str) -> Result<T, ApiError>,
) -> Result<Option<(T, TokenSource)>, ApiError> {
    if crate::api_tokens::presented(headers)?.is_some() {
        return Err(ApiError::Unauthenticated("an API token is not a session token"));
    }
    let mut auth = headers.get_all(header::AUTHORIZATION).iter();
    if let (Some(value), None) = (auth.next(), auth.next()) {
        let ours = value
            .to_str()
            .ok()
            .and_then(|v| v.split_once(' '))
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            .and_then(|(_, token)| bearer(token.trim()));
        if let Some(credential) = ours {
            return Ok(Some((credential, TokenSource::Bearer)));
        }
    }
    if let Some(name) = &realm.token_header {
        let mut values = headers.get_all(name).iter();
        if let Some(value) = values.next() {
            if values.next().is_some() {
                return Err(ApiError::Unauthenticated("session token header given more than once"));
            }
            let value = value.to_str().map_err(|_| ApiError::Unauthenticated("malformed session token"))?;
            return parse(value.trim()).map(|c| Some((c, TokenSource::Header)));
        }
    }
    match sessiond_core::cookie::find_cookie(
        headers.get_all(header::COOKIE).iter().map(HeaderValue::as_bytes),
        &realm.cookie.name,
    ) {
        Ok(Some(value)) => parse(value.trim()).map(|c| Some((c, TokenSource::Cookie))),
        Ok(None) => Ok(None),
        Err(_) => Err(ApiError::Unauthenticated("malformed session cookie")),
    }
}

/// Whether the request carried our session cookie at all (so a failure must delete it).
pub fn has_session_cookie(headers: &HeaderMap, realm: &Realm) -> bool {
    !matches!(
        sessiond_core::cookie::find_cookie(
            headers.get_all(header::COOKIE).iter().map(HeaderValue::as_bytes),
            &realm.cookie.name
        ),
        Ok(None)
    )
}

/// `Set-Cookie` values that handlers and extractors add to the response.
#[derive(Clone, Default)]
pub struct ResponseCookies(Arc<Mutex<Vec<HeaderValue>>>);

impl ResponseCookies {
    /// Queues the deletion of the realm's session cookie, and of its JWT cookie when the realm
    /// sets one.
    pub fn end_session(&self, realm: &Realm) {
        self.push(&realm.cookie.delete_cookie());
        if realm.policy.jwt.enabled && realm.policy.jwt.cookie {
            self.push(&realm.cookie.companion(sessiond_core::cookie::JWT_SUFFIX).delete_cookie());
        }
    }

    /// Queues one `Set-Cookie` value.
    pub fn push(&self, set_cookie: &str) {
        if let (Ok(value), Ok(mut list)) = (HeaderValue::from_str(set_cookie), self.0.lock()) {
            list.push(value);
        }
    }
}

impl<S: Send + Sync> FromRequestParts<S> for ResponseCookies {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(parts.extensions.get::<ResponseCookies>().cloned().unwrap_or_default())
    }
}

/// Middleware: gives the request a [`ResponseCookies`] and writes what it collected into the
/// response, which also becomes uncacheable.
pub async fn attach_cookies(mut req: Request, next: Next) -> Response {
    let cookies = ResponseCookies::default();
    req.extensions_mut().insert(cookies.clone());
    let mut response = next.run(req).await;
    let queued = cookies.0.lock().map(|mut l| std::mem::take(&mut *l)).unwrap_or_default();
    let headers = response.headers_mut();
    for value in queued {
        headers.append(header::SET_COOKIE, value);
    }
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// A signed-in caller: the session behind the presented token, verified, touched when due.
#[derive(Clone)]
pub struct Caller {
    /// The caller's session, as it stands after this request.
    pub session: Arc<SessionRecord>,
    /// The realm of the session.
    pub realm: Arc<Realm>,
    /// Where the token came from.
    pub source: TokenSource,
    /// Whether the caller belongs to `server.admin_group`.
    pub is_admin: bool,
}

impl Caller {
    /// Refuses callers outside `server.admin_group`.
    ///
    /// # Errors
    /// `forbidden` for non-admins.
    pub fn require_admin(&self) -> Result<(), ApiError> {
        if self.is_admin { Ok(()) } else { Err(ApiError::Forbidden("administrators only")) }
    }
}

impl<S> FromRequestParts<S> for Caller
where
    App: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Response> {
        let app = App::from_ref(state);
        let ctx = RequestContext::from_request_parts(parts, state).await.map_err(IntoResponse::into_response)?;
        // A valid API token is refused as such (403); an invalid one like any bad credential.
        if let Some(token) = crate::api_tokens::presented(&parts.headers).map_err(IntoResponse::into_response)? {
            let refusal = match crate::api_tokens::verify(&app, &ctx.realm, &token).await {
                Ok(_) => ApiError::Forbidden(crate::api_tokens::SESSION_REQUIRED),
                Err(e) => e,
            };
            return Err(refusal.into_response());
        }
        let cookies = parts.extensions.get::<ResponseCookies>().cloned().unwrap_or_default();
        let result = match find_credential(&app, &parts.headers, &ctx.realm) {
            Ok(Some((credential, source))) => {
                sessions::verify(&app, &ctx.realm, &credential, false, &cookies, source == TokenSource::Cookie)
                    .await
                    .map(|session| (session, source))
            }
            Ok(None) => Err(ApiError::Unauthenticated("not signed in")),
            Err(e) => Err(e),
        };
        match result {
            Ok((session, source)) => {
                let is_admin = sessions::is_admin(&app, &session);
                Ok(Caller { session, realm: ctx.realm, source, is_admin })
            }
            Err(e) => {
                if has_session_cookie(&parts.headers, &ctx.realm) && matches!(e, ApiError::Unauthenticated(_)) {
                    cookies.end_session(&ctx.realm);
                }
                Err(e.into_response())
            }
        }
    }
}
