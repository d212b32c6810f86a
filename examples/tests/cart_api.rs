//! The cart shop as its users see it, on axum and on actix-web (every test runs on both):
//! seeded version-1 carts migrated on load and counted, `migrate-all`, the cart operations
//! through the JSON API and the page, login (new id, old id dead), logout, and the binary
//! itself. "Your sessions" and the logout's flash are in `your_sessions.rs`.
//!
//! The requests go through the test kit (`sessions::testing::TestClient`: a browser's cookie
//! jar) to the app built in-process by the same code as the binary's, over a SQLite file;
//! `seed`/`inspect` put a session in the store and look at one.

mod common;

use common::shop::{Shop, cart_of, json, line, lines, location};
use common::{CartServer, TempDir, http, run_cart};
use serde_json::{Value, json};
use sessions::testing::{inspect, seed};
use sessions_examples::cart::cli::Framework;
use sessions_examples::cart::model::{Cart, Line};

/// The session ids `seed-v1` printed, each checked against its curl line.
fn seeded_ids(stdout: &str, port: u16) -> Vec<String> {
    let ids: Vec<String> = stdout
        .lines()
        .filter_map(|line| line.split_whitespace().next())
        .filter(|word| word.len() == 43)
        .map(str::to_owned)
        .collect();
    for id in &ids {
        let curl = format!("curl --cookie 'session={id}' http://127.0.0.1:{port}/api/cart");
        assert!(stdout.contains(&curl), "no `{curl}` in:\n{stdout}");
    }
    ids
}

async fn seeded_v1_carts_are_migrated_on_load_counted_and_by_migrate_all(framework: Framework) {
    let dir = TempDir::new("cart-seed");
    let db = dir.path().join("sessions.db");
    let db_arg = db.display().to_string();

    let seeded = run_cart(&["--db", &db_arg, "--port", "3999", "seed-v1", "3"]);
    let stdout = String::from_utf8_lossy(&seeded.stdout);
    let ids = seeded_ids(&stdout, 3999);
    assert_eq!(ids.len(), 3, "{stdout}");

    let shop = Shop::sqlite(framework, &db).await;
    let anyone = shop.browser();
    let counts = json(&anyone.get("/api/migrations").await);
    assert_eq!(counts["counts"], json!([]));

    // The first load decodes the v1 slot, walks v1 -> v2 -> v3 and writes it back as v3.
    let first = shop.browser_with(&ids[0]);
    let cart = cart_of(&first).await;
    assert_eq!(cart["version"], 3);
    assert_eq!(cart["migrated_from"], 1);
    // Seed 0 was `apple apple cheese`: the repeated SKU became a quantity, lines got prices.
    assert_eq!(lines(&cart), [line("apple", 2), line("cheese", 1)]);
    assert_eq!(cart["subtotal_cents"], 2 * 320 + 590);
    let again = cart_of(&first).await;
    assert_eq!(again["migrated_from"], Value::Null, "written back as v3");
    assert_eq!(lines(&again), lines(&cart));

    // The page shows the migration, and the counts.
    let page = shop.browser_with(&ids[1]).get("/").await.text();
    assert!(page.contains("id=\"migrated\""), "{page}");
    assert!(page.contains("<code>cart</code> v1 &rarr; v3</td><td class=\"num\">2</td>"));
    let counts = json(&anyone.get("/api/migrations").await);
    assert_eq!(
        counts["counts"],
        json!([{"type_name": "cart", "from_version": 1, "to_version": 3, "count": 2}])
    );

    // migrate-all (another process, on the same file) rewrites the one cart no request has
    // loaded yet.
    let report = run_cart(&["--db", &db_arg, "migrate-all"]);
    let report = String::from_utf8_lossy(&report.stdout);
    assert!(
        report.contains("1 migrated (1 from v1), 2 already current, 0 failed"),
        "{report}"
    );
    let third = cart_of(&shop.browser_with(&ids[2])).await;
    assert_eq!(
        third["migrated_from"],
        Value::Null,
        "migrated by migrate-all"
    );
    assert!(!lines(&third).is_empty());
}

