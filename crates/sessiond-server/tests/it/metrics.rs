//! `GET /metrics` over real HTTP: the Prometheus text format, and the numbers it reports after
//! logins, forward-auth answers, logouts, revocations, expiries and bans.

use crate::support::*;
use serde_json::json;
use sessiond_core::access::{AccessControl, Policy, Rule, RuleSpec};
use sessiond_store::Store;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::SocketAddr;

const AUTH_REQUEST: &str = "/api/authz/auth-request";
const FORWARD_AUTH: &str = "/api/authz/forward-auth";

/// Every request to `app.example.test` needs a session.
async fn server() -> TestServer {
    let rule = Rule::parse(&RuleSpec {
        domain: Some(vec!["app.example.test".to_owned()]),
        policy: Some("one_factor".to_owned()),
        ..RuleSpec::default()
    })
    .unwrap();
    TestServer::with(Options {
        trusted_proxies: vec!["127.0.0.1/32".parse().unwrap()],
        access: Some(AccessControl::new(Policy::Deny, vec![rule])),
        ..Options::default()
    })
    .await
}

/// Asks forward auth about `https://app.example.test/` as nginx would; answers the status.
async fn auth_request(s: &TestServer, token: Option<&str>) -> u16 {
    let mut request = s.client.get(s.url(AUTH_REQUEST)).header("x-original-url", "https://app.example.test/");
    if let Some(token) = token {
        request = request.header("cookie", format!("{COOKIE}={token}"));
    }
    request.send().await.unwrap().status().as_u16()
}

