//! The OWASP Session Management Cheat Sheet, first half: the session id's properties, how it
//! is exchanged, and the cookie's attributes. Each test is named after the point it proves;
//! `SECURITY.md` maps every point to its test. (The life cycle, expiry and data points are in
//! `owasp_lifecycle.rs`.)

use std::collections::HashSet;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderName, Method, Request, header};
use sessions::clock::ManualClock;
use sessions::testing::{TestClient, TestResponse, Transport};
use sessions::{
    CookieConfig, CookieStore, Expiry, Key, MemoryStore, SameSite, SessionId, SessionLayer,
};

use super::handlers::NO_CART;
use super::support::{attributes, cookie_value, max_age, post_as, the_set_cookie, token};
use super::{App, RecordingStore, browser, layer};

pub(crate) fn has_attribute(set_cookie: &str, name: &str) -> bool {
    attributes(set_cookie).iter().any(|attribute| {
        attribute
            .split('=')
            .next()
            .unwrap_or("")
            .eq_ignore_ascii_case(name)
    })
}

pub(crate) fn attribute_value<'a>(set_cookie: &'a str, name: &str) -> Option<&'a str> {
    attributes(set_cookie).into_iter().find_map(|attribute| {
        let (key, value) = attribute.split_once('=')?;
        key.eq_ignore_ascii_case(name).then_some(value)
    })
}

/// base64url without padding, decoded (the tests package has no base64 dependency).
pub(crate) fn base64url_decode(text: &str) -> Option<Vec<u8>> {
    let value = |c: u8| match c {
        b'A'..=b'Z' => Some(c - b'A'),
        b'a'..=b'z' => Some(c - b'a' + 26),
        b'0'..=b'9' => Some(c - b'0' + 52),
        b'-' => Some(62),
        b'_' => Some(63),
        _ => None,
    };
    let mut out = Vec::with_capacity(text.len() * 3 / 4);
    let (mut buffer, mut bits) = (0u32, 0u32);
    for c in text.bytes() {
        buffer = (buffer << 6) | u32::from(value(c)?);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((buffer >> bits) as u8);
            buffer &= (1 << bits) - 1;
        }
    }
    Some(out)
}

/// The one `Set-Cookie` of a write that creates a session (from a browser with no session).
pub(crate) async fn new_session_set_cookie<T: Transport>(
    client: &TestClient<T>,
    layer: &SessionLayer,
) -> String {
    let response = post_as(client, layer, None, "/cart/apple").await;
    assert_eq!(response.status(), 200, "{}", response.text());
    the_set_cookie(&response)
}

/// `GET path` with exactly these headers, from `client` (whose jar should be empty).
pub(crate) async fn get_with_headers<T: Transport>(
    client: &TestClient<T>,
    path: &str,
    headers: &[(HeaderName, &str)],
) -> TestResponse {
    let mut request = Request::builder().method(Method::GET).uri(path);
    for (name, value) in headers {
        request = request.header(name, *value);
    }
    client
        .send(request.body(Bytes::new()).expect("a valid request"))
        .await
}

pub(crate) fn cookie_store_layer() -> SessionLayer {
    layer(CookieStore::new([Key::from_bytes(1, [0x5A; 32])]).expect("one key"))
}

fn layer_with_cookie(config: CookieConfig) -> SessionLayer {
    layer(MemoryStore::new()).cookie(config)
}

// ---- session ID properties -----------------------------------------------------------------

/// "Session ID Name Fingerprinting": the default name is generic, says nothing about the
/// technology behind it, and can be changed; the layer adds no header that names it either.
pub(crate) async fn session_id_name_fingerprinting<A: App>() {
    let client = browser::<A>(&layer(MemoryStore::new())).await;
    let response = client.post("/cart/apple").await;
    let set_cookie = the_set_cookie(&response);
    let name = set_cookie.split('=').next().unwrap_or_default();
    assert_eq!(name, "session");
    for telltale in [
        "rust",
        "axum",
        "actix",
        "tower",
        "sessions-rs",
        "sid_rs",
        "tsid",
    ] {
        assert!(!name.to_ascii_lowercase().contains(telltale), "{name}");
    }
    for header in ["server", "x-powered-by"] {
        assert!(
            response.header(header).is_none(),
            "the layer added {header}"
        );
    }

    let renamed = layer_with_cookie(CookieConfig::new().name("id"));
    let set_cookie = new_session_set_cookie(&browser::<A>(&renamed).await, &renamed).await;
    assert!(set_cookie.starts_with("id="), "{set_cookie}");
}

