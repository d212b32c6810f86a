//! After the handler: save what changed, set or clear the cookie, refresh the expiry.

use std::time::{Duration, SystemTime};

use http::{HeaderName, HeaderValue, Response, StatusCode, header};

use super::{Backend, Config, Transport};
use crate::expiry::{Deadline, Expiry};
use crate::handle::{Action, Incoming, RequestSession};
use crate::id::SessionId;
use crate::record::{Changeset, Record};
use crate::store::{SaveOutcome, SessionStore, StoreError};

/// How many times a new session retries after an id collision (2^-256 each: this is for a
/// broken random source, which should fail loudly rather than loop).
const CREATE_ATTEMPTS: usize = 3;

/// Whether the request needs nothing after the handler (the common read-only request): true
/// only where [`finish`] would do nothing either. Decided without an `await`, so that the
/// layer's own future need not hold `finish`'s (it boxes that only when there is work).
pub(super) fn nothing_to_do<B>(session: &RequestSession, response: &Response<B>) -> bool {
    let pending = session.pending();
    if pending.action != Action::Keep || pending.has_changes() || pending.encode_error.is_some() {
        return false;
    }
    let Some(Ok(loaded)) = session.loaded() else {
        // Nothing loaded (or the load failed) and nothing asked: `finish` returns at once.
        return true;
    };
    let config = &session.config;
    match (&config.backend, &session.incoming) {
        (Backend::Store(_), Incoming::Id(_)) => {
            if pending.saved_in_handler {
                return false;
            }
            let now = config.clock.now();
            let expiry = session.expiry(&pending);
            let refresh_due = loaded.deadline.is_some_and(|d| expiry.refresh_due(&d, now));
            response.status().is_server_error() || !refresh_due
        }
        // A new session without changes is not created.
        (Backend::Store(_), _) => true,
        (Backend::Cookie(_), _) => false,
    }
}

/// After the handler: save what changed, set or clear the cookie, refresh the expiry.
pub(super) async fn finish<B: Default>(session: &RequestSession, response: &mut Response<B>) {
    let config = &session.config;
    let must_load = {
        let pending = session.pending();
        pending.action == Action::Cycle || pending.has_changes()
    };
    if must_load {
        // cycle_id() needs the data it moves, and changes made without a load (set_expiry,
        // remove) need the session they change, even if no handler loaded it.
        let _ = session.load().await;
    }
    // Nothing extracted the session: nothing can have changed.
    let Some(Ok(loaded)) = session.loaded() else {
        if session.pending().action == Action::Destroy {
            // destroy() without a load: delete what the request points at.
            destroy(session, response).await;
        } else if let Some(Err(err)) = session.loaded()
            && must_load
            && !response.status().is_server_error()
        {
            // A cycle or change the store could not take must not look successful.
            save_failed(response, err);
        }
        return;
    };
    let (exists, stored_deadline, needs_reseal) =
        (loaded.exists, loaded.deadline, loaded.needs_reseal);

    let taken = {
        let mut pending = session.pending();
        match pending.encode_error.take() {
            Some(err) => Err(err),
            None => {
                // The policy may be stored in the record: read it before taking the record.
                let expiry = session.expiry(&pending);
                let (changes, record) = pending.take_final();
                Ok((
                    pending.action,
                    changes,
                    record,
                    pending.new_id.take(),
                    expiry,
                    pending.saved_in_handler,
                ))
            }
        }
    };
    let (action, changes, record, new_id, expiry, saved_in_handler) = match taken {
        Ok(taken) => taken,
        Err(err) => {
            tracing::error!(target: "sessions", error = %err, "session change cannot be encoded; the response becomes a 500");
            fail(
                response,
                StatusCode::INTERNAL_SERVER_ERROR,
                "session change cannot be encoded",
            );
            return;
        }
    };

    if action == Action::Destroy {
        destroy(session, response).await;
        return;
    }
    let now = config.clock.now();
    let created_at = stored_deadline.map_or(now, |d| d.created_at);
    let deadline = expiry.deadline(created_at, now);
    let refresh_due = stored_deadline.is_some_and(|d| expiry.refresh_due(&d, now));
    let server_error = response.status().is_server_error();
    let out = Outgoing {
        config,
        expiry,
        deadline,
        now,
    };

    match &config.backend {
        Backend::Cookie(cookies) => {
            let changed = !changes.is_empty() || action == Action::Cycle;
            if server_error || !(changed || (exists && (needs_reseal || refresh_due))) {
                return;
            }
            let out = Outgoing {
                deadline: if changed || refresh_due {
                    deadline
                } else {
                    stored_deadline.unwrap_or(deadline)
                },
                ..out
            };
            let record = record.with(&changes);
            if record.is_empty() {
                clear_cookie(config, response);
                return;
            }
            match cookies.seal(
                config.cookie.cookie_name(),
                &record,
                out.deadline,
                config.format,
            ) {
                Ok(token) => out.set_cookie(response, &token),
                Err(err) => {
                    tracing::error!(target: "sessions", error = %err, "session cookie not set; the response becomes a 500");
                    fail(
                        response,
                        StatusCode::INTERNAL_SERVER_ERROR,
                        "session cookie not set",
                    );
                }
            }
        }
        Backend::Store(store) => {
            let Incoming::Id(old_id) = &session.incoming else {
                if !changes.is_empty() && !server_error {
                    out.create(store.as_ref(), response, record.with(&changes), None)
                        .await;
                }
                return;
            };
            if action == Action::Cycle && !server_error {
                // The store moves the session as it is stored now, not as this request loaded
                // it, in one step: a save another request made before is carried over, one
                // made after finds the old id gone, and a session destroyed meanwhile (logout)
                // does not come back under a new id.
                if exists {
                    out.cycle(store.as_ref(), response, old_id, &changes, new_id)
                        .await;
                } else {
                    out.create(store.as_ref(), response, record.with(&changes), new_id)
                        .await;
                }
                return;
            }
            if server_error {
                return;
            }
            if changes.is_empty() && !refresh_due {
                // A save the handler made itself moved the deadline: the cookie follows.
                if saved_in_handler && exists {
                    out.after_save(response, old_id, stored_deadline, false);
                }
                return;
            }
            if !exists {
                if !changes.is_empty() {
                    out.create(store.as_ref(), response, record.with(&changes), None)
                        .await;
                }
                return;
            }
            // The store may share the loaded slots (MemoryStore does): let it change them in
            // place instead of copying them.
            drop(record);
            match store.save(&old_id.key(), &changes, deadline).await {
                Ok(SaveOutcome::Saved) => {
                    out.after_save(response, old_id, stored_deadline, refresh_due);
                }
                Ok(SaveOutcome::Missing) => {
                    tracing::info!(
                        target: "sessions",
                        session_key = %old_id.key(),
                        "session ended while the request ran (logout or expiry); its changes are dropped"
                    );
                }
                Err(err) => save_failed(response, &err),
            }
        }
    }
}

