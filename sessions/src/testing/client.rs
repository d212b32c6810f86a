//! [`TestClient`]: requests to an app, with the session kept as a browser keeps it.

use std::future::Future;
use std::sync::{Arc, Mutex, MutexGuard};

use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, Method, Request, Response, StatusCode, header};

use super::jar::Jar;
use super::tower::TowerTransport;
use crate::expiry::{Clock, SystemClock};
use crate::layer::SessionLayer;
use crate::session::Transport as IdTransport;

/// How a [`TestClient`] reaches the app: one request in, its whole response out.
pub trait Transport {
    /// The future of one request.
    type Future: Future<Output = Response<Bytes>>;
    /// Sends `request` to the app.
    fn send(&self, request: Request<Bytes>) -> Self::Future;
}

/// A client of an app that keeps the session the way a browser does: cookies by name and path
/// (`Max-Age=0` removes one, `Max-Age` ends one on the client's clock), and the id header a
/// layer configured with [`SessionLayer::header`] sends. Clones share their cookies, like the
/// tabs of one browser.
///
/// ```
/// use axum::{Router, routing::get};
/// use sessions::testing::TestClient;
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// let app = Router::new().route("/", get(|| async { ([("set-cookie", "a=1; Path=/")], "hi") }));
/// let client = TestClient::new(app);
/// let response = client.get("/").await;
/// assert_eq!((response.status().as_u16(), response.text()), (200, "hi".to_owned()));
/// assert_eq!(client.cookie("a").as_deref(), Some("1"));
/// # });
/// ```
pub struct TestClient<T> {
    transport: T,
    shared: Arc<Mutex<Shared>>,
    clock: Arc<dyn Clock>,
}

impl<T: Clone> Clone for TestClient<T> {
    fn clone(&self) -> Self {
        Self {
            transport: self.transport.clone(),
            shared: self.shared.clone(),
            clock: self.clock.clone(),
        }
    }
}

#[derive(Default)]
struct Shared {
    jar: Jar,
    /// The header the session id travels in, and its value as last received.
    id_header: Option<(HeaderName, Option<String>)>,
    /// Headers sent with every request that does not set them itself.
    defaults: Vec<(HeaderName, HeaderValue)>,
}

impl<S> TestClient<TowerTransport<S>> {
    /// A client of a tower service (an axum `Router`, or any `Service<Request<B>>` with
    /// `B: From<Bytes>`).
    ///
    /// ```
    /// let client = sessions::testing::TestClient::new(axum::Router::<()>::new());
    /// # let _ = client;
    /// ```
    pub fn new(service: S) -> Self {
        Self::with_transport(TowerTransport::new(service))
    }
}

impl<T> TestClient<T> {
    /// A client over any transport.
    ///
    /// ```
    /// use sessions::testing::{TestClient, TowerTransport};
    /// let transport: TowerTransport<_> = TowerTransport::new(axum::Router::<()>::new());
    /// let client = TestClient::with_transport(transport);
    /// # let _ = client;
    /// ```
    pub fn with_transport(transport: T) -> Self {
        Self {
            transport,
            shared: Arc::default(),
            clock: Arc::new(SystemClock),
        }
    }

    /// Measures cookie lifetimes on `clock` (the layer's `ManualClock`, to test expiry).
    ///
    /// ```
    /// use sessions::clock::ManualClock;
    /// let client = sessions::testing::TestClient::new(axum::Router::<()>::new()).with_clock(ManualClock::new());
    /// # let _ = client;
    /// ```
    pub fn with_clock(mut self, clock: impl Clock) -> Self {
        self.clock = Arc::new(clock);
        self
    }

    /// Keeps the session id that travels in header `name` (see [`SessionLayer::header`] and
    /// [`SessionLayer::cookie_or_header`]), like an API client: the header goes with every
    /// request (empty until a response gives it a value), and an empty value in a response
    /// forgets the id.
    ///
    /// ```
    /// let client = sessions::testing::TestClient::new(axum::Router::<()>::new())
    ///     .id_header(http::HeaderName::from_static("x-session-id"));
    /// # let _ = client;
    /// ```
    pub fn id_header(self, name: HeaderName) -> Self {
        self.shared().id_header = Some((name, None));
        self
    }

