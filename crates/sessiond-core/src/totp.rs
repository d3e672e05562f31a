//! Time-based one-time passwords (RFC 6238), the second factor at login.
//!
//! A user enrolls by scanning [`qr_svg`] of [`otpauth_url`] (or typing [`TotpSecret::to_base32`])
//! into an authenticator app; at login they type the six digits the app shows, and [`verify`]
//! checks them against the secret and the time the caller passes in.
//!
//! The choices, and why:
//! - **HMAC-SHA1, 6 digits, 30-second steps.** RFC 6238 allows more, but these are the only
//!   parameters every authenticator app honours (several ignore `algorithm`, `digits` and
//!   `period` in the URI and silently show wrong codes). SHA-1's collision weakness does not
//!   touch HMAC; the security of a code rests on the secret and on the caller's rate limit.
//! - **Secrets are 20 random bytes** (160 bits, the size RFC 4226 recommends) from the operating
//!   system's CSPRNG. Secrets from elsewhere are accepted from 16 to 64 bytes: below 128 bits is
//!   too weak, and 64 bytes is SHA-1's block size, the most HMAC uses without hashing the key.
//! - **Skew of one step either way.** A code is accepted for the current step and the steps just
//!   before and after it, so a phone clock off by up to 30 seconds, or a user who types a code as
//!   it rolls over, still logs in. Each attempt thus has three chances in a million; regulation
//!   ([`crate::regulation`]) keeps the number of attempts small.
//! - **A code is accepted once.** [`verify`] returns the step (counter) that matched, and the
//!   caller stores it as the user's `last_used`. A later code whose step is not after `last_used`
//!   is [`TotpError::Replayed`]: the same code again, and also an older code after a newer one.
//!   The caller must store the new counter with a compare-and-set against the one it passed in,
//!   or two concurrent logins with one code can both pass.
//! - **Constant time.** All three steps are computed and compared without an early exit, and the
//!   comparison is constant time ([`subtle`]), so timing does not reveal which step was close.
//!
//! The secret is a long-lived credential and the server must be able to read it back, so it
//! cannot be hashed like a password: **the caller stores it encrypted** (for instance with a
//! [`crate::keys::Sealer`]). [`TotpSecret`]'s `Debug` never shows it and its bytes are wiped on
//! drop; the base32 text, the `otpauth://` URL and the QR code all contain it and are shown only
//! on the enrollment page.
//!
//! ```
//! use sessiond_core::time::Timestamp;
//! use sessiond_core::totp::{self, TotpError, TotpSecret};
//!
//! let secret = TotpSecret::generate();
//! let now = Timestamp::from_unix(1_700_000_000);
//! let code = totp::code_at(&secret, totp::counter_at(now)); // what the app shows
//! let used = totp::verify(&secret, &code, now, None).unwrap();
//! assert_eq!(totp::verify(&secret, &code, now, Some(used)), Err(TotpError::Replayed));
//! ```

use crate::time::Timestamp;
use hmac::{Hmac, Mac as _};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use qrcode::render::svg;
use qrcode::{EcLevel, QrCode};
use rand::RngCore as _;
use rand::rngs::OsRng;
use sha1::Sha1;
use std::fmt;
use subtle::{Choice, ConditionallySelectable as _, ConstantTimeEq as _};
use zeroize::Zeroizing;

/// Length of a step: a code changes every 30 seconds.
pub const STEP_SECS: u64 = 30;
/// Digits in a code.
pub const DIGITS: usize = 6;
/// Steps accepted either side of the current one.
pub const SKEW_STEPS: u64 = 1;
/// Bytes in a generated secret (160 bits).
pub const SECRET_BYTES: usize = 20;
/// Fewest bytes accepted in a secret (128 bits).
pub const MIN_SECRET_BYTES: usize = 16;
/// Most bytes accepted in a secret: SHA-1's block size.
pub const MAX_SECRET_BYTES: usize = 64;
/// Least width and height of [`qr_svg`]'s image, in pixels, so that phones scan it easily.
pub const QR_MIN_PIXELS: u32 = 200;

/// 10^[`DIGITS`].
const MODULUS: u32 = 1_000_000;
/// RFC 4648 base32.
const BASE32_ALPHABET: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
/// Everything but RFC 3986's unreserved characters is percent-encoded in the `otpauth://` URL.
const URI_COMPONENT: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'.').remove(b'_').remove(b'~');

type HmacSha1 = Hmac<Sha1>;

