//! The configuration as written: structs that mirror the YAML, one `Option` per key.
//!
//! Nothing here is validated beyond its type; [`super::validate`] turns these into the types the
//! rest of the program uses. A key set to nothing (`inactivity:`) counts as absent.

use super::Secret;
use serde::Deserialize;
use serde::de::{self, Deserializer, Visitor};
use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;

/// The whole file.
#[derive(Debug, Default, Deserialize)]
#[cfg_attr(test, derive(serde::Serialize))]
#[serde(deny_unknown_fields)]
pub(super) struct ConfigFile {
    /// Directory for the embedded store, the generated secret, the users file and the control
    /// socket. Default: `./sessiond-data`. Env: `SESSIOND__DATA_DIR`.
    pub(super) data_dir: Option<PathBuf>,
    /// The server secret, at least 32 bytes; it derives the keys that encrypt data at rest and
    /// client-side cookies. Default: generated into `<data_dir>/secret` on first run.
    /// Env: `SESSIOND__SECRET`.
    pub(super) secret: Option<Secret>,
    /// A file holding the secret (a trailing newline is ignored); not together with `secret`.
    /// Default: none. Env: `SESSIOND__SECRET_FILE`.
    pub(super) secret_file: Option<PathBuf>,
    /// The secret in force before the current one, at least 32 bytes, kept while rotating: the
    /// Redis store still opens values sealed under it and seals everything new under `secret`.
    /// Needs `secret` or `secret_file`. Default: none. Env: `SESSIOND__SECRET_PREVIOUS`.
    pub(super) secret_previous: Option<Secret>,
    /// A file holding the previous secret; not together with `secret_previous`. Default: none.
    /// Env: `SESSIOND__SECRET_PREVIOUS_FILE`.
    pub(super) secret_previous_file: Option<PathBuf>,
    /// HTTP listener and request handling.
    pub(super) server: Option<Server>,
    /// Where sessions are stored.
    pub(super) storage: Option<Storage>,
    /// The realms by name. Default: one realm, `main`, with every default.
    pub(super) realms: Option<BTreeMap<String, Realm>>,
    /// The users file.
    pub(super) users: Option<Users>,
    /// Login providers beside the users file.
    pub(super) authentication: Option<Authentication>,
    /// Login throttling.
    pub(super) regulation: Option<Regulation>,
    /// Diagnostic logging.
    pub(super) log: Option<Log>,
    /// The audit log.
    pub(super) audit: Option<Audit>,
    /// Access rules for forward auth.
    pub(super) access_control: Option<AccessControl>,
}

/// `server`.
#[derive(Debug, Default, Deserialize)]
#[cfg_attr(test, derive(serde::Serialize))]
#[serde(deny_unknown_fields)]
pub(super) struct Server {
    /// Address and port to listen on, `IP:PORT`. Default: `127.0.0.1:8470`.
    /// Env: `SESSIOND__SERVER__LISTEN`.
    pub(super) listen: Option<String>,
    /// Public URL of the portal, `http(s)://host[:port][/path]`. Default: `http://<listen>`, with
    /// `127.0.0.1` when listening on every address. Env: `SESSIOND__SERVER__PORTAL_URL`.
    pub(super) portal_url: Option<String>,
    /// IP addresses or CIDR ranges whose forwarding headers are believed; `[]` trusts nobody.
    /// Default: loopback (`127.0.0.0/8`, `::1/128`).
    /// Env: `SESSIOND__SERVER__TRUSTED_PROXIES` (comma-separated, `[]` for none).
    pub(super) trusted_proxies: Option<Vec<String>>,
    /// Extra places a login may redirect to: `host`, `*.host` or `https://host[:port]`.
    /// Default: none. Env: `SESSIOND__SERVER__ALLOWED_REDIRECTS` (comma-separated).
    pub(super) allowed_redirects: Option<Vec<String>>,
    /// Members of this group may use the admin API. Default: `admins`.
    /// Env: `SESSIOND__SERVER__ADMIN_GROUP`.
    pub(super) admin_group: Option<String>,
    /// How recent a sign-in must be for sensitive actions (changing the second factor, signing
    /// out every other session) to go ahead without the password; `0` asks for the password
    /// every time. At most `24h`. Default: `5m`. Env: `SESSIOND__SERVER__REAUTH_WINDOW`.
    pub(super) reauth_window: Option<DurationSpec>,
    /// Largest request body accepted, in bytes. Default: `65536`.
    /// Env: `SESSIOND__SERVER__MAX_BODY_BYTES`.
    pub(super) max_body_bytes: Option<u64>,
    /// Serve `GET /metrics` on this address (IP:PORT) instead of the main listener. Default:
    /// unset (`/metrics` on the main listener). Env: `SESSIOND__SERVER__METRICS_LISTEN`.
    pub(super) metrics_listen: Option<String>,
}

