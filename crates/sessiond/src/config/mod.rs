//! Configuration: where sessiond reads its settings and what it makes of them.
//!
//! Two steps. First the sources are merged into one YAML tree: the file (`--config FILE`, or
//! `./sessiond.yml` when it exists), then environment variables `SESSIOND__SECTION__KEY` on top
//! ([`env`](mod@env)). The tree is checked against the list of known keys ([`schema`]), so a typo is
//! reported with its full path, and deserialized into the structs of [`file`](mod@file), which
//! mirror the YAML. Then [`validate`] fills in defaults, reads the `secret_file` twin, and turns
//! everything into the types the rest of the program uses ([`Config`], core's `RealmPolicy`,
//! `Timeouts` and `AccessControl`); nothing else reads the raw structs. Every refusal names the key:
//! `realms.main.inactivity: invalid duration "5x": …`.
//!
//! The reference for users is `docs/configuration.md`; a test keeps it in step with [`schema`].

mod effective;
mod env;
mod file;
mod schema;
mod validate;

use sessiond_core::access::AccessControl;
use sessiond_core::realm::RealmPolicy;
use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;
use url::Url;

pub(crate) use effective::{redact_url, render_effective};

/// The file read when `--config` is not given, if it exists in the working directory.
pub(crate) const DEFAULT_CONFIG_FILE: &str = "sessiond.yml";

/// The prefix of environment variables that set configuration keys.
pub(crate) const ENV_PREFIX: &str = "SESSIOND__";

/// The validated configuration of a sessiond instance.
#[derive(Clone, Debug)]
pub(crate) struct Config {
    /// Directory holding the embedded store, the generated secret, the users file and the
    /// control socket (key `data_dir`).
    pub(crate) data_dir: PathBuf,
    /// HTTP listener and request handling (key `server`).
    pub(crate) server: ServerConfig,
    /// Where sessions live (key `storage`).
    pub(crate) storage: StorageConfig,
    /// The server secret (key `secret` or `secret_file`); `None`: `serve` generates one into
    /// `<data_dir>/secret` on first run and reuses it afterwards.
    pub(crate) secret: Option<Secret>,
    /// The secret before a rotation (key `secret_previous` or `secret_previous_file`): values the
    /// Redis store sealed under it still open. Only with `secret`.
    pub(crate) secret_previous: Option<Secret>,
    /// The realms, sorted by name; at least one (key `realms.<name>`).
    pub(crate) realms: Vec<RealmPolicy>,
    /// The users file (key `users.file`).
    pub(crate) users_file: PathBuf,
    /// Login throttling (key `regulation`).
    pub(crate) regulation: Regulation,
    /// Diagnostic logging (key `log`).
    pub(crate) log: LogConfig,
    /// Where audit events are appended as JSON lines; no audit log when `None` (key `audit.path`).
    pub(crate) audit_path: Option<PathBuf>,
    /// Whether audit events also go to standard output (key `audit.stdout`).
    pub(crate) audit_stdout: bool,
    /// Access rules for forward auth (key `access_control`); deny everything by default.
    pub(crate) access_control: AccessControl,
    /// Login providers beside the users file (key `authentication.providers`), in order.
    pub(crate) providers: Vec<sessiond_core::provider::Provider>,
    /// How often LDAP directories are asked whether the users with sessions are still there
    /// (key `authentication.refresh_interval`).
    pub(crate) refresh_interval: Duration,
    /// The configuration file that was read, if any (for messages).
    pub(crate) source: Option<PathBuf>,
}

