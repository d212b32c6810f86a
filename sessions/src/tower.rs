//! The tower adapter: [`SessionLayer`] as a tower `Layer`, and the [`SessionService`] it wraps
//! around a service (axum, hyper, any `http` stack). It only converts: the request is the
//! core's [`RequestHead`](crate::session::RequestHead) as it is, and the core's responses
//! (`http::Response<String>`) get the service's body type.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use http::{Request, Response};

use crate::layer::SessionLayer;
use crate::session::{
    AfterHandler, Begun, Config, Rejected, SessionHandle, SessionRejection, begin,
};

impl<S> tower_layer::Layer<S> for SessionLayer {
    type Service = SessionService<S>;

    fn layer(&self, inner: S) -> SessionService<S> {
        SessionService {
            inner,
            config: self.config().clone(),
        }
    }
}

/// The service [`SessionLayer`] wraps around the app.
///
/// ```
/// use std::convert::Infallible;
/// use http::{Request, Response};
/// use tower::{Layer, service_fn};
/// use sessions::prelude::*;
/// use sessions::SessionService;
/// let app = service_fn(|_: Request<()>| async { Ok::<_, Infallible>(Response::new(String::new())) });
/// let service: SessionService<_> = SessionLayer::new(MemoryStore::new()).layer(app);
/// assert_eq!(format!("{service:?}"), "SessionService { .. }");
/// ```
#[derive(Clone)]
pub struct SessionService<S> {
    inner: S,
    config: Arc<Config>,
}

impl<S> std::fmt::Debug for SessionService<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionService").finish_non_exhaustive()
    }
}

impl<S, ReqBody, ResBody> tower_service::Service<Request<ReqBody>> for SessionService<S>
where
    S: tower_service::Service<Request<ReqBody>, Response = Response<ResBody>>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
    ReqBody: Send + 'static,
    ResBody: Default + Send + 'static,
{
    type Response = Response<ResBody>;
    type Error = S::Error;
    type Future = SessionFuture<S::Future, ResBody, S::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<ReqBody>) -> Self::Future {
        let (session, check) = match begin(&self.config, &request) {
            Begun::Proceed(session) => (session, None),
            Begun::Check(session, check) => (session, Some(check)),
            Begun::Refuse(refusal) => {
                return SessionFuture {
                    state: Step::Refused {
                        response: Some(with_body(refusal)),
                    },
                    session: None,
                };
            }
        };
        request.extensions_mut().insert(session.clone());
        let Some(check) = check else {
            // The common case: the service that was polled ready is called now, and its future
            // is polled in place (no clone of the service, no box).
            return SessionFuture {
                state: Step::Handler {
                    handler: self.inner.call(request),
                },
                session: Some(session),
            };
        };
        // A CSRF check may read the body first: the service is called later, so a clone of it
        // (the instance that was polled ready is the one called) goes into a boxed future.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        SessionFuture::boxed(Box::pin(async move {
            if let Err(refusal) = check.run_on_tower(&session, &mut request).await {
                return Ok(with_body(refusal));
            }
            let response = inner.call(request).await?;
            let rejection = rejection_of(&response);
            let outcome = match session.after_handler(response.status()) {
                Some(work) => Some(work.await),
                None => None,
            };
            Ok(completed(&session, response, rejection.as_deref(), outcome))
        }))
    }
}

pin_project_lite::pin_project! {
    /// The future of a [`SessionService`] call: the app's response with the session's work
    /// after the handler done and its headers written.
    ///
    /// ```
    /// use std::convert::Infallible;
    /// use http::{Request, Response};
    /// use tower::{Layer, Service, ServiceExt, service_fn};
    /// use sessions::prelude::*;
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// let app = service_fn(|_: Request<String>| async { Ok::<_, Infallible>(Response::new(String::from("hi"))) });
    /// let mut service = SessionLayer::new(MemoryStore::new()).layer(app);
    /// let future: sessions::SessionFuture<_, String, Infallible> =
    ///     service.ready().await.unwrap().call(Request::new(String::new()));
    /// assert_eq!(future.await.unwrap().body(), "hi");
    /// # });
    /// ```
    pub struct SessionFuture<F, B, E> {
        #[pin]
        state: Step<F, B, E>,
        // The request's session (`None` on a refusal, and on the boxed path, which holds its own).
        session: Option<SessionHandle>,
    }
}

pin_project_lite::pin_project! {
    #[project = StepProjection]
    enum Step<F, B, E> {
        // The app's future, polled in place.
        Handler { #[pin] handler: F },
        // The session's work after the handler (a write): boxed by the core, only when there
        // is some. `response` is the handler's, held until the work is done.
        AfterHandler {
            work: AfterHandler,
            response: Option<Response<B>>,
            rejection: Option<Arc<SessionRejection>>,
        },
        // A CSRF check before the handler.
        Boxed { future: Pin<Box<dyn Future<Output = Result<Response<B>, E>> + Send>> },
        // Refused before the handler (CSRF): this response instead.
        Refused { response: Option<Response<B>> },
        // Done: the response was handed out.
        Done,
    }
}

impl<F, B, E> SessionFuture<F, B, E> {
    fn boxed(future: Pin<Box<dyn Future<Output = Result<Response<B>, E>> + Send>>) -> Self {
        Self {
            state: Step::Boxed { future },
            session: None,
        }
    }
}

impl<F, B, E> std::fmt::Debug for SessionFuture<F, B, E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionFuture").finish_non_exhaustive()
    }
}

