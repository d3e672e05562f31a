//! Cookies: building `Set-Cookie` values, finding ours in a `Cookie` header, and validating
//! cookie names and domains.
//!
//! Every cookie sessiond writes goes through one [`CookieSpec`], so the attributes of the cookie
//! that sets a session and of the one that deletes it never drift apart: a deleting cookie with a
//! different `Domain` or `Path` deletes nothing. The session cookie's companions (`<name>_flash`,
//! `<name>_authn`, `<name>_jwt`) are the same spec under another name ([`CookieSpec::companion`]).
//!
//! ```
//! use sessiond_core::cookie::{CookieSpec, SameSite, find_cookie};
//! use std::time::Duration;
//!
//! let spec = CookieSpec {
//!     name: "sd_4f9c2a7e".into(),
//!     domain: Some("example.com".into()),
//!     secure: true,
//!     http_only: true,
//!     same_site: SameSite::Lax,
//!     persistent: true,
//! };
//! assert_eq!(
//!     spec.set_cookie("abc", Some(Duration::from_secs(300))),
//!     "sd_4f9c2a7e=abc; Path=/; Domain=example.com; Max-Age=300; HttpOnly; Secure; SameSite=Lax"
//! );
//! let header: &[u8] = b"theme=dark; sd_4f9c2a7e=abc";
//! assert_eq!(find_cookie([header], "sd_4f9c2a7e").unwrap(), Some("abc"));
//! ```

use std::fmt::Write as _;
use std::net::IpAddr;
use std::time::Duration;
use url::{Host, Url};

/// The `SameSite` attribute.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SameSite {
    /// `SameSite=Strict`.
    Strict,
    /// `SameSite=Lax` (default).
    #[default]
    Lax,
    /// `SameSite=None` (requires `Secure`).
    None,
}

impl SameSite {
    /// The attribute's value as written in `Set-Cookie`.
    pub fn as_str(self) -> &'static str {
        match self {
            SameSite::Strict => "Strict",
            SameSite::Lax => "Lax",
            SameSite::None => "None",
        }
    }
}

/// Suffix of the flash cookie, which carries a login error code to the next page.
pub const FLASH_SUFFIX: &str = "_flash";
/// Suffix of the authentication-session (journey) cookie.
pub const AUTHN_SUFFIX: &str = "_authn";
/// Suffix of the cookie that carries the session JWT.
pub const JWT_SUFFIX: &str = "_jwt";
/// The suffixes of our companion cookies; a session cookie name may not end with one.
pub const RESERVED_SUFFIXES: [&str; 3] = [FLASH_SUFFIX, AUTHN_SUFFIX, JWT_SUFFIX];
/// The longest cookie name we accept, in characters.
pub const MAX_COOKIE_NAME_LEN: usize = 64;

/// Everything needed to write one of our cookies.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CookieSpec {
    /// Cookie name.
    pub name: String,
    /// `Domain` attribute; host-only when `None`.
    pub domain: Option<String>,
    /// `Secure` attribute.
    pub secure: bool,
    /// `HttpOnly` attribute.
    pub http_only: bool,
    /// `SameSite` attribute.
    pub same_site: SameSite,
    /// Whether the cookie carries `Max-Age` (false: a browser-session cookie).
    pub persistent: bool,
}

impl CookieSpec {
    /// A `Set-Cookie` value carrying `value`; `Max-Age` only when persistent and `max_age` given.
    ///
    /// Attributes always come in this order:
    /// `name=value; Path=/; Domain=<d>; Max-Age=<secs>; HttpOnly; Secure; SameSite=<s>`, each
    /// present only when it applies. There is no `Expires`: it would need a clock, and every
    /// browser we serve honours `Max-Age`. `value` must consist of cookie octets (our tokens
    /// are base64url, which does); see [`is_cookie_value`].
    pub fn set_cookie(&self, value: &str, max_age: Option<Duration>) -> String {
        debug_assert!(is_cookie_value(value.as_bytes()), "cookie values must be cookie octets");
        let max_age = if self.persistent { max_age } else { None };
        self.write(value, max_age)
    }

    /// A `Set-Cookie` value that deletes the cookie (same name, Domain and Path; `Max-Age=0`).
    ///
    /// It repeats `Secure` and the other attributes too, because browsers refuse a cookie named
    /// `__Host-…` or `__Secure-…` without `Secure`, and that includes the deleting one.
    /// `Max-Age=0` is written even for browser-session cookies.
    pub fn delete_cookie(&self) -> String {
        self.write("", Some(Duration::ZERO))
    }

    /// The same spec for the companion cookie `<name><suffix>` (`_flash`, `_authn`, `_jwt`).
    pub fn companion(&self, suffix: &str) -> CookieSpec {
        CookieSpec { name: format!("{}{suffix}", self.name), ..self.clone() }
    }

    fn write(&self, value: &str, max_age: Option<Duration>) -> String {
        let mut out = format!("{}={value}; Path=/", self.name);
        if let Some(domain) = &self.domain {
            // Writing to a String cannot fail.
            let _ = write!(out, "; Domain={domain}");
        }
        if let Some(age) = max_age {
            let _ = write!(out, "; Max-Age={}", age.as_secs());
        }
        if self.http_only {
            out.push_str("; HttpOnly");
        }
        if self.secure {
            out.push_str("; Secure");
        }
        let _ = write!(out, "; SameSite={}", self.same_site.as_str());
        out
    }
}

