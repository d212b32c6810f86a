//! The one place a [`Plan`] is carried out: against the store (through `store::ops`) or the
//! cookie, with what the response must then carry.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use super::owners;
use super::plan::{Failure, Plan};
use super::state::{Action, Found, Home, Token};
use super::{RequestSession, SessionRejection, Source};
use crate::expiry::{Deadline, Expiry};
use crate::id::{SessionId, SessionKey};
use crate::record::Changeset;
use crate::store::ops::{self, Cycled, Saved};
use crate::store::{Entry, Owner, SessionStore, StoreError, Stored};

/// How many fresh ids a create or cycle draws when one collides (2^-256 each: this is for a
/// broken random source, which should fail loudly rather than loop).
const ID_ATTEMPTS: usize = 3;

/// What the response must carry after the handler.
#[derive(Debug, Default)]
pub(crate) struct Outcome {
    /// What the client is told about its session.
    pub(crate) token: Option<Token>,
    /// The error that replaces the handler's response.
    pub(crate) failure: Option<Failure>,
}

/// Why a plan could not be carried out.
enum Refused {
    /// A failure the plan itself named, or one of the session rather than of the store.
    Failure(Failure),
    /// The session ended while the request ran (a logout, or its expiry).
    Ended,
    /// The store failed or refused.
    Store(StoreError),
}

impl Refused {
    fn failure(&self) -> Failure {
        match self {
            Refused::Failure(failure) => *failure,
            Refused::Ended => Failure::ENDED,
            Refused::Store(err) => match err {
                StoreError::Backend(_) => Failure::UNAVAILABLE,
                StoreError::Conflict(_) | StoreError::Apply(_) => Failure::CHANGED,
                StoreError::Contended => Failure::BUSY,
                StoreError::Collision => Failure {
                    message: "session ids keep colliding: the random source is broken",
                    ..Failure::BROKEN
                },
                _ => Failure::BROKEN,
            },
        }
    }

    fn log(&self) {
        let failure = self.failure();
        match self {
            Refused::Store(err) => {
                tracing::error!(target: "sessions", error = %err, "session not saved; the response becomes a {}", failure.status.as_u16());
            }
            _ => {
                tracing::warn!(target: "sessions", "{}; the response becomes a {}", failure.message, failure.status.as_u16());
            }
        }
    }

    fn rejection(self) -> SessionRejection {
        match self {
            Refused::Ended => SessionRejection::Ended,
            Refused::Store(StoreError::Conflict(conflict)) => SessionRejection::Conflict(conflict),
            Refused::Store(err @ StoreError::Backend(_)) => {
                SessionRejection::store("SessionHandle", &err)
            }
            refused => refused.failure().into(),
        }
    }
}

impl From<StoreError> for Refused {
    fn from(err: StoreError) -> Self {
        Refused::Store(err)
    }
}

/// Carries out `plan` after the handler.
pub(super) async fn apply(session: &RequestSession, plan: Plan) -> Outcome {
    let result = run(session, plan, Keep::Nothing).await;
    let announced = session.state().announce.take().map(|token| *token);
    match result {
        Ok(token) => Outcome {
            token: token.or(announced),
            failure: None,
        },
        Err(refused) => {
            refused.log();
            Outcome {
                // What an earlier write of this request stored is still stored.
                token: announced,
                failure: Some(refused.failure()),
            }
        }
    }
}

/// Carries out `plan` inside the handler (`SessionHandle::save()`); what the client must be
/// told is kept for the response.
pub(super) async fn apply_in_handler(
    session: &RequestSession,
    plan: Plan,
) -> Result<(), SessionRejection> {
    match run(session, plan, Keep::Base).await {
        Ok(Some(token)) => {
            session.state().announce = Some(Box::new(token));
            Ok(())
        }
        Ok(None) => Ok(()),
        Err(refused) => Err(refused.rejection()),
    }
}

/// Whether the request's loaded session is still needed after a write (inside the handler it
/// is: its `Typed` values and a later save build on it). After the handler it is handed to the
/// store, so that a store sharing it (`MemoryStore`) can save in place.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Keep {
    Base,
    Nothing,
}

async fn run(session: &RequestSession, plan: Plan, keep: Keep) -> Result<Option<Token>, Refused> {
    match plan {
        Plan::Nothing | Plan::Load => Ok(None),
        Plan::Announce => Ok(session.state().announce.as_deref().cloned()),
        Plan::Fail(failure) => Err(Refused::Failure(failure)),
        Plan::Create { deadline } => create(session, deadline).await,
        Plan::Save { deadline } => save(session, deadline, keep).await,
        Plan::Cycle { deadline } => cycle(session, deadline, keep).await,
        Plan::Destroy => destroy(session).await,
        Plan::Replace { deadline } => {
            destroy(session).await?;
            // The new session gets an id of its own, never the ended one's.
            session.state().forget_issued();
            create(session, deadline).await
        }
        Plan::Seal { deadline } => seal(session, deadline).await,
        Plan::Forget => Ok(Some(Token::Clear)),
    }
}

