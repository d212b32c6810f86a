//! Opening the store the command line asked for, and the session layer over it.

use std::time::{Duration, SystemTime};

use sessions::error::StoreError;
use sessions::migrate::MigrationReport;
use sessions::prelude::*;
use sessions::store::{Record, SlotChange};
use sessions::{CookieConfig, Expiry, Format, Key, SessionId};

use super::cli::{Options, StoreKind};
use super::model::{Account, CATALOGUE, Cart, CartV1, Flash};

/// The tables (SQLite, PostgreSQL, MySQL) and key prefix (Redis, memcached) the shop keeps its
/// sessions under.
const TABLE: &str = "cart_sessions";
const REDIS_PREFIX: &str = "cart:";
/// How often expired sessions are swept from the SQL stores (Redis and memcached expire keys
/// themselves).
const SWEEP_EVERY: Duration = Duration::from_secs(600);

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The shop's expiry: a week without a visit ends a cart, and no session lives past 30 days.
pub fn expiry() -> Expiry {
    Expiry::idle_and_absolute(
        Duration::from_secs(7 * 24 * 3600),
        Duration::from_secs(30 * 24 * 3600),
    )
}

/// An opened store.
pub enum Opened {
    Sqlite(SqliteStore),
    Postgres(PostgresStore),
    MySql(MySqlStore),
    Redis(RedisStore),
    Memcached(MemcachedStore),
    Cookie(CookieStore),
    Memory(MemoryStore),
}

impl Opened {
    /// Opens (and for SQL, migrates the schema of) the store `options` name.
    pub async fn open(options: &Options) -> Result<Self, BoxError> {
        Ok(match options.store {
            StoreKind::Sqlite => {
                let store = SqliteStore::open(&options.db)
                    .await
                    .map_err(|e| context(e, &format!("opening {}", options.db.display())))?
                    .table_name(TABLE);
                store.migrate().await?;
                Opened::Sqlite(store)
            }
            StoreKind::Postgres => {
                let store = PostgresStore::connect(&options.database_url)
                    .await
                    .map_err(|e| {
                        context(
                            e,
                            &format!("connecting to {}", redact(&options.database_url)),
                        )
                    })?
                    .table_name(TABLE);
                store.migrate().await?;
                Opened::Postgres(store)
            }
            StoreKind::MySql => {
                let store = MySqlStore::connect(&options.mysql_url)
                    .await
                    .map_err(|e| {
                        context(e, &format!("connecting to {}", redact(&options.mysql_url)))
                    })?
                    .table_name(TABLE);
                store.migrate().await?;
                Opened::MySql(store)
            }
            StoreKind::Memcached => {
                let store = MemcachedStore::connect(&options.memcached_url)
                    .await
                    .map_err(|e| {
                        context(
                            e,
                            &format!("connecting to {}", redact(&options.memcached_url)),
                        )
                    })?
                    .prefix(REDIS_PREFIX);
                Opened::Memcached(store)
            }
            StoreKind::Redis => {
                let store = RedisStore::connect(options.redis_url.as_str())
                    .await
                    .map_err(|e| {
                        context(e, &format!("connecting to {}", redact(&options.redis_url)))
                    })?
                    .prefix(REDIS_PREFIX);
                Opened::Redis(store)
            }
            StoreKind::Cookie => {
                let key = match &options.cookie_key {
                    Some(text) => Key::from_base64(1, text)?,
                    None => {
                        let key = Key::generate(1)?;
                        eprintln!(
                            "cart: no SESSIONS_COOKIE_KEY: sealing cookies with a new key, so they end with this process.\n      \
                             Keep sessions across restarts with: SESSIONS_COOKIE_KEY={}",
                            key.to_base64()
                        );
                        key
                    }
                };
                Opened::Cookie(CookieStore::new([key])?)
            }
            StoreKind::Memory => Opened::Memory(MemoryStore::new()),
        })
    }

    /// Where the sessions are, for people (no passwords).
    pub fn describe(&self, options: &Options) -> String {
        match self {
            Opened::Sqlite(_) => format!("SQLite file {}", options.db.display()),
            Opened::Postgres(_) => format!("PostgreSQL {}", redact(&options.database_url)),
            Opened::Redis(_) => format!("Redis {}", redact(&options.redis_url)),
            Opened::MySql(_) => format!("MySQL {}", redact(&options.mysql_url)),
            Opened::Memcached(_) => format!("memcached {}", redact(&options.memcached_url)),
            Opened::Cookie(_) => "sealed cookies (XChaCha20-Poly1305)".to_owned(),
            Opened::Memory(_) => "process memory (gone when the app stops)".to_owned(),
        }
    }

    /// The session layer over this store, with the shop's types and settings.
    pub fn layer(&self) -> SessionLayer {
        let layer = match self {
            Opened::Sqlite(store) => {
                store.spawn_sweeper(SWEEP_EVERY);
                SessionLayer::new(store.clone())
            }
            Opened::Postgres(store) => {
                store.spawn_sweeper(SWEEP_EVERY);
                SessionLayer::new(store.clone())
            }
            Opened::MySql(store) => {
                store.spawn_sweeper(SWEEP_EVERY);
                SessionLayer::new(store.clone())
            }
            Opened::Redis(store) => SessionLayer::new(store.clone()),
            Opened::Memcached(store) => SessionLayer::new(store.clone()),
            Opened::Cookie(store) => SessionLayer::new(store.clone()),
            Opened::Memory(store) => SessionLayer::new(store.clone()),
        };
        layer
            .register::<Cart>()
            .register::<Account>()
            .register::<Flash>()
            .expiry(expiry())
            // "Your sessions" shows each session's browser, so the login's `User-Agent` is kept
            // with it (off by default: it is personal data; keep it only where you show it).
            .capture_user_agent(true)
            // `secure(false)` only because this demo serves plain HTTP on localhost: a browser
            // does not send a `Secure` cookie over http://. Behind TLS keep the default (true).
            .cookie(CookieConfig::new().secure(false))
    }

