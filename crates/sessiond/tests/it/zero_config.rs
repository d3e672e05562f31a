//! `sessiond serve` in an empty directory: what it creates, what it prints once, what it keeps
//! across a restart, and how it refuses to run twice on the same data.

use crate::support::*;
use std::os::unix::fs::FileTypeExt as _;

#[tokio::test]
async fn first_run_creates_private_data_and_a_bootstrap_admin_that_can_log_in() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path()).await;
    let data = dir.path().join("sessiond-data");

    assert_eq!(mode(&data), 0o700, "data dir");
    assert_eq!(mode(&data.join("secret")), 0o600, "secret");
    assert_eq!(mode(&data.join("sessiond.redb")), 0o600, "embedded store");
    assert_eq!(mode(&data.join("users.yml")), 0o600, "users file");
    let socket = data.join("control.sock");
    assert!(std::fs::symlink_metadata(&socket).unwrap().file_type().is_socket());
    assert_eq!(mode(&socket), 0o600, "control socket");
    assert!(data.join("users.yml").is_file());
    assert!(data.join("sessiond.redb").is_file());
    let secret = std::fs::read_to_string(data.join("secret")).unwrap();
    assert!(secret.trim_end().len() >= 32, "a generated secret is at least 32 bytes");

    let password = server.password.clone().unwrap_or_else(|| panic!("no password in the banner: {:#?}", server.banner));
    assert!(password.len() >= 16, "bootstrap password {password:?} is long enough to resist guessing");
    let users = std::fs::read_to_string(data.join("users.yml")).unwrap();
    assert!(!users.contains(&password), "the users file holds a hash, not the password");
    assert!(!server.stderr().contains(&password), "the password is not logged");

    let wrong = server.post("/api/v1/authenticate", &login_body("admin", "not-the-password")).await;
    assert_eq!(error_code(wrong).await, (401, "invalid_credentials".to_owned()));

    let login = server.login("admin", &password).await;
    assert_eq!(login.body["session"]["user"], "admin");
    assert_eq!(login.body["session"]["groups"], serde_json::json!(["admins"]));
    let me = server.current(&login.token).await;
    assert_eq!(me.status(), 200);

    let listed = sessiond(dir.path(), &["sessions", "list", "--json"]).await.json();
    let sessions = listed["sessions"].as_array().unwrap();
    assert_eq!(sessions.len(), 1, "{listed}");
    assert_eq!(sessions[0]["id"], login.id.as_str());
    assert_eq!(sessions[0]["user"], "admin");
    assert_eq!(sessions[0]["realm"], "main");
    assert!(!listed.to_string().contains(&login.token), "a session list never shows a token");
}

/// Huge pages collapsed in the background made the resident set of a steady server jump by a
/// third after some minutes; the server opts out of them for itself.
#[cfg(target_os = "linux")]
#[tokio::test]
async fn the_server_opts_out_of_transparent_huge_pages() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path()).await;
    let status = std::fs::read_to_string(format!("/proc/{}/status", server.pid())).unwrap();
    let Some(thp) = status.lines().find_map(|l| l.strip_prefix("THP_enabled:")) else {
        eprintln!("SKIPPED: this kernel's /proc/PID/status has no THP_enabled line (before Linux 5.0)");
        return;
    };
    assert_eq!(thp.trim(), "0", "THP_enabled of sessiond serve");
}

#[tokio::test]
async fn a_second_server_on_the_same_data_is_refused_and_the_first_keeps_serving() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path()).await;
    let password = server.password.clone().unwrap();
    let login = server.login("admin", &password).await;

    let second = sessiond_with(dir.path(), &["serve"], None, &[("SESSIOND__SERVER__LISTEN", "127.0.0.1:0")]).await;
    second.fails(1, &["already running"]);
    assert!(!second.stdout.contains("listening on"), "the second server never listened: {}", second.stdout);
    assert!(!second.stdout.contains("password"), "{}", second.stdout);

    assert_eq!(server.current_status(&login.token).await, 200, "the first server still answers");
    let socket = dir.path().join("sessiond-data/control.sock");
    assert!(socket.exists(), "the first server's control socket was left alone");
    let listed = sessiond(dir.path(), &["sessions", "list", "--json"]).await.json();
    assert_eq!(listed["sessions"][0]["id"], login.id.as_str(), "the control socket still reaches the first server");
}

