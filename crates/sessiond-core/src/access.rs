//! Access control for forward auth: which requests pass, for whom, with which strength.
//!
//! An [`AccessControl`] is a list of [`Rule`]s and a default [`Policy`]. A rule matches a request
//! when all of its criteria do:
//!
//! - `domain`: the host matches one of its [`HostPattern`]s (`app.example.com`, `*.example.com`,
//!   `*`);
//! - `resources` (optional): one of its regular expressions matches the path, normalised by
//!   [`normalize_path`]. The query is never part of it;
//! - `methods` (optional): the method is one of the list;
//! - `subject` (optional): the caller is signed in and matches one of the alternatives, each a set
//!   of `user:<name>` / `group:<name>` conditions that must all hold.
//!
//! The first matching rule decides; when none matches, the default policy does (`deny` unless
//! configured). [`AccessControl::decide`] turns the policy into a [`Decision`] for the caller:
//!
//! | policy       | not signed in | signed in                                |
//! |--------------|---------------|------------------------------------------|
//! | `bypass`     | allow         | allow                                    |
//! | `one_factor` | sign in       | allow                                    |
//! | `two_factor` | sign in       | allow with a second factor, else ask one |
//! | `deny`       | deny          | deny                                     |
//!
//! A rule with a subject never matches an anonymous caller, since there is nobody to compare.
//! But when such a rule matches the request itself, signing in could change the outcome, so an
//! anonymous caller who would otherwise be let through (`bypass`) or refused (`deny`) by a later
//! rule or the default is asked to sign in instead.
//!
//! Rules come from configuration as [`RuleSpec`]s (plain text) and are checked by
//! [`Rule::parse`], whose errors name the offending field (`resources[0]`).
//!
//! ```
//! use sessiond_core::access::{AccessControl, Decision, Object, Policy, Rule, RuleSpec, Subject};
//!
//! let admins = Rule::parse(&RuleSpec {
//!     domain: Some(vec!["*.example.com".into()]),
//!     resources: Some(vec!["^/admin(/|$)".into()]),
//!     subject: Some(vec![vec!["group:admins".into()]]),
//!     policy: Some("two_factor".into()),
//!     ..RuleSpec::default()
//! })
//! .unwrap();
//! let everyone = Rule::parse(&RuleSpec {
//!     domain: Some(vec!["*.example.com".into()]),
//!     policy: Some("one_factor".into()),
//!     ..RuleSpec::default()
//! })
//! .unwrap();
//! let rules = AccessControl::new(Policy::Deny, vec![admins, everyone]);
//!
//! let admin_page = Object { host: "app.example.com", path: "/admin/users", method: "GET" };
//! assert_eq!(rules.decide(&admin_page, None), Decision::NeedsLogin);
//! let groups = vec!["admins".to_owned()];
//! let amr = vec!["pwd".to_owned()];
//! let alice = Subject { user: "alice", groups: &groups, amr: &amr };
//! assert_eq!(rules.decide(&admin_page, Some(&alice)), Decision::NeedsSecondFactor);
//! let elsewhere = Object { host: "example.org", path: "/", method: "GET" };
//! assert_eq!(rules.decide(&elsewhere, Some(&alice)), Decision::Deny);
//! ```

use crate::session::amr;
use regex::{Regex, RegexBuilder};
use std::fmt;
use std::net::Ipv6Addr;
use std::str::FromStr;

/// The longest path [`normalize_path`] accepts, in bytes, before decoding (the query and
/// fragment are not counted).
pub const MAX_PATH_LEN: usize = 8 * 1024;

/// The most memory one compiled `resources` expression may take, in bytes. Ordinary expressions
/// need a few kilobytes; the limit stops a pattern such as `\w{1000}{1000}` from eating memory.
pub const REGEX_SIZE_LIMIT: usize = 1 << 20;

/// What a rule demands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Policy {
    /// Everyone passes, signed in or not.
    Bypass,
    /// Any signed-in session passes.
    OneFactor,
    /// Only sessions that used a second factor (`amr` contains `otp`) pass.
    TwoFactor,
    /// Nobody passes.
    Deny,
}

impl Policy {
    /// The configuration word: `bypass`, `one_factor`, `two_factor` or `deny`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Bypass => "bypass",
            Self::OneFactor => "one_factor",
            Self::TwoFactor => "two_factor",
            Self::Deny => "deny",
        }
    }
}

impl fmt::Display for Policy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A policy word that is not one of `bypass`, `one_factor`, `two_factor`, `deny`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown policy {value:?}: expected bypass, one_factor, two_factor or deny")]
pub struct UnknownPolicy {
    /// The word as written.
    pub value: String,
}

impl FromStr for Policy {
    type Err = UnknownPolicy;

    /// Reads a configuration word; surrounding whitespace is ignored, case is not.
    fn from_str(word: &str) -> Result<Self, UnknownPolicy> {
        match word.trim() {
            "bypass" => Ok(Self::Bypass),
            "one_factor" => Ok(Self::OneFactor),
            "two_factor" => Ok(Self::TwoFactor),
            "deny" => Ok(Self::Deny),
            _ => Err(UnknownPolicy { value: word.to_owned() }),
        }
    }
}

/// The request being authorised, as forwarded by the proxy.
#[derive(Clone, Copy, Debug)]
pub struct Object<'a> {
    /// Host, lowercase, without port.
    pub host: &'a str,
    /// Path, normalised by [`normalize_path`] (never the query).
    pub path: &'a str,
    /// Method, uppercase.
    pub method: &'a str,
}

/// Who is asking, when signed in.
#[derive(Clone, Copy, Debug)]
pub struct Subject<'a> {
    /// User name.
    pub user: &'a str,
    /// Groups.
    pub groups: &'a [String],
    /// Authentication methods of the session.
    pub amr: &'a [String],
}

impl Subject<'_> {
    /// Whether the session used a second factor.
    pub fn has_second_factor(&self) -> bool {
        self.amr.iter().any(|m| m == amr::OTP)
    }
}

/// The outcome of authorising one request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decision {
    /// Let it pass.
    Allow,
    /// Sign in first (anonymous caller where a session is required).
    NeedsLogin,
    /// Signed in, but a second factor is required.
    NeedsSecondFactor,
    /// Refuse.
    Deny,
}

/// A decision with the rule that made it, for logs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Evaluation {
    /// What to do with the request.
    pub decision: Decision,
    /// Index of the deciding rule; `None` when the default policy decided. For an anonymous
    /// caller asked to sign in because a rule with a subject matched the request, that rule.
    pub rule: Option<usize>,
}

/// Why a path could not be normalised. The reason is fixed text: the path came from the client
/// and is not repeated.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid request path: {reason}")]
pub struct PathError {
    /// What is wrong.
    pub reason: &'static str,
}

