//! Small tools of the suite: a gate that holds a handler, captured `tracing` output, reading
//! `Set-Cookie` lines, requests made with a given token, and a seeded random source.

use std::io;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http::Method;
use sessions::store::SessionKey;
use sessions::testing::{TestClient, TestResponse, Transport};
use sessions::{SessionId, SessionLayer};
use tokio::sync::Notify;

// ---- holding a handler -----------------------------------------------------------------------

/// How long a test waits for a handler to reach its gate before it calls the test broken.
const GATE_WAIT: Duration = Duration::from_secs(10);

/// Holds one handler at a point of the test's choosing: the handler calls [`pause`], the
/// test waits with [`reached`] and lets it go with [`release`]. `Notify` keeps a permit, so
/// neither side can miss the other.
///
/// [`pause`]: Gate::pause
/// [`reached`]: Gate::reached
/// [`release`]: Gate::release
#[derive(Clone, Default)]
pub(crate) struct Gate {
    reached: Arc<Notify>,
    release: Arc<Notify>,
}

impl Gate {
    /// In the handler: says "I am here" and waits to be let go.
    pub(crate) async fn pause(&self) {
        self.reached.notify_one();
        self.release.notified().await;
    }

    /// In the test: waits until the handler is at its gate.
    pub(crate) async fn reached(&self) {
        tokio::time::timeout(GATE_WAIT, self.reached.notified())
            .await
            .expect("the handler never reached its gate");
    }

    /// In the test: lets the handler go on.
    pub(crate) fn release(&self) {
        self.release.notify_one();
    }
}

// ---- captured logs ------------------------------------------------------------------------------

/// Everything `tracing` printed while the guard of [`capture_logs`] was alive on this thread.
#[derive(Clone, Default)]
pub(crate) struct Logs(Arc<Mutex<Vec<u8>>>);

impl Logs {
    pub(crate) fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().expect("log lock")).into_owned()
    }

    /// The lines at `level` (`"WARN"`, `"ERROR"`, …).
    pub(crate) fn lines_at(&self, level: &str) -> Vec<String> {
        self.text()
            .lines()
            .filter(|line| line.split_whitespace().nth(1) == Some(level))
            .map(str::to_owned)
            .collect()
    }
}

struct LogWriter(Arc<Mutex<Vec<u8>>>);

impl io::Write for LogWriter {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        self.0.lock().expect("log lock").extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Captures every `tracing` event (all levels, all targets) on this thread while the guard
/// lives. The suite runs each test on one thread (a current-thread runtime), so this sees
/// everything the layer and the store log.
pub(crate) fn capture_logs() -> (Logs, tracing::subscriber::DefaultGuard) {
    let logs = Logs::default();
    let buffer = logs.0.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .with_writer(move || LogWriter(buffer.clone()))
        .finish();
    let guard = tracing::subscriber::set_default(subscriber);
    (logs, guard)
}

// ---- Set-Cookie lines ---------------------------------------------------------------------------

/// The value of a `Set-Cookie` line (`name=value; attributes`).
pub(crate) fn cookie_value(set_cookie: &str) -> &str {
    let pair = set_cookie.split(';').next().unwrap_or_default();
    pair.split_once('=').map_or("", |(_, value)| value.trim())
}

/// The attributes of a `Set-Cookie` line, trimmed, in order.
pub(crate) fn attributes(set_cookie: &str) -> Vec<&str> {
    set_cookie.split(';').skip(1).map(str::trim).collect()
}

/// The `Max-Age` of a `Set-Cookie` line, if it has one.
pub(crate) fn max_age(set_cookie: &str) -> Option<u64> {
    attributes(set_cookie).into_iter().find_map(|attribute| {
        let (name, value) = attribute.split_once('=')?;
        name.eq_ignore_ascii_case("max-age")
            .then(|| value.parse().expect("Max-Age is a number"))
    })
}

/// The `Set-Cookie` lines of `response` but the read mark (`<name>_written`, which a write
/// to a store with read replicas hands out beside the session's cookie).
pub(crate) fn session_cookies(response: &TestResponse) -> Vec<&str> {
    response
        .set_cookies()
        .into_iter()
        .filter(|line| {
            let name = line.split('=').next().unwrap_or_default().trim();
            !name.ends_with("_written")
        })
        .collect()
}

/// The one `Set-Cookie` of `response` (the read mark aside); panics when there are none or
/// several.
pub(crate) fn the_set_cookie(response: &TestResponse) -> String {
    let all = session_cookies(response);
    assert_eq!(all.len(), 1, "expected exactly one Set-Cookie: {all:?}");
    all[0].to_owned()
}

/// The token the one `Set-Cookie` of `response` hands out.
pub(crate) fn token(response: &TestResponse) -> String {
    cookie_value(&the_set_cookie(response)).to_owned()
}

/// The non-empty cookie values `response` sets (removals are left out).
pub(crate) fn live_cookies(response: &TestResponse) -> Vec<String> {
    session_cookies(response)
        .iter()
        .map(|line| cookie_value(line).to_owned())
        .filter(|value| !value.is_empty())
        .collect()
}

/// The key the store files the session with id `id` under.
/// Whether the response clears the session cookie and sets nothing else: what a request that
/// carried a dead id (unknown, expired, logged out, revoked, refused) gets back.
pub(crate) fn only_forgets(response: &TestResponse) -> bool {
    let lines = response.set_cookies();
    !lines.is_empty()
        && lines
            .iter()
            .all(|line| cookie_value(line).is_empty() && max_age(line) == Some(0))
}

pub(crate) fn key_of(id: &str) -> SessionKey {
    SessionId::parse(id)
        .expect("a well-formed session id")
        .key()
}

// ---- requests as a given session ---------------------------------------------------------------

/// `method path` from `client` carrying `token` as its session for `layer` (none: no session),
/// as a browser holding that cookie (or a replayed one) would send it.
pub(crate) async fn request_as<T: Transport>(
    client: &TestClient<T>,
    layer: &SessionLayer,
    token: Option<&str>,
    method: Method,
    path: &str,
) -> TestResponse {
    match token {
        Some(token) => client.set_session(layer, token),
        None => client.forget_session(layer),
    }
    client.request(method, path, Bytes::new()).await
}

/// `GET path` carrying `token` (see [`request_as`]).
pub(crate) async fn get_as<T: Transport>(
    client: &TestClient<T>,
    layer: &SessionLayer,
    token: Option<&str>,
    path: &str,
) -> TestResponse {
    request_as(client, layer, token, Method::GET, path).await
}

/// `POST path` carrying `token` (see [`request_as`]).
pub(crate) async fn post_as<T: Transport>(
    client: &TestClient<T>,
    layer: &SessionLayer,
    token: Option<&str>,
    path: &str,
) -> TestResponse {
    request_as(client, layer, token, Method::POST, path).await
}

// ---- randomness ---------------------------------------------------------------------------------

/// SplitMix64: small, seeded, so that a failure reproduces.
#[derive(Debug, Clone)]
pub(crate) struct Rng(u64);

impl Rng {
    pub(crate) fn new(seed: u64) -> Self {
        Self(seed)
    }

    pub(crate) fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number below `n` (`n > 0`).
    pub(crate) fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }

    pub(crate) fn bytes(&mut self, len: usize) -> Vec<u8> {
        (0..len).map(|_| self.next_u64() as u8).collect()
    }
}
