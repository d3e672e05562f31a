//! `sessiond healthcheck`: asks a running server for `/healthz` over plain HTTP/1.1.
//!
//! Container images built `FROM scratch` have no shell and no curl, so the binary checks itself.
//! The client is deliberately tiny: one `GET` with `Connection: close`, and only the status line
//! of the answer is read. TLS is not spoken; sessiond serves plain HTTP behind its proxy.

use super::{load_config, print_json, print_stdout};
use crate::cli::Healthcheck;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::Path;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt as _, AsyncReadExt as _, AsyncWriteExt as _, BufReader};
use tokio::net::TcpStream;
use url::{Host, Position, Url};

/// The path asked when no `--url` is given.
const HEALTH_PATH: &str = "/healthz";
/// The longest status line read; a real one is about 20 bytes.
const MAX_STATUS_LINE: usize = 1024;

/// `sessiond healthcheck [--url URL] [--timeout 5s]`: exits with status 0 when the server answers
/// 2xx, and 1 (with `error: …` on standard error) when it answers anything else, does not answer
/// within the timeout, or cannot be reached.
///
/// Text output: `healthy: URL answered 200 OK`. `--json`: `{"url":"URL","status":200}`.
///
/// # Errors
/// Every [`ProbeError`]; also when no `--url` is given and the configuration, which then gives
/// the address, is invalid.
pub(crate) async fn healthcheck(config: Option<&Path>, args: &Healthcheck, json: bool) -> anyhow::Result<()> {
    let url = match &args.url {
        Some(text) => Url::parse(text).map_err(|e| ProbeError::BadUrl { url: text.clone(), reason: e.to_string() })?,
        None => default_url(load_config(config)?.server.listen)?,
    };
    let status = probe(&url, args.timeout).await?;
    if json {
        print_json(&serde_json::json!({ "url": url.as_str(), "status": status.code }))
    } else {
        print_stdout(&format!("healthy: {url} answered {} {}\n", status.code, status.reason))
    }
}

/// `http://<listen>/healthz`, with the loopback address of the same family when `listen` is the
/// unspecified address (a server on `0.0.0.0` answers on `127.0.0.1`).
fn default_url(listen: SocketAddr) -> Result<Url, ProbeError> {
    let ip = match listen.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    let text = format!("http://{}{HEALTH_PATH}", SocketAddr::new(ip, listen.port()));
    Url::parse(&text).map_err(|e| ProbeError::BadUrl { url: text.clone(), reason: e.to_string() })
}

/// The status line of an answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Status {
    /// The status code, `200`.
    pub(crate) code: u16,
    /// The reason phrase, `OK`; may be empty.
    pub(crate) reason: String,
}

/// Why a server was not found healthy.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ProbeError {
    /// The URL does not parse.
    #[error("invalid URL {url:?}: {reason}")]
    BadUrl { url: String, reason: String },
    /// Not `http://`, or no host.
    #[error("{url}: only http:// URLs with a host can be checked")]
    Unsupported { url: String },
    /// The TCP connection failed (nothing listens, refused, unreachable, unknown host).
    #[error("{url}: cannot connect")]
    Connect {
        url: String,
        #[source]
        source: std::io::Error,
    },
    /// The connection broke while sending the request or reading the answer.
    #[error("{url}: connection failed")]
    Io {
        url: String,
        #[source]
        source: std::io::Error,
    },
    /// No complete status line within the timeout.
    #[error("{url}: no answer within {}s", after.as_secs_f64())]
    Timeout { url: String, after: Duration },
    /// The server closed the connection without answering.
    #[error("{url}: the connection closed without an answer")]
    NoAnswer { url: String },
    /// The first line is not `HTTP/1.x NNN reason`.
    #[error("{url}: not an HTTP answer: {line:?}")]
    Malformed { url: String, line: String },
    /// An answer other than 2xx.
    #[error("{url} answered {code} {reason}")]
    Unhealthy { url: String, code: u16, reason: String },
}

/// Sends `GET url` and returns the status when it is 2xx.
///
/// # Errors
/// A [`ProbeError`] naming `url`: an unsupported URL, a failed connection, no status line within
/// `timeout`, a malformed one, or a status other than 2xx.
pub(crate) async fn probe(url: &Url, timeout: Duration) -> Result<Status, ProbeError> {
    let shown = url.as_str().to_owned();
    let status = match tokio::time::timeout(timeout, exchange(url)).await {
        Ok(result) => result?,
        Err(_) => return Err(ProbeError::Timeout { url: shown, after: timeout }),
    };
    if (200..300).contains(&status.code) {
        Ok(status)
    } else {
        Err(ProbeError::Unhealthy { url: shown, code: status.code, reason: status.reason })
    }
}

