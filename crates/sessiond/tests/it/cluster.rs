//! Several sessiond instances on one real `redis-server`: a session made on one works on the
//! other, an ending on one is refused by the other at once, a Redis outage fails closed on every
//! instance and heals without a restart, a server started while Redis is down waits for it,
//! `sessiond storage copy` moves sessions from the embedded store to Redis and back, and
//! `config check` shows the Redis settings without a password.
//!
//! Each test starts its own `redis-server` on a free loopback port, in a temporary directory,
//! and kills it when done. Without `redis-server` on the PATH the tests print a loud notice and
//! pass without running; with `CI=true` they fail instead.

use crate::support::*;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use tokio::io::{AsyncBufReadExt as _, AsyncWriteExt as _, BufReader};
use tokio::process::{Child, Command};
use tokio::time::Instant;

/// Shared by every instance of a deployment: it derives the key that seals values in Redis.
const SECRET: &str = "cluster-tests-secret-0123456789abcdef-0123";
/// How soon an ending on one instance must be refused by the other (issue 5).
const PROPAGATION: Duration = Duration::from_millis(100);
/// How long a recovery may take once Redis is back.
const RECOVERY: Duration = Duration::from_secs(15);

/// Whether `redis-server` can be run. Without it: a loud notice, or a failure under `CI=true`.
fn redis_installed() -> bool {
    let found = std::env::var_os("PATH")
        .is_some_and(|path| std::env::split_paths(&path).any(|dir| dir.join("redis-server").is_file()));
    if !found {
        assert_ne!(std::env::var("CI").as_deref(), Ok("true"), "redis-server is not installed, and CI=true");
        eprintln!("\n*** SKIPPED: redis-server not installed; this test of sessiond on Redis did not run ***\n");
    }
    found
}

/// A loopback port nobody listens on right now.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// One `redis-server` in a temporary directory, killed on drop.
struct Redis {
    child: Option<Child>,
    port: u16,
    dir: tempfile::TempDir,
    /// Append-only file with an fsync per write, so data survives a kill and a restart.
    persistent: bool,
}

impl Redis {
    /// Starts a server on a free port.
    async fn start(persistent: bool) -> Self {
        for _ in 0..10 {
            let mut redis = Self::on_port(free_port(), persistent);
            if redis.spawn().await {
                return redis;
            }
        }
        panic!("redis-server did not start on any of 10 ports");
    }

