//! The cart shop in-process, on either framework, reached through the test kit:
//! `sessions::testing::TestClient` (a browser's cookie jar; clones share it, like tabs).

use std::future::Future;
use std::path::Path;
use std::pin::Pin;
use std::rc::Rc;

use bytes::Bytes;
use http::{Method, Request, Response, header};
use serde_json::Value;
use sessions::SessionLayer;
use sessions::testing::{ActixTransport, TestClient, TestResponse, TowerTransport, Transport};
use sessions_examples::cart::cli::{Framework, Options};
use sessions_examples::cart::stores::Opened;
use sessions_examples::cart::{AppState, actix_app, axum_app};

/// Runs `test` on `framework` the way actix-web needs it: on this thread, inside a `LocalSet`
/// (its futures are not `Send`).
pub async fn run_local<F: Future>(test: F) -> F::Output {
    tokio::task::LocalSet::new().run_until(test).await
}

/// `#[tokio::test]`s running `async fn $test(framework: Framework)` once per framework:
/// `$test::axum` and `$test::actix`.
#[macro_export]
macro_rules! on_both_frameworks {
    ($($test:ident),* $(,)?) => {$(
        mod $test {
            use sessions_examples::cart::cli::Framework;

            #[tokio::test]
            async fn axum() {
                $crate::common::shop::run_local(super::$test(Framework::Axum)).await;
            }

            #[tokio::test]
            async fn actix() {
                $crate::common::shop::run_local(super::$test(Framework::Actix)).await;
            }
        }
    )*};
}

/// One request's response, on either framework (not `Send`: actix-web's are not).
type Answer = Pin<Box<dyn Future<Output = Response<Bytes>>>>;

/// The app, on either framework, as one transport type: a request in, its response out.
#[derive(Clone)]
pub struct AnyApp(Rc<dyn Fn(Request<Bytes>) -> Answer>);

impl Transport for AnyApp {
    type Future = Answer;

    fn send(&self, request: Request<Bytes>) -> Self::Future {
        (self.0)(request)
    }
}

/// A browser of the shop.
pub type Browser = TestClient<AnyApp>;

/// The shop over one store, as the `cart` binary builds it (the same `Opened::layer()`).
pub struct Shop {
    pub layer: SessionLayer,
    app: AnyApp,
}

impl Shop {
    /// The shop on `framework` with the store the command line `args` name (`--store ..`).
    pub async fn open(framework: Framework, args: &[&str]) -> Shop {
        let options = Options::parse(args.iter().map(|a| a.to_string()), |_| None)
            .expect("valid test options");
        let store = Opened::open(&options).await.expect("open the store");
        let layer = store.layer();
        let state = AppState::new(layer.clone(), store.describe(&options), framework);
        let app = match framework {
            Framework::Axum => {
                let transport: TowerTransport<_> =
                    TowerTransport::new(axum_app::app(state, layer.clone()));
                AnyApp(Rc::new(move |request| Box::pin(transport.send(request))))
            }
            Framework::Actix => {
                let service =
                    actix_web::test::init_service(actix_app::app(state, layer.clone())).await;
                let transport = ActixTransport::new(service);
                AnyApp(Rc::new(move |request| transport.send(request)))
            }
        };
        Shop { layer, app }
    }

    /// The shop on `framework` with its sessions in the SQLite file `db` (the default store).
    pub async fn sqlite(framework: Framework, db: &Path) -> Shop {
        Shop::open(
            framework,
            &["--store", "sqlite", "--db", &db.display().to_string()],
        )
        .await
    }

    /// A new browser: a cookie jar of its own.
    pub fn browser(&self) -> Browser {
        TestClient::with_transport(self.app.clone())
    }

    /// A new browser holding the session `token` (a seeded or earlier session).
    pub fn browser_with(&self, token: &str) -> Browser {
        let browser = self.browser();
        browser.set_session(&self.layer, token);
        browser
    }

    /// The browser's session token.
    pub fn token(&self, browser: &Browser) -> Option<String> {
        browser.session(&self.layer)
    }
}

/// A form post (`application/x-www-form-urlencoded`), optionally as a browser named `agent`.
pub async fn post_form(
    browser: &Browser,
    path: &str,
    fields: &[(&str, &str)],
    agent: Option<&str>,
) -> TestResponse {
    let body = fields
        .iter()
        .map(|(name, value)| format!("{}={}", encode(name), encode(value)))
        .collect::<Vec<_>>()
        .join("&");
    let mut request = Request::builder()
        .method(Method::POST)
        .uri(path)
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
    if let Some(agent) = agent {
        request = request.header(header::USER_AGENT, agent);
    }
    browser
        .send(request.body(Bytes::from(body)).expect("a valid request"))
        .await
}

/// `DELETE path`.
pub async fn delete(browser: &Browser, path: &str) -> TestResponse {
    browser.request(Method::DELETE, path, Bytes::new()).await
}

/// `PUT path` with a JSON body.
pub async fn put_json(browser: &Browser, path: &str, json: &Value) -> TestResponse {
    let request = Request::builder()
        .method(Method::PUT)
        .uri(path)
        .header(header::CONTENT_TYPE, "application/json")
        .body(Bytes::from(json.to_string()))
        .expect("a valid request");
    browser.send(request).await
}

/// Percent-encodes a form value (everything but unreserved characters).
fn encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(byte as char)
            }
            _ => out.push_str(&format!("%{byte:02X}")),
        }
    }
    out
}

/// The response's body as JSON, or a failure that shows it.
pub fn json(response: &TestResponse) -> Value {
    response
        .json()
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", response.text()))
}

/// Where a redirect goes.
pub fn location(response: &TestResponse) -> Option<&str> {
    response.header("location")
}

/// A cart's lines as `(sku, qty)`.
pub fn lines(cart: &Value) -> Vec<(String, u64)> {
    cart["lines"]
        .as_array()
        .unwrap_or_else(|| panic!("no lines in {cart}"))
        .iter()
        .map(|l| {
            (
                l["sku"].as_str().unwrap_or_default().to_owned(),
                l["qty"].as_u64().unwrap_or_default(),
            )
        })
        .collect()
}

pub fn line(sku: &str, qty: u64) -> (String, u64) {
    (sku.to_owned(), qty)
}

/// `GET /api/cart`, answered.
pub async fn cart_of(browser: &Browser) -> Value {
    let response = browser.get("/api/cart").await;
    assert_eq!(response.status(), 200, "{}", response.text());
    json(&response)
}
