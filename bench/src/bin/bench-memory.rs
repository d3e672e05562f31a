//! `bench-memory`: what keeping one idle session costs in each store.
//!
//! Fills, in turn, a memory store, an embedded store (a redb file in a temporary directory) and
//! a Redis store with realistic sessions ([`sessiond_bench::realistic_session`]: a desktop
//! browser's user agent, three groups, four sessions per user), keeps everything it created, and
//! prints how much each store grew:
//!
//! - **memory**: growth of this process's resident set (`VmRSS` in `/proc/self/status`, the
//!   figure `statm` counts in pages), with the allocator sessiond ships with (mimalloc). This is
//!   what a sessiond on the memory store needs per signed-in session.
//! - **embedded**: size of the database file. Every session is its own transaction, committed to
//!   disk as a login commits it, so the fill rate is the login write rate of the file system
//!   under `--dir` (or `TMPDIR`).
//! - **redis**: growth of `used_memory` in `INFO memory` (the allocator's figure), with every
//!   value sealed and every key name an HMAC tag, exactly as sessiond writes them. The keys are
//!   removed afterwards unless `--keep` is given.
//!
//! Usage: `bench-memory [--sessions 1000000] [--embedded-sessions 100000]
//! [--redis redis://127.0.0.1:6379] [--only memory,embedded,redis]`. See bench/README.md.

use clap::{Parser, ValueEnum};
use sessiond_bench::{REALM, T0, realistic_session};
use sessiond_core::token::SessionId;
use sessiond_store::{EmbeddedStore, MemoryStore, RedisKey, RedisKeys, RedisSettings, RedisStore, Store};
use std::fmt;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use tokio::task::JoinSet;

// The allocator of the sessiond binary: RSS per session depends on it.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Memory and disk taken by idle sessions in the memory, embedded and Redis stores.
#[derive(Debug, Parser)]
#[command(name = "bench-memory")]
struct Args {
    /// Sessions put in the memory store and in Redis.
    #[arg(long, default_value_t = 1_000_000)]
    sessions: usize,
    /// Sessions put in the embedded store; each is one transaction committed to disk, so a
    /// million takes long on a real disk.
    #[arg(long, default_value_t = 100_000)]
    embedded_sessions: usize,
    /// Redis to fill (`redis://host:port[/db]`); without it the Redis figure is skipped. Use a
    /// Redis nothing else writes to while this runs, or its growth is counted too.
    #[arg(long)]
    redis: Option<String>,
    /// Stores to fill, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "memory,embedded,redis")]
    only: Vec<Backend>,
    /// Sessions each user holds (devices, browsers), which sizes the per-user indexes.
    #[arg(long, default_value_t = 4)]
    sessions_per_user: usize,
    /// Sessions created concurrently, as many logins at once would.
    #[arg(long, default_value_t = 64)]
    tasks: usize,
    /// Directory for the embedded store's temporary file (default: `TMPDIR` or /tmp).
    #[arg(long)]
    dir: Option<PathBuf>,
    /// Leave the sessions in Redis instead of deleting their keys afterwards.
    #[arg(long)]
    keep: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Backend {
    Memory,
    Embedded,
    Redis,
}

/// A failed step, with what was being done.
#[derive(Debug)]
struct Failure(String);

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Names the step an error broke.
trait Context<T> {
    fn context(self, what: impl fmt::Display) -> Result<T, Failure>;
}

impl<T, E: fmt::Display> Context<T> for Result<T, E> {
    fn context(self, what: impl fmt::Display) -> Result<T, Failure> {
        self.map_err(|e| Failure(format!("{what}: {e}")))
    }
}

/// One line of the result table.
struct Row {
    store: &'static str,
    sessions: usize,
    fill: Duration,
    grew: u64,
    measured_as: &'static str,
    load: String,
}

impl Row {
    fn per_session(&self) -> f64 {
        self.grew as f64 / self.sessions.max(1) as f64
    }

