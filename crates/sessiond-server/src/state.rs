//! The application state every handler receives: store, clock, realms, users, settings.

use crate::clock::Clock;
use crate::users::Users;
use sessiond_core::cookie::CookieSpec;
use sessiond_core::journey::JourneyCodec;
use sessiond_core::realm::RealmPolicy;
use sessiond_core::redirect::RedirectPolicy;
use sessiond_core::time::Timestamp;
use sessiond_store::{AnyStore, StoreError};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Semaphore;
use url::Url;

/// `server.reauth_window` by default.
pub const DEFAULT_REAUTH_WINDOW: Duration = Duration::from_secs(300);

/// Server-wide settings (the `server` section of the configuration).
#[derive(Clone, Debug)]
pub struct ServerSettings {
    /// Public URL of the portal.
    pub portal_url: Url,
    /// `server.allowed_redirects`.
    pub allowed_redirects: Vec<String>,
    /// Members of this group may use the admin API.
    pub admin_group: String,
    /// Largest request body accepted.
    pub max_body_bytes: usize,
    /// How recent an authentication must be for sensitive actions (`server.reauth_window`):
    /// changing the second factor, signing out every other session.
    pub reauth_window: Duration,
    /// Brute-force regulation of logins.
    pub regulation: sessiond_core::regulation::RegulationPolicy,
    /// Peers whose forwarding headers (`X-Forwarded-*`, `X-Original-*`) are believed.
    pub trusted_proxies: Vec<ipnet::IpNet>,
    /// Login providers beside the users file (`authentication.providers`), in order.
    pub providers: Vec<sessiond_core::provider::Provider>,
    /// `authentication.refresh_interval`: how often each LDAP directory is asked whether the
    /// users with sessions are still there (those it no longer finds lose their sessions).
    /// Default: [`DEFAULT_REFRESH_INTERVAL`].
    pub refresh_interval: Duration,
}

/// The default [`ServerSettings::refresh_interval`]: 5 minutes.
pub const DEFAULT_REFRESH_INTERVAL: Duration = Duration::from_secs(300);

/// A realm with its cookie name resolved.
#[derive(Clone, Debug)]
pub struct Realm {
    /// The validated policy.
    pub policy: RealmPolicy,
    /// The session cookie.
    pub cookie: CookieSpec,
    /// The request header named like the cookie, which may carry the token too.
    pub token_header: Option<axum::http::HeaderName>,
    /// Client-side sessions created at or before this instant (Unix seconds) are refused; see
    /// [`sessiond_store::RealmState::sessions_not_before`].
    pub sessions_not_before: Option<i64>,
}

impl Realm {
    /// The realm with its session cookie called `cookie_name`.
    pub fn new(policy: RealmPolicy, cookie_name: &str) -> Self {
        let cookie = policy.cookie.spec(cookie_name);
        let token_header = axum::http::HeaderName::from_bytes(cookie_name.as_bytes()).ok();
        Self { policy, cookie, token_header, sessions_not_before: None }
    }

    /// The realm with the cookie name and the cut of client-side sessions its stored state
    /// holds.
    pub fn resolved(policy: RealmPolicy, cookie_name: &str, sessions_not_before: Option<i64>) -> Self {
        Self { sessions_not_before, ..Self::new(policy, cookie_name) }
    }

    /// The realm's name.
    pub fn name(&self) -> &str {
        &self.policy.name
    }

    /// Where redirects after login may go for this realm.
    pub fn redirect_policy(&self, allowed: &[String]) -> RedirectPolicy {
        let mut domains: Vec<String> = self.policy.cookie.domain.iter().cloned().collect();
        if let Some(host) = self.policy.portal_url.host_str() {
            domains.push(host.to_owned());
        }
        RedirectPolicy { domains, allowed: allowed.to_vec() }
    }
}

/// Shared state, cheap to clone.
#[derive(Clone)]
pub struct App(Arc<AppInner>);

/// What [`App`] holds.
pub struct AppInner {
    /// Persistence.
    pub store: AnyStore,
    /// The time source.
    pub clock: Arc<dyn Clock>,
    /// Realms, the default one first; swapped whole when a realm's cookie name changes.
    realms: arc_swap::ArcSwap<Vec<Arc<Realm>>>,
    /// Users allowed to log in.
    pub users: Arc<Users>,
    /// Server-wide settings.
    pub settings: ServerSettings,
    /// Seals the state of client-side journeys into their `auth_id`.
    pub journey_codec: JourneyCodec,
    /// Seals users' TOTP secrets at rest.
    pub totp_sealer: sessiond_core::keys::Sealer,
    /// Signs the portal's CSRF tokens.
    pub csrf: sessiond_core::keys::DerivedKey,
    /// Bounds concurrent password hashing (each check takes tens of MiB and a core).
    pub hashing: Semaphore,
    /// Recent login failures.
    pub regulator: crate::regulation::Regulator,
    /// Security events.
    pub audit: crate::audit::AuditLog,
    /// Access rules for forward auth; swapped whole when the configuration is reloaded.
    pub access: arc_swap::ArcSwap<sessiond_core::access::AccessControl>,
    /// What `GET /metrics` reports.
    pub metrics: crate::metrics::Metrics,
    /// The realms' JWT signing keys.
    pub signing: crate::jwt::Signing,
    /// Seals and opens the cookies of client-side sessions.
    pub client_sessions: sessiond_core::client_session::ClientSessionCodec,
    /// The OpenID Connect providers' clients, with what each discovered.
    pub oidc: crate::oidc::OidcClients,
    /// The LDAP providers' directories, with the connections each keeps open.
    pub ldap: crate::ldap::LdapDirectories,
    /// The SAML providers' clients, with their identity providers' metadata.
    #[cfg(feature = "saml")]
    pub saml: crate::saml::SamlClients,
}

