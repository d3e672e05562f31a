//! Deciding whether a post-login redirect (`rd`) is safe to follow.
//!
//! After login the portal sends the browser to the `rd` it was given, so a careless check turns
//! the portal into an open redirect that phishing pages can borrow. The rules, strictest first:
//!
//! 1. The raw text is refused when it is empty, longer than [`MAX_REDIRECT_LEN`] bytes, has a
//!    control character (tab, CR and LF included: browsers silently drop them), a backslash
//!    anywhere (browsers read `\` as `/`), or whitespace at either end.
//! 2. A path (`/account`, `/`) is resolved against the portal. A value starting with `//` is a
//!    protocol-relative URL to another host and is refused, as is a path that turns into one
//!    when percent-decoded (`/%09/evil.com`, `/%2F/evil.com`).
//! 3. Anything else must be an absolute `http://` or `https://` URL, written with the `//`,
//!    without user info, whose host domain-matches one of [`RedirectPolicy::domains`] or matches
//!    an entry of [`RedirectPolicy::allowed`] (see [`AllowedRedirect`]). IP addresses pass only
//!    when listed exactly.
//!
//! Hosts are compared after the URL standard's normalisation (lowercase, percent-decoding,
//! IDNA), so `https://example.com%2eevil.com` is judged as `example.com.evil.com` and refused,
//! while `https://EXAMPLE.com` is judged as `example.com`.
//!
//! ```
//! use sessiond_core::redirect::{RedirectPolicy, validate_redirect};
//! use url::Url;
//!
//! let portal = Url::parse("https://auth.example.com/").unwrap();
//! let policy = RedirectPolicy { domains: vec!["example.com".into()], allowed: vec![] };
//! let ok = validate_redirect("https://app.example.com/x?y=1", &portal, &policy).unwrap();
//! assert_eq!(ok.as_str(), "https://app.example.com/x?y=1");
//! assert_eq!(
//!     validate_redirect("/account", &portal, &policy).unwrap().as_str(),
//!     "https://auth.example.com/account"
//! );
//! assert!(validate_redirect("https://evilexample.com/", &portal, &policy).is_err());
//! assert!(validate_redirect("//evil.com", &portal, &policy).is_err());
//! ```

use crate::cookie::{domain_matches, parse_host};
use url::{Host, Origin, Url};

/// The longest `rd` we consider, in bytes.
pub const MAX_REDIRECT_LEN: usize = 2048;

/// Where redirects may go.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RedirectPolicy {
    /// Cookie domains of the realm (and the portal host): a target host must domain-match one.
    pub domains: Vec<String>,
    /// `server.allowed_redirects` entries.
    pub allowed: Vec<String>,
}

/// Why a redirect target was refused. The reason is fixed text: the refused value is never
/// repeated, since it came from whoever crafted the link.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("redirect refused: {reason}")]
pub struct RedirectError {
    /// Why.
    pub reason: &'static str,
}

/// One parsed `server.allowed_redirects` entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AllowedRedirect {
    /// `app.other.org` (or an IP address): exactly this host, any scheme and port.
    Host(Host),
    /// `*.other.org`: any host strictly below `other.org`, not `other.org` itself.
    Subdomains(String),
    /// `https://app.other.org:8443`: exactly this scheme, host and port.
    Origin(Origin),
}

/// An `allowed_redirects` entry that cannot be used; carries the entry (it is configuration).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid allowed redirect {entry:?}: {reason}")]
pub struct AllowedRedirectError {
    /// The entry as written.
    pub entry: String,
    /// What is wrong with it.
    pub reason: &'static str,
}

