//! [`Encrypted`]: any [`SessionStore`] with each stored session sealed (encryption at rest).

use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use bytes::Bytes;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

use super::blob;
use super::cookie::CookieError;
use super::seal::{self, Key, KeyRing, SealError};
use super::upkeep::{ScanCursor, ScanPage, Walk};
use super::{Entry, OwnedEntries, Owner, SessionStore, StoreError, Stored};
use crate::errors::RecordError;
use crate::id::SessionKey;
use crate::record::{Record, Slot};

#[cfg(test)]
mod tests;

/// The name (and type tag) of the one slot a sealed record holds in the wrapped store.
const SEALED_SLOT: &str = "__sealed";
/// The field of that slot that holds the envelope.
const SEALED_FIELD: &str = "v";
/// The format tag of that slot: no codec's (nothing decodes it as session data).
const SEALED_FORMAT_TAG: u8 = 0x5E;
/// What a record's envelope is bound to besides the session's key: it is a stored record, not a
/// cookie (the same [`Key`] may serve both).
const CONTEXT_LABEL: &[u8] = b"sessions/encrypted-record\0";
/// Bytes of an owner's keyed hash (before base64): a collision only adds a candidate that the
/// owner sealed inside then rules out.
const OWNER_HASH_BYTES: usize = 16;

/// Any [`SessionStore`], with each stored session sealed (AES-256-GCM-SIV, the sealing module
/// [`CookieStore`](crate::CookieStore) uses): a dump of the wrapped store shows no session
/// data. It is a `SessionStore` itself, so it goes wherever the wrapped one went
/// (`SessionLayer::new`, owners, upkeep, the conformance suite), and each session stays under
/// the same [`SessionKey`] in the wrapped store.
///
/// * **Keys.** `keys` is an ordered list, as for `CookieStore`: the first seals, all open. The
///   envelope names the key it was sealed with (no trial decryption). A session sealed with an
///   older key is sealed with the first one on its next save; [`rekey_all`](Self::rekey_all)
///   does it for every session now.
/// * **Bound to its key.** The session's key is the associated data: a sealed record copied
///   under another session's key does not open there.
/// * **What stays in clear**, because the wrapped store works with it: the deadline (expiry
///   and sweeps), the last-seen time and the owner's name and binding time (the owner index:
///   listing, revoking, the cap), or with [`hash_owners`](Self::hash_owners) a keyed hash of
///   the name instead; the entry's version; and sizes. The record (every slot and field) and
///   the owner's user agent are sealed, and so is a copy of everything in clear, which is what
///   a load returns.
/// * **Unreadable records.** A record that does not open (a key this store does not hold, or
///   tampered bytes) loads as corrupt data does: the request gets a fresh session and a `warn`
///   line, and the stored bytes are left as they are. A record stored in clear (before the
///   store was wrapped) is refused the same way, unless [`read_plaintext`](Self::read_plaintext)
///   is on.
///
/// ```
/// use sessions::store::Encrypted;
/// use sessions::{Key, MemoryStore, SessionLayer};
/// let store = Encrypted::new(MemoryStore::new(), [Key::generate(2)?, Key::generate(1)?])?;
/// let layer = SessionLayer::new(store);
/// # let _ = layer;
/// # Ok::<(), sessions::error::CookieError>(())
/// ```
#[derive(Clone)]
pub struct Encrypted<S> {
    inner: S,
    keys: KeyRing,
    owner_hash: Option<Arc<Hmac<Sha256>>>,
    read_plaintext: bool,
}

impl<S> std::fmt::Debug for Encrypted<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Encrypted")
            .field("key_ids", &self.keys.ids().collect::<Vec<_>>())
            .field("hash_owners", &self.owner_hash.is_some())
            .field("read_plaintext", &self.read_plaintext)
            .finish_non_exhaustive()
    }
}

impl<S: SessionStore> Encrypted<S> {
    /// `store` with its sessions sealed with `keys` (the first seals, all open). Fails without
    /// keys or when two keys share an id.
    ///
    /// ```
    /// use sessions::store::Encrypted;
    /// use sessions::{Key, MemoryStore};
    /// use sessions::error::CookieError;
    /// let keys = vec![Key::from_bytes(1, [7; 32])];
    /// assert!(Encrypted::new(MemoryStore::new(), keys).is_ok());
    /// assert!(matches!(Encrypted::new(MemoryStore::new(), []), Err(CookieError::NoKeys)));
    /// ```
    pub fn new(store: S, keys: impl IntoIterator<Item = Key>) -> Result<Self, CookieError> {
        Ok(Self {
            inner: store,
            keys: KeyRing::new(keys)?,
            owner_hash: None,
            read_plaintext: false,
        })
    }

