//! Helpers of the race tests (`races_*.rs`): every real store on fresh tables, files or key
//! prefixes of its own (cleaned up on drop, a panicking test too), a gate that holds a handler
//! where the test wants it, and the routes the races run through.
#![allow(dead_code)]

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::extract::Path;
use axum::routing::{get, post};
use axum::{Extension, Router};
use sessions::prelude::*;
use sessions::{MemoryStore, PostgresStore, RedisStore, SqliteStore, Stored};
use tokio::sync::Notify;

use crate::http_common::{Cart, Reply, cookie_value, key_of, routes, show};
use crate::redis_common::{PrefixGuard, redis_url};

/// How long a test waits for a handler to reach its gate before it calls the test broken.
const GATE_WAIT: Duration = Duration::from_secs(10);

// ---- the stores ----------------------------------------------------------------------------

/// A store for one test, and what to clean up after it.
pub(crate) struct Fixture<S> {
    pub(crate) store: S,
    _cleanup: Cleanup,
}

enum Cleanup {
    Nothing,
    /// A SQLite file and its WAL files.
    File(PathBuf),
    /// PostgreSQL tables, dropped from a thread of their own (Drop cannot await).
    Tables {
        url: String,
        table: String,
    },
    /// Redis keys under a prefix.
    Redis(PrefixGuard),
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        match self {
            Cleanup::Nothing | Cleanup::Redis(_) => {}
            Cleanup::File(path) => remove_db(path),
            Cleanup::Tables { url, table } => {
                let (url, name) = (url.clone(), table.clone());
                let dropped = std::thread::spawn(move || {
                    let runtime = tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()
                        .expect("a runtime to drop the tables");
                    runtime.block_on(async {
                        let pool = sqlx::PgPool::connect(&url).await?;
                        let sql = format!(
                            "DROP TABLE IF EXISTS \"{name}_fields\", \"{name}_slots\", \"{name}\""
                        );
                        sqlx::query(&sql).execute(&pool).await?;
                        pool.close().await;
                        Ok::<(), sqlx::Error>(())
                    })
                })
                .join();
                if !matches!(dropped, Ok(Ok(()))) {
                    eprintln!("warning: tables {table}* not dropped: {dropped:?}");
                }
            }
        }
    }
}

/// Removes a SQLite file and its `-wal` / `-shm` companions.
pub(crate) fn remove_db(path: &std::path::Path) {
    for suffix in ["", "-wal", "-shm", "-journal"] {
        let mut file = path.as_os_str().to_owned();
        file.push(suffix);
        let _ = std::fs::remove_file(file);
    }
}