impl AllowedRedirect {
    /// Parses an entry: a host, `*.` and a domain, or an `http(s)://host[:port]` origin.
    ///
    /// # Errors
    /// [`AllowedRedirectError`] for anything else, including a wildcard over a public suffix
    /// (`*.com`) and an origin with a path, query, fragment or user info.
    pub fn parse(entry: &str) -> Result<Self, AllowedRedirectError> {
        let fail = |reason| Err(AllowedRedirectError { entry: entry.to_owned(), reason });
        if entry.is_empty() {
            return fail("it is empty");
        }
        if entry.chars().any(|c| c.is_whitespace() || c.is_control() || c == '\\') {
            return fail("it contains whitespace, a control character or a backslash");
        }
        if entry.contains("://") {
            let Ok(url) = Url::parse(entry) else {
                return fail("it is not a valid origin");
            };
            if !matches!(url.scheme(), "http" | "https") {
                return fail("only http and https origins are allowed");
            }
            if !url.username().is_empty() || url.password().is_some() || entry.contains('@') {
                return fail("an origin must not contain user info");
            }
            if url.path() != "/" || entry.trim_end_matches('/').matches('/').count() > 2 {
                return fail("an origin has no path; write scheme://host[:port]");
            }
            if url.query().is_some() || url.fragment().is_some() {
                return fail("an origin has no query or fragment");
            }
            return Ok(Self::Origin(url.origin()));
        }
        if let Some(parent) = entry.strip_prefix("*.") {
            return match parse_host(parent) {
                Some(Host::Domain(d)) if d.split('.').any(str::is_empty) => fail("it has an empty label"),
                Some(Host::Domain(d)) => {
                    let is_public_suffix =
                        psl::suffix(d.as_bytes()).is_some_and(|s| s.is_known() && s.as_bytes() == d.as_bytes());
                    if is_public_suffix {
                        fail("a wildcard over a public suffix would allow other people's sites")
                    } else {
                        Ok(Self::Subdomains(d))
                    }
                }
                Some(_) => fail("a wildcard needs a domain, not an IP address"),
                None => fail("it is not a valid domain"),
            };
        }
        if entry.contains(['*', '/', '@']) {
            return fail("write a host, *.domain, or scheme://host[:port]");
        }
        match parse_host(entry) {
            Some(Host::Domain(d)) if d.split('.').any(str::is_empty) => fail("it has an empty label"),
            Some(host) => Ok(Self::Host(host)),
            None => fail("it is not a valid host"),
        }
    }

    /// Whether `url` (an absolute http(s) URL) is allowed by this entry.
    pub fn allows(&self, url: &Url) -> bool {
        match (self, url.host()) {
            (Self::Host(allowed), Some(host)) => host.to_owned() == *allowed,
            (Self::Subdomains(parent), Some(Host::Domain(host))) => host != parent && domain_matches(host, parent),
            (Self::Origin(origin), Some(_)) => url.origin() == *origin,
            _ => false,
        }
    }
}

/// Whether `host` is inside one of the policy's domains: subdomains for a domain, equality for
/// an IP address.
fn in_domains(host: &Host<&str>, domains: &[String]) -> bool {
    domains.iter().any(|entry| {
        let entry = entry.strip_prefix('.').unwrap_or(entry);
        match (host, parse_host(entry)) {
            (Host::Domain(h), Some(Host::Domain(d))) => domain_matches(h, &d),
            (host, Some(ip)) => host.to_owned() == ip,
            (_, None) => false,
        }
    })
}

/// The first byte after the leading `/` of a path, percent-decoded once, skipping whitespace
/// and control bytes: what a lenient server or browser would see as the second character.
fn second_byte_decoded(path: &str) -> Option<u8> {
    let bytes = path.as_bytes();
    let mut i = 1;
    loop {
        let (byte, len) = match bytes.get(i)? {
            b'%' => match bytes.get(i + 1..i + 3).and_then(|hex| std::str::from_utf8(hex).ok()) {
                Some(hex) => match u8::from_str_radix(hex, 16) {
                    Ok(b) => (b, 3),
                    Err(_) => (b'%', 1),
                },
                None => (b'%', 1),
            },
            &b => (b, 1),
        };
        if byte.is_ascii_whitespace() || byte.is_ascii_control() {
            i += len;
            continue;
        }
        return Some(byte);
    }
}

