//! [`Typed<T>`]: a session value and the set of fields a handler changed.

use std::borrow::Cow;
#[cfg(not(doc))]
use std::ops::{Deref, DerefMut};
use std::sync::Arc;

use crate::codec::Format;
use crate::errors::EncodeError;
use crate::record::{Slot, SlotChange};
use crate::schema::Session;
use crate::schema::lazy::{Access, Origin, State};

/// A typed session slot as a handler sees it: the value and exactly which fields were changed.
///
/// Read fields through the generated accessors (`cart.items()`), change them through
/// `cart.items_mut()` or `cart.set_items(..)`: each write marks its field and nothing else, so a
/// save carries only what changed. There is no other way to reach the value mutably.
///
/// ```
/// use sessions::prelude::*;
///
/// #[derive(Session, Default)]
/// #[session(name = "cart")]
/// struct Cart { items: Vec<String>, coupon: Option<String> }
///
/// let mut cart = Typed::new(Cart::default());
/// assert!(!cart.is_dirty());
/// cart.items_mut().push("apple".into());
/// assert_eq!(cart.dirty_fields().collect::<Vec<_>>(), ["items"]);
/// assert_eq!(cart.items().len(), 1);
/// assert!(cart.coupon().is_none());
/// ```
///
/// The accessors are methods of the type the derive generates beside `T`, which `Typed<T>`
/// dereferences to (`Deref<Target = <T as Session>::Access>` and `DerefMut`). Those two impls
/// are left off this page: through them rustdoc would list every blanket impl bounded on
/// `DerefMut` of every dependency (redis's `Commands` and `ConnectionLike`, rand's `Rng`, ..)
/// as if it applied to `Typed<T>`, thousands of lines that none of them do.
pub struct Typed<T: Session> {
    /// Always `Some`, but while `into_inner` takes it out.
    access: Option<T::Access>,
    /// Where the changes go when this value is dropped (the request's session, in the layer),
    /// and the epoch of that session it was taken in (see `SlotSink::commit`).
    sink: Option<(Arc<dyn SlotSink>, u32)>,
}

/// Receives a slot's changes when a [`Typed`] obtained from a request's session is dropped.
pub(crate) trait SlotSink: Send + Sync {
    /// The format changes are encoded in.
    fn format(&self) -> Format;
    /// Takes the changes of one slot (or the error of encoding them), made through a value
    /// taken at `epoch`: a session drops the changes of a value taken before the slot was
    /// removed or the session destroyed.
    fn commit(
        &self,
        slot: &'static str,
        epoch: u32,
        changes: Result<Option<SlotChange>, EncodeError>,
    );
}

impl<T: Session> Typed<T> {
    /// A value for a new session slot (nothing stored yet). Nothing is dirty; once anything is
    /// changed, the whole slot is written.
    ///
    /// ```
    /// # use sessions::prelude::*;
    /// # #[derive(Session, Default)] #[session(name = "cart")] struct Cart { n: u32 }
    /// let cart = Typed::new(Cart { n: 3 });
    /// assert!(cart.is_new() && !cart.is_dirty());
    /// ```
    pub fn new(value: T) -> Self {
        Self::from_state(State::new(value, Origin::New))
    }

    pub(crate) fn from_state(state: State<T, T::Cells>) -> Self {
        Self {
            access: Some(T::Access::from_state(state)),
            sink: None,
        }
    }

    /// Sends this value's changes to `sink` when it is dropped; it was taken at `epoch`.
    pub(crate) fn with_sink(mut self, sink: Arc<dyn SlotSink>, epoch: u32) -> Self {
        self.sink = Some((sink, epoch));
        self
    }

    fn access(&self) -> &T::Access {
        match &self.access {
            Some(access) => access,
            None => unreachable!("Typed::access is taken only by into_inner and drop"),
        }
    }

    fn access_mut(&mut self) -> &mut T::Access {
        match &mut self.access {
            Some(access) => access,
            None => unreachable!("Typed::access is taken only by into_inner and drop"),
        }
    }

    fn state(&self) -> &State<T, T::Cells> {
        self.access().state()
    }

    /// Read access to the whole value.
    ///
    /// ```
    /// # use sessions::prelude::*;
    /// # #[derive(Session, Default)] #[session(name = "cart")] struct Cart { n: u32 }
    /// let cart = Typed::new(Cart { n: 3 });
    /// assert_eq!(cart.value().n, 3);
    /// ```
    ///
    /// # Panics
    ///
    /// A value loaded field by field is copied whole for this; the copy panics when a field the
    /// handler changed cannot be encoded and decoded back in the stored format (a save of it
    /// would fail, or store bytes that cannot be loaded).
    pub fn value(&self) -> &T {
        crate::schema::lazy::value(self.state())
    }

