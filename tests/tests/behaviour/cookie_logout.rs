//! Cookie sessions that end when they are ended (issue 21), on both adapters: with a revocation
//! list (`CookieStore::revocations`), `destroy()` revokes the very cookie it ends and
//! `cycle_id()` the one a login replaces, so a copy replayed afterwards opens as no session;
//! a revocation is kept until that cookie's own end and no longer; the cap on a user's
//! sessions works on cookies; a setting a cookie layer cannot honour is an error when the layer
//! is built; and when the revocation list cannot be read, a cookie is refused, never let
//! through. The same on every store as the revocation list (the end of this file).

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::time::{Duration, SystemTime};

use sessions::clock::ManualClock;
use sessions::prelude::*;
use sessions::store::{Entry, SessionKey};
use sessions::{Expiry, Key, SessionStore};

use super::handlers::NO_CART;
use super::model::Auth;
use super::owners::{IDLE, assert_revoked, clock, owner_layer, sign_in};
use super::support::{get_as, live_cookies, only_forgets, token};
use super::{App, RecordingStore, browser, layer};

fn cookies() -> CookieStore {
    CookieStore::new([Key::from_bytes(1, [0xC6; 32])]).expect("a key")
}

/// A cookie layer on `clock` whose revocation list is `list`.
fn revocable(list: impl SessionStore, clock: &ManualClock) -> SessionLayer {
    owner_layer(cookies().revocations(list), clock)
}

fn list(clock: &ManualClock) -> RecordingStore {
    RecordingStore::new(MemoryStore::with_clock(clock.clone()))
}

/// OWASP's first rule of logout, on cookie sessions: the server ends the session. A user signs
/// in and shops (each write seals the session anew); a thief kept copies of every cookie. After
/// the logout, every copy opens as nobody's session and is told to go; the user's own browser
/// starts afresh.
pub(crate) async fn a_cookie_replayed_after_logout_opens_as_nothing<A: App>() {
    let clock = clock();
    replayed_after_logout::<A>(list(&clock), &clock).await;
}

async fn replayed_after_logout<A: App>(list: impl SessionStore, clock: &ManualClock) {
    let layer = revocable(list, clock);
    let user = browser::<A>(&layer).await;
    let thief = browser::<A>(&layer).await;
    let signed_in = sign_in(&user, 9).await;
    let shopping = token(&user.post("/cart/apple").await);
    assert_eq!(
        get_as(&thief, &layer, Some(&shopping), "/auth/who")
            .await
            .text(),
        "user=9"
    );

    let bye = user.post("/logout").await;
    assert_eq!(bye.status(), 200, "{}", bye.text());
    assert!(
        only_forgets(&bye),
        "the logout clears the cookie: {:?}",
        bye.set_cookies()
    );

    for (copy, what) in [
        (&signed_in, "the cookie of the login"),
        (&shopping, "the last cookie"),
    ] {
        let replay = get_as(&thief, &layer, Some(copy), "/auth/who").await;
        assert_eq!(
            replay.text(),
            "nobody",
            "{what} still opens after the logout"
        );
        assert!(only_forgets(&replay), "{what}: {:?}", replay.set_cookies());
        let cart = get_as(&thief, &layer, Some(copy), "/cart").await;
        assert_eq!(cart.text(), NO_CART, "{what} still carries the cart");
    }
    assert_eq!(user.get("/auth/who").await.text(), "nobody");
}

/// `cycle_id()` (the login) revokes the cookie it replaces: the anonymous cookie a visitor had
/// before signing in (one an attacker could have planted or copied) opens as nothing after the
/// login, while the signed-in cookie carries the cart on.
pub(crate) async fn the_cookie_before_a_login_is_dead_after_it<A: App>() {
    let clock = clock();
    dead_after_login::<A>(list(&clock), &clock).await;
}

async fn dead_after_login<A: App>(list: impl SessionStore, clock: &ManualClock) {
    let layer = revocable(list, clock);
    let visitor = browser::<A>(&layer).await;
    let attacker = browser::<A>(&layer).await;
    let before = token(&visitor.post("/cart/apple").await);
    let after = sign_in(&visitor, 9).await;
    assert_ne!(before, after);

    let replay = get_as(&attacker, &layer, Some(&before), "/cart").await;
    assert_eq!(replay.text(), NO_CART, "the pre-login cookie still opens");
    assert!(only_forgets(&replay));
    assert_eq!(visitor.get("/auth/who").await.text(), "user=9");
    assert!(visitor.get("/cart").await.text().contains("apple"));
}