/// What a response that hands out the session needs: where it goes, and until when.
struct Outgoing<'a> {
    config: &'a Config,
    expiry: Expiry,
    deadline: Deadline,
    now: SystemTime,
}

impl Outgoing<'_> {
    /// After a save: a save moves the deadline, and a persistent cookie's Max-Age must move with
    /// it, or the browser drops a session the server still keeps alive.
    fn after_save<B>(
        &self,
        response: &mut Response<B>,
        id: &SessionId,
        stored_deadline: Option<Deadline>,
        refresh_due: bool,
    ) {
        let moved = stored_deadline.is_none_or(|d| d.expires_at != self.deadline.expires_at);
        if refresh_due || (moved && !self.expiry.is_browser_session()) {
            self.set_cookie(response, id.expose());
        }
    }

    /// Moves the stored session from `old` to a fresh id (`id` if `cycle_id` drew one already).
    async fn cycle<B: Default>(
        &self,
        store: &dyn SessionStore,
        response: &mut Response<B>,
        old: &SessionId,
        changes: &Changeset,
        mut id: Option<SessionId>,
    ) {
        for _ in 0..CREATE_ATTEMPTS {
            let Some(fresh) = fresh_id(&mut id, response) else {
                return;
            };
            match store
                .cycle(&old.key(), &fresh.key(), changes, self.deadline)
                .await
            {
                Ok(SaveOutcome::Saved) => {
                    self.set_cookie(response, fresh.expose());
                    return;
                }
                Ok(SaveOutcome::Missing) => {
                    tracing::info!(
                        target: "sessions",
                        session_key = %old.key(),
                        "session ended while the request ran (logout or expiry); cycle_id and its changes are dropped"
                    );
                    return;
                }
                Err(StoreError::Collision) => {
                    tracing::warn!(target: "sessions", "session id collision; drawing another");
                }
                Err(err) => {
                    save_failed(response, &err);
                    return;
                }
            }
        }
        ids_collide(response);
    }

    /// Files a new session under a fresh id (or `id`) and sets the cookie. An empty record
    /// (every slot removed) is not stored: there is nothing to keep.
    async fn create<B: Default>(
        &self,
        store: &dyn SessionStore,
        response: &mut Response<B>,
        record: Record,
        mut id: Option<SessionId>,
    ) {
        if record.is_empty() {
            return;
        }
        for _ in 0..CREATE_ATTEMPTS {
            let Some(fresh) = fresh_id(&mut id, response) else {
                return;
            };
            match store.create(&fresh.key(), &record, self.deadline).await {
                Ok(()) => {
                    self.set_cookie(response, fresh.expose());
                    return;
                }
                Err(StoreError::Collision) => {
                    tracing::warn!(target: "sessions", "session id collision; drawing another");
                }
                Err(err) => {
                    save_failed(response, &err);
                    return;
                }
            }
        }
        ids_collide(response);
    }

    /// Sets the cookie (or header) to `value`, with a `Max-Age` that follows the deadline.
    fn set_cookie<B>(&self, response: &mut Response<B>, value: &str) {
        let headers = response.headers_mut();
        match &self.config.transport {
            Transport::Header(name) => {
                if let Ok(value) = HeaderValue::from_str(value) {
                    headers.insert(name.clone(), value);
                }
            }
            Transport::Cookie => {
                let max_age = (!self.expiry.is_browser_session()).then(|| {
                    self.deadline
                        .remaining(self.now)
                        .max(Duration::from_secs(1))
                });
                headers.append(
                    header::SET_COOKIE,
                    self.config.cookie.set_cookie(value, max_age),
                );
            }
        }
        no_store(headers);
    }
}

