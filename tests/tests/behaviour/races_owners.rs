//! The owners' races (issue 15), in every store:
//!
//! 1. a session is revoked while a request of it is in flight (held at a [`Gate`] after it
//!    loaded the session): the request must not save the session back to life — neither by a
//!    save to its id nor by a login's move to a new id — must not answer 2xx as if its write
//!    were stored (it gets the 409 of a session that ended), and must not set its cookie again;
//! 2. two logins of one user at once under `max_sessions_per_owner(1)`: at most one session of
//!    the user survives, and the loser is not told it is signed in with a session that is gone;
//! 3. a login of a session racing a revocation or a listing of its user's sessions (issue 20):
//!    "sign out my other devices" keeps the session wherever the login moved it, a login is never
//!    a 503 because a revocation ended its half-filed copy, and a listing shows the session once,
//!    under the id its client holds (held with a store that pauses the login between filing the
//!    session under its new id and marking the old one, or the revocation before it lists).
//!
//! The same in-flight race for cookie sessions (a `CookieStore` with a revocation list) is in
//! `cookie_owners.rs`.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use sessions::error::StoreError;
use sessions::store::{Edit, Entry, SessionKey, Stored};
use sessions::testing::{TestClient, Transport};
use sessions::{SessionLayer, SessionStore};

use super::owners::{assert_revoked, clock, listing, owner_layer, references_of, sign_in};
use super::races_cycle::entry_of;
use super::races_logout::ENDED;
use super::support::{live_cookies, token};
use super::{App, Gate, browser};

/// A revoked session's request in flight (it loaded the cart and waits) changes the cart after
/// the revocation: it is a 409 that says the session ended, sets no cookie, and the session
/// stays revoked.
pub(crate) async fn a_revoke_beats_a_slow_write_of_the_revoked_session<
    A: App,
    S: SessionStore + Clone,
>(
    store: S,
) {
    let clock = clock();
    let layer = owner_layer(store.clone(), &clock);
    let gate = Gate::default();
    let phone = A::serve(layer.clone(), gate.clone()).await;
    let here = browser::<A>(&layer).await;
    let phone_id = sign_in(&phone, 42).await;
    clock.advance(Duration::from_secs(1));
    sign_in(&here, 42).await;
    let reference = listing(&here.get("/auth/sessions").await.text())
        .into_iter()
        .find(|entry| !entry.current)
        .expect("the phone's session")
        .reference;

    let slow = tokio::task::spawn_local({
        let phone = phone.clone();
        async move { phone.post("/slow/cart/late").await }
    });
    gate.reached().await;
    let revoked = here.post(&format!("/auth/revoke/{reference}")).await;
    assert_eq!(revoked.text(), "revoked=true");
    gate.release();

    let late = slow.await.expect("the phone's request");
    assert_eq!(late.status(), 409, "{}", late.text());
    assert_eq!(late.header("x-session-error"), Some(ENDED));
    assert!(
        late.set_cookies().is_empty(),
        "the revoked session's request set a cookie: {:?}",
        late.set_cookies()
    );
    assert!(
        entry_of(&store, &phone_id).await.is_none(),
        "the late write brought the revoked session back"
    );
    assert_eq!(references_of(&layer, "42").await.len(), 1);
    assert_revoked(&phone, &layer, "the phone").await;
    assert_eq!(here.get("/auth/who").await.text(), "user=42");
}

/// A revoked session's handler saving in the handler (`save()` after the revocation): the save
/// is refused with the 409 of a session that ended — the handler answers it — and nothing is
/// stored or set.
pub(crate) async fn a_revoke_beats_a_handler_save_of_the_revoked_session<
    A: App,
    S: SessionStore + Clone,
>(
    store: S,
) {
    let clock = clock();
    let layer = owner_layer(store.clone(), &clock);
    let gate = Gate::default();
    let phone = A::serve(layer.clone(), gate.clone()).await;
    let phone_id = sign_in(&phone, 42).await;

    let slow = tokio::task::spawn_local({
        let phone = phone.clone();
        async move { phone.post("/slow/save/late").await }
    });
    gate.reached().await;
    assert_eq!(layer.revoke_owner("42").await.expect("revoked"), 1);
    gate.release();

    let late = slow.await.expect("the phone's request");
    assert_eq!(late.status(), 409, "{}", late.text());
    assert!(
        live_cookies(&late).is_empty(),
        "the revoked session's save set a cookie: {:?}",
        late.set_cookies()
    );
    assert!(
        entry_of(&store, &phone_id).await.is_none(),
        "the handler's save brought the revoked session back"
    );
    assert!(references_of(&layer, "42").await.is_empty());
    assert_revoked(&phone, &layer, "the phone").await;
}

