//! API tokens over real HTTP: made and revoked through the session API, used as bearer tokens by
//! forward auth and by the admin endpoint that accepts them, refused everywhere else.

use crate::support::*;
use reqwest::header::HeaderMap;
use serde_json::{Value, json};
use sessiond_core::access::{AccessControl, Policy, Rule, RuleSpec};
use sessiond_core::api_token::ApiToken;
use sessiond_core::time::Timestamp;
use sessiond_server::clock::Clock as _;
use sessiond_store::{EntryKind, Store};

const AUTH_REQUEST: &str = "/api/authz/auth-request";
const FORWARD_AUTH: &str = "/api/authz/forward-auth";
const APP: &str = "app.example.test";

fn rule(domain: &str, resource: Option<&str>, subject: Option<&str>, policy: &str) -> Rule {
    Rule::parse(&RuleSpec {
        domain: Some(vec![domain.to_owned()]),
        resources: resource.map(|r| vec![r.to_owned()]),
        subject: subject.map(|s| vec![vec![s.to_owned()]]),
        policy: Some(policy.to_owned()),
        ..RuleSpec::default()
    })
    .unwrap()
}

fn rules() -> AccessControl {
    AccessControl::new(
        Policy::Deny,
        vec![
            rule(APP, Some("^/public(/|$)"), None, "bypass"),
            rule(APP, Some("^/ops(/|$)"), Some("group:admins"), "one_factor"),
            rule(APP, Some("^/ops(/|$)"), Some("group:ops"), "one_factor"),
            rule(APP, Some("^/ops(/|$)"), None, "deny"),
            rule(APP, Some("^/secure(/|$)"), None, "two_factor"),
            rule(APP, None, None, "one_factor"),
            rule("*.other.test", None, None, "one_factor"),
        ],
    )
}

async fn server() -> TestServer {
    TestServer::with(Options {
        trusted_proxies: vec!["127.0.0.1/32".parse().unwrap()],
        access: Some(rules()),
        other_realm: Some(("partners".into(), "other.test".into())),
        ..Options::default()
    })
    .await
}

/// `POST /api/v1/tokens` as the holder of `session`; the answer's status and body.
async fn create(s: &TestServer, session: &str, body: Value) -> (u16, Value) {
    let res = s.client.post(s.url("/api/v1/tokens")).bearer_auth(session).json(&body).send().await.unwrap();
    let status = res.status().as_u16();
    assert!(session_cookies(res.headers()).is_empty(), "making a token sets no session cookie");
    (status, res.json().await.unwrap())
}

/// A token `name` of the holder of `session`; returns `(id, token)`.
async fn token(s: &TestServer, session: &str, name: &str) -> (String, String) {
    let (status, body) = create(s, session, json!({"name": name})).await;
    assert_eq!(status, 201, "{body}");
    (body["id"].as_str().unwrap().to_owned(), body["token"].as_str().unwrap().to_owned())
}

async fn list(s: &TestServer, session: &str, query: &str) -> reqwest::Response {
    s.get_with_token(&format!("/api/v1/tokens{query}"), session).await
}

async fn tokens(s: &TestServer, session: &str) -> Vec<Value> {
    let res = list(s, session, "").await;
    assert_eq!(res.status(), 200);
    res.json::<Value>().await.unwrap()["tokens"].as_array().unwrap().clone()
}

async fn revoke(s: &TestServer, session: &str, id: &str) -> reqwest::Response {
    s.client.delete(s.url(&format!("/api/v1/tokens/{id}"))).bearer_auth(session).send().await.unwrap()
}

/// Forward auth (nginx) for `https://app.example.test{path}` with `Authorization: <auth>` and any
/// extra headers. Every answer has an empty body and sets no cookie.
async fn authz(s: &TestServer, host: &str, path: &str, auth: &str, extra: &[(&str, &str)]) -> (u16, HeaderMap) {
    let mut request = s
        .client
        .get(s.url(AUTH_REQUEST))
        .header("x-original-url", format!("https://{host}{path}"))
        .header("authorization", auth);
    for (name, value) in extra {
        request = request.header(*name, *value);
    }
    let res = request.send().await.unwrap();
    let (status, headers) = (res.status().as_u16(), res.headers().clone());
    assert!(res.bytes().await.unwrap().is_empty(), "authz answers have an empty body");
    assert!(headers.get("set-cookie").is_none(), "an API token never gets a cookie");
    (status, headers)
}

