//! End-to-end tests: the real `sessiond` binary, started in a temporary directory per test, spoken
//! to over HTTP, its control socket and its command line.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs, unreachable_pub)]

mod api;
mod audit;
mod cli;
mod client_sessions;
mod cluster;
mod config;
mod crash;
mod e2e;
mod keys;
mod metrics;
mod providers;
mod reload;
mod support;
mod tokens;
mod totp;
mod zero_config;
