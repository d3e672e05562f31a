//! SAML 2.0 login providers (`kind: saml`): sessiond as a service provider, on `samael` (its
//! XML signatures checked by xmlsec1).
//!
//! A sign-in is one journey waiting at [`Step::Provider`](sessiond_core::journey::Step): the
//! portal starts it and sends the browser to the identity provider with an `AuthnRequest`
//! (HTTP-Redirect binding) whose `ID` is an HMAC, under the server's key, of the journey's
//! `auth_id`, which only the visitor's browser holds. The identity provider posts the response
//! back to `<portal_url>/login/<id>/acs` (HTTP-POST binding); its `InResponseTo` must be the ID
//! made for the journey of the browser that brings it, so a response planted in another browser,
//! or issued for another sign-in, signs nobody in.
//!
//! The response is believed only when its assertion is signed by a certificate of the identity
//! provider's metadata, with SHA-256 or stronger: samael keeps only what the signature covers
//! (no wrapped or appended elements), then checks the destination and recipient (this ACS), the
//! audience (this entity id), the issuer (the metadata's entity id), the times (90 s to issue,
//! 3 min of clock skew) and the status. Each assertion is accepted once: its ID is remembered
//! until no check could pass it again ([`REPLAY_WINDOW`]), and the journey it answers ends.

use crate::portal::csrf::{self, Purpose};
use crate::providers::{SignInError, portal_path};
use crate::state::{App, Realm};
use crate::users::User;
use samael::metadata::EntityDescriptor;
use samael::schema::Assertion;
use samael::service_provider::{ServiceProvider, ServiceProviderBuilder};
use samael::traits::ToXml as _;
use sessiond_core::provider::{SAML_NAME_ID, SamlProvider, qualified_user, split_groups};
use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};
use tracing::warn;
use url::Url;

/// The HTTP-Redirect binding.
const REDIRECT_BINDING: &str = "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect";
/// How long an accepted assertion's ID is remembered: past samael's issue delay (90 s) and
/// clock skew (180 s), the assertion is refused as too old anyway.
pub const REPLAY_WINDOW: Duration = Duration::from_secs(300);
/// Most assertion IDs remembered per provider; beyond, sign-ins are refused until some expire
/// (a flood of valid assertions means the identity provider itself is misbehaving).
const MAX_REMEMBERED: usize = 100_000;
/// Longest attribute value taken for a name, an email or a display name.
const MAX_VALUE: usize = 256;

/// The identity provider's metadata, as sessiond needs it.
#[derive(Clone, Debug)]
pub struct IdpMetadata {
    descriptor: EntityDescriptor,
    /// The single sign-on service of the HTTP-Redirect binding.
    sso_url: String,
}

impl IdpMetadata {
    /// Reads and checks the metadata in `path`.
    ///
    /// # Errors
    /// A message naming what is missing: the file, an `EntityDescriptor` with an entity id, an
    /// `IDPSSODescriptor` with an HTTP-Redirect single sign-on service, or a signing certificate
    /// (without one, nothing could be checked and every assertion would be believed).
    pub fn read(path: &Path) -> Result<Self, String> {
        let xml = std::fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        Self::parse(&xml)
    }

    /// [`IdpMetadata::read`] of the text of the metadata.
    ///
    /// # Errors
    /// As [`IdpMetadata::read`].
    pub fn parse(xml: &str) -> Result<Self, String> {
        let descriptor: EntityDescriptor =
            xml.parse().map_err(|e| format!("not SAML metadata (an EntityDescriptor): {e}"))?;
        if descriptor.entity_id.as_deref().is_none_or(str::is_empty) {
            return Err("the EntityDescriptor has no entityID".to_owned());
        }
        let probe = ServiceProvider { idp_metadata: descriptor.clone(), ..ServiceProvider::default() };
        let sso_url = probe.sso_binding_location(REDIRECT_BINDING).ok_or_else(|| {
            "the identity provider has no SingleSignOnService with the HTTP-Redirect binding".to_owned()
        })?;
        match probe.idp_signing_certs() {
            Ok(Some(certs)) if !certs.is_empty() => {}
            Ok(_) => return Err("the identity provider's metadata has no signing certificate".to_owned()),
            Err(e) => return Err(format!("a certificate of the metadata cannot be read: {e}")),
        }
        Ok(Self { descriptor, sso_url })
    }

    /// The identity provider's entity id.
    pub fn entity_id(&self) -> &str {
        self.descriptor.entity_id.as_deref().unwrap_or_default()
    }
}

