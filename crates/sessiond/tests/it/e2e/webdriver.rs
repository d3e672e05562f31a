//! Headless Chromium driven over WebDriver (W3C protocol, spoken as JSON over HTTP to
//! chromedriver). Only the few commands a person's journey needs: open a page, fill and submit a
//! form, read text, take a screenshot.

use super::process::{Program, free_port, require};
use base64::Engine as _;
use serde_json::{Value, json};
use std::io::{Read as _, Write as _};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The key under which WebDriver returns an element reference.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";
/// How long a page may take to reach an expected state.
const WAIT: Duration = Duration::from_secs(15);

/// Where screenshots go: `target/e2e/` of this workspace, or of `CARGO_TARGET_DIR`.
pub fn screenshot_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target"), PathBuf::from);
    let dir = target.join("e2e");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A running chromedriver and the browser it drives.
pub struct ChromeDriver {
    base: String,
    chrome: PathBuf,
    http: reqwest::Client,
    _program: Program,
}

impl ChromeDriver {
    /// Starts chromedriver on a free loopback port, logging into `dir`; `None` (a loud skip) when
    /// chromedriver or Chromium is not installed.
    pub async fn start(dir: &Path) -> Option<Self> {
        let driver = require("chromedriver", &["chromedriver", "/usr/lib/chromium/chromedriver"])?;
        // Debian's /usr/bin/chromium is a wrapper script; the browser itself is beside it.
        let chrome = require(
            "chromium",
            &["/usr/lib/chromium/chromium", "chromium", "chromium-browser", "google-chrome", "google-chrome-stable"],
        )?;
        let port = free_port();
        let mut cmd = std::process::Command::new(driver);
        cmd.arg(format!("--port={port}")).arg(format!("--log-path={}", dir.join("chromedriver.log").display()));
        let mut program = Program::spawn("chromedriver", cmd, &dir.join("chromedriver.out"));
        program.wait_for_port(port).await;
        let http = reqwest::Client::builder().no_proxy().timeout(Duration::from_secs(60)).build().unwrap();
        let base = format!("http://127.0.0.1:{port}");
        let started = tokio::time::Instant::now();
        loop {
            let ready = match http.get(format!("{base}/status")).send().await {
                Ok(res) => res.json::<Value>().await.is_ok_and(|v| v["value"]["ready"] == true),
                Err(_) => false,
            };
            if ready {
                break;
            }
            assert!(started.elapsed() < WAIT, "chromedriver never ready:\n{}", program.log());
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Some(Self { base, chrome, http, _program: program })
    }

    /// A fresh browser with its own profile in `profile` (cookies included), resolving every
    /// `*.example.test` name to 127.0.0.1.
    pub async fn browser(&self, profile: &Path, shots_prefix: &str) -> Browser {
        std::fs::create_dir_all(profile).unwrap();
        let args = [
            "--headless".to_owned(),
            "--no-sandbox".to_owned(),
            "--disable-gpu".to_owned(),
            "--disable-dev-shm-usage".to_owned(),
            "--disable-quic".to_owned(),
            "--no-first-run".to_owned(),
            "--no-default-browser-check".to_owned(),
            "--disable-background-networking".to_owned(),
            "--disable-component-update".to_owned(),
            "--disable-sync".to_owned(),
            "--disable-extensions".to_owned(),
            "--no-proxy-server".to_owned(),
            "--password-store=basic".to_owned(),
            "--window-size=1280,900".to_owned(),
            "--host-resolver-rules=MAP *.example.test 127.0.0.1".to_owned(),
            format!("--user-data-dir={}", profile.display()),
        ];
        let capabilities = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "pageLoadStrategy": "normal",
            "goog:chromeOptions": {"binary": self.chrome, "args": args},
        }}});
        let res = self.http.post(format!("{}/session", self.base)).json(&capabilities).send().await.unwrap();
        let body: Value = res.json().await.unwrap();
        let id = body["value"]["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("chromedriver refused a session: {body}"))
            .to_owned();
        Browser {
            session: format!("{}/session/{id}", self.base),
            http: self.http.clone(),
            shots: screenshot_dir(),
            prefix: shots_prefix.to_owned(),
        }
    }
}

