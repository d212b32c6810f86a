//! What each route of the suite does, written once: plain functions of the extracted values.
//! Each adapter (`axum_app.rs`, `actix_app.rs`) extracts with its framework's own extractors and
//! calls these, so the two apps behave identically by construction.
//!
//! | route | does |
//! |---|---|
//! | `GET /cart` | reads the cart if one is stored (`Option<Typed<Cart>>` / `IfStored<Cart>`), changes nothing |
//! | `POST /cart/{sku}` | pushes an item |
//! | `POST /coupon/{code}` | sets only the coupon |
//! | `GET /nothing` | extracts nothing |
//! | `GET /all` | extracts cart, prefs and the handle, asks `is_stored()`, changes nothing |
//! | `POST /all` | writes cart and prefs |
//! | `GET /prefs` | reads prefs if stored |
//! | `POST /dark`, `POST /lang/{lang}` | sets one field of prefs |
//! | `POST /login` | bumps visits and cycles the id |
//! | `POST /logout` | destroys the session |
//! | `POST /cycle` | cycles the id, loads nothing |
//! | `POST /fail/{sku}` | pushes an item, then answers 500 |
//! | `POST /forget-cart` | removes the cart slot through the handle alone |
//! | `POST /remember` | `set_expiry(30 days)` through the handle alone |
//! | `POST /remember-then-write` | `set_expiry(30 days)` before any load, then sets `lang` |
//! | `POST /login-remember` | sets `lang` and `set_expiry(30 days)` |
//! | `POST /big` | pushes a 5,000-byte item (too big for a cookie) |
//! | `GET /cached` | pushes an item and sets its own `Cache-Control` |
//! | `GET /id` | `id_text()`: the id the client gets (stores a new session) |
//! | `POST /login/token` | `cycle_id()`, then answers `id_text()` |
//! | `GET /whoami` | the cart (or `none`) and `is_stored()` |
//! | `POST /retry/{sku}` | pushes an item and `save()`s in the handler, retrying on a conflict; the first attempt waits at the gate before its save |
//! | `POST /slow/coupon/{code}` | loads the cart, waits at the gate, sets the coupon |
//! | `POST /slow/cart/{sku}` | loads the cart, waits at the gate, pushes an item |
//! | `POST /slow/login` | visits + 1, coupon `slow-login` and `cycle_id()`, then waits at the gate |
//! | `POST /slow/logout` | `destroy()`, then waits at the gate |
//! | `POST /slow/save/{sku}` | loads the cart, waits at the gate, pushes an item and `save()`s: a failed save is the answer |
//! | `POST /slow/save-carry-on/{sku}` | the same, but the handler ignores a failed save and answers 200 |
//! | `POST /save-then-wait/{sku}` | pushes an item, `save()`s, then waits at the gate |
//! | `POST /wide/{field}` | sets one field of `Wide` |
//! | `POST /tab/{tab}/{value}`, `GET /tabs`, `POST /tabs/login`, `POST /tabs/signin/{user}`, `POST /tabs/logout`, `POST /tabs/revoke-others` | the randomized history's routes (a login answers `moved` or `new`; the revocation `user=<id> revoked=<n>`) |
//! | `POST /auth/login/{user}` | signs `user` in: `Auth.user_id` (the owner) and `cycle_id()` |
//! | `POST /slow/auth/login/{user}` | the same, then waits at the gate (the write happens after) |
//! | `GET /auth/who` | `user=<id>` or `nobody` (`Option<Typed<Auth>>` / `IfStored<Auth>`) |
//! | `GET /auth/sessions` | `owner_sessions()`, one line per session (see [`show_owned`]) |
//! | `POST /auth/revoke/{reference}` | `revoke(reference)`: `revoked=<bool>` |
//! | `POST /auth/revoke-others` | `revoke_others()`: `revoked=<count>` |
//! | `GET /account` | behind the `CurrentUser` guard: `signed in as <id>` |
//! | `GET /week/new-id` | `id()` of a new session, a cart write, `id()` again: `<id> <id>` |
//! | `POST /week/two/{first}` | two values of the cart slot, both changed, `a` or `b` dropped first |
//! | `POST /week/remove-then-drop` | takes the cart, `remove::<Cart>()`, changes and drops the value taken before |
//! | `POST /week/logout` | `destroy()`, then a `Flash` ("signed out") |
//! | `POST /week/flash` | takes the flash (reads and removes it): `flash=<message>` or `flash=none` |
//! | `POST /week/clear` | `clear()`, then `id_text()` |
//! | `GET /csrf/token` | two renderings of the session's `CsrfToken`, space-separated |
//! | `POST /csrf/form` | pushes `form` to the cart and answers the request's body as the handler got it |

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use sessions::prelude::*;
use sessions::{Expiry, OwnedSession, SessionRejection};