    /// The value, leaving dirty tracking behind. Changes made so far are still saved.
    ///
    /// ```
    /// # use sessions::prelude::*;
    /// # #[derive(Session, Default)] #[session(name = "cart")] struct Cart { n: u32 }
    /// assert_eq!(Typed::new(Cart { n: 3 }).into_inner().n, 3);
    /// ```
    pub fn into_inner(mut self) -> T {
        let pending = self
            .sink
            .take()
            .map(|(sink, epoch)| (self.changes(sink.format()), sink, epoch));
        let value = match self.access.take() {
            Some(access) => access.into_state().into_value(),
            None => unreachable!("Typed::access is taken only by into_inner and drop"),
        };
        // The loaded bytes are let go before the sink takes the changes, so that applying them
        // to the request's record copies nothing.
        if let Some((changes, sink, epoch)) = pending {
            sink.commit(T::NAME, epoch, changes);
        }
        value
    }

    /// Replaces the whole value; every field becomes dirty.
    ///
    /// ```
    /// # use sessions::prelude::*;
    /// # #[derive(Session, Default)] #[session(name = "cart")] struct Cart { n: u32, m: u32 }
    /// let mut cart = Typed::new(Cart::default());
    /// cart.replace(Cart { n: 1, m: 2 });
    /// assert_eq!(cart.dirty_fields().count(), 2);
    /// ```
    pub fn replace(&mut self, value: T) -> T {
        let state = self.access_mut().state_mut();
        state.dirty.insert_all(T::FIELDS.len());
        std::mem::replace(state.whole_mut(), value)
    }

    /// Marks every field changed, so that a save writes the whole value.
    pub(crate) fn mark_all(&mut self) {
        self.access_mut()
            .state_mut()
            .dirty
            .insert_all(T::FIELDS.len());
    }

    /// The stored names of the fields changed so far, in declaration order.
    ///
    /// ```
    /// # use sessions::prelude::*;
    /// # #[derive(Session, Default)] #[session(name = "cart")] struct Cart { a: u32, b: u32, c: u32 }
    /// let mut cart = Typed::new(Cart::default());
    /// cart.set_c(1);
    /// *cart.a_mut() += 1;
    /// assert_eq!(cart.dirty_fields().collect::<Vec<_>>(), ["a", "c"]);
    /// ```
    pub fn dirty_fields(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.state()
            .dirty
            .iter()
            .filter_map(|index| T::FIELDS.get(index).copied())
    }

    /// Whether any field changed.
    ///
    /// ```
    /// # use sessions::prelude::*;
    /// # #[derive(Session, Default)] #[session(name = "cart")] struct Cart { a: u32 }
    /// let mut cart = Typed::new(Cart::default());
    /// let _ = cart.a();
    /// assert!(!cart.is_dirty());
    /// cart.set_a(2);
    /// assert!(cart.is_dirty());
    /// ```
    pub fn is_dirty(&self) -> bool {
        !self.state().dirty.is_empty()
    }

    /// Whether nothing was stored for this slot when it was loaded.
    ///
    /// ```
    /// # use sessions::prelude::*;
    /// # #[derive(Session, Default)] #[session(name = "cart")] struct Cart { a: u32 }
    /// assert!(Typed::new(Cart::default()).is_new());
    /// ```
    pub fn is_new(&self) -> bool {
        matches!(self.state().origin, Origin::New)
    }

    /// The stored version this value was migrated from on load, if it was.
    ///
    /// ```
    /// # use sessions::prelude::*;
    /// # #[derive(Session, Default)] #[session(name = "cart")] struct Cart { a: u32 }
    /// assert_eq!(Typed::new(Cart::default()).migrated_from(), None);
    /// ```
    pub fn migrated_from(&self) -> Option<u32> {
        match self.state().origin {
            Origin::Migrated { from, .. } => Some(from),
            _ => None,
        }
    }

