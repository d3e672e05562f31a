//! `sessiond keys rotate` and `sessiond realm cookie-name` against a real data directory: through
//! the running server's control socket (which follows the change within seconds) and directly on
//! the store of a stopped one.

use crate::support::*;
use serde_json::{Value, json};
use std::time::Duration;

async fn jwks_kids(server: &Server) -> Vec<String> {
    let set: Value =
        server.client.get(server.url("/.well-known/jwks.json")).send().await.unwrap().json().await.unwrap();
    set["keys"].as_array().unwrap().iter().map(|k| k["kid"].as_str().unwrap().to_owned()).collect()
}

fn kid_of(jwt: &str) -> String {
    use base64::Engine as _;
    let header = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(jwt.split('.').next().unwrap()).unwrap();
    serde_json::from_slice::<Value>(&header).unwrap()["kid"].as_str().unwrap().to_owned()
}

/// Polls `check` every 200 ms for up to 8 s.
async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let started = tokio::time::Instant::now();
    while !check().await {
        assert!(started.elapsed() < Duration::from_secs(8), "{what}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn keys_rotate_reaches_the_running_server_and_earlier_jwts_stay_valid() {
    let dir = tempfile::tempdir().unwrap();
    cheap_setup(dir.path(), &[("alice", "alice-pw", &["dev"])], "");
    let server = Server::start(dir.path()).await;
    let login = server.login("alice", "alice-pw").await;
    let old_jwt = login.body["session_jwt"].as_str().unwrap().to_owned();
    let before = jwks_kids(&server).await;
    assert_eq!(before.len(), 2);
    assert_eq!(kid_of(&old_jwt), before[0]);

    let out = sessiond(dir.path(), &["keys", "rotate", "--json"]).await.json();
    let rotated = &out["rotated"][0];
    assert_eq!(rotated["realm"], "main");
    assert_eq!(rotated["retired_kid"], before[0].as_str());
    assert_eq!(rotated["current_kid"], before[1].as_str(), "the key published ahead signs now");

    eventually("the server signs with the new key", || async {
        let res = server.post("/api/v1/sessions/authenticate", &json!({"session_token": login.token})).await;
        let body: Value = res.json().await.unwrap();
        kid_of(body["session_jwt"].as_str().unwrap()) == before[1]
    })
    .await;
    let after = jwks_kids(&server).await;
    assert_eq!(after.len(), 3, "retired key still published: {after:?}");
    let res = server.post("/api/v1/sessions/authenticate", &json!({"session_jwt": old_jwt})).await;
    assert_eq!(res.status(), 200, "a JWT signed before the rotation stays valid");

    // With the server stopped, the command opens the store itself.
    server.stop().await;
    let text = sessiond(dir.path(), &["keys", "rotate"]).await;
    assert!(text.ok().starts_with("rotated main: signing with "), "{}", text.stdout);
    let server = Server::start(dir.path()).await;
    assert_eq!(jwks_kids(&server).await.len(), 4);
}

#[tokio::test]
async fn keys_rotate_refuses_realms_without_jwts_and_unknown_realms() {
    let dir = tempfile::tempdir().unwrap();
    cheap_setup(dir.path(), &[("alice", "alice-pw", &["dev"])], "realms:\n  main:\n    jwt: {enabled: false}\n");
    sessiond(dir.path(), &["keys", "rotate"]).await.fails(1, &["no realm issues JWTs"]);
    sessiond(dir.path(), &["keys", "rotate", "--realm", "main"]).await.fails(1, &["jwt.enabled"]);
    sessiond(dir.path(), &["keys", "rotate", "--realm", "nowhere"]).await.fails(1, &["nowhere"]);
}

#[tokio::test]
async fn realm_cookie_name_shows_sets_and_resets_through_the_running_server() {
    let dir = tempfile::tempdir().unwrap();
    cheap_setup(dir.path(), &[("alice", "alice-pw", &["dev"])], "");
    let server = Server::start(dir.path()).await;
    let default = server.cookie_name.clone();
    let shown = sessiond(dir.path(), &["realm", "cookie-name", "main"]).await;
    assert_eq!(shown.ok(), format!("main: {default} (default)\n"));
    let login = server.login("alice", "alice-pw").await;

    let set = sessiond(dir.path(), &["realm", "cookie-name", "main", "acme_sid", "--json"]).await.json();
    assert_eq!(
        set,
        json!({"realm": "main", "cookie_name": "acme_sid", "default_cookie_name": false, "sessions_ended": 1})
    );
    assert_eq!(server.current_status(&login.token).await, 401, "the change ended the session");
    eventually("the server follows the new name", || async {
        let res = server.post("/api/v1/authenticate", &login_body("alice", "alice-pw")).await;
        !set_cookies(res.headers(), "acme_sid").is_empty()
    })
    .await;

    for bad in ["bad name", "x_jwt", "iPlanetDirectoryPro"] {
        sessiond(dir.path(), &["realm", "cookie-name", "main", bad]).await.fails(1, &["cookie name"]);
    }
    sessiond(dir.path(), &["realm", "cookie-name", "nowhere", "x"]).await.fails(1, &["nowhere"]);

    let reset = sessiond(dir.path(), &["realm", "cookie-name", "main", "--reset"]).await;
    // Every login made while polling above was a session under the new name.
    let text = reset.ok();
    assert!(text.starts_with(&format!("main: {default} (default)\n")), "{text}");
    assert!(text.ends_with(" sessions ended\n") && !text.contains("\n0 sessions"), "{text}");
    server.stop().await;
    // Stopped: the command works on the store, and the next start uses the stored name.
    sessiond(dir.path(), &["realm", "cookie-name", "main", "offline_sid"]).await.ok();
    let server = Server::start(dir.path()).await;
    assert_eq!(server.cookie_name, "offline_sid");
}

#[tokio::test]
async fn a_cookie_name_fixed_by_configuration_is_not_changed_by_the_command() {
    let dir = tempfile::tempdir().unwrap();
    cheap_setup(dir.path(), &[("alice", "alice-pw", &["dev"])], "realms:\n  main:\n    cookie: {name: fixed_sid}\n");
    sessiond(dir.path(), &["realm", "cookie-name", "main", "other"]).await.fails(1, &["realms.main.cookie.name"]);
    sessiond(dir.path(), &["realm", "cookie-name", "main", "--reset"]).await.fails(1, &["realms.main.cookie.name"]);
}