impl std::ops::Deref for App {
    type Target = AppInner;
    fn deref(&self) -> &AppInner {
        &self.0
    }
}

/// What resolving a realm's cookie name did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CookieNameOutcome {
    /// The realm.
    pub realm: String,
    /// The name in force.
    pub name: String,
    /// Sessions ended because the name changed.
    pub sessions_ended: Option<usize>,
    /// Whether the name in force is the realm's generated default.
    pub is_default: bool,
    /// The realm's cut of client-side sessions, if a change of name ever made one.
    pub sessions_not_before: Option<i64>,
}

/// Resolves the cookie name of `policy`: the configured one, else the one kept in the store, else a
/// freshly generated default that is kept from then on. A change of name ends every session of
/// the realm, because their cookies are no longer presented under the new name.
///
/// # Errors
/// [`StoreError`] when the realm state cannot be read or written.
pub async fn resolve_cookie_name(
    store: &AnyStore,
    policy: &RealmPolicy,
    now: Timestamp,
) -> Result<CookieNameOutcome, StoreError> {
    let change = match &policy.cookie.name {
        Some(configured) => crate::realms::CookieNameChange::Set(configured.clone()),
        None => crate::realms::CookieNameChange::Keep,
    };
    crate::realms::change_cookie_name(store, &policy.name, &change, now).await
}

impl App {
    /// Builds the state. `realms` must not be empty; the first is the fallback realm. Values
    /// sealed under `previous_secret` (the secret before a rotation) still open.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        store: AnyStore,
        clock: Arc<dyn Clock>,
        realms: Vec<Arc<Realm>>,
        users: Arc<Users>,
        settings: ServerSettings,
        secret: &[u8],
        previous_secret: Option<&[u8]>,
        audit: crate::audit::AuditLog,
    ) -> Self {
        let permits = std::thread::available_parallelism().map_or(2, |n| n.get()).max(1);
        Self(Arc::new(AppInner {
            store,
            clock,
            realms: arc_swap::ArcSwap::from_pointee(realms),
            users,
            journey_codec: JourneyCodec::new(secret, previous_secret),
            totp_sealer: sessiond_core::keys::Sealer::new("sessiond totp secret v1", secret, previous_secret),
            csrf: sessiond_core::keys::DerivedKey::derive(secret, "sessiond csrf v1"),
            hashing: Semaphore::new(permits),
            regulator: crate::regulation::Regulator::new(settings.regulation),
            oidc: crate::oidc::OidcClients::new(&settings.providers),
            ldap: crate::ldap::LdapDirectories::new(&settings.providers),
            #[cfg(feature = "saml")]
            saml: crate::saml::SamlClients::new(&settings.providers),
            settings,
            audit,
            access: arc_swap::ArcSwap::from_pointee(sessiond_core::access::AccessControl::default()),
            metrics: crate::metrics::Metrics::default(),
            signing: crate::jwt::Signing::new(secret, previous_secret),
            client_sessions: sessiond_core::client_session::ClientSessionCodec::new(secret, previous_secret),
        }))
    }

    /// Every realm, the default one first.
    pub fn realms(&self) -> Arc<Vec<Arc<Realm>>> {
        self.realms.load_full()
    }

    /// The realm serving requests for `host` (without port): the one whose cookie domain
    /// domain-matches it (the most specific wins), else the one whose portal is on it, else the
    /// first realm.
    pub fn realm_for_host(&self, host: Option<&str>) -> Arc<Realm> {
        let realms = self.realms.load();
        let fallback = &realms[0];
        let Some(host) = host else { return Arc::clone(fallback) };
        if realms.len() == 1 {
            return Arc::clone(fallback);
        }
        let found = realms
            .iter()
            .filter_map(|r| {
                let d = r.policy.cookie.domain.as_deref()?;
                sessiond_core::cookie::domain_matches(host, d).then_some((d.len(), r))
            })
            .max_by_key(|(len, _)| *len)
            .map(|(_, r)| r)
            .or_else(|| realms.iter().find(|r| r.policy.portal_url.host_str() == Some(host)))
            .unwrap_or(fallback);
        Arc::clone(found)
    }

    /// Puts `realm` in place of the realm of the same name (after its cookie name changed).
    pub fn replace_realm(&self, realm: Realm) {
        let realm = Arc::new(realm);
        self.realms.rcu(|realms| {
            realms
                .iter()
                .map(|r| if r.name() == realm.name() { Arc::clone(&realm) } else { Arc::clone(r) })
                .collect::<Vec<_>>()
        });
    }

    /// Writes an audit event stamped with the current time.
    pub fn audit(&self, kind: crate::audit::AuditKind, detail: &crate::audit::AuditEvent<'_>) {
        self.audit.record(self.clock.now(), kind, detail);
    }

    /// The realm named `name`.
    pub fn realm(&self, name: &str) -> Option<Arc<Realm>> {
        self.realms.load().iter().find(|r| r.name() == name).cloned()
    }
}
