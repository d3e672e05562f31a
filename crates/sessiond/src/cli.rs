//! The command line, as clap definitions.

use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;
use std::time::Duration;

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
    /// Manage users: add them to the users file, reset their second factor.
    #[command(subcommand)]
    Users(UsersCommand),
    /// List and end sessions (works whether or not the server runs).
    #[command(subcommand)]
    Sessions(SessionsCommand),
    /// Rotate the JWT signing keys (works whether or not the server runs).
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Realm settings kept in the store: the session cookie's name.
    #[command(subcommand)]
    Realm(RealmCommand),
    /// Create, list and revoke API tokens (works whether or not the server runs).
    #[command(subcommand)]
    Tokens(TokensCommand),
    /// Move sessions between stores, such as from the embedded store to Redis.
    #[command(subcommand)]
    Storage(StorageCommand),
    /// Ask a running server whether it is healthy; exit status 0 when it answers 2xx, 1 otherwise.
    ///
    /// Meant for container health checks: the binary needs no shell or curl in the image. The
    /// default URL is `/healthz` on the address `serve` listens on (`server.listen` of the same
    /// configuration), with the loopback address when it listens on every address.
    Healthcheck(Healthcheck),
    /// Print a shell completion script to standard output.
    ///
    /// bash: `sessiond completions bash > /etc/bash_completion.d/sessiond`;
    /// zsh: `sessiond completions zsh > "${fpath[1]}/_sessiond"`;
    /// fish: `sessiond completions fish > ~/.config/fish/completions/sessiond.fish`.
    Completions(Completions),
    /// Print the manual page (roff) to standard output, or write one page per command.
    ///
    /// Read it with `sessiond man | man -l -`.
    Man(Man),
}

#[derive(Debug, Args)]
pub(crate) struct Healthcheck {
    /// URL to ask (plain `http://` only). Default: `/healthz` on the configured `server.listen`.
    #[arg(long, value_name = "URL")]
    pub(crate) url: Option<String>,
    /// Give up when no complete answer came within this long (`5s`, `1m`, whole seconds).
    #[arg(long, value_name = "DURATION", default_value = "5s", value_parser = timeout)]
    pub(crate) timeout: Duration,
}

/// A healthcheck timeout: a duration of at least one second.
fn timeout(text: &str) -> Result<Duration, String> {
    match sessiond_core::duration::parse_duration(text) {
        Ok(d) if d.is_zero() => Err("the timeout must be at least 1s".to_owned()),
        Ok(d) => Ok(d),
        Err(e) => Err(e.to_string()),
    }
}

#[derive(Debug, Args)]
pub(crate) struct Completions {
    /// The shell to write completions for.
    #[arg(value_enum)]
    pub(crate) shell: clap_complete::Shell,
}