    /// Sends header `name: value` with every request that does not set `name` itself, as a
    /// browser sends its `User-Agent` (for a layer that captures it,
    /// [`SessionLayer::capture_user_agent`](crate::SessionLayer::capture_user_agent)).
    ///
    /// ```
    /// use axum::{Router, routing::post};
    /// use http::{HeaderMap, HeaderValue, header::USER_AGENT};
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// let echo = |headers: HeaderMap, body: String| async move {
    ///     format!("{:?} {body}", headers.get(USER_AGENT))
    /// };
    /// let client = sessions::testing::TestClient::new(Router::new().route("/echo", post(echo)))
    ///     .default_header(USER_AGENT, HeaderValue::from_static("Firefox/120.0"));
    /// let response = client.post_form("/echo", &[("name", "Ada L"), ("remember", "on")]).await;
    /// assert_eq!(response.text(), r#"Some("Firefox/120.0") name=Ada+L&remember=on"#);
    /// # });
    /// ```
    pub fn default_header(self, name: HeaderName, value: HeaderValue) -> Self {
        self.shared().defaults.push((name, value));
        self
    }

    fn shared(&self) -> MutexGuard<'_, Shared> {
        self.shared
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The value of cookie `name`, as the client would send it now.
    ///
    /// ```
    /// let client = sessions::testing::TestClient::new(axum::Router::<()>::new());
    /// assert!(client.cookie("session").is_none());
    /// ```
    pub fn cookie(&self, name: &str) -> Option<String> {
        let now = self.clock.now();
        self.shared().jar.get(name, now).map(str::to_owned)
    }

    /// Sets cookie `name` (path `/`), as a server's `Set-Cookie` would.
    ///
    /// ```
    /// let client = sessions::testing::TestClient::new(axum::Router::<()>::new());
    /// client.set_cookie("session", "abc");
    /// assert_eq!(client.cookie("session").as_deref(), Some("abc"));
    /// ```
    pub fn set_cookie(&self, name: &str, value: &str) {
        self.shared().jar.set(name, value);
    }

    /// Forgets cookie `name`.
    ///
    /// ```
    /// let client = sessions::testing::TestClient::new(axum::Router::<()>::new());
    /// client.set_cookie("session", "abc");
    /// client.remove_cookie("session");
    /// assert!(client.cookie("session").is_none());
    /// ```
    pub fn remove_cookie(&self, name: &str) {
        self.shared().jar.remove(name);
    }

    /// This client's session token for `layer`: its cookie's value, or the id header's, or
    /// `None`.
    ///
    /// ```
    /// use sessions::prelude::*;
    /// let layer = SessionLayer::new(MemoryStore::new());
    /// let client = sessions::testing::TestClient::new(axum::Router::<()>::new());
    /// assert!(client.session(&layer).is_none());
    /// ```
    pub fn session(&self, layer: &SessionLayer) -> Option<String> {
        let config = layer.config();
        match &config.transport {
            IdTransport::Cookie => self.cookie(config.cookie.cookie_name()),
            IdTransport::CookieOrHeader(_) if self.shared().id_header.is_none() => {
                self.cookie(config.cookie.cookie_name())
            }
            IdTransport::Header(_) | IdTransport::CookieOrHeader(_) => self
                .shared()
                .id_header
                .as_ref()
                .and_then(|(_, value)| value.clone()),
        }
    }

    /// Gives this client the session `token` (from [`seed`](super::seed)) for `layer`.
    ///
    /// ```
    /// use sessions::prelude::*;
    /// let layer = SessionLayer::new(MemoryStore::new());
    /// let client = sessions::testing::TestClient::new(axum::Router::<()>::new());
    /// client.set_session(&layer, "a-token");
    /// assert_eq!(client.session(&layer).as_deref(), Some("a-token"));
    /// ```
    pub fn set_session(&self, layer: &SessionLayer, token: &str) {
        let config = layer.config();
        match &config.transport {
            IdTransport::Cookie => self.set_cookie(config.cookie.cookie_name(), token),
            IdTransport::CookieOrHeader(_) if self.shared().id_header.is_none() => {
                self.set_cookie(config.cookie.cookie_name(), token);
            }
            IdTransport::Header(name) | IdTransport::CookieOrHeader(name) => {
                self.shared().id_header = Some((name.clone(), Some(token.to_owned())));
            }
        }
    }

    /// Forgets the session token for `layer` (a new browser, or cookies cleared).
    ///
    /// ```
    /// use sessions::prelude::*;
    /// let layer = SessionLayer::new(MemoryStore::new());
    /// let client = sessions::testing::TestClient::new(axum::Router::<()>::new());
    /// client.set_session(&layer, "a-token");
    /// client.forget_session(&layer);
    /// assert!(client.session(&layer).is_none());
    /// ```
    pub fn forget_session(&self, layer: &SessionLayer) {
        let config = layer.config();
        match &config.transport {
            IdTransport::Cookie => self.remove_cookie(config.cookie.cookie_name()),
            IdTransport::CookieOrHeader(_) if self.shared().id_header.is_none() => {
                self.remove_cookie(config.cookie.cookie_name());
            }
            IdTransport::Header(_) | IdTransport::CookieOrHeader(_) => {
                if let Some((_, value)) = self.shared().id_header.as_mut() {
                    *value = None;
                }
            }
        }
    }
}

