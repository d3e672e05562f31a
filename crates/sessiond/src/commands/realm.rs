//! `sessiond realm cookie-name`.

use super::ops::{NameChange, Op, Reply};
use super::{load_config, print_json, print_stdout};
use crate::cli::RealmCookieName;
use anyhow::{anyhow, bail};
use sessiond_core::cookie::validate_cookie_name;
use std::path::Path;

/// `sessiond realm cookie-name REALM [NAME | --reset]`: shows the realm's session cookie name,
/// sets it, or resets it to the realm's generated default. A change ends every session of the
/// realm; running servers follow it within seconds. Works whether or not the server runs.
///
/// Text output: `REALM: NAME` (`(default)` after a generated default), then, after a change,
/// `N sessions ended`. `--json`: `{"realm","cookie_name","default_cookie_name","sessions_ended"}`.
///
/// # Errors
/// An unknown realm; a name fixed by the configuration; a name the realm's cookie cannot have,
/// with the reason; a name another realm uses; and the failures of `sessions::run`.
pub(crate) async fn realm_cookie_name(config: Option<&Path>, args: &RealmCookieName, json: bool) -> anyhow::Result<()> {
    let config = load_config(config)?;
    let realm = config
        .realms
        .iter()
        .find(|r| r.name == args.realm)
        .ok_or_else(|| anyhow!("no realm {:?} in the configuration", args.realm))?;
    let change = match (&args.name, args.reset) {
        (Some(name), _) => Some(NameChange::Set(name.clone())),
        (None, true) => Some(NameChange::Reset),
        (None, false) => None,
    };
    if change.is_some() && realm.cookie.name.is_some() {
        bail!("realms.{}.cookie.name is set in the configuration; change it there", realm.name);
    }
    if let Some(NameChange::Set(name)) = &change {
        validate_cookie_name(name, realm.cookie.secure, realm.cookie.domain.as_deref()).map_err(|e| anyhow!("{e}"))?;
        for other in config.realms.iter().filter(|r| r.name != realm.name) {
            let theirs = match &other.cookie.name {
                Some(configured) => configured.clone(),
                None => match super::sessions::run(&config, Op::CookieName { realm: other.name.clone(), change: None })
                    .await?
                {
                    Reply::CookieName { cookie_name, .. } => cookie_name,
                    _ => bail!("the server answered with something else"),
                },
            };
            if theirs.eq_ignore_ascii_case(name) {
                bail!("cookie name {name:?} is the cookie of realm {}", other.name);
            }
        }
    }
    let reply =
        super::sessions::run(&config, Op::CookieName { realm: realm.name.clone(), change: change.clone() }).await?;
    let Reply::CookieName { realm: name, cookie_name, default_cookie_name, sessions_ended } = &reply else {
        bail!("the server answered with something else");
    };
    if json {
        return print_json(&reply);
    }
    let mut text = format!("{name}: {cookie_name}{}\n", if *default_cookie_name { " (default)" } else { "" });
    if change.is_some() {
        let noun = if *sessions_ended == 1 { "session" } else { "sessions" };
        text.push_str(&format!("{sessions_ended} {noun} ended\n"));
    }
    print_stdout(&text)
}
