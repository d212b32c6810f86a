//! Axum extractors: `Typed<T>`, `Option<Typed<T>>` and [`SessionHandle`] (feature `axum`).

use std::sync::Arc;

use axum::extract::{FromRequestParts, OptionalFromRequestParts};
use axum::response::{IntoResponse, Response};
use http::request::Parts;

use crate::schema::Session;
use crate::session::{Rejected, SessionHandle, SessionRejection};
use crate::typed::{NewSlot, Typed};

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
impl<S: Send + Sync, T: Session + NewSlot> FromRequestParts<S> for Typed<T> {
    type Rejection = SessionRejection;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, SessionRejection> {
        handle::<Typed<T>>(parts)?.get_or_new::<T>().await
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

/// The rejection's response: [`SessionRejection::to_response`], or what the layer's
/// [`on_rejection`](crate::SessionLayer::on_rejection) hook makes of it. The details go to the log.
impl IntoResponse for SessionRejection {
    fn into_response(self) -> Response {
        self.log();
        let mut response = self.to_response().map(axum::body::Body::from);
        response.extensions_mut().insert(Rejected(Arc::new(self)));
        response
    }
}
