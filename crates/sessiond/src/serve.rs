//! `sessiond serve`: prepare the data directory, open the store, start the HTTP server, the
//! control socket and the background work, and stop gracefully on SIGINT or SIGTERM.
//!
//! The server starts even when a Redis store does not answer yet. Each realm's cookie name is
//! kept in the store, so until Redis answers the server cannot tell which cookie carries a
//! session: it listens all the same and answers every request with `503` (`/healthz` excepted,
//! since the process is alive), retrying the store every second. Once the cookie names are
//! known it serves normally; from then on a Redis outage makes each request that needs the store
//! answer `503`, and the server recovers by itself when Redis is back.

use crate::config::{self, Config, LogFormat, Secret, StorageConfig};
use crate::control;
use crate::reload;
use anyhow::{Context as _, bail};
use axum::Router;
use axum::http::{StatusCode, Uri, header};
use axum::response::{IntoResponse as _, Response};
use axum::routing::get;
use base64::Engine as _;
use rand::RngCore as _;
use sessiond_server::audit::{AuditEvent, AuditKind, AuditLog};
use sessiond_server::clock::{Clock as _, SystemClock};
use sessiond_server::error::ApiError;
use sessiond_server::users::{UserEntry, Users, UsersFile, hash_password};
use sessiond_server::{App, Realm, ServerSettings};
use sessiond_store::{
    AnyStore, EmbeddedStore, MemoryStore, RedisKey, RedisKeys, RedisMode, RedisSettings, RedisStore, StoreError,
};
use std::io::Write as _;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tracing::{debug, info, warn};

/// How often expired sessions are swept and the users file is checked for changes.
const BACKGROUND_EVERY: Duration = Duration::from_secs(2);
/// How long in-flight requests get to finish after a stop signal.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);
/// Name of the generated secret file in the data directory.
const SECRET_FILE: &str = "secret";
/// How often a store that did not answer at startup is tried again.
const STORE_RETRY_EVERY: Duration = Duration::from_secs(1);