    /// Stores a keyed hash (HMAC-SHA-256 under `key`, cut to 16 bytes) of each owner's name
    /// in the wrapped store instead of the name: a dump no longer says whose sessions they are.
    /// Listing, revoking and the cap keep working (they look the hash up, and check the owner
    /// sealed inside). Keep `key` for the store's life: unlike the sealing keys it does not
    /// rotate (sessions stored under another hash are not found by owner).
    ///
    /// ```
    /// use sessions::store::Encrypted;
    /// use sessions::{Key, MemoryStore};
    /// let store = Encrypted::new(MemoryStore::new(), [Key::from_bytes(1, [7; 32])])?
    ///     .hash_owners(Key::from_bytes(0, [9; 32]));
    /// # let _ = store;
    /// # Ok::<(), sessions::error::CookieError>(())
    /// ```
    pub fn hash_owners(mut self, key: Key) -> Self {
        self.owner_hash = Some(Arc::new(
            <Hmac<Sha256> as KeyInit>::new_from_slice(&key.bytes)
                .unwrap_or_else(|_| unreachable!("HMAC takes a key of any length")),
        ));
        self
    }

    /// Reads records stored in clear (by the wrapped store before it was wrapped) as they are,
    /// so that turning encryption on logs nobody out; each is sealed at its next save, or all
    /// at once by [`rekey_all`](Self::rekey_all). Off by default: a record in clear could have
    /// been written by anyone who can write to the store. Turn it off once `rekey_all` ran.
    ///
    /// ```
    /// use sessions::store::Encrypted;
    /// use sessions::{Key, MemoryStore};
    /// let store = Encrypted::new(MemoryStore::new(), [Key::from_bytes(1, [7; 32])])?.read_plaintext(true);
    /// # let _ = store;
    /// # Ok::<(), sessions::error::CookieError>(())
    /// ```
    pub fn read_plaintext(mut self, on: bool) -> Self {
        self.read_plaintext = on;
        self
    }

    /// The wrapped store (its own upkeep, its table, its connection).
    ///
    /// ```
    /// use sessions::store::Encrypted;
    /// use sessions::{Key, MemoryStore};
    /// let store = Encrypted::new(MemoryStore::new(), [Key::from_bytes(1, [7; 32])])?;
    /// let _memory: &MemoryStore = store.inner();
    /// # Ok::<(), sessions::error::CookieError>(())
    /// ```
    pub fn inner(&self) -> &S {
        &self.inner
    }

    /// Seals every stored session now with the first key (those sealed with an older key or
    /// format, and with [`read_plaintext`](Self::read_plaintext) those in clear), so that the
    /// older keys can be retired; how many it sealed. A session that a request saves meanwhile
    /// is sealed by that save and skipped here; one that does not open is left as it is (and
    /// logged). Needs a store that can be walked ([`SessionStore::scan`]: SQLite, PostgreSQL,
    /// MySQL, Redis, memory); memcached cannot be (it fails with [`StoreError::Unsupported`]):
    /// there each session is sealed with the first key by its next save, so keep the older keys
    /// until every session sealed with them has been saved again or has ended. [`rekey_all_with`](Self::rekey_all_with) resumes, paces
    /// and reports.
    ///
    /// ```
    /// use sessions::store::Encrypted;
    /// use sessions::{Key, MemoryStore};
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// let store = Encrypted::new(MemoryStore::new(), [Key::from_bytes(2, [2; 32]), Key::from_bytes(1, [1; 32])])?;
    /// assert_eq!(store.rekey_all().await?, 0); // nothing stored yet
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// # }).unwrap();
    /// ```
    pub async fn rekey_all(&self) -> Result<u64, StoreError> {
        self.rekey_all_with(Walk::new()).await
    }

    /// [`rekey_all`](Self::rekey_all) walking as `walk` says: from where an earlier walk stopped
    /// ([`Walk::resume_from`]), paced, reporting its [`Progress`](super::upkeep::Progress)
    /// after every page (the cursor to resume from after a failure or a restart).
    ///
    /// ```
    /// use sessions::store::Encrypted;
    /// use sessions::store::upkeep::Walk;
    /// use sessions::{Key, MemoryStore};
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// let store = Encrypted::new(MemoryStore::new(), [Key::from_bytes(1, [1; 32])])?;
    /// let mut done = false;
    /// store.rekey_all_with(Walk::new().page_size(200).on_progress(|p| done = p.done)).await?;
    /// assert!(done);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// # }).unwrap();
    /// ```
    pub async fn rekey_all_with(&self, walk: Walk<'_>) -> Result<u64, StoreError> {
        let mut resealed = 0;
        let mut walker = walk.start(&self.inner);
        while let Some(page) = walker.next_page().await? {
            for (key, entry) in page.entries {
                let Entry::Live { version, session } = entry else {
                    continue;
                };
                if !self.needs_reseal(&session) {
                    continue;
                }
                let plain = match self.open(&key, session) {
                    Ok(plain) => plain,
                    Err(err) => {
                        tracing::warn!(target: "sessions", session_key = %key, error = %err, "stored session does not open; left as it is");
                        continue;
                    }
                };
                let entry = Entry::Live {
                    version: version + 1,
                    session: self.seal(&key, &plain)?,
                };
                // A save meanwhile sealed it with the first key already.
                if self.inner.swap(&key, Some(version), Some(entry)).await? {
                    resealed += 1;
                }
            }
        }
        if resealed > 0 {
            tracing::info!(target: "sessions", resealed, "stored sessions sealed with the current key");
        }
        Ok(resealed)
    }

