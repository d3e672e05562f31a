//! Passwords checked by an LDAP directory (`kind: ldap` in `authentication.providers`).
//!
//! Each check opens its own connection (no pool): bind as the service account, search the user
//! with the provider's filter (the typed name escaped, RFC 4515), require exactly one entry, bind
//! as that entry with the typed password, then read its groups and attributes. Every operation
//! (connect, StartTLS, each bind and search) runs under the provider's `timeout`.
//!
//! An empty password is refused before the directory is asked: an LDAP simple bind with a DN
//! and no password is an *unauthenticated* bind (RFC 4513, 5.1.2) that many directories answer
//! with success.
//!
//! [`still_present`] is the background refresh's question: is this user still in the directory
//! (and not disabled)?

use crate::error::ApiError;
use crate::users::User;
use ldap3::{Ldap, LdapConnAsync, LdapConnSettings, LdapError, Scope, SearchEntry, SearchOptions};
use sessiond_core::provider::{LdapGroups, LdapProvider, MAX_GROUPS, group_name_from_dn, qualified_user};
use std::collections::HashMap;
use std::sync::Arc;
use tracing::{debug, instrument, warn};

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

/// Checks `password` for the user typing `username` in `provider`'s directory.
///
/// # Errors
/// `provider_unavailable` when the directory cannot be reached or does not answer within the
/// timeout, or refuses the service account. A wrong password, an unknown user, a name that
/// matches several entries, and an empty password are `Ok(None)`.
#[instrument(level = "debug", skip_all, fields(provider = %provider.id))]
pub async fn check_password(provider: &LdapProvider, username: &str, password: &str) -> Result<Option<User>, ApiError> {
    if password.is_empty() || username.trim().is_empty() {
        return Ok(None);
    }
    let mut ldap = connect(provider).await?;
    let checked = check_with(&mut ldap, provider, username.trim(), password).await;
    let _ = ldap.unbind().await;
    checked
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

/// Whether `username` (the name after `<id>:`) is still found by the user filter, and is not
/// disabled.
///
/// # Errors
/// `provider_unavailable` when the directory does not answer: then nothing must be ended.
#[instrument(level = "debug", skip_all, fields(provider = %provider.id))]
pub async fn still_present(provider: &LdapProvider, username: &str) -> Result<bool, ApiError> {
    let mut ldap = connect(provider).await?;
    let found = async {
        service_bind(&mut ldap, provider).await?;
        Ok::<_, ApiError>(find_user(&mut ldap, provider, username).await?.is_some())
    }
    .await;
    let _ = ldap.unbind().await;
    found
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
