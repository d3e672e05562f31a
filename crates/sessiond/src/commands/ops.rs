//! The administrative operations on sessions, API tokens, signing keys, realms and second
//! factors, in one place.
//!
//! `sessiond sessions …` runs them against a store it opened itself when no server holds the
//! store, and the control socket of a running server runs them on behalf of that same command
//! line otherwise. Both paths call [`execute`], so what a command does cannot depend on whether
//! the server happens to run.
//!
//! [`Op`] and [`Reply`] are also the wire form of the control socket (see `control.rs`), so their
//! serde names are part of that protocol.

use serde::{Deserialize, Serialize};
use sessiond_core::api_token::{ApiTokenId, ApiTokenRecord, parse_store_key, validate_name};
use sessiond_core::jwt::JwtSettings;
use sessiond_core::realm::{RealmPolicy, SessionLocation};
use sessiond_core::session::SessionRecord;
use sessiond_core::time::Timestamp;
use sessiond_core::token::SessionId;
use sessiond_server::api_tokens::{self, Inserted};
use sessiond_server::jwt::Signing;
use sessiond_server::realms::{CookieNameChange, change_cookie_name};
use sessiond_server::revocation;
use sessiond_server::totp;
use sessiond_store::{SessionFilter, Store, StoreError};
use std::collections::BTreeSet;
use std::time::Duration;

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
    /// `{"op":"tokens.create","token_hash":…,"record":{…}}`: stores a new API token. The command
    /// line makes the token and sends only its hash (hex SHA-256) with the record, so the token
    /// itself never crosses the socket.
    #[serde(rename = "tokens.create")]
    CreateToken {
        /// The store key of the token: its SHA-256 in lower-case hex.
        token_hash: String,
        /// The token's record.
        record: ApiTokenRecord,
    },
    /// `{"op":"tokens.list","user":…,"realm":…}`: the live API tokens, oldest first.
    #[serde(rename = "tokens.list")]
    ListTokens {
        /// Only this user's tokens.
        #[serde(default)]
        user: Option<String>,
        /// Only this realm's tokens.
        #[serde(default)]
        realm: Option<String>,
    },
    /// `{"op":"tokens.revoke","id":…}`: revokes one API token by its public id.
    #[serde(rename = "tokens.revoke")]
    RevokeToken {
        /// Public id of the token.
        id: ApiTokenId,
    },
    /// `{"op":"keys.rotate","realm":…,"lifetime_secs":…}`: rotates the realm's JWT signing key;
    /// retired keys whose JWTs (`lifetime_secs` long) have all expired are dropped.
    #[serde(rename = "keys.rotate")]
    RotateKeys {
        /// The realm.
        realm: String,
        /// The realm's `jwt.lifetime`, in seconds.
        lifetime_secs: u64,
    },
    /// `{"op":"realm.cookie_name","realm":…,"change":…}`: shows the realm's cookie name, or sets
    /// it (`{"set":NAME}`, already validated) or resets it to the default (`"reset"`), ending
    /// every session of the realm when the name changes.
    #[serde(rename = "realm.cookie_name")]
    CookieName {
        /// The realm.
        realm: String,
        /// `None` only shows the name.
        #[serde(default)]
        change: Option<NameChange>,
    },
    /// `{"op":"totp.reset","user":…}`: removes the user's TOTP second factor (and any pending
    /// enrollment), so that their next sign-in asks for the password only.
    #[serde(rename = "totp.reset")]
    ResetTotp {
        /// The user.
        user: String,
    },
}

/// A change of cookie name, as the control socket carries it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum NameChange {
    /// Use this name.
    Set(String),
    /// Back to the realm's generated default.
    Reset,
}

