//! CSRF (issue 21): an unsafe request that a page of another site made a browser send is
//! refused with a 403 before anything is loaded, unless it carries a valid token of its
//! session; the token is rendered by `CsrfToken`, masked anew each time, kept with the session
//! in every store, and dead after `cycle_id()`; a header-borne session is not checked.
//!
//! Every request here is sent to `shop.example` (its `Host`), as a browser would send it:
//! with `Sec-Fetch-Site` and `Origin`, or, like curl, with neither.

use bytes::Bytes;
use http::{Method, Request, StatusCode};
use sessions::csrf::{Csrf, CsrfRefusal};
use sessions::testing::{TestClient, TestResponse, Transport};
use sessions::{CookieStore, Key, SessionLayer, SessionStore};

use super::handlers::NO_CART;
use super::support::capture_logs;
use super::{App, Calls, RecordingStore, browser, layer};

const HOST: &str = "shop.example";
const OWN: &str = "https://shop.example";
const EVIL: &str = "https://evil.example";

/// What a browser says about where a request comes from.
#[derive(Debug, Clone, Copy)]
enum Sender {
    /// A page of this origin (`Sec-Fetch-Site: same-origin`, `Origin` this origin).
    SameOrigin,
    /// A page of another site (`Sec-Fetch-Site: cross-site`, `Origin: https://evil.example`).
    CrossSite,
    /// A sibling subdomain (`Sec-Fetch-Site: same-site`, `Origin: https://blog.shop.example`).
    SameSite,
    /// A browser without Fetch Metadata: `Origin` only, of this origin.
    OwnOriginOnly,
    /// A browser without Fetch Metadata, from another site: `Origin` only.
    OtherOriginOnly,
    /// `Sec-Fetch-Site: none`: the user typed the address or used a bookmark.
    UserTyped,
    /// `Sec-Fetch-Site: cross-site` from this origin.
    CrossSiteFrom(&'static str),
    /// Neither header: curl, a server-to-server client.
    Nowhere,
}

impl Sender {
    fn headers(self) -> Vec<(&'static str, &'static str)> {
        match self {
            Sender::SameOrigin => vec![("sec-fetch-site", "same-origin"), ("origin", OWN)],
            Sender::CrossSite => vec![("sec-fetch-site", "cross-site"), ("origin", EVIL)],
            Sender::SameSite => vec![
                ("sec-fetch-site", "same-site"),
                ("origin", "https://blog.shop.example"),
            ],
            Sender::OwnOriginOnly => vec![("origin", OWN)],
            Sender::OtherOriginOnly => vec![("origin", EVIL)],
            Sender::UserTyped => vec![("sec-fetch-site", "none")],
            Sender::CrossSiteFrom(origin) => {
                vec![("sec-fetch-site", "cross-site"), ("origin", origin)]
            }
            Sender::Nowhere => vec![],
        }
    }
}

/// How the request carries a token, if it does.
#[derive(Debug, Clone, Copy)]
enum Token<'a> {
    None,
    Header(&'a str),
}

/// `method path` to `shop.example` from `from`, with `token`, and `body` as a form when it is
/// not empty.
async fn send<T: Transport>(
    client: &TestClient<T>,
    method: Method,
    path: &str,
    from: Sender,
    token: Token<'_>,
    body: &str,
) -> TestResponse {
    let mut request = Request::builder()
        .method(method)
        .uri(path)
        .header("host", HOST);
    for (name, value) in from.headers() {
        request = request.header(name, value);
    }
    if let Token::Header(token) = token {
        request = request.header("x-csrf-token", token);
    }
    if !body.is_empty() {
        request = request.header("content-type", "application/x-www-form-urlencoded");
    }
    let request = request
        .body(Bytes::from(body.to_owned()))
        .expect("a well-formed request");
    client.send(request).await
}

/// `POST path` with an empty body.
async fn post<T: Transport>(
    client: &TestClient<T>,
    path: &str,
    from: Sender,
    token: Token<'_>,
) -> TestResponse {
    send(client, Method::POST, path, from, token, "").await
}

/// Two renderings of the session's token (`GET /csrf/token`), from this origin.
async fn tokens<T: Transport>(client: &TestClient<T>) -> (String, String) {
    let response = send(
        client,
        Method::GET,
        "/csrf/token",
        Sender::SameOrigin,
        Token::None,
        "",
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK, "{}", response.text());
    let text = response.text();
    let (a, b) = text.split_once(' ').expect("two tokens");
    (a.to_owned(), b.to_owned())
}

/// Asserts a CSRF refusal: 403, the refusal's own text, no cookie set.
fn assert_refused(response: &TestResponse, refusal: CsrfRefusal) {
    assert_eq!(
        response.status(),
        StatusCode::FORBIDDEN,
        "{}",
        response.text()
    );
    assert_eq!(response.text(), refusal.message());
    assert_eq!(
        response.header("content-type"),
        Some("text/plain; charset=utf-8")
    );
    assert!(
        response.set_cookies().is_empty(),
        "a refused request changes no session: {:?}",
        response.set_cookies()
    );
}

/// A browser of the suite's app behind `layer` that has a cart with one apple.
async fn shopper<A: App>(layer: &SessionLayer) -> TestClient<impl Transport + Clone + 'static> {
    let client = browser::<A>(layer).await;
    let response = post(&client, "/cart/apple", Sender::SameOrigin, Token::None).await;
    assert_eq!(response.status(), StatusCode::OK, "{}", response.text());
    client
}

