//! Revocation of client-side sessions, kept in the store's key-value space.
//!
//! A client-side session lives in its cookie, so the server cannot delete it; it can only refuse
//! it. Entries of two kinds say what to refuse, and every verify of a client-side session reads
//! them (a store that does not answer refuses the session, never passes it):
//!
//! - [`EntryKind::RevokedSession`] at `<realm>\n<session id>`: one session ended (logout, "sign
//!   out" of one session, a new login over it). Kept until the session's absolute deadline, after
//!   which its cookie is dead anyway.
//! - [`EntryKind::NotBefore`] at `<realm>\n<user>`: every session of the user created at or
//!   before the instant ends ("sign out everywhere", an administrator's revoke, a user disabled
//!   or removed), except the one session named in it ("sign out everywhere else" keeps the
//!   caller's own). Kept until replaced: a later cut replaces it, moving the instant forward.
//!
//! Sessions created in the same second as a user's cut count as created before it: whole
//! seconds are all the session records hold, and ending one session too many is the safe
//! mistake.
//!
//! A cut of the whole realm, made when its cookie name changes, is not an entry: it is kept
//! with the realm's state and its cookie name, which every instance holds in memory (see
//! `realms.rs`), and [`is_revoked`] takes it from there.
//!
//! These functions take the store itself, so that the command line can revoke sessions with no
//! server running (see `sessiond sessions revoke`).

use serde::{Deserialize, Serialize};
use sessiond_core::client_session::ClientSession;
use sessiond_core::time::Timestamp;
use sessiond_core::token::SessionId;
use sessiond_store::{EntryKind, Store, StoreError};

/// Attempts at replacing a not-before entry while other writers keep changing it.
const SWAP_ATTEMPTS: usize = 8;

/// The key of one revoked session.
pub fn revoked_key(realm: &str, id: &SessionId) -> String {
    format!("{realm}\n{id}")
}

/// The key of a user's not-before instant.
pub fn not_before_key(realm: &str, user: &str) -> String {
    format!("{realm}\n{user}")
}

/// The value of a not-before entry.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NotBefore {
    /// Sessions created at or before this instant (Unix seconds) are refused...
    pub at: i64,
    /// ...except this one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub except: Option<SessionId>,
}

impl NotBefore {
    /// Whether this cut refuses `session`.
    pub fn refuses(&self, session: &ClientSession) -> bool {
        session.created_at.unix() <= self.at && self.except.as_ref() != Some(&session.id)
    }

    /// Reads a stored cut.
    ///
    /// # Errors
    /// [`StoreError::Corrupt`] when the value is not a cut.
    pub fn decode(value: &[u8]) -> Result<Self, StoreError> {
        serde_json::from_slice(value)
            .map_err(|e| StoreError::Corrupt { what: "client session not-before", reason: e.to_string() })
    }

