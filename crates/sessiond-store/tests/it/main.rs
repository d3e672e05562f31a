//! Integration tests of the store backends: the conformance suite against each backend, the
//! embedded store's behaviour on disk, and the Redis store against real `redis-server` processes.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod embedded_file;
mod redis;
mod support;

use sessiond_store::conformance::InTempDir;
use sessiond_store::{AnyStore, EmbeddedStore};

mod memory {
    sessiond_store::conformance_suite!(|| async { sessiond_store::MemoryStore::default() });
}

mod embedded {
    sessiond_store::conformance_suite!(sessiond_store::conformance::temp_embedded);
}

/// The runtime-chosen store, checked end to end so that delegation cannot mix up arguments.
mod any {
    sessiond_store::conformance_suite!(super::any_embedded);
}

async fn any_embedded() -> InTempDir<AnyStore> {
    let dir = tempfile::tempdir().unwrap();
    let store = EmbeddedStore::open(&dir.path().join("sessiond.redb")).unwrap();
    InTempDir::new(AnyStore::from(store), dir)
}
