//! The administrative commands: everything `sessiond` does besides `serve`.
//!
//! Output is for people by default and JSON (one object, one line) with `--json`; each command's
//! doc gives both forms, which scripts may rely on. Results go to standard output. Failures are
//! returned as errors, which `main` prints to standard error as `error: <message>` before exiting
//! with status 1.

mod check;
mod generate;
mod healthcheck;
mod keys;
pub(crate) mod ops;
mod realm;
mod sessions;
mod storage;
mod tokens;
mod users;

pub(crate) use check::config_check;
pub(crate) use generate::{completions, man};
pub(crate) use healthcheck::healthcheck;
pub(crate) use keys::keys_rotate;
pub(crate) use realm::realm_cookie_name;
pub(crate) use sessions::{sessions_list, sessions_revoke};
pub(crate) use storage::storage_copy;
pub(crate) use tokens::{tokens_create, tokens_list, tokens_revoke};
pub(crate) use users::{hash_password, users_add, users_totp_reset};

use crate::config::{self, Config};
use std::io::{BufRead, Write as _};
use std::path::Path;

/// Loads the configuration as `serve` would.
///
/// The message already names the key, file or variable at fault; its source is part of that
/// message, so only the message is kept (the chain would print it twice).
fn load_config(path: Option<&Path>) -> anyhow::Result<Config> {
    config::load(path, std::env::vars()).map_err(|e| anyhow::anyhow!("{e}"))
}

/// Writes `text` to standard output. A reader that went away (`… | head`) is not an error.
fn print_stdout(text: &str) -> anyhow::Result<()> {
    let mut stdout = std::io::stdout().lock();
    match stdout.write_all(text.as_bytes()).and_then(|()| stdout.flush()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
            Err(anyhow::Error::new(e).context("writing to standard output"))
        }
        _ => Ok(()),
    }
}

/// Prints `value` as one line of JSON.
fn print_json(value: &impl serde::Serialize) -> anyhow::Result<()> {
    let mut text = serde_json::to_string(value)?;
    text.push('\n');
    print_stdout(&text)
}

/// The longest password accepted on standard input.
const MAX_PASSWORD_BYTES: usize = 4096;

/// Why no password could be taken from standard input. Never holds the password.
#[derive(Debug, thiserror::Error)]
enum PasswordInputError {
    #[error("no password on standard input (the first line is the password; it must not be empty)")]
    Empty,
    #[error("the password is longer than {MAX_PASSWORD_BYTES} bytes")]
    TooLong,
    #[error("the password is not valid UTF-8")]
    NotUtf8,
    #[error("reading the password from standard input")]
    Read(#[source] std::io::Error),
}

/// Reads the password: the first line of `input`, without its `\n` or `\r\n`. Everything else
/// on the line, spaces included, is part of the password.
fn read_password(input: impl BufRead) -> Result<String, PasswordInputError> {
    // Room for the longest password, its `\r\n`, and one byte more to notice a longer line.
    let limit = MAX_PASSWORD_BYTES + 3;
    let mut line = Vec::new();
    input
        .take(u64::try_from(limit).unwrap_or(u64::MAX))
        .read_until(b'\n', &mut line)
        .map_err(PasswordInputError::Read)?;
    if line.len() == limit && !line.ends_with(b"\n") {
        return Err(PasswordInputError::TooLong);
    }
    let body = line.strip_suffix(b"\n").unwrap_or(&line);
    let body = body.strip_suffix(b"\r").unwrap_or(body);
    if body.len() > MAX_PASSWORD_BYTES {
        return Err(PasswordInputError::TooLong);
    }
    if body.is_empty() {
        return Err(PasswordInputError::Empty);
    }
    String::from_utf8(body.to_vec()).map_err(|_| PasswordInputError::NotUtf8)
}

/// Reads the password from standard input, prompting on standard error when it is a terminal.
fn password_from_stdin() -> anyhow::Result<String> {
    use std::io::IsTerminal as _;
    let stdin = std::io::stdin();
    if stdin.is_terminal() {
        // There is no way to turn echo off without a terminal library; say so rather than
        // pretend the input is hidden.
        eprint!("Password (shown as typed; pipe it in to keep it off the screen): ");
        let _ = std::io::stderr().flush();
    }
    Ok(read_password(stdin.lock())?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(input: &[u8]) -> Result<String, PasswordInputError> {
        read_password(input)
    }

    #[test]
    fn password_is_the_first_line_without_its_line_ending() {
        assert_eq!(read(b"s3cret\n").unwrap(), "s3cret");
        assert_eq!(read(b"s3cret\r\n").unwrap(), "s3cret");
        assert_eq!(read(b"s3cret").unwrap(), "s3cret");
        assert_eq!(read(b"first\nsecond\n").unwrap(), "first");
        assert_eq!(read(b"  spaced out \t\n").unwrap(), "  spaced out \t", "inner and outer spaces are kept");
    }

    #[test]
    fn empty_password_is_refused() {
        assert!(matches!(read(b""), Err(PasswordInputError::Empty)));
        assert!(matches!(read(b"\n"), Err(PasswordInputError::Empty)));
        assert!(matches!(read(b"\r\n"), Err(PasswordInputError::Empty)));
    }

    #[test]
    fn oversized_password_is_refused() {
        let at_limit = vec![b'a'; MAX_PASSWORD_BYTES];
        assert_eq!(read(&at_limit).unwrap().len(), MAX_PASSWORD_BYTES);
        let mut at_limit_line = at_limit;
        at_limit_line.extend_from_slice(b"\r\n");
        assert_eq!(read(&at_limit_line).unwrap().len(), MAX_PASSWORD_BYTES);
        let over = vec![b'a'; MAX_PASSWORD_BYTES + 1];
        assert!(matches!(read(&over), Err(PasswordInputError::TooLong)));
        let far_over = vec![b'a'; MAX_PASSWORD_BYTES * 3];
        assert!(matches!(read(&far_over), Err(PasswordInputError::TooLong)));
        let mut over_line = over;
        over_line.push(b'\n');
        assert!(matches!(read(&over_line), Err(PasswordInputError::TooLong)));
    }

    #[test]
    fn non_utf8_password_is_refused_without_echoing_it() {
        let err = read(b"\xff\xfe\n").unwrap_err();
        assert!(matches!(err, PasswordInputError::NotUtf8));
        assert_eq!(err.to_string(), "the password is not valid UTF-8");
    }
}
