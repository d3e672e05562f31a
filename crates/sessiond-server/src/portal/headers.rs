//! Security headers on every portal answer: no scripts, no framing, no referrer, no caching.
//!
//! The Content-Security-Policy's `form-action` needs care: Chrome applies it to the redirect
//! that follows a form POST as well, so the sign-in form's `303` to an app of the domain is
//! blocked unless the app's origin is listed. Pages therefore get a policy listing where the
//! realm may redirect (its cookie domain, the portal host, `server.allowed_redirects`); other
//! answers get the plain policy with `form-action 'self'`.

use crate::state::{App, Realm};
use axum::extract::Request;
use axum::http::{HeaderName, HeaderValue, header};
use axum::middleware::Next;
use axum::response::Response;
use sessiond_core::redirect::AllowedRedirect;
use url::Host;

/// The policy before the `form-action` directive.
const CSP_BASE: &str = "default-src 'none'; style-src 'self'; img-src 'self' data:";
/// The policy after it.
const CSP_TAIL: &str = "frame-ancestors 'none'; base-uri 'none'";
/// The policy of answers that are not pages (stylesheet, redirects, errors).
const CSP_PLAIN: &str = "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// Middleware: adds the security headers, keeping a page's own Content-Security-Policy.
pub(crate) async fn security_headers(req: Request, next: Next) -> Response {
    let mut response = next.run(req).await;
    let headers = response.headers_mut();
    headers.entry(header::CONTENT_SECURITY_POLICY).or_insert(HeaderValue::from_static(CSP_PLAIN));
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    // `same-origin`, not `no-referrer`: under `no-referrer` browsers post forms with `Origin: null`,
    // which the same-origin check must refuse. Cross-origin navigations (to `rd`) still get none.
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("same-origin"));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(HeaderName::from_static("cross-origin-opener-policy"), HeaderValue::from_static("same-origin"));
    response
}

/// The one line of script a portal page runs: it sends the SAML continue page's form, from the
/// portal's own site (see `saml.rs`). Allowed by its hash, nothing else is.
#[cfg(feature = "saml")]
pub(crate) const CONTINUE_SCRIPT: &str = "document.getElementById('continue').submit();";

/// The Content-Security-Policy of the SAML continue page: the pages' own (`form-action` covers
/// the redirects after the form too, on to `rd`), plus [`CONTINUE_SCRIPT`] by its SHA-256.
#[cfg(feature = "saml")]
pub(crate) fn continue_page_policy(app: &App, realm: &Realm) -> HeaderValue {
    use base64::Engine as _;
    use sha2::Digest as _;
    let hash = base64::engine::general_purpose::STANDARD.encode(sha2::Sha256::digest(CONTINUE_SCRIPT.as_bytes()));
    let sources = form_action_sources(realm, &app.settings.allowed_redirects).join(" ");
    HeaderValue::from_str(&format!("{CSP_BASE}; script-src 'sha256-{hash}'; form-action {sources}; {CSP_TAIL}"))
        .unwrap_or(HeaderValue::from_static(CSP_PLAIN))
}

/// The Content-Security-Policy of the realm's pages.
pub(crate) fn content_security_policy(app: &App, realm: &Realm) -> HeaderValue {
    let sources = form_action_sources(realm, &app.settings.allowed_redirects).join(" ");
    HeaderValue::from_str(&format!("{CSP_BASE}; form-action {sources}; {CSP_TAIL}"))
        .unwrap_or(HeaderValue::from_static(CSP_PLAIN))
}

