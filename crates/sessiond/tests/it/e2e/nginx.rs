//! sessiond behind real nginx (`auth_request`), configured with `docs/examples/nginx/`.

use super::process::{Program, free_port, require, running_as_root};
use super::{Site, example, substitute};
use std::path::Path;

/// The files of the nginx example, relative to nginx's configuration folder.
const FILES: [&str; 3] =
    ["conf.d/sessiond.conf", "snippets/sessiond-location.conf", "snippets/sessiond-authrequest.conf"];

/// Starts nginx for `site` with the example configuration; `None` (a loud skip) when nginx is
/// not installed. Everything nginx writes (pid, logs, temporary files) stays in the site's
/// folder.
pub async fn start(site: &Site) -> Option<Program> {
    let nginx = require("nginx", &["nginx"])?;
    let root = site.dir.path().join("nginx");
    let mut files: Vec<(String, String)> =
        FILES.iter().map(|f| ((*f).to_owned(), example(&format!("nginx/{f}")))).collect();
    let mut subs = site.upstreams();
    subs.extend([
        ("listen 80;", format!("listen 127.0.0.1:{};", site.port)),
        ("example.com", "example.test".to_owned()),
    ]);
    substitute(&mut files, &subs);
    for (name, text) in &files {
        let path = root.join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }
    std::fs::create_dir_all(root.join("tmp")).unwrap();
    std::fs::write(root.join("nginx.conf"), main_config(&root)).unwrap();

    let mut cmd = std::process::Command::new(nginx);
    cmd.arg("-p").arg(&root).arg("-c").arg(root.join("nginx.conf"));
    cmd.arg("-g").arg(format!("daemon off; pid {};", root.join("nginx.pid").display()));
    let mut program = Program::spawn("nginx", cmd, &root.join("nginx.out"));
    program.wait_for_port(site.port).await;
    Some(program)
}

/// The main configuration around the example: what a distribution's `/etc/nginx/nginx.conf`
/// provides, with every path inside `root`.
fn main_config(root: &Path) -> String {
    let r = root.display();
    // As root, nginx would run its workers as `nobody`, who cannot enter the test's folder.
    let user = if running_as_root() { "user root;\n" } else { "" };
    format!(
        "{user}worker_processes 1;\n\
         error_log {r}/error.log info;\n\
         events {{ worker_connections 256; }}\n\
         http {{\n\
         \x20   access_log {r}/access.log;\n\
         \x20   client_body_temp_path {r}/tmp/body;\n\
         \x20   proxy_temp_path {r}/tmp/proxy;\n\
         \x20   fastcgi_temp_path {r}/tmp/fastcgi;\n\
         \x20   uwsgi_temp_path {r}/tmp/uwsgi;\n\
         \x20   scgi_temp_path {r}/tmp/scgi;\n\
         \x20   include conf.d/*.conf;\n\
         }}\n"
    )
}

#[tokio::test]
async fn single_sign_on_across_subdomains_behind_nginx() {
    let site = Site::start(free_port()).await;
    let Some(nginx) = start(&site).await else { return };
    super::single_sign_on(&site).await;
    let log = std::fs::read_to_string(site.dir.path().join("nginx/error.log")).unwrap_or_default();
    assert!(!log.contains("[emerg]") && !log.contains("[alert]"), "nginx error log:\n{log}");
    drop(nginx);
}

#[tokio::test]
async fn nginx_lets_nothing_through_when_sessiond_is_down() {
    let mut site = Site::start(free_port()).await;
    let Some(_nginx) = start(&site).await else { return };
    super::fails_closed_without_sessiond(&mut site).await;
}
