//! Garbage in: every malformed request gets a clear 4xx in our error shape, and nothing is created
//! or lost.

use crate::support::*;
use reqwest::header::HeaderValue;
use serde_json::{Value, json};
use sessiond_store::{SessionFilter, Store};

async fn session_count(s: &TestServer) -> usize {
    s.store.list_sessions(&SessionFilter::default()).await.unwrap().len()
}

#[tokio::test]
async fn malformed_json_and_wrong_types_are_bad_requests() {
    let s = TestServer::start().await;
    let raw = |body: &'static str| {
        s.client.post(s.url("/api/v1/authenticate")).header("content-type", "application/json").body(body).send()
    };
    for body in [
        "{",
        "[]",
        "null",
        "\"x\"",
        "{\"callbacks\": 5}",
        "{\"callbacks\": [{\"type\": 1}]}",
        "{\"auth_id\": 7}",
        "{\"surprise\": true}",
    ] {
        let res = raw(body).await.unwrap();
        assert_eq!(error_code(res).await, (400, "bad_request".into()), "{body}");
    }
    let res = s.post("/api/v1/sessions/revoke", json!({"user": ["x"]})).await;
    assert_eq!(res.status(), 401, "auth is checked before the body");
    assert_eq!(session_count(&s).await, 0);
}

#[tokio::test]
async fn oversized_bodies_are_refused_with_413() {
    let s = TestServer::start().await;
    let big = format!("{{\"auth_id\": \"{}\"}}", "A".repeat(100 * 1024));
    let res = s
        .client
        .post(s.url("/api/v1/authenticate"))
        .header("content-type", "application/json")
        .body(big)
        .send()
        .await
        .unwrap();
    assert_eq!(error_code(res).await, (413, "payload_too_large".into()));
}

#[tokio::test]
async fn malformed_tokens_fail_closed_everywhere() {
    let s = TestServer::start().await;
    let real = s.login("alice", "alice-pw", false).await;
    let cases: Vec<(&str, HeaderValue)> = vec![
        ("authorization", HeaderValue::from_static("Bearer short")),
        ("authorization", HeaderValue::from_static("Basic YWxpY2U6YWxpY2UtcHc=")),
        ("authorization", HeaderValue::from_str(&format!("Bearer {real}x")).unwrap()),
        ("cookie", HeaderValue::from_bytes(format!("{COOKIE}=\u{00e9}\u{00e9}").as_bytes()).unwrap()),
        ("cookie", HeaderValue::from_bytes(b"sd_test=\xff\xfe\xfd").unwrap()),
        ("cookie", HeaderValue::from_str(&format!("{COOKIE}={}", "A".repeat(8192))).unwrap()),
        ("cookie", HeaderValue::from_str(&format!("{COOKIE}={real}; {COOKIE}={}", "B".repeat(43))).unwrap()),
        (COOKIE, HeaderValue::from_static("not-a-token")),
    ];
    for (name, value) in cases {
        let res = s.client.get(s.url("/api/v1/sessions/current")).header(name, value.clone()).send().await.unwrap();
        assert_eq!(error_code(res).await, (401, "unauthenticated".into()), "{name}: {value:?}");
    }
    assert_eq!(session_count(&s).await, 1, "the real session survives the garbage");
    assert_eq!(s.get_with_token("/api/v1/sessions/current", &real).await.status(), 200);
}

#[tokio::test]
async fn other_cookies_with_odd_bytes_do_not_hide_ours() {
    let s = TestServer::start().await;
    let real = s.login("alice", "alice-pw", false).await;
    let mut header = b"tracker=\xff\xfe; theme=dark; ".to_vec();
    header.extend_from_slice(format!("{COOKIE}={real}").as_bytes());
    let res = s
        .client
        .get(s.url("/api/v1/sessions/current"))
        .header("cookie", HeaderValue::from_bytes(&header).unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
}

#[tokio::test]
async fn the_same_cookie_twice_with_the_same_value_is_fine() {
    let s = TestServer::start().await;
    let real = s.login("alice", "alice-pw", false).await;
    let res = s
        .client
        .get(s.url("/api/v1/sessions/current"))
        .header("cookie", format!("{COOKIE}={real}; {COOKIE}={real}"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
}

#[tokio::test]
async fn callbacks_with_missing_or_wrong_values_are_refused_without_a_session() {
    let s = TestServer::start().await;
    let bodies = [
        json!({"callbacks": [{"type": "username", "value": "alice"}]}),
        json!({"callbacks": [{"type": "username", "value": ""}, {"type": "password", "value": "x"}]}),
        json!({"callbacks": [{"type": "username", "value": "alice"}, {"type": "password", "value": 12}]}),
        json!({"callbacks": [{"type": "username", "value": "alice"}, {"type": "password", "value": "alice-pw"}, {"type": "remember_me", "value": "yes"}]}),
        json!({"callbacks": [{"type": "username", "value": "alice"}, {"type": "password", "value": "alice-pw"}, {"type": "totp", "value": "1"}]}),
        json!({"callbacks": [{"type": "username", "value": "alice"}, {"type": "password", "value": "x".repeat(2000)}]}),
    ];
    for body in bodies {
        let res = s.post("/api/v1/authenticate", body.clone()).await;
        assert_eq!(error_code(res).await, (400, "bad_request".into()), "{body}");
    }
    let res = s.client.post(s.url("/api/v1/authenticate?journey=../../admin")).json(&json!({})).send().await.unwrap();
    assert_eq!(error_code(res).await.0, 400);
    assert_eq!(session_count(&s).await, 0);
}

#[tokio::test]
async fn unknown_api_paths_answer_json_404() {
    let s = TestServer::start().await;
    let res = s.client.get(s.url("/api/v1/nothing-here")).send().await.unwrap();
    assert_eq!(error_code(res).await, (404, "not_found".into()));
}

#[tokio::test]
async fn errors_are_not_cacheable() {
    let s = TestServer::start().await;
    let res = s.client.get(s.url("/api/v1/sessions/current")).send().await.unwrap();
    assert_eq!(res.headers()["cache-control"], "no-store");
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["error"], "unauthenticated");
}

#[tokio::test]
async fn cross_site_browser_posts_are_refused_before_anything_happens() {
    let s = TestServer::start().await;
    let body = login_body("alice", "alice-pw", false);
    let post = |name: &'static str, value: &'static str| {
        s.client
            .post(s.url("/api/v1/authenticate"))
            .header(name, value)
            .header("content-type", "text/plain")
            .body(body.to_string())
            .send()
    };
    for (name, value) in [
        ("origin", "https://evil.example"),
        ("origin", "null"),
        ("origin", "http://127.0.0.1.evil.example"),
        ("sec-fetch-site", "cross-site"),
    ] {
        let res = post(name, value).await.unwrap();
        assert!(session_cookies(res.headers()).is_empty(), "{name}: {value}");
        assert_eq!(error_code(res).await, (403, "forbidden".into()), "{name}: {value}");
    }
    assert_eq!(session_count(&s).await, 0);
    // The portal's own origin and same-site fetches are fine.
    assert_eq!(post("origin", "http://127.0.0.1").await.unwrap().status(), 200);
    assert_eq!(post("sec-fetch-site", "same-site").await.unwrap().status(), 200);
}
