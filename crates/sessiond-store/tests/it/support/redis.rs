//! Real `redis-server` processes for the Redis store's tests.
//!
//! Three shared deployments are started once per test binary, on free loopback ports, the first
//! time a test asks for them: a standalone server, a Sentinel set (master, replica, sentinel, with
//! passwords) and a three-master Cluster. Every case gets a fresh store with its own key prefix,
//! so cases run in parallel on them. Tests that kill or freeze Redis start a [`Server`] of their
//! own.
//!
//! Cleanup: every process joins one process group, held open by an idle `sleep`, and a watchdog
//! shell kills that group and removes the data directory as soon as the test binary is gone,
//! however it ends (statics are never dropped, and a crash skips destructors). A [`Server`] owned
//! by a test is also killed when it drops.
//!
//! Without `redis-server` on the PATH these tests print a loud notice and pass without running;
//! with `CI=true` they fail instead.

use sessiond_store::{RedisKey, RedisKeys, RedisMode, RedisSettings, RedisStore};
use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use tokio::sync::OnceCell;

/// The secret the tests' stores derive their at-rest key from.
pub(crate) const SECRET: &[u8] = b"redis-store-tests-secret-0123456789abcdef";
/// Password of the Sentinel set's data nodes.
pub(crate) const DATA_PASSWORD: &str = "data-pw-3b9f";
/// Password of the sentinel itself.
pub(crate) const SENTINEL_PASSWORD: &str = "sentinel-pw-77c1";
/// The master's name in the sentinel's configuration.
pub(crate) const MASTER_NAME: &str = "sessiond-test";

pub(crate) fn keys() -> RedisKeys {
    RedisKeys::new(RedisKey::from_secret(SECRET))
}

/// A key prefix no other case uses.
pub(crate) fn unique_prefix() -> String {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    format!("t{}-{}:", std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed))
}

/// Whether the tests can run. Without `redis-server`: a loud notice, or a failure under CI.
pub(crate) fn redis_installed() -> bool {
    static FOUND: OnceLock<bool> = OnceLock::new();
    let found = *FOUND.get_or_init(|| {
        std::env::var_os("PATH")
            .is_some_and(|path| std::env::split_paths(&path).any(|dir| dir.join("redis-server").is_file()))
    });
    if !found {
        if std::env::var("CI").as_deref() == Ok("true") {
            panic!("redis-server is not on the PATH, and CI=true: the Redis store tests must run");
        }
        eprintln!(
            "\n*** SKIPPED: redis-server is not on the PATH, so this Redis store test did not run. \
             Install Redis 7 (redis-server, redis-cli) to run it. ***\n"
        );
    }
    found
}

/// The process group every server joins, and the directory their data lives in.
struct Reaper {
    group: i32,
    dir: PathBuf,
    // Never waited for: both outlive the test binary on purpose.
    _anchor: Child,
    _watchdog: Child,
}

fn reaper() -> &'static Reaper {
    static REAPER: OnceLock<Reaper> = OnceLock::new();
    REAPER.get_or_init(|| {
        let dir = tempfile::Builder::new().prefix("sessiond-redis-tests-").tempdir().unwrap().keep();
        // The group leader does nothing but keep the group alive while servers come and go.
        let anchor = Command::new("sleep")
            .arg("1000000")
            .process_group(0)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("starting the process group anchor");
        let group = anchor.id() as i32;
        let script = format!(
            "while kill -0 {} 2>/dev/null; do sleep 0.2; done; kill -9 -{group} 2>/dev/null; rm -rf '{}'",
            std::process::id(),
            dir.display()
        );
        let watchdog = Command::new("sh")
            .arg("-c")
            .arg(script)
            .process_group(0)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("starting the watchdog");
        Reaper { group, dir, _anchor: anchor, _watchdog: watchdog }
    })
}

