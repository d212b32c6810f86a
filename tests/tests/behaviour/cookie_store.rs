//! `CookieStore`: the whole session sealed in the cookie, key rotation, 10,000 tampered /
//! truncated / garbage cookies refused without a panic, and a session too large for a cookie
//! refused loudly.

use std::time::Duration;

use bytes::Bytes;
use http::{HeaderValue, Request, header};
use sessions::clock::ManualClock;
use sessions::prelude::*;
use sessions::{Expiry, Key};

use super::handlers::NO_CART;
use super::support::only_forgets;
use super::support::{
    Rng, capture_logs, cookie_value, get_as, max_age, post_as, the_set_cookie, token,
};
use super::{App, browser, layer};

pub(crate) fn key_a() -> Key {
    Key::from_bytes(1, [0xA1; 32])
}

pub(crate) fn key_b() -> Key {
    Key::from_bytes(2, [0xB2; 32])
}

/// A layer whose cookie store has `keys` (the first seals).
pub(crate) fn cookie_layer(keys: Vec<Key>) -> SessionLayer {
    layer(CookieStore::new(keys).expect("keys"))
}

/// Changed meaning: `GET /all` now asks `is_stored()` where it used to ask whether `id()` is
/// `Some`; a sealed cookie that opened is a stored session (with no id).
pub(crate) async fn the_whole_session_travels_in_the_cookie<A: App>() {
    let layer = cookie_layer(vec![key_a()]);
    let client = browser::<A>(&layer).await;
    let created = client.post("/all").await;
    assert_eq!(created.status(), 200);
    let set_cookie = the_set_cookie(&created);
    for attribute in ["HttpOnly", "Secure", "SameSite=Lax", "Path=/"] {
        assert!(set_cookie.contains(attribute), "{set_cookie}");
    }
    assert_eq!(max_age(&set_cookie), Some(24 * 3600));
    let first = token(&created);
    // Sealed: the data is not readable in the cookie.
    assert!(
        !first.contains("both") && !first.contains("cart"),
        "{first}"
    );

    let read = client.get("/all").await;
    assert_eq!(
        read.text(),
        "items=both coupon=- visits=0 dark=true lang=fr stored=true"
    );
    assert!(
        read.set_cookies().is_empty(),
        "a read-only request re-sealed"
    );
    assert_eq!(
        client.get("/id").await.text(),
        "",
        "a cookie-store session has no id"
    );

    // A write seals the new state; the next request sees it.
    let second = token(&client.post("/coupon/C").await);
    assert_ne!(second, first);
    assert_eq!(
        client.get("/cart").await.text(),
        "items=both coupon=C visits=0"
    );
    assert_eq!(client.get("/prefs").await.text(), "dark=true lang=fr");

    // cycle_id re-seals (a new token, same data); destroy clears the cookie.
    let third = token(&client.post("/login").await);
    assert_ne!(third, second);
    assert_eq!(
        client.get("/cart").await.text(),
        "items=both coupon=C visits=1"
    );
    let removal = the_set_cookie(&client.post("/logout").await);
    assert_eq!(cookie_value(&removal), "");
    assert_eq!(max_age(&removal), Some(0));
    assert!(client.session(&layer).is_none());
}

pub(crate) async fn a_5xx_response_seals_nothing<A: App>() {
    let client = browser::<A>(&cookie_layer(vec![key_a()])).await;
    let fresh = client.post("/fail/apple").await;
    assert_eq!(fresh.status(), 500);
    assert!(fresh.set_cookies().is_empty(), "{:?}", fresh.set_cookies());
    assert_eq!(client.post("/cart/apple").await.status(), 200);
    let failed = client.post("/fail/pear").await;
    assert_eq!(failed.status(), 500);
    assert!(
        failed.set_cookies().is_empty(),
        "{:?}",
        failed.set_cookies()
    );
    assert_eq!(
        client.get("/cart").await.text(),
        "items=apple coupon=- visits=0"
    );
}

pub(crate) async fn a_cookie_sealed_with_a_rotated_key_opens_and_is_resealed<A: App>() {
    let before = browser::<A>(&cookie_layer(vec![key_a()])).await;
    let token_a = token(&before.post("/cart/apple").await);

    // The app now seals with B and still opens A's cookies.
    let rotated_layer = cookie_layer(vec![key_b(), key_a()]);
    let rotated = browser::<A>(&rotated_layer).await;
    let read = get_as(&rotated, &rotated_layer, Some(&token_a), "/cart").await;
    assert_eq!(read.status(), 200);
    assert_eq!(read.text(), "items=apple coupon=- visits=0");
    let resealed = token(&read); // exactly one Set-Cookie, though nothing changed
    assert_ne!(resealed, token_a);
    // The resealed cookie is B's: it opens once A is retired; A's own token does not.
    let only_b_layer = cookie_layer(vec![key_b()]);
    let only_b = browser::<A>(&only_b_layer).await;
    assert_eq!(
        get_as(&only_b, &only_b_layer, Some(&resealed), "/cart")
            .await
            .text(),
        "items=apple coupon=- visits=0"
    );
    assert_eq!(
        get_as(&only_b, &only_b_layer, Some(&token_a), "/cart")
            .await
            .text(),
        NO_CART
    );
    // And B's token, read again by the rotated app, is not resealed.
    let again = get_as(&rotated, &rotated_layer, Some(&resealed), "/cart").await;
    assert!(again.set_cookies().is_empty(), "{:?}", again.set_cookies());
}

