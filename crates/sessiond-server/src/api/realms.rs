//! The admin API of realms: their cookie names.

use super::openapi::ErrorBody;
use crate::error::ApiError;
use crate::extract::{Caller, JsonBody};
use crate::realms::{self, CookieNameChange, CookieNameRefused};
use crate::state::App;
use axum::Json;
use axum::extract::{Path, State};
use serde::{Deserialize, Serialize};

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct CookieNameRequest {
    name: String,
}

#[derive(Serialize, utoipa::ToSchema)]
pub(crate) struct CookieNameResponse {
    realm: String,
    cookie_name: String,
    default_cookie_name: bool,
    /// How many sessions ended because the name changed (0 when it did not).
    sessions_ended: usize,
}

/// `PUT /api/v1/realms/{realm}/cookie-name {name}`: renames the realm's session cookie, ending
/// every session of the realm (the caller's own too, when it is in that realm). Callers: admins.
#[utoipa::path(put, path = "/api/v1/realms/{realm}/cookie-name", tag = "realms",
    params(("realm" = String, Path)), request_body = CookieNameRequest,
    responses((status = 200, body = CookieNameResponse), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub(crate) async fn set_cookie_name(
    State(app): State<App>,
    caller: Caller,
    Path(realm): Path<String>,
    JsonBody(request): JsonBody<CookieNameRequest>,
) -> Result<Json<CookieNameResponse>, ApiError> {
    caller.require_admin()?;
    change(&app, &caller, &realm, CookieNameChange::Set(request.name)).await
}

/// `DELETE /api/v1/realms/{realm}/cookie-name`: resets the realm's cookie name to its generated
/// default, ending every session of the realm when that changes the name. Callers: admins.
#[utoipa::path(delete, path = "/api/v1/realms/{realm}/cookie-name", tag = "realms",
    params(("realm" = String, Path)),
    responses((status = 200, body = CookieNameResponse), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub(crate) async fn reset_cookie_name(
    State(app): State<App>,
    caller: Caller,
    Path(realm): Path<String>,
) -> Result<Json<CookieNameResponse>, ApiError> {
    caller.require_admin()?;
    change(&app, &caller, &realm, CookieNameChange::Reset).await
}

async fn change(
    app: &App,
    caller: &Caller,
    realm: &str,
    change: CookieNameChange,
) -> Result<Json<CookieNameResponse>, ApiError> {
    let realm = app.realm(realm).ok_or(ApiError::NotFound("no such realm"))?;
    realms::check_change(app, &realm, &change).map_err(|refused| match refused {
        CookieNameRefused::Configured(_) => ApiError::Conflict(refused.to_string()),
        _ => ApiError::BadRequest(refused.to_string()),
    })?;
    let outcome = realms::change_cookie_name(&app.store, realm.name(), &change, app.clock.now()).await?;
    realms::adopt(app, &realm, &outcome, Some(&caller.session.user));
    Ok(Json(CookieNameResponse {
        realm: outcome.realm,
        default_cookie_name: outcome.is_default,
        cookie_name: outcome.name,
        sessions_ended: outcome.sessions_ended.unwrap_or(0),
    }))
}
