//! Session JWTs over real HTTP: what login and `sessions/authenticate` hand out, checked by an
//! independent implementation (the `jsonwebtoken` crate) against the published JWKS the way an
//! application would, and every forgery we know of refused by sessiond itself.

use crate::support::*;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};
use sessiond_core::access::{AccessControl, Policy, Rule, RuleSpec};
use sessiond_core::jwt::JwtSettings;
use sessiond_server::clock::Clock as _;
use sessiond_store::{EntryKind, Store};

const PORTAL: &str = "http://127.0.0.1";

async fn login_full(s: &TestServer, user: &str, password: &str) -> Value {
    let res = s.post("/api/v1/authenticate", login_body(user, password, false)).await;
    assert_eq!(res.status(), 200);
    res.json().await.unwrap()
}

async fn jwks(s: &TestServer) -> jsonwebtoken::jwk::JwkSet {
    let res = s.client.get(s.url("/.well-known/jwks.json")).send().await.unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["cache-control"], "public, max-age=300");
    res.json().await.unwrap()
}

/// Verifies `jwt` the way an application would: the key named by `kid` from the JWKS, EdDSA
/// only, our issuer and audience. The test clock is not the wall clock, so `exp` is checked by
/// hand against the session's times.
fn verify_independently(jwt: &str, set: &jsonwebtoken::jwk::JwkSet) -> Result<Value, jsonwebtoken::errors::Error> {
    let header = jsonwebtoken::decode_header(jwt)?;
    let kid = header.kid.unwrap_or_default();
    let jwk = set.find(&kid).ok_or(jsonwebtoken::errors::ErrorKind::InvalidKeyFormat)?;
    let key = jsonwebtoken::DecodingKey::from_jwk(jwk)?;
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::EdDSA);
    validation.set_issuer(&[PORTAL]);
    validation.set_audience(&["main"]);
    validation.validate_exp = false;
    validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
    Ok(jsonwebtoken::decode::<Value>(jwt, &key, &validation)?.claims)
}

fn b64(bytes: impl AsRef<[u8]>) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

fn parts(jwt: &str) -> (Value, Value, Vec<u8>) {
    let mut it = jwt.split('.');
    let header = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(it.next().unwrap()).unwrap()).unwrap();
    let payload = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(it.next().unwrap()).unwrap()).unwrap();
    (header, payload, URL_SAFE_NO_PAD.decode(it.next().unwrap()).unwrap())
}

async fn authenticate_jwt(s: &TestServer, jwt: &str) -> reqwest::Response {
    s.post("/api/v1/sessions/authenticate", json!({"session_jwt": jwt})).await
}

#[tokio::test]
async fn login_answers_a_jwt_that_an_independent_library_verifies_against_the_jwks() {
    let s = TestServer::start().await;
    let done = login_full(&s, "alice", "alice-pw").await;
    let jwt = done["session_jwt"].as_str().unwrap();
    let claims = verify_independently(jwt, &jwks(&s).await).unwrap();
    assert_eq!(claims["iss"], PORTAL);
    assert_eq!(claims["aud"], "main");
    assert_eq!(claims["sub"], "alice");
    assert_eq!(claims["sid"], done["session"]["id"]);
    assert_eq!(claims["realm"], "main");
    assert_eq!(claims["amr"], json!(["pwd"]));
    assert_eq!(claims["iat"], START);
    assert_eq!(claims["nbf"], START);
    // 5 minutes, which is also the session's idle deadline.
    assert_eq!(claims["exp"], START + 300);
    let (header, _, signature) = parts(jwt);
    assert_eq!(header["alg"], "EdDSA");
    assert_eq!(header["typ"], "JWT");
    assert_eq!(signature.len(), 64);
    assert!(!jwt.contains(done["session_token"].as_str().unwrap()), "the JWT never carries the token");
}

