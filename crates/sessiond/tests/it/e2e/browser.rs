//! A person's whole journey in headless Chromium, through nginx: open an application, land on
//! the portal, mistype the password, sign in, reach the application, look at the account page,
//! and be signed out by an administrator from another browser.
//!
//! Every page is saved as a screenshot under `target/e2e/` (`alice-01-sign-in.png`, …), to be
//! looked at: the pages must look finished.

use super::process::free_port;
use super::webdriver::{Browser, ChromeDriver};
use super::{ADA, ALICE, Site, nginx};

/// The sign-in form's submit button.
const SUBMIT: &str = "form[action='/login'] button[type=submit]";

/// Fills in and sends the sign-in form.
async fn sign_in(browser: &Browser, user: &str, password: &str) {
    browser.fill("#username", user).await;
    browser.fill("#password", password).await;
    browser.submit(SUBMIT).await;
    // The portal's answer to a form it considers sent from elsewhere.
    let refused = browser.title().await == "Request refused · sessiond";
    assert!(!refused, "the portal refused its own sign-in form as cross-site, at {}", browser.url().await);
}

#[tokio::test]
async fn a_person_signs_in_once_and_is_signed_out_from_another_browser() {
    let site = Site::start(free_port()).await;
    let Some(_nginx) = nginx::start(&site).await else { return };
    let Some(driver) = ChromeDriver::start(site.dir.path()).await else { return };
    let alice = driver.browser(&site.dir.path().join("profile-alice"), "alice").await;

    // Opening the application lands on the portal's sign-in page, which knows the way back.
    let app = site.url("a", "/private/report");
    alice.goto(&app).await;
    let login = alice
        .wait_for_url("the sign-in page", |u| u.host_str() == Some("auth.example.test") && u.path() == "/login")
        .await;
    let rd: Vec<_> = login.query_pairs().filter(|(k, _)| k == "rd").map(|(_, v)| v.into_owned()).collect();
    assert_eq!(rd, [app.as_str()], "{login}");
    assert_eq!(alice.title().await, "Sign in · sessiond");
    assert!(alice.has("label[for=username]").await && alice.has("label[for=password]").await, "labelled fields");
    assert!(alice.has("input#remember_me").await, "remember me is offered by default");
    alice.screenshot("01-sign-in").await;

    // A wrong password: back on the form, told so once, still on the way to the application.
    sign_in(&alice, ALICE.0, "not her password").await;
    let failed = alice.wait_for_url("the form again", |u| u.path() == "/login").await;
    assert_eq!(alice.text_of("[role=alert]").await, "Incorrect username or password.");
    assert!(failed.query_pairs().any(|(k, v)| k == "rd" && v == app.as_str()), "{failed}");
    alice.screenshot("02-wrong-password").await;

    // The right password: straight to the application, which learns who she is.
    sign_in(&alice, ALICE.0, ALICE.1).await;
    alice.wait_for_url("the application", |u| u.as_str() == app).await;
    let text = alice.text().await;
    assert!(text.contains("Application a") && text.contains("Remote-User: alice"), "{text}");
    assert!(text.contains("Remote-Groups: dev"), "{text}");
    alice.screenshot("03-app-a").await;

    // The other application of the domain: no second sign-in.
    alice.goto(&site.url("b", "/")).await;
    let text = alice.text().await;
    assert!(text.contains("Application b") && text.contains("Remote-User: alice"), "{text}");
    alice.screenshot("04-app-b").await;

    // The account page shows this session, on this device.
    alice.goto(&site.url("auth", "/")).await;
    assert_eq!(alice.title().await, "Your account · sessiond");
    let sessions = alice.text_of("table.sessions").await;
    assert!(sessions.contains("This device"), "{sessions}");
    assert!(sessions.contains("Chrome"), "the browser is named: {sessions}");
    assert!(sessions.contains("127.0.0.1"), "{sessions}");
    alice.screenshot("05-account").await;
    // The same page on a phone: nothing cut off, nothing overlapping.
    alice.resize(390, 844).await;
    alice.screenshot("05-account-narrow").await;
    alice.resize(1280, 900).await;
    alice.goto(&app).await;

    // Another browser: an administrator signs in and ends alice's sessions.
    let ada = driver.browser(&site.dir.path().join("profile-ada"), "ada").await;
    ada.goto(&site.url("auth", "/login")).await;
    assert!(!ada.has("[role=alert]").await, "a fresh browser sees no message");
    sign_in(&ada, ADA.0, ADA.1).await;
    ada.wait_for_url("the account page", |u| u.host_str() == Some("auth.example.test") && u.path() == "/").await;
    assert!(ada.has("a[href='/admin']").await, "administrators see the way to the admin page");
    ada.screenshot("06-account").await;
    ada.goto(&site.url("auth", "/admin?user=alice")).await;
    assert_eq!(ada.title().await, "Administration · sessiond");
    let sessions = ada.text_of("table.sessions").await;
    assert!(sessions.contains("Chrome") && !sessions.contains("This device"), "{sessions}");
    ada.screenshot("07-admin-lookup").await;
    ada.submit("form[action='/admin/revoke-all'] button").await;
    ada.wait_for_url("the admin page again", |u| u.path() == "/admin").await;
    let text = ada.text().await;
    assert!(text.contains("No live sessions."), "{text}");
    ada.screenshot("08-admin-signed-out").await;

    // alice reloads the application: back to the sign-in page, told why.
    alice.refresh().await;
    alice.wait_for_url("the sign-in page", |u| u.host_str() == Some("auth.example.test") && u.path() == "/login").await;
    assert_eq!(alice.text_of("[role=alert]").await, "Your session has ended. Please sign in again.");
    alice.screenshot("09-signed-out").await;

    // ada's own session is untouched.
    ada.goto(&site.url("b", "/")).await;
    assert!(ada.text().await.contains("Remote-User: ada"));
}

