//! The promises of configuration loading: defaults, refusals that name the key, the environment
//! overlay, and the effective output.

use super::schema::{self, NAME};
use super::*;
use sessiond_core::access::{Decision, Object, Policy, Subject};
use sessiond_core::cookie::SameSite;
use sessiond_core::journey::JourneyLocation;
use sessiond_core::provider::{
    BindPassword, HeaderProvider, LdapGroups, LdapProvider, OidcProvider, Provider, ProviderClaims,
};
use sessiond_core::realm::{HttpOnlyMode, SessionLocation};
use sessiond_core::timeout::Timeouts;
use sessiond_store::{RedisMode, RedisSettings};
use std::io::Write as _;

const SECRET: &str = "correct-horse-battery-staple-0123456789";

fn parse(yaml: &str) -> Result<Config, ConfigError> {
    parse_env(yaml, &[])
}

fn parse_env(yaml: &str, env: &[(&str, &str)]) -> Result<Config, ConfigError> {
    let env = env.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned()));
    from_sources(Some((Path::new("test.yml"), yaml)), env)
}

/// The error for `yaml`, checked to name `key`.
fn refused(yaml: &str, key: &str) -> ConfigError {
    let error = parse(yaml).unwrap_err();
    assert_eq!(error.key(), Some(key), "wrong key in: {error}");
    assert!(error.to_string().starts_with(key) || error.to_string().contains(&format!("{key:?}")));
    error
}

fn realm<'a>(config: &'a Config, name: &str) -> &'a RealmPolicy {
    config.realms.iter().find(|r| r.name == name).unwrap()
}

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

// ---- defaults ----

#[test]
fn zero_config_serves_realm_main_on_localhost_with_design_defaults() {
    let config = from_sources(None, Vec::new()).unwrap();
    assert_eq!(config.data_dir, PathBuf::from("./sessiond-data"));
    assert_eq!(config.server.listen, "127.0.0.1:8470".parse::<SocketAddr>().unwrap());
    assert_eq!(config.server.portal_url.as_str(), "http://127.0.0.1:8470/");
    let proxies: Vec<String> = config.server.trusted_proxies.iter().map(ToString::to_string).collect();
    assert_eq!(proxies, ["127.0.0.0/8", "::1/128"], "a proxy on the same host is trusted");
    assert!(config.server.allowed_redirects.is_empty());
    assert_eq!(config.server.admin_group, "admins");
    assert_eq!(config.server.max_body_bytes, 65536);
    assert_eq!(config.storage, StorageConfig::Embedded { path: PathBuf::from("./sessiond-data/sessiond.redb") });
    assert!(config.secret.is_none());
    assert_eq!(config.users_file, PathBuf::from("./sessiond-data/users.yml"));
    assert_eq!(config.regulation, Regulation { max_retries: 3, find_time: secs(120), ban_time: secs(300) });
    assert_eq!(config.log, LogConfig { level: "info".into(), format: LogFormat::Text });
    assert_eq!(config.audit_path, None);
    assert_eq!(config.access_control.default_policy(), Policy::Deny);
    assert!(config.access_control.rules().is_empty());
    assert!(config.providers.is_empty());
    assert_eq!(config.source, None);

    assert_eq!(config.realms.len(), 1);
    let main = &config.realms[0];
    assert_eq!(main.name, "main");
    assert_eq!(main.portal_url, config.server.portal_url);
    assert_eq!(
        main.timeouts,
        Timeouts { expiration: secs(3600), inactivity: Some(secs(300)), remember_me: Some(secs(30 * 86_400)) }
    );
    assert_eq!(main.cookie.name, None);
    assert_eq!(main.cookie.domain, None);
    assert_eq!(main.cookie.same_site, SameSite::Lax);
    // auto: a plain-http portal on 127.0.0.1 gets no Secure, or the cookie would never come back.
    assert!(!main.cookie.secure);
    assert!(main.cookie.persistent);
    assert_eq!(main.cookie.http_only, HttpOnlyMode::On);
}

#[test]
fn an_empty_file_and_empty_sections_mean_defaults() {
    let empty = parse("").unwrap();
    assert_eq!(empty.server, from_sources(None, Vec::new()).unwrap().server);
    let sections = parse("server:\nrealms:\n  main:\nlog:\n").unwrap();
    assert_eq!(sections.realms[0].timeouts, Timeouts::default());
    assert_eq!(sections.source, Some(PathBuf::from("test.yml")));
}

#[test]
fn portal_url_defaults_to_loopback_when_listening_everywhere() {
    let v4 = parse("server: {listen: '0.0.0.0:9000'}").unwrap();
    assert_eq!(v4.server.portal_url.as_str(), "http://127.0.0.1:9000/");
    let v6 = parse("server: {listen: '[::]:9000'}").unwrap();
    assert_eq!(v6.server.portal_url.as_str(), "http://127.0.0.1:9000/");
    let loopback6 = parse("server: {listen: '[::1]:9000'}").unwrap();
    assert_eq!(loopback6.server.portal_url.as_str(), "http://[::1]:9000/");
}

#[test]
fn secure_auto_follows_the_realm_portal() {
    let config = parse(
        "server: {portal_url: 'https://auth.example.com'}\n\
         realms:\n  main: {}\n  dev: {portal_url: 'http://localhost:8470', domain: localhost}\n",
    )
    .unwrap();
    assert!(realm(&config, "main").cookie.secure);
    assert_eq!(realm(&config, "main").portal_url.as_str(), "https://auth.example.com/");
    assert!(!realm(&config, "dev").cookie.secure);
    let forced = parse("realms: {main: {cookie: {secure: true}}}").unwrap();
    assert!(forced.realms[0].cookie.secure);
    let off =
        parse("server: {portal_url: 'https://a.example.com'}\nrealms: {main: {cookie: {secure: false}}}").unwrap();
    assert!(!off.realms[0].cookie.secure);
}

#[test]
fn every_realm_setting_is_read() {
    let config = parse(
        "server: {portal_url: 'https://auth.example.com'}\n\
         realms:\n  main:\n    domain: .Example.COM\n    cookie:\n      name: __Secure-sid\n      same_site: strict\n      persistent: false\n      http_only: enforced\n    location: server\n    expiration: 2h\n    inactivity: 600\n    remember_me: 1w\n",
    )
    .unwrap();
    let main = &config.realms[0];
    assert_eq!(main.cookie.domain.as_deref(), Some("example.com"));
    assert_eq!(main.cookie.name.as_deref(), Some("__Secure-sid"));
    assert_eq!(main.cookie.same_site, SameSite::Strict);
    assert!(!main.cookie.persistent);
    assert_eq!(main.cookie.http_only, HttpOnlyMode::Enforced);
    assert_eq!(
        main.timeouts,
        Timeouts { expiration: secs(7200), inactivity: Some(secs(600)), remember_me: Some(secs(7 * 86_400)) }
    );
    let off = parse("realms: {main: {cookie: {http_only: false}}}").unwrap();
    assert_eq!(off.realms[0].cookie.http_only, HttpOnlyMode::Off);
}

#[test]
fn remember_me_minus_one_turns_the_feature_off() {
    let config = parse("realms: {main: {remember_me: -1}}").unwrap();
    assert_eq!(config.realms[0].timeouts.remember_me, None);
    let quoted = parse("realms: {main: {remember_me: '-1'}}").unwrap();
    assert_eq!(quoted.realms[0].timeouts.remember_me, None);
}

#[test]
fn inactivity_zero_turns_the_idle_limit_off() {
    let config = parse("realms: {main: {inactivity: 0}}").unwrap();
    assert_eq!(config.realms[0].timeouts.inactivity, None);
    let text = parse("realms: {main: {inactivity: 0s}}").unwrap();
    assert_eq!(text.realms[0].timeouts.inactivity, None);
}

#[test]
fn other_sections_are_read() {
    let config = parse(
        "data_dir: /var/lib/sessiond\n\
         server:\n  listen: '[::1]:9443'\n  trusted_proxies: [10.0.0.1/8, 192.168.1.7, '::1']\n  allowed_redirects: [App.Other.org, '*.example.net', 'HTTPS://Docs.Example.org:443/']\n  admin_group: ops\n  max_body_bytes: 1024\n\
         storage: {kind: embedded}\n\
         users: {file: /etc/sessiond/users.yml}\n\
         regulation: {max_retries: 0, find_time: 10m, ban_time: 1h}\n\
         log: {level: 'warn,sessiond=debug', format: json}\n\
         audit: {path: /var/log/sessiond/audit.jsonl}\n",
    )
    .unwrap();
    assert_eq!(config.server.listen, "[::1]:9443".parse::<SocketAddr>().unwrap());
    let proxies: Vec<String> = config.server.trusted_proxies.iter().map(ToString::to_string).collect();
    assert_eq!(proxies, ["10.0.0.0/8", "192.168.1.7/32", "::1/128"]);
    assert_eq!(config.server.allowed_redirects, ["app.other.org", "*.example.net", "https://docs.example.org"]);
    assert_eq!(config.server.admin_group, "ops");
    assert_eq!(config.server.max_body_bytes, 1024);
    // The database follows data_dir unless storage.path says otherwise.
    assert_eq!(config.storage, StorageConfig::Embedded { path: PathBuf::from("/var/lib/sessiond/sessiond.redb") });
    assert_eq!(config.users_file, PathBuf::from("/etc/sessiond/users.yml"));
    assert_eq!(config.regulation, Regulation { max_retries: 0, find_time: secs(600), ban_time: secs(3600) });
    assert_eq!(config.log, LogConfig { level: "warn,sessiond=debug".into(), format: LogFormat::Json });
    assert_eq!(config.audit_path, Some(PathBuf::from("/var/log/sessiond/audit.jsonl")));

    let memory = parse("storage: {kind: memory}").unwrap();
    assert_eq!(memory.storage, StorageConfig::Memory);
    let placed = parse("storage: {path: /tmp/s.redb}").unwrap();
    assert_eq!(placed.storage, StorageConfig::Embedded { path: PathBuf::from("/tmp/s.redb") });
}

#[test]
fn realms_are_sorted_by_name_and_need_not_include_main() {
    let config = parse(
        "realms:\n  zeta: {portal_url: 'https://z.example.com'}\n  alpha: {portal_url: 'https://a.example.com'}\n",
    )
    .unwrap();
    let names: Vec<&str> = config.realms.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(names, ["alpha", "zeta"]);
}

#[test]
fn yaml_merge_keys_share_settings_between_realms() {
    let config = parse(
        "realms:\n  a: &common\n    portal_url: 'https://a.example.com'\n    inactivity: 30m\n  b:\n    <<: *common\n    portal_url: 'https://b.example.com'\n",
    )
    .unwrap();
    assert_eq!(realm(&config, "b").timeouts.inactivity, Some(secs(1800)));
    assert_eq!(realm(&config, "b").portal_url.as_str(), "https://b.example.com/");
}

#[test]
fn an_empty_trusted_proxies_list_trusts_nobody() {
    let config = parse("server: {trusted_proxies: []}").unwrap();
    assert!(config.server.trusted_proxies.is_empty());
    let from_env = parse_env("", &[("SESSIOND__SERVER__TRUSTED_PROXIES", "[]")]).unwrap();
    assert!(from_env.server.trusted_proxies.is_empty());
    // An empty value unsets the key, as for every other key: the default comes back.
    let unset = parse_env("server: {trusted_proxies: []}", &[("SESSIOND__SERVER__TRUSTED_PROXIES", "")]).unwrap();
    assert_eq!(unset.server.trusted_proxies.len(), 2);
}

// ---- access control ----

const RULES: &str = "\
access_control:
  default_policy: one_factor
  rules:
    - domain: '*.example.com'
      resources: ['^/static/', '^/favicon\\.ico$']
      methods: [get, HEAD]
      policy: bypass
    - domain: [app.example.com, App.Example.org]
      resources: ['^/admin(/|$)']
      subject: ['user:alice', ['group:admins', 'group:dev']]
      policy: two_factor
    - domain: app.example.com
      resources: ['^/admin(/|$)']
      policy: deny
";

fn object<'a>(host: &'a str, path: &'a str, method: &'a str) -> Object<'a> {
    Object { host, path, method }
}

#[test]
fn access_rules_are_read_in_order() {
    let config = parse(RULES).unwrap();
    let access = &config.access_control;
    assert_eq!(access.default_policy(), Policy::OneFactor);
    assert_eq!(access.rules().len(), 3);
    let first = access.rules()[0].to_spec();
    assert_eq!(first.methods, Some(vec!["GET".to_owned(), "HEAD".to_owned()]), "methods are uppercased");
    assert_eq!(access.rules()[1].to_spec().domain, Some(vec!["app.example.com".into(), "app.example.org".into()]));
    assert_eq!(access.rules()[2].to_spec().subject, None);

    let decide = |o: &Object<'_>| access.decide(o, None);
    assert_eq!(decide(&object("cdn.example.com", "/static/app.js", "GET")), Decision::Allow);
    assert_eq!(decide(&object("cdn.example.com", "/static/app.js", "POST")), Decision::NeedsLogin);
    assert_eq!(decide(&object("cdn.example.com", "/favicon.ico", "HEAD")), Decision::Allow);
    assert_eq!(decide(&object("app.example.com", "/admin", "GET")), Decision::NeedsLogin);
    let groups = vec!["admins".to_owned(), "dev".to_owned()];
    let amr = vec!["pwd".to_owned(), "otp".to_owned()];
    let admin = Subject { user: "bob", groups: &groups, amr: &amr };
    let nobody = Subject { user: "eve", groups: &[], amr: &amr };
    assert_eq!(access.decide(&object("app.example.com", "/admin/x", "GET"), Some(&admin)), Decision::Allow);
    assert_eq!(access.decide(&object("app.example.com", "/admin/x", "GET"), Some(&nobody)), Decision::Deny);
    assert_eq!(access.decide(&object("app.example.org", "/admin/x", "GET"), Some(&nobody)), Decision::Allow);
}

#[test]
fn a_lone_domain_or_subject_is_a_list_of_one() {
    let config =
        parse("access_control: {rules: [{domain: App.Example.com, subject: 'group:admins', policy: one_factor}]}")
            .unwrap();
    let spec = config.access_control.rules()[0].to_spec();
    assert_eq!(spec.domain, Some(vec!["app.example.com".to_owned()]));
    assert_eq!(spec.subject, Some(vec![vec!["group:admins".to_owned()]]));
}

#[test]
fn default_policy_can_come_from_the_environment() {
    let config = parse_env(RULES, &[("SESSIOND__ACCESS_CONTROL__DEFAULT_POLICY", "two_factor")]).unwrap();
    assert_eq!(config.access_control.default_policy(), Policy::TwoFactor);
    assert_eq!(config.access_control.rules().len(), 3, "the file's rules stay");
    let error = parse_env("", &[("SESSIOND__ACCESS_CONTROL__DEFAULT_POLICY", "allow")]).unwrap_err();
    assert_eq!(error.key(), Some("access_control.default_policy"));
    assert!(error.to_string().contains("SESSIOND__ACCESS_CONTROL__DEFAULT_POLICY"), "{error}");
}

#[test]
fn rules_cannot_come_from_the_environment() {
    for var in ["SESSIOND__ACCESS_CONTROL__RULES", "SESSIOND__ACCESS_CONTROL__RULES__0__POLICY"] {
        let error = parse_env("", &[(var, "deny")]).unwrap_err();
        assert_eq!(
            error.to_string(),
            format!(
                "environment variable {var}: \"access_control.rules\" is a list of sections; set it in the \
                 configuration file"
            )
        );
    }
}