impl Op {
    /// The op's wire name, for logs.
    pub(crate) fn name(&self) -> &'static str {
        match self {
            Self::ListSessions { .. } => "sessions.list",
            Self::RevokeSession { .. } => "sessions.revoke",
            Self::RevokeUser { .. } => "sessions.revoke_user",
            Self::RotateKeys { .. } => "keys.rotate",
            Self::CookieName { .. } => "realm.cookie_name",
            Self::CreateToken { .. } => "tokens.create",
            Self::ListTokens { .. } => "tokens.list",
            Self::RevokeToken { .. } => "tokens.revoke",
            Self::ResetTotp { .. } => "totp.reset",
        }
    }
}

/// The successful outcome of an [`Op`]. Serialized as `{"sessions":[…]}`, `{"tokens":[…]}`,
/// `{"revoked":N}` or `{"user":…,"totp_removed":…}`, which is also what `--json` prints (but
/// for `tokens create`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub(crate) enum Reply {
    /// Answer to [`Op::ListSessions`].
    Sessions {
        /// The live sessions, oldest first.
        sessions: Vec<SessionView>,
    },
    /// Answer to [`Op::RevokeSession`] (always 1), [`Op::RevokeUser`] and [`Op::RevokeToken`]
    /// (always 1).
    Revoked {
        /// How many live sessions (or tokens) ended (client-side sessions are not counted: the
        /// store keeps no list of them).
        revoked: usize,
        /// The client-side realms (`location: client`) where every session of the user created
        /// until now (or the session id) is refused from then on; left out when none.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        client_realms: Vec<String>,
    },
    /// Answer to [`Op::RotateKeys`].
    Rotated {
        /// The realm.
        realm: String,
        /// Key id of the key that signs from now on.
        current_kid: String,
        /// Key id of the key retired, still published until its JWTs expire.
        retired_kid: String,
    },
    /// Answer to [`Op::CookieName`].
    CookieName {
        /// The realm.
        realm: String,
        /// The name in force.
        cookie_name: String,
        /// Whether it is the realm's generated default.
        default_cookie_name: bool,
        /// Sessions ended by this change.
        sessions_ended: usize,
    },
    /// Answer to [`Op::ListTokens`], and to [`Op::CreateToken`] (the token stored).
    Tokens {
        /// The live tokens, oldest first.
        tokens: Vec<TokenView>,
    },
    /// Answer to [`Op::ResetTotp`].
    TotpReset {
        /// The user.
        user: String,
        /// Whether the user had a TOTP (confirmed or pending) that is now gone.
        totp_removed: bool,
    },
}

/// An API token as the administrative commands show it. Never the token or its hash. Times are
/// RFC 3339 in UTC; `last_used_at` is `null` until first use, `expires_at` `null` for never.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct TokenView {
    /// Public id.
    pub(crate) id: String,
    /// The label it was given.
    pub(crate) name: String,
    /// The user it acts as.
    pub(crate) user: String,
    /// The realm it is valid in.
    pub(crate) realm: String,
    /// When it was made.
    pub(crate) created_at: String,
    /// When it was last used, to within a minute.
    pub(crate) last_used_at: Option<String>,
    /// When it stops working.
    pub(crate) expires_at: Option<String>,
}

