//! The tokenless check (Go 1.25's `CrossOriginProtection`): whether an unsafe request comes
//! from another site, judged by the headers a browser sets and a page cannot forge
//! (`Sec-Fetch-Site`, then `Origin` against the request's own origin). A pure function of the
//! request's head and the configuration, with its table of cases below.

use super::{Csrf, CsrfRefusal};

/// What the tokenless check reads of a request.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Head<'a> {
    /// The method (`"POST"`).
    pub(crate) method: &'a str,
    /// The path, without the query.
    pub(crate) path: &'a str,
    /// `Host` (or, in HTTP/2, the `:authority` of the URI).
    pub(crate) host: Option<&'a [u8]>,
    /// `Sec-Fetch-Site`.
    pub(crate) fetch_site: Option<&'a [u8]>,
    /// `Origin`.
    pub(crate) origin: Option<&'a [u8]>,
}

/// What the check says about a request, before any token is looked at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Let it through: a safe method, an exempt path, CSRF off, or a request from this site
    /// (or a trusted origin, or with no browser header at all) while no token is required.
    Pass,
    /// It needs a valid token of the session to go through; without one it is refused for
    /// this reason.
    NeedsToken(CsrfRefusal),
}

/// Whether `method` is one the check leaves alone (it must change nothing: RFC 9110's safe
/// methods, as Go counts them).
pub(crate) fn is_safe(method: &str) -> bool {
    matches!(method, "GET" | "HEAD" | "OPTIONS")
}

/// The verdict on a request whose session travels in a cookie.
pub(crate) fn verdict(csrf: &Csrf, head: &Head<'_>) -> Verdict {
    if !csrf.on || is_safe(head.method) || csrf.is_exempt(head.path) {
        return Verdict::Pass;
    }
    match (cross_origin(csrf, head), csrf.require_token) {
        (None, false) => Verdict::Pass,
        (None, true) => Verdict::NeedsToken(CsrfRefusal::TokenMissing),
        (Some(refusal), _) => Verdict::NeedsToken(refusal),
    }
}

/// Why the request is taken for a cross-origin one, if it is.
fn cross_origin(csrf: &Csrf, head: &Head<'_>) -> Option<CsrfRefusal> {
    match head.fetch_site {
        // A browser that sends it said where the request comes from.
        Some(b"same-origin" | b"none") => return None,
        Some(_) if csrf.is_trusted(head.origin) => return None,
        Some(_) => return Some(CsrfRefusal::CrossSite),
        None => {}
    }
    let origin = head.origin?;
    // Neither header: curl, a server-to-server client, a browser from before 2020 sending
    // no `Origin` on this request. No browser-borne forgery to stop.
    if is_own_origin(csrf, origin, head.host) || csrf.is_trusted(Some(origin)) {
        None
    } else {
        Some(CsrfRefusal::OtherOrigin)
    }
}

