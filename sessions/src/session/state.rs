//! [`State`]: the part of one request's session that changes while the request runs: what
//! the load found, the changes not saved yet, what the handler asked of the session as a whole,
//! and what an earlier write of this request already told the client.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use super::expiry_slot::stored_expiry;
use crate::errors::EncodeError;
use crate::expiry::{Deadline, Expiry};
use crate::id::{IdError, SessionId, SessionKey};
use crate::record::{Changeset, Record, SlotChange};
use crate::store::{Entry, StoreError, Stored};

/// What the load found.
pub(crate) enum Found {
    /// Nothing was loaded (no handler asked).
    NotLoaded,
    /// The store failed.
    Failed(Arc<StoreError>),
    /// No live session: none carried, unknown, ended or unreadable. `moved`: the carried id is
    /// one a `cycle_id()` moved the session away from (a stale cookie).
    Absent { moved: bool },
    /// A live stored session, at entry version `version`.
    Stored { version: u64, session: Stored },
    /// A sealed cookie that opened.
    Sealed {
        record: Record,
        deadline: Deadline,
        needs_reseal: bool,
        /// Its id, owner and seal time: a seal of this request checks again that it was not
        /// revoked since, and a logout revokes it by its id.
        stamp: Box<crate::store::cookie::Stamp>,
    },
}

/// What the handler asked of the session as a whole.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Action {
    Keep,
    Cycle,
    Destroy,
}

/// Where the stored session lives now, when that is not simply the id the request carried.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Home {
    /// Under the id the request carried (or nowhere yet).
    Carried,
    /// Under the issued id: the handler's `save()` created the session.
    Issued,
    /// Under another key: a save followed a `cycle_id()` of another request there.
    Followed(Box<SessionKey>),
}

/// What the response tells the client about its session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Token {
    /// Keep this value (an id, or a sealed cookie), until `max_age` (none: a browser-session
    /// cookie).
    Set {
        value: String,
        max_age: Option<Duration>,
    },
    /// Forget the session.
    Clear,
}

/// The mutable part of a request's session.
pub(crate) struct State {
    found: Found,
    /// The loaded record with `changes` applied, made when first asked for after a change.
    view: Option<Record>,
    changes: Changeset,
    pub(super) action: Action,
    /// The id a create or cycle of this request files the session under (drawn early when the
    /// handler asked for it, so that the id it saw is the one the client gets).
    issued: Option<Box<SessionId>>,
    /// The handler asked for the id of a session not stored yet: it must be stored, even empty.
    pub(super) must_store: bool,
    pub(super) home: Home,
    /// The expiry policy the handler set for this session.
    pub(super) expiry: Option<Expiry>,
    /// What an earlier write of this request (the handler's `save()`) means for the client.
    pub(super) announce: Option<Box<Token>>,
    /// A change that could not be encoded: the request must fail rather than lose it.
    pub(super) encode_error: Option<Box<EncodeError>>,
    /// The cookie must be sealed anew (its owner's older cookies were just revoked).
    pub(super) reseal: bool,
    /// The instant this request revoked its owner's cookies at (`revoke_others`): its own
    /// reseal is not refused by its own revocation.
    pub(super) revoked_at: Option<SystemTime>,
    /// Counts `remove`, `clear` and `destroy` calls: a `Typed` value remembers the epoch it was
    /// taken in, and its changes are dropped when its slot went after that.
    pub(super) epoch: u32,
    /// The epoch each removed slot went at (its last removal).
    removed_at: Vec<(&'static str, u32)>,
    /// The epoch every slot went at (`clear`, `destroy`).
    cleared_at: Option<u32>,
    /// `destroy()` was called: the stored session ends, and what the request puts in the
    /// session after that goes into a new one.
    pub(super) destroyed: bool,
    /// The entry version this request's last write left the session at (the read mark the
    /// response hands out, `read_mark.rs`).
    pub(super) written: Option<u64>,
}

impl State {
    pub(crate) fn new() -> Self {
        Self {
            found: Found::NotLoaded,
            view: None,
            changes: Changeset::new(),
            action: Action::Keep,
            issued: None,
            must_store: false,
            home: Home::Carried,
            expiry: None,
            announce: None,
            encode_error: None,
            reseal: false,
            revoked_at: None,
            epoch: 0,
            removed_at: Vec::new(),
            cleared_at: None,
            destroyed: false,
            written: None,
        }
    }

    pub(crate) fn found(&self) -> &Found {
        &self.found
    }

    /// Takes what a load found; changes made before (if any) apply on top of it.
    pub(crate) fn set_found(&mut self, found: Found) {
        self.found = found;
        self.view = None;
    }

    /// What was stored, written since: the base of the next store write of this request.
    pub(crate) fn set_stored(&mut self, version: u64, session: Stored) {
        self.written = Some(version);
        self.set_found(Found::Stored { version, session });
    }

    /// The stored entry as loaded, taken out (the state keeps only that it was loaded): for a
    /// write that needs it no more.
    pub(crate) fn take_stored(&mut self) -> Option<Entry> {
        match std::mem::replace(&mut self.found, Found::Absent { moved: false }) {
            Found::Stored { version, session } => Some(Entry::Live { version, session }),
            other => {
                self.found = other;
                None
            }
        }
    }

