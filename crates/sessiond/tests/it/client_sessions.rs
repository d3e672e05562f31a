//! Client-side sessions (`location: client`) in the real binary: the cookie is the session, the
//! embedded store keeps only revocations, and those survive a restart, whichever way they were
//! made (the API, the command line through the running server, the command line on its own).

use crate::support::*;

const CLIENT_REALM: &str = "realms:\n  main:\n    location: client\n";

fn users() -> Vec<(&'static str, &'static str, &'static [&'static str])> {
    vec![("alice", "alice-pw", &[]), ("bob", "bob-pw", &[]), ("carol", "carol-pw", &[])]
}

#[tokio::test]
async fn revoked_client_side_sessions_stay_refused_after_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    cheap_setup(dir.path(), &users(), CLIENT_REALM);
    let checked = sessiond(dir.path(), &["config", "check"]).await;
    assert!(checked.ok().contains("location: client"), "{}", checked.stdout);

    let server = Server::start(dir.path()).await;
    let name = server.cookie_name.clone();
    let logged_out = server.login("alice", "alice-pw").await;
    let kept = server.login("alice", "alice-pw").await;
    let bob = server.login("bob", "bob-pw").await;
    let carol = server.login("carol", "carol-pw").await;
    let cookie = set_cookies(&kept.headers, &name).pop().unwrap();
    assert!(cookie.starts_with(&format!("{name}={};", kept.token)), "the cookie is the credential: {cookie}");
    assert!(kept.token.len() > 100, "the whole session, sealed: {}", kept.token);
    for login in [&logged_out, &kept, &bob, &carol] {
        assert_eq!(server.current_status(&login.token).await, 200);
    }
    let listed = sessiond(dir.path(), &["sessions", "list", "--json"]).await.json();
    assert_eq!(listed["sessions"], serde_json::json!([]), "nothing is stored as a session");

    let res = server
        .client
        .delete(server.url("/api/v1/sessions/current"))
        .bearer_auth(&logged_out.token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 204);
    // Through the running server's control socket.
    let revoked = sessiond(dir.path(), &["sessions", "revoke", "--user", "bob"]).await;
    let text = revoked.ok();
    assert!(text.contains("revoked 0 sessions of bob"), "{text}");
    assert!(text.contains("refused from now on in client-side realms: main"), "{text}");
    assert_eq!(server.current_status(&logged_out.token).await, 401);
    assert_eq!(server.current_status(&bob.token).await, 401);
    let (status, _) = server.stop().await;
    assert_eq!(status.code(), Some(0));

    // With no server running, the command line writes to the store itself.
    let json = sessiond(dir.path(), &["sessions", "revoke", "--user", "carol", "--json"]).await.json();
    assert_eq!(json, serde_json::json!({"revoked": 0, "client_realms": ["main"]}));

    let server = Server::start(dir.path()).await;
    assert_eq!(server.current_status(&logged_out.token).await, 401, "logged out before the restart");
    assert_eq!(server.current_status(&bob.token).await, 401, "revoked through the running server");
    assert_eq!(server.current_status(&carol.token).await, 401, "revoked while no server ran");
    assert_eq!(server.current_status(&kept.token).await, 200, "the generated secret is kept: cookies still open");
    let res = server
        .client
        .get(server.url("/api/v1/sessions/current"))
        .header("cookie", format!("{name}={}", logged_out.token))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
    assert!(set_cookies(res.headers(), &name).iter().any(|c| attr(c, "Max-Age") == Some("0")), "and deleted");
}
