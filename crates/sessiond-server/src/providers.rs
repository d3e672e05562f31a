//! Identities from login providers other than the users file (`authentication.providers`).
//!
//! A `header` provider believes the user-name header only from a peer in
//! `server.trusted_proxies`: anyone can send `Remote-User`, so from any other peer the header is
//! refused, logged and audited, never passed. The identity then goes through the journey engine
//! like a password login (`crate::login::external_login`): regulation, a TOTP step for users who
//! enrolled one, and a fresh session.

use crate::audit::{AuditEvent, AuditKind};
use crate::error::ApiError;
use crate::extract::RequestContext;
use crate::state::{App, Realm};
use crate::users::User;
use axum::http::HeaderMap;
use sessiond_core::provider::{HeaderProvider, Provider, qualified_user, split_groups};
use std::net::SocketAddr;
use tracing::warn;
use url::Url;

/// The provider `id`, when one is configured.
pub fn find<'a>(app: &'a App, id: &str) -> Option<&'a Provider> {
    app.settings.providers.iter().find(|p| p.id() == id)
}

fn header_text<'h>(headers: &'h HeaderMap, name: Option<&str>) -> Option<&'h str> {
    let value = headers.get(name?)?.to_str().ok()?.trim();
    (!value.is_empty()).then_some(value)
}

/// The user a header provider's upstream names in this request.
///
/// # Errors
/// `forbidden` when the peer is not a trusted proxy but sent the header (logged and audited),
/// `unauthenticated` when a trusted peer sent no usable user name.
pub fn header_identity(
    app: &App,
    ctx: &RequestContext,
    provider: &HeaderProvider,
    peer: Option<SocketAddr>,
    headers: &HeaderMap,
) -> Result<User, ApiError> {
    let name = header_text(headers, Some(&provider.user_header));
    let trusted = peer.is_some_and(|p| crate::forwarded::is_trusted_peer(p, &app.settings.trusted_proxies));
    if !trusted {
        if let Some(name) = name {
            let peer = peer.map_or_else(|| "-".to_owned(), |p| p.ip().to_string());
            warn!(provider = %provider.id, %peer, claimed = %name, "identity header from a peer that is not a trusted proxy refused");
            let event = AuditEvent {
                realm: Some(ctx.realm.name()),
                user: Some(name),
                reason: Some("untrusted_identity_header"),
                ip: ctx.ip.as_deref(),
                user_agent: ctx.user_agent.as_deref(),
                ..AuditEvent::default()
            };
            app.audit(AuditKind::LoginFailed, &event);
        }
        return Err(ApiError::Forbidden("this sign-in works only through the proxy that authenticates you"));
    }
    let name = name.ok_or(ApiError::Unauthenticated("the proxy did not say who you are"))?;
    let user = qualified_user(&provider.id, name).map_err(|e| ApiError::BadRequest(e.to_string()))?;
    Ok(User {
        name: user,
        display_name: header_text(headers, provider.name_header.as_deref()).map(str::to_owned),
        email: header_text(headers, provider.email_header.as_deref()).map(str::to_owned),
        groups: header_text(headers, provider.groups_header.as_deref()).map(split_groups).unwrap_or_default(),
        disabled: false,
    })
}

/// Why a sign-in at an OpenID or SAML identity provider did not end in a user.
#[derive(Debug, thiserror::Error)]
pub enum SignInError {
    /// The provider could not be reached, or answered nonsense: nobody's fault, try later.
    #[error("the identity provider is unavailable: {0}")]
    Unavailable(String),
    /// The answer does not prove who the visitor is: refused, and audited with `reason`.
    #[error("{detail}")]
    Refused {
        /// The audit reason (`oidc_…`, `saml_…`).
        reason: &'static str,
        /// What was wrong, for the log.
        detail: String,
    },
}

impl SignInError {
    pub(crate) fn refused(reason: &'static str, detail: impl std::fmt::Display) -> Self {
        Self::Refused { reason, detail: detail.to_string() }
    }
}

/// `<portal_url>/<segments…>` of `realm`, without query or fragment: where an identity provider
/// sends the browser back (OIDC callback, SAML ACS) or finds sessiond's metadata.
pub(crate) fn portal_path(realm: &Realm, segments: &[&str]) -> Option<Url> {
    let mut url = realm.policy.portal_url.clone();
    url.path_segments_mut().ok()?.pop_if_empty().extend(segments);
    url.set_query(None);
    url.set_fragment(None);
    Some(url)
}
