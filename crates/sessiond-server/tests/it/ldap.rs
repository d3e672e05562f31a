//! The LDAP provider against a real OpenLDAP `slapd`, started per test on a free loopback port
//! with a temporary configuration (docs/providers/ldap.md shows the same one): alice and bob in
//! `ou=people`, the group `dev` (alice) in `ou=groups`. Without slapd the tests skip loudly, and
//! fail under `CI=true`.

use crate::support::*;
use serde_json::{Value, json};
use sessiond_core::provider::{LdapGroups, LdapProvider, Provider};
use sessiond_server::ldap::{LdapDirectory, MAX_IDLE};
use sessiond_server::users::UsersFile;
use sessiond_store::{SessionFilter, Store};
use std::net::Ipv4Addr;
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const SUFFIX: &str = "dc=example,dc=org";
const ROOT_DN: &str = "cn=admin,dc=example,dc=org";
const ROOT_PW: &str = "admin-secret";

const DATA: &str = "\
dn: dc=example,dc=org
objectClass: dcObject
objectClass: organization
o: Example
dc: example

dn: ou=people,dc=example,dc=org
objectClass: organizationalUnit
ou: people

dn: ou=groups,dc=example,dc=org
objectClass: organizationalUnit
ou: groups

dn: uid=alice,ou=people,dc=example,dc=org
objectClass: inetOrgPerson
uid: alice
cn: Alice Liddell
sn: Liddell
displayName: Alice L.
mail: alice@example.org
userPassword: alice-ldap-pw

dn: uid=bob,ou=people,dc=example,dc=org
objectClass: inetOrgPerson
uid: bob
cn: Bob Dylan
sn: Dylan
mail: bob@example.org
userPassword: bob-ldap-pw

dn: cn=dev,ou=groups,dc=example,dc=org
objectClass: groupOfNames
cn: dev
member: uid=alice,ou=people,dc=example,dc=org
";

/// A running slapd; killed when dropped.
struct Slapd {
    child: Child,
    /// How to start it again: the program, its URLs and its configuration.
    command: (PathBuf, String, PathBuf),
    port: u16,
    /// With TLS: the `ldaps://` port, and the CA file that signed slapd's certificate.
    tls: Option<(u16, PathBuf)>,
    _dir: tempfile::TempDir,
}

impl Slapd {
    async fn start() -> Option<Self> {
        Self::start_with(false, false).await
    }

