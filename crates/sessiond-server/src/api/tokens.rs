//! The API token endpoints: make, see and revoke API tokens.
//!
//! All of them need a signed-in session (cookie, the header named like it, or a bearer session
//! token). An API token cannot manage API tokens: a leaked token must not be able to mint
//! successors that outlive its revocation, or hide by revoking its siblings.

use super::openapi::ErrorBody;
use crate::api_tokens::{self, Inserted};
use crate::audit::{AuditEvent, AuditKind};
use crate::error::ApiError;
use crate::extract::{Caller, JsonBody};
use crate::state::App;
use axum::Json;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use sessiond_core::api_token::{
    ApiToken, ApiTokenId, ApiTokenRecord, MAX_TOKENS_PER_USER, parse_lifetime, validate_name,
};
use sessiond_store::{EntryKind, Store};
use tracing::info;

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct CreateTokenRequest {
    name: String,
    expires: Option<String>,
}

/// The answer to a creation: the only time the token itself is shown.
#[derive(Serialize, utoipa::ToSchema)]
pub(crate) struct CreatedToken {
    id: String,
    name: String,
    user: String,
    realm: String,
    token: String,
    created_at: String,
    expires_at: Option<String>,
}

/// A token as listed. Never the token or its hash.
#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = ApiToken)]
pub(crate) struct TokenView {
    id: String,
    name: String,
    user: String,
    realm: String,
    created_at: String,
    last_used_at: Option<String>,
    expires_at: Option<String>,
}

impl From<ApiTokenRecord> for TokenView {
    fn from(r: ApiTokenRecord) -> Self {
        Self {
            id: r.id.to_string(),
            name: r.name,
            user: r.user,
            realm: r.realm,
            created_at: r.created_at.rfc3339(),
            last_used_at: r.last_used_at.map(|t| t.rfc3339()),
            expires_at: r.expires_at.map(|t| t.rfc3339()),
        }
    }
}

#[derive(Serialize, utoipa::ToSchema)]
pub(crate) struct TokenList {
    tokens: Vec<TokenView>,
}

