//! The control socket: how `sessiond sessions …` reaches a running server.
//!
//! The embedded store is a file that one process holds, and the memory store lives inside the
//! server, so while a server runs, the administrative commands ask it instead of opening the
//! store themselves. The server listens on a Unix socket at `<data_dir>/control.sock`, mode 0600,
//! and answers only peers running as the socket's owner (or root).
//!
//! Protocol: the client sends one request line, the server answers one response line and closes
//! the connection. Lines are JSON objects ending with `\n`.
//!
//! ```text
//! → {"op":"sessions.list","user":"alice","realm":null}
//! ← {"ok":true,"sessions":[{"id":"…","realm":"main","user":"alice",…}]}
//! → {"op":"sessions.revoke","id":"…"}
//! ← {"ok":true,"revoked":1}
//! → {"op":"sessions.revoke_user","user":"alice","realm":null}
//! ← {"ok":true,"revoked":2}
//! → {"op":"keys.rotate","realm":"main","lifetime_secs":300}
//! ← {"ok":true,"realm":"main","current_kid":"…","retired_kid":"…"}
//! → {"op":"realm.cookie_name","realm":"main","change":{"set":"acme_sid"}}
//! ← {"ok":true,"realm":"main","cookie_name":"acme_sid","default_cookie_name":false,"sessions_ended":3}
//! → {"op":"tokens.create","token_hash":"<hex SHA-256>","record":{"id":"…","name":"ci",…}}
//! ← {"ok":true,"tokens":[{"id":"…","name":"ci","user":"alice",…}]}
//! → {"op":"tokens.list","user":null,"realm":null}
//! ← {"ok":true,"tokens":[…]}
//! → {"op":"tokens.revoke","id":"…"}
//! ← {"ok":true,"revoked":1}
//! → {"op":"totp.reset","user":"alice"}
//! ← {"ok":true,"user":"alice","totp_removed":true}
//! ← {"ok":false,"error":"no session with id …","code":"not_found"}
//! ```
//!
//! Requests are the [`Op`]s of `commands::ops`, run by the same [`execute`] that the command line
//! uses when no server runs. Error codes: `bad_request` (not JSON, unknown op or field, malformed
//! id), `no_secret` (signing keys asked of a server without one), `payload_too_large` (a request line over [`MAX_REQUEST_BYTES`]), `timeout` (no complete
//! request within [`IDLE_TIMEOUT`]), `not_found`, `store_unavailable`.
//!
//! What changes how a user signs in is written to the server's audit log: a `totp.reset` that
//! removed a second factor is a `totp_changed` event with `reason: reset` and `actor: cli`.

use crate::commands::ops::{Op, OpError, Reply, execute};
use crate::config::Config;
use anyhow::{Context as _, bail};
use serde::Serialize;
use serde_json::Value;
use sessiond_core::realm::RealmPolicy;
use sessiond_server::App;
use sessiond_server::audit::{AuditEvent, AuditKind};
use sessiond_server::clock::{Clock, SystemClock};
use sessiond_server::jwt::Signing;
use sessiond_store::{AnyStore, Store};
use std::future::Future;
use std::io::ErrorKind;
use std::os::unix::fs::{FileTypeExt as _, MetadataExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt as _, AsyncRead, AsyncReadExt as _, AsyncWriteExt as _, BufReader};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::watch;
use tokio::task::{JoinHandle, JoinSet};
use tracing::{debug, info, warn};

/// Name of the socket file in the data directory.
pub(crate) const SOCKET_FILE: &str = "control.sock";
/// The longest request line the server reads, newline excluded.
pub(crate) const MAX_REQUEST_BYTES: usize = 64 * 1024;
/// How long the server waits for a complete request line, and for the client to take the answer.
pub(crate) const IDLE_TIMEOUT: Duration = Duration::from_secs(10);
/// Connections served at once; further clients wait in the listen backlog.
const MAX_CONNECTIONS: usize = 32;
/// How long connections in flight get to finish after shutdown.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(5);
/// How much unread input is dropped after answering, and for how long, before closing.
const DRAIN_BYTES: usize = 1024 * 1024;
const DRAIN_INPUT_TIMEOUT: Duration = Duration::from_secs(1);
/// How long a client waits for the whole exchange (a list of every session can take a while).
const CLIENT_TIMEOUT: Duration = Duration::from_secs(60);
/// The longest response line a client reads.
const MAX_RESPONSE_BYTES: usize = 256 * 1024 * 1024;
/// Mode of the socket file: only its owner may connect.
const SOCKET_MODE: u32 = 0o600;
/// How long an audit event waits for the server's state, which owns the audit log.
const AUDIT_WAIT: Duration = Duration::from_secs(30);
/// The `actor` of audit events for requests that came through the socket.
const AUDIT_ACTOR: &str = "cli";

/// Where the control socket writes audit events: the audit log of the server's state.
///
/// The socket opens before that state exists (the server may still be waiting for its store),
/// so the state is handed over once built ([`AuditTrail::new`]'s sender), and an event of a
/// request answered before then waits for it. When the server stops without ever building it,
/// the event is reported in the diagnostic log instead.
#[derive(Clone)]
pub(crate) struct AuditTrail(watch::Receiver<Option<App>>);

