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
//!
//! The second is `ldap`: a directory checks the password typed at the password step, after the
//! users file has refused it (a users-file user always wins for the same typed name). This
//! crate only describes it and builds its search filters ([`escape_filter_value`]); the server
//! talks to the directory.
//!
//! The third is `oidc`: an OpenID Connect provider signs the person in (authorization code flow
//! with PKCE) and sessiond takes the user, groups, email and name from the ID token's and the
//! userinfo endpoint's claims ([`OidcProvider`]).
//!
//! The fourth is `saml`: a SAML 2.0 identity provider signs the person in (an `AuthnRequest`
//! by the HTTP-Redirect binding, a signed assertion back by the HTTP-POST binding) and sessiond
//! takes the user from the assertion's `NameID` or attributes ([`SamlProvider`]).

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

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
// A handful of providers, built once from the configuration: boxing would buy nothing.
#[allow(clippy::large_enum_variant)]
pub enum Provider {
    /// Identity passed by a trusted upstream in headers.
    Header(HeaderProvider),
    /// Passwords checked by an LDAP directory.
    Ldap(LdapProvider),
    /// An OpenID Connect provider.
    Oidc(OidcProvider),
    /// A SAML 2.0 identity provider.
    Saml(SamlProvider),
}

impl Provider {
    /// The provider's id.
    pub fn id(&self) -> &str {
        match self {
            Self::Header(h) => &h.id,
            Self::Ldap(l) => &l.id,
            Self::Oidc(o) => &o.id,
            Self::Saml(s) => &s.id,
        }
    }

    /// What the portal's button says.
    pub fn label(&self) -> &str {
        match self {
            Self::Header(h) => &h.label,
            Self::Ldap(l) => &l.label,
            Self::Oidc(o) => &o.label,
            Self::Saml(s) => &s.label,
        }
    }

    /// Whether the provider has its own sign-in (a portal button at `/login/{id}` and a
    /// `?journey={id}` in the API). An LDAP provider has none: it checks the password step.
    pub fn has_own_journey(&self) -> bool {
        matches!(self, Self::Header(_) | Self::Oidc(_) | Self::Saml(_))
    }

    /// The authentication method recorded in the session's `amr`.
    pub fn method(&self) -> &'static str {
        match self {
            Self::Header(_) => "header",
            // The person typed a password; the directory only checked it.
            Self::Ldap(_) => "pwd",
            // Whatever the provider asked of the person, sessiond saw only its word for it.
            Self::Oidc(_) => "oidc",
            Self::Saml(_) => "saml",
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

/// The default [`LdapProvider::user_filter`].
pub const DEFAULT_USER_FILTER: &str = "(&(objectClass=person)(uid={username}))";
/// The default [`LdapGroups::Search`] filter.
pub const DEFAULT_GROUP_FILTER: &str = "(&(objectClass=groupOfNames)(member={dn}))";
/// The default [`LdapProvider::timeout`].
pub const DEFAULT_LDAP_TIMEOUT: Duration = Duration::from_secs(5);

/// `kind: ldap`: a directory that checks passwords.
///
/// A login searches the user as the service account (`bind_dn`), with `user_filter` (and not
/// `disabled_filter`) under `base_dn`; exactly one entry must match. Then it binds as that entry
/// with the typed password, and reads the groups and attributes. Its users are named
/// `<id>:<username_attribute's value>`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LdapProvider {
    /// The provider's id.
    pub id: String,
    /// What the portal says of it.
    pub label: String,
    /// `ldap://host:port` or `ldaps://host:port`.
    pub url: String,
    /// Upgrade an `ldap://` connection with StartTLS before binding (never with `ldaps://`).
    pub start_tls: bool,
    /// The service account that searches users and groups.
    pub bind_dn: String,
    /// The service account's password.
    pub bind_password: BindPassword,
    /// Where users are searched (whole subtree).
    pub base_dn: String,
    /// The user search filter; `{username}` stands for the typed name, escaped (RFC 4515).
    /// Default: [`DEFAULT_USER_FILTER`].
    pub user_filter: String,
    /// The attribute of the found entry that names the user (`<id>:<value>`), so that every
    /// spelling the directory matches (`Alice`, `alice `) is the same session user, with the
    /// same second factor. Default: `uid`.
    pub username_attribute: String,
    /// A filter that marks a found user disabled (such as `(pwdAccountLockedTime=*)`): refused
    /// at login, and their sessions end at the next refresh. Default: none.
    pub disabled_filter: Option<String>,
    /// Where the user's groups come from.
    pub groups: LdapGroups,
    /// The attribute with the display name; the first of these the entry has. Default:
    /// `displayName`, then `cn`.
    pub display_name_attributes: Vec<String>,
    /// The attribute with the email address. Default: `mail`.
    pub email_attribute: String,
    /// The limit on each operation with the directory (connect, StartTLS, bind, search).
    /// Default: [`DEFAULT_LDAP_TIMEOUT`].
    pub timeout: Duration,
    /// PEM file of the CA certificates that sign the directory's certificate (ldaps:// or
    /// StartTLS). Default: none, the system's roots.
    pub ca_file: Option<PathBuf>,
}

impl LdapProvider {
    /// A provider with every optional setting at its default.
    pub fn new(
        id: impl Into<String>,
        url: impl Into<String>,
        bind_dn: impl Into<String>,
        bind_password: impl Into<String>,
        base_dn: impl Into<String>,
    ) -> Self {
        let id = id.into();
        Self {
            label: id.clone(),
            id,
            url: url.into(),
            start_tls: false,
            bind_dn: bind_dn.into(),
            bind_password: BindPassword(bind_password.into()),
            base_dn: base_dn.into(),
            user_filter: DEFAULT_USER_FILTER.to_owned(),
            username_attribute: "uid".to_owned(),
            disabled_filter: None,
            groups: LdapGroups::MemberOf,
            display_name_attributes: vec!["displayName".to_owned(), "cn".to_owned()],
            email_attribute: "mail".to_owned(),
            timeout: DEFAULT_LDAP_TIMEOUT,
            ca_file: None,
        }
    }

