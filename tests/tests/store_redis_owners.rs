//! `RedisStore`'s owner listing and a login that moves a listed session (issue 20, defect 7).
//!
//! A listing reads the owner's set (`SMEMBERS`), then the entries (`MGET`): two reads, not
//! one. A login between them moves a session X to a new key Y (Y joins the set, X leaves it and
//! becomes a forwarding mark): the listing has X from the set and finds the mark under it. It
//! used to prune X and never see Y, so `revoke_owner` answered as if it had ended every session
//! of the user and left Y — bound long before — alive. The listing now follows the mark.
//!
//! The interleaving is reproduced exactly by the state the listing sees in it: the set holds X
//! (as `SMEMBERS` returned it), X holds the mark, Y the session.
#![allow(clippy::unwrap_used)]

mod redis_common;

use std::time::SystemTime;

use redis::AsyncCommands;
use sessions::SessionLayer;
use sessions::SessionStore;
use sessions::store::{Entry, Owner, Record, SessionKey, Stored};

use redis_common::{PrefixGuard, deadline_in, fresh_key, plain_connection, redis_url, store};

/// A session of owner `owner` under `key`, at version 1.
async fn bound(store: &sessions::RedisStore, key: &SessionKey, owner: &str) {
    let mut session = Stored::new(Record::new(), deadline_in(600));
    session.owner = Some(Owner::new(owner, SystemTime::now()).into());
    let entry = Entry::Live {
        version: 1,
        session,
    };
    assert!(store.swap(key, None, Some(entry)).await.unwrap());
}

/// Files what a listing sees when a login moves a session of owner 42 between its `SMEMBERS`
/// and its `MGET`: the set holds the old key (as `SMEMBERS` read it), the old key the mark, the
/// new key the session. Returns the new key.
async fn a_login_between_the_two_reads(
    store: &sessions::RedisStore,
    url: &str,
    guard: &PrefixGuard,
) -> SessionKey {
    let (old, new) = (fresh_key(), fresh_key());
    // The login: the session filed under its new key, the old key marked.
    bound(store, &old, "42").await;
    bound(store, &new, "42").await;
    let mark = Entry::Moved {
        version: 2,
        to: new.clone(),
        until: SystemTime::now() + std::time::Duration::from_secs(300),
    };
    assert!(store.swap(&old, Some(1), Some(mark)).await.unwrap());
    // The set as the listing's `SMEMBERS` read it, before the login: the old key only.
    let index = format!("{}o:{{42}}", guard.prefix);
    let mut redis = plain_connection(url).await;
    let _: () = redis.srem(&index, new.as_str()).await.unwrap();
    let _: () = redis.sadd(&index, old.as_str()).await.unwrap();
    new
}

#[tokio::test]
async fn a_revocation_follows_a_session_a_login_moved_while_it_listed() {
    let Some(url) = redis_url() else { return };
    let guard = PrefixGuard::new(&url, "owners-moved");
    let store = store(&url, &guard).await;
    let layer = SessionLayer::new(store.clone());

    let moved = a_login_between_the_two_reads(&store, &url, &guard).await;
    assert_eq!(layer.revoke_owner("42").await.unwrap(), 1);
    assert!(
        store.load(&moved).await.unwrap().is_none(),
        "the revocation left the moved session alive"
    );

    let moved = a_login_between_the_two_reads(&store, &url, &guard).await;
    let listed = layer.sessions_of("42").await.unwrap();
    assert_eq!(
        listed.len(),
        1,
        "the moved session is not listed: {listed:?}"
    );
    assert!(store.load(&moved).await.unwrap().is_some());
}
