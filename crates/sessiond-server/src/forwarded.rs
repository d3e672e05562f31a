//! What a reverse proxy tells us about the request behind it: the client's address
//! (`X-Forwarded-For`) and, for forward auth, the original request (`X-Original-URL`, or
//! `X-Forwarded-Proto/Host/URI`, with `X-Original-Method`/`X-Forwarded-Method`).
//!
//! Anyone can send these headers, so they are believed only when the TCP peer is one of
//! `server.trusted_proxies`. From any other peer the client is the peer itself, and a forward-auth
//! question is refused outright rather than answered for a request the caller made up.

use axum::http::{HeaderMap, HeaderName, Method};
use ipnet::IpNet;
use std::borrow::Cow;
use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use url::Url;

/// Longest forwarding header we read; longer ones are refused, not truncated.
pub(crate) const MAX_FORWARDED_BYTES: usize = 8 * 1024;
/// Longest host name (RFC 1035 §2.3.4, without the trailing dot).
const MAX_HOST: usize = 253;
/// Longest DNS label.
const MAX_LABEL: usize = 63;
/// Longest method token we accept; real methods are far shorter.
const MAX_METHOD: usize = 32;

/// A forwarding header: its name and how error messages spell it.
struct Field {
    name: HeaderName,
    label: &'static str,
}

const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
const X_ORIGINAL_URL: Field = Field { name: HeaderName::from_static("x-original-url"), label: "X-Original-URL" };
const X_FORWARDED_PROTO: Field =
    Field { name: HeaderName::from_static("x-forwarded-proto"), label: "X-Forwarded-Proto" };
const X_FORWARDED_HOST: Field = Field { name: HeaderName::from_static("x-forwarded-host"), label: "X-Forwarded-Host" };
const X_FORWARDED_URI: Field = Field { name: HeaderName::from_static("x-forwarded-uri"), label: "X-Forwarded-URI" };
const X_ORIGINAL_METHOD: Field =
    Field { name: HeaderName::from_static("x-original-method"), label: "X-Original-Method" };
const X_FORWARDED_METHOD: Field =
    Field { name: HeaderName::from_static("x-forwarded-method"), label: "X-Forwarded-Method" };

/// The scheme of the original request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Scheme {
    /// Plain HTTP.
    Http,
    /// HTTP over TLS.
    Https,
}

impl Scheme {
    /// The scheme as written in URLs.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::Http => "http",
            Self::Https => "https",
        }
    }

    fn default_port(self) -> u16 {
        match self {
            Self::Http => 80,
            Self::Https => 443,
        }
    }

    fn parse(text: &str) -> Option<Self> {
        if text.eq_ignore_ascii_case("http") {
            Some(Self::Http)
        } else if text.eq_ignore_ascii_case("https") {
            Some(Self::Https)
        } else {
            None
        }
    }
}

/// The request a proxy asks about, as its client sent it. Borrows from the headers where it can,
/// so the common case (lowercase host, `X-Forwarded-*`) copies nothing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Original<'a> {
    /// `http` or `https`.
    pub(crate) scheme: Scheme,
    /// Host name or IP literal (IPv6 in brackets), lowercase, without port or trailing dot.
    pub(crate) host: Cow<'a, str>,
    /// The port, when not the scheme's default.
    pub(crate) port: Option<u16>,
    /// Path and query, as sent (starts with `/`).
    pub(crate) path_and_query: Cow<'a, str>,
    /// The method, uppercase; `GET` when the proxy does not say.
    pub(crate) method: Method,
}

impl Original<'_> {
    /// The URL the client asked for, to send it back there after login.
    ///
    /// # Errors
    /// When the parts do not make a URL (they were validated, so this is not expected).
    pub(crate) fn url(&self) -> Result<Url, url::ParseError> {
        let mut text = String::with_capacity(self.host.len() + self.path_and_query.len() + 16);
        text.push_str(self.scheme.as_str());
        text.push_str("://");
        text.push_str(&self.host);
        if let Some(port) = self.port {
            text.push(':');
            text.push_str(&port.to_string());
        }
        text.push_str(&self.path_and_query);
        Url::parse(&text)
    }
}

