//! [`Census`]: what a store holds — live sessions by slot name, stored version and codec,
//! sessions with an owner, the oldest live session, and bytes — counted in one walk of the
//! store ([`SessionStore::scan`], paged, resumable, rate-limited, with progress).
//!
//! # When may I delete `CartV1`?
//!
//! When no stored session can still hold a version-1 cart, and none can arrive:
//!
//! 1. every instance of the app runs code whose `Cart` is version 2 or later (so nothing writes
//!    a version-1 cart any more: the older code is gone, and no rollback to it is planned);
//! 2. the census shows no `cart` slot at version 1: `census.sessions_of("cart", 1) == 0`. Old
//!    slots go away as their sessions load them (each is migrated and written back) or end; to
//!    be done sooner, run [`migrate_all`](crate::store::upkeep::migrate_all) first;
//! 3. and it shows no unreadable entries you cannot explain (an entry the store cannot decode
//!    is counted in [`Census::unreadable`], not by version).
//!
//! Then `#[session(migrate_from = CartV1)]` and `impl From<CartV1> for Cart` can go: a session
//! that still held one would only start afresh (its cart, not the whole session), never panic.
//!
//! ```
//! use sessions::prelude::*;
//! use sessions::Census;
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! let store = MemoryStore::new();
//! let census: Census = store.census().await?;
//! assert_eq!(census.sessions, 0);
//! assert_eq!(census.sessions_of("cart", 1), 0); // no version-1 cart left
//! # Ok::<(), sessions::error::StoreError>(())
//! # }).unwrap();
//! ```

use std::collections::BTreeMap;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::codec::Format;
use crate::record::Slot;
use crate::store::upkeep::{ScanPage, Walk};
use crate::store::{Entry, SessionStore, StoreError, stored_size};

/// What a store holds, counted in one walk ([`census`], `SessionLayer::census()`,
/// `store.census()` through [`Upkeep`](crate::store::Upkeep)).
///
/// Its `Debug` shows every count as a plain number, and the oldest session's creation time in
/// seconds since the Unix epoch:
///
/// ```
/// let census = sessions::Census::default();
/// assert_eq!(
///     format!("{census:?}"),
///     "Census { sessions: 0, with_owner: 0, moved: 0, unreadable: 0, bytes: 0, oldest_created_unix: None, slots: [] }"
/// );
/// ```
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Census {
    /// Live sessions.
    pub sessions: u64,
    /// Live sessions bound to an owner (`#[session(owner)]`).
    pub with_owner: u64,
    /// Forwarding marks: where a login moved a session from (they end five minutes after it).
    pub moved: u64,
    /// Entries the store could not decode (left as they are; see the store's log).
    pub unreadable: u64,
    /// The bytes the live sessions take: the store's own figure when it has one for free,
    /// else the names and values of their fields.
    pub bytes: u64,
    /// When the oldest live session was created.
    pub oldest_created: Option<SystemTime>,
    /// Slots by name, stored version and codec, in that order.
    pub slots: Vec<SlotCount>,
}

/// The live sessions holding a slot of one name, version and codec (see [`Census::slots`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct SlotCount {
    /// The slot's stored name (`cart`).
    pub name: String,
    /// The version it is stored at.
    pub version: u32,
    /// The codec its fields are in (`json`, `bincode`, …; `tag N` for one this build does not
    /// know).
    pub codec: String,
    /// How many live sessions hold it.
    pub sessions: u64,
    /// The bytes of its fields' names and values, over those sessions.
    pub bytes: u64,
}

impl std::fmt::Debug for Census {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let oldest = self.oldest_created.map(|at| {
            at.duration_since(UNIX_EPOCH)
                .map_or(0, |since| since.as_secs())
        });
        f.debug_struct("Census")
            .field("sessions", &self.sessions)
            .field("with_owner", &self.with_owner)
            .field("moved", &self.moved)
            .field("unreadable", &self.unreadable)
            .field("bytes", &self.bytes)
            .field("oldest_created_unix", &oldest)
            .field("slots", &self.slots)
            .finish()
    }
}

impl Census {
    /// How many live sessions hold a slot `name` stored at `version` (in any codec).
    ///
    /// ```
    /// assert_eq!(sessions::Census::default().sessions_of("cart", 1), 0);
    /// ```
    pub fn sessions_of(&self, name: &str, version: u32) -> u64 {
        self.slots
            .iter()
            .filter(|slot| slot.name == name && slot.version == version)
            .map(|slot| slot.sessions)
            .sum()
    }