/// Why a `Cookie` header could not be read for our cookie.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CookieParseError {
    /// Our cookie appears more than once with different values.
    #[error("cookie {name:?} appears more than once")]
    Duplicate {
        /// The cookie name.
        name: String,
    },
    /// Our cookie's value is not valid text.
    #[error("cookie {name:?} has an invalid value")]
    InvalidValue {
        /// The cookie name.
        name: String,
    },
}

/// Whether `value` consists only of RFC 6265 cookie octets: visible ASCII except `"`, `,`, `;`
/// and `\`. The empty value qualifies.
pub fn is_cookie_value(value: &[u8]) -> bool {
    value.iter().all(|&b| matches!(b, 0x21 | 0x23..=0x2B | 0x2D..=0x3A | 0x3C..=0x5B | 0x5D..=0x7E))
}

fn trim_ows(mut bytes: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = bytes {
        bytes = rest;
    }
    while let [rest @ .., b' ' | b'\t'] = bytes {
        bytes = rest;
    }
    bytes
}

/// Finds the value of cookie `name` in the given `Cookie` header values.
///
/// Each item is one `Cookie` header value (HTTP/2 clients may send several). Values are read as
/// bytes, so another site's cookie that is not UTF-8 never hides ours. One pair of surrounding
/// double quotes is removed from the value. Our cookie sent twice with the same value is
/// accepted; an empty value is returned as `Some("")`.
///
/// # Errors
/// [`CookieParseError::Duplicate`] when the cookie appears with different values (a browser
/// holding cookies for several domains or paths; we cannot tell which is current), and
/// [`CookieParseError::InvalidValue`] when its value has bytes outside the cookie octets.
pub fn find_cookie<'a>(
    headers: impl IntoIterator<Item = &'a [u8]>,
    name: &str,
) -> Result<Option<&'a str>, CookieParseError> {
    let mut found: Option<&'a str> = None;
    for header in headers {
        for pair in header.split(|&b| b == b';') {
            let pair = trim_ows(pair);
            let Some(eq) = pair.iter().position(|&b| b == b'=') else {
                continue;
            };
            let (key, value) = pair.split_at(eq);
            if trim_ows(key) != name.as_bytes() {
                continue;
            }
            let mut value = trim_ows(value.get(1..).unwrap_or_default());
            if let [b'"', inner @ .., b'"'] = value {
                value = inner;
            }
            let invalid = || CookieParseError::InvalidValue { name: name.to_owned() };
            if !is_cookie_value(value) {
                return Err(invalid());
            }
            let value = std::str::from_utf8(value).map_err(|_| invalid())?;
            match found {
                Some(previous) if previous != value => {
                    return Err(CookieParseError::Duplicate { name: name.to_owned() });
                }
                _ => found = Some(value),
            }
        }
    }
    Ok(found)
}

/// Why a cookie name was refused. Every variant carries the name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CookieNameError {
    /// The name is empty.
    #[error("invalid cookie name {name:?}: it is empty")]
    Empty {
        /// The name as given.
        name: String,
    },
    /// The name is longer than [`MAX_COOKIE_NAME_LEN`].
    #[error("invalid cookie name {name:?}: it is {len} characters long; at most {MAX_COOKIE_NAME_LEN} are allowed")]
    TooLong {
        /// The name as given.
        name: String,
        /// Its length in characters.
        len: usize,
    },
    /// The name contains a character outside the RFC 6265 token characters.
    #[error("invalid cookie name {name:?}: contains {ch:?} which is not allowed in a cookie name")]
    ForbiddenChar {
        /// The name as given.
        name: String,
        /// The first offending character.
        ch: char,
    },
    /// A `__Host-` or `__Secure-` name without the `Secure` attribute.
    #[error("invalid cookie name {name:?}: names starting with {prefix:?} require a Secure cookie")]
    PrefixRequiresSecure {
        /// The name as given.
        name: String,
        /// `__Host-` or `__Secure-`.
        prefix: &'static str,
    },
    /// A `__Host-` name with a `Domain`.
    #[error("invalid cookie name {name:?}: names starting with \"__Host-\" must not have a Domain")]
    HostPrefixWithDomain {
        /// The name as given.
        name: String,
    },
    /// A name starting like `__Host-` or `__Secure-` in another letter case (or `__host` without
    /// the dash), which browsers may or may not treat as the prefix.
    #[error(
        "invalid cookie name {name:?}: it starts like the {prefix:?} prefix spelled another way; write {prefix:?} exactly or choose another name"
    )]
    PrefixCase {
        /// The name as given.
        name: String,
        /// `__Host-` or `__Secure-`.
        prefix: &'static str,
    },
    /// A name another product relies on.
    #[error("invalid cookie name {name:?}: the name is reserved by other single sign-on products")]
    Reserved {
        /// The name as given.
        name: String,
    },
    /// A name ending like one of our companion cookies.
    #[error("invalid cookie name {name:?}: names ending in {suffix:?} would collide with sessiond's companion cookies")]
    ReservedSuffix {
        /// The name as given.
        name: String,
        /// The suffix it ends with.
        suffix: &'static str,
    },
}

