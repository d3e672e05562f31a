//! The effective configuration, as `sessiond config check` prints it: every key with the value in
//! force, defaults included, in the layout of the file, so the output can be saved and read back.
//! Secrets (`secret`, `secret_previous`, Redis passwords, the password inside a Redis URL, an LDAP
//! provider's `bind_password`) are shown as `[redacted]`.

use super::{Config, StorageConfig};
use serde::Serialize;
use sessiond_core::cookie::SameSite;
use sessiond_core::duration::format_duration;
use sessiond_core::provider::{LdapGroups, LdapProvider, OidcProvider, Provider, ProviderClaims, SamlProvider};
use sessiond_core::realm::{HttpOnlyMode, RealmPolicy};
use sessiond_store::{RedisMode, RedisSettings};
use std::collections::BTreeMap;
use std::path::Path;

/// What the effective configuration shows in place of the secret.
pub(crate) const REDACTED: &str = "[redacted]";

/// The effective configuration as YAML, or as JSON when `json` is true.
pub(crate) fn render_effective(config: &Config, json: bool) -> String {
    let view = Effective::from(config);
    let rendered = if json {
        serde_json::to_string_pretty(&view)
            .map(|mut text| {
                text.push('\n');
                text
            })
            .map_err(|e| e.to_string())
    } else {
        serde_yaml_ng::to_string(&view).map_err(|e| e.to_string())
    };
    // Plain structs of strings, numbers and maps with string keys always serialize; should that
    // ever change, the message says so instead of printing half a configuration.
    rendered.unwrap_or_else(|e| format!("# the effective configuration could not be written: {e}\n"))
}

#[derive(Serialize)]
struct Effective {
    data_dir: String,
    secret: Option<&'static str>,
    secret_previous: Option<&'static str>,
    server: Server,
    storage: Storage,
    realms: BTreeMap<String, Realm>,
    users: Users,
    authentication: Authentication,
    regulation: Regulation,
    log: Log,
    audit: Audit,
    access_control: AccessControl,
}

#[derive(Serialize)]
struct Server {
    listen: String,
    portal_url: String,
    trusted_proxies: Vec<String>,
    allowed_redirects: Vec<String>,
    admin_group: String,
    reauth_window: String,
    max_body_bytes: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    metrics_listen: Option<String>,
}

#[derive(Serialize)]
struct Storage {
    kind: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    path: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    redis: Option<Redis>,
}

#[derive(Serialize)]
struct Redis {
    #[serde(skip_serializing_if = "Option::is_none")]
    url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    sentinel: Option<Sentinel>,
    #[serde(skip_serializing_if = "Option::is_none")]
    cluster: Option<Cluster>,
    username: Option<String>,
    password: Option<&'static str>,
    key_prefix: String,
    timeout: String,
    cache_ttl: String,
    cache_capacity: usize,
}

#[derive(Serialize)]
struct Sentinel {
    master: String,
    nodes: Vec<String>,
    password: Option<&'static str>,
    db: i64,
}

#[derive(Serialize)]
struct Cluster {
    nodes: Vec<String>,
}

impl From<&RedisSettings> for Redis {
    fn from(settings: &RedisSettings) -> Self {
        let nodes = |nodes: &[String]| nodes.iter().map(|n| redact_url(n)).collect();
        let (mut url, mut sentinel, mut cluster) = (None, None, None);
        match &settings.mode {
            RedisMode::Standalone { url: u } => url = Some(redact_url(u)),
            RedisMode::Sentinel { master, nodes: list, password, db } => {
                sentinel = Some(Sentinel {
                    master: master.clone(),
                    nodes: nodes(list),
                    password: password.as_ref().map(|_| REDACTED),
                    db: db.unwrap_or(0),
                });
            }
            RedisMode::Cluster { nodes: list } => cluster = Some(Cluster { nodes: nodes(list) }),
        }
        Self {
            url,
            sentinel,
            cluster,
            username: settings.username.clone(),
            password: settings.password.as_ref().map(|_| REDACTED),
            key_prefix: settings.key_prefix.clone(),
            timeout: format_duration(settings.timeout),
            cache_ttl: settings.cache_ttl.map_or_else(|| "0".to_owned(), format_duration),
            cache_capacity: settings.cache_capacity,
        }
    }
}

