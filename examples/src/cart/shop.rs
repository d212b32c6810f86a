//! The HTML side: the shop page, "Your sessions", and forms that post, change the session and
//! redirect back (post/redirect/get), with a one-shot `Flash` message in the session.
//!
//! Each handler is a plain `async fn` of what the extractors gave; `axum_app` and `actix_app`
//! extract and call it. Every form posts to this origin and, once the visitor has a session,
//! carries its CSRF token (`sessions::csrf::CsrfToken`, a hidden `csrf_token` field). The
//! session layer refuses (403) a post that a page of another site made a browser send, before
//! any handler runs (`Csrf::default()`: `Sec-Fetch-Site`, else `Origin`); a valid token lets a
//! post through, and the login's `cycle_id()` makes the tokens of the pages rendered before it
//! worthless.

use std::time::SystemTime;

use serde::Deserialize;
use sessions::csrf::CsrfToken;
use sessions::prelude::*;
use sessions::{OwnedSession, SessionRejection};

use super::model::{
    Account, Cart, Flash, Notice, add_item, apply_coupon, product, remove_coupon, remove_item,
    user_name,
};
use super::page::{Listing, PageView, SessionsView, render, render_sessions};
use super::{AppState, Reply};

/// `GET /`: the catalogue, the cart and what the session layer did.
///
/// A visit that changes nothing writes nothing: the cart and account are only read, and the
/// flash message (if any) is removed. A cart stored at an older version is migrated when
/// `Typed<Cart>` is extracted and written back whole at version 3.
pub async fn page(
    app: &AppState,
    session: &SessionHandle,
    cart: Typed<Cart>,
    account: Option<Typed<Account>>,
    flash: Option<Typed<Flash>>,
) -> Result<Reply, SessionRejection> {
    let notice = take_notice(session, flash);
    let remaining = session
        .deadline()
        .await?
        .map(|deadline| deadline.remaining(SystemTime::now()));
    let user = account.as_ref().and_then(|a| a.user().clone());
    let migrations = app.layer.migration_counts();
    let csrf = csrf_token(session).await?;
    let operations = super::ops::Operations::now(app).await;
    Ok(Reply::Html(render(&PageView {
        cart: cart.value(),
        user: user.as_deref(),
        notice,
        migrated_from: cart.migrated_from(),
        migrations: &migrations,
        store: &app.store,
        framework: app.framework.name(),
        remaining,
        csrf: csrf.as_deref(),
        operations: Some(&operations),
    })))
}

/// `GET /sessions`: "Your sessions", every browser the signed-in user is signed in on, with a
/// sign-out button for each of the others. Reads only (listing a user is one indexed query).
pub async fn sessions(
    app: &AppState,
    session: &SessionHandle,
    account: Option<Typed<Account>>,
    flash: Option<Typed<Flash>>,
) -> Result<Reply, SessionRejection> {
    let notice = take_notice(session, flash);
    let user = account.and_then(|a| a.user().clone());
    let listing = match &user {
        None => Listing::SignedOut,
        Some(_) => match session.owner_sessions().await {
            Ok(list) => Listing::Sessions(list),
            // A `CookieStore` session lives in its browser: nothing server-side to list.
            Err(SessionRejection::Unsupported { .. }) => Listing::Unsupported,
            Err(err) => return Err(err),
        },
    };
    let csrf = csrf_token(session).await?;
    Ok(Reply::Html(render_sessions(&SessionsView {
        user: user.as_deref(),
        notice,
        listing,
        store: &app.store,
        now: SystemTime::now(),
        csrf: csrf.as_deref(),
    })))
}

/// The session's CSRF token for the page's forms, once there is a session to bind it to.
/// Rendering one draws the session's secret, and a new session would be stored to keep it: a
/// first visit (or a crawler) that changes nothing would then store a session. So a visitor
/// without a session gets forms without a token; their posts come from this origin, which the
/// layer's tokenless check lets through, and the first one that changes something stores the
/// session. (With `Csrf::default().require_token()` every form needs the token: render it
/// always.)
async fn csrf_token(session: &SessionHandle) -> Result<Option<String>, SessionRejection> {
    if !session.is_stored().await? {
        return Ok(None);
    }
    Ok(Some(CsrfToken::of(session).await?.to_string()))
}

/// The flash message, if one is stored; it is removed, so it shows once.
fn take_notice(session: &SessionHandle, flash: Option<Typed<Flash>>) -> Option<Notice> {
    let notice = flash?.message().clone();
    session.remove::<Flash>();
    notice
}

/// Leaves a message for the next page view.
fn say(flash: &mut Typed<Flash>, notice: Notice) {
    flash.set_message(Some(notice));
}

#[derive(Deserialize)]
pub struct SkuForm {
    pub sku: String,
}

/// `POST /cart/add`: one more of a product (writes `lines`).
pub fn add(mut cart: Typed<Cart>, mut flash: Typed<Flash>, form: &SkuForm) -> Reply {
    match add_item(&mut cart, &form.sku, 1) {
        Ok(()) => {
            let name = product(&form.sku).map_or("item", |p| p.name);
            say(&mut flash, Notice::info(format!("Added {name}.")));
        }
        Err(err) => say(&mut flash, Notice::error(err.to_string())),
    }
    Reply::SeeOther("/")
}