/// Where forms, and the redirects after them, may go: `'self'`, the portal, and every origin that
/// `validate_redirect` lets the realm redirect to. Redirects may use any port, hence `:*`; plain
/// `http://` sources only when the portal itself is plain http.
fn form_action_sources(realm: &Realm, allowed: &[String]) -> Vec<String> {
    let portal = &realm.policy.portal_url;
    let schemes: &[&str] = if portal.scheme() == "http" { &["https", "http"] } else { &["https"] };
    let mut sources = vec!["'self'".to_owned()];
    if portal.origin().is_tuple() {
        sources.push(portal.origin().ascii_serialization());
    }
    let mut hosts: Vec<(String, bool)> = Vec::new();
    for domain in realm.redirect_policy(&[]).domains {
        let domain = domain.strip_prefix('.').unwrap_or(&domain).to_owned();
        let subdomains = matches!(Host::parse(&domain), Ok(Host::Domain(_)));
        hosts.push((domain, subdomains));
    }
    for entry in allowed {
        match AllowedRedirect::parse(entry) {
            Ok(AllowedRedirect::Host(Host::Domain(d))) => hosts.push((d, false)),
            Ok(AllowedRedirect::Host(Host::Ipv4(ip))) => hosts.push((ip.to_string(), false)),
            Ok(AllowedRedirect::Subdomains(d)) => sources.extend(schemes.iter().map(|s| format!("{s}://*.{d}:*"))),
            Ok(AllowedRedirect::Origin(origin)) => sources.push(origin.ascii_serialization()),
            // CSP has no syntax for IPv6 literals; such redirects work where form-action is not
            // applied to redirects.
            Ok(AllowedRedirect::Host(Host::Ipv6(_))) | Err(_) => {}
        }
    }
    for (host, subdomains) in hosts {
        for scheme in schemes {
            sources.push(format!("{scheme}://{host}:*"));
            if subdomains {
                sources.push(format!("{scheme}://*.{host}:*"));
            }
        }
    }
    // Configuration is validated elsewhere; still, nothing that could end the directive or start
    // another one gets into the header.
    sources.retain(|s| s.bytes().all(|b| b.is_ascii_alphanumeric() || b"'.-:/*[]".contains(&b)));
    let mut seen = std::collections::HashSet::new();
    sources.retain(|s| seen.insert(s.clone()));
    sources
}

#[cfg(test)]
mod tests {
    use super::*;
    use sessiond_core::cookie::SameSite;
    use sessiond_core::realm::{CookieSettings, HttpOnlyMode, RealmPolicy};

    fn realm(portal: &str, domain: Option<&str>) -> Realm {
        let policy = RealmPolicy {
            name: "main".into(),
            portal_url: portal.parse().unwrap(),
            cookie: CookieSettings {
                name: None,
                domain: domain.map(str::to_owned),
                same_site: SameSite::Lax,
                secure: true,
                persistent: true,
                http_only: HttpOnlyMode::On,
            },
            timeouts: Default::default(),
            jwt: Default::default(),
            location: Default::default(),
            journeys: Default::default(),
        };
        Realm::new(policy, "sd_x")
    }

    #[test]
    fn https_portal_allows_the_cookie_domain_and_its_subdomains_over_https() {
        let sources = form_action_sources(&realm("https://auth.example.test/", Some("example.test")), &[]);
        assert_eq!(
            sources,
            [
                "'self'",
                "https://auth.example.test",
                "https://example.test:*",
                "https://*.example.test:*",
                "https://auth.example.test:*",
                "https://*.auth.example.test:*",
            ]
        );
    }

    #[test]
    fn http_portal_adds_http_and_allowed_redirects_are_listed() {
        let allowed =
            ["other.org".to_owned(), "*.apps.net".to_owned(), "https://x.io:8443".to_owned(), "bad entry".to_owned()];
        let sources = form_action_sources(&realm("http://127.0.0.1:8470/", None), &allowed);
        assert_eq!(
            sources,
            [
                "'self'",
                "http://127.0.0.1:8470",
                "https://*.apps.net:*",
                "http://*.apps.net:*",
                "https://x.io:8443",
                "https://127.0.0.1:*",
                "http://127.0.0.1:*",
                "https://other.org:*",
                "http://other.org:*",
            ]
        );
    }

    #[test]
    fn the_page_policy_keeps_every_fixed_directive() {
        let policy = format!("{CSP_BASE}; form-action 'self'; {CSP_TAIL}");
        assert_eq!(policy, CSP_PLAIN);
    }
}
