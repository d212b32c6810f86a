//! Cross-site request forgery (CSRF) protection, on by default for a session that travels in a
//! cookie.
//!
//! A browser sends the session cookie with every request to the site, including the ones a
//! page of *another* site makes it send (a form posted to `https://shop.example/cart/add` from
//! `https://evil.example`). `SameSite=Lax` stops most of them in current browsers, but not a
//! sibling subdomain (`same-site`), not an older browser, and not a login CSRF. So the layer
//! checks every request that may change something, before the handler runs:
//!
//! 1. **Tokenless, first** (Go 1.25's `CrossOriginProtection`). `GET`, `HEAD` and `OPTIONS`
//!    are never checked (they must change nothing). Any other method is refused when
//!    `Sec-Fetch-Site` is `cross-site` or `same-site`; without that header, when `Origin`
//!    names another origin than the request's own (its `Host` with the scheme the layer
//!    serves, `https` unless [`Csrf::served_over_http`]). A request with neither header (curl,
//!    a server-to-server client) passes: no browser made it.
//! 2. **A token of the session, as the second line.** [`CsrfToken`] (an extractor on axum and
//!    actix-web) renders a token bound to the session, to put in a form as
//!    `<input type="hidden" name="csrf_token" value="…">` or send in the `x-csrf-token`
//!    header. A request refused by step 1 still goes through with a valid token;
//!    [`Csrf::require_token`] asks every unsafe request for one (Django's model).
//!
//! A refused request gets a **403** with a fixed `text/plain` body saying why
//! ([`CsrfRefusal`]), the session is neither loaded nor saved, and a `debug` line is logged
//! (target `sessions`). The layer's [`on_rejection`](crate::SessionLayer::on_rejection) hook
//! can shape the response like any other rejection.
//!
//! ```
//! use std::convert::Infallible;
//! use http::{Request, Response, StatusCode};
//! use tower::{Layer, ServiceExt, service_fn};
//! use sessions::prelude::*;
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! let app = SessionLayer::new(MemoryStore::new()).layer(service_fn(|_: Request<()>| async {
//!     Ok::<_, Infallible>(Response::new("changed".to_owned()))
//! }));
//! // A form another site's page posted: refused, the handler never runs.
//! let forged = Request::post("/cart/add")
//!     .header("host", "shop.example")
//!     .header("sec-fetch-site", "cross-site")
//!     .body(())
//!     .unwrap();
//! let response = app.clone().oneshot(forged).await.unwrap();
//! assert_eq!(response.status(), StatusCode::FORBIDDEN);
//! assert!(response.body().contains("another site"));
//! // The same post from the site's own page, and one from curl (no browser header): through.
//! let own = Request::post("/cart/add")
//!     .header("host", "shop.example")
//!     .header("origin", "https://shop.example")
//!     .body(())
//!     .unwrap();
//! assert_eq!(app.clone().oneshot(own).await.unwrap().body(), "changed");
//! let curl = Request::post("/cart/add").body(()).unwrap();
//! assert_eq!(app.oneshot(curl).await.unwrap().body(), "changed");
//! # });
//! ```
//!
//! ```
//! use axum::{Router, routing::get};
//! use axum::response::Html;
//! use sessions::csrf::{Csrf, CsrfToken};
//! use sessions::prelude::*;
//!
//! #[derive(Session, Default)]
//! #[session(name = "cart")]
//! struct Cart { items: Vec<String> }
//!
//! async fn page(token: CsrfToken) -> Html<String> {
//!     Html(format!(
//!         r#"<form method="post" action="/cart">
//!              <input type="hidden" name="csrf_token" value="{token}">
//!              <button>Add an apple</button>
//!            </form>"#
//!     ))
//! }
//!
//! // The layer checked the request (and its form's `csrf_token`) before this runs; the body
//! // reaches the handler as it was sent (an `axum::Form` extractor reads it as usual).
//! async fn add(mut cart: Typed<Cart>) -> &'static str {
//!     cart.items_mut().push("apple".into());
//!     "added"
//! }
//!
//! let app: Router = Router::new().route("/cart", get(page).post(add)).layer(
//!     SessionLayer::new(MemoryStore::new())
//!         .register::<Cart>()
//!         .csrf(Csrf::default().trusted_origin("https://admin.shop.example").exempt("/webhooks")),
//! );
//! # let _ = app;
//! ```
//!
//! # The token
//!
//! The session keeps a 32-byte secret from the OS CSPRNG (the reserved slot `__csrf`, stored
//! like the rest of the session: a `CookieStore` seals it into the cookie). It is drawn the
//! first time a token is rendered, which stores the session if it was new. Each rendering
//! masks the secret with fresh random bytes, so two renderings differ and a page compressed
//! over TLS gives a BREACH attack nothing repeated to measure; a token is checked in constant
//! time. [`SessionHandle::cycle_id`](crate::SessionHandle::cycle_id) (call it at login) drops
//! the secret, so a token rendered before a login is refused after it (no login CSRF), and
//! the next rendering draws a new one.
//!
//! The token is read from the `x-csrf-token` header, or else, for an
//! `application/x-www-form-urlencoded` body, from its `csrf_token` field. The body is read
//! only when a token is needed and none came in the header, at most
//! [`form_limit`](Csrf::form_limit) bytes (64 KiB by default), and handed on to the handler
//! intact. Under tower, the body is read when it is axum's `Body` (every axum router),
//! `http_body_util::Full<Bytes>`, `Bytes`, `String` or `Vec<u8>`; with another body type send
//! the token in the header. Multipart forms: send it in the header too.
//!
//! # Where it applies
//!
//! * Only where the session travels in a cookie. A layer whose session id travels in a header
//!   ([`SessionLayer::header`](crate::SessionLayer::header)) is not CSRF-prone (a page of
//!   another site cannot make a browser send a header of its choice without a CORS
//!   preflight the app would have to allow): nothing is checked there. A layer that accepts
//!   either checks the requests that came with the cookie.
//! * [`Csrf::exempt`]: path prefixes left alone (webhooks, which authenticate themselves).
//! * [`Csrf::off`]: nothing is checked (the app protects itself).
//!
//! # Behind a proxy
//!
//! Current browsers send `Sec-Fetch-Site`, which needs no knowledge of the app's address. The
//! `Origin` comparison, for older browsers, needs the request's own origin: the `Host` header
//! the app receives, with `https`. A reverse proxy that forwards the browser's `Host` as it is
//! needs nothing more. One that rewrites it (`proxy_pass http://127.0.0.1:3000` without
//! `proxy_set_header Host $host`) makes every request look cross-origin to an old browser:
//! forward the `Host` header, or name the public origin with
//! [`trusted_origin`](Csrf::trusted_origin)`("https://shop.example")`. An app served over
//! plain `http` (local development on another host than `localhost`) says so with
//! [`served_over_http`](Csrf::served_over_http).

mod extract;
pub(crate) mod form;
mod origin;
mod refusal;
pub(crate) mod request;
mod token;

pub use extract::CsrfToken;
pub use refusal::CsrfRefusal;
pub(crate) use token::{SLOT, Secret};

/// The form field a token is read from: `<input type="hidden" name="csrf_token" value="…">`.
pub const FORM_FIELD: &str = "csrf_token";

/// The header a token is read from (for scripts: `fetch(url, {method: "POST", headers:
/// {"x-csrf-token": token}})`).
pub const HEADER: &str = "x-csrf-token";

/// How much of a form body is read to find its token, by default.
const FORM_LIMIT: usize = 64 * 1024;

/// The CSRF protection of a [`SessionLayer`](crate::SessionLayer) (see the [module
/// docs](self)): [`SessionLayer::csrf`](crate::SessionLayer::csrf)`(Csrf::default())` is what a
/// layer does without being told.
///
/// ```
/// use sessions::csrf::Csrf;
/// use sessions::prelude::*;
/// let layer = SessionLayer::new(MemoryStore::new()).csrf(
///     Csrf::default()
///         .require_token()                       // every unsafe request needs a token
///         .trusted_origin("https://admin.shop.example")
///         .exempt("/webhooks"),
/// );
/// # let _ = layer;
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Csrf {
    on: bool,
    require_token: bool,
    scheme: &'static str,
    /// Trusted origins, in lowercase.
    trusted: Vec<Box<str>>,
    exempt: Vec<Box<str>>,
    form_limit: usize,
}

impl Default for Csrf {
    /// Unsafe requests from another site are refused unless they carry a valid token; the
    /// app is taken to be served over `https`.
    ///
    /// ```
    /// use sessions::csrf::Csrf;
    /// assert!(Csrf::default().is_on());
    /// ```
    fn default() -> Self {
        Self {
            on: true,
            require_token: false,
            scheme: "https",
            trusted: Vec::new(),
            exempt: Vec::new(),
            form_limit: FORM_LIMIT,
        }
    }
}

impl Csrf {
    /// No CSRF check at all (the app has its own, or no browser ever calls it). A
    /// [`CsrfToken`] can still be rendered.
    ///
    /// ```
    /// use sessions::csrf::Csrf;
    /// use sessions::prelude::*;
    /// let layer = SessionLayer::new(MemoryStore::new()).csrf(Csrf::off());
    /// assert!(!Csrf::off().is_on());
    /// # let _ = layer;
    /// ```
    pub fn off() -> Self {
        Self {
            on: false,
            ..Self::default()
        }
    }

    /// Every unsafe request (anything but `GET`, `HEAD`, `OPTIONS`) needs a valid token of its
    /// session, wherever it comes from, as in Django. Every form then carries a
    /// [`CsrfToken`], and scripts send it in the `x-csrf-token` header.
    ///
    /// ```
    /// use sessions::csrf::Csrf;
    /// let csrf = Csrf::default().require_token();
    /// # let _ = csrf;
    /// ```
    pub fn require_token(mut self) -> Self {
        self.require_token = true;
        self
    }

    /// Lets requests from `origin` through the tokenless check: a site of yours on another
    /// origin (`"https://admin.shop.example"`), or the app's own public origin behind a proxy
    /// that rewrites `Host`. Exactly `scheme://host[:port]`, as browsers send it in `Origin`;
    /// letters compare without regard to case.
    ///
    /// # Panics
    /// When `origin` is not of that form (a path, a missing scheme): a mistake in the app's
    /// setup, reported when the app starts.
    ///
    /// ```
    /// use sessions::csrf::Csrf;
    /// let csrf = Csrf::default().trusted_origin("https://admin.shop.example");
    /// # let _ = csrf;
    /// ```
    ///
    /// ```should_panic
    /// # use sessions::csrf::Csrf;
    /// Csrf::default().trusted_origin("admin.shop.example/"); // no scheme, a path
    /// ```
    pub fn trusted_origin(mut self, origin: &str) -> Self {
        if let Err(why) = check_origin(origin) {
            panic!("Csrf::trusted_origin({origin:?}): {why}; write it as \"https://host[:port]\"");
        }
        self.trusted.push(origin.to_ascii_lowercase().into());
        self
    }

    /// Leaves the requests under `path_prefix` unchecked (`"/webhooks"`: requests that
    /// authenticate themselves, with a signature, not with the session). The prefix covers
    /// whole path segments: `"/webhooks"` covers `/webhooks` and `/webhooks/stripe`, not
    /// `/webhooks-admin`. Paths compare as sent, case and all.
    ///
    /// # Panics
    /// When `path_prefix` does not start with `/`.
    ///
    /// ```
    /// use sessions::csrf::Csrf;
    /// let csrf = Csrf::default().exempt("/webhooks");
    /// # let _ = csrf;
    /// ```
    pub fn exempt(mut self, path_prefix: &str) -> Self {
        assert!(
            path_prefix.starts_with('/'),
            "Csrf::exempt({path_prefix:?}): a path prefix starts with '/'"
        );
        self.exempt.push(path_prefix.into());
        self
    }

    /// The app is served over plain `http`: a request's own origin is `http://` and its
    /// `Host` (for the `Origin` check of browsers that send no `Sec-Fetch-Site`). For local
    /// development; in production serve `https` (and the session cookie is `Secure`).
    ///
    /// ```
    /// use sessions::csrf::Csrf;
    /// let csrf = Csrf::default().served_over_http();
    /// # let _ = csrf;
    /// ```
    pub fn served_over_http(mut self) -> Self {
        self.scheme = "http";
        self
    }

    /// How much of an urlencoded form body is read to find its `csrf_token` field (64 KiB by
    /// default). A longer form that needs its token is refused ([`CsrfRefusal::FormTooLarge`]):
    /// send its token in the `x-csrf-token` header.
    ///
    /// ```
    /// use sessions::csrf::Csrf;
    /// let csrf = Csrf::default().form_limit(1 << 20);
    /// # let _ = csrf;
    /// ```
    pub fn form_limit(mut self, bytes: usize) -> Self {
        self.form_limit = bytes;
        self
    }

    /// Whether requests are checked at all (`false` for [`Csrf::off`]).
    ///
    /// ```
    /// use sessions::csrf::Csrf;
    /// assert!(Csrf::default().require_token().is_on());
    /// ```
    pub fn is_on(&self) -> bool {
        self.on
    }

    /// Whether `path` is under one of the exempt prefixes.
    fn is_exempt(&self, path: &str) -> bool {
        self.exempt.iter().any(|prefix| {
            path.strip_prefix(&**prefix).is_some_and(|rest| {
                rest.is_empty() || prefix.ends_with('/') || rest.starts_with('/')
            })
        })
    }

    /// Whether `origin` is one of the trusted origins.
    fn is_trusted(&self, origin: Option<&[u8]>) -> bool {
        origin.is_some_and(|origin| {
            self.trusted
                .iter()
                .any(|trusted| trusted.as_bytes().eq_ignore_ascii_case(origin))
        })
    }
}

/// Why `origin` is not of the form `scheme://host[:port]`, if it is not.
fn check_origin(origin: &str) -> Result<(), &'static str> {
    let (scheme, host) = origin
        .split_once("://")
        .ok_or("an origin starts with a scheme and \"://\"")?;
    if scheme.is_empty()
        || !scheme
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'+' || b == b'-' || b == b'.')
    {
        return Err("the scheme is missing or malformed");
    }
    if host.is_empty() {
        return Err("the host is missing");
    }
    if host.contains(['/', '?', '#', '@'])
        || host
            .bytes()
            .any(|b| b.is_ascii_whitespace() || b.is_ascii_control())
    {
        return Err("an origin has no path, query, fragment, user or spaces");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trusted_origins_are_checked_when_the_app_starts() {
        for good in [
            "https://app.example",
            "http://localhost:3000",
            "https://[::1]:8443",
        ] {
            assert_eq!(check_origin(good), Ok(()), "{good}");
        }
        for bad in [
            "app.example",
            "https://",
            "://app.example",
            "https://app.example/",
            "https://app.example/path",
            "https://app.example?x",
            "https://user@app.example",
            "https://app example",
            "",
        ] {
            assert!(check_origin(bad).is_err(), "{bad}");
        }
    }

    #[test]
    #[should_panic(expected = "a path prefix starts with '/'")]
    fn an_exempt_prefix_without_a_slash_is_a_setup_mistake() {
        let _ = Csrf::default().exempt("webhooks");
    }
}