/// `POST /cart/remove`: drops a product's line (writes `lines`).
pub fn remove(mut cart: Typed<Cart>, mut flash: Typed<Flash>, form: &SkuForm) -> Reply {
    if !remove_item(&mut cart, &form.sku) {
        say(
            &mut flash,
            Notice::error("That product is not in your cart."),
        );
    }
    Reply::SeeOther("/")
}

#[derive(Deserialize)]
pub struct CouponForm {
    pub code: String,
}

/// `POST /coupon`: applies a coupon (writes `coupon`, not `lines`).
pub fn coupon(mut cart: Typed<Cart>, mut flash: Typed<Flash>, form: &CouponForm) -> Reply {
    match apply_coupon(&mut cart, &form.code) {
        Ok(code) => say(&mut flash, Notice::info(format!("Coupon {code} applied."))),
        Err(err) => say(&mut flash, Notice::error(err.to_string())),
    }
    Reply::SeeOther("/")
}

/// `POST /coupon/remove`.
pub fn uncoupon(mut cart: Typed<Cart>) -> Reply {
    remove_coupon(&mut cart);
    Reply::SeeOther("/")
}

#[derive(Deserialize)]
pub struct LoginForm {
    pub user: String,
}

/// `POST /login`: a demo login (any name, no password). Setting `Account::user` binds the
/// session to that user (its owner); the session keeps its cart but gets a new id:
/// `cycle_id()` is the defence against session fixation, so an id planted in the browser
/// before login is worthless after it.
pub fn login(
    session: &SessionHandle,
    mut account: Typed<Account>,
    mut flash: Typed<Flash>,
    form: &LoginForm,
) -> Reply {
    let user = match user_name(&form.user) {
        Ok(user) => user,
        Err(why) => {
            say(&mut flash, Notice::error(format!("Not signed in: {why}.")));
            return Reply::SeeOther("/");
        }
    };
    account.set_user(Some(user.to_owned()));
    session.cycle_id();
    say(
        &mut flash,
        Notice::info(format!("Welcome, {user}. Your cart came along.")),
    );
    Reply::SeeOther("/")
}

/// What the page says after a logout.
pub const LOGGED_OUT: &str = "You are logged out: the session and its cart were destroyed.";

/// `POST /logout`: `destroy()` ends the stored session (and unbinds it from its user) and
/// clears the cookie. What is written after it goes into a new, empty session that the same
/// response sets: here, the flash that says so.
pub fn logout(session: &SessionHandle) -> Result<Reply, SessionRejection> {
    session.destroy();
    session.insert(Flash {
        message: Some(Notice::info(LOGGED_OUT)),
    })?;
    Ok(Reply::SeeOther("/"))
}

#[derive(Deserialize)]
pub struct RevokeForm {
    /// An [`OwnedSession::reference`]: opaque, never the session id.
    pub reference: String,
}

/// `POST /sessions/revoke`: signs one of the user's other sessions out. Its browser's next
/// request finds itself signed out (a fresh session, the old cookie cleared). Signing out
/// the current session this way is a logout.
pub async fn revoke(
    session: &SessionHandle,
    mut flash: Typed<Flash>,
    form: &RevokeForm,
) -> Result<Reply, SessionRejection> {
    match find(session, &form.reference).await? {
        Found::Current => return logout(session),
        Found::Other => {
            let notice = if session.revoke(&form.reference).await? {
                Notice::info("Signed out that session.")
            } else {
                Notice::info("That session had already ended.")
            };
            say(&mut flash, notice);
        }
        Found::Nothing => say(&mut flash, Notice::info("That session had already ended.")),
        Found::SignedOut => {
            say(
                &mut flash,
                Notice::error("Sign in to manage your sessions."),
            );
            return Ok(Reply::SeeOther("/"));
        }
    }
    Ok(Reply::SeeOther("/sessions"))
}

/// `POST /sessions/revoke-others`: "sign out all other devices" (after a password change,
/// say); this session stays signed in.
pub async fn revoke_others(
    session: &SessionHandle,
    mut flash: Typed<Flash>,
) -> Result<Reply, SessionRejection> {
    if session.owner().await?.is_none() {
        say(
            &mut flash,
            Notice::error("Sign in to manage your sessions."),
        );
        return Ok(Reply::SeeOther("/"));
    }
    let ended = session.revoke_others().await?;
    let text = match ended {
        0 => "No other session was signed in.".to_owned(),
        1 => "Signed out 1 other session.".to_owned(),
        n => format!("Signed out {n} other sessions."),
    };
    say(&mut flash, Notice::info(text));
    Ok(Reply::SeeOther("/sessions"))
}

/// Which of the user's sessions a reference names.
pub(super) enum Found {
    Current,
    Other,
    Nothing,
    SignedOut,
}

/// Looks `reference` up among the signed-in user's sessions.
pub(super) async fn find(
    session: &SessionHandle,
    reference: &str,
) -> Result<Found, SessionRejection> {
    if session.owner().await?.is_none() {
        return Ok(Found::SignedOut);
    }
    let sessions: Vec<OwnedSession> = session.owner_sessions().await?;
    Ok(match sessions.iter().find(|s| s.reference == reference) {
        Some(found) if found.current => Found::Current,
        Some(_) => Found::Other,
        None => Found::Nothing,
    })
}
