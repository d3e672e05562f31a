//! Using API tokens: finding one in a request, checking it, and keeping their records in the
//! store's key-value space.
//!
//! An API token arrives as `Authorization: Bearer sdat_…`. A value with our prefix is ours to
//! check: it passes as its user or it is refused, and it never falls through to another
//! credential or to the application behind the proxy. The rules (format, expiry, the last-used
//! throttle) are in `sessiond_core::api_token`; the record lives under [`EntryKind::ApiToken`],
//! keyed by the hex SHA-256 of the token, with the token's expiry as the entry's, so an expired
//! token disappears from the store by itself.
//!
//! API tokens never create sessions or cookies. They are accepted by forward auth and by the
//! endpoints that take a [`Principal`] (`POST /api/v1/sessions`); the endpoints that act on the
//! caller's own session, token management included, answer `403` to them.

use crate::error::ApiError;
use crate::extract::{Caller, RequestContext};
use crate::state::{App, Realm};
use axum::extract::{FromRef, FromRequestParts};
use axum::http::request::Parts;
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};
use sessiond_core::api_token::{ApiToken, ApiTokenId, ApiTokenRecord, MAX_TOKENS_PER_USER, store_key};
use sessiond_core::time::Timestamp;
use sessiond_core::token::TokenHash;
use sessiond_store::{EntryKind, Store, StoreError};
use tracing::{debug, warn};

/// Why an endpoint that needs a session refuses a valid API token.
pub const SESSION_REQUIRED: &str = "API tokens cannot be used here; this needs a signed-in session";
/// Why an API token was refused: one message for unknown, revoked and expired tokens, and for
/// tokens of a user who is disabled or gone, so a refusal tells nothing about which.
const REFUSED: &str = "unknown, revoked or expired API token";

/// The credential part of one `Authorization` value: what follows the scheme, or the whole value
/// when it has none.
fn credential(value: &str) -> &str {
    let value = value.trim();
    value.split_once(' ').map_or(value, |(_, rest)| rest.trim())
}

/// The API token a request presents, if it presents one: an `Authorization` value whose
/// credential starts with our prefix (in any case, with `Bearer` or any other scheme, or none).
///
/// # Errors
/// `unauthenticated` when such a value is not exactly `Bearer <token>` with a well-formed token,
/// or comes with a second `Authorization` header.
pub fn presented(headers: &HeaderMap) -> Result<Option<ApiToken>, ApiError> {
    let mut values = 0usize;
    let mut ours = None;
    for value in headers.get_all(header::AUTHORIZATION) {
        values += 1;
        if let Ok(text) = value.to_str() {
            if ApiToken::claims(credential(text)) {
                ours = Some(text.trim());
            }
        }
    }
    let Some(text) = ours else { return Ok(None) };
    if values > 1 {
        return Err(ApiError::Unauthenticated("Authorization given more than once"));
    }
    let bearer = text.split_once(' ').filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"));
    let Some((_, token)) = bearer else {
        return Err(ApiError::Unauthenticated("API tokens go in Authorization: Bearer"));
    };
    ApiToken::parse(token.trim()).map(Some).map_err(|_| ApiError::Unauthenticated("malformed API token"))
}

/// A caller that presented a valid API token.
#[derive(Clone, Debug)]
pub struct TokenCaller {
    /// The token's record, as it stands after this request.
    pub record: ApiTokenRecord,
    /// The user's groups: from the users file when the user is there, else the token's.
    pub groups: Vec<String>,
    /// The user's name for people.
    pub display_name: Option<String>,
    /// The user's email address.
    pub email: Option<String>,
    /// Whether the user belongs to `server.admin_group`.
    pub is_admin: bool,
}

