//! `cycle_id()` (login) racing a save on the same old id, in every store, through a real
//! `Router`. Afterwards exactly one live session holds the data: the old key is gone (no
//! orphan) and the new id loads the data (no duplicate). Live sessions are counted by loading
//! both keys from the store.
//!
//! The outcome for the save (request B) depends on the order, and each test asserts it:
//!
//! * the login finishes first (`save_after_the_cycle`): B's save finds the old session
//!   `Missing`, writes nothing and sets no cookie; B's change is dropped (logged), as after a
//!   logout — it is not in the new session and the old one is not brought back;
//! * the save finishes first (`save_before_the_cycle`): B's save lands on the old session and
//!   the cycle moves the data as stored when it finishes, so B's change is in the new session.
//!
//! Each scenario runs once per store (`<scenario>::memory`, `::sqlite`, `::postgres`,
//! `::redis`); the server stores print a `skipped: set ...` line without their variable.

mod http_common;
mod races_common;
mod redis_common;

use http::StatusCode;
use sessions::SessionStore;

use http_common::{capture_logs, get_with, post_with};
use races_common::{Gate, app, every_store, live_cookies, stored, stored_cart};

every_store!(save_after_the_cycle, save_before_the_cycle);

/// B loads the session and blocks; A logs in (cycles) and finishes; B pushes an item and finishes.
async fn save_after_the_cycle<S: SessionStore + Clone>(store: S) {
    let (logs, _guard) = capture_logs();
    let gate = Gate::default();
    let app = app(store.clone(), gate.clone());
    let old = post_with(&app, "/cart/seed", None).await.cookie();

    // B: loads the old session, then waits inside its handler.
    let save = tokio::spawn({
        let (app, old) = (app.clone(), old.clone());
        async move { post_with(&app, "/slow/cart/b", Some(&old)).await }
    });
    gate.reached().await;

    // A: logs in, all the way.
    let login = post_with(&app, "/login", Some(&old)).await;
    assert_eq!(login.status, StatusCode::OK, "{}", login.body);
    let new = login.cookie();
    assert_ne!(new, old);

    // B goes on and finishes.
    gate.release();
    let save = save.await.expect("request B");
    assert_eq!(save.status, StatusCode::OK, "{}", save.body);
    assert_eq!(save.body, "items=seed,b coupon=- visits=0");
    // The clean outcome: the save found the old session missing, wrote nothing, set nothing.
    assert!(
        save.set_cookies().is_empty(),
        "B set a cookie for a session that moved: {:?}",
        save.set_cookies()
    );
    assert!(
        logs.text().contains(
            "session ended while the request ran (logout or expiry); its changes are dropped"
        ),
        "B's save did not find the old session missing:\n{}",
        logs.text()
    );

    // Exactly one live session: not the old key (no orphan, not resurrected) ...
    assert!(
        stored(&store, &old).await.is_none(),
        "the old session is still (or again) stored"
    );
    // ... but the new id, with the login's change and without B's.
    let cart = stored_cart(&store, &new).await.expect("the new session");
    assert_eq!(
        cart.items,
        ["seed"],
        "B's dropped change reached the new session"
    );
    assert_eq!(cart.visits, 1);
    assert_eq!(
        get_with(&app, "/whoami", Some(&new)).await.body,
        "cart=items=seed coupon=- visits=1 stored=true"
    );
    assert_eq!(
        get_with(&app, "/whoami", Some(&old)).await.body,
        "cart=none stored=false"
    );
}

/// A logs in (cycles) and blocks before it finishes; B pushes an item on the old id and
/// finishes; A finishes.
async fn save_before_the_cycle<S: SessionStore + Clone>(store: S) {
    let gate = Gate::default();
    let app = app(store.clone(), gate.clone());
    let old = post_with(&app, "/cart/seed", None).await.cookie();

    // A: loads the old session, bumps visits, asks for a new id, then waits.
    let login = tokio::spawn({
        let (app, old) = (app.clone(), old.clone());
        async move { post_with(&app, "/slow/login", Some(&old)).await }
    });
    gate.reached().await;

    // B: saves an item on the old id, all the way: it is told it worked.
    let save = post_with(&app, "/cart/b", Some(&old)).await;
    assert_eq!(save.status, StatusCode::OK, "{}", save.body);
    assert_eq!(save.body, "items=seed,b coupon=- visits=0");
    for cookie in live_cookies(&save) {
        assert_eq!(cookie, old, "B's save handed out another id");
    }
    let before = stored_cart(&store, &old).await.expect("the old session");
    assert_eq!(before.items, ["seed", "b"]);

    // A finishes: the data moves to a new id.
    gate.release();
    let login = login.await.expect("request A");
    assert_eq!(login.status, StatusCode::OK, "{}", login.body);
    let new = login.cookie();
    assert_ne!(new, old);

    // Exactly one live session: the old key is gone ...
    assert!(
        stored(&store, &old).await.is_none(),
        "the old session is still stored (an orphan)"
    );
    // ... and the new one holds both: the login's change and B's acknowledged item.
    let cart = stored_cart(&store, &new).await.expect("the new session");
    assert_eq!(
        cart.items,
        ["seed", "b"],
        "B's acknowledged save was lost by the cycle"
    );
    assert_eq!(cart.visits, 1);
    assert_eq!(
        get_with(&app, "/whoami", Some(&new)).await.body,
        "cart=items=seed,b coupon=- visits=1 stored=true"
    );
}
