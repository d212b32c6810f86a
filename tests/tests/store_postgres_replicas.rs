//! `PostgresStore::read_replicas` against the local PostgreSQL and its streaming replica
//! (`.ci/replica.sh`: `SESSIONS_TEST_POSTGRES_URL`, `SESSIONS_TEST_POSTGRES_REPLICA_URL`;
//! skipped, passing, when either is unset).
//!
//! The replica's replay is paused to make its lag deterministic: what the primary writes then is
//! not on the replica until the test resumes it. A pause holds for the whole replica, so the
//! tests of this binary take turns ([`TURN`]), and a guard resumes replay when a test ends, a
//! failing one too. Requests go through the layer (the test kit's client, a browser's cookie
//! jar); "another instance of the app" is another store and layer on the same servers, whose
//! process remembers none of the first one's writes.

// The behaviour suite (its randomized history is run here on two instances of the app), and
// through it `replica_common`.
#[allow(dead_code, unused_imports, unused_macros)]
mod behaviour;
#[path = "postgres_common/proxy.rs"]
#[allow(dead_code)] // its statement counts are not used here
mod proxy;

use std::time::Duration;

use axum::Router;
use axum::extract::Path;
use axum::routing::{get, post};
use metrics_util::debugging::{DebugValue, DebuggingRecorder, Snapshotter};
use sessions::clock::SystemClock;
use sessions::prelude::*;
use sessions::store::{Entry, ReadMark, SessionKey, conformance};
use sessions::testing::{TestClient, TowerTransport};
use sessions::{PostgresStore, SessionId};
use tokio::sync::Mutex;

use behaviour::replica_common::{Servers, named, urls};

/// The tests of this binary take turns: a paused replay holds for every reader of the replica.
static TURN: Mutex<()> = Mutex::const_new(());

// ---- the app ------------------------------------------------------------------------------

#[derive(Session, Default)]
#[session(name = "cart")]
struct Cart {
    items: Vec<String>,
}

#[derive(Session, Default)]
#[session(name = "prefs")]
struct Prefs {
    theme: String,
}

async fn cart(cart: Option<Typed<Cart>>) -> String {
    cart.map(|cart| cart.items().join(",")).unwrap_or_default()
}

async fn add(Path(item): Path<String>, mut cart: Typed<Cart>) -> String {
    cart.items_mut().push(item);
    cart.items().join(",")
}

async fn prefs(prefs: Option<Typed<Prefs>>) -> String {
    prefs.map(|prefs| prefs.theme().clone()).unwrap_or_default()
}

async fn theme(Path(theme): Path<String>, mut prefs: Typed<Prefs>) -> String {
    prefs.set_theme(theme);
    prefs.theme().clone()
}

/// A form of [`FIELDS`] fields, each written by a request of its own.
#[derive(Session, Default)]
#[session(name = "form")]
struct Form {
    f0: String,
    f1: String,
    f2: String,
    f3: String,
    f4: String,
    f5: String,
}

const FIELDS: usize = 6;

async fn form(form: Option<Typed<Form>>) -> String {
    form.map(|form| {
        [
            form.f0(),
            form.f1(),
            form.f2(),
            form.f3(),
            form.f4(),
            form.f5(),
        ]
        .map(String::as_str)
        .join(",")
    })
    .unwrap_or_default()
}

async fn fill(Path((field, value)): Path<(usize, String)>, mut form: Typed<Form>) -> String {
    match field {
        0 => form.set_f0(value.clone()),
        1 => form.set_f1(value.clone()),
        2 => form.set_f2(value.clone()),
        3 => form.set_f3(value.clone()),
        4 => form.set_f4(value.clone()),
        _ => form.set_f5(value.clone()),
    }
    value
}

async fn login(session: SessionHandle) -> &'static str {
    session.cycle_id();
    "in"
}

async fn logout(session: SessionHandle) -> &'static str {
    session.destroy();
    "out"
}

/// One instance of the app: its layer (over its own store) and its routes.
#[derive(Clone)]
struct Instance {
    store: PostgresStore,
    layer: SessionLayer,
    router: Router,
}

