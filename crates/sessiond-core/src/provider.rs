//! Login providers beyond the users file (`authentication.providers`), and how their users are
//! named.
//!
//! The users file is the password provider; every other provider has an id, and its users are
//! named `<id>:<name>` in sessions, audit events and identity headers. A `:` is refused in the
//! users file's names, so a user of a provider can never take the name, groups or sessions of a
//! user of the file, nor of another provider.
//!
//! The first kind is `header`: a trusted upstream (an SSO proxy in front of the portal, listed in
//! `server.trusted_proxies`) has authenticated the person and says who it is in request headers.

use std::fmt;

/// Longest provider id.
pub const MAX_ID: usize = 32;
/// Longest user name a provider may pass.
pub const MAX_NAME: usize = 256;
/// Most groups taken from a provider, and the longest group name.
pub const MAX_GROUPS: usize = 64;
const MAX_GROUP: usize = 128;
/// Ids that name other things in the portal's and the API's paths.
const RESERVED: [&str; 6] = ["file", "login", "password", "step_up", "totp", "users"];

/// A configured provider.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Provider {
    /// Identity passed by a trusted upstream in headers.
    Header(HeaderProvider),
}

impl Provider {
    /// The provider's id.
    pub fn id(&self) -> &str {
        match self {
            Self::Header(h) => &h.id,
        }
    }

    /// What the portal's button says.
    pub fn label(&self) -> &str {
        match self {
            Self::Header(h) => &h.label,
        }
    }

    /// The authentication method recorded in the session's `amr`.
    pub fn method(&self) -> &'static str {
        match self {
            Self::Header(_) => "header",
        }
    }
}

/// `kind: header`: the names of the headers the upstream fills (lowercase).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HeaderProvider {
    /// The provider's id.
    pub id: String,
    /// What the portal's button says.
    pub label: String,
    /// The header with the user name (required in each request).
    pub user_header: String,
    /// Comma-separated groups, when the upstream sends them.
    pub groups_header: Option<String>,
    /// The email address.
    pub email_header: Option<String>,
    /// The display name.
    pub name_header: Option<String>,
}

/// Why a provider setting or a provider's answer was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ProviderError {
    /// Not a usable provider id.
    #[error(
        "provider id {0:?} must be 1 to 32 of a-z, 0-9, - and _, and not one of file, login, password, step_up, totp, users"
    )]
    BadId(String),
    /// Not a usable user name from a provider.
    #[error("the provider's user name is empty, longer than 256 bytes or holds control characters")]
    BadName,
}

/// Checks a provider id.
///
/// # Errors
/// [`ProviderError::BadId`].
pub fn validate_id(id: &str) -> Result<(), ProviderError> {
    let shaped = !id.is_empty()
        && id.len() <= MAX_ID
        && id.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
    if shaped && !RESERVED.contains(&id) { Ok(()) } else { Err(ProviderError::BadId(id.to_owned())) }
}

/// The session user name of `name` signed in by provider `id`.
///
/// # Errors
/// [`ProviderError::BadName`] for a name no session should carry.
pub fn qualified_user(id: &str, name: &str) -> Result<String, ProviderError> {
    let name = name.trim();
    if name.is_empty() || name.len() > MAX_NAME || name.chars().any(char::is_control) {
        return Err(ProviderError::BadName);
    }
    Ok(format!("{id}:{name}"))
}

/// The groups of a comma-separated header value: trimmed, empty and over-long ones dropped,
/// duplicates removed, at most [`MAX_GROUPS`].
pub fn split_groups(value: &str) -> Vec<String> {
    let mut groups: Vec<String> = Vec::new();
    for group in value.split(',').map(str::trim) {
        let usable = !group.is_empty() && group.len() <= MAX_GROUP && !group.chars().any(char::is_control);
        if usable && !groups.iter().any(|g| g == group) && groups.len() < MAX_GROUPS {
            groups.push(group.to_owned());
        }
    }
    groups
}

impl fmt::Display for Provider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.id(), self.method())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_short_lowercase_words_that_name_nothing_else() {
        for ok in ["sso", "corp-proxy", "a_1"] {
            assert_eq!(validate_id(ok), Ok(()), "{ok}");
        }
        for bad in ["", "SSO", "a b", "a:b", "totp", "login", "file", &"a".repeat(33), "ü"] {
            assert!(validate_id(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn provider_users_are_named_with_the_provider() {
        assert_eq!(qualified_user("sso", " alice ").unwrap(), "sso:alice");
        assert_eq!(qualified_user("sso", "bob@corp").unwrap(), "sso:bob@corp");
        for bad in ["", "   ", "a\nb", &"x".repeat(257)] {
            assert_eq!(qualified_user("sso", bad), Err(ProviderError::BadName), "{bad:?}");
        }
    }

    #[test]
    fn groups_are_split_trimmed_and_bounded() {
        assert_eq!(split_groups(" dev, ops ,,dev, "), ["dev", "ops"]);
        assert!(split_groups("").is_empty());
        let many = (0..100).map(|i| format!("g{i}")).collect::<Vec<_>>().join(",");
        assert_eq!(split_groups(&many).len(), MAX_GROUPS);
        assert_eq!(split_groups(&format!("{},ok", "x".repeat(129))), ["ok"]);
    }
}
