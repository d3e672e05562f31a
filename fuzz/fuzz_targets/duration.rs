//! `parse_duration` and `parse_duration_or_disabled` on arbitrary text.
//!
//! Checks: no panic (overflow included: the targets are built with overflow checks); a parsed
//! duration is whole seconds, and its canonical text (`format_duration`) parses back to it.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sessiond_core::duration::{format_duration, parse_duration, parse_duration_or_disabled};

fuzz_target!(|text: &str| {
    let parsed = parse_duration(text);
    if let Ok(d) = parsed {
        assert_eq!(d.subsec_nanos(), 0);
        let canonical = format_duration(d);
        assert_eq!(parse_duration(&canonical), Ok(d), "{text:?} → {d:?} → {canonical:?} does not read back");
    }
    match parse_duration_or_disabled(text) {
        Ok(None) => assert_eq!(text.trim(), "-1"),
        Ok(Some(d)) => assert_eq!(parsed, Ok(d)),
        Err(_) => assert!(parsed.is_err()),
    }
});