impl Instance {
    fn new(store: PostgresStore, optimistic: bool) -> Self {
        let layer = SessionLayer::new(store.clone())
            .register::<Cart>()
            .register::<Prefs>()
            .register::<Form>()
            .optimistic_concurrency(optimistic);
        let router = Router::new()
            .route("/cart", get(cart))
            .route("/cart/{item}", post(add))
            .route("/prefs", get(prefs))
            .route("/prefs/{theme}", post(theme))
            .route("/form", get(form))
            .route("/form/{field}/{value}", post(fill))
            .route("/login", post(login))
            .route("/logout", post(logout))
            .layer(layer.clone());
        Self {
            store,
            layer,
            router,
        }
    }

    /// A browser of this instance (a cookie jar of its own).
    fn browser(&self) -> TestClient<TowerTransport<Router>> {
        TestClient::new(self.router.clone())
    }

    /// A browser of this instance holding `other`'s cookies: the same browser, its next
    /// request sent to this instance (a load balancer without affinity).
    fn browser_of(
        &self,
        other: &TestClient<TowerTransport<Router>>,
    ) -> TestClient<TowerTransport<Router>> {
        let browser = self.browser();
        for name in [SESSION, MARK] {
            if let Some(value) = other.cookie(name) {
                browser.set_cookie(name, &value);
            }
        }
        browser
    }

    /// The key the session `browser` holds is stored under.
    fn key(&self, browser: &TestClient<TowerTransport<Router>>) -> SessionKey {
        let id = browser
            .session(&self.layer)
            .expect("the browser holds a session");
        SessionId::parse(&id).expect("a session id").key()
    }
}

/// The session cookie's name, and its companion's (the version of the last write).
const SESSION: &str = "session";
const MARK: &str = "session_written";

// ---- the servers --------------------------------------------------------------------------

/// A test's table on the primary (replicated), its turn, and the connections it asks the
/// servers with; the table is dropped at the end.
struct Setup {
    servers: Servers,
    primary_url: String,
    replica_url: String,
    table: String,
    _turn: tokio::sync::MutexGuard<'static, ()>,
}

impl Setup {
    /// `None` (skipped) without both servers.
    async fn new() -> Option<Self> {
        let (primary_url, replica_url) = urls()?;
        let turn = TURN.lock().await;
        let servers = Servers::connect(&primary_url, &replica_url).await;
        let table = unique("replicas");
        let setup = Self {
            servers,
            primary_url,
            replica_url,
            table,
            _turn: turn,
        };
        let name = format!("h9_setup_{}", std::process::id());
        let store = PostgresStore::connect(&named(&setup.primary_url, &name))
            .await
            .expect("connect to the primary")
            .table_name(&setup.table);
        store.migrate().await.expect("migrate");
        store.close().await;
        setup.ended(&name).await;
        // The table is on the replica before any store reads it there.
        setup.servers.caught_up().await;
        Some(setup)
    }

    /// An instance of the app whose store reads from the replica, its connections named `name`
    /// on the servers, once the replica is in use (its lag measured).
    async fn instance(&self, name: &str, optimistic: bool) -> Instance {
        Instance::new(self.store(name).await, optimistic)
    }

    /// A store reading from the replica, its connections named `name` on the servers, once the
    /// replica is in use (its lag measured).
    async fn store(&self, name: &str) -> PostgresStore {
        let store = PostgresStore::connect(&named(&self.primary_url, name))
            .await
            .expect("connect to the primary")
            .table_name(&self.table)
            .read_replicas([named(&self.replica_url, name)])
            .expect("a replica URL")
            // Replay stays paused as long as a test needs: the bound is not what is tested here.
            .max_replica_lag(Duration::from_secs(3600));
        let ready = store.clone();
        self.servers
            .wait_for("the replica to be in use", || {
                let ready = ready.clone();
                async move { ready.replicas_in_use() == 1 }
            })
            .await;
        store
    }

    /// Scans of the test's table each server ran (index and sequential), once the connections
    /// named `name` are closed (a backend reports its counts when it exits).
    async fn scans_after_closing(&self, store: &PostgresStore, name: &str) -> (i64, i64) {
        store.close().await;
        self.ended(name).await;
        (
            self.scans(&self.servers.primary).await,
            self.scans(&self.servers.replica).await,
        )
    }

