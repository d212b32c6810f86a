//! The shop's session types, their version history, the catalogue and the coupons.
//!
//! `Cart` is at version 3. Its earlier shapes stay here as `CartV1` and `CartV2` (same
//! `name`, lower `version`), each pointing at the one before with `migrate_from`, and a
//! `From` impl takes a value one step up. A session stored by an older deployment is
//! decoded as the version it was written in and walked up the chain on load.

use serde::{Deserialize, Serialize};
use sessions::prelude::*;

/// One product on sale.
#[derive(Debug, Clone, Copy)]
pub struct Product {
    pub sku: &'static str,
    pub name: &'static str,
    pub price_cents: u32,
}

/// What the shop sells.
pub const CATALOGUE: &[Product] = &[
    Product {
        sku: "apple",
        name: "Apples (1 kg)",
        price_cents: 320,
    },
    Product {
        sku: "bread",
        name: "Sourdough loaf",
        price_cents: 420,
    },
    Product {
        sku: "cheese",
        name: "Comté (200 g)",
        price_cents: 590,
    },
    Product {
        sku: "coffee",
        name: "Coffee beans (250 g)",
        price_cents: 750,
    },
    Product {
        sku: "olive-oil",
        name: "Olive oil (500 ml)",
        price_cents: 980,
    },
    Product {
        sku: "tea",
        name: "Green tea (50 bags)",
        price_cents: 340,
    },
];

/// The product with this SKU.
pub fn product(sku: &str) -> Option<&'static Product> {
    CATALOGUE.iter().find(|p| p.sku == sku)
}

/// A coupon the shop accepts.
#[derive(Debug, Clone, Copy)]
pub struct Coupon {
    pub code: &'static str,
    pub label: &'static str,
    /// Percent off the subtotal.
    percent_off: u32,
    /// Cents off, once the subtotal reaches `min_cents`.
    cents_off: u32,
    min_cents: u32,
}

/// The coupons the shop accepts.
pub const COUPONS: &[Coupon] = &[
    Coupon {
        code: "WELCOME10",
        label: "10% off everything",
        percent_off: 10,
        cents_off: 0,
        min_cents: 0,
    },
    Coupon {
        code: "FIVEOFF",
        label: "5.00 off orders of 20.00 or more",
        percent_off: 0,
        cents_off: 500,
        min_cents: 2000,
    },
];

/// The coupon with this code (case-insensitive).
pub fn coupon(code: &str) -> Option<&'static Coupon> {
    COUPONS
        .iter()
        .find(|c| c.code.eq_ignore_ascii_case(code.trim()))
}

// ---- the session types ------------------------------------------------------------------

/// Version 1 (the first release): a list of SKUs, one entry per unit.
#[derive(Session, Default, Debug, Clone, PartialEq)]
#[session(name = "cart", version = 1)]
pub struct CartV1 {
    pub skus: Vec<String>,
}

/// A line of a version-2 cart.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
pub struct ItemV2 {
    pub sku: String,
    pub qty: u32,
}

/// Version 2: quantities instead of repeated SKUs, and a coupon.
#[derive(Session, Default, Debug, Clone, PartialEq)]
#[session(name = "cart", version = 2, migrate_from = CartV1)]
pub struct CartV2 {
    pub items: Vec<ItemV2>,
    pub coupon: Option<String>,
}

impl From<CartV1> for CartV2 {
    /// Repeated SKUs become one item with a quantity, in the order they first appeared.
    fn from(old: CartV1) -> Self {
        let mut items: Vec<ItemV2> = Vec::new();
        for sku in old.skus {
            match items.iter_mut().find(|item| item.sku == sku) {
                Some(item) => item.qty += 1,
                None => items.push(ItemV2 { sku, qty: 1 }),
            }
        }
        CartV2 {
            items,
            coupon: None,
        }
    }
}

/// A line of the cart: the price is the one the customer saw when adding it.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
pub struct Line {
    pub sku: String,
    pub qty: u32,
    pub unit_cents: u32,
}

