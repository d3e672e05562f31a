//! From the file's structs to the validated [`Config`]: defaults filled in, every value checked,
//! every refusal naming its key.

use super::effective::redact_url;
use super::file::{self, DurationSpec};
use super::{Config, ConfigError, LogConfig, LogFormat, Regulation, Secret, ServerConfig, StorageConfig};
use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use sessiond_core::access::{AccessControl, Policy, Rule, RuleSpec};
use sessiond_core::cookie::{SameSite, secure_by_default, validate_cookie_domain, validate_cookie_name};
use sessiond_core::duration::{parse_duration, parse_duration_or_disabled};
use sessiond_core::journey::{JourneyLocation, JourneySettings};
use sessiond_core::jwt::JwtSettings;
use sessiond_core::provider::{
    DEFAULT_GROUP_FILTER, HeaderProvider, LdapGroups, LdapProvider, OidcProvider, Provider, ProviderClaims,
    ProviderError, SamlProvider, validate_id,
};
use sessiond_core::realm::{CookieSettings, DEFAULT_REALM, HttpOnlyMode, RealmPolicy, SessionLocation};
use sessiond_core::redirect::AllowedRedirect;
use sessiond_core::timeout::Timeouts;
use sessiond_store::{DEFAULT_KEY_PREFIX, DEFAULT_TIMEOUT, RedisMode, RedisSettings};
use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;
use url::Url;

/// Default of `data_dir`.
pub(super) const DEFAULT_DATA_DIR: &str = "./sessiond-data";
/// Default of `server.listen`.
pub(super) const DEFAULT_LISTEN: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 8470);
/// Default of `server.admin_group`.
pub(super) const DEFAULT_ADMIN_GROUP: &str = "admins";
/// Default of `server.max_body_bytes`.
pub(super) const DEFAULT_MAX_BODY_BYTES: usize = 64 * 1024;
/// File name of the embedded database inside `data_dir`.
pub(super) const DEFAULT_DB_FILE: &str = "sessiond.redb";
/// File name of the users file inside `data_dir`.
pub(super) const DEFAULT_USERS_FILE: &str = "users.yml";
/// Default of `server.trusted_proxies`: loopback, where a reverse proxy on the same host connects
/// from.
pub(super) const DEFAULT_TRUSTED_PROXIES: [IpNet; 2] = [
    IpNet::V4(Ipv4Net::new_assert(Ipv4Addr::new(127, 0, 0, 0), 8)),
    IpNet::V6(Ipv6Net::new_assert(Ipv6Addr::LOCALHOST, 128)),
];
/// Longest `server.reauth_window` accepted: past a day, "recent" no longer means anything.
pub(super) const MAX_REAUTH_WINDOW: Duration = Duration::from_secs(86_400);
/// Longest `journeys.timeout` accepted: a login in progress is a matter of minutes.
pub(super) const MAX_JOURNEY_TIMEOUT: Duration = Duration::from_secs(3600);
/// Default of `log.level`.
pub(super) const DEFAULT_LOG_LEVEL: &str = "info";
/// The kinds of `authentication.providers[].kind`.
pub(super) const PROVIDER_KINDS: [&str; 4] = ["header", "ldap", "oidc", "saml"];
/// Default of an LDAP provider's `groups.name_attribute` (core's [`LdapGroups::search`]).
pub(super) const DEFAULT_GROUP_NAME_ATTRIBUTE: &str = "cn";
/// Longest `authentication.providers[].timeout` of an LDAP provider: each operation of a login
/// waits this long, and the person waits with it.
pub(super) const MAX_LDAP_TIMEOUT: Duration = Duration::from_secs(60);
/// Shortest `authentication.refresh_interval`: every round searches each user with sessions.
pub(super) const MIN_REFRESH_INTERVAL: Duration = Duration::from_secs(10);
/// Longest `authentication.refresh_interval`: past a day, a user removed from the directory
/// keeps their sessions too long.
pub(super) const MAX_REFRESH_INTERVAL: Duration = Duration::from_secs(86_400);
/// Default of a header provider's `user_header` (Authelia's name, like the other three).
pub(super) const DEFAULT_USER_HEADER: &str = "Remote-User";
/// Default of a header provider's `groups_header`.
pub(super) const DEFAULT_GROUPS_HEADER: &str = "Remote-Groups";
/// Default of a header provider's `email_header`.
pub(super) const DEFAULT_EMAIL_HEADER: &str = "Remote-Email";
/// Default of a header provider's `name_header`.
pub(super) const DEFAULT_NAME_HEADER: &str = "Remote-Name";
/// Longest `authentication.providers[].label`, in characters.
pub(super) const MAX_PROVIDER_LABEL: usize = 64;

type Result<T> = std::result::Result<T, ConfigError>;

/// Validates the file's settings and fills in the defaults.
///
/// # Errors
/// [`ConfigError::Invalid`] naming the first refused key.
pub(super) fn validate(raw: file::ConfigFile) -> Result<Config> {
    let data_dir = match raw.data_dir {
        Some(dir) => non_empty_path("data_dir", dir)?,
        None => PathBuf::from(DEFAULT_DATA_DIR),
    };
    let server = server(raw.server.unwrap_or_default())?;
    let storage = storage(raw.storage.unwrap_or_default(), &data_dir)?;
    let secret = read_secret("secret", raw.secret, raw.secret_file)?;
    let secret_previous = read_secret("secret_previous", raw.secret_previous, raw.secret_previous_file)?;
    match (&secret, &secret_previous) {
        (None, Some(_)) => {
            return Err(ConfigError::invalid(
                "secret_previous",
                "needs secret or secret_file: a rotation moves from the previous secret to a configured one",
            ));
        }
        (Some(current), Some(previous)) if current.expose() == previous.expose() => {
            return Err(ConfigError::invalid(
                "secret_previous",
                "is the same as secret; set it to the secret in force before the rotation",
            ));
        }
        _ => {}
    }
    if matches!(storage, StorageConfig::Redis(_)) && secret.is_none() {
        // A secret generated into each instance's data directory would differ between instances,
        // and none of them could read what another wrote.
        return Err(ConfigError::invalid(
            "secret",
            "storage.kind redis needs a secret shared by every instance: set secret or secret_file",
        ));
    }
    let realms = realms(raw.realms.unwrap_or_default(), &server)?;
    let users_file = match raw.users.and_then(|u| u.file) {
        Some(path) => non_empty_path("users.file", path)?,
        None => data_dir.join(DEFAULT_USERS_FILE),
    };
    let authentication = raw.authentication.unwrap_or_default();
    let refresh_interval = refresh_interval(authentication.refresh_interval.as_ref())?;
    let providers = providers(authentication, &server)?;
    let regulation = regulation(&raw.regulation.unwrap_or_default())?;
    let log = log(raw.log.unwrap_or_default())?;
    let audit_stdout = raw.audit.as_ref().and_then(|a| a.stdout).unwrap_or(false);
    let audit_path = raw.audit.and_then(|a| a.path).map(|p| non_empty_path("audit.path", p)).transpose()?;
    let access_control = access_control(raw.access_control.unwrap_or_default())?;
    Ok(Config {
        data_dir,
        server,
        storage,
        secret,
        secret_previous,
        realms,
        users_file,
        regulation,
        log,
        audit_path,
        audit_stdout,
        access_control,
        providers,
        refresh_interval,
        source: None,
    })
}