/// The store of a server-side session.
fn store(session: &RequestSession) -> Result<&dyn SessionStore, Refused> {
    match &session.source {
        Source::Store { store, .. } => Ok(store.as_ref()),
        // The plan seals or clears a cookie-store session; it never asks a store for one.
        Source::Cookie { .. } => Err(Refused::Failure(Failure::BROKEN)),
    }
}

/// The token that hands out `value` until `deadline`.
fn token_until(
    session: &RequestSession,
    value: &str,
    deadline: Deadline,
    now: SystemTime,
) -> Token {
    let expiry = session.state().expiry(session.config.expiry);
    Token::Set {
        value: value.to_owned(),
        max_age: max_age(expiry, deadline, now),
    }
}

/// A persistent cookie's `Max-Age`, to the nearest second and at least one (none: a
/// browser-session cookie).
fn max_age(expiry: Expiry, deadline: Deadline, now: SystemTime) -> Option<Duration> {
    (!expiry.is_browser_session()).then(|| {
        let millis = deadline.remaining(now).as_millis();
        Duration::from_secs(
            u64::try_from(millis.div_ceil(1000))
                .unwrap_or(u64::MAX)
                .max(1),
        )
    })
}

/// How a save changes the stored session: the changes on top, the deadline moved when the plan
/// says so, and the owner bound anew when the changes touch the owner's slot (a login or a
/// logout of a user). `bound` says, after the last run, which owner the session was just bound to.
fn edit<'a>(
    session: &'a RequestSession,
    changes: &'a Changeset,
    deadline: Option<Deadline>,
    now: SystemTime,
    bound: &'a mut Option<String>,
) -> impl FnMut(&mut Stored) -> Result<(), StoreError> + Send + 'a {
    let registry = &session.config.registry;
    let owner_slot = registry
        .owner_type()
        .filter(|slot| changes.iter().any(|change| change.slot_name() == *slot));
    let agent = session.agent.as_deref();
    move |stored: &mut Stored| {
        stored.record.apply(changes)?;
        if let Some(deadline) = deadline {
            stored.deadline = deadline;
            stored.last_seen = now;
        }
        *bound = None;
        if owner_slot.is_some() {
            *bound = bind(registry, stored, now, agent);
        }
        Ok(())
    }
}

/// Binds `stored` to the owner its record names, if that changed; the new owner, if bound.
fn bind(
    registry: &crate::registry::Registry,
    stored: &mut Stored,
    now: SystemTime,
    agent: Option<&str>,
) -> Option<String> {
    let name = registry.owner_in(&stored.record).unwrap_or_else(|err| {
        tracing::error!(target: "sessions", error = %err, "the owner field cannot be read; the session is bound to nobody");
        None
    });
    if name.as_deref() == stored.owner_name() {
        return None;
    }
    stored.owner = name.clone().map(|name| {
        let mut owner = Owner::new(name, now);
        owner.agent = agent.map(str::to_owned);
        Arc::new(owner)
    });
    if name.is_some() {
        stored.last_seen = now;
    }
    name
}

/// After a write that bound the session under `key` to `owner`: the layer's cap on that
/// owner's sessions. `Err(Ended)` when the session is not among the ones kept (the cap, this
/// request's or a concurrent login's, ended it): the request must not answer as if it were
/// signed in with a session that is gone.
async fn after_binding(
    session: &RequestSession,
    store: &dyn SessionStore,
    owner: Option<String>,
    key: &SessionKey,
) -> Result<(), Refused> {
    let (Some(owner), Some(max)) = (owner, session.config.max_sessions_per_owner) else {
        return Ok(());
    };
    match owners::cap(store, &owner, max, key).await {
        Ok(true) => Ok(()),
        Ok(false) => {
            tracing::warn!(target: "sessions", "the session just bound to its owner was ended by the cap on the owner's sessions (a newer login)");
            Err(Refused::Ended)
        }
        Err(err) => {
            tracing::error!(target: "sessions", error = %err, "the cap on an owner's sessions was not enforced");
            Ok(())
        }
    }
}

