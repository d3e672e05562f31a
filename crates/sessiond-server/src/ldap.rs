//! Passwords checked by an LDAP directory (`kind: ldap` in `authentication.providers`).
//!
//! A check binds as the service account, searches the user with the provider's filter (the
//! typed name escaped, RFC 4515), requires exactly one entry, binds as that entry with the typed
//! password, binds back as the service account and reads the groups and attributes. Every
//! operation (connect, StartTLS, each bind and search) runs under the provider's `timeout`.
//!
//! Each provider keeps a few connections open between checks ([`LdapDirectory`]): a login
//! then costs the binds and searches, not a TCP and TLS handshake. Every use starts with the
//! service account's bind, so what a previous check bound as never carries over; a connection
//! that failed is closed, one idle for longer than [`MAX_IDLE_AGE`] is not reused (directories
//! drop idle connections on their own), and a pooled connection that fails is replaced by a new
//! one once before the directory counts as unavailable (it may have restarted since).
//!
//! An empty password is refused before the directory is asked: an LDAP simple bind with a DN
//! and no password is an *unauthenticated* bind (RFC 4513, 5.1.2) that many directories answer
//! with success.
//!
//! [`LdapDirectory::still_present`] is the background refresh's question: is this user still in
//! the directory (and not disabled)?

use crate::error::ApiError;
use crate::users::User;
use ldap3::{Ldap, LdapConnAsync, LdapConnSettings, LdapError, Scope, SearchEntry, SearchOptions};
use sessiond_core::provider::{LdapGroups, LdapProvider, MAX_GROUPS, group_name_from_dn, qualified_user};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tracing::{debug, instrument, warn};

/// Idle connections kept per provider; a burst of logins opens more, and closes the extra ones.
pub const MAX_IDLE: usize = 4;
/// The longest a connection waits idle and is still reused. Directories close idle connections
/// (OpenLDAP's `idletimeout`, Active Directory's `MaxConnIdleTime` of 15 minutes); under a minute
/// a connection is very likely still open.
pub const MAX_IDLE_AGE: Duration = Duration::from_secs(60);

/// `invalidCredentials` (RFC 4511, appendix A).
const INVALID_CREDENTIALS: u32 = 49;
/// `sizeLimitExceeded`: more entries matched than asked for.
const SIZE_LIMIT_EXCEEDED: u32 = 4;

/// Why the directory gave no answer.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LdapFailure {
    /// Connecting, StartTLS, a bind or a search failed or took longer than `timeout`.
    #[error("LDAP provider {provider}: {what}")]
    Directory {
        /// The provider's id.
        provider: String,
        /// The operation.
        what: &'static str,
        /// The cause.
        #[source]
        source: LdapError,
    },
    /// Connecting (with TLS or StartTLS) took longer than `timeout`.
    #[error("LDAP provider {provider}: {what}: no answer within the timeout")]
    TimedOut {
        /// The provider's id.
        provider: String,
        /// The operation.
        what: &'static str,
    },
    /// The CA file cannot be read or holds no usable certificate.
    #[error("LDAP provider {provider}: ca_file {path}: {reason}")]
    CaFile {
        /// The provider's id.
        provider: String,
        /// The file.
        path: String,
        /// What is wrong.
        reason: String,
    },
}

impl From<LdapFailure> for ApiError {
    fn from(e: LdapFailure) -> Self {
        Self::ProviderUnavailable(Arc::new(e))
    }
}

fn failed<'a>(provider: &'a LdapProvider, what: &'static str) -> impl FnOnce(LdapError) -> LdapFailure + 'a {
    move |source| LdapFailure::Directory { provider: provider.id.clone(), what, source }
}

/// The `kind: ldap` providers of the configuration, by id.
#[derive(Debug, Default)]
pub struct LdapDirectories(HashMap<String, Arc<LdapDirectory>>);