/// A name (table, file) no other test or test run uses.
pub(crate) fn unique_name(prefix: &str) -> String {
    static COUNTER: AtomicUsize = AtomicUsize::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    format!(
        "{prefix}_{}_{nanos}_{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

pub(crate) async fn memory() -> Option<Fixture<MemoryStore>> {
    Some(Fixture {
        store: MemoryStore::new(),
        _cleanup: Cleanup::Nothing,
    })
}

/// A `SqliteStore` on a temp file (WAL, the 5 s busy timeout of `open`), migrated.
pub(crate) async fn sqlite() -> Option<Fixture<SqliteStore>> {
    let path = std::env::temp_dir().join(format!("{}.db", unique_name("sessions_races")));
    let cleanup = Cleanup::File(path.clone());
    let store = SqliteStore::open(&path)
        .await
        .expect("open a temp SQLite file");
    store.migrate().await.expect("migrate");
    Some(Fixture {
        store,
        _cleanup: cleanup,
    })
}

const POSTGRES_VAR: &str = "SESSIONS_TEST_POSTGRES_URL";

/// A `PostgresStore` on tables of its own; `None` (with the skip line) without a server.
pub(crate) async fn postgres() -> Option<Fixture<PostgresStore>> {
    let url = match std::env::var(POSTGRES_VAR) {
        Ok(url) if !url.is_empty() => url,
        _ => {
            println!("skipped: set {POSTGRES_VAR} to run the PostgreSQL race tests");
            return None;
        }
    };
    let table = unique_name("races");
    let store = PostgresStore::connect(&url)
        .await
        .expect("connect to SESSIONS_TEST_POSTGRES_URL")
        .table_name(&table);
    let cleanup = Cleanup::Tables { url, table };
    store.migrate().await.expect("migrate");
    Some(Fixture {
        store,
        _cleanup: cleanup,
    })
}

/// A `RedisStore` under a key prefix of its own; `None` (with the skip line) without a server.
pub(crate) async fn redis() -> Option<Fixture<RedisStore>> {
    let url = redis_url()?;
    let guard = PrefixGuard::new(&url, "races");
    let store = RedisStore::connect(url.as_str())
        .await
        .expect("connect to SESSIONS_TEST_REDIS_URL")
        .prefix(&guard.prefix);
    Some(Fixture {
        store,
        _cleanup: Cleanup::Redis(guard),
    })
}

/// One `#[tokio::test]` per store running `scenario(store)`, in a module named after the
/// scenario: `logout_beats_a_slow_save::sqlite`. Current-thread runtime: the requests
/// interleave only where they await, and `capture_logs` sees the layer's lines.
macro_rules! every_store {
    ($($scenario:ident),* $(,)?) => {$(
        mod $scenario {
            #[tokio::test]
            async fn memory() {
                if let Some(fixture) = crate::races_common::memory().await {
                    super::$scenario(fixture.store.clone()).await;
                }
            }
            #[tokio::test]
            async fn sqlite() {
                if let Some(fixture) = crate::races_common::sqlite().await {
                    super::$scenario(fixture.store.clone()).await;
                }
            }
            #[tokio::test]
            async fn postgres() {
                if let Some(fixture) = crate::races_common::postgres().await {
                    super::$scenario(fixture.store.clone()).await;
                }
            }
            #[tokio::test]
            async fn redis() {
                if let Some(fixture) = crate::races_common::redis().await {
                    super::$scenario(fixture.store.clone()).await;
                }
            }
        }
    )*};
}
pub(crate) use every_store;

// ---- holding a handler -----------------------------------------------------------------------

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

// ---- the routes ------------------------------------------------------------------------------

/// Loads the cart, waits at the gate, then sets the coupon.
pub(crate) async fn slow_coupon(
    Extension(gate): Extension<Gate>,
    mut cart: Typed<Cart>,
    Path(code): Path<String>,
) -> String {
    gate.pause().await;
    cart.set_coupon(Some(code));
    show(cart.value())
}

/// Loads the cart, waits at the gate, then pushes an item.
async fn slow_item(
    Extension(gate): Extension<Gate>,
    mut cart: Typed<Cart>,
    Path(sku): Path<String>,
) -> String {
    gate.pause().await;
    cart.items_mut().push(sku);
    show(cart.value())
}

/// The login of `/login` (visits + 1, `cycle_id()`), waiting at the gate before it returns.
async fn slow_login(
    Extension(gate): Extension<Gate>,
    session: SessionHandle,
    mut cart: Typed<Cart>,
) -> &'static str {
    *cart.visits_mut() += 1;
    session.cycle_id();
    gate.pause().await;
    "logged in"
}

/// What this request's session is: its cart (or `none`) and whether it is stored.
async fn whoami(
    session: SessionHandle,
    cart: Option<Typed<Cart>>,
) -> Result<String, sessions::SessionRejection> {
    let stored = session.id().await?.is_some();
    Ok(format!(
        "cart={} stored={stored}",
        cart.map_or_else(|| "none".to_owned(), |cart| show(cart.value()))
    ))
}

/// The routes of `http_common::routes()` (`POST /cart/{sku}`, `/login`, `/logout`, …) plus:
///
/// | route | does |
/// |---|---|
/// | `POST /slow/coupon/{code}` | loads the cart, waits at the gate, sets the coupon |
/// | `POST /slow/cart/{sku}` | loads the cart, waits at the gate, pushes an item |
/// | `POST /slow/login` | visits + 1 and `cycle_id()`, then waits at the gate |
/// | `GET /whoami` | the cart (or `none`) and whether the session is stored |
///
/// behind a layer over `store` with `Cart` registered.
pub(crate) fn app<S: SessionStore + Clone>(store: S, gate: Gate) -> Router {
    routes()
        .route("/slow/coupon/{code}", post(slow_coupon))
        .route("/slow/cart/{sku}", post(slow_item))
        .route("/slow/login", post(slow_login))
        .route("/whoami", get(whoami))
        .layer(Extension(gate))
        .layer(SessionLayer::new(store).register::<Cart>())
}

// ---- what is stored --------------------------------------------------------------------------

/// What the store holds under the key of the id `id` (`None`: no live session).
pub(crate) async fn stored<S: SessionStore>(store: &S, id: &str) -> Option<Stored> {
    store.load(&key_of(id)).await.expect("the store loads")
}

/// The cart the store holds under the key of `id`, decoded the way the app decodes it.
pub(crate) async fn stored_cart<S: SessionStore>(store: &S, id: &str) -> Option<Cart> {
    let stored = stored(store, id).await?;
    let mut registry = sessions::Registry::new();
    registry.register::<Cart>().expect("register Cart");
    registry
        .load::<Cart>(&stored.record)
        .expect("the stored cart decodes")
        .map(Typed::into_inner)
}

/// The non-empty session cookies a response sets (removals are left out).
pub(crate) fn live_cookies(reply: &Reply) -> Vec<String> {
    reply
        .set_cookies()
        .iter()
        .map(|line| cookie_value(line).to_owned())
        .filter(|value| !value.is_empty())
        .collect()
}