impl<T: Transport> TestClient<T> {
    /// `GET path`.
    ///
    /// ```
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// let client = sessions::testing::TestClient::new(axum::Router::<()>::new());
    /// assert_eq!(client.get("/nowhere").await.status(), http::StatusCode::NOT_FOUND);
    /// # });
    /// ```
    pub async fn get(&self, path: &str) -> TestResponse {
        self.request(Method::GET, path, Bytes::new()).await
    }

    /// `POST path` with an empty body.
    ///
    /// ```
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// let client = sessions::testing::TestClient::new(axum::Router::<()>::new());
    /// assert_eq!(client.post("/nowhere").await.status(), http::StatusCode::NOT_FOUND);
    /// # });
    /// ```
    pub async fn post(&self, path: &str) -> TestResponse {
        self.request(Method::POST, path, Bytes::new()).await
    }

    /// `POST path` with `body` as JSON.
    ///
    /// ```
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// let client = sessions::testing::TestClient::new(axum::Router::<()>::new());
    /// let response = client.post_json("/nowhere", &serde_json::json!({"sku": "apple"})).await;
    /// assert_eq!(response.status(), http::StatusCode::NOT_FOUND);
    /// # });
    /// ```
    pub async fn post_json(&self, path: &str, body: &impl serde::Serialize) -> TestResponse {
        self.send_json(Method::POST, path, body).await
    }

    /// `PUT path` with `body` as JSON (`Content-Type: application/json`): a value that does not
    /// serialize is a client error response, and nothing is sent.
    ///
    /// ```
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// use axum::routing::put;
    /// let app = axum::Router::new().route("/cart/apple", put(|body: String| async move { body }));
    /// let client = sessions::testing::TestClient::new(app);
    /// let response = client.put_json("/cart/apple", &serde_json::json!({"qty": 3})).await;
    /// assert_eq!(response.text(), r#"{"qty":3}"#);
    /// # });
    /// ```
    pub async fn put_json(&self, path: &str, body: &impl serde::Serialize) -> TestResponse {
        self.send_json(Method::PUT, path, body).await
    }

    /// `PATCH path` with `body` as JSON (`Content-Type: application/json`), as
    /// [`put_json`](Self::put_json) does for `PUT`.
    ///
    /// ```
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// use axum::routing::patch;
    /// use http::HeaderMap;
    /// let app = axum::Router::new().route(
    ///     "/profile",
    ///     patch(|headers: HeaderMap, body: String| async move {
    ///         format!("{} {body}", headers["content-type"].to_str().unwrap_or_default())
    ///     }),
    /// );
    /// let client = sessions::testing::TestClient::new(app);
    /// let response = client.patch_json("/profile", &serde_json::json!({"dark": true})).await;
    /// assert_eq!(response.text(), r#"application/json {"dark":true}"#);
    /// # });
    /// ```
    pub async fn patch_json(&self, path: &str, body: &impl serde::Serialize) -> TestResponse {
        self.send_json(Method::PATCH, path, body).await
    }

    /// `POST path` with `form` as an HTML form sends it (`application/x-www-form-urlencoded`):
    /// a struct or a list of pairs.
    ///
    /// ```
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// let client = sessions::testing::TestClient::new(axum::Router::<()>::new());
    /// let response = client.post_form("/login", &[("name", "ada"), ("remember", "on")]).await;
    /// assert_eq!(response.status(), http::StatusCode::NOT_FOUND);
    /// # });
    /// ```
    pub async fn post_form(&self, path: &str, form: &impl serde::Serialize) -> TestResponse {
        match serde_urlencoded::to_string(form) {
            Ok(body) => {
                let form = "application/x-www-form-urlencoded";
                self.send_typed(Method::POST, path, form, body.into()).await
            }
            Err(err) => TestResponse::client_error(&err),
        }
    }

    /// `method path` with `body` as JSON.
    async fn send_json(
        &self,
        method: Method,
        path: &str,
        body: &impl serde::Serialize,
    ) -> TestResponse {
        match serde_json::to_vec(body) {
            Ok(body) => {
                self.send_typed(method, path, "application/json", body.into())
                    .await
            }
            Err(err) => TestResponse::client_error(&err),
        }
    }

    /// `method path` with `body` of `content_type`.
    async fn send_typed(
        &self,
        method: Method,
        path: &str,
        content_type: &'static str,
        body: Bytes,
    ) -> TestResponse {
        let request = Request::builder()
            .method(method)
            .uri(path)
            .header(header::CONTENT_TYPE, content_type)
            .body(body);
        match request {
            Ok(request) => self.send(request).await,
            Err(err) => TestResponse::client_error(&err),
        }
    }