pub(crate) async fn a_cookie_sealed_with_a_retired_key_gets_a_fresh_session<A: App>() {
    let token_a = token(
        &browser::<A>(&cookie_layer(vec![key_a()]))
            .await
            .post("/cart/apple")
            .await,
    );
    let only_b_layer = cookie_layer(vec![key_b()]);
    let only_b = browser::<A>(&only_b_layer).await;
    let read = get_as(&only_b, &only_b_layer, Some(&token_a), "/cart").await;
    assert_eq!(read.status(), 200);
    assert_eq!(read.text(), NO_CART);
    // The refused cookie is cleared.
    assert!(only_forgets(&read), "{:?}", read.set_cookies());
    let write = post_as(&only_b, &only_b_layer, Some(&token_a), "/cart/pear").await;
    assert_eq!(write.text(), "items=pear coupon=- visits=0");
}

pub(crate) async fn the_expiry_sealed_in_the_cookie_is_enforced<A: App>() {
    let clock = ManualClock::new();
    let layer = layer(CookieStore::new([key_a()]).expect("keys"))
        .clock(clock.clone())
        .expiry(Expiry::idle(Duration::from_secs(100)));
    let client = browser::<A>(&layer).await;
    let sealed = token(&client.post("/cart/apple").await);
    clock.advance(Duration::from_secs(99));
    assert_ne!(
        get_as(&client, &layer, Some(&sealed), "/cart").await.text(),
        NO_CART
    );
    // A replay of the same cookie after its expiry does not come back to life.
    clock.advance(Duration::from_secs(1));
    assert_eq!(
        get_as(&client, &layer, Some(&sealed), "/cart").await.text(),
        NO_CART
    );
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
    let mut rng = Rng::new(0x5E55_1015);
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

fn cookie_request(path: &str, value: &[u8]) -> Request<Bytes> {
    let mut header = b"session=".to_vec();
    header.extend_from_slice(value);
    Request::builder()
        .uri(path)
        .header(
            header::COOKIE,
            HeaderValue::from_bytes(&header).expect("a valid header value"),
        )
        .body(Bytes::new())
        .expect("a valid request")
}

pub(crate) async fn ten_thousand_hostile_cookies_are_refused_without_a_panic<A: App>() {
    // The key that sealed the token is second: a flipped key id can name the first.
    let layer = cookie_layer(vec![key_b(), key_a()]);
    let sealer = browser::<A>(&cookie_layer(vec![key_a()])).await;
    let sealed = token(&sealer.post("/cart/apple").await);
    sealer.forget_session(&layer);
    let other = token(&sealer.post("/cart/pear").await);
    let client = browser::<A>(&layer).await;
    assert_eq!(
        get_as(&client, &layer, Some(&sealed), "/cart").await.text(),
        "items=apple coupon=- visits=0"
    );
    client.forget_session(&layer);
    let values = hostile_values(&sealed, &other);
    assert!(values.len() >= 10_000, "only {} values", values.len());

    let (mut tried, mut panicked, mut accepted, mut failed) = (0, 0, Vec::new(), Vec::new());
    for value in &values {
        tried += 1;
        let request = cookie_request("/cart", value);
        let sent = tokio::task::spawn_local({
            let client = client.clone();
            async move { client.send(request).await }
        });
        match sent.await {
            Err(err) if err.is_panic() => panicked += 1,
            Err(err) => panic!("request task: {err}"),
            Ok(response) if response.status() != 200 => failed.push(response.status()),
            Ok(response) if response.text() != NO_CART => {
                accepted.push(String::from_utf8_lossy(value).into_owned());
            }
            // A refused cookie is cleared; nothing else is set.
            Ok(response) => assert!(
                response.set_cookies().is_empty() || only_forgets(&response),
                "{:?}",
                response.set_cookies()
            ),
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
        get_as(&client, &layer, Some(&sealed), "/cart").await.text(),
        "items=apple coupon=- visits=0"
    );
}

// ---- size ----------------------------------------------------------------------------------

pub(crate) async fn a_session_too_large_for_a_cookie_is_a_500_and_an_error_log_never_a_dropped_cookie<
    A: App,
>() {
    let layer = cookie_layer(vec![key_a()]);
    let client = browser::<A>(&layer).await;
    let (logs, guard) = capture_logs();
    let response = client.post("/big").await;
    drop(guard);
    assert_eq!(response.status(), 500, "{}", response.text());
    assert!(
        response.set_cookies().is_empty(),
        "{:?}",
        response.set_cookies()
    );
    let errors = logs.lines_at("ERROR");
    assert!(
        errors.iter().any(|line| line.contains("4096")),
        "no error line naming the limit:\n{}",
        logs.text()
    );
    assert!(
        !response.text().contains("added a big item"),
        "the handler's success body survived: {}",
        response.text()
    );

    // A session that fitted and then grows too large: the 500 leaves the old cookie in place.
    let sealed = token(&client.post("/cart/apple").await);
    let response = client.post("/big").await;
    assert_eq!(response.status(), 500);
    assert!(
        response.set_cookies().is_empty(),
        "{:?}",
        response.set_cookies()
    );
    assert_eq!(client.session(&layer).as_deref(), Some(sealed.as_str()));
    assert_eq!(
        client.get("/cart").await.text(),
        "items=apple coupon=- visits=0"
    );
}