/// A revocation is kept until the revoked cookie's own end, and no longer: the revocation
/// list holds an entry per cookie ended and not yet expired, and a day of logins and logouts
/// leaves it as small as one hour's.
pub(crate) async fn cookie_revocations_expire_with_the_cookie<A: App>() {
    let clock = clock();
    let list = list(&clock);
    let layer = revocable(list.clone(), &clock);
    let user = browser::<A>(&layer).await;
    let mut most = 0;
    for _ in 0..24 {
        sign_in(&user, 9).await; // revokes the anonymous cookie it replaces
        assert_eq!(user.post("/logout").await.status(), 200);
        clock.advance(IDLE / 2);
        list.inner().delete_expired();
        most = most.max(list.inner().len());
    }
    // Each half hour's logout revokes one cookie, until that cookie's end (an idle expiry, an
    // hour, after its login): at most the last two are kept, however long this goes on.
    assert!(most <= 2, "the revocation list grew to {most} entries");
    assert!(most >= 1, "nothing was revoked");
    clock.advance(IDLE * 2);
    list.inner().delete_expired();
    assert_eq!(list.inner().len(), 0, "revocations outlived their cookies");
}

/// `max_sessions_per_owner(2)` on a cookie layer with a revocation list: a third login of the
/// user makes the oldest login's cookie stop opening; the two newest go on; and a logout frees
/// its place (a fourth login after it ends nobody else).
pub(crate) async fn the_cap_ends_the_oldest_cookie_of_a_user<A: App>() {
    let clock = clock();
    cap_on_cookies::<A>(list(&clock), &clock).await;
}

async fn cap_on_cookies<A: App>(list: impl SessionStore, clock: &ManualClock) {
    let layer = revocable(list, clock).max_sessions_per_owner(2);
    let (laptop, phone, tablet) = (
        browser::<A>(&layer).await,
        browser::<A>(&layer).await,
        browser::<A>(&layer).await,
    );
    sign_in(&laptop, 9).await;
    clock.advance(Duration::from_secs(1));
    sign_in(&phone, 9).await;
    clock.advance(Duration::from_secs(1));
    sign_in(&tablet, 9).await;
    assert_revoked(&laptop, &layer, "the oldest login").await;
    assert_eq!(phone.get("/auth/who").await.text(), "user=9");
    assert_eq!(tablet.get("/auth/who").await.text(), "user=9");

    assert_eq!(tablet.post("/logout").await.status(), 200);
    clock.advance(Duration::from_secs(1));
    sign_in(&laptop, 9).await;
    assert_eq!(
        phone.get("/auth/who").await.text(),
        "user=9",
        "a logout freed no place"
    );
    assert_eq!(laptop.get("/auth/who").await.text(), "user=9");
    // Another user is not counted with this one.
    sign_in(&tablet, 7).await;
    assert_eq!(phone.get("/auth/who").await.text(), "user=9");
}

/// A setting a cookie layer cannot honour is an error when the layer is built, never a silent
/// no-op: the cap without a revocation list, and optimistic concurrency; the message says what
/// to do.
pub(crate) async fn settings_a_cookie_layer_cannot_honour_fail_at_start_up<A: App>() {
    let capped = catch_unwind(AssertUnwindSafe(|| {
        layer(cookies()).max_sessions_per_owner(3)
    }));
    let message = panic_text(capped.err());
    assert!(message.contains("CookieStore::revocations"), "{message}");
    let optimistic = catch_unwind(AssertUnwindSafe(|| {
        layer(cookies()).optimistic_concurrency(true)
    }));
    let message = panic_text(optimistic.err());
    assert!(message.contains("server-side store"), "{message}");
    // With a revocation list the cap is fine.
    let _ = layer(cookies().revocations(MemoryStore::new())).max_sessions_per_owner(3);
}

fn panic_text(payload: Option<Box<dyn std::any::Any + Send>>) -> String {
    let Some(payload) = payload else {
        panic!("the layer was built without an error");
    };
    payload
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| {
            payload
                .downcast_ref::<&str>()
                .map(|text| (*text).to_owned())
        })
        .unwrap_or_default()
}

/// When the revocation list cannot be read, a request that needs its cookie session is refused
/// with a 503 (fail closed: an unchecked cookie could be one that was logged out), and a
/// logout that cannot be recorded is a 503 that leaves the cookie in place, not a 200 that
/// pretends. Once the list is back, the session goes on.
pub(crate) async fn a_cookie_is_refused_while_the_revocation_list_is_down<A: App>() {
    let clock = clock();
    let list = list(&clock);
    let layer = revocable(list.clone(), &clock);
    let user = browser::<A>(&layer).await;
    sign_in(&user, 9).await;
    let cookie = user.session(&layer).expect("a cookie");

    list.fail_loads(true);
    list.fail_writes(true);
    let who = user.get("/auth/who").await;
    assert_eq!(who.status(), 503, "{}", who.text());
    let cart = user.post("/cart/apple").await;
    assert_eq!(cart.status(), 503, "{}", cart.text());
    let bye = user.post("/logout").await;
    assert_eq!(bye.status(), 503, "{}", bye.text());
    assert!(
        live_cookies(&bye).is_empty() && !only_forgets(&bye),
        "{:?}",
        bye.set_cookies()
    );

    list.fail_loads(false);
    list.fail_writes(false);
    assert_eq!(user.session(&layer), Some(cookie));
    assert_eq!(user.get("/auth/who").await.text(), "user=9");
}