    /// Closes the SQL pools cleanly (their connections would otherwise linger on exit).
    pub async fn close(&self) {
        match self {
            Opened::Postgres(store) => store.pool().close().await,
            Opened::MySql(store) => store.pool().close().await,
            Opened::Sqlite(_)
            | Opened::Redis(_)
            | Opened::Memcached(_)
            | Opened::Cookie(_)
            | Opened::Memory(_) => {}
        }
    }

    /// The store as the `SessionStore` trait, for the stores that keep sessions server-side.
    fn server_side(&self) -> Result<&dyn SessionStore, BoxError> {
        match self {
            Opened::Sqlite(store) => Ok(store),
            Opened::Postgres(store) => Ok(store),
            Opened::Redis(store) => Ok(store),
            Opened::MySql(store) => Ok(store),
            Opened::Memcached(store) => Ok(store),
            Opened::Cookie(_) => Err("the cookie store keeps sessions in browsers, not here: \
                 seed-v1 and migrate-all need sqlite, postgres or redis"
                .into()),
            Opened::Memory(_) => Err("the memory store ends with this command: \
                 seed-v1 and migrate-all need sqlite, postgres or redis"
                .into()),
        }
    }

    /// Writes `count` version-1 carts straight into the store, as an older deployment of the
    /// shop would have; returns each new session's id (the cookie value) and its SKUs.
    pub async fn seed_v1(&self, count: usize) -> Result<Vec<(SessionId, Vec<String>)>, BoxError> {
        let store = self.server_side()?;
        let now = SystemTime::now();
        let mut seeded = Vec::with_capacity(count);
        for n in 0..count {
            let skus = v1_skus(n);
            // A v1 slot, encoded by the v1 type itself: set every field of a new value and
            // take the change a save would write (`Put`, the whole slot at version 1).
            let mut v1 = Typed::new(CartV1::default());
            v1.set_skus(skus.clone());
            let slot = match v1.changes(Format::Json)? {
                Some(SlotChange::Put(slot) | SlotChange::Rewrite { slot, .. }) => slot,
                _ => return Err("a new, changed slot is written whole".into()),
            };
            let mut record = Record::new();
            record.insert(slot);
            let id =
                sessions::store::create_session(store, record, expiry().deadline(now, now)).await?;
            seeded.push((id, skus));
        }
        Ok(seeded)
    }

    /// Rewrites every stored cart older than version 3 now (`migrate_all::<Cart>()`).
    pub async fn migrate_all(&self) -> Result<MigrationReport, BoxError> {
        self.server_side()?;
        Ok(match self {
            Opened::Sqlite(store) => store.migrate_all::<Cart>(Format::Json).await?,
            Opened::Postgres(store) => store.migrate_all::<Cart>(Format::Json).await?,
            Opened::Redis(store) => store.migrate_all::<Cart>(Format::Json).await?,
            Opened::MySql(store) => store.migrate_all::<Cart>(Format::Json).await?,
            Opened::Memcached(_) => {
                return Err(
                    "memcached cannot list its sessions: a stored cart migrates on its \
                     next load instead (migrate-all needs sqlite, postgres, mysql or redis)"
                        .into(),
                );
            }
            Opened::Cookie(_) | Opened::Memory(_) => MigrationReport::default(),
        })
    }
}

/// The SKUs of the `n`th seeded cart: one to four units, some repeated (v1 had no quantities).
fn v1_skus(n: usize) -> Vec<String> {
    let pick = |i: usize| CATALOGUE[i % CATALOGUE.len()].sku.to_owned();
    let mut skus = vec![pick(n)];
    if n.is_multiple_of(2) {
        skus.push(pick(n)); // two of the same: v2 turns them into `qty: 2`
    }
    if n % 3 != 2 {
        skus.push(pick(n + 2));
    }
    skus
}

/// `err` with what was being done.
fn context(err: StoreError, doing: &str) -> BoxError {
    format!("{doing}: {err}").into()
}

/// A URL without its password.
pub fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let Some((userinfo, host)) = rest.rsplit_once('@') else {
        return url.to_owned();
    };
    match userinfo.split_once(':') {
        Some((user, _)) => format!("{scheme}://{user}:***@{host}"),
        None => url.to_owned(),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn redacts_passwords_only() {
        assert_eq!(
            redact("postgres://app:hunter2@db:5432/shop"),
            "postgres://app:***@db:5432/shop"
        );
        assert_eq!(
            redact("postgres://postgres@127.0.0.1/test"),
            "postgres://postgres@127.0.0.1/test"
        );
        assert_eq!(redact("redis://127.0.0.1:6379"), "redis://127.0.0.1:6379");
    }

    #[test]
    fn seeded_carts_have_repeats_and_valid_skus() {
        for n in 0..12 {
            let skus = v1_skus(n);
            assert!((1..=3).contains(&skus.len()));
            assert!(
                skus.iter()
                    .all(|sku| crate::cart::model::product(sku).is_some())
            );
        }
        assert_eq!(v1_skus(0)[0], v1_skus(0)[1]);
    }
}