/// "Session ID Length" and "Session ID Entropy": 256 bits from the OS CSPRNG, 43 base64url
/// characters. 1,000 ids are distinct and every one of the 256 bits is set in about half.
pub(crate) async fn session_id_length_and_entropy<A: App>() {
    let layer = layer(MemoryStore::new());
    let client = browser::<A>(&layer).await;
    let mut seen = HashSet::new();
    let mut ones = [0u32; 256];
    const N: u32 = 1000;
    for _ in 0..N {
        let id = cookie_value(&new_session_set_cookie(&client, &layer).await).to_owned();
        assert_eq!(id.len(), 43, "{id}");
        assert!(SessionId::parse(&id).is_some(), "{id}");
        let bytes = base64url_decode(&id).expect("base64url");
        assert_eq!(bytes.len(), 32, "{id}: not 256 bits");
        for (index, one) in ones.iter_mut().enumerate() {
            *one += u32::from((bytes[index / 8] >> (index % 8)) & 1);
        }
        assert!(seen.insert(id), "an id came out twice");
    }
    // Each bit is a fair coin: 500 ± 16 (one standard deviation); 6 deviations is never reached
    // by a working generator, and always by a stuck or biased bit.
    for (index, one) in ones.iter().enumerate() {
        assert!(
            (400..=600).contains(one),
            "bit {index} set in {one} of {N} ids"
        );
    }
}

/// "Session ID Content (or Value)": the id is meaningless. It carries nothing of the session's
/// data, and keeping the data while cycling the id gives an unrelated id.
pub(crate) async fn session_id_content_is_meaningless<A: App>() {
    let client = browser::<A>(&layer(MemoryStore::new())).await;
    let secret = "alice.example.com";
    let id = token(&client.post(&format!("/cart/{secret}")).await);
    let bytes = base64url_decode(&id).expect("base64url");
    assert!(!id.contains("alice"));
    assert!(!bytes.windows(5).any(|w| w == b"alice"));
    let cycled = token(&client.post("/login").await);
    assert_ne!(cycled, id);
    let shared_prefix = id
        .bytes()
        .zip(cycled.bytes())
        .take_while(|(a, b)| a == b)
        .count();
    assert!(
        shared_prefix < 8,
        "{id} and {cycled} share {shared_prefix} characters"
    );
    assert_eq!(
        client.get("/cart").await.text(),
        format!("items={secret} coupon=- visits=1")
    );
}

// ---- session management implementation -----------------------------------------------------

/// "Used vs. Accepted Session ID Exchange Mechanisms": the id is accepted only where the layer
/// is configured to look (the cookie, or the configured header), never from the URL, another
/// header, or a cookie of another name or case.
pub(crate) async fn accepted_exchange_mechanism_only<A: App>() {
    let layer = layer(MemoryStore::new());
    let client = browser::<A>(&layer).await;
    let id = token(&client.post("/cart/apple").await);
    assert_ne!(client.get("/cart").await.text(), NO_CART);

    let elsewhere = browser::<A>(&layer).await;
    let query = format!("/cart?session={id}");
    let cases: [(&str, Vec<(HeaderName, String)>); 5] = [
        (&query, vec![]),
        (
            "/cart",
            vec![(HeaderName::from_static("x-session-id"), id.clone())],
        ),
        ("/cart", vec![(header::AUTHORIZATION, id.clone())]),
        ("/cart", vec![(header::COOKIE, format!("Session={id}"))]),
        ("/cart", vec![(header::COOKIE, format!("session_={id}"))]),
    ];
    for (path, headers) in &cases {
        let headers: Vec<(HeaderName, &str)> = headers
            .iter()
            .map(|(name, value)| (name.clone(), value.as_str()))
            .collect();
        let response = get_with_headers(&elsewhere, path, &headers).await;
        assert_eq!(response.text(), NO_CART, "accepted from {path} {headers:?}");
    }

    // The header transport, in turn, ignores the cookie.
    let name = HeaderName::from_static("x-session-id");
    let api_layer = layer.clone().header(name.clone());
    let api = browser::<A>(&api_layer).await.id_header(name.clone());
    let created = api.post("/cart/a").await;
    let api_id = created
        .header("x-session-id")
        .expect("id in the header")
        .to_owned();
    assert_ne!(api.get("/cart").await.text(), NO_CART);
    let cookie = format!("session={api_id}");
    let stranger = browser::<A>(&api_layer).await;
    let response = get_with_headers(&stranger, "/cart", &[(header::COOKIE, cookie.as_str())]).await;
    assert_eq!(response.text(), NO_CART);
}

