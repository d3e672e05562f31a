//! OpenID Connect login providers (`kind: oidc`), on the `openidconnect` crate.
//!
//! A sign-in is one journey waiting at [`Step::Provider`](sessiond_core::journey::Step): the
//! portal starts it, keeps its `auth_id` in the `<name>_authn` cookie and sends the browser to
//! the provider's authorization endpoint (code flow, PKCE S256). The provider sends it back to
//! `<portal_url>/login/<id>/callback` with a code, which is exchanged with the PKCE verifier and
//! the client secret; the ID token must be signed by one of the provider's published keys and
//! name this issuer, this client, a time now and the journey's nonce.
//!
//! The `state`, the nonce and the PKCE verifier are not stored anywhere: each is an HMAC, under
//! the server's key, of the journey's `auth_id`, which only the visitor's browser holds (the
//! store keeps its hash). So the callback checks the `state` against the browser that started
//! the sign-in (a callback URL planted in another browser fails), and a code stolen from one
//! journey is useless in another (its verifier and nonce differ).

use crate::portal::csrf::{self, Purpose};
use crate::providers::{SignInError, portal_path};
use crate::state::{App, Realm};
use crate::users::User;
use openidconnect::core::{
    CoreAuthDisplay, CoreAuthPrompt, CoreAuthenticationFlow, CoreErrorResponseType, CoreGenderClaim, CoreJsonWebKey,
    CoreJweContentEncryptionAlgorithm, CoreJwsSigningAlgorithm, CoreRevocableToken, CoreRevocationErrorResponse,
    CoreTokenIntrospectionResponse, CoreTokenType,
};
use openidconnect::{
    AdditionalClaims, AuthorizationCode, ClientId, ClientSecret, CsrfToken, EmptyExtraTokenFields, EndpointMaybeSet,
    EndpointNotSet, EndpointSet, IdTokenFields, IssuerUrl, Nonce, OAuth2TokenResponse as _, PkceCodeChallenge,
    PkceCodeVerifier, ProviderMetadataWithLogout, RedirectUrl, RequestTokenError, Scope, StandardErrorResponse,
    StandardTokenResponse, TokenResponse as _, UserInfoClaims,
};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use sessiond_core::provider::{OidcProvider, qualified_user};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tracing::{info, warn};
use url::Url;

/// How long discovered metadata (endpoints and signing keys) is used before it is read again.
const METADATA_TTL: Duration = Duration::from_secs(3600);
/// The soonest metadata is read again because a token named a key we did not have: a provider
/// that rotated its keys is followed, a stream of forged tokens cannot make us hammer it.
const KEY_REFRESH_GAP: Duration = Duration::from_secs(30);
/// Longest claim value taken for a name, an email or a display name.
const MAX_CLAIM: usize = 256;

/// The claims beyond the standard ones (groups, or whatever `claims.*` names).
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
struct OtherClaims {
    #[serde(flatten)]
    claims: Map<String, Value>,
}

impl AdditionalClaims for OtherClaims {}

type Fields = IdTokenFields<
    OtherClaims,
    EmptyExtraTokenFields,
    CoreGenderClaim,
    CoreJweContentEncryptionAlgorithm,
    CoreJwsSigningAlgorithm,
>;
type Tokens = StandardTokenResponse<Fields, CoreTokenType>;
type Client = openidconnect::Client<
    OtherClaims,
    CoreAuthDisplay,
    CoreGenderClaim,
    CoreJweContentEncryptionAlgorithm,
    CoreJsonWebKey,
    CoreAuthPrompt,
    StandardErrorResponse<CoreErrorResponseType>,
    Tokens,
    CoreTokenIntrospectionResponse,
    CoreRevocableToken,
    CoreRevocationErrorResponse,
    EndpointSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointMaybeSet,
    EndpointMaybeSet,
>;

struct Discovered {
    metadata: ProviderMetadataWithLogout,
    fetched: Instant,
}