    /// Checks the settings that can be checked without the directory.
    ///
    /// # Errors
    /// [`ProviderError::BadId`], or [`ProviderError::BadLdap`] naming the setting: a URL that
    /// is not `ldap://` or `ldaps://`, StartTLS over `ldaps://`, a user filter without
    /// `{username}` or not in parentheses, a group filter without `{dn}`, a zero timeout.
    pub fn validate(&self) -> Result<(), ProviderError> {
        validate_id(&self.id)?;
        let bad = |setting: &'static str, reason: &'static str| Err(ProviderError::BadLdap { setting, reason });
        let ldaps = self.url.starts_with("ldaps://");
        if !ldaps && !self.url.starts_with("ldap://") {
            return bad("url", "must start with ldap:// or ldaps://");
        }
        if ldaps && self.start_tls {
            return bad("start_tls", "is for ldap:// URLs; ldaps:// is TLS already");
        }
        if !self.user_filter.contains("{username}") || !is_parenthesised(&self.user_filter) {
            return bad("user_filter", "must be in parentheses and contain {username}");
        }
        if self.username_attribute.is_empty() {
            return bad("username_attribute", "must not be empty");
        }
        if self.disabled_filter.as_deref().is_some_and(|f| !is_parenthesised(f)) {
            return bad("disabled_filter", "must be in parentheses");
        }
        if let LdapGroups::Search { filter, name_attribute, .. } = &self.groups {
            if !filter.contains("{dn}") || !is_parenthesised(filter) {
                return bad("group_filter", "must be in parentheses and contain {dn}");
            }
            if name_attribute.is_empty() {
                return bad("group_name_attribute", "must not be empty");
            }
        }
        if self.timeout.is_zero() {
            return bad("timeout", "must be more than 0");
        }
        Ok(())
    }

    /// The filter that finds the user typing `username`: [`Self::user_filter`] with the name
    /// escaped, and not [`Self::disabled_filter`] when one is set.
    pub fn user_search_filter(&self, username: &str) -> String {
        let found = self.user_filter.replace("{username}", &escape_filter_value(username));
        match &self.disabled_filter {
            Some(disabled) => format!("(&{found}(!{disabled}))"),
            None => found,
        }
    }

