//! The session of one request: loaded lazily, changed through `Typed<T>` values and
//! [`SessionHandle`], saved by the layer after the handler.

mod request_session;

use std::sync::Arc;

use crate::expiry::{Deadline, Expiry};
use crate::id::SessionId;
use crate::layer::Backend;
use crate::record::{Changeset, SlotChange};
use crate::schema::Session;
use crate::store::StoreError;
use crate::typed::Typed;

pub(crate) use crate::rejection::SessionRejection;
pub(crate) use request_session::{Action, Incoming, RequestSession, SessionError};

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