/// `text` with the password of a URL (`user:password@`, or a `pass`/`password` query
/// parameter) replaced by `[redacted]`. A bare `host:port` passes through; anything else that
/// does not parse is withheld whole, since where a password would end cannot be told.
pub(crate) fn redact_url(text: &str) -> String {
    /// Letters only, so that URL encoding leaves it as it is.
    const MARK: &str = "REDACTEDXPASSWORD";
    if !text.contains("://") && !text.contains('@') {
        return text.to_owned();
    }
    let Ok(mut url) = url::Url::parse(text) else {
        return REDACTED.to_owned();
    };
    if url.password().is_some() {
        let _ = url.set_password(Some(MARK));
    }
    let pairs: Vec<(String, String)> = url.query_pairs().into_owned().collect();
    let is_password = |key: &str| key.eq_ignore_ascii_case("pass") || key.eq_ignore_ascii_case("password");
    if pairs.iter().any(|(key, _)| is_password(key)) {
        let mut query = url.query_pairs_mut();
        query.clear();
        for (key, value) in &pairs {
            query.append_pair(key, if is_password(key) { MARK } else { value });
        }
    }
    url.as_str().replace(MARK, REDACTED)
}

#[derive(Serialize)]
struct Realm {
    domain: Option<String>,
    portal_url: String,
    cookie: Cookie,
    location: &'static str,
    expiration: String,
    inactivity: String,
    remember_me: String,
    jwt: Jwt,
    journeys: Journeys,
}

#[derive(Serialize)]
struct Journeys {
    location: &'static str,
    allowlisting: bool,
    timeout: String,
}

#[derive(Serialize)]
struct Jwt {
    enabled: bool,
    lifetime: String,
    cookie: bool,
    header: bool,
    rotation: String,
}

#[derive(Serialize)]
struct Cookie {
    /// `null`: the realm's generated name, kept in the store.
    name: Option<String>,
    same_site: &'static str,
    secure: bool,
    persistent: bool,
    http_only: BoolOrWord,
}

