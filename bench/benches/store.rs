//! Store operations on the request path, against stores that already hold
//! [`PREFILLED_SESSIONS`] sessions: the lookup every authenticated request makes (a hit, and a
//! miss for an unknown or revoked token), the throttled `last_seen` write, and (embedded only)
//! the commit a login makes.
//!
//! Each future runs on a current-thread tokio runtime. The embedded store does its redb work on
//! tokio's blocking pool, so its numbers include that hand-off, as they do in the server.

use criterion::measurement::WallTime;
use criterion::{BatchSize, BenchmarkGroup, Criterion};
use sessiond_bench::{PREFILLED_SESSIONS, REALM, T0, prefill};
use sessiond_core::token::SessionToken;
use sessiond_store::conformance::sample_session;
use sessiond_store::{EmbeddedStore, MemoryStore, Store};
use std::hint::black_box;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;
use tokio::runtime::Runtime;

fn runtime() -> Runtime {
    match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => fail("starting the tokio runtime", &e),
    }
}

/// Setup failures end the benchmark run with the reason; there is nothing to time without them.
fn fail(what: &str, error: &dyn std::fmt::Display) -> ! {
    eprintln!("{what}: {error}");
    std::process::exit(1)
}

/// Times the lookups and the touch on a prefilled `store`.
fn lookups_and_touch<S: Store>(group: &mut BenchmarkGroup<'_, WallTime>, rt: &Runtime, store: &S) {
    let tokens = match rt.block_on(prefill(store, PREFILLED_SESSIONS)) {
        Ok(tokens) => tokens,
        Err(e) => fail("prefilling the store", &e),
    };
    // A token from the middle, so neither end of an ordered table is favoured.
    let Some(known) = tokens.get(PREFILLED_SESSIONS / 2).map(SessionToken::hash) else {
        return;
    };
    let unknown = SessionToken::generate().hash();

    group.bench_function("session_by_token_hit", |b| {
        b.to_async(rt).iter(|| async {
            let found = store.session_by_token(black_box(&known)).await;
            debug_assert!(matches!(found, Ok(Some(_))));
            found
        });
    });
    group.bench_function("session_by_token_miss", |b| {
        b.to_async(rt).iter(|| async {
            let found = store.session_by_token(black_box(&unknown)).await;
            debug_assert!(matches!(found, Ok(None)));
            found
        });
    });

    // Each touch moves last_seen one second on, as a real touch always moves it forward.
    let seconds = AtomicI64::new(0);
    group.bench_function("touch_session", |b| {
        b.to_async(rt).iter(|| async {
            let offset = seconds.fetch_add(1, Ordering::Relaxed);
            let seen = T0 + Duration::from_secs(offset.unsigned_abs());
            store.touch_session(black_box(&known), seen, seen + Duration::from_secs(300)).await
        });
    });
}

fn memory(c: &mut Criterion) {
    let rt = runtime();
    let store = MemoryStore::default();
    let mut group = c.benchmark_group("memory");
    lookups_and_touch(&mut group, &rt, &store);
    group.finish();
}

fn embedded(c: &mut Criterion) {
    let rt = runtime();
    let dir = match tempfile::tempdir() {
        Ok(dir) => dir,
        Err(e) => fail("creating a temporary directory", &e),
    };
    let store = match EmbeddedStore::open(&dir.path().join("sessiond.redb")) {
        Ok(store) => store,
        Err(e) => fail("opening the embedded store", &e),
    };
    let mut group = c.benchmark_group("embedded");
    // Writes wait for a commit to reach the disk: milliseconds, not nanoseconds, so fewer samples.
    group.sample_size(30);
    lookups_and_touch(&mut group, &rt, &store);
    group.bench_function("create_session", |b| {
        b.to_async(&rt).iter_batched(
            || sample_session(REALM, "newcomer", T0).1,
            |record| {
                let store = &store;
                async move { store.create_session(&record).await }
            },
            BatchSize::SmallInput,
        );
    });
    group.finish();
}

// Written out rather than with criterion_group!, whose generated function has no docs.
fn main() {
    let mut c = Criterion::default().configure_from_args();
    memory(&mut c);
    embedded(&mut c);
    c.final_summary();
}
