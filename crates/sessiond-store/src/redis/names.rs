//! Key names: derived with HMAC-SHA256 under the index key, so no name reveals a token, a user
//! name, a realm name or a session id, and nobody without the index key can compute the name of
//! a guessed user's sessions.
//!
//! Every session lives in one of [`BUCKETS`] buckets, chosen from its user's name. A bucket's keys
//! share the Redis Cluster hash tag `{bb}` (`bb` = the bucket in two hex digits), so everything
//! about one user, and a bucket's expiry and realm indexes, sit on one slot and change atomically
//! in one Lua script.

use super::seal::hex;
use crate::cache::CacheKey;
use hmac::digest::KeyInit;
use hmac::{Hmac, Mac};
use sessiond_core::token::{SessionId, TokenHash};
use sha2::Sha256;
use std::fmt;

/// How many buckets sessions are spread over: enough to spread the load of a large cluster over
/// many slots, few enough that a sweep or an admin listing (one command per bucket) stays cheap.
pub(crate) const BUCKETS: usize = 256;

/// Bytes of HMAC output kept in a name: 128 bits, so collisions never happen in practice.
const TAG_BYTES: usize = 16;

/// The key that names are derived with: random, generated once per deployment and stored sealed
/// in Redis, so rotating the secret changes no key name.
#[derive(Clone)]
pub(crate) struct IndexKey(pub(crate) [u8; 32]);

impl fmt::Debug for IndexKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("IndexKey([redacted])")
    }
}

/// A session's name in every key, as bytes: the HMAC tag of its token hash. Its hex form is the
/// `sid` of the key names; it is also what the local cache and the invalidation broadcast name a
/// session by, so neither holds or sends anything a token could be learned from.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub(crate) struct Sid(pub(crate) [u8; TAG_BYTES]);

impl Sid {
    /// The hex form used in key names and messages.
    pub(crate) fn hex(&self) -> String {
        hex(&self.0)
    }

    /// Reads the hex form back; `None` for anything [`Sid::hex`] does not write.
    pub(crate) fn parse(text: &[u8]) -> Option<Self> {
        if text.len() != TAG_BYTES * 2 {
            return None;
        }
        let mut out = [0u8; TAG_BYTES];
        for (byte, pair) in out.iter_mut().zip(text.chunks_exact(2)) {
            *byte = (lower_hex_digit(pair[0])? << 4) | lower_hex_digit(pair[1])?;
        }
        Some(Self(out))
    }
}

impl CacheKey for Sid {
    fn spread(&self) -> u8 {
        // An HMAC output: every byte is uniformly spread.
        self.0[0]
    }
}

fn lower_hex_digit(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        _ => None,
    }
}

/// Builds the names of every key the store uses under one prefix.
#[derive(Clone)]
pub(crate) struct Names {
    prefix: String,
    index: IndexKey,
    /// HMAC keyed with the index key, cloned for each name.
    mac: Hmac<Sha256>,
}

impl fmt::Debug for Names {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Names").field("prefix", &self.prefix).finish_non_exhaustive()
    }
}

/// Where one user's sessions live.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct UserPlace {
    pub(crate) bucket: String,
    /// Tag of the user in every realm (for "this user's sessions anywhere").
    pub(crate) user: String,
}

impl Names {
    pub(crate) fn new(prefix: &str, index: IndexKey) -> Self {
        // HMAC pads a short key with zeros to the block size, so padding it here gives the same
        // MAC through the infallible constructor.
        let mut block = [0u8; 64];
        block[..32].copy_from_slice(&index.0);
        let mac = <Hmac<Sha256> as KeyInit>::new(&block.into());
        Self { prefix: prefix.to_owned(), index, mac }
    }

    pub(crate) fn index_key(&self) -> &IndexKey {
        &self.index
    }

