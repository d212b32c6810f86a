//! The sessions of one owner (a user): listed by an opaque reference, revoked one by one or all
//! at once, and capped, on any store with an owner index (`SessionStore::owned_by`).

use std::collections::BTreeMap;
use std::time::SystemTime;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};

use crate::id::SessionKey;
use crate::store::{Entry, SessionStore, StoreError, ops};

/// One session of an owner, as a "where you are signed in" page shows it.
///
/// ```
/// # fn show(session: &sessions::OwnedSession) -> String {
/// format!(
///     "{} since {:?}{}",
///     session.agent.as_deref().unwrap_or("a browser"),
///     session.created_at,
///     if session.current { " (this one)" } else { "" },
/// )
/// # }
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct OwnedSession {
    /// An opaque reference to the session, safe to put in a page or a URL: it is neither the
    /// session id nor enough to find it (a hash of the storage key, itself a hash of the id).
    /// [`SessionHandle::revoke`](crate::SessionHandle::revoke) takes it.
    pub reference: String,
    /// When the session was created.
    pub created_at: SystemTime,
    /// When it was last seen (moved at most as often as the expiry refresh).
    pub last_seen: SystemTime,
    /// When it ends if not used.
    pub expires_at: SystemTime,
    /// When it was bound to the owner (the login).
    pub bound_at: SystemTime,
    /// Whether it is the session of the request that asked.
    pub current: bool,
    /// The user agent of the login, when the layer captures it
    /// ([`SessionLayer::capture_user_agent`](crate::SessionLayer::capture_user_agent)).
    pub agent: Option<String>,
}

/// The reference of the session stored under `key`.
pub(crate) fn reference(key: &SessionKey) -> String {
    let mut hash = Sha256::new();
    hash.update(b"sessions/reference:");
    hash.update(key.as_bytes());
    let digest = hash.finalize();
    URL_SAFE_NO_PAD.encode(&digest[..16])
}

/// The live sessions of `owner`, newest login first; `current` marks the one under that key.
pub(crate) async fn list<S: SessionStore + ?Sized>(
    store: &S,
    owner: &str,
    current: Option<&SessionKey>,
) -> Result<Vec<OwnedSession>, StoreError> {
    let mut found = sessions_of(store, owner).await?;
    // The request's session, wherever a login moved it meanwhile.
    let current = match current {
        Some(key) => lineage(store, key).await?,
        None => Vec::new(),
    };
    found.sort_by(|(a_key, a), (b_key, b)| b.0.cmp(&a.0).then_with(|| a_key.cmp(b_key)));
    Ok(found
        .into_iter()
        .map(|(key, (bound_at, entry))| {
            let Entry::Live { session, .. } = entry else {
                unreachable!("`owned` keeps live sessions only")
            };
            OwnedSession {
                reference: reference(&key),
                created_at: session.deadline.created_at,
                last_seen: session.last_seen,
                expires_at: session.deadline.expires_at,
                bound_at,
                current: current.contains(&key),
                agent: session.owner.as_deref().and_then(|o| o.agent.clone()),
            }
        })
        .collect())
}

/// `owner`'s live sessions with their keys and binding times (the store's index may hold stale
/// members: each is checked).
///
/// An entry filed under `owner` that the store cannot read (damaged, bound to another key, or
/// written by a build this one cannot read: a rollback) is left out, counted and logged at
/// `warn`, and ended: it cannot be shown, nor kept in check by a revocation or the cap, and
/// every request carrying it starts afresh anyway; left alone, it would outlive a "sign out
/// everywhere" and come back after a roll-forward. So every caller (the listing, the
/// revocations, the cap) ends it: none of them fails, or passes over it, because of it.
async fn owned<S: SessionStore + ?Sized>(
    store: &S,
    owner: &str,
) -> Result<Vec<(SessionKey, (SystemTime, Entry))>, StoreError> {
    let found = store.owned_entries(owner).await?;
    if !found.unreadable.is_empty() {
        tracing::warn!(
            target: "sessions",
            unreadable = found.unreadable.len(),
            "sessions of an owner cannot be read; they are left out and ended"
        );
        for (key, err) in &found.unreadable {
            tracing::warn!(target: "sessions", session_key = %key, error = %err, "ending an unreadable session of an owner");
            ops::destroy(store, key).await?;
        }
    }
    Ok(found
        .entries
        .into_iter()
        .filter_map(|(key, entry)| {
            let since = match &entry {
                Entry::Live { session, .. } if session.owner_name() == Some(owner) => {
                    session.owner.as_deref().map(|o| o.since)?
                }
                _ => return None,
            };
            Some((key, (since, entry)))
        })
        .collect())
}

