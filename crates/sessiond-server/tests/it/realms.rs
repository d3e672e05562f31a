//! Realms' cookie names changed at run time through the admin API: who may, which names are
//! refused, and that a change ends every session of the realm and takes effect at once.

use crate::support::*;
use serde_json::{Value, json};

async fn server() -> TestServer {
    TestServer::with(Options {
        cookie_name_in_store: true,
        other_realm: Some(("partners".into(), "partner.test".into())),
        ..Options::default()
    })
    .await
}

async fn put_name(s: &TestServer, token: &str, realm: &str, name: &str) -> reqwest::Response {
    let url = s.url(&format!("/api/v1/realms/{realm}/cookie-name"));
    s.client.put(url).bearer_auth(token).json(&json!({"name": name})).send().await.unwrap()
}

async fn reset_name(s: &TestServer, token: &str, realm: &str) -> reqwest::Response {
    s.client.delete(s.url(&format!("/api/v1/realms/{realm}/cookie-name"))).bearer_auth(token).send().await.unwrap()
}

#[tokio::test]
async fn renaming_ends_every_session_and_the_new_name_carries_new_ones() {
    let s = server().await;
    let alice = s.login("alice", "alice-pw", false).await;
    let root = s.login("root", "root-pw", false).await;
    let res = put_name(&s, &root, "main", "acme_session").await;
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.unwrap();
    assert_eq!(
        body,
        json!({"realm": "main", "cookie_name": "acme_session", "default_cookie_name": false, "sessions_ended": 2})
    );
    assert_eq!(s.get_with_token("/api/v1/sessions/current", &alice).await.status(), 401);
    assert_eq!(s.get_with_token("/api/v1/sessions/current", &root).await.status(), 401, "the admin's own too");

    let res = s.post("/api/v1/authenticate", login_body("alice", "alice-pw", false)).await;
    let set_cookie = res.headers().get("set-cookie").unwrap().to_str().unwrap().to_owned();
    assert!(set_cookie.starts_with("acme_session="), "{set_cookie}");
    let token = res.json::<Value>().await.unwrap()["session_token"].as_str().unwrap().to_owned();
    let by_cookie = s
        .client
        .get(s.url("/api/v1/sessions/current"))
        .header("cookie", format!("acme_session={token}"))
        .send()
        .await
        .unwrap();
    assert_eq!(by_cookie.status(), 200);
    let by_header =
        s.client.get(s.url("/api/v1/sessions/current")).header("acme_session", &token).send().await.unwrap();
    assert_eq!(by_header.status(), 200, "the header named like the cookie follows the new name");
    assert_eq!(
        s.get_with_cookie("/api/v1/sessions/current", &token).await.status(),
        401,
        "the old name is no longer ours"
    );

    // Resetting goes back to the realm's generated default and ends sessions again.
    let root = s.login("root", "root-pw", false).await;
    let body: Value = reset_name(&s, &root, "main").await.json().await.unwrap();
    assert_eq!(body, json!({"realm": "main", "cookie_name": COOKIE, "default_cookie_name": true, "sessions_ended": 2}));
    let again: Value = reset_name(&s, &s.login("root", "root-pw", false).await, "main").await.json().await.unwrap();
    assert_eq!(again["sessions_ended"], 0, "resetting to the name in force changes nothing");
    let audit = std::fs::read_to_string(&s.audit_path).unwrap();
    assert_eq!(audit.matches("\"cookie_name_changed\"").count(), 2, "{audit}");
}

#[tokio::test]
async fn only_admins_change_cookie_names_of_known_realms() {
    let s = server().await;
    let alice = s.login("alice", "alice-pw", false).await;
    assert_eq!(error_code(put_name(&s, &alice, "main", "acme").await).await, (403, "forbidden".into()));
    assert_eq!(error_code(reset_name(&s, &alice, "main").await).await, (403, "forbidden".into()));
    let root = s.login("root", "root-pw", false).await;
    assert_eq!(error_code(put_name(&s, &root, "nowhere", "acme").await).await, (404, "not_found".into()));
    let anonymous =
        s.client.put(s.url("/api/v1/realms/main/cookie-name")).json(&json!({"name": "x"})).send().await.unwrap();
    assert_eq!(anonymous.status(), 401);
    assert_eq!(s.get_with_token("/api/v1/sessions/current", &alice).await.status(), 200, "nothing changed");
}

#[tokio::test]
async fn invalid_and_colliding_names_are_refused_with_a_reason() {
    let s = server().await;
    let root = s.login("root", "root-pw", false).await;
    for name in [
        "bad name",
        "",
        "a;b",
        "__Host-sd",
        "__Secure-sd",
        "sd_jwt",
        "x_flash",
        "iPlanetDirectoryPro",
        OTHER_COOKIE,
        &"a".repeat(65),
    ] {
        let res = put_name(&s, &root, "main", name).await;
        let (status, code) = error_code(res).await;
        assert_eq!((status, code.as_str()), (400, "bad_request"), "{name:?}");
    }
    let res = s
        .client
        .put(s.url("/api/v1/realms/main/cookie-name"))
        .bearer_auth(&root)
        .json(&json!({"name": 7}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    assert_eq!(
        s.get_with_token("/api/v1/sessions/current", &root).await.status(),
        200,
        "no refused change ended anything"
    );
}

#[tokio::test]
async fn a_name_set_in_the_configuration_is_not_changed_behind_its_back() {
    let s = TestServer::start().await;
    let root = s.login("root", "root-pw", false).await;
    let res = put_name(&s, &root, "main", "acme").await;
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["error"], "conflict");
    assert!(body["message"].as_str().unwrap().contains("realms.main.cookie.name"), "{body}");
    assert_eq!(error_code(reset_name(&s, &root, "main").await).await.0, 409);
}

#[tokio::test]
async fn a_name_changed_elsewhere_is_followed() {
    let s = server().await;
    let alice = s.login("alice", "alice-pw", false).await;
    // Another instance (or the command line) renames the realm in the shared store.
    let change = sessiond_server::realms::CookieNameChange::Set("elsewhere".into());
    let outcome =
        sessiond_server::realms::change_cookie_name(&s.store, "main", &change, s.app.clock.now()).await.unwrap();
    assert_eq!(outcome.sessions_ended, Some(1));
    assert_eq!(s.app.realm("main").unwrap().cookie.name, COOKIE, "not yet followed");
    sessiond_server::realms::follow(&s.app).await;
    assert_eq!(s.app.realm("main").unwrap().cookie.name, "elsewhere");
    assert_eq!(s.get_with_token("/api/v1/sessions/current", &alice).await.status(), 401);
}
