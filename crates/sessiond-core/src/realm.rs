//! A realm's validated policy: its cookie, its timeouts, its portal.

use crate::cookie::{CookieSpec, SameSite};
use crate::journey::JourneySettings;
use crate::jwt::JwtSettings;
use crate::timeout::Timeouts;
use url::Url;

/// Name of the realm served when the configuration names none.
pub const DEFAULT_REALM: &str = "main";

/// `cookie.http_only`: whether tokens may reach JavaScript.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum HttpOnlyMode {
    /// Cookies are HttpOnly and tokens are left out of JSON answered to browsers (default).
    #[default]
    On,
    /// Cookies are readable by JavaScript and tokens appear in JSON bodies (Stytch SDK style).
    Off,
    /// Like `On`, and API calls that present a token in the body instead of the cookie are refused.
    Enforced,
}

/// The cookie settings of a realm, before the name is resolved against the store.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CookieSettings {
    /// Name set in config; `None` means the realm's generated default kept in the store.
    pub name: Option<String>,
    /// `Domain` attribute (lowercase, no leading dot); host-only when `None`.
    pub domain: Option<String>,
    /// `SameSite` attribute.
    pub same_site: SameSite,
    /// `Secure` attribute, already resolved from `auto`.
    pub secure: bool,
    /// Whether cookies carry `Max-Age` (false: removed when the browser closes).
    pub persistent: bool,
    /// `cookie.http_only`.
    pub http_only: HttpOnlyMode,
}

impl CookieSettings {
    /// The spec of the session cookie once its name is known.
    pub fn spec(&self, name: &str) -> CookieSpec {
        CookieSpec {
            name: name.to_owned(),
            domain: self.domain.clone(),
            secure: self.secure,
            http_only: self.http_only != HttpOnlyMode::Off,
            same_site: self.same_site,
            persistent: self.persistent,
        }
    }
}

/// Where a realm's sessions live (`realms.<name>.location`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum SessionLocation {
    /// The cookie holds a random token; the session record lives in the store (default).
    #[default]
    Server,
    /// The cookie holds the whole session, sealed (see [`crate::client_session`]); the store
    /// keeps only what revokes it.
    Client,
}

impl SessionLocation {
    /// The word used in configuration: `server` or `client`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Server => "server",
            Self::Client => "client",
        }
    }
}

/// Everything the rules need to know about one realm.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RealmPolicy {
    /// The realm's name (`main` by default).
    pub name: String,
    /// Public URL of the portal serving this realm.
    pub portal_url: Url,
    /// Cookie settings.
    pub cookie: CookieSettings,
    /// Timeouts.
    pub timeouts: Timeouts,
    /// Session JWTs.
    pub jwt: JwtSettings,
    /// Where sessions live.
    pub location: SessionLocation,
    /// Login journeys: where their state lives, allowlisting, timeout.
    pub journeys: JourneySettings,
}
