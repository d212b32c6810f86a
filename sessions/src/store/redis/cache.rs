//! The opt-in local cache ([`RedisStore::local_cache`](super::RedisStore::local_cache)): entries
//! this process read or wrote, kept until the server says their key changed.
//!
//! The connection runs RESP3 with `CLIENT TRACKING on NOLOOP` (sent again with every command
//! that may fill the cache, so a reconnected connection is tracking before anything read on it
//! is kept). Redis then pushes an invalidation for every tracked key another client writes,
//! that expires or that is evicted, and `nil` for a `FLUSHALL`; the crate reports a lost
//! connection as a `Disconnection` push. This module applies them ([`LocalCache::on_push`]).
//!
//! *Coherent* means: once the invalidation of a change is handled here, no entry from before the
//! change is served for its key. Until then — the push's trip from the server and this process
//! getting to read it: a window of time, about the link's latency or more under load — a load
//! returns the entry as it was, however many changes other clients made meanwhile (see
//! `RedisStore::local_cache` for what that means, and measured figures).
//!
//! Two things make that coherent, not merely usually right:
//!
//! * **A pending token per key.** A reply and an invalidation travel different paths (the
//!   reply to the caller's task, the push to the push sender), so a reply read *before* an
//!   invalidation may be handled *after* it. Before sending, a read or a write leaves a token
//!   under its key; an invalidation removes it; the reply is kept only if its token is still
//!   there. So an entry is either kept before the invalidation removes it, or not kept at all.
//! * **Writes of this process count as changes.** With `NOLOOP` the server does not report our
//!   own writes, so a write of ours replaces the token of every read in flight on its key
//!   (whichever order the server ran them in, none of them is kept), and a read started while a
//!   write of ours is in flight is not kept either. A successful write keeps the entry it wrote
//!   (the swap script reads the key after writing, so the server tracks it again).
//!
//! Memory is bounded: at most `capacity` sessions (plus one per shard), in two generations per
//! shard (a full young generation becomes the old one, and the old one is dropped), so the
//! sessions used recently stay and the rest go. An entry is also trusted for at most
//! [`MAX_AGE`], as a second line behind the invalidations.

use std::collections::HashMap;
use std::hash::{BuildHasher, BuildHasherDefault, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime};

use ::redis::{PushInfo, PushKind, Value};

use crate::store::Entry;

/// How long a cached entry is trusted without a read from the server, however quiet its key.
pub(super) const MAX_AGE: Duration = Duration::from_secs(60);

type Key = Box<[u8]>;

/// Hashes a key by its last 16 bytes: a session's Redis key ends in the hex of a SHA-256
/// digest (of an id the client chose, so nobody can aim keys at one bucket), and SipHash over
/// the whole key was a tenth of a cached request's instructions. Other keys (an invalidation
/// can name any key) only hash less evenly.
#[derive(Default)]
struct TailHasher(u64);

impl Hasher for TailHasher {
    fn write(&mut self, bytes: &[u8]) {
        let tail = &bytes[bytes.len().saturating_sub(16)..];
        for chunk in tail.chunks(8) {
            let mut word = [0u8; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            self.0 = (self.0.rotate_left(23) ^ u64::from_le_bytes(word))
                .wrapping_mul(0x9E37_79B9_7F4A_7C15);
        }
    }

    fn write_usize(&mut self, n: usize) {
        self.0 ^= n as u64;
    }

    fn finish(&self) -> u64 {
        self.0 ^ (self.0 >> 29)
    }
}

type Map<V> = HashMap<Key, V, BuildHasherDefault<TailHasher>>;

struct Cached {
    entry: Entry,
    at: Instant,
}

#[derive(Default)]
struct Shard {
    young: Map<Cached>,
    old: Map<Cached>,
    /// The token of the last read or write started on a key whose reply is not handled yet.
    pending: Map<u64>,
    /// How many writes of this process are in flight on a key.
    writing: Map<u32>,
}

impl Shard {
    fn drop_entry(&mut self, key: &[u8]) {
        self.young.remove(key);
        self.old.remove(key);
    }

    fn keep(&mut self, key: &[u8], entry: Entry, generation: usize) {
        self.old.remove(key);
        if self.young.len() >= generation {
            self.old = std::mem::take(&mut self.young);
        }
        self.young.insert(
            key.into(),
            Cached {
                entry,
                at: Instant::now(),
            },
        );
    }
}

/// The local cache of one store (shared by its clones).
pub(super) struct LocalCache {
    shards: Box<[Mutex<Shard>]>,
    /// Entries per generation in each shard.
    generation: usize,
    next_token: AtomicU64,
    /// `sessions_cache_total{result}` (feature `metrics`).
    counters: crate::metrics::CacheCounters,
}

/// A read or write in flight, to be finished with [`LocalCache::end_read`] or
/// [`LocalCache::end_write`].
#[derive(Debug, Clone, Copy)]
pub(super) struct Token(u64);

impl LocalCache {
    /// A cache of at most about `capacity` entries.
    pub(super) fn new(capacity: usize) -> Self {
        let shards = if capacity >= 1024 { 16 } else { 1 };
        let per_shard = capacity.div_ceil(shards).max(1);
        Self {
            shards: (0..shards).map(|_| Mutex::default()).collect(),
            generation: per_shard.div_ceil(2),
            next_token: AtomicU64::new(1),
            counters: Default::default(),
        }
    }

