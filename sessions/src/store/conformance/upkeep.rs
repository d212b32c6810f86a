//! Upkeep: a walk ([`SessionStore::scan`]) hands out every entry that has not ended exactly as
//! it is stored, and no ended one; sweeping ([`SessionStore::delete_expired`]) never removes a
//! live entry. A store that cannot walk or sweep ([`StoreError::Unsupported`]) passes.

use std::collections::HashMap;
use std::time::{Duration, SystemTime};

use super::{fresh_key, live, must_load, must_swap, record, slot};
use crate::errors::StoreError;
use crate::expiry::Deadline;
use crate::record::Record;
use crate::store::upkeep::Walk;
use crate::store::{Entry, SessionStore, Stored};

/// Every live entry and forwarding mark is seen by a walk in small pages, as stored; ended
/// entries are not.
pub async fn walk_sees_every_live_entry<S: SessionStore>(store: &S, now: SystemTime) {
    let mut expected: HashMap<[u8; 32], Entry> = HashMap::new();
    for n in 0..12 {
        let key = fresh_key();
        let entry = live(1, record(vec![slot("cart", &[("n", "1")])]), now);
        must_swap(store, &key, None, Some(entry.clone()), "walk: create").await;
        if n == 0 {
            let mark = Entry::Moved {
                version: 2,
                to: fresh_key(),
                until: now + Duration::from_secs(300),
            };
            must_swap(store, &key, Some(1), Some(mark.clone()), "walk: move").await;
            expected.insert(*key.as_bytes(), mark);
        } else {
            expected.insert(*key.as_bytes(), entry);
        }
    }
    let mut ended = Vec::new();
    for _ in 0..2 {
        let key = fresh_key();
        let entry = Entry::Live {
            version: 1,
            session: Stored::new(
                Record::new(),
                Deadline {
                    created_at: now - Duration::from_secs(60),
                    expires_at: now - Duration::from_secs(1),
                },
            ),
        };
        if let Err(err) = store.swap(&key, None, Some(entry)).await {
            panic!("conformance: walk: writing an ended entry failed: {err}");
        }
        ended.push(*key.as_bytes());
    }
    let mut seen: HashMap<[u8; 32], Entry> = HashMap::new();
    let mut walker = Walk::new().page_size(7).start(store);
    loop {
        match walker.next_page().await {
            Ok(Some(page)) => seen.extend(
                page.entries
                    .into_iter()
                    .map(|(key, entry)| (*key.as_bytes(), entry)),
            ),
            Ok(None) => break,
            Err(StoreError::Unsupported(_)) => return,
            Err(err) => panic!("conformance: walk: a page failed: {err}"),
        }
    }
    for (key, entry) in &expected {
        match seen.get(key) {
            Some(found) => assert_eq!(
                found, entry,
                "conformance: walk: an entry came back changed"
            ),
            None => panic!("conformance: walk: a stored entry was not seen"),
        }
    }
    for key in &ended {
        assert!(
            !seen.contains_key(key),
            "conformance: walk: an ended entry was handed out"
        );
    }
    assert!(
        walker.progress().done && walker.progress().seen >= expected.len() as u64,
        "conformance: walk: the progress does not count what was seen"
    );
}

/// A sweep leaves live sessions where they are.
pub async fn sweeping_keeps_live_entries<S: SessionStore>(store: &S, now: SystemTime) {
    let key = fresh_key();
    let entry = live(1, record(vec![slot("cart", &[("n", "1")])]), now);
    must_swap(store, &key, None, Some(entry.clone()), "sweep: create").await;
    match store.delete_expired().await {
        Ok(_) | Err(StoreError::Unsupported(_)) => {}
        Err(err) => panic!("conformance: sweeping failed: {err}"),
    }
    assert_eq!(
        must_load(store, &key, "sweep").await,
        Some(entry),
        "conformance: a sweep removed a live session"
    );
}
