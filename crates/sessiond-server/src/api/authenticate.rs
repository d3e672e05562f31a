//! `POST /api/v1/authenticate`: the login journey over JSON.

use super::openapi::ErrorBody;
use crate::error::ApiError;
use crate::extract::{JsonBody, RequestContext, ResponseCookies};
use crate::login::{self, Credentials};
use crate::sessions::SessionView;
use crate::state::App;
use axum::Json;
use axum::extract::{RawQuery, State};
use axum::http::HeaderMap;
use serde::{Deserialize, Serialize};
use sessiond_core::journey::{CallbackKind, password_step};
use sessiond_core::realm::HttpOnlyMode;

/// Longest user name accepted.
const MAX_USERNAME: usize = 256;
/// Longest password accepted (argon2 hashes anything, but nobody types more).
const MAX_PASSWORD: usize = 1024;
/// Journeys this server runs.
const JOURNEYS: [&str; 2] = ["login", "password"];

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct AuthenticateRequest {
    auth_id: Option<String>,
    callbacks: Option<Vec<CallbackIn>>,
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct CallbackIn {
    #[serde(rename = "type")]
    kind: String,
    #[schema(value_type = Object)]
    value: Option<serde_json::Value>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub(crate) struct CallbackOut {
    #[serde(rename = "type")]
    #[schema(value_type = String, example = "username")]
    kind: CallbackKind,
}

#[derive(Serialize, utoipa::ToSchema)]
#[serde(untagged)]
pub(crate) enum AuthenticateResponse {
    Step {
        auth_id: String,
        callbacks: Vec<CallbackOut>,
    },
    Done {
        session: Box<SessionView>,
        #[serde(skip_serializing_if = "Option::is_none")]
        session_token: Option<String>,
        #[serde(skip_serializing_if = "Option::is_none")]
        session_jwt: Option<String>,
    },
}

fn read_callbacks(callbacks: Vec<CallbackIn>) -> Result<Credentials, ApiError> {
    let mut username = None;
    let mut password = None;
    let mut remember_me = None;
    for cb in callbacks {
        let slot = match cb.kind.as_str() {
            "username" => &mut username,
            "password" => &mut password,
            "remember_me" => &mut remember_me,
            _ => return Err(ApiError::BadRequest("unknown callback type".into())),
        };
        if slot.is_some() {
            return Err(ApiError::BadRequest(format!("callback {} given twice", cb.kind)));
        }
        *slot = Some(cb.value.unwrap_or(serde_json::Value::Null));
    }
    let text = |v: Option<serde_json::Value>, name: &str, max: usize| match v {
        Some(serde_json::Value::String(s)) if !s.is_empty() && s.len() <= max => Ok(s),
        Some(serde_json::Value::String(s)) if s.len() > max => Err(ApiError::BadRequest(format!("{name} is too long"))),
        Some(serde_json::Value::String(_)) | Some(serde_json::Value::Null) | None => {
            Err(ApiError::BadRequest(format!("callback {name} needs a value")))
        }
        Some(_) => Err(ApiError::BadRequest(format!("callback {name} must be a string"))),
    };
    let remember_me = match remember_me {
        None | Some(serde_json::Value::Null) => false,
        Some(serde_json::Value::Bool(b)) => b,
        Some(_) => return Err(ApiError::BadRequest("callback remember_me must be true or false".into())),
    };
    Ok(Credentials {
        username: text(username, "username", MAX_USERNAME)?,
        password: text(password, "password", MAX_PASSWORD)?,
        remember_me,
    })
}

fn requested_journey(query: Option<&str>) -> Result<(), ApiError> {
    for (key, value) in url::form_urlencoded::parse(query.unwrap_or("").as_bytes()) {
        if key == "journey" && !JOURNEYS.contains(&value.as_ref()) {
            return Err(ApiError::BadRequest("unknown journey".into()));
        }
    }
    Ok(())
}

/// Whether the request comes from a browser's script (fetch metadata or an Origin header), whose
/// answers must not carry tokens when cookies are HttpOnly.
fn from_browser(headers: &HeaderMap) -> bool {
    headers.contains_key("sec-fetch-mode") || headers.contains_key(axum::http::header::ORIGIN)
}

/// `POST /api/v1/authenticate[?journey=login]`: starts a login (empty body) or completes it
/// (`auth_id` with filled callbacks, or the callbacks alone). Callers: anyone.
///
/// On success a new session is created with a fresh token; a session token presented with the
/// request is ended first, so a planted token can never become a signed-in session.
#[utoipa::path(post, path = "/api/v1/authenticate", tag = "login",
    params(("journey" = Option<String>, Query, description = "the journey to run: `login` (the default)")),
    request_body(content = AuthenticateRequest, description = "empty to start; `auth_id` and filled callbacks to finish"),
    responses((status = 200, body = AuthenticateResponse, description = "the next step, or the new session"),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody, description = "invalid_credentials, journey_expired"),
        (status = 429, body = ErrorBody, description = "too_many_attempts"), (status = 503, body = ErrorBody)))]
