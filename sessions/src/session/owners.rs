//! The sessions of one owner (a user): listed by an opaque reference, revoked one by one or all
//! at once, and capped, on any store with an owner index (`SessionStore::owned_by`).

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
    let mut found = owned(store, owner).await?;
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
                current: current == Some(&key),
                agent: session.owner.as_deref().and_then(|o| o.agent.clone()),
            }
        })
        .collect())
}

/// `owner`'s live sessions with their keys and binding times (the store's index may hold stale
/// members: each is checked).
async fn owned<S: SessionStore + ?Sized>(
    store: &S,
    owner: &str,
) -> Result<Vec<(SessionKey, (SystemTime, Entry))>, StoreError> {
    Ok(store
        .owned_by(owner)
        .await?
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

/// Ends `owner`'s session whose reference is `reference`; whether there was one.
pub(crate) async fn revoke<S: SessionStore + ?Sized>(
    store: &S,
    owner: &str,
    reference_text: &str,
) -> Result<bool, StoreError> {
    for (key, _) in owned(store, owner).await? {
        if reference(&key) == reference_text {
            ops::destroy(store, &key).await?;
            return Ok(true);
        }
    }
    Ok(false)
}

/// Ends every session of `owner` but the one under `keep`; how many.
pub(crate) async fn revoke_all<S: SessionStore + ?Sized>(
    store: &S,
    owner: &str,
    keep: Option<&SessionKey>,
) -> Result<usize, StoreError> {
    let mut ended = 0;
    for (key, _) in owned(store, owner).await? {
        if Some(&key) != keep {
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
    let mut found = owned(store, owner).await?;
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
