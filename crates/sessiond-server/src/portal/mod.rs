//! The portal: the HTML pages people use to sign in, see and end their sessions, and sign out.
//!
//! Every page is rendered on the server from compile-time templates and works without
//! JavaScript (the pages carry none, and their Content-Security-Policy forbids it; the one
//! exception, the SAML continue page's line that sends its form, is allowed by its hash and has
//! a button for browsers without scripts). Forms that
//! change something are POSTs protected three ways: a CSRF token bound to the visitor (the login
//! ticket before sign-in, the session after), an `Origin`/`Sec-Fetch-Site` check, and cookies that
//! are `SameSite=Lax` at least. Nothing from the URL reaches a page except a redirect target that
//! passed `sessiond_core::redirect::validate_redirect`.
//!
//! Start with [`router`]; `login.rs` holds the sign-in form, `account.rs` the account page,
//! `logout.rs` signing out, `admin.rs` the administrators' page.

mod account;
mod admin;
mod assets;
pub(crate) mod csrf;
mod flash;
mod headers;
mod login;
mod logout;
#[cfg(feature = "saml")]
mod saml;
mod totp;

use crate::error::{ApiError, ErrorDetail};
use crate::extract::{Caller, RequestContext, ResponseCookies, attach_cookies, has_session_cookie};
use crate::state::{App, Realm};
use askama::Template;
use axum::Router;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use sessiond_core::session::SessionRecord;
use sessiond_core::time::Timestamp;
use sessiond_core::timeout::Verdict;
use sessiond_store::{SessionFilter, Store};
use std::sync::Arc;
use url::Url;

pub(crate) use flash::Flash;

/// The SAML service provider's metadata and assertion consumer service.
#[cfg(feature = "saml")]
fn saml_routes() -> Router<App> {
    Router::new()
        .route("/login/{provider}/metadata", get(saml::metadata))
        .route("/login/{provider}/acs", post(saml::acs))
}

/// Without the `saml` feature there is no SAML provider, so no route of one.
#[cfg(not(feature = "saml"))]
fn saml_routes() -> Router<App> {
    Router::new()
}

/// Routes of the portal and its stylesheet.
pub(crate) fn router() -> Router<App> {
    Router::new()
        .route("/login", get(login::login_form).post(login::login_submit))
        .route("/login/totp", get(login::totp_form).post(login::totp_submit))
        .route("/login/{provider}", get(login::provider_login))
        .route("/login/{provider}/callback", get(login::provider_callback))
        .merge(saml_routes())
        .route("/", get(account::account_page))
        .route("/sessions/{id}/revoke", post(account::revoke_session))
        .route("/sessions/revoke-others", post(account::revoke_other_sessions))
        .route("/totp", get(totp::totp_page))
        .route("/totp/enroll", post(totp::enroll))
        .route("/totp/confirm", post(totp::confirm))
        .route("/totp/remove", post(totp::remove))
        .route("/logout", get(logout::logout_form).post(logout::logout_submit))
        .route("/admin", get(admin::admin_page))
        .route("/admin/sessions/{id}/revoke", post(admin::revoke_session))
        .route("/admin/revoke-all", post(admin::revoke_user_sessions))
        .route("/static/style.css", get(assets::stylesheet))
        .route("/static/logo.svg", get(assets::logo))
        .layer(axum::middleware::from_fn(attach_cookies))
        .layer(axum::middleware::from_fn(headers::security_headers))
}

/// A signed-in visitor of the portal. Without a usable session the page answers `303 /login`
/// instead, with the `session_expired` flash when the visitor came with a dead session cookie
/// (the [`Caller`] extractor has already queued its deletion).
pub(crate) struct SignedIn(pub(crate) Caller);

impl FromRequestParts<App> for SignedIn {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, app: &App) -> Result<Self, Response> {
        match Caller::from_request_parts(parts, app).await {
            Ok(caller) => Ok(Self(caller)),
            Err(rejection) if rejection.status() == StatusCode::UNAUTHORIZED => {
                let ctx = RequestContext::from_request_parts(parts, app).await.map_err(IntoResponse::into_response)?;
                if has_session_cookie(&parts.headers, &ctx.realm) {
                    let cookies = parts.extensions.get::<ResponseCookies>().cloned().unwrap_or_default();
                    flash::set(&cookies, &ctx.realm, Flash::SessionExpired);
                }
                Err(see_other("/login"))
            }
            Err(rejection) => Err(reskin(rejection)),
        }
    }
}

