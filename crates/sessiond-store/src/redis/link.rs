//! The connection to Redis: opened on first use, shared by every request (multiplexed), dropped
//! and opened again after a failure, and bounded by a timeout so that a dead Redis answers
//! "unavailable" quickly instead of hanging requests.
//!
//! With Sentinel, opening a connection asks the sentinels for the current master, so a failover
//! is followed on the first failure after it: a lost connection, or a write refused by a master
//! that became a replica (`READONLY`).

use super::settings::{RedisMode, RedisSettings, invalid, node_url, redacted};
use crate::StoreError;
use redis::aio::{ConnectionLike, MultiplexedConnection};
use redis::cluster::{ClusterClient, ClusterClientBuilder};
use redis::cluster_async::ClusterConnection;
use redis::sentinel::{SentinelClient, SentinelNodeConnectionInfo, SentinelServerType};
use redis::{
    AsyncConnectionConfig, Client, Cmd, ConnectionAddr, ConnectionInfo, ErrorKind, IntoConnectionInfo, Pipeline,
    RedisConnectionInfo, RedisError, RedisFuture, RedisResult, TlsMode, Value,
};
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;
use tracing::warn;

/// Where connections go.
enum Target {
    Single(Client),
    Sentinel(tokio::sync::Mutex<SentinelClient>),
    Cluster(ClusterClient),
}

/// One open connection; cheap to clone, and clones share it.
#[derive(Clone)]
pub(crate) enum Conn {
    Single(MultiplexedConnection),
    Cluster(ClusterConnection),
}

/// The store's way to Redis.
pub(crate) struct Link {
    target: Target,
    timeout: Duration,
    /// The connection in use and its generation, so a failure drops only the connection that
    /// failed, not one opened since.
    current: Mutex<Option<(u64, Conn)>>,
    /// Held while opening a connection, so a burst of requests opens one, not one each.
    opening: tokio::sync::Mutex<()>,
    generation: AtomicU64,
}

/// A command that got no answer in time.
#[derive(Debug, thiserror::Error)]
#[error("no answer from redis within {0:?}")]
pub(crate) struct TimedOut(Duration);

impl Link {
    /// Prepares the way to Redis without connecting yet.
    pub(crate) fn new(settings: &RedisSettings) -> Result<Self, StoreError> {
        let target = match &settings.mode {
            RedisMode::Standalone { url } => {
                let mut info = parse("url", url)?;
                override_credentials(&mut info.redis, settings);
                Target::Single(Client::open(info).map_err(|e| invalid("url", format!("{}: {e}", redacted(url))))?)
            }
            RedisMode::Sentinel { master, nodes, password, db } => {
                let mut sentinels = Vec::with_capacity(nodes.len());
                for node in nodes {
                    let mut info = parse("sentinel.nodes", &node_url(node))?;
                    if password.is_some() {
                        info.redis.password.clone_from(password);
                    }
                    sentinels.push(info);
                }
                let tls = sentinels.iter().any(|info| matches!(info.addr, ConnectionAddr::TcpTls { .. }));
                let mut data = RedisConnectionInfo { db: db.unwrap_or(0), ..RedisConnectionInfo::default() };
                override_credentials(&mut data, settings);
                let node_info = SentinelNodeConnectionInfo {
                    tls_mode: tls.then_some(TlsMode::Secure),
                    redis_connection_info: Some(data),
                };
                let client =
                    SentinelClient::build(sentinels, master.clone(), Some(node_info), SentinelServerType::Master)
                        .map_err(|e| invalid("sentinel.nodes", e.to_string()))?;
                Target::Sentinel(tokio::sync::Mutex::new(client))
            }
            RedisMode::Cluster { nodes } => {
                let mut infos = Vec::with_capacity(nodes.len());
                for node in nodes {
                    infos.push(parse("cluster.nodes", &node_url(node))?);
                }
                let mut builder = ClusterClientBuilder::new(infos)
                    .connection_timeout(settings.timeout)
                    .response_timeout(settings.timeout);
                if let Some(username) = &settings.username {
                    builder = builder.username(username.clone());
                }
                if let Some(password) = &settings.password {
                    builder = builder.password(password.clone());
                }
                Target::Cluster(builder.build().map_err(|e| invalid("cluster.nodes", e.to_string()))?)
            }
        };
        Ok(Self {
            target,
            timeout: settings.timeout,
            current: Mutex::new(None),
            opening: tokio::sync::Mutex::new(()),
            generation: AtomicU64::new(0),
        })
    }

    /// Whether keys of different slots live on different servers (multi-key work must then stay
    /// within one hash tag).
    pub(crate) fn is_cluster(&self) -> bool {
        matches!(self.target, Target::Cluster(_))
    }