impl<F, B, E> Future for SessionFuture<F, B, E>
where
    F: Future<Output = Result<Response<B>, E>>,
    B: Default + 'static,
{
    type Output = Result<Response<B>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        loop {
            let (session, response, rejection, outcome) = match this.state.as_mut().project() {
                StepProjection::Boxed { future } => return future.as_mut().poll(cx),
                StepProjection::Refused { response } => {
                    let Some(response) = response.take() else {
                        panic!("SessionFuture polled after it completed")
                    };
                    return Poll::Ready(Ok(response));
                }
                StepProjection::Handler { handler } => {
                    let response = std::task::ready!(handler.poll(cx))?;
                    let Some(session) = this.session.as_ref() else {
                        unreachable!("a SessionFuture polling a handler holds its session")
                    };
                    let rejection = rejection_of(&response);
                    match session.after_handler(response.status()) {
                        // A read-only request is decided now.
                        None => (session, response, rejection, None),
                        Some(work) => {
                            this.state.set(Step::AfterHandler {
                                work,
                                response: Some(response),
                                rejection,
                            });
                            continue;
                        }
                    }
                }
                StepProjection::AfterHandler {
                    work,
                    response,
                    rejection,
                } => {
                    let outcome = std::task::ready!(work.as_mut().poll(cx));
                    let (Some(session), Some(response)) = (this.session.as_ref(), response.take())
                    else {
                        unreachable!("a SessionFuture after its handler holds the response")
                    };
                    (session, response, rejection.take(), Some(outcome))
                }
                StepProjection::Done => panic!("SessionFuture polled after it completed"),
            };
            let response = completed(session, response, rejection.as_deref(), outcome);
            this.state.set(Step::Done);
            return Poll::Ready(Ok(response));
        }
    }
}

/// The session rejection the handler's response was made of, if it was.
fn rejection_of<B>(response: &Response<B>) -> Option<Arc<SessionRejection>> {
    response.extensions().get::<Rejected>().map(|r| r.0.clone())
}

/// The response that is sent: the handler's (or the core's replacement), with the session's
/// headers, once the work after the handler (if any) ended with `outcome`.
fn completed<B: Default + 'static>(
    session: &SessionHandle,
    mut response: Response<B>,
    rejection: Option<&SessionRejection>,
    outcome: Option<crate::session::Outcome>,
) -> Response<B> {
    let mut finished = session.finished(rejection, outcome);
    if let Some(replacement) = finished.replacement.take() {
        response = with_body(replacement);
    }
    finished.write_headers(response.headers_mut());
    response
}

/// One of the core's responses in the service's body type (see
/// [`SessionLayer::on_rejection`]).
fn with_body<B: Default + 'static>(response: Response<String>) -> Response<B> {
    let (parts, text) = response.into_parts();
    Response::from_parts(parts, body_of(text))
}

/// `text` as a `B`, for the body types of the tower ecosystem that hold text (`String`,
/// `Bytes`, `Vec<u8>`, `http_body_util::Full<Bytes>`, axum's `Body`); an empty `B` for the
/// others: the status and headers still tell.
fn body_of<B: Default + 'static>(text: String) -> B {
    let mut body: Option<B> = None;
    let slot: &mut dyn std::any::Any = &mut body;
    if let Some(slot) = slot.downcast_mut::<Option<String>>() {
        *slot = Some(text);
    } else if let Some(slot) = slot.downcast_mut::<Option<bytes::Bytes>>() {
        *slot = Some(text.into());
    } else if let Some(slot) = slot.downcast_mut::<Option<Vec<u8>>>() {
        *slot = Some(text.into());
    } else if let Some(slot) = slot.downcast_mut::<Option<http_body_util::Full<bytes::Bytes>>>() {
        *slot = Some(text.into());
    } else {
        axum_body(slot, text);
    }
    body.unwrap_or_default()
}

/// axum's `Body`, when the `axum` feature is on.
fn axum_body(slot: &mut dyn std::any::Any, text: String) {
    #[cfg(feature = "axum")]
    if let Some(slot) = slot.downcast_mut::<Option<axum::body::Body>>() {
        *slot = Some(text.into());
    }
    #[cfg(not(feature = "axum"))]
    let _ = (slot, text);
}

#[cfg(test)]
mod tests {
    use super::body_of;

    #[test]
    fn a_rejection_text_goes_into_the_body_types_that_hold_text() {
        assert_eq!(body_of::<String>("sorry".into()), "sorry");
        assert_eq!(body_of::<bytes::Bytes>("sorry".into()), "sorry");
        assert_eq!(body_of::<Vec<u8>>("sorry".into()), b"sorry");
        let full = body_of::<http_body_util::Full<bytes::Bytes>>("sorry".into());
        assert_eq!(
            format!("{full:?}"),
            format!(
                "{:?}",
                http_body_util::Full::new(bytes::Bytes::from("sorry"))
            )
        );
        // Any other body type gets its empty value: the status and headers still tell.
        body_of::<()>("sorry".into());
    }
}
