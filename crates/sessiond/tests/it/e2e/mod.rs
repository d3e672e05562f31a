//! End-to-end tests with the real programs: sessiond behind nginx (`auth_request`) and Caddy
//! (`forward_auth`), Traefik's forward-auth protocol, and a person's journey in headless
//! Chromium. Each test starts its own sessiond, proxy and browser on free loopback ports.
//!
//! The configurations are the files the proxy guides show, read from `docs/examples/`, with the
//! few values that only make sense on a real host (ports, `example.com`, the users file's path)
//! replaced as `docs/examples/README.md` lists. A guide whose example stops working fails here.
//!
//! Names resolve without DNS: reqwest maps `*.example.test` to 127.0.0.1 with `resolve`, and
//! Chromium with `--host-resolver-rules`.
//!
//! A program that is not installed skips its test loudly (`SKIPPED: nginx not installed`), or
//! fails it under `CI=true`. Run them alone with `cargo test -p sessiond --test it e2e`.

mod browser;
mod caddy;
mod nginx;
mod oidc;
mod process;
#[cfg(feature = "saml")]
mod saml;
mod traefik;
mod webdriver;

use crate::support::{Server, cheap_hash};
use axum::http::{HeaderMap, Uri};
use reqwest::StatusCode;
use reqwest::header::{COOKIE, LOCATION, SET_COOKIE};
use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;
use tempfile::TempDir;

/// Alice: an ordinary user.
pub const ALICE: (&str, &str) = ("alice", "alice-correct-horse");
/// Ada: a member of `admins`.
pub const ADA: (&str, &str) = ("ada", "ada-battery-staple");

/// The users file: alice (Alice Liddell, group `dev`) and ada (Ada Lovelace, groups `admins`
/// and `dev`), with hashes cheap enough for tests.
fn users_file() -> String {
    format!(
        "users:\n\
         \x20 alice:\n    display_name: Alice Liddell\n    email: alice@example.test\n    password: {:?}\n    groups: [dev]\n\
         \x20 ada:\n    display_name: Ada Lovelace\n    email: ada@example.test\n    password: {:?}\n    groups: [admins, dev]\n",
        cheap_hash(ALICE.1),
        cheap_hash(ADA.1),
    )
}

/// The identity headers sessiond sends and the guides pass to applications.
pub const IDENTITY_HEADERS: [&str; 4] = ["Remote-User", "Remote-Groups", "Remote-Email", "Remote-Name"];

/// `docs/examples/`.
pub fn examples_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/examples")
}