/// A revoked session's login in flight (it signs in again: `cycle_id()`, written after the
/// gate) while `revoke_owner` ends every session of the user: the login does not move the
/// revoked session to a new id; it is a 409 and hands out no id.
pub(crate) async fn a_revoke_owner_beats_a_slow_login_of_the_revoked_session<
    A: App,
    S: SessionStore + Clone,
>(
    store: S,
) {
    let clock = clock();
    let layer = owner_layer(store.clone(), &clock);
    let gate = Gate::default();
    let phone = A::serve(layer.clone(), gate.clone()).await;
    let phone_id = sign_in(&phone, 42).await;

    let slow = tokio::task::spawn_local({
        let phone = phone.clone();
        async move { phone.post("/slow/auth/login/42").await }
    });
    gate.reached().await;
    assert_eq!(layer.revoke_owner("42").await.expect("revoked"), 1);
    gate.release();

    let late = slow.await.expect("the phone's login");
    assert_eq!(late.status(), 409, "{}", late.text());
    assert_eq!(late.header("x-session-error"), Some(ENDED));
    assert!(
        live_cookies(&late).is_empty(),
        "the revoked session's login handed out an id: {:?}",
        late.set_cookies()
    );
    assert!(entry_of(&store, &phone_id).await.is_none());
    assert!(
        references_of(&layer, "42").await.is_empty(),
        "the login brought the revoked session back under a new id"
    );
    assert_revoked(&phone, &layer, "the phone").await;
}

/// A store that holds the first `owned_by` call (the first login's cap) at a gate, so that a
/// second login runs all the way meanwhile.
#[derive(Clone)]
struct HoldFirstCap<S> {
    inner: S,
    gate: Gate,
    held: Arc<AtomicBool>,
}

#[async_trait::async_trait]
impl<S: SessionStore + Clone> SessionStore for HoldFirstCap<S> {
    async fn load(&self, key: &SessionKey) -> Result<Option<Entry>, StoreError> {
        self.inner.load(key).await
    }

    async fn swap(
        &self,
        key: &SessionKey,
        current: Option<u64>,
        new: Option<Entry>,
    ) -> Result<bool, StoreError> {
        self.inner.swap(key, current, new).await
    }

    async fn update(
        &self,
        key: &SessionKey,
        version: u64,
        session: Stored,
        edit: &mut Edit<'_>,
    ) -> Result<Option<Stored>, StoreError> {
        self.inner.update(key, version, session, edit).await
    }

    async fn owned_by(&self, owner: &str) -> Result<Vec<(SessionKey, Entry)>, StoreError> {
        if !self.held.swap(true, Ordering::SeqCst) {
            self.gate.pause().await;
        }
        self.inner.owned_by(owner).await
    }
}

/// Two logins of user 5 at once under a cap of 1, in the order that hides the loser from
/// itself: the first login writes and is held before its cap; the second (a second later on
/// the clock: the newer) writes, caps — ending the first — and answers; then the first goes
/// on. One session of the user survives, the second's; the first is not answered 2xx with a
/// cookie of a session that is gone (it gets a 409 and no id), and its browser is nobody.
/// `stored`: both browsers hold a stored session (a cart) before they sign in, so the logins
/// move stored sessions (`cycle_id()`) instead of creating new ones.
async fn two_logins_at_once_under_a_cap_of_one<A: App, S: SessionStore + Clone>(
    store: S,
    stored: bool,
) {
    let clock = clock();
    let cap_gate = Gate::default();
    let held = HoldFirstCap {
        inner: store.clone(),
        gate: cap_gate.clone(),
        held: Arc::new(AtomicBool::new(false)),
    };
    let layer = owner_layer(held.clone(), &clock).max_sessions_per_owner(1);
    let (first, second) = (browser::<A>(&layer).await, browser::<A>(&layer).await);
    if stored {
        // (a cart binds nobody: no cap runs, the first one is still to be held)
        for browser in [&first, &second] {
            assert_eq!(browser.post("/cart/apple").await.status(), 200);
        }
    }

    let first_login = tokio::task::spawn_local({
        let first = first.clone();
        async move { first.post("/auth/login/5").await }
    });
    cap_gate.reached().await;
    clock.advance(Duration::from_secs(1));
    let second_id = sign_in(&second, 5).await;
    cap_gate.release();
    let first_login = first_login.await.expect("the first login");

    let survivors = references_of(&layer, "5").await;
    assert_eq!(survivors.len(), 1, "a cap of 1 kept {survivors:?}");
    assert!(
        entry_of(&store, &second_id).await.is_some(),
        "the newer login lost"
    );
    assert_eq!(second.get("/auth/who").await.text(), "user=5");

    assert!(
        !first_login.status().is_success() || live_cookies(&first_login).is_empty(),
        "the loser was told it is signed in ({}: {}), with a session that is gone: {:?}",
        first_login.status(),
        first_login.text(),
        first_login.set_cookies()
    );
    assert_eq!(first_login.status(), 409, "{}", first_login.text());
    assert_eq!(first_login.header("x-session-error"), Some(ENDED));
    assert_eq!(first.get("/auth/who").await.text(), "nobody");
}