/// Why a portal request was refused; answered as an HTML page with the fitting status.
#[derive(Debug)]
pub(crate) enum PageError {
    /// The form was posted from another site.
    CrossSite,
    /// The form's CSRF token does not belong to this visitor.
    FormExpired,
    /// A signed-in visitor who is not an administrator.
    AdminsOnly,
    /// Nothing there that the visitor may see.
    NotFound,
    /// The form could not be read.
    BadForm,
    /// The store failed or something unexpected broke.
    Api(ApiError),
}

impl From<ApiError> for PageError {
    fn from(e: ApiError) -> Self {
        Self::Api(e)
    }
}

impl From<sessiond_store::StoreError> for PageError {
    fn from(e: sessiond_store::StoreError) -> Self {
        Self::Api(e.into())
    }
}

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage {
    title: &'static str,
    message: &'static str,
}

/// The fixed title and text shown for a status.
fn error_text(status: StatusCode) -> (&'static str, &'static str) {
    match status {
        StatusCode::BAD_REQUEST => ("Something went wrong", "The form could not be read. Go back and try again."),
        StatusCode::FORBIDDEN => ("Not allowed", "You are not allowed to see this page."),
        StatusCode::NOT_FOUND => ("Not found", "There is nothing here, or it has already ended."),
        StatusCode::TOO_MANY_REQUESTS => {
            ("Too many attempts", "Too many failed sign-in attempts. Try again in a few minutes.")
        }
        StatusCode::SERVICE_UNAVAILABLE => (
            "Temporarily unavailable",
            "sessiond cannot reach its session store right now. Nothing was changed; try again in a moment.",
        ),
        _ => ("Something went wrong", "sessiond could not complete this request. Try again in a moment."),
    }
}

fn error_page(status: StatusCode, title: &'static str, message: &'static str) -> Response {
    match (ErrorPage { title, message }).render() {
        Ok(html) => (status, Html(html)).into_response(),
        Err(e) => template_failed(e),
    }
}

fn template_failed(e: askama::Error) -> Response {
    let mut response = (StatusCode::INTERNAL_SERVER_ERROR, "internal error").into_response();
    response.extensions_mut().insert(ErrorDetail(Arc::new(e)));
    response
}

/// The HTML version of an error answered by the JSON layer, keeping its status, headers and the
/// failure attached for the trace layer to log.
fn reskin(rejection: Response) -> Response {
    let (mut parts, _) = rejection.into_parts();
    let (title, message) = error_text(parts.status);
    let page = error_page(parts.status, title, message);
    let (page_parts, body) = page.into_parts();
    parts.headers.remove(header::CONTENT_LENGTH);
    if let Some(content_type) = page_parts.headers.get(header::CONTENT_TYPE) {
        parts.headers.insert(header::CONTENT_TYPE, content_type.clone());
    }
    parts.extensions.extend(page_parts.extensions);
    Response::from_parts(parts, body)
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        match self {
            Self::CrossSite => error_page(
                StatusCode::FORBIDDEN,
                "Request refused",
                "This form was sent from another site. Open the page on this site and try again.",
            ),
            Self::FormExpired => error_page(
                StatusCode::FORBIDDEN,
                "Form expired",
                "This form could not be verified, perhaps because it was opened in another session. Reload the page and try again.",
            ),
            Self::AdminsOnly => {
                error_page(StatusCode::FORBIDDEN, "Administrators only", "Only administrators may use this page.")
            }
            Self::NotFound => {
                let (title, message) = error_text(StatusCode::NOT_FOUND);
                error_page(StatusCode::NOT_FOUND, title, message)
            }
            Self::BadForm => {
                let (title, message) = error_text(StatusCode::BAD_REQUEST);
                error_page(StatusCode::BAD_REQUEST, title, message)
            }
            Self::Api(e) => reskin(e.into_response()),
        }
    }
}