#[derive(Debug, Args)]
pub(crate) struct Man {
    /// Write sessiond.1 and one page per subcommand (sessiond-serve.1 and so on) into this directory
    /// instead of printing sessiond.1.
    #[arg(long, value_name = "DIR")]
    pub(crate) dir: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub(crate) enum StorageCommand {
    /// Copy every live session, and the state of every realm named in either file, from the store
    /// one configuration file names to the store another names. Sessions the target already
    /// holds are left as they are. The environment is not read: each file says it all.
    Copy(StorageCopy),
}

#[derive(Debug, Args)]
pub(crate) struct StorageCopy {
    /// Configuration file naming the store to copy from (its server must be stopped when it is
    /// an embedded store).
    #[arg(long, value_name = "FILE")]
    pub(crate) from: PathBuf,
    /// Configuration file naming the store to copy to.
    #[arg(long, value_name = "FILE")]
    pub(crate) to: PathBuf,
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
    /// Remove a user's TOTP second factor, such as after a lost phone (works whether or not the
    /// server runs).
    ///
    /// Their next sign-in asks for the password only, and they can enroll a new authenticator
    /// (portal page `/totp`). A pending enrollment is removed too. Sessions already signed in
    /// stay; `sessions revoke --user NAME` ends them. Through a running server, the reset is
    /// written to the audit log (`totp_changed`, reason `reset`).
    TotpReset(UsersTotpReset),
}

#[derive(Debug, Args)]
pub(crate) struct UsersTotpReset {
    /// Login name of the user.
    pub(crate) name: String,
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
pub(crate) enum KeysCommand {
    /// Retire the signing key of every realm that issues JWTs (or of one), and sign with the key
    /// published ahead of it. JWTs signed before stay valid until they expire; running servers
    /// pick the change up within seconds.
    Rotate(KeysRotate),
}

#[derive(Debug, Args)]
pub(crate) struct KeysRotate {
    /// Only this realm.
    #[arg(long)]
    pub(crate) realm: Option<String>,
}

#[derive(Debug, Subcommand)]
pub(crate) enum RealmCommand {
    /// Show a realm's cookie name, set it, or reset it to the realm's generated default.
    ///
    /// Changing the name ends every session of the realm. A name set in the configuration
    /// (`realms.<name>.cookie.name`) cannot be changed here.
    CookieName(RealmCookieName),
}

#[derive(Debug, Args)]
pub(crate) struct RealmCookieName {
    /// The realm.
    pub(crate) realm: String,
    /// The new cookie name.
    #[arg(conflicts_with = "reset")]
    pub(crate) name: Option<String>,
    /// Go back to the realm's generated default name.
    #[arg(long)]
    pub(crate) reset: bool,
}

#[derive(Debug, Subcommand)]
pub(crate) enum SessionsCommand {
    /// List live sessions (realms with `location: client` keep no records to list).
    List(SessionsList),
    /// End one session by id, or every session of a user. In realms with `location: client`
    /// the sessions are refused from now on rather than deleted.
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

#[derive(Debug, Subcommand)]
pub(crate) enum TokensCommand {
    /// Make an API token for a user and print it; it is shown only this once.
    ///
    /// The token acts as the user for forward auth (`Authorization: Bearer sdat_…`) and, for
    /// administrators, for `POST /api/v1/sessions`. Users in the users file get their groups from
    /// it at each use, and their tokens stop working while they are disabled or removed.
    Create(TokensCreate),
    /// List live API tokens (never the tokens themselves).
    List(TokensList),
    /// Revoke an API token by id; it stops working at once.
    Revoke(TokensRevoke),
}

#[derive(Debug, Args)]
pub(crate) struct TokensCreate {
    /// The user the token acts as.
    #[arg(long)]
    pub(crate) user: String,
    /// A label for the token: 1 to 64 letters, digits, spaces and `-_.:@/`.
    #[arg(long, value_parser = token_name)]
    pub(crate) name: String,
    /// How long the token works (`90d`, `1y`, `12h`); without it, until revoked.
    #[arg(long, value_name = "DURATION", value_parser = token_lifetime)]
    pub(crate) expires: Option<Duration>,
    /// The realm the token is valid in. Default: `main`, or the first realm when there is none
    /// of that name.
    #[arg(long)]
    pub(crate) realm: Option<String>,
    /// Groups of a user who is not in the users file, comma-separated; recorded with the token.
    #[arg(long, value_delimiter = ',')]
    pub(crate) groups: Vec<String>,
}

/// A token name, checked as the server checks it.
fn token_name(text: &str) -> Result<String, String> {
    sessiond_core::api_token::validate_name(text).map(|()| text.to_owned()).map_err(|e| e.to_string())
}

/// A token lifetime: at least one second, at most 100 years.
fn token_lifetime(text: &str) -> Result<Duration, String> {
    sessiond_core::api_token::parse_lifetime(text).map_err(|e| e.to_string())
}

#[derive(Debug, Args)]
pub(crate) struct TokensList {
    /// Only this user's tokens.
    #[arg(long)]
    pub(crate) user: Option<String>,
    /// Only this realm's tokens.
    #[arg(long)]
    pub(crate) realm: Option<String>,
}

#[derive(Debug, Args)]
pub(crate) struct TokensRevoke {
    /// Public id of the token, as `tokens list` shows it (ids may start with `-`).
    #[arg(allow_hyphen_values = true)]
    pub(crate) id: String,
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
    fn storage_copy_needs_both_files() {
        let cli =
            Cli::try_parse_from(["sessiond", "storage", "copy", "--from", "a.yml", "--to", "b.yml", "--json"]).unwrap();
        let Command::Storage(StorageCommand::Copy(copy)) = cli.command else { panic!("parsed as {:?}", cli.command) };
        assert_eq!((copy.from, copy.to), (PathBuf::from("a.yml"), PathBuf::from("b.yml")));
        assert!(cli.json);
        assert!(Cli::try_parse_from(["sessiond", "storage", "copy", "--from", "a.yml"]).is_err());
        assert!(Cli::try_parse_from(["sessiond", "storage", "copy", "--to", "b.yml"]).is_err());
    }

    #[test]
    fn cookie_name_takes_a_name_or_reset_but_not_both() {
        let cli = Cli::try_parse_from(["sessiond", "realm", "cookie-name", "main", "acme"]).unwrap();
        let Command::Realm(RealmCommand::CookieName(args)) = cli.command else { panic!("{:?}", cli.command) };
        assert_eq!((args.realm.as_str(), args.name.as_deref(), args.reset), ("main", Some("acme"), false));
        assert!(Cli::try_parse_from(["sessiond", "realm", "cookie-name", "main", "--reset"]).is_ok());
        assert!(Cli::try_parse_from(["sessiond", "realm", "cookie-name", "main"]).is_ok());
        assert!(Cli::try_parse_from(["sessiond", "realm", "cookie-name", "main", "acme", "--reset"]).is_err());
        assert!(Cli::try_parse_from(["sessiond", "realm", "cookie-name"]).is_err());
        assert!(Cli::try_parse_from(["sessiond", "keys", "rotate", "--realm", "main"]).is_ok());
    }

