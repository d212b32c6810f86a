//! The cart shop in a real browser: headless Chromium driven through WebDriver (chromedriver),
//! against the `cart` binary on axum and then on actix-web (`--framework actix`).
//!
//! Open the page, add items, reload, restart the server process, find the cart still there,
//! apply a coupon, remove an item, log in (the session cookie changes, the old id is dead),
//! log out (the cart is gone, "You are logged out" shows once). Then "Your sessions" with a
//! second browser (a second WebDriver session, its own profile): both log in as the same user,
//! both are listed, one signs the other out and the other finds itself signed out; again with
//! "Sign out all other devices". Then a page of another site that posts a form to the shop
//! (cross-site request forgery): refused with a 403, the cart untouched; and once there is a
//! session, every form of the shop's own pages carries its CSRF token. Screenshots go to
//! `target/tmp/e2e-{cart,sessions,csrf}-*.png`.
//!
//! Without `chromium` and `chromedriver` (Debian: `apt-get install chromium chromium-driver`)
//! the test says `skipped: …` and passes, unless `SESSIONS_E2E_REQUIRED=1` (as `.ci/e2e.sh`
//! sets), which makes a missing browser a failure. `CHROMIUM` and `CHROMEDRIVER` name other
//! binaries.

mod common;

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{CartServer, TempDir, http};
use fantoccini::{Client, ClientBuilder, Locator};
use hyper_util::client::legacy::connect::HttpConnector;
use serde_json::json;

const SKIPPED: &str = "skipped: install chromium and chromium-driver to run the browser test";

/// How long one wait for the page may take.
const PATIENCE: Duration = Duration::from_secs(20);

/// The first of `names` found as an executable on `PATH`, or the file `var` names.
fn find_executable(var: &str, names: &[&str]) -> Option<PathBuf> {
    if let Some(path) = std::env::var_os(var) {
        let path = PathBuf::from(path);
        return path.is_file().then_some(path);
    }
    let paths = std::env::var_os("PATH")?;
    std::env::split_paths(&paths)
        .flat_map(|dir| names.iter().map(move |name| dir.join(name)))
        .find(|candidate| candidate.is_file())
}

