//! sessiond behind real Caddy (`forward_auth`), configured with `docs/examples/Caddyfile`.

use super::process::{Program, free_port, require};
use super::{Site, example, substitute};

/// Global options the tests put before the example: no admin endpoint (tests run side by side,
/// and the default one is a fixed port) and no certificates.
const TEST_GLOBALS: &str = "{\n\tadmin off\n\tauto_https off\n}\n\n";

/// Starts Caddy for `site` with the example Caddyfile; `None` (a loud skip) when Caddy is not
/// installed. Caddy's home and data folders are inside the site's folder.
pub async fn start(site: &Site) -> Option<Program> {
    let caddy = require("caddy", &["caddy"])?;
    let root = site.dir.path().join("caddy");
    std::fs::create_dir_all(&root).unwrap();
    let mut files = vec![("Caddyfile".to_owned(), example("Caddyfile"))];
    let mut subs = site.upstreams();
    subs.push(("example.com", format!("example.test:{}", site.port)));
    substitute(&mut files, &subs);
    let caddyfile = root.join("Caddyfile");
    std::fs::write(&caddyfile, format!("{TEST_GLOBALS}{}", files[0].1)).unwrap();

    let mut cmd = std::process::Command::new(caddy);
    cmd.arg("run").arg("--config").arg(&caddyfile).arg("--adapter").arg("caddyfile");
    cmd.env("HOME", &root).env("XDG_DATA_HOME", root.join("data")).env("XDG_CONFIG_HOME", root.join("config"));
    let mut program = Program::spawn("caddy", cmd, &root.join("caddy.log"));
    program.wait_for_port(site.port).await;
    Some(program)
}

#[tokio::test]
async fn single_sign_on_across_subdomains_behind_caddy() {
    let site = Site::start(free_port()).await;
    let Some(_caddy) = start(&site).await else { return };
    super::single_sign_on(&site).await;
}

#[tokio::test]
async fn caddy_passes_api_clients_a_401_not_a_redirect() {
    // forward_auth answers browsers (GET, HEAD) with the portal's address; a script posting to
    // an application gets 401, which it can act on, and the application never sees the request.
    let site = Site::start(free_port()).await;
    let Some(_caddy) = start(&site).await else { return };
    let res = site.client.post(site.url("a", "/api/items")).body("{}").send().await.unwrap();
    assert_eq!(res.status(), 401);
    assert!(res.headers().get(reqwest::header::LOCATION).is_none());
    assert_eq!(res.text().await.unwrap(), "", "an empty body, not the application's");
}

#[tokio::test]
async fn caddy_lets_nothing_through_when_sessiond_is_down() {
    let mut site = Site::start(free_port()).await;
    let Some(_caddy) = start(&site).await else { return };
    super::fails_closed_without_sessiond(&mut site).await;
}
