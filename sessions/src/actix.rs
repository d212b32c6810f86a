//! The actix-web adapter (feature `actix`): the same [`SessionLayer`] wraps an actix `App`
//! (`App::new().wrap(layer)`), and [`Typed<T>`], [`IfStored<T>`] and [`SessionHandle`] are
//! extractors. Like the tower adapter it only reads the request's headers into the request's
//! session and writes the session's outcome into the response; everything else is shared.
//!
//! ```
//! use actix_web::{App, web};
//! use sessions::prelude::*;
//!
//! #[derive(Session, Default)]
//! #[session(name = "cart")]
//! struct Cart { items: Vec<String> }
//!
//! async fn add(mut cart: Typed<Cart>) -> String {
//!     cart.items_mut().push("apple".into());
//!     format!("{} items", cart.items().len())
//! }
//!
//! let layer = SessionLayer::new(MemoryStore::new()).register::<Cart>();
//! let app = App::new().wrap(layer).route("/cart", web::post().to(add));
//! # let _ = app;
//! ```
//!
//! **`Option<Typed<T>>` under actix-web is actix's own extractor**: it is `Some` (a default
//! value) when nothing is stored, and `None` when the store failed, with the error swallowed.
//! Ask for [`IfStored<T>`] instead: `None` when nothing is stored, a 503 when the store fails.

use std::future::{Future, Ready, ready};
use std::ops::{Deref, DerefMut};
use std::pin::Pin;
use std::sync::Arc;

use actix_web::body::{BoxBody, EitherBody, MessageBody};
use actix_web::dev::{Payload, Service, ServiceRequest, ServiceResponse, Transform, forward_ready};
use actix_web::http::header::{self, HeaderName, HeaderValue};
use actix_web::{FromRequest, HttpMessage, HttpRequest, HttpResponse, ResponseError};

use crate::layer::SessionLayer;
use crate::schema::Session;
use crate::session::{Outcome, Place, RequestSession, SessionHandle, SessionRejection, Source};
use crate::typed::{NewSlot, Typed};

/// The actix-web service a [`SessionLayer`] wraps around an app (`App::new().wrap(layer)`).
///
/// ```
/// use actix_web::{App, web};
/// use sessions::prelude::*;
/// let app = App::new()
///     .wrap(SessionLayer::new(MemoryStore::new()))
///     .route("/", web::get().to(|| async { "hi" }));
/// # let _ = app;
/// ```
pub struct ActixSessionService<S> {
    inner: S,
    layer: SessionLayer,
}

impl<S> std::fmt::Debug for ActixSessionService<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ActixSessionService")
            .finish_non_exhaustive()
    }
}

impl<S, B> Transform<S, ServiceRequest> for SessionLayer
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = actix_web::Error> + 'static,
    S::Future: 'static,
    B: MessageBody + 'static,
{
    type Response = ServiceResponse<EitherBody<B>>;
    type Error = actix_web::Error;
    type Transform = ActixSessionService<S>;
    type InitError = ();
    type Future = Ready<Result<ActixSessionService<S>, ()>>;

    fn new_transform(&self, inner: S) -> Self::Future {
        ready(Ok(ActixSessionService {
            inner,
            layer: self.clone(),
        }))
    }
}

impl<S, B> Service<ServiceRequest> for ActixSessionService<S>
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = actix_web::Error> + 'static,
    S::Future: 'static,
    B: MessageBody + 'static,
{
    type Response = ServiceResponse<EitherBody<B>>;
    type Error = actix_web::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>>>>;

    forward_ready!(inner);

    fn call(&self, request: ServiceRequest) -> Self::Future {
        let config = self.layer.config();
        let headers = request.headers();
        let source = Source::read(
            config,
            headers.get_all(header::COOKIE).map(HeaderValue::as_bytes),
            config
                .id_header()
                .and_then(|name| headers.get(name.as_str()))
                .map(HeaderValue::as_bytes),
        );
        let agent = config
            .capture_agent
            .then(|| headers.get(header::USER_AGENT))
            .flatten()
            .and_then(|value| value.to_str().ok())
            .map(str::to_owned);
        let session = Arc::new(RequestSession::new(self.layer.config_arc(), source, agent));
        request
            .extensions_mut()
            .insert(SessionHandle(session.clone()));
        let response = self.inner.call(request);
        Box::pin(async move {
            let response = response.await?;
            let status = http::StatusCode::from_u16(response.status().as_u16())
                .unwrap_or(http::StatusCode::INTERNAL_SERVER_ERROR);
            let config = &session.config;
            let outcome = match session.after(status) {
                Some(work) => Some(work.await),
                None => None,
            };
            let rejection = if let Some(failure) = outcome.as_ref().and_then(|o| o.failure) {
                Some(config.rejection_response(&failure.into()))
            } else if config.on_rejection.is_some() {
                response
                    .response()
                    .error()
                    .and_then(|error| error.as_error::<SessionRejection>())
                    .map(|rejection| config.rejection_response(rejection))
            } else {
                None
            };
            let mut response = match rejection {
                Some(replacement) => {
                    let (request, _) = response.into_parts();
                    ServiceResponse::new(request, actix_response(replacement)).map_into_right_body()
                }
                None => response.map_into_left_body(),
            };
            if let Some(outcome) = outcome {
                write_headers(&session, &outcome, response.headers_mut());
            }
            Ok(response)
        })
    }
}

