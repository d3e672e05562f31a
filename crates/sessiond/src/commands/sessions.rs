//! `sessiond sessions list` and `sessiond sessions revoke`.
//!
//! Both work whether or not the server runs. With the Redis store the command talks to Redis
//! itself: nothing holds Redis exclusively, and the servers it serves may run elsewhere. With
//! the other stores, when a server answers on the control socket, the request goes through it
//! (it holds the embedded store's file, and is the only home of the memory store); otherwise the
//! command opens the embedded store itself. Every way, the same [`ops::execute`] does the work.

use super::ops::{self, Op, Reply, SessionView};
use super::{load_config, print_json, print_stdout};
use crate::cli::{SessionsList, SessionsRevoke};
use crate::config::{Config, StorageConfig};
use crate::control::{self, Answer};
use anyhow::{Context as _, anyhow, bail};
use sessiond_core::token::SessionId;
use sessiond_server::clock::{Clock as _, SystemClock};
use sessiond_server::jwt::Signing;
use sessiond_store::{AnyStore, EmbeddedStore, MemoryStore};
use std::path::Path;

/// `sessiond sessions list [--user U] [--realm R]`: the live sessions, oldest first.
///
/// Text output: a table with a header line and one line per session, columns separated by at
/// least two spaces; `-` for an unknown IP; `no sessions` alone when there is none:
///
/// ```text
/// ID                      REALM  USER   CREATED               LAST SEEN             EXPIRES               IP
/// 3q2-7wAAAAAAAAAAAAAAAA  main   alice  2026-11-23T19:29:31Z  2026-11-23T19:31:02Z  2026-11-23T19:36:02Z  192.0.2.7
/// ```
///
/// `--json`: `{"sessions":[{"id","realm","user","display_name","email","groups","amr",
/// "created_at","last_seen_at","expires_at","remember_me","ip","user_agent"}]}`, times in RFC 3339
/// UTC. Neither form ever shows a token or its hash.
///
/// # Errors
/// See [`run`]: no server and no store to open, or the store failed.
pub(crate) async fn sessions_list(config: Option<&Path>, args: &SessionsList, json: bool) -> anyhow::Result<()> {
    let config = load_config(config)?;
    let op = Op::ListSessions { user: args.user.clone(), realm: args.realm.clone() };
    let Reply::Sessions { sessions } = run(&config, op).await? else {
        bail!("the server answered a list request with something else");
    };
    if json { print_json(&Reply::Sessions { sessions }) } else { print_stdout(&table(&sessions)) }
}

/// `sessiond sessions revoke ID` or `sessiond sessions revoke --user U`: ends one session, or
/// every session of a user in every realm.
///
/// Text output: `revoked session ID`, or `revoked N sessions of USER` (`1 session` when N is 1;
/// N may be 0). `--json`: `{"revoked":N}` (1 for a session id).
///
/// Client-side realms (`location: client`) keep no session records, so their sessions are not
/// counted; they are refused from now on all the same, and a second line says where:
/// `refused from now on in client-side realms: shop (every session of alice created until
/// now)`. `--json` then adds `"client_realms":["shop"]`. An id that no stored session has is
/// refused in every client-side realm, since the server cannot tell whether it exists.
///
/// # Errors
/// A malformed id (`invalid session id "…": …`); no live session with that id
/// (`no session with id ID`); and the failures of [`run`].
pub(crate) async fn sessions_revoke(config: Option<&Path>, args: &SessionsRevoke, json: bool) -> anyhow::Result<()> {
    let op = match (&args.id, &args.user) {
        (Some(id), _) => {
            let id = SessionId::parse(id).map_err(|e| anyhow!("invalid session id {id:?}: {e}"))?;
            Op::RevokeSession { id }
        }
        (None, Some(user)) => Op::RevokeUser { user: user.clone(), realm: None },
        (None, None) => bail!("give a session id or --user"),
    };
    let config = load_config(config)?;
    let Reply::Revoked { revoked, client_realms } = run(&config, op.clone()).await? else {
        bail!("the server answered a revoke request with something else");
    };
    if json {
        return print_json(&Reply::Revoked { revoked, client_realms });
    }
    let mut text = match &op {
        Op::RevokeSession { id } => format!("revoked session {id}\n"),
        Op::RevokeUser { user, .. } => {
            let noun = if revoked == 1 { "session" } else { "sessions" };
            format!("revoked {revoked} {noun} of {user}\n")
        }
        _ => String::new(),
    };
    if !client_realms.is_empty() {
        let what = match &op {
            Op::RevokeUser { user, .. } => format!("every session of {user} created until now"),
            _ => "the session id".to_owned(),
        };
        text.push_str(&format!("refused from now on in client-side realms: {} ({what})\n", client_realms.join(", ")));
    }
    print_stdout(&text)
}

/// The message when sessions live only inside the server and it does not answer.
const MEMORY_NEEDS_SERVER: &str = "the memory store lives in the running server; start it or use the embedded store";