/// One configured provider: its settings, an HTTP client that never follows redirects, and the
/// metadata discovered last.
pub struct OidcClient {
    provider: OidcProvider,
    http: Result<openidconnect::reqwest::Client, String>,
    discovered: tokio::sync::Mutex<Option<Arc<Discovered>>>,
}

impl std::fmt::Debug for OidcClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OidcClient").field("provider", &self.provider.id).finish_non_exhaustive()
    }
}

/// The OpenID Connect providers of the configuration, by id.
#[derive(Debug, Default)]
pub struct OidcClients(HashMap<String, Arc<OidcClient>>);

impl OidcClients {
    /// Clients for the `kind: oidc` providers among `providers`. A provider whose `ca_file`
    /// cannot be read is kept, and answers `provider_unavailable` with the reason logged (the
    /// configuration check refuses such a file before the server starts).
    pub fn new(providers: &[sessiond_core::provider::Provider]) -> Self {
        let clients = providers
            .iter()
            .filter_map(|p| match p {
                sessiond_core::provider::Provider::Oidc(o) => Some(o),
                _ => None,
            })
            .map(|o| {
                let http = http_client(o);
                if let Err(e) = &http {
                    warn!(provider = %o.id, error = %e, "OpenID provider unusable");
                }
                let client = OidcClient { provider: o.clone(), http, discovered: tokio::sync::Mutex::new(None) };
                (o.id.clone(), Arc::new(client))
            })
            .collect();
        Self(clients)
    }

    /// The client of provider `id`.
    pub fn get(&self, id: &str) -> Option<&Arc<OidcClient>> {
        self.0.get(id)
    }
}

fn http_client(provider: &OidcProvider) -> Result<openidconnect::reqwest::Client, String> {
    // A redirect from the token endpoint could send the client secret and the code elsewhere.
    let mut builder = openidconnect::reqwest::Client::builder()
        .redirect(openidconnect::reqwest::redirect::Policy::none())
        .timeout(provider.timeout)
        .connect_timeout(provider.timeout);
    if let Some(path) = &provider.ca_file {
        let pem = std::fs::read(path).map_err(|e| format!("ca_file {}: {e}", path.display()))?;
        let certificates = openidconnect::reqwest::Certificate::from_pem_bundle(&pem)
            .map_err(|e| format!("ca_file {}: {e}", path.display()))?;
        if certificates.is_empty() {
            return Err(format!("ca_file {}: no PEM certificate in it", path.display()));
        }
        for certificate in certificates {
            builder = builder.add_root_certificate(certificate);
        }
    }
    builder.build().map_err(|e| e.to_string())
}

/// `<portal_url>/login/<id>/callback`: where the provider sends the browser back.
pub fn redirect_uri(realm: &Realm, id: &str) -> Option<Url> {
    portal_path(realm, &["login", id, "callback"])
}

/// `<portal_url>/login`: where the provider sends the browser after signing out there.
pub fn post_logout_uri(realm: &Realm) -> Option<Url> {
    portal_path(realm, &["login"])
}

/// The per-journey secrets, each an HMAC of the `auth_id`.
struct JourneySecrets {
    state: String,
    nonce: String,
    verifier: String,
}

impl JourneySecrets {
    fn of(app: &App, auth_id: &str) -> Self {
        let mac = |purpose| csrf::token(&app.csrf, purpose, auth_id.as_bytes());
        Self { state: mac(Purpose::OidcState), nonce: mac(Purpose::OidcNonce), verifier: mac(Purpose::OidcPkce) }
    }
}

/// Whether `state` came back for the journey of `auth_id`, compared in constant time.
pub fn state_matches(app: &App, auth_id: &str, state: &str) -> bool {
    csrf::verify(&app.csrf, Purpose::OidcState, auth_id.as_bytes(), state)
}

impl OidcClient {
    /// The provider's settings.
    pub fn provider(&self) -> &OidcProvider {
        &self.provider
    }

