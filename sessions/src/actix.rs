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
use std::rc::Rc;

use actix_web::body::{BoxBody, EitherBody, MessageBody};
use actix_web::dev::{Payload, Service, ServiceRequest, ServiceResponse, Transform, forward_ready};
use actix_web::http::header::{self, HeaderMap};
use actix_web::{FromRequest, HttpMessage, HttpRequest, HttpResponse, ResponseError};

use crate::layer::SessionLayer;
use crate::schema::Session;
use crate::session::{Begun, RequestHead, ResponseHeaders, SessionHandle, SessionRejection, begin};
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
    inner: Rc<S>,
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
            inner: Rc::new(inner),
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

    fn call(&self, mut request: ServiceRequest) -> Self::Future {
        let (session, csrf) = match begin(self.layer.config(), &request) {
            Begun::Proceed(session) => (session, None),
            Begun::Check(session, check) => (session, Some(check)),
            Begun::Refuse(refusal) => return Box::pin(ready(Ok(refused(request, refusal)))),
        };
        request.extensions_mut().insert(session.clone());
        // The inner service is called once the CSRF check (if any) let the request through.
        let inner = self.inner.clone();
        Box::pin(async move {
            if let Some(check) = csrf
                && let Err(refusal) = check.run_on_actix(&session, &mut request).await
            {
                return Ok(refused(request, refusal));
            }
            let response = inner.call(request).await?;
            let rejection = response
                .response()
                .error()
                .and_then(|error| error.as_error::<SessionRejection>());
            let mut finished = session
                .finish(http_status(response.status()), rejection)
                .await;
            let mut response = match finished.replacement.take() {
                Some(replacement) => {
                    let (request, _) = response.into_parts();
                    ServiceResponse::new(request, actix_response(replacement)).map_into_right_body()
                }
                None => response.map_into_left_body(),
            };
            finished.write_headers(response.headers_mut());
            Ok(response)
        })
    }
}

/// The core's refusal of `request`, in its place.
fn refused<B>(
    request: ServiceRequest,
    refusal: http::Response<String>,
) -> ServiceResponse<EitherBody<B>> {
    let (request, _) = request.into_parts();
    ServiceResponse::new(request, actix_response(refusal)).map_into_right_body()
}

// The conversions between actix-web's types (`http` 0.2) and the core's (`http` 1), each
// written once.

impl RequestHead for ServiceRequest {
    fn header_values<'a>(&'a self, name: &http::HeaderName) -> impl Iterator<Item = &'a [u8]> {
        self.headers()
            .get_all(name.as_str())
            .map(header::HeaderValue::as_bytes)
    }

    fn method(&self) -> &str {
        ServiceRequest::method(self).as_str()
    }

    fn path(&self) -> &str {
        ServiceRequest::path(self)
    }

    /// `Host`, or in HTTP/2 (which has none) the URI's authority.
    fn host(&self) -> Option<&[u8]> {
        self.header(&http::header::HOST).or_else(|| {
            self.uri()
                .authority()
                .map(|authority| authority.as_str().as_bytes())
        })
    }
}

impl ResponseHeaders for HeaderMap {
    fn contains(&self, name: &http::HeaderName) -> bool {
        self.contains_key(name.as_str())
    }

    fn insert(&mut self, name: http::HeaderName, value: http::HeaderValue) {
        if let Some((name, value)) = actix_header(&name, &value) {
            HeaderMap::insert(self, name, value);
        }
    }

    fn append(&mut self, name: http::HeaderName, value: http::HeaderValue) {
        if let Some((name, value)) = actix_header(&name, &value) {
            HeaderMap::append(self, name, value);
        }
    }
}

/// An `http` header as an actix-web one (every valid one converts).
fn actix_header(
    name: &http::HeaderName,
    value: &http::HeaderValue,
) -> Option<(header::HeaderName, header::HeaderValue)> {
    Some((
        header::HeaderName::from_bytes(name.as_str().as_bytes()).ok()?,
        header::HeaderValue::from_bytes(value.as_bytes()).ok()?,
    ))
}

/// An `http` header from an actix-web one (every valid one converts).
#[cfg(feature = "testing")]
pub(crate) fn http_header(
    name: &header::HeaderName,
    value: &header::HeaderValue,
) -> Option<(http::HeaderName, http::HeaderValue)> {
    Some((
        http::HeaderName::from_bytes(name.as_str().as_bytes()).ok()?,
        http::HeaderValue::from_bytes(value.as_bytes()).ok()?,
    ))
}

/// An actix-web status as an `http` one (every valid one converts).
pub(crate) fn http_status(status: actix_web::http::StatusCode) -> http::StatusCode {
    http::StatusCode::from_u16(status.as_u16()).unwrap_or(http::StatusCode::INTERNAL_SERVER_ERROR)
}

/// An `http` status as an actix-web one (every valid one converts).
fn actix_status(status: http::StatusCode) -> actix_web::http::StatusCode {
    actix_web::http::StatusCode::from_u16(status.as_u16())
        .unwrap_or(actix_web::http::StatusCode::INTERNAL_SERVER_ERROR)
}

/// One of the core's responses (a refusal, a rejection's) as an actix-web one.
fn actix_response(response: http::Response<String>) -> HttpResponse {
    let (parts, body) = response.into_parts();
    let mut actix = HttpResponse::with_body(actix_status(parts.status), body).map_into_boxed_body();
    for (name, value) in &parts.headers {
        ResponseHeaders::append(actix.headers_mut(), name.clone(), value.clone());
    }
    actix
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
        actix_status(self.status())
    }

    fn error_response(&self) -> HttpResponse<BoxBody> {
        self.log();
        actix_response(self.to_response())
    }
}