    /// Counts one page of a walk into the census: for a job that walks the store itself
    /// ([`Walk::start`]) and keeps the census and the cursor between runs (both serialize), so
    /// that a census of a big store survives a restart.
    ///
    /// ```
    /// use sessions::{Census, MemoryStore};
    /// use sessions::store::upkeep::Walk;
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// let store = MemoryStore::new();
    /// let mut census = Census::default();
    /// let mut walker = Walk::new().page_size(1000).start(&store);
    /// while let Some(page) = walker.next_page().await? {
    ///     census.count_page(&page);
    ///     // save `census` and `walker.progress().cursor` here to resume after a restart
    /// }
    /// assert_eq!(census.sessions, 0);
    /// # Ok::<(), sessions::error::StoreError>(())
    /// # }).unwrap();
    /// ```
    pub fn count_page(&mut self, page: &ScanPage) {
        self.unreadable += page.unreadable;
        let mut slots: BTreeMap<(String, u32, String), (u64, u64)> = self
            .slots
            .drain(..)
            .map(|slot| {
                (
                    (slot.name, slot.version, slot.codec),
                    (slot.sessions, slot.bytes),
                )
            })
            .collect();
        let mut bytes = 0;
        for (_, entry) in &page.entries {
            let Entry::Live { session, .. } = entry else {
                self.moved += 1;
                continue;
            };
            self.sessions += 1;
            if session.owner.is_some() {
                self.with_owner += 1;
            }
            let created = session.deadline.created_at;
            if self.oldest_created.is_none_or(|oldest| created < oldest) {
                self.oldest_created = Some(created);
            }
            bytes += stored_size(&session.record);
            for slot in session.record.slots() {
                let count = slots
                    .entry((slot.name().to_owned(), slot.version(), codec(slot)))
                    .or_default();
                count.0 += 1;
                count.1 += slot_size(slot);
            }
        }
        self.bytes += page.bytes.unwrap_or(bytes);
        self.slots = slots
            .into_iter()
            .map(|((name, version, codec), (sessions, bytes))| SlotCount {
                name,
                version,
                codec,
                sessions,
                bytes,
            })
            .collect();
    }
}

/// The name of a slot's codec.
fn codec(slot: &Slot) -> String {
    match Format::from_tag(slot.format_tag()) {
        Some(format) => format!("{format:?}").to_lowercase(),
        None => format!("tag {}", slot.format_tag()),
    }
}

/// The bytes of a slot's fields' names and values.
fn slot_size(slot: &Slot) -> u64 {
    slot.fields()
        .map(|(name, bytes)| (name.len() + bytes.len()) as u64)
        .sum()
}

/// Counts what `store` holds, in one walk from the start with no pause: [`census_with`] with
/// [`Walk::new`].
///
/// ```
/// use sessions::MemoryStore;
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// let census = sessions::census::census(&MemoryStore::new()).await?;
/// assert_eq!(census.sessions, 0);
/// # Ok::<(), sessions::error::StoreError>(())
/// # }).unwrap();
/// ```
///
/// # Errors
/// [`StoreError::Unsupported`] for a store that cannot be walked; what the store fails with.
pub async fn census<S: SessionStore + ?Sized>(store: &S) -> Result<Census, StoreError> {
    census_with(store, Walk::new()).await
}

/// Counts what `store` holds, walking it as `walk` says: pages of [`Walk::page_size`], a
/// [`Walk::pause`] between them on a big store, [`Walk::on_progress`] told after every page,
/// from [`Walk::resume_from`] (the census then counts only what it walks: a job that must
/// survive a restart keeps its census too, with [`Census::count_page`]).
///
/// ```
/// use std::time::Duration;
/// use sessions::MemoryStore;
/// use sessions::store::upkeep::Walk;
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// let mut pages = 0;
/// let walk = Walk::new()
///     .page_size(500)
///     .pause(Duration::from_millis(10))
///     .on_progress(|progress| pages = progress.pages);
/// let census = sessions::census::census_with(&MemoryStore::new(), walk).await?;
/// assert_eq!((census.sessions, pages), (0, 1));
/// # Ok::<(), sessions::error::StoreError>(())
/// # }).unwrap();
/// ```
///
/// # Errors
/// [`StoreError::Unsupported`] for a store that cannot be walked; what the store fails with
/// (the last progress reported holds the cursor to resume from).
pub async fn census_with<S: SessionStore + ?Sized>(
    store: &S,
    walk: Walk<'_>,
) -> Result<Census, StoreError> {
    let mut census = Census::default();
    let mut walker = walk.start(store);
    while let Some(page) = walker.next_page().await? {
        census.count_page(&page);
    }
    Ok(census)
}