impl From<ApiTokenRecord> for TokenView {
    fn from(r: ApiTokenRecord) -> Self {
        Self {
            id: r.id.to_string(),
            name: r.name,
            user: r.user,
            realm: r.realm,
            created_at: r.created_at.rfc3339(),
            last_used_at: r.last_used_at.map(|t| t.rfc3339()),
            expires_at: r.expires_at.map(|t| t.rfc3339()),
        }
    }
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
    /// Signing keys are sealed with the secret, which this process does not have.
    #[error("no secret to open the signing keys with: set `secret`, or start the server once to generate one")]
    NoSecret,
    /// No live API token has this id.
    #[error("no API token with id {0}")]
    NoSuchToken(ApiTokenId),
    /// The request cannot be carried out as given (a malformed token hash or record, or the
    /// user's token limit).
    #[error("{0}")]
    Invalid(String),
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
/// [`OpError::NoSuchToken`] likewise for an API token; [`OpError::Invalid`] for a request that
/// cannot be carried out as given (a malformed token, a user name no user can have);
/// [`OpError::Store`] when the store fails.
pub(crate) async fn execute<S: Store>(
    store: &S,
    signing: Option<&Signing>,
    op: Op,
    now: Timestamp,
    realms: &[RealmPolicy],
) -> Result<Reply, OpError> {
    let client_realms = || realms.iter().filter(|r| r.location == SessionLocation::Client);
    match op {
        Op::RotateKeys { realm, lifetime_secs } => {
            let signing = signing.ok_or(OpError::NoSecret)?;
            let settings = JwtSettings { lifetime: Duration::from_secs(lifetime_secs), ..JwtSettings::default() };
            let rotated = signing.rotate(store, &realm, settings, now, true).await?;
            // A forced rotation always rotates; `None` would mean nothing was written.
            let rotated = rotated.ok_or(OpError::Store(StoreError::Conflict))?;
            Ok(Reply::Rotated {
                realm: rotated.realm,
                current_kid: rotated.current_kid,
                retired_kid: rotated.retired_kid,
            })
        }
        Op::CookieName { realm, change } => {
            let change = match change {
                None => CookieNameChange::Keep,
                Some(NameChange::Set(name)) => CookieNameChange::Set(name),
                Some(NameChange::Reset) => CookieNameChange::Reset,
            };
            let outcome = change_cookie_name(store, &realm, &change, now).await?;
            Ok(Reply::CookieName {
                realm: outcome.realm,
                cookie_name: outcome.name,
                default_cookie_name: outcome.is_default,
                sessions_ended: outcome.sessions_ended.unwrap_or(0),
            })
        }
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
        Op::CreateToken { token_hash, record } => {
            let hash = parse_store_key(&token_hash)
                .ok_or_else(|| OpError::Invalid("token_hash must be 64 lower-case hex digits".to_owned()))?;
            validate_name(&record.name).map_err(|e| OpError::Invalid(e.to_string()))?;
            if record.is_expired(now) {
                return Err(OpError::Invalid("the token would be expired already".to_owned()));
            }
            match api_tokens::insert(store, &hash, &record, now).await? {
                Inserted::Stored => Ok(Reply::Tokens { tokens: vec![TokenView::from(record)] }),
                Inserted::LimitReached => Err(OpError::Invalid(format!(
                    "{} already holds {} API tokens in realm {}; revoke one first",
                    record.user,
                    sessiond_core::api_token::MAX_TOKENS_PER_USER,
                    record.realm
                ))),
            }
        }
        Op::ListTokens { user, realm } => {
            let tokens = api_tokens::list(store, now)
                .await?
                .into_iter()
                .map(|(_, r)| r)
                .filter(|r| user.as_ref().is_none_or(|u| *u == r.user) && realm.as_ref().is_none_or(|x| *x == r.realm))
                .map(TokenView::from)
                .collect();
            Ok(Reply::Tokens { tokens })
        }
        Op::RevokeToken { id } => match api_tokens::revoke(store, &id, now).await? {
            Some(_) => Ok(Reply::Revoked { revoked: 1, client_realms: vec![] }),
            None => Err(OpError::NoSuchToken(id)),
        },
        Op::ResetTotp { user } => {
            check_user(&user)?;
            let totp_removed = totp::remove(store, &user).await?;
            Ok(Reply::TotpReset { user, totp_removed })
        }
    }
}

/// The longest user name an op takes, in bytes.
const MAX_USER_BYTES: usize = 256;

/// Refuses a user name that no user can have: empty, too long, or with control characters (a
/// line break would reach another user's keys in the store).
fn check_user(user: &str) -> Result<(), OpError> {
    if user.is_empty() || user.len() > MAX_USER_BYTES || user.chars().any(char::is_control) {
        return Err(OpError::Invalid(format!(
            "invalid user {user:?}: 1 to {MAX_USER_BYTES} bytes, no control characters"
        )));
    }
    Ok(())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use sessiond_core::token::SessionToken;
    use sessiond_store::MemoryStore;
    use std::collections::BTreeMap;

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
            other => panic!("expected a session list, got {other:?}"),
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

        let all = ids(&execute(&store, None, list(None, None), NOW, &[]).await.unwrap());
        assert_eq!(all.len(), 3);
        let mut alice = ids(&execute(&store, None, list(Some("alice"), None), NOW, &[]).await.unwrap());
        alice.sort();
        let mut expected = vec![a.id.to_string(), c.id.to_string()];
        expected.sort();
        assert_eq!(alice, expected);
        assert_eq!(
            ids(&execute(&store, None, list(None, Some("other")), NOW, &[]).await.unwrap()),
            vec![c.id.to_string()]
        );
        assert_eq!(
            ids(&execute(&store, None, list(Some("alice"), Some("main")), NOW, &[]).await.unwrap()),
            vec![a.id.to_string()]
        );
        assert!(ids(&execute(&store, None, list(Some("nobody"), None), NOW, &[]).await.unwrap()).is_empty());
    }