/// Validates `rd` against `policy`, resolving a plain absolute path against `base` (the portal).
///
/// Returns the URL to send the browser to, in its normalised form; send that, never `rd`.
///
/// # Errors
/// [`RedirectError`] for anything that is not an http(s) URL to an allowed host; see the
/// module documentation for the rules.
pub fn validate_redirect(rd: &str, base: &Url, policy: &RedirectPolicy) -> Result<Url, RedirectError> {
    let refuse = |reason| Err(RedirectError { reason });
    if rd.is_empty() {
        return refuse("the target is empty");
    }
    if rd.len() > MAX_REDIRECT_LEN {
        return refuse("the target is too long");
    }
    if rd.chars().any(char::is_control) {
        return refuse("the target contains a control character");
    }
    if rd.contains('\\') {
        return refuse("the target contains a backslash");
    }
    if rd.starts_with(char::is_whitespace) || rd.ends_with(char::is_whitespace) {
        return refuse("the target starts or ends with whitespace");
    }

    if rd.starts_with('/') {
        if rd.starts_with("//") {
            return refuse("protocol-relative targets are not allowed");
        }
        if matches!(second_byte_decoded(rd), Some(b'/' | b'\\')) {
            return refuse("the path decodes to a protocol-relative target");
        }
        let Ok(url) = base.join(rd) else {
            return refuse("the path is not valid");
        };
        if url.origin() != base.origin() {
            return refuse("the path leaves the portal");
        }
        return Ok(url);
    }

    let Some((scheme, rest)) = rd.split_once(':') else {
        return refuse("the target is neither an absolute path nor an absolute URL");
    };
    if !scheme.eq_ignore_ascii_case("http") && !scheme.eq_ignore_ascii_case("https") {
        return refuse("only http and https targets are allowed");
    }
    let Some(after_slashes) = rest.strip_prefix("//") else {
        return refuse("an absolute target must be written scheme://host");
    };
    let authority = after_slashes.split(['/', '?', '#']).next().unwrap_or_default();
    if authority.contains('@') {
        return refuse("targets with user info are not allowed");
    }
    let Ok(url) = Url::parse(rd) else {
        return refuse("the target is not a valid URL");
    };
    if !matches!(url.scheme(), "http" | "https") {
        return refuse("only http and https targets are allowed");
    }
    if !url.username().is_empty() || url.password().is_some() {
        return refuse("targets with user info are not allowed");
    }
    let Some(host) = url.host() else {
        return refuse("the target has no host");
    };
    let allowed_entry =
        || policy.allowed.iter().filter_map(|entry| AllowedRedirect::parse(entry).ok()).any(|entry| entry.allows(&url));
    if in_domains(&host, &policy.domains) || allowed_entry() {
        Ok(url)
    } else {
        refuse("the target's host is not allowed")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn portal() -> Url {
        Url::parse("https://auth.example.com/").unwrap()
    }

    fn policy() -> RedirectPolicy {
        RedirectPolicy {
            domains: vec!["example.com".into()],
            allowed: vec![
                "app.other.org".into(),
                "*.wild.org".into(),
                "https://origin.net:8443".into(),
                "http://plain.net".into(),
            ],
        }
    }

    fn check(rd: &str) -> Result<Url, RedirectError> {
        validate_redirect(rd, &portal(), &policy())
    }

    fn refused(rd: &str) -> &'static str {
        match check(rd) {
            Ok(url) => panic!("{rd:?} was allowed as {url}"),
            Err(e) => e.reason,
        }
    }

    fn allowed(rd: &str) -> String {
        match check(rd) {
            Ok(url) => url.to_string(),
            Err(e) => panic!("{rd:?} was refused: {}", e.reason),
        }
    }

    // --- allowed ---

    #[test]
    fn allows_path_on_the_portal() {
        assert_eq!(allowed("/account"), "https://auth.example.com/account");
        assert_eq!(allowed("/"), "https://auth.example.com/");
        assert_eq!(allowed("/a/b?c=d#e"), "https://auth.example.com/a/b?c=d#e");
        assert_eq!(allowed("/%2e%2e/x"), "https://auth.example.com/x");
    }

    #[test]
    fn path_resolves_against_the_portal_not_its_path() {
        let base = Url::parse("http://127.0.0.1:8470/login?rd=x").unwrap();
        let url = validate_redirect("/account", &base, &RedirectPolicy::default()).unwrap();
        assert_eq!(url.as_str(), "http://127.0.0.1:8470/account");
    }

    #[test]
    fn allows_subdomain_of_cookie_domain_with_query() {
        assert_eq!(allowed("https://app.example.com/x?y=1"), "https://app.example.com/x?y=1");
    }

    #[test]
    fn allows_cookie_domain_itself() {
        assert_eq!(allowed("https://example.com"), "https://example.com/");
        assert_eq!(allowed("http://example.com:8080/x"), "http://example.com:8080/x");
    }

    #[test]
    fn allows_uppercase_scheme_and_host() {
        assert_eq!(allowed("HTTPS://APP.Example.COM/Path"), "https://app.example.com/Path");
    }

    #[test]
    fn allows_listed_host_exactly() {
        assert_eq!(allowed("https://app.other.org/"), "https://app.other.org/");
        assert_eq!(refused("https://x.app.other.org/"), "the target's host is not allowed");
        assert_eq!(refused("https://other.org/"), "the target's host is not allowed");
    }

    #[test]
    fn allows_wildcard_for_strict_subdomains_only() {
        assert_eq!(allowed("https://a.wild.org/"), "https://a.wild.org/");
        assert_eq!(allowed("https://a.b.wild.org/"), "https://a.b.wild.org/");
        assert_eq!(refused("https://wild.org/"), "the target's host is not allowed");
        assert_eq!(refused("https://notwild.org/"), "the target's host is not allowed");
    }

    #[test]
    fn allows_listed_origin_with_port() {
        assert_eq!(allowed("https://origin.net:8443/cb"), "https://origin.net:8443/cb");
        assert_eq!(allowed("http://plain.net/x"), "http://plain.net/x");
        assert_eq!(allowed("http://plain.net:80/x"), "http://plain.net/x");
    }

    #[test]
    fn origin_entry_requires_same_scheme_host_and_port() {
        assert_eq!(refused("https://origin.net/cb"), "the target's host is not allowed");
        assert_eq!(refused("https://origin.net:8444/cb"), "the target's host is not allowed");
        assert_eq!(refused("http://origin.net:8443/cb"), "the target's host is not allowed");
        assert_eq!(refused("https://plain.net/x"), "the target's host is not allowed");
    }

    #[test]
    fn host_normalising_into_an_allowed_domain_is_allowed() {
        assert_eq!(allowed("https://example%2ecom/"), "https://example.com/");
        // Fullwidth letters and dot: IDNA maps them to ASCII `example.com`.
        assert_eq!(allowed("https://\u{ff45}xample\u{ff0e}com/"), "https://example.com/");
    }

    // --- refused before parsing ---

    #[test]
    fn refuses_empty() {
        assert_eq!(refused(""), "the target is empty");
    }

    #[test]
    fn refuses_longer_than_2048_bytes() {
        let long = format!("/{}", "a".repeat(MAX_REDIRECT_LEN));
        assert_eq!(refused(&long), "the target is too long");
        let just_fits = format!("/{}", "a".repeat(MAX_REDIRECT_LEN - 1));
        assert!(check(&just_fits).is_ok());
    }

    #[test]
    fn refuses_tab_newline_cr_nul_inside() {
        for rd in [
            "/acc\tount",
            "/acc\nount",
            "/acc\rount",
            "/acc\0ount",
            "https://exa\tmple.com/",
            "/\t/evil.com",
            "/x\u{7f}",
            "/x\u{85}",
        ] {
            assert_eq!(refused(rd), "the target contains a control character", "{rd:?}");
        }
    }

    #[test]
    fn refuses_leading_or_trailing_whitespace() {
        for rd in [" /account", "/account ", " https://example.com", "\u{a0}/account"] {
            assert_eq!(refused(rd), "the target starts or ends with whitespace", "{rd:?}");
        }
    }

    // --- known bypasses ---

    #[test]
    fn bypass_double_slash_evil_com() {
        assert_eq!(refused("//evil.com"), "protocol-relative targets are not allowed");
        assert_eq!(refused("///evil.com"), "protocol-relative targets are not allowed");
        assert_eq!(refused("//example.com"), "protocol-relative targets are not allowed");
    }

    #[test]
    fn bypass_slash_backslash_evil_com() {
        assert_eq!(refused("/\\evil.com"), "the target contains a backslash");
    }

    #[test]
    fn bypass_backslash_slash_evil_com() {
        assert_eq!(refused("\\/evil.com"), "the target contains a backslash");
        assert_eq!(refused("\\\\evil.com"), "the target contains a backslash");
    }

    #[test]
    fn bypass_https_colon_without_slashes() {
        assert_eq!(refused("https:evil.com"), "an absolute target must be written scheme://host");
        // Even towards an allowed host: browsers would resolve it against the current page.
        assert_eq!(refused("https:example.com"), "an absolute target must be written scheme://host");
    }

    #[test]
    fn bypass_https_colon_single_slash() {
        assert_eq!(refused("https:/evil.com"), "an absolute target must be written scheme://host");
    }

    #[test]
    fn bypass_percent_encoded_tab_then_slash() {
        assert_eq!(refused("/%09/evil.com"), "the path decodes to a protocol-relative target");
        assert_eq!(refused("/%2F/evil.com"), "the path decodes to a protocol-relative target");
        assert_eq!(refused("/%2f%2fevil.com"), "the path decodes to a protocol-relative target");
        assert_eq!(refused("/%5Cevil.com"), "the path decodes to a protocol-relative target");
        assert_eq!(refused("/%0d%0a/evil.com"), "the path decodes to a protocol-relative target");
        assert_eq!(refused("/%20/evil.com"), "the path decodes to a protocol-relative target");
        // A percent sign that is not an escape is just a path.
        assert_eq!(allowed("/%zz"), "https://auth.example.com/%zz");
        assert_eq!(allowed("/%"), "https://auth.example.com/%");
    }

    #[test]
    fn bypass_tab_or_newline_inside_scheme_or_host() {
        assert_eq!(refused("java\tscript:alert(1)"), "the target contains a control character");
        assert_eq!(refused("https://evil.com\n.example.com"), "the target contains a control character");
        assert_eq!(refused("/\n/evil.com"), "the target contains a control character");
    }

    #[test]
    fn bypass_javascript_scheme() {
        assert_eq!(refused("javascript:alert(1)"), "only http and https targets are allowed");
        assert_eq!(refused("JavaScript://example.com/%0aalert(1)"), "only http and https targets are allowed");
    }

    #[test]
    fn bypass_data_scheme() {
        assert_eq!(refused("data:text/html,<script>alert(1)</script>"), "only http and https targets are allowed");
        assert_eq!(refused("data:text/html;base64,PHNjcmlwdD4="), "only http and https targets are allowed");
    }

    #[test]
    fn bypass_other_schemes() {
        for rd in ["ftp://example.com/", "file:///etc/passwd", "vbscript:msgbox", "mailto:a@example.com"] {
            assert_eq!(refused(rd), "only http and https targets are allowed", "{rd}");
        }
    }

    #[test]
    fn bypass_example_com_dot_evil_com() {
        assert_eq!(refused("https://example.com.evil.com"), "the target's host is not allowed");
        assert_eq!(refused("https://example.com%2eevil.com/"), "the target's host is not allowed");
        assert_eq!(refused("https://example.com./"), "the target's host is not allowed");
    }

    #[test]
    fn bypass_evilexample_com() {
        assert_eq!(refused("https://evilexample.com"), "the target's host is not allowed");
        assert_eq!(refused("https://app.evilexample.com"), "the target's host is not allowed");
    }

    #[test]
    fn bypass_example_com_at_evil_com() {
        assert_eq!(refused("https://example.com@evil.com"), "targets with user info are not allowed");
        assert_eq!(refused("https://@example.com"), "targets with user info are not allowed");
    }

    #[test]
    fn bypass_user_and_password_on_allowed_host() {
        assert_eq!(refused("https://user:pw@app.example.com"), "targets with user info are not allowed");
        assert_eq!(refused("https://user@app.example.com/"), "targets with user info are not allowed");
    }

    #[test]
    fn bypass_fragment_at_example_com() {
        assert_eq!(refused("https://evil.com#@example.com"), "the target's host is not allowed");
    }

    #[test]
    fn bypass_query_dot_example_com() {
        assert_eq!(refused("https://evil.com?.example.com"), "the target's host is not allowed");
        assert_eq!(refused("https://evil.com/.example.com"), "the target's host is not allowed");
    }

    #[test]
    fn bypass_backslash_at_example_com() {
        assert_eq!(refused("https://evil.com\\@example.com"), "the target contains a backslash");
    }

    #[test]
    fn bypass_ipv6_loopback_literal() {
        assert_eq!(refused("http://[::1]"), "the target's host is not allowed");
        assert_eq!(refused("http://[::1]:8470/"), "the target's host is not allowed");
    }

    #[test]
    fn bypass_ip_addresses_unless_listed() {
        for rd in ["http://127.0.0.1/", "http://2130706433/", "http://0x7f.1/", "http://169.254.169.254/"] {
            assert_eq!(refused(rd), "the target's host is not allowed", "{rd}");
        }
        let listed =
            RedirectPolicy { domains: vec!["127.0.0.1".into()], allowed: vec!["[::1]".into(), "10.0.0.1".into()] };
        let ok = |rd| validate_redirect(rd, &portal(), &listed).map(|u| u.to_string());
        assert_eq!(ok("http://127.0.0.1:8470/x").unwrap(), "http://127.0.0.1:8470/x");
        // The URL standard reads these as 127.0.0.1 too; they pass only because it is listed.
        assert_eq!(ok("http://2130706433/").unwrap(), "http://127.0.0.1/");
        assert_eq!(ok("http://[::1]/").unwrap(), "http://[::1]/");
        assert_eq!(ok("http://10.0.0.1/").unwrap(), "http://10.0.0.1/");
        assert!(ok("http://127.0.0.2/").is_err());
        assert!(ok("http://10.0.0.2/").is_err());
    }

    #[test]
    fn bypass_unicode_look_alike_host() {
        // Cyrillic 'а' (U+0430) in place of 'a'.
        assert_eq!(refused("https://ex\u{430}mple.com/"), "the target's host is not allowed");
        assert_eq!(refused("https://app.ex\u{430}mple.com/"), "the target's host is not allowed");
    }

    #[test]
    fn bypass_percent_encoded_slash_in_host() {
        assert_eq!(refused("https://evil.com%2f.example.com/"), "the target is not a valid URL");
    }

    #[test]
    fn bypass_relative_without_leading_slash() {
        assert_eq!(refused("evil.com"), "the target is neither an absolute path nor an absolute URL");
        assert_eq!(refused("account"), "the target is neither an absolute path nor an absolute URL");
        assert_eq!(refused("./evil"), "the target is neither an absolute path nor an absolute URL");
    }

    #[test]
    fn bypass_empty_host() {
        assert_eq!(refused("https://"), "the target is not a valid URL");
        assert_eq!(refused("http:///evil.com"), "the target's host is not allowed");
    }

    #[test]
    fn error_never_repeats_the_input() {
        let err = check("https://evil.com/<script>").unwrap_err();
        assert_eq!(err.to_string(), "redirect refused: the target's host is not allowed");
    }

    #[test]
    fn empty_policy_allows_only_portal_paths() {
        let none = RedirectPolicy::default();
        assert!(validate_redirect("/x", &portal(), &none).is_ok());
        assert!(validate_redirect("https://auth.example.com/x", &portal(), &none).is_err());
    }

    #[test]
    fn domains_with_leading_dot_or_uppercase_still_match() {
        let p = RedirectPolicy { domains: vec![".Example.com".into()], allowed: vec![] };
        assert!(validate_redirect("https://app.example.com/", &portal(), &p).is_ok());
        assert!(validate_redirect("https://evilexample.com/", &portal(), &p).is_err());
    }

    #[test]
    fn unusable_allowed_entries_allow_nothing() {
        let p = RedirectPolicy {
            domains: vec![],
            allowed: vec!["*.com".into(), "*".into(), "".into(), "https://evil.com/path".into()],
        };
        for rd in ["https://evil.com/path", "https://a.com/", "https://x/"] {
            assert!(validate_redirect(rd, &portal(), &p).is_err(), "{rd}");
        }
    }

    // --- allowed_redirects entries ---

    #[test]
    fn entries_parse_into_their_kinds() {
        assert_eq!(
            AllowedRedirect::parse("App.Other.org"),
            Ok(AllowedRedirect::Host(Host::Domain("app.other.org".into())))
        );
        assert_eq!(AllowedRedirect::parse("*.other.org"), Ok(AllowedRedirect::Subdomains("other.org".into())));
        assert_eq!(
            AllowedRedirect::parse("https://app.other.org:8443"),
            Ok(AllowedRedirect::Origin(Url::parse("https://app.other.org:8443/").unwrap().origin()))
        );
        assert!(matches!(AllowedRedirect::parse("https://app.other.org/"), Ok(AllowedRedirect::Origin(_))));
        assert!(matches!(AllowedRedirect::parse("::1"), Ok(AllowedRedirect::Host(Host::Ipv6(_)))));
        assert!(matches!(AllowedRedirect::parse("[::1]"), Ok(AllowedRedirect::Host(Host::Ipv6(_)))));
    }

    #[test]
    fn bad_entries_are_refused_with_the_entry() {
        let reason = |e: &str| AllowedRedirect::parse(e).unwrap_err().reason;
        assert_eq!(reason(""), "it is empty");
        assert_eq!(reason("*.com"), "a wildcard over a public suffix would allow other people's sites");
        assert_eq!(reason("*.co.uk"), "a wildcard over a public suffix would allow other people's sites");
        assert_eq!(reason("*.127.0.0.1"), "a wildcard needs a domain, not an IP address");
        assert_eq!(reason("*"), "write a host, *.domain, or scheme://host[:port]");
        assert_eq!(reason("a.*.org"), "write a host, *.domain, or scheme://host[:port]");
        assert_eq!(reason("app.org/x"), "write a host, *.domain, or scheme://host[:port]");
        assert_eq!(reason("https://app.org/x"), "an origin has no path; write scheme://host[:port]");
        assert_eq!(reason("https://app.org//"), "an origin has no path; write scheme://host[:port]");
        assert_eq!(reason("https://app.org?x"), "an origin has no query or fragment");
        assert_eq!(reason("https://u@app.org"), "an origin must not contain user info");
        assert_eq!(reason("ftp://app.org"), "only http and https origins are allowed");
        assert_eq!(reason("app .org"), "it contains whitespace, a control character or a backslash");
        let err = AllowedRedirect::parse("*.com").unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid allowed redirect \"*.com\": a wildcard over a public suffix would allow other people's sites"
        );
    }

    proptest! {
        #[test]
        fn anything_allowed_is_http_to_an_allowed_place(rd in "\\PC{0,40}") {
            if let Ok(url) = check(&rd) {
                prop_assert!(matches!(url.scheme(), "http" | "https"));
                prop_assert!(url.username().is_empty() && url.password().is_none());
                let host = url.host_str().unwrap().to_owned();
                let ok = host == "auth.example.com"
                    || domain_matches(&host, "example.com")
                    || host == "app.other.org"
                    || host.ends_with(".wild.org")
                    || host == "origin.net"
                    || host == "plain.net";
                prop_assert!(ok, "{} -> {}", rd, url);
            }
        }

        #[test]
        fn hosts_glued_to_the_domain_are_refused(prefix in "[a-z0-9-]{1,10}") {
            let rd = format!("https://{prefix}example.com/");
            prop_assert!(check(&rd).is_err());
            let rd = format!("https://example.com.{prefix}.net/");
            prop_assert!(check(&rd).is_err());
        }

        #[test]
        fn plain_paths_stay_on_the_portal(path in "/[a-zA-Z0-9._~!$&'()*+,;=:@/-]{0,30}") {
            match check(&path) {
                Ok(url) => prop_assert_eq!(url.origin(), portal().origin()),
                Err(e) => prop_assert!(path.starts_with("//"), "{} refused: {}", path, e.reason),
            }
        }
    }
}