#[test]
fn bad_access_rules_are_refused_naming_the_field() {
    let rule = |body: &str| format!("access_control:\n  rules:\n    - {{domain: a.com, policy: deny}}\n    - {body}\n");
    for (body, key, expected) in [
        ("{domain: a.com, policy: allow}", "access_control.rules[1].policy", "unknown policy \"allow\""),
        (
            "{domain: a.com, policy: deny, resources: ['^/ok', '^/admin(']}",
            "access_control.rules[1].resources[1]",
            "invalid regular expression \"^/admin(\": unclosed group",
        ),
        (
            "{domain: a.com, policy: deny, subject: ['team:x']}",
            "access_control.rules[1].subject[0][0]",
            "invalid subject \"team:x\": expected user:<name> or group:<name>",
        ),
        (
            "{domain: a.com, policy: deny, subject: ['user:a', ['group:b', 'team:x']]}",
            "access_control.rules[1].subject[1][1]",
            "invalid subject \"team:x\"",
        ),
        ("{domain: a.com, policy: deny, methods: [GET, G3T]}", "access_control.rules[1].methods[1]", "\"G3T\""),
        ("{domain: a.com, policy: deny, methods: ['M-SEARCH']}", "access_control.rules[1].methods[0]", "M-SEARCH"),
        ("{domain: a.com}", "access_control.rules[1].policy", "missing"),
        ("{policy: deny}", "access_control.rules[1].domain", "missing"),
        ("{domain: [], policy: deny}", "access_control.rules[1].domain", "empty"),
        ("{domain: a.com, policy: deny, subject: []}", "access_control.rules[1].subject", "empty"),
        ("{domain: 'a.com:443', policy: deny}", "access_control.rules[1].domain[0]", "port"),
        ("{domain: [a.com, '*a.com'], policy: deny}", "access_control.rules[1].domain[1]", "'*'"),
        (
            "{domain: a.com, policy: bypass, subject: 'group:x'}",
            "access_control.rules[1].policy",
            "bypass cannot be combined with subject",
        ),
        ("", "access_control.rules[1].domain", "missing"),
    ] {
        let yaml = rule(body);
        let error = refused(&yaml, key);
        assert!(error.to_string().contains(expected), "{body}: {error}");
    }
    let error = refused("access_control: {default_policy: Deny}", "access_control.default_policy");
    assert_eq!(
        error.to_string(),
        "access_control.default_policy: unknown policy \"Deny\": expected bypass, one_factor, two_factor or deny"
    );
}

#[test]
fn access_rules_of_the_wrong_shape_are_refused() {
    let error = parse("access_control: {rules: [{domian: a.com, policy: deny}]}").unwrap_err();
    assert_eq!(
        error.to_string(),
        "unknown key \"access_control.rules[0].domian\" (did you mean \"access_control.rules[0].domain\"?)"
    );
    for (yaml, key, expected) in [
        ("access_control: {rules: {domain: a.com}}", "access_control.rules", "expected a list, found keys"),
        ("access_control: {rules: [a.com]}", "access_control.rules[0]", "expected keys"),
        ("access_control: {rules: [{domain: {a: b}, policy: deny}]}", "access_control.rules[0].domain", "text"),
        ("access_control: {rules: [{domain: [[a]], policy: deny}]}", "access_control.rules[0].domain", "position 1"),
        (
            "access_control: {rules: [{domain: a, policy: deny, subject: [[[x]]]}]}",
            "access_control.rules[0].subject[0]",
            "position 1",
        ),
        ("access_control: {rules: [{domain: a, policy: deny, subject: 5}]}", "access_control.rules[0].subject", "list"),
        (
            "access_control: {rules: [{domain: a, policy: deny, methods: GET}]}",
            "access_control.rules[0].methods",
            "list",
        ),
    ] {
        let error = parse(yaml).unwrap_err();
        assert_eq!(error.key(), Some(key), "{yaml}: {error}");
        assert!(error.to_string().contains(expected), "{yaml}: {error}");
    }
}

// ---- refusals name the key ----

