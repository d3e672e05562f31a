//! The flash cookie `<name>_flash`: a message code carried across one redirect.
//!
//! The cookie holds a code, never text, and pages show only the fixed sentence that belongs to a
//! known code, so a planted cookie cannot put words on our pages. A page that finds the cookie
//! deletes it, so each message shows once.

use crate::extract::ResponseCookies;
use crate::state::Realm;
use axum::http::{HeaderMap, HeaderValue, header};
use sessiond_core::cookie::{CookieSpec, FLASH_SUFFIX, SameSite, find_cookie};
use std::time::Duration;

/// How long a flash message waits for the next page.
const LIFETIME: Duration = Duration::from_secs(10);

/// A message for the next page.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Flash {
    /// Wrong user name or password.
    InvalidCredentials,
    /// A ban after repeated failures is in force.
    TooManyAttempts,
    /// The visitor came back with a session that had ended.
    SessionExpired,
    /// The sign-in form was left open past the journey timeout.
    JourneyExpired,
    /// A form's CSRF check failed.
    Csrf,
    /// The visitor signed out.
    LoggedOut,
    /// One session was ended from the portal.
    SessionEnded,
    /// Every other session of the visitor was ended.
    OthersEnded,
    /// An administrator ended every session of a user.
    UserSessionsEnded,
    /// A sign-in step was posted twice, or an old one again: the login ended.
    JourneyReplayed,
    /// A wrong or already used TOTP code.
    InvalidCode,
    /// A page needs a second factor the visitor has not set up.
    TotpNeeded,
    /// A TOTP was set up.
    TotpEnrolled,
    /// The TOTP was removed.
    TotpRemoved,
    /// A sensitive action needed the password again, and it was wrong.
    WrongPassword,
    /// A sign-in at a login provider came back refused or unproven.
    ProviderRefused,
}

const ALL: [Flash; 16] = [
    Flash::InvalidCredentials,
    Flash::TooManyAttempts,
    Flash::SessionExpired,
    Flash::JourneyExpired,
    Flash::Csrf,
    Flash::LoggedOut,
    Flash::SessionEnded,
    Flash::OthersEnded,
    Flash::UserSessionsEnded,
    Flash::JourneyReplayed,
    Flash::InvalidCode,
    Flash::TotpNeeded,
    Flash::TotpEnrolled,
    Flash::TotpRemoved,
    Flash::WrongPassword,
    Flash::ProviderRefused,
];

impl Flash {
    /// The code written in the cookie.
    pub(crate) fn code(self) -> &'static str {
        match self {
            Self::InvalidCredentials => "invalid_credentials",
            Self::TooManyAttempts => "too_many_attempts",
            Self::SessionExpired => "session_expired",
            Self::JourneyExpired => "journey_expired",
            Self::Csrf => "csrf",
            Self::LoggedOut => "logged_out",
            Self::SessionEnded => "session_ended",
            Self::OthersEnded => "others_ended",
            Self::UserSessionsEnded => "user_sessions_ended",
            Self::JourneyReplayed => "journey_replayed",
            Self::InvalidCode => "invalid_code",
            Self::TotpNeeded => "totp_needed",
            Self::TotpEnrolled => "totp_enrolled",
            Self::TotpRemoved => "totp_removed",
            Self::WrongPassword => "wrong_password",
            Self::ProviderRefused => "provider_refused",
        }
    }

    /// The message for a code; `None` for codes we never write.
    pub(crate) fn from_code(code: &str) -> Option<Self> {
        ALL.into_iter().find(|f| f.code() == code)
    }

    /// The sentence shown on the page.
    pub(crate) fn text(self) -> &'static str {
        match self {
            Self::InvalidCredentials => "Incorrect username or password.",
            Self::TooManyAttempts => "Too many failed attempts. Wait a few minutes, then try again.",
            Self::SessionExpired => "Your session has ended. Please sign in again.",
            Self::JourneyExpired => "The sign-in form was open too long. Please try again.",
            Self::Csrf => "The form could not be verified. Please try again.",
            Self::LoggedOut => "You have signed out.",
            Self::SessionEnded => "The session was signed out.",
            Self::OthersEnded => "Your other sessions were signed out.",
            Self::UserSessionsEnded => "All sessions of the user were signed out.",
            Self::JourneyReplayed => {
                "This sign-in was interrupted because a step was sent twice. Please sign in again."
            }
            Self::InvalidCode => "That code is not valid, or was already used. Enter the current code from your app.",
            Self::TotpNeeded => "This page needs a second factor. Set up an authenticator app first.",
            Self::TotpEnrolled => "Your authenticator app is set up. Sign-ins will ask for a code from now on.",
            Self::TotpRemoved => "Your authenticator app was removed. Sign-ins ask for the password only.",
            Self::WrongPassword => "Incorrect password.",
            Self::ProviderRefused => "The sign-in with your identity provider did not complete. Please try again.",
        }
    }

    /// Whether the message reports a failure (shown as an alert) rather than news.
    pub(crate) fn is_error(self) -> bool {
        matches!(
            self,
            Self::InvalidCredentials
                | Self::TooManyAttempts
                | Self::SessionExpired
                | Self::JourneyExpired
                | Self::Csrf
                | Self::JourneyReplayed
                | Self::InvalidCode
                | Self::TotpNeeded
                | Self::WrongPassword
                | Self::ProviderRefused
        )
    }
}

/// The flash cookie of `realm`: always `HttpOnly`, `SameSite=Lax` (or the realm's `Strict`) and
/// `Max-Age` bounded, whatever the session cookie's settings, since it only ever travels from one
/// page of ours to the next.
fn spec(realm: &Realm) -> CookieSpec {
    let same_site = if realm.cookie.same_site == SameSite::Strict { SameSite::Strict } else { SameSite::Lax };
    CookieSpec { http_only: true, persistent: true, same_site, ..realm.cookie.companion(FLASH_SUFFIX) }
}

/// Queues `flash` for the next page.
pub(crate) fn set(cookies: &ResponseCookies, realm: &Realm, flash: Flash) {
    cookies.push(&spec(realm).set_cookie(flash.code(), Some(LIFETIME)));
}

/// The message waiting for this page, if any; a flash cookie of any content is deleted.
pub(crate) fn take(headers: &HeaderMap, realm: &Realm, cookies: &ResponseCookies) -> Option<Flash> {
    let spec = spec(realm);
    let found = find_cookie(headers.get_all(header::COOKIE).iter().map(HeaderValue::as_bytes), &spec.name);
    match found {
        Ok(None) => None,
        Ok(Some(code)) => {
            cookies.push(&spec.delete_cookie());
            Flash::from_code(code)
        }
        Err(_) => {
            cookies.push(&spec.delete_cookie());
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip_and_are_cookie_safe() {
        for flash in ALL {
            assert_eq!(Flash::from_code(flash.code()), Some(flash));
            assert!(sessiond_core::cookie::is_cookie_value(flash.code().as_bytes()));
            assert!(!flash.text().contains('<'));
        }
    }

    #[test]
    fn unknown_codes_have_no_message() {
        for code in ["", "INVALID_CREDENTIALS", "<b>hi</b>", "invalid_credentials ", "logged_out\0"] {
            assert_eq!(Flash::from_code(code), None, "{code:?}");
        }
    }
}
