//! The audit log: one JSON line per security event, for people and SIEMs, separate from the
//! diagnostic log. Never a token or a password; sessions appear by their public id.

use serde::Serialize;
use sessiond_core::time::Timestamp;
use std::fs::{File, OpenOptions};
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use tracing::warn;

/// What happened.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AuditKind {
    /// A user logged in.
    LoginSucceeded,
    /// A login was refused (wrong password, unknown or disabled user, or a ban in force).
    LoginFailed,
    /// A user name or address was banned after repeated failures.
    Banned,
    /// A user ended their own session.
    Logout,
    /// A session ran past its absolute or idle deadline.
    Expired,
    /// A session was ended by its owner from another session, or by an administrator.
    Revoked,
    /// A session was ended because its user was disabled or removed.
    UserDisabled,
    /// An administrator created a session for a user signed in elsewhere.
    SessionCreated,
    /// A realm's cookie name changed, ending every session of the realm.
    CookieNameChanged,
    /// A realm's JWT signing key was rotated (by schedule or by an administrator).
    KeyRotated,
    /// An API token was created.
    TokenCreated,
    /// An API token was revoked by its owner or an administrator.
    TokenRevoked,
    /// A user's TOTP second factor was enrolled, removed, or reset by an administrator.
    TotpChanged,
    /// A login journey ended because an earlier `auth_id` was presented.
    JourneyReplayed,
}

/// One event. Fields that do not apply are left out.
#[derive(Clone, Debug, Default, Serialize)]
pub struct AuditEvent<'a> {
    /// The realm.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub realm: Option<&'a str>,
    /// The user the event is about.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user: Option<&'a str>,
    /// Public id of the session.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub session_id: Option<&'a str>,
    /// Public id of the API token.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token_id: Option<&'a str>,
    /// Who did it, when not the user (an administrator).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub actor: Option<&'a str>,
    /// Client address.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ip: Option<&'a str>,
    /// Client user agent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_agent: Option<&'a str>,
    /// Why, as a fixed word (`invalid_credentials`, `idle`, `expired`, `too_many_attempts`, …).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<&'a str>,
    /// How many sessions the event ended, when several.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub count: Option<usize>,
}

impl<'a> AuditEvent<'a> {
    /// The realm, user and public id of `session`.
    pub fn of_session(session: &'a sessiond_core::session::SessionRecord) -> Self {
        Self {
            realm: Some(&session.realm),
            user: Some(&session.user),
            session_id: Some(session.id.as_str()),
            ..Self::default()
        }
    }
}

impl<'a> AuditEvent<'a> {
    /// The realm, user and public id of an API token.
    pub fn of_token(token: &'a sessiond_core::api_token::ApiTokenRecord) -> Self {
        Self {
            realm: Some(&token.realm),
            user: Some(&token.user),
            token_id: Some(token.id.as_str()),
            ..Self::default()
        }
    }
}

#[derive(Serialize)]
struct Line<'a> {
    time: String,
    event: AuditKind,
    #[serde(flatten)]
    detail: &'a AuditEvent<'a>,
}

/// Where audit lines go: a file, standard output, both, or nowhere.
#[derive(Debug)]
pub struct AuditLog {
    path: Option<PathBuf>,
    file: Mutex<Option<File>>,
    stdout: bool,
}

fn open_append(path: &Path) -> std::io::Result<File> {
    let mut options = OpenOptions::new();
    options.create(true).append(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(path)
}

impl AuditLog {
    /// No audit log.
    pub fn disabled() -> Self {
        Self { path: None, file: Mutex::new(None), stdout: false }
    }

    /// Also writes every event to standard output.
    #[must_use]
    pub fn with_stdout(mut self) -> Self {
        self.stdout = true;
        self
    }

    /// Appends to `path` (created with mode 0600).
    ///
    /// # Errors
    /// When the file cannot be opened for appending.
    pub fn to_file(path: &Path) -> std::io::Result<Self> {
        let file = open_append(path)?;
        Ok(Self { path: Some(path.to_owned()), file: Mutex::new(Some(file)), stdout: false })
    }

    /// Reopens the file (after log rotation moved it away).
    ///
    /// # Errors
    /// When the file cannot be opened; the old handle is kept then.
    pub fn reopen(&self) -> std::io::Result<()> {
        let Some(path) = &self.path else { return Ok(()) };
        let file = open_append(path)?;
        if let Ok(mut slot) = self.file.lock() {
            *slot = Some(file);
        }
        Ok(())
    }

    /// Writes one event. A failing audit file is reported in the diagnostic log and never fails
    /// the request.
    pub fn record(&self, now: Timestamp, event: AuditKind, detail: &AuditEvent<'_>) {
        let Ok(mut slot) = self.file.lock() else { return };
        if slot.is_none() && !self.stdout {
            return;
        }
        let line = Line { time: now.rfc3339(), event, detail };
        let Ok(mut bytes) = serde_json::to_vec(&line) else { return };
        bytes.push(b'\n');
        if let Some(file) = slot.as_mut() {
            if let Err(e) = file.write_all(&bytes) {
                warn!(error = %e, "writing the audit log failed");
            }
        }
        if self.stdout {
            // One write of the whole line, so lines from concurrent requests never interleave.
            if let Err(e) = std::io::stdout().lock().write_all(&bytes) {
                warn!(error = %e, "writing audit events to standard output failed");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_are_json_lines_without_empty_fields() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.jsonl");
        let log = AuditLog::to_file(&path).unwrap();
        let t = Timestamp::from_unix(0);
        log.record(
            t,
            AuditKind::LoginFailed,
            &AuditEvent { user: Some("alice"), reason: Some("invalid_credentials"), ..Default::default() },
        );
        log.record(t, AuditKind::Logout, &AuditEvent { session_id: Some("abc"), ..Default::default() });
        let text = std::fs::read_to_string(&path).unwrap();
        let lines: Vec<serde_json::Value> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
        assert_eq!(
            lines[0],
            serde_json::json!({"time": "1970-01-01T00:00:00Z", "event": "login_failed", "user": "alice", "reason": "invalid_credentials"})
        );
        assert_eq!(lines[1]["event"], "logout");
        assert!(lines[1].get("user").is_none());
    }

    #[test]
    fn reopen_follows_a_rotated_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.jsonl");
        let log = AuditLog::to_file(&path).unwrap();
        std::fs::rename(&path, dir.path().join("audit.jsonl.1")).unwrap();
        log.reopen().unwrap();
        log.record(Timestamp::from_unix(0), AuditKind::Expired, &AuditEvent::default());
        assert_eq!(std::fs::read_to_string(&path).unwrap().lines().count(), 1);
    }
}