#[tokio::test]
async fn jwks_publishes_only_public_ed25519_keys_current_and_next() {
    let s = TestServer::start().await;
    let raw: Value = s.client.get(s.url("/.well-known/jwks.json")).send().await.unwrap().json().await.unwrap();
    let keys = raw["keys"].as_array().unwrap();
    assert_eq!(keys.len(), 2, "the signing key and the one published ahead of its turn");
    for key in keys {
        let members: Vec<&str> = key.as_object().unwrap().keys().map(String::as_str).collect();
        assert_eq!(members, ["alg", "crv", "kid", "kty", "use", "x"], "no private member (d) ever");
        assert_eq!(
            (key["kty"].as_str(), key["crv"].as_str(), key["alg"].as_str()),
            (Some("OKP"), Some("Ed25519"), Some("EdDSA"))
        );
    }
    // The keyring is kept sealed: nothing in the store reads as a key.
    let stored = s
        .store
        .entry(EntryKind::SigningKeys, "main", sessiond_core::time::Timestamp::from_unix(START))
        .await
        .unwrap()
        .unwrap();
    let text = String::from_utf8_lossy(&stored.value);
    for key in keys {
        assert!(!text.contains(key["kid"].as_str().unwrap()));
    }
    assert!(!text.contains("seed") && !text.contains("current"));
}

#[tokio::test]
async fn sessions_authenticate_accepts_a_live_jwt_and_answers_a_fresh_one() {
    let s = TestServer::start().await;
    let done = login_full(&s, "alice", "alice-pw").await;
    let first = done["session_jwt"].as_str().unwrap().to_owned();
    s.advance(60);
    let res = authenticate_jwt(&s, &first).await;
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["session"]["id"], done["session"]["id"]);
    assert_eq!(body["user"]["name"], "alice");
    let fresh = body["session_jwt"].as_str().unwrap();
    assert_ne!(fresh, first);
    let claims = verify_independently(fresh, &jwks(&s).await).unwrap();
    assert_eq!(claims["iat"], START + 60);
    // The token works too, and also answers a fresh JWT.
    let by_token = s.post("/api/v1/sessions/authenticate", json!({"session_token": done["session_token"]})).await;
    let body: Value = by_token.json().await.unwrap();
    assert!(body["session_jwt"].is_string());
}

#[tokio::test]
async fn a_jwt_of_an_ended_session_is_refused_within_its_lifetime() {
    let s = TestServer::start().await;
    let done = login_full(&s, "alice", "alice-pw").await;
    let jwt = done["session_jwt"].as_str().unwrap();
    let token = done["session_token"].as_str().unwrap();
    let res = s.client.delete(s.url("/api/v1/sessions/current")).bearer_auth(token).send().await.unwrap();
    assert_eq!(res.status(), 204);
    assert_eq!(error_code(authenticate_jwt(&s, jwt).await).await, (401, "unauthenticated".into()));
    // Revoked by "sign out everywhere" from another session too.
    let a = login_full(&s, "alice", "alice-pw").await;
    let b = login_full(&s, "alice", "alice-pw").await;
    let res = s
        .post_with_token(
            "/api/v1/sessions/revoke",
            b["session_token"].as_str().unwrap(),
            json!({"except_current": true}),
        )
        .await;
    assert_eq!(res.status(), 200);
    assert_eq!(authenticate_jwt(&s, a["session_jwt"].as_str().unwrap()).await.status(), 401);
    assert_eq!(authenticate_jwt(&s, b["session_jwt"].as_str().unwrap()).await.status(), 200);
}

#[tokio::test]
async fn expired_and_not_yet_valid_jwts_are_refused() {
    let s = TestServer::with(Options {
        timeouts: sessiond_core::timeout::Timeouts { inactivity: None, ..Default::default() },
        jwt: JwtSettings { lifetime: std::time::Duration::from_secs(120), ..JwtSettings::default() },
        ..Options::default()
    })
    .await;
    let done = login_full(&s, "alice", "alice-pw").await;
    let jwt = done["session_jwt"].as_str().unwrap().to_owned();
    s.advance(125);
    assert_eq!(authenticate_jwt(&s, &jwt).await.status(), 200, "within the leeway");
    s.advance(10);
    let (status, _) = error_code(authenticate_jwt(&s, &jwt).await).await;
    assert_eq!(status, 401, "expired, although the session lives on");
    assert_eq!(
        s.post("/api/v1/sessions/authenticate", json!({"session_token": done["session_token"]})).await.status(),
        200
    );

    // A JWT issued "in the future" (a clock moved back) is not valid yet.
    let later = s.post("/api/v1/sessions/authenticate", json!({"session_token": done["session_token"]})).await;
    let later: Value = later.json().await.unwrap();
    s.clock.set(sessiond_core::time::Timestamp::from_unix(START));
    assert_eq!(authenticate_jwt(&s, later["session_jwt"].as_str().unwrap()).await.status(), 401);
}

