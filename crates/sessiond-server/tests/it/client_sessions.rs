//! Client-side sessions (`location: client`) over real HTTP: the cookie holds the whole session,
//! sealed; the store holds only revocations. Every promise of server-side sessions is checked
//! again here (timeouts, reissue, logout, sign out everywhere, admin revoke, disabled users), plus
//! what only the cookie can get wrong: alteration, truncation, another realm's cookie, a secret
//! rotated out, and a session too large for a cookie.

use crate::support::*;
use reqwest::header::HeaderMap;
use serde_json::{Value, json};
use sessiond_core::access::{AccessControl, Policy, Rule, RuleSpec};
use sessiond_core::client_session::{ClientSession, ClientSessionCodec};
use sessiond_core::cookie::{CookieSpec, SameSite};
use sessiond_core::realm::SessionLocation;
use sessiond_core::time::Timestamp;
use sessiond_core::timeout::Timeouts;
use sessiond_server::clock::Clock as _;
use sessiond_store::{AnyStore, EntryKind, RedisKey, RedisKeys, RedisSettings, RedisStore, SessionFilter, Store};
use std::time::Duration;

const OLD_SECRET: &[u8] = b"the secret before the rotation, 32+ bytes";
const APP: &str = "https://app.example.test/";

fn client_side() -> Options {
    Options { location: SessionLocation::Client, ..Options::default() }
}

async fn start() -> TestServer {
    TestServer::with(client_side()).await
}

fn codec() -> ClientSessionCodec {
    ClientSessionCodec::new(SECRET, None)
}

/// The session a cookie value of the `main` realm holds.
fn open(value: &str) -> ClientSession {
    codec().open("main", COOKIE, value).expect("the cookie opens")
}

fn value_of(set_cookie: &str) -> String {
    set_cookie.split(';').next().unwrap().split_once('=').unwrap().1.to_owned()
}

/// The session cookie's new value, when the answer sets one (not a deletion).
fn reissued(headers: &HeaderMap) -> Option<String> {
    let cookies: Vec<String> =
        session_cookies(headers).into_iter().filter(|c| attr(c, "Max-Age") != Some("0")).collect();
    assert!(cookies.len() <= 1, "{cookies:?}");
    cookies.first().map(|c| value_of(c))
}

fn deletes_the_cookie(headers: &HeaderMap) -> bool {
    session_cookies(headers).iter().any(|c| attr(c, "Max-Age") == Some("0"))
}

/// Logs in over the API; answers the cookie value and the answer's body.
async fn login(s: &TestServer, user: &str, password: &str, remember_me: bool) -> (String, Value) {
    let res = s.post("/api/v1/authenticate", login_body(user, password, remember_me)).await;
    assert_eq!(res.status(), 200, "login of {user}");
    let value = reissued(res.headers()).expect("a session cookie");
    (value, res.json().await.unwrap())
}

async fn status(s: &TestServer, value: &str) -> u16 {
    s.get_with_cookie("/api/v1/sessions/current", value).await.status().as_u16()
}

async fn post_with_cookie(s: &TestServer, path: &str, value: &str, body: Value) -> reqwest::Response {
    s.client.post(s.url(path)).header("cookie", format!("{COOKIE}={value}")).json(&body).send().await.unwrap()
}

async fn stored_sessions(s: &TestServer) -> usize {
    s.store.list_sessions(&SessionFilter::default()).await.unwrap().len()
}

fn main_cookie() -> CookieSpec {
    CookieSpec {
        name: COOKIE.into(),
        domain: None,
        secure: false,
        http_only: true,
        same_site: SameSite::Lax,
        persistent: true,
    }
}

fn rules() -> AccessControl {
    let rule = Rule::parse(&RuleSpec {
        domain: Some(vec!["*.example.test".into(), "*.shop.test".into()]),
        policy: Some("one_factor".into()),
        ..RuleSpec::default()
    })
    .unwrap();
    AccessControl::new(Policy::Deny, vec![rule])
}

fn behind_a_proxy(options: Options) -> Options {
    Options { trusted_proxies: vec!["127.0.0.1/32".parse().unwrap()], access: Some(rules()), ..options }
}

/// nginx's `auth_request` for `url`, with the session cookie `name=value`; answers the status,
/// `Remote-User` and whether the answer tried to set a cookie.
async fn forward_auth(s: &TestServer, url: &str, cookie: Option<(&str, &str)>) -> (u16, Option<String>) {
    let mut req = s.client.get(s.url("/api/authz/auth-request")).header("x-original-url", url);
    if let Some((name, value)) = cookie {
        req = req.header("cookie", format!("{name}={value}"));
    }
    let res = req.send().await.unwrap();
    assert!(res.headers().get("set-cookie").is_none(), "forward auth never sets cookies");
    let user = res.headers().get("remote-user").map(|v| v.to_str().unwrap().to_owned());
    (res.status().as_u16(), user)
}

