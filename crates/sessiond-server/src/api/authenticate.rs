//! `POST /api/v1/authenticate`: login journeys over JSON.
//!
//! An empty body starts a journey and answers its first step (`auth_id` and the callbacks to
//! fill); posting the `auth_id` with the filled callbacks runs that step, which answers the next
//! one or, at the end, the new session. `?journey=step_up` starts a second-factor journey for
//! the session presented with the request. The `auth_id` also travels in the `<name>_authn`
//! cookie (set with every step, deleted when the journey ends), so a browser's script need not
//! keep it. See `crate::journeys` for where the state lives and how replays are refused.

use super::openapi::ErrorBody;
use crate::error::ApiError;
use crate::extract::{JsonBody, RequestContext, ResponseCookies, find_credential};
use crate::journeys;
use crate::login::{self, Answer, Credentials, Outcome};
use crate::sessions::{self, SessionView};
use crate::state::{App, Realm};
use axum::Extension;
use axum::Json;
use axum::extract::{ConnectInfo, RawQuery, State};
use axum::http::HeaderMap;
use serde::{Deserialize, Serialize};
use sessiond_core::journey::{CallbackKind, Purpose, Step};
use sessiond_core::provider::Provider;
use sessiond_core::realm::HttpOnlyMode;
use std::net::SocketAddr;

/// Longest user name accepted.
const MAX_USERNAME: usize = 256;
/// Longest password accepted (argon2 hashes anything, but nobody types more).
const MAX_PASSWORD: usize = 1024;
/// Longest TOTP code looked at (six digits; a little room for a clear error).
const MAX_CODE: usize = 16;

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

/// The filled callbacks, by type; each at most once.
#[derive(Default)]
struct Filled {
    username: Option<serde_json::Value>,
    password: Option<serde_json::Value>,
    remember_me: Option<serde_json::Value>,
    totp: Option<serde_json::Value>,
}

fn fill(callbacks: Vec<CallbackIn>) -> Result<Filled, ApiError> {
    let mut filled = Filled::default();
    for cb in callbacks {
        let slot = match cb.kind.as_str() {
            "username" => &mut filled.username,
            "password" => &mut filled.password,
            "remember_me" => &mut filled.remember_me,
            "totp" => &mut filled.totp,
            _ => return Err(ApiError::BadRequest("unknown callback type".into())),
        };
        if slot.is_some() {
            return Err(ApiError::BadRequest(format!("callback {} given twice", cb.kind)));
        }
        *slot = Some(cb.value.unwrap_or(serde_json::Value::Null));
    }
    Ok(filled)
}

fn text(v: Option<serde_json::Value>, name: &str, max: usize) -> Result<String, ApiError> {
    match v {
        Some(serde_json::Value::String(s)) if !s.is_empty() && s.len() <= max => Ok(s),
        Some(serde_json::Value::String(s)) if s.len() > max => Err(ApiError::BadRequest(format!("{name} is too long"))),
        Some(serde_json::Value::String(_)) | Some(serde_json::Value::Null) | None => {
            Err(ApiError::BadRequest(format!("callback {name} needs a value")))
        }
        Some(_) => Err(ApiError::BadRequest(format!("callback {name} must be a string"))),
    }
}

/// The answer the callbacks give to `step`; callbacks of another step are refused.
fn read_answer(step: Step, filled: Filled) -> Result<Answer, ApiError> {
    match step {
        Step::Password => {
            if filled.totp.is_some() {
                return Err(ApiError::BadRequest("this step asks for username and password, not totp".into()));
            }
            let remember_me = match filled.remember_me {
                None | Some(serde_json::Value::Null) => false,
                Some(serde_json::Value::Bool(b)) => b,
                Some(_) => return Err(ApiError::BadRequest("callback remember_me must be true or false".into())),
            };
            Ok(Answer::Password(Credentials {
                username: text(filled.username, "username", MAX_USERNAME)?,
                password: text(filled.password, "password", MAX_PASSWORD)?,
                remember_me,
            }))
        }
        Step::Totp => {
            if filled.username.is_some() || filled.password.is_some() || filled.remember_me.is_some() {
                return Err(ApiError::BadRequest("this step asks for a totp code only".into()));
            }
            // Codes are often pasted with the app's spaces around them.
            Ok(Answer::Totp(text(filled.totp, "totp", MAX_CODE)?.trim().to_owned()))
        }
        Step::Provider => {
            Err(ApiError::BadRequest("this sign-in waits for the login provider; finish it in the browser".into()))
        }
    }
}

/// The journey `?journey=` asks for.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Requested {
    /// A login, or a step-up.
    Engine(Purpose),
    /// A login through the provider of this id.
    Provider(String),
}

