//! Traefik's forwardAuth protocol, spoken to sessiond directly: Traefik is not packaged here, so
//! the test sends what Traefik sends, to the address `docs/examples/traefik.yml` configures,
//! and checks the answers against what Traefik does with them.
//!
//! Traefik's forwardAuth middleware calls its `address` with `GET`, every header of the client's
//! request (`Cookie` included), and `X-Forwarded-Method`, `-Proto`, `-Host` (the `Host` header,
//! port included), `-Uri` (path and query), `-For` and, in Traefik 3, `-Port`. A 2xx answer lets
//! the request through with the `authResponseHeaders` copied onto it (after removing the
//! client's own headers of those names); any other answer goes back to the client as it is,
//! `Location` included.

use super::{ADA, ALICE, IDENTITY_HEADERS, Site, example, substitute};
use reqwest::StatusCode;
use reqwest::header::{CACHE_CONTROL, COOKIE, LOCATION, SET_COOKIE};
use serde_yaml_ng::Value;

/// A Traefik configuration file, parsed.
fn dynamic_config(text: &str) -> Value {
    serde_yaml_ng::from_str(text).unwrap_or_else(|e| panic!("not YAML: {e}\n{text}"))
}

fn strings(value: &Value) -> Vec<&str> {
    value.as_sequence().unwrap_or_else(|| panic!("not a list: {value:?}")).iter().map(|v| v.as_str().unwrap()).collect()
}

#[test]
fn traefik_example_points_at_sessiond_and_copies_what_it_sends() {
    let config = dynamic_config(&example("traefik.yml"));
    let http = &config["http"];
    let auth = &http["middlewares"]["sessiond"]["forwardAuth"];
    let sessiond: Value = serde_yaml_ng::from_str(&example("sessiond.yml")).unwrap();
    let listen = sessiond["server"]["listen"].as_str().unwrap();
    assert_eq!(auth["address"].as_str(), Some(format!("http://{listen}/api/authz/forward-auth").as_str()));
    assert_eq!(auth["trustForwardHeader"].as_bool(), Some(false), "Traefik describes the request itself");
    assert_eq!(strings(&auth["authResponseHeaders"]), IDENTITY_HEADERS);

    // The applications go through the middleware; the portal must not (nobody could sign in).
    for app in ["app-a", "app-b"] {
        assert_eq!(strings(&http["routers"][app]["middlewares"]), ["sessiond"], "{app}");
    }
    let portal = &http["routers"]["portal"];
    assert!(portal.get("middlewares").is_none(), "the portal is not behind forward auth");
    let portal_url = url::Url::parse(sessiond["server"]["portal_url"].as_str().unwrap()).unwrap();
    assert_eq!(portal["rule"].as_str(), Some(format!("Host(`{}`)", portal_url.host_str().unwrap()).as_str()));
    let servers = &http["services"][portal["service"].as_str().unwrap()]["loadBalancer"]["servers"];
    assert_eq!(servers[0]["url"].as_str(), Some(format!("http://{listen}").as_str()));

    // Every router listens on an entry point of the static configuration.
    let static_config = dynamic_config(&example("traefik-static.yml"));
    for (name, router) in http["routers"].as_mapping().unwrap() {
        for entry_point in strings(&router["entryPoints"]) {
            assert!(static_config["entryPoints"].get(entry_point).is_some(), "{name:?}: {entry_point}");
        }
    }
}

/// What Traefik sends to the forward-auth address for a client's request.
struct Forwarded<'a> {
    method: &'a str,
    host: String,
    uri: &'a str,
    cookie: Option<String>,
}

impl Forwarded<'_> {
    async fn send(&self, client: &reqwest::Client, address: &str) -> reqwest::Response {
        let mut req = client
            .get(address)
            .header("X-Forwarded-Method", self.method)
            .header("X-Forwarded-Proto", "http")
            .header("X-Forwarded-Host", &self.host)
            .header("X-Forwarded-Uri", self.uri)
            .header("X-Forwarded-For", "203.0.113.7")
            .header("X-Forwarded-Port", "80")
            // The client's own headers travel along.
            .header("Accept", "text/html,application/xhtml+xml")
            .header("User-Agent", "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0");
        if let Some(cookie) = &self.cookie {
            req = req.header(COOKIE, cookie);
        }
        req.send().await.unwrap()
    }
}

/// The identity headers of an answer, by name.
fn identity(res: &reqwest::Response) -> Vec<(String, String)> {
    let mut found: Vec<(String, String)> = res
        .headers()
        .iter()
        .filter(|(name, _)| name.as_str().starts_with("remote-"))
        .map(|(name, value)| (name.as_str().to_owned(), value.to_str().unwrap().to_owned()))
        .collect();
    found.sort();
    found
}

