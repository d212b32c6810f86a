//! The sessions of a user (issue 15), on every store: a user's sessions listed by an opaque
//! reference with their times (`owner_sessions()` in a request, `SessionLayer::sessions_of`
//! outside), one revoked (only one of the same user's), every other one revoked
//! (`revoke_others()`), all revoked (`SessionLayer::revoke_owner`), and the cap
//! (`max_sessions_per_owner(n)`) revoking the oldest login — of a new session and of a stored
//! one alike. A revoked session's next request gets a fresh session and has its cookie cleared.
//!
//! The races (a request of a revoked session in flight, two logins of one user at once under a
//! cap) are in `races_owners.rs`; cookie sessions (revocable through a revocation list, not
//! listable) in `cookie_owners.rs`.

use std::time::{Duration, SystemTime};

use sessions::clock::Clock;
use sessions::clock::ManualClock;
use sessions::prelude::*;
use sessions::{Expiry, SessionStore};

use super::handlers::millis;
use super::model::Auth;
use super::races_cycle::{cart_of, entry_of};
use super::support::{key_of, only_forgets, token};
use super::{App, browser, layer};

/// The idle expiry of the owner tests' layers (refreshed once a quarter of it has passed).
pub(crate) const IDLE: Duration = Duration::from_secs(3600);

/// A clock standing at the real now, moved by hand: the logins' order (the cap keeps the newest)
/// is the clock's, not the scheduler's, and the server stores' own expiry (Redis, PostgreSQL)
/// agrees with the deadlines it gives.
pub(crate) fn clock() -> ManualClock {
    ManualClock::at(SystemTime::now())
}

/// A layer over `store` with the suite's types and `Auth` (the owner), on `clock`.
pub(crate) fn owner_layer(store: impl sessions::IntoBackend, clock: &ManualClock) -> SessionLayer {
    layer(store)
        .register::<Auth>()
        .clock(clock.clone())
        .expiry(Expiry::idle(IDLE).refresh_share(0.25))
}

/// One line of `GET /auth/sessions`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Listed {
    pub(crate) reference: String,
    pub(crate) current: bool,
    pub(crate) created: u128,
    pub(crate) seen: u128,
    pub(crate) expires: u128,
}

/// Reads the body of `GET /auth/sessions`.
pub(crate) fn listing(body: &str) -> Vec<Listed> {
    body.lines()
        .filter(|line| !line.is_empty())
        .map(|line| {
            let mut parts = line.split(' ');
            let reference = parts.next().expect("a reference").to_owned();
            let mut field = |name: &str| {
                let part = parts.next().expect("a field");
                part.strip_prefix(name)
                    .and_then(|rest| rest.strip_prefix('='))
                    .unwrap_or_else(|| panic!("expected {name}= in {line:?}"))
                    .to_owned()
            };
            Listed {
                reference,
                current: field("current") == "true",
                created: field("created").parse().expect("ms"),
                seen: field("seen").parse().expect("ms"),
                expires: field("expires").parse().expect("ms"),
            }
        })
        .collect()
}

/// The references of `owner`'s sessions, from outside any request, newest login first.
pub(crate) async fn references_of(layer: &SessionLayer, owner: &str) -> Vec<String> {
    layer
        .sessions_of(owner)
        .await
        .expect("the store lists the owner's sessions")
        .into_iter()
        .map(|session| session.reference)
        .collect()
}

/// Signs `user` in from `client`; the id the login hands out.
pub(crate) async fn sign_in<T: sessions::testing::Transport>(
    client: &sessions::testing::TestClient<T>,
    user: u64,
) -> String {
    let login = client.post(&format!("/auth/login/{user}")).await;
    assert_eq!(login.status(), 200, "{}", login.text());
    assert_eq!(login.text(), format!("signed in as {user}"));
    token(&login)
}

