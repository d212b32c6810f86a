use super::*;
use http::HeaderMap;
use http::header::COOKIE;

fn headers(values: &[&[u8]]) -> HeaderMap {
    let mut map = HeaderMap::new();
    for value in values {
        match HeaderValue::from_bytes(value) {
            Ok(value) => {
                map.append(COOKIE, value);
            }
            Err(err) => panic!("test header {value:?}: {err}"),
        }
    }
    map
}

fn find<'a>(config: &CookieConfig, map: &'a HeaderMap) -> Option<&'a str> {
    config.find(map.get_all(COOKIE).iter().map(HeaderValue::as_bytes))
}

fn text(value: &HeaderValue) -> &str {
    value.to_str().unwrap_or("<not text>")
}

#[test]
fn defaults_render_exactly() {
    let config = CookieConfig::new();
    assert_eq!(config.validate(), Ok(()));
    assert_eq!(
        text(&config.set_cookie("abc", Some(Duration::from_secs(3600)))),
        "session=abc; HttpOnly; SameSite=Lax; Secure; Path=/; Max-Age=3600"
    );
    assert_eq!(
        text(&config.set_cookie("abc", None)),
        "session=abc; HttpOnly; SameSite=Lax; Secure; Path=/"
    );
    assert_eq!(
        text(&config.removal()),
        "session=; HttpOnly; SameSite=Lax; Secure; Path=/; Max-Age=0"
    );
}

#[test]
fn max_age_is_whole_seconds_and_saturates() {
    let config = CookieConfig::new();
    assert!(
        text(&config.set_cookie("v", Some(Duration::from_millis(1999)))).ends_with("; Max-Age=1")
    );
    // A huge duration does not panic.
    let _ = config.set_cookie("v", Some(Duration::MAX));
}

#[test]
fn attributes_render() {
    let config = CookieConfig::new()
        .name("sid")
        .domain("example.com")
        .path("/app")
        .http_only(false)
        .secure(false)
        .same_site(SameSite::Strict);
    assert_eq!(config.validate(), Ok(()));
    assert_eq!(
        text(&config.set_cookie("x", Some(Duration::from_secs(5)))),
        "sid=x; SameSite=Strict; Path=/app; Domain=example.com; Max-Age=5"
    );
    // Removal keeps Path and Domain, or the browser would not replace the cookie.
    assert_eq!(
        text(&config.removal()),
        "sid=; SameSite=Strict; Path=/app; Domain=example.com; Max-Age=0"
    );
    let none = CookieConfig::new().same_site(SameSite::None);
    assert_eq!(
        text(&none.set_cookie("x", None)),
        "session=x; HttpOnly; SameSite=None; Secure; Path=/"
    );
}

#[test]
fn host_prefix() {
    let config = CookieConfig::new()
        .domain("example.com")
        .path("/app")
        .secure(false)
        .host_prefix();
    assert_eq!(config.cookie_name(), "__Host-session");
    assert_eq!(config.validate(), Ok(()));
    assert_eq!(
        text(&config.set_cookie("v", None)),
        "__Host-session=v; HttpOnly; SameSite=Lax; Secure; Path=/"
    );
    // The prefix survives a later rename and is not doubled.
    assert_eq!(config.clone().name("sid").cookie_name(), "__Host-sid");
    assert_eq!(
        CookieConfig::new()
            .name("__Host-sid")
            .host_prefix()
            .cookie_name(),
        "__Host-sid"
    );
    // Breaking the rules afterwards is caught.
    for broken in [
        config.clone().domain("example.com"),
        config.clone().path("/app"),
        config.clone().secure(false),
    ] {
        assert!(matches!(
            broken.validate(),
            Err(CookieConfigError::HostPrefix { .. })
        ));
    }
    // Spelled by hand, the same rules apply.
    assert!(matches!(
        CookieConfig::new()
            .name("__Host-x")
            .secure(false)
            .validate(),
        Err(CookieConfigError::HostPrefix { .. })
    ));
    assert_eq!(
        CookieConfig::new()
            .name("__Secure-x")
            .secure(false)
            .validate(),
        Err(CookieConfigError::SecurePrefix)
    );
}

