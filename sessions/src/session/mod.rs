//! The session of one request, below every framework adapter: what the request carried
//! ([`Source`]), the per-request [`State`], the pure [`plan`](plan::plan) of what to do with it,
//! the one place that carries a plan out (`apply.rs`), and the seam the adapters call
//! (`seam.rs`: [`begin`] before the handler, [`SessionHandle::finish`] after it). The tower
//! service, the actix middleware and the test kit only convert their types.

mod apply;
pub(crate) mod config;
mod expiry_slot;
mod failure;
mod handle;
mod owners;
pub(crate) mod plan;
mod read_mark;
mod rejection;
mod response;
mod seam;
mod source;
mod state;
mod tally;

use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::OnceCell;

pub(crate) use apply::Outcome;
pub(crate) use config::{Backend, Config, Transport};
pub(crate) use expiry_slot::expiry_slot;
pub use handle::SessionHandle;
pub use owners::OwnedSession;
pub(crate) use rejection::Rejected;
pub use rejection::SessionRejection;
#[cfg(feature = "actix")]
pub(crate) use seam::ResponseHeaders;
pub(crate) use seam::{Begun, RequestHead, begin};
pub(crate) use source::{Carrier, Source};

use self::failure::Failure;
use self::plan::{Facts, Moment, Plan, Seen};
use self::state::{Action, Found, Home, State};
use self::tally::Tally;
use crate::codec::Format;
use crate::errors::{EncodeError, LoadError};
use crate::id::SessionKey;
use crate::record::SlotChange;
use crate::schema::Session;
use crate::store::cookie::Revoked;
use crate::store::{CookieStore, Entry, ReadMark, StoreError};
use crate::typed::{SlotSink, Typed};

/// The work after a handler that has some (see `RequestSession::after`).
pub(crate) type AfterHandler = std::pin::Pin<Box<dyn Future<Output = Outcome> + Send + 'static>>;

/// A request's session, made by [`begin`]: the adapter puts it into the request (as a
/// [`SessionHandle`]) and calls [`SessionHandle::finish`] on the response.
pub(crate) struct RequestSession {
    pub(crate) config: Arc<Config>,
    pub(crate) source: Source,
    /// How the request carried its session, and so how the response answers.
    pub(crate) carrier: Carrier,
    /// The request's `User-Agent`, when the layer captures it for owner bindings.
    pub(crate) agent: Option<String>,
    /// The read mark of the client's last write, when the store keeps them (`read_mark.rs`).
    pub(crate) mark: Option<read_mark::CarriedMark>,
    /// Set once the first load ran (its result is in the state).
    loaded: OnceCell<()>,
    state: Mutex<State>,
    /// What happened to the session, reported when the response is decided (`tally.rs`).
    tally: Mutex<Tally>,
    /// Whether anyone counts or listens (`RequestSession::reports`), as the request began.
    reports: bool,
}

impl RequestSession {
    pub(crate) fn new(
        config: Arc<Config>,
        source: Source,
        carrier: Carrier,
        agent: Option<String>,
    ) -> Self {
        let reports = crate::metrics::recording() || !config.events.is_empty();
        Self {
            config,
            source,
            carrier,
            agent,
            mark: None,
            loaded: OnceCell::new(),
            state: Mutex::new(State::new()),
            tally: Mutex::new(Tally::default()),
            reports,
        }
    }

    pub(crate) fn state(&self) -> MutexGuard<'_, State> {
        // Every critical section is a few assignments; a panic in one leaves consistent data.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Loads the session once; later calls see the same result.
    pub(crate) async fn load(&self) -> Result<(), Arc<StoreError>> {
        self.loaded
            .get_or_init(|| async {
                let found = self.fetch().await;
                // Changes made before the load (`set_expiry`, `remove`: whole-slot changes)
                // apply on top of what was stored.
                self.state().set_found(found);
            })
            .await;
        match self.state().found() {
            Found::Failed(err) => Err(err.clone()),
            _ => Ok(()),
        }
    }