    fn encode(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// The cut that keeps both `self` (already in force) and a new one at `at` sparing `except`.
    /// `except` is a session alive until now, so it passed `self`; when the new cut comes first
    /// (another instance's clock is ahead), the session `self` spares survives only if it is
    /// the one spared now too.
    fn merge(&self, at: i64, except: Option<&SessionId>) -> Self {
        if at >= self.at {
            Self { at, except: except.cloned() }
        } else {
            let keep = self.except.as_ref().filter(|e| Some(*e) == except).cloned();
            Self { at: self.at, except: keep }
        }
    }
}

/// Refuses the session `id` of `realm` from now on, until `until` (its absolute deadline).
///
/// # Errors
/// Store errors; nothing was revoked then.
pub async fn revoke_session(
    store: &impl Store,
    realm: &str,
    id: &SessionId,
    until: Timestamp,
    now: Timestamp,
) -> Result<(), StoreError> {
    // A deadline already past: the cookie is dead anyway, but a second of margin costs nothing.
    let until = until.max(now + std::time::Duration::from_secs(1));
    store.put_entry(EntryKind::RevokedSession, &revoked_key(realm, id), b"", Some(until), now).await
}

/// Refuses every session of `user` in `realm` created until `now`, except `except`.
///
/// # Errors
/// Store errors (a stored cut that does not decode is [`StoreError::Corrupt`]); nothing was
/// changed then.
pub async fn cut_user_sessions(
    store: &impl Store,
    realm: &str,
    user: &str,
    except: Option<&SessionId>,
    now: Timestamp,
) -> Result<(), StoreError> {
    cut(store, &not_before_key(realm, user), except, now).await
}

/// Moves the not-before instant at `key` forward to `now`, by compare-and-swap.
async fn cut(store: &impl Store, key: &str, except: Option<&SessionId>, now: Timestamp) -> Result<(), StoreError> {
    for _ in 0..SWAP_ATTEMPTS {
        let current = store.entry(EntryKind::NotBefore, key, now).await?;
        let next = match &current {
            Some(entry) => NotBefore::decode(&entry.value)?.merge(now.unix(), except),
            None => NotBefore { at: now.unix(), except: except.cloned() },
        };
        let expected = current.as_ref().map(|e| e.value.as_slice());
        if store.swap_entry(EntryKind::NotBefore, key, expected, Some((&next.encode(), None)), now).await? {
            return Ok(());
        }
    }
    Err(StoreError::Conflict)
}

/// Whether `session` has been revoked: by its id, by a cut of its user, or by its realm's cut
/// `realm_not_before` ([`crate::state::Realm::sessions_not_before`]).
///
/// # Errors
/// Store errors, and a stored cut that does not decode: the caller must refuse the session.
pub async fn is_revoked(
    store: &impl Store,
    session: &ClientSession,
    realm_not_before: Option<i64>,
    now: Timestamp,
) -> Result<bool, StoreError> {
    if realm_not_before.is_some_and(|at| session.created_at.unix() <= at) {
        return Ok(true);
    }
    let revoked_key = revoked_key(&session.realm, &session.id);
    let user_key = not_before_key(&session.realm, &session.user);
    let revoked = store.entry(EntryKind::RevokedSession, &revoked_key, now);
    let user_cut = store.entry(EntryKind::NotBefore, &user_key, now);
    let (revoked, user_cut) = tokio::try_join!(revoked, user_cut)?;
    if revoked.is_some() {
        return Ok(true);
    }
    match user_cut {
        Some(entry) => Ok(NotBefore::decode(&entry.value)?.refuses(session)),
        None => Ok(false),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sessiond_store::MemoryStore;
    use std::collections::BTreeMap;
    use std::time::Duration;

    const NOW: Timestamp = Timestamp::from_unix(1_800_000_000);

    fn session(user: &str, created: Timestamp) -> ClientSession {
        ClientSession {
            id: SessionId::generate(),
            realm: "main".into(),
            user: user.into(),
            display_name: None,
            email: None,
            groups: vec![],
            amr: vec![],
            created_at: created,
            last_seen_at: created,
            absolute_deadline: created + Duration::from_secs(3600),
            remember_me: false,
            ip: None,
            user_agent: None,
            attributes: BTreeMap::new(),
        }
    }

    fn secs(n: u64) -> Duration {
        Duration::from_secs(n)
    }

    #[tokio::test]
    async fn a_revoked_id_is_refused_until_its_deadline() {
        let store = MemoryStore::default();
        let a = session("alice", NOW);
        let b = session("alice", NOW);
        revoke_session(&store, "main", &a.id, a.absolute_deadline, NOW).await.unwrap();
        assert!(is_revoked(&store, &a, None, NOW).await.unwrap());
        assert!(!is_revoked(&store, &b, None, NOW).await.unwrap());
        let elsewhere = ClientSession { realm: "other".into(), ..a.clone() };
        assert!(!is_revoked(&store, &elsewhere, None, NOW).await.unwrap(), "revocations are per realm");
        // The entry goes with the deadline: the cookie cannot pass the timeouts after it anyway.
        assert!(
            store
                .entry(EntryKind::RevokedSession, &revoked_key("main", &a.id), a.absolute_deadline)
                .await
                .unwrap()
                .is_none()
        );
    }

    #[tokio::test]
    async fn a_cut_refuses_sessions_up_to_its_instant_except_the_spared_one() {
        let store = MemoryStore::default();
        let old = session("alice", NOW - secs(60));
        let same_second = session("alice", NOW);
        let kept = session("alice", NOW - secs(30));
        let bob = session("bob", NOW - secs(60));
        cut_user_sessions(&store, "main", "alice", Some(&kept.id), NOW).await.unwrap();
        assert!(is_revoked(&store, &old, None, NOW).await.unwrap());
        assert!(is_revoked(&store, &same_second, None, NOW).await.unwrap());
        assert!(!is_revoked(&store, &kept, None, NOW).await.unwrap());
        assert!(!is_revoked(&store, &bob, None, NOW).await.unwrap());
        let later = session("alice", NOW + secs(1));
        assert!(!is_revoked(&store, &later, None, NOW + secs(1)).await.unwrap(), "new logins pass");

        // Signing out everywhere afterwards ends the spared session too.
        cut_user_sessions(&store, "main", "alice", None, NOW + secs(5)).await.unwrap();
        assert!(is_revoked(&store, &kept, None, NOW + secs(5)).await.unwrap());
        assert!(is_revoked(&store, &later, None, NOW + secs(5)).await.unwrap());
    }

    #[tokio::test]
    async fn a_cut_never_moves_back_and_never_spares_more() {
        let store = MemoryStore::default();
        let spared = session("alice", NOW - secs(60));
        let other = session("alice", NOW - secs(60));
        cut_user_sessions(&store, "main", "alice", Some(&spared.id), NOW).await.unwrap();
        // Another instance whose clock is 10 s behind cuts too, sparing another session.
        cut_user_sessions(&store, "main", "alice", Some(&other.id), NOW - secs(10)).await.unwrap();
        let entry = store.entry(EntryKind::NotBefore, &not_before_key("main", "alice"), NOW).await.unwrap().unwrap();
        assert_eq!(NotBefore::decode(&entry.value).unwrap(), NotBefore { at: NOW.unix(), except: None });
        assert!(is_revoked(&store, &spared, None, NOW).await.unwrap());
        assert!(is_revoked(&store, &other, None, NOW).await.unwrap());
    }

    #[tokio::test]
    async fn a_realm_cut_refuses_every_session_created_up_to_it_without_reading_the_store() {
        let store = MemoryStore::default();
        let cut = Some((NOW - secs(1)).unix());
        let alice = session("alice", NOW - secs(60));
        let before = session("bob", NOW - secs(1));
        let bob = session("bob", NOW);
        assert!(is_revoked(&store, &alice, cut, NOW).await.unwrap());
        assert!(is_revoked(&store, &before, cut, NOW).await.unwrap(), "the cut's own second is refused");
        assert!(!is_revoked(&store, &bob, cut, NOW).await.unwrap(), "logins after the cut pass");
        assert!(!is_revoked(&store, &alice, None, NOW).await.unwrap(), "no cut, nothing refused");
        // A cut refuses even when the store could not have answered: it is the realm's own.
        let corrupt = MemoryStore::default();
        let key = not_before_key("main", "alice");
        corrupt.put_entry(EntryKind::NotBefore, &key, b"not json", None, NOW).await.unwrap();
        assert!(is_revoked(&corrupt, &alice, cut, NOW).await.unwrap());
    }

    #[tokio::test]
    async fn a_corrupt_cut_fails_closed() {
        let store = MemoryStore::default();
        let s = session("alice", NOW);
        store.put_entry(EntryKind::NotBefore, &not_before_key("main", "alice"), b"garbage", None, NOW).await.unwrap();
        assert!(matches!(is_revoked(&store, &s, None, NOW).await, Err(StoreError::Corrupt { .. })));
        assert!(cut_user_sessions(&store, "main", "alice", None, NOW).await.is_err());
    }

    #[test]
    fn cuts_are_stored_as_small_json() {
        let id = SessionId::generate();
        let cut = NotBefore { at: 5, except: Some(id.clone()) };
        assert_eq!(String::from_utf8(cut.encode()).unwrap(), format!(r#"{{"at":5,"except":"{id}"}}"#));
        assert_eq!(NotBefore::decode(br#"{"at":5}"#).unwrap(), NotBefore { at: 5, except: None });
        assert!(NotBefore::decode(br#"{"at":5,"extra":1}"#).is_err());
    }
}