/// One browser window. Dropping it closes the browser.
pub struct Browser {
    session: String,
    http: reqwest::Client,
    shots: PathBuf,
    prefix: String,
}

impl Browser {
    /// Sends a WebDriver command; panics with the driver's message when it fails.
    async fn command(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let mut req = self.http.request(method.clone(), format!("{}{path}", self.session));
        if let Some(body) = body {
            req = req.json(&body);
        }
        let res = req.send().await.unwrap_or_else(|e| panic!("webdriver {method} {path}: {e}"));
        let status = res.status();
        let value: Value = res.json().await.unwrap();
        assert!(status.is_success(), "webdriver {method} {path}: {status} {}", value["value"]);
        value["value"].clone()
    }

    /// Opens `url` and waits for the page (and any redirects) to load.
    pub async fn goto(&self, url: &str) {
        self.command(reqwest::Method::POST, "/url", Some(json!({"url": url}))).await;
    }

    /// Sets the window's outer size.
    pub async fn resize(&self, width: u32, height: u32) {
        self.command(reqwest::Method::POST, "/window/rect", Some(json!({"width": width, "height": height}))).await;
    }

    /// Reloads the page.
    pub async fn refresh(&self) {
        self.command(reqwest::Method::POST, "/refresh", Some(json!({}))).await;
    }

    /// The address of the page shown.
    pub async fn url(&self) -> String {
        self.command(reqwest::Method::GET, "/url", None).await.as_str().unwrap().to_owned()
    }

    /// The page's title.
    pub async fn title(&self) -> String {
        self.command(reqwest::Method::GET, "/title", None).await.as_str().unwrap().to_owned()
    }

    /// The page's visible text.
    pub async fn text(&self) -> String {
        self.text_of("body").await
    }

    /// The visible text of the first element matching `css`.
    pub async fn text_of(&self, css: &str) -> String {
        let element = self.find(css).await;
        self.command(reqwest::Method::GET, &format!("/element/{element}/text"), None).await.as_str().unwrap().to_owned()
    }

    /// The first element matching `css`; panics, naming the page, when there is none.
    async fn find(&self, css: &str) -> String {
        let res = self
            .http
            .post(format!("{}/element", self.session))
            .json(&json!({"using": "css selector", "value": css}))
            .send()
            .await
            .unwrap();
        let ok = res.status().is_success();
        let value: Value = res.json().await.unwrap();
        if !ok {
            panic!(
                "no element {css:?} on {} ({}): {}",
                self.url().await,
                self.title().await,
                value["value"]["message"]
            );
        }
        value["value"][ELEMENT].as_str().unwrap().to_owned()
    }

    /// Whether an element matches `css`.
    pub async fn has(&self, css: &str) -> bool {
        let res = self
            .http
            .post(format!("{}/elements", self.session))
            .json(&json!({"using": "css selector", "value": css}))
            .send()
            .await
            .unwrap();
        let value: Value = res.json().await.unwrap();
        value["value"].as_array().is_some_and(|a| !a.is_empty())
    }

    /// Types `text` into the field matching `css`, replacing what it held.
    pub async fn fill(&self, css: &str, text: &str) {
        let element = self.find(css).await;
        self.command(reqwest::Method::POST, &format!("/element/{element}/clear"), Some(json!({}))).await;
        self.command(reqwest::Method::POST, &format!("/element/{element}/value"), Some(json!({"text": text}))).await;
    }

    /// Clicks the element matching `css`.
    pub async fn click(&self, css: &str) {
        let element = self.find(css).await;
        self.command(reqwest::Method::POST, &format!("/element/{element}/click"), Some(json!({}))).await;
    }

