//! Lazy decoding: a loaded value's [`State`], whole or field by field, and the accessor and
//! cell functions the generated code reaches it through.

use std::sync::OnceLock;

use bytes::Bytes;

use super::{Codec, SlotReader};
use crate::codec::Format;
use crate::dirty::DirtySet;
use crate::errors::{DecodeError, EncodeError};
use crate::record::{Record, Slot};
use crate::schema::Session;

/// Where a loaded value came from; decides whether a save writes fields or the whole slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// Nothing was stored.
    New,
    /// Decoded from a slot of the current version in `format`.
    Stored {
        /// The format of the stored slot.
        format: Format,
        /// The stored slot's revision.
        revision: u64,
    },
    /// Decoded from an older version and migrated.
    Migrated {
        /// The stored version.
        from: u32,
        /// The stored slot's revision.
        revision: u64,
    },
}

/// The state of a value of the session type `T`.
pub type StateOf<T> = State<T, <T as Session>::Cells>;

/// The value and its dirty set. Its fields are private to `sessions`: generated accessors reach
/// them only through [`get`], [`get_mut`], [`set`], [`value`] and [`unmarked`].
///
/// A value loaded from a slot that was checked before (see `slot_check`) starts lazy: each
/// field sits in its own cell of `C` (the generated cells type, [`Session::Cells`]) and is
/// decoded from the slot's bytes the first time it is read. Whatever needs the whole `T` turns
/// the cells into one.
pub struct State<T, C> {
    repr: Repr<T, C>,
    pub(crate) dirty: DirtySet,
    pub(crate) origin: Origin,
}

enum Repr<T, C> {
    /// The whole value.
    Whole(T),
    /// Field by field, decoded on first use.
    Lazy(Lazy<T, C>),
    /// Only while the representation changes (never seen outside this module).
    Moving,
}

struct Lazy<T, C> {
    cells: C,
    /// Holds the slot's bytes (shared, not copied).
    record: Record,
    format: Format,
    /// A whole copy made by [`value`] (which has only `&self`); it becomes the value on the
    /// next write, since nothing can change while it is borrowed.
    snapshot: OnceLock<T>,
}

impl<T: Session> Lazy<T, T::Cells> {
    fn reader(record: &Record, format: Format) -> SlotReader<'_> {
        match record.slot(T::NAME) {
            Some(slot) => SlotReader::new(slot, format, T::NAME, T::VERSION),
            None => unreachable!("a lazy value keeps the record its slot was checked in"),
        }
    }
}

impl<T: Session> State<T, T::Cells> {
    pub(crate) fn new(value: T, origin: Origin) -> Self {
        Self {
            repr: Repr::Whole(value),
            dirty: DirtySet::default(),
            origin,
        }
    }

    /// Loads `T` from its slot in `record` (stored at `T`'s version in `format`) field by field:
    /// fields the slot does not vouch for yet are decoded now (an error is returned as on an
    /// eager load), the others when first read. `None` for a type that always loads whole.
    pub(crate) fn lazy(
        record: &Record,
        slot: &Slot,
        format: Format,
    ) -> Result<Option<Self>, DecodeError> {
        let Some(cells) = T::load_cells(&SlotReader::new(slot, format, T::NAME, T::VERSION))?
        else {
            return Ok(None);
        };
        Ok(Some(Self {
            repr: Repr::Lazy(Lazy {
                cells,
                record: record.clone(),
                format,
                snapshot: OnceLock::new(),
            }),
            dirty: DirtySet::default(),
            origin: Origin::Stored {
                format,
                revision: slot.revision(),
            },
        }))
    }

    /// Turns cells (or the snapshot) into the whole value.
    fn promote(&mut self) -> &mut T {
        if let Repr::Lazy(_) = self.repr
            && let Repr::Lazy(lazy) = std::mem::replace(&mut self.repr, Repr::Moving)
        {
            self.repr = Repr::Whole(into_whole(lazy));
        }
        match &mut self.repr {
            Repr::Whole(value) => value,
            _ => moving(),
        }
    }

    /// The whole value, mutably (a lazy value is made whole first).
    pub(crate) fn whole_mut(&mut self) -> &mut T {
        self.promote()
    }

    /// Calls `f` with the whole value; a lazy value is copied whole first (see [`value`]), and
    /// a copy that fails is an error, not a panic.
    pub(crate) fn with_whole<R>(
        &self,
        f: impl FnOnce(&T) -> Result<R, EncodeError>,
    ) -> Result<R, EncodeError> {
        match &self.repr {
            Repr::Whole(value) => f(value),
            Repr::Lazy(lazy) => {
                if lazy.snapshot.get().is_none() {
                    let reader = Lazy::<T, T::Cells>::reader(&lazy.record, lazy.format);
                    let _ = lazy
                        .snapshot
                        .set(T::snapshot(&lazy.cells, &self.dirty, &reader)?);
                }
                f(value(self))
            }
            Repr::Moving => moving(),
        }
    }