use super::model::{Auth, Cart, CurrentUser, Flash, Prefs, Tabs, Wide, set_tab, set_wide};
use super::support::Gate;

/// What `GET /cart` answers when nothing is stored.
pub(crate) const NO_CART: &str = "no cart";

/// Thirty days: the "remember me" policy.
pub(crate) const REMEMBERED: Duration = Duration::from_secs(30 * 24 * 3600);

/// An answer with a status and headers of its own, in either framework.
#[derive(Debug)]
pub(crate) struct Reply {
    pub(crate) status: u16,
    pub(crate) headers: Vec<(&'static str, &'static str)>,
    pub(crate) body: String,
}

impl Reply {
    fn new(status: u16, body: impl Into<String>) -> Self {
        Self {
            status,
            headers: Vec::new(),
            body: body.into(),
        }
    }
}

/// The session handler result both frameworks turn into a response (a rejection says what is
/// wrong, with its status).
pub(crate) type Answer = Result<String, SessionRejection>;

/// How a cart reads in a response body.
/// `GET /csrf/token`: two renderings of the session's CSRF token.
pub(crate) fn csrf_tokens(token: sessions::csrf::CsrfToken) -> String {
    format!("{token} {token}")
}

/// `POST /csrf/form`: the body as the handler got it, after a change of the cart.
pub(crate) fn csrf_form(mut cart: Typed<Cart>, body: String) -> String {
    cart.items_mut().push("form".into());
    body
}

pub(crate) fn show(cart: &Cart) -> String {
    format!(
        "items={} coupon={} visits={}",
        cart.items.join(","),
        cart.coupon.as_deref().unwrap_or("-"),
        cart.visits
    )
}

pub(crate) fn read_cart(cart: Option<Typed<Cart>>) -> String {
    cart.map_or_else(|| NO_CART.to_owned(), |cart| show(cart.value()))
}

pub(crate) fn add_item(mut cart: Typed<Cart>, sku: String) -> String {
    cart.items_mut().push(sku);
    show(cart.value())
}

pub(crate) fn set_coupon(mut cart: Typed<Cart>, code: String) -> String {
    cart.set_coupon(Some(code));
    show(cart.value())
}

pub(crate) fn nothing() -> String {
    "no session here".to_owned()
}

pub(crate) async fn read_all(
    cart: Typed<Cart>,
    prefs: Typed<Prefs>,
    session: SessionHandle,
) -> Answer {
    let stored = session.is_stored().await?;
    Ok(format!(
        "{} dark={} lang={} stored={stored}",
        show(cart.value()),
        prefs.dark(),
        prefs.lang(),
    ))
}

pub(crate) fn write_both(mut cart: Typed<Cart>, mut prefs: Typed<Prefs>) -> String {
    cart.items_mut().push("both".to_owned());
    prefs.set_dark(true);
    prefs.set_lang("fr".to_owned());
    "both written".to_owned()
}

pub(crate) fn read_prefs(prefs: Option<Typed<Prefs>>) -> String {
    prefs.map_or_else(
        || "no prefs".to_owned(),
        |prefs| format!("dark={} lang={}", prefs.dark(), prefs.lang()),
    )
}

pub(crate) fn dark(mut prefs: Typed<Prefs>) -> String {
    prefs.set_dark(true);
    "dark".to_owned()
}

pub(crate) fn set_lang(mut prefs: Typed<Prefs>, lang: String) -> String {
    prefs.set_lang(lang);
    "lang set".to_owned()
}

pub(crate) fn login(session: SessionHandle, mut cart: Typed<Cart>) -> String {
    *cart.visits_mut() += 1;
    session.cycle_id();
    "logged in".to_owned()
}

pub(crate) fn logout(session: SessionHandle) -> String {
    session.destroy();
    "bye".to_owned()
}

