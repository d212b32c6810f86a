//! Store upkeep written once: walking a store ([`SessionStore::scan`]), migrating every stored
//! slot of a type ([`migrate_all`]), sweeping ended sessions ([`spawn_sweeper`] on
//! [`SessionStore::delete_expired`]), and the conversions the SQL stores share.
//!
//! A store of your own gets all of it by writing what only it can: `scan` (a page of its live
//! entries after a cursor) and `delete_expired` (remove what has ended). [`Upkeep`], implemented
//! for every store, gives it `migrate_all` and `walk`.
//!
//! A walk is resumable and can be rate-limited: [`Walk`] says where to start (a
//! [`ScanCursor`] a previous walk reported), how big a page is, how long to pause between pages,
//! and whom to tell how far it got ([`Progress`], after every page). The census and
//! `Encrypted::rekey_all_with` walk the same way.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::{Entry, SessionStore, StoreError, migrate_session};
use crate::codec::Format;
use crate::errors::RecordError;
use crate::id::SessionKey;
use crate::registry::MigrationReport;
use crate::schema::Session;

/// How many entries a page of a walk asks for unless [`Walk::page_size`] says otherwise.
pub const DEFAULT_PAGE: usize = 500;

/// Where a walk of a store stands: opaque to the caller, meaningful to the store that made it.
/// It serializes (as a string), so a job can save it and resume after a restart.
///
/// ```
/// use sessions::store::upkeep::ScanCursor;
/// let cursor = ScanCursor::new("17");
/// let saved = serde_json::to_string(&cursor).unwrap();
/// assert_eq!(saved, "\"17\"");
/// assert_eq!(serde_json::from_str::<ScanCursor>(&saved).unwrap(), cursor);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ScanCursor(String);

impl ScanCursor {
    /// A cursor holding `position` (what a store writes; a caller only keeps it).
    ///
    /// ```
    /// assert_eq!(sessions::store::upkeep::ScanCursor::new("a/1").as_str(), "a/1");
    /// ```
    pub fn new(position: impl Into<String>) -> Self {
        Self(position.into())
    }

    /// The position as text.
    ///
    /// ```
    /// assert_eq!(sessions::store::upkeep::ScanCursor::new("9").as_str(), "9");
    /// ```
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The error a store answers for a cursor it did not make.
    ///
    /// ```
    /// use sessions::store::upkeep::ScanCursor;
    /// let err = ScanCursor::new("?").not_ours("memory");
    /// assert!(err.to_string().contains("memory"));
    /// ```
    pub fn not_ours(&self, store: &str) -> StoreError {
        StoreError::Record(RecordError::Malformed(format!(
            "scan cursor {:?} was not made by this {store} store",
            self.0
        )))
    }
}

impl std::fmt::Display for ScanCursor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// One page of a walk ([`SessionStore::scan`]).
///
/// ```
/// use sessions::store::upkeep::ScanPage;
/// let last = ScanPage::default();
/// assert!(last.entries.is_empty() && last.next.is_none());
/// ```
#[derive(Debug, Default)]
pub struct ScanPage {
    /// Entries that have not ended (what [`SessionStore::load`] would return for their keys:
    /// live sessions and forwarding marks), with their keys.
    pub entries: Vec<(SessionKey, Entry)>,
    /// Entries of this page that could not be read (they do not decode, or their key is not a
    /// session key): left as they are, counted here (and logged by the store).
    pub unreadable: u64,
    /// The stored size of `entries`, in bytes, when the store knows it without more work.
    pub bytes: Option<u64>,
    /// Where the next page starts; `None` when the walk is complete. A page may be empty and
    /// still have a next one.
    pub next: Option<ScanCursor>,
}

/// How far a walk got, reported after every page.
///
/// ```
/// let progress = sessions::store::upkeep::Progress::default();
/// assert_eq!((progress.pages, progress.seen, progress.done), (0, 0, false));
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Progress {
    /// Pages done.
    pub pages: u64,
    /// Entries seen (readable, not ended), in all pages done.
    pub seen: u64,
    /// Entries that could not be read, in all pages done.
    pub unreadable: u64,
    /// Where to resume ([`Walk::resume_from`]) to go on after the pages done; `None` when the
    /// walk is complete (or has not done a page yet).
    pub cursor: Option<ScanCursor>,
    /// Whether the walk is complete.
    pub done: bool,
}

/// What is told a walk's [`Progress`] (the census and `rekey_all_with` take the same).
pub type OnProgress<'a> = dyn FnMut(&Progress) + Send + 'a;

