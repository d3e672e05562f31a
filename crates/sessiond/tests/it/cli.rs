//! The administrative commands against a real data directory: `hash-password`, `users add`, and
//! `sessions list|revoke` both through a running server's control socket and directly on the
//! store of a stopped one.

use crate::support::*;
use argon2::password_hash::{PasswordHash, PasswordVerifier as _};
use serde_json::Value;
use std::path::Path;
use std::time::Duration;

fn verifies(phc: &str, password: &str) -> bool {
    let parsed = PasswordHash::new(phc).unwrap_or_else(|e| panic!("not a PHC string ({e}): {phc}"));
    argon2::Argon2::default().verify_password(password.as_bytes(), &parsed).is_ok()
}

#[tokio::test]
async fn hash_password_prints_an_argon2id_phc_string_that_verifies() {
    let dir = tempfile::tempdir().unwrap();
    let run = sessiond_with(dir.path(), &["hash-password"], Some("correct horse battery\n"), &[]).await;
    let out = run.ok();
    assert_eq!(out.lines().count(), 1, "one line: {out:?}");
    let phc = out.trim_end();
    assert!(phc.starts_with("$argon2id$v=19$"), "{phc}");
    assert!(verifies(phc, "correct horse battery"));
    assert!(!verifies(phc, "correct horse battery\n"), "the line ending is not part of the password");
    assert!(!verifies(phc, "wrong"));
    assert!(!run.stderr.contains("correct horse"), "the password is not echoed");

    let json = sessiond_with(dir.path(), &["hash-password", "--json"], Some("s3cret\n"), &[]).await.json();
    let phc = json["hash"].as_str().unwrap();
    assert!(verifies(phc, "s3cret"));

    for empty in ["", "\n"] {
        let run = sessiond_with(dir.path(), &["hash-password"], Some(empty), &[]).await;
        run.fails(1, &["password"]);
        assert!(run.stdout.is_empty(), "no hash for an empty password: {}", run.stdout);
    }
}