/// The SAML providers of the configuration, by id.
#[derive(Debug, Default)]
pub struct SamlClients(HashMap<String, Arc<SamlClient>>);

impl SamlClients {
    /// Clients for the `kind: saml` providers among `providers`. A provider whose metadata
    /// cannot be read is kept, and answers `provider_unavailable` with the reason logged (the
    /// configuration check refuses such a file before the server starts).
    pub fn new(providers: &[sessiond_core::provider::Provider]) -> Self {
        let clients = providers
            .iter()
            .filter_map(|p| match p {
                sessiond_core::provider::Provider::Saml(s) => Some(s),
                _ => None,
            })
            .map(|s| {
                let idp = IdpMetadata::read(&s.idp_metadata_file);
                if let Err(e) = &idp {
                    warn!(provider = %s.id, error = %e, "SAML identity provider unusable");
                }
                let client = SamlClient { provider: s.clone(), idp, accepted: Mutex::new(HashMap::new()) };
                (s.id.clone(), Arc::new(client))
            })
            .collect();
        Self(clients)
    }

    /// The client of provider `id`.
    pub fn get(&self, id: &str) -> Option<&Arc<SamlClient>> {
        self.0.get(id)
    }
}

/// One configured SAML provider: its settings, its identity provider's metadata, and the IDs of
/// the assertions it accepted lately.
#[derive(Debug)]
pub struct SamlClient {
    provider: SamlProvider,
    idp: Result<IdpMetadata, String>,
    accepted: Mutex<HashMap<String, Instant>>,
}

/// `<portal_url>/login/<id>/acs`: where the identity provider posts the response.
pub fn acs_url(realm: &Realm, id: &str) -> Option<Url> {
    portal_path(realm, &["login", id, "acs"])
}

/// `<portal_url>/login/<id>/metadata`: the service provider's metadata, and its default entity
/// id.
pub fn metadata_url(realm: &Realm, id: &str) -> Option<Url> {
    portal_path(realm, &["login", id, "metadata"])
}

/// The `ID` of the `AuthnRequest` of the journey of `auth_id`: an HMAC of it, after `_` (an
/// XML ID must not start with a digit or `-`).
fn request_id(app: &App, auth_id: &str) -> String {
    format!("_{}", csrf::token(&app.csrf, Purpose::SamlRequest, auth_id.as_bytes()))
}

impl SamlClient {
    /// The provider's settings.
    pub fn provider(&self) -> &SamlProvider {
        &self.provider
    }

    fn idp(&self) -> Result<&IdpMetadata, SignInError> {
        self.idp.as_ref().map_err(|e| SignInError::Unavailable(e.clone()))
    }

    /// This service provider in `realm`, for samael.
    fn service_provider(&self, realm: &Realm) -> Result<ServiceProvider, SignInError> {
        use samael::crypto::AllowedSignatureAlgorithm as Alg;
        let id = &self.provider.id;
        let (Some(acs), Some(metadata)) = (acs_url(realm, id), metadata_url(realm, id)) else {
            return Err(SignInError::Unavailable("the portal URL cannot carry a path".to_owned()));
        };
        let entity_id = self.provider.entity_id.clone().unwrap_or_else(|| metadata.to_string());
        ServiceProviderBuilder::default()
            .entity_id(Some(entity_id))
            .acs_url(Some(acs.to_string()))
            .metadata_url(Some(metadata.to_string()))
            // No single logout service; samael's metadata wants one named, and it is dropped there.
            .slo_url(Some(acs.to_string()))
            .idp_metadata(self.idp()?.descriptor.clone())
            .allow_idp_initiated(false)
            .allowed_signature_algorithms(Some(vec![
                Alg::RsaSha256,
                Alg::RsaSha384,
                Alg::RsaSha512,
                Alg::EcdsaSha256,
                Alg::EcdsaSha384,
                Alg::EcdsaSha512,
            ]))
            .build()
            .map_err(|e| SignInError::Unavailable(e.to_string()))
    }

    /// The service provider's metadata for `realm`: entity id, the ACS (HTTP-POST), signed
    /// assertions wanted.
    ///
    /// # Errors
    /// [`SignInError::Unavailable`] when the identity provider's metadata is unusable.
    pub fn metadata_xml(&self, realm: &Realm) -> Result<String, SignInError> {
        let sp = self.service_provider(realm)?;
        let mut descriptor = sp.metadata().map_err(|e| SignInError::Unavailable(e.to_string()))?;
        for sso in descriptor.sp_sso_descriptors.iter_mut().flatten() {
            sso.single_logout_services = None;
        }
        descriptor.to_string().map_err(|e| SignInError::Unavailable(e.to_string()))
    }