#[test]
fn bad_duration_is_refused_naming_key_and_unit() {
    let error = refused("realms: {main: {inactivity: 5x}}", "realms.main.inactivity");
    assert_eq!(error.to_string(), r#"realms.main.inactivity: invalid duration "5x": unknown unit "x""#);
    refused("realms: {main: {expiration: 1h30}}", "realms.main.expiration");
    refused("realms: {main: {expiration: 0}}", "realms.main.expiration");
    refused("realms: {main: {remember_me: 0}}", "realms.main.remember_me");
    refused("realms: {main: {remember_me: -2}}", "realms.main.remember_me");
    refused("realms: {main: {inactivity: -1}}", "realms.main.inactivity");
    refused("realms: {main: {inactivity: 1.5}}", "realms.main.inactivity");
    refused("regulation: {find_time: soon}", "regulation.find_time");
    refused("regulation: {ban_time: 0}", "regulation.ban_time");
}

#[test]
fn short_secret_is_refused_without_echoing_it() {
    let error = refused("secret: tooshort-but-secret", "secret");
    let text = error.to_string();
    assert!(text.contains("at least 32"), "{text}");
    assert!(!text.contains("tooshort-but-secret"), "{text}");
    let exact = parse(&format!("secret: {}", "s".repeat(32))).unwrap();
    assert_eq!(exact.secret.unwrap().expose(), "s".repeat(32).as_bytes());
}

#[test]
fn unquoted_numeric_secret_is_refused_without_echoing_it() {
    let digits = "1".repeat(40);
    let error = refused(&format!("secret: {digits}"), "secret");
    assert!(!error.to_string().contains(&digits), "{error}");
    assert!(error.to_string().contains("quotes"), "{error}");
}

#[test]
fn public_suffix_domain_is_refused() {
    let error = refused(
        "server: {portal_url: 'https://auth.example.co.uk'}\nrealms: {main: {domain: co.uk}}",
        "realms.main.domain",
    );
    assert!(error.to_string().contains("public suffix"), "{error}");
    let error = refused(
        "server: {portal_url: 'https://me.github.io'}\nrealms: {main: {domain: github.io}}",
        "realms.main.domain",
    );
    assert!(error.to_string().contains("public suffix"), "{error}");
}

#[test]
fn domain_outside_the_portal_is_refused() {
    let error = refused(
        "server: {portal_url: 'https://auth.example.com'}\nrealms: {main: {domain: example.org}}",
        "realms.main.domain",
    );
    assert!(error.to_string().contains("example.org"), "{error}");
    // A realm's own portal_url is what the domain must cover, not the server's.
    refused(
        "server: {portal_url: 'https://auth.example.com'}\nrealms: {main: {portal_url: 'https://auth.example.org', domain: example.com}}",
        "realms.main.domain",
    );
}

#[test]
fn bad_cookie_names_are_refused() {
    let error = refused("realms: {main: {cookie: {name: 'my session'}}}", "realms.main.cookie.name");
    assert!(error.to_string().contains("my session"), "{error}");
    // __Secure- needs Secure; the local http portal makes auto resolve to false.
    refused("realms: {main: {cookie: {name: __Secure-sid}}}", "realms.main.cookie.name");
    refused(
        "server: {portal_url: 'https://auth.example.com'}\nrealms: {main: {domain: example.com, cookie: {name: __Host-sid}}}",
        "realms.main.cookie.name",
    );
    refused("realms: {main: {cookie: {name: sid_flash}}}", "realms.main.cookie.name");
}

#[test]
fn same_site_none_requires_secure() {
    let error = refused("realms: {main: {cookie: {same_site: none}}}", "realms.main.cookie.same_site");
    assert!(error.to_string().contains("secure"), "{error}");
    refused(
        "server: {portal_url: 'https://a.example.com'}\nrealms: {main: {cookie: {same_site: none, secure: false}}}",
        "realms.main.cookie.same_site",
    );
    let ok = parse("realms: {main: {cookie: {same_site: none, secure: true}}}").unwrap();
    assert_eq!(ok.realms[0].cookie.same_site, SameSite::None);
}

#[test]
fn unknown_words_are_refused() {
    refused("realms: {main: {cookie: {same_site: Relaxed}}}", "realms.main.cookie.same_site");
    refused("realms: {main: {cookie: {secure: maybe}}}", "realms.main.cookie.secure");
    refused("realms: {main: {cookie: {http_only: sometimes}}}", "realms.main.cookie.http_only");
    let error = refused("realms: {main: {location: browser}}", "realms.main.location");
    assert!(error.to_string().contains("expected server or client"), "{error}");
    let error = refused("storage: {kind: postgres}", "storage.kind");
    assert!(error.to_string().contains("\"postgres\""), "{error}");
    assert!(error.to_string().contains("embedded, memory or redis"), "{error}");
    refused("log: {format: xml}", "log.format");
    refused("log: {level: verbose}", "log.level");
    refused("log: {level: 'info,sessiond=loud'}", "log.level");
}

#[test]
fn two_realms_with_one_cookie_name_are_refused() {
    let error = refused(
        "realms:\n  a: {portal_url: 'https://a.example.com', cookie: {name: sid}}\n  b: {portal_url: 'https://b.example.com', cookie: {name: sid}}\n",
        "realms.b.cookie.name",
    );
    assert!(error.to_string().contains("\"a\""), "{error}");
}

#[test]
fn two_realms_with_one_cookie_scope_are_refused() {
    refused("realms: {a: {}, b: {}}", "realms.b.domain");
    refused(
        "server: {portal_url: 'https://auth.example.com'}\nrealms: {a: {domain: example.com}, b: {domain: example.com}}",
        "realms.b.domain",
    );
}

#[test]
fn realm_names_are_lowercase_words() {
    refused("realms: {Main: {}}", "realms.Main");
    refused("realms: {'my realm': {}}", "realms.my realm");
    parse("realms: {my-realm_2: {}}").unwrap();
}

#[test]
fn bad_server_values_are_refused() {
    refused("server: {listen: 'localhost:8470'}", "server.listen");
    refused("server: {listen: '127.0.0.1'}", "server.listen");
    refused("server: {portal_url: 'ftp://auth.example.com'}", "server.portal_url");
    refused("server: {portal_url: 'https://auth.example.com/?x=1'}", "server.portal_url");
    refused("server: {portal_url: 'https://auth.example.com/#top'}", "server.portal_url");
    refused("server: {portal_url: 'https://user:pw@auth.example.com/'}", "server.portal_url");
    refused("server: {portal_url: 'auth.example.com'}", "server.portal_url");
    refused("realms: {main: {portal_url: 'https://a.example.com/?x'}}", "realms.main.portal_url");
    let error = refused("server: {trusted_proxies: [10.0.0.0/33]}", "server.trusted_proxies");
    assert!(error.to_string().contains("10.0.0.0/33"), "{error}");
    refused("server: {trusted_proxies: [proxy.local]}", "server.trusted_proxies");
    refused("server: {allowed_redirects: ['*.com']}", "server.allowed_redirects");
    refused("server: {allowed_redirects: ['https://a.example.com/path']}", "server.allowed_redirects");
    refused("server: {allowed_redirects: ['a.example.com/path']}", "server.allowed_redirects");
    refused("server: {admin_group: ''}", "server.admin_group");
    refused("server: {max_body_bytes: 0}", "server.max_body_bytes");
    refused("data_dir: ''", "data_dir");
}

#[test]
fn unknown_keys_are_refused_with_their_full_path() {
    let error = parse("realms: {main: {cookie: {nmae: sid}}}").unwrap_err();
    assert_eq!(error.to_string(), r#"unknown key "realms.main.cookie.nmae" (did you mean "realms.main.cookie.name"?)"#);
    assert_eq!(error.key(), Some("realms.main.cookie.nmae"));
    for (yaml, key) in [
        ("sever: {}", "sever"),
        ("server: {listn: '127.0.0.1:1'}", "server.listn"),
        ("realms: {main: {inactivty: 5m}}", "realms.main.inactivty"),
        ("realms: {main: {jwt: {enabeld: true}}}", "realms.main.jwt.enabeld"),
        ("realms: {main: {journeys: {allowlist: false}}}", "realms.main.journeys.allowlist"),
        ("storage: {kind: embedded, postgres: {url: 'postgres://x'}}", "storage.postgres"),
        ("storage: {kind: redis, redis: {url: 'redis://x', db: 1}}", "storage.redis.db"),
        ("session: {name: x}", "session"),
    ] {
        let error = parse(yaml).unwrap_err();
        assert!(matches!(error, ConfigError::UnknownKey { .. }), "{yaml}: {error}");
        assert_eq!(error.key(), Some(key), "{yaml}: {error}");
        assert!(error.to_string().starts_with(&format!("unknown key {key:?}")), "{error}");
    }
    // A typo far from every key gets no guess.
    let error = parse("xyzzy: 1").unwrap_err();
    assert_eq!(error.to_string(), r#"unknown key "xyzzy""#);
}

#[test]
fn values_of_the_wrong_type_are_refused_naming_the_key() {
    for (yaml, key, expected) in [
        ("server: {max_body_bytes: big}", "server.max_body_bytes", "whole number"),
        ("server: {max_body_bytes: -5}", "server.max_body_bytes", "whole number"),
        ("realms: {main: {cookie: {persistent: 'yes'}}}", "realms.main.cookie.persistent", "true or false"),
        ("server: {trusted_proxies: 10.0.0.1}", "server.trusted_proxies", "a list"),
        ("server: {trusted_proxies: [[a]]}", "server.trusted_proxies", "position 1"),
        ("server: {listen: [a, b]}", "server.listen", "text"),
        ("realms: {main: {cookie: 5}}", "realms.main.cookie", "keys"),
        ("realms: [main]", "realms", "keys"),
        ("realms: {main: {expiration: [1h]}}", "realms.main.expiration", "duration"),
        ("- a\n- b\n", "configuration", "keys"),
    ] {
        let error = parse(yaml).unwrap_err();
        assert_eq!(error.key(), Some(key), "{yaml}: {error}");
        assert!(error.to_string().contains(expected), "{yaml}: {error}");
    }
}

#[test]
fn invalid_yaml_names_the_file_and_line() {
    let error = parse("server:\n  listen: [unclosed\n").unwrap_err();
    assert!(matches!(error, ConfigError::Yaml { .. }), "{error}");
    let text = error.to_string();
    assert!(text.starts_with("test.yml: "), "{text}");
    assert!(text.contains("line"), "{text}");
}

// ---- secret and secret_file ----

fn secret_file(contents: &[u8]) -> tempfile::NamedTempFile {
    let mut file = tempfile::NamedTempFile::new().unwrap();
    file.write_all(contents).unwrap();
    file
}

#[test]
fn secret_file_is_read_without_its_trailing_newline() {
    let file = secret_file(format!("{SECRET}\n").as_bytes());
    let config = parse(&format!("secret_file: {}", file.path().display())).unwrap();
    assert_eq!(config.secret.unwrap().expose(), SECRET.as_bytes());
    let crlf = secret_file(format!("{SECRET}\r\n").as_bytes());
    let config = parse(&format!("secret_file: {}", crlf.path().display())).unwrap();
    assert_eq!(config.secret.unwrap().expose(), SECRET.as_bytes());
}

#[test]
fn short_secret_file_is_refused() {
    let file = secret_file(b"short\n");
    let error = refused(&format!("secret_file: {}", file.path().display()), "secret_file");
    assert!(error.to_string().contains("at least 32"), "{error}");
    assert!(!error.to_string().contains("short\n"), "{error}");
}

#[test]
fn secret_and_secret_file_together_are_refused() {
    let file = secret_file(SECRET.as_bytes());
    let error = refused(&format!("secret: {SECRET}\nsecret_file: {}", file.path().display()), "secret_file");
    assert!(error.to_string().contains("secret"), "{error}");
    assert!(!error.to_string().contains(SECRET), "{error}");
}

#[test]
fn missing_secret_file_is_refused_naming_the_path() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope");
    let error = refused(&format!("secret_file: {}", missing.display()), "secret_file");
    assert!(error.to_string().contains(&missing.display().to_string()), "{error}");
}

#[test]
fn secret_debug_is_redacted() {
    let config = parse(&format!("secret: {SECRET}")).unwrap();
    let debug = format!("{config:?}");
    assert!(!debug.contains(SECRET), "{debug}");
    assert!(debug.contains("[redacted]"), "{debug}");
}

// ---- environment ----

#[test]
fn env_overrides_the_file_including_realm_keys() {
    let config = parse_env(
        "realms: {main: {inactivity: 5m, expiration: 2h}}",
        &[
            ("SESSIOND__REALMS__MAIN__INACTIVITY", "10m"),
            ("SESSIOND__REALMS__MAIN__COOKIE__PERSISTENT", "false"),
            ("SESSIOND__REALMS__MAIN__COOKIE__SAME_SITE", "strict"),
            ("SESSIOND__REALMS__MAIN__REMEMBER_ME", "-1"),
            ("SESSIOND__SERVER__MAX_BODY_BYTES", "1024"),
            ("SESSIOND__LOG__FORMAT", "json"),
        ],
    )
    .unwrap();
    let main = &config.realms[0];
    assert_eq!(main.timeouts.inactivity, Some(secs(600)));
    assert_eq!(main.timeouts.expiration, secs(7200), "keys the environment does not set stay");
    assert_eq!(main.timeouts.remember_me, None);
    assert!(!main.cookie.persistent);
    assert_eq!(main.cookie.same_site, SameSite::Strict);
    assert_eq!(config.server.max_body_bytes, 1024);
    assert_eq!(config.log.format, LogFormat::Json);
}

#[test]
fn env_can_create_a_realm_and_lowercases_segments() {
    let config = parse_env(
        "",
        &[("SESSIOND__REALMS__APP__PORTAL_URL", "https://app.example.com"), ("SESSIOND__Realms__App__Inactivity", "0")],
    )
    .unwrap();
    let names: Vec<&str> = config.realms.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(names, ["app"]);
    assert_eq!(config.realms[0].timeouts.inactivity, None);
    assert!(config.realms[0].cookie.secure);
}

#[test]
fn env_lists_are_comma_separated() {
    let config = parse_env(
        "server: {trusted_proxies: [172.16.0.1]}",
        &[
            ("SESSIOND__SERVER__TRUSTED_PROXIES", "10.0.0.0/8, 192.168.1.7,"),
            ("SESSIOND__SERVER__ALLOWED_REDIRECTS", "*.example.net,https://docs.example.org"),
        ],
    )
    .unwrap();
    let proxies: Vec<String> = config.server.trusted_proxies.iter().map(ToString::to_string).collect();
    assert_eq!(proxies, ["10.0.0.0/8", "192.168.1.7/32"]);
    assert_eq!(config.server.allowed_redirects, ["*.example.net", "https://docs.example.org"]);
}

#[test]
fn env_text_values_are_taken_verbatim() {
    // YAML would read these as a hex number, an alias and null; a secret must stay as typed.
    for secret in [
        "0x1f2e3d4c5b6a79880x1f2e3d4c5b6a7988",
        "*anchor-like-secret-value-0123456789",
        "~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~",
    ] {
        let config = parse_env("", &[("SESSIOND__SECRET", secret)]).unwrap();
        assert_eq!(config.secret.unwrap().expose(), secret.as_bytes());
    }
    let config = parse_env("", &[("SESSIOND__SERVER__ADMIN_GROUP", "1000")]).unwrap();
    assert_eq!(config.server.admin_group, "1000");
}

#[test]
fn env_secret_file_twin_is_read() {
    let file = secret_file(format!("{SECRET}\n").as_bytes());
    let path = file.path().display().to_string();
    let config = parse_env("", &[("SESSIOND__SECRET_FILE", &path)]).unwrap();
    assert_eq!(config.secret.unwrap().expose(), SECRET.as_bytes());
    // A secret in the file plus a secret file in the environment: two sources, refused.
    let error = parse_env(&format!("secret: {SECRET}"), &[("SESSIOND__SECRET_FILE", &path)]).unwrap_err();
    assert_eq!(error.key(), Some("secret_file"));
}

#[test]
fn empty_env_value_brings_back_the_default() {
    let config = parse_env("realms: {main: {inactivity: 1m}}", &[("SESSIOND__REALMS__MAIN__INACTIVITY", "")]).unwrap();
    assert_eq!(config.realms[0].timeouts.inactivity, Some(secs(300)));
}

#[test]
fn refused_env_values_name_the_variable() {
    let error = parse_env("", &[("SESSIOND__REALMS__MAIN__INACTIVITY", "5x")]).unwrap_err();
    assert_eq!(error.key(), Some("realms.main.inactivity"));
    assert!(error.to_string().contains("SESSIOND__REALMS__MAIN__INACTIVITY"), "{error}");
    let error = parse_env("", &[("SESSIOND__SERVER__MAX_BODY_BYTES", "lots")]).unwrap_err();
    assert_eq!(error.key(), Some("server.max_body_bytes"));
    assert!(error.to_string().contains("SESSIOND__SERVER__MAX_BODY_BYTES"), "{error}");
}

#[test]
fn unknown_env_variables_are_refused() {
    let error = parse_env("", &[("SESSIOND__REALMS__MAIN__COOKIE__NMAE", "sid")]).unwrap_err();
    assert_eq!(
        error.to_string(),
        "environment variable SESSIOND__REALMS__MAIN__COOKIE__NMAE: unknown key \"realms.main.cookie.nmae\" \
         (did you mean SESSIOND__REALMS__MAIN__COOKIE__NAME?)"
    );
    for var in [
        "SESSIOND__SERVR__LISTEN",
        "SESSIOND__SERVER",
        "SESSIOND__REALMS__MAIN",
        "SESSIOND__SERVER____LISTEN",
        "SESSIOND__SECRET__X",
    ] {
        let error = parse_env("", &[(var, "x")]).unwrap_err();
        assert!(matches!(&error, ConfigError::Env { var: v, .. } if v == var), "{var}: {error}");
    }
}

#[test]
fn variables_without_the_double_underscore_prefix_are_ignored() {
    let config = parse_env("", &[("SESSIOND_LOG", "x"), ("PATH", "/bin"), ("sessiond__log__level", "x")]).unwrap();
    assert_eq!(config.log.level, "info");
}

// ---- load ----

#[test]
fn explicit_config_file_must_exist() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("sessiond.yml");
    let error = load(Some(&missing), Vec::new()).unwrap_err();
    assert!(matches!(error, ConfigError::Read { .. }), "{error}");
    assert!(error.to_string().contains(&missing.display().to_string()), "{error}");
}

#[test]
fn explicit_config_file_is_read_and_remembered() {
    let mut file = tempfile::NamedTempFile::new().unwrap();
    file.write_all(b"server: {admin_group: ops}\n").unwrap();
    let config = load(Some(file.path()), vec![("SESSIOND__LOG__LEVEL".to_owned(), "debug".to_owned())]).unwrap();
    assert_eq!(config.server.admin_group, "ops");
    assert_eq!(config.log.level, "debug");
    assert_eq!(config.source.as_deref(), Some(file.path()));
}

// ---- effective configuration ----

#[test]
fn effective_output_redacts_the_secret() {
    let config = parse(&format!("secret: {SECRET}")).unwrap();
    for json in [false, true] {
        let text = render_effective(&config, json);
        assert!(!text.contains(SECRET), "{text}");
        assert!(text.contains("[redacted]"), "{text}");
    }
    let file = secret_file(SECRET.as_bytes());
    let from_file = parse(&format!("secret_file: {}", file.path().display())).unwrap();
    assert!(!render_effective(&from_file, false).contains(SECRET));
}

#[test]
fn effective_output_reads_back_to_the_same_configuration() {
    let config = parse(
        "server:\n  portal_url: 'https://auth.example.com'\n  trusted_proxies: [10.0.0.0/8, '::1']\n  allowed_redirects: ['*.example.net']\n\
         realms:\n  main: {domain: example.com, inactivity: 0, remember_me: -1, cookie: {name: sid, http_only: enforced, persistent: false}}\n  other: {portal_url: 'https://x.example.org', location: client, cookie: {http_only: false}, journeys: {location: client, allowlisting: false, timeout: 90s}}\n\
         storage: {kind: memory}\naudit: {path: /tmp/audit.jsonl}\nlog: {level: debug, format: json}\n\
         access_control:\n  default_policy: two_factor\n  rules:\n  - {domain: ['*.Example.com', '*'], resources: ['^/a(/|$)', \"^/b'c\"], methods: [get], subject: ['user:x', ['group:a', 'group:b']], policy: one_factor}\n  - {domain: a.com, policy: bypass}\n",
    )
    .unwrap();
    assert_eq!(config.access_control.rules().len(), 2);
    for json in [false, true] {
        let text = render_effective(&config, json);
        // JSON is YAML too.
        let again = parse(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
        assert_eq!(again.server, config.server);
        assert_eq!(again.realms, config.realms);
        assert_eq!(again.storage, config.storage);
        assert_eq!(again.regulation, config.regulation);
        assert_eq!(again.log, config.log);
        assert_eq!(again.audit_path, config.audit_path);
        assert_eq!(again.users_file, config.users_file);
        assert_eq!(again.data_dir, config.data_dir);
        assert_eq!(again.access_control, config.access_control);
    }
    let yaml = render_effective(&config, false);
    assert!(yaml.contains("inactivity: '0'") || yaml.contains("inactivity: \"0\""), "{yaml}");
    assert!(yaml.contains("remember_me: '-1'") || yaml.contains("remember_me: \"-1\""), "{yaml}");
    assert!(yaml.contains("http_only: enforced"), "{yaml}");
    assert!(yaml.contains("location: client"), "{yaml}");
}

#[test]
fn location_picks_where_sessions_live() {
    let config =
        parse("realms: {main: {}, shop: {portal_url: 'https://shop.example.com', location: ' client '}}").unwrap();
    assert_eq!(realm(&config, "main").location, SessionLocation::Server);
    assert_eq!(realm(&config, "shop").location, SessionLocation::Client);
    let server = parse("realms: {main: {location: server}}").unwrap();
    assert_eq!(server.realms[0].location, SessionLocation::Server);
    let env = from_sources(None, vec![("SESSIOND__REALMS__MAIN__LOCATION".into(), "client".into())]).unwrap();
    assert_eq!(env.realms[0].location, SessionLocation::Client);
    let value: serde_json::Value = serde_json::from_str(&render_effective(&config, true)).unwrap();
    assert_eq!(value["realms"]["shop"]["location"], "client");
    assert_eq!(value["realms"]["main"]["location"], "server");
}

#[test]
fn client_realms_refuse_lifetimes_a_cookie_cannot_count() {
    let error = refused("realms: {main: {location: client, expiration: 200y}}", "realms.main.expiration");
    assert!(error.to_string().contains("location: client"), "{error}");
    refused("realms: {main: {location: client, remember_me: 137y}}", "realms.main.remember_me");
    assert!(parse("realms: {main: {location: client, remember_me: 100y}}").is_ok());
    assert!(parse("realms: {main: {location: server, expiration: 200y}}").is_ok());
}

#[test]
fn effective_json_is_json() {
    let config = from_sources(None, Vec::new()).unwrap();
    let value: serde_json::Value = serde_json::from_str(&render_effective(&config, true)).unwrap();
    assert_eq!(value["realms"]["main"]["expiration"], "1h");
    assert_eq!(value["server"]["listen"], "127.0.0.1:8470");
    assert_eq!(value["secret"], serde_json::Value::Null);
}

// ---- Redis storage and secret rotation ----

const REDIS_PASSWORD: &str = "hunter2-redis-pw";

/// The Redis settings of `yaml` (a secret is added, as `kind: redis` needs one).
fn redis_settings(yaml: &str) -> RedisSettings {
    redis_settings_env(yaml, &[])
}

fn redis_settings_env(yaml: &str, env: &[(&str, &str)]) -> RedisSettings {
    let config = parse_env(&format!("secret: {SECRET}\n{yaml}"), env).unwrap_or_else(|e| panic!("{e}\n{yaml}"));
    match config.storage {
        StorageConfig::Redis(settings) => settings,
        other => panic!("not redis: {other:?}"),
    }
}

/// The error for `yaml` (with a secret), checked to name `key`.
fn redis_refused(yaml: &str, key: &str) -> ConfigError {
    refused(&format!("secret: {SECRET}\n{yaml}"), key)
}

#[test]
fn redis_standalone_takes_the_documented_defaults() {
    let settings = redis_settings("storage: {kind: redis, redis: {url: 'redis://10.0.0.5:6379/2'}}");
    assert_eq!(settings.mode, RedisMode::Standalone { url: "redis://10.0.0.5:6379/2".into() });
    assert_eq!(settings.key_prefix, "sessiond:");
    assert_eq!(settings.timeout, secs(2));
    assert_eq!((settings.username, settings.password), (None, None));
    for url in ["rediss://cache.internal:6380", "unix:///run/redis/redis.sock?db=1", "redis+unix:///run/redis.sock"] {
        let settings = redis_settings(&format!("storage: {{kind: redis, redis: {{url: '{url}'}}}}"));
        assert_eq!(settings.mode, RedisMode::Standalone { url: url.into() });
    }
}

#[test]
fn every_redis_setting_is_read() {
    let password = secret_file(format!("{REDIS_PASSWORD}\n").as_bytes());
    let sentinel_password = secret_file(b"sentinel-pw\r\n");
    let settings = redis_settings(&format!(
        "storage:\n  kind: redis\n  redis:\n    sentinel:\n      master: mymaster\n      nodes: ['10.0.0.1:26379', 'redis://10.0.0.2:26379']\n      password_file: {}\n      db: 3\n    username: sessiond\n    password_file: {}\n    key_prefix: 'prod:'\n    timeout: 5s\n",
        sentinel_password.path().display(),
        password.path().display(),
    ));
    assert_eq!(
        settings.mode,
        RedisMode::Sentinel {
            master: "mymaster".into(),
            nodes: vec!["10.0.0.1:26379".into(), "redis://10.0.0.2:26379".into()],
            password: Some("sentinel-pw".into()),
            db: Some(3),
        }
    );
    assert_eq!(settings.username.as_deref(), Some("sessiond"));
    assert_eq!(settings.password.as_deref(), Some(REDIS_PASSWORD), "the file's trailing newline is not part of it");
    assert_eq!(settings.key_prefix, "prod:");
    assert_eq!(settings.timeout, secs(5));

    let cluster = redis_settings(&format!(
        "storage: {{kind: redis, redis: {{cluster: {{nodes: [a:7000, b:7001]}}, password: {REDIS_PASSWORD}, key_prefix: ''}}}}"
    ));
    assert_eq!(cluster.mode, RedisMode::Cluster { nodes: vec!["a:7000".into(), "b:7001".into()] });
    assert_eq!(cluster.password.as_deref(), Some(REDIS_PASSWORD));
    assert_eq!(cluster.key_prefix, "", "an empty prefix is allowed: Redis may be sessiond's alone");
}

#[test]
fn redis_settings_come_from_the_environment_too() {
    let settings = redis_settings_env(
        "storage: {kind: memory}",
        &[
            ("SESSIOND__STORAGE__KIND", "redis"),
            ("SESSIOND__STORAGE__REDIS__CLUSTER__NODES", "n1:7000, n2:7000"),
            ("SESSIOND__STORAGE__REDIS__PASSWORD", "~not-yaml: 0x1f"),
            ("SESSIOND__STORAGE__REDIS__TIMEOUT", "10"),
        ],
    );
    assert_eq!(settings.mode, RedisMode::Cluster { nodes: vec!["n1:7000".into(), "n2:7000".into()] });
    assert_eq!(settings.password.as_deref(), Some("~not-yaml: 0x1f"), "text is taken verbatim");
    assert_eq!(settings.timeout, secs(10));

    let sentinel = redis_settings_env(
        "storage: {kind: redis}",
        &[
            ("SESSIOND__STORAGE__REDIS__SENTINEL__MASTER", "m"),
            ("SESSIOND__STORAGE__REDIS__SENTINEL__NODES", "s1:26379,s2:26379"),
            ("SESSIOND__STORAGE__REDIS__SENTINEL__DB", "1"),
        ],
    );
    assert!(matches!(sentinel.mode, RedisMode::Sentinel { db: Some(1), ref nodes, .. } if nodes.len() == 2));
}

#[test]
fn exactly_one_redis_deployment_must_be_named() {
    let error = redis_refused("storage: {kind: redis}", "storage.redis");
    assert!(error.to_string().contains("url, sentinel and cluster"), "{error}");
    let error = redis_refused(
        "storage: {kind: redis, redis: {url: 'redis://a', cluster: {nodes: ['b:1']}}}",
        "storage.redis.cluster",
    );
    assert!(error.to_string().contains("storage.redis.url"), "{error}");
    redis_refused(
        "storage: {kind: redis, redis: {sentinel: {master: m, nodes: ['s:1']}, cluster: {nodes: ['b:1']}}}",
        "storage.redis.cluster",
    );
}

#[test]
fn redis_settings_without_kind_redis_are_refused() {
    let error = redis_refused("storage: {redis: {url: 'redis://a'}}", "storage.redis");
    assert!(error.to_string().contains("kind: redis"), "{error}");
    redis_refused("storage: {kind: memory, redis: {url: 'redis://a'}}", "storage.redis");
}

#[test]
fn redis_needs_a_configured_secret() {
    let error = refused("storage: {kind: redis, redis: {url: 'redis://a'}}", "secret");
    assert!(error.to_string().contains("every instance"), "{error}");
}

#[test]
fn bad_redis_settings_are_refused_naming_the_key() {
    for (yaml, key, words) in [
        ("{url: 'http://a:6379'}", "storage.redis.url", "scheme"),
        ("{url: 'redis://'}", "storage.redis.url", "host"),
        ("{url: 'unix://'}", "storage.redis.url", "socket"),
        ("{sentinel: {nodes: ['a:1']}}", "storage.redis.sentinel.master", "required"),
        ("{sentinel: {master: m}}", "storage.redis.sentinel.nodes", "at least one"),
        ("{sentinel: {master: m, nodes: []}}", "storage.redis.sentinel.nodes", "at least one"),
        ("{sentinel: {master: m, nodes: ['a:1'], db: 9223372036854775808}}", "storage.redis.sentinel.db", "too large"),
        ("{sentinel: {master: m, nodes: ['a:1'], db: -1}}", "storage.redis.sentinel.db", "whole number"),
        ("{cluster: {nodes: ['no-port']}}", "storage.redis.cluster.nodes", "host:port"),
        ("{cluster: {nodes: ['a:99999']}}", "storage.redis.cluster.nodes", "host:port"),
        ("{cluster: {nodes: ['http://a:1']}}", "storage.redis.cluster.nodes", "host:port"),
        ("{cluster: {}}", "storage.redis.cluster.nodes", "at least one"),
        ("{url: 'redis://a', key_prefix: 'app{1}:'}", "storage.redis.key_prefix", "slot"),
        ("{url: 'redis://a', timeout: 0}", "storage.redis.timeout", "greater than zero"),
        ("{url: 'redis://a', timeout: 5x}", "storage.redis.timeout", "unknown unit"),
        ("{url: 'redis://a', username: ' '}", "storage.redis.username", "empty"),
        ("{url: 'redis://a', cache_ttl: 5x}", "storage.redis.cache_ttl", "unknown unit"),
        ("{url: 'redis://a', cache_capacity: 0}", "storage.redis.cache_capacity", "greater than zero"),
        ("{url: 'redis://a', password: ''}", "storage.redis.password", "empty"),
        ("{url: 'redis://a', sentinel_master: m}", "storage.redis.sentinel_master", "unknown key"),
    ] {
        let error = redis_refused(&format!("storage: {{kind: redis, redis: {yaml}}}"), key);
        assert!(error.to_string().contains(words), "{yaml}: {error}");
    }
}

#[test]
fn redis_passwords_are_never_quoted_in_refusals() {
    let error = redis_refused(
        &format!("storage: {{kind: redis, redis: {{url: 'http://app:{REDIS_PASSWORD}@a:6379'}}}}"),
        "storage.redis.url",
    );
    assert!(!error.to_string().contains(REDIS_PASSWORD), "{error}");
    assert!(error.to_string().contains("[redacted]"), "the URL is shown without its password: {error}");
    // Not even parsable: where the password ends cannot be told, so nothing of it is shown.
    let error = redis_refused(
        &format!("storage: {{kind: redis, redis: {{url: 'redis://app:{REDIS_PASSWORD}@[bad'}}}}"),
        "storage.redis.url",
    );
    assert!(!error.to_string().contains(REDIS_PASSWORD), "{error}");
    let error = redis_refused(
        &format!("storage: {{kind: redis, redis: {{cluster: {{nodes: ['http://u:{REDIS_PASSWORD}@a:1']}}}}}}"),
        "storage.redis.cluster.nodes",
    );
    assert!(!error.to_string().contains(REDIS_PASSWORD), "{error}");
    let error = redis_refused(
        &format!(
            "storage: {{kind: redis, redis: {{url: 'redis://a', password: {REDIS_PASSWORD}, password_file: /x}}}}"
        ),
        "storage.redis.password_file",
    );
    assert!(!error.to_string().contains(REDIS_PASSWORD), "{error}");
    let numeric = redis_refused(
        "storage: {kind: redis, redis: {url: 'redis://a', password: 12345678}}",
        "storage.redis.password",
    );
    assert!(!numeric.to_string().contains("12345678"), "{numeric}");
}

#[test]
fn redis_password_files_are_checked() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope");
    let error = redis_refused(
        &format!("storage: {{kind: redis, redis: {{url: 'redis://a', password_file: {}}}}}", missing.display()),
        "storage.redis.password_file",
    );
    assert!(error.to_string().contains(&missing.display().to_string()), "{error}");
    let empty = secret_file(b"\n");
    redis_refused(
        &format!(
            "storage: {{kind: redis, redis: {{sentinel: {{master: m, nodes: ['a:1'], password_file: {}}}}}}}",
            empty.path().display()
        ),
        "storage.redis.sentinel.password_file",
    );
    redis_refused(
        "storage: {kind: redis, redis: {sentinel: {master: m, nodes: ['a:1'], password: x, password_file: /x}}}",
        "storage.redis.sentinel.password_file",
    );
}

#[test]
fn secret_previous_is_read_for_rotation() {
    let previous = "the-secret-before-the-rotation-0123456789";
    let config = parse(&format!("secret: {SECRET}\nsecret_previous: {previous}")).unwrap();
    assert_eq!(config.secret_previous.unwrap().expose(), previous.as_bytes());
    let file = secret_file(format!("{previous}\n").as_bytes());
    let config = parse(&format!("secret: {SECRET}\nsecret_previous_file: {}", file.path().display())).unwrap();
    assert_eq!(config.secret_previous.unwrap().expose(), previous.as_bytes());
    assert!(parse(&format!("secret: {SECRET}")).unwrap().secret_previous.is_none());
}

#[test]
fn bad_secret_previous_is_refused_without_echoing_it() {
    let error = refused(&format!("secret: {SECRET}\nsecret_previous: short-previous"), "secret_previous");
    assert!(error.to_string().contains("at least 32"), "{error}");
    assert!(!error.to_string().contains("short-previous"), "{error}");
    let previous = "the-secret-before-the-rotation-0123456789";
    let error = refused(&format!("secret_previous: {previous}"), "secret_previous");
    assert!(error.to_string().contains("needs secret"), "{error}");
    let error = refused(&format!("secret: {SECRET}\nsecret_previous: {SECRET}"), "secret_previous");
    assert!(error.to_string().contains("same as secret"), "{error}");
    assert!(!error.to_string().contains(SECRET), "{error}");
    let file = secret_file(previous.as_bytes());
    let error = refused(
        &format!("secret: {SECRET}\nsecret_previous: {previous}\nsecret_previous_file: {}", file.path().display()),
        "secret_previous_file",
    );
    assert!(!error.to_string().contains(previous), "{error}");
    let short = secret_file(b"short\n");
    refused(&format!("secret: {SECRET}\nsecret_previous_file: {}", short.path().display()), "secret_previous_file");
}

#[test]
fn effective_output_redacts_every_redis_secret() {
    let previous = "the-secret-before-the-rotation-0123456789";
    let configs = [
        format!(
            "secret: {SECRET}\nsecret_previous: {previous}\nstorage: {{kind: redis, redis: {{url: 'rediss://app:{REDIS_PASSWORD}@cache:6380/1', username: app, password: {REDIS_PASSWORD}}}}}"
        ),
        format!(
            "secret: {SECRET}\nstorage: {{kind: redis, redis: {{url: 'unix:///run/redis.sock?db=2&pass={REDIS_PASSWORD}'}}}}"
        ),
        format!(
            "secret: {SECRET}\nstorage: {{kind: redis, redis: {{sentinel: {{master: m, nodes: ['redis://:{REDIS_PASSWORD}@s1:26379', 's2:26379'], password: {REDIS_PASSWORD}}}}}}}"
        ),
        format!(
            "secret: {SECRET}\nstorage: {{kind: redis, redis: {{cluster: {{nodes: ['redis://u:{REDIS_PASSWORD}@n1:7000']}}, password: {REDIS_PASSWORD}}}}}"
        ),
    ];
    for yaml in &configs {
        let config = parse(yaml).unwrap();
        for json in [false, true] {
            let text = render_effective(&config, json);
            for secret in [SECRET, previous, REDIS_PASSWORD] {
                assert!(!text.contains(secret), "{secret} shown:\n{text}");
            }
            assert!(text.contains("[redacted]"), "{text}");
            // The rest reads back as the same deployment, once the real secret is put back.
            let mut tree: serde_yaml_ng::Value = serde_yaml_ng::from_str(&text).unwrap();
            let top = tree.as_mapping_mut().unwrap();
            top.insert("secret".into(), SECRET.into());
            top.remove("secret_previous");
            let again = parse(&serde_yaml_ng::to_string(&tree).unwrap()).unwrap_or_else(|e| panic!("{e}\n{text}"));
            let (StorageConfig::Redis(before), StorageConfig::Redis(after)) = (&config.storage, &again.storage) else {
                panic!("not redis after reading back:\n{text}");
            };
            assert_eq!(after.key_prefix, before.key_prefix);
            assert_eq!(after.timeout, before.timeout);
            assert_eq!(after.username, before.username);
            assert_eq!(after.password.is_some(), before.password.is_some());
            assert_eq!(std::mem::discriminant(&after.mode), std::mem::discriminant(&before.mode));
        }
    }
    let value: serde_json::Value = serde_json::from_str(&render_effective(&parse(&configs[0]).unwrap(), true)).unwrap();
    assert_eq!(value["storage"]["redis"]["url"], "rediss://app:[redacted]@cache:6380/1");
    assert_eq!(value["storage"]["redis"]["password"], "[redacted]");
    assert_eq!(value["storage"]["redis"]["key_prefix"], "sessiond:");
    assert_eq!(value["storage"]["redis"]["timeout"], "2s");
    assert_eq!(value["secret_previous"], "[redacted]");
    let value: serde_json::Value = serde_json::from_str(&render_effective(&parse(&configs[2]).unwrap(), true)).unwrap();
    let sentinel = &value["storage"]["redis"]["sentinel"];
    assert_eq!(sentinel["nodes"], serde_json::json!(["redis://:[redacted]@s1:26379", "s2:26379"]));
    assert_eq!((sentinel["password"].as_str(), sentinel["db"].as_i64()), (Some("[redacted]"), Some(0)));
}

#[test]
fn redis_debug_output_never_shows_a_password() {
    let config = parse(&format!(
        "secret: {SECRET}\nstorage: {{kind: redis, redis: {{url: 'redis://:{REDIS_PASSWORD}@a', password: {REDIS_PASSWORD}}}}}"
    ))
    .unwrap();
    let debug = format!("{config:?}");
    assert!(!debug.contains(REDIS_PASSWORD) && !debug.contains(SECRET), "{debug}");
}

#[test]
fn redact_url_keeps_everything_but_the_password() {
    use super::effective::redact_url;
    assert_eq!(redact_url("redis://u:p@h:1/2"), "redis://u:[redacted]@h:1/2");
    assert_eq!(redact_url("redis://:p@h"), "redis://:[redacted]@h");
    assert_eq!(redact_url("redis://h:6379"), "redis://h:6379");
    assert_eq!(redact_url("10.0.0.1:7000"), "10.0.0.1:7000");
    assert_eq!(redact_url("unix:///s.sock?db=1&pass=p"), "unix:///s.sock?db=1&pass=[redacted]");
    assert_eq!(redact_url("redis://u:p@[bad"), "[redacted]");
}

// ---- documentation ----

const DOC: &str = include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/configuration.md"));

/// The YAML blocks of the reference that follow `heading`, up to the next heading of that level
/// or above. (A line of one `#` is a comment in a YAML block: the reference has one title only.)
fn doc_yaml_blocks(heading: &str) -> Vec<&'static str> {
    let level = heading.chars().take_while(|c| *c == '#').count();
    let start = DOC.find(heading).unwrap() + heading.len();
    let section = &DOC[start..];
    let ends_section = |line: &str| {
        let hashes = line.chars().take_while(|c| *c == '#').count();
        (2..=level).contains(&hashes) && line[hashes..].starts_with(' ')
    };
    let end = section.match_indices('\n').map(|(at, _)| at).find(|at| ends_section(&section[at + 1..]));
    let section = &section[..end.unwrap_or(section.len())];
    section.split("```yaml\n").skip(1).map(|block| &block[..block.find("```").unwrap()]).collect()
}

