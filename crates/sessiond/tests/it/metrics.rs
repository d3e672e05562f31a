//! `GET /metrics` on the main listener by default, or only on `server.metrics_listen`.

use crate::support::*;

fn metrics_url(server: &Server) -> String {
    server
        .banner
        .iter()
        .find_map(|l| l.trim().strip_prefix("metrics").map(|rest| rest.trim().to_owned()))
        .expect("the banner names the metrics address")
}

#[tokio::test]
async fn metrics_are_served_on_the_main_listener_by_default() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path()).await;
    assert_eq!(metrics_url(&server), server.url("/metrics"));
    let res = server.client.get(server.url("/metrics")).send().await.unwrap();
    assert_eq!(res.status(), 200);
    assert!(res.text().await.unwrap().contains("sessiond_build_info"));
}

#[tokio::test]
async fn a_metrics_listener_of_their_own_takes_metrics_off_the_main_one() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start_with(dir.path(), &[], &[("SESSIOND__SERVER__METRICS_LISTEN", "127.0.0.1:0")]).await;
    let url = metrics_url(&server);
    assert_ne!(url, server.url("/metrics"));
    let res = server.client.get(&url).send().await.unwrap();
    assert_eq!(res.status(), 200);
    assert!(res.text().await.unwrap().contains("sessiond_build_info"));
    let main = server.client.get(server.url("/metrics")).send().await.unwrap();
    assert_ne!(main.status(), 200, "not on the main listener");
}