fn requested_journey(app: &App, query: Option<&str>) -> Result<Requested, ApiError> {
    let mut requested = Requested::Engine(Purpose::Login);
    for (key, value) in url::form_urlencoded::parse(query.unwrap_or("").as_bytes()) {
        if key == "journey" {
            requested = match value.as_ref() {
                "login" | "password" => Requested::Engine(Purpose::Login),
                "step_up" => Requested::Engine(Purpose::StepUp),
                id if crate::providers::find(app, id).is_some_and(Provider::has_own_journey) => {
                    Requested::Provider(id.to_owned())
                }
                _ => return Err(ApiError::BadRequest("unknown journey".into())),
            };
        }
    }
    Ok(requested)
}

/// Whether the request comes from a browser's script (fetch metadata or an Origin header), whose
/// answers must not carry tokens when cookies are HttpOnly.
fn from_browser(headers: &HeaderMap) -> bool {
    headers.contains_key("sec-fetch-mode") || headers.contains_key(axum::http::header::ORIGIN)
}

fn step_answer(realm: &Realm, cookies: &ResponseCookies, auth_id: String, step: Step) -> AuthenticateResponse {
    journeys::set_authn_cookie(cookies, realm, &auth_id);
    let callbacks = step
        .callbacks(realm.policy.timeouts.remember_me.is_some())
        .into_iter()
        .map(|kind| CallbackOut { kind })
        .collect();
    AuthenticateResponse::Step { auth_id, callbacks }
}

/// Starts a step-up journey for the session presented with the request: the user must have a
/// TOTP, and the session must still be live.
async fn start_step_up(app: &App, ctx: &RequestContext, headers: &HeaderMap) -> Result<String, ApiError> {
    let realm = &ctx.realm;
    let (credential, _) = find_credential(app, headers, realm)?.ok_or(ApiError::Unauthenticated("not signed in"))?;
    let session = sessions::verify(app, realm, &credential, false, &ResponseCookies::default(), false).await?;
    let (auth_id, _) = login::start_step_up(app, realm, &session)
        .await?
        .ok_or(ApiError::Forbidden("no second factor enrolled: enroll a TOTP first (POST /api/v1/totp/enroll)"))?;
    Ok(auth_id)
}

/// `POST /api/v1/authenticate[?journey=login|step_up]`: starts a journey (empty body), runs
/// its current step (`auth_id` and filled callbacks), or, for a login, runs the password step
/// of a new journey at once (the callbacks alone). Callers: anyone; `step_up` needs a session.
///
/// On success a new session is created with a fresh token; a session token presented with the
/// request is ended first, so a planted token can never become a signed-in session.
#[utoipa::path(post, path = "/api/v1/authenticate", tag = "login",
    params(("journey" = Option<String>, Query, description = "the journey to start: `login` (the default) or `step_up` (a TOTP code for the presented session)")),
    request_body(content = AuthenticateRequest, description = "empty to start; `auth_id` and filled callbacks to run a step"),
    responses((status = 200, body = AuthenticateResponse, description = "the next step, or the new session"),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody, description = "invalid_credentials, journey_expired, journey_replayed, unauthenticated"),
        (status = 403, body = ErrorBody, description = "step_up without an enrolled TOTP"),
        (status = 429, body = ErrorBody, description = "too_many_attempts"),
        (status = 503, body = ErrorBody, description = "store_unavailable, provider_unavailable (an LDAP directory)")))]
