//! The CAS tokens of the entries this store last loaded or wrote, by key: a save over the
//! version loaded is then one `ms … C<token>`, with no read before it.
//!
//! A token only spares a read: a write with a stale one writes nothing (memcached compares
//! it), and the store then reads which token the version has now. Bounded: a shard that
//! fills up is emptied (those keys' next saves read first).

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};

use crate::id::SessionKey;

const SHARDS: usize = 16;
/// Keys a shard holds at most.
const PER_SHARD: usize = 4096;

/// Session key digest → (entry version, CAS token).
type Shard = HashMap<[u8; 32], (u64, u64)>;

#[derive(Default)]
pub(super) struct Tokens {
    shards: [Mutex<Shard>; SHARDS],
}

impl Tokens {
    fn shard(&self, key: &SessionKey) -> MutexGuard<'_, Shard> {
        let index = usize::from(key.as_bytes()[0]) % SHARDS;
        self.shards[index]
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The token of `key`'s entry of `version`, if that is the one kept.
    pub(super) fn get(&self, key: &SessionKey, version: u64) -> Option<u64> {
        match self.shard(key).get(key.as_bytes()) {
            Some(&(kept, cas)) if kept == version => Some(cas),
            _ => None,
        }
    }

    /// Keeps `cas` as the token of `key`'s entry of `version` (forgets the key without one).
    pub(super) fn put(&self, key: &SessionKey, version: u64, cas: Option<u64>) {
        let mut shard = self.shard(key);
        match cas {
            Some(cas) => {
                if shard.len() >= PER_SHARD && !shard.contains_key(key.as_bytes()) {
                    shard.clear();
                }
                shard.insert(*key.as_bytes(), (version, cas));
            }
            None => {
                shard.remove(key.as_bytes());
            }
        }
    }

    pub(super) fn remove(&self, key: &SessionKey) {
        self.shard(key).remove(key.as_bytes());
    }
}
