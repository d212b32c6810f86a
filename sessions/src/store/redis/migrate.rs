//! `RedisStore::migrate_all`: eager migration of every stored slot of one type.

use ::redis::Value;
use ::redis::cluster_routing::{RoutingInfo, SingleNodeRoutingInfo};

use super::wire::{Change, SaveReply, primaries, scan_reply, unexpected};
use super::{Connection, RedisStore, backend, layout};
use crate::codec::Format;
use crate::record::SlotChange;
use crate::registry::{MigrationReport, migrate_slot};
use crate::schema::Session;
use crate::store::StoreError;

/// How many keys one `SCAN` step asks for.
const SCAN_COUNT: usize = 500;
/// How often `migrate_all` retries a session whose slot changed while it migrated it.
const MIGRATE_ATTEMPTS: usize = 3;

impl RedisStore {
    /// Rewrites every stored slot of `T` that is older than `T::VERSION` in the current
    /// version, encoded in `format` (see [`migrate_slot`]), so no request has to migrate it
    /// lazily. Each rewrite is guarded: it happens only if the slot is still stored exactly as
    /// it was read (header and every field), so a request that migrated or changed it
    /// meanwhile wins, and the session is looked at again. Sessions keep their
    /// deadlines. Slots that cannot be migrated (a future version, undecodable data) and
    /// unreadable sessions are counted as failed and left as they are. In cluster mode every
    /// primary is scanned.
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
    /// # async fn demo() -> Result<(), sessions::StoreError> {
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
        let mut report = MigrationReport::default();
        let pattern = layout::scan_pattern(&self.prefix);
        for node in self.scan_nodes().await? {
            let mut cursor = 0u64;
            loop {
                let (next, keys) = self.scan_page(&node, cursor, &pattern).await?;
                for key in keys {
                    if layout::session_key_of(&self.prefix, &key).is_some() {
                        self.migrate_session::<T>(&key, format, &mut report).await?;
                    }
                }
                if next == 0 {
                    break;
                }
                cursor = next;
            }
        }
        Ok(report)
    }

    async fn migrate_session<T: Session>(
        &self,
        redis_key: &str,
        format: Format,
        report: &mut MigrationReport,
    ) -> Result<(), StoreError> {
        for _ in 0..MIGRATE_ATTEMPTS {
            let stored = match self.load_redis_key(redis_key).await {
                Ok(Some(stored)) => stored,
                Ok(None) => return Ok(()),
                Err(StoreError::Record(err)) => {
                    tracing::warn!(target: "sessions::migration", error = %err, "unreadable session left as it is");
                    report.failed += 1;
                    return Ok(());
                }
                Err(err) => return Err(err),
            };
            let Some(old) = stored.record.slot(T::NAME) else {
                return Ok(());
            };
            let new = match migrate_slot::<T>(old, format) {
                Ok(None) => {
                    report.current += 1;
                    return Ok(());
                }
                Ok(Some(new)) => new,
                Err(err) => {
                    tracing::warn!(
                        target: "sessions::migration",
                        session_type = T::NAME,
                        stored_version = old.version(),
                        error = %err,
                        "stored slot cannot be migrated; left as it is"
                    );
                    report.failed += 1;
                    return Ok(());
                }
            };
            let put = SlotChange::Put(new);
            // Written only if the slot is still exactly as read: a request that changed it
            // meanwhile (even one field at the old version) is not overwritten.
            let changes = [Change::Guard(old), Change::of(&put)];
            match self.run_save(redis_key, &changes, None).await? {
                SaveReply::Ok => {
                    *report.migrated.entry(old.version()).or_default() += 1;
                    return Ok(());
                }
                SaveReply::Missing => return Ok(()),
                // Changed meanwhile: look again.
                SaveReply::Guard => {}
                reply @ (SaveReply::SlotMissing(_)
                | SaveReply::SlotChanged { .. }
                | SaveReply::Collision
                | SaveReply::Conflict(_)) => {
                    return Err(unexpected("the save script", reply));
                }
            }
        }
        report.failed += 1;
        Ok(())
    }

    /// Where to scan: the one server, or every cluster primary.
    async fn scan_nodes(&self) -> Result<Vec<Option<(String, u16)>>, StoreError> {
        let Connection::Cluster(cluster) = &self.connection else {
            return Ok(vec![None]);
        };
        let mut cluster = cluster.clone();
        let reply = cluster
            .route_command(
                ::redis::cmd("CLUSTER").arg("SLOTS").clone(),
                RoutingInfo::SingleNode(SingleNodeRoutingInfo::RandomPrimary),
            )
            .await
            .map_err(backend)?;
        primaries(&reply)
            .ok_or_else(|| unexpected("CLUSTER SLOTS", &reply))
            .map(|nodes| nodes.into_iter().map(Some).collect())
    }

    async fn scan_page(
        &self,
        node: &Option<(String, u16)>,
        cursor: u64,
        pattern: &str,
    ) -> Result<(u64, Vec<String>), StoreError> {
        let mut cmd = ::redis::cmd("SCAN");
        cmd.arg(cursor)
            .arg("MATCH")
            .arg(pattern)
            .arg("COUNT")
            .arg(SCAN_COUNT);
        let reply = match (&self.connection, node) {
            (Connection::Cluster(cluster), Some((host, port))) => {
                let routing = RoutingInfo::SingleNode(SingleNodeRoutingInfo::ByAddress {
                    host: host.clone(),
                    port: *port,
                });
                let mut cluster = cluster.clone();
                cluster.route_command(cmd, routing).await.map_err(backend)?
            }
            _ => {
                self.request(|mut conn| {
                    let cmd = &cmd;
                    async move { cmd.query_async::<Value>(&mut conn).await }
                })
                .await?
            }
        };
        scan_reply(&reply).ok_or_else(|| unexpected("SCAN", &reply))
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, SystemTime};

    use bytes::Bytes;

    use super::*;
    use crate::expiry::Deadline;
    use crate::id::SessionId;
    use crate::record::{Record, Slot};
    use crate::store::SessionStore;

    fn slot(version: u32, n: &'static str) -> Slot {
        Slot::new(
            "cart",
            version,
            Format::Json,
            vec![("n".into(), Bytes::from_static(n.as_bytes()))],
        )
    }

    /// The migration's write is refused when the slot changed after it was read, even by a
    /// field update that kept the header, and goes through when it did not.
    #[tokio::test]
    async fn the_migration_guard_refuses_a_slot_changed_since_it_was_read() {
        let Ok(url) = std::env::var("SESSIONS_TEST_REDIS_URL") else {
            println!("skipped: set SESSIONS_TEST_REDIS_URL to run the Redis store tests");
            return;
        };
        let prefix = format!("sessions-test:guard:{}:", std::process::id());
        let store = RedisStore::connect(url.as_str())
            .await
            .expect("connect")
            .prefix(prefix);
        let key = SessionId::generate().expect("an id").key();
        let redis_key = store.redis_key(&key);
        let now = SystemTime::now();
        let deadline = Deadline {
            created_at: now,
            expires_at: now + Duration::from_secs(60),
        };
        let mut record = Record::new();
        record.insert(slot(1, "1"));
        store.create(&key, &record, deadline).await.expect("create");

        let read = slot(1, "1");
        // A request updates the field at the old version: same header, other bytes.
        let update: crate::record::Changeset = [SlotChange::Fields {
            slot: "cart".into(),
            version: 1,
            format: Format::Json,
            fields: vec![("n".into(), Bytes::from_static(b"2"))],
        }]
        .into_iter()
        .collect();
        store.save(&key, &update, deadline).await.expect("save");

        let put = SlotChange::Put(slot(2, "10"));
        let reply = store
            .run_save(&redis_key, &[Change::Guard(&read), Change::of(&put)], None)
            .await
            .expect("run the script");
        assert!(matches!(reply, SaveReply::Guard), "{reply:?}");
        let stored = store.load(&key).await.expect("load").expect("the session");
        assert_eq!(
            stored.record.slot("cart"),
            Some(&slot(1, "2")),
            "nothing written"
        );

        let reply = store
            .run_save(
                &redis_key,
                &[Change::Guard(&slot(1, "2")), Change::of(&put)],
                None,
            )
            .await
            .expect("run the script");
        assert!(matches!(reply, SaveReply::Ok), "{reply:?}");
        let stored = store.load(&key).await.expect("load").expect("the session");
        assert_eq!(stored.record.slot("cart"), Some(&slot(2, "10")));
        store.delete(&key).await.expect("delete");
    }
}