/// Why the original request could not be read from the forwarding headers. Values that may carry
/// secrets (URLs and paths with their queries) are described, not repeated.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub(crate) enum ForwardError {
    /// The peer is not one of `server.trusted_proxies`; its headers prove nothing.
    #[error("{peer} is not a trusted proxy")]
    UntrustedPeer {
        /// The peer's address.
        peer: IpAddr,
    },
    /// A header the original request needs is absent.
    #[error("{header} is missing")]
    Missing {
        /// The header.
        header: &'static str,
    },
    /// A header came more than once; we cannot tell which one the proxy meant.
    #[error("{header} given more than once")]
    Duplicate {
        /// The header.
        header: &'static str,
    },
    /// A header is not visible ASCII.
    #[error("{header} is not valid text")]
    NotText {
        /// The header.
        header: &'static str,
    },
    /// A header is over [`MAX_FORWARDED_BYTES`].
    #[error("{header} is {len} bytes long, more than {MAX_FORWARDED_BYTES}")]
    TooLong {
        /// The header.
        header: &'static str,
        /// Its length.
        len: usize,
    },
    /// The host is neither a DNS name nor an IP literal, or carries user information.
    #[error("invalid host {value:?} in {header}")]
    BadHost {
        /// The header.
        header: &'static str,
        /// The host as given.
        value: String,
    },
    /// The scheme is not `http` or `https`.
    #[error("unsupported scheme {value:?} in {header}")]
    BadScheme {
        /// The header.
        header: &'static str,
        /// The scheme as given.
        value: String,
    },
    /// `X-Original-URL` is not an absolute URL.
    #[error("invalid URL in {header}: {reason}")]
    BadUrl {
        /// The header.
        header: &'static str,
        /// What is wrong.
        reason: &'static str,
    },
    /// `X-Forwarded-URI` does not start with `/` or holds whitespace or control characters.
    #[error("invalid request URI in {header}: {reason}")]
    BadUri {
        /// The header.
        header: &'static str,
        /// What is wrong.
        reason: &'static str,
    },
    /// The method is not an uppercase token.
    #[error("invalid method {value:?} in {header}")]
    BadMethod {
        /// The header.
        header: &'static str,
        /// The method as given.
        value: String,
    },
}

fn is_trusted(ip: IpAddr, trusted: &[IpNet]) -> bool {
    trusted.iter().any(|net| net.contains(&ip))
}

/// Whether the TCP peer is one of `trusted` (`server.trusted_proxies`).
pub(crate) fn is_trusted_peer(peer: SocketAddr, trusted: &[IpNet]) -> bool {
    is_trusted(peer.ip().to_canonical(), trusted)
}

/// The client's address. Behind a trusted proxy it is the rightmost `X-Forwarded-For` entry that
/// is not itself a trusted proxy (entries to the left of it could have been written by the
/// client); when every entry is trusted, the leftmost. A malformed entry stops the walk and
/// the peer is used. From an untrusted peer the header is ignored.
pub(crate) fn client_ip(peer: SocketAddr, headers: &HeaderMap, trusted: &[IpNet]) -> IpAddr {
    let peer_ip = peer.ip().to_canonical();
    if !is_trusted(peer_ip, trusted) {
        return peer_ip;
    }
    let mut leftmost = None;
    // Several header lines read as one list joined in order, so the last line is walked first.
    for value in headers.get_all(&X_FORWARDED_FOR).iter().rev() {
        let Ok(text) = value.to_str() else { return peer_ip };
        for entry in text.rsplit(',') {
            let Some(ip) = parse_forwarded_for(entry.trim()) else { return peer_ip };
            if !is_trusted(ip, trusted) {
                return ip;
            }
            leftmost = Some(ip);
        }
    }
    leftmost.unwrap_or(peer_ip)
}

/// One `X-Forwarded-For` entry: an address, optionally with a port (`1.2.3.4:5`, `[::1]:5`), or a
/// bracketed IPv6 address.
fn parse_forwarded_for(entry: &str) -> Option<IpAddr> {
    let ip = entry
        .parse::<IpAddr>()
        .ok()
        .or_else(|| entry.parse::<SocketAddr>().ok().map(|s| s.ip()))
        .or_else(|| entry.strip_prefix('[')?.strip_suffix(']')?.parse::<Ipv6Addr>().ok().map(IpAddr::V6))?;
    Some(ip.to_canonical())
}

