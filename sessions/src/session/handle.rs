//! [`SessionHandle`]: the session of the current request as a whole.

use std::sync::Arc;

use super::owners::{self, OwnedSession};
use super::state::{Action, Found, Home};
use super::{RequestSession, SessionRejection, expiry_slot};
use crate::expiry::{Deadline, Expiry};
use crate::id::SessionId;
use crate::record::SlotChange;
use crate::schema::Session;
use crate::typed::Typed;

/// The session of the current request as a whole: its id, `cycle_id()` after login,
/// `destroy()` at logout, and its expiry. Typed slots come from it too, for stacks without an
/// extractor.
///
/// It is an extractor in axum (and actix-web, feature `actix`); in any tower stack it is in the
/// request's extensions: `request.extensions().get::<SessionHandle>()`. Clones share one
/// session.
///
/// ```
/// use sessions::prelude::*;
///
/// async fn login(session: SessionHandle) -> &'static str {
///     session.cycle_id();          // a new id, the same data: the old id is dead
///     "welcome"
/// }
/// async fn logout(session: SessionHandle) -> &'static str {
///     session.destroy();           // the record is deleted and the cookie cleared
///     "bye"
/// }
/// # let _ = (login, logout);
/// ```
#[derive(Clone)]
pub struct SessionHandle(pub(crate) Arc<RequestSession>);

impl SessionHandle {
    async fn loaded(&self) -> Result<(), SessionRejection> {
        self.0
            .load()
            .await
            .map_err(|err| SessionRejection::store("SessionHandle", &err))
    }

    /// The session's id: the id the client gets with this response. For a session not stored
    /// yet, an id is drawn now and the session is stored with the response, even if nothing is
    /// put in it (so an API can hand the id out in its body); after
    /// [`cycle_id`](SessionHandle::cycle_id), the new id. `None` for a destroyed session, for a
    /// [`CookieStore`](crate::CookieStore) session (it has no id), and for a session another
    /// request's login moved while this one ran. Never log it.
    ///
    /// ```
    /// use sessions::prelude::*;
    /// async fn token(session: SessionHandle) -> Result<String, sessions::SessionRejection> {
    ///     let id = session.id().await?.expect("a server-side store");
    ///     Ok(id.expose().to_owned()) // the same id the response's cookie carries
    /// }
    /// # let _ = token;
    /// ```
    pub async fn id(&self) -> Result<Option<SessionId>, SessionRejection> {
        self.loaded().await?;
        let session = &self.0;
        let mut state = session.state();
        if matches!(session.source, super::Source::Cookie { .. }) {
            return Ok(None);
        }
        match (state.action, state.found(), &state.home) {
            (Action::Destroy, ..) => return Ok(None),
            (_, Found::Stored { .. }, Home::Issued) => return Ok(state.issued().cloned()),
            (Action::Keep, Found::Stored { .. }, Home::Carried) => {
                return Ok(match &session.source {
                    super::Source::Store { id, .. } => id.clone(),
                    super::Source::Cookie { .. } => None,
                });
            }
            (Action::Keep, Found::Stored { .. }, Home::Followed(_)) => return Ok(None),
            // A login of a stored session: the id the session moves to.
            (Action::Cycle, Found::Stored { .. }, _) => {}
            // Not stored yet (a login of a new session too): it will be, under the id drawn
            // now.
            (Action::Keep | Action::Cycle, ..) => state.must_store = true,
        }
        state
            .issue()
            .map(Some)
            .map_err(|err| SessionRejection::Unsaved {
                message: format!("no session id: {err}"),
            })
    }

    /// Whether the session is stored (it was loaded from the store, or this request's `save()`
    /// stored it): unlike [`id`](SessionHandle::id), asking stores nothing.
    ///
    /// ```
    /// use sessions::prelude::*;
    /// async fn hello(session: SessionHandle) -> Result<&'static str, sessions::SessionRejection> {
    ///     Ok(if session.is_stored().await? { "welcome back" } else { "hello" })
    /// }
    /// # let _ = hello;
    /// ```
    pub async fn is_stored(&self) -> Result<bool, SessionRejection> {
        self.loaded().await?;
        Ok(matches!(
            self.0.state().found(),
            Found::Stored { .. } | Found::Sealed { .. }
        ))
    }

