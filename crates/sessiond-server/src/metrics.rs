//! Prometheus metrics: what sessiond counts and how long it takes, served at `GET /metrics` in
//! the text exposition format (version 0.0.4).
//!
//! Every [`App`] owns its [`Metrics`]; nothing is process-global, so several servers in one
//! process (tests, embedders) never mix their numbers.
//!
//! The registry is our own rather than the `metrics` facade with its Prometheus exporter. The
//! families and their labels are few and known when the server is built, so each one is a fixed
//! slot of atomics: forward auth, which a proxy calls once per request to every application,
//! pays a few relaxed atomic additions per answer, and never a lock, an allocation or a map
//! lookup. The exporter's histograms instead append every sample (with its own clock read) to a
//! bucket that allocates a new block every 64 samples and grows until a scrape or an upkeep task
//! drains it, and a recorder that is not installed globally has to be threaded through every
//! call site anyway. Rendering the text format is a page of code, checked by the tests below.
//!
//! Latencies are measured with the monotonic [`Instant`]: they are durations, not times of day,
//! so the [`Clock`](crate::clock::Clock) that tests move by hand does not apply to them.

use crate::state::App;
use axum::Router;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use sessiond_store::{Store, StoreError};
use std::collections::HashMap;
use std::fmt::Write as _;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{PoisonError, RwLock};
use std::time::{Duration, Instant};
use tracing::warn;

/// The content type of the text exposition format.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// The `route` label of requests that matched no route. Unknown paths never become labels, so
/// a scan of random URLs cannot make the output grow.
const UNMATCHED: &str = "unmatched";

/// Upper bounds of the latency buckets, in nanoseconds: 25 µs to 10 s. Forward auth answers in
/// tens of microseconds, a password check in hundreds of milliseconds.
const BOUNDS_NANOS: [u64; 18] = [
    25_000,
    50_000,
    100_000,
    250_000,
    500_000,
    1_000_000,
    2_500_000,
    5_000_000,
    10_000_000,
    25_000_000,
    50_000_000,
    100_000_000,
    250_000_000,
    500_000_000,
    1_000_000_000,
    2_500_000_000,
    5_000_000_000,
    10_000_000_000,
];

/// The same bounds as Prometheus `le` labels, in seconds.
const BOUNDS_LABELS: [&str; 18] = [
    "0.000025", "0.00005", "0.0001", "0.00025", "0.0005", "0.001", "0.0025", "0.005", "0.01", "0.025", "0.05", "0.1",
    "0.25", "0.5", "1", "2.5", "5", "10",
];

/// A latency histogram with fixed buckets. Each observation adds to one bucket (the last one
/// holds everything above the largest bound) and to the sum; the cumulative counts that
/// Prometheus expects are made when rendering.
#[derive(Default)]
struct Histogram {
    buckets: [AtomicU64; BOUNDS_NANOS.len() + 1],
    sum_nanos: AtomicU64,
}

/// What a histogram held at one moment.
struct HistogramSnapshot {
    buckets: [u64; BOUNDS_NANOS.len() + 1],
    sum_nanos: u64,
}

impl HistogramSnapshot {
    fn count(&self) -> u64 {
        self.buckets.iter().sum()
    }
}

impl Histogram {
    fn observe(&self, elapsed: Duration) {
        let nanos = u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX);
        let index = BOUNDS_NANOS.partition_point(|&bound| bound < nanos);
        if let Some(bucket) = self.buckets.get(index) {
            bucket.fetch_add(1, Ordering::Relaxed);
        }
        self.sum_nanos.fetch_add(nanos, Ordering::Relaxed);
    }

    fn snapshot(&self) -> HistogramSnapshot {
        HistogramSnapshot {
            buckets: std::array::from_fn(|i| self.buckets.get(i).map_or(0, |b| b.load(Ordering::Relaxed))),
            sum_nanos: self.sum_nanos.load(Ordering::Relaxed),
        }
    }
}

/// How a forward-auth request was answered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// `200`: the request may pass.
    Pass,
    /// `401`: sign in first.
    Unauthenticated,
    /// `403`: denied by the rules, or an untrusted or unreadable forward.
    Forbidden,
    /// `302`: a browser sent to the portal.
    Redirect,
    /// Another `4xx`.
    BadRequest,
    /// `5xx`: the session could not be checked (store down, a bug).
    Error,
}

