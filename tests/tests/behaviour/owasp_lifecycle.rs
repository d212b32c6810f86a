//! The OWASP Session Management Cheat Sheet, second half: the session id's life cycle, expiry,
//! session data, attack detection and availability. Each test is named after the point it
//! proves; `SECURITY.md` maps every point to its test.

use std::time::Duration;

use sessions::clock::ManualClock;
use sessions::{CookieConfig, CookieStore, Expiry, Key, MemoryStore, SessionId, SessionLayer};

use super::handlers::NO_CART;
use super::owasp_cookies::{base64url_decode, cookie_store_layer};
use super::support::only_forgets;
use super::support::{
    capture_logs, cookie_value, get_as, key_of, max_age, post_as, the_set_cookie, token,
};
use super::{App, RecordingStore, browser, layer};

/// A layer on a store that share a `ManualClock`.
fn clocked(clock: &ManualClock, expiry: Expiry) -> (RecordingStore, SessionLayer) {
    let store = RecordingStore::new(MemoryStore::with_clock(clock.clone()));
    let layer = layer(store.clone()).clock(clock.clone()).expiry(expiry);
    (store, layer)
}

// ---- session ID life cycle -------------------------------------------------------------------

/// "Session ID Generation and Verification: Permissive and Strict Session Management": the
/// layer is strict. A well-formed id the server never issued is not adopted: the client gets a
/// new id of the server's, and nothing is ever filed under the id it sent.
pub(crate) async fn strict_session_management_no_client_ids<A: App>() {
    let store = RecordingStore::memory();
    let layer = layer(store.clone());
    let client = browser::<A>(&layer).await;
    let chosen = "AttackerChosenIdAttackerChosenIdAttackerCho";
    assert!(
        SessionId::parse(chosen).is_some(),
        "the test needs a well-formed id"
    );
    let read = get_as(&client, &layer, Some(chosen), "/cart").await;
    assert_eq!(read.text(), NO_CART);
    // Nothing is ever stored under the id the client chose; the client is told to forget it.
    assert!(only_forgets(&read), "{:?}", read.set_cookies());
    let write = post_as(&client, &layer, Some(chosen), "/cart/apple").await;
    let issued = token(&write);
    assert_ne!(issued, chosen);
    assert!(store.entry(chosen).await.is_none());
    assert!(store.stored(&issued).await.is_some());
    // The cycle after login never hands the chosen id back either.
    let login = post_as(&client, &layer, Some(chosen), "/login").await;
    for set_cookie in login.set_cookies() {
        assert_ne!(cookie_value(set_cookie), chosen);
    }
    assert!(store.entry(chosen).await.is_none());
}

/// "Manage Session ID as Any Other User Input": a malformed id (wrong length, alphabet, padding,
/// huge) is refused before any store call, starts a fresh session, and is not echoed.
pub(crate) async fn session_id_validated_as_user_input<A: App>() {
    let store = RecordingStore::memory();
    let layer = layer(store.clone());
    let client = browser::<A>(&layer).await;
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
        let response = post_as(&client, &layer, Some(raw), "/cart/apple").await;
        assert_eq!(response.status(), 200);
        let issued = token(&response);
        assert_ne!(issued, raw);
        assert!(SessionId::parse(&issued).is_some());
    }
    assert_eq!(store.calls().load, 0, "a malformed id reached the store");
}

/// "Renew the Session ID After Any Privilege Level Change": `cycle_id()` (called by the login
/// handler) issues a new id, keeps the data, and kills the old id at once.
pub(crate) async fn renew_session_id_after_privilege_change<A: App>() {
    let store = RecordingStore::memory();
    let layer = layer(store.clone());
    let client = browser::<A>(&layer).await;
    let before = token(&client.post("/cart/apple").await);
    let login = client.post("/login").await;
    assert_eq!(login.status(), 200);
    let after = token(&login);
    assert_ne!(after, before);
    assert!(
        store.stored(&before).await.is_none(),
        "the old id still works"
    );
    assert_eq!(
        client.get("/cart").await.text(),
        "items=apple coupon=- visits=1"
    );
    let replay = browser::<A>(&layer).await;
    assert_eq!(
        get_as(&replay, &layer, Some(&before), "/cart").await.text(),
        NO_CART
    );
}

