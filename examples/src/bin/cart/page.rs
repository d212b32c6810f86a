//! The shop's one HTML page, rendered on the server (no JavaScript: plain forms that post
//! and redirect back).

use std::fmt::Write;
use std::time::Duration;

use sessions::MigrationCount;

use crate::model::{CATALOGUE, COUPONS, Cart, Notice, money, product, totals};

/// What the page shows besides the cart itself.
pub(crate) struct PageView<'a> {
    pub(crate) cart: &'a Cart,
    pub(crate) user: Option<&'a str>,
    pub(crate) notice: Option<Notice>,
    /// The stored version this request migrated the cart from.
    pub(crate) migrated_from: Option<u32>,
    pub(crate) migrations: &'a [MigrationCount],
    pub(crate) store: &'a str,
    /// How long until the session ends, when one is stored.
    pub(crate) remaining: Option<Duration>,
}

/// Escapes text for HTML content and attribute values.
pub(crate) fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

const STYLE: &str = "
body{font-family:system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;margin:0;background:#f4f5f7;color:#1d2330}
header{background:#1f3a5f;color:#fff;padding:14px 28px;display:flex;align-items:center;justify-content:space-between}
header h1{font-size:20px;margin:0}header h1 small{font-weight:400;opacity:.75;font-size:13px;margin-left:8px}
header form{display:inline-flex;gap:6px;align-items:center;margin:0}
main{display:grid;grid-template-columns:1.2fr 1fr;gap:20px;padding:20px 28px;max-width:1100px}
section{background:#fff;border-radius:8px;padding:16px 20px;box-shadow:0 1px 3px rgba(0,0,0,.08)}
section.wide{grid-column:1/3}
h2{font-size:16px;margin:0 0 12px}
table{width:100%;border-collapse:collapse;font-size:14px}
td,th{padding:6px 4px;border-bottom:1px solid #eceef2;text-align:left}
td.num,th.num{text-align:right}
tfoot td{border:none;font-weight:600}
button{background:#2d6cdf;color:#fff;border:0;border-radius:5px;padding:5px 12px;font-size:13px;cursor:pointer}
button.quiet{background:#e4e8ef;color:#1d2330}
input{padding:5px 8px;border:1px solid #c8ced8;border-radius:5px;font-size:13px}
.notice{margin:16px 28px 0;padding:10px 14px;border-radius:6px;background:#e3f4e8;color:#1c5b2f;max-width:1072px}
.notice.error{background:#fbe4e4;color:#8a1f1f}
.notice.migrated{background:#fff4d6;color:#6b4d00}
.muted{color:#6b7385;font-size:13px}
.empty{color:#6b7385;padding:10px 0}
code{background:#eef1f6;padding:1px 5px;border-radius:4px;font-size:12px}
";

/// The whole page.
pub(crate) fn render(view: &PageView<'_>) -> String {
    let mut html = String::with_capacity(8 * 1024);
    html.push_str("<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">");
    html.push_str("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">");
    html.push_str("<title>Cart shop: typed sessions</title><style>");
    html.push_str(STYLE);
    html.push_str("</style></head><body>");
    header(&mut html, view.user);
    notices(&mut html, view);
    html.push_str("<main>");
    catalogue(&mut html);
    cart(&mut html, view.cart);
    session_panel(&mut html, view);
    html.push_str("</main></body></html>");
    html
}

fn header(html: &mut String, user: Option<&str>) {
    html.push_str("<header><h1>Cart shop<small>typed, versioned sessions</small></h1><div>");
    match user {
        Some(user) => {
            let _ = write!(
                html,
                "<form method=\"post\" action=\"/logout\">Signed in as&nbsp;<strong id=\"user\">{}</strong>\
                 <button id=\"logout\" class=\"quiet\">Log out</button></form>",
                escape(user)
            );
        }
        None => html.push_str(
            "<form method=\"post\" action=\"/login\">\
             <input id=\"login-user\" name=\"user\" placeholder=\"your name\" required maxlength=\"40\">\
             <button id=\"login\" class=\"quiet\">Log in</button></form>",
        ),
    }
    html.push_str("</div></header>");
}

fn notices(html: &mut String, view: &PageView<'_>) {
    if let Some(from) = view.migrated_from {
        let _ = write!(
            html,
            "<div class=\"notice migrated\" id=\"migrated\">This cart was stored by an older version of \
             the shop (cart v{from}) and was migrated to v3 on this request, then written back as v3.</div>"
        );
    }
    if let Some(notice) = &view.notice {
        let _ = write!(
            html,
            "<div class=\"notice{}\" id=\"notice\">{}</div>",
            if notice.error { " error" } else { "" },
            escape(&notice.text)
        );
    }
}

fn catalogue(html: &mut String) {
    html.push_str("<section><h2>Catalogue</h2><table id=\"catalogue\"><thead><tr><th>Product</th><th class=\"num\">Price</th><th></th></tr></thead><tbody>");
    for product in CATALOGUE {
        let _ = write!(
            html,
            "<tr><td>{name}</td><td class=\"num\">{price}</td><td class=\"num\">\
             <form method=\"post\" action=\"/cart/add\"><input type=\"hidden\" name=\"sku\" value=\"{sku}\">\
             <button id=\"add-{sku}\">Add</button></form></td></tr>",
            name = escape(product.name),
            price = money(product.price_cents),
            sku = escape(product.sku),
        );
    }
    html.push_str("</tbody></table><p class=\"muted\">Coupons to try: ");
    for (i, coupon) in COUPONS.iter().enumerate() {
        let _ = write!(
            html,
            "{}<code>{}</code> ({})",
            if i > 0 { ", " } else { "" },
            coupon.code,
            escape(coupon.label)
        );
    }
    html.push_str("</p></section>");
}

fn cart(html: &mut String, cart: &Cart) {
    html.push_str("<section id=\"cart\"><h2>Your cart</h2>");
    if cart.lines.is_empty() {
        html.push_str("<p class=\"empty\" id=\"cart-empty\">Your cart is empty.</p>");
    } else {
        html.push_str("<table><thead><tr><th>Product</th><th class=\"num\">Qty</th><th class=\"num\">Each</th><th class=\"num\">Total</th><th></th></tr></thead><tbody id=\"cart-lines\">");
        for line in &cart.lines {
            let name = product(&line.sku).map_or(line.sku.as_str(), |p| p.name);
            let _ = write!(
                html,
                "<tr class=\"line\" data-sku=\"{sku}\" data-qty=\"{qty}\"><td>{name}</td><td class=\"num\">{qty}</td>\
                 <td class=\"num\">{each}</td><td class=\"num\">{total}</td><td class=\"num\">\
                 <form method=\"post\" action=\"/cart/remove\"><input type=\"hidden\" name=\"sku\" value=\"{sku}\">\
                 <button id=\"remove-{sku}\" class=\"quiet\">Remove</button></form></td></tr>",
                sku = escape(&line.sku),
                qty = line.qty,
                name = escape(name),
                each = money(line.unit_cents),
                total = money(line.qty * line.unit_cents),
            );
        }
        let totals = totals(cart);
        let _ = write!(
            html,
            "</tbody><tfoot><tr><td colspan=\"3\">Subtotal</td><td class=\"num\">{}</td><td></td></tr>",
            money(totals.subtotal_cents)
        );
        if let Some(code) = &cart.coupon {
            let _ = write!(
                html,
                "<tr><td colspan=\"3\">Coupon <code id=\"coupon\">{}</code></td><td class=\"num\">&minus;{}</td><td></td></tr>",
                escape(code),
                money(totals.discount_cents)
            );
        }
        let _ = write!(
            html,
            "<tr><td colspan=\"3\">Total</td><td class=\"num\" id=\"total\">{}</td><td></td></tr></tfoot></table>",
            money(totals.total_cents)
        );
    }
    match &cart.coupon {
        Some(_) => html.push_str(
            "<form method=\"post\" action=\"/coupon/remove\" style=\"margin-top:12px\">\
             <button id=\"remove-coupon\" class=\"quiet\">Remove coupon</button></form>",
        ),
        None => html.push_str(
            "<form method=\"post\" action=\"/coupon\" style=\"margin-top:12px\">\
             <input id=\"coupon-code\" name=\"code\" placeholder=\"coupon code\" required maxlength=\"40\"> \
             <button id=\"apply-coupon\">Apply</button></form>",
        ),
    }
    html.push_str("</section>");
}

fn session_panel(html: &mut String, view: &PageView<'_>) {
    html.push_str(
        "<section class=\"wide\" id=\"session\"><h2>Behind the page</h2><p class=\"muted\">",
    );
    let _ = write!(
        html,
        "Sessions are kept in: <strong id=\"store\">{}</strong>. ",
        escape(view.store)
    );
    match view.remaining {
        Some(left) => {
            let _ = write!(
                html,
                "This session ends after a week without a visit, or 30 days after it began: in {}.",
                duration(left)
            );
        }
        None => {
            html.push_str("No session is stored for you yet: it starts with your first change.")
        }
    }
    html.push_str("</p><table id=\"migrations\"><thead><tr><th>Migrated since the app started</th><th class=\"num\">Slots</th></tr></thead><tbody>");
    if view.migrations.is_empty() {
        html.push_str("<tr><td colspan=\"2\" class=\"muted\">none yet: seed some old carts with <code>cargo run -p sessions-examples --bin cart -- seed-v1 3</code></td></tr>");
    }
    for count in view.migrations {
        let _ = write!(
            html,
            "<tr class=\"migration\"><td><code>{}</code> v{} &rarr; v{}</td><td class=\"num\">{}</td></tr>",
            escape(count.type_name),
            count.from_version,
            count.to_version,
            count.count
        );
    }
    html.push_str("</tbody></table><p class=\"muted\">The same as JSON: <a href=\"/api/cart\">/api/cart</a>, \
                   <a href=\"/api/migrations\">/api/migrations</a>, <a href=\"/api/catalogue\">/api/catalogue</a>.</p></section>");
}

/// `3 days 4 h` / `5 h 12 min` / `42 min`.
fn duration(d: Duration) -> String {
    let minutes = d.as_secs() / 60;
    let (days, hours, minutes) = (minutes / 1440, minutes / 60 % 24, minutes % 60);
    match (days, hours) {
        (0, 0) => format!("{minutes} min"),
        (0, h) => format!("{h} h {minutes} min"),
        (1, h) => format!("1 day {h} h"),
        (d, h) => format!("{d} days {h} h"),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup() {
        assert_eq!(
            escape("<b a=\"x\">'&'</b>"),
            "&lt;b a=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/b&gt;"
        );
    }

    #[test]
    fn durations_read_well() {
        assert_eq!(duration(Duration::from_secs(42 * 60)), "42 min");
        assert_eq!(duration(Duration::from_secs(5 * 3600 + 720)), "5 h 12 min");
        assert_eq!(duration(Duration::from_secs(7 * 86400 - 60)), "6 days 23 h");
    }

    #[test]
    fn a_user_name_cannot_inject_markup() {
        let cart = Cart::default();
        let html = render(&PageView {
            cart: &cart,
            user: Some("<script>alert(1)</script>"),
            notice: None,
            migrated_from: None,
            migrations: &[],
            store: "memory",
            remaining: None,
        });
        assert!(!html.contains("<script>"));
        assert!(html.contains("&lt;script&gt;"));
    }
}
