//! The layer over a `CookieStore` (keys [current, previous]) fed arbitrary `Cookie` headers, one
//! per input line. It must never accept a forged cookie: the handler sees stored data only when
//! the input holds, byte for byte, a token this harness sealed with the app's keys under its
//! cookie name, unexpired. Every token seals a distinct secret, so the secret the handler sees
//! names the one token that must be in the input.
//!
//! The seed corpus (`fuzz/seeds/sealed_cookie/`) holds real tokens: valid ones, and ones that
//! must never open (a foreign key, an impostor key under the app's key id, another cookie name,
//! expired). `fuzz/seeds/sealed_cookie.tokens` lists them with their secrets. Both are written
//! by `SESSIONS_FUZZ_WRITE_SEEDS=1 RUSTC_BOOTSTRAP=1 cargo fuzz run sealed_cookie -- -runs=0`;
//! after that, empty `fuzz/corpus/sealed_cookie/`: its copies of the old tokens still open (same
//! keys), but no longer match the listed ones, and would be reported as forgeries.
#![no_main]

use std::collections::HashMap;
use std::path::PathBuf;

use axum::Router;
use http::{Method, StatusCode, header};
use libfuzzer_sys::fuzz_target;
use sessions_fuzz::app::{request, seed_tokens, send, target_cookie_app};

struct Harness {
    app: Router,
    /// Secret → the one token that seals it, for tokens that may open.
    may_open: HashMap<String, String>,
    /// Secret → token, for tokens that must never open.
    never: HashMap<String, String>,
}

fn seeds_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("seeds")
}

/// The tokens listed in the manifest: `secret yes|no token` lines.
fn manifest() -> Vec<(String, String, bool)> {
    let text =
        std::fs::read_to_string(seeds_dir().join("sealed_cookie.tokens")).unwrap_or_default();
    text.lines()
        .filter_map(|line| {
            let mut parts = line.split(' ');
            let (secret, may_open, token) = (parts.next()?, parts.next()?, parts.next()?);
            Some((secret.to_owned(), token.to_owned(), may_open == "yes"))
        })
        .collect()
}

fn write_seeds(tokens: &[(String, String, bool)]) {
    let dir = seeds_dir().join("sealed_cookie");
    if let Err(err) = std::fs::create_dir_all(&dir) {
        panic!("{}: {err}", dir.display());
    }
    let mut list = String::new();
    for (index, (secret, token, may_open)) in tokens.iter().enumerate() {
        let yes = if *may_open { "yes" } else { "no" };
        list.push_str(&format!("{secret} {yes} {token}\n"));
        // Plain, among other cookies, and quoted.
        let value = match index % 3 {
            0 => format!("session={token}"),
            1 => format!("theme=dark; session={token}; lang=en"),
            _ => format!("session=\"{token}\""),
        };
        let file = dir.join(secret);
        if let Err(err) = std::fs::write(&file, value) {
            panic!("{}: {err}", file.display());
        }
    }
    let file = seeds_dir().join("sealed_cookie.tokens");
    if let Err(err) = std::fs::write(&file, list) {
        panic!("{}: {err}", file.display());
    }
}

fn read(app: &Router, cookie: &str) -> (StatusCode, String, usize) {
    let reply = send(
        app,
        request(
            Method::GET,
            "/read",
            &[(header::COOKIE, cookie.as_bytes().to_vec())],
        ),
    );
    let set = reply.set_cookie_values().len();
    (reply.status, reply.body, set)
}

fn harness() -> &'static Harness {
    static HARNESS: std::sync::OnceLock<Harness> = std::sync::OnceLock::new();
    HARNESS.get_or_init(|| {
        let mut tokens = manifest();
        if std::env::var_os("SESSIONS_FUZZ_WRITE_SEEDS").is_some() {
            tokens = seed_tokens("seed");
            write_seeds(&tokens);
        }
        // Tokens sealed in this run as well, so the oracle holds without any seed.
        tokens.extend(seed_tokens("run"));
        let app = target_cookie_app();
        let mut harness = Harness {
            app,
            may_open: HashMap::new(),
            never: HashMap::new(),
        };
        for (secret, token, may_open) in tokens {
            // The harness checks itself: each token does exactly what it is listed for.
            let (status, body, _) = read(&harness.app, &format!("session={token}"));
            assert_eq!(status, StatusCode::OK, "{secret}");
            if may_open {
                assert_eq!(body, format!("stored:{secret}"), "{secret} does not open");
                harness.may_open.insert(secret, token);
            } else {
                assert_eq!(body, "none", "{secret} opens");
                harness.never.insert(secret, token);
            }
        }
        harness
    })
}

fuzz_target!(|data: &[u8]| {
    let harness = harness();
    let headers: Vec<_> = data
        .split(|b| *b == b'\n')
        .map(|line| (header::COOKIE, line.to_vec()))
        .collect();
    let reply = send(&harness.app, request(Method::GET, "/read", &headers));
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    let resealed = reply.set_cookie_values();
    let Some(secret) = reply.body.strip_prefix("stored:") else {
        assert_eq!(reply.body, "none");
        // A fresh session sets no cookie; it may clear one that opened but is dead (expired,
        // revoked, sealed with a retired key): a removal carries an empty value.
        let removals = reply.headers.get_all(header::SET_COOKIE).iter().all(|value| {
            value
                .to_str()
                .is_ok_and(|text| text.contains("Max-Age=0"))
        });
        assert!(
            removals && resealed.iter().all(|value| value.is_empty()),
            "a fresh session set a cookie: {resealed:?}"
        );
        return;
    };
    if harness.never.contains_key(secret) {
        panic!("a cookie that must never open opened: {secret}");
    }
    let Some(token) = harness.may_open.get(secret) else {
        panic!("FORGED: the handler saw a secret no token of this harness seals: {secret:?}");
    };
    assert!(
        data.windows(token.len()).any(|w| w == token.as_bytes()),
        "FORGED: {secret} opened without its token in the input"
    );
    // A token of the previous key is sealed again with the current one; a current one is not.
    if secret.starts_with("previous-") {
        assert_eq!(resealed.len(), 1, "{secret}: not resealed");
        assert_ne!(&resealed[0], token);
    } else {
        assert!(resealed.is_empty(), "{secret}: resealed {resealed:?}");
    }
});
