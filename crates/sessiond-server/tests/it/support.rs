//! A real server on a loopback port, with a manual clock and a users file of cheap hashes.

use argon2::Params;
use reqwest::header::{HeaderMap, SET_COOKIE};
use serde_json::{Value, json};
use sessiond_core::access::AccessControl;
use sessiond_core::cookie::SameSite;
use sessiond_core::journey::JourneySettings;
use sessiond_core::jwt::JwtSettings;
use sessiond_core::realm::{CookieSettings, HttpOnlyMode, RealmPolicy, SessionLocation};
use sessiond_core::regulation::RegulationPolicy;
use sessiond_core::time::Timestamp;
use sessiond_core::timeout::Timeouts;
use sessiond_server::audit::AuditLog;
use sessiond_server::clock::ManualClock;
use sessiond_server::users::{UserEntry, Users, UsersFile, hash_password_with};
use sessiond_server::{App, Realm, ServerSettings};
use sessiond_store::{AnyStore, MemoryStore};
use std::net::SocketAddr;
use std::net::{Ipv4Addr, TcpListener};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

pub const COOKIE: &str = "sd_test";
pub const START: i64 = 1_790_000_000;
pub const SECRET: &[u8] = b"test secret of at least thirty-two bytes";
/// The session cookie of the second realm (`Options::other_realm`).
pub const OTHER_COOKIE: &str = "sd_other";

pub struct Options {
    pub timeouts: Timeouts,
    pub http_only: HttpOnlyMode,
    pub max_body_bytes: usize,
    pub regulation: RegulationPolicy,
    /// Peers whose forwarding headers are believed; the test client connects from 127.0.0.1.
    pub trusted_proxies: Vec<ipnet::IpNet>,
    /// Access rules for forward auth (default: none, everything denied).
    pub access: Option<AccessControl>,
    /// Cookie domain of the `main` realm.
    pub domain: Option<String>,
    /// A second realm `(name, cookie domain)` whose cookie is [`OTHER_COOKIE`].
    pub other_realm: Option<(String, String)>,
    /// The store (default: a fresh memory store).
    pub store: Option<AnyStore>,
    /// JWT settings of the `main` realm.
    pub jwt: JwtSettings,
    /// The `main` realm's cookie name comes from the store (as [`COOKIE`], its default) rather
    /// than from configuration, so it can be changed at run time.
    pub cookie_name_in_store: bool,
    /// Where the `main` realm keeps its sessions.
    pub location: SessionLocation,
    /// Where the second realm keeps its sessions (default: like `main`).
    pub other_location: Option<SessionLocation>,
    /// The secret before the current one, whose values still open.
    pub secret_previous: Option<Vec<u8>>,
    /// Journey settings of every realm.
    pub journeys: JourneySettings,
    /// `server.reauth_window`.
    pub reauth_window: Duration,
    /// `authentication.providers`.
    pub providers: Vec<sessiond_core::provider::Provider>,
    /// `authentication.refresh_interval`.
    pub refresh_interval: Duration,
    /// The users file; `None` for [`default_users`].
    pub users: Option<UsersFile>,
    /// `SameSite` of the `main` realm's cookie.
    pub same_site: SameSite,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            timeouts: Timeouts::default(),
            http_only: HttpOnlyMode::On,
            max_body_bytes: 64 * 1024,
            regulation: RegulationPolicy::default(),
            trusted_proxies: vec![],
            access: None,
            domain: None,
            other_realm: None,
            store: None,
            jwt: JwtSettings::default(),
            cookie_name_in_store: false,
            location: SessionLocation::Server,
            other_location: None,
            secret_previous: None,
            journeys: JourneySettings::default(),
            reauth_window: Duration::from_secs(300),
            providers: Vec::new(),
            refresh_interval: sessiond_server::state::DEFAULT_REFRESH_INTERVAL,
            users: None,
            same_site: SameSite::Lax,
        }
    }
}

pub struct TestServer {
    pub base: String,
    pub clock: ManualClock,
    pub store: AnyStore,
    pub client: reqwest::Client,
    pub users_path: PathBuf,
    pub app: App,
    pub audit_path: PathBuf,
    _dir: tempfile::TempDir,
}

