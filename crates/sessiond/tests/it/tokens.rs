//! `sessiond tokens create|list|revoke` against a real data directory, through a running
//! server's control socket and directly on the store of a stopped one, with the tokens used as
//! bearer credentials on forward auth and on the admin API.

use crate::support::*;
use serde_json::{Value, json};
use std::path::Path;

const USERS: &[(&str, &str, &[&str])] = &[("alice", "alice-pw", &["dev"]), ("root", "root-pw", &["admins"])];
const RULES: &str =
    "access_control:\n  default_policy: deny\n  rules:\n    - domain: app.example.test\n      policy: one_factor\n";

/// Forward auth (nginx) for `https://app.example.test/` with `token`: status and `Remote-User`,
/// `Remote-Groups`.
async fn authz(server: &Server, token: &str) -> (u16, Option<String>, Option<String>) {
    let res = server
        .client
        .get(server.url("/api/authz/auth-request"))
        .header("x-original-url", "https://app.example.test/")
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    let header = |name: &str| res.headers().get(name).map(|v| v.to_str().unwrap().to_owned());
    assert!(header("set-cookie").is_none(), "an API token never gets a cookie");
    (res.status().as_u16(), header("remote-user"), header("remote-groups"))
}

async fn list(dir: &Path) -> Vec<Value> {
    let value = sessiond(dir, &["tokens", "list", "--json"]).await.json();
    value["tokens"].as_array().unwrap_or_else(|| panic!("no tokens array: {value}")).clone()
}

/// `sessiond tokens create --json ARGS`: the answer.
async fn create(dir: &Path, args: &[&str]) -> Value {
    let mut all = vec!["tokens", "create", "--json"];
    all.extend_from_slice(args);
    sessiond(dir, &all).await.json()
}

