//! [`Failure`]: the one table of what the client is told when its session fails it: a status,
//! a fixed text, and a short reason (a log field, and the label a metric counts it under).
//! The layer's own failures (a save that could not be stored) and every
//! [`SessionRejection`](super::SessionRejection) read their status and text from here.

use http::StatusCode;

use crate::store::StoreError;

/// An error response's status and its fixed text for the client (never a backend's message,
/// a type name or setup advice: those go to the log), with the reason it is counted under.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Failure {
    pub(crate) status: StatusCode,
    /// The text for the client (the body, and the `x-session-error` header).
    pub(crate) message: &'static str,
    /// A short name of the cause, low-cardinality by construction.
    pub(crate) reason: &'static str,
}

/// The text of every setup mistake: the client learns nothing of the app's insides.
const INTERNAL: &str = "internal server error";

/// The table: one row a line (`NAME: status, reason, text`), each a `Failure` constant, and
/// `Failure::ALL`, every row.
macro_rules! table {
    ($($(#[$doc:meta])* $name:ident: $status:ident, $reason:literal, $message:expr;)*) => {
        impl Failure {
            $(
                $(#[$doc])*
                pub(crate) const $name: Failure = Failure {
                    status: StatusCode::$status,
                    message: $message,
                    reason: $reason,
                };
            )*

            /// Every row, for finding one by its text.
            const ALL: &[Failure] = &[$(Failure::$name),*];
        }
    };
}

table! {
    // After the handler: what the request changed could not be stored.
    NOT_ENCODED: INTERNAL_SERVER_ERROR, "not_encoded", "session change cannot be encoded";
    UNAVAILABLE: SERVICE_UNAVAILABLE, "unavailable", "session store unavailable; not saved";
    MOVED: CONFLICT, "moved",
        "session moved to a new id while the request ran (a login); not saved";
    ENDED: CONFLICT, "ended",
        "session ended while the request ran (a logout or expiry); not saved";
    CHANGED: CONFLICT, "conflict", "session changed by another request; not saved";
    BUSY: SERVICE_UNAVAILABLE, "busy", "session busy with other requests; not saved";
    NOT_DESTROYED: SERVICE_UNAVAILABLE, "not_destroyed", "session not destroyed";
    BROKEN: INTERNAL_SERVER_ERROR, "not_saved", "session not saved";
    IDS_COLLIDE: INTERNAL_SERVER_ERROR, "ids_collide",
        "session ids keep colliding: the random source is broken";
    NO_ID: INTERNAL_SERVER_ERROR, "no_id", "no session id";
    COOKIE_NOT_SET: INTERNAL_SERVER_ERROR, "cookie_not_set", "session cookie not set";
    // Before or inside the handler: the session could not be handed to it.
    LOAD_UNAVAILABLE: SERVICE_UNAVAILABLE, "unavailable",
        "session store unavailable; try again later";
    UNREADABLE: INTERNAL_SERVER_ERROR, "unreadable", "the stored session cannot be read";
    // Mistakes in the app's setup: a 500 with nothing of the app in it, the fix in the log.
    LAYER_MISSING: INTERNAL_SERVER_ERROR, "layer_missing", INTERNAL;
    NOT_REGISTERED: INTERNAL_SERVER_ERROR, "not_registered", INTERNAL;
    UNSUPPORTED: INTERNAL_SERVER_ERROR, "unsupported", INTERNAL;
    NOT_SET_UP: INTERNAL_SERVER_ERROR, "not_set_up", INTERNAL;
}

impl Failure {
    /// The row of `status` and `message` (a `SessionRejection::NotSaved` carries them); one
    /// made of them, reason `not_saved`, when no row has them.
    pub(crate) fn find(status: StatusCode, message: &'static str) -> Failure {
        Failure::ALL
            .iter()
            .copied()
            .find(|row| row.status == status && row.message == message)
            .unwrap_or(Failure {
                status,
                message,
                reason: Failure::BROKEN.reason,
            })
    }

    /// A CSRF refusal: 403, with the refusal's own text and reason.
    pub(crate) fn csrf(refusal: crate::csrf::CsrfRefusal) -> Failure {
        Failure {
            status: StatusCode::FORBIDDEN,
            message: refusal.message(),
            reason: refusal.reason(),
        }
    }

    /// What a store's error means for a write: a store that is down or busy is worth a retry
    /// (503), a session another request changed is a conflict (409), a store that is not set
    /// up is the app's mistake (500).
    pub(crate) fn of_store(err: &StoreError) -> Failure {
        match err {
            StoreError::Backend(_) => Failure::UNAVAILABLE,
            StoreError::Conflict(_) | StoreError::Apply(_) => Failure::CHANGED,
            StoreError::Contended => Failure::BUSY,
            StoreError::Collision => Failure::IDS_COLLIDE,
            StoreError::NotSetUp { .. } => Failure::NOT_SET_UP,
            _ => Failure::BROKEN,
        }
    }

    /// What a failed load means for a write that needed it: the store is down (503), unless
    /// it is not set up (500).
    pub(crate) fn of_load(err: &StoreError) -> Failure {
        match err {
            StoreError::NotSetUp { .. } => Failure::NOT_SET_UP,
            _ => Failure::UNAVAILABLE,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_row_has_its_own_reason_or_shares_it_with_a_row_of_the_same_status() {
        for (i, a) in Failure::ALL.iter().enumerate() {
            for b in &Failure::ALL[i + 1..] {
                assert!(
                    a.reason != b.reason || a.status == b.status,
                    "{a:?} and {b:?}"
                );
                assert!(
                    a.message != b.message || a.status == b.status,
                    "one text, two statuses: {a:?} and {b:?}"
                );
            }
        }
    }

    #[test]
    fn a_row_is_found_by_its_status_and_text() {
        let ended = Failure::ENDED;
        assert_eq!(Failure::find(ended.status, ended.message), ended);
        let made_up = Failure::find(StatusCode::IM_A_TEAPOT, "short and stout");
        assert_eq!(made_up.reason, "not_saved");
    }

    #[test]
    fn a_store_that_is_not_set_up_is_a_500_not_a_retry() {
        let err = StoreError::not_migrated("SqliteStore", "no such table: sessions");
        assert_eq!(
            Failure::of_store(&err).status,
            StatusCode::INTERNAL_SERVER_ERROR
        );
        assert_eq!(
            Failure::of_load(&err).status,
            StatusCode::INTERNAL_SERVER_ERROR
        );
        let down = StoreError::backend(std::io::Error::other("refused"));
        assert_eq!(
            Failure::of_load(&down).status,
            StatusCode::SERVICE_UNAVAILABLE
        );
    }
}
