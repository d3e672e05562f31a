//! Signing in with an OpenID provider in headless Chromium, through nginx: open an application,
//! choose the provider on the portal's sign-in page, sign in at the provider (node
//! `oidc-provider`, on 127.0.0.1: another site than the portal's), and come back to the
//! application signed in as the provider's user. Once with the default `SameSite=Lax` cookies,
//! once with `SameSite=Strict`, whose journey cookie the browser does not send with the
//! provider's redirect back; the portal's reload page must get it sent.
//!
//! Screenshots: `target/e2e/oidc-<same_site>-*.png`.

use super::process::{Program, free_port, require};
use super::webdriver::ChromeDriver;
use super::{Site, nginx};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// A running OpenID provider; stopped when dropped.
struct Provider {
    issuer: String,
    _program: Program,
}

/// Starts `provider.mjs` (the one the server crate's OIDC tests use) for the portal's callback
/// `redirect_uri`; `None` (a loud skip, or a failure under `CI=true`) without Node.js or the
/// installed package.
async fn start_provider(dir: &Path, redirect_uri: &str) -> Option<Provider> {
    let node = require("Node.js", &["node", "/usr/bin/node"])?;
    let package = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../sessiond-server/tests/oidc-provider");
    if !package.join("node_modules/oidc-provider").exists() {
        let message = format!("oidc-provider not installed: run `npm ci --prefix {}`", package.display());
        assert!(std::env::var("CI").as_deref() != Ok("true"), "CI=true and {message}; .ci/run does it");
        eprintln!("SKIPPED: {message}");
        return None;
    }
    let mut cmd = std::process::Command::new(node);
    cmd.arg(package.join("provider.mjs"))
        .env("OIDC_CLIENT_ID", "sessiond")
        .env("OIDC_CLIENT_SECRET", "sessiond-test-secret")
        .env("OIDC_REDIRECT_URIS", redirect_uri);
    let log = dir.join("oidc-provider.log");
    let mut program = Program::spawn("oidc-provider", cmd, &log);
    let port = program.wait_for_ready_line(Duration::from_secs(30)).await;
    Some(Provider { issuer: format!("http://127.0.0.1:{port}"), _program: program })
}

#[tokio::test]
async fn a_person_signs_in_at_the_identity_provider_with_lax_and_with_strict_cookies() {
    for same_site in ["lax", "strict"] {
        let port = free_port();
        let provider_dir = tempfile::tempdir().unwrap();
        let callback = format!("http://auth.example.test:{port}/login/corp/callback");
        let Some(provider) = start_provider(provider_dir.path(), &callback).await else { return };
        let site = Site::start_with(port, |config| {
            *config = config.replacen(
                "      secure: false\n",
                &format!("      secure: false\n      same_site: {same_site}\n"),
                1,
            );
            config.push_str(&format!(
                "\nauthentication:\n  providers:\n    - id: corp\n      kind: oidc\n      label: Corp SSO\n      \
                 issuer: {}\n      client_id: sessiond\n      client_secret: sessiond-test-secret\n      \
                 scopes: [openid, profile, email, groups]\n",
                provider.issuer
            ));
        })
        .await;
        let Some(_nginx) = nginx::start(&site).await else { return };
        let Some(driver) = ChromeDriver::start(site.dir.path()).await else { return };
        let alice = driver.browser(&site.dir.path().join("profile"), &format!("oidc-{same_site}")).await;

        // The application sends her to the portal, which offers the provider.
        let app = site.url("a", "/private/report");
        alice.goto(&app).await;
        alice
            .wait_for_url("the sign-in page", |u| u.host_str() == Some("auth.example.test") && u.path() == "/login")
            .await;
        assert!(alice.text().await.contains("Corp SSO"), "the provider's button");
        alice.screenshot("01-sign-in").await;
        alice.click("a[href^='/login/corp']").await;

        // At the provider, on its own site.
        let at_provider = alice
            .wait_for_url("the provider's sign-in", |u| {
                u.host_str() == Some("127.0.0.1") && u.path().starts_with("/interaction/")
            })
            .await;
        assert_eq!(at_provider.port().map(|p| p.to_string()), provider.issuer.rsplit(':').next().map(str::to_owned));
        alice.screenshot("02-provider").await;
        alice.fill("#user", "alice").await;
        alice.click("button[type=submit]").await;

        // Back at the application, signed in as the provider's user, with its groups.
        alice.wait_for_url("the application", |u| u.as_str() == app).await;
        let text = alice.text().await;
        assert!(text.contains("Remote-User: corp:alice"), "{same_site}: {text}");
        assert!(text.contains("Remote-Groups: dev,ops"), "{same_site}: {text}");
        assert!(text.contains("Remote-Email: alice@example.com"), "{same_site}: {text}");
        alice.screenshot("03-app").await;

        // The account page knows her by the provider's name.
        alice.goto(&site.url("auth", "/")).await;
        assert_eq!(alice.title().await, "Your account · sessiond");
        assert!(alice.text().await.contains("corp:alice"), "{same_site}");
        alice.screenshot("04-account").await;
    }
}
