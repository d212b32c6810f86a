//! The cart shop (the `cart` binary): one app, on axum or on actix-web.
//!
//! The handlers are written once, framework-free: plain `async fn`s of the values an extractor
//! gives (`Typed<Cart>`, `SessionHandle`, a form) that answer a [`Reply`]. Each adapter does
//! only its framework's part: the extractors, the routes, and turning a [`Reply`] into its
//! response type.
//!
//! * [`model`]: the session types (`Cart` v3 with its v1 → v2 → v3 chain, `Account`, whose
//!   `user` is the session's owner, and `Flash`), the catalogue and the cart operations;
//! * [`shop`]: the HTML page and its forms, and "Your sessions"; [`page`]: the HTML itself;
//! * [`api`]: the same as JSON under `/api`;
//! * [`axum_app`], [`actix_app`]: the routes in each framework;
//! * [`stores`]: the store the command line picks, and the `SessionLayer` over it;
//! * [`cli`]: the command line.

pub mod actix_app;
pub mod api;
pub mod axum_app;
pub mod cli;
pub mod model;
pub mod ops;
pub mod page;
pub mod shop;
pub mod stores;

use std::sync::Arc;

use http::StatusCode;
use serde::Serialize;
use sessions::SessionLayer;

use self::cli::Framework;

/// What the handlers share: the layer (for its migration counts), where sessions are kept and
/// which framework serves them (both shown on the page).
#[derive(Clone)]
pub struct AppState {
    pub layer: SessionLayer,
    /// Where the sessions are, for people (no passwords).
    pub store: Arc<str>,
    pub framework: Framework,
    /// The Prometheus recorder, when the app installed one (the `cart` binary does): `/metrics`
    /// and the panel's counters.
    pub metrics: Option<metrics_exporter_prometheus::PrometheusHandle>,
}

impl AppState {
    pub fn new(layer: SessionLayer, store: impl Into<Arc<str>>, framework: Framework) -> Self {
        AppState {
            layer,
            store: store.into(),
            framework,
            metrics: None,
        }
    }

    /// Serves the metrics `handle` records (see [`ops::install_recorder`]).
    pub fn with_metrics(mut self, handle: metrics_exporter_prometheus::PrometheusHandle) -> Self {
        self.metrics = Some(handle);
        self
    }
}

/// A handler's answer, in either framework.
#[derive(Debug)]
pub enum Reply {
    /// A page.
    Html(String),
    /// `303 See Other` to a path of this site: a form's answer (post/redirect/get).
    SeeOther(&'static str),
    /// A JSON body with a status.
    Json(StatusCode, String),
    /// `204 No Content`.
    NoContent,
    /// Metrics in the Prometheus text format (`GET /metrics`).
    Metrics(String),
}

impl Reply {
    /// `value` as a JSON answer (a 500 in the unlikely case that it cannot be serialized).
    pub fn json(status: StatusCode, value: &impl Serialize) -> Reply {
        match serde_json::to_string(value) {
            Ok(body) => Reply::Json(status, body),
            Err(err) => {
                tracing::error!(%err, "a JSON answer could not be serialized");
                Reply::Json(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    r#"{"error":"internal error"}"#.to_owned(),
                )
            }
        }
    }

    /// `200 OK` with `value` as JSON.
    pub fn ok(value: &impl Serialize) -> Reply {
        Reply::json(StatusCode::OK, value)
    }

    /// `{"error": message}` with `status`.
    pub fn error(status: StatusCode, message: impl Into<String>) -> Reply {
        #[derive(Serialize)]
        struct Body {
            error: String,
        }
        Reply::json(
            status,
            &Body {
                error: message.into(),
            },
        )
    }

    /// The status, the `content-type` (or `location`) header, and the body.
    pub fn into_parts(self) -> (StatusCode, Option<(&'static str, &'static str)>, String) {
        match self {
            Reply::Html(body) => (
                StatusCode::OK,
                Some(("content-type", "text/html; charset=utf-8")),
                body,
            ),
            Reply::SeeOther(path) => (
                StatusCode::SEE_OTHER,
                Some(("location", path)),
                String::new(),
            ),
            Reply::Json(status, body) => (status, Some(("content-type", "application/json")), body),
            Reply::NoContent => (StatusCode::NO_CONTENT, None, String::new()),
            Reply::Metrics(body) => (
                StatusCode::OK,
                Some(("content-type", "text/plain; version=0.0.4; charset=utf-8")),
                body,
            ),
        }
    }
}