    /// HMAC of a labelled, length-prefixed list of parts, so ("ab","c") and ("a","bc") differ.
    fn tag(&self, label: &str, parts: &[&[u8]]) -> [u8; TAG_BYTES] {
        let mut mac = self.mac.clone();
        mac.update(label.as_bytes());
        for part in parts {
            mac.update(&(part.len() as u64).to_be_bytes());
            mac.update(part);
        }
        let full = mac.finalize().into_bytes();
        let mut out = [0u8; TAG_BYTES];
        out.copy_from_slice(&full[..TAG_BYTES]);
        out
    }

    /// The session's name in every key: derived from its token hash.
    pub(crate) fn sid(&self, hash: &TokenHash) -> String {
        self.sid_tag(hash).hex()
    }

    /// [`Names::sid`] as bytes.
    pub(crate) fn sid_tag(&self, hash: &TokenHash) -> Sid {
        Sid(self.tag("session", &[hash.as_bytes()]))
    }

    /// The name of the pointer from a public session id.
    pub(crate) fn id_tag(&self, id: &SessionId) -> String {
        hex(&self.tag("id", &[id.as_str().as_bytes()]))
    }

    /// The bucket and user tag of `user`: the bucket depends on the user only, so one user's
    /// sessions in every realm share a slot.
    pub(crate) fn user_place(&self, user: &str) -> UserPlace {
        let tag = self.tag("user", &[user.as_bytes()]);
        UserPlace { bucket: format!("{:02x}", tag[0]), user: hex(&tag) }
    }

    pub(crate) fn realm_user_tag(&self, realm: &str, user: &str) -> String {
        hex(&self.tag("realm-user", &[realm.as_bytes(), user.as_bytes()]))
    }

    pub(crate) fn realm_tag(&self, realm: &str) -> String {
        hex(&self.tag("realm", &[realm.as_bytes()]))
    }

    /// A session: a hash with the sealed record and the tags of its indexes.
    pub(crate) fn session(&self, bucket: &str, sid: &str) -> String {
        format!("{}s:{{{bucket}}}:{sid}", self.prefix)
    }

    /// What a session's sealed field is bound to: the session key without its hash tag (the tag
    /// only places the key in a cluster) and the field.
    pub(crate) fn session_place(&self, sid: &str, field: &str) -> String {
        format!("{}s:{sid}#{field}", self.prefix)
    }

    /// Token pointer: the bucket of the session whose token hashes to `sid`'s source.
    pub(crate) fn token_pointer(&self, sid: &str) -> String {
        format!("{}t:{sid}", self.prefix)
    }

    /// Id pointer: bucket and sid of the session with this public id.
    pub(crate) fn id_pointer(&self, id_tag: &str) -> String {
        format!("{}i:{id_tag}", self.prefix)
    }

    /// A user's sessions in one realm (a set of sids).
    pub(crate) fn user_set(&self, bucket: &str, realm_user: &str) -> String {
        format!("{}u:{{{bucket}}}:{realm_user}", self.prefix)
    }

    /// A user's sessions in every realm.
    pub(crate) fn any_realm_set(&self, bucket: &str, user: &str) -> String {
        format!("{}n:{{{bucket}}}:{user}", self.prefix)
    }

    /// One realm's sessions within one bucket.
    pub(crate) fn realm_set(&self, bucket: &str, realm: &str) -> String {
        format!("{}m:{{{bucket}}}:{realm}", self.prefix)
    }

    /// A bucket's sessions ordered by `expires_at`: the sweep order and the list of all sessions.
    pub(crate) fn expiry(&self, bucket: &str) -> String {
        format!("{}x:{{{bucket}}}", self.prefix)
    }

    /// An entry of the key-value space. Every entry of a kind shares the hash tag of the kind,
    /// so the kind's index and its entries sit on one slot.
    pub(crate) fn entry(&self, kind: &str, key: &str) -> String {
        format!("{}e:{{{kind}}}:{}", self.prefix, hex(&self.tag("entry", &[kind.as_bytes(), key.as_bytes()])))
    }

    /// The set of a kind's entry names, for listing.
    pub(crate) fn entry_index(&self, kind: &str) -> String {
        format!("{}E:{{{kind}}}", self.prefix)
    }

