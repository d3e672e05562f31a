//! OpenID Connect sign-in against a real, certified OpenID provider: node `oidc-provider`,
//! started per test by `tests/oidc-provider/provider.mjs` on a free loopback port (PKCE
//! required, userinfo, RP-initiated logout). The browser is played by the test: it follows
//! sessiond's redirect to the provider, signs in there, and brings the code back with the
//! journey cookie, as a browser would. Without Node.js or the installed package the tests skip
//! loudly, and fail under `CI=true` (.ci/run installs both).

use crate::metrics::scrape;
use crate::portal::{
    AUTHN, Jar, assert_sign_in_refused, audit_events, csrf_of, current_session, get, get_page, location,
    login_refusals, post_form,
};
use crate::support::*;
use serde_json::{Value, json};
use sessiond_core::provider::{OidcProvider, Provider};
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;
use url::Url;

const CLIENT_ID: &str = "sessiond";
const CLIENT_SECRET: &str = "sessiond-test-secret";
/// The callback of provider `corp` under the test server's portal URL (`http://127.0.0.1/`).
const REDIRECT_URI: &str = "http://127.0.0.1/login/corp/callback";
const POST_LOGOUT_URI: &str = "http://127.0.0.1/login";

/// A running OpenID provider; stopped when dropped.
struct Op {
    _program: ReadyProgram,
    issuer: String,
}

impl Op {
    async fn start() -> Option<Self> {
        let node = require("Node.js", "/usr/bin/node")?;
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/oidc-provider");
        if !dir.join("node_modules/oidc-provider").exists() {
            let message = format!("oidc-provider not installed: run `npm ci --prefix {}`", dir.display());
            assert!(std::env::var("CI").as_deref() != Ok("true"), "CI=true and {message}; .ci/run does it");
            eprintln!("SKIPPED: {message}");
            return None;
        }
        let mut cmd = Command::new(node);
        cmd.arg(dir.join("provider.mjs"))
            .env("OIDC_CLIENT_ID", CLIENT_ID)
            .env("OIDC_CLIENT_SECRET", CLIENT_SECRET)
            .env("OIDC_REDIRECT_URIS", REDIRECT_URI)
            .env("OIDC_POST_LOGOUT_REDIRECT_URIS", POST_LOGOUT_URI);
        let program = ReadyProgram::start(cmd, "the OpenID provider", Duration::from_secs(30)).await;
        Some(Self { issuer: format!("http://127.0.0.1:{}", program.port), _program: program })
    }

    fn provider(&self) -> OidcProvider {
        let mut p = OidcProvider::new("corp", self.issuer.clone(), CLIENT_ID, CLIENT_SECRET);
        p.label = "Corp SSO".into();
        p.scopes = vec!["openid".into(), "profile".into(), "email".into(), "groups".into()];
        p
    }
}

async fn server_for(provider: OidcProvider) -> TestServer {
    TestServer::with(Options { providers: vec![Provider::Oidc(provider)], ..Options::default() }).await
}

/// The provider's side of the browser: its own cookies, no automatic redirects.
#[derive(Default)]
struct AtProvider {
    jar: Jar,
    client: reqwest::Client,
}

impl AtProvider {
    fn new() -> Self {
        let client = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
        Self { jar: Jar::default(), client }
    }

    async fn get(&mut self, url: &Url) -> reqwest::Response {
        let res = self.client.get(url.clone()).header("cookie", self.jar.header()).send().await.unwrap();
        self.jar.absorb(res.headers());
        res
    }