/// Parses a documented example; `secret_file` points at a file only the deployment has.
fn parse_example(yaml: &str) -> Config {
    let mut tree: serde_yaml_ng::Value = serde_yaml_ng::from_str(yaml).unwrap();
    let removed = tree.as_mapping_mut().unwrap().remove("secret_file");
    assert!(removed.is_some(), "the example shows secret_file");
    let tree = schema::normalize(tree).unwrap();
    validate::validate(serde_yaml_ng::from_value(tree).unwrap()).unwrap()
}

#[test]
fn the_full_example_is_a_valid_configuration() {
    let blocks = doc_yaml_blocks("## Full example");
    assert_eq!(blocks.len(), 1);
    let config = parse_example(blocks[0]);
    let names: Vec<&str> = config.realms.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(names, ["main", "partners"]);
    assert_eq!(realm(&config, "partners").timeouts.remember_me, None);
    assert_eq!(realm(&config, "main").journeys, sessiond_core::journey::JourneySettings::default());
    assert_eq!(config.server.reauth_window, secs(300));
    assert_eq!(config.server.allowed_redirects.len(), 3);
    assert_eq!(config.access_control.rules().len(), 4);
    let corp = header_provider(&config, 0);
    assert_eq!((corp.label.as_str(), &corp.groups_header), ("Corporate SSO", &None));
    let amr = vec!["pwd".to_owned(), "otp".to_owned()];
    let dev = Subject { user: "dev", groups: &[], amr: &amr };
    let admin_site = object("admin.example.com", "/", "GET");
    assert_eq!(config.access_control.decide(&admin_site, Some(&dev)), Decision::Deny);
    let asset = object("www.example.com", "/favicon.ico", "GET");
    assert_eq!(config.access_control.decide(&asset, None), Decision::Allow);
}

