//! What `#[derive(Session)]` expands to calls into. Not public API: nothing here is covered by
//! semver, and only generated code should name it.

mod lazy;

use std::fmt;

pub use bytes::Bytes;
pub use serde::Serialize;
pub use serde::de::DeserializeOwned;

pub use crate::codec::Format;
pub use crate::error::{DecodeError, EncodeError};
pub use crate::record::Slot;
pub use crate::schema::{NoPrevious, Session};

pub use crate::dirty::DirtySet;

pub use lazy::{
    Access, Cell, Origin, State, check_cell, encode_cell, get, get_mut, never_lazy, set,
    snapshot_cell, take_cell, unmarked, value,
};

/// Encodes one field.
#[inline]
pub fn encode<F: Serialize + ?Sized>(
    format: Format,
    type_name: &'static str,
    field: &'static str,
    value: &F,
) -> Result<Bytes, EncodeError> {
    format.encode(value).map_err(|source| EncodeError {
        type_name,
        field,
        source,
    })
}

/// The answer to an index past the stored fields (only a hand-written caller can ask).
#[cold]
pub fn no_such_field(type_name: &'static str, index: usize) -> Result<Bytes, EncodeError> {
    Err(EncodeError {
        type_name,
        field: "<no such field>",
        source: crate::codec::CodecError::Json(serde::ser::Error::custom(format_args!(
            "session type `{type_name}` has no stored field at index {index}"
        ))),
    })
}

/// A slot being decoded as one version of a session type.
pub struct SlotReader<'a> {
    slot: &'a Slot,
    format: Format,
    type_name: &'static str,
    version: u32,
}

impl<'a> SlotReader<'a> {
    pub(crate) fn new(
        slot: &'a Slot,
        format: Format,
        type_name: &'static str,
        version: u32,
    ) -> Self {
        Self {
            slot,
            format,
            type_name,
            version,
        }
    }

    /// The stored type tag.
    pub fn type_name(&self) -> &str {
        self.slot.type_tag()
    }

    /// The stored version.
    pub fn version(&self) -> u32 {
        self.slot.version()
    }
}

/// Decodes a stored field; a missing one decodes as serde would decode a missing field
/// (`None` for an `Option`, an error otherwise).
pub fn field<F: DeserializeOwned>(
    reader: &SlotReader<'_>,
    name: &'static str,
) -> Result<F, DecodeError> {
    match reader.slot.field(name) {
        Some(bytes) => decode_present(reader, name, bytes),
        None => F::deserialize(MissingField).map_err(|_| DecodeError::MissingField {
            type_name: reader.type_name,
            version: reader.version,
            field: name,
        }),
    }
}

/// Decodes a stored `#[session(default)]` field; a missing one takes its `Default`.
pub fn field_or_default<F: DeserializeOwned + Default>(
    reader: &SlotReader<'_>,
    name: &'static str,
) -> Result<F, DecodeError> {
    match reader.slot.field(name) {
        Some(bytes) => decode_present(reader, name, bytes),
        None => Ok(F::default()),
    }
}

fn decode_present<F: DeserializeOwned>(
    reader: &SlotReader<'_>,
    name: &'static str,
    bytes: &[u8],
) -> Result<F, DecodeError> {
    reader
        .format
        .decode(bytes)
        .map_err(|source| DecodeError::Field {
            type_name: reader.type_name,
            version: reader.version,
            field: name,
            source,
        })
}

/// A deserializer for a field that is not there: `Option`s become `None`, all else fails.
struct MissingField;

#[derive(Debug)]
struct Missing;

impl fmt::Display for Missing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("missing field")
    }
}

impl std::error::Error for Missing {}

impl serde::de::Error for Missing {
    fn custom<M: fmt::Display>(_msg: M) -> Self {
        Missing
    }
}

impl<'de> serde::Deserializer<'de> for MissingField {
    type Error = Missing;

    fn deserialize_any<V: serde::de::Visitor<'de>>(self, _visitor: V) -> Result<V::Value, Missing> {
        Err(Missing)
    }

    fn deserialize_option<V: serde::de::Visitor<'de>>(
        self,
        visitor: V,
    ) -> Result<V::Value, Missing> {
        visitor.visit_none()
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        bytes byte_buf unit unit_struct newtype_struct seq tuple
        tuple_struct map struct enum identifier ignored_any
    }
}

/// `migrate_from = P` needs `Self: From<P>`; this trait carries the message that says so.
#[diagnostic::on_unimplemented(
    message = "`{Self}` declares `migrate_from = {P}` but cannot be made from it",
    label = "missing `impl From<{P}> for {Self}`",
    note = "write `impl From<{P}> for {Self} {{ fn from(old: {P}) -> Self {{ .. }} }}` to say how an old value becomes a new one"
)]
pub trait MigrateFrom<P> {
    /// The migration.
    fn migrate(previous: P) -> Self;
}

impl<T: From<P>, P> MigrateFrom<P> for T {
    #[inline]
    fn migrate(previous: P) -> Self {
        T::from(previous)
    }
}

/// Migrates through `From`.
#[inline]
pub fn migrate<T: MigrateFrom<P>, P>(previous: P) -> T {
    T::migrate(previous)
}

/// The end of a chain: nothing to migrate from.
#[inline]
pub fn no_previous<T>(previous: NoPrevious) -> T {
    match previous {}
}

/// Checks a `migrate_from` link at compile time: same name, lower version.
pub const fn check_migration<T: Session, P: Session>() {
    if !str_eq(T::NAME, P::NAME) {
        panic!(
            "`migrate_from` names a session type with another `name`: a type and the type it migrates from must share #[session(name = \"..\")]"
        );
    }
    if P::VERSION >= T::VERSION {
        panic!(
            "`migrate_from` names a session type whose `version` is not lower: the older type needs a lower #[session(version = N)]"
        );
    }
}

const fn str_eq(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.len() != b.len() {
        return false;
    }
    let mut i = 0;
    while i < a.len() {
        if a[i] != b[i] {
            return false;
        }
        i += 1;
    }
    true
}

/// The value of a `skip` field on load.
#[inline]
pub fn skipped<F: Default>() -> F {
    F::default()
}

/// The decode of the stand-in impl emitted beside derive errors; never reached, since the
/// crate does not compile.
#[cold]
pub fn invalid_derive<T>(reader: &SlotReader<'_>) -> Result<T, DecodeError> {
    Err(DecodeError::UnknownVersion {
        type_name: reader.type_name().to_owned(),
        stored: reader.version(),
    })
}