fn cheap_hash(password: &str) -> String {
    hash_password_with(password, Params::new(1024, 1, 1, None).unwrap()).unwrap()
}

pub fn user(password: &str, groups: &[&str], disabled: bool) -> UserEntry {
    UserEntry {
        display_name: Some("Test User".into()),
        password: cheap_hash(password),
        email: Some("user@example.test".into()),
        groups: groups.iter().map(|g| (*g).to_owned()).collect(),
        disabled,
    }
}

pub fn default_users() -> UsersFile {
    let mut file = UsersFile::default();
    file.users.insert("alice".into(), user("alice-pw", &["dev"], false));
    file.users.insert("bob".into(), user("bob-pw", &["dev"], false));
    file.users.insert("root".into(), user("root-pw", &["admins"], false));
    file.users.insert("mallory".into(), user("mallory-pw", &["dev"], true));
    file
}

impl TestServer {
    pub async fn start() -> Self {
        Self::with(Options::default()).await
    }

    pub async fn with(options: Options) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let users_path = dir.path().join("users.yml");
        options.users.clone().unwrap_or_else(default_users).write(&users_path).unwrap();
        let users = Arc::new(Users::load(users_path.clone()).unwrap());
        let portal_url: url::Url = "http://127.0.0.1/".parse().unwrap();
        let policy = RealmPolicy {
            name: "main".into(),
            portal_url: portal_url.clone(),
            cookie: CookieSettings {
                name: (!options.cookie_name_in_store).then(|| COOKIE.into()),
                domain: options.domain.clone(),
                same_site: options.same_site,
                secure: false,
                persistent: true,
                http_only: options.http_only,
            },
            timeouts: options.timeouts,
            jwt: options.jwt,
            location: options.location,
            journeys: options.journeys,
        };
        let store = options.store.unwrap_or_else(|| AnyStore::Memory(MemoryStore::default()));
        if options.cookie_name_in_store {
            let state = sessiond_store::RealmState {
                default_cookie_name: COOKIE.into(),
                cookie_name: COOKIE.into(),
                sessions_not_before: None,
            };
            sessiond_store::Store::put_realm_state(&store, "main", &state).await.unwrap();
        }
        let clock = ManualClock::new(Timestamp::from_unix(START));
        let settings = ServerSettings {
            portal_url,
            allowed_redirects: vec![],
            admin_group: "admins".into(),
            max_body_bytes: options.max_body_bytes,
            reauth_window: options.reauth_window,
            regulation: options.regulation,
            trusted_proxies: options.trusted_proxies,
            providers: options.providers,
            refresh_interval: options.refresh_interval,
        };
        let mut realms = Vec::new();
        if let Some((name, domain)) = options.other_realm {
            let mut other = policy.clone();
            other.name = name;
            other.portal_url = format!("http://auth.{domain}/").parse().unwrap();
            other.cookie.name = Some(OTHER_COOKIE.into());
            other.cookie.domain = Some(domain);
            other.location = options.other_location.unwrap_or(options.location);
            realms.push(Arc::new(Realm::new(other, OTHER_COOKIE)));
        }
        realms.insert(0, Arc::new(Realm::new(policy, COOKIE)));
        let audit = AuditLog::to_file(&dir.path().join("audit.jsonl")).unwrap();
        let app = App::new(
            store.clone(),
            Arc::new(clock.clone()),
            realms,
            users,
            settings,
            SECRET,
            options.secret_previous.as_deref(),
            audit,
        );
        if let Some(access) = options.access {
            app.access.store(Arc::new(access));
        }
        let served = app.clone();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let service = sessiond_server::router(served).into_make_service_with_connect_info::<SocketAddr>();
        tokio::spawn(async move { axum::serve(listener, service).await.unwrap() });
        let client = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
        let audit_path = dir.path().join("audit.jsonl");
        Self { base: format!("http://{addr}"), clock, store, client, users_path, app, audit_path, _dir: dir }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub fn advance(&self, secs: u64) {
        self.clock.advance(Duration::from_secs(secs));
    }

    pub async fn post_with_token(&self, path: &str, token: &str, body: Value) -> reqwest::Response {
        self.client.post(self.url(path)).bearer_auth(token).json(&body).send().await.unwrap()
    }