fn non_empty_path(key: &str, path: PathBuf) -> Result<PathBuf> {
    if path.as_os_str().is_empty() { Err(ConfigError::invalid(key, "the path is empty")) } else { Ok(path) }
}

fn server(raw: file::Server) -> Result<ServerConfig> {
    let listen = match raw.listen {
        Some(text) => text.trim().parse::<SocketAddr>().map_err(|_| {
            ConfigError::invalid(
                "server.listen",
                format!("invalid address {text:?}: write IP:PORT, such as 127.0.0.1:8470 or [::1]:8470"),
            )
        })?,
        None => DEFAULT_LISTEN,
    };
    let portal_url = match raw.portal_url {
        Some(text) => portal_url("server.portal_url", &text)?,
        None => default_portal_url(listen)?,
    };
    let trusted_proxies = match raw.trusted_proxies {
        Some(entries) => entries.iter().map(|entry| trusted_proxy(entry)).collect::<Result<Vec<_>>>()?,
        None => DEFAULT_TRUSTED_PROXIES.to_vec(),
    };
    let allowed_redirects = raw
        .allowed_redirects
        .unwrap_or_default()
        .iter()
        .map(|entry| allowed_redirect(entry))
        .collect::<Result<Vec<_>>>()?;
    let admin_group = raw.admin_group.unwrap_or_else(|| DEFAULT_ADMIN_GROUP.to_owned());
    if admin_group.trim().is_empty() {
        return Err(ConfigError::invalid("server.admin_group", "the group name is empty"));
    }
    let reauth_window = match &raw.reauth_window {
        Some(spec) => duration("server.reauth_window", spec)?,
        None => sessiond_server::state::DEFAULT_REAUTH_WINDOW,
    };
    if reauth_window > MAX_REAUTH_WINDOW {
        return Err(ConfigError::invalid(
            "server.reauth_window",
            "must be at most 24h (0 asks for the password at every sensitive action)",
        ));
    }
    let max_body_bytes = match raw.max_body_bytes {
        None => DEFAULT_MAX_BODY_BYTES,
        Some(0) => {
            return Err(ConfigError::invalid("server.max_body_bytes", "must be greater than zero"));
        }
        Some(n) => usize::try_from(n)
            .map_err(|_| ConfigError::invalid("server.max_body_bytes", format!("{n} is too large for this machine")))?,
    };
    let metrics_listen = raw
        .metrics_listen
        .map(|text| {
            text.trim().parse::<SocketAddr>().map_err(|_| {
                ConfigError::invalid(
                    "server.metrics_listen",
                    format!("invalid address {text:?}: write IP:PORT, such as 127.0.0.1:9470"),
                )
            })
        })
        .transpose()?;
    if metrics_listen.is_some_and(|m| m == listen && listen.port() != 0) {
        return Err(ConfigError::invalid("server.metrics_listen", "is the same address as server.listen"));
    }
    Ok(ServerConfig {
        listen,
        portal_url,
        trusted_proxies,
        allowed_redirects,
        admin_group,
        reauth_window,
        max_body_bytes,
        metrics_listen,
    })
}

/// `http://<listen>/`, with the loopback address when listening on every address: a browser
/// cannot be sent to `0.0.0.0`.
fn default_portal_url(listen: SocketAddr) -> Result<Url> {
    let host = if listen.ip().is_unspecified() { IpAddr::V4(Ipv4Addr::LOCALHOST) } else { listen.ip() };
    let address = SocketAddr::new(host, listen.port());
    Url::parse(&format!("http://{address}/"))
        .map_err(|e| ConfigError::invalid("server.listen", format!("no portal URL can be made from {listen}: {e}")))
}

