//! A cookie store's revocation list, kept in any server-side store. Cookie sessions have no
//! server state of their own; this is how they end when they are ended:
//!
//! * **by id** (`destroy()`, `cycle_id()`, a change of owner): an entry under the cookie's id,
//!   kept until the cookie's horizon (the latest end of any cookie of that id) and no longer;
//! * **by owner** (`revoke_owner`, `revoke_others`): per owner, the instant before which its
//!   cookies no longer open;
//! * **the cap** (`max_sessions_per_owner`): the same owner entry lists the ids of the owner's
//!   cookies (when each was bound, its horizon) and marks the ones the cap ended; listings go
//!   at their horizon.
//!
//! Opening a cookie reads its id's entry, and its owner's when it has one (both at once).
//! Listing an owner's cookie sessions stays impossible: they live in browsers.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use sha2::{Digest, Sha256};

use super::{CookieId, CookieStore, ID_BYTES, Stamp, from_unix_millis, to_millis, unix_millis};
use crate::codec::Format;
use crate::expiry::Deadline;
use crate::id::SessionKey;
use crate::record::{Record, Slot};
use crate::store::{Entry, SessionStore, StoreError, Stored};

/// How long a revocation of an owner is kept when the store is not told: longer than a browser
/// keeps any cookie (RFC 6265bis caps `Max-Age` at 400 days), so every cookie sealed before it
/// has expired by the time it goes.
const KEEP_FOR: Duration = Duration::from_secs(400 * 24 * 3600);

/// The slot of an owner entry that lists the owner's cookies.
const LISTED: &str = "cookies";

/// Where the revocations live.
#[derive(Clone)]
pub(super) struct Revocations {
    store: Arc<dyn SessionStore>,
    keep_for: Duration,
}

/// Whether an opened cookie was revoked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Revoked {
    /// It was not.
    No,
    /// Its owner's cookies sealed before this instant were revoked (`revoke_owner`).
    ByOwner(SystemTime),
    /// Its id was revoked (a logout, a login), or the cap on its owner's sessions ended it.
    Yes,
}

/// What a cookie's revocation state says, read at once: whether it was revoked, and the
/// horizon its owner's list holds for it (`None`: not listed).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Check {
    pub(crate) revoked: Revoked,
    listed_until: Option<SystemTime>,
}

/// A seal about to be made, as [`CookieStore::prepare`] needs it.
#[derive(Debug)]
pub(crate) struct Sealing<'a> {
    /// The stamp of the cookie the request opened (none: it carried none, or none opened).
    pub(crate) old: Option<&'a Stamp>,
    /// The session the cookie carried ends here (`destroy()`, then a new session is sealed).
    pub(crate) destroyed: bool,
    /// `cycle_id()` ran: the cookie gets a new id.
    pub(crate) cycled: bool,
    /// The owner the record names now.
    pub(crate) owner: Option<Box<str>>,
    /// The end of the cookie to seal.
    pub(crate) expires_at: SystemTime,
    /// The layer's cap on an owner's sessions.
    pub(crate) cap: Option<usize>,
    /// The instant of this request's own `revoke_others` (it does not revoke this cookie).
    pub(crate) own_revocation: Option<SystemTime>,
    pub(crate) now: SystemTime,
}

/// The key an owner's entry is stored under (a hash: the store holds no owner names).
fn owner_key(owner: &str) -> SessionKey {
    let mut hash = Sha256::new();
    hash.update(b"sessions/revoked-cookies:");
    hash.update(owner.as_bytes());
    SessionKey::from_digest(hash.finalize().into())
}

/// The key a cookie id's revocation is stored under.
fn id_key(id: &CookieId) -> SessionKey {
    let mut hash = Sha256::new();
    hash.update(b"sessions/revoked-cookie-id:");
    hash.update(id);
    SessionKey::from_digest(hash.finalize().into())
}

/// One cookie listed under its owner.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Listing {
    id: CookieId,
    bound_at: SystemTime,
    horizon: SystemTime,
    /// The cap ended it: it no longer opens.
    ended: bool,
}

/// An owner's entry, read.
struct OwnerEntry {
    version: Option<u64>,
    /// Cookies of the owner sealed before this no longer open (`UNIX_EPOCH`: none).
    not_before: SystemTime,
    /// When the entry may go.
    end: SystemTime,
    listed: Vec<Listing>,
}

