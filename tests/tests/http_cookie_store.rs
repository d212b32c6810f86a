//! `CookieStore` through a real `Router`: the whole session sealed in the cookie, key rotation,
//! 10,000 tampered / truncated / garbage cookies refused without a panic, and a session too
//! large for a cookie refused loudly.

mod http_common;

use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::routing::post;
use http::{HeaderValue, Request, StatusCode, header};
use sessions::prelude::*;
use sessions::{Expiry, Key, ManualClock};

use http_common::{
    Cart, NO_CART, Prefs, app, capture_logs, cookie_value, get_with, max_age, post_with, routes,
    send,
};

fn key_a() -> Key {
    Key::from_bytes(1, [0xA1; 32])
}

fn key_b() -> Key {
    Key::from_bytes(2, [0xB2; 32])
}

fn cookie_app(keys: Vec<Key>) -> Router {
    app(SessionLayer::new(CookieStore::new(keys).expect("keys")))
}

#[tokio::test]
async fn the_whole_session_travels_in_the_cookie() {
    let app = cookie_app(vec![key_a()]);
    let created = post_with(&app, "/all", None).await;
    assert_eq!(created.status, StatusCode::OK);
    let set_cookie = created.the_set_cookie();
    for attribute in ["HttpOnly", "Secure", "SameSite=Lax", "Path=/"] {
        assert!(set_cookie.contains(attribute), "{set_cookie}");
    }
    assert_eq!(max_age(&set_cookie), Some(24 * 3600));
    let token = created.cookie();
    // Sealed: the data is not readable in the cookie.
    assert!(
        !token.contains("both") && !token.contains("cart"),
        "{token}"
    );

    let read = get_with(&app, "/all", Some(&token)).await;
    assert_eq!(
        read.body,
        "items=both coupon=- visits=0 dark=true lang=fr stored=false"
    );
    assert!(
        read.set_cookies().is_empty(),
        "a read-only request re-sealed"
    );

    // A write seals the new state; the next request sees it.
    let write = post_with(&app, "/coupon/C", Some(&token)).await;
    let token2 = write.cookie();
    assert_ne!(token2, token);
    assert_eq!(
        get_with(&app, "/cart", Some(&token2)).await.body,
        "items=both coupon=C visits=0"
    );
    assert_eq!(
        get_with(&app, "/prefs", Some(&token2)).await.body,
        "dark=true lang=fr"
    );

    // cycle_id re-seals (a new token, same data); destroy clears the cookie.
    let login = post_with(&app, "/login", Some(&token2)).await;
    let token3 = login.cookie();
    assert_ne!(token3, token2);
    assert_eq!(
        get_with(&app, "/cart", Some(&token3)).await.body,
        "items=both coupon=C visits=1"
    );
    let logout = post_with(&app, "/logout", Some(&token3)).await;
    let removal = logout.the_set_cookie();
    assert_eq!(cookie_value(&removal), "");
    assert_eq!(max_age(&removal), Some(0));
}

