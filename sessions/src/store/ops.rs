//! Every operation on a stored session, written once on [`SessionStore::load`] and
//! [`SessionStore::swap`]: create, save (and touch), cycle and destroy.
//!
//! Each one reads an entry (or starts from the one the request loaded), works out the next
//! entry, and swaps it in over the version it read; when another write got there first, the
//! swap writes nothing and the operation reads again and starts over. So every operation is
//! atomic in every store, and a change is always made on top of what is stored now, never on
//! top of what a request saw earlier.
//!
//! `cycle` files the session under its new key first (nobody knows that key yet), then swaps a
//! forwarding mark ([`Entry::Moved`]) in where it was. A save or destroy that loaded the
//! session before the move follows the mark: the save lands where the session went, the destroy
//! ends it there. A load never follows a mark (the old id must not reach the new session).

mod queue;

use std::time::{Duration, Instant, SystemTime};

use self::queue::Landed;
use super::entry::next_version;
use super::{Edit, Entry, SessionStore, StoreError, Stored};
use crate::codec::Format;
use crate::expiry::Deadline;
use crate::id::{SessionId, SessionKey};
use crate::record::{Record, Slot};
use crate::registry::{MigrationReport, migrate_slot};
use crate::schema::Session;

/// How long the mark a `cycle` leaves forwards saves and destroys to the new key: longer than
/// any request that loaded the session before the move should take to finish.
pub(crate) const MOVED_GRACE: Duration = Duration::from_secs(300);

/// How many forwarding marks an operation follows before it calls the chain broken.
pub(crate) const HOPS: usize = 16;

/// How long an operation keeps trying when other writes keep getting there first.
const RETRY_BUDGET: Duration = Duration::from_secs(3);

/// The attempts of one operation: immediate at first, then with a short, growing, jittered
/// pause, until [`RETRY_BUDGET`] is spent.
struct Attempts {
    started: Option<Instant>,
    count: u32,
}

impl Attempts {
    fn new() -> Self {
        Self {
            started: None,
            count: 0,
        }
    }

    /// Waits before the next attempt; `Err(Contended)` once the budget is spent.
    async fn next(&mut self) -> Result<(), StoreError> {
        self.count += 1;
        if self.count <= 2 {
            return Ok(());
        }
        let started = *self.started.get_or_insert_with(Instant::now);
        if started.elapsed() > RETRY_BUDGET {
            return Err(StoreError::Contended);
        }
        let ceiling = 50u64 << self.count.min(10);
        let jitter = u64::from(jitter_byte()) * ceiling / 255;
        tokio::time::sleep(Duration::from_micros(jitter.max(20))).await;
        Ok(())
    }
}

/// A byte that differs between concurrent retries (so they spread out).
fn jitter_byte() -> u8 {
    let mut byte = [0u8; 1];
    if getrandom::fill(&mut byte).is_err() {
        // Without randomness the retries still make progress, only less evenly spread.
        byte[0] = 128;
    }
    byte[0]
}

/// What a save found.
#[derive(Debug)]
pub(crate) enum Saved {
    /// Written: the session as it is stored now, its entry's version, and where it is stored
    /// when that is no longer the key the save was asked for (it followed a `cycle`).
    Saved {
        session: Stored,
        version: u64,
        moved_to: Option<Box<SessionKey>>,
    },
    /// No live session (destroyed, expired, or never stored): nothing was written.
    Missing,
}

/// What `cycle` did.
#[derive(Debug)]
pub(crate) enum Cycled {
    /// The session lives under the new key now.
    Moved { session: Stored, version: u64 },
    /// Another `cycle` moved the session first: the change was saved where it went, and no new
    /// id was issued (the client gets the other move's id).
    Followed {
        session: Stored,
        version: u64,
        at: SessionKey,
    },
    /// No live session: nothing was written.
    Missing,
}

/// Files a new session of `record`, ending at `deadline`, under a fresh id, and returns the
/// id: for a job or a test that sets a session up outside a request.
///
/// ```
/// use std::time::{Duration, SystemTime};
/// use sessions::{MemoryStore, SessionStore};
/// use sessions::store::{Deadline, Record};
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let store = MemoryStore::new();
/// let now = SystemTime::now();
/// let deadline = Deadline { created_at: now, expires_at: now + Duration::from_secs(60) };
/// let id = sessions::store::create_session(&store, Record::new(), deadline).await.unwrap();
/// assert!(store.load(&id.key()).await.unwrap().is_some());
/// # });
/// ```
pub async fn create_session<S: SessionStore + ?Sized>(
    store: &S,
    record: Record,
    deadline: Deadline,
) -> Result<SessionId, StoreError> {
    let mut session = Stored::new(record, deadline);
    session.last_seen = deadline.created_at;
    for _ in 0..3 {
        let id = SessionId::generate().map_err(StoreError::backend)?;
        match create(store, &id.key(), session.clone()).await {
            Err(StoreError::Collision) => continue,
            Err(err) => return Err(err),
            Ok(()) => return Ok(id),
        }
    }
    Err(StoreError::Collision)
}