    /// Where to send the browser to sign in, for the journey of `auth_id` in `realm`: the
    /// identity provider's single sign-on service with a deflated, unsigned `AuthnRequest`.
    ///
    /// # Errors
    /// [`SignInError::Unavailable`] when the identity provider's metadata is unusable.
    pub fn authorization_url(&self, app: &App, realm: &Realm, auth_id: &str) -> Result<Url, SignInError> {
        let sp = self.service_provider(realm)?;
        let unavailable = |e: Box<dyn std::error::Error>| SignInError::Unavailable(e.to_string());
        let mut request = sp.make_authentication_request(&self.idp()?.sso_url).map_err(unavailable)?;
        request.id = request_id(app, auth_id);
        request.redirect("").map_err(unavailable)?.ok_or_else(|| SignInError::Unavailable("no SSO URL".to_owned()))
    }

    /// Checks the base64 `SAMLResponse` posted for the journey of `auth_id` and reads the user
    /// from its assertion.
    ///
    /// # Errors
    /// [`SignInError::Refused`] when a check fails (see the module's documentation), the
    /// assertion was accepted before, or it names no usable user.
    pub async fn sign_in(
        &self,
        app: &App,
        realm: &Realm,
        auth_id: &str,
        response: String,
    ) -> Result<User, SignInError> {
        let sp = self.service_provider(realm)?;
        let expected = request_id(app, auth_id);
        // xmlsec1 and libxml2 are blocking C; keep them off the async workers.
        let parsed = tokio::task::spawn_blocking(move || {
            let parsed =
                sp.parse_base64_response(response.trim(), Some(&[expected.as_str()])).map_err(|e| refusal(&*e))?;
            // samael checked every signature and kept what they cover, dropping the signatures:
            // whether the assertion carried one of its own is read from the response as posted.
            if !assertion_signed(response.trim()) {
                return Err(SignInError::refused("saml_assertion_unsigned", "the assertion itself is not signed"));
            }
            Ok(parsed)
        })
        .await
        .map_err(|e| SignInError::Unavailable(e.to_string()))??;
        self.remember(&parsed.id)?;
        self.user_of(&parsed)
    }

    /// Accepts the assertion `id` once within [`REPLAY_WINDOW`].
    fn remember(&self, id: &str) -> Result<(), SignInError> {
        let mut accepted = self.accepted.lock().unwrap_or_else(PoisonError::into_inner);
        let now = Instant::now();
        accepted.retain(|_, at| now.duration_since(*at) < REPLAY_WINDOW);
        if accepted.contains_key(id) {
            return Err(SignInError::refused("saml_replayed", "this assertion was accepted before"));
        }
        if accepted.len() >= MAX_REMEMBERED {
            return Err(SignInError::Unavailable("too many assertions accepted lately".to_owned()));
        }
        accepted.insert(id.to_owned(), now);
        Ok(())
    }

    /// The session user from the assertion, after `claims.*`.
    fn user_of(&self, assertion: &Assertion) -> Result<User, SignInError> {
        let claims = &self.provider.claims;
        let username = if claims.username == SAML_NAME_ID {
            assertion.subject.as_ref().and_then(|s| s.name_id.as_ref()).map(|n| n.value.clone())
        } else {
            attribute_values(assertion, &claims.username).into_iter().next()
        };
        let username = username.and_then(|u| text(&u)).ok_or_else(|| {
            SignInError::refused(
                "saml_no_username",
                format!("the assertion carries no {} to name the user", claims.username),
            )
        })?;
        let name =
            qualified_user(&self.provider.id, &username).map_err(|e| SignInError::refused("saml_no_username", e))?;
        let first = |attribute: &str| attribute_values(assertion, attribute).iter().find_map(|v| text(v));
        let groups: Vec<String> =
            attribute_values(assertion, &claims.groups).into_iter().filter(|g| !g.contains(',')).collect();
        Ok(User {
            name,
            display_name: first(&claims.name),
            email: first(&claims.email),
            groups: split_groups(&groups.join(",")),
            disabled: false,
        })
    }
}

