//! The shop's one HTML page, rendered on the server (no JavaScript: plain forms that post
//! and redirect back).

use std::fmt::Write;
use std::time::{Duration, SystemTime};

use sessions::OwnedSession;
use sessions::migrate::MigrationCount;

use super::model::{CATALOGUE, COUPONS, Cart, Notice, money, product, totals};

/// What the page shows besides the cart itself.
pub struct PageView<'a> {
    pub cart: &'a Cart,
    pub user: Option<&'a str>,
    pub notice: Option<Notice>,
    /// The stored version this request migrated the cart from.
    pub migrated_from: Option<u32>,
    pub migrations: &'a [MigrationCount],
    pub store: &'a str,
    /// The web framework serving the page.
    pub framework: &'a str,
    /// How long until the session ends, when one is stored.
    pub remaining: Option<Duration>,
    /// The session's CSRF token (`sessions::csrf::CsrfToken`), in every form; none before the
    /// visitor has a session.
    pub csrf: Option<&'a str>,
    /// The counters and the census (`ops.rs`), when there are any.
    pub operations: Option<&'a super::ops::Operations>,
}

/// What "Your sessions" shows.
pub struct SessionsView<'a> {
    pub user: Option<&'a str>,
    pub notice: Option<Notice>,
    pub listing: Listing,
    pub store: &'a str,
    /// The time the page is rendered at: times are shown relative to it.
    pub now: SystemTime,
    /// The session's CSRF token (`sessions::csrf::CsrfToken`), in every form; none before the
    /// visitor has a session.
    pub csrf: Option<&'a str>,
}

/// The signed-in user's sessions, or why there is no list.
pub enum Listing {
    /// Nobody is signed in.
    SignedOut,
    /// Sealed-cookie sessions live in their browsers: nothing server-side to list.
    Unsupported,
    /// Newest login first, this one marked `current`.
    Sessions(Vec<OwnedSession>),
}

