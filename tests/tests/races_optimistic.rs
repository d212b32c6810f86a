//! Optimistic concurrency (`SessionLayer::optimistic_concurrency(true)`) in every store,
//! through a real `Router`: of two requests that change one session type concurrently, the
//! second one's save fails with a `Conflict` (a 409 after the handler, or an error a handler
//! can retry on); other session types do not conflict; off, the last writer wins.
//!
//! Each scenario runs once per store (`<scenario>::memory`, `::sqlite`, `::postgres`,
//! `::redis`); the server stores print a `skipped: set ...` line without their variable.

mod http_common;
mod races_common;
mod redis_common;

use axum::extract::Path;
use axum::routing::post;
use axum::{Extension, Router};
use http::StatusCode;
use http_common::Reply;
use sessions::SessionRejection;
use sessions::prelude::*;

use http_common::{Cart, Prefs, post_with, routes};
use races_common::{Gate, every_store, stored_cart};

every_store!(
    second_writer_of_a_slot_gets_409,
    handler_retries_after_a_conflict,
    other_slots_do_not_conflict,
    last_writer_wins_when_off,
);

/// Pushes an item and saves inside the handler; on a conflict it reloads and tries again.
/// The first attempt waits at the gate between its load and its save.
async fn retrying_item(
    Extension(gate): Extension<Gate>,
    session: SessionHandle,
    Path(sku): Path<String>,
) -> Result<String, SessionRejection> {
    for attempt in 1..=5 {
        {
            let mut cart = session.get_or_default::<Cart>().await?;
            cart.items_mut().push(sku.clone());
        }
        if attempt == 1 {
            gate.pause().await;
        }
        match session.save().await {
            Ok(()) => return Ok(format!("attempts={attempt}")),
            Err(SessionRejection::Conflict(_)) => session.reload().await?,
            Err(other) => return Err(other),
        }
    }
    Ok("gave up".into())
}

/// Sets only `Prefs::lang`.
async fn set_lang(mut prefs: Typed<Prefs>, Path(lang): Path<String>) -> &'static str {
    prefs.set_lang(lang);
    "lang set"
}

/// Request B (`b_path`) loads the session and waits at the gate; request A (`a_path`) runs to
/// the end (it must succeed); then B goes on. B's reply.
async fn race(app: &Router, gate: &Gate, id: &str, b_path: &'static str, a_path: &str) -> Reply {
    let b = tokio::spawn({
        let (app, id) = (app.clone(), id.to_owned());
        async move { post_with(&app, b_path, Some(&id)).await }
    });
    gate.reached().await;
    let a = post_with(app, a_path, Some(id)).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    gate.release();
    b.await.expect("request B")
}

fn app<S: SessionStore + Clone>(store: S, gate: Gate, optimistic: bool) -> Router {
    routes()
        .route("/slow/coupon/{code}", post(races_common::slow_coupon))
        .route("/retry/{sku}", post(retrying_item))
        .route("/lang/{lang}", post(set_lang))
        .layer(Extension(gate))
        .layer(
            SessionLayer::new(store)
                .register::<Cart>()
                .register::<Prefs>()
                .optimistic_concurrency(optimistic),
        )
}

/// B loads the cart and waits; A sets the coupon and finishes; B sets the coupon: B's save is
/// refused whole, the response says so with a 409, and A's coupon stays.
async fn second_writer_of_a_slot_gets_409<S: SessionStore + Clone>(store: S) {
    let gate = Gate::default();
    let app = app(store.clone(), gate.clone(), true);
    let id = post_with(&app, "/cart/seed", None).await.cookie();

    let b = race(&app, &gate, &id, "/slow/coupon/b", "/coupon/a").await;
    assert_eq!(b.status, StatusCode::CONFLICT, "{}", b.body);
    assert_eq!(
        b.header("x-session-error"),
        Some("session changed by another request; not saved")
    );
    assert!(b.set_cookies().is_empty(), "a refused save set a cookie");
    let cart = stored_cart(&store, &id).await.expect("the session lives");
    assert_eq!(
        cart.coupon.as_deref(),
        Some("a"),
        "the first writer's change was lost"
    );
    assert_eq!(cart.items, ["seed"]);

    // Without a race the same request goes through.
    let c = post_with(&app, "/coupon/c", Some(&id)).await;
    assert_eq!(c.status, StatusCode::OK, "{}", c.body);
    let cart = stored_cart(&store, &id).await.expect("the session lives");
    assert_eq!(cart.coupon.as_deref(), Some("c"));
}

/// B pushes an item and, before its in-handler save, A pushes another: B's save conflicts, B
/// reloads, pushes again onto A's cart and saves. Both items are kept, once each.
async fn handler_retries_after_a_conflict<S: SessionStore + Clone>(store: S) {
    let gate = Gate::default();
    let app = app(store.clone(), gate.clone(), true);
    let id = post_with(&app, "/cart/seed", None).await.cookie();

    let b = race(&app, &gate, &id, "/retry/b", "/cart/a").await;
    assert_eq!(b.status, StatusCode::OK, "{}", b.body);
    assert_eq!(b.body, "attempts=2");
    let cart = stored_cart(&store, &id).await.expect("the session lives");
    assert_eq!(cart.items, ["seed", "a", "b"]);

    // Uncontended, the first attempt is saved, and the layer has nothing left to write. (The
    // gate keeps the permit given here, so the first attempt does not wait.)
    gate.release();
    let c = post_with(&app, "/retry/c", Some(&id)).await;
    assert_eq!((c.status, c.body.as_str()), (StatusCode::OK, "attempts=1"));
    let cart = stored_cart(&store, &id).await.expect("the session lives");
    assert_eq!(cart.items, ["seed", "a", "b", "c"]);
}

/// The unit of conflict is the slot: a change to `Prefs` racing a change to `Cart` is no
/// conflict, and both are kept.
async fn other_slots_do_not_conflict<S: SessionStore + Clone>(store: S) {
    let gate = Gate::default();
    let app = app(store.clone(), gate.clone(), true);
    let id = post_with(&app, "/cart/seed", None).await.cookie();

    let b = race(&app, &gate, &id, "/slow/coupon/b", "/lang/fr").await;
    assert_eq!(b.status, StatusCode::OK, "{}", b.body);
    let cart = stored_cart(&store, &id).await.expect("the session lives");
    assert_eq!(cart.coupon.as_deref(), Some("b"));
    let stored = races_common::stored(&store, &id)
        .await
        .expect("the session lives");
    let mut registry = sessions::Registry::new();
    registry.register::<Prefs>().expect("register Prefs");
    let prefs = registry
        .load::<Prefs>(&stored.record)
        .expect("prefs decode")
        .expect("prefs are stored");
    assert_eq!(prefs.lang(), "fr");
}

/// The default: no revisions are compared and the second writer of a field wins.
async fn last_writer_wins_when_off<S: SessionStore + Clone>(store: S) {
    let gate = Gate::default();
    let app = app(store.clone(), gate.clone(), false);
    let id = post_with(&app, "/cart/seed", None).await.cookie();

    let b = race(&app, &gate, &id, "/slow/coupon/b", "/coupon/a").await;
    assert_eq!(b.status, StatusCode::OK, "{}", b.body);
    let cart = stored_cart(&store, &id).await.expect("the session lives");
    assert_eq!(cart.coupon.as_deref(), Some("b"));
}