    #[tokio::test]
    async fn list_hides_sessions_past_their_deadline() {
        let live = record("main", "alice", 600);
        let dead = record("main", "alice", 0);
        let store = store_with(&[&live, &dead]).await;
        let listed = ids(&execute(&store, None, list(None, None), NOW, &[]).await.unwrap());
        assert_eq!(listed, vec![live.id.to_string()]);
    }

    #[tokio::test]
    async fn listed_session_has_the_documented_fields_and_no_secret() {
        let a = record("main", "alice", 600);
        let store = store_with(&[&a]).await;
        let reply = execute(&store, None, list(None, None), NOW, &[]).await.unwrap();
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
        let reply = execute(&store, None, Op::RevokeSession { id: a.id.clone() }, NOW, &[]).await.unwrap();
        assert_eq!(reply, Reply::Revoked { revoked: 1, client_realms: vec![] });
        assert!(store.session_by_id(&a.id).await.unwrap().is_none());
        assert!(store.session_by_id(&b.id).await.unwrap().is_some());
    }

    #[tokio::test]
    async fn revoke_unknown_id_is_not_found() {
        let store = MemoryStore::default();
        let id = SessionId::generate();
        let err = execute(&store, None, Op::RevokeSession { id: id.clone() }, NOW, &[]).await.unwrap_err();
        assert!(matches!(&err, OpError::NoSuchSession(got) if *got == id), "{err:?}");
        assert_eq!(err.to_string(), format!("no session with id {id}"));
    }

    #[tokio::test]
    async fn revoke_dead_session_is_not_found_but_deletes_it() {
        let dead = record("main", "alice", 0);
        let store = store_with(&[&dead]).await;
        let err = execute(&store, None, Op::RevokeSession { id: dead.id.clone() }, NOW, &[]).await.unwrap_err();
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
        assert_eq!(
            execute(&store, None, op, NOW, &[]).await.unwrap(),
            Reply::Revoked { revoked: 2, client_realms: vec![] }
        );
        let left = ids(&execute(&store, None, list(None, None), NOW, &[]).await.unwrap());
        assert_eq!(left, vec![bob.id.to_string()]);
    }

    #[tokio::test]
    async fn revoke_user_in_one_realm_leaves_other_realms_alone() {
        let a = record("main", "alice", 600);
        let b = record("other", "alice", 600);
        let store = store_with(&[&a, &b]).await;
        let op = Op::RevokeUser { user: "alice".to_owned(), realm: Some("main".to_owned()) };
        assert_eq!(
            execute(&store, None, op, NOW, &[]).await.unwrap(),
            Reply::Revoked { revoked: 1, client_realms: vec![] }
        );
        assert!(store.session_by_id(&b.id).await.unwrap().is_some());
    }

    #[tokio::test]
    async fn revoke_user_counts_only_live_sessions() {
        let live = record("main", "alice", 600);
        let dead = record("main", "alice", 0);
        let store = store_with(&[&live, &dead]).await;
        let op = Op::RevokeUser { user: "alice".to_owned(), realm: None };
        assert_eq!(
            execute(&store, None, op, NOW, &[]).await.unwrap(),
            Reply::Revoked { revoked: 1, client_realms: vec![] }
        );
        assert!(store.session_by_id(&dead.id).await.unwrap().is_none());
    }

