//! SAML 2.0 sign-in against a real identity provider: pysaml2's `Server`, started per test by
//! `tests/saml-idp/idp.py` on a free loopback port (HTTP-Redirect single sign-on, HTTP-POST
//! responses, assertions signed with xmlsec1). The browser is played by the test: it follows
//! sessiond's redirect to the identity provider, signs in there, and posts the identity
//! provider's form back, then the portal's continue page, as a browser would. Without Python's
//! `saml2` or xmlsec1 the tests skip loudly, and fail under `CI=true` (.ci/run installs both).

use crate::metrics::scrape;
use crate::portal::{AUTHN, Jar, assert_sign_in_refused, current_session, get, location, login_refusals, post_form};
use crate::support::*;
use serde_json::json;
use sessiond_core::provider::{Provider, SamlProvider};
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;
use url::Url;

/// The assertion consumer service of provider `corp` under the test server's portal URL.
const ACS: &str = "http://127.0.0.1/login/corp/acs";

/// A running identity provider; stopped when dropped.
struct Idp {
    _program: ReadyProgram,
    dir: tempfile::TempDir,
}

impl Idp {
    async fn start() -> Option<Self> {
        let on_path = std::env::var_os("PATH")
            .and_then(|paths| std::env::split_paths(&paths).map(|d| d.join("python3")).find(|p| p.exists()));
        let python = match on_path {
            Some(python) => python,
            None => require("Python 3", "/usr/bin/python3")?,
        };
        require("xmlsec1", "/usr/bin/xmlsec1")?;
        let has_saml2 = Command::new(&python).args(["-c", "import saml2"]).status().is_ok_and(|s| s.success());
        if !has_saml2 {
            let message = "pysaml2 not installed: run `pip install pysaml2`";
            assert!(std::env::var("CI").as_deref() != Ok("true"), "CI=true and {message}; .ci/run does it");
            eprintln!("SKIPPED: {message}");
            return None;
        }
        let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/saml-idp/idp.py");
        let dir = tempfile::tempdir().unwrap();
        let mut cmd = Command::new(python);
        cmd.arg(script).arg(dir.path());
        let program = ReadyProgram::start(cmd, "the identity provider", Duration::from_secs(60)).await;
        Some(Self { _program: program, dir })
    }

    fn provider(&self) -> SamlProvider {
        let mut p = SamlProvider::new("corp", self.dir.path().join("idp-metadata.xml"));
        p.label = "Corp SAML".into();
        p
    }

    /// Hands the identity provider sessiond's metadata, as an administrator registers it.
    async fn register(&self, s: &TestServer) {
        let res = s.client.get(s.url("/login/corp/metadata")).send().await.unwrap();
        assert_eq!(res.status(), 200);
        std::fs::write(self.dir.path().join("sp-metadata.xml"), res.text().await.unwrap()).unwrap();
    }
}

async fn server_for(idp: &Idp, provider: SamlProvider) -> TestServer {
    let s = TestServer::with(Options { providers: vec![Provider::Saml(provider)], ..Options::default() }).await;
    idp.register(&s).await;
    s
}

/// A sign-in started at sessiond: the browser's cookies there and the single sign-on URL.
struct Started {
    jar: Jar,
    sso: Url,
}

async fn start(s: &TestServer) -> Started {
    let mut jar = Jar::default();
    let res = get(s, &mut jar, "/login/corp").await;
    assert_eq!(res.status(), 303);
    let sso = Url::parse(location(&res)).unwrap();
    assert!(jar.get(AUTHN).is_some(), "the journey cookie is set");
    Started { jar, sso }
}

/// Signs `user` in at the identity provider with `sign` (see idp.py); answers the
/// `SAMLResponse` of its form, after checking the form posts to the ACS.
async fn sign_in_at_idp(sso: &Url, user: &str, sign: &str) -> String {
    let mut url = sso.clone();
    url.query_pairs_mut().append_pair("user", user).append_pair("sign", sign);
    let res = reqwest::get(url).await.unwrap();
    let status = res.status();
    let html = res.text().await.unwrap();
    assert_eq!(status, 200, "{html}");
    assert!(html.contains(&format!("action=\"{ACS}\"")), "the form posts to the ACS: {html}");
    hidden(&html, "SAMLResponse")
}