    /// The record as loaded (or as this request's own write left it); empty once the handler
    /// destroyed the session (what it puts in afterwards goes into a new one).
    pub(crate) fn loaded_record(&self) -> &Record {
        static EMPTY: Record = Record::new();
        if self.destroyed {
            return &EMPTY;
        }
        match &self.found {
            Found::Stored { session, .. } => &session.record,
            Found::Sealed { record, .. } => record,
            _ => &EMPTY,
        }
    }

    /// The deadline of the stored (or sealed) session.
    pub(crate) fn loaded_deadline(&self) -> Option<Deadline> {
        match &self.found {
            Found::Stored { session, .. } => Some(session.deadline),
            Found::Sealed { deadline, .. } => Some(*deadline),
            _ => None,
        }
    }

    /// Adds a change to save; the handler's view of the record follows.
    pub(crate) fn push(&mut self, change: SlotChange) {
        self.changes.push(change);
        self.view = None;
    }

    /// Removes `slot` from the session; values of it taken before are let go.
    pub(crate) fn remove(&mut self, slot: &'static str) {
        self.epoch += 1;
        match self.removed_at.iter_mut().find(|(name, _)| *name == slot) {
            Some((_, at)) => *at = self.epoch,
            None => self.removed_at.push((slot, self.epoch)),
        }
        self.push(SlotChange::Remove { slot: slot.into() });
    }

    /// Every value taken before now is let go (`clear`, `destroy`).
    pub(crate) fn let_go_of_all(&mut self) {
        self.epoch += 1;
        self.cleared_at = Some(self.epoch);
    }

    /// Ends the session: its changes so far are dropped, its values let go, and what the
    /// request puts in the session from now on goes into a new one.
    pub(crate) fn destroy(&mut self) {
        self.let_go_of_all();
        self.clear_changes();
        self.destroyed = true;
        self.action = Action::Destroy;
    }

    /// Whether a change of `slot` made through a value taken at `epoch` still counts (its slot
    /// was not removed, nor the session cleared or destroyed, since).
    pub(crate) fn still_counts(&self, slot: &str, epoch: u32) -> bool {
        let gone_at = self
            .removed_at
            .iter()
            .filter(|(name, _)| *name == slot)
            .map(|(_, at)| *at)
            .chain(self.cleared_at)
            .max();
        gone_at.is_none_or(|at| epoch >= at)
    }

    /// The changes not saved yet.
    pub(crate) fn changes(&self) -> &Changeset {
        &self.changes
    }

    pub(crate) fn changes_mut(&mut self) -> &mut Changeset {
        self.view = None;
        &mut self.changes
    }

    /// Whether any change waits to be saved.
    pub(crate) fn has_changes(&self) -> bool {
        !self.changes.is_empty()
    }

    /// Forgets the changes not saved yet (after they were saved, or for a reload).
    pub(crate) fn clear_changes(&mut self) {
        self.changes = Changeset::new();
        self.view = None;
    }

    /// The record as the handler sees it: the loaded one with the request's changes applied.
    /// Only a change makes a copy (the loaded record is shared with the store).
    pub(crate) fn view(&mut self) -> &Record {
        if self.changes.is_empty() {
            return self.view.as_ref().unwrap_or(self.loaded_record());
        }
        if self.view.is_none() {
            self.view = Some(applied(self.loaded_record(), &self.changes));
        }
        match &self.view {
            Some(view) => view,
            None => unreachable!("the view was made just above"),
        }
    }

    /// The expiry policy of this session: set by the handler, stored with the session, or the
    /// layer's.
    pub(crate) fn expiry(&self, default: Expiry) -> Expiry {
        self.expiry
            .or_else(|| stored_expiry(self.loaded_record()))
            .unwrap_or(default)
    }

    /// The id a create or cycle of this request uses, drawn now if it was not yet.
    pub(crate) fn issue(&mut self) -> Result<SessionId, IdError> {
        match &self.issued {
            Some(id) => Ok((**id).clone()),
            None => {
                let id = SessionId::generate()?;
                self.issued = Some(Box::new(id.clone()));
                Ok(id)
            }
        }
    }

    /// The id drawn for a create or cycle, if one was.
    pub(crate) fn issued(&self) -> Option<&SessionId> {
        self.issued.as_deref()
    }

    /// Forgets the issued id (it collided with a stored one and was not handed out).
    pub(crate) fn forget_issued(&mut self) {
        self.issued = None;
    }
}

/// `loaded` with `changes` applied. A change that does not fit (it cannot happen for changes
/// made from this record) is logged and left out of the view; it is still saved, and the store
/// refuses it if it does not fit there either.
fn applied(loaded: &Record, changes: &Changeset) -> Record {
    let mut view = loaded.clone();
    if view.apply(changes).is_ok() {
        return view;
    }
    for change in changes.iter() {
        let one: Changeset = std::iter::once(change.clone()).collect();
        if let Err(err) = view.apply(&one) {
            tracing::error!(target: "sessions", session_type = change.slot_name(), error = %err, "change does not fit the request's record");
        }
    }
    view
}
