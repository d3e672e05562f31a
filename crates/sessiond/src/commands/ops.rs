//! The administrative operations on sessions, in one place.
//!
//! `sessiond sessions …` runs them against a store it opened itself when no server holds the
//! store, and the control socket of a running server runs them on behalf of that same command
//! line otherwise. Both paths call [`execute`], so what a command does cannot depend on whether
//! the server happens to run.
//!
//! [`Op`] and [`Reply`] are also the wire form of the control socket (see `control.rs`), so their
//! serde names are part of that protocol.

use serde::{Deserialize, Serialize};
use sessiond_core::realm::{RealmPolicy, SessionLocation};
use sessiond_core::session::SessionRecord;
use sessiond_core::time::Timestamp;
use sessiond_core::token::SessionId;
use sessiond_server::revocation;
use sessiond_store::{SessionFilter, Store, StoreError};
use std::collections::BTreeSet;

/// One administrative request.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", deny_unknown_fields)]
pub(crate) enum Op {
    /// `{"op":"sessions.list","user":…,"realm":…}`: the live sessions, oldest first, optionally
    /// only those of one user and/or one realm.
    #[serde(rename = "sessions.list")]
    ListSessions {
        /// Only this user's sessions.
        #[serde(default)]
        user: Option<String>,
        /// Only this realm's sessions.
        #[serde(default)]
        realm: Option<String>,
    },
    /// `{"op":"sessions.revoke","id":…}`: ends one session by its public id.
    #[serde(rename = "sessions.revoke")]
    RevokeSession {
        /// Public id of the session.
        id: SessionId,
    },
    /// `{"op":"sessions.revoke_user","user":…,"realm":…}`: ends every session of a user, in one
    /// realm or (without `realm`) in every realm where the user has sessions.
    #[serde(rename = "sessions.revoke_user")]
    RevokeUser {
        /// The user whose sessions end.
        user: String,
        /// Only in this realm.
        #[serde(default)]
        realm: Option<String>,
    },
}

impl Op {
    /// The op's wire name, for logs.
    pub(crate) fn name(&self) -> &'static str {
        match self {
            Self::ListSessions { .. } => "sessions.list",
            Self::RevokeSession { .. } => "sessions.revoke",
            Self::RevokeUser { .. } => "sessions.revoke_user",
        }
    }
}

/// The successful outcome of an [`Op`]. Serialized as `{"sessions":[…]}` or `{"revoked":N}`,
/// which is also what `--json` prints.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub(crate) enum Reply {
    /// Answer to [`Op::ListSessions`].
    Sessions {
        /// The live sessions, oldest first.
        sessions: Vec<SessionView>,
    },
    /// Answer to [`Op::RevokeSession`] (always 1) and [`Op::RevokeUser`].
    Revoked {
        /// How many live sessions ended (client-side sessions are not counted: the store keeps
        /// no list of them).
        revoked: usize,
        /// The client-side realms (`location: client`) where every session of the user created
        /// until now is refused from then on; left out when none.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        client_realms: Vec<String>,
    },
}

/// A session as the administrative commands show it: DESIGN.md's `Session` without `current`.
/// Never holds the token or its hash. Times are RFC 3339 in UTC.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct SessionView {
    /// Public id.
    pub(crate) id: String,
    /// Realm.
    pub(crate) realm: String,
    /// User name.
    pub(crate) user: String,
    /// Human-readable name of the user at login.
    pub(crate) display_name: Option<String>,
    /// Email address of the user at login.
    pub(crate) email: Option<String>,
    /// Groups of the user at login.
    pub(crate) groups: Vec<String>,
    /// How the user authenticated (`pwd`, `otp`).
    pub(crate) amr: Vec<String>,
    /// Login time.
    pub(crate) created_at: String,
    /// Last recorded activity.
    pub(crate) last_seen_at: String,
    /// When the session ends unless a request uses it again.
    pub(crate) expires_at: String,
    /// Whether the user ticked "remember me".
    pub(crate) remember_me: bool,
    /// Client address at login.
    pub(crate) ip: Option<String>,
    /// Client user agent at login.
    pub(crate) user_agent: Option<String>,
}

