//! The [`Session`] trait: what `#[derive(Session)]` implements.

use bytes::Bytes;

use crate::codec::Format;
use crate::dirty::DirtySet;
use crate::errors::{DecodeError, EncodeError};
pub(crate) mod fields;
pub(crate) mod lazy;

pub(crate) use fields::{Codec, SlotReader};
pub(crate) use lazy::{Access, State};

/// A typed session slot: a struct whose fields are stored one by one under a versioned type name.
///
/// Implement it with `#[derive(Session)]`; writing the impl by hand is not supported (the hidden
/// items may change in any release). See the crate docs for the derive's attributes.
///
/// ```
/// use sessions::prelude::*;
///
/// #[derive(Session, Default)]
/// #[session(name = "cart", version = 2)]
/// struct Cart {
///     items: Vec<String>,
///     #[session(rename = "code")]
///     coupon: Option<String>,
/// }
///
/// assert_eq!(Cart::NAME, "cart");
/// assert_eq!(Cart::VERSION, 2);
/// assert_eq!(Cart::FIELDS, ["items", "code"]);
/// ```
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a session type",
    label = "`{Self}` does not implement `Session`",
    note = "add `#[derive(Session)]` to `{Self}` (and `#[session(name = \"..\", version = N)]`)"
)]
pub trait Session: Sized + Send + Sync + 'static {
    /// The type name stored in every slot as `__type__`; the key of the slot in a record.
    const NAME: &'static str;
    /// The schema version stored in every slot as `__v__` (1 or more).
    const VERSION: u32;
    /// The stored names of the stored fields, in declaration order (`skip` fields excluded).
    const FIELDS: &'static [&'static str];

    /// The type of the previous version (`migrate_from`), or [`NoPrevious`] when there is none.
    type Previous: Session;

    /// Encodes the field at `index` (an index into [`Session::FIELDS`]) in `format`.
    ///
    /// # Panics
    ///
    /// When `index` is not below `FIELDS.len()`, as slice indexing does.
    fn encode_field(&self, index: usize, format: Format) -> Result<Bytes, EncodeError>;

    /// Turns a value of the previous version into this one (through `From`).
    fn from_previous(previous: Self::Previous) -> Self;

    /// The accessor type `Typed<Self>` dereferences to: a wrapper of the value's state.
    #[doc(hidden)]
    type Access: Access<Self>;

    /// One cell per stored field, for loading field by field (`()` for a type that always
    /// loads whole).
    #[doc(hidden)]
    type Cells: Send + Sync + 'static;

    /// The whole value: the fields in `cells` (taken), the others decoded from the slot.
    /// Decoding a slot eagerly is `assemble(None, reader)`.
    #[doc(hidden)]
    fn assemble(cells: Option<Self::Cells>, reader: &SlotReader<'_>) -> Result<Self, DecodeError>;

    /// Cells for a value loaded field by field: every stored field whose bytes the slot does
    /// not vouch for is decoded now. `None` (the default): the type always loads whole, and
    /// the two hooks below are never called.
    #[doc(hidden)]
    fn load_cells(reader: &SlotReader<'_>) -> Result<Option<Self::Cells>, DecodeError> {
        let _ = reader;
        Ok(None)
    }

    /// A copy of the value held in `cells` and the slot; the `dirty` fields are copied
    /// through their encoding.
    #[doc(hidden)]
    fn snapshot(
        cells: &Self::Cells,
        dirty: &DirtySet,
        reader: &SlotReader<'_>,
    ) -> Result<Self, EncodeError> {
        let _ = (cells, dirty, reader);
        lazy::never_lazy(Self::NAME)
    }

    /// Encodes the stored field at `index` from its (filled) cell.
    #[doc(hidden)]
    fn encode_cell(
        cells: &Self::Cells,
        index: usize,
        format: Format,
    ) -> Result<Bytes, EncodeError> {
        let _ = (cells, index, format);
        lazy::never_lazy(Self::NAME)
    }

    /// How to render the `#[session(owner)]` field (`"42"` for `user_id: Some(42)`), when the
    /// type has one.
    #[doc(hidden)]
    const OWNER: Option<fn(&Self) -> Option<String>> = None;
}

/// The end of every migration chain: the `Previous` of a session type without `migrate_from`.
///
/// It has no values, so nothing is ever decoded as it.
///
/// ```
/// use sessions::prelude::*;
/// use sessions::Session;
/// use sessions::migrate::NoPrevious;
///
/// #[derive(Session, Default)]
/// #[session(name = "prefs")]
/// struct Prefs { dark: bool }
///
/// assert_eq!(<<Prefs as Session>::Previous as Session>::VERSION, 0);
/// # let _: Option<NoPrevious> = None;
/// ```
#[derive(Debug)]
pub enum NoPrevious {}

impl Session for NoPrevious {
    const NAME: &'static str = "";
    const VERSION: u32 = 0;
    const FIELDS: &'static [&'static str] = &[];
    type Previous = NoPrevious;
    type Access = State<NoPrevious, ()>;
    type Cells = ();

    fn encode_field(&self, _index: usize, _format: Format) -> Result<Bytes, EncodeError> {
        match *self {}
    }

    fn from_previous(previous: NoPrevious) -> Self {
        previous
    }

    fn assemble(_cells: Option<()>, reader: &SlotReader<'_>) -> Result<Self, DecodeError> {
        Err(DecodeError::UnknownVersion {
            type_name: reader.type_name().to_owned(),
            stored: reader.version(),
        })
    }
}
