//! The session API as a browser or a script meets the real binary: the cookie of the zero-config
//! realm, logout, and garbage in. The in-process suite of `sessiond-server` covers the details.

use crate::support::*;
use reqwest::header::{CACHE_CONTROL, COOKIE};

fn is_generated_cookie_name(name: &str) -> bool {
    name.strip_prefix("sd_")
        .is_some_and(|hex| hex.len() == 8 && hex.bytes().all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()))
}

#[tokio::test]
async fn the_zero_config_session_cookie_has_the_promised_attributes() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path()).await;
    let name = server.cookie_name.clone();
    assert!(is_generated_cookie_name(&name), "cookie name {name:?} is sd_ and 8 hex digits");

    let login = server.login("admin", server.password.as_deref().unwrap()).await;
    assert_eq!(login.headers.get(CACHE_CONTROL).unwrap(), "no-store");
    let cookies = set_cookies(&login.headers, &name);
    assert_eq!(cookies.len(), 1, "one session cookie: {:?}", login.headers);
    let cookie = &cookies[0];
    let value = cookie.split(';').next().unwrap().strip_prefix(&format!("{name}=")).unwrap();
    assert_eq!(value, login.token, "the cookie carries the session token");
    assert_eq!(attr(cookie, "Path"), Some("/"), "{cookie}");
    assert_eq!(attr(cookie, "HttpOnly"), Some(""), "{cookie}");
    assert_eq!(attr(cookie, "SameSite"), Some("Lax"), "{cookie}");
    assert_eq!(attr(cookie, "Secure"), None, "plain http on 127.0.0.1 gets no Secure: {cookie}");
    assert_eq!(attr(cookie, "Domain"), None, "host-only without a realm domain: {cookie}");
    let max_age: u64 = attr(cookie, "Max-Age").unwrap().parse().unwrap();
    assert!((290..=300).contains(&max_age), "Max-Age is the 5m idle limit, the earlier deadline: {cookie}");

    let by_cookie = server
        .client
        .get(server.url("/api/v1/sessions/current"))
        .header(COOKIE, format!("{name}={value}"))
        .send()
        .await
        .unwrap();
    assert_eq!(by_cookie.status(), 200, "the cookie is a credential");
}

#[tokio::test]
async fn the_cookie_name_is_generated_once_per_installation_and_kept() {
    let users: &[(&str, &str, &[&str])] = &[("alice", "alice-pw", &[])];
    let first = tempfile::tempdir().unwrap();
    cheap_setup(first.path(), users, "");
    let server = Server::start(first.path()).await;
    let name = server.cookie_name.clone();
    assert!(is_generated_cookie_name(&name), "{name}");
    let login = server.login("alice", "alice-pw").await;
    assert_eq!(set_cookies(&login.headers, &name).len(), 1, "the banner names the cookie that is set");
    let (status, _) = server.stop().await;
    assert_eq!(status.code(), Some(0));

    let server = Server::start(first.path()).await;
    assert_eq!(server.cookie_name, name, "the name survives a restart");
    let res = server
        .client
        .get(server.url("/api/v1/sessions/current"))
        .header(COOKIE, format!("{name}={}", login.token))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200, "and so do the browsers' cookies");

    let other = tempfile::tempdir().unwrap();
    cheap_setup(other.path(), users, "");
    let elsewhere = Server::start(other.path()).await;
    assert!(is_generated_cookie_name(&elsewhere.cookie_name));
    assert_ne!(elsewhere.cookie_name, name, "each installation picks its own name");
}