/// Asserts `client`'s session was revoked: its next request is nobody's, and it is told to
/// forget its cookie.
pub(crate) async fn assert_revoked<T: sessions::testing::Transport>(
    client: &sessions::testing::TestClient<T>,
    layer: &SessionLayer,
    what: &str,
) {
    let who = client.get("/auth/who").await;
    assert_eq!(who.status(), 200, "{what}: {}", who.text());
    assert_eq!(who.text(), "nobody", "{what}: still signed in");
    assert!(
        only_forgets(&who),
        "{what}: the revoked cookie is not cleared: {:?}",
        who.set_cookies()
    );
    assert!(client.session(layer).is_none(), "{what}: the jar kept it");
}

/// Listing: `owner_sessions()` shows the user's live sessions, newest login first, each by a
/// reference that is neither its id nor its storage key, with when it was created, last seen
/// and ends, and which one is asking; `sessions_of` shows the same from outside (none
/// current). Another user's sessions, and a session of nobody, are not in it; activity moves
/// `last_seen` and `expires_at`, not `created_at`.
pub(crate) async fn a_user_lists_its_sessions_by_reference_with_their_times<
    A: App,
    S: SessionStore + Clone,
>(
    store: S,
) {
    let clock = clock();
    let layer = owner_layer(store.clone(), &clock);
    let (first, second, other, anonymous) = (
        browser::<A>(&layer).await,
        browser::<A>(&layer).await,
        browser::<A>(&layer).await,
        browser::<A>(&layer).await,
    );
    let t0 = millis(clock.now());
    let first_id = sign_in(&first, 42).await;
    clock.advance(Duration::from_secs(10));
    let second_id = sign_in(&second, 42).await;
    sign_in(&other, 7).await;
    assert_eq!(anonymous.post("/cart/x").await.status(), 200);

    let asked = first.get("/auth/sessions").await;
    assert_eq!(asked.status(), 200, "{}", asked.text());
    let listed = listing(&asked.text());
    assert_eq!(listed.len(), 2, "user 42 has two sessions: {listed:?}");
    let (newest, oldest) = (&listed[0], &listed[1]);
    assert_eq!(
        (oldest.current, newest.current),
        (true, false),
        "the asking session (the older login) is the current one: {listed:?}"
    );
    let hour = IDLE.as_millis();
    assert_eq!(
        (oldest.created, oldest.seen, oldest.expires),
        (t0, t0, t0 + hour),
        "{listed:?}"
    );
    let t10 = t0 + 10_000;
    assert_eq!(
        (newest.created, newest.seen, newest.expires),
        (t10, t10, t10 + hour),
        "{listed:?}"
    );
    assert_ne!(oldest.reference, newest.reference);
    for (entry, id) in [(oldest, &first_id), (newest, &second_id)] {
        assert!(!entry.reference.is_empty());
        for secret in [id.clone(), key_of(id).as_str().to_owned()] {
            assert!(
                !secret.contains(&entry.reference) && !entry.reference.contains(&secret),
                "a reference gives the session away: {}",
                entry.reference
            );
        }
    }
    let newest_view = listing(&second.get("/auth/sessions").await.text());
    assert_eq!(
        newest_view
            .iter()
            .map(|entry| (entry.reference.as_str(), entry.current))
            .collect::<Vec<_>>(),
        [
            (newest.reference.as_str(), true),
            (oldest.reference.as_str(), false)
        ],
        "each session sees itself as the current one"
    );

    // From outside a request: the same sessions, none current; the other user's apart.
    let outside = layer.sessions_of("42").await.expect("the store lists");
    assert_eq!(
        outside
            .iter()
            .map(|entry| (entry.reference.clone(), entry.current))
            .collect::<Vec<_>>(),
        [
            (newest.reference.clone(), false),
            (oldest.reference.clone(), false)
        ]
    );
    assert_eq!(references_of(&layer, "7").await.len(), 1);
    assert!(references_of(&layer, "nobody").await.is_empty());
    let none = anonymous.get("/auth/sessions").await;
    assert_eq!(
        (none.status().as_u16(), none.text().as_str()),
        (200, ""),
        "a session of nobody lists nothing"
    );

    // Twenty minutes on (past the refresh share), the first session is used: it was seen now,
    // and ends an hour from now; it was still created at t0.
    clock.advance(Duration::from_secs(20 * 60));
    let now = millis(clock.now());
    assert_eq!(first.get("/auth/who").await.text(), "user=42");
    let listed = listing(&first.get("/auth/sessions").await.text());
    let seen = listed
        .iter()
        .find(|entry| entry.current)
        .expect("the current session");
    assert_eq!(
        (seen.created, seen.seen, seen.expires),
        (t0, now, now + hour),
        "{listed:?}"
    );
}

