//! Where the Redis deployment is and how to reach it.

use crate::StoreError;
use std::fmt;
use std::time::Duration;

/// The key prefix when none is configured.
pub const DEFAULT_KEY_PREFIX: &str = "sessiond:";

/// How long one Redis command may take before the store answers "unavailable".
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(2);

/// How long a verified session is served from an instance's memory when no invalidation came.
pub(crate) const DEFAULT_CACHE_TTL: Duration = Duration::from_secs(5);

/// How many verified sessions an instance keeps in memory at most (about 1 KiB each).
pub(crate) const DEFAULT_CACHE_CAPACITY: usize = 100_000;

/// How to reach Redis (`storage.redis`).
#[derive(Clone, PartialEq, Eq)]
pub struct RedisSettings {
    /// Standalone server, Sentinel-managed master, or Cluster.
    pub mode: RedisMode,
    /// ACL user for the data nodes (overrides one written in a URL).
    pub username: Option<String>,
    /// Password for the data nodes (overrides one written in a URL).
    pub password: Option<String>,
    /// Put in front of every key, so several deployments can share one Redis. Must not contain
    /// `{` or `}` (they would pin every key to one cluster slot).
    pub key_prefix: String,
    /// Longest wait for one command, connecting included; past it the store is unavailable.
    pub timeout: Duration,
    /// How long a verified session may be served from this instance's memory without asking
    /// Redis: the bound on staleness should an invalidation broadcast be missed. Writes from any
    /// instance invalidate cached copies everywhere at once, and while the broadcast is not
    /// received the cache is not used at all. `None` or zero: no cache, every lookup asks Redis.
    /// Default: 5 s.
    pub cache_ttl: Option<Duration>,
    /// Most sessions kept in the cache (about 1 KiB each). Default: 100 000.
    pub cache_capacity: usize,
}

/// The shape of the Redis deployment.
#[derive(Clone, PartialEq, Eq)]
pub enum RedisMode {
    /// One server: `redis://[user:password@]host[:port][/db]`, `rediss://…` (TLS), or
    /// `unix:///path/to/redis.sock[?db=N]`.
    Standalone {
        /// The server's URL.
        url: String,
    },
    /// A master found through Redis Sentinel, followed across failovers.
    Sentinel {
        /// The master's name in the sentinels' configuration.
        master: String,
        /// Sentinel addresses: `host:port`, or `redis://host:port` / `rediss://host:port`.
        nodes: Vec<String>,
        /// Password of the sentinels themselves (the data nodes use [`RedisSettings::password`]).
        password: Option<String>,
        /// Database index on the master (default 0).
        db: Option<i64>,
    },
    /// Redis Cluster: any reachable nodes; the rest are discovered.
    Cluster {
        /// Node addresses: `host:port`, or `redis://host:port` / `rediss://host:port`.
        nodes: Vec<String>,
    },
}

impl RedisSettings {
    /// Settings for `mode` with the default prefix, timeout and cache, and no credentials.
    pub fn new(mode: RedisMode) -> Self {
        Self {
            mode,
            username: None,
            password: None,
            key_prefix: DEFAULT_KEY_PREFIX.to_owned(),
            timeout: DEFAULT_TIMEOUT,
            cache_ttl: Some(DEFAULT_CACHE_TTL),
            cache_capacity: DEFAULT_CACHE_CAPACITY,
        }
    }

    /// The cache's lifetime for entries, when the cache is on.
    pub(crate) fn cache(&self) -> Option<Duration> {
        self.cache_ttl.filter(|ttl| !ttl.is_zero())
    }

    /// Settings for one server at `url`.
    pub fn standalone(url: impl Into<String>) -> Self {
        Self::new(RedisMode::Standalone { url: url.into() })
    }

    /// Refuses settings that cannot work, naming the setting.
    pub(crate) fn validate(&self) -> Result<(), StoreError> {
        if self.key_prefix.contains(['{', '}']) {
            return Err(invalid("key_prefix", format!("{:?} contains '{{' or '}}'", self.key_prefix)));
        }
        if self.timeout.is_zero() {
            return Err(invalid("timeout", "must be longer than zero".to_owned()));
        }
        if self.cache().is_some() && self.cache_capacity == 0 {
            return Err(invalid("cache_capacity", "must be at least 1 while the cache is on".to_owned()));
        }
        match &self.mode {
            RedisMode::Standalone { url } => {
                if url.trim().is_empty() {
                    return Err(invalid("url", "is empty".to_owned()));
                }
            }
            RedisMode::Sentinel { master, nodes, .. } => {
                if master.trim().is_empty() {
                    return Err(invalid("sentinel.master", "is empty".to_owned()));
                }
                if nodes.is_empty() {
                    return Err(invalid("sentinel.nodes", "lists no sentinel".to_owned()));
                }
            }
            RedisMode::Cluster { nodes } => {
                if nodes.is_empty() {
                    return Err(invalid("cluster.nodes", "lists no node".to_owned()));
                }
            }
        }
        Ok(())
    }
}