impl OwnerEntry {
    fn read(entry: Option<Entry>) -> OwnerEntry {
        match entry {
            Some(Entry::Live { version, session }) => OwnerEntry {
                version: Some(version),
                not_before: session.deadline.created_at,
                end: session.deadline.expires_at,
                listed: listings(&session.record),
            },
            _ => OwnerEntry {
                version: None,
                not_before: UNIX_EPOCH,
                end: UNIX_EPOCH,
                listed: Vec::new(),
            },
        }
    }

    /// The entry to write: one version on, kept as long as its revocation or its latest listing.
    fn written(&self) -> Entry {
        let end = self
            .listed
            .iter()
            .map(|listing| listing.horizon)
            .fold(self.end, SystemTime::max);
        let fields = self
            .listed
            .iter()
            .map(|listing| {
                let mut value = Vec::with_capacity(17);
                value.extend_from_slice(&unix_millis(listing.bound_at).to_be_bytes());
                value.extend_from_slice(&unix_millis(listing.horizon).to_be_bytes());
                value.push(u8::from(listing.ended));
                (hex(&listing.id).into(), Bytes::from(value))
            })
            .collect();
        let mut record = Record::new();
        if !self.listed.is_empty() {
            record.insert(Slot::new(LISTED, 1, Format::Json, fields));
        }
        Entry::Live {
            version: self.version.map_or(1, |version| version + 1),
            session: Stored::new(
                record,
                Deadline {
                    created_at: self.not_before,
                    expires_at: end,
                },
            ),
        }
    }

    /// Drops the listings whose cookies have all expired.
    fn prune(&mut self, now: SystemTime) {
        self.listed.retain(|listing| listing.horizon > now);
    }
}

/// The listings of an owner entry's record (an unreadable one is skipped: it only counts for
/// the cap).
fn listings(record: &Record) -> Vec<Listing> {
    let Some(slot) = record.slot(LISTED) else {
        return Vec::new();
    };
    slot.fields()
        .filter_map(|(name, value)| {
            let id = unhex(name)?;
            let (bound_at, rest) = value.split_at_checked(8)?;
            let (horizon, ended) = rest.split_at_checked(8)?;
            Some(Listing {
                id,
                bound_at: from_unix_millis(bound_at).ok()?,
                horizon: from_unix_millis(horizon).ok()?,
                ended: ended.first() == Some(&1),
            })
        })
        .collect()
}

fn hex(id: &CookieId) -> String {
    id.iter().map(|byte| format!("{byte:02x}")).collect()
}

fn unhex(text: &str) -> Option<CookieId> {
    let mut id = [0u8; ID_BYTES];
    if text.len() != 2 * ID_BYTES {
        return None;
    }
    for (index, byte) in id.iter_mut().enumerate() {
        *byte = u8::from_str_radix(text.get(2 * index..2 * index + 2)?, 16).ok()?;
    }
    Some(id)
}

impl CookieStore {
    /// Keeps a revocation list in `store` (any server-side store: the one the app already has),
    /// so that cookie sessions end when they are ended:
    ///
    /// * `destroy()` (logout) revokes the cookie it ends, and `cycle_id()` (login) the one it
    ///   replaces: a copy of either replayed afterwards opens as no session. So does a change
    ///   of the session's owner. The revocation is kept until that cookie's sealed end, and no
    ///   longer.
    /// * `SessionLayer::revoke_owner(owner)` and `SessionHandle::revoke_others()` work: a
    ///   cookie of that owner sealed before the revocation no longer opens.
    /// * `SessionLayer::max_sessions_per_owner(n)` works: each login lists its cookie under
    ///   the owner, and the oldest beyond `n` stop opening.
    ///
    /// Each cookie then carries an id and its owner (sealed). Opening one costs a read of the
    /// list (two when it has an owner, made at once), and so does sealing it anew (a request
    /// of a cookie revoked while it ran must not seal it back to life: it gets a 409). When
    /// the list cannot be read, a request that needs its session is refused (503): a cookie is
    /// never let through unchecked.
    ///
    /// Keep the list in a store that keeps what it is given until its end (SQLite, PostgreSQL,
    /// MySQL, Redis without an evicting `maxmemory-policy`): memcached evicts items under memory
    /// pressure, and an evicted revocation lets its cookie open again until the cookie's end.
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

    /// How long a revocation of an owner is kept (default 400 days, longer than any browser
    /// keeps a cookie): keep it at least as long as your longest cookie lifetime. (A revocation
    /// of one cookie is kept until that cookie's own end.)
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