/// The value of the hidden input `name` of a page.
fn hidden(html: &str, name: &str) -> String {
    let at = html.find(&format!("name=\"{name}\"")).unwrap_or_else(|| panic!("no {name} in {html}"));
    let value = &html[at..];
    let start = value.find("value=\"").unwrap() + "value=\"".len();
    let raw = &value[start..start + value[start..].find('"').unwrap()];
    raw.replace("&#43;", "+").replace("&#x2B;", "+").replace("&#61;", "=").replace("&#x3D;", "=").replace("&#47;", "/")
}

/// Posts the identity provider's response as the browser does: first from the identity
/// provider's form (no cookie comes), then from the portal's continue page with `jar`.
async fn post_back(s: &TestServer, jar: &mut Jar, response: &str) -> reqwest::Response {
    let res = post_form(s, &mut Jar::default(), "/login/corp/acs", &[("SAMLResponse", response)]).await;
    assert_eq!(res.status(), 200, "the continue page");
    let csp = res.headers()["content-security-policy"].to_str().unwrap().to_owned();
    assert!(csp.contains("script-src 'sha256-") && !csp.contains("unsafe-inline"), "{csp}");
    let html = res.text().await.unwrap();
    assert_eq!(hidden(&html, "SAMLResponse"), response, "the same response, posted again");
    post_form(s, jar, "/login/corp/acs", &[("SAMLResponse", response), ("same_site", "1")]).await
}

#[tokio::test]
async fn a_user_of_the_identity_provider_signs_in_with_a_signed_assertion() {
    let Some(idp) = Idp::start().await else { return };
    let s = server_for(&idp, idp.provider()).await;
    let html = crate::portal::get_page(&s, &mut Jar::default(), "/login").await;
    assert!(html.contains("href=\"/login/corp\"") && html.contains("Corp SAML"), "the portal offers it");

    let mut started = start(&s).await;
    assert!(started.sso.as_str().contains("/sso/redirect?SAMLRequest="), "{}", started.sso);
    let response = sign_in_at_idp(&started.sso, "alice", "assertion").await;
    let res = post_back(&s, &mut started.jar, &response).await;
    assert_eq!((res.status().as_u16(), location(&res)), (303, "/"), "{:?}", login_refusals(&s));
    assert_eq!(started.jar.get(AUTHN), None, "the journey ended");
    let session = current_session(&s, &started.jar).await["session"].clone();
    assert_eq!(session["user"], "corp:alice", "the NameID, under the provider's id");
    assert_eq!(session["amr"], json!(["saml"]));
    assert_eq!(session["groups"], json!(["dev", "ops"]));
    assert_eq!(session["email"], "alice@example.org");
    assert_eq!(session["display_name"], "Alice Liddell");
    let metrics = scrape(&s).await;
    assert_eq!(metrics.value("sessiond_logins_total", &[("provider", "saml"), ("result", "success")]), 1.0);

    // The same response again, in a new sign-in of the same browser: not this sign-in's.
    let mut again = start(&s).await;
    let res = post_back(&s, &mut again.jar, &response).await;
    assert_sign_in_refused(&res, &again.jar);
    assert_eq!(login_refusals(&s), ["saml_not_this_sign_in"]);
}

#[tokio::test]
async fn the_metadata_names_the_acs_and_wants_signed_assertions() {
    let Some(idp) = Idp::start().await else { return };
    let s = server_for(&idp, idp.provider()).await;
    let res = s.client.get(s.url("/login/corp/metadata")).send().await.unwrap();
    assert_eq!(res.headers()["content-type"], "application/samlmetadata+xml");
    let xml = res.text().await.unwrap();
    assert!(xml.contains("entityID=\"http://127.0.0.1/login/corp/metadata\""), "{xml}");
    assert!(xml.contains(&format!("Location=\"{ACS}\"")), "{xml}");
    assert!(xml.contains("urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST"), "{xml}");
    assert!(xml.contains("WantAssertionsSigned=\"true\""), "{xml}");
    assert!(!xml.contains("SingleLogoutService"), "no logout service is offered: {xml}");
    let res = s.client.get(s.url("/login/nobody/metadata")).send().await.unwrap();
    assert_eq!(res.status(), 404);
}