    /// Follows the provider's redirects from the authorization URL, signing `user` in at its
    /// login page; answers where it finally sends the browser (sessiond's callback).
    async fn sign_in(&mut self, authorize: &Url, user: &str) -> Url {
        let mut at = authorize.clone();
        for _ in 0..6 {
            let res = self.get(&at).await;
            assert!(res.status().is_redirection(), "GET {at}: {} {}", res.status(), res.text().await.unwrap());
            let next = at.join(location(&res)).unwrap();
            if next.as_str().starts_with(REDIRECT_URI) {
                return next;
            }
            at = next;
            if at.path().starts_with("/interaction/") {
                at.query_pairs_mut().append_pair("user", user);
            }
        }
        panic!("the provider never sent the browser back");
    }
}

/// A sign-in started at sessiond: the browser's cookies there and the authorization URL.
struct Started {
    jar: Jar,
    authorize: Url,
}

async fn start(s: &TestServer, path: &str) -> Started {
    let mut jar = Jar::default();
    let res = get(s, &mut jar, path).await;
    assert_eq!(res.status(), 303, "GET {path}");
    let authorize = Url::parse(location(&res)).unwrap();
    assert!(jar.get(AUTHN).is_some(), "the journey cookie is set");
    Started { jar, authorize }
}

/// Brings the provider's answer back to sessiond, with the browser's cookies.
async fn come_back(s: &TestServer, jar: &mut Jar, callback: &Url) -> reqwest::Response {
    let path = format!("{}?{}", callback.path(), callback.query().unwrap_or(""));
    get(s, jar, &path).await
}

fn param(url: &Url, name: &str) -> String {
    url.query_pairs().find(|(k, _)| k == name).map(|(_, v)| v.into_owned()).unwrap_or_default()
}

fn with_param(url: &Url, name: &str, value: &str) -> Url {
    let mut changed = url.clone();
    let pairs: Vec<(String, String)> = url
        .query_pairs()
        .map(|(k, v)| {
            let v = if k == name { value.to_owned() } else { v.into_owned() };
            (k.into_owned(), v)
        })
        .collect();
    changed.query_pairs_mut().clear().extend_pairs(pairs);
    changed
}

#[tokio::test]
async fn a_provider_user_signs_in_with_the_claims_of_the_id_token_and_userinfo() {
    let Some(op) = Op::start().await else { return };
    let s = server_for(op.provider()).await;
    let html = get_page(&s, &mut Jar::default(), "/login").await;
    assert!(html.contains("href=\"/login/corp\"") && html.contains("Corp SSO"), "the portal offers the provider");

    let mut started = start(&s, "/login/corp?rd=http%3A%2F%2F127.0.0.1%2Fafter").await;
    let authorize = &started.authorize;
    assert!(authorize.as_str().starts_with(&format!("{}/auth?", op.issuer)), "{authorize}");
    assert_eq!(param(authorize, "response_type"), "code");
    assert_eq!(param(authorize, "client_id"), CLIENT_ID);
    assert_eq!(param(authorize, "redirect_uri"), REDIRECT_URI);
    assert_eq!(param(authorize, "code_challenge_method"), "S256");
    assert_eq!(param(authorize, "scope"), "openid profile email groups");
    for secret in ["state", "nonce", "code_challenge"] {
        assert_eq!(param(authorize, secret).len(), 43, "{secret} carries 256 bits");
    }
    assert!(!authorize.as_str().contains(started.jar.get(AUTHN).unwrap()), "the auth_id never leaves the browser");

    let callback = AtProvider::new().sign_in(authorize, "alice").await;
    let res = come_back(&s, &mut started.jar, &callback).await;
    assert_eq!(res.status(), 303);
    assert_eq!(location(&res), "http://127.0.0.1/after", "back to rd");
    assert_eq!(started.jar.get(AUTHN), None, "the journey ended");
    let body = current_session(&s, &started.jar).await;
    let session = &body["session"];
    assert_eq!(session["user"], "corp:alice", "named by sub, under the provider's id");
    assert_eq!(session["amr"], json!(["oidc"]));
    // oidc-provider puts only `sub` in an ID token of the code flow: the rest came from userinfo.
    assert_eq!(session["groups"], json!(["dev", "ops"]));
    assert_eq!(session["email"], "alice@example.com");
    assert_eq!(session["display_name"], "Alice Liddell");
    assert!(audit_events(&s).iter().any(|e| e["event"] == "login_succeeded" && e["user"] == "corp:alice"));
    let metrics = scrape(&s).await;
    let logins = |provider| metrics.value("sessiond_logins_total", &[("provider", provider), ("result", "success")]);
    assert_eq!((logins("oidc"), logins("password")), (1.0, 0.0), "counted once, under its provider");
}