fn portal_url(key: &str, text: &str) -> Result<Url> {
    let refuse = |reason: &str| ConfigError::invalid(key, format!("invalid portal URL {text:?}: {reason}"));
    let url = Url::parse(text.trim()).map_err(|e| refuse(&e.to_string()))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(refuse("the scheme must be http or https"));
    }
    if url.host().is_none() {
        return Err(refuse("it has no host"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(refuse("it must not contain user info"));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(refuse("it must not have a query or a fragment"));
    }
    Ok(url)
}

fn trusted_proxy(entry: &str) -> Result<ipnet::IpNet> {
    let text = entry.trim();
    let parsed =
        text.parse::<ipnet::IpNet>().map(|net| net.trunc()).or_else(|_| text.parse::<IpAddr>().map(ipnet::IpNet::from));
    parsed.map_err(|_| {
        ConfigError::invalid(
            "server.trusted_proxies",
            format!("invalid entry {entry:?}: write an IP address (10.0.0.5) or a CIDR range (10.0.0.0/8)"),
        )
    })
}

/// Checks an entry and writes it in the form the redirect check compares against.
fn allowed_redirect(entry: &str) -> Result<String> {
    let parsed =
        AllowedRedirect::parse(entry).map_err(|e| ConfigError::invalid("server.allowed_redirects", e.to_string()))?;
    Ok(match parsed {
        AllowedRedirect::Host(host) => host.to_string(),
        AllowedRedirect::Subdomains(parent) => format!("*.{parent}"),
        AllowedRedirect::Origin(origin) => origin.ascii_serialization(),
    })
}

fn storage(raw: file::Storage, data_dir: &Path) -> Result<StorageConfig> {
    let kind = raw.kind.as_deref().map(str::trim);
    if raw.redis.is_some() && kind != Some("redis") {
        // Most likely a forgotten `kind: redis`: running on a local file instead would split a
        // cluster without a word.
        return Err(ConfigError::invalid(
            "storage.redis",
            format!("is set, but storage.kind is {}; set storage.kind: redis to use it", kind.unwrap_or("embedded")),
        ));
    }
    match kind {
        None | Some("embedded") => {
            let path = match raw.path {
                Some(path) => non_empty_path("storage.path", path)?,
                None => data_dir.join(DEFAULT_DB_FILE),
            };
            Ok(StorageConfig::Embedded { path })
        }
        Some("memory") => Ok(StorageConfig::Memory),
        Some("redis") => redis(raw.redis.unwrap_or_default()).map(StorageConfig::Redis),
        Some(other) => Err(ConfigError::invalid(
            "storage.kind",
            format!("unknown storage kind {other:?}: expected embedded, memory or redis"),
        )),
    }
}

fn redis(raw: file::Redis) -> Result<RedisSettings> {
    let set: Vec<&str> =
        [("url", raw.url.is_some()), ("sentinel", raw.sentinel.is_some()), ("cluster", raw.cluster.is_some())]
            .into_iter()
            .filter_map(|(name, present)| present.then_some(name))
            .collect();
    if let [first, second, ..] = set.as_slice() {
        return Err(ConfigError::invalid(
            format!("storage.redis.{second}"),
            format!("set together with storage.redis.{first}; keep exactly one of url, sentinel and cluster"),
        ));
    }
    let mode = if let Some(url) = raw.url {
        RedisMode::Standalone { url: redis_url(&url)? }
    } else if let Some(sentinel) = raw.sentinel {
        let master = sentinel.master.map(|m| m.trim().to_owned()).unwrap_or_default();
        if master.is_empty() {
            return Err(ConfigError::invalid(
                "storage.redis.sentinel.master",
                "is required: the master's name in the sentinels' configuration",
            ));
        }
        let nodes = redis_nodes("storage.redis.sentinel.nodes", sentinel.nodes)?;
        let password = password("storage.redis.sentinel.password", sentinel.password, sentinel.password_file)?;
        let db = sentinel
            .db
            .map(|db| {
                i64::try_from(db)
                    .map_err(|_| ConfigError::invalid("storage.redis.sentinel.db", format!("{db} is too large")))
            })
            .transpose()?;
        RedisMode::Sentinel { master, nodes, password, db }
    } else if let Some(cluster) = raw.cluster {
        RedisMode::Cluster { nodes: redis_nodes("storage.redis.cluster.nodes", cluster.nodes)? }
    } else {
        return Err(ConfigError::invalid(
            "storage.redis",
            "storage.kind is redis, but none of url, sentinel and cluster is set",
        ));
    };
    let username = match raw.username.map(|u| u.trim().to_owned()) {
        Some(name) if name.is_empty() => return Err(ConfigError::invalid("storage.redis.username", "is empty")),
        other => other,
    };
    let key_prefix = raw.key_prefix.unwrap_or_else(|| DEFAULT_KEY_PREFIX.to_owned());
    if key_prefix.contains(['{', '}']) {
        return Err(ConfigError::invalid(
            "storage.redis.key_prefix",
            format!("{key_prefix:?} contains '{{' or '}}', which would put every key on one cluster slot"),
        ));
    }
    let timeout = match &raw.timeout {
        Some(spec) => positive("storage.redis.timeout", spec)?,
        None => DEFAULT_TIMEOUT,
    };
    let mut settings = RedisSettings::new(mode);
    settings.username = username;
    settings.password = password("storage.redis.password", raw.password, raw.password_file)?;
    settings.key_prefix = key_prefix;
    settings.timeout = timeout;
    if let Some(spec) = &raw.cache_ttl {
        let ttl = duration("storage.redis.cache_ttl", spec)?;
        settings.cache_ttl = (!ttl.is_zero()).then_some(ttl);
    }
    if let Some(capacity) = raw.cache_capacity {
        settings.cache_capacity = match usize::try_from(capacity) {
            Ok(0) if settings.cache_ttl.is_some() => {
                return Err(ConfigError::invalid(
                    "storage.redis.cache_capacity",
                    "must be greater than zero (turn the cache off with cache_ttl: 0)",
                ));
            }
            Ok(n) => n,
            Err(_) => {
                return Err(ConfigError::invalid("storage.redis.cache_capacity", format!("{capacity} is too large")));
            }
        };
    }
    Ok(settings)
}

/// Checks a standalone server's URL. Messages show it with any password replaced.
fn redis_url(text: &str) -> Result<String> {
    const KEY: &str = "storage.redis.url";
    let text = text.trim();
    let url = Url::parse(text).map_err(|e| {
        // An unparsable URL is not shown at all: where the password ends cannot be told.
        ConfigError::invalid(KEY, format!("invalid URL (not shown, it may hold a password): {e}"))
    })?;
    let refuse = |reason: &str| ConfigError::invalid(KEY, format!("invalid URL {}: {reason}", redact_url(text)));
    match url.scheme() {
        "redis" | "rediss" => {
            if url.host_str().is_none_or(str::is_empty) {
                return Err(refuse("it has no host"));
            }
        }
        "unix" | "redis+unix" => {
            if url.path().is_empty() || url.path() == "/" {
                return Err(refuse("it names no socket file"));
            }
        }
        _ => return Err(refuse("the scheme must be redis://, rediss:// or unix://")),
    }
    Ok(text.to_owned())
}

/// Checks a list of node addresses: `host:port`, or a `redis://` / `rediss://` URL.
fn redis_nodes(key: &str, nodes: Option<Vec<String>>) -> Result<Vec<String>> {
    let nodes: Vec<String> = nodes.unwrap_or_default().into_iter().map(|n| n.trim().to_owned()).collect();
    if nodes.is_empty() {
        return Err(ConfigError::invalid(key, "lists no node: give at least one host:port"));
    }
    for node in &nodes {
        let valid = if node.contains("://") {
            Url::parse(node).is_ok_and(|url| {
                matches!(url.scheme(), "redis" | "rediss") && url.host_str().is_some_and(|h| !h.is_empty())
            })
        } else {
            node.rsplit_once(':').is_some_and(|(host, port)| !host.is_empty() && port.parse::<u16>().is_ok())
        };
        if !valid {
            return Err(ConfigError::invalid(
                key,
                format!("invalid node {}: write host:port or redis://host:port", redact_url(node)),
            ));
        }
    }
    Ok(nodes)
}

/// A password given inline (`key`) or in a file (`key_file`); never quoted in messages.
fn password(key: &str, inline: Option<String>, file: Option<PathBuf>) -> Result<Option<String>> {
    let file_key = format!("{key}_file");
    match (inline, file) {
        (Some(_), Some(_)) => {
            let leaf = key.rsplit('.').next().unwrap_or(key);
            Err(ConfigError::invalid(file_key, format!("both {leaf} and {leaf}_file are set; keep only one")))
        }
        (Some(password), None) if password.is_empty() => Err(ConfigError::invalid(key, "is empty")),
        (Some(password), None) => Ok(Some(password)),
        (None, Some(path)) => {
            let mut bytes = std::fs::read(&path)
                .map_err(|e| ConfigError::invalid(&file_key, format!("cannot read {}: {e}", path.display())))?;
            while bytes.last().is_some_and(|b| matches!(b, b'\n' | b'\r')) {
                bytes.pop();
            }
            if bytes.is_empty() {
                return Err(ConfigError::invalid(file_key, format!("{} is empty", path.display())));
            }
            String::from_utf8(bytes)
                .map(Some)
                .map_err(|_| ConfigError::invalid(file_key, format!("{} does not hold UTF-8 text", path.display())))
        }
        (None, None) => Ok(None),
    }
}

/// A secret given inline (`key`) or in a file (`key_file`), at least [`Secret::MIN_LEN`] bytes.
fn read_secret(key: &str, secret: Option<Secret>, secret_file: Option<PathBuf>) -> Result<Option<Secret>> {
    let file_key = format!("{key}_file");
    match (secret, secret_file) {
        (Some(_), Some(_)) => {
            Err(ConfigError::invalid(file_key, format!("both {key} and {key}_file are set; keep only one")))
        }
        (Some(secret), None) => Secret::new(secret.0).map(Some).map_err(|e| ConfigError::invalid(key, e.to_string())),
        (None, Some(path)) => {
            let mut bytes = std::fs::read(&path)
                .map_err(|e| ConfigError::invalid(&file_key, format!("cannot read {}: {e}", path.display())))?;
            // Editors and `echo` end files with a newline that is not part of the secret.
            while bytes.last().is_some_and(|b| matches!(b, b'\n' | b'\r')) {
                bytes.pop();
            }
            Secret::new(bytes).map(Some).map_err(|e| ConfigError::invalid(file_key, format!("{}: {e}", path.display())))
        }
        (None, None) => Ok(None),
    }
}

fn realms(raw: BTreeMap<String, file::Realm>, server: &ServerConfig) -> Result<Vec<RealmPolicy>> {
    let raw = if raw.is_empty() { BTreeMap::from([(DEFAULT_REALM.to_owned(), file::Realm::default())]) } else { raw };
    let realms = raw.into_iter().map(|(name, realm)| self::realm(name, realm, server)).collect::<Result<Vec<_>>>()?;
    distinct(&realms)?;
    Ok(realms)
}

fn is_realm_name(name: &str) -> bool {
    !name.is_empty() && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
}

fn realm(name: String, raw: file::Realm, server: &ServerConfig) -> Result<RealmPolicy> {
    if !is_realm_name(&name) {
        return Err(ConfigError::invalid(
            format!("realms.{name}"),
            format!("invalid realm name {name:?}: use lowercase letters, digits, '_' and '-'"),
        ));
    }
    let key = |suffix: &str| format!("realms.{name}.{suffix}");
    let portal_url = match &raw.portal_url {
        Some(text) => portal_url(&key("portal_url"), text)?,
        None => server.portal_url.clone(),
    };
    let domain = match &raw.domain {
        Some(domain) => {
            let host = portal_url.host_str().unwrap_or_default();
            Some(
                validate_cookie_domain(domain.trim(), host)
                    .map_err(|e| ConfigError::invalid(key("domain"), e.to_string()))?,
            )
        }
        None => None,
    };
    let cookie = raw.cookie.unwrap_or_default();
    let secure = match cookie.secure.as_deref().map(str::trim) {
        None | Some("auto") => secure_by_default(&portal_url),
        Some("true") => true,
        Some("false") => false,
        Some(other) => {
            return Err(ConfigError::invalid(
                key("cookie.secure"),
                format!("unknown value {other:?}: expected true, false or auto"),
            ));
        }
    };
    let same_site = match cookie.same_site.as_deref().map(str::trim) {
        None | Some("lax") => SameSite::Lax,
        Some("strict") => SameSite::Strict,
        Some("none") => SameSite::None,
        Some(other) => {
            return Err(ConfigError::invalid(
                key("cookie.same_site"),
                format!("unknown value {other:?}: expected strict, lax or none"),
            ));
        }
    };
    if same_site == SameSite::None && !secure {
        // Browsers drop `SameSite=None` cookies that lack `Secure`: nobody could stay signed in.
        return Err(ConfigError::invalid(
            key("cookie.same_site"),
            "none requires a secure cookie (cookie.secure is false, or auto with a plain-http local portal)",
        ));
    }
    let http_only = match cookie.http_only.as_deref().map(str::trim) {
        None | Some("true") => HttpOnlyMode::On,
        Some("false") => HttpOnlyMode::Off,
        Some("enforced") => HttpOnlyMode::Enforced,
        Some(other) => {
            return Err(ConfigError::invalid(
                key("cookie.http_only"),
                format!("unknown value {other:?}: expected true, false or enforced"),
            ));
        }
    };
    let cookie_name = match cookie.name {
        Some(name) => {
            validate_cookie_name(&name, secure, domain.as_deref())
                .map_err(|e| ConfigError::invalid(key("cookie.name"), e.to_string()))?;
            Some(name)
        }
        None => None,
    };
    let location = match raw.location.as_deref().map(str::trim) {
        None | Some("server") => SessionLocation::Server,
        Some("client") => SessionLocation::Client,
        Some(other) => {
            return Err(ConfigError::invalid(
                key("location"),
                format!("unknown location {other:?}: expected server or client"),
            ));
        }
    };
    let defaults = Timeouts::default();
    let expiration = match &raw.expiration {
        Some(spec) => positive(&key("expiration"), spec)?,
        None => defaults.expiration,
    };
    let inactivity = match &raw.inactivity {
        Some(spec) => Some(duration(&key("inactivity"), spec)?).filter(|d| !d.is_zero()),
        None => defaults.inactivity,
    };
    let remember_me = match &raw.remember_me {
        Some(spec) => match parse_duration_or_disabled(&spec.0) {
            Ok(Some(d)) if d.is_zero() => {
                return Err(ConfigError::invalid(
                    key("remember_me"),
                    "must be greater than zero; -1 turns remember me off",
                ));
            }
            Ok(d) => d,
            Err(e) => return Err(ConfigError::invalid(key("remember_me"), e.to_string())),
        },
        None => defaults.remember_me,
    };
    let jwt = jwt_settings(&key, &raw.jwt.unwrap_or_default())?;
    let journeys = journey_settings(&key, &raw.journeys.unwrap_or_default())?;
    if location == SessionLocation::Client {
        // A client-side cookie counts its deadline in 32-bit seconds from login (136 years).
        let limit = Duration::from_secs(u64::from(u32::MAX));
        for (name, lifetime) in [("expiration", Some(expiration)), ("remember_me", remember_me)] {
            if lifetime.is_some_and(|d| d > limit) {
                return Err(ConfigError::invalid(key(name), "must be under 136 years with location: client"));
            }
        }
    }
    Ok(RealmPolicy {
        name,
        portal_url,
        cookie: CookieSettings {
            name: cookie_name,
            domain,
            same_site,
            secure,
            persistent: cookie.persistent.unwrap_or(true),
            http_only,
        },
        timeouts: Timeouts { expiration, inactivity, remember_me },
        jwt,
        location,
        journeys,
    })
}

/// Longest `jwt.lifetime` accepted: a JWT is checked by applications without asking sessiond,
/// so it must stay short for revocation to reach them.
const MAX_JWT_LIFETIME: Duration = Duration::from_secs(86_400);

fn jwt_settings(key: &dyn Fn(&str) -> String, raw: &file::Jwt) -> Result<JwtSettings> {
    let defaults = JwtSettings::default();
    let lifetime = match &raw.lifetime {
        Some(spec) => positive(&key("jwt.lifetime"), spec)?,
        None => defaults.lifetime,
    };
    if lifetime > MAX_JWT_LIFETIME {
        return Err(ConfigError::invalid(
            key("jwt.lifetime"),
            "must be at most 1d: applications trust a JWT without asking sessiond",
        ));
    }
    let rotation = match &raw.rotation {
        Some(spec) => Some(duration(&key("jwt.rotation"), spec)?).filter(|d| !d.is_zero()),
        None => defaults.rotation,
    };
    if rotation.is_some_and(|r| r < lifetime) {
        return Err(ConfigError::invalid(
            key("jwt.rotation"),
            "must be at least jwt.lifetime (or 0 to rotate only by command)",
        ));
    }
    Ok(JwtSettings {
        enabled: raw.enabled.unwrap_or(defaults.enabled),
        lifetime,
        cookie: raw.cookie.unwrap_or(defaults.cookie),
        header: raw.header.unwrap_or(defaults.header),
        rotation,
    })
}

fn journey_settings(key: &dyn Fn(&str) -> String, raw: &file::Journeys) -> Result<JourneySettings> {
    let defaults = JourneySettings::default();
    let location = match raw.location.as_deref().map(str::trim) {
        None => defaults.location,
        Some("server") => JourneyLocation::Server,
        Some("client") => JourneyLocation::Client,
        Some(other) => {
            return Err(ConfigError::invalid(
                key("journeys.location"),
                format!("unknown location {other:?}: expected server or client"),
            ));
        }
    };
    let timeout = match &raw.timeout {
        Some(spec) => positive(&key("journeys.timeout"), spec)?,
        None => defaults.timeout,
    };
    if timeout > MAX_JOURNEY_TIMEOUT {
        return Err(ConfigError::invalid(
            key("journeys.timeout"),
            "must be at most 1h: it bounds how long a login in progress may wait",
        ));
    }
    Ok(JourneySettings { location, allowlisting: raw.allowlisting.unwrap_or(defaults.allowlisting), timeout })
}

/// Realms must not step on each other: one cookie name each, and one
/// cookie scope each, since the request host picks the realm.
fn distinct(realms: &[RealmPolicy]) -> Result<()> {
    for (i, later) in realms.iter().enumerate() {
        for earlier in &realms[..i] {
            if let (Some(a), Some(b)) = (&earlier.cookie.name, &later.cookie.name) {
                // Companion names (`<name>_flash`, …) cannot clash: core refuses names ending so.
                if a.eq_ignore_ascii_case(b) {
                    return Err(ConfigError::invalid(
                        format!("realms.{}.cookie.name", later.name),
                        format!("cookie name {b:?} collides with realm {:?}'s cookie {a:?}", earlier.name),
                    ));
                }
            }
            if scope(earlier) == scope(later) {
                let what = match &later.cookie.domain {
                    Some(domain) => format!("cookie domain {domain:?}"),
                    None => format!("host-only cookies on {:?}", scope(later)),
                };
                return Err(ConfigError::invalid(
                    format!("realms.{}.domain", later.name),
                    format!("realm {:?} already uses {what}; the request host could not tell them apart", earlier.name),
                ));
            }
        }
    }
    Ok(())
}

/// The hosts a realm's cookie reaches: its domain, or the portal's host when host-only.
fn scope(realm: &RealmPolicy) -> String {
    match &realm.cookie.domain {
        Some(domain) => domain.clone(),
        None => realm.portal_url.host_str().unwrap_or_default().to_owned(),
    }
}

fn duration(key: &str, spec: &DurationSpec) -> Result<Duration> {
    parse_duration(&spec.0).map_err(|e| ConfigError::invalid(key, e.to_string()))
}

fn positive(key: &str, spec: &DurationSpec) -> Result<Duration> {
    let d = duration(key, spec)?;
    if d.is_zero() {
        return Err(ConfigError::invalid(key, "must be greater than zero"));
    }
    Ok(d)
}

fn regulation(raw: &file::Regulation) -> Result<Regulation> {
    let defaults = Regulation::default();
    let max_retries = match raw.max_retries {
        Some(n) => {
            u32::try_from(n).map_err(|_| ConfigError::invalid("regulation.max_retries", format!("{n} is too large")))?
        }
        None => defaults.max_retries,
    };
    let find_time = match &raw.find_time {
        Some(spec) => positive("regulation.find_time", spec)?,
        None => defaults.find_time,
    };
    let ban_time = match &raw.ban_time {
        Some(spec) => positive("regulation.ban_time", spec)?,
        None => defaults.ban_time,
    };
    Ok(Regulation { max_retries, find_time, ban_time })
}

fn access_control(raw: file::AccessControl) -> Result<AccessControl> {
    let default_policy = match raw.default_policy {
        Some(word) => {
            word.parse::<Policy>().map_err(|e| ConfigError::invalid("access_control.default_policy", e.to_string()))?
        }
        None => Policy::Deny,
    };
    let rules = raw
        .rules
        .unwrap_or_default()
        .into_iter()
        .enumerate()
        .map(|(index, rule)| {
            let spec = RuleSpec {
                domain: rule.domain,
                resources: rule.resources,
                methods: rule.methods,
                subject: rule.subject,
                policy: rule.policy,
            };
            Rule::parse(&spec).map_err(|e| {
                ConfigError::invalid(format!("access_control.rules[{index}].{}", e.field), e.kind.to_string())
            })
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(AccessControl::new(default_policy, rules))
}

/// `authentication.providers`: each provider checked, the optional keys filled in, ids unique.
fn providers(raw: file::Authentication, server: &ServerConfig) -> Result<Vec<Provider>> {
    let mut providers: Vec<Provider> = Vec::new();
    for (index, raw) in raw.providers.unwrap_or_default().into_iter().enumerate() {
        let at = format!("authentication.providers[{index}]");
        let key = |field: &str| format!("{at}.{field}");
        let Some(id) = raw.id.as_deref().map(|id| id.trim().to_owned()) else {
            return Err(ConfigError::invalid(key("id"), "missing; every provider needs one"));
        };
        validate_id(&id).map_err(|e| ConfigError::invalid(key("id"), e.to_string()))?;
        if let Some(first) = providers.iter().position(|p| p.id() == id) {
            return Err(ConfigError::invalid(
                key("id"),
                format!("{id:?} is already the id of authentication.providers[{first}]; ids must be unique"),
            ));
        }
        let label = match raw.label.as_deref().map(str::trim) {
            Some(label) => provider_label(&key("label"), label)?,
            None => id.clone(),
        };
        let kind = raw.kind.as_deref().map(str::trim);
        if let Some(kind @ ("header" | "ldap" | "oidc" | "saml")) = kind {
            foreign_keys(&at, kind, &raw)?;
        }
        let provider = match kind {
            Some("ldap") => Provider::Ldap(ldap_provider(&at, id, label, raw)?),
            Some("oidc") => Provider::Oidc(oidc_provider(&at, id, label, raw)?),
            Some("saml") => Provider::Saml(saml_provider(&at, id, label, raw)?),
            Some("header") => {
                if server.trusted_proxies.is_empty() {
                    // Anyone could otherwise name themselves in the header; there would be no
                    // peer whose word counts.
                    return Err(ConfigError::invalid(
                        key("kind"),
                        "a header provider needs server.trusted_proxies: the headers are believed only from those peers",
                    ));
                }
                Provider::Header(header_provider(&at, id, label, &raw)?)
            }
            Some(other) => {
                return Err(ConfigError::invalid(
                    key("kind"),
                    format!("unknown provider kind {other:?}: expected {}", PROVIDER_KINDS.join(", ")),
                ));
            }
            None => {
                return Err(ConfigError::invalid(
                    key("kind"),
                    format!("missing; every provider needs one: {}", PROVIDER_KINDS.join(", ")),
                ));
            }
        };
        providers.push(provider);
    }
    Ok(providers)
}

fn provider_label(key: &str, label: &str) -> Result<String> {
    if label.is_empty() {
        return Err(ConfigError::invalid(key, "the label is empty; leave the key out to show the id"));
    }
    if label.chars().count() > MAX_PROVIDER_LABEL {
        return Err(ConfigError::invalid(key, format!("is longer than {MAX_PROVIDER_LABEL} characters")));
    }
    if label.chars().any(char::is_control) {
        return Err(ConfigError::invalid(key, format!("label {label:?} holds control characters")));
    }
    Ok(label.to_owned())
}

/// `authentication.refresh_interval`: between [`MIN_REFRESH_INTERVAL`] and
/// [`MAX_REFRESH_INTERVAL`].
fn refresh_interval(spec: Option<&DurationSpec>) -> Result<Duration> {
    const KEY: &str = "authentication.refresh_interval";
    let Some(spec) = spec else {
        return Ok(sessiond_server::state::DEFAULT_REFRESH_INTERVAL);
    };
    let interval = duration(KEY, spec)?;
    if interval < MIN_REFRESH_INTERVAL || interval > MAX_REFRESH_INTERVAL {
        return Err(ConfigError::invalid(
            KEY,
            format!(
                "{:?} must be at least 10s and at most 1d: each round asks the directories about every user with sessions",
                spec.0
            ),
        ));
    }
    Ok(interval)
}

/// Refuses the keys of the other kinds, which the provider would silently ignore.
fn foreign_keys(at: &str, kind: &str, raw: &file::LoginProvider) -> Result<()> {
    const HEADER: &[&str] = &["header"];
    const LDAP: &[&str] = &["ldap"];
    const OIDC: &[&str] = &["oidc"];
    const REMOTE: &[&str] = &["ldap", "oidc"];
    const SAML: &[&str] = &["saml"];
    const CLAIMS: &[&str] = &["oidc", "saml"];
    let keys: [(&str, bool, &[&str]); 26] = [
        ("user_header", raw.user_header.is_some(), HEADER),
        ("groups_header", raw.groups_header.is_some(), HEADER),
        ("email_header", raw.email_header.is_some(), HEADER),
        ("name_header", raw.name_header.is_some(), HEADER),
        ("url", raw.url.is_some(), LDAP),
        ("start_tls", raw.start_tls.is_some(), LDAP),
        ("bind_dn", raw.bind_dn.is_some(), LDAP),
        ("bind_password", raw.bind_password.is_some(), LDAP),
        ("bind_password_file", raw.bind_password_file.is_some(), LDAP),
        ("base_dn", raw.base_dn.is_some(), LDAP),
        ("user_filter", raw.user_filter.is_some(), LDAP),
        ("username_attribute", raw.username_attribute.is_some(), LDAP),
        ("disabled_filter", raw.disabled_filter.is_some(), LDAP),
        ("groups", raw.groups.is_some(), LDAP),
        ("attributes", raw.attributes.is_some(), LDAP),
        ("timeout", raw.timeout.is_some(), REMOTE),
        ("ca_file", raw.ca_file.is_some(), REMOTE),
        ("issuer", raw.issuer.is_some(), OIDC),
        ("client_id", raw.client_id.is_some(), OIDC),
        ("client_secret", raw.client_secret.is_some(), OIDC),
        ("client_secret_file", raw.client_secret_file.is_some(), OIDC),
        ("scopes", raw.scopes.is_some(), OIDC),
        ("claims", raw.claims.is_some(), CLAIMS),
        ("idp_metadata_file", raw.idp_metadata_file.is_some(), SAML),
        ("entity_id", raw.entity_id.is_some(), SAML),
        ("logout", raw.logout.is_some(), OIDC),
    ];
    match keys.iter().find(|(_, set, kinds)| *set && !kinds.contains(&kind)) {
        Some((field, _, kinds)) => Err(ConfigError::invalid(
            format!("{at}.{field}"),
            format!("is a key of kind: {} providers; this provider is kind: {kind}", kinds.join(" and kind: ")),
        )),
        None => Ok(()),
    }
}

/// A `kind: oidc` provider: the required keys present, the rest at core's defaults, the CA
/// file readable, and everything core's [`OidcProvider::validate`] refuses named by its key.
fn oidc_provider(at: &str, id: String, label: String, raw: file::LoginProvider) -> Result<OidcProvider> {
    let key = |field: &str| format!("{at}.{field}");
    let required = |field: &str, value: Option<String>, what: &str| -> Result<String> {
        match value.map(|v| v.trim().to_owned()) {
            Some(value) if !value.is_empty() => Ok(value),
            Some(_) => Err(ConfigError::invalid(key(field), format!("is empty; set {what}"))),
            None => Err(ConfigError::invalid(key(field), format!("missing; an oidc provider needs {what}"))),
        }
    };
    let issuer = required("issuer", raw.issuer, "the provider's issuer URL")?;
    let client_id = required("client_id", raw.client_id, "the client id registered at the provider")?;
    let client_secret =
        password(&key("client_secret"), raw.client_secret, raw.client_secret_file)?.ok_or_else(|| {
            ConfigError::invalid(
                key("client_secret"),
                "missing; an oidc provider needs the client secret: set client_secret or client_secret_file",
            )
        })?;
    let mut oidc = OidcProvider::new(id, issuer, client_id, client_secret);
    oidc.label = label;
    if let Some(scopes) = raw.scopes {
        let mut scopes: Vec<String> = scopes.iter().map(|s| s.trim().to_owned()).collect();
        if !scopes.iter().any(|s| s == "openid") {
            // Without it the provider answers plain OAuth: no ID token, no one signed in.
            scopes.insert(0, "openid".to_owned());
        }
        oidc.scopes = scopes;
    }
    read_claims(at, raw.claims, &mut oidc.claims)?;
    if let Some(logout) = raw.logout {
        oidc.logout = logout;
    }
    if let Some(spec) = &raw.timeout {
        let timeout = duration(&key("timeout"), spec)?;
        if timeout.is_zero() || timeout > MAX_LDAP_TIMEOUT {
            return Err(ConfigError::invalid(
                key("timeout"),
                format!("{:?} must be more than 0 and at most 1m: a sign-in waits this long for each request", spec.0),
            ));
        }
        oidc.timeout = timeout;
    }
    if let Some(path) = raw.ca_file {
        let path = non_empty_path(&key("ca_file"), path)?;
        let pem = std::fs::read_to_string(&path)
            .map_err(|e| ConfigError::invalid(key("ca_file"), format!("cannot read {}: {e}", path.display())))?;
        if !pem.contains("-----BEGIN CERTIFICATE-----") {
            return Err(ConfigError::invalid(key("ca_file"), format!("{} holds no PEM certificate", path.display())));
        }
        oidc.ca_file = Some(path);
    }
    oidc.validate().map_err(|e| match e {
        ProviderError::BadOidc { setting, reason } => ConfigError::invalid(key(setting), reason),
        other => ConfigError::invalid(key("id"), other.to_string()),
    })?;
    Ok(oidc)
}

/// `claims.username`, `claims.groups`, `claims.email` and `claims.name` of an OpenID or SAML
/// provider, each into its setting when given; an empty one is refused.
fn read_claims(at: &str, claims: Option<file::Claims>, into: &mut ProviderClaims) -> Result<()> {
    let claims = claims.unwrap_or_default();
    let fields = ["username", "groups", "email", "name"];
    let values = [claims.username, claims.groups, claims.email, claims.name];
    let into = [&mut into.username, &mut into.groups, &mut into.email, &mut into.name];
    for ((field, value), into) in fields.into_iter().zip(values).zip(into) {
        match value.map(|v| v.trim().to_owned()) {
            Some(v) if v.is_empty() => {
                return Err(ConfigError::invalid(
                    format!("{at}.claims.{field}"),
                    "is empty; leave the key out for the default",
                ));
            }
            Some(v) => *into = v,
            None => {}
        }
    }
    Ok(())
}

/// A `kind: saml` provider: the identity provider's metadata readable and usable (an entity
/// id, an HTTP-Redirect single sign-on service, a signing certificate), the rest at core's
/// defaults.
fn saml_provider(at: &str, id: String, label: String, raw: file::LoginProvider) -> Result<SamlProvider> {
    let key = |field: &str| format!("{at}.{field}");
    if !cfg!(feature = "saml") {
        return Err(ConfigError::invalid(
            key("kind"),
            "this sessiond was built without SAML (the saml feature: cargo build --features saml)",
        ));
    }
    let Some(path) = raw.idp_metadata_file else {
        return Err(ConfigError::invalid(
            key("idp_metadata_file"),
            "missing; a saml provider needs the identity provider's metadata (an XML file)",
        ));
    };
    let path = non_empty_path(&key("idp_metadata_file"), path)?;
    #[cfg(feature = "saml")]
    sessiond_server::saml::IdpMetadata::read(&path)
        .map_err(|e| ConfigError::invalid(key("idp_metadata_file"), format!("{}: {e}", path.display())))?;
    let mut saml = SamlProvider::new(id, path);
    saml.label = label;
    if let Some(entity_id) = raw.entity_id {
        saml.entity_id = Some(entity_id.trim().to_owned());
    }
    read_claims(at, raw.claims, &mut saml.claims)?;
    saml.validate().map_err(|e| match e {
        ProviderError::BadOidc { setting, reason } => ConfigError::invalid(key(setting), reason),
        other => ConfigError::invalid(key("id"), other.to_string()),
    })?;
    Ok(saml)
}

/// A `kind: ldap` provider: the required keys present, the rest at core's defaults, and
/// everything core's [`LdapProvider::validate`] refuses named by its key.
fn ldap_provider(at: &str, id: String, label: String, raw: file::LoginProvider) -> Result<LdapProvider> {
    let key = |field: &str| format!("{at}.{field}");
    let required = |field: &str, value: Option<String>, what: &str| -> Result<String> {
        match value.map(|v| v.trim().to_owned()) {
            Some(value) if !value.is_empty() => Ok(value),
            Some(_) => Err(ConfigError::invalid(key(field), format!("is empty; set {what}"))),
            None => Err(ConfigError::invalid(key(field), format!("missing; an ldap provider needs {what}"))),
        }
    };
    let url = required("url", raw.url, "the directory's ldap:// or ldaps:// URL")?;
    let bind_dn = required("bind_dn", raw.bind_dn, "the DN of the service account that searches users")?;
    let base_dn = required("base_dn", raw.base_dn, "the DN under which users are searched")?;
    let bind_password = password(&key("bind_password"), raw.bind_password, raw.bind_password_file)?
        .ok_or_else(|| {
            ConfigError::invalid(
                key("bind_password"),
                "missing; an ldap provider needs the service account's password: set bind_password or bind_password_file",
            )
        })?;
    let mut ldap = LdapProvider::new(id, url, bind_dn, bind_password, base_dn);
    ldap.label = label;
    if let Some(start_tls) = raw.start_tls {
        ldap.start_tls = start_tls;
    }
    let text = |field: &str, value: Option<String>| -> Result<Option<String>> {
        match value.map(|v| v.trim().to_owned()) {
            Some(value) if value.is_empty() => {
                Err(ConfigError::invalid(key(field), "is empty; leave the key out for the default"))
            }
            other => Ok(other),
        }
    };
    if let Some(filter) = text("user_filter", raw.user_filter)? {
        ldap.user_filter = filter;
    }
    if let Some(attribute) = text("username_attribute", raw.username_attribute)? {
        ldap.username_attribute = attribute;
    }
    ldap.disabled_filter = text("disabled_filter", raw.disabled_filter)?;
    let groups = raw.groups.unwrap_or_default();
    let group_base = text("groups.base_dn", groups.base_dn)?;
    let group_filter = text("groups.filter", groups.filter)?;
    let group_name = text("groups.name_attribute", groups.name_attribute)?;
    ldap.groups = match (groups.member_of, group_base) {
        (Some(true), Some(_)) => {
            return Err(ConfigError::invalid(
                key("groups.base_dn"),
                "is set with groups.member_of: true; the groups come from memberOf or from a search, keep one",
            ));
        }
        (Some(false), None) => {
            return Err(ConfigError::invalid(
                key("groups.member_of"),
                "is false without groups.base_dn; the groups come from memberOf or from a search under groups.base_dn",
            ));
        }
        (_, Some(base_dn)) => LdapGroups::Search {
            base_dn,
            filter: group_filter.unwrap_or_else(|| DEFAULT_GROUP_FILTER.to_owned()),
            name_attribute: group_name.unwrap_or_else(|| DEFAULT_GROUP_NAME_ATTRIBUTE.to_owned()),
        },
        (_, None) => {
            for (field, set) in
                [("groups.filter", group_filter.is_some()), ("groups.name_attribute", group_name.is_some())]
            {
                if set {
                    return Err(ConfigError::invalid(
                        key(field),
                        "needs groups.base_dn; without it the groups come from memberOf",
                    ));
                }
            }
            LdapGroups::MemberOf
        }
    };
    let attributes = raw.attributes.unwrap_or_default();
    if let Some(names) = attributes.display_name {
        let names: Vec<String> = names.iter().map(|n| n.trim().to_owned()).collect();
        if names.is_empty() || names.iter().any(String::is_empty) {
            return Err(ConfigError::invalid(
                key("attributes.display_name"),
                "must list one or more attribute names, none empty",
            ));
        }
        ldap.display_name_attributes = names;
    }
    if let Some(email) = text("attributes.email", attributes.email)? {
        ldap.email_attribute = email;
    }
    if let Some(spec) = &raw.timeout {
        let timeout = duration(&key("timeout"), spec)?;
        if timeout.is_zero() || timeout > MAX_LDAP_TIMEOUT {
            return Err(ConfigError::invalid(
                key("timeout"),
                format!("{:?} must be more than 0 and at most 1m: a login waits this long for each step", spec.0),
            ));
        }
        ldap.timeout = timeout;
    }
    ldap.ca_file = raw.ca_file.map(|p| non_empty_path(&key("ca_file"), p)).transpose()?;
    ldap.validate().map_err(|e| match e {
        ProviderError::BadLdap { setting, reason } => {
            let field = match setting {
                "group_filter" => "groups.filter",
                "group_name_attribute" => "groups.name_attribute",
                other => other,
            };
            ConfigError::invalid(key(field), reason)
        }
        other => ConfigError::invalid(key("id"), other.to_string()),
    })?;
    let host = Url::parse(&ldap.url).ok().and_then(|u| u.host_str().map(str::to_owned)).unwrap_or_default();
    if host.is_empty() {
        return Err(ConfigError::invalid(
            key("url"),
            format!("{} names no host: write ldap://host[:port] or ldaps://host[:port]", redact_url(&ldap.url)),
        ));
    }
    Ok(ldap)
}

/// A `kind: header` provider: its header names, lowercase; no header read for two things.
fn header_provider(at: &str, id: String, label: String, raw: &file::LoginProvider) -> Result<HeaderProvider> {
    let key = |field: &str| format!("{at}.{field}");
    let user_header = header_name(&key("user_header"), raw.user_header.as_deref(), DEFAULT_USER_HEADER)?
        .ok_or_else(|| ConfigError::invalid(key("user_header"), "is empty; the user name must come in a header"))?;
    let groups_header = header_name(&key("groups_header"), raw.groups_header.as_deref(), DEFAULT_GROUPS_HEADER)?;
    let email_header = header_name(&key("email_header"), raw.email_header.as_deref(), DEFAULT_EMAIL_HEADER)?;
    let name_header = header_name(&key("name_header"), raw.name_header.as_deref(), DEFAULT_NAME_HEADER)?;
    let fields = [
        ("user_header", Some(&user_header)),
        ("groups_header", groups_header.as_ref()),
        ("email_header", email_header.as_ref()),
        ("name_header", name_header.as_ref()),
    ];
    for (position, (field, name)) in fields.iter().enumerate() {
        let Some(name) = name else { continue };
        if let Some((earlier, _)) = fields.iter().take(position).find(|(_, other)| *other == Some(name)) {
            // A user named like a group would get that group (the admin group among them).
            return Err(ConfigError::invalid(
                key(field),
                format!("{name:?} is already the {earlier}; each header may carry one thing"),
            ));
        }
    }
    Ok(HeaderProvider { id, label, user_header, groups_header, email_header, name_header })
}

/// A header name, lowercase; `default` when unset, `None` for `""` (the header is not read).
fn header_name(key: &str, text: Option<&str>, default: &str) -> Result<Option<String>> {
    let text = text.map_or(default, str::trim);
    if text.is_empty() {
        return Ok(None);
    }
    let name = axum::http::HeaderName::from_bytes(text.as_bytes()).map_err(|_| {
        ConfigError::invalid(
            key,
            format!("invalid header name {text:?}: use letters, digits and - (such as X-Forwarded-User)"),
        )
    })?;
    Ok(Some(name.as_str().to_owned()))
}

const LEVELS: [&str; 6] = ["off", "error", "warn", "info", "debug", "trace"];

fn log(raw: file::Log) -> Result<LogConfig> {
    let level = raw.level.map(|l| l.trim().to_owned()).unwrap_or_else(|| DEFAULT_LOG_LEVEL.to_owned());
    // A lone word is meant as a level; the filter syntax would take `verbose` for a target name
    // and silently log nothing.
    let lone_word = !level.contains([',', '=', ':', '[']);
    if lone_word && !LEVELS.contains(&level.to_ascii_lowercase().as_str()) {
        return Err(ConfigError::invalid(
            "log.level",
            format!("unknown level {level:?}: expected {} or filter directives", LEVELS.join(", ")),
        ));
    }
    if let Err(e) = tracing_subscriber::EnvFilter::try_new(&level) {
        return Err(ConfigError::invalid("log.level", format!("invalid filter {level:?}: {e}")));
    }
    let format = match raw.format.as_deref().map(str::trim) {
        None | Some("text") => LogFormat::Text,
        Some("json") => LogFormat::Json,
        Some(other) => {
            return Err(ConfigError::invalid("log.format", format!("unknown format {other:?}: expected text or json")));
        }
    };
    Ok(LogConfig { level, format })
}