    /// Waits until no connection named `name` is open on either server: their counts are in
    /// the servers' statistics then.
    async fn ended(&self, name: &str) {
        for (server, pool) in [
            ("primary", &self.servers.primary),
            ("replica", &self.servers.replica),
        ] {
            self.servers
                .wait_for(
                    &format!("the {server}'s connections of {name} to end"),
                    || async {
                        let open: i64 = sqlx::query_scalar(
                            "SELECT count(*) FROM pg_stat_activity WHERE application_name = $1",
                        )
                        .bind(name)
                        .fetch_one(pool)
                        .await
                        .expect("pg_stat_activity");
                        open == 0
                    },
                )
                .await;
        }
    }

    async fn scans(&self, pool: &sqlx::PgPool) -> i64 {
        sqlx::query_scalar(
            "SELECT coalesce(seq_scan, 0) + coalesce(idx_scan, 0) FROM pg_stat_user_tables WHERE relname = $1",
        )
        .bind(&self.table)
        .fetch_one(pool)
        .await
        .expect("pg_stat_user_tables")
    }

    /// The version of the row under `key` on the primary, or on the replica (`None`: no row),
    /// read on a connection of its own that has ended when this returns (its scan counted).
    async fn version_on(&self, replica: bool, key: &SessionKey) -> Option<i64> {
        use sqlx::Connection;
        let name = "h9_peek";
        let url = if replica {
            &self.replica_url
        } else {
            &self.primary_url
        };
        let mut conn = sqlx::PgConnection::connect(&named(url, name))
            .await
            .expect("connect");
        let version = sqlx::query_scalar(&format!(
            "SELECT version FROM \"{}\" WHERE key = $1",
            self.table
        ))
        .bind(&key.as_bytes()[..])
        .fetch_optional(&mut conn)
        .await
        .expect("a version");
        conn.close().await.expect("close");
        self.ended(name).await;
        version
    }
}

impl Drop for Setup {
    fn drop(&mut self) {
        let (url, table) = (self.primary_url.clone(), self.table.clone());
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            runtime.block_on(async {
                let pool = sqlx::PgPool::connect(&url).await?;
                sqlx::query(&format!("DROP TABLE IF EXISTS \"{table}\""))
                    .execute(&pool)
                    .await?;
                pool.close().await;
                Ok::<(), sqlx::Error>(())
            })?;
            Ok::<(), Box<dyn std::error::Error + Send + Sync>>(())
        })
        .join();
        if !matches!(dropped, Ok(Ok(()))) {
            eprintln!("warning: table {} not dropped: {dropped:?}", self.table);
        }
    }
}

