//! No log line ever holds a raw session id, a cookie value or key material.
//!
//! A global `tracing` subscriber (every level, every target, every thread) writes into a buffer,
//! installed once; one test runs the main flows of every transport and backend through real
//! axum `Router`s: new session, read, write, `cycle_id`, `destroy`, a malformed id, an unknown
//! id, a tampered cookie, cookie store key rotation, the store down, an oversize cookie, the
//! header transport, and SQLite. Then no captured line may contain any id, token or key used in
//! the run, nor any 16-character piece of one.

mod http_common;

use std::collections::HashSet;
use std::io;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use axum::Router;
use axum::routing::post;
use http::{HeaderName, Method, StatusCode, header};
use sessions::prelude::*;
use sessions::{Expiry, Key, ManualClock, SessionId};

use http_common::{
    Cart, CountingStore, Prefs, app, get_with, post_with, request_with_header, routes, send,
};

/// Everything every subscriber-visible event printed, from every thread.
fn captured() -> &'static Arc<Mutex<Vec<u8>>> {
    static BUFFER: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();
    BUFFER.get_or_init(|| {
        let buffer = Arc::new(Mutex::new(Vec::new()));
        let writer = buffer.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::TRACE)
            .with_ansi(false)
            .with_target(true)
            .with_thread_names(true)
            .with_writer(move || Writer(writer.clone()))
            .finish();
        tracing::subscriber::set_global_default(subscriber).expect("the only global subscriber");
        buffer
    })
}

struct Writer(Arc<Mutex<Vec<u8>>>);

