//! The walk of a Redis store ([`SessionStore::scan`](crate::SessionStore::scan)): a `SCAN`
//! step over the store's prefix and one `MGET` of the keys it found, on the one server or on
//! each cluster primary in turn.
//!
//! The cursor is the `SCAN` cursor (`"17"`), and on a cluster the primary it belongs to
//! (`"127.0.0.1:7001/17"`); primaries are walked in address order, so a walk resumes on the
//! node it stopped on (one that left the cluster meanwhile: on the next one by address).

use std::time::SystemTime;

use ::redis::Value;
use bytes::Bytes;

use super::RedisStore;
use super::wire::{self, backend, unexpected};
use crate::errors::RecordError;
use crate::store::upkeep::{ScanCursor, ScanPage};
use crate::store::{Entry, StoreError, blob};

/// Where a walk stands: on which primary (none: the one server), at which `SCAN` cursor.
struct Position {
    node: Option<(String, u16)>,
    cursor: u64,
}

impl Position {
    fn parse(cursor: &ScanCursor) -> Option<Self> {
        let text = cursor.as_str();
        let Some((node, at)) = text.rsplit_once('/') else {
            return Some(Self {
                node: None,
                cursor: text.parse().ok()?,
            });
        };
        let (host, port) = node.rsplit_once(':')?;
        Some(Self {
            node: Some((host.to_owned(), port.parse().ok()?)),
            cursor: at.parse().ok()?,
        })
    }

    fn cursor(&self) -> ScanCursor {
        match &self.node {
            None => ScanCursor::new(self.cursor.to_string()),
            Some((host, port)) => ScanCursor::new(format!("{host}:{port}/{}", self.cursor)),
        }
    }
}

impl RedisStore {
    /// One page of the walk: one `SCAN` step (`COUNT limit`: Redis may return somewhat more
    /// or fewer) and the entries of the keys it found.
    pub(super) async fn scan_page(
        &self,
        cursor: Option<&ScanCursor>,
        limit: usize,
    ) -> Result<ScanPage, StoreError> {
        let mut nodes: Vec<(String, u16)> =
            self.scan_nodes().await?.into_iter().flatten().collect();
        nodes.sort();
        let at = match cursor {
            Some(cursor) => Position::parse(cursor).ok_or_else(|| cursor.not_ours("redis"))?,
            None => Position {
                node: nodes.first().cloned(),
                cursor: 0,
            },
        };
        // A cluster node that has gone: go on with the next one by address.
        let node = match &at.node {
            Some(node) if !nodes.contains(node) => nodes.iter().find(|n| *n > node).cloned(),
            node => node.clone(),
        };
        let cursor = if node == at.node { at.cursor } else { 0 };
        if at.node.is_some() && node.is_none() {
            return Ok(ScanPage::default());
        }
        let (next, keys) = self.scan_step(node.as_ref(), cursor, limit, None).await?;
        let mut page = self.entries_of(keys).await?;
        page.next = match (next, node) {
            (0, None) => None,
            (0, Some(node)) => nodes.iter().find(|n| **n > node).map(|next| {
                Position {
                    node: Some(next.clone()),
                    cursor: 0,
                }
                .cursor()
            }),
            (next, node) => Some(Position { node, cursor: next }.cursor()),
        };
        Ok(page)
    }

    /// The live entries under `keys` (one `MGET`; a key that holds no string, an old-layout
    /// hash, is loaded on its own, which converts it).
    async fn entries_of(&self, keys: Vec<String>) -> Result<ScanPage, StoreError> {
        let mut page = ScanPage {
            bytes: Some(0),
            ..ScanPage::default()
        };
        if keys.is_empty() {
            return Ok(page);
        }
        let mut mget = ::redis::cmd("MGET");
        for key in &keys {
            mget.arg(key);
        }
        let reply = self.connection.command(&mget).await.map_err(backend)?;
        let values = wire::items(reply)
            .filter(|values| values.len() == keys.len())
            .ok_or_else(|| unexpected("MGET", "not one value per key"))?;
        let now = SystemTime::now();
        let mut bytes = 0;
        for (redis_key, value) in keys.into_iter().zip(values) {
            let Some(key) = self.session_key_of(&redis_key) else {
                continue;
            };
            let entry: Result<Option<Entry>, RecordError> = match value {
                Value::BulkString(data) => {
                    let size = data.len() as u64;
                    blob::decode_at(&key, Bytes::from(data)).map(|entry| {
                        bytes += size;
                        Some(entry)
                    })
                }
                _ => match self.load_key(&key).await {
                    Ok(entry) => Ok(entry),
                    Err(StoreError::Record(err)) => Err(err),
                    Err(other) => return Err(other),
                },
            };
            match entry {
                Ok(Some(entry)) if !entry.is_ended(now) => page.entries.push((key, entry)),
                Ok(_) => {}
                Err(err) => {
                    tracing::warn!(target: "sessions::store", redis_key, error = %err, "a stored session does not decode; the walk leaves it as it is");
                    page.unreadable += 1;
                }
            }
        }
        page.bytes = Some(bytes);
        Ok(page)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_come_back_as_they_were_made() {
        for text in ["0", "17", "127.0.0.1:7001/17", "::1:7000/0"] {
            let cursor = ScanCursor::new(text);
            let position = Position::parse(&cursor).expect("a cursor of this store");
            assert_eq!(position.cursor(), cursor);
        }
        for bad in ["", "x", "host/1", "host:port/1", "127.0.0.1:7000/-1"] {
            assert!(Position::parse(&ScanCursor::new(bad)).is_none(), "{bad}");
        }
    }
}
