//! [`Source`]: what a request carried and where its session lives, as one value.

use std::sync::Arc;

use http::HeaderName;

use super::config::{Backend, Config, Transport};
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

impl Source {
    /// Reads what the request carried: its `Cookie` header values (in order) and, when the id
    /// travels in a header, that header's value. Whitespace around the value is ignored, in a
    /// cookie and in a header alike. A malformed id is dropped (and logged without its value):
    /// the request starts a new session.
    pub(crate) fn read<'a>(
        config: &Config,
        cookies: impl Iterator<Item = &'a [u8]>,
        header: Option<&'a [u8]>,
    ) -> Source {
        let value = match &config.transport {
            Transport::Cookie => config.cookie.find(cookies),
            Transport::Header(_) => header
                .and_then(|value| std::str::from_utf8(value).ok())
                .map(str::trim),
        }
        .filter(|value| !value.is_empty());
        match &config.backend {
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
        }
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
    /// The header the id travels in, when it does not travel in a cookie.
    pub(crate) fn id_header(&self) -> Option<&HeaderName> {
        match &self.transport {
            Transport::Cookie => None,
            Transport::Header(name) => Some(name),
        }
    }
}