pub(crate) async fn authenticate(
    State(app): State<App>,
    ctx: RequestContext,
    cookies: ResponseCookies,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
    JsonBody(request): JsonBody<AuthenticateRequest>,
) -> Result<Json<AuthenticateResponse>, ApiError> {
    requested_journey(query.as_deref())?;
    let realm = &ctx.realm;
    let now = app.clock.now();
    if let Some(auth_id) = &request.auth_id {
        app.tickets.check(realm.name(), auth_id, now).map_err(|_| ApiError::JourneyExpired)?;
    }
    let callbacks = match request.callbacks {
        Some(c) if !c.is_empty() => c,
        _ if request.auth_id.is_some() => return Err(ApiError::BadRequest("callbacks are required".into())),
        _ => {
            let auth_id = app.tickets.issue(realm.name(), now, app.settings.journey_timeout);
            let callbacks = password_step(realm.policy.timeouts.remember_me.is_some())
                .into_iter()
                .map(|kind| CallbackOut { kind })
                .collect();
            return Ok(Json(AuthenticateResponse::Step { auth_id, callbacks }));
        }
    };
    let credentials = read_callbacks(callbacks)?;
    let (token, record) = login::password_login(&app, &ctx, &headers, &cookies, credentials).await?;
    let session_jwt = crate::jwt::issue_and_set(&app, realm, &record, &cookies).await?;
    let hide_token = realm.policy.cookie.http_only != HttpOnlyMode::Off && from_browser(&headers);
    Ok(Json(AuthenticateResponse::Done {
        session: Box::new(SessionView::new(&app, &record, true)),
        session_token: (!hide_token).then(|| token.expose()),
        session_jwt: session_jwt.filter(|_| !hide_token),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cb(kind: &str, value: serde_json::Value) -> CallbackIn {
        CallbackIn { kind: kind.into(), value: Some(value) }
    }

    #[test]
    fn callbacks_are_read_strictly() {
        let ok = read_callbacks(vec![cb("username", "alice".into()), cb("password", "pw".into())]).unwrap();
        assert_eq!((ok.username.as_str(), ok.remember_me), ("alice", false));
        assert!(read_callbacks(vec![cb("username", "alice".into())]).is_err(), "password missing");
        assert!(read_callbacks(vec![cb("username", 5.into()), cb("password", "pw".into())]).is_err());
        assert!(
            read_callbacks(vec![cb("username", "a".into()), cb("username", "b".into()), cb("password", "p".into())])
                .is_err()
        );
        assert!(
            read_callbacks(vec![
                cb("username", "a".into()),
                cb("password", "p".into()),
                cb("remember_me", "yes".into())
            ])
            .is_err()
        );
        assert!(read_callbacks(vec![cb("username", "a".repeat(257).into()), cb("password", "p".into())]).is_err());
        assert!(read_callbacks(vec![cb("totp", "1".into())]).is_err());
    }

    #[test]
    fn only_known_journeys_start() {
        assert!(requested_journey(None).is_ok());
        assert!(requested_journey(Some("journey=login")).is_ok());
        assert!(requested_journey(Some("journey=admin")).is_err());
    }
}