/// How to walk a store: where to start, how big a page, how long to pause between pages, and
/// whom to tell the progress.
///
/// ```
/// use std::time::Duration;
/// use sessions::store::upkeep::Walk;
/// let mut pages = 0;
/// let walk = Walk::new()
///     .page_size(100)
///     .pause(Duration::from_millis(20))
///     .on_progress(|progress| pages = progress.pages);
/// # drop(walk);
/// ```
pub struct Walk<'a> {
    from: Option<ScanCursor>,
    page_size: usize,
    pause: Duration,
    progress: Option<Box<OnProgress<'a>>>,
}

impl Default for Walk<'_> {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for Walk<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Walk")
            .field("from", &self.from)
            .field("page_size", &self.page_size)
            .field("pause", &self.pause)
            .field("progress", &self.progress.is_some())
            .finish()
    }
}

impl<'a> Walk<'a> {
    /// From the start, [`DEFAULT_PAGE`] entries a page, no pause, nobody told.
    ///
    /// ```
    /// let walk = sessions::store::upkeep::Walk::new();
    /// # drop(walk);
    /// ```
    pub fn new() -> Self {
        Self {
            from: None,
            page_size: DEFAULT_PAGE,
            pause: Duration::ZERO,
            progress: None,
        }
    }

    /// Starts where an earlier walk stopped (its last [`Progress::cursor`]).
    ///
    /// ```
    /// use sessions::store::upkeep::{ScanCursor, Walk};
    /// let walk = Walk::new().resume_from(ScanCursor::new("0"));
    /// # drop(walk);
    /// ```
    pub fn resume_from(mut self, cursor: ScanCursor) -> Self {
        self.from = Some(cursor);
        self
    }

    /// Asks for `entries` entries a page (at least 1; a store may return fewer, or a few more).
    ///
    /// ```
    /// let walk = sessions::store::upkeep::Walk::new().page_size(50);
    /// # drop(walk);
    /// ```
    pub fn page_size(mut self, entries: usize) -> Self {
        self.page_size = entries.max(1);
        self
    }

    /// Waits `pause` between two pages, so a walk of a big store leaves the server to the
    /// app's requests.
    ///
    /// ```
    /// let walk = sessions::store::upkeep::Walk::new().pause(std::time::Duration::from_millis(50));
    /// # drop(walk);
    /// ```
    pub fn pause(mut self, pause: Duration) -> Self {
        self.pause = pause;
        self
    }

    /// Calls `progress` after every page (and once when the walk is complete).
    ///
    /// ```
    /// let walk = sessions::store::upkeep::Walk::new()
    ///     .on_progress(|p| println!("{} pages, resume at {:?}", p.pages, p.cursor));
    /// # drop(walk);
    /// ```
    pub fn on_progress(mut self, progress: impl FnMut(&Progress) + Send + 'a) -> Self {
        self.progress = Some(Box::new(progress));
        self
    }

    /// Starts walking `store`.
    ///
    /// ```
    /// use sessions::MemoryStore;
    /// use sessions::store::upkeep::Walk;
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// let store = MemoryStore::new();
    /// let mut walker = Walk::new().start(&store);
    /// while let Some(page) = walker.next_page().await? {
    ///     for (key, entry) in page.entries { let _ = (key, entry); }
    /// }
    /// assert!(walker.progress().done);
    /// # Ok::<(), sessions::error::StoreError>(())
    /// # }).unwrap();
    /// ```
    pub fn start<S: SessionStore + ?Sized>(self, store: &S) -> Walker<'_, 'a, S> {
        Walker {
            store,
            progress: Progress {
                cursor: self.from.clone(),
                ..Progress::default()
            },
            walk: self,
            handed_out: None,
        }
    }
}

/// A walk under way ([`Walk::start`]): hands out one page at a time, and reports a page done
/// (and pauses) when the next is asked for.
pub struct Walker<'s, 'a, S: ?Sized> {
    store: &'s S,
    walk: Walk<'a>,
    progress: Progress,
    /// The page handed out last: (entries, unreadable, next).
    handed_out: Option<(u64, u64, Option<ScanCursor>)>,
}

impl<S: ?Sized> std::fmt::Debug for Walker<'_, '_, S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Walker")
            .field("walk", &self.walk)
            .field("progress", &self.progress)
            .finish_non_exhaustive()
    }
}