/// `revoke(reference)`: a reference of another user's session is refused (and that session
/// lives on), so is a reference that is no session, and a session of nobody cannot revoke
/// anything; a reference of the same user's session ends it: its next request is nobody's,
/// with its cookie cleared, and a write of it starts a fresh session under a new id. The
/// asking session lives on; revoking the same reference again finds nothing.
pub(crate) async fn revoke_ends_only_a_session_of_the_same_user<A: App, S: SessionStore + Clone>(
    store: S,
) {
    let clock = clock();
    let layer = owner_layer(store.clone(), &clock);
    let (mine, my_phone, theirs, anonymous) = (
        browser::<A>(&layer).await,
        browser::<A>(&layer).await,
        browser::<A>(&layer).await,
        browser::<A>(&layer).await,
    );
    sign_in(&mine, 42).await;
    clock.advance(Duration::from_secs(1));
    let phone_id = sign_in(&my_phone, 42).await;
    let their_id = sign_in(&theirs, 7).await;
    assert_eq!(anonymous.post("/cart/x").await.status(), 200);
    let listed = listing(&mine.get("/auth/sessions").await.text());
    let phone = listed
        .iter()
        .find(|entry| !entry.current)
        .expect("the phone's session")
        .reference
        .clone();
    let their_reference = listing(&theirs.get("/auth/sessions").await.text())[0]
        .reference
        .clone();

    // Not mine: refused, and it lives on.
    let foreign = mine.post(&format!("/auth/revoke/{their_reference}")).await;
    assert_eq!(foreign.status(), 200, "{}", foreign.text());
    assert_eq!(foreign.text(), "revoked=false", "another user's session");
    assert_eq!(theirs.get("/auth/who").await.text(), "user=7");
    assert!(entry_of(&store, &their_id).await.is_some());
    for bogus in ["nonsense", phone_id.as_str()] {
        assert_eq!(
            mine.post(&format!("/auth/revoke/{bogus}")).await.text(),
            "revoked=false",
            "not a reference: {bogus}"
        );
    }
    assert_eq!(
        anonymous
            .post(&format!("/auth/revoke/{phone}"))
            .await
            .text(),
        "revoked=false",
        "a session of nobody revoked a user's session"
    );
    assert_eq!(my_phone.get("/auth/who").await.text(), "user=42");

    // Mine: ended.
    let revoked = mine.post(&format!("/auth/revoke/{phone}")).await;
    assert_eq!(revoked.status(), 200, "{}", revoked.text());
    assert_eq!(revoked.text(), "revoked=true");
    assert!(entry_of(&store, &phone_id).await.is_none());
    assert_revoked(&my_phone, &layer, "the revoked phone").await;
    let fresh = my_phone.post("/cart/fresh").await;
    assert_eq!(fresh.status(), 200);
    assert_ne!(token(&fresh), phone_id, "the revoked id came back");
    assert_eq!(my_phone.get("/auth/who").await.text(), "nobody");

    assert_eq!(mine.get("/auth/who").await.text(), "user=42");
    assert_eq!(references_of(&layer, "42").await.len(), 1);
    assert_eq!(
        mine.post(&format!("/auth/revoke/{phone}")).await.text(),
        "revoked=false",
        "revoked twice"
    );
    assert_eq!(references_of(&layer, "7").await, [their_reference]);
}

