//! The duration notation of the configuration: `90s`, `5m`, `1h`, `1d`, `1w`, `1M` (30 days),
//! `1y` (365 days), combinations such as `1h30m`, and a bare integer meaning seconds.
//!
//! Units are case-sensitive (`m` is minutes, `M` is months), each unit may appear at most once in
//! a combination (in any order), and numbers are whole and non-negative. Surrounding whitespace is
//! ignored; whitespace inside is refused, so `1h 30m` is an error rather than a guess.
//!
//! ```
//! use sessiond_core::duration::{format_duration, parse_duration, parse_duration_or_disabled};
//! use std::time::Duration;
//!
//! assert_eq!(parse_duration("1h30m").unwrap(), Duration::from_secs(5400));
//! assert_eq!(parse_duration("90").unwrap(), Duration::from_secs(90));
//! assert_eq!(parse_duration_or_disabled("-1").unwrap(), None);
//! assert_eq!(format_duration(Duration::from_secs(5400)), "1h30m");
//! assert_eq!(
//!     parse_duration("5x").unwrap_err().to_string(),
//!     r#"invalid duration "5x": unknown unit "x""#
//! );
//! ```

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

const MINUTE: u64 = 60;
const HOUR: u64 = 60 * MINUTE;
const DAY: u64 = 24 * HOUR;
const WEEK: u64 = 7 * DAY;
const MONTH: u64 = 30 * DAY;
const YEAR: u64 = 365 * DAY;

/// The units, largest first: the order [`format_duration`] writes them in.
const UNITS: [(char, u64); 7] =
    [('y', YEAR), ('M', MONTH), ('w', WEEK), ('d', DAY), ('h', HOUR), ('m', MINUTE), ('s', 1)];

/// The position of `unit` in [`UNITS`] and its length in seconds.
fn unit_seconds(unit: &str) -> Option<(usize, u64)> {
    let mut chars = unit.chars();
    let (Some(c), None) = (chars.next(), chars.next()) else {
        return None;
    };
    UNITS.iter().enumerate().find(|(_, (u, _))| *u == c).map(|(i, (_, secs))| (i, *secs))
}

/// Parses a duration in the notation above.
///
/// # Errors
/// [`DurationError`] quoting the input when it is empty, negative, fractional, has an unknown
/// or repeated unit, a unit without a number, a number without a unit inside a combination,
/// whitespace inside, or does not fit in a `u64` number of seconds.
pub fn parse_duration(text: &str) -> Result<Duration, DurationError> {
    parse_seconds(text.trim())
        .map(Duration::from_secs)
        .map_err(|reason| DurationError { input: text.to_owned(), reason })
}

fn parse_seconds(text: &str) -> Result<u64, String> {
    if text.is_empty() {
        return Err("it is empty".into());
    }
    if text.starts_with('-') {
        return Err("negative durations are not allowed".into());
    }
    if text.chars().any(char::is_whitespace) {
        return Err("whitespace is not allowed inside a duration".into());
    }

    let mut rest = text;
    let mut total: u64 = 0;
    let mut seen = [false; UNITS.len()];
    while !rest.is_empty() {
        let digits_len = rest.find(|c: char| !c.is_ascii_digit()).unwrap_or(rest.len());
        let (digits, after) = rest.split_at(digits_len);
        if digits.is_empty() {
            let unit_len = after.find(|c: char| !c.is_alphabetic()).unwrap_or(after.len());
            return Err(match after.get(..unit_len).filter(|u| !u.is_empty()) {
                Some(unit) => format!("missing number before unit {unit:?}"),
                None => {
                    let c = after.chars().next().unwrap_or_default();
                    format!("unexpected character {c:?}")
                }
            });
        }
        if after.starts_with(['.', ',']) {
            return Err("fractional numbers are not allowed; use a smaller unit".into());
        }
        let unit_len = after.find(|c: char| !c.is_alphabetic()).unwrap_or(after.len());
        let (unit, next) = after.split_at(unit_len);
        let number: u64 = digits.parse().map_err(|_| "number is too large".to_owned())?;

        let secs = if unit.is_empty() {
            if digits.len() != text.len() {
                return Err(format!("missing unit after {digits:?}"));
            }
            1
        } else {
            let (index, secs) = unit_seconds(unit).ok_or_else(|| format!("unknown unit {unit:?}"))?;
            if seen[index] {
                return Err(format!("unit {unit:?} appears more than once"));
            }
            seen[index] = true;
            secs
        };
        total = number
            .checked_mul(secs)
            .and_then(|part| total.checked_add(part))
            .ok_or_else(|| "duration is too large".to_owned())?;
        rest = next;
    }
    Ok(total)
}

