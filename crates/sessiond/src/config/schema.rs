//! Every configuration key, the kind of value it takes, and the walk that checks a YAML tree
//! against them.
//!
//! serde's `deny_unknown_fields` refuses a typo but cannot say where it sits; walking the tree
//! here first gives the full path (`realms.main.cookie.nmae`). The same list tells the environment
//! overlay which variables exist and which keys are lists, and lets a test check that the
//! reference documentation mentions every key. A test also checks it against the structs of
//! [`super::file`], field for field.

use super::ConfigError;
use serde_yaml_ng::{Mapping, Value};

/// The kind of value a key takes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Kind {
    /// Text.
    Str,
    /// A word, where `true` and `false` are among the words (`cookie.secure: auto`).
    Word,
    /// `true` or `false`.
    Bool,
    /// A whole number, zero or more.
    Int,
    /// A duration (`5m`, `1h30m`, a number of seconds, `-1` where allowed).
    Duration,
    /// A list of texts.
    List,
    /// A text or a list of texts, brought to a list (`domain: example.com`).
    Strings,
    /// A list whose items are texts or lists of texts, each brought to a list; a lone text is a
    /// list of one list (`subject: group:admins`).
    Subjects,
}

/// A place in the configuration tree.
#[derive(Debug)]
pub(super) enum Node {
    /// A key that holds a value.
    Leaf(Kind),
    /// A section with a fixed set of keys.
    Section(&'static [(&'static str, Node)]),
    /// A map from names chosen by the user (realm names) to sections.
    Named(&'static Node),
    /// A list of sections (access rules, login providers); set in the file only, never from the
    /// environment.
    Items(&'static Node),
}

use Kind::{Bool, Duration, Int, List, Str, Strings, Subjects, Word};
use Node::{Items, Leaf, Named, Section};

static REALM: Node = Section(&[
    ("domain", Leaf(Str)),
    ("portal_url", Leaf(Str)),
    (
        "cookie",
        Section(&[
            ("name", Leaf(Str)),
            ("same_site", Leaf(Str)),
            ("secure", Leaf(Word)),
            ("persistent", Leaf(Bool)),
            ("http_only", Leaf(Word)),
        ]),
    ),
    ("location", Leaf(Str)),
    ("expiration", Leaf(Duration)),
    ("inactivity", Leaf(Duration)),
    ("remember_me", Leaf(Duration)),
    (
        "jwt",
        Section(&[
            ("enabled", Leaf(Bool)),
            ("lifetime", Leaf(Duration)),
            ("cookie", Leaf(Bool)),
            ("header", Leaf(Bool)),
            ("rotation", Leaf(Duration)),
        ]),
    ),
    ("journeys", Section(&[("location", Leaf(Str)), ("allowlisting", Leaf(Bool)), ("timeout", Leaf(Duration))])),
]);

static ACCESS_RULE: Node = Section(&[
    ("domain", Leaf(Strings)),
    ("resources", Leaf(List)),
    ("methods", Leaf(List)),
    ("subject", Leaf(Subjects)),
    ("policy", Leaf(Str)),
]);

/// `authentication.providers[]`: one login provider.
static PROVIDER: Node = Section(&[
    ("id", Leaf(Str)),
    ("kind", Leaf(Str)),
    ("label", Leaf(Str)),
    ("user_header", Leaf(Str)),
    ("groups_header", Leaf(Str)),
    ("email_header", Leaf(Str)),
    ("name_header", Leaf(Str)),
    ("url", Leaf(Str)),
    ("start_tls", Leaf(Bool)),
    ("bind_dn", Leaf(Str)),
    ("bind_password", Leaf(Str)),
    ("bind_password_file", Leaf(Str)),
    ("base_dn", Leaf(Str)),
    ("user_filter", Leaf(Str)),
    ("username_attribute", Leaf(Str)),
    ("disabled_filter", Leaf(Str)),
    (
        "groups",
        Section(&[
            ("member_of", Leaf(Bool)),
            ("base_dn", Leaf(Str)),
            ("filter", Leaf(Str)),
            ("name_attribute", Leaf(Str)),
        ]),
    ),
    ("attributes", Section(&[("display_name", Leaf(List)), ("email", Leaf(Str))])),
    ("timeout", Leaf(Duration)),
    ("ca_file", Leaf(Str)),
    ("issuer", Leaf(Str)),
    ("client_id", Leaf(Str)),
    ("client_secret", Leaf(Str)),
    ("client_secret_file", Leaf(Str)),
    ("scopes", Leaf(List)),
    ("claims", Section(&[("username", Leaf(Str)), ("groups", Leaf(Str)), ("email", Leaf(Str)), ("name", Leaf(Str))])),
    ("logout", Leaf(Bool)),
    ("idp_metadata_file", Leaf(Str)),
    ("entity_id", Leaf(Str)),
]);

/// `storage.redis`: where the Redis deployment is and how to reach it.
const REDIS: Node = Section(&[
    ("url", Leaf(Str)),
    (
        "sentinel",
        Section(&[
            ("master", Leaf(Str)),
            ("nodes", Leaf(List)),
            ("password", Leaf(Str)),
            ("password_file", Leaf(Str)),
            ("db", Leaf(Int)),
        ]),
    ),
    ("cluster", Section(&[("nodes", Leaf(List))])),
    ("username", Leaf(Str)),
    ("password", Leaf(Str)),
    ("password_file", Leaf(Str)),
    ("key_prefix", Leaf(Str)),
    ("timeout", Leaf(Duration)),
    ("cache_ttl", Leaf(Duration)),
    ("cache_capacity", Leaf(Int)),
]);

/// The whole configuration.
pub(super) static ROOT: Node = Section(&[
    ("data_dir", Leaf(Str)),
    ("secret", Leaf(Str)),
    ("secret_file", Leaf(Str)),
    ("secret_previous", Leaf(Str)),
    ("secret_previous_file", Leaf(Str)),
    (
        "server",
        Section(&[
            ("listen", Leaf(Str)),
            ("portal_url", Leaf(Str)),
            ("trusted_proxies", Leaf(List)),
            ("allowed_redirects", Leaf(List)),
            ("admin_group", Leaf(Str)),
            ("reauth_window", Leaf(Duration)),
            ("max_body_bytes", Leaf(Int)),
            ("metrics_listen", Leaf(Str)),
        ]),
    ),
    ("storage", Section(&[("kind", Leaf(Str)), ("path", Leaf(Str)), ("redis", REDIS)])),
    ("realms", Named(&REALM)),
    ("users", Section(&[("file", Leaf(Str))])),
    ("authentication", Section(&[("providers", Items(&PROVIDER)), ("refresh_interval", Leaf(Duration))])),
    ("regulation", Section(&[("max_retries", Leaf(Int)), ("find_time", Leaf(Duration)), ("ban_time", Leaf(Duration))])),
    ("log", Section(&[("level", Leaf(Str)), ("format", Leaf(Str))])),
    ("audit", Section(&[("path", Leaf(Str)), ("stdout", Leaf(Bool))])),
    ("access_control", Section(&[("default_policy", Leaf(Str)), ("rules", Items(&ACCESS_RULE))])),
]);

/// Stands for a name chosen by the user in key paths: `realms.<name>.inactivity`.
#[cfg(test)]
pub(super) const NAME: &str = "<name>";

/// Stands for an item's index in key paths: `access_control.rules[].policy`.
#[cfg(test)]
pub(super) const ITEM: &str = "[]";

/// Every key path with its kind, in table order, with [`NAME`] for user-chosen names and
/// [`ITEM`] for list indices.
#[cfg(test)]
pub(super) fn key_paths() -> Vec<(String, Kind)> {
    fn collect(node: &Node, prefix: &str, out: &mut Vec<(String, Kind)>) {
        match node {
            Leaf(kind) => out.push((prefix.to_owned(), *kind)),
            Section(children) => {
                for (key, child) in *children {
                    collect(child, &join(prefix, key), out);
                }
            }
            Named(child) => collect(child, &join(prefix, NAME), out),
            Items(child) => collect(child, &format!("{prefix}{ITEM}"), out),
        }
    }
    let mut out = Vec::new();
    collect(&ROOT, "", &mut out);
    out
}

/// The environment variable that sets the key at `path`: `realms.<name>.inactivity` →
/// `SESSIOND__REALMS__<NAME>__INACTIVITY`.
pub(super) fn env_var(path: &str) -> String {
    format!("{}{}", super::ENV_PREFIX, path.replace('.', "__").to_uppercase())
}

/// `prefix.key`, or `key` at the top.
pub(super) fn join(prefix: &str, key: &str) -> String {
    if prefix.is_empty() { key.to_owned() } else { format!("{prefix}.{key}") }
}

/// Why a list of path segments names no key.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum LookupError {
    /// No such key; `path` ends at the first unknown segment.
    Unknown {
        /// The path up to the unknown segment.
        path: String,
        /// A known sibling with a similar name.
        suggestion: Option<String>,
    },
    /// The path names a section or a realm, not a key holding a value.
    NotAValue {
        /// The path.
        path: String,
    },
    /// The path leads into a list of sections, which only the file can set.
    FileOnly {
        /// The path of the list.
        path: String,
    },
}