/// [`two_logins_at_once_under_a_cap_of_one`] for two new sessions.
pub(crate) async fn two_logins_at_once_under_a_cap_of_one_the_loser_is_told<
    A: App,
    S: SessionStore + Clone,
>(
    store: S,
) {
    two_logins_at_once_under_a_cap_of_one::<A, S>(store, false).await;
}

/// [`two_logins_at_once_under_a_cap_of_one`] for two stored sessions (the logins cycle them).
pub(crate) async fn two_logins_of_stored_sessions_at_once_under_a_cap_of_one_the_loser_is_told<
    A: App,
    S: SessionStore + Clone,
>(
    store: S,
) {
    two_logins_at_once_under_a_cap_of_one::<A, S>(store, true).await;
}

/// Two logins of user 5 at once under a cap of 1, both held in their handlers and let go
/// together, interleaving as the store's round trips fall: whatever the order, exactly one
/// session of the user survives, its login was answered 2xx with its id, and a login answered
/// otherwise handed out no id. (A login that finished before the other began may be told it is
/// signed in and then lose its session to the newer login: that is the cap, not a race; the
/// order in which the loser learns too late is pinned down above.)
pub(crate) async fn two_free_running_logins_under_a_cap_of_one_leave_one<
    A: App,
    S: SessionStore + Clone,
>(
    store: S,
) {
    let clock = clock();
    let layer = owner_layer(store.clone(), &clock).max_sessions_per_owner(1);
    let gates = [Gate::default(), Gate::default()];
    let mut browsers = Vec::new();
    for gate in &gates {
        browsers.push(A::serve(layer.clone(), gate.clone()).await);
    }
    let logins: Vec<_> = browsers
        .iter()
        .map(|browser| {
            let browser = browser.clone();
            tokio::task::spawn_local(async move { browser.post("/slow/auth/login/5").await })
        })
        .collect();
    for gate in &gates {
        gate.reached().await;
    }
    for gate in &gates {
        gate.release();
    }
    let mut answers = Vec::new();
    for login in logins {
        answers.push(login.await.expect("a login"));
    }

    let survivors = references_of(&layer, "5").await;
    assert_eq!(
        survivors.len(),
        1,
        "a cap of 1 kept {survivors:?}: {answers:?}"
    );
    let mut winners = 0;
    for (browser, answer) in browsers.iter().zip(&answers) {
        let told = answer.status().is_success() && !live_cookies(answer).is_empty();
        if browser.get("/auth/who").await.text() == "user=5" {
            winners += 1;
            assert!(told, "the survivor's login was not told: {answer:?}");
        } else if !told {
            assert_eq!(answer.status(), 409, "{}", answer.text());
            assert!(
                live_cookies(answer).is_empty(),
                "{:?}",
                answer.set_cookies()
            );
        }
    }
    assert_eq!(winners, 1, "{answers:?}");
}

// ---- a login racing a revocation or a listing (issue 20, defects 6 and 8) ------------------

/// Where [`Pausing`] holds the first call of its kind.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Pause {
    /// The first listing of an owner's sessions (`owned_by`).
    Listing,
    /// The first forwarding mark a login writes (`swap` to an `Entry::Moved`): the login has
    /// filed the session under its new key, and not yet marked the old one.
    Mark,
}

/// A store that holds the first call of one kind at a gate, so that other requests run all the
/// way meanwhile.
#[derive(Clone)]
struct Pausing<S> {
    inner: S,
    gate: Gate,
    at: Pause,
    held: Arc<AtomicBool>,
}

impl<S> Pausing<S> {
    fn new(inner: S, at: Pause) -> Self {
        Self {
            inner,
            gate: Gate::default(),
            at,
            held: Arc::new(AtomicBool::new(false)),
        }
    }

    async fn maybe_pause(&self, here: Pause) {
        if self.at == here && !self.held.swap(true, Ordering::SeqCst) {
            self.gate.pause().await;
        }
    }
}