async fn cart<T: Transport>(client: &TestClient<T>) -> String {
    send(
        client,
        Method::GET,
        "/cart",
        Sender::SameOrigin,
        Token::None,
        "",
    )
    .await
    .text()
}

pub(crate) async fn a_cross_site_unsafe_request_is_refused_before_anything_is_loaded<A: App>() {
    let store = RecordingStore::memory();
    let layer = layer(store.clone());
    let client = shopper::<A>(&layer).await;
    let cases = [
        (Method::POST, Sender::CrossSite, CsrfRefusal::CrossSite),
        (Method::POST, Sender::SameSite, CsrfRefusal::CrossSite),
        (
            Method::POST,
            Sender::OtherOriginOnly,
            CsrfRefusal::OtherOrigin,
        ),
        (Method::PUT, Sender::CrossSite, CsrfRefusal::CrossSite),
        (Method::DELETE, Sender::CrossSite, CsrfRefusal::CrossSite),
        (
            Method::PATCH,
            Sender::OtherOriginOnly,
            CsrfRefusal::OtherOrigin,
        ),
    ];
    for (method, from, refusal) in cases {
        let (logs, guard) = capture_logs();
        let before = store.calls();
        let response = send(&client, method.clone(), "/cart/pear", from, Token::None, "").await;
        drop(guard);
        assert_refused(&response, refusal);
        assert_eq!(
            store.calls().since(before),
            Calls::NONE,
            "{method} {from:?}: nothing loaded or saved"
        );
        let lines = logs.lines_at("DEBUG");
        assert!(
            lines
                .iter()
                .any(|line| line.contains("CSRF check refused") && line.contains(refusal.reason())),
            "{method} {from:?}: a debug line says why: {}",
            logs.text()
        );
        assert!(logs.lines_at("WARN").is_empty() && logs.lines_at("ERROR").is_empty());
    }
    assert_eq!(cart(&client).await, "items=apple coupon=- visits=0");
}

pub(crate) async fn same_origin_and_curl_like_requests_go_through<A: App>() {
    let store = RecordingStore::memory();
    let layer = layer(store.clone());
    let client = shopper::<A>(&layer).await;
    for (sku, from) in [
        ("b", Sender::SameOrigin),
        ("c", Sender::OwnOriginOnly),
        ("d", Sender::Nowhere),
        ("e", Sender::UserTyped),
    ] {
        let response = post(&client, &format!("/cart/{sku}"), from, Token::None).await;
        assert_eq!(
            response.status(),
            StatusCode::OK,
            "{from:?}: {}",
            response.text()
        );
    }
    // Safe methods are never checked.
    let read = send(
        &client,
        Method::GET,
        "/cart",
        Sender::CrossSite,
        Token::None,
        "",
    )
    .await;
    assert_eq!(read.status(), StatusCode::OK);
    assert_eq!(read.text(), "items=apple,b,c,d,e coupon=- visits=0");
}