    fn list(&self, what: &'static str) -> Result<&dyn SessionStore, StoreError> {
        match &self.revocations {
            Some(revocations) => Ok(revocations.store.as_ref()),
            None => Err(StoreError::Unsupported(what)),
        }
    }

    /// From `now` on, no cookie of `owner` sealed before `now` opens. A cookie keeps its
    /// sealing time to the millisecond, so the instant is too: a cookie sealed in the
    /// revocation's own millisecond (the revoking request's own reseal) still opens. The
    /// owner's listed cookies go from the list, but `keep` (the revoking request's own).
    /// Returns the instant stored (a later one kept by an earlier revocation wins).
    pub(crate) async fn revoke(
        &self,
        owner: &str,
        keep: Option<&CookieId>,
        now: SystemTime,
    ) -> Result<SystemTime, StoreError> {
        let now = to_millis(now);
        let store = self.list(
            "revoke cookie sessions without a revocation list: give the CookieStore one with `revocations(store)`",
        )?;
        let keep_for = self.revocations.as_ref().map_or(KEEP_FOR, |r| r.keep_for);
        let key = owner_key(owner);
        loop {
            let mut entry = OwnerEntry::read(store.load(&key).await?);
            entry.not_before = entry.not_before.max(now);
            entry.end = entry.end.max(now + keep_for);
            entry
                .listed
                .retain(|listing| Some(&listing.id) == keep && listing.horizon > now);
            if store
                .swap(&key, entry.version, Some(entry.written()))
                .await?
            {
                return Ok(entry.not_before);
            }
        }
    }

    /// Whether the cookie of `stamp` was revoked: by its id, by its owner, or by the cap.
    pub(crate) async fn check(&self, stamp: &Stamp) -> Result<Check, StoreError> {
        let Some(revocations) = &self.revocations else {
            return Ok(Check {
                revoked: Revoked::No,
                listed_until: None,
            });
        };
        let store = revocations.store.as_ref();
        let id_key = id_key(&stamp.id);
        let by_id = store.load(&id_key);
        let by_owner = async {
            match &stamp.owner {
                Some(owner) => store.load(&owner_key(owner)).await,
                None => Ok(None),
            }
        };
        let (by_id, by_owner) = tokio::join!(by_id, by_owner);
        let by_id = by_id?;
        let owner = OwnerEntry::read(by_owner?);
        let listing = owner.listed.iter().find(|listing| listing.id == stamp.id);
        let revoked = if by_id.is_some() || listing.is_some_and(|listing| listing.ended) {
            Revoked::Yes
        } else if stamp.sealed_at < owner.not_before {
            Revoked::ByOwner(owner.not_before)
        } else {
            Revoked::No
        };
        Ok(Check {
            revoked,
            listed_until: listing.map(|listing| listing.horizon),
        })
    }

    /// The stamp to seal a cookie with (`None`: the session was revoked while the request ran,
    /// and must not be sealed back to life). The cookie the request opened is ended when the
    /// session ends or changes hands here (`destroy()`, `cycle_id()`, another owner): the new
    /// cookie gets a new id. Under a cap, a login lists the cookie under its owner (ending the
    /// oldest beyond the cap), and a reseal that moves the cookie's end moves its listing's.
    pub(crate) async fn prepare(&self, sealing: Sealing<'_>) -> Result<Option<Stamp>, StoreError> {
        let Sealing {
            old,
            destroyed,
            cycled,
            owner,
            expires_at,
            cap,
            own_revocation,
            now,
        } = sealing;
        if !self.revokes() {
            return Ok(None);
        }
        let check = match old {
            Some(old) if !destroyed => Some(self.check(old).await?),
            _ => None,
        };
        let revoked_meanwhile = check.is_some_and(|check| match check.revoked {
            Revoked::No => false,
            Revoked::ByOwner(not_before) => Some(not_before) != own_revocation,
            Revoked::Yes => true,
        });
        if revoked_meanwhile {
            return Ok(None);
        }
        let renew = destroyed || cycled || old.is_none_or(|old| old.owner != owner);
        let mut stamp = match old {
            Some(old) if !renew => {
                let mut stamp = old.clone();
                stamp.horizon = stamp.horizon.max(expires_at);
                stamp
            }
            _ => {
                if let Some(old) = old {
                    self.end(old, now).await?;
                }
                Stamp::fresh(owner, expires_at).map_err(|err| StoreError::Backend(Box::new(err)))?
            }
        };
        if let (Some(max), Some(_)) = (cap, &stamp.owner) {
            let listed_until = check.and_then(|check| check.listed_until);
            let stale = listed_until.is_none_or(|until| until < stamp.horizon);
            if !stamp.registered || stale {
                if !self.register(&stamp, max, now).await? {
                    return Ok(None);
                }
                stamp.registered = true;
            }
        }
        Ok(Some(stamp))
    }

