//! Benchmarks of sessiond; see the README in this folder.
//!
//! Two kinds live here. The criterion benchmarks (`benches/core.rs`, `benches/store.rs`) time the
//! decisions every request makes and the store lookups behind them, and take their fixtures from
//! this crate. `run-http.sh` load-tests the real `sessiond` binary with wrk and compares it with
//! `bench-hello`, a bare hyper server that answers `200 ok`: the most a Rust HTTP/1.1 server can
//! do on the same core.
//!
//! `bench-memory` measures what an idle session costs in each store, and `bench-fill` makes the
//! fixtures of `run-scale.sh` (an embedded store holding a million sessions) and `run-soak.sh`
//! (a users file with cheap password hashes).

use sessiond_core::session::{SessionRecord, amr};
use sessiond_core::time::Timestamp;
use sessiond_core::token::SessionToken;
use sessiond_store::conformance::sample_session;
use sessiond_store::{Store, StoreError};
use std::time::Duration;

/// How many sessions a store holds before lookups are timed: a busy single-node deployment.
pub const PREFILLED_SESSIONS: usize = 10_000;

/// The realm every benchmark session belongs to.
pub const REALM: &str = "main";

/// The session cookie name used by the cookie benchmark, in the shape of a generated default.
pub const COOKIE_NAME: &str = "sd_4f9c2a7e";

/// The instant the benchmarks pretend it is when sessions are created.
pub const T0: Timestamp = sessiond_store::conformance::T0;

/// Fills `store` with `count` password-login sessions created at [`T0`], spread over a hundred
/// users so that the per-user index has realistic fan-out; returns their tokens in order.
///
/// # Errors
/// The first [`StoreError`] the store reports.
pub async fn prefill<S: Store>(store: &S, count: usize) -> Result<Vec<SessionToken>, StoreError> {
    let mut tokens = Vec::with_capacity(count);
    for i in 0..count {
        let user = format!("user{:03}", i % 100);
        let (token, record) = sample_session(REALM, &user, T0);
        store.create_session(&record).await?;
        tokens.push(token);
    }
    Ok(tokens)
}

/// A session as a browser login leaves it: the conformance suite's record with what real users
/// bring (a desktop browser's user agent, a full name, three groups, two factors), created at
/// `now` and idle-limited to an hour. Memory figures are measured on these.
pub fn realistic_session(realm: &str, user: &str, now: Timestamp) -> (SessionToken, SessionRecord) {
    let (token, mut record) = sample_session(realm, user, now);
    record.display_name = Some(format!("Alexandra {user} Montgomery"));
    record.email = Some(format!("{user}@corp.example.com"));
    record.groups = vec!["staff".to_owned(), "engineering".to_owned(), "vpn-users".to_owned()];
    record.amr = vec![amr::PASSWORD.to_owned(), amr::OTP.to_owned()];
    record.absolute_deadline = now + Duration::from_secs(12 * 3600);
    record.expires_at = now + Duration::from_secs(3600);
    record.ip = Some("203.0.113.57".to_owned());
    record.user_agent = Some(
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) \
         Chrome/124.0.0.0 Safari/537.36"
            .to_owned(),
    );
    (token, record)
}

/// A `Cookie` header as a browser sends it to an app behind sessiond: ten cookies (analytics,
/// consent, preferences, CSRF, another service's session) with ours, holding `token`, seventh.
pub fn realistic_cookie_header(token: &str) -> String {
    [
        "_ga=GA1.2.1843792130.1700000000".to_owned(),
        "_gid=GA1.2.982734512.1700000000".to_owned(),
        "cookie_consent=necessary%2Canalytics".to_owned(),
        "theme=dark".to_owned(),
        "lang=en-GB".to_owned(),
        "csrftoken=Vh3mJf0xQk2lY8sP1rT6wZ9bN4cD7eGa".to_owned(),
        format!("{COOKIE_NAME}={token}"),
        "_fbp=fb.1.1700000000000.1234567890".to_owned(),
        "intercom-session-abc123=dGhpcyBpcyBub3QgYSByZWFsIHNlc3Npb24=".to_owned(),
        "ajs_anonymous_id=\"5f2b7c1e-8d4a-4e8b-9a61-3c0f2d9e7b15\"".to_owned(),
    ]
    .join("; ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use sessiond_core::cookie::find_cookie;
    use sessiond_store::MemoryStore;

    #[test]
    fn the_cookie_header_holds_ten_cookies_and_ours_is_found() {
        let token = SessionToken::generate().expose();
        let header = realistic_cookie_header(&token);
        assert_eq!(header.split("; ").count(), 10);
        let found = find_cookie([header.as_bytes()], COOKIE_NAME).unwrap();
        assert_eq!(found, Some(token.as_str()));
    }

    #[test]
    fn realistic_sessions_are_distinct_and_hold_what_a_browser_login_leaves() {
        let (first_token, first) = realistic_session(REALM, "user0000001", T0);
        let (_, second) = realistic_session(REALM, "user0000001", T0);
        assert_ne!(first.id, second.id);
        assert_ne!(first.token_hash, second.token_hash);
        assert_eq!(first.token_hash, first_token.hash());
        assert_eq!(first.groups.len(), 3);
        assert!(first.user_agent.as_deref().is_some_and(|ua| ua.starts_with("Mozilla/5.0") && ua.len() > 100));
        assert!(first.expires_at > T0 && first.expires_at < first.absolute_deadline);
    }

    #[tokio::test]
    async fn prefill_creates_findable_sessions_spread_over_users() {
        let store = MemoryStore::default();
        let tokens = prefill(&store, 250).await.unwrap();
        assert_eq!(tokens.len(), 250);
        for token in [&tokens[0], &tokens[249]] {
            let found = store.session_by_token(&token.hash()).await.unwrap();
            assert_eq!(found.map(|r| r.realm), Some(REALM.to_owned()));
        }
        let filter = sessiond_store::SessionFilter { realm: Some(REALM.to_owned()), user: Some("user007".to_owned()) };
        assert_eq!(store.list_sessions(&filter).await.unwrap().len(), 3);
    }
}