#[tokio::test]
async fn a_5xx_response_seals_nothing() {
    let app = cookie_app(vec![key_a()]);
    let fresh = post_with(&app, "/fail/apple", None).await;
    assert_eq!(fresh.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert!(fresh.set_cookies().is_empty(), "{:?}", fresh.set_cookies());
    let token = post_with(&app, "/cart/apple", None).await.cookie();
    let failed = post_with(&app, "/fail/pear", Some(&token)).await;
    assert_eq!(failed.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert!(
        failed.set_cookies().is_empty(),
        "{:?}",
        failed.set_cookies()
    );
}

#[tokio::test]
async fn a_cookie_sealed_with_a_rotated_key_opens_and_is_resealed() {
    let before = cookie_app(vec![key_a()]);
    let token_a = post_with(&before, "/cart/apple", None).await.cookie();

    // The app now seals with B and still opens A's cookies.
    let rotated = cookie_app(vec![key_b(), key_a()]);
    let read = get_with(&rotated, "/cart", Some(&token_a)).await;
    assert_eq!(read.status, StatusCode::OK);
    assert_eq!(read.body, "items=apple coupon=- visits=0");
    let resealed = read.cookie(); // exactly one Set-Cookie, though nothing changed
    assert_ne!(resealed, token_a);
    // The resealed cookie is B's: it opens once A is retired; A's own token does not.
    let only_b = cookie_app(vec![key_b()]);
    assert_eq!(
        get_with(&only_b, "/cart", Some(&resealed)).await.body,
        "items=apple coupon=- visits=0"
    );
    assert_eq!(
        get_with(&only_b, "/cart", Some(&token_a)).await.body,
        NO_CART
    );
    // And B's token, read again by the rotated app, is not resealed.
    assert!(
        get_with(&rotated, "/cart", Some(&resealed))
            .await
            .set_cookies()
            .is_empty()
    );
}

#[tokio::test]
async fn a_cookie_sealed_with_a_retired_key_gets_a_fresh_session() {
    let token_a = post_with(&cookie_app(vec![key_a()]), "/cart/apple", None)
        .await
        .cookie();
    let only_b = cookie_app(vec![key_b()]);
    let read = get_with(&only_b, "/cart", Some(&token_a)).await;
    assert_eq!(read.status, StatusCode::OK);
    assert_eq!(read.body, NO_CART);
    assert!(read.set_cookies().is_empty());
    let write = post_with(&only_b, "/cart/pear", Some(&token_a)).await;
    assert_eq!(write.body, "items=pear coupon=- visits=0");
}

#[tokio::test]
async fn the_expiry_sealed_in_the_cookie_is_enforced() {
    let clock = ManualClock::new();
    let app = app(
        SessionLayer::new(CookieStore::new([key_a()]).expect("keys"))
            .clock(clock.clone())
            .expiry(Expiry::idle(Duration::from_secs(100))),
    );
    let token = post_with(&app, "/cart/apple", None).await.cookie();
    clock.advance(Duration::from_secs(99));
    assert_ne!(get_with(&app, "/cart", Some(&token)).await.body, NO_CART);
    // A replay of the same cookie after its expiry does not come back to life.
    clock.advance(Duration::from_secs(1));
    assert_eq!(get_with(&app, "/cart", Some(&token)).await.body, NO_CART);
}

// ---- tampering -----------------------------------------------------------------------------

const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/// base64url without padding, as the cookie store writes it.
fn b64_encode(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, b)| n | u32::from(*b) << (16 - 8 * i));
        for i in 0..=chunk.len() {
            out.push(char::from(B64[(n >> (18 - 6 * i)) as usize & 63]));
        }
    }
    out
}

fn b64_decode(text: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(text.len() * 3 / 4);
    let (mut acc, mut bits) = (0u32, 0);
    for c in text.bytes() {
        let value = B64.iter().position(|b| *b == c).expect("base64url text") as u32;
        acc = acc << 6 | value;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    out
}

/// SplitMix64: deterministic, so a failure reproduces.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn bytes(&mut self, len: usize) -> Vec<u8> {
        (0..len).map(|_| self.next() as u8).collect()
    }
}

/// Cookie values derived from a real token: every bit of the sealed bytes flipped, characters
/// replaced, truncations, extensions, splices of two tokens, and random garbage (some of it not
/// UTF-8, some of it behind a valid header so it reaches the decryption).
fn hostile_values(token: &str, other: &str) -> Vec<Vec<u8>> {
    let raw = b64_decode(token);
    assert_eq!(
        b64_encode(&raw),
        token,
        "the test's base64 matches the store's"
    );
    let mut values: Vec<Vec<u8>> = Vec::new();
    for index in 0..raw.len() {
        for bit in 0..8 {
            let mut flipped = raw.clone();
            flipped[index] ^= 1 << bit;
            values.push(b64_encode(&flipped).into_bytes());
        }
    }
    for index in 0..token.len() {
        for replacement in [b'A', b'z', b'-', b'_', b'0', b'+', b'/', b'=', b'!', 0xC3] {
            if token.as_bytes()[index] != replacement {
                let mut changed = token.as_bytes().to_vec();
                changed[index] = replacement;
                values.push(changed);
            }
        }
    }
    for len in 0..token.len() {
        values.push(token.as_bytes()[..len].to_vec());
    }
    for len in 0..raw.len() {
        values.push(b64_encode(&raw[..len]).into_bytes());
    }
    for suffix in ["A", "AA", "AAA", "AAAA", "=", "==", "\"", "%3D"] {
        values.push(format!("{token}{suffix}").into_bytes());
    }
    values.push(format!("\"{token}\"x").into_bytes());
    let other = b64_decode(other);
    for cut in 1..raw.len().min(other.len()) {
        let mut spliced = raw[..cut].to_vec();
        spliced.extend_from_slice(&other[cut..]);
        // Both tokens share their header: a cut inside it gives back `other` itself.
        if spliced != raw && spliced != other {
            values.push(b64_encode(&spliced).into_bytes());
        }
    }
    let mut rng = Rng(0x5E55_1015);
    while values.len() < 10_000 {
        match rng.below(3) {
            // Random header bytes (tab, visible ASCII and obs-text: what a header may hold).
            0 => {
                let len = rng.below(600);
                let garbage = rng
                    .bytes(len)
                    .into_iter()
                    .filter(|b| *b == b'\t' || (0x20..0x7f).contains(b) || *b >= 0x80)
                    .collect();
                values.push(garbage);
            }
            // Random base64url of random bytes.
            1 => {
                let len = rng.below(400);
                values.push(b64_encode(&rng.bytes(len)).into_bytes());
            }
            // A valid version and key id, then random bytes: reaches the AEAD.
            _ => {
                let len = rng.below(300);
                let mut bytes = raw[..5].to_vec();
                bytes.extend(rng.bytes(len));
                values.push(b64_encode(&bytes).into_bytes());
            }
        }
    }
    values
}

