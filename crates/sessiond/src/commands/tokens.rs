//! `sessiond tokens create`, `sessiond tokens list` and `sessiond tokens revoke`.
//!
//! Like `sessiond sessions …`, they work whether or not the server runs: they go through the
//! running server's control socket when it holds the store, else to the store directly (see
//! `sessions::run`). `create` makes the token here and hands only its hash and record on, so the
//! token is never written anywhere but standard output.

use super::ops::{Op, Reply, TokenView};
use super::sessions::{aligned, cell, run};
use super::{load_config, print_json, print_stdout};
use crate::cli::{TokensCreate, TokensList, TokensRevoke};
use crate::config::Config;
use anyhow::{Context as _, anyhow, bail};
use serde::Serialize;
use sessiond_core::api_token::{ApiToken, ApiTokenId, ApiTokenRecord, store_key};
use sessiond_core::realm::DEFAULT_REALM;
use sessiond_server::clock::{Clock as _, SystemClock};
use sessiond_server::users::UsersFile;
use std::path::Path;

/// What `tokens create --json` prints: the server's `POST /api/v1/tokens` answer.
#[derive(Serialize)]
struct Created<'a> {
    id: &'a str,
    name: &'a str,
    user: &'a str,
    realm: &'a str,
    token: &'a str,
    created_at: &'a str,
    expires_at: Option<&'a str>,
}

/// `sessiond tokens create --user U --name N [--expires D] [--realm R] [--groups a,b]`: makes an
/// API token for `U` in realm `R` and prints it, once.
///
/// A user in the users file must be enabled; the token then follows the file (its groups at each
/// use; refused while the user is disabled or removed) and `--groups` is refused. For a user who
/// is not in the file, the token carries `--groups` and a note says so on standard error.
///
/// Text output, the token alone on the second line:
///
/// ```text
/// created API token 3q2-7wAAAAAAAAAAAAAAAA "ci" for alice in realm main; it never expires
/// sdat_…
/// it is shown only now: keep it somewhere safe
/// ```
///
/// `--json`: `{"id","name","user","realm","token","created_at","expires_at"}` (`expires_at` is
/// `null` for a token that never expires).
///
/// # Errors
/// An unknown realm, a bad or disabled user, `--groups` for a user of the users file, an
/// unreadable users file, the user's limit of tokens, and the failures of `sessions::run`.
pub(crate) async fn tokens_create(config: Option<&Path>, args: &TokensCreate, json: bool) -> anyhow::Result<()> {
    let config = load_config(config)?;
    let realm = realm_of(&config, args.realm.as_deref())?;
    let user = args.user.as_str();
    if user.is_empty() || user.len() > 256 || user.chars().any(char::is_control) {
        bail!("invalid user {user:?}: 1 to 256 printable characters");
    }
    let users = if config.users_file.exists() {
        UsersFile::read(&config.users_file)
            .with_context(|| format!("reading users file {}", config.users_file.display()))?
    } else {
        UsersFile::default()
    };
    let groups: Vec<String> = args.groups.iter().filter(|g| !g.is_empty()).cloned().collect();
    let (groups, display_name, email) = match users.users.get(user) {
        Some(entry) if entry.disabled => bail!("user {user} is disabled in {}", config.users_file.display()),
        Some(_) if !groups.is_empty() => bail!(
            "user {user} is in the users file {}, which gives their groups; leave out --groups",
            config.users_file.display()
        ),
        Some(entry) => (entry.groups.clone(), entry.display_name.clone(), entry.email.clone()),
        None => {
            eprintln!(
                "note: {user} is not in the users file {}; the token carries the groups [{}]",
                config.users_file.display(),
                groups.join(",")
            );
            (groups, None, None)
        }
    };
    let now = SystemClock.now();
    let token = ApiToken::generate();
    let record = ApiTokenRecord {
        id: ApiTokenId::generate(),
        name: args.name.clone(),
        user: user.to_owned(),
        realm,
        created_at: now,
        last_used_at: None,
        expires_at: args.expires.map(|d| now + d),
        groups,
        display_name,
        email,
        from_users_file: users.users.contains_key(user),
    };
    let op = Op::CreateToken { token_hash: store_key(&token.hash()), record };
    let Reply::Tokens { tokens } = run(&config, op).await? else {
        bail!("the server answered a create request with something else");
    };
    let view = tokens.into_iter().next().ok_or_else(|| anyhow!("the server answered without the token"))?;
    let token = token.expose();
    if json {
        return print_json(&Created {
            id: &view.id,
            name: &view.name,
            user: &view.user,
            realm: &view.realm,
            token: &token,
            created_at: &view.created_at,
            expires_at: view.expires_at.as_deref(),
        });
    }
    let expiry =
        view.expires_at.as_ref().map_or_else(|| "it never expires".to_owned(), |at| format!("it expires {at}"));
    print_stdout(&format!(
        "created API token {} \"{}\" for {} in realm {}; {expiry}\n{token}\nit is shown only now: keep it somewhere safe\n",
        view.id,
        cell(&view.name),
        cell(&view.user),
        cell(&view.realm),
    ))
}