pub(crate) fn cycle(session: SessionHandle) -> String {
    session.cycle_id();
    "cycled".to_owned()
}

/// Changes the cart, then fails: the change must not be saved.
pub(crate) fn add_then_fail(mut cart: Typed<Cart>, sku: String) -> Reply {
    cart.items_mut().push(sku);
    Reply::new(500, "the handler failed")
}

pub(crate) fn forget_cart(session: SessionHandle) -> String {
    session.remove::<Cart>();
    "forgotten".to_owned()
}

pub(crate) fn remember(session: SessionHandle) -> String {
    session.set_expiry(Expiry::idle(REMEMBERED));
    "remembered".to_owned()
}

pub(crate) async fn remember_then_write(session: SessionHandle) -> Answer {
    // The policy is set before anything is loaded.
    session.set_expiry(Expiry::idle(REMEMBERED));
    let mut prefs = session.get_or_default::<Prefs>().await?;
    prefs.set_lang("en".to_owned());
    Ok("remembered, then wrote".to_owned())
}

pub(crate) fn login_remember(session: SessionHandle, mut prefs: Typed<Prefs>) -> String {
    prefs.set_lang("en".to_owned());
    session.set_expiry(Expiry::idle(REMEMBERED));
    "logged in, remembered".to_owned()
}

pub(crate) fn big(mut cart: Typed<Cart>) -> String {
    cart.items_mut().push("x".repeat(5000));
    "added a big item".to_owned()
}

/// A write whose response sets its own caching policy.
pub(crate) fn cached(mut cart: Typed<Cart>) -> Reply {
    cart.items_mut().push("x".to_owned());
    Reply {
        headers: vec![("cache-control", "private, max-age=60")],
        ..Reply::new(200, "ok")
    }
}

pub(crate) async fn id(session: SessionHandle) -> Answer {
    Ok(session.id_text().await?.unwrap_or_default())
}

pub(crate) async fn login_token(session: SessionHandle) -> Answer {
    session.cycle_id();
    Ok(session.id_text().await?.unwrap_or_default())
}

/// What this request's session is: its cart (or `none`) and whether it is stored.
pub(crate) async fn whoami(session: SessionHandle, cart: Option<Typed<Cart>>) -> Answer {
    let stored = session.is_stored().await?;
    Ok(format!(
        "cart={} stored={stored}",
        cart.map_or_else(|| "none".to_owned(), |cart| show(cart.value()))
    ))
}

