//! `GET /api/openapi.json`: the OpenAPI 3.1 description of every JSON endpoint, generated from
//! the handlers' `utoipa::path` annotations and the wire types' schemas, so it cannot drift from
//! what the code serves.

use crate::state::App;
use axum::Json;
use axum::extract::State;
use serde::Serialize;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

/// DESIGN.md's error shape.
#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = Error)]
pub(crate) struct ErrorBody {
    /// Machine-readable code: `unauthenticated`, `invalid_credentials`, `forbidden`, ….
    error: String,
    /// For people.
    message: String,
}

/// One public key of the JWKS.
#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = Jwk)]
pub(crate) struct JwkBody {
    /// `OKP`.
    kty: String,
    /// `Ed25519`.
    crv: String,
    /// The public key, base64url.
    x: String,
    /// Key id (RFC 7638 thumbprint).
    kid: String,
    /// `EdDSA`.
    alg: String,
    /// `sig`.
    #[serde(rename = "use")]
    key_use: String,
}

/// `GET /.well-known/jwks.json`.
#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = Jwks)]
pub(crate) struct JwksBody {
    keys: Vec<JwkBody>,
}

struct Credentials;

impl Modify for Credentials {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "session",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "A session token (or an API token) as `Authorization: Bearer`; the realm's session cookie, \
                 or a header named like it, work too.",
                    ))
                    .build(),
            ),
        );
        components.add_security_scheme(
            "cookie",
            SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::with_description(
                "sd_4f9c2a7e",
                "The realm's session cookie; its name is per realm.",
            ))),
        );
    }
}

#[derive(OpenApi)]
#[openapi(
    info(title = "sessiond", description = "Session server: login journeys, sessions, session JWTs, forward auth."),
    paths(
        super::authenticate::authenticate,
        super::sessions::authenticate_session,
        super::sessions::current_session,
        super::sessions::end_current_session,
        super::sessions::list_sessions,
        super::sessions::revoke_session,
        super::sessions::revoke_sessions,
        super::sessions::create_session,
        super::tokens::create_token,
        super::tokens::list_tokens,
        super::tokens::revoke_token,
        super::totp::totp_status,
        super::totp::enroll,
        super::totp::confirm,
        super::totp::remove,
        super::realms::set_cookie_name,
        super::realms::reset_cookie_name,
        crate::jwt::jwks,
        crate::health::healthz,
        crate::health::readyz,
        openapi_json,
    ),
    modifiers(&Credentials)
)]
pub(crate) struct ApiDoc;

/// `GET /api/openapi.json`: this API's OpenAPI description. Callers: anyone.
#[utoipa::path(get, path = "/api/openapi.json", tag = "meta", responses((status = 200, description = "OpenAPI 3.1 document")))]
pub(crate) async fn openapi_json(State(_): State<App>) -> Json<utoipa::openapi::OpenApi> {
    Json(ApiDoc::openapi())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_documented_path_and_schema_is_there() {
        let doc = serde_json::to_value(ApiDoc::openapi()).unwrap();
        let paths = doc["paths"].as_object().unwrap();
        for (path, method) in [
            ("/api/v1/authenticate", "post"),
            ("/api/v1/sessions/authenticate", "post"),
            ("/api/v1/sessions/current", "get"),
            ("/api/v1/sessions/current", "delete"),
            ("/api/v1/sessions", "get"),
            ("/api/v1/sessions", "post"),
            ("/api/v1/sessions/{id}", "delete"),
            ("/api/v1/sessions/revoke", "post"),
            ("/api/v1/tokens", "post"),
            ("/api/v1/tokens", "get"),
            ("/api/v1/tokens/{id}", "delete"),
            ("/api/v1/realms/{realm}/cookie-name", "put"),
            ("/api/v1/realms/{realm}/cookie-name", "delete"),
            ("/.well-known/jwks.json", "get"),
            ("/healthz", "get"),
            ("/readyz", "get"),
            ("/api/openapi.json", "get"),
        ] {
            assert!(paths.get(path).and_then(|p| p.get(method)).is_some(), "{method} {path}");
        }
        // Every route of the JSON API router is described: a new endpoint without an annotation
        // fails here.
        for line in include_str!("mod.rs").lines().filter_map(|l| l.trim().strip_prefix(".route(\"")) {
            let route = line.split('"').next().unwrap();
            assert!(paths.contains_key(route), "{route} is routed but not in the OpenAPI document");
        }
        let schemas = doc["components"]["schemas"].as_object().unwrap();
        for name in ["Session", "User", "Error", "Jwks", "AuthenticateResponse", "CookieNameResponse"] {
            assert!(schemas.contains_key(name), "{name}: {:?}", schemas.keys().collect::<Vec<_>>());
        }
        let session = &schemas["Session"]["properties"];
        for field in ["id", "realm", "user", "amr", "expires_at", "current"] {
            assert!(session.get(field).is_some(), "Session.{field}");
        }
    }
}