    fn rate(&self) -> f64 {
        self.sessions as f64 / self.fill.as_secs_f64().max(1e-9)
    }
}

fn main() -> ExitCode {
    let args = Args::parse();
    if args.sessions == 0 || args.embedded_sessions == 0 || args.tasks == 0 || args.sessions_per_user == 0 {
        eprintln!("bench-memory: --sessions, --embedded-sessions, --tasks and --sessions-per-user must be above 0");
        return ExitCode::from(2);
    }
    if args.only.contains(&Backend::Redis) && args.redis.is_none() {
        if args.only == [Backend::Redis] {
            eprintln!("bench-memory: --only redis needs --redis redis://host:port");
            return ExitCode::from(2);
        }
        eprintln!("bench-memory: no --redis URL, so Redis is skipped");
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("bench-memory: starting the tokio runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(&args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bench-memory: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run(args: &Args) -> Result<(), Failure> {
    let mut rows = Vec::new();
    // Kept to the end: the memory figure counts what the store holds, so nothing is dropped.
    let mut kept_memory_store = None;

    if args.only.contains(&Backend::Memory) {
        let store = MemoryStore::default();
        let before = resident_bytes()?;
        let fill = fill(&store, "memory", args.sessions, args).await?;
        let after = resident_bytes()?;
        rows.push(Row {
            store: "memory",
            sessions: args.sessions,
            fill,
            grew: after.saturating_sub(before),
            measured_as: "process RSS (VmRSS)",
            load: load_average(),
        });
        kept_memory_store = Some(store);
    }

    if args.only.contains(&Backend::Embedded) {
        let mut builder = tempfile::Builder::new();
        builder.prefix("sessiond-bench-memory-");
        let dir = match &args.dir {
            Some(dir) => builder.tempdir_in(dir),
            None => builder.tempdir(),
        }
        .context("creating the embedded store's directory")?;
        let path = dir.path().join("sessions.redb");
        let store = EmbeddedStore::open(&path).context(format_args!("opening {}", path.display()))?;
        let before = file_size(&path)?;
        let fill = fill(&store, "embedded", args.embedded_sessions, args).await?;
        let after = file_size(&path)?;
        rows.push(Row {
            store: "embedded",
            sessions: args.embedded_sessions,
            fill,
            grew: after.saturating_sub(before),
            measured_as: "database file size",
            load: load_average(),
        });
        drop(store);
        dir.close().context("removing the embedded store's directory")?;
    }

    if let (true, Some(url)) = (args.only.contains(&Backend::Redis), &args.redis) {
        rows.push(redis(url, args).await?);
    }

    drop(kept_memory_store);
    print_table(&rows, args);
    Ok(())
}

/// Fills Redis under a fresh key prefix and measures `used_memory`; removes the keys afterwards
/// unless `--keep`.
async fn redis(url: &str, args: &Args) -> Result<Row, Failure> {
    let client = redis::Client::open(url).context(format_args!("parsing --redis {url}"))?;
    let mut conn = client.get_multiplexed_async_connection().await.context(format_args!("connecting to {url}"))?;

    let mut settings = RedisSettings::standalone(url);
    // A prefix of our own, so the keys can be found and removed, and a shared Redis is not mixed up.
    let prefix = format!("sessiond-bench-memory:{}:", SessionId::generate());
    settings.key_prefix.clone_from(&prefix);
    settings.timeout = Duration::from_secs(10);
    let keys = RedisKeys::new(RedisKey::from_secret(b"bench-memory: a secret only this run uses"));
    let store = RedisStore::connect(settings, keys).await.context("preparing the Redis store")?;
    // The store creates its index key on first use; create it before the baseline is read.
    store.realm_state(REALM).await.context("reaching Redis through the store")?;

    let before = used_memory(&mut conn).await?;
    let fill = fill(&store, "redis", args.sessions, args).await?;
    let after = used_memory(&mut conn).await?;
    let row = Row {
        store: "redis",
        sessions: args.sessions,
        fill,
        grew: after.saturating_sub(before),
        measured_as: "INFO memory used_memory",
        load: load_average(),
    };
    if args.keep {
        eprintln!("redis: the sessions stay under the key prefix {prefix:?}");
    } else {
        let removed = remove_keys(&mut conn, &prefix).await?;
        eprintln!(
            "redis: removed {removed} keys ({:.2} per session) under {prefix:?}",
            removed as f64 / args.sessions as f64
        );
    }
    Ok(row)
}

/// Creates `count` realistic sessions in `store` from `args.tasks` concurrent tasks; returns how
/// long that took. Progress goes to stderr every tenth.
async fn fill<S: Store>(store: &S, name: &'static str, count: usize, args: &Args) -> Result<Duration, Failure> {
    let started = Instant::now();
    let done = Arc::new(AtomicUsize::new(0));
    let tenth = count.div_ceil(10);
    let per_user = args.sessions_per_user;
    let step = args.tasks;
    let mut tasks = JoinSet::new();
    for task in 0..args.tasks.min(count) {
        let store = store.clone();
        let done = Arc::clone(&done);
        tasks.spawn(async move {
            for i in (task..count).step_by(step) {
                let user = format!("user{:07}", i / per_user);
                let (_, record) = realistic_session(REALM, &user, T0);
                store.create_session(&record).await?;
                let finished = done.fetch_add(1, Ordering::Relaxed) + 1;
                if finished % tenth == 0 {
                    eprintln!("{name}: {finished}/{count} sessions after {:.1} s", started.elapsed().as_secs_f64());
                }
            }
            Ok::<(), sessiond_store::StoreError>(())
        });
    }
    while let Some(joined) = tasks.join_next().await {
        joined.context(format_args!("a {name} fill task"))?.context(format_args!("creating a {name} session"))?;
    }
    Ok(started.elapsed())
}

/// This process's resident set in bytes.
fn resident_bytes() -> Result<u64, Failure> {
    let status = std::fs::read_to_string("/proc/self/status").context("reading /proc/self/status")?;
    let kib = status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .ok_or_else(|| Failure("/proc/self/status has no VmRSS line".to_owned()))?;
    Ok(kib * 1024)
}

fn file_size(path: &std::path::Path) -> Result<u64, Failure> {
    Ok(std::fs::metadata(path).context(format_args!("reading the size of {}", path.display()))?.len())
}

/// `used_memory` from `INFO memory`.
async fn used_memory(conn: &mut redis::aio::MultiplexedConnection) -> Result<u64, Failure> {
    let info: String = redis::cmd("INFO").arg("memory").query_async(conn).await.context("INFO memory")?;
    info.lines()
        .find_map(|line| line.strip_prefix("used_memory:"))
        .and_then(|value| value.trim().parse().ok())
        .ok_or_else(|| Failure("INFO memory has no used_memory line".to_owned()))
}

/// Unlinks every key under `prefix`; returns how many there were.
async fn remove_keys(conn: &mut redis::aio::MultiplexedConnection, prefix: &str) -> Result<u64, Failure> {
    let pattern = format!("{prefix}*");
    let mut cursor: u64 = 0;
    let mut removed = 0;
    loop {
        let (next, keys): (u64, Vec<Vec<u8>>) = redis::cmd("SCAN")
            .arg(cursor)
            .arg("MATCH")
            .arg(&pattern)
            .arg("COUNT")
            .arg(10_000)
            .query_async(conn)
            .await
            .context("SCAN for the benchmark's keys")?;
        if !keys.is_empty() {
            let _: u64 = redis::cmd("UNLINK").arg(&keys).query_async(conn).await.context("UNLINK")?;
            removed += keys.len() as u64;
        }
        if next == 0 {
            return Ok(removed);
        }
        cursor = next;
    }
}

/// The 1, 5 and 15 minute load averages, as `/proc/loadavg` shows them.
fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|text| text.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".to_owned())
}

fn print_table(rows: &[Row], args: &Args) {
    println!();
    println!(
        "idle sessions: realistic records, {} per user, created by {} concurrent tasks; {} CPU(s)",
        args.sessions_per_user,
        args.tasks,
        std::thread::available_parallelism().map_or(0, usize::from)
    );
    println!();
    println!(
        "{:<9} {:>10} {:>10} {:>12} {:>12} {:>12}   {:<24} load average after",
        "store", "sessions", "fill", "sessions/s", "grew", "per session", "measured as"
    );
    for row in rows {
        println!(
            "{:<9} {:>10} {:>9.1}s {:>12.0} {:>12} {:>10.0} B   {:<24} {}",
            row.store,
            row.sessions,
            row.fill.as_secs_f64(),
            row.rate(),
            human(row.grew),
            row.per_session(),
            row.measured_as,
            row.load
        );
    }
    if let Some(embedded) = rows.iter().find(|row| row.store == "embedded" && row.sessions < 1_000_000) {
        let million = 1_000_000.0 / embedded.rate();
        println!();
        println!(
            "embedded: at this rate a million sessions take about {:.0} s to create, one commit each ({:.1} GiB of file at {:.0} B per session)",
            million,
            embedded.per_session() * 1e6 / f64::from(1u32 << 30),
            embedded.per_session()
        );
    }
}

/// Bytes in binary units, one decimal.
fn human(bytes: u64) -> String {
    const UNITS: [&str; 4] = ["B", "KiB", "MiB", "GiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_print_in_binary_units() {
        assert_eq!(human(512), "512.0 B");
        assert_eq!(human(1536), "1.5 KiB");
        assert_eq!(human(3 * 1024 * 1024 * 1024), "3.0 GiB");
    }

    #[test]
    fn the_resident_set_is_read_and_grows_with_what_is_kept() {
        let before = resident_bytes().unwrap();
        assert!(before > 0);
        let kept: Vec<u8> = vec![1; 64 << 20];
        let after = resident_bytes().unwrap();
        assert!(after >= before + (60 << 20), "{before} -> {after}");
        drop(kept);
    }

    #[tokio::test]
    async fn fill_creates_every_session_across_tasks_and_users() {
        let args = Args::parse_from(["bench-memory", "--tasks", "3", "--sessions-per-user", "4"]);
        let store = MemoryStore::default();
        fill(&store, "memory", 10, &args).await.unwrap();
        let all = store.list_sessions(&sessiond_store::SessionFilter::default()).await.unwrap();
        assert_eq!(all.len(), 10);
        let filter = sessiond_store::SessionFilter { realm: None, user: Some("user0000002".to_owned()) };
        assert_eq!(store.list_sessions(&filter).await.unwrap().len(), 2, "sessions 8 and 9 belong to user 2");
    }

    #[test]
    fn stores_are_chosen_by_name() {
        let args = Args::parse_from(["bench-memory", "--only", "memory,redis", "--redis", "redis://127.0.0.1:1"]);
        assert_eq!(args.only, [Backend::Memory, Backend::Redis]);
        let defaults = Args::parse_from(["bench-memory"]);
        assert_eq!(defaults.only, [Backend::Memory, Backend::Embedded, Backend::Redis]);
        assert_eq!((defaults.sessions, defaults.redis), (1_000_000, None));
        assert!(Args::try_parse_from(["bench-memory", "--only", "postgres"]).is_err());
    }
}