    /// With `member_of`, the memberof overlay fills users' `memberOf`; it acts on online
    /// changes only, so the group is then added once slapd listens.
    ///
    /// With `tls`, slapd also listens with `ldaps://` and offers StartTLS, with a certificate
    /// for 127.0.0.1 signed by a CA made for the test (with `openssl`).
    async fn start_with(member_of: bool, tls: bool) -> Option<Self> {
        let slapd = require("slapd", "/usr/sbin/slapd")?;
        let openssl = if tls { Some(require("openssl", "/usr/bin/openssl")?) } else { None };
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("db");
        std::fs::create_dir(&db).unwrap();
        let conf = dir.path().join("slapd.conf");
        std::fs::write(
            &conf,
            format!(
                "include /etc/ldap/schema/core.schema\n\
                 include /etc/ldap/schema/cosine.schema\n\
                 include /etc/ldap/schema/inetorgperson.schema\n\
                 pidfile {dir}/slapd.pid\n\
                 # An empty simple bind with a DN is then anonymous and succeeds, as on many\n\
                 # directories: the provider must never send one.\n\
                 allow bind_anon_dn\n\
                 modulepath /usr/lib/ldap\n\
                 moduleload back_mdb\n\
                 database mdb\n\
                 maxsize 10485760\n\
                 suffix \"{SUFFIX}\"\n\
                 rootdn \"{ROOT_DN}\"\n\
                 rootpw {ROOT_PW}\n\
                 directory {db}\n\
                 {overlay}",
                dir = dir.path().display(),
                db = db.display(),
                overlay = if member_of { "moduleload memberof\noverlay memberof\n" } else { "" },
            ),
        )
        .unwrap();
        let ca = openssl.map(|openssl| {
            let ca = make_certificates(&openssl, dir.path());
            let d = dir.path().display();
            let mut text = std::fs::read_to_string(&conf).unwrap();
            // TLS settings are global: before the database section.
            text = text.replacen(
                "database mdb",
                &format!(
                    "TLSCACertificateFile {d}/ca.pem\nTLSCertificateFile {d}/server.pem\n\
                     TLSCertificateKeyFile {d}/server.key\ndatabase mdb"
                ),
                1,
            );
            std::fs::write(&conf, text).unwrap();
            ca
        });
        let ldif = dir.path().join("data.ldif");
        let (people, group) = DATA.split_at(DATA.find("dn: cn=dev").unwrap());
        std::fs::write(&ldif, if member_of { people } else { DATA }).unwrap();
        // slapadd is slapd under another name: load the data offline, before it listens.
        let added = Command::new(&slapd)
            .arg0("slapadd")
            .args(["-f".as_ref(), conf.as_os_str(), "-l".as_ref(), ldif.as_os_str()])
            .output()
            .unwrap();
        assert!(added.status.success(), "slapadd: {}", String::from_utf8_lossy(&added.stderr));
        let port = free_port();
        let tls = ca.map(|ca| (free_port(), ca));
        let mut urls = format!("ldap://127.0.0.1:{port}/");
        if let Some((tls_port, _)) = &tls {
            urls.push_str(&format!(" ldaps://127.0.0.1:{tls_port}/"));
        }
        let command = (slapd, urls, conf);
        let child = Self::spawn(&command, port).await;
        let slapd = Self { child, command, port, tls, _dir: dir };
        if member_of {
            assert!(group.starts_with("dn: cn=dev,ou=groups"));
            slapd.add_dev_group().await;
        }
        Some(slapd)
    }