/// The original request a proxy asks about.
///
/// Read from `X-Original-URL` (an absolute `http`/`https` URL) when present, else from
/// `X-Forwarded-Proto`, `X-Forwarded-Host` and `X-Forwarded-URI`. The method comes from
/// `X-Original-Method`, else `X-Forwarded-Method`, else is the method the proxy itself used
/// (nginx's `auth_request` repeats the client's).
///
/// # Errors
/// [`ForwardError::UntrustedPeer`] when `peer` is not in `trusted`, whatever the headers say;
/// otherwise a [`ForwardError`] for a header that is missing, repeated, not text, longer than
/// [`MAX_FORWARDED_BYTES`], or malformed.
pub(crate) fn original_request<'a>(
    peer: SocketAddr,
    headers: &'a HeaderMap,
    trusted: &[IpNet],
    request_method: &Method,
) -> Result<Original<'a>, ForwardError> {
    let peer_ip = peer.ip().to_canonical();
    if !is_trusted(peer_ip, trusted) {
        return Err(ForwardError::UntrustedPeer { peer: peer_ip });
    }
    let method = original_method(headers, request_method)?;
    if let Some(url) = single(headers, &X_ORIGINAL_URL)? {
        return from_url(url, method);
    }
    let proto = required(headers, &X_FORWARDED_PROTO)?;
    let scheme = Scheme::parse(proto)
        .ok_or_else(|| ForwardError::BadScheme { header: X_FORWARDED_PROTO.label, value: proto.to_owned() })?;
    let host_field = required(headers, &X_FORWARDED_HOST)?;
    let (host, port) = split_host(host_field)
        .ok_or_else(|| ForwardError::BadHost { header: X_FORWARDED_HOST.label, value: host_field.to_owned() })?;
    let uri = required(headers, &X_FORWARDED_URI)?;
    let bad_uri = |reason| ForwardError::BadUri { header: X_FORWARDED_URI.label, reason };
    if !uri.starts_with('/') {
        return Err(bad_uri("does not start with '/'"));
    }
    if has_space_or_control(uri) {
        return Err(bad_uri("contains whitespace or control characters"));
    }
    Ok(Original {
        scheme,
        host: lowercase(host),
        port: port.filter(|&p| p != scheme.default_port()),
        path_and_query: Cow::Borrowed(uri),
        method,
    })
}

/// The one value of `field`, if present.
fn single<'a>(headers: &'a HeaderMap, field: &Field) -> Result<Option<&'a str>, ForwardError> {
    let mut values = headers.get_all(&field.name).iter();
    let Some(value) = values.next() else { return Ok(None) };
    if values.next().is_some() {
        return Err(ForwardError::Duplicate { header: field.label });
    }
    if value.len() > MAX_FORWARDED_BYTES {
        return Err(ForwardError::TooLong { header: field.label, len: value.len() });
    }
    value.to_str().map(Some).map_err(|_| ForwardError::NotText { header: field.label })
}

fn required<'a>(headers: &'a HeaderMap, field: &Field) -> Result<&'a str, ForwardError> {
    single(headers, field)?.ok_or(ForwardError::Missing { header: field.label })
}

fn has_space_or_control(text: &str) -> bool {
    text.bytes().any(|b| b <= b' ' || b == 0x7f)
}

fn lowercase(text: &str) -> Cow<'_, str> {
    if text.bytes().any(|b| b.is_ascii_uppercase()) {
        Cow::Owned(text.to_ascii_lowercase())
    } else {
        Cow::Borrowed(text)
    }
}