    fn http(&self) -> Result<&openidconnect::reqwest::Client, SignInError> {
        self.http.as_ref().map_err(|e| SignInError::Unavailable(e.clone()))
    }

    /// The metadata, discovered again when it is older than [`METADATA_TTL`] or, with
    /// `keys_missed`, older than [`KEY_REFRESH_GAP`]. One discovery at a time per provider.
    async fn metadata(&self, keys_missed: bool) -> Result<Arc<Discovered>, SignInError> {
        let mut cached = self.discovered.lock().await;
        if let Some(d) = cached.as_ref() {
            let age = d.fetched.elapsed();
            if age < METADATA_TTL && !(keys_missed && age >= KEY_REFRESH_GAP) {
                return Ok(d.clone());
            }
        }
        let issuer =
            IssuerUrl::new(self.provider.issuer.clone()).map_err(|e| SignInError::Unavailable(e.to_string()))?;
        let metadata = ProviderMetadataWithLogout::discover_async(issuer, self.http()?)
            .await
            .map_err(|e| SignInError::Unavailable(format!("discovery: {}", error_chain(&e))))?;
        info!(provider = %self.provider.id, keys = metadata.jwks().keys().len(), "OpenID provider discovered");
        let discovered = Arc::new(Discovered { metadata, fetched: Instant::now() });
        *cached = Some(discovered.clone());
        Ok(discovered)
    }

    fn client(&self, discovered: &Discovered, realm: &Realm) -> Result<Client, SignInError> {
        let redirect = redirect_uri(realm, &self.provider.id)
            .ok_or_else(|| SignInError::Unavailable("the portal URL cannot carry a path".to_owned()))?;
        let client = Client::from_provider_metadata(
            discovered.metadata.clone(),
            ClientId::new(self.provider.client_id.clone()),
            Some(ClientSecret::new(self.provider.client_secret.expose().to_owned())),
        )
        .set_redirect_uri(RedirectUrl::from_url(redirect));
        Ok(client)
    }

    /// Where to send the browser to sign in, for the journey of `auth_id` in `realm`.
    ///
    /// # Errors
    /// [`SignInError::Unavailable`] when the provider cannot be discovered.
    pub async fn authorization_url(&self, app: &App, realm: &Realm, auth_id: &str) -> Result<Url, SignInError> {
        let discovered = self.metadata(false).await?;
        let client = self.client(&discovered, realm)?;
        let secrets = JourneySecrets::of(app, auth_id);
        let challenge = PkceCodeChallenge::from_code_verifier_sha256(&PkceCodeVerifier::new(secrets.verifier));
        let (state, nonce) = (secrets.state, secrets.nonce);
        let mut request = client
            .authorize_url(
                CoreAuthenticationFlow::AuthorizationCode,
                move || CsrfToken::new(state),
                move || Nonce::new(nonce),
            )
            .set_pkce_challenge(challenge);
        for scope in self.provider.scopes.iter().filter(|s| *s != "openid") {
            request = request.add_scope(Scope::new(scope.clone()));
        }
        let (url, _, _) = request.url();
        Ok(url)
    }

