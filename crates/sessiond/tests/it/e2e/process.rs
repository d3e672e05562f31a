//! Real programs started by the end-to-end tests: finding them, free loopback ports, and a guard
//! that stops the whole process group when the test ends, however it ends.

use std::fs::File;
use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// How long a program may take to start listening.
const LISTEN_TIMEOUT: Duration = Duration::from_secs(20);
/// How long a program may take to exit after SIGTERM before it gets SIGKILL.
const STOP_TIMEOUT: Duration = Duration::from_secs(3);

/// The first of `candidates` that exists: an absolute path as given, a bare name looked up in
/// `PATH` and in the `sbin` folders that a non-root `PATH` often lacks (where nginx lives).
pub fn find_program(candidates: &[&str]) -> Option<PathBuf> {
    let mut dirs: Vec<PathBuf> =
        std::env::var_os("PATH").map(|p| std::env::split_paths(&p).collect()).unwrap_or_default();
    dirs.extend(["/usr/local/sbin", "/usr/sbin", "/sbin"].map(PathBuf::from));
    candidates.iter().find_map(|name| {
        let name = Path::new(name);
        if name.is_absolute() {
            return is_executable(name).then(|| name.to_owned());
        }
        dirs.iter().map(|d| d.join(name)).find(|p| is_executable(p))
    })
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// The program `what` (one of `candidates`), or a loud skip: `None` after printing
/// `SKIPPED: … not installed`. Under `CI=true` a missing program fails the test instead, so CI
/// never passes by skipping.
pub fn require(what: &str, candidates: &[&str]) -> Option<PathBuf> {
    if let Some(path) = find_program(candidates) {
        return Some(path);
    }
    let message = format!("{what} not installed (looked for {candidates:?})");
    assert!(std::env::var("CI").as_deref() != Ok("true"), "CI=true and {message}; .ci/run installs it");
    eprintln!("SKIPPED: {message}");
    None
}

/// A loopback port that was free a moment ago. The kernel hands out ephemeral ports in turn, so
/// another `bind(0)` does not get it back right away.
pub fn free_port() -> u16 {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap().local_addr().unwrap().port()
}

/// Whether this test runs as root (nginx then needs `user root;` to read the test's files).
pub fn running_as_root() -> bool {
    use std::os::unix::fs::MetadataExt as _;
    let probe = tempfile::tempfile().unwrap();
    probe.metadata().unwrap().uid() == 0
}

/// A started program. Dropping it sends SIGTERM to its process group (the program and whatever it
/// started, such as nginx's workers or chromedriver's browsers), then SIGKILL if it lingers.
pub struct Program {
    name: String,
    child: Child,
    log: PathBuf,
}

impl Program {
    /// Starts `cmd` in a process group of its own, standard output and error appended to `log`.
    pub fn spawn(name: &str, mut cmd: Command, log: &Path) -> Self {
        let out = File::create(log).unwrap();
        let err = out.try_clone().unwrap();
        cmd.stdin(Stdio::null()).stdout(out).stderr(err).process_group(0);
        let child = cmd.spawn().unwrap_or_else(|e| panic!("starting {name} ({cmd:?}): {e}"));
        Self { name: name.to_owned(), child, log: log.to_owned() }
    }

    /// What the program wrote so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits until something accepts connections on `127.0.0.1:port`; panics with the program's
    /// output when it exits first or takes too long.
    pub async fn wait_for_port(&mut self, port: u16) {
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
        let started = tokio::time::Instant::now();
        loop {
            if tokio::net::TcpStream::connect(addr).await.is_ok() {
                return;
            }
            if let Some(status) = self.child.try_wait().unwrap() {
                panic!("{} exited ({status}) before listening on {addr}; its output:\n{}", self.name, self.log());
            }
            assert!(
                started.elapsed() < LISTEN_TIMEOUT,
                "{} not listening on {addr} within {LISTEN_TIMEOUT:?}; its output:\n{}",
                self.name,
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Waits until the program writes a line `ready <port>` (the test providers do, once they
    /// listen on a port of their choosing) and answers the port; panics with the program's
    /// output when it exits first or takes longer than `timeout`.
    pub async fn wait_for_ready_line(&mut self, timeout: Duration) -> u16 {
        let started = tokio::time::Instant::now();
        loop {
            let log = self.log();
            if let Some(port) = log.lines().find_map(|l| l.strip_prefix("ready ")?.trim().parse().ok()) {
                return port;
            }
            if let Some(status) = self.child.try_wait().unwrap() {
                panic!("{} exited ({status}) before it was ready; its output:\n{log}", self.name);
            }
            assert!(started.elapsed() < timeout, "{} not ready within {timeout:?}; its output:\n{log}", self.name);
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    fn signal_group(&self, signal: &str) {
        // kill(2) from Rust needs `unsafe`, which this workspace forbids; the group id is the
        // program's pid, since it was started as the leader of its own group.
        let _ = Command::new("kill")
            .args([&format!("-{signal}"), "--", &format!("-{}", self.child.id())])
            .stderr(Stdio::null())
            .status();
    }
}

impl Drop for Program {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(Some(_))) {
            self.signal_group("KILL");
            return;
        }
        self.signal_group("TERM");
        let deadline = std::time::Instant::now() + STOP_TIMEOUT;
        while std::time::Instant::now() < deadline {
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                // Whatever the program started and left behind goes too.
                self.signal_group("KILL");
                return;
            }
            pause();
        }
        self.signal_group("KILL");
        let _ = self.child.wait();
    }
}

/// A short blocking pause while a stopped program exits: `Drop` cannot await.
#[allow(clippy::disallowed_methods)] // a real process is waited for, not a clock
fn pause() {
    std::thread::sleep(Duration::from_millis(20));
}