fn original_method(headers: &HeaderMap, request_method: &Method) -> Result<Method, ForwardError> {
    let (field, value) = match single(headers, &X_ORIGINAL_METHOD)? {
        Some(value) => (&X_ORIGINAL_METHOD, value),
        None => match single(headers, &X_FORWARDED_METHOD)? {
            Some(value) => (&X_FORWARDED_METHOD, value),
            None => return Ok(request_method.clone()),
        },
    };
    let bad = || ForwardError::BadMethod { header: field.label, value: value.to_owned() };
    // Lowercase is refused rather than folded: methods are case-sensitive, and a rule written
    // for `POST` must not be dodged by a `post` that the application treats the same.
    let token = |b: u8| b.is_ascii_uppercase() || b.is_ascii_digit() || b"!#$%&'*+-.^_`|~".contains(&b);
    if value.is_empty() || value.len() > MAX_METHOD || !value.bytes().all(token) {
        return Err(bad());
    }
    Method::from_bytes(value.as_bytes()).map_err(|_| bad())
}

fn from_url(text: &str, method: Method) -> Result<Original<'static>, ForwardError> {
    let header = X_ORIGINAL_URL.label;
    if has_space_or_control(text) {
        return Err(ForwardError::BadUrl { header, reason: "contains whitespace or control characters" });
    }
    let url = Url::parse(text).map_err(|_| ForwardError::BadUrl { header, reason: "not an absolute URL" })?;
    let scheme = Scheme::parse(url.scheme())
        .ok_or_else(|| ForwardError::BadScheme { header, value: url.scheme().to_owned() })?;
    if !url.username().is_empty() || url.password().is_some() {
        return Err(ForwardError::BadUrl { header, reason: "contains user information" });
    }
    let host = match url.host() {
        Some(url::Host::Domain(name)) => {
            let name = name.strip_suffix('.').unwrap_or(name);
            if !is_dns_name(name) {
                return Err(ForwardError::BadHost { header, value: name.to_owned() });
            }
            name.to_owned()
        }
        Some(url::Host::Ipv4(ip)) => ip.to_string(),
        Some(url::Host::Ipv6(ip)) => format!("[{ip}]"),
        None => return Err(ForwardError::BadUrl { header, reason: "has no host" }),
    };
    let mut path_and_query = url.path().to_owned();
    if let Some(query) = url.query() {
        path_and_query.push('?');
        path_and_query.push_str(query);
    }
    Ok(Original {
        scheme,
        host: Cow::Owned(host),
        port: url.port(),
        path_and_query: Cow::Owned(path_and_query),
        method,
    })
}

/// Splits `host[:port]` (IPv6 in brackets) and validates both. The host keeps its brackets and
/// loses one trailing dot, so `example.com.` and `example.com` meet the same rules.
fn split_host(value: &str) -> Option<(&str, Option<u16>)> {
    if let Some(rest) = value.strip_prefix('[') {
        let (inside, after) = rest.split_once(']')?;
        inside.parse::<Ipv6Addr>().ok()?;
        let host = value.get(..inside.len() + 2)?;
        let port = match after {
            "" => None,
            _ => Some(parse_port(after.strip_prefix(':')?)?),
        };
        return Some((host, port));
    }
    let (host, port) = match value.split_once(':') {
        Some((host, port)) => (host, Some(parse_port(port)?)),
        None => (value, None),
    };
    let host = host.strip_suffix('.').unwrap_or(host);
    is_dns_name(host).then_some((host, port))
}

fn parse_port(text: &str) -> Option<u16> {
    if text.is_empty() || text.len() > 5 || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse::<u16>().ok().filter(|&p| p != 0)
}