#[tokio::test]
async fn traefik_forward_auth_protocol() {
    // No Traefik listens on the site's port; it only appears in the portal URL and the hosts.
    let site = Site::start(super::process::free_port()).await;
    let mut files = vec![("traefik.yml".to_owned(), example("traefik.yml"))];
    substitute(&mut files, &site.upstreams());
    let config = dynamic_config(&files[0].1);
    let address = config["http"]["middlewares"]["sessiond"]["forwardAuth"]["address"].as_str().unwrap().to_owned();
    let client = &site.sessiond().client;
    let host_a = format!("a.example.test:{}", site.port);
    let original = format!("http://{host_a}/private/report?year=2026&q=a%20b");
    let request = |method, uri, cookie: Option<String>| Forwarded { method, host: host_a.clone(), uri, cookie };

    // A browser without a session: 302 to the portal, with the whole original URL as `rd`,
    // which Traefik hands to the browser unchanged.
    let res = request("GET", "/private/report?year=2026&q=a%20b", None).send(client, &address).await;
    assert_eq!(res.status(), StatusCode::FOUND);
    let location = url::Url::parse(res.headers()[LOCATION].to_str().unwrap()).unwrap();
    assert_eq!(
        (location.scheme(), location.host_str(), location.port(), location.path()),
        ("http", Some("auth.example.test"), Some(site.port), "/login")
    );
    let rd: Vec<String> = location.query_pairs().filter(|(k, _)| k == "rd").map(|(_, v)| v.into_owned()).collect();
    assert_eq!(rd, [original.as_str()]);
    assert_eq!(res.headers()[CACHE_CONTROL], "no-store");
    assert!(res.headers().get(SET_COOKIE).is_none(), "Traefik would pass a cookie on to the browser");
    assert!(identity(&res).is_empty());
    assert_eq!(res.text().await.unwrap(), "", "Traefik sends the body to the client");

    // A script without a session (the original request is a POST): 401, nothing to follow.
    let res = request("POST", "/api/items", None).send(client, &address).await;
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    assert!(res.headers().get(LOCATION).is_none());

    // The public path passes with no identity; authResponseHeaders then removes whatever the
    // client sent under those names.
    let res = request("GET", "/public/terms.html", None).send(client, &address).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert!(identity(&res).is_empty(), "{:?}", identity(&res));
    // A query naming the public path does not make another path public.
    let res = request("GET", "/private?/public/", None).send(client, &address).await;
    assert_eq!(res.status(), StatusCode::FOUND);

    // Signed in: 200 with exactly the identity headers that authResponseHeaders lists.
    let cookie_name = &site.sessiond().cookie_name;
    let alice = site.sessiond().login(ALICE.0, ALICE.1).await;
    let alice_cookie = Some(format!("{cookie_name}={}", alice.token));
    let res = request("GET", "/private/report?year=2026", alice_cookie.clone()).send(client, &address).await;
    assert_eq!(res.status(), StatusCode::OK);
    let listed: Vec<String> = IDENTITY_HEADERS.iter().map(|h| h.to_ascii_lowercase()).collect();
    let sent = identity(&res);
    assert_eq!(sent.iter().map(|(k, _)| k.as_str()).collect::<Vec<_>>(), {
        let mut l: Vec<&str> = listed.iter().map(String::as_str).collect();
        l.sort_unstable();
        l
    });
    let value = |name: &str| sent.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str());
    assert_eq!(value("remote-user"), Some("alice"));
    assert_eq!(value("remote-groups"), Some("dev"));
    assert_eq!(value("remote-email"), Some("alice@example.test"));
    assert_eq!(value("remote-name"), Some("Alice Liddell"));
    assert!(res.headers().get(SET_COOKIE).is_none(), "Traefik would not pass it on anyway");
    // Any method of the original request, not only GET.
    let res = request("DELETE", "/api/items/7", alice_cookie.clone()).send(client, &address).await;
    assert_eq!(res.status(), StatusCode::OK);

    // The admins-only area: 403 for alice, 200 for ada, who is then named in the headers.
    let res = request("GET", "/admin/users", alice_cookie.clone()).send(client, &address).await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    let ada = site.sessiond().login(ADA.0, ADA.1).await;
    let res = request("GET", "/admin/users", Some(format!("{cookie_name}={}", ada.token))).send(client, &address).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.headers()["remote-groups"], "admins,dev");

    // A host no rule names is refused, session or not.
    let other = Forwarded { method: "GET", host: "c.example.test".into(), uri: "/", cookie: alice_cookie.clone() };
    assert_eq!(other.send(client, &address).await.status(), StatusCode::FORBIDDEN);

    // Without the headers Traefik always sends, nothing is decided in the caller's favour.
    let res = client.get(&address).header(COOKIE, alice_cookie.clone().unwrap()).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::FORBIDDEN);

    // Signed out: the cookie stops passing at once.
    let res =
        client.delete(site.sessiond().url("/api/v1/sessions/current")).bearer_auth(&alice.token).send().await.unwrap();
    assert!(res.status().is_success(), "{}", res.status());
    let res = request("GET", "/private/report?year=2026", alice_cookie).send(client, &address).await;
    assert_eq!(res.status(), StatusCode::FOUND);
}