impl LdapDirectories {
    /// A directory for each `kind: ldap` provider among `providers`.
    pub fn new(providers: &[sessiond_core::provider::Provider]) -> Self {
        let directories = providers
            .iter()
            .filter_map(|p| match p {
                sessiond_core::provider::Provider::Ldap(l) => {
                    Some((l.id.clone(), Arc::new(LdapDirectory::new(l.clone()))))
                }
                _ => None,
            })
            .collect();
        Self(directories)
    }

    /// The directory of provider `id`.
    pub fn get(&self, id: &str) -> Option<&Arc<LdapDirectory>> {
        self.0.get(id)
    }
}

/// What a check asks of the directory, on whichever connection it gets.
enum Work<'a> {
    CheckPassword { username: &'a str, password: &'a str },
    StillPresent { username: &'a str },
}

/// The directory's answer to a [`Work`].
enum Done {
    Checked(Option<User>),
    Present(bool),
}

impl Work<'_> {
    async fn run(&self, ldap: &mut Ldap, provider: &LdapProvider) -> Result<Done, ApiError> {
        match *self {
            Self::CheckPassword { username, password } => {
                check_with(ldap, provider, username, password).await.map(Done::Checked)
            }
            Self::StillPresent { username } => {
                service_bind(ldap, provider).await?;
                Ok(Done::Present(find_user(ldap, provider, username).await?.is_some()))
            }
        }
    }
}

/// One LDAP provider: its settings and the connections kept open between checks.
#[derive(Debug)]
pub struct LdapDirectory {
    provider: LdapProvider,
    /// Idle connections, the most recently used last, with when each was put back.
    idle: Mutex<Vec<(Ldap, Instant)>>,
    opened: AtomicU64,
}

impl LdapDirectory {
    /// A directory with no connection open yet.
    pub fn new(provider: LdapProvider) -> Self {
        Self { provider, idle: Mutex::new(Vec::new()), opened: AtomicU64::new(0) }
    }

    /// The provider's settings.
    pub fn provider(&self) -> &LdapProvider {
        &self.provider
    }

    /// How many connections this directory has opened so far.
    pub fn connections_opened(&self) -> u64 {
        self.opened.load(Ordering::Relaxed)
    }

    /// How many connections wait idle for the next check.
    pub fn idle_connections(&self) -> usize {
        self.idle.lock().unwrap_or_else(std::sync::PoisonError::into_inner).len()
    }

    /// Checks `password` for the user typing `username`.
    ///
    /// # Errors
    /// `provider_unavailable` when the directory cannot be reached or does not answer within the
    /// timeout, or refuses the service account. A wrong password, an unknown user, a name that
    /// matches several entries, and an empty password are `Ok(None)`.
    #[instrument(level = "debug", skip_all, fields(provider = %self.provider.id))]
    pub async fn check_password(&self, username: &str, password: &str) -> Result<Option<User>, ApiError> {
        if password.is_empty() || username.trim().is_empty() {
            return Ok(None);
        }
        let work = Work::CheckPassword { username: username.trim(), password };
        match self.with_connection(&work).await? {
            Done::Checked(user) => Ok(user),
            Done::Present(_) => unreachable!("a password check answers with a user"),
        }
    }

    /// Whether `username` (the name after `<id>:`) is still found by the user filter, and is
    /// not disabled.
    ///
    /// # Errors
    /// `provider_unavailable` when the directory does not answer: then nothing must be ended.
    #[instrument(level = "debug", skip_all, fields(provider = %self.provider.id))]
    pub async fn still_present(&self, username: &str) -> Result<bool, ApiError> {
        match self.with_connection(&Work::StillPresent { username }).await? {
            Done::Present(present) => Ok(present),
            Done::Checked(_) => unreachable!("a presence check answers yes or no"),
        }
    }