/// Where the page's meta refresh goes.
fn reload_target(html: &str) -> Url {
    let at = html.find("url=").expect("a meta refresh") + "url=".len();
    let href = html[at..].split('"').next().unwrap().replace("&#38;", "&").replace("&amp;", "&");
    Url::parse("http://127.0.0.1").unwrap().join(&href).unwrap()
}

#[tokio::test]
async fn a_strict_realm_reloads_the_callback_from_its_own_site_to_get_the_journey_cookie() {
    let Some(op) = Op::start().await else { return };
    let options = Options {
        providers: vec![Provider::Oidc(op.provider())],
        same_site: sessiond_core::cookie::SameSite::Strict,
        ..Options::default()
    };
    let s = TestServer::with(options).await;
    let started = start(&s, "/login/corp").await;
    let callback = AtProvider::new().sign_in(&started.authorize, "alice").await;

    // The navigation from the provider's site comes without the SameSite=Strict cookie.
    let mut cross_site = Jar::default();
    let res = come_back(&s, &mut cross_site, &callback).await;
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["cache-control"], "no-store");
    let html = res.text().await.unwrap();
    let again = reload_target(&html);
    assert_eq!(again.path(), "/login/corp/callback");
    assert_eq!(param(&again, "code"), param(&callback, "code"));
    assert_eq!(param(&again, "state"), param(&callback, "state"));
    assert_eq!(param(&again, "same_site"), "1");
    assert!(html.contains("href=\"/login/corp/callback?"), "a link for browsers without meta refresh");
    assert!(login_refusals(&s).is_empty(), "nothing refused yet");

    // Asked again without the cookie, it is refused rather than reloaded forever.
    let res = come_back(&s, &mut Jar::default(), &again).await;
    assert_eq!((res.status().as_u16(), location(&res)), (303, "/login"));
    assert_eq!(login_refusals(&s), ["oidc_no_journey"]);

    // From the portal's own page the browser sends it, and the sign-in completes.
    let mut started = start(&s, "/login/corp").await;
    let callback = AtProvider::new().sign_in(&started.authorize, "alice").await;
    let res = come_back(&s, &mut Jar::default(), &callback).await;
    let again = reload_target(&res.text().await.unwrap());
    let res = come_back(&s, &mut started.jar, &again).await;
    assert_eq!((res.status().as_u16(), location(&res)), (303, "/"));
    assert_eq!(current_session(&s, &started.jar).await["session"]["user"], "corp:alice");
}

#[tokio::test]
async fn claims_are_mapped_as_configured_and_an_unverified_email_is_dropped() {
    let Some(op) = Op::start().await else { return };
    let mut provider = op.provider();
    provider.claims.username = "preferred_username".into();
    let s = server_for(provider).await;
    let mut started = start(&s, "/login/corp").await;
    let callback = AtProvider::new().sign_in(&started.authorize, "bob").await;
    let res = come_back(&s, &mut started.jar, &callback).await;
    assert_eq!(location(&res), "/");
    let session = current_session(&s, &started.jar).await["session"].clone();
    assert_eq!(session["user"], "corp:bob");
    assert_eq!(session["email"], Value::Null, "bob's email is not verified");
    assert_eq!(session["groups"], json!([]));

    // A provider user without the claim that names users signs nobody in.
    let mut provider = op.provider();
    provider.claims.username = "employee_number".into();
    let s = server_for(provider).await;
    let mut started = start(&s, "/login/corp").await;
    let callback = AtProvider::new().sign_in(&started.authorize, "alice").await;
    let res = come_back(&s, &mut started.jar, &callback).await;
    assert_sign_in_refused(&res, &started.jar);
    assert_eq!(login_refusals(&s), ["oidc_no_username"]);
}