#[test]
fn validate_errors() {
    for name in ["", "a b", "a;b", "a=b", "a,b", "é", "a\"b", "a\tb", "(x)"] {
        assert_eq!(
            CookieConfig::new().name(name).validate(),
            Err(CookieConfigError::InvalidName { name: name.into() }),
            "{name:?}"
        );
    }
    for name in ["sid", "a.b-c_d", "x!#$%&'*+^`|~"] {
        assert_eq!(
            CookieConfig::new().name(name).validate(),
            Ok(()),
            "{name:?}"
        );
    }
    for domain in ["", ".", "exa mple.com", "a;b", "a\nb"] {
        assert!(matches!(
            CookieConfig::new().domain(domain).validate(),
            Err(CookieConfigError::InvalidDomain { .. })
        ));
    }
    assert_eq!(
        CookieConfig::new().domain(".example.com").validate(),
        Ok(())
    );
    for path in ["", "app", "/a;b", "/a\nb", "/é"] {
        assert!(matches!(
            CookieConfig::new().path(path).validate(),
            Err(CookieConfigError::InvalidPath { .. })
        ));
    }
    assert_eq!(
        CookieConfig::new()
            .same_site(SameSite::None)
            .secure(false)
            .validate(),
        Err(CookieConfigError::SameSiteNoneInsecure)
    );
    // An unvalidated bad name cannot make a header; it yields an empty one, no panic.
    assert_eq!(
        CookieConfig::new().name("a\nb").set_cookie("v", None),
        HeaderValue::from_static("")
    );
}

#[test]
fn find_among_several_cookies() {
    let config = CookieConfig::new();
    let map = headers(&[b"theme=dark; session=abc; lang=en"]);
    assert_eq!(find(&config, &map), Some("abc"));
    let map = headers(&[b"theme=dark;session=abc"]);
    assert_eq!(find(&config, &map), Some("abc"));
    let map = headers(&[b"  session = abc  "]);
    assert_eq!(find(&config, &map), Some("abc"));
    let map = headers(&[b"session=\"abc\""]);
    assert_eq!(find(&config, &map), Some("abc"));
    // Names are exact: no prefix, suffix or case matches.
    let map = headers(&[b"xsession=1; sessionx=2; Session=3; SESSION=4"]);
    assert_eq!(find(&config, &map), None);
    // The first match wins; an empty value is skipped.
    let map = headers(&[b"session=; session=first; session=second"]);
    assert_eq!(find(&config, &map), Some("first"));
    // Values keep everything after the first `=`.
    let map = headers(&[b"session=a=b"]);
    assert_eq!(find(&config, &map), Some("a=b"));
    assert_eq!(find(&config, &HeaderMap::new()), None);
    let host = CookieConfig::new().host_prefix();
    let map = headers(&[b"session=plain; __Host-session=prefixed"]);
    assert_eq!(find(&host, &map), Some("prefixed"));
}

#[test]
fn find_across_several_headers() {
    let config = CookieConfig::new().name("sid");
    let map = headers(&[b"a=1", b"b=2; sid=second-header", b"sid=third-header"]);
    assert_eq!(find(&config, &map), Some("second-header"));
    // Other headers are not looked at.
    let mut map = headers(&[b"a=1"]);
    map.append(
        http::header::SET_COOKIE,
        HeaderValue::from_static("sid=nope"),
    );
    assert_eq!(find(&config, &map), None);
}

#[test]
fn find_ignores_garbage() {
    let config = CookieConfig::new();
    let map = headers(&[
        b";;;",
        b"=",
        b"=novalue; noequals; ;",
        b"session",
        b"\xff\xfe session=hidden-in-non-utf8",
        b"caf\xc3\xa9=ok; session=after-utf8",
    ]);
    assert_eq!(find(&config, &map), Some("after-utf8"));
    let map = headers(&[b"\x80session=bad", b"session=\xffvalue"]);
    assert_eq!(find(&config, &map), None);
    let map = headers(&[b"session=\xffvalue", b"session=good"]);
    assert_eq!(find(&config, &map), Some("good"));
    // Long garbage is linear work and finds nothing.
    let long = "x;=".repeat(100_000);
    let map = headers(&[long.as_bytes()]);
    assert_eq!(find(&config, &map), None);
}