/// Files a new session under `key`; [`StoreError::Collision`] when the key is taken.
pub(crate) async fn create<S: SessionStore + ?Sized>(
    store: &S,
    key: &SessionKey,
    mut session: Stored,
) -> Result<(), StoreError> {
    // A stored slot never looks absent to optimistic concurrency.
    session.record = session.record.stored_at_least_once();
    let entry = Entry::Live {
        version: 1,
        session,
    };
    if store.swap(key, None, Some(entry)).await? {
        Ok(())
    } else {
        Err(StoreError::Collision)
    }
}

/// Saves the live session under `key`: `edit` changes the stored one.
///
/// `base` is the entry the request loaded, tried first (most saves write over it at once); if
/// another write came in between, the save reads the entry again and runs `edit` again on it.
/// A forwarding mark is followed. `edit` may fail (a change that no longer fits): nothing of it
/// is written then. The saves of one key waiting in this process are combined into one write
/// (see [`queue`]): a burst of n saves of one session costs O(n) store work, not O(n²).
pub(crate) async fn save<S: SessionStore + ?Sized>(
    store: &S,
    key: &SessionKey,
    base: Option<Entry>,
    edit: &mut Edit<'_>,
) -> Result<Saved, StoreError> {
    let mut at = key.clone();
    let mut base = base;
    for _ in 0..=HOPS {
        match queue::save_combined(store, &at, base.take(), edit).await? {
            Landed::Saved { session, version } => {
                let moved_to = (at != *key).then(|| Box::new(at));
                return Ok(Saved::Saved {
                    session,
                    version,
                    moved_to,
                });
            }
            Landed::Missing => return Ok(Saved::Missing),
            Landed::Moved(to) => at = to,
        }
    }
    Err(StoreError::Contended)
}

/// Moves the live session under `from` to the new key `to` (`cycle_id`), applying `edit` on
/// the way, and leaves a forwarding mark under `from` until `now + MOVED_GRACE`.
///
/// A session bound to an owner is filed under `to` with a [`MOVING_SLOT`] naming `from`, and
/// the slot is removed once `from` is marked: until then a listing of the owner's sessions
/// shows the session once, under `from` (the id its client holds), and a revocation that ends
/// it there makes this cycle fail rather than move a revoked session (see
/// `session::owners::settle`). A revocation between the mark and the slot's removal ends it
/// under `to`, and the cycle reports it ended (no new id is handed out).
///
/// [`StoreError::Collision`] when `to` is taken (nothing is written then).
pub(crate) async fn cycle<S: SessionStore + ?Sized>(
    store: &S,
    from: &SessionKey,
    to: &SessionKey,
    base: Option<Entry>,
    now: SystemTime,
    edit: &mut Edit<'_>,
) -> Result<Cycled, StoreError> {
    let mut current = base;
    // The version of what this cycle filed under `to` so far.
    let mut filed: Option<u64> = None;
    let mut attempts = Attempts::new();
    // Whether `from` is marked: the session lives under `to` from then on.
    let mut marked = false;
    let outcome = loop {
        let entry = match current.take() {
            Some(entry) => Some(entry),
            None => store.load(from).await?,
        };
        let (version, session) = match entry {
            None => break Ok(Cycled::Missing),
            Some(Entry::Moved { to: moved, .. }) => {
                // Another cycle won: this one's change goes where the session went.
                break match save(store, &moved, None, edit).await {
                    Ok(Saved::Saved {
                        session,
                        version,
                        moved_to,
                    }) => Ok(Cycled::Followed {
                        session,
                        version,
                        at: moved_to.map_or(moved, |at| *at),
                    }),
                    Ok(Saved::Missing) => Ok(Cycled::Missing),
                    Err(err) => Err(err),
                };
            }
            Some(Entry::Live { version, session }) => (version, session),
        };
        let mut next = session;
        if let Err(err) = edit(&mut next) {
            break Err(err);
        }
        let moving = next.owner.is_some();
        if moving && let Err(err) = mark_moving(&mut next, from) {
            break Err(err);
        }
        let new_version = match filed.map_or(Ok(1), next_version) {
            Ok(new_version) => new_version,
            Err(err) => break Err(err),
        };
        let entry = Entry::Live {
            version: new_version,
            session: next.clone(),
        };
        // Nobody knows `to` yet, so nothing else writes there: the first swap fails only on a
        // collision, which is reported before anything is written. A later one fails only if
        // a revocation ended what this cycle filed (it ends a moving copy only once `from` is
        // marked, or `from` is gone): the session is ended, not busy.
        match store.swap(to, filed, Some(entry)).await {
            Ok(true) => filed = Some(new_version),
            Ok(false) if filed.is_none() => return Err(StoreError::Collision),
            Ok(false) => break Ok(Cycled::Missing),
            Err(err) => break Err(err),
        }
        let until = (now + MOVED_GRACE).min(next.deadline.expires_at.max(now));
        let mark = match next_version(version) {
            Ok(version) => Entry::Moved {
                version,
                to: to.clone(),
                until,
            },
            Err(err) => break Err(err),
        };
        match store.swap(from, Some(version), Some(mark)).await {
            Ok(true) => {
                marked = true;
                if moving {
                    break Ok(settle_move(store, to, new_version, next).await);
                }
                break Ok(Cycled::Moved {
                    session: next,
                    version: new_version,
                });
            }
            Ok(false) => {}
            Err(err) => break Err(err),
        }
        if let Err(err) = attempts.next().await {
            break Err(err);
        }
    };
    if !marked && let Some(version) = filed {
        // The session did not move: what was filed under `to` goes (nobody can know its key).
        store.swap(to, Some(version), None).await?;
    }
    outcome
}

