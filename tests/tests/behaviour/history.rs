//! The randomized concurrency test of issues 12 and 20: a few browsers (each one cookie jar,
//! each signed in as one of two users), each with a few tabs sending requests at once — writes
//! of unique values to the tab's own field, reads, logins (`cycle_id`), sign-ins (the owner and
//! `cycle_id`), logouts, listings of the user's sessions and the three revocations (`revoke` of
//! a listed session, `revoke_others`, and `revoke_owner` from outside a request) — to two app
//! instances (two layers over one store, as two processes behind a load balancer: each request
//! goes to either), on a store that yields at random points between its calls, so the requests
//! interleave differently on every seed. Every request goes into a history (start and end on
//! one logical clock, the token sent and set, what a read saw, what a login or a revocation
//! answered), and `history_check` then checks the history for every promise (its module docs
//! say exactly what each allows).
//!
//! Bounded: 4 browsers × 4 tabs × 150 requests = 2,400 requests (a few seconds on
//! `MemoryStore`). The seed is printed; `SESSIONS_HISTORY_SEED=<seed>` replays its requests and
//! its store yields (retries after a lost compare-and-swap wait on real time, so a replay can
//! still differ there), `SESSIONS_HISTORY_OPS=<n>` sets the requests per tab.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use sessions::testing::{TestClient, TestResponse, Transport};
use sessions::{SessionLayer, SessionStore};

use super::history_check::{Event, Kind, check, report, value};
use super::model::{Auth, Tabs};
use super::owners::listing;
use super::support::{Rng, cookie_value};
use super::{App, Gate, RecordingStore};

pub(crate) const BROWSERS: usize = 4;
pub(crate) const TABS: usize = 4;
const OPS_PER_TAB: usize = 150;
/// The app instances the requests are spread over.
const INSTANCES: usize = 2;

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

/// The user browser `browser` signs in as (two browsers per user: the user's devices).
fn user_of(browser: usize) -> u64 {
    1 + (browser % 2) as u64
}

/// What a tab does next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Write {
        value: u64,
    },
    Read,
    Login,
    SignIn,
    Logout,
    List,
    /// List, then revoke one of the other sessions listed.
    Revoke,
    RevokeOthers,
    RevokeOwner,
}