/// The YAML blocks of `docs/access-control.md` that are whole configurations.
fn access_doc_configs() -> Vec<Config> {
    let doc = include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/access-control.md"));
    doc.split("```yaml\n")
        .skip(1)
        .map(|block| &block[..block.find("```").unwrap()])
        .filter(|block| block.starts_with("access_control:"))
        .map(|block| parse(block).unwrap_or_else(|e| panic!("{e}\n{block}")))
        .collect()
}

#[test]
fn the_redis_examples_are_valid_configurations() {
    // The examples read their secrets from /run/secrets; here those files are made up.
    let secrets = tempfile::tempdir().unwrap();
    for (name, content) in [("sessiond_secret", SECRET), ("redis_password", "pw"), ("sentinel_password", "spw")] {
        std::fs::write(secrets.path().join(name), format!("{content}\n")).unwrap();
    }
    let blocks = doc_yaml_blocks("#### `storage.redis`");
    assert_eq!(blocks.len(), 3, "one server, Sentinel, Cluster");
    let settings: Vec<RedisSettings> = blocks
        .iter()
        .map(|block| {
            let yaml = block.replace("/run/secrets/", &format!("{}/", secrets.path().display()));
            match parse(&yaml).unwrap_or_else(|e| panic!("{e}\n{block}")).storage {
                StorageConfig::Redis(settings) => settings,
                other => panic!("not redis: {other:?}\n{block}"),
            }
        })
        .collect();
    assert!(matches!(&settings[0].mode, RedisMode::Standalone { url } if url.starts_with("rediss://")));
    assert_eq!(settings[0].password.as_deref(), Some("pw"));
    assert!(
        matches!(&settings[1].mode, RedisMode::Sentinel { password: Some(p), nodes, .. } if p == "spw" && nodes.len() == 3)
    );
    assert!(matches!(&settings[2].mode, RedisMode::Cluster { nodes } if nodes.len() == 3));
}

#[test]
fn the_clustering_examples_are_valid_configurations() {
    let doc = include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/clustering.md"));
    let secrets = tempfile::tempdir().unwrap();
    for (name, content) in [("sessiond_secret", SECRET), ("redis_password", "pw"), ("sentinel_password", "spw")] {
        std::fs::write(secrets.path().join(name), format!("{content}\n")).unwrap();
    }
    let blocks: Vec<&str> = doc.split("```yaml\n").skip(1).map(|block| &block[..block.find("```").unwrap()]).collect();
    assert_eq!(blocks.len(), 3, "the deployment, then the storage of Sentinel and of Cluster");
    // The variants replace the deployment's `storage` section, and nothing else.
    let full = blocks[0];
    let (before, rest) = full.split_at(full.find("\nstorage:\n").unwrap() + 1);
    let after = &rest[rest.find("\nrealms:\n").unwrap() + 1..];
    let configs: Vec<Config> =
        [full.to_owned(), format!("{before}{}\n{after}", blocks[1]), format!("{before}{}\n{after}", blocks[2])]
            .iter()
            .map(|yaml| {
                let yaml = yaml.replace("/run/secrets/", &format!("{}/", secrets.path().display()));
                parse(&yaml).unwrap_or_else(|e| panic!("{e}\n{yaml}"))
            })
            .collect();
    let modes: Vec<&RedisMode> = configs
        .iter()
        .map(|config| match &config.storage {
            StorageConfig::Redis(settings) => &settings.mode,
            other => panic!("not redis: {other:?}"),
        })
        .collect();
    assert!(matches!(modes[0], RedisMode::Standalone { .. }));
    assert!(matches!(modes[1], RedisMode::Sentinel { .. }));
    assert!(matches!(modes[2], RedisMode::Cluster { .. }));
    for config in &configs {
        assert_eq!(config.secret.as_ref().unwrap().expose(), SECRET.as_bytes());
        assert_eq!(config.realms[0].cookie.name.as_deref(), Some("example_session"), "clusters set the cookie name");
    }
    assert_eq!(configs[0].access_control.rules().len(), 1);
}

#[test]
fn the_access_control_examples_are_valid_and_do_what_they_say() {
    let configs = access_doc_configs();
    assert_eq!(configs.len(), 6);
    let amr_otp = vec!["pwd".to_owned(), "otp".to_owned()];
    let amr_pwd = vec!["pwd".to_owned()];
    let admins = vec!["admins".to_owned()];
    let admin = Subject { user: "root", groups: &admins, amr: &amr_otp };
    let admin_pwd = Subject { user: "root", groups: &admins, amr: &amr_pwd };
    let user = Subject { user: "dev", groups: &[], amr: &amr_otp };

    // The wiki: admins only at /admin, nothing elsewhere.
    let wiki = &configs[1].access_control;
    assert_eq!(wiki.decide(&object("wiki.example.com", "/admin", "GET"), None), Decision::NeedsLogin);
    assert_eq!(wiki.decide(&object("wiki.example.com", "/page", "GET"), None), Decision::Deny);
    assert_eq!(wiki.decide(&object("wiki.example.com", "/admin", "GET"), Some(&user)), Decision::Deny);
    assert_eq!(wiki.decide(&object("wiki.example.com", "/admin", "GET"), Some(&admin)), Decision::Allow);

    // Public assets.
    let assets = &configs[2].access_control;
    assert_eq!(assets.decide(&object("a.example.com", "/static/x.js", "GET"), None), Decision::Allow);
    assert_eq!(assets.decide(&object("a.example.com", "/static/x.js", "POST"), None), Decision::NeedsLogin);
    assert_eq!(assets.decide(&object("example.com", "/", "GET"), Some(&user)), Decision::Allow);
    assert_eq!(assets.decide(&object("example.org", "/", "GET"), Some(&user)), Decision::Deny);

    // Admins only, with a second factor.
    let area = &configs[3].access_control;
    let admin_page = object("app.example.com", "/admin/users", "GET");
    assert_eq!(area.decide(&admin_page, None), Decision::NeedsLogin);
    assert_eq!(area.decide(&admin_page, Some(&admin_pwd)), Decision::NeedsSecondFactor);
    assert_eq!(area.decide(&admin_page, Some(&admin)), Decision::Allow);
    assert_eq!(area.decide(&admin_page, Some(&user)), Decision::Deny);
    assert_eq!(area.decide(&object("app.example.com", "/", "GET"), Some(&user)), Decision::Allow);

    // Grafana: preflights pass, administration needs a second factor.
    let grafana = &configs[4].access_control;
    assert_eq!(grafana.decide(&object("grafana.example.com", "/admin", "OPTIONS"), None), Decision::Allow);
    let user_pwd = Subject { user: "dev", groups: &[], amr: &amr_pwd };
    let grafana_admin = object("grafana.example.com", "/admin", "GET");
    assert_eq!(grafana.decide(&grafana_admin, Some(&user_pwd)), Decision::NeedsSecondFactor);
    assert_eq!(grafana.decide(&object("grafana.example.com", "/d/x", "GET"), Some(&user_pwd)), Decision::Allow);

    // Named people.
    let ci = &configs[5].access_control;
    let alice = Subject { user: "alice", groups: &[], amr: &amr_pwd };
    assert_eq!(ci.decide(&object("ci.example.com", "/", "GET"), None), Decision::NeedsLogin);
    assert_eq!(ci.decide(&object("ci.example.com", "/", "GET"), Some(&alice)), Decision::Allow);
    assert_eq!(ci.decide(&object("ci.example.com", "/", "GET"), Some(&user)), Decision::Deny);
    assert_eq!(ci.decide(&object("other.example.com", "/", "GET"), None), Decision::Deny);
}

#[test]
fn the_authelia_translation_is_a_valid_configuration() {
    let blocks = doc_yaml_blocks("## Coming from Authelia");
    assert_eq!(blocks.len(), 2, "Authelia's block, then ours");
    let config = parse_example(blocks[1]);
    assert_eq!(config.realms[0].cookie.name.as_deref(), Some("authelia_session"));
    assert_eq!(config.realms[0].cookie.domain.as_deref(), Some("example.com"));
    assert_eq!(config.realms[0].timeouts, Timeouts::default());
}

#[test]
fn the_documented_error_messages_are_the_real_ones() {
    let errors = [
        parse("realms: {main: {inactivity: 5x}}").unwrap_err(),
        parse("realms: {main: {cookie: {nmae: x}}}").unwrap_err(),
        parse("server: {portal_url: 'https://auth.example.co.uk'}\nrealms: {main: {domain: co.uk}}").unwrap_err(),
        parse_env("", &[("SESSIOND__REALMS__MAIN__INACTIVITY", "5x")]).unwrap_err(),
        parse_env("", &[("SESSIOND__SERVR__LISTEN", "x")]).unwrap_err(),
        parse(
            "access_control: {rules: [{domain: a, policy: deny}, {domain: a, policy: deny, resources: ['^/admin(']}]}",
        )
        .unwrap_err(),
        parse("server: {trusted_proxies: []}\nauthentication: {providers: [{id: corp, kind: header}]}").unwrap_err(),
        parse(&ldap(", url: 'ldaps://dir.example.org', start_tls: true")).unwrap_err(),
    ];
    for error in errors {
        let line = format!("\n{error}\n");
        assert!(DOC.contains(&line), "docs/configuration.md does not show: {error}");
    }
}

#[test]
fn the_reference_documents_every_key_and_its_variable() {
    let doc = DOC;
    let mut missing = Vec::new();
    for (path, _) in schema::key_paths() {
        if !doc.contains(&format!("`{path}`")) {
            missing.push(path.clone());
        }
        // Items of a list of sections are set in the file only.
        if path.contains(schema::ITEM) {
            continue;
        }
        let var = schema::env_var(&path);
        if !doc.contains(&var) {
            missing.push(var);
        }
    }
    assert!(missing.is_empty(), "docs/configuration.md does not mention: {missing:?}");
    assert!(schema::key_paths().iter().any(|(p, _)| p == &format!("realms.{NAME}.cookie.name")));
}

#[test]
fn the_redis_cache_is_on_by_default_and_zero_turns_it_off() {
    let store = |yaml: &str| match parse(&format!("secret: {SECRET}\nstorage: {{kind: redis, redis: {yaml}}}"))
        .unwrap()
        .storage
    {
        StorageConfig::Redis(settings) => settings,
        other => panic!("{other:?}"),
    };
    let default = store("{url: 'redis://a'}");
    assert_eq!((default.cache_ttl, default.cache_capacity), (Some(secs(5)), 100_000));
    let tuned = store("{url: 'redis://a', cache_ttl: 30s, cache_capacity: 10}");
    assert_eq!((tuned.cache_ttl, tuned.cache_capacity), (Some(secs(30)), 10));
    assert_eq!(store("{url: 'redis://a', cache_ttl: 0}").cache_ttl, None);
    assert_eq!(store("{url: 'redis://a', cache_ttl: 0, cache_capacity: 0}").cache_ttl, None, "off: no capacity needed");
}

#[test]
fn metrics_can_have_a_listener_of_their_own() {
    assert_eq!(parse("").unwrap().server.metrics_listen, None);
    let config = parse("server: {metrics_listen: '127.0.0.1:9470'}").unwrap();
    assert_eq!(config.server.metrics_listen, Some("127.0.0.1:9470".parse().unwrap()));
    assert!(render_effective(&config, false).contains("metrics_listen: 127.0.0.1:9470"));
    let error = refused("server: {metrics_listen: 'localhost'}", "server.metrics_listen");
    assert!(error.to_string().contains("IP:PORT"), "{error}");
    refused("server: {listen: '127.0.0.1:8470', metrics_listen: '127.0.0.1:8470'}", "server.metrics_listen");
}

// ---- session JWTs ----

#[test]
fn jwt_defaults_issue_short_lived_tokens_and_rotate_monthly() {
    let config = parse("").unwrap();
    let jwt = realm(&config, "main").jwt;
    assert_eq!(jwt, sessiond_core::jwt::JwtSettings::default());
    assert!(jwt.enabled && !jwt.cookie && !jwt.header);
    assert_eq!((jwt.lifetime, jwt.rotation), (secs(300), Some(secs(30 * 86_400))));
}

#[test]
fn jwt_settings_come_from_the_file_and_the_environment() {
    let config = parse_env(
        "realms: {main: {jwt: {lifetime: 2m, cookie: true, rotation: 0}}}",
        &[("SESSIOND__REALMS__MAIN__JWT__HEADER", "true"), ("SESSIOND__REALMS__MAIN__JWT__LIFETIME", "90s")],
    )
    .unwrap();
    let jwt = realm(&config, "main").jwt;
    assert_eq!((jwt.lifetime, jwt.cookie, jwt.header, jwt.rotation), (secs(90), true, true, None));
    assert!(!realm(&parse("realms: {main: {jwt: {enabled: false}}}").unwrap(), "main").jwt.enabled);
}

#[test]
fn jwt_lifetimes_stay_short_and_rotation_outlasts_them() {
    refused("realms: {main: {jwt: {lifetime: 2d}}}", "realms.main.jwt.lifetime");
    refused("realms: {main: {jwt: {lifetime: 0}}}", "realms.main.jwt.lifetime");
    refused("realms: {main: {jwt: {lifetime: 10m, rotation: 5m}}}", "realms.main.jwt.rotation");
    refused("realms: {main: {jwt: {rotation: soon}}}", "realms.main.jwt.rotation");
    refused("realms: {main: {jwt: {cookie: yes please}}}", "realms.main.jwt.cookie");
}

// ---- login journeys and reauthentication ----

#[test]
fn journeys_default_to_the_store_with_allowlisting_for_five_minutes() {
    let config = parse("").unwrap();
    let journeys = realm(&config, "main").journeys;
    assert_eq!(journeys, sessiond_core::journey::JourneySettings::default());
    assert_eq!(journeys.location, JourneyLocation::Server);
    assert!(journeys.allowlisting);
    assert_eq!(journeys.timeout, secs(300));
    let value: serde_json::Value = serde_json::from_str(&render_effective(&config, true)).unwrap();
    assert_eq!(
        value["realms"]["main"]["journeys"],
        serde_json::json!({"location": "server", "allowlisting": true, "timeout": "5m"})
    );
}

#[test]
fn journey_settings_come_from_the_file_and_the_environment() {
    let config = parse_env(
        "realms:\n  main: {journeys: {location: client, timeout: 2m}}\n  shop: {portal_url: 'https://shop.example.com'}\n",
        &[
            ("SESSIOND__REALMS__MAIN__JOURNEYS__ALLOWLISTING", "false"),
            ("SESSIOND__REALMS__MAIN__JOURNEYS__TIMEOUT", "90s"),
            ("SESSIOND__REALMS__SHOP__JOURNEYS__LOCATION", "client"),
        ],
    )
    .unwrap();
    let main = realm(&config, "main").journeys;
    assert_eq!((main.location, main.allowlisting, main.timeout), (JourneyLocation::Client, false, secs(90)));
    let shop = realm(&config, "shop").journeys;
    assert_eq!((shop.location, shop.allowlisting, shop.timeout), (JourneyLocation::Client, true, secs(300)));
    let server = parse("realms: {main: {journeys: {location: ' server ', timeout: 1h}}}").unwrap();
    assert_eq!(realm(&server, "main").journeys.location, JourneyLocation::Server);
    assert_eq!(realm(&server, "main").journeys.timeout, secs(3600), "1h is the longest accepted");
    let yaml = render_effective(&config, false);
    assert!(yaml.contains("location: client\n      allowlisting: false\n      timeout: 1m30s"), "{yaml}");
}