fn path_error(reason: &'static str) -> PathError {
    PathError { reason }
}

/// Normalises a request path for matching: drops the query and fragment, decodes
/// percent-escapes, collapses repeated slashes, resolves `.` and `..`. Refuses what could make a
/// rule and the application disagree about the path.
///
/// `raw` is the path and query of the original URL (`/a/b?x=1`). The result always starts with
/// `/`, has no empty, `.` or `..` segment, keeps a trailing slash, and never contains `?` or
/// `#`: an escaped `%3F` or `%23` stays escaped (in capitals), since decoding it would turn part
/// of the path into a query. Normalising a result again gives it back unchanged. `;` is an
/// ordinary character here: `/admin;x` stays `/admin;x`.
///
/// # Errors
/// [`PathError`] when the path is empty or does not start with `/`, is longer than
/// [`MAX_PATH_LEN`], holds a control character (raw or escaped), a backslash (raw or `%5C`), an
/// escaped slash (`%2F`) or percent sign (`%25`), an invalid escape, bytes that are not UTF-8
/// once decoded, a dot segment with parameters (`..;x`), or a `..` that climbs above the root.
pub fn normalize_path(raw: &str) -> Result<String, PathError> {
    let path = raw.find(['?', '#']).map_or(raw, |end| &raw[..end]);
    if path.len() > MAX_PATH_LEN {
        return Err(path_error("longer than 8 KiB"));
    }
    if !path.starts_with('/') {
        return Err(path_error("it does not start with '/'"));
    }
    let decoded = percent_decode(path)?;
    if decoded.chars().any(char::is_control) {
        return Err(path_error("it contains a control character"));
    }
    resolve_segments(&decoded)
}

/// Decodes `%XX` escapes, except `%3F` and `%23`, which are kept (upper-cased) so that the result
/// has no `?` or `#`. Refuses the escapes whose meaning differs between proxies and applications.
fn percent_decode(path: &str) -> Result<String, PathError> {
    let bytes = path.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&byte) = bytes.get(i) {
        match byte {
            b'\\' => return Err(path_error("it contains a backslash")),
            b'%' => {
                let value = match (bytes.get(i + 1).copied().and_then(hex), bytes.get(i + 2).copied().and_then(hex)) {
                    (Some(high), Some(low)) => high << 4 | low,
                    _ => return Err(path_error("it contains an invalid percent-escape")),
                };
                match value {
                    // Some applications split on an escaped slash and some do not: a rule could
                    // see one path and the application another.
                    b'/' => return Err(path_error("it contains an escaped slash (%2F)")),
                    b'\\' => return Err(path_error("it contains an escaped backslash (%5C)")),
                    // Decoding `%25` would give a path that decodes again into something else
                    // (`%252F` → `%2F` → `/`) for applications that decode twice.
                    b'%' => return Err(path_error("it contains an escaped percent sign (%25)")),
                    b'?' => out.extend_from_slice(b"%3F"),
                    b'#' => out.extend_from_slice(b"%23"),
                    other => out.push(other),
                }
                i += 3;
            }
            other => {
                out.push(other);
                i += 1;
            }
        }
    }
    String::from_utf8(out).map_err(|_| path_error("it is not UTF-8 once decoded"))
}

fn hex(byte: u8) -> Option<u8> {
    match byte {
        b'0'..=b'9' => Some(byte - b'0'),
        b'a'..=b'f' => Some(byte - b'a' + 10),
        b'A'..=b'F' => Some(byte - b'A' + 10),
        _ => None,
    }
}

/// Collapses empty segments and resolves `.` and `..` (RFC 3986, section 5.2.4), keeping a
/// trailing slash. `decoded` starts with `/`.
fn resolve_segments(decoded: &str) -> Result<String, PathError> {
    let mut kept: Vec<&str> = Vec::new();
    let mut trailing_slash = false;
    for segment in decoded.split('/').skip(1) {
        // A path ending in `/`, `/.` or `/..` names a directory.
        trailing_slash = matches!(segment, "" | "." | "..");
        match segment {
            "" | "." => {}
            ".." => {
                if kept.pop().is_none() {
                    return Err(path_error("'..' climbs above the root"));
                }
            }
            // Tomcat and others read `..;x` as `..`: `/public/..;/admin` would reach `/admin`.
            _ if matches!(segment.split(';').next(), Some("." | "..")) => {
                return Err(path_error("it contains a dot segment with parameters (..;)"));
            }
            _ => kept.push(segment),
        }
    }
    let mut out = String::with_capacity(decoded.len());
    for segment in &kept {
        out.push('/');
        out.push_str(segment);
    }
    if out.is_empty() || trailing_slash {
        out.push('/');
    }
    Ok(out)
}

/// A `domain` entry: one host, every host strictly below a domain, or every host.
///
/// Hosts are compared without regard to ASCII case and to one trailing dot; IPv6 addresses match
/// with or without brackets.
///
/// ```
/// use sessiond_core::access::HostPattern;
///
/// let wild = HostPattern::parse("*.example.com").unwrap();
/// assert!(wild.matches("a.example.com"));
/// assert!(wild.matches("a.b.example.com"));
/// assert!(!wild.matches("example.com"));
/// assert!(!wild.matches("badexample.com"));
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HostPattern(Glob);

#[derive(Clone, Debug, PartialEq, Eq)]
enum Glob {
    /// `*`.
    Any,
    /// `app.example.com`.
    Exact(String),
    /// `*.example.com`, stored as `example.com`.
    Below(String),
}

/// A `domain` entry that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid domain {pattern:?}: {reason}")]
pub struct InvalidHostPattern {
    /// The entry as written.
    pub pattern: String,
    /// What is wrong with it.
    pub reason: &'static str,
}