#[tokio::test]
async fn a_tampered_state_is_refused_and_ends_the_sign_in() {
    let Some(op) = Op::start().await else { return };
    let s = server_for(op.provider()).await;
    let mut started = start(&s, "/login/corp").await;
    let callback = AtProvider::new().sign_in(&started.authorize, "alice").await;
    let state = param(&callback, "state");
    let mut tampered = state.clone().into_bytes();
    tampered[0] = if tampered[0] == b'A' { b'B' } else { b'A' };
    let tampered = with_param(&callback, "state", std::str::from_utf8(&tampered).unwrap());
    let mut jar = started.jar.clone();
    let res = come_back(&s, &mut jar, &tampered).await;
    assert_sign_in_refused(&res, &jar);
    assert_eq!(login_refusals(&s), ["oidc_state_mismatch"]);

    // The journey ended: the genuine answer, arriving after, signs nobody in either.
    let res = come_back(&s, &mut started.jar, &callback).await;
    assert_sign_in_refused(&res, &started.jar);
    for missing in [with_param(&callback, "state", ""), Url::parse(&format!("{REDIRECT_URI}?code=x")).unwrap()] {
        let mut started = start(&s, "/login/corp").await;
        let res = come_back(&s, &mut started.jar, &missing).await;
        assert_sign_in_refused(&res, &started.jar);
    }
    assert_eq!(login_refusals(&s).iter().filter(|r| *r == "oidc_state_mismatch").count(), 3);
}

#[tokio::test]
async fn a_replayed_code_signs_nobody_in() {
    let Some(op) = Op::start().await else { return };
    let s = server_for(op.provider()).await;
    let mut started = start(&s, "/login/corp").await;
    let callback = AtProvider::new().sign_in(&started.authorize, "alice").await;
    let mut first = started.jar.clone();
    assert_eq!(come_back(&s, &mut first, &callback).await.status(), 303);
    assert!(first.get(COOKIE).is_some(), "the first answer signs in");

    // The same answer again, with the same journey cookie: that journey has ended.
    let res = come_back(&s, &mut started.jar, &callback).await;
    assert_sign_in_refused(&res, &started.jar);

    // The code in a journey of its own (a code stolen from the redirect): its state is valid,
    // but the provider refuses a used code and this journey's PKCE verifier.
    let mut other = start(&s, "/login/corp").await;
    let replay = with_param(&callback, "state", &param(&other.authorize, "state"));
    let res = come_back(&s, &mut other.jar, &replay).await;
    assert_sign_in_refused(&res, &other.jar);
    assert_eq!(login_refusals(&s), ["oidc_no_journey", "oidc_code_refused"]);
    let ended = current_session(&s, &first).await;
    assert_eq!(ended["session"]["user"], "corp:alice", "the first sign-in's session is untouched");
}

#[tokio::test]
async fn an_id_token_for_another_nonce_is_refused() {
    let Some(op) = Op::start().await else { return };
    let s = server_for(op.provider()).await;
    let mut started = start(&s, "/login/corp").await;
    // The provider is asked for a nonce that is not this journey's (a token minted for another
    // sign-in); state and PKCE are this journey's, so only the nonce check stands in the way.
    let forged = with_param(&started.authorize, "nonce", "n-0S6_WzA2Mj-another-sign-in-nonce-value");
    let callback = AtProvider::new().sign_in(&forged, "alice").await;
    let res = come_back(&s, &mut started.jar, &callback).await;
    assert_sign_in_refused(&res, &started.jar);
    assert_eq!(login_refusals(&s), ["oidc_nonce_mismatch"]);
}