fn unique(prefix: &str) -> String {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static COUNTER: AtomicUsize = AtomicUsize::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    format!(
        "{prefix}_{}_{nanos}_{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

async fn ok(response: sessions::testing::TestResponse) -> String {
    assert_eq!(response.status(), 200, "{}", response.text());
    response.text()
}

// ---- read-your-writes -----------------------------------------------------------------------

/// The test: a session written through the primary while the replica's replay is
/// paused reads its write on its next request — on the instance that wrote it and on another
/// one — while other sessions' reads are served by the replica. The servers' own counters say
/// who answered: the replica ran every read of the second instance, the primary only the one
/// read whose copy on the replica was older than the browser's write.
#[tokio::test]
async fn a_session_reads_its_write_while_replay_is_paused_and_others_read_the_replica() {
    let Some(setup) = Setup::new().await else {
        return;
    };
    // Both instances measure the replica's lag from before the pause (an instance that starts
    // while the replica lags cannot know by how much, and reads the primary until it can).
    let first = setup.instance("h9_ryw_first", false).await;
    let second = setup.instance("h9_ryw_second", false).await;
    let alice = first.browser();
    let bob = first.browser();
    assert_eq!(ok(alice.post("/cart/a1").await).await, "a1");
    assert_eq!(ok(bob.post("/cart/b1").await).await, "b1");
    setup.servers.caught_up().await;

    let paused = setup.servers.pause().await;
    let written = alice.post("/cart/a2").await;
    assert_eq!(ok(written).await, "a1,a2");
    let key = first.key(&alice);
    let on_primary = setup.version_on(false, &key).await;
    let on_replica = setup.version_on(true, &key).await;
    assert!(
        on_replica < on_primary,
        "the replica must not have the write: {on_replica:?} vs {on_primary:?}"
    );
    assert!(
        alice.cookie(MARK).is_some(),
        "the write handed out its mark"
    );
    // The instance that wrote it remembers its write.
    assert_eq!(ok(alice.get("/cart").await).await, "a1,a2");
    let _ = setup
        .scans_after_closing(&first.store, "h9_ryw_first")
        .await;

    // Another instance knows nothing of the write: the browser's mark tells it.
    let (primary_before, replica_before) = (
        setup.scans(&setup.servers.primary).await,
        setup.scans(&setup.servers.replica).await,
    );
    let bob_there = second.browser_of(&bob);
    for _ in 0..5 {
        assert_eq!(ok(bob_there.get("/cart").await).await, "b1");
    }
    let alice_there = second.browser_of(&alice);
    assert_eq!(ok(alice_there.get("/cart").await).await, "a1,a2");
    // Without the mark (a copy of the session cookie alone), the replica's older copy answers:
    // the mark is what kept the browser's read on its write.
    let unmarked = second.browser();
    unmarked.set_cookie(SESSION, &alice.cookie(SESSION).expect("a session cookie"));
    assert_eq!(ok(unmarked.get("/cart").await).await, "a1");
    let (primary_after, replica_after) = setup
        .scans_after_closing(&second.store, "h9_ryw_second")
        .await;
    assert_eq!(
        replica_after - replica_before,
        7,
        "the replica ran bob's five reads, alice's marked read (behind) and the unmarked one"
    );
    assert_eq!(
        primary_after - primary_before,
        1,
        "the primary ran only alice's marked read, which the replica could not answer"
    );
    paused.resume(&setup.servers).await;
}

/// A login (`cycle_id()`) while replay is paused: the browser's next request, on another
/// instance, finds the session under its new id (which the replica has never heard of), not a
/// fresh one — the user is not logged out. A slow response from before the login that arrives
/// after it leaves a mark of the old id: the read then goes to the primary.
#[tokio::test]
async fn after_a_login_the_next_request_on_another_instance_finds_the_session() {
    let Some(setup) = Setup::new().await else {
        return;
    };
    let first = setup.instance("h9_login_first", false).await;
    let second = setup.instance("h9_login_second", false).await;
    let browser = first.browser();
    assert_eq!(ok(browser.post("/cart/a").await).await, "a");
    setup.servers.caught_up().await;
    let before_login = browser.cookie(MARK).expect("a mark");

    let paused = setup.servers.pause().await;
    assert_eq!(ok(browser.post("/login").await).await, "in");
    let moved = first.key(&browser);
    assert_eq!(setup.version_on(true, &moved).await, None);
    assert_eq!(
        ok(second.browser_of(&browser).get("/cart").await).await,
        "a"
    );

    // The mark of the old id (a response of before the login, arriving after it).
    let late = second.browser_of(&browser);
    late.set_cookie(MARK, &before_login);
    assert_eq!(ok(late.get("/cart").await).await, "a");
    // A mark that is not one reads the primary too.
    late.set_cookie(MARK, "garbage");
    assert_eq!(ok(late.get("/cart").await).await, "a");
    paused.resume(&setup.servers).await;
}

// ---- a stale replica never loses a write nor adds a 409 -----------------------------------------

/// Tabs of one browser on two instances, replay paused: the second tab's read carries the
/// first tab's mark, sees its write and writes on top of it (both items kept). A client whose
/// read the replica answers with an older copy (the session cookie alone: no mark) and which
/// changes another slot, with optimistic concurrency on: its save loses the compare-and-swap
/// against the primary, reads the primary, and applies there — a 200, and nothing lost.
#[tokio::test]
async fn a_save_on_an_older_replica_copy_loses_nothing_and_is_no_409() {
    let Some(setup) = Setup::new().await else {
        return;
    };
    let first = setup.instance("h9_race_first", true).await;
    let second = setup.instance("h9_race_second", true).await;
    // An instance that writes nothing before: its process remembers no write of the session.
    let third = setup.instance("h9_race_third", true).await;
    let tab = first.browser();
    assert_eq!(ok(tab.post("/cart/a").await).await, "a");
    setup.servers.caught_up().await;

    let paused = setup.servers.pause().await;
    assert_eq!(ok(tab.post("/cart/b").await).await, "a,b");
    let other_tab = second.browser_of(&tab);
    assert_eq!(ok(other_tab.post("/cart/c").await).await, "a,b,c");

    let unmarked = third.browser();
    unmarked.set_cookie(SESSION, &tab.cookie(SESSION).expect("a session cookie"));
    assert_eq!(
        ok(unmarked.get("/cart").await).await,
        "a",
        "the replica's copy"
    );
    assert_eq!(ok(unmarked.post("/prefs/dark").await).await, "dark");

    let fresh = second.browser_of(&other_tab);
    assert_eq!(ok(fresh.get("/cart").await).await, "a,b,c");
    assert_eq!(ok(fresh.get("/prefs").await).await, "dark");
    paused.resume(&setup.servers).await;
    setup.servers.caught_up().await;
    let after = first.browser_of(&other_tab);
    assert_eq!(ok(after.get("/cart").await).await, "a,b,c");
    assert_eq!(ok(after.get("/prefs").await).await, "dark");
}

/// Concurrent saves of one session on two instances while replay is paused, each changing a
/// field of its own on a copy of the session the replica answered (older than the primary's:
/// no client sends a mark): every one is answered 200 and every field is stored — each save
/// lost its compare-and-swap to the others, read the primary and applied its field there.
#[tokio::test]
async fn concurrent_saves_on_older_replica_copies_are_all_stored() {
    let Some(setup) = Setup::new().await else {
        return;
    };
    let first = setup.instance("h9_burst_first", false).await;
    let second = setup.instance("h9_burst_second", false).await;
    let browser = first.browser();
    assert_eq!(ok(browser.post("/form/0/start").await).await, "start");
    setup.servers.caught_up().await;
    let paused = setup.servers.pause().await;
    assert_eq!(ok(browser.post("/cart/newer").await).await, "newer");

    let mut requests = Vec::new();
    for field in 0..FIELDS {
        let instance = if field % 2 == 0 { &first } else { &second };
        let client = instance.browser();
        client.set_cookie(SESSION, &browser.cookie(SESSION).expect("a session cookie"));
        requests.push(tokio::spawn(async move {
            let response = client.post(&format!("/form/{field}/v{field}")).await;
            (response.status(), response.text())
        }));
    }
    for request in requests {
        let (status, text) = request.await.expect("a request");
        assert_eq!(status, 200, "{text}");
    }
    let expected: Vec<String> = (0..FIELDS).map(|field| format!("v{field}")).collect();
    assert_eq!(ok(browser.get("/form").await).await, expected.join(","));
    assert_eq!(ok(browser.get("/cart").await).await, "newer");
    paused.resume(&setup.servers).await;
}

/// A logout while replay is paused: the browser that logged out starts afresh, and a copy of
/// its old id (no mark) on another instance — which may still read the old session from the
/// replica, up to the lag bound — cannot write into it: a 409, and the session stays ended.
#[tokio::test]
async fn a_logout_is_not_undone_through_an_older_replica_copy() {
    let Some(setup) = Setup::new().await else {
        return;
    };
    let first = setup.instance("h9_logout_first", false).await;
    let second = setup.instance("h9_logout_second", false).await;
    let browser = first.browser();
    assert_eq!(ok(browser.post("/cart/a").await).await, "a");
    setup.servers.caught_up().await;
    let stolen = browser.cookie(SESSION).expect("a session cookie");
    let key = first.key(&browser);

    let paused = setup.servers.pause().await;
    assert_eq!(ok(browser.post("/logout").await).await, "out");
    assert!(
        browser.cookie(SESSION).is_none(),
        "the logout cleared the cookie"
    );
    let copy = second.browser();
    copy.set_cookie(SESSION, &stolen);
    let write = copy.post("/cart/x").await;
    assert_eq!(write.status(), 409, "{}", write.text());
    assert_eq!(setup.version_on(false, &key).await, None);
    paused.resume(&setup.servers).await;
    setup.servers.caught_up().await;
    assert_eq!(ok(copy.get("/cart").await).await, "");
    assert_eq!(setup.version_on(false, &key).await, None);
}

// ---- the history checker ------------------------------------------------------------------

/// The behaviour suite's randomized history (4 browsers × 4 tabs × 150 requests: writes, reads,
/// logins, sign-ins, logouts, listings, the three revocations) on two instances of the app that
/// are two processes as far as the store can tell (a `PostgresStore` each: neither knows what
/// the other wrote), both reading from the replica; the browsers keep the read mark as they
/// keep the session cookie. Replay is paused for a stretch in the middle of the run, so that
/// the replica's copies are behind the primary's for seconds. Every promise of the checker
/// holds but one, which replicas weaken by design (README, *Read replicas*): a revocation made
/// through the other instance (or `revoke_owner` from outside a request) reaches the revoked
/// browser's *reads* only once the replica has it, at most the lag bound later (its writes are
/// refused at once: every write is a compare-and-swap on the primary). Those cases are printed.
#[tokio::test]
async fn the_randomized_history_on_two_instances_reading_the_replica_keeps_its_promises() {
    let Some(setup) = Setup::new().await else {
        return;
    };
    let stores = [
        setup.store("h9_history_a").await,
        setup.store("h9_history_b").await,
    ];
    let recorder = DebuggingRecorder::new();
    let _local = metrics::set_default_local_recorder(&recorder);
    let mut counts = Counts::new(&recorder);
    let servers = setup.servers.clone();
    let pauser = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_secs(2)).await;
        let paused = servers.pause().await;
        tokio::time::sleep(Duration::from_secs(5)).await;
        paused.resume(&servers).await;
    });
    let allowed = behaviour::run_local(behaviour::history::randomized_history_on_instances::<
        behaviour::axum_app::Axum,
        _,
    >(stores.clone(), &[behaviour::history_check::REVOKED]))
    .await;
    pauser.await.expect("the pause task");
    println!("{} revocations reached a read late", allowed.len());
    let counts = counts.since_last();
    println!("request loads by where they were answered: {counts:?}");
    let count = |result: &str| {
        counts
            .iter()
            .find(|(kept, _)| kept == result)
            .map_or(0, |(_, n)| *n)
    };
    assert!(
        count("replica") > 100,
        "the replica answered loads: {counts:?}"
    );
    assert!(
        count("behind") > 0,
        "copies older than the browser's mark were met (and not served): {counts:?}"
    );
    for store in &stores {
        store.close().await;
    }
}

