//! The users file: who may log in, with which password, in which groups.
//!
//! Authelia's layout (`users: {name: {display_name, password, email, groups, disabled}}`), with
//! argon2id PHC strings as passwords. The file is re-read when its modification time changes, and
//! the users who became disabled or disappeared are reported so their sessions can be ended.

use arc_swap::ArcSwap;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use rand::rngs::OsRng;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

/// Argon2id cost used for new password hashes: 64 MiB, 3 passes, 4 lanes (as Authelia).
pub fn default_params() -> Params {
    Params::new(65_536, 3, 4, None).unwrap_or_default()
}

/// Hashes `password` into an argon2id PHC string with the given cost.
///
/// # Errors
/// When the parameters are invalid.
pub fn hash_password_with(password: &str, params: Params) -> Result<String, argon2::password_hash::Error> {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
}

/// Hashes `password` into an argon2id PHC string with [`default_params`].
///
/// # Errors
/// Never in practice; the error is argon2's.
pub fn hash_password(password: &str) -> Result<String, argon2::password_hash::Error> {
    hash_password_with(password, default_params())
}

/// Why the users file could not be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum UsersError {
    /// The file could not be read.
    #[error("reading users file {path}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The file is not valid YAML of the expected layout.
    #[error("users file {path}: {reason}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
}

/// One entry of the users file, as written.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct UserEntry {
    /// Human-readable name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    /// argon2id PHC string.
    pub password: String,
    /// Email address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// Groups.
    #[serde(default)]
    pub groups: Vec<String>,
    /// A disabled user cannot log in and loses every session.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub disabled: bool,
}

/// The users file as a whole.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct UsersFile {
    /// Users by name.
    #[serde(default)]
    pub users: BTreeMap<String, UserEntry>,
}

impl UsersFile {
    /// Reads and checks a users file: YAML layout and every password a valid PHC string.
    ///
    /// # Errors
    /// [`UsersError`] naming the file and, for a bad entry, the user.
    pub fn read(path: &Path) -> Result<Self, UsersError> {
        let text =
            std::fs::read_to_string(path).map_err(|source| UsersError::Read { path: path.to_owned(), source })?;
        Self::parse(&text).map_err(|reason| UsersError::Invalid { path: path.to_owned(), reason })
    }

    fn parse(text: &str) -> Result<Self, String> {
        let file: UsersFile = if text.trim().is_empty() {
            UsersFile::default()
        } else {
            serde_yaml_ng::from_str(text).map_err(|e| e.to_string())?
        };
        for (name, entry) in &file.users {
            if name.is_empty() || name.chars().any(char::is_control) {
                return Err(format!("invalid user name {name:?}"));
            }
            // `provider:name` is how users of other login providers are named.
            if name.contains(':') {
                return Err(format!("invalid user name {name:?}: ':' is kept for users of other login providers"));
            }
            PasswordHash::new(&entry.password)
                .map_err(|e| format!("users.{name}.password: not a PHC password hash ({e})"))?;
        }
        Ok(file)
    }

    /// Writes the file atomically (temporary file, then rename), mode 0600.
    ///
    /// # Errors
    /// When the file cannot be written.
    pub fn write(&self, path: &Path) -> std::io::Result<()> {
        let text = serde_yaml_ng::to_string(self).map_err(std::io::Error::other)?;
        let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
        std::fs::create_dir_all(dir)?;
        let tmp = dir.join(format!(".{}.tmp", path.file_name().and_then(|n| n.to_str()).unwrap_or("users.yml")));
        {
            use std::io::Write as _;
            let mut options = std::fs::OpenOptions::new();
            options.write(true).create(true).truncate(true);
            #[cfg(unix)]
            std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
            let mut f = options.open(&tmp)?;
            f.write_all(b"# sessiond users file. Passwords are argon2id hashes: `sessiond hash-password`.\n")?;
            f.write_all(text.as_bytes())?;
            f.sync_all()?;
        }
        std::fs::rename(&tmp, path)
    }
}

