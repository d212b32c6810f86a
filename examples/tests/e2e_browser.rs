//! The cart shop in a real browser: headless Chromium driven through WebDriver (chromedriver).
//!
//! Open the page, add items, reload, restart the server process, find the cart still there,
//! apply a coupon, remove an item, log in (the session cookie changes, the old id is dead),
//! log out (the cart is gone). A screenshot is written to `target/tmp/e2e-cart.png`.
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cart_in_a_real_browser_survives_restart_login_and_logout() {
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
    let profile = dir.path().join("profile");
    std::fs::create_dir_all(&profile).expect("create the browser profile dir");
    let server_log = dir.path().join("server.log");
    let mut server = CartServer::start(&dir.path().join("sessions.db"), &server_log);
    let driver = Driver::start(&chromedriver, &dir.path().join("chromedriver.log"));
    let client = browser(&driver, &chromium, &profile).await;
    let url = format!("{}/", server.url());

    // A first visit: the catalogue, an empty cart, and no session yet (nothing changed).
    client.goto(&url).await.expect("open the shop");
    assert_eq!(
        client.title().await.expect("title"),
        "Cart shop: typed sessions"
    );
    text_of(&client, "cart-empty").await;
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
    client
        .find(Locator::Id("login-user"))
        .await
        .expect("the login field")
        .send_keys("ada")
        .await
        .expect("type a name");
    click(&client, "login").await;
    assert_eq!(text_of(&client, "user").await, "ada");
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

    // A picture of the page as a person sees it, for a look by eye.
    let png = client.screenshot().await.expect("take a screenshot");
    let shot = Path::new(env!("CARGO_TARGET_TMPDIR")).join("e2e-cart.png");
    std::fs::write(&shot, png).expect("write the screenshot");
    println!("screenshot: {}", shot.display());

    // Log out: the session is destroyed, the cookie cleared, the cart gone, for good.
    click(&client, "logout").await;
    text_of(&client, "cart-empty").await;
    assert_eq!(
        session_cookie(&client).await,
        None,
        "logout clears the cookie"
    );
    client.refresh().await.expect("reload after logout");
    expect_cart(&client, &[], "after logging out and reloading").await;
    let after = http(server.port(), "GET", "/api/cart", Some(&second_id), None).json();
    assert_eq!(
        after["lines"],
        json!([]),
        "the destroyed session is gone from the store"
    );

    client.close().await.expect("end the browser session");
    drop(driver);
    let log = server.log_text();
    assert!(!log.contains("ERROR"), "the server logged errors:\n{log}");
}
