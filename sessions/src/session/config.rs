//! What a `SessionLayer` was configured with: where sessions live, how the id travels, the
//! registered types, the expiry policy and the codec. The layer builds it; every request's
//! session reads it.

use std::sync::Arc;

use http::HeaderName;

use crate::codec::Format;
use crate::cookie::CookieConfig;
use crate::expiry::{Clock, Expiry};
use crate::registry::Registry;
use crate::store::{CookieStore, SessionStore};

use super::SessionRejection;

/// Where sessions are kept: a server-side store, or the cookie itself.
#[derive(Clone)]
pub(crate) enum Backend {
    Store(Arc<dyn SessionStore>),
    Cookie(Arc<CookieStore>),
}

/// How the session id travels.
#[derive(Clone, Debug)]
pub(crate) enum Transport {
    Cookie,
    Header(HeaderName),
    /// In this header for the requests that send it (API clients), else in the cookie.
    CookieOrHeader(HeaderName),
}

/// Everything the layer was configured with.
#[derive(Clone)]
pub(crate) struct Config {
    pub(crate) backend: Backend,
    pub(crate) registry: Registry,
    pub(crate) cookie: CookieConfig,
    pub(crate) transport: Transport,
    pub(crate) expiry: Expiry,
    pub(crate) format: Format,
    pub(crate) clock: Arc<dyn Clock>,
    /// Saves carry the slot revisions they were made against (see `optimistic_concurrency`).
    pub(crate) optimistic: bool,
    /// At most this many sessions per owner: binding one more ends the oldest.
    pub(crate) max_sessions_per_owner: Option<usize>,
    /// Binding an owner records the request's `User-Agent`.
    pub(crate) capture_agent: bool,
    /// Shapes the response of a rejection (`SessionLayer::on_rejection`).
    pub(crate) on_rejection: Option<RejectionHook>,
    /// The CSRF check of requests whose session came in the cookie (`SessionLayer::csrf`).
    pub(crate) csrf: crate::csrf::Csrf,
    /// Who is told what happened to sessions (`SessionLayer::on_event`).
    pub(crate) events: crate::events::Listeners,
    /// The layer's per-request counters (`metrics.rs`), shared by its clones.
    pub(crate) metrics: Arc<crate::metrics::LayerCounters>,
}

/// What `SessionLayer::on_rejection` keeps.
pub(crate) type RejectionHook =
    Arc<dyn Fn(&SessionRejection) -> http::Response<String> + Send + Sync>;

impl Config {
    /// The response a rejection becomes: the hook's, or the default.
    pub(crate) fn rejection_response(
        &self,
        rejection: &SessionRejection,
    ) -> http::Response<String> {
        match &self.on_rejection {
            Some(hook) => hook(rejection),
            None => rejection.to_response(),
        }
    }
}
