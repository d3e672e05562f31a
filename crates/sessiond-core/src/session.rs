//! The session record: everything the store keeps about one signed-in session.

use crate::time::Timestamp;
use crate::timeout::SessionTimes;
use crate::token::{SessionId, TokenHash};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Authentication method references (RFC 8176) a session can carry.
pub mod amr {
    /// Password.
    pub const PASSWORD: &str = "pwd";
    /// One-time password (TOTP).
    pub const OTP: &str = "otp";
}

/// One session as kept at rest. Holds the token's hash, never the token.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionRecord {
    /// Public id, used in lists and admin calls; never a credential.
    pub id: SessionId,
    /// SHA-256 of the session token: the key the store finds the record by.
    pub token_hash: TokenHash,
    /// Realm the session belongs to.
    pub realm: String,
    /// User name, as known to the realm's users.
    pub user: String,
    /// Human-readable name of the user.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    /// The user's email address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// Groups of the user at login.
    #[serde(default)]
    pub groups: Vec<String>,
    /// How the user authenticated (`pwd`, `otp`).
    #[serde(default)]
    pub amr: Vec<String>,
    /// When the session was created.
    pub created_at: Timestamp,
    /// When a request last used the session (written at most once per throttle interval).
    pub last_seen_at: Timestamp,
    /// The absolute deadline set at login; activity never moves it.
    pub absolute_deadline: Timestamp,
    /// The earliest instant the session can be dead, as of the last write: the store sweeps by it.
    pub expires_at: Timestamp,
    /// Whether the user ticked "remember me".
    #[serde(default)]
    pub remember_me: bool,
    /// Client address at login.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip: Option<String>,
    /// Client user agent at login.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_agent: Option<String>,
    /// Free-form attributes attached by the application.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub attributes: BTreeMap<String, serde_json::Value>,
}

impl SessionRecord {
    /// The instants the timeout policy needs.
    pub fn times(&self) -> SessionTimes {
        SessionTimes {
            created_at: self.created_at,
            last_seen_at: self.last_seen_at,
            absolute_deadline: self.absolute_deadline,
            remember_me: self.remember_me,
        }
    }
}
