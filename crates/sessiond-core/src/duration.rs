//! The duration notation of the configuration: `90s`, `5m`, `1h`, `1d`, `1w`, `1M` (30 days),
//! `1y` (365 days), combinations such as `1h30m`, and a bare integer meaning seconds.
//!
//! STUB: to be implemented (see the crate's issue notes).

use std::time::Duration;

/// A duration that could not be parsed; carries the offending input.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid duration {input:?}: {reason}")]
pub struct DurationError {
    /// The text as given.
    pub input: String,
    /// What is wrong with it.
    pub reason: String,
}

/// Parses a duration in the notation above.
///
/// # Errors
/// [`DurationError`] quoting the input.
pub fn parse_duration(text: &str) -> Result<Duration, DurationError> {
    text.trim()
        .parse::<u64>()
        .map(Duration::from_secs)
        .map_err(|_| DurationError { input: text.to_owned(), reason: "stub".into() })
}

/// Like [`parse_duration`], and `-1` means "disabled" (`None`).
///
/// # Errors
/// [`DurationError`] quoting the input.
pub fn parse_duration_or_disabled(text: &str) -> Result<Option<Duration>, DurationError> {
    if text.trim() == "-1" { Ok(None) } else { parse_duration(text).map(Some) }
}

/// The canonical text of a duration, largest units first (`1h30m`, `0s`).
pub fn format_duration(d: Duration) -> String {
    format!("{}s", d.as_secs())
}