    /// Runs `op` on a connection within the timeout. Any failure is [`StoreError::Unavailable`];
    /// a failure that may have broken the connection drops it so the next call opens a new one.
    pub(crate) async fn run<T, F, Fut>(&self, op: F) -> Result<T, StoreError>
    where
        F: FnOnce(Conn) -> Fut,
        Fut: Future<Output = RedisResult<T>>,
    {
        let mut used = None;
        let attempt = async {
            let (generation, conn) = self.connection().await?;
            used = Some(generation);
            op(conn).await
        };
        let outcome = tokio::time::timeout(self.timeout, attempt).await;
        match outcome {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(e)) => {
                if must_reconnect(&e) {
                    self.forget(used, &e);
                }
                Err(unavailable(e))
            }
            Err(_) => {
                let e = TimedOut(self.timeout);
                self.forget(used, &e);
                Err(unavailable(e))
            }
        }
    }

    fn lock_current(&self) -> std::sync::MutexGuard<'_, Option<(u64, Conn)>> {
        // Nothing panics while the lock is held; a poisoned lock still holds a whole value.
        self.current.lock().unwrap_or_else(PoisonError::into_inner)
    }

    async fn connection(&self) -> RedisResult<(u64, Conn)> {
        if let Some(current) = self.lock_current().clone() {
            return Ok(current);
        }
        let _opening = self.opening.lock().await;
        if let Some(current) = self.lock_current().clone() {
            return Ok(current);
        }
        let conn = self.open().await?;
        let generation = self.generation.fetch_add(1, Ordering::Relaxed) + 1;
        *self.lock_current() = Some((generation, conn.clone()));
        Ok((generation, conn))
    }

    async fn open(&self) -> RedisResult<Conn> {
        let config =
            AsyncConnectionConfig::new().set_connection_timeout(self.timeout).set_response_timeout(self.timeout);
        match &self.target {
            Target::Single(client) => {
                Ok(Conn::Single(client.get_multiplexed_async_connection_with_config(&config).await?))
            }
            Target::Sentinel(sentinel) => {
                let client = sentinel.lock().await.async_get_client().await?;
                Ok(Conn::Single(client.get_multiplexed_async_connection_with_config(&config).await?))
            }
            Target::Cluster(client) => Ok(Conn::Cluster(client.get_async_connection().await?)),
        }
    }

    /// Drops the connection of `generation` (if it is still the current one).
    fn forget(&self, generation: Option<u64>, cause: &dyn std::error::Error) {
        let Some(generation) = generation else { return };
        let mut current = self.lock_current();
        if current.as_ref().is_some_and(|(g, _)| *g == generation) {
            *current = None;
            warn!(error = %cause, "redis connection dropped; the next command opens a new one");
        }
    }
}

/// Errors after which the connection (or, with Sentinel, the master it points at) is not to be
/// trusted any more.
fn must_reconnect(e: &RedisError) -> bool {
    e.is_io_error()
        || e.is_connection_dropped()
        || e.is_connection_refusal()
        || e.is_timeout()
        || matches!(e.kind(), ErrorKind::ReadOnly | ErrorKind::MasterDown | ErrorKind::ClusterDown)
}

pub(crate) fn unavailable(e: impl std::error::Error + Send + Sync + 'static) -> StoreError {
    StoreError::Unavailable { backend: "redis", source: Box::new(e) }
}

fn parse(setting: &'static str, url: &str) -> Result<ConnectionInfo, StoreError> {
    let info = url.into_connection_info().map_err(|e| invalid(setting, format!("{}: {e}", redacted(url))))?;
    if matches!(info.addr, ConnectionAddr::TcpTls { .. }) {
        // rustls needs a process-wide provider; installing it twice is harmless (the second
        // attempt reports the first and changes nothing).
        let _ = rustls::crypto::ring::default_provider().install_default();
    }
    Ok(info)
}

fn override_credentials(info: &mut RedisConnectionInfo, settings: &RedisSettings) {
    if settings.username.is_some() {
        info.username.clone_from(&settings.username);
    }
    if settings.password.is_some() {
        info.password.clone_from(&settings.password);
    }
}

impl ConnectionLike for Conn {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Self::Single(conn) => conn.req_packed_command(cmd),
            Self::Cluster(conn) => conn.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        cmd: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Self::Single(conn) => conn.req_packed_commands(cmd, offset, count),
            Self::Cluster(conn) => conn.req_packed_commands(cmd, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Self::Single(conn) => conn.get_db(),
            Self::Cluster(conn) => conn.get_db(),
        }
    }
}
