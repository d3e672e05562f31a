//! The one error type of the HTTP surface, written as DESIGN.md's `{"error", "message"}`.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use sessiond_store::StoreError;
use std::sync::Arc;

/// Everything a handler can answer instead of success.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ApiError {
    /// No usable credential: none, malformed, unknown, expired or revoked.
    #[error("{0}")]
    Unauthenticated(&'static str),
    /// Username or password wrong (or the user is disabled).
    #[error("invalid username or password")]
    InvalidCredentials,
    /// The login was started too long ago, has ended, or its id was tampered with.
    #[error("the login has expired or ended; start again")]
    JourneyExpired,
    /// An `auth_id` that is no longer the current one: the login has ended.
    #[error("this step of the login was already used; the login has ended, start again")]
    JourneyReplayed,
    /// A sensitive action needs a recent sign-in (`server.reauth_window`).
    #[error("this needs a recent sign-in; enter your password again")]
    ReauthenticationRequired,
    /// Signed in, but not allowed to do this.
    #[error("{0}")]
    Forbidden(&'static str),
    /// Nothing by that id that the caller may see.
    #[error("{0}")]
    NotFound(&'static str),
    /// The request is malformed.
    #[error("{0}")]
    BadRequest(String),
    /// The request cannot be carried out in the present state (a setting fixed by configuration).
    #[error("{0}")]
    Conflict(String),
    /// A client-side session too large for its cookie (`location: client`); never truncated.
    #[error(
        "the session does not fit in a cookie: it would take {0} bytes, at most 4096 are allowed; \
         use fewer groups or attributes, or keep this realm's sessions on the server"
    )]
    SessionTooLarge(usize),
    /// Too many failed logins: the user or the address is refused for a while.
    #[error("too many failed attempts; try again later")]
    TooManyAttempts,
    /// The body is over the limit.
    #[error("request body is too large")]
    PayloadTooLarge,
    /// The store cannot be reached; nothing was decided.
    #[error("session store unavailable")]
    StoreUnavailable(#[source] Arc<StoreError>),
    /// A login provider (an LDAP directory) cannot be reached or did not answer in time;
    /// nothing was decided.
    #[error("login provider unavailable")]
    ProviderUnavailable(#[source] Arc<dyn std::error::Error + Send + Sync>),
    /// A bug or an unexpected failure; details go to the log, never to the client.
    #[error("internal error")]
    Internal(#[source] Arc<dyn std::error::Error + Send + Sync>),
}

impl ApiError {
    /// The stable machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Unauthenticated(_) => "unauthenticated",
            Self::InvalidCredentials => "invalid_credentials",
            Self::JourneyExpired => "journey_expired",
            Self::JourneyReplayed => "journey_replayed",
            Self::ReauthenticationRequired => "reauthentication_required",
            Self::Forbidden(_) => "forbidden",
            Self::NotFound(_) => "not_found",
            Self::BadRequest(_) => "bad_request",
            Self::Conflict(_) => "conflict",
            Self::SessionTooLarge(_) => "session_too_large",
            Self::TooManyAttempts => "too_many_attempts",
            Self::PayloadTooLarge => "payload_too_large",
            Self::StoreUnavailable(_) => "store_unavailable",
            Self::ProviderUnavailable(_) => "provider_unavailable",
            Self::Internal(_) => "internal",
        }
    }

    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        match self {
            Self::Unauthenticated(_)
            | Self::InvalidCredentials
            | Self::JourneyExpired
            | Self::JourneyReplayed
            | Self::ReauthenticationRequired => StatusCode::UNAUTHORIZED,
            Self::Forbidden(_) => StatusCode::FORBIDDEN,
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::BadRequest(_) => StatusCode::BAD_REQUEST,
            Self::Conflict(_) => StatusCode::CONFLICT,
            Self::SessionTooLarge(_) => StatusCode::UNPROCESSABLE_ENTITY,
            Self::TooManyAttempts => StatusCode::TOO_MANY_REQUESTS,
            Self::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Self::StoreUnavailable(_) | Self::ProviderUnavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// Wraps an unexpected failure.
    pub fn internal(e: impl std::error::Error + Send + Sync + 'static) -> Self {
        Self::Internal(Arc::new(e))
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Unavailable { .. } => Self::StoreUnavailable(Arc::new(e)),
            other => Self::Internal(Arc::new(other)),
        }
    }
}

/// The failure behind a 5xx, attached to the response so the trace layer can log it.
#[derive(Clone, Debug)]
pub struct ErrorDetail(pub Arc<dyn std::error::Error + Send + Sync>);

#[derive(serde::Serialize)]
struct ErrorBody<'a> {
    error: &'a str,
    message: String,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody { error: self.code(), message: self.to_string() };
        let mut response = (self.status(), Json(body)).into_response();
        response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        match self {
            Self::Internal(source) | Self::ProviderUnavailable(source) => {
                response.extensions_mut().insert(ErrorDetail(source));
            }
            Self::StoreUnavailable(source) => {
                response.extensions_mut().insert(ErrorDetail(source));
            }
            _ => {}
        }
        response
    }
}
