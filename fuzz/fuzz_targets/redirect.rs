//! `validate_redirect` on arbitrary `rd` text, with a fixed portal and policy.
//!
//! Checks: no panic; an accepted target is an `http(s)` URL without user info whose host is
//! inside the policy's domains or matches one of its `allowed` entries; a path stays on the
//! portal's origin; and the URL returned is itself accepted, unchanged.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sessiond_core::redirect::{MAX_REDIRECT_LEN, RedirectPolicy, validate_redirect};
use std::sync::LazyLock;
use url::{Host, Url};

const PORTAL: &str = "https://auth.example.com/";

static SETUP: LazyLock<(Url, RedirectPolicy)> = LazyLock::new(|| {
    let portal = Url::parse(PORTAL).unwrap_or_else(|e| panic!("portal URL: {e}"));
    let policy = RedirectPolicy {
        domains: vec!["example.com".into()],
        allowed: vec!["app.other.org".into(), "*.wild.org".into(), "https://origin.net:8443".into(), "10.0.0.1".into()],
    };
    (portal, policy)
});

fn below(host: &str, domain: &str) -> bool {
    host.strip_suffix(domain).is_some_and(|head| head.ends_with('.'))
}

/// The policy above, written out by hand.
fn host_is_allowed(url: &Url) -> bool {
    match url.host() {
        Some(Host::Domain(h)) => {
            h == "example.com"
                || below(h, "example.com")
                || h == "app.other.org"
                || below(h, "wild.org")
                || (h == "origin.net" && url.scheme() == "https" && url.port_or_known_default() == Some(8443))
        }
        Some(Host::Ipv4(ip)) => ip.octets() == [10, 0, 0, 1],
        _ => false,
    }
}

fuzz_target!(|rd: &str| {
    let (portal, policy) = &*SETUP;
    let Ok(url) = validate_redirect(rd, portal, policy) else {
        return;
    };
    assert!(matches!(url.scheme(), "http" | "https"), "{rd:?} accepted as {url}");
    assert!(url.username().is_empty() && url.password().is_none(), "{rd:?} accepted with user info as {url}");
    assert!(host_is_allowed(&url), "{rd:?} accepted for a host outside the policy: {url}");
    if rd.starts_with('/') {
        assert_eq!(url.origin(), portal.origin(), "path {rd:?} left the portal: {url}");
    }
    // What we send the browser passes the same check (normalising can only lengthen it by
    // percent-encoding, so skip results that outgrew the limit).
    if url.as_str().len() <= MAX_REDIRECT_LEN {
        match validate_redirect(url.as_str(), portal, policy) {
            Ok(again) => assert_eq!(again, url, "{rd:?}: the normalised URL changed on a second check"),
            Err(e) => panic!("{rd:?} accepted as {url}, which is then refused: {}", e.reason),
        }
    }
});
