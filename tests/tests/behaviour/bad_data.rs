//! Bad data never panics, never gets a 2xx for what will not read back, and never switches a
//! security control off (issue 20), on every store and both frameworks:
//!
//! * a float that is NaN or infinite, on a JSON layer (a server store or the cookie): refused
//!   when the change is encoded (500, nothing stored), and what was stored still reads;
//! * an expiry too long for the clock (`Duration::MAX`, a natural "never"), the layer's or a
//!   session's own (`set_expiry`): the session ends at `Deadline::latest()`, and every request
//!   of it goes on;
//! * an entry whose version or slot revision is at `u64::MAX` (damaged or forged): read as
//!   nothing (a fresh session), and a logout still ends it;
//! * such an unreadable session of a user: left out of the user's listing and ended, so that
//!   "sign out everywhere" and the cap on a user's sessions never pass over it.
//!
//! The store-specific damage (a flipped byte, a hand-edited `version` column, a row copied
//! from another session, a Redis end past the largest `PXAT`) is in each store's own tests.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use sessions::prelude::*;
use sessions::store::{Deadline, Entry, Stored};
use sessions::{Expiry, SessionStore};

use super::cookie_store::{cookie_layer, key_a};
use super::handlers::NO_CART;
use super::owners::{clock, owner_layer, sign_in};
use super::support::{get_as, key_of, max_age, post_as, the_set_cookie};
use super::{App, browser, layer};

/// Statistics a handler computes: floats, the values that can be NaN or infinite.
#[derive(Session, Default, Debug, Clone, PartialEq)]
#[session(name = "stats")]
pub(crate) struct Stats {
    pub(crate) average: f64,
    pub(crate) best: Option<f64>,
    pub(crate) count: u32,
}

/// `POST /stats/{value}`: sets the average and the best to `value` (`NaN`, `inf`, `-inf`
/// parse too), and counts.
pub(crate) fn set_average(mut stats: Typed<Stats>, value: String) -> String {
    let value: f64 = value.parse().unwrap_or_default();
    stats.set_average(value);
    stats.set_best(Some(value));
    *stats.count_mut() += 1;
    "set".to_owned()
}

/// `GET /stats`: the stored statistics.
pub(crate) fn read_stats(stats: Option<Typed<Stats>>) -> String {
    match stats {
        Some(stats) => format!(
            "average={} best={:?} count={}",
            stats.average(),
            stats.best(),
            stats.count()
        ),
        None => "none".to_owned(),
    }
}

/// The per-session policies `POST /policy/{name}` sets, each with a duration at the clock's
/// end.
pub(crate) fn extreme_policy(name: &str) -> Option<Expiry> {
    Some(match name {
        "idle" => Expiry::idle(Duration::MAX),
        "absolute" => Expiry::absolute(Duration::MAX),
        "browser" => Expiry::browser_session(Duration::MAX),
        "both" => Expiry::idle_and_absolute(Duration::MAX, Duration::MAX),
        "seconds" => Expiry::idle(Duration::from_secs(u64::MAX)),
        _ => return None,
    })
}

/// `POST /policy/{name}`: the session's own expiry becomes the extreme policy `name`.
pub(crate) fn set_policy(session: SessionHandle, name: String) -> String {
    match extreme_policy(&name) {
        Some(policy) => {
            session.set_expiry(policy);
            format!("policy {name}")
        }
        None => "no such policy".to_owned(),
    }
}

const POLICIES: [&str; 5] = ["idle", "absolute", "browser", "both", "seconds"];

/// A JSON layer: `NaN`, `inf` and `-inf` are refused when the change is encoded — a 500
/// "session change cannot be encoded", nothing stored — and the session still reads what was
/// stored before (serde_json would have stored `null`: a 200, then a 500 on every later
/// request, and an `Option<f64>` silently `None`). A new session with one is not created.
pub(crate) async fn a_non_finite_float_is_refused_and_what_was_stored_still_reads<
    A: App,
    S: SessionStore + Clone,
>(
    store: S,
) {
    let layer = layer(store).register::<Stats>();
    non_finite_floats_are_refused::<A>(&layer).await;
}

/// The same with the whole session in the cookie (`CookieStore`, JSON).
pub(crate) async fn a_non_finite_float_in_a_cookie_session_is_refused<A: App>() {
    let layer = cookie_layer(vec![key_a()]).register::<Stats>();
    non_finite_floats_are_refused::<A>(&layer).await;
}

