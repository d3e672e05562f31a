//! The session API over real HTTP, with a manual clock.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs, unreachable_pub)]

mod api;
mod authz;
mod bad_input;
mod client_sessions;
mod cookie_modes;
mod journeys;
mod jwt;
mod ldap;
mod metrics;
mod oidc;
mod portal;
mod providers;
mod realms;
#[cfg(feature = "saml")]
mod saml;
mod support;
mod timeouts;
mod tokens;