/// `storage`.
#[derive(Debug, Default, Deserialize)]
#[cfg_attr(test, derive(serde::Serialize))]
#[serde(deny_unknown_fields)]
pub(super) struct Storage {
    /// `embedded` (a database file, one process), `memory` (lost on restart) or `redis` (shared
    /// by several instances). Default: `embedded`. Env: `SESSIOND__STORAGE__KIND`.
    pub(super) kind: Option<String>,
    /// Database file of the embedded store; ignored by `memory` and `redis`.
    /// Default: `<data_dir>/sessiond.redb`. Env: `SESSIOND__STORAGE__PATH`.
    pub(super) path: Option<PathBuf>,
    /// The Redis deployment, with `kind: redis` only.
    pub(super) redis: Option<Redis>,
}

/// `storage.redis`: exactly one of `url`, `sentinel` and `cluster`.
#[derive(Debug, Default, Deserialize)]
#[cfg_attr(test, derive(serde::Serialize))]
#[serde(deny_unknown_fields)]
pub(super) struct Redis {
    /// One server: `redis://[user:password@]host[:port][/db]`, `rediss://…` (TLS) or
    /// `unix:///path/redis.sock[?db=N]`. May carry credentials, so it is redacted in
    /// `config check`. Default: none. Env: `SESSIOND__STORAGE__REDIS__URL`.
    pub(super) url: Option<String>,
    /// A master found through Redis Sentinel.
    pub(super) sentinel: Option<RedisSentinel>,
    /// A Redis Cluster.
    pub(super) cluster: Option<RedisCluster>,
    /// ACL user for the data nodes; overrides one in `url`. Default: none.
    /// Env: `SESSIOND__STORAGE__REDIS__USERNAME`.
    pub(super) username: Option<String>,
    /// Password for the data nodes; overrides one in `url`. Default: none.
    /// Env: `SESSIOND__STORAGE__REDIS__PASSWORD`.
    pub(super) password: Option<String>,
    /// A file holding that password; not together with `password`. Default: none.
    /// Env: `SESSIOND__STORAGE__REDIS__PASSWORD_FILE`.
    pub(super) password_file: Option<PathBuf>,
    /// Put in front of every key, so several deployments can share one Redis; no `{` or `}`.
    /// Default: `sessiond:`. Env: `SESSIOND__STORAGE__REDIS__KEY_PREFIX`.
    pub(super) key_prefix: Option<String>,
    /// Longest wait for one Redis command, connecting included. Default: `2s`.
    /// Env: `SESSIOND__STORAGE__REDIS__TIMEOUT`.
    pub(super) timeout: Option<DurationSpec>,
    /// How long this instance may serve a verified session from memory; other instances' writes
    /// reach it at once over pub/sub, and while that link is down the cache is not used. `0`
    /// turns the cache off. Default: `5s`. Env: `SESSIOND__STORAGE__REDIS__CACHE_TTL`.
    pub(super) cache_ttl: Option<DurationSpec>,
    /// Most sessions kept in that cache. Default: `100000`.
    /// Env: `SESSIOND__STORAGE__REDIS__CACHE_CAPACITY`.
    pub(super) cache_capacity: Option<u64>,
}