    #[tokio::test]
    async fn revoke_user_without_sessions_revokes_none() {
        let store = MemoryStore::default();
        let op = Op::RevokeUser { user: "alice".to_owned(), realm: None };
        assert_eq!(
            execute(&store, None, op, NOW, &[]).await.unwrap(),
            Reply::Revoked { revoked: 0, client_realms: vec![] }
        );
    }

    fn token_record(user: &str, realm: &str, expires_in: Option<u64>) -> ApiTokenRecord {
        ApiTokenRecord {
            id: ApiTokenId::generate(),
            name: "ci".to_owned(),
            user: user.to_owned(),
            realm: realm.to_owned(),
            created_at: NOW,
            last_used_at: None,
            expires_at: expires_in.map(|s| NOW + Duration::from_secs(s)),
            groups: vec![],
            display_name: None,
            email: None,
            from_users_file: true,
        }
    }

    fn create_token(record: &ApiTokenRecord) -> (sessiond_core::api_token::ApiToken, Op) {
        let token = sessiond_core::api_token::ApiToken::generate();
        let token_hash = sessiond_core::api_token::store_key(&token.hash());
        (token, Op::CreateToken { token_hash, record: record.clone() })
    }

    fn token_ids(reply: &Reply) -> Vec<String> {
        match reply {
            Reply::Tokens { tokens } => tokens.iter().map(|t| t.id.clone()).collect(),
            _ => panic!("expected a token list, got {reply:?}"),
        }
    }

    #[tokio::test]
    async fn tokens_are_created_listed_and_revoked_by_id() {
        let store = MemoryStore::default();
        let a = token_record("alice", "main", None);
        let b = token_record("bob", "other", Some(60));
        for r in [&a, &b] {
            let reply = execute(&store, None, create_token(r).1, NOW, &[]).await.unwrap();
            assert_eq!(token_ids(&reply), vec![r.id.to_string()]);
        }
        let all = Op::ListTokens { user: None, realm: None };
        assert_eq!(token_ids(&execute(&store, None, all.clone(), NOW, &[]).await.unwrap()).len(), 2);
        let alice = Op::ListTokens { user: Some("alice".to_owned()), realm: None };
        assert_eq!(token_ids(&execute(&store, None, alice, NOW, &[]).await.unwrap()), vec![a.id.to_string()]);
        let other = Op::ListTokens { user: None, realm: Some("other".to_owned()) };
        assert_eq!(token_ids(&execute(&store, None, other, NOW, &[]).await.unwrap()), vec![b.id.to_string()]);
        let later = NOW + Duration::from_secs(60);
        assert_eq!(
            token_ids(&execute(&store, None, all.clone(), later, &[]).await.unwrap()),
            vec![a.id.to_string()],
            "expired"
        );

        let revoke = Op::RevokeToken { id: a.id.clone() };
        assert_eq!(
            execute(&store, None, revoke.clone(), NOW, &[]).await.unwrap(),
            Reply::Revoked { revoked: 1, client_realms: vec![] }
        );
        let err = execute(&store, None, revoke, NOW, &[]).await.unwrap_err();
        assert_eq!(err.to_string(), format!("no API token with id {}", a.id));
        let listed = serde_json::to_string(&execute(&store, None, all, NOW, &[]).await.unwrap()).unwrap();
        assert!(!listed.contains(&a.id.to_string()) && listed.contains(&b.id.to_string()), "{listed}");
    }

