//! Cookie-store key rotation end to end: a cookie sealed with key A still opens after the app
//! rotates to [B, A], and comes back sealed with B (proved: an app with [B] alone opens the new
//! cookie, and one with [A] alone no longer does); once A is removed, A's cookie is refused and
//! a fresh session starts.

use std::time::Duration;

use sessions::clock::ManualClock;
use sessions::{CookieStore, Expiry, Key, SessionLayer};

use super::cookie_store::{key_a, key_b};
use super::handlers::NO_CART;
use super::support::only_forgets;
use super::support::{capture_logs, get_as, max_age, post_as, the_set_cookie, token};
use super::{App, browser, layer};

/// A layer whose cookie store has `keys` (the first seals), on `clock`, with 1 hour idle expiry.
fn layer_with(keys: Vec<Key>, clock: &ManualClock) -> SessionLayer {
    layer(CookieStore::new(keys).expect("keys"))
        .clock(clock.clone())
        .expiry(Expiry::idle(Duration::from_secs(3600)))
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

/// A token sealed with A alone, holding the cart `apple`.
async fn sealed_with_a<A: App>(clock: &ManualClock) -> String {
    token(
        &browser::<A>(&layer_with(vec![key_a()], clock))
            .await
            .post("/cart/apple")
            .await,
    )
}

pub(crate) async fn a_cookie_sealed_with_a_opens_after_rotating_to_b_a_and_comes_back_sealed_with_b<
    A: App,
>() {
    let clock = ManualClock::new();
    let token_a = sealed_with_a::<A>(&clock).await;
    assert_eq!(sealing_key_id(&token_a), 1);

    // The app rotates: B seals, A still opens.
    let rotated = layer_with(vec![key_b(), key_a()], &clock);
    let client = browser::<A>(&rotated).await;
    let read = get_as(&client, &rotated, Some(&token_a), "/cart").await;
    assert_eq!(read.status(), 200);
    assert_eq!(read.text(), "items=apple coupon=- visits=0");
    // A read-only request, yet exactly one Set-Cookie: the session sealed again, with B.
    let token_b = token(&read);
    assert_ne!(token_b, token_a);
    assert_eq!(sealing_key_id(&token_b), 2);

    // Proof that B sealed it: [B] alone opens it, [A] alone does not.
    let only_b = layer_with(vec![key_b()], &clock);
    let b_client = browser::<A>(&only_b).await;
    assert_eq!(
        get_as(&b_client, &only_b, Some(&token_b), "/cart")
            .await
            .text(),
        "items=apple coupon=- visits=0"
    );
    let only_a = layer_with(vec![key_a()], &clock);
    let a_client = browser::<A>(&only_a).await;
    assert_eq!(
        get_as(&a_client, &only_a, Some(&token_b), "/cart")
            .await
            .text(),
        NO_CART
    );

    // B's cookie is current: the rotated app does not seal it again.
    assert!(
        get_as(&client, &rotated, Some(&token_b), "/cart")
            .await
            .set_cookies()
            .is_empty()
    );
    // A write through the rotated app with A's cookie also comes back sealed with B.
    let written = token(&post_as(&client, &rotated, Some(&token_a), "/coupon/ROT").await);
    assert_eq!(sealing_key_id(&written), 2);
    assert_eq!(
        get_as(&b_client, &only_b, Some(&written), "/cart")
            .await
            .text(),
        "items=apple coupon=ROT visits=0"
    );
}

pub(crate) async fn after_removing_a_its_cookie_is_refused_and_a_fresh_session_starts<A: App>() {
    let clock = ManualClock::new();
    let token_a = sealed_with_a::<A>(&clock).await;
    let only_b = layer_with(vec![key_b()], &clock);
    let client = browser::<A>(&only_b).await;

    let (logs, guard) = capture_logs();
    let read = get_as(&client, &only_b, Some(&token_a), "/cart").await;
    drop(guard);
    assert_eq!(read.status(), 200);
    assert_eq!(read.text(), NO_CART);
    // The refused cookie is cleared.
    assert!(only_forgets(&read), "{:?}", read.set_cookies());
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
    let write = post_as(&client, &only_b, Some(&token_a), "/cart/pear").await;
    assert_eq!(write.status(), 200);
    assert_eq!(write.text(), "items=pear coupon=- visits=0");
    let fresh = token(&write);
    assert_ne!(fresh, token_a);
    assert_eq!(sealing_key_id(&fresh), 2);
    assert_eq!(
        client.get("/cart").await.text(),
        "items=pear coupon=- visits=0"
    );
}

pub(crate) async fn resealing_with_the_new_key_does_not_extend_the_session<A: App>() {
    let clock = ManualClock::new();
    let token_a = sealed_with_a::<A>(&clock).await;
    clock.advance(Duration::from_secs(600));
    let rotated = layer_with(vec![key_b(), key_a()], &clock);
    let client = browser::<A>(&rotated).await;
    let read = get_as(&client, &rotated, Some(&token_a), "/cart").await;
    // The read was not due for an expiry refresh: the new cookie keeps A's deadline.
    assert_eq!(max_age(&the_set_cookie(&read)), Some(3000));
    let token_b = token(&read);
    clock.advance(Duration::from_secs(3000));
    let only_b = layer_with(vec![key_b()], &clock);
    let b_client = browser::<A>(&only_b).await;
    assert_eq!(
        get_as(&b_client, &only_b, Some(&token_b), "/cart")
            .await
            .text(),
        NO_CART
    );
}

pub(crate) async fn an_impostor_key_under_the_id_of_a_is_refused<A: App>() {
    let clock = ManualClock::new();
    let token_a = sealed_with_a::<A>(&clock).await;
    let impostor = Key::from_bytes(1, [0x66; 32]);
    let layer = layer_with(vec![key_b(), impostor], &clock);
    let read = get_as(&browser::<A>(&layer).await, &layer, Some(&token_a), "/cart").await;
    assert_eq!(read.text(), NO_CART);
    assert!(only_forgets(&read), "{:?}", read.set_cookies());
}

pub(crate) async fn every_session_of_a_fleet_survives_the_rotation<A: App>() {
    let clock = ManualClock::new();
    let before = layer_with(vec![key_a()], &clock);
    let client = browser::<A>(&before).await;
    let mut tokens = Vec::new();
    for n in 0..50 {
        let created = post_as(&client, &before, None, &format!("/cart/item{n}")).await;
        tokens.push((n, token(&created)));
    }
    let rotated = layer_with(vec![key_b(), key_a()], &clock);
    let rotated_client = browser::<A>(&rotated).await;
    let only_b = layer_with(vec![key_b()], &clock);
    let b_client = browser::<A>(&only_b).await;
    for (n, token_a) in tokens {
        let token_b = token(&get_as(&rotated_client, &rotated, Some(&token_a), "/cart").await);
        assert_eq!(
            get_as(&b_client, &only_b, Some(&token_b), "/cart")
                .await
                .text(),
            format!("items=item{n} coupon=- visits=0")
        );
        assert_eq!(
            get_as(&b_client, &only_b, Some(&token_a), "/cart")
                .await
                .text(),
            NO_CART
        );
    }
}