impl io::Write for Writer {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        self.0.lock().expect("log buffer").extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Every secret the run handled: ids, sealed tokens, raw header values, key text.
#[derive(Default)]
struct Secrets(Vec<String>);

impl Secrets {
    fn add(&mut self, value: impl Into<String>) -> String {
        let value = value.into();
        assert!(!value.is_empty(), "an empty secret");
        self.0.push(value.clone());
        value
    }
}

fn key_a() -> Key {
    Key::from_bytes(1, [0xA1; 32])
}

fn key_b() -> Key {
    Key::from_bytes(2, [0xB2; 32])
}

/// Cookie-store routes: the common ones, and `/big`, whose cart no cookie can hold.
fn cookie_app(keys: Vec<Key>, clock: &ManualClock) -> Router {
    routes()
        .route(
            "/big",
            post(|mut cart: Typed<Cart>| async move {
                cart.items_mut().push("x".repeat(5000));
                "too big"
            }),
        )
        .layer(
            SessionLayer::new(CookieStore::new(keys).expect("keys"))
                .register::<Cart>()
                .register::<Prefs>()
                .clock(clock.clone())
                .expiry(Expiry::idle(Duration::from_secs(3600))),
        )
}

fn flip_middle(token: &str) -> String {
    let mut bytes = token.as_bytes().to_vec();
    let middle = bytes.len() / 2;
    bytes[middle] = if bytes[middle] == b'A' { b'B' } else { b'A' };
    String::from_utf8(bytes).expect("ascii")
}

async fn memory_flows(secrets: &mut Secrets) {
    let store = CountingStore::new(MemoryStore::new());
    let app = app(SessionLayer::new(store.clone()));

    // New session, read, write, handle.id().
    let first = secrets.add(post_with(&app, "/cart/apple", None).await.cookie());
    assert_eq!(
        get_with(&app, "/cart", Some(&first)).await.status,
        StatusCode::OK
    );
    post_with(&app, "/coupon/C", Some(&first)).await;
    get_with(&app, "/all", Some(&first)).await;
    // cycle_id, then the old id (unknown now) and the 5xx of a failing handler.
    let second = secrets.add(post_with(&app, "/login", Some(&first)).await.cookie());
    get_with(&app, "/cart", Some(&first)).await;
    assert_eq!(
        post_with(&app, "/fail/x", Some(&second)).await.status,
        StatusCode::INTERNAL_SERVER_ERROR
    );
    // destroy, then a write with the destroyed id (a fresh session).
    post_with(&app, "/logout", Some(&second)).await;
    let third = secrets.add(post_with(&app, "/cart/late", Some(&second)).await.cookie());

    // Malformed ids, an oversize one among them.
    let oversize = format!("oversize-id-{}", "Q".repeat(9000));
    for malformed in [
        "malformed-session-id-value-01",
        "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
        "MalformedButLongEnoughToSpotIfItWasLoggedAnywhere+/",
        oversize.as_str(),
    ] {
        secrets.add(malformed);
        post_with(&app, "/cart/m", Some(malformed)).await;
    }
    // An unknown, well-formed id.
    let unknown = secrets.add(SessionId::generate().expect("id").expose());
    get_with(&app, "/cart", Some(&unknown)).await;
    post_with(&app, "/cart/u", Some(&unknown)).await;

    // The store down: loads fail, so reads, writes, cycles and logouts fail.
    store.fail_loads(true);
    for (method, path) in [
        (Method::GET, "/cart"),
        (Method::POST, "/cart/down"),
        (Method::POST, "/login"),
        (Method::GET, "/all"),
    ] {
        let reply = send(&app, http_common::request(method, path, Some(&third))).await;
        assert_eq!(reply.status, StatusCode::SERVICE_UNAVAILABLE, "{path}");
    }
    store.fail_loads(false);
    post_with(&app, "/logout", Some(&third)).await;
}

async fn header_flows(secrets: &mut Secrets) {
    let name = HeaderName::from_static("x-session-id");
    let app = app(SessionLayer::new(MemoryStore::new()).header(name.clone()));
    let call = |method: Method, path: &'static str, value: Option<String>| {
        let app = app.clone();
        let name = name.clone();
        async move {
            send(
                &app,
                request_with_header(method, path, &name, value.as_deref()),
            )
            .await
        }
    };
    let created = call(Method::POST, "/cart/apple", None).await;
    let first = secrets.add(created.header("x-session-id").expect("id"));
    call(Method::GET, "/all", Some(first.clone())).await;
    call(Method::POST, "/coupon/H", Some(first.clone())).await;
    let cycled = call(Method::POST, "/login", Some(first.clone())).await;
    let second = secrets.add(cycled.header("x-session-id").expect("new id"));
    call(Method::GET, "/cart", Some(first.clone())).await;
    let malformed = secrets.add("malformed-header-session-id-value-02");
    call(Method::POST, "/cart/m", Some(malformed)).await;
    let unknown = secrets.add(SessionId::generate().expect("id").expose());
    call(Method::GET, "/cart", Some(unknown)).await;
    call(Method::POST, "/logout", Some(second)).await;
}

async fn cookie_store_flows(secrets: &mut Secrets) {
    secrets.add(key_a().to_base64());
    secrets.add(key_b().to_base64());
    let clock = ManualClock::new();
    let app_a = cookie_app(vec![key_a()], &clock);

    let first = secrets.add(post_with(&app_a, "/cart/apple", None).await.cookie());
    get_with(&app_a, "/all", Some(&first)).await;
    let second = secrets.add(post_with(&app_a, "/coupon/K", Some(&first)).await.cookie());
    let third = secrets.add(post_with(&app_a, "/login", Some(&second)).await.cookie());
    post_with(&app_a, "/logout", Some(&third)).await;

    // Tampered, truncated, garbage and misnamed cookies.
    for bad in [
        flip_middle(&second),
        second[..second.len() / 2].to_owned(),
        format!("{second}{second}"),
        "garbage-sealed-cookie-value-03".to_owned(),
    ] {
        let bad = secrets.add(bad);
        assert_eq!(
            get_with(&app_a, "/cart", Some(&bad)).await.status,
            StatusCode::OK
        );
    }
    let both = format!("other=x; session={}; session={first}", flip_middle(&first));
    secrets.add(both.clone());
    send(
        &app_a,
        request_with_header(Method::GET, "/cart", &header::COOKIE, Some(&both)),
    )
    .await;

    // Rotation: [B, A] opens A's cookie and reseals it with B; [B] alone refuses A's.
    let rotated = cookie_app(vec![key_b(), key_a()], &clock);
    let resealed = secrets.add(get_with(&rotated, "/cart", Some(&second)).await.cookie());
    let only_b = cookie_app(vec![key_b()], &clock);
    get_with(&only_b, "/cart", Some(&resealed)).await;
    get_with(&only_b, "/cart", Some(&second)).await;

    // Too large for a cookie: a 500 and an error line.
    let big = post_with(&app_a, "/big", Some(&first)).await;
    assert_eq!(big.status, StatusCode::INTERNAL_SERVER_ERROR);

    // Expired.
    clock.advance(Duration::from_secs(7200));
    get_with(&app_a, "/cart", Some(&first)).await;
}