/// `POST /api/v1/tokens {name, expires?}`: makes an API token for the caller, in the caller's
/// realm, valid until `expires` from now (duration notation, `90d`) or until revoked. Answers
/// `201` with the token, which is never shown again. Callers: signed in with a session.
#[utoipa::path(post, path = "/api/v1/tokens", tag = "tokens", security(("session" = [])), request_body = CreateTokenRequest,
    responses((status = 201, body = CreatedToken, description = "the token, shown only here"), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub(crate) async fn create_token(
    State(app): State<App>,
    caller: Caller,
    JsonBody(request): JsonBody<CreateTokenRequest>,
) -> Result<(StatusCode, Json<CreatedToken>), ApiError> {
    validate_name(&request.name).map_err(|e| ApiError::BadRequest(e.to_string()))?;
    let lifetime = request.expires.as_deref().map(parse_lifetime).transpose();
    let lifetime = lifetime.map_err(|e| ApiError::BadRequest(e.to_string()))?;
    let session = &caller.session;
    let known = app.users.snapshot().get(&session.user);
    if known.as_ref().is_some_and(|u| u.disabled) {
        return Err(ApiError::Forbidden("this user is disabled"));
    }
    let now = app.clock.now();
    // Users of the users file keep their groups there; the others' are recorded with the token.
    let record = ApiTokenRecord {
        id: ApiTokenId::generate(),
        name: request.name,
        user: session.user.clone(),
        realm: session.realm.clone(),
        created_at: now,
        last_used_at: None,
        expires_at: lifetime.map(|l| now + l),
        groups: known.as_ref().map_or_else(|| session.groups.clone(), |u| u.groups.clone()),
        display_name: known.as_ref().map_or_else(|| session.display_name.clone(), |u| u.display_name.clone()),
        email: known.as_ref().map_or_else(|| session.email.clone(), |u| u.email.clone()),
        from_users_file: known.is_some(),
    };
    let token = ApiToken::generate();
    match api_tokens::insert(&app.store, &token.hash(), &record, now).await? {
        Inserted::Stored => {}
        Inserted::LimitReached => {
            return Err(ApiError::BadRequest(format!(
                "a user may hold at most {MAX_TOKENS_PER_USER} API tokens; revoke one first"
            )));
        }
    }
    info!(token_id = %record.id, user = %record.user, realm = %record.realm, "api token created");
    app.audit(AuditKind::TokenCreated, &AuditEvent::of_token(&record));
    let created = CreatedToken {
        id: record.id.to_string(),
        name: record.name,
        user: record.user,
        realm: record.realm,
        token: token.expose(),
        created_at: record.created_at.rfc3339(),
        expires_at: record.expires_at.map(|t| t.rfc3339()),
    };
    Ok((StatusCode::CREATED, Json(created)))
}

/// `GET /api/v1/tokens[?user=U][&realm=R]`: the caller's API tokens in the caller's realm, oldest
/// first. Callers: signed in with a session; `user` other than oneself and `realm` other than the
/// caller's: admins.
#[utoipa::path(get, path = "/api/v1/tokens", tag = "tokens", security(("session" = [])),
    params(("user" = Option<String>, Query, description = "administrators: another user"),
        ("realm" = Option<String>, Query, description = "administrators: another realm")),
    responses((status = 200, body = TokenList), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub(crate) async fn list_tokens(
    State(app): State<App>,
    caller: Caller,
    RawQuery(query): RawQuery,
) -> Result<Json<TokenList>, ApiError> {
    let (mut user, mut realm) = (None, None);
    for (k, v) in url::form_urlencoded::parse(query.as_deref().unwrap_or("").as_bytes()) {
        let slot = match k.as_ref() {
            "user" => &mut user,
            "realm" => &mut realm,
            _ => return Err(ApiError::BadRequest(format!("unknown query parameter {k:?}"))),
        };
        if slot.replace(v.into_owned()).is_some() {
            return Err(ApiError::BadRequest("query parameter given twice".into()));
        }
    }
    let user = user.unwrap_or_else(|| caller.session.user.clone());
    let realm = realm.unwrap_or_else(|| caller.session.realm.clone());
    if user != caller.session.user || realm != caller.session.realm {
        caller.require_admin()?;
    }
    let tokens = api_tokens::list(&app.store, app.clock.now())
        .await?
        .into_iter()
        .filter(|(_, r)| r.user == user && r.realm == realm)
        .map(|(_, r)| TokenView::from(r))
        .collect();
    Ok(Json(TokenList { tokens }))
}

/// `DELETE /api/v1/tokens/{id}`: revokes an API token; it stops working at once. Callers: its
/// owner (signed in with a session), or an admin. Others get `404`, so ids of other people's
/// tokens cannot be probed.
#[utoipa::path(delete, path = "/api/v1/tokens/{id}", tag = "tokens", security(("session" = [])),
    params(("id" = String, Path, description = "public token id")),
    responses((status = 204, description = "revoked"), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub(crate) async fn revoke_token(
    State(app): State<App>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let not_found = || ApiError::NotFound("no such API token");
    let id = ApiTokenId::parse(&id).map_err(|_| not_found())?;
    let (key, target) = api_tokens::find(&app.store, &id, app.clock.now()).await?.ok_or_else(not_found)?;
    let own = target.user == caller.session.user && target.realm == caller.session.realm;
    if !own && !caller.is_admin {
        return Err(not_found());
    }
    if !app.store.delete_entry(EntryKind::ApiToken, &key).await? {
        return Err(not_found());
    }
    info!(token_id = %target.id, user = %target.user, by = %caller.session.user, "api token revoked");
    app.audit(
        AuditKind::TokenRevoked,
        &AuditEvent { actor: Some(&caller.session.user), ..AuditEvent::of_token(&target) },
    );
    Ok(StatusCode::NO_CONTENT)
}
