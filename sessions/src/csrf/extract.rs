//! [`CsrfToken`]: the token a page puts in its forms, an extractor on axum and actix-web.

use crate::record::SlotChange;
use crate::session::{SessionHandle, SessionRejection};

use super::Secret;

/// The CSRF token of the request's session, to put in a form
/// (`<input type="hidden" name="csrf_token" value="{token}">`) or send in the `x-csrf-token`
/// header. An extractor on axum and actix-web; its `Display` is the token.
///
/// Each rendering (each `to_string()`, each `{token}` in a `format!`) is another masking of
/// the session's secret: they all differ and all verify. The first rendering in a session
/// draws the secret, which stores the session with the response if it was new.
/// [`SessionHandle::cycle_id`](crate::SessionHandle::cycle_id) (a login) drops the secret:
/// render the token after it, and the pages rendered before it stop working.
///
/// If the operating system's random source fails (it does not, on a working system), the
/// rendering is empty and logged at `error`: the form is then refused, never a panic.
///
/// ```
/// use sessions::csrf::CsrfToken;
///
/// async fn form(token: CsrfToken) -> String {
///     format!(r#"<form method="post"><input type="hidden" name="csrf_token" value="{token}"></form>"#)
/// }
/// # let _ = form;
/// ```
#[derive(Clone)]
pub struct CsrfToken {
    session: SessionHandle,
}

impl std::fmt::Debug for CsrfToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CsrfToken(..)")
    }
}

impl CsrfToken {
    /// The token of `session`'s session, for stacks without an extractor (plain tower:
    /// `request.extensions().get::<SessionHandle>()`). Loads the session.
    ///
    /// ```
    /// use sessions::csrf::CsrfToken;
    /// use sessions::SessionHandle;
    /// async fn page(session: SessionHandle) -> Result<String, sessions::SessionRejection> {
    ///     let token = CsrfToken::of(&session).await?;
    ///     Ok(format!(r#"<input type="hidden" name="csrf_token" value="{token}">"#))
    /// }
    /// # let _ = page;
    /// ```
    pub async fn of(session: &SessionHandle) -> Result<Self, SessionRejection> {
        session
            .0
            .load()
            .await
            .map_err(|err| SessionRejection::store("CsrfToken", &err))?;
        Ok(Self {
            session: session.clone(),
        })
    }

    /// Whether `token` is a token of this session: for a handler that checks one the layer
    /// did not see (a field of a JSON body, say).
    ///
    /// ```
    /// use sessions::csrf::CsrfToken;
    /// async fn check(token: CsrfToken, sent: String) -> &'static str {
    ///     if token.accepts(&sent) { "ok" } else { "refused" }
    /// }
    /// # let _ = check;
    /// ```
    pub fn accepts(&self, token: &str) -> bool {
        let mut state = self.session.0.state();
        Secret::in_record(state.view()).is_some_and(|secret| secret.accepts(token.as_bytes()))
    }

    /// The session's secret: the one it keeps, or one drawn now (and kept with the response).
    fn secret(&self) -> Option<Secret> {
        let session = &self.session.0;
        let mut state = session.state();
        if let Some(secret) = Secret::in_record(state.view()) {
            return Some(secret);
        }
        let secret = match Secret::generate() {
            Ok(secret) => secret,
            Err(err) => {
                tracing::error!(target: "sessions", error = %err, "no CSRF secret: the random source failed; the token is empty");
                return None;
            }
        };
        let slot = secret.slot(session.config.format)?;
        state.push(SlotChange::Put(slot));
        Some(secret)
    }
}

/// The token, under a fresh mask.
impl std::fmt::Display for CsrfToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let Some(secret) = self.secret() else {
            return Ok(());
        };
        match secret.masked() {
            Ok(token) => f.write_str(&token),
            Err(err) => {
                tracing::error!(target: "sessions", error = %err, "no CSRF token mask: the random source failed; the token is empty");
                Ok(())
            }
        }
    }
}

/// The session handle the layer put into the request, or the rejection that says it is
/// missing.
#[cfg(any(feature = "axum", feature = "actix"))]
fn layer_handle(handle: Option<&SessionHandle>) -> Result<&SessionHandle, SessionRejection> {
    handle.ok_or(SessionRejection::LayerMissing {
        type_name: std::any::type_name::<CsrfToken>(),
    })
}

#[cfg(feature = "axum")]
impl<S: Send + Sync> axum::extract::FromRequestParts<S> for CsrfToken {
    type Rejection = SessionRejection;

    async fn from_request_parts(
        parts: &mut http::request::Parts,
        _state: &S,
    ) -> Result<Self, SessionRejection> {
        let session = layer_handle(parts.extensions.get::<SessionHandle>())?.clone();
        CsrfToken::of(&session).await
    }
}

#[cfg(feature = "actix")]
impl actix_web::FromRequest for CsrfToken {
    type Error = SessionRejection;
    type Future = std::pin::Pin<Box<dyn Future<Output = Result<Self, SessionRejection>>>>;

    fn from_request(
        request: &actix_web::HttpRequest,
        _: &mut actix_web::dev::Payload,
    ) -> Self::Future {
        use actix_web::HttpMessage;
        let session = layer_handle(request.extensions().get::<SessionHandle>()).cloned();
        Box::pin(async move { CsrfToken::of(&session?).await })
    }
}
