//! Optimistic concurrency (`SessionLayer::optimistic_concurrency(true)`) in every store: of two
//! requests that change one session type concurrently, the second one's save fails with a
//! `Conflict` (a 409 after the handler, or an error a handler can retry on); other session
//! types do not conflict; off, the last writer wins. And, on or off, a field update whose slot
//! another request removed meanwhile is a 409, not a 500.

use sessions::testing::{TestClient, TestResponse, Transport, inspect};
use sessions::{SessionLayer, SessionStore};

use super::model::Prefs;
use super::races_cycle::cart_of;
use super::support::token;
use super::{App, Gate, layer};

/// What the layer says when another request changed what this one would write over.
const CHANGED: &str = "session changed by another request; not saved";

/// Request B (`b_path`) loads the session and waits at the gate; request A (`a_path`) runs to
/// the end (it must succeed); then B goes on. B's response.
async fn race<T: Transport + Clone + 'static>(
    client: &TestClient<T>,
    gate: &Gate,
    b_path: &'static str,
    a_path: &str,
) -> TestResponse {
    let b = tokio::task::spawn_local({
        let client = client.clone();
        async move { client.post(b_path).await }
    });
    gate.reached().await;
    let a = client.post(a_path).await;
    assert_eq!(a.status(), 200, "{}", a.text());
    gate.release();
    b.await.expect("request B")
}

fn optimistic<S: SessionStore + Clone>(store: S, on: bool) -> SessionLayer {
    layer(store).optimistic_concurrency(on)
}

/// B loads the cart and waits; A sets the coupon and finishes; B sets the coupon: B's save is
/// refused whole, the response says so with a 409, and A's coupon stays.
pub(crate) async fn second_writer_of_a_slot_gets_409<A: App, S: SessionStore + Clone>(store: S) {
    let gate = Gate::default();
    let layer = optimistic(store, true);
    let client = A::serve(layer.clone(), gate.clone()).await;
    let id = token(&client.post("/cart/seed").await);

    let b = race(&client, &gate, "/slow/coupon/b", "/coupon/a").await;
    assert_eq!(b.status(), 409, "{}", b.text());
    assert_eq!(b.header("x-session-error"), Some(CHANGED));
    assert!(b.set_cookies().is_empty(), "a refused save set a cookie");
    let cart = cart_of(&layer, &id).await.expect("the session lives");
    assert_eq!(
        cart.coupon.as_deref(),
        Some("a"),
        "the first writer's change was lost"
    );
    assert_eq!(cart.items, ["seed"]);

    // Without a race the same request goes through.
    let c = client.post("/coupon/c").await;
    assert_eq!(c.status(), 200, "{}", c.text());
    let cart = cart_of(&layer, &id).await.expect("the session lives");
    assert_eq!(cart.coupon.as_deref(), Some("c"));
}

/// B pushes an item and, before its in-handler save, A pushes another: B's save conflicts, B
/// reloads, pushes again onto A's cart and saves. Both items are kept, once each.
pub(crate) async fn handler_retries_after_a_conflict<A: App, S: SessionStore + Clone>(store: S) {
    let gate = Gate::default();
    let layer = optimistic(store, true);
    let client = A::serve(layer.clone(), gate.clone()).await;
    let id = token(&client.post("/cart/seed").await);

    let b = race(&client, &gate, "/retry/b", "/cart/a").await;
    assert_eq!(b.status(), 200, "{}", b.text());
    assert_eq!(b.text(), "attempts=2");
    let cart = cart_of(&layer, &id).await.expect("the session lives");
    assert_eq!(cart.items, ["seed", "a", "b"]);

    // Uncontended, the first attempt is saved, and the layer has nothing left to write. (The
    // gate keeps the permit given here, so the first attempt does not wait.)
    gate.release();
    let c = client.post("/retry/c").await;
    assert_eq!(
        (c.status().as_u16(), c.text().as_str()),
        (200, "attempts=1")
    );
    let cart = cart_of(&layer, &id).await.expect("the session lives");
    assert_eq!(cart.items, ["seed", "a", "b", "c"]);
}

/// The unit of conflict is the slot: a change to `Prefs` racing a change to `Cart` is no
/// conflict, and both are kept.
pub(crate) async fn other_slots_do_not_conflict<A: App, S: SessionStore + Clone>(store: S) {
    let gate = Gate::default();
    let layer = optimistic(store, true);
    let client = A::serve(layer.clone(), gate.clone()).await;
    let id = token(&client.post("/cart/seed").await);

    let b = race(&client, &gate, "/slow/coupon/b", "/lang/fr").await;
    assert_eq!(b.status(), 200, "{}", b.text());
    let cart = cart_of(&layer, &id).await.expect("the session lives");
    assert_eq!(cart.coupon.as_deref(), Some("b"));
    let prefs = inspect::<Prefs>(&layer, &id)
        .await
        .expect("decodes")
        .expect("prefs are stored");
    assert_eq!(prefs.lang, "fr");
}

/// The default: no revisions are compared and the second writer of a field wins.
pub(crate) async fn last_writer_wins_when_off<A: App, S: SessionStore + Clone>(store: S) {
    let gate = Gate::default();
    let layer = optimistic(store, false);
    let client = A::serve(layer.clone(), gate.clone()).await;
    let id = token(&client.post("/cart/seed").await);

    let b = race(&client, &gate, "/slow/coupon/b", "/coupon/a").await;
    assert_eq!(b.status(), 200, "{}", b.text());
    let cart = cart_of(&layer, &id).await.expect("the session lives");
    assert_eq!(cart.coupon.as_deref(), Some("b"));
}

/// B loads the cart and waits; A removes the cart slot; B's field update has no slot to go
/// into. Changed meaning: this was a 500; it is a 409 now ("changed by another request"), with
/// optimistic concurrency off as on, and the removal stands.
pub(crate) async fn a_field_update_of_a_removed_slot_is_409<A: App, S: SessionStore + Clone>(
    store: S,
) {
    for on in [false, true] {
        let gate = Gate::default();
        let layer = optimistic(store.clone(), on);
        let client = A::serve(layer.clone(), gate.clone()).await;
        assert_eq!(client.post("/all").await.status(), 200);
        let id = client.session(&layer).expect("created");

        let b = race(&client, &gate, "/slow/coupon/b", "/forget-cart").await;
        assert_eq!(b.status(), 409, "optimistic {on}: {}", b.text());
        assert_eq!(
            b.header("x-session-error"),
            Some(CHANGED),
            "optimistic {on}"
        );
        assert!(b.set_cookies().is_empty());
        assert_eq!(
            cart_of(&layer, &id).await,
            None,
            "optimistic {on}: the removed cart came back"
        );
        let prefs = inspect::<Prefs>(&layer, &id).await.expect("decodes");
        assert!(
            prefs.is_some_and(|prefs| prefs.dark),
            "optimistic {on}: the other slot went"
        );
    }
}
