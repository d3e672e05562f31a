//! `sessiond hash-password`, `sessiond users add` and `sessiond users totp-reset`.

use super::ops::{Op, Reply};
use super::sessions::run;
use super::{load_config, password_from_stdin, print_json, print_stdout};
use crate::cli::{UsersAdd, UsersTotpReset};
use anyhow::{Context as _, bail};
use sessiond_server::users::{UserEntry, UsersFile};
use std::path::Path;

/// The longest user name accepted, in characters.
const MAX_NAME_CHARS: usize = 256;

/// `sessiond hash-password`: reads a password from the first line of standard input and prints
/// its argon2id PHC string (`$argon2id$v=19$m=65536,t=3,p=4$…`), the form the users file takes.
///
/// Text output: the PHC string on one line. `--json`: `{"hash":"$argon2id$…"}`.
///
/// # Errors
/// When standard input holds no password (an empty first line), one over 4096 bytes, or one that
/// is not UTF-8.
pub(crate) fn hash_password(json: bool) -> anyhow::Result<()> {
    let password = password_from_stdin()?;
    let hash = hash(&password)?;
    if json { print_json(&serde_json::json!({ "hash": hash })) } else { print_stdout(&format!("{hash}\n")) }
}

fn hash(password: &str) -> anyhow::Result<String> {
    sessiond_server::users::hash_password(password).map_err(|e| anyhow::anyhow!("hashing the password: {e}"))
}

/// `sessiond users add NAME [--email E] [--display-name N] [--groups a,b]`: adds a user to the
/// users file (`users.file`), with the password read from the first line of standard input.
///
/// The file is created (mode 0600) when missing, and always replaced atomically, so a running
/// server, which re-reads the file when it changes, never sees half of it.
///
/// Text output: `added user NAME to FILE`. `--json`: `{"user":"NAME","file":"FILE"}`.
///
/// # Errors
/// When the name is empty, longer than 256 characters, or holds whitespace, `:` or control
/// characters; when the user already exists; when the password is missing or refused (see
/// [`hash_password`]); when the users file cannot be read (it is then left as it was) or written.
pub(crate) fn users_add(config: Option<&Path>, args: &UsersAdd, json: bool) -> anyhow::Result<()> {
    let config = load_config(config)?;
    let file = &config.users_file;
    check_name(&args.name)?;
    let display_name = optional_text("--display-name", args.display_name.as_deref())?;
    let email = optional_text("--email", args.email.as_deref())?;
    let groups = groups(&args.groups)?;
    // Refuse a taken name before asking for a password.
    refuse_existing(&read_or_empty(file)?, &args.name, file)?;

    let password = password_from_stdin()?;
    let entry = UserEntry { display_name, password: hash(&password)?, email, groups, disabled: false };
    add_user(file, &args.name, entry)?;

    if json {
        print_json(&serde_json::json!({ "user": args.name, "file": file.display().to_string() }))
    } else {
        print_stdout(&format!("added user {} to {}\n", args.name, file.display()))
    }
}

/// `sessiond users totp-reset NAME`: removes the TOTP second factor of `NAME` (and any pending
/// enrollment), so that their next sign-in asks for the password only.
///
/// Like `sessiond sessions …`, it works whether or not the server runs (see `sessions::run`);
/// through a running server's control socket, a reset that removed something is written to the
/// audit log as `totp_changed` with `reason: reset`.
///
/// Text output: `TOTP of NAME removed; their next sign-in asks for the password only`, or
/// `NAME had no TOTP` (still a success). `--json`: `{"user":"NAME","totp_removed":true|false}`.
///
/// # Errors
/// A name no user can have (empty, over 256 bytes, control characters), and the failures of
/// `sessions::run`.
pub(crate) async fn users_totp_reset(config: Option<&Path>, args: &UsersTotpReset, json: bool) -> anyhow::Result<()> {
    let config = load_config(config)?;
    let Reply::TotpReset { user, totp_removed } = run(&config, Op::ResetTotp { user: args.name.clone() }).await? else {
        bail!("the server answered a TOTP reset with something else");
    };
    if json {
        print_json(&Reply::TotpReset { user, totp_removed })
    } else if totp_removed {
        print_stdout(&format!("TOTP of {user} removed; their next sign-in asks for the password only\n"))
    } else {
        print_stdout(&format!("{user} had no TOTP\n"))
    }
}