/// Why a TOTP secret, code or QR code was refused. Never carries a secret or a code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TotpError {
    /// A secret of a length we do not accept.
    #[error("a TOTP secret must be {MIN_SECRET_BYTES} to {MAX_SECRET_BYTES} bytes, got {got}")]
    SecretLength {
        /// The length presented, in bytes.
        got: usize,
    },
    /// A secret that is not base32.
    #[error("TOTP secret is not base32")]
    Base32,
    /// A code that is not exactly six ASCII digits.
    #[error("a TOTP code is exactly {DIGITS} digits")]
    Malformed,
    /// A well-formed code that matches none of the accepted steps.
    #[error("TOTP code does not match")]
    Invalid,
    /// A code that matches, but only steps at or before the last one used.
    #[error("TOTP code was already used")]
    Replayed,
    /// Text that does not fit in a QR code.
    #[error("{len} bytes do not fit in a QR code")]
    Qr {
        /// Length of the text, in bytes (the text itself holds the secret).
        len: usize,
        /// What the encoder said.
        #[source]
        source: qrcode::types::QrError,
    },
}

/// The shared secret of a user's authenticator. Its `Debug` never shows it; its bytes are wiped
/// when it is dropped.
#[derive(Clone)]
pub struct TotpSecret(Zeroizing<Vec<u8>>);

impl TotpSecret {
    /// A fresh secret of [`SECRET_BYTES`] bytes from the operating system's CSPRNG.
    pub fn generate() -> Self {
        let mut bytes = Zeroizing::new(vec![0u8; SECRET_BYTES]);
        OsRng.fill_bytes(&mut bytes);
        Self(bytes)
    }

    /// A secret from its bytes, as stored (decrypted) by the caller.
    ///
    /// # Errors
    /// [`TotpError::SecretLength`] unless it has 16 to 64 bytes.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, TotpError> {
        if !(MIN_SECRET_BYTES..=MAX_SECRET_BYTES).contains(&bytes.len()) {
            return Err(TotpError::SecretLength { got: bytes.len() });
        }
        Ok(Self(Zeroizing::new(bytes.to_vec())))
    }

    /// A secret from base32 as people type it: any case, spaces anywhere, `=` padding optional.
    ///
    /// # Errors
    /// [`TotpError::Base32`] for anything but RFC 4648 base32 (including unused bits that are not
    /// zero), [`TotpError::SecretLength`] when it decodes to fewer than 16 or more than 64 bytes.
    pub fn from_base32(text: &str) -> Result<Self, TotpError> {
        Self::from_bytes(&base32_decode(text)?)
    }

    /// The secret's bytes, for the caller to encrypt and store.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// The secret in RFC 4648 base32, uppercase and unpadded, the form authenticator apps take.
    pub fn to_base32(&self) -> String {
        base32_encode(&self.0)
    }
}

impl fmt::Debug for TotpSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TotpSecret([redacted])")
    }
}

/// The `otpauth://` key URI (Google Authenticator's Key URI format) that enrolls `secret` in an
/// app, labelled `issuer:account`. Both parts are percent-encoded, so a colon or a space in them
/// cannot change the label's shape. The URL contains the secret: show it only to its owner.
pub fn otpauth_url(issuer: &str, account: &str, secret: &TotpSecret) -> String {
    let issuer = utf8_percent_encode(issuer, URI_COMPONENT);
    let account = utf8_percent_encode(account, URI_COMPONENT);
    format!(
        "otpauth://totp/{issuer}:{account}?secret={}&issuer={issuer}&algorithm=SHA1&digits={DIGITS}&period={STEP_SECS}",
        secret.to_base32()
    )
}

/// The step that `now` falls in: whole 30-second periods since the epoch; instants before the
/// epoch count as step 0.
pub fn counter_at(now: Timestamp) -> u64 {
    u64::try_from(now.unix()).unwrap_or(0) / STEP_SECS
}

/// The six-digit code (zero-padded) for step `counter`: RFC 4226 HOTP with dynamic truncation.
pub fn code_at(secret: &TotpSecret, counter: u64) -> String {
    let mac = hmac_sha1(secret, counter);
    let offset = usize::from(mac[19] & 0x0f);
    let binary = u32::from_be_bytes([mac[offset] & 0x7f, mac[offset + 1], mac[offset + 2], mac[offset + 3]]);
    format!("{:0width$}", binary % MODULUS, width = DIGITS)
}

