//! What a response carries after the handler, as `http` headers: the session token (a
//! `Set-Cookie`, or the id header), `Cache-Control: no-store` beside it, and the header that
//! names why an error replaced the handler's response.

use http::{HeaderName, HeaderValue, header};

use super::apply::Outcome;
use super::config::Config;
use super::seam::ResponseHeaders;
use super::source::Carrier;
use super::state::Token;

/// The header that names why a response was replaced (fixed text, never a backend's error).
pub(crate) const SESSION_ERROR: HeaderName = HeaderName::from_static("x-session-error");

impl Outcome {
    /// Writes the headers the response gets: the token where the request carried it (a
    /// `Set-Cookie`, appended beside the response's other cookies, or the id header), with
    /// `Cache-Control: no-store` unless the handler set its own, and `x-session-error` when an
    /// error replaced the handler's response.
    pub(crate) fn write_headers(
        &self,
        config: &Config,
        carrier: Carrier,
        headers: &mut impl ResponseHeaders,
    ) {
        if let Some(failure) = &self.failure {
            headers.insert(SESSION_ERROR, HeaderValue::from_static(failure.message));
        }
        let Some(token) = &self.token else {
            return;
        };
        match (carrier, config.id_header(), token) {
            (Carrier::Header, Some(name), Token::Set { value, .. }) => {
                if let Ok(value) = HeaderValue::from_str(value) {
                    headers.insert(name.clone(), value);
                }
            }
            (Carrier::Header, Some(name), Token::Clear) => {
                headers.insert(name.clone(), HeaderValue::from_static(""));
            }
            (_, _, Token::Set { value, max_age }) => {
                headers.append(
                    header::SET_COOKIE,
                    config.cookie.set_cookie(value, *max_age),
                );
            }
            (_, _, Token::Clear) => {
                headers.append(header::SET_COOKIE, config.cookie.removal());
            }
        }
        // Responses that carry a session token must not be cached by shared caches.
        if !headers.contains(&header::CACHE_CONTROL) {
            headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        }
    }
}