/// The kind of the key at `segments` (user-chosen names taken as they come).
///
/// # Errors
/// [`LookupError`] when the segments lead nowhere or stop at a section.
pub(super) fn lookup(segments: &[String]) -> Result<Kind, LookupError> {
    let mut node = &ROOT;
    let mut path = String::new();
    for segment in segments {
        let parent = path;
        path = join(&parent, segment);
        node = match node {
            Leaf(_) => return Err(LookupError::Unknown { path, suggestion: None }),
            Items(_) => return Err(LookupError::FileOnly { path: parent }),
            Named(child) => child,
            Section(children) => match children.iter().find(|(key, _)| key == segment) {
                Some((_, child)) => child,
                None => {
                    let suggestion = suggest(segment, children.iter().map(|(key, _)| *key)).map(|s| join(&parent, &s));
                    return Err(LookupError::Unknown { path, suggestion });
                }
            },
        };
    }
    match node {
        Leaf(kind) => Ok(*kind),
        Items(_) => Err(LookupError::FileOnly { path }),
        Section(_) | Named(_) => Err(LookupError::NotAValue { path }),
    }
}

/// Checks `tree` against the known keys and brings each value to its key's kind: nulls are
/// dropped (a key set to nothing keeps its default), numbers given for durations become text, and
/// `true`/`false` given for words become text.
///
/// # Errors
/// [`ConfigError::UnknownKey`] for the first unknown key, [`ConfigError::Invalid`] for a value of
/// the wrong kind; both carry the full path.
pub(super) fn normalize(tree: Value) -> Result<Value, ConfigError> {
    Ok(walk(&ROOT, "", tree)?.unwrap_or_else(|| Value::Mapping(Mapping::new())))
}