async fn the_api_changes_only_what_it_says_login_cycles_the_id_logout_destroys(
    framework: Framework,
) {
    let dir = TempDir::new("cart-api");
    let db = dir.path().join("sessions.db");
    let shop = Shop::sqlite(framework, &db).await;
    let browser = shop.browser();

    // No cookie: the first change creates the session.
    let added = browser
        .post_json("/api/cart/items", &json!({"sku": "apple", "qty": 2}))
        .await;
    assert_eq!(added.status(), 200, "{}", added.text());
    let set_cookie = added.set_cookies().join("\n");
    assert!(set_cookie.contains("HttpOnly") && set_cookie.contains("SameSite=Lax"));
    let id = shop.token(&browser).expect("a new session cookie");
    assert_eq!(id.len(), 43);

    let added = browser
        .post_json("/api/cart/items", &json!({"sku": "coffee"}))
        .await;
    assert_eq!(lines(&json(&added)), [line("apple", 2), line("coffee", 1)]);
    assert!(added.set_cookies().is_empty(), "a save keeps the id");

    let unknown = browser
        .post_json("/api/cart/items", &json!({"sku": "caviar"}))
        .await;
    assert_eq!(unknown.status(), 404);
    assert!(
        json(&unknown)["error"]
            .as_str()
            .unwrap_or_default()
            .contains("caviar")
    );

    let coupon = browser
        .put_json("/api/cart/coupon", &json!({"code": "welcome10"}))
        .await;
    assert_eq!(json(&coupon)["coupon"], "WELCOME10");
    assert_eq!(json(&coupon)["discount_cents"], (2 * 320 + 750) / 10);
    let bad = browser
        .put_json("/api/cart/coupon", &json!({"code": "FREE"}))
        .await;
    assert_eq!(bad.status(), 400);

    let removed = browser.delete("/api/cart/items/apple").await;
    assert_eq!(lines(&json(&removed)), [line("coffee", 1)]);
    let missing = browser.delete("/api/cart/items/apple").await;
    assert_eq!(missing.status(), 404);

    // A read-only request writes nothing and sets no cookie.
    let page = browser.get("/").await;
    assert_eq!(page.status(), 200);
    assert!(page.set_cookies().is_empty());

    // What the store holds, as a handler would see it.
    let stored = inspect::<Cart>(&shop.layer, &id)
        .await
        .expect("the store answers")
        .expect("a stored cart");
    assert_eq!(stored.coupon.as_deref(), Some("WELCOME10"));
    assert_eq!(stored.lines.len(), 1);

    // Login: same data, new id, and the old id is dead.
    let login = browser
        .post_json("/api/login", &json!({"user": "ada"}))
        .await;
    assert_eq!(json(&login)["user"], "ada");
    let new_id = shop.token(&browser).expect("a session after login");
    assert_ne!(new_id, id, "login must change the session id");
    assert_eq!(lines(&cart_of(&browser).await), [line("coffee", 1)]);
    let stale = shop.browser_with(&id);
    assert_eq!(
        lines(&cart_of(&stale).await),
        [],
        "the id from before login no longer works"
    );
    let too_long = browser.post_json("/api/login", &json!({"user": " "})).await;
    assert_eq!(too_long.status(), 400);

    // Logout: the session is deleted and the cookie cleared.
    let logout = browser.post("/api/logout").await;
    assert_eq!(logout.status(), 204);
    assert_eq!(shop.token(&browser), None, "the cookie is cleared");
    let gone = inspect::<Cart>(&shop.layer, &new_id)
        .await
        .expect("the store answers");
    assert!(gone.is_none(), "the session is gone from the store");
}

