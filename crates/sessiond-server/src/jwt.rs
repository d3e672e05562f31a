//! Session JWTs on the server: each realm's signing keyring (kept sealed in the store, shared by
//! every instance), issuing a JWT for a session, checking one that is presented, and
//! `GET /.well-known/jwks.json`.
//!
//! The keyring of a realm is read from the store when first needed and again on every
//! background tick, so a rotation made by another instance (or by `sessiond keys rotate`) is
//! seen within seconds. Rotations go through the store's compare-and-swap: of two instances
//! rotating at once, one wins and the other adopts its keyring. The key that will sign next is
//! published ahead of its turn, so applications caching the JWKS already hold it.

use crate::error::ApiError;
use crate::extract::ResponseCookies;
use crate::state::{App, Realm};
use axum::Json;
use axum::Router;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use sessiond_core::cookie::JWT_SUFFIX;
use sessiond_core::jwt::{Claims, Expected, Jwks, JwtError, JwtSettings, Keyring};
use sessiond_core::keys::Sealer;
use sessiond_core::session::SessionRecord;
use sessiond_core::time::Timestamp;
use sessiond_store::{EntryKind, Store, StoreError};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use tracing::{info, warn};

/// Rotations retried at most this many times when other instances keep winning the swap.
const SWAP_ATTEMPTS: usize = 5;
/// Forward-auth JWTs kept per shard before the shard is emptied.
const HEADER_CACHE_PER_SHARD: usize = 4096;
const HEADER_CACHE_SHARDS: usize = 16;

/// What a rotation did, for the CLI and the audit log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rotated {
    /// The realm.
    pub realm: String,
    /// The key that signs from now on.
    pub current_kid: String,
    /// The key retired by this rotation.
    pub retired_kid: String,
}

/// The signing keyrings of every realm, and the JWTs handed to forward auth.
pub struct Signing {
    sealer: Sealer,
    rings: arc_swap::ArcSwap<HashMap<String, Arc<Keyring>>>,
    /// Forward auth's `Remote-Jwt`, per session id, reused while at least half its life is
    /// left so that the hot path signs once per session every few minutes, not per request.
    header_cache: [Mutex<HashMap<String, (String, i64)>>; HEADER_CACHE_SHARDS],
}

impl Signing {
    /// Keyrings sealed with keys derived from `secret` (opening those sealed under `previous`).
    pub fn new(secret: &[u8], previous: Option<&[u8]>) -> Self {
        Self {
            sealer: Sealer::new("sessiond signing keys v1", secret, previous),
            rings: arc_swap::ArcSwap::default(),
            header_cache: std::array::from_fn(|_| Mutex::new(HashMap::new())),
        }
    }

    fn aad(realm: &str) -> Vec<u8> {
        [b"sessiond signing keys\0".as_slice(), realm.as_bytes()].concat()
    }

    /// The stored keyring of `realm` and the stored bytes it came from; `None` when there is none.
    async fn read(
        &self,
        store: &impl Store,
        realm: &str,
        now: Timestamp,
    ) -> Result<Option<(Keyring, Vec<u8>)>, StoreError> {
        let Some(entry) = store.entry(EntryKind::SigningKeys, realm, now).await? else { return Ok(None) };
        let plain = self.sealer.open(&Self::aad(realm), &entry.value).map_err(|e| StoreError::Corrupt {
            what: "signing keys",
            reason: format!("{e} (was the secret changed without secret_previous?)"),
        })?;
        let ring = Keyring::from_bytes(&plain)
            .map_err(|e| StoreError::Corrupt { what: "signing keys", reason: e.to_string() })?;
        Ok(Some((ring, entry.value)))
    }

    /// Writes `ring` over `expected` (the bytes read before; `None`: nothing was stored).
    async fn swap(
        &self,
        store: &impl Store,
        realm: &str,
        expected: Option<&[u8]>,
        ring: &Keyring,
        now: Timestamp,
    ) -> Result<bool, StoreError> {
        let sealed = self.sealer.seal(&Self::aad(realm), &ring.to_bytes());
        store.swap_entry(EntryKind::SigningKeys, realm, expected, Some((&sealed, None)), now).await
    }

    fn remember(&self, realm: &str, ring: Keyring) -> Arc<Keyring> {
        let ring = Arc::new(ring);
        self.rings.rcu(|rings| {
            let mut next = HashMap::clone(rings);
            next.insert(realm.to_owned(), Arc::clone(&ring));
            next
        });
        ring
    }

    /// The keyring of `realm`: the one in memory, else the stored one, else a new one stored
    /// for every instance to share.
    ///
    /// # Errors
    /// Store errors, and a stored keyring that does not open (wrong secret).
    pub async fn keyring(&self, store: &impl Store, realm: &str, now: Timestamp) -> Result<Arc<Keyring>, StoreError> {
        if let Some(ring) = self.rings.load().get(realm) {
            return Ok(Arc::clone(ring));
        }
        self.load(store, realm, now).await
    }

