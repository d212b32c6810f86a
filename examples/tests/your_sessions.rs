//! "Your sessions" and logging out, on axum and on actix-web (every test runs on both): two
//! browsers of one user both listed, one signs the other out and the other finds itself
//! signed out; "sign out all other devices"; what the API refuses; the cookie store, which
//! has no list; and the "You are logged out" flash, which lives in the fresh session the
//! logout's response sets.
//!
//! Each browser is a `sessions::testing::TestClient` of the app built in-process (over a
//! SQLite file) by the same code as the binary's; `inspect` looks at what the store holds.

mod common;

use common::TempDir;
use common::shop::{Browser, Shop, cart_of, json, lines, location};
use serde_json::{Value, json};
use sessions::testing::inspect;
use sessions_examples::cart::cli::Framework;
use sessions_examples::cart::model::{Account, Flash};
use sessions_examples::cart::shop::LOGGED_OUT;

/// A browser's `User-Agent`.
const FIREFOX: &str =
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14.1; rv:120.0) Gecko/20100101 Firefox/120.0";

/// Logs `browser` in as `user` through the page's form.
async fn log_in(browser: &Browser, user: &str) {
    let login = browser.post_form("/login", &[("user", user)]).await;
    assert_eq!(login.status(), 303, "{}", login.text());
}

/// Who the page says is signed in.
async fn signed_in_as(browser: &Browser) -> Option<String> {
    let page = browser.get("/").await.text();
    let (_, rest) = page.split_once("<strong id=\"user\">")?;
    rest.split_once('<').map(|(user, _)| user.to_owned())
}

/// The user's sessions, as `GET /api/sessions` lists them.
async fn sessions_of(browser: &Browser) -> Vec<Value> {
    let response = browser.get("/api/sessions").await;
    assert_eq!(response.status(), 200, "{}", response.text());
    match json(&response) {
        Value::Array(list) => list,
        other => panic!("not a list: {other}"),
    }
}

async fn logout_leaves_a_flash_in_a_fresh_session(framework: Framework) {
    let dir = TempDir::new("cart-flash");
    let shop = Shop::sqlite(framework, &dir.path().join("sessions.db")).await;
    let browser = shop.browser_as("Firefox");
    browser.post_form("/cart/add", &[("sku", "apple")]).await;
    log_in(&browser, "ada").await;
    assert_eq!(signed_in_as(&browser).await.as_deref(), Some("ada"));
    let signed_in = shop.token(&browser).expect("a session");

    let logout = browser.post("/logout").await;
    assert_eq!(
        (logout.status().as_u16(), location(&logout)),
        (303, Some("/"))
    );
    // The session is destroyed; the flash went into a new one, under a new id.
    let fresh = shop.token(&browser).expect("the flash's session");
    assert_ne!(fresh, signed_in);
    let old = inspect::<Account>(&shop.layer, &signed_in)
        .await
        .expect("the store answers");
    assert!(old.is_none(), "the signed-in session is gone");

    let page = browser.get("/").await;
    let text = page.text();
    assert!(text.contains(LOGGED_OUT), "{text}");
    assert!(
        text.contains("id=\"cart-empty\""),
        "the cart went with the session"
    );
    assert_eq!(signed_in_as(&browser).await, None);
    // Shown once: the page view removed it.
    assert!(!browser.get("/").await.text().contains(LOGGED_OUT));
    let flash = inspect::<Flash>(&shop.layer, &fresh)
        .await
        .expect("the store answers");
    assert!(flash.is_none(), "the flash is gone from the store");
}