impl AuditTrail {
    /// A trail, and the sender that hands it the server's state.
    pub(crate) fn new() -> (watch::Sender<Option<App>>, Self) {
        let (tx, rx) = watch::channel(None);
        (tx, Self(rx))
    }

    /// Writes `detail` as a `kind` event to the server's audit log.
    async fn record(&self, kind: AuditKind, detail: &AuditEvent<'_>) {
        let mut rx = self.0.clone();
        let app = match tokio::time::timeout(AUDIT_WAIT, rx.wait_for(Option::is_some)).await {
            Ok(Ok(app)) => app.clone(),
            Ok(Err(_)) | Err(_) => None,
        };
        match app {
            Some(app) => app.audit(kind, detail),
            None => warn!(event = ?kind, user = ?detail.user, "control socket: no audit log to record the event in"),
        }
    }
}

/// What every connection needs: the store, what the ops need besides, and the audit trail.
struct Shared<S, C> {
    store: S,
    signing: Option<Arc<Signing>>,
    clock: C,
    realms: Vec<RealmPolicy>,
    audit: AuditTrail,
}

/// Where the control socket of the server with this configuration lives: `<data_dir>/control.sock`.
pub(crate) fn socket_path(config: &Config) -> PathBuf {
    config.data_dir.join(SOCKET_FILE)
}

/// Opens the control socket at `path` and serves it on a spawned task until `shutdown`
/// completes; then the socket file is removed and connections in flight get a few seconds to
/// finish.
///
/// A socket file left behind by a server that died is replaced; one that a live server answers
/// on is not (that is an error), nor is a file that is not a socket.
///
/// # Errors
/// When another server answers on `path`, when `path` exists and is not a socket, or when the
/// socket cannot be created or restricted to mode 0600.
pub(crate) async fn listen(
    path: PathBuf,
    store: AnyStore,
    signing: Arc<Signing>,
    realms: Vec<RealmPolicy>,
    audit: AuditTrail,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<JoinHandle<()>> {
    let shared = Shared { store, signing: Some(signing), clock: SystemClock, realms, audit };
    listen_with(path, shared, IDLE_TIMEOUT, shutdown).await
}

async fn listen_with<S: Store, C: Clock>(
    path: PathBuf,
    shared: Shared<S, C>,
    idle_timeout: Duration,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<JoinHandle<()>> {
    remove_stale_socket(&path).await?;
    let listener = {
        let address = SocketAddress::new(&path)?;
        UnixListener::bind(address.path()).with_context(|| format!("creating control socket {}", path.display()))?
    };
    // The listener accepts nothing before this returns, and the data directory is private, so no
    // client can get in while the mode is still the umask's. Peers are checked again on accept.
    let owner = match restrict(&path) {
        Ok(owner) => owner,
        Err(e) => {
            drop(listener);
            let _ = std::fs::remove_file(&path);
            return Err(e);
        }
    };
    info!(path = %path.display(), "control socket listening");
    Ok(tokio::spawn(serve(listener, path, owner, Arc::new(shared), idle_timeout, shutdown)))
}

/// Removes a socket file that no server answers on; refuses to touch anything else.
async fn remove_stale_socket(path: &Path) -> anyhow::Result<()> {
    let metadata = match std::fs::symlink_metadata(path) {
        Ok(metadata) => metadata,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e).with_context(|| format!("inspecting {}", path.display())),
    };
    if !metadata.file_type().is_socket() {
        bail!(
            "{} exists and is not a socket; move it away so that sessiond can create its control socket",
            path.display()
        );
    }
    let address = SocketAddress::new(path)?;
    match tokio::time::timeout(Duration::from_secs(1), UnixStream::connect(address.path())).await {
        Ok(Ok(_)) => bail!("another sessiond is already serving the control socket {}", path.display()),
        // Refused: nobody listens; the file is what a server that died left behind.
        Ok(Err(_)) | Err(_) => {
            debug!(path = %path.display(), "removing stale control socket");
            std::fs::remove_file(path).with_context(|| format!("removing stale control socket {}", path.display()))
        }
    }
}

/// The identity of the socket file we created, so that shutdown removes that file and not one
/// that replaced it.
#[derive(Clone, Copy, Debug)]
struct Owner {
    uid: u32,
    dev: u64,
    ino: u64,
}

fn restrict(path: &Path) -> anyhow::Result<Owner> {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(SOCKET_MODE))
        .with_context(|| format!("restricting control socket {} to mode 0600", path.display()))?;
    let metadata = std::fs::metadata(path).with_context(|| format!("inspecting {}", path.display()))?;
    Ok(Owner { uid: metadata.uid(), dev: metadata.dev(), ino: metadata.ino() })
}