/// Pushes an item and saves inside the handler; on a conflict it reloads and tries again.
/// The first attempt waits at the gate between its load and its save.
pub(crate) async fn retrying_item(gate: &Gate, session: SessionHandle, sku: String) -> Answer {
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

pub(crate) async fn slow_coupon(gate: &Gate, mut cart: Typed<Cart>, code: String) -> String {
    gate.pause().await;
    cart.set_coupon(Some(code));
    show(cart.value())
}

pub(crate) async fn slow_item(gate: &Gate, mut cart: Typed<Cart>, sku: String) -> String {
    gate.pause().await;
    cart.items_mut().push(sku);
    show(cart.value())
}

/// Loads the prefs (the flash of a page, say), waits, and removes them: the last slot the
/// session held when this request loaded it.
pub(crate) async fn slow_forget_prefs(
    gate: &Gate,
    session: SessionHandle,
    prefs: Option<Typed<Prefs>>,
) -> String {
    let seen = read_prefs(prefs);
    gate.pause().await;
    session.remove::<Prefs>();
    seen
}

/// The login of `/login` (visits + 1, `cycle_id()`), and the coupon set to `slow-login` (a
/// change of its own), waiting at the gate before it returns: the cycle itself happens after
/// the handler.
pub(crate) async fn slow_login(
    gate: &Gate,
    session: SessionHandle,
    mut cart: Typed<Cart>,
) -> String {
    *cart.visits_mut() += 1;
    cart.set_coupon(Some("slow-login".to_owned()));
    session.cycle_id();
    gate.pause().await;
    "logged in".to_owned()
}

/// A logout that waits at the gate before it returns: the destroy itself happens after the
/// handler.
pub(crate) async fn slow_logout(gate: &Gate, session: SessionHandle) -> String {
    session.destroy();
    gate.pause().await;
    "bye".to_owned()
}

/// Loads the cart, waits, pushes an item and saves it in the handler; a failed save is what
/// the handler answers.
pub(crate) async fn slow_save(gate: &Gate, session: SessionHandle, sku: String) -> Answer {
    let mut cart = session.get_or_default::<Cart>().await?;
    gate.pause().await;
    cart.items_mut().push(sku);
    let shown = show(cart.value());
    drop(cart);
    session.save().await?;
    Ok(shown)
}

/// Like [`slow_save`], but the handler ignores a failed save and answers 200 anyway.
pub(crate) async fn slow_save_carrying_on(
    gate: &Gate,
    session: SessionHandle,
    sku: String,
) -> Answer {
    let mut cart = session.get_or_default::<Cart>().await?;
    gate.pause().await;
    cart.items_mut().push(sku);
    drop(cart);
    let saved = session.save().await;
    Ok(format!("carried on after save: {}", saved.is_ok()))
}

/// Pushes an item, saves it in the handler, then waits at the gate before it answers: a
/// response that leaves after its write.
pub(crate) async fn save_then_wait(gate: &Gate, session: SessionHandle, sku: String) -> Answer {
    let shown = {
        let mut cart = session.get_or_default::<Cart>().await?;
        cart.items_mut().push(sku);
        show(cart.value())
    };
    session.save().await?;
    gate.pause().await;
    Ok(shown)
}

pub(crate) fn wide(mut wide: Typed<Wide>, field: &str) -> Reply {
    if set_wide(&mut wide, field) {
        Reply::new(200, "set")
    } else {
        Reply::new(404, format!("no field {field}"))
    }
}

pub(crate) fn write_tab(mut tabs: Typed<Tabs>, tab: usize, value: u64) -> Reply {
    if set_tab(&mut tabs, tab, value) {
        Reply::new(200, "written")
    } else {
        Reply::new(404, format!("no tab {tab}"))
    }
}

/// The randomized history's login: `cycle_id()`, answering `moved` when the session it moves
/// was stored (the new id carries on the old one's data) or `new` (a session the request
/// starts: the id it carried, if any, was dead).
pub(crate) async fn history_login(session: SessionHandle) -> Answer {
    let stored = session.is_stored().await?;
    session.cycle_id();
    Ok(if stored { "moved" } else { "new" }.to_owned())
}

/// The randomized history's sign-in: [`history_login`] that also binds the session to `user`
/// (the owner).
pub(crate) async fn history_sign_in(session: SessionHandle, user: u64) -> Answer {
    let stored = session.is_stored().await?;
    session
        .get_or_default::<Auth>()
        .await?
        .set_user_id(Some(user));
    session.cycle_id();
    Ok(if stored { "moved" } else { "new" }.to_owned())
}

/// The randomized history's "sign out my other devices": `revoke_others()`, answering whose
/// session asked (`user=<id>`, or `user=none` for a session of nobody's: a dead id) and how
/// many sessions ended.
pub(crate) async fn history_revoke_others(session: SessionHandle) -> Answer {
    let owner = session.owner().await?;
    let revoked = session.revoke_others().await?;
    Ok(format!(
        "user={} revoked={revoked}",
        owner.as_deref().unwrap_or("none")
    ))
}

/// The tabs' values, comma-separated, or `none` when nothing is stored.
pub(crate) fn read_tabs(tabs: Option<Typed<Tabs>>) -> String {
    tabs.map_or_else(
        || "none".to_owned(),
        |tabs| {
            tabs.value()
                .values()
                .map(|value| value.to_string())
                .join(",")
        },
    )
}

// ---- the sessions of a user (issue 15) ---------------------------------------------------------

/// Signs `user` in: the owner field, then a new id (against fixation).
pub(crate) fn sign_in(session: SessionHandle, mut auth: Typed<Auth>, user: u64) -> String {
    auth.set_user_id(Some(user));
    session.cycle_id();
    format!("signed in as {user}")
}

/// [`sign_in`], waiting at the gate before it returns: the login's write (and the cap on the
/// user's sessions) happens after the gate.
pub(crate) async fn slow_sign_in(
    gate: &Gate,
    session: SessionHandle,
    mut auth: Typed<Auth>,
    user: u64,
) -> String {
    auth.set_user_id(Some(user));
    drop(auth);
    session.cycle_id();
    gate.pause().await;
    format!("signed in as {user}")
}

/// Who this session is signed in as.
pub(crate) fn who(auth: Option<Typed<Auth>>) -> String {
    match auth.and_then(|auth| *auth.user_id()) {
        Some(user) => format!("user={user}"),
        None => "nobody".to_owned(),
    }
}

/// Milliseconds since the unix epoch, as a listing shows a time.
pub(crate) fn millis(time: SystemTime) -> u128 {
    time.duration_since(UNIX_EPOCH)
        .map_or(0, |since| since.as_millis())
}

/// One session of a listing as a line: `<reference> current=<bool> created=<ms> seen=<ms>
/// expires=<ms>`.
pub(crate) fn show_owned(session: &OwnedSession) -> String {
    format!(
        "{} current={} created={} seen={} expires={}",
        session.reference,
        session.current,
        millis(session.created_at),
        millis(session.last_seen),
        millis(session.expires_at)
    )
}

/// This user's sessions, a line each, newest login first.
pub(crate) async fn my_sessions(session: SessionHandle) -> Answer {
    let sessions = session.owner_sessions().await?;
    Ok(sessions
        .iter()
        .map(show_owned)
        .collect::<Vec<_>>()
        .join("\n"))
}

pub(crate) async fn revoke(session: SessionHandle, reference: String) -> Answer {
    Ok(format!("revoked={}", session.revoke(&reference).await?))
}

pub(crate) async fn revoke_others(session: SessionHandle) -> Answer {
    Ok(format!("revoked={}", session.revoke_others().await?))
}

/// A page only a signed-in user sees.
pub(crate) fn account(user: CurrentUser) -> String {
    format!("signed in as {}", user.0)
}

// ---- a user's first week (issue 16) ------------------------------------------------------------

/// The id of a brand-new session, asked before and after a write: the same both times, and
/// the one the response's cookie carries.
pub(crate) async fn new_id(session: SessionHandle) -> Answer {
    let before = session.id_text().await?.unwrap_or_default();
    session
        .get_or_default::<Cart>()
        .await?
        .items_mut()
        .push("first".to_owned());
    let after = session.id_text().await?.unwrap_or_default();
    Ok(format!("{before} {after}"))
}

/// Two values of the cart slot in one request: `a` pushes an item and sets visits to 1, `b`
/// sets the coupon and visits to 2; `first` (`a` or `b`) is dropped first.
pub(crate) async fn two_values(session: SessionHandle, first: String) -> Answer {
    let mut a = session.get_or_default::<Cart>().await?;
    let mut b = session.get_or_default::<Cart>().await?;
    a.items_mut().push("a".to_owned());
    a.set_visits(1);
    b.set_coupon(Some("b".to_owned()));
    b.set_visits(2);
    if first == "a" {
        drop(a);
        drop(b);
    } else {
        drop(b);
        drop(a);
    }
    // A value taken now sees both.
    let now = session.get_or_default::<Cart>().await?;
    Ok(show(now.value()))
}

/// `remove::<Cart>()` while a value of the cart is held; that value is changed and dropped
/// afterwards. Answers what the handler sees of the cart after the drop.
pub(crate) async fn remove_then_drop(session: SessionHandle) -> Answer {
    let mut held = session.get_or_default::<Cart>().await?;
    session.remove::<Cart>();
    held.items_mut().push("zombie".to_owned());
    drop(held);
    Ok(match session.get::<Cart>().await? {
        Some(cart) => format!("after: {}", show(cart.value())),
        None => "after: no cart".to_owned(),
    })
}

/// Logout with a flash: `destroy()`, then a write into the fresh session.
pub(crate) fn logout_with_flash(session: SessionHandle) -> Answer {
    session.destroy();
    session.insert(Flash {
        message: "signed out".to_owned(),
    })?;
    Ok("bye".to_owned())
}

/// Takes the flash: shows it once, and removes it.
pub(crate) async fn take_flash(session: SessionHandle) -> Answer {
    let message = session
        .get::<Flash>()
        .await?
        .map(|flash| flash.message().clone());
    if message.is_some() {
        session.remove::<Flash>();
    }
    Ok(format!("flash={}", message.as_deref().unwrap_or("none")))
}

/// Empties the session, then answers its id (in one call).
pub(crate) async fn clear(session: SessionHandle) -> Answer {
    session.clear().await?;
    Ok(session.id_text().await?.unwrap_or_default())
}
