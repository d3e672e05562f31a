//! Live reload: access rules follow the configuration file without a restart and without
//! dropping sessions; a broken file is refused and the rules in force stay.

use crate::support::*;
use std::time::Duration;

const DENY_ALL: &str = "access_control:\n  default_policy: deny\n";
const ONE_FACTOR: &str =
    "access_control:\n  default_policy: deny\n  rules:\n    - domain: app.example.test\n      policy: one_factor\n";

async fn authz(server: &Server, token: &str) -> u16 {
    server
        .client
        .get(server.url("/api/authz/auth-request"))
        .header("x-original-url", "https://app.example.test/")
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

/// Polls until forward auth answers `want`, for up to `within`.
async fn eventually(server: &Server, token: &str, want: u16, within: Duration) -> bool {
    let deadline = tokio::time::Instant::now() + within;
    while tokio::time::Instant::now() < deadline {
        if authz(server, token).await == want {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    false
}

#[tokio::test]
async fn access_rules_follow_the_configuration_file_and_a_broken_file_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    cheap_setup(dir.path(), &[("alice", "alice-pw", &["dev"])], DENY_ALL);
    let server = Server::start(dir.path()).await;
    let token = server.login("alice", "alice-pw").await.token;
    assert_eq!(authz(&server, &token).await, 403);

    let config = dir.path().join("sessiond.yml");
    let text = std::fs::read_to_string(&config).unwrap();
    std::fs::write(&config, text.replace(DENY_ALL, ONE_FACTOR)).unwrap();
    assert!(eventually(&server, &token, 200, Duration::from_secs(8)).await, "new rules in force");

    std::fs::write(&config, format!("{}\naccess_control:\n  default_policy: sometimes\n", text.replace(DENY_ALL, "")))
        .unwrap();
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(authz(&server, &token).await, 200, "the broken file left the rules in force");
    assert!(server.stderr().contains("configuration not reloaded"), "{}", server.stderr());
    assert_eq!(server.current_status(&token).await, 200, "no session was dropped");
}