// ----- the cookie -----

#[tokio::test]
async fn login_sets_a_cookie_that_holds_the_whole_session_and_nothing_is_stored() {
    let s = start().await;
    let (value, body) = login(&s, "alice", "alice-pw", false).await;
    let session = open(&value);
    assert_eq!(session.user, "alice");
    assert_eq!(session.realm, "main");
    assert_eq!(session.groups, ["dev"]);
    assert_eq!(session.amr, ["pwd"]);
    assert_eq!(session.email.as_deref(), Some("user@example.test"));
    assert_eq!(session.display_name.as_deref(), Some("Test User"));
    assert_eq!(session.created_at, Timestamp::from_unix(START));
    assert_eq!(session.absolute_deadline, Timestamp::from_unix(START + 3600));
    assert!(!session.remember_me);
    assert_eq!(session.ip.as_deref(), Some("127.0.0.1"));
    assert_eq!(body["session"]["id"], session.id.to_string());
    assert_eq!(body["session_token"], value, "scripts get the same credential as the cookie");
    assert_eq!(stored_sessions(&s).await, 0, "nothing is stored as a session");
    assert!(s.store.list_entries(EntryKind::RevokedSession, s.clock.now()).await.unwrap().is_empty());

    let res = s.get_with_cookie("/api/v1/sessions/current", &value).await;
    assert_eq!(res.status(), 200);
    let current: Value = res.json().await.unwrap();
    assert_eq!(current["session"]["id"], session.id.to_string());
    assert_eq!(current["session"]["expires_at"], Timestamp::from_unix(START + 300).rfc3339());
    assert_eq!(current["user"]["name"], "alice");
}

