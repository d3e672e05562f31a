//! `bench-fill`: fixtures for the scale and soak runs (`run-scale.sh`, `run-soak.sh`).
//!
//! - `bench-fill sessions --db FILE --sessions N --now UNIX`: writes `N` realistic sessions
//!   ([`sessiond_bench::realistic_session`], spread over `--users` users) into an embedded store file, in
//!   batches of one transaction each ([`EmbeddedStore::import_sessions`]), so a million take
//!   seconds instead of a million commits. With `--tokens FILE` it also writes the tokens of
//!   `--token-count` of them, spread evenly over the fill, one per line, for the load generator.
//! - `bench-fill users --out FILE --users N --password P`: writes a users file with `N` users
//!   (`load0000000` …) sharing one password, hashed with a cheap argon2id cost (1 MiB, one pass), so
//!   that a login costs what the rest of the request costs and not 64 MiB of hashing. Never use
//!   such a file outside a benchmark.
//!
//! The time the sessions are created at is an argument (`--now`, Unix seconds), as everywhere in
//! sessiond: the script passes `date +%s`.

use argon2::password_hash::{PasswordHasher, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use clap::{Parser, Subcommand};
use sessiond_bench::{REALM, realistic_session};
use sessiond_core::session::SessionRecord;
use sessiond_core::time::Timestamp;
use sessiond_store::EmbeddedStore;
use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

/// Fixtures for the scale and soak runs: a filled embedded store, a users file with cheap hashes.
#[derive(Debug, Parser)]
#[command(name = "bench-fill")]
struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Fill an embedded store file with realistic sessions.
    Sessions(SessionsArgs),
    /// Write a users file whose users share one cheaply hashed password.
    Users(UsersArgs),
}

#[derive(Debug, clap::Args)]
struct SessionsArgs {
    /// The embedded store file (created when missing; it must not be open in a server).
    #[arg(long)]
    db: PathBuf,
    /// Sessions to add.
    #[arg(long, default_value_t = 1_000_000)]
    sessions: usize,
    /// Sessions written per transaction.
    #[arg(long, default_value_t = 10_000)]
    batch: usize,
    /// Users the sessions are spread over, round-robin (`user0000000`, …). The server ends a
    /// session whose user is not in its users file, so the same users must be written there
    /// (`bench-fill users --prefix user --users N`).
    #[arg(long, default_value_t = 1000)]
    users: usize,
    /// The realm the sessions belong to.
    #[arg(long, default_value = REALM)]
    realm: String,
    /// When the sessions are created, in Unix seconds; they last an hour idle and 12 h in all.
    #[arg(long)]
    now: i64,
    /// Where to write session tokens, one per line (mode 0600).
    #[arg(long)]
    tokens: Option<PathBuf>,
    /// How many tokens to write, taken evenly across the fill.
    #[arg(long, default_value_t = 200_000)]
    token_count: usize,
}

#[derive(Debug, clap::Args)]
struct UsersArgs {
    /// The users file to write (mode 0600).
    #[arg(long)]
    out: PathBuf,
    /// How many users (`load0000000`, `load0000001`, … with the default prefix).
    #[arg(long, default_value_t = 16)]
    users: usize,
    /// What user names start with; seven digits follow.
    #[arg(long, default_value = "load")]
    prefix: String,
    /// The password every user gets.
    #[arg(long)]
    password: String,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let outcome = match args.command {
        Command::Sessions(args) => fill_sessions(&args),
        Command::Users(args) => write_users(&args),
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bench-fill: {e}");
            ExitCode::FAILURE
        }
    }
}