/// What a user looks like to the rest of the server (never the password hash).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct User {
    /// Login name.
    pub name: String,
    /// Human-readable name.
    pub display_name: Option<String>,
    /// Email address.
    pub email: Option<String>,
    /// Groups.
    pub groups: Vec<String>,
    /// Disabled users cannot log in.
    pub disabled: bool,
}

/// The loaded users, ready for password checks.
#[derive(Debug, Default)]
pub struct UsersDb {
    users: BTreeMap<String, UserEntry>,
}

impl UsersDb {
    /// The user named `name`, enabled or not.
    pub fn get(&self, name: &str) -> Option<User> {
        self.users.get(name).map(|e| User {
            name: name.to_owned(),
            display_name: e.display_name.clone(),
            email: e.email.clone(),
            groups: e.groups.clone(),
            disabled: e.disabled,
        })
    }

    /// Whether `name` exists and is not disabled.
    pub fn is_active(&self, name: &str) -> bool {
        self.users.get(name).is_some_and(|e| !e.disabled)
    }

    fn names_no_longer_active(&self, newer: &UsersDb) -> Vec<String> {
        self.users
            .iter()
            .filter(|(name, e)| !e.disabled && !newer.is_active(name))
            .map(|(name, _)| name.clone())
            .collect()
    }
}

/// The users file, kept loaded and re-read when it changes.
pub struct Users {
    path: PathBuf,
    current: ArcSwap<UsersDb>,
    modified: Mutex<Option<FileStamp>>,
    /// Verified against when the user is unknown, so unknown and known users cost the same.
    decoy_hash: String,
}

/// What identifies a version of the users file without reading it: modification time, size and
/// inode, so an edit within the file system's timestamp granularity is still noticed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct FileStamp {
    modified: Option<SystemTime>,
    len: u64,
    inode: u64,
}

fn stamp(path: &Path) -> Option<FileStamp> {
    let meta = std::fs::metadata(path).ok()?;
    #[cfg(unix)]
    let inode = std::os::unix::fs::MetadataExt::ino(&meta);
    #[cfg(not(unix))]
    let inode = 0;
    Some(FileStamp { modified: meta.modified().ok(), len: meta.len(), inode })
}

/// The outcome of checking a password.
#[derive(Debug)]
pub enum PasswordCheck {
    /// Right password, enabled user.
    Valid(User),
    /// Wrong password, unknown user or disabled user (indistinguishable to the caller).
    Invalid,
}

impl Users {
    /// Loads the users file at `path`.
    ///
    /// # Errors
    /// [`UsersError`] when the file is missing or invalid.
    pub fn load(path: PathBuf) -> Result<Self, UsersError> {
        let file = UsersFile::read(&path)?;
        let modified = stamp(&path);
        // The decoy uses the strongest cost in the file so an unknown name never answers faster.
        let params = file
            .users
            .values()
            .filter_map(|e| PasswordHash::new(&e.password).ok().and_then(|h| Params::try_from(&h).ok()))
            .max_by_key(|p| (p.m_cost(), p.t_cost()))
            .unwrap_or_else(default_params);
        let decoy_hash = hash_password_with("decoy", params).map_err(|e| UsersError::Invalid {
            path: path.clone(),
            reason: format!("cannot prepare password checks: {e}"),
        })?;
        Ok(Self {
            path,
            current: ArcSwap::from_pointee(UsersDb { users: file.users }),
            modified: Mutex::new(modified),
            decoy_hash,
        })
    }

    /// The users as loaded now.
    pub fn snapshot(&self) -> Arc<UsersDb> {
        self.current.load_full()
    }