    /// What a save must write for this slot when fields are encoded in `format`: nothing when
    /// nothing changed; only the changed fields of a slot stored in the same format at the same
    /// version; the whole slot ([`SlotChange::Rewrite`]) when it is new, was stored in another
    /// format, or was migrated from an older version (a migrated slot is written back even when
    /// nothing changed). A rewrite names the fields that changed, so that a store which finds
    /// the slot already rewritten by another request writes only those.
    ///
    /// ```
    /// use sessions::prelude::*;
    /// use sessions::Format;
    /// use sessions::store::SlotChange;
    ///
    /// #[derive(Session, Default)]
    /// #[session(name = "cart")]
    /// struct Cart { a: u32, b: u32 }
    ///
    /// let mut cart = Typed::new(Cart::default());
    /// assert!(cart.changes(Format::Json).unwrap().is_none());
    /// cart.set_a(7);
    /// // A new slot is written whole; `a` is what changed.
    /// let Some(SlotChange::Rewrite { slot, base: 0, changed }) = cart.changes(Format::Json).unwrap() else { panic!() };
    /// assert_eq!(slot.fields().len(), 2);
    /// assert_eq!(changed.iter().collect::<Vec<_>>(), [0]);
    /// ```
    pub fn changes(&self, format: Format) -> Result<Option<SlotChange>, EncodeError> {
        let state = self.state();
        let (whole, base) = match state.origin {
            Origin::New => (true, 0),
            Origin::Migrated { revision, .. } => (true, revision),
            Origin::Stored {
                format: stored,
                revision,
            } => (stored != format, revision),
        };
        let write_back = matches!(state.origin, Origin::Migrated { .. });
        if state.dirty.is_empty() && !write_back {
            return Ok(None);
        }
        if whole {
            let fields = state.with_whole(|value| {
                (0..T::FIELDS.len())
                    .map(|index| {
                        Ok((
                            Cow::Borrowed(T::FIELDS[index]),
                            value.encode_field(index, format)?,
                        ))
                    })
                    .collect::<Result<Vec<_>, EncodeError>>()
            })?;
            return Ok(Some(SlotChange::Rewrite {
                slot: Slot::new(T::NAME, T::VERSION, format, fields),
                base,
                changed: state.dirty.clone(),
            }));
        }
        let fields = state
            .dirty
            .iter()
            .filter(|index| *index < T::FIELDS.len())
            .map(|index| {
                Ok((
                    Cow::Borrowed(T::FIELDS[index]),
                    state.encode_field(index, format)?,
                ))
            })
            .collect::<Result<Vec<_>, EncodeError>>()?;
        Ok(Some(SlotChange::Fields {
            slot: Cow::Borrowed(T::NAME),
            version: T::VERSION,
            format,
            fields,
        }))
    }
}

// Left off the docs (see `Typed`): with a `DerefMut` whose target is a projection, rustdoc
// lists every blanket impl bounded on `DerefMut` as if it applied.
#[cfg(not(doc))]
impl<T: Session> Deref for Typed<T> {
    type Target = T::Access;

    fn deref(&self) -> &T::Access {
        self.access()
    }
}

#[cfg(not(doc))]
impl<T: Session> DerefMut for Typed<T> {
    fn deref_mut(&mut self) -> &mut T::Access {
        self.access_mut()
    }
}

impl<T: Session> Drop for Typed<T> {
    /// Hands the changes to the sink, once.
    fn drop(&mut self) {
        if let Some((sink, epoch)) = self.sink.take() {
            let changes = self.changes(sink.format());
            // The loaded bytes are let go first, so that applying the changes to the
            // request's record copies nothing.
            self.access = None;
            if !matches!(changes, Ok(None)) {
                sink.commit(T::NAME, epoch, changes);
            }
        }
    }
}

/// What `Typed<T>` as an extractor needs: a value for a session that stores nothing for `T` yet.
/// Implemented for every `T: Default`; for a type without one, extract `Option<Typed<T>>` (or
/// `IfStored<T>` in actix-web), and create the slot with `SessionHandle::insert`.
///
/// The impl for `T: Default` is `#[diagnostic::do_not_recommend]`, so that a handler taking
/// `Typed<SignedIn>` for a `SignedIn` without `Default` is told the message below, not "derive
/// `Default`" (an empty `SignedIn { user_id: 0 }` would be a session signed in as user 0).
///
/// ```
/// use sessions::NewSlot;
/// use sessions::prelude::*;
/// #[derive(Session, Default)] #[session(name = "cart")] struct Cart { items: Vec<String> }
/// assert!(Cart::new_slot().items.is_empty());
/// ```
#[diagnostic::on_unimplemented(
    message = "`Typed<{Self}>` makes a new slot with `{Self}::default()`, and `{Self}` has no `Default`",
    label = "`{Self}` has no `Default`: a handler cannot take `Typed<{Self}>`",
    note = "take `Option<Typed<{Self}>>` (on actix-web `sessions::actix::IfStored<{Self}>`), which is `None` while nothing is stored for `{Self}`, and create the slot with `SessionHandle::insert({Self} {{ .. }})`",
    note = "derive `Default` for `{Self}` only if its default value is a session you want every visitor to start with"
)]
pub trait NewSlot: Sized {
    /// The value of a new slot.
    fn new_slot() -> Self;
}

#[diagnostic::do_not_recommend]
impl<T: Default> NewSlot for T {
    fn new_slot() -> Self {
        T::default()
    }
}

impl<T: Session + Default> Default for Typed<T> {
    fn default() -> Self {
        Self::new(T::default())
    }
}

impl<T: Session + std::fmt::Debug> std::fmt::Debug for Typed<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Typed")
            .field("value", self.value())
            .field("dirty", &self.dirty_fields().collect::<Vec<_>>())
            .finish()
    }
}
