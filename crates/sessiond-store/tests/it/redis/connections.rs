//! Ways of reaching Redis: unix socket, database index, passwords, and settings that cannot work.

use crate::support::redis::{self as rd, Probe};
use sessiond_store::conformance::{T0, sample_session};
use sessiond_store::{AnyStore, RedisMode, RedisSettings, RedisStore, Store, StoreError};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unix_socket_url_reaches_the_server() {
    let Some(deployment) = rd::standalone().await else { return };
    let mut settings = RedisSettings::standalone(format!("unix://{}", deployment.socket.display()));
    settings.key_prefix = rd::unique_prefix();
    let store = RedisStore::connect(settings.clone(), rd::keys()).await.unwrap();
    let (_, record) = sample_session("main", "alice", T0);
    store.create_session(&record).await.unwrap();

    // The same data over TCP: it is one server.
    let mut tcp = deployment.settings();
    tcp.key_prefix = settings.key_prefix;
    let over_tcp = RedisStore::connect(tcp, rd::keys()).await.unwrap();
    assert_eq!(over_tcp.session_by_token(&record.token_hash).await.unwrap(), Some(record));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn database_index_in_the_url_is_used() {
    let Some(deployment) = rd::standalone().await else { return };
    let mut settings = RedisSettings::standalone(format!("{}/5", deployment.server.url()));
    settings.key_prefix = rd::unique_prefix();
    let store = RedisStore::connect(settings.clone(), rd::keys()).await.unwrap();
    let (_, record) = sample_session("main", "alice", T0);
    store.create_session(&record).await.unwrap();

    let in_db5 = Probe::standalone(&format!("{}/5", deployment.server.url())).await;
    let in_db0 = Probe::standalone(&deployment.server.url()).await;
    assert!(!in_db5.keys(&settings.key_prefix).await.is_empty());
    assert_eq!(in_db0.keys(&settings.key_prefix).await, Vec::<String>::new());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sentinel_database_index_is_used() {
    let Some(set) = rd::sentinel_set().await else { return };
    let mut settings = set.settings();
    if let RedisMode::Sentinel { db, .. } = &mut settings.mode {
        *db = Some(3);
    }
    let store = RedisStore::connect(settings.clone(), rd::keys()).await.unwrap();
    let (_, record) = sample_session("main", "alice", T0);
    store.create_session(&record).await.unwrap();

    let master = format!("redis://:{}@127.0.0.1:{}", rd::DATA_PASSWORD, set.master_port_now());
    let in_db3 = Probe::standalone(&format!("{master}/3")).await;
    let in_db0 = Probe::standalone(&master).await;
    assert!(!in_db3.keys(&settings.key_prefix).await.is_empty());
    assert_eq!(in_db0.keys(&settings.key_prefix).await, Vec::<String>::new());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_passwords_are_unavailable_not_a_pass() {
    let Some(set) = rd::sentinel_set().await else { return };
    let mut wrong_data = set.settings();
    wrong_data.password = Some("not-the-password".into());
    let store = RedisStore::connect(wrong_data, rd::keys()).await.unwrap();
    let (_, record) = sample_session("main", "alice", T0);
    assert!(matches!(store.ping().await, Err(StoreError::Unavailable { backend: "redis", .. })));
    assert!(matches!(store.session_by_token(&record.token_hash).await, Err(StoreError::Unavailable { .. })));

    let mut wrong_sentinel = set.settings();
    if let RedisMode::Sentinel { password, .. } = &mut wrong_sentinel.mode {
        *password = Some("not-the-sentinel-password".into());
    }
    let store = RedisStore::connect(wrong_sentinel, rd::keys()).await.unwrap();
    assert!(matches!(store.ping().await, Err(StoreError::Unavailable { backend: "redis", .. })));

    // Without any password the master refuses too.
    let mut none = set.settings();
    none.password = None;
    let store = RedisStore::connect(none, rd::keys()).await.unwrap();
    assert!(matches!(store.ping().await, Err(StoreError::Unavailable { .. })));
}

#[tokio::test]
async fn settings_that_cannot_work_are_refused_by_name_without_the_password() {
    let cases = [
        (RedisSettings::standalone("http://:hunter2@example.com"), "url"),
        (RedisSettings::standalone("not a url at all"), "url"),
        (RedisSettings::new(RedisMode::Cluster { nodes: vec!["redis://:hunter2@[::1".into()] }), "cluster.nodes"),
        (
            RedisSettings::new(RedisMode::Sentinel {
                master: "m".into(),
                nodes: vec!["ftp://:hunter2@host".into()],
                password: None,
                db: None,
            }),
            "sentinel.nodes",
        ),
    ];
    for (settings, expected) in cases {
        let err = RedisStore::connect(settings.clone(), rd::keys()).await.unwrap_err();
        match &err {
            StoreError::InvalidSettings { setting, .. } => assert_eq!(*setting, expected, "{settings:?}"),
            other => panic!("{settings:?}: {other:?}"),
        }
        assert!(!err.to_string().contains("hunter2"), "{err}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn any_store_delegates_to_redis() {
    let Some(store) = rd::standalone_store().await else { return };
    let any = AnyStore::from(store);
    assert_eq!(any.backend_name(), "redis");
    let (_, record) = sample_session("main", "alice", T0);
    any.create_session(&record).await.unwrap();
    assert_eq!(any.session_by_id(&record.id).await.unwrap(), Some(record));
}