/// One request and the status line of its answer.
async fn exchange(url: &Url) -> Result<Status, ProbeError> {
    let shown = || url.as_str().to_owned();
    let unsupported = || ProbeError::Unsupported { url: shown() };
    if url.scheme() != "http" {
        return Err(unsupported());
    }
    let port = url.port_or_known_default().ok_or_else(unsupported)?;
    let connected = match url.host().ok_or_else(unsupported)? {
        Host::Domain(name) => TcpStream::connect((name, port)).await,
        Host::Ipv4(ip) => TcpStream::connect(SocketAddr::new(ip.into(), port)).await,
        Host::Ipv6(ip) => TcpStream::connect(SocketAddr::new(ip.into(), port)).await,
    };
    let mut stream = connected.map_err(|source| ProbeError::Connect { url: shown(), source })?;

    // `host[:port]` exactly as written (IPv6 in brackets), and the path with its query.
    let host = &url[Position::BeforeHost..Position::AfterPort];
    let target = &url[Position::BeforePath..Position::AfterQuery];
    let request = format!(
        "GET {target} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: sessiond-healthcheck/{}\r\nAccept: */*\r\nConnection: close\r\n\r\n",
        env!("CARGO_PKG_VERSION")
    );
    let io = |source| ProbeError::Io { url: shown(), source };
    stream.write_all(request.as_bytes()).await.map_err(io)?;

    let mut line = Vec::new();
    let limit = u64::try_from(MAX_STATUS_LINE).unwrap_or(u64::MAX);
    BufReader::new(stream).take(limit).read_until(b'\n', &mut line).await.map_err(io)?;
    if line.is_empty() {
        return Err(ProbeError::NoAnswer { url: shown() });
    }
    parse_status_line(&line).ok_or_else(|| ProbeError::Malformed {
        url: shown(),
        line: String::from_utf8_lossy(&line).trim_end().chars().take(120).collect(),
    })
}

