//! Signing in with a SAML identity provider in headless Chromium, through nginx: open an
//! application, choose the provider on the portal, sign in at the identity provider (pysaml2, on
//! 127.0.0.1: another site than the portal's), whose page posts the response back; the portal's
//! continue page must post it again from its own site (its one hashed line of script running
//! under its Content-Security-Policy) so that the `SameSite=Lax` journey cookie comes along.
//!
//! Screenshots: `target/e2e/saml-*.png`.

use super::process::{Program, free_port, require};
use super::webdriver::ChromeDriver;
use super::{Site, nginx};
use std::path::PathBuf;
use std::time::Duration;

#[tokio::test]
async fn a_person_signs_in_at_the_saml_identity_provider() {
    let Some(python) = require("Python 3", &["python3"]) else { return };
    if require("xmlsec1", &["xmlsec1"]).is_none() {
        return;
    }
    let has_saml2 =
        std::process::Command::new(&python).args(["-c", "import saml2"]).status().is_ok_and(|s| s.success());
    if !has_saml2 {
        assert!(std::env::var("CI").as_deref() != Ok("true"), "CI=true and pysaml2 not installed; .ci/run does it");
        eprintln!("SKIPPED: pysaml2 not installed: run `pip install pysaml2`");
        return;
    }
    let idp_dir = tempfile::tempdir().unwrap();
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../sessiond-server/tests/saml-idp/idp.py");
    let mut cmd = std::process::Command::new(&python);
    cmd.arg(script).arg(idp_dir.path());
    let log = idp_dir.path().join("idp.log");
    let mut idp = Program::spawn("saml idp", cmd, &log);
    idp.wait_for_ready_line(Duration::from_secs(60)).await;
    let metadata = idp_dir.path().join("idp-metadata.xml");

    let port = free_port();
    let site = Site::start_with(port, |config| {
        config.push_str(&format!(
            "\nauthentication:\n  providers:\n    - id: corp\n      kind: saml\n      label: Corp SAML\n      \
             idp_metadata_file: {}\n",
            metadata.display()
        ));
    })
    .await;
    let Some(_nginx) = nginx::start(&site).await else { return };
    // The identity provider learns sessiond's metadata, as an administrator registers it.
    let sp = site.client.get(site.url("auth", "/login/corp/metadata")).send().await.unwrap();
    assert_eq!(sp.status(), 200);
    std::fs::write(idp_dir.path().join("sp-metadata.xml"), sp.text().await.unwrap()).unwrap();
    let Some(driver) = ChromeDriver::start(site.dir.path()).await else { return };
    let alice = driver.browser(&site.dir.path().join("profile"), "saml").await;

    let app = site.url("a", "/private/report");
    alice.goto(&app).await;
    alice.wait_for_url("the sign-in page", |u| u.host_str() == Some("auth.example.test") && u.path() == "/login").await;
    alice.click("a[href^='/login/corp']").await;
    alice
        .wait_for_url("the identity provider", |u| u.host_str() == Some("127.0.0.1") && u.path() == "/sso/redirect")
        .await;
    alice.screenshot("01-idp").await;
    alice.fill("#user", "alice").await;
    alice.click("button[type=submit]").await;

    // pysaml2's page posts to the ACS by script; the portal's continue page posts it again.
    alice.wait_for_url("the application", |u| u.as_str() == app).await;
    let text = alice.text().await;
    assert!(text.contains("Remote-User: corp:alice"), "{text}");
    assert!(text.contains("Remote-Groups: dev,ops"), "{text}");
    alice.screenshot("02-app").await;
}
