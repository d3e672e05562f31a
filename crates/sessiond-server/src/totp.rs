//! Users' TOTP second factor at rest: enrollment, confirmation, checks with replay refusal,
//! removal.
//!
//! A user's secret lives in the store's key-value space ([`EntryKind::Totp`]) under the user's
//! name, sealed with a key derived from the server secret and bound to that name (a secret
//! copied to another user's entry does not open). Beside it is the counter of the last code
//! accepted: a code is accepted once, and never after a newer one, because every check that
//! passes moves the counter forward by compare-and-swap, so two logins racing with one code
//! cannot both pass. An enrollment waits under `<user>\npending` for ten minutes until a code
//! confirms it; only then does the login journey ask for codes, and a confirmed secret is
//! replaced only by a new confirmed enrollment.
//!
//! TOTP is per user, not per realm: the users file is shared by every realm.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use sessiond_core::keys::Sealer;
use sessiond_core::time::Timestamp;
use sessiond_core::totp::{self, TotpError, TotpSecret};
use sessiond_store::{EntryKind, Store, StoreError};
use std::time::Duration;

/// How long an enrollment waits for its confirming code.
pub const ENROLLMENT_TIMEOUT: Duration = Duration::from_secs(600);
/// Attempts at moving the counter while other checks keep changing it.
const SWAP_ATTEMPTS: usize = 4;

/// The stored form of a user's TOTP.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct TotpRecord {
    /// The secret, sealed (unpadded base64url).
    secret: String,
    /// When it was confirmed (Unix seconds); `None` while pending.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    confirmed_at: Option<i64>,
    /// The counter of the last code accepted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    last_used: Option<u64>,
}

/// Why a code did not pass.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TotpCheckError {
    /// The user has no confirmed TOTP (or no pending enrollment, when confirming).
    #[error("no TOTP enrolled")]
    NotEnrolled,
    /// Not six digits, wrong, or outside the ±30 s window.
    #[error("wrong code")]
    Invalid,
    /// A code already used (or older than one used).
    #[error("code already used")]
    Replayed,
    /// The store failed, or holds a value that does not open.
    #[error(transparent)]
    Store(#[from] StoreError),
}

fn pending_key(user: &str) -> String {
    format!("{user}\npending")
}

fn aad(user: &str) -> Vec<u8> {
    let mut aad = b"sessiond totp\0".to_vec();
    aad.extend_from_slice(user.as_bytes());
    aad
}

fn corrupt(reason: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt { what: "totp secret", reason: reason.to_string() }
}

fn seal(sealer: &Sealer, user: &str, secret: &TotpSecret) -> String {
    URL_SAFE_NO_PAD.encode(sealer.seal(&aad(user), secret.as_bytes()))
}

fn open(sealer: &Sealer, user: &str, record: &TotpRecord) -> Result<TotpSecret, StoreError> {
    let sealed = URL_SAFE_NO_PAD.decode(&record.secret).map_err(corrupt)?;
    let bytes = sealer.open(&aad(user), &sealed).map_err(corrupt)?;
    TotpSecret::from_bytes(&bytes).map_err(corrupt)
}

/// Whether the record's secret was sealed under another key than the current one.
fn sealed_under_previous(sealer: &Sealer, record: &TotpRecord) -> bool {
    let sealed = URL_SAFE_NO_PAD.decode(&record.secret).unwrap_or_default();
    sealed.get(1..1 + sessiond_core::keys::KEY_ID_LEN) != Some(sealer.current_key_id().as_slice())
}

fn decode(value: &[u8]) -> Result<TotpRecord, StoreError> {
    serde_json::from_slice(value).map_err(corrupt)
}

fn encode(record: &TotpRecord) -> Vec<u8> {
    serde_json::to_vec(record).unwrap_or_default()
}

/// Whether `user` has a confirmed TOTP.
///
/// # Errors
/// Store errors.
pub async fn is_enrolled(store: &impl Store, user: &str, now: Timestamp) -> Result<bool, StoreError> {
    Ok(store.entry(EntryKind::Totp, user, now).await?.is_some())
}

/// Starts an enrollment for `user`: a new secret, kept pending until [`confirm`] sees a code of
/// it. A confirmed TOTP stays in force meanwhile. Answers the secret, to show to the user.
///
/// # Errors
/// Store errors.
pub async fn begin_enrollment(
    store: &impl Store,
    sealer: &Sealer,
    user: &str,
    now: Timestamp,
) -> Result<TotpSecret, StoreError> {
    let secret = TotpSecret::generate();
    let record = TotpRecord { secret: seal(sealer, user, &secret), confirmed_at: None, last_used: None };
    store.put_entry(EntryKind::Totp, &pending_key(user), &encode(&record), Some(now + ENROLLMENT_TIMEOUT), now).await?;
    Ok(secret)
}