/// Only the socket's owner and root may use it; the mode already says so, this makes it hold
/// even for a client that connected while the mode was being set.
fn peer_allowed(stream: &UnixStream, owner: Owner) -> bool {
    match stream.peer_cred() {
        Ok(cred) => cred.uid() == owner.uid || cred.uid() == 0,
        Err(_) => false,
    }
}

async fn serve<S: Store, C: Clock>(
    listener: UnixListener,
    path: PathBuf,
    owner: Owner,
    shared: Arc<Shared<S, C>>,
    idle_timeout: Duration,
    shutdown: impl Future<Output = ()> + Send + 'static,
) {
    let mut connections = JoinSet::new();
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept(), if connections.len() < MAX_CONNECTIONS => match accepted {
                Ok((stream, _)) => {
                    if peer_allowed(&stream, owner) {
                        let shared = Arc::clone(&shared);
                        connections.spawn(async move { connection(stream, &shared, idle_timeout).await });
                    } else {
                        warn!("control socket: refused a client running as another user");
                    }
                }
                Err(e) => {
                    // Usually out of file descriptors: pause instead of spinning.
                    warn!(error = %e, "control socket: accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
    drop(listener);
    remove_if_ours(&path, owner);
    let drained = tokio::time::timeout(DRAIN_TIMEOUT, async { while connections.join_next().await.is_some() {} }).await;
    if drained.is_err() {
        warn!("control socket: connections still open after the drain timeout; closing them");
    }
    info!(path = %path.display(), "control socket closed");
}

fn remove_if_ours(path: &Path, owner: Owner) {
    let ours = std::fs::symlink_metadata(path).is_ok_and(|m| m.dev() == owner.dev && m.ino() == owner.ino);
    if ours {
        if let Err(e) = std::fs::remove_file(path) {
            warn!(path = %path.display(), error = %e, "control socket: cannot remove the socket file");
        }
    }
}

/// Serves one connection: one request line, one response line.
async fn connection<S: Store, C: Clock>(stream: UnixStream, shared: &Shared<S, C>, idle_timeout: Duration) {
    let (mut read, mut write) = stream.into_split();
    let response = match tokio::time::timeout(idle_timeout, read_line(&mut read, MAX_REQUEST_BYTES)).await {
        Err(_) => Err(Failure::from(RequestError::Timeout)),
        Ok(Err(e)) => {
            debug!(error = %e, "control socket: reading the request failed");
            return;
        }
        Ok(Ok(line)) => match parse_request(&line) {
            Err(e) => Err(Failure::from(e)),
            Ok(op) => {
                let name = op.name();
                let Shared { store, signing, clock, realms, audit } = shared;
                let result = execute(store, signing.as_deref(), op, clock.now(), realms).await;
                match &result {
                    Ok(Reply::Revoked { revoked, .. }) => info!(op = name, revoked, "control request"),
                    Ok(Reply::Sessions { sessions }) => debug!(op = name, sessions = sessions.len(), "control request"),
                    Ok(Reply::Rotated { realm, current_kid, .. }) => {
                        info!(op = name, %realm, kid = %current_kid, "control request")
                    }
                    Ok(Reply::CookieName { realm, cookie_name, sessions_ended, .. }) => {
                        info!(op = name, %realm, cookie = %cookie_name, sessions_ended, "control request");
                    }
                    Ok(Reply::Tokens { tokens }) => info!(op = name, tokens = tokens.len(), "control request"),
                    Ok(Reply::TotpReset { user, totp_removed }) => {
                        info!(op = name, %user, totp_removed, "control request");
                        if *totp_removed {
                            // Before the answer: once the command returns, the event is written.
                            let event = AuditEvent {
                                user: Some(user),
                                actor: Some(AUDIT_ACTOR),
                                reason: Some("reset"),
                                ..AuditEvent::default()
                            };
                            audit.record(AuditKind::TotpChanged, &event).await;
                        }
                    }
                    Err(e) => info!(op = name, error = %e, "control request failed"),
                }
                result.map_err(Failure::from)
            }
        },
    };
    let mut text = encode_response(&response);
    text.push('\n');
    let written = tokio::time::timeout(idle_timeout, async {
        write.write_all(text.as_bytes()).await?;
        write.shutdown().await
    })
    .await;
    if !matches!(written, Ok(Ok(()))) {
        debug!("control socket: the client did not take the answer");
        return;
    }
    // Closing a Unix socket that still has unread input resets the connection, and the client
    // would lose the answer (an oversized request, or more than one line): read and drop the
    // rest, within bounds, until the client closes.
    let rest = u64::try_from(DRAIN_BYTES).unwrap_or(u64::MAX);
    let _ =
        tokio::time::timeout(DRAIN_INPUT_TIMEOUT, tokio::io::copy(&mut read.take(rest), &mut tokio::io::sink())).await;
}

/// Reads up to the first `\n` (kept), or to the end of the stream, reading at most `max + 1`
/// bytes so that an oversized line is noticed without being buffered whole.
async fn read_line(read: impl AsyncRead + Unpin, max: usize) -> std::io::Result<Vec<u8>> {
    let limit = u64::try_from(max).unwrap_or(u64::MAX).saturating_add(1);
    let mut reader = BufReader::new(read.take(limit));
    let mut line = Vec::new();
    reader.read_until(b'\n', &mut line).await?;
    Ok(line)
}

/// Why a request line was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub(crate) enum RequestError {
    /// The line is longer than [`MAX_REQUEST_BYTES`].
    #[error("request line longer than {MAX_REQUEST_BYTES} bytes")]
    TooLarge,
    /// The client sent nothing.
    #[error("empty request")]
    Empty,
    /// Not a JSON object, an unknown op, or bad arguments.
    #[error("invalid request: {0}")]
    Invalid(String),
    /// No complete line arrived in time.
    #[error("no complete request within {} s", IDLE_TIMEOUT.as_secs())]
    Timeout,
}

/// The ops the server knows, by wire name.
const KNOWN_OPS: [&str; 9] = [
    "sessions.list",
    "sessions.revoke",
    "sessions.revoke_user",
    "tokens.create",
    "tokens.list",
    "tokens.revoke",
    "keys.rotate",
    "realm.cookie_name",
    "totp.reset",
];

/// Parses one request line (a trailing `\n` or `\r\n` is allowed).
///
/// # Errors
/// [`RequestError`] for an oversized or empty line, invalid JSON, an unknown op, or arguments
/// that do not fit the op (unknown or missing fields, a malformed session id).
pub(crate) fn parse_request(line: &[u8]) -> Result<Op, RequestError> {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    if line.len() > MAX_REQUEST_BYTES {
        return Err(RequestError::TooLarge);
    }
    if line.iter().all(u8::is_ascii_whitespace) {
        return Err(RequestError::Empty);
    }
    let value: Value = serde_json::from_slice(line).map_err(|e| RequestError::Invalid(e.to_string()))?;
    let op = match value.get("op") {
        Some(Value::String(op)) => op,
        Some(_) => return Err(RequestError::Invalid("\"op\" must be a string".to_owned())),
        None if value.is_object() => return Err(RequestError::Invalid("missing \"op\"".to_owned())),
        None => return Err(RequestError::Invalid("expected a JSON object".to_owned())),
    };
    if !KNOWN_OPS.contains(&op.as_str()) {
        return Err(RequestError::Invalid(format!("unknown op {op:?}; known: {}", KNOWN_OPS.join(", "))));
    }
    serde_json::from_value(value).map_err(|e| RequestError::Invalid(e.to_string()))
}

/// A refusal as sent on the wire: a stable code and a message for people.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub(crate) struct Failure {
    /// `bad_request`, `payload_too_large`, `timeout`, `not_found` or `store_unavailable`.
    pub(crate) code: String,
    /// What went wrong.
    pub(crate) message: String,
}

impl From<RequestError> for Failure {
    fn from(e: RequestError) -> Self {
        let code = match e {
            RequestError::TooLarge => "payload_too_large",
            RequestError::Timeout => "timeout",
            RequestError::Empty | RequestError::Invalid(_) => "bad_request",
        };
        Self { code: code.to_owned(), message: e.to_string() }
    }
}

impl From<OpError> for Failure {
    fn from(e: OpError) -> Self {
        let code = match e {
            OpError::NoSuchSession(_) | OpError::NoSuchToken(_) => "not_found",
            OpError::Invalid(_) => "bad_request",
            OpError::NoSecret => "no_secret",
            OpError::Store(_) => "store_unavailable",
        };
        // The client is the server's own operator, so the whole cause chain is theirs to read.
        let message = format!("{:#}", anyhow::Error::new(e));
        Self { code: code.to_owned(), message }
    }
}

/// A successful response line: `ok` first, then the reply's fields.
#[derive(Serialize)]
struct Success<'a> {
    ok: bool,
    #[serde(flatten)]
    reply: &'a Reply,
}

