//! [`Measured`]: the store a `SessionLayer` talks to — its own store, wrapped so that every
//! store call is timed (`sessions_store_seconds`, feature `metrics`) and traced (one span per
//! call, after OpenTelemetry's database conventions) in this one place rather than in each
//! store, and every write's size recorded (`sessions_record_bytes`).
//!
//! With no recorder installed and no subscriber listening to its spans, a call goes straight
//! to the store's own future: no clock read, no allocation, no span.
//!
//! A span (`sessions.store`, level `debug`, target `sessions::store`) carries `otel.name`
//! (`"load sqlite"`), `otel.kind = "client"`, `db.system.name` (the store's
//! [`name`](SessionStore::name)), `db.operation.name` (`load`, `swap`, `update`, `owned_by`),
//! `session.id` — the keyed hash the store files the session under, never the id the cookie
//! carries — and, once the call is done, `session.outcome` (`found`, `none`, `written`,
//! `refused`, `listed`, `error`) and, on an error, `error.type` and `otel.status_code = "ERROR"`.
//! A store that is down is logged at `warn` here, with the store and the operation.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;

use tracing::Instrument;
use tracing::field::Empty;

use super::{
    Edit, Entry, OwnedEntries, ReadMark, ScanCursor, ScanPage, SessionStore, StoreError, Stored,
};
use crate::id::SessionKey;
use crate::metrics::{self, StoreKeys, StoreOp};
use crate::record::Record;

/// A store, timed and traced (see the module's docs).
pub(crate) struct Measured<S> {
    inner: S,
    keys: StoreKeys,
}

impl<S: SessionStore> Measured<S> {
    pub(crate) fn new(inner: S) -> Self {
        let keys = StoreKeys::new(inner.name());
        Self { inner, keys }
    }
}

/// The size of what a record stores: its slots' names and their fields' names and bytes (the
/// store's own framing adds a few bytes per slot).
pub(crate) fn stored_size(record: &Record) -> u64 {
    record
        .slots()
        .map(|slot| {
            let fields: usize = slot
                .fields()
                .map(|(name, bytes)| name.len() + bytes.len())
                .sum();
            (slot.name().len() + fields) as u64
        })
        .sum()
}

/// The span of one store call: none unless a subscriber takes `debug` (a disabled span costs
/// something even so: without a subscriber at all, `tracing` hands it to `log`).
fn span(store: &'static str, op: StoreOp, key: Option<&SessionKey>) -> tracing::Span {
    if !tracing::level_enabled!(tracing::Level::DEBUG) {
        return tracing::Span::none();
    }
    tracing::debug_span!(
        target: "sessions::store",
        "sessions.store",
        otel.name = %format_args!("{} {store}", op.as_str()),
        otel.kind = "client",
        otel.status_code = Empty,
        db.system.name = store,
        db.operation.name = op.as_str(),
        session.id = key.map(tracing::field::display),
        session.outcome = Empty,
        error.r#type = Empty,
    )
}

/// Notes how a call ended on its span (and logs a store that is down).
fn ended<T>(
    span: &tracing::Span,
    store: &'static str,
    op: StoreOp,
    result: &Result<T, StoreError>,
    outcome: impl FnOnce(&T) -> &'static str,
) {
    match result {
        Ok(value) => {
            span.record("session.outcome", outcome(value));
        }
        Err(err) => {
            span.record("session.outcome", "error");
            span.record("otel.status_code", "ERROR");
            span.record("error.type", error_type(err));
            if matches!(err, StoreError::Backend(_)) {
                tracing::warn!(target: "sessions::store", store, op = op.as_str(), error = %err, "session store call failed");
            }
        }
    }
}

