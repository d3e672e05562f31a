//! `JourneyTickets::check` on arbitrary `auth_id` text.
//!
//! Checks: no panic, and nothing but a ticket we issued is accepted: a random `auth_id` is always
//! `Unknown` (`Expired` would mean the tag was accepted first).
#![no_main]

use libfuzzer_sys::fuzz_target;
use sessiond_core::journey::{JourneyError, JourneyTickets};
use sessiond_core::time::Timestamp;
use std::sync::LazyLock;

static TICKETS: LazyLock<JourneyTickets> =
    LazyLock::new(|| JourneyTickets::new(b"a fuzzing secret of at least thirty-two bytes"));

fuzz_target!(|auth_id: &str| {
    for now in [Timestamp::from_unix(i64::MIN), Timestamp::from_unix(1_700_000_000), Timestamp::from_unix(i64::MAX)] {
        assert_eq!(
            TICKETS.check("main", auth_id, now),
            Err(JourneyError::Unknown),
            "{auth_id:?} was not refused as unknown"
        );
    }
});