#[tokio::test]
async fn a_clean_restart_keeps_the_secret_the_users_and_the_sessions() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("sessiond-data");
    let server = Server::start(dir.path()).await;
    let password = server.password.clone().unwrap();
    let login = server.login("admin", &password).await;
    let secret = std::fs::read(data.join("secret")).unwrap();
    let users = std::fs::read(data.join("users.yml")).unwrap();

    let (status, first_stdout) = server.stop().await;
    assert_eq!(status.code(), Some(0), "SIGTERM is a clean stop");
    assert_eq!(first_stdout.matches(&password).count(), 1, "the password is printed exactly once");
    assert!(!data.join("control.sock").exists(), "a clean stop removes the control socket");

    let server = Server::start(dir.path()).await;
    assert_eq!(server.password, None, "no new password on restart: {:#?}", server.banner);
    assert_eq!(std::fs::read(data.join("secret")).unwrap(), secret, "the secret is kept");
    assert_eq!(std::fs::read(data.join("users.yml")).unwrap(), users, "the users file is kept");
    assert_eq!(server.current_status(&login.token).await, 200, "the session survived the restart");
    let again = server.login("admin", &password).await;
    assert_ne!(again.token, login.token);

    let (status, second_stdout) = server.stop().await;
    assert_eq!(status.code(), Some(0));
    assert!(!second_stdout.contains("password"), "restart printed a password: {second_stdout}");
}

/// A first start that fails after the users file was created (here: the port is taken) used to
/// leave an administrator whose password had never been shown, and the next start, finding the
/// file, showed none either: nobody could sign in.
#[tokio::test]
async fn a_failed_first_start_does_not_lose_the_admin_password() {
    let dir = tempfile::tempdir().unwrap();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = taken.local_addr().unwrap().to_string();
    let failed = sessiond_with(dir.path(), &["serve"], None, &[("SESSIOND__SERVER__LISTEN", &address)]).await;
    failed.fails(1, &[&address]);
    assert!(!failed.stdout.contains("listening on"), "{}", failed.stdout);
    drop(taken);

    let server = Server::start(dir.path()).await;
    let password = server
        .password
        .clone()
        .unwrap_or_else(|| panic!("the administrator's password was never shown: {:#?}", server.banner));
    server.login("admin", &password).await;
}

/// With `server.listen` on port 0 the system picks the port; the default portal URL, made from
/// the configured address, used to keep port 0, a URL no browser can reach.
#[tokio::test]
async fn the_default_portal_url_follows_the_port_actually_bound() {
    let dir = tempfile::tempdir().unwrap();
    cheap_setup(dir.path(), &[("alice", "alice-pw", &[])], "");
    let server = Server::start(dir.path()).await;
    let portal = server
        .banner
        .iter()
        .find_map(|l| l.trim().strip_prefix("portal").map(|p| p.trim().to_owned()))
        .unwrap_or_else(|| panic!("no portal line: {:#?}", server.banner));
    assert_eq!(portal, format!("{}/", server.base));
}

#[tokio::test]
async fn a_configured_secret_is_used_and_none_is_generated() {
    let dir = tempfile::tempdir().unwrap();
    cheap_setup(dir.path(), &[("alice", "alice-pw", &[])], "secret: \"a configured secret of more than 32 bytes\"\n");
    let server = Server::start(dir.path()).await;
    server.login("alice", "alice-pw").await;
    assert!(!dir.path().join("sessiond-data/secret").exists(), "no secret file when the config sets one");
    assert!(!server.stderr().contains("a configured secret"), "the secret is not logged");
}
