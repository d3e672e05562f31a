//! Access control for forward auth: which requests pass, for whom, with which strength.
//!
//! Rules are checked in order; the first whose domain, resource, method and subject all match
//! decides. When none matches, the default policy applies (`deny` unless configured).

use crate::session::amr;

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

/// Why a path could not be normalised.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid request path: {reason}")]
pub struct PathError {
    /// What is wrong.
    pub reason: &'static str,
}

/// Normalises a request path for matching: drops the query and fragment, decodes
/// percent-escapes, collapses repeated slashes, resolves `.` and `..`. Refuses what could make a
/// rule and the application disagree about the path.
///
/// # Errors
/// [`PathError`] for control characters, bad escapes, invalid UTF-8, an encoded slash or a path
/// that does not start with `/`.
pub fn normalize_path(raw: &str) -> Result<String, PathError> {
    let _ = raw;
    Err(PathError { reason: "not implemented" })
}

/// A validated rule set.
#[derive(Clone, Debug)]
pub struct AccessControl {
    default_policy: Policy,
}

impl Default for AccessControl {
    /// No rules, default policy `deny`: nothing passes until the operator says so.
    fn default() -> Self {
        Self { default_policy: Policy::Deny }
    }
}

impl AccessControl {
    /// Decides `object` for `subject` (`None`: not signed in).
    pub fn decide(&self, object: &Object<'_>, subject: Option<&Subject<'_>>) -> Decision {
        let _ = (object, subject, self.default_policy);
        Decision::Deny
    }
}