impl<S: SessionStore + ?Sized> Walker<'_, '_, S> {
    /// The next page, or `None` once the walk is complete. The page handed out before counts
    /// as done now: its progress is reported, and the walk pauses before it reads on. An error
    /// ends nothing: the last progress reported holds the cursor to resume from.
    ///
    /// # Errors
    /// What the store's [`scan`](SessionStore::scan) fails with ([`StoreError::Unsupported`]
    /// for a store that cannot be walked).
    pub async fn next_page(&mut self) -> Result<Option<ScanPage>, StoreError> {
        if let Some((seen, unreadable, next)) = self.handed_out.take() {
            self.progress.pages += 1;
            self.progress.seen += seen;
            self.progress.unreadable += unreadable;
            self.progress.done = next.is_none();
            self.progress.cursor = next;
            self.report();
            if self.progress.done {
                return Ok(None);
            }
            if !self.walk.pause.is_zero() {
                tokio::time::sleep(self.walk.pause).await;
            }
        } else if self.progress.done {
            return Ok(None);
        }
        let page = self
            .store
            .scan(self.progress.cursor.as_ref(), self.walk.page_size)
            .await?;
        self.handed_out = Some((
            page.entries.len() as u64,
            page.unreadable,
            page.next.clone(),
        ));
        Ok(Some(page))
    }

    /// How far the walk got (pages done so far).
    pub fn progress(&self) -> &Progress {
        &self.progress
    }

    fn report(&mut self) {
        if let Some(progress) = self.walk.progress.as_mut() {
            progress(&self.progress);
        }
    }
}

/// What every store can do on [`SessionStore::scan`]: implemented for all of them.
///
/// ```
/// use sessions::prelude::*;
/// use sessions::{Format, MemoryStore};
/// use sessions::store::upkeep::Upkeep;
///
/// #[derive(Session, Default)]
/// #[session(name = "cart")]
/// struct Cart { n: u32 }
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// let report = MemoryStore::new().migrate_all::<Cart>(Format::Json).await?;
/// assert_eq!(report.total_migrated(), 0);
/// # Ok::<(), sessions::error::StoreError>(())
/// # }).unwrap();
/// ```
pub trait Upkeep: SessionStore {
    /// [`migrate_all`] on this store.
    fn migrate_all<T: Session>(
        &self,
        format: Format,
    ) -> impl Future<Output = Result<MigrationReport, StoreError>> + Send {
        migrate_all::<T, Self>(self, format)
    }

    /// [`migrate_all_with`] on this store.
    fn migrate_all_with<T: Session>(
        &self,
        format: Format,
        walk: Walk<'_>,
    ) -> impl Future<Output = Result<MigrationReport, StoreError>> + Send {
        migrate_all_with::<T, Self>(self, format, walk)
    }

    /// [`census`](crate::census::census) of this store: live sessions by slot name, version
    /// and codec, with an owner, the oldest, and bytes (see [`Census`](crate::Census)).
    fn census(&self) -> impl Future<Output = Result<crate::Census, StoreError>> + Send {
        crate::census::census(self)
    }

    /// [`census_with`](crate::census::census_with) on this store: paged, paused, resumed and
    /// reported as `walk` says.
    fn census_with(
        &self,
        walk: Walk<'_>,
    ) -> impl Future<Output = Result<crate::Census, StoreError>> + Send {
        crate::census::census_with(self, walk)
    }
}

impl<S: SessionStore + ?Sized> Upkeep for S {}

/// Rewrites every stored slot of `T` older than `T::VERSION` in the current version, in
/// `format`, now (instead of on each session's next load): [`migrate_all_with`] from the
/// start, with no pause.
///
/// ```
/// use sessions::prelude::*;
/// use sessions::{Format, MemoryStore};
///
/// #[derive(Session, Default)]
/// #[session(name = "cart")]
/// struct Cart { n: u32 }
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// let store = MemoryStore::new();
/// let report = sessions::store::upkeep::migrate_all::<Cart, _>(&store, Format::Json).await?;
/// assert_eq!(report.failed, 0);
/// # Ok::<(), sessions::error::StoreError>(())
/// # }).unwrap();
/// ```
pub async fn migrate_all<T: Session, S: SessionStore + ?Sized>(
    store: &S,
    format: Format,
) -> Result<MigrationReport, StoreError> {
    migrate_all_with::<T, S>(store, format, Walk::new()).await
}

