//! The one place a [`Plan`] is carried out: against the store (through `store::ops`) or the
//! cookie, with what the response must then carry.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tracing::Instrument;

use super::failure::Failure;
use super::owners;
use super::plan::Plan;
use super::state::{Action, Found, Home, Token};
use super::tally::{Wrote, plan_done, plan_span};
use super::{Carrier, RequestSession, SessionRejection, Source};
use crate::expiry::{Deadline, Expiry};
use crate::id::{SessionId, SessionKey};
use crate::record::Changeset;
use crate::store::cookie::{Sealing, Stamp};
use crate::store::ops::{self, Cycled, Saved};
use crate::store::{CookieStore, Entry, Owner, SessionStore, StoreError, Stored};

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
            Refused::Store(err) => Failure::of_store(err),
        }
    }

    /// A store that failed or is not set up is an `error`, one busy beyond waiting a `warn`;
    /// a race another request won (409) is an ordinary `debug` line, and so is a failure
    /// whose cause was logged where it happened.
    fn log(&self) {
        let failure = self.failure();
        let (status, reason) = (failure.status.as_u16(), failure.reason);
        match self {
            Refused::Store(StoreError::Conflict(_) | StoreError::Apply(_))
            | Refused::Failure(_)
            | Refused::Ended => {
                tracing::debug!(target: "sessions", reason, "{}; the response becomes a {status}", failure.message);
            }
            Refused::Store(err @ StoreError::Contended) => {
                tracing::warn!(target: "sessions", error = %err, reason, "session not saved; the response becomes a {status}");
            }
            Refused::Store(err) => {
                tracing::error!(target: "sessions", error = %err, reason, "session not saved; the response becomes a {status}");
            }
        }
    }

    fn rejection(self) -> SessionRejection {
        match self {
            Refused::Ended => SessionRejection::Ended,
            Refused::Store(StoreError::Conflict(conflict)) => SessionRejection::Conflict(conflict),
            Refused::Store(err @ (StoreError::Backend(_) | StoreError::NotSetUp { .. })) => {
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
    let span = plan_span(session, plan);
    let result = run(session, plan, Keep::Nothing)
        .instrument(span.clone())
        .await;
    tally(session, plan, &result, &span);
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
    let span = plan_span(session, plan);
    let result = run(session, plan, Keep::Base)
        .instrument(span.clone())
        .await;
    tally(session, plan, &result, &span);
    match result {
        Ok(Some(token)) => {
            session.state().announce = Some(Box::new(token));
            Ok(())
        }
        Ok(None) => Ok(()),
        Err(refused) => Err(refused.rejection()),
    }
}

/// Notes what carrying out `plan` did, for the metrics and the session events (`tally.rs`).
fn tally(
    session: &RequestSession,
    plan: Plan,
    result: &Result<Option<Token>, Refused>,
    span: &tracing::Span,
) {
    let failure = result.as_ref().err().map(Refused::failure);
    plan_done(span, session, failure);
    if matches!(
        plan,
        Plan::Nothing | Plan::Load | Plan::Announce | Plan::Forget
    ) {
        return;
    }
    let (action, destroyed) = {
        let state = session.state();
        (state.action, state.destroyed)
    };
    let wrote = Wrote {
        carried: session.source.carried(),
        // A login this request made (a cycle that followed another's made none).
        moved: match plan {
            Plan::Cycle { .. } => matches!(result, Ok(Some(_))),
            _ => action == Action::Cycle,
        },
        destroyed,
    };
    session.note(|tally| tally.ran(plan, failure, wrote));
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
            // The cap fails closed: a login it cannot check does not stand (the session just
            // bound is ended, and the request fails with the store's error: a 503 when the
            // store is down), never a session beyond the cap answered as signed in.
            tracing::error!(target: "sessions", error = %err, "the cap on an owner's sessions cannot be checked; the login is undone");
            if let Err(undone) = ops::destroy(store, key).await {
                tracing::error!(target: "sessions", error = %undone, "the session of a login the cap could not check was not ended either");
            }
            Err(Refused::Store(err))
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
        Refused::Failure(Failure::NO_ID)
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
                deadline.filter(|_| !followed && session.carrier == Carrier::Cookie)
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
    match &session.source {
        Source::Store { store, .. } => {
            let key = session.home_key(&session.state());
            if let Some(key) = key
                && let Err(err) = ops::destroy(store.as_ref(), &key).await
            {
                tracing::error!(target: "sessions", error = %err, "session not destroyed");
                return Err(Refused::Failure(Failure::NOT_DESTROYED));
            }
        }
        Source::Cookie { cookies, .. } if cookies.revokes() => {
            if let Err(err) = end_cookie(session, cookies).await {
                tracing::error!(target: "sessions", error = %err, "session cookie not revoked");
                return Err(Refused::Failure(Failure::NOT_DESTROYED));
            }
        }
        Source::Cookie { .. } => {}
    }
    Ok(Some(Token::Clear))
}

/// Revokes the cookie the request carried (a logout), so that no copy of it opens again; one
/// that did not open (none, tampered, expired, revoked) has nothing to revoke.
async fn end_cookie(session: &RequestSession, cookies: &CookieStore) -> Result<(), StoreError> {
    session
        .load()
        .await
        .map_err(|err| StoreError::Backend(err.to_string().into()))?;
    let stamp = match session.state().found() {
        Found::Sealed { stamp, .. } => stamp.clone(),
        _ => return Ok(()),
    };
    cookies.end(&stamp, session.config.clock.now()).await
}

async fn seal(session: &RequestSession, deadline: Deadline) -> Result<Option<Token>, Refused> {
    let Source::Cookie { cookies, .. } = &session.source else {
        return Err(Refused::Failure(Failure::BROKEN));
    };
    let config = &session.config;
    let now = config.clock.now();
    let record = session.state().view().clone();
    let stamp = if cookies.revokes() {
        let Some(stamp) = stamp(session, cookies, &record, deadline, now).await? else {
            let wrote = {
                let state = session.state();
                state.has_changes() || state.action == Action::Cycle
            };
            // Like a save of a server-side session that ended: a change is refused, a refresh
            // (or a reseal with the current key) has nothing to tell.
            return if wrote { Err(Refused::Ended) } else { Ok(None) };
        };
        Some(stamp)
    } else {
        None
    };
    let sealed = cookies.seal(
        config.cookie.cookie_name(),
        &record,
        deadline,
        config.format,
        stamp.as_ref(),
        now,
    );
    match sealed {
        Ok(token) => Ok(Some(token_until(session, &token, deadline, now))),
        Err(err) => {
            tracing::error!(target: "sessions", error = %err, "session cookie not set; the response becomes a 500");
            Err(Refused::Failure(Failure::COOKIE_NOT_SET))
        }
    }
}

/// The stamp (id, owner) to seal the cookie with, from a store with a revocation list; `None`
/// when the cookie this request opened was revoked after it opened (a logout of a copy,
/// `revoke_owner`, another session's `revoke_others`, the cap): sealing it anew would bring it
/// back to life. The request's own `revoke_others` does not count, nor does a session the
/// handler destroyed (what it writes after goes into a new one). The cookie the request
/// carried is revoked when the session ends or changes hands here (`destroy()`, `cycle_id()`,
/// another owner).
async fn stamp(
    session: &RequestSession,
    cookies: &CookieStore,
    record: &crate::record::Record,
    deadline: Deadline,
    now: SystemTime,
) -> Result<Option<Stamp>, Refused> {
    let config = &session.config;
    let owner = config.registry.owner_in(record).unwrap_or_else(|err| {
        tracing::error!(target: "sessions", error = %err, "the owner field cannot be read; the cookie is sealed without an owner");
        None
    });
    let (old, destroyed, cycled, own_revocation) = {
        let state = session.state();
        let old = match state.found() {
            Found::Sealed { stamp, .. } => Some(stamp.clone()),
            _ => None,
        };
        (
            old,
            state.destroyed,
            state.action == Action::Cycle,
            state.revoked_at,
        )
    };
    let sealing = Sealing {
        old: old.as_deref(),
        destroyed,
        cycled,
        owner: owner.map(String::into_boxed_str),
        expires_at: deadline.expires_at,
        cap: config.max_sessions_per_owner,
        own_revocation,
        now,
    };
    Ok(cookies.prepare(sealing).await?)
}
