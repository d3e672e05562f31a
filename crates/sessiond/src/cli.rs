//! The command line, as clap definitions.

use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;

/// sessiond: log users in once and keep them signed in across every app of a domain.
///
/// Issues and checks session cookies, answers reverse proxies whether a request may pass, and gives
/// apps a JSON session API. Run `sessiond serve` with no configuration to start on
/// http://127.0.0.1:8470 with an embedded store under ./sessiond-data/.
#[derive(Debug, Parser)]
#[command(name = "sessiond", version, propagate_version = true)]
pub(crate) struct Cli {
    /// Configuration file (YAML). Default: ./sessiond.yml when it exists.
    #[arg(long, short = 'c', global = true, env = "SESSIOND_CONFIG", value_name = "FILE")]
    pub(crate) config: Option<PathBuf>,

    /// Print machine-readable JSON instead of text.
    #[arg(long, global = true)]
    pub(crate) json: bool,

    #[command(subcommand)]
    pub(crate) command: Command,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Run the server.
    Serve,
    /// Inspect the configuration.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Hash a password read from standard input into an argon2id PHC string for the users file.
    HashPassword,
    /// Manage users in the users file.
    #[command(subcommand)]
    Users(UsersCommand),
    /// List and end sessions (works whether or not the server runs).
    #[command(subcommand)]
    Sessions(SessionsCommand),
}

#[derive(Debug, Subcommand)]
pub(crate) enum ConfigCommand {
    /// Validate the configuration and print it as it takes effect, secrets redacted.
    Check,
}

#[derive(Debug, Subcommand)]
pub(crate) enum UsersCommand {
    /// Add a user; the password is read from standard input.
    Add(UsersAdd),
}

#[derive(Debug, Args)]
pub(crate) struct UsersAdd {
    /// Login name.
    pub(crate) name: String,
    /// Email address.
    #[arg(long)]
    pub(crate) email: Option<String>,
    /// Name shown to people.
    #[arg(long)]
    pub(crate) display_name: Option<String>,
    /// Groups, comma-separated.
    #[arg(long, value_delimiter = ',')]
    pub(crate) groups: Vec<String>,
}

#[derive(Debug, Subcommand)]
pub(crate) enum SessionsCommand {
    /// List live sessions.
    List(SessionsList),
    /// End one session by id, or every session of a user.
    Revoke(SessionsRevoke),
}

#[derive(Debug, Args)]
pub(crate) struct SessionsList {
    /// Only this user's sessions.
    #[arg(long)]
    pub(crate) user: Option<String>,
    /// Only this realm's sessions.
    #[arg(long)]
    pub(crate) realm: Option<String>,
}

#[derive(Debug, Args)]
#[group(required = true, multiple = false)]
pub(crate) struct SessionsRevoke {
    /// Public id of the session to end (ids may start with `-`).
    #[arg(allow_hyphen_values = true)]
    pub(crate) id: Option<String>,
    /// End every session of this user.
    #[arg(long)]
    pub(crate) user: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory as _;

    #[test]
    fn cli_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn config_flag_is_global() {
        let a = Cli::try_parse_from(["sessiond", "--config", "x.yml", "serve"]).unwrap();
        let b = Cli::try_parse_from(["sessiond", "serve", "--config", "x.yml"]).unwrap();
        assert_eq!(a.config, b.config);
    }

    #[test]
    fn revoke_needs_exactly_one_target() {
        assert!(Cli::try_parse_from(["sessiond", "sessions", "revoke"]).is_err());
        assert!(Cli::try_parse_from(["sessiond", "sessions", "revoke", "abc", "--user", "x"]).is_err());
        assert!(Cli::try_parse_from(["sessiond", "sessions", "revoke", "--user", "x"]).is_ok());
    }
}
