//! The metrics (feature `metrics`) and the session events, as an operator reads them: a day of
//! a shop — a write, a read, a login, a lost race (409), a stale tab after the login (409), a
//! migration, a revocation, a logout, a type the app forgot to register, a store that is down
//! (503), an expiry — driven through each framework on every store, each step's counters
//! asserted by name, labels and value (`metrics-util`'s debugging recorder, whose snapshots
//! are the counts since the last one), and the events the app was told.

#[path = "behaviour/fixtures.rs"]
#[allow(
    dead_code,
    reason = "the metrics tests use the fixtures of four stores"
)]
mod fixtures;
#[path = "metrics_support/mod.rs"]
mod metrics_support;
#[path = "redis_common/mod.rs"]
mod redis_common;
#[path = "replica_common/mod.rs"]
mod replica_common;
#[path = "behaviour/shared_cluster.rs"]
#[allow(dead_code, reason = "the fixtures' cluster arm")]
mod shared_cluster;

use std::time::{Duration, SystemTime};

use sessions::SessionEvent;
use sessions::clock::ManualClock;
use sessions::prelude::*;

use metrics_support::apps::{self, Actix, Axum, Framework, Gate};
use metrics_support::{Flaky, Metrics, Store, seed_v1_cart};

/// The shop's day on `store`, through framework `F`.
async fn a_day_of_the_shop<S: Store, F: Framework>(store: S) {
    let metrics = Metrics::install();
    let clock = ManualClock::at(SystemTime::now());
    let store = Flaky::new(store.prepare(clock.clone()).await);
    let (events, listener) = metrics_support::listener();
    let layer = apps::layer(store.clone(), clock.clone()).on_event(listener);
    let gate = Gate::default();
    let name = S::NAME;
    let a = F::serve(layer.clone(), gate.clone()).await;

    // A first write creates the session.
    assert_eq!(a.post("/cart/apple").await.status(), 200);
    metrics.counted(
        name,
        &[
            ("sessions_created_total", 1),
            ("sessions_saves_total{outcome=stored}", 1),
        ],
    );
    assert_eq!(events.take(), [SessionEvent::Created]);

    // A read writes nothing and counts nothing.
    assert_eq!(a.get("/cart").await.text(), "apple");
    metrics.counted(name, &[]);

    // A login (the owner field, then a new id): one cycle, one save.
    let before_login = a.session(&layer).expect("a session");
    assert_eq!(a.post("/login/7").await.status(), 200);
    metrics.counted(
        name,
        &[
            ("sessions_cycled_total", 1),
            ("sessions_saves_total{outcome=stored}", 1),
        ],
    );
    assert_eq!(events.take(), [SessionEvent::Cycled]);

    // Two tabs change the cart at once (optimistic concurrency): the second save loses, 409.
    let tab = a.clone();
    let slow = tokio::task::spawn_local(async move { tab.post("/slow/pear").await });
    gate.loaded().await;
    assert_eq!(a.post("/cart/fig").await.status(), 200);
    gate.go();
    let lost = slow.await.expect("no panic");
    assert_eq!(lost.status(), 409, "{}", lost.text());
    metrics.counted(
        name,
        &[
            ("sessions_saves_total{outcome=stored}", 1),
            ("sessions_saves_total{outcome=conflict}", 1),
            ("sessions_rejections_total{reason=conflict,status=409}", 1),
        ],
    );

    // A tab still holding the id from before the login writes: 409, the session moved.
    let stale = F::serve(layer.clone(), gate.clone()).await;
    stale.set_session(&layer, &before_login);
    assert_eq!(stale.post("/cart/kiwi").await.status(), 409);
    metrics.counted(
        name,
        &[
            ("sessions_saves_total{outcome=moved}", 1),
            ("sessions_rejections_total{reason=moved,status=409}", 1),
        ],
    );
    assert_eq!(events.take(), []);

    // A session an older deployment stored (a version-1 cart) is migrated when it is read,
    // and written back in the current version (a save).
    let old = seed_v1_cart(&store, &clock).await;
    let returning = F::serve(layer.clone(), gate.clone()).await;
    returning.set_session(&layer, &old);
    assert_eq!(returning.get("/cart").await.text(), "plum");
    metrics.counted(
        name,
        &[
            ("sessions_migrated_total{from=1,to=2,type=cart}", 1),
            ("sessions_saves_total{outcome=stored}", 1),
        ],
    );
    assert_eq!(
        events.take(),
        [SessionEvent::Migrated {
            name: "cart",
            from: 1,
            to: 2
        }]
    );

    // User 7 signs in elsewhere, then signs the other sessions out from the first (on a store
    // that lists the sessions of a user).
    if S::OWNERS {
        let phone = F::serve(layer.clone(), gate.clone()).await;
        assert_eq!(phone.post("/login/7").await.status(), 200);
        let _ = events.take();
        let _ = metrics.take();
        assert_eq!(a.post("/revoke-others").await.text(), "1");
        metrics.counted(name, &[("sessions_revoked_total{how=others}", 1)]);
        assert_eq!(events.take(), [SessionEvent::Revoked { owner: "7".into() }]);

        // An admin ends every session of user 7 (the first one: the phone's is gone already).
        assert_eq!(layer.revoke_owner("7").await.expect("revoked"), 1);
        metrics.counted(name, &[("sessions_revoked_total{how=owner}", 1)]);
        assert_eq!(events.take(), [SessionEvent::Revoked { owner: "7".into() }]);
    }

    // A logout.
    let shopper = F::serve(layer.clone(), gate.clone()).await;
    assert_eq!(shopper.post("/cart/lime").await.status(), 200);
    let _ = (metrics.take(), events.take());
    assert_eq!(shopper.post("/logout").await.status(), 200);
    metrics.counted(name, &[("sessions_destroyed_total", 1)]);
    assert_eq!(events.take(), [SessionEvent::Destroyed]);

    // A route that asks for a type the app did not register: a 500, counted by its cause.
    assert_eq!(shopper.get("/unregistered").await.status(), 500);
    metrics.counted(
        name,
        &[(
            "sessions_rejections_total{reason=not_registered,status=500}",
            1,
        )],
    );

    // A page of another site posts to the shop (a CSRF attempt): refused before the handler.
    let forged = http::Request::post("/cart/gift")
        .header("sec-fetch-site", "cross-site")
        .body(bytes::Bytes::new())
        .expect("a request");
    assert_eq!(shopper.send(forged).await.status(), 403);
    metrics.counted(
        name,
        &[(
            "sessions_rejections_total{reason=csrf_cross_site,status=403}",
            1,
        )],
    );

    // The store goes down between a read and the write: the write is refused with a 503.
    store.fail_writes(true);
    assert_eq!(returning.post("/cart/yuzu").await.status(), 503);
    store.fail_writes(false);
    metrics.counted(
        name,
        &[
            ("sessions_saves_total{outcome=unavailable}", 1),
            (
                "sessions_rejections_total{reason=unavailable,status=503}",
                1,
            ),
        ],
    );
    // Down for reads too: the handler cannot have its cart, a 503 (nothing was to be saved).
    store.fail_loads(true);
    assert_eq!(returning.post("/cart/yuzu").await.status(), 503);
    store.fail_loads(false);
    metrics.counted(
        name,
        &[(
            "sessions_rejections_total{reason=unavailable,status=503}",
            1,
        )],
    );
    assert_eq!(events.take(), []);

    // An expiry: a session left alone for two days, then a request with it, then a sweep.
    let idle = F::serve(layer.clone(), gate.clone()).await;
    assert_eq!(idle.post("/cart/date").await.status(), 200);
    let _ = (metrics.take(), events.take());
    if S::MANUAL_CLOCK {
        clock.advance(Duration::from_secs(2 * 24 * 3600));
        assert_eq!(idle.get("/cart").await.text(), "no cart");
        let seen_on_load = S::SEEN_ON_LOAD;
        let mut expected = Vec::new();
        if seen_on_load {
            expected.push(("sessions_expired_total{seen=load}", 1));
        }
        metrics.counted(name, &expected);
        let told: Vec<SessionEvent> = if seen_on_load {
            vec![SessionEvent::Expired]
        } else {
            Vec::new()
        };
        assert_eq!(events.take(), told);
        // Ended now: the returning session (migrated) and the idle one; the login's forwarding
        // mark is removed but is not a session.
        let removed = store.delete_expired().await.expect("swept");
        metrics.counted(name, &[("sessions_expired_total{seen=sweep}", S::SWEPT)]);
        assert!(removed >= S::SWEPT, "{name}: {removed}");
    }

    // Every store call was timed, under the store's name; every write's size was recorded.
    let timed = metrics.histograms();
    for op in ["load", "update"] {
        let key = format!("sessions_store_seconds{{op={op},store={name}}}");
        assert!(
            timed.get(&key).is_some_and(|samples| !samples.is_empty()),
            "{key} in {timed:?}"
        );
    }
    if name == "redis" {
        // The local cache answered the reads of sessions it had seen written or read.
        let cache = metrics.cache();
        for result in ["hit", "miss"] {
            let key = format!("sessions_cache_total{{result={result}}}");
            assert!(
                cache.get(&key).is_some_and(|n| *n > 0),
                "{key} in {cache:?}"
            );
        }
    }
    let sizes = format!("sessions_record_bytes{{store={name}}}");
    assert!(
        timed
            .get(&sizes)
            .is_some_and(|samples| samples.iter().all(|bytes| *bytes > 0.0)),
        "{sizes} in {timed:?}"
    );
}