    /// The group search filter for the user entry `dn`, when groups are searched.
    pub fn group_search_filter(&self, dn: &str) -> Option<String> {
        match &self.groups {
            LdapGroups::Search { filter, .. } => Some(filter.replace("{dn}", &escape_filter_value(dn))),
            LdapGroups::MemberOf => None,
        }
    }
}

fn is_parenthesised(filter: &str) -> bool {
    filter.starts_with('(') && filter.ends_with(')')
}

/// Where an LDAP user's groups come from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LdapGroups {
    /// The user entry's `memberOf` attribute (the directory's memberof overlay); each value is
    /// a group DN, and the group's name is the value of its first RDN (`cn=dev,ou=groups,…` is
    /// `dev`). The default.
    MemberOf,
    /// A search for the groups that list the user.
    Search {
        /// Where groups are searched (whole subtree).
        base_dn: String,
        /// `{dn}` stands for the user entry's DN, escaped. Default: [`DEFAULT_GROUP_FILTER`].
        filter: String,
        /// The attribute with the group's name. Default: `cn`.
        name_attribute: String,
    },
}

impl LdapGroups {
    /// A group search under `base_dn` with the default filter and name attribute.
    pub fn search(base_dn: impl Into<String>) -> Self {
        Self::Search {
            base_dn: base_dn.into(),
            filter: DEFAULT_GROUP_FILTER.to_owned(),
            name_attribute: "cn".to_owned(),
        }
    }
}

/// The default [`OidcProvider::scopes`].
pub const DEFAULT_OIDC_SCOPES: [&str; 3] = ["openid", "profile", "email"];
/// The default [`OidcProvider::timeout`].
pub const DEFAULT_OIDC_TIMEOUT: Duration = Duration::from_secs(10);

/// `kind: oidc`: an OpenID Connect provider, as a confidential client.
///
/// The portal's button starts the authorization code flow with PKCE (S256); the provider sends
/// the browser back to `<portal_url>/login/<id>/callback`, where the code is exchanged and the ID
/// token checked (signature by the provider's published keys, issuer, audience, expiry, nonce).
/// Its users are named `<id>:<value of claims.username>`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OidcProvider {
    /// The provider's id.
    pub id: String,
    /// What the portal's button says.
    pub label: String,
    /// The issuer identifier; discovery reads `<issuer>/.well-known/openid-configuration`, and
    /// the ID token's `iss` must be exactly this. `https://`, or `http://` on a loopback host.
    pub issuer: String,
    /// The client id registered at the provider.
    pub client_id: String,
    /// The client secret (client_secret_basic).
    pub client_secret: BindPassword,
    /// The scopes asked for; always with `openid`. Default: [`DEFAULT_OIDC_SCOPES`].
    pub scopes: Vec<String>,
    /// Where the user and profile come from. Default: [`ProviderClaims::oidc`].
    pub claims: ProviderClaims,
    /// Whether signing out of sessiond also signs out at the provider (RP-initiated logout),
    /// when the provider publishes an `end_session_endpoint`. Default: false.
    pub logout: bool,
    /// The limit on each request to the provider (discovery, keys, token, userinfo).
    /// Default: [`DEFAULT_OIDC_TIMEOUT`].
    pub timeout: Duration,
    /// PEM file of the CA certificates that sign the provider's certificate. Default: none,
    /// the public roots.
    pub ca_file: Option<PathBuf>,
}

/// Where an OpenID Connect or SAML user and their profile are read from: claim names of the
/// ID token and userinfo (OpenID Connect, ID token first), or attribute names of the assertion
/// (SAML; an attribute matches by its `Name` or its `FriendlyName`). The defaults differ by
/// kind: [`ProviderClaims::oidc`] and [`ProviderClaims::saml`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProviderClaims {
    /// The claim or attribute that names the user. OpenID Connect: `sub`, the one identifier a
    /// provider promises never to reassign (`preferred_username` or `email` read better but
    /// may change hands). SAML: [`SAML_NAME_ID`], the subject's `NameID`.
    pub username: String,
    /// The claim with the groups (an array of strings, or one string), or the attribute with
    /// one group per value. Default: `groups`.
    pub groups: String,
    /// The email address; an OpenID Connect email is taken only when `email_verified` is not
    /// `false`. Default: `email` (OpenID Connect), `mail` (SAML).
    pub email: String,
    /// The display name. Default: `name` (OpenID Connect), `displayName` (SAML).
    pub name: String,
}

impl ProviderClaims {
    /// The defaults of an OpenID Connect provider: `sub`, `groups`, `email`, `name`.
    pub fn oidc() -> Self {
        Self::named("sub", "groups", "email", "name")
    }