impl CookieNameError {
    /// The refused name.
    pub fn name(&self) -> &str {
        match self {
            Self::Empty { name }
            | Self::TooLong { name, .. }
            | Self::ForbiddenChar { name, .. }
            | Self::PrefixRequiresSecure { name, .. }
            | Self::HostPrefixWithDomain { name }
            | Self::PrefixCase { name, .. }
            | Self::Reserved { name }
            | Self::ReservedSuffix { name, .. } => name,
        }
    }
}

fn is_token_char(c: char) -> bool {
    c.is_ascii_graphic() && !"()<>@,;:\\\"/[]?={}".contains(c)
}

fn starts_with_ignore_case(text: &str, prefix: &str) -> bool {
    text.as_bytes().get(..prefix.len()).is_some_and(|head| head.eq_ignore_ascii_case(prefix.as_bytes()))
}

fn ends_with_ignore_case(text: &str, suffix: &str) -> bool {
    text.len() >= suffix.len()
        && text
            .as_bytes()
            .get(text.len() - suffix.len()..)
            .is_some_and(|tail| tail.eq_ignore_ascii_case(suffix.as_bytes()))
}

/// Checks a session cookie name chosen in config or through the admin API.
///
/// Accepted names are 1 to 64 RFC 6265 token characters (visible ASCII except
/// `()<>@,;:\"/[]?={}`). A `__Host-` name needs `secure` and no `domain`; a `__Secure-` name
/// needs `secure`. Refused as well: those prefixes in another letter case (browsers apply the
/// prefix rules regardless of case), `iPlanetDirectoryPro` (the cookie of ForgeRock and Sun
/// access managers, which may share the domain), and names ending in `_flash`, `_authn` or
/// `_jwt`, which would collide with the companion cookies of another realm's session cookie.
///
/// # Errors
/// [`CookieNameError`] carrying the name and the reason.
pub fn validate_cookie_name(name: &str, secure: bool, domain: Option<&str>) -> Result<(), CookieNameError> {
    let owned = || name.to_owned();
    if name.is_empty() {
        return Err(CookieNameError::Empty { name: owned() });
    }
    if let Some(ch) = name.chars().find(|&c| !is_token_char(c)) {
        return Err(CookieNameError::ForbiddenChar { name: owned(), ch });
    }
    // Only ASCII is left, so bytes are characters.
    if name.len() > MAX_COOKIE_NAME_LEN {
        return Err(CookieNameError::TooLong { name: owned(), len: name.len() });
    }
    if name.eq_ignore_ascii_case("iPlanetDirectoryPro") {
        return Err(CookieNameError::Reserved { name: owned() });
    }
    if starts_with_ignore_case(name, "__host") {
        if !name.starts_with("__Host-") {
            return Err(CookieNameError::PrefixCase { name: owned(), prefix: "__Host-" });
        }
        if !secure {
            return Err(CookieNameError::PrefixRequiresSecure { name: owned(), prefix: "__Host-" });
        }
        if domain.is_some() {
            return Err(CookieNameError::HostPrefixWithDomain { name: owned() });
        }
    }
    if starts_with_ignore_case(name, "__secure-") {
        if !name.starts_with("__Secure-") {
            return Err(CookieNameError::PrefixCase { name: owned(), prefix: "__Secure-" });
        }
        if !secure {
            return Err(CookieNameError::PrefixRequiresSecure { name: owned(), prefix: "__Secure-" });
        }
    }
    if let Some(suffix) = RESERVED_SUFFIXES.into_iter().find(|s| ends_with_ignore_case(name, s)) {
        return Err(CookieNameError::ReservedSuffix { name: owned(), suffix });
    }
    Ok(())
}

/// A fresh default cookie name for a realm: `sd_` and 8 lowercase hex digits from the operating
/// system's CSPRNG (`sd_4f9c2a7e`). A random name keeps several sessiond installs on one
/// domain, and cookie-name guessing scripts, from colliding.
pub fn default_cookie_name() -> String {
    use rand::RngCore as _;
    format!("sd_{:08x}", rand::rngs::OsRng.next_u32())
}

/// Why a cookie domain was refused. Every variant carries the domain as given.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CookieDomainError {
    /// The domain is empty.
    #[error("invalid cookie domain {domain:?}: it is empty")]
    Empty {
        /// The domain as given.
        domain: String,
    },
    /// The domain is not a valid host name.
    #[error("invalid cookie domain {domain:?}: {reason}")]
    Invalid {
        /// The domain as given.
        domain: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The domain is a public suffix: a cookie for it would reach every site under it.
    #[error(
        "invalid cookie domain {domain:?}: it is a public suffix; browsers refuse such cookies, so use the portal's own domain"
    )]
    PublicSuffix {
        /// The domain as given.
        domain: String,
    },
    /// An IP address that is not the portal's host.
    #[error(
        "invalid cookie domain {domain:?}: an IP address is only allowed when it is the portal's host ({portal_host:?})"
    )]
    IpNotPortal {
        /// The domain as given.
        domain: String,
        /// The portal's host.
        portal_host: String,
    },
    /// The portal's host is outside the domain, so the portal could not set the cookie.
    #[error("invalid cookie domain {domain:?}: the portal's host {portal_host:?} is not inside it")]
    PortalOutside {
        /// The domain as given.
        domain: String,
        /// The portal's host.
        portal_host: String,
    },
}

