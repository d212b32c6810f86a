//! Whole-keyspace work: [`RedisStore::migrate`] (convert every old-layout session now) and
//! [`RedisStore::migrate_all`] (migrate every stored slot of one type, on the store's walk),
//! each a `SCAN` of the store's prefix on the server, or on every primary of a cluster.

use ::redis::Value;
use ::redis::cluster_routing::{RoutingInfo, SingleNodeRoutingInfo};

use super::RedisStore;
use super::wire::{self, Connection, backend, unexpected};
use crate::codec::Format;
use crate::errors::StoreError;
use crate::id::SessionKey;
use crate::registry::MigrationReport;
use crate::schema::Session;

/// How many keys one `SCAN` step asks for.
const SCAN_COUNT: usize = 500;

/// A `SCAN MATCH` pattern for every session key under `prefix` (glob characters escaped).
fn scan_pattern(prefix: &str) -> String {
    let mut pattern = String::with_capacity(prefix.len() + 4);
    for c in prefix.chars() {
        if matches!(c, '*' | '?' | '[' | ']' | '\\') {
            pattern.push('\\');
        }
        pattern.push(c);
    }
    pattern.push_str("{*}");
    pattern
}

impl RedisStore {
    /// Converts every session stored by the previous layout (a hash per session) under this
    /// store's prefix now, instead of on each one's first load; returns how many it converted.
    /// A hash that is not a readable session is left as it is (with a warning). Safe to run
    /// while the app serves (each conversion happens only if the hash is still what was read)
    /// and to run again.
    ///
    /// ```no_run
    /// # async fn demo() -> Result<(), sessions::error::StoreError> {
    /// let store = sessions::RedisStore::connect("redis://127.0.0.1:6379").await?;
    /// let converted = store.migrate().await?;
    /// println!("{converted} sessions converted");
    /// # Ok(())
    /// # }
    /// ```
    pub async fn migrate(&self) -> Result<usize, StoreError> {
        let mut converted = 0;
        for redis_key in self.scan_sessions(Some("hash")).await? {
            let Some(key) = self.session_key_of(&redis_key) else {
                continue;
            };
            match self.convert_key(&key).await {
                Ok(true) => converted += 1,
                Ok(false) => {}
                Err(StoreError::Record(err)) => {
                    tracing::warn!(target: "sessions::store", redis_key, error = %err, "an unreadable old-layout session is left as it is");
                }
                Err(err) => return Err(err),
            }
        }
        Ok(converted)
    }

    /// Rewrites every stored slot of `T` that is older than `T::VERSION` in the current
    /// version, encoded in `format`, so no request has to migrate it lazily (each session one
    /// [`migrate_session`](crate::store::migrate_session): a compare-and-swap, so a request
    /// that changes the session meanwhile is never overwritten). Sessions keep their deadlines;
    /// old-layout sessions are converted on the way. Slots that cannot be migrated are counted
    /// as failed and left as they are. On a cluster every primary is scanned.
    ///
    /// ```no_run
    /// use sessions::prelude::*;
    /// use sessions::{Format, RedisStore};
    ///
    /// #[derive(Session, Default)]
    /// #[session(name = "cart", version = 1)]
    /// struct CartV1 { n: u32 }
    /// #[derive(Session, Default)]
    /// #[session(name = "cart", version = 2, migrate_from = CartV1)]
    /// struct Cart { n: u64 }
    /// impl From<CartV1> for Cart { fn from(v1: CartV1) -> Self { Cart { n: v1.n.into() } } }
    ///
    /// # async fn demo() -> Result<(), sessions::error::StoreError> {
    /// let store = RedisStore::connect("redis://127.0.0.1:6379").await?;
    /// let report = store.migrate_all::<Cart>(Format::Json).await?;
    /// println!("migrated {} carts, {} failed", report.total_migrated(), report.failed);
    /// # Ok(())
    /// # }
    /// ```
    pub async fn migrate_all<T: Session>(
        &self,
        format: Format,
    ) -> Result<MigrationReport, StoreError> {
        crate::store::upkeep::migrate_all::<T, Self>(self, format).await
    }

    pub(super) fn session_key_of(&self, redis_key: &str) -> Option<SessionKey> {
        let inner = redis_key
            .strip_prefix(&*self.prefix)?
            .strip_prefix('{')?
            .strip_suffix('}')?;
        SessionKey::from_stored(inner)
    }

    /// Every session key under the prefix (of type `kind`, when given), on every node.
    async fn scan_sessions(&self, kind: Option<&str>) -> Result<Vec<String>, StoreError> {
        let mut keys = Vec::new();
        for node in self.scan_nodes().await? {
            let mut cursor = 0u64;
            loop {
                let (next, page) = self
                    .scan_step(node.as_ref(), cursor, SCAN_COUNT, kind)
                    .await?;
                keys.extend(page);
                if next == 0 {
                    break;
                }
                cursor = next;
            }
        }
        keys.dedup();
        Ok(keys)
    }

    /// One `SCAN` step on `node` (the one server: `None`) from `cursor`: the next cursor and
    /// the session keys (of type `kind`, when given) of the step.
    pub(super) async fn scan_step(
        &self,
        node: Option<&(String, u16)>,
        cursor: u64,
        count: usize,
        kind: Option<&str>,
    ) -> Result<(u64, Vec<String>), StoreError> {
        let mut scan = ::redis::cmd("SCAN");
        scan.arg(cursor)
            .arg("MATCH")
            .arg(scan_pattern(&self.prefix))
            .arg("COUNT")
            .arg(count);
        if let Some(kind) = kind {
            scan.arg("TYPE").arg(kind);
        }
        let reply = match (&self.connection, node) {
            (Connection::Cluster(cluster), Some((host, port))) => {
                let routing = RoutingInfo::SingleNode(SingleNodeRoutingInfo::ByAddress {
                    host: host.clone(),
                    port: *port,
                });
                cluster
                    .clone()
                    .route_command(scan, routing)
                    .await
                    .map_err(backend)?
            }
            _ => self.connection.command(&scan).await.map_err(backend)?,
        };
        let (next, mut keys) =
            wire::scan_reply(reply).ok_or_else(|| unexpected("SCAN", "a malformed reply"))?;
        keys.retain(|key| self.session_key_of(key).is_some());
        Ok((next, keys))
    }

    /// Where to scan: the one server, or every cluster primary.
    pub(super) async fn scan_nodes(&self) -> Result<Vec<Option<(String, u16)>>, StoreError> {
        let Connection::Cluster(cluster) = &self.connection else {
            return Ok(vec![None]);
        };
        let reply: Value = cluster
            .clone()
            .route_command(
                ::redis::cmd("CLUSTER").arg("SLOTS").clone(),
                RoutingInfo::SingleNode(SingleNodeRoutingInfo::RandomPrimary),
            )
            .await
            .map_err(backend)?;
        wire::primaries(reply)
            .ok_or_else(|| unexpected("CLUSTER SLOTS", "a malformed reply"))
            .map(|nodes| nodes.into_iter().map(Some).collect())
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_scan_pattern_escapes_glob_characters() {
        assert_eq!(super::scan_pattern("a*b?[c]\\:"), "a\\*b\\?\\[c\\]\\\\:{*}");
    }
}
