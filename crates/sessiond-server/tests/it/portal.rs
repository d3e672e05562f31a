//! The portal over real HTTP: sign-in form, flash messages, CSRF, the account page, signing out,
//! the administrators' page, and the security headers on all of them.

use crate::support::*;
use reqwest::header::{HeaderMap, SET_COOKIE};
use sessiond_core::timeout::Timeouts;
use sessiond_core::token::TokenHash;
use sessiond_store::{SessionFilter, Store};
use std::collections::BTreeMap;

const FIREFOX: &str = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0";
const FLASH: &str = "sd_test_flash";
/// The journey cookie of the `main` realm.
pub(crate) const AUTHN: &str = "sd_test_authn";

/// The cookies a browser would hold: what `Set-Cookie` gave it, minus what it deleted.
#[derive(Default, Clone)]
pub(crate) struct Jar(BTreeMap<String, String>);

impl Jar {
    fn with(name: &str, value: &str) -> Self {
        let mut jar = Self::default();
        jar.0.insert(name.to_owned(), value.to_owned());
        jar
    }

    pub(crate) fn absorb(&mut self, headers: &HeaderMap) {
        for value in headers.get_all(SET_COOKIE) {
            let text = value.to_str().unwrap();
            let (pair, _) = text.split_once(';').unwrap_or((text, ""));
            let (name, value) = pair.split_once('=').unwrap();
            if attr(text, "Max-Age") == Some("0") {
                self.0.remove(name);
            } else {
                self.0.insert(name.to_owned(), value.to_owned());
            }
        }
    }

    pub(crate) fn header(&self) -> String {
        self.0.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("; ")
    }

    pub(crate) fn get(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(String::as_str)
    }
}

/// The `Set-Cookie` value for cookie `name`, if the answer has one.
fn set_cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(SET_COOKIE)
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .find(|c| c.starts_with(&format!("{name}=")))
}

pub(crate) fn location(res: &reqwest::Response) -> &str {
    res.headers()["location"].to_str().unwrap()
}

/// The value of the first hidden input named `name`.
fn hidden(html: &str, name: &str) -> Option<String> {
    let marker = format!("name=\"{name}\" value=\"");
    let start = html.find(&marker)? + marker.len();
    let end = html[start..].find('"')?;
    Some(html[start..start + end].to_owned())
}

pub(crate) fn csrf_of(html: &str) -> String {
    hidden(html, "csrf").expect("page has a csrf field")
}

fn encode(value: &str) -> String {
    url::form_urlencoded::byte_serialize(value.as_bytes()).collect()
}

pub(crate) async fn get(s: &TestServer, jar: &mut Jar, path: &str) -> reqwest::Response {
    let mut req = s.client.get(s.url(path));
    if !jar.0.is_empty() {
        req = req.header("cookie", jar.header());
    }
    let res = req.send().await.unwrap();
    jar.absorb(res.headers());
    res
}

pub(crate) async fn get_page(s: &TestServer, jar: &mut Jar, path: &str) -> String {
    let res = get(s, jar, path).await;
    assert_eq!(res.status(), 200, "GET {path}");
    res.text().await.unwrap()
}

async fn post_form_with(
    s: &TestServer,
    jar: &mut Jar,
    path: &str,
    fields: &[(&str, &str)],
    extra: &[(&str, &str)],
) -> reqwest::Response {
    let body = url::form_urlencoded::Serializer::new(String::new()).extend_pairs(fields).finish();
    let mut req = s
        .client
        .post(s.url(path))
        .header("content-type", "application/x-www-form-urlencoded")
        .header("user-agent", FIREFOX)
        .body(body);
    if !jar.0.is_empty() {
        req = req.header("cookie", jar.header());
    }
    for (k, v) in extra {
        req = req.header(*k, *v);
    }
    let res = req.send().await.unwrap();
    jar.absorb(res.headers());
    res
}

pub(crate) async fn post_form(s: &TestServer, jar: &mut Jar, path: &str, fields: &[(&str, &str)]) -> reqwest::Response {
    post_form_with(s, jar, path, fields, &[]).await
}

/// Opens the sign-in form and posts it; answers the `POST /login` response.
pub(crate) async fn portal_login(
    s: &TestServer,
    jar: &mut Jar,
    user: &str,
    password: &str,
    rd: Option<&str>,
) -> reqwest::Response {
    let query = rd.map(|rd| format!("?rd={}", encode(rd))).unwrap_or_default();
    let html = get_page(s, jar, &format!("/login{query}")).await;
    let csrf = csrf_of(&html);
    let mut fields = vec![("username", user), ("password", password), ("csrf", csrf.as_str())];
    if let Some(rd) = rd {
        fields.push(("rd", rd));
    }
    post_form(s, jar, "/login", &fields).await
}