pub(crate) async fn authenticate(
    State(app): State<App>,
    ctx: RequestContext,
    cookies: ResponseCookies,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
    connect: Option<Extension<ConnectInfo<SocketAddr>>>,
    JsonBody(request): JsonBody<AuthenticateRequest>,
) -> Result<Json<AuthenticateResponse>, ApiError> {
    let purpose = match requested_journey(&app, query.as_deref())? {
        Requested::Engine(purpose) => purpose,
        Requested::Provider(_) if request.auth_id.is_some() || request.callbacks.is_some() => {
            return Err(ApiError::BadRequest("a provider's journey starts with an empty body".into()));
        }
        Requested::Provider(id) => {
            let provider = crate::providers::find(&app, &id).cloned().ok_or(ApiError::NotFound("no such provider"))?;
            let user = match &provider {
                Provider::Header(header) => {
                    crate::providers::header_identity(&app, &ctx, header, connect.map(|c| c.0.0), &headers)?
                }
                Provider::Oidc(_) | Provider::Saml(_) => {
                    return Err(ApiError::BadRequest(format!(
                        "provider {id} signs in through the browser: send the visitor to the portal's /login/{id}"
                    )));
                }
                _ => return Err(ApiError::NotFound("no such provider")),
            };
            let outcome = login::external_login(&app, &ctx, &headers, &cookies, &provider, user).await?;
            return finish(&app, &ctx, &cookies, &headers, outcome).await;
        }
    };
    let realm = &ctx.realm;
    let now = app.clock.now();
    let callbacks = request.callbacks.filter(|c| !c.is_empty());
    let auth_id = request
        .auth_id
        .or_else(|| callbacks.as_ref().and(journeys::presented_auth_id(&headers, realm).map(str::to_owned)));
    let (journey, callbacks) = match (auth_id, callbacks) {
        (None, None) => {
            let (auth_id, step) = match purpose {
                Purpose::Login => (
                    journeys::start(&app, realm, journeys::new_state(realm, purpose, Step::Password, now)).await?,
                    Step::Password,
                ),
                Purpose::StepUp => (start_step_up(&app, &ctx, &headers).await?, Step::Totp),
            };
            return Ok(Json(step_answer(realm, &cookies, auth_id, step)));
        }
        (Some(_), None) => return Err(ApiError::BadRequest("callbacks are required".into())),
        (None, Some(callbacks)) if purpose == Purpose::Login => {
            (journeys::ephemeral(journeys::new_state(realm, purpose, Step::Password, now)), callbacks)
        }
        (None, Some(_)) => return Err(ApiError::BadRequest("auth_id is required".into())),
        (Some(auth_id), Some(callbacks)) => match journeys::load(&app, realm, &auth_id, now).await {
            Ok(journey) => (journey, callbacks),
            Err(e) => {
                journeys::delete_authn_cookie(&cookies, realm);
                return Err(e);
            }
        },
    };
    let answer = read_answer(journey.state.step, fill(callbacks)?)?;
    match login::run_step(&app, &ctx, &headers, &cookies, journey, answer).await {
        Ok(outcome) => finish(&app, &ctx, &cookies, &headers, outcome).await,
        Err(e) => {
            if matches!(e, ApiError::JourneyExpired | ApiError::JourneyReplayed | ApiError::Unauthenticated(_)) {
                journeys::delete_authn_cookie(&cookies, realm);
            }
            Err(e)
        }
    }
}

/// The answer to a step: the next one, or the new session (with its JWT).
async fn finish(
    app: &App,
    ctx: &RequestContext,
    cookies: &ResponseCookies,
    headers: &HeaderMap,
    outcome: Outcome,
) -> Result<Json<AuthenticateResponse>, ApiError> {
    let realm = &ctx.realm;
    let (credential, record) = match outcome {
        Outcome::Next { auth_id, step } => return Ok(Json(step_answer(realm, cookies, auth_id, step))),
        Outcome::Done { credential, record } => (credential, record),
    };
    journeys::delete_authn_cookie(cookies, realm);
    let session_jwt = crate::jwt::issue_and_set(app, realm, &record, cookies).await?;
    let hide_token = realm.policy.cookie.http_only != HttpOnlyMode::Off && from_browser(headers);
    Ok(Json(AuthenticateResponse::Done {
        session: Box::new(SessionView::new(app, &record, true)),
        session_token: (!hide_token).then(|| credential.expose()),
        session_jwt: session_jwt.filter(|_| !hide_token),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cb(kind: &str, value: serde_json::Value) -> CallbackIn {
        CallbackIn { kind: kind.into(), value: Some(value) }
    }

    fn password(callbacks: Vec<CallbackIn>) -> Result<Answer, ApiError> {
        read_answer(Step::Password, fill(callbacks)?)
    }

    #[test]
    fn callbacks_are_read_strictly() {
        let Answer::Password(ok) = password(vec![cb("username", "alice".into()), cb("password", "pw".into())]).unwrap()
        else {
            panic!("a password answer")
        };
        assert_eq!((ok.username.as_str(), ok.remember_me), ("alice", false));
        assert!(password(vec![cb("username", "alice".into())]).is_err(), "password missing");
        assert!(password(vec![cb("username", 5.into()), cb("password", "pw".into())]).is_err());
        assert!(
            password(vec![cb("username", "a".into()), cb("username", "b".into()), cb("password", "p".into())]).is_err()
        );
        assert!(
            password(vec![cb("username", "a".into()), cb("password", "p".into()), cb("remember_me", "yes".into())])
                .is_err()
        );
        assert!(password(vec![cb("username", "a".repeat(257).into()), cb("password", "p".into())]).is_err());
        assert!(password(vec![cb("totp", "123456".into())]).is_err(), "a code is no answer to the password step");
        assert!(password(vec![cb("otp", "1".into())]).is_err(), "unknown type");
    }

    #[test]
    fn the_totp_step_takes_a_code_alone() {
        let totp = |callbacks| read_answer(Step::Totp, fill(callbacks)?);
        assert!(matches!(totp(vec![cb("totp", "123456".into())]), Ok(Answer::Totp(c)) if c == "123456"));
        assert!(totp(vec![cb("totp", 123456.into())]).is_err(), "a string");
        assert!(totp(vec![cb("totp", "1".repeat(17).into())]).is_err());
        assert!(totp(vec![cb("totp", "123456".into()), cb("password", "pw".into())]).is_err());
        assert!(totp(vec![]).is_err());
    }
}
