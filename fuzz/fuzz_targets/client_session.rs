//! The client-side session cookie decoder, from both sides of the cipher.
//!
//! `ClientSessionCodec::open` on arbitrary text (what a browser or an attacker presents): the
//! length limit, base64url, the version and key id, the AEAD. Nothing may open: the codec's
//! secret is fixed here but no input can carry a valid tag without it. Then the binary layout
//! behind the cipher (`fuzz_decode`) on the same bytes: no panic, and whatever decodes survives
//! encoding unchanged.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sessiond_core::client_session::{ClientSessionCodec, fuzz_decode};
use std::sync::LazyLock;

static CODEC: LazyLock<ClientSessionCodec> = LazyLock::new(|| {
    ClientSessionCodec::new(b"a fuzzing secret of at least 32 bytes", Some(b"the previous fuzzing secret, 32 bytes"))
});

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        assert!(CODEC.open("main", "sd_main", text).is_err(), "{text:?} opened");
    }
    let _ = fuzz_decode(data);
});