/// `storage.redis.sentinel`.
#[derive(Debug, Default, Deserialize)]
#[cfg_attr(test, derive(serde::Serialize))]
#[serde(deny_unknown_fields)]
pub(super) struct RedisSentinel {
    /// The master's name in the sentinels' configuration; required.
    /// Env: `SESSIOND__STORAGE__REDIS__SENTINEL__MASTER`.
    pub(super) master: Option<String>,
    /// Sentinel addresses, `host:port` or `redis://host:port`; at least one.
    /// Env: `SESSIOND__STORAGE__REDIS__SENTINEL__NODES` (comma-separated).
    pub(super) nodes: Option<Vec<String>>,
    /// Password of the sentinels themselves. Default: none.
    /// Env: `SESSIOND__STORAGE__REDIS__SENTINEL__PASSWORD`.
    pub(super) password: Option<String>,
    /// A file holding that password; not together with `password`. Default: none.
    /// Env: `SESSIOND__STORAGE__REDIS__SENTINEL__PASSWORD_FILE`.
    pub(super) password_file: Option<PathBuf>,
    /// Database index on the master. Default: `0`. Env: `SESSIOND__STORAGE__REDIS__SENTINEL__DB`.
    pub(super) db: Option<u64>,
}

/// `storage.redis.cluster`.
#[derive(Debug, Default, Deserialize)]
#[cfg_attr(test, derive(serde::Serialize))]
#[serde(deny_unknown_fields)]
pub(super) struct RedisCluster {
    /// Addresses of some cluster nodes, `host:port` or `redis://host:port`; the rest are
    /// discovered. At least one. Env: `SESSIOND__STORAGE__REDIS__CLUSTER__NODES` (comma-separated).
    pub(super) nodes: Option<Vec<String>>,
}

/// `realms.<name>`.
#[derive(Debug, Default, Deserialize)]
#[cfg_attr(test, derive(serde::Serialize))]
#[serde(deny_unknown_fields)]
pub(super) struct Realm {
    /// Cookie domain: the portal's host or a parent of it, never a public suffix. Default:
    /// host-only cookies on the portal's host. Env: `SESSIOND__REALMS__<NAME>__DOMAIN`.
    pub(super) domain: Option<String>,
    /// Public URL of the portal for this realm. Default: `server.portal_url`.
    /// Env: `SESSIOND__REALMS__<NAME>__PORTAL_URL`.
    pub(super) portal_url: Option<String>,
    /// The session cookie.
    pub(super) cookie: Option<Cookie>,
    /// Where sessions live: `server` (the cookie holds a random token, the session lives in the
    /// store) or `client` (the cookie holds the whole session, sealed; the store keeps only
    /// revocations). Default: `server`.
    /// Env: `SESSIOND__REALMS__<NAME>__LOCATION`.
    pub(super) location: Option<String>,
    /// Absolute lifetime from login; activity never extends it. Default: `1h`.
    /// Env: `SESSIOND__REALMS__<NAME>__EXPIRATION`.
    pub(super) expiration: Option<DurationSpec>,
    /// Idle limit: the session ends when no request has used it for this long. `0` turns it off.
    /// Does not apply to remembered sessions. Default: `5m`.
    /// Env: `SESSIOND__REALMS__<NAME>__INACTIVITY`.
    pub(super) inactivity: Option<DurationSpec>,
    /// Lifetime of a session whose user ticked "remember me"; `-1` turns the feature off.
    /// Default: `1M`. Env: `SESSIOND__REALMS__<NAME>__REMEMBER_ME`.
    pub(super) remember_me: Option<DurationSpec>,
    /// Session JWTs.
    pub(super) jwt: Option<Jwt>,
    /// Login journeys: the state of a login in progress.
    pub(super) journeys: Option<Journeys>,
}