fn fill_sessions(args: &SessionsArgs) -> Result<(), String> {
    if args.sessions == 0 || args.batch == 0 || args.users == 0 {
        return Err("--sessions, --batch and --users must be above 0".to_owned());
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("starting the tokio runtime: {e}"))?;
    runtime.block_on(async {
        let store = EmbeddedStore::open(&args.db).map_err(|e| format!("opening {}: {e}", args.db.display()))?;
        let now = Timestamp::from_unix(args.now);
        let every = (args.sessions / args.token_count.max(1)).max(1);
        let mut tokens = String::new();
        let mut tokens_written = 0;
        let started = Instant::now();
        let mut pending: Option<tokio::task::JoinHandle<Result<usize, sessiond_store::StoreError>>> = None;
        let mut made = 0;
        while made < args.sessions {
            let size = args.batch.min(args.sessions - made);
            let mut batch: Vec<SessionRecord> = Vec::with_capacity(size);
            for i in made..made + size {
                let user = format!("user{:07}", i % args.users);
                let (token, record) = realistic_session(&args.realm, &user, now);
                if args.tokens.is_some() && i % every == 0 && tokens_written < args.token_count {
                    let _ = writeln!(tokens, "{}", token.expose());
                    tokens_written += 1;
                }
                batch.push(record);
            }
            made += size;
            // The next batch is built while this one commits.
            if let Some(previous) = pending.take() {
                previous.await.map_err(|e| format!("import task: {e}"))?.map_err(|e| format!("importing: {e}"))?;
            }
            let store = store.clone();
            pending = Some(tokio::spawn(async move { store.import_sessions(batch).await }));
        }
        if let Some(previous) = pending {
            previous.await.map_err(|e| format!("import task: {e}"))?.map_err(|e| format!("importing: {e}"))?;
        }
        let took = started.elapsed();
        drop(store);
        let size = std::fs::metadata(&args.db).map_err(|e| format!("{}: {e}", args.db.display()))?.len();
        if let Some(path) = &args.tokens {
            write_private(path, tokens.as_bytes())?;
        }
        println!(
            "filled {} sessions in {:.1} s ({:.0}/s), file {} bytes ({:.0} B per session)",
            args.sessions,
            took.as_secs_f64(),
            args.sessions as f64 / took.as_secs_f64().max(1e-9),
            size,
            size as f64 / args.sessions as f64
        );
        Ok(())
    })
}

fn write_users(args: &UsersArgs) -> Result<(), String> {
    // 1 MiB, one pass, one lane: what the tests use, far below the server's default cost.
    let params = Params::new(1024, 1, 1, None).map_err(|e| format!("argon2 parameters: {e}"))?;
    let salt = SaltString::generate(&mut rand::rngs::OsRng);
    let hash = Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
        .hash_password(args.password.as_bytes(), &salt)
        .map_err(|e| format!("hashing: {e}"))?
        .to_string();
    let mut text = String::from("users:\n");
    for i in 0..args.users {
        let _ = write!(
            text,
            "  {prefix}{i:07}:\n    display_name: \"Load {i}\"\n    email: \"{prefix}{i:07}@example.test\"\n    \
             password: \"{hash}\"\n    groups: [\"staff\"]\n",
            prefix = args.prefix
        );
    }
    write_private(&args.out, text.as_bytes())
}

/// Writes `bytes` to a new file only this user may read.
fn write_private(path: &Path, bytes: &[u8]) -> Result<(), String> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path).map_err(|e| format!("{}: {e}", path.display()))?;
    file.write_all(bytes).map_err(|e| format!("{}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fills_a_store_and_writes_tokens_of_sessions_it_holds() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("s.redb");
        let tokens = dir.path().join("tokens");
        let args = SessionsArgs::from(["--db", db.to_str().unwrap(), "--sessions", "250", "--batch", "100"], &tokens);
        fill_sessions(&args).unwrap();
        let text = std::fs::read_to_string(&tokens).unwrap();
        assert_eq!(text.lines().count(), 10);
        let store = EmbeddedStore::open(&db).unwrap();
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        runtime.block_on(async {
            use sessiond_store::Store;
            assert_eq!(store.session_count(REALM).await.unwrap(), Some(250));
            for line in text.lines() {
                let token = sessiond_core::token::SessionToken::parse(line).unwrap();
                assert!(store.session_by_token(&token.hash()).await.unwrap().is_some());
            }
        });
    }

    #[test]
    fn the_users_file_lists_every_user_with_a_cheap_hash() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("users.yml");
        write_users(&UsersArgs { out: out.clone(), users: 3, password: "pw".to_owned(), prefix: "load".to_owned() })
            .unwrap();
        let text = std::fs::read_to_string(&out).unwrap();
        assert!(text.contains("  load0000002:\n"));
        assert_eq!(text.matches("$argon2id$v=19$m=1024,t=1,p=1$").count(), 3);
    }

    impl SessionsArgs {
        fn from<'a>(flags: impl IntoIterator<Item = &'a str>, tokens: &'a Path) -> Self {
            let mut argv = vec!["bench-fill", "sessions", "--now", "1700000000", "--token-count", "10"];
            argv.extend(flags);
            argv.extend(["--tokens", tokens.to_str().unwrap()]);
            match Args::parse_from(argv).command {
                Command::Sessions(args) => args,
                Command::Users(_) => unreachable!(),
            }
        }
    }
}
