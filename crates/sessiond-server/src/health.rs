//! Liveness and readiness.

use crate::state::App;
use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use serde_json::{Value, json};
use sessiond_store::Store;
use tracing::warn;

pub(crate) fn router() -> Router<App> {
    Router::new().route("/healthz", get(healthz)).route("/readyz", get(readyz))
}

/// `GET /healthz`: the process answers. Callers: anyone.
#[utoipa::path(get, path = "/healthz", tag = "health", responses((status = 200, description = "`{\"status\":\"ok\"}`")))]
pub(crate) async fn healthz() -> Json<Value> {
    Json(json!({"status": "ok"}))
}

/// `GET /readyz`: the store answers too; `503` otherwise. Callers: anyone.
#[utoipa::path(get, path = "/readyz", tag = "health",
    responses((status = 200, description = "`{\"status\":\"ready\",\"store\":…}`"), (status = 503, description = "the store does not answer")))]
pub(crate) async fn readyz(State(app): State<App>) -> (StatusCode, Json<Value>) {
    match app.store.ping().await {
        Ok(()) => (StatusCode::OK, Json(json!({"status": "ready", "store": app.store.backend_name()}))),
        Err(e) => {
            warn!(error = %e, "store not ready");
            (StatusCode::SERVICE_UNAVAILABLE, Json(json!({"status": "unavailable", "store": app.store.backend_name()})))
        }
    }
}