fn required() -> bool {
    std::env::var("SESSIONS_E2E_REQUIRED").is_ok_and(|v| !v.is_empty() && v != "0")
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// chromedriver, killed when dropped.
struct Driver {
    child: Child,
    url: String,
}

impl Driver {
    fn start(binary: &Path, log: &Path) -> Self {
        let port = free_port();
        let log = std::fs::File::create(log).expect("create the chromedriver log");
        let child = Command::new(binary)
            .arg(format!("--port={port}"))
            .stdin(Stdio::null())
            .stdout(Stdio::from(log.try_clone().expect("clone a file handle")))
            .stderr(Stdio::from(log))
            .spawn()
            .expect("start chromedriver");
        Driver {
            child,
            url: format!("http://127.0.0.1:{port}"),
        }
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A WebDriver session with headless Chromium, retried while chromedriver starts.
async fn browser(driver: &Driver, chromium: &Path, profile: &Path) -> Client {
    let args = [
        "--headless",
        "--no-sandbox", // the test may run as root (CI containers)
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--window-size=1280,1000",
    ]
    .map(String::from)
    .into_iter()
    .chain([format!("--user-data-dir={}", profile.display())])
    .collect::<Vec<_>>();
    let capabilities = json!({
        "browserName": "chrome",
        "goog:chromeOptions": { "binary": chromium.display().to_string(), "args": args },
    });
    let serde_json::Value::Object(capabilities) = capabilities else {
        unreachable!("an object literal")
    };
    let started = Instant::now();
    loop {
        match ClientBuilder::new(HttpConnector::new())
            .capabilities(capabilities.clone())
            .connect(&driver.url)
            .await
        {
            Ok(client) => return client,
            Err(err) if started.elapsed() < Duration::from_secs(30) => {
                let _ = err;
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(err) => panic!("no WebDriver session from {}: {err}", driver.url),
        }
    }
}

/// The cart's lines as the page shows them: `(sku, qty)`.
async fn cart_lines(client: &Client) -> Vec<(String, u32)> {
    let mut lines = Vec::new();
    for row in client
        .find_all(Locator::Css("tr.line"))
        .await
        .expect("find cart lines")
    {
        let sku = row
            .attr("data-sku")
            .await
            .ok()
            .flatten()
            .unwrap_or_default();
        let qty = row
            .attr("data-qty")
            .await
            .ok()
            .flatten()
            .and_then(|q| q.parse().ok())
            .unwrap_or(0);
        lines.push((sku, qty));
    }
    lines
}

fn lines(expected: &[(&str, u32)]) -> Vec<(String, u32)> {
    expected.iter().map(|(s, q)| (s.to_string(), *q)).collect()
}

/// Waits until the page shows `expected` as the cart.
async fn expect_cart(client: &Client, expected: &[(&str, u32)], step: &str) {
    let expected = lines(expected);
    let started = Instant::now();
    loop {
        let shown = cart_lines(client).await;
        if shown == expected {
            return;
        }
        if started.elapsed() > PATIENCE {
            let source = client.source().await.unwrap_or_default();
            panic!("{step}: the page shows {shown:?}, not {expected:?}; the page:\n{source}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Clicks the element with this id (a form's button: the browser posts and follows the redirect).
async fn click(client: &Client, id: &str) {
    client
        .wait()
        .at_most(PATIENCE)
        .for_element(Locator::Id(id))
        .await
        .unwrap_or_else(|e| panic!("no #{id} on the page: {e}"))
        .click()
        .await
        .unwrap_or_else(|e| panic!("clicking #{id}: {e}"));
}

/// The text of the element with this id, once it is on the page.
async fn text_of(client: &Client, id: &str) -> String {
    client
        .wait()
        .at_most(PATIENCE)
        .for_element(Locator::Id(id))
        .await
        .unwrap_or_else(|e| panic!("no #{id} on the page: {e}"))
        .text()
        .await
        .unwrap_or_default()
}

/// The `session` cookie the browser holds.
async fn session_cookie(client: &Client) -> Option<String> {
    client
        .get_all_cookies()
        .await
        .expect("read cookies")
        .into_iter()
        .find(|c| c.name() == "session")
        .map(|c| c.value().to_owned())
}

/// The number of sessions "Your sessions" lists, once it is `expected`.
async fn expect_sessions(client: &Client, expected: usize, step: &str) {
    let started = Instant::now();
    loop {
        let rows = client
            .find_all(Locator::Css("tr.owned-session"))
            .await
            .expect("find listed sessions")
            .len();
        if rows == expected {
            return;
        }
        if started.elapsed() > PATIENCE {
            let source = client.source().await.unwrap_or_default();
            panic!("{step}: {rows} sessions listed, not {expected}; the page:\n{source}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Waits until the page's notice (the flash message) contains `expected`.
async fn expect_notice(client: &Client, expected: &str, step: &str) {
    let started = Instant::now();
    loop {
        let shown = match client.find(Locator::Id("notice")).await {
            Ok(notice) => notice.text().await.unwrap_or_default(),
            Err(_) => String::new(),
        };
        if shown.contains(expected) {
            return;
        }
        if started.elapsed() > PATIENCE {
            panic!("{step}: the notice says {shown:?}, not {expected:?}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Logs in as `user` through the header's form.
async fn log_in(client: &Client, user: &str) {
    client
        .wait()
        .at_most(PATIENCE)
        .for_element(Locator::Id("login-user"))
        .await
        .expect("the login field")
        .send_keys(user)
        .await
        .expect("type a name");
    click(client, "login").await;
    assert_eq!(text_of(client, "user").await, user);
}

/// Whether the page shows the login form (nobody signed in), once loaded.
async fn signed_out(client: &Client) -> bool {
    text_of(client, "cart").await;
    client.find(Locator::Id("login-user")).await.is_ok()
        && client.find(Locator::Id("user")).await.is_err()
}

/// Writes a screenshot of what `client` shows to `target/tmp/{name}.png`.
async fn screenshot(client: &Client, name: &str) {
    let png = client.screenshot().await.expect("take a screenshot");
    let shot = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("{name}.png"));
    std::fs::write(&shot, png).expect("write the screenshot");
    println!("screenshot: {}", shot.display());
}

/// What a test needs to open browsers: the chromium binary, the driver, a directory for
/// profiles.
struct Browsers<'a> {
    chromium: &'a Path,
    driver: &'a Driver,
    dir: &'a Path,
}

impl Browsers<'_> {
    /// A new browser with a profile of its own (no cookies shared with any other).
    async fn open(&self, name: &str) -> Client {
        let profile = self.dir.join(format!("profile-{name}"));
        std::fs::create_dir_all(&profile).expect("create the browser profile dir");
        browser(self.driver, self.chromium, &profile).await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cart_and_your_sessions_in_a_real_browser_on_both_frameworks() {
    let chromium = find_executable(
        "CHROMIUM",
        &[
            "chromium",
            "chromium-browser",
            "google-chrome",
            "google-chrome-stable",
        ],
    );
    let chromedriver = find_executable("CHROMEDRIVER", &["chromedriver"]);
    let (Some(chromium), Some(chromedriver)) = (chromium, chromedriver) else {
        assert!(
            !required(),
            "SESSIONS_E2E_REQUIRED is set, but chromium or chromedriver is missing \
             (apt-get install chromium chromium-driver; or set CHROMIUM and CHROMEDRIVER)"
        );
        println!("{SKIPPED}");
        return;
    };

    let dir = TempDir::new("e2e");
    let driver = Driver::start(&chromedriver, &dir.path().join("chromedriver.log"));
    for framework in ["axum", "actix"] {
        println!("==> {framework}");
        let here = dir.path().join(framework);
        std::fs::create_dir_all(&here).expect("create a directory per framework");
        let browsers = Browsers {
            chromium: &chromium,
            driver: &driver,
            dir: &here,
        };
        let mut server = CartServer::start(
            framework,
            &here.join("sessions.db"),
            &here.join("server.log"),
        );
        shop_survives_restart_login_and_logout(&browsers, &mut server, framework).await;
        your_sessions_signs_the_other_browser_out(&browsers, &server, framework).await;
        a_cross_site_form_post_is_refused(&browsers, &server, framework).await;
        let log = server.log_text();
        assert!(
            !log.contains("ERROR"),
            "{framework}: the server logged errors:\n{log}"
        );
    }
    drop(driver);
}

async fn shop_survives_restart_login_and_logout(
    browsers: &Browsers<'_>,
    server: &mut CartServer,
    framework: &str,
) {
    let client = browsers.open("shop").await;
    let url = format!("{}/", server.url());

    // A first visit: the catalogue, an empty cart, and no session yet (nothing changed).
    client.goto(&url).await.expect("open the shop");
    assert_eq!(
        client.title().await.expect("title"),
        "Cart shop: typed sessions"
    );
    text_of(&client, "cart-empty").await;
    let serving = if framework == "actix" {
        "actix-web"
    } else {
        "axum"
    };
    assert_eq!(text_of(&client, "framework").await, serving);
    assert_eq!(
        session_cookie(&client).await,
        None,
        "a visit that changes nothing stores nothing"
    );

    // Add items: each form posts, the session is created, the page shows the cart.
    click(&client, "add-apple").await;
    expect_cart(&client, &[("apple", 1)], "after adding an apple").await;
    click(&client, "add-apple").await;
    expect_cart(&client, &[("apple", 2)], "after adding a second apple").await;
    click(&client, "add-bread").await;
    expect_cart(&client, &[("apple", 2), ("bread", 1)], "after adding bread").await;
    let first_id = session_cookie(&client)
        .await
        .expect("a session cookie once the cart changed");
    assert_eq!(first_id.len(), 43);

    // Reload: the cart is read back from the store.
    client.refresh().await.expect("reload");
    expect_cart(&client, &[("apple", 2), ("bread", 1)], "after a reload").await;

    // Restart the server process (killed, not stopped cleanly): the SQLite file keeps it.
    server.restart();
    client
        .goto(&url)
        .await
        .expect("open the shop after the restart");
    expect_cart(
        &client,
        &[("apple", 2), ("bread", 1)],
        "after a server restart",
    )
    .await;
    assert_eq!(
        session_cookie(&client).await.as_deref(),
        Some(first_id.as_str())
    );

    // A coupon writes only `coupon`; removing a line writes only `lines`.
    client
        .wait()
        .at_most(PATIENCE)
        .for_element(Locator::Id("coupon-code"))
        .await
        .expect("the coupon field")
        .send_keys("welcome10")
        .await
        .expect("type a coupon");
    click(&client, "apply-coupon").await;
    assert_eq!(text_of(&client, "coupon").await, "WELCOME10");
    click(&client, "remove-bread").await;
    expect_cart(&client, &[("apple", 2)], "after removing the bread").await;
    assert_eq!(text_of(&client, "total").await, "5.76"); // 6.40 less 10%

    // Log in: the session gets a new id (cycle_id), the cart comes along.
    log_in(&client, "ada").await;
    expect_cart(&client, &[("apple", 2)], "after logging in").await;
    let second_id = session_cookie(&client)
        .await
        .expect("a session cookie after login");
    assert_ne!(second_id, first_id, "login must change the session id");
    let stale = http(server.port(), "GET", "/api/cart", Some(&first_id), None).json();
    assert_eq!(
        stale["lines"],
        json!([]),
        "the id from before login is dead"
    );

    // Behind the page: the live counters (of this process: since the restart, the coupon,
    // the removal and the login were saved) and the census of the store by cart version; the
    // same counters at /metrics, in the Prometheus text format.
    let saves: u64 = text_of(&client, "saves").await.parse().expect("a count");
    assert!(saves >= 3, "{framework}: {saves} saves since the restart");
    let census = text_of(&client, "census").await;
    assert!(census.contains("cart v3 (json)"), "{framework}: {census}");
    let metrics = http(server.port(), "GET", "/metrics", None, None);
    assert_eq!(metrics.status, 200, "{framework}: {}", metrics.body);
    assert!(
        metrics.body.contains("sessions_cycled_total 1"),
        "{framework}: one login since the restart:\n{}",
        metrics.body
    );
    assert!(
        metrics
            .body
            .contains("sessions_store_seconds_bucket{store=\"sqlite\",op=\"load\""),
        "{framework}: store timings by store and operation:\n{}",
        metrics.body
    );

    // A picture of the page as a person sees it, for a look by eye.
    screenshot(&client, &format!("e2e-cart-{framework}")).await;

    // Log out: the session is destroyed and the cart gone, for good; the flash that says so
    // came in a new session the logout's response set, and shows once.
    click(&client, "logout").await;
    expect_notice(&client, "You are logged out", "after logging out").await;
    text_of(&client, "cart-empty").await;
    assert!(signed_out(&client).await);
    assert_ne!(
        session_cookie(&client).await.as_deref(),
        Some(second_id.as_str()),
        "logout replaces the cookie"
    );
    client.refresh().await.expect("reload after logout");
    expect_cart(&client, &[], "after logging out and reloading").await;
    assert!(
        client.find(Locator::Id("notice")).await.is_err(),
        "the flash shows once"
    );
    let after = http(server.port(), "GET", "/api/cart", Some(&second_id), None).json();
    assert_eq!(
        after["lines"],
        json!([]),
        "the destroyed session is gone from the store"
    );
    client.close().await.expect("end the browser session");
}

async fn your_sessions_signs_the_other_browser_out(
    browsers: &Browsers<'_>,
    server: &CartServer,
    framework: &str,
) {
    let url = format!("{}/", server.url());
    let laptop = browsers.open("laptop").await;
    let phone = browsers.open("phone").await;
    for client in [&laptop, &phone] {
        client.goto(&url).await.expect("open the shop");
        log_in(client, "grace").await;
    }

    // Both browsers are listed on the laptop's "Your sessions", the laptop marked as this one.
    click(&laptop, "your-sessions").await;
    expect_sessions(&laptop, 2, "two browsers signed in").await;
    let current = laptop
        .find(Locator::Css("tr.owned-session.current"))
        .await
        .expect("this browser is marked")
        .text()
        .await
        .unwrap_or_default();
    assert!(current.contains("(this browser)"), "{current}");
    assert!(
        current.contains("Chrome"),
        "the captured user agent: {current}"
    );
    screenshot(&laptop, &format!("e2e-sessions-{framework}")).await;
    every_form_carries_the_csrf_token(&laptop, "your sessions").await;

    // Sign the phone out from the laptop; the phone's next page view is signed out.
    laptop
        .find(Locator::Css("tr.owned-session:not(.current) button.revoke"))
        .await
        .expect("a sign-out button for the other session")
        .click()
        .await
        .expect("click sign out");
    expect_notice(
        &laptop,
        "Signed out that session.",
        "after signing the phone out",
    )
    .await;
    expect_sessions(&laptop, 1, "after signing the phone out").await;
    phone.refresh().await.expect("reload the phone");
    assert!(signed_out(&phone).await, "the phone is signed out");
    laptop.goto(&url).await.expect("back to the shop");
    assert_eq!(text_of(&laptop, "user").await, "grace", "the laptop stays");

    // The phone signs in again; "Sign out all other devices" on the laptop ends it again.
    log_in(&phone, "grace").await;
    click(&laptop, "your-sessions").await;
    expect_sessions(&laptop, 2, "the phone signed in again").await;
    click(&laptop, "revoke-others").await;
    expect_notice(
        &laptop,
        "Signed out 1 other session.",
        "after signing out all others",
    )
    .await;
    expect_sessions(&laptop, 1, "after signing out all other devices").await;
    phone.refresh().await.expect("reload the phone");
    assert!(signed_out(&phone).await, "the phone is signed out again");

    laptop
        .close()
        .await
        .expect("end the laptop's browser session");
    phone
        .close()
        .await
        .expect("end the phone's browser session");
}

/// Every form of the page `client` shows carries a non-empty `csrf_token` field.
async fn every_form_carries_the_csrf_token(client: &Client, page: &str) {
    let forms = client
        .find_all(Locator::Css("form"))
        .await
        .expect("find the forms");
    assert!(!forms.is_empty(), "{page}: the page has forms");
    for form in forms {
        let field = form
            .find(Locator::Css("input[name=csrf_token]"))
            .await
            .unwrap_or_else(|_| panic!("{page}: a form without a csrf_token field"));
        let token = field.attr("value").await.ok().flatten().unwrap_or_default();
        assert_eq!(token.len(), 86, "{page}: the token {token:?}");
    }
}

/// A page of another site: a form that posts to the shop's `/cart/add`, served from another
/// port of this machine under another host name (`localhost` is another site than
/// `127.0.0.1`), by a thread that answers every connection with it.
fn serve_attacker_page(shop_port: u16) -> String {
    use std::io::{Read, Write};
    let listener = TcpListener::bind("127.0.0.1:0").expect("a port for the attacker's page");
    let port = listener.local_addr().expect("its address").port();
    let page = format!(
        "<!doctype html><html><head><title>Win a prize</title></head><body>\
         <form id=\"prize\" method=\"post\" action=\"http://127.0.0.1:{shop_port}/cart/add\">\
         <input type=\"hidden\" name=\"sku\" value=\"coffee\">\
         <button id=\"claim\">Claim your prize</button></form></body></html>"
    );
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut request = [0u8; 4096];
            let _ = stream.read(&mut request);
            let _ = write!(
                stream,
                "HTTP/1.1 200 OK\r\nContent-Type: text/html; charset=utf-8\r\n\
                 Content-Length: {}\r\nConnection: close\r\n\r\n{page}",
                page.len()
            );
        }
    });
    format!("http://localhost:{port}/")
}

async fn a_cross_site_form_post_is_refused(
    browsers: &Browsers<'_>,
    server: &CartServer,
    framework: &str,
) {
    let url = format!("{}/", server.url());
    let client = browsers.open("csrf").await;
    // A first visit stores nothing, so its forms have no token to carry: the tokenless check
    // lets their same-origin posts through.
    client.goto(&url).await.expect("open the shop");
    click(&client, "add-apple").await;
    expect_cart(&client, &[("apple", 1)], "the shop's own form posts").await;
    every_form_carries_the_csrf_token(&client, "the shop, with a cart").await;
    log_in(&client, "mallory-target").await;
    every_form_carries_the_csrf_token(&client, "the shop, signed in").await;

    // The user visits another site, whose page posts a form to the shop.
    let attacker = serve_attacker_page(server.port());
    client
        .goto(&attacker)
        .await
        .expect("open the attacker's page");
    click(&client, "claim").await;
    let refused = "forbidden: a page of another site may not send this request";
    let started = Instant::now();
    loop {
        let source = client.source().await.unwrap_or_default();
        if source.contains(refused) {
            break;
        }
        assert!(
            started.elapsed() < PATIENCE,
            "{framework}: the cross-site post was not refused; the page:\n{source}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    screenshot(&client, &format!("e2e-csrf-{framework}")).await;

    // Back on the shop: the cart is as it was, still signed in.
    client.goto(&url).await.expect("back to the shop");
    expect_cart(&client, &[("apple", 1)], "after the cross-site post").await;
    assert_eq!(text_of(&client, "user").await, "mallory-target");
    client.close().await.expect("end the browser session");
}