/// Runs the server until a stop signal.
pub(crate) async fn run(config_path: Option<&Path>) -> anyhow::Result<()> {
    let config =
        config::load(config_path, std::env::vars()).map_err(|e| anyhow::anyhow!("invalid configuration: {e}"))?;
    init_logging(&config)?;
    create_private_dir(&config.data_dir)?;
    let secret = match &config.secret {
        Some(secret) => secret.clone(),
        None => load_or_generate_secret(&config.data_dir.join(SECRET_FILE))?,
    };
    let bootstrap_password = bootstrap_users_file(&config.users_file)?;
    // Until the banner shows the new administrator's password, a failed start must not leave the
    // file behind: the next start would find it and show no password, and nobody could sign in.
    let mut created_users_file = UnshownUsersFile { path: &config.users_file, armed: bootstrap_password.is_some() };
    let store = open_store(&config).await?;
    let users = Arc::new(Users::load(config.users_file.clone()).context("loading the users file")?);

    let listener = TcpListener::bind(config.server.listen)
        .await
        .with_context(|| format!("listening on {}", config.server.listen))?;
    let local = listener.local_addr().context("reading the listening address")?;
    let portal_url = bound_portal_url(&config.server.portal_url, config.server.listen, local);

    // `None`: the store does not answer yet, and the server waits for it.
    let first = match resolve_realms(&store, &config, local).await {
        Ok(resolved) => Some(resolved),
        Err(failure) if failure.can_wait(&store) => {
            warn!(error = %with_causes(&failure.error), "store unavailable at startup; answering 503 until it answers");
            None
        }
        Err(failure) => return Err(failure.into_anyhow()),
    };

    let settings = ServerSettings {
        portal_url,
        allowed_redirects: config.server.allowed_redirects.clone(),
        admin_group: config.server.admin_group.clone(),
        max_body_bytes: config.server.max_body_bytes,
        reauth_window: config.server.reauth_window,
        regulation: sessiond_core::regulation::RegulationPolicy {
            max_retries: config.regulation.max_retries,
            find_time: config.regulation.find_time,
            ban_time: config.regulation.ban_time,
        },
        trusted_proxies: config.server.trusted_proxies.clone(),
        providers: config.providers.clone(),
        refresh_interval: config.refresh_interval,
    };
    let audit = match &config.audit_path {
        Some(path) => AuditLog::to_file(path).with_context(|| format!("opening audit log {}", path.display()))?,
        None => AuditLog::disabled(),
    };
    let audit = if config.audit_stdout { audit.with_stdout() } else { audit };
    let (stop_tx, stop_rx) = watch::channel(false);
    let stopped = move |mut rx: watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|stop| *stop).await;
    };
    let signals = tokio::spawn(async move {
        stop_signal().await;
        info!("stopping: finishing requests in flight");
        let _ = stop_tx.send(true);
    });
    let signing = Arc::new(sessiond_server::jwt::Signing::new(
        secret.expose(),
        config.secret_previous.as_ref().map(Secret::expose),
    ));
    // The control socket opens now and writes its audit events through the state built below.
    let (audit_to, audit_trail) = control::AuditTrail::new();
    let control = control::listen(
        control::socket_path(&config),
        store.clone(),
        signing,
        config.realms.clone(),
        audit_trail,
        stopped(stop_rx.clone()),
    )
    .await
    .context("opening the control socket")?;
    // Bound before the banner, so a bad or busy address stops the start with its reason.
    let metrics_listener = match config.server.metrics_listen {
        Some(addr) => Some(
            tokio::net::TcpListener::bind(addr)
                .await
                .with_context(|| format!("listening on {addr} (server.metrics_listen)"))?,
        ),
        None => None,
    };
    let metrics_local = metrics_listener.as_ref().and_then(|l| l.local_addr().ok());

    let banner_realms: Vec<(String, Option<String>)> = match &first {
        Some(resolved) => resolved.realms.iter().map(|r| (r.name().to_owned(), Some(r.cookie.name.clone()))).collect(),
        None => config.realms.iter().map(|p| (p.name.clone(), p.cookie.name.clone())).collect(),
    };
    print_banner(&config, local, metrics_local, &settings.portal_url, &banner_realms, bootstrap_password.as_deref());
    created_users_file.armed = false;

    let (listener, resolved, gate) = match first {
        Some(resolved) => (listener, resolved, None),
        None => {
            let (listener, gate_listener) = split_listener(listener)?;
            let (gate_stop, gate) = serve_waiting(gate_listener, store.backend_name());
            let outcome = wait_for_store(&store, &config, local, stop_rx.clone()).await;
            let _ = gate_stop.send(true);
            match outcome {
                Ok(Some(resolved)) => (listener, resolved, Some(gate)),
                Ok(None) => {
                    finish("waiting server", gate).await;
                    let _ = control.await;
                    info!("sessiond stopped");
                    return Ok(());
                }
                Err(e) => {
                    finish("waiting server", gate).await;
                    signals.abort();
                    let _ = control.await;
                    return Err(e);
                }
            }
        }
    };

    let previous = config.secret_previous.as_ref().map(Secret::expose);
    let app = App::new(
        store.clone(),
        Arc::new(SystemClock),
        resolved.realms,
        users,
        settings,
        secret.expose(),
        previous,
        audit,
    );
    app.access.store(Arc::new(config.access_control.clone()));
    audit_to.send_replace(Some(app.clone()));
    for (realm, ended) in &resolved.renamed {
        let detail = AuditEvent { realm: Some(realm), count: Some(*ended), ..AuditEvent::default() };
        app.audit(AuditKind::CookieNameChanged, &detail);
    }

    let background = tokio::spawn(sessiond_server::background(app.clone(), BACKGROUND_EVERY, stopped(stop_rx.clone())));
    let reloads = tokio::spawn(reload::watch(app.clone(), config.clone(), stopped(stop_rx.clone())));
    if gate.is_some() {
        for realm in app.realms().iter() {
            info!(realm = %realm.name(), cookie = %realm.cookie.name, "store answers; serving");
        }
    }
    info!(listen = %local, store = store.backend_name(), "sessiond started");

    let metrics_server = metrics_listener.map(|listener| {
        let service = sessiond_server::metrics_router(app.clone()).into_make_service();
        let server = axum::serve(listener, service).with_graceful_shutdown(stopped(stop_rx.clone()));
        tokio::spawn(async move { server.await })
    });
    let router = match metrics_server {
        Some(_) => sessiond_server::router_without_metrics(app),
        None => sessiond_server::router(app),
    };
    let service = router.into_make_service_with_connect_info::<SocketAddr>();
    let server = axum::serve(listener, service).with_graceful_shutdown(stopped(stop_rx.clone()));
    let server = tokio::spawn(async move { server.await });
    stopped(stop_rx.clone()).await;
    match tokio::time::timeout(DRAIN_TIMEOUT, server).await {
        Ok(Ok(Ok(()))) => {}
        Ok(Ok(Err(e))) => warn!(error = %e, "server stopped with an error"),
        Ok(Err(e)) => warn!(error = %e, "server task failed"),
        Err(_) => warn!("requests still in flight after the drain timeout; stopping anyway"),
    }
    if let Some(gate) = gate {
        finish("waiting server", gate).await;
    }
    let _ = background.await;
    let _ = reloads.await;
    if let Some(metrics) = metrics_server {
        let _ = metrics.await;
    }
    let _ = control.await;
    info!("sessiond stopped");
    Ok(())
}

