//! The decisions every authenticated request makes, with no I/O: reading the session cookie,
//! parsing and hashing the token, the timeout verdict, and (at login) the redirect check.

use criterion::Criterion;
use sessiond_bench::{COOKIE_NAME, T0, realistic_cookie_header};
use sessiond_core::cookie::find_cookie;
use sessiond_core::redirect::{RedirectPolicy, validate_redirect};
use sessiond_core::timeout::{Timeouts, Verdict};
use sessiond_core::token::SessionToken;
use std::hint::black_box;
use std::time::Duration;
use url::Url;

fn timeout_verdict(c: &mut Criterion) {
    let timeouts = Timeouts::default();
    let times = timeouts.at_login(T0, false);
    let mut group = c.benchmark_group("timeout_verdict");
    // Inside the throttle interval (5m / 10): the common case, where nothing is written.
    let quiet = T0 + Duration::from_secs(10);
    // Past it: the verdict asks the store to write last_seen.
    let touching = T0 + Duration::from_secs(40);
    for (name, now) in [("live_no_touch", quiet), ("live_touch", touching)] {
        assert!(matches!(timeouts.verdict(&times, now), Verdict::Alive(_)));
        group.bench_function(name, |b| {
            b.iter(|| black_box(&timeouts).verdict(black_box(&times), black_box(now)));
        });
    }
    group.finish();
}

fn token_parse_and_hash(c: &mut Criterion) {
    let text = SessionToken::generate().expose();
    c.bench_function("token_parse_and_hash", |b| {
        b.iter(|| SessionToken::parse(black_box(&text)).map(|token| token.hash()));
    });
}

fn cookie_find(c: &mut Criterion) {
    let token = SessionToken::generate().expose();
    let header = realistic_cookie_header(&token);
    assert_eq!(find_cookie([header.as_bytes()], COOKIE_NAME), Ok(Some(token.as_str())));
    c.bench_function("find_cookie_10_cookies", |b| {
        b.iter(|| find_cookie([black_box(header.as_bytes())], black_box(COOKIE_NAME)));
    });
}

fn redirect_validate(c: &mut Criterion) {
    let Ok(portal) = Url::parse("https://auth.example.com/") else {
        return;
    };
    let policy = RedirectPolicy {
        domains: vec!["example.com".to_owned()],
        allowed: vec!["*.partner.org".to_owned(), "https://tools.other.net:8443".to_owned()],
    };
    let mut group = c.benchmark_group("validate_redirect");
    let cases = [
        ("absolute_allowed", "https://app.example.com/projects/42?tab=settings#top", true),
        ("allowed_redirects_entry", "https://crm.partner.org/deals", true),
        ("path", "/account/sessions", true),
        ("lookalike_refused", "https://example.com.evil.net/", false),
    ];
    for (name, rd, allowed) in cases {
        assert_eq!(validate_redirect(rd, &portal, &policy).is_ok(), allowed, "{rd}");
        group.bench_function(name, |b| {
            b.iter(|| validate_redirect(black_box(rd), black_box(&portal), black_box(&policy)));
        });
    }
    group.finish();
}

/// Signing a session JWT (every login and `sessions/authenticate`; forward auth reuses one per
/// session for half its lifetime) and verifying one (`sessions/authenticate` with a JWT).
fn session_jwt(c: &mut Criterion) {
    use sessiond_core::jwt::{Claims, Expected, Keyring};
    let ring = Keyring::generate(T0);
    let claims = Claims {
        iss: "https://auth.example.com".into(),
        aud: "main".into(),
        sub: "alice".into(),
        sid: "Qb0uJ3vX2c8l1ZkqfZb3Qw".into(),
        iat: T0.unix(),
        nbf: T0.unix(),
        exp: T0.unix() + 300,
        amr: vec!["pwd".into()],
        realm: "main".into(),
        email: Some("alice@example.com".into()),
        name: Some("Alice Liddell".into()),
        groups: vec!["admins".into(), "dev".into()],
        attributes: Default::default(),
    };
    let jwt = ring.sign(&claims);
    let expected = Expected { issuer: "https://auth.example.com", audience: "main", realm: "main" };
    assert!(ring.verify(&jwt, &expected, T0).is_ok());
    let mut group = c.benchmark_group("session_jwt");
    group.bench_function("sign", |b| b.iter(|| black_box(&ring).sign(black_box(&claims))));
    group.bench_function("verify", |b| b.iter(|| black_box(&ring).verify(black_box(&jwt), &expected, T0)));
    group.finish();
}

// Written out rather than with criterion_group!, whose generated function has no docs.
fn main() {
    let mut c = Criterion::default().configure_from_args();
    timeout_verdict(&mut c);
    token_parse_and_hash(&mut c);
    cookie_find(&mut c);
    redirect_validate(&mut c);
    session_jwt(&mut c);
    c.final_summary();
}
