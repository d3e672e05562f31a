//! Login journeys over real HTTP: steps, allowlisting and replays in both locations, concurrent
//! posts, timeouts and the failure limit; TOTP enrollment, login with a code, code reuse,
//! step-up over the API and through the portal, and the recent sign-in that sensitive actions
//! need.

use crate::portal::{Jar, csrf_of, get, get_page, location, portal_login, post_form};
use crate::support::*;
use serde_json::{Value, json};
use sessiond_core::access::{AccessControl, Policy, Rule, RuleSpec};
use sessiond_core::journey::{JourneyLocation, JourneySettings};
use sessiond_core::totp::{TotpSecret, code_at, counter_at};
use sessiond_server::clock::Clock as _;
use sessiond_store::{EntryKind, SessionFilter, Store};
use std::time::Duration;

const AUTHN: &str = "sd_test_authn";
const VAULT: &str = "https://app.example.test/secure/vault";

fn journeys(location: JourneyLocation, allowlisting: bool) -> Options {
    Options { journeys: JourneySettings { location, allowlisting, ..JourneySettings::default() }, ..Options::default() }
}

/// Every combination of location and allowlisting.
fn every_mode() -> [(JourneyLocation, bool); 4] {
    [
        (JourneyLocation::Server, true),
        (JourneyLocation::Client, true),
        (JourneyLocation::Server, false),
        (JourneyLocation::Client, false),
    ]
}

/// Enrolls a TOTP for `user` through the store, as the API would; answers its secret.
async fn enroll(s: &TestServer, user: &str) -> TotpSecret {
    let now = s.clock.now();
    let secret = sessiond_server::totp::begin_enrollment(&s.store, &s.app.totp_sealer, user, now).await.unwrap();
    sessiond_server::totp::confirm(&s.store, &s.app.totp_sealer, user, &code(&secret, s), now).await.unwrap();
    // The confirming code is spent: move to the next step so that logins have a fresh one.
    s.advance(30);
    secret
}

fn code(secret: &TotpSecret, s: &TestServer) -> String {
    code_at(secret, counter_at(s.clock.now()))
}

async fn start(s: &TestServer) -> Value {
    let res = s.post("/api/v1/authenticate", json!({})).await;
    assert_eq!(res.status(), 200);
    res.json().await.unwrap()
}

fn password_step(auth_id: &str, user: &str, password: &str) -> Value {
    json!({"auth_id": auth_id, "callbacks": [
        {"type": "username", "value": user}, {"type": "password", "value": password}]})
}

fn totp_step(auth_id: &str, code: &str) -> Value {
    json!({"auth_id": auth_id, "callbacks": [{"type": "totp", "value": code}]})
}

async fn post(s: &TestServer, body: Value) -> (u16, Value) {
    let res = s.post("/api/v1/authenticate", body).await;
    (res.status().as_u16(), res.json().await.unwrap())
}

fn auth_id(body: &Value) -> String {
    body["auth_id"].as_str().unwrap_or_else(|| panic!("a next step: {body}")).to_owned()
}

async fn stored_sessions(s: &TestServer) -> usize {
    s.store.list_sessions(&SessionFilter::default()).await.unwrap().len()
}

// ----- steps and the journey cookie -----

#[tokio::test]
async fn a_login_without_second_factor_is_one_step_and_the_cookie_follows_the_journey() {
    let s = TestServer::start().await;
    let res = s.post("/api/v1/authenticate", json!({})).await;
    let set = res.headers().get_all("set-cookie").iter().map(|v| v.to_str().unwrap().to_owned()).collect::<Vec<_>>();
    let body: Value = res.json().await.unwrap();
    let id = auth_id(&body);
    let types: Vec<&str> = body["callbacks"].as_array().unwrap().iter().map(|c| c["type"].as_str().unwrap()).collect();
    assert_eq!(types, ["username", "password", "remember_me"]);
    let authn = set.iter().find(|c| c.starts_with(&format!("{AUTHN}="))).expect("the journey cookie");
    assert!(authn.starts_with(&format!("{AUTHN}={id};")), "{authn}");
    assert_eq!(attr(authn, "Max-Age"), Some("300"));
    assert!(authn.contains("HttpOnly"));

    let res = s.post("/api/v1/authenticate", password_step(&id, "alice", "alice-pw")).await;
    assert_eq!(res.status(), 200);
    let deleted = res.headers().get_all("set-cookie").iter().any(|v| {
        let v = v.to_str().unwrap();
        v.starts_with(&format!("{AUTHN}=")) && attr(v, "Max-Age") == Some("0")
    });
    assert!(deleted, "the journey cookie goes when the journey ends");
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["session"]["amr"], json!(["pwd"]));
    assert!(body["session_token"].is_string());
}