/// "Session Fixation": an attacker who plants an id of theirs in the victim's browser (a real,
/// live id they obtained) does not share the victim's session after the victim logs in.
pub(crate) async fn session_fixation<A: App>() {
    let layer = layer(MemoryStore::new());
    let attacker = browser::<A>(&layer).await;
    let planted = token(&attacker.post("/cart/bait").await);
    // The victim browses with the planted id, then logs in.
    let victim = browser::<A>(&layer).await;
    victim.set_session(&layer, &planted);
    let logged_in = token(&victim.post("/login").await);
    assert_ne!(logged_in, planted);
    assert_eq!(victim.post("/coupon/VICTIM-ONLY").await.status(), 200);
    // The attacker's copy of the id sees nothing of the logged-in session.
    let seen = attacker.get("/cart").await;
    assert_eq!(seen.text(), NO_CART);
    assert!(!seen.text().contains("VICTIM-ONLY"));
}

// ---- session expiration ----------------------------------------------------------------------

/// "Automatic Session Expiration: Idle Timeout", enforced server-side: a replayed cookie after
/// the idle time finds nothing, whatever the browser kept.
pub(crate) async fn idle_timeout<A: App>() {
    let clock = ManualClock::new();
    let (store, layer) = clocked(&clock, Expiry::idle(Duration::from_secs(1800)));
    let client = browser::<A>(&layer).await;
    let id = token(&client.post("/cart/apple").await);
    clock.advance(Duration::from_secs(1799));
    assert_ne!(
        get_as(&client, &layer, Some(&id), "/cart").await.text(),
        NO_CART
    );
    clock.advance(Duration::from_secs(1800));
    assert_eq!(
        get_as(&client, &layer, Some(&id), "/cart").await.text(),
        NO_CART
    );
    assert!(store.entry(&id).await.is_none());
}

/// "Automatic Session Expiration: Absolute Timeout": activity does not keep a session past its
/// absolute limit.
pub(crate) async fn absolute_timeout<A: App>() {
    let clock = ManualClock::new();
    let expiry = Expiry::idle_and_absolute(Duration::from_secs(600), Duration::from_secs(3600));
    let (_store, layer) = clocked(&clock, expiry);
    let client = browser::<A>(&layer).await.with_clock(clock.clone());
    client.post("/cart/apple").await;
    let id = client.session(&layer).expect("a cookie");
    for _ in 0..5 {
        clock.advance(Duration::from_secs(500));
        assert_ne!(client.post("/coupon/C").await.text(), NO_CART);
    }
    clock.advance(Duration::from_secs(1100));
    // Past the absolute hour: even the id replayed by hand finds nothing.
    let replay = browser::<A>(&layer).await;
    assert_eq!(
        get_as(&replay, &layer, Some(&id), "/cart").await.text(),
        NO_CART
    );
}

/// "Manual Session Expiration" (logout): `destroy()` deletes the server-side record and clears
/// the cookie; the old id replayed afterwards finds nothing and a write gets a new id.
pub(crate) async fn manual_session_expiration_logout<A: App>() {
    let store = RecordingStore::memory();
    let layer = layer(store.clone());
    let client = browser::<A>(&layer).await;
    let id = token(&client.post("/cart/apple").await);
    let removal = the_set_cookie(&client.post("/logout").await);
    assert_eq!(cookie_value(&removal), "");
    assert_eq!(max_age(&removal), Some(0));
    assert!(store.entry(&id).await.is_none());
    assert_eq!(
        get_as(&client, &layer, Some(&id), "/cart").await.text(),
        NO_CART
    );
    let again = token(&post_as(&client, &layer, Some(&id), "/cart/pear").await);
    assert_ne!(again, id);
    assert!(
        store.entry(&id).await.is_none(),
        "the logged-out id came back"
    );
}

/// "Web Content Caching": every response that sets or clears the session cookie says
/// `Cache-Control: no-store`, so no shared cache keeps a response that hands out a session.
pub(crate) async fn web_content_caching_no_store<A: App>() {
    let client = browser::<A>(&layer(MemoryStore::new())).await;
    let created = client.post("/cart/apple").await;
    let cycled = client.post("/login").await;
    let removed = client.post("/logout").await;
    let sealed = browser::<A>(&cookie_store_layer())
        .await
        .post("/cart/apple")
        .await;
    for response in [&created, &cycled, &removed, &sealed] {
        assert!(!response.set_cookies().is_empty());
        assert_eq!(
            response.header("cache-control"),
            Some("no-store"),
            "{:?}",
            response.headers()
        );
    }
}