#[tokio::test]
async fn an_answer_planted_in_another_browser_signs_nobody_in() {
    let Some(op) = Op::start().await else { return };
    let s = server_for(op.provider()).await;
    // The attacker signs in as themselves and sends the answer to a victim.
    let attacker = start(&s, "/login/corp").await;
    let callback = AtProvider::new().sign_in(&attacker.authorize, "mallory").await;
    let mut victim = Jar::default();
    let res = come_back(&s, &mut victim, &callback).await;
    assert_sign_in_refused(&res, &victim);
    // A victim in the middle of a sign-in of their own.
    let mut victim = start(&s, "/login/corp").await;
    let res = come_back(&s, &mut victim.jar, &callback).await;
    assert_sign_in_refused(&res, &victim.jar);
    assert_eq!(login_refusals(&s), ["oidc_no_journey", "oidc_state_mismatch"]);
}

#[tokio::test]
async fn a_refusal_at_the_provider_ends_the_sign_in() {
    let Some(op) = Op::start().await else { return };
    let s = server_for(op.provider()).await;
    let mut started = start(&s, "/login/corp").await;
    let state = param(&started.authorize, "state");
    let denied = Url::parse(&format!("{REDIRECT_URI}?error=access_denied&state={state}")).unwrap();
    let res = come_back(&s, &mut started.jar, &denied).await;
    assert_sign_in_refused(&res, &started.jar);
    assert_eq!(login_refusals(&s), ["oidc_provider_error"]);
    // The page says so.
    let mut jar = started.jar.clone();
    let html = get_page(&s, &mut jar, "/login").await;
    assert!(html.contains("did not complete"), "{html}");
}

#[tokio::test]
async fn an_unreachable_provider_is_provider_unavailable() {
    let provider = OidcProvider::new("corp", format!("http://127.0.0.1:{}", free_port()), CLIENT_ID, CLIENT_SECRET);
    let s = server_for(provider).await;
    let res = get(&s, &mut Jar::default(), "/login/corp").await;
    assert_eq!(res.status(), 503);
    assert_eq!(res.headers().get("set-cookie"), None, "no journey cookie for a sign-in that cannot start");
    // The JSON API points to the browser.
    let res = s.post("/api/v1/authenticate?journey=corp", json!({})).await;
    assert_eq!(error_code(res).await, (400, "bad_request".into()));
}

#[tokio::test]
async fn signing_out_signs_out_at_the_provider_when_asked_to() {
    let Some(op) = Op::start().await else { return };
    for logout in [false, true] {
        let mut provider = op.provider();
        provider.logout = logout;
        let s = server_for(provider).await;
        let mut started = start(&s, "/login/corp").await;
        let callback = AtProvider::new().sign_in(&started.authorize, "alice").await;
        come_back(&s, &mut started.jar, &callback).await;
        let mut jar = started.jar;
        let csrf = csrf_of(&get_page(&s, &mut jar, "/logout").await);
        let res = post_form(&s, &mut jar, "/logout", &[("csrf", &csrf)]).await;
        assert_eq!(res.status(), 303);
        assert_eq!(jar.get(COOKIE), None, "signed out of sessiond");
        if !logout {
            assert_eq!(location(&res), "/login");
            continue;
        }
        let end = Url::parse(location(&res)).unwrap();
        assert!(end.as_str().starts_with(&format!("{}/session/end?", op.issuer)), "{end}");
        assert_eq!(param(&end, "client_id"), CLIENT_ID);
        assert_eq!(param(&end, "post_logout_redirect_uri"), POST_LOGOUT_URI);
        // The provider accepts the request: it asks the person to confirm signing out there.
        let page = AtProvider::new().get(&end).await;
        assert_eq!(page.status(), 200);
        assert!(page.text().await.unwrap().contains("logout"), "the provider's sign-out page");
    }
}