    /// The id's text, when there is one (see [`id`](SessionHandle::id)), in one call.
    ///
    /// ```
    /// use sessions::prelude::*;
    /// async fn token(session: SessionHandle) -> Result<String, sessions::SessionRejection> {
    ///     Ok(session.id_text().await?.unwrap_or_default())
    /// }
    /// # let _ = token;
    /// ```
    pub async fn id_text(&self) -> Result<Option<String>, SessionRejection> {
        Ok(self.id().await?.map(|id| id.expose().to_owned()))
    }

    /// Gives the session a new id, keeping its data; the old id stops working. Call it when
    /// the user's privileges change (login), against session fixation.
    ///
    /// A request that loaded the session before the move and saves after it follows it to the
    /// new id: its change is kept, and it sends no cookie (the login's response carries the new
    /// id). A logout that arrives with the old id ends the session at its new id.
    ///
    /// ```
    /// use sessions::prelude::*;
    /// async fn login(session: SessionHandle) -> &'static str {
    ///     session.cycle_id();
    ///     "welcome"
    /// }
    /// # let _ = login;
    /// ```
    pub fn cycle_id(&self) {
        let mut state = self.0.state();
        if state.action != Action::Destroy {
            state.action = Action::Cycle;
            // A CSRF token rendered before the new id (a login) is refused after it.
            state.push(SlotChange::Remove {
                slot: crate::csrf::SLOT.into(),
            });
        }
    }

    /// Ends the session: the stored record is deleted (wherever a concurrent `cycle_id()`
    /// moved it) and the cookie cleared. Changes made in this request before it are dropped;
    /// what the handler puts in the session after it (a "you are logged out" flash) goes into a
    /// new session, under a new id, set with the same response.
    ///
    /// ```
    /// use sessions::prelude::*;
    /// async fn logout(session: SessionHandle) -> &'static str {
    ///     session.destroy();
    ///     "bye"
    /// }
    /// # let _ = logout;
    /// ```
    pub fn destroy(&self) {
        self.0.state().destroy();
    }

    /// Whether [`destroy`](SessionHandle::destroy) was called in this request.
    ///
    /// ```
    /// use sessions::prelude::*;
    /// async fn logout(session: SessionHandle) {
    ///     session.destroy();
    ///     assert!(session.is_destroyed());
    /// }
    /// # let _ = logout;
    /// ```
    pub fn is_destroyed(&self) -> bool {
        self.0.state().action == Action::Destroy
    }

    /// Sets this session's expiry policy (e.g. a longer one for "remember me"); it is stored
    /// with the session and applies from this request on (the deadline and the cookie's
    /// `Max-Age` move with this response).
    ///
    /// ```
    /// # use std::time::Duration;
    /// # use sessions::{Expiry, SessionHandle};
    /// async fn remember_me(session: SessionHandle) {
    ///     session.set_expiry(Expiry::idle(Duration::from_secs(30 * 24 * 3600)));
    /// }
    /// # let _ = remember_me;
    /// ```
    pub fn set_expiry(&self, expiry: Expiry) {
        let change = expiry_slot(&expiry, self.0.config.format);
        let mut state = self.0.state();
        state.expiry = Some(expiry);
        if let Some(change) = change {
            state.push(SlotChange::Put(change));
        }
    }

    /// Saves the changes made so far now, inside the handler, rather than after it; with
    /// [optimistic concurrency](crate::SessionLayer::optimistic_concurrency) this is how a
    /// handler learns of a [`Conflict`](crate::errors::Conflict) and retries. A session not stored yet
    /// is stored now. A `Typed` value hands its changes over when it is dropped: let it go out
    /// of scope first.
    ///
    /// Nothing is written now for a session that is being cycled or destroyed, or lives in a
    /// `CookieStore`: those are written with the response. When a logout ended the session
    /// meanwhile, this is [`SessionRejection::Ended`] and the changes stay unsaved (the
    /// response becomes a 409 if the handler goes on regardless).
    ///
    /// ```
    /// use sessions::prelude::*;
    /// use sessions::SessionRejection;
    ///
    /// #[derive(Session, Default)]
    /// #[session(name = "stock")]
    /// struct Stock { left: u32 }
    ///
    /// async fn take_one(session: SessionHandle) -> Result<String, SessionRejection> {
    ///     loop {
    ///         {
    ///             let mut stock = session.get_or_default::<Stock>().await?;
    ///             if *stock.left() == 0 {
    ///                 return Ok("sold out".into());
    ///             }
    ///             *stock.left_mut() -= 1;
    ///         } // dropped: its change is handed over
    ///         match session.save().await {
    ///             Ok(()) => return Ok("yours".into()),
    ///             Err(SessionRejection::Conflict(_)) => session.reload().await?,
    ///             Err(other) => return Err(other),
    ///         }
    ///     }
    /// }
    /// # let _ = take_one;
    /// ```
    pub async fn save(&self) -> Result<(), SessionRejection> {
        self.0.save_now().await
    }

