//! Second factors and login journeys on the real binary: `sessiond users totp-reset` through a
//! running server's control socket (which writes the audit event) and directly on the store of a
//! stopped one, and the `server.reauth_window` and `realms.<name>.journeys` settings reaching
//! the running server.

use crate::support::*;
use serde_json::{Value, json};
use sessiond_core::totp::{TotpSecret, code_at, counter_at};
use sessiond_server::clock::{Clock as _, SystemClock};
use std::path::Path;
use std::time::Duration;

const USERS: &[(&str, &str, &[&str])] = &[("alice", "alice-pw", &["dev"]), ("bob", "bob-pw", &["dev"])];

/// `POST /api/v1/totp/enroll` for the signed-in `token`, with `body`.
async fn begin_enrollment(server: &Server, token: &str, body: &Value) -> reqwest::Response {
    server.client.post(server.url("/api/v1/totp/enroll")).bearer_auth(token).json(body).send().await.unwrap()
}

/// Enrolls and confirms a TOTP for the user signed in with `token` (just signed in: no password
/// needed).
async fn enroll(server: &Server, token: &str) {
    let res = begin_enrollment(server, token, &json!({})).await;
    assert_eq!(res.status(), 200, "enroll: {}", res.text().await.unwrap());
    let body: Value = res.json().await.unwrap();
    let secret = TotpSecret::from_base32(body["secret"].as_str().unwrap()).unwrap();
    let code = code_at(&secret, counter_at(SystemClock.now()));
    let res = server
        .client
        .post(server.url("/api/v1/totp/confirm"))
        .bearer_auth(token)
        .json(&json!({"code": code}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200, "confirm: {}", res.text().await.unwrap());
}

/// Whether a password login of `user` asks for a code next (otherwise it must answer a session).
async fn asks_for_a_code(server: &Server, user: &str, password: &str) -> bool {
    let res = server.post("/api/v1/authenticate", &login_body(user, password)).await;
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.unwrap();
    if body.get("session_token").is_some() {
        return false;
    }
    assert_eq!(body["callbacks"], json!([{"type": "totp"}]), "{body}");
    true
}

/// The audit events of `file` about TOTP: `(user, reason, actor)`.
fn totp_events(file: &Path) -> Vec<(String, String, String)> {
    let text = std::fs::read_to_string(file).unwrap_or_default();
    text.lines()
        .map(|line| serde_json::from_str::<Value>(line).unwrap())
        .filter(|event| event["event"] == "totp_changed")
        .map(|event| {
            let field = |name: &str| event[name].as_str().unwrap_or_default().to_owned();
            (field("user"), field("reason"), field("actor"))
        })
        .collect()
}

#[tokio::test]
async fn totp_reset_through_the_running_server_lets_the_next_sign_in_use_the_password_only() {
    let dir = tempfile::tempdir().unwrap();
    cheap_setup(dir.path(), USERS, "audit:\n  path: audit.jsonl\n");
    let audit = dir.path().join("audit.jsonl");
    let server = Server::start(dir.path()).await;
    for (user, password) in [("alice", "alice-pw"), ("bob", "bob-pw")] {
        let token = server.login(user, password).await.token;
        enroll(&server, &token).await;
        assert!(asks_for_a_code(&server, user, password).await, "{user} enrolled");
    }

    let reset = sessiond(dir.path(), &["users", "totp-reset", "alice"]).await;
    assert_eq!(reset.ok(), "TOTP of alice removed; their next sign-in asks for the password only\n");
    assert!(!asks_for_a_code(&server, "alice", "alice-pw").await, "the password alone signs alice in");
    assert!(asks_for_a_code(&server, "bob", "bob-pw").await, "bob keeps his");
    let reset = ("alice".to_owned(), "reset".to_owned(), "cli".to_owned());
    let events = totp_events(&audit);
    assert_eq!(events.len(), 3, "two enrollments and the reset: {events:?}");
    assert_eq!(events[2], reset, "written before the command returns");

    let again = sessiond(dir.path(), &["users", "totp-reset", "alice"]).await;
    assert_eq!(again.ok(), "alice had no TOTP\n", "nothing to remove is no failure");
    assert_eq!(totp_events(&audit).len(), 3, "and no event");
    let json = sessiond(dir.path(), &["users", "totp-reset", "--json", "bob"]).await.json();
    assert_eq!(json, json!({"user": "bob", "totp_removed": true}));
    let json = sessiond(dir.path(), &["--json", "users", "totp-reset", "bob"]).await.json();
    assert_eq!(json, json!({"user": "bob", "totp_removed": false}));
    assert_eq!(totp_events(&audit).last().unwrap().0, "bob");

    // A fresh authenticator can be enrolled afterwards.
    let token = server.login("alice", "alice-pw").await.token;
    enroll(&server, &token).await;
    assert!(asks_for_a_code(&server, "alice", "alice-pw").await);
}

#[tokio::test]
async fn totp_reset_works_on_a_stopped_server_and_refuses_bad_input() {
    let dir = tempfile::tempdir().unwrap();
    cheap_setup(dir.path(), USERS, "");
    let server = Server::start(dir.path()).await;
    let token = server.login("alice", "alice-pw").await.token;
    enroll(&server, &token).await;
    let (status, _) = server.stop().await;
    assert_eq!(status.code(), Some(0));

    let reset = sessiond(dir.path(), &["users", "totp-reset", "--json", "alice"]).await;
    assert_eq!(reset.json(), json!({"user": "alice", "totp_removed": true}), "straight on the store");
    let server = Server::start(dir.path()).await;
    assert!(!asks_for_a_code(&server, "alice", "alice-pw").await, "reset while stopped stays reset");

    let usage = sessiond(dir.path(), &["users", "totp-reset"]).await;
    assert_eq!(usage.code, 2, "no name is a usage error: {}", usage.stderr);
    let help = sessiond(dir.path(), &["users", "totp-reset", "--help"]).await;
    assert!(help.ok().contains("lost phone"), "{}", help.stdout);
    sessiond(dir.path(), &["users", "totp-reset", ""]).await.fails(1, &["invalid user"]);
    sessiond(dir.path(), &["users", "totp-reset", "a\u{7}b"]).await.fails(1, &["invalid user"]);
}

#[tokio::test]
async fn reauth_window_is_what_the_running_server_asks_of_sensitive_actions() {
    let dir = tempfile::tempdir().unwrap();
    cheap_setup(dir.path(), USERS, "server:\n  reauth_window: 1s\n");
    let server = Server::start(dir.path()).await;
    let token = server.login("alice", "alice-pw").await.token;
    // Sign-in times count in seconds: two seconds later, one second is surely over.
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let refused = begin_enrollment(&server, &token, &json!({})).await;
    assert_eq!(error_code(refused).await, (401, "reauthentication_required".to_owned()));
    let with_password = begin_enrollment(&server, &token, &json!({"password": "alice-pw"})).await;
    assert_eq!(with_password.status(), 200);
}

/// Starts a journey (`POST /api/v1/authenticate` with an empty body): the `auth_id` and the
/// journey cookie's `Set-Cookie`.
async fn start_journey(server: &Server) -> (String, String) {
    let res = server.post("/api/v1/authenticate", &json!({})).await;
    assert_eq!(res.status(), 200);
    let cookies = set_cookies(res.headers(), &format!("{}_authn", server.cookie_name));
    assert_eq!(cookies.len(), 1, "{cookies:?}");
    let body: Value = res.json().await.unwrap();
    (body["auth_id"].as_str().unwrap().to_owned(), cookies[0].clone())
}

/// Runs the password step of the journey `auth_id` for alice: the status.
async fn password_step(server: &Server, auth_id: &str) -> u16 {
    let mut body = login_body("alice", "alice-pw");
    body["auth_id"] = json!(auth_id);
    server.post("/api/v1/authenticate", &body).await.status().as_u16()
}

#[tokio::test]
async fn journey_settings_reach_the_running_server() {
    // The defaults: in the store, one use per auth_id, five minutes.
    let dir = tempfile::tempdir().unwrap();
    cheap_setup(dir.path(), USERS, "");
    let server = Server::start(dir.path()).await;
    let (auth_id, cookie) = start_journey(&server).await;
    assert_eq!(auth_id.len(), 43, "256 random bits: {auth_id}");
    assert_eq!(attr(&cookie, "Max-Age"), Some("300"), "{cookie}");
    assert_eq!(password_step(&server, &auth_id).await, 200);
    assert_eq!(password_step(&server, &auth_id).await, 401, "the journey ended with its session");
    drop(server);

    // Sealed into the auth_id, without allowlisting: the weaker mode lets an auth_id be used
    // again until the timeout.
    let dir = tempfile::tempdir().unwrap();
    let journeys =
        "realms:\n  main:\n    journeys:\n      location: client\n      allowlisting: false\n      timeout: 1m\n";
    cheap_setup(dir.path(), USERS, journeys);
    let server = Server::start(dir.path()).await;
    let (auth_id, cookie) = start_journey(&server).await;
    assert!(auth_id.len() > 100, "the state itself, sealed: {auth_id}");
    assert_eq!(attr(&cookie, "Max-Age"), Some("60"), "the cookie lives as long as the journey: {cookie}");
    assert_eq!(password_step(&server, &auth_id).await, 200);
    assert_eq!(password_step(&server, &auth_id).await, 200, "replayed, and accepted");
}