#[tokio::test]
async fn tokens_create_list_and_revoke_through_the_running_server() {
    let dir = tempfile::tempdir().unwrap();
    cheap_setup(dir.path(), USERS, RULES);
    let server = Server::start(dir.path()).await;

    let made = sessiond(dir.path(), &["tokens", "create", "--user", "alice", "--name", "ci", "--expires", "90d"]).await;
    let text = made.ok();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 3, "{text}");
    assert!(
        lines[0].starts_with("created API token ") && lines[0].contains("\"ci\" for alice in realm main"),
        "{text}"
    );
    assert!(lines[0].contains("it expires "), "{text}");
    let token = lines[1];
    assert!(token.starts_with("sdat_") && token.len() == 48, "the token alone on the second line: {text}");
    assert_eq!(authz(&server, token).await, (200, Some("alice".into()), Some("dev".into())));

    let listed = list(dir.path()).await;
    assert_eq!(listed.len(), 1);
    let mut keys: Vec<&str> = listed[0].as_object().unwrap().keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(keys, ["created_at", "expires_at", "id", "last_used_at", "name", "realm", "user"]);
    assert!(listed[0]["last_used_at"].is_string(), "the use above is recorded: {}", listed[0]);
    let id = listed[0]["id"].as_str().unwrap().to_owned();
    assert!(lines[0].contains(&id), "{text}");
    let table = sessiond(dir.path(), &["tokens", "list", "--user", "alice"]).await;
    let table = table.ok();
    assert!(table.starts_with("ID ") && table.lines().count() == 2 && table.contains(&id), "{table}");
    for shown in [table, &Value::Array(listed).to_string()] {
        assert!(!shown.contains(&token[5..]), "lists never show the token: {shown}");
    }
    assert_eq!(sessiond(dir.path(), &["tokens", "list", "--user", "root"]).await.ok(), "no tokens\n");

    // An administrator's token may create sessions for users signed in elsewhere.
    let admin = create(dir.path(), &["--user", "root", "--name", "sso bridge"]).await;
    assert_eq!((&admin["user"], &admin["realm"], &admin["expires_at"]), (&json!("root"), &json!("main"), &Value::Null));
    let admin_token = admin["token"].as_str().unwrap();
    let res = server
        .client
        .post(server.url("/api/v1/sessions"))
        .bearer_auth(admin_token)
        .json(&json!({"user": "dave"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    let dave = res.json::<Value>().await.unwrap()["session_token"].as_str().unwrap().to_owned();
    assert_eq!(server.current_status(&dave).await, 200);
    let res = server.client.post(server.url("/api/v1/sessions")).bearer_auth(token).json(&json!({"user": "x"})).send();
    assert_eq!(error_code(res.await.unwrap()).await, (403, "forbidden".to_owned()), "alice is no admin");

    // A user known elsewhere carries the groups given here.
    let carol = sessiond(
        dir.path(),
        &["tokens", "create", "--json", "--user", "carol", "--name", "ext", "--groups", "ops,dev"],
    )
    .await;
    assert!(carol.stderr.contains("carol is not in the users file"), "{}", carol.stderr);
    let carol = carol.json();
    assert_eq!(
        authz(&server, carol["token"].as_str().unwrap()).await,
        (200, Some("carol".into()), Some("ops,dev".into()))
    );

    let revoked = sessiond(dir.path(), &["tokens", "revoke", "--", &id]).await;
    assert_eq!(revoked.ok(), format!("revoked API token {id}\n"));
    assert_eq!(authz(&server, token).await.0, 401, "a revoked token stops at once");
    sessiond(dir.path(), &["tokens", "revoke", "--", &id]).await.fails(1, &["no API token with id", &id]);
    let by_json = sessiond(dir.path(), &["tokens", "revoke", "--json", "--", carol["id"].as_str().unwrap()]).await;
    assert_eq!(by_json.json(), json!({"revoked": 1}));
    assert_eq!(list(dir.path()).await.len(), 1, "root's token is left");
}

#[tokio::test]
async fn tokens_create_refuses_bad_input_with_the_right_exit_status() {
    let dir = tempfile::tempdir().unwrap();
    cheap_setup(dir.path(), USERS, RULES);
    let _server = Server::start(dir.path()).await;
    for usage in [
        &["tokens", "create", "--name", "ci"][..],
        &["tokens", "create", "--user", "alice"],
        &["tokens", "create", "--user", "alice", "--name", "ci", "--expires", "5x"],
        &["tokens", "create", "--user", "alice", "--name", "ci", "--expires", "0"],
        &["tokens", "create", "--user", "alice", "--name", "no\"quotes"],
        &["tokens", "revoke"],
    ] {
        let run = sessiond(dir.path(), usage).await;
        assert_eq!(run.code, 2, "{usage:?}: {}", run.stderr);
    }
    let failures: [(&[&str], &str); 4] = [
        (&["tokens", "create", "--user", "alice", "--name", "ci", "--groups", "admins"], "leave out --groups"),
        (&["tokens", "create", "--user", "alice", "--name", "ci", "--realm", "nope"], "no realm \"nope\""),
        (&["tokens", "create", "--user", "", "--name", "ci"], "invalid user"),
        (&["tokens", "revoke", "not-an-id"], "invalid token id"),
    ];
    for (args, needle) in failures {
        sessiond(dir.path(), args).await.fails(1, &[needle]);
    }
    assert!(list(dir.path()).await.is_empty(), "nothing was made");
}

#[tokio::test]
async fn tokens_work_on_a_stopped_server_and_survive_restarts() {
    let dir = tempfile::tempdir().unwrap();
    cheap_setup(dir.path(), USERS, RULES);
    sessiond(dir.path(), &["tokens", "create", "--user", "alice", "--name", "early"])
        .await
        .fails(1, &["sessiond serve"]);
    let server = Server::start(dir.path()).await;
    let (status, _) = server.stop().await;
    assert_eq!(status.code(), Some(0));

    let made = create(dir.path(), &["--user", "alice", "--name", "offline", "--expires", "1d"]).await;
    let token = made["token"].as_str().unwrap().to_owned();
    let id = made["id"].as_str().unwrap().to_owned();
    let listed = list(dir.path()).await;
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0]["id"], id.as_str());
    assert_eq!(listed[0]["expires_at"], made["expires_at"]);

    let server = Server::start(dir.path()).await;
    assert_eq!(authz(&server, &token).await.0, 200, "made while stopped, works after the start");
    let (status, _) = server.stop().await;
    assert_eq!(status.code(), Some(0));

    assert_eq!(sessiond(dir.path(), &["tokens", "revoke", "--", &id]).await.ok(), format!("revoked API token {id}\n"));
    let server = Server::start(dir.path()).await;
    assert_eq!(authz(&server, &token).await.0, 401, "revoked while stopped stays revoked");
    assert!(list(dir.path()).await.is_empty(), "now through the control socket");
}