    fn shard(&self, key: &[u8]) -> MutexGuard<'_, Shard> {
        let i = (BuildHasherDefault::<TailHasher>::default().hash_one(key) as usize)
            % self.shards.len();
        // Every change under the lock is a single map operation: a poisoned lock is whole.
        self.shards[i]
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn token(&self) -> u64 {
        self.next_token.fetch_add(1, Ordering::Relaxed)
    }

    /// The cached entry under `key`, if it is there, not too old and not ended at `now`
    /// (counted: `sessions_cache_total{result="hit|miss"}`).
    pub(super) fn get(&self, key: &[u8], now: SystemTime) -> Option<Entry> {
        let found = self.lookup(key, now);
        self.counters.count(if found.is_some() {
            crate::metrics::CacheResult::Hit
        } else {
            crate::metrics::CacheResult::Miss
        });
        found
    }

    fn lookup(&self, key: &[u8], now: SystemTime) -> Option<Entry> {
        let mut shard = self.shard(key);
        let fresh = |cached: &Cached| cached.at.elapsed() < MAX_AGE && !cached.entry.is_ended(now);
        if let Some(cached) = shard.young.get(key) {
            if fresh(cached) {
                return Some(cached.entry.clone());
            }
            shard.young.remove(key);
            return None;
        }
        let cached = shard.old.remove(key)?;
        if !fresh(&cached) {
            return None;
        }
        let entry = cached.entry.clone();
        let generation = self.generation;
        if shard.young.len() >= generation {
            shard.old = std::mem::take(&mut shard.young);
        }
        shard.young.insert(key.into(), cached);
        Some(entry)
    }

    /// A read of `key` from the server is about to be sent; `None` when what it reads cannot
    /// be kept (a write of ours on the key is in flight).
    pub(super) fn begin_read(&self, key: &[u8]) -> Option<Token> {
        let token = self.token();
        let mut shard = self.shard(key);
        if shard.writing.contains_key(key) {
            return None;
        }
        shard.pending.insert(key.into(), token);
        Some(Token(token))
    }

    /// The read of `token` answered `entry` (`None`: nothing is stored): kept if nothing
    /// changed the key meanwhile.
    pub(super) fn end_read(&self, key: &[u8], token: Token, entry: Option<&Entry>) {
        let mut shard = self.shard(key);
        if shard.pending.get(key) != Some(&token.0) {
            return;
        }
        shard.pending.remove(key);
        if let Some(entry) = entry
            && !shard.writing.contains_key(key)
        {
            shard.keep(key, entry.clone(), self.generation);
        }
    }

    /// A write of `key` is about to be sent: the cached entry goes, and no read in flight on
    /// the key will be kept.
    pub(super) fn begin_write(&self, key: &[u8]) -> Token {
        let token = self.token();
        let mut shard = self.shard(key);
        shard.drop_entry(key);
        *shard.writing.entry(key.into()).or_insert(0) += 1;
        shard.pending.insert(key.into(), token);
        Token(token)
    }

    /// The write of `token` finished: `written` is the entry it stored (`None`: it wrote
    /// nothing, deleted, or failed), kept if nothing else changed the key meanwhile.
    pub(super) fn end_write(&self, key: &[u8], token: Token, written: Option<Entry>) {
        let mut shard = self.shard(key);
        let last = match shard.writing.get_mut(key) {
            Some(count) if *count > 1 => {
                *count -= 1;
                false
            }
            _ => {
                shard.writing.remove(key);
                true
            }
        };
        if shard.pending.get(key) != Some(&token.0) {
            return;
        }
        shard.pending.remove(key);
        // An entry a load would refuse (a version or revision at its maximum) is not kept:
        // the next load reads the server, and refuses it there, as every store does.
        match written.map(crate::store::entry::writable) {
            Some(Ok(entry)) if last => shard.keep(key, entry, self.generation),
            Some(Err(_)) => shard.drop_entry(key),
            _ => {}
        }
    }

    /// Forgets `key` (an invalidation).
    pub(super) fn invalidate(&self, key: &[u8]) {
        self.counters
            .count(crate::metrics::CacheResult::Invalidated);
        let mut shard = self.shard(key);
        shard.drop_entry(key);
        shard.pending.remove(key);
    }

    /// Forgets everything: the tracking that kept the entries coherent is gone.
    pub(super) fn clear(&self) {
        self.counters.count(crate::metrics::CacheResult::Dropped);
        for shard in self.shards.iter() {
            let mut shard = shard
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            shard.young.clear();
            shard.old.clear();
            shard.pending.clear();
        }
    }

