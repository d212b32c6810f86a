//! [`ActixTransport`]: a [`TestClient`](super::TestClient) over an actix-web app (features
//! `testing` and `actix`).

use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;

use actix_web::body::MessageBody;
use actix_web::dev::{Service, ServiceResponse};
use actix_web::test::TestRequest;
use bytes::Bytes;
use http::{Request, Response, StatusCode};

use super::client::{TestClient, Transport};
use crate::actix::{http_header, http_status};

/// Sends a test client's requests to an actix-web app, through `actix_web::test`'s service.
///
/// ```
/// use actix_web::{App, web};
/// use sessions::testing::{ActixTransport, TestClient};
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// let app = App::new().route("/", web::get().to(|| async { "hi" }));
/// let service = actix_web::test::init_service(app).await;
/// let client = TestClient::with_transport(ActixTransport::new(service));
/// assert_eq!(client.get("/").await.text(), "hi");
/// # });
/// ```
pub struct ActixTransport<S> {
    service: Rc<S>,
}

impl<S> Clone for ActixTransport<S> {
    fn clone(&self) -> Self {
        Self {
            service: self.service.clone(),
        }
    }
}

impl<S> std::fmt::Debug for ActixTransport<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ActixTransport").finish_non_exhaustive()
    }
}

impl<S> ActixTransport<S> {
    /// A transport over an initialised app service (`actix_web::test::init_service(app).await`).
    pub fn new(service: S) -> Self {
        Self {
            service: Rc::new(service),
        }
    }
}

impl<S> TestClient<ActixTransport<S>> {
    /// A client of an initialised actix-web app service.
    ///
    /// ```
    /// use actix_web::{App, web};
    /// use sessions::testing::TestClient;
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// let app = actix_web::test::init_service(App::new().route("/", web::get().to(|| async { "hi" }))).await;
    /// assert_eq!(TestClient::actix(app).get("/").await.text(), "hi");
    /// # });
    /// ```
    pub fn actix(service: S) -> Self {
        Self::with_transport(ActixTransport::new(service))
    }
}

impl<S, B> Transport for ActixTransport<S>
where
    S: Service<actix_http::Request, Response = ServiceResponse<B>, Error = actix_web::Error>
        + 'static,
    B: MessageBody + 'static,
{
    type Future = Pin<Box<dyn Future<Output = Response<Bytes>>>>;

    fn send(&self, request: Request<Bytes>) -> Self::Future {
        let service = self.service.clone();
        Box::pin(async move {
            let (parts, body) = request.into_parts();
            let Ok(method) = actix_web::http::Method::from_bytes(parts.method.as_str().as_bytes())
            else {
                return failed("the test client's method is not one actix-web knows".into());
            };
            let mut test = TestRequest::default()
                .method(method)
                .uri(&parts.uri.to_string());
            for (name, value) in &parts.headers {
                test = test.append_header((name.as_str(), value.as_bytes()));
            }
            let response = match service.call(test.set_payload(body).to_request()).await {
                Ok(response) => response.map_into_boxed_body(),
                Err(err) => {
                    let response = err.error_response();
                    ServiceResponse::new(TestRequest::default().to_http_request(), response)
                }
            };
            let mut out = Response::new(Bytes::new());
            *out.status_mut() = http_status(response.status());
            for (name, value) in response.headers() {
                if let Some((name, value)) = http_header(name, value) {
                    out.headers_mut().append(name, value);
                }
            }
            match actix_web::body::to_bytes(response.into_body()).await {
                Ok(bytes) => *out.body_mut() = bytes,
                Err(_) => return failed("the response body failed".into()),
            }
            out
        })
    }
}

fn failed(why: String) -> Response<Bytes> {
    let mut response = Response::new(Bytes::from(why));
    *response.status_mut() = StatusCode::BAD_GATEWAY;
    response
}