/// Parses a host as written in config or a URL: a domain (lowercased, IDNA to ASCII), an IPv4
/// address, or an IPv6 address with or without brackets.
pub(crate) fn parse_host(text: &str) -> Option<Host> {
    if let Ok(ip) = text.parse::<IpAddr>() {
        return Some(match ip {
            IpAddr::V4(v4) => Host::Ipv4(v4),
            IpAddr::V6(v6) => Host::Ipv6(v6),
        });
    }
    Host::parse(text).ok()
}

/// Checks the `Domain` of a realm's cookies against the portal that sets them, and returns it
/// normalised: lowercase, in ASCII (IDNA), without the leading dot.
///
/// Refused: an empty domain, anything that is not a host name, an IP address other than the
/// portal's host, a public suffix (`com`, `co.uk`, `github.io`: browsers drop such cookies, and
/// honouring them would hand the session to every site under the suffix), and a domain the
/// portal's host is not inside (the portal could not set the cookie).
///
/// # Errors
/// [`CookieDomainError`] carrying the domain as given.
pub fn validate_cookie_domain(domain: &str, portal_host: &str) -> Result<String, CookieDomainError> {
    let given = || domain.to_owned();
    let lower = domain.to_lowercase();
    let bare = lower.strip_prefix('.').unwrap_or(&lower);
    if bare.is_empty() {
        return Err(CookieDomainError::Empty { domain: given() });
    }
    let invalid = |reason| CookieDomainError::Invalid { domain: given(), reason };
    if bare.chars().any(|c| c.is_ascii() && !(c.is_ascii_alphanumeric() || "-._:[]".contains(c))) {
        return Err(invalid("only letters, digits, '-', '.' and '_' are allowed in a domain"));
    }
    let portal = parse_host(&portal_host.to_lowercase());
    let normalised = match parse_host(bare) {
        None => return Err(invalid("it is not a valid host name")),
        Some(Host::Domain(d)) => d,
        Some(ip) => {
            return if portal.as_ref() == Some(&ip) {
                Ok(ip.to_string())
            } else {
                Err(CookieDomainError::IpNotPortal { domain: given(), portal_host: portal_host.to_owned() })
            };
        }
    };
    if normalised.split('.').any(str::is_empty) {
        return Err(invalid("it has an empty label (two dots in a row, or a trailing dot)"));
    }
    let portal_domain = match &portal {
        Some(Host::Domain(d)) => Some(d.as_str()),
        _ => None,
    };
    if let Some(suffix) = psl::suffix(normalised.as_bytes()) {
        if suffix.as_bytes() == normalised.as_bytes() {
            // A name the list does not know (`localhost`, an intranet TLD) is a public suffix
            // only by the list's default rule; browsers still accept it as the exact host.
            if suffix.is_known() || portal_domain != Some(normalised.as_str()) {
                return Err(CookieDomainError::PublicSuffix { domain: given() });
            }
        }
    }
    match portal_domain {
        Some(host) if domain_matches(host, &normalised) => Ok(normalised),
        _ => Err(CookieDomainError::PortalOutside { domain: given(), portal_host: portal_host.to_owned() }),
    }
}

fn is_ip_literal(host: &str) -> bool {
    host.parse::<IpAddr>().is_ok()
        || host.strip_prefix('[').and_then(|h| h.strip_suffix(']')).is_some_and(|h| h.parse::<IpAddr>().is_ok())
}

/// RFC 6265 §5.1.3 domain matching, ASCII case-insensitive: `host` is `domain`, or a host name
/// (not an IP address) ending in `.` followed by `domain`. No other normalisation happens: a
/// trailing dot on either side makes a different name.
pub fn domain_matches(host: &str, domain: &str) -> bool {
    if domain.is_empty() {
        return false;
    }
    if host.eq_ignore_ascii_case(domain) {
        return true;
    }
    let (host_b, domain_b) = (host.as_bytes(), domain.as_bytes());
    let Some(split) = host_b.len().checked_sub(domain_b.len() + 1) else {
        return false;
    };
    host_b.get(split) == Some(&b'.')
        && host_b.get(split + 1..).is_some_and(|tail| tail.eq_ignore_ascii_case(domain_b))
        && !is_ip_literal(host)
}