/// "Transport Layer Security": the cookie is `Secure` unless turned off on purpose, and a
/// configuration that browsers would send over plain HTTP with cross-site requests
/// (`SameSite=None` without `Secure`), or a `__Host-` cookie without `Secure`, is refused when
/// the layer is built.
pub(crate) async fn transport_layer_security<A: App>() {
    let layer = layer(MemoryStore::new());
    let set_cookie = new_session_set_cookie(&browser::<A>(&layer).await, &layer).await;
    assert!(has_attribute(&set_cookie, "Secure"));
    for insecure in [
        CookieConfig::new().same_site(SameSite::None).secure(false),
        CookieConfig::new().host_prefix().secure(false),
    ] {
        let built = catch_unwind(AssertUnwindSafe(|| {
            SessionLayer::new(MemoryStore::new()).cookie(insecure.clone())
        }));
        assert!(built.is_err(), "{insecure:?} was accepted");
    }
}

// ---- cookies ---------------------------------------------------------------------------------

/// "Secure Attribute": on by default, on every cookie the layer sets, the removal included.
pub(crate) async fn cookie_secure_attribute<A: App>() {
    let layer = layer(MemoryStore::new());
    let client = browser::<A>(&layer).await;
    let created = the_set_cookie(&client.post("/cart/apple").await);
    let cycled = the_set_cookie(&client.post("/login").await);
    let removal = the_set_cookie(&client.post("/logout").await);
    for set_cookie in [created, cycled, removal] {
        assert!(has_attribute(&set_cookie, "Secure"), "{set_cookie}");
    }
}

/// "HttpOnly Attribute": on by default, so page scripts (and an XSS) cannot read the id.
pub(crate) async fn cookie_httponly_attribute<A: App>() {
    let layer = layer(MemoryStore::new());
    let set_cookie = new_session_set_cookie(&browser::<A>(&layer).await, &layer).await;
    assert!(has_attribute(&set_cookie, "HttpOnly"), "{set_cookie}");
    let sealing = cookie_store_layer();
    let sealed = new_session_set_cookie(&browser::<A>(&sealing).await, &sealing).await;
    assert!(has_attribute(&sealed, "HttpOnly"), "{sealed}");
}

/// "SameSite Attribute": `Lax` by default (no cross-site POST carries the session), `Strict`
/// as an option.
pub(crate) async fn cookie_samesite_attribute<A: App>() {
    let layer = layer(MemoryStore::new());
    let set_cookie = new_session_set_cookie(&browser::<A>(&layer).await, &layer).await;
    assert_eq!(
        attribute_value(&set_cookie, "SameSite"),
        Some("Lax"),
        "{set_cookie}"
    );
    let strict = layer_with_cookie(CookieConfig::new().same_site(SameSite::Strict));
    let set_cookie = new_session_set_cookie(&browser::<A>(&strict).await, &strict).await;
    assert_eq!(
        attribute_value(&set_cookie, "SameSite"),
        Some("Strict"),
        "{set_cookie}"
    );
}

