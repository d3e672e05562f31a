//! The JSON API under `/api/v1`.

mod authenticate;
pub(crate) mod openapi;
mod realms;
mod sessions;
mod tokens;
pub(crate) mod totp;

use crate::error::ApiError;
use crate::extract::attach_cookies;
use crate::state::App;
use axum::Router;
use axum::routing::{delete, get, post, put};

/// Routes of the session API.
pub(crate) fn router() -> Router<App> {
    Router::new()
        .route("/api/openapi.json", get(openapi::openapi_json))
        .route("/api/v1/authenticate", post(authenticate::authenticate))
        .route("/api/v1/sessions/authenticate", post(sessions::authenticate_session))
        .route("/api/v1/sessions/current", get(sessions::current_session).delete(sessions::end_current_session))
        .route("/api/v1/sessions", get(sessions::list_sessions).post(sessions::create_session))
        .route("/api/v1/sessions/revoke", post(sessions::revoke_sessions))
        .route("/api/v1/sessions/{id}", delete(sessions::revoke_session))
        .route("/api/v1/realms/{realm}/cookie-name", put(realms::set_cookie_name).delete(realms::reset_cookie_name))
        .route("/api/v1/tokens", get(tokens::list_tokens).post(tokens::create_token))
        .route("/api/v1/tokens/{id}", delete(tokens::revoke_token))
        .route("/api/v1/totp", get(totp::totp_status).delete(totp::remove))
        .route("/api/v1/totp/enroll", post(totp::enroll))
        .route("/api/v1/totp/confirm", post(totp::confirm))
        .fallback(not_found)
        .layer(axum::middleware::from_fn(attach_cookies))
}

async fn not_found() -> ApiError {
    ApiError::NotFound("no such endpoint")
}
