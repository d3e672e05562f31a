//! The HTTP surface of sessiond, on axum: the login portal (server-rendered HTML), forward auth
//! for reverse proxies, the JSON session API, and health checks.
//!
//! The server parses requests, picks the realm, asks `sessiond-core` for decisions and
//! `sessiond-store` for records, and writes responses. It holds no rules of its own.
//! Start with [`router`], which builds the whole application from an [`App`]; [`metrics`] keeps
//! the numbers served at `GET /metrics`.

pub mod api_tokens;
pub mod audit;
pub mod clock;
pub mod error;
pub mod extract;
pub mod journeys;
pub mod jwt;
pub mod ldap;
pub mod login;
pub mod metrics;
pub mod oidc;
pub mod providers;
pub mod realms;
pub mod regulation;
pub mod revocation;
#[cfg(feature = "saml")]
pub mod saml;
pub mod sessions;
pub mod state;
pub mod totp;
pub mod users;

mod api;
mod authz;
mod forwarded;
mod health;
mod portal;
mod trace;

pub use state::{App, Realm, ServerSettings};

use audit::{AuditEvent, AuditKind};
use axum::Router;
use axum::extract::DefaultBodyLimit;
use metrics::{EndKind, StoreOp};
use sessiond_store::Store;
use std::time::Duration;
use tower_http::request_id::{PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::TraceLayer;
use tracing::{info, warn};

/// The whole application, `GET /metrics` included.
pub fn router(app: App) -> Router {
    application(app, true)
}

/// The whole application without `GET /metrics`, for when `server.metrics_listen` serves the
/// metrics on an address of their own.
pub fn router_without_metrics(app: App) -> Router {
    application(app, false)
}

/// `GET /metrics` alone, for the listener of `server.metrics_listen`.
pub fn metrics_router(app: App) -> Router {
    metrics::router().with_state(app)
}

fn application(app: App, with_metrics: bool) -> Router {
    let body_limit = app.settings.max_body_bytes;
    let request_id = axum::http::HeaderName::from_static("x-request-id");
    let mut routes =
        Router::new().merge(health::router()).merge(api::router()).merge(portal::router()).merge(jwt::router());
    if with_metrics {
        routes = routes.merge(metrics::router());
    }
    let traced = routes
        .layer(axum::middleware::from_fn_with_state(app.clone(), metrics::track))
        .layer(DefaultBodyLimit::max(body_limit))
        .layer(
            TraceLayer::new_for_http().make_span_with(trace::make_span).on_request(()).on_response(trace::on_response),
        )
        .layer(PropagateRequestIdLayer::new(request_id.clone()))
        .layer(SetRequestIdLayer::new(request_id, trace::CountingIds::default()));
    // Forward auth is the hot path: the proxy asks once per request to every application. It
    // reads no body and logs its own decisions, failures and metrics, so it skips the
    // per-request span, request id and route timing that the rest of the surface pays for.
    Router::new().merge(authz::router()).merge(traced).with_state(app)
}

/// How many expired sessions one sweep deletes at most, so a sweep never holds the store long.
const SWEEP_BATCH: usize = 1000;

/// Runs the background work until `shutdown` resolves: sweeping expired sessions, re-reading
/// the users file so that disabled or removed users lose their sessions within seconds, and,
/// every `authentication.refresh_interval` (from the first round on), asking each LDAP
/// directory whether the users with sessions are still there.
pub async fn background(app: App, every: Duration, shutdown: impl std::future::Future<Output = ()>) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tokio::pin!(shutdown);
    let mut last_refresh: Option<sessiond_core::time::Timestamp> = None;
    loop {
        tokio::select! {
            () = &mut shutdown => break,
            _ = tick.tick() => {}
        }
        sweep(&app).await;
        sweep_entries(&app).await;
        reload_users(&app).await;
        let now = app.clock.now();
        if last_refresh.is_none_or(|last| now >= last + app.settings.refresh_interval) {
            last_refresh = Some(now);
            refresh_providers(&app).await;
        }
        app.signing.refresh(&app).await;
        realms::follow(&app).await;
        app.regulator.prune(app.clock.now());
    }
}