/// `realms.<name>.jwt`.
#[derive(Debug, Default, Deserialize)]
#[cfg_attr(test, derive(serde::Serialize))]
#[serde(deny_unknown_fields)]
pub(super) struct Jwt {
    /// Whether logins and `/api/v1/sessions/authenticate` answer a signed `session_jwt`.
    /// Default: `true`. Env: `SESSIOND__REALMS__<NAME>__JWT__ENABLED`.
    pub(super) enabled: Option<bool>,
    /// How long each session JWT is valid (at most `1d`). Default: `5m`.
    /// Env: `SESSIOND__REALMS__<NAME>__JWT__LIFETIME`.
    pub(super) lifetime: Option<DurationSpec>,
    /// Also set the JWT in the `<cookie name>_jwt` cookie. Default: `false`.
    /// Env: `SESSIOND__REALMS__<NAME>__JWT__COOKIE`.
    pub(super) cookie: Option<bool>,
    /// Forward auth passes a session JWT to applications in `Remote-Jwt`. Default: `false`.
    /// Env: `SESSIOND__REALMS__<NAME>__JWT__HEADER`.
    pub(super) header: Option<bool>,
    /// How often the signing key rotates by itself; `0` rotates only on `sessiond keys rotate`.
    /// Default: `30d`. Env: `SESSIOND__REALMS__<NAME>__JWT__ROTATION`.
    pub(super) rotation: Option<DurationSpec>,
}

/// `realms.<name>.journeys`.
#[derive(Debug, Default, Deserialize)]
#[cfg_attr(test, derive(serde::Serialize))]
#[serde(deny_unknown_fields)]
pub(super) struct Journeys {
    /// Where the state of a login in progress lives: `server` (in the store, under the hash of
    /// the journey's id) or `client` (sealed into the `auth_id`). Default: `server`.
    /// Env: `SESSIOND__REALMS__<NAME>__JOURNEYS__LOCATION`.
    pub(super) location: Option<String>,
    /// Every step answers a new `auth_id` and only the current one is accepted; an earlier one
    /// ends the journey. Default: `true`. Env: `SESSIOND__REALMS__<NAME>__JOURNEYS__ALLOWLISTING`.
    pub(super) allowlisting: Option<bool>,
    /// How long a login may take from its first step (more than zero, at most `1h`).
    /// Default: `5m`. Env: `SESSIOND__REALMS__<NAME>__JOURNEYS__TIMEOUT`.
    pub(super) timeout: Option<DurationSpec>,
}

/// `realms.<name>.cookie`.
#[derive(Debug, Default, Deserialize)]
#[cfg_attr(test, derive(serde::Serialize))]
#[serde(deny_unknown_fields)]
pub(super) struct Cookie {
    /// Name of the session cookie. Default: generated per realm (`sd_4f9c2a7e`) and kept in the
    /// store. Env: `SESSIOND__REALMS__<NAME>__COOKIE__NAME`.
    pub(super) name: Option<String>,
    /// `strict`, `lax` or `none` (`none` needs a secure cookie). Default: `lax`.
    /// Env: `SESSIOND__REALMS__<NAME>__COOKIE__SAME_SITE`.
    pub(super) same_site: Option<String>,
    /// `true`, `false` or `auto` (secure unless the portal is plain http on localhost).
    /// Default: `auto`. Env: `SESSIOND__REALMS__<NAME>__COOKIE__SECURE`.
    pub(super) secure: Option<String>,
    /// `false` makes a browser-session cookie, removed when the browser closes. Default: `true`.
    /// Env: `SESSIOND__REALMS__<NAME>__COOKIE__PERSISTENT`.
    pub(super) persistent: Option<bool>,
    /// `true` (JavaScript cannot read tokens), `false` (it can), or `enforced` (also refuse
    /// tokens sent in request bodies). Default: `true`.
    /// Env: `SESSIOND__REALMS__<NAME>__COOKIE__HTTP_ONLY`.
    pub(super) http_only: Option<String>,
}

/// `users`.
#[derive(Debug, Default, Deserialize)]
#[cfg_attr(test, derive(serde::Serialize))]
#[serde(deny_unknown_fields)]
pub(super) struct Users {
    /// The users file (YAML, argon2id hashes). Default: `<data_dir>/users.yml`.
    /// Env: `SESSIOND__USERS__FILE`.
    pub(super) file: Option<PathBuf>,
}