    /// The defaults of a SAML provider: the `NameID`, `groups`, `mail`, `displayName`.
    pub fn saml() -> Self {
        Self::named(SAML_NAME_ID, "groups", "mail", "displayName")
    }

    fn named(username: &str, groups: &str, email: &str, name: &str) -> Self {
        Self {
            username: username.to_owned(),
            groups: groups.to_owned(),
            email: email.to_owned(),
            name: name.to_owned(),
        }
    }

    /// Refuses an empty `claims.username`, `claims.groups`, `claims.email` or `claims.name`
    /// (in that order).
    fn validate(&self) -> Result<(), ProviderError> {
        let settings = ["claims.username", "claims.groups", "claims.email", "claims.name"];
        let names = [&self.username, &self.groups, &self.email, &self.name];
        match settings.into_iter().zip(names).find(|(_, name)| name.trim().is_empty()) {
            Some((setting, _)) => Err(ProviderError::BadOidc { setting, reason: "must not be empty" }),
            None => Ok(()),
        }
    }
}

impl OidcProvider {
    /// A provider with every optional setting at its default.
    pub fn new(
        id: impl Into<String>,
        issuer: impl Into<String>,
        client_id: impl Into<String>,
        client_secret: impl Into<String>,
    ) -> Self {
        let id = id.into();
        Self {
            label: id.clone(),
            id,
            issuer: issuer.into(),
            client_id: client_id.into(),
            client_secret: BindPassword(client_secret.into()),
            scopes: DEFAULT_OIDC_SCOPES.iter().map(|s| (*s).to_owned()).collect(),
            claims: ProviderClaims::oidc(),
            logout: false,
            timeout: DEFAULT_OIDC_TIMEOUT,
            ca_file: None,
        }
    }

    /// Checks the settings that can be checked without the provider.
    ///
    /// # Errors
    /// [`ProviderError::BadId`], or [`ProviderError::BadOidc`] naming the setting: an issuer
    /// that is not an `https://` URL (or `http://` on a loopback host) or carries a query or
    /// fragment, an empty client id or secret, scopes without `openid` or with blanks, an empty
    /// claim name, a zero timeout.
    pub fn validate(&self) -> Result<(), ProviderError> {
        validate_id(&self.id)?;
        let bad = |setting: &'static str, reason: &'static str| Err(ProviderError::BadOidc { setting, reason });
        if let Some(reason) = issuer_problem(&self.issuer) {
            return bad("issuer", reason);
        }
        if self.client_id.trim().is_empty() {
            return bad("client_id", "must not be empty");
        }
        if self.client_secret.0.is_empty() {
            return bad("client_secret", "must not be empty");
        }
        if !self.scopes.iter().any(|s| s == "openid") {
            return bad("scopes", "must include openid");
        }
        if self.scopes.iter().any(|s| s.is_empty() || s.chars().any(|c| c.is_whitespace() || c.is_control())) {
            return bad("scopes", "must be words without spaces");
        }
        self.claims.validate()?;
        if self.timeout.is_zero() {
            return bad("timeout", "must be more than 0");
        }
        Ok(())
    }
}

/// Why `issuer` cannot be an issuer: the ID token's `iss` is compared with it byte for byte, and
/// a token read over plain HTTP from anywhere but this machine could be anyone's.
fn issuer_problem(issuer: &str) -> Option<&'static str> {
    let Ok(url) = url::Url::parse(issuer) else { return Some("must be an absolute https:// URL") };
    if url.query().is_some() || url.fragment().is_some() {
        return Some("must not have a query or a fragment");
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Some("must not carry credentials");
    }
    let loopback = match url.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => return Some("must name a host"),
    };
    match url.scheme() {
        "https" => None,
        "http" if loopback => None,
        "http" => Some("must be https:// (http:// only on a loopback host)"),
        _ => Some("must be an absolute https:// URL"),
    }
}

/// The default SAML [`ProviderClaims::username`]: the assertion's subject `NameID`, not an attribute.
pub const SAML_NAME_ID: &str = "name_id";