    /// A server for `port`, not started yet.
    fn on_port(port: u16, persistent: bool) -> Self {
        Self { child: None, port, dir: tempfile::tempdir().unwrap(), persistent }
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Runs `redis-server` on the port and waits until it answers PING; `false` if it exited.
    async fn spawn(&mut self) -> bool {
        let appendonly = if self.persistent { "yes" } else { "no" };
        let mut child = Command::new("redis-server")
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1", "--save", "", "--daemonize", "no"])
            .args(["--appendonly", appendonly, "--appendfsync", "always", "--logfile", ""])
            .arg("--dir")
            .arg(self.dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("starting redis-server");
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = child.try_wait() {
                return false;
            }
            if self.answers().await {
                self.child = Some(child);
                return true;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let _ = child.kill().await;
        false
    }

    /// Whether the server answers `PING` with `+PONG` (not `-LOADING`).
    async fn answers(&self) -> bool {
        let Ok(mut stream) = tokio::net::TcpStream::connect(("127.0.0.1", self.port)).await else { return false };
        if stream.write_all(b"PING\r\n").await.is_err() {
            return false;
        }
        let mut line = String::new();
        let mut reader = BufReader::new(&mut stream);
        let read = tokio::time::timeout(Duration::from_secs(1), reader.read_line(&mut line)).await;
        matches!(read, Ok(Ok(_))) && line.starts_with("+PONG")
    }

    /// SIGKILL, and waits until the process is gone: no goodbye to the clients, no last write.
    async fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().await.unwrap();
        }
    }

    /// Starts the server again on the same port and directory.
    async fn restart(&mut self) {
        assert!(self.spawn().await, "redis-server did not start again on port {}", self.port);
    }
}

/// A sessiond working directory whose configuration uses Redis at `url`, with users `alice`
/// and `root` (an administrator), and access rules that let any signed-in user through.
fn redis_instance(url: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let extra = format!(
        "secret: {SECRET:?}\nstorage:\n  kind: redis\n  redis:\n    url: {url:?}\n    timeout: 1s\naccess_control:\n  default_policy: one_factor\n"
    );
    cheap_setup(dir.path(), &[("alice", "alice-pw", &[]), ("root", "root-pw", &["admins"])], &extra);
    dir
}

/// `GET /api/v1/sessions/current` with `token`: its status.
async fn current(server: &Server, token: &str) -> u16 {
    server.current_status(token).await
}

/// Forward auth (nginx flavour) for `token`: its status.
async fn authz(server: &Server, token: &str) -> u16 {
    let request = server.client.get(server.url("/api/authz/auth-request"));
    let request = request.header("x-original-url", "https://app.example.test/").bearer_auth(token);
    request.send().await.unwrap().status().as_u16()
}

async fn readyz(server: &Server) -> u16 {
    server.client.get(server.url("/readyz")).send().await.unwrap().status().as_u16()
}

/// Waits until `check` gives `want`, for up to `within`; the last answer otherwise.
async fn eventually<F, Fut>(within: Duration, want: u16, mut check: F) -> u16
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = u16>,
{
    let deadline = Instant::now() + within;
    loop {
        let got = check().await;
        if got == want || Instant::now() >= deadline {
            return got;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Polls `server` with `token` until it stops answering 200, and returns that answer and how
/// long after `since` it came.
async fn refused_after(server: &Server, token: &str, since: Instant) -> (u16, Duration) {
    loop {
        let status = current(server, token).await;
        if status != 200 || since.elapsed() > Duration::from_secs(5) {
            return (status, since.elapsed());
        }
    }
}

/// A token of the right shape that no session has: only the store can tell it is unknown.
const UNKNOWN_TOKEN: &str = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";

#[tokio::test]
async fn a_session_made_on_one_instance_works_on_the_other_and_ends_everywhere_at_once() {
    if !redis_installed() {
        return;
    }
    let redis = Redis::start(false).await;
    let (dir_a, dir_b) = (redis_instance(&redis.url()), redis_instance(&redis.url()));
    let a = Server::start(dir_a.path()).await;
    let b = Server::start(dir_b.path()).await;
    assert_eq!(a.cookie_name, b.cookie_name, "the realm's cookie name is kept in Redis, so both use one");
    assert_eq!((readyz(&a).await, readyz(&b).await), (200, 200));

    // Made on A, accepted by B: by the API, by forward auth, and by the cookie.
    let login = a.login("alice", "alice-pw").await;
    assert_eq!(current(&b, &login.token).await, 200);
    assert_eq!(authz(&b, &login.token).await, 200);
    let by_cookie = b
        .client
        .get(b.url("/api/v1/sessions/current"))
        .header("cookie", format!("{}={}", b.cookie_name, login.token))
        .send()
        .await
        .unwrap();
    assert_eq!(by_cookie.status(), 200);
    let body: Value = by_cookie.json().await.unwrap();
    assert_eq!(body["session"]["id"], login.id.as_str());
    assert_eq!(current(&a, &login.token).await, 200, "A has seen (and may have cached) the session");

    // Logout on B: A refuses within the propagation budget of B's answer.
    let logout = b.client.delete(b.url("/api/v1/sessions/current")).bearer_auth(&login.token).send().await.unwrap();
    let answered = Instant::now();
    assert!(logout.status().is_success(), "logout on B: {}", logout.status());
    let (status, after) = refused_after(&a, &login.token, answered).await;
    assert_eq!(status, 401, "A after the logout on B");
    assert!(after < PROPAGATION, "A refused the session {after:?} after B's logout");
    assert_eq!(authz(&a, &login.token).await, 401);

    // Revoked by an administrator through B's API.
    let victim = a.login("alice", "alice-pw").await;
    assert_eq!(current(&a, &victim.token).await, 200);
    let admin = b.login("root", "root-pw").await;
    let revoke = b
        .client
        .delete(b.url(&format!("/api/v1/sessions/{}", victim.id)))
        .bearer_auth(&admin.token)
        .send()
        .await
        .unwrap();
    let answered = Instant::now();
    assert!(revoke.status().is_success(), "admin revoke on B: {}", revoke.status());
    let (status, after) = refused_after(&a, &victim.token, answered).await;
    assert_eq!(status, 401, "A after the revoke on B");
    assert!(after < PROPAGATION, "A refused the session {after:?} after B's revoke");

    // The command line talks to Redis itself, from any directory with the configuration.
    let cli_victim = a.login("alice", "alice-pw").await;
    assert_eq!(current(&a, &cli_victim.token).await, 200);
    let listed = sessiond(dir_b.path(), &["sessions", "list", "--user", "alice", "--json"]).await.json();
    let ids: Vec<&str> = listed["sessions"].as_array().unwrap().iter().map(|s| s["id"].as_str().unwrap()).collect();
    assert_eq!(ids, [cli_victim.id.as_str()], "only the live session of alice");
    let revoked = sessiond(dir_b.path(), &["sessions", "revoke", &cli_victim.id]).await;
    let answered = Instant::now();
    assert_eq!(revoked.ok(), format!("revoked session {}\n", cli_victim.id));
    let (status, after) = refused_after(&a, &cli_victim.token, answered).await;
    assert_eq!(status, 401, "A after the revoke from the command line");
    assert!(after < PROPAGATION, "A refused the session {after:?} after the command line's revoke");
    let again = sessiond(dir_a.path(), &["sessions", "revoke", &cli_victim.id]).await;
    again.fails(1, &["no session with id"]);

    // Everything of alice, from the command line.
    let first = a.login("alice", "alice-pw").await;
    let second = b.login("alice", "alice-pw").await;
    let all = sessiond(dir_a.path(), &["sessions", "revoke", "--user", "alice", "--json"]).await.json();
    assert_eq!(all["revoked"], 2);
    for token in [&first.token, &second.token] {
        assert_eq!((current(&a, token).await, current(&b, token).await), (401, 401));
    }
    assert_eq!(current(&a, &admin.token).await, 200, "other users keep their sessions");
}

/// One answer seen under load.
struct Seen {
    sent: Instant,
    status: u16,
    what: &'static str,
    valid: bool,
}

/// Asks both servers, over and over until `stop`, about `token` (valid) and an unknown token,
/// by the session API and by forward auth.
fn load(
    servers: [(String, &'static str); 2],
    token: String,
    unknown: String,
    stop: Arc<AtomicBool>,
) -> tokio::task::JoinHandle<Vec<Seen>> {
    tokio::spawn(async move {
        let client = client();
        let mut seen = Vec::new();
        while !stop.load(Ordering::Relaxed) {
            for (base, name) in &servers {
                for (credential, valid) in [(&token, true), (&unknown, false)] {
                    for (path, what) in [("/api/v1/sessions/current", "api"), ("/api/authz/auth-request", "authz")] {
                        let sent = Instant::now();
                        let res = client
                            .get(format!("{base}{path}"))
                            .header("x-original-url", "https://app.example.test/")
                            .bearer_auth(credential)
                            .send()
                            .await;
                        let status = res.map(|r| r.status().as_u16()).unwrap_or(0);
                        let what = if *name == "A" {
                            what
                        } else if what == "api" {
                            "api on B"
                        } else {
                            "authz on B"
                        };
                        seen.push(Seen { sent, status, what, valid });
                    }
                }
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        seen
    })
}

#[tokio::test]
async fn killing_redis_fails_closed_on_every_instance_and_both_recover_when_it_returns() {
    if !redis_installed() {
        return;
    }
    let mut redis = Redis::start(true).await;
    let (dir_a, dir_b) = (redis_instance(&redis.url()), redis_instance(&redis.url()));
    let a = Server::start(dir_a.path()).await;
    let b = Server::start(dir_b.path()).await;
    let login = a.login("alice", "alice-pw").await;
    assert_eq!(current(&b, &login.token).await, 200);
    let unknown = UNKNOWN_TOKEN.to_owned();

    let stop = Arc::new(AtomicBool::new(false));
    let servers = [(a.base.clone(), "A"), (b.base.clone(), "B")];
    let loader = load(servers, login.token.clone(), unknown.clone(), stop.clone());
    tokio::time::sleep(Duration::from_millis(300)).await;
    redis.kill().await;
    let killed = Instant::now();
    tokio::time::sleep(Duration::from_millis(700)).await;

    // While Redis is down: not ready, nobody signs in, nothing passes.
    for server in [&a, &b] {
        assert_eq!(readyz(server).await, 503);
        let res = server.post("/api/v1/authenticate", &login_body("alice", "alice-pw")).await;
        let headers = res.headers().clone();
        assert_eq!(error_code(res).await, (503, "store_unavailable".to_owned()));
        assert!(set_cookies(&headers, &server.cookie_name).is_empty(), "no session cookie while Redis is down");
    }
    stop.store(true, Ordering::Relaxed);
    let seen = loader.await.unwrap();

    assert!(seen.iter().any(|s| s.valid && s.status == 200 && s.sent < killed), "the load ran before the kill");
    for s in &seen {
        assert!(s.valid || s.status != 200, "an unknown token passed ({})", s.what);
        if s.sent >= killed {
            assert_eq!(
                s.status,
                503,
                "{} answered {} for a {} token while Redis was down",
                s.what,
                s.status,
                if s.valid { "valid" } else { "unknown" }
            );
        }
    }
    let after_kill = seen.iter().filter(|s| s.sent >= killed).count();
    assert!(after_kill >= 8, "only {after_kill} requests were made while Redis was down");

    // Redis returns, with what it had written to its append-only file: both instances recover
    // on their own, and the session made before the outage works again everywhere.
    redis.restart().await;
    for server in [&a, &b] {
        assert_eq!(eventually(RECOVERY, 200, || readyz(server)).await, 200, "/readyz after Redis returned");
        assert_eq!(eventually(RECOVERY, 200, || current(server, &login.token)).await, 200);
        assert_eq!(authz(server, &login.token).await, 200);
        assert_eq!(authz(server, &unknown).await, 401);
    }
    let fresh = b.login("alice", "alice-pw").await;
    assert_eq!(current(&a, &fresh.token).await, 200);
}

#[tokio::test]
async fn a_server_started_while_redis_is_down_answers_503_and_serves_once_redis_is_up() {
    if !redis_installed() {
        return;
    }
    let mut redis = Redis::on_port(free_port(), false);
    let dir = redis_instance(&redis.url());
    let server = Server::start(dir.path()).await;
    assert!(server.stderr().contains("store unavailable at startup"), "{}", server.stderr());

    assert_eq!(readyz(&server).await, 503);
    let res = server.post("/api/v1/authenticate", &login_body("alice", "alice-pw")).await;
    assert_eq!(error_code(res).await, (503, "store_unavailable".to_owned()));
    let res = server.current(UNKNOWN_TOKEN).await;
    assert_eq!(error_code(res).await, (503, "store_unavailable".to_owned()));
    assert_eq!(authz(&server, UNKNOWN_TOKEN).await, 503);
    let page = server.client.get(server.url("/login")).send().await.unwrap();
    assert_eq!(page.status(), 503);
    assert_eq!(page.headers()["cache-control"], "no-store");
    let form = server
        .client
        .post(server.url("/login"))
        .form(&[("username", "alice"), ("password", "alice-pw")])
        .send()
        .await
        .unwrap();
    assert_eq!(form.status(), 503);
    assert!(form.headers().get("set-cookie").is_none(), "nothing is set while waiting");
    let list = sessiond(dir.path(), &["sessions", "list"]).await;
    list.fails(1, &["redis store unavailable"]);

    redis.restart().await;
    assert_eq!(eventually(RECOVERY, 200, || readyz(&server)).await, 200, "{}", server.stderr());
    let login = server.login("alice", "alice-pw").await;
    assert_eq!(current(&server, &login.token).await, 200);
    assert_eq!(authz(&server, &login.token).await, 200);
    assert!(server.stderr().contains("store answers; serving"), "{}", server.stderr());

    // A second instance started now uses the cookie name the first one settled on.
    let other_dir = redis_instance(&redis.url());
    let other = Server::start(other_dir.path()).await;
    assert_eq!(current(&other, &login.token).await, 200);
    assert_eq!(
        set_cookies(&login.headers, &other.cookie_name).len(),
        1,
        "the first instance set {}",
        other.cookie_name
    );
}

/// Writes `sessiond.yml` and `users.yml` into `dir`, with an absolute `data_dir`, so that the
/// file means the same store from any working directory.
fn instance_with(dir: &Path, storage: &str) -> PathBuf {
    let data = dir.join("data");
    cheap_setup(
        dir,
        &[("alice", "alice-pw", &[])],
        &format!("data_dir: {:?}\nsecret: {SECRET:?}\n{storage}", data.display().to_string()),
    );
    dir.join("sessiond.yml")
}

#[tokio::test]
async fn storage_copy_moves_sessions_from_the_embedded_store_to_redis_and_back() {
    if !redis_installed() {
        return;
    }
    let root = tempfile::tempdir().unwrap();
    let (one, two, three) = (root.path().join("one"), root.path().join("two"), root.path().join("three"));
    for dir in [&one, &two, &three] {
        std::fs::create_dir(dir).unwrap();
    }
    let redis = Redis::start(false).await;
    let embedded = instance_with(&one, "storage: {kind: embedded}\n");
    let on_redis = instance_with(&two, &format!("storage: {{kind: redis, redis: {{url: {:?}}}}}\n", redis.url()));
    let back = instance_with(&three, "storage: {kind: embedded}\n");
    let (one_yml, two_yml, three_yml) =
        (embedded.display().to_string(), on_redis.display().to_string(), back.display().to_string());

    // A session on one machine's embedded store.
    let first = Server::start(&one).await;
    let cookie = first.cookie_name.clone();
    let login = first.login("alice", "alice-pw").await;
    let gone = first.login("alice", "alice-pw").await;
    first.client.delete(first.url("/api/v1/sessions/current")).bearer_auth(&gone.token).send().await.unwrap();

    // The embedded file is the running server's: the copy says so and does nothing.
    let held = sessiond(root.path(), &["storage", "copy", "--from", &one_yml, "--to", &two_yml]).await;
    held.fails(1, &["in use by another process", "stop that server"]);
    first.stop().await;

    // To Redis: the session and the realm's cookie name.
    let copied =
        sessiond(root.path(), &["storage", "copy", "--from", &one_yml, "--to", &two_yml, "--json"]).await.json();
    assert_eq!(
        copied,
        serde_json::json!({"sessions_copied": 1, "sessions_already_there": 0, "sessions_expired": 0, "realms_copied": 1})
    );
    let again = sessiond(root.path(), &["storage", "copy", "--from", &one_yml, "--to", &two_yml]).await;
    assert!(
        again.ok().starts_with("copied 0 sessions (1 already there, 0 expired and left out) and the state of 1 realm"),
        "{}",
        again.stdout
    );

    let second = Server::start(&two).await;
    assert_eq!(second.cookie_name, cookie, "the cookie name came along");
    let by_cookie = second
        .client
        .get(second.url("/api/v1/sessions/current"))
        .header("cookie", format!("{cookie}={}", login.token))
        .send()
        .await
        .unwrap();
    assert_eq!(by_cookie.status(), 200, "the old cookie works against Redis");
    assert_eq!(current(&second, &gone.token).await, 401, "a logged-out session stays out");

    // And back, into a new embedded file, while servers run on Redis.
    let returned =
        sessiond(root.path(), &["--json", "storage", "copy", "--from", &two_yml, "--to", &three_yml]).await.json();
    assert_eq!(returned["sessions_copied"], 1);
    assert_eq!(returned["realms_copied"], 1);
    let third = Server::start(&three).await;
    assert_eq!(third.cookie_name, cookie);
    assert_eq!(current(&third, &login.token).await, 200, "the token works on the copy of the copy");

    // Refusals.
    let same = sessiond(root.path(), &["storage", "copy", "--from", &two_yml, "--to", &two_yml]).await;
    same.fails(1, &["the same store"]);
    std::fs::write(root.path().join("memory.yml"), "storage: {kind: memory}\n").unwrap();
    let memory = sessiond(root.path(), &["storage", "copy", "--from", "memory.yml", "--to", &two_yml]).await;
    memory.fails(1, &["--from memory.yml", "memory"]);
    std::fs::write(
        root.path().join("nowhere.yml"),
        format!("storage: {{path: {:?}}}\n", root.path().join("none.redb")),
    )
    .unwrap();
    let missing = sessiond(root.path(), &["storage", "copy", "--from", "nowhere.yml", "--to", &two_yml]).await;
    missing.fails(1, &["no embedded store"]);
    let bad = sessiond(root.path(), &["storage", "copy", "--from", &one_yml, "--to", "absent.yml"]).await;
    bad.fails(1, &["--to absent.yml"]);
}

#[tokio::test]
async fn config_check_shows_the_redis_settings_but_never_a_password() {
    let dir = tempfile::tempdir().unwrap();
    let (url_password, password, sentinel_password, previous) =
        ("url-pw-5f1e", "data-pw-9a2c", "sentinel-pw-3d7b", "the-secret-before-rotation-0123456789");
    std::fs::write(dir.path().join("redis_password"), format!("{password}\n")).unwrap();
    std::fs::write(
        dir.path().join("sessiond.yml"),
        format!(
            "secret: {SECRET:?}\nsecret_previous: {previous:?}\nstorage:\n  kind: redis\n  redis:\n    url: \"redis://app:{url_password}@10.0.0.20:6379/2\"\n    password_file: redis_password\n"
        ),
    )
    .unwrap();
    let secrets = [SECRET, previous, url_password, password, sentinel_password];
    for args in [&["config", "check"][..], &["config", "check", "--json"][..]] {
        let run = sessiond(dir.path(), args).await;
        for secret in secrets {
            assert!(!run.stdout.contains(secret) && !run.stderr.contains(secret), "{secret} shown: {}", run.stdout);
        }
        assert!(run.ok().contains("redis://app:[redacted]@10.0.0.20:6379/2"), "{}", run.stdout);
    }
    let value = sessiond(dir.path(), &["config", "check", "--json"]).await.json();
    assert_eq!(value["storage"]["kind"], "redis");
    assert_eq!(value["storage"]["redis"]["password"], "[redacted]");
    assert_eq!(value["storage"]["redis"]["key_prefix"], "sessiond:");
    assert_eq!(value["secret_previous"], "[redacted]");

    // Sentinel, set from the environment.
    let env = [
        ("SESSIOND__STORAGE__REDIS__URL", ""),
        ("SESSIOND__STORAGE__REDIS__SENTINEL__MASTER", "sessiond"),
        ("SESSIOND__STORAGE__REDIS__SENTINEL__NODES", "10.0.1.1:26379,10.0.1.2:26379"),
        ("SESSIOND__STORAGE__REDIS__SENTINEL__PASSWORD", sentinel_password),
    ];
    let run = sessiond_with(dir.path(), &["config", "check", "--json"], None, &env).await;
    for secret in secrets {
        assert!(!run.stdout.contains(secret) && !run.stderr.contains(secret), "{secret} shown: {}", run.stdout);
    }
    let sentinel = &run.json()["storage"]["redis"]["sentinel"];
    assert_eq!(sentinel["nodes"], serde_json::json!(["10.0.1.1:26379", "10.0.1.2:26379"]));
    assert_eq!(sentinel["password"], "[redacted]");
}

#[tokio::test]
async fn redis_without_a_configured_secret_is_refused_by_check_and_serve() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("sessiond.yml"),
        "storage:\n  kind: redis\n  redis:\n    url: redis://127.0.0.1:1\n",
    )
    .unwrap();
    sessiond(dir.path(), &["config", "check"]).await.fails(1, &["secret", "every instance"]);
    let env = [("SESSIOND__SERVER__LISTEN", "127.0.0.1:0")];
    let serve = sessiond_with(dir.path(), &["serve"], None, &env).await;
    serve.fails(1, &["secret", "every instance"]);
    assert!(!serve.stdout.contains("listening on"), "{}", serve.stdout);
}