/// `revoke_others()` (after a password change): every other session of the user ends, this one
/// and other users' live on; it says how many ended.
pub(crate) async fn revoke_others_keeps_only_this_session<A: App, S: SessionStore + Clone>(
    store: S,
) {
    let clock = clock();
    let layer = owner_layer(store.clone(), &clock);
    let (here, laptop, phone, theirs) = (
        browser::<A>(&layer).await,
        browser::<A>(&layer).await,
        browser::<A>(&layer).await,
        browser::<A>(&layer).await,
    );
    let here_id = sign_in(&here, 42).await;
    clock.advance(Duration::from_secs(1));
    sign_in(&laptop, 42).await;
    clock.advance(Duration::from_secs(1));
    sign_in(&phone, 42).await;
    sign_in(&theirs, 7).await;

    let others = here.post("/auth/revoke-others").await;
    assert_eq!(others.status(), 200, "{}", others.text());
    assert_eq!(others.text(), "revoked=2");
    assert_revoked(&laptop, &layer, "the laptop").await;
    assert_revoked(&phone, &layer, "the phone").await;
    assert_eq!(here.get("/auth/who").await.text(), "user=42");
    assert_eq!(here.session(&layer), Some(here_id));
    assert_eq!(theirs.get("/auth/who").await.text(), "user=7");
    let listed = listing(&here.get("/auth/sessions").await.text());
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert!(listed[0].current);
    assert_eq!(references_of(&layer, "7").await.len(), 1);
    assert_eq!(here.post("/auth/revoke-others").await.text(), "revoked=0");
}

/// `SessionLayer::revoke_owner` (an admin, outside any request): every session of the user
/// ends, other users' live on; it says how many.
pub(crate) async fn revoke_owner_ends_every_session_of_the_user<A: App, S: SessionStore + Clone>(
    store: S,
) {
    let clock = clock();
    let layer = owner_layer(store.clone(), &clock);
    let (laptop, phone, theirs) = (
        browser::<A>(&layer).await,
        browser::<A>(&layer).await,
        browser::<A>(&layer).await,
    );
    let laptop_id = sign_in(&laptop, 42).await;
    clock.advance(Duration::from_secs(1));
    let phone_id = sign_in(&phone, 42).await;
    sign_in(&theirs, 7).await;

    assert_eq!(layer.revoke_owner("42").await.expect("revoked"), 2);
    for id in [&laptop_id, &phone_id] {
        assert!(entry_of(&store, id).await.is_none(), "a session survived");
    }
    assert!(references_of(&layer, "42").await.is_empty());
    assert_revoked(&laptop, &layer, "the laptop").await;
    assert_revoked(&phone, &layer, "the phone").await;
    assert_eq!(theirs.get("/auth/who").await.text(), "user=7");
    assert_eq!(layer.revoke_owner("42").await.expect("revoked"), 0);

    // The user can sign in again.
    sign_in(&laptop, 42).await;
    assert_eq!(laptop.get("/auth/who").await.text(), "user=42");
    assert_eq!(references_of(&layer, "42").await.len(), 1);
}