/// Checks a code typed by the user at `now`, given the step of the last code they used.
///
/// The code may be for the current step or one step either side. Returns the step that matched,
/// which the caller stores as the new `last_used`; when the code matches several steps (two
/// steps' codes can collide), the latest one, so the same code is never accepted twice.
///
/// # Errors
/// - [`TotpError::Malformed`]: not exactly six ASCII digits.
/// - [`TotpError::Replayed`]: it matches only steps at or before `last_used`.
/// - [`TotpError::Invalid`]: it matches no accepted step.
///
/// Tell the user the same thing for `Replayed` and `Invalid`; the difference is for the log.
pub fn verify(secret: &TotpSecret, code: &str, now: Timestamp, last_used: Option<u64>) -> Result<u64, TotpError> {
    // The format is public knowledge, so refusing early here leaks nothing.
    if code.len() != DIGITS || !code.bytes().all(|b| b.is_ascii_digit()) {
        return Err(TotpError::Malformed);
    }
    let current = counter_at(now);
    let mut matched = Choice::from(0);
    let mut fresh = Choice::from(0);
    let mut step = 0u64;
    // Oldest first, so the latest fresh match wins the select below. At step 0 the window
    // repeats step 0, which changes nothing.
    for counter in [current.saturating_sub(SKEW_STEPS), current, current.saturating_add(SKEW_STEPS)] {
        let equal = code_at(secret, counter).as_bytes().ct_eq(code.as_bytes());
        let unused = Choice::from(u8::from(last_used.is_none_or(|last| counter > last)));
        matched |= equal;
        fresh |= equal & unused;
        step = u64::conditional_select(&step, &counter, equal & unused);
    }
    if bool::from(fresh) {
        Ok(step)
    } else if bool::from(matched) {
        Err(TotpError::Replayed)
    } else {
        Err(TotpError::Invalid)
    }
}

/// An inline SVG QR code of `text` (the [`otpauth_url`]) for the enrollment page.
///
/// Self-contained: no XML prolog (so it can sit in HTML), no scripts, no links, no external
/// references; black modules on white, with the standard four-module quiet zone, a `viewBox`,
/// and at least [`QR_MIN_PIXELS`] pixels a side. The image encodes the secret: serve it only to
/// its owner, with `Cache-Control: no-store`.
///
/// # Errors
/// [`TotpError::Qr`] when the text is too long for a QR code (about 2,300 bytes).
pub fn qr_svg(text: &str) -> Result<String, TotpError> {
    let code = QrCode::with_error_correction_level(text, EcLevel::M)
        .map_err(|source| TotpError::Qr { len: text.len(), source })?;
    let image = code
        .render::<svg::Color<'_>>()
        .quiet_zone(true)
        .min_dimensions(QR_MIN_PIXELS, QR_MIN_PIXELS)
        .dark_color(svg::Color("#000000"))
        .light_color(svg::Color("#ffffff"))
        .build();
    // The renderer starts with `<?xml …?>`, which HTML does not want inline.
    Ok(match image.find("<svg") {
        Some(start) => image[start..].to_owned(),
        None => image,
    })
}

/// HMAC-SHA1 of the big-endian counter under the secret.
fn hmac_sha1(secret: &TotpSecret, counter: u64) -> [u8; 20] {
    // HMAC pads a key up to the hash's block size with zeros; secrets are at most one block
    // (64 bytes), so padding them ourselves gives the same MAC through the constructor that
    // cannot fail.
    let mut block = Zeroizing::new([0u8; MAX_SECRET_BYTES]);
    let key = secret.as_bytes();
    block[..key.len()].copy_from_slice(key);
    let mut mac = HmacSha1::new(hmac::digest::Key::<HmacSha1>::from_slice(block.as_slice()));
    mac.update(&counter.to_be_bytes());
    mac.finalize().into_bytes().into()
}

/// RFC 4648 base32, uppercase, without padding.
fn base32_encode(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len().div_ceil(5) * 8);
    let (mut buffer, mut bits) = (0u32, 0u32);
    for &byte in bytes {
        buffer = (buffer << 8) | u32::from(byte);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            out.push(char::from(BASE32_ALPHABET[((buffer >> bits) & 0x1f) as usize]));
        }
        buffer &= (1 << bits) - 1;
    }
    if bits > 0 {
        out.push(char::from(BASE32_ALPHABET[((buffer << (5 - bits)) & 0x1f) as usize]));
    }
    out
}