#[tokio::test]
async fn forged_jwts_are_refused() {
    let s = TestServer::start().await;
    let done = login_full(&s, "alice", "alice-pw").await;
    let jwt = done["session_jwt"].as_str().unwrap().to_owned();
    let (header, payload, signature) = parts(&jwt);
    let set: Value = s.client.get(s.url("/.well-known/jwks.json")).send().await.unwrap().json().await.unwrap();
    let public = URL_SAFE_NO_PAD.decode(set["keys"][0]["x"].as_str().unwrap()).unwrap();
    let kid = header["kid"].as_str().unwrap().to_owned();
    let other_kid = set["keys"][1]["kid"].as_str().unwrap().to_owned();
    let body = b64(serde_json::to_vec(&payload).unwrap());

    let mut forgeries: Vec<(&str, String)> = vec![];
    forgeries.push(("alg none", format!("{}.{body}.", b64(json!({"alg": "none", "typ": "JWT"}).to_string()))));
    forgeries.push(("alg none with kid", format!("{}.{body}.", b64(json!({"alg": "none", "kid": kid}).to_string()))));
    // HS256 keyed with the public key from the JWKS.
    let hs = jsonwebtoken::encode(
        &jsonwebtoken::Header { kid: Some(kid.clone()), ..jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256) },
        &payload,
        &jsonwebtoken::EncodingKey::from_secret(&public),
    )
    .unwrap();
    assert_eq!(parts(&hs).0["alg"], "HS256");
    forgeries.push(("HS256 with the public key", hs));
    // A stranger's Ed25519 key under our kid.
    let stranger = sessiond_core::jwt::Keyring::generate(sessiond_core::time::Timestamp::from_unix(START));
    let stranger_jwt = stranger.sign(&serde_json::from_value(payload.clone()).unwrap());
    let (_, _, stranger_sig) = parts(&stranger_jwt);
    let our_header = jwt.split('.').next().unwrap();
    forgeries.push(("foreign key under our kid", format!("{our_header}.{body}.{}", b64(&stranger_sig))));
    forgeries.push(("foreign key under its own kid", stranger_jwt));
    // Our signature under the kid of our other key.
    let swapped_header = b64(json!({"alg": "EdDSA", "typ": "JWT", "kid": other_kid}).to_string());
    forgeries.push(("swapped kid", format!("{swapped_header}.{body}.{}", b64(&signature))));
    forgeries.push(("stripped signature", format!("{our_header}.{body}.")));
    forgeries.push(("no signature part", format!("{our_header}.{body}")));
    let mut bent = signature.clone();
    bent[0] ^= 0x80;
    forgeries.push(("altered signature", format!("{our_header}.{body}.{}", b64(&bent))));
    let mut promoted = payload.clone();
    promoted["sub"] = json!("bob");
    promoted["groups"] = json!(["admins"]);
    forgeries.push((
        "altered claims",
        format!("{our_header}.{}.{}", b64(serde_json::to_vec(&promoted).unwrap()), b64(&signature)),
    ));
    let with_jwk = b64(json!({"alg": "EdDSA", "kid": kid, "jwk": set["keys"][0]}).to_string());
    forgeries.push(("embedded jwk header", format!("{with_jwk}.{body}.{}", b64(&signature))));
    forgeries.push(("garbage", "not.a.jwt".to_owned()));
    forgeries.push(("oversized", "a".repeat(10_000)));

    for (what, forged) in &forgeries {
        let res = authenticate_jwt(&s, forged).await;
        assert_eq!(error_code(res).await, (401, "unauthenticated".into()), "{what}");
    }
    // The independent library refuses the same forgeries (those it can parse at all).
    let set = jwks(&s).await;
    for (what, forged) in &forgeries {
        assert!(verify_independently(forged, &set).is_err(), "{what}");
    }
    assert_eq!(authenticate_jwt(&s, &jwt).await.status(), 200, "the genuine one still passes");
}