fn walk(node: &Node, path: &str, value: Value) -> Result<Option<Value>, ConfigError> {
    if value.is_null() {
        return Ok(None);
    }
    match node {
        Leaf(kind) => leaf(*kind, path, value).map(Some),
        Section(children) => {
            let mut out = Mapping::new();
            for (key, value) in mapping(path, value)? {
                let key = key_text(path, key)?;
                let full = join(path, &key);
                let Some((_, child)) = children.iter().find(|(known, _)| *known == key) else {
                    let suggestion = suggest(&key, children.iter().map(|(known, _)| *known)).map(|s| join(path, &s));
                    return Err(ConfigError::UnknownKey { key: full, suggestion });
                };
                if let Some(value) = walk(child, &full, value)? {
                    out.insert(Value::String(key), value);
                }
            }
            Ok(Some(Value::Mapping(out)))
        }
        Named(child) => {
            let mut out = Mapping::new();
            for (name, value) in mapping(path, value)? {
                let name = key_text(path, name)?;
                let full = join(path, &name);
                // `main:` with nothing under it is a realm with every default.
                let value = walk(child, &full, value)?.unwrap_or(Value::Mapping(Mapping::new()));
                out.insert(Value::String(name), value);
            }
            Ok(Some(Value::Mapping(out)))
        }
        Items(child) => {
            let Value::Sequence(items) = value else {
                return Err(ConfigError::invalid(path, format!("expected a list, found {}", describe(&value))));
            };
            let mut out = Vec::with_capacity(items.len());
            for (index, item) in items.into_iter().enumerate() {
                // `- ` with nothing after it is an item with no keys, refused by validation.
                let item = walk(child, &format!("{path}[{index}]"), item)?.unwrap_or(Value::Mapping(Mapping::new()));
                out.push(item);
            }
            Ok(Some(Value::Sequence(out)))
        }
    }
}

