//! The `cart` binary over HTTP, as a user of its JSON API and commands sees it: seeded
//! version-1 carts migrated on load and counted, `migrate-all`, the cart operations, a
//! restart, login (new id, old id dead) and logout.

mod common;

use common::{CartServer, TempDir, http, run_cart};
use serde_json::{Value, json};

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

fn lines(cart: &Value) -> Vec<(String, u64)> {
    cart["lines"]
        .as_array()
        .expect("lines")
        .iter()
        .map(|l| {
            (
                l["sku"].as_str().unwrap_or("").to_owned(),
                l["qty"].as_u64().unwrap_or(0),
            )
        })
        .collect()
}

fn line(sku: &str, qty: u64) -> (String, u64) {
    (sku.to_owned(), qty)
}

#[test]
fn seeded_v1_carts_are_migrated_on_load_counted_and_by_migrate_all() {
    let dir = TempDir::new("cart-seed");
    let db = dir.path().join("sessions.db");
    let db_arg = db.display().to_string();

    let seeded = run_cart(&["--db", &db_arg, "--port", "3999", "seed-v1", "3"]);
    let stdout = String::from_utf8_lossy(&seeded.stdout);
    let ids = seeded_ids(&stdout, 3999);
    assert_eq!(ids.len(), 3, "{stdout}");

    let server = CartServer::start(&db, &dir.path().join("server.log"));
    let port = server.port();
    let counts = http(port, "GET", "/api/migrations", None, None).json();
    assert_eq!(counts["counts"], json!([]));

    // The first load decodes the v1 slot, walks v1 -> v2 -> v3 and writes it back as v3.
    let first = http(port, "GET", "/api/cart", Some(&ids[0]), None);
    assert_eq!(first.status, 200, "{}", first.body);
    let cart = first.json();
    assert_eq!(cart["version"], 3);
    assert_eq!(cart["migrated_from"], 1);
    // Seed 0 was `apple apple cheese`: the repeated SKU became a quantity, lines got prices.
    assert_eq!(lines(&cart), [line("apple", 2), line("cheese", 1)]);
    assert_eq!(cart["subtotal_cents"], 2 * 320 + 590);
    let again = http(port, "GET", "/api/cart", Some(&ids[0]), None).json();
    assert_eq!(again["migrated_from"], Value::Null, "written back as v3");
    assert_eq!(lines(&again), lines(&cart));

    // The page shows the migration, and the counts.
    let page = http(port, "GET", "/", Some(&ids[1]), None);
    assert!(page.body.contains("id=\"migrated\""), "{}", page.body);
    assert!(
        page.body
            .contains("<code>cart</code> v1 &rarr; v3</td><td class=\"num\">2</td>")
    );
    let counts = http(port, "GET", "/api/migrations", None, None).json();
    assert_eq!(
        counts["counts"],
        json!([{"type_name": "cart", "from_version": 1, "to_version": 3, "count": 2}])
    );

    // migrate-all rewrites the one cart no request has loaded yet.
    let report = run_cart(&["--db", &db_arg, "migrate-all"]);
    let report = String::from_utf8_lossy(&report.stdout);
    assert!(
        report.contains("1 migrated (1 from v1), 2 already current, 0 failed"),
        "{report}"
    );
    let third = http(port, "GET", "/api/cart", Some(&ids[2]), None).json();
    assert_eq!(
        third["migrated_from"],
        Value::Null,
        "migrated by migrate-all"
    );
    assert!(!lines(&third).is_empty());
}

#[test]
fn api_cart_survives_a_restart_login_cycles_the_id_logout_destroys() {
    let dir = TempDir::new("cart-api");
    let db = dir.path().join("sessions.db");
    let mut server = CartServer::start(&db, &dir.path().join("server.log"));
    let port = server.port();

    // No cookie: the first change creates the session.
    let added = http(
        port,
        "POST",
        "/api/cart/items",
        None,
        Some(r#"{"sku":"apple","qty":2}"#),
    );
    assert_eq!(added.status, 200, "{}", added.body);
    let id = added.session_cookie().expect("a new session cookie");
    assert_eq!(id.len(), 43);
    let set_cookie = added.header("set-cookie").unwrap_or_default().to_owned();
    assert!(set_cookie.contains("HttpOnly") && set_cookie.contains("SameSite=Lax"));

    let added = http(
        port,
        "POST",
        "/api/cart/items",
        Some(&id),
        Some(r#"{"sku":"coffee"}"#),
    );
    assert_eq!(lines(&added.json()), [line("apple", 2), line("coffee", 1)]);
    if let Some(same) = added.session_cookie() {
        assert_eq!(same, id, "a save keeps the id");
    }

    let unknown = http(
        port,
        "POST",
        "/api/cart/items",
        Some(&id),
        Some(r#"{"sku":"caviar"}"#),
    );
    assert_eq!(unknown.status, 404);
    assert!(
        unknown.json()["error"]
            .as_str()
            .unwrap_or("")
            .contains("caviar")
    );

    let coupon = http(
        port,
        "PUT",
        "/api/cart/coupon",
        Some(&id),
        Some(r#"{"code":"welcome10"}"#),
    );
    assert_eq!(coupon.json()["coupon"], "WELCOME10");
    assert_eq!(coupon.json()["discount_cents"], (2 * 320 + 750) / 10);
    let bad = http(
        port,
        "PUT",
        "/api/cart/coupon",
        Some(&id),
        Some(r#"{"code":"FREE"}"#),
    );
    assert_eq!(bad.status, 400);

    let removed = http(port, "DELETE", "/api/cart/items/apple", Some(&id), None);
    assert_eq!(lines(&removed.json()), [line("coffee", 1)]);
    let missing = http(port, "DELETE", "/api/cart/items/apple", Some(&id), None);
    assert_eq!(missing.status, 404);

    // A read-only request writes nothing and sets no cookie.
    let page = http(port, "GET", "/", Some(&id), None);
    assert_eq!(page.status, 200);
    assert_eq!(page.header("set-cookie"), None);

    // A restart (a kill, not a clean stop): the SQLite file has it all.
    server.restart();
    let port = server.port();
    let after = http(port, "GET", "/api/cart", Some(&id), None).json();
    assert_eq!(lines(&after), [line("coffee", 1)]);
    assert_eq!(after["coupon"], "WELCOME10");

    // Login: same data, new id, and the old id is dead.
    let login = http(
        port,
        "POST",
        "/api/login",
        Some(&id),
        Some(r#"{"user":"ada"}"#),
    );
    assert_eq!(login.json()["user"], "ada");
    let new_id = login.session_cookie().expect("login sets a new id");
    assert_ne!(new_id, id);
    assert_eq!(
        lines(&http(port, "GET", "/api/cart", Some(&new_id), None).json()),
        [line("coffee", 1)]
    );
    let old = http(port, "GET", "/api/cart", Some(&id), None).json();
    assert_eq!(lines(&old), [], "the id from before login no longer works");

    // Logout: the session is deleted and the cookie cleared.
    let logout = http(port, "POST", "/api/logout", Some(&new_id), None);
    assert_eq!(logout.status, 204);
    assert_eq!(logout.session_cookie().as_deref(), Some(""));
    let gone = http(port, "GET", "/api/cart", Some(&new_id), None).json();
    assert_eq!(lines(&gone), []);
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

    let memory = std::process::Command::new(env!("CARGO_BIN_EXE_cart"))
        .args(["--store", "memory", "seed-v1", "1"])
        .output()
        .expect("run cart");
    assert!(!memory.status.success());
    assert!(String::from_utf8_lossy(&memory.stderr).contains("need sqlite, postgres or redis"));
}