    /// Reads the session from where it lives.
    pub(crate) async fn fetch(&self) -> Found {
        match &self.source {
            Source::Store { id: None, .. } | Source::Cookie { token: None, .. } => {
                Found::Absent { moved: false }
            }
            Source::Store {
                store,
                id: Some(id),
            } => {
                let key = id.key();
                let mark = self.mark.map_or(ReadMark::None, |mark| mark.for_key(&key));
                // A replica's copy may answer, as new as the client's last write at least.
                let loaded = store.load_for_read(&key, mark).await;
                if matches!(loaded, Ok(None)) && self.reports() {
                    // Only when someone counts or listens: an ended session, or none at all?
                    if let Ok(true) = store.has_ended(&key).await {
                        self.note(Tally::expired);
                    }
                }
                found(loaded, &key)
            }
            // Boxed: opening a cookie holds much across its awaits, and every future that
            // loads a session (a handler's extractors) would carry that room.
            Source::Cookie {
                cookies,
                token: Some(token),
            } => Box::pin(self.open_cookie(cookies, token)).await,
        }
    }

    /// Opens the sealed cookie the request carried.
    async fn open_cookie(&self, cookies: &CookieStore, token: &str) -> Found {
        let config = &self.config;
        match cookies.open(config.cookie.cookie_name(), token, config.clock.now()) {
            Ok(opened) => {
                match cookies
                    .check(&opened.stamp)
                    .await
                    .map(|check| check.revoked)
                {
                    Ok(Revoked::No) => {}
                    Ok(_) => {
                        tracing::warn!(target: "sessions", "session cookie revoked (a logout, a login, or its owner's sessions were ended); starting a new session");
                        return Found::Absent { moved: false };
                    }
                    Err(err) => {
                        tracing::error!(target: "sessions", error = %err, "the cookie revocation list cannot be read");
                        return Found::Failed(Arc::new(err));
                    }
                }
                Found::Sealed {
                    record: opened.record,
                    deadline: opened.deadline,
                    needs_reseal: opened.needs_reseal,
                    stamp: Box::new(opened.stamp),
                }
            }
            Err(err) => {
                if matches!(err, crate::store::cookie::CookieError::Expired) {
                    self.note(Tally::expired);
                }
                tracing::warn!(target: "sessions", error = %err, "session cookie refused; starting a new session");
                Found::Absent { moved: false }
            }
        }
    }

    /// The key the stored session lives under now, if there is one.
    pub(crate) fn home_key(&self, state: &State) -> Option<SessionKey> {
        match &state.home {
            Home::Carried => match &self.source {
                Source::Store { id: Some(id), .. } => Some(id.key()),
                _ => None,
            },
            Home::Issued => state.issued().map(crate::id::SessionId::key),
            Home::Followed(key) => Some((**key).clone()),
        }
    }

    /// The facts the plan looks at, as they are now.
    fn facts(&self, state: &mut State) -> Facts {
        let config = &self.config;
        let cookie_store = matches!(self.source, Source::Cookie { .. });
        let seen = match state.found() {
            Found::NotLoaded => Seen::NotLoaded,
            Found::Failed(err) => Seen::Failed(Failure::of_load(err)),
            Found::Absent { moved } => Seen::Absent { moved: *moved },
            Found::Stored { session, .. } => Seen::Live {
                deadline: session.deadline,
                needs_reseal: false,
            },
            Found::Sealed {
                deadline,
                needs_reseal,
                ..
            } => Seen::Live {
                deadline: *deadline,
                needs_reseal: *needs_reseal || state.reseal,
            },
        };
        let writes = state.has_changes() || state.action == Action::Cycle || state.must_store;
        let absent = matches!(seen, Seen::Absent { .. });
        // Only a create or a seal looks at it; it costs a view of the changes.
        let view_empty =
            writes && (absent || cookie_store || state.destroyed) && state.view().is_empty();
        // A session this request created under a fresh id needs no other new id.
        let action = match (state.action, &state.home) {
            (Action::Cycle, Home::Issued) => Action::Keep,
            (action, _) => action,
        };
        Facts {
            cookie_store,
            carried: self.source.carried(),
            has_home: self.source.carried() || state.home != Home::Carried,
            seen,
            action,
            changes: state.has_changes(),
            must_store: state.must_store,
            encode_error: state.encode_error.is_some(),
            view_empty,
            expiry: state.expiry(config.expiry),
            expiry_set: state.expiry.is_some(),
            announced: state.announce.is_some(),
            now: config.clock.now(),
        }
    }

