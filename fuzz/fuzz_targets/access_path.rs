//! `normalize_path` on arbitrary request paths.
//!
//! Checks: no panic; a result starts with `/`, has no empty (except a trailing slash), `.` or
//! `..` segment, no `?`, `#`, backslash or control character, and normalises to itself.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sessiond_core::access::normalize_path;

fuzz_target!(|raw: &str| {
    let Ok(path) = normalize_path(raw) else {
        return;
    };
    assert!(path.starts_with('/'), "{raw:?} normalised to {path:?}");
    assert!(!path.contains(['?', '#', '\\']), "{raw:?} normalised to {path:?}");
    assert!(!path.chars().any(char::is_control), "{raw:?} normalised to {path:?}");
    let segments: Vec<&str> = path.split('/').skip(1).collect();
    let last = segments.len() - 1;
    for (i, segment) in segments.iter().enumerate() {
        assert!(!matches!(*segment, "." | ".."), "{raw:?} normalised to {path:?}, with a dot segment");
        assert!(!segment.is_empty() || i == last, "{raw:?} normalised to {path:?}, with an empty segment");
    }
    assert_eq!(normalize_path(&path).as_deref(), Ok(path.as_str()), "normalising {raw:?} twice changed it");
});