/// `kind: saml`: a SAML 2.0 identity provider, for which sessiond is the service provider.
///
/// The portal's button sends an `AuthnRequest` by the HTTP-Redirect binding to the identity
/// provider's single sign-on service (from its metadata); the identity provider posts the
/// response back to `<portal_url>/login/<id>/acs` (HTTP-POST binding). The assertion must be
/// signed by a key of the identity provider's metadata, for this service provider, now, and in
/// response to this sign-in's request. The service provider's metadata is served at
/// `<portal_url>/login/<id>/metadata`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SamlProvider {
    /// The provider's id.
    pub id: String,
    /// What the portal's button says.
    pub label: String,
    /// The identity provider's metadata (an `EntityDescriptor`, with its signing certificates
    /// and an HTTP-Redirect single sign-on service).
    pub idp_metadata_file: PathBuf,
    /// This service provider's entity id. Default: none, `<portal_url>/login/<id>/metadata`
    /// of the realm.
    pub entity_id: Option<String>,
    /// Where the user and profile come from. Default: [`ProviderClaims::saml`].
    pub claims: ProviderClaims,
}

impl SamlProvider {
    /// A provider with every optional setting at its default.
    pub fn new(id: impl Into<String>, idp_metadata_file: impl Into<PathBuf>) -> Self {
        let id = id.into();
        Self {
            label: id.clone(),
            id,
            idp_metadata_file: idp_metadata_file.into(),
            entity_id: None,
            claims: ProviderClaims::saml(),
        }
    }

    /// Checks the settings that can be checked without the metadata.
    ///
    /// # Errors
    /// [`ProviderError::BadId`], or [`ProviderError::BadOidc`] naming the setting: an empty
    /// entity id or claim name.
    pub fn validate(&self) -> Result<(), ProviderError> {
        validate_id(&self.id)?;
        let bad = |setting: &'static str, reason: &'static str| Err(ProviderError::BadOidc { setting, reason });
        if self.entity_id.as_deref().is_some_and(|e| e.trim().is_empty() || e.chars().any(char::is_control)) {
            return bad("entity_id", "must not be empty or hold control characters");
        }
        self.claims.validate()?;
        Ok(())
    }
}

/// The service account's password; never written by `Debug`.
#[derive(Clone, PartialEq, Eq)]
pub struct BindPassword(pub String);

