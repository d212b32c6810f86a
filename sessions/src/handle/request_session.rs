//! [`RequestSession`]: the state the layer and [`SessionHandle`](super::SessionHandle) share for
//! one request: what it carried, the session as loaded, and the changes not saved yet.

use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::OnceCell;

use crate::codec::Format;
use crate::error::{EncodeError, LoadError};
use crate::expiry::{Deadline, Expiry};
use crate::id::SessionId;
use crate::layer::{Backend, Config};
use crate::record::{Changeset, Record, SlotChange};
use crate::schema::Session;
use crate::store::StoreError;
use crate::typed::{SlotSink, Typed};

/// What the request carried.
pub(crate) enum Incoming {
    /// No session cookie or header (or one that was malformed: already logged).
    Nothing,
    /// A well-formed id, for a server-side store.
    Id(SessionId),
    /// A sealed cookie, for the cookie store.
    Token(String),
}

/// The session as loaded (once per request).
pub(crate) struct Loaded {
    /// Whether the store holds this session (false: new, expired, unknown or unreadable).
    pub(crate) exists: bool,
    /// The stored deadline, when it exists.
    pub(crate) deadline: Option<Deadline>,
    /// The cookie was sealed with an older key and must be sealed anew.
    pub(crate) needs_reseal: bool,
}

/// What the handler asked of the session as a whole.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Action {
    Keep,
    Cycle,
    Destroy,
}

/// The mutable part of a request's session.
pub(crate) struct Pending {
    /// The record as loaded (shared with the store: nothing is copied until a change is
    /// applied), plus what [`SessionHandle::save`](super::SessionHandle::save) wrote since.
    loaded: Record,
    /// `loaded` with `changes` applied, made when first asked for after a change.
    pub(super) view: Option<Record>,
    /// The changes to save.
    pub(super) changes: Changeset,
    pub(crate) action: Action,
    /// The id after `cycle_id()`.
    pub(crate) new_id: Option<SessionId>,
    /// The expiry policy of this session, when the handler set one.
    pub(crate) expiry: Option<Expiry>,
    /// Whether the handler saved through [`SessionHandle::save`](super::SessionHandle::save) (the deadline moved).
    pub(crate) saved_in_handler: bool,
    /// A change that could not be encoded: the request must fail rather than lose it.
    pub(crate) encode_error: Option<EncodeError>,
}

impl Pending {
    /// Takes the record `fetch` read; changes made before (if any) apply on top of it.
    pub(super) fn set_loaded(&mut self, record: Record) {
        self.loaded = record;
        self.view = None;
    }

    /// Adds a change to save; the handler's view of the record follows.
    pub(crate) fn push(&mut self, change: SlotChange) {
        self.changes.push(change);
        self.view = None;
    }

    /// Whether any change waits to be saved.
    pub(crate) fn has_changes(&self) -> bool {
        !self.changes.is_empty()
    }

    /// The changes to save, taken; the record keeps showing them.
    pub(crate) fn take_changes(&mut self) -> Changeset {
        self.record();
        std::mem::take(&mut self.changes)
    }

    /// The record as the handler sees it: the loaded one with the request's changes applied.
    /// Only a change makes a copy (the loaded record is shared with the store).
    pub(crate) fn record(&mut self) -> &Record {
        if self.changes.is_empty() {
            return self.view.as_ref().unwrap_or(&self.loaded);
        }
        self.view
            .get_or_insert_with(|| applied(&self.loaded, &self.changes))
    }

    /// At the end of the request: the changes to save and what is left of the record, which
    /// makes the view only if it is asked for (a save of an existing session does not need it).
    pub(crate) fn take_final(&mut self) -> (Changeset, FinalRecord) {
        let record = FinalRecord {
            loaded: std::mem::take(&mut self.loaded),
            view: self.view.take(),
        };
        (std::mem::take(&mut self.changes), record)
    }
}

/// The record a finished request leaves (see [`Pending::take_final`]).
pub(crate) struct FinalRecord {
    loaded: Record,
    /// `loaded` with the request's changes applied, when the handler asked for it already.
    view: Option<Record>,
}

impl FinalRecord {
    /// The record as the handler saw it at the end: `loaded` with `changes` (the changes
    /// [`Pending::take_final`] gave with it) applied.
    pub(crate) fn with(self, changes: &Changeset) -> Record {
        match self.view {
            Some(view) => view,
            None if changes.is_empty() => self.loaded,
            None => applied(&self.loaded, changes),
        }
    }
}

/// `loaded` with `changes` applied. A change that does not fit (it cannot happen for changes
/// made from this record) is logged and left out of the view; it is still saved, and the store
/// refuses it if it does not fit there either.
fn applied(loaded: &Record, changes: &Changeset) -> Record {
    let mut view = loaded.clone();
    if view.apply(changes).is_ok() {
        return view;
    }
    for change in changes.iter() {
        let one: Changeset = std::iter::once(change.clone()).collect();
        if let Err(err) = view.apply(&one) {
            tracing::error!(target: "sessions", session_type = change.slot_name(), error = %err, "change does not fit the request's record");
        }
    }
    view
}

/// A request's session. The layer puts an `Arc` of it into the request's extensions.
pub(crate) struct RequestSession {
    pub(crate) config: Arc<Config>,
    pub(crate) incoming: Incoming,
    loaded: OnceCell<Result<Loaded, Arc<StoreError>>>,
    pending: Mutex<Pending>,
}