/// A browser signed in through the portal as `user`.
pub(crate) async fn signed_in(s: &TestServer, user: &str, password: &str) -> Jar {
    let mut jar = Jar::default();
    let res = portal_login(s, &mut jar, user, password, None).await;
    assert_eq!(res.status(), 303);
    assert_eq!(location(&res), "/");
    assert!(jar.get(COOKIE).is_some(), "signed in");
    jar
}

/// Another session of `user`, signed in through the API from Firefox; returns its token.
async fn other_session(s: &TestServer, user: &str, password: &str) -> String {
    let res = s
        .client
        .post(s.url("/api/v1/authenticate"))
        .header("user-agent", FIREFOX)
        .json(&login_body(user, password, false))
        .send()
        .await
        .unwrap();
    let body: serde_json::Value = res.json().await.unwrap();
    body["session_token"].as_str().unwrap().to_owned()
}

async fn session_count(s: &TestServer) -> usize {
    s.store.list_sessions(&SessionFilter::default()).await.unwrap().len()
}

async fn alive(s: &TestServer, token: &str) -> bool {
    let hash = sessiond_core::token::SessionToken::parse(token).unwrap().hash();
    s.store.session_by_token(&hash).await.unwrap().is_some()
}

async fn session_id_of(s: &TestServer, token: &str) -> String {
    let hash: TokenHash = sessiond_core::token::SessionToken::parse(token).unwrap().hash();
    s.store.session_by_token(&hash).await.unwrap().unwrap().id.to_string()
}