/// The HTTP side: where to listen, the public URL, whom to trust.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct ServerConfig {
    /// Address and port to listen on.
    pub(crate) listen: SocketAddr,
    /// Public URL of the portal (login page); realms default to it.
    pub(crate) portal_url: Url,
    /// Peers whose `X-Forwarded-*` / `X-Original-*` headers are believed; loopback by default.
    pub(crate) trusted_proxies: Vec<ipnet::IpNet>,
    /// Extra redirect targets after login, normalised: `host`, `*.host` or `scheme://host[:port]`.
    pub(crate) allowed_redirects: Vec<String>,
    /// Members of this group may use the admin API.
    pub(crate) admin_group: String,
    /// How recent a sign-in must be for sensitive actions to go ahead without the password;
    /// zero asks for it every time.
    pub(crate) reauth_window: Duration,
    /// Largest request body accepted, in bytes.
    pub(crate) max_body_bytes: usize,
    /// Where `GET /metrics` is served instead of the main listener, when set.
    pub(crate) metrics_listen: Option<SocketAddr>,
}

/// The session store backend.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum StorageConfig {
    /// An embedded database file, held by one process.
    Embedded {
        /// Path of the database file.
        path: PathBuf,
    },
    /// In memory: every session ends when the process stops.
    Memory,
    /// Redis (one server, Sentinel or Cluster), shared by several instances. Passwords inside
    /// never show in `Debug`.
    Redis(sessiond_store::RedisSettings),
}

/// Login throttling: after `max_retries` failures within `find_time`, a user is refused for
/// `ban_time`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Regulation {
    /// Failed logins allowed within `find_time`; `0` turns throttling off.
    pub(crate) max_retries: u32,
    /// Window in which failures are counted.
    pub(crate) find_time: Duration,
    /// How long a user is refused once over the limit.
    pub(crate) ban_time: Duration,
}

impl Default for Regulation {
    fn default() -> Self {
        Self { max_retries: 3, find_time: Duration::from_secs(120), ban_time: Duration::from_secs(300) }
    }
}

/// Diagnostic logging.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct LogConfig {
    /// An `EnvFilter` directive: a level (`info`) or per-target levels (`info,sessiond=debug`).
    pub(crate) level: String,
    /// Line format.
    pub(crate) format: LogFormat,
}

/// How log lines are written.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

impl LogFormat {
    /// The configuration word for this format.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::Text => "text",
            Self::Json => "json",
        }
    }
}

/// The server secret. It derives the keys that encrypt data at rest and client-side cookies, so it
/// never appears in `Debug` output, logs or the effective configuration.
#[derive(Clone)]
pub(crate) struct Secret(Vec<u8>);

/// A secret shorter than [`Secret::MIN_LEN`] bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the secret is {len} bytes long; at least {min} are required", min = Secret::MIN_LEN)]
pub(crate) struct SecretTooShort {
    /// Length of the refused secret, in bytes.
    pub(crate) len: usize,
}

impl Secret {
    /// The shortest secret accepted, in bytes.
    pub(crate) const MIN_LEN: usize = 32;

    /// A secret made of `bytes`.
    ///
    /// # Errors
    /// [`SecretTooShort`] when `bytes` holds fewer than [`Secret::MIN_LEN`] bytes.
    pub(crate) fn new(bytes: Vec<u8>) -> Result<Self, SecretTooShort> {
        if bytes.len() < Self::MIN_LEN {
            return Err(SecretTooShort { len: bytes.len() });
        }
        Ok(Self(bytes))
    }

