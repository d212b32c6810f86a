//! The layer over a `MemoryStore` fed arbitrary `Cookie` and `x-session-id` header bytes.
//!
//! Input: the first byte picks the route (low bits) and the transport (bit 3: cookie or
//! header); the rest is lines, each one header: `c<bytes>` a `Cookie`, `x<bytes>` an
//! `x-session-id`, `k<digit>` / `h<digit>` the cookie / header of one of the sessions the
//! harness keeps stored under fixed ids. Whatever comes in:
//!
//! * no panic; the answer is the handler's 200, or a 500 only for the session holding a slot
//!   from the future;
//! * strict session management: an id the response hands out is a well-formed id, and never one
//!   the client sent unless it is a stored session the request kept (never after `cycle_id`);
//! * after a 200 `logout`, no id is handed out.
#![no_main]

use std::time::Duration;

use axum::Router;
use http::{HeaderName, Method, StatusCode, header};
use libfuzzer_sys::fuzz_target;
use sessions::{Format, MemoryStore, SessionId, SessionStore};
use sessions::store::{Deadline, Entry, Record, SessionKey, Slot, Stored};
use sessions::clock::ManualClock;
use sessions_fuzz::app::{ID_HEADER, STORE_ROUTES, fixed_now, request, runtime, send, store_app};

/// Ids the harness keeps stored: two carts, and one with a cart slot from a future version.
const KNOWN: [&str; 3] = [
    "c2Vzc2lvbnMtZnV6ei1rbm93bi1zZXNzaW9uLWlkLTA",
    "c2Vzc2lvbnMtZnV6ei1rbm93bi1zZXNzaW9uLWlkLTE",
    "c2Vzc2lvbnMtZnV6ei1rbm93bi1zZXNzaW9uLWlkLTI",
];

struct Harness {
    store: MemoryStore,
    cookie_app: Router,
    header_app: Router,
    known: Vec<(SessionId, Record)>,
}

fn known_records() -> Vec<Record> {
    let cart = |items: &str, visits: &str| {
        let mut record = Record::new();
        record.insert(Slot::new(
            "cart",
            1,
            Format::Json,
            vec![
                ("items".into(), items.to_owned().into()),
                ("visits".into(), visits.to_owned().into()),
            ],
        ));
        record
    };
    let mut future = cart("[]", "0");
    future.insert(Slot::new("cart", 9, Format::Json, vec![]));
    vec![cart(r#"["a"]"#, "1"), cart(r#"["b","c"]"#, "7"), future]
}

fn harness() -> &'static Harness {
    static HARNESS: std::sync::OnceLock<Harness> = std::sync::OnceLock::new();
    HARNESS.get_or_init(|| {
        let clock = ManualClock::at(fixed_now());
        let store = MemoryStore::with_clock(clock.clone());
        let known = KNOWN
            .iter()
            .zip(known_records())
            .map(|(text, record)| match SessionId::parse(text) {
                Some(id) => (id, record),
                None => panic!("{text} is not a well-formed id"),
            })
            .collect();
        let harness = Harness {
            cookie_app: store_app(store.clone(), clock.clone(), false),
            header_app: store_app(store.clone(), clock, true),
            store,
            known,
        };
        restore(&harness);
        harness
    })
}

/// Puts the known sessions back as they were (a request may have changed, cycled or destroyed them).
fn restore(harness: &Harness) {
    let deadline = Deadline {
        created_at: fixed_now(),
        expires_at: fixed_now() + Duration::from_secs(365 * 24 * 3600),
    };
    runtime().block_on(async {
        for (id, record) in &harness.known {
            let key = id.key();
            let stored = harness.store.load(&key).await.ok().flatten();
            let current = match &stored {
                Some(Entry::Live { session, .. }) if session.record == *record => continue,
                Some(entry) => Some(entry.version()),
                None => None,
            };
            let entry = Entry::Live {
                version: current.map_or(1, |v| v + 1),
                session: Stored::new(record.clone(), deadline),
            };
            match harness.store.swap(&key, current, Some(entry)).await {
                Ok(true) => {}
                Ok(false) => panic!("restore: the store changed under the harness"),
                Err(err) => panic!("restore: {err}"),
            }
        }
    });
}

/// Removes the session under `key`, whatever it holds.
async fn remove(store: &MemoryStore, key: &SessionKey) {
    if let Ok(Some(entry)) = store.load(key).await {
        let _ = store.swap(key, Some(entry.version()), None).await;
    }
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    !needle.is_empty()
        && haystack
            .windows(needle.len())
            .any(|w| w == needle.as_bytes())
}

fuzz_target!(|data: &[u8]| {
    let harness = harness();
    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    let route = usize::from(selector & 0b111) % STORE_ROUTES.len();
    let in_header = selector & 0b1000 != 0;
    let (method, path) = STORE_ROUTES[route];
    let id_header = HeaderName::from_static(ID_HEADER);

    let mut headers = Vec::new();
    let mut sent = Vec::new();
    for line in rest.split(|b| *b == b'\n') {
        let Some((&kind, value)) = line.split_first() else {
            continue;
        };
        let known = || {
            let index = usize::from(value.first().copied().unwrap_or(0)) % KNOWN.len();
            KNOWN[index]
        };
        let (name, value) = match kind {
            b'c' => (header::COOKIE, value.to_vec()),
            b'x' => (id_header.clone(), value.to_vec()),
            b'k' => (header::COOKIE, format!("session={}", known()).into_bytes()),
            b'h' => (id_header.clone(), known().as_bytes().to_vec()),
            _ => continue,
        };
        sent.extend_from_slice(&value);
        sent.push(b'\n');
        headers.push((name, value));
    }
    let verb = if method == "GET" {
        Method::GET
    } else {
        Method::POST
    };
    let app = if in_header {
        &harness.header_app
    } else {
        &harness.cookie_app
    };
    let reply = send(app, request(verb, path, &headers));

    let future_session = contains(&sent, KNOWN[2]);
    match reply.status {
        StatusCode::OK => {}
        StatusCode::INTERNAL_SERVER_ERROR if future_session => {}
        other => panic!("{method} {path}: {other} {}", reply.body),
    }

    let handed_out: Vec<String> = if in_header {
        reply
            .headers
            .get(ID_HEADER)
            .map(|v| v.to_str().unwrap_or("<not text>").to_owned())
            .into_iter()
            .collect()
    } else {
        reply.set_cookie_values()
    };
    let mut created = Vec::new();
    for id in handed_out.iter().filter(|id| !id.is_empty()) {
        let Some(parsed) = SessionId::parse(id) else {
            panic!("{path}: handed out a malformed id {id:?}");
        };
        if contains(&sent, id) {
            assert!(
                KNOWN.contains(&id.as_str()),
                "{path}: adopted an id the client chose: {id}"
            );
            assert!(
                !matches!(path, "/login" | "/cycle"),
                "{path}: cycle_id handed back the old id"
            );
        } else {
            created.push(parsed);
        }
    }
    if path == "/logout" && reply.status == StatusCode::OK {
        assert!(created.is_empty(), "logout handed out a new id");
    }

    // Keep the store small and the known sessions as they were.
    runtime().block_on(async {
        for id in &created {
            remove(&harness.store, &id.key()).await;
        }
    });
    restore(harness);
});
