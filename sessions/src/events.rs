//! [`SessionEvent`]: what happened to a session, told to the app through
//! [`SessionLayer::on_event`](crate::SessionLayer::on_event) — for an audit log, or to close a
//! user's websockets when their sessions are revoked.
//!
//! The events of a request are told once its response is decided (after the handler, after
//! the session was saved or not), in the order they happened; those of an operation outside a
//! request (`SessionLayer::revoke_owner`) when it is done. A callback never sees a session id
//! (nor the keyed hash a store files it under), and it cannot fail the request: it returns
//! nothing, and a callback that panics is caught, logged at `error`, and the request goes on
//! (the other callbacks still run).

use std::sync::Arc;

/// Something that happened to a session (see [`SessionLayer::on_event`](crate::SessionLayer::on_event)).
///
/// `Debug` shows the variant's name and its fields:
///
/// ```
/// use sessions::SessionEvent;
/// assert_eq!(format!("{:?}", SessionEvent::Cycled), "Cycled");
/// let migrated = SessionEvent::Migrated { name: "cart", from: 1, to: 2 };
/// assert_eq!(format!("{migrated:?}"), r#"Migrated { name: "cart", from: 1, to: 2 }"#);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SessionEvent {
    /// A new session was stored (its first write).
    Created,
    /// A login: the session moved to a new id (`SessionHandle::cycle_id()`).
    Cycled,
    /// A logout: the session was ended (`SessionHandle::destroy()`).
    Destroyed,
    /// Sessions of `owner` were ended by `revoke_owner`, `revoke_others`, `revoke(reference)`
    /// or the cap on an owner's sessions (one event per operation that ended any).
    Revoked {
        /// The owner, as rendered (`"42"`).
        owner: String,
    },
    /// The request came with a session that had ended (where the store can tell: memory,
    /// SQLite, PostgreSQL, MySQL and the cookie store; Redis forgets an entry at its end).
    Expired,
    /// A stored slot was migrated to the current version when the request loaded it.
    Migrated {
        /// The slot's stored name.
        name: &'static str,
        /// The version it was stored at.
        from: u32,
        /// The version it was migrated to.
        to: u32,
    },
}

/// A callback of [`SessionLayer::on_event`](crate::SessionLayer::on_event).
pub(crate) type Listener = Arc<dyn Fn(&SessionEvent) + Send + Sync>;

/// The callbacks a layer tells its events to (none, most often: then nothing is collected).
#[derive(Clone, Default)]
pub(crate) struct Listeners(Vec<Listener>);

impl Listeners {
    pub(crate) fn push(&mut self, listener: Listener) {
        self.0.push(listener);
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Tells every callback `event`; a panic of one is caught and logged.
    pub(crate) fn tell(&self, event: &SessionEvent) {
        for listener in &self.0 {
            let told = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| listener(event)));
            if told.is_err() {
                tracing::error!(target: "sessions", event = ?event, "a session event callback panicked; the request goes on");
            }
        }
    }
}

impl std::fmt::Debug for Listeners {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} listeners", self.0.len())
    }
}