    /// Clicks the element matching `css`, which submits a form or follows a link, and waits until
    /// the next page has loaded, even one at the same address (a form that answers with itself,
    /// which [`Browser::wait_for_url`] cannot tell from the page before): a mark left on the
    /// current document is gone from the next one.
    pub async fn submit(&self, css: &str) {
        self.execute("window.sessiondTestMark = true").await;
        self.click(css).await;
        let started = tokio::time::Instant::now();
        loop {
            let next = "return document.readyState === 'complete' && window.sessiondTestMark === undefined";
            if self.execute(next).await == true {
                return;
            }
            let (url, title) = (self.url().await, self.title().await);
            assert!(started.elapsed() < WAIT, "no new page after clicking {css}; still at {url} ({title})");
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// Runs `script` in the page (WebDriver scripts are not subject to the page's
    /// Content-Security-Policy) and returns its result.
    async fn execute(&self, script: &str) -> Value {
        self.command(reqwest::Method::POST, "/execute/sync", Some(json!({"script": script, "args": []}))).await
    }

    /// Waits until the page's address satisfies `ok`; panics with `what` and the page otherwise.
    pub async fn wait_for_url(&self, what: &str, ok: impl Fn(&url::Url) -> bool) -> url::Url {
        let started = tokio::time::Instant::now();
        loop {
            let url = url::Url::parse(&self.url().await).unwrap();
            // A page that is still loading reports its old address; wait for it to be complete.
            let ready = self.execute("return document.readyState").await;
            if ok(&url) && ready == "complete" {
                return url;
            }
            assert!(started.elapsed() < WAIT, "waiting for {what}; still at {url} ({})", self.title().await);
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// Saves a PNG of the whole page (beyond the window when it is longer) as
    /// `target/e2e/<prefix>-<name>.png` and returns its path. WebDriver's own screenshot stops at
    /// the window's edge, so this asks Chromium's DevTools through chromedriver.
    pub async fn screenshot(&self, name: &str) -> PathBuf {
        let cdp = |cmd: &str, params: Value| json!({"cmd": cmd, "params": params});
        let metrics = self
            .command(reqwest::Method::POST, "/goog/cdp/execute", Some(cdp("Page.getLayoutMetrics", json!({}))))
            .await;
        let size = &metrics["cssContentSize"];
        // Without a vertical scrollbar the page lays out over the whole window width, which
        // the content size (measured beside the scrollbar) may fall short of.
        let window = self.execute("return window.innerWidth").await.as_f64().unwrap();
        let width = size["width"].as_f64().unwrap().max(window);
        let clip = json!({"x": 0, "y": 0, "width": width, "height": size["height"], "scale": 1});
        let params = json!({"format": "png", "captureBeyondViewport": true, "clip": clip});
        let data =
            self.command(reqwest::Method::POST, "/goog/cdp/execute", Some(cdp("Page.captureScreenshot", params))).await;
        let png = base64::engine::general_purpose::STANDARD.decode(data["data"].as_str().unwrap()).unwrap();
        let path = self.shots.join(format!("{}-{name}.png", self.prefix));
        std::fs::write(&path, png).unwrap();
        path
    }
}

impl Drop for Browser {
    /// Ends the WebDriver session, which quits the browser. `Drop` cannot await, so this is a
    /// bare blocking HTTP request; chromedriver's own process group is stopped afterwards anyway.
    fn drop(&mut self) {
        let Some(rest) = self.session.strip_prefix("http://") else { return };
        let Some((authority, path)) = rest.split_once('/') else { return };
        let Ok(addr) = authority.parse() else { return };
        let Ok(mut stream) = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(2)) else { return };
        let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
        let request =
            format!("DELETE /{path} HTTP/1.1\r\nHost: {authority}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
        if stream.write_all(request.as_bytes()).is_ok() {
            // The answer comes once the browser has quit; its first bytes are all we wait for
            // (chromedriver may keep the connection open after it).
            let mut answer = [0_u8; 512];
            let _ = stream.read(&mut answer);
        }
    }
}