/// A low-cardinality name of a store error (`error.type`).
fn error_type(err: &StoreError) -> &'static str {
    match err {
        StoreError::Backend(_) => "backend",
        StoreError::Record(_) => "unreadable",
        StoreError::Conflict(_) | StoreError::Apply(_) => "conflict",
        StoreError::Contended => "contended",
        StoreError::Collision => "collision",
        StoreError::NotSetUp { .. } => "not_set_up",
        StoreError::Unsupported(_) => "unsupported",
    }
}

type Boxed<'a, T> = Pin<Box<dyn Future<Output = Result<T, StoreError>> + Send + 'a>>;

/// What a write stored, from its result and the size of the entry it was given, if any: the
/// value of `sessions_record_bytes`.
type Wrote<T> = fn(&Result<T, StoreError>, Option<u64>) -> Option<u64>;

/// A store call timed, with no span: the store's own future, and what to record once it is
/// done (a small future: what the call carries is in the store's future already).
struct Timed<'a, T> {
    inner: Boxed<'a, T>,
    keys: &'a StoreKeys,
    op: StoreOp,
    started: Option<Instant>,
    size: Option<u64>,
    wrote: Wrote<T>,
}

impl<T> Future for Timed<'_, T> {
    type Output = Result<T, StoreError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let result = std::task::ready!(self.inner.as_mut().poll(cx));
        self.keys.timed(self.op, self.started);
        if let Some(bytes) = (self.wrote)(&result, self.size) {
            self.keys.wrote(bytes);
        }
        if let Err(err @ StoreError::Backend(_)) = &result {
            tracing::warn!(target: "sessions::store", op = self.op.as_str(), error = %err, "session store call failed");
        }
        Poll::Ready(result)
    }
}

fn wrote_nothing<T>(_: &Result<T, StoreError>, _: Option<u64>) -> Option<u64> {
    None
}

impl<S: SessionStore> Measured<S> {
    /// The store's future `inner` for `op` (on `key`), timed when a recorder is installed and
    /// traced when a subscriber listens; `inner` itself when neither.
    fn call<'a, T: Send + 'a>(
        &'a self,
        op: StoreOp,
        key: Option<&SessionKey>,
        size: Option<u64>,
        wrote: Wrote<T>,
        outcome: fn(&T) -> &'static str,
        inner: Boxed<'a, T>,
    ) -> Boxed<'a, T> {
        let store = self.inner.name();
        let span = span(store, op, key);
        let started = metrics::start();
        if span.is_disabled() {
            return match started {
                None => inner,
                Some(_) => Box::pin(Timed {
                    inner,
                    keys: &self.keys,
                    op,
                    started,
                    size,
                    wrote,
                }),
            };
        }
        Box::pin(async move {
            let result = inner.instrument(span.clone()).await;
            self.keys.timed(op, started);
            if let Some(bytes) = wrote(&result, size).filter(|_| started.is_some()) {
                self.keys.wrote(bytes);
            }
            ended(&span, store, op, &result, outcome);
            result
        })
    }
}