async fn pass(s: &TestServer, path: &str, token: &str) -> (u16, HeaderMap) {
    authz(s, APP, path, &format!("Bearer {token}"), &[]).await
}

fn audit_events(s: &TestServer) -> Vec<Value> {
    let text = std::fs::read_to_string(&s.audit_path).unwrap_or_default();
    text.lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

#[tokio::test]
async fn the_token_is_shown_once_at_creation_and_only_its_hash_is_stored() {
    let s = server().await;
    let alice = s.login("alice", "alice-pw", false).await;
    let (status, created) = create(&s, &alice, json!({"name": "deploy", "expires": "90d"})).await;
    assert_eq!(status, 201, "{created}");
    let token = created["token"].as_str().unwrap();
    assert!(ApiToken::parse(token).is_ok(), "{token}");
    assert_eq!(created["name"], "deploy");
    assert_eq!(created["user"], "alice");
    let expires = Timestamp::from_unix(START + 90 * 86_400).rfc3339();
    assert_eq!(created["expires_at"], expires.as_str());

    let listed = tokens(&s, &alice).await;
    assert_eq!(listed.len(), 1);
    let entry = listed[0].as_object().unwrap();
    let mut keys: Vec<&str> = entry.keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(keys, ["created_at", "expires_at", "id", "last_used_at", "name", "realm", "user"]);
    assert_eq!(entry["id"], created["id"]);
    assert_eq!(entry["created_at"], Timestamp::from_unix(START).rfc3339().as_str());
    assert_eq!(entry["last_used_at"], Value::Null);
    assert_eq!(entry["expires_at"], expires.as_str());
    let secret = &token["sdat_".len()..];
    assert!(!Value::Array(listed).to_string().contains(secret), "the list never shows the token");

    let stored = s.store.list_entries(EntryKind::ApiToken, s.clock.now()).await.unwrap();
    assert_eq!(stored.len(), 1);
    let hash = ApiToken::parse(token).unwrap().hash();
    assert_eq!(stored[0].key, sessiond_core::api_token::store_key(&hash));
    assert!(!String::from_utf8_lossy(&stored[0].value).contains(secret), "only the hash is at rest");
    assert_eq!(stored[0].expires_at, Some(Timestamp::from_unix(START + 90 * 86_400)));

    let events = audit_events(&s);
    let made = events.iter().find(|e| e["event"] == "token_created").expect("an audit event");
    assert_eq!((&made["user"], &made["token_id"]), (&json!("alice"), &created["id"]));
    assert!(!events.iter().any(|e| e.to_string().contains(secret)), "the audit log never holds the token");
}

#[tokio::test]
async fn names_and_lifetimes_are_checked() {
    let s = server().await;
    let alice = s.login("alice", "alice-pw", false).await;
    for body in [
        json!({}),
        json!({"name": ""}),
        json!({"name": "x".repeat(65)}),
        json!({"name": "bad\nname"}),
        json!({"name": "<b>"}),
        json!({"name": "ok", "expires": "0"}),
        json!({"name": "ok", "expires": "-1"}),
        json!({"name": "ok", "expires": "5x"}),
        json!({"name": "ok", "expires": "1000y"}),
        json!({"name": "ok", "expires": 90}),
        json!({"name": "ok", "user": "root"}),
    ] {
        let (status, answer) = create(&s, &alice, body.clone()).await;
        assert_eq!((status, answer["error"].as_str()), (400, Some("bad_request")), "{body} -> {answer}");
    }
    assert!(tokens(&s, &alice).await.is_empty(), "refused requests make nothing");
    let (status, never) = create(&s, &alice, json!({"name": "ci/prod-1", "expires": null})).await;
    assert_eq!((status, &never["expires_at"]), (201, &Value::Null));
}

#[tokio::test]
async fn a_token_passes_forward_auth_as_its_user_with_identity_headers() {
    let s = server().await;
    let alice = s.login("alice", "alice-pw", false).await;
    let (_, token) = token(&s, &alice, "deploy").await;
    let (status, headers) = pass(&s, "/docs", &token).await;
    assert_eq!(status, 200);
    assert_eq!(headers["remote-user"], "alice");
    assert_eq!(headers["remote-groups"], "dev");
    assert_eq!(headers["remote-email"], "user@example.test");
    assert_eq!(headers["remote-name"], "Test User");
    assert_eq!(pass(&s, "/ops", &token).await.0, 403, "rules apply to the token's user");
    assert_eq!(pass(&s, "/secure", &token).await.0, 403, "a token never carries a second factor");
    assert_eq!(pass(&s, "/public", &token).await.0, 200);

    let root = s.login("root", "root-pw", false).await;
    let (_, admin) = self::token(&s, &root, "ops").await;
    let (status, headers) = pass(&s, "/ops", &admin).await;
    assert_eq!(status, 200);
    assert_eq!(headers["remote-groups"], "admins");
    assert_eq!(
        authz(&s, "x.other.test", "/", &format!("Bearer {admin}"), &[]).await.0,
        401,
        "tokens keep to their realm"
    );

    // Traefik's forward auth gives a script no redirect to the login page.
    let res = s
        .client
        .get(s.url(FORWARD_AUTH))
        .header("x-forwarded-proto", "https")
        .header("x-forwarded-host", APP)
        .header("x-forwarded-uri", "/docs")
        .header("x-forwarded-method", "GET")
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!((res.status().as_u16(), res.headers()["remote-user"].to_str().unwrap()), (200, "alice"));
}

#[tokio::test]
async fn revoked_expired_unknown_and_malformed_tokens_are_401_never_200() {
    let s = server().await;
    let alice = s.login("alice", "alice-pw", false).await;
    let (id, token) = token(&s, &alice, "deploy").await;
    let (_, short) = create(&s, &alice, json!({"name": "short", "expires": "1h"})).await;
    let short = short["token"].as_str().unwrap().to_owned();
    assert_eq!(pass(&s, "/docs", &short).await.0, 200);

    assert_eq!(revoke(&s, &alice, &id).await.status(), 204);
    assert_eq!(pass(&s, "/docs", &token).await.0, 401, "a revoked token stops at once");
    assert_eq!(pass(&s, "/public", &token).await.0, 401, "even where no sign-in is needed");
    assert_eq!(revoke(&s, &alice, &id).await.status(), 404, "revoked once");

    s.advance(3599);
    assert_eq!(pass(&s, "/docs", &short).await.0, 200);
    s.advance(1);
    assert_eq!(pass(&s, "/docs", &short).await.0, 401, "expired at its deadline");
    let alice = s.login("alice", "alice-pw", false).await;
    assert!(tokens(&s, &alice).await.is_empty(), "neither is listed");

    let unknown = ApiToken::generate().expose();
    let mut malformed = vec![
        format!("Bearer {unknown}"),
        format!("Bearer {}", &unknown[..30]),
        format!("Bearer {}", unknown.to_uppercase()),
        format!("Bearer {unknown}x"),
        "Bearer sdat_".to_owned(),
        "Bearer sdat_!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!".to_owned(),
        format!("Token {unknown}"),
        unknown.clone(),
    ];
    // The last spare bits set: the same bytes, a second spelling.
    let mut spelled = unknown.clone().into_bytes();
    *spelled.last_mut().unwrap() = if spelled.last() == Some(&b'B') { b'C' } else { b'B' };
    malformed.push(format!("Bearer {}", String::from_utf8(spelled).unwrap()));
    let session = s.login("bob", "bob-pw", false).await;
    let cookie = format!("{COOKIE}={session}");
    for auth in &malformed {
        assert_eq!(authz(&s, APP, "/docs", auth, &[]).await.0, 401, "{auth}");
        assert_eq!(authz(&s, APP, "/public", auth, &[]).await.0, 401, "{auth} on a bypass path");
        let with_cookie = authz(&s, APP, "/docs", auth, &[("cookie", &cookie)]).await;
        assert_eq!(with_cookie.0, 401, "{auth} with a good session cookie: judged by the token alone");
    }
    // A value that is neither of our formats belongs to the application: the cookie decides.
    let (status, headers) = authz(&s, APP, "/docs", "Bearer app-own-token", &[("cookie", &cookie)]).await;
    assert_eq!((status, headers["remote-user"].to_str().unwrap()), (200, "bob"));
}

#[tokio::test]
async fn disabled_or_removed_users_tokens_stop_working() {
    let s = server().await;
    let alice = s.login("alice", "alice-pw", false).await;
    let bob = s.login("bob", "bob-pw", false).await;
    let (_, alice_token) = token(&s, &alice, "a").await;
    let (_, bob_token) = token(&s, &bob, "b").await;
    let mut users = default_users();
    users.users.get_mut("alice").unwrap().disabled = true;
    users.users.remove("bob");
    users.write(&s.users_path).unwrap();
    s.app.users.reload_if_changed().unwrap();
    assert_eq!(pass(&s, "/docs", &alice_token).await.0, 401, "disabled");
    assert_eq!(pass(&s, "/docs", &bob_token).await.0, 401, "removed");
    let current = s.get_with_token("/api/v1/sessions/current", &alice_token).await;
    assert_eq!(error_code(current).await, (401, "unauthenticated".to_owned()));
}

#[tokio::test]
async fn a_user_known_elsewhere_keeps_the_groups_recorded_with_the_token() {
    let s = server().await;
    let root = s.login("root", "root-pw", false).await;
    let sso = json!({"user": "carol", "groups": ["ops"], "email": "carol@example.test"});
    let res = s.client.post(s.url("/api/v1/sessions")).bearer_auth(&root).json(&sso).send().await.unwrap();
    assert_eq!(res.status(), 201);
    let carol = res.json::<Value>().await.unwrap()["session_token"].as_str().unwrap().to_owned();
    let (_, token) = token(&s, &carol, "carol").await;
    let (status, headers) = pass(&s, "/ops", &token).await;
    assert_eq!(status, 200);
    assert_eq!(headers["remote-user"], "carol");
    assert_eq!(headers["remote-groups"], "ops");
    assert_eq!(headers["remote-email"], "carol@example.test");
}

#[tokio::test]
async fn only_the_owner_or_an_admin_sees_and_revokes_a_token() {
    let s = server().await;
    let alice = s.login("alice", "alice-pw", false).await;
    let bob = s.login("bob", "bob-pw", false).await;
    let root = s.login("root", "root-pw", false).await;
    let (id, token) = token(&s, &alice, "deploy").await;
    token_of(&s, &bob).await;

    assert_eq!(revoke(&s, &bob, &id).await.status(), 404, "bob cannot revoke alice's token");
    assert_eq!(error_code(list(&s, &bob, "?user=alice").await).await, (403, "forbidden".to_owned()));
    assert_eq!(error_code(list(&s, &bob, "?realm=partners").await).await, (403, "forbidden".to_owned()));
    let own: Vec<Value> = tokens(&s, &bob).await;
    assert_eq!(own.len(), 1);
    assert_eq!(own[0]["user"], "bob", "bob sees only his own");
    assert_eq!(pass(&s, "/docs", &token).await.0, 200, "alice's token still works");
    for bad in ["nope", "AAAAAAAAAAAAAAAAAAAAAA", &token] {
        assert_eq!(revoke(&s, &alice, bad).await.status(), 404, "{bad}");
    }
    assert_eq!(list(&s, &alice, "?bogus=1").await.status(), 400);

    let seen = list(&s, &root, "?user=alice").await.json::<Value>().await.unwrap();
    assert_eq!(seen["tokens"][0]["id"], id.as_str(), "admins may list anyone's");
    assert_eq!(revoke(&s, &root, &id).await.status(), 204, "admins may revoke anyone's");
    assert_eq!(pass(&s, "/docs", &token).await.0, 401);
    let revoked = audit_events(&s).into_iter().find(|e| e["event"] == "token_revoked").unwrap();
    assert_eq!(
        (&revoked["user"], &revoked["actor"], &revoked["token_id"]),
        (&json!("alice"), &json!("root"), &json!(id))
    );
}

async fn token_of(s: &TestServer, session: &str) -> String {
    token(s, session, "mine").await.1
}

#[tokio::test]
async fn an_api_token_cannot_stand_in_for_a_session() {
    let s = server().await;
    let alice = s.login("alice", "alice-pw", false).await;
    let (id, token) = token(&s, &alice, "deploy").await;
    for path in ["/api/v1/sessions/current", "/api/v1/sessions", "/api/v1/tokens"] {
        let res = s.get_with_token(path, &token).await;
        assert!(session_cookies(res.headers()).is_empty(), "{path}");
        assert_eq!(error_code(res).await, (403, "forbidden".to_owned()), "{path}");
    }
    let (status, refused) = create(&s, &token, json!({"name": "successor"})).await;
    assert_eq!((status, refused["error"].as_str()), (403, Some("forbidden")), "a token cannot make tokens");
    assert_eq!(revoke(&s, &token, &id).await.status(), 403, "nor revoke them");
    let logout = s.client.delete(s.url("/api/v1/sessions/current")).bearer_auth(&token).send().await.unwrap();
    assert_eq!(logout.status(), 403);
    let check = s.post("/api/v1/sessions/authenticate", json!({"session_token": token})).await;
    assert_eq!(error_code(check).await, (401, "unauthenticated".to_owned()));
    let check = s.client.post(s.url("/api/v1/sessions/authenticate")).bearer_auth(&token).send().await.unwrap();
    assert_eq!(error_code(check).await, (401, "unauthenticated".to_owned()));
    let login_page = s.client.get(s.url("/")).bearer_auth(&token).send().await.unwrap();
    assert!(session_cookies(login_page.headers()).is_empty());

    assert_eq!(revoke(&s, &alice, &id).await.status(), 204);
    let res = s.get_with_token("/api/v1/sessions/current", &token).await;
    assert_eq!(error_code(res).await, (401, "unauthenticated".to_owned()), "a revoked token is not signed in");
    let res = s.get_with_token("/api/v1/sessions/current", "sdat_broken").await;
    assert_eq!(error_code(res).await, (401, "unauthenticated".to_owned()));
    assert!(s.store.list_sessions(&Default::default()).await.unwrap().len() == 1, "no session was ever made");
}

#[tokio::test]
async fn an_admin_token_may_create_sessions_and_other_tokens_may_not() {
    let s = server().await;
    let root = s.login("root", "root-pw", false).await;
    let alice = s.login("alice", "alice-pw", false).await;
    let (admin_id, admin) = token(&s, &root, "sso bridge").await;
    let (_, plain) = token(&s, &alice, "deploy").await;
    let body = json!({"user": "dave", "groups": ["dev"]});

    let res = s.client.post(s.url("/api/v1/sessions")).bearer_auth(&admin).json(&body).send().await.unwrap();
    assert_eq!(res.status(), 201);
    assert!(res.headers().get("set-cookie").is_none(), "no cookie for the caller");
    let created: Value = res.json().await.unwrap();
    assert_eq!(created["session"]["user"], "dave");
    let dave = created["session_token"].as_str().unwrap();
    assert_eq!(s.get_with_token("/api/v1/sessions/current", dave).await.status(), 200, "the session works");
    let event = audit_events(&s).into_iter().find(|e| e["event"] == "session_created").unwrap();
    assert_eq!((&event["actor"], &event["token_id"]), (&json!("root"), &json!(admin_id)));

    let res = s.client.post(s.url("/api/v1/sessions")).bearer_auth(&plain).json(&body).send().await.unwrap();
    assert_eq!(error_code(res).await, (403, "forbidden".to_owned()));
    let res = s.client.post(s.url("/api/v1/sessions")).bearer_auth("sdat_nope").json(&body).send().await.unwrap();
    assert_eq!(error_code(res).await, (401, "unauthenticated".to_owned()));
    let unknown = ApiToken::generate().expose();
    let res = s.client.post(s.url("/api/v1/sessions")).bearer_auth(&unknown).json(&body).send().await.unwrap();
    assert_eq!(error_code(res).await, (401, "unauthenticated".to_owned()));
}

#[tokio::test]
async fn last_used_at_moves_at_most_once_a_minute() {
    let s = server().await;
    let alice = s.login("alice", "alice-pw", false).await;
    let (_, token) = token(&s, &alice, "deploy").await;
    let last_used = || async { tokens(&s, &alice).await[0]["last_used_at"].clone() };
    let stored = || async { s.store.list_entries(EntryKind::ApiToken, s.clock.now()).await.unwrap()[0].value.clone() };
    assert_eq!(last_used().await, Value::Null);

    s.advance(10);
    assert_eq!(pass(&s, "/docs", &token).await.0, 200);
    let first = Timestamp::from_unix(START + 10).rfc3339();
    assert_eq!(last_used().await, first.as_str());
    let written = stored().await;
    s.advance(59);
    for _ in 0..5 {
        assert_eq!(pass(&s, "/docs", &token).await.0, 200);
    }
    assert_eq!(stored().await, written, "no store write within the minute");
    assert_eq!(last_used().await, first.as_str());
    s.advance(1);
    assert_eq!(pass(&s, "/docs", &token).await.0, 200);
    assert_eq!(last_used().await, Timestamp::from_unix(START + 70).rfc3339().as_str());
}

#[tokio::test]
async fn a_user_may_hold_at_most_a_hundred_tokens() {
    let s = server().await;
    let alice = s.login("alice", "alice-pw", false).await;
    for i in 0..100 {
        token(&s, &alice, &format!("t{i}")).await;
    }
    let (status, body) = create(&s, &alice, json!({"name": "one too many"})).await;
    assert_eq!((status, body["error"].as_str()), (400, Some("bad_request")), "{body}");
    let bob = s.login("bob", "bob-pw", false).await;
    token(&s, &bob, "others are not affected").await;
}