impl RequestSession {
    pub(crate) fn new(config: Arc<Config>, incoming: Incoming) -> Self {
        Self {
            config,
            incoming,
            loaded: OnceCell::new(),
            pending: Mutex::new(Pending {
                loaded: Record::new(),
                view: None,
                changes: Changeset::new(),
                action: Action::Keep,
                new_id: None,
                expiry: None,
                saved_in_handler: false,
                encode_error: None,
            }),
        }
    }

    pub(crate) fn pending(&self) -> MutexGuard<'_, Pending> {
        // Every critical section is a few assignments; a panic in one leaves consistent data.
        self.pending
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The loaded state, if a handler asked for it.
    pub(crate) fn loaded(&self) -> Option<&Result<Loaded, Arc<StoreError>>> {
        self.loaded.get()
    }

    /// Loads the session once; later calls return the same answer.
    pub(crate) async fn load(&self) -> Result<&Loaded, Arc<StoreError>> {
        let result = self
            .loaded
            .get_or_init(|| async {
                let (loaded, record) = self.fetch().await?;
                // Changes made before the load (`set_expiry`, `remove`: whole-slot changes
                // that cannot conflict) apply on top of what was stored.
                self.pending().set_loaded(record);
                Ok(loaded)
            })
            .await;
        result.as_ref().map_err(Arc::clone)
    }

    pub(super) async fn fetch(&self) -> Result<(Loaded, Record), Arc<StoreError>> {
        let absent = Loaded {
            exists: false,
            deadline: None,
            needs_reseal: false,
        };
        let config = &self.config;
        match (&config.backend, &self.incoming) {
            (_, Incoming::Nothing) => Ok((absent, Record::new())),
            (Backend::Store(store), Incoming::Id(id)) => match store.load(&id.key()).await {
                Ok(Some(stored)) => Ok((
                    Loaded {
                        exists: true,
                        deadline: Some(stored.deadline),
                        needs_reseal: false,
                    },
                    stored.record,
                )),
                Ok(None) => {
                    tracing::warn!(target: "sessions", session_key = %id.key(), "unknown or expired session id; starting a new session");
                    Ok((absent, Record::new()))
                }
                Err(StoreError::Record(err)) => {
                    tracing::warn!(
                        target: "sessions",
                        session_key = %id.key(),
                        error = %err,
                        "stored session is unreadable; starting a new session (the stored one is left as it is)"
                    );
                    Ok((absent, Record::new()))
                }
                Err(err) => {
                    tracing::error!(target: "sessions", error = %err, "session store failed to load a session");
                    Err(Arc::new(err))
                }
            },
            (Backend::Cookie(cookies), Incoming::Token(token)) => {
                match cookies.open(config.cookie.cookie_name(), token, config.clock.now()) {
                    Ok(opened) => Ok((
                        Loaded {
                            exists: true,
                            deadline: Some(opened.deadline),
                            needs_reseal: opened.needs_reseal,
                        },
                        opened.record,
                    )),
                    Err(err) => {
                        tracing::warn!(target: "sessions", error = %err, "session cookie refused; starting a new session");
                        Ok((absent, Record::new()))
                    }
                }
            }
            // The layer only builds ids for stores and tokens for the cookie store.
            _ => Ok((absent, Record::new())),
        }
    }

    /// Loads `T`'s slot, tied to this request so its changes are saved.
    pub(crate) async fn typed<T: Session>(
        self: &Arc<Self>,
    ) -> Result<Option<Typed<T>>, SessionError> {
        if !self.config.registry.is_registered::<T>() {
            return Err(SessionError::Load(LoadError::NotRegistered {
                name: T::NAME,
                rust_type: std::any::type_name::<T>(),
            }));
        }
        self.load().await.map_err(SessionError::Store)?;
        let mut pending = self.pending();
        let typed = self
            .config
            .registry
            .load::<T>(pending.record())
            .map_err(SessionError::Load)?;
        drop(pending);
        let sink: Arc<dyn SlotSink> = self.clone();
        Ok(typed.map(|typed| typed.with_sink(sink)))
    }

    /// Like [`RequestSession::typed`], with `T::default()` for a new slot.
    pub(crate) async fn typed_or_default<T: Session + Default>(
        self: &Arc<Self>,
    ) -> Result<Typed<T>, SessionError> {
        match self.typed::<T>().await? {
            Some(typed) => Ok(typed),
            None => {
                let sink: Arc<dyn SlotSink> = self.clone();
                Ok(Typed::new(T::default()).with_sink(sink))
            }
        }
    }

    /// The expiry policy of this session: set by the handler, stored with the session, or the layer's.
    pub(crate) fn expiry(&self, pending: &Pending) -> Expiry {
        pending
            .expiry
            .or_else(|| crate::layer::stored_expiry(&pending.loaded))
            .unwrap_or(self.config.expiry)
    }
}

impl SlotSink for RequestSession {
    fn format(&self) -> Format {
        self.config.format
    }

    fn commit(&self, slot: &'static str, changes: Result<Option<SlotChange>, EncodeError>) {
        let mut pending = self.pending();
        match changes {
            Ok(None) => {}
            Ok(Some(change)) => {
                if self.config.optimistic && !pending.changes.expects(slot) {
                    // The revision this request's change was made against: the loaded one.
                    let revision = pending.loaded.revision_of(slot);
                    pending.changes.expect(slot, revision);
                }
                pending.push(change);
            }
            Err(err) => {
                tracing::error!(target: "sessions", error = %err, "session change cannot be encoded; the request will fail");
                pending.encode_error.get_or_insert(err);
            }
        }
    }
}

/// Why a typed slot could not be handed to a handler.
#[derive(Debug, thiserror::Error)]
pub(crate) enum SessionError {
    #[error(transparent)]
    Load(LoadError),
    #[error("session store unavailable: {0}")]
    Store(Arc<StoreError>),
}