impl HostPattern {
    /// Reads `app.example.com` (that host), `*.example.com` (any host below `example.com`, not
    /// `example.com` itself) or `*` (any host). IP addresses are written as hosts; international
    /// names in their `xn--` form. Whitespace around the entry and one trailing dot are ignored.
    ///
    /// # Errors
    /// [`InvalidHostPattern`] for an empty entry, a `*` anywhere but as `*` or a leading `*.`, a
    /// port, or a character that cannot appear in a host name.
    pub fn parse(pattern: &str) -> Result<Self, InvalidHostPattern> {
        let refuse = |reason| InvalidHostPattern { pattern: pattern.to_owned(), reason };
        let text = pattern.trim().to_ascii_lowercase();
        if text == "*" {
            return Ok(Self(Glob::Any));
        }
        let (below, host) = match text.strip_prefix("*.") {
            Some(rest) => (true, rest),
            None => (false, text.as_str()),
        };
        let host = without_brackets(host);
        if host.parse::<Ipv6Addr>().is_ok() {
            return if below {
                Err(refuse("'*.' cannot stand before an IP address"))
            } else {
                Ok(Self(Glob::Exact(host.to_owned())))
            };
        }
        let host = host.strip_suffix('.').unwrap_or(host);
        if host.is_empty() {
            return Err(refuse("it is empty"));
        }
        if host.contains('*') {
            return Err(refuse("'*' may only stand alone or at the start, as \"*.example.com\""));
        }
        if host.contains('/') {
            return Err(refuse("write the host alone, without scheme or path"));
        }
        if host.contains(':') {
            return Err(refuse("hosts are matched without their port; leave the port out"));
        }
        if !host.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_')) {
            return Err(refuse(
                "a host name has letters, digits, '-', '_' and '.' (write international names in their xn-- form)",
            ));
        }
        if host.split('.').any(str::is_empty) {
            return Err(refuse("it has an empty label (two dots in a row, or a leading dot)"));
        }
        let host = host.to_owned();
        Ok(Self(if below { Glob::Below(host) } else { Glob::Exact(host) }))
    }

    /// Whether `host` (without port) matches.
    pub fn matches(&self, host: &str) -> bool {
        let host = without_brackets(host);
        let host = host.strip_suffix('.').unwrap_or(host);
        match &self.0 {
            Glob::Any => true,
            Glob::Exact(exact) => host.eq_ignore_ascii_case(exact),
            Glob::Below(parent) => {
                // `a.example.com` for `example.com`: a non-empty label, a dot, then the parent.
                host.len() > parent.len() + 1
                    && host.get(host.len() - parent.len()..).is_some_and(|tail| tail.eq_ignore_ascii_case(parent))
                    && host.as_bytes().get(host.len() - parent.len() - 1) == Some(&b'.')
            }
        }
    }
}

impl fmt::Display for HostPattern {
    /// The normalised form, which [`HostPattern::parse`] reads back to the same pattern.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            Glob::Any => f.write_str("*"),
            Glob::Exact(host) => f.write_str(host),
            Glob::Below(parent) => write!(f, "*.{parent}"),
        }
    }
}

fn without_brackets(host: &str) -> &str {
    host.strip_prefix('[').and_then(|h| h.strip_suffix(']')).unwrap_or(host)
}

/// A rule as written in the configuration, before validation. `None` means the key is absent;
/// an empty list is refused by [`Rule::parse`] rather than taken as "no restriction".
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RuleSpec {
    /// Host patterns; required. See [`HostPattern::parse`].
    pub domain: Option<Vec<String>>,
    /// Regular expressions on the normalised path (unanchored: start them with `^`).
    pub resources: Option<Vec<String>>,
    /// HTTP methods; lowercase is accepted and turned to uppercase.
    pub methods: Option<Vec<String>>,
    /// Alternatives (any may hold), each a list of `user:<name>` / `group:<name>` conditions that
    /// must all hold.
    pub subject: Option<Vec<Vec<String>>>,
    /// `bypass`, `one_factor`, `two_factor` or `deny`; required.
    pub policy: Option<String>,
}

/// A rule that cannot be used: the field (relative to the rule, such as `resources[0]` or
/// `subject[1][0]`, indices from 0) and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {kind}")]
pub struct AccessError {
    /// The offending field: `domain[2]`, `policy`, …
    pub field: String,
    /// What is wrong.
    pub kind: AccessErrorKind,
}

/// What is wrong with a rule's field. Each variant quotes the value (rules are configuration,
/// never secret).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AccessErrorKind {
    /// A required field is absent.
    #[error("missing; every rule needs one")]
    Missing,
    /// A list that is present but empty, which would otherwise silently mean "anything".
    #[error("the list is empty; leave the key out to match anything")]
    EmptyList,
    /// An unknown policy word.
    #[error(transparent)]
    Policy(#[from] UnknownPolicy),
    /// A host pattern that cannot be used.
    #[error(transparent)]
    Domain(#[from] InvalidHostPattern),
    /// A regular expression that does not compile.
    #[error("invalid regular expression {pattern:?}: {reason}")]
    Resource {
        /// The expression as written.
        pattern: String,
        /// The regular expression engine's complaint.
        reason: String,
    },
    /// A method that is not a word of capital letters.
    #[error("invalid method {method:?}: expected a word of letters such as GET or PROPFIND")]
    Method {
        /// The method as written.
        method: String,
    },
    /// A subject condition that is neither `user:<name>` nor `group:<name>`.
    #[error("invalid subject {condition:?}: expected user:<name> or group:<name>")]
    Subject {
        /// The condition as written.
        condition: String,
    },
    /// `bypass` with a subject: a subject needs a signed-in caller, which `bypass` does not.
    #[error("bypass cannot be combined with subject: matching a subject needs a signed-in caller; use one_factor")]
    BypassWithSubject,
}

/// One subject condition.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Condition {
    User(String),
    Group(String),
}

impl Condition {
    fn parse(text: &str) -> Option<Self> {
        let text = text.trim();
        let (make, name): (fn(String) -> Self, &str) = if let Some(name) = text.strip_prefix("user:") {
            (Self::User, name)
        } else if let Some(name) = text.strip_prefix("group:") {
            (Self::Group, name)
        } else {
            return None;
        };
        if name.is_empty() || name.trim() != name {
            return None;
        }
        Some(make(name.to_owned()))
    }

    fn holds(&self, subject: &Subject<'_>) -> bool {
        match self {
            Self::User(user) => subject.user == user,
            Self::Group(group) => subject.groups.iter().any(|g| g == group),
        }
    }
}

impl fmt::Display for Condition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::User(user) => write!(f, "user:{user}"),
            Self::Group(group) => write!(f, "group:{group}"),
        }
    }
}

/// A validated access rule. Build one with [`Rule::parse`].
#[derive(Clone, Debug)]
pub struct Rule {
    domains: Vec<HostPattern>,
    resources: Vec<Regex>,
    methods: Vec<String>,
    subject: Vec<Vec<Condition>>,
    policy: Policy,
}

impl PartialEq for Rule {
    /// Rules are equal when they are written the same once normalised.
    fn eq(&self, other: &Self) -> bool {
        self.to_spec() == other.to_spec()
    }
}

impl Rule {
    /// Checks a rule as written. Domains are lowercased, methods uppercased, and each regular
    /// expression is compiled once, within [`REGEX_SIZE_LIMIT`].
    ///
    /// # Errors
    /// [`AccessError`] naming the first refused field: a missing `domain` or `policy`, a list
    /// present but empty, an invalid host pattern, regular expression, method (anything but
    /// letters) or subject (anything but `user:<name>` / `group:<name>`), an unknown policy, or
    /// `bypass` together with a subject.
    pub fn parse(spec: &RuleSpec) -> Result<Self, AccessError> {
        let error = |field: String, kind| AccessError { field, kind };
        let list = |name: &str, list: &'_ Option<Vec<String>>| match list.as_deref() {
            Some([]) => Err(error(name.to_owned(), AccessErrorKind::EmptyList)),
            Some(items) => Ok(items.to_vec()),
            None => Ok(Vec::new()),
        };