#[tokio::test]
async fn unsigned_sha1_strangers_and_misaddressed_assertions_are_refused() {
    let Some(idp) = Idp::start().await else { return };
    let s = server_for(&idp, idp.provider()).await;
    for (sign, reason) in [
        ("none", "saml_signature_invalid"),
        ("stranger", "saml_signature_invalid"),
        ("sha1", "saml_signature_invalid"),
        ("audience", "saml_audience_mismatch"),
        ("response", "saml_assertion_unsigned"),
    ] {
        let mut started = start(&s).await;
        let response = sign_in_at_idp(&started.sso, "alice", sign).await;
        let res = post_back(&s, &mut started.jar, &response).await;
        assert_sign_in_refused(&res, &started.jar);
        assert_eq!(login_refusals(&s).last().map(String::as_str), Some(reason), "{sign}");
    }
}

#[tokio::test]
async fn a_tampered_assertion_is_refused() {
    use base64::Engine as _;
    let Some(idp) = Idp::start().await else { return };
    let s = server_for(&idp, idp.provider()).await;
    let mut started = start(&s).await;
    let response = sign_in_at_idp(&started.sso, "bob", "assertion").await;
    let engine = base64::engine::general_purpose::STANDARD;
    let xml = String::from_utf8(engine.decode(&response).unwrap()).unwrap();
    assert!(xml.contains(">bob</"), "{xml}");
    let tampered = engine.encode(xml.replace(">bob</", ">alice</"));
    let res = post_back(&s, &mut started.jar, &tampered).await;
    assert_sign_in_refused(&res, &started.jar);
    assert_eq!(login_refusals(&s), ["saml_signature_invalid"]);
}

#[tokio::test]
async fn a_response_planted_in_another_browser_signs_nobody_in() {
    let Some(idp) = Idp::start().await else { return };
    let s = server_for(&idp, idp.provider()).await;
    // The attacker's own sign-in, whose response is posted into the victim's browser.
    let attacker = start(&s).await;
    let response = sign_in_at_idp(&attacker.sso, "bob", "assertion").await;
    let mut victim = start(&s).await;
    let res = post_back(&s, &mut victim.jar, &response).await;
    assert_sign_in_refused(&res, &victim.jar);
    // A browser with no sign-in at all.
    let res =
        post_form(&s, &mut Jar::default(), "/login/corp/acs", &[("SAMLResponse", &response), ("same_site", "1")]).await;
    assert_eq!((res.status().as_u16(), location(&res)), (303, "/login"));
    assert_eq!(login_refusals(&s), ["saml_not_this_sign_in", "saml_no_journey"]);
    // Garbage and nothing.
    for body in [vec![("SAMLResponse", "not base64!"), ("same_site", "1")], vec![("same_site", "1")]] {
        let mut started = start(&s).await;
        let res = post_form(&s, &mut started.jar, "/login/corp/acs", &body).await;
        assert_eq!((res.status().as_u16(), location(&res)), (303, "/login"));
        assert_eq!(started.jar.get(COOKIE), None);
    }
    let last: Vec<String> = login_refusals(&s).into_iter().skip(2).collect();
    assert_eq!(last, ["saml_response_invalid", "saml_bad_post"]);
}

#[tokio::test]
async fn attributes_name_the_user_when_configured_and_one_without_signs_nobody_in() {
    let Some(idp) = Idp::start().await else { return };
    let mut provider = idp.provider();
    provider.claims.username = "uid".into();
    let s = server_for(&idp, provider).await;
    let mut started = start(&s).await;
    let response = sign_in_at_idp(&started.sso, "bob", "assertion").await;
    let res = post_back(&s, &mut started.jar, &response).await;
    assert_eq!(location(&res), "/");
    let session = current_session(&s, &started.jar).await["session"].clone();
    assert_eq!(session["user"], "corp:bob");
    assert_eq!(session["groups"], json!([]));

    let mut provider = idp.provider();
    provider.claims.username = "employeeNumber".into();
    let s = server_for(&idp, provider).await;
    let mut started = start(&s).await;
    let response = sign_in_at_idp(&started.sso, "alice", "assertion").await;
    let res = post_back(&s, &mut started.jar, &response).await;
    assert_sign_in_refused(&res, &started.jar);
    assert_eq!(login_refusals(&s), ["saml_no_username"]);
    // The API cannot sign in with it: that needs the browser.
    let res = s.client.post(s.url("/api/v1/authenticate?journey=corp")).send().await.unwrap();
    assert_eq!(res.status(), 400);
}