#[async_trait::async_trait]
impl<S: SessionStore + Clone> SessionStore for Pausing<S> {
    async fn load(&self, key: &SessionKey) -> Result<Option<Entry>, StoreError> {
        self.inner.load(key).await
    }

    async fn swap(
        &self,
        key: &SessionKey,
        current: Option<u64>,
        new: Option<Entry>,
    ) -> Result<bool, StoreError> {
        if matches!(new, Some(Entry::Moved { .. })) {
            self.maybe_pause(Pause::Mark).await;
        }
        self.inner.swap(key, current, new).await
    }

    async fn update(
        &self,
        key: &SessionKey,
        version: u64,
        session: Stored,
        edit: &mut Edit<'_>,
    ) -> Result<Option<Stored>, StoreError> {
        self.inner.update(key, version, session, edit).await
    }

    async fn owned_by(&self, owner: &str) -> Result<Vec<(SessionKey, Entry)>, StoreError> {
        self.maybe_pause(Pause::Listing).await;
        self.inner.owned_by(owner).await
    }
}

/// A user signed in on a phone and on a laptop (the laptop a second later): the layer over a
/// store pausing `at`, the phone, the laptop, and the laptop's id.
async fn phone_and_laptop<A: App, S: SessionStore + Clone>(
    store: S,
    at: Pause,
) -> (
    SessionLayer,
    Pausing<S>,
    TestClient<impl Transport + Clone + 'static>,
    TestClient<impl Transport + Clone + 'static>,
    String,
) {
    let clock = clock();
    let pausing = Pausing::new(store, at);
    let layer = owner_layer(pausing.clone(), &clock);
    let phone = A::serve(layer.clone(), Gate::default()).await;
    let laptop = A::serve(layer.clone(), Gate::default()).await;
    sign_in(&phone, 42).await;
    clock.advance(Duration::from_secs(1));
    let laptop_id = sign_in(&laptop, 42).await;
    (layer, pausing, phone, laptop, laptop_id)
}

/// "Sign out my other devices" from one tab of the laptop while another tab signs in again
/// (the login moves the session to a new id) before the revocation lists the user's sessions:
/// the revocation keeps the laptop's session where the login moved it and ends the phone's
/// only. (It used to keep the id the request carried and end the moved session as "another
/// session of the user": the user was signed out everywhere.)
pub(crate) async fn revoke_others_keeps_the_session_a_login_moved_meanwhile<
    A: App,
    S: SessionStore + Clone,
>(
    store: S,
) {
    let (layer, pausing, phone, laptop, old) =
        phone_and_laptop::<A, S>(store.clone(), Pause::Listing).await;

    let revoking = tokio::task::spawn_local({
        let tab = laptop.clone();
        async move { tab.post("/auth/revoke-others").await }
    });
    pausing.gate.reached().await;
    let new = sign_in(&laptop, 42).await;
    assert_ne!(new, old);
    pausing.gate.release();
    let revoked = revoking.await.expect("the revoking tab");
    assert_eq!(revoked.status(), 200, "{}", revoked.text());
    assert_eq!(revoked.text(), "revoked=1", "only the phone's session ends");

    assert_eq!(laptop.get("/auth/who").await.text(), "user=42");
    assert!(
        entry_of(&store, &new).await.is_some(),
        "the moved session was ended"
    );
    assert_revoked(&phone, &layer, "the phone").await;
    assert_eq!(references_of(&layer, "42").await.len(), 1);
}

/// The same, with the login half done when the revocation runs: it has filed the session under
/// its new id and not yet marked the old one. The revocation keeps the session (it is still the
/// one under the id the request carried) and does not end its new copy as another session;
/// the login then completes, and the laptop is signed in.
pub(crate) async fn revoke_others_during_a_login_keeps_the_session_being_moved<
    A: App,
    S: SessionStore + Clone,
>(
    store: S,
) {
    let (layer, pausing, phone, laptop, old) =
        phone_and_laptop::<A, S>(store.clone(), Pause::Mark).await;

    let login = tokio::task::spawn_local({
        let tab = laptop.clone();
        async move { tab.post("/auth/login/42").await }
    });
    pausing.gate.reached().await;
    // (The other tab still holds the old id: the login has not answered.)
    let revoked = laptop.post("/auth/revoke-others").await;
    assert_eq!(revoked.status(), 200, "{}", revoked.text());
    assert_eq!(revoked.text(), "revoked=1", "only the phone's session ends");
    pausing.gate.release();
    let login = login.await.expect("the login");
    assert_eq!(login.status(), 200, "{}", login.text());
    let new = token(&login);
    assert_ne!(new, old);

    assert_eq!(laptop.get("/auth/who").await.text(), "user=42");
    assert!(entry_of(&store, &new).await.is_some());
    assert_revoked(&phone, &layer, "the phone").await;
    assert_eq!(references_of(&layer, "42").await.len(), 1);
}