async fn sweep(app: &App) {
    loop {
        let swept =
            app.metrics.store(StoreOp::SweepExpired, app.store.sweep_expired(app.clock.now(), SWEEP_BATCH)).await;
        if let Ok(n) = swept {
            app.metrics.sessions_ended(EndKind::Expired, n);
        }
        match swept {
            Ok(n) if n == SWEEP_BATCH => continue,
            Ok(0) => break,
            Ok(n) => {
                info!(count = n, "expired sessions swept");
                break;
            }
            Err(e) => {
                warn!(error = %e, "sweeping expired sessions failed");
                break;
            }
        }
    }
}

/// Deletes entries past their expiry (revocations of client-side sessions past their deadline,
/// among others), a batch at a time.
async fn sweep_entries(app: &App) {
    loop {
        match app.store.sweep_entries(app.clock.now(), SWEEP_BATCH).await {
            Ok(n) if n == SWEEP_BATCH => continue,
            Ok(_) => break,
            Err(e) => {
                warn!(error = %e, "sweeping expired entries failed");
                break;
            }
        }
    }
}

async fn reload_users(app: &App) {
    let users = app.users.clone();
    let changed = tokio::task::spawn_blocking(move || users.reload_if_changed()).await;
    let gone = match changed {
        Ok(Ok(gone)) => gone,
        Ok(Err(e)) => {
            warn!(error = %e, "users file not reloaded; the previous one stays in force");
            return;
        }
        Err(_) => return,
    };
    for user in gone {
        end_everywhere(app, &user, None).await;
    }
}

/// Ends every session of `user` in every realm, with a `user_disabled` audit event per realm
/// (`reason` says why, when it is not the users file).
async fn end_everywhere(app: &App, user: &str, reason: Option<&'static str>) {
    for realm in app.realms().iter() {
        let client_side = realm.policy.location == sessiond_core::realm::SessionLocation::Client;
        match sessions::end_user_sessions(app, realm, user, None, None).await {
            // A client-side realm cannot count the sessions it refuses from now on.
            Ok(ended) if !ended.is_empty() || client_side => {
                app.metrics.sessions_ended(EndKind::UserDisabled, ended.len());
                info!(user = %user, realm = %realm.name(), count = ended.len(), "sessions ended: user disabled or removed");
                let detail = AuditEvent {
                    realm: Some(realm.name()),
                    user: Some(user),
                    count: Some(ended.len()),
                    reason,
                    ..Default::default()
                };
                app.audit(AuditKind::UserDisabled, &detail);
            }
            Ok(_) => {}
            Err(e) => warn!(error = %e, user = %user, "ending sessions of a disabled user failed"),
        }
    }
}

/// For each LDAP provider, ends the sessions of its users that its directory no longer finds
/// (removed, renamed, or matching `disabled_filter`). Users are those of the sessions the store
/// lists (server-side realms). A directory that does not answer ends nothing.
async fn refresh_providers(app: &App) {
    let ldap: Vec<_> = app
        .settings
        .providers
        .iter()
        .filter_map(|p| match p {
            sessiond_core::provider::Provider::Ldap(l) => app.ldap.get(&l.id),
            _ => None,
        })
        .collect();
    if ldap.is_empty() {
        return;
    }
    let sessions = match app.store.list_sessions(&sessiond_store::SessionFilter::default()).await {
        Ok(sessions) => sessions,
        Err(e) => {
            warn!(error = %e, "LDAP refresh skipped: the store cannot list sessions");
            return;
        }
    };
    for directory in ldap {
        let provider = directory.provider();
        let prefix = format!("{}:", provider.id);
        let mut users: Vec<&str> = sessions.iter().filter_map(|s| s.user.strip_prefix(&prefix)).collect();
        users.sort_unstable();
        users.dedup();
        for name in users {
            match directory.still_present(name).await {
                Ok(true) => {}
                Ok(false) => {
                    info!(provider = %provider.id, user = %name, "LDAP user gone or disabled; ending their sessions");
                    end_everywhere(app, &format!("{prefix}{name}"), Some("ldap_user_gone")).await;
                }
                Err(e) => {
                    warn!(provider = %provider.id, error = %e, "LDAP directory unavailable; refresh skipped, no session ended");
                    break;
                }
            }
        }
    }
}