/// The text of `docs/examples/<name>`.
pub fn example(name: &str) -> String {
    let path = examples_dir().join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Replaces, in order, each `(from, to)` of `subs` in `files` (name, text). Every `from` must
/// occur in at least one file: an example that no longer holds a value the tests replace must
/// not pass by accident.
pub fn substitute(files: &mut [(String, String)], subs: &[(&str, String)]) {
    for (from, to) in subs {
        let mut found = false;
        for (_, text) in files.iter_mut() {
            if text.contains(from) {
                found = true;
                *text = text.replace(from, to);
            }
        }
        let names: Vec<&str> = files.iter().map(|(n, _)| n.as_str()).collect();
        assert!(found, "{from:?} is in none of {names:?}; docs/examples/README.md lists what the tests replace");
    }
}

/// An application behind the proxy: it answers every request with a page showing which
/// `Remote-*` headers reached it.
pub struct EchoApp {
    pub addr: SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for EchoApp {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// What an application page says: its name, the path it saw, and each identity header, `None`
/// when the header did not arrive.
#[derive(Debug, PartialEq, Eq)]
pub struct AppPage {
    pub app: String,
    pub path: String,
    pub headers: BTreeMap<String, Option<String>>,
}

impl AppPage {
    /// Reads the page an [`EchoApp`] wrote.
    pub fn parse(html: &str) -> Self {
        let line = |prefix: &str| {
            html.lines()
                .find_map(|l| l.strip_prefix(prefix))
                .unwrap_or_else(|| panic!("no {prefix:?} in {html}"))
                .to_owned()
        };
        let headers = IDENTITY_HEADERS
            .iter()
            .map(|h| {
                let value = line(&format!("{h}: "));
                ((*h).to_owned(), (value != "(none)").then_some(value))
            })
            .collect();
        Self { app: line("App: "), path: unescape(&line("Path: ")), headers }
    }

    /// The `Remote-User` the application received.
    pub fn user(&self) -> Option<&str> {
        self.headers["Remote-User"].as_deref()
    }
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

fn unescape(text: &str) -> String {
    text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")
}

impl EchoApp {
    /// Starts application `name` on a free loopback port.
    pub async fn start(name: &'static str) -> Self {
        let listener = tokio::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let router = axum::Router::new().fallback(move |headers: HeaderMap, uri: Uri| async move {
            let mut lines = format!("App: {name}\nPath: {}\n", escape(&uri.to_string()));
            for header in IDENTITY_HEADERS {
                let values: Vec<String> =
                    headers.get_all(header).iter().map(|v| escape(&String::from_utf8_lossy(v.as_bytes()))).collect();
                let shown = if values.is_empty() { "(none)".to_owned() } else { values.join(" | ") };
                lines.push_str(&format!("{header}: {shown}\n"));
            }
            axum::response::Html(format!(
                "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>App {name}</title>\
                 <style>body{{font:18px/1.5 system-ui,sans-serif;margin:3rem;color:#1d2433}}\
                 pre{{background:#f1f3f7;padding:1rem 1.25rem;border-radius:8px}}</style></head>\n\
                 <body><h1>Application {name}</h1><p>The identity sessiond passed along:</p>\n<pre id=\"identity\">\n{lines}</pre>\n</body></html>\n"
            ))
        });
        let task = tokio::spawn(async move {
            axum::serve(listener, router).await.unwrap();
        });
        Self { addr, task }
    }
}

/// sessiond configured from `docs/examples/sessiond.yml`, two applications, and a client that
/// finds every `*.example.test` host on 127.0.0.1. The proxy itself is started by the test, on
/// [`Site::port`], which the portal URL already names.
pub struct Site {
    pub dir: TempDir,
    sessiond: Option<Server>,
    sessiond_addr: String,
    pub port: u16,
    pub app_a: EchoApp,
    pub app_b: EchoApp,
    pub client: reqwest::Client,
}

impl Site {
    /// Starts sessiond and the applications; the proxy will listen on `port`.
    pub async fn start(port: u16) -> Self {
        Self::start_with(port, |_| {}).await
    }

    /// [`Site::start`], with the configuration changed by `edit` before sessiond reads it.
    pub async fn start_with(port: u16, edit: impl FnOnce(&mut String)) -> Self {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("users.yml"), users_file()).unwrap();
        let mut config = vec![("sessiond.yml".to_owned(), example("sessiond.yml"))];
        substitute(
            &mut config,
            &[
                ("http://auth.example.com", format!("http://auth.example.test:{port}")),
                ("example.com", "example.test".to_owned()),
                ("/etc/sessiond/users.yml", "users.yml".to_owned()),
            ],
        );
        edit(&mut config[0].1);
        std::fs::write(dir.path().join("sessiond.yml"), &config[0].1).unwrap();
        let sessiond = Server::start(dir.path()).await;
        let (app_a, app_b) = (EchoApp::start("a").await, EchoApp::start("b").await);
        let loopback = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .timeout(Duration::from_secs(20))
            .resolve("auth.example.test", loopback)
            .resolve("a.example.test", loopback)
            .resolve("b.example.test", loopback)
            .build()
            .unwrap();
        let sessiond_addr = sessiond.base.strip_prefix("http://").unwrap().to_owned();
        Self { dir, sessiond: Some(sessiond), sessiond_addr, port, app_a, app_b, client }
    }

    /// The running sessiond.
    pub fn sessiond(&self) -> &Server {
        self.sessiond.as_ref().expect("sessiond was stopped")
    }

    /// Kills sessiond (SIGKILL), leaving the proxy and the applications running.
    pub async fn kill_sessiond(&mut self) {
        if let Some(server) = self.sessiond.take() {
            server.kill().await;
        }
    }

    /// `host:port` of sessiond itself.
    pub fn sessiond_addr(&self) -> &str {
        &self.sessiond_addr
    }

    /// The values the tests put in place of the examples' placeholders, common to every proxy.
    pub fn upstreams(&self) -> Vec<(&'static str, String)> {
        vec![
            ("127.0.0.1:8470", self.sessiond_addr().to_owned()),
            ("127.0.0.1:3001", self.app_a.addr.to_string()),
            ("127.0.0.1:3002", self.app_b.addr.to_string()),
        ]
    }

    /// `http://<host>.example.test:<port><path>`, through the proxy.
    pub fn url(&self, host: &str, path: &str) -> String {
        format!("http://{host}.example.test:{}{path}", self.port)
    }

    /// GET through the proxy with `jar`'s cookies, keeping the cookies the answer sets.
    pub async fn get(&self, jar: &mut Jar, url: &str) -> reqwest::Response {
        let res = self.client.get(url).header(COOKIE, jar.header()).send().await.unwrap();
        jar.keep(res.headers());
        res
    }

    /// Signs in through the portal's form, as a browser would (login page, then POST with its
    /// CSRF token). Returns the answer to the POST.
    pub async fn portal_login(&self, jar: &mut Jar, user: &str, password: &str, rd: Option<&str>) -> reqwest::Response {
        let mut login = url::Url::parse(&self.url("auth", "/login")).unwrap();
        if let Some(rd) = rd {
            login.query_pairs_mut().append_pair("rd", rd);
        }
        let page = self.get(jar, login.as_str()).await;
        assert_eq!(page.status(), 200, "login page");
        let csrf = hidden_input(&page.text().await.unwrap(), "csrf");
        let mut form = vec![("username", user), ("password", password), ("csrf", &csrf)];
        if let Some(rd) = rd {
            form.push(("rd", rd));
        }
        let res =
            self.client.post(self.url("auth", "/login")).header(COOKIE, jar.header()).form(&form).send().await.unwrap();
        jar.keep(res.headers());
        res
    }

    /// Signs out through the portal's confirm form.
    pub async fn portal_logout(&self, jar: &mut Jar) -> reqwest::Response {
        let page = self.get(jar, &self.url("auth", "/logout")).await;
        assert_eq!(page.status(), 200, "logout page");
        let csrf = hidden_input(&page.text().await.unwrap(), "csrf");
        let res = self
            .client
            .post(self.url("auth", "/logout"))
            .header(COOKIE, jar.header())
            .form(&[("csrf", csrf.as_str())])
            .send()
            .await
            .unwrap();
        jar.keep(res.headers());
        res
    }
}

/// The value of the hidden input `name` in a page.
pub fn hidden_input(html: &str, name: &str) -> String {
    let marker = format!("name=\"{name}\" value=\"");
    let start = html.find(&marker).unwrap_or_else(|| panic!("no input {name:?} in {html}")) + marker.len();
    html[start..].split('"').next().unwrap().to_owned()
}

/// A cookie jar for one visitor of `*.example.test`: every cookie sessiond sets is for the
/// whole domain or for the portal, which is all this visitor talks to.
#[derive(Clone, Debug, Default)]
pub struct Jar(BTreeMap<String, String>);

impl Jar {
    /// Keeps the cookies an answer sets and forgets the ones it deletes.
    pub fn keep(&mut self, headers: &reqwest::header::HeaderMap) {
        for value in headers.get_all(SET_COOKIE) {
            let text = value.to_str().unwrap();
            let (pair, attributes) = text.split_once(';').unwrap_or((text, ""));
            let (name, value) = pair.split_once('=').unwrap();
            let deleted = attributes.split(';').any(|a| a.trim().eq_ignore_ascii_case("max-age=0"));
            if deleted || value.is_empty() {
                self.0.remove(name.trim());
            } else {
                self.0.insert(name.trim().to_owned(), value.trim().to_owned());
            }
        }
    }

    /// The `Cookie` header to send.
    pub fn header(&self) -> String {
        self.0.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("; ")
    }

    /// The cookie `name`.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(String::as_str)
    }
}

/// Asserts that `res` sends the visitor to the portal's sign-in page, coming back to `back_to`.
pub fn assert_sent_to_login(res: &reqwest::Response, site: &Site, back_to: &str) {
    assert_eq!(res.status(), StatusCode::FOUND, "{back_to}: expected a redirect to the portal");
    let location = url::Url::parse(res.headers()[LOCATION].to_str().unwrap()).unwrap();
    assert_eq!(location.host_str(), Some("auth.example.test"), "{location}");
    assert_eq!(location.port(), Some(site.port), "{location}");
    assert_eq!(location.path(), "/login", "{location}");
    let rd: Vec<String> = location.query_pairs().filter(|(k, _)| k == "rd").map(|(_, v)| v.into_owned()).collect();
    assert_eq!(rd, [back_to], "{location}");
}

/// The promise of single sign-on, checked through whatever proxy listens on `site.port`:
/// a visitor without a session is sent to the portal and brought back; one sign-in lets the
/// visitor into both applications with the identity headers; the access rules of the example
/// hold (public path, admins-only path); one sign-out shuts both applications again.
pub async fn single_sign_on(site: &Site) {
    let mut jar = Jar::default();
    let cookie_name = site.sessiond().cookie_name.clone();
    // A query with several parameters comes back whole through every proxy.
    let private_a = site.url("a", "/private/report?year=2026&month=11");

    // Not signed in: both applications send the visitor to the portal, with the way back.
    let res = site.get(&mut jar, &private_a).await;
    assert_sent_to_login(&res, site, &private_a);
    let res = site.get(&mut jar, &site.url("b", "/")).await;
    assert_sent_to_login(&res, site, &site.url("b", "/"));
    assert!(jar.get(&cookie_name).is_none(), "forward auth never sets the session cookie");

    // The public path passes without a session, and no identity can be smuggled in.
    let res = site
        .client
        .get(site.url("a", "/public/terms.html"))
        .header("Remote-User", "ada")
        .header("Remote-Groups", "admins")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200, "bypass rule");
    let page = AppPage::parse(&res.text().await.unwrap());
    assert_eq!(page.path, "/public/terms.html");
    assert!(page.headers.values().all(Option::is_none), "spoofed identity reached the app: {page:?}");
    // The bypass covers the path only: a query that names it does not.
    let sneaky = site.url("a", "/private?/public/");
    assert_sent_to_login(&site.get(&mut Jar::default(), &sneaky).await, site, &sneaky);
    // The admins-only area asks visitors who are not signed in to sign in (an admin could enter).
    let admin_a = site.url("a", "/admin/");
    assert_sent_to_login(&site.get(&mut Jar::default(), &admin_a).await, site, &admin_a);

    // Wrong password: back to the form, still on the way to the application.
    let res = site.portal_login(&mut jar, ALICE.0, "wrong", Some(&private_a)).await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let location = res.headers()[LOCATION].to_str().unwrap();
    assert!(location.starts_with("/login?rd="), "{location}");
    assert!(jar.get(&cookie_name).is_none(), "no session after a failed sign-in");

    // One sign-in, back to where the visitor was going.
    let res = site.portal_login(&mut jar, ALICE.0, ALICE.1, Some(&private_a)).await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    assert_eq!(res.headers()[LOCATION], private_a.as_str());
    let set_cookie = crate::support::set_cookies(res.headers(), &cookie_name);
    assert_eq!(set_cookie.len(), 1, "{set_cookie:?}");
    assert_eq!(crate::support::attr(&set_cookie[0], "Domain"), Some("example.test"), "{}", set_cookie[0]);
    let token = jar.get(&cookie_name).unwrap().to_owned();

    // Both applications let the visitor in, and learn who it is.
    let res = site.get(&mut jar, &private_a).await;
    assert_eq!(res.status(), 200);
    let page = AppPage::parse(&res.text().await.unwrap());
    assert_eq!((page.app.as_str(), page.path.as_str()), ("a", "/private/report?year=2026&month=11"));
    assert_eq!(page.user(), Some("alice"));
    assert_eq!(page.headers["Remote-Groups"].as_deref(), Some("dev"));
    assert_eq!(page.headers["Remote-Email"].as_deref(), Some("alice@example.test"));
    assert_eq!(page.headers["Remote-Name"].as_deref(), Some("Alice Liddell"));
    let res = site
        .client
        .get(site.url("b", "/"))
        .header(COOKIE, jar.header())
        .header("Remote-User", "ada")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let page = AppPage::parse(&res.text().await.unwrap());
    assert_eq!((page.app.as_str(), page.user()), ("b", Some("alice")), "one value, sessiond's: {page:?}");

    // The admins-only area: refused to alice, open to ada.
    assert_eq!(site.get(&mut jar, &admin_a).await.status(), StatusCode::FORBIDDEN);
    assert_eq!(site.get(&mut jar, &site.url("b", "/admin")).await.status(), StatusCode::FORBIDDEN);
    let mut ada = Jar::default();
    let res = site.portal_login(&mut ada, ADA.0, ADA.1, None).await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let res = site.get(&mut ada, &admin_a).await;
    assert_eq!(res.status(), 200);
    let page = AppPage::parse(&res.text().await.unwrap());
    assert_eq!((page.user(), page.headers["Remote-Groups"].as_deref()), (Some("ada"), Some("admins,dev")));

    // One sign-out: both applications refuse the session from then on, even to a client that
    // keeps presenting the old cookie.
    let res = site.portal_logout(&mut jar).await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    assert!(jar.get(&cookie_name).is_none(), "sign-out deletes the cookie");
    let mut stale = Jar::default();
    stale.0.insert(cookie_name.clone(), token);
    assert_sent_to_login(&site.get(&mut stale.clone(), &private_a).await, site, &private_a);
    assert_sent_to_login(&site.get(&mut stale.clone(), &site.url("b", "/")).await, site, &site.url("b", "/"));
    // ada's session is her own and lives on.
    assert_eq!(site.get(&mut ada, &site.url("b", "/")).await.status(), 200);
}

/// With sessiond gone, the proxy lets nothing through to the applications, not even a visitor
/// with a session that was good a moment ago, nor a public path.
pub async fn fails_closed_without_sessiond(site: &mut Site) {
    let mut jar = Jar::default();
    let res = site.portal_login(&mut jar, ALICE.0, ALICE.1, None).await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    assert_eq!(site.get(&mut jar, &site.url("a", "/")).await.status(), 200);
    site.kill_sessiond().await;
    for path in ["/", "/public/terms.html"] {
        let res = site.get(&mut jar, &site.url("a", path)).await;
        let status = res.status();
        let body = res.text().await.unwrap();
        assert!(status.is_server_error(), "{path}: {status} {body}");
        assert!(!body.contains("App: a"), "{path}: the application answered: {body}");
    }
}

#[test]
fn proxy_guides_show_the_example_files_as_they_are() {
    let guides: [(&str, &[&str]); 3] = [
        (
            "nginx",
            &[
                "sessiond.yml",
                "nginx/conf.d/sessiond.conf",
                "nginx/snippets/sessiond-location.conf",
                "nginx/snippets/sessiond-authrequest.conf",
            ],
        ),
        ("caddy", &["sessiond.yml", "Caddyfile"]),
        ("traefik", &["sessiond.yml", "traefik-static.yml", "traefik.yml"]),
    ];
    for (guide, files) in guides {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("../../docs/proxies/{guide}.md"));
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        for file in files {
            let shown = format!("\n{}\n```", example(file).trim_end());
            assert!(text.contains(&shown), "docs/proxies/{guide}.md does not show docs/examples/{file} as it is");
        }
    }
}