#[tokio::test]
async fn logout_ends_the_session_and_deletes_the_cookie() {
    let dir = tempfile::tempdir().unwrap();
    cheap_setup(dir.path(), &[("alice", "alice-pw", &[])], "");
    let server = Server::start(dir.path()).await;
    let name = server.cookie_name.clone();
    let login = server.login("alice", "alice-pw").await;
    let cookie = format!("{name}={}", login.token);

    let res =
        server.client.delete(server.url("/api/v1/sessions/current")).header(COOKIE, &cookie).send().await.unwrap();
    assert_eq!(res.status(), 204);
    let deleting = set_cookies(res.headers(), &name);
    assert_eq!(deleting.len(), 1, "{:?}", res.headers());
    assert!(deleting[0].starts_with(&format!("{name}=;")), "empty value: {}", deleting[0]);
    assert_eq!(attr(&deleting[0], "Max-Age"), Some("0"), "{}", deleting[0]);
    assert_eq!(attr(&deleting[0], "Path"), Some("/"), "same Path, or nothing is removed: {}", deleting[0]);

    let after = server.client.get(server.url("/api/v1/sessions/current")).header(COOKIE, &cookie).send().await.unwrap();
    let cleanup = set_cookies(after.headers(), &name);
    assert_eq!(error_code(after).await, (401, "unauthenticated".to_owned()));
    assert!(cleanup.iter().any(|c| attr(c, "Max-Age") == Some("0")), "a dead cookie is deleted: {cleanup:?}");
    assert_eq!(server.current_status(&login.token).await, 401);
}

#[tokio::test]
async fn garbage_in_gets_json_errors_and_the_server_keeps_running() {
    let dir = tempfile::tempdir().unwrap();
    cheap_setup(dir.path(), &[("alice", "alice-pw", &[])], "");
    let server = Server::start(dir.path()).await;
    let name = server.cookie_name.clone();
    let alice = server.login("alice", "alice-pw").await;
    let post_raw = |body: Vec<u8>| {
        server
            .client
            .post(server.url("/api/v1/authenticate"))
            .header("content-type", "application/json")
            .body(body)
            .send()
    };

    for body in ["{", "{\"callbacks\": 5}", "\u{0}\u{1}binary", "[]"] {
        let res = post_raw(body.as_bytes().to_vec()).await.unwrap();
        assert_eq!(error_code(res).await, (400, "bad_request".to_owned()), "{body:?}");
    }

    // The server answers 413 without reading the body and closes the connection, so this request
    // gets a client of its own: a pooled connection must not carry the next request into the close.
    let huge = format!("{{\"auth_id\": \"{}\"}}", "A".repeat(100 * 1024));
    let res = client()
        .post(server.url("/api/v1/authenticate"))
        .header("content-type", "application/json")
        .body(huge)
        .send()
        .await
        .unwrap();
    assert_eq!(error_code(res).await, (413, "payload_too_large".to_owned()));

    let big_cookie = format!("{name}={}", "A".repeat(8 * 1024));
    let res =
        server.client.get(server.url("/api/v1/sessions/current")).header(COOKIE, big_cookie).send().await.unwrap();
    assert_eq!(error_code(res).await, (401, "unauthenticated".to_owned()));

    for auth in ["Bearer", "Bearer  ", "Basic YWxpY2U6YWxpY2UtcHc="] {
        let res = server
            .client
            .get(server.url("/api/v1/sessions/current"))
            .header("authorization", auth)
            .send()
            .await
            .unwrap();
        assert_eq!(error_code(res).await, (401, "unauthenticated".to_owned()), "{auth:?}");
    }

    let res = server.client.get(server.url("/api/v1/no-such-thing")).send().await.unwrap();
    assert_eq!(res.status(), 404);
    assert_eq!(error_code(res).await.1, "not_found");

    assert_eq!(server.client.get(server.url("/healthz")).send().await.unwrap().status(), 200);
    let ready = server.client.get(server.url("/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), 200);
    assert_eq!(server.current_status(&alice.token).await, 200, "the real session survived the garbage");
    let listed = sessiond(dir.path(), &["sessions", "list", "--json"]).await.json();
    assert_eq!(listed["sessions"].as_array().unwrap().len(), 1, "garbage created no session: {listed}");
    server.login("alice", "alice-pw").await;
}