    /// Forgets the changes not saved yet and reads the session again from the store: after a
    /// [`Conflict`](crate::errors::Conflict), to redo the change on what another request saved. Drop
    /// every `Typed` value first; extract them again afterwards.
    ///
    /// ```
    /// use sessions::prelude::*;
    /// #[derive(Session, Default)] #[session(name = "cart")] struct Cart { n: u32 }
    /// async fn handler(session: SessionHandle) -> Result<(), sessions::SessionRejection> {
    ///     session.get_or_default::<Cart>().await?.set_n(5);
    ///     session.reload().await?; // the change above is forgotten
    ///     assert!(!session.get_or_default::<Cart>().await?.is_dirty());
    ///     Ok(())
    /// }
    /// # let _ = handler;
    /// ```
    pub async fn reload(&self) -> Result<(), SessionRejection> {
        self.0.reload().await
    }

    /// When the stored session ends (`None` for a session not stored yet).
    ///
    /// ```
    /// use sessions::prelude::*;
    /// async fn until(session: SessionHandle) -> Result<String, sessions::SessionRejection> {
    ///     Ok(match session.deadline().await? {
    ///         Some(deadline) => format!("{:?}", deadline.expires_at),
    ///         None => "new".into(),
    ///     })
    /// }
    /// # let _ = until;
    /// ```
    pub async fn deadline(&self) -> Result<Option<Deadline>, SessionRejection> {
        self.loaded().await?;
        Ok(self.0.state().loaded_deadline())
    }

    /// `T`'s slot, or `None` when nothing is stored for `T`.
    ///
    /// ```
    /// use sessions::prelude::*;
    /// #[derive(Session)] #[session(name = "account")] struct Account { user: String }
    /// async fn who(session: SessionHandle) -> Result<String, sessions::SessionRejection> {
    ///     Ok(session.get::<Account>().await?.map_or("nobody".into(), |a| a.user().clone()))
    /// }
    /// # let _ = who;
    /// ```
    pub async fn get<T: Session>(&self) -> Result<Option<Typed<T>>, SessionRejection> {
        self.0
            .typed::<T>()
            .await
            .map_err(SessionRejection::from_error::<T>)
    }

    /// `T`'s slot, or `T::default()` for a new one (written once it is changed).
    ///
    /// ```
    /// use sessions::prelude::*;
    /// #[derive(Session, Default)] #[session(name = "cart")] struct Cart { n: u32 }
    /// async fn add(session: SessionHandle) -> Result<(), sessions::SessionRejection> {
    ///     *session.get_or_default::<Cart>().await?.n_mut() += 1;
    ///     Ok(())
    /// }
    /// # let _ = add;
    /// ```
    pub async fn get_or_default<T: Session + Default>(&self) -> Result<Typed<T>, SessionRejection> {
        self.0
            .typed_or_default::<T>()
            .await
            .map_err(SessionRejection::from_error::<T>)
    }

    /// Puts `value` in the session as `T`'s slot, replacing whatever is stored for `T`: how to
    /// create a slot whose type has no `Default` (`LoggedIn { user_id: u64 }` needs neither a
    /// `Default` nor an `Option` in an `Option`). Written with the response (or the next
    /// `save()`); with optimistic concurrency it replaces without conflicting.
    ///
    /// ```
    /// use sessions::prelude::*;
    /// #[derive(Session)] #[session(name = "logged_in")] struct LoggedIn { user_id: u64 }
    /// async fn login(session: SessionHandle) -> Result<&'static str, sessions::SessionRejection> {
    ///     session.insert(LoggedIn { user_id: 42 })?;
    ///     session.cycle_id();
    ///     Ok("welcome")
    /// }
    /// # let _ = login;
    /// ```
    pub fn insert<T: Session>(&self, value: T) -> Result<(), SessionRejection> {
        if !self.0.config.registry.is_registered::<T>() {
            return Err(SessionRejection::NotRegistered {
                name: T::NAME,
                rust_type: std::any::type_name::<T>(),
            });
        }
        self.put(value)
    }