fn mapping(path: &str, value: Value) -> Result<Mapping, ConfigError> {
    match value {
        Value::Mapping(map) => Ok(map),
        other => {
            let key = if path.is_empty() { "configuration" } else { path };
            Err(ConfigError::invalid(key, format!("expected keys, found {}", describe(&other))))
        }
    }
}

fn key_text(path: &str, key: Value) -> Result<String, ConfigError> {
    match key {
        Value::String(text) => Ok(text),
        Value::Number(n) => Ok(n.to_string()),
        Value::Bool(b) => Ok(b.to_string()),
        other => {
            let key = if path.is_empty() { "configuration" } else { path };
            Err(ConfigError::invalid(key, format!("a key must be text, found {}", describe(&other))))
        }
    }
}

fn leaf(kind: Kind, path: &str, value: Value) -> Result<Value, ConfigError> {
    let wrong = |expected: &str, found: &Value| {
        ConfigError::invalid(path, format!("expected {expected}, found {}", describe(found)))
    };
    match (kind, value) {
        (Str | Word | Duration, v @ Value::String(_)) | (Bool, v @ Value::Bool(_)) => Ok(v),
        (Word, Value::Bool(b)) => Ok(Value::String(b.to_string())),
        (Int, Value::Number(n)) if n.is_u64() => Ok(Value::Number(n)),
        (Duration, Value::Number(n)) if n.is_i64() || n.is_u64() => Ok(Value::String(n.to_string())),
        (List | Strings, Value::Sequence(items)) => texts(path, items).map(Value::Sequence),
        (Strings, v @ Value::String(_)) => Ok(Value::Sequence(vec![v])),
        (Subjects, v @ Value::String(_)) => Ok(Value::Sequence(vec![Value::Sequence(vec![v])])),
        (Subjects, Value::Sequence(items)) => {
            let mut out = Vec::with_capacity(items.len());
            for (index, item) in items.into_iter().enumerate() {
                match item {
                    v @ Value::String(_) => out.push(Value::Sequence(vec![v])),
                    Value::Sequence(all) => out.push(Value::Sequence(texts(&format!("{path}[{index}]"), all)?)),
                    other => {
                        let at = format!("text or a list of texts at position {}", index + 1);
                        return Err(wrong(&at, &other));
                    }
                }
            }
            Ok(Value::Sequence(out))
        }
        (Str, v @ Value::Number(_)) => Err(wrong("text (put it in quotes)", &v)),
        (Str, v) => Err(wrong("text", &v)),
        (Word, v) => Err(wrong("a word", &v)),
        (Bool, v) => Err(wrong("true or false", &v)),
        (Int, v) => Err(wrong("a whole number", &v)),
        (Duration, v) => Err(wrong("a duration such as 5m or 1h30m", &v)),
        (List, v) => Err(wrong("a list", &v)),
        (Strings, v) => Err(wrong("text or a list of texts", &v)),
        (Subjects, v) => Err(wrong("a list of user:<name> or group:<name> entries", &v)),
    }
}