    #[tokio::test]
    async fn token_creation_refuses_bad_input_and_the_limit() {
        let store = MemoryStore::default();
        let good = token_record("alice", "main", None);
        let (_, op) = create_token(&good);
        let Op::CreateToken { token_hash, .. } = &op else { unreachable!() };
        for hash in ["", "abc", &token_hash.to_uppercase(), &format!("{}g", &token_hash[..63])] {
            let bad = Op::CreateToken { token_hash: hash.to_owned(), record: good.clone() };
            assert!(matches!(execute(&store, None, bad, NOW, &[]).await, Err(OpError::Invalid(_))), "{hash:?}");
        }
        let mut badly_named = good.clone();
        badly_named.name = "bad\nname".to_owned();
        assert!(matches!(
            execute(&store, None, create_token(&badly_named).1, NOW, &[]).await,
            Err(OpError::Invalid(_))
        ));
        let expired = token_record("alice", "main", Some(0));
        assert!(matches!(execute(&store, None, create_token(&expired).1, NOW, &[]).await, Err(OpError::Invalid(_))));
        execute(&store, None, op.clone(), NOW, &[]).await.unwrap();
        assert!(
            matches!(execute(&store, None, op, NOW, &[]).await, Err(OpError::Store(StoreError::Conflict))),
            "same hash twice"
        );
        for _ in 1..sessiond_core::api_token::MAX_TOKENS_PER_USER {
            execute(&store, None, create_token(&token_record("alice", "main", None)).1, NOW, &[]).await.unwrap();
        }
        let over =
            execute(&store, None, create_token(&token_record("alice", "main", None)).1, NOW, &[]).await.unwrap_err();
        assert!(over.to_string().contains("revoke one first"), "{over}");
        execute(&store, None, create_token(&token_record("alice", "other", None)).1, NOW, &[]).await.unwrap();
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
            journeys: Default::default(),
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
        let reply = execute(&store, None, op, NOW, &realms).await.unwrap();
        assert_eq!(reply, Reply::Revoked { revoked: 1, client_realms: vec!["shop".into(), "web".into()] });
        assert!(revocation::is_revoked(&store, &shop, None, NOW).await.unwrap());
        assert!(!revocation::is_revoked(&store, &bob, None, NOW).await.unwrap());
        assert_eq!(
            serde_json::to_string(&reply).unwrap(),
            r#"{"revoked":1,"client_realms":["shop","web"]}"#,
            "the JSON names the client-side realms"
        );

        // One realm only: the others are left alone.
        let store = MemoryStore::default();
        let op = Op::RevokeUser { user: "alice".to_owned(), realm: Some("web".to_owned()) };
        let reply = execute(&store, None, op, NOW, &realms).await.unwrap();
        assert_eq!(reply, Reply::Revoked { revoked: 0, client_realms: vec!["web".into()] });
        assert!(!revocation::is_revoked(&store, &shop, None, NOW).await.unwrap());
        assert!(revocation::is_revoked(&store, &client_session("web", "alice"), None, NOW).await.unwrap());
    }

    #[tokio::test]
    async fn revoke_by_id_refuses_an_unknown_id_in_every_client_realm() {
        let store = MemoryStore::default();
        let realms = [client_realm("shop")];
        let session = client_session("shop", "alice");
        let reply = execute(&store, None, Op::RevokeSession { id: session.id.clone() }, NOW, &realms).await.unwrap();
        assert_eq!(reply, Reply::Revoked { revoked: 1, client_realms: vec!["shop".into()] });
        assert!(revocation::is_revoked(&store, &session, None, NOW).await.unwrap());
        // Kept as long as a session of the realm can live (remember me: a month).
        let month = NOW + Duration::from_secs(30 * 86_400);
        assert!(revocation::is_revoked(&store, &session, None, month - Duration::from_secs(1)).await.unwrap());
        assert!(!revocation::is_revoked(&store, &session, None, month).await.unwrap());
    }

