//! The seam between a framework and the request core: [`begin`] before the handler and
//! [`SessionHandle::finish`] after it. An adapter (tower, actix-web, the test kit) converts its
//! request's headers into a [`RequestHead`], its response's into [`ResponseHeaders`], and an
//! `http::Response<String>` (a refusal, a rejection's response) into its own response type;
//! every decision is made here, once.
//!
//! Where the later checks hook in:
//! * a check that answers a request before the handler (CSRF) goes into [`begin`]: it reads the
//!   [`RequestHead`] and the request's [`Carrier`], and returns [`Begun::Refuse`], loading
//!   nothing;
//! * what is counted or announced once a response is decided (metrics, session events) goes
//!   into [`SessionHandle::finish`], which sees the status, the handler's rejection, the
//!   outcome of the plan it ran and the response that replaces the handler's.

use std::sync::Arc;

use http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};

use super::apply::Outcome;
use super::config::Config;
use super::source::Source;
use super::{AfterHandler, RequestSession, SessionHandle, SessionRejection};
use crate::csrf::request::{Gate, TokenCheck, gate};

/// What [`begin`] reads of a request, in the adapter's own types.
pub(crate) trait RequestHead {
    /// The values of the header `name`, in order.
    fn header_values<'a>(&'a self, name: &HeaderName) -> impl Iterator<Item = &'a [u8]>;

    /// The request's method (`"POST"`), for the checks made before the handler.
    fn method(&self) -> &str;

    /// The request's path, for the checks made before the handler.
    fn path(&self) -> &str;

    /// The first value of the header `name`.
    fn header(&self, name: &HeaderName) -> Option<&[u8]> {
        self.header_values(name).next()
    }

    /// The host the request was sent to (`shop.example:8443`): its `Host` header, for the CSRF
    /// check's own origin.
    fn host(&self) -> Option<&[u8]> {
        self.header(&header::HOST)
    }
}

impl<B> RequestHead for http::Request<B> {
    fn header_values<'a>(&'a self, name: &HeaderName) -> impl Iterator<Item = &'a [u8]> {
        self.headers()
            .get_all(name)
            .into_iter()
            .map(HeaderValue::as_bytes)
    }

    fn method(&self) -> &str {
        self.method().as_str()
    }

    fn path(&self) -> &str {
        self.uri().path()
    }

    /// `Host`, or in HTTP/2 (which has none) the URI's authority.
    fn host(&self) -> Option<&[u8]> {
        self.header(&header::HOST).or_else(|| {
            self.uri()
                .authority()
                .map(|authority| authority.as_str().as_bytes())
        })
    }
}

/// What the core does with a response's headers, in the adapter's own types.
pub(crate) trait ResponseHeaders {
    /// Whether the response has a header `name`.
    fn contains(&self, name: &HeaderName) -> bool;
    /// Sets `name` to `value`, instead of any of that name.
    fn insert(&mut self, name: HeaderName, value: HeaderValue);
    /// Adds `value` beside any of that name.
    fn append(&mut self, name: HeaderName, value: HeaderValue);
}

impl ResponseHeaders for HeaderMap {
    fn contains(&self, name: &HeaderName) -> bool {
        self.contains_key(name)
    }

    fn insert(&mut self, name: HeaderName, value: HeaderValue) {
        HeaderMap::insert(self, name, value);
    }

    fn append(&mut self, name: HeaderName, value: HeaderValue) {
        HeaderMap::append(self, name, value);
    }
}

/// What [`begin`] decided.
pub(crate) enum Begun {
    /// Run the handler: this session goes into the request (a clone of the handle), and the
    /// adapter calls [`SessionHandle::finish`] on the response.
    Proceed(SessionHandle),
    /// Answer with this response instead of running the handler; nothing was loaded (a CSRF
    /// refusal).
    Refuse(http::Response<String>),
    /// Run the handler only if the request carries a valid CSRF token of its session: the
    /// adapter runs the check (`TokenCheck::run_on_tower`/`run_on_actix`, which read the form
    /// body only when the token is to be found there), and answers with its refusal if it
    /// fails. The session goes into the request as for `Proceed`.
    Check(SessionHandle, TokenCheck),
}