/// RFC 4648 base32 in any case, ignoring ASCII whitespace, with optional trailing `=`.
fn base32_decode(text: &str) -> Result<Zeroizing<Vec<u8>>, TotpError> {
    let mut out = Zeroizing::new(Vec::with_capacity(text.len() * 5 / 8));
    let (mut buffer, mut bits) = (0u32, 0u32);
    let mut padded = false;
    for c in text.bytes() {
        let value = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a',
            b'2'..=b'7' => c - b'2' + 26,
            b'=' => {
                padded = true;
                continue;
            }
            c if c.is_ascii_whitespace() => continue,
            _ => return Err(TotpError::Base32),
        };
        if padded {
            return Err(TotpError::Base32); // data after padding
        }
        buffer = (buffer << 5) | u32::from(value);
        bits += 5;
        if bits >= 8 {
            bits -= 8;
            out.push(((buffer >> bits) & 0xff) as u8);
            buffer &= (1 << bits) - 1;
        }
    }
    // Five or more bits left over is a whole symbol too many; fewer must be zero, so each value
    // has one spelling (and a typo in the last symbol is more likely caught).
    if bits >= 5 || buffer != 0 {
        return Err(TotpError::Base32);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// RFC 6238 appendix B and RFC 4226 appendix D: the ASCII secret "12345678901234567890".
    fn rfc_secret() -> TotpSecret {
        TotpSecret::from_bytes(b"12345678901234567890").unwrap()
    }

    fn at(unix: i64) -> Timestamp {
        Timestamp::from_unix(unix)
    }

    #[test]
    fn rfc6238_sha1_vectors() {
        // The RFC's 8-digit codes; ours are their last six digits.
        let vectors = [
            (59, "94287082"),
            (1_111_111_109, "07081804"),
            (1_111_111_111, "14050471"),
            (1_234_567_890, "89005924"),
            (2_000_000_000, "69279037"),
            (20_000_000_000, "65353130"),
        ];
        let secret = rfc_secret();
        for (time, eight) in vectors {
            let code = code_at(&secret, counter_at(at(time)));
            assert_eq!(code, eight[2..], "time {time}");
            assert_eq!(verify(&secret, &code, at(time), None), Ok(counter_at(at(time))), "time {time}");
        }
        assert_eq!(counter_at(at(59)), 1);
        assert_eq!(counter_at(at(20_000_000_000)), 0x27BC_86AA);
    }

    #[test]
    fn rfc4226_hotp_vectors() {
        let expected =
            ["755224", "287082", "359152", "969429", "338314", "254676", "287922", "162583", "399871", "520489"];
        let secret = rfc_secret();
        for (counter, code) in expected.iter().enumerate() {
            assert_eq!(code_at(&secret, counter as u64), *code, "counter {counter}");
        }
    }

    #[test]
    fn times_before_the_epoch_are_step_zero() {
        assert_eq!(counter_at(at(-1)), 0);
        assert_eq!(counter_at(at(i64::MIN)), 0);
        assert_eq!(counter_at(at(29)), 0);
        assert_eq!(counter_at(at(30)), 1);
        let secret = rfc_secret();
        assert_eq!(verify(&secret, "755224", at(-100), None), Ok(0));
        assert_eq!(verify(&secret, "287082", at(0), None), Ok(1), "the next step at step 0");
    }

    #[test]
    fn one_step_of_skew_either_way_is_accepted_and_two_are_not() {
        let secret = rfc_secret();
        let now = at(1_700_000_015);
        let current = counter_at(now);
        assert_eq!(verify(&secret, &code_at(&secret, current - 1), now, None), Ok(current - 1));
        assert_eq!(verify(&secret, &code_at(&secret, current), now, None), Ok(current));
        assert_eq!(verify(&secret, &code_at(&secret, current + 1), now, None), Ok(current + 1));
        assert_eq!(verify(&secret, &code_at(&secret, current - 2), now, None), Err(TotpError::Invalid));
        assert_eq!(verify(&secret, &code_at(&secret, current + 2), now, None), Err(TotpError::Invalid));
        let other = TotpSecret::from_bytes(b"another secret of 20").unwrap();
        assert_eq!(verify(&other, &code_at(&secret, current), now, None), Err(TotpError::Invalid));
    }

    #[test]
    fn a_code_is_accepted_once_and_older_codes_after_a_newer_one_are_refused() {
        let secret = rfc_secret();
        let now = at(1_700_000_015);
        let current = counter_at(now);
        let code = code_at(&secret, current);
        let used = verify(&secret, &code, now, None).unwrap();
        assert_eq!(verify(&secret, &code, now, Some(used)), Err(TotpError::Replayed));
        assert_eq!(
            verify(&secret, &code, now + std::time::Duration::from_secs(30), Some(used)),
            Err(TotpError::Replayed)
        );
        // After the next step's code was used, the current and previous ones are refused.
        let newer = verify(&secret, &code_at(&secret, current + 1), now, Some(used)).unwrap();
        assert_eq!(newer, current + 1);
        assert_eq!(verify(&secret, &code, now, Some(newer)), Err(TotpError::Replayed));
        assert_eq!(verify(&secret, &code_at(&secret, current - 1), now, Some(newer)), Err(TotpError::Replayed));
        // A code for a step after the last one used is fine.
        assert_eq!(verify(&secret, &code, now, Some(current - 1)), Ok(current));
        // A wrong code stays Invalid, whatever was used before.
        assert_eq!(verify(&secret, &code_at(&secret, current + 5), now, Some(newer)), Err(TotpError::Invalid));
    }

    #[test]
    fn malformed_codes_are_refused() {
        let secret = rfc_secret();
        let now = at(59);
        for code in
            ["", "12345", "1234567", " 123456", "123456 ", "12345a", "-12345", "+12345", "１２３４５６", "٢٨٧٠٨٢"]
        {
            assert_eq!(verify(&secret, code, now, None), Err(TotpError::Malformed), "{code:?}");
        }
        assert_eq!(verify(&secret, "287082", now, None), Ok(1), "the well-formed code passes");
    }

    #[test]
    fn base32_matches_rfc4648_and_round_trips() {
        let vectors = [
            ("", ""),
            ("f", "MY"),
            ("fo", "MZXQ"),
            ("foo", "MZXW6"),
            ("foob", "MZXW6YQ"),
            ("fooba", "MZXW6YTB"),
            ("foobar", "MZXW6YTBOI"),
        ];
        for (plain, encoded) in vectors {
            assert_eq!(base32_encode(plain.as_bytes()), encoded);
            assert_eq!(*base32_decode(encoded).unwrap(), plain.as_bytes());
        }
        assert_eq!(*base32_decode("mzxw 6ytb oi======").unwrap(), b"foobar");
        assert_eq!(*base32_decode("MZXW6YTBOI\n").unwrap(), b"foobar");
        for bad in ["MZXW6YTBO1", "MZXW6YTBOI=A", "M", "MZX", "MZXW6Y", "MZ+W", "MZ", "MZXW6YTBOJ", "MZXÉ"] {
            assert_eq!(base32_decode(bad).map(|_| ()), Err(TotpError::Base32), "{bad:?}");
        }
        let secret = rfc_secret();
        assert_eq!(secret.to_base32(), "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ");
        let typed = TotpSecret::from_base32("gezd gnbv gy3t qojq gezd gnbv gy3t qojq").unwrap();
        assert_eq!(typed.as_bytes(), secret.as_bytes());
        let fresh = TotpSecret::generate();
        assert_eq!(fresh.as_bytes().len(), SECRET_BYTES);
        assert_eq!(TotpSecret::from_base32(&fresh.to_base32()).unwrap().as_bytes(), fresh.as_bytes());
        assert_ne!(TotpSecret::generate().as_bytes(), fresh.as_bytes());
    }

    #[test]
    fn secrets_outside_16_to_64_bytes_are_refused() {
        assert_eq!(TotpSecret::from_bytes(&[0; 15]).map(|_| ()), Err(TotpError::SecretLength { got: 15 }));
        assert_eq!(TotpSecret::from_bytes(&[0; 65]).map(|_| ()), Err(TotpError::SecretLength { got: 65 }));
        assert!(TotpSecret::from_bytes(&[0; 16]).is_ok());
        assert!(TotpSecret::from_bytes(&[0; 64]).is_ok());
        assert_eq!(TotpSecret::from_base32("MZXW6YTBOI").map(|_| ()), Err(TotpError::SecretLength { got: 6 }));
    }

    #[test]
    fn a_64_byte_secret_gives_the_same_codes_as_plain_hmac() {
        let key = [0xa5u8; MAX_SECRET_BYTES];
        let secret = TotpSecret::from_bytes(&key).unwrap();
        let mut mac = <HmacSha1 as hmac::digest::KeyInit>::new_from_slice(&key).unwrap();
        mac.update(&7u64.to_be_bytes());
        let expected: [u8; 20] = mac.finalize().into_bytes().into();
        assert_eq!(hmac_sha1(&secret, 7), expected);
    }

    #[test]
    fn otpauth_url_percent_encodes_the_label() {
        let url = otpauth_url("Example Co", "alice:ops team", &rfc_secret());
        assert_eq!(
            url,
            "otpauth://totp/Example%20Co:alice%3Aops%20team?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ\
             &issuer=Example%20Co&algorithm=SHA1&digits=6&period=30"
        );
        let url = otpauth_url("sessiond", "bob@example.com", &rfc_secret());
        assert!(url.starts_with("otpauth://totp/sessiond:bob%40example.com?secret="), "{url}");
    }

    #[test]
    fn debug_never_shows_the_secret() {
        let secret = rfc_secret();
        let shown = format!("{secret:?} {secret:#?}");
        assert!(!shown.contains("12345678901234567890"), "{shown}");
        assert!(!shown.contains(&secret.to_base32()), "{shown}");
        assert!(!shown.contains("49, 50"), "{shown}");
        assert_eq!(format!("{secret:?}"), "TotpSecret([redacted])");
    }

    #[test]
    fn qr_svg_is_a_self_contained_scannable_image() {
        let svg = qr_svg(&otpauth_url("Example Co", "alice:ops team", &TotpSecret::generate())).unwrap();
        assert!(svg.starts_with("<svg") || svg.starts_with("<?xml"), "{svg}");
        assert!(svg.ends_with("</svg>"), "{svg}");
        assert!(svg.contains("viewBox=\"0 0 "), "{svg}");
        assert!(svg.contains("fill=\"#000000\"") && svg.contains("fill=\"#ffffff\""), "{svg}");
        let lower = svg.to_ascii_lowercase();
        for banned in ["<script", "href", "<image", "<use", "<foreignobject", "url(", "javascript:", " on"] {
            // " on": an event handler attribute (`onload=…`) would run script too.
            assert!(!lower.contains(banned), "{banned} in {svg}");
        }
        let width: u32 = svg.split("width=\"").nth(1).unwrap().split('"').next().unwrap().parse().unwrap();
        let height: u32 = svg.split("height=\"").nth(1).unwrap().split('"').next().unwrap().parse().unwrap();
        assert!(width >= QR_MIN_PIXELS && height >= QR_MIN_PIXELS, "{width}x{height}");
    }

    #[test]
    fn qr_svg_refuses_text_too_long_for_a_qr_code() {
        let err = qr_svg(&"x".repeat(5000)).unwrap_err();
        assert!(matches!(err, TotpError::Qr { len: 5000, .. }), "{err:?}");
    }

    proptest! {
        #[test]
        fn the_current_code_verifies_and_codes_two_steps_away_match_only_by_collision(
            key in proptest::collection::vec(any::<u8>(), MIN_SECRET_BYTES..=MAX_SECRET_BYTES),
            time in 0i64..=40_000_000_000,
            offset in prop_oneof![Just(-2i64), Just(2i64), Just(-3i64), Just(3i64)],
        ) {
            let secret = TotpSecret::from_bytes(&key).unwrap();
            let now = Timestamp::from_unix(time);
            let current = counter_at(now);
            let window = [current.saturating_sub(1), current, current + 1];
            let code = code_at(&secret, current);
            // The next step's code may collide with this one (one in a million); then it wins.
            let expected = if code_at(&secret, current + 1) == code { current + 1 } else { current };
            prop_assert_eq!(verify(&secret, &code, now, None), Ok(expected));
            prop_assert_eq!(verify(&secret, &code, now, Some(expected)), Err(TotpError::Replayed));
            let Some(far) = current.checked_add_signed(offset) else { return Ok(()) };
            match verify(&secret, &code_at(&secret, far), now, None) {
                Ok(step) => prop_assert!(window.contains(&step), "step {} outside {:?}", step, window),
                Err(e) => prop_assert_eq!(e, TotpError::Invalid),
            }
        }

        #[test]
        fn base32_round_trips(bytes in proptest::collection::vec(any::<u8>(), 0..80)) {
            let encoded = base32_encode(&bytes);
            prop_assert_eq!(&*base32_decode(&encoded).unwrap(), &bytes[..]);
            prop_assert_eq!(&*base32_decode(&encoded.to_ascii_lowercase()).unwrap(), &bytes[..]);
        }

        #[test]
        fn verify_and_from_base32_never_panic(text in ".{0,80}", time in any::<i64>(), last in any::<Option<u64>>()) {
            let _ = verify(&rfc_secret(), &text, Timestamp::from_unix(time), last);
            let _ = TotpSecret::from_base32(&text);
        }
    }
}