impl Outcome {
    const ALL: [Self; 6] =
        [Self::Pass, Self::Unauthenticated, Self::Forbidden, Self::Redirect, Self::BadRequest, Self::Error];

    /// The outcome of an answer with `status`.
    pub fn of(status: StatusCode) -> Self {
        match status.as_u16() {
            401 => Self::Unauthenticated,
            403 => Self::Forbidden,
            200..=299 => Self::Pass,
            300..=399 => Self::Redirect,
            400..=499 => Self::BadRequest,
            _ => Self::Error,
        }
    }

    fn label(self) -> &'static str {
        match self {
            Self::Pass => "pass",
            Self::Unauthenticated => "unauthenticated",
            Self::Forbidden => "forbidden",
            Self::Redirect => "redirect",
            Self::BadRequest => "bad_request",
            Self::Error => "error",
        }
    }
}

/// The forward-auth endpoints.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ForwardAuthRoute {
    /// nginx `auth_request`.
    AuthRequest,
    /// Traefik and Caddy.
    ForwardAuth,
}

impl ForwardAuthRoute {
    const ALL: [Self; 2] = [Self::AuthRequest, Self::ForwardAuth];

    fn label(self) -> &'static str {
        match self {
            Self::AuthRequest => crate::authz::AUTH_REQUEST,
            Self::ForwardAuth => crate::authz::FORWARD_AUTH,
        }
    }
}

/// How a login attempt ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LoginResult {
    /// A session was created.
    Success,
    /// Wrong password, or an unknown or disabled user.
    InvalidCredentials,
    /// Refused without checking the password: too many recent failures.
    Banned,
}

impl LoginResult {
    const ALL: [Self; 3] = [Self::Success, Self::InvalidCredentials, Self::Banned];

    fn label(self) -> &'static str {
        match self {
            Self::Success => "success",
            Self::InvalidCredentials => "invalid_credentials",
            Self::Banned => "banned",
        }
    }
}

/// How the person proved who they are.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LoginProvider {
    /// User name and password from the users file.
    Password,
    /// A TOTP code, the second step of a login or a step-up.
    Totp,
    /// An identity passed by a trusted upstream in headers.
    Header,
    /// A password checked by an LDAP directory.
    Ldap,
    /// An OpenID Connect provider.
    Oidc,
    /// A SAML 2.0 identity provider.
    Saml,
}

impl LoginProvider {
    const ALL: [Self; 6] = [Self::Password, Self::Totp, Self::Header, Self::Ldap, Self::Oidc, Self::Saml];

    /// The first factor of `user`'s logins: the kind of the provider named in `<id>:<name>`, else
    /// the users file's password.
    pub fn of_user(providers: &[sessiond_core::provider::Provider], user: &str) -> Self {
        use sessiond_core::provider::Provider;
        let Some((id, _)) = user.split_once(':') else { return Self::Password };
        match providers.iter().find(|p| p.id() == id) {
            Some(Provider::Header(_)) => Self::Header,
            Some(Provider::Ldap(_)) => Self::Ldap,
            Some(Provider::Oidc(_)) => Self::Oidc,
            Some(Provider::Saml(_)) => Self::Saml,
            _ => Self::Password,
        }
    }

    fn label(self) -> &'static str {
        match self {
            Self::Password => "password",
            Self::Totp => "totp",
            Self::Header => "header",
            Self::Ldap => "ldap",
            Self::Oidc => "oidc",
            Self::Saml => "saml",
        }
    }
}

/// Why sessions ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EndKind {
    /// The user signed out (or signed in again over the session).
    Logout,
    /// The user ended one of their other sessions.
    Revoke,
    /// The user signed out everywhere (else).
    RevokeAll,
    /// An administrator ended someone's sessions.
    Admin,
    /// The absolute or idle deadline passed (found on use or swept).
    Expired,
    /// The user was disabled or removed from the users file.
    UserDisabled,
}

impl EndKind {
    const ALL: [Self; 6] =
        [Self::Logout, Self::Revoke, Self::RevokeAll, Self::Admin, Self::Expired, Self::UserDisabled];