pub(crate) async fn a_session_in_a_header_is_not_checked<A: App>() {
    let store = RecordingStore::memory();
    let name = http::HeaderName::from_static("x-session-id");
    let layer = layer(store.clone()).header(name.clone());
    let client = browser::<A>(&layer).await.id_header(name);
    for sku in ["apple", "pear"] {
        let response = post(
            &client,
            &format!("/cart/{sku}"),
            Sender::CrossSite,
            Token::None,
        )
        .await;
        assert_eq!(response.status(), StatusCode::OK, "{}", response.text());
    }
    assert_eq!(cart(&client).await, "items=apple,pear coupon=- visits=0");
}

pub(crate) async fn a_layer_taking_cookie_or_header_checks_the_cookie_requests_only<A: App>() {
    let store = RecordingStore::memory();
    let name = http::HeaderName::from_static("x-session-id");
    let layer = layer(store.clone()).cookie_or_header(name.clone());
    let page = shopper::<A>(&layer).await;
    assert_refused(
        &post(&page, "/cart/pear", Sender::CrossSite, Token::None).await,
        CsrfRefusal::CrossSite,
    );
    let api = browser::<A>(&layer).await.id_header(name);
    for sku in ["apple", "pear"] {
        let response = post(
            &api,
            &format!("/cart/{sku}"),
            Sender::CrossSite,
            Token::None,
        )
        .await;
        assert_eq!(response.status(), StatusCode::OK, "{}", response.text());
    }
    assert_eq!(cart(&page).await, "items=apple coupon=- visits=0");
    assert_eq!(cart(&api).await, "items=apple,pear coupon=- visits=0");
}

pub(crate) async fn a_trusted_origin_and_an_exempt_path_go_through<A: App>() {
    let store = RecordingStore::memory();
    let layer = layer(store.clone()).csrf(
        Csrf::default()
            .trusted_origin("https://Admin.Shop.Example")
            .exempt("/coupon"),
    );
    let client = shopper::<A>(&layer).await;
    let trusted = Sender::CrossSiteFrom("https://admin.shop.example");
    let response = post(&client, "/cart/pear", trusted, Token::None).await;
    assert_eq!(response.status(), StatusCode::OK, "{}", response.text());
    let response = post(&client, "/coupon/HALF", Sender::CrossSite, Token::None).await;
    assert_eq!(response.status(), StatusCode::OK, "{}", response.text());
    // Another origin, and another path, are still refused.
    let other = Sender::CrossSiteFrom("https://admin.shop.example:8443");
    assert_refused(
        &post(&client, "/cart/plum", other, Token::None).await,
        CsrfRefusal::CrossSite,
    );
    assert_refused(
        &post(&client, "/cart/plum", Sender::CrossSite, Token::None).await,
        CsrfRefusal::CrossSite,
    );
    assert_eq!(cart(&client).await, "items=apple,pear coupon=HALF visits=0");
}

pub(crate) async fn csrf_off_checks_nothing<A: App>() {
    let layer = layer(RecordingStore::memory()).csrf(Csrf::off());
    let client = shopper::<A>(&layer).await;
    let response = post(&client, "/cart/pear", Sender::CrossSite, Token::None).await;
    assert_eq!(response.status(), StatusCode::OK, "{}", response.text());
}

pub(crate) async fn a_valid_token_lets_a_cross_site_request_through<A: App>() {
    let store = RecordingStore::memory();
    let layer = layer(store.clone());
    let client = shopper::<A>(&layer).await;
    let (token, _) = tokens(&client).await;
    let response = post(
        &client,
        "/cart/pear",
        Sender::CrossSite,
        Token::Header(&token),
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK, "{}", response.text());

    // Another session's token, an altered one, a stranger's: refused, the cart as it was.
    let other = shopper::<A>(&layer).await;
    let (theirs, _) = tokens(&other).await;
    let mut altered = token.clone().into_bytes();
    altered[10] = if altered[10] == b'A' { b'B' } else { b'A' };
    let altered = String::from_utf8(altered).expect("ascii");
    for bad in [theirs.as_str(), altered.as_str(), "not-a-token", ""] {
        let response = post(&client, "/cart/plum", Sender::CrossSite, Token::Header(bad)).await;
        assert_refused(&response, CsrfRefusal::TokenInvalid);
    }
    // A request that carries no session has no token to match.
    let stranger = browser::<A>(&layer).await;
    let response = post(
        &stranger,
        "/cart/plum",
        Sender::CrossSite,
        Token::Header(&token),
    )
    .await;
    assert_refused(&response, CsrfRefusal::TokenInvalid);
    assert_eq!(cart(&client).await, "items=apple,pear coupon=- visits=0");
}