/// `max_sessions_per_owner(2)`: a third login of the user revokes the oldest; the two newest
/// and other users' sessions live on.
pub(crate) async fn a_cap_revokes_the_oldest_login<A: App, S: SessionStore + Clone>(store: S) {
    let clock = clock();
    let layer = owner_layer(store.clone(), &clock).max_sessions_per_owner(2);
    let (oldest, middle, newest, theirs) = (
        browser::<A>(&layer).await,
        browser::<A>(&layer).await,
        browser::<A>(&layer).await,
        browser::<A>(&layer).await,
    );
    sign_in(&theirs, 7).await;
    let oldest_id = sign_in(&oldest, 42).await;
    clock.advance(Duration::from_secs(1));
    sign_in(&middle, 42).await;
    clock.advance(Duration::from_secs(1));
    assert_eq!(references_of(&layer, "42").await.len(), 2);
    sign_in(&newest, 42).await;

    assert!(
        entry_of(&store, &oldest_id).await.is_none(),
        "the oldest survived"
    );
    assert_eq!(references_of(&layer, "42").await.len(), 2);
    assert_revoked(&oldest, &layer, "the oldest login").await;
    assert_eq!(middle.get("/auth/who").await.text(), "user=42");
    assert_eq!(newest.get("/auth/who").await.text(), "user=42");
    assert_eq!(theirs.get("/auth/who").await.text(), "user=7");
}

/// The cap applies to every login, the login of a session already stored (a shopper with a
/// cart signs in: `cycle_id()` moves the stored session) as much as one of a new session: with
/// a cap of 1, it revokes the user's other session, and keeps its cart.
///
/// Found by this suite: a `cycle_id()` of a stored session bound its owner without applying
/// the cap (fixed in `session/apply.rs`).
pub(crate) async fn a_cap_applies_to_the_login_of_a_stored_session<
    A: App,
    S: SessionStore + Clone,
>(
    store: S,
) {
    let clock = clock();
    let layer = owner_layer(store.clone(), &clock).max_sessions_per_owner(1);
    let (earlier, shopper) = (browser::<A>(&layer).await, browser::<A>(&layer).await);
    let earlier_id = sign_in(&earlier, 42).await;
    clock.advance(Duration::from_secs(1));
    let cart_id = token(&shopper.post("/cart/apple").await);
    clock.advance(Duration::from_secs(1));
    let logged_in = sign_in(&shopper, 42).await;
    assert_ne!(logged_in, cart_id, "the login did not cycle the id");

    assert!(
        entry_of(&store, &earlier_id).await.is_none(),
        "the earlier login survived a cap of 1"
    );
    assert_eq!(references_of(&layer, "42").await.len(), 1);
    assert_revoked(&earlier, &layer, "the earlier login").await;
    assert_eq!(shopper.get("/auth/who").await.text(), "user=42");
    let cart = cart_of(&layer, &logged_in)
        .await
        .expect("the shopper's cart");
    assert_eq!(cart.items, ["apple"]);
}

/// The owner index follows a session through its logins: signing in again as the same user
/// (a new id) is still one session of that user — under a cap of 1 it does not revoke itself —
/// signing in as another user moves the session to that user, and a logout takes it off the
/// list.
pub(crate) async fn the_list_follows_a_session_through_logins_and_logout<
    A: App,
    S: SessionStore + Clone,
>(
    store: S,
) {
    let clock = clock();
    let layer = owner_layer(store.clone(), &clock).max_sessions_per_owner(1);
    let client = browser::<A>(&layer).await;
    let first = sign_in(&client, 42).await;
    clock.advance(Duration::from_secs(1));
    let again = sign_in(&client, 42).await;
    assert_ne!(again, first, "the second login did not cycle the id");
    assert_eq!(client.get("/auth/who").await.text(), "user=42");
    let listed = listing(&client.get("/auth/sessions").await.text());
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert!(listed[0].current);
    assert_eq!(
        references_of(&layer, "42").await,
        [listed[0].reference.clone()]
    );

    clock.advance(Duration::from_secs(1));
    sign_in(&client, 43).await;
    assert_eq!(client.get("/auth/who").await.text(), "user=43");
    assert!(references_of(&layer, "42").await.is_empty());
    assert_eq!(references_of(&layer, "43").await.len(), 1);

    assert_eq!(client.post("/logout").await.status(), 200);
    assert!(references_of(&layer, "43").await.is_empty());
}