/// `HTTP/1.1 200 OK\r\n` → `200`, `OK`. The line must be complete (end with `\n`).
fn parse_status_line(line: &[u8]) -> Option<Status> {
    let line = std::str::from_utf8(line).ok()?.strip_suffix('\n')?;
    let line = line.strip_suffix('\r').unwrap_or(line);
    let (version, rest) = line.split_once(' ')?;
    if !matches!(version, "HTTP/1.0" | "HTTP/1.1") {
        return None;
    }
    let (code, reason) = rest.split_once(' ').unwrap_or((rest, ""));
    if code.len() != 3 || !code.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some(Status { code: code.parse().ok()?, reason: reason.to_owned() })
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::net::TcpListener;
    use tokio::sync::oneshot;

    /// How the test server treats the one connection it accepts.
    enum Behaviour {
        /// Answers with these bytes after reading the request head.
        Answer(&'static str),
        /// Reads the request head, then holds the connection open without answering.
        Silent,
        /// Closes the connection right after accepting it.
        Hangup,
    }

    /// Serves one connection on a loopback port; the receiver gets the request head it read.
    async fn server(behaviour: Behaviour) -> (SocketAddr, oneshot::Receiver<String>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (head_tx, head_rx) = oneshot::channel();
        tokio::spawn(async move {
            let (stream, _) = listener.accept().await.unwrap();
            if matches!(behaviour, Behaviour::Hangup) {
                drop(stream);
                let _ = head_tx.send(String::new());
                return;
            }
            let mut reader = BufReader::new(stream);
            let mut head = String::new();
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).await.unwrap() == 0 || line == "\r\n" {
                    break;
                }
                head.push_str(&line);
            }
            let _ = head_tx.send(head);
            match behaviour {
                Behaviour::Answer(answer) => reader.get_mut().write_all(answer.as_bytes()).await.unwrap(),
                // Keep the connection open until the client gives up and closes it.
                Behaviour::Silent => while reader.read_line(&mut String::new()).await.unwrap_or(0) > 0 {},
                Behaviour::Hangup => {}
            }
        });
        (addr, head_rx)
    }

    fn url(addr: SocketAddr, path: &str) -> Url {
        Url::parse(&format!("http://{addr}{path}")).unwrap()
    }

    const TIMEOUT: Duration = Duration::from_secs(5);

    #[tokio::test]
    async fn healthy_server_answering_200_passes() {
        let (addr, head) =
            server(Behaviour::Answer("HTTP/1.1 200 OK\r\ncontent-length: 15\r\n\r\n{\"status\":\"ok\"}")).await;
        let status = probe(&url(addr, "/healthz"), TIMEOUT).await.unwrap();
        assert_eq!(status, Status { code: 200, reason: "OK".to_owned() });
        let head = head.await.unwrap();
        assert!(head.starts_with("GET /healthz HTTP/1.1\r\n"), "request line: {head:?}");
        assert!(head.contains(&format!("\r\nHost: {addr}\r\n")), "host header: {head:?}");
        assert!(head.contains("\r\nConnection: close\r\n"), "{head:?}");
    }

    #[tokio::test]
    async fn path_and_query_are_sent_as_written() {
        let (addr, head) = server(Behaviour::Answer("HTTP/1.0 204 No Content\r\n\r\n")).await;
        let status = probe(&url(addr, "/readyz?verbose=1"), TIMEOUT).await.unwrap();
        assert_eq!(status.code, 204);
        assert!(head.await.unwrap().starts_with("GET /readyz?verbose=1 HTTP/1.1\r\n"));
    }

    #[tokio::test]
    async fn server_answering_503_is_unhealthy() {
        let (addr, _head) =
            server(Behaviour::Answer("HTTP/1.1 503 Service Unavailable\r\ncontent-length: 0\r\n\r\n")).await;
        let error = probe(&url(addr, "/healthz"), TIMEOUT).await.unwrap_err();
        assert!(matches!(&error, ProbeError::Unhealthy { code: 503, reason, .. } if reason == "Service Unavailable"));
        assert_eq!(error.to_string(), format!("http://{addr}/healthz answered 503 Service Unavailable"));
    }

    #[tokio::test]
    async fn redirect_is_not_followed_and_not_healthy() {
        let (addr, _head) = server(Behaviour::Answer("HTTP/1.1 302 Found\r\nlocation: /login\r\n\r\n")).await;
        let error = probe(&url(addr, "/healthz"), TIMEOUT).await.unwrap_err();
        assert!(matches!(error, ProbeError::Unhealthy { code: 302, .. }));
    }

    #[tokio::test]
    async fn server_that_never_answers_times_out() {
        let (addr, head) = server(Behaviour::Silent).await;
        // Long enough that even a loaded machine has sent the request before the client gives up.
        let after = Duration::from_secs(1);
        let error = probe(&url(addr, "/healthz"), after).await.unwrap_err();
        assert!(matches!(error, ProbeError::Timeout { after: a, .. } if a == after), "{error:?}");
        // The request did arrive: the timeout is about the missing answer, not the connection.
        assert!(head.await.unwrap().starts_with("GET /healthz "));
    }

    #[tokio::test]
    async fn server_closing_without_answer_fails() {
        let (addr, _head) = server(Behaviour::Hangup).await;
        let error = probe(&url(addr, "/healthz"), TIMEOUT).await.unwrap_err();
        // The hang-up may reach the client as an end of stream or as a reset, depending on timing.
        assert!(matches!(error, ProbeError::NoAnswer { .. } | ProbeError::Io { .. }), "{error:?}");
    }

    #[tokio::test]
    async fn non_http_answer_is_refused() {
        let (addr, _head) = server(Behaviour::Answer("SSH-2.0-OpenSSH_9.6\r\n")).await;
        let error = probe(&url(addr, "/healthz"), TIMEOUT).await.unwrap_err();
        assert!(matches!(&error, ProbeError::Malformed { line, .. } if line == "SSH-2.0-OpenSSH_9.6"), "{error:?}");
    }

    #[tokio::test]
    async fn nothing_listening_is_a_connect_error() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        drop(listener);
        let error = probe(&url(addr, "/healthz"), TIMEOUT).await.unwrap_err();
        assert!(matches!(error, ProbeError::Connect { .. }), "{error:?}");
    }

    #[tokio::test]
    async fn only_plain_http_urls_are_checked() {
        for text in ["https://127.0.0.1:8470/healthz", "unix:/run/sessiond.sock", "data:text/plain,ok"] {
            let error = probe(&Url::parse(text).unwrap(), TIMEOUT).await.unwrap_err();
            assert!(matches!(error, ProbeError::Unsupported { .. }), "{text}: {error:?}");
        }
    }

    #[test]
    fn default_url_asks_loopback_when_listening_everywhere() {
        let cases = [
            ("0.0.0.0:8470", "http://127.0.0.1:8470/healthz"),
            ("[::]:9000", "http://[::1]:9000/healthz"),
            ("10.1.2.3:8470", "http://10.1.2.3:8470/healthz"),
            ("127.0.0.1:8470", "http://127.0.0.1:8470/healthz"),
        ];
        for (listen, expected) in cases {
            assert_eq!(default_url(listen.parse().unwrap()).unwrap().as_str(), expected, "listen {listen}");
        }
    }

    #[test]
    fn status_lines_are_parsed_strictly() {
        let ok = |line: &str| parse_status_line(line.as_bytes());
        assert_eq!(ok("HTTP/1.1 200 OK\r\n"), Some(Status { code: 200, reason: "OK".to_owned() }));
        assert_eq!(ok("HTTP/1.1 200\r\n"), Some(Status { code: 200, reason: String::new() }));
        assert_eq!(ok("HTTP/1.0 503 Service Unavailable\n").map(|s| s.code), Some(503));
        assert_eq!(ok("HTTP/1.1 200 OK"), None, "an incomplete line (cut at the size limit) is refused");
        assert_eq!(ok("HTTP/2 200 OK\r\n"), None);
        assert_eq!(ok("HTTP/1.1 20 OK\r\n"), None);
        assert_eq!(ok("HTTP/1.1 2000 OK\r\n"), None);
        assert_eq!(ok("HTTP/1.1 +20 OK\r\n"), None);
        assert_eq!(ok("\r\n"), None);
    }
}
