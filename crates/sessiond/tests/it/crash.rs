//! What the server acknowledged survives a crash.
//!
//! DESIGN.md promises that writes the server acknowledged are durable: with the embedded store a
//! login's session and a logout's deletion are committed before the response is sent. A server
//! that answered `200` to a login and then lost the session in a power cut would sign people out
//! at random; one that answered `204` to a logout and then brought the session back would leave a
//! stolen token working after its owner signed out, which is worse.
//!
//! The test runs a stream of logins and logouts from several concurrent clients, kills the
//! process with SIGKILL in the middle of it (no shutdown code runs, nothing buffered in the
//! process gets written on the way out), starts a new server on the same data directory, and
//! checks every answer the clients received: each acknowledged login still authenticates unless
//! its logout was acknowledged too, and each acknowledged logout still answers `401`. Requests in
//! flight at the kill got no answer, so they may have taken effect or not; those are not checked.
//!
//! A killed process leaves the operating system's page cache intact, so this proves that every
//! acknowledged write was committed to the store before the answer (a store that answered first
//! and committed later, or committed without durability, fails it), not that the disk itself
//! survived a power cut; that part is redb's `fsync` on commit.

use crate::support::*;
use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

const CLIENTS: usize = 6;
const LOAD_FOR: Duration = Duration::from_millis(2500);

/// What one client was told.
#[derive(Default)]
struct Acknowledged {
    /// Tokens of logins answered `200`.
    logged_in: Vec<String>,
    /// Tokens whose logout was answered `204`.
    logged_out: Vec<String>,
    /// Tokens whose logout was sent but not answered.
    unsure: Vec<String>,
}

/// Logs in and out in a loop until the server stops answering.
async fn client_loop(base: String, user: String, seen: Arc<Mutex<Acknowledged>>) {
    let client = client();
    let body = login_body(&user, &format!("{user}-pw"));
    let mut round = 0usize;
    loop {
        round += 1;
        let Ok(res) = client.post(format!("{base}/api/v1/authenticate")).json(&body).send().await else { return };
        if res.status() != 200 {
            return;
        }
        let Ok(value) = res.json::<serde_json::Value>().await else { return };
        let token = value["session_token"].as_str().unwrap().to_owned();
        seen.lock().unwrap().logged_in.push(token.clone());
        // Log out from two rounds in three, so that both kinds of write are in flight at the kill.
        if round % 3 == 0 {
            continue;
        }
        let sent = client.delete(format!("{base}/api/v1/sessions/current")).bearer_auth(&token).send().await;
        match sent {
            Ok(res) if res.status() == 204 => seen.lock().unwrap().logged_out.push(token),
            Ok(res) => panic!("logout answered {}", res.status()),
            Err(_) => {
                seen.lock().unwrap().unsure.push(token);
                return;
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn acknowledged_logins_and_logouts_survive_sigkill() {
    let dir = tempfile::tempdir().unwrap();
    let users: Vec<(String, String)> = (0..CLIENTS).map(|i| (format!("user{i}"), format!("user{i}-pw"))).collect();
    let user_refs: Vec<(&str, &str, &[&str])> = users.iter().map(|(u, p)| (u.as_str(), p.as_str(), &[][..])).collect();
    cheap_setup(dir.path(), &user_refs, "");
    let server = Server::start(dir.path()).await;
    assert!(server.banner.iter().any(|l| l.contains("embedded")), "the durable store: {:#?}", server.banner);

    let seen = Arc::new(Mutex::new(Acknowledged::default()));
    let clients: Vec<_> = users
        .iter()
        .map(|(user, _)| tokio::spawn(client_loop(server.base.clone(), user.clone(), seen.clone())))
        .collect();
    tokio::time::sleep(LOAD_FOR).await;
    for client in &clients {
        assert!(!client.is_finished(), "a client stopped before the kill");
    }
    let status = server.kill().await;
    assert_eq!(status.code(), None, "killed by a signal, not a clean exit: {status:?}");
    for client in clients {
        client.await.unwrap();
    }

    let seen = std::mem::take(&mut *seen.lock().unwrap());
    let logged_out: HashSet<&String> = seen.logged_out.iter().collect();
    let unsure: HashSet<&String> = seen.unsure.iter().collect();
    let live: Vec<&String> = seen.logged_in.iter().filter(|t| !logged_out.contains(t) && !unsure.contains(t)).collect();
    assert!(seen.logged_out.len() >= 10, "too few logouts to prove anything: {}", seen.logged_out.len());
    assert!(live.len() >= 5, "too few live sessions to prove anything: {}", live.len());

    let server = Server::start(dir.path()).await;
    let mut lost = Vec::new();
    for token in &live {
        let status = server.current_status(token).await;
        if status != 200 {
            lost.push(status);
        }
    }
    let mut resurrected = 0;
    for token in &seen.logged_out {
        if server.current_status(token).await != 401 {
            resurrected += 1;
        }
    }
    assert!(
        lost.is_empty(),
        "{} of {} acknowledged logins lost after the crash (first statuses: {:?})",
        lost.len(),
        live.len(),
        &lost[..lost.len().min(5)]
    );
    assert_eq!(resurrected, 0, "acknowledged logouts came back after the crash (of {})", seen.logged_out.len());

    let listed = sessiond(dir.path(), &["sessions", "list", "--json"]).await.json();
    let count = listed["sessions"].as_array().unwrap().len();
    assert!(count >= live.len(), "the store lists {count} sessions, fewer than the {} acknowledged", live.len());
    assert!(count <= live.len() + unsure.len() + CLIENTS, "logged-out sessions are listed: {count}");
}