/// A host name of letters, digits, `-` and `_` in dot-separated labels (which covers IPv4
/// literals); no userinfo, no empty labels.
fn is_dns_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_HOST
        && name.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= MAX_LABEL
                && label.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn peer(ip: &str) -> SocketAddr {
        SocketAddr::new(ip.parse().unwrap(), 40000)
    }

    fn nets(list: &[&str]) -> Vec<IpNet> {
        list.iter().map(|n| n.parse().unwrap()).collect()
    }

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(HeaderName::from_bytes(name.as_bytes()).unwrap(), HeaderValue::from_str(value).unwrap());
        }
        map
    }

    fn forwarded(host: &str, uri: &str) -> HeaderMap {
        headers(&[("x-forwarded-proto", "https"), ("x-forwarded-host", host), ("x-forwarded-uri", uri)])
    }

    fn original(h: &HeaderMap) -> Result<Original<'_>, ForwardError> {
        original_request(peer("10.0.0.2"), h, &nets(&["10.0.0.0/24"]), &Method::GET)
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    // client_ip

    #[test]
    fn untrusted_peer_is_the_client_whatever_it_forwards() {
        let h = headers(&[("x-forwarded-for", "203.0.113.9")]);
        assert_eq!(client_ip(peer("198.51.100.7"), &h, &nets(&["10.0.0.0/8"])), ip("198.51.100.7"));
        assert_eq!(client_ip(peer("10.1.1.1"), &h, &[]), ip("10.1.1.1"), "nobody trusted");
    }

    #[test]
    fn trusted_peer_without_header_is_the_client() {
        assert_eq!(client_ip(peer("10.1.1.1"), &HeaderMap::new(), &nets(&["10.0.0.0/8"])), ip("10.1.1.1"));
    }

    #[test]
    fn rightmost_untrusted_entry_is_the_client() {
        // The client wrote 1.1.1.1 itself; 203.0.113.9 is what our edge proxy saw.
        let h = headers(&[("x-forwarded-for", "1.1.1.1, 203.0.113.9, 10.0.0.3")]);
        assert_eq!(client_ip(peer("10.0.0.2"), &h, &nets(&["10.0.0.0/8"])), ip("203.0.113.9"));
    }

    #[test]
    fn several_header_lines_are_one_list_in_order() {
        let h = headers(&[("x-forwarded-for", "1.1.1.1"), ("x-forwarded-for", "203.0.113.9, 10.0.0.3")]);
        assert_eq!(client_ip(peer("10.0.0.2"), &h, &nets(&["10.0.0.0/8"])), ip("203.0.113.9"));
        let h = headers(&[("x-forwarded-for", "203.0.113.9"), ("x-forwarded-for", "10.0.0.3")]);
        assert_eq!(client_ip(peer("10.0.0.2"), &h, &nets(&["10.0.0.0/8"])), ip("203.0.113.9"));
    }

    #[test]
    fn all_trusted_entries_give_the_leftmost() {
        let h = headers(&[("x-forwarded-for", "10.0.0.9, 10.0.0.3")]);
        assert_eq!(client_ip(peer("10.0.0.2"), &h, &nets(&["10.0.0.0/8"])), ip("10.0.0.9"));
    }

    #[test]
    fn malformed_entry_stops_the_walk_at_the_peer() {
        let trusted = nets(&["10.0.0.0/8"]);
        for value in ["unknown", "1.1.1.1, , 10.0.0.3", "1.1.1.1, bogus", "300.1.1.1", ""] {
            let h = headers(&[("x-forwarded-for", value)]);
            assert_eq!(client_ip(peer("10.0.0.2"), &h, &trusted), ip("10.0.0.2"), "{value:?}");
        }
        let mut h = HeaderMap::new();
        h.insert(X_FORWARDED_FOR, HeaderValue::from_bytes(b"1.1.1.1\xff").unwrap());
        assert_eq!(client_ip(peer("10.0.0.2"), &h, &trusted), ip("10.0.0.2"), "not text");
    }

    #[test]
    fn entries_with_ports_brackets_and_mapped_addresses_are_read() {
        let trusted = nets(&["10.0.0.0/8", "::1/128"]);
        for (value, want) in [
            ("203.0.113.9:4711", "203.0.113.9"),
            ("[2001:db8::1]:4711", "2001:db8::1"),
            ("[2001:db8::1]", "2001:db8::1"),
            ("2001:db8::1", "2001:db8::1"),
            ("::ffff:203.0.113.9", "203.0.113.9"),
        ] {
            let h = headers(&[("x-forwarded-for", value)]);
            assert_eq!(client_ip(peer("::1"), &h, &trusted), ip(want), "{value}");
        }
        // An IPv4 peer seen through a dual-stack socket is still the trusted IPv4 proxy.
        let h = headers(&[("x-forwarded-for", "203.0.113.9")]);
        assert_eq!(client_ip(peer("::ffff:10.0.0.2"), &h, &trusted), ip("203.0.113.9"));
    }

    // original_request: trust

    #[test]
    fn untrusted_peer_is_refused_even_with_complete_headers() {
        let h = forwarded("app.example.com", "/");
        let err = original_request(peer("198.51.100.7"), &h, &nets(&["10.0.0.0/24"]), &Method::GET).unwrap_err();
        assert_eq!(err, ForwardError::UntrustedPeer { peer: ip("198.51.100.7") });
        let err = original_request(peer("10.0.0.2"), &h, &[], &Method::GET).unwrap_err();
        assert!(matches!(err, ForwardError::UntrustedPeer { .. }), "nobody trusted");
    }

    // original_request: X-Forwarded-*

    #[test]
    fn forwarded_headers_give_the_original_request() {
        let h = headers(&[
            ("x-forwarded-proto", "https"),
            ("x-forwarded-host", "App.Example.COM:8443"),
            ("x-forwarded-uri", "/a/b?x=1"),
            ("x-forwarded-method", "POST"),
        ]);
        let o = original(&h).unwrap();
        assert_eq!(o.scheme, Scheme::Https);
        assert_eq!(o.host, "app.example.com");
        assert_eq!(o.port, Some(8443));
        assert_eq!(o.path_and_query, "/a/b?x=1");
        assert_eq!(o.method, Method::POST);
        assert_eq!(o.url().unwrap().as_str(), "https://app.example.com:8443/a/b?x=1");
    }

    #[test]
    fn lowercase_host_and_uri_are_borrowed_not_copied() {
        let h = forwarded("app.example.com", "/x");
        let o = original(&h).unwrap();
        assert!(matches!(o.host, Cow::Borrowed(_)));
        assert!(matches!(o.path_and_query, Cow::Borrowed(_)));
        assert_eq!(o.method, Method::GET, "GET when no method header");
        assert_eq!(o.port, None);
    }

    #[test]
    fn default_port_and_trailing_dot_are_dropped() {
        let h = forwarded("app.example.com.:443", "/");
        let o = original(&h).unwrap();
        assert_eq!((o.host.as_ref(), o.port), ("app.example.com", None));
        let h = headers(&[("x-forwarded-proto", "HTTP"), ("x-forwarded-host", "app:80"), ("x-forwarded-uri", "/")]);
        let o = original(&h).unwrap();
        assert_eq!((o.scheme, o.port), (Scheme::Http, None));
    }

    #[test]
    fn ip_literal_hosts_are_accepted() {
        let h = forwarded("192.0.2.1:8080", "/");
        let o = original(&h).unwrap();
        assert_eq!((o.host.as_ref(), o.port), ("192.0.2.1", Some(8080)));
        let h = forwarded("[2001:DB8::1]:8443", "/");
        let o = original(&h).unwrap();
        assert_eq!((o.host.as_ref(), o.port), ("[2001:db8::1]", Some(8443)));
        assert_eq!(o.url().unwrap().host_str(), Some("[2001:db8::1]"));
        assert_eq!(original(&forwarded("[::1]", "/")).unwrap().host, "[::1]");
    }

    #[test]
    fn each_forwarded_header_is_required() {
        for (missing, label) in [
            ("x-forwarded-proto", "X-Forwarded-Proto"),
            ("x-forwarded-host", "X-Forwarded-Host"),
            ("x-forwarded-uri", "X-Forwarded-URI"),
        ] {
            let mut h = forwarded("app.example.com", "/");
            h.remove(missing);
            assert_eq!(original(&h).unwrap_err(), ForwardError::Missing { header: label });
        }
    }

    #[test]
    fn duplicated_forwarding_headers_are_refused() {
        for name in
            ["x-forwarded-proto", "x-forwarded-host", "x-forwarded-uri", "x-forwarded-method", "x-original-method"]
        {
            let mut h = forwarded("app.example.com", "/");
            h.append(HeaderName::from_bytes(name.as_bytes()).unwrap(), HeaderValue::from_static("GET"));
            if name.ends_with("method") {
                h.append(HeaderName::from_bytes(name.as_bytes()).unwrap(), HeaderValue::from_static("GET"));
            }
            assert!(matches!(original(&h).unwrap_err(), ForwardError::Duplicate { .. }), "{name}");
        }
        let h = headers(&[("x-original-url", "https://a.example.com/"), ("x-original-url", "https://b.example.com/")]);
        assert_eq!(original(&h).unwrap_err(), ForwardError::Duplicate { header: "X-Original-URL" });
    }

    #[test]
    fn non_text_headers_are_refused() {
        let mut h = forwarded("app.example.com", "/");
        h.insert("x-forwarded-uri", HeaderValue::from_bytes(b"/caf\xc3\xa9").unwrap());
        assert_eq!(original(&h).unwrap_err(), ForwardError::NotText { header: "X-Forwarded-URI" });
        let mut h = HeaderMap::new();
        h.insert("x-original-url", HeaderValue::from_bytes(b"https://\xffexample.com/").unwrap());
        assert_eq!(original(&h).unwrap_err(), ForwardError::NotText { header: "X-Original-URL" });
    }

    #[test]
    fn oversized_headers_are_refused() {
        let long = format!("/{}", "a".repeat(MAX_FORWARDED_BYTES));
        let h = forwarded("app.example.com", &long);
        assert_eq!(original(&h).unwrap_err(), ForwardError::TooLong { header: "X-Forwarded-URI", len: long.len() });
        let h = headers(&[("x-original-url", &format!("https://app.example.com{long}"))]);
        assert!(matches!(original(&h).unwrap_err(), ForwardError::TooLong { header: "X-Original-URL", .. }));
        let just_fits = format!("/{}", "a".repeat(MAX_FORWARDED_BYTES - 1));
        assert!(original(&forwarded("app.example.com", &just_fits)).is_ok());
    }

    #[test]
    fn bad_hosts_are_refused() {
        for host in [
            "",
            "user@app.example.com",
            "app.example.com:0",
            "app.example.com:99999",
            "app.example.com:",
            "app.example.com:80:80",
            "app..example.com",
            ".example.com",
            "app example.com",
            "app/example.com",
            "[::1",
            "[not-ipv6]",
            "[::1]x",
            "[fe80::1%25eth0]",
            "app.example.com, other.example.com",
            "xn--bcher-kva.example.com,",
        ] {
            let h = forwarded(host, "/");
            assert!(matches!(original(&h).unwrap_err(), ForwardError::BadHost { .. }), "{host:?}");
        }
        let long_label = format!("{}.example.com", "a".repeat(64));
        let long_name = ["abcdefghi"; 26].join(".");
        assert!(long_name.len() > 253);
        for host in [long_label, long_name] {
            assert!(matches!(original(&forwarded(&host, "/")).unwrap_err(), ForwardError::BadHost { .. }));
        }
        let fits = ["abcdefghi"; 25].join(".");
        assert!(fits.len() <= 253 && original(&forwarded(&fits, "/")).is_ok());
    }

    #[test]
    fn schemes_other_than_http_and_https_are_refused() {
        for proto in ["ftp", "ws", "https, http", ""] {
            let h =
                headers(&[("x-forwarded-proto", proto), ("x-forwarded-host", "a.example"), ("x-forwarded-uri", "/")]);
            assert!(matches!(original(&h).unwrap_err(), ForwardError::BadScheme { .. }), "{proto:?}");
        }
        let h = headers(&[("x-original-url", "ftp://a.example/")]);
        assert_eq!(
            original(&h).unwrap_err(),
            ForwardError::BadScheme { header: "X-Original-URL", value: "ftp".into() }
        );
    }

    #[test]
    fn uris_must_be_paths_without_whitespace() {
        for uri in ["admin", "", "https://evil.example/", "*"] {
            let h = forwarded("a.example", uri);
            assert!(matches!(original(&h).unwrap_err(), ForwardError::BadUri { .. }), "{uri:?}");
        }
        for uri in ["/a b", "/a\tb"] {
            let h = forwarded("a.example", uri);
            assert!(matches!(original(&h).unwrap_err(), ForwardError::BadUri { .. }), "{uri:?}");
        }
    }

    #[test]
    fn methods_must_be_uppercase_tokens() {
        for (name, value) in [
            ("x-forwarded-method", "get"),
            ("x-forwarded-method", "Post"),
            ("x-original-method", "GET POST"),
            ("x-original-method", "G(E)T"),
            ("x-forwarded-method", ""),
            ("x-forwarded-method", &"A".repeat(MAX_METHOD + 1)),
        ] {
            let mut h = forwarded("a.example", "/");
            h.insert(HeaderName::from_bytes(name.as_bytes()).unwrap(), HeaderValue::from_str(value).unwrap());
            assert!(matches!(original(&h).unwrap_err(), ForwardError::BadMethod { .. }), "{value:?}");
        }
        let mut h = forwarded("a.example", "/");
        h.insert("x-forwarded-method", HeaderValue::from_static("PROPFIND"));
        assert_eq!(original(&h).unwrap().method.as_str(), "PROPFIND");
    }

    #[test]
    fn original_method_wins_over_forwarded_method() {
        let mut h = forwarded("a.example", "/");
        h.insert("x-original-method", HeaderValue::from_static("DELETE"));
        h.insert("x-forwarded-method", HeaderValue::from_static("GET"));
        assert_eq!(original(&h).unwrap().method, Method::DELETE);
    }

    // original_request: X-Original-URL

    #[test]
    fn original_url_gives_the_original_request_and_wins() {
        let mut h = forwarded("other.example", "/other");
        h.insert("x-original-url", HeaderValue::from_static("HTTPS://App.Example.com:8443/a/b?x=1&y=%2F#frag"));
        h.insert("x-original-method", HeaderValue::from_static("PUT"));
        let o = original(&h).unwrap();
        assert_eq!(o.scheme, Scheme::Https);
        assert_eq!(o.host, "app.example.com");
        assert_eq!(o.port, Some(8443));
        assert_eq!(o.path_and_query, "/a/b?x=1&y=%2F", "fragment dropped, query kept");
        assert_eq!(o.method, Method::PUT);
    }

    #[test]
    fn original_url_hosts_are_normalised_and_checked() {
        let h = headers(&[("x-original-url", "http://app.example.com.:80/")]);
        let o = original(&h).unwrap();
        assert_eq!((o.scheme, o.host.as_ref(), o.port), (Scheme::Http, "app.example.com", None));
        let h = headers(&[("x-original-url", "http://[2001:db8::1]:8080/")]);
        let o = original(&h).unwrap();
        assert_eq!((o.host.as_ref(), o.port), ("[2001:db8::1]", Some(8080)));
        let h = headers(&[("x-original-url", "http://192.0.2.1")]);
        let o = original(&h).unwrap();
        assert_eq!((o.host.as_ref(), o.path_and_query.as_ref()), ("192.0.2.1", "/"));
    }

    #[test]
    fn bad_original_urls_are_refused() {
        for (url, want) in [
            ("/relative", "not an absolute URL"),
            ("https://user:pw@app.example.com/", "contains user information"),
            ("https://user@app.example.com/", "contains user information"),
            ("https://app.example.com/a b", "contains whitespace or control characters"),
            ("https://", "not an absolute URL"),
        ] {
            let h = headers(&[("x-original-url", url)]);
            assert_eq!(
                original(&h).unwrap_err(),
                ForwardError::BadUrl { header: "X-Original-URL", reason: want },
                "{url}"
            );
        }
        let h = headers(&[("x-original-url", "https://bad_host!.example/")]);
        assert!(original(&h).is_err(), "odd host characters");
        let h = headers(&[("x-original-url", &format!("https://{}.example/", "a".repeat(64)))]);
        assert!(matches!(original(&h).unwrap_err(), ForwardError::BadHost { .. }), "label over 63");
    }

    #[test]
    fn errors_about_urls_never_repeat_them() {
        let secret = "/reset?token=s3cr3t";
        let h = forwarded("a.example", &format!("x{secret}"));
        assert!(!original(&h).unwrap_err().to_string().contains("s3cr3t"));
        let h = headers(&[("x-original-url", &format!("https://u:p@a.example{secret}"))]);
        assert!(!original(&h).unwrap_err().to_string().contains("s3cr3t"));
    }
}