    /// Reads the keyring of `realm` from the store (creating it when there is none) and keeps it.
    ///
    /// # Errors
    /// Store errors, and a stored keyring that does not open.
    pub async fn load(&self, store: &impl Store, realm: &str, now: Timestamp) -> Result<Arc<Keyring>, StoreError> {
        for _ in 0..SWAP_ATTEMPTS {
            if let Some((ring, _)) = self.read(store, realm, now).await? {
                return Ok(self.remember(realm, ring));
            }
            let fresh = Keyring::generate(now);
            if self.swap(store, realm, None, &fresh, now).await? {
                info!(realm, kid = %fresh.current().kid, "signing keys created");
                return Ok(self.remember(realm, fresh));
            }
        }
        Err(StoreError::Conflict)
    }

    /// Rotates the keyring of `realm` when `force`, or when its rotation is due; prunes retired
    /// keys either way. `None` when nothing rotated.
    ///
    /// # Errors
    /// Store errors; [`StoreError::Conflict`] when other writers kept winning.
    pub async fn rotate(
        &self,
        store: &impl Store,
        realm: &str,
        settings: JwtSettings,
        now: Timestamp,
        force: bool,
    ) -> Result<Option<Rotated>, StoreError> {
        for _ in 0..SWAP_ATTEMPTS {
            let Some((mut ring, stored)) = self.read(store, realm, now).await? else {
                self.load(store, realm, now).await?;
                continue;
            };
            let due = force || settings.rotation.is_some_and(|every| ring.rotation_due(now, every));
            let before = ring.clone();
            let retired_kid = ring.current().kid.clone();
            if due {
                ring.rotate(now, settings.lifetime);
            } else {
                ring.prune(now, settings.lifetime);
            }
            if ring == before {
                self.remember(realm, ring);
                return Ok(None);
            }
            if self.swap(store, realm, Some(&stored), &ring, now).await? {
                let current_kid = ring.current().kid.clone();
                self.remember(realm, ring);
                if !due {
                    return Ok(None);
                }
                info!(realm, kid = %current_kid, retired = %retired_kid, "signing key rotated");
                return Ok(Some(Rotated { realm: realm.to_owned(), current_kid, retired_kid }));
            }
        }
        Err(StoreError::Conflict)
    }

    /// Background work: picks up keyrings changed elsewhere and rotates those that are due.
    pub async fn refresh(&self, app: &App) {
        for realm in app.realms().iter().filter(|r| r.policy.jwt.enabled) {
            match self.rotate(&app.store, realm.name(), realm.policy.jwt, app.clock.now(), false).await {
                Ok(Some(rotated)) => app.audit(
                    crate::audit::AuditKind::KeyRotated,
                    &crate::audit::AuditEvent {
                        realm: Some(&rotated.realm),
                        reason: Some("scheduled"),
                        ..Default::default()
                    },
                ),
                Ok(None) => {}
                Err(e) => warn!(realm = %realm.name(), error = %e, "signing keys not refreshed"),
            }
        }
    }

    /// The JWT forward auth hands to applications for `session`, reused from the cache while
    /// at least half its lifetime is left.
    ///
    /// # Errors
    /// As [`issue`].
    pub async fn header_jwt(
        &self,
        app: &App,
        realm: &Realm,
        session: &SessionRecord,
    ) -> Result<Option<String>, ApiError> {
        let now = app.clock.now().unix();
        let half = (realm.policy.jwt.lifetime.as_secs() / 2) as i64;
        let shard = &self.header_cache[shard_of(session.id.as_str())];
        if let Ok(cache) = shard.lock() {
            if let Some((jwt, exp)) = cache.get(session.id.as_str()) {
                if exp - now > half {
                    return Ok(Some(jwt.clone()));
                }
            }
        }
        let Some((jwt, claims)) = issue_with_claims(app, realm, session).await? else { return Ok(None) };
        if let Ok(mut cache) = shard.lock() {
            if cache.len() >= HEADER_CACHE_PER_SHARD {
                cache.clear();
            }
            cache.insert(session.id.as_str().to_owned(), (jwt.clone(), claims.exp));
        }
        Ok(Some(jwt))
    }
}

fn shard_of(id: &str) -> usize {
    id.bytes().fold(0usize, |h, b| h.wrapping_mul(31).wrapping_add(usize::from(b))) % HEADER_CACHE_SHARDS
}

/// The issuer of a realm's JWTs: its portal URL without a trailing slash.
pub fn issuer(realm: &Realm) -> String {
    realm.policy.portal_url.as_str().trim_end_matches('/').to_owned()
}

