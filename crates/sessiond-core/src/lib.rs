//! The model and the rules of sessiond, with no I/O.
//!
//! This crate decides; it never touches the network, the disk or the clock. Every function that
//! depends on time takes `now` as an argument, so the rules are tested with explicit instants and
//! never sleep. The store (`sessiond-store`) persists what this crate decides and the server
//! (`sessiond-server`) speaks HTTP around it.
//!
//! Where to start reading:
//! - [`token`]: session tokens (secret, in the cookie) and their SHA-256 (the only form at rest),
//!   and public session ids.
//! - [`api_token`]: API tokens (`sdat_…` bearer credentials for scripts) and their records.
//! - [`session`]: the session record.
//! - [`timeout`]: the timeout policy — absolute expiration, rolling inactivity, remember me.
//! - [`cookie`]: building `Set-Cookie` headers and validating cookie names and domains.
//! - [`redirect`]: deciding whether a post-login `rd` URL is safe to follow.
//! - [`duration`]: the duration notation used in configuration (`1h30m`, `1M`, `-1`).
//! - [`access`]: access rules for forward auth and request-path normalisation.
//! - [`regulation`]: brute-force regulation of logins.
//! - [`journey`]: login journeys and their `auth_id` tickets.
//! - [`jwt`]: session JWTs (EdDSA) and the signing keyring.
//! - [`client_session`]: client-side sessions, sealed whole into the cookie.
//! - [`totp`]: time-based one-time passwords (RFC 6238), the second factor at login.
//!
//! ```
//! use sessiond_core::timeout::{Timeouts, Verdict};
//! use sessiond_core::time::Timestamp;
//! use std::time::Duration;
//!
//! let timeouts = Timeouts::default(); // 1h expiration, 5m inactivity, 1M remember me
//! let login = Timestamp::from_unix(1_700_000_000);
//! let times = timeouts.at_login(login, false);
//! // Ten minutes without a request: the idle limit (5m) has passed.
//! let later = login + Duration::from_secs(600);
//! assert!(matches!(timeouts.verdict(&times, later), Verdict::Dead(_)));
//! ```

pub mod access;
pub mod api_token;
pub mod client_session;
pub mod cookie;
pub mod duration;
pub mod journey;
pub mod jwt;
pub mod keys;
pub mod provider;
pub mod realm;
pub mod redirect;
pub mod regulation;
pub mod session;
pub mod time;
pub mod timeout;
pub mod token;
pub mod totp;
