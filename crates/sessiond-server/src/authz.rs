//! Forward auth: a reverse proxy asks whether a request may pass, and as whom.
//!
//! The proxy describes the original request in forwarding headers (see [`crate::forwarded`]);
//! the request's host picks the realm, the presented credential picks the session, and the
//! access rules decide. Answers have an empty body, because nginx reuses its upstream connection
//! for `auth_request` only then, and never set cookies: the proxy would hand them to the
//! application's response. Anything that cannot be read or checked is refused, never passed.
//!
//! Because no cookie is set here, a client-side session (`location: client`), whose idle deadline
//! lives in its cookie, is checked but never moved by forward auth: only requests to the portal
//! and the session API, which answer with a new cookie, move it. Behind a proxy, an application
//! keeps a client-side session alive by calling `POST /api/v1/sessions/authenticate` (or any
//! portal page) with the browser's cookie now and then, or the realm turns inactivity off.

use crate::api_tokens;
use crate::error::{ApiError, ErrorDetail};
use crate::extract::{ResponseCookies, find_credential};
use crate::forwarded::{self, ForwardError, Original};
use crate::metrics::ForwardAuthRoute;
use crate::sessions;
use crate::state::{App, Realm};
use axum::Router;
use axum::body::Body;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, header};
use axum::response::Response;
use axum::routing::any;
use sessiond_core::access::{Decision, Evaluation, Object, Subject, normalize_path};
use sessiond_core::api_token::ApiToken;
use sessiond_core::session::SessionRecord;
use std::net::SocketAddr;
use std::time::Instant;
use tracing::{debug, error, warn};

const REMOTE_USER: HeaderName = HeaderName::from_static("remote-user");
const REMOTE_GROUPS: HeaderName = HeaderName::from_static("remote-groups");
const REMOTE_EMAIL: HeaderName = HeaderName::from_static("remote-email");
const REMOTE_NAME: HeaderName = HeaderName::from_static("remote-name");
const REMOTE_JWT: HeaderName = HeaderName::from_static("remote-jwt");

/// The route of nginx's `auth_request`.
pub(crate) const AUTH_REQUEST: &str = "/api/authz/auth-request";
/// The route of Traefik's and Caddy's forward auth.
pub(crate) const FORWARD_AUTH: &str = "/api/authz/forward-auth";

/// Routes of forward auth.
pub(crate) fn router() -> Router<App> {
    Router::new()
        // nginx's auth_request subrequest repeats the client's method unless the operator sets
        // `proxy_method`; Traefik and Caddy call with GET and pass the original method in a header,
        // other proxies repeat it. The answer depends only on the forwarded headers.
        .route(AUTH_REQUEST, any(auth_request))
        .route(FORWARD_AUTH, any(forward_auth))
}

/// Which proxy protocol is asking; they differ only in how "sign in first" is answered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Protocol {
    /// nginx `auth_request`: `401`, and nginx's `error_page` sends the browser to the portal.
    AuthRequest,
    /// Traefik, Caddy: a browser navigation gets the redirect to the portal itself.
    ForwardAuth,
}

/// `GET|HEAD /api/authz/auth-request`: may the forwarded request pass (nginx `auth_request`)?
/// `200` with identity headers, `401` not signed in, `403` denied. Callers: `server.trusted_proxies`.
async fn auth_request(State(app): State<App>, request: Request) -> Response {
    let started = Instant::now();
    let (parts, _) = request.into_parts();
    let response = authorize(&app, &parts, Protocol::AuthRequest).await;
    app.metrics.forward_auth(ForwardAuthRoute::AuthRequest, response.status(), started.elapsed());
    response
}

/// `ANY /api/authz/forward-auth`: may the forwarded request pass (Traefik, Caddy)? Like
/// `auth-request`, but a browser that must sign in (original method GET or HEAD) gets `302` to
/// the realm's portal with `rd` set to the original URL. Callers: `server.trusted_proxies`.
async fn forward_auth(State(app): State<App>, request: Request) -> Response {
    let started = Instant::now();
    let (parts, _) = request.into_parts();
    let response = authorize(&app, &parts, Protocol::ForwardAuth).await;
    app.metrics.forward_auth(ForwardAuthRoute::ForwardAuth, response.status(), started.elapsed());
    response
}