    fn label(self) -> &'static str {
        match self {
            Self::Logout => "logout",
            Self::Revoke => "revoke",
            Self::RevokeAll => "revoke_all",
            Self::Admin => "admin",
            Self::Expired => "expired",
            Self::UserDisabled => "user_disabled",
        }
    }
}

/// What a regulation ban is on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BanKind {
    /// A user name.
    User,
    /// A client address.
    Address,
}

impl BanKind {
    const ALL: [Self; 2] = [Self::User, Self::Address];

    fn label(self) -> &'static str {
        match self {
            Self::User => "user",
            Self::Address => "address",
        }
    }
}

impl From<crate::regulation::Banned> for BanKind {
    fn from(banned: crate::regulation::Banned) -> Self {
        match banned {
            crate::regulation::Banned::User => Self::User,
            crate::regulation::Banned::Address => Self::Address,
        }
    }
}

/// A store operation, as timed and counted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StoreOp {
    /// Finding a session by its token (every verify).
    SessionByToken,
    /// Finding a session by its public id.
    SessionById,
    /// Storing a new session.
    CreateSession,
    /// Recording activity on a session.
    TouchSession,
    /// Deleting one session.
    DeleteSession,
    /// Deleting a user's sessions.
    DeleteUserSessions,
    /// Listing sessions.
    ListSessions,
    /// Sweeping expired sessions.
    SweepExpired,
    /// Reading a realm's session count.
    SessionCount,
}

impl StoreOp {
    const ALL: [Self; 9] = [
        Self::SessionByToken,
        Self::SessionById,
        Self::CreateSession,
        Self::TouchSession,
        Self::DeleteSession,
        Self::DeleteUserSessions,
        Self::ListSessions,
        Self::SweepExpired,
        Self::SessionCount,
    ];

    fn label(self) -> &'static str {
        match self {
            Self::SessionByToken => "session_by_token",
            Self::SessionById => "session_by_id",
            Self::CreateSession => "create_session",
            Self::TouchSession => "touch_session",
            Self::DeleteSession => "delete_session",
            Self::DeleteUserSessions => "delete_user_sessions",
            Self::ListSessions => "list_sessions",
            Self::SweepExpired => "sweep_expired",
            Self::SessionCount => "session_count",
        }
    }
}

#[derive(Default)]
struct StoreOpStats {
    latency: Histogram,
    errors: AtomicU64,
}

/// Request methods that get their own label; the rest are `other`.
const METHODS: [&str; 6] = ["GET", "HEAD", "POST", "PUT", "DELETE", "other"];

fn method_index(method: &Method) -> usize {
    match *method {
        Method::GET => 0,
        Method::HEAD => 1,
        Method::POST => 2,
        Method::PUT => 3,
        Method::DELETE => 4,
        _ => 5,
    }
}

/// Status classes `1xx` to `5xx`.
const CLASSES: [&str; 5] = ["1xx", "2xx", "3xx", "4xx", "5xx"];

fn class_index(status: StatusCode) -> usize {
    usize::from(status.as_u16() / 100).clamp(1, CLASSES.len()) - 1
}

/// Latencies of one route, by method and status class.
#[derive(Default)]
struct RouteStats([[Histogram; CLASSES.len()]; METHODS.len()]);

/// The counters and histograms of one [`App`]. All zero when the app starts.
#[derive(Default)]
pub struct Metrics {
    forward_auth: [[Histogram; Outcome::ALL.len()]; ForwardAuthRoute::ALL.len()],
    /// Route template → its latencies. Routes are added on their first request; their number is
    /// bounded by the router.
    http: RwLock<HashMap<Box<str>, RouteStats>>,
    logins: [[AtomicU64; LoginResult::ALL.len()]; LoginProvider::ALL.len()],
    ended: [AtomicU64; EndKind::ALL.len()],
    bans: [AtomicU64; BanKind::ALL.len()],
    store: [StoreOpStats; StoreOp::ALL.len()],
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

fn add(counter: Option<&AtomicU64>, n: u64) {
    if let Some(counter) = counter {
        counter.fetch_add(n, Ordering::Relaxed);
    }
}

impl Metrics {
    /// Counts a forward-auth answer with `status` that took `elapsed`.
    pub fn forward_auth(&self, route: ForwardAuthRoute, status: StatusCode, elapsed: Duration) {
        let outcome = Outcome::of(status);
        if let Some(histogram) = self.forward_auth.get(route as usize).and_then(|r| r.get(outcome as usize)) {
            histogram.observe(elapsed);
        }
    }

