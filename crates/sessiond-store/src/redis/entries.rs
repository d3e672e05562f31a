//! The key-value space of [`Store::entry`] and its siblings on Redis.
//!
//! Each entry is one string key named by an HMAC of its kind and key (see
//! [`Names::entry`](super::names::Names::entry)), holding a sealed value bound to that name. The
//! sealed plaintext carries the key itself and the expiry, because the name reveals neither and
//! the caller's `now` (not Redis' clock) decides what has expired. Redis drops an entry by itself
//! once its lifetime has passed; a set per kind lists the names for [`Store::list_entries`].

use super::{RedisStore, field, status};
use crate::memory::alive;
use crate::{Entry, EntryKind, StoreError};
use redis::Script;
use sessiond_core::time::Timestamp;

const WHAT: &str = "store entry";
/// Plaintext layout: expiry (i64, `i64::MAX` for none), key length (u32), key, value.
const HEADER: usize = 8 + 4;

fn encode(key: &str, value: &[u8], expires_at: Option<Timestamp>) -> Result<Vec<u8>, StoreError> {
    let len =
        u32::try_from(key.len()).map_err(|_| StoreError::Corrupt { what: WHAT, reason: "key too long".into() })?;
    let mut out = Vec::with_capacity(HEADER + key.len() + value.len());
    out.extend_from_slice(&expires_at.map_or(i64::MAX, Timestamp::unix).to_be_bytes());
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(key.as_bytes());
    out.extend_from_slice(value);
    Ok(out)
}

fn decode(plain: &[u8]) -> Option<Entry> {
    let expiry = i64::from_be_bytes(plain.get(..8)?.try_into().ok()?);
    let len = u32::from_be_bytes(plain.get(8..HEADER)?.try_into().ok()?) as usize;
    let key = std::str::from_utf8(plain.get(HEADER..HEADER.checked_add(len)?)?).ok()?;
    let value = plain.get(HEADER + len..)?;
    let expires_at = (expiry != i64::MAX).then(|| Timestamp::from_unix(expiry));
    Some(Entry { key: key.to_owned(), value: value.to_vec(), expires_at })
}

/// Milliseconds Redis should keep an entry that expires at `expires_at`, seen from `now`; `0`
/// for no expiry, `None` when it has expired already.
fn lifetime_ms(expires_at: Option<Timestamp>, now: Timestamp) -> Option<i64> {
    match expires_at {
        None => Some(0),
        Some(at) if at > now => Some(at.unix().saturating_sub(now.unix()).saturating_mul(1000)),
        Some(_) => None,
    }
}

impl RedisStore {
    /// Runs `script` on `keys` with the prefix as `ARGV[1]` and `args` after it.
    async fn eval_keys<T: redis::FromRedisValue>(
        &self,
        script: &Script,
        keys: &[&str],
        args: &[&[u8]],
    ) -> Result<T, StoreError> {
        let prefix = self.inner.prefix.as_bytes();
        self.inner
            .link
            .run(|mut conn: super::Conn| async move {
                let mut invocation = script.prepare_invoke();
                for key in keys {
                    invocation.key(*key);
                }
                invocation.arg(prefix);
                for arg in args {
                    invocation.arg(*arg);
                }
                invocation.invoke_async(&mut conn).await
            })
            .await
    }

    /// The stored bytes of entry `name` (`None`: no such string key) and the entry they hold
    /// (`None` when unreadable, which counts as absent).
    async fn read_entry(&self, name: &str) -> Result<(Option<Vec<u8>>, Option<Entry>), StoreError> {
        let reply: Vec<Vec<u8>> = self.eval(&self.inner.scripts.get, name, &[]).await?;
        match status(&reply) {
            "ok" => {
                let raw = field(&reply, 1).to_vec();
                let entry = self.open(name, &raw, WHAT).and_then(|plain| decode(&plain));
                Ok((Some(raw), entry))
            }
            // No key, or one of another type: absent either way.
            _ => Ok((None, None)),
        }
    }

    pub(super) async fn get_entry(
        &self,
        kind: EntryKind,
        key: &str,
        now: Timestamp,
    ) -> Result<Option<Entry>, StoreError> {
        let name = self.names().await?.entry(kind.tag(), key);
        let (_, entry) = self.read_entry(&name).await?;
        // A name collision would need an HMAC collision; the key inside is checked anyway.
        Ok(entry.filter(|e| e.key == key && alive(e.expires_at, now)))
    }