/// `owner`'s live sessions as their clients hold them: each once, under the id its client
/// holds.
///
/// A login (`ops::cycle`) files a session under its new key before it marks the old one, and
/// a copy bound to an owner carries [`ops::MOVING_SLOT`] naming the old key until then. Such a
/// copy is left out while the old key still holds the session (its client holds that id; the
/// login has not happened yet — a revocation that ends it there makes the login fail); once the
/// old key is marked to it (or gone), the copy is the session, and the old key is left out.
/// When the old key is marked to another key (two logins at once: this copy is the loser's,
/// about to be removed), the copy is left out and the session is looked up where the marks
/// lead: a revocation must not end the loser's copy and miss the session. A store that reaches
/// a session both through its index and through a forwarding mark lists it twice: once here.
async fn sessions_of<S: SessionStore + ?Sized>(
    store: &S,
    owner: &str,
) -> Result<Vec<(SessionKey, (SystemTime, Entry))>, StoreError> {
    let mut found = owned(store, owner).await?;
    found.sort_by(|(a, _), (b, _)| a.cmp(b));
    found.dedup_by(|(a, _), (b, _)| a == b);
    // The copies a login filed and has not settled, by the key they move from.
    let mut moving: BTreeMap<SessionKey, Vec<SessionKey>> = BTreeMap::new();
    for (key, (_, entry)) in &found {
        if let Some(from) = entry.session().and_then(ops::moving_from) {
            moving.entry(from).or_default().push(key.clone());
        }
    }
    let mut left_out = Vec::new();
    let mut moved = Vec::new();
    // One look at each old key decides for all its copies (two logins at once file two).
    for (from, copies) in moving {
        match store.load(&from).await {
            // Not moved yet: the session is the one under `from` (its client holds that id).
            Ok(Some(Entry::Live { .. })) => left_out.extend(copies),
            // Moved: the copy it was moved to is the session; any other copy is one a losing
            // login filed (it goes). A session moved on since, or to a key filed after the
            // store's index was read, is looked up where the marks lead.
            Ok(Some(Entry::Moved { to, .. })) => {
                left_out.push(from);
                left_out.extend(copies.into_iter().filter(|copy| *copy != to));
                if let Some(session) = moved_session(store, owner, to.clone()).await? {
                    if session.0 != to {
                        left_out.push(to);
                    }
                    moved.push(session);
                }
            }
            // Gone, or unreadable (it can hold no session): the copies are the session, or
            // what a failed login is about to remove.
            Ok(None) | Err(StoreError::Record(_)) => left_out.push(from),
            Err(err) => return Err(err),
        }
    }
    found.retain(|(key, _)| !left_out.contains(key));
    for session in moved {
        if !found.iter().any(|(key, _)| *key == session.0) {
            found.push(session);
        }
    }
    Ok(found)
}