    /// `DELETE path`.
    ///
    /// ```
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// let client = sessions::testing::TestClient::new(axum::Router::<()>::new());
    /// assert_eq!(client.delete("/nowhere").await.status(), http::StatusCode::NOT_FOUND);
    /// # });
    /// ```
    pub async fn delete(&self, path: &str) -> TestResponse {
        self.request(Method::DELETE, path, Bytes::new()).await
    }

    /// `method path` with `body`.
    ///
    /// ```
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// let client = sessions::testing::TestClient::new(axum::Router::<()>::new());
    /// let response = client.request(http::Method::PUT, "/x", "body".into()).await;
    /// assert_eq!(response.status(), http::StatusCode::NOT_FOUND);
    /// # });
    /// ```
    pub async fn request(&self, method: Method, path: &str, body: Bytes) -> TestResponse {
        match Request::builder().method(method).uri(path).body(body) {
            Ok(request) => self.send(request).await,
            Err(err) => TestResponse::client_error(&err),
        }
    }

    /// Sends `request` with this client's cookies (and id header), and keeps what the response
    /// sets.
    ///
    /// ```
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// let client = sessions::testing::TestClient::new(axum::Router::<()>::new());
    /// let request = http::Request::get("/x").body(bytes::Bytes::new()).unwrap();
    /// assert_eq!(client.send(request).await.status(), http::StatusCode::NOT_FOUND);
    /// # });
    /// ```
    pub async fn send(&self, mut request: Request<Bytes>) -> TestResponse {
        let now = self.clock.now();
        {
            let shared = self.shared();
            let path = request.uri().path().to_owned();
            if let Some(cookies) = shared.jar.header_for(&path, now)
                && let Ok(value) = HeaderValue::from_str(&cookies)
            {
                request.headers_mut().append(header::COOKIE, value);
            }
            // Sent empty before the first session: a layer that takes a cookie or the header
            // answers in the header the requests that send it.
            if let Some((name, value)) = &shared.id_header
                && let Ok(value) = HeaderValue::from_str(value.as_deref().unwrap_or(""))
            {
                request.headers_mut().insert(name.clone(), value);
            }
            for (name, value) in &shared.defaults {
                if !request.headers().contains_key(name) {
                    request.headers_mut().insert(name.clone(), value.clone());
                }
            }
        }
        let response = self.transport.send(request).await;
        let now = self.clock.now();
        let mut shared = self.shared();
        for value in response.headers().get_all(header::SET_COOKIE) {
            if let Ok(text) = value.to_str() {
                shared.jar.receive(text, now);
            }
        }
        if let Some((name, value)) = shared.id_header.as_mut()
            && let Some(sent) = response.headers().get(&*name)
        {
            let sent = sent.to_str().unwrap_or_default();
            *value = (!sent.is_empty()).then(|| sent.to_owned());
        }
        drop(shared);
        let (parts, body) = response.into_parts();
        TestResponse {
            status: parts.status,
            headers: parts.headers,
            body,
        }
    }
}

/// A response, read whole.
#[derive(Debug, Clone)]
pub struct TestResponse {
    status: StatusCode,
    headers: HeaderMap,
    body: Bytes,
}

impl TestResponse {
    /// A request the client could not even build (a bad path): a 400 with the reason.
    fn client_error(err: &impl std::fmt::Display) -> Self {
        Self {
            status: StatusCode::BAD_REQUEST,
            headers: HeaderMap::new(),
            body: Bytes::from(format!(
                "the test client could not build the request: {err}"
            )),
        }
    }

    /// The status.
    ///
    /// ```
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// let client = sessions::testing::TestClient::new(axum::Router::<()>::new());
    /// assert_eq!(client.get("/").await.status().as_u16(), 404);
    /// # });
    /// ```
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The headers.
    pub fn headers(&self) -> &HeaderMap {
        &self.headers
    }

    /// One header as text, if present and text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// Every `Set-Cookie` line.
    pub fn set_cookies(&self) -> Vec<&str> {
        self.headers
            .get_all(header::SET_COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .collect()
    }

    /// The body's bytes.
    pub fn bytes(&self) -> &Bytes {
        &self.body
    }

    /// The body as text (invalid UTF-8 replaced).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The body as JSON.
    ///
    /// # Errors
    /// When the body is not JSON of type `J`.
    pub fn json<J: serde::de::DeserializeOwned>(&self) -> Result<J, serde_json::Error> {
        serde_json::from_slice(&self.body)
    }
}
