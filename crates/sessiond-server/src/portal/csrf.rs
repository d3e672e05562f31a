//! CSRF tokens for the portal's forms: an HMAC, under the server's CSRF key, of what the form is
//! for and of something only the visitor's browser holds.
//!
//! Before sign-in that is the login ticket in the `<name>_authn` cookie; after, the hash of the
//! session token. A page from another site can make the browser send the cookie, but it cannot
//! read our page to learn the token, and it cannot compute one without the key. Tokens need no
//! storage: they are recomputed and compared in constant time.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac as _};
use sessiond_core::keys::DerivedKey;
use sha2::Sha256;

/// What a token authorises; a token made for one purpose never passes for another.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Purpose {
    /// The sign-in form, bound to the login ticket.
    Login,
    /// Forms of a signed-in visitor, bound to the session.
    Session,
    /// The `state` of an OpenID Connect sign-in, bound to its journey's `auth_id`.
    OidcState,
    /// The nonce of an OpenID Connect sign-in.
    OidcNonce,
    /// The PKCE code verifier of an OpenID Connect sign-in.
    OidcPkce,
    /// The `ID` of a SAML sign-in's `AuthnRequest`.
    #[cfg(feature = "saml")]
    SamlRequest,
}

impl Purpose {
    fn label(self) -> &'static [u8] {
        match self {
            Self::Login => b"login",
            Self::Session => b"session",
            Self::OidcState => b"oidc state",
            Self::OidcNonce => b"oidc nonce",
            Self::OidcPkce => b"oidc pkce verifier",
            #[cfg(feature = "saml")]
            Self::SamlRequest => b"saml authn request id",
        }
    }
}

/// Longest token text we decode; ours are 43 characters.
const MAX_CHARS: usize = 64;

fn mac(key: &DerivedKey, purpose: Purpose, binding: &[u8]) -> Hmac<Sha256> {
    // HMAC zero-pads its key to the block size, so padding it here gives the same MAC through
    // the infallible fixed-size constructor.
    let mut block = [0u8; 64];
    block[..32].copy_from_slice(key.bytes());
    let mut mac = <Hmac<Sha256> as hmac::digest::KeyInit>::new(&block.into());
    mac.update(purpose.label());
    mac.update(&[0]);
    mac.update(binding);
    mac
}

/// The token for `purpose` bound to `binding`.
pub(crate) fn token(key: &DerivedKey, purpose: Purpose, binding: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(mac(key, purpose, binding).finalize().into_bytes())
}

/// Whether `presented` is the token for `purpose` bound to `binding`, compared in constant time.
pub(crate) fn verify(key: &DerivedKey, purpose: Purpose, binding: &[u8], presented: &str) -> bool {
    if presented.len() > MAX_CHARS {
        return false;
    }
    let Ok(tag) = URL_SAFE_NO_PAD.decode(presented) else { return false };
    mac(key, purpose, binding).verify_slice(&tag).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(secret: &[u8]) -> DerivedKey {
        DerivedKey::derive(secret, "sessiond csrf v1")
    }

    #[test]
    fn token_verifies_only_for_its_binding_purpose_and_key() {
        let k = key(b"0123456789abcdef0123456789abcdef");
        let t = token(&k, Purpose::Session, b"hash-a");
        assert_eq!(t.len(), 43);
        assert!(verify(&k, Purpose::Session, b"hash-a", &t));
        assert!(!verify(&k, Purpose::Session, b"hash-b", &t), "another session");
        assert!(!verify(&k, Purpose::Login, b"hash-a", &t), "another purpose");
        assert!(!verify(&key(b"another secret of thirty-two bytes!!"), Purpose::Session, b"hash-a", &t), "another key");
    }

    #[test]
    fn malformed_truncated_and_oversized_tokens_fail() {
        let k = key(b"0123456789abcdef0123456789abcdef");
        let t = token(&k, Purpose::Login, b"ticket");
        for bad in ["", "not base64!", &t[..42], &format!("{t}A"), &"A".repeat(10_000)] {
            assert!(!verify(&k, Purpose::Login, b"ticket", bad), "{bad:?}");
        }
    }
}