/// The realms with their cookie names, as the store keeps them.
struct Resolved {
    realms: Vec<Arc<Realm>>,
    /// Realms whose cookie name changed, with the number of sessions that ended with it.
    renamed: Vec<(String, usize)>,
}

/// A realm whose cookie name could not be resolved.
struct RealmFailure {
    realm: String,
    error: StoreError,
}

impl RealmFailure {
    /// Whether the server may start anyway and wait for the store: Redis is shared and may come
    /// back on its own; a local database that fails will not.
    fn can_wait(&self, store: &AnyStore) -> bool {
        matches!(self.error, StoreError::Unavailable { .. }) && matches!(store, AnyStore::Redis(_))
    }

    fn into_anyhow(self) -> anyhow::Error {
        anyhow::Error::new(self.error).context(format!("resolving the cookie name of realm {}", self.realm))
    }
}

/// Resolves every realm's cookie name (reading, and when new, writing the realm state).
async fn resolve_realms(store: &AnyStore, config: &Config, local: SocketAddr) -> Result<Resolved, RealmFailure> {
    let mut realms = Vec::with_capacity(config.realms.len());
    let mut renamed = Vec::new();
    for policy in &config.realms {
        let outcome = sessiond_server::state::resolve_cookie_name(store, policy, SystemClock.now())
            .await
            .map_err(|error| RealmFailure { realm: policy.name.clone(), error })?;
        if let Some(ended) = outcome.sessions_ended {
            warn!(realm = %outcome.realm, cookie = %outcome.name, sessions_ended = ended, "cookie name changed; every session of the realm ended");
            renamed.push((outcome.realm.clone(), ended));
        }
        let mut policy = policy.clone();
        policy.portal_url = bound_portal_url(&policy.portal_url, config.server.listen, local);
        realms.push(Arc::new(Realm::resolved(policy, &outcome.name, outcome.sessions_not_before)));
    }
    // The realm named `main` (or the first one) answers requests whose host matches no realm.
    realms.sort_by_key(|r| r.name() != sessiond_core::realm::DEFAULT_REALM);
    Ok(Resolved { realms, renamed })
}

/// Tries the store every [`STORE_RETRY_EVERY`] until the realms resolve (`Some`) or a stop
/// signal comes (`None`).
///
/// # Errors
/// When the store answers with something other than "unavailable" (such as an index key that
/// the configured secrets do not open): waiting longer would not help.
async fn wait_for_store(
    store: &AnyStore,
    config: &Config,
    local: SocketAddr,
    mut stop: watch::Receiver<bool>,
) -> anyhow::Result<Option<Resolved>> {
    let mut attempts: u64 = 0;
    loop {
        tokio::select! {
            _ = stop.wait_for(|stop| *stop) => return Ok(None),
            () = tokio::time::sleep(STORE_RETRY_EVERY) => {}
        }
        attempts += 1;
        match resolve_realms(store, config, local).await {
            Ok(resolved) => return Ok(Some(resolved)),
            Err(failure) if failure.can_wait(store) => {
                // Once a minute is enough to show an operator that it still waits.
                if attempts % 60 == 0 {
                    warn!(error = %with_causes(&failure.error), attempts, "store still unavailable; answering 503");
                } else {
                    debug!(error = %with_causes(&failure.error), attempts, "store still unavailable");
                }
            }
            Err(failure) => return Err(failure.into_anyhow()),
        }
    }
}