    /// The plan for `moment`, as things are now.
    fn plan(&self, moment: Moment) -> Plan {
        let mut state = self.state();
        let facts = self.facts(&mut state);
        plan::plan(&facts, moment)
    }

    /// After the handler: what the response must carry, or `None` when there is nothing to do
    /// (the common read-only request: decided without an `await`, and the work boxed only when
    /// there is some, so the adapter's own future stays small).
    pub(crate) fn after(self: &Arc<Self>, status: http::StatusCode) -> Option<AfterHandler> {
        let moment = Moment::Response { status };
        let first = self.plan(moment);
        if first == Plan::Nothing {
            return None;
        }
        let session = self.clone();
        Some(Box::pin(async move {
            let mut plan = first;
            if plan == Plan::Load {
                // A cycle or a change made without a load (`set_expiry`, `remove`) needs the
                // session it changes; the plan is made again on what was found.
                let _ = session.load().await;
                plan = session.plan(moment);
            }
            apply::apply(&session, plan).await
        }))
    }

    /// `SessionHandle::save()`: what the plan says for now, run now.
    pub(crate) async fn save_now(&self) -> Result<(), SessionRejection> {
        let mut plan = self.plan(Moment::Handler);
        if plan == Plan::Load {
            self.load()
                .await
                .map_err(|err| SessionRejection::store("SessionHandle", &err))?;
            plan = self.plan(Moment::Handler);
        }
        apply::apply_in_handler(self, plan).await
    }

    /// Reads the session again, forgetting the changes not saved yet.
    pub(crate) async fn reload(&self) -> Result<(), SessionRejection> {
        self.load()
            .await
            .map_err(|err| SessionRejection::store("SessionHandle", &err))?;
        // Where the session lives now: a save of this request may have created it, or followed
        // it to where a login moved it.
        let home = {
            let state = self.state();
            (state.home != Home::Carried)
                .then(|| self.home_key(&state))
                .flatten()
        };
        // Read again from where every write goes (never a replica's copy): a reload after a
        // 409 must see what won.
        let carried = match &self.source {
            Source::Store { id: Some(id), .. } => Some(id.key()),
            _ => None,
        };
        let found = match (&self.source, home.or(carried)) {
            (Source::Store { store, .. }, Some(key)) => found(store.load(&key).await, &key),
            _ => self.fetch().await,
        };
        if let Found::Failed(err) = &found {
            return Err(SessionRejection::store("SessionHandle", err));
        }
        let mut state = self.state();
        state.set_found(found);
        state.clear_changes();
        state.encode_error = None;
        if let Some(expiry) = state.expiry {
            // set_expiry() is a choice of the request, not data another request could change.
            if let Some(change) = expiry_slot(&expiry, self.config.format) {
                state.push(SlotChange::Put(change));
            }
        }
        Ok(())
    }

    /// Loads `T`'s slot, tied to this request so its changes are saved.
    pub(crate) async fn typed<T: Session>(
        self: &Arc<Self>,
    ) -> Result<Option<Typed<T>>, SessionError> {
        let (typed, epoch) = self.slot::<T>().await?;
        let sink: Arc<dyn SlotSink> = self.clone();
        Ok(typed.map(|typed| typed.with_sink(sink, epoch)))
    }

    /// Like [`RequestSession::typed`], with `T::default()` for a new slot.
    pub(crate) async fn typed_or_default<T: Session + Default>(
        self: &Arc<Self>,
    ) -> Result<Typed<T>, SessionError> {
        self.typed_or_new::<T>().await
    }

    /// Like [`RequestSession::typed`], with `T::new_slot()` for a new slot.
    pub(crate) async fn typed_or_new<T: Session + crate::typed::NewSlot>(
        self: &Arc<Self>,
    ) -> Result<Typed<T>, SessionError> {
        let (typed, epoch) = self.slot::<T>().await?;
        let sink: Arc<dyn SlotSink> = self.clone();
        Ok(typed
            .unwrap_or_else(|| Typed::new(T::new_slot()))
            .with_sink(sink, epoch))
    }

