//! Cookie-store key rotation end to end, through real axum `Router`s: a cookie sealed with key A
//! still opens after the app rotates to [B, A], and comes back sealed with B (proved: an app
//! with [B] alone opens the new cookie, and one with [A] alone no longer does); once A is
//! removed, A's cookie is refused and a fresh session starts.

mod http_common;

use std::time::Duration;

use axum::Router;
use http::StatusCode;
use sessions::prelude::*;
use sessions::{Expiry, Key, ManualClock};

use http_common::{NO_CART, app, capture_logs, get_with, max_age, post_with};

fn key_a() -> Key {
    Key::from_bytes(1, [0xA1; 32])
}

fn key_b() -> Key {
    Key::from_bytes(2, [0xB2; 32])
}

/// An app whose cookie store has `keys` (the first seals), on `clock`, with 1 hour idle expiry.
fn app_with(keys: Vec<Key>, clock: &ManualClock) -> Router {
    app(SessionLayer::new(CookieStore::new(keys).expect("keys"))
        .clock(clock.clone())
        .expiry(Expiry::idle(Duration::from_secs(3600))))
}

/// The key id a token names in its clear header (version byte, then the id, big-endian).
fn sealing_key_id(token: &str) -> u32 {
    let value = |c: u8| match c {
        b'A'..=b'Z' => c - b'A',
        b'a'..=b'z' => c - b'a' + 26,
        b'0'..=b'9' => c - b'0' + 52,
        b'-' => 62,
        b'_' => 63,
        other => panic!("not base64url: {other}"),
    };
    // Eight characters hold the first six bytes.
    let bits = token
        .bytes()
        .take(8)
        .fold(0u64, |acc, c| (acc << 6) | u64::from(value(c)));
    let header = bits.to_be_bytes();
    // The 48 bits fill the low six bytes: [0, 0, version, id0, id1, id2, id3, nonce0].
    u32::from_be_bytes([header[3], header[4], header[5], header[6]])
}

#[tokio::test]
async fn a_cookie_sealed_with_a_opens_after_rotating_to_b_a_and_comes_back_sealed_with_b() {
    let clock = ManualClock::new();
    let before = app_with(vec![key_a()], &clock);
    let token_a = post_with(&before, "/cart/apple", None).await.cookie();
    assert_eq!(sealing_key_id(&token_a), 1);

    // The app rotates: B seals, A still opens.
    let rotated = app_with(vec![key_b(), key_a()], &clock);
    let read = get_with(&rotated, "/cart", Some(&token_a)).await;
    assert_eq!(read.status, StatusCode::OK);
    assert_eq!(read.body, "items=apple coupon=- visits=0");
    // A read-only request, yet exactly one Set-Cookie: the session sealed again, with B.
    let token_b = read.cookie();
    assert_ne!(token_b, token_a);
    assert_eq!(sealing_key_id(&token_b), 2);

    // Proof that B sealed it: [B] alone opens it, [A] alone does not.
    let only_b = app_with(vec![key_b()], &clock);
    assert_eq!(
        get_with(&only_b, "/cart", Some(&token_b)).await.body,
        "items=apple coupon=- visits=0"
    );
    let only_a = app_with(vec![key_a()], &clock);
    assert_eq!(
        get_with(&only_a, "/cart", Some(&token_b)).await.body,
        NO_CART
    );

    // B's cookie is current: the rotated app does not seal it again.
    assert!(
        get_with(&rotated, "/cart", Some(&token_b))
            .await
            .set_cookies()
            .is_empty()
    );
    // A write through the rotated app with A's cookie also comes back sealed with B.
    let written = post_with(&rotated, "/coupon/ROT", Some(&token_a))
        .await
        .cookie();
    assert_eq!(sealing_key_id(&written), 2);
    assert_eq!(
        get_with(&only_b, "/cart", Some(&written)).await.body,
        "items=apple coupon=ROT visits=0"
    );
}