/// Version 3 (current): each line remembers its price, so a price change in the catalogue
/// does not change a cart under the customer's eyes.
#[derive(Session, Default, Debug, Clone, PartialEq)]
#[session(name = "cart", version = 3, migrate_from = CartV2)]
pub struct Cart {
    pub lines: Vec<Line>,
    pub coupon: Option<String>,
}

impl From<CartV2> for Cart {
    /// Lines take today's catalogue price; an item no longer sold is dropped.
    fn from(old: CartV2) -> Self {
        let lines = old
            .items
            .into_iter()
            .filter_map(|item| {
                let product = product(&item.sku)?;
                Some(Line {
                    sku: item.sku,
                    qty: item.qty,
                    unit_cents: product.price_cents,
                })
            })
            .collect();
        Cart {
            lines,
            coupon: old.coupon,
        }
    }
}

/// Who is signed in: a slot of its own, so signing in never rewrites the cart.
///
/// `user` is the session's owner (`#[session(owner)]`): setting it binds the session to that
/// user, so "Your sessions" can list and sign out the user's other sessions; `None` (or the
/// session's end) unbinds it. Adding the attribute changes nothing in what is stored.
#[derive(Session, Default, Debug, Clone)]
#[session(name = "account", version = 1)]
pub struct Account {
    #[session(owner)]
    pub user: Option<String>,
}

/// A one-shot message for the next page view (post/redirect/get).
#[derive(Session, Default, Debug, Clone)]
#[session(name = "flash", version = 1)]
pub struct Flash {
    pub message: Option<Notice>,
}

/// A message and whether it reports a mistake.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
pub struct Notice {
    pub text: String,
    pub error: bool,
}

impl Notice {
    /// News: something was done.
    pub fn info(text: impl Into<String>) -> Self {
        Notice {
            text: text.into(),
            error: false,
        }
    }

    /// A mistake: something was refused.
    pub fn error(text: impl Into<String>) -> Self {
        Notice {
            text: text.into(),
            error: true,
        }
    }
}

/// The longest user name the demo takes, in characters.
pub const MAX_USER: usize = 40;

/// A demo login's user name (any name, no password): trimmed, 1 to [`MAX_USER`] characters.
pub fn user_name(input: &str) -> Result<&str, &'static str> {
    let user = input.trim();
    if user.is_empty() || user.chars().count() > MAX_USER {
        return Err("a user name is 1 to 40 characters");
    }
    Ok(user)
}

// ---- cart operations (plain functions on `Typed<Cart>`: every write is tracked) ----------

/// Why a cart operation was refused.
#[derive(Debug, Clone, PartialEq)]
pub enum CartError {
    UnknownProduct(String),
    UnknownCoupon(String),
    BadQuantity,
}

impl std::fmt::Display for CartError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CartError::UnknownProduct(sku) => write!(f, "no product with SKU `{sku}`"),
            CartError::UnknownCoupon(code) => write!(f, "`{code}` is not a valid coupon"),
            CartError::BadQuantity => f.write_str("a quantity is between 1 and 99"),
        }
    }
}

/// The most of one product a cart holds.
const MAX_QTY: u32 = 99;

/// Adds `qty` of a product (marks `lines` dirty, nothing else).
pub fn add_item(cart: &mut Typed<Cart>, sku: &str, qty: u32) -> Result<(), CartError> {
    let product = product(sku).ok_or_else(|| CartError::UnknownProduct(sku.to_owned()))?;
    if qty == 0 || qty > MAX_QTY {
        return Err(CartError::BadQuantity);
    }
    let lines = cart.lines_mut();
    match lines.iter_mut().find(|line| line.sku == sku) {
        Some(line) => line.qty = (line.qty + qty).min(MAX_QTY),
        None => lines.push(Line {
            sku: product.sku.to_owned(),
            qty,
            unit_cents: product.price_cents,
        }),
    }
    Ok(())
}

/// Removes a product's line; whether there was one. Reading first keeps a no-op a no-op:
/// `lines_mut()` would mark `lines` dirty even if nothing were removed.
pub fn remove_item(cart: &mut Typed<Cart>, sku: &str) -> bool {
    if !cart.lines().iter().any(|line| line.sku == sku) {
        return false;
    }
    cart.lines_mut().retain(|line| line.sku != sku);
    true
}

