//! `sessiond config check` and configuration errors: the effective configuration never shows the
//! secret, every refusal names its key, `serve` refuses what `config check` refuses, and the
//! environment overrides the file.

use crate::support::*;
use std::path::Path;
use std::time::Duration;

const SECRET: &str = "correct-horse-battery-staple-0123456789-abcdef";

#[tokio::test]
async fn config_check_shows_the_effective_config_but_never_the_secret() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("sessiond.yml"),
        format!("secret: {SECRET:?}\nrealms:\n  main:\n    inactivity: 7m\n"),
    )
    .unwrap();

    let text = sessiond(dir.path(), &["config", "check"]).await;
    let out = text.ok();
    assert!(!out.contains(SECRET) && !text.stderr.contains(SECRET), "secret leaked: {out}");
    assert!(out.contains("[redacted]"), "{out}");
    assert!(out.contains("inactivity: 7m"), "{out}");
    assert!(out.contains("expiration: 1h"), "defaults are shown too: {out}");

    let json = sessiond(dir.path(), &["config", "check", "--json"]).await;
    assert!(!json.stdout.contains(SECRET) && !json.stderr.contains(SECRET), "secret leaked: {}", json.stdout);
    let value = json.json();
    assert_eq!(value["secret"], "[redacted]");
    assert_eq!(value["realms"]["main"]["inactivity"], "7m");
    assert_eq!(value["storage"]["kind"], "embedded");
    assert_eq!(value["server"]["listen"], "127.0.0.1:8470", "the documented default");

    // The `_file` twin: its content is as secret as the key itself.
    std::fs::write(dir.path().join("secret.txt"), format!("{SECRET}\n")).unwrap();
    std::fs::write(dir.path().join("other.yml"), "secret_file: secret.txt\n").unwrap();
    let twin = sessiond(dir.path(), &["--json", "config", "check", "--config", "other.yml"]).await;
    assert!(!twin.stdout.contains(SECRET), "secret leaked: {}", twin.stdout);
    assert_eq!(twin.json()["secret"], "[redacted]");

    assert!(!dir.path().join("sessiond-data").exists(), "config check creates nothing");
}

#[tokio::test]
async fn zero_config_check_shows_the_documented_defaults() {
    let dir = tempfile::tempdir().unwrap();
    let value = sessiond(dir.path(), &["config", "check", "--json"]).await.json();
    let main = &value["realms"]["main"];
    assert_eq!(main["expiration"], "1h");
    assert_eq!(main["inactivity"], "5m");
    assert_eq!(main["remember_me"], "1M");
    assert_eq!(main["cookie"]["same_site"], "lax");
    assert_eq!(main["cookie"]["secure"], false, "plain http on 127.0.0.1 needs no Secure");
    assert_eq!(value["regulation"]["max_retries"], 3);
    assert_eq!(value["secret"], serde_json::Value::Null, "no secret configured: one is generated at first serve");
}

/// Configurations that must be refused, the key each refusal must name, and further words.
const BAD: &[(&str, &str, &[&str])] = &[
    ("realms:\n  main:\n    inactivty: 5m\n", "realms.main.inactivty", &["realms.main.inactivity"]),
    ("realms:\n  main:\n    inactivity: 5x\n", "realms.main.inactivity", &["5x"]),
    ("secret: \"short-secret\"\n", "secret", &["32"]),
    (
        "realms:\n  main:\n    domain: co.uk\n    portal_url: \"https://login.example.co.uk/\"\n",
        "realms.main.domain",
        &["public suffix"],
    ),
    ("realms:\n  main:\n    cookie:\n      same_site: none\n", "realms.main.cookie.same_site", &["secure"]),
    ("server:\n  listen: \"not-an-address\"\n", "server.listen", &["not-an-address"]),
    ("storage:\n  kind: floppy\n", "storage.kind", &["floppy"]),
    (
        "authentication:\n  providers:\n    - {id: corp, kind: ldap, url: 'ldaps://dir', start_tls: true, bind_dn: 'cn=s', bind_password: x, base_dn: 'o=x'}\n",
        "authentication.providers[0].start_tls",
        &["ldaps://"],
    ),
    ("authentication:\n  refresh_interval: 1s\n", "authentication.refresh_interval", &["at least 10s"]),
];

async fn serve_refuses(dir: &Path, key: &str) {
    // Should the configuration be taken after all, the server listens on a free port; the
    // environment would override a bad `server.listen`, though.
    let env: &[(&str, &str)] =
        if key == "server.listen" { &[] } else { &[("SESSIOND__SERVER__LISTEN", "127.0.0.1:0")] };
    let run = tokio::time::timeout(Duration::from_secs(20), sessiond_with(dir, &["serve"], None, env))
        .await
        .unwrap_or_else(|_| panic!("serve started with a config that check refuses ({key})"));
    run.fails(1, &[key]);
    assert!(!run.stdout.contains("listening on"), "serve listened despite {key}: {}", run.stdout);
}

#[tokio::test]
async fn bad_configs_are_refused_naming_the_key_by_check_and_by_serve() {
    for (yaml, key, words) in BAD {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("sessiond.yml"), yaml).unwrap();
        let check = sessiond(dir.path(), &["config", "check"]).await;
        let mut needles = vec![*key];
        needles.extend_from_slice(words);
        check.fails(1, &needles);
        assert!(check.stdout.is_empty(), "nothing printed for a refused config: {}", check.stdout);
        serve_refuses(dir.path(), key).await;
    }
}