    pub(crate) fn realm_state(&self, realm: &str) -> String {
        format!("{}r:{}", self.prefix, self.realm_tag(realm))
    }
}

/// The name of the sealed index key under `prefix`.
pub(crate) fn index_key_name(prefix: &str) -> String {
    format!("{prefix}index-key")
}

/// Every bucket's two-digit name.
pub(crate) fn buckets() -> impl Iterator<Item = String> {
    (0..BUCKETS).map(|b| format!("{b:02x}"))
}

/// Whether `text` is a bucket name as written by [`Names::user_place`].
pub(crate) fn is_bucket(text: &str) -> bool {
    text.len() == 2 && is_lower_hex(text)
}

/// Whether `text` is a sid (or any tag) as written by [`Names`].
pub(crate) fn is_tag(text: &str) -> bool {
    text.len() == TAG_BYTES * 2 && is_lower_hex(text)
}

fn is_lower_hex(text: &str) -> bool {
    text.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

#[cfg(test)]
mod tests {
    use super::*;
    use sessiond_core::token::SessionToken;

    fn names() -> Names {
        Names::new("sessiond:", IndexKey([7; 32]))
    }

    #[test]
    fn names_reveal_nothing_and_depend_on_the_index_key() {
        let names = names();
        let token = SessionToken::generate();
        let sid = names.sid(&token.hash());
        assert!(is_tag(&sid));
        assert!(!sid.contains(&hex(token.hash().as_bytes())[..8]));
        let place = names.user_place("alice");
        assert!(is_bucket(&place.bucket));
        assert!(!names.user_set(&place.bucket, &names.realm_user_tag("main", "alice")).contains("alice"));
        assert!(!names.realm_state("main").contains("main"));

        let other = Names::new("sessiond:", IndexKey([8; 32]));
        assert_ne!(other.sid(&token.hash()), sid);
        assert_ne!(other.user_place("alice").user, place.user);
    }

    #[test]
    fn tags_are_hmac_sha256_under_the_index_key() {
        let names = names();
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&[7; 32]).unwrap();
        mac.update(b"realm");
        mac.update(&4u64.to_be_bytes());
        mac.update(b"main");
        assert_eq!(names.realm_tag("main"), hex(&mac.finalize().into_bytes()[..16]));
    }

    #[test]
    fn sid_tags_round_trip_through_hex_and_nothing_else_parses() {
        let names = names();
        let hash = SessionToken::generate().hash();
        let sid = names.sid_tag(&hash);
        assert_eq!(sid.hex(), names.sid(&hash));
        assert_eq!(Sid::parse(sid.hex().as_bytes()), Some(sid));
        let too_long = format!("{}0", sid.hex());
        for bad in ["", "clear", &sid.hex()[1..], &"AB".repeat(16), &too_long, &"g".repeat(32), &"0".repeat(31)] {
            assert_eq!(Sid::parse(bad.as_bytes()), None, "{bad:?}");
        }
    }

    #[test]
    fn parts_are_length_prefixed() {
        let names = names();
        assert_ne!(names.realm_user_tag("ab", "c"), names.realm_user_tag("a", "bc"));
        assert_ne!(names.realm_tag("main"), names.user_place("main").user);
    }

    #[test]
    fn a_buckets_keys_share_one_hash_tag() {
        let names = names();
        let place = names.user_place("alice");
        let tag = format!("{{{}}}", place.bucket);
        for key in [
            names.session(&place.bucket, "00"),
            names.user_set(&place.bucket, "11"),
            names.any_realm_set(&place.bucket, &place.user),
            names.realm_set(&place.bucket, "22"),
            names.expiry(&place.bucket),
        ] {
            assert_eq!(key.matches('{').count(), 1, "{key}");
            assert!(key.contains(&tag), "{key}");
        }
        assert_eq!(buckets().count(), BUCKETS);
        assert!(buckets().all(|b| is_bucket(&b)));
    }
}