/// `id`, or a new one; `None` after answering 500 when the random source fails.
fn fresh_id<B: Default>(
    id: &mut Option<SessionId>,
    response: &mut Response<B>,
) -> Option<SessionId> {
    match id.take().map_or_else(SessionId::generate, Ok) {
        Ok(fresh) => Some(fresh),
        Err(err) => {
            tracing::error!(target: "sessions", error = %err, "no session id");
            fail(response, StatusCode::INTERNAL_SERVER_ERROR, "no session id");
            None
        }
    }
}

fn ids_collide<B: Default>(response: &mut Response<B>) {
    fail(
        response,
        StatusCode::INTERNAL_SERVER_ERROR,
        "session ids keep colliding: the random source is broken",
    );
}

async fn destroy<B: Default>(session: &RequestSession, response: &mut Response<B>) {
    let config = &session.config;
    if let (Backend::Store(store), Incoming::Id(id)) = (&config.backend, &session.incoming)
        && let Err(err) = store.delete(&id.key()).await
    {
        tracing::error!(target: "sessions", error = %err, "session not destroyed");
        fail(
            response,
            StatusCode::SERVICE_UNAVAILABLE,
            "session not destroyed",
        );
        return;
    }
    if !matches!(session.incoming, Incoming::Nothing) {
        clear_cookie(config, response);
    }
}

fn save_failed<B: Default>(response: &mut Response<B>, err: &StoreError) {
    let (status, message) = match err {
        StoreError::Backend(_) => (StatusCode::SERVICE_UNAVAILABLE, "session not saved"),
        StoreError::Conflict(_) => (
            StatusCode::CONFLICT,
            "session changed by another request; not saved",
        ),
        _ => (StatusCode::INTERNAL_SERVER_ERROR, "session not saved"),
    };
    tracing::error!(target: "sessions", error = %err, "session not saved; the response becomes a {}", status.as_u16());
    fail(response, status, message);
}

/// Replaces the response with an error: the handler's work was not saved, so it must not
/// look successful. `message` is fixed text for the client, never a backend's error (that
/// goes to the log).
fn fail<B: Default>(response: &mut Response<B>, status: StatusCode, message: &'static str) {
    let mut failed = Response::new(B::default());
    *failed.status_mut() = status;
    failed.headers_mut().insert(
        HeaderName::from_static("x-session-error"),
        HeaderValue::from_static(message),
    );
    *response = failed;
}

fn clear_cookie<B>(config: &Config, response: &mut Response<B>) {
    let headers = response.headers_mut();
    match &config.transport {
        Transport::Header(name) => {
            headers.insert(name.clone(), HeaderValue::from_static(""));
        }
        Transport::Cookie => {
            headers.append(header::SET_COOKIE, config.cookie.removal());
        }
    }
    no_store(headers);
}

/// Responses that carry a session token must not be cached by shared caches.
fn no_store(headers: &mut http::HeaderMap) {
    if !headers.contains_key(header::CACHE_CONTROL) {
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
}