/// Like [`parse_duration`], and `-1` means "disabled" (`None`).
///
/// # Errors
/// [`DurationError`] quoting the input; any negative value other than `-1` is refused.
pub fn parse_duration_or_disabled(text: &str) -> Result<Option<Duration>, DurationError> {
    if text.trim() == "-1" { Ok(None) } else { parse_duration(text).map(Some) }
}

/// The canonical text of a duration, largest units first (`1h30m`, `1y2d`, `0s`).
///
/// Only whole seconds are written: the notation has no smaller unit, and every duration the
/// configuration produces is whole seconds. [`parse_duration`] reads the text back to the same
/// duration.
pub fn format_duration(d: Duration) -> String {
    let mut left = d.as_secs();
    if left == 0 {
        return "0s".to_owned();
    }
    let mut out = String::new();
    for (unit, secs) in UNITS {
        let count = left / secs;
        if count > 0 {
            out.push_str(&count.to_string());
            out.push(unit);
            left %= secs;
        }
    }
    out
}

/// Serde support for a [`Duration`] written in this notation, for
/// `#[serde(with = "sessiond_core::duration::serde_text")]`.
///
/// Reads a string (`"1h30m"`) or a non-negative integer (seconds, as YAML writes `300`); writes
/// the canonical text.
pub mod serde_text {
    use super::{format_duration, parse_duration};
    use serde::de::{self, Visitor};
    use serde::{Deserializer, Serializer};
    use std::fmt;
    use std::time::Duration;

    /// Writes the canonical text of `d`.
    ///
    /// # Errors
    /// Whatever the serializer reports.
    pub fn serialize<S: Serializer>(d: &Duration, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&format_duration(*d))
    }

    /// Reads a duration from text or from a whole number of seconds.
    ///
    /// # Errors
    /// The [`DurationError`](super::DurationError) text when the value is not a duration.
    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Duration, D::Error> {
        deserializer.deserialize_any(DurationVisitor)
    }

    struct DurationVisitor;

    impl Visitor<'_> for DurationVisitor {
        type Value = Duration;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a duration such as \"90s\", \"5m\", \"1h30m\" or a number of seconds")
        }

        fn visit_str<E: de::Error>(self, v: &str) -> Result<Duration, E> {
            parse_duration(v).map_err(E::custom)
        }

        fn visit_u64<E: de::Error>(self, v: u64) -> Result<Duration, E> {
            Ok(Duration::from_secs(v))
        }

        fn visit_i64<E: de::Error>(self, v: i64) -> Result<Duration, E> {
            u64::try_from(v)
                .map(Duration::from_secs)
                .map_err(|_| E::custom(format!("invalid duration \"{v}\": negative durations are not allowed")))
        }
    }
}

/// Serde support for an `Option<Duration>` where `-1` (text or number) means disabled (`None`),
/// for `#[serde(with = "sessiond_core::duration::serde_text_or_disabled")]`.
pub mod serde_text_or_disabled {
    use super::{format_duration, parse_duration_or_disabled};
    use serde::de::{self, Visitor};
    use serde::{Deserializer, Serializer};
    use std::fmt;
    use std::time::Duration;

