//! Axum extractors: `Typed<T>`, `Option<Typed<T>>` and [`SessionHandle`] (feature `axum`).

use axum::extract::{FromRequestParts, OptionalFromRequestParts};
use axum::response::{IntoResponse, Response};
use http::request::Parts;

use crate::handle::{SessionHandle, SessionRejection};
use crate::schema::Session;
use crate::typed::Typed;

fn handle<T>(parts: &Parts) -> Result<SessionHandle, SessionRejection> {
    parts
        .extensions
        .get::<SessionHandle>()
        .cloned()
        .ok_or(SessionRejection::LayerMissing {
            type_name: std::any::type_name::<T>(),
        })
}

/// `Typed<T>` in a handler: the stored slot, or `T::default()` for a new one (written once changed).
impl<S: Send + Sync, T: Session + Default> FromRequestParts<S> for Typed<T> {
    type Rejection = SessionRejection;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, SessionRejection> {
        handle::<Typed<T>>(parts)?.get_or_default::<T>().await
    }
}

/// `Option<Typed<T>>` in a handler: `None` when nothing is stored for `T`.
impl<S: Send + Sync, T: Session> OptionalFromRequestParts<S> for Typed<T> {
    type Rejection = SessionRejection;

    async fn from_request_parts(
        parts: &mut Parts,
        _state: &S,
    ) -> Result<Option<Self>, SessionRejection> {
        handle::<Typed<T>>(parts)?.get::<T>().await
    }
}

/// [`SessionHandle`] in a handler: the session as a whole.
impl<S: Send + Sync> FromRequestParts<S> for SessionHandle {
    type Rejection = SessionRejection;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, SessionRejection> {
        handle::<SessionHandle>(parts)
    }
}

impl IntoResponse for SessionRejection {
    fn into_response(self) -> Response {
        tracing::error!(target: "sessions", error = %self, "session extractor rejected the request");
        (self.status(), self.client_message()).into_response()
    }
}