#[tokio::test]
async fn a_jwt_from_another_realm_is_refused() {
    let s = TestServer::with(Options {
        other_realm: Some(("partners".into(), "partner.test".into())),
        ..Options::default()
    })
    .await;
    let res = s
        .client
        .post(s.url("/api/v1/authenticate"))
        .header("host", "auth.partner.test")
        .json(&login_body("alice", "alice-pw", false))
        .send()
        .await
        .unwrap();
    let body: Value = res.json().await.unwrap();
    let partner_jwt = body["session_jwt"].as_str().unwrap();
    assert_eq!(parts(partner_jwt).1["realm"], "partners");
    assert_eq!(authenticate_jwt(&s, partner_jwt).await.status(), 401, "presented to the main realm");
    let main_kids: Vec<String> = jwks(&s).await.keys.iter().filter_map(|k| k.common.key_id.clone()).collect();
    assert!(
        !main_kids.contains(&parts(partner_jwt).0["kid"].as_str().unwrap().to_owned()),
        "realms sign with their own keys"
    );
}

#[tokio::test]
async fn jwt_cookie_is_set_at_login_renewed_and_deleted_at_logout() {
    let s =
        TestServer::with(Options { jwt: JwtSettings { cookie: true, ..JwtSettings::default() }, ..Options::default() })
            .await;
    let res = s.post("/api/v1/authenticate", login_body("alice", "alice-pw", false)).await;
    let jwt_cookie = jwt_cookies(res.headers());
    let done: Value = res.json().await.unwrap();
    assert_eq!(jwt_cookie.len(), 1);
    assert!(jwt_cookie[0].starts_with(&format!("{COOKIE}_jwt={};", done["session_jwt"].as_str().unwrap())));
    assert_eq!(attr(&jwt_cookie[0], "Max-Age"), Some("300"));
    assert!(attr(&jwt_cookie[0], "HttpOnly").is_some(), "HttpOnly like the session cookie");
    let token = done["session_token"].as_str().unwrap();

    s.advance(30);
    let res = s
        .client
        .post(s.url("/api/v1/sessions/authenticate"))
        .header("cookie", format!("{COOKIE}={token}"))
        .send()
        .await
        .unwrap();
    let renewed = jwt_cookies(res.headers());
    let body: Value = res.json().await.unwrap();
    assert_eq!(renewed.len(), 1);
    assert!(body.get("session_jwt").is_none(), "a cookie-authenticated browser gets it in the HttpOnly cookie only");

    let res = s
        .client
        .delete(s.url("/api/v1/sessions/current"))
        .header("cookie", format!("{COOKIE}={token}"))
        .send()
        .await
        .unwrap();
    let deleted = jwt_cookies(res.headers());
    assert_eq!(deleted.len(), 1);
    assert_eq!(attr(&deleted[0], "Max-Age"), Some("0"));
}

#[tokio::test]
async fn realms_without_jwts_answer_none_and_refuse_them() {
    let s = TestServer::with(Options {
        jwt: JwtSettings { enabled: false, ..JwtSettings::default() },
        ..Options::default()
    })
    .await;
    let done = login_full(&s, "alice", "alice-pw").await;
    assert!(done.get("session_jwt").is_none());
    let set: Value = s.client.get(s.url("/.well-known/jwks.json")).send().await.unwrap().json().await.unwrap();
    assert_eq!(set, json!({"keys": []}));
    assert_eq!(authenticate_jwt(&s, "a.b.c").await.status(), 401);
}

#[tokio::test]
async fn enforced_http_only_refuses_jwts_in_the_body() {
    let s = TestServer::with(Options { http_only: sessiond_core::realm::HttpOnlyMode::Enforced, ..Options::default() })
        .await;
    let (status, code) = error_code(authenticate_jwt(&s, "a.b.c").await).await;
    assert_eq!((status, code.as_str()), (400, "bad_request"));
}

