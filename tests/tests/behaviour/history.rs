//! The randomized concurrency test of issue 12: a few browsers (each one cookie jar), each with
//! a few tabs (clones of the browser's client: they share the jar) sending requests at once —
//! writes of unique values to the tab's own field, reads, logins (`cycle_id`) and logouts —
//! on a store that yields at random points between its calls, so the requests interleave
//! differently on every seed. Every request goes into a history (start and end on one logical
//! clock, the token sent and set, what a read saw), and `history_check` then checks the
//! history for every promise (its module docs say exactly what each allows).
//!
//! Bounded: 4 browsers × 4 tabs × 150 requests = 2,400 requests (a second or two on
//! `MemoryStore`). The seed is printed; `SESSIONS_HISTORY_SEED=<seed>` replays its requests and
//! its store yields (retries after a lost compare-and-swap wait on real time, so a replay can
//! still differ there), `SESSIONS_HISTORY_OPS=<n>` sets the requests per tab.

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use sessions::testing::{TestClient, TestResponse, Transport};
use sessions::{SessionLayer, SessionStore};

use super::history_check::{Event, Kind, check, report, value};
use super::model::Tabs;
use super::support::{Rng, cookie_value};
use super::{App, Gate, RecordingStore};

pub(crate) const BROWSERS: usize = 4;
pub(crate) const TABS: usize = 4;
const OPS_PER_TAB: usize = 150;

/// The run's seed and size, from the environment or fresh.
pub(crate) fn settings() -> (u64, usize) {
    let seed = std::env::var("SESSIONS_HISTORY_SEED")
        .ok()
        .and_then(|seed| seed.trim().parse().ok())
        .unwrap_or_else(|| {
            let id = sessions::SessionId::generate().expect("randomness");
            id.key().as_bytes()[..8]
                .iter()
                .fold(0u64, |seed, b| seed << 8 | u64::from(*b))
        });
    let ops = std::env::var("SESSIONS_HISTORY_OPS")
        .ok()
        .and_then(|ops| ops.trim().parse().ok())
        .unwrap_or(OPS_PER_TAB);
    (seed, ops)
}

/// The requests one tab sends, in order: drawn from the seed, the browser and the tab.
fn plan(seed: u64, browser: usize, tab: usize, ops: usize) -> Vec<Kind> {
    let mut rng =
        Rng::new(seed ^ ((browser * TABS + tab) as u64 + 1).wrapping_mul(0xA24B_AED4_963E_E407));
    let mut written = 0;
    (0..ops)
        .map(|_| match rng.below(100) {
            0..45 => {
                written += 1;
                Kind::Write {
                    tab,
                    value: value(browser, tab, written),
                }
            }
            45..80 => Kind::Read,
            80..92 => Kind::Login,
            _ => Kind::Logout,
        })
        .collect()
}

/// The history being written, and its clock.
#[derive(Clone, Default)]
pub(crate) struct Recorder {
    clock: Arc<AtomicU64>,
    events: Arc<Mutex<Vec<Event>>>,
}

impl Recorder {
    fn tick(&self) -> u64 {
        self.clock.fetch_add(1, Ordering::SeqCst)
    }

    pub(crate) fn events(&self) -> Vec<Event> {
        self.events.lock().expect("history lock").clone()
    }
}

/// What a read's body says it saw.
fn seen(response: &TestResponse) -> Option<[u64; 4]> {
    let text = response.text();
    if text == "none" {
        return None;
    }
    let values: Vec<u64> = text
        .split(',')
        .map(|v| v.parse().expect("a number"))
        .collect();
    Some(values.try_into().expect("four fields"))
}