/// Before the handler: reads what the request carried (the session token, by cookie or by
/// header, and the `User-Agent` when the layer records it) into the request's session, and
/// makes the CSRF check (`crate::csrf`) of a cookie-borne session. Nothing is loaded: a handler
/// that asks for nothing costs no store call.
pub(crate) fn begin(config: &Arc<Config>, head: &impl RequestHead) -> Begun {
    let (source, carrier) = Source::read(config, head);
    let check = match gate(config, carrier, head) {
        Gate::Open => None,
        Gate::Refuse(refusal) => return Begun::Refuse(refusal),
        Gate::Token(check) => Some(check),
    };
    let agent = if config.capture_agent {
        head.header(&header::USER_AGENT)
            .filter(|value| value.iter().all(|&b| b == b'\t' || (32..127).contains(&b)))
            .and_then(|value| std::str::from_utf8(value).ok())
            .map(str::to_owned)
    } else {
        None
    };
    let mut request = RequestSession::new(config.clone(), source, carrier, agent);
    request.mark = super::read_mark::carried(config, carrier, head);
    let session = SessionHandle(Arc::new(request));
    match check {
        None => Begun::Proceed(session),
        Some(check) => Begun::Check(session, check),
    }
}

/// What [`SessionHandle::finish`] decided: the response that replaces the handler's, if any,
/// and the headers the response gets.
pub(crate) struct Finished<'a> {
    session: &'a RequestSession,
    outcome: Option<Outcome>,
    /// The response to send instead of the handler's: the layer's own failure (what the
    /// handler did could not be stored), or what the `on_rejection` hook makes of the
    /// handler's rejection.
    pub(crate) replacement: Option<http::Response<String>>,
}

impl Finished<'_> {
    /// The token the response hands out (an id, a sealed cookie), or the failure that replaced
    /// the response, as a rejection: what the test kit's `seed` returns.
    #[cfg(feature = "testing")]
    pub(crate) fn token(&self) -> Result<Option<&str>, SessionRejection> {
        let Some(outcome) = &self.outcome else {
            return Ok(None);
        };
        if let Some(failure) = outcome.failure {
            return Err(failure.into());
        }
        Ok(match &outcome.token {
            Some(super::state::Token::Set { value, .. }) => Some(value),
            _ => None,
        })
    }

    /// Writes the session's headers (the token, `Cache-Control`, `x-session-error`) into the
    /// response that is sent: the handler's, or the replacement.
    pub(crate) fn write_headers(&self, headers: &mut impl ResponseHeaders) {
        if let Some(outcome) = &self.outcome {
            outcome.write_headers(&self.session.config, self.session.carrier, headers);
        }
        // After a write to a store that reads from replicas: the mark of what it wrote.
        super::read_mark::hand_out(self.session, headers);
    }
}

impl SessionHandle {
    /// After the handler, for a response of `status` (`rejection`: the session rejection the
    /// response was made of, if it was): carries out what the request's session needs, once,
    /// and decides the response. A read-only request is decided without an `await`.
    #[cfg(any(feature = "actix", feature = "testing"))]
    pub(crate) async fn finish(
        &self,
        status: StatusCode,
        rejection: Option<&SessionRejection>,
    ) -> Finished<'_> {
        let outcome = match self.after_handler(status) {
            Some(work) => Some(work.await),
            None => None,
        };
        self.finished(rejection, outcome)
    }

    /// [`finish`](Self::finish) in two steps, for an adapter whose response future is written
    /// out by hand (no box, no clone of the inner service): the work to await after the
    /// handler, if there is any (a read-only request has none) ...
    pub(crate) fn after_handler(&self, status: StatusCode) -> Option<AfterHandler> {
        self.0.after(status)
    }

    /// ... and, with its outcome, the response's decision.
    pub(crate) fn finished(
        &self,
        rejection: Option<&SessionRejection>,
        outcome: Option<Outcome>,
    ) -> Finished<'_> {
        let session = &*self.0;
        let config = &session.config;
        let replacement = match outcome.as_ref().and_then(|outcome| outcome.failure) {
            Some(failure) => Some(config.rejection_response(&failure.into())),
            // Without a hook, the rejection's own response stands.
            None => rejection
                .filter(|_| config.on_rejection.is_some())
                .map(|rejection| config.rejection_response(rejection)),
        };
        // The response is decided: what happened is counted and told, once (`tally.rs`).
        let failure = outcome.as_ref().and_then(|outcome| outcome.failure);
        session.report(failure.or_else(|| rejection.map(SessionRejection::failure)));
        Finished {
            session,
            outcome,
            replacement,
        }
    }
}
