//! What the seam between the frameworks and the request core (issue 22) gives a user, on both
//! adapters: one layer that serves a browser by cookie and an API client by header, a store
//! used without `migrate()` answered as the setup mistake it is (a 500 naming the fix, not a
//! 503 to retry), and a test kit whose `seed` and `inspect` are requests to the same core (a
//! seeded login is bound to its owner; an inspected cookie is checked against revocations).

use std::time::Duration;

use bytes::Bytes;
use http::{HeaderName, Request};
use sessions::SessionId;
use sessions::prelude::*;
use sessions::testing::{TestClient, TestResponse, Transport, inspect, seed};

use super::cookie_owners::revocable_cookie_layer;
use super::handlers::NO_CART;
use super::model::Auth;
use super::owners::{clock, owner_layer};
use super::support::capture_logs;
use super::{App, RecordingStore, browser, layer};

fn id_header() -> HeaderName {
    HeaderName::from_static("x-session-id")
}

/// `POST path` as a page of another site makes a browser send it.
async fn cross_site_post<T: Transport>(client: &TestClient<T>, path: &str) -> TestResponse {
    let request = Request::post(path)
        .header("host", "shop.example")
        .header("sec-fetch-site", "cross-site")
        .header("origin", "https://evil.example")
        .body(Bytes::new())
        .expect("a well-formed request");
    client.send(request).await
}

/// `SessionLayer::cookie_or_header`: a browser's requests (no id header) keep their session in
/// the cookie; an API client's (it sends the header, empty at first) in the header, and are
/// answered in it, never with a cookie. The two are separate sessions of one store, and only
/// the cookie's requests are CSRF-checked.
pub(crate) async fn one_layer_serves_a_browser_by_cookie_and_an_api_client_by_header<A: App>() {
    let store = RecordingStore::memory();
    let layer = layer(store.clone()).cookie_or_header(id_header());
    let page = browser::<A>(&layer).await;
    let api = browser::<A>(&layer).await.id_header(id_header());

    let added = page.post("/cart/apple").await;
    assert_eq!(added.status(), 200, "{}", added.text());
    assert_eq!(added.set_cookies().len(), 1, "the browser gets a cookie");
    assert_eq!(added.header("x-session-id"), None);

    let created = api.post("/cart/pear").await;
    assert_eq!(created.status(), 200, "{}", created.text());
    assert!(
        created.set_cookies().is_empty(),
        "{:?}",
        created.set_cookies()
    );
    let id = created
        .header("x-session-id")
        .expect("the id comes back in the header")
        .to_owned();
    assert!(store.stored(&id).await.is_some());
    assert_eq!(api.session(&layer).as_deref(), Some(id.as_str()));

    assert_eq!(
        page.get("/cart").await.text(),
        "items=apple coupon=- visits=0"
    );
    assert_eq!(
        api.get("/cart").await.text(),
        "items=pear coupon=- visits=0"
    );

    // A page of another site can make the browser post with its cookie: refused. A request
    // that carries the header was not sent by a browser on its own: not checked.
    let forged = cross_site_post(&page, "/cart/bomb").await;
    assert_eq!(forged.status(), 403, "{}", forged.text());
    let scripted = cross_site_post(&api, "/cart/plum").await;
    assert_eq!(scripted.status(), 200, "{}", scripted.text());
    assert_eq!(
        api.get("/cart").await.text(),
        "items=pear,plum coupon=- visits=0"
    );
    assert_eq!(
        page.get("/cart").await.text(),
        "items=apple coupon=- visits=0"
    );

    // A login moves the API session to a new id, told in the header; a logout empties it.
    let login = api.post("/login").await;
    let moved = login.header("x-session-id").expect("the new id").to_owned();
    assert_ne!(moved, id);
    assert!(login.set_cookies().is_empty());
    let logout = api.post("/logout").await;
    assert_eq!(logout.header("x-session-id"), Some(""));
    assert!(logout.set_cookies().is_empty());
    assert_eq!(api.get("/cart").await.text(), NO_CART);
    assert_eq!(
        page.get("/cart").await.text(),
        "items=apple coupon=- visits=0"
    );
}