pub(crate) async fn each_rendering_of_the_token_differs_and_each_verifies<A: App>() {
    let store = RecordingStore::memory();
    let layer = layer(store.clone()).csrf(Csrf::default().require_token());
    let client = browser::<A>(&layer).await;
    // The first rendering stores a new session to keep the secret in.
    let (a, b) = tokens(&client).await;
    let (c, d) = tokens(&client).await;
    let all = [&a, &b, &c, &d];
    for (i, token) in all.iter().enumerate() {
        assert_eq!(token.len(), 86, "{token}");
        for other in &all[..i] {
            assert_ne!(token, other, "a fresh mask per rendering");
        }
    }
    for (i, token) in all.into_iter().enumerate() {
        let response = post(
            &client,
            &format!("/cart/item{i}"),
            Sender::SameOrigin,
            Token::Header(token),
        )
        .await;
        assert_eq!(response.status(), StatusCode::OK, "{}", response.text());
    }
    assert_eq!(
        cart(&client).await,
        "items=item0,item1,item2,item3 coupon=- visits=0"
    );
}

pub(crate) async fn require_token_refuses_a_same_origin_request_without_one<A: App>() {
    let store = RecordingStore::memory();
    let layer = layer(store.clone()).csrf(Csrf::default().require_token());
    let client = browser::<A>(&layer).await;
    let (token, _) = tokens(&client).await;
    for from in [Sender::SameOrigin, Sender::Nowhere, Sender::OwnOriginOnly] {
        let before = store.calls();
        let response = post(&client, "/cart/apple", from, Token::None).await;
        assert_refused(&response, CsrfRefusal::TokenMissing);
        assert_eq!(store.calls().since(before), Calls::NONE, "{from:?}");
    }
    // From another site without a token, the refusal says where it came from.
    assert_refused(
        &post(&client, "/cart/apple", Sender::CrossSite, Token::None).await,
        CsrfRefusal::CrossSite,
    );
    // The token in the form, or in the header: through.
    let form = format!("csrf_token={token}");
    let response = send(
        &client,
        Method::POST,
        "/csrf/form",
        Sender::SameOrigin,
        Token::None,
        &form,
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK, "{}", response.text());
    let response = post(
        &client,
        "/cart/apple",
        Sender::Nowhere,
        Token::Header(&token),
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK, "{}", response.text());
    // Safe methods still need none.
    assert_eq!(cart(&client).await, "items=form,apple coupon=- visits=0");
}

pub(crate) async fn a_form_with_the_token_reaches_the_handler_intact<A: App>() {
    let layer = layer(RecordingStore::memory());
    let client = shopper::<A>(&layer).await;
    let (token, _) = tokens(&client).await;
    // Cross-site, so the layer must read the form for its token.
    let body = format!("note=a%20b%26c&csrf_token={token}&sku=tea+pot&empty=&utf8=%C3%A9");
    let response = send(
        &client,
        Method::POST,
        "/csrf/form",
        Sender::CrossSite,
        Token::None,
        &body,
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK, "{}", response.text());
    assert_eq!(
        response.text(),
        body,
        "the handler reads the body as it was sent"
    );
    // Without the field, or with a form too large to look in: refused.
    let response = send(
        &client,
        Method::POST,
        "/csrf/form",
        Sender::CrossSite,
        Token::None,
        "note=x",
    )
    .await;
    assert_refused(&response, CsrfRefusal::CrossSite);
    let large = format!("csrf_token={token}&pad={}", "x".repeat(64 * 1024));
    let response = send(
        &client,
        Method::POST,
        "/csrf/form",
        Sender::CrossSite,
        Token::None,
        &large,
    )
    .await;
    assert_refused(&response, CsrfRefusal::FormTooLarge);
    // A larger bound reads it.
    let roomy = SessionLayer::clone(&layer).csrf(Csrf::default().form_limit(128 * 1024));
    let client = shopper::<A>(&roomy).await;
    let (token, _) = tokens(&client).await;
    let large = format!("csrf_token={token}&pad={}", "x".repeat(64 * 1024));
    let response = send(
        &client,
        Method::POST,
        "/csrf/form",
        Sender::CrossSite,
        Token::None,
        &large,
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.text().len(), large.len());
    assert_eq!(cart(&client).await, "items=apple,form coupon=- visits=0");
}