/// Renders a page with the realm's Content-Security-Policy.
fn render(app: &App, realm: &Realm, template: &impl Template) -> Response {
    match template.render() {
        Ok(html) => {
            let mut response = Html(html).into_response();
            response
                .headers_mut()
                .insert(header::CONTENT_SECURITY_POLICY, headers::content_security_policy(app, realm));
            response
        }
        Err(e) => template_failed(e),
    }
}

/// `303 See Other` to `location`, so the browser follows with a GET.
fn see_other(location: &str) -> Response {
    match HeaderValue::from_str(location) {
        Ok(value) => (StatusCode::SEE_OTHER, [(header::LOCATION, value)]).into_response(),
        Err(_) => (StatusCode::SEE_OTHER, [(header::LOCATION, HeaderValue::from_static("/"))]).into_response(),
    }
}

/// A redirect target that passed the realm's rules: the text as given (to carry it along in
/// forms and links) and the absolute URL to send the browser to.
struct Redirect {
    given: String,
    url: Url,
}

/// `rd` when it is a safe redirect for this realm; anything else is dropped without a trace,
/// because it came from whoever crafted the link.
fn valid_redirect(app: &App, realm: &Realm, rd: Option<&str>) -> Option<Redirect> {
    let rd = rd?;
    let policy = realm.redirect_policy(&app.settings.allowed_redirects);
    sessiond_core::redirect::validate_redirect(rd, &realm.policy.portal_url, &policy)
        .ok()
        .map(|url| Redirect { given: rd.to_owned(), url })
}

/// `path` with `?name=value` appended, the value form-encoded.
fn with_query(path: &str, name: &str, value: Option<&str>) -> String {
    match value {
        Some(value) => {
            let query = url::form_urlencoded::Serializer::new(String::new()).append_pair(name, value).finish();
            format!("{path}?{query}")
        }
        None => path.to_owned(),
    }
}

/// The one value of query parameter `name`; none when it is absent or given more than once
/// (an ambiguous query is not guessed at).
fn query_param(query: Option<&str>, name: &str) -> Option<String> {
    let mut values = url::form_urlencoded::parse(query.unwrap_or("").as_bytes()).filter(|(k, _)| k == name);
    let first = values.next()?.1.into_owned();
    values.next().is_none().then_some(first)
}

/// Refuses a state-changing request that a browser marks as sent from another site.
///
/// `Sec-Fetch-Site: cross-site` is refused. An `Origin` must be the portal's, or the origin of
/// the request itself (the portal reached under another name of the same server): a browser
/// always sets `Host` to the server it talks to, so a page elsewhere cannot match it. `Origin:
/// null` (sandboxed frames, some redirects) is refused. Requests without either header come from
/// old browsers or scripts, which the CSRF token still covers.
fn require_same_origin(headers: &HeaderMap, realm: &Realm) -> Result<(), PageError> {
    let cross_site = headers.get_all("sec-fetch-site").iter().any(|v| v.as_bytes().eq_ignore_ascii_case(b"cross-site"));
    if cross_site {
        return Err(PageError::CrossSite);
    }
    let mut origins = headers.get_all(header::ORIGIN).iter();
    let Some(origin) = origins.next() else { return Ok(()) };
    if origins.next().is_some() {
        return Err(PageError::CrossSite);
    }
    let origin = origin.to_str().map_err(|_| PageError::CrossSite)?;
    if origin == realm.policy.portal_url.origin().ascii_serialization() {
        return Ok(());
    }
    let host = headers.get(header::HOST).and_then(|h| h.to_str().ok());
    let own = origin
        .strip_prefix("https://")
        .or_else(|| origin.strip_prefix("http://"))
        .is_some_and(|authority| Some(authority) == host);
    if own { Ok(()) } else { Err(PageError::CrossSite) }
}

