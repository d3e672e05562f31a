//! Deciding whether a post-login redirect (`rd`) is safe to follow.
//!
//! STUB: to be implemented.

use url::Url;

/// Where redirects may go.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RedirectPolicy {
    /// Cookie domains of the realm (and the portal host): a target host must domain-match one.
    pub domains: Vec<String>,
    /// `server.allowed_redirects` entries.
    pub allowed: Vec<String>,
}

/// Why a redirect target was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("redirect refused: {reason}")]
pub struct RedirectError {
    /// Why.
    pub reason: &'static str,
}

/// Validates `rd` against `policy`, resolving a plain absolute path against `base` (the portal).
///
/// # Errors
/// [`RedirectError`] for anything that is not an http(s) URL to an allowed host.
pub fn validate_redirect(rd: &str, base: &Url, policy: &RedirectPolicy) -> Result<Url, RedirectError> {
    let _ = (rd, base, policy);
    Err(RedirectError { reason: "stub" })
}