    /// How many entries are cached.
    pub(super) fn len(&self) -> usize {
        self.shards
            .iter()
            .map(|shard| {
                let shard = shard
                    .lock()
                    .unwrap_or_else(|poisoned| poisoned.into_inner());
                shard.young.len() + shard.old.len()
            })
            .sum()
    }

    /// Applies a push from the server (or the crate's `Disconnection`); runs on the connection's
    /// push path, so it never blocks on anything but the shard locks.
    pub(super) fn on_push(&self, push: &PushInfo) {
        match push.kind {
            PushKind::Invalidate => match push.data.first() {
                Some(Value::Array(keys)) | Some(Value::Set(keys)) => {
                    for key in keys {
                        match key {
                            Value::BulkString(key) => self.invalidate(key),
                            Value::SimpleString(key) => self.invalidate(key.as_bytes()),
                            // Not a key we can name: drop everything rather than guess.
                            _ => self.clear(),
                        }
                    }
                }
                // `nil`: a FLUSHALL / FLUSHDB (or a shape we do not know): everything goes.
                _ => self.clear(),
            },
            PushKind::Disconnection => self.clear(),
            // The tracking redirection (not used) broke, or the server stopped tracking us.
            PushKind::Other(ref kind) if kind.starts_with("tracking") => self.clear(),
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::expiry::Deadline;
    use crate::record::Record;
    use crate::store::Stored;

    fn entry(version: u64) -> Entry {
        let now = SystemTime::now();
        Entry::Live {
            version,
            session: Stored::new(
                Record::new(),
                Deadline {
                    created_at: now,
                    expires_at: now + Duration::from_secs(60),
                },
            ),
        }
    }

    fn version(cache: &LocalCache, key: &[u8]) -> Option<u64> {
        cache
            .get(key, SystemTime::now())
            .map(|entry| entry.version())
    }

    fn invalidation(key: &[u8]) -> PushInfo {
        PushInfo {
            kind: PushKind::Invalidate,
            data: vec![Value::Array(vec![Value::BulkString(key.to_vec())])],
        }
    }

    #[test]
    fn a_reply_handled_after_its_invalidation_is_not_kept() {
        let cache = LocalCache::new(8);
        let token = cache.begin_read(b"k").expect("no write in flight");
        cache.on_push(&invalidation(b"k"));
        cache.end_read(b"k", token, Some(&entry(1)));
        assert!(cache.get(b"k", SystemTime::now()).is_none());
        // Kept before the invalidation: the invalidation removes it.
        let token = cache.begin_read(b"k").expect("no write in flight");
        cache.end_read(b"k", token, Some(&entry(1)));
        assert_eq!(version(&cache, b"k"), Some(1));
        cache.on_push(&invalidation(b"k"));
        assert!(cache.get(b"k", SystemTime::now()).is_none());
    }

    #[test]
    fn reads_overlapping_a_write_of_ours_are_not_kept() {
        let cache = LocalCache::new(8);
        let read = cache.begin_read(b"k").expect("no write in flight");
        let write = cache.begin_write(b"k");
        assert!(cache.begin_read(b"k").is_none(), "a write is in flight");
        cache.end_read(b"k", read, Some(&entry(1)));
        assert!(cache.get(b"k", SystemTime::now()).is_none());
        cache.end_write(b"k", write, Some(entry(2)));
        assert_eq!(version(&cache, b"k"), Some(2));
        // Two writes at once: only the later one may keep what it wrote, and only once both
        // are done.
        let first = cache.begin_write(b"k");
        let second = cache.begin_write(b"k");
        cache.end_write(b"k", first, Some(entry(3)));
        assert!(cache.get(b"k", SystemTime::now()).is_none());
        cache.end_write(b"k", second, Some(entry(4)));
        assert_eq!(version(&cache, b"k"), Some(4));
    }

    #[test]
    fn disconnection_and_flush_clear_everything_and_memory_is_bounded() {
        let cache = LocalCache::new(10);
        for n in 0u32..100 {
            let key = n.to_be_bytes();
            let token = cache.begin_read(&key).expect("no write in flight");
            cache.end_read(&key, token, Some(&entry(1)));
            assert!(cache.len() <= 10, "{} entries", cache.len());
        }
        let pending = cache.begin_read(b"p").expect("no write in flight");
        cache.on_push(&PushInfo {
            kind: PushKind::Disconnection,
            data: vec![],
        });
        assert_eq!(cache.len(), 0);
        cache.end_read(b"p", pending, Some(&entry(1)));
        assert_eq!(
            cache.len(),
            0,
            "a read from before the disconnection is not kept"
        );
        let token = cache.begin_read(b"q").expect("no write in flight");
        cache.end_read(b"q", token, Some(&entry(1)));
        cache.on_push(&PushInfo {
            kind: PushKind::Invalidate,
            data: vec![Value::Nil],
        });
        assert_eq!(cache.len(), 0);
    }
}