macro_rules! every_store {
    ($($test:ident: $fixture:ident, $framework:ty;)*) => {$(
        #[tokio::test]
        async fn $test() {
            metrics_support::run_local(async {
                if let Some(fixture) = fixtures::$fixture().await {
                    a_day_of_the_shop::<_, $framework>(fixture.store.clone()).await;
                    drop(fixture);
                }
            })
            .await;
        }
    )*};
}

every_store! {
    a_day_on_memory_through_axum: memory, Axum;
    a_day_on_memory_through_actix: memory, Actix;
    a_day_on_sqlite_through_axum: sqlite, Axum;
    a_day_on_sqlite_through_actix: sqlite, Actix;
    a_day_on_postgres_through_axum: postgres, Axum;
    a_day_on_postgres_through_actix: postgres, Actix;
    a_day_on_redis_through_axum: redis, Axum;
    a_day_on_redis_through_actix: redis, Actix;
    a_day_on_mysql_through_axum: mysql, Axum;
    a_day_on_mysql_through_actix: mysql, Actix;
    a_day_on_memcached_through_axum: memcached, Axum;
    a_day_on_memcached_through_actix: memcached, Actix;
}

/// The sweeper sets `sessions_live` to the store's live sessions (not the forwarding mark a
/// login leaves), where the store counts cheaply.
async fn the_sweeper_sets_the_live_gauge<S: Store>(store: S) {
    let metrics = Metrics::install();
    let clock = ManualClock::at(SystemTime::now());
    let store = store.prepare(clock.clone()).await;
    let layer = apps::layer(store.clone(), clock);
    for _ in 0..3 {
        let browser = Axum::serve(layer.clone(), Gate::default()).await;
        assert_eq!(browser.post("/cart/apple").await.status(), 200);
        assert_eq!(browser.post("/login/7").await.status(), 200);
    }
    let swept = store.clone();
    let sweeper =
        sessions::store::upkeep::spawn_sweeper(S::NAME, Duration::from_secs(3600), move || {
            Some(swept.clone())
        });
    let key = format!("sessions_live{{store={}}}", S::NAME);
    // The first sweep runs at once; wait for it by what it records, not by the clock.
    let mut live = None;
    for _ in 0..5000 {
        live = metrics.gauges().get(&key).copied();
        if live.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    sweeper.abort();
    assert_eq!(live, Some(3.0), "{key}");
}

#[tokio::test]
async fn the_sweeper_sets_the_live_gauge_of_a_memory_store() {
    let fixture = fixtures::memory().await.expect("always");
    the_sweeper_sets_the_live_gauge(fixture.store.clone()).await;
}

#[tokio::test]
async fn the_sweeper_sets_the_live_gauge_of_a_sqlite_store() {
    let fixture = fixtures::sqlite().await.expect("always");
    the_sweeper_sets_the_live_gauge(fixture.store.clone()).await;
}

#[tokio::test]
async fn the_sweeper_sets_the_live_gauge_of_a_postgres_store() {
    if let Some(fixture) = fixtures::postgres().await {
        the_sweeper_sets_the_live_gauge(fixture.store.clone()).await;
    }
}

#[tokio::test]
async fn the_sweeper_sets_the_live_gauge_of_a_mysql_store() {
    if let Some(fixture) = fixtures::mysql().await {
        the_sweeper_sets_the_live_gauge(fixture.store.clone()).await;
    }
}

/// A callback that panics is caught: the request is answered as decided, its session stored,
/// and the other callbacks are still told.
#[tokio::test]
async fn a_panicking_event_callback_does_not_fail_the_request() {
    let store = MemoryStore::new();
    let (events, listener) = metrics_support::listener();
    let layer = apps::layer(store.clone(), ManualClock::at(SystemTime::now()))
        .on_event(|_: &SessionEvent| panic!("the audit log is down"))
        .on_event(listener);
    let browser = Axum::serve(layer.clone(), Gate::default()).await;
    let response = browser.post("/cart/apple").await;
    assert_eq!(response.status(), 200, "{}", response.text());
    assert_eq!(browser.get("/cart").await.text(), "apple");
    assert_eq!(events.take(), [SessionEvent::Created]);
}

/// The cookie store (the session in the cookie): created, a login, a logout, and a cookie that
/// comes back after its end: counted and told as on a server store.
#[tokio::test]
async fn the_cookie_store_counts_and_tells_the_same_events() {
    let metrics = Metrics::install();
    let clock = ManualClock::at(SystemTime::now());
    let key = sessions::Key::generate(1).expect("a key");
    let cookies = CookieStore::new([key]).expect("a cookie store");
    let (events, listener) = metrics_support::listener();
    let layer = SessionLayer::new(cookies)
        .register::<apps::Cart>()
        .register::<apps::Auth>()
        .clock(clock.clone())
        .on_event(listener);
    let browser = Axum::serve(layer.clone(), Gate::default()).await;
    assert_eq!(browser.post("/cart/apple").await.status(), 200);
    assert_eq!(browser.post("/login/7").await.status(), 200);
    assert_eq!(browser.post("/logout").await.status(), 200);
    metrics.counted(
        "cookie",
        &[
            ("sessions_created_total", 1),
            ("sessions_cycled_total", 1),
            ("sessions_destroyed_total", 1),
            ("sessions_saves_total{outcome=stored}", 2),
        ],
    );
    assert_eq!(
        events.take(),
        [
            SessionEvent::Created,
            SessionEvent::Cycled,
            SessionEvent::Destroyed
        ]
    );
    let later = Axum::serve(layer.clone(), Gate::default()).await;
    assert_eq!(later.post("/cart/apple").await.status(), 200);
    let kept = later.session(&layer).expect("a cookie");
    let _ = (metrics.take(), events.take());
    clock.advance(Duration::from_secs(2 * 24 * 3600));
    let returning = Axum::serve(layer.clone(), Gate::default()).await;
    returning.set_session(&layer, &kept);
    assert_eq!(returning.get("/cart").await.text(), "no cart");
    metrics.counted("cookie", &[("sessions_expired_total{seen=load}", 1)]);
    assert_eq!(events.take(), [SessionEvent::Expired]);
}