fn expected<'a>(realm: &'a Realm, issuer: &'a str) -> Expected<'a> {
    Expected { issuer, audience: realm.name(), realm: realm.name() }
}

async fn issue_with_claims(
    app: &App,
    realm: &Realm,
    session: &SessionRecord,
) -> Result<Option<(String, Claims)>, ApiError> {
    let settings = realm.policy.jwt;
    if !settings.enabled {
        return Ok(None);
    }
    let now = app.clock.now();
    let ring = app.signing.keyring(&app.store, realm.name(), now).await?;
    // Never valid past the session's own deadline as it stands now.
    let deadline = realm.policy.timeouts.expires_at(&session.times());
    let exp = (now + settings.lifetime).unix().min(deadline.unix());
    let claims = Claims {
        iss: issuer(realm),
        aud: realm.name().to_owned(),
        sub: session.user.clone(),
        sid: session.id.to_string(),
        iat: now.unix(),
        nbf: now.unix(),
        exp,
        amr: session.amr.clone(),
        realm: realm.name().to_owned(),
        email: session.email.clone(),
        name: session.display_name.clone(),
        groups: session.groups.clone(),
        attributes: session.attributes.clone(),
    };
    Ok(Some((ring.sign(&claims), claims)))
}

/// A fresh session JWT for `session`; `None` when the realm does not issue JWTs.
///
/// # Errors
/// `store_unavailable` when the keyring cannot be read or created.
pub async fn issue(app: &App, realm: &Realm, session: &SessionRecord) -> Result<Option<String>, ApiError> {
    Ok(issue_with_claims(app, realm, session).await?.map(|(jwt, _)| jwt))
}

/// Issues a JWT for `session` and, when the realm keeps it in a cookie, queues that cookie
/// (lasting as long as the session cookie would).
///
/// # Errors
/// As [`issue`].
pub async fn issue_and_set(
    app: &App,
    realm: &Realm,
    session: &SessionRecord,
    cookies: &ResponseCookies,
) -> Result<Option<String>, ApiError> {
    let jwt = issue(app, realm, session).await?;
    if let Some(jwt) = &jwt {
        if realm.policy.jwt.cookie {
            let left = app.clock.now().until(realm.policy.timeouts.expires_at(&session.times()));
            cookies.push(&realm.cookie.companion(JWT_SUFFIX).set_cookie(jwt, Some(left)));
        }
    }
    Ok(jwt)
}

/// Checks a presented session JWT against the realm's keyring. Whether its session is still
/// live is checked by the caller (see `sessions::verify_jwt`).
///
/// # Errors
/// `unauthenticated` for anything refused (the reason goes to the debug log), and store errors.
pub async fn check(app: &App, realm: &Realm, jwt: &str) -> Result<Claims, ApiError> {
    if !realm.policy.jwt.enabled {
        return Err(ApiError::Unauthenticated("session JWTs are not enabled in this realm"));
    }
    let now = app.clock.now();
    let ring = app.signing.keyring(&app.store, realm.name(), now).await?;
    let issuer = issuer(realm);
    ring.verify(jwt, &expected(realm, &issuer), now).map_err(|e| {
        tracing::debug!(realm = %realm.name(), reason = %e, "session jwt refused");
        ApiError::Unauthenticated(match e {
            JwtError::Expired => "session JWT has expired",
            _ => "invalid session JWT",
        })
    })
}

/// Routes of the JWKS.
pub(crate) fn router() -> Router<App> {
    Router::new().route("/.well-known/jwks.json", get(jwks))
}

/// `GET /.well-known/jwks.json[?realm=R]`: the public keys that verify session JWTs of the realm
/// picked by the request host (or named by `realm`). Callers: anyone.
#[utoipa::path(get, path = "/.well-known/jwks.json", tag = "jwt",
    params(("realm" = Option<String>, Query, description = "default: the realm the request host picks")),
    responses((status = 200, body = crate::api::openapi::JwksBody), (status = 404, body = crate::api::openapi::ErrorBody)))]
pub(crate) async fn jwks(
    State(app): State<App>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    let named = url::form_urlencoded::parse(query.unwrap_or_default().as_bytes())
        .find(|(k, _)| k == "realm")
        .map(|(_, v)| v.into_owned());
    let realm = match named {
        Some(name) => app.realm(&name).ok_or(ApiError::NotFound("no such realm"))?,
        None => app.realm_for_host(crate::extract::request_host(&headers)),
    };
    let keys = if realm.policy.jwt.enabled {
        app.signing.keyring(&app.store, realm.name(), app.clock.now()).await?.jwks()
    } else {
        Jwks { keys: vec![] }
    };
    let mut response = Json(keys).into_response();
    // Short enough that a rotation reaches caches quickly; the next key is published ahead.
    response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("public, max-age=300"));
    Ok(response)
}
