//! A cookie store's revocation list: per owner, the instant before which its cookies no longer
//! open, kept in any server-side store. Cookie sessions have no server state of their own, so
//! this is how `revoke_owner` and `revoke_others` reach them (listing them stays impossible:
//! they live in their browsers).

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use sha2::{Digest, Sha256};

use super::CookieStore;
use crate::expiry::Deadline;
use crate::id::SessionKey;
use crate::record::Record;
use crate::store::{Entry, SessionStore, StoreError, Stored};

/// How long a revocation is kept when the store is not told: longer than a browser keeps any
/// cookie (RFC 6265bis caps `Max-Age` at 400 days), so every cookie sealed before it has
/// expired by the time it goes.
const KEEP_FOR: Duration = Duration::from_secs(400 * 24 * 3600);

/// Where the revocations live.
#[derive(Clone)]
pub(super) struct Revocations {
    store: Arc<dyn SessionStore>,
    keep_for: Duration,
}

/// The key an owner's revocation is stored under (a hash: the store holds no owner names).
fn key_of(owner: &str) -> SessionKey {
    let mut hash = Sha256::new();
    hash.update(b"sessions/revoked-cookies:");
    hash.update(owner.as_bytes());
    SessionKey::from_digest(hash.finalize().into())
}

impl CookieStore {
    /// Keeps a revocation list in `store` (any server-side store: the one the app already has),
    /// so that `SessionLayer::revoke_owner(owner)` and `SessionHandle::revoke_others()` work for
    /// cookie sessions too: a cookie of that owner sealed before the revocation no longer opens.
    /// Each cookie then carries its owner (sealed), and opening a cookie that has one costs a
    /// store read, and so does sealing it anew (a request of a cookie revoked while it ran
    /// must not seal it back to life: it gets a 409). Listing an owner's cookie sessions stays
    /// impossible: they live in browsers.
    ///
    /// ```
    /// use sessions::{CookieStore, Key, MemoryStore};
    /// let store = CookieStore::new([Key::generate(1).unwrap()]).unwrap().revocations(MemoryStore::new());
    /// # let _ = store;
    /// ```
    pub fn revocations(mut self, store: impl SessionStore) -> Self {
        self.revocations = Some(Revocations {
            store: Arc::new(store),
            keep_for: KEEP_FOR,
        });
        self
    }

    /// How long a revocation is kept (default 400 days, longer than any browser keeps a cookie):
    /// keep it at least as long as your longest cookie lifetime.
    ///
    /// ```
    /// use std::time::Duration;
    /// use sessions::{CookieStore, Key, MemoryStore};
    /// let store = CookieStore::new([Key::generate(1).unwrap()])
    ///     .unwrap()
    ///     .revocations(MemoryStore::new())
    ///     .keep_revocations_for(Duration::from_secs(90 * 24 * 3600));
    /// # let _ = store;
    /// ```
    pub fn keep_revocations_for(mut self, keep_for: Duration) -> Self {
        if let Some(revocations) = &mut self.revocations {
            revocations.keep_for = keep_for;
        }
        self
    }

    /// Whether this store keeps a revocation list.
    pub(crate) fn revokes(&self) -> bool {
        self.revocations.is_some()
    }

    /// From `now` on, no cookie of `owner` sealed before `now` opens. A cookie keeps its
    /// sealing time to the millisecond, so the instant is too: a cookie sealed in the
    /// revocation's own millisecond (the revoking request's own reseal) still opens. Returns
    /// the instant stored (a later one kept by an earlier revocation wins).
    pub(crate) async fn revoke(
        &self,
        owner: &str,
        now: SystemTime,
    ) -> Result<SystemTime, StoreError> {
        let now = super::to_millis(now);
        let Some(revocations) = &self.revocations else {
            return Err(StoreError::Unsupported(
                "revoke cookie sessions without a revocation list: give the CookieStore one with `revocations(store)`",
            ));
        };
        let key = key_of(owner);
        let store = revocations.store.as_ref();
        loop {
            let current = store.load(&key).await?;
            let (version, not_before) = match &current {
                Some(Entry::Live { version, session }) => {
                    (Some(*version), session.deadline.created_at.max(now))
                }
                _ => (None, now),
            };
            // The revocation is a record-less entry: `created_at` is its instant.
            let entry = Entry::Live {
                version: version.map_or(1, |v| v + 1),
                session: Stored::new(
                    Record::new(),
                    Deadline {
                        created_at: not_before,
                        expires_at: now + revocations.keep_for,
                    },
                ),
            };
            if store.swap(&key, version, Some(entry)).await? {
                return Ok(not_before);
            }
        }
    }

    /// Whether a cookie of `owner` sealed at `sealed_at` was revoked since.
    pub(crate) async fn is_revoked(
        &self,
        owner: &str,
        sealed_at: SystemTime,
    ) -> Result<bool, StoreError> {
        Ok(self
            .revoked_since(owner)
            .await?
            .is_some_and(|not_before| sealed_at < not_before))
    }

    /// The instant before which `owner`'s cookies no longer open, if they were ever revoked.
    pub(crate) async fn revoked_since(
        &self,
        owner: &str,
    ) -> Result<Option<SystemTime>, StoreError> {
        let Some(revocations) = &self.revocations else {
            return Ok(None);
        };
        Ok(match revocations.store.load(&key_of(owner)).await? {
            Some(Entry::Live { session, .. }) => Some(session.deadline.created_at),
            _ => None,
        })
    }
}
