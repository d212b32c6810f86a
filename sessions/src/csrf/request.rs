//! The CSRF check of one request, before its handler: [`gate`] decides from the request's head
//! alone (no store call, no body), and a [`TokenCheck`] finishes the decision when a token is
//! needed: from the header, or from the form body the adapter reads for it.

use std::borrow::Cow;

use http::header::{CONTENT_TYPE, ORIGIN};
use http::{HeaderName, Response};

use super::form::{FormRead, is_form, token_in};
use super::origin::{Head, Verdict, is_safe, verdict};
use super::{CsrfRefusal, HEADER, Secret};
use crate::session::{Carrier, Config, RequestHead, SessionHandle, SessionRejection};

const SEC_FETCH_SITE: HeaderName = HeaderName::from_static("sec-fetch-site");
const TOKEN_HEADER: HeaderName = HeaderName::from_static(HEADER);

/// What the check decided before the handler.
pub(crate) enum Gate {
    /// Run the handler.
    Open,
    /// Answer with this 403 (a refusal the hook shaped): no token could let it through.
    Refuse(Response<String>),
    /// A valid token of the session lets it through: see [`TokenCheck`].
    Token(TokenCheck),
}

/// A request that goes through only with a valid token of its session.
#[derive(Debug)]
pub(crate) struct TokenCheck {
    /// Why it is refused without one.
    refusal: CsrfRefusal,
    /// The token of the `x-csrf-token` header.
    header: Option<Box<[u8]>>,
    /// The body is a form to read for its token, at most this many bytes.
    form_limit: Option<usize>,
}

/// The check for a request whose session came in `carrier`.
pub(crate) fn gate(config: &Config, carrier: Carrier, head: &impl RequestHead) -> Gate {
    let csrf = &config.csrf;
    // The hot path: a safe method, or a session not in a cookie, costs a comparison.
    if !csrf.on || carrier != Carrier::Cookie || is_safe(head.method()) {
        return Gate::Open;
    }
    let refusal = match verdict(
        csrf,
        &Head {
            method: head.method(),
            path: head.path(),
            host: head.host(),
            fetch_site: head.header(&SEC_FETCH_SITE),
            origin: head.header(&ORIGIN),
        },
    ) {
        Verdict::Pass => return Gate::Open,
        Verdict::NeedsToken(refusal) => refusal,
    };
    let header = head.header(&TOKEN_HEADER).map(Box::from);
    let form_limit =
        (header.is_none() && is_form(head.header(&CONTENT_TYPE))).then_some(csrf.form_limit);
    if header.is_none() && form_limit.is_none() {
        return Gate::Refuse(refused(config, head.method(), refusal));
    }
    Gate::Token(TokenCheck {
        refusal,
        header,
        form_limit,
    })
}

impl TokenCheck {
    /// Whether the token (from the header, or from `form`, what the adapter read of the body)
    /// is one of `session`'s; the refusal to answer with if it is not. Loads the session.
    async fn run(
        self,
        session: &SessionHandle,
        method: &str,
        form: Option<FormRead>,
    ) -> Result<(), Response<String>> {
        let config = &session.0.config;
        let token: Option<Cow<'_, [u8]>> = match (&self.header, &form) {
            (Some(header), _) => Some(Cow::Borrowed(header)),
            (None, Some(FormRead::Read(body))) => {
                token_in(body).map(|token| Cow::Owned(token.into_owned().into_bytes()))
            }
            (None, Some(FormRead::TooLarge | FormRead::Failed)) => {
                return Err(refused(config, method, CsrfRefusal::FormTooLarge));
            }
            (None, Some(FormRead::Unreadable)) => {
                tracing::debug!(target: "sessions", "the request's body type cannot be read for a CSRF token; send it in the x-csrf-token header");
                None
            }
            (None, None) => None,
        };
        let Some(token) = token else {
            return Err(refused(config, method, self.refusal));
        };
        if let Err(err) = session.0.load().await {
            let rejection = SessionRejection::store("CsrfToken", &err);
            rejection.log();
            return Err(config.rejection_response(&rejection));
        }
        let valid = {
            let mut state = session.0.state();
            Secret::in_record(state.view()).is_some_and(|secret| secret.accepts(&token))
        };
        if valid {
            Ok(())
        } else {
            Err(refused(config, method, CsrfRefusal::TokenInvalid))
        }
    }
}

// The adapters' part: read the form body only when the check says so, put it back, run the
// check.
impl TokenCheck {
    /// The check of a tower request (its body read when needed, then put back).
    pub(crate) async fn run_on_tower<B: 'static>(
        self,
        session: &SessionHandle,
        request: &mut http::Request<B>,
    ) -> Result<(), Response<String>> {
        use super::form::tower_body;
        let form = match self.form_limit {
            Some(limit) => Some(match tower_body::take(request.body_mut()) {
                Some(taken) => {
                    let read = tower_body::read(taken, limit).await;
                    if let FormRead::Read(bytes) = &read {
                        tower_body::put_back(request.body_mut(), bytes.clone());
                    }
                    read
                }
                None => FormRead::Unreadable,
            }),
            None => None,
        };
        let method = request.method().clone();
        self.run(session, method.as_str(), form).await
    }

    /// The check of an actix-web request (its payload read when needed, then put back).
    #[cfg(feature = "actix")]
    pub(crate) async fn run_on_actix(
        self,
        session: &SessionHandle,
        request: &mut actix_web::dev::ServiceRequest,
    ) -> Result<(), Response<String>> {
        let form = match self.form_limit {
            Some(limit) => Some(super::form::actix_payload::read(request, limit).await),
            None => None,
        };
        let method = request.method().clone();
        self.run(session, method.as_str(), form).await
    }
}

/// The 403 of `refusal` (or what the layer's hook makes of it), logged at `debug`.
fn refused(config: &Config, method: &str, refusal: CsrfRefusal) -> Response<String> {
    tracing::debug!(target: "sessions", reason = refusal.reason(), method, "CSRF check refused the request");
    let rejection = SessionRejection::Csrf(refusal);
    // Counted here: a refused request never reaches `finish`, where the others are.
    let failure = rejection.failure();
    crate::metrics::rejection(failure.status, failure.reason);
    config.rejection_response(&rejection)
}