async fn your_sessions_lists_both_browsers_and_signs_the_other_out(framework: Framework) {
    let dir = TempDir::new("cart-sessions");
    let shop = Shop::sqlite(framework, &dir.path().join("sessions.db")).await;
    let laptop = shop.browser_as(FIREFOX);
    let phone = shop.browser_as("Phone Safari");
    let signed_out = shop.browser().get("/sessions").await.text();
    assert!(
        signed_out.contains("id=\"sessions-signed-out\""),
        "{signed_out}"
    );

    log_in(&laptop, "ada").await;
    phone.post_form("/cart/add", &[("sku", "tea")]).await;
    log_in(&phone, "ada").await;

    // Both are listed, the laptop's own marked current (two logins in one millisecond may
    // list in either order, so the test looks them up by what they are).
    let listed = sessions_of(&laptop).await;
    assert_eq!(listed.len(), 2, "{listed:?}");
    let agent = |s: &Value| s["user_agent"].as_str().unwrap_or_default().to_owned();
    let current = listed
        .iter()
        .find(|s| s["current"] == true)
        .expect("this session is listed");
    assert_eq!(
        agent(current),
        FIREFOX,
        "the login's user agent, as it came"
    );
    let other = listed
        .iter()
        .find(|s| s["current"] == false)
        .expect("the other session is listed");
    assert_eq!(agent(other), "Phone Safari");
    let phone_ref = other["reference"].as_str().expect("a reference").to_owned();
    let phone_token = shop.token(&phone).expect("the phone's session");
    assert!(
        !phone_ref.contains(&phone_token),
        "a reference is not the id"
    );
    for session in &listed {
        let created = session["created_at"].as_u64().unwrap_or_default();
        assert!(created > 0 && session["expires_at"].as_u64() > Some(created));
    }

    // The page shows the same: the phone with a sign-out button, this browser marked.
    let page = laptop.get("/sessions").await.text();
    assert_eq!(page.matches("class=\"owned-session").count(), 2, "{page}");
    assert!(page.contains(&format!(
        "data-reference=\"{phone_ref}\" data-current=\"false\""
    )));
    assert!(
        page.contains(
            "Firefox 120 on macOS <strong class=\"this-session\">(this browser)</strong>"
        )
    );
    assert!(
        page.contains("Phone Safari"),
        "an unknown agent is shown as it came"
    );
    assert!(page.contains(&format!("name=\"reference\" value=\"{phone_ref}\"")));
    assert!(page.contains("id=\"revoke-others\""));

    // Sign the phone out from the laptop.
    let revoked = laptop
        .post_form("/sessions/revoke", &[("reference", &phone_ref)])
        .await;
    assert_eq!(
        (revoked.status().as_u16(), location(&revoked)),
        (303, Some("/sessions"))
    );
    let page = laptop.get("/sessions").await.text();
    assert!(page.contains("Signed out that session."), "{page}");
    assert_eq!(page.matches("class=\"owned-session").count(), 1);
    assert!(
        !page.contains("id=\"revoke-others\""),
        "nothing else to sign out"
    );
    let gone = inspect::<Account>(&shop.layer, &phone_token)
        .await
        .expect("the store answers");
    assert!(gone.is_none(), "the phone's session ended in the store");

    // The phone's next request: signed out, its cart gone, its cookie cleared.
    assert_eq!(signed_in_as(&phone).await, None);
    assert_eq!(lines(&cart_of(&phone).await), []);
    assert_eq!(shop.token(&phone), None);
    assert_eq!(phone.get("/api/sessions").await.status(), 401);
    assert_eq!(
        signed_in_as(&laptop).await.as_deref(),
        Some("ada"),
        "the laptop stays"
    );

    // The same reference again: already ended.
    laptop
        .post_form("/sessions/revoke", &[("reference", &phone_ref)])
        .await;
    let page = laptop.get("/sessions").await.text();
    assert!(page.contains("That session had already ended."), "{page}");

    // Signing out this browser's own session from the list is a logout.
    let own = sessions_of(&laptop).await;
    let own_ref = own[0]["reference"].as_str().expect("a reference");
    let out = laptop
        .post_form("/sessions/revoke", &[("reference", own_ref)])
        .await;
    assert_eq!(location(&out), Some("/"));
    assert!(laptop.get("/").await.text().contains(LOGGED_OUT));
    assert_eq!(signed_in_as(&laptop).await, None);
}

async fn sign_out_all_other_devices(framework: Framework) {
    let dir = TempDir::new("cart-others");
    let shop = Shop::sqlite(framework, &dir.path().join("sessions.db")).await;
    let browsers = [0, 1, 2].map(|n| shop.browser_as(&format!("browser {n}")));
    for browser in &browsers {
        log_in(browser, "grace").await;
    }
    let elsewhere = shop.browser_as("another user");
    log_in(&elsewhere, "ada").await;
    let [here, tablet, phone] = &browsers;
    assert_eq!(sessions_of(here).await.len(), 3);

    // The API refuses what is not another session of the user's.
    let own = sessions_of(here).await;
    let own_ref = own
        .iter()
        .find(|s| s["current"] == true)
        .and_then(|s| s["reference"].as_str())
        .expect("the current session");
    assert_eq!(
        here.delete(&format!("/api/sessions/{own_ref}"))
            .await
            .status(),
        409
    );
    let ada_ref = sessions_of(&elsewhere).await[0]["reference"]
        .as_str()
        .expect("a reference")
        .to_owned();
    let not_mine = here.delete(&format!("/api/sessions/{ada_ref}")).await;
    assert_eq!(
        not_mine.status(),
        404,
        "another user's session is out of reach"
    );
    assert_eq!(
        shop.browser()
            .post("/api/sessions/revoke-others")
            .await
            .status(),
        401
    );

    let out = here
        .post_form("/sessions/revoke-others", &Vec::<(&str, &str)>::new())
        .await;
    assert_eq!(location(&out), Some("/sessions"));
    assert!(
        here.get("/sessions")
            .await
            .text()
            .contains("Signed out 2 other sessions.")
    );
    assert_eq!(sessions_of(here).await.len(), 1);
    assert_eq!(signed_in_as(here).await.as_deref(), Some("grace"));
    assert_eq!(signed_in_as(tablet).await, None);
    assert_eq!(signed_in_as(phone).await, None);
    assert_eq!(
        signed_in_as(&elsewhere).await.as_deref(),
        Some("ada"),
        "other users stay"
    );

    // Through the API: one more device, then signed out by reference.
    let laptop = shop.browser_as("laptop");
    log_in(&laptop, "grace").await;
    let answer = here.post("/api/sessions/revoke-others").await;
    assert_eq!(json(&answer), json!({"revoked": 1}));
    assert_eq!(signed_in_as(&laptop).await, None);
}

async fn with_the_cookie_store_your_sessions_says_why_there_is_no_list(framework: Framework) {
    let shop = Shop::open(framework, &["--store", "cookie"]).await;
    let browser = shop.browser_as("Firefox");
    log_in(&browser, "ada").await;
    let page = browser.get("/sessions").await;
    assert_eq!(page.status(), 200);
    assert!(
        page.text().contains("id=\"sessions-unsupported\""),
        "{}",
        page.text()
    );
}

on_both_frameworks!(
    logout_leaves_a_flash_in_a_fresh_session,
    your_sessions_lists_both_browsers_and_signs_the_other_out,
    sign_out_all_other_devices,
    with_the_cookie_store_your_sessions_says_why_there_is_no_list,
);