impl BindPassword {
    /// The password itself, to bind with.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for BindPassword {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

/// Escapes `value` for an LDAP filter's assertion value (RFC 4515, section 3): `*`, `(`, `)`,
/// `\`, NUL and the other control characters become `\` and two hex digits, so a typed name
/// can never add a wildcard or a clause to the filter.
pub fn escape_filter_value(value: &str) -> String {
    let mut escaped = String::with_capacity(value.len());
    for c in value.chars() {
        if matches!(c, '*' | '(' | ')' | '\\') || c.is_ascii_control() {
            escaped.push_str(&format!("\\{:02x}", c as u32));
        } else {
            escaped.push(c);
        }
    }
    escaped
}

/// The name of a group from its DN: the value of the first RDN (`cn=dev,ou=groups` is `dev`).
pub fn group_name_from_dn(dn: &str) -> Option<&str> {
    let first = dn.split(',').next()?;
    let (_, value) = first.split_once('=')?;
    let value = value.trim();
    (!value.is_empty()).then_some(value)
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
    /// An LDAP provider setting that cannot work.
    #[error("{setting} {reason}")]
    BadLdap {
        /// The setting's key within the provider.
        setting: &'static str,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// An OpenID Connect or SAML provider setting that cannot work.
    #[error("{setting} {reason}")]
    BadOidc {
        /// The setting's key within the provider.
        setting: &'static str,
        /// What is wrong with it.
        reason: &'static str,
    },
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

    #[test]
    fn filter_values_are_escaped_per_rfc_4515() {
        assert_eq!(escape_filter_value("alice"), "alice");
        assert_eq!(escape_filter_value("*"), "\\2a");
        assert_eq!(escape_filter_value("*)(uid=*"), "\\2a\\29\\28uid=\\2a");
        assert_eq!(escape_filter_value("a\\b"), "a\\5cb");
        assert_eq!(escape_filter_value("a\0b\n"), "a\\00b\\0a");
        // Non-ASCII stays as its UTF-8, which RFC 4515 allows unescaped.
        assert_eq!(escape_filter_value("jürgen"), "jürgen");
        assert_eq!(escape_filter_value("cn=a,ou=b"), "cn=a,ou=b");
    }

    #[test]
    fn a_typed_name_cannot_change_the_user_filter() {
        let mut p = LdapProvider::new("ldap", "ldap://dir", "cn=svc", "pw", "dc=example");
        assert_eq!(p.user_search_filter("alice"), "(&(objectClass=person)(uid=alice))");
        assert_eq!(p.user_search_filter("*)(uid=*"), "(&(objectClass=person)(uid=\\2a\\29\\28uid=\\2a))");
        p.disabled_filter = Some("(employeeType=former)".to_owned());
        assert_eq!(p.user_search_filter("bob"), "(&(&(objectClass=person)(uid=bob))(!(employeeType=former)))");
        assert_eq!(p.group_search_filter("uid=a"), None);
        p.groups = LdapGroups::search("ou=groups");
        assert_eq!(
            p.group_search_filter("uid=a\\,b,ou=people").as_deref(),
            Some("(&(objectClass=groupOfNames)(member=uid=a\\5c,b,ou=people))")
        );
    }

    #[test]
    fn ldap_settings_are_checked_and_the_password_never_printed() {
        let ok = LdapProvider::new("corp", "ldaps://dir:636", "cn=svc", "s3cret", "dc=example");
        assert_eq!(ok.validate(), Ok(()));
        assert!(!format!("{ok:?}").contains("s3cret"));
        assert_eq!(Provider::Ldap(ok.clone()).method(), "pwd");
        type Breaks = fn(&mut LdapProvider);
        let broken: [(&str, Breaks); 5] = [
            ("url", |p| p.url = "http://dir".into()),
            ("start_tls", |p| p.start_tls = true),
            ("user_filter", |p| p.user_filter = "(uid=alice)".into()),
            ("group_filter", |p| {
                p.groups =
                    LdapGroups::Search { base_dn: "o".into(), filter: "(cn=x)".into(), name_attribute: "cn".into() }
            }),
            ("timeout", |p| p.timeout = Duration::ZERO),
        ];
        for (setting, breaks) in broken {
            let mut p = ok.clone();
            breaks(&mut p);
            assert!(
                matches!(p.validate(), Err(ProviderError::BadLdap { setting: s, .. }) if s == setting),
                "{setting}"
            );
        }
    }

    #[test]
    fn oidc_settings_are_checked_and_the_secret_never_printed() {
        let ok = OidcProvider::new("corp", "https://id.example.com/realms/corp", "sessiond", "s3cret");
        assert_eq!(ok.validate(), Ok(()));
        assert!(!format!("{ok:?}").contains("s3cret"));
        for loopback in ["http://127.0.0.1:8080", "http://localhost:9000/op", "http://[::1]:1"] {
            let p = OidcProvider { issuer: loopback.into(), ..ok.clone() };
            assert_eq!(p.validate(), Ok(()), "{loopback}");
        }
        type Breaks = fn(&mut OidcProvider);
        let broken: [(&str, Breaks); 10] = [
            ("issuer", |p| p.issuer = "http://id.example.com".into()),
            ("issuer", |p| p.issuer = "id.example.com".into()),
            ("issuer", |p| p.issuer = "https://id.example.com/?tenant=a".into()),
            ("issuer", |p| p.issuer = "https://user:pw@id.example.com".into()),
            ("issuer", |p| p.issuer = "ftp://id.example.com".into()),
            ("client_id", |p| p.client_id = " ".into()),
            ("scopes", |p| p.scopes = vec!["profile".into()]),
            ("scopes", |p| p.scopes = vec!["openid".into(), "a b".into()]),
            ("claims.username", |p| p.claims.username = String::new()),
            ("timeout", |p| p.timeout = Duration::ZERO),
        ];
        for (setting, breaks) in broken {
            let mut p = ok.clone();
            breaks(&mut p);
            assert!(
                matches!(p.validate(), Err(ProviderError::BadOidc { setting: s, .. }) if s == setting),
                "{setting}: {:?}",
                p.validate()
            );
        }
        assert!(Provider::Oidc(ok).has_own_journey());
    }

    #[test]
    fn group_names_come_from_the_first_rdn() {
        assert_eq!(group_name_from_dn("cn=dev,ou=groups,dc=example"), Some("dev"));
        assert_eq!(group_name_from_dn("nonsense"), None);
    }
}
