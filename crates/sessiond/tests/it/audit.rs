//! The audit log: JSON lines to a file (mode 0600) and, when asked, to standard output; never a
//! token or a password.

use crate::support::*;

#[tokio::test]
async fn audit_events_go_to_the_file_and_to_stdout_without_secrets() {
    let dir = tempfile::tempdir().unwrap();
    cheap_setup(dir.path(), &[("alice", "alice-pw", &["dev"])], "audit:\n  path: audit.jsonl\n  stdout: true\n");
    let server = Server::start(dir.path()).await;
    let failed = server.post("/api/v1/authenticate", &login_body("alice", "wrong-pw-42")).await;
    assert_eq!(failed.status(), 401);
    let token = server.login("alice", "alice-pw").await.token;
    let res = server.client.delete(server.url("/api/v1/sessions/current")).bearer_auth(&token).send().await.unwrap();
    assert_eq!(res.status(), 204);
    let (status, stdout) = server.stop().await;
    assert!(status.success());

    let file = std::fs::read_to_string(dir.path().join("audit.jsonl")).unwrap();
    assert_eq!(mode(&dir.path().join("audit.jsonl")), 0o600);
    for text in [&file, &stdout] {
        assert!(!text.contains(&token) && !text.contains("alice-pw") && !text.contains("wrong-pw-42"));
    }
    let events = |text: &str| -> Vec<String> {
        text.lines()
            .filter(|l| l.starts_with('{'))
            .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["event"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(events(&file), ["login_failed", "login_succeeded", "logout"]);
    assert_eq!(events(&stdout), events(&file), "the same lines on standard output");
}