    /// Promotes when [`value`] made a snapshot: it is the value from now on.
    #[inline]
    fn promote_snapshot(&mut self) {
        if matches!(&self.repr, Repr::Lazy(lazy) if lazy.snapshot.get().is_some()) {
            self.promote();
        }
    }

    /// The value, taken.
    pub(crate) fn into_value(self) -> T {
        match self.repr {
            Repr::Whole(value) => value,
            Repr::Lazy(lazy) => into_whole(lazy),
            Repr::Moving => moving(),
        }
    }

    /// Encodes the stored field `index` for a partial save.
    pub(crate) fn encode_field(&self, index: usize, format: Format) -> Result<Bytes, EncodeError> {
        match &self.repr {
            Repr::Lazy(lazy) if lazy.snapshot.get().is_none() => {
                T::encode_cell(&lazy.cells, index, format)
            }
            _ => value(self).encode_field(index, format),
        }
    }
}

fn into_whole<T: Session>(lazy: Lazy<T, T::Cells>) -> T {
    let Lazy {
        cells,
        record,
        format,
        snapshot,
    } = lazy;
    if let Some(value) = snapshot.into_inner() {
        return value;
    }
    match T::assemble(Some(cells), &Lazy::<T, T::Cells>::reader(&record, format)) {
        Ok(value) => value,
        Err(err) => checked_field_failed(&err),
    }
}

#[cold]
fn moving() -> ! {
    unreachable!("a session value is read while it changes representation")
}

/// A field whose bytes decoded when the slot was checked does not decode now: only a
/// `Deserialize` impl that answers differently for the same bytes can get here.
#[cold]
fn checked_field_failed(err: &DecodeError) -> ! {
    panic!(
        "{err} (it decoded when the session was loaded: its `Deserialize` impl must give the same answer for the same bytes)"
    )
}

/// The generated accessor type of a session struct wraps a [`State`]; `Typed<T>` dereferences
/// to it, which is how `cart.items()` resolves with nothing imported.
pub trait Access<T: Session>: Send + Sync + 'static {
    /// Wraps a state.
    fn from_state(state: State<T, T::Cells>) -> Self;
    /// The wrapped state.
    fn state(&self) -> &State<T, T::Cells>;
    /// The wrapped state, mutably.
    fn state_mut(&mut self) -> &mut State<T, T::Cells>;
    /// Unwraps the state.
    fn into_state(self) -> State<T, T::Cells>;
}

impl<T: Session<Cells = C>, C: 'static> Access<T> for State<T, C>
where
    State<T, C>: Send + Sync,
{
    fn from_state(state: State<T, C>) -> Self {
        state
    }
    fn state(&self) -> &State<T, C> {
        self
    }
    fn state_mut(&mut self) -> &mut State<T, C> {
        self
    }
    fn into_state(self) -> State<T, C> {
        self
    }
}

/// One field of a lazily loaded value: empty until decoded.
pub type Cell<F> = OnceLock<F>;

/// Read access to the whole value. A lazy value makes a whole copy the first time (fields
/// changed since the load go through an encode and decode in the stored format).
///
/// # Panics
///
/// When a field changed by the handler does not decode from its own encoding (a save of it
/// would fail or store bytes that cannot be loaded).
pub fn value<T: Session>(state: &State<T, T::Cells>) -> &T {
    match &state.repr {
        Repr::Whole(value) => value,
        Repr::Lazy(lazy) => lazy.snapshot.get_or_init(|| {
            let reader = Lazy::<T, T::Cells>::reader(&lazy.record, lazy.format);
            match T::snapshot(&lazy.cells, &state.dirty, &reader) {
                Ok(value) => value,
                Err(err) => panic!("{err}: the session value cannot be copied for `value()`"),
            }
        }),
        Repr::Moving => moving(),
    }
}

/// Reads a stored field: from the whole value, or from its cell, decoding it once.
#[inline]
pub fn get<'a, T: Session, F>(
    state: &'a StateOf<T>,
    whole: impl FnOnce(&T) -> &F,
    cell: impl FnOnce(&T::Cells) -> &Cell<F>,
    codec: &Codec<F>,
) -> &'a F {
    match &state.repr {
        Repr::Whole(value) => whole(value),
        Repr::Lazy(lazy) => {
            let cell = cell(&lazy.cells);
            match cell.get() {
                Some(field) => field,
                None => {
                    cell.get_or_init(|| decode_checked::<T, F>(&lazy.record, lazy.format, codec))
                }
            }
        }
        Repr::Moving => moving(),
    }
}

/// Write access to a stored field; marks it dirty.
#[inline]
pub fn get_mut<'a, T: Session, F>(
    state: &'a mut StateOf<T>,
    whole: impl FnOnce(&mut T) -> &mut F,
    cell: impl FnOnce(&mut T::Cells) -> &mut Cell<F>,
    codec: &Codec<F>,
) -> &'a mut F {
    state.dirty.insert(codec.index());
    state.promote_snapshot();
    match &mut state.repr {
        Repr::Whole(value) => whole(value),
        Repr::Lazy(lazy) => {
            let cell = cell(&mut lazy.cells);
            if cell.get().is_none() {
                *cell = OnceLock::from(decode_checked::<T, F>(&lazy.record, lazy.format, codec));
            }
            match cell.get_mut() {
                Some(field) => field,
                None => unreachable!("the cell was filled above"),
            }
        }
        Repr::Moving => moving(),
    }
}