/// Escapes text for HTML content and attribute values.
pub fn escape(text: &str) -> String {
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
header h1 a{color:#fff;text-decoration:none}header div{display:flex;gap:16px;align-items:center}
header div>a{color:#fff}
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
pub fn render(view: &PageView<'_>) -> String {
    let mut html = head("Cart shop: typed sessions");
    let token = token_field(view.csrf);
    header(&mut html, view.user, &token);
    if let Some(from) = view.migrated_from {
        let _ = write!(
            html,
            "<div class=\"notice migrated\" id=\"migrated\">This cart was stored by an older version of \
             the shop (cart v{from}) and was migrated to v3 on this request, then written back as v3.</div>"
        );
    }
    notice(&mut html, view.notice.as_ref());
    html.push_str("<main>");
    catalogue(&mut html, &token);
    cart(&mut html, view.cart, &token);
    session_panel(&mut html, view);
    html.push_str("</main></body></html>");
    html
}

/// "Your sessions": where the user is signed in, with a sign-out button for each other session.
pub fn render_sessions(view: &SessionsView<'_>) -> String {
    let mut html = head("Your sessions: cart shop");
    let token = token_field(view.csrf);
    header(&mut html, view.user, &token);
    notice(&mut html, view.notice.as_ref());
    html.push_str("<main><section class=\"wide\" id=\"sessions\"><h2>Your sessions</h2>");
    match &view.listing {
        Listing::SignedOut => html.push_str(
            "<p class=\"empty\" id=\"sessions-signed-out\">Sign in to see where you are signed in.</p>",
        ),
        Listing::Unsupported => {
            let _ = write!(
                html,
                "<p class=\"empty\" id=\"sessions-unsupported\">Sessions are kept in: {}. Each lives sealed in its \
                 own browser, so there is no list of them here; run the shop on a server-side store \
                 (<code>--store sqlite</code>, the default) to see them.</p>",
                escape(view.store)
            );
        }
        Listing::Sessions(list) => sessions_table(&mut html, list, view.now, &token),
    }
    html.push_str(
        "<p class=\"muted\"><a href=\"/\">Back to the shop</a></p></section></main></body></html>",
    );
    html
}

/// The hidden field that carries the session's CSRF token (nothing before the visitor has a
/// session): every form here posts, and the session layer refuses a post from another site's
/// page unless it carries a valid one (with `Csrf::default()`, a browser that says where a
/// request comes from is enough; the token is the second line, and what
/// `Csrf::default().require_token()` asks of every post).
fn token_field(token: Option<&str>) -> String {
    token.map_or_else(String::new, |token| {
        format!(
            "<input type=\"hidden\" name=\"csrf_token\" value=\"{}\">",
            escape(token)
        )
    })
}

fn sessions_table(html: &mut String, list: &[OwnedSession], now: SystemTime, token: &str) {
    html.push_str(
        "<p class=\"muted\">Every browser signed in as you. Sign out one you do not recognise; its next \
         page view finds itself signed out.</p><table id=\"session-list\"><thead><tr><th>Browser</th>\
         <th>Signed in</th><th>Session started</th><th>Last seen</th><th>Ends</th><th></th></tr></thead><tbody>",
    );
    for session in list {
        let agent = session.agent.as_deref().unwrap_or("an unknown browser");
        let _ = write!(
            html,
            "<tr class=\"owned-session{current_class}\" data-reference=\"{reference}\" data-current=\"{current}\">\
             <td title=\"{agent}\">{browser}{marker}</td><td>{signed_in}</td><td>{created}</td><td>{seen}</td>\
             <td>{ends}</td><td class=\"num\">",
            current_class = if session.current { " current" } else { "" },
            reference = escape(&session.reference),
            current = session.current,
            agent = escape(agent),
            browser = escape(&browser_name(agent).unwrap_or_else(|| agent.to_owned())),
            marker = if session.current {
                " <strong class=\"this-session\">(this browser)</strong>"
            } else {
                ""
            },
            signed_in = ago(now, session.bound_at),
            created = ago(now, session.created_at),
            seen = ago(now, session.last_seen),
            ends = ahead(now, session.expires_at),
        );
        if !session.current {
            let _ = write!(
                html,
                "<form method=\"post\" action=\"/sessions/revoke\">{token}<input type=\"hidden\" name=\"reference\" \
                 value=\"{reference}\"><button class=\"quiet revoke\">Sign out</button></form>",
                reference = escape(&session.reference)
            );
        }
        html.push_str("</td></tr>");
    }
    html.push_str("</tbody></table>");
    if list.iter().any(|s| !s.current) {
        let _ = write!(
            html,
            "<form method=\"post\" action=\"/sessions/revoke-others\" style=\"margin-top:12px\">{token}\
             <button id=\"revoke-others\">Sign out all other devices</button></form>",
        );
    }
}

/// A person's name for a browser, from its `User-Agent`: `Chrome 156 on Linux`; `None` when
/// it is not one of the common ones (the page then shows the header as it came). A user agent
/// is what the client says it is: it helps a person recognise a device, it proves nothing.
pub fn browser_name(agent: &str) -> Option<String> {
    // Order matters: Edge and Opera say `Chrome/` too, Chrome says `Safari/`.
    const BROWSERS: &[(&str, &str)] = &[
        ("Edg/", "Edge"),
        ("OPR/", "Opera"),
        ("Firefox/", "Firefox"),
        ("HeadlessChrome/", "Headless Chrome"),
        ("Chrome/", "Chrome"),
        ("Version/", "Safari"),
    ];
    const SYSTEMS: &[(&str, &str)] = &[
        ("Android", "Android"),
        ("iPhone", "iPhone"),
        ("iPad", "iPad"),
        ("Windows", "Windows"),
        ("Mac OS X", "macOS"),
        ("CrOS", "ChromeOS"),
        ("Linux", "Linux"),
    ];
    let (token, name) = BROWSERS.iter().find(|(token, _)| agent.contains(token))?;
    if *name == "Safari" && !agent.contains("Safari/") {
        return None;
    }
    let version = agent
        .split(token)
        .nth(1)
        .and_then(|rest| rest.split(|c: char| !c.is_ascii_digit()).next())
        .filter(|major| !major.is_empty());
    let mut label = match version {
        Some(major) => format!("{name} {major}"),
        None => (*name).to_owned(),
    };
    if let Some((_, system)) = SYSTEMS.iter().find(|(token, _)| agent.contains(token)) {
        label.push_str(" on ");
        label.push_str(system);
    }
    Some(label)
}

/// `12 min ago`, or `just now`.
fn ago(now: SystemTime, then: SystemTime) -> String {
    match now.duration_since(then) {
        Ok(d) if d >= Duration::from_secs(60) => format!("{} ago", duration(d)),
        _ => "just now".to_owned(),
    }
}

/// `in 6 days 23 h`.
fn ahead(now: SystemTime, then: SystemTime) -> String {
    match then.duration_since(now) {
        Ok(d) => format!("in {}", duration(d)),
        Err(_) => "now".to_owned(),
    }
}

/// The document's head, and the opening of its body.
fn head(title: &str) -> String {
    let mut html = String::with_capacity(8 * 1024);
    html.push_str("<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">");
    html.push_str("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">");
    let _ = write!(html, "<title>{}</title><style>", escape(title));
    html.push_str(STYLE);
    html.push_str("</style></head><body>");
    html
}

fn header(html: &mut String, user: Option<&str>, token: &str) {
    html.push_str(
        "<header><h1><a href=\"/\">Cart shop</a><small>typed, versioned sessions</small></h1><div>",
    );
    match user {
        Some(user) => {
            let _ = write!(
                html,
                "<a id=\"your-sessions\" href=\"/sessions\">Your sessions</a>\
                 <form method=\"post\" action=\"/logout\">{token}Signed in as&nbsp;<strong id=\"user\">{}</strong>\
                 <button id=\"logout\" class=\"quiet\">Log out</button></form>",
                escape(user)
            );
        }
        None => {
            let _ = write!(
                html,
                "<form method=\"post\" action=\"/login\">{token}\
                 <input id=\"login-user\" name=\"user\" placeholder=\"your name\" required maxlength=\"40\">\
                 <button id=\"login\" class=\"quiet\">Log in</button></form>",
            );
        }
    }
    html.push_str("</div></header>");
}

fn notice(html: &mut String, notice: Option<&Notice>) {
    if let Some(notice) = notice {
        let _ = write!(
            html,
            "<div class=\"notice{}\" id=\"notice\">{}</div>",
            if notice.error { " error" } else { "" },
            escape(&notice.text)
        );
    }
}

fn catalogue(html: &mut String, token: &str) {
    html.push_str("<section><h2>Catalogue</h2><table id=\"catalogue\"><thead><tr><th>Product</th><th class=\"num\">Price</th><th></th></tr></thead><tbody>");
    for product in CATALOGUE {
        let _ = write!(
            html,
            "<tr><td>{name}</td><td class=\"num\">{price}</td><td class=\"num\">\
             <form method=\"post\" action=\"/cart/add\">{token}<input type=\"hidden\" name=\"sku\" value=\"{sku}\">\
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

fn cart(html: &mut String, cart: &Cart, token: &str) {
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
                 <form method=\"post\" action=\"/cart/remove\">{token}<input type=\"hidden\" name=\"sku\" value=\"{sku}\">\
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
    let _ = match &cart.coupon {
        Some(_) => write!(
            html,
            "<form method=\"post\" action=\"/coupon/remove\" style=\"margin-top:12px\">{token}\
             <button id=\"remove-coupon\" class=\"quiet\">Remove coupon</button></form>",
        ),
        None => write!(
            html,
            "<form method=\"post\" action=\"/coupon\" style=\"margin-top:12px\">{token}\
             <input id=\"coupon-code\" name=\"code\" placeholder=\"coupon code\" required maxlength=\"40\"> \
             <button id=\"apply-coupon\">Apply</button></form>",
        ),
    };
    html.push_str("</section>");
}

fn session_panel(html: &mut String, view: &PageView<'_>) {
    html.push_str(
        "<section class=\"wide\" id=\"session\"><h2>Behind the page</h2><p class=\"muted\">",
    );
    let _ = write!(
        html,
        "Served by <strong id=\"framework\">{}</strong>; sessions are kept in: <strong id=\"store\">{}</strong>. ",
        escape(view.framework),
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
    html.push_str("</tbody></table>");
    if let Some(operations) = view.operations {
        super::ops::render(html, operations);
    }
    html.push_str("<p class=\"muted\">The same as JSON: <a href=\"/api/cart\">/api/cart</a>, \
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
    fn browsers_get_names_people_recognise() {
        let chrome = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) \
                      HeadlessChrome/156.0.0.0 Safari/537.36";
        assert_eq!(
            browser_name(chrome).as_deref(),
            Some("Headless Chrome 156 on Linux")
        );
        let edge = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) \
                    Chrome/120.0.0.0 Safari/537.36 Edg/120.0.2210.91";
        assert_eq!(browser_name(edge).as_deref(), Some("Edge 120 on Windows"));
        let safari = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 \
                      (KHTML, like Gecko) Version/17.1 Mobile/15E148 Safari/604.1";
        assert_eq!(browser_name(safari).as_deref(), Some("Safari 17 on iPhone"));
        let firefox =
            "Mozilla/5.0 (Macintosh; Intel Mac OS X 14.1; rv:120.0) Gecko/20100101 Firefox/120.0";
        assert_eq!(
            browser_name(firefox).as_deref(),
            Some("Firefox 120 on macOS")
        );
        assert_eq!(browser_name("curl/8.5.0"), None);
        assert_eq!(browser_name("Laptop Firefox"), None);
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
            framework: "axum",
            remaining: None,
            csrf: Some("token"),
            operations: None,
        });
        assert!(!html.contains("<script>"));
        assert!(html.contains("&lt;script&gt;"));
    }

    /// The shop page signed in or not, with a cart and a coupon or without, and the header of
    /// "Your sessions".
    fn every_page(csrf: Option<&str>) -> Vec<String> {
        let mut full = Cart::default();
        full.lines.push(super::super::model::Line {
            sku: "tea".into(),
            qty: 1,
            unit_cents: 450,
        });
        full.coupon = Some("WELCOME10".into());
        let mut pages = Vec::new();
        for cart in [Cart::default(), full] {
            for user in [None, Some("ada")] {
                pages.push(render(&PageView {
                    cart: &cart,
                    user,
                    notice: None,
                    migrated_from: None,
                    migrations: &[],
                    store: "memory",
                    framework: "axum",
                    remaining: None,
                    csrf,
                    operations: None,
                }));
            }
        }
        // (The list's own forms need sessions of a store: the browser test checks them.)
        pages.push(render_sessions(&SessionsView {
            user: Some("ada"),
            notice: None,
            listing: Listing::Unsupported,
            store: "memory",
            now: SystemTime::now(),
            csrf,
        }));
        pages
    }

    #[test]
    fn every_form_carries_the_csrf_token() {
        let field = "<input type=\"hidden\" name=\"csrf_token\" value=\"t0k&lt;n\">";
        let mut forms = 0;
        for html in every_page(Some("t0k<n")) {
            for form in html.split("<form").skip(1) {
                let form = &form[..form.find("</form>").expect("a closed form")];
                assert!(form.contains(field), "a form without the token: {form}");
                forms += 1;
            }
        }
        assert!(forms >= 20, "the pages have forms: {forms}");
        // Before the visitor has a session: no empty field either.
        for html in every_page(None) {
            assert!(!html.contains("csrf_token"));
        }
    }
}