/// An `http` 1 response as an actix-web one.
fn actix_response(response: http::Response<String>) -> HttpResponse {
    let (parts, body) = response.into_parts();
    let status = actix_web::http::StatusCode::from_u16(parts.status.as_u16())
        .unwrap_or(actix_web::http::StatusCode::INTERNAL_SERVER_ERROR);
    let mut actix = HttpResponse::with_body(status, body).map_into_boxed_body();
    for (name, value) in &parts.headers {
        if let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(name.as_str().as_bytes()),
            HeaderValue::from_bytes(value.as_bytes()),
        ) {
            actix.headers_mut().append(name, value);
        }
    }
    actix
}

/// The outcome's headers, from `http` 1 types into actix-web's.
fn write_headers(session: &RequestSession, outcome: &Outcome, headers: &mut header::HeaderMap) {
    outcome.for_each_header(&session.config, |name, value, place| {
        let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(name.as_str().as_bytes()),
            HeaderValue::from_bytes(value.as_bytes()),
        ) else {
            return;
        };
        match place {
            Place::Append => headers.append(name, value),
            Place::Replace => {
                headers.insert(name, value);
            }
            Place::KeepExisting => {
                if !headers.contains_key(&name) {
                    headers.insert(name, value);
                }
            }
        }
    });
}

/// The request's session handle, put there by the middleware.
fn handle<T>(request: &HttpRequest) -> Result<SessionHandle, SessionRejection> {
    request
        .extensions()
        .get::<SessionHandle>()
        .cloned()
        .ok_or(SessionRejection::LayerMissing {
            type_name: std::any::type_name::<T>(),
        })
}

/// `Typed<T>` in an actix-web handler: the stored slot, or `T::default()` for a new one
/// (written once changed).
impl<T: Session + NewSlot> FromRequest for Typed<T> {
    type Error = SessionRejection;
    type Future = Pin<Box<dyn Future<Output = Result<Self, SessionRejection>>>>;

    fn from_request(request: &HttpRequest, _: &mut Payload) -> Self::Future {
        let session = handle::<Typed<T>>(request);
        Box::pin(async move { session?.get_or_new::<T>().await })
    }
}

/// [`SessionHandle`] in an actix-web handler: the session as a whole.
impl FromRequest for SessionHandle {
    type Error = SessionRejection;
    type Future = Ready<Result<Self, SessionRejection>>;

    fn from_request(request: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(handle::<SessionHandle>(request))
    }
}

/// `T`'s slot if the session stores one: the actix-web extractor for what `Option<Typed<T>>`
/// is in axum (actix's own `Option<Typed<T>>` means something else: see the module docs).
/// `None` when nothing is stored for `T`; a 503 when the store fails.
///
/// ```
/// use sessions::actix::IfStored;
/// use sessions::prelude::*;
/// #[derive(Session, Default)] #[session(name = "cart")] struct Cart { items: Vec<String> }
/// async fn show(cart: IfStored<Cart>) -> String {
///     match cart.into_inner() {
///         Some(cart) => format!("{} items", cart.items().len()),
///         None => "no cart".into(),
///     }
/// }
/// # let _ = show;
/// ```
pub struct IfStored<T: Session>(pub Option<Typed<T>>);

impl<T: Session> IfStored<T> {
    /// The slot, if stored.
    pub fn into_inner(self) -> Option<Typed<T>> {
        self.0
    }
}

impl<T: Session> Deref for IfStored<T> {
    type Target = Option<Typed<T>>;

    fn deref(&self) -> &Option<Typed<T>> {
        &self.0
    }
}

impl<T: Session> DerefMut for IfStored<T> {
    fn deref_mut(&mut self) -> &mut Option<Typed<T>> {
        &mut self.0
    }
}

impl<T: Session> FromRequest for IfStored<T> {
    type Error = SessionRejection;
    type Future = Pin<Box<dyn Future<Output = Result<Self, SessionRejection>>>>;

    fn from_request(request: &HttpRequest, _: &mut Payload) -> Self::Future {
        let session = handle::<Typed<T>>(request);
        Box::pin(async move { Ok(IfStored(session?.get::<T>().await?)) })
    }
}

/// A rejection as an actix-web response: [`SessionRejection::to_response`], or what the layer's
/// [`on_rejection`](crate::SessionLayer::on_rejection) hook makes of it. The details go to the log.
impl ResponseError for SessionRejection {
    fn status_code(&self) -> actix_web::http::StatusCode {
        actix_web::http::StatusCode::from_u16(self.status().as_u16())
            .unwrap_or(actix_web::http::StatusCode::INTERNAL_SERVER_ERROR)
    }

    fn error_response(&self) -> HttpResponse<BoxBody> {
        tracing::error!(target: "sessions", error = %self, "session extractor rejected the request");
        actix_response(self.to_response())
    }
}