/// `sessiond tokens list [--user U] [--realm R]`: the live API tokens, oldest first.
///
/// Text output: a table; `-` for a token never used, `never` for one that never expires;
/// `no tokens` alone when there is none:
///
/// ```text
/// ID                      NAME  USER   REALM  CREATED               LAST USED             EXPIRES
/// 3q2-7wAAAAAAAAAAAAAAAA  ci    alice  main   2026-11-23T19:29:31Z  -                     never
/// ```
///
/// `--json`: `{"tokens":[{"id","name","user","realm","created_at","last_used_at","expires_at"}]}`.
/// Neither form shows a token or its hash.
///
/// # Errors
/// The failures of `sessions::run`.
pub(crate) async fn tokens_list(config: Option<&Path>, args: &TokensList, json: bool) -> anyhow::Result<()> {
    let config = load_config(config)?;
    let op = Op::ListTokens { user: args.user.clone(), realm: args.realm.clone() };
    let Reply::Tokens { tokens } = run(&config, op).await? else {
        bail!("the server answered a list request with something else");
    };
    if json { print_json(&Reply::Tokens { tokens }) } else { print_stdout(&table(&tokens)) }
}

/// `sessiond tokens revoke ID`: revokes one API token; it stops working at once.
///
/// Text output: `revoked API token ID`. `--json`: `{"revoked":1}`.
///
/// # Errors
/// A malformed id (`invalid token id "…": …`); no live token with that id
/// (`no API token with id ID`); and the failures of `sessions::run`.
pub(crate) async fn tokens_revoke(config: Option<&Path>, args: &TokensRevoke, json: bool) -> anyhow::Result<()> {
    let id = ApiTokenId::parse(&args.id).map_err(|e| anyhow!("invalid token id {:?}: {e}", args.id))?;
    let config = load_config(config)?;
    let Reply::Revoked { revoked, .. } = run(&config, Op::RevokeToken { id: id.clone() }).await? else {
        bail!("the server answered a revoke request with something else");
    };
    if json {
        print_json(&Reply::Revoked { revoked, client_realms: vec![] })
    } else {
        print_stdout(&format!("revoked API token {id}\n"))
    }
}

/// The realm a new token is for: the one asked for, which the configuration must have; else the
/// default realm, or the first when there is none of that name (as `serve` picks its fallback).
fn realm_of(config: &Config, asked: Option<&str>) -> anyhow::Result<String> {
    let names = || config.realms.iter().map(|r| r.name.as_str());
    match asked {
        Some(realm) if names().any(|n| n == realm) => Ok(realm.to_owned()),
        Some(realm) => {
            bail!("no realm {realm:?} in the configuration; realms: {}", names().collect::<Vec<_>>().join(", "))
        }
        None => names()
            .find(|n| *n == DEFAULT_REALM)
            .or_else(|| names().next())
            .map(str::to_owned)
            .ok_or_else(|| anyhow!("the configuration has no realm")),
    }
}

/// The token table, or `no tokens`.
fn table(tokens: &[TokenView]) -> String {
    if tokens.is_empty() {
        return "no tokens\n".to_owned();
    }
    let header = ["ID", "NAME", "USER", "REALM", "CREATED", "LAST USED", "EXPIRES"].map(str::to_owned);
    let rows: Vec<[String; 7]> = std::iter::once(header)
        .chain(tokens.iter().map(|t| {
            [
                cell(&t.id),
                cell(&t.name),
                cell(&t.user),
                cell(&t.realm),
                cell(&t.created_at),
                cell(t.last_used_at.as_deref().unwrap_or("-")),
                cell(t.expires_at.as_deref().unwrap_or("never")),
            ]
        }))
        .collect();
    aligned(&rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn view(id: &str, name: &str, last_used_at: Option<&str>, expires_at: Option<&str>) -> TokenView {
        TokenView {
            id: id.to_owned(),
            name: name.to_owned(),
            user: "alice".to_owned(),
            realm: "main".to_owned(),
            created_at: "2027-01-15T08:00:00Z".to_owned(),
            last_used_at: last_used_at.map(str::to_owned),
            expires_at: expires_at.map(str::to_owned),
        }
    }

    #[test]
    fn table_shows_unused_and_unending_tokens_plainly() {
        let a = view("AAAAAAAAAAAAAAAAAAAAAA", "ci", None, None);
        let b =
            view("BBBBBBBBBBBBBBBBBBBBBB", "deploy bot", Some("2027-01-15T09:00:00Z"), Some("2027-04-15T08:00:00Z"));
        let expected = "\
ID                      NAME        USER   REALM  CREATED               LAST USED             EXPIRES
AAAAAAAAAAAAAAAAAAAAAA  ci          alice  main   2027-01-15T08:00:00Z  -                     never
BBBBBBBBBBBBBBBBBBBBBB  deploy bot  alice  main   2027-01-15T08:00:00Z  2027-01-15T09:00:00Z  2027-04-15T08:00:00Z
";
        assert_eq!(table(&[a, b]), expected);
        assert_eq!(table(&[]), "no tokens\n");
    }
}
