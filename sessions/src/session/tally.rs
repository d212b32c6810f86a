//! [`Tally`]: what happened to a request's session — the writes and how they ended, a login, a
//! logout, a revocation, a migration, an ended session it came with — kept while the request
//! runs and reported once, when its response is decided ([`SessionHandle::finish`]): to the
//! metrics (feature `metrics`) and to the layer's [`on_event`](crate::SessionLayer::on_event)
//! callbacks. One place for every adapter.
//!
//! [`SessionHandle::finish`]: super::SessionHandle

use super::failure::Failure;
use super::plan::Plan;
use crate::events::{Listeners, SessionEvent};
use crate::metrics::{self, LayerCounters, Revocation, SaveOutcome};

/// What happened to one request's session so far: counts in fixed fields (no allocation for
/// the common writes), and the events in order only when the layer has callbacks.
#[derive(Debug, Default)]
pub(crate) struct Tally {
    /// The layer has `on_event` callbacks: the events are kept, in order.
    listening: bool,
    events: Vec<SessionEvent>,
    /// Writes, by how they ended (indexed by [`SaveOutcome`]).
    saves: [u32; 5],
    created: u32,
    cycled: u32,
    destroyed: u32,
    expired: u32,
    /// Slots migrated on load: name, from, to.
    migrated: Vec<(&'static str, u32, u32)>,
    /// Revocations: how, and how many sessions each ended.
    revoked: Vec<(Revocation, u64)>,
}

impl Tally {
    /// Whether nothing happened (the common read-only request).
    pub(crate) fn is_empty(&self) -> bool {
        self.saves == [0; 5]
            && self.created + self.cycled + self.destroyed + self.expired == 0
            && self.migrated.is_empty()
            && self.revoked.is_empty()
    }

    fn tell(&mut self, event: SessionEvent) {
        if self.listening {
            self.events.push(event);
        }
    }

    fn created(&mut self) {
        self.created += 1;
        self.tell(SessionEvent::Created);
    }

    fn cycled(&mut self) {
        self.cycled += 1;
        self.tell(SessionEvent::Cycled);
    }

    fn destroyed(&mut self) {
        self.destroyed += 1;
        self.tell(SessionEvent::Destroyed);
    }

    /// A plan was carried out; `failure`: why it could not be, if it could not.
    pub(crate) fn ran(&mut self, plan: Plan, failure: Option<Failure>, wrote: Wrote) {
        let outcome = match failure.map(|failure| failure.reason) {
            None => SaveOutcome::Stored,
            Some("ended") => SaveOutcome::Ended,
            Some("moved") => SaveOutcome::Moved,
            Some("conflict") => SaveOutcome::Conflict,
            Some("unavailable" | "busy") => SaveOutcome::Unavailable,
            // A failure of the app's setup or of the session's data: counted as a rejection.
            Some(_) => return,
        };
        let ok = failure.is_none();
        let saved = match plan {
            Plan::Nothing | Plan::Load | Plan::Announce | Plan::Forget => false,
            Plan::Fail(_) | Plan::Save { .. } => true,
            Plan::Create { .. } => {
                if ok {
                    self.created();
                }
                true
            }
            Plan::Cycle { .. } => {
                if ok && wrote.moved {
                    self.cycled();
                }
                true
            }
            Plan::Destroy => {
                if ok {
                    self.destroyed();
                }
                false
            }
            Plan::Replace { .. } => {
                if ok {
                    self.destroyed();
                    self.created();
                }
                true
            }
            Plan::Seal { .. } => {
                if ok {
                    if wrote.destroyed {
                        self.destroyed();
                    }
                    if !wrote.carried || wrote.destroyed {
                        self.created();
                    } else if wrote.moved {
                        self.cycled();
                    }
                }
                true
            }
        };
        if saved {
            self.saves[outcome as usize] += 1;
        }
    }

    /// The request came with a session that had ended.
    pub(crate) fn expired(&mut self) {
        self.expired += 1;
        self.tell(SessionEvent::Expired);
    }

    /// A slot was migrated when the request loaded it (once per slot and request, however
    /// often the request asks for it).
    pub(crate) fn migrated(&mut self, name: &'static str, from: u32, to: u32) {
        if !self.migrated.iter().any(|(known, ..)| *known == name) {
            self.migrated.push((name, from, to));
            self.tell(SessionEvent::Migrated { name, from, to });
        }
    }