/// A login whose first attempt to mark the old id loses (another tab wrote the session after
/// the login loaded it), racing "sign out my other devices" of the same session: the login
/// retries and completes — it is not a 503 "session busy" (which the revocation's ending of the
/// login's new copy used to cause) — and the laptop stays signed in.
pub(crate) async fn a_login_racing_revoke_others_of_its_session_is_not_a_503<
    A: App,
    S: SessionStore + Clone,
>(
    store: S,
) {
    let (layer, pausing, phone, laptop, _) =
        phone_and_laptop::<A, S>(store.clone(), Pause::Mark).await;

    let login = tokio::task::spawn_local({
        let tab = laptop.clone();
        async move { tab.post("/auth/login/42").await }
    });
    pausing.gate.reached().await;
    // Another tab writes the session: the login's mark, over what it loaded, will lose.
    assert_eq!(laptop.post("/cart/apple").await.status(), 200);
    let revoked = laptop.post("/auth/revoke-others").await;
    assert_eq!(revoked.status(), 200, "{}", revoked.text());
    pausing.gate.release();
    let login = login.await.expect("the login");
    assert_ne!(login.status(), 503, "{}", login.text());
    assert_eq!(login.status(), 200, "{}", login.text());
    assert_eq!(laptop.get("/auth/who").await.text(), "user=42");
    assert_eq!(
        laptop.get("/cart").await.text(),
        "items=apple coupon=- visits=0"
    );
    assert_revoked(&phone, &layer, "the phone").await;
}

/// A login racing "sign out everywhere" (`revoke_owner`), half done when the revocation runs:
/// the login ends as a 409 that hands out no id (or, had the revocation come after its mark, a
/// client whose id is dead) — never a 503 — and nothing of the user's stays signed in.
pub(crate) async fn a_login_racing_revoke_owner_is_a_409_never_a_503<
    A: App,
    S: SessionStore + Clone,
>(
    store: S,
) {
    let (layer, pausing, phone, laptop, _) =
        phone_and_laptop::<A, S>(store.clone(), Pause::Mark).await;

    let login = tokio::task::spawn_local({
        let tab = laptop.clone();
        async move { tab.post("/auth/login/42").await }
    });
    pausing.gate.reached().await;
    assert_eq!(laptop.post("/cart/apple").await.status(), 200);
    assert_eq!(layer.revoke_owner("42").await.expect("revoked"), 2);
    pausing.gate.release();
    let login = login.await.expect("the login");
    assert_eq!(login.status(), 409, "{}", login.text());
    assert_eq!(login.header("x-session-error"), Some(ENDED));
    assert!(live_cookies(&login).is_empty(), "{:?}", login.set_cookies());
    assert!(references_of(&layer, "42").await.is_empty());
    assert_revoked(&laptop, &layer, "the laptop").await;
    assert_revoked(&phone, &layer, "the phone").await;
}

/// A listing of the user's sessions while a login of one of them is half done (filed under its
/// new id, the old one not marked yet): each session once, under the id its client holds (the
/// old one); after the login, under the new one. (It used to show the login's new copy as a
/// third session.)
pub(crate) async fn a_listing_during_a_login_shows_the_session_once_under_the_held_id<
    A: App,
    S: SessionStore + Clone,
>(
    store: S,
) {
    let (layer, pausing, phone, laptop, _) =
        phone_and_laptop::<A, S>(store.clone(), Pause::Mark).await;
    let before: Vec<String> = listing(&phone.get("/auth/sessions").await.text())
        .into_iter()
        .map(|entry| entry.reference)
        .collect();
    assert_eq!(before.len(), 2);

    let login = tokio::task::spawn_local({
        let tab = laptop.clone();
        async move { tab.post("/auth/login/42").await }
    });
    pausing.gate.reached().await;
    let during: Vec<String> = listing(&phone.get("/auth/sessions").await.text())
        .into_iter()
        .map(|entry| entry.reference)
        .collect();
    assert_eq!(during, before, "mid-login, the listing changed");
    assert_eq!(references_of(&layer, "42").await, before);
    pausing.gate.release();
    assert_eq!(login.await.expect("the login").status(), 200);

    let after = listing(&laptop.get("/auth/sessions").await.text());
    assert_eq!(after.len(), 2, "{after:?}");
    assert!(
        after
            .iter()
            .any(|entry| entry.current && !before.contains(&entry.reference))
    );
}