        if spec.domain.is_none() {
            return Err(error("domain".into(), AccessErrorKind::Missing));
        }
        let domains = list("domain", &spec.domain)?
            .iter()
            .enumerate()
            .map(|(i, d)| HostPattern::parse(d).map_err(|e| error(format!("domain[{i}]"), e.into())))
            .collect::<Result<Vec<_>, _>>()?;

        let resources = list("resources", &spec.resources)?
            .iter()
            .enumerate()
            .map(|(i, pattern)| compile(pattern).map_err(|kind| error(format!("resources[{i}]"), kind)))
            .collect::<Result<Vec<_>, _>>()?;

        let methods = list("methods", &spec.methods)?
            .iter()
            .enumerate()
            .map(|(i, method)| {
                let upper = method.trim().to_ascii_uppercase();
                if !upper.is_empty() && upper.bytes().all(|b| b.is_ascii_uppercase()) {
                    Ok(upper)
                } else {
                    Err(error(format!("methods[{i}]"), AccessErrorKind::Method { method: method.clone() }))
                }
            })
            .collect::<Result<Vec<_>, _>>()?;

        let subject = match &spec.subject {
            Some(alternatives) if alternatives.is_empty() => {
                return Err(error("subject".into(), AccessErrorKind::EmptyList));
            }
            Some(alternatives) => alternatives
                .iter()
                .enumerate()
                .map(|(i, all)| {
                    if all.is_empty() {
                        return Err(error(format!("subject[{i}]"), AccessErrorKind::EmptyList));
                    }
                    all.iter()
                        .enumerate()
                        .map(|(j, text)| {
                            Condition::parse(text).ok_or_else(|| {
                                error(
                                    format!("subject[{i}][{j}]"),
                                    AccessErrorKind::Subject { condition: text.clone() },
                                )
                            })
                        })
                        .collect::<Result<Vec<_>, _>>()
                })
                .collect::<Result<Vec<_>, _>>()?,
            None => Vec::new(),
        };

        let policy = match &spec.policy {
            None => return Err(error("policy".into(), AccessErrorKind::Missing)),
            Some(word) => word.parse::<Policy>().map_err(|e| error("policy".into(), e.into()))?,
        };
        if policy == Policy::Bypass && !subject.is_empty() {
            return Err(error("policy".into(), AccessErrorKind::BypassWithSubject));
        }
        Ok(Self { domains, resources, methods, subject, policy })
    }

    /// What the rule demands when it matches.
    pub fn policy(&self) -> Policy {
        self.policy
    }

    /// Whether the rule names a subject, and so can only match a signed-in caller.
    pub fn has_subject(&self) -> bool {
        !self.subject.is_empty()
    }

    /// The rule written back in normalised form (lowercase domains, uppercase methods, every
    /// subject alternative as a list); [`Rule::parse`] reads it back to an equal rule.
    pub fn to_spec(&self) -> RuleSpec {
        let strings = |items: Vec<String>| Some(items).filter(|v| !v.is_empty());
        RuleSpec {
            domain: Some(self.domains.iter().map(ToString::to_string).collect()),
            resources: strings(self.resources.iter().map(|r| r.as_str().to_owned()).collect()),
            methods: strings(self.methods.clone()),
            subject: Some(self.subject.iter().map(|all| all.iter().map(ToString::to_string).collect()).collect())
                .filter(|v: &Vec<Vec<String>>| !v.is_empty()),
            policy: Some(self.policy.as_str().to_owned()),
        }
    }

    /// Whether domain, resources and methods match `object` (the subject aside).
    fn matches_object(&self, object: &Object<'_>) -> bool {
        self.domains.iter().any(|d| d.matches(object.host))
            && (self.resources.is_empty() || self.resources.iter().any(|r| r.is_match(object.path)))
            && (self.methods.is_empty() || self.methods.iter().any(|m| m == object.method))
    }

    /// Whether the subject criterion holds for a signed-in caller.
    fn matches_subject(&self, subject: &Subject<'_>) -> bool {
        self.subject.is_empty() || self.subject.iter().any(|all| all.iter().all(|c| c.holds(subject)))
    }
}

fn compile(pattern: &str) -> Result<Regex, AccessErrorKind> {
    let refuse = |reason: String| AccessErrorKind::Resource { pattern: pattern.to_owned(), reason };
    if pattern.is_empty() {
        return Err(refuse("it is empty and would match every path; leave resources out instead".into()));
    }
    RegexBuilder::new(pattern).size_limit(REGEX_SIZE_LIMIT).build().map_err(|e| {
        refuse(match e {
            // The engine's message draws a caret under the offending spot over several lines;
            // the last line says what is wrong, which is what fits in a one-line error.
            regex::Error::Syntax(text) => {
                text.lines().rev().find_map(|l| l.strip_prefix("error: ")).unwrap_or(&text).to_owned()
            }
            regex::Error::CompiledTooBig(limit) => format!("it compiles to more than {limit} bytes"),
            other => other.to_string(),
        })
    })
}

/// A validated rule set.
#[derive(Clone, Debug, PartialEq)]
pub struct AccessControl {
    default_policy: Policy,
    rules: Vec<Rule>,
}

impl Default for AccessControl {
    /// No rules, default policy `deny`: nothing passes until the operator says so.
    fn default() -> Self {
        Self { default_policy: Policy::Deny, rules: Vec::new() }
    }
}

impl AccessControl {
    /// Rules checked in order, and the policy for requests that none matches.
    pub fn new(default_policy: Policy, rules: Vec<Rule>) -> Self {
        Self { default_policy, rules }
    }

    /// The policy for requests that no rule matches.
    pub fn default_policy(&self) -> Policy {
        self.default_policy
    }