#[test]
fn bad_journey_settings_are_refused_naming_the_key() {
    let error = refused("realms: {main: {journeys: {location: browser}}}", "realms.main.journeys.location");
    assert!(error.to_string().contains("expected server or client"), "{error}");
    let error = refused("realms: {main: {journeys: {timeout: 0}}}", "realms.main.journeys.timeout");
    assert!(error.to_string().contains("greater than zero"), "{error}");
    let error = refused("realms: {main: {journeys: {timeout: 61m}}}", "realms.main.journeys.timeout");
    assert!(error.to_string().contains("at most 1h"), "{error}");
    refused("realms: {main: {journeys: {timeout: soon}}}", "realms.main.journeys.timeout");
    refused("realms: {main: {journeys: {allowlisting: 'yes'}}}", "realms.main.journeys.allowlisting");
    refused("realms: {main: {journeys: client}}", "realms.main.journeys");
    let error = parse_env("", &[("SESSIOND__REALMS__MAIN__JOURNEYS__TIMEOUT", "2h")]).unwrap_err();
    assert_eq!(error.key(), Some("realms.main.journeys.timeout"));
    assert!(error.to_string().contains("SESSIOND__REALMS__MAIN__JOURNEYS__TIMEOUT"), "{error}");
}

#[test]
fn reauth_window_defaults_to_five_minutes_and_zero_always_asks() {
    let config = parse("").unwrap();
    assert_eq!(config.server.reauth_window, secs(300));
    assert_eq!(config.server.reauth_window, sessiond_server::state::DEFAULT_REAUTH_WINDOW);
    let value: serde_json::Value = serde_json::from_str(&render_effective(&config, true)).unwrap();
    assert_eq!(value["server"]["reauth_window"], "5m");

    let zero = parse("server: {reauth_window: 0}").unwrap();
    assert_eq!(zero.server.reauth_window, Duration::ZERO);
    let value: serde_json::Value = serde_json::from_str(&render_effective(&zero, true)).unwrap();
    assert_eq!(value["server"]["reauth_window"], "0");
    assert_eq!(parse(&render_effective(&zero, false)).unwrap().server, zero.server, "reads back");

    let env = parse_env("server: {reauth_window: 1m}", &[("SESSIOND__SERVER__REAUTH_WINDOW", "15m")]).unwrap();
    assert_eq!(env.server.reauth_window, secs(900));
    assert_eq!(parse("server: {reauth_window: 24h}").unwrap().server.reauth_window, secs(86_400));
}

#[test]
fn reauth_windows_over_a_day_are_refused() {
    let error = refused("server: {reauth_window: 25h}", "server.reauth_window");
    assert!(error.to_string().contains("at most 24h"), "{error}");
    refused("server: {reauth_window: -1}", "server.reauth_window");
    refused("server: {reauth_window: 5x}", "server.reauth_window");
    let error = parse_env("", &[("SESSIOND__SERVER__REAUTH_WINDOW", "2d")]).unwrap_err();
    assert_eq!(error.key(), Some("server.reauth_window"));
    assert!(error.to_string().contains("SESSIOND__SERVER__REAUTH_WINDOW"), "{error}");
}

// ---- login providers ----

const PROVIDERS: &str = "\
server:
  trusted_proxies: [10.0.0.0/8]
authentication:
  providers:
    - id: corp
      kind: header
      label: ' Corporate SSO '
      user_header: X-Forwarded-User
      groups_header: X-Forwarded-Groups
      email_header: X-Forwarded-Email
      name_header: X-Forwarded-Preferred-Username
    - id: lab
      kind: header
";

fn header_provider(config: &Config, index: usize) -> &HeaderProvider {
    match &config.providers[index] {
        Provider::Header(header) => header,
        other => panic!("not a header provider: {other:?}"),
    }
}

/// `yaml` under `authentication.providers`, with a trusted proxy.
fn with_providers(list: &str) -> String {
    format!("server: {{trusted_proxies: [10.0.0.5]}}\nauthentication:\n  providers:\n{list}")
}

#[test]
fn every_provider_setting_is_read_in_order() {
    let config = parse(PROVIDERS).unwrap();
    let ids: Vec<&str> = config.providers.iter().map(Provider::id).collect();
    assert_eq!(ids, ["corp", "lab"], "the order of the file, which is the order of the buttons");
    assert_eq!(
        *header_provider(&config, 0),
        HeaderProvider {
            id: "corp".into(),
            label: "Corporate SSO".into(),
            user_header: "x-forwarded-user".into(),
            groups_header: Some("x-forwarded-groups".into()),
            email_header: Some("x-forwarded-email".into()),
            name_header: Some("x-forwarded-preferred-username".into()),
        },
        "header names are stored lowercase"
    );
    assert_eq!(config.providers[0].method(), "header");
}

#[test]
fn header_providers_default_to_the_remote_headers_and_their_id_as_label() {
    assert!(from_sources(None, Vec::new()).unwrap().providers.is_empty(), "no provider unless configured");
    assert!(parse("authentication:\n").unwrap().providers.is_empty());
    assert!(parse("authentication: {providers: []}").unwrap().providers.is_empty());
    let config = parse("authentication: {providers: [{id: sso, kind: header}]}").unwrap();
    assert_eq!(
        *header_provider(&config, 0),
        HeaderProvider {
            id: "sso".into(),
            label: "sso".into(),
            user_header: "remote-user".into(),
            groups_header: Some("remote-groups".into()),
            email_header: Some("remote-email".into()),
            name_header: Some("remote-name".into()),
        },
        "the loopback default of trusted_proxies is enough"
    );
    // A key set to nothing keeps its default, as everywhere.
    let nothing = parse("authentication: {providers: [{id: sso, kind: header, groups_header: ~, label: ~}]}").unwrap();
    assert_eq!(header_provider(&nothing, 0), header_provider(&config, 0));
}

#[test]
fn an_empty_optional_header_is_not_read() {
    let config = parse(&with_providers(
        "    - {id: sso, kind: header, groups_header: '', email_header: '', name_header: ' '}\n",
    ))
    .unwrap();
    let header = header_provider(&config, 0);
    assert_eq!(header.user_header, "remote-user");
    assert_eq!((&header.groups_header, &header.email_header, &header.name_header), (&None, &None, &None));
    let error = refused(
        &with_providers("    - {id: sso, kind: header, user_header: ''}\n"),
        "authentication.providers[0].user_header",
    );
    assert!(error.to_string().contains("is empty"), "{error}");
}

#[test]
fn provider_ids_are_unique() {
    let error = refused(
        &with_providers(
            "    - {id: corp, kind: header}\n    - {id: lab, kind: header}\n    - {id: ' corp', kind: header}\n",
        ),
        "authentication.providers[2].id",
    );
    assert_eq!(
        error.to_string(),
        "authentication.providers[2].id: \"corp\" is already the id of authentication.providers[0]; ids must be unique"
    );
}

#[test]
fn bad_and_reserved_provider_ids_are_refused() {
    for id in
        ["Corp", "a b", "a:b", "''", "ü", &"a".repeat(33), "totp", "login", "file", "password", "step_up", "users"]
    {
        let error =
            refused(&with_providers(&format!("    - {{id: {id}, kind: header}}\n")), "authentication.providers[0].id");
        assert!(error.to_string().contains("must be 1 to 32 of a-z, 0-9, - and _"), "{id}: {error}");
    }
    let error = refused(&with_providers("    - {kind: header}\n"), "authentication.providers[0].id");
    assert_eq!(error.to_string(), "authentication.providers[0].id: missing; every provider needs one");
    let error = refused(&with_providers("    -\n"), "authentication.providers[0].id");
    assert!(error.to_string().contains("missing"), "{error}");
    let error = refused(&with_providers("    - {id: 7, kind: header}\n"), "authentication.providers[0].id");
    assert!(error.to_string().contains("put it in quotes"), "{error}");
}

#[test]
fn bad_header_names_are_refused() {
    for (field, value) in [
        ("user_header", "'Remote User'"),
        ("groups_header", "'Remote-Groups:'"),
        ("email_header", "'Rémote-Email'"),
        ("name_header", "\"X-Name\\u0007\""),
        ("user_header", "'(user)'"),
    ] {
        let yaml = with_providers(&format!("    - {{id: sso, kind: header, {field}: {value}}}\n"));
        let key = format!("authentication.providers[0].{field}");
        let error = refused(&yaml, &key);
        assert!(error.to_string().contains("invalid header name"), "{field}: {value}: {error}");
    }
    // One header cannot carry two things: a user named like a group would get the group.
    let error = refused(
        &with_providers("    - {id: sso, kind: header, user_header: X-User, groups_header: x-user}\n"),
        "authentication.providers[0].groups_header",
    );
    assert_eq!(
        error.to_string(),
        "authentication.providers[0].groups_header: \"x-user\" is already the user_header; each header may carry one thing"
    );
    refused(
        &with_providers("    - {id: sso, kind: header, email_header: Remote-Name}\n"),
        "authentication.providers[0].name_header",
    );
}

#[test]
fn bad_labels_are_refused() {
    let label = |text: &str| with_providers(&format!("    - {{id: sso, kind: header, label: {text}}}\n"));
    let long = "é".repeat(64);
    assert_eq!(parse(&label(&long)).unwrap().providers[0].label(), long, "64 characters, not bytes");
    for (text, expected) in [("'  '", "empty"), (&"x".repeat(65), "longer than 64"), ("\"a\\tb\"", "control")] {
        let error = refused(&label(text), "authentication.providers[0].label");
        assert!(error.to_string().contains(expected), "{text}: {error}");
    }
}

#[test]
fn unknown_provider_kinds_are_refused_naming_the_known_ones() {
    let error = refused(&with_providers("    - {id: sso, kind: cas}\n"), "authentication.providers[0].kind");
    assert_eq!(
        error.to_string(),
        "authentication.providers[0].kind: unknown provider kind \"cas\": expected header, ldap, oidc, saml"
    );
    let error = refused(&with_providers("    - {id: sso, kind: Header}\n"), "authentication.providers[0].kind");
    assert!(error.to_string().contains("expected header"), "{error}");
    let error = refused(&with_providers("    - {id: sso}\n"), "authentication.providers[0].kind");
    assert_eq!(
        error.to_string(),
        "authentication.providers[0].kind: missing; every provider needs one: header, ldap, oidc, saml"
    );
}

#[test]
fn a_header_provider_needs_trusted_proxies() {
    let yaml = "server: {trusted_proxies: []}\nauthentication: {providers: [{id: sso, kind: header}]}";
    let error = refused(yaml, "authentication.providers[0].kind");
    assert_eq!(
        error.to_string(),
        "authentication.providers[0].kind: a header provider needs server.trusted_proxies: the headers are believed only from those peers"
    );
    let error = parse_env(
        "authentication: {providers: [{id: sso, kind: header}]}",
        &[("SESSIOND__SERVER__TRUSTED_PROXIES", "[]")],
    )
    .unwrap_err();
    assert_eq!(error.key(), Some("authentication.providers[0].kind"), "{error}");
    assert!(parse("server: {trusted_proxies: []}\nauthentication: {providers: []}").is_ok(), "no provider, no need");
}

#[test]
fn unknown_provider_keys_are_refused_with_their_full_path() {
    let error = parse(&with_providers("    - {id: sso, kind: header, user_heder: X-User}\n")).unwrap_err();
    assert_eq!(
        error.to_string(),
        "unknown key \"authentication.providers[0].user_heder\" (did you mean \"authentication.providers[0].user_header\"?)"
    );
    for (yaml, key) in [
        (
            "authentication: {providers: [{id: a, kind: header}, {id: b, kind: header, secret: x}]}",
            "authentication.providers[1].secret",
        ),
        ("authentication: {provider: []}", "authentication.provider"),
        ("authentication: {ldap: {url: x}}", "authentication.ldap"),
    ] {
        let error = parse(yaml).unwrap_err();
        assert!(matches!(error, ConfigError::UnknownKey { .. }), "{yaml}: {error}");
        assert_eq!(error.key(), Some(key), "{yaml}: {error}");
    }
    for (yaml, key, expected) in [
        (
            "authentication: {providers: {id: a, kind: header}}",
            "authentication.providers",
            "expected a list, found keys",
        ),
        ("authentication: {providers: [corp]}", "authentication.providers[0]", "expected keys"),
        (
            "authentication: {providers: [{id: a, kind: header, label: [x]}]}",
            "authentication.providers[0].label",
            "text",
        ),
        ("authentication: [corp]", "authentication", "expected keys"),
    ] {
        let error = parse(yaml).unwrap_err();
        assert_eq!(error.key(), Some(key), "{yaml}: {error}");
        assert!(error.to_string().contains(expected), "{yaml}: {error}");
    }
}

#[test]
fn providers_cannot_come_from_the_environment() {
    for var in ["SESSIOND__AUTHENTICATION__PROVIDERS", "SESSIOND__AUTHENTICATION__PROVIDERS__0__ID"] {
        let error = parse_env("", &[(var, "corp")]).unwrap_err();
        assert_eq!(
            error.to_string(),
            format!(
                "environment variable {var}: \"authentication.providers\" is a list of sections; set it in the \
                 configuration file"
            )
        );
    }
    let error = parse_env("", &[("SESSIOND__AUTHENTICATION", "x")]).unwrap_err();
    assert!(error.to_string().contains("holds keys, not a value"), "{error}");
}