async fn a_seeded_cart_shows_on_the_page_and_survives_a_new_app_on_the_same_file(
    framework: Framework,
) {
    let dir = TempDir::new("cart-seeded");
    let db = dir.path().join("sessions.db");
    let token = {
        let shop = Shop::sqlite(framework, &db).await;
        let cart = Cart {
            lines: vec![Line {
                sku: "tea".into(),
                qty: 3,
                unit_cents: 340,
            }],
            coupon: None,
        };
        let token = seed(&shop.layer, cart).await.expect("seed a cart");
        let page = shop.browser_with(&token).get("/").await.text();
        assert!(page.contains("data-sku=\"tea\" data-qty=\"3\""), "{page}");
        token
    };
    // The app is gone (as in a restart); a new one over the same file finds the cart.
    let shop = Shop::sqlite(framework, &db).await;
    let browser = shop.browser_with(&token);
    assert_eq!(lines(&cart_of(&browser).await), [line("tea", 3)]);
    let added = browser.post_form("/cart/add", &[("sku", "bread")]).await;
    assert_eq!(
        (added.status().as_u16(), location(&added)),
        (303, Some("/"))
    );
    let page = browser.get("/").await.text();
    assert!(page.contains("Added Sourdough loaf."), "the flash: {page}");
    assert!(
        !browser
            .get("/")
            .await
            .text()
            .contains("Added Sourdough loaf."),
        "a flash shows once"
    );
}
on_both_frameworks!(
    seeded_v1_carts_are_migrated_on_load_counted_and_by_migrate_all,
    the_api_changes_only_what_it_says_login_cycles_the_id_logout_destroys,
    a_seeded_cart_shows_on_the_page_and_survives_a_new_app_on_the_same_file,
);

/// The binary itself, on each framework: it serves, and a cart outlives a crash (SIGKILL) and
/// a restart on the same SQLite file. (Plain HTTP with an explicit cookie, no jar.)
#[test]
fn the_binary_serves_both_frameworks_and_a_cart_outlives_a_kill() {
    for framework in ["axum", "actix"] {
        let dir = TempDir::new("cart-binary");
        let mut server = CartServer::start(
            framework,
            &dir.path().join("sessions.db"),
            &dir.path().join("log"),
        );
        let added = http(
            server.port(),
            "POST",
            "/api/cart/items",
            None,
            Some(r#"{"sku":"apple","qty":2}"#),
        );
        assert_eq!(added.status, 200, "{framework}: {}", added.body);
        let id = added.session_cookie().expect("a new session cookie");
        server.restart();
        let after = http(server.port(), "GET", "/api/cart", Some(&id), None).json();
        assert_eq!(lines(&after), [line("apple", 2)], "{framework}");
        let page = http(server.port(), "GET", "/", Some(&id), None);
        assert_eq!(page.status, 200);
        assert!(page.body.contains("Apples (1 kg)"), "{framework}");
        let log = server.log_text();
        assert!(!log.contains("ERROR"), "{framework} logged errors:\n{log}");
    }
}

#[test]
fn help_bad_options_and_stores_that_cannot_be_seeded() {
    let help = run_cart(&["help"]);
    assert!(String::from_utf8_lossy(&help.stdout).contains("seed-v1 N"));

    let bad = std::process::Command::new(env!("CARGO_BIN_EXE_cart"))
        .args(["--store", "mongo"])
        .output()
        .expect("run cart");
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("unknown store `mongo`"));

    let bad = std::process::Command::new(env!("CARGO_BIN_EXE_cart"))
        .args(["--framework", "rocket"])
        .output()
        .expect("run cart");
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("unknown framework `rocket`"));

    let memory = std::process::Command::new(env!("CARGO_BIN_EXE_cart"))
        .args(["--store", "memory", "seed-v1", "1"])
        .output()
        .expect("run cart");
    assert!(!memory.status.success());
    assert!(String::from_utf8_lossy(&memory.stderr).contains("need sqlite, postgres or redis"));
}
