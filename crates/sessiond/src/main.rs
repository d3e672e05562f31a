//! sessiond: a session server for web applications.
//!
//! This binary holds the command line, the configuration loading and the wiring of the server;
//! the rules live in `sessiond-core`, persistence in `sessiond-store` and HTTP in
//! `sessiond-server`.

mod cli;
mod commands;
mod config;
mod control;
mod reload;
mod serve;

use clap::Parser as _;
use std::process::ExitCode;

// Every request allocates a little (headers, the session record); mimalloc's per-thread
// free lists make that markedly cheaper than the system allocator under load.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    keep_heap_in_small_pages();
    let cli = match cli::Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() { ExitCode::from(2) } else { ExitCode::SUCCESS };
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Asks the kernel not to back this process's memory with transparent huge pages, before the
/// heap has grown and before the runtime's threads start.
///
/// The kernel's background collapse (khugepaged) turns sparsely used 2 MiB ranges of the heap
/// into whole resident huge pages, minutes after the memory was allocated: a soak saw RSS jump
/// by a third with nothing allocated. mimalloc is built without its huge-page advice (the
/// `no_thp` feature), which covers systems set to `madvise`; this covers those set to `always`.
/// A heap of a few tens of MiB gains little from huge pages (Redis gives the same advice).
/// Kernels before 3.15 have no such switch; nothing changes there.
fn keep_heap_in_small_pages() {
    #[cfg(target_os = "linux")]
    let _ = rustix::thread::disable_transparent_huge_pages(true);
}

async fn run(cli: cli::Cli) -> anyhow::Result<()> {
    use cli::Command;
    match cli.command {
        Command::Serve => serve::run(cli.config.as_deref()).await,
        Command::Config(cli::ConfigCommand::Check) => commands::config_check(cli.config.as_deref(), cli.json),
        Command::HashPassword => commands::hash_password(cli.json),
        Command::Users(cli::UsersCommand::Add(args)) => commands::users_add(cli.config.as_deref(), &args, cli.json),
        Command::Users(cli::UsersCommand::TotpReset(args)) => {
            commands::users_totp_reset(cli.config.as_deref(), &args, cli.json).await
        }
        Command::Sessions(cli::SessionsCommand::List(args)) => {
            commands::sessions_list(cli.config.as_deref(), &args, cli.json).await
        }
        Command::Sessions(cli::SessionsCommand::Revoke(args)) => {
            commands::sessions_revoke(cli.config.as_deref(), &args, cli.json).await
        }
        Command::Keys(cli::KeysCommand::Rotate(args)) => {
            commands::keys_rotate(cli.config.as_deref(), &args, cli.json).await
        }
        Command::Realm(cli::RealmCommand::CookieName(args)) => {
            commands::realm_cookie_name(cli.config.as_deref(), &args, cli.json).await
        }
        Command::Tokens(cli::TokensCommand::Create(args)) => {
            commands::tokens_create(cli.config.as_deref(), &args, cli.json).await
        }
        Command::Tokens(cli::TokensCommand::List(args)) => {
            commands::tokens_list(cli.config.as_deref(), &args, cli.json).await
        }
        Command::Tokens(cli::TokensCommand::Revoke(args)) => {
            commands::tokens_revoke(cli.config.as_deref(), &args, cli.json).await
        }
        Command::Storage(cli::StorageCommand::Copy(args)) => commands::storage_copy(&args, cli.json).await,
        Command::Healthcheck(args) => commands::healthcheck(cli.config.as_deref(), &args, cli.json).await,
        Command::Completions(args) => commands::completions(args.shell),
        Command::Man(args) => commands::man(args.dir.as_deref(), cli.json),
    }
}