/// The items of a list of texts.
fn texts(path: &str, items: Vec<Value>) -> Result<Vec<Value>, ConfigError> {
    items
        .into_iter()
        .enumerate()
        .map(|(index, item)| match item {
            Value::String(_) => Ok(item),
            other => Err(ConfigError::invalid(
                path,
                format!("expected text at position {}, found {}", index + 1, describe(&other)),
            )),
        })
        .collect()
}

/// Names a value's type for messages. Numbers are not quoted: a secret given unquoted must not
/// end up in a log.
fn describe(value: &Value) -> String {
    match value {
        Value::Null => "nothing".to_owned(),
        Value::Bool(b) => b.to_string(),
        Value::Number(_) => "a number".to_owned(),
        Value::String(s) => format!("{s:?}"),
        Value::Sequence(_) => "a list".to_owned(),
        Value::Mapping(_) => "keys".to_owned(),
        Value::Tagged(_) => "a tagged value".to_owned(),
    }
}

/// The known key closest to `unknown`, if it is close enough to be a typo.
fn suggest<'a>(unknown: &str, known: impl Iterator<Item = &'a str>) -> Option<String> {
    known
        .map(|candidate| (edit_distance(unknown, candidate), candidate))
        .filter(|(distance, _)| *distance <= 2 && *distance < unknown.len())
        .min_by_key(|(distance, _)| *distance)
        .map(|(_, candidate)| candidate.to_owned())
}

/// Edits (insert, delete, substitute, swap neighbours) from `a` to `b`.
fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let mut rows = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in rows.iter_mut().enumerate() {
        if let Some(first) = row.first_mut() {
            *first = i;
        }
    }
    for (j, cell) in rows[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut best = (rows[i - 1][j] + 1).min(rows[i][j - 1] + 1).min(rows[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                best = best.min(rows[i - 2][j - 2] + 1);
            }
            rows[i][j] = best;
        }
    }
    rows[a.len()][b.len()]
}

#[cfg(test)]
mod tests {
    use super::super::file;
    use super::*;
    use std::collections::BTreeSet;

    fn placeholder(kind: Kind) -> Value {
        match kind {
            Str | Word => Value::String("x".into()),
            Bool => Value::Bool(true),
            Int => Value::Number(1.into()),
            Duration => Value::String("1s".into()),
            List | Strings => Value::Sequence(vec![Value::String("x".into())]),
            Subjects => Value::Sequence(vec![Value::Sequence(vec![Value::String("x".into())])]),
        }
    }

    fn leaves(value: &Value, prefix: &str, out: &mut BTreeSet<String>) {
        match value {
            Value::Mapping(map) => {
                for (key, child) in map {
                    leaves(child, &join(prefix, key.as_str().unwrap()), out);
                }
            }
            Value::Sequence(items) if items.iter().all(Value::is_mapping) && !items.is_empty() => {
                for item in items {
                    leaves(item, &format!("{prefix}{ITEM}"), out);
                }
            }
            _ => {
                out.insert(prefix.to_owned());
            }
        }
    }

    /// Sets `path` in `tree`; a segment ending in [`ITEM`] is a list holding one section.
    fn set_path(tree: &mut Value, segments: &[&str], value: Value) {
        let Some((first, rest)) = segments.split_first() else {
            *tree = value;
            return;
        };
        if tree.is_null() {
            *tree = Value::Mapping(Mapping::new());
        }
        let map = tree.as_mapping_mut().unwrap();
        match first.strip_suffix(ITEM) {
            Some(key) => {
                let list = map.entry(key.into()).or_insert_with(|| Value::Sequence(vec![Value::Null]));
                set_path(&mut list.as_sequence_mut().unwrap()[0], rest, value);
            }
            None => set_path(map.entry((*first).into()).or_insert(Value::Null), rest, value),
        }
    }

    #[test]
    fn schema_and_file_structs_know_the_same_keys() {
        let mut tree = Value::Null;
        let mut expected = BTreeSet::new();
        for (path, kind) in key_paths() {
            let path = path.replace(NAME, "main");
            let segments: Vec<&str> = path.split('.').collect();
            set_path(&mut tree, &segments, placeholder(kind));
            expected.insert(path.clone());
        }
        // deny_unknown_fields: every key of the schema is a field of the structs...
        let parsed: file::ConfigFile = serde_yaml_ng::from_value(tree).unwrap();
        // ...and every field comes back set, so none is missing from the schema.
        let mut found = BTreeSet::new();
        leaves(&serde_yaml_ng::to_value(&parsed).unwrap(), "", &mut found);
        assert_eq!(found, expected);
    }