/// `authentication`.
#[derive(Debug, Default, Deserialize)]
#[cfg_attr(test, derive(serde::Serialize))]
#[serde(deny_unknown_fields)]
pub(super) struct Authentication {
    /// Login providers beside the users file, in the order the portal shows their buttons
    /// (and LDAP directories are asked). Default: none. File only.
    pub(super) providers: Option<Vec<LoginProvider>>,
    /// How often each LDAP directory is asked whether the users with sessions are still there;
    /// `10s` to `1d`. Default: `5m`. Env: `SESSIOND__AUTHENTICATION__REFRESH_INTERVAL`.
    pub(super) refresh_interval: Option<DurationSpec>,
}

/// `authentication.providers[]`.
#[derive(Debug, Default, Deserialize)]
#[cfg_attr(test, derive(serde::Serialize))]
#[serde(deny_unknown_fields)]
pub(super) struct LoginProvider {
    /// 1 to 32 of `a-z`, `0-9`, `-` and `_`, unique, and none of `file`, `login`, `password`,
    /// `step_up`, `totp`, `users`; the provider's path is `/login/<id>` and its users are named
    /// `<id>:<name>`. Required.
    pub(super) id: Option<String>,
    /// `header`: a trusted proxy in front of `/login/<id>` names the user in request headers.
    /// `ldap`: a directory checks the password typed at the password step. Required.
    pub(super) kind: Option<String>,
    /// What the portal's button says, 1 to 64 characters. Default: the id.
    pub(super) label: Option<String>,
    /// `header` only: the header with the user name. Default: `Remote-User`.
    pub(super) user_header: Option<String>,
    /// `header` only: the header with comma-separated groups; `""` takes no groups.
    /// Default: `Remote-Groups`.
    pub(super) groups_header: Option<String>,
    /// `header` only: the header with the email address; `""` takes none.
    /// Default: `Remote-Email`.
    pub(super) email_header: Option<String>,
    /// `header` only: the header with the display name; `""` takes none. Default: `Remote-Name`.
    pub(super) name_header: Option<String>,
    /// `ldap` only: `ldap://host[:port]` or `ldaps://host[:port]`. Required.
    pub(super) url: Option<String>,
    /// `ldap` only: upgrade an `ldap://` connection with StartTLS before binding; not with
    /// `ldaps://`. Default: `false`.
    pub(super) start_tls: Option<bool>,
    /// `ldap` only: the service account that searches users and groups. Required.
    pub(super) bind_dn: Option<String>,
    /// `ldap` only: the service account's password; this or `bind_password_file` is required.
    pub(super) bind_password: Option<String>,
    /// `ldap` only: a file holding the service account's password (a trailing newline is
    /// ignored); not together with `bind_password`.
    pub(super) bind_password_file: Option<PathBuf>,
    /// `ldap` only: where users are searched (whole subtree). Required.
    pub(super) base_dn: Option<String>,
    /// `ldap` only: the user search filter, in parentheses, with `{username}` for the typed name.
    /// Default: `(&(objectClass=person)(uid={username}))`.
    pub(super) user_filter: Option<String>,
    /// `ldap` only: the found entry's attribute that names the user. Default: `uid`.
    pub(super) username_attribute: Option<String>,
    /// `ldap` only: a filter, in parentheses, that marks a found user disabled. Default: none.
    pub(super) disabled_filter: Option<String>,
    /// `ldap` only: where the user's groups come from. Default: `memberOf`.
    pub(super) groups: Option<LdapGroups>,
    /// `ldap` only: the attributes read from the user entry.
    pub(super) attributes: Option<LdapAttributes>,
    /// `ldap` and `oidc`: the limit on each request to the directory or the provider; more
    /// than `0`, at most `1m`. Default: `5s` (`ldap`), `10s` (`oidc`).
    pub(super) timeout: Option<DurationSpec>,
    /// `ldap` and `oidc`: PEM file of the CAs that sign the directory's or the provider's
    /// certificate. Default: none, the system's roots.
    pub(super) ca_file: Option<PathBuf>,
    /// `oidc` only: the issuer identifier (`https://`, or `http://` on a loopback host).
    /// Required.
    pub(super) issuer: Option<String>,
    /// `oidc` only: the client id registered at the provider. Required.
    pub(super) client_id: Option<String>,
    /// `oidc` only: the client secret; this or `client_secret_file` is required.
    pub(super) client_secret: Option<String>,
    /// `oidc` only: a file holding the client secret (a trailing newline is ignored).
    pub(super) client_secret_file: Option<PathBuf>,
    /// `oidc` only: the scopes asked for, with `openid`. Default: `[openid, profile, email]`.
    pub(super) scopes: Option<Vec<String>>,
    /// `oidc` only: the claims the user is read from.
    pub(super) claims: Option<Claims>,
    /// `oidc` only: signing out also signs out at the provider (RP-initiated logout).
    /// Default: `false`.
    pub(super) logout: Option<bool>,
    /// `saml` only: the identity provider's metadata file. Required.
    pub(super) idp_metadata_file: Option<PathBuf>,
    /// `saml` only: this service provider's entity id. Default: `<portal_url>/login/<id>/metadata`.
    pub(super) entity_id: Option<String>,
}

