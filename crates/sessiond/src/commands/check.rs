//! `sessiond config check`.

use super::{load_config, print_stdout};
use anyhow::Context as _;
use sessiond_server::users::UsersFile;
use std::path::Path;

/// `sessiond config check`: validates the configuration as `serve` would and prints it as it
/// takes effect, secrets redacted (YAML-like text, or JSON with `--json`).
///
/// The users file is checked too when it exists, since `serve` refuses to start on a broken one
/// (a missing one is created by `serve`).
///
/// # Errors
/// The first problem found, naming the key (`realms.main.inactivity: …`), the file or the
/// environment variable at fault; nothing is printed to standard output then.
pub(crate) fn config_check(config: Option<&Path>, json: bool) -> anyhow::Result<()> {
    let config = load_config(config)?;
    if config.users_file.exists() {
        UsersFile::read(&config.users_file).context("users.file")?;
    }
    let mut text = crate::config::render_effective(&config, json);
    if !text.ends_with('\n') {
        text.push('\n');
    }
    print_stdout(&text)
}