/// "Domain and Path Attributes": no `Domain` by default (this host only, no subdomain),
/// `Path=/`; the `__Host-` option locks both; the removal carries the same `Path` and `Domain`
/// so the browser really drops the cookie.
pub(crate) async fn cookie_domain_and_path_attributes<A: App>() {
    let plain = layer(MemoryStore::new());
    let set_cookie = new_session_set_cookie(&browser::<A>(&plain).await, &plain).await;
    assert!(!has_attribute(&set_cookie, "Domain"), "{set_cookie}");
    assert_eq!(
        attribute_value(&set_cookie, "Path"),
        Some("/"),
        "{set_cookie}"
    );

    let host = layer_with_cookie(CookieConfig::new().host_prefix());
    let set_cookie = new_session_set_cookie(&browser::<A>(&host).await, &host).await;
    assert!(set_cookie.starts_with("__Host-session="), "{set_cookie}");
    assert!(!has_attribute(&set_cookie, "Domain"), "{set_cookie}");
    assert_eq!(
        attribute_value(&set_cookie, "Path"),
        Some("/"),
        "{set_cookie}"
    );
    assert!(has_attribute(&set_cookie, "Secure"), "{set_cookie}");

    let scoped = layer_with_cookie(CookieConfig::new().domain("example.com").path("/shop"));
    let client = browser::<A>(&scoped).await;
    let set_cookie = new_session_set_cookie(&client, &scoped).await;
    let id = cookie_value(&set_cookie).to_owned();
    assert_eq!(attribute_value(&set_cookie, "Domain"), Some("example.com"));
    assert_eq!(attribute_value(&set_cookie, "Path"), Some("/shop"));
    // The browser sends a `Path=/shop` cookie to `/shop…` only: the logout carries it by hand.
    let cookie = format!("session={id}");
    let request = Request::post("/logout")
        .header(header::COOKIE, cookie)
        .body(Bytes::new())
        .expect("a valid request");
    let removal = the_set_cookie(&client.send(request).await);
    assert_eq!(
        attribute_value(&removal, "Domain"),
        Some("example.com"),
        "{removal}"
    );
    assert_eq!(
        attribute_value(&removal, "Path"),
        Some("/shop"),
        "{removal}"
    );
    assert_eq!(max_age(&removal), Some(0), "{removal}");
}

/// "Expire and Max-Age Attributes": a persistent cookie lives exactly as long as the
/// server-side session (idle time, capped by the absolute limit); the browser-session option
/// sends neither `Max-Age` nor `Expires`; the removal is `Max-Age=0`.
pub(crate) async fn cookie_expire_and_max_age_attributes<A: App>() {
    let clock = ManualClock::new();
    let clocked = |expiry: Expiry| {
        layer(RecordingStore::new(MemoryStore::with_clock(clock.clone())))
            .clock(clock.clone())
            .expiry(expiry)
    };
    let idle = clocked(Expiry::idle(Duration::from_secs(1800)));
    let set_cookie = new_session_set_cookie(&browser::<A>(&idle).await, &idle).await;
    assert_eq!(max_age(&set_cookie), Some(1800), "{set_cookie}");

    let capped = clocked(Expiry::idle_and_absolute(
        Duration::from_secs(1800),
        Duration::from_secs(3600),
    ));
    let client = browser::<A>(&capped).await;
    assert_eq!(client.post("/cart/a").await.status(), 200);
    clock.advance(Duration::from_secs(1500));
    client.post("/cart/b").await;
    clock.advance(Duration::from_secs(1500));
    // 3000 s in: a refresh is due, and the absolute limit caps it.
    let later = the_set_cookie(&client.post("/cart/c").await);
    assert_eq!(
        max_age(&later),
        Some(600),
        "not capped by the absolute limit: {later}"
    );

    let session_only = clocked(Expiry::browser_session(Duration::from_secs(1800)));
    let client = browser::<A>(&session_only).await;
    let set_cookie = new_session_set_cookie(&client, &session_only).await;
    assert!(!has_attribute(&set_cookie, "Max-Age"), "{set_cookie}");
    assert!(!has_attribute(&set_cookie, "Expires"), "{set_cookie}");
    let removal = the_set_cookie(&client.post("/logout").await);
    assert_eq!(max_age(&removal), Some(0), "{removal}");
}

/// "Considerations When Using Multiple Cookies" (cookie tossing): with the `__Host-` prefix, a
/// plain `session` cookie planted by a subdomain or a plain-HTTP page is never read.
pub(crate) async fn multiple_cookies_host_prefix_resists_cookie_tossing<A: App>() {
    let host = layer_with_cookie(CookieConfig::new().host_prefix());
    let id =
        cookie_value(&new_session_set_cookie(&browser::<A>(&host).await, &host).await).to_owned();
    let other = layer(MemoryStore::new());
    let tossed = token(&browser::<A>(&other).await.post("/cart/planted").await);
    let client = browser::<A>(&host).await;
    let both = format!("session={tossed}; __Host-session={id}");
    let response = get_with_headers(&client, "/cart", &[(header::COOKIE, both.as_str())]).await;
    assert_eq!(response.text(), "items=apple coupon=- visits=0");
    let planted_only = format!("session={id}");
    let response =
        get_with_headers(&client, "/cart", &[(header::COOKIE, planted_only.as_str())]).await;
    assert_eq!(
        response.text(),
        NO_CART,
        "a cookie without the prefix was read"
    );
}
