//! The OWASP Session Management Cheat Sheet, point by point, through a real axum `Router`
//! (`tower::ServiceExt::oneshot`, no network). Each test is named after the point it proves;
//! `SECURITY.md` at the root of the repository maps every point to its test, or says why the
//! point does not apply.

mod http_common;

use std::collections::HashSet;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::time::Duration;

use axum::Router;
use axum::routing::get;
use http::{HeaderName, HeaderValue, Method, StatusCode, header};
use sessions::prelude::*;
use sessions::{CookieConfig, Expiry, Key, ManualClock, SameSite, SessionId};

use http_common::{
    Browser, CountingStore, NO_CART, app, attributes, capture_logs, cookie_value, get_with, key_of,
    max_age, post_with, request, request_with_header, routes, send,
};

fn memory_app() -> (CountingStore, Router) {
    let store = CountingStore::new(MemoryStore::new());
    let app = app(SessionLayer::new(store.clone()));
    (store, app)
}

fn cookie_store_app() -> Router {
    let key = Key::from_bytes(1, [0x5A; 32]);
    app(SessionLayer::new(CookieStore::new([key]).expect("one key")))
}

/// The app on a `ManualClock` shared by the layer and the store.
fn clocked_app(clock: &ManualClock, expiry: Expiry) -> (CountingStore, Router) {
    let store = CountingStore::new(MemoryStore::with_clock(clock.clone()));
    let layer = SessionLayer::new(store.clone())
        .clock(clock.clone())
        .expiry(expiry);
    (store, app(layer))
}

/// The one `Set-Cookie` of a write that creates a session.
async fn new_session_set_cookie(app: &Router) -> String {
    let reply = post_with(app, "/cart/apple", None).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    reply.the_set_cookie()
}

fn has_attribute(set_cookie: &str, name: &str) -> bool {
    attributes(set_cookie).iter().any(|attribute| {
        attribute
            .split('=')
            .next()
            .unwrap_or("")
            .eq_ignore_ascii_case(name)
    })
}

fn attribute_value<'a>(set_cookie: &'a str, name: &str) -> Option<&'a str> {
    attributes(set_cookie).into_iter().find_map(|attribute| {
        let (key, value) = attribute.split_once('=')?;
        key.eq_ignore_ascii_case(name).then_some(value)
    })
}