/// Whether `origin` (`https://shop.example:8443`) is the request's own: the layer's scheme and
/// the request's `Host`, compared without regard to the case of letters.
fn is_own_origin(csrf: &Csrf, origin: &[u8], host: Option<&[u8]>) -> bool {
    let Some(host) = host.filter(|host| !host.is_empty()) else {
        return false;
    };
    let scheme = csrf.scheme.as_bytes();
    origin.len() == scheme.len() + 3 + host.len()
        && origin[..scheme.len()].eq_ignore_ascii_case(scheme)
        && &origin[scheme.len()..scheme.len() + 3] == b"://"
        && origin[scheme.len() + 3..].eq_ignore_ascii_case(host)
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOST: &[u8] = b"shop.example";

    fn head<'a>(method: &'a str, fetch_site: Option<&'a str>, origin: Option<&'a str>) -> Head<'a> {
        Head {
            method,
            path: "/cart/add",
            host: Some(HOST),
            fetch_site: fetch_site.map(str::as_bytes),
            origin: origin.map(str::as_bytes),
        }
    }

    use CsrfRefusal::{CrossSite, OtherOrigin, TokenMissing};
    use Verdict::{NeedsToken, Pass};

    /// (method, Sec-Fetch-Site, Origin, verdict with `Csrf::default()`)
    const DEFAULT_CASES: &[(&str, Option<&str>, Option<&str>, Verdict)] = &[
        // Safe methods are never checked, whatever they carry.
        (
            "GET",
            Some("cross-site"),
            Some("https://evil.example"),
            Pass,
        ),
        ("HEAD", Some("cross-site"), None, Pass),
        ("OPTIONS", Some("same-site"), None, Pass),
        // Fetch Metadata decides when present.
        ("POST", Some("same-origin"), None, Pass),
        ("POST", Some("none"), None, Pass),
        (
            "POST",
            Some("same-origin"),
            Some("https://evil.example"),
            Pass,
        ),
        ("POST", Some("cross-site"), None, NeedsToken(CrossSite)),
        (
            "POST",
            Some("same-site"),
            Some("https://shop.example"),
            NeedsToken(CrossSite),
        ),
        (
            "PUT",
            Some("cross-site"),
            Some("https://evil.example"),
            NeedsToken(CrossSite),
        ),
        ("DELETE", Some("same-site"), None, NeedsToken(CrossSite)),
        ("PATCH", Some("cross-site"), None, NeedsToken(CrossSite)),
        // An unknown value is no promise of same-origin.
        ("POST", Some("garbage"), None, NeedsToken(CrossSite)),
        ("POST", Some(""), None, NeedsToken(CrossSite)),
        // Without it, Origin against the request's own origin (https + Host).
        ("POST", None, Some("https://shop.example"), Pass),
        ("POST", None, Some("HTTPS://Shop.Example"), Pass),
        (
            "POST",
            None,
            Some("https://evil.example"),
            NeedsToken(OtherOrigin),
        ),
        (
            "POST",
            None,
            Some("http://shop.example"),
            NeedsToken(OtherOrigin),
        ),
        (
            "POST",
            None,
            Some("https://shop.example:8443"),
            NeedsToken(OtherOrigin),
        ),
        (
            "POST",
            None,
            Some("https://shop.example.evil.example"),
            NeedsToken(OtherOrigin),
        ),
        (
            "POST",
            None,
            Some("https://shop.exampl"),
            NeedsToken(OtherOrigin),
        ),
        ("POST", None, Some("null"), NeedsToken(OtherOrigin)),
        ("POST", None, Some(""), NeedsToken(OtherOrigin)),
        // Neither header: curl, a server-to-server client.
        ("POST", None, None, Pass),
        ("DELETE", None, None, Pass),
        // Methods are case-sensitive (RFC 9110): `post` is not a safe method either.
        ("post", Some("cross-site"), None, NeedsToken(CrossSite)),
    ];

    #[test]
    fn the_default_refuses_cross_site_unsafe_requests_and_lets_the_rest_through() {
        let csrf = Csrf::default();
        for &(method, fetch_site, origin, expected) in DEFAULT_CASES {
            assert_eq!(
                verdict(&csrf, &head(method, fetch_site, origin)),
                expected,
                "{method} Sec-Fetch-Site: {fetch_site:?} Origin: {origin:?}"
            );
        }
    }

    #[test]
    fn off_lets_everything_through() {
        let csrf = Csrf::off();
        for &(method, fetch_site, origin, _) in DEFAULT_CASES {
            assert_eq!(verdict(&csrf, &head(method, fetch_site, origin)), Pass);
        }
    }

    #[test]
    fn require_token_asks_a_token_of_every_unsafe_request() {
        let csrf = Csrf::default().require_token();
        for &(method, fetch_site, origin, expected) in DEFAULT_CASES {
            let expected = match expected {
                Pass if is_safe(method) => Pass,
                Pass => NeedsToken(TokenMissing),
                refused => refused,
            };
            assert_eq!(
                verdict(&csrf, &head(method, fetch_site, origin)),
                expected,
                "{method} Sec-Fetch-Site: {fetch_site:?} Origin: {origin:?}"
            );
        }
    }

    #[test]
    fn a_trusted_origin_passes_either_check() {
        let csrf = Csrf::default().trusted_origin("https://app.example");
        let cases = [
            (Some("cross-site"), Some("https://app.example"), Pass),
            (Some("same-site"), Some("https://APP.example"), Pass),
            (None, Some("https://app.example"), Pass),
            (
                Some("cross-site"),
                Some("https://app.example:444"),
                NeedsToken(CrossSite),
            ),
            (Some("cross-site"), None, NeedsToken(CrossSite)),
            (None, Some("http://app.example"), NeedsToken(OtherOrigin)),
            (None, Some("https://evil.example"), NeedsToken(OtherOrigin)),
        ];
        for (fetch_site, origin, expected) in cases {
            assert_eq!(
                verdict(&csrf, &head("POST", fetch_site, origin)),
                expected,
                "Sec-Fetch-Site: {fetch_site:?} Origin: {origin:?}"
            );
        }
    }

    #[test]
    fn an_exempt_prefix_covers_its_own_path_segments_only() {
        let csrf = Csrf::default().exempt("/webhooks").exempt("/api/");
        let cases = [
            ("/webhooks", Pass),
            ("/webhooks/stripe", Pass),
            ("/api/", Pass),
            ("/api/orders", Pass),
            ("/webhooksX", NeedsToken(CrossSite)),
            ("/api", NeedsToken(CrossSite)),
            ("/cart/add", NeedsToken(CrossSite)),
            ("/Webhooks", NeedsToken(CrossSite)),
        ];
        for (path, expected) in cases {
            let head = Head {
                path,
                ..head("POST", Some("cross-site"), Some("https://evil.example"))
            };
            assert_eq!(verdict(&csrf, &head), expected, "{path}");
        }
    }

    #[test]
    fn behind_plain_http_the_own_origin_is_http() {
        let csrf = Csrf::default().served_over_http();
        assert_eq!(
            verdict(&csrf, &head("POST", None, Some("http://shop.example"))),
            Pass
        );
        assert_eq!(
            verdict(&csrf, &head("POST", None, Some("https://shop.example"))),
            NeedsToken(OtherOrigin)
        );
    }

    #[test]
    fn the_port_is_part_of_the_origin() {
        let csrf = Csrf::default();
        let on_port = |origin| Head {
            host: Some(b"shop.example:8443"),
            ..head("POST", None, Some(origin))
        };
        assert_eq!(verdict(&csrf, &on_port("https://shop.example:8443")), Pass);
        assert_eq!(
            verdict(&csrf, &on_port("https://shop.example")),
            NeedsToken(OtherOrigin)
        );
    }

    #[test]
    fn without_a_host_no_origin_is_the_request_own() {
        let csrf = Csrf::default();
        for host in [None, Some(&b""[..])] {
            let head = Head {
                host,
                ..head("POST", None, Some("https://"))
            };
            assert_eq!(verdict(&csrf, &head), NeedsToken(OtherOrigin));
        }
    }
}