/// A fresh directory under the shared data directory.
pub(crate) fn data_dir(name: &str) -> PathBuf {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let dir = reaper().dir.join(format!("{name}-{}", NEXT.fetch_add(1, Ordering::Relaxed)));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A loopback port that is free now (and, for cluster nodes, whose bus port +10000 is too).
fn free_port(with_bus: bool) -> u16 {
    loop {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        if !with_bus {
            return port;
        }
        if port < 55_000 && TcpListener::bind(("127.0.0.1", port + 10_000)).is_ok() {
            return port;
        }
    }
}

/// One `redis-server` process.
pub(crate) struct Server {
    child: Option<Child>,
    pub(crate) port: u16,
    args: Vec<String>,
    ready: &'static str,
}

impl Server {
    /// Starts `redis-server` with `args` on a free port (`--port` is added), retrying on another
    /// port if that one was taken meanwhile.
    fn start(dir: &Path, args: &[&str], with_bus: bool) -> Self {
        for _ in 0..20 {
            let port = free_port(with_bus);
            let mut full: Vec<String> = vec![
                "--port".into(),
                port.to_string(),
                "--bind".into(),
                "127.0.0.1".into(),
                "--dir".into(),
                dir.display().to_string(),
                "--save".into(),
                "".into(),
                "--daemonize".into(),
                "no".into(),
                "--logfile".into(),
                "".into(),
            ];
            full.extend(args.iter().map(|a| (*a).to_owned()));
            let mut server = Self { child: None, port, args: full, ready: "Ready to accept connections" };
            if server.spawn() {
                return server;
            }
        }
        panic!("redis-server did not start on any of 20 ports");
    }

    /// Starts a sentinel from `config` (a file it may rewrite).
    fn sentinel(config: &Path, port: u16) -> Self {
        let args = vec![config.display().to_string(), "--sentinel".into()];
        let mut server = Self { child: None, port, args, ready: "+monitor master" };
        assert!(server.spawn(), "the sentinel did not start");
        server
    }

    /// Runs the process and waits for its ready line; `false` if it exited first.
    fn spawn(&mut self) -> bool {
        let mut child = Command::new("redis-server")
            .args(&self.args)
            .process_group(reaper().group)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("starting redis-server");
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let ready = lines.by_ref().map_while(Result::ok).any(|line| line.contains(self.ready));
        // Keep reading, or the server blocks once the pipe is full.
        std::thread::spawn(move || lines.for_each(drop));
        if ready {
            self.child = Some(child);
        } else {
            let _ = child.kill();
            let _ = child.wait();
        }
        ready
    }

    pub(crate) fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    pub(crate) fn pid(&self) -> u32 {
        self.child.as_ref().expect("server is running").id()
    }

    /// Kills the process at once (SIGKILL: no shutdown save).
    pub(crate) fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts it again on the same port, with the same data directory.
    pub(crate) fn restart(&mut self) {
        self.kill();
        assert!(self.spawn(), "redis-server did not start again on port {}", self.port);
    }

    /// Freezes the process (SIGSTOP): connections stay open and nothing answers.
    pub(crate) fn freeze(&self) {
        signal(self.pid(), "STOP");
    }

    /// Lets a frozen process run again.
    pub(crate) fn thaw(&self) {
        signal(self.pid(), "CONT");
    }
}

fn signal(pid: u32, name: &str) {
    let status = Command::new("kill").arg(format!("-{name}")).arg(pid.to_string()).status().unwrap();
    assert!(status.success(), "kill -{name} {pid}");
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A standalone server that only this test uses, so it may kill it. Data is written to an
/// append-only file on every write, so a killed server comes back with it.
pub(crate) fn own_server() -> Server {
    Server::start(&data_dir("own"), &["--appendonly", "yes", "--appendfsync", "always"], false)
}

/// Runs `redis-cli` with `args` and returns what it printed.
pub(crate) fn cli(args: &[&str]) -> String {
    let out = Command::new("redis-cli").args(args).stdin(Stdio::null()).output().expect("running redis-cli");
    assert!(out.status.success(), "redis-cli {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Polls `check` (every 50 ms, for at most 30 s) until it holds.
async fn wait_until(what: &str, mut check: impl FnMut() -> bool) {
    for _ in 0..600 {
        if check() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("gave up waiting for {what}");
}

/// The shared standalone server (also listening on a unix socket).
pub(crate) struct Standalone {
    pub(crate) server: Server,
    pub(crate) socket: PathBuf,
}

/// The shared Sentinel set.
pub(crate) struct SentinelSet {
    pub(crate) master: Server,
    pub(crate) replica: Server,
    pub(crate) sentinel: Server,
}

/// The shared Cluster.
pub(crate) struct Cluster {
    pub(crate) nodes: Vec<Server>,
}

pub(crate) async fn standalone() -> Option<&'static Standalone> {
    static CELL: OnceCell<Standalone> = OnceCell::const_new();
    if !redis_installed() {
        return None;
    }
    Some(
        CELL.get_or_init(|| async {
            let dir = data_dir("standalone");
            let socket = dir.join("redis.sock");
            let socket_text = socket.display().to_string();
            let server = Server::start(&dir, &["--unixsocket", &socket_text, "--unixsocketperm", "700"], false);
            Standalone { server, socket }
        })
        .await,
    )
}

pub(crate) async fn sentinel_set() -> Option<&'static SentinelSet> {
    static CELL: OnceCell<SentinelSet> = OnceCell::const_new();
    if !redis_installed() {
        return None;
    }
    Some(CELL.get_or_init(SentinelSet::start).await)
}

pub(crate) async fn cluster() -> Option<&'static Cluster> {
    static CELL: OnceCell<Cluster> = OnceCell::const_new();
    if !redis_installed() {
        return None;
    }
    Some(
        CELL.get_or_init(|| async {
            let nodes: Vec<Server> = (0..3)
                .map(|i| {
                    let dir = data_dir(&format!("cluster-{i}"));
                    let config = dir.join("nodes.conf").display().to_string();
                    let args = [
                        "--cluster-enabled",
                        "yes",
                        "--cluster-config-file",
                        &config,
                        "--cluster-node-timeout",
                        "5000",
                    ];
                    Server::start(&dir, &args, true)
                })
                .collect();
            let addresses: Vec<String> = nodes.iter().map(|n| format!("127.0.0.1:{}", n.port)).collect();
            let mut args = vec!["--cluster", "create"];
            args.extend(addresses.iter().map(String::as_str));
            args.extend(["--cluster-replicas", "0", "--cluster-yes"]);
            cli(&args);
            for node in &nodes {
                let port = node.port.to_string();
                wait_until("the cluster to be ok", || {
                    cli(&["-p", &port, "cluster", "info"]).contains("cluster_state:ok")
                })
                .await;
            }
            Cluster { nodes }
        })
        .await,
    )
}

impl Standalone {
    pub(crate) fn settings(&self) -> RedisSettings {
        let mut settings = RedisSettings::standalone(self.server.url());
        settings.key_prefix = unique_prefix();
        settings
    }
}

impl SentinelSet {
    /// A master and its replica (both requiring [`DATA_PASSWORD`]) watched by one sentinel
    /// (requiring [`SENTINEL_PASSWORD`]) that fails over two seconds after the master stops
    /// answering.
    pub(crate) async fn start() -> Self {
        let auth = ["--requirepass", DATA_PASSWORD, "--masterauth", DATA_PASSWORD];
        let master = Server::start(&data_dir("sentinel-master"), &auth, false);
        let master_port = master.port.to_string();
        let mut replica_args = vec!["--replicaof", "127.0.0.1", &master_port];
        replica_args.extend(auth);
        let replica = Server::start(&data_dir("sentinel-replica"), &replica_args, false);
        let replica_port = replica.port.to_string();
        wait_until("the replica to sync", || {
            cli(&["-p", &replica_port, "-a", DATA_PASSWORD, "--no-auth-warning", "info", "replication"])
                .contains("master_link_status:up")
        })
        .await;

        let dir = data_dir("sentinel");
        let port = free_port(false);
        let config = dir.join("sentinel.conf");
        std::fs::write(
            &config,
            format!(
                "port {port}\nbind 127.0.0.1\ndir {dir}\nrequirepass {SENTINEL_PASSWORD}\n\
                 sentinel monitor {MASTER_NAME} 127.0.0.1 {master_port} 1\n\
                 sentinel auth-pass {MASTER_NAME} {DATA_PASSWORD}\n\
                 sentinel down-after-milliseconds {MASTER_NAME} 2000\n\
                 sentinel failover-timeout {MASTER_NAME} 10000\n",
                dir = dir.display()
            ),
        )
        .unwrap();
        let sentinel = Server::sentinel(&config, port);
        SentinelSet { master, replica, sentinel }
    }

    /// The port of the master the sentinel names now.
    pub(crate) fn master_port_now(&self) -> u16 {
        let port = self.sentinel.port.to_string();
        let out = cli(&[
            "-p",
            &port,
            "-a",
            SENTINEL_PASSWORD,
            "--no-auth-warning",
            "sentinel",
            "get-master-addr-by-name",
            MASTER_NAME,
        ]);
        out.lines().nth(1).unwrap().trim().parse().unwrap()
    }

    pub(crate) fn settings(&self) -> RedisSettings {
        let mut settings = RedisSettings::new(RedisMode::Sentinel {
            master: MASTER_NAME.into(),
            nodes: vec![format!("127.0.0.1:{}", self.sentinel.port)],
            password: Some(SENTINEL_PASSWORD.into()),
            db: None,
        });
        settings.password = Some(DATA_PASSWORD.into());
        settings.key_prefix = unique_prefix();
        settings
    }
}

impl Cluster {
    pub(crate) fn settings(&self) -> RedisSettings {
        // One node is enough: the client learns the others from it.
        let mut settings =
            RedisSettings::new(RedisMode::Cluster { nodes: vec![format!("127.0.0.1:{}", self.nodes[0].port)] });
        settings.key_prefix = unique_prefix();
        settings
    }
}

/// A fresh store on the shared standalone server (its own key prefix), or `None` when Redis is
/// not installed.
pub(crate) async fn standalone_store() -> Option<RedisStore> {
    let settings = standalone().await?.settings();
    Some(RedisStore::connect(settings, keys()).await.unwrap())
}

/// A fresh store on the shared Sentinel set's master, found through the sentinel.
pub(crate) async fn sentinel_store() -> Option<RedisStore> {
    let settings = sentinel_set().await?.settings();
    Some(RedisStore::connect(settings, keys()).await.unwrap())
}

/// A fresh store on the shared Cluster.
pub(crate) async fn cluster_store() -> Option<RedisStore> {
    let settings = cluster().await?.settings();
    Some(RedisStore::connect(settings, keys()).await.unwrap())
}

/// Direct access to a deployment's Redis, to look at and tamper with what the store wrote.
pub(crate) struct Probe {
    conn: ProbeConn,
    /// URLs of every master (password included), to scan keys on each.
    masters: Vec<String>,
}

enum ProbeConn {
    Single(::redis::aio::MultiplexedConnection),
    Cluster(::redis::cluster_async::ClusterConnection),
}

impl Probe {
    pub(crate) async fn standalone(url: &str) -> Self {
        let conn = ::redis::Client::open(url).unwrap().get_multiplexed_async_connection().await.unwrap();
        Self { conn: ProbeConn::Single(conn), masters: vec![url.to_owned()] }
    }

    pub(crate) async fn cluster(cluster: &Cluster) -> Self {
        let masters: Vec<String> = cluster.nodes.iter().map(Server::url).collect();
        let client = ::redis::cluster::ClusterClient::new(masters.clone()).unwrap();
        Self { conn: ProbeConn::Cluster(client.get_async_connection().await.unwrap()), masters }
    }

    /// The Sentinel set's master as it is now (asked of the sentinel).
    pub(crate) async fn sentinel(set: &SentinelSet) -> Self {
        let sentinel = format!("redis://:{SENTINEL_PASSWORD}@127.0.0.1:{}", set.sentinel.port);
        let mut conn = ::redis::Client::open(sentinel).unwrap().get_multiplexed_async_connection().await.unwrap();
        let (host, port): (String, u16) = ::redis::cmd("SENTINEL")
            .arg("get-master-addr-by-name")
            .arg(MASTER_NAME)
            .query_async(&mut conn)
            .await
            .unwrap();
        Self::standalone(&format!("redis://:{DATA_PASSWORD}@{host}:{port}")).await
    }

    pub(crate) async fn query<T: ::redis::FromRedisValue>(&mut self, cmd: &::redis::Cmd) -> T {
        match &mut self.conn {
            ProbeConn::Single(conn) => cmd.query_async(conn).await.unwrap(),
            ProbeConn::Cluster(conn) => cmd.query_async(conn).await.unwrap(),
        }
    }

    /// Every key under `prefix`, on every master.
    pub(crate) async fn keys(&self, prefix: &str) -> Vec<String> {
        let mut keys = Vec::new();
        for url in &self.masters {
            let mut conn =
                ::redis::Client::open(url.as_str()).unwrap().get_multiplexed_async_connection().await.unwrap();
            let mut cursor = 0u64;
            loop {
                let (next, batch): (u64, Vec<String>) = ::redis::cmd("SCAN")
                    .arg(cursor)
                    .arg("MATCH")
                    .arg(format!("{prefix}*"))
                    .arg("COUNT")
                    .arg(1000)
                    .query_async(&mut conn)
                    .await
                    .unwrap();
                keys.extend(batch);
                if next == 0 {
                    break;
                }
                cursor = next;
            }
        }
        keys.sort();
        keys
    }

    /// Keys under `prefix` of one kind (`s`, `t`, `i`, `u`, `n`, `m`, `x`, `r`).
    pub(crate) async fn keys_of(&self, prefix: &str, kind: &str) -> Vec<String> {
        let start = format!("{prefix}{kind}:");
        self.keys(prefix).await.into_iter().filter(|k| k.starts_with(&start)).collect()
    }

    /// Everything stored at `key`, whatever its type, as byte strings.
    pub(crate) async fn dump(&mut self, key: &str) -> Vec<Vec<u8>> {
        let kind: String = self.query(::redis::cmd("TYPE").arg(key)).await;
        match kind.as_str() {
            "string" => vec![self.query(::redis::cmd("GET").arg(key)).await],
            "hash" => self.query(::redis::cmd("HGETALL").arg(key)).await,
            "set" => self.query(::redis::cmd("SMEMBERS").arg(key)).await,
            "zset" => self.query(::redis::cmd("ZRANGE").arg(key).arg(0).arg(-1).arg("WITHSCORES")).await,
            other => panic!("unexpected type {other} at {key}"),
        }
    }

    pub(crate) async fn pttl(&mut self, key: &str) -> i64 {
        self.query(::redis::cmd("PTTL").arg(key)).await
    }

    pub(crate) async fn hget(&mut self, key: &str, field: &str) -> Vec<u8> {
        self.query(::redis::cmd("HGET").arg(key).arg(field)).await
    }

    pub(crate) async fn hset(&mut self, key: &str, field: &str, value: &[u8]) {
        self.query::<()>(::redis::cmd("HSET").arg(key).arg(field).arg(value)).await;
    }

    pub(crate) async fn get(&mut self, key: &str) -> Vec<u8> {
        self.query(::redis::cmd("GET").arg(key)).await
    }

    /// Replaces `key` (whatever it held) by the string `value`, keeping no TTL.
    pub(crate) async fn set(&mut self, key: &str, value: &[u8]) {
        self.query::<()>(::redis::cmd("SET").arg(key).arg(value)).await;
    }
}