impl From<SessionRecord> for SessionView {
    fn from(s: SessionRecord) -> Self {
        Self {
            id: s.id.to_string(),
            realm: s.realm,
            user: s.user,
            display_name: s.display_name,
            email: s.email,
            groups: s.groups,
            amr: s.amr,
            created_at: s.created_at.rfc3339(),
            last_seen_at: s.last_seen_at.rfc3339(),
            expires_at: s.expires_at.rfc3339(),
            remember_me: s.remember_me,
            ip: s.ip,
            user_agent: s.user_agent,
        }
    }
}

/// Why an [`Op`] failed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum OpError {
    /// No live session has this id.
    #[error("no session with id {0}")]
    NoSuchSession(SessionId),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Whether a stored session still counts at `now`. Sessions past their deadline may linger until
/// the server sweeps them; they are dead all the same, so lists hide them and revocations do not
/// count them.
fn is_live(record: &SessionRecord, now: Timestamp) -> bool {
    record.expires_at > now
}

/// Runs `op` against `store` at `now`, for the configured `realms`.
///
/// Client-side realms (`location: client`) keep no session records, so lists never show their
/// sessions. Revoking a user there records a cut in the store that refuses every session of the
/// user created until now; revoking an id that no stored session has refuses that id in every
/// client-side realm (the server cannot tell whether it exists), until the longest a session
/// of the realm can live.
///
/// # Errors
/// [`OpError::NoSuchSession`] when a revocation by id finds no live session with that id and no
/// realm keeps its sessions in cookies (a dead one that was still stored is deleted all the same);
/// [`OpError::Store`] when the store fails.
pub(crate) async fn execute<S: Store>(
    store: &S,
    op: Op,
    now: Timestamp,
    realms: &[RealmPolicy],
) -> Result<Reply, OpError> {
    let client_realms = || realms.iter().filter(|r| r.location == SessionLocation::Client);
    match op {
        Op::ListSessions { user, realm } => {
            let records = store.list_sessions(&SessionFilter { realm, user }).await?;
            let sessions = records.into_iter().filter(|r| is_live(r, now)).map(SessionView::from).collect();
            Ok(Reply::Sessions { sessions })
        }
        Op::RevokeSession { id } => {
            let Some(record) = store.session_by_id(&id).await? else {
                let mut revoked = Vec::new();
                for realm in client_realms() {
                    let until = now + realm.timeouts.longest_lifetime();
                    revocation::revoke_session(store, &realm.name, &id, until, now).await?;
                    revoked.push(realm.name.clone());
                }
                if revoked.is_empty() {
                    return Err(OpError::NoSuchSession(id));
                }
                return Ok(Reply::Revoked { revoked: 1, client_realms: revoked });
            };
            match store.delete_session(&record.token_hash).await? {
                Some(deleted) if is_live(&deleted, now) => Ok(Reply::Revoked { revoked: 1, client_realms: vec![] }),
                // Deleted meanwhile by someone else, or already dead.
                _ => Err(OpError::NoSuchSession(id)),
            }
        }
        Op::RevokeUser { user, realm } => {
            let mut cut = Vec::new();
            for client in client_realms().filter(|r| realm.as_ref().is_none_or(|only| *only == r.name)) {
                revocation::cut_user_sessions(store, &client.name, &user, None, now).await?;
                cut.push(client.name.clone());
            }
            let realms: BTreeSet<String> = match realm {
                Some(realm) => BTreeSet::from([realm]),
                // Every realm that holds a session of the user, including realms since removed
                // from the configuration: their sessions are the user's all the same.
                None => store
                    .list_sessions(&SessionFilter { realm: None, user: Some(user.clone()) })
                    .await?
                    .into_iter()
                    .map(|r| r.realm)
                    .collect(),
            };
            let mut revoked = 0;
            for realm in &realms {
                let deleted = store.delete_user_sessions(realm, &user, None).await?;
                revoked += deleted.iter().filter(|r| is_live(r, now)).count();
            }
            Ok(Reply::Revoked { revoked, client_realms: cut })
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use sessiond_core::token::SessionToken;
    use sessiond_store::MemoryStore;
    use std::collections::BTreeMap;
    use std::time::Duration;

    pub(crate) const NOW: Timestamp = Timestamp::from_unix(1_800_000_000);

    /// A session of `user` in `realm` created at [`NOW`] and ending `ttl` seconds later.
    pub(crate) fn record(realm: &str, user: &str, ttl: u64) -> SessionRecord {
        SessionRecord {
            id: SessionId::generate(),
            token_hash: SessionToken::generate().hash(),
            realm: realm.to_owned(),
            user: user.to_owned(),
            display_name: Some(format!("{user} display")),
            email: Some(format!("{user}@example.com")),
            groups: vec!["dev".to_owned()],
            amr: vec!["pwd".to_owned()],
            created_at: NOW,
            last_seen_at: NOW,
            absolute_deadline: NOW + Duration::from_secs(ttl),
            expires_at: NOW + Duration::from_secs(ttl),
            remember_me: false,
            ip: Some("192.0.2.7".to_owned()),
            user_agent: Some("curl/8".to_owned()),
            attributes: BTreeMap::new(),
        }
    }

    async fn store_with(records: &[&SessionRecord]) -> MemoryStore {
        let store = MemoryStore::default();
        for r in records {
            store.create_session(r).await.unwrap();
        }
        store
    }

    fn ids(reply: &Reply) -> Vec<String> {
        match reply {
            Reply::Sessions { sessions } => sessions.iter().map(|s| s.id.clone()).collect(),
            Reply::Revoked { .. } => panic!("expected a session list, got {reply:?}"),
        }
    }

    fn list(user: Option<&str>, realm: Option<&str>) -> Op {
        Op::ListSessions { user: user.map(str::to_owned), realm: realm.map(str::to_owned) }
    }

    #[tokio::test]
    async fn list_filters_by_user_and_realm() {
        let a = record("main", "alice", 600);
        let b = record("main", "bob", 600);
        let c = record("other", "alice", 600);
        let store = store_with(&[&a, &b, &c]).await;

        let all = ids(&execute(&store, list(None, None), NOW, &[]).await.unwrap());
        assert_eq!(all.len(), 3);
        let mut alice = ids(&execute(&store, list(Some("alice"), None), NOW, &[]).await.unwrap());
        alice.sort();
        let mut expected = vec![a.id.to_string(), c.id.to_string()];
        expected.sort();
        assert_eq!(alice, expected);
        assert_eq!(ids(&execute(&store, list(None, Some("other")), NOW, &[]).await.unwrap()), vec![c.id.to_string()]);
        assert_eq!(
            ids(&execute(&store, list(Some("alice"), Some("main")), NOW, &[]).await.unwrap()),
            vec![a.id.to_string()]
        );
        assert!(ids(&execute(&store, list(Some("nobody"), None), NOW, &[]).await.unwrap()).is_empty());
    }

    #[tokio::test]
    async fn list_hides_sessions_past_their_deadline() {
        let live = record("main", "alice", 600);
        let dead = record("main", "alice", 0);
        let store = store_with(&[&live, &dead]).await;
        let listed = ids(&execute(&store, list(None, None), NOW, &[]).await.unwrap());
        assert_eq!(listed, vec![live.id.to_string()]);
    }

    #[tokio::test]
    async fn listed_session_has_the_documented_fields_and_no_secret() {
        let a = record("main", "alice", 600);
        let store = store_with(&[&a]).await;
        let reply = execute(&store, list(None, None), NOW, &[]).await.unwrap();
        let json = serde_json::to_value(&reply).unwrap();
        let session = &json["sessions"][0];
        let mut keys: Vec<&str> = session.as_object().unwrap().keys().map(String::as_str).collect();
        keys.sort_unstable();
        assert_eq!(
            keys,
            [
                "amr",
                "created_at",
                "display_name",
                "email",
                "expires_at",
                "groups",
                "id",
                "ip",
                "last_seen_at",
                "realm",
                "remember_me",
                "user",
                "user_agent"
            ]
        );
        assert_eq!(session["id"], a.id.to_string());
        assert_eq!(session["created_at"], "2027-01-15T08:00:00Z");
        assert_eq!(session["expires_at"], "2027-01-15T08:10:00Z");
        let hex: String = a.token_hash.as_bytes().iter().map(|b| format!("{b:02x}")).collect();
        let text = json.to_string();
        assert!(!text.contains(&hex), "the token hash leaked: {text}");
        assert!(!text.contains("token"), "a token field leaked: {text}");
    }

    #[tokio::test]
    async fn revoke_by_id_ends_only_that_session() {
        let a = record("main", "alice", 600);
        let b = record("main", "alice", 600);
        let store = store_with(&[&a, &b]).await;
        let reply = execute(&store, Op::RevokeSession { id: a.id.clone() }, NOW, &[]).await.unwrap();
        assert_eq!(reply, Reply::Revoked { revoked: 1, client_realms: vec![] });
        assert!(store.session_by_id(&a.id).await.unwrap().is_none());
        assert!(store.session_by_id(&b.id).await.unwrap().is_some());
    }

    #[tokio::test]
    async fn revoke_unknown_id_is_not_found() {
        let store = MemoryStore::default();
        let id = SessionId::generate();
        let err = execute(&store, Op::RevokeSession { id: id.clone() }, NOW, &[]).await.unwrap_err();
        assert!(matches!(&err, OpError::NoSuchSession(got) if *got == id), "{err:?}");
        assert_eq!(err.to_string(), format!("no session with id {id}"));
    }

    #[tokio::test]
    async fn revoke_dead_session_is_not_found_but_deletes_it() {
        let dead = record("main", "alice", 0);
        let store = store_with(&[&dead]).await;
        let err = execute(&store, Op::RevokeSession { id: dead.id.clone() }, NOW, &[]).await.unwrap_err();
        assert!(matches!(err, OpError::NoSuchSession(_)));
        assert!(store.session_by_id(&dead.id).await.unwrap().is_none());
    }

    #[tokio::test]
    async fn revoke_user_without_realm_ends_the_users_sessions_in_every_realm() {
        let a = record("main", "alice", 600);
        let b = record("other", "alice", 600);
        let bob = record("main", "bob", 600);
        let store = store_with(&[&a, &b, &bob]).await;
        let op = Op::RevokeUser { user: "alice".to_owned(), realm: None };
        assert_eq!(execute(&store, op, NOW, &[]).await.unwrap(), Reply::Revoked { revoked: 2, client_realms: vec![] });
        let left = ids(&execute(&store, list(None, None), NOW, &[]).await.unwrap());
        assert_eq!(left, vec![bob.id.to_string()]);
    }

    #[tokio::test]
    async fn revoke_user_in_one_realm_leaves_other_realms_alone() {
        let a = record("main", "alice", 600);
        let b = record("other", "alice", 600);
        let store = store_with(&[&a, &b]).await;
        let op = Op::RevokeUser { user: "alice".to_owned(), realm: Some("main".to_owned()) };
        assert_eq!(execute(&store, op, NOW, &[]).await.unwrap(), Reply::Revoked { revoked: 1, client_realms: vec![] });
        assert!(store.session_by_id(&b.id).await.unwrap().is_some());
    }

    #[tokio::test]
    async fn revoke_user_counts_only_live_sessions() {
        let live = record("main", "alice", 600);
        let dead = record("main", "alice", 0);
        let store = store_with(&[&live, &dead]).await;
        let op = Op::RevokeUser { user: "alice".to_owned(), realm: None };
        assert_eq!(execute(&store, op, NOW, &[]).await.unwrap(), Reply::Revoked { revoked: 1, client_realms: vec![] });
        assert!(store.session_by_id(&dead.id).await.unwrap().is_none());
    }

    #[tokio::test]
    async fn revoke_user_without_sessions_revokes_none() {
        let store = MemoryStore::default();
        let op = Op::RevokeUser { user: "alice".to_owned(), realm: None };
        assert_eq!(execute(&store, op, NOW, &[]).await.unwrap(), Reply::Revoked { revoked: 0, client_realms: vec![] });
    }

    /// A realm named `name` that keeps its sessions in cookies, with the default timeouts.
    fn client_realm(name: &str) -> RealmPolicy {
        RealmPolicy {
            name: name.to_owned(),
            portal_url: "https://auth.example.com/".parse().unwrap(),
            cookie: sessiond_core::realm::CookieSettings {
                name: None,
                domain: None,
                same_site: sessiond_core::cookie::SameSite::Lax,
                secure: true,
                persistent: true,
                http_only: sessiond_core::realm::HttpOnlyMode::On,
            },
            timeouts: sessiond_core::timeout::Timeouts::default(),
            jwt: Default::default(),
            location: SessionLocation::Client,
        }
    }

    fn client_session(realm: &str, user: &str) -> sessiond_core::client_session::ClientSession {
        sessiond_core::client_session::ClientSession::from_record(&record(realm, user, 600))
    }

    #[tokio::test]
    async fn revoke_user_cuts_client_side_sessions_in_client_realms() {
        let server_side = record("main", "alice", 600);
        let store = store_with(&[&server_side]).await;
        let realms = [client_realm("shop"), client_realm("web")];
        let shop = client_session("shop", "alice");
        let bob = client_session("shop", "bob");
        let op = Op::RevokeUser { user: "alice".to_owned(), realm: None };
        let reply = execute(&store, op, NOW, &realms).await.unwrap();
        assert_eq!(reply, Reply::Revoked { revoked: 1, client_realms: vec!["shop".into(), "web".into()] });
        assert!(revocation::is_revoked(&store, &shop, NOW).await.unwrap());
        assert!(!revocation::is_revoked(&store, &bob, NOW).await.unwrap());
        assert_eq!(
            serde_json::to_string(&reply).unwrap(),
            r#"{"revoked":1,"client_realms":["shop","web"]}"#,
            "the JSON names the client-side realms"
        );

        // One realm only: the others are left alone.
        let store = MemoryStore::default();
        let op = Op::RevokeUser { user: "alice".to_owned(), realm: Some("web".to_owned()) };
        let reply = execute(&store, op, NOW, &realms).await.unwrap();
        assert_eq!(reply, Reply::Revoked { revoked: 0, client_realms: vec!["web".into()] });
        assert!(!revocation::is_revoked(&store, &shop, NOW).await.unwrap());
        assert!(revocation::is_revoked(&store, &client_session("web", "alice"), NOW).await.unwrap());
    }

    #[tokio::test]
    async fn revoke_by_id_refuses_an_unknown_id_in_every_client_realm() {
        let store = MemoryStore::default();
        let realms = [client_realm("shop")];
        let session = client_session("shop", "alice");
        let reply = execute(&store, Op::RevokeSession { id: session.id.clone() }, NOW, &realms).await.unwrap();
        assert_eq!(reply, Reply::Revoked { revoked: 1, client_realms: vec!["shop".into()] });
        assert!(revocation::is_revoked(&store, &session, NOW).await.unwrap());
        // Kept as long as a session of the realm can live (remember me: a month).
        let month = NOW + Duration::from_secs(30 * 86_400);
        assert!(revocation::is_revoked(&store, &session, month - Duration::from_secs(1)).await.unwrap());
        assert!(!revocation::is_revoked(&store, &session, month).await.unwrap());
    }

    #[test]
    fn reply_round_trips_through_json() {
        let sessions = Reply::Sessions { sessions: vec![SessionView::from(record("main", "alice", 60))] };
        let revoked = Reply::Revoked { revoked: 3, client_realms: vec![] };
        for reply in [sessions, revoked, Reply::Sessions { sessions: vec![] }] {
            let text = serde_json::to_string(&reply).unwrap();
            assert_eq!(serde_json::from_str::<Reply>(&text).unwrap(), reply, "{text}");
        }
        assert_eq!(
            serde_json::to_string(&Reply::Revoked { revoked: 3, client_realms: vec![] }).unwrap(),
            r#"{"revoked":3}"#
        );
    }
}