#[derive(Serialize)]
#[serde(untagged)]
enum BoolOrWord {
    Bool(bool),
    Word(&'static str),
}

#[derive(Serialize)]
struct Users {
    file: String,
}

#[derive(Serialize)]
struct Authentication {
    providers: Vec<LoginProvider>,
    refresh_interval: String,
}

#[derive(Serialize)]
struct LoginProvider {
    id: String,
    kind: &'static str,
    label: String,
    #[serde(flatten)]
    header: Option<HeaderFields>,
    #[serde(flatten)]
    ldap: Option<LdapFields>,
    #[serde(flatten)]
    oidc: Option<OidcFields>,
    #[serde(flatten)]
    saml: Option<SamlFields>,
}

/// A SAML provider's settings.
#[derive(Serialize)]
struct SamlFields {
    idp_metadata_file: String,
    entity_id: Option<String>,
    claims: ClaimsView,
}

impl From<&SamlProvider> for SamlFields {
    fn from(s: &SamlProvider) -> Self {
        Self {
            idp_metadata_file: path(&s.idp_metadata_file),
            entity_id: s.entity_id.clone(),
            claims: ClaimsView::from(&s.claims),
        }
    }
}

/// An OpenID Connect provider's settings; the client secret shows as `[redacted]`.
#[derive(Serialize)]
struct OidcFields {
    issuer: String,
    client_id: String,
    client_secret: &'static str,
    scopes: Vec<String>,
    claims: ClaimsView,
    logout: bool,
    timeout: String,
    ca_file: Option<String>,
}

/// An OpenID Connect or SAML provider's `claims`.
#[derive(Serialize)]
struct ClaimsView {
    username: String,
    groups: String,
    email: String,
    name: String,
}

impl From<&ProviderClaims> for ClaimsView {
    fn from(c: &ProviderClaims) -> Self {
        Self { username: c.username.clone(), groups: c.groups.clone(), email: c.email.clone(), name: c.name.clone() }
    }
}

impl From<&OidcProvider> for OidcFields {
    fn from(o: &OidcProvider) -> Self {
        Self {
            issuer: o.issuer.clone(),
            client_id: o.client_id.clone(),
            client_secret: REDACTED,
            scopes: o.scopes.clone(),
            claims: ClaimsView::from(&o.claims),
            logout: o.logout,
            timeout: format_duration(o.timeout),
            ca_file: o.ca_file.as_deref().map(path),
        }
    }
}

/// An LDAP provider's settings; the password shows as `[redacted]`, whether it came inline or
/// from `bind_password_file`.
#[derive(Serialize)]
struct LdapFields {
    url: String,
    start_tls: bool,
    bind_dn: String,
    bind_password: &'static str,
    base_dn: String,
    user_filter: String,
    username_attribute: String,
    disabled_filter: Option<String>,
    groups: LdapGroupsView,
    attributes: LdapAttributes,
    timeout: String,
    ca_file: Option<String>,
}

#[derive(Serialize)]
#[serde(untagged)]
enum LdapGroupsView {
    MemberOf { member_of: bool },
    Search { base_dn: String, filter: String, name_attribute: String },
}

#[derive(Serialize)]
struct LdapAttributes {
    display_name: Vec<String>,
    email: String,
}

impl From<&LdapProvider> for LdapFields {
    fn from(l: &LdapProvider) -> Self {
        Self {
            url: redact_url(&l.url),
            start_tls: l.start_tls,
            bind_dn: l.bind_dn.clone(),
            bind_password: REDACTED,
            base_dn: l.base_dn.clone(),
            user_filter: l.user_filter.clone(),
            username_attribute: l.username_attribute.clone(),
            disabled_filter: l.disabled_filter.clone(),
            groups: match &l.groups {
                LdapGroups::MemberOf => LdapGroupsView::MemberOf { member_of: true },
                LdapGroups::Search { base_dn, filter, name_attribute } => LdapGroupsView::Search {
                    base_dn: base_dn.clone(),
                    filter: filter.clone(),
                    name_attribute: name_attribute.clone(),
                },
            },
            attributes: LdapAttributes {
                display_name: l.display_name_attributes.clone(),
                email: l.email_attribute.clone(),
            },
            timeout: format_duration(l.timeout),
            ca_file: l.ca_file.as_deref().map(path),
        }
    }
}

/// A header provider's headers, lowercase; `""` for one that is not read (`null` would read back
/// as the default).
#[derive(Serialize)]
struct HeaderFields {
    user_header: String,
    groups_header: String,
    email_header: String,
    name_header: String,
}

impl From<&Provider> for LoginProvider {
    fn from(provider: &Provider) -> Self {
        let off = |name: &Option<String>| name.clone().unwrap_or_default();
        let (kind, header, ldap, oidc, saml) = match provider {
            Provider::Header(h) => (
                "header",
                Some(HeaderFields {
                    user_header: h.user_header.clone(),
                    groups_header: off(&h.groups_header),
                    email_header: off(&h.email_header),
                    name_header: off(&h.name_header),
                }),
                None,
                None,
                None,
            ),
            Provider::Ldap(l) => ("ldap", None, Some(LdapFields::from(l)), None, None),
            Provider::Oidc(o) => ("oidc", None, None, Some(OidcFields::from(o)), None),
            Provider::Saml(s) => ("saml", None, None, None, Some(SamlFields::from(s))),
            // A kind added to core but not yet to this view: at least what every provider has.
            other => (other.method(), None, None, None, None),
        };
        Self { id: provider.id().to_owned(), kind, label: provider.label().to_owned(), header, ldap, oidc, saml }
    }
}

#[derive(Serialize)]
struct Regulation {
    max_retries: u32,
    find_time: String,
    ban_time: String,
}

#[derive(Serialize)]
struct Log {
    level: String,
    format: &'static str,
}

#[derive(Serialize)]
struct Audit {
    path: Option<String>,
    stdout: bool,
}

#[derive(Serialize)]
struct AccessControl {
    default_policy: &'static str,
    rules: Vec<AccessRule>,
}

/// A rule in normalised form: lowercase domains, uppercase methods, every subject entry a list.
#[derive(Serialize)]
struct AccessRule {
    domain: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    resources: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    methods: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    subject: Option<Vec<Vec<String>>>,
    policy: &'static str,
}

impl From<&sessiond_core::access::AccessControl> for AccessControl {
    fn from(access: &sessiond_core::access::AccessControl) -> Self {
        let rules = access
            .rules()
            .iter()
            .map(|rule| {
                let spec = rule.to_spec();
                AccessRule {
                    domain: spec.domain.unwrap_or_default(),
                    resources: spec.resources,
                    methods: spec.methods,
                    subject: spec.subject,
                    policy: rule.policy().as_str(),
                }
            })
            .collect();
        Self { default_policy: access.default_policy().as_str(), rules }
    }
}

fn path(p: &Path) -> String {
    p.display().to_string()
}

impl From<&Config> for Effective {
    fn from(config: &Config) -> Self {
        let server = &config.server;
        Self {
            data_dir: path(&config.data_dir),
            secret: config.secret.as_ref().map(|_| REDACTED),
            secret_previous: config.secret_previous.as_ref().map(|_| REDACTED),
            server: Server {
                listen: server.listen.to_string(),
                portal_url: server.portal_url.to_string(),
                trusted_proxies: server.trusted_proxies.iter().map(ToString::to_string).collect(),
                allowed_redirects: server.allowed_redirects.clone(),
                admin_group: server.admin_group.clone(),
                // `0`: the password every time.
                reauth_window: if server.reauth_window.is_zero() {
                    "0".to_owned()
                } else {
                    format_duration(server.reauth_window)
                },
                max_body_bytes: server.max_body_bytes,
                metrics_listen: server.metrics_listen.map(|a| a.to_string()),
            },
            storage: match &config.storage {
                StorageConfig::Embedded { path: p } => Storage { kind: "embedded", path: Some(path(p)), redis: None },
                StorageConfig::Memory => Storage { kind: "memory", path: None, redis: None },
                StorageConfig::Redis(settings) => {
                    Storage { kind: "redis", path: None, redis: Some(Redis::from(settings)) }
                }
            },
            realms: config.realms.iter().map(|r| (r.name.clone(), Realm::from(r))).collect(),
            users: Users { file: path(&config.users_file) },
            authentication: Authentication {
                providers: config.providers.iter().map(LoginProvider::from).collect(),
                refresh_interval: format_duration(config.refresh_interval),
            },
            regulation: Regulation {
                max_retries: config.regulation.max_retries,
                find_time: format_duration(config.regulation.find_time),
                ban_time: format_duration(config.regulation.ban_time),
            },
            log: Log { level: config.log.level.clone(), format: config.log.format.as_str() },
            audit: Audit { path: config.audit_path.as_deref().map(path), stdout: config.audit_stdout },
            access_control: AccessControl::from(&config.access_control),
        }
    }
}

impl From<&RealmPolicy> for Realm {
    fn from(realm: &RealmPolicy) -> Self {
        let cookie = &realm.cookie;
        let timeouts = &realm.timeouts;
        Self {
            domain: cookie.domain.clone(),
            portal_url: realm.portal_url.to_string(),
            cookie: Cookie {
                name: cookie.name.clone(),
                same_site: match cookie.same_site {
                    SameSite::Strict => "strict",
                    SameSite::Lax => "lax",
                    SameSite::None => "none",
                },
                secure: cookie.secure,
                persistent: cookie.persistent,
                http_only: match cookie.http_only {
                    HttpOnlyMode::On => BoolOrWord::Bool(true),
                    HttpOnlyMode::Off => BoolOrWord::Bool(false),
                    HttpOnlyMode::Enforced => BoolOrWord::Word("enforced"),
                },
            },
            location: realm.location.as_str(),
            expiration: format_duration(timeouts.expiration),
            // The notation's words for "off": `0` for inactivity, `-1` for remember me.
            inactivity: timeouts.inactivity.map_or_else(|| "0".to_owned(), format_duration),
            remember_me: timeouts.remember_me.map_or_else(|| "-1".to_owned(), format_duration),
            jwt: Jwt {
                enabled: realm.jwt.enabled,
                lifetime: format_duration(realm.jwt.lifetime),
                cookie: realm.jwt.cookie,
                header: realm.jwt.header,
                rotation: realm.jwt.rotation.map_or_else(|| "0".to_owned(), format_duration),
            },
            journeys: Journeys {
                location: realm.journeys.location.as_str(),
                allowlisting: realm.journeys.allowlisting,
                timeout: format_duration(realm.journeys.timeout),
            },
        }
    }
}