#[tokio::test]
async fn a_refused_secret_is_not_quoted_back() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("sessiond.yml"), "secret: \"hunter2-hunter2\"\n").unwrap();
    let check = sessiond(dir.path(), &["config", "check"]).await;
    check.fails(1, &["secret"]);
    assert!(!check.stderr.contains("hunter2"), "the refused secret is echoed: {}", check.stderr);
}

#[tokio::test]
async fn the_environment_overrides_the_file() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("sessiond.yml"), "realms:\n  main:\n    inactivity: 7m\n").unwrap();
    let env = [("SESSIOND__REALMS__MAIN__INACTIVITY", "10m")];
    let run = sessiond_with(dir.path(), &["config", "check", "--json"], None, &env).await;
    assert_eq!(run.json()["realms"]["main"]["inactivity"], "10m");
    let text = sessiond_with(dir.path(), &["config", "check"], None, &env).await;
    assert!(text.ok().contains("inactivity: 10m"), "{}", text.stdout);

    // A bad value from the environment names the key and the variable that set it.
    let env = [("SESSIOND__REALMS__MAIN__INACTIVITY", "5x")];
    let run = sessiond_with(dir.path(), &["config", "check"], None, &env).await;
    run.fails(1, &["realms.main.inactivity", "SESSIOND__REALMS__MAIN__INACTIVITY"]);

    // A variable that names no key is a typo, not something to ignore.
    let env = [("SESSIOND__SERVER__LISTN", "127.0.0.1:1")];
    let run = sessiond_with(dir.path(), &["config", "check"], None, &env).await;
    run.fails(1, &["SESSIOND__SERVER__LISTN"]);
}

#[tokio::test]
async fn the_config_flag_is_global_and_a_missing_file_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("mine.yml"), "realms:\n  main:\n    expiration: 2h\n").unwrap();
    for args in
        [["--config", "mine.yml", "config", "check", "--json"], ["config", "check", "--config", "mine.yml", "--json"]]
    {
        let run = sessiond(dir.path(), &args).await;
        assert_eq!(run.json()["realms"]["main"]["expiration"], "2h", "{args:?}");
    }
    let missing = sessiond(dir.path(), &["config", "check", "--config", "nowhere.yml"]).await;
    missing.fails(1, &["nowhere.yml"]);
}

#[tokio::test]
async fn usage_errors_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    for args in [
        &["frobnicate"][..],
        &["config"],
        &["config", "check", "--bogus"],
        &["sessions", "revoke"],
        &["sessions", "revoke", "AAAAAAAAAAAAAAAAAAAAAA", "--user", "alice"],
        &["users", "add"],
        &[],
    ] {
        let run = sessiond(dir.path(), args).await;
        assert_eq!(run.code, 2, "{args:?}: stdout {} stderr {}", run.stdout, run.stderr);
        assert!(!run.stderr.is_empty(), "{args:?}: a usage error explains itself");
    }
    let help = sessiond(dir.path(), &["--help"]).await;
    assert!(help.ok().contains("serve"), "{}", help.stdout);
}

/// The LDAP guide's configuration example, with its password file in the test's directory.
#[tokio::test]
async fn config_check_accepts_the_ldap_guides_example_and_never_shows_the_bind_password() {
    const BIND_PASSWORD: &str = "ldap-bind-pw-never-shown";
    let guide = include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/providers/ldap.md"));
    let block = guide.split("```yaml\n").nth(1).and_then(|b| b.split("```").next()).unwrap();
    assert!(block.contains("/run/secrets/ldap-bind"), "{block}");
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("ldap-bind"), format!("{BIND_PASSWORD}\n")).unwrap();
    std::fs::write(dir.path().join("sessiond.yml"), block.replace("/run/secrets/ldap-bind", "ldap-bind")).unwrap();

    let text = sessiond(dir.path(), &["config", "check"]).await;
    let out = text.ok();
    assert!(!out.contains(BIND_PASSWORD) && !text.stderr.contains(BIND_PASSWORD), "password leaked: {out}");
    assert!(out.contains("bind_password: '[redacted]'"), "{out}");
    assert!(!out.contains("bind_password_file"), "the effective value, wherever it came from: {out}");

    let env = [("SESSIOND__AUTHENTICATION__REFRESH_INTERVAL", "1m")];
    let json = sessiond_with(dir.path(), &["config", "check", "--json"], None, &env).await;
    assert!(!json.stdout.contains(BIND_PASSWORD), "password leaked: {}", json.stdout);
    let value = json.json();
    assert_eq!(value["authentication"]["refresh_interval"], "1m");
    let provider = &value["authentication"]["providers"][0];
    assert_eq!(provider["kind"], "ldap");
    assert_eq!(provider["url"], "ldaps://ldap.example.org:636");
    assert_eq!(provider["bind_password"], "[redacted]");
    assert_eq!(provider["groups"]["member_of"], true);
    assert_eq!(provider["timeout"], "5s");
    assert!(!dir.path().join("sessiond-data").exists(), "config check creates nothing");
}