/// Applies a coupon (marks `coupon` dirty, nothing else); returns the canonical code.
pub fn apply_coupon(cart: &mut Typed<Cart>, code: &str) -> Result<&'static str, CartError> {
    let coupon = coupon(code).ok_or_else(|| CartError::UnknownCoupon(code.trim().to_owned()))?;
    cart.set_coupon(Some(coupon.code.to_owned()));
    Ok(coupon.code)
}

/// Removes the coupon, if there is one.
pub fn remove_coupon(cart: &mut Typed<Cart>) {
    if cart.coupon().is_some() {
        cart.set_coupon(None);
    }
}

/// What a cart costs.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Totals {
    pub subtotal_cents: u32,
    pub discount_cents: u32,
    pub total_cents: u32,
}

/// The cart's subtotal, the coupon's discount and the total.
pub fn totals(cart: &Cart) -> Totals {
    let subtotal_cents: u32 = cart
        .lines
        .iter()
        .map(|line| line.qty * line.unit_cents)
        .sum();
    let discount_cents = cart.coupon.as_deref().and_then(coupon).map_or(0, |c| {
        if subtotal_cents < c.min_cents {
            0
        } else {
            (subtotal_cents * c.percent_off / 100 + c.cents_off).min(subtotal_cents)
        }
    });
    Totals {
        subtotal_cents,
        discount_cents,
        total_cents: subtotal_cents - discount_cents,
    }
}

/// `1234` → `"12.34"`.
pub fn money(cents: u32) -> String {
    format!("{}.{:02}", cents / 100, cents % 100)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn v1_to_v3_merges_repeats_and_prices_lines() {
        let v1 = CartV1 {
            skus: ["apple", "bread", "apple", "discontinued"]
                .map(String::from)
                .to_vec(),
        };
        let v3 = Cart::from(CartV2::from(v1));
        assert_eq!(
            v3.lines,
            vec![
                Line {
                    sku: "apple".into(),
                    qty: 2,
                    unit_cents: 320
                },
                Line {
                    sku: "bread".into(),
                    qty: 1,
                    unit_cents: 420
                },
            ]
        );
        assert_eq!(v3.coupon, None);
    }

    #[test]
    fn writes_mark_only_their_field() {
        let mut cart = Typed::new(Cart::default());
        assert!(!remove_item(&mut cart, "apple"));
        assert!(
            !cart.is_dirty(),
            "removing what is not there writes nothing"
        );
        add_item(&mut cart, "apple", 2).unwrap();
        assert_eq!(cart.dirty_fields().collect::<Vec<_>>(), ["lines"]);
        assert_eq!(apply_coupon(&mut cart, " welcome10 "), Ok("WELCOME10"));
        assert_eq!(cart.dirty_fields().collect::<Vec<_>>(), ["lines", "coupon"]);
    }

    #[test]
    fn refuses_unknown_products_coupons_and_bad_quantities() {
        let mut cart = Typed::new(Cart::default());
        assert_eq!(
            add_item(&mut cart, "caviar", 1),
            Err(CartError::UnknownProduct("caviar".into()))
        );
        assert_eq!(add_item(&mut cart, "apple", 0), Err(CartError::BadQuantity));
        assert!(apply_coupon(&mut cart, "FREE").is_err());
        assert!(!cart.is_dirty());
    }

    #[test]
    fn totals_apply_coupons() {
        let mut cart = Typed::new(Cart::default());
        add_item(&mut cart, "olive-oil", 2).unwrap(); // 19.60
        apply_coupon(&mut cart, "FIVEOFF").unwrap();
        assert_eq!(totals(cart.value()).discount_cents, 0, "below the minimum");
        add_item(&mut cart, "apple", 1).unwrap(); // 22.80
        assert_eq!(
            totals(cart.value()),
            Totals {
                subtotal_cents: 2280,
                discount_cents: 500,
                total_cents: 1780
            }
        );
        apply_coupon(&mut cart, "WELCOME10").unwrap();
        assert_eq!(totals(cart.value()).discount_cents, 228);
        assert_eq!(money(1780), "17.80");
    }
}
