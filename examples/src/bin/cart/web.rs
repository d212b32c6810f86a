//! The HTML side: one page, and forms that post, change the session and redirect back
//! (post/redirect/get), with a one-shot `Flash` message in the session.
//!
//! Every form posts to this origin; the session cookie is `SameSite=Lax`, so a form on
//! another site cannot post with it.

use std::time::SystemTime;

use axum::extract::{Form, State};
use axum::http::Uri;
use axum::response::{Html, Redirect};
use serde::Deserialize;
use sessions::prelude::*;

use crate::AppState;
use crate::model::{
    Account, Cart, Flash, Notice, add_item, apply_coupon, product, remove_coupon, remove_item,
};
use crate::page::{PageView, render};

/// The longest user name the demo takes.
pub(crate) const MAX_USER: usize = 40;

/// `GET /`: the catalogue, the cart and what the session layer did.
///
/// A visit that changes nothing writes nothing: the cart and account are only read, and the
/// flash message (if any) is removed. A cart stored at an older version is migrated when
/// `Typed<Cart>` is extracted and written back whole at version 3.
pub(crate) async fn page(
    State(app): State<AppState>,
    uri: Uri,
    session: SessionHandle,
    cart: Typed<Cart>,
    account: Option<Typed<Account>>,
    flash: Option<Typed<Flash>>,
) -> Html<String> {
    let mut notice = None;
    if let Some(flash) = flash {
        notice = flash.message().clone();
        session.remove::<Flash>();
    }
    if uri.query() == Some("signed-out") {
        notice = Some(Notice {
            text: "You are logged out: the session and its cart were destroyed.".to_owned(),
            error: false,
        });
    }
    let remaining = match session.deadline().await {
        Ok(deadline) => deadline.map(|d| d.remaining(SystemTime::now())),
        Err(_) => None,
    };
    let user = account.as_ref().and_then(|a| a.user().clone());
    let migrations = app.layer.migration_counts();
    Html(render(&PageView {
        cart: cart.value(),
        user: user.as_deref(),
        notice,
        migrated_from: cart.migrated_from(),
        migrations: &migrations,
        store: &app.store,
        remaining,
    }))
}

/// Leaves a message for the next page view.
fn say(flash: &mut Typed<Flash>, text: impl Into<String>, error: bool) {
    flash.set_message(Some(Notice {
        text: text.into(),
        error,
    }));
}

#[derive(Deserialize)]
pub(crate) struct SkuForm {
    sku: String,
}

/// `POST /cart/add`: one more of a product (writes `lines`).
pub(crate) async fn add(
    mut cart: Typed<Cart>,
    mut flash: Typed<Flash>,
    Form(form): Form<SkuForm>,
) -> Redirect {
    match add_item(&mut cart, &form.sku, 1) {
        Ok(()) => {
            let name = product(&form.sku).map_or("item", |p| p.name);
            say(&mut flash, format!("Added {name}."), false);
        }
        Err(err) => say(&mut flash, err.to_string(), true),
    }
    Redirect::to("/")
}

/// `POST /cart/remove`: drops a product's line (writes `lines`).
pub(crate) async fn remove(
    mut cart: Typed<Cart>,
    mut flash: Typed<Flash>,
    Form(form): Form<SkuForm>,
) -> Redirect {
    if !remove_item(&mut cart, &form.sku) {
        say(&mut flash, "That product is not in your cart.", true);
    }
    Redirect::to("/")
}

#[derive(Deserialize)]
pub(crate) struct CouponForm {
    code: String,
}

/// `POST /coupon`: applies a coupon (writes `coupon`, not `lines`).
pub(crate) async fn coupon(
    mut cart: Typed<Cart>,
    mut flash: Typed<Flash>,
    Form(form): Form<CouponForm>,
) -> Redirect {
    match apply_coupon(&mut cart, &form.code) {
        Ok(code) => say(&mut flash, format!("Coupon {code} applied."), false),
        Err(err) => say(&mut flash, err.to_string(), true),
    }
    Redirect::to("/")
}

/// `POST /coupon/remove`.
pub(crate) async fn uncoupon(mut cart: Typed<Cart>) -> Redirect {
    remove_coupon(&mut cart);
    Redirect::to("/")
}

#[derive(Deserialize)]
pub(crate) struct LoginForm {
    user: String,
}

/// `POST /login`: a demo login (any name, no password). The session keeps its cart but
/// gets a new id: `cycle_id()` is the defence against session fixation, so an id planted
/// in the browser before login is worthless after it.
pub(crate) async fn login(
    session: SessionHandle,
    mut account: Typed<Account>,
    mut flash: Typed<Flash>,
    Form(form): Form<LoginForm>,
) -> Redirect {
    let user = form.user.trim();
    if user.is_empty() || user.chars().count() > MAX_USER {
        say(&mut flash, "A name is 1 to 40 characters.", true);
        return Redirect::to("/");
    }
    account.set_user(Some(user.to_owned()));
    session.cycle_id();
    say(
        &mut flash,
        format!("Welcome, {user}. Your cart came along."),
        false,
    );
    Redirect::to("/")
}

/// `POST /logout`: `destroy()` deletes the stored session and clears the cookie.
pub(crate) async fn logout(session: SessionHandle) -> Redirect {
    session.destroy();
    Redirect::to("/?signed-out")
}