    /// Whether a stored session is not sealed with the first key in the current format.
    fn needs_reseal(&self, stored: &Stored) -> bool {
        let Some(envelope) = envelope_of(&stored.record) else {
            return self.read_plaintext;
        };
        let first = self.keys.ids().next().map(u32::to_be_bytes);
        envelope.first() != Some(&seal::FORMAT)
            || envelope.get(1..seal::HEADER_BYTES) != first.as_ref().map(|id| &id[..])
    }

    /// The name the wrapped store keeps for `owner`.
    fn stored_owner(&self, owner: &str) -> String {
        match &self.owner_hash {
            None => owner.to_owned(),
            Some(mac) => {
                let mut mac = Hmac::clone(mac);
                mac.update(owner.as_bytes());
                let digest = mac.finalize().into_bytes();
                URL_SAFE_NO_PAD.encode(&digest[..OWNER_HASH_BYTES])
            }
        }
    }

    /// What the wrapped store keeps for `plain` under `key`: the clear metadata, and the
    /// whole session sealed in one slot.
    fn seal(&self, key: &SessionKey, plain: &Stored) -> Result<Stored, StoreError> {
        let body = blob::encode(&Entry::Live {
            version: 0,
            session: plain.clone(),
        });
        let mut sealing = self.keys.start(body.len()).map_err(sealing_failed)?;
        sealing.buf.extend_from_slice(&body);
        let envelope = sealing.finish(&context(key)).map_err(sealing_failed)?;
        let mut record = Record::new();
        record.insert(Slot::from_parts(
            SEALED_SLOT.into(),
            SEALED_SLOT.into(),
            1,
            SEALED_FORMAT_TAG,
            vec![(SEALED_FIELD.into(), Bytes::from(envelope))],
        ));
        let mut clear = Stored::new(record, plain.deadline);
        clear.last_seen = plain.last_seen;
        clear.owner = plain
            .owner
            .as_deref()
            .map(|owner| Arc::new(Owner::new(self.stored_owner(&owner.name), owner.since)));
        Ok(clear)
    }

    /// The session `stored` (as the wrapped store keeps it under `key`) seals.
    fn open(&self, key: &SessionKey, stored: Stored) -> Result<Stored, StoreError> {
        let Some(envelope) = envelope_of(&stored.record) else {
            if self.read_plaintext {
                return Ok(stored);
            }
            return Err(unreadable(
                "it is stored in clear (see `Encrypted::read_plaintext`)",
            ));
        };
        let mut envelope = envelope.to_vec();
        let range = self
            .keys
            .open(&mut envelope, &context(key))
            .map_err(|err| unreadable(&err.to_string()))?
            .range;
        // The plaintext's bytes, shared (a decoded record's fields are slices of them).
        match blob::decode(Bytes::from(envelope).slice(range))? {
            Entry::Live { session, .. } => Ok(session),
            Entry::Moved { .. } => Err(unreadable("the sealed bytes are not a session")),
        }
    }

    fn open_entry(&self, key: &SessionKey, entry: Entry) -> Result<Entry, StoreError> {
        match entry {
            Entry::Live { version, session } => Ok(Entry::Live {
                version,
                session: self.open(key, session)?,
            }),
            moved @ Entry::Moved { .. } => Ok(moved),
        }
    }

    fn seal_entry(&self, key: &SessionKey, entry: Entry) -> Result<Entry, StoreError> {
        match entry {
            Entry::Live { version, session } => Ok(Entry::Live {
                version,
                session: self.seal(key, &session)?,
            }),
            moved @ Entry::Moved { .. } => Ok(moved),
        }
    }
}

/// The envelope a stored record holds, if it is a sealed one.
fn envelope_of(record: &Record) -> Option<&[u8]> {
    let slot = record.slot(SEALED_SLOT)?;
    (record.slots().len() == 1 && slot.format_tag() == SEALED_FORMAT_TAG)
        .then(|| slot.field(SEALED_FIELD))
        .flatten()
}