async fn authorize(app: &App, parts: &Parts, protocol: Protocol) -> Response {
    let Some(&ConnectInfo(peer)) = parts.extensions.get::<ConnectInfo<SocketAddr>>() else {
        warn!("forward auth refused: peer address unknown");
        return empty(StatusCode::FORBIDDEN);
    };
    let original = match forwarded::original_request(peer, &parts.headers, &app.settings.trusted_proxies, &parts.method)
    {
        Ok(original) => original,
        Err(ForwardError::UntrustedPeer { peer }) => {
            warn!(%peer, "forward auth refused: peer is not in server.trusted_proxies");
            return empty(StatusCode::FORBIDDEN);
        }
        Err(error) => {
            debug!(%error, "forward auth refused: unreadable forwarding headers");
            return empty(StatusCode::FORBIDDEN);
        }
    };
    let realm = &app.realm_for_host(Some(&original.host));
    let path = match normalize_path(&original.path_and_query) {
        Ok(path) => path,
        Err(error) => {
            debug!(%error, host = %original.host, "forward auth refused: path cannot be normalised");
            return empty(StatusCode::FORBIDDEN);
        }
    };
    // An API token is judged by itself alone: it passes as its user, or the answer is 401.
    match api_tokens::presented(&parts.headers) {
        Ok(Some(token)) => return authorize_token(app, realm, &original, &path, &token).await,
        Ok(None) => {}
        Err(_) => {
            debug!(realm = %realm.name(), host = %original.host, "forward auth refused: malformed API token");
            return empty(StatusCode::UNAUTHORIZED);
        }
    }
    // A credential that cannot even be parsed is treated as no session, but may never pass.
    let (session, malformed) = match find_credential(app, &parts.headers, realm) {
        Ok(Some((credential, _))) => {
            match sessions::verify(app, realm, &credential, false, &ResponseCookies::default(), false).await {
                Ok(session) => (Some(session), false),
                Err(ApiError::Unauthenticated(_)) => (None, false),
                Err(error) => return failed(error),
            }
        }
        Ok(None) => (None, false),
        Err(_) => (None, true),
    };
    let subject = session.as_ref().map(|s| Subject { user: &s.user, groups: &s.groups, amr: &s.amr });
    let object = Object { host: &original.host, path: &path, method: original.method.as_str() };
    let Evaluation { mut decision, rule } = app.access.load().evaluate(&object, subject.as_ref());
    if malformed && decision == Decision::Allow {
        decision = Decision::NeedsLogin;
    }
    debug!(
        realm = %realm.name(),
        session_id = session.as_ref().map_or("-", |s| s.id.as_str()),
        host = %original.host,
        path = %path,
        method = %original.method,
        rule = ?rule,
        malformed_credential = malformed,
        ?decision,
        "access decided"
    );
    match decision {
        Decision::Allow => {
            let mut response = empty(StatusCode::OK);
            if let Some(session) = &session {
                identity_headers(response.headers_mut(), session);
                if realm.policy.jwt.enabled && realm.policy.jwt.header {
                    match app.signing.header_jwt(app, realm, session).await {
                        Ok(Some(jwt)) => put(response.headers_mut(), REMOTE_JWT, &jwt),
                        Ok(None) => {}
                        // An application that was promised the JWT must not get the request without it.
                        Err(error) => return failed(error),
                    }
                }
            }
            response
        }
        Decision::NeedsLogin => sign_in_first(realm, &original, protocol, PortalStep::Login),
        // A signed-in session without a second factor: the portal's code form upgrades it.
        Decision::NeedsSecondFactor => sign_in_first(realm, &original, protocol, PortalStep::SecondFactor),
        Decision::Deny => empty(StatusCode::FORBIDDEN),
    }
}

/// Forward auth for a request that presents an API token: the token's user and groups meet the
/// access rules. A token is a credential for programs, so an unusable one is `401` (never a
/// redirect to the portal), and a rule that needs a second factor is `403`: a token has none.
async fn authorize_token(app: &App, realm: &Realm, original: &Original<'_>, path: &str, token: &ApiToken) -> Response {
    let caller = match api_tokens::verify(app, realm, token).await {
        Ok(caller) => caller,
        Err(ApiError::Unauthenticated(why)) => {
            debug!(realm = %realm.name(), host = %original.host, why, "forward auth refused: API token");
            return empty(StatusCode::UNAUTHORIZED);
        }
        Err(error) => return failed(error),
    };
    let record = &caller.record;
    let subject = Subject { user: &record.user, groups: &caller.groups, amr: &[] };
    let object = Object { host: &original.host, path, method: original.method.as_str() };
    let Evaluation { decision, rule } = app.access.load().evaluate(&object, Some(&subject));
    debug!(
        realm = %realm.name(),
        token_id = %record.id,
        host = %original.host,
        path = %path,
        method = %original.method,
        rule = ?rule,
        ?decision,
        "access decided"
    );
    match decision {
        Decision::Allow => {
            let mut response = empty(StatusCode::OK);
            let (email, name) = (caller.email.as_deref(), caller.display_name.as_deref());
            identity(response.headers_mut(), &record.user, &caller.groups, email, name);
            response
        }
        Decision::NeedsLogin => empty(StatusCode::UNAUTHORIZED),
        Decision::NeedsSecondFactor | Decision::Deny => empty(StatusCode::FORBIDDEN),
    }
}