#[tokio::test]
async fn rotation_keeps_earlier_jwts_valid_and_signs_with_the_published_next_key() {
    let s = TestServer::start().await;
    let before = jwks(&s).await;
    let done = login_full(&s, "alice", "alice-pw").await;
    let old_jwt = done["session_jwt"].as_str().unwrap().to_owned();
    let realm = s.app.realm("main").unwrap();
    let rotated =
        s.app.signing.rotate(&s.app.store, realm.name(), realm.policy.jwt, s.clock.now(), true).await.unwrap().unwrap();
    assert_eq!(Some(rotated.current_kid.clone()), before.keys[1].common.key_id, "the key published ahead now signs");
    let after = jwks(&s).await;
    assert_eq!(after.keys.len(), 3);
    assert!(verify_independently(&old_jwt, &after).is_ok());
    assert_eq!(authenticate_jwt(&s, &old_jwt).await.status(), 200);
    let res = s.post("/api/v1/sessions/authenticate", json!({"session_token": done["session_token"]})).await;
    let fresh: Value = res.json().await.unwrap();
    let fresh = fresh["session_jwt"].as_str().unwrap();
    assert_eq!(parts(fresh).0["kid"], rotated.current_kid);
    // A cached JWKS from before the rotation already verifies the new JWT.
    assert!(verify_independently(fresh, &before).is_ok());

    // Past the old key's last possible token, the background refresh drops it.
    s.advance(310);
    s.app.signing.refresh(&s.app).await;
    let pruned = jwks(&s).await;
    assert_eq!(pruned.keys.len(), 2);
    assert!(pruned.find(&rotated.retired_kid).is_none());
}

fn jwt_cookies(headers: &reqwest::header::HeaderMap) -> Vec<String> {
    headers
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .filter(|c| c.starts_with(&format!("{COOKIE}_jwt=")))
        .collect()
}

#[tokio::test]
async fn forward_auth_passes_a_reused_jwt_in_remote_jwt_when_enabled() {
    let rules = AccessControl::new(
        Policy::Deny,
        vec![
            Rule::parse(&RuleSpec {
                domain: Some(vec!["app.example.test".into()]),
                policy: Some("one_factor".into()),
                ..RuleSpec::default()
            })
            .unwrap(),
        ],
    );
    let s = TestServer::with(Options {
        trusted_proxies: vec!["127.0.0.1/32".parse().unwrap()],
        access: Some(rules),
        jwt: JwtSettings { header: true, ..JwtSettings::default() },
        ..Options::default()
    })
    .await;
    let done = login_full(&s, "alice", "alice-pw").await;
    let token = done["session_token"].as_str().unwrap();
    let ask = || async {
        s.client
            .get(s.url("/api/authz/auth-request"))
            .header("x-original-url", "https://app.example.test/")
            .header("cookie", format!("{COOKIE}={token}"))
            .send()
            .await
            .unwrap()
    };
    let first = ask().await;
    assert_eq!(first.status(), 200);
    let jwt = first.headers()["remote-jwt"].to_str().unwrap().to_owned();
    let claims = verify_independently(&jwt, &jwks(&s).await).unwrap();
    assert_eq!(claims["sub"], "alice");
    s.advance(100);
    let second = ask().await;
    assert_eq!(second.headers()["remote-jwt"].to_str().unwrap(), jwt, "reused while half its life is left");
    s.advance(100);
    let third = ask().await;
    assert_ne!(third.headers()["remote-jwt"].to_str().unwrap(), jwt, "renewed after that");
    // Without the setting, no Remote-Jwt.
    let plain = TestServer::with(Options {
        trusted_proxies: vec!["127.0.0.1/32".parse().unwrap()],
        access: Some(AccessControl::new(Policy::OneFactor, vec![])),
        ..Options::default()
    })
    .await;
    let token = plain.login("alice", "alice-pw", false).await;
    let res = plain
        .client
        .get(plain.url("/api/authz/auth-request"))
        .header("x-original-url", "https://app.example.test/")
        .header("cookie", format!("{COOKIE}={token}"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert!(res.headers().get("remote-jwt").is_none());
}