// ---- the revocation list on every store ---------------------------------------------------------
//
// The tests above keep the list in a `MemoryStore`; these keep it in the store of the fixture
// (SQLite, PostgreSQL, Redis, MySQL, memcached, memory) against its real server
// (`cookie_logout_stores::<test>::<store>`).

/// [`a_cookie_replayed_after_logout_opens_as_nothing`] with the revocation list in `store`.
pub(crate) async fn a_replayed_cookie_opens_as_nothing_after_logout_with_the_list_here<
    A: App,
    S: SessionStore + Clone,
>(
    store: S,
) {
    replayed_after_logout::<A>(store, &clock()).await;
}

/// [`the_cookie_before_a_login_is_dead_after_it`] with the revocation list in `store`.
pub(crate) async fn the_pre_login_cookie_is_dead_after_cycle_id_with_the_list_here<
    A: App,
    S: SessionStore + Clone,
>(
    store: S,
) {
    dead_after_login::<A>(store, &clock()).await;
}

/// [`the_cap_ends_the_oldest_cookie_of_a_user`] with the revocation list in `store`.
pub(crate) async fn the_cap_on_cookies_works_with_the_list_here<A: App, S: SessionStore + Clone>(
    store: S,
) {
    cap_on_cookies::<A>(store, &clock()).await;
}

/// A revocation lives in the store until the revoked cookie's own sealed end, and no longer,
/// on the store's own clock (the server's expiry, or the sweep): cookies of a few seconds'
/// idle life; the login revokes the anonymous cookie, the logout the signed-in one. Each
/// revocation is written with the end of the cookie it revokes (within the time the requests
/// took), holds while that cookie could still open (a replay is nobody's), and once the cookie's
/// end has passed the store has no such entry left (loaded as nothing; swept by the SQL stores
/// and the memory store, expired by Redis and memcached themselves).
pub(crate) async fn a_revocation_is_stored_until_the_cookies_end_and_no_longer<
    A: App,
    S: SessionStore + Clone,
>(
    store: S,
) {
    const LIFE: Duration = Duration::from_secs(3);
    let list = RecordingStore::new(store);
    let layer = layer(cookies().revocations(list.clone()))
        .register::<Auth>()
        .expiry(Expiry::idle(LIFE));
    let user = browser::<A>(&layer).await;
    let attacker = browser::<A>(&layer).await;
    // Cookies keep their times to the millisecond.
    let first = SystemTime::now() - Duration::from_millis(1);
    let anonymous = token(&user.post("/cart/apple").await);
    let signed_in = sign_in(&user, 9).await;
    let bye = user.post("/logout").await;
    assert_eq!(bye.status(), 200, "{}", bye.text());
    let last = SystemTime::now();

    let revocations: Vec<(SessionKey, SystemTime)> = list
        .writes()
        .into_iter()
        .filter_map(|write| match write.after {
            Some(Entry::Live { session, .. }) => Some((write.key, session.deadline.expires_at)),
            _ => None,
        })
        .collect();
    assert_eq!(
        revocations.len(),
        2,
        "one revocation per cookie ended: {revocations:?}"
    );
    for (key, until) in &revocations {
        assert!(
            *until >= first + LIFE && *until <= last + LIFE,
            "a revocation kept until {until:?}, not the cookie's end (between {:?} and {:?})",
            first + LIFE,
            last + LIFE
        );
        assert!(
            list.inner().load(key).await.expect("a load").is_some(),
            "a revocation is not in the store"
        );
    }
    for (copy, what) in [
        (&anonymous, "the anonymous cookie"),
        (&signed_in, "the signed-in cookie"),
    ] {
        let replay = get_as(&attacker, &layer, Some(copy), "/auth/who").await;
        assert_eq!(replay.text(), "nobody", "{what} opens after it was revoked");
    }

    // Past the end of the last cookie (memcached counts whole seconds: a second more).
    let end = last + LIFE + Duration::from_millis(1200);
    tokio::time::sleep(end.duration_since(SystemTime::now()).unwrap_or_default()).await;
    let swept = list.inner().delete_expired().await.unwrap_or(0);
    for (key, _) in &revocations {
        assert!(
            list.inner().load(key).await.expect("a load").is_none(),
            "a revocation outlived its cookie"
        );
    }
    if matches!(
        list.inner().name(),
        "sqlite" | "postgres" | "mysql" | "memory"
    ) {
        assert_eq!(
            swept,
            revocations.len() as u64,
            "the sweep left revocations in the store"
        );
    }
}