/// A SQL store used without `migrate()` (its table missing) is the app's setup mistake: every
/// request that needs the session is a 500 with nothing of the app in it (not a 503 a client
/// would retry), and the log says, at `error`, to call `migrate()` at start-up.
pub(crate) async fn a_store_used_without_migrate_is_a_500_and_the_log_names_the_fix<A: App>() {
    let sqlite = SqliteStore::in_memory()
        .await
        .expect("an in-memory database");
    check_not_migrated::<A>(layer(sqlite), "SqliteStore::migrate()").await;
    if let Ok(url) = std::env::var("SESSIONS_TEST_POSTGRES_URL") {
        let postgres = PostgresStore::connect(&url)
            .await
            .expect("the test database")
            .table_name("sessions_never_migrated");
        check_not_migrated::<A>(layer(postgres), "PostgresStore::migrate()").await;
    }
}

async fn check_not_migrated<A: App>(layer: SessionLayer, fix: &str) {
    let client = browser::<A>(&layer).await;
    let (logs, guard) = capture_logs();
    // A new session is created, and so written, only when something is put in it.
    let write = client.post("/cart/apple").await;
    // A request that carries an id loads it.
    let id = SessionId::generate().expect("an id");
    client.set_session(&layer, id.expose());
    let read = client.get("/cart").await;
    let seeded = seed(&layer, super::Cart::default()).await;
    drop(guard);
    for response in [&write, &read] {
        assert_eq!(response.status(), 500, "{}", response.text());
        assert_eq!(response.text(), "internal server error");
        assert!(response.set_cookies().is_empty());
    }
    let rejection = seeded.expect_err("nothing can be stored");
    assert_eq!(rejection.status(), 500);
    let errors = logs.lines_at("ERROR").join("\n");
    assert!(
        errors.contains(&format!("call `{fix}` at start-up")),
        "{errors}"
    );
}

/// `seed` stores what a handler's request stores: a seeded login is bound to its owner (the
/// layer lists it, a revocation of the owner ends it), as `/auth/login` would have bound it.
pub(crate) async fn a_seeded_login_is_bound_to_its_owner<A: App>() {
    let clock = clock();
    let layer = owner_layer(MemoryStore::with_clock(clock.clone()), &clock);
    let token = seed(&layer, Auth { user_id: Some(42) })
        .await
        .expect("seeded");
    assert_eq!(layer.sessions_of("42").await.expect("listed").len(), 1);
    let client = browser::<A>(&layer).await;
    client.set_session(&layer, &token);
    assert_eq!(client.get("/auth/who").await.text(), "user=42");
    assert_eq!(layer.revoke_owner("42").await.expect("revoked"), 1);
    assert_eq!(client.get("/auth/who").await.text(), "nobody");
}

/// `inspect` reads a session as a handler's request would: a cookie session whose owner was
/// revoked is nothing, as it is to the app, not the data the cookie still holds.
pub(crate) async fn an_inspected_cookie_is_checked_against_revocations<A: App>() {
    let clock = clock();
    let layer = revocable_cookie_layer(&clock);
    let token = seed(&layer, Auth { user_id: Some(9) })
        .await
        .expect("sealed");
    let before = inspect::<Auth>(&layer, &token).await.expect("read");
    assert_eq!(before, Some(Auth { user_id: Some(9) }));
    clock.advance(Duration::from_secs(1));
    layer.revoke_owner("9").await.expect("revoked");
    let client = browser::<A>(&layer).await;
    client.set_session(&layer, &token);
    assert_eq!(client.get("/auth/who").await.text(), "nobody");
    let after = inspect::<Auth>(&layer, &token).await.expect("read");
    assert_eq!(after, None, "the revoked cookie is nobody's");
}