/// The requests one tab sends, in order, each with the instance it goes to: drawn from the
/// seed, the browser and the tab.
fn plan(seed: u64, browser: usize, tab: usize, ops: usize) -> Vec<(Op, usize)> {
    let mut rng =
        Rng::new(seed ^ ((browser * TABS + tab) as u64 + 1).wrapping_mul(0xA24B_AED4_963E_E407));
    let mut written = 0;
    (0..ops)
        .map(|_| {
            let op = match rng.below(100) {
                0..40 => {
                    written += 1;
                    Op::Write {
                        value: value(browser, tab, written),
                    }
                }
                40..68 => Op::Read,
                68..73 => Op::Login,
                73..81 => Op::SignIn,
                81..87 => Op::Logout,
                87..91 => Op::List,
                91..94 => Op::Revoke,
                94..98 => Op::RevokeOthers,
                _ => Op::RevokeOwner,
            };
            (op, rng.below(INSTANCES))
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

    fn push(&self, event: Event) {
        self.events.lock().expect("history lock").push(event);
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

/// A browser's cookie jar, shared by its tabs: the session token it holds.
type Jar = Arc<Mutex<Option<String>>>;

/// The read mark's cookie (a store with read replicas hands it out with each write): a browser
/// keeps it beside the session's, for all its tabs.
const MARK: &str = "session_written";

/// One tab: a client of each instance (their own jars are set from the browser's before each
/// request), and where it records.
struct Tab<T> {
    clients: Vec<TestClient<T>>,
    layers: Vec<SessionLayer>,
    jar: Jar,
    /// The browser's read mark cookie, as the jar (`MARK`).
    mark: Jar,
    recorder: Recorder,
    browser: usize,
    tab: usize,
}

impl<T: Transport> Tab<T> {
    /// Sends `method path` to `instance` carrying what the jar holds now, and records it as
    /// `kind`; the jar takes the token the response sets. Reading the jar, stamping the start
    /// and sending happen with no await in between: what the request carries is what the jar
    /// held at its start.
    async fn send(
        &self,
        instance: usize,
        kind: Kind,
        post: bool,
        path: &str,
    ) -> (Event, TestResponse) {
        let (client, layer) = (&self.clients[instance], &self.layers[instance]);
        let sent = self.jar.lock().expect("jar lock").clone();
        match &sent {
            Some(token) => client.set_session(layer, token),
            None => client.forget_session(layer),
        }
        match self.mark.lock().expect("jar lock").as_deref() {
            Some(mark) => client.set_cookie(MARK, mark),
            None => client.remove_cookie(MARK),
        }
        let start = self.recorder.tick();
        let response = if post {
            client.post(path).await
        } else {
            client.get(path).await
        };
        let end = self.recorder.tick();
        let set = response
            .set_cookies()
            .iter()
            .find(|line| line.starts_with("session="))
            .map(|line| cookie_value(line).to_owned());
        match set.as_deref() {
            Some("") => *self.jar.lock().expect("jar lock") = None,
            Some(token) => *self.jar.lock().expect("jar lock") = Some(token.to_owned()),
            None => {}
        }
        let mark_prefix = format!("{MARK}=");
        if let Some(line) = response
            .set_cookies()
            .iter()
            .find(|line| line.starts_with(&mark_prefix))
        {
            let mark = cookie_value(line);
            *self.mark.lock().expect("jar lock") = (!mark.is_empty()).then(|| mark.to_owned());
        }
        let mut event = Event::new(self.browser, self.tab, kind, start, end);
        event.instance = instance;
        event.status = response.status().as_u16();
        event.sent = sent;
        event.set = set;
        event.error = response.header("x-session-error").map(str::to_owned);
        (event, response)
    }

    /// Carries out one step of the plan.
    async fn step(&self, op: Op, instance: usize, rng: &mut Rng) {
        let user = user_of(self.browser);
        let ok = |response: &TestResponse| response.status().is_success();
        match op {
            Op::Write { value } => {
                let path = format!("/tab/{}/{value}", self.tab);
                let kind = Kind::Write {
                    tab: self.tab,
                    value,
                };
                let (event, _) = self.send(instance, kind, true, &path).await;
                self.recorder.push(event);
            }
            Op::Read => {
                let (mut event, response) = self.send(instance, Kind::Read, false, "/tabs").await;
                event.seen = ok(&response).then(|| seen(&response)).flatten();
                self.recorder.push(event);
            }
            Op::Login | Op::SignIn => {
                let (kind, path) = match op {
                    Op::Login => (Kind::Login, "/tabs/login".to_owned()),
                    _ => (Kind::SignIn { user }, format!("/tabs/signin/{user}")),
                };
                let (mut event, response) = self.send(instance, kind, true, &path).await;
                event.moved = ok(&response) && response.text() == "moved";
                self.recorder.push(event);
            }
            Op::Logout => {
                let (event, _) = self
                    .send(instance, Kind::Logout, true, "/tabs/logout")
                    .await;
                self.recorder.push(event);
            }
            Op::List | Op::Revoke => {
                let (mut event, response) = self
                    .send(instance, Kind::List, false, "/auth/sessions")
                    .await;
                let listed = if ok(&response) {
                    listing(&response.text())
                } else {
                    Vec::new()
                };
                event.reference = listed
                    .iter()
                    .find(|entry| entry.current)
                    .map(|entry| entry.reference.clone());
                self.recorder.push(event);
                let others: Vec<_> = listed.iter().filter(|entry| !entry.current).collect();
                if op == Op::Revoke && !others.is_empty() {
                    let reference = others[rng.below(others.len())].reference.clone();
                    let path = format!("/auth/revoke/{reference}");
                    let (mut event, response) =
                        self.send(instance, Kind::Revoke, true, &path).await;
                    event.reference = Some(reference);
                    event.revoked = match response.text().as_str() {
                        "revoked=true" => Some(1),
                        "revoked=false" => Some(0),
                        _ => None,
                    };
                    self.recorder.push(event);
                }
            }
            Op::RevokeOthers => {
                let (mut event, response) = self
                    .send(instance, Kind::RevokeOthers, true, "/tabs/revoke-others")
                    .await;
                if ok(&response) {
                    let text = response.text();
                    let mut parts = text.split(' ');
                    let mut field = |name: &str| {
                        parts
                            .next()
                            .and_then(|part| part.strip_prefix(name))
                            .map(str::to_owned)
                    };
                    event.user = field("user=").and_then(|user| user.parse().ok());
                    event.revoked = field("revoked=").and_then(|n| n.parse().ok());
                }
                self.recorder.push(event);
            }
            Op::RevokeOwner => {
                let kind = Kind::RevokeOwner { user };
                let start = self.recorder.tick();
                let revoked = self.layers[instance].revoke_owner(&user.to_string()).await;
                let end = self.recorder.tick();
                let mut event = Event::new(self.browser, self.tab, kind, start, end);
                event.instance = instance;
                event.status = if revoked.is_ok() { 200 } else { 503 };
                event.revoked = revoked.ok();
                self.recorder.push(event);
            }
        }
    }

    async fn run(self, steps: Vec<(Op, usize)>, mut rng: Rng) {
        for (op, instance) in steps {
            self.step(op, instance, &mut rng).await;
        }
    }
}

/// The layers of a history run: `INSTANCES` layers over `store`, which yields as `seed` says.
pub(crate) fn history_layers<S: SessionStore + Clone>(store: S, seed: u64) -> Vec<SessionLayer> {
    let store = RecordingStore::new(store).interleaving_seeded(seed);
    (0..INSTANCES)
        .map(|_| {
            SessionLayer::new(store.clone())
                .register::<Tabs>()
                .register::<Auth>()
        })
        .collect()
}

/// Checks a finished run: every promise, and that the run exercised what it checks (so that
/// it cannot pass by doing nothing).
pub(crate) fn verify(events: &[Event], seed: u64, ops: usize, allowed: &[&str]) -> Vec<String> {
    assert!(events.len() >= BROWSERS * TABS * ops);
    let count = |what: &dyn Fn(&Event) -> bool| events.iter().filter(|event| what(event)).count();
    let acked = |event: &Event| (200..300).contains(&event.status);
    let writes = count(&|e| matches!(e.kind, Kind::Write { .. }) && acked(e));
    let refused = count(&|e| matches!(e.kind, Kind::Write { .. }) && !acked(e));
    let reads_with_data = count(&|e| e.kind == Kind::Read && e.seen.is_some());
    let moves = count(&|e| {
        matches!(e.kind, Kind::Login | Kind::SignIn { .. })
            && acked(e)
            && e.moved
            && e.set.as_deref().is_some_and(|s| !s.is_empty())
    });
    let sign_ins = count(&|e| matches!(e.kind, Kind::SignIn { .. }) && acked(e));
    let logouts = count(&|e| e.kind == Kind::Logout && acked(e));
    let revocations = count(&|e| {
        matches!(
            e.kind,
            Kind::Revoke | Kind::RevokeOthers | Kind::RevokeOwner { .. }
        ) && acked(e)
            && e.revoked.is_some_and(|n| n > 0)
    });
    let unsaved = count(&|e| e.status >= 500);
    println!(
        "history seed {seed}: {} requests; {writes} writes acknowledged, {refused} refused \
         ({unsaved} answered 5xx); {reads_with_data} reads saw data; {moves} logins moved a \
         session; {sign_ins} sign-ins; {logouts} logouts; {revocations} revocations ended sessions",
        events.len()
    );
    let (excused, violations): (Vec<_>, Vec<_>) = check(events)
        .into_iter()
        .partition(|violation| allowed.contains(&violation.rule));
    let excused: Vec<String> = excused
        .iter()
        .map(|violation| format!("{}: {}", violation.rule, violation.what))
        .collect();
    for line in &excused {
        println!("allowed here: {line}");
    }
    assert!(
        violations.is_empty(),
        "seed {seed} (replay: SESSIONS_HISTORY_SEED={seed}): {}",
        report(events, &violations)
    );
    if ops >= OPS_PER_TAB {
        assert!(
            writes > 100
                && reads_with_data > 100
                && moves > 10
                && sign_ins > 10
                && logouts > 10
                && revocations > 10,
            "too little happened"
        );
    }
    excused
}

/// The randomized history on `store`: 4 browsers of 2 users, 4 tabs each, two app instances,
/// every promise checked.
pub(crate) async fn randomized_history_keeps_every_promise<A: App, S: SessionStore + Clone>(
    store: S,
) {
    let (seed, ops) = settings();
    println!(
        "{}: history seed {seed} (replay: SESSIONS_HISTORY_SEED={seed})",
        A::NAME
    );
    run_history::<A>(history_layers(store, seed), seed, ops, &[]).await;
}

/// The randomized history with each app instance over a store of its own (two processes, each
/// with its own connections and memory, over one database), every promise checked but those in
/// `allowed` (the rules a store's documented weaker promise may break: their violations are
/// printed and returned). Used by `store_postgres_replicas.rs` (two `PostgresStore`s reading
/// from a replica).
#[allow(dead_code)]
pub(crate) async fn randomized_history_on_instances<A: App, S: SessionStore + Clone>(
    stores: [S; INSTANCES],
    allowed: &[&str],
) -> Vec<String> {
    let (seed, ops) = settings();
    println!(
        "{}: history seed {seed} (replay: SESSIONS_HISTORY_SEED={seed}), an instance per store",
        A::NAME
    );
    let layers = stores
        .into_iter()
        .map(|store| {
            SessionLayer::new(RecordingStore::new(store).interleaving_seeded(seed))
                .register::<Tabs>()
                .register::<Auth>()
        })
        .collect();
    run_history::<A>(layers, seed, ops, allowed).await
}

/// Runs the browsers' plans against `layers` (an app instance each) and checks the history.
async fn run_history<A: App>(
    layers: Vec<SessionLayer>,
    seed: u64,
    ops: usize,
    allowed: &[&str],
) -> Vec<String> {
    let recorder = Recorder::default();
    let mut runs = Vec::new();
    for browser in 0..BROWSERS {
        let jar = Jar::default();
        let mark = Jar::default();
        for tab in 0..TABS {
            let mut clients = Vec::new();
            for layer in &layers {
                clients.push(A::serve(layer.clone(), Gate::default()).await);
            }
            let tab_run = Tab {
                clients,
                layers: layers.clone(),
                jar: jar.clone(),
                mark: mark.clone(),
                recorder: recorder.clone(),
                browser,
                tab,
            };
            let steps = plan(seed, browser, tab, ops);
            let rng = Rng::new(seed ^ (browser * TABS + tab) as u64);
            runs.push(tokio::task::spawn_local(tab_run.run(steps, rng)));
        }
    }
    for run in runs {
        run.await.expect("a tab panicked");
    }
    verify(&recorder.events(), seed, ops, allowed)
}
