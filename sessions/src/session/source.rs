//! [`Source`]: what a request carried and where its session lives, as one value.

use std::sync::Arc;

use http::{HeaderName, header};

use super::config::{Backend, Config, Transport};
use super::seam::RequestHead;
use crate::id::SessionId;
use crate::store::{CookieStore, SessionStore};

/// Where a request's session lives and what the request carried to find it.
pub(crate) enum Source {
    /// A server-side store; the id the request carried, if it carried a well-formed one.
    Store {
        store: Arc<dyn SessionStore>,
        id: Option<SessionId>,
    },
    /// The cookie store; the sealed cookie the request carried, if any.
    Cookie {
        cookies: Arc<CookieStore>,
        token: Option<String>,
    },
}

/// How the request carried its session (or would have): in the cookie, or in the id header.
/// The response answers the same way; the CSRF check applies to cookies only.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Carrier {
    Cookie,
    Header,
}

impl Source {
    /// Reads what the request carried: the session cookie, or, when the id travels in a header
    /// (always, or for the requests that send that header), that header's value. Whitespace
    /// around the value is ignored, in a cookie and in a header alike. A malformed id is
    /// dropped (and logged without its value): the request starts a new session.
    pub(crate) fn read(config: &Config, head: &impl RequestHead) -> (Source, Carrier) {
        let carrier = match &config.transport {
            Transport::Cookie => Carrier::Cookie,
            Transport::Header(_) => Carrier::Header,
            // A request that sends the header at all (an empty value too: an API client's
            // first request) is answered in it.
            Transport::CookieOrHeader(name) if head.header(name).is_some() => Carrier::Header,
            Transport::CookieOrHeader(_) => Carrier::Cookie,
        };
        let value = match (carrier, config.id_header()) {
            (Carrier::Header, Some(name)) => head
                .header(name)
                .and_then(|value| std::str::from_utf8(value).ok())
                .map(str::trim),
            _ => config.cookie.find(head.header_values(&header::COOKIE)),
        }
        .filter(|value| !value.is_empty());
        let source = match &config.backend {
            Backend::Cookie(cookies) => Source::Cookie {
                cookies: cookies.clone(),
                token: value.map(str::to_owned),
            },
            Backend::Store(store) => Source::Store {
                store: store.clone(),
                id: value.and_then(|value| {
                    let id = SessionId::parse(value);
                    if id.is_none() {
                        tracing::warn!(
                            target: "sessions",
                            length = value.len(),
                            "malformed session id refused; starting a new session"
                        );
                    }
                    id
                }),
            },
        };
        (source, carrier)
    }

    /// Whether the request carried a session (an id or a sealed cookie).
    pub(crate) fn carried(&self) -> bool {
        match self {
            Source::Store { id, .. } => id.is_some(),
            Source::Cookie { token, .. } => token.is_some(),
        }
    }
}

impl Config {
    /// The header the id travels in, when it does not travel in a cookie (or not always).
    pub(crate) fn id_header(&self) -> Option<&HeaderName> {
        match &self.transport {
            Transport::Cookie => None,
            Transport::Header(name) | Transport::CookieOrHeader(name) => Some(name),
        }
    }
}