    /// `T`'s slot as the handler sees it now, and the epoch it is taken in.
    async fn slot<T: Session>(&self) -> Result<(Option<Typed<T>>, u32), SessionError> {
        if !self.config.registry.is_registered::<T>() {
            return Err(SessionError::Load(LoadError::NotRegistered {
                name: T::NAME,
                rust_type: std::any::type_name::<T>(),
            }));
        }
        self.load().await.map_err(SessionError::Store)?;
        let mut state = self.state();
        let epoch = state.epoch;
        let typed = self
            .config
            .registry
            .load::<T>(state.view())
            .map_err(SessionError::Load)?;
        drop(state);
        if let Some(from) = typed.as_ref().and_then(Typed::migrated_from) {
            self.note(|tally| tally.migrated(T::NAME, from, T::VERSION));
        }
        Ok((typed, epoch))
    }
}

impl SlotSink for RequestSession {
    fn format(&self) -> Format {
        self.config.format
    }

    fn commit(
        &self,
        slot: &'static str,
        epoch: u32,
        changes: Result<Option<SlotChange>, EncodeError>,
    ) {
        let mut state = self.state();
        if !state.still_counts(slot, epoch) {
            tracing::warn!(
                target: "sessions",
                session_type = slot,
                "a change made through a value taken before its slot was removed (or the session cleared or destroyed) is dropped"
            );
            return;
        }
        match changes {
            Ok(None) => {}
            Ok(Some(change)) => {
                // A migration's write-back changes nothing the handler did: it expects nothing.
                let write_back =
                    matches!(&change, SlotChange::Rewrite { changed, .. } if changed.is_empty());
                if self.config.optimistic && !write_back && !state.changes().expects(slot) {
                    // The revision this request's change was made against: the loaded one.
                    let revision = state.loaded_record().revision_of(slot);
                    state.changes_mut().expect(slot, revision);
                }
                state.push(change);
            }
            Err(err) => {
                tracing::error!(target: "sessions", error = %err, "session change cannot be encoded; the request will fail");
                state.encode_error.get_or_insert(Box::new(err));
            }
        }
    }
}

/// `owner`'s sessions, for `SessionLayer::sessions_of`.
pub(crate) async fn list_owned(
    config: &Config,
    owner: &str,
) -> Result<Vec<OwnedSession>, StoreError> {
    match &config.backend {
        Backend::Store(store) => owners::list(store.as_ref(), owner, None).await,
        Backend::Cookie(_) => Err(StoreError::Unsupported(
            "list the sessions of an owner: they live in their browsers' cookies",
        )),
    }
}

/// Ends every session of `owner`, for `SessionLayer::revoke_owner`.
pub(crate) async fn revoke_owned(config: &Config, owner: &str) -> Result<usize, StoreError> {
    match &config.backend {
        Backend::Store(store) => {
            let ended = owners::revoke_all(store.as_ref(), owner, None).await?;
            if ended > 0 {
                crate::metrics::revoked(crate::metrics::Revocation::Owner, ended as u64);
                config.events.tell(&crate::events::SessionEvent::Revoked {
                    owner: owner.to_owned(),
                });
            }
            Ok(ended)
        }
        Backend::Cookie(cookies) => cookies
            .revoke(owner, None, config.clock.now())
            .await
            .map(|_| 0),
    }
}

/// What a store's answer to a load means for the request.
fn found(loaded: Result<Option<Entry>, StoreError>, key: &SessionKey) -> Found {
    match loaded {
        Ok(Some(Entry::Live { version, session })) => Found::Stored { version, session },
        Ok(Some(Entry::Moved { .. })) => {
            tracing::warn!(target: "sessions", session_key = %key, "session id moved to a new id by a login (a stale cookie); starting a new session");
            Found::Absent { moved: true }
        }
        Ok(None) => {
            tracing::warn!(target: "sessions", session_key = %key, "unknown or expired session id; starting a new session");
            Found::Absent { moved: false }
        }
        Err(StoreError::Record(err)) => {
            tracing::warn!(
                target: "sessions",
                session_key = %key,
                error = %err,
                "stored session is unreadable; starting a new session (the stored one is left as it is)"
            );
            Found::Absent { moved: false }
        }
        Err(err) => {
            tracing::error!(target: "sessions", error = %err, "session store failed to load a session");
            Found::Failed(Arc::new(err))
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