/// The reserved slot a session bound to an owner carries under its new key while `cycle` moves
/// it there: which key it is moving from (field `from`, the stored key as a JSON string).
pub(crate) const MOVING_SLOT: &str = "__moving";

/// Files in `session` that it is moving from `from`.
fn mark_moving(session: &mut Stored, from: &SessionKey) -> Result<(), StoreError> {
    let from = Format::Json
        .encode(from.as_str())
        .map_err(|err| StoreError::Record(err.into()))?;
    session.record.insert(Slot::new(
        MOVING_SLOT,
        1,
        Format::Json,
        vec![("from".into(), from)],
    ));
    Ok(())
}

/// The key `session` is moving from, if it is a copy `cycle` filed and has not settled yet.
pub(crate) fn moving_from(session: &Stored) -> Option<SessionKey> {
    let from = session.record.slot(MOVING_SLOT)?.field("from")?;
    let text: String = Format::Json.decode(from).ok()?;
    SessionKey::from_stored(text)
}

/// After the mark: removes the [`MOVING_SLOT`] from the session filed under `to` (at
/// `version`, `session`). The session has moved whatever happens here: a revocation that ended
/// it meanwhile makes it [`Cycled::Missing`] (the login hands out no id of a revoked session); a
/// store that fails leaves the slot (a listing copes with it) and the move stands.
async fn settle_move<S: SessionStore + ?Sized>(
    store: &S,
    to: &SessionKey,
    version: u64,
    session: Stored,
) -> Cycled {
    let filed = Entry::Live {
        version,
        session: session.clone(),
    };
    let mut settle = |stored: &mut Stored| -> Result<(), StoreError> {
        stored.record.remove(MOVING_SLOT);
        Ok(())
    };
    match save(store, to, Some(filed), &mut settle).await {
        Ok(Saved::Saved {
            session,
            version,
            moved_to: None,
        }) => Cycled::Moved { session, version },
        Ok(Saved::Saved {
            session,
            version,
            moved_to: Some(at),
        }) => Cycled::Followed {
            session,
            version,
            at: *at,
        },
        Ok(Saved::Missing) => Cycled::Missing,
        Err(err) => {
            tracing::warn!(target: "sessions", error = %err, "a moved session keeps its moving mark (listings settle it)");
            Cycled::Moved { session, version }
        }
    }
}