/// The entry this request loaded, as the base of its next write: a copy, or taken out of the
/// request (see [`Keep`]).
fn base(session: &RequestSession, keep: Keep) -> Option<Entry> {
    let mut state = session.state();
    if keep == Keep::Nothing {
        return state.take_stored();
    }
    match state.found() {
        Found::Stored { version, session } => Some(Entry::Live {
            version: *version,
            session: session.clone(),
        }),
        _ => None,
    }
}

async fn create(session: &RequestSession, deadline: Deadline) -> Result<Option<Token>, Refused> {
    let store = store(session)?;
    let now = session.config.clock.now();
    let (record, shown) = {
        let mut state = session.state();
        (state.view().clone(), state.issued().is_some())
    };
    let mut stored = Stored::new(record, deadline);
    stored.last_seen = now;
    let bound = bind(
        &session.config.registry,
        &mut stored,
        now,
        session.agent.as_deref(),
    );
    for _ in 0..ID_ATTEMPTS {
        let id = issue(session)?;
        match ops::create(store, &id.key(), stored.clone()).await {
            Ok(()) => {
                {
                    let mut state = session.state();
                    stored.record = stored.record.stored_at_least_once();
                    state.set_stored(1, stored);
                    state.clear_changes();
                    state.home = Home::Issued;
                    state.must_store = false;
                }
                after_binding(session, store, bound, &id.key()).await?;
                return Ok(Some(token_until(session, id.expose(), deadline, now)));
            }
            Err(StoreError::Collision) if !shown => {
                tracing::warn!(target: "sessions", "session id collision; drawing another");
                session.state().forget_issued();
            }
            Err(err) => return Err(err.into()),
        }
    }
    Err(StoreError::Collision.into())
}

/// The id this request files a new or moved session under.
fn issue(session: &RequestSession) -> Result<SessionId, Refused> {
    session.state().issue().map_err(|err| {
        tracing::error!(target: "sessions", error = %err, "no session id");
        Refused::Failure(Failure {
            message: "no session id",
            ..Failure::BROKEN
        })
    })
}

async fn save(
    session: &RequestSession,
    deadline: Option<Deadline>,
    keep: Keep,
) -> Result<Option<Token>, Refused> {
    let store = store(session)?;
    let now = session.config.clock.now();
    let (key, changes) = {
        let mut state = session.state();
        let key = session.home_key(&state);
        (key, std::mem::take(state.changes_mut()))
    };
    let Some(key) = key else {
        return Ok(None);
    };
    let wrote_changes = !changes.is_empty();
    let base = base(session, keep);
    let mut bound = None;
    let saved = ops::save(
        store,
        &key,
        base,
        &mut edit(session, &changes, deadline, now, &mut bound),
    )
    .await;
    let capped = match &saved {
        Ok(Saved::Saved { moved_to, .. }) => {
            let home = moved_to.as_deref().unwrap_or(&key);
            after_binding(session, store, bound, home).await
        }
        _ => Ok(()),
    };
    let mut state = session.state();
    match saved {
        Ok(Saved::Saved {
            session: stored,
            version,
            moved_to,
        }) => {
            state.set_stored(version, stored);
            let followed = moved_to.is_some();
            if let Some(to) = moved_to {
                state.home = Home::Followed(to);
            }
            capped?;
            // The cookie follows a moved deadline, for a session under an id this request
            // knows; the id header has no Max-Age to follow.
            let Some(deadline) =
                deadline.filter(|_| !followed && session.config.id_header().is_none())
            else {
                return Ok(None);
            };
            let value = match (&state.home, &session.source) {
                (Home::Issued, _) => state.issued().map(|id| id.expose().to_owned()),
                (Home::Carried, Source::Store { id: Some(id), .. }) => Some(id.expose().to_owned()),
                _ => None,
            };
            drop(state);
            Ok(value.map(|value| token_until(session, &value, deadline, now)))
        }
        Ok(Saved::Missing) => {
            restore(&mut state, changes);
            if wrote_changes {
                Err(Refused::Ended)
            } else {
                // A refresh of a session that ended: nothing was lost, nothing to tell.
                Ok(None)
            }
        }
        Err(err) => {
            restore(&mut state, changes);
            Err(err.into())
        }
    }
}

/// Puts changes that were not saved back, before any made since: a later save (the layer's,
/// after a failed `save()` in the handler) must not report them saved.
fn restore(state: &mut super::state::State, changes: Changeset) {
    let later = std::mem::replace(state.changes_mut(), changes);
    state.changes_mut().extend(later);
}

