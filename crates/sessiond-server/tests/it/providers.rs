//! Login providers over real HTTP: the header provider signs in whom a trusted upstream names,
//! refuses the same headers from anyone else, names its users `<id>:<name>`, and goes through
//! the journey engine (a TOTP step for users who enrolled one).

use crate::portal::{Jar, csrf_of, get_page, location, post_form};
use crate::support::*;
use serde_json::{Value, json};
use sessiond_core::provider::{HeaderProvider, Provider};
use sessiond_core::totp::{code_at, counter_at};
use sessiond_server::clock::Clock as _;
use sessiond_store::{SessionFilter, Store};

fn corp() -> Provider {
    Provider::Header(HeaderProvider {
        id: "corp".into(),
        label: "Corporate SSO".into(),
        user_header: "remote-user".into(),
        groups_header: Some("remote-groups".into()),
        email_header: Some("remote-email".into()),
        name_header: Some("remote-name".into()),
    })
}

async fn server(trusted: bool) -> TestServer {
    let trusted_proxies =
        if trusted { vec!["127.0.0.1/32".parse().unwrap()] } else { vec!["10.0.0.0/8".parse().unwrap()] };
    TestServer::with(Options { trusted_proxies, providers: vec![corp()], ..Options::default() }).await
}

async fn through_the_proxy(s: &TestServer, path: &str, user: Option<&str>) -> reqwest::Response {
    let mut req = s.client.get(s.url(path));
    if let Some(user) = user {
        req = req
            .header("remote-user", user)
            .header("remote-groups", "dev, ops")
            .header("remote-email", "bob@corp.example")
            .header("remote-name", "Bob Builder");
    }
    req.send().await.unwrap()
}

fn cookie_value(res: &reqwest::Response) -> String {
    let set = session_cookies(res.headers()).pop().expect("a session cookie");
    set.split(';').next().unwrap().split_once('=').unwrap().1.to_owned()
}

#[tokio::test]
async fn a_trusted_upstream_signs_its_user_in_under_the_providers_name() {
    let s = server(true).await;
    let res = through_the_proxy(&s, "/login/corp?rd=%2F", Some("bob")).await;
    assert_eq!(res.status(), 303);
    assert_eq!(location(&res), "http://127.0.0.1/", "back to rd");
    let token = cookie_value(&res);
    let body: Value = s.get_with_cookie("/api/v1/sessions/current", &token).await.json().await.unwrap();
    assert_eq!(body["session"]["user"], "corp:bob");
    assert_eq!(body["session"]["groups"], json!(["dev", "ops"]));
    assert_eq!(body["session"]["email"], "bob@corp.example");
    assert_eq!(body["session"]["display_name"], "Bob Builder");
    assert_eq!(body["session"]["amr"], json!(["header"]));

    // The JSON API runs the same journey.
    let res = s
        .client
        .post(s.url("/api/v1/authenticate?journey=corp"))
        .header("remote-user", "carol")
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["session"]["user"], "corp:carol");
    assert!(body["session_token"].is_string());
    let res = s.post("/api/v1/authenticate?journey=nope", json!({})).await;
    assert_eq!(error_code(res).await, (400, "bad_request".into()));
}

#[tokio::test]
async fn the_headers_from_anyone_else_are_refused_and_audited() {
    let s = server(false).await;
    let res = through_the_proxy(&s, "/login/corp", Some("alice")).await;
    assert_eq!(res.status(), 403);
    assert!(session_cookies(res.headers()).is_empty());
    let res = s
        .client
        .post(s.url("/api/v1/authenticate?journey=corp"))
        .header("remote-user", "alice")
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(error_code(res).await, (403, "forbidden".into()));
    assert!(s.store.list_sessions(&SessionFilter::default()).await.unwrap().is_empty());
    let audit = std::fs::read_to_string(&s.audit_path).unwrap();
    assert_eq!(audit.matches("\"untrusted_identity_header\"").count(), 2, "{audit}");
    assert!(audit.contains("\"login_failed\""));
}

#[tokio::test]
async fn a_trusted_peer_without_a_usable_name_signs_nobody_in() {
    let s = server(true).await;
    assert_eq!(through_the_proxy(&s, "/login/corp", None).await.status(), 401);
    let res = s.client.get(s.url("/login/corp")).header("remote-user", "b".repeat(300)).send().await.unwrap();
    assert_eq!(res.status(), 400);
    assert_eq!(through_the_proxy(&s, "/login/elsewhere", Some("bob")).await.status(), 404);
    assert!(s.store.list_sessions(&SessionFilter::default()).await.unwrap().is_empty());
}

#[tokio::test]
async fn provider_users_never_share_a_file_users_sessions() {
    let s = server(true).await;
    let file_alice = s.login("alice", "alice-pw", false).await;
    let res = through_the_proxy(&s, "/login/corp", Some("alice")).await;
    let corp_alice = cookie_value(&res);
    let mine: Value = s.get_with_token("/api/v1/sessions", &corp_alice).await.json().await.unwrap();
    assert_eq!(mine["sessions"].as_array().unwrap().len(), 1, "only corp:alice's own session: {mine}");
    let res = s.post_with_token("/api/v1/sessions/revoke", &corp_alice, json!({})).await;
    assert_eq!(res.json::<Value>().await.unwrap(), json!({"revoked": 1}));
    assert_eq!(s.get_with_token("/api/v1/sessions/current", &file_alice).await.status(), 200);
}

#[tokio::test]
async fn the_login_page_offers_the_provider_and_a_second_factor_follows() {
    let s = server(true).await;
    let mut jar = Jar::default();
    let html = get_page(&s, &mut jar, "/login?rd=%2Fsessions").await;
    assert!(html.contains("href=\"/login/corp?rd=%2Fsessions\"") && html.contains("Corporate SSO"), "{html}");

    // corp:bob has a TOTP: the provider's word is the first step, the code the second.
    let now = s.clock.now();
    let secret = sessiond_server::totp::begin_enrollment(&s.store, &s.app.totp_sealer, "corp:bob", now).await.unwrap();
    let code = |s: &TestServer| code_at(&secret, counter_at(s.clock.now()));
    sessiond_server::totp::confirm(&s.store, &s.app.totp_sealer, "corp:bob", &code(&s), now).await.unwrap();
    s.advance(30);
    let res = s
        .client
        .get(s.url("/login/corp"))
        .header("remote-user", "bob")
        .header("remote-groups", "dev")
        .send()
        .await
        .unwrap();
    assert_eq!(location(&res), "/login/totp");
    assert!(session_cookies(res.headers()).is_empty(), "no session before the code");
    let mut jar = Jar::default();
    jar.absorb(res.headers());
    let html = get_page(&s, &mut jar, "/login/totp").await;
    let csrf = csrf_of(&html);
    let res = post_form(&s, &mut jar, "/login/totp", &[("code", &code(&s)), ("csrf", &csrf)]).await;
    assert_eq!(location(&res), "/");
    let session = s.store.list_sessions(&SessionFilter::default()).await.unwrap().pop().unwrap();
    assert_eq!(session.user, "corp:bob");
    assert_eq!(session.amr, ["header", "otp"]);
    assert_eq!(session.groups, ["dev"], "the provider's groups outlive the code step");
}