/// Checks a login name: what a user can type in a form, and what the users file and the
/// `Remote-User` header can carry unambiguously.
fn check_name(name: &str) -> anyhow::Result<()> {
    if name.is_empty() {
        bail!("the user name must not be empty");
    }
    if name.chars().count() > MAX_NAME_CHARS {
        bail!("user name {name:?} is longer than {MAX_NAME_CHARS} characters");
    }
    if let Some(c) = name.chars().find(|c| c.is_control() || c.is_whitespace() || *c == ':') {
        bail!("user name {name:?} contains {c:?}; names may not contain whitespace, ':' or control characters");
    }
    Ok(())
}

/// A text option: trimmed, `None` when blank, refused with control characters.
fn optional_text(flag: &str, value: Option<&str>) -> anyhow::Result<Option<String>> {
    let Some(value) = value.map(str::trim).filter(|v| !v.is_empty()) else { return Ok(None) };
    if value.chars().any(char::is_control) {
        bail!("{flag} {value:?} contains control characters");
    }
    Ok(Some(value.to_owned()))
}

/// Group names from `--groups a,b`: trimmed, blanks dropped (`a,,b` or a trailing comma), no
/// duplicates, order kept.
fn groups(raw: &[String]) -> anyhow::Result<Vec<String>> {
    let mut groups: Vec<String> = Vec::new();
    for group in raw.iter().map(|g| g.trim()).filter(|g| !g.is_empty()) {
        if group.chars().any(|c| c.is_control() || c == ',') {
            bail!("group {group:?} contains control characters or ','");
        }
        if !groups.iter().any(|g| g == group) {
            groups.push(group.to_owned());
        }
    }
    Ok(groups)
}

fn read_or_empty(file: &Path) -> anyhow::Result<UsersFile> {
    if file.exists() {
        UsersFile::read(file).with_context(|| format!("reading users file {}", file.display()))
    } else {
        Ok(UsersFile::default())
    }
}

fn refuse_existing(users: &UsersFile, name: &str, file: &Path) -> anyhow::Result<()> {
    if users.users.contains_key(name) {
        bail!("user {name} already exists in {}", file.display());
    }
    Ok(())
}