/// Runs `op` against Redis directly; otherwise through the running server when one answers on
/// the control socket, else against the embedded store directly.
///
/// # Errors
/// When the server refuses the request (its message is passed on), when the store is memory and
/// no server answers, when the embedded store is held by a process that does not answer on the
/// control socket, or when the store fails (Redis not answering included).
pub(crate) async fn run(config: &Config, op: Op) -> anyhow::Result<Reply> {
    // Only signing keys need the secret; a data directory without one has none to open.
    let signing = match crate::serve::existing_secret(config)? {
        Some(secret) => {
            let previous = config.secret_previous.as_ref().map(crate::config::Secret::expose);
            Some(Signing::new(secret.expose(), previous))
        }
        None => None,
    };
    let path = match &config.storage {
        StorageConfig::Redis(settings) => {
            let store = crate::serve::open_redis(config, settings).await?;
            return ops::execute(&store, signing.as_ref(), op, SystemClock.now(), &config.realms)
                .await
                .map_err(anyhow::Error::new);
        }
        StorageConfig::Memory => None,
        StorageConfig::Embedded { path } => Some(path),
    };
    let socket = control::socket_path(config);
    match control::ask(&socket, &op).await? {
        Answer::Done(result) => return result.map_err(anyhow::Error::new),
        Answer::NoServer => {}
    }
    let Some(path) = path else { bail!(MEMORY_NEEDS_SERVER) };
    if !path.exists() && matches!(op, Op::CreateToken { .. }) {
        bail!("there is no store at {} yet; start the server once (sessiond serve), then try again", path.display());
    }
    let store = if path.exists() {
        AnyStore::Embedded(open_embedded(path, &socket).await?)
    } else {
        // Nothing was ever stored: answer from an empty store rather than create files.
        AnyStore::Memory(MemoryStore::default())
    };
    ops::execute(&store, signing.as_ref(), op, SystemClock.now(), &config.realms).await.map_err(anyhow::Error::new)
}

async fn open_embedded(path: &Path, socket: &Path) -> anyhow::Result<EmbeddedStore> {
    let owned = path.to_owned();
    let opened = tokio::task::spawn_blocking(move || EmbeddedStore::open(&owned)).await.context("opening the store")?;
    match opened {
        Ok(store) => Ok(store),
        Err(e) if e.is_locked() => bail!(
            "the store {} is in use by another process, but no sessiond answers on {}; \
             restart that server (it recreates its control socket) or stop the process holding the store",
            path.display(),
            socket.display()
        ),
        Err(e) => Err(e).with_context(|| format!("opening store {}", path.display())),
    }
}

/// The session table, or `no sessions`.
fn table(sessions: &[SessionView]) -> String {
    if sessions.is_empty() {
        return "no sessions\n".to_owned();
    }
    let header = ["ID", "REALM", "USER", "CREATED", "LAST SEEN", "EXPIRES", "IP"].map(str::to_owned);
    let rows: Vec<[String; 7]> = std::iter::once(header)
        .chain(sessions.iter().map(|s| {
            [
                cell(&s.id),
                cell(&s.realm),
                cell(&s.user),
                cell(&s.created_at),
                cell(&s.last_seen_at),
                cell(&s.expires_at),
                cell(s.ip.as_deref().unwrap_or("-")),
            ]
        }))
        .collect();
    aligned(&rows)
}

/// Rows (the header first) as lines of columns separated by at least two spaces.
pub(super) fn aligned<const N: usize>(rows: &[[String; N]]) -> String {
    let mut widths = [0usize; N];
    for row in rows {
        for (width, value) in widths.iter_mut().zip(row) {
            *width = (*width).max(value.chars().count());
        }
    }
    let mut out = String::new();
    for row in rows {
        let mut line = String::new();
        for (i, (value, width)) in row.iter().zip(widths).enumerate() {
            if i > 0 {
                line.push_str("  ");
            }
            line.push_str(value);
            line.extend(std::iter::repeat_n(' ', width - value.chars().count()));
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// A value as shown in the table: control characters escaped, so that a stored value cannot
/// move the cursor or recolour the terminal.
pub(super) fn cell(value: &str) -> String {
    value.chars().map(|c| if c.is_control() { c.escape_default().to_string() } else { c.to_string() }).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::commands::ops::tests::record;

    #[test]
    fn table_aligns_columns_under_the_header() {
        let mut a = SessionView::from(record("main", "alice", 600));
        a.id = "AAAAAAAAAAAAAAAAAAAAAA".to_owned();
        let mut b = SessionView::from(record("intranet", "bo", 60));
        b.id = "BBBBBBBBBBBBBBBBBBBBBB".to_owned();
        b.ip = None;
        let text = table(&[a, b]);
        let expected = "\
ID                      REALM     USER   CREATED               LAST SEEN             EXPIRES               IP
AAAAAAAAAAAAAAAAAAAAAA  main      alice  2027-01-15T08:00:00Z  2027-01-15T08:00:00Z  2027-01-15T08:10:00Z  192.0.2.7
BBBBBBBBBBBBBBBBBBBBBB  intranet  bo     2027-01-15T08:00:00Z  2027-01-15T08:00:00Z  2027-01-15T08:01:00Z  -
";
        assert_eq!(text, expected);
    }

    #[test]
    fn empty_table_says_so() {
        assert_eq!(table(&[]), "no sessions\n");
    }

    #[test]
    fn table_escapes_control_characters() {
        let mut a = SessionView::from(record("main", "evil\u{1b}[2J", 600));
        a.ip = Some("1.2.3.4\r".to_owned());
        let text = table(&[a]);
        assert!(!text.contains('\u{1b}') && !text.contains('\r'), "{text:?}");
        assert!(text.contains("evil\\u{1b}[2J"), "{text}");
    }
}