    #[tokio::test]
    async fn totp_reset_removes_the_second_factor_so_the_next_sign_in_asks_for_the_password_only() {
        let store = MemoryStore::default();
        let sealer = sessiond_core::keys::Sealer::new("sessiond totp secret v1", &[7; 32], None);
        let secret = totp::begin_enrollment(&store, &sealer, "alice", NOW).await.unwrap();
        let code = sessiond_core::totp::code_at(&secret, sessiond_core::totp::counter_at(NOW));
        totp::confirm(&store, &sealer, "alice", &code, NOW).await.unwrap();
        let bob = totp::begin_enrollment(&store, &sealer, "bob", NOW).await.unwrap();
        let bob_code = sessiond_core::totp::code_at(&bob, sessiond_core::totp::counter_at(NOW));
        totp::confirm(&store, &sealer, "bob", &bob_code, NOW).await.unwrap();
        assert!(totp::is_enrolled(&store, "alice", NOW).await.unwrap());

        let reset = Op::ResetTotp { user: "alice".to_owned() };
        let reply = execute(&store, None, reset.clone(), NOW, &[]).await.unwrap();
        assert_eq!(reply, Reply::TotpReset { user: "alice".to_owned(), totp_removed: true });
        assert_eq!(serde_json::to_string(&reply).unwrap(), r#"{"user":"alice","totp_removed":true}"#);
        assert!(!totp::is_enrolled(&store, "alice", NOW).await.unwrap());
        assert!(totp::is_enrolled(&store, "bob", NOW).await.unwrap(), "other users keep theirs");

        // Nothing left to remove: said so, and no error.
        let again = execute(&store, None, reset, NOW, &[]).await.unwrap();
        assert_eq!(again, Reply::TotpReset { user: "alice".to_owned(), totp_removed: false });
    }

    #[tokio::test]
    async fn totp_reset_takes_a_pending_enrollment_away_too() {
        let store = MemoryStore::default();
        let sealer = sessiond_core::keys::Sealer::new("sessiond totp secret v1", &[7; 32], None);
        let secret = totp::begin_enrollment(&store, &sealer, "alice", NOW).await.unwrap();
        let reply = execute(&store, None, Op::ResetTotp { user: "alice".to_owned() }, NOW, &[]).await.unwrap();
        assert_eq!(reply, Reply::TotpReset { user: "alice".to_owned(), totp_removed: true });
        let code = sessiond_core::totp::code_at(&secret, sessiond_core::totp::counter_at(NOW));
        assert!(totp::confirm(&store, &sealer, "alice", &code, NOW).await.is_err(), "nothing left to confirm");
    }

    #[tokio::test]
    async fn totp_reset_refuses_names_no_user_can_have() {
        let store = MemoryStore::default();
        let sealer = sessiond_core::keys::Sealer::new("sessiond totp secret v1", &[7; 32], None);
        totp::begin_enrollment(&store, &sealer, "alice", NOW).await.unwrap();
        for user in ["", "alice\npending", &"a".repeat(257)] {
            let result = execute(&store, None, Op::ResetTotp { user: user.to_owned() }, NOW, &[]).await;
            assert!(matches!(&result, Err(OpError::Invalid(m)) if m.contains("invalid user")), "{user:?}: {result:?}");
        }
        let pending = execute(&store, None, Op::ResetTotp { user: "alice".to_owned() }, NOW, &[]).await.unwrap();
        assert_eq!(pending, Reply::TotpReset { user: "alice".to_owned(), totp_removed: true }, "left alone above");
    }

    #[test]
    fn reply_round_trips_through_json() {
        let sessions = Reply::Sessions { sessions: vec![SessionView::from(record("main", "alice", 60))] };
        let revoked = Reply::Revoked { revoked: 3, client_realms: vec![] };
        let tokens = Reply::Tokens { tokens: vec![TokenView::from(token_record("alice", "main", Some(60)))] };
        let totp = Reply::TotpReset { user: "alice".to_owned(), totp_removed: false };
        for reply in [sessions, revoked, tokens, totp, Reply::Sessions { sessions: vec![] }] {
            let text = serde_json::to_string(&reply).unwrap();
            assert_eq!(serde_json::from_str::<Reply>(&text).unwrap(), reply, "{text}");
        }
        assert_eq!(
            serde_json::to_string(&Reply::Revoked { revoked: 3, client_realms: vec![] }).unwrap(),
            r#"{"revoked":3}"#
        );
    }
}
