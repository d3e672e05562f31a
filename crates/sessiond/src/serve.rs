//! `sessiond serve`: prepare the data directory, open the store, start the HTTP server, the
//! control socket and the background work, and stop gracefully on SIGINT or SIGTERM.

use crate::config::{self, Config, LogFormat, Secret, StorageConfig};
use crate::control;
use crate::reload;
use anyhow::{Context as _, bail};
use base64::Engine as _;
use rand::RngCore as _;
use sessiond_server::audit::{AuditEvent, AuditKind, AuditLog};
use sessiond_server::clock::SystemClock;
use sessiond_server::users::{UserEntry, Users, UsersFile, hash_password};
use sessiond_server::{App, Realm, ServerSettings};
use sessiond_store::{AnyStore, EmbeddedStore, MemoryStore};
use std::io::Write as _;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use tracing::{info, warn};

/// How often expired sessions are swept and the users file is checked for changes.
const BACKGROUND_EVERY: Duration = Duration::from_secs(2);
/// How long in-flight requests get to finish after a stop signal.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);
/// Name of the generated secret file in the data directory.
const SECRET_FILE: &str = "secret";

/// Runs the server until a stop signal.
pub(crate) async fn run(config_path: Option<&Path>) -> anyhow::Result<()> {
    let config = config::load(config_path, std::env::vars()).map_err(|e| anyhow::anyhow!("invalid configuration: {e}"))?;
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
    let store = open_store(&config.storage)?;
    let users = Arc::new(Users::load(config.users_file.clone()).context("loading the users file")?);

    let listener = tokio::net::TcpListener::bind(config.server.listen)
        .await
        .with_context(|| format!("listening on {}", config.server.listen))?;
    let local = listener.local_addr().context("reading the listening address")?;

    let mut realms = Vec::with_capacity(config.realms.len());
    let mut renamed = Vec::new();
    for policy in &config.realms {
        let outcome = sessiond_server::state::resolve_cookie_name(&store, policy)
            .await
            .with_context(|| format!("resolving the cookie name of realm {}", policy.name))?;
        if let Some(ended) = outcome.sessions_ended {
            warn!(realm = %outcome.realm, cookie = %outcome.name, sessions_ended = ended, "cookie name changed; every session of the realm ended");
            renamed.push((outcome.realm.clone(), ended));
        }
        let mut policy = policy.clone();
        policy.portal_url = bound_portal_url(&policy.portal_url, config.server.listen, local);
        realms.push(Arc::new(Realm::new(policy, &outcome.name)));
    }
    // The realm named `main` (or the first one) answers requests whose host matches no realm.
    realms.sort_by_key(|r| r.name() != sessiond_core::realm::DEFAULT_REALM);

    let settings = ServerSettings {
        portal_url: bound_portal_url(&config.server.portal_url, config.server.listen, local),
        allowed_redirects: config.server.allowed_redirects.clone(),
        admin_group: config.server.admin_group.clone(),
        max_body_bytes: config.server.max_body_bytes,
        journey_timeout: sessiond_core::journey::DEFAULT_TIMEOUT,
        regulation: sessiond_core::regulation::RegulationPolicy {
            max_retries: config.regulation.max_retries,
            find_time: config.regulation.find_time,
            ban_time: config.regulation.ban_time,
        },
        trusted_proxies: config.server.trusted_proxies.clone(),
    };
    let audit = match &config.audit_path {
        Some(path) => AuditLog::to_file(path).with_context(|| format!("opening audit log {}", path.display()))?,
        None => AuditLog::disabled(),
    };
    let app = App::new(store.clone(), Arc::new(SystemClock), realms, users, settings, secret.expose(), audit);
    app.access.store(Arc::new(config.access_control.clone()));
    for (realm, ended) in &renamed {
        let detail = AuditEvent { realm: Some(realm), count: Some(*ended), ..AuditEvent::default() };
        app.audit(AuditKind::CookieNameChanged, &detail);
    }

    let (stop_tx, stop_rx) = watch::channel(false);
    let stopped = move |mut rx: watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|stop| *stop).await;
    };
    let control = control::listen(control::socket_path(&config), store.clone(), stopped(stop_rx.clone()))
        .await
        .context("opening the control socket")?;
    let background = tokio::spawn(sessiond_server::background(app.clone(), BACKGROUND_EVERY, stopped(stop_rx.clone())));

    let reloads = tokio::spawn(reload::watch(app.clone(), config.clone(), stopped(stop_rx.clone())));
    print_banner(&config, local, &store, &app, bootstrap_password.as_deref());
    created_users_file.armed = false;
    info!(listen = %local, store = store.backend_name(), "sessiond started");

    let service = sessiond_server::router(app).into_make_service_with_connect_info::<SocketAddr>();
    let server = axum::serve(listener, service).with_graceful_shutdown(stopped(stop_rx.clone()));
    let server = tokio::spawn(async move { server.await });
    stop_signal().await;
    info!("stopping: finishing requests in flight");
    let _ = stop_tx.send(true);
    match tokio::time::timeout(DRAIN_TIMEOUT, server).await {
        Ok(Ok(Ok(()))) => {}
        Ok(Ok(Err(e))) => warn!(error = %e, "server stopped with an error"),
        Ok(Err(e)) => warn!(error = %e, "server task failed"),
        Err(_) => warn!("requests still in flight after the drain timeout; stopping anyway"),
    }
    let _ = background.await;
    let _ = reloads.await;
    let _ = control.await;
    info!("sessiond stopped");
    Ok(())
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
fn load_or_generate_secret(path: &Path) -> anyhow::Result<Secret> {
    match std::fs::read_to_string(path) {
        Ok(text) => {
            let text = text.trim_end_matches(['\r', '\n']);
            Secret::new(text.as_bytes().to_vec())
                .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))
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

fn open_store(storage: &StorageConfig) -> anyhow::Result<AnyStore> {
    match storage {
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
    }
}

fn print_banner(config: &Config, local: SocketAddr, store: &AnyStore, app: &App, password: Option<&str>) {
    let mut out = String::new();
    out.push_str(&format!("sessiond {} is running\n", env!("CARGO_PKG_VERSION")));
    out.push_str(&format!("  listening on  http://{local}\n"));
    out.push_str(&format!("  portal        {}\n", app.settings.portal_url));
    match &config.storage {
        StorageConfig::Embedded { path } => out.push_str(&format!("  store         embedded, {}\n", path.display())),
        StorageConfig::Memory => out.push_str("  store         memory (sessions end when sessiond stops)\n"),
    }
    for realm in &app.realms {
        out.push_str(&format!("  realm         {} (cookie {})\n", realm.name(), realm.cookie.name));
    }
    out.push_str(&format!("  users         {}\n", config.users_file.display()));
    if let Some(password) = password {
        out.push_str("\n  A users file was created with one administrator. This password is shown once:\n");
        out.push_str(&format!("    user: admin\n    password: {password}\n"));
        out.push_str("  Change it with `sessiond hash-password` and the users file.\n");
    }
    let _ = store;
    let mut stdout = std::io::stdout().lock();
    let _ = stdout.write_all(out.as_bytes());
    let _ = stdout.flush();
}
