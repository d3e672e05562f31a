//! Timeouts as a client sees them: the server decides, the clock is advanced, nothing sleeps.

use crate::support::*;
use serde_json::Value;
use sessiond_core::timeout::Timeouts;
use sessiond_store::{SessionFilter, Store};
use std::time::Duration;

async fn status(s: &TestServer, token: &str) -> u16 {
    s.get_with_token("/api/v1/sessions/current", token).await.status().as_u16()
}

#[tokio::test]
async fn idle_session_ends_after_inactivity_and_is_deleted() {
    let s = TestServer::start().await;
    let token = s.login("alice", "alice-pw", false).await;
    s.advance(299);
    assert_eq!(status(&s, &token).await, 200);
    s.advance(300);
    assert_eq!(status(&s, &token).await, 401);
    assert!(s.store.list_sessions(&SessionFilter::default()).await.unwrap().is_empty(), "dead session deleted");
}

#[tokio::test]
async fn activity_rolls_the_idle_deadline_but_never_the_absolute_one() {
    let s = TestServer::start().await;
    let token = s.login("alice", "alice-pw", false).await;
    // A request every 4 minutes keeps the session alive ...
    for _ in 0..14 {
        s.advance(240);
        assert_eq!(status(&s, &token).await, 200);
    }
    // ... until the hour is up (56 min so far).
    s.advance(240);
    assert_eq!(status(&s, &token).await, 401);
}

#[tokio::test]
async fn touched_sessions_resend_the_cookie_with_the_new_max_age() {
    let s = TestServer::start().await;
    let token = s.login("alice", "alice-pw", false).await;
    s.advance(10);
    let res = s.get_with_cookie("/api/v1/sessions/current", &token).await;
    assert!(session_cookies(res.headers()).is_empty(), "within the throttle interval: no write, no cookie");
    s.advance(30);
    let res = s.get_with_cookie("/api/v1/sessions/current", &token).await;
    let cookies = session_cookies(res.headers());
    assert_eq!(cookies.len(), 1);
    assert_eq!(attr(&cookies[0], "Max-Age"), Some("300"));
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["session"]["last_seen_at"], sessiond_core::time::Timestamp::from_unix(START + 40).rfc3339());
}

#[tokio::test]
async fn last_seen_writes_are_throttled() {
    let s = TestServer::start().await;
    let token = s.login("alice", "alice-pw", false).await;
    let seen = |v: Value| v["session"]["last_seen_at"].as_str().unwrap().to_owned();
    let first = seen(s.get_with_token("/api/v1/sessions/current", &token).await.json().await.unwrap());
    s.advance(29);
    let second = seen(s.get_with_token("/api/v1/sessions/current", &token).await.json().await.unwrap());
    assert_eq!(first, second, "no write within inactivity/10");
    s.advance(1);
    let third = seen(s.get_with_token("/api/v1/sessions/current", &token).await.json().await.unwrap());
    assert_ne!(second, third);
}

#[tokio::test]
async fn remembered_sessions_ignore_inactivity_and_last_a_month() {
    let s = TestServer::start().await;
    let res = s.post("/api/v1/authenticate", login_body("alice", "alice-pw", true)).await;
    let cookie = session_cookies(res.headers()).remove(0);
    assert_eq!(attr(&cookie, "Max-Age"), Some("2592000"));
    let token = res.json::<Value>().await.unwrap()["session_token"].as_str().unwrap().to_owned();
    s.advance(86_400 * 10);
    assert_eq!(status(&s, &token).await, 200);
    s.advance(86_400 * 20);
    assert_eq!(status(&s, &token).await, 401);
}

#[tokio::test]
async fn remember_me_off_hides_the_callback_and_is_ignored() {
    let s = TestServer::with(Options {
        timeouts: Timeouts { remember_me: None, ..Timeouts::default() },
        ..Options::default()
    })
    .await;
    let start: Value = s.post("/api/v1/authenticate", serde_json::json!({})).await.json().await.unwrap();
    assert_eq!(start["callbacks"].as_array().unwrap().len(), 2);
    let res = s.post("/api/v1/authenticate", login_body("alice", "alice-pw", true)).await;
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["session"]["remember_me"], false);
    let token = body["session_token"].as_str().unwrap();
    s.advance(301);
    assert_eq!(status(&s, token).await, 401, "inactivity applies to a session that is not remembered");
}

#[tokio::test]
async fn inactivity_zero_means_only_the_absolute_deadline_counts() {
    let s = TestServer::with(Options {
        timeouts: Timeouts { inactivity: None, ..Timeouts::default() },
        ..Options::default()
    })
    .await;
    let token = s.login("alice", "alice-pw", false).await;
    s.advance(3599);
    assert_eq!(status(&s, &token).await, 200);
    s.advance(1);
    assert_eq!(status(&s, &token).await, 401);
}

#[tokio::test]
async fn extend_forces_a_touch_inside_the_throttle_interval() {
    let s = TestServer::start().await;
    let token = s.login("alice", "alice-pw", false).await;
    s.advance(5);
    let body: Value = s
        .post("/api/v1/sessions/authenticate", serde_json::json!({"session_token": token, "extend": true}))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(body["session"]["last_seen_at"], sessiond_core::time::Timestamp::from_unix(START + 5).rfc3339());
    let _ = Duration::ZERO;
}
