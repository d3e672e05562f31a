//! The two readers of a presented `auth_id`: `ServerAuthId::parse` (server-side journeys) and
//! `JourneyCodec::open` (client-side journeys, the sealed state).
//!
//! Checks: no panic; a parsed server `auth_id` is the canonical 43-character spelling of 32
//! bytes (it re-encodes to the same text); no text opens as a sealed state, whatever the clock
//! (`Expired` would mean a forged tag got through).
#![no_main]

use libfuzzer_sys::fuzz_target;
use sessiond_core::journey::{JourneyCodec, JourneyError, ServerAuthId};
use sessiond_core::time::Timestamp;
use std::sync::LazyLock;

static CODEC: LazyLock<JourneyCodec> =
    LazyLock::new(|| JourneyCodec::new(b"a fuzzing secret of at least thirty-two bytes", None));

fuzz_target!(|auth_id: &str| {
    if let Ok(parsed) = ServerAuthId::parse(auth_id) {
        assert_eq!(parsed.as_str(), auth_id, "one spelling per auth_id");
        assert_eq!(auth_id.len(), 43);
    }
    for now in [Timestamp::from_unix(i64::MIN), Timestamp::from_unix(1_700_000_000), Timestamp::from_unix(i64::MAX)] {
        assert_eq!(CODEC.open("main", auth_id, now), Err(JourneyError::Unknown), "{auth_id:?} was not refused");
    }
});
