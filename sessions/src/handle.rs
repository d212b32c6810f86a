//! The session of one request: loaded lazily, changed through `Typed<T>` values and
//! [`SessionHandle`], saved by the layer after the handler.

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

pub(crate) use crate::rejection::SessionRejection;

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
    /// applied), plus what [`SessionHandle::save`] wrote since.
    loaded: Record,
    /// `loaded` with `changes` applied, made when first asked for after a change.
    view: Option<Record>,
    /// The changes to save.
    changes: Changeset,
    pub(crate) action: Action,
    /// The id after `cycle_id()`.
    pub(crate) new_id: Option<SessionId>,
    /// The expiry policy of this session, when the handler set one.
    pub(crate) expiry: Option<Expiry>,
    /// Whether the handler saved through [`SessionHandle::save`] (the deadline moved).
    pub(crate) saved_in_handler: bool,
    /// A change that could not be encoded: the request must fail rather than lose it.
    pub(crate) encode_error: Option<EncodeError>,
}

impl Pending {
    /// Takes the record `fetch` read; changes made before (if any) apply on top of it.
    fn set_loaded(&mut self, record: Record) {
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

    async fn fetch(&self) -> Result<(Loaded, Record), Arc<StoreError>> {
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

/// The session of the current request as a whole: its id, `cycle_id()` after login,
/// `destroy()` at logout, and its expiry. Typed slots come from it too, for stacks without axum.
///
/// With axum it is an extractor; in any tower stack it is in the request's extensions:
/// `request.extensions().get::<SessionHandle>()`. Clones share one session.
///
/// ```
/// use sessions::prelude::*;
///
/// async fn login(session: SessionHandle) -> &'static str {
///     session.cycle_id();          // a new id, the same data: the old id is dead
///     "welcome"
/// }
/// async fn logout(session: SessionHandle) -> &'static str {
///     session.destroy();           // the record is deleted and the cookie cleared
///     "bye"
/// }
/// # let _ = (login, logout);
/// ```
#[derive(Clone)]
pub struct SessionHandle(pub(crate) Arc<RequestSession>);

impl SessionHandle {
    /// The session's id: `None` for a session that is not stored yet (it gets one when first
    /// saved). After [`cycle_id`](SessionHandle::cycle_id), the new id. Never log it.
    pub async fn id(&self) -> Result<Option<SessionId>, SessionRejection> {
        let loaded = self
            .0
            .load()
            .await
            .map_err(|e| SessionRejection::store("SessionHandle", &e))?;
        let exists = loaded.exists;
        let mut pending = self.0.pending();
        match pending.action {
            Action::Destroy => Ok(None),
            Action::Cycle => {
                if pending.new_id.is_none() {
                    pending.new_id = SessionId::generate().ok();
                }
                Ok(pending.new_id.clone())
            }
            Action::Keep => Ok(match &self.0.incoming {
                Incoming::Id(id) if exists => Some(id.clone()),
                _ => None,
            }),
        }
    }

    /// Gives the session a new id, keeping its data; the old id stops working. Call it when
    /// the user's privileges change (login), against session fixation.
    ///
    /// ```
    /// use std::convert::Infallible;
    /// use std::time::{Duration, SystemTime};
    /// use http::{Request, Response, header::{COOKIE, SET_COOKIE}};
    /// use tower::{Layer, ServiceExt, service_fn};
    /// use sessions::prelude::*;
    /// use sessions::{Deadline, Record, SessionId};
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// let store = MemoryStore::new();
    /// let old = SessionId::generate().unwrap();
    /// let now = SystemTime::now();
    /// let deadline = Deadline { created_at: now, expires_at: now + Duration::from_secs(60) };
    /// store.create(&old.key(), &Record::new(), deadline).await.unwrap();
    ///
    /// let app = SessionLayer::new(store.clone()).layer(service_fn(|request: Request<()>| async move {
    ///     request.extensions().get::<SessionHandle>().unwrap().cycle_id();
    ///     Ok::<_, Infallible>(Response::new(String::new()))
    /// }));
    /// let request = Request::builder().header(COOKIE, format!("session={}", old.expose())).body(()).unwrap();
    /// let response = app.oneshot(request).await.unwrap();
    /// let cookie = response.headers()[SET_COOKIE].to_str().unwrap();
    /// let new = SessionId::parse(&cookie["session=".len()..cookie.find(';').unwrap()]).unwrap();
    /// assert_ne!(new, old);
    /// assert!(store.load(&new.key()).await.unwrap().is_some());
    /// assert!(store.load(&old.key()).await.unwrap().is_none()); // the old id is dead
    /// # });
    /// ```
    pub fn cycle_id(&self) {
        let mut pending = self.0.pending();
        if pending.action != Action::Destroy {
            pending.action = Action::Cycle;
        }
    }

    /// Ends the session: the stored record is deleted and the cookie cleared. Changes made in
    /// this request are dropped.
    ///
    /// ```
    /// use std::convert::Infallible;
    /// use std::time::{Duration, SystemTime};
    /// use http::{Request, Response, header::COOKIE};
    /// use tower::{Layer, ServiceExt, service_fn};
    /// use sessions::prelude::*;
    /// use sessions::{Deadline, Record, SessionId};
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// let store = MemoryStore::new();
    /// let id = SessionId::generate().unwrap();
    /// let now = SystemTime::now();
    /// let deadline = Deadline { created_at: now, expires_at: now + Duration::from_secs(60) };
    /// store.create(&id.key(), &Record::new(), deadline).await.unwrap();
    ///
    /// let app = SessionLayer::new(store.clone()).layer(service_fn(|request: Request<()>| async move {
    ///     request.extensions().get::<SessionHandle>().unwrap().destroy();
    ///     Ok::<_, Infallible>(Response::new(String::new()))
    /// }));
    /// let request = Request::builder().header(COOKIE, format!("session={}", id.expose())).body(()).unwrap();
    /// app.oneshot(request).await.unwrap();
    /// assert!(store.is_empty());
    /// # });
    /// ```
    pub fn destroy(&self) {
        self.0.pending().action = Action::Destroy;
    }

    /// Whether [`destroy`](SessionHandle::destroy) was called in this request.
    ///
    /// ```
    /// use std::convert::Infallible;
    /// use http::{Request, Response};
    /// use tower::{Layer, ServiceExt, service_fn};
    /// use sessions::prelude::*;
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// let app = SessionLayer::new(MemoryStore::new()).layer(service_fn(|request: Request<()>| async move {
    ///     let session = request.extensions().get::<SessionHandle>().unwrap();
    ///     assert!(!session.is_destroyed());
    ///     session.destroy();
    ///     assert!(session.is_destroyed());
    ///     Ok::<_, Infallible>(Response::new(String::new()))
    /// }));
    /// app.oneshot(Request::new(())).await.unwrap();
    /// # });
    /// ```
    pub fn is_destroyed(&self) -> bool {
        self.0.pending().action == Action::Destroy
    }

    /// Sets this session's expiry policy (e.g. a longer one for "remember me"); it is stored
    /// with the session and applies from this request on.
    ///
    /// ```
    /// # use std::time::Duration;
    /// # use sessions::{Expiry, SessionHandle};
    /// async fn remember_me(session: SessionHandle) {
    ///     session.set_expiry(Expiry::idle(Duration::from_secs(30 * 24 * 3600)));
    /// }
    /// # let _ = remember_me;
    /// ```
    pub fn set_expiry(&self, expiry: Expiry) {
        let change = crate::layer::expiry_slot(&expiry, self.0.config.format);
        let mut pending = self.0.pending();
        pending.expiry = Some(expiry);
        if let Some(change) = change {
            pending.push(SlotChange::Put(change));
        }
    }

    /// Saves the changes made so far now, inside the handler, rather than after it; with
    /// [optimistic concurrency](crate::SessionLayer::optimistic_concurrency) this is how a
    /// handler learns of a [`Conflict`](crate::Conflict) and retries. A `Typed` value hands its
    /// changes over when it is dropped: let it go out of scope first.
    ///
    /// Nothing is written now for a session that is not stored yet, is being cycled or
    /// destroyed, or lives in a `CookieStore`: the layer writes those after the handler, and
    /// none of them can conflict. A session that a logout ended meanwhile stays ended and the
    /// changes are dropped, as after the handler.
    ///
    /// ```
    /// use sessions::prelude::*;
    /// use sessions::SessionRejection;
    ///
    /// #[derive(Session, Default)]
    /// struct Stock { left: u32 }
    ///
    /// async fn take_one(session: SessionHandle) -> Result<String, SessionRejection> {
    ///     loop {
    ///         {
    ///             let mut stock = session.get_or_default::<Stock>().await?;
    ///             if *stock.left() == 0 {
    ///                 return Ok("sold out".into());
    ///             }
    ///             *stock.left_mut() -= 1;
    ///         } // dropped: its change is handed over
    ///         match session.save().await {
    ///             Ok(()) => return Ok("yours".into()),
    ///             Err(SessionRejection::Conflict(_)) => session.reload().await?,
    ///             Err(other) => return Err(other),
    ///         }
    ///     }
    /// }
    /// # let _ = take_one;
    /// ```
    pub async fn save(&self) -> Result<(), SessionRejection> {
        let session = &self.0;
        let loaded = session
            .load()
            .await
            .map_err(|e| SessionRejection::store("SessionHandle", &e))?;
        let (Backend::Store(store), Incoming::Id(id)) =
            (&session.config.backend, &session.incoming)
        else {
            return Ok(());
        };
        let (changes, saved, deadline) = {
            let mut pending = session.pending();
            if !loaded.exists || pending.action != Action::Keep || !pending.has_changes() {
                return Ok(());
            }
            if let Some(err) = pending.encode_error.take() {
                return Err(SessionRejection::Unsaved {
                    message: err.to_string(),
                });
            }
            let now = session.config.clock.now();
            let created_at = loaded.deadline.map_or(now, |d| d.created_at);
            let deadline = session.expiry(&pending).deadline(created_at, now);
            let changes = pending.take_changes();
            (changes, pending.record().clone(), deadline)
        };
        match store.save(&id.key(), &changes, deadline).await {
            Ok(outcome) => {
                let mut pending = session.pending();
                pending.saved_in_handler = true;
                if outcome == crate::store::SaveOutcome::Missing {
                    tracing::info!(
                        target: "sessions",
                        session_key = %id.key(),
                        "session ended while the request ran (logout or expiry); its changes are dropped"
                    );
                }
                // What was saved is the base from now on (the view applied the changes as the
                // store did: each changed slot one revision on).
                pending.set_loaded(saved);
                Ok(())
            }
            Err(err) => {
                let mut pending = session.pending();
                // Kept, so that the layer does not report success for a change not saved.
                let later = std::mem::replace(&mut pending.changes, changes);
                pending.changes.extend(later);
                pending.view = None;
                match err {
                    StoreError::Conflict(conflict) => Err(SessionRejection::Conflict(conflict)),
                    err => Err(SessionRejection::store("SessionHandle", &err)),
                }
            }
        }
    }

    /// Forgets the changes not saved yet and reads the session again from the store: after a
    /// [`Conflict`](crate::Conflict), to redo the change on what another request saved. Drop
    /// every `Typed` value first; extract them again afterwards.
    ///
    /// ```
    /// use sessions::prelude::*;
    /// #[derive(Session, Default)] struct Cart { n: u32 }
    /// async fn handler(session: SessionHandle) -> Result<(), sessions::SessionRejection> {
    ///     session.get_or_default::<Cart>().await?.set_n(5);
    ///     session.reload().await?; // the change above is forgotten
    ///     assert!(!session.get_or_default::<Cart>().await?.is_dirty());
    ///     Ok(())
    /// }
    /// # let _ = handler;
    /// ```
    pub async fn reload(&self) -> Result<(), SessionRejection> {
        let session = &self.0;
        session
            .load()
            .await
            .map_err(|e| SessionRejection::store("SessionHandle", &e))?;
        let (_, record) = session
            .fetch()
            .await
            .map_err(|e| SessionRejection::store("SessionHandle", &e))?;
        let mut pending = session.pending();
        pending.changes = Changeset::new();
        pending.set_loaded(record);
        pending.encode_error = None;
        if let Some(expiry) = pending.expiry {
            // set_expiry() is a choice of the request, not data another request could change.
            if let Some(change) = crate::layer::expiry_slot(&expiry, session.config.format) {
                pending.push(SlotChange::Put(change));
            }
        }
        Ok(())
    }

    /// When the stored session ends (`None` for a session not stored yet).
    pub async fn deadline(&self) -> Result<Option<Deadline>, SessionRejection> {
        let loaded = self
            .0
            .load()
            .await
            .map_err(|e| SessionRejection::store("SessionHandle", &e))?;
        Ok(loaded.deadline)
    }

    /// `T`'s slot, or `None` when nothing is stored for `T`.
    pub async fn get<T: Session>(&self) -> Result<Option<Typed<T>>, SessionRejection> {
        self.0
            .typed::<T>()
            .await
            .map_err(SessionRejection::from_error::<T>)
    }

    /// `T`'s slot, or `T::default()` for a new one (written once it is changed).
    pub async fn get_or_default<T: Session + Default>(&self) -> Result<Typed<T>, SessionRejection> {
        self.0
            .typed_or_default::<T>()
            .await
            .map_err(SessionRejection::from_error::<T>)
    }

    /// Removes `T`'s slot from the session.
    ///
    /// ```
    /// use std::convert::Infallible;
    /// use std::time::{Duration, SystemTime};
    /// use http::{Request, Response, header::COOKIE};
    /// use tower::{Layer, ServiceExt, service_fn};
    /// use sessions::prelude::*;
    /// use sessions::{Deadline, Format, Record, SessionId, Slot};
    /// #[derive(Session, Default)] #[session(name = "cart")] struct Cart { n: u32 }
    /// #[derive(Session, Default)] #[session(name = "prefs")] struct Prefs { dark: bool }
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// let store = MemoryStore::new();
    /// let id = SessionId::generate().unwrap();
    /// let mut record = Record::new();
    /// record.insert(Slot::new("cart", 1, Format::Json, vec![("n".into(), "2".into())]));
    /// record.insert(Slot::new("prefs", 1, Format::Json, vec![("dark".into(), "true".into())]));
    /// let now = SystemTime::now();
    /// let deadline = Deadline { created_at: now, expires_at: now + Duration::from_secs(60) };
    /// store.create(&id.key(), &record, deadline).await.unwrap();
    ///
    /// let layer = SessionLayer::new(store.clone()).register::<Cart>().register::<Prefs>();
    /// let app = layer.layer(service_fn(|request: Request<()>| async move {
    ///     request.extensions().get::<SessionHandle>().unwrap().remove::<Cart>();
    ///     Ok::<_, Infallible>(Response::new(String::new()))
    /// }));
    /// let request = Request::builder().header(COOKIE, format!("session={}", id.expose())).body(()).unwrap();
    /// app.oneshot(request).await.unwrap();
    /// let stored = store.load(&id.key()).await.unwrap().unwrap().record;
    /// assert!(stored.slot("cart").is_none());
    /// assert!(stored.slot("prefs").is_some()); // the other slots stay
    /// # });
    /// ```
    pub fn remove<T: Session>(&self) {
        self.0.pending().push(SlotChange::Remove {
            slot: T::NAME.into(),
        });
    }
}

impl std::fmt::Debug for SessionHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionHandle").finish_non_exhaustive()
    }
}
