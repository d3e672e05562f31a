//! `sessiond keys rotate`.

use super::ops::{Op, Reply};
use super::{load_config, print_json, print_stdout};
use crate::cli::KeysRotate;
use anyhow::{anyhow, bail};
use std::path::Path;

/// `sessiond keys rotate [--realm R]`: rotates the JWT signing key of every realm that issues
/// JWTs, or of realm `R`. Works whether or not the server runs (see `sessions::run`).
///
/// Text output: one line per realm, `rotated REALM: signing with KID (retired OLD)`. `--json`:
/// `{"rotated":[{"realm","current_kid","retired_kid"}]}`.
///
/// # Errors
/// An unknown realm, a realm whose JWTs are turned off, no secret to open the keys with, and the
/// failures of `sessions::run`.
pub(crate) async fn keys_rotate(config: Option<&Path>, args: &KeysRotate, json: bool) -> anyhow::Result<()> {
    let config = load_config(config)?;
    let realms: Vec<_> = match &args.realm {
        Some(name) => {
            let realm = config
                .realms
                .iter()
                .find(|r| &r.name == name)
                .ok_or_else(|| anyhow!("no realm {name:?} in the configuration"))?;
            if !realm.jwt.enabled {
                bail!("realm {name} does not issue JWTs (realms.{name}.jwt.enabled is false)");
            }
            vec![realm]
        }
        None => config.realms.iter().filter(|r| r.jwt.enabled).collect(),
    };
    if realms.is_empty() {
        bail!("no realm issues JWTs: nothing to rotate");
    }
    let mut rotated = Vec::new();
    for realm in realms {
        let op = Op::RotateKeys { realm: realm.name.clone(), lifetime_secs: realm.jwt.lifetime.as_secs() };
        match super::sessions::run(&config, op).await? {
            reply @ Reply::Rotated { .. } => rotated.push(reply),
            _ => bail!("the server answered a rotation with something else"),
        }
    }
    if json {
        return print_json(&serde_json::json!({ "rotated": rotated }));
    }
    let mut text = String::new();
    for reply in &rotated {
        if let Reply::Rotated { realm, current_kid, retired_kid } = reply {
            text.push_str(&format!("rotated {realm}: signing with {current_kid} (retired {retired_kid})\n"));
        }
    }
    print_stdout(&text)
}