/// Whether cookies for this portal get `Secure` when config says `auto`: always, except for a
/// plain `http` portal on `localhost`, a `127.x.x.x` address or `::1`, where a developer runs
/// without TLS and a `Secure` cookie would never come back.
pub fn secure_by_default(portal: &Url) -> bool {
    if portal.scheme() != "http" {
        return true;
    }
    match portal.host() {
        Some(Host::Domain(d)) => d != "localhost",
        Some(Host::Ipv4(ip)) => !ip.is_loopback(),
        Some(Host::Ipv6(ip)) => !ip.is_loopback(),
        None => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn spec() -> CookieSpec {
        CookieSpec {
            name: "sd_4f9c2a7e".into(),
            domain: Some("example.com".into()),
            secure: true,
            http_only: true,
            same_site: SameSite::Lax,
            persistent: true,
        }
    }

    fn find<'a>(headers: &[&'a [u8]], name: &str) -> Result<Option<&'a str>, CookieParseError> {
        find_cookie(headers.iter().copied(), name)
    }

    // --- Set-Cookie ---

    #[test]
    fn set_cookie_writes_every_attribute_in_order() {
        assert_eq!(
            spec().set_cookie("tok", Some(Duration::from_secs(3600))),
            "sd_4f9c2a7e=tok; Path=/; Domain=example.com; Max-Age=3600; HttpOnly; Secure; SameSite=Lax"
        );
    }

    #[test]
    fn set_cookie_leaves_out_what_does_not_apply() {
        let bare = CookieSpec { domain: None, secure: false, http_only: false, same_site: SameSite::Strict, ..spec() };
        assert_eq!(
            bare.set_cookie("tok", Some(Duration::from_secs(5))),
            "sd_4f9c2a7e=tok; Path=/; Max-Age=5; SameSite=Strict"
        );
        let none = CookieSpec { same_site: SameSite::None, ..spec() };
        assert!(none.set_cookie("tok", None).ends_with("; Secure; SameSite=None"));
    }

    #[test]
    fn browser_session_cookie_has_no_max_age() {
        let session_only = CookieSpec { persistent: false, ..spec() };
        let header = session_only.set_cookie("tok", Some(Duration::from_secs(3600)));
        assert_eq!(header, "sd_4f9c2a7e=tok; Path=/; Domain=example.com; HttpOnly; Secure; SameSite=Lax");
        assert!(!header.contains("Expires"));
    }

    #[test]
    fn persistent_cookie_without_max_age_has_none() {
        assert!(!spec().set_cookie("tok", None).contains("Max-Age"));
    }

    #[test]
    fn max_age_is_whole_seconds() {
        assert!(spec().set_cookie("t", Some(Duration::from_millis(1999))).contains("; Max-Age=1;"));
    }

    #[test]
    fn delete_cookie_repeats_name_domain_path_with_max_age_zero() {
        assert_eq!(
            spec().delete_cookie(),
            "sd_4f9c2a7e=; Path=/; Domain=example.com; Max-Age=0; HttpOnly; Secure; SameSite=Lax"
        );
    }

    #[test]
    fn delete_cookie_has_max_age_zero_even_for_browser_session_cookies() {
        let session_only = CookieSpec { persistent: false, domain: None, ..spec() };
        assert_eq!(session_only.delete_cookie(), "sd_4f9c2a7e=; Path=/; Max-Age=0; HttpOnly; Secure; SameSite=Lax");
    }

    #[test]
    fn companion_keeps_attributes_and_appends_suffix() {
        let flash = spec().companion(FLASH_SUFFIX);
        assert_eq!(flash, CookieSpec { name: "sd_4f9c2a7e_flash".into(), ..spec() });
        assert_eq!(spec().companion(AUTHN_SUFFIX).name, "sd_4f9c2a7e_authn");
        assert_eq!(spec().companion(JWT_SUFFIX).name, "sd_4f9c2a7e_jwt");
    }

    // --- Cookie header ---

    #[test]
    fn finds_our_cookie_among_others() {
        assert_eq!(find(&[b"a=1; sd=tok; b=2"], "sd").unwrap(), Some("tok"));
        assert_eq!(find(&[b"sd=tok"], "sd").unwrap(), Some("tok"));
        assert_eq!(find(&[b"a=1; b=2"], "sd").unwrap(), None);
        assert_eq!(find(&[], "sd").unwrap(), None);
    }

    #[test]
    fn name_must_match_exactly() {
        assert_eq!(find(&[b"sd_flash=x; SD=y; xsd=z"], "sd").unwrap(), None);
        assert_eq!(find(&[b"sd_flash=x; sd=tok"], "sd_flash").unwrap(), Some("x"));
    }

    #[test]
    fn spaces_and_tabs_around_pairs_are_trimmed() {
        assert_eq!(find(&[b"  a=1 ;\tsd=tok\t ; b=2"], "sd").unwrap(), Some("tok"));
        assert_eq!(find(&[b"sd = tok"], "sd").unwrap(), Some("tok"));
    }

    #[test]
    fn value_splits_at_the_first_equals_sign() {
        assert_eq!(find(&[b"sd=a=b"], "sd").unwrap(), Some("a=b"));
        assert_eq!(find(&[b"sd=abc=="], "sd").unwrap(), Some("abc=="));
    }

    #[test]
    fn one_pair_of_quotes_is_removed() {
        assert_eq!(find(&[b"sd=\"tok\""], "sd").unwrap(), Some("tok"));
        assert_eq!(find(&[b"sd=\"\""], "sd").unwrap(), Some(""));
        assert_eq!(
            find(&[b"sd=\"\"tok\"\""], "sd"),
            Err(CookieParseError::InvalidValue { name: "sd".into() }),
            "only one pair is removed; the inner quotes are not cookie octets"
        );
        assert_eq!(find(&[b"sd=\"tok"], "sd"), Err(CookieParseError::InvalidValue { name: "sd".into() }));
    }

    #[test]
    fn empty_value_is_found_as_empty() {
        assert_eq!(find(&[b"sd=; a=1"], "sd").unwrap(), Some(""));
    }

    #[test]
    fn pairs_without_equals_are_skipped() {
        assert_eq!(find(&[b"sd; a=1; ; sd=tok;"], "sd").unwrap(), Some("tok"));
    }

    #[test]
    fn other_cookies_with_non_utf8_bytes_do_not_hide_ours() {
        let header: &[u8] = b"junk=\xff\xfe\x80; sd=tok; \xc3\x28=\x00";
        assert_eq!(find(&[header], "sd").unwrap(), Some("tok"));
    }

    #[test]
    fn our_value_with_non_utf8_or_forbidden_bytes_is_invalid() {
        let invalid = Err(CookieParseError::InvalidValue { name: "sd".into() });
        assert_eq!(find(&[b"sd=to\xffk"], "sd"), invalid);
        for bad in [&b"sd=a,b"[..], b"sd=a\\b", b"sd=a\"b", b"sd=a b", b"sd=a\x01b", b"sd=a\x7fb", b"sd=caf\xc3\xa9"] {
            assert_eq!(find(&[bad], "sd"), invalid, "{}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn our_cookie_twice_with_same_value_is_fine() {
        assert_eq!(find(&[b"sd=tok; a=1; sd=tok"], "sd").unwrap(), Some("tok"));
        assert_eq!(find(&[b"sd=tok", b"sd=\"tok\""], "sd").unwrap(), Some("tok"));
    }

    #[test]
    fn our_cookie_twice_with_different_values_is_refused() {
        let dup = Err(CookieParseError::Duplicate { name: "sd".into() });
        assert_eq!(find(&[b"sd=one; sd=two"], "sd"), dup);
        assert_eq!(find(&[b"sd=one; sd="], "sd"), dup);
    }

    #[test]
    fn several_header_values_are_read_as_one() {
        assert_eq!(find(&[b"a=1", b"b=2; sd=tok"], "sd").unwrap(), Some("tok"));
        assert_eq!(find(&[b"sd=one", b"sd=two"], "sd"), Err(CookieParseError::Duplicate { name: "sd".into() }));
    }

    #[test]
    fn parse_errors_name_the_cookie() {
        assert_eq!(
            CookieParseError::Duplicate { name: "sd".into() }.to_string(),
            "cookie \"sd\" appears more than once"
        );
    }

    // --- cookie names ---

    fn name_err(name: &str) -> CookieNameError {
        validate_cookie_name(name, true, None).unwrap_err()
    }

    #[test]
    fn ordinary_names_are_accepted() {
        for name in ["sd_4f9c2a7e", "session", "a", "SESSION-ID.v2", "x!#$%&'*+-.^_`|~", &"a".repeat(64)] {
            assert_eq!(validate_cookie_name(name, false, Some("example.com")), Ok(()), "{name}");
        }
    }

    #[test]
    fn empty_name_is_refused() {
        assert_eq!(name_err(""), CookieNameError::Empty { name: String::new() });
    }

    #[test]
    fn long_name_is_refused() {
        let name = "a".repeat(65);
        assert_eq!(name_err(&name), CookieNameError::TooLong { name: name.clone(), len: 65 });
        assert_eq!(
            name_err(&name).to_string(),
            format!("invalid cookie name \"{name}\": it is 65 characters long; at most 64 are allowed")
        );
    }

    #[test]
    fn separators_controls_and_non_ascii_are_refused() {
        assert_eq!(
            name_err("a b").to_string(),
            "invalid cookie name \"a b\": contains ' ' which is not allowed in a cookie name"
        );
        for ch in [
            '(', ')', '<', '>', '@', ',', ';', ':', '\\', '"', '/', '[', ']', '?', '=', '{', '}', ' ', '\t', '\0',
            '\x7f', '\n', 'é',
        ] {
            let name = format!("sd{ch}x");
            assert_eq!(name_err(&name), CookieNameError::ForbiddenChar { name: name.clone(), ch }, "{name:?}");
        }
    }

    #[test]
    fn host_prefix_needs_secure_and_no_domain() {
        assert_eq!(validate_cookie_name("__Host-sd", true, None), Ok(()));
        assert_eq!(
            validate_cookie_name("__Host-sd", false, None),
            Err(CookieNameError::PrefixRequiresSecure { name: "__Host-sd".into(), prefix: "__Host-" })
        );
        assert_eq!(
            validate_cookie_name("__Host-sd", true, Some("example.com")),
            Err(CookieNameError::HostPrefixWithDomain { name: "__Host-sd".into() })
        );
    }

    #[test]
    fn secure_prefix_needs_secure() {
        assert_eq!(validate_cookie_name("__Secure-sd", true, Some("example.com")), Ok(()));
        assert_eq!(
            validate_cookie_name("__Secure-sd", false, None),
            Err(CookieNameError::PrefixRequiresSecure { name: "__Secure-sd".into(), prefix: "__Secure-" })
        );
    }

    #[test]
    fn prefixes_in_other_letter_case_are_refused() {
        for name in ["__HOST-sd", "__host-sd", "__HoSt-sd", "__Hostsd", "__HOSTsd"] {
            assert_eq!(name_err(name), CookieNameError::PrefixCase { name: name.into(), prefix: "__Host-" }, "{name}");
        }
        for name in ["__SECURE-sd", "__secure-sd"] {
            assert_eq!(
                name_err(name),
                CookieNameError::PrefixCase { name: name.into(), prefix: "__Secure-" },
                "{name}"
            );
        }
        // Not a prefix at all: one underscore, or "Secure" without the dash.
        assert_eq!(validate_cookie_name("_Host-sd", false, None), Ok(()));
        assert_eq!(validate_cookie_name("__Securesd", false, None), Ok(()));
    }

    #[test]
    fn prefix_case_error_says_how_to_write_the_prefix() {
        assert_eq!(
            name_err("__HOST-sd").to_string(),
            "invalid cookie name \"__HOST-sd\": it starts like the \"__Host-\" prefix spelled another way; write \"__Host-\" exactly or choose another name"
        );
    }

    #[test]
    fn forgerock_cookie_name_is_refused() {
        for name in ["iPlanetDirectoryPro", "iplanetdirectorypro"] {
            assert_eq!(name_err(name), CookieNameError::Reserved { name: name.into() });
        }
        assert_eq!(validate_cookie_name("iPlanetDirectoryPro2", true, None), Ok(()));
    }

    #[test]
    fn names_ending_in_companion_suffixes_are_refused() {
        for (name, suffix) in [("sd_flash", "_flash"), ("sd_authn", "_authn"), ("x_jwt", "_jwt"), ("x_JWT", "_jwt")] {
            assert_eq!(name_err(name), CookieNameError::ReservedSuffix { name: name.into(), suffix });
        }
        assert_eq!(validate_cookie_name("sd_jwt2", true, None), Ok(()));
        assert_eq!(validate_cookie_name("sdjwt", true, None), Ok(()));
    }

    #[test]
    fn name_error_exposes_the_name() {
        assert_eq!(name_err("sd_flash").name(), "sd_flash");
        assert_eq!(name_err("").name(), "");
    }

    #[test]
    fn default_names_are_valid_and_random() {
        let a = default_cookie_name();
        assert_eq!(a.len(), 11);
        assert!(a.starts_with("sd_"));
        assert!(a[3..].chars().all(|c| c.is_ascii_digit() || ('a'..='f').contains(&c)), "{a}");
        assert_eq!(validate_cookie_name(&a, false, None), Ok(()));
        // 32 random bits: twenty draws all equal would mean no randomness at all.
        let draws: std::collections::HashSet<String> = (0..20).map(|_| default_cookie_name()).collect();
        assert!(draws.len() > 1);
    }

    // --- cookie domains ---

    #[test]
    fn domain_is_normalised() {
        assert_eq!(validate_cookie_domain("example.com", "auth.example.com").unwrap(), "example.com");
        assert_eq!(validate_cookie_domain(".Example.COM", "auth.example.com").unwrap(), "example.com");
        assert_eq!(validate_cookie_domain("auth.example.com", "auth.example.com").unwrap(), "auth.example.com");
        assert_eq!(
            validate_cookie_domain("bücher.example", "login.xn--bcher-kva.example").unwrap(),
            "xn--bcher-kva.example"
        );
    }

    #[test]
    fn empty_domain_is_refused() {
        for d in ["", "."] {
            assert_eq!(validate_cookie_domain(d, "example.com"), Err(CookieDomainError::Empty { domain: d.into() }));
        }
    }

    #[test]
    fn only_one_leading_dot_is_stripped() {
        assert!(matches!(
            validate_cookie_domain("..example.com", "auth.example.com"),
            Err(CookieDomainError::Invalid { .. })
        ));
    }

    #[test]
    fn malformed_domains_are_refused() {
        for d in ["exa mple.com", "example.com/", "ex%41mple.com", "a..example.com", "example.com.", "exa@mple.com"] {
            assert!(
                matches!(validate_cookie_domain(d, "auth.example.com"), Err(CookieDomainError::Invalid { ref domain, .. }) if domain == d),
                "{d}"
            );
        }
    }

    #[test]
    fn public_suffixes_are_refused() {
        for (d, portal) in [
            ("com", "auth.example.com"),
            ("co.uk", "auth.example.co.uk"),
            ("github.io", "me.github.io"),
            (".COM", "example.com"),
        ] {
            assert_eq!(
                validate_cookie_domain(d, portal),
                Err(CookieDomainError::PublicSuffix { domain: d.into() }),
                "{d}"
            );
        }
        assert_eq!(
            validate_cookie_domain("com", "example.com").unwrap_err().to_string(),
            "invalid cookie domain \"com\": it is a public suffix; browsers refuse such cookies, so use the portal's own domain"
        );
    }

    #[test]
    fn registrable_domains_under_public_suffixes_are_accepted() {
        assert_eq!(validate_cookie_domain("example.co.uk", "auth.example.co.uk").unwrap(), "example.co.uk");
        assert_eq!(validate_cookie_domain("me.github.io", "me.github.io").unwrap(), "me.github.io");
    }

    #[test]
    fn unlisted_single_label_is_accepted_only_as_the_portal_host() {
        assert_eq!(validate_cookie_domain("localhost", "localhost").unwrap(), "localhost");
        assert_eq!(
            validate_cookie_domain("corp", "auth.corp"),
            Err(CookieDomainError::PublicSuffix { domain: "corp".into() })
        );
        assert_eq!(validate_cookie_domain("auth.corp", "auth.corp").unwrap(), "auth.corp");
    }

    #[test]
    fn domain_must_contain_the_portal_host() {
        for d in ["other.com", "ample.com", "sub.auth.example.com"] {
            assert_eq!(
                validate_cookie_domain(d, "auth.example.com"),
                Err(CookieDomainError::PortalOutside { domain: d.into(), portal_host: "auth.example.com".into() }),
                "{d}"
            );
        }
        assert!(validate_cookie_domain("example.com", "Auth.Example.com").is_ok());
    }

    #[test]
    fn ip_domain_only_when_it_is_the_portal_host() {
        assert_eq!(validate_cookie_domain("127.0.0.1", "127.0.0.1").unwrap(), "127.0.0.1");
        assert_eq!(validate_cookie_domain("::1", "[::1]").unwrap(), "[::1]");
        assert_eq!(
            validate_cookie_domain("10.0.0.1", "127.0.0.1"),
            Err(CookieDomainError::IpNotPortal { domain: "10.0.0.1".into(), portal_host: "127.0.0.1".into() })
        );
        assert!(matches!(validate_cookie_domain("0.1", "127.0.0.1"), Err(CookieDomainError::IpNotPortal { .. })));
        assert!(matches!(validate_cookie_domain("127.0.0.1", "localhost"), Err(CookieDomainError::IpNotPortal { .. })));
    }

    // --- domain matching and Secure ---

    #[test]
    fn domain_matching_follows_rfc_6265() {
        assert!(domain_matches("example.com", "example.com"));
        assert!(domain_matches("app.example.com", "example.com"));
        assert!(domain_matches("a.b.example.com", "example.com"));
        assert!(domain_matches("APP.Example.com", "example.COM"));
        assert!(!domain_matches("evilexample.com", "example.com"));
        assert!(!domain_matches("example.com.evil.com", "example.com"));
        assert!(!domain_matches("example.com", "app.example.com"));
        assert!(!domain_matches("com", "example.com"));
        assert!(!domain_matches("app.example.com", ".example.com"), "callers strip the leading dot");
        assert!(!domain_matches("example.com", ""));
        assert!(!domain_matches("", "example.com"));
    }

    #[test]
    fn trailing_dots_are_different_names() {
        assert!(!domain_matches("example.com.", "example.com"));
        assert!(!domain_matches("app.example.com", "example.com."));
        assert!(domain_matches("example.com.", "example.com."));
    }

    #[test]
    fn ip_addresses_match_only_themselves() {
        assert!(domain_matches("192.168.0.1", "192.168.0.1"));
        assert!(!domain_matches("192.168.0.1", "168.0.1"));
        assert!(!domain_matches("192.168.0.1", "0.1"));
        assert!(!domain_matches("[::1]", "1]"));
    }

    #[test]
    fn secure_unless_plain_http_on_loopback() {
        let secure = |u: &str| secure_by_default(&Url::parse(u).unwrap());
        assert!(!secure("http://localhost:8470/"));
        assert!(!secure("http://LOCALHOST/"));
        assert!(!secure("http://127.0.0.1:8470/"));
        assert!(!secure("http://127.1.2.3/"));
        assert!(!secure("http://[::1]:8470/"));
        assert!(secure("https://localhost/"));
        assert!(secure("https://127.0.0.1/"));
        assert!(secure("http://example.com/"));
        assert!(secure("http://10.0.0.1/"));
        assert!(secure("http://app.localhost/"));
        assert!(secure("http://[::2]/"));
    }

    proptest! {
        #[test]
        fn find_cookie_never_panics(header in proptest::collection::vec(any::<u8>(), 0..200), name in "[a-z]{1,4}") {
            let _ = find_cookie([header.as_slice()], &name);
        }

        #[test]
        fn set_cookie_value_is_found_again(value in "[A-Za-z0-9_-]{0,43}", other in proptest::collection::vec(any::<u8>().prop_filter("no separator", |b| *b != b';'), 0..40)) {
            let set = spec().set_cookie(&value, Some(Duration::from_secs(60)));
            let pair = set.split(';').next().unwrap();
            let mut header = b"other=".to_vec();
            header.extend_from_slice(&other);
            header.extend_from_slice(b"; ");
            header.extend_from_slice(pair.as_bytes());
            prop_assert_eq!(find_cookie([header.as_slice()], "sd_4f9c2a7e").unwrap(), Some(value.as_str()));
        }

        #[test]
        fn domain_matching_is_suffix_at_a_label_boundary(sub in "[a-z]{1,8}", domain in "[a-z]{1,8}\\.[a-z]{2,3}") {
            let sub_host = format!("{sub}.{domain}");
            let glued_host = format!("{sub}{domain}");
            prop_assert!(domain_matches(&sub_host, &domain));
            prop_assert!(!domain_matches(&glued_host, &domain));
            prop_assert!(!domain_matches(&domain, &sub_host));
        }

        #[test]
        fn accepted_names_are_tokens(name in "\\PC{0,70}") {
            if validate_cookie_name(&name, true, None).is_ok() {
                prop_assert!(!name.is_empty() && name.len() <= 64);
                prop_assert!(name.chars().all(is_token_char));
            }
        }
    }
}