    /// Starts slapd and waits until it listens on `port`.
    async fn spawn((slapd, urls, conf): &(PathBuf, String, PathBuf), port: u16) -> Child {
        let child = Command::new(slapd)
            .args(["-d", "0", "-h", urls, "-f"])
            .arg(conf)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let started = Instant::now();
        while tokio::net::TcpStream::connect((Ipv4Addr::LOCALHOST, port)).await.is_err() {
            assert!(started.elapsed() < Duration::from_secs(20), "slapd did not listen on {port}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        child
    }

    /// Stops slapd, which closes every connection to it, and starts it again on the same port
    /// with the same data.
    async fn restart(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.child = Self::spawn(&self.command, self.port).await;
    }

    async fn add_dev_group(&self) {
        let (conn, mut ldap) = ldap3::LdapConnAsync::new(&self.url()).await.unwrap();
        ldap3::drive!(conn);
        ldap.simple_bind(ROOT_DN, ROOT_PW).await.unwrap().success().unwrap();
        let alice = format!("uid=alice,ou=people,{SUFFIX}");
        let attrs =
            vec![("objectClass", ["groupOfNames"].into()), ("cn", ["dev"].into()), ("member", [alice.as_str()].into())];
        ldap.add(&format!("cn=dev,ou=groups,{SUFFIX}"), attrs).await.unwrap().success().unwrap();
        ldap.unbind().await.unwrap();
    }

    fn url(&self) -> String {
        format!("ldap://127.0.0.1:{}", self.port)
    }

    /// The provider the tests sign in with: the root DN searches, groups by search.
    fn provider(&self) -> LdapProvider {
        let mut p = LdapProvider::new("ldap", self.url(), ROOT_DN, ROOT_PW, format!("ou=people,{SUFFIX}"));
        p.label = "Directory".into();
        p.groups = LdapGroups::search(format!("ou=groups,{SUFFIX}"));
        p.timeout = Duration::from_secs(2);
        p
    }

    /// Deletes an entry, as the root DN.
    async fn delete(&self, dn: &str) {
        let (conn, mut ldap) = ldap3::LdapConnAsync::new(&self.url()).await.unwrap();
        ldap3::drive!(conn);
        ldap.simple_bind(ROOT_DN, ROOT_PW).await.unwrap().success().unwrap();
        ldap.delete(dn).await.unwrap().success().unwrap();
        ldap.unbind().await.unwrap();
    }
}

impl Drop for Slapd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A CA (`ca.pem`) and a certificate for 127.0.0.1 it signed (`server.pem`, `server.key`) in
/// `dir`; answers the CA's path.
fn make_certificates(openssl: &Path, dir: &Path) -> PathBuf {
    let run = |args: &[&str]| {
        let out = Command::new(openssl).current_dir(dir).args(args).output().unwrap();
        assert!(out.status.success(), "openssl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    };
    let ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"];
    run(&[
        &["req", "-x509"][..],
        &ec,
        &["-keyout", "ca.key", "-out", "ca.pem", "-days", "2", "-subj", "/CN=sessiond test CA"],
    ]
    .concat());
    run(&[&["req"][..], &ec, &["-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=127.0.0.1"]].concat());
    std::fs::write(
        dir.join("server.ext"),
        "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n",
    )
    .unwrap();
    run(&[
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "server.pem",
        "-days",
        "2",
        "-extfile",
        "server.ext",
    ]);
    dir.join("ca.pem")
}

/// A users file without alice and bob, so that their names reach the directory.
fn file_without_them() -> UsersFile {
    let mut file = UsersFile::default();
    file.users.insert("root".into(), user("root-pw", &["admins"], false));
    file
}

async fn server(provider: LdapProvider) -> TestServer {
    TestServer::with(Options {
        providers: vec![Provider::Ldap(provider)],
        users: Some(file_without_them()),
        ..Options::default()
    })
    .await
}

async fn current(s: &TestServer, token: &str) -> Value {
    s.get_with_cookie("/api/v1/sessions/current", token).await.json().await.unwrap()
}

#[tokio::test]
async fn a_directory_user_signs_in_with_the_directory_password() {
    let Some(dir) = Slapd::start().await else { return };
    let s = server(dir.provider()).await;
    let token = s.login("alice", "alice-ldap-pw", false).await;
    let body = current(&s, &token).await;
    assert_eq!(body["session"]["user"], "ldap:alice", "{body}");
    assert_eq!(body["session"]["groups"], json!(["dev"]));
    assert_eq!(body["session"]["email"], "alice@example.org");
    assert_eq!(body["session"]["display_name"], "Alice L.");
    assert_eq!(body["session"]["amr"], json!(["pwd"]));
    // The directory matches names whatever their case; the session user is its spelling.
    let token = s.login("ALICE", "alice-ldap-pw", false).await;
    assert_eq!(current(&s, &token).await["session"]["user"], "ldap:alice");
    // No displayName: the cn is the next attribute looked at.
    let token = s.login("bob", "bob-ldap-pw", false).await;
    let body = current(&s, &token).await;
    assert_eq!(body["session"]["display_name"], "Bob Dylan");
    assert_eq!(body["session"]["groups"], json!([]));
}

#[tokio::test]
async fn wrong_empty_unknown_and_injected_names_and_passwords_are_refused() {
    let Some(dir) = Slapd::start().await else { return };
    let s = server(dir.provider()).await;
    for (user, password) in [
        ("alice", "wrong"),
        ("alice", "Alice-ldap-pw"),
        ("nobody", "alice-ldap-pw"),
        // A filter injection would match every entry (and then alice's password would do).
        ("*", "alice-ldap-pw"),
        ("*)(uid=*", "alice-ldap-pw"),
        ("alice)(|(uid=*", "alice-ldap-pw"),
    ] {
        let res = s.post("/api/v1/authenticate", login_body(user, password, false)).await;
        assert_eq!(error_code(res).await, (401, "invalid_credentials".into()), "{user:?} / {password:?}");
    }
    // An empty simple bind is an anonymous bind, which slapd accepts: the API refuses an empty
    // password as malformed, and the provider itself never binds with one (below).
    let res = s.post("/api/v1/authenticate", login_body("alice", "", false)).await;
    assert_eq!(error_code(res).await, (400, "bad_request".into()));
    let sessions = s.store.list_sessions(&SessionFilter::default()).await.unwrap();
    assert!(sessions.is_empty(), "no session made: {sessions:?}");
    let audit = std::fs::read_to_string(&s.audit_path).unwrap_or_default();
    assert_eq!(audit.matches("\"alice\"").count(), 2, "each refusal audited once: {audit}");
}

#[tokio::test]
async fn a_users_file_user_wins_over_the_directory_for_the_same_name() {
    let Some(dir) = Slapd::start().await else { return };
    // The default users file has alice (password alice-pw) and bob.
    let s = TestServer::with(Options { providers: vec![Provider::Ldap(dir.provider())], ..Options::default() }).await;
    let token = s.login("alice", "alice-pw", false).await;
    assert_eq!(current(&s, &token).await["session"]["user"], "alice");
    // The directory's password for the same name is not tried.
    let res = s.post("/api/v1/authenticate", login_body("alice", "alice-ldap-pw", false)).await;
    assert_eq!(error_code(res).await, (401, "invalid_credentials".into()));
}

#[tokio::test]
async fn a_directory_that_does_not_answer_is_503_and_makes_no_session() {
    let Some(dir) = Slapd::start().await else { return };
    let mut provider = dir.provider();
    provider.url = format!("ldap://127.0.0.1:{}", free_port());
    let s = server(provider).await;
    let res = s.post("/api/v1/authenticate", login_body("alice", "alice-ldap-pw", false)).await;
    assert_eq!(error_code(res).await, (503, "provider_unavailable".into()));
    assert!(s.store.list_sessions(&SessionFilter::default()).await.unwrap().is_empty());
    // Users-file users still sign in.
    s.login("root", "root-pw", false).await;
}

#[tokio::test]
async fn a_user_removed_from_the_directory_loses_their_sessions_at_the_next_refresh() {
    let Some(dir) = Slapd::start().await else { return };
    let s = TestServer::with(Options {
        providers: vec![Provider::Ldap(dir.provider())],
        users: Some(file_without_them()),
        refresh_interval: Duration::from_secs(60),
        ..Options::default()
    })
    .await;
    let alice = s.login("alice", "alice-ldap-pw", false).await;
    let bob = s.login("bob", "bob-ldap-pw", true).await;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(sessiond_server::background(s.app.clone(), Duration::from_millis(10), async move {
        let _ = stopped.await;
    }));
    // The first round refreshes at once: both are still in the directory.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(current(&s, &bob).await["session"]["user"], "ldap:bob");

    dir.delete(&format!("uid=bob,ou=people,{SUFFIX}")).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(current(&s, &bob).await["session"]["user"], "ldap:bob", "not before refresh_interval");
    s.advance(61);
    let started = Instant::now();
    let bob_filter = SessionFilter { realm: None, user: Some("ldap:bob".into()) };
    while !s.store.list_sessions(&bob_filter).await.unwrap().is_empty() {
        assert!(started.elapsed() < Duration::from_secs(10), "bob's session did not end");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(s.get_with_cookie("/api/v1/sessions/current", &bob).await.status(), 401);
    assert_eq!(current(&s, &alice).await["session"]["user"], "ldap:alice", "alice is still there");
    let audit = std::fs::read_to_string(&s.audit_path).unwrap_or_default();
    assert!(audit.contains("ldap_user_gone"), "{audit}");
    let _ = stop.send(());
    task.await.unwrap();
}

#[tokio::test]
async fn a_directory_that_stops_answering_ends_no_session_at_refresh() {
    let Some(dir) = Slapd::start().await else { return };
    let s = TestServer::with(Options {
        providers: vec![Provider::Ldap(dir.provider())],
        users: Some(file_without_them()),
        ..Options::default()
    })
    .await;
    let alice = s.login("alice", "alice-ldap-pw", false).await;
    drop(dir);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(sessiond_server::background(s.app.clone(), Duration::from_millis(10), async move {
        let _ = stopped.await;
    }));
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(current(&s, &alice).await["session"]["user"], "ldap:alice");
    let _ = stop.send(());
    task.await.unwrap();
}

#[tokio::test]
async fn the_provider_never_binds_with_an_empty_password() {
    let Some(dir) = Slapd::start().await else { return };
    let provider = dir.provider();
    assert!(LdapDirectory::new(provider.clone()).check_password("alice", "").await.unwrap().is_none());
    // What it guards against: slapd accepts a DN with no password as an anonymous bind.
    let (conn, mut ldap) = ldap3::LdapConnAsync::new(&dir.url()).await.unwrap();
    ldap3::drive!(conn);
    let anonymous = ldap.simple_bind(&format!("uid=alice,ou=people,{SUFFIX}"), "").await.unwrap();
    assert_eq!(anonymous.rc, 0, "an empty simple bind succeeds");
    let user = LdapDirectory::new(provider.clone()).check_password("alice", "alice-ldap-pw").await.unwrap().unwrap();
    assert_eq!(user.name, "ldap:alice");
    assert!(LdapDirectory::new(provider.clone()).still_present("alice").await.unwrap());
    assert!(!LdapDirectory::new(provider.clone()).still_present("carol").await.unwrap());
}

#[tokio::test]
async fn connections_are_kept_between_checks_and_replaced_when_the_directory_restarts() {
    let Some(mut dir) = Slapd::start().await else { return };
    let directory = std::sync::Arc::new(LdapDirectory::new(dir.provider()));
    assert!(directory.check_password("alice", "alice-ldap-pw").await.unwrap().is_some());
    assert_eq!((directory.connections_opened(), directory.idle_connections()), (1, 1));
    // A wrong password leaves the connection bound as nobody; the next check binds the service
    // account again before anything else, on the same connection.
    assert!(directory.check_password("alice", "wrong").await.unwrap().is_none());
    assert!(directory.check_password("alice", "alice-ldap-pw").await.unwrap().is_some());
    assert!(directory.still_present("alice").await.unwrap());
    assert!(!directory.still_present("carol").await.unwrap());
    assert_eq!(directory.connections_opened(), 1, "one connection served every check");

    // A burst opens what it needs and keeps at most MAX_IDLE of them.
    let mut burst = tokio::task::JoinSet::new();
    for _ in 0..MAX_IDLE + 2 {
        let directory = directory.clone();
        burst.spawn(async move { directory.check_password("alice", "alice-ldap-pw").await.unwrap().is_some() });
    }
    assert!(burst.join_all().await.into_iter().all(|signed_in| signed_in));
    assert_eq!(directory.idle_connections(), MAX_IDLE);
    let opened = directory.connections_opened();
    assert!((2..=(MAX_IDLE as u64 + 3)).contains(&opened), "{opened}");

    // The kept connections die with the directory; the next check opens a new one and is
    // answered, not refused as unavailable.
    dir.restart().await;
    assert!(directory.check_password("alice", "alice-ldap-pw").await.unwrap().is_some());
    assert!(directory.still_present("alice").await.unwrap());
    assert!(directory.connections_opened() > opened);
}

#[tokio::test]
async fn a_disabled_filter_refuses_the_login_and_the_service_account_must_bind() {
    let Some(dir) = Slapd::start().await else { return };
    let mut provider = dir.provider();
    provider.disabled_filter = Some("(mail=bob@example.org)".into());
    assert!(LdapDirectory::new(provider.clone()).check_password("bob", "bob-ldap-pw").await.unwrap().is_none());
    assert!(!LdapDirectory::new(provider.clone()).still_present("bob").await.unwrap());
    assert!(LdapDirectory::new(provider.clone()).check_password("alice", "alice-ldap-pw").await.unwrap().is_some());
    // A wrong service password is the operator's problem: unavailable, not a wrong password.
    let mut provider = dir.provider();
    provider.bind_password = sessiond_core::provider::BindPassword("wrong".into());
    let err = LdapDirectory::new(provider.clone()).check_password("alice", "alice-ldap-pw").await.unwrap_err();
    assert_eq!(err.code(), "provider_unavailable");
}

#[tokio::test]
async fn a_directory_user_reauthenticates_with_the_directory_password() {
    let Some(dir) = Slapd::start().await else { return };
    let s = TestServer::with(Options {
        providers: vec![Provider::Ldap(dir.provider())],
        users: Some(file_without_them()),
        reauth_window: Duration::from_secs(60),
        ..Options::default()
    })
    .await;
    let token = s.login("alice", "alice-ldap-pw", false).await;
    s.advance(61); // past server.reauth_window
    let enroll = |password: &'static str| {
        let s = &s;
        let token = token.clone();
        async move {
            s.client
                .post(s.url("/api/v1/totp/enroll"))
                .header("cookie", format!("{COOKIE}={token}"))
                .json(&json!({"password": password}))
                .send()
                .await
                .unwrap()
        }
    };
    assert_eq!(error_code(enroll("wrong").await).await, (401, "invalid_credentials".into()));
    assert_eq!(enroll("alice-ldap-pw").await.status(), 200);
}

#[tokio::test]
async fn groups_can_come_from_the_users_member_of_attribute() {
    let Some(dir) = Slapd::start_with(true, false).await else { return };
    let mut provider = dir.provider();
    provider.groups = LdapGroups::MemberOf;
    let s = server(provider).await;
    let token = s.login("alice", "alice-ldap-pw", false).await;
    assert_eq!(current(&s, &token).await["session"]["groups"], json!(["dev"]));
}

#[tokio::test]
async fn the_portal_sign_in_form_checks_directory_passwords_and_shows_no_button_for_them() {
    let Some(dir) = Slapd::start().await else { return };
    let s = server(dir.provider()).await;
    let mut jar = crate::portal::Jar::default();
    let html = crate::portal::get_page(&s, &mut jar, "/login").await;
    assert!(!html.contains("/login/ldap"), "a password provider has no button of its own");
    let jar = crate::portal::signed_in(&s, "alice", "alice-ldap-pw").await;
    let token = jar.get(COOKIE).unwrap().to_owned();
    assert_eq!(current(&s, &token).await["session"]["user"], "ldap:alice");
    // Nor a journey of its own.
    let res = s.post("/api/v1/authenticate?journey=ldap", json!({})).await;
    assert_eq!(error_code(res).await, (400, "bad_request".into()));
}

#[tokio::test]
async fn a_directory_user_with_a_totp_gives_a_code_next_and_keeps_the_directory_groups() {
    use sessiond_core::totp::{code_at, counter_at};
    use sessiond_server::clock::Clock as _;
    let Some(dir) = Slapd::start().await else { return };
    let s = server(dir.provider()).await;
    let now = s.clock.now();
    let secret =
        sessiond_server::totp::begin_enrollment(&s.store, &s.app.totp_sealer, "ldap:alice", now).await.unwrap();
    let code = |s: &TestServer| code_at(&secret, counter_at(s.clock.now()));
    sessiond_server::totp::confirm(&s.store, &s.app.totp_sealer, "ldap:alice", &code(&s), now).await.unwrap();
    s.advance(30);
    // Another spelling of the name is the same user, with the same second factor.
    let res = s.post("/api/v1/authenticate", login_body("Alice", "alice-ldap-pw", false)).await;
    let next: Value = res.json().await.unwrap();
    assert_eq!(next["callbacks"], json!([{"type": "totp"}]), "{next}");
    let auth_id = next["auth_id"].as_str().unwrap();
    let body = json!({"auth_id": auth_id, "callbacks": [{"type": "totp", "value": code(&s)}]});
    let done: Value = s.post("/api/v1/authenticate", body).await.json().await.unwrap();
    assert_eq!(done["session"]["user"], "ldap:alice", "{done}");
    assert_eq!(done["session"]["amr"], json!(["pwd", "otp"]));
    assert_eq!(done["session"]["groups"], json!(["dev"]));
    assert_eq!(done["session"]["email"], "alice@example.org");
}

#[tokio::test]
async fn ldaps_and_start_tls_check_the_directory_certificate_against_ca_file() {
    let Some(dir) = Slapd::start_with(false, true).await else { return };
    let (tls_port, ca) = dir.tls.clone().unwrap();
    let mut ldaps = dir.provider();
    ldaps.url = format!("ldaps://127.0.0.1:{tls_port}");
    ldaps.ca_file = Some(ca.clone());
    let user = LdapDirectory::new(ldaps.clone()).check_password("alice", "alice-ldap-pw").await.unwrap().unwrap();
    assert_eq!(user.groups, ["dev"]);

    let mut start_tls = dir.provider();
    start_tls.start_tls = true;
    start_tls.ca_file = Some(ca);
    assert!(LdapDirectory::new(start_tls.clone()).check_password("alice", "alice-ldap-pw").await.unwrap().is_some());
    assert!(LdapDirectory::new(start_tls.clone()).check_password("alice", "wrong").await.unwrap().is_none());

    // Without the CA, the system's roots do not know the test's CA: refused, not believed.
    ldaps.ca_file = None;
    let err = LdapDirectory::new(ldaps.clone()).check_password("alice", "alice-ldap-pw").await.unwrap_err();
    assert_eq!(err.code(), "provider_unavailable");
}

#[tokio::test]
async fn a_directory_that_accepts_but_never_answers_is_cut_off_at_the_timeout() {
    // A listener that completes the TCP handshake (the kernel's backlog) and then says nothing.
    let silent = tokio::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await.unwrap();
    let port = silent.local_addr().unwrap().port();
    let mut provider = LdapProvider::new("ldap", format!("ldap://127.0.0.1:{port}"), ROOT_DN, ROOT_PW, SUFFIX);
    provider.timeout = Duration::from_millis(300);
    let started = Instant::now();
    let err = LdapDirectory::new(provider.clone()).check_password("alice", "pw").await.unwrap_err();
    assert_eq!(err.code(), "provider_unavailable");
    assert!(started.elapsed() < Duration::from_secs(3), "took {:?}", started.elapsed());
    let err = LdapDirectory::new(provider.clone()).still_present("alice").await.unwrap_err();
    assert_eq!(err.code(), "provider_unavailable");
    drop(silent);
}

#[tokio::test]
async fn a_directory_login_forgets_the_failures_of_the_typed_name() {
    let Some(dir) = Slapd::start().await else { return };
    let s = server(dir.provider()).await;
    let wrong = || s.post("/api/v1/authenticate", login_body("alice", "wrong", false));
    for _ in 0..2 {
        assert_eq!(error_code(wrong().await).await, (401, "invalid_credentials".into()));
    }
    s.login("alice", "alice-ldap-pw", false).await;
    for _ in 0..2 {
        assert_eq!(error_code(wrong().await).await, (401, "invalid_credentials".into()));
    }
    // Three failures in a row would ban alice (regulation.max_retries); four across a sign-in not.
    s.login("alice", "alice-ldap-pw", false).await;
}