    /// The file these users come from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Re-reads the file if its modification time changed. Returns the names of users who were
    /// active and no longer are (disabled or removed). An invalid new file leaves the old one in
    /// force and is reported as an error.
    ///
    /// # Errors
    /// [`UsersError`] when the changed file cannot be used.
    pub fn reload_if_changed(&self) -> Result<Vec<String>, UsersError> {
        let modified = stamp(&self.path);
        {
            let Ok(mut seen) = self.modified.lock() else { return Ok(Vec::new()) };
            if *seen == modified {
                return Ok(Vec::new());
            }
            *seen = modified;
        }
        let file = UsersFile::read(&self.path)?;
        let newer = UsersDb { users: file.users };
        let gone = self.current.load().names_no_longer_active(&newer);
        self.current.store(Arc::new(newer));
        Ok(gone)
    }

    /// Checks a password. Blocking and slow by design: call it from a blocking thread.
    pub fn check_password(&self, name: &str, password: &str) -> PasswordCheck {
        let db = self.snapshot();
        let entry = db.users.get(name);
        let phc = entry.map_or(self.decoy_hash.as_str(), |e| e.password.as_str());
        let matches = PasswordHash::new(phc)
            .map(|hash| Argon2::default().verify_password(password.as_bytes(), &hash).is_ok())
            .unwrap_or(false);
        match (entry, db.get(name)) {
            (Some(e), Some(user)) if matches && !e.disabled => PasswordCheck::Valid(user),
            _ => PasswordCheck::Invalid,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cheap(password: &str) -> String {
        hash_password_with(password, Params::new(1024, 1, 1, None).unwrap()).unwrap()
    }

    fn write_users(dir: &Path, entries: &[(&str, &str, bool)]) -> PathBuf {
        let path = dir.join("users.yml");
        let mut file = UsersFile::default();
        for (name, pw, disabled) in entries {
            file.users.insert(
                (*name).to_owned(),
                UserEntry {
                    display_name: None,
                    password: cheap(pw),
                    email: None,
                    groups: vec!["dev".into()],
                    disabled: *disabled,
                },
            );
        }
        file.write(&path).unwrap();
        path
    }

    #[test]
    fn right_password_passes_wrong_unknown_and_disabled_fail() {
        let dir = tempfile::tempdir().unwrap();
        let users = Users::load(write_users(dir.path(), &[("alice", "pw-a", false), ("bob", "pw-b", true)])).unwrap();
        assert!(matches!(users.check_password("alice", "pw-a"), PasswordCheck::Valid(u) if u.name == "alice"));
        assert!(matches!(users.check_password("alice", "nope"), PasswordCheck::Invalid));
        assert!(matches!(users.check_password("carol", "pw-a"), PasswordCheck::Invalid));
        assert!(matches!(users.check_password("bob", "pw-b"), PasswordCheck::Invalid));
    }

    #[test]
    fn invalid_files_are_refused_with_the_reason() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("users.yml");
        std::fs::write(&path, "users:\n  alice:\n    password: plain-text\n").unwrap();
        let err = Users::load(path.clone()).err().unwrap().to_string();
        assert!(err.contains("users.alice.password"), "{err}");
        std::fs::write(&path, "users:\n  alice:\n    pasword: x\n").unwrap();
        assert!(Users::load(path).is_err());
    }

    #[test]
    fn reload_reports_users_disabled_or_removed_and_keeps_old_file_when_invalid() {
        let dir = tempfile::tempdir().unwrap();
        let path = write_users(dir.path(), &[("alice", "a", false), ("bob", "b", false), ("carol", "c", false)]);
        let users = Users::load(path.clone()).unwrap();
        // Same second as the first write on coarse file systems: force a different mtime.
        *users.modified.lock().unwrap() = None;
        write_users(dir.path(), &[("alice", "a", false), ("bob", "b", true)]);
        let mut gone = users.reload_if_changed().unwrap();
        gone.sort();
        assert_eq!(gone, vec!["bob".to_owned(), "carol".to_owned()]);
        assert!(users.snapshot().is_active("alice"));

        *users.modified.lock().unwrap() = None;
        std::fs::write(&path, "users: [not, a, map]").unwrap();
        assert!(users.reload_if_changed().is_err());
        assert!(users.snapshot().is_active("alice"), "old users stay in force");
    }
}
