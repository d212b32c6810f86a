//! The read mark: after a write to a store that answers reads from replicas that may lag
//! ([`SessionStore::read_mark_ttl`](crate::SessionStore::read_mark_ttl) is `Some`), the
//! response tells the client the version its write left the session at, and the client's next
//! requests send it back, so that their loads are answered by a copy at least that new
//! ([`ReadMark`]).
//!
//! It travels beside the session's own token: the cookie `<cookie name>_written`, with the
//! session cookie's attributes and a `Max-Age` of the store's mark lifetime; or, for a request
//! that carried its id in a header, the header `<id header>-written`, which an API client sends
//! back as it sends the id. Its value is `<version>.<tag>`: the tag (the first four bytes of the
//! session's key, in hex) binds it to the id it was handed out with, so that a mark of another
//! id (a slow response from before a login, arriving after it) sends the read to the primary
//! rather than counting as a mark of this one.
//!
//! Forging it changes only where the forger's own session is read from: a higher version or
//! another tag sends its reads to the primary (what every read costs without replicas); a
//! lower one, or none, lets a replica answer, at most the replica lag bound behind.

use http::header::{COOKIE, SET_COOKIE};
use http::{HeaderName, HeaderValue};

use super::RequestSession;
use super::config::{Backend, Config};
use super::seam::{RequestHead, ResponseHeaders};
use super::source::{Carrier, Source};
use crate::id::SessionKey;
use crate::store::ReadMark;

/// What the mark cookie's name adds to the session cookie's.
pub(crate) const COOKIE_SUFFIX: &str = "_written";

/// What the mark header's name adds to the id header's.
pub(crate) const HEADER_SUFFIX: &str = "-written";

/// The mark a request carried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CarriedMark {
    /// The version the client's last write left the session under the key tagged `tag` at.
    Written { version: u64, tag: u32 },
    /// A value that is not a mark: only the primary answers (as for a mark of another id).
    Unreadable,
}

impl CarriedMark {
    fn parse(value: &str) -> Self {
        let parsed = value.split_once('.').and_then(|(version, tag)| {
            let tag = (tag.len() == 8).then(|| u32::from_str_radix(tag, 16).ok())??;
            Some(CarriedMark::Written {
                version: version.parse().ok()?,
                tag,
            })
        });
        parsed.unwrap_or(CarriedMark::Unreadable)
    }

    /// What this mark asks of a read of the session under `key`.
    pub(crate) fn for_key(self, key: &SessionKey) -> ReadMark {
        match self {
            CarriedMark::Written { version, tag: of } if of == tag(key) => {
                ReadMark::AtLeast(version)
            }
            _ => ReadMark::Latest,
        }
    }
}

/// The tag that binds a mark to the session under `key`.
fn tag(key: &SessionKey) -> u32 {
    let bytes = key.as_bytes();
    u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]])
}

/// The mark's value for a write that left the session under `key` at `version`.
fn render(version: u64, key: &SessionKey) -> String {
    format!("{version}.{:08x}", tag(key))
}

/// The mark header's name beside the id header `id_header`.
fn header_name(id_header: &HeaderName) -> Option<HeaderName> {
    HeaderName::try_from(format!("{}{HEADER_SUFFIX}", id_header.as_str())).ok()
}

/// Whether the layer's store keeps read marks.
fn keeps_marks(config: &Config) -> Option<std::time::Duration> {
    match &config.backend {
        Backend::Store(store) => store.read_mark_ttl(),
        Backend::Cookie(_) => None,
    }
}

/// The mark the request carried (where its session token travels), when the store keeps them.
pub(crate) fn carried(
    config: &Config,
    carrier: Carrier,
    head: &impl RequestHead,
) -> Option<CarriedMark> {
    keeps_marks(config)?;
    let value = match (carrier, config.id_header()) {
        (Carrier::Header, Some(id_header)) => head
            .header(&header_name(id_header)?)
            .and_then(|value| std::str::from_utf8(value).ok())
            .map(str::trim),
        _ => config.cookie.find_companion(
            &config.cookie.companion_name(COOKIE_SUFFIX),
            head.header_values(&COOKIE),
        ),
    }
    .filter(|value| !value.is_empty())?;
    Some(CarriedMark::parse(value))
}

/// After the response is decided: the mark of this request's last write, if it wrote to a
/// store that keeps marks, where the session's token travels.
pub(crate) fn hand_out(session: &RequestSession, headers: &mut impl ResponseHeaders) {
    let Source::Store { store, .. } = &session.source else {
        return;
    };
    let Some(ttl) = store.read_mark_ttl() else {
        return;
    };
    let (version, key) = {
        let state = session.state();
        let Some(version) = state.written else {
            return;
        };
        (version, session.home_key(&state))
    };
    let Some(key) = key else {
        return;
    };
    let value = render(version, &key);
    let config = &session.config;
    match (session.carrier, config.id_header()) {
        (Carrier::Header, Some(id_header)) => {
            if let (Some(name), Ok(value)) = (header_name(id_header), HeaderValue::from_str(&value))
            {
                headers.insert(name, value);
            }
        }
        _ => {
            let name = config.cookie.companion_name(COOKIE_SUFFIX);
            // Whole seconds, rounded up: the mark must outlive the lag bound.
            let ttl = std::time::Duration::from_secs(
                ttl.as_secs()
                    .saturating_add(u64::from(ttl.subsec_nanos() > 0)),
            );
            headers.append(SET_COOKIE, config.cookie.set_companion(&name, &value, ttl));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_mark_binds_a_version_to_its_key_and_anything_else_asks_for_the_primary() {
        let key = SessionKey::from_digest([0xab; 32]);
        let other = SessionKey::from_digest([0x01; 32]);
        let value = render(7, &key);
        assert_eq!(value, "7.abababab");
        let mark = CarriedMark::parse(&value);
        assert_eq!(mark.for_key(&key), ReadMark::AtLeast(7));
        assert_eq!(mark.for_key(&other), ReadMark::Latest);
        for garbage in ["", "7", "x.abababab", "7.abab", "7.zzzzzzzz", "-1.abababab"] {
            assert_eq!(
                CarriedMark::parse(garbage).for_key(&key),
                ReadMark::Latest,
                "{garbage}"
            );
        }
    }
}
