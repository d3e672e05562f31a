use crate::support::*;
use serde_json::{Value, json};
use sessiond_store::{SessionFilter, Store};

#[tokio::test]
async fn journey_starts_with_callbacks_and_completes_with_auth_id() {
    let s = TestServer::start().await;
    let start: Value = s.post("/api/v1/authenticate", json!({})).await.json().await.unwrap();
    let auth_id = start["auth_id"].as_str().unwrap();
    let kinds: Vec<&str> = start["callbacks"].as_array().unwrap().iter().map(|c| c["type"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["username", "password", "remember_me"]);

    let mut body = login_body("alice", "alice-pw", false);
    body["auth_id"] = json!(auth_id);
    let res = s.post("/api/v1/authenticate", body).await;
    assert_eq!(res.status(), 200);
    let cookies = session_cookies(res.headers());
    let done: Value = res.json().await.unwrap();
    assert_eq!(done["session"]["user"], "alice");
    assert_eq!(done["session"]["amr"], json!(["pwd"]));
    assert_eq!(done["session"]["current"], true);
    let token = done["session_token"].as_str().unwrap();
    assert_eq!(token.len(), 43);
    assert_eq!(cookies.len(), 1);
    assert!(cookies[0].starts_with(&format!("{COOKIE}={token};")));
    assert!(done.to_string().matches(token).count() == 1, "token only in session_token");
}

#[tokio::test]
async fn empty_body_starts_a_journey_too() {
    let s = TestServer::start().await;
    let res = s.client.post(s.url("/api/v1/authenticate")).send().await.unwrap();
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.unwrap();
    assert!(body["auth_id"].is_string());
}

#[tokio::test]
async fn session_cookie_has_the_promised_attributes() {
    let s = TestServer::start().await;
    let res = s.post("/api/v1/authenticate", login_body("alice", "alice-pw", false)).await;
    let cookie = &session_cookies(res.headers())[0];
    assert_eq!(attr(cookie, "Path"), Some("/"));
    assert!(attr(cookie, "HttpOnly").is_some());
    assert_eq!(attr(cookie, "SameSite"), Some("Lax"));
    assert!(attr(cookie, "Secure").is_none(), "plain http on 127.0.0.1 is not Secure");
    assert!(attr(cookie, "Domain").is_none(), "host-only without a realm domain");
    // The idle deadline (5m) comes before the absolute one (1h).
    assert_eq!(attr(cookie, "Max-Age"), Some("300"));
    assert_eq!(res.headers()["cache-control"], "no-store");
}

#[tokio::test]
async fn wrong_password_unknown_and_disabled_users_are_refused_alike() {
    let s = TestServer::start().await;
    for (user, pw) in [("alice", "wrong"), ("nobody", "alice-pw"), ("mallory", "mallory-pw")] {
        let res = s.post("/api/v1/authenticate", login_body(user, pw, false)).await;
        assert!(session_cookies(res.headers()).is_empty());
        assert_eq!(error_code(res).await, (401, "invalid_credentials".into()), "{user}");
    }
    let all = s.store.list_sessions(&SessionFilter::default()).await.unwrap();
    assert!(all.is_empty(), "a failed login creates no session");
}

#[tokio::test]
async fn tampered_or_expired_auth_id_is_refused() {
    let s = TestServer::start().await;
    let start: Value = s.post("/api/v1/authenticate", json!({})).await.json().await.unwrap();
    let auth_id = start["auth_id"].as_str().unwrap().to_owned();
    let mut tampered = auth_id.clone();
    tampered.replace_range(0..1, if tampered.starts_with('A') { "B" } else { "A" });
    for id in [tampered, "garbage".into()] {
        let mut body = login_body("alice", "alice-pw", false);
        body["auth_id"] = json!(id);
        assert_eq!(error_code(s.post("/api/v1/authenticate", body).await).await, (401, "journey_expired".into()));
    }
    s.advance(301);
    let mut body = login_body("alice", "alice-pw", false);
    body["auth_id"] = json!(auth_id);
    assert_eq!(error_code(s.post("/api/v1/authenticate", body).await).await, (401, "journey_expired".into()));
}

#[tokio::test]
async fn token_is_accepted_from_body_bearer_header_and_cookie() {
    let s = TestServer::start().await;
    let token = s.login("alice", "alice-pw", false).await;
    let by_body = s.post("/api/v1/sessions/authenticate", json!({"session_token": token})).await;
    assert_eq!(by_body.status(), 200);
    let body: Value = by_body.json().await.unwrap();
    assert_eq!(body["user"]["name"], "alice");
    assert_eq!(body["user"]["groups"], json!(["dev"]));
    assert!(!body.to_string().contains(&token), "the answer never repeats the token");

    let by_bearer = s.client.post(s.url("/api/v1/sessions/authenticate")).bearer_auth(&token).send().await.unwrap();
    assert_eq!(by_bearer.status(), 200);
    let by_header = s.client.get(s.url("/api/v1/sessions/current")).header(COOKIE, &token).send().await.unwrap();
    assert_eq!(by_header.status(), 200);
    assert_eq!(s.get_with_cookie("/api/v1/sessions/current", &token).await.status(), 200);
}

#[tokio::test]
async fn unknown_token_in_a_cookie_is_refused_and_the_cookie_deleted() {
    let s = TestServer::start().await;
    let stranger = sessiond_core::token::SessionToken::generate().expose();
    let res = s.get_with_cookie("/api/v1/sessions/current", &stranger).await;
    let cookies = session_cookies(res.headers());
    assert_eq!(cookies.len(), 1);
    assert_eq!(attr(&cookies[0], "Max-Age"), Some("0"));
    assert_eq!(error_code(res).await, (401, "unauthenticated".into()));
    let res = s.post("/api/v1/sessions/authenticate", json!({"session_token": stranger})).await;
    assert_eq!(error_code(res).await, (401, "unauthenticated".into()));
}

#[tokio::test]
async fn a_new_login_ends_the_session_it_came_with() {
    let s = TestServer::start().await;
    let planted = s.login("bob", "bob-pw", false).await;
    let res = s
        .client
        .post(s.url("/api/v1/authenticate"))
        .header("cookie", format!("{COOKIE}={planted}"))
        .json(&login_body("alice", "alice-pw", false))
        .send()
        .await
        .unwrap();
    let body: Value = res.json().await.unwrap();
    let fresh = body["session_token"].as_str().unwrap();
    assert_ne!(fresh, planted);
    assert_eq!(s.get_with_token("/api/v1/sessions/current", &planted).await.status(), 401);
    assert_eq!(s.get_with_token("/api/v1/sessions/current", fresh).await.status(), 200);
}

#[tokio::test]
async fn logout_ends_the_session_and_deletes_the_cookie() {
    let s = TestServer::start().await;
    let token = s.login("alice", "alice-pw", false).await;
    let res = s
        .client
        .delete(s.url("/api/v1/sessions/current"))
        .header("cookie", format!("{COOKIE}={token}"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 204);
    let cookies = session_cookies(res.headers());
    assert_eq!(attr(&cookies[0], "Max-Age"), Some("0"));
    assert_eq!(attr(&cookies[0], "Path"), Some("/"));
    assert_eq!(s.get_with_token("/api/v1/sessions/current", &token).await.status(), 401);
}

async fn list(s: &TestServer, token: &str, query: &str) -> reqwest::Response {
    s.get_with_token(&format!("/api/v1/sessions{query}"), token).await
}

#[tokio::test]
async fn users_list_their_own_sessions_and_admins_anyone() {
    let s = TestServer::start().await;
    let a1 = s.login("alice", "alice-pw", false).await;
    let _a2 = s.login("alice", "alice-pw", true).await;
    let _b = s.login("bob", "bob-pw", false).await;
    let root = s.login("root", "root-pw", false).await;

    let mine: Value = list(&s, &a1, "").await.json().await.unwrap();
    let sessions = mine["sessions"].as_array().unwrap();
    assert_eq!(sessions.len(), 2);
    assert!(sessions.iter().all(|x| x["user"] == "alice"));
    assert_eq!(sessions.iter().filter(|x| x["current"] == true).count(), 1);
    for key in [
        "id",
        "realm",
        "user",
        "display_name",
        "email",
        "groups",
        "amr",
        "created_at",
        "last_seen_at",
        "expires_at",
        "remember_me",
        "ip",
        "user_agent",
        "current",
    ] {
        assert!(sessions[0].get(key).is_some(), "Session has {key}");
    }
    assert_eq!(sessions[0]["ip"], "127.0.0.1");
    assert!(sessions[0]["created_at"].as_str().unwrap().ends_with('Z'));

    assert_eq!(error_code(list(&s, &a1, "?user=bob").await).await, (403, "forbidden".into()));
    let bobs: Value = list(&s, &root, "?user=bob").await.json().await.unwrap();
    assert_eq!(bobs["sessions"].as_array().unwrap().len(), 1);
    assert_eq!(error_code(list(&s, &a1, "?colour=red").await).await.0, 400);
}

#[tokio::test]
async fn a_session_is_ended_by_id_by_its_owner_or_an_admin_only() {
    let s = TestServer::start().await;
    let alice = s.login("alice", "alice-pw", false).await;
    let alice2 = s.login("alice", "alice-pw", false).await;
    let bob = s.login("bob", "bob-pw", false).await;
    let root = s.login("root", "root-pw", false).await;
    let id_of = |v: Value| v["session"]["id"].as_str().unwrap().to_owned();
    let alice2_id = id_of(s.get_with_token("/api/v1/sessions/current", &alice2).await.json().await.unwrap());
    let bob_id = id_of(s.get_with_token("/api/v1/sessions/current", &bob).await.json().await.unwrap());

    let del =
        |token: &str, id: &str| s.client.delete(s.url(&format!("/api/v1/sessions/{id}"))).bearer_auth(token).send();
    assert_eq!(error_code(del(&alice, &bob_id).await.unwrap()).await, (404, "not_found".into()));
    assert_eq!(s.get_with_token("/api/v1/sessions/current", &bob).await.status(), 200, "bob untouched");
    assert_eq!(del(&alice, &alice2_id).await.unwrap().status(), 204);
    assert_eq!(s.get_with_token("/api/v1/sessions/current", &alice2).await.status(), 401);
    assert_eq!(del(&root, &bob_id).await.unwrap().status(), 204);
    assert_eq!(s.get_with_token("/api/v1/sessions/current", &bob).await.status(), 401);
    assert_eq!(error_code(del(&root, "not-an-id").await.unwrap()).await.0, 404);
    // The public id is never a credential.
    assert_eq!(s.get_with_token("/api/v1/sessions/current", &alice2_id).await.status(), 401);
}

#[tokio::test]
async fn sign_out_everywhere_else_keeps_only_the_current_session() {
    let s = TestServer::start().await;
    let keep = s.login("alice", "alice-pw", false).await;
    let other = s.login("alice", "alice-pw", false).await;
    let bob = s.login("bob", "bob-pw", false).await;
    let res = s
        .client
        .post(s.url("/api/v1/sessions/revoke"))
        .bearer_auth(&keep)
        .json(&json!({"except_current": true}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.json::<Value>().await.unwrap()["revoked"], 1);
    assert_eq!(s.get_with_token("/api/v1/sessions/current", &keep).await.status(), 200);
    assert_eq!(s.get_with_token("/api/v1/sessions/current", &other).await.status(), 401);
    assert_eq!(s.get_with_token("/api/v1/sessions/current", &bob).await.status(), 200);

    let res = s
        .client
        .post(s.url("/api/v1/sessions/revoke"))
        .bearer_auth(&keep)
        .json(&json!({"user": "bob"}))
        .send()
        .await
        .unwrap();
    assert_eq!(error_code(res).await, (403, "forbidden".into()));
}

#[tokio::test]
async fn admins_revoke_all_sessions_of_a_user() {
    let s = TestServer::start().await;
    let root = s.login("root", "root-pw", false).await;
    let b1 = s.login("bob", "bob-pw", false).await;
    let b2 = s.login("bob", "bob-pw", true).await;
    let res = s
        .client
        .post(s.url("/api/v1/sessions/revoke"))
        .bearer_auth(&root)
        .json(&json!({"user": "bob"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.json::<Value>().await.unwrap()["revoked"], 2);
    for t in [b1, b2] {
        assert_eq!(s.get_with_token("/api/v1/sessions/current", &t).await.status(), 401);
    }
    assert_eq!(s.get_with_token("/api/v1/sessions/current", &root).await.status(), 200);
}

#[tokio::test]
async fn admins_create_sessions_for_users_authenticated_elsewhere() {
    let s = TestServer::start().await;
    let root = s.login("root", "root-pw", false).await;
    let alice = s.login("alice", "alice-pw", false).await;
    let body =
        json!({"user": "sso-user", "groups": ["ops"], "email": "sso@example.test", "attributes": {"tenant": "acme"}});
    let res = s.client.post(s.url("/api/v1/sessions")).bearer_auth(&alice).json(&body).send().await.unwrap();
    assert_eq!(error_code(res).await, (403, "forbidden".into()));
    let res = s.client.post(s.url("/api/v1/sessions")).bearer_auth(&root).json(&body).send().await.unwrap();
    assert_eq!(res.status(), 201);
    assert!(session_cookies(res.headers()).is_empty(), "no cookie lands on the admin's client");
    let created: Value = res.json().await.unwrap();
    let token = created["session_token"].as_str().unwrap();
    let current: Value = s.get_with_token("/api/v1/sessions/current", token).await.json().await.unwrap();
    assert_eq!(current["user"]["name"], "sso-user");
    assert_eq!(current["session"]["attributes"]["tenant"], "acme");
}

#[tokio::test]
async fn disabling_a_user_in_the_users_file_ends_their_sessions() {
    let s = TestServer::start().await;
    let token = s.login("alice", "alice-pw", false).await;
    let mut users = default_users();
    users.users.get_mut("alice").unwrap().disabled = true;
    users.write(&s.users_path).unwrap();
    // Make sure the modification time moves even on coarse file systems.
    let f = std::fs::File::options().write(true).open(&s.users_path).unwrap();
    f.set_modified(std::time::SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(12345)).unwrap();
    // The background reload is what production relies on; here the verify path alone must refuse.
    let res = s.get_with_token("/api/v1/sessions/current", &token).await;
    assert_eq!(res.status(), 200, "not reloaded yet");
    sessiond_server_reload(&s).await;
    assert_eq!(s.get_with_token("/api/v1/sessions/current", &token).await.status(), 401);
    assert_eq!(error_code(s.post("/api/v1/authenticate", login_body("alice", "alice-pw", false)).await).await.0, 401);
}

async fn sessiond_server_reload(s: &TestServer) {
    // One pass of the background work, through its public entry point.
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let app = s.app.clone();
    let task = tokio::spawn(sessiond_server::background(app, std::time::Duration::from_millis(10), async move {
        let _ = rx.await;
    }));
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    let _ = tx.send(());
    task.await.unwrap();
}

#[tokio::test]
async fn health_and_readiness_answer() {
    let s = TestServer::start().await;
    assert_eq!(s.client.get(s.url("/healthz")).send().await.unwrap().status(), 200);
    let ready: Value = s.client.get(s.url("/readyz")).send().await.unwrap().json().await.unwrap();
    assert_eq!(ready["store"], "memory");
}

#[tokio::test]
async fn three_failures_ban_the_user_for_five_minutes_even_with_the_right_password() {
    let s = TestServer::start().await;
    for _ in 0..3 {
        let res = s.post("/api/v1/authenticate", login_body("alice", "wrong", false)).await;
        assert_eq!(error_code(res).await.0, 401);
    }
    let res = s.post("/api/v1/authenticate", login_body("alice", "alice-pw", false)).await;
    assert!(session_cookies(res.headers()).is_empty());
    assert_eq!(error_code(res).await, (429, "too_many_attempts".into()));
    // Other users are not affected.
    s.login("bob", "bob-pw", false).await;
    s.advance(299);
    assert_eq!(error_code(s.post("/api/v1/authenticate", login_body("alice", "alice-pw", false)).await).await.0, 429);
    s.advance(1);
    s.login("alice", "alice-pw", false).await;
}

#[tokio::test]
async fn unknown_users_are_regulated_like_known_ones() {
    let s = TestServer::start().await;
    for _ in 0..3 {
        s.post("/api/v1/authenticate", login_body("ghost", "x", false)).await;
    }
    let res = s.post("/api/v1/authenticate", login_body("ghost", "x", false)).await;
    assert_eq!(error_code(res).await, (429, "too_many_attempts".into()));
}

#[tokio::test]
async fn security_events_reach_the_audit_log_without_secrets() {
    let s = TestServer::start().await;
    let _ = s.post("/api/v1/authenticate", login_body("alice", "wrong-pw-123", false)).await;
    let token = s.login("alice", "alice-pw", false).await;
    let res = s.client.delete(s.url("/api/v1/sessions/current")).bearer_auth(&token).send().await.unwrap();
    assert_eq!(res.status(), 204);
    let text = std::fs::read_to_string(&s.audit_path).unwrap();
    assert!(!text.contains(&token) && !text.contains("alice-pw") && !text.contains("wrong-pw-123"));
    let events: Vec<Value> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let kinds: Vec<&str> = events.iter().map(|e| e["event"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["login_failed", "login_succeeded", "logout"]);
    assert_eq!(events[0]["reason"], "invalid_credentials");
    assert_eq!(events[1]["ip"], "127.0.0.1");
    assert_eq!(events[1]["session_id"], events[2]["session_id"]);
}

#[tokio::test]
async fn openapi_document_is_served_and_describes_the_session_api() {
    let s = TestServer::start().await;
    let res = s.client.get(s.url("/api/openapi.json")).send().await.unwrap();
    assert_eq!(res.status(), 200);
    assert!(res.headers()["content-type"].to_str().unwrap().starts_with("application/json"));
    let doc: Value = res.json().await.unwrap();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    let login = &doc["paths"]["/api/v1/authenticate"]["post"];
    assert!(login["responses"]["200"].is_object());
    assert_eq!(doc["components"]["schemas"]["Error"]["required"], json!(["error", "message"]));
}