fn cookie_request(path: &str, value: &[u8]) -> Request<Body> {
    let mut header = b"session=".to_vec();
    header.extend_from_slice(value);
    Request::builder()
        .uri(path)
        .header(
            header::COOKIE,
            HeaderValue::from_bytes(&header).expect("a valid header value"),
        )
        .body(Body::empty())
        .expect("a valid request")
}

#[tokio::test]
async fn ten_thousand_hostile_cookies_are_refused_without_a_panic() {
    // The key that sealed the token is second: a flipped key id can name the first.
    let app = cookie_app(vec![key_b(), key_a()]);
    let sealer = cookie_app(vec![key_a()]);
    let token = post_with(&sealer, "/cart/apple", None).await.cookie();
    let other = post_with(&sealer, "/cart/pear", None).await.cookie();
    assert_eq!(
        get_with(&app, "/cart", Some(&token)).await.body,
        "items=apple coupon=- visits=0"
    );
    let values = hostile_values(&token, &other);
    assert!(values.len() >= 10_000, "only {} values", values.len());

    let (mut tried, mut panicked, mut accepted, mut failed) = (0, 0, Vec::new(), Vec::new());
    for value in &values {
        tried += 1;
        let request = cookie_request("/cart", value);
        let task = tokio::spawn({
            let app = app.clone();
            async move { send(&app, request).await }
        });
        match task.await {
            Err(err) if err.is_panic() => panicked += 1,
            Err(err) => panic!("request task: {err}"),
            Ok(reply) if reply.status != StatusCode::OK => failed.push(reply.status),
            Ok(reply) if reply.body != NO_CART => {
                accepted.push(String::from_utf8_lossy(value).into_owned());
            }
            Ok(reply) => assert!(reply.set_cookies().is_empty()),
        }
    }
    assert_eq!(panicked, 0, "{panicked} of {tried} requests panicked");
    assert!(
        accepted.is_empty(),
        "{} of {tried} accepted: {accepted:?}",
        accepted.len()
    );
    assert!(
        failed.is_empty(),
        "{} of {tried} failed: {failed:?}",
        failed.len()
    );
    // The real token still opens.
    assert_eq!(
        get_with(&app, "/cart", Some(&token)).await.body,
        "items=apple coupon=- visits=0"
    );
}

// ---- size ----------------------------------------------------------------------------------

fn big_app() -> Router {
    routes()
        .route(
            "/big",
            post(|mut cart: Typed<Cart>| async move {
                cart.items_mut().push("x".repeat(5000));
                "added a big item"
            }),
        )
        .layer(
            SessionLayer::new(CookieStore::new([key_a()]).expect("keys"))
                .register::<Cart>()
                .register::<Prefs>(),
        )
}

#[tokio::test]
async fn a_session_too_large_for_a_cookie_is_a_500_and_an_error_log_never_a_dropped_cookie() {
    let app = big_app();
    let (logs, guard) = capture_logs();
    let reply = post_with(&app, "/big", None).await;
    drop(guard);
    assert_eq!(
        reply.status,
        StatusCode::INTERNAL_SERVER_ERROR,
        "{}",
        reply.body
    );
    assert!(reply.set_cookies().is_empty(), "{:?}", reply.set_cookies());
    let errors = logs.lines_at("ERROR");
    assert!(
        errors.iter().any(|line| line.contains("4096")),
        "no error line naming the limit:\n{}",
        logs.text()
    );
    assert!(
        !reply.body.contains("added a big item"),
        "the handler's success body survived: {}",
        reply.body
    );

    // A session that fitted and then grows too large: the 500 leaves the old cookie in place.
    let token = post_with(&app, "/cart/apple", None).await.cookie();
    let reply = post_with(&app, "/big", Some(&token)).await;
    assert_eq!(reply.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert!(reply.set_cookies().is_empty(), "{:?}", reply.set_cookies());
    assert_eq!(
        get_with(&app, "/cart", Some(&token)).await.body,
        "items=apple coupon=- visits=0"
    );
}