    /// [`insert`](Self::insert) without asking whether `T` is registered: the test kit's
    /// `seed` stores what an older deployment stored (a `CartV1` of a `migrate_from` chain).
    pub(crate) fn put<T: Session>(&self, value: T) -> Result<(), SessionRejection> {
        let session = &self.0;
        let mut typed = Typed::new(value);
        typed.mark_all();
        match typed.changes(session.config.format) {
            Ok(Some(SlotChange::Rewrite { slot, .. })) => {
                session.state().push(SlotChange::Put(slot));
                Ok(())
            }
            Ok(_) => Ok(()),
            Err(err) => Err(SessionRejection::Unsaved {
                message: err.to_string(),
            }),
        }
    }

    /// Empties the session (every slot but its expiry policy) and keeps its id; values taken
    /// before are let go (their later changes are dropped). For "log out but keep the visit".
    ///
    /// ```
    /// use sessions::prelude::*;
    /// async fn reset(session: SessionHandle) -> Result<&'static str, sessions::SessionRejection> {
    ///     session.clear().await?;
    ///     Ok("cleared")
    /// }
    /// # let _ = reset;
    /// ```
    pub async fn clear(&self) -> Result<(), SessionRejection> {
        self.loaded().await?;
        let mut state = self.0.state();
        let names: Vec<String> = state
            .view()
            .slots()
            .map(|slot| slot.name().to_owned())
            .filter(|name| !name.starts_with("__"))
            .collect();
        state.let_go_of_all();
        for name in names {
            state.push(SlotChange::Remove { slot: name.into() });
        }
        Ok(())
    }

    /// `T`'s slot, or a new one (`NewSlot`: `T::default()`), for the extractors.
    #[cfg(any(feature = "axum", feature = "actix"))]
    pub(crate) async fn get_or_new<T: Session + crate::typed::NewSlot>(
        &self,
    ) -> Result<Typed<T>, SessionRejection> {
        self.0
            .typed_or_new::<T>()
            .await
            .map_err(SessionRejection::from_error::<T>)
    }

    /// Removes `T`'s slot from the session; the other slots stay. A `Typed<T>` taken before is
    /// let go: its later changes are dropped, and the slot stays removed.
    ///
    /// A server-side session whose last slot is removed stays stored, empty, until it expires
    /// (its cookie too): a concurrent request of the same session that writes another slot
    /// (a cart added while a flash is read) must not be lost to a delete. Call
    /// [`destroy`](Self::destroy) to end a session. A [`CookieStore`](crate::CookieStore)
    /// session that ends up empty is cleared from the browser.
    ///
    /// ```
    /// use sessions::prelude::*;
    /// #[derive(Session, Default)] #[session(name = "cart")] struct Cart { n: u32 }
    /// async fn empty_cart(session: SessionHandle) {
    ///     session.remove::<Cart>();
    /// }
    /// # let _ = empty_cart;
    /// ```
    pub fn remove<T: Session>(&self) {
        self.0.state().remove(T::NAME);
    }
}

/// The sessions of the current session's owner (see `#[session(owner)]`).
impl SessionHandle {
    /// The owner the session names now (the rendered `#[session(owner)]` field, as this
    /// request's changes left it), if any.
    ///
    /// ```
    /// use sessions::prelude::*;
    /// async fn who(session: SessionHandle) -> Result<String, sessions::SessionRejection> {
    ///     Ok(session.owner().await?.unwrap_or_else(|| "nobody".into()))
    /// }
    /// # let _ = who;
    /// ```
    pub async fn owner(&self) -> Result<Option<String>, SessionRejection> {
        self.loaded().await?;
        let session = &self.0;
        let mut state = session.state();
        session
            .config
            .registry
            .owner_in(state.view())
            .map_err(|err| SessionRejection::Unsaved {
                message: format!("the owner field cannot be read: {err}"),
            })
    }

