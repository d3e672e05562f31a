//! Forward auth over real HTTP: nginx `auth_request` (`X-Original-URL`) and Traefik/Caddy
//! (`X-Forwarded-Proto/Host/URI/Method`), with access rules, sessions of every state, and callers
//! that try to make the answer say more than it should.

use crate::support::*;
use reqwest::header::HeaderMap;
use serde_json::Value;
use sessiond_core::access::{AccessControl, Policy, Rule, RuleSpec};
use sessiond_core::token::SessionToken;
use sessiond_store::Store;

const AUTH_REQUEST: &str = "/api/authz/auth-request";
const FORWARD_AUTH: &str = "/api/authz/forward-auth";
const APP: &str = "app.example.test";

type Headers = Vec<(&'static str, String)>;

fn rule(domain: &str, resources: &[&str], subject: &[&str], policy: &str) -> Rule {
    let strings =
        |items: &[&str]| Some(items.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>()).filter(|v| !v.is_empty());
    Rule::parse(&RuleSpec {
        domain: Some(vec![domain.to_owned()]),
        resources: strings(resources),
        subject: strings(subject).map(|all| vec![all]),
        policy: Some(policy.to_owned()),
        ..RuleSpec::default()
    })
    .unwrap()
}

/// The rules every test here runs under; anything else falls to the default `deny`.
fn rules() -> AccessControl {
    AccessControl::new(
        Policy::Deny,
        vec![
            rule(APP, &["^/public(/|$)"], &[], "bypass"),
            rule(APP, &["^/admin(/|$)"], &[], "deny"),
            rule(APP, &["^/ops(/|$)"], &["group:admins"], "one_factor"),
            rule(APP, &["^/ops(/|$)"], &[], "deny"),
            rule(APP, &["^/bob(/|$)"], &["user:bob"], "one_factor"),
            rule(APP, &["^/bob(/|$)"], &[], "deny"),
            rule(APP, &["^/secure(/|$)"], &[], "two_factor"),
            rule(APP, &[], &[], "one_factor"),
            rule("*.other.test", &[], &[], "one_factor"),
        ],
    )
}

fn localhost() -> Vec<ipnet::IpNet> {
    vec!["127.0.0.1/32".parse().unwrap()]
}

/// A server that trusts the test client as its proxy.
async fn server() -> TestServer {
    TestServer::with(Options { trusted_proxies: localhost(), access: Some(rules()), ..Options::default() }).await
}

/// nginx's `auth_request` headers for `url`.
fn nginx(url: &str) -> Headers {
    vec![("x-original-url", url.to_owned()), ("x-original-method", "GET".to_owned())]
}

/// Traefik's forward-auth headers.
fn traefik(host: &str, uri: &str, method: &str) -> Headers {
    vec![
        ("x-forwarded-proto", "https".to_owned()),
        ("x-forwarded-host", host.to_owned()),
        ("x-forwarded-uri", uri.to_owned()),
        ("x-forwarded-method", method.to_owned()),
    ]
}

fn with(mut headers: Headers, name: &'static str, value: impl Into<String>) -> Headers {
    headers.push((name, value.into()));
    headers
}

fn cookie(token: &str) -> (&'static str, String) {
    ("cookie", format!("{COOKIE}={token}"))
}

async fn ask_with(
    s: &TestServer,
    method: reqwest::Method,
    endpoint: &str,
    headers: &[(&'static str, String)],
) -> Answer {
    let mut request = s.client.request(method, s.url(endpoint));
    for (name, value) in headers {
        request = request.header(*name, value);
    }
    Answer::of(request.send().await.unwrap()).await
}

async fn ask(s: &TestServer, endpoint: &str, headers: &[(&'static str, String)]) -> Answer {
    ask_with(s, reqwest::Method::GET, endpoint, headers).await
}

/// An authz answer, checked for what every answer promises: an empty body, no caching, and no
/// cookies (the proxy would hand them to the application's response).
struct Answer {
    status: u16,
    headers: HeaderMap,
}

impl Answer {
    async fn of(res: reqwest::Response) -> Self {
        let status = res.status().as_u16();
        let headers = res.headers().clone();
        let body = res.bytes().await.unwrap();
        assert!(body.is_empty(), "authz answers have an empty body, got {body:?}");
        assert_eq!(headers.get("cache-control").map(|v| v.to_str().unwrap()), Some("no-store"), "status {status}");
        assert!(headers.get("set-cookie").is_none(), "authz answers set no cookie");
        Self { status, headers }
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(|v| v.to_str().unwrap())
    }

    fn user(&self) -> Option<&str> {
        self.header("remote-user")
    }

    /// The `rd` of a redirect to the portal's login page.
    fn rd(&self) -> String {
        self.rd_to("/login")
    }

    /// The `rd` of a redirect to the portal page at `path`.
    fn rd_to(&self, path: &str) -> String {
        let location = url::Url::parse(self.header("location").expect("a Location")).unwrap();
        assert_eq!(location.path(), path, "{location}");
        location.query_pairs().find(|(k, _)| k == "rd").map(|(_, v)| v.into_owned()).expect("an rd parameter")
    }
}

#[tokio::test]
async fn signed_in_session_passes_with_identity_headers_and_an_empty_body() {
    let s = server().await;
    let token = s.login("alice", "alice-pw", false).await;
    let a = ask(&s, AUTH_REQUEST, &with(nginx("https://app.example.test/docs"), "cookie", format!("{COOKIE}={token}")))
        .await;
    assert_eq!(a.status, 200);
    assert_eq!(a.user(), Some("alice"));
    assert_eq!(a.header("remote-groups"), Some("dev"));
    assert_eq!(a.header("remote-email"), Some("user@example.test"));
    assert_eq!(a.header("remote-name"), Some("Test User"));
    assert_eq!(a.header("content-length"), Some("0"));
}

#[tokio::test]
async fn every_accepted_credential_passes() {
    let s = server().await;
    let token = s.login("alice", "alice-pw", false).await;
    let request = nginx("https://app.example.test/");
    for credential in [cookie(&token), ("authorization", format!("Bearer {token}")), ("sd_test", token.clone())] {
        let a = ask(&s, AUTH_REQUEST, &with(request.clone(), credential.0, credential.1.clone())).await;
        assert_eq!((a.status, a.user()), (200, Some("alice")), "{}", credential.0);
    }
}

#[tokio::test]
async fn without_a_session_auth_request_answers_401() {
    let s = server().await;
    let a = ask(&s, AUTH_REQUEST, &nginx("https://app.example.test/docs?a=1&b=2")).await;
    assert_eq!(a.status, 401);
    // nginx's `error_page 401 =302 $redirection_url` sends the browser where Location says.
    assert_eq!(a.rd(), "https://app.example.test/docs?a=1&b=2", "the whole query survives, encoded");
    let a = ask_with(&s, reqwest::Method::HEAD, AUTH_REQUEST, &nginx("https://app.example.test/docs")).await;
    assert_eq!(a.status, 401, "HEAD is answered like GET");
    let post = vec![("x-original-url", "https://app.example.test/docs".to_owned())];
    let a = ask_with(&s, reqwest::Method::POST, AUTH_REQUEST, &post).await;
    assert_eq!((a.status, a.rd().as_str()), (401, "https://app.example.test/docs"), "nginx decides what a POST gets");
}

#[tokio::test]
async fn without_a_session_forward_auth_sends_browsers_to_the_portal() {
    let s = server().await;
    let original = "https://app.example.test/docs/a b?x=1&next=/y#top";
    for method in ["GET", "HEAD"] {
        let a = ask(
            &s,
            FORWARD_AUTH,
            &with(vec![("x-original-url", original.replace(' ', "%20"))], "x-forwarded-method", method),
        )
        .await;
        assert_eq!(a.status, 302, "{method}");
        let location = a.header("location").unwrap();
        assert!(location.starts_with("http://127.0.0.1/login?rd=https%3A%2F%2Fapp.example.test%2F"), "{location}");
        assert_eq!(a.rd(), "https://app.example.test/docs/a%20b?x=1&next=/y", "{method}");
    }
}

#[tokio::test]
async fn forward_auth_answers_401_for_methods_a_redirect_would_break() {
    let s = server().await;
    for method in ["POST", "PUT", "DELETE", "PATCH"] {
        let a = ask(&s, FORWARD_AUTH, &traefik(APP, "/docs", method)).await;
        assert_eq!(a.status, 401, "{method}");
        assert!(a.header("location").is_none());
    }
}

#[tokio::test]
async fn forward_auth_accepts_any_method_and_decides_by_the_forwarded_one() {
    let s = server().await;
    let a = ask_with(&s, reqwest::Method::POST, FORWARD_AUTH, &traefik(APP, "/docs", "GET")).await;
    assert_eq!(a.status, 302);
    let a = ask_with(&s, reqwest::Method::PUT, FORWARD_AUTH, &traefik(APP, "/docs", "PUT")).await;
    assert_eq!(a.status, 401);
}

#[tokio::test]
async fn traefik_protocol_answers_each_decision() {
    let s = server().await;
    let token = s.login("alice", "alice-pw", false).await;
    let a = ask(&s, FORWARD_AUTH, &traefik("App.Example.TEST:443", "/docs?page=2", "GET")).await;
    assert_eq!(a.status, 302);
    assert_eq!(a.rd(), "https://app.example.test/docs?page=2");
    let a = ask(&s, FORWARD_AUTH, &with(traefik(APP, "/docs", "GET"), "cookie", format!("{COOKIE}={token}"))).await;
    assert_eq!((a.status, a.user()), (200, Some("alice")));
    let a = ask(&s, FORWARD_AUTH, &with(traefik(APP, "/docs", "DELETE"), "cookie", format!("{COOKIE}={token}"))).await;
    assert_eq!(a.status, 200);
    let a = ask(&s, FORWARD_AUTH, &with(traefik(APP, "/admin", "GET"), "cookie", format!("{COOKIE}={token}"))).await;
    assert_eq!(a.status, 403);
    assert_eq!(ask(&s, FORWARD_AUTH, &traefik(APP, "/public/x", "POST")).await.status, 200);
}

#[tokio::test]
async fn x_original_url_and_x_forwarded_headers_describe_the_same_request() {
    let s = server().await;
    let token = s.login("alice", "alice-pw", false).await;
    for endpoint in [AUTH_REQUEST, FORWARD_AUTH] {
        for request in [nginx("https://app.example.test/docs"), traefik(APP, "/docs", "GET")] {
            let a = ask(&s, endpoint, &with(request.clone(), "cookie", format!("{COOKIE}={token}"))).await;
            assert_eq!((a.status, a.user()), (200, Some("alice")), "{endpoint} {request:?}");
            assert_ne!(ask(&s, endpoint, &request).await.status, 200, "{endpoint} {request:?} anonymous");
        }
    }
}

#[tokio::test]
async fn deny_rule_answers_403_signed_in_or_not() {
    let s = server().await;
    let token = s.login("root", "root-pw", false).await;
    let url = "https://app.example.test/admin/users";
    assert_eq!(ask(&s, AUTH_REQUEST, &nginx(url)).await.status, 403);
    assert_eq!(ask(&s, FORWARD_AUTH, &nginx(url)).await.status, 403);
    let a = ask(&s, AUTH_REQUEST, &with(nginx(url), "cookie", format!("{COOKIE}={token}"))).await;
    assert_eq!((a.status, a.user()), (403, None), "a denial names nobody");
}

#[tokio::test]
async fn bypass_passes_anonymous_callers_without_identity() {
    let s = server().await;
    let a = ask(&s, AUTH_REQUEST, &nginx("https://app.example.test/public/logo.png")).await;
    assert_eq!(a.status, 200);
    for name in ["remote-user", "remote-groups", "remote-email", "remote-name"] {
        assert!(a.header(name).is_none(), "{name}");
    }
    // A stale but well-formed cookie is simply no session.
    let stale = SessionToken::generate().expose();
    let a =
        ask(&s, AUTH_REQUEST, &with(nginx("https://app.example.test/public/"), "cookie", format!("{COOKIE}={stale}")))
            .await;
    assert_eq!((a.status, a.user()), (200, None));
}

#[tokio::test]
async fn group_subject_rule_admits_members_only() {
    let s = server().await;
    let url = "https://app.example.test/ops/deploy";
    let root = s.login("root", "root-pw", false).await;
    let alice = s.login("alice", "alice-pw", false).await;
    let a = ask(&s, AUTH_REQUEST, &with(nginx(url), "cookie", format!("{COOKIE}={root}"))).await;
    assert_eq!((a.status, a.user(), a.header("remote-groups")), (200, Some("root"), Some("admins")));
    assert_eq!(ask(&s, AUTH_REQUEST, &with(nginx(url), "cookie", format!("{COOKIE}={alice}"))).await.status, 403);
    assert_eq!(ask(&s, AUTH_REQUEST, &nginx(url)).await.status, 401, "signing in could admit an anonymous caller");
}

#[tokio::test]
async fn user_subject_rule_admits_that_user_only() {
    let s = server().await;
    let url = "https://app.example.test/bob/notes";
    let bob = s.login("bob", "bob-pw", false).await;
    let alice = s.login("alice", "alice-pw", false).await;
    let a = ask(&s, AUTH_REQUEST, &with(nginx(url), "cookie", format!("{COOKIE}={bob}"))).await;
    assert_eq!((a.status, a.user()), (200, Some("bob")));
    assert_eq!(ask(&s, AUTH_REQUEST, &with(nginx(url), "cookie", format!("{COOKIE}={alice}"))).await.status, 403);
}

#[tokio::test]
async fn two_factor_rule_refuses_a_password_only_session() {
    let s = server().await;
    let token = s.login("alice", "alice-pw", false).await;
    let url = "https://app.example.test/secure/vault";
    let a = ask(&s, AUTH_REQUEST, &with(nginx(url), "cookie", format!("{COOKIE}={token}"))).await;
    assert_eq!((a.status, a.user()), (401, None));
    assert_eq!(a.rd_to("/login/totp"), url, "nginx sends the browser to the code form");
    let a = ask(&s, FORWARD_AUTH, &with(nginx(url), "cookie", format!("{COOKIE}={token}"))).await;
    assert_eq!(a.status, 302, "the portal asks for the second factor");
    assert_eq!(a.rd_to("/login/totp"), url);
}

#[tokio::test]
async fn untrusted_peer_spoofing_forwarding_headers_is_refused() {
    // Everything is public here, so only the refusal of the peer can stop a pass.
    let everyone = AccessControl::new(Policy::Bypass, vec![]);
    let s = TestServer::with(Options { trusted_proxies: vec![], access: Some(everyone), ..Options::default() }).await;
    let token = s.login("alice", "alice-pw", false).await;
    for endpoint in [AUTH_REQUEST, FORWARD_AUTH] {
        assert_eq!(ask(&s, endpoint, &traefik(APP, "/public", "GET")).await.status, 403, "{endpoint}");
        assert_eq!(ask(&s, endpoint, &nginx("https://app.example.test/")).await.status, 403, "{endpoint}");
        let a = ask(&s, endpoint, &with(traefik(APP, "/", "GET"), "cookie", format!("{COOKIE}={token}"))).await;
        assert_eq!((a.status, a.user()), (403, None), "{endpoint}");
        assert_eq!(ask(&s, endpoint, &[]).await.status, 403, "{endpoint} without headers");
    }
    // A trusted range that does not contain the peer is no better.
    let other = vec!["10.0.0.0/8".parse().unwrap()];
    let everyone = AccessControl::new(Policy::Bypass, vec![]);
    let s = TestServer::with(Options { trusted_proxies: other, access: Some(everyone), ..Options::default() }).await;
    assert_eq!(ask(&s, AUTH_REQUEST, &traefik(APP, "/", "GET")).await.status, 403);
}

#[tokio::test]
async fn unreadable_forwarding_headers_are_refused() {
    let s = server().await;
    let token = s.login("alice", "alice-pw", false).await;
    let signed_in = |h: Headers| with(h, "cookie", format!("{COOKIE}={token}"));
    let cases: Vec<(&str, Headers)> = vec![
        ("no headers", vec![]),
        ("no host", vec![("x-forwarded-proto", "https".into()), ("x-forwarded-uri", "/".into())]),
        (
            "ftp",
            vec![
                ("x-forwarded-proto", "ftp".into()),
                ("x-forwarded-host", APP.into()),
                ("x-forwarded-uri", "/".into()),
            ],
        ),
        ("userinfo", traefik("alice@app.example.test", "/", "GET")),
        ("relative uri", traefik(APP, "docs", "GET")),
        ("lowercase method", traefik(APP, "/", "get")),
        ("two hosts", with(traefik(APP, "/", "GET"), "x-forwarded-host", "evil.example")),
        ("two urls", with(nginx("https://app.example.test/"), "x-original-url", "https://app.example.test/x")),
        ("relative url", nginx("/docs")),
        ("oversized", traefik(APP, &format!("/{}", "a".repeat(9000)), "GET")),
    ];
    for (what, headers) in cases {
        assert_eq!(ask(&s, AUTH_REQUEST, &signed_in(headers.clone())).await.status, 403, "{what}");
        assert_eq!(ask(&s, FORWARD_AUTH, &signed_in(headers)).await.status, 403, "{what}");
    }
}

#[tokio::test]
async fn malformed_credentials_never_pass() {
    let s = server().await;
    let token = s.login("alice", "alice-pw", false).await;
    let other = s.login("bob", "bob-pw", false).await;
    let cases: Vec<(&str, &'static str, String)> = vec![
        ("not a token", "cookie", format!("{COOKIE}=not-a-token")),
        ("bad octets", "cookie", format!("{COOKIE}=\"{token}\\\"")),
        ("oversized", "cookie", format!("{COOKIE}={}", "A".repeat(4000))),
        ("two values", "cookie", format!("{COOKIE}={token}; {COOKIE}={other}")),
        ("empty", "cookie", format!("{COOKIE}=")),
        ("malformed token header", COOKIE, token[..20].to_owned()),
    ];
    for (what, name, value) in cases {
        for url in ["https://app.example.test/docs", "https://app.example.test/public/"] {
            let a = ask(&s, AUTH_REQUEST, &with(nginx(url), name, value.clone())).await;
            assert_eq!((a.status, a.user()), (401, None), "{what} on {url}");
        }
    }
    // A valid cookie is not rescued by a malformed value of our own header beside it.
    let a = ask(
        &s,
        AUTH_REQUEST,
        &with(with(nginx("https://app.example.test/"), COOKIE, "garbage"), "cookie", format!("{COOKIE}={token}")),
    )
    .await;
    assert_eq!(a.status, 401);
}

#[tokio::test]
async fn the_applications_own_authorization_header_does_not_hide_the_session_cookie() {
    let s = server().await;
    let token = s.login("alice", "alice-pw", false).await;
    // Basic auth or a bearer token meant for the application behind the proxy.
    for theirs in ["Basic YWxpY2U6YWxpY2UtcHc=", "Bearer eyJhbGciOiJFUzI1NiJ9.e30.sig"] {
        let a = ask(
            &s,
            AUTH_REQUEST,
            &with(
                with(nginx("https://app.example.test/"), "authorization", theirs),
                "cookie",
                format!("{COOKIE}={token}"),
            ),
        )
        .await;
        assert_eq!((a.status, a.user()), (200, Some("alice")), "{theirs}");
        // Alone, it is no credential at all: sign in first, or pass anonymously where bypass applies.
        let a = ask(&s, AUTH_REQUEST, &with(nginx("https://app.example.test/"), "authorization", theirs)).await;
        assert_eq!((a.status, a.user()), (401, None), "{theirs}");
        let a = ask(&s, AUTH_REQUEST, &with(nginx("https://app.example.test/public/"), "authorization", theirs)).await;
        assert_eq!((a.status, a.user()), (200, None), "{theirs}");
    }
}

#[tokio::test]
async fn unknown_host_is_decided_by_the_rules_and_never_passes_by_default() {
    let s = server().await;
    let token = s.login("alice", "alice-pw", false).await;
    let url = "https://unknown.example/";
    for endpoint in [AUTH_REQUEST, FORWARD_AUTH] {
        assert_eq!(ask(&s, endpoint, &nginx(url)).await.status, 403, "{endpoint}");
        let a = ask(&s, endpoint, &with(nginx(url), "cookie", format!("{COOKIE}={token}"))).await;
        assert_eq!((a.status, a.user()), (403, None), "{endpoint}");
    }
    // The same holds for hosts that only look like ours.
    for host in ["app.example.test.evil", "evilapp.example.test", "127.0.0.1"] {
        let a =
            ask(&s, AUTH_REQUEST, &with(traefik(host, "/public", "GET"), "cookie", format!("{COOKIE}={token}"))).await;
        assert_eq!(a.status, 403, "{host}");
    }
}

#[tokio::test]
async fn query_never_dodges_a_path_rule() {
    let s = server().await;
    let token = s.login("alice", "alice-pw", false).await;
    for uri in ["/admin?/public", "/admin?x=/public/", "/admin#/public", "/admin/?/public"] {
        assert_eq!(ask(&s, AUTH_REQUEST, &traefik(APP, uri, "GET")).await.status, 403, "{uri}");
        let a = ask(&s, AUTH_REQUEST, &with(traefik(APP, uri, "GET"), "cookie", format!("{COOKIE}={token}"))).await;
        assert_eq!(a.status, 403, "{uri} signed in");
    }
    // And a query that mentions a denied path does not deny a public one.
    assert_eq!(ask(&s, AUTH_REQUEST, &traefik(APP, "/public/?/admin", "GET")).await.status, 200);
}

#[tokio::test]
async fn dot_segments_are_resolved_before_matching() {
    let s = server().await;
    for uri in ["/public/../admin", "/public/./../admin/", "//public/%2e%2e/admin", "/public/%2E%2E/admin"] {
        assert_eq!(ask(&s, AUTH_REQUEST, &traefik(APP, uri, "GET")).await.status, 403, "{uri}");
    }
    for url in ["https://app.example.test/public/../admin", "https://app.example.test/public/%2e%2e/admin"] {
        assert_eq!(ask(&s, AUTH_REQUEST, &nginx(url)).await.status, 403, "{url}");
    }
    assert_eq!(ask(&s, AUTH_REQUEST, &traefik(APP, "/admin/../public/x", "GET")).await.status, 200);
}

#[tokio::test]
async fn paths_that_the_application_could_read_differently_are_refused() {
    let s = server().await;
    let token = s.login("alice", "alice-pw", false).await;
    for uri in [
        "/public/..%2fadmin",
        "/public/..%2Fadmin",
        "/public/%2e%2e%5cadmin",
        "/public/..;/admin",
        "/public/%252e",
        "/%00",
    ] {
        let a = ask(&s, AUTH_REQUEST, &with(traefik(APP, uri, "GET"), "cookie", format!("{COOKIE}={token}"))).await;
        assert_eq!(a.status, 403, "{uri}");
    }
    assert_eq!(ask(&s, AUTH_REQUEST, &nginx("https://app.example.test/public/..%2fadmin")).await.status, 403);
}

#[tokio::test]
async fn session_of_one_realm_is_no_session_on_another_realms_host() {
    let s = TestServer::with(Options {
        trusted_proxies: localhost(),
        access: Some(rules()),
        domain: Some("example.test".into()),
        other_realm: Some(("other".into(), "other.test".into())),
        ..Options::default()
    })
    .await;
    let token = s.login("alice", "alice-pw", false).await;
    let home =
        ask(&s, AUTH_REQUEST, &with(nginx("https://app.example.test/"), "cookie", format!("{COOKIE}={token}"))).await;
    assert_eq!((home.status, home.user()), (200, Some("alice")), "the session works in its own realm");
    let url = "https://app.other.test/";
    for credential in [
        ("cookie", format!("{COOKIE}={token}")),
        ("cookie", format!("{OTHER_COOKIE}={token}")),
        ("authorization", format!("Bearer {token}")),
    ] {
        let a = ask(&s, AUTH_REQUEST, &with(nginx(url), credential.0, credential.1.clone())).await;
        assert_eq!((a.status, a.user()), (401, None), "{credential:?}");
    }
    let a = ask(&s, FORWARD_AUTH, &nginx(url)).await;
    assert_eq!(a.status, 302);
    assert!(a.header("location").unwrap().starts_with("http://auth.other.test/login?rd="), "the other realm's portal");
}

#[tokio::test]
async fn expired_session_answers_401() {
    let s = server().await;
    let token = s.login("alice", "alice-pw", false).await;
    let request = with(nginx("https://app.example.test/docs"), "cookie", format!("{COOKIE}={token}"));
    s.advance(301); // past the 5m inactivity limit
    assert_eq!(ask(&s, AUTH_REQUEST, &request).await.status, 401);
    assert_eq!(ask(&s, FORWARD_AUTH, &request).await.status, 302);
    let hash = SessionToken::parse(&token).unwrap().hash();
    assert!(s.store.session_by_token(&hash).await.unwrap().is_none(), "the dead session is gone");
}

#[tokio::test]
async fn revoked_session_answers_401_at_once() {
    let s = server().await;
    let token = s.login("alice", "alice-pw", false).await;
    let request = with(nginx("https://app.example.test/docs"), "cookie", format!("{COOKIE}={token}"));
    assert_eq!(ask(&s, AUTH_REQUEST, &request).await.status, 200);
    let res = s.client.delete(s.url("/api/v1/sessions/current")).bearer_auth(&token).send().await.unwrap();
    assert!(res.status().is_success(), "{}", res.status());
    assert_eq!(ask(&s, AUTH_REQUEST, &request).await.status, 401);
}

#[tokio::test]
async fn activity_is_recorded_at_most_once_per_throttle_interval() {
    let s = server().await;
    let token = s.login("alice", "alice-pw", false).await;
    let request = with(nginx("https://app.example.test/docs"), "cookie", format!("{COOKIE}={token}"));
    let last_seen = || async {
        let res = s.get_with_token("/api/v1/sessions", &token).await;
        let body: Value = res.json().await.unwrap();
        body["sessions"][0]["last_seen_at"].as_str().unwrap().to_owned()
    };
    let at_login = last_seen().await;

    // Inactivity 5m: a touch is due after 30 s.
    s.advance(40);
    assert_eq!(ask(&s, AUTH_REQUEST, &request).await.status, 200);
    let touched = last_seen().await;
    assert_ne!(touched, at_login, "the first request after the interval records activity");

    s.advance(5);
    assert_eq!(ask(&s, AUTH_REQUEST, &request).await.status, 200);
    s.advance(5);
    assert_eq!(ask(&s, FORWARD_AUTH, &request).await.status, 200);
    assert_eq!(last_seen().await, touched, "no write for requests within the interval");

    // The recorded activity keeps the session alive past the original idle deadline.
    s.advance(280);
    assert_eq!(ask(&s, AUTH_REQUEST, &request).await.status, 200);
}

#[tokio::test]
async fn client_address_behind_a_trusted_proxy_is_the_forwarded_one() {
    let body = login_body("alice", "alice-pw", false);
    let s = server().await;
    let res = s
        .client
        .post(s.url("/api/v1/authenticate"))
        .header("x-forwarded-for", "198.51.100.1, 203.0.113.9")
        .json(&body)
        .send()
        .await
        .unwrap();
    let done: Value = res.json().await.unwrap();
    assert_eq!(done["session"]["ip"], "203.0.113.9");

    let s = TestServer::start().await;
    let res = s
        .client
        .post(s.url("/api/v1/authenticate"))
        .header("x-forwarded-for", "203.0.113.9")
        .json(&body)
        .send()
        .await
        .unwrap();
    let done: Value = res.json().await.unwrap();
    assert_eq!(done["session"]["ip"], "127.0.0.1", "an untrusted peer's header is ignored");
}