    /// Does `work` on an idle connection, or on a new one when there is none or the idle one
    /// fails; keeps the connection for the next check when the work succeeds.
    async fn with_connection(&self, work: &Work<'_>) -> Result<Done, ApiError> {
        if let Some(mut ldap) = self.take_idle() {
            match work.run(&mut ldap, &self.provider).await {
                Ok(done) => {
                    self.put_back(ldap);
                    return Ok(done);
                }
                // Closed by the directory, or the directory restarted: a new connection decides.
                Err(e) => debug!(error = %e, "an idle LDAP connection failed; opening a new one"),
            }
        }
        let mut ldap = connect(&self.provider).await?;
        self.opened.fetch_add(1, Ordering::Relaxed);
        match work.run(&mut ldap, &self.provider).await {
            Ok(done) => {
                self.put_back(ldap);
                Ok(done)
            }
            Err(e) => {
                let _ = ldap.unbind().await;
                Err(e)
            }
        }
    }

    fn take_idle(&self) -> Option<Ldap> {
        let mut idle = self.idle.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        while let Some((mut ldap, since)) = idle.pop() {
            if since.elapsed() <= MAX_IDLE_AGE && !ldap.is_closed() {
                return Some(ldap);
            }
            // Dropping the last handle ends the connection's task, which closes the socket.
        }
        None
    }

    fn put_back(&self, ldap: Ldap) {
        let mut idle = self.idle.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if idle.len() < MAX_IDLE {
            idle.push((ldap, Instant::now()));
        }
    }
}

async fn check_with(
    ldap: &mut Ldap,
    provider: &LdapProvider,
    username: &str,
    password: &str,
) -> Result<Option<User>, ApiError> {
    service_bind(ldap, provider).await?;
    let Some(entry) = find_user(ldap, provider, username).await? else {
        debug!("no single directory entry for the name");
        return Ok(None);
    };
    // The directory's spelling names the user: `Alice` and `alice` are one session user.
    let named = first_value(&entry.attrs, &provider.username_attribute).map(|n| qualified_user(&provider.id, n));
    let Some(Ok(name)) = named else {
        warn!(provider = %provider.id, dn = %entry.dn, "directory entry without a usable username_attribute; login refused");
        return Ok(None);
    };
    let bound = ldap.with_timeout(provider.timeout).simple_bind(&entry.dn, password).await;
    match bound.map_err(failed(provider, "binding as the user"))?.rc {
        0 => {}
        INVALID_CREDENTIALS => return Ok(None),
        rc => {
            debug!(rc, "the directory refused the user's bind");
            return Ok(None);
        }
    }
    // Back to the service account: the user may not be allowed to read groups.
    service_bind(ldap, provider).await?;
    let groups = groups_of(ldap, provider, &entry).await?;
    let display_name =
        provider.display_name_attributes.iter().find_map(|a| first_value(&entry.attrs, a)).map(str::to_owned);
    Ok(Some(User {
        name,
        display_name,
        email: first_value(&entry.attrs, &provider.email_attribute).map(str::to_owned),
        groups,
        disabled: false,
    }))
}

async fn connect(provider: &LdapProvider) -> Result<Ldap, ApiError> {
    let mut settings = LdapConnSettings::new().set_conn_timeout(provider.timeout).set_starttls(provider.start_tls);
    if let Some(path) = &provider.ca_file {
        settings = settings.set_config(tls_config(provider, path).await?);
    }
    // The connect timeout covers TCP only; this one covers TLS and StartTLS too.
    let connecting = LdapConnAsync::with_settings(settings, &provider.url);
    let (conn, ldap) = match tokio::time::timeout(provider.timeout, connecting).await {
        Ok(connected) => connected.map_err(failed(provider, "connecting"))?,
        Err(_) => return Err(LdapFailure::TimedOut { provider: provider.id.clone(), what: "connecting" }.into()),
    };
    ldap3::drive!(conn);
    Ok(ldap)
}

