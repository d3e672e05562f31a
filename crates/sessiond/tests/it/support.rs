//! The real `sessiond` binary, run in a temporary working directory: a [`Server`] guard for
//! `sessiond serve` and [`sessiond`] for one-shot commands.
//!
//! Every process gets a clean environment as far as sessiond is concerned (no `SESSIOND_CONFIG`,
//! no `SESSIOND__*` from the developer's shell), and servers listen on `127.0.0.1:0`: the real
//! port is read from the banner.

use argon2::password_hash::{PasswordHasher as _, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use reqwest::header::{HeaderMap, SET_COOKIE};
use serde_json::{Value, json};
use std::path::Path;
use std::process::{ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncBufReadExt as _, AsyncRead, AsyncWriteExt as _, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::mpsc;

/// The binary under test.
pub const BIN: &str = env!("CARGO_BIN_EXE_sessiond");

/// How long a server may take to print its banner and answer `/healthz`.
const START_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a one-shot command or a stopping server may take.
const EXIT_TIMEOUT: Duration = Duration::from_secs(30);

/// A command for the binary, run in `dir`, with sessiond's own environment variables removed
/// and `extra_env` added.
fn command(dir: &Path, args: &[&str], extra_env: &[(&str, &str)]) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.args(args).current_dir(dir).kill_on_drop(true);
    cmd.env_remove("SESSIOND_CONFIG");
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("SESSIOND__") {
            cmd.env_remove(name);
        }
    }
    for (name, value) in extra_env {
        cmd.env(name, value);
    }
    cmd
}

/// The outcome of a one-shot command.
#[derive(Debug)]
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    /// Asserts exit status 0 and returns standard output.
    pub fn ok(&self) -> &str {
        assert_eq!(self.code, 0, "expected success; stdout: {}\nstderr: {}", self.stdout, self.stderr);
        &self.stdout
    }

    /// Asserts exit status 0 and parses standard output as JSON.
    pub fn json(&self) -> Value {
        serde_json::from_str(self.ok()).unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {}", self.stdout))
    }

    /// Asserts exit status `code`, an empty standard output, and a standard error that contains
    /// every one of `needles`.
    pub fn fails(&self, code: i32, needles: &[&str]) {
        assert_eq!(self.code, code, "exit status; stdout: {}\nstderr: {}", self.stdout, self.stderr);
        for needle in needles {
            assert!(self.stderr.contains(needle), "stderr lacks {needle:?}: {}", self.stderr);
        }
    }
}

/// Runs `sessiond ARGS` in `dir` and waits for it.
pub async fn sessiond(dir: &Path, args: &[&str]) -> Run {
    sessiond_with(dir, args, None, &[]).await
}

/// Runs `sessiond ARGS` in `dir` with `stdin` as standard input and `env` added.
pub async fn sessiond_with(dir: &Path, args: &[&str], stdin: Option<&str>, env: &[(&str, &str)]) -> Run {
    let mut cmd = command(dir, args, env);
    cmd.stdin(if stdin.is_some() { Stdio::piped() } else { Stdio::null() });
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    if let Some(input) = stdin {
        let mut pipe = child.stdin.take().unwrap();
        pipe.write_all(input.as_bytes()).await.unwrap();
        drop(pipe);
    }
    let output = tokio::time::timeout(EXIT_TIMEOUT, child.wait_with_output())
        .await
        .unwrap_or_else(|_| panic!("sessiond {args:?} did not finish within {EXIT_TIMEOUT:?}"))
        .unwrap();
    Run {
        code: output.status.code().unwrap_or_else(|| panic!("sessiond {args:?} was killed: {:?}", output.status)),
        stdout: String::from_utf8(output.stdout).unwrap(),
        stderr: String::from_utf8(output.stderr).unwrap(),
    }
}

/// A running `sessiond serve`. Dropping it kills the process.
pub struct Server {
    child: Child,
    pid: u32,
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    /// The bootstrap administrator's password, when the banner showed one.
    pub password: Option<String>,
    /// The `main` realm's cookie name, as the banner shows it.
    pub cookie_name: String,
    /// The banner lines read before the server answered `/healthz`.
    pub banner: Vec<String>,
    /// Redirects off and no cookie store: tests read and send cookies themselves.
    pub client: reqwest::Client,
    stdout: Arc<Mutex<String>>,
    stderr: Arc<Mutex<String>>,
    drains: Vec<tokio::task::JoinHandle<()>>,
}

/// A client that shows responses as they are: no redirects followed, no cookies kept.
pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap()
}