async fn sqlite_flows(secrets: &mut Secrets) {
    let path = std::env::temp_dir().join(format!("security-logs-{}.db", std::process::id()));
    let store = SqliteStore::open(&path).await.expect("sqlite");
    let app = app(SessionLayer::new(store.clone()));
    // Before its table exists the store fails every query: a 503 and an error line.
    let failed = post_with(&app, "/cart/apple", None).await;
    assert_eq!(failed.status, StatusCode::SERVICE_UNAVAILABLE);
    store.migrate().await.expect("migrate");
    let created = post_with(&app, "/cart/apple", None).await;
    assert_eq!(created.status, StatusCode::OK, "{created:?}");
    let first = secrets.add(created.cookie());
    get_with(&app, "/all", Some(&first)).await;
    post_with(&app, "/coupon/S", Some(&first)).await;
    let second = secrets.add(post_with(&app, "/login", Some(&first)).await.cookie());
    get_with(&app, "/cart", Some(&first)).await;
    post_with(&app, "/logout", Some(&second)).await;
    drop(app);
    for suffix in ["", "-wal", "-shm"] {
        let mut file = path.clone().into_os_string();
        file.push(suffix);
        let _ = std::fs::remove_file(file);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_log_line_holds_a_session_id_cookie_value_or_key() {
    let buffer = captured();
    let mut secrets = Secrets::default();
    memory_flows(&mut secrets).await;
    header_flows(&mut secrets).await;
    cookie_store_flows(&mut secrets).await;
    sqlite_flows(&mut secrets).await;

    let text = String::from_utf8_lossy(&buffer.lock().expect("log buffer")).into_owned();
    // The capture works: the flows' warnings and errors are there.
    for expected in [
        "malformed session id refused",
        "unknown or expired session id",
        "session cookie refused",
        "session store failed to load a session",
        "4096",
        "ERROR",
        "WARN",
    ] {
        assert!(
            text.contains(expected),
            "no `{expected}` in the logs:\n{text}"
        );
    }
    assert!(text.lines().count() >= 20, "too few lines:\n{text}");

    // No secret, nor any 16-character piece of one, on any line.
    const PIECE: usize = 16;
    let pieces: HashSet<&[u8]> = text.as_bytes().windows(PIECE).collect();
    for secret in &secrets.0 {
        assert!(
            !text.contains(secret.as_str()),
            "a secret is in the logs: {secret}\n{text}"
        );
        if let Some(piece) = secret
            .as_bytes()
            .windows(PIECE)
            .find(|w| pieces.contains(w))
        {
            let piece = String::from_utf8_lossy(piece);
            let line = text
                .lines()
                .find(|line| line.contains(&*piece))
                .unwrap_or_default();
            // Runs of one repeated character (the padding of made-up values) are no leak.
            let repeated = piece.chars().all(|c| piece.starts_with(c));
            assert!(
                repeated,
                "a piece of {secret} is in the logs: `{piece}` in\n{line}"
            );
        }
    }
}