/// `error: cause: cause…`, since "redis store unavailable" alone does not tell an operator why.
fn with_causes(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut cause = error.source();
    while let Some(e) = cause {
        let more = e.to_string();
        // Some errors repeat their cause in their own message.
        if !text.contains(&more) {
            text.push_str(": ");
            text.push_str(&more);
        }
        cause = e.source();
    }
    text
}

/// Two listeners on one socket: the waiting server accepts on one until the store answers,
/// then the real server accepts on the other. Connections that arrive in between wait in the
/// socket's backlog, so none is refused.
fn split_listener(listener: TcpListener) -> anyhow::Result<(TcpListener, TcpListener)> {
    let std = listener.into_std().context("preparing the listener")?;
    let twin = std.try_clone().context("preparing the listener")?;
    let first = TcpListener::from_std(std).context("preparing the listener")?;
    let second = TcpListener::from_std(twin).context("preparing the listener")?;
    Ok((first, second))
}

/// Serves [`waiting_router`] on `listener` until the returned sender says stop.
fn serve_waiting(listener: TcpListener, backend: &'static str) -> (watch::Sender<bool>, JoinHandle<()>) {
    let (tx, mut rx) = watch::channel(false);
    let server = axum::serve(listener, waiting_router(backend)).with_graceful_shutdown(async move {
        let _ = rx.wait_for(|stop| *stop).await;
    });
    let task = tokio::spawn(async move {
        if let Err(e) = server.await {
            warn!(error = %e, "waiting server stopped with an error");
        }
    });
    (tx, task)
}

/// Waits up to the drain timeout for a server task to finish.
async fn finish(what: &'static str, task: JoinHandle<()>) {
    if tokio::time::timeout(DRAIN_TIMEOUT, task).await.is_err() {
        warn!(what, "requests still in flight after the drain timeout; stopping anyway");
    }
}

/// What the server answers while the store has not answered since startup: alive (`/healthz`),
/// not ready (`/readyz` 503), and `503` for everything else: `store_unavailable` in the API's
/// JSON shape under `/api/`, a short text for the portal. Nothing passes, nobody signs in.
fn waiting_router(backend: &'static str) -> Router {
    Router::new()
        .route("/healthz", get(|| async { axum::Json(serde_json::json!({"status": "ok"})) }))
        .route(
            "/readyz",
            get(move || async move {
                let body = serde_json::json!({"status": "unavailable", "store": backend});
                (StatusCode::SERVICE_UNAVAILABLE, axum::Json(body))
            }),
        )
        .fallback(move |uri: Uri| async move { unavailable(backend, &uri) })
}

fn unavailable(backend: &'static str, uri: &Uri) -> Response {
    if uri.path().starts_with("/api/") {
        let cause = StoreError::Unavailable { backend, source: "no answer since startup".into() };
        return ApiError::from(cause).into_response();
    }
    let headers = [
        (header::CONTENT_TYPE, "text/plain; charset=utf-8"),
        (header::CACHE_CONTROL, "no-store"),
        (header::RETRY_AFTER, "5"),
    ];
    let text = "Signing in is unavailable for a moment: the session store does not answer. Try again shortly.\n";
    (StatusCode::SERVICE_UNAVAILABLE, headers, text).into_response()
}

/// `url` with the port the listener actually got, when `server.listen` asked for any free port
/// (port 0) and `url` was made from that address; otherwise `url` as configured.
fn bound_portal_url(url: &url::Url, listen: SocketAddr, local: SocketAddr) -> url::Url {
    let mut url = url.clone();
    if listen.port() == 0 && url.port() == Some(0) {
        let _ = url.set_port(Some(local.port()));
    }
    url
}

/// A users file created by this start, removed again on drop while `armed` (its password not
/// shown yet).
struct UnshownUsersFile<'a> {
    path: &'a Path,
    armed: bool,
}