/// Copies `from` into `sink` line by line, and sends each line on `lines` while anyone listens.
fn drain(
    from: impl AsyncRead + Unpin + Send + 'static,
    sink: Arc<Mutex<String>>,
    lines: Option<mpsc::UnboundedSender<String>>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut reader = BufReader::new(from).lines();
        while let Ok(Some(line)) = reader.next_line().await {
            {
                let mut text = sink.lock().unwrap();
                text.push_str(&line);
                text.push('\n');
            }
            if let Some(tx) = &lines {
                let _ = tx.send(line);
            }
        }
    })
}

impl Server {
    /// `sessiond serve` in `dir`, with whatever configuration `dir` holds.
    pub async fn start(dir: &Path) -> Self {
        Self::start_with(dir, &[], &[]).await
    }

    /// `sessiond serve ARGS` in `dir` with `env` added. Panics, showing standard error, when the
    /// server exits or does not answer `/healthz` in time.
    pub async fn start_with(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Self {
        let mut all_args = vec!["serve"];
        all_args.extend_from_slice(args);
        let mut env_all = vec![("SESSIOND__SERVER__LISTEN", "127.0.0.1:0")];
        env_all.extend_from_slice(env);
        let mut cmd = command(dir, &all_args, &env_all);
        cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
        let mut child = cmd.spawn().unwrap();
        let pid = child.id().unwrap();
        let stdout = Arc::new(Mutex::new(String::new()));
        let stderr = Arc::new(Mutex::new(String::new()));
        let (tx, mut rx) = mpsc::unbounded_channel();
        let drains = vec![
            drain(child.stdout.take().unwrap(), stdout.clone(), Some(tx)),
            drain(child.stderr.take().unwrap(), stderr.clone(), None),
        ];

        let started = tokio::time::Instant::now();
        let mut banner = Vec::new();
        let mut addr = None;
        while addr.is_none() {
            let line = match tokio::time::timeout_at(started + START_TIMEOUT, rx.recv()).await {
                Ok(Some(line)) => line,
                Ok(None) => {
                    let status = tokio::time::timeout(EXIT_TIMEOUT, child.wait()).await;
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    panic!(
                        "sessiond serve exited before listening ({status:?})\nstdout: {}\nstderr: {}",
                        stdout.lock().unwrap(),
                        stderr.lock().unwrap()
                    );
                }
                Err(_) => panic!("no banner within {START_TIMEOUT:?}\nstderr: {}", stderr.lock().unwrap()),
            };
            addr = line.trim().strip_prefix("listening on").map(|rest| rest.trim().to_owned());
            banner.push(line);
        }
        let base = addr.unwrap();
        assert!(base.starts_with("http://127.0.0.1:"), "banner address: {base}");

        let client = client();
        loop {
            let healthy = client.get(format!("{base}/healthz")).send().await.is_ok_and(|r| r.status() == 200);
            if healthy {
                break;
            }
            assert!(started.elapsed() < START_TIMEOUT, "no /healthz within {START_TIMEOUT:?}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        // The banner is written in one piece before the server accepts connections, so it is all
        // in the pipe by now; the drain task only needs a moment to hand it over.
        while let Ok(Some(line)) = tokio::time::timeout(Duration::from_millis(300), rx.recv()).await {
            banner.push(line);
        }

        let password = banner.iter().find_map(|l| l.trim().strip_prefix("password:").map(|p| p.trim().to_owned()));
        let cookie_name = banner
            .iter()
            .find_map(|l| {
                let rest = l.trim().strip_prefix("realm")?.trim();
                let rest = rest.strip_prefix("main (cookie ")?;
                rest.strip_suffix(')').map(str::to_owned)
            })
            .unwrap_or_else(|| panic!("no cookie name for realm main in the banner: {banner:#?}"));
        Self { child, pid, base, password, cookie_name, banner, client, stdout, stderr, drains }
    }

    /// The server's process id.
    pub fn pid(&self) -> u32 {
        self.pid
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Everything the server wrote to standard error so far.
    pub fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// Sends SIGTERM and waits for the exit; returns the status and all of standard output.
    ///
    /// `kill(2)` needs `unsafe` from Rust, which this workspace forbids, so the signal goes
    /// through the shell's `kill` builtin.
    pub async fn stop(mut self) -> (ExitStatus, String) {
        let sent =
            Command::new("sh").args(["-c", "kill -s TERM \"$1\"", "sh", &self.pid.to_string()]).status().await.unwrap();
        assert!(sent.success(), "kill -s TERM failed");
        let status = tokio::time::timeout(EXIT_TIMEOUT, self.child.wait())
            .await
            .unwrap_or_else(|_| panic!("no exit within {EXIT_TIMEOUT:?} of SIGTERM\nstderr: {}", self.stderr()))
            .unwrap();
        for task in std::mem::take(&mut self.drains) {
            let _ = tokio::time::timeout(Duration::from_secs(5), task).await;
        }
        let stdout = self.stdout.lock().unwrap().clone();
        (status, stdout)
    }

    /// Sends SIGKILL and waits until the process is gone.
    pub async fn kill(mut self) -> ExitStatus {
        self.child.start_kill().unwrap();
        tokio::time::timeout(EXIT_TIMEOUT, self.child.wait()).await.unwrap().unwrap()
    }

    pub async fn post(&self, path: &str, body: &Value) -> reqwest::Response {
        self.client.post(self.url(path)).json(body).send().await.unwrap()
    }

    /// Logs in through the one-call form of the journey; panics unless it answers 200.
    pub async fn login(&self, user: &str, password: &str) -> Login {
        let res = self.post("/api/v1/authenticate", &login_body(user, password)).await;
        let status = res.status();
        let headers = res.headers().clone();
        let text = res.text().await.unwrap();
        assert_eq!(status, 200, "login of {user}: {text}");
        let body: Value = serde_json::from_str(&text).unwrap();
        let token = body["session_token"].as_str().unwrap_or_else(|| panic!("no session_token: {body}")).to_owned();
        let id = body["session"]["id"].as_str().unwrap().to_owned();
        Login { token, id, body, headers }
    }

    /// `GET /api/v1/sessions/current` with `Authorization: Bearer TOKEN`.
    pub async fn current(&self, token: &str) -> reqwest::Response {
        self.client.get(self.url("/api/v1/sessions/current")).bearer_auth(token).send().await.unwrap()
    }

    /// The status of `GET /api/v1/sessions/current` for `token`.
    pub async fn current_status(&self, token: &str) -> u16 {
        self.current(token).await.status().as_u16()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
    }
}

/// A successful login.
#[derive(Debug)]
pub struct Login {
    pub token: String,
    /// The session's public id.
    pub id: String,
    pub body: Value,
    pub headers: HeaderMap,
}

pub fn login_body(user: &str, password: &str) -> Value {
    json!({"callbacks": [
        {"type": "username", "value": user},
        {"type": "password", "value": password},
        {"type": "remember_me", "value": false},
    ]})
}

/// An argon2id PHC string with parameters cheap enough for tests (1 MiB, one pass); the server
/// verifies with whatever parameters the string names.
pub fn cheap_hash(password: &str) -> String {
    let argon = Argon2::new(Algorithm::Argon2id, Version::V0x13, Params::new(1024, 1, 1, None).unwrap());
    let salt = SaltString::encode_b64(b"sessiond tests salt").unwrap();
    argon.hash_password(password.as_bytes(), &salt).unwrap().to_string()
}

/// Writes `users.yml` in `dir` (name, password, groups per user) with cheap hashes, and a
/// `sessiond.yml` that points at it followed by `extra` YAML.
pub fn cheap_setup(dir: &Path, users: &[(&str, &str, &[&str])], extra: &str) {
    let mut text = String::from("users:\n");
    for (name, password, groups) in users {
        let groups: Vec<String> = groups.iter().map(|g| format!("{g:?}")).collect();
        text.push_str(&format!(
            "  {name}:\n    display_name: {name:?}\n    email: \"{name}@example.test\"\n    password: {:?}\n    groups: [{}]\n",
            cheap_hash(password),
            groups.join(", ")
        ));
    }
    std::fs::write(dir.join("users.yml"), text).unwrap();
    std::fs::write(dir.join("sessiond.yml"), format!("users:\n  file: users.yml\n{extra}")).unwrap();
}

/// The `Set-Cookie` values that set or delete the cookie `name`.
pub fn set_cookies(headers: &HeaderMap, name: &str) -> Vec<String> {
    headers
        .get_all(SET_COOKIE)
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .filter(|c| c.starts_with(&format!("{name}=")))
        .collect()
}

/// The value of attribute `name` in a `Set-Cookie` (`""` for flags such as `HttpOnly`).
pub fn attr<'a>(set_cookie: &'a str, name: &str) -> Option<&'a str> {
    set_cookie.split(';').skip(1).map(str::trim).find_map(|a| {
        let (k, v) = a.split_once('=').unwrap_or((a, ""));
        k.eq_ignore_ascii_case(name).then_some(v)
    })
}

/// Reads an error response: asserts the `{"error","message"}` shape, returns status and code.
pub async fn error_code(res: reqwest::Response) -> (u16, String) {
    let status = res.status().as_u16();
    let text = res.text().await.unwrap();
    let body: Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("error body is not JSON ({e}): {text}"));
    assert!(body["message"].as_str().is_some_and(|m| !m.is_empty()), "error body has a message: {body}");
    (status, body["error"].as_str().unwrap_or_else(|| panic!("no error code: {body}")).to_owned())
}

/// Unix permission bits of `path` (without following a final symlink).
pub fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::symlink_metadata(path).unwrap_or_else(|e| panic!("{}: {e}", path.display())).permissions().mode() & 0o777
}