    /// Writes the canonical text, or `"-1"` for `None`.
    ///
    /// # Errors
    /// Whatever the serializer reports.
    pub fn serialize<S: Serializer>(d: &Option<Duration>, serializer: S) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => serializer.serialize_str(&format_duration(*d)),
            None => serializer.serialize_str("-1"),
        }
    }

    /// Reads a duration from text or a whole number of seconds; `-1` is `None`.
    ///
    /// # Errors
    /// The [`DurationError`](super::DurationError) text when the value is not a duration.
    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<Duration>, D::Error> {
        deserializer.deserialize_any(DisabledVisitor)
    }

    struct DisabledVisitor;

    impl Visitor<'_> for DisabledVisitor {
        type Value = Option<Duration>;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a duration such as \"5m\" or \"1M\", a number of seconds, or -1 to disable")
        }

        fn visit_str<E: de::Error>(self, v: &str) -> Result<Option<Duration>, E> {
            parse_duration_or_disabled(v).map_err(E::custom)
        }

        fn visit_u64<E: de::Error>(self, v: u64) -> Result<Option<Duration>, E> {
            Ok(Some(Duration::from_secs(v)))
        }

        fn visit_i64<E: de::Error>(self, v: i64) -> Result<Option<Duration>, E> {
            match v {
                -1 => Ok(None),
                _ => u64::try_from(v).map(|s| Some(Duration::from_secs(s))).map_err(|_| {
                    E::custom(format!("invalid duration \"{v}\": negative durations other than -1 are not allowed"))
                }),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn secs(n: u64) -> Duration {
        Duration::from_secs(n)
    }

    fn reason(text: &str) -> String {
        let err = parse_duration(text).unwrap_err();
        assert_eq!(err.input, text, "the error quotes the input as given");
        err.reason
    }

    #[test]
    fn each_unit_has_its_length() {
        assert_eq!(parse_duration("90s").unwrap(), secs(90));
        assert_eq!(parse_duration("5m").unwrap(), secs(300));
        assert_eq!(parse_duration("1h").unwrap(), secs(3600));
        assert_eq!(parse_duration("1d").unwrap(), secs(86_400));
        assert_eq!(parse_duration("1w").unwrap(), secs(7 * 86_400));
        assert_eq!(parse_duration("1M").unwrap(), secs(30 * 86_400));
        assert_eq!(parse_duration("1y").unwrap(), secs(365 * 86_400));
    }

    #[test]
    fn bare_integer_is_seconds() {
        assert_eq!(parse_duration("0").unwrap(), secs(0));
        assert_eq!(parse_duration("300").unwrap(), secs(300));
        assert_eq!(parse_duration("007").unwrap(), secs(7));
    }

    #[test]
    fn combinations_add_up_in_any_order() {
        assert_eq!(parse_duration("1h30m").unwrap(), secs(5400));
        assert_eq!(parse_duration("30m1h").unwrap(), secs(5400));
        assert_eq!(parse_duration("1y2d").unwrap(), secs(367 * 86_400));
        assert_eq!(parse_duration("1M1m1s").unwrap(), secs(30 * 86_400 + 61));
        assert_eq!(parse_duration("0h0m").unwrap(), secs(0));
    }

    #[test]
    fn surrounding_whitespace_is_ignored() {
        assert_eq!(parse_duration("  5m\t\n").unwrap(), secs(300));
        assert_eq!(parse_duration(" 42 ").unwrap(), secs(42));
    }

    #[test]
    fn error_display_quotes_input_and_reason() {
        assert_eq!(parse_duration("5x").unwrap_err().to_string(), r#"invalid duration "5x": unknown unit "x""#);
    }

    #[test]
    fn empty_and_blank_are_refused() {
        assert_eq!(reason(""), "it is empty");
        assert_eq!(reason("   "), "it is empty");
    }

    #[test]
    fn negative_values_are_refused() {
        assert_eq!(reason("-5m"), "negative durations are not allowed");
        assert_eq!(reason("-1"), "negative durations are not allowed");
        assert_eq!(reason("-0"), "negative durations are not allowed");
    }

    #[test]
    fn unknown_units_are_refused() {
        assert_eq!(reason("5x"), r#"unknown unit "x""#);
        assert_eq!(reason("5H"), r#"unknown unit "H""#, "units are case-sensitive");
        assert_eq!(reason("5ms"), r#"unknown unit "ms""#);
        assert_eq!(reason("5min"), r#"unknown unit "min""#);
        assert_eq!(reason("1h5é"), r#"unknown unit "é""#);
    }

    #[test]
    fn unit_without_number_is_refused() {
        assert_eq!(reason("h"), r#"missing number before unit "h""#);
        assert_eq!(reason("1hm"), r#"unknown unit "hm""#);
        assert_eq!(reason("+5m"), "unexpected character '+'");
    }

    #[test]
    fn number_without_unit_inside_a_combination_is_refused() {
        assert_eq!(reason("1h30"), r#"missing unit after "30""#);
        assert_eq!(reason("30s5"), r#"missing unit after "5""#);
    }

    #[test]
    fn repeated_units_are_refused() {
        assert_eq!(reason("1h1h"), r#"unit "h" appears more than once"#);
        assert_eq!(reason("1m30s2m"), r#"unit "m" appears more than once"#);
    }

    #[test]
    fn fractional_numbers_are_refused() {
        assert_eq!(reason("1.5h"), "fractional numbers are not allowed; use a smaller unit");
        assert_eq!(reason("1,5h"), "fractional numbers are not allowed; use a smaller unit");
        assert_eq!(reason("0.5"), "fractional numbers are not allowed; use a smaller unit");
    }

    #[test]
    fn inner_whitespace_is_refused() {
        assert_eq!(reason("1h 30m"), "whitespace is not allowed inside a duration");
        assert_eq!(reason("5 m"), "whitespace is not allowed inside a duration");
    }

    #[test]
    fn overflow_is_refused() {
        assert_eq!(reason("18446744073709551616"), "number is too large");
        assert_eq!(reason("18446744073709551615y"), "duration is too large");
        // Each part fits but the sum does not.
        assert_eq!(reason("18446744073709551615s1m"), "duration is too large");
        assert_eq!(parse_duration("18446744073709551615").unwrap(), secs(u64::MAX));
    }

    #[test]
    fn minus_one_means_disabled_only_in_the_disabled_variant() {
        assert_eq!(parse_duration_or_disabled("-1").unwrap(), None);
        assert_eq!(parse_duration_or_disabled(" -1 ").unwrap(), None);
        assert_eq!(parse_duration_or_disabled("1M").unwrap(), Some(secs(30 * 86_400)));
        assert_eq!(parse_duration_or_disabled("0").unwrap(), Some(secs(0)));
        for other in ["-2", "-1s", "-01", "-1m"] {
            let err = parse_duration_or_disabled(other).unwrap_err();
            assert_eq!(err.input, other);
            assert_eq!(err.reason, "negative durations are not allowed");
        }
    }

    #[test]
    fn format_is_canonical() {
        assert_eq!(format_duration(secs(0)), "0s");
        assert_eq!(format_duration(secs(5400)), "1h30m");
        assert_eq!(format_duration(secs(30 * 86_400)), "1M");
        assert_eq!(format_duration(secs(367 * 86_400)), "1y2d");
        assert_eq!(format_duration(secs(7 * 86_400)), "1w");
        assert_eq!(format_duration(secs(37 * 86_400 + 1)), "1M1w1s");
        assert_eq!(format_duration(secs(90)), "1m30s");
    }

    #[test]
    fn format_drops_fractions_of_a_second() {
        assert_eq!(format_duration(Duration::from_millis(1999)), "1s");
        assert_eq!(format_duration(Duration::from_millis(999)), "0s");
    }

    #[test]
    fn serde_reads_text_and_numbers() {
        #[derive(serde::Deserialize, serde::Serialize, Debug, PartialEq)]
        struct Cfg {
            #[serde(with = "serde_text")]
            expiration: Duration,
            #[serde(with = "serde_text_or_disabled")]
            remember_me: Option<Duration>,
        }
        let cfg: Cfg = serde_json::from_str(r#"{"expiration": "1h30m", "remember_me": -1}"#).unwrap();
        assert_eq!(cfg, Cfg { expiration: secs(5400), remember_me: None });
        let cfg: Cfg = serde_json::from_str(r#"{"expiration": 300, "remember_me": "1M"}"#).unwrap();
        assert_eq!(cfg, Cfg { expiration: secs(300), remember_me: Some(secs(30 * 86_400)) });
        let cfg: Cfg = serde_json::from_str(r#"{"expiration": "0", "remember_me": "-1"}"#).unwrap();
        assert_eq!(cfg, Cfg { expiration: secs(0), remember_me: None });

        assert_eq!(
            serde_json::to_string(&Cfg { expiration: secs(5400), remember_me: None }).unwrap(),
            r#"{"expiration":"1h30m","remember_me":"-1"}"#
        );

        let err = serde_json::from_str::<Cfg>(r#"{"expiration": "5x", "remember_me": -1}"#).unwrap_err().to_string();
        assert!(err.contains(r#"invalid duration "5x": unknown unit "x""#), "{err}");
        let err = serde_json::from_str::<Cfg>(r#"{"expiration": -5, "remember_me": -1}"#).unwrap_err().to_string();
        assert!(err.contains("negative durations are not allowed"), "{err}");
        let err = serde_json::from_str::<Cfg>(r#"{"expiration": 5, "remember_me": -2}"#).unwrap_err().to_string();
        assert!(err.contains("other than -1"), "{err}");
        assert!(serde_json::from_str::<Cfg>(r#"{"expiration": 1.5, "remember_me": -1}"#).is_err());
    }

    proptest! {
        #[test]
        fn parse_reads_back_what_format_writes(n in any::<u64>()) {
            let d = secs(n);
            prop_assert_eq!(parse_duration(&format_duration(d)).unwrap(), d);
        }

        #[test]
        fn format_uses_each_unit_at_most_once_largest_first(n in any::<u64>()) {
            let text = format_duration(secs(n));
            let units: Vec<char> = text.chars().filter(|c| c.is_alphabetic()).collect();
            let order: Vec<usize> = units
                .iter()
                .map(|u| UNITS.iter().position(|(x, _)| x == u).unwrap())
                .collect();
            prop_assert!(order.windows(2).all(|w| w[0] < w[1]), "{}", text);
        }

        #[test]
        fn combinations_sum_their_parts(
            parts in proptest::sample::subsequence(UNITS.to_vec(), 1..=UNITS.len())
                .prop_shuffle(),
            numbers in proptest::collection::vec(0u64..10_000, UNITS.len()),
        ) {
            let mut text = String::new();
            let mut expected = 0u64;
            for ((unit, secs_per), n) in parts.iter().zip(&numbers) {
                text.push_str(&format!("{n}{unit}"));
                expected += n * secs_per;
            }
            prop_assert_eq!(parse_duration(&text).unwrap(), secs(expected));
        }

        #[test]
        fn arbitrary_text_never_panics(text in "\\PC{0,20}") {
            let _ = parse_duration(&text);
            let _ = parse_duration_or_disabled(&text);
        }
    }
}