/// An answer with no body that no cache keeps.
fn empty(status: StatusCode) -> Response {
    let mut response = Response::new(Body::empty());
    *response.status_mut() = status;
    response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// A failure to check the session (store down, a bug): never a pass, and logged by the trace
/// layer through the attached detail.
fn failed(error: ApiError) -> Response {
    // Forward auth has no request span (see `router`), so the failure is logged here.
    error!(error = %error, source = ?std::error::Error::source(&error), "forward auth failed");
    let mut response = empty(error.status());
    match error {
        ApiError::StoreUnavailable(source) => {
            response.extensions_mut().insert(ErrorDetail(source));
        }
        ApiError::Internal(source) => {
            response.extensions_mut().insert(ErrorDetail(source));
        }
        _ => {}
    }
    response
}

/// The portal page a request that may not pass yet is sent to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum PortalStep {
    /// `/login`: not signed in.
    Login,
    /// `/login/totp`: signed in, but the rule needs a second factor.
    SecondFactor,
}

fn sign_in_first(realm: &Realm, original: &Original<'_>, protocol: Protocol, step: PortalStep) -> Response {
    let browser = original.method == Method::GET || original.method == Method::HEAD;
    // nginx decides itself what to do with the 401, so it always gets the portal address.
    let location =
        if browser || protocol == Protocol::AuthRequest { login_location(realm, original, step) } else { None };
    match (protocol, location) {
        (Protocol::ForwardAuth, Some(location)) => {
            let mut response = empty(StatusCode::FOUND);
            response.headers_mut().insert(header::LOCATION, location);
            response
        }
        // nginx turns a 401 into the redirect itself (`error_page 401 =302 $redirection_url`);
        // the Location it reads with `auth_request_set` carries the properly encoded `rd`.
        (Protocol::AuthRequest, Some(location)) => {
            let mut response = empty(StatusCode::UNAUTHORIZED);
            response.headers_mut().insert(header::LOCATION, location);
            response
        }
        (_, None) => empty(StatusCode::UNAUTHORIZED),
    }
}

/// `<portal>/login?rd=<original URL>` (or `/login/totp`), whether or not the portal URL ends
/// with a slash.
fn login_location(realm: &Realm, original: &Original<'_>, step: PortalStep) -> Option<HeaderValue> {
    let target = original.url().ok()?;
    let mut login = realm.policy.portal_url.clone();
    {
        let mut path = login.path_segments_mut().ok()?;
        path.pop_if_empty().push("login");
        if step == PortalStep::SecondFactor {
            path.push("totp");
        }
    }
    login.set_fragment(None);
    login.query_pairs_mut().clear().append_pair("rd", target.as_str());
    HeaderValue::from_str(login.as_str()).ok()
}

/// `Remote-User`, `Remote-Groups`, `Remote-Email`, `Remote-Name`. Empty values are left out, and
/// values that are not valid header values are dropped rather than passed on raw.
fn identity_headers(headers: &mut HeaderMap, session: &SessionRecord) {
    identity(headers, &session.user, &session.groups, session.email.as_deref(), session.display_name.as_deref());
}

/// The identity headers of `user`, for a session or an API token.
fn identity(headers: &mut HeaderMap, user: &str, groups: &[String], email: Option<&str>, name: Option<&str>) {
    put(headers, REMOTE_USER, user);
    // A group whose name holds a comma would read as two groups downstream, so it is left out.
    let listed = || groups.iter().filter(|g| !g.is_empty() && !g.contains(','));
    match listed().count() {
        0 => {}
        1 => {
            if let Some(group) = listed().next() {
                put(headers, REMOTE_GROUPS, group);
            }
        }
        _ => {
            let mut joined = String::with_capacity(listed().map(|g| g.len() + 1).sum());
            for group in listed() {
                if !joined.is_empty() {
                    joined.push(',');
                }
                joined.push_str(group);
            }
            put(headers, REMOTE_GROUPS, &joined);
        }
    }
    if let Some(email) = email {
        put(headers, REMOTE_EMAIL, email);
    }
    if let Some(name) = name {
        put(headers, REMOTE_NAME, name);
    }
}