/// Whether the `Assertion` of the base64 response carries its own `Signature` (only called
/// once samael verified every signature of it).
fn assertion_signed(response: &str) -> bool {
    use base64::Engine as _;
    let Ok(bytes) = base64::engine::general_purpose::STANDARD.decode(response) else { return false };
    let Ok(xml) = std::str::from_utf8(&bytes) else { return false };
    xml.parse::<samael::schema::Response>().is_ok_and(|r| r.assertion.is_some_and(|a| a.signature.is_some()))
}

/// The values of the attributes named `name` (by `Name` or `FriendlyName`).
fn attribute_values(assertion: &Assertion, name: &str) -> Vec<String> {
    assertion
        .attribute_statements
        .iter()
        .flatten()
        .flat_map(|statement| &statement.attributes)
        .filter(|a| a.name.as_deref() == Some(name) || a.friendly_name.as_deref() == Some(name))
        .flat_map(|a| &a.values)
        .filter_map(|v| v.value.clone())
        .collect()
}

/// A value as text: trimmed; none when empty, too long or with control characters.
fn text(value: &str) -> Option<String> {
    let value = value.trim();
    (!value.is_empty() && value.len() <= MAX_VALUE && !value.chars().any(char::is_control)).then(|| value.to_owned())
}

/// The audit reason for samael's refusal of a response.
fn refusal(error: &(dyn std::error::Error + 'static)) -> SignInError {
    use samael::service_provider::Error as E;
    let reason = match error.downcast_ref::<E>() {
        Some(E::FailedToValidateSignature) => "saml_signature_invalid",
        Some(E::ResponseInResponseToInvalid { .. } | E::AssertionInResponseToInvalid { .. }) => "saml_not_this_sign_in",
        Some(E::AssertionConditionAudienceRestrictionFailed { .. }) => "saml_audience_mismatch",
        Some(E::DestinationValidationError { .. } | E::AssertionRecipientMismatch { .. }) => "saml_recipient_mismatch",
        Some(E::ResponseIssuerMismatch { .. } | E::AssertionIssuerMismatch { .. }) => "saml_issuer_mismatch",
        Some(
            E::ResponseExpired { .. }
            | E::AssertionExpired { .. }
            | E::AssertionConditionExpired { .. }
            | E::AssertionConditionExpiredBefore { .. }
            | E::AssertionSubjectConfirmationExpired { .. }
            | E::AssertionSubjectConfirmationExpiredBefore { .. },
        ) => "saml_expired",
        Some(E::ResponseBadStatusCode { .. }) => "saml_idp_refused",
        _ => "saml_response_invalid",
    };
    SignInError::refused(reason, error)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client() -> SamlClient {
        SamlClient {
            provider: SamlProvider::new("corp", "/nonexistent.xml"),
            idp: Err("not read".to_owned()),
            accepted: Mutex::new(HashMap::new()),
        }
    }

    #[test]
    fn an_assertion_is_accepted_once() {
        let client = client();
        assert!(client.remember("_a1").is_ok());
        assert!(client.remember("_a2").is_ok());
        match client.remember("_a1") {
            Err(SignInError::Refused { reason, .. }) => assert_eq!(reason, "saml_replayed"),
            other => panic!("{other:?}"),
        }
        // Past the window it is forgotten: every other check refuses it by then.
        client.accepted.lock().unwrap().insert("_a1".to_owned(), Instant::now() - REPLAY_WINDOW);
        assert!(client.remember("_a1").is_ok());
    }

    #[test]
    fn metadata_without_what_a_sign_in_needs_is_refused() {
        assert!(IdpMetadata::parse("not xml").unwrap_err().contains("not SAML metadata"));
        assert!(IdpMetadata::parse("<nope/>").is_err(), "no entity id, no service, no key");
        let bare = r#"<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" entityID="https://idp.example.org"><md:IDPSSODescriptor protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol"><md:SingleSignOnService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect" Location="https://idp.example.org/sso"/></md:IDPSSODescriptor></md:EntityDescriptor>"#;
        assert!(IdpMetadata::parse(bare).unwrap_err().contains("no signing certificate"), "nothing to check against");
        assert!(client().authorization_url_unavailable());
    }

    impl SamlClient {
        fn authorization_url_unavailable(&self) -> bool {
            matches!(self.idp(), Err(SignInError::Unavailable(_)))
        }
    }

    #[test]
    fn attribute_values_are_trimmed_and_bounded() {
        assert_eq!(text("  alice "), Some("alice".to_owned()));
        assert_eq!(text(""), None);
        assert_eq!(text(&"a".repeat(MAX_VALUE + 1)), None);
        assert_eq!(text("a\u{7}b"), None);
    }
}