/// Confirms the pending enrollment of `user` with a code of its secret; from then on the
/// user's logins ask for a code. The code counts as used.
///
/// # Errors
/// [`TotpCheckError::NotEnrolled`] without a pending enrollment (none, or older than ten
/// minutes), [`TotpCheckError::Invalid`] for a wrong code, store errors.
pub async fn confirm(
    store: &impl Store,
    sealer: &Sealer,
    user: &str,
    code: &str,
    now: Timestamp,
) -> Result<(), TotpCheckError> {
    let key = pending_key(user);
    let entry = store.entry(EntryKind::Totp, &key, now).await?.ok_or(TotpCheckError::NotEnrolled)?;
    let pending = decode(&entry.value)?;
    let secret = open(sealer, user, &pending)?;
    let counter = totp::verify(&secret, code, now, None).map_err(|_| TotpCheckError::Invalid)?;
    // Taking the pending entry away first means one confirmation wins, whatever races it.
    if !store.swap_entry(EntryKind::Totp, &key, Some(&entry.value), None, now).await? {
        return Err(TotpCheckError::NotEnrolled);
    }
    let record = TotpRecord { confirmed_at: Some(now.unix()), last_used: Some(counter), ..pending };
    store.put_entry(EntryKind::Totp, user, &encode(&record), None, now).await?;
    Ok(())
}

/// Checks a login code of `user` and, when it passes, records it as used.
///
/// # Errors
/// [`TotpCheckError`]: not enrolled, wrong, replayed, store errors (a value that does not open is
/// [`StoreError::Corrupt`]: refused, never passed).
pub async fn check(
    store: &impl Store,
    sealer: &Sealer,
    user: &str,
    code: &str,
    now: Timestamp,
) -> Result<(), TotpCheckError> {
    for _ in 0..SWAP_ATTEMPTS {
        let entry = store.entry(EntryKind::Totp, user, now).await?.ok_or(TotpCheckError::NotEnrolled)?;
        let record = decode(&entry.value)?;
        let secret = open(sealer, user, &record)?;
        let counter = match totp::verify(&secret, code, now, record.last_used) {
            Ok(counter) => counter,
            Err(TotpError::Replayed) => return Err(TotpCheckError::Replayed),
            Err(_) => return Err(TotpCheckError::Invalid),
        };
        // A secret sealed under `secret_previous` is sealed again under the current secret, so
        // that removing `secret_previous` later does not lock its user out.
        let secret_field =
            if sealed_under_previous(sealer, &record) { seal(sealer, user, &secret) } else { record.secret.clone() };
        let next = TotpRecord { secret: secret_field, last_used: Some(counter), ..record };
        if store.swap_entry(EntryKind::Totp, user, Some(&entry.value), Some((&encode(&next), None)), now).await? {
            return Ok(());
        }
        // Another check moved the counter meanwhile: read it again, so the same code cannot
        // pass twice.
    }
    Err(TotpCheckError::Store(StoreError::Conflict))
}

/// Removes the TOTP of `user` (and any pending enrollment). Answers whether there was one.
///
/// # Errors
/// Store errors.
pub async fn remove(store: &impl Store, user: &str) -> Result<bool, StoreError> {
    let pending = store.delete_entry(EntryKind::Totp, &pending_key(user)).await?;
    let confirmed = store.delete_entry(EntryKind::Totp, user).await?;
    Ok(confirmed || pending)
}

#[cfg(test)]
mod tests {
    use super::*;
    use sessiond_store::MemoryStore;

    const T0: Timestamp = Timestamp::from_unix(1_800_000_000);

    fn sealer() -> Sealer {
        Sealer::new("sessiond totp secret v1", b"a server secret of thirty-two bytes!!", None)
    }

    fn code(secret: &TotpSecret, at: Timestamp) -> String {
        totp::code_at(secret, totp::counter_at(at))
    }