async fn non_finite_floats_are_refused<A: App>(layer: &SessionLayer) {
    let client = browser::<A>(layer).await;
    let stored = client.post("/stats/1.5").await;
    assert_eq!(stored.status(), 200, "{}", stored.text());
    let session = client.session(layer).expect("a session");
    for bad in ["NaN", "inf", "-inf"] {
        let refused = client.post(&format!("/stats/{bad}")).await;
        assert_eq!(refused.status(), 500, "{bad}: {}", refused.text());
        assert!(
            refused.text().contains("cannot be encoded"),
            "{bad}: {}",
            refused.text()
        );
        assert!(refused.set_cookies().is_empty(), "{bad}: a cookie was set");
        let read = client.get("/stats").await;
        assert_eq!(
            (read.status().as_u16(), read.text()),
            (200, "average=1.5 best=Some(1.5) count=1".to_owned()),
            "after {bad}"
        );
    }
    assert_eq!(client.session(layer), Some(session), "the session stayed");

    let fresh = browser::<A>(layer).await;
    let refused = fresh.post("/stats/NaN").await;
    assert_eq!(refused.status(), 500, "{}", refused.text());
    assert!(
        refused.set_cookies().is_empty(),
        "a new session was handed out"
    );
    assert!(fresh.session(layer).is_none());
    assert_eq!(fresh.get("/stats").await.text(), "none");
}

/// Seconds since the Unix epoch.
fn unix_secs(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs()
}

/// The stored end of the session of `id`.
async fn stored_end<S: SessionStore>(store: &S, id: &str) -> SystemTime {
    store
        .load(&key_of(id))
        .await
        .expect("the store loads")
        .expect("the session is stored")
        .expires_at()
}

/// `Expiry::idle(Duration::MAX)` (and the other extremes) as the layer's policy or a session's
/// own (`set_expiry`, stored with the session): the session ends at `Deadline::latest()` (the
/// last second of the year 9999), its cookie says so in `Max-Age` (none for a browser-session
/// cookie), and every later request of it — reads included — is answered, and a logout ends
/// it. It used to panic (`now + idle` overflowed the clock), on every request of a session
/// holding such a policy.
pub(crate) async fn an_expiry_too_long_for_the_clock_ends_at_the_latest_time<
    A: App,
    S: SessionStore + Clone,
>(
    store: S,
) {
    let latest = Deadline::latest();
    let never = layer(store.clone()).expiry(Expiry::idle(Duration::MAX));
    let client = browser::<A>(&never).await;
    let created = client.post("/cart/apple").await;
    assert_eq!(created.status(), 200, "{}", created.text());
    let age = max_age(&the_set_cookie(&created)).expect("a persistent cookie");
    let now = unix_secs(SystemTime::now());
    assert!(
        age + now >= unix_secs(latest) && age <= unix_secs(latest),
        "Max-Age={age} does not reach the latest time"
    );
    let id = client.session(&never).expect("a session");
    assert_eq!(stored_end(&store, &id).await, latest);
    assert!(client.get("/cart").await.text().contains("apple"));
    assert_eq!(client.post("/cart/pear").await.status(), 200);

    let layer = layer(store.clone());
    for policy in POLICIES {
        let client = browser::<A>(&layer).await;
        assert_eq!(client.post("/cart/apple").await.status(), 200, "{policy}");
        let set = client.post(&format!("/policy/{policy}")).await;
        assert_eq!(set.status(), 200, "{policy}: {}", set.text());
        assert_eq!(set.text(), format!("policy {policy}"));
        let id = client.session(&layer).expect("a session");
        assert_eq!(stored_end(&store, &id).await, latest, "{policy}");
        let cookie = the_set_cookie(&set);
        match policy {
            "browser" => assert_eq!(max_age(&cookie), None, "{policy}: {cookie}"),
            _ => assert!(
                max_age(&cookie).is_some_and(|age| age > 200_000_000_000),
                "{policy}: {cookie}"
            ),
        }
        for _ in 0..2 {
            let read = client.get("/cart").await;
            assert_eq!(read.status(), 200, "{policy}: {}", read.text());
            assert!(read.text().contains("apple"), "{policy}: {}", read.text());
        }
        let write = client.post("/cart/pear").await;
        assert_eq!(write.status(), 200, "{policy}: {}", write.text());
        assert_eq!(stored_end(&store, &id).await, latest, "{policy}");
        let out = client.post("/logout").await;
        assert_eq!(out.status(), 200, "{policy}: {}", out.text());
        assert!(store.load(&key_of(&id)).await.expect("loads").is_none());
    }
}

/// How a test damages a stored entry.
#[derive(Debug, Clone, Copy)]
enum AtMaximum {
    /// The entry's version is `u64::MAX`.
    Version,
    /// The cart slot's revision is `u64::MAX`.
    Revision,
}

/// Rewrites the entry of `id` with a number at its maximum (keeping its owner).
async fn damage<S: SessionStore>(store: &S, id: &str, how: AtMaximum) {
    let key = key_of(id);
    let Some(Entry::Live { version, session }) = store.load(&key).await.expect("loads") else {
        panic!("no live session to damage");
    };
    let damaged = match how {
        AtMaximum::Version => Entry::Live {
            version: u64::MAX,
            session,
        },
        AtMaximum::Revision => {
            let mut record = session.record.clone();
            let slot = record.remove("cart").expect("a cart slot");
            record.insert(slot.with_revision(u64::MAX));
            let mut session: Stored = session;
            session.record = record;
            Entry::Live {
                version: version + 1,
                session,
            }
        }
    };
    assert!(
        store
            .swap(&key, Some(version), Some(damaged))
            .await
            .expect("the store writes"),
        "the damage was not written"
    );
}