/// Adds `name` to the users file at `file`, creating the file (and a private directory for it)
/// when missing.
///
/// The file is read again right before writing, so that an edit made while the password was
/// being hashed is kept.
fn add_user(file: &Path, name: &str, entry: UserEntry) -> anyhow::Result<()> {
    let mut users = read_or_empty(file)?;
    refuse_existing(&users, name, file)?;
    users.users.insert(name.to_owned(), entry);
    if let Some(dir) = file.parent().filter(|d| !d.as_os_str().is_empty()) {
        crate::serve::create_private_dir(dir)?;
    }
    users.write(file).with_context(|| format!("writing users file {}", file.display()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt as _;

    /// A PHC string that the users file accepts, without paying for a real hash in every test.
    const PHC: &str = "$argon2id$v=19$m=65536,t=3,p=4$c2FsdHNhbHRzYWx0$aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaGhhc2g";

    fn entry() -> UserEntry {
        UserEntry {
            display_name: Some("Alice".to_owned()),
            password: PHC.to_owned(),
            email: Some("alice@example.com".to_owned()),
            groups: vec!["admins".to_owned()],
            disabled: false,
        }
    }

    #[test]
    fn accepts_ordinary_names() {
        for name in ["alice", "a", "alice.liddell", "bob@example.com", "émile", &"x".repeat(MAX_NAME_CHARS)] {
            assert!(check_name(name).is_ok(), "{name}");
        }
    }

    #[test]
    fn refuses_names_that_cannot_be_used() {
        assert_eq!(check_name("").unwrap_err().to_string(), "the user name must not be empty");
        let long = "x".repeat(MAX_NAME_CHARS + 1);
        assert!(check_name(&long).unwrap_err().to_string().contains("longer than 256 characters"));
        for name in ["al ice", "alice\t", "al:ice", "al\nice", "al\u{7}ice", "\u{a0}alice"] {
            let err = check_name(name).unwrap_err().to_string();
            assert!(err.contains("may not contain"), "{name:?}: {err}");
        }
    }

    #[test]
    fn groups_are_trimmed_and_deduplicated() {
        let raw = ["admins", " dev", "", "admins", "ops "].map(str::to_owned);
        assert_eq!(groups(&raw).unwrap(), ["admins", "dev", "ops"]);
        assert!(groups(&["a\u{1b}b".to_owned()]).is_err());
    }

    #[test]
    fn text_options_are_trimmed_and_blank_means_none() {
        assert_eq!(optional_text("--email", Some(" a@b.c ")).unwrap().as_deref(), Some("a@b.c"));
        assert_eq!(optional_text("--email", Some("  ")).unwrap(), None);
        assert_eq!(optional_text("--email", None).unwrap(), None);
        let err = optional_text("--display-name", Some("A\u{1b}[31m")).unwrap_err().to_string();
        assert!(err.starts_with("--display-name"), "{err}");
    }

    #[test]
    fn add_creates_a_private_users_file() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("conf").join("users.yml");
        add_user(&file, "alice", entry()).unwrap();
        let mode = std::fs::metadata(&file).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "mode {mode:o}");
        let users = UsersFile::read(&file).unwrap();
        assert_eq!(users.users.get("alice"), Some(&entry()));
    }

    #[test]
    fn add_keeps_the_other_users() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("users.yml");
        add_user(&file, "alice", entry()).unwrap();
        add_user(&file, "bob", UserEntry { groups: vec![], ..entry() }).unwrap();
        let users = UsersFile::read(&file).unwrap();
        assert_eq!(users.users.keys().collect::<Vec<_>>(), ["alice", "bob"]);
        assert_eq!(users.users["alice"], entry());
    }

    #[test]
    fn add_refuses_an_existing_user_and_leaves_the_file_alone() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("users.yml");
        add_user(&file, "alice", entry()).unwrap();
        let before = std::fs::read(&file).unwrap();
        let other = UserEntry { display_name: Some("Impostor".to_owned()), ..entry() };
        let err = add_user(&file, "alice", other).unwrap_err().to_string();
        assert_eq!(err, format!("user alice already exists in {}", file.display()));
        assert_eq!(std::fs::read(&file).unwrap(), before);
    }

    #[test]
    fn add_does_not_overwrite_a_broken_users_file() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("users.yml");
        std::fs::write(&file, "users: [not, a, map]\n").unwrap();
        let err = add_user(&file, "alice", entry()).unwrap_err();
        assert!(format!("{err:#}").contains("reading users file"), "{err:#}");
        assert_eq!(std::fs::read_to_string(&file).unwrap(), "users: [not, a, map]\n");
    }

    #[test]
    fn hashes_verify_against_the_password() {
        use argon2::password_hash::{PasswordHash, PasswordVerifier as _};
        let phc = hash("correct horse").unwrap();
        assert!(phc.starts_with("$argon2id$v=19$m=65536,t=3,p=4$"), "{phc}");
        let parsed = PasswordHash::new(&phc).unwrap();
        assert!(argon2::Argon2::default().verify_password(b"correct horse", &parsed).is_ok());
        assert!(argon2::Argon2::default().verify_password(b"wrong", &parsed).is_err());
    }
}