    /// Ends the cookie of `stamp` (a logout, or the cookie a login or a change of owner
    /// replaces): its id is revoked until its horizon, and it leaves its owner's list.
    pub(crate) async fn end(&self, stamp: &Stamp, now: SystemTime) -> Result<(), StoreError> {
        let store = self.list("end a cookie session without a revocation list")?;
        let key = id_key(&stamp.id);
        let until = stamp.horizon;
        if until > now {
            loop {
                let current = store.load(&key).await?;
                let version = match &current {
                    Some(entry) if entry.expires_at() >= until => break,
                    Some(entry) => Some(entry.version()),
                    None => None,
                };
                let entry = Entry::Live {
                    version: version.map_or(1, |version| version + 1),
                    session: Stored::new(
                        Record::new(),
                        Deadline {
                            created_at: now,
                            expires_at: until,
                        },
                    ),
                };
                if store.swap(&key, version, Some(entry)).await? {
                    break;
                }
            }
        }
        if let (true, Some(owner)) = (stamp.registered, stamp.owner.as_deref()) {
            let key = owner_key(owner);
            loop {
                let mut entry = OwnerEntry::read(store.load(&key).await?);
                let before = entry.listed.len();
                entry.prune(now);
                entry.listed.retain(|listing| listing.id != stamp.id);
                if entry.version.is_none() || entry.listed.len() == before {
                    break;
                }
                if store
                    .swap(&key, entry.version, Some(entry.written()))
                    .await?
                {
                    break;
                }
            }
        }
        Ok(())
    }

    /// Lists the cookie of `stamp` under its owner (a login; a listed one has its horizon
    /// moved), and ends the owner's oldest listed cookies beyond `max`. Returns whether this
    /// one is among the `max` kept (a login racing newer ones may not be).
    async fn register(
        &self,
        stamp: &Stamp,
        max: usize,
        now: SystemTime,
    ) -> Result<bool, StoreError> {
        let store = self.list(
            "cap the sessions of an owner without a revocation list: give the CookieStore one with `revocations(store)`",
        )?;
        let Some(owner) = stamp.owner.as_deref() else {
            return Ok(true);
        };
        let key = owner_key(owner);
        loop {
            let mut entry = OwnerEntry::read(store.load(&key).await?);
            entry.prune(now);
            // Listed a quarter of its remaining life past its horizon, so that the reseals that
            // move its end (every write moves it a little) need not write here each time.
            let slack = stamp.horizon.duration_since(now).unwrap_or_default() / 4;
            let horizon = stamp.horizon + slack;
            match entry
                .listed
                .iter_mut()
                .find(|listing| listing.id == stamp.id)
            {
                Some(listing) if listing.ended => return Ok(false),
                Some(listing) => listing.horizon = listing.horizon.max(horizon),
                None => entry.listed.push(Listing {
                    id: stamp.id,
                    bound_at: to_millis(now),
                    horizon,
                    ended: false,
                }),
            }
            // Newest login first (ties by id, so two racing logins agree); the cap keeps `max`.
            let mut live: Vec<(SystemTime, CookieId)> = entry
                .listed
                .iter()
                .filter(|listing| !listing.ended)
                .map(|listing| (listing.bound_at, listing.id))
                .collect();
            live.sort_by(|a, b| b.cmp(a));
            let ended: Vec<CookieId> = live.iter().skip(max).map(|(_, id)| *id).collect();
            for listing in &mut entry.listed {
                if ended.contains(&listing.id) {
                    listing.ended = true;
                }
            }
            if store
                .swap(&key, entry.version, Some(entry.written()))
                .await?
            {
                return Ok(!ended.contains(&stamp.id));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_written_as_hex_and_read_back() {
        let id = [0xAB; ID_BYTES];
        assert_eq!(unhex(&hex(&id)), Some(id));
        assert_eq!(unhex("zz"), None);
        assert_eq!(unhex(&"g".repeat(32)), None);
    }
}
