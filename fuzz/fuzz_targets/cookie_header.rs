//! `find_cookie` over arbitrary `Cookie` header values.
//!
//! Input: the first line is the cookie name, every further line one `Cookie` header value (a
//! header value cannot hold a newline, so nothing is lost by splitting on it). The bytes of the
//! values are arbitrary; the name is skipped when it is not UTF-8.
//!
//! Checks: no panic; a value found consists of cookie octets only (no `;`, `,`, `"`, `\`,
//! whitespace or control bytes) and occurs in one of the headers; the answer does not depend on
//! the order of the headers, nor on whether they arrive as several values or joined by `;`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sessiond_core::cookie::{find_cookie, is_cookie_value};

fuzz_target!(|data: &[u8]| {
    let mut lines = data.split(|&b| b == b'\n');
    let Some(Ok(name)) = lines.next().map(std::str::from_utf8) else {
        return;
    };
    let headers: Vec<&[u8]> = lines.collect();

    let found = find_cookie(headers.iter().copied(), name);
    if let Ok(Some(value)) = found {
        assert!(is_cookie_value(value.as_bytes()), "found value {value:?} has bytes outside the cookie octets");
        assert!(!value.contains(';'));
        let occurs = |h: &&[u8]| h.windows(value.len()).any(|w| w == value.as_bytes());
        assert!(value.is_empty() || headers.iter().any(occurs), "found value {value:?} occurs in no header");
    }

    let reversed = find_cookie(headers.iter().rev().copied(), name);
    let joined = headers.join(&b';');
    let as_one = find_cookie([joined.as_slice()], name);
    match found {
        // A single answer must be the same however the pairs are grouped or ordered.
        Ok(value) => {
            assert_eq!(reversed, Ok(value), "header order changed the answer");
            assert_eq!(as_one, Ok(value), "joining the headers changed the answer");
        }
        // Which error comes first may depend on the order, but an error stays an error.
        Err(_) => {
            assert!(reversed.is_err(), "header order turned an error into {reversed:?}");
            assert!(as_one.is_err(), "joining the headers turned an error into {as_one:?}");
        }
    }
});