/// `authentication.providers[].claims` (`kind: oidc` and `kind: saml`).
#[derive(Debug, Default, Deserialize)]
#[cfg_attr(test, derive(serde::Serialize))]
#[serde(deny_unknown_fields)]
pub(super) struct Claims {
    /// The claim or attribute naming the user. Default: `sub` (oidc), `name_id` (saml).
    pub(super) username: Option<String>,
    /// The claim or attribute with the groups. Default: `groups`.
    pub(super) groups: Option<String>,
    /// The claim or attribute with the email address. Default: `email` (oidc), `mail` (saml).
    pub(super) email: Option<String>,
    /// The claim or attribute with the display name. Default: `name` (oidc), `displayName` (saml).
    pub(super) name: Option<String>,
}

/// `authentication.providers[].groups` (`kind: ldap`).
#[derive(Debug, Default, Deserialize)]
#[cfg_attr(test, derive(serde::Serialize))]
#[serde(deny_unknown_fields)]
pub(super) struct LdapGroups {
    /// Read the user entry's `memberOf`; not together with `base_dn`. Default: `true` unless
    /// `base_dn` is set.
    pub(super) member_of: Option<bool>,
    /// Search the groups under this DN instead of reading `memberOf`. Default: none.
    pub(super) base_dn: Option<String>,
    /// With `base_dn`: the group filter, with `{dn}` for the user entry's DN.
    /// Default: `(&(objectClass=groupOfNames)(member={dn}))`.
    pub(super) filter: Option<String>,
    /// With `base_dn`: the attribute with the group's name. Default: `cn`.
    pub(super) name_attribute: Option<String>,
}

/// `authentication.providers[].attributes` (`kind: ldap`).
#[derive(Debug, Default, Deserialize)]
#[cfg_attr(test, derive(serde::Serialize))]
#[serde(deny_unknown_fields)]
pub(super) struct LdapAttributes {
    /// The attributes with the display name; the first the entry has.
    /// Default: `[displayName, cn]`.
    pub(super) display_name: Option<Vec<String>>,
    /// The attribute with the email address. Default: `mail`.
    pub(super) email: Option<String>,
}

/// `regulation`.
#[derive(Debug, Default, Deserialize)]
#[cfg_attr(test, derive(serde::Serialize))]
#[serde(deny_unknown_fields)]
pub(super) struct Regulation {
    /// Failed logins allowed within `find_time` before the user is refused; `0` turns throttling
    /// off. Default: `3`. Env: `SESSIOND__REGULATION__MAX_RETRIES`.
    pub(super) max_retries: Option<u64>,
    /// Window in which failed logins are counted. Default: `2m`.
    /// Env: `SESSIOND__REGULATION__FIND_TIME`.
    pub(super) find_time: Option<DurationSpec>,
    /// How long a user is refused once over the limit. Default: `5m`.
    /// Env: `SESSIOND__REGULATION__BAN_TIME`.
    pub(super) ban_time: Option<DurationSpec>,
}