impl Drop for UnshownUsersFile<'_> {
    fn drop(&mut self) {
        if self.armed {
            let _ = std::fs::remove_file(self.path);
        }
    }
}

async fn stop_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = terminate => {}
    }
}

fn init_logging(config: &Config) -> anyhow::Result<()> {
    let filter = tracing_subscriber::EnvFilter::try_new(&config.log.level)
        .with_context(|| format!("log.level: invalid filter {:?}", config.log.level))?;
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_ansi(ansi).with_writer(std::io::stderr);
    let result = match config.log.format {
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
        LogFormat::Text => builder.try_init(),
    };
    result.map_err(|e| anyhow::anyhow!("cannot start logging: {e}"))
}

/// Creates `dir` (mode 0700) if it does not exist.
pub(crate) fn create_private_dir(dir: &Path) -> anyhow::Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir).with_context(|| format!("creating data directory {}", dir.display()))
}

/// Writes `contents` to a new file at `path` with mode 0600; fails if the file exists.
fn write_private_file(path: &Path, contents: &[u8]) -> anyhow::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path).with_context(|| format!("creating {}", path.display()))?;
    file.write_all(contents).and_then(|()| file.sync_all()).with_context(|| format!("writing {}", path.display()))
}

/// Reads the generated secret, or generates 48 random bytes (64 characters of base64url) into a
/// new file with mode 0600 on first run.
/// The secret of this configuration when there is one: the configured one, else the one a
/// server generated in the data directory. Commands that only need it to open what a server
/// sealed never generate one.
///
/// # Errors
/// A secret file that cannot be read or is too short.
pub(crate) fn existing_secret(config: &Config) -> anyhow::Result<Option<Secret>> {
    if let Some(secret) = &config.secret {
        return Ok(Some(secret.clone()));
    }
    let path = config.data_dir.join(SECRET_FILE);
    if !path.exists() {
        return Ok(None);
    }
    load_or_generate_secret(&path).map(Some)
}

fn load_or_generate_secret(path: &Path) -> anyhow::Result<Secret> {
    match std::fs::read_to_string(path) {
        Ok(text) => {
            let text = text.trim_end_matches(['\r', '\n']);
            Secret::new(text.as_bytes().to_vec()).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let mut bytes = [0u8; 48];
            rand::rngs::OsRng.fill_bytes(&mut bytes);
            let text = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
            write_private_file(path, format!("{text}\n").as_bytes())?;
            info!(path = %path.display(), "generated a new secret");
            Secret::new(text.into_bytes()).map_err(|e| anyhow::anyhow!("{e}"))
        }
        Err(e) => Err(e).with_context(|| format!("reading secret {}", path.display())),
    }
}

/// Creates the users file with an `admin` user (in group `admins`) when it does not exist, and
/// returns the random password to show once.
fn bootstrap_users_file(path: &Path) -> anyhow::Result<Option<String>> {
    if path.exists() {
        return Ok(None);
    }
    let mut bytes = [0u8; 15];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    let password = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
    let hash = hash_password(&password).map_err(|e| anyhow::anyhow!("hashing the bootstrap password: {e}"))?;
    let mut file = UsersFile::default();
    file.users.insert(
        "admin".to_owned(),
        UserEntry {
            display_name: Some("Administrator".to_owned()),
            password: hash,
            email: None,
            groups: vec!["admins".to_owned()],
            disabled: false,
        },
    );
    if let Some(dir) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        create_private_dir(dir)?;
    }
    file.write(path).with_context(|| format!("creating users file {}", path.display()))?;
    Ok(Some(password))
}

/// Opens the configured store. A Redis store that does not answer yet is not an error: it
/// connects when Redis answers.
async fn open_store(config: &Config) -> anyhow::Result<AnyStore> {
    match &config.storage {
        StorageConfig::Memory => Ok(AnyStore::Memory(MemoryStore::default())),
        StorageConfig::Embedded { path } => {
            if let Some(dir) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
                create_private_dir(dir)?;
            }
            match EmbeddedStore::open(path) {
                Ok(store) => Ok(AnyStore::Embedded(store)),
                Err(e) if e.is_locked() => {
                    bail!("{} is in use by another process (is sessiond already running?)", path.display())
                }
                Err(e) => Err(e).with_context(|| format!("opening store {}", path.display())),
            }
        }
        StorageConfig::Redis(settings) => Ok(AnyStore::Redis(open_redis(config, settings).await?)),
    }
}