    /// The live sessions of this session's owner (a "where you are signed in" page), newest
    /// login first, this one marked `current`; empty when the session has no owner. Each is
    /// shown by an opaque reference, never by its id. Server-side stores only.
    ///
    /// ```
    /// use sessions::prelude::*;
    /// async fn devices(session: SessionHandle) -> Result<String, sessions::SessionRejection> {
    ///     let sessions = session.owner_sessions().await?;
    ///     Ok(format!("signed in on {} devices", sessions.len()))
    /// }
    /// # let _ = devices;
    /// ```
    pub async fn owner_sessions(&self) -> Result<Vec<OwnedSession>, SessionRejection> {
        let Some(owner) = self.owner().await? else {
            return Ok(Vec::new());
        };
        let store = self.store("list the sessions of an owner")?;
        let current = self.0.home_key(&self.0.state());
        owners::list(store.as_ref(), &owner, current.as_ref())
            .await
            .map_err(|err| SessionRejection::from_store("SessionHandle", err))
    }

    /// Ends the session `reference` (from [`owner_sessions`](SessionHandle::owner_sessions)),
    /// if it is one of this session's owner's; whether there was one. A request of the ended
    /// session that is already running cannot save it back to life; its next request starts a
    /// fresh session and has its cookie cleared.
    ///
    /// ```
    /// use sessions::prelude::*;
    /// async fn sign_out(session: SessionHandle, reference: String) -> Result<&'static str, sessions::SessionRejection> {
    ///     Ok(if session.revoke(&reference).await? { "signed out" } else { "no such session" })
    /// }
    /// # let _ = sign_out;
    /// ```
    pub async fn revoke(&self, reference: &str) -> Result<bool, SessionRejection> {
        let Some(owner) = self.owner().await? else {
            return Ok(false);
        };
        let store = self.store("revoke a session of an owner")?;
        let revoked = owners::revoke(store.as_ref(), &owner, reference)
            .await
            .map_err(|err| SessionRejection::from_store("SessionHandle", err))?;
        let how = crate::metrics::Revocation::One;
        self.0
            .note(|tally| tally.revoked(how, &owner, u64::from(revoked)));
        Ok(revoked)
    }

    /// Ends every other session of this session's owner (after a password change, say), and
    /// keeps this one; how many ended. For a `CookieStore` with a revocation list
    /// (`CookieStore::revocations`) every other cookie of the owner stops opening and this one
    /// is sealed anew; how many there were is unknown there (0 is returned). A request of a
    /// revoked session (or cookie) that is already running cannot save (or seal) it back to
    /// life: it gets a 409.
    ///
    /// ```
    /// use sessions::prelude::*;
    /// async fn password_changed(session: SessionHandle) -> Result<String, sessions::SessionRejection> {
    ///     Ok(format!("{} other sessions signed out", session.revoke_others().await?))
    /// }
    /// # let _ = password_changed;
    /// ```
    pub async fn revoke_others(&self) -> Result<usize, SessionRejection> {
        let Some(owner) = self.owner().await? else {
            return Ok(0);
        };
        if let super::Source::Cookie { cookies, .. } = &self.0.source {
            let own = match self.0.state().found() {
                Found::Sealed { stamp, .. } => Some(stamp.id),
                _ => None,
            };
            let revoked_at = cookies
                .revoke(&owner, own.as_ref(), self.0.config.clock.now())
                .await
                .map_err(|err| SessionRejection::from_store("SessionHandle", err))?;
            let mut state = self.0.state();
            state.reseal = true;
            state.revoked_at = Some(revoked_at);
            return Ok(0);
        }
        let store = self.store("revoke the sessions of an owner")?;
        let current = self.0.home_key(&self.0.state());
        let ended = owners::revoke_all(store.as_ref(), &owner, current.as_ref())
            .await
            .map_err(|err| SessionRejection::from_store("SessionHandle", err))?;
        let how = crate::metrics::Revocation::Others;
        self.0
            .note(|tally| tally.revoked(how, &owner, ended as u64));
        Ok(ended)
    }

    /// The server-side store, or why owners cannot be reached here.
    fn store(
        &self,
        what: &'static str,
    ) -> Result<Arc<dyn crate::store::SessionStore>, SessionRejection> {
        match &self.0.source {
            super::Source::Store { store, .. } => Ok(store.clone()),
            super::Source::Cookie { .. } => Err(SessionRejection::Unsupported { what }),
        }
    }
}

impl std::fmt::Debug for SessionHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionHandle").finish_non_exhaustive()
    }
}
