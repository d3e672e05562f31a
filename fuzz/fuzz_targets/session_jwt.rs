//! `Keyring::verify` (through `sessiond_core::jwt::fuzz_verify`) on arbitrary text: the parser
//! of the compact JWS, its header (algorithm, key id, members that would point elsewhere), the
//! signature and the claims.
//!
//! Checks: no panic, and nothing but a token signed by the keyring is accepted. The keyring is
//! made fresh for the run, so no input can hold a signature of its keys.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sessiond_core::jwt::{Keyring, fuzz_verify};
use sessiond_core::time::Timestamp;
use std::sync::LazyLock;

static RING: LazyLock<Keyring> = LazyLock::new(|| Keyring::generate(Timestamp::from_unix(1_700_000_000)));

fuzz_target!(|token: &str| {
    for now in [Timestamp::from_unix(i64::MIN), Timestamp::from_unix(1_700_000_000), Timestamp::from_unix(i64::MAX)] {
        assert!(fuzz_verify(&RING, token, now).is_err(), "{token:?} was accepted");
    }
});