/// Asks forward auth as Traefik would, for a browser's GET.
async fn forward_auth(s: &TestServer) -> u16 {
    s.client
        .get(s.url(FORWARD_AUTH))
        .header("x-forwarded-proto", "https")
        .header("x-forwarded-host", "app.example.test")
        .header("x-forwarded-uri", "/")
        .header("x-forwarded-method", "GET")
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

/// A parsed exposition: every sample by name and labels, checked on the way in against the text
/// format's rules.
pub(crate) struct Exposition {
    samples: HashMap<(String, BTreeMap<String, String>), f64>,
    types: HashMap<String, String>,
}

impl Exposition {
    fn parse(text: &str) -> Self {
        assert!(text.ends_with('\n'), "the exposition ends with a line feed");
        let mut samples = HashMap::new();
        let mut types: HashMap<String, String> = HashMap::new();
        let mut helped = HashSet::new();
        let mut finished: HashSet<String> = HashSet::new();
        let mut current: Option<String> = None;
        for line in text.lines() {
            assert!(!line.is_empty(), "no blank lines");
            if let Some(rest) = line.strip_prefix("# HELP ") {
                let (name, help) = rest.split_once(' ').unwrap();
                assert!(valid_name(name), "{line}");
                assert!(!help.is_empty(), "{line}");
                assert!(helped.insert(name.to_owned()), "one HELP per family: {line}");
                continue;
            }
            if let Some(rest) = line.strip_prefix("# TYPE ") {
                let (name, kind) = rest.split_once(' ').unwrap();
                assert!(["counter", "gauge", "histogram"].contains(&kind), "{line}");
                assert!(helped.contains(name), "HELP before TYPE: {line}");
                assert!(types.insert(name.to_owned(), kind.to_owned()).is_none(), "one TYPE per family: {line}");
                if let Some(previous) = current.replace(name.to_owned()) {
                    finished.insert(previous);
                }
                continue;
            }
            assert!(!line.starts_with('#'), "only HELP and TYPE comments: {line}");
            let (series, value) = line.rsplit_once(' ').unwrap();
            let value: f64 = value.parse().unwrap_or_else(|_| panic!("a number: {line}"));
            assert!(value >= 0.0 && value.is_finite(), "{line}");
            let (name, labels) = parse_series(series);
            let family = current.as_deref().unwrap_or_else(|| panic!("a sample before any TYPE: {line}"));
            let kind = &types[family];
            let allowed: Vec<String> = match kind.as_str() {
                "histogram" => ["_bucket", "_sum", "_count"].iter().map(|s| format!("{family}{s}")).collect(),
                _ => vec![family.to_owned()],
            };
            assert!(allowed.contains(&name), "{name} belongs to the family it follows ({family}): {line}");
            assert!(!finished.contains(family), "a family's samples are contiguous: {line}");
            if kind == "counter" {
                assert!(name.ends_with("_total"), "counters end with _total: {line}");
            }
            assert!(samples.insert((name, labels), value).is_none(), "each series once: {line}");
        }
        let exposition = Self { samples, types };
        exposition.check_histograms();
        exposition
    }

    /// Buckets are cumulative, end with `+Inf`, and `+Inf` equals `_count`.
    fn check_histograms(&self) {
        for (family, kind) in &self.types {
            if kind != "histogram" {
                continue;
            }
            let bucket = format!("{family}_bucket");
            let mut series: HashMap<BTreeMap<String, String>, Vec<(f64, f64)>> = HashMap::new();
            for ((name, labels), value) in &self.samples {
                if *name == bucket {
                    let mut rest = labels.clone();
                    let le = rest.remove("le").expect("every bucket has le");
                    let le = if le == "+Inf" { f64::INFINITY } else { le.parse().unwrap() };
                    series.entry(rest).or_default().push((le, *value));
                }
            }
            for (labels, mut buckets) in series {
                buckets.sort_by(|a, b| a.0.partial_cmp(&b.0).unwrap());
                assert!(buckets.windows(2).all(|w| w[0].1 <= w[1].1), "{family} {labels:?}: cumulative");
                let (le, total) = *buckets.last().unwrap();
                assert_eq!(le, f64::INFINITY, "{family} {labels:?}: ends with +Inf");
                let count = self.samples[&(format!("{family}_count"), labels.clone())];
                assert_eq!(total, count, "{family} {labels:?}: +Inf is the count");
                assert!(self.samples.contains_key(&(format!("{family}_sum"), labels.clone())), "{family}: a sum");
            }
        }
    }

    fn get(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        let labels = labels.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
        self.samples.get(&(name.to_owned(), labels)).copied()
    }

    /// The value of a series that must be there.
    pub(crate) fn value(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        self.get(name, labels).unwrap_or_else(|| panic!("no series {name} {labels:?}"))
    }

    fn login(&self, result: &str) -> f64 {
        self.value("sessiond_logins_total", &[("provider", "password"), ("result", result)])
    }

    fn ended(&self, kind: &str) -> f64 {
        self.value("sessiond_sessions_ended_total", &[("kind", kind)])
    }

    fn active(&self, realm: &str) -> f64 {
        self.value("sessiond_active_sessions", &[("realm", realm)])
    }

    fn forward(&self, route: &str, outcome: &str) -> f64 {
        self.value("sessiond_forward_auth_requests_total", &[("route", route), ("outcome", outcome)])
    }

    fn store_calls(&self, operation: &str) -> f64 {
        self.value("sessiond_store_operation_duration_seconds_count", &[("operation", operation)])
    }
}

fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && !name.starts_with(|c: char| c.is_ascii_digit())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

/// `name{a="1",b="x\"y"}` into the name and its labels.
fn parse_series(series: &str) -> (String, BTreeMap<String, String>) {
    let Some((name, rest)) = series.split_once('{') else {
        assert!(valid_name(series), "{series}");
        return (series.to_owned(), BTreeMap::new());
    };
    assert!(valid_name(name), "{series}");
    let body = rest.strip_suffix('}').unwrap_or_else(|| panic!("labels end with }}: {series}"));
    let mut labels = BTreeMap::new();
    let mut chars = body.chars().peekable();
    loop {
        let key: String = chars.by_ref().take_while(|&c| c != '=').collect();
        assert!(valid_name(&key) && !key.contains(':'), "label name {key:?} in {series}");
        assert_eq!(chars.next(), Some('"'), "quoted value in {series}");
        let mut value = String::new();
        loop {
            match chars.next().unwrap_or_else(|| panic!("unterminated value in {series}")) {
                '"' => break,
                '\\' => match chars.next() {
                    Some('n') => value.push('\n'),
                    Some(c @ ('\\' | '"')) => value.push(c),
                    other => panic!("bad escape {other:?} in {series}"),
                },
                c => value.push(c),
            }
        }
        assert!(labels.insert(key, value).is_none(), "label given twice in {series}");
        match chars.next() {
            None => break,
            Some(',') => continue,
            Some(c) => panic!("unexpected {c:?} in {series}"),
        }
    }
    (name.to_owned(), labels)
}

pub(crate) async fn scrape(s: &TestServer) -> Exposition {
    scrape_at(&s.client, &s.url("/metrics")).await
}

async fn scrape_at(client: &reqwest::Client, url: &str) -> Exposition {
    let res = client.get(url).send().await.unwrap();
    assert_eq!(res.status(), 200);
    let content_type = res.headers()["content-type"].to_str().unwrap().to_owned();
    assert_eq!(content_type, "text/plain; version=0.0.4; charset=utf-8");
    Exposition::parse(&res.text().await.unwrap())
}

#[tokio::test]
async fn a_fresh_server_reports_every_family_at_zero() {
    let s = server().await;
    let m = scrape(&s).await;
    assert_eq!(m.active("main"), 0.0);
    for result in ["success", "invalid_credentials", "banned"] {
        assert_eq!(m.login(result), 0.0, "{result}");
    }
    for kind in ["logout", "revoke", "revoke_all", "admin", "expired", "user_disabled"] {
        assert_eq!(m.ended(kind), 0.0, "{kind}");
    }
    for route in [AUTH_REQUEST, FORWARD_AUTH] {
        for outcome in ["pass", "unauthenticated", "forbidden", "redirect", "bad_request", "error"] {
            assert_eq!(m.forward(route, outcome), 0.0, "{route} {outcome}");
        }
    }
    assert_eq!(m.value("sessiond_regulation_bans_total", &[("on", "user")]), 0.0);
    assert_eq!(m.value("sessiond_store_errors_total", &[("operation", "session_by_token")]), 0.0);
    assert_eq!(m.value("sessiond_build_info", &[("version", env!("CARGO_PKG_VERSION"))]), 1.0);
    // The memory store keeps no cache, so there are no cache numbers to report.
    assert!(!m.types.contains_key("sessiond_session_cache_lookups_total"));
    assert_eq!(m.types["sessiond_forward_auth_duration_seconds"], "histogram");
    assert_eq!(m.types["sessiond_active_sessions"], "gauge");
}

#[tokio::test]
async fn logins_forward_auth_and_logout_are_counted() {
    let s = server().await;
    let token = s.login("alice", "alice-pw", false).await;
    let failed = s.post("/api/v1/authenticate", login_body("bob", "wrong", false)).await;
    assert_eq!(failed.status(), 401);
    assert_eq!(auth_request(&s, Some(&token)).await, 200);
    assert_eq!(auth_request(&s, Some(&token)).await, 200);
    assert_eq!(auth_request(&s, None).await, 401);
    assert_eq!(forward_auth(&s).await, 302);

    let m = scrape(&s).await;
    assert_eq!(m.login("success"), 1.0);
    assert_eq!(m.login("invalid_credentials"), 1.0);
    assert_eq!(m.login("banned"), 0.0);
    assert_eq!(m.forward(AUTH_REQUEST, "pass"), 2.0);
    assert_eq!(m.forward(AUTH_REQUEST, "unauthenticated"), 1.0);
    assert_eq!(m.forward(AUTH_REQUEST, "forbidden"), 0.0);
    assert_eq!(m.forward(FORWARD_AUTH, "redirect"), 1.0);
    assert_eq!(m.active("main"), 1.0);

    // The latency histogram of the passes: every bucket series, the +Inf bucket, sum and count.
    let pass = [("route", AUTH_REQUEST), ("outcome", "pass")];
    let histogram = "sessiond_forward_auth_duration_seconds";
    assert_eq!(m.value(&format!("{histogram}_count"), &pass), 2.0);
    let inf = [pass[0], pass[1], ("le", "+Inf")];
    assert_eq!(m.value(&format!("{histogram}_bucket"), &inf), 2.0);
    let sum = m.value(&format!("{histogram}_sum"), &pass);
    assert!(sum > 0.0 && sum < 10.0, "two answers took {sum} s");
    let buckets = m.samples.keys().filter(|(name, labels)| {
        *name == format!("{histogram}_bucket") && labels["route"] == AUTH_REQUEST && labels["outcome"] == "pass"
    });
    assert_eq!(buckets.count(), 19, "18 bounds and +Inf");

    // Each verify looked the session up in the store; the login stored one.
    assert!(m.store_calls("session_by_token") >= 2.0);
    assert_eq!(m.store_calls("create_session"), 1.0);
    let login = |status: &str| {
        let labels = [("route", "/api/v1/authenticate"), ("method", "POST"), ("status", status)];
        m.value("sessiond_http_requests_total", &labels)
    };
    assert_eq!((login("2xx"), login("4xx")), (1.0, 1.0), "one login passed, one failed");

    let res = s.client.delete(s.url("/api/v1/sessions/current")).bearer_auth(&token).send().await.unwrap();
    assert_eq!(res.status(), 204);
    assert_eq!(auth_request(&s, Some(&token)).await, 401);

    let m = scrape(&s).await;
    assert_eq!(m.ended("logout"), 1.0);
    assert_eq!(m.active("main"), 0.0, "the gauge goes down after the logout");
    assert_eq!(m.forward(AUTH_REQUEST, "unauthenticated"), 2.0);
    assert_eq!(m.store_calls("delete_session"), 1.0);
    assert!(m.store_calls("session_count") >= 2.0, "each scrape reads the count from the store");
    let logout = [("route", "/api/v1/sessions/current"), ("method", "DELETE"), ("status", "2xx")];
    assert_eq!(m.value("sessiond_http_requests_total", &logout), 1.0);
}

#[tokio::test]
async fn the_active_sessions_gauge_follows_logins_revocations_and_expiry() {
    let s = server().await;
    let first = s.login("alice", "alice-pw", false).await;
    s.login("alice", "alice-pw", false).await;
    s.login("alice", "alice-pw", false).await;
    let bob = s.login("bob", "bob-pw", false).await;
    assert_eq!(scrape(&s).await.active("main"), 4.0);

    // alice signs out everywhere else: two of her sessions end.
    let res = s
        .client
        .post(s.url("/api/v1/sessions/revoke"))
        .bearer_auth(&first)
        .json(&json!({"except_current": true}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let m = scrape(&s).await;
    assert_eq!(m.ended("revoke_all"), 2.0);
    assert_eq!(m.active("main"), 2.0);

    // An administrator ends bob's sessions.
    let root = s.login("root", "root-pw", false).await;
    let res = s
        .client
        .post(s.url("/api/v1/sessions/revoke"))
        .bearer_auth(&root)
        .json(&json!({"user": "bob"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(auth_request(&s, Some(&bob)).await, 401);
    let m = scrape(&s).await;
    assert_eq!(m.ended("admin"), 1.0);
    assert_eq!(m.active("main"), 2.0, "alice's and root's");

    // Past the idle deadline, alice's session is found dead on its next use.
    s.advance(301);
    assert_eq!(auth_request(&s, Some(&first)).await, 401);
    let m = scrape(&s).await;
    assert_eq!(m.ended("expired"), 1.0);
    assert_eq!(m.active("main"), 1.0, "root's session waits for the sweep");
    assert_eq!(m.ended("logout") + m.ended("revoke"), 0.0);
}

#[tokio::test]
async fn bans_and_banned_logins_are_counted() {
    let s = server().await;
    for _ in 0..3 {
        let res = s.post("/api/v1/authenticate", login_body("alice", "wrong", false)).await;
        assert_eq!(res.status(), 401);
    }
    let res = s.post("/api/v1/authenticate", login_body("alice", "alice-pw", false)).await;
    assert_eq!(error_code(res).await, (429, "too_many_attempts".to_owned()));

    let m = scrape(&s).await;
    assert_eq!(m.value("sessiond_regulation_bans_total", &[("on", "user")]), 1.0);
    assert_eq!(m.value("sessiond_regulation_bans_total", &[("on", "address")]), 0.0);
    assert_eq!(m.login("invalid_credentials"), 3.0);
    assert_eq!(m.login("banned"), 1.0);
    assert_eq!(m.login("success"), 0.0);
    assert_eq!(m.active("main"), 0.0);
}

/// Numbers belong to their server: tests run many in one process, and nothing is global.
#[tokio::test]
async fn each_server_counts_only_its_own_requests() {
    let busy = server().await;
    let quiet = server().await;
    busy.login("alice", "alice-pw", false).await;
    assert_eq!(auth_request(&busy, None).await, 401);

    let m = scrape(&quiet).await;
    assert_eq!(m.login("success"), 0.0);
    assert_eq!(m.forward(AUTH_REQUEST, "unauthenticated"), 0.0);
    assert_eq!(m.active("main"), 0.0);
    assert_eq!(scrape(&busy).await.login("success"), 1.0);
}

/// Unknown paths are counted under one `unmatched` route, so scanning random URLs cannot add
/// series; route templates, not paths with ids, label the rest.
#[tokio::test]
async fn routes_are_labelled_by_template() {
    let s = server().await;
    let token = s.login("alice", "alice-pw", false).await;
    for path in ["/no/such/page", "/another/unknown", "/api/v1/nothing"] {
        assert_eq!(s.client.get(s.url(path)).send().await.unwrap().status(), 404);
    }
    let res = s.client.delete(s.url("/api/v1/sessions/not-a-session-id")).bearer_auth(&token).send().await.unwrap();
    assert_eq!(res.status(), 404);

    let m = scrape(&s).await;
    let unmatched = [("route", "unmatched"), ("method", "GET"), ("status", "4xx")];
    assert_eq!(m.value("sessiond_http_requests_total", &unmatched), 3.0);
    let by_id = [("route", "/api/v1/sessions/{id}"), ("method", "DELETE"), ("status", "4xx")];
    assert_eq!(m.value("sessiond_http_requests_total", &by_id), 1.0);
    let routes: HashSet<&str> = m
        .samples
        .keys()
        .filter(|(name, _)| name == "sessiond_http_requests_total")
        .map(|(_, labels)| labels["route"].as_str())
        .collect();
    assert!(routes.iter().all(|r| !r.contains("no/such") && !r.contains("not-a-session-id")), "{routes:?}");
}

async fn serve(router: axum::Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let service = router.into_make_service_with_connect_info::<SocketAddr>();
    tokio::spawn(async move { axum::serve(listener, service).await.unwrap() });
    format!("http://{addr}")
}

/// With `server.metrics_listen`, the metrics are served on their own listener, and only there.
#[tokio::test]
async fn metrics_can_be_served_on_a_listener_of_their_own() {
    let s = server().await;
    let metrics = serve(sessiond_server::metrics_router(s.app.clone())).await;
    let main = serve(sessiond_server::router_without_metrics(s.app.clone())).await;

    let token = s.login("alice", "alice-pw", false).await;
    let m = scrape_at(&s.client, &format!("{metrics}/metrics")).await;
    assert_eq!(m.login("success"), 1.0, "the same app's numbers");
    assert_eq!(m.active("main"), 1.0);

    let res = s.client.get(format!("{main}/metrics")).send().await.unwrap();
    assert_eq!(res.status(), 404, "not on the main listener");
    let res = s.client.get(format!("{main}/api/v1/sessions/current")).bearer_auth(&token).send().await.unwrap();
    assert_eq!(res.status(), 200, "the rest of the application is");
    let res = s.client.get(format!("{metrics}/api/v1/sessions/current")).bearer_auth(&token).send().await.unwrap();
    assert_eq!(res.status(), 404, "the metrics listener serves nothing else");
    let res = s.client.get(format!("{metrics}/healthz")).send().await.unwrap();
    assert_eq!(res.status(), 404);
}

/// The embedded store reports its cache and keeps the session count on disk.
#[tokio::test]
async fn the_embedded_store_reports_cache_lookups_and_its_session_count() {
    let dir = tempfile::tempdir().unwrap();
    let store = sessiond_store::EmbeddedStore::open(&dir.path().join("sessiond.redb")).unwrap();
    let rule = Rule::parse(&RuleSpec {
        domain: Some(vec!["app.example.test".to_owned()]),
        policy: Some("one_factor".to_owned()),
        ..RuleSpec::default()
    })
    .unwrap();
    let s = TestServer::with(Options {
        trusted_proxies: vec!["127.0.0.1/32".parse().unwrap()],
        access: Some(AccessControl::new(Policy::Deny, vec![rule])),
        store: Some(store.into()),
        ..Options::default()
    })
    .await;
    let token = s.login("alice", "alice-pw", false).await;
    s.login("bob", "bob-pw", false).await;
    for _ in 0..3 {
        assert_eq!(auth_request(&s, Some(&token)).await, 200);
    }

    let m = scrape(&s).await;
    assert_eq!(m.types["sessiond_session_cache_lookups_total"], "counter");
    let (hits, misses) = (
        m.value("sessiond_session_cache_lookups_total", &[("result", "hit")]),
        m.value("sessiond_session_cache_lookups_total", &[("result", "miss")]),
    );
    assert_eq!((hits, misses), (2.0, 1.0), "the first check reads the store, the next two the cache");
    assert_eq!(m.active("main"), 2.0);
}

/// The operations guide documents every metric family, and the sample dashboard queries only
/// families that exist.
#[tokio::test]
async fn the_guide_and_the_dashboard_name_only_metrics_that_exist() {
    let dir = tempfile::tempdir().unwrap();
    let store = sessiond_store::EmbeddedStore::open(&dir.path().join("sessiond.redb")).unwrap();
    let s = TestServer::with(Options { store: Some(store.into()), ..Options::default() }).await;
    let families: HashSet<String> = scrape(&s).await.types.into_keys().collect();
    assert!(families.contains("sessiond_session_cache_lookups_total"), "every family is served here");

    let guide = include_str!("../../../../docs/operations.md");
    for family in &families {
        assert!(guide.contains(&format!("`{family}`")), "docs/operations.md documents {family}");
    }

    let dashboard: serde_json::Value =
        serde_json::from_str(include_str!("../../../../docs/grafana-dashboard.json")).unwrap();
    let mut queried = HashSet::new();
    for panel in dashboard["panels"].as_array().unwrap() {
        for target in panel["targets"].as_array().into_iter().flatten() {
            let expr = target["expr"].as_str().unwrap();
            for (start, _) in expr.match_indices("sessiond_") {
                let name: String =
                    expr[start..].chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect();
                let family = ["_bucket", "_sum", "_count"]
                    .iter()
                    .find_map(|suffix| name.strip_suffix(suffix).filter(|f| families.contains(*f)))
                    .unwrap_or(&name)
                    .to_owned();
                assert!(families.contains(&family), "the dashboard queries {name}, which is not served");
                queried.insert(family);
            }
        }
    }
    for wanted in [
        "sessiond_forward_auth_requests_total",
        "sessiond_forward_auth_duration_seconds",
        "sessiond_logins_total",
        "sessiond_active_sessions",
        "sessiond_regulation_bans_total",
        "sessiond_store_errors_total",
    ] {
        assert!(queried.contains(wanted), "the dashboard shows {wanted}");
    }
}

/// The background work counts what it ends: sessions swept past their deadline, and sessions of
/// users disabled in the users file.
#[tokio::test]
async fn sweeps_and_disabled_users_are_counted() {
    let s = server().await;
    s.login("alice", "alice-pw", true).await; // remembered: no idle deadline
    s.login("bob", "bob-pw", false).await;
    let mut users = default_users();
    users.users.get_mut("alice").unwrap().disabled = true;
    users.write(&s.users_path).unwrap();
    // The reload notices changes by modification time, which may not move within a second.
    let file = std::fs::File::options().write(true).open(&s.users_path).unwrap();
    file.set_modified(std::time::SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(12345)).unwrap();
    s.advance(301);

    // The background work runs until both sessions are gone.
    let store = s.store.clone();
    let done = async move {
        while store.session_count("main").await.unwrap() != Some(0) {
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
    };
    let work = sessiond_server::background(s.app.clone(), std::time::Duration::from_millis(10), done);
    tokio::time::timeout(std::time::Duration::from_secs(10), work).await.expect("both sessions end");

    let m = scrape(&s).await;
    assert_eq!(m.ended("expired"), 1.0, "bob's session was swept");
    assert_eq!(m.ended("user_disabled"), 1.0, "alice's session ended with her account");
    assert_eq!(m.active("main"), 0.0);
    assert!(m.store_calls("sweep_expired") >= 1.0);
    assert!(m.store_calls("delete_user_sessions") >= 1.0);
}