// ---- replica failures -------------------------------------------------------------------------

/// The `sessions_replica_total` counters, read from a recorder installed for the test's thread
/// (a store registers its counters with the first recorder it counts into: one per test).
struct Counts {
    snapshotter: Snapshotter,
}

impl Counts {
    fn new(recorder: &DebuggingRecorder) -> Self {
        Self {
            snapshotter: recorder.snapshotter(),
        }
    }

    /// The counts (by `result`) since the last call (a snapshot takes the counts it reads).
    fn since_last(&mut self) -> Vec<(String, u64)> {
        let mut counts: Vec<(String, u64)> = self
            .snapshotter
            .snapshot()
            .into_vec()
            .into_iter()
            .filter(|(key, ..)| key.key().name() == sessions::metrics::REPLICA)
            .filter_map(|(key, _, _, value)| {
                let result = key.key().labels().next()?.value().to_owned();
                match value {
                    DebugValue::Counter(n) if n > 0 => Some((result, n)),
                    _ => None,
                }
            })
            .collect();
        counts.sort();
        counts
    }
}

/// A replica nobody answers on: reads go to the primary (counted as skipped), requests work.
#[tokio::test]
async fn a_replica_that_is_down_is_skipped() {
    let Some(setup) = Setup::new().await else {
        return;
    };
    let store = PostgresStore::connect(&setup.primary_url)
        .await
        .expect("connect")
        .table_name(&setup.table)
        .read_replicas(["postgres://postgres@127.0.0.1:1/test"])
        .expect("a URL");
    let instance = Instance::new(store.clone(), false);
    let recorder = DebuggingRecorder::new();
    let _local = metrics::set_default_local_recorder(&recorder);
    let mut counts = Counts::new(&recorder);
    let browser = instance.browser();
    assert_eq!(ok(browser.post("/cart/a").await).await, "a");
    assert_eq!(ok(browser.get("/cart").await).await, "a");
    assert_eq!(store.replicas_in_use(), 0);
    assert_eq!(ok(browser.get("/cart").await).await, "a");
    assert_eq!(counts.since_last(), [("skipped".to_owned(), 2)]);
    store.close().await;
}