/// base64url without padding, decoded (the tests package has no base64 dependency).
fn base64url_decode(text: &str) -> Option<Vec<u8>> {
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

// ---- session ID properties -----------------------------------------------------------------

/// "Session ID Name Fingerprinting": the default name is generic, says nothing about the
/// technology behind it, and can be changed; the layer adds no header that names it either.
#[tokio::test]
async fn session_id_name_fingerprinting() {
    let (_store, app) = memory_app();
    let reply = post_with(&app, "/cart/apple", None).await;
    let set_cookie = reply.the_set_cookie();
    let name = set_cookie.split('=').next().unwrap_or_default();
    assert_eq!(name, "session");
    for telltale in ["rust", "axum", "tower", "sessions-rs", "sid_rs", "tsid"] {
        assert!(!name.to_ascii_lowercase().contains(telltale), "{name}");
    }
    for header in ["server", "x-powered-by"] {
        assert!(reply.header(header).is_none(), "the layer added {header}");
    }

    let renamed = app_with_cookie(CookieConfig::new().name("id"));
    let set_cookie = new_session_set_cookie(&renamed).await;
    assert!(set_cookie.starts_with("id="), "{set_cookie}");
}

fn app_with_cookie(config: CookieConfig) -> Router {
    app(SessionLayer::new(MemoryStore::new()).cookie(config))
}

/// "Session ID Length" and "Session ID Entropy": 256 bits from the OS CSPRNG, 43 base64url
/// characters. 1,000 ids are distinct and every one of the 256 bits is set in about half.
#[tokio::test]
async fn session_id_length_and_entropy() {
    let (_store, app) = memory_app();
    let mut seen = HashSet::new();
    let mut ones = [0u32; 256];
    const N: u32 = 1000;
    for _ in 0..N {
        let id = cookie_value(&new_session_set_cookie(&app).await).to_owned();
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
#[tokio::test]
async fn session_id_content_is_meaningless() {
    let (_store, app) = memory_app();
    let secret = "alice.example.com";
    let reply = post_with(&app, &format!("/cart/{secret}"), None).await;
    let id = reply.cookie();
    let bytes = base64url_decode(&id).expect("base64url");
    assert!(!id.contains("alice"));
    assert!(!bytes.windows(5).any(|w| w == b"alice"));
    let cycled = post_with(&app, "/login", Some(&id)).await.cookie();
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
        get_with(&app, "/cart", Some(&cycled)).await.body,
        format!("items={secret} coupon=- visits=1")
    );
}

// ---- session management implementation -----------------------------------------------------

/// "Used vs. Accepted Session ID Exchange Mechanisms": the id is accepted only where the layer
/// is configured to look (the cookie, or the configured header), never from the URL, another
/// header, or a cookie of another name or case.
#[tokio::test]
async fn accepted_exchange_mechanism_only() {
    let (_store, app) = memory_app();
    let id = post_with(&app, "/cart/apple", None).await.cookie();
    assert_ne!(get_with(&app, "/cart", Some(&id)).await.body, NO_CART);

    let elsewhere = [
        request(Method::GET, &format!("/cart?session={id}"), None),
        request_with_header(
            Method::GET,
            "/cart",
            &HeaderName::from_static("x-session-id"),
            Some(&id),
        ),
        request_with_header(Method::GET, "/cart", &header::AUTHORIZATION, Some(&id)),
        request_with_header(
            Method::GET,
            "/cart",
            &header::COOKIE,
            Some(&format!("Session={id}")),
        ),
        request_with_header(
            Method::GET,
            "/cart",
            &header::COOKIE,
            Some(&format!("session_={id}")),
        ),
    ];
    for request in elsewhere {
        let what = format!("{:?} {:?}", request.uri(), request.headers());
        assert_eq!(
            send(&app, request).await.body,
            NO_CART,
            "accepted from {what}"
        );
    }

    // The header transport, in turn, ignores the cookie.
    let name = HeaderName::from_static("x-session-id");
    let api = app_layer_header(name.clone());
    let created = send(
        &api,
        request_with_header(Method::POST, "/cart/a", &name, None),
    )
    .await;
    let api_id = created
        .header("x-session-id")
        .expect("id in the header")
        .to_owned();
    assert_ne!(
        send(
            &api,
            request_with_header(Method::GET, "/cart", &name, Some(&api_id))
        )
        .await
        .body,
        NO_CART
    );
    assert_eq!(get_with(&api, "/cart", Some(&api_id)).await.body, NO_CART);
}

fn app_layer_header(name: HeaderName) -> Router {
    app(SessionLayer::new(MemoryStore::new()).header(name))
}

/// "Transport Layer Security": the cookie is `Secure` unless turned off on purpose, and a
/// configuration that browsers would send over plain HTTP with cross-site requests
/// (`SameSite=None` without `Secure`), or a `__Host-` cookie without `Secure`, is refused when
/// the layer is built.
#[tokio::test]
async fn transport_layer_security() {
    let (_store, app) = memory_app();
    assert!(has_attribute(&new_session_set_cookie(&app).await, "Secure"));
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
#[tokio::test]
async fn cookie_secure_attribute() {
    let (_store, app) = memory_app();
    let id = post_with(&app, "/cart/apple", None).await.cookie();
    let cycled = post_with(&app, "/login", Some(&id)).await;
    let removal = post_with(&app, "/logout", Some(&cycled.cookie())).await;
    for set_cookie in [
        new_session_set_cookie(&app).await,
        cycled.the_set_cookie(),
        removal.the_set_cookie(),
    ] {
        assert!(has_attribute(&set_cookie, "Secure"), "{set_cookie}");
    }
}

/// "HttpOnly Attribute": on by default, so page scripts (and an XSS) cannot read the id.
#[tokio::test]
async fn cookie_httponly_attribute() {
    let (_store, app) = memory_app();
    let set_cookie = new_session_set_cookie(&app).await;
    assert!(has_attribute(&set_cookie, "HttpOnly"), "{set_cookie}");
    let cookie_app = cookie_store_app();
    let sealed = new_session_set_cookie(&cookie_app).await;
    assert!(has_attribute(&sealed, "HttpOnly"), "{sealed}");
}

/// "SameSite Attribute": `Lax` by default (no cross-site POST carries the session), `Strict`
/// as an option.
#[tokio::test]
async fn cookie_samesite_attribute() {
    let (_store, app) = memory_app();
    let set_cookie = new_session_set_cookie(&app).await;
    assert_eq!(
        attribute_value(&set_cookie, "SameSite"),
        Some("Lax"),
        "{set_cookie}"
    );
    let strict = app_with_cookie(CookieConfig::new().same_site(SameSite::Strict));
    let set_cookie = new_session_set_cookie(&strict).await;
    assert_eq!(
        attribute_value(&set_cookie, "SameSite"),
        Some("Strict"),
        "{set_cookie}"
    );
}

/// "Domain and Path Attributes": no `Domain` by default (this host only, no subdomain),
/// `Path=/`; the `__Host-` option locks both; the removal carries the same `Path` and `Domain`
/// so the browser really drops the cookie.
#[tokio::test]
async fn cookie_domain_and_path_attributes() {
    let (_store, app) = memory_app();
    let set_cookie = new_session_set_cookie(&app).await;
    assert!(!has_attribute(&set_cookie, "Domain"), "{set_cookie}");
    assert_eq!(
        attribute_value(&set_cookie, "Path"),
        Some("/"),
        "{set_cookie}"
    );

    let host = app_with_cookie(CookieConfig::new().host_prefix());
    let set_cookie = new_session_set_cookie(&host).await;
    assert!(set_cookie.starts_with("__Host-session="), "{set_cookie}");
    assert!(!has_attribute(&set_cookie, "Domain"), "{set_cookie}");
    assert_eq!(
        attribute_value(&set_cookie, "Path"),
        Some("/"),
        "{set_cookie}"
    );
    assert!(has_attribute(&set_cookie, "Secure"), "{set_cookie}");

    let scoped = app_with_cookie(CookieConfig::new().domain("example.com").path("/shop"));
    let set_cookie = new_session_set_cookie(&scoped).await;
    let id = cookie_value(&set_cookie).to_owned();
    assert_eq!(attribute_value(&set_cookie, "Domain"), Some("example.com"));
    assert_eq!(attribute_value(&set_cookie, "Path"), Some("/shop"));
    let removal = post_with(&scoped, "/logout", Some(&id))
        .await
        .the_set_cookie();
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
#[tokio::test]
async fn cookie_expire_and_max_age_attributes() {
    let clock = ManualClock::new();
    let (_store, app) = clocked_app(&clock, Expiry::idle(Duration::from_secs(1800)));
    let set_cookie = new_session_set_cookie(&app).await;
    assert_eq!(max_age(&set_cookie), Some(1800), "{set_cookie}");

    let (_store, capped) = clocked_app(
        &clock,
        Expiry::idle_and_absolute(Duration::from_secs(1800), Duration::from_secs(3600)),
    );
    let id = post_with(&capped, "/cart/a", None).await.cookie();
    clock.advance(Duration::from_secs(1500));
    post_with(&capped, "/cart/b", Some(&id)).await;
    clock.advance(Duration::from_secs(1500));
    let later = post_with(&capped, "/cart/c", Some(&id))
        .await
        .the_set_cookie();
    assert_eq!(
        max_age(&later),
        Some(600),
        "not capped by the absolute limit: {later}"
    );

    let (_store, browser) = clocked_app(&clock, Expiry::browser_session(Duration::from_secs(1800)));
    let set_cookie = new_session_set_cookie(&browser).await;
    assert!(!has_attribute(&set_cookie, "Max-Age"), "{set_cookie}");
    assert!(!has_attribute(&set_cookie, "Expires"), "{set_cookie}");
    let id = cookie_value(&set_cookie).to_owned();
    let removal = post_with(&browser, "/logout", Some(&id))
        .await
        .the_set_cookie();
    assert_eq!(max_age(&removal), Some(0), "{removal}");
}

/// "Considerations When Using Multiple Cookies" (cookie tossing): with the `__Host-` prefix, a
/// plain `session` cookie planted by a subdomain or a plain-HTTP page is never read.
#[tokio::test]
async fn multiple_cookies_host_prefix_resists_cookie_tossing() {
    let host = app_with_cookie(CookieConfig::new().host_prefix());
    let id = cookie_value(&new_session_set_cookie(&host).await).to_owned();
    let tossed = {
        let (_store, other) = memory_app();
        post_with(&other, "/cart/planted", None).await.cookie()
    };
    let both = format!("session={tossed}; __Host-session={id}");
    let reply = send(
        &host,
        request_with_header(Method::GET, "/cart", &header::COOKIE, Some(&both)),
    )
    .await;
    assert_eq!(reply.body, "items=apple coupon=- visits=0");
    let planted_only = format!("session={id}");
    let reply = send(
        &host,
        request_with_header(Method::GET, "/cart", &header::COOKIE, Some(&planted_only)),
    )
    .await;
    assert_eq!(reply.body, NO_CART, "a cookie without the prefix was read");
}

// ---- session ID life cycle -------------------------------------------------------------------

/// "Session ID Generation and Verification: Permissive and Strict Session Management": the
/// layer is strict. A well-formed id the server never issued is not adopted: the client gets a
/// new id of the server's, and nothing is ever filed under the id it sent.
#[tokio::test]
async fn strict_session_management_no_client_ids() {
    let (store, app) = memory_app();
    let chosen = "AttackerChosenIdAttackerChosenIdAttackerCho";
    assert!(
        SessionId::parse(chosen).is_some(),
        "the test needs a well-formed id"
    );
    let read = get_with(&app, "/cart", Some(chosen)).await;
    assert_eq!(read.body, NO_CART);
    assert!(read.set_cookies().is_empty());
    let write = post_with(&app, "/cart/apple", Some(chosen)).await;
    let issued = write.cookie();
    assert_ne!(issued, chosen);
    assert!(store.stored(chosen).await.is_none());
    assert!(store.stored(&issued).await.is_some());
    // The cycle after login never hands the chosen id back either.
    let login = post_with(&app, "/login", Some(chosen)).await;
    for set_cookie in login.set_cookies() {
        assert_ne!(cookie_value(&set_cookie), chosen);
    }
    assert!(store.stored(chosen).await.is_none());
}

/// "Manage Session ID as Any Other User Input": a malformed id (wrong length, alphabet, padding,
/// huge) is refused before any store call, starts a fresh session, and is not echoed.
#[tokio::test]
async fn session_id_validated_as_user_input() {
    let (store, app) = memory_app();
    let huge = "A".repeat(8000);
    let malformed = [
        "short",
        "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
        "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA+",
        "' OR 1=1 --",
        "../../../../etc/passwd",
        "%00%00%00",
        huge.as_str(),
    ];
    for raw in malformed {
        let reply = post_with(&app, "/cart/apple", Some(raw)).await;
        assert_eq!(reply.status, StatusCode::OK);
        let issued = reply.cookie();
        assert_ne!(issued, raw);
        assert!(SessionId::parse(&issued).is_some());
    }
    assert_eq!(store.counts().load, 0, "a malformed id reached the store");
}

/// "Renew the Session ID After Any Privilege Level Change": `cycle_id()` (called by the login
/// handler) issues a new id, keeps the data, and kills the old id at once.
#[tokio::test]
async fn renew_session_id_after_privilege_change() {
    let (store, app) = memory_app();
    let before = post_with(&app, "/cart/apple", None).await.cookie();
    let login = post_with(&app, "/login", Some(&before)).await;
    assert_eq!(login.status, StatusCode::OK);
    let after = login.cookie();
    assert_ne!(after, before);
    assert!(
        store.stored(&before).await.is_none(),
        "the old id still works"
    );
    assert_eq!(
        get_with(&app, "/cart", Some(&after)).await.body,
        "items=apple coupon=- visits=1"
    );
    assert_eq!(get_with(&app, "/cart", Some(&before)).await.body, NO_CART);
}

/// "Session Fixation": an attacker who plants an id of theirs in the victim's browser (a real,
/// live id they obtained) does not share the victim's session after the victim logs in.
#[tokio::test]
async fn session_fixation() {
    let (_store, app) = memory_app();
    let planted = post_with(&app, "/cart/bait", None).await.cookie();
    // The victim browses with the planted id, then logs in.
    let victim = post_with(&app, "/login", Some(&planted)).await.cookie();
    assert_ne!(victim, planted);
    post_with(&app, "/coupon/VICTIM-ONLY", Some(&victim)).await;
    // The attacker's copy of the id sees nothing of the logged-in session.
    let attacker = get_with(&app, "/cart", Some(&planted)).await;
    assert_eq!(attacker.body, NO_CART);
    assert!(!attacker.body.contains("VICTIM-ONLY"));
}

// ---- session expiration ----------------------------------------------------------------------

/// "Automatic Session Expiration: Idle Timeout", enforced server-side: a replayed cookie after
/// the idle time finds nothing, whatever the browser kept.
#[tokio::test]
async fn idle_timeout() {
    let clock = ManualClock::new();
    let (store, app) = clocked_app(&clock, Expiry::idle(Duration::from_secs(1800)));
    let id = post_with(&app, "/cart/apple", None).await.cookie();
    clock.advance(Duration::from_secs(1799));
    assert_ne!(get_with(&app, "/cart", Some(&id)).await.body, NO_CART);
    clock.advance(Duration::from_secs(1800));
    assert_eq!(get_with(&app, "/cart", Some(&id)).await.body, NO_CART);
    assert!(store.stored(&id).await.is_none());
}

/// "Automatic Session Expiration: Absolute Timeout": activity does not keep a session past its
/// absolute limit.
#[tokio::test]
async fn absolute_timeout() {
    let clock = ManualClock::new();
    let expiry = Expiry::idle_and_absolute(Duration::from_secs(600), Duration::from_secs(3600));
    let (_store, app) = clocked_app(&clock, expiry);
    let mut browser = Browser::new(clock.clone());
    browser.post(&app, "/cart/apple").await;
    let id = browser.cookie().expect("a cookie").to_owned();
    for _ in 0..5 {
        clock.advance(Duration::from_secs(500));
        assert_ne!(browser.post(&app, "/coupon/C").await.body, NO_CART);
    }
    clock.advance(Duration::from_secs(1100));
    // Past the absolute hour: even the id replayed by hand finds nothing.
    assert_eq!(get_with(&app, "/cart", Some(&id)).await.body, NO_CART);
}

/// "Manual Session Expiration" (logout): `destroy()` deletes the server-side record and clears
/// the cookie; the old id replayed afterwards finds nothing and a write gets a new id.
#[tokio::test]
async fn manual_session_expiration_logout() {
    let (store, app) = memory_app();
    let id = post_with(&app, "/cart/apple", None).await.cookie();
    let logout = post_with(&app, "/logout", Some(&id)).await;
    let removal = logout.the_set_cookie();
    assert_eq!(cookie_value(&removal), "");
    assert_eq!(max_age(&removal), Some(0));
    assert!(store.stored(&id).await.is_none());
    assert_eq!(get_with(&app, "/cart", Some(&id)).await.body, NO_CART);
    let again = post_with(&app, "/cart/pear", Some(&id)).await.cookie();
    assert_ne!(again, id);
    assert!(
        store.stored(&id).await.is_none(),
        "the logged-out id came back"
    );
}

/// "Web Content Caching": every response that sets or clears the session cookie says
/// `Cache-Control: no-store`, so no shared cache keeps a response that hands out a session.
#[tokio::test]
async fn web_content_caching_no_store() {
    let (_store, app) = memory_app();
    let created = post_with(&app, "/cart/apple", None).await;
    let id = created.cookie();
    let cycled = post_with(&app, "/login", Some(&id)).await;
    let removed = post_with(&app, "/logout", Some(&cycled.cookie())).await;
    let sealed = post_with(&cookie_store_app(), "/cart/apple", None).await;
    for reply in [&created, &cycled, &removed, &sealed] {
        assert!(!reply.set_cookies().is_empty());
        assert_eq!(
            reply.header("cache-control"),
            Some("no-store"),
            "{:?}",
            reply.headers
        );
    }
}

// ---- session data ----------------------------------------------------------------------------

/// Server-side stores file a session under the SHA-256 of its id, never the id: a dump of the
/// store hands out no live session token.
#[tokio::test]
async fn server_side_store_keyed_by_id_hash() {
    let (store, app) = memory_app();
    let id = post_with(&app, "/cart/apple", None).await.cookie();
    post_with(&app, "/coupon/C", Some(&id)).await;
    let saves = store.saves();
    let (key, _, _) = saves.first().expect("one save");
    assert_eq!(key, &key_of(&id));
    let key = key.as_str();
    assert_eq!(key.len(), 64);
    assert!(key.bytes().all(|b| b.is_ascii_hexdigit()));
    assert!(!key.contains(&id) && !id.contains(key));
}

/// Client-side sessions (`CookieStore`) are encrypted and authenticated: the data is not
/// readable in the cookie, a changed byte or the cookie under another name is refused, and the
/// expiry sealed inside is enforced.
#[tokio::test]
async fn client_side_session_encrypted_and_authenticated() {
    let clock = ManualClock::new();
    let key = Key::from_bytes(1, [0x5A; 32]);
    let app = app(
        SessionLayer::new(CookieStore::new([key.clone()]).expect("key"))
            .clock(clock.clone())
            .expiry(Expiry::idle(Duration::from_secs(600))),
    );
    let token = post_with(&app, "/cart/alice.example.com", None)
        .await
        .cookie();
    assert!(!token.contains("alice"));
    let raw = base64url_decode(&token).expect("base64url");
    assert!(!raw.windows(5).any(|w| w == b"alice"));
    assert_ne!(get_with(&app, "/cart", Some(&token)).await.body, NO_CART);

    let mut flipped = token.clone().into_bytes();
    let middle = flipped.len() / 2;
    flipped[middle] = if flipped[middle] == b'A' { b'B' } else { b'A' };
    let flipped = String::from_utf8(flipped).expect("ascii");
    assert_eq!(get_with(&app, "/cart", Some(&flipped)).await.body, NO_CART);

    let renamed = app_sealing_as("other", &key, &clock);
    let other = post_with(&renamed, "/cart/x", None).await.cookie();
    assert_eq!(get_with(&app, "/cart", Some(&other)).await.body, NO_CART);

    clock.advance(Duration::from_secs(600));
    assert_eq!(get_with(&app, "/cart", Some(&token)).await.body, NO_CART);
}

fn app_sealing_as(name: &str, key: &Key, clock: &ManualClock) -> Router {
    app(
        SessionLayer::new(CookieStore::new([key.clone()]).expect("key"))
            .cookie(CookieConfig::new().name(name))
            .clock(clock.clone()),
    )
}

// ---- attack detection and availability -------------------------------------------------------

/// "Session ID Guessing and Brute Force Detection" / "Logging Sessions Life Cycle": every
/// refused or unknown id leaves a `WARN` line an operator can count and alert on, and no line
/// holds the id: unknown ids are named by their hash, malformed ones by their length only.
#[tokio::test]
async fn attack_detection_logs_without_ids() {
    let (_store, app) = memory_app();
    let guesses: Vec<String> = (0..20)
        .map(|_| SessionId::generate().expect("id").expose().to_owned())
        .chain((0..5).map(|n| format!("guess-{n}")))
        .collect();
    let (logs, guard) = capture_logs();
    for guess in &guesses {
        get_with(&app, "/cart", Some(guess)).await;
    }
    drop(guard);
    let warnings = logs.lines_at("WARN");
    assert_eq!(warnings.len(), guesses.len(), "{}", logs.text());
    let text = logs.text();
    for guess in &guesses {
        assert!(
            !text.contains(guess.as_str()),
            "{guess} is in the logs:\n{text}"
        );
    }
    for guess in guesses.iter().take(20) {
        assert!(
            text.contains(key_of(guess).as_str()),
            "no hash of {guess} to correlate"
        );
    }
}

/// Fail closed: a store that cannot be reached is a 503 with a message, never a fresh session
/// handed out as if the user had none.
#[tokio::test]
async fn fail_closed_when_store_down() {
    let (store, app) = memory_app();
    let id = post_with(&app, "/cart/apple", None).await.cookie();
    store.fail_loads(true);
    for reply in [
        get_with(&app, "/cart", Some(&id)).await,
        post_with(&app, "/cart/pear", Some(&id)).await,
        post_with(&app, "/login", Some(&id)).await,
    ] {
        assert_eq!(
            reply.status,
            StatusCode::SERVICE_UNAVAILABLE,
            "{}",
            reply.body
        );
        assert!(reply.set_cookies().is_empty(), "{:?}", reply.set_cookies());
    }
    store.fail_loads(false);
    assert_eq!(
        get_with(&app, "/cart", Some(&id)).await.body,
        "items=apple coupon=- visits=0"
    );
}

/// A handler that sets its own caching policy keeps it: the layer only adds `no-store` when
/// the response has none. (`SECURITY.md` says so: a handler must not mark a response that
/// sets the session cookie as publicly cacheable.)
#[tokio::test]
async fn web_content_caching_handler_policy_is_kept() {
    let router = routes()
        .route(
            "/cached",
            get(|mut cart: Typed<http_common::Cart>| async move {
                cart.items_mut().push("x".to_owned());
                (
                    [(
                        header::CACHE_CONTROL,
                        HeaderValue::from_static("private, max-age=60"),
                    )],
                    "ok",
                )
            }),
        )
        .layer(SessionLayer::new(MemoryStore::new()).register::<http_common::Cart>());
    let reply = get_with(&router, "/cached", None).await;
    assert_eq!(reply.set_cookies().len(), 1);
    assert_eq!(reply.header("cache-control"), Some("private, max-age=60"));
}