async fn tls_config(provider: &LdapProvider, path: &std::path::Path) -> Result<Arc<rustls::ClientConfig>, LdapFailure> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    let bad = |reason: String| LdapFailure::CaFile {
        provider: provider.id.clone(),
        path: path.display().to_string(),
        reason,
    };
    let pem = tokio::fs::read(path).await.map_err(|e| bad(e.to_string()))?;
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(&pem) {
        roots.add(cert.map_err(|e| bad(e.to_string()))?).map_err(|e| bad(e.to_string()))?;
    }
    if roots.is_empty() {
        return Err(bad("no certificate in the file".to_owned()));
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .map_err(|e| bad(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

async fn service_bind(ldap: &mut Ldap, provider: &LdapProvider) -> Result<(), ApiError> {
    let bound =
        ldap.with_timeout(provider.timeout).simple_bind(&provider.bind_dn, provider.bind_password.expose()).await;
    bound.and_then(ldap3::LdapResult::success).map_err(failed(provider, "binding as bind_dn"))?;
    Ok(())
}

/// The one entry the user filter finds for `username`; `None` for none or several.
async fn find_user(ldap: &mut Ldap, provider: &LdapProvider, username: &str) -> Result<Option<SearchEntry>, ApiError> {
    let filter = provider.user_search_filter(username);
    let mut attributes: Vec<&str> = provider.display_name_attributes.iter().map(String::as_str).collect();
    attributes.push(&provider.email_attribute);
    attributes.push(&provider.username_attribute);
    if provider.groups == LdapGroups::MemberOf {
        attributes.push("memberOf");
    }
    let searched = ldap
        .with_search_options(SearchOptions::new().sizelimit(2))
        .with_timeout(provider.timeout)
        .search(&provider.base_dn, Scope::Subtree, &filter, attributes)
        .await
        .map_err(failed(provider, "searching the user"))?;
    let (mut entries, result) = (searched.0, searched.1);
    match result.rc {
        0 if entries.len() == 1 => Ok(entries.pop().map(SearchEntry::construct)),
        0 | SIZE_LIMIT_EXCEEDED => {
            if entries.len() > 1 {
                warn!(provider = %provider.id, "user filter matches several entries; the login is refused");
            }
            Ok(None)
        }
        _ => Err(failed(provider, "searching the user")(LdapError::from(result)).into()),
    }
}

async fn groups_of(ldap: &mut Ldap, provider: &LdapProvider, entry: &SearchEntry) -> Result<Vec<String>, ApiError> {
    let mut groups: Vec<String> = match &provider.groups {
        LdapGroups::MemberOf => {
            values(&entry.attrs, "memberOf").iter().filter_map(|dn| group_name_from_dn(dn)).map(str::to_owned).collect()
        }
        LdapGroups::Search { base_dn, name_attribute, .. } => {
            let filter = provider.group_search_filter(&entry.dn).unwrap_or_default();
            let found = ldap
                .with_timeout(provider.timeout)
                .search(base_dn, Scope::Subtree, &filter, vec![name_attribute.as_str()])
                .await
                .and_then(ldap3::SearchResult::success)
                .map_err(failed(provider, "searching the groups"))?;
            found
                .0
                .into_iter()
                .map(SearchEntry::construct)
                .filter_map(|g| first_value(&g.attrs, name_attribute).map(str::to_owned))
                .collect()
        }
    };
    groups.sort();
    groups.dedup();
    groups.truncate(MAX_GROUPS);
    Ok(groups)
}

/// The values of `attribute`, whatever case the directory wrote its name in.
fn values<'a>(attrs: &'a HashMap<String, Vec<String>>, attribute: &str) -> &'a [String] {
    attrs.iter().find(|(k, _)| k.eq_ignore_ascii_case(attribute)).map_or(&[], |(_, v)| v.as_slice())
}

fn first_value<'a>(attrs: &'a HashMap<String, Vec<String>>, attribute: &str) -> Option<&'a str> {
    values(attrs, attribute).iter().map(|v| v.trim()).find(|v| !v.is_empty())
}