/// The keys the Redis store seals values with: derived from `secret`, and while a rotation is
/// under way also from `secret_previous`, whose values still open.
pub(crate) fn redis_keys(secret: &Secret, previous: Option<&Secret>) -> RedisKeys {
    let keys = RedisKeys::new(RedisKey::from_secret(secret.expose()));
    match previous {
        Some(previous) => keys.with_previous(RedisKey::from_secret(previous.expose())),
        None => keys,
    }
}

/// Prepares the Redis store of `config` (whose storage is `settings`).
///
/// # Errors
/// No configured secret; settings the store refuses (named `storage.redis.<setting>`); an index
/// key in Redis that neither secret opens (another deployment's, or the wrong secret).
pub(crate) async fn open_redis(config: &Config, settings: &RedisSettings) -> anyhow::Result<RedisStore> {
    let Some(secret) = &config.secret else {
        bail!("secret: storage.kind redis needs a secret shared by every instance: set secret or secret_file");
    };
    let keys = redis_keys(secret, config.secret_previous.as_ref());
    match RedisStore::connect(settings.clone(), keys).await {
        Ok(store) => Ok(store),
        Err(StoreError::InvalidSettings { setting, reason }) => bail!("storage.redis.{setting}: {reason}"),
        Err(e) => Err(anyhow::Error::new(e).context("opening the redis store")),
    }
}

/// Where the store is, for the banner; never a password.
pub(crate) fn describe_storage(storage: &StorageConfig) -> String {
    match storage {
        StorageConfig::Embedded { path } => format!("embedded, {}", path.display()),
        StorageConfig::Memory => "memory (sessions end when sessiond stops)".to_owned(),
        StorageConfig::Redis(settings) => {
            let place = match &settings.mode {
                RedisMode::Standalone { url } => config::redact_url(url),
                RedisMode::Sentinel { master, nodes, .. } => {
                    let nodes: Vec<String> = nodes.iter().map(|n| config::redact_url(n)).collect();
                    format!("sentinel, master {master} via {}", nodes.join(", "))
                }
                RedisMode::Cluster { nodes } => {
                    let nodes: Vec<String> = nodes.iter().map(|n| config::redact_url(n)).collect();
                    format!("cluster, nodes {}", nodes.join(", "))
                }
            };
            format!("redis, {place} (key prefix {:?})", settings.key_prefix)
        }
    }
}

/// Prints the startup banner. `realms` are names with the cookie name in force, or `None` while
/// the store has not told it yet.
fn print_banner(
    config: &Config,
    local: SocketAddr,
    metrics: Option<SocketAddr>,
    portal_url: &url::Url,
    realms: &[(String, Option<String>)],
    password: Option<&str>,
) {
    let mut out = String::new();
    out.push_str(&format!("sessiond {} is running\n", env!("CARGO_PKG_VERSION")));
    out.push_str(&format!("  listening on  http://{local}\n"));
    out.push_str(&format!("  portal        {portal_url}\n"));
    match metrics {
        Some(addr) => out.push_str(&format!("  metrics       http://{addr}/metrics\n")),
        None => out.push_str(&format!("  metrics       http://{local}/metrics\n")),
    }
    out.push_str(&format!("  store         {}\n", describe_storage(&config.storage)));
    for (name, cookie) in realms {
        match cookie {
            Some(cookie) => out.push_str(&format!("  realm         {name} (cookie {cookie})\n")),
            None => out.push_str(&format!("  realm         {name} (cookie name known once the store answers)\n")),
        }
    }
    out.push_str(&format!("  users         {}\n", config.users_file.display()));
    if let Some(password) = password {
        out.push_str("\n  A users file was created with one administrator. This password is shown once:\n");
        out.push_str(&format!("    user: admin\n    password: {password}\n"));
        out.push_str("  Change it with `sessiond hash-password` and the users file.\n");
    }
    let mut stdout = std::io::stdout().lock();
    let _ = stdout.write_all(out.as_bytes());
    let _ = stdout.flush();
}