/// A handler that sets its own caching policy keeps it: the layer only adds `no-store` when
/// the response has none. (`SECURITY.md` says so: a handler must not mark a response that
/// sets the session cookie as publicly cacheable.)
pub(crate) async fn web_content_caching_handler_policy_is_kept<A: App>() {
    let client = browser::<A>(&layer(MemoryStore::new())).await;
    let response = client.get("/cached").await;
    assert_eq!(response.set_cookies().len(), 1);
    assert_eq!(
        response.header("cache-control"),
        Some("private, max-age=60")
    );
}

// ---- session data ----------------------------------------------------------------------------

/// Server-side stores file a session under the SHA-256 of its id, never the id: a dump of the
/// store hands out no live session token.
pub(crate) async fn server_side_store_keyed_by_id_hash<A: App>() {
    let store = RecordingStore::memory();
    let client = browser::<A>(&layer(store.clone())).await;
    let id = token(&client.post("/cart/apple").await);
    client.post("/coupon/C").await;
    let writes = store.writes();
    assert_eq!(writes.len(), 2, "{writes:?}");
    for write in &writes {
        assert_eq!(write.key, key_of(&id));
        let key = write.key.as_str();
        assert_eq!(key.len(), 64);
        assert!(key.bytes().all(|b| b.is_ascii_hexdigit()));
        assert!(!key.contains(&id) && !id.contains(key));
    }
}

/// Client-side sessions (`CookieStore`) are encrypted and authenticated: the data is not
/// readable in the cookie, a changed byte or the cookie under another name is refused, and the
/// expiry sealed inside is enforced.
pub(crate) async fn client_side_session_encrypted_and_authenticated<A: App>() {
    let clock = ManualClock::new();
    let key = Key::from_bytes(1, [0x5A; 32]);
    let sealing = layer(CookieStore::new([key.clone()]).expect("key"))
        .clock(clock.clone())
        .expiry(Expiry::idle(Duration::from_secs(600)));
    let client = browser::<A>(&sealing).await;
    let sealed = token(&client.post("/cart/alice.example.com").await);
    assert!(!sealed.contains("alice"));
    let raw = base64url_decode(&sealed).expect("base64url");
    assert!(!raw.windows(5).any(|w| w == b"alice"));
    assert_ne!(client.get("/cart").await.text(), NO_CART);

    let mut flipped = sealed.clone().into_bytes();
    let middle = flipped.len() / 2;
    flipped[middle] = if flipped[middle] == b'A' { b'B' } else { b'A' };
    let flipped = String::from_utf8(flipped).expect("ascii");
    assert_eq!(
        get_as(&client, &sealing, Some(&flipped), "/cart")
            .await
            .text(),
        NO_CART
    );

    let renamed = layer(CookieStore::new([key]).expect("key"))
        .cookie(CookieConfig::new().name("other"))
        .clock(clock.clone());
    let other = token(&browser::<A>(&renamed).await.post("/cart/x").await);
    assert_eq!(
        get_as(&client, &sealing, Some(&other), "/cart")
            .await
            .text(),
        NO_CART
    );

    clock.advance(Duration::from_secs(600));
    assert_eq!(
        get_as(&client, &sealing, Some(&sealed), "/cart")
            .await
            .text(),
        NO_CART
    );
}

// ---- attack detection and availability -------------------------------------------------------

/// "Session ID Guessing and Brute Force Detection" / "Logging Sessions Life Cycle": every
/// refused or unknown id leaves a `WARN` line an operator can count and alert on, and no line
/// holds the id: unknown ids are named by their hash, malformed ones by their length only.
pub(crate) async fn attack_detection_logs_without_ids<A: App>() {
    let layer = layer(MemoryStore::new());
    let client = browser::<A>(&layer).await;
    let guesses: Vec<String> = (0..20)
        .map(|_| SessionId::generate().expect("id").expose().to_owned())
        .chain((0..5).map(|n| format!("guess-{n}")))
        .collect();
    let (logs, guard) = capture_logs();
    for guess in &guesses {
        get_as(&client, &layer, Some(guess), "/cart").await;
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
pub(crate) async fn fail_closed_when_store_down<A: App>() {
    let store = RecordingStore::memory();
    let client = browser::<A>(&layer(store.clone())).await;
    assert_eq!(client.post("/cart/apple").await.status(), 200);
    store.fail_loads(true);
    for response in [
        client.get("/cart").await,
        client.post("/cart/pear").await,
        client.post("/login").await,
    ] {
        assert_eq!(response.status(), 503, "{}", response.text());
        assert!(
            response.set_cookies().is_empty(),
            "{:?}",
            response.set_cookies()
        );
    }
    store.fail_loads(false);
    assert_eq!(
        client.get("/cart").await.text(),
        "items=apple coupon=- visits=0"
    );
}
