//! How a `MemoryStore` keys its map: a session key's 32 digest bytes, hashed by taking eight of
//! them.

use std::hash::{BuildHasherDefault, Hash, Hasher};

use crate::id::SessionKey;

/// A session key as the map holds it: half the size of its hex text.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) struct Digest([u8; 32]);

impl Digest {
    /// The digest of a session key.
    pub(super) fn of(key: &SessionKey) -> Self {
        Self(*key.digest())
    }

    /// The digest's bytes.
    pub(super) fn bytes(&self) -> [u8; 32] {
        self.0
    }

    /// Which of `shards` shards holds it (from bytes the map's hash does not use).
    pub(super) fn shard(&self, shards: usize) -> usize {
        usize::from(self.0[31]) % shards
    }
}

impl Hash for Digest {
    fn hash<H: Hasher>(&self, state: &mut H) {
        let mut first = [0u8; 8];
        first.copy_from_slice(&self.0[..8]);
        state.write_u64(u64::from_le_bytes(first));
    }
}

/// The map's hasher: a digest is already uniformly random, so eight of its bytes are the hash.
/// (No hash flooding: every key in the map is the digest of an id the server drew; ids a
/// client sends are only looked up.)
#[derive(Default)]
pub(super) struct DigestHasher(u64);

impl Hasher for DigestHasher {
    fn write(&mut self, bytes: &[u8]) {
        // Only `write_u64` is called for a `Digest`; anything else is folded in, correctly if slowly.
        for &byte in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(byte);
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

/// What the map is built with.
pub(super) type BuildDigestHasher = BuildHasherDefault<DigestHasher>;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::id::SessionId;

    #[test]
    fn a_digest_is_the_bytes_the_key_spells() {
        let key = SessionId::generate().expect("an id").key();
        let digest = Digest::of(&key);
        let hex: String = digest.0.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(hex, key.as_str());
        // A key read back from its text has the same digest.
        let stored = SessionKey::from_stored(key.as_str()).expect("a stored key");
        assert!(Digest::of(&stored) == digest);
        assert!(SessionKey::from_stored(key.as_str().to_uppercase()).is_none());
    }
}
