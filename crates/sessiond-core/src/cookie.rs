//! Cookies: building `Set-Cookie` values, finding ours in a `Cookie` header, and validating
//! cookie names and domains.
//!
//! STUB: to be implemented.

use std::time::Duration;

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
    pub fn set_cookie(&self, value: &str, max_age: Option<Duration>) -> String {
        let _ = (value, max_age);
        String::new()
    }

    /// A `Set-Cookie` value that deletes the cookie (same name, Domain and Path; `Max-Age=0`).
    pub fn delete_cookie(&self) -> String {
        String::new()
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

/// Finds the value of cookie `name` in the given `Cookie` header values.
///
/// # Errors
/// [`CookieParseError`] when the cookie is duplicated with different values or not valid text.
pub fn find_cookie<'a>(
    headers: impl IntoIterator<Item = &'a [u8]>,
    name: &str,
) -> Result<Option<&'a str>, CookieParseError> {
    let _ = (headers.into_iter().count(), name);
    Ok(None)
}