    /// The secret's bytes, for key derivation only.
    pub(crate) fn expose(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

/// Why the configuration was refused. Every variant names the key (or the file, or the variable).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub(crate) enum ConfigError {
    /// The configuration file could not be read.
    #[error("cannot read configuration file {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The configuration file is not valid YAML.
    #[error("{}: {source}", path.display())]
    Yaml {
        /// The file.
        path: PathBuf,
        /// The parser's message, with line and column.
        #[source]
        source: serde_yaml_ng::Error,
    },
    /// A key that sessiond does not know, probably a typo.
    #[error("unknown key {key:?}{}", did_you_mean(.suggestion.as_deref()))]
    UnknownKey {
        /// Full path of the key.
        key: String,
        /// A known key with a similar name.
        suggestion: Option<String>,
    },
    /// An environment variable that names no key.
    #[error("environment variable {var}: {reason}")]
    Env {
        /// The variable's name.
        var: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A key whose value is refused.
    #[error("{key}: {reason}")]
    Invalid {
        /// Full path of the key, such as `realms.main.inactivity`.
        key: String,
        /// Why the value is refused (quoting it, unless it is secret).
        reason: String,
    },
}

impl ConfigError {
    /// The path of the offending key, when the error is about one key.
    #[cfg(test)]
    pub(crate) fn key(&self) -> Option<&str> {
        match self {
            Self::UnknownKey { key, .. } | Self::Invalid { key, .. } => Some(key),
            Self::Read { .. } | Self::Yaml { .. } | Self::Env { .. } => None,
        }
    }

    pub(super) fn invalid(key: impl Into<String>, reason: impl Into<String>) -> Self {
        Self::Invalid { key: key.into(), reason: reason.into() }
    }
}

fn did_you_mean(suggestion: Option<&str>) -> String {
    suggestion.map(|s| format!(" (did you mean {s:?}?)")).unwrap_or_default()
}

/// Loads the configuration: the file, then the environment, then validation.
///
/// `explicit` is the `--config` path; without it, `./sessiond.yml` is read when it exists and the
/// defaults apply otherwise. `env` is the process environment (`std::env::vars()`); only
/// variables starting with `SESSIOND__` are read.
///
/// # Errors
/// [`ConfigError`] naming the key (or the file or variable) and the reason: an explicit file that
/// cannot be read, invalid YAML, an unknown key, a value of the wrong type or refused by
/// validation.
pub(crate) fn load(
    explicit: Option<&Path>,
    env: impl IntoIterator<Item = (String, String)>,
) -> Result<Config, ConfigError> {
    let path = match explicit {
        Some(path) => Some(path.to_path_buf()),
        None => Some(PathBuf::from(DEFAULT_CONFIG_FILE)).filter(|p| p.is_file()),
    };
    let text = match &path {
        Some(path) => {
            Some(std::fs::read_to_string(path).map_err(|source| ConfigError::Read { path: path.clone(), source })?)
        }
        None => None,
    };
    let file = match (&path, &text) {
        (Some(path), Some(text)) => Some((path.as_path(), text.as_str())),
        _ => None,
    };
    from_sources(file, env)
}

/// Builds the configuration from a file's text (with its path, for messages) and the environment.
fn from_sources(
    file: Option<(&Path, &str)>,
    env: impl IntoIterator<Item = (String, String)>,
) -> Result<Config, ConfigError> {
    let mut tree = match file {
        Some((path, text)) => parse_yaml(path, text)?,
        None => serde_yaml_ng::Value::Null,
    };
    let from_env = env::overlay(&mut tree, env)?;
    let result = schema::normalize(tree)
        .and_then(|tree| {
            serde_yaml_ng::from_value::<file::ConfigFile>(tree)
                .map_err(|e| ConfigError::invalid("configuration", e.to_string()))
        })
        .and_then(validate::validate);
    let mut config = result.map_err(|e| blame_env(e, &from_env))?;
    config.source = file.map(|(path, _)| path.to_path_buf());
    Ok(config)
}

fn parse_yaml(path: &Path, text: &str) -> Result<serde_yaml_ng::Value, ConfigError> {
    let yaml = |source| ConfigError::Yaml { path: path.to_path_buf(), source };
    let mut tree: serde_yaml_ng::Value = serde_yaml_ng::from_str(text).map_err(yaml)?;
    // `<<: *anchor` lets several realms share settings.
    tree.apply_merge().map_err(yaml)?;
    Ok(tree)
}

/// Points at the environment variable when the refused value came from one, since the user
/// would otherwise look for it in the file.
fn blame_env(error: ConfigError, from_env: &BTreeMap<String, String>) -> ConfigError {
    match error {
        ConfigError::Invalid { key, reason } => match from_env.get(&key) {
            Some(var) => ConfigError::Invalid { key, reason: format!("{reason} (set by {var})") },
            None => ConfigError::Invalid { key, reason },
        },
        other => other,
    }
}

#[cfg(test)]
mod tests;