fn put(headers: &mut HeaderMap, name: HeaderName, value: &str) {
    if value.is_empty() {
        return;
    }
    match HeaderValue::from_str(value) {
        Ok(value) => {
            headers.insert(name, value);
        }
        Err(_) => debug!(header = %name, "identity header left out: not a valid header value"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sessiond_core::time::Timestamp;
    use sessiond_core::token::{SessionId, SessionToken};
    use std::collections::BTreeMap;

    fn record(groups: &[&str], email: Option<&str>, name: Option<&str>) -> SessionRecord {
        let t = Timestamp::from_unix(1_790_000_000);
        SessionRecord {
            id: SessionId::generate(),
            token_hash: SessionToken::generate().hash(),
            realm: "main".into(),
            user: "alice".into(),
            display_name: name.map(Into::into),
            email: email.map(Into::into),
            groups: groups.iter().map(|g| (*g).to_owned()).collect(),
            amr: vec!["pwd".into()],
            created_at: t,
            last_seen_at: t,
            absolute_deadline: t,
            expires_at: t,
            remember_me: false,
            ip: None,
            user_agent: None,
            attributes: BTreeMap::new(),
        }
    }

    fn identity(session: &SessionRecord) -> HeaderMap {
        let mut headers = HeaderMap::new();
        identity_headers(&mut headers, session);
        headers
    }

    #[test]
    fn identity_headers_carry_user_groups_email_and_name() {
        let h = identity(&record(&["dev", "admins"], Some("a@example.com"), Some("Alice Liddell")));
        assert_eq!(h["remote-user"], "alice");
        assert_eq!(h["remote-groups"], "dev,admins");
        assert_eq!(h["remote-email"], "a@example.com");
        assert_eq!(h["remote-name"], "Alice Liddell");
        assert_eq!(identity(&record(&["dev"], None, None))["remote-groups"], "dev");
    }

    #[test]
    fn empty_values_are_left_out() {
        let h = identity(&record(&[], Some(""), None));
        assert_eq!(h.len(), 1, "{h:?}");
        assert!(h.contains_key("remote-user"));
    }

    #[test]
    fn values_that_are_not_header_values_are_dropped() {
        let h = identity(&record(&["dev"], Some("a@example.com\r\nX-Injected: 1"), Some("Alice\0")));
        assert!(!h.contains_key("remote-email"));
        assert!(!h.contains_key("remote-name"));
        assert!(!h.contains_key("x-injected"));
        assert_eq!(h["remote-groups"], "dev");
    }

    #[test]
    fn groups_with_commas_are_not_split_downstream() {
        let h = identity(&record(&["dev", "a,admins", ""], None, None));
        assert_eq!(h["remote-groups"], "dev");
        assert!(!identity(&record(&["a,admins"], None, None)).contains_key("remote-groups"));
    }

    fn realm(portal: &str) -> Realm {
        let policy = sessiond_core::realm::RealmPolicy {
            name: "main".into(),
            portal_url: portal.parse().unwrap(),
            cookie: sessiond_core::realm::CookieSettings {
                name: None,
                domain: None,
                same_site: sessiond_core::cookie::SameSite::Lax,
                secure: true,
                persistent: true,
                http_only: sessiond_core::realm::HttpOnlyMode::On,
            },
            timeouts: sessiond_core::timeout::Timeouts::default(),
            jwt: Default::default(),
            location: Default::default(),
            journeys: Default::default(),
        };
        Realm::new(policy, "sd_test")
    }

    fn original() -> Original<'static> {
        Original {
            scheme: forwarded::Scheme::Https,
            host: "app.example.com".into(),
            port: Some(8443),
            path_and_query: "/a b/c?x=1&y=é".into(),
            method: Method::GET,
        }
    }

    #[test]
    fn login_location_works_with_and_without_a_trailing_slash() {
        let rd = "rd=https%3A%2F%2Fapp.example.com%3A8443%2Fa%2520b%2Fc%3Fx%3D1%26y%3D%25C3%25A9";
        for (portal, want) in [
            ("https://auth.example.com", "https://auth.example.com/login?"),
            ("https://auth.example.com/", "https://auth.example.com/login?"),
            ("https://example.com/auth", "https://example.com/auth/login?"),
            ("https://example.com/auth/", "https://example.com/auth/login?"),
            ("https://example.com/auth/?old=1#frag", "https://example.com/auth/login?"),
        ] {
            let location = login_location(&realm(portal), &original(), PortalStep::Login).unwrap();
            assert_eq!(location.to_str().unwrap(), format!("{want}{rd}"), "{portal}");
            let second = login_location(&realm(portal), &original(), PortalStep::SecondFactor).unwrap();
            assert_eq!(second.to_str().unwrap(), format!("{}/totp?{rd}", want.trim_end_matches('?')), "{portal}");
        }
    }

    #[test]
    fn non_ascii_names_pass_as_utf8() {
        let h = identity(&record(&[], None, Some("Zoë")));
        assert_eq!(h["remote-name"].as_bytes(), "Zoë".as_bytes());
    }
}
