//! `SessionToken::parse` and `SessionId::parse` on arbitrary text.
//!
//! Checks: no panic; anything accepted has the exact length and only base64url characters, and
//! re-encodes to the very same text, so every token and id has exactly one accepted spelling.
#![no_main]

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use libfuzzer_sys::fuzz_target;
use sessiond_core::token::{ID_BYTES, ID_CHARS, SessionId, SessionToken, TOKEN_CHARS};

fn is_base64url(text: &str) -> bool {
    text.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

fuzz_target!(|text: &str| {
    if let Ok(token) = SessionToken::parse(text) {
        assert_eq!(text.len(), TOKEN_CHARS);
        assert!(is_base64url(text));
        assert_eq!(token.expose(), text, "an accepted token is not in canonical form");
    }
    if let Ok(id) = SessionId::parse(text) {
        assert_eq!(id.as_str(), text);
        assert_eq!(text.len(), ID_CHARS);
        assert!(is_base64url(text));
        let bytes = URL_SAFE_NO_PAD.decode(text).unwrap_or_default();
        assert_eq!(bytes.len(), ID_BYTES);
        assert_eq!(URL_SAFE_NO_PAD.encode(bytes), text, "an accepted id is not in canonical form");
    }
});