/// Ends the session under `key`, and wherever `cycle` moved it; ending an absent session is
/// not an error.
///
/// An entry the store cannot read is ended too (a load reads it as nothing, so a logout must
/// not fail on it): swapped away by the version the store says it has. One whose version the
/// store cannot say either (foreign data under the key) is left, and the logout reports the
/// session ended: nothing of it can be loaded.
pub(crate) async fn destroy<S: SessionStore + ?Sized>(
    store: &S,
    key: &SessionKey,
) -> Result<(), StoreError> {
    // The marks passed on the way to the session, removed once it is gone.
    let mut marks: Vec<(SessionKey, u64)> = Vec::new();
    let mut at = key.clone();
    let mut attempts = Attempts::new();
    loop {
        let version = match store.load(&at).await {
            Ok(None) => break,
            Ok(Some(Entry::Moved { version, to, .. })) => {
                if marks.len() >= HOPS {
                    return Err(StoreError::Contended);
                }
                marks.push((std::mem::replace(&mut at, to), version));
                continue;
            }
            Ok(Some(Entry::Live { version, .. })) => version,
            Err(StoreError::Record(err)) => {
                let Some(version) = err.stored_version() else {
                    tracing::warn!(target: "sessions", session_key = %at, error = %err, "the entry to end cannot be read, nor its version: left as it is (nothing of it loads)");
                    break;
                };
                tracing::warn!(target: "sessions", session_key = %at, error = %err, "ending an entry that cannot be read");
                version
            }
            Err(err) => return Err(err),
        };
        if store.swap(&at, Some(version), None).await? {
            break;
        }
        attempts.next().await?;
    }
    for (mark, version) in marks.iter().rev() {
        // A mark that changed meanwhile is left to end by itself: it leads nowhere now.
        store.swap(mark, Some(*version), None).await?;
    }
    Ok(())
}

/// Migrates `T`'s slot of the session under `key` up to `T`'s current version (written in
/// `format`), as one save, and counts what it did in `report`: a store's `migrate_all::<T>()`
/// runs it for every key it holds. A slot that is current already, or that cannot be migrated
/// (a future or unknown version, undecodable data), is left as it is; so is a session that
/// ends meanwhile.
///
/// ```
/// use std::time::{Duration, SystemTime};
/// use sessions::prelude::*;
/// use sessions::Format;
/// use sessions::store::{Deadline, Record, Slot};
/// use sessions::migrate::MigrationReport;
/// #[derive(Session, Default)] #[session(name = "cart", version = 1)] struct CartV1 { n: u32 }
/// #[derive(Session, Default)] #[session(name = "cart", version = 2, migrate_from = CartV1)] struct Cart { n: u64 }
/// impl From<CartV1> for Cart { fn from(v1: CartV1) -> Self { Cart { n: v1.n.into() } } }
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let store = MemoryStore::new();
/// let mut record = Record::new();
/// record.insert(Slot::new("cart", 1, Format::Json, vec![("n".into(), "7".into())]));
/// let now = SystemTime::now();
/// let deadline = Deadline { created_at: now, expires_at: now + Duration::from_secs(60) };
/// let id = sessions::store::create_session(&store, record, deadline).await.unwrap();
/// let mut report = MigrationReport::default();
/// sessions::store::migrate_session::<Cart, _>(&store, &id.key(), Format::Json, &mut report).await.unwrap();
/// assert_eq!(report.migrated[&1], 1);
/// # });
/// ```
pub async fn migrate_session<T: Session, S: SessionStore + ?Sized>(
    store: &S,
    key: &SessionKey,
    format: Format,
    report: &mut MigrationReport,
) -> Result<(), StoreError> {
    // Most sessions need nothing: look before writing.
    let entry = store.load(key).await?;
    let Some(Entry::Live { session, .. }) = &entry else {
        return Ok(());
    };
    let Some(slot) = session.record.slot(T::NAME) else {
        return Ok(());
    };
    match migrate_slot::<T>(slot, format) {
        Ok(Some(_)) => {}
        Ok(None) => {
            report.current += 1;
            return Ok(());
        }
        Err(err) => {
            tracing::warn!(target: "sessions::migration", session_key = %key, error = %err, "stored slot cannot be migrated; left as it is");
            report.failed += 1;
            return Ok(());
        }
    }
    // The version the last run of the edit migrated from (the slot may change under it).
    let mut from = None;
    let saved = save(store, key, entry, &mut |session: &mut Stored| {
        from = None;
        let migrated = match session.record.slot(T::NAME) {
            Some(slot) => match migrate_slot::<T>(slot, format) {
                Ok(Some(migrated)) => {
                    let revision = slot.revision().saturating_add(1);
                    Some((slot.version(), migrated.with_revision(revision)))
                }
                _ => None,
            },
            None => None,
        };
        if let Some((version, slot)) = migrated {
            from = Some(version);
            session.record.insert(slot);
        }
        Ok(())
    })
    .await?;
    match (saved, from) {
        (Saved::Saved { .. }, Some(from)) => {
            *report.migrated.entry(from).or_default() += 1;
            crate::metrics::migrated(T::NAME, from, T::VERSION);
        }
        (Saved::Saved { .. }, None) => report.current += 1,
        (Saved::Missing, _) => {}
    }
    Ok(())
}