    /// Counts a request to `route` (a route template, or `None` when no route matched).
    pub fn http(&self, route: Option<&str>, method: &Method, status: StatusCode, elapsed: Duration) {
        let route = route.unwrap_or(UNMATCHED);
        let (m, c) = (method_index(method), class_index(status));
        let observe = |stats: &RouteStats| {
            if let Some(histogram) = stats.0.get(m).and_then(|by_class| by_class.get(c)) {
                histogram.observe(elapsed);
            }
        };
        {
            let routes = self.http.read().unwrap_or_else(PoisonError::into_inner);
            if let Some(stats) = routes.get(route) {
                observe(stats);
                return;
            }
        }
        let mut routes = self.http.write().unwrap_or_else(PoisonError::into_inner);
        observe(routes.entry(route.into()).or_default());
    }

    /// Counts a login attempt.
    pub fn login(&self, provider: LoginProvider, result: LoginResult) {
        add(self.logins.get(provider as usize).and_then(|p| p.get(result as usize)), 1);
    }

    /// Counts `n` sessions that ended.
    pub fn sessions_ended(&self, kind: EndKind, n: usize) {
        add(self.ended.get(kind as usize), u64::try_from(n).unwrap_or(u64::MAX));
    }

    /// Counts a regulation ban.
    pub fn banned(&self, kind: impl Into<BanKind>) {
        add(self.bans.get(kind.into() as usize), 1);
    }