    #[tokio::test]
    async fn enrollment_waits_for_a_code_then_codes_pass_once() {
        let (store, sealer) = (MemoryStore::default(), sealer());
        let secret = begin_enrollment(&store, &sealer, "alice", T0).await.unwrap();
        assert!(!is_enrolled(&store, "alice", T0).await.unwrap(), "pending until confirmed");
        assert!(matches!(
            check(&store, &sealer, "alice", &code(&secret, T0), T0).await,
            Err(TotpCheckError::NotEnrolled)
        ));
        let far = totp::code_at(&secret, totp::counter_at(T0) + 5);
        assert!(matches!(confirm(&store, &sealer, "alice", &far, T0).await, Err(TotpCheckError::Invalid)));
        confirm(&store, &sealer, "alice", &code(&secret, T0), T0).await.unwrap();
        assert!(is_enrolled(&store, "alice", T0).await.unwrap());

        // The confirming code counts as used; the next step's code passes once.
        assert!(matches!(check(&store, &sealer, "alice", &code(&secret, T0), T0).await, Err(TotpCheckError::Replayed)));
        let later = T0 + Duration::from_secs(30);
        check(&store, &sealer, "alice", &code(&secret, later), later).await.unwrap();
        assert!(matches!(
            check(&store, &sealer, "alice", &code(&secret, later), later).await,
            Err(TotpCheckError::Replayed)
        ));
        assert!(matches!(check(&store, &sealer, "alice", "12345", later).await, Err(TotpCheckError::Invalid)));
    }

    #[tokio::test]
    async fn an_enrollment_expires_and_a_secret_does_not_open_for_another_user() {
        let (store, sealer) = (MemoryStore::default(), sealer());
        let secret = begin_enrollment(&store, &sealer, "alice", T0).await.unwrap();
        let late = T0 + ENROLLMENT_TIMEOUT;
        assert!(matches!(
            confirm(&store, &sealer, "alice", &code(&secret, late), late).await,
            Err(TotpCheckError::NotEnrolled)
        ));

        let secret = begin_enrollment(&store, &sealer, "alice", T0).await.unwrap();
        confirm(&store, &sealer, "alice", &code(&secret, T0), T0).await.unwrap();
        let stolen = store.entry(EntryKind::Totp, "alice", T0).await.unwrap().unwrap();
        store.put_entry(EntryKind::Totp, "mallory", &stolen.value, None, T0).await.unwrap();
        let later = T0 + Duration::from_secs(60);
        assert!(matches!(
            check(&store, &sealer, "mallory", &code(&secret, later), later).await,
            Err(TotpCheckError::Store(StoreError::Corrupt { .. }))
        ));
    }

    #[tokio::test]
    async fn concurrent_checks_of_one_code_pass_once() {
        let (store, sealer) = (MemoryStore::default(), sealer());
        let secret = begin_enrollment(&store, &sealer, "alice", T0).await.unwrap();
        confirm(&store, &sealer, "alice", &code(&secret, T0), T0).await.unwrap();
        let at = T0 + Duration::from_secs(90);
        let c = code(&secret, at);
        let mut tasks = tokio::task::JoinSet::new();
        for _ in 0..8 {
            let (store, sealer, c) = (store.clone(), sealer.clone(), c.clone());
            tasks.spawn(async move { check(&store, &sealer, "alice", &c, at).await.is_ok() });
        }
        let passed = tasks.join_all().await.into_iter().filter(|ok| *ok).count();
        assert_eq!(passed, 1);
    }

    #[tokio::test]
    async fn a_secret_sealed_under_the_previous_secret_is_sealed_again_at_its_next_code() {
        let store = MemoryStore::default();
        let old = sealer();
        let secret = begin_enrollment(&store, &old, "alice", T0).await.unwrap();
        confirm(&store, &old, "alice", &code(&secret, T0), T0).await.unwrap();
        let rotated = Sealer::new(
            "sessiond totp secret v1",
            b"the next server secret, thirty-two bytes",
            Some(b"a server secret of thirty-two bytes!!"),
        );
        let later = T0 + Duration::from_secs(30);
        check(&store, &rotated, "alice", &code(&secret, later), later).await.unwrap();
        // Once the old secret is gone, the code still passes: the secret moved to the new key.
        let only_new = Sealer::new("sessiond totp secret v1", b"the next server secret, thirty-two bytes", None);
        let latest = later + Duration::from_secs(30);
        check(&store, &only_new, "alice", &code(&secret, latest), latest).await.unwrap();
    }

    #[tokio::test]
    async fn removing_ends_codes_and_pending_enrollments() {
        let (store, sealer) = (MemoryStore::default(), sealer());
        let secret = begin_enrollment(&store, &sealer, "alice", T0).await.unwrap();
        confirm(&store, &sealer, "alice", &code(&secret, T0), T0).await.unwrap();
        begin_enrollment(&store, &sealer, "alice", T0).await.unwrap();
        assert!(remove(&store, "alice").await.unwrap());
        assert!(!is_enrolled(&store, "alice", T0).await.unwrap());
        assert!(!remove(&store, "alice").await.unwrap());
    }
}
