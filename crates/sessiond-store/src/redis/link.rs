//! The connection to Redis: opened on first use, shared by every request (multiplexed), dropped
//! and opened again after a failure, and bounded by a timeout so that a dead Redis answers
//! "unavailable" quickly instead of hanging requests.
//!
//! With Sentinel, opening a connection asks the sentinels for the current master, so a failover
//! is followed on the first failure after it: a lost connection, or a write refused by a master
//! that became a replica (`READONLY`).
//!
//! The invalidation broadcast has connections of its own ([`Subscriber`]), opened to the same
//! place the same way.

use super::settings::{RedisMode, RedisSettings, invalid, node_url, redacted};
use crate::StoreError;
use redis::aio::{ConnectionLike, MultiplexedConnection};
use redis::cluster::{ClusterClient, ClusterClientBuilder};
use redis::cluster_async::ClusterConnection;
use redis::sentinel::{SentinelClient, SentinelNodeConnectionInfo, SentinelServerType};
use redis::{
    AsyncConnectionConfig, Client, Cmd, ConnectionAddr, ConnectionInfo, ErrorKind, IntoConnectionInfo, Pipeline,
    ProtocolVersion, PushInfo, RedisConnectionInfo, RedisError, RedisFuture, RedisResult, TlsMode, Value,
};
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;
use tokio::sync::mpsc::UnboundedSender;
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
                let info = standalone_info(settings, url, None)?;
                Target::Single(Client::open(info).map_err(|e| invalid("url", format!("{}: {e}", redacted(url))))?)
            }
            RedisMode::Sentinel { .. } => {
                Target::Sentinel(tokio::sync::Mutex::new(sentinel_client(settings, ProtocolVersion::RESP2)?))
            }
            RedisMode::Cluster { nodes } => {
                let mut builder = ClusterClientBuilder::new(cluster_infos(nodes)?)
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

/// The standalone server's connection details, speaking `protocol` (or what the URL asks for).
fn standalone_info(
    settings: &RedisSettings,
    url: &str,
    protocol: Option<ProtocolVersion>,
) -> Result<ConnectionInfo, StoreError> {
    let mut info = parse("url", url)?;
    override_credentials(&mut info.redis, settings);
    if let Some(protocol) = protocol {
        info.redis.protocol = protocol;
    }
    Ok(info)
}

/// A client that asks the sentinels for the current master, to which it speaks `protocol`.
fn sentinel_client(settings: &RedisSettings, protocol: ProtocolVersion) -> Result<SentinelClient, StoreError> {
    let RedisMode::Sentinel { master, nodes, password, db } = &settings.mode else {
        return Err(invalid("sentinel", "not a Sentinel deployment".to_owned()));
    };
    let mut sentinels = Vec::with_capacity(nodes.len());
    for node in nodes {
        let mut info = parse("sentinel.nodes", &node_url(node))?;
        if password.is_some() {
            info.redis.password.clone_from(password);
        }
        sentinels.push(info);
    }
    let tls = sentinels.iter().any(|info| matches!(info.addr, ConnectionAddr::TcpTls { .. }));
    let mut data = RedisConnectionInfo { db: db.unwrap_or(0), protocol, ..RedisConnectionInfo::default() };
    override_credentials(&mut data, settings);
    let node_info =
        SentinelNodeConnectionInfo { tls_mode: tls.then_some(TlsMode::Secure), redis_connection_info: Some(data) };
    SentinelClient::build(sentinels, master.clone(), Some(node_info), SentinelServerType::Master)
        .map_err(|e| invalid("sentinel.nodes", e.to_string()))
}

fn cluster_infos(nodes: &[String]) -> Result<Vec<ConnectionInfo>, StoreError> {
    nodes.iter().map(|node| parse("cluster.nodes", &node_url(node))).collect()
}

/// Where the invalidation broadcast is received from.
enum Source {
    Single(Client),
    Sentinel(SentinelClient),
    /// Every configured node, tried in turn: cluster nodes pass published messages to each other,
    /// so any one of them will do.
    Cluster {
        nodes: Vec<Client>,
        next: usize,
    },
}

/// Opens the connections the invalidation broadcast arrives on: separate from the store's own
/// (a subscribed connection carries pushed messages), speaking RESP3 so that pushes and replies
/// share one connection and a lost link is reported as it happens.
pub(crate) struct Subscriber {
    source: Source,
    timeout: Duration,
}

impl Subscriber {
    pub(crate) fn new(settings: &RedisSettings) -> Result<Self, StoreError> {
        let source = match &settings.mode {
            RedisMode::Standalone { url } => {
                let info = standalone_info(settings, url, Some(ProtocolVersion::RESP3))?;
                Source::Single(Client::open(info).map_err(|e| invalid("url", format!("{}: {e}", redacted(url))))?)
            }
            RedisMode::Sentinel { .. } => Source::Sentinel(sentinel_client(settings, ProtocolVersion::RESP3)?),
            RedisMode::Cluster { nodes } => {
                let mut clients = Vec::with_capacity(nodes.len());
                for mut info in cluster_infos(nodes)? {
                    override_credentials(&mut info.redis, settings);
                    info.redis.protocol = ProtocolVersion::RESP3;
                    clients.push(Client::open(info).map_err(|e| invalid("cluster.nodes", e.to_string()))?);
                }
                Source::Cluster { nodes: clients, next: 0 }
            }
        };
        Ok(Self { source, timeout: settings.timeout })
    }

    /// Opens a connection whose pushed messages (and the news of its loss) go to `pushes`, and
    /// subscribes it to `channel`, all within the timeout.
    pub(crate) async fn subscribe(
        &mut self,
        channel: &str,
        pushes: UnboundedSender<PushInfo>,
    ) -> Result<MultiplexedConnection, StoreError> {
        let config = AsyncConnectionConfig::new()
            .set_connection_timeout(self.timeout)
            .set_response_timeout(self.timeout)
            .set_push_sender(pushes);
        let attempt = async {
            let mut conn = match &mut self.source {
                Source::Single(client) => client.get_multiplexed_async_connection_with_config(&config).await?,
                Source::Sentinel(sentinel) => {
                    sentinel.async_get_client().await?.get_multiplexed_async_connection_with_config(&config).await?
                }
                Source::Cluster { nodes, next } => {
                    let Some(client) = nodes.get(*next % nodes.len().max(1)) else {
                        return Err(RedisError::from((ErrorKind::ClientError, "no cluster node configured")));
                    };
                    // The next attempt tries the next node, whether or not this one answers.
                    *next = next.wrapping_add(1);
                    client.get_multiplexed_async_connection_with_config(&config).await?
                }
            };
            conn.subscribe(channel).await?;
            Ok(conn)
        };
        match tokio::time::timeout(self.timeout, attempt).await {
            Ok(Ok(conn)) => Ok(conn),
            Ok(Err(e)) => Err(unavailable(e)),
            Err(_) => Err(unavailable(TimedOut(self.timeout))),
        }
    }

    /// Checks that the subscribed connection still answers, within the timeout.
    pub(crate) async fn ping(&self, conn: &mut MultiplexedConnection) -> Result<(), StoreError> {
        match tokio::time::timeout(self.timeout, redis::cmd("PING").query_async::<Value>(conn)).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => Err(unavailable(e)),
            Err(_) => Err(unavailable(TimedOut(self.timeout))),
        }
    }
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