    /// Exchanges the `code` the provider sent back for the journey of `auth_id`, checks the ID
    /// token and reads the user from its claims and the userinfo endpoint's.
    ///
    /// # Errors
    /// [`SignInError::Refused`] when the provider refuses the code, the ID token fails a check
    /// (signature, issuer, audience, time, nonce) or names no usable user;
    /// [`SignInError::Unavailable`] when the provider cannot be reached.
    pub async fn sign_in(&self, app: &App, realm: &Realm, auth_id: &str, code: &str) -> Result<User, SignInError> {
        let secrets = JourneySecrets::of(app, auth_id);
        let mut discovered = self.metadata(false).await?;
        let client = self.client(&discovered, realm)?;
        let tokens = client
            .exchange_code(AuthorizationCode::new(code.to_owned()))
            .map_err(|e| SignInError::Unavailable(e.to_string()))?
            .set_pkce_verifier(PkceCodeVerifier::new(secrets.verifier))
            .request_async(self.http()?)
            .await
            .map_err(|e| match e {
                RequestTokenError::ServerResponse(refusal) => {
                    SignInError::refused("oidc_code_refused", format!("the token endpoint said {}", refusal.error()))
                }
                other => SignInError::Unavailable(format!("token endpoint: {}", error_chain(&other))),
            })?;
        let id_token = tokens
            .id_token()
            .ok_or_else(|| SignInError::refused("oidc_no_id_token", "no ID token came with the code"))?;
        let nonce = Nonce::new(secrets.nonce);
        let verify = |client: &Client| {
            let checks = client.id_token_verifier().require_issuer_match(true).require_audience_match(true);
            id_token.claims(&checks, &nonce).cloned()
        };
        let mut claims = verify(&client);
        if let Err(openidconnect::ClaimsVerificationError::SignatureVerification(_)) = &claims {
            // Perhaps a key published since we read the keys: read them again, once.
            discovered = self.metadata(true).await?;
            claims = verify(&self.client(&discovered, realm)?);
        }
        let claims = claims.map_err(|e| match e {
            openidconnect::ClaimsVerificationError::InvalidNonce(_) => {
                SignInError::refused("oidc_nonce_mismatch", "the ID token's nonce is not this sign-in's")
            }
            other => SignInError::refused("oidc_id_token_invalid", format!("ID token refused: {other}")),
        })?;
        let mut all = to_map(&claims);
        let client = self.client(&discovered, realm)?;
        if let Ok(request) = client.user_info(tokens.access_token().clone(), Some(claims.subject().clone())) {
            let info: UserInfoClaims<OtherClaims, CoreGenderClaim> =
                request.request_async(self.http()?).await.map_err(|e| match e {
                    openidconnect::UserInfoError::ClaimsVerification(e) => {
                        SignInError::refused("oidc_userinfo_invalid", format!("userinfo refused: {e}"))
                    }
                    other => SignInError::Unavailable(format!("userinfo endpoint: {}", error_chain(&other))),
                })?;
            // The ID token, signed, wins over the userinfo answer for a claim both carry.
            for (name, value) in to_map(&info) {
                all.entry(name).or_insert(value);
            }
        }
        self.user_of(&all)
    }

    /// The session user from the claims, after `claims.*`.
    fn user_of(&self, claims: &Map<String, Value>) -> Result<User, SignInError> {
        let names = &self.provider.claims;
        let username = text_claim(claims, &names.username).ok_or_else(|| {
            SignInError::refused("oidc_no_username", format!("the claims carry no {} to name the user", names.username))
        })?;
        let name =
            qualified_user(&self.provider.id, &username).map_err(|e| SignInError::refused("oidc_no_username", e))?;
        let email_verified = !matches!(claims.get("email_verified"), Some(Value::Bool(false)))
            && claims.get("email_verified").and_then(Value::as_str) != Some("false");
        Ok(User {
            name,
            display_name: text_claim(claims, &names.name),
            email: text_claim(claims, &names.email).filter(|_| email_verified),
            groups: groups_claim(claims.get(&names.groups)),
            disabled: false,
        })
    }

    /// Where to send the browser to sign out at the provider too (RP-initiated logout), when the
    /// provider is set to and publishes an `end_session_endpoint`.
    pub async fn logout_url(&self, realm: &Realm) -> Option<Url> {
        if !self.provider.logout {
            return None;
        }
        let discovered = match self.metadata(false).await {
            Ok(d) => d,
            Err(e) => {
                warn!(provider = %self.provider.id, error = %e, "signing out at the OpenID provider skipped");
                return None;
            }
        };
        let mut url = discovered.metadata.additional_metadata().end_session_endpoint.as_ref()?.url().clone();
        url.query_pairs_mut().append_pair("client_id", &self.provider.client_id);
        if let Some(back) = post_logout_uri(realm) {
            url.query_pairs_mut().append_pair("post_logout_redirect_uri", back.as_str());
        }
        Some(url)
    }
}