#[async_trait::async_trait]
impl<S: SessionStore> SessionStore for Measured<S> {
    fn load<'life0, 'life1, 'async_trait>(
        &'life0 self,
        key: &'life1 SessionKey,
    ) -> Boxed<'async_trait, Option<Entry>>
    where
        'life0: 'async_trait,
        'life1: 'async_trait,
        Self: 'async_trait,
    {
        let inner = self.inner.load(key);
        let outcome = |found: &Option<Entry>| if found.is_some() { "found" } else { "none" };
        self.call(
            StoreOp::Load,
            Some(key),
            None,
            wrote_nothing,
            outcome,
            inner,
        )
    }

    /// Timed and traced as a `load` (the replica a store may answer from is its own affair).
    fn load_for_read<'life0, 'life1, 'async_trait>(
        &'life0 self,
        key: &'life1 SessionKey,
        mark: ReadMark,
    ) -> Boxed<'async_trait, Option<Entry>>
    where
        'life0: 'async_trait,
        'life1: 'async_trait,
        Self: 'async_trait,
    {
        let inner = self.inner.load_for_read(key, mark);
        let outcome = |found: &Option<Entry>| if found.is_some() { "found" } else { "none" };
        self.call(
            StoreOp::Load,
            Some(key),
            None,
            wrote_nothing,
            outcome,
            inner,
        )
    }

    fn read_mark_ttl(&self) -> Option<std::time::Duration> {
        self.inner.read_mark_ttl()
    }

    fn swap<'life0, 'life1, 'async_trait>(
        &'life0 self,
        key: &'life1 SessionKey,
        current: Option<u64>,
        new: Option<Entry>,
    ) -> Boxed<'async_trait, bool>
    where
        'life0: 'async_trait,
        'life1: 'async_trait,
        Self: 'async_trait,
    {
        let size = match &new {
            Some(Entry::Live { session, .. }) if metrics::recording() => {
                Some(stored_size(&session.record))
            }
            _ => None,
        };
        let inner = self.inner.swap(key, current, new);
        let wrote: Wrote<bool> = |result, size| size.filter(|_| matches!(result, Ok(true)));
        let outcome = |wrote: &bool| if *wrote { "written" } else { "refused" };
        self.call(StoreOp::Swap, Some(key), size, wrote, outcome, inner)
    }

    fn update<'life0, 'life1, 'life2, 'life3, 'async_trait>(
        &'life0 self,
        key: &'life1 SessionKey,
        version: u64,
        session: Stored,
        edit: &'life2 mut Edit<'life3>,
    ) -> Boxed<'async_trait, Option<Stored>>
    where
        'life0: 'async_trait,
        'life1: 'async_trait,
        'life2: 'async_trait,
        'life3: 'async_trait,
        Self: 'async_trait,
    {
        let inner = self.inner.update(key, version, session, edit);
        let wrote: Wrote<Option<Stored>> = |result, _| match result {
            Ok(Some(stored)) => Some(stored_size(&stored.record)),
            _ => None,
        };
        let outcome = |updated: &Option<Stored>| {
            if updated.is_some() {
                "written"
            } else {
                "refused"
            }
        };
        self.call(StoreOp::Update, Some(key), None, wrote, outcome, inner)
    }

    fn owned_by<'life0, 'life1, 'async_trait>(
        &'life0 self,
        owner: &'life1 str,
    ) -> Boxed<'async_trait, Vec<(SessionKey, Entry)>>
    where
        'life0: 'async_trait,
        'life1: 'async_trait,
        Self: 'async_trait,
    {
        let inner = self.inner.owned_by(owner);
        let outcome = |_: &Vec<(SessionKey, Entry)>| "listed";
        self.call(StoreOp::OwnedBy, None, None, wrote_nothing, outcome, inner)
    }

    fn owned_entries<'life0, 'life1, 'async_trait>(
        &'life0 self,
        owner: &'life1 str,
    ) -> Boxed<'async_trait, OwnedEntries>
    where
        'life0: 'async_trait,
        'life1: 'async_trait,
        Self: 'async_trait,
    {
        let inner = self.inner.owned_entries(owner);
        let outcome = |_: &OwnedEntries| "listed";
        self.call(StoreOp::OwnedBy, None, None, wrote_nothing, outcome, inner)
    }

    async fn scan(
        &self,
        cursor: Option<&ScanCursor>,
        limit: usize,
    ) -> Result<ScanPage, StoreError> {
        self.inner.scan(cursor, limit).await
    }

    async fn delete_expired(&self) -> Result<u64, StoreError> {
        self.inner.delete_expired().await
    }

    fn name(&self) -> &'static str {
        self.inner.name()
    }

    fn lists_owners(&self) -> bool {
        self.inner.lists_owners()
    }

    async fn count_live(&self) -> Result<u64, StoreError> {
        self.inner.count_live().await
    }

    async fn has_ended(&self, key: &SessionKey) -> Result<bool, StoreError> {
        self.inner.has_ended(key).await
    }
}
