//! [`SessionRejection`]: why a handler could not get or save its session.

use std::sync::Arc;

use super::SessionError;
use super::failure::Failure;
use crate::errors::StoreError;
use crate::errors::{Conflict, LoadError};
use crate::schema::Session;

/// Why a handler could not get or save its session.
///
/// `Display` is for the log: it names the types and says how to fix the setup. The client gets
/// [`to_response`](SessionRejection::to_response): the [`status`](SessionRejection::status) and
/// a plain [`client_message`](SessionRejection::client_message), or what the layer's
/// [`on_rejection`](crate::SessionLayer::on_rejection) hook makes of it. With the `axum` or `actix`
/// feature it is the extractors' rejection (`IntoResponse`, `ResponseError`).
///
/// ```
/// use sessions::SessionRejection;
/// let rejection = SessionRejection::LayerMissing { type_name: "shop::Cart" };
/// assert_eq!(rejection.status(), http::StatusCode::INTERNAL_SERVER_ERROR);
/// assert!(rejection.to_string().contains("SessionLayer")); // the log says what to do
/// assert!(!rejection.client_message().contains("shop::Cart")); // the client does not see it
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SessionRejection {
    /// No `SessionLayer` wraps this handler.
    #[error(
        "`{type_name}` needs a session, but no `SessionLayer` wraps this route; add `.layer(SessionLayer::new(store).register::<..>())` to the router"
    )]
    LayerMissing {
        /// The type the handler asked for.
        type_name: &'static str,
    },
    /// The type was not registered with the layer.
    #[error(
        "session type `{rust_type}` (name `{name}`) is not registered; add `.register::<{rust_type}>()` to the SessionLayer"
    )]
    NotRegistered {
        /// The session type's name.
        name: &'static str,
        /// The Rust type.
        rust_type: &'static str,
    },
    /// The store could not be reached.
    #[error("session store unavailable while loading `{type_name}`: {message}")]
    StoreUnavailable {
        /// The type the handler asked for.
        type_name: &'static str,
        /// What the store said.
        message: String,
    },
    /// The store is not set up for sessions (its table is missing: `migrate()` was not called
    /// at start-up). A 500, not a 503: retrying does not help.
    #[error("session store not set up, while loading `{type_name}`: {message}")]
    StoreNotSetUp {
        /// The type the handler asked for.
        type_name: &'static str,
        /// What the store said, and the fix.
        message: String,
    },
    /// The stored slot could not be decoded (e.g. written by a newer version of the app).
    #[error("stored session data of `{type_name}` cannot be used: {source}")]
    Decode {
        /// The type the handler asked for.
        type_name: &'static str,
        /// Why.
        #[source]
        source: LoadError,
    },
    /// [`SessionHandle::save`](crate::SessionHandle::save) could not save (a change that
    /// cannot be encoded).
    #[error("session not saved: {message}")]
    Unsaved {
        /// Why.
        message: String,
    },
    /// The store cannot do what was asked (e.g. list an owner's sessions in a `CookieStore`).
    #[error("the session store cannot {what}")]
    Unsupported {
        /// What was asked.
        what: &'static str,
    },
    /// The session ended while the request ran (a logout in another request, or its expiry):
    /// the changes were not saved, and will not be.
    #[error("{}", Failure::ENDED.message)]
    Ended,
    /// After the handler: the request's session changes could not be stored, so the layer
    /// replaced the handler's response (a 503 while the store is down, a 409 when the session
    /// moved or ended or changed meanwhile, a 500 otherwise).
    #[error("{reason}")]
    NotSaved {
        /// The status of the response that replaced the handler's.
        status: http::StatusCode,
        /// Why, in a fixed text fit for the client.
        reason: &'static str,
    },
    /// Optimistic concurrency: another request changed the session since this one loaded it,
    /// and nothing of this request's save was written (see
    /// [`SessionLayer::optimistic_concurrency`](crate::SessionLayer::optimistic_concurrency)).
    #[error(transparent)]
    Conflict(Conflict),
    /// The CSRF check refused the request before its handler ran (a 403; see
    /// [`sessions::csrf`](crate::csrf)): nothing was loaded or saved.
    #[error("CSRF check refused the request: {0}")]
    Csrf(crate::csrf::CsrfRefusal),
}

impl SessionRejection {
    /// The HTTP status of the rejection: 503 when the store is unavailable, 409 when another
    /// request ended or changed the session meanwhile, 500 for a mistake in the app.
    ///
    /// ```
    /// use http::StatusCode;
    /// use sessions::SessionRejection;
    /// let down = SessionRejection::StoreUnavailable { type_name: "Cart", message: "timed out".into() };
    /// assert_eq!(down.status(), StatusCode::SERVICE_UNAVAILABLE);
    /// let setup = SessionRejection::NotRegistered { name: "cart", rust_type: "Cart" };
    /// assert_eq!(setup.status(), StatusCode::INTERNAL_SERVER_ERROR);
    /// ```
    pub fn status(&self) -> http::StatusCode {
        self.failure().status
    }