    #[test]
    fn lookup_finds_keys_through_realm_names() {
        let segments = |path: &str| path.split('.').map(str::to_owned).collect::<Vec<_>>();
        assert_eq!(lookup(&segments("realms.anything.cookie.secure")), Ok(Word));
        assert_eq!(lookup(&segments("server.trusted_proxies")), Ok(List));
        assert_eq!(
            lookup(&segments("server.listn")),
            Err(LookupError::Unknown { path: "server.listn".into(), suggestion: Some("server.listen".into()) })
        );
        assert_eq!(
            lookup(&segments("realms.main.cookie")),
            Err(LookupError::NotAValue { path: "realms.main.cookie".into() })
        );
        assert_eq!(
            lookup(&segments("secret.more")),
            Err(LookupError::Unknown { path: "secret.more".into(), suggestion: None })
        );
        assert_eq!(lookup(&segments("access_control.default_policy")), Ok(Str));
        for (path, list) in [
            ("access_control.rules", "access_control.rules"),
            ("access_control.rules.0.policy", "access_control.rules"),
            ("authentication.providers", "authentication.providers"),
            ("authentication.providers.0.user_header", "authentication.providers"),
        ] {
            assert_eq!(lookup(&segments(path)), Err(LookupError::FileOnly { path: list.into() }), "{path}");
        }
    }

    #[test]
    fn key_paths_mark_list_items() {
        let paths: Vec<String> = key_paths().into_iter().map(|(p, _)| p).collect();
        for expected in [
            "access_control.rules[].domain",
            "access_control.rules[].subject",
            "authentication.providers[].user_header",
        ] {
            assert!(paths.iter().any(|p| p == expected), "{expected} in {paths:?}");
        }
    }

    #[test]
    fn normalize_brings_rule_lists_to_their_shape() {
        let tree: Value = serde_yaml_ng::from_str(
            "access_control:\n  rules:\n  - {domain: a.com, subject: 'group:x', policy: deny}\n  - {domain: [b.com], subject: ['user:a', ['group:b', 'group:c']], policy: deny, resources: ~}\n  -\n",
        )
        .unwrap();
        let expected: Value = serde_yaml_ng::from_str(
            "access_control:\n  rules:\n  - {domain: [a.com], subject: [['group:x']], policy: deny}\n  - {domain: [b.com], subject: [['user:a'], ['group:b', 'group:c']], policy: deny}\n  - {}\n",
        )
        .unwrap();
        assert_eq!(normalize(tree).unwrap(), expected);
    }

    #[test]
    fn normalize_drops_nulls_and_brings_values_to_their_kind() {
        let tree: Value = serde_yaml_ng::from_str(
            "server: {listen: ~}\nrealms: {7: ~, main: {inactivity: 300, cookie: {secure: true}}}\n",
        )
        .unwrap();
        let normalized = normalize(tree).unwrap();
        let expected: Value = serde_yaml_ng::from_str(
            "server: {}\nrealms: {'7': {}, main: {inactivity: '300', cookie: {secure: 'true'}}}\n",
        )
        .unwrap();
        assert_eq!(normalized, expected);
    }

    #[test]
    fn edit_distance_counts_a_swap_as_one_edit() {
        assert_eq!(edit_distance("nmae", "name"), 1);
        assert_eq!(edit_distance("listn", "listen"), 1);
        assert_eq!(edit_distance("", "abc"), 3);
        assert_eq!(edit_distance("same", "same"), 0);
        assert_eq!(suggest("xyzzy", ["name", "domain"].into_iter()), None);
        assert_eq!(suggest("a", ["b"].into_iter()), None, "one letter is too short to guess from");
    }
}