#[tokio::test]
async fn the_auth_id_may_come_from_the_journey_cookie() {
    let s = TestServer::start().await;
    let id = auth_id(&start(&s).await);
    let res = s
        .client
        .post(s.url("/api/v1/authenticate"))
        .header("cookie", format!("{AUTHN}={id}"))
        .json(
            &json!({"callbacks": [{"type": "username", "value": "alice"}, {"type": "password", "value": "alice-pw"}]}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(post(&s, password_step(&id, "alice", "alice-pw")).await.0, 401, "that journey has ended");
}

#[tokio::test]
async fn a_user_with_totp_gets_a_second_step_and_a_two_factor_session() {
    for (location, allowlisting) in every_mode() {
        let s = TestServer::with(journeys(location, allowlisting)).await;
        let secret = enroll(&s, "alice").await;
        let first = auth_id(&start(&s).await);
        let (status, next) = post(&s, password_step(&first, "alice", "alice-pw")).await;
        assert_eq!(status, 200, "{location:?} {allowlisting}");
        assert_eq!(next["callbacks"], json!([{"type": "totp"}]), "{next}");
        assert!(next.get("session").is_none(), "no session before the second factor");
        assert_eq!(stored_sessions(&s).await, 0);
        let second = auth_id(&next);
        assert_eq!(
            second == first,
            location == JourneyLocation::Server && !allowlisting,
            "{location:?} {allowlisting}"
        );

        // Callbacks of the other step are refused; the journey goes on.
        let (status, body) = post(&s, password_step(&second, "alice", "alice-pw")).await;
        assert_eq!((status, body["error"].as_str()), (400, Some("bad_request")));
        let (status, done) = post(&s, totp_step(&second, &code(&secret, &s))).await;
        assert_eq!(status, 200, "{done}");
        assert_eq!(done["session"]["amr"], json!(["pwd", "otp"]));
        assert_eq!(stored_sessions(&s).await, 1);
    }
}

// ----- allowlisting and replays -----

#[tokio::test]
async fn with_allowlisting_every_earlier_auth_id_is_refused_and_ends_the_journey() {
    for location in [JourneyLocation::Server, JourneyLocation::Client] {
        let s = TestServer::with(journeys(location, true)).await;
        let secret = enroll(&s, "alice").await;

        // Rewinding to the password step with its auth_id ends the journey at the code step.
        let first = auth_id(&start(&s).await);
        let second = auth_id(&post(&s, password_step(&first, "alice", "alice-pw")).await.1);
        let (status, body) = post(&s, password_step(&first, "alice", "alice-pw")).await;
        assert_eq!((status, body["error"].as_str()), (401, Some("journey_replayed")), "{location:?}");
        let (status, body) = post(&s, totp_step(&second, &code(&secret, &s))).await;
        assert_eq!((status, body["error"].as_str()), (401, Some("journey_expired")), "{location:?}: ended");

        // After success, every auth_id of the journey is dead.
        let first = auth_id(&start(&s).await);
        let second = auth_id(&post(&s, password_step(&first, "alice", "alice-pw")).await.1);
        let c = code(&secret, &s);
        assert_eq!(post(&s, totp_step(&second, &c)).await.0, 200);
        s.advance(30);
        for old in [&first, &second] {
            let (status, body) = post(&s, totp_step(old, &code(&secret, &s))).await;
            assert_eq!(status, 401, "{location:?}: {body}");
            assert!(matches!(body["error"].as_str(), Some("journey_expired" | "journey_replayed")), "{body}");
        }
        assert_eq!(stored_sessions(&s).await, 1, "{location:?}");
        let audit = std::fs::read_to_string(&s.audit_path).unwrap();
        assert!(audit.contains("\"journey_replayed\""), "{audit}");
    }
}

#[tokio::test]
async fn without_allowlisting_client_side_auth_ids_stay_usable_until_the_timeout() {
    // The documented weaker mode: nothing in the store, so a rewind works and a finished
    // journey's auth_id can run its last step again; only the code's own replay rule holds.
    let s = TestServer::with(journeys(JourneyLocation::Client, false)).await;
    let secret = enroll(&s, "alice").await;
    let first = auth_id(&start(&s).await);
    let second = auth_id(&post(&s, password_step(&first, "alice", "alice-pw")).await.1);
    assert_eq!(post(&s, password_step(&first, "alice", "alice-pw")).await.0, 200, "a rewind passes");
    let c = code(&secret, &s);
    assert_eq!(post(&s, totp_step(&second, &c)).await.0, 200);
    let (status, body) = post(&s, totp_step(&second, &c)).await;
    assert_eq!((status, body["error"].as_str()), (401, Some("invalid_credentials")), "the code is spent");
    s.advance(30);
    assert_eq!(post(&s, totp_step(&second, &code(&secret, &s))).await.0, 200, "a replay with a new code passes");
    s.advance(300);
    let (status, body) = post(&s, totp_step(&second, &code(&secret, &s))).await;
    assert_eq!((status, body["error"].as_str()), (401, Some("journey_expired")));

    // Server-side without allowlisting: one auth_id throughout, and it dies with the journey.
    let s = TestServer::with(journeys(JourneyLocation::Server, false)).await;
    let id = auth_id(&start(&s).await);
    assert_eq!(post(&s, password_step(&id, "alice", "alice-pw")).await.0, 200);
    let (status, body) = post(&s, password_step(&id, "alice", "alice-pw")).await;
    assert_eq!((status, body["error"].as_str()), (401, Some("journey_expired")));
}

#[tokio::test]
async fn two_concurrent_posts_of_one_step_cannot_both_advance_it() {
    for (location, allowlisting) in
        [(JourneyLocation::Server, true), (JourneyLocation::Client, true), (JourneyLocation::Server, false)]
    {
        let s = TestServer::with(journeys(location, allowlisting)).await;
        for _ in 0..3 {
            let id = auth_id(&start(&s).await);
            let (a, b) = tokio::join!(
                post(&s, password_step(&id, "alice", "alice-pw")),
                post(&s, password_step(&id, "alice", "alice-pw"))
            );
            let mut statuses = [a.0, b.0];
            statuses.sort_unstable();
            assert_eq!(statuses, [200, 401], "{location:?} {allowlisting}: {a:?} {b:?}");
            let loser = if a.0 == 401 { a.1 } else { b.1 };
            assert!(matches!(loser["error"].as_str(), Some("journey_replayed" | "journey_expired")), "{loser}");
        }
        assert_eq!(stored_sessions(&s).await, 3, "{location:?} {allowlisting}: one session per journey");
    }
}

#[tokio::test]
async fn forged_foreign_and_malformed_auth_ids_are_refused() {
    for location in [JourneyLocation::Server, JourneyLocation::Client] {
        let s = TestServer::with(Options {
            other_realm: Some(("partners".into(), "partner.test".into())),
            ..journeys(location, true)
        })
        .await;
        let theirs = s
            .client
            .post(s.url("/api/v1/authenticate"))
            .header("host", "auth.partner.test")
            .json(&json!({}))
            .send()
            .await
            .unwrap()
            .json::<Value>()
            .await
            .unwrap();
        let mut tampered = auth_id(&start(&s).await);
        let last = tampered.pop().unwrap();
        tampered.push(if last == 'A' { 'B' } else { 'A' });
        for bad in [auth_id(&theirs), tampered, "x".into(), "A".repeat(5000), String::new()] {
            let (status, body) = post(&s, password_step(&bad, "alice", "alice-pw")).await;
            assert_eq!(status, 401, "{location:?} {bad:?}: {body}");
            // A tampered server-side auth_id may still name its journey: a replay, which ends it.
            assert!(matches!(body["error"].as_str(), Some("journey_expired" | "journey_replayed")), "{body}");
        }
        assert_eq!(stored_sessions(&s).await, 0);
    }
}

// ----- timeout and failures -----

#[tokio::test]
async fn a_journey_ends_at_its_timeout() {
    for location in [JourneyLocation::Server, JourneyLocation::Client] {
        let s = TestServer::with(journeys(location, true)).await;
        let id = auth_id(&start(&s).await);
        s.advance(299);
        let second = start(&s).await;
        assert_eq!(post(&s, password_step(&auth_id(&second), "alice", "alice-pw")).await.0, 200);
        s.advance(1);
        let (status, body) = post(&s, password_step(&id, "alice", "alice-pw")).await;
        assert_eq!((status, body["error"].as_str()), (401, Some("journey_expired")), "{location:?}");
    }
}

#[tokio::test]
async fn three_wrong_answers_end_the_journey() {
    let s = TestServer::with(Options {
        regulation: sessiond_core::regulation::RegulationPolicy { max_retries: 10, ..Default::default() },
        ..Options::default()
    })
    .await;
    let id = auth_id(&start(&s).await);
    for _ in 0..2 {
        let (status, body) = post(&s, password_step(&id, "alice", "wrong")).await;
        assert_eq!((status, body["error"].as_str()), (401, Some("invalid_credentials")));
    }
    assert_eq!(post(&s, password_step(&id, "alice", "wrong")).await.0, 401);
    let (status, body) = post(&s, password_step(&id, "alice", "alice-pw")).await;
    assert_eq!((status, body["error"].as_str()), (401, Some("journey_expired")), "ended after the third");
}

// ----- TOTP codes -----

#[tokio::test]
async fn a_wrong_code_can_be_retried_and_a_used_code_never_passes_again() {
    let s = TestServer::start().await;
    let secret = enroll(&s, "alice").await;
    let first = auth_id(&start(&s).await);
    let second = auth_id(&post(&s, password_step(&first, "alice", "alice-pw")).await.1);
    let wrong = code_at(&secret, counter_at(s.clock.now()) + 10);
    let (status, body) = post(&s, totp_step(&second, &wrong)).await;
    assert_eq!((status, body["error"].as_str()), (401, Some("invalid_credentials")));
    let c = code(&secret, &s);
    assert_eq!(post(&s, totp_step(&second, &c)).await.0, 200, "the journey survived a wrong code");

    // The same code in another login, even within its 30 s, is refused.
    let first = auth_id(&start(&s).await);
    let second = auth_id(&post(&s, password_step(&first, "alice", "alice-pw")).await.1);
    let (status, body) = post(&s, totp_step(&second, &c)).await;
    assert_eq!((status, body["error"].as_str()), (401, Some("invalid_credentials")));
    let audit = std::fs::read_to_string(&s.audit_path).unwrap();
    assert!(audit.contains("\"totp_replayed\"") && audit.contains("\"invalid_totp\""), "{audit}");
}

#[tokio::test]
async fn wrong_codes_count_towards_the_ban() {
    let s = TestServer::start().await;
    let secret = enroll(&s, "alice").await;
    for _ in 0..3 {
        let first = auth_id(&start(&s).await);
        let second = auth_id(&post(&s, password_step(&first, "alice", "alice-pw")).await.1);
        let wrong = code_at(&secret, counter_at(s.clock.now()) + 10);
        assert_eq!(post(&s, totp_step(&second, &wrong)).await.0, 401);
    }
    let first = auth_id(&start(&s).await);
    let (status, body) = post(&s, password_step(&first, "alice", "alice-pw")).await;
    assert_eq!((status, body["error"].as_str()), (429, Some("too_many_attempts")));
}

// ----- enrollment over the API -----

#[tokio::test]
async fn enrollment_over_the_api_needs_a_code_and_removal_needs_the_password() {
    let s = TestServer::start().await;
    let token = s.login("alice", "alice-pw", false).await;
    assert_eq!(
        s.get_with_token("/api/v1/totp", &token).await.json::<Value>().await.unwrap(),
        json!({"enrolled": false})
    );
    let res = s.post_with_token("/api/v1/totp/enroll", &token, json!({})).await;
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.unwrap();
    let secret = TotpSecret::from_base32(body["secret"].as_str().unwrap()).unwrap();
    let url = body["otpauth_url"].as_str().unwrap();
    assert!(url.starts_with("otpauth://totp/127.0.0.1:alice?secret="), "{url}");

    let wrong = code_at(&secret, counter_at(s.clock.now()) + 10);
    let res = s.post_with_token("/api/v1/totp/confirm", &token, json!({"code": wrong})).await;
    assert_eq!(error_code(res).await, (400, "bad_request".into()));
    let res = s.post_with_token("/api/v1/totp/confirm", &token, json!({"code": code(&secret, &s)})).await;
    assert_eq!(res.json::<Value>().await.unwrap(), json!({"enrolled": true}));
    assert_eq!(
        s.get_with_token("/api/v1/totp", &token).await.json::<Value>().await.unwrap(),
        json!({"enrolled": true})
    );
    let stored = s.store.entry(EntryKind::Totp, "alice", s.clock.now()).await.unwrap().unwrap();
    let text = String::from_utf8_lossy(&stored.value).to_string();
    assert!(!text.contains(&secret.to_base32()), "the secret is sealed at rest: {text}");

    let delete = |body: Value| s.client.delete(s.url("/api/v1/totp")).bearer_auth(&token).json(&body).send();
    assert_eq!(error_code(delete(json!({})).await.unwrap()).await, (401, "reauthentication_required".into()));
    assert_eq!(
        error_code(delete(json!({"password": "nope"})).await.unwrap()).await,
        (401, "invalid_credentials".into())
    );
    assert_eq!(delete(json!({"password": "alice-pw"})).await.unwrap().status(), 204);
    assert_eq!(
        s.get_with_token("/api/v1/totp", &token).await.json::<Value>().await.unwrap(),
        json!({"enrolled": false})
    );
    let audit = std::fs::read_to_string(&s.audit_path).unwrap();
    assert_eq!(audit.matches("\"totp_changed\"").count(), 2, "{audit}");
}

#[tokio::test]
async fn sensitive_actions_need_a_recent_sign_in_or_the_password() {
    let s = TestServer::with(Options { reauth_window: Duration::from_secs(60), ..Options::default() }).await;
    let token = s.login("alice", "alice-pw", false).await;
    s.login("alice", "alice-pw", false).await;
    s.advance(61);
    let res = s.post_with_token("/api/v1/totp/enroll", &token, json!({})).await;
    assert_eq!(error_code(res).await, (401, "reauthentication_required".into()));
    let res = s.post_with_token("/api/v1/totp/enroll", &token, json!({"password": "wrong"})).await;
    assert_eq!(error_code(res).await, (401, "invalid_credentials".into()));
    let res = s.post_with_token("/api/v1/totp/enroll", &token, json!({"password": "alice-pw"})).await;
    assert_eq!(res.status(), 200);

    let res = s.post_with_token("/api/v1/sessions/revoke", &token, json!({"except_current": true})).await;
    assert_eq!(error_code(res).await, (401, "reauthentication_required".into()));
    assert_eq!(stored_sessions(&s).await, 2, "nothing ended");
    let res = s
        .post_with_token("/api/v1/sessions/revoke", &token, json!({"except_current": true, "password": "alice-pw"}))
        .await;
    assert_eq!(res.json::<Value>().await.unwrap(), json!({"revoked": 1}));

    // A window of 0 asks every time, even at once.
    let s = TestServer::with(Options { reauth_window: Duration::ZERO, ..Options::default() }).await;
    let token = s.login("alice", "alice-pw", false).await;
    let res = s.post_with_token("/api/v1/totp/enroll", &token, json!({})).await;
    assert_eq!(error_code(res).await, (401, "reauthentication_required".into()));
}

// ----- step-up -----

fn two_factor_rules() -> AccessControl {
    let rule = |resources: Option<Vec<String>>, policy: &str| {
        Rule::parse(&RuleSpec {
            domain: Some(vec!["app.example.test".into()]),
            resources,
            policy: Some(policy.into()),
            ..RuleSpec::default()
        })
        .unwrap()
    };
    AccessControl::new(
        Policy::Deny,
        vec![rule(Some(vec!["^/secure(/|$)".into()]), "two_factor"), rule(None, "one_factor")],
    )
}

fn behind_a_proxy() -> Options {
    Options {
        domain: Some("example.test".into()),
        trusted_proxies: vec!["127.0.0.1/32".parse().unwrap()],
        access: Some(two_factor_rules()),
        ..Options::default()
    }
}

async fn forward_auth(s: &TestServer, url: &str, cookie: &str) -> reqwest::Response {
    s.client
        .get(s.url("/api/authz/forward-auth"))
        .header("x-original-url", url)
        .header("cookie", cookie)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn step_up_over_the_api_upgrades_the_session_and_ends_the_old_one() {
    let s = TestServer::with(behind_a_proxy()).await;
    let one_factor = s.login("alice", "alice-pw", false).await;
    let other = s.login("alice", "alice-pw", false).await;
    let res = s.post_with_token("/api/v1/authenticate?journey=step_up", &one_factor, json!({})).await;
    assert_eq!(error_code(res).await, (403, "forbidden".into()), "no TOTP enrolled");
    let secret = enroll(&s, "alice").await;
    let cookie = format!("{COOKIE}={one_factor}");
    assert_eq!(forward_auth(&s, VAULT, &cookie).await.status(), 302);

    let res = s.post_with_token("/api/v1/authenticate?journey=step_up", &one_factor, json!({})).await;
    let step: Value = res.json().await.unwrap();
    assert_eq!(step["callbacks"], json!([{"type": "totp"}]));
    let res = s
        .client
        .post(s.url("/api/v1/authenticate"))
        .bearer_auth(&one_factor)
        .json(&totp_step(&auth_id(&step), &code(&secret, &s)))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let done: Value = res.json().await.unwrap();
    assert_eq!(done["session"]["amr"], json!(["pwd", "otp"]));
    let upgraded = done["session_token"].as_str().unwrap();
    assert_eq!(s.get_with_token("/api/v1/sessions/current", &one_factor).await.status(), 401, "the old one ended");
    let res = forward_auth(&s, VAULT, &format!("{COOKIE}={upgraded}")).await;
    assert_eq!((res.status().as_u16(), res.headers().get("remote-user").unwrap().to_str().unwrap()), (200, "alice"));

    // A step-up whose session ended meanwhile makes no session.
    let step: Value =
        s.post_with_token("/api/v1/authenticate?journey=step_up", &other, json!({})).await.json().await.unwrap();
    s.client.delete(s.url("/api/v1/sessions/current")).bearer_auth(&other).send().await.unwrap();
    s.advance(30);
    let res = s.post("/api/v1/authenticate", totp_step(&auth_id(&step), &code(&secret, &s))).await;
    assert_eq!(error_code(res).await, (401, "unauthenticated".into()));
}

#[tokio::test]
async fn a_two_factor_rule_sends_the_browser_to_the_code_form_and_back_with_an_upgraded_session() {
    let s = TestServer::with(behind_a_proxy()).await;
    // Signed in with the password alone, then a TOTP is set up: the session has one factor.
    let mut jar = Jar::default();
    let res = portal_login(&s, &mut jar, "alice", "alice-pw", None).await;
    assert_eq!(location(&res), "/");
    let secret = enroll(&s, "alice").await;
    let first_cookie = jar.get(COOKIE).unwrap().to_owned();

    let res = forward_auth(&s, VAULT, &format!("{COOKIE}={first_cookie}")).await;
    assert_eq!(res.status(), 302);
    let to = url::Url::parse(res.headers()["location"].to_str().unwrap()).unwrap();
    assert_eq!(to.path(), "/login/totp");
    let rd = to.query_pairs().find(|(k, _)| k == "rd").unwrap().1.into_owned();
    assert_eq!(rd, VAULT);

    let query: String = url::form_urlencoded::byte_serialize(rd.as_bytes()).collect();
    let html = get_page(&s, &mut jar, &format!("/login/totp?rd={query}")).await;
    assert!(html.contains("name=\"code\""), "{html}");
    let csrf = csrf_of(&html);
    let res =
        post_form(&s, &mut jar, "/login/totp", &[("code", &code(&secret, &s)), ("csrf", &csrf), ("rd", &rd)]).await;
    assert_eq!(res.status(), 303);
    assert_eq!(location(&res), VAULT);
    let upgraded = jar.get(COOKIE).unwrap().to_owned();
    assert_ne!(upgraded, first_cookie, "a new session token");
    assert_eq!(forward_auth(&s, VAULT, &format!("{COOKIE}={upgraded}")).await.status(), 200);
    assert_eq!(forward_auth(&s, VAULT, &format!("{COOKIE}={first_cookie}")).await.status(), 302, "the old one ended");
}

#[tokio::test]
async fn the_portal_asks_for_the_code_after_the_password() {
    let s = TestServer::start().await;
    let secret = enroll(&s, "alice").await;
    let mut jar = Jar::default();
    let res = portal_login(&s, &mut jar, "alice", "alice-pw", Some("/")).await;
    assert_eq!(res.status(), 303);
    assert_eq!(location(&res), "/login/totp?rd=%2F");
    assert!(jar.get(COOKIE).is_none(), "no session yet");
    // Going back to the password form while the code is pending leads to the code form.
    let res = get(&s, &mut jar, "/login").await;
    assert_eq!(location(&res), "/login/totp");
    let html = get_page(&s, &mut jar, "/login/totp").await;
    let csrf = csrf_of(&html);
    let wrong = code_at(&secret, counter_at(s.clock.now()) + 10);
    let res = post_form(&s, &mut jar, "/login/totp", &[("code", &wrong), ("csrf", &csrf)]).await;
    assert_eq!(location(&res), "/login/totp");
    let html = get_page(&s, &mut jar, "/login/totp").await;
    assert!(html.contains("not valid"), "the flash says why");
    let res = post_form(&s, &mut jar, "/login/totp", &[("code", &code(&secret, &s)), ("csrf", &csrf)]).await;
    assert_eq!((res.status().as_u16(), location(&res)), (303, "/"));
    assert!(jar.get(COOKIE).is_some());
    assert!(jar.get(AUTHN).is_none(), "the journey cookie is gone");
    let session = s.store.list_sessions(&SessionFilter::default()).await.unwrap().pop().unwrap();
    assert_eq!(session.amr, ["pwd", "otp"]);
}

#[tokio::test]
async fn the_portal_enrolls_with_a_qr_code_and_removes_with_the_password() {
    let s = TestServer::with(Options { reauth_window: Duration::from_secs(60), ..Options::default() }).await;
    let mut jar = Jar::default();
    let res = portal_login(&s, &mut jar, "alice", "alice-pw", None).await;
    assert_eq!(location(&res), "/", "signed in");
    let res = get(&s, &mut jar, "/totp").await;
    assert_eq!(res.status(), 200, "{:?}", res.headers());
    let html = res.text().await.unwrap();
    let csrf = csrf_of(&html);
    let res = post_form(&s, &mut jar, "/totp/enroll", &[("csrf", &csrf)]).await;
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["cache-control"], "no-store");
    let html = res.text().await.unwrap();
    assert!(html.contains("<svg") && !html.contains("<script"), "an inline QR code");
    let start = html.find("id=\"totp-secret\">").unwrap() + "id=\"totp-secret\">".len();
    let key = &html[start..start + html[start..].find('<').unwrap()];
    let secret = TotpSecret::from_base32(key).unwrap();
    let res = post_form(&s, &mut jar, "/totp/confirm", &[("csrf", &csrf), ("code", &code(&secret, &s))]).await;
    assert_eq!(location(&res), "/totp");
    let html = get_page(&s, &mut jar, "/totp").await;
    assert!(html.contains("Remove the authenticator app"), "{html}");
    assert!(sessiond_server::totp::is_enrolled(&s.store, "alice", s.clock.now()).await.unwrap());

    let res = post_form(&s, &mut jar, "/totp/remove", &[("csrf", &csrf), ("password", "wrong")]).await;
    assert_eq!(location(&res), "/totp");
    assert!(sessiond_server::totp::is_enrolled(&s.store, "alice", s.clock.now()).await.unwrap(), "still there");
    post_form(&s, &mut jar, "/totp/remove", &[("csrf", &csrf), ("password", "alice-pw")]).await;
    assert!(!sessiond_server::totp::is_enrolled(&s.store, "alice", s.clock.now()).await.unwrap());

    // Past the reauthentication window the forms ask for the password.
    let elsewhere = s.login("alice", "alice-pw", false).await;
    s.advance(61);
    let html = get_page(&s, &mut jar, "/totp").await;
    assert!(html.contains("name=\"password\""), "{html}");
    let res = post_form(&s, &mut jar, "/totp/enroll", &[("csrf", &csrf)]).await;
    assert_eq!((res.status().as_u16(), location(&res)), (303, "/totp"), "refused without the password");
    let html = get_page(&s, &mut jar, "/").await;
    assert!(html.contains("id=\"revoke_password\""), "sign out everywhere else asks for it: {html}");
    let res = post_form(&s, &mut jar, "/sessions/revoke-others", &[("csrf", &csrf)]).await;
    assert_eq!(location(&res), "/");
    assert_eq!(s.get_with_token("/api/v1/sessions/current", &elsewhere).await.status(), 200, "nothing ended");
    post_form(&s, &mut jar, "/sessions/revoke-others", &[("csrf", &csrf), ("password", "alice-pw")]).await;
    assert_eq!(s.get_with_token("/api/v1/sessions/current", &elsewhere).await.status(), 401);
}
