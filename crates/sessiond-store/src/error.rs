//! The store's one error type.

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
    /// The write collides with an existing record (same token hash or id).
    #[error("a record with the same key already exists")]
    Conflict,
}