/// Sets a stored field (nothing is decoded); marks it dirty.
#[inline]
pub fn set<T: Session, F>(
    state: &mut StateOf<T>,
    whole: impl FnOnce(&mut T) -> &mut F,
    cell: impl FnOnce(&mut T::Cells) -> &mut Cell<F>,
    codec: &Codec<F>,
    field: F,
) {
    state.dirty.insert(codec.index());
    state.promote_snapshot();
    match &mut state.repr {
        Repr::Whole(value) => *whole(value) = field,
        Repr::Lazy(lazy) => *cell(&mut lazy.cells) = OnceLock::from(field),
        Repr::Moving => moving(),
    }
}

/// Write access to the whole value for a `skip` field, which is never stored and so never
/// dirty (types with `skip` fields always load whole).
#[inline]
pub fn unmarked<T: Session>(state: &mut StateOf<T>) -> &mut T {
    state.promote()
}

fn decode_checked<T: Session, F>(record: &Record, format: Format, codec: &Codec<F>) -> F {
    match codec.decode(&Lazy::<T, T::Cells>::reader(record, format)) {
        Ok(field) => field,
        Err(err) => checked_field_failed(&err),
    }
}

/// On load: the cell of a field, decoded now unless the slot vouches that its bytes decode as
/// `T`'s field (a check made by an earlier load of the same bytes), recording that they do. A
/// missing field is decoded (as `None`, its default, or an error) every time.
pub fn check_cell<T: Session, F>(
    reader: &SlotReader<'_>,
    codec: &Codec<F>,
) -> Result<Cell<F>, DecodeError> {
    let slot = reader.slot;
    let position = codec.find(slot).map(|(position, _)| position);
    let owner = std::any::TypeId::of::<T>();
    if let Some(position) = position
        && slot.checked.is_valid(owner, position)
    {
        return Ok(Cell::new());
    }
    let field = codec.decode(reader)?;
    if let Some(position) = position {
        slot.checked.set_valid(owner, position);
    }
    Ok(Cell::from(field))
}

/// A field of the whole value: taken from its cell when there are cells and it is filled,
/// decoded from the slot otherwise.
#[inline]
pub fn take_cell<C, F>(
    cells: &mut Option<C>,
    cell: impl FnOnce(&mut C) -> &mut Cell<F>,
    reader: &SlotReader<'_>,
    codec: &Codec<F>,
) -> Result<F, DecodeError> {
    match cells.as_mut().and_then(|cells| cell(cells).take()) {
        Some(field) => Ok(field),
        None => codec.decode(reader),
    }
}

/// A field of a copy of the value: decoded from the slot again when unchanged since the load,
/// copied through its encoding in the stored format when changed.
pub fn snapshot_cell<F>(
    cell: &Cell<F>,
    dirty: &DirtySet,
    reader: &SlotReader<'_>,
    codec: &Codec<F>,
) -> Result<F, EncodeError> {
    match cell.get() {
        Some(field) if dirty.contains(codec.index()) => {
            let bytes = codec.encode(reader.format, field)?;
            let copy = Slot::new(
                reader.type_name,
                reader.version,
                reader.format,
                vec![(std::borrow::Cow::Borrowed(codec.name()), bytes)],
            );
            let copy_reader =
                SlotReader::new(&copy, reader.format, reader.type_name, reader.version);
            codec.decode(&copy_reader).map_err(|err| match err {
                DecodeError::Field { source, .. } => EncodeError {
                    type_name: reader.type_name,
                    field: codec.name(),
                    source,
                },
                // The copy holds the field: only its bytes can fail to decode.
                other => checked_field_failed(&other),
            })
        }
        _ => match codec.decode(reader) {
            Ok(field) => Ok(field),
            Err(err) => checked_field_failed(&err),
        },
    }
}

/// Encodes a changed field from its cell (for a partial save of a value loaded field by field).
///
/// # Panics
///
/// When the cell is empty: a changed field was reached through `get_mut` or `set`, which fill it.
#[inline]
pub fn encode_cell<F>(
    cell: &Cell<F>,
    format: Format,
    codec: &Codec<F>,
) -> Result<Bytes, EncodeError> {
    match cell.get() {
        Some(field) => codec.encode(format, field),
        None => unreachable!(
            "field `{}` is saved as changed but was never loaded",
            codec.name()
        ),
    }
}

/// The lazy hooks of a type that always loads whole, which are never called.
#[cold]
pub(crate) fn never_lazy(type_name: &'static str) -> ! {
    unreachable!("session type `{type_name}` always loads whole; its lazy hooks are never called")
}