    pub async fn post(&self, path: &str, body: Value) -> reqwest::Response {
        self.client.post(self.url(path)).json(&body).send().await.unwrap()
    }

    /// Logs in through the one-call form of the journey; returns the token.
    pub async fn login(&self, user: &str, password: &str, remember_me: bool) -> String {
        let res = self.post("/api/v1/authenticate", login_body(user, password, remember_me)).await;
        assert_eq!(res.status(), 200, "login of {user} failed");
        let body: Value = res.json().await.unwrap();
        body["session_token"].as_str().unwrap().to_owned()
    }

    pub async fn get_with_token(&self, path: &str, token: &str) -> reqwest::Response {
        self.client.get(self.url(path)).bearer_auth(token).send().await.unwrap()
    }

    pub async fn get_with_cookie(&self, path: &str, token: &str) -> reqwest::Response {
        self.client.get(self.url(path)).header("cookie", format!("{COOKIE}={token}")).send().await.unwrap()
    }
}

pub fn login_body(user: &str, password: &str, remember_me: bool) -> Value {
    json!({"callbacks": [
        {"type": "username", "value": user},
        {"type": "password", "value": password},
        {"type": "remember_me", "value": remember_me},
    ]})
}

/// The `Set-Cookie` values for our session cookie.
pub fn session_cookies(headers: &HeaderMap) -> Vec<String> {
    headers
        .get_all(SET_COOKIE)
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .filter(|c| c.starts_with(&format!("{COOKIE}=")))
        .collect()
}

pub fn attr<'a>(set_cookie: &'a str, name: &str) -> Option<&'a str> {
    set_cookie.split("; ").skip(1).find_map(|a| {
        let (k, v) = a.split_once('=').unwrap_or((a, ""));
        k.eq_ignore_ascii_case(name).then_some(v)
    })
}

pub async fn error_code(res: reqwest::Response) -> (u16, String) {
    let status = res.status().as_u16();
    let body: Value = res.json().await.unwrap();
    assert!(body["message"].is_string(), "error body has a message: {body}");
    (status, body["error"].as_str().unwrap().to_owned())
}

/// The program `what`, or a loud skip (`None`); under `CI=true` a missing one fails.
pub fn require(what: &str, path: &str) -> Option<PathBuf> {
    let path = Path::new(path);
    if path.exists() {
        return Some(path.to_owned());
    }
    let message = format!("{what} not installed (looked for {})", path.display());
    assert!(std::env::var("CI").as_deref() != Ok("true"), "CI=true and {message}; .ci/run installs it");
    eprintln!("SKIPPED: {message}");
    None
}

/// A test's own identity provider (a script that listens on a port of its choosing and prints
/// `ready <port>` once it serves); killed when dropped.
pub struct ReadyProgram {
    child: std::process::Child,
    /// The port it printed.
    pub port: u16,
}

impl ReadyProgram {
    /// Starts `cmd` and waits at most `timeout` for its `ready <port>` line; panics naming
    /// `what` when the line does not come. Its output is drained afterwards, so that it never
    /// blocks on a full pipe.
    pub async fn start(mut cmd: std::process::Command, what: &str, timeout: Duration) -> Self {
        use std::io::{BufRead as _, BufReader};
        let mut child = cmd.stdout(std::process::Stdio::piped()).stderr(std::process::Stdio::null()).spawn().unwrap();
        let stdout = child.stdout.take().unwrap();
        let port = tokio::task::spawn_blocking(move || {
            let mut lines = BufReader::new(stdout).lines();
            let port = lines.find_map(|l| l.ok()?.strip_prefix("ready ")?.trim().parse().ok());
            std::thread::spawn(move || lines.for_each(drop));
            port
        });
        let port = tokio::time::timeout(timeout, port)
            .await
            .unwrap_or_else(|_| panic!("{what} started within {timeout:?}"))
            .unwrap()
            .unwrap_or_else(|| panic!("{what} printed its port"));
        Self { child, port }
    }
}

impl Drop for ReadyProgram {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn free_port() -> u16 {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap().local_addr().unwrap().port()
}