    /// Runs a store call, timing it and counting it when it fails.
    ///
    /// # Errors
    /// The call's own error, unchanged.
    pub async fn store<T>(
        &self,
        op: StoreOp,
        call: impl Future<Output = Result<T, StoreError>>,
    ) -> Result<T, StoreError> {
        let started = Instant::now();
        let result = call.await;
        if let Some(stats) = self.store.get(op as usize) {
            stats.latency.observe(started.elapsed());
            if result.is_err() {
                stats.errors.fetch_add(1, Ordering::Relaxed);
            }
        }
        result
    }
}

/// `GET /metrics` alone.
pub(crate) fn router() -> Router<App> {
    Router::new().route("/metrics", get(metrics))
}

/// `GET /metrics`: every metric in the Prometheus text format. Callers: anyone who can reach the
/// listener; bind `server.metrics_listen` to a private address in production.
async fn metrics(State(app): State<App>) -> Response {
    let body = render(&app).await;
    let mut response = body.into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// Times every request of the routes it wraps, by route template, method and status class.
pub(crate) async fn track(State(app): State<App>, request: Request, next: Next) -> Response {
    let started = Instant::now();
    let route = request.extensions().get::<MatchedPath>().cloned();
    let method = request.method().clone();
    let response = next.run(request).await;
    app.metrics.http(route.as_ref().map(MatchedPath::as_str), &method, response.status(), started.elapsed());
    response
}

/// The whole exposition: the counters as they are, and the gauges read now.
pub(crate) async fn render(app: &App) -> String {
    // The store is asked first, so this scrape's own reads show in the store families below.
    let realms = app.realms();
    let mut active = Vec::with_capacity(realms.len());
    for realm in realms.iter() {
        match app.metrics.store(StoreOp::SessionCount, app.store.session_count(realm.name())).await {
            Ok(Some(count)) => active.push((realm.name(), count)),
            Ok(None) => {}
            Err(error) => warn!(%error, realm = %realm.name(), "session count not read for metrics"),
        }
    }
    let mut out = Text::default();
    app.metrics.write(&mut out);

    out.family(
        "sessiond_active_sessions",
        "gauge",
        "Sessions stored per realm, including those past their deadline until the sweep removes them.",
    );
    for (realm, count) in active {
        out.sample("sessiond_active_sessions", &[("realm", realm)], count);
    }
    if let Some(cache) = app.store.cache_stats() {
        let name = "sessiond_session_cache_lookups_total";
        out.family(
            name,
            "counter",
            "Session lookups by token answered by the store's in-process cache (hit) or by the backend (miss).",
        );
        out.sample(name, &[("result", "hit")], cache.hits);
        out.sample(name, &[("result", "miss")], cache.misses);
    }
    out.family("sessiond_build_info", "gauge", "Always 1; the version of the running sessiond.");
    out.sample("sessiond_build_info", &[("version", env!("CARGO_PKG_VERSION"))], 1);
    out.0
}

impl Metrics {
    fn write(&self, out: &mut Text) {
        let name = "sessiond_forward_auth_requests_total";
        out.family(name, "counter", "Forward-auth answers by route and outcome.");
        for route in ForwardAuthRoute::ALL {
            for outcome in Outcome::ALL {
                let count = self.forward_auth_histogram(route, outcome).map_or(0, |h| h.snapshot().count());
                out.sample(name, &[("route", route.label()), ("outcome", outcome.label())], count);
            }
        }
        let name = "sessiond_forward_auth_duration_seconds";
        out.family(name, "histogram", "Time to answer forward auth, by route and outcome.");
        for route in ForwardAuthRoute::ALL {
            for outcome in Outcome::ALL {
                if let Some(histogram) = self.forward_auth_histogram(route, outcome) {
                    let labels = [("route", route.label()), ("outcome", outcome.label())];
                    out.histogram(name, &labels, &histogram.snapshot());
                }
            }
        }

        let series = self.http_series();
        let name = "sessiond_http_requests_total";
        out.family(name, "counter", "Requests other than forward auth, by route template, method and status class.");
        for s in &series {
            out.sample(name, &s.labels(), s.snapshot.count());
        }
        let name = "sessiond_http_request_duration_seconds";
        out.family(
            name,
            "histogram",
            "Time to answer requests other than forward auth, by route template, method and status class.",
        );
        for s in &series {
            out.histogram(name, &s.labels(), &s.snapshot);
        }

        let name = "sessiond_logins_total";
        out.family(name, "counter", "Login attempts by provider and result.");
        for provider in LoginProvider::ALL {
            for result in LoginResult::ALL {
                let count = self.logins.get(provider as usize).and_then(|p| p.get(result as usize));
                out.sample(name, &[("provider", provider.label()), ("result", result.label())], load(count));
            }
        }
        let name = "sessiond_sessions_ended_total";
        out.family(
            name,
            "counter",
            "Sessions ended, by why: logout, revoke, revoke_all, admin, expired, user_disabled.",
        );
        for kind in EndKind::ALL {
            out.sample(name, &[("kind", kind.label())], load(self.ended.get(kind as usize)));
        }
        let name = "sessiond_regulation_bans_total";
        out.family(name, "counter", "Bans after repeated login failures, by what was banned.");
        for kind in BanKind::ALL {
            out.sample(name, &[("on", kind.label())], load(self.bans.get(kind as usize)));
        }

        let name = "sessiond_store_operation_duration_seconds";
        out.family(name, "histogram", "Time the store took, by operation (failed calls included).");
        for op in StoreOp::ALL {
            if let Some(stats) = self.store.get(op as usize) {
                out.histogram(name, &[("operation", op.label())], &stats.latency.snapshot());
            }
        }
        let name = "sessiond_store_errors_total";
        out.family(name, "counter", "Store calls that failed, by operation.");
        for op in StoreOp::ALL {
            out.sample(name, &[("operation", op.label())], load(self.store.get(op as usize).map(|s| &s.errors)));
        }
    }

    /// Every route, method and status class that saw a request, ordered by route.
    fn http_series(&self) -> Vec<HttpSeries> {
        let mut series = Vec::new();
        let http = self.http.read().unwrap_or_else(PoisonError::into_inner);
        for (route, stats) in http.iter() {
            for (method, by_class) in METHODS.iter().zip(&stats.0) {
                for (status, histogram) in CLASSES.iter().zip(by_class) {
                    let snapshot = histogram.snapshot();
                    if snapshot.count() > 0 {
                        series.push(HttpSeries { route: route.to_string(), method, status, snapshot });
                    }
                }
            }
        }
        drop(http);
        series.sort_by(|a, b| a.route.cmp(&b.route));
        series
    }

    fn forward_auth_histogram(&self, route: ForwardAuthRoute, outcome: Outcome) -> Option<&Histogram> {
        self.forward_auth.get(route as usize).and_then(|r| r.get(outcome as usize))
    }
}

/// One route, method and status class of [`Metrics::http`], as rendered.
struct HttpSeries {
    route: String,
    method: &'static str,
    status: &'static str,
    snapshot: HistogramSnapshot,
}

impl HttpSeries {
    fn labels(&self) -> [(&str, &str); 3] {
        [("route", &self.route), ("method", self.method), ("status", self.status)]
    }
}

fn load(counter: Option<&AtomicU64>) -> u64 {
    counter.map_or(0, |c| c.load(Ordering::Relaxed))
}

/// The text exposition being written.
#[derive(Default)]
struct Text(String);

impl Text {
    fn family(&mut self, name: &str, kind: &str, help: &str) {
        // Writing to a String cannot fail.
        let _ = writeln!(self.0, "# HELP {name} {help}\n# TYPE {name} {kind}");
    }

    fn labels(&mut self, labels: &[(&str, &str)], le: Option<&str>) {
        let all = labels.iter().copied().chain(le.map(|le| ("le", le)));
        for (i, (key, value)) in all.enumerate() {
            self.0.push(if i == 0 { '{' } else { ',' });
            self.0.push_str(key);
            self.0.push_str("=\"");
            for ch in value.chars() {
                match ch {
                    '\\' => self.0.push_str("\\\\"),
                    '"' => self.0.push_str("\\\""),
                    '\n' => self.0.push_str("\\n"),
                    ch => self.0.push(ch),
                }
            }
            self.0.push('"');
        }
        if !labels.is_empty() || le.is_some() {
            self.0.push('}');
        }
    }

    fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: u64) {
        self.0.push_str(name);
        self.labels(labels, None);
        let _ = writeln!(self.0, " {value}");
    }

    fn histogram(&mut self, name: &str, labels: &[(&str, &str)], snapshot: &HistogramSnapshot) {
        let mut cumulative = 0;
        for (i, count) in snapshot.buckets.iter().enumerate() {
            cumulative += count;
            let le = BOUNDS_LABELS.get(i).copied().unwrap_or("+Inf");
            let _ = write!(self.0, "{name}_bucket");
            self.labels(labels, Some(le));
            let _ = writeln!(self.0, " {cumulative}");
        }
        let _ = write!(self.0, "{name}_sum");
        self.labels(labels, None);
        // Nanoseconds to seconds; f64 keeps microsecond precision for far longer than any uptime.
        let _ = writeln!(self.0, " {}", snapshot.sum_nanos as f64 / 1e9);
        let _ = write!(self.0, "{name}_count");
        self.labels(labels, None);
        let _ = writeln!(self.0, " {cumulative}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn micros(n: u64) -> Duration {
        Duration::from_micros(n)
    }

    #[test]
    fn bounds_and_labels_agree() {
        for (nanos, label) in BOUNDS_NANOS.iter().zip(BOUNDS_LABELS) {
            let seconds: f64 = label.parse().unwrap();
            assert_eq!((seconds * 1e9).round() as u64, *nanos, "{label}");
        }
        assert!(BOUNDS_NANOS.windows(2).all(|w| w[0] < w[1]), "bounds ascend");
    }

    #[test]
    fn an_observation_on_a_bound_counts_in_that_bucket() {
        let h = Histogram::default();
        h.observe(micros(25)); // exactly the first bound: le="0.000025"
        h.observe(micros(26)); // just above: the next bucket
        h.observe(Duration::from_secs(11)); // above every bound: only +Inf
        h.observe(Duration::ZERO);
        let s = h.snapshot();
        assert_eq!(s.buckets[0], 2);
        assert_eq!(s.buckets[1], 1);
        assert_eq!(s.buckets[BOUNDS_NANOS.len()], 1);
        assert_eq!(s.count(), 4);
        assert_eq!(s.sum_nanos, 25_000 + 26_000 + 11_000_000_000);
    }

    #[test]
    fn histograms_render_cumulative_buckets_sum_and_count() {
        let h = Histogram::default();
        h.observe(micros(30));
        h.observe(micros(2_000));
        let mut out = Text::default();
        out.histogram("x_seconds", &[("route", "/a")], &h.snapshot());
        let lines: Vec<&str> = out.0.lines().collect();
        assert_eq!(lines.len(), BOUNDS_NANOS.len() + 3);
        assert_eq!(lines[0], r#"x_seconds_bucket{route="/a",le="0.000025"} 0"#);
        assert_eq!(lines[1], r#"x_seconds_bucket{route="/a",le="0.00005"} 1"#);
        assert_eq!(lines[5], r#"x_seconds_bucket{route="/a",le="0.001"} 1"#);
        assert_eq!(lines[6], r#"x_seconds_bucket{route="/a",le="0.0025"} 2"#);
        assert_eq!(lines[BOUNDS_NANOS.len()], r#"x_seconds_bucket{route="/a",le="+Inf"} 2"#);
        assert_eq!(lines[BOUNDS_NANOS.len() + 1], r#"x_seconds_sum{route="/a"} 0.00203"#);
        assert_eq!(lines[BOUNDS_NANOS.len() + 2], r#"x_seconds_count{route="/a"} 2"#);
    }

    #[test]
    fn label_values_are_escaped() {
        let mut out = Text::default();
        out.sample("x", &[("realm", "a\"b\\c\nd")], 1);
        out.sample("y", &[], 2);
        assert_eq!(out.0, "x{realm=\"a\\\"b\\\\c\\nd\"} 1\ny 2\n");
    }

    #[test]
    fn outcomes_follow_the_status() {
        let outcome = |code: u16| Outcome::of(StatusCode::from_u16(code).unwrap());
        assert_eq!(outcome(200), Outcome::Pass);
        assert_eq!(outcome(401), Outcome::Unauthenticated);
        assert_eq!(outcome(403), Outcome::Forbidden);
        assert_eq!(outcome(302), Outcome::Redirect);
        assert_eq!(outcome(400), Outcome::BadRequest);
        assert_eq!(outcome(429), Outcome::BadRequest);
        assert_eq!(outcome(500), Outcome::Error);
        assert_eq!(outcome(503), Outcome::Error);
    }

    #[test]
    fn requests_are_kept_per_route_method_and_class() {
        let m = Metrics::default();
        m.http(Some("/login"), &Method::POST, StatusCode::SEE_OTHER, micros(100));
        m.http(Some("/login"), &Method::POST, StatusCode::SEE_OTHER, micros(100));
        m.http(Some("/login"), &Method::GET, StatusCode::OK, micros(100));
        m.http(None, &Method::PATCH, StatusCode::NOT_FOUND, micros(100));
        let mut out = Text::default();
        m.write(&mut out);
        let text = out.0;
        assert!(
            text.contains("sessiond_http_requests_total{route=\"/login\",method=\"POST\",status=\"3xx\"} 2\n"),
            "{text}"
        );
        assert!(text.contains("sessiond_http_requests_total{route=\"/login\",method=\"GET\",status=\"2xx\"} 1\n"));
        assert!(text.contains("sessiond_http_requests_total{route=\"unmatched\",method=\"other\",status=\"4xx\"} 1\n"));
        assert!(!text.contains("method=\"GET\",status=\"3xx\""), "combinations never seen are left out");
    }

    #[test]
    fn store_calls_are_timed_and_failures_counted() {
        let m = Metrics::default();
        let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
        runtime.block_on(async {
            assert_eq!(m.store(StoreOp::DeleteSession, async { Ok::<_, StoreError>(7) }).await.unwrap(), 7);
            let failed = m.store(StoreOp::DeleteSession, async { Err::<(), _>(StoreError::Conflict) }).await;
            assert!(matches!(failed, Err(StoreError::Conflict)));
        });
        let stats = &m.store[StoreOp::DeleteSession as usize];
        assert_eq!(stats.latency.snapshot().count(), 2);
        assert_eq!(stats.errors.load(Ordering::Relaxed), 1);
        assert_eq!(m.store[StoreOp::CreateSession as usize].latency.snapshot().count(), 0);
    }
}