/// The current TOTP code of the key shown on the enrollment page, `ahead` steps from now.
fn code_of(key: &str, ahead: u64) -> (String, u64) {
    let secret = sessiond_core::totp::TotpSecret::from_base32(key).expect("the page shows a base32 key");
    // The authenticator app reads the real clock, and so does the server.
    let now = sessiond_server::clock::Clock::now(&sessiond_server::clock::SystemClock);
    let counter = sessiond_core::totp::counter_at(now) + ahead;
    (sessiond_core::totp::code_at(&secret, counter), counter)
}

#[tokio::test]
async fn a_person_sets_up_an_authenticator_app_and_signs_in_with_a_code() {
    let site = Site::start(free_port()).await;
    let Some(_nginx) = nginx::start(&site).await else { return };
    let Some(driver) = ChromeDriver::start(site.dir.path()).await else { return };
    let alice = driver.browser(&site.dir.path().join("profile-alice-totp"), "alice-totp").await;
    let secure = site.url("a", "/secure/vault");

    // Signed in with the password, the two_factor area sends her to set up a second factor.
    alice.goto(&site.url("a", "/private/")).await;
    alice.wait_for_url("the sign-in page", |u| u.path() == "/login").await;
    sign_in(&alice, ALICE.0, ALICE.1).await;
    alice.wait_for_url("the application", |u| u.host_str() == Some("a.example.test")).await;
    alice.goto(&secure).await;
    alice
        .wait_for_url("the two-factor page", |u| u.host_str() == Some("auth.example.test") && u.path() == "/totp")
        .await;
    assert_eq!(
        alice.text_of("[role=alert]").await,
        "This page needs a second factor. Set up an authenticator app first."
    );
    alice.screenshot("10-totp-needed").await;

    // Setting one up: a QR code, the key for manual entry, and a code to confirm.
    alice.click("form[action='/totp/enroll'] button").await;
    alice.wait_for_url("the enrollment page", |u| u.path() == "/totp/enroll").await;
    assert!(alice.has("figure.qr svg").await, "a QR code");
    let key = alice.text_of("#totp-secret").await;
    alice.screenshot("11-totp-enroll").await;
    let (code, _) = code_of(&key, 0);
    alice.fill("#code", &code).await;
    alice.click("form[action='/totp/confirm'] button").await;
    alice.wait_for_url("the two-factor page", |u| u.path() == "/totp").await;
    assert!(alice.text_of("[role=status]").await.contains("Your authenticator app is set up"));
    alice.screenshot("12-totp-enrolled").await;

    // The two_factor area now asks for a code (step-up through nginx), then lets her in.
    alice.goto(&secure).await;
    alice.wait_for_url("the code form", |u| u.path() == "/login/totp").await;
    assert_eq!(alice.title().await, "Verification code · sessiond");
    alice.screenshot("13-step-up").await;
    alice.fill("#code", &code).await;
    alice.submit("form[action='/login/totp'] button").await;
    alice.wait_for_url("the code form again", |u| u.path() == "/login/totp").await;
    assert!(alice.text_of("[role=alert]").await.contains("already used"), "a code passes once");
    // The next step's code is within the ±30 s window already.
    let (next, used) = code_of(&key, 1);
    alice.fill("#code", &next).await;
    alice.click("form[action='/login/totp'] button").await;
    alice.wait_for_url("the secure area", |u| u.as_str() == secure).await;
    assert!(alice.text().await.contains("Remote-User: alice"));
    alice.screenshot("14-secure").await;

    // Signed out and in again: the password, then a code, then straight back to the area.
    alice.goto(&site.url("auth", "/")).await;
    alice.click("form[action='/logout'] button").await;
    alice.wait_for_url("signed out", |u| u.path() == "/login").await;
    alice.goto(&secure).await;
    alice.wait_for_url("the sign-in page", |u| u.path() == "/login").await;
    sign_in(&alice, ALICE.0, ALICE.1).await;
    alice.wait_for_url("the code form", |u| u.path() == "/login/totp").await;
    // Codes up to `used` are spent; wait until the step after it is within the ±30 s window.
    loop {
        let (_, now) = code_of(&key, 0);
        if now + 1 > used {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    }
    let (code, _) = code_of(&key, 1);
    alice.fill("#code", &code).await;
    alice.click("form[action='/login/totp'] button").await;
    alice.wait_for_url("the secure area", |u| u.as_str() == secure).await;
    assert!(alice.text().await.contains("Remote-User: alice"));
}