    /// The text for the client: a plain sentence, never a type name, a backend's error (host
    /// names, users, queries) or setup advice; those are in `Display`, for the log.
    ///
    /// ```
    /// use sessions::SessionRejection;
    /// let rejection = SessionRejection::StoreUnavailable {
    ///     type_name: "Cart",
    ///     message: "connection to db.internal:5432 refused".into(),
    /// };
    /// assert_eq!(rejection.client_message(), "session store unavailable; try again later");
    /// let setup = SessionRejection::NotRegistered { name: "cart", rust_type: "shop::Cart" };
    /// assert_eq!(setup.client_message(), "internal server error");
    /// ```
    pub fn client_message(&self) -> &'static str {
        self.failure().message
    }

    /// The row of the failure table this rejection answers with.
    pub(crate) fn failure(&self) -> Failure {
        match self {
            SessionRejection::LayerMissing { .. } => Failure::LAYER_MISSING,
            SessionRejection::NotRegistered { .. } => Failure::NOT_REGISTERED,
            SessionRejection::StoreUnavailable { .. } => Failure::LOAD_UNAVAILABLE,
            SessionRejection::StoreNotSetUp { .. } => Failure::NOT_SET_UP,
            SessionRejection::Decode { .. } => Failure::UNREADABLE,
            SessionRejection::Unsaved { .. } => Failure::BROKEN,
            SessionRejection::Unsupported { .. } => Failure::UNSUPPORTED,
            SessionRejection::Ended => Failure::ENDED,
            SessionRejection::NotSaved { status, reason } => Failure::find(*status, reason),
            SessionRejection::Conflict(_) => Failure::CHANGED,
            SessionRejection::Csrf(refusal) => Failure::csrf(*refusal),
        }
    }

    /// Logs the rejection, with its details: a mistake in the app's setup (no layer, a type not
    /// registered, a store not set up or asked what it cannot do) at `error`, stored data this
    /// code cannot read at `warn`, and the rest (a store that is down, a race lost) at `debug`:
    /// the store's failure itself is logged where it happened.
    pub(crate) fn log(&self) {
        let reason = self.failure().reason;
        match self {
            SessionRejection::LayerMissing { .. }
            | SessionRejection::NotRegistered { .. }
            | SessionRejection::StoreNotSetUp { .. }
            | SessionRejection::Unsupported { .. } => {
                tracing::error!(target: "sessions", error = %self, reason, "session rejection: a mistake in the app's setup");
            }
            SessionRejection::Decode { .. } => {
                tracing::warn!(target: "sessions", error = %self, reason, "session rejection: stored data this code cannot use");
            }
            _ => {
                tracing::debug!(target: "sessions", error = %self, reason, "session rejection");
            }
        }
    }

    /// The response the client gets when no [`on_rejection`](crate::SessionLayer::on_rejection)
    /// hook says otherwise: the [`status`](Self::status) and the
    /// [`client_message`](Self::client_message) as `text/plain`. A hook may start from it.
    ///
    /// ```
    /// use sessions::SessionRejection;
    /// let response = SessionRejection::Ended.to_response();
    /// assert_eq!(response.status(), http::StatusCode::CONFLICT);
    /// assert!(response.body().starts_with("session ended"));
    /// ```
    pub fn to_response(&self) -> http::Response<String> {
        let mut response = http::Response::new(self.client_message().to_owned());
        *response.status_mut() = self.status();
        response.headers_mut().insert(
            http::header::CONTENT_TYPE,
            http::HeaderValue::from_static("text/plain; charset=utf-8"),
        );
        response
    }

    /// A store's error: `Unsupported` stays itself, everything else is the store being down.
    pub(crate) fn from_store(type_name: &'static str, err: StoreError) -> Self {
        match err {
            StoreError::Unsupported(what) => SessionRejection::Unsupported { what },
            err => SessionRejection::store(type_name, &err),
        }
    }

    /// A store's failure to load (or save, inside the handler): the store is down, unless it
    /// is not set up.
    pub(crate) fn store(type_name: &'static str, err: &StoreError) -> Self {
        let message = err.to_string();
        match err {
            StoreError::NotSetUp { .. } => SessionRejection::StoreNotSetUp { type_name, message },
            _ => SessionRejection::StoreUnavailable { type_name, message },
        }
    }

    pub(crate) fn from_error<T: Session>(err: SessionError) -> Self {
        let type_name = std::any::type_name::<T>();
        match err {
            SessionError::Load(LoadError::NotRegistered { name, rust_type }) => {
                SessionRejection::NotRegistered { name, rust_type }
            }
            SessionError::Load(source) => SessionRejection::Decode { type_name, source },
            SessionError::Store(err) => SessionRejection::store(type_name, &err),
        }
    }
}

impl From<Failure> for SessionRejection {
    fn from(failure: Failure) -> Self {
        SessionRejection::NotSaved {
            status: failure.status,
            reason: failure.message,
        }
    }
}

/// Marks a response an extractor's rejection made, so the layer can hand the rejection to the
/// `on_rejection` hook.
#[derive(Clone, Debug)]
pub(crate) struct Rejected(pub(crate) Arc<SessionRejection>);
