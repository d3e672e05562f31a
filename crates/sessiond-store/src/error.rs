//! The store's one error type.

use std::path::PathBuf;

/// What can go wrong in a store. "Not found" is not an error: it is `Ok(None)`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The backend could not be reached or failed to do the work.
    #[error("{backend} store unavailable")]
    Unavailable {
        /// Which backend (`embedded`, `memory`, `redis`).
        backend: &'static str,
        /// The cause.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// A stored value could not be read back.
    #[error("corrupt {what} in store: {reason}")]
    Corrupt {
        /// What was being read.
        what: &'static str,
        /// Why it could not be decoded.
        reason: String,
    },
    /// The store's settings cannot work (a malformed address, an unusable key prefix).
    #[error("invalid {setting}: {reason}")]
    InvalidSettings {
        /// The setting, as named in configuration (`url`, `sentinel.nodes`, `key_prefix`).
        setting: &'static str,
        /// What is wrong with it; never a password.
        reason: String,
    },
    /// The write collides with an existing record (same token hash or id).
    #[error("a record with the same key already exists")]
    Conflict,
    /// The database file is held by another handle, usually a running sessiond server.
    ///
    /// Only opening a store answers this; commands that work on the data directory directly
    /// should ask the user to stop the server or go through its API instead.
    #[error("database {} is in use by another process (is a sessiond server running?)", path.display())]
    Locked {
        /// The database file.
        path: PathBuf,
        /// The backend's report.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

impl StoreError {
    /// Whether the store could not be opened because another process holds it.
    pub fn is_locked(&self) -> bool {
        matches!(self, Self::Locked { .. })
    }
}