/// Walks `store` as `walk` says and migrates every stored slot of `T` older than
/// `T::VERSION`, one session at a time with [`migrate_session`] (a compare-and-swap: a
/// request's concurrent change is never lost). Slots of a newer version, slots and entries
/// that do not decode are counted as failed and left as they are; ended sessions are skipped.
///
/// # Errors
/// [`StoreError::Unsupported`] for a store that cannot be walked; a backend failure ends the
/// walk (the last [`Progress`] reported says where to resume).
///
/// ```
/// use sessions::prelude::*;
/// use sessions::{Format, MemoryStore};
/// use sessions::store::upkeep::{Walk, migrate_all_with};
///
/// #[derive(Session, Default)]
/// #[session(name = "cart")]
/// struct Cart { n: u32 }
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// let store = MemoryStore::new();
/// let mut last = None;
/// let walk = Walk::new().page_size(100).on_progress(|p| last = Some(p.clone()));
/// migrate_all_with::<Cart, _>(&store, Format::Json, walk).await?;
/// assert!(last.unwrap().done);
/// # Ok::<(), sessions::error::StoreError>(())
/// # }).unwrap();
/// ```
pub async fn migrate_all_with<T: Session, S: SessionStore + ?Sized>(
    store: &S,
    format: Format,
    walk: Walk<'_>,
) -> Result<MigrationReport, StoreError> {
    let mut report = MigrationReport::default();
    let mut walker = walk.start(store);
    while let Some(page) = walker.next_page().await? {
        report.failed += page.unreadable;
        for (key, entry) in page.entries {
            let Entry::Live { session, .. } = &entry else {
                continue;
            };
            match session.record.slot(T::NAME) {
                None => continue,
                Some(slot) if slot.type_tag() == T::NAME && slot.version() == T::VERSION => {
                    report.current += 1;
                    continue;
                }
                Some(_) => {}
            }
            match migrate_session::<T, S>(store, &key, format, &mut report).await {
                Ok(()) => {}
                Err(StoreError::Record(err)) => {
                    tracing::warn!(target: "sessions::migration", session_key = %key, error = %err, "stored session does not decode; it is left as it is");
                    report.failed += 1;
                }
                Err(err) => return Err(err),
            }
        }
    }
    if report.total_migrated() > 0 || report.failed > 0 {
        tracing::info!(
            target: "sessions::migration",
            session_type = T::NAME,
            migrated = report.total_migrated(),
            current = report.current,
            failed = report.failed,
            "eager migration done"
        );
    }
    Ok(report)
}

/// Runs [`SessionStore::delete_expired`] every `interval` (at least 1 ms) in a background task,
/// on the store `store()` hands out, until it hands out none (the store was dropped or
/// closed), the store says it cannot ([`StoreError::Unsupported`]), or the handle is aborted.
/// Other failures are logged with `tracing` and retried at the next tick; the task never
/// panics. The store is held only while a sweep runs. Call it inside a Tokio runtime.
///
/// ```
/// use std::sync::Arc;
/// use std::time::Duration;
/// use sessions::MemoryStore;
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// let store = Arc::new(MemoryStore::new());
/// let weak = Arc::downgrade(&store);
/// let sweeper = sessions::store::upkeep::spawn_sweeper("memory", Duration::from_secs(60), move || weak.upgrade());
/// drop(store); // the sweeper stops at its next tick
/// # sweeper.abort();
/// # });
/// ```
pub fn spawn_sweeper<S, F>(
    name: &'static str,
    interval: Duration,
    mut store: F,
) -> tokio::task::JoinHandle<()>
where
    S: SessionStore,
    F: FnMut() -> Option<S> + Send + 'static,
{
    let interval = interval.max(Duration::from_millis(1));
    tokio::spawn(async move {
        let mut ticks = tokio::time::interval(interval);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            let Some(store) = store() else {
                tracing::debug!(target: "sessions", store = name, "session store dropped or closed; the sweeper stops");
                return;
            };
            match store.delete_expired().await {
                Ok(0) => {}
                Ok(removed) => {
                    tracing::debug!(target: "sessions", store = name, removed, "ended sessions removed");
                }
                Err(StoreError::Unsupported(what)) => {
                    tracing::warn!(target: "sessions", store = name, "this store cannot {what}; the sweeper stops");
                    return;
                }
                Err(err) => {
                    tracing::warn!(target: "sessions", store = name, error = %err, "sweeping ended sessions failed; retrying at the next tick");
                }
            }
            // The `sessions_live` gauge, where the store counts cheaply (feature `metrics`).
            if crate::metrics::recording()
                && let Ok(live) = store.count_live().await
            {
                crate::metrics::live(store.name(), live);
            }
        }
    })
}

#[cfg(any(feature = "sqlite", feature = "postgres", feature = "mysql"))]
pub(crate) mod sql;

#[cfg(test)]
mod tests;
