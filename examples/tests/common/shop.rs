//! The cart shop in-process, on either framework, reached through the test kit:
//! `sessions::testing::TestClient` (a browser's cookie jar; clones share it, like tabs).

use std::future::Future;
use std::path::Path;
use std::pin::Pin;
use std::rc::Rc;

use bytes::Bytes;
use http::header::USER_AGENT;
use http::{HeaderValue, Request, Response};
use serde_json::Value;
use sessions::SessionLayer;
use sessions::testing::{ActixTransport, TestClient, TestResponse, TowerTransport, Transport};
use sessions_examples::cart::cli::{Framework, Options};
use sessions_examples::cart::stores::Opened;
use sessions_examples::cart::{AppState, actix_app, axum_app};

/// `#[tokio::test]`s running `async fn $test(framework: Framework)` once per framework:
/// `$test::axum` and `$test::actix`.
#[macro_export]
macro_rules! on_both_frameworks {
    ($($test:ident),* $(,)?) => {$(
        mod $test {
            use sessions_examples::cart::cli::Framework;

            #[tokio::test]
            async fn axum() {
                super::$test(Framework::Axum).await;
            }

            #[tokio::test]
            async fn actix() {
                super::$test(Framework::Actix).await;
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

    /// A new browser that sends `agent` as its `User-Agent` (what "your sessions" shows).
    pub fn browser_as(&self, agent: &str) -> Browser {
        let agent = HeaderValue::from_str(agent).expect("a valid User-Agent");
        self.browser().default_header(USER_AGENT, agent)
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