    #[test]
    fn revoke_needs_exactly_one_target() {
        assert!(Cli::try_parse_from(["sessiond", "sessions", "revoke"]).is_err());
        assert!(Cli::try_parse_from(["sessiond", "sessions", "revoke", "abc", "--user", "x"]).is_err());
        assert!(Cli::try_parse_from(["sessiond", "sessions", "revoke", "--user", "x"]).is_ok());
    }

    #[test]
    fn totp_reset_takes_exactly_one_user() {
        let cli = Cli::try_parse_from(["sessiond", "users", "totp-reset", "alice", "--json"]).unwrap();
        let Command::Users(UsersCommand::TotpReset(args)) = cli.command else { panic!("{:?}", cli.command) };
        assert_eq!(args.name, "alice");
        assert!(cli.json);
        assert!(Cli::try_parse_from(["sessiond", "users", "totp-reset"]).is_err());
        assert!(Cli::try_parse_from(["sessiond", "users", "totp-reset", "alice", "bob"]).is_err());
    }

    #[test]
    fn tokens_create_checks_name_and_lifetime_as_usage() {
        let parse = |args: &[&str]| Cli::try_parse_from(["sessiond", "tokens", "create"].iter().chain(args));
        let cli = parse(&["--user", "alice", "--name", "ci", "--expires", "90d", "--groups", "a,b"]).unwrap();
        let Command::Tokens(TokensCommand::Create(create)) = cli.command else { panic!("parsed as {:?}", cli.command) };
        assert_eq!(create.expires, Some(Duration::from_secs(90 * 86_400)));
        assert_eq!(create.groups, ["a", "b"]);
        assert!(parse(&["--user", "alice", "--name", "ci"]).is_ok(), "--expires is optional");
        for bad in [
            &["--name", "ci"][..],
            &["--user", "a"],
            &["--user", "a", "--name", ""],
            &["--user", "a", "--name", "x\ny"],
        ] {
            assert!(parse(bad).is_err(), "{bad:?}");
        }
        for expires in ["0", "-1", "5x", "101y"] {
            let error = parse(&["--user", "a", "--name", "n", &format!("--expires={expires}")]).unwrap_err();
            assert_eq!(error.kind(), clap::error::ErrorKind::ValueValidation, "--expires {expires:?}");
        }
        let revoke = Cli::try_parse_from(["sessiond", "tokens", "revoke", "-AAAAAAAAAAAAAAAAAAAAA"]).unwrap();
        assert!(
            matches!(revoke.command, Command::Tokens(TokensCommand::Revoke(r)) if r.id == "-AAAAAAAAAAAAAAAAAAAAA")
        );
    }

    fn healthcheck(args: &[&str]) -> Result<Healthcheck, clap::Error> {
        let argv = ["sessiond", "healthcheck"].iter().chain(args);
        match Cli::try_parse_from(argv)?.command {
            Command::Healthcheck(h) => Ok(h),
            other => panic!("parsed as {other:?}"),
        }
    }

    #[test]
    fn healthcheck_timeout_defaults_to_five_seconds_and_must_be_positive() {
        let default = healthcheck(&[]).unwrap();
        assert_eq!((default.url, default.timeout), (None, Duration::from_secs(5)));
        assert_eq!(healthcheck(&["--timeout", "1m"]).unwrap().timeout, Duration::from_secs(60));
        assert_eq!(healthcheck(&["--timeout", "2"]).unwrap().timeout, Duration::from_secs(2));
        for bad in ["0", "0s", "5x", "-1", ""] {
            let error = healthcheck(&[&format!("--timeout={bad}")]).unwrap_err();
            assert_eq!(error.kind(), clap::error::ErrorKind::ValueValidation, "--timeout {bad:?}");
        }
        let url = healthcheck(&["--url", "http://[::1]:9000/readyz"]).unwrap().url;
        assert_eq!(url.as_deref(), Some("http://[::1]:9000/readyz"));
    }

    #[test]
    fn completions_take_exactly_one_known_shell() {
        for (word, shell) in [
            ("bash", clap_complete::Shell::Bash),
            ("zsh", clap_complete::Shell::Zsh),
            ("fish", clap_complete::Shell::Fish),
            ("elvish", clap_complete::Shell::Elvish),
            ("powershell", clap_complete::Shell::PowerShell),
        ] {
            let cli = Cli::try_parse_from(["sessiond", "completions", word]).unwrap();
            assert!(matches!(cli.command, Command::Completions(Completions { shell: s }) if s == shell), "{word}");
        }
        assert!(Cli::try_parse_from(["sessiond", "completions"]).is_err());
        assert!(Cli::try_parse_from(["sessiond", "completions", "tcsh"]).is_err());
    }
}
