//! What a response carries after the handler, as `http` headers: the session token (a
//! `Set-Cookie`, or the id header), `Cache-Control: no-store` beside it, and the header that
//! names why an error replaced the handler's response.

use http::{HeaderName, HeaderValue, header};

use super::apply::Outcome;
use super::config::{Config, Transport};
use super::state::Token;

/// The header that names why a response was replaced (fixed text, never a backend's error).
pub(crate) const SESSION_ERROR: HeaderName = HeaderName::from_static("x-session-error");

impl Outcome {
    /// Calls `header(name, value)` for each header the response gets, in order. `Set-Cookie` is
    /// appended (a response may set other cookies); the others replace any of the same name,
    /// but a `Cache-Control` the handler set is kept (`keep_existing`).
    pub(crate) fn for_each_header(
        &self,
        config: &Config,
        mut header: impl FnMut(HeaderName, HeaderValue, Place),
    ) {
        if let Some(failure) = &self.failure {
            header(
                SESSION_ERROR,
                HeaderValue::from_static(failure.message),
                Place::Replace,
            );
        }
        let Some(token) = &self.token else {
            return;
        };
        match (&config.transport, token) {
            (Transport::Header(name), Token::Set { value, .. }) => {
                if let Ok(value) = HeaderValue::from_str(value) {
                    header(name.clone(), value, Place::Replace);
                }
            }
            (Transport::Header(name), Token::Clear) => {
                header(name.clone(), HeaderValue::from_static(""), Place::Replace);
            }
            (Transport::Cookie, Token::Set { value, max_age }) => {
                header(
                    header::SET_COOKIE,
                    config.cookie.set_cookie(value, *max_age),
                    Place::Append,
                );
            }
            (Transport::Cookie, Token::Clear) => {
                header(header::SET_COOKIE, config.cookie.removal(), Place::Append);
            }
        }
        // Responses that carry a session token must not be cached by shared caches.
        header(
            header::CACHE_CONTROL,
            HeaderValue::from_static("no-store"),
            Place::KeepExisting,
        );
    }

    /// Writes the outcome's headers into an `http` response's.
    pub(crate) fn write_headers(&self, config: &Config, headers: &mut http::HeaderMap) {
        self.for_each_header(config, |name, value, place| match place {
            Place::Append => {
                headers.append(name, value);
            }
            Place::Replace => {
                headers.insert(name, value);
            }
            Place::KeepExisting => {
                if !headers.contains_key(&name) {
                    headers.insert(name, value);
                }
            }
        });
    }
}

/// How a header goes into a response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Place {
    /// Beside any of the same name.
    Append,
    /// Instead of any of the same name.
    Replace,
    /// Only when the response has none of that name.
    KeepExisting,
}