/// One tab's run: its requests one after another, each recorded.
async fn run_tab<T: Transport>(
    client: TestClient<T>,
    layer: SessionLayer,
    recorder: Recorder,
    browser: usize,
    tab: usize,
    requests: Vec<Kind>,
) {
    for kind in requests {
        // Read the token, stamp the start and send, with no await in between: what the
        // request carries is what the jar held at its start.
        let sent = client.session(&layer);
        let start = recorder.tick();
        let response = match kind {
            Kind::Write { tab, value } => client.post(&format!("/tab/{tab}/{value}")).await,
            Kind::Read => client.get("/tabs").await,
            Kind::Login => client.post("/tabs/login").await,
            Kind::Logout => client.post("/tabs/logout").await,
        };
        let end = recorder.tick();
        let status = response.status().as_u16();
        let set = response
            .set_cookies()
            .iter()
            .find(|line| line.starts_with("session="))
            .map(|line| cookie_value(line).to_owned());
        let seen = (kind == Kind::Read && status == 200)
            .then(|| seen(&response))
            .flatten();
        recorder.events.lock().expect("history lock").push(Event {
            browser,
            tab,
            kind,
            start,
            end,
            status,
            sent,
            set,
            seen,
        });
    }
}

/// Every tab's run, to be `spawn_local`ed: on one thread, a tab's reading the token from the
/// jar and its request carrying it are one step (on several threads another tab's response
/// could change the jar in between, and the history would record a token the request did not
/// carry).
pub(crate) fn tab_runs<T: Transport + Clone + 'static>(
    browsers: &[TestClient<T>],
    layer: &SessionLayer,
    recorder: &Recorder,
    seed: u64,
    ops: usize,
) -> Vec<impl Future<Output = ()> + use<T>> {
    let mut runs = Vec::new();
    for (browser, client) in browsers.iter().enumerate() {
        for tab in 0..TABS {
            runs.push(run_tab(
                client.clone(),
                layer.clone(),
                recorder.clone(),
                browser,
                tab,
                plan(seed, browser, tab, ops),
            ));
        }
    }
    runs
}

/// The layer of a history run over `store`, which yields as `seed` says.
pub(crate) fn history_layer<S: SessionStore + Clone>(store: S, seed: u64) -> SessionLayer {
    SessionLayer::new(RecordingStore::new(store).interleaving_seeded(seed)).register::<Tabs>()
}

/// Checks a finished run: every promise, and that the run exercised what it checks (so that
/// it cannot pass by doing nothing).
pub(crate) fn verify(events: &[Event], seed: u64, ops: usize) {
    assert_eq!(events.len(), BROWSERS * TABS * ops);
    let count = |what: &dyn Fn(&Event) -> bool| events.iter().filter(|event| what(event)).count();
    let acked = |event: &Event| (200..300).contains(&event.status);
    let writes = count(&|e| matches!(e.kind, Kind::Write { .. }) && acked(e));
    let refused = count(&|e| matches!(e.kind, Kind::Write { .. }) && !acked(e));
    let reads_with_data = count(&|e| e.kind == Kind::Read && e.seen.is_some());
    let moves = count(&|e| {
        e.kind == Kind::Login && acked(e) && e.set.as_deref().is_some_and(|s| !s.is_empty())
    });
    let logouts = count(&|e| e.kind == Kind::Logout && acked(e));
    println!(
        "history seed {seed}: {} requests; {writes} writes acknowledged, {refused} refused; \
         {reads_with_data} reads saw data; {moves} logins moved a session; {logouts} logouts",
        events.len()
    );
    let violations = check(events);
    assert!(
        violations.is_empty(),
        "seed {seed} (replay: SESSIONS_HISTORY_SEED={seed}): {}",
        report(events, &violations)
    );
    if ops >= OPS_PER_TAB {
        assert!(
            writes > 100 && reads_with_data > 100 && moves > 10 && logouts > 10,
            "too little happened"
        );
    }
}

/// The randomized history on `store`: 4 browsers, 4 tabs each, every promise checked.
pub(crate) async fn randomized_history_keeps_every_promise<A: App, S: SessionStore + Clone>(
    store: S,
) {
    let (seed, ops) = settings();
    println!(
        "{}: history seed {seed} (replay: SESSIONS_HISTORY_SEED={seed})",
        A::NAME
    );
    let layer = history_layer(store, seed);
    let mut browsers = Vec::new();
    for _ in 0..BROWSERS {
        browsers.push(A::serve(layer.clone(), Gate::default()).await);
    }
    let recorder = Recorder::default();
    let runs: Vec<_> = tab_runs(&browsers, &layer, &recorder, seed, ops)
        .into_iter()
        .map(tokio::task::spawn_local)
        .collect();
    for run in runs {
        run.await.expect("a tab panicked");
    }
    verify(&recorder.events(), seed, ops);
}