#[test]
fn providers_show_in_the_effective_output_and_read_back() {
    let config = parse(&with_providers(
        "    - {id: corp, kind: header, label: Corporate SSO, user_header: X-Forwarded-User, groups_header: '', name_header: X-Name}\n    - {id: lab, kind: header}\n",
    ))
    .unwrap();
    let value: serde_json::Value = serde_json::from_str(&render_effective(&config, true)).unwrap();
    assert_eq!(
        value["authentication"]["providers"],
        serde_json::json!([
            {"id": "corp", "kind": "header", "label": "Corporate SSO", "user_header": "x-forwarded-user",
             "groups_header": "", "email_header": "remote-email", "name_header": "x-name"},
            {"id": "lab", "kind": "header", "label": "lab", "user_header": "remote-user",
             "groups_header": "remote-groups", "email_header": "remote-email", "name_header": "remote-name"},
        ]),
        "a header that is not read shows as \"\", which reads back as off"
    );
    for json in [false, true] {
        let text = render_effective(&config, json);
        let again = parse(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
        assert_eq!(again.providers, config.providers, "{text}");
    }
    let none = render_effective(&from_sources(None, Vec::new()).unwrap(), false);
    assert!(none.contains("authentication:\n  providers: []\n"), "{none}");
}

#[test]
fn the_provider_examples_are_valid_configurations() {
    let blocks = doc_yaml_blocks("#### The header provider");
    assert_eq!(blocks.len(), 2, "Authelia's header names, then oauth2-proxy's");
    let configs: Vec<Config> = blocks.iter().map(|b| parse(b).unwrap_or_else(|e| panic!("{e}\n{b}"))).collect();
    let authelia = header_provider(&configs[0], 0);
    assert_eq!((authelia.id.as_str(), authelia.user_header.as_str()), ("corp", "remote-user"));
    assert_eq!(authelia.groups_header.as_deref(), Some("remote-groups"));
    let oauth2_proxy = header_provider(&configs[1], 0);
    assert_eq!(oauth2_proxy.user_header, "x-forwarded-user");
    assert_eq!(oauth2_proxy.name_header, None);
}

// ---- LDAP providers ----

const BIND_PASSWORD: &str = "svc-Pa55word-do-not-show";

/// An LDAP provider with only the required keys, with `extra` keys (inline YAML, `, k: v`) added
/// or in place of those.
fn ldap(extra: &str) -> String {
    let required = format!(
        "{{id: corp, kind: ldap, url: 'ldap://dir.example.org:389', bind_dn: 'cn=svc,dc=example,dc=org', \
         bind_password: {BIND_PASSWORD}, base_dn: 'ou=people,dc=example,dc=org'}}"
    );
    provider_yaml(&required, extra)
}

/// `authentication.providers` with one provider: `required` (an inline YAML mapping) with the
/// `extra` keys (inline YAML, `, k: v`) added or in place of those.
fn provider_yaml(required: &str, extra: &str) -> String {
    let mut provider: serde_yaml_ng::Mapping = serde_yaml_ng::from_str(required).unwrap();
    let extra: serde_yaml_ng::Mapping =
        serde_yaml_ng::from_str(&format!("{{{}}}", extra.trim_start_matches(", "))).unwrap();
    provider.extend(extra);
    let providers = serde_yaml_ng::to_string(&vec![provider]).unwrap();
    format!("authentication:\n  providers:\n{}", providers.lines().map(|l| format!("    {l}\n")).collect::<String>())
}

fn ldap_provider(config: &Config, index: usize) -> &LdapProvider {
    match &config.providers[index] {
        Provider::Ldap(ldap) => ldap,
        other => panic!("not an ldap provider: {other:?}"),
    }
}

#[test]
fn every_ldap_setting_is_read() {
    let password = secret_file(format!("{BIND_PASSWORD}\n").as_bytes());
    let yaml = format!(
        "authentication:
  providers:
    - id: corp
      kind: ldap
      label: Company directory
      url: ldap://dir.example.org:389
      start_tls: true
      bind_dn: cn=svc,dc=example,dc=org
      bind_password_file: {}
      base_dn: ou=people,dc=example,dc=org
      user_filter: (&(objectClass=user)(sAMAccountName={{username}}))
      username_attribute: sAMAccountName
      disabled_filter: (pwdAccountLockedTime=*)
      groups:
        base_dn: ou=groups,dc=example,dc=org
        filter: (&(objectClass=group)(member={{dn}}))
        name_attribute: sAMAccountName
      attributes:
        display_name: [name]
        email: userPrincipalName
      timeout: 10s
      ca_file: /etc/sessiond/ldap-ca.pem
",
        password.path().display()
    );
    let config = parse(&yaml).unwrap();
    let expected = LdapProvider {
        id: "corp".into(),
        label: "Company directory".into(),
        url: "ldap://dir.example.org:389".into(),
        start_tls: true,
        bind_dn: "cn=svc,dc=example,dc=org".into(),
        bind_password: BindPassword(BIND_PASSWORD.into()),
        base_dn: "ou=people,dc=example,dc=org".into(),
        user_filter: "(&(objectClass=user)(sAMAccountName={username}))".into(),
        username_attribute: "sAMAccountName".into(),
        disabled_filter: Some("(pwdAccountLockedTime=*)".into()),
        groups: LdapGroups::Search {
            base_dn: "ou=groups,dc=example,dc=org".into(),
            filter: "(&(objectClass=group)(member={dn}))".into(),
            name_attribute: "sAMAccountName".into(),
        },
        display_name_attributes: vec!["name".into()],
        email_attribute: "userPrincipalName".into(),
        timeout: secs(10),
        ca_file: Some("/etc/sessiond/ldap-ca.pem".into()),
    };
    assert_eq!(*ldap_provider(&config, 0), expected, "the file's trailing newline is not part of the password");
    assert_eq!(config.providers[0].method(), "pwd");
    assert!(!config.providers[0].has_own_journey(), "no button: it checks the password step");
}

#[test]
fn ldap_providers_take_cores_defaults() {
    let config = parse(&ldap("")).unwrap();
    let expected = LdapProvider::new(
        "corp",
        "ldap://dir.example.org:389",
        "cn=svc,dc=example,dc=org",
        BIND_PASSWORD,
        "ou=people,dc=example,dc=org",
    );
    assert_eq!(*ldap_provider(&config, 0), expected);
    let provider = ldap_provider(&config, 0);
    assert_eq!(provider.label, "corp");
    assert_eq!(provider.groups, LdapGroups::MemberOf);
    assert_eq!(provider.timeout, secs(5));
    assert_eq!(provider.user_filter, "(&(objectClass=person)(uid={username}))");
    assert_eq!((provider.username_attribute.as_str(), provider.email_attribute.as_str()), ("uid", "mail"));
    assert_eq!(provider.display_name_attributes, ["displayName", "cn"]);
    // An LDAP provider needs no trusted proxy: nobody's headers are believed.
    assert!(parse(&format!("server: {{trusted_proxies: []}}\n{}", ldap(""))).is_ok());
    // member_of: true is the default spelled out; a group search takes its own defaults.
    let member_of = parse(&ldap(", groups: {member_of: true}")).unwrap();
    assert_eq!(ldap_provider(&member_of, 0).groups, LdapGroups::MemberOf);
    let search = parse(&ldap(", groups: {base_dn: 'ou=groups,dc=example,dc=org', member_of: false}")).unwrap();
    assert_eq!(ldap_provider(&search, 0).groups, LdapGroups::search("ou=groups,dc=example,dc=org"));
    // Keys set to nothing keep their defaults, as everywhere.
    let nothing = parse(&ldap(", start_tls: ~, timeout: ~, groups: ~, attributes: {email: ~}")).unwrap();
    assert_eq!(ldap_provider(&nothing, 0), ldap_provider(&config, 0));
}

#[test]
fn header_and_ldap_providers_mix_in_order() {
    let yaml = "authentication:\n  providers:\n    - {id: sso, kind: header}\n    - {id: dir, kind: ldap, url: 'ldaps://dir', bind_dn: 'cn=s', bind_password: x, base_dn: 'o=x'}\n";
    let config = parse(yaml).unwrap();
    let kinds: Vec<String> = config.providers.iter().map(ToString::to_string).collect();
    assert_eq!(kinds, ["sso (header)", "dir (pwd)"]);
    let error = refused(&yaml.replace("id: dir", "id: sso"), "authentication.providers[1].id");
    assert!(error.to_string().contains("ids must be unique"), "{error}");
}

#[test]
fn bad_ldap_settings_are_refused_naming_the_key() {
    let at = "authentication.providers[0]";
    let required = "authentication: {providers: [{id: corp, kind: ldap, url: 'ldap://dir', bind_dn: 'cn=s', bind_password: x, base_dn: 'o=x'}]}";
    for (without, field) in [
        ("url: 'ldap://dir', ", "url"),
        ("bind_dn: 'cn=s', ", "bind_dn"),
        ("base_dn: 'o=x'", "base_dn"),
        ("bind_password: x, ", "bind_password"),
    ] {
        let yaml = required.replace(without, "").replace(", }", "}");
        let error = refused(&yaml, &format!("{at}.{field}"));
        assert!(error.to_string().contains("missing"), "{field}: {error}");
    }
    for (extra, field, expected) in [
        (", url: 'http://dir'", "url", "must start with ldap:// or ldaps://"),
        (", url: 'ldaps://'", "url", "names no host"),
        (", url: 'ldaps://dir:636', start_tls: true", "start_tls", "ldaps:// is TLS already"),
        (", bind_dn: ' '", "bind_dn", "is empty"),
        (", base_dn: ''", "base_dn", "is empty"),
        (", bind_password: ''", "bind_password", "is empty"),
        (", user_filter: '(uid=alice)'", "user_filter", "{username}"),
        (", user_filter: 'uid={username}'", "user_filter", "in parentheses"),
        (", username_attribute: ''", "username_attribute", "is empty"),
        (", disabled_filter: 'locked=TRUE'", "disabled_filter", "in parentheses"),
        (", groups: {base_dn: 'ou=g', filter: '(cn=x)'}", "groups.filter", "{dn}"),
        (", groups: {base_dn: 'ou=g', name_attribute: ' '}", "groups.name_attribute", "is empty"),
        (", groups: {filter: '(member={dn})'}", "groups.filter", "needs groups.base_dn"),
        (", groups: {name_attribute: cn}", "groups.name_attribute", "needs groups.base_dn"),
        (", groups: {member_of: true, base_dn: 'ou=g'}", "groups.base_dn", "keep one"),
        (", groups: {member_of: false}", "groups.member_of", "groups.base_dn"),
        (", attributes: {display_name: []}", "attributes.display_name", "one or more"),
        (", attributes: {display_name: [cn, '']}", "attributes.display_name", "none empty"),
        (", attributes: {email: ''}", "attributes.email", "is empty"),
        (", timeout: 0", "timeout", "more than 0 and at most 1m"),
        (", timeout: 61s", "timeout", "more than 0 and at most 1m"),
        (", timeout: 5x", "timeout", "unknown unit"),
        (", ca_file: ''", "ca_file", "empty"),
        (", user_header: X-User", "user_header", "is a key of kind: header providers"),
    ] {
        let error = refused(&ldap(extra), &format!("{at}.{field}"));
        assert!(error.to_string().contains(expected), "{extra}: {error}");
    }
    assert_eq!(ldap_provider(&parse(&ldap(", timeout: 1m")).unwrap(), 0).timeout, secs(60));
    let error = refused(
        &with_providers("    - {id: sso, kind: header, base_dn: 'o=x'}\n"),
        "authentication.providers[0].base_dn",
    );
    assert_eq!(
        error.to_string(),
        "authentication.providers[0].base_dn: is a key of kind: ldap providers; this provider is kind: header"
    );
}

#[test]
fn the_bind_password_is_inline_or_in_a_file_never_both_and_never_quoted() {
    let file = secret_file(b"from-the-file\r\n");
    let from_file =
        parse(&ldap(&format!(", bind_password: ~, bind_password_file: '{}'", file.path().display()))).unwrap();
    assert_eq!(ldap_provider(&from_file, 0).bind_password.expose(), "from-the-file");
    let error = refused(
        &ldap(&format!(", bind_password_file: '{}'", file.path().display())),
        "authentication.providers[0].bind_password_file",
    );
    assert!(error.to_string().contains("both bind_password and bind_password_file are set"), "{error}");
    assert!(!error.to_string().contains(BIND_PASSWORD), "{error}");
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope");
    let error = refused(
        &ldap(&format!(", bind_password: ~, bind_password_file: '{}'", missing.display())),
        "authentication.providers[0].bind_password_file",
    );
    assert!(error.to_string().contains("cannot read"), "{error}");
    let empty = secret_file(b"\n");
    let error = refused(
        &ldap(&format!(", bind_password: ~, bind_password_file: '{}'", empty.path().display())),
        "authentication.providers[0].bind_password_file",
    );
    assert!(error.to_string().contains("is empty"), "{error}");
    assert!(!format!("{:?}", parse(&ldap("")).unwrap()).contains(BIND_PASSWORD), "Debug never shows it");
}

#[test]
fn ldap_providers_show_in_the_effective_output_without_the_password_and_read_back() {
    let config = parse(&ldap(", label: Directory, groups: {base_dn: 'ou=groups'}, ca_file: /etc/ca.pem")).unwrap();
    for json in [false, true] {
        let text = render_effective(&config, json);
        assert!(!text.contains(BIND_PASSWORD), "{text}");
        let again = parse(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
        let mut again = ldap_provider(&again, 0).clone();
        assert_eq!(again.bind_password.expose(), "[redacted]", "{text}");
        again.bind_password = ldap_provider(&config, 0).bind_password.clone();
        assert_eq!(again, *ldap_provider(&config, 0), "{text}");
    }
    let value: serde_json::Value = serde_json::from_str(&render_effective(&config, true)).unwrap();
    assert_eq!(
        value["authentication"]["providers"][0],
        serde_json::json!({
            "id": "corp", "kind": "ldap", "label": "Directory", "url": "ldap://dir.example.org:389",
            "start_tls": false, "bind_dn": "cn=svc,dc=example,dc=org", "bind_password": "[redacted]",
            "base_dn": "ou=people,dc=example,dc=org", "user_filter": "(&(objectClass=person)(uid={username}))",
            "username_attribute": "uid", "disabled_filter": null,
            "groups": {"base_dn": "ou=groups", "filter": "(&(objectClass=groupOfNames)(member={dn}))", "name_attribute": "cn"},
            "attributes": {"display_name": ["displayName", "cn"], "email": "mail"},
            "timeout": "5s", "ca_file": "/etc/ca.pem",
        })
    );
    let file = secret_file(BIND_PASSWORD.as_bytes());
    let from_file =
        parse(&ldap(&format!(", bind_password: ~, bind_password_file: '{}'", file.path().display()))).unwrap();
    let text = render_effective(&from_file, false);
    assert!(!text.contains(BIND_PASSWORD) && text.contains("bind_password: '[redacted]'"), "{text}");
    assert!(text.contains("member_of: true"), "{text}");
}

#[test]
fn refresh_interval_defaults_to_five_minutes_and_comes_from_file_or_environment() {
    let config = parse("").unwrap();
    assert_eq!(config.refresh_interval, secs(300));
    assert_eq!(config.refresh_interval, sessiond_server::state::DEFAULT_REFRESH_INTERVAL);
    let value: serde_json::Value = serde_json::from_str(&render_effective(&config, true)).unwrap();
    assert_eq!(value["authentication"]["refresh_interval"], "5m");
    assert_eq!(parse("authentication: {refresh_interval: 1h}").unwrap().refresh_interval, secs(3600));
    let env =
        parse_env("authentication: {refresh_interval: 1h}", &[("SESSIOND__AUTHENTICATION__REFRESH_INTERVAL", "30s")])
            .unwrap();
    assert_eq!(env.refresh_interval, secs(30));
    let text = render_effective(&env, false);
    assert_eq!(parse(&text).unwrap().refresh_interval, secs(30), "reads back: {text}");
    assert_eq!(parse("authentication: {refresh_interval: 10s}").unwrap().refresh_interval, secs(10));
    assert_eq!(parse("authentication: {refresh_interval: 1d}").unwrap().refresh_interval, secs(86_400));
}

#[test]
fn refresh_intervals_under_ten_seconds_or_over_a_day_are_refused() {
    for value in ["9s", "0", "25h", "2d", "-1", "5x"] {
        refused(&format!("authentication: {{refresh_interval: {value}}}"), "authentication.refresh_interval");
    }
    let error = refused("authentication: {refresh_interval: 5s}", "authentication.refresh_interval");
    assert!(error.to_string().contains("at least 10s and at most 1d"), "{error}");
    let error = parse_env("", &[("SESSIOND__AUTHENTICATION__REFRESH_INTERVAL", "1s")]).unwrap_err();
    assert_eq!(error.key(), Some("authentication.refresh_interval"));
    assert!(error.to_string().contains("SESSIOND__AUTHENTICATION__REFRESH_INTERVAL"), "{error}");
}

/// The YAML blocks of `docs/providers/ldap.md`.
const LDAP_DOC: &str = include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/providers/ldap.md"));

#[test]
fn the_ldap_guides_example_is_a_valid_configuration() {
    let blocks: Vec<&str> =
        LDAP_DOC.split("```yaml\n").skip(1).map(|block| &block[..block.find("```").unwrap()]).collect();
    assert_eq!(blocks.len(), 1, "the configuration section's example");
    // The example's password file is one only the deployment has.
    let password = secret_file(b"bind-pw\n");
    let yaml = blocks[0].replace("/run/secrets/ldap-bind", &password.path().display().to_string());
    assert_ne!(yaml, blocks[0], "the example reads the password from a file");
    let error = parse(&ldap(", url: 'ldaps://dir.example.org', start_tls: true")).unwrap_err();
    assert!(LDAP_DOC.contains(&format!("\n{error}\n")), "docs/providers/ldap.md does not show: {error}");
    let config = parse(&yaml).unwrap_or_else(|e| panic!("{e}\n{yaml}"));
    assert_eq!(config.refresh_interval, secs(300));
    let ldap = ldap_provider(&config, 0);
    assert_eq!((ldap.id.as_str(), ldap.label.as_str()), ("ldap", "Company directory"));
    assert_eq!(ldap.url, "ldaps://ldap.example.org:636");
    assert_eq!(ldap.bind_password.expose(), "bind-pw");
    assert_eq!(ldap.disabled_filter.as_deref(), Some("(pwdAccountLockedTime=*)"));
    assert_eq!(ldap.groups, LdapGroups::MemberOf);
    let defaults = LdapProvider::new("ldap", "", "", "", "");
    assert_eq!(
        (&ldap.user_filter, &ldap.username_attribute, &ldap.display_name_attributes, &ldap.email_attribute),
        (
            &defaults.user_filter,
            &defaults.username_attribute,
            &defaults.display_name_attributes,
            &defaults.email_attribute
        ),
        "the example's commented values are the defaults"
    );
    assert_eq!(ldap.timeout, defaults.timeout);
}

const CLIENT_SECRET: &str = "oidc-client-secret-do-not-show";

/// An OpenID Connect provider with only the required keys, with `extra` keys (inline YAML,
/// `, k: v`) added or in place of those.
fn oidc(extra: &str) -> String {
    provider_yaml(
        &format!(
            "{{id: corp, kind: oidc, issuer: 'https://id.example.com/realms/corp', client_id: sessiond, \
             client_secret: {CLIENT_SECRET}}}"
        ),
        extra,
    )
}

fn oidc_provider(config: &Config, index: usize) -> &OidcProvider {
    match &config.providers[index] {
        Provider::Oidc(oidc) => oidc,
        other => panic!("not an oidc provider: {other:?}"),
    }
}

/// A file holding one PEM certificate (its contents are not parsed at load, only recognised).
fn pem_file() -> tempfile::NamedTempFile {
    secret_file(b"-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n")
}

#[test]
fn every_oidc_setting_is_read() {
    let secret = secret_file(format!("{CLIENT_SECRET}\n").as_bytes());
    let ca = pem_file();
    let yaml = format!(
        "authentication:
  providers:
    - id: corp
      kind: oidc
      label: Sign in with Corp
      issuer: https://id.example.com/realms/corp
      client_id: sessiond
      client_secret_file: {}
      scopes: [openid, email, groups]
      claims:
        username: preferred_username
        groups: roles
        email: mail
        name: display_name
      logout: true
      timeout: 20s
      ca_file: {}
",
        secret.path().display(),
        ca.path().display()
    );
    let config = parse(&yaml).unwrap();
    let expected = OidcProvider {
        id: "corp".into(),
        label: "Sign in with Corp".into(),
        issuer: "https://id.example.com/realms/corp".into(),
        client_id: "sessiond".into(),
        client_secret: BindPassword(CLIENT_SECRET.into()),
        scopes: vec!["openid".into(), "email".into(), "groups".into()],
        claims: ProviderClaims {
            username: "preferred_username".into(),
            groups: "roles".into(),
            email: "mail".into(),
            name: "display_name".into(),
        },
        logout: true,
        timeout: secs(20),
        ca_file: Some(ca.path().to_owned()),
    };
    assert_eq!(*oidc_provider(&config, 0), expected, "the file's trailing newline is not part of the secret");
    assert_eq!(config.providers[0].method(), "oidc");
    assert!(config.providers[0].has_own_journey(), "a button of its own");
}

#[test]
fn oidc_providers_take_cores_defaults_and_always_ask_for_openid() {
    let config = parse(&oidc("")).unwrap();
    let expected = OidcProvider::new("corp", "https://id.example.com/realms/corp", "sessiond", CLIENT_SECRET);
    assert_eq!(*oidc_provider(&config, 0), expected);
    assert_eq!(expected.scopes, ["openid", "profile", "email"]);
    assert_eq!(expected.claims.username, "sub", "the one claim a provider never reassigns");
    assert!(!format!("{config:?}").contains(CLIENT_SECRET), "Debug never shows it");
    let config = parse(&oidc(", scopes: [email, ' groups ']")).unwrap();
    assert_eq!(oidc_provider(&config, 0).scopes, ["openid", "email", "groups"], "without openid there is no ID token");
    let config = parse(&oidc(", issuer: 'http://127.0.0.1:8080/op'")).unwrap();
    assert_eq!(oidc_provider(&config, 0).issuer, "http://127.0.0.1:8080/op", "plain HTTP on this machine only");
}

#[test]
fn oidc_providers_need_an_issuer_a_client_and_its_secret() {
    for (key, message) in [
        ("issuer", "missing; an oidc provider needs the provider's issuer URL"),
        ("client_id", "missing; an oidc provider needs the client id registered at the provider"),
    ] {
        let yaml = oidc(&format!(", {key}: ~"));
        let at = format!("authentication.providers[0].{key}");
        assert_eq!(refused(&yaml, &at).to_string(), format!("{at}: {message}"));
    }
    let yaml = oidc(", client_secret: ~");
    assert_eq!(
        refused(&yaml, "authentication.providers[0].client_secret").to_string(),
        "authentication.providers[0].client_secret: missing; an oidc provider needs the client secret: set client_secret or client_secret_file"
    );
    let file = secret_file(CLIENT_SECRET.as_bytes());
    let both = oidc(&format!(", client_secret_file: '{}'", file.path().display()));
    let error = refused(&both, "authentication.providers[0].client_secret_file");
    assert!(error.to_string().contains("keep only one"), "{error}");
    refused(&oidc(", issuer: '  '"), "authentication.providers[0].issuer");
    refused(&oidc(", client_id: ''"), "authentication.providers[0].client_id");
    refused(&oidc(", client_secret: ''"), "authentication.providers[0].client_secret");
}

#[test]
fn bad_oidc_settings_are_refused_naming_the_key() {
    let missing_ca = oidc(", ca_file: /nonexistent/ca.pem");
    let not_pem = secret_file(b"not a certificate");
    let not_pem = oidc(&format!(", ca_file: '{}'", not_pem.path().display()));
    for (yaml, key, expected) in [
        (oidc(", issuer: 'http://id.example.com'"), "issuer", "http:// only on a loopback host"),
        (oidc(", issuer: 'id.example.com'"), "issuer", "absolute https:// URL"),
        (oidc(", issuer: 'ftp://id.example.com'"), "issuer", "absolute https:// URL"),
        (oidc(", issuer: 'https://id.example.com/?tenant=1'"), "issuer", "query or a fragment"),
        (oidc(", issuer: 'https://u:p@id.example.com'"), "issuer", "credentials"),
        (oidc(", scopes: ['open id']"), "scopes", "without spaces"),
        (oidc(", scopes: [openid, '']"), "scopes", "without spaces"),
        (oidc(", claims: {username: ''}"), "claims.username", "leave the key out"),
        (oidc(", claims: {groups: ' '}"), "claims.groups", "leave the key out"),
        (oidc(", timeout: 0s"), "timeout", "more than 0 and at most 1m"),
        (oidc(", timeout: 2m"), "timeout", "more than 0 and at most 1m"),
        (missing_ca, "ca_file", "cannot read /nonexistent/ca.pem"),
        (not_pem, "ca_file", "holds no PEM certificate"),
    ] {
        let at = format!("authentication.providers[0].{key}");
        let error = refused(&yaml, &at);
        assert!(error.to_string().contains(expected), "{yaml}: {error}");
    }
    let error = parse(&oidc(", claims: {subject: sub}")).unwrap_err();
    assert!(error.to_string().contains("subject"), "{error}");
}

#[test]
fn keys_of_other_kinds_are_refused_on_oidc_providers_and_oidc_keys_on_others() {
    for (extra, key, owner) in [
        (", bind_dn: 'cn=x'", "bind_dn", "ldap"),
        (", user_header: X-User", "user_header", "header"),
        (", groups: {base_dn: x}", "groups", "ldap"),
    ] {
        let at = format!("authentication.providers[0].{key}");
        let error = refused(&oidc(extra), &at);
        assert_eq!(
            error.to_string(),
            format!("{at}: is a key of kind: {owner} providers; this provider is kind: oidc")
        );
    }
    for (yaml, key) in [
        (ldap(", issuer: 'https://id.example.com'"), "issuer"),
        (ldap(", logout: true"), "logout"),
        (with_providers("    - {id: sso, kind: header, client_id: x}\n"), "client_id"),
        (with_providers("    - {id: sso, kind: header, timeout: 5s}\n"), "timeout"),
    ] {
        let at = format!("authentication.providers[0].{key}");
        let error = refused(&yaml, &at);
        assert!(error.to_string().contains("is a key of kind: "), "{error}");
    }
    let error =
        refused(&with_providers("    - {id: sso, kind: header, ca_file: x}\n"), "authentication.providers[0].ca_file");
    assert_eq!(
        error.to_string(),
        "authentication.providers[0].ca_file: is a key of kind: ldap and kind: oidc providers; this provider is kind: header"
    );
}

#[test]
fn oidc_providers_show_in_the_effective_output_without_the_secret_and_read_back() {
    let ca = pem_file();
    let config =
        parse(&oidc(&format!(", logout: true, claims: {{groups: roles}}, ca_file: '{}'", ca.path().display())))
            .unwrap();
    for json in [false, true] {
        let text = render_effective(&config, json);
        assert!(!text.contains(CLIENT_SECRET), "{text}");
        let again = parse(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
        let mut again = oidc_provider(&again, 0).clone();
        assert_eq!(again.client_secret.expose(), "[redacted]", "{text}");
        again.client_secret = oidc_provider(&config, 0).client_secret.clone();
        assert_eq!(again, *oidc_provider(&config, 0), "{text}");
    }
    let value: serde_json::Value = serde_json::from_str(&render_effective(&config, true)).unwrap();
    assert_eq!(
        value["authentication"]["providers"][0],
        serde_json::json!({
            "id": "corp", "kind": "oidc", "label": "corp", "issuer": "https://id.example.com/realms/corp",
            "client_id": "sessiond", "client_secret": "[redacted]", "scopes": ["openid", "profile", "email"],
            "claims": {"username": "sub", "groups": "roles", "email": "email", "name": "name"},
            "logout": true, "timeout": "10s", "ca_file": ca.path().display().to_string(),
        })
    );
}

/// An identity provider's metadata as pysaml2 writes it: an entity id, an HTTP-Redirect single
/// sign-on service and a signing certificate.
#[cfg(feature = "saml")]
const IDP_METADATA: &str = include_str!("testdata/saml-idp-metadata.xml");

#[cfg(feature = "saml")]
fn saml_provider(config: &Config, index: usize) -> &sessiond_core::provider::SamlProvider {
    match &config.providers[index] {
        Provider::Saml(saml) => saml,
        other => panic!("not a saml provider: {other:?}"),
    }
}

#[cfg(feature = "saml")]
#[test]
fn saml_providers_read_their_settings_and_check_the_metadata() {
    use sessiond_core::provider::{ProviderClaims, SamlProvider};
    let metadata = secret_file(IDP_METADATA.as_bytes());
    let at = metadata.path().display();
    let config =
        parse(&format!("authentication: {{providers: [{{id: corp, kind: saml, idp_metadata_file: '{at}'}}]}}"))
            .unwrap();
    assert_eq!(*saml_provider(&config, 0), SamlProvider::new("corp", metadata.path()));
    assert_eq!(ProviderClaims::saml().username, "name_id", "the subject's NameID unless told otherwise");
    assert_eq!(config.providers[0].method(), "saml");
    assert!(config.providers[0].has_own_journey());
    let yaml = format!(
        "authentication:\n  providers:\n    - {{id: corp, kind: saml, label: Corp SAML, idp_metadata_file: '{at}', \
         entity_id: 'https://auth.example.org/sp', claims: {{username: uid, groups: memberOf, email: email, name: cn}}}}\n"
    );
    let config = parse(&yaml).unwrap();
    let saml = saml_provider(&config, 0);
    assert_eq!((saml.label.as_str(), saml.entity_id.as_deref()), ("Corp SAML", Some("https://auth.example.org/sp")));
    assert_eq!(
        saml.claims,
        ProviderClaims { username: "uid".into(), groups: "memberOf".into(), email: "email".into(), name: "cn".into() }
    );
    for json in [false, true] {
        let text = render_effective(&config, json);
        let again = parse(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
        assert_eq!(saml_provider(&again, 0), saml, "{text}");
    }
}

#[cfg(not(feature = "saml"))]
#[test]
fn saml_providers_are_refused_by_a_build_without_saml() {
    let error = refused(
        "authentication: {providers: [{id: corp, kind: saml, idp_metadata_file: x.xml}]}",
        "authentication.providers[0].kind",
    );
    assert!(error.to_string().contains("built without SAML"), "{error}");
}

#[cfg(feature = "saml")]
#[test]
fn saml_providers_without_usable_metadata_are_refused() {
    let key = "authentication.providers[0].idp_metadata_file";
    let error = refused("authentication: {providers: [{id: corp, kind: saml}]}", key);
    assert!(error.to_string().contains("missing; a saml provider needs the identity provider's metadata"), "{error}");
    let unsigned = IDP_METADATA
        .split("<ns0:KeyDescriptor")
        .next()
        .map(|head| format!("{head}{}", &IDP_METADATA[IDP_METADATA.find("</ns0:KeyDescriptor>").unwrap() + 20..]))
        .unwrap();
    assert!(!unsigned.contains("X509Certificate"), "{unsigned}");
    let no_sso = IDP_METADATA.replace("HTTP-Redirect", "HTTP-Artifact");
    for (contents, expected) in [
        ("not xml at all".to_owned(), "not SAML metadata"),
        (unsigned, "no signing certificate"),
        (no_sso, "no SingleSignOnService with the HTTP-Redirect binding"),
    ] {
        let file = secret_file(contents.as_bytes());
        let yaml = format!(
            "authentication: {{providers: [{{id: corp, kind: saml, idp_metadata_file: '{}'}}]}}",
            file.path().display()
        );
        let error = refused(&yaml, key);
        assert!(error.to_string().contains(expected), "{expected}: {error}");
    }
    let error =
        refused("authentication: {providers: [{id: corp, kind: saml, idp_metadata_file: /nonexistent.xml}]}", key);
    assert!(error.to_string().contains("cannot read /nonexistent.xml"), "{error}");
    let metadata = secret_file(IDP_METADATA.as_bytes());
    let at = metadata.path().display();
    for (extra, field, expected) in [
        ("issuer: 'https://id.example.com'", "issuer", "is a key of kind: oidc providers; this provider is kind: saml"),
        ("claims: {username: ''}", "claims.username", "is empty"),
        ("entity_id: ' '", "entity_id", "must not be empty"),
    ] {
        let yaml =
            format!("authentication: {{providers: [{{id: corp, kind: saml, idp_metadata_file: '{at}', {extra}}}]}}");
        let error = refused(&yaml, &format!("authentication.providers[0].{field}"));
        assert!(error.to_string().contains(expected), "{extra}: {error}");
    }
    let error = refused(&oidc(", idp_metadata_file: x.xml"), "authentication.providers[0].idp_metadata_file");
    assert!(error.to_string().contains("is a key of kind: saml providers"), "{error}");
}