/// Checks `token` in `realm` at the present, and records its use when the last recorded one is
/// a minute old or more (never a store write on every request).
///
/// # Errors
/// `unauthenticated` for an unknown, revoked or expired token, one of another realm, and one
/// whose user was in the users file and is now disabled or removed (the token works again if
/// the user is enabled again; revoke it to end it for good); `store_unavailable` when the store
/// cannot answer (never a pass); `internal` for a record that cannot be read.
pub async fn verify(app: &App, realm: &Realm, token: &ApiToken) -> Result<TokenCaller, ApiError> {
    let now = app.clock.now();
    let key = store_key(&token.hash());
    let entry = app.store.entry(EntryKind::ApiToken, &key, now).await?.ok_or(ApiError::Unauthenticated(REFUSED))?;
    let mut record = decode(&entry.value)?;
    if record.realm != realm.name() || record.is_expired(now) {
        return Err(ApiError::Unauthenticated(REFUSED));
    }
    let known = app.users.snapshot().get(&record.user);
    let (groups, display_name, email) = match known {
        Some(user) if !user.disabled => (user.groups, user.display_name, user.email),
        Some(_) => {
            debug!(token_id = %record.id, user = %record.user, "api token refused: user disabled");
            return Err(ApiError::Unauthenticated(REFUSED));
        }
        None if record.from_users_file => {
            debug!(token_id = %record.id, user = %record.user, "api token refused: user removed");
            return Err(ApiError::Unauthenticated(REFUSED));
        }
        None => (record.groups.clone(), record.display_name.clone(), record.email.clone()),
    };
    if record.use_is_due(now) {
        let mut used = record.clone();
        used.last_used_at = Some(now);
        let value = used.to_json().map_err(ApiError::internal)?;
        let swap =
            app.store.swap_entry(EntryKind::ApiToken, &key, Some(&entry.value), Some((&value, record.expires_at)), now);
        if swap.await? {
            record = used;
        } else if app.store.entry(EntryKind::ApiToken, &key, now).await?.is_none() {
            // Revoked while this request was checking it.
            return Err(ApiError::Unauthenticated(REFUSED));
        }
        // Otherwise a concurrent request recorded the use first.
    }
    let is_admin = groups.iter().any(|g| *g == app.settings.admin_group);
    Ok(TokenCaller { record, groups, display_name, email, is_admin })
}

fn decode(value: &[u8]) -> Result<ApiTokenRecord, StoreError> {
    ApiTokenRecord::from_json(value).map_err(|e| StoreError::Corrupt { what: "API token", reason: e.to_string() })
}

/// What [`insert`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Inserted {
    /// The token is stored and works from now on.
    Stored,
    /// The user already holds [`MAX_TOKENS_PER_USER`] live tokens in the realm; nothing stored.
    LimitReached,
}

/// Stores a new token (only its hash) with `record`, expiring with it.
///
/// # Errors
/// [`StoreError::Conflict`] when an entry already has this hash; any other failure of the store.
pub async fn insert<S: Store>(
    store: &S,
    hash: &TokenHash,
    record: &ApiTokenRecord,
    now: Timestamp,
) -> Result<Inserted, StoreError> {
    let held = list(store, now).await?.iter().filter(|(_, r)| r.user == record.user && r.realm == record.realm).count();
    if held >= MAX_TOKENS_PER_USER {
        return Ok(Inserted::LimitReached);
    }
    let value = record.to_json().map_err(|e| StoreError::Corrupt { what: "API token", reason: e.to_string() })?;
    let key = store_key(hash);
    if store.swap_entry(EntryKind::ApiToken, &key, None, Some((&value, record.expires_at)), now).await? {
        Ok(Inserted::Stored)
    } else {
        Err(StoreError::Conflict)
    }
}