pub(crate) fn audit_events(s: &TestServer) -> Vec<serde_json::Value> {
    std::fs::read_to_string(&s.audit_path)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

// ----- the sign-in form -----

#[tokio::test]
async fn login_page_is_a_labelled_form_with_a_csrf_token_bound_to_a_login_ticket() {
    let s = TestServer::start().await;
    let res = s.client.get(s.url("/login")).send().await.unwrap();
    assert_eq!(res.status(), 200);
    assert!(res.headers()["content-type"].to_str().unwrap().starts_with("text/html"));
    let ticket = set_cookie(res.headers(), AUTHN).expect("login ticket cookie");
    assert_eq!(attr(&ticket, "Max-Age"), Some("300"));
    assert!(attr(&ticket, "HttpOnly").is_some());
    assert_eq!(attr(&ticket, "SameSite"), Some("Lax"));
    let html = res.text().await.unwrap();
    assert!(html.contains("<label for=\"username\">Username</label>"));
    assert!(html.contains("id=\"username\" name=\"username\""));
    assert!(html.contains("<label for=\"password\">Password</label>"));
    assert!(html.contains("type=\"password\""));
    assert!(html.contains("<label for=\"remember_me\">Remember me</label>"));
    assert!(html.contains("30 days"), "says how long remember me lasts");
    assert!(html.contains("sessiond"));
    assert_eq!(csrf_of(&html).len(), 43);
    assert!(!html.contains("<script"), "no script at all");
    assert!(hidden(&html, "rd").is_none());
}

#[tokio::test]
async fn remember_me_is_not_offered_when_the_realm_turns_it_off() {
    let s = TestServer::with(Options {
        timeouts: Timeouts { remember_me: None, ..Timeouts::default() },
        ..Options::default()
    })
    .await;
    let html = get_page(&s, &mut Jar::default(), "/login").await;
    assert!(!html.contains("remember_me"));
    assert!(!html.to_lowercase().contains("remember me"));
}

#[tokio::test]
async fn a_second_visit_keeps_the_login_ticket_so_two_tabs_both_work() {
    let s = TestServer::start().await;
    let mut jar = Jar::default();
    let first = csrf_of(&get_page(&s, &mut jar, "/login").await);
    let res = get(&s, &mut jar, "/login").await;
    assert!(set_cookie(res.headers(), AUTHN).is_none(), "ticket kept");
    let second = csrf_of(&res.text().await.unwrap());
    assert_eq!(first, second);
    // Past half its life the ticket is replaced, so no form is handed out about to expire.
    s.advance(200);
    let res = get(&s, &mut jar, "/login").await;
    assert!(set_cookie(res.headers(), AUTHN).is_some());
    assert_ne!(csrf_of(&res.text().await.unwrap()), first);
}

#[tokio::test]
async fn a_valid_rd_is_carried_in_the_form_and_followed_after_login() {
    let s = TestServer::start().await;
    for rd in ["/after", "http://127.0.0.1:9999/app?x=1"] {
        let html = get_page(&s, &mut Jar::default(), &format!("/login?rd={}", encode(rd))).await;
        let carried = hidden(&html, "rd").unwrap_or_else(|| panic!("rd {rd} carried"));
        assert_eq!(carried.replace("&amp;", "&"), rd);
    }
    let mut jar = Jar::default();
    let res = portal_login(&s, &mut jar, "alice", "alice-pw", Some("http://127.0.0.1:9999/app?x=1")).await;
    assert_eq!(res.status(), 303);
    assert_eq!(location(&res), "http://127.0.0.1:9999/app?x=1");
}

const HOSTILE: [&str; 8] = [
    "//evil.test/x",
    "/\\evil.test",
    "/%09/evil.test",
    "https://example.test.evil/",
    "https://x@evil.test/",
    "javascript:alert(1)",
    "https://evil.test/",
    "http://127.0.0.1.evil.test/",
];

#[tokio::test]
async fn a_hostile_rd_is_dropped_and_never_echoed() {
    let s = TestServer::start().await;
    for rd in HOSTILE {
        let html = get_page(&s, &mut Jar::default(), &format!("/login?rd={}", encode(rd))).await;
        assert!(hidden(&html, "rd").is_none(), "{rd} dropped");
        assert!(!html.contains("evil") && !html.contains("javascript"), "{rd} never echoed");
    }
    for rd in HOSTILE {
        // Posted directly, a hostile rd is ignored on failure and on success alike.
        let mut jar = Jar::default();
        let res = portal_login(&s, &mut jar, "alice", "wrong", Some(rd)).await;
        assert_eq!(location(&res), "/login", "{rd}");
        let res = portal_login(&s, &mut jar, "alice", "alice-pw", Some(rd)).await;
        assert_eq!(location(&res), "/", "{rd}");
    }
}

#[tokio::test]
async fn a_duplicated_rd_is_ambiguous_and_dropped() {
    let s = TestServer::start().await;
    let html = get_page(&s, &mut Jar::default(), "/login?rd=%2Fa&rd=%2F%2Fevil.test").await;
    assert!(hidden(&html, "rd").is_none());
}

// ----- flash messages -----

#[tokio::test]
async fn wrong_password_redirects_with_a_flash_that_shows_once() {
    let s = TestServer::start().await;
    let mut jar = Jar::default();
    let res = portal_login(&s, &mut jar, "alice", "wrong", Some("/after")).await;
    assert_eq!(res.status(), 303);
    assert_eq!(location(&res), "/login?rd=%2Fafter");
    let flash = set_cookie(res.headers(), FLASH).unwrap();
    assert!(flash.starts_with("sd_test_flash=invalid_credentials;"));
    assert_eq!(attr(&flash, "Max-Age"), Some("10"));
    assert!(attr(&flash, "HttpOnly").is_some());
    assert_eq!(attr(&flash, "SameSite"), Some("Lax"));
    assert!(session_cookies(res.headers()).is_empty());
    assert_eq!(session_count(&s).await, 0);

    let res = get(&s, &mut jar, "/login?rd=%2Fafter").await;
    let deleted = set_cookie(res.headers(), FLASH).expect("flash deleted");
    assert_eq!(attr(&deleted, "Max-Age"), Some("0"));
    let html = res.text().await.unwrap();
    assert!(html.contains("Incorrect username or password."));
    assert!(html.contains("role=\"alert\""));
    assert_eq!(hidden(&html, "rd").as_deref(), Some("/after"));

    let html = get_page(&s, &mut jar, "/login").await;
    assert!(!html.contains("Incorrect username or password."), "shown once");
}

#[tokio::test]
async fn a_flash_with_an_unknown_code_or_markup_shows_nothing_and_is_deleted() {
    let s = TestServer::start().await;
    for value in ["bogus", "<b>owned</b>", "Incorrect", "invalid_credentials<script>"] {
        let mut jar = Jar::with(FLASH, value);
        let res = get(&s, &mut jar, "/login").await;
        assert_eq!(attr(&set_cookie(res.headers(), FLASH).unwrap(), "Max-Age"), Some("0"), "{value}");
        let html = res.text().await.unwrap();
        assert!(!html.contains("class=\"banner"), "{value}");
        assert!(!html.contains("owned") && !html.contains("<script"), "{value}");
    }
}

// ----- CSRF and origin -----

#[tokio::test]
async fn login_without_the_ticket_or_with_a_wrong_token_is_refused() {
    let s = TestServer::start().await;
    let mut jar = Jar::default();
    let html = get_page(&s, &mut jar, "/login").await;
    let good = csrf_of(&html);
    let ticket = jar.get(AUTHN).unwrap().to_owned();
    let mut other = Jar::default();
    let foreign = csrf_of(&get_page(&s, &mut other, "/login").await);

    let cases: [(&str, Jar, &str); 5] = [
        ("no ticket", Jar::default(), good.as_str()),
        ("no token", Jar::with(AUTHN, &ticket), ""),
        ("wrong token", Jar::with(AUTHN, &ticket), "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"),
        ("token of another ticket", Jar::with(AUTHN, &ticket), foreign.as_str()),
        ("forged ticket", Jar::with(AUTHN, "Zm9yZ2Vk"), good.as_str()),
    ];
    for (case, mut jar, csrf) in cases {
        let res =
            post_form(&s, &mut jar, "/login", &[("username", "alice"), ("password", "alice-pw"), ("csrf", csrf)]).await;
        assert_eq!(res.status(), 303, "{case}");
        assert_eq!(location(&res), "/login", "{case}");
        assert!(set_cookie(res.headers(), FLASH).unwrap().starts_with("sd_test_flash=csrf;"), "{case}");
        assert!(session_cookies(res.headers()).is_empty(), "{case}");
    }
    assert_eq!(session_count(&s).await, 0);
}

#[tokio::test]
async fn login_with_an_expired_ticket_is_refused_with_its_own_message() {
    let s = TestServer::start().await;
    let mut jar = Jar::default();
    let csrf = csrf_of(&get_page(&s, &mut jar, "/login").await);
    s.advance(301);
    let res =
        post_form(&s, &mut jar, "/login", &[("username", "alice"), ("password", "alice-pw"), ("csrf", &csrf)]).await;
    assert_eq!(res.status(), 303);
    assert!(set_cookie(res.headers(), FLASH).unwrap().starts_with("sd_test_flash=journey_expired;"));
    assert_eq!(session_count(&s).await, 0);
    let html = get_page(&s, &mut jar, "/login").await;
    assert!(html.contains("The sign-in form was open too long."));
}

#[tokio::test]
async fn a_login_posted_from_another_site_is_refused() {
    let s = TestServer::start().await;
    let refused: [(&str, &str); 4] = [
        ("origin", "https://evil.test"),
        ("origin", "null"),
        ("origin", "http://127.0.0.1.evil.test"),
        ("sec-fetch-site", "cross-site"),
    ];
    for header in refused {
        let mut jar = Jar::default();
        let csrf = csrf_of(&get_page(&s, &mut jar, "/login").await);
        let fields = [("username", "alice"), ("password", "alice-pw"), ("csrf", csrf.as_str())];
        let res = post_form_with(&s, &mut jar, "/login", &fields, &[header]).await;
        assert_eq!(res.status(), 403, "{header:?}");
        assert!(session_cookies(res.headers()).is_empty());
        assert!(res.text().await.unwrap().contains("another site"));
    }
    assert_eq!(session_count(&s).await, 0);

    // The portal's origin, the server's own origin and same-origin fetch metadata pass.
    let own = s.base.clone();
    for header in [("origin", "http://127.0.0.1"), ("origin", own.as_str()), ("sec-fetch-site", "same-origin")] {
        let mut jar = Jar::default();
        let csrf = csrf_of(&get_page(&s, &mut jar, "/login").await);
        let fields = [("username", "alice"), ("password", "alice-pw"), ("csrf", csrf.as_str())];
        let res = post_form_with(&s, &mut jar, "/login", &fields, &[header]).await;
        assert_eq!(res.status(), 303, "{header:?}");
        assert_eq!(location(&res), "/", "{header:?}");
    }
}

#[tokio::test]
async fn a_login_body_that_is_not_a_form_is_a_bad_request_page() {
    let s = TestServer::start().await;
    let res = s.client.post(s.url("/login")).json(&serde_json::json!({"username": "alice"})).send().await.unwrap();
    assert_eq!(res.status(), 400);
    assert!(res.headers()["content-type"].to_str().unwrap().starts_with("text/html"));
}

// ----- signing in -----

#[tokio::test]
async fn login_redirects_to_rd_with_a_fresh_token_and_ends_the_planted_one() {
    let s = TestServer::start().await;
    let planted = s.login("alice", "alice-pw", false).await;
    let mut jar = Jar::with(COOKIE, &planted);
    // A visitor with a live session skips the form, so the planted cookie is presented at POST.
    let csrf = {
        let mut fresh = Jar::default();
        let html = get_page(&s, &mut fresh, "/login").await;
        jar.0.insert(AUTHN.into(), fresh.get(AUTHN).unwrap().to_owned());
        csrf_of(&html)
    };
    let res = post_form(
        &s,
        &mut jar,
        "/login",
        &[("username", "alice"), ("password", "alice-pw"), ("csrf", &csrf), ("rd", "/after")],
    )
    .await;
    assert_eq!(res.status(), 303);
    assert_eq!(location(&res), "http://127.0.0.1/after");
    let cookie = &session_cookies(res.headers())[0];
    assert!(!cookie.contains(&planted), "a fresh token");
    assert_eq!(attr(&set_cookie(res.headers(), AUTHN).unwrap(), "Max-Age"), Some("0"), "ticket spent");
    assert!(!alive(&s, &planted).await, "the planted session ended");
    assert!(alive(&s, jar.get(COOKIE).unwrap()).await);
    assert_eq!(session_count(&s).await, 1);
}

#[tokio::test]
async fn remember_me_makes_a_remembered_session() {
    let s = TestServer::start().await;
    let mut jar = Jar::default();
    let csrf = csrf_of(&get_page(&s, &mut jar, "/login").await);
    let fields = [("username", "alice"), ("password", "alice-pw"), ("remember_me", "on"), ("csrf", csrf.as_str())];
    let res = post_form(&s, &mut jar, "/login", &fields).await;
    assert_eq!(attr(&session_cookies(res.headers())[0], "Max-Age"), Some("2592000"));
    let all = s.store.list_sessions(&SessionFilter::default()).await.unwrap();
    assert!(all[0].remember_me);
}

#[tokio::test]
async fn a_signed_in_visitor_skips_the_form() {
    let s = TestServer::start().await;
    let mut jar = signed_in(&s, "alice", "alice-pw").await;
    let res = get(&s, &mut jar, "/login?rd=%2Fafter").await;
    assert_eq!(res.status(), 303);
    assert_eq!(location(&res), "http://127.0.0.1/after");
    let res = get(&s, &mut jar, "/login?rd=%2F%2Fevil.test").await;
    assert_eq!(location(&res), "/");
}

#[tokio::test]
async fn the_ban_after_repeated_failures_shows_too_many_attempts() {
    let s = TestServer::start().await;
    let mut jar = Jar::default();
    for _ in 0..3 {
        let res = portal_login(&s, &mut jar, "alice", "wrong", None).await;
        assert!(set_cookie(res.headers(), FLASH).unwrap().starts_with("sd_test_flash=invalid_credentials;"));
    }
    let res = portal_login(&s, &mut jar, "alice", "alice-pw", None).await;
    assert_eq!(location(&res), "/login");
    assert!(set_cookie(res.headers(), FLASH).unwrap().starts_with("sd_test_flash=too_many_attempts;"));
    assert!(session_cookies(res.headers()).is_empty());
    let html = get_page(&s, &mut jar, "/login").await;
    assert!(html.contains("Too many failed attempts."));
}

// ----- the account page -----

#[tokio::test]
async fn the_account_page_shows_who_i_am_and_where_i_am_signed_in() {
    let s = TestServer::start().await;
    let _elsewhere = other_session(&s, "alice", "alice-pw").await;
    let _bob = other_session(&s, "bob", "bob-pw").await;
    s.advance(120);
    let mut jar = signed_in(&s, "alice", "alice-pw").await;
    let html = get_page(&s, &mut jar, "/").await;
    for expected in [
        "Test User",
        "<code>alice</code>",
        "user@example.test",
        "<li class=\"chip\">dev</li>",
        "Firefox 128",
        "on Linux",
        "127.0.0.1",
    ] {
        assert!(html.contains(expected), "{expected}");
    }
    assert_eq!(html.matches("This device").count(), 1);
    assert_eq!(html.matches("<tr").count(), 3, "header row and alice's two sessions, not bob's");
    assert!(html.contains("21 Sep 2026, 14:13 UTC"), "signed in, in UTC");
    assert!(html.contains("2 minutes ago"));
    assert!(html.contains("Sign out everywhere else"));
    assert!(!html.contains("href=\"/admin\""), "no admin link for non-admins");
    assert!(!html.contains("<script"));
}

#[tokio::test]
async fn the_account_page_sends_strangers_to_login() {
    let s = TestServer::start().await;
    let res = get(&s, &mut Jar::default(), "/").await;
    assert_eq!(res.status(), 303);
    assert_eq!(location(&res), "/login");
    assert!(set_cookie(res.headers(), FLASH).is_none(), "nothing expired for a stranger");
}

#[tokio::test]
async fn an_ended_session_cookie_is_deleted_and_the_login_page_says_why() {
    let s = TestServer::start().await;
    let mut jar = signed_in(&s, "alice", "alice-pw").await;
    s.advance(301); // idle past the 5m inactivity limit
    let res = get(&s, &mut jar, "/").await;
    assert_eq!(res.status(), 303);
    assert_eq!(location(&res), "/login");
    assert_eq!(attr(&session_cookies(res.headers())[0], "Max-Age"), Some("0"));
    assert!(set_cookie(res.headers(), FLASH).unwrap().starts_with("sd_test_flash=session_expired;"));
    let html = get_page(&s, &mut jar, "/login").await;
    assert!(html.contains("Your session has ended."));
}

#[tokio::test]
async fn signing_out_one_session_needs_the_csrf_token_and_only_touches_ones_own() {
    let s = TestServer::start().await;
    let elsewhere = other_session(&s, "alice", "alice-pw").await;
    let bobs = other_session(&s, "bob", "bob-pw").await;
    let mut jar = signed_in(&s, "alice", "alice-pw").await;
    let csrf = csrf_of(&get_page(&s, &mut jar, "/").await);
    let path = format!("/sessions/{}/revoke", session_id_of(&s, &elsewhere).await);

    for bad in ["", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"] {
        let res = post_form(&s, &mut jar, &path, &[("csrf", bad)]).await;
        assert_eq!(res.status(), 403);
        assert!(alive(&s, &elsewhere).await);
    }
    // Another visitor's token does not work either: tokens are bound to the session.
    let mut bob_jar = signed_in(&s, "bob", "bob-pw").await;
    let bob_csrf = csrf_of(&get_page(&s, &mut bob_jar, "/").await);
    assert_eq!(post_form(&s, &mut jar, &path, &[("csrf", &bob_csrf)]).await.status(), 403);
    assert!(alive(&s, &elsewhere).await);

    let bob_path = format!("/sessions/{}/revoke", session_id_of(&s, &bobs).await);
    assert_eq!(post_form(&s, &mut jar, &bob_path, &[("csrf", &csrf)]).await.status(), 404);
    assert!(alive(&s, &bobs).await, "another user's session is not mine to end");

    let res = post_form(&s, &mut jar, &path, &[("csrf", &csrf)]).await;
    assert_eq!(res.status(), 303);
    assert_eq!(location(&res), "/");
    assert!(!alive(&s, &elsewhere).await);
    assert!(alive(&s, jar.get(COOKIE).unwrap()).await, "this device stays signed in");
    let html = get_page(&s, &mut jar, "/").await;
    assert!(html.contains("The session was signed out."));
    let revoked = audit_events(&s).into_iter().filter(|e| e["event"] == "revoked").count();
    assert_eq!(revoked, 1);
}

#[tokio::test]
async fn sign_out_everywhere_else_keeps_only_this_device() {
    let s = TestServer::start().await;
    let one = other_session(&s, "alice", "alice-pw").await;
    let two = other_session(&s, "alice", "alice-pw").await;
    let bobs = other_session(&s, "bob", "bob-pw").await;
    let mut jar = signed_in(&s, "alice", "alice-pw").await;
    let csrf = csrf_of(&get_page(&s, &mut jar, "/").await);

    let res = post_form(&s, &mut jar, "/sessions/revoke-others", &[("csrf", "nope")]).await;
    assert_eq!(res.status(), 403);
    assert!(alive(&s, &one).await && alive(&s, &two).await);

    let res = post_form(&s, &mut jar, "/sessions/revoke-others", &[("csrf", &csrf)]).await;
    assert_eq!(res.status(), 303);
    assert!(!alive(&s, &one).await && !alive(&s, &two).await);
    assert!(alive(&s, jar.get(COOKIE).unwrap()).await);
    assert!(alive(&s, &bobs).await);
    let html = get_page(&s, &mut jar, "/").await;
    assert!(html.contains("Your other sessions were signed out."));
    assert!(!html.contains("Sign out everywhere else"), "nothing else left");
}

// ----- signing out -----

#[tokio::test]
async fn get_logout_only_asks() {
    let s = TestServer::start().await;
    let mut jar = signed_in(&s, "alice", "alice-pw").await;
    let token = jar.get(COOKIE).unwrap().to_owned();
    let res = get(&s, &mut jar, "/logout").await;
    assert_eq!(res.status(), 200);
    assert!(session_cookies(res.headers()).iter().all(|c| attr(c, "Max-Age") != Some("0")));
    let html = res.text().await.unwrap();
    assert!(html.contains("action=\"/logout\"") && html.contains("method=\"post\""));
    assert!(alive(&s, &token).await, "a GET never signs out");
    // Not signed in: nothing to ask.
    let res = get(&s, &mut Jar::default(), "/logout").await;
    assert_eq!(location(&res), "/login");
}

#[tokio::test]
async fn post_logout_ends_the_session_and_deletes_its_cookies() {
    let s = TestServer::start().await;
    let mut jar = signed_in(&s, "alice", "alice-pw").await;
    let token = jar.get(COOKIE).unwrap().to_owned();
    let csrf = csrf_of(&get_page(&s, &mut jar, "/logout").await);

    assert_eq!(post_form(&s, &mut jar, "/logout", &[]).await.status(), 403);
    let res = post_form_with(&s, &mut jar, "/logout", &[("csrf", &csrf)], &[("origin", "https://evil.test")]).await;
    assert_eq!(res.status(), 403);
    assert!(alive(&s, &token).await);

    let res = post_form(&s, &mut jar, "/logout", &[("csrf", &csrf)]).await;
    assert_eq!(res.status(), 303);
    assert_eq!(location(&res), "/login");
    for name in [COOKIE, "sd_test_jwt", AUTHN] {
        let deleted = set_cookie(res.headers(), name).unwrap_or_else(|| panic!("{name} deleted"));
        assert_eq!(attr(&deleted, "Max-Age"), Some("0"), "{name}");
        assert_eq!(attr(&deleted, "Path"), Some("/"), "{name}");
    }
    assert!(!alive(&s, &token).await);
    let html = get_page(&s, &mut jar, "/login").await;
    assert!(html.contains("You have signed out."));
    assert!(audit_events(&s).iter().any(|e| e["event"] == "logout" && e["user"] == "alice"));
}

#[tokio::test]
async fn post_logout_goes_on_to_a_valid_rd_only() {
    let s = TestServer::start().await;
    for (rd, expected) in [("http://127.0.0.1:9999/bye", "http://127.0.0.1:9999/bye"), ("https://evil.test/", "/login")]
    {
        let mut jar = signed_in(&s, "alice", "alice-pw").await;
        let html = get_page(&s, &mut jar, &format!("/logout?rd={}", encode(rd))).await;
        assert_eq!(hidden(&html, "rd").is_some(), expected != "/login", "{rd}");
        let res = post_form(&s, &mut jar, "/logout", &[("csrf", &csrf_of(&html)), ("rd", rd)]).await;
        assert_eq!(location(&res), expected);
    }
}

// ----- administration -----

#[tokio::test]
async fn the_admin_page_is_for_admins_only() {
    let s = TestServer::start().await;
    let alices = other_session(&s, "alice", "alice-pw").await;
    let mut alice = signed_in(&s, "alice", "alice-pw").await;
    let res = get(&s, &mut alice, "/admin?user=bob").await;
    assert_eq!(res.status(), 403);
    let html = res.text().await.unwrap();
    assert!(html.contains("Administrators only"));
    assert!(!html.contains("bob"));
    let csrf = csrf_of(&get_page(&s, &mut alice, "/").await);
    let mut root = signed_in(&s, "root", "root-pw").await;
    let rid = session_id_of(&s, root.get(COOKIE).unwrap()).await;
    let res = post_form(&s, &mut alice, &format!("/admin/sessions/{rid}/revoke"), &[("csrf", &csrf)]).await;
    assert_eq!(res.status(), 403);
    let res = post_form(&s, &mut alice, "/admin/revoke-all", &[("csrf", &csrf), ("user", "root")]).await;
    assert_eq!(res.status(), 403);
    assert!(alive(&s, root.get(COOKIE).unwrap()).await);

    // An admin sees the link, looks alice up, and ends one, then all, of her sessions.
    let home = get_page(&s, &mut root, "/").await;
    assert!(home.contains("href=\"/admin\""));
    let html = get_page(&s, &mut root, "/admin?user=alice").await;
    assert!(html.contains("Live sessions"));
    assert_eq!(html.matches("/admin/sessions/").count(), 2);
    let csrf = csrf_of(&html);
    let id = session_id_of(&s, &alices).await;
    let res = post_form(&s, &mut root, &format!("/admin/sessions/{id}/revoke"), &[("csrf", &csrf)]).await;
    assert_eq!(res.status(), 303);
    assert_eq!(location(&res), "/admin?user=alice");
    assert!(!alive(&s, &alices).await);
    assert!(alive(&s, alice.get(COOKIE).unwrap()).await);

    assert_eq!(
        post_form(&s, &mut root, "/admin/revoke-all", &[("csrf", "bad"), ("user", "alice")]).await.status(),
        403
    );
    let res = post_form(&s, &mut root, "/admin/revoke-all", &[("csrf", &csrf), ("user", "alice")]).await;
    assert_eq!(res.status(), 303);
    assert!(!alive(&s, alice.get(COOKIE).unwrap()).await);
    assert!(alive(&s, root.get(COOKIE).unwrap()).await);
    let html = get_page(&s, &mut root, "/admin?user=alice").await;
    assert!(html.contains("All sessions of the user were signed out."));
    assert!(html.contains("No live sessions."));
    let by_root = audit_events(&s).into_iter().filter(|e| e["event"] == "revoked" && e["actor"] == "root").count();
    assert_eq!(by_root, 2);
}

#[tokio::test]
async fn the_admin_page_escapes_what_it_is_asked_for() {
    let s = TestServer::start().await;
    let mut root = signed_in(&s, "root", "root-pw").await;
    let html = get_page(&s, &mut root, &format!("/admin?user={}", encode("<img src=x onerror=alert(1)>"))).await;
    assert!(!html.contains("<img src=x"));
    assert!(html.contains("&#60;img src=x") || html.contains("&lt;img src=x"));
}

// ----- headers -----

fn assert_security_headers(headers: &HeaderMap, what: &str) {
    let csp = headers.get("content-security-policy").unwrap_or_else(|| panic!("{what}: CSP")).to_str().unwrap();
    for directive in [
        "default-src 'none'",
        "style-src 'self'",
        "img-src 'self' data:",
        "form-action 'self'",
        "frame-ancestors 'none'",
        "base-uri 'none'",
    ] {
        assert!(csp.contains(directive), "{what}: {directive} in {csp}");
    }
    assert!(!csp.contains("script-src"), "{what}");
    assert_eq!(headers["x-frame-options"], "DENY", "{what}");
    assert_eq!(headers["referrer-policy"], "same-origin", "{what}");
    assert_eq!(headers["cache-control"], "no-store", "{what}");
    assert_eq!(headers["x-content-type-options"], "nosniff", "{what}");
}

#[tokio::test]
async fn every_portal_answer_carries_the_security_headers() {
    let s = TestServer::start().await;
    let mut alice = signed_in(&s, "alice", "alice-pw").await;
    for path in ["/", "/logout", "/admin", "/login", "/static/style.css", "/static/logo.svg"] {
        let res = get(&s, &mut alice, path).await;
        assert_security_headers(res.headers(), path);
    }
    let mut stranger = Jar::default();
    for path in ["/login", "/", "/logout"] {
        let res = get(&s, &mut stranger, path).await;
        assert_security_headers(res.headers(), path);
    }
    let res = post_form(&s, &mut stranger, "/login", &[]).await;
    assert_security_headers(res.headers(), "POST /login");

    // The sign-in page lets its form's redirect reach the realm's hosts.
    let res = get(&s, &mut Jar::default(), "/login").await;
    let csp = res.headers()["content-security-policy"].to_str().unwrap();
    assert!(csp.contains("form-action 'self' http://127.0.0.1 https://127.0.0.1:* http://127.0.0.1:*;"), "{csp}");
}

#[tokio::test]
async fn the_stylesheet_is_served_as_css() {
    let s = TestServer::start().await;
    let res = s.client.get(s.url("/static/style.css")).send().await.unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["content-type"], "text/css; charset=utf-8");
    let css = res.text().await.unwrap();
    assert!(css.contains("prefers-color-scheme: dark"));
    assert!(css.contains(":focus-visible"));
}

/// The session JSON of `jar`'s session cookie (`GET /api/v1/sessions/current`).
pub(crate) async fn current_session(s: &TestServer, jar: &Jar) -> serde_json::Value {
    let token = jar.get(COOKIE).expect("a session cookie");
    let res = s.get_with_cookie("/api/v1/sessions/current", token).await;
    assert_eq!(res.status(), 200);
    res.json().await.unwrap()
}

/// The `reason` of every `login_failed` audit event, in order.
pub(crate) fn login_refusals(s: &TestServer) -> Vec<String> {
    audit_events(s)
        .into_iter()
        .filter(|e| e["event"] == "login_failed")
        .filter_map(|e| e["reason"].as_str().map(str::to_owned))
        .collect()
}

/// Asserts that an identity provider's answer was refused: back to `/login`, no session, the
/// journey cookie gone.
pub(crate) fn assert_sign_in_refused(res: &reqwest::Response, jar: &Jar) {
    assert_eq!(res.status(), 303);
    assert_eq!(location(res), "/login");
    assert_eq!(jar.get(COOKIE), None, "no session");
    assert_eq!(jar.get(AUTHN), None, "the journey cookie is gone");
}
