//! `cookie.http_only`: `true` keeps tokens and JWTs away from browsers' scripts, `false` hands
//! them over (Stytch SDK style), `enforced` also refuses tokens sent in request bodies.

use crate::support::*;
use serde_json::{Value, json};
use sessiond_core::jwt::JwtSettings;
use sessiond_core::realm::HttpOnlyMode;

async fn server(mode: HttpOnlyMode) -> TestServer {
    TestServer::with(Options {
        http_only: mode,
        jwt: JwtSettings { cookie: true, ..JwtSettings::default() },
        ..Options::default()
    })
    .await
}

/// A login as a browser's script sends it: same-origin `Origin` and fetch metadata.
async fn browser_login(s: &TestServer) -> (Vec<String>, Value) {
    let res = s
        .client
        .post(s.url("/api/v1/authenticate"))
        .header("origin", &s.base)
        .header("sec-fetch-mode", "cors")
        .json(&login_body("alice", "alice-pw", false))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let cookies = res.headers().get_all("set-cookie").iter().map(|v| v.to_str().unwrap().to_owned()).collect();
    (cookies, res.json().await.unwrap())
}

fn cookie<'a>(cookies: &'a [String], name: &str) -> &'a str {
    cookies.iter().find(|c| c.starts_with(&format!("{name}="))).unwrap_or_else(|| panic!("no {name} in {cookies:?}"))
}

#[tokio::test]
async fn http_only_true_keeps_tokens_out_of_browser_answers() {
    let s = server(HttpOnlyMode::On).await;
    let (cookies, body) = browser_login(&s).await;
    assert!(body.get("session_token").is_none() && body.get("session_jwt").is_none(), "{body}");
    assert!(attr(cookie(&cookies, COOKIE), "HttpOnly").is_some());
    assert!(attr(cookie(&cookies, &format!("{COOKIE}_jwt")), "HttpOnly").is_some());
    // A script (no Origin, no fetch metadata) gets both in the body.
    let script: Value =
        s.post("/api/v1/authenticate", login_body("alice", "alice-pw", false)).await.json().await.unwrap();
    assert!(script["session_token"].is_string() && script["session_jwt"].is_string());
}

#[tokio::test]
async fn http_only_false_hands_tokens_and_jwts_to_scripts() {
    let s = server(HttpOnlyMode::Off).await;
    let (cookies, body) = browser_login(&s).await;
    let token = body["session_token"].as_str().unwrap();
    assert!(body["session_jwt"].is_string());
    let session = cookie(&cookies, COOKIE);
    assert!(session.starts_with(&format!("{COOKIE}={token};")));
    assert!(attr(session, "HttpOnly").is_none(), "JavaScript may read it: {session}");
    assert!(attr(cookie(&cookies, &format!("{COOKIE}_jwt")), "HttpOnly").is_none());
    // Authenticated by the cookie, the answer still carries the fresh JWT.
    let res = s
        .client
        .post(s.url("/api/v1/sessions/authenticate"))
        .header("cookie", format!("{COOKIE}={token}"))
        .send()
        .await
        .unwrap();
    let body: Value = res.json().await.unwrap();
    assert!(body["session_jwt"].is_string(), "{body}");
}

#[tokio::test]
async fn http_only_enforced_refuses_tokens_in_bodies_but_not_the_cookie() {
    let s = server(HttpOnlyMode::Enforced).await;
    let token = s.login("alice", "alice-pw", false).await;
    let res = s.post("/api/v1/sessions/authenticate", json!({"session_token": token})).await;
    assert_eq!(error_code(res).await, (400, "bad_request".into()));
    let by_cookie = s
        .client
        .post(s.url("/api/v1/sessions/authenticate"))
        .header("cookie", format!("{COOKIE}={token}"))
        .send()
        .await
        .unwrap();
    assert_eq!(by_cookie.status(), 200);
    let body: Value = by_cookie.json().await.unwrap();
    assert!(body.get("session_jwt").is_none(), "{body}");
    let (cookies, body) = browser_login(&s).await;
    assert!(body.get("session_token").is_none());
    assert!(attr(cookie(&cookies, COOKIE), "HttpOnly").is_some());
}