    pub(super) async fn write_entry(
        &self,
        kind: EntryKind,
        key: &str,
        value: &[u8],
        expires_at: Option<Timestamp>,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        let names = self.names().await?;
        let (name, index) = (names.entry(kind.tag(), key), names.entry_index(kind.tag()));
        let Some(ttl) = lifetime_ms(expires_at, now) else {
            return self.remove_entry(kind, key).await.map(drop);
        };
        let sealed = self.seal(name.as_bytes(), &encode(key, value, expires_at)?, WHAT)?;
        let ttl = ttl.to_string();
        self.eval_keys::<i64>(&self.inner.scripts.entry_put, &[&name, &index], &[&sealed, ttl.as_bytes()]).await?;
        Ok(())
    }

    pub(super) async fn compare_and_swap_entry(
        &self,
        kind: EntryKind,
        key: &str,
        expected: Option<&[u8]>,
        new: Option<(&[u8], Option<Timestamp>)>,
        now: Timestamp,
    ) -> Result<bool, StoreError> {
        let names = self.names().await?;
        let (name, index) = (names.entry(kind.tag(), key), names.entry_index(kind.tag()));
        let (raw, entry) = self.read_entry(&name).await?;
        let current = entry.filter(|e| e.key == key && alive(e.expires_at, now));
        if current.as_ref().map(|e| e.value.as_slice()) != expected {
            return Ok(false);
        }
        // The script swaps only if the key still holds the very bytes read above, so a write
        // by another instance in between makes this swap lose rather than overwrite it.
        let (presence, raw): (&[u8], Vec<u8>) = match raw {
            Some(raw) => (b"some", raw),
            None => (b"none", Vec::new()),
        };
        let (sealed, ttl) = match new.map(|(value, at)| (value, at, lifetime_ms(at, now))) {
            Some((value, at, Some(ttl))) => (self.seal(name.as_bytes(), &encode(key, value, at)?, WHAT)?, ttl),
            // Writing an already expired value is deleting it.
            Some((_, _, None)) | None => (Vec::new(), 0),
        };
        let ttl = ttl.to_string();
        let swapped: i64 = self
            .eval_keys(&self.inner.scripts.entry_swap, &[&name, &index], &[presence, &raw, &sealed, ttl.as_bytes()])
            .await?;
        Ok(swapped == 1)
    }

    pub(super) async fn remove_entry(&self, kind: EntryKind, key: &str) -> Result<bool, StoreError> {
        let names = self.names().await?;
        let (name, index) = (names.entry(kind.tag(), key), names.entry_index(kind.tag()));
        let deleted: i64 = self.eval_keys(&self.inner.scripts.entry_delete, &[&name, &index], &[]).await?;
        Ok(deleted > 0)
    }

    pub(super) async fn all_entries(&self, kind: EntryKind, now: Timestamp) -> Result<Vec<Entry>, StoreError> {
        let index = self.names().await?.entry_index(kind.tag());
        let reply: Vec<Vec<u8>> = self.eval(&self.inner.scripts.entry_list, &index, &[]).await?;
        let mut out: Vec<Entry> = reply
            .chunks_exact(2)
            .filter_map(|pair| {
                let name = String::from_utf8_lossy(&pair[0]);
                self.open(&name, &pair[1], WHAT).and_then(|plain| decode(&plain))
            })
            .filter(|e| alive(e.expires_at, now))
            .collect();
        out.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_round_trip_and_refuse_short_input() {
        let at = Some(Timestamp::from_unix(1_700_000_000));
        for (key, value, expires_at) in [("k", &b"v"[..], at), ("", &b""[..], None), ("ключ", &[0u8, 255][..], at)]
        {
            let entry = decode(&encode(key, value, expires_at).unwrap()).unwrap();
            assert_eq!(entry, Entry { key: key.into(), value: value.to_vec(), expires_at });
        }
        let good = encode("key", b"value", None).unwrap();
        for cut in 0..HEADER + 3 {
            assert!(decode(&good[..cut]).is_none(), "{cut}");
        }
    }

    #[test]
    fn lifetime_counts_from_the_callers_now() {
        let now = Timestamp::from_unix(1_000);
        assert_eq!(lifetime_ms(None, now), Some(0));
        assert_eq!(lifetime_ms(Some(Timestamp::from_unix(1_005)), now), Some(5_000));
        assert_eq!(lifetime_ms(Some(now), now), None);
    }
}