    /// The request revoked `count` sessions of `owner`, `how`.
    pub(crate) fn revoked(&mut self, how: Revocation, owner: &str, count: u64) {
        if count > 0 {
            self.revoked.push((how, count));
            self.tell(SessionEvent::Revoked {
                owner: owner.to_owned(),
            });
        }
    }

    /// Counts it all, and tells the callbacks: once, when the response is decided. `failure`:
    /// the error response the layer made, if it made one.
    pub(crate) fn report(
        self,
        counters: &LayerCounters,
        listeners: &Listeners,
        failure: Option<Failure>,
    ) {
        if let Some(failure) = failure {
            metrics::rejection(failure.status, failure.reason);
        }
        counters.count(self.saves, self.created, self.cycled, self.destroyed);
        for _ in 0..self.expired {
            metrics::expired_on_load();
        }
        for (name, from, to) in &self.migrated {
            metrics::migrated(name, *from, *to);
        }
        for (how, count) in &self.revoked {
            metrics::revoked(*how, *count);
        }
        for event in &self.events {
            listeners.tell(event);
        }
    }
}

/// What a carried-out plan needs to know of the request to tell what happened.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Wrote {
    /// The request carried a session (a cookie or an id).
    pub(crate) carried: bool,
    /// The session moved to a new id (a login this request made, not one it followed).
    pub(crate) moved: bool,
    /// The handler destroyed the session (a cookie sealed after it holds a new one).
    pub(crate) destroyed: bool,
}

impl super::RequestSession {
    /// What happened to the session so far.
    fn tally(&self) -> std::sync::MutexGuard<'_, Tally> {
        // Every critical section is a few additions; a panic in one leaves consistent data.
        self.tally
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Notes what happened, when anyone counts or listens (else nothing is kept: no cost
    /// without a metrics recorder or an `on_event` callback).
    pub(crate) fn note(&self, what: impl FnOnce(&mut Tally)) {
        if self.reports() {
            let mut tally = self.tally();
            tally.listening = !self.config.events.is_empty();
            what(&mut tally);
        }
    }

    /// Whether anyone counts or listens to what happens (a metrics recorder, an `on_event`
    /// callback), as the request began: what costs a store call to find out is found out only
    /// then.
    pub(crate) fn reports(&self) -> bool {
        self.reports
    }

    /// The response is decided (`failure`: the error response the layer made, if any): counts
    /// what happened and tells the layer's callbacks.
    pub(crate) fn report(&self, failure: Option<Failure>) {
        if failure.is_none() && !self.reports() {
            return;
        }
        let tally = std::mem::take(&mut *self.tally());
        if tally.is_empty() && failure.is_none() {
            return;
        }
        tally.report(&self.config.metrics, &self.config.events, failure);
    }
}

/// The span of one plan carried out (`sessions.apply`, level `debug`): the plan, the keyed hash
/// the session is filed under before (`session.previous_id`) and after (`session.id`) — never
/// the id the client holds — and the outcome. Nothing is computed when no subscriber listens.
pub(crate) fn plan_span(session: &super::RequestSession, plan: Plan) -> tracing::Span {
    if !tracing::level_enabled!(tracing::Level::DEBUG) {
        return tracing::Span::none();
    }
    let span = tracing::debug_span!(
        target: "sessions",
        "sessions.apply",
        otel.name = "session apply",
        session.plan = ?plan,
        session.previous_id = tracing::field::Empty,
        session.id = tracing::field::Empty,
        session.outcome = tracing::field::Empty,
        otel.status_code = tracing::field::Empty,
    );
    if !span.is_disabled()
        && let Some(key) = session.home_key(&session.state())
    {
        span.record("session.previous_id", tracing::field::display(&key));
    }
    span
}

/// Notes how the plan of `span` ended.
pub(crate) fn plan_done(
    span: &tracing::Span,
    session: &super::RequestSession,
    failure: Option<Failure>,
) {
    if span.is_disabled() {
        return;
    }
    if let Some(key) = session.home_key(&session.state()) {
        span.record("session.id", tracing::field::display(&key));
    }
    match failure {
        None => span.record("session.outcome", "done"),
        Some(failure) => {
            span.record("otel.status_code", "ERROR");
            span.record("session.outcome", failure.reason)
        }
    };
}