/// A replica lagging past the bound is skipped, and used again by itself once it caught up.
#[tokio::test]
async fn a_replica_lagging_past_the_bound_is_skipped_and_comes_back() {
    let Some(setup) = Setup::new().await else {
        return;
    };
    let instance = setup.instance("h9_lag", false).await;
    let recorder = DebuggingRecorder::new();
    let _local = metrics::set_default_local_recorder(&recorder);
    let mut counts = Counts::new(&recorder);
    let store = instance
        .store
        .clone()
        .max_replica_lag(Duration::from_millis(200));
    let browser = instance.browser();
    assert_eq!(ok(browser.post("/cart/a").await).await, "a");
    setup.servers.caught_up().await;

    let paused = setup.servers.pause().await;
    // Writes the replica does not replay: its lag grows past the bound.
    let writer = instance.browser();
    let grown = setup.servers.clone();
    let lagging = store.clone();
    setup
        .servers
        .wait_for("the replica to be skipped", || {
            let (writer, lagging) = (writer.clone(), lagging.clone());
            async move {
                let _ = writer.post("/cart/w").await;
                lagging.replicas_in_use() == 0
            }
        })
        .await;
    let _ = counts.since_last();
    assert_eq!(ok(browser.get("/cart").await).await, "a");
    assert_eq!(counts.since_last(), [("skipped".to_owned(), 1)]);

    paused.resume(&grown).await;
    setup
        .servers
        .wait_for("the replica to be used again", || {
            let lagging = lagging.clone();
            async move { lagging.replicas_in_use() == 1 }
        })
        .await;
    assert_eq!(ok(browser.get("/cart").await).await, "a");
    assert_eq!(counts.since_last(), [("replica".to_owned(), 1)]);
    store.close().await;
}

