//! [`TowerTransport`]: a [`TestClient`](super::TestClient) over a tower service.

use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use tower::ServiceExt;

use super::client::Transport;

/// Sends a test client's requests through a tower service: an axum `Router`, or any
/// `Service<Request<B>>` whose response body yields `Bytes`, with requests built as `B` (any
/// `B: From<Bytes>`; `http_body_util::Full<Bytes>` by default).
///
/// ```
/// use sessions::testing::{TestClient, TowerTransport};
/// let transport: TowerTransport<_> = TowerTransport::new(axum::Router::<()>::new());
/// let client = TestClient::with_transport(transport);
/// # let _ = client;
/// ```
pub struct TowerTransport<S, B = Full<Bytes>> {
    service: S,
    body: PhantomData<fn() -> B>,
}

impl<S: Clone, B> Clone for TowerTransport<S, B> {
    fn clone(&self) -> Self {
        Self {
            service: self.service.clone(),
            body: PhantomData,
        }
    }
}

impl<S, B> std::fmt::Debug for TowerTransport<S, B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TowerTransport").finish_non_exhaustive()
    }
}

impl<S, B> TowerTransport<S, B> {
    /// A transport over `service` (each request goes to a clone of it).
    pub fn new(service: S) -> Self {
        Self {
            service,
            body: PhantomData,
        }
    }
}

impl<S, B, RB> Transport for TowerTransport<S, B>
where
    S: tower_service::Service<Request<B>, Response = Response<RB>> + Clone + Send + 'static,
    S::Future: Send,
    S::Error: std::fmt::Display,
    B: From<Bytes> + Send + 'static,
    RB: http_body::Body<Data = Bytes> + Send + 'static,
    RB::Error: std::fmt::Display,
{
    type Future = Pin<Box<dyn Future<Output = Response<Bytes>> + Send>>;

    fn send(&self, request: Request<Bytes>) -> Self::Future {
        let service = self.service.clone();
        Box::pin(async move {
            let request = request.map(B::from);
            let response = match service.oneshot(request).await {
                Ok(response) => response,
                Err(err) => return failed(format!("the service failed: {err}")),
            };
            let (parts, body) = response.into_parts();
            match body.collect().await {
                Ok(collected) => Response::from_parts(parts, collected.to_bytes()),
                Err(err) => failed(format!("the response body failed: {err}")),
            }
        })
    }
}

/// What the client hands back when the service itself failed (not a response of the app).
fn failed(why: String) -> Response<Bytes> {
    let mut response = Response::new(Bytes::from(why));
    *response.status_mut() = StatusCode::BAD_GATEWAY;
    response
}