#[tokio::test]
async fn the_sealed_session_is_accepted_in_the_header_and_as_a_bearer_too() {
    let s = start().await;
    let (value, _) = login(&s, "alice", "alice-pw", false).await;
    assert_eq!(s.get_with_token("/api/v1/sessions/current", &value).await.status(), 200, "bearer");
    let header = s.client.get(s.url("/api/v1/sessions/current")).header(COOKIE, &value).send().await.unwrap();
    assert_eq!(header.status(), 200, "the header named like the cookie");
    let body = post_with_cookie(&s, "/api/v1/sessions/authenticate", &value, json!({})).await;
    assert_eq!(body.status(), 200);
    let checked = s.post("/api/v1/sessions/authenticate", json!({"session_token": value})).await;
    assert_eq!(checked.status(), 200, "in the body");

    // An application's own bearer token is passed over, and the cookie still counts.
    let res = s
        .client
        .get(s.url("/api/v1/sessions/current"))
        .bearer_auth("app-token-ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789")
        .header("cookie", format!("{COOKIE}={value}"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    // A server-side token is no credential here.
    let token = sessiond_core::token::SessionToken::generate().expose();
    assert_eq!(status(&s, &token).await, 401);
}

#[tokio::test]
async fn altered_truncated_foreign_and_rotated_out_cookies_are_refused_and_deleted() {
    let s = TestServer::with(Options { other_realm: Some(("shop".into(), "shop.test".into())), ..client_side() }).await;
    let (value, _) = login(&s, "alice", "alice-pw", false).await;

    let mut bytes = base64_decode(&value);
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x01;
    let flipped = base64_encode(&bytes);
    let truncated = value[..value.len() - 4].to_owned();

    let res = s
        .client
        .post(s.url("/api/v1/authenticate"))
        .header("host", "auth.shop.test")
        .json(&login_body("alice", "alice-pw", false))
        .send()
        .await
        .unwrap();
    let shop_cookie = session_cookies_named(res.headers(), OTHER_COOKIE).pop().unwrap();
    let from_shop = value_of(&shop_cookie);
    assert_eq!(codec().open("shop", OTHER_COOKIE, &from_shop).unwrap().realm, "shop");

    // Sealed for this very realm and cookie, but under a secret this server does not hold.
    let session = open(&value);
    let sealed = ClientSessionCodec::new(OLD_SECRET, None).seal(&session, &main_cookie(), None).unwrap();
    let rotated_out = sealed.value.as_str().to_owned();

    for (what, bad) in [
        ("flipped", &flipped),
        ("truncated", &truncated),
        ("another realm's", &from_shop),
        ("rotated out", &rotated_out),
    ] {
        let res = s.get_with_cookie("/api/v1/sessions/current", bad).await;
        assert_eq!(res.status(), 401, "{what}");
        assert!(deletes_the_cookie(res.headers()), "{what}: a deleting Set-Cookie");
        let (status, code) = error_code(res).await;
        assert_eq!((status, code.as_str()), (401, "unauthenticated"), "{what}");
        assert_eq!(s.get_with_token("/api/v1/sessions/current", bad).await.status(), 401, "{what} as a bearer");
    }
    assert_eq!(status(&s, &value).await, 200, "the genuine cookie still passes");
    let res = s.get_with_cookie("/api/v1/sessions/current", &"A".repeat(5000)).await;
    assert_eq!(res.status(), 401, "oversized");
}

fn session_cookies_named(headers: &HeaderMap, name: &str) -> Vec<String> {
    headers
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .filter(|c| c.starts_with(&format!("{name}=")))
        .collect()
}

fn base64_decode(text: &str) -> Vec<u8> {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(text).unwrap()
}

fn base64_encode(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

#[tokio::test]
async fn cookies_sealed_under_secret_previous_open_and_come_back_under_the_new_secret() {
    // The server's current secret is SECRET; the cookie was sealed before the rotation.
    let s = TestServer::with(Options { secret_previous: Some(OLD_SECRET.to_vec()), ..client_side() }).await;
    let before = ClientSessionCodec::new(OLD_SECRET, None);
    let (value, _) = login(&s, "alice", "alice-pw", false).await;
    let old = before.seal(&open(&value), &main_cookie(), None).unwrap();
    let res = s.get_with_cookie("/api/v1/sessions/current", old.value.as_str()).await;
    assert_eq!(res.status(), 200);
    let resealed = reissued(res.headers()).expect("sealed again under the current secret");
    assert_eq!(open(&resealed).id, open(&value).id, "the same session");
    assert!(before.open("main", COOKIE, &resealed).is_err());
}

// ----- timeouts -----

#[tokio::test]
async fn idle_timeout_and_absolute_expiration_are_enforced() {
    let s = start().await;
    let (first, _) = login(&s, "alice", "alice-pw", false).await;
    s.advance(299);
    let res = s.get_with_cookie("/api/v1/sessions/current", &first).await;
    assert_eq!(res.status(), 200);
    let mut latest = reissued(res.headers()).expect("the idle deadline moved");
    s.advance(1);
    assert_eq!(status(&s, &first).await, 401, "the first cookie still carries the old idle deadline");
    // Used every four minutes, the newest cookie lives until the absolute deadline and no longer.
    let mut elapsed = 300;
    while elapsed + 240 < 3600 {
        s.advance(240);
        elapsed += 240;
        let res = s.get_with_cookie("/api/v1/sessions/current", &latest).await;
        assert_eq!(res.status(), 200, "at +{elapsed}s");
        latest = reissued(res.headers()).unwrap_or(latest);
    }
    s.advance(3600 - elapsed);
    let res = s.get_with_cookie("/api/v1/sessions/current", &latest).await;
    assert_eq!(res.status(), 401, "expired");
    assert!(deletes_the_cookie(res.headers()));
    let (_, code) = error_code(res).await;
    assert_eq!(code, "unauthenticated");
}

#[tokio::test]
async fn the_cookie_is_reissued_at_most_once_per_tenth_of_the_inactivity() {
    let s = start().await;
    let (value, _) = login(&s, "alice", "alice-pw", false).await;
    s.advance(10);
    let res = s.get_with_cookie("/api/v1/sessions/current", &value).await;
    assert_eq!(reissued(res.headers()), None, "within the throttle interval");
    s.advance(20);
    let res = s.get_with_cookie("/api/v1/sessions/current", &value).await;
    let cookie = session_cookies(res.headers()).pop().unwrap();
    assert_eq!(attr(&cookie, "Max-Age"), Some("300"));
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["session"]["last_seen_at"], Timestamp::from_unix(START + 30).rfc3339());
    let next = value_of(&cookie);
    assert_eq!(open(&next).last_seen_at, Timestamp::from_unix(START + 30));
    assert_eq!(open(&next).id, open(&value).id);
    s.advance(29);
    assert_eq!(reissued(s.get_with_cookie("/api/v1/sessions/current", &next).await.headers()), None);
    s.advance(1);
    assert!(reissued(s.get_with_cookie("/api/v1/sessions/current", &next).await.headers()).is_some());
    // `extend` moves it at once.
    s.advance(1);
    let res = post_with_cookie(&s, "/api/v1/sessions/authenticate", &next, json!({"extend": true})).await;
    assert_eq!(open(&reissued(res.headers()).unwrap()).last_seen_at, Timestamp::from_unix(START + 61));
    assert_eq!(stored_sessions(&s).await, 0);
}

#[tokio::test]
async fn remembered_sessions_ignore_inactivity_and_last_a_month() {
    let s = start().await;
    let res = s.post("/api/v1/authenticate", login_body("alice", "alice-pw", true)).await;
    let cookie = session_cookies(res.headers()).remove(0);
    assert_eq!(attr(&cookie, "Max-Age"), Some("2592000"));
    let value = value_of(&cookie);
    assert!(open(&value).remember_me);
    s.advance(86_400 * 10);
    assert_eq!(status(&s, &value).await, 200);
    s.advance(86_400 * 20);
    assert_eq!(status(&s, &value).await, 401);
}

#[tokio::test]
async fn forward_auth_checks_a_client_session_but_never_moves_it() {
    let s = TestServer::with(behind_a_proxy(client_side())).await;
    let (value, _) = login(&s, "alice", "alice-pw", false).await;
    assert_eq!(forward_auth(&s, APP, Some((COOKIE, &value))).await, (200, Some("alice".into())));
    for _ in 0..4 {
        s.advance(60);
        assert_eq!(forward_auth(&s, APP, Some((COOKIE, &value))).await.0, 200);
    }
    s.advance(60);
    assert_eq!(forward_auth(&s, APP, Some((COOKIE, &value))).await.0, 401, "idle: forward auth set no cookie");
    assert_eq!(forward_auth(&s, APP, Some((COOKIE, "garbage!"))).await.0, 401);
}

// ----- ending sessions -----

#[tokio::test]
async fn logout_then_replaying_the_old_cookie_is_refused() {
    let s = TestServer::with(behind_a_proxy(client_side())).await;
    let (value, _) = login(&s, "alice", "alice-pw", false).await;
    let res = s
        .client
        .delete(s.url("/api/v1/sessions/current"))
        .header("cookie", format!("{COOKIE}={value}"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 204);
    assert!(deletes_the_cookie(res.headers()));
    let res = s.get_with_cookie("/api/v1/sessions/current", &value).await;
    assert_eq!(res.status(), 401, "replayed");
    assert!(deletes_the_cookie(res.headers()));
    assert_eq!(forward_auth(&s, APP, Some((COOKIE, &value))).await.0, 401);
    // The revocation lasts exactly as long as the session could have.
    let revoked = s.store.list_entries(EntryKind::RevokedSession, s.clock.now()).await.unwrap();
    assert_eq!(revoked.len(), 1);
    assert_eq!(revoked[0].key, format!("main\n{}", open(&value).id));
    assert_eq!(revoked[0].expires_at, Some(Timestamp::from_unix(START + 3600)));
}

#[tokio::test]
async fn a_new_login_ends_the_client_session_it_was_sent_with() {
    let s = start().await;
    let (planted, _) = login(&s, "alice", "alice-pw", false).await;
    let res = post_with_cookie(&s, "/api/v1/authenticate", &planted, login_body("bob", "bob-pw", false)).await;
    assert_eq!(res.status(), 200);
    let fresh = reissued(res.headers()).unwrap();
    assert_ne!(open(&fresh).id, open(&planted).id);
    assert_eq!(status(&s, &planted).await, 401);
    assert_eq!(status(&s, &fresh).await, 200);
}

#[tokio::test]
async fn revoking_ones_own_session_by_id_ends_it_and_other_ids_are_not_found() {
    let s = start().await;
    let (value, _) = login(&s, "alice", "alice-pw", false).await;
    let (other, _) = login(&s, "alice", "alice-pw", false).await;
    let id = open(&other).id;
    let res = s
        .client
        .delete(s.url(&format!("/api/v1/sessions/{id}")))
        .header("cookie", format!("{COOKIE}={value}"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404, "the server knows only the caller's own client-side session");
    let own = open(&value).id;
    let res = s
        .client
        .delete(s.url(&format!("/api/v1/sessions/{own}")))
        .header("cookie", format!("{COOKIE}={value}"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 204);
    assert!(deletes_the_cookie(res.headers()));
    assert_eq!(status(&s, &value).await, 401);
    assert_eq!(status(&s, &other).await, 200);

    // An administrator may end any id of the realm.
    let (root, _) = login(&s, "root", "root-pw", false).await;
    let res = s
        .client
        .delete(s.url(&format!("/api/v1/sessions/{id}")))
        .header("cookie", format!("{COOKIE}={root}"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 204);
    assert_eq!(status(&s, &other).await, 401);
    assert_eq!(status(&s, &root).await, 200);
}

#[tokio::test]
async fn sign_out_everywhere_else_keeps_the_current_session_and_ends_the_others() {
    let s = TestServer::with(behind_a_proxy(client_side())).await;
    let (here, _) = login(&s, "alice", "alice-pw", false).await;
    let (there, _) = login(&s, "alice", "alice-pw", false).await;
    let (bobs, _) = login(&s, "bob", "bob-pw", false).await;
    s.advance(1);
    let res = post_with_cookie(&s, "/api/v1/sessions/revoke", &here, json!({"except_current": true})).await;
    assert_eq!(res.status(), 200);
    assert!(!deletes_the_cookie(res.headers()));
    assert_eq!(res.json::<Value>().await.unwrap()["revoked"], 0, "the others are not counted: nothing lists them");
    assert_eq!(status(&s, &here).await, 200);
    assert_eq!(status(&s, &there).await, 401);
    assert_eq!(forward_auth(&s, APP, Some((COOKIE, &there))).await.0, 401);
    assert_eq!(status(&s, &bobs).await, 200, "other users are left alone");

    // A login after the cut passes; signing out everywhere then ends every session, this one too.
    s.advance(1);
    let (later, _) = login(&s, "alice", "alice-pw", false).await;
    assert_eq!(status(&s, &later).await, 200);
    s.advance(1);
    let res = post_with_cookie(&s, "/api/v1/sessions/revoke", &later, json!({})).await;
    assert_eq!(res.status(), 200);
    assert!(deletes_the_cookie(res.headers()));
    assert_eq!(res.json::<Value>().await.unwrap()["revoked"], 1);
    for value in [&here, &there, &later] {
        assert_eq!(status(&s, value).await, 401);
    }
    assert_eq!(status(&s, &bobs).await, 200);
}

#[tokio::test]
async fn an_administrator_ends_every_session_of_a_user() {
    let s = start().await;
    let (alice, _) = login(&s, "alice", "alice-pw", false).await;
    let (alice_too, _) = login(&s, "alice", "alice-pw", false).await;
    let (bob, _) = login(&s, "bob", "bob-pw", false).await;
    let (root, _) = login(&s, "root", "root-pw", false).await;
    let refused = post_with_cookie(&s, "/api/v1/sessions/revoke", &bob, json!({"user": "alice"})).await;
    assert_eq!(refused.status(), 403, "only admins revoke for others");
    assert_eq!(status(&s, &alice).await, 200);
    let res = post_with_cookie(&s, "/api/v1/sessions/revoke", &root, json!({"user": "alice"})).await;
    assert_eq!(res.status(), 200);
    assert_eq!(status(&s, &alice).await, 401);
    assert_eq!(status(&s, &alice_too).await, 401);
    assert_eq!(status(&s, &bob).await, 200);
    assert_eq!(status(&s, &root).await, 200);
    let cut = s.store.entry(EntryKind::NotBefore, "main\nalice", s.clock.now()).await.unwrap().unwrap();
    assert_eq!(cut.expires_at, None, "kept until replaced");
}

#[tokio::test]
async fn a_disabled_user_is_refused_and_stays_refused_when_enabled_again() {
    let s = start().await;
    let (value, _) = login(&s, "alice", "alice-pw", false).await;
    let mut users = default_users();
    users.users.get_mut("alice").unwrap().disabled = true;
    write_users(&s, &users, 12_345);
    reload(&s).await;
    assert_eq!(status(&s, &value).await, 401);
    assert!(s.store.entry(EntryKind::NotBefore, "main\nalice", s.clock.now()).await.unwrap().is_some());

    users.users.get_mut("alice").unwrap().disabled = false;
    write_users(&s, &users, 23_456);
    reload(&s).await;
    assert_eq!(status(&s, &value).await, 401, "the old cookie stays dead");
    s.advance(1);
    let (fresh, _) = login(&s, "alice", "alice-pw", false).await;
    assert_eq!(status(&s, &fresh).await, 200);
}

fn write_users(s: &TestServer, users: &sessiond_server::users::UsersFile, mtime: u64) {
    users.write(&s.users_path).unwrap();
    let f = std::fs::File::options().write(true).open(&s.users_path).unwrap();
    f.set_modified(std::time::SystemTime::UNIX_EPOCH + Duration::from_secs(mtime)).unwrap();
}

/// One pass of the background work (it re-reads the users file), through its public entry point.
async fn reload(s: &TestServer) {
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(sessiond_server::background(s.app.clone(), Duration::from_millis(10), async move {
        let _ = rx.await;
    }));
    tokio::time::sleep(Duration::from_millis(100)).await;
    let _ = tx.send(());
    task.await.unwrap();
}

// ----- lists, limits, realms, the store -----

#[tokio::test]
async fn the_list_holds_only_the_current_session() {
    let s = start().await;
    let (value, _) = login(&s, "alice", "alice-pw", false).await;
    let _other = login(&s, "alice", "alice-pw", false).await;
    let res = s.get_with_cookie("/api/v1/sessions", &value).await;
    let list: Value = res.json().await.unwrap();
    let sessions = list["sessions"].as_array().unwrap();
    assert_eq!(sessions.len(), 1);
    assert_eq!(sessions[0]["id"], open(&value).id.to_string());
    assert_eq!(sessions[0]["current"], true);
    let (root, _) = login(&s, "root", "root-pw", false).await;
    let res = s.get_with_cookie("/api/v1/sessions?user=alice", &root).await;
    assert_eq!(res.json::<Value>().await.unwrap()["sessions"], json!([]));
}

#[tokio::test]
async fn a_session_too_large_for_a_cookie_is_refused_never_truncated() {
    let s = start().await;
    let (root, _) = login(&s, "root", "root-pw", false).await;
    let big = json!({"user": "carol", "attributes": {"blob": "x".repeat(3500)}});
    let res = post_with_cookie(&s, "/api/v1/sessions", &root, big).await;
    assert_eq!(res.status(), 422);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["error"], "session_too_large");
    let message = body["message"].as_str().unwrap();
    assert!(message.contains("does not fit in a cookie") && message.contains("4096"), "{message}");

    let groups: Vec<String> = (0..400).map(|i| format!("group-{i}")).collect();
    let res = post_with_cookie(&s, "/api/v1/sessions", &root, json!({"user": "carol", "groups": groups})).await;
    assert_eq!(error_code(res).await, (422, "session_too_large".to_owned()));

    let fits = json!({"user": "carol", "groups": ["sso"], "attributes": {"tenant": "acme", "blob": "x".repeat(2000)}});
    let res = post_with_cookie(&s, "/api/v1/sessions", &root, fits).await;
    assert_eq!(res.status(), 201);
    assert!(session_cookies(res.headers()).is_empty(), "no cookie on the admin's client");
    let created: Value = res.json().await.unwrap();
    let value = created["session_token"].as_str().unwrap();
    let session = open(value);
    assert_eq!(session.user, "carol");
    assert_eq!(session.attributes["blob"], json!("x".repeat(2000)), "whole, not truncated");
    let current: Value = s.get_with_cookie("/api/v1/sessions/current", value).await.json().await.unwrap();
    assert_eq!(current["session"]["attributes"]["tenant"], "acme");
    assert_eq!(stored_sessions(&s).await, 0);
}

#[tokio::test]
async fn server_side_and_client_side_realms_share_one_server() {
    let s = TestServer::with(behind_a_proxy(Options {
        domain: Some("example.test".into()),
        other_realm: Some(("shop".into(), "shop.test".into())),
        other_location: Some(SessionLocation::Client),
        ..Options::default()
    }))
    .await;
    let token = s.login("alice", "alice-pw", false).await;
    assert_eq!(token.len(), 43, "main keeps a token");
    assert_eq!(stored_sessions(&s).await, 1);

    let res = s
        .client
        .post(s.url("/api/v1/authenticate"))
        .header("host", "auth.shop.test")
        .json(&login_body("alice", "alice-pw", false))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let sealed = value_of(&session_cookies_named(res.headers(), OTHER_COOKIE).pop().unwrap());
    assert_eq!(codec().open("shop", OTHER_COOKIE, &sealed).unwrap().user, "alice");
    assert_eq!(stored_sessions(&s).await, 1, "the shop keeps nothing");

    let shop = "https://app.shop.test/";
    assert_eq!(forward_auth(&s, APP, Some((COOKIE, &token))).await, (200, Some("alice".into())));
    assert_eq!(forward_auth(&s, shop, Some((OTHER_COOKIE, &sealed))).await, (200, Some("alice".into())));
    assert_eq!(forward_auth(&s, shop, Some((OTHER_COOKIE, &token))).await.0, 401, "a token is no shop credential");
    assert_eq!(forward_auth(&s, APP, Some((COOKIE, &sealed))).await.0, 401, "a sealed session is no main credential");

    // Each realm ends its own sessions its own way.
    let res = s
        .client
        .delete(s.url("/api/v1/sessions/current"))
        .header("host", "auth.shop.test")
        .header("cookie", format!("{OTHER_COOKIE}={sealed}"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 204);
    assert_eq!(forward_auth(&s, shop, Some((OTHER_COOKIE, &sealed))).await.0, 401);
    assert_eq!(forward_auth(&s, APP, Some((COOKIE, &token))).await.0, 200);
    assert_eq!(stored_sessions(&s).await, 1);
}

#[tokio::test]
async fn a_cookie_name_change_ends_client_sessions_even_when_the_name_comes_back() {
    let s = TestServer::with(Options { cookie_name_in_store: true, ..client_side() }).await;
    let (alice, _) = login(&s, "alice", "alice-pw", false).await;
    s.clock.advance(Duration::from_secs(5));
    let root = s.login("root", "root-pw", false).await;
    let url = s.url("/api/v1/realms/main/cookie-name");
    let res = s.client.put(&url).bearer_auth(&root).json(&json!({"name": "acme_session"})).send().await.unwrap();
    assert_eq!(res.status(), 200);
    let renamed = s
        .client
        .get(s.url("/api/v1/sessions/current"))
        .header("cookie", format!("acme_session={alice}"))
        .send()
        .await
        .unwrap();
    assert_eq!(renamed.status(), 401, "a cookie sealed under the old name does not open under the new one");

    // Signing in again at once, in the same second, works under the new name.
    let res = s.post("/api/v1/authenticate", login_body("root", "root-pw", false)).await;
    let set_cookie = res.headers().get("set-cookie").unwrap().to_str().unwrap().to_owned();
    assert!(set_cookie.starts_with("acme_session="), "{set_cookie}");
    let root = value_of(&set_cookie);
    let current = s
        .client
        .get(s.url("/api/v1/sessions/current"))
        .header("cookie", format!("acme_session={root}"))
        .send()
        .await
        .unwrap();
    assert_eq!(current.status(), 200);

    // Back to the default name: the cookies sealed under it before the change stay refused.
    let res = s.client.delete(&url).bearer_auth(&root).send().await.unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(status(&s, &alice).await, 401, "a rename ends the sessions for good");
    let (fresh, _) = login(&s, "alice", "alice-pw", false).await;
    assert_eq!(status(&s, &fresh).await, 200);
}

#[tokio::test]
async fn a_store_that_does_not_answer_refuses_client_sessions() {
    // Nothing listens on port 1: every store call fails at once.
    let mut settings = RedisSettings::standalone("redis://127.0.0.1:1");
    settings.cache_ttl = None;
    settings.timeout = Duration::from_millis(200);
    let keys = RedisKeys::new(RedisKey::from_secret(SECRET));
    let store = AnyStore::Redis(RedisStore::connect(settings, keys).await.unwrap());
    let s = TestServer::with(behind_a_proxy(Options { store: Some(store), ..client_side() })).await;
    // Logging in needs the store too (does the user have a second factor?), and fails closed.
    let res = s.post("/api/v1/authenticate", login_body("alice", "alice-pw", false)).await;
    assert_eq!(error_code(res).await, (503, "store_unavailable".to_owned()));
    // A session sealed while the store answered is refused while it does not.
    let now = s.clock.now();
    let session = ClientSession {
        id: sessiond_core::token::SessionId::generate(),
        realm: "main".into(),
        user: "alice".into(),
        display_name: None,
        email: None,
        groups: vec![],
        amr: vec!["pwd".into()],
        created_at: now,
        last_seen_at: now,
        absolute_deadline: now + Duration::from_secs(3600),
        remember_me: false,
        ip: None,
        user_agent: None,
        attributes: Default::default(),
    };
    let value = codec().seal(&session, &main_cookie(), None).unwrap().value.as_str().to_owned();
    let res = s.get_with_cookie("/api/v1/sessions/current", &value).await;
    assert_eq!(error_code(res).await, (503, "store_unavailable".to_owned()));
    assert_eq!(forward_auth(&s, APP, Some((COOKIE, &value))).await.0, 503, "never a pass");
}

#[tokio::test]
async fn shortened_timeouts_in_config_shorten_existing_client_sessions() {
    let long = Timeouts { expiration: Duration::from_secs(8 * 3600), inactivity: None, ..Timeouts::default() };
    let s = TestServer::with(Options { timeouts: long, ..client_side() }).await;
    let (value, _) = login(&s, "alice", "alice-pw", false).await;
    // The same cookie presented to a server whose policy is an hour: its deadline is capped.
    let short = TestServer::with(Options {
        timeouts: Timeouts { expiration: Duration::from_secs(3600), ..long },
        ..client_side()
    })
    .await;
    short.advance(3599);
    assert_eq!(status(&short, &value).await, 200);
    short.advance(1);
    assert_eq!(status(&short, &value).await, 401);
    s.advance(3600);
    assert_eq!(status(&s, &value).await, 200);
}

// ----- the portal -----

#[tokio::test]
async fn the_portal_signs_in_shows_the_current_session_and_signs_out_everywhere_else() {
    use crate::portal::{csrf_of, get_page, location, post_form, signed_in};
    let s = start().await;
    let (elsewhere, _) = login(&s, "alice", "alice-pw", false).await;
    s.advance(1);
    let mut jar = signed_in(&s, "alice", "alice-pw").await;
    let here = jar.get(COOKIE).unwrap().to_owned();
    assert_eq!(open(&here).user, "alice");
    assert_eq!(stored_sessions(&s).await, 0);

    let html = get_page(&s, &mut jar, "/").await;
    assert!(html.contains("1 session<"), "only the current session is listed");
    assert!(html.contains("This device"));
    assert!(html.contains("only this one is listed here"), "and the page says why");
    assert!(html.contains("Sign out everywhere else"), "the others can be ended all the same");
    let csrf = csrf_of(&html);

    let res = post_form(&s, &mut jar, "/sessions/revoke-others", &[("csrf", &csrf)]).await;
    assert_eq!((res.status().as_u16(), location(&res)), (303, "/"));
    assert_eq!(status(&s, &elsewhere).await, 401);
    assert_eq!(status(&s, &here).await, 200, "this browser stays signed in");

    // Thirty seconds on, the account page moves the idle deadline with a new cookie, and the CSRF
    // token of the page still fits: it is bound to the session, not to the cookie.
    s.advance(30);
    let html = get_page(&s, &mut jar, "/").await;
    let moved = jar.get(COOKIE).unwrap().to_owned();
    assert_ne!(moved, here);
    assert_eq!(csrf_of(&html), csrf);

    let res = post_form(&s, &mut jar, "/logout", &[("csrf", &csrf)]).await;
    assert_eq!((res.status().as_u16(), location(&res)), (303, "/login"));
    assert!(jar.get(COOKIE).is_none(), "the cookie is deleted");
    for value in [&here, &moved] {
        assert_eq!(status(&s, value).await, 401, "signed out, whichever cookie is replayed");
    }
}

#[tokio::test]
async fn the_portal_sends_a_dead_client_session_to_the_login_page() {
    use crate::portal::{get_page, location, signed_in};
    let s = start().await;
    let mut jar = signed_in(&s, "alice", "alice-pw").await;
    get_page(&s, &mut jar, "/").await;
    s.advance(300);
    let res = s
        .client
        .get(s.url("/"))
        .header("cookie", format!("{COOKIE}={}", jar.get(COOKIE).unwrap()))
        .send()
        .await
        .unwrap();
    assert_eq!((res.status().as_u16(), location(&res)), (303, "/login"));
    assert!(deletes_the_cookie(res.headers()));
}

#[tokio::test]
async fn the_admin_page_signs_out_every_session_of_a_user_it_cannot_list() {
    use crate::portal::{csrf_of, get_page, location, post_form, signed_in};
    let s = start().await;
    let (alice, _) = login(&s, "alice", "alice-pw", false).await;
    let mut root = signed_in(&s, "root", "root-pw").await;
    let html = get_page(&s, &mut root, "/admin?user=alice").await;
    assert!(html.contains("cannot be listed"), "{html}");
    assert!(html.contains("Sign out all sessions of alice"));
    let csrf = csrf_of(&html);
    let res = post_form(&s, &mut root, "/admin/revoke-all", &[("csrf", &csrf), ("user", "alice")]).await;
    assert_eq!((res.status().as_u16(), location(&res)), (303, "/admin?user=alice"));
    assert_eq!(status(&s, &alice).await, 401);
    assert_eq!(status(&s, root.get(COOKIE).unwrap()).await, 200, "the administrator stays signed in");
}

#[tokio::test]
async fn session_jwts_are_no_credential_in_a_client_side_realm() {
    let s = start().await;
    let (value, body) = login(&s, "alice", "alice-pw", false).await;
    let jwt = body["session_jwt"].as_str().expect("JWTs are issued as usual");
    let res = s.post("/api/v1/sessions/authenticate", json!({"session_jwt": jwt})).await;
    assert_eq!(error_code(res).await, (401, "unauthenticated".to_owned()));
    assert_eq!(status(&s, &value).await, 200);
}