    /// The rules, in the order they are checked.
    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }

    /// Decides `object` for `subject` (`None`: not signed in).
    pub fn decide(&self, object: &Object<'_>, subject: Option<&Subject<'_>>) -> Decision {
        self.evaluate(object, subject).decision
    }

    /// Like [`AccessControl::decide`], and says which rule decided.
    pub fn evaluate(&self, object: &Object<'_>, subject: Option<&Subject<'_>>) -> Evaluation {
        match subject {
            Some(subject) => {
                let found = self
                    .rules
                    .iter()
                    .enumerate()
                    .find(|(_, rule)| rule.matches_object(object) && rule.matches_subject(subject));
                let (rule, policy) = found.map_or((None, self.default_policy), |(i, r)| (Some(i), r.policy));
                let decision = match policy {
                    Policy::Bypass | Policy::OneFactor => Decision::Allow,
                    Policy::TwoFactor if subject.has_second_factor() => Decision::Allow,
                    Policy::TwoFactor => Decision::NeedsSecondFactor,
                    Policy::Deny => Decision::Deny,
                };
                Evaluation { decision, rule }
            }
            None => self.evaluate_anonymous(object),
        }
    }

    fn evaluate_anonymous(&self, object: &Object<'_>) -> Evaluation {
        // The first rule with a subject that matches the request: signing in might select it.
        let mut could_apply = None;
        let mut decided = None;
        for (i, rule) in self.rules.iter().enumerate() {
            if !rule.matches_object(object) {
                continue;
            }
            if rule.has_subject() {
                could_apply = could_apply.or(Some(i));
                continue;
            }
            decided = Some((i, rule.policy));
            break;
        }
        let (rule, policy) = decided.map_or((None, self.default_policy), |(i, p)| (Some(i), p));
        match (policy, could_apply) {
            (Policy::OneFactor | Policy::TwoFactor, _) => Evaluation { decision: Decision::NeedsLogin, rule },
            (Policy::Bypass | Policy::Deny, Some(subject_rule)) => {
                Evaluation { decision: Decision::NeedsLogin, rule: Some(subject_rule) }
            }
            (Policy::Bypass, None) => Evaluation { decision: Decision::Allow, rule },
            (Policy::Deny, None) => Evaluation { decision: Decision::Deny, rule },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    // ---- normalize_path ----

    fn norm(raw: &str) -> String {
        normalize_path(raw).unwrap_or_else(|e| panic!("{raw:?} refused: {e}"))
    }

    fn refused(raw: &str) -> &'static str {
        match normalize_path(raw) {
            Ok(path) => panic!("{raw:?} accepted as {path:?}"),
            Err(e) => e.reason,
        }
    }

    #[test]
    fn known_tricks_normalise_to_the_path_the_application_serves() {
        assert_eq!(norm("/admin/../public"), "/public");
        assert_eq!(norm("/%61dmin"), "/admin");
        assert_eq!(norm("/public?/admin"), "/public");
        assert_eq!(norm("/public#/admin"), "/public");
        assert_eq!(norm("//admin"), "/admin");
        assert_eq!(norm("/./admin"), "/admin");
        assert_eq!(norm("/public/%2e%2e/admin"), "/admin");
        assert_eq!(norm("/public/%2E./admin"), "/admin");
        assert_eq!(norm("/a///b//c"), "/a/b/c");
    }

    #[test]
    fn ambiguous_escapes_are_refused() {
        assert_eq!(refused("/public/..%2fadmin"), "it contains an escaped slash (%2F)");
        assert_eq!(refused("/public/..%2Fadmin"), "it contains an escaped slash (%2F)");
        assert_eq!(refused("/public/..%5cadmin"), "it contains an escaped backslash (%5C)");
        assert_eq!(refused("/public/..\\admin"), "it contains a backslash");
        assert_eq!(refused("/public/%252e%252e/admin"), "it contains an escaped percent sign (%25)");
        assert_eq!(refused("/public/..;/admin"), "it contains a dot segment with parameters (..;)");
        assert_eq!(refused("/public/.;x/admin"), "it contains a dot segment with parameters (..;)");
    }

    #[test]
    fn control_characters_are_refused_raw_or_escaped() {
        for raw in ["/a%00b", "/a%0a", "/a%0D%0Ab", "/a%1f", "/a%7F", "/a\tb", "/a\u{7f}", "/a%C2%85", "/a\u{85}"] {
            assert_eq!(refused(raw), "it contains a control character", "{raw:?}");
        }
    }

    #[test]
    fn malformed_input_is_refused() {
        assert_eq!(refused(""), "it does not start with '/'");
        assert_eq!(refused("admin"), "it does not start with '/'");
        assert_eq!(refused("?x=1"), "it does not start with '/'");
        assert_eq!(refused("http://host/admin"), "it does not start with '/'");
        assert_eq!(refused("/a%"), "it contains an invalid percent-escape");
        assert_eq!(refused("/a%4"), "it contains an invalid percent-escape");
        assert_eq!(refused("/a%zz"), "it contains an invalid percent-escape");
        assert_eq!(refused("/a%+1"), "it contains an invalid percent-escape");
        assert_eq!(refused("/a%ff"), "it is not UTF-8 once decoded");
        assert_eq!(refused("/a%C3"), "it is not UTF-8 once decoded");
        assert_eq!(refused("/.."), "'..' climbs above the root");
        assert_eq!(refused("/a/../../b"), "'..' climbs above the root");
        assert_eq!(refused("/%2e%2e/etc"), "'..' climbs above the root");
    }

    #[test]
    fn length_limit_counts_the_path_not_the_query() {
        let long = format!("/{}", "a".repeat(MAX_PATH_LEN - 1));
        assert_eq!(norm(&long), long);
        assert_eq!(refused(&format!("{long}a")), "longer than 8 KiB");
        let query = format!("/a?{}", "q".repeat(4 * MAX_PATH_LEN));
        assert_eq!(norm(&query), "/a");
    }

    #[test]
    fn trailing_slashes_and_directories_are_kept() {
        assert_eq!(norm("/"), "/");
        assert_eq!(norm("/admin/"), "/admin/");
        assert_eq!(norm("/admin//"), "/admin/");
        assert_eq!(norm("/admin/."), "/admin/");
        assert_eq!(norm("/admin/x/.."), "/admin/");
        assert_eq!(norm("/admin/.."), "/");
        assert_eq!(norm("/."), "/");
        assert_eq!(norm("//"), "/");
    }

    #[test]
    fn ordinary_characters_are_kept_or_decoded() {
        assert_eq!(norm("/admin;x"), "/admin;x");
        assert_eq!(norm("/a%3Bb"), "/a;b");
        assert_eq!(norm("/caf%C3%A9/%20x"), "/café/ x");
        assert_eq!(norm("/café"), "/café");
        assert_eq!(norm("/..."), "/...");
        assert_eq!(norm("/.well-known/x"), "/.well-known/x");
        // Decoding these would turn part of the path into a query or a fragment.
        assert_eq!(norm("/what%3fnot"), "/what%3Fnot");
        assert_eq!(norm("/a%23b"), "/a%23b");
    }

    fn path_like() -> impl Strategy<Value = String> {
        // Weighted towards the characters that matter: slashes, dots, escapes and separators.
        prop::collection::vec(
            prop_oneof![
                3 => Just("/".to_owned()),
                2 => Just(".".to_owned()),
                2 => Just("..".to_owned()),
                1 => Just("%2e".to_owned()),
                1 => Just("%2f".to_owned()),
                1 => Just("%3F".to_owned()),
                1 => Just("%23".to_owned()),
                1 => Just("%25".to_owned()),
                1 => Just("%".to_owned()),
                1 => Just("?".to_owned()),
                1 => Just("#".to_owned()),
                1 => Just(";".to_owned()),
                1 => Just("\\".to_owned()),
                3 => "[a-zA-Z0-9_~-]{1,4}",
                1 => "%[0-9a-fA-F]{2}",
                1 => "\\PC",
            ],
            0..16,
        )
        .prop_map(|parts| parts.concat())
    }

    proptest! {
        #[test]
        fn normalised_paths_are_canonical(raw in path_like()) {
            if let Ok(path) = normalize_path(&raw) {
                prop_assert!(path.starts_with('/'), "{:?} -> {:?}", raw, path);
                prop_assert!(!path.contains("//"), "{:?} -> {:?}", raw, path);
                prop_assert!(!path.contains(['?', '#', '\\']), "{:?} -> {:?}", raw, path);
                prop_assert!(
                    path.split('/').all(|s| s != "." && s != ".."),
                    "{:?} -> {:?}", raw, path
                );
                prop_assert_eq!(normalize_path(&path), Ok(path), "not idempotent for {:?}", raw);
            }
        }

        #[test]
        fn also_with_a_leading_slash(raw in path_like()) {
            let raw = format!("/{raw}");
            if let Ok(path) = normalize_path(&raw) {
                prop_assert!(!path.contains("//") && !path.contains('?'));
                prop_assert_eq!(normalize_path(&path), Ok(path));
            }
        }

        #[test]
        fn the_query_never_changes_the_path(path in "/[a-z/.]{0,20}", query in "\\PC{0,20}") {
            prop_assert_eq!(normalize_path(&format!("{path}?{query}")), normalize_path(&path));
        }
    }

    // ---- host patterns ----

    fn host(pattern: &str) -> HostPattern {
        HostPattern::parse(pattern).unwrap()
    }

    #[test]
    fn wildcard_matches_subdomains_only() {
        let wild = host("*.example.com");
        for yes in ["a.example.com", "a.b.example.com", "A.Example.COM", "a.example.com."] {
            assert!(wild.matches(yes), "{yes}");
        }
        for no in ["example.com", "badexample.com", ".example.com", "example.com.evil.net", "a.example.co", ""] {
            assert!(!wild.matches(no), "{no}");
        }
    }

    #[test]
    fn exact_and_any_patterns() {
        let exact = host("App.Example.com.");
        assert_eq!(exact.to_string(), "app.example.com");
        assert!(exact.matches("app.example.com"));
        assert!(exact.matches("APP.example.com"));
        assert!(exact.matches("app.example.com."));
        assert!(!exact.matches("x.app.example.com"));
        assert!(!exact.matches("app.example.co"));
        assert!(host("*").matches("anything.at.all"));
        assert!(host("*").matches("127.0.0.1"));
        assert!(host("10.0.0.1").matches("10.0.0.1"));
        let v6 = host("[::1]");
        assert!(v6.matches("::1"));
        assert!(v6.matches("[::1]"));
        assert_eq!(host("::1"), v6);
    }

    #[test]
    fn bad_host_patterns_are_refused_with_the_reason() {
        let reason = |p: &str| HostPattern::parse(p).unwrap_err().reason;
        assert_eq!(reason(""), "it is empty");
        assert_eq!(reason("*."), "it is empty");
        assert_eq!(reason("*example.com"), "'*' may only stand alone or at the start, as \"*.example.com\"");
        assert_eq!(reason("a.*.example.com"), "'*' may only stand alone or at the start, as \"*.example.com\"");
        assert_eq!(reason("*.*.example.com"), "'*' may only stand alone or at the start, as \"*.example.com\"");
        assert_eq!(reason("app.example.com:8443"), "hosts are matched without their port; leave the port out");
        assert_eq!(reason("*.[::1]"), "'*.' cannot stand before an IP address");
        assert_eq!(reason("a..b"), "it has an empty label (two dots in a row, or a leading dot)");
        assert_eq!(reason(".example.com"), "it has an empty label (two dots in a row, or a leading dot)");
        assert!(reason("exämple.com").contains("xn--"));
        assert_eq!(reason("https://example.com"), "write the host alone, without scheme or path");
        assert_eq!(reason("example.com/admin"), "write the host alone, without scheme or path");
        assert!(reason("a b.com").contains("letters, digits"), "{}", reason("a b.com"));
        let error = HostPattern::parse("*x").unwrap_err();
        assert!(error.to_string().starts_with("invalid domain \"*x\": "), "{error}");
    }

    proptest! {
        #[test]
        fn wildcard_never_matches_a_host_glued_to_the_domain(label in "[a-z0-9-]{0,10}") {
            let wild = host("*.example.com");
            let glued = format!("{label}example.com");
            let below = format!("{label}.example.com");
            prop_assert!(!wild.matches(&glued));
            prop_assert_eq!(wild.matches(&below), !label.is_empty());
        }
    }

    // ---- rules ----

    fn strings(items: &[&str]) -> Option<Vec<String>> {
        Some(items.iter().map(|s| (*s).to_owned()).collect())
    }

    fn spec(domain: &[&str], policy: &str) -> RuleSpec {
        RuleSpec { domain: strings(domain), policy: Some(policy.to_owned()), ..RuleSpec::default() }
    }

    fn rule(spec: &RuleSpec) -> Rule {
        Rule::parse(spec).unwrap()
    }

    fn error(spec: &RuleSpec) -> AccessError {
        Rule::parse(spec).unwrap_err()
    }

    fn get<'a>(host: &'a str, path: &'a str) -> Object<'a> {
        Object { host, path, method: "GET" }
    }

    struct Who {
        user: &'static str,
        groups: Vec<String>,
        amr: Vec<String>,
    }

    impl Who {
        fn new(user: &'static str, groups: &[&str], otp: bool) -> Self {
            let amr = if otp { vec!["pwd".into(), "otp".into()] } else { vec!["pwd".into()] };
            Self { user, groups: groups.iter().map(|g| (*g).to_owned()).collect(), amr }
        }

        fn subject(&self) -> Subject<'_> {
            Subject { user: self.user, groups: &self.groups, amr: &self.amr }
        }
    }

    #[test]
    fn a_rule_needs_domain_and_policy() {
        let no_domain = RuleSpec { policy: Some("deny".into()), ..RuleSpec::default() };
        assert_eq!(error(&no_domain), AccessError { field: "domain".into(), kind: AccessErrorKind::Missing });
        let no_policy = RuleSpec { domain: strings(&["a.com"]), ..RuleSpec::default() };
        assert_eq!(error(&no_policy), AccessError { field: "policy".into(), kind: AccessErrorKind::Missing });
        assert_eq!(error(&no_policy).to_string(), "policy: missing; every rule needs one");
    }

    #[test]
    fn empty_lists_are_refused_rather_than_meaning_anything() {
        let empty = |f: fn(&mut RuleSpec)| {
            let mut s = spec(&["a.com"], "one_factor");
            f(&mut s);
            error(&s)
        };
        assert_eq!(empty(|s| s.domain = Some(vec![])).field, "domain");
        assert_eq!(empty(|s| s.resources = Some(vec![])).field, "resources");
        assert_eq!(empty(|s| s.methods = Some(vec![])).field, "methods");
        assert_eq!(empty(|s| s.subject = Some(vec![])).field, "subject");
        let inner = empty(|s| s.subject = Some(vec![vec!["user:a".into()], vec![]]));
        assert_eq!(inner, AccessError { field: "subject[1]".into(), kind: AccessErrorKind::EmptyList });
    }

    #[test]
    fn bad_fields_are_named_with_their_index() {
        let mut s = spec(&["a.com", "b:80"], "deny");
        assert_eq!(error(&s).field, "domain[1]");
        s.domain = strings(&["a.com"]);
        s.resources = strings(&["^/ok", "^/admin("]);
        let e = error(&s);
        assert_eq!(e.field, "resources[1]");
        assert_eq!(e.to_string(), "resources[1]: invalid regular expression \"^/admin(\": unclosed group");
        s.resources = strings(&[""]);
        assert_eq!(error(&s).field, "resources[0]");
        s.resources = None;
        s.methods = strings(&["GET", "get", "M-SEARCH"]);
        let e = error(&s);
        assert_eq!(e.field, "methods[2]");
        assert_eq!(e.kind, AccessErrorKind::Method { method: "M-SEARCH".into() });
        s.methods = None;
        s.subject = Some(vec![vec!["user:alice".into()], vec!["group:admins".into(), "team:x".into()]]);
        let e = error(&s);
        assert_eq!(e.field, "subject[1][1]");
        assert_eq!(e.to_string(), "subject[1][1]: invalid subject \"team:x\": expected user:<name> or group:<name>");
        s.subject = None;
        s.policy = Some("one-factor".into());
        assert_eq!(
            error(&s).to_string(),
            "policy: unknown policy \"one-factor\": expected bypass, one_factor, two_factor or deny"
        );
    }

    #[test]
    fn subjects_need_a_prefix_and_a_name() {
        for bad in ["alice", "user:", "group:", "User:alice", "user: alice", "team:x", ""] {
            let mut s = spec(&["a.com"], "one_factor");
            s.subject = Some(vec![vec![bad.to_owned()]]);
            assert_eq!(error(&s).kind, AccessErrorKind::Subject { condition: bad.to_owned() }, "{bad:?}");
        }
    }

    #[test]
    fn bypass_with_a_subject_is_refused() {
        let mut s = spec(&["a.com"], "bypass");
        s.subject = Some(vec![vec!["group:admins".into()]]);
        assert_eq!(error(&s), AccessError { field: "policy".into(), kind: AccessErrorKind::BypassWithSubject });
    }

    #[test]
    fn oversized_regexes_are_refused() {
        let mut s = spec(&["a.com"], "deny");
        s.resources = strings(&["\\w{1000}{1000}"]);
        let e = error(&s);
        assert_eq!(e.field, "resources[0]");
        assert!(e.to_string().contains("more than"), "{e}");
    }

    #[test]
    fn methods_are_uppercased_and_the_spec_reads_back() {
        let mut s = spec(&["*.Example.com", "app.example.org"], " two_factor ");
        s.methods = strings(&["get", "Head"]);
        s.resources = strings(&["^/api/"]);
        s.subject = Some(vec![vec!["user:alice".into()], vec!["group:admins".into(), "group:dev".into()]]);
        let parsed = rule(&s);
        let back = parsed.to_spec();
        assert_eq!(back.domain, strings(&["*.example.com", "app.example.org"]));
        assert_eq!(back.methods, strings(&["GET", "HEAD"]));
        assert_eq!(back.policy.as_deref(), Some("two_factor"));
        assert_eq!(rule(&back), parsed);
        assert_eq!(rule(&spec(&["a.com"], "deny")).to_spec().resources, None);
    }

    #[test]
    fn a_rule_matches_when_every_criterion_does() {
        let mut s = spec(&["app.example.com"], "one_factor");
        s.resources = strings(&["^/api/", "^/admin(/|$)"]);
        s.methods = strings(&["POST"]);
        let r = rule(&s);
        let post = |host, path| Object { host, path, method: "POST" };
        assert!(r.matches_object(&post("app.example.com", "/api/x")));
        assert!(r.matches_object(&post("app.example.com", "/admin")));
        assert!(r.matches_object(&post("app.example.com", "/admin/")));
        assert!(!r.matches_object(&post("app.example.com", "/administrator")));
        assert!(!r.matches_object(&post("other.example.com", "/api/x")));
        assert!(!r.matches_object(&get("app.example.com", "/api/x")));
        // Methods are compared exactly: the object carries them uppercase.
        assert!(!r.matches_object(&Object { host: "app.example.com", path: "/api/x", method: "post" }));
    }

    #[test]
    fn resources_are_unanchored_regexes_on_the_path() {
        let mut s = spec(&["*"], "deny");
        s.resources = strings(&["/admin"]);
        let r = rule(&s);
        assert!(r.matches_object(&get("h", "/x/admin")), "unanchored, like Authelia's");
        assert!(!r.matches_object(&get("h", "/Admin")), "case-sensitive unless the pattern says (?i)");
        // The forward-auth handler passes the normalised path, so a query cannot make it match.
        let path = normalize_path("/public?x=/admin").unwrap();
        let mut anchored = spec(&["*"], "deny");
        anchored.resources = strings(&["^/admin"]);
        assert!(!rule(&anchored).matches_object(&get("h", &path)));
    }

    #[test]
    fn subject_alternatives_are_or_and_their_conditions_and() {
        let mut s = spec(&["*"], "one_factor");
        s.subject = Some(vec![vec!["user:alice".into()], vec!["group:admins".into(), "group:dev".into()]]);
        let r = rule(&s);
        assert!(r.matches_subject(&Who::new("alice", &[], false).subject()));
        assert!(r.matches_subject(&Who::new("bob", &["dev", "admins"], false).subject()));
        assert!(!r.matches_subject(&Who::new("bob", &["admins"], false).subject()));
        assert!(!r.matches_subject(&Who::new("Alice", &[], false).subject()), "names are compared exactly");
        assert!(rule(&spec(&["*"], "deny")).matches_subject(&Who::new("x", &[], false).subject()));
    }

    // ---- decisions ----

    fn rules(default: Policy, specs: &[RuleSpec]) -> AccessControl {
        AccessControl::new(default, specs.iter().map(rule).collect())
    }

    fn with_subject(mut s: RuleSpec, subject: &[&[&str]]) -> RuleSpec {
        s.subject = Some(subject.iter().map(|all| all.iter().map(|c| (*c).to_owned()).collect()).collect());
        s
    }

    fn with_resources(mut s: RuleSpec, resources: &[&str]) -> RuleSpec {
        s.resources = strings(resources);
        s
    }

    #[test]
    fn default_denies_everything() {
        let none = AccessControl::default();
        assert_eq!(none.default_policy(), Policy::Deny);
        assert!(none.rules().is_empty());
        let alice = Who::new("alice", &["admins"], true);
        assert_eq!(none.decide(&get("a.com", "/"), None), Decision::Deny);
        assert_eq!(none.decide(&get("a.com", "/"), Some(&alice.subject())), Decision::Deny);
    }

    #[test]
    fn each_policy_maps_to_a_decision() {
        let alice = Who::new("alice", &[], false);
        let alice_otp = Who::new("alice", &[], true);
        let object = get("a.com", "/");
        for (policy, anonymous, one, two) in [
            ("bypass", Decision::Allow, Decision::Allow, Decision::Allow),
            ("one_factor", Decision::NeedsLogin, Decision::Allow, Decision::Allow),
            ("two_factor", Decision::NeedsLogin, Decision::NeedsSecondFactor, Decision::Allow),
            ("deny", Decision::Deny, Decision::Deny, Decision::Deny),
        ] {
            let acl = rules(Policy::Deny, &[spec(&["a.com"], policy)]);
            assert_eq!(acl.decide(&object, None), anonymous, "{policy} anonymous");
            assert_eq!(acl.decide(&object, Some(&alice.subject())), one, "{policy} one factor");
            assert_eq!(acl.decide(&object, Some(&alice_otp.subject())), two, "{policy} two factors");
            let by_default = AccessControl::new(policy.parse().unwrap(), vec![]);
            assert_eq!(by_default.decide(&object, None), anonymous, "default {policy}");
            assert_eq!(by_default.decide(&object, Some(&alice.subject())), one, "default {policy}");
        }
    }

    #[test]
    fn the_first_matching_rule_decides() {
        let acl = rules(
            Policy::OneFactor,
            &[
                with_resources(spec(&["*.example.com"], "bypass"), &["^/static/"]),
                with_resources(spec(&["*.example.com"], "deny"), &["^/"]),
                spec(&["*.example.com"], "bypass"),
            ],
        );
        assert_eq!(
            acl.evaluate(&get("a.example.com", "/static/x.css"), None),
            Evaluation { decision: Decision::Allow, rule: Some(0) }
        );
        assert_eq!(
            acl.evaluate(&get("a.example.com", "/x"), None),
            Evaluation { decision: Decision::Deny, rule: Some(1) }
        );
        assert_eq!(
            acl.evaluate(&get("example.com", "/x"), None),
            Evaluation { decision: Decision::NeedsLogin, rule: None }
        );
    }

    #[test]
    fn anonymous_callers_are_asked_to_sign_in_when_a_subject_rule_could_apply() {
        let admins_only = rules(
            Policy::Deny,
            &[with_subject(with_resources(spec(&["app.com"], "one_factor"), &["^/admin"]), &[&["group:admins"]])],
        );
        // Without signing in, the default would deny; signed in as an admin it would pass.
        assert_eq!(
            admins_only.evaluate(&get("app.com", "/admin"), None),
            Evaluation { decision: Decision::NeedsLogin, rule: Some(0) }
        );
        // Nothing in the rules could let anyone in elsewhere.
        assert_eq!(admins_only.decide(&get("app.com", "/public"), None), Decision::Deny);
        assert_eq!(admins_only.decide(&get("other.com", "/admin"), None), Decision::Deny);
        let bob = Who::new("bob", &["dev"], true);
        let root = Who::new("root", &["admins"], false);
        assert_eq!(admins_only.decide(&get("app.com", "/admin"), Some(&bob.subject())), Decision::Deny);
        assert_eq!(admins_only.decide(&get("app.com", "/admin"), Some(&root.subject())), Decision::Allow);

        // A later bypass does not let an anonymous caller past an earlier subject rule.
        let blocked_then_public = rules(
            Policy::Deny,
            &[with_subject(spec(&["app.com"], "deny"), &[&["group:blocked"]]), spec(&["app.com"], "bypass")],
        );
        assert_eq!(blocked_then_public.decide(&get("app.com", "/"), None), Decision::NeedsLogin);
        let blocked = Who::new("eve", &["blocked"], false);
        assert_eq!(blocked_then_public.decide(&get("app.com", "/"), Some(&blocked.subject())), Decision::Deny);
        assert_eq!(blocked_then_public.decide(&get("app.com", "/"), Some(&bob.subject())), Decision::Allow);

        // A bypass before the subject rule decides first.
        let public_first = rules(
            Policy::Deny,
            &[spec(&["app.com"], "bypass"), with_subject(spec(&["app.com"], "deny"), &[&["group:blocked"]])],
        );
        assert_eq!(public_first.decide(&get("app.com", "/"), None), Decision::Allow);
    }

    #[test]
    fn signed_in_callers_skip_rules_whose_subject_they_do_not_match() {
        let acl = rules(
            Policy::Deny,
            &[
                with_subject(spec(&["app.com"], "two_factor"), &[&["user:alice"]]),
                with_subject(spec(&["app.com"], "one_factor"), &[&["group:dev"]]),
            ],
        );
        let alice = Who::new("alice", &["dev"], false);
        let bob = Who::new("bob", &["dev"], false);
        let carol = Who::new("carol", &[], true);
        let object = get("app.com", "/");
        assert_eq!(
            acl.evaluate(&object, Some(&alice.subject())),
            Evaluation { decision: Decision::NeedsSecondFactor, rule: Some(0) }
        );
        assert_eq!(
            acl.evaluate(&object, Some(&bob.subject())),
            Evaluation { decision: Decision::Allow, rule: Some(1) }
        );
        assert_eq!(acl.evaluate(&object, Some(&carol.subject())), Evaluation { decision: Decision::Deny, rule: None });
    }

    #[test]
    fn policy_words_read_back() {
        for policy in [Policy::Bypass, Policy::OneFactor, Policy::TwoFactor, Policy::Deny] {
            assert_eq!(policy.as_str().parse::<Policy>(), Ok(policy));
            assert_eq!(policy.to_string(), policy.as_str());
        }
        assert_eq!("Deny".parse::<Policy>(), Err(UnknownPolicy { value: "Deny".into() }));
    }
}