/// The live sessions of `user` in `realm`: current first, then the most recently used. A
/// client-side realm keeps no records: there only the current session is known.
async fn live_sessions(
    app: &App,
    realm: &Realm,
    user: &str,
    current: &SessionRecord,
) -> Result<Vec<SessionRecord>, ApiError> {
    if realm.policy.location == sessiond_core::realm::SessionLocation::Client {
        return Ok(if current.user == user { vec![current.clone()] } else { Vec::new() });
    }
    let filter = SessionFilter { realm: Some(realm.name().to_owned()), user: Some(user.to_owned()) };
    let now = app.clock.now();
    let mut sessions: Vec<SessionRecord> = app
        .metrics
        .store(crate::metrics::StoreOp::ListSessions, app.store.list_sessions(&filter))
        .await?
        .into_iter()
        // Sessions past their deadline wait for the sweeper; they are never shown as live.
        .filter(|s| matches!(realm.policy.timeouts.verdict(&s.times(), now), Verdict::Alive(_)))
        .collect();
    sessions.sort_by_key(|s| (s.token_hash != current.token_hash, std::cmp::Reverse(s.last_seen_at)));
    Ok(sessions)
}

/// A time as people read it, in UTC: `21 Sep 2026, 14:03 UTC`.
fn human_utc(t: Timestamp) -> String {
    let format = time::macros::format_description!("[day padding:none] [month repr:short] [year], [hour]:[minute] UTC");
    time::OffsetDateTime::from_unix_timestamp(t.unix())
        .ok()
        .and_then(|t| t.format(&format).ok())
        .unwrap_or_else(|| t.rfc3339())
}

/// How long ago `then` was, roughly: `just now`, `5 minutes ago`, `3 days ago`.
fn ago(then: Timestamp, now: Timestamp) -> String {
    let secs = then.until(now).as_secs();
    let plural = |n: u64, unit: &str| if n == 1 { format!("1 {unit} ago") } else { format!("{n} {unit}s ago") };
    match secs {
        0..60 => "just now".to_owned(),
        60..3600 => plural(secs / 60, "minute"),
        3600..86_400 => plural(secs / 3600, "hour"),
        _ => plural(secs / 86_400, "day"),
    }
}

/// A duration in the largest whole unit people use for it: `30 days`, `12 hours`, `90 minutes`.
fn human_duration(d: std::time::Duration) -> String {
    let secs = d.as_secs();
    let unit = |n: u64, name: &str| if n == 1 { format!("1 {name}") } else { format!("{n} {name}s") };
    if secs >= 86_400 && secs % 86_400 == 0 {
        unit(secs / 86_400, "day")
    } else if secs >= 3600 && secs % 3600 == 0 {
        unit(secs / 3600, "hour")
    } else if secs >= 60 {
        unit(secs / 60, "minute")
    } else {
        unit(secs, "second")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn times_read_as_utc_and_relative() {
        assert_eq!(human_utc(Timestamp::from_unix(1_790_000_000)), "21 Sep 2026, 14:13 UTC");
        let now = Timestamp::from_unix(1_000_000);
        assert_eq!(ago(now, now), "just now");
        assert_eq!(ago(now - Duration::from_secs(61), now), "1 minute ago");
        assert_eq!(ago(now - Duration::from_secs(7200), now), "2 hours ago");
        assert_eq!(ago(now - Duration::from_secs(3 * 86_400 + 5), now), "3 days ago");
        // A clock that went backwards never shows a future time as past.
        assert_eq!(ago(now + Duration::from_secs(50), now), "just now");
    }

    #[test]
    fn durations_use_the_largest_whole_unit() {
        assert_eq!(human_duration(Duration::from_secs(30 * 86_400)), "30 days");
        assert_eq!(human_duration(Duration::from_secs(86_400)), "1 day");
        assert_eq!(human_duration(Duration::from_secs(12 * 3600)), "12 hours");
        assert_eq!(human_duration(Duration::from_secs(5400)), "90 minutes");
        assert_eq!(human_duration(Duration::from_secs(45)), "45 seconds");
    }

    #[test]
    fn ambiguous_query_parameters_are_dropped() {
        assert_eq!(query_param(Some("rd=%2Fa&x=1"), "rd").as_deref(), Some("/a"));
        assert_eq!(query_param(Some("rd=/a&rd=/b"), "rd"), None);
        assert_eq!(query_param(None, "rd"), None);
    }

    #[test]
    fn query_values_are_form_encoded() {
        assert_eq!(
            with_query("/login", "rd", Some("https://a.test/x?y=1&z")),
            "/login?rd=https%3A%2F%2Fa.test%2Fx%3Fy%3D1%26z"
        );
        assert_eq!(with_query("/login", "rd", None), "/login");
    }
}