/// An entry whose version or slot revision is at `u64::MAX` (only damaged or forged data gets
/// there) is read as nothing: a read gets a fresh session, a write starts a new session under
/// another id (and leaves the damaged one as it is), and a logout carrying its id ends it. It
/// used to hit `attempt to add with overflow` on every write (a wrap to 0 in release builds).
pub(crate) async fn an_entry_at_its_maximum_is_read_as_nothing_and_a_logout_ends_it<
    A: App,
    S: SessionStore + Clone,
>(
    store: S,
) {
    let layer = layer(store.clone());
    let client = browser::<A>(&layer).await;
    for how in [AtMaximum::Version, AtMaximum::Revision] {
        client.forget_session(&layer);
        assert_eq!(client.post("/cart/apple").await.status(), 200);
        let id = client.session(&layer).expect("a session");
        damage(&store, &id, how).await;
        assert!(
            store.load(&key_of(&id)).await.is_err(),
            "{how:?}: the store serves the damaged entry"
        );

        let read = get_as(&client, &layer, Some(&id), "/cart").await;
        assert_eq!(
            (read.status().as_u16(), read.text()),
            (200, NO_CART.to_owned()),
            "{how:?}"
        );
        let write = post_as(&client, &layer, Some(&id), "/cart/pear").await;
        assert_eq!(write.status(), 200, "{how:?}: {}", write.text());
        let fresh = client.session(&layer).expect("a new session");
        assert_ne!(fresh, id, "{how:?}: the damaged id was reused");
        assert_eq!(client.get("/cart").await.status(), 200);

        let out = post_as(&client, &layer, Some(&id), "/logout").await;
        assert_eq!(out.status(), 200, "{how:?}: {}", out.text());
        assert!(
            matches!(store.load(&key_of(&id)).await, Ok(None)),
            "{how:?}: the logout left the damaged entry"
        );
    }
}

/// A session of a user that the store cannot read (here: a version at `u64::MAX`; each store's
/// tests damage its own bytes too) does not switch the user's security controls off: the
/// listing leaves it out (and ends it), "sign out my other devices" and "sign out everywhere"
/// end it, and the cap on the user's sessions still caps. It used to fail the listing on the
/// SQL stores (a 503 for `revoke_others`, an error for `revoke_owner`, the cap silently
/// skipped), and be listed and kept elsewhere.
pub(crate) async fn an_unreadable_session_of_a_user_is_left_out_and_ended<
    A: App,
    S: SessionStore + Clone,
>(
    store: S,
) {
    let clock = clock();
    let layer = owner_layer(store.clone(), &clock);
    let ended = |id: String| {
        let store = store.clone();
        async move { matches!(store.load(&key_of(&id)).await, Ok(None)) }
    };
    let [a, b, c] = [
        browser::<A>(&layer).await,
        browser::<A>(&layer).await,
        browser::<A>(&layer).await,
    ];
    let mut ids = Vec::new();
    for client in [&a, &b, &c] {
        ids.push(sign_in(client, 7).await);
        clock.advance(Duration::from_secs(1));
    }
    damage(&store, &ids[1], AtMaximum::Version).await;
    let listed = layer.sessions_of("7").await.expect("the listing works");
    assert_eq!(
        listed.len(),
        2,
        "the unreadable session is listed: {listed:?}"
    );
    assert!(
        ended(ids[1].clone()).await,
        "the unreadable session is left"
    );

    // "Sign out my other devices": the unreadable one goes too.
    damage(&store, &ids[2], AtMaximum::Version).await;
    let others = a.post("/auth/revoke-others").await;
    assert_eq!(others.status(), 200, "{}", others.text());
    assert!(ended(ids[2].clone()).await, "revoke_others left it");

    // "Sign out everywhere".
    let d = browser::<A>(&layer).await;
    let d_id = sign_in(&d, 7).await;
    damage(&store, &d_id, AtMaximum::Version).await;
    assert!(layer.revoke_owner("7").await.is_ok(), "revoke_owner failed");
    assert!(ended(d_id).await, "revoke_owner left it");
    assert!(ended(ids[0].clone()).await);

    // The cap: two sessions per user; one of them unreadable, a third login keeps two.
    let capped = owner_layer(store.clone(), &clock).max_sessions_per_owner(2);
    let mut capped_ids = Vec::new();
    for _ in 0..2 {
        let client = browser::<A>(&capped).await;
        capped_ids.push(sign_in(&client, 8).await);
        clock.advance(Duration::from_secs(1));
    }
    damage(&store, &capped_ids[1], AtMaximum::Version).await;
    let third = browser::<A>(&capped).await;
    let third_id = sign_in(&third, 8).await;
    let listed = capped.sessions_of("8").await.expect("the listing works");
    assert_eq!(listed.len(), 2, "{listed:?}");
    assert!(ended(capped_ids[1].clone()).await, "the cap passed over it");
    assert!(!ended(third_id).await);
}