async fn cycle(
    session: &RequestSession,
    deadline: Deadline,
    keep: Keep,
) -> Result<Option<Token>, Refused> {
    let store = store(session)?;
    let now = session.config.clock.now();
    let (from, changes, shown) = {
        let mut state = session.state();
        let from = session.home_key(&state);
        (
            from,
            std::mem::take(state.changes_mut()),
            state.issued().is_some(),
        )
    };
    let Some(from) = from else {
        return Ok(None);
    };
    let mut bound = None;
    for _ in 0..ID_ATTEMPTS {
        let id = issue(session)?;
        let cycled = ops::cycle(
            store,
            &from,
            &id.key(),
            base(session, keep),
            now,
            &mut edit(session, &changes, Some(deadline), now, &mut bound),
        )
        .await;
        match cycled {
            Ok(Cycled::Moved {
                session: stored,
                version,
            }) => {
                {
                    let mut state = session.state();
                    state.set_stored(version, stored);
                    state.home = Home::Issued;
                }
                // A login of a stored session binds it here: the cap applies as to a new one.
                after_binding(session, store, bound.take(), &id.key()).await?;
                return Ok(Some(token_until(session, id.expose(), deadline, now)));
            }
            Ok(Cycled::Followed {
                session: stored,
                version,
                at,
            }) => {
                // Another login moved the session first; its response carries the new id.
                {
                    let mut state = session.state();
                    state.set_stored(version, stored);
                    state.home = Home::Followed(Box::new(at.clone()));
                }
                after_binding(session, store, bound.take(), &at).await?;
                return Ok(None);
            }
            Ok(Cycled::Missing) => return Err(Refused::Ended),
            Err(StoreError::Collision) if !shown => {
                tracing::warn!(target: "sessions", "session id collision; drawing another");
                session.state().forget_issued();
            }
            Err(err) => return Err(err.into()),
        }
    }
    Err(StoreError::Collision.into())
}

async fn destroy(session: &RequestSession) -> Result<Option<Token>, Refused> {
    if let Source::Store { store, .. } = &session.source {
        let key = session.home_key(&session.state());
        if let Some(key) = key
            && let Err(err) = ops::destroy(store.as_ref(), &key).await
        {
            tracing::error!(target: "sessions", error = %err, "session not destroyed");
            return Err(Refused::Failure(Failure::NOT_DESTROYED));
        }
    }
    Ok(Some(Token::Clear))
}

async fn seal(session: &RequestSession, deadline: Deadline) -> Result<Option<Token>, Refused> {
    let Source::Cookie { cookies, .. } = &session.source else {
        return Err(Refused::Failure(Failure::BROKEN));
    };
    let config = &session.config;
    let now = config.clock.now();
    if revoked_meanwhile(session, cookies).await? {
        let wrote = {
            let state = session.state();
            state.has_changes() || state.action == Action::Cycle
        };
        // Like a save of a server-side session that ended: a change is refused, a refresh
        // (or a reseal with the current key) has nothing to tell.
        return if wrote { Err(Refused::Ended) } else { Ok(None) };
    }
    let record = session.state().view().clone();
    // The owner goes into the seal only where a revocation list can use it.
    let owner = if cookies.revokes() {
        config.registry.owner_in(&record).unwrap_or_else(|err| {
            tracing::error!(target: "sessions", error = %err, "the owner field cannot be read; the cookie is sealed without an owner");
            None
        })
    } else {
        None
    };
    let sealed = cookies.seal(
        config.cookie.cookie_name(),
        &record,
        deadline,
        config.format,
        owner.as_deref(),
        now,
    );
    match sealed {
        Ok(token) => Ok(Some(token_until(session, &token, deadline, now))),
        Err(err) => {
            tracing::error!(target: "sessions", error = %err, "session cookie not set; the response becomes a 500");
            Err(Refused::Failure(Failure {
                message: "session cookie not set",
                ..Failure::BROKEN
            }))
        }
    }
}

/// Whether the cookie this request opened was revoked after it opened (a `revoke_owner` or
/// another session's `revoke_others` while the request ran): sealing it anew would bring it
/// back to life. The request's own `revoke_others` does not count, nor does a session the
/// handler destroyed (what it writes after goes into a new one).
async fn revoked_meanwhile(
    session: &RequestSession,
    cookies: &crate::store::CookieStore,
) -> Result<bool, Refused> {
    let (owner, sealed_at, own) = {
        let state = session.state();
        match state.found() {
            Found::Sealed {
                owner: Some(owner),
                sealed_at,
                ..
            } if !state.destroyed => (owner.clone(), *sealed_at, state.revoked_at),
            _ => return Ok(false),
        }
    };
    let since = cookies.revoked_since(&owner).await?;
    Ok(since.is_some_and(|not_before| sealed_at < not_before && Some(not_before) != own))
}