pub(crate) async fn the_rejection_hook_shapes_a_csrf_refusal<A: App>() {
    let layer = layer(RecordingStore::memory()).on_rejection(|rejection| {
        let mut response = rejection.to_response();
        if let sessions::SessionRejection::Csrf(refusal) = rejection {
            *response.body_mut() = format!("<h1>Refused</h1><p>{}</p>", refusal.reason());
        }
        response
    });
    let client = shopper::<A>(&layer).await;
    let response = post(&client, "/cart/pear", Sender::CrossSite, Token::None).await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert_eq!(response.text(), "<h1>Refused</h1><p>csrf_cross_site</p>");
}

pub(crate) async fn a_cookie_store_token_dies_at_login<A: App>() {
    let layer = layer(CookieStore::new([Key::from_bytes(1, [0xC7; 32])]).expect("a key"));
    let client = shopper::<A>(&layer).await;
    let (before, _) = tokens(&client).await;
    let response = post(
        &client,
        "/cart/pear",
        Sender::CrossSite,
        Token::Header(&before),
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK, "{}", response.text());
    let login = post(&client, "/login", Sender::SameOrigin, Token::None).await;
    assert_eq!(login.status(), StatusCode::OK, "{}", login.text());
    let response = post(
        &client,
        "/cart/plum",
        Sender::CrossSite,
        Token::Header(&before),
    )
    .await;
    assert_refused(&response, CsrfRefusal::TokenInvalid);
    let (after, _) = tokens(&client).await;
    let response = post(
        &client,
        "/cart/plum",
        Sender::CrossSite,
        Token::Header(&after),
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK, "{}", response.text());
    assert_eq!(
        cart(&client).await,
        "items=apple,pear,plum coupon=- visits=1"
    );
}

/// On every store: the secret is kept with the session, so a token works on later requests;
/// a login (`cycle_id()`) makes it worthless, and a token rendered after works.
pub(crate) async fn a_token_from_before_cycle_id_is_refused_after_it<A: App, S>(store: S)
where
    S: SessionStore + Clone,
{
    let layer = layer(store);
    let client = shopper::<A>(&layer).await;
    let (before, _) = tokens(&client).await;
    let response = post(
        &client,
        "/cart/pear",
        Sender::CrossSite,
        Token::Header(&before),
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK, "{}", response.text());

    let login = post(
        &client,
        "/login",
        Sender::SameOrigin,
        Token::Header(&before),
    )
    .await;
    assert_eq!(login.status(), StatusCode::OK, "{}", login.text());
    let response = post(
        &client,
        "/cart/plum",
        Sender::CrossSite,
        Token::Header(&before),
    )
    .await;
    assert_refused(&response, CsrfRefusal::TokenInvalid);
    let form = format!("csrf_token={before}");
    let response = send(
        &client,
        Method::POST,
        "/csrf/form",
        Sender::CrossSite,
        Token::None,
        &form,
    )
    .await;
    assert_refused(&response, CsrfRefusal::TokenInvalid);

    let (after, _) = tokens(&client).await;
    assert_ne!(after, before);
    let response = post(
        &client,
        "/cart/plum",
        Sender::CrossSite,
        Token::Header(&after),
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK, "{}", response.text());
    assert_eq!(
        cart(&client).await,
        "items=apple,pear,plum coupon=- visits=1"
    );
    // The login CSRF: a token an attacker got with their own session does not sign the victim
    // in (nor does any token work without a session).
    let victim = browser::<A>(&layer).await;
    let response = post(&victim, "/login", Sender::CrossSite, Token::Header(&after)).await;
    assert_refused(&response, CsrfRefusal::TokenInvalid);
    assert_eq!(cart(&victim).await, NO_CART);
}