/// The live session of `owner` the forwarding marks from `key` lead to, with its binding time.
async fn moved_session<S: SessionStore + ?Sized>(
    store: &S,
    owner: &str,
    key: SessionKey,
) -> Result<Option<(SessionKey, (SystemTime, Entry))>, StoreError> {
    let mut at = key;
    for _ in 0..=ops::HOPS {
        match store.load(&at).await {
            Ok(Some(Entry::Moved { to, .. })) => at = to,
            Ok(Some(entry)) => {
                let since = entry
                    .session()
                    .and_then(|session| session.owner.as_deref())
                    .filter(|bound| bound.name == owner)
                    .map(|bound| bound.since);
                return Ok(since.map(|since| (at, (since, entry))));
            }
            Ok(None) | Err(StoreError::Record(_)) => return Ok(None),
            Err(err) => return Err(err),
        }
    }
    Ok(None)
}

/// The keys the session under `key` has lived under since: `key`, then each key a login moved
/// it to (as far as the forwarding marks lead).
async fn lineage<S: SessionStore + ?Sized>(
    store: &S,
    key: &SessionKey,
) -> Result<Vec<SessionKey>, StoreError> {
    let mut keys = vec![key.clone()];
    while keys.len() <= ops::HOPS {
        let at = keys.last().unwrap_or(key);
        match store.load(at).await {
            Ok(Some(Entry::Moved { to, .. })) => keys.push(to),
            Ok(_) | Err(StoreError::Record(_)) => break,
            Err(err) => return Err(err),
        }
    }
    Ok(keys)
}

/// Ends `owner`'s session whose reference is `reference`; whether there was one.
pub(crate) async fn revoke<S: SessionStore + ?Sized>(
    store: &S,
    owner: &str,
    reference_text: &str,
) -> Result<bool, StoreError> {
    for (key, _) in sessions_of(store, owner).await? {
        if reference(&key) == reference_text {
            ops::destroy(store, &key).await?;
            return Ok(true);
        }
    }
    Ok(false)
}

/// Ends every session of `owner` but the one under `keep` (wherever a login moved it: the
/// request asking carries the id it had when it started); how many.
pub(crate) async fn revoke_all<S: SessionStore + ?Sized>(
    store: &S,
    owner: &str,
    keep: Option<&SessionKey>,
) -> Result<usize, StoreError> {
    let found = sessions_of(store, owner).await?;
    // Looked up after the listing: a session the listing found under a key a login moved
    // `keep` to is `keep`'s.
    let keep = match keep {
        Some(key) => lineage(store, key).await?,
        None => Vec::new(),
    };
    let mut ended = 0;
    for (key, _) in found {
        if !keep.contains(&key) {
            ops::destroy(store, &key).await?;
            ended += 1;
        }
    }
    Ok(ended)
}

/// Keeps `owner`'s `max` newest logins (by binding time; the key breaks ties) and ends the
/// others; whether the session under `own` (the one just bound) is among those kept. Every
/// binder of one owner computes the same set, so of concurrent logins exactly `max` survive
/// however they interleave; a binder whose own session is gone (ended by this cap, or by a
/// concurrent binder's) learns it here rather than answer as if it were signed in.
pub(crate) async fn cap<S: SessionStore + ?Sized>(
    store: &S,
    owner: &str,
    max: usize,
    own: &SessionKey,
) -> Result<bool, StoreError> {
    let mut found = sessions_of(store, owner).await?;
    found.sort_by(|(a_key, a), (b_key, b)| b.0.cmp(&a.0).then_with(|| a_key.cmp(b_key)));
    let kept = found.iter().take(max).any(|(key, _)| key == own);
    for (key, _) in found.into_iter().skip(max) {
        ops::destroy(store, &key).await?;
    }
    Ok(kept)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reference_is_not_the_key_and_is_the_same_every_time() {
        let key = crate::id::SessionId::generate()
            .map(|id| id.key())
            .unwrap_or_else(|err| panic!("{err}"));
        let reference_text = reference(&key);
        assert_eq!(reference_text, reference(&key));
        assert_eq!(reference_text.len(), 22);
        assert!(!key.as_str().contains(&reference_text));
    }
}
