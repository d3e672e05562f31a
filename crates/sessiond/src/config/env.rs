//! Environment variables on top of the file: `SESSIOND__REALMS__MAIN__INACTIVITY=10m` sets
//! `realms.main.inactivity`.
//!
//! The part after `SESSIOND__` is split at double underscores and lowercased. Text keys take the
//! value verbatim, so a secret such as `0x1f…` or `~abc` stays what it is; numbers, booleans and
//! durations are read as a YAML scalar; lists are comma-separated, and `[]` is the empty list. An
//! empty value unsets the key, which brings back its default. Lists of sections (access rules,
//! login providers) are set in the file only.

use super::schema::{self, Kind, LookupError};
use super::{ConfigError, ENV_PREFIX};
use serde_yaml_ng::{Mapping, Value};
use std::collections::BTreeMap;

/// Applies the `SESSIOND__…` variables of `vars` to `tree`, in name order.
///
/// Returns which variable set which key path, so that a refused value can be traced back to it.
///
/// # Errors
/// [`ConfigError::Env`] for a variable that names no key, or names a section instead of a key.
pub(super) fn overlay(
    tree: &mut Value,
    vars: impl IntoIterator<Item = (String, String)>,
) -> Result<BTreeMap<String, String>, ConfigError> {
    let vars: BTreeMap<String, String> = vars.into_iter().filter(|(name, _)| name.starts_with(ENV_PREFIX)).collect();
    let mut set_by = BTreeMap::new();
    for (var, raw) in vars {
        let segments: Vec<String> = var[ENV_PREFIX.len()..].split("__").map(str::to_lowercase).collect();
        let env_error = |reason: String| ConfigError::Env { var: var.clone(), reason };
        if segments.iter().any(String::is_empty) {
            return Err(env_error("empty name segment (check the double underscores)".to_owned()));
        }
        let kind = schema::lookup(&segments).map_err(|e| match e {
            LookupError::Unknown { path, suggestion } => {
                let hint = suggestion.map(|s| format!(" (did you mean {}?)", schema::env_var(&s))).unwrap_or_default();
                env_error(format!("unknown key {path:?}{hint}"))
            }
            LookupError::NotAValue { path } => {
                env_error(format!("{path:?} holds keys, not a value; set one of its keys"))
            }
            LookupError::FileOnly { path } => {
                env_error(format!("{path:?} is a list of sections; set it in the configuration file"))
            }
        })?;
        set(tree, &segments, value(kind, &raw));
        set_by.insert(segments.join("."), var);
    }
    Ok(set_by)
}

/// The YAML value an environment variable's text stands for, for a key of `kind`.
fn value(kind: Kind, raw: &str) -> Value {
    if raw.is_empty() {
        return Value::Null;
    }
    match kind {
        Kind::Str | Kind::Word => Value::String(raw.to_owned()),
        // Without this, an empty list could not be written: an empty value means "unset".
        Kind::List | Kind::Strings | Kind::Subjects if raw.trim() == "[]" => Value::Sequence(Vec::new()),
        Kind::List | Kind::Strings | Kind::Subjects => Value::Sequence(
            raw.split(',')
                .map(str::trim)
                .filter(|item| !item.is_empty())
                .map(|item| Value::String(item.to_owned()))
                .collect(),
        ),
        Kind::Bool | Kind::Int | Kind::Duration => match serde_yaml_ng::from_str::<Value>(raw) {
            Ok(v @ (Value::Bool(_) | Value::Number(_) | Value::String(_) | Value::Null)) => v,
            // Whatever YAML makes of it otherwise, the text itself is what validation should see.
            _ => Value::String(raw.to_owned()),
        },
    }
}

/// Sets the key at `segments` in `tree`, creating sections on the way. A value that stands where
/// a section is needed gives way: the environment wins over the file.
pub(super) fn set(tree: &mut Value, segments: &[String], value: Value) {
    let old = std::mem::replace(tree, Value::Null);
    *tree = with(old, segments, value);
}

fn with(tree: Value, segments: &[String], value: Value) -> Value {
    let Some((first, rest)) = segments.split_first() else {
        return value;
    };
    let mut map = match tree {
        Value::Mapping(map) => map,
        _ => Mapping::new(),
    };
    let key = Value::String(first.clone());
    match map.get_mut(&key) {
        Some(child) => {
            let old = std::mem::replace(child, Value::Null);
            *child = with(old, rest, value);
        }
        None => {
            map.insert(key, with(Value::Null, rest, value));
        }
    }
    Value::Mapping(map)
}