/// Every live token with its store key, oldest first. A record that cannot be read is left out
/// (and logged), so one bad entry never hides the others.
///
/// # Errors
/// When the store fails.
pub async fn list<S: Store>(store: &S, now: Timestamp) -> Result<Vec<(String, ApiTokenRecord)>, StoreError> {
    let mut tokens: Vec<(String, ApiTokenRecord)> = store
        .list_entries(EntryKind::ApiToken, now)
        .await?
        .into_iter()
        .filter_map(|entry| match decode(&entry.value) {
            Ok(record) => Some((entry.key, record)),
            Err(e) => {
                warn!(error = %e, "unreadable API token left out");
                None
            }
        })
        .filter(|(_, record)| !record.is_expired(now))
        .collect();
    tokens.sort_by(|(_, a), (_, b)| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
    Ok(tokens)
}

/// The live token with public id `id`, with its store key.
///
/// # Errors
/// When the store fails.
pub async fn find<S: Store>(
    store: &S,
    id: &ApiTokenId,
    now: Timestamp,
) -> Result<Option<(String, ApiTokenRecord)>, StoreError> {
    Ok(list(store, now).await?.into_iter().find(|(_, r)| r.id == *id))
}

/// Revokes the live token with public id `id`; returns its record when it existed and this call
/// ended it.
///
/// # Errors
/// When the store fails.
pub async fn revoke<S: Store>(
    store: &S,
    id: &ApiTokenId,
    now: Timestamp,
) -> Result<Option<ApiTokenRecord>, StoreError> {
    let Some((key, record)) = find(store, id, now).await? else { return Ok(None) };
    Ok(store.delete_entry(EntryKind::ApiToken, &key).await?.then_some(record))
}

/// The caller of an endpoint that API tokens may use too: a signed-in session, or a valid API
/// token. A request that presents an API token is judged by it alone.
#[derive(Clone)]
pub enum Principal {
    /// A signed-in session.
    Session(Caller),
    /// An API token.
    Token(Box<TokenCaller>),
}

impl Principal {
    /// The user the caller acts as.
    pub fn user(&self) -> &str {
        match self {
            Self::Session(caller) => &caller.session.user,
            Self::Token(caller) => &caller.record.user,
        }
    }

    /// Refuses callers outside `server.admin_group`.
    ///
    /// # Errors
    /// `forbidden` for non-admins.
    pub fn require_admin(&self) -> Result<(), ApiError> {
        match self {
            Self::Session(caller) => caller.require_admin(),
            Self::Token(caller) if caller.is_admin => Ok(()),
            Self::Token(_) => Err(ApiError::Forbidden("administrators only")),
        }
    }
}

impl<S> FromRequestParts<S> for Principal
where
    App: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Response> {
        match presented(&parts.headers) {
            Ok(Some(token)) => {
                let app = App::from_ref(state);
                let ctx =
                    RequestContext::from_request_parts(parts, state).await.map_err(IntoResponse::into_response)?;
                verify(&app, &ctx.realm, &token)
                    .await
                    .map(|t| Self::Token(Box::new(t)))
                    .map_err(IntoResponse::into_response)
            }
            Ok(None) => Caller::from_request_parts(parts, state).await.map(Self::Session),
            Err(e) => Err(e.into_response()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(values: &[&str]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for v in values {
            map.append(header::AUTHORIZATION, HeaderValue::from_str(v).unwrap());
        }
        map
    }

    fn found(values: &[&str]) -> Result<Option<TokenHash>, &'static str> {
        presented(&headers(values)).map(|t| t.map(|t| t.hash())).map_err(|e| match e {
            ApiError::Unauthenticated(m) => m,
            other => panic!("unexpected {other:?}"),
        })
    }

    #[test]
    fn a_bearer_api_token_is_found() {
        let t = ApiToken::generate();
        assert_eq!(found(&[&format!("Bearer {}", t.expose())]), Ok(Some(t.hash())));
        assert_eq!(found(&[&format!("bearer   {} ", t.expose())]), Ok(Some(t.hash())));
    }

    #[test]
    fn other_credentials_belong_to_the_application() {
        let session = sessiond_core::token::SessionToken::generate().expose();
        for value in ["Basic YWxpY2U6cHc=", &format!("Bearer {session}"), "Bearer eyJhbGciOi.x.y", "Bearer"] {
            assert_eq!(found(&[value]), Ok(None), "{value}");
        }
        assert_eq!(found(&[]), Ok(None));
    }

    #[test]
    fn anything_with_our_prefix_that_is_not_a_bearer_token_fails_closed() {
        let t = ApiToken::generate().expose();
        let upper = format!("Bearer {}", t.to_uppercase());
        let cut = format!("Bearer {}", &t[..20]);
        let token_scheme = format!("token {t}");
        let bare = t.clone();
        for value in [upper.as_str(), &cut, "Bearer sdat_", &token_scheme, &bare, "Bearer SDAT_x"] {
            assert!(found(&[value]).is_err(), "{value}");
        }
        let twice = format!("Bearer {t}");
        assert_eq!(found(&[&twice, "Basic x"]), Err("Authorization given more than once"));
        assert_eq!(found(&["Basic x", &twice]), Err("Authorization given more than once"));
    }
}
