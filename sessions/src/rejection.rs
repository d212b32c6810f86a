//! [`SessionRejection`]: why a handler could not get or save its session.

use crate::error::{Conflict, LoadError};
use crate::handle::SessionError;
use crate::schema::Session;
use crate::store::StoreError;

/// Why a handler could not get its session: the response says what is wrong and names the type.
///
/// With the `axum` feature it implements `IntoResponse`; [`status`](SessionRejection::status)
/// and `Display` serve any other stack.
///
/// ```
/// use sessions::SessionRejection;
/// let rejection = SessionRejection::LayerMissing { type_name: "Cart" };
/// assert_eq!(rejection.status(), http::StatusCode::INTERNAL_SERVER_ERROR);
/// assert!(rejection.to_string().contains("SessionLayer"));
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
    /// Optimistic concurrency: another request changed the session since this one loaded it,
    /// and nothing of this request's save was written (see
    /// [`SessionLayer::optimistic_concurrency`](crate::SessionLayer::optimistic_concurrency)).
    #[error(transparent)]
    Conflict(Conflict),
}

impl SessionRejection {
    /// The HTTP status of the rejection: 503 when the store is unavailable, 500 otherwise.
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
        match self {
            SessionRejection::StoreUnavailable { .. } => http::StatusCode::SERVICE_UNAVAILABLE,
            SessionRejection::Conflict(_) => http::StatusCode::CONFLICT,
            _ => http::StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The text for the client: what is wrong and which type, without backend details (host
    /// names, users, queries), which go to the log only.
    ///
    /// ```
    /// use sessions::SessionRejection;
    /// let rejection = SessionRejection::StoreUnavailable {
    ///     type_name: "Cart",
    ///     message: "connection to db.internal:5432 refused".into(),
    /// };
    /// assert!(!rejection.client_message().contains("db.internal"));
    /// ```
    pub fn client_message(&self) -> String {
        match self {
            SessionRejection::StoreUnavailable { type_name, .. } => {
                format!("session store unavailable while loading `{type_name}`; try again later")
            }
            other => other.to_string(),
        }
    }

    pub(crate) fn store(type_name: &'static str, err: &StoreError) -> Self {
        SessionRejection::StoreUnavailable {
            type_name,
            message: err.to_string(),
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