#[tokio::test]
async fn users_add_reaches_the_running_server_within_seconds() {
    let dir = tempfile::tempdir().unwrap();
    // Throttling off: polling for the new user counts failed logins until the file is re-read.
    cheap_setup(dir.path(), &[("alice", "alice-pw", &["dev"])], "regulation:\n  max_retries: 0\n");
    let server = Server::start(dir.path()).await;
    let refused = server.post("/api/v1/authenticate", &login_body("carol", "carol-pw")).await;
    assert_eq!(error_code(refused).await, (401, "invalid_credentials".to_owned()));

    let args =
        ["users", "add", "carol", "--email", "carol@example.test", "--display-name", "Carol C", "--groups", "dev,ops"];
    let added = sessiond_with(dir.path(), &args, Some("carol-pw\n"), &[]).await;
    assert!(added.ok().contains("carol"), "{}", added.stdout);

    let started = tokio::time::Instant::now();
    let body = loop {
        let res = server.post("/api/v1/authenticate", &login_body("carol", "carol-pw")).await;
        if res.status() == 200 {
            break res.json::<Value>().await.unwrap();
        }
        assert!(started.elapsed() < Duration::from_secs(8), "carol still cannot log in: {}", res.text().await.unwrap());
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    assert_eq!(body["session"]["user"], "carol");
    assert_eq!(body["session"]["groups"], serde_json::json!(["dev", "ops"]));
    assert_eq!(body["session"]["email"], "carol@example.test");
    assert_eq!(body["session"]["display_name"], "Carol C");
    let alice = server.login("alice", "alice-pw").await;
    assert_eq!(alice.body["session"]["user"], "alice", "the other users are kept");

    let before = std::fs::read(dir.path().join("users.yml")).unwrap();
    let again = sessiond_with(dir.path(), &["users", "add", "carol"], Some("other-pw\n"), &[]).await;
    again.fails(1, &["carol", "already exists"]);
    assert_eq!(std::fs::read(dir.path().join("users.yml")).unwrap(), before, "a refused add changes nothing");
}

#[tokio::test]
async fn users_add_refuses_an_existing_user_and_a_bad_name() {
    let dir = tempfile::tempdir().unwrap();
    let added = sessiond_with(dir.path(), &["users", "add", "dave", "--json"], Some("dave-pw\n"), &[]).await.json();
    assert_eq!(added["user"], "dave");
    let file = dir.path().join("sessiond-data/users.yml");
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(text.contains("dave") && !text.contains("dave-pw"), "a hash is stored, not the password: {text}");
    let before = std::fs::read(&file).unwrap();

    let again = sessiond_with(dir.path(), &["users", "add", "dave"], Some("x\n"), &[]).await;
    again.fails(1, &["already exists"]);
    let spaced = sessiond_with(dir.path(), &["users", "add", "da ve"], Some("x\n"), &[]).await;
    spaced.fails(1, &["da ve"]);
    let no_password = sessiond_with(dir.path(), &["users", "add", "erin"], Some(""), &[]).await;
    no_password.fails(1, &["password"]);
    assert_eq!(std::fs::read(&file).unwrap(), before, "refused adds leave the file alone");
}

const USERS: &[(&str, &str, &[&str])] = &[("alice", "alice-pw", &["dev"]), ("bob", "bob-pw", &["dev"])];

async fn list(dir: &Path, extra: &[&str]) -> Vec<Value> {
    let mut args = vec!["sessions", "list", "--json"];
    args.extend_from_slice(extra);
    let value = sessiond(dir, &args).await.json();
    value["sessions"].as_array().unwrap_or_else(|| panic!("no sessions array: {value}")).clone()
}

/// `sessiond sessions revoke [--json] -- ID`. Ids are base64url, so one in 64 starts with `-`;
/// `--` keeps those from reading as flags here (see
/// [`a_session_id_starting_with_a_dash_can_be_revoked`] for the plain form).
async fn revoke(dir: &Path, id: &str, json: bool) -> Run {
    let mut args = vec!["sessions", "revoke"];
    if json {
        args.push("--json");
    }
    args.extend(["--", id]);
    sessiond(dir, &args).await
}

fn ids(sessions: &[Value]) -> Vec<&str> {
    let mut ids: Vec<&str> = sessions.iter().map(|s| s["id"].as_str().unwrap()).collect();
    ids.sort_unstable();
    ids
}

fn sorted(mut ids: Vec<&str>) -> Vec<&str> {
    ids.sort_unstable();
    ids
}

#[tokio::test]
async fn sessions_list_and_revoke_through_the_running_server() {
    let dir = tempfile::tempdir().unwrap();
    cheap_setup(dir.path(), USERS, "");
    let server = Server::start(dir.path()).await;
    let a1 = server.login("alice", "alice-pw").await;
    let a2 = server.login("alice", "alice-pw").await;
    let b1 = server.login("bob", "bob-pw").await;

    assert_eq!(ids(&list(dir.path(), &[]).await), sorted(vec![&a1.id, &a2.id, &b1.id]));
    assert_eq!(ids(&list(dir.path(), &["--user", "alice"]).await), sorted(vec![&a1.id, &a2.id]));
    assert_eq!(list(dir.path(), &["--realm", "main"]).await.len(), 3);
    assert!(list(dir.path(), &["--realm", "elsewhere"]).await.is_empty());
    assert!(list(dir.path(), &["--user", "nobody"]).await.is_empty());

    let table = sessiond(dir.path(), &["sessions", "list"]).await;
    let table = table.ok();
    assert!(table.lines().next().unwrap().starts_with("ID"), "a header line: {table}");
    assert_eq!(table.lines().count(), 4, "{table}");
    for login in [&a1, &a2, &b1] {
        assert!(table.contains(&login.id), "{table}");
        assert!(!table.contains(&login.token), "tokens never appear: {table}");
    }

    let revoked = revoke(dir.path(), &a1.id, false).await;
    assert!(revoked.ok().contains(&a1.id), "{}", revoked.stdout);
    assert_eq!(server.current_status(&a1.token).await, 401, "a revoked session stops at once");
    assert_eq!(server.current_status(&a2.token).await, 200);

    let again = revoke(dir.path(), &a1.id, false).await;
    again.fails(1, &[&a1.id]);

    let by_user = sessiond(dir.path(), &["sessions", "revoke", "--user", "alice", "--json"]).await.json();
    assert_eq!(by_user, serde_json::json!({"revoked": 1}));
    assert_eq!(server.current_status(&a2.token).await, 401);
    assert_eq!(server.current_status(&b1.token).await, 200, "other users keep their sessions");
    let none_left = sessiond(dir.path(), &["sessions", "revoke", "--user", "alice"]).await;
    assert!(none_left.ok().contains('0'), "{}", none_left.stdout);

    for bad in ["short", "!!!!!!!!!!!!!!!!!!!!!!", &"A".repeat(200)] {
        let run = sessiond(dir.path(), &["sessions", "revoke", bad]).await;
        run.fails(1, &["invalid session id"]);
    }
    assert_eq!(ids(&list(dir.path(), &[]).await), vec![b1.id.as_str()]);
}

#[tokio::test]
async fn sessions_admin_works_on_a_stopped_server_and_revocations_survive_restart() {
    let dir = tempfile::tempdir().unwrap();
    cheap_setup(dir.path(), USERS, "");
    let server = Server::start(dir.path()).await;
    let a1 = server.login("alice", "alice-pw").await;
    let a2 = server.login("alice", "alice-pw").await;
    let b1 = server.login("bob", "bob-pw").await;
    let (status, _) = server.stop().await;
    assert_eq!(status.code(), Some(0));
    assert!(!dir.path().join("sessiond-data/control.sock").exists());

    assert_eq!(ids(&list(dir.path(), &[]).await), sorted(vec![&a1.id, &a2.id, &b1.id]));
    let revoked = revoke(dir.path(), &a1.id, true).await.json();
    assert_eq!(revoked, serde_json::json!({"revoked": 1}));
    let by_user = sessiond(dir.path(), &["sessions", "revoke", "--user", "bob"]).await;
    assert!(by_user.ok().contains("revoked 1 session of bob"), "{}", by_user.stdout);
    sessiond(dir.path(), &["sessions", "revoke", "nope"]).await.fails(1, &["invalid session id"]);
    revoke(dir.path(), &a1.id, false).await.fails(1, &[&a1.id]);
    assert_eq!(ids(&list(dir.path(), &[]).await), vec![a2.id.as_str()]);

    let server = Server::start(dir.path()).await;
    assert_eq!(server.current_status(&a1.token).await, 401, "revoked while stopped stays revoked");
    assert_eq!(server.current_status(&b1.token).await, 401, "revoked while stopped stays revoked");
    assert_eq!(server.current_status(&a2.token).await, 200);
    assert_eq!(ids(&list(dir.path(), &[]).await), vec![a2.id.as_str()], "now through the control socket");
}

#[tokio::test]
async fn sessions_commands_on_a_directory_that_never_served() {
    let dir = tempfile::tempdir().unwrap();
    assert!(list(dir.path(), &[]).await.is_empty());
    let id = "AAAAAAAAAAAAAAAAAAAAAA";
    sessiond(dir.path(), &["sessions", "revoke", id]).await.fails(1, &[id]);
    assert!(!dir.path().join("sessiond-data").exists(), "reading creates no store");
}

#[tokio::test]
async fn disabling_a_user_in_the_users_file_ends_their_sessions_within_seconds() {
    let dir = tempfile::tempdir().unwrap();
    cheap_setup(dir.path(), USERS, "");
    let server = Server::start(dir.path()).await;
    let alice = server.login("alice", "alice-pw").await;
    let bob = server.login("bob", "bob-pw").await;

    let file = dir.path().join("users.yml");
    let text = std::fs::read_to_string(&file).unwrap();
    let disabled = text.replacen("  alice:\n", "  alice:\n    disabled: true\n", 1);
    assert_ne!(disabled, text);
    let loaded_at = std::fs::metadata(&file).unwrap().modified().unwrap();
    std::fs::write(&file, disabled).unwrap();
    // The server notices changes by modification time; on file systems with one-second stamps the
    // edit could carry the same one as the original.
    std::fs::File::options().write(true).open(&file).unwrap().set_modified(loaded_at + Duration::from_secs(2)).unwrap();

    let started = tokio::time::Instant::now();
    while server.current_status(&alice.token).await == 200 {
        assert!(started.elapsed() < Duration::from_secs(8), "alice's session outlived her account");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert_eq!(server.current_status(&alice.token).await, 401);
    let refused = server.post("/api/v1/authenticate", &login_body("alice", "alice-pw")).await;
    assert_eq!(refused.status(), 401, "a disabled user cannot log in");
    assert_eq!(server.current_status(&bob.token).await, 200, "other users are not affected");
    assert_eq!(ids(&list(dir.path(), &[]).await), vec![bob.id.as_str()]);
}

#[tokio::test]
async fn with_the_memory_store_sessions_live_in_the_server_only() {
    let dir = tempfile::tempdir().unwrap();
    cheap_setup(dir.path(), USERS, "storage:\n  kind: memory\n");
    let server = Server::start(dir.path()).await;
    assert!(server.banner.iter().any(|l| l.contains("memory")), "{:#?}", server.banner);
    let alice = server.login("alice", "alice-pw").await;
    assert_eq!(ids(&list(dir.path(), &[]).await), vec![alice.id.as_str()], "listed through the control socket");
    let revoked = revoke(dir.path(), &alice.id, false).await;
    revoked.ok();
    assert_eq!(server.current_status(&alice.token).await, 401);
    let bob = server.login("bob", "bob-pw").await;
    let (status, _) = server.stop().await;
    assert_eq!(status.code(), Some(0));

    sessiond(dir.path(), &["sessions", "list"]).await.fails(1, &["memory"]);
    let server = Server::start(dir.path()).await;
    assert_eq!(server.current_status(&bob.token).await, 401, "memory sessions end with the process");
    assert!(!dir.path().join("sessiond-data/sessiond.redb").exists(), "no database file for the memory store");
}

/// Session ids are base64url, so one in 64 starts with `-`. An administrator copying such an id
/// from `sessions list` into `sessions revoke ID` gets a usage error instead (clap takes it for a
/// flag), unless they know to write `--` first.
#[tokio::test]
async fn a_session_id_starting_with_a_dash_can_be_revoked() {
    let dir = tempfile::tempdir().unwrap();
    cheap_setup(dir.path(), USERS, "");
    let server = Server::start(dir.path()).await;
    let mut dashed = None;
    for _ in 0..2000 {
        let login = server.login("alice", "alice-pw").await;
        if login.id.starts_with('-') {
            dashed = Some(login);
            break;
        }
    }
    let dashed = dashed.expect("one id in 64 starts with a dash");
    let run = sessiond(dir.path(), &["sessions", "revoke", &dashed.id]).await;
    assert!(run.ok().contains(&dashed.id), "{}", run.stdout);
    assert_eq!(server.current_status(&dashed.token).await, 401);
}