pub(crate) fn invalid(setting: &'static str, reason: String) -> StoreError {
    StoreError::InvalidSettings { setting, reason }
}

/// `host:port` as a URL; URLs pass through.
pub(crate) fn node_url(node: &str) -> String {
    if node.contains("://") { node.to_owned() } else { format!("redis://{node}") }
}

/// `url` with any password replaced, for messages and logs.
pub(crate) fn redacted(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut parsed) if parsed.password().is_some() => {
            let _ = parsed.set_password(Some("redacted"));
            parsed.to_string()
        }
        Ok(parsed) => parsed.to_string(),
        // Not a URL at all: it may be anything the user typed, password included.
        Err(_) => "(unparsable URL)".to_owned(),
    }
}

impl fmt::Debug for RedisSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisSettings")
            .field("mode", &self.mode)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "[redacted]"))
            .field("key_prefix", &self.key_prefix)
            .field("timeout", &self.timeout)
            .field("cache_ttl", &self.cache_ttl)
            .field("cache_capacity", &self.cache_capacity)
            .finish()
    }
}

impl fmt::Debug for RedisMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let nodes = |nodes: &[String]| nodes.iter().map(|n| redacted(&node_url(n))).collect::<Vec<_>>();
        match self {
            Self::Standalone { url } => f.debug_struct("Standalone").field("url", &redacted(url)).finish(),
            Self::Sentinel { master, nodes: list, password, db } => f
                .debug_struct("Sentinel")
                .field("master", master)
                .field("nodes", &nodes(list))
                .field("password", &password.as_ref().map(|_| "[redacted]"))
                .field("db", db)
                .finish(),
            Self::Cluster { nodes: list } => f.debug_struct("Cluster").field("nodes", &nodes(list)).finish(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_a_password() {
        let mut settings = RedisSettings::standalone("redis://app:hunter2@localhost:6379/2");
        settings.password = Some("sw0rdfish".into());
        let shown = format!("{settings:?}");
        assert!(!shown.contains("hunter2") && !shown.contains("sw0rdfish"), "{shown}");
        assert!(shown.contains("localhost:6379/2"), "{shown}");

        let sentinel = RedisSettings::new(RedisMode::Sentinel {
            master: "mymaster".into(),
            nodes: vec!["redis://:s3cret@10.0.0.1:26379".into(), "10.0.0.2:26379".into()],
            password: Some("s3cret".into()),
            db: Some(1),
        });
        let shown = format!("{sentinel:?}");
        assert!(!shown.contains("s3cret"), "{shown}");
        assert!(shown.contains("10.0.0.2:26379"), "{shown}");
    }

    #[test]
    fn unusable_settings_are_refused_by_name() {
        let mut settings = RedisSettings::standalone("redis://localhost");
        settings.key_prefix = "app{1}:".into();
        let err = settings.validate().unwrap_err();
        assert!(matches!(err, StoreError::InvalidSettings { setting: "key_prefix", .. }), "{err:?}");

        let settings = RedisSettings::new(RedisMode::Cluster { nodes: vec![] });
        assert!(matches!(settings.validate(), Err(StoreError::InvalidSettings { setting: "cluster.nodes", .. })));

        let settings = RedisSettings::new(RedisMode::Sentinel {
            master: "".into(),
            nodes: vec!["a:1".into()],
            password: None,
            db: None,
        });
        assert!(matches!(settings.validate(), Err(StoreError::InvalidSettings { setting: "sentinel.master", .. })));

        let mut settings = RedisSettings::standalone("redis://localhost");
        settings.timeout = Duration::ZERO;
        assert!(matches!(settings.validate(), Err(StoreError::InvalidSettings { setting: "timeout", .. })));

        let mut settings = RedisSettings::standalone("redis://localhost");
        settings.cache_capacity = 0;
        assert!(matches!(settings.validate(), Err(StoreError::InvalidSettings { setting: "cache_capacity", .. })));
        settings.cache_ttl = None;
        assert!(settings.validate().is_ok(), "no cache, no capacity needed");
        assert!(RedisSettings::standalone("redis://localhost").validate().is_ok());
    }

    #[test]
    fn the_cache_is_on_by_default_and_zero_turns_it_off() {
        let mut settings = RedisSettings::standalone("redis://localhost");
        assert_eq!(settings.cache_ttl, Some(Duration::from_secs(5)));
        assert_eq!(settings.cache_capacity, 100_000);
        assert_eq!(settings.cache(), Some(Duration::from_secs(5)));
        settings.cache_ttl = Some(Duration::ZERO);
        assert_eq!(settings.cache(), None);
        settings.cache_ttl = None;
        assert_eq!(settings.cache(), None);
    }

    #[test]
    fn bare_addresses_become_urls() {
        assert_eq!(node_url("10.0.0.1:7000"), "redis://10.0.0.1:7000");
        assert_eq!(node_url("rediss://h:1"), "rediss://h:1");
    }
}