/// `log`.
#[derive(Debug, Default, Deserialize)]
#[cfg_attr(test, derive(serde::Serialize))]
#[serde(deny_unknown_fields)]
pub(super) struct Log {
    /// A level (`error`, `warn`, `info`, `debug`, `trace`, `off`) or per-target directives
    /// (`info,sessiond_server=debug`). Default: `info`. Env: `SESSIOND__LOG__LEVEL`.
    pub(super) level: Option<String>,
    /// `text` or `json`. Default: `text`. Env: `SESSIOND__LOG__FORMAT`.
    pub(super) format: Option<String>,
}

/// `audit`.
#[derive(Debug, Default, Deserialize)]
#[cfg_attr(test, derive(serde::Serialize))]
#[serde(deny_unknown_fields)]
pub(super) struct Audit {
    /// File to which audit events are appended as JSON lines. Default: no audit log.
    /// Env: `SESSIOND__AUDIT__PATH`.
    pub(super) path: Option<PathBuf>,
    /// Also write audit events to standard output (for containers). Default: `false`.
    /// Env: `SESSIOND__AUDIT__STDOUT`.
    pub(super) stdout: Option<bool>,
}

/// `access_control`.
#[derive(Debug, Default, Deserialize)]
#[cfg_attr(test, derive(serde::Serialize))]
#[serde(deny_unknown_fields)]
pub(super) struct AccessControl {
    /// `bypass`, `one_factor`, `two_factor` or `deny`: what applies to requests that no rule
    /// matches. Default: `deny`. Env: `SESSIOND__ACCESS_CONTROL__DEFAULT_POLICY`.
    pub(super) default_policy: Option<String>,
    /// The rules, checked in order; the first that matches decides. Default: none. File only.
    pub(super) rules: Option<Vec<AccessRule>>,
}

/// `access_control.rules[]`. The schema walk has already turned a lone `domain` text into a list
/// and each `subject` entry into a list of conditions.
#[derive(Debug, Default, Deserialize)]
#[cfg_attr(test, derive(serde::Serialize))]
#[serde(deny_unknown_fields)]
pub(super) struct AccessRule {
    /// Host patterns: `app.example.com`, `*.example.com` (hosts below it) or `*`; required.
    pub(super) domain: Option<Vec<String>>,
    /// Regular expressions on the normalised path (never the query). Default: any path.
    pub(super) resources: Option<Vec<String>>,
    /// HTTP methods. Default: any method.
    pub(super) methods: Option<Vec<String>>,
    /// Alternatives of `user:<name>` / `group:<name>` conditions. Default: anyone, signed in or
    /// not.
    pub(super) subject: Option<Vec<Vec<String>>>,
    /// `bypass`, `one_factor`, `two_factor` or `deny`; required.
    pub(super) policy: Option<String>,
}

/// A duration as written: `90s`, `5m`, `1h30m`, `1M`, a bare number of seconds, or `-1`/`0`
/// where the key gives them a meaning. Parsed during validation, so that the error names the key.
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(test, derive(serde::Serialize))]
pub(super) struct DurationSpec(pub(super) String);

impl<'de> Deserialize<'de> for DurationSpec {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct DurationVisitor;
        impl Visitor<'_> for DurationVisitor {
            type Value = DurationSpec;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a duration such as 5m or 1h30m, or a number of seconds")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<DurationSpec, E> {
                Ok(DurationSpec(v.to_owned()))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<DurationSpec, E> {
                Ok(DurationSpec(v.to_string()))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<DurationSpec, E> {
                Ok(DurationSpec(v.to_string()))
            }
        }
        deserializer.deserialize_any(DurationVisitor)
    }
}

impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        // Length is checked during validation, where the error can name the key.
        String::deserialize(deserializer).map(|text| Secret(text.into_bytes()))
    }
}

#[cfg(test)]
impl serde::Serialize for Secret {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str("[redacted]")
    }
}