/// What a record's envelope is bound to: the label, then the session's key.
fn context(key: &SessionKey) -> [u8; CONTEXT_BYTES] {
    let mut context = [0u8; CONTEXT_BYTES];
    context[..CONTEXT_LABEL.len()].copy_from_slice(CONTEXT_LABEL);
    context[CONTEXT_LABEL.len()..].copy_from_slice(key.digest());
    context
}

/// Bytes of a record's context: the label and the key's 32 bytes.
const CONTEXT_BYTES: usize = CONTEXT_LABEL.len() + 32;

fn unreadable(why: &str) -> StoreError {
    StoreError::Record(RecordError::Malformed(format!(
        "the encrypted session does not open: {why}"
    )))
}

fn sealing_failed(err: SealError) -> StoreError {
    StoreError::Backend(format!("the session could not be sealed: {err}").into())
}

#[async_trait::async_trait]
impl<S: SessionStore> SessionStore for Encrypted<S> {
    async fn load(&self, key: &SessionKey) -> Result<Option<Entry>, StoreError> {
        match self.inner.load(key).await? {
            Some(entry) => self.open_entry(key, entry).map(Some),
            None => Ok(None),
        }
    }

    /// The wrapped store's read (a replica's copy, where it has them), opened like `load`'s.
    async fn load_for_read(
        &self,
        key: &SessionKey,
        mark: crate::store::ReadMark,
    ) -> Result<Option<Entry>, StoreError> {
        match self.inner.load_for_read(key, mark).await? {
            Some(entry) => self.open_entry(key, entry).map(Some),
            None => Ok(None),
        }
    }

    fn read_mark_ttl(&self) -> Option<std::time::Duration> {
        self.inner.read_mark_ttl()
    }

    async fn swap(
        &self,
        key: &SessionKey,
        current: Option<u64>,
        new: Option<Entry>,
    ) -> Result<bool, StoreError> {
        let new = new.map(|entry| self.seal_entry(key, entry)).transpose()?;
        self.inner.swap(key, current, new).await
    }

    // `update` stays the trait's own (edit the caller's copy, seal it, swap it in): the
    // wrapped store's in-place edit would edit the sealed form.

    async fn owned_by(&self, owner: &str) -> Result<Vec<(SessionKey, Entry)>, StoreError> {
        let found = self.owned_entries(owner).await?;
        for (key, err) in &found.unreadable {
            tracing::warn!(target: "sessions", session_key = %key, error = %err, "a session of the owner does not open; not listed");
        }
        Ok(found.entries)
    }

    async fn owned_entries(&self, owner: &str) -> Result<OwnedEntries, StoreError> {
        let found = self.inner.owned_entries(&self.stored_owner(owner)).await?;
        let mut owned = OwnedEntries::new(Vec::with_capacity(found.entries.len()));
        owned.unreadable = found.unreadable;
        for (key, entry) in found.entries {
            let version = entry.version();
            match self.open_entry(&key, entry) {
                // A hashed owner may collide: the owner sealed inside decides.
                Ok(entry) if entry.owner() == Some(owner) => owned.entries.push((key, entry)),
                Ok(_) => {}
                // Filed under the owner but not readable here: the owner operations end it
                // by its version (a revocation must not pass over what it cannot read).
                Err(StoreError::Record(err)) => owned.unreadable.push((
                    key,
                    RecordError::Unreadable {
                        version,
                        source: Box::new(err),
                    },
                )),
                Err(err) => return Err(err),
            }
        }
        Ok(owned)
    }

    async fn scan(
        &self,
        cursor: Option<&ScanCursor>,
        limit: usize,
    ) -> Result<ScanPage, StoreError> {
        let mut page = self.inner.scan(cursor, limit).await?;
        let entries = std::mem::take(&mut page.entries);
        for (key, entry) in entries {
            match self.open_entry(&key, entry) {
                Ok(entry) => page.entries.push((key, entry)),
                Err(err) => {
                    tracing::warn!(target: "sessions", session_key = %key, error = %err, "stored session does not open; skipped");
                    page.unreadable += 1;
                }
            }
        }
        Ok(page)
    }

    async fn delete_expired(&self) -> Result<u64, StoreError> {
        self.inner.delete_expired().await
    }

    fn name(&self) -> &'static str {
        self.inner.name()
    }

    fn lists_owners(&self) -> bool {
        self.inner.lists_owners()
    }

    async fn count_live(&self) -> Result<u64, StoreError> {
        self.inner.count_live().await
    }

    async fn has_ended(&self, key: &SessionKey) -> Result<bool, StoreError> {
        self.inner.has_ended(key).await
    }
}
