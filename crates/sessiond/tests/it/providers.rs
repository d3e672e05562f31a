//! Login providers on the real binary: a `header` provider from `authentication.providers`
//! signs in the user a trusted proxy names, through the portal and the API, and refuses the
//! same headers from a peer outside `server.trusted_proxies`.

use crate::support::*;
use serde_json::{Value, json};

const USERS: &[(&str, &str, &[&str])] = &[("alice", "alice-pw", &["dev"])];

/// A configuration with the header provider `corp`, trusting `trusted` (CIDR ranges).
fn setup(dir: &std::path::Path, trusted: &str) {
    let extra = format!(
        "server:\n  trusted_proxies: [{trusted}]\n\
         authentication:\n  providers:\n    - id: corp\n      kind: header\n      label: Corporate SSO\n\
         audit:\n  path: audit.jsonl\n"
    );
    cheap_setup(dir, USERS, &extra);
}

/// `GET /login/corp` as the SSO proxy would send it, naming bob in groups dev and ops.
async fn through_the_proxy(server: &Server) -> reqwest::Response {
    server
        .client
        .get(server.url("/login/corp"))
        .header("Remote-User", "bob")
        .header("Remote-Groups", "dev,ops")
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn a_trusted_proxy_signs_its_user_in_as_a_user_of_the_provider() {
    let dir = tempfile::tempdir().unwrap();
    setup(dir.path(), "127.0.0.1/32");
    let server = Server::start(dir.path()).await;

    let page = server.client.get(server.url("/login")).send().await.unwrap().text().await.unwrap();
    assert!(page.contains("/login/corp") && page.contains("Corporate SSO"), "a button for the provider: {page}");

    let res = through_the_proxy(&server).await;
    assert_eq!(res.status(), 303);
    assert_eq!(res.headers()["location"], "/");
    let cookies = set_cookies(res.headers(), &server.cookie_name);
    assert_eq!(cookies.len(), 1, "a session cookie: {cookies:?}");
    let cookie = cookies[0].split(';').next().unwrap().to_owned();
    let res = server.client.get(server.url("/api/v1/sessions/current")).header("cookie", &cookie).send().await.unwrap();
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.unwrap();
    let session = &body["session"];
    assert_eq!(session["user"], "corp:bob", "named with the provider: never the users file's bob");
    assert_eq!(session["groups"], json!(["dev", "ops"]));
    assert_eq!(session["amr"], json!(["header"]));

    let res = server
        .client
        .post(server.url("/api/v1/authenticate?journey=corp"))
        .header("Remote-User", "bob")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["session"]["user"], "corp:bob", "{body}");
    assert_eq!(body["session"]["amr"], json!(["header"]));
    assert!(body["session_token"].is_string(), "{body}");
}

#[tokio::test]
async fn identity_headers_from_a_peer_outside_trusted_proxies_are_refused_and_audited() {
    let dir = tempfile::tempdir().unwrap();
    setup(dir.path(), "10.0.0.0/8");
    let server = Server::start(dir.path()).await;

    let res = through_the_proxy(&server).await;
    assert_eq!(res.status(), 403);
    assert!(set_cookies(res.headers(), &server.cookie_name).is_empty(), "no session");
    let res = server
        .client
        .post(server.url("/api/v1/authenticate?journey=corp"))
        .header("Remote-User", "bob")
        .send()
        .await
        .unwrap();
    assert_eq!(error_code(res).await, (403, "forbidden".to_owned()));

    let audit = std::fs::read_to_string(dir.path().join("audit.jsonl")).unwrap();
    let refusals: Vec<Value> = audit
        .lines()
        .map(|line| serde_json::from_str::<Value>(line).unwrap())
        .filter(|event| event["event"] == "login_failed")
        .collect();
    assert_eq!(refusals.len(), 2, "{audit}");
    for event in refusals {
        assert_eq!((&event["reason"], &event["user"]), (&json!("untrusted_identity_header"), &json!("bob")));
    }
}