#[tokio::test]
async fn after_removing_a_its_cookie_is_refused_and_a_fresh_session_starts() {
    let clock = ManualClock::new();
    let token_a = post_with(&app_with(vec![key_a()], &clock), "/cart/apple", None)
        .await
        .cookie();
    let only_b = app_with(vec![key_b()], &clock);

    let (logs, guard) = capture_logs();
    let read = get_with(&only_b, "/cart", Some(&token_a)).await;
    drop(guard);
    assert_eq!(read.status, StatusCode::OK);
    assert_eq!(read.body, NO_CART);
    assert!(read.set_cookies().is_empty(), "{:?}", read.set_cookies());
    let warnings = logs.lines_at("WARN");
    assert!(
        warnings
            .iter()
            .any(|line| line.contains("a key this store does not have")),
        "no warning naming the retired key:\n{}",
        logs.text()
    );
    assert!(!logs.text().contains(&token_a));

    // A write starts a fresh session: none of A's data, a new cookie sealed with B.
    let write = post_with(&only_b, "/cart/pear", Some(&token_a)).await;
    assert_eq!(write.status, StatusCode::OK);
    assert_eq!(write.body, "items=pear coupon=- visits=0");
    let fresh = write.cookie();
    assert_ne!(fresh, token_a);
    assert_eq!(sealing_key_id(&fresh), 2);
    assert_eq!(
        get_with(&only_b, "/cart", Some(&fresh)).await.body,
        "items=pear coupon=- visits=0"
    );
}

#[tokio::test]
async fn resealing_with_the_new_key_does_not_extend_the_session() {
    let clock = ManualClock::new();
    let token_a = post_with(&app_with(vec![key_a()], &clock), "/cart/apple", None)
        .await
        .cookie();
    clock.advance(Duration::from_secs(600));
    let rotated = app_with(vec![key_b(), key_a()], &clock);
    let read = get_with(&rotated, "/cart", Some(&token_a)).await;
    // The read was not due for an expiry refresh: the new cookie keeps A's deadline.
    assert_eq!(max_age(&read.the_set_cookie()), Some(3000));
    let token_b = read.cookie();
    clock.advance(Duration::from_secs(3000));
    let only_b = app_with(vec![key_b()], &clock);
    assert_eq!(
        get_with(&only_b, "/cart", Some(&token_b)).await.body,
        NO_CART
    );
}

#[tokio::test]
async fn an_impostor_key_under_the_id_of_a_is_refused() {
    let clock = ManualClock::new();
    let token_a = post_with(&app_with(vec![key_a()], &clock), "/cart/apple", None)
        .await
        .cookie();
    let impostor = Key::from_bytes(1, [0x66; 32]);
    let app = app_with(vec![key_b(), impostor], &clock);
    let read = get_with(&app, "/cart", Some(&token_a)).await;
    assert_eq!(read.body, NO_CART);
    assert!(read.set_cookies().is_empty());
}

#[tokio::test]
async fn every_session_of_a_fleet_survives_the_rotation() {
    let clock = ManualClock::new();
    let before = app_with(vec![key_a()], &clock);
    let mut tokens = Vec::new();
    for n in 0..50 {
        tokens.push((
            n,
            post_with(&before, &format!("/cart/item{n}"), None)
                .await
                .cookie(),
        ));
    }
    let rotated = app_with(vec![key_b(), key_a()], &clock);
    let only_b = app_with(vec![key_b()], &clock);
    for (n, token_a) in tokens {
        let token_b = get_with(&rotated, "/cart", Some(&token_a)).await.cookie();
        assert_eq!(
            get_with(&only_b, "/cart", Some(&token_b)).await.body,
            format!("items=item{n} coupon=- visits=0")
        );
        assert_eq!(
            get_with(&only_b, "/cart", Some(&token_a)).await.body,
            NO_CART
        );
    }
}