fn to_map(claims: &impl Serialize) -> Map<String, Value> {
    match serde_json::to_value(claims) {
        Ok(Value::Object(map)) => map,
        _ => Map::new(),
    }
}

/// A claim as text: a string (trimmed) or a number; none when empty, too long or not text.
fn text_claim(claims: &Map<String, Value>, name: &str) -> Option<String> {
    let text = match claims.get(name)? {
        Value::String(s) => s.trim().to_owned(),
        Value::Number(n) => n.to_string(),
        _ => return None,
    };
    (!text.is_empty() && text.len() <= MAX_CLAIM && !text.chars().any(char::is_control)).then_some(text)
}

/// Groups from an array of strings, or one string naming one group.
fn groups_claim(value: Option<&Value>) -> Vec<String> {
    let joined = match value {
        Some(Value::Array(items)) => {
            items.iter().filter_map(Value::as_str).filter(|g| !g.contains(',')).collect::<Vec<_>>().join(",")
        }
        Some(Value::String(one)) if !one.contains(',') => one.clone(),
        _ => String::new(),
    };
    sessiond_core::provider::split_groups(&joined)
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn claims(value: Value) -> Map<String, Value> {
        match value {
            Value::Object(map) => map,
            _ => Map::new(),
        }
    }

    fn client(provider: OidcProvider) -> OidcClient {
        OidcClient { provider, http: Err("unused".into()), discovered: tokio::sync::Mutex::new(None) }
    }

    #[test]
    fn the_user_is_named_by_the_configured_claim_with_the_provider_id() {
        let mut provider = OidcProvider::new("corp", "https://id.example.com", "c", "s");
        let all = claims(json!({"sub": "248289761001", "preferred_username": "alice", "name": "Alice",
            "email": "alice@example.com", "email_verified": true, "groups": ["dev", "ops", 7, "a,b"]}));
        let user = client(provider.clone()).user_of(&all).unwrap();
        assert_eq!(user.name, "corp:248289761001");
        assert_eq!(user.display_name.as_deref(), Some("Alice"));
        assert_eq!(user.email.as_deref(), Some("alice@example.com"));
        assert_eq!(user.groups, ["dev", "ops"], "only strings, and none that would split into two");
        provider.claims.username = "preferred_username".into();
        assert_eq!(client(provider.clone()).user_of(&all).unwrap().name, "corp:alice");
        provider.claims.username = "upn".into();
        assert!(matches!(client(provider).user_of(&all), Err(SignInError::Refused { reason: "oidc_no_username", .. })));
    }

    #[test]
    fn an_unverified_email_is_not_taken() {
        let c = client(OidcProvider::new("corp", "https://id.example.com", "c", "s"));
        for verified in [json!(false), json!("false")] {
            let all = claims(json!({"sub": "1", "email": "ceo@example.com", "email_verified": verified}));
            assert_eq!(c.user_of(&all).unwrap().email, None);
        }
        let all = claims(json!({"sub": "1", "email": "a@example.com"}));
        assert_eq!(c.user_of(&all).unwrap().email.as_deref(), Some("a@example.com"));
    }

    #[test]
    fn claims_that_are_not_usable_text_are_dropped() {
        let all = claims(json!({"a": " x ", "n": 42, "o": {"k": 1}, "e": "", "c": "a\nb", "l": "x".repeat(257)}));
        assert_eq!(text_claim(&all, "a").as_deref(), Some("x"));
        assert_eq!(text_claim(&all, "n").as_deref(), Some("42"));
        for none in ["o", "e", "c", "l", "missing"] {
            assert_eq!(text_claim(&all, none), None, "{none}");
        }
        assert_eq!(groups_claim(Some(&json!("admins"))), ["admins"]);
        assert!(groups_claim(Some(&json!({"admins": true}))).is_empty());
    }
}