/// A refusal line.
#[derive(Serialize)]
struct Refusal<'a> {
    ok: bool,
    error: &'a str,
    code: &'a str,
}

/// The response line for `result`, without the newline.
pub(crate) fn encode_response(result: &Result<Reply, Failure>) -> String {
    let encoded = match result {
        Ok(reply) => serde_json::to_string(&Success { ok: true, reply }),
        Err(failure) => serde_json::to_string(&Refusal { ok: false, error: &failure.message, code: &failure.code }),
    };
    // Serializing strings, numbers and lists cannot fail; should it ever, the client still gets
    // a line it can read.
    encoded.unwrap_or_else(|_| r#"{"ok":false,"error":"cannot encode the answer","code":"internal"}"#.to_owned())
}

/// Reads a response line.
///
/// # Errors
/// When the line is not a response of this protocol.
pub(crate) fn decode_response(line: &[u8]) -> anyhow::Result<Result<Reply, Failure>> {
    let value: Value = serde_json::from_slice(line).context("the server's answer is not JSON")?;
    match value.get("ok") {
        Some(Value::Bool(true)) => {
            let reply = serde_json::from_value(value).context("the server's answer has an unexpected shape")?;
            Ok(Ok(reply))
        }
        Some(Value::Bool(false)) => {
            let text = |key: &str| value.get(key).and_then(Value::as_str).unwrap_or_default().to_owned();
            let message = Some(text("error")).filter(|m| !m.is_empty()).unwrap_or_else(|| "request failed".to_owned());
            Ok(Err(Failure { code: text("code"), message }))
        }
        _ => bail!("the server's answer has no \"ok\" field"),
    }
}

/// What asking a running server gave.
#[derive(Debug)]
pub(crate) enum Answer {
    /// No server listens on the socket (it does not exist, or nobody accepts on it).
    NoServer,
    /// The server ran the request.
    Done(Result<Reply, Failure>),
}

/// Sends `op` to the server listening on `path` and waits for its answer.
///
/// # Errors
/// When a server accepted the connection but the exchange failed or timed out, or when the
/// socket exists but may not be used (another user's server).
pub(crate) async fn ask(path: &Path, op: &Op) -> anyhow::Result<Answer> {
    let address = SocketAddress::new(path)?;
    let stream = match UnixStream::connect(address.path()).await {
        Ok(stream) => stream,
        Err(e) if matches!(e.kind(), ErrorKind::NotFound | ErrorKind::ConnectionRefused) => {
            return Ok(Answer::NoServer);
        }
        Err(e) => return Err(e).with_context(|| format!("connecting to control socket {}", path.display())),
    };
    let exchange = async {
        let (read, mut write) = stream.into_split();
        let mut request = serde_json::to_string(op).context("encoding the request")?;
        request.push('\n');
        write.write_all(request.as_bytes()).await.context("sending the request")?;
        write.shutdown().await.context("sending the request")?;
        let line = read_line(read, MAX_RESPONSE_BYTES).await.context("reading the answer")?;
        if line.is_empty() {
            bail!("the server closed the connection without answering");
        }
        decode_response(&line)
    };
    match tokio::time::timeout(CLIENT_TIMEOUT, exchange).await {
        Ok(result) => result.map(Answer::Done).with_context(|| format!("talking to the server on {}", path.display())),
        Err(_) => bail!("the server on {} did not answer within {} s", path.display(), CLIENT_TIMEOUT.as_secs()),
    }
}

/// A socket path that fits in `sockaddr_un`.
///
/// Socket addresses hold about 100 bytes, while a data directory can be deeper than that. A long
/// path is reached through the directory's file descriptor (`/proc/self/fd/N/control.sock`),
/// which names the same file; the descriptor stays open as long as this value lives.
struct SocketAddress {
    path: PathBuf,
    _dir: Option<std::fs::File>,
}

/// Paths at least this long go through the directory's descriptor (`sun_path` is 108 bytes on
/// Linux, 104 on the BSDs, including the terminating NUL).
const MAX_SOCKET_PATH: usize = 100;

impl SocketAddress {
    fn new(path: &Path) -> anyhow::Result<Self> {
        if path.as_os_str().len() < MAX_SOCKET_PATH || !Path::new("/proc/self/fd").is_dir() {
            return Ok(Self { path: path.to_owned(), _dir: None });
        }
        let (Some(dir), Some(name)) = (path.parent(), path.file_name()) else {
            return Ok(Self { path: path.to_owned(), _dir: None });
        };
        let dir_file = std::fs::File::open(dir).with_context(|| format!("opening directory {}", dir.display()))?;
        let fd = std::os::fd::AsRawFd::as_raw_fd(&dir_file);
        Ok(Self { path: PathBuf::from(format!("/proc/self/fd/{fd}")).join(name), _dir: Some(dir_file) })
    }

    fn path(&self) -> &Path {
        &self.path
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn test_signing() -> Arc<Signing> {
        Arc::new(Signing::new(b"a secret of at least thirty-two bytes", None))
    }
    use crate::commands::ops::tests::{NOW, record};
    use sessiond_server::clock::ManualClock;
    use sessiond_store::MemoryStore;
    use tokio::sync::oneshot;

    fn op(line: &str) -> Result<Op, RequestError> {
        parse_request(line.as_bytes())
    }

    fn invalid(line: &str) -> String {
        match op(line) {
            Err(RequestError::Invalid(reason)) => reason,
            other => panic!("expected an invalid request for {line:?}, got {other:?}"),
        }
    }

    #[test]
    fn parses_each_op() {
        assert_eq!(
            op(r#"{"op":"sessions.list","user":"alice","realm":"main"}"#).unwrap(),
            Op::ListSessions { user: Some("alice".to_owned()), realm: Some("main".to_owned()) }
        );
        assert_eq!(op("{\"op\":\"sessions.list\"}\r\n").unwrap(), Op::ListSessions { user: None, realm: None });
        assert_eq!(op(r#"{"op":"sessions.list","user":null}"#).unwrap(), Op::ListSessions { user: None, realm: None });
        let id = sessiond_core::token::SessionId::generate();
        assert_eq!(op(&format!(r#"{{"op":"sessions.revoke","id":"{id}"}}"#)).unwrap(), Op::RevokeSession { id });
        assert_eq!(
            op(r#"{"op":"sessions.revoke_user","user":"alice"}"#).unwrap(),
            Op::RevokeUser { user: "alice".to_owned(), realm: None }
        );
    }

    #[test]
    fn the_client_encoding_of_every_op_parses_back() {
        let ops = [
            Op::ListSessions { user: Some("a".to_owned()), realm: None },
            Op::RevokeSession { id: sessiond_core::token::SessionId::generate() },
            Op::RevokeUser { user: "a".to_owned(), realm: Some("main".to_owned()) },
            Op::ResetTotp { user: "alice".to_owned() },
        ];
        for original in ops {
            let line = serde_json::to_string(&original).unwrap();
            assert_eq!(parse_request(line.as_bytes()).unwrap(), original, "{line}");
        }
    }

    #[test]
    fn refuses_lines_that_are_not_requests() {
        assert_eq!(op(""), Err(RequestError::Empty));
        assert_eq!(op("  \n"), Err(RequestError::Empty));
        assert!(invalid("not json").contains("expected"), "serde's reason is kept");
        assert_eq!(invalid("[1,2]"), "expected a JSON object");
        assert_eq!(invalid(r#"{"user":"alice"}"#), "missing \"op\"");
        assert_eq!(invalid(r#"{"op":7}"#), "\"op\" must be a string");
        assert!(matches!(parse_request(&[0xff, 0xfe, b'\n']), Err(RequestError::Invalid(_))));
    }

    #[test]
    fn refuses_an_unknown_op_naming_it() {
        let reason = invalid(r#"{"op":"sessions.drop_all"}"#);
        assert!(reason.contains("unknown op \"sessions.drop_all\""), "{reason}");
        assert!(reason.contains("sessions.list"), "the known ops are listed: {reason}");
    }

    #[test]
    fn refuses_unknown_and_missing_fields() {
        let reason = invalid(r#"{"op":"sessions.list","usr":"alice"}"#);
        assert!(reason.contains("usr"), "{reason}");
        let reason = invalid(r#"{"op":"sessions.revoke"}"#);
        assert!(reason.contains("id"), "{reason}");
        let reason = invalid(r#"{"op":"sessions.revoke_user","user":5}"#);
        assert!(reason.contains("invalid type"), "{reason}");
    }

    #[test]
    fn refuses_a_malformed_session_id() {
        let reason = invalid(r#"{"op":"sessions.revoke","id":"short"}"#);
        assert!(reason.contains("expected 22 characters, got 5"), "{reason}");
    }

    #[test]
    fn limits_the_line_length() {
        let padding = " ".repeat(MAX_REQUEST_BYTES - r#"{"op":"sessions.list"}"#.len());
        let at_limit = format!("{{\"op\":\"sessions.list\"}}{padding}\n");
        assert!(op(&at_limit).is_ok());
        let over = format!("{{\"op\":\"sessions.list\"}}{padding} \n");
        assert_eq!(op(&over), Err(RequestError::TooLarge));
    }

    #[tokio::test]
    async fn read_line_stops_after_the_limit() {
        let input = vec![b'x'; 1000];
        let line = read_line(&input[..], 10).await.unwrap();
        assert_eq!(line.len(), 11, "one byte past the limit tells an oversized line apart");
        assert_eq!(parse_request(&vec![b'x'; MAX_REQUEST_BYTES + 1]), Err(RequestError::TooLarge));
        let line = read_line(&b"{}\nrest"[..], 10).await.unwrap();
        assert_eq!(line, b"{}\n");
    }

    #[test]
    fn responses_round_trip() {
        let ok = Ok(Reply::Revoked { revoked: 2, client_realms: vec![] });
        assert_eq!(encode_response(&ok), r#"{"ok":true,"revoked":2}"#);
        assert_eq!(decode_response(encode_response(&ok).as_bytes()).unwrap(), ok);

        let err = Err(Failure { code: "not_found".to_owned(), message: "no session with id x".to_owned() });
        assert_eq!(encode_response(&err), r#"{"ok":false,"error":"no session with id x","code":"not_found"}"#);
        assert_eq!(decode_response(encode_response(&err).as_bytes()).unwrap(), err);

        let sessions = Ok(Reply::Sessions { sessions: vec![record("main", "alice", 60).into()] });
        assert_eq!(decode_response(encode_response(&sessions).as_bytes()).unwrap(), sessions);
    }

    #[test]
    fn decode_refuses_foreign_answers() {
        assert!(decode_response(b"hello").is_err());
        assert!(decode_response(br#"{"sessions":[]}"#).is_err());
        assert!(decode_response(br#"{"ok":true,"what":1}"#).is_err());
    }

    #[test]
    fn failures_carry_stable_codes() {
        assert_eq!(Failure::from(RequestError::TooLarge).code, "payload_too_large");
        assert_eq!(Failure::from(RequestError::Empty).code, "bad_request");
        assert_eq!(Failure::from(RequestError::Timeout).code, "timeout");
        let id = sessiond_core::token::SessionId::generate();
        let failure = Failure::from(OpError::NoSuchSession(id.clone()));
        assert_eq!(failure.code, "not_found");
        assert_eq!(failure.message, format!("no session with id {id}"));
    }

    /// A running control socket on a fresh directory.
    struct Running {
        _dir: tempfile::TempDir,
        path: PathBuf,
        stop: oneshot::Sender<()>,
        task: JoinHandle<()>,
    }

    async fn start(store: MemoryStore, idle: Duration) -> Running {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(SOCKET_FILE);
        let (stop, stopped) = oneshot::channel::<()>();
        let shutdown = async move {
            let _ = stopped.await;
        };
        let shared = Shared {
            store: AnyStore::Memory(store),
            signing: None,
            clock: ManualClock::new(NOW),
            realms: vec![],
            audit: AuditTrail::new().1,
        };
        let task = listen_with(path.clone(), shared, idle, shutdown).await.unwrap();
        Running { _dir: dir, path, stop, task }
    }

    async fn exchange(path: &Path, request: &[u8]) -> Value {
        let mut stream = UnixStream::connect(path).await.unwrap();
        stream.write_all(request).await.unwrap();
        let mut answer = String::new();
        stream.read_to_string(&mut answer).await.unwrap();
        assert!(answer.ends_with('\n'), "one line: {answer:?}");
        assert_eq!(answer.matches('\n').count(), 1, "one line: {answer:?}");
        serde_json::from_str(&answer).unwrap()
    }

    #[tokio::test]
    async fn listen_serves_list_and_revoke_over_a_real_socket() {
        let store = MemoryStore::default();
        let alice = record("main", "alice", 600);
        let bob = record("main", "bob", 600);
        store.create_session(&alice).await.unwrap();
        store.create_session(&bob).await.unwrap();
        let running = start(store.clone(), IDLE_TIMEOUT).await;

        let mode = std::fs::metadata(&running.path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "socket mode {mode:o}");

        let listed = exchange(&running.path, b"{\"op\":\"sessions.list\",\"user\":\"alice\"}\n").await;
        assert_eq!(listed["ok"], true);
        assert_eq!(listed["sessions"].as_array().unwrap().len(), 1);
        assert_eq!(listed["sessions"][0]["id"], alice.id.to_string());
        assert_eq!(listed["sessions"][0]["user"], "alice");

        let request = format!("{{\"op\":\"sessions.revoke\",\"id\":\"{}\"}}\n", alice.id);
        let revoked = exchange(&running.path, request.as_bytes()).await;
        assert_eq!(revoked, serde_json::json!({"ok": true, "revoked": 1}));
        assert!(store.session_by_id(&alice.id).await.unwrap().is_none());
        assert!(store.session_by_id(&bob.id).await.unwrap().is_some());

        let again = exchange(&running.path, request.as_bytes()).await;
        assert_eq!(again["ok"], false);
        assert_eq!(again["code"], "not_found");
        assert_eq!(again["error"], format!("no session with id {}", alice.id));

        let by_user = exchange(&running.path, b"{\"op\":\"sessions.revoke_user\",\"user\":\"bob\"}\n").await;
        assert_eq!(by_user, serde_json::json!({"ok": true, "revoked": 1}));

        running.stop.send(()).unwrap();
        running.task.await.unwrap();
        assert!(!running.path.exists(), "the socket file is removed on shutdown");
    }

    #[tokio::test]
    async fn the_client_gets_the_same_answers_as_the_store() {
        let store = MemoryStore::default();
        let alice = record("main", "alice", 600);
        store.create_session(&alice).await.unwrap();
        let running = start(store, IDLE_TIMEOUT).await;

        let answer = ask(&running.path, &Op::ListSessions { user: None, realm: None }).await.unwrap();
        let Answer::Done(Ok(Reply::Sessions { sessions })) = answer else { panic!("{answer:?}") };
        assert_eq!(sessions, vec![alice.clone().into()]);

        let missing = sessiond_core::token::SessionId::generate();
        let answer = ask(&running.path, &Op::RevokeSession { id: missing.clone() }).await.unwrap();
        let Answer::Done(Err(failure)) = answer else { panic!("{answer:?}") };
        assert_eq!(failure.to_string(), format!("no session with id {missing}"));

        running.stop.send(()).unwrap();
        running.task.await.unwrap();
        let answer = ask(&running.path, &Op::ListSessions { user: None, realm: None }).await.unwrap();
        assert!(matches!(answer, Answer::NoServer), "{answer:?}");
    }

    #[tokio::test]
    async fn bad_requests_get_an_error_reply_and_the_server_keeps_going() {
        let running = start(MemoryStore::default(), IDLE_TIMEOUT).await;

        let unknown = exchange(&running.path, b"{\"op\":\"nope\"}\n").await;
        assert_eq!(unknown["ok"], false);
        assert_eq!(unknown["code"], "bad_request");
        assert!(unknown["error"].as_str().unwrap().contains("unknown op \"nope\""), "{unknown}");

        let garbage = exchange(&running.path, b"\x00\xff garbage\n").await;
        assert_eq!(garbage["code"], "bad_request");

        let mut huge = vec![b'a'; MAX_REQUEST_BYTES + 10];
        huge.push(b'\n');
        let oversized = exchange(&running.path, &huge).await;
        assert_eq!(oversized["code"], "payload_too_large");

        // A request without its newline still counts once the client closes its side.
        let mut stream = UnixStream::connect(&running.path).await.unwrap();
        stream.write_all(b"{\"op\":\"sessions.list\"}").await.unwrap();
        stream.shutdown().await.unwrap();
        let mut answer = String::new();
        stream.read_to_string(&mut answer).await.unwrap();
        assert_eq!(answer, "{\"ok\":true,\"sessions\":[]}\n");

        running.stop.send(()).unwrap();
        running.task.await.unwrap();
    }

    #[tokio::test]
    async fn an_idle_connection_is_answered_with_timeout_and_closed() {
        let running = start(MemoryStore::default(), Duration::from_millis(100)).await;
        let mut stream = UnixStream::connect(&running.path).await.unwrap();
        stream.write_all(b"{\"op\":").await.unwrap();
        let mut answer = String::new();
        let read = tokio::time::timeout(Duration::from_secs(5), stream.read_to_string(&mut answer)).await;
        assert!(read.is_ok(), "the server closed the idle connection");
        let answer: Value = serde_json::from_str(&answer).unwrap();
        assert_eq!(answer["code"], "timeout");

        // The server still answers others.
        let listed = exchange(&running.path, b"{\"op\":\"sessions.list\"}\n").await;
        assert_eq!(listed["ok"], true);
        running.stop.send(()).unwrap();
        running.task.await.unwrap();
    }

    #[tokio::test]
    async fn a_stale_socket_file_is_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(SOCKET_FILE);
        drop(std::os::unix::net::UnixListener::bind(&path).unwrap());
        assert!(path.exists(), "the dead listener left its file");
        let (stop, stopped) = oneshot::channel::<()>();
        let task = listen(
            path.clone(),
            AnyStore::Memory(MemoryStore::default()),
            test_signing(),
            vec![],
            AuditTrail::new().1,
            async move {
                let _ = stopped.await;
            },
        )
        .await
        .unwrap();
        let listed = exchange(&path, b"{\"op\":\"sessions.list\"}\n").await;
        assert_eq!(listed["ok"], true);
        stop.send(()).unwrap();
        task.await.unwrap();
    }

    #[tokio::test]
    async fn a_live_socket_is_not_taken_over() {
        let running = start(MemoryStore::default(), IDLE_TIMEOUT).await;
        let err = listen(
            running.path.clone(),
            AnyStore::Memory(MemoryStore::default()),
            test_signing(),
            vec![],
            AuditTrail::new().1,
            std::future::pending(),
        )
        .await
        .unwrap_err();
        assert!(err.to_string().contains("another sessiond"), "{err:#}");
        let listed = exchange(&running.path, b"{\"op\":\"sessions.list\"}\n").await;
        assert_eq!(listed["ok"], true, "the first server still answers");
        running.stop.send(()).unwrap();
        running.task.await.unwrap();
    }

    #[tokio::test]
    async fn a_file_that_is_not_a_socket_is_left_alone() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(SOCKET_FILE);
        std::fs::write(&path, "keep me").unwrap();
        let err = listen(
            path.clone(),
            AnyStore::Memory(MemoryStore::default()),
            test_signing(),
            vec![],
            AuditTrail::new().1,
            std::future::pending(),
        )
        .await
        .unwrap_err();
        assert!(err.to_string().contains("is not a socket"), "{err:#}");
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "keep me");
    }

    #[tokio::test]
    async fn a_long_socket_path_still_works() {
        let dir = tempfile::tempdir().unwrap();
        let deep = dir.path().join("d".repeat(60)).join("e".repeat(60));
        std::fs::create_dir_all(&deep).unwrap();
        let path = deep.join(SOCKET_FILE);
        assert!(path.as_os_str().len() > 108);
        let (stop, stopped) = oneshot::channel::<()>();
        let task = listen(
            path.clone(),
            AnyStore::Memory(MemoryStore::default()),
            test_signing(),
            vec![],
            AuditTrail::new().1,
            async move {
                let _ = stopped.await;
            },
        )
        .await
        .unwrap();
        assert!(path.exists());
        let answer = ask(&path, &Op::ListSessions { user: None, realm: None }).await.unwrap();
        assert!(matches!(answer, Answer::Done(Ok(Reply::Sessions { .. }))), "{answer:?}");
        stop.send(()).unwrap();
        task.await.unwrap();
        assert!(!path.exists());
    }

    #[tokio::test]
    async fn ask_without_a_server_says_so() {
        let dir = tempfile::tempdir().unwrap();
        let answer = ask(&dir.path().join(SOCKET_FILE), &Op::ListSessions { user: None, realm: None }).await.unwrap();
        assert!(matches!(answer, Answer::NoServer));
    }
}