/// The `warn` lines (and worse) of the test's thread, as text.
#[derive(Clone, Default)]
struct Warnings(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl Warnings {
    /// Captures what the current thread logs at `warn` and above until the guard is dropped
    /// (a current-thread runtime: the store's lag task runs on the test's thread).
    fn capture(&self) -> tracing::subscriber::DefaultGuard {
        let sink = self.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::WARN)
            .with_ansi(false)
            .with_writer(move || sink.clone())
            .finish();
        tracing::subscriber::set_default(subscriber)
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().expect("log lock")).into_owned()
    }
}

impl std::io::Write for Warnings {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("log lock").extend_from_slice(bytes);
        Ok(bytes.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// A replica that goes away (a proxy in front of it drops every connection and refuses new
/// ones): every request still answers (its load from the primary), a `warn` says the replica
/// cannot be reached, and the counters say no load was answered by it; once it is back, it
/// answers loads again by itself.
#[tokio::test]
async fn a_replica_that_goes_down_is_skipped_with_a_warning_and_comes_back() {
    let Some(setup) = Setup::new().await else {
        return;
    };
    let (proxy, options) = proxy::Proxy::in_front_of(&setup.replica_url).await;
    let replica = PostgresStore::pool_options()
        .acquire_timeout(Duration::from_millis(500))
        .connect_lazy_with(options);
    let store = PostgresStore::connect(&setup.primary_url)
        .await
        .expect("connect")
        .table_name(&setup.table)
        .read_replica_pools([replica])
        .max_replica_lag(Duration::from_secs(3600));
    let instance = Instance::new(store.clone(), false);
    let warnings = Warnings::default();
    let _logs = warnings.capture();
    let recorder = DebuggingRecorder::new();
    let _local = metrics::set_default_local_recorder(&recorder);
    let mut counts = Counts::new(&recorder);
    let ready = store.clone();
    setup
        .servers
        .wait_for("the replica to be in use", || {
            let ready = ready.clone();
            async move { ready.replicas_in_use() == 1 }
        })
        .await;
    let writer = instance.browser();
    assert_eq!(ok(writer.post("/cart/a").await).await, "a");
    setup.servers.caught_up().await;
    // A browser of the session that wrote nothing through this process: the replica answers.
    let reader = instance.browser();
    reader.set_cookie(SESSION, &writer.cookie(SESSION).expect("a session cookie"));
    let mut answered = false;
    for _ in 0..500 {
        assert_eq!(ok(reader.get("/cart").await).await, "a");
        if counts
            .since_last()
            .iter()
            .any(|(result, _)| result == "replica")
        {
            answered = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(answered, "the replica answers a load before it goes down");
    let _ = counts.since_last();
    assert!(
        !warnings.text().contains("cannot be reached"),
        "{}",
        warnings.text()
    );

    proxy.down();
    for _ in 0..5 {
        assert_eq!(ok(reader.get("/cart").await).await, "a");
    }
    setup
        .servers
        .wait_for("the replica to be skipped", || {
            let store = store.clone();
            async move { store.replicas_in_use() == 0 }
        })
        .await;
    assert_eq!(ok(reader.get("/cart").await).await, "a");
    let down = counts.since_last();
    assert!(
        down.iter()
            .all(|(result, _)| result == "failed" || result == "skipped"),
        "no load answered by the replica while it is down: {down:?}"
    );
    assert!(
        down.iter().any(|(result, _)| result == "skipped"),
        "{down:?}"
    );
    assert!(
        warnings
            .text()
            .contains("reads go to the primary until it answers again"),
        "a warn line: {}",
        warnings.text()
    );

    proxy.up().await;
    setup
        .servers
        .wait_for("the replica to be used again", || {
            let store = store.clone();
            async move { store.replicas_in_use() == 1 }
        })
        .await;
    let _ = counts.since_last();
    assert_eq!(ok(reader.get("/cart").await).await, "a");
    assert_eq!(counts.since_last(), [("replica".to_owned(), 1)]);
    store.close().await;
}

// ---- the conformance suite ----------------------------------------------------------------------

/// A store whose every load is a request's read with no mark (`load_for_read`): what the
/// conformance suite then checks is that this process's own writes are read back from the
/// replica only when it holds them — and that every operation built on loads keeps its promises
/// when those loads may come from a replica.
#[derive(Clone, Debug)]
struct ReadsLikeRequests(PostgresStore);

#[async_trait::async_trait]
impl SessionStore for ReadsLikeRequests {
    async fn load(&self, key: &SessionKey) -> Result<Option<Entry>, sessions::error::StoreError> {
        self.0.load_for_read(key, ReadMark::None).await
    }
    async fn swap(
        &self,
        key: &SessionKey,
        current: Option<u64>,
        new: Option<Entry>,
    ) -> Result<bool, sessions::error::StoreError> {
        self.0.swap(key, current, new).await
    }
    async fn owned_entries(
        &self,
        owner: &str,
    ) -> Result<sessions::store::OwnedEntries, sessions::error::StoreError> {
        self.0.owned_entries(owner).await
    }
    async fn owned_by(
        &self,
        owner: &str,
    ) -> Result<Vec<(SessionKey, Entry)>, sessions::error::StoreError> {
        self.0.owned_by(owner).await
    }
    async fn scan(
        &self,
        cursor: Option<&sessions::store::ScanCursor>,
        limit: usize,
    ) -> Result<sessions::store::ScanPage, sessions::error::StoreError> {
        self.0.scan(cursor, limit).await
    }
    async fn delete_expired(&self) -> Result<u64, sessions::error::StoreError> {
        self.0.delete_expired().await
    }
}

/// The conformance suite on a store with a replica: as the crate uses it (`load` on the
/// primary), and with every load a request's read, with the replica replaying and with its
/// replay paused (every entry the suite writes is then newer on the primary).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conformance_with_a_replica() {
    let Some(setup) = Setup::new().await else {
        return;
    };
    let name = "h9_conformance";
    // Commits that do not wait for the WAL flush, as store_postgres.rs's conformance runs: 64
    // writers saving one session ten times each must land within the retry budget.
    let url = format!(
        "{}&options=-c%20synchronous_commit%3Doff",
        named(&setup.primary_url, name)
    );
    let store = PostgresStore::connect(&url)
        .await
        .expect("connect")
        .table_name(&setup.table)
        .read_replicas([named(&setup.replica_url, name)])
        .expect("a URL")
        .max_replica_lag(Duration::from_secs(3600));
    let commits: String = sqlx::query_scalar("SHOW synchronous_commit")
        .fetch_one(store.pool())
        .await
        .expect("synchronous_commit");
    assert_eq!(commits, "off");
    let ready = store.clone();
    setup
        .servers
        .wait_for("the replica to be in use", || {
            let ready = ready.clone();
            async move { ready.replicas_in_use() == 1 }
        })
        .await;
    eprintln!("conformance: loads on the primary");
    conformance::run(store.clone(), SystemClock).await;
    eprintln!("conformance: loads as requests' reads, replay running");
    conformance::run(ReadsLikeRequests(store.clone()), SystemClock).await;
    let paused = setup.servers.pause().await;
    eprintln!("conformance: loads as requests' reads, replay paused");
    conformance::run(ReadsLikeRequests(store.clone()), SystemClock).await;
    paused.resume(&setup.servers).await;
    store.close().await;
}
