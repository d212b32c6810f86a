//! The conformance suite every [`SessionStore`] runs (feature `conformance`).
//!
//! Two parts. [`swap`](mod@swap) checks the two things a store does: load an entry exactly as
//! it was written, and compare-and-swap one for another atomically. [`sessions`](mod@sessions)
//! runs the crate's session operations (save, cycle, destroy…) on the store, through races, and
//! checks the promises users rely on: only changed fields are written and concurrent changes to
//! different fields survive, a save never brings back a destroyed session, a login moves the
//! session atomically and a logout ends it wherever the login moved it.
//!
//! Each check creates its own sessions under fresh random ids, so checks can share a store
//! with other data. A failed check panics with a message that names the broken promise:
//! this is test code.
//!
//! ```no_run
//! use sessions::MemoryStore;
//! use sessions::clock::SystemClock;
//! # async fn demo() {
//! sessions::store::conformance::run(MemoryStore::new(), SystemClock).await;
//! # }
//! ```

use std::borrow::Cow;
use std::time::{Duration, SystemTime};

use bytes::Bytes;

use crate::codec::Format;
use crate::expiry::{Clock, Deadline};
use crate::id::{SessionId, SessionKey};
use crate::record::{Record, Slot};
use crate::store::{Entry, SessionStore, Stored};

pub mod sessions;
pub mod swap;
pub mod upkeep;

/// How many concurrent writers the concurrent checks run.
pub const WRITERS: usize = 64;
/// How many saves each writer makes.
pub const WRITES_EACH: usize = 10;

/// Runs every check against `store`; `clock` must be the clock the store expires by.
///
/// The checks' times are whole milliseconds: a store may keep times to the millisecond (the
/// ones on [`blob`](crate::store::blob) do), and entries are compared exactly.
pub async fn run<S: SessionStore + Clone>(store: S, clock: impl Clock) {
    let now = || whole_millis(clock.now());
    swap::round_trip(&store, now()).await;
    swap::create_never_overwrites(&store, now()).await;
    swap::swaps_only_over_the_version_given(&store, now()).await;
    swap::ended_entries_are_absent(&store, now()).await;
    swap::forwarding_marks(&store, now()).await;
    swap::one_swap_wins(&store, now()).await;
    swap::owner_index(&store, now()).await;
    sessions::changes_merge(&store, now()).await;
    sessions::concurrent_distinct_fields(&store, now()).await;
    sessions::rewrites_merge(&store, now()).await;
    sessions::saves_never_resurrect(&store, now()).await;
    sessions::expected_revisions(&store, now()).await;
    sessions::cycle_moves(&store, now()).await;
    sessions::cycle_racing_saves(&store, now()).await;
    sessions::destroy_follows_a_cycle(&store, now()).await;
    sessions::destroy_racing_cycles(&store, now()).await;
    upkeep::walk_sees_every_live_entry(&store, now()).await;
    upkeep::sweeping_keeps_live_entries(&store, now()).await;
}

/// `S` with only its `load`, `swap`, `owned_by`, `owned_entries`, `scan` and `delete_expired`: the trait's own `update` (edit a copy, swap
/// it in) instead of `S`'s. A store that overrides [`SessionStore::update`] runs the suite twice,
/// as itself and as `SwapOnly`, so both ways of saving keep every promise.
///
/// ```no_run
/// use sessions::store::conformance::{SwapOnly, run};
/// use sessions::MemoryStore;
/// use sessions::clock::SystemClock;
/// # async fn demo() {
/// run(MemoryStore::new(), SystemClock).await;
/// run(SwapOnly(MemoryStore::new()), SystemClock).await;
/// # }
/// ```
#[derive(Clone, Debug)]
pub struct SwapOnly<S>(pub S);

#[async_trait::async_trait]
impl<S: SessionStore> SessionStore for SwapOnly<S> {
    async fn load(&self, key: &SessionKey) -> Result<Option<Entry>, crate::errors::StoreError> {
        self.0.load(key).await
    }
    async fn swap(
        &self,
        key: &SessionKey,
        current: Option<u64>,
        new: Option<Entry>,
    ) -> Result<bool, crate::errors::StoreError> {
        self.0.swap(key, current, new).await
    }
    async fn owned_by(
        &self,
        owner: &str,
    ) -> Result<Vec<(SessionKey, Entry)>, crate::errors::StoreError> {
        self.0.owned_by(owner).await
    }
    async fn owned_entries(
        &self,
        owner: &str,
    ) -> Result<crate::store::OwnedEntries, crate::errors::StoreError> {
        self.0.owned_entries(owner).await
    }
    async fn scan(
        &self,
        cursor: Option<&crate::store::ScanCursor>,
        limit: usize,
    ) -> Result<crate::store::ScanPage, crate::errors::StoreError> {
        self.0.scan(cursor, limit).await
    }
    async fn delete_expired(&self) -> Result<u64, crate::errors::StoreError> {
        self.0.delete_expired().await
    }

    fn name(&self) -> &'static str {
        self.0.name()
    }
}

/// `time` cut to the millisecond.
fn whole_millis(time: SystemTime) -> SystemTime {
    let ms = time
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    SystemTime::UNIX_EPOCH + Duration::from_millis(ms)
}

fn fresh_key() -> SessionKey {
    match SessionId::generate() {
        Ok(id) => id.key(),
        Err(err) => panic!("conformance: no random id: {err}"),
    }
}

/// An hour from `now`, in whole milliseconds: what a store promises to keep exactly.
fn deadline(now: SystemTime) -> Deadline {
    let since = now
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default();
    let now = SystemTime::UNIX_EPOCH + Duration::from_millis(since.as_millis() as u64);
    Deadline {
        created_at: now,
        expires_at: now + Duration::from_secs(3600),
    }
}

fn slot(name: &'static str, fields: &[(&'static str, &'static str)]) -> Slot {
    Slot::new(
        name,
        1,
        Format::Json,
        fields
            .iter()
            .map(|(n, v)| (Cow::Borrowed(*n), Bytes::from_static(v.as_bytes())))
            .collect(),
    )
}

fn record(slots: Vec<Slot>) -> Record {
    let mut record = Record::new();
    for slot in slots {
        record.insert(slot.with_revision(1));
    }
    record
}

fn live(version: u64, record: Record, now: SystemTime) -> Entry {
    Entry::Live {
        version,
        session: Stored::new(record, deadline(now)),
    }
}

async fn must_swap<S: SessionStore>(
    store: &S,
    key: &SessionKey,
    current: Option<u64>,
    new: Option<Entry>,
    what: &str,
) {
    match store.swap(key, current, new).await {
        Ok(true) => {}
        Ok(false) => panic!("conformance: {what}: the swap wrote nothing"),
        Err(err) => panic!("conformance: {what}: swap failed: {err}"),
    }
}

async fn must_load<S: SessionStore>(store: &S, key: &SessionKey, what: &str) -> Option<Entry> {
    match store.load(key).await {
        Ok(entry) => entry,
        Err(err) => panic!("conformance: {what}: load failed: {err}"),
    }
}

/// The live session under `key`; panics when there is none.
async fn must_live<S: SessionStore>(store: &S, key: &SessionKey, what: &str) -> (u64, Stored) {
    match must_load(store, key, what).await {
        Some(Entry::Live { version, session }) => (version, session),
        Some(Entry::Moved { .. }) => panic!("conformance: {what}: found a forwarding mark"),
        None => panic!("conformance: {what}: the session is missing"),
    }
}

fn field<'a>(record: &'a Record, slot: &str, field: &str) -> Option<&'a [u8]> {
    record.slot(slot)?.field(field)
}
