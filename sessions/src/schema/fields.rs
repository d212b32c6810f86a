//! What generated code calls (through `__private`) for one field: its [`Codec`], the migration
//! link check, the owner field; and [`SlotReader`], a slot as a type's fields read it.

use std::fmt;

use bytes::Bytes;
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::{NoPrevious, Session};
use crate::codec::{CodecError, Format};
use crate::errors::{DecodeError, EncodeError};
use crate::record::Slot;

/// How one stored field is encoded and decoded. The derive makes one per stored field, as an
/// associated const of the accessor type, through [`codec`] or [`codec_or_default`]: the only
/// places that need the field's serde impls, so a missing impl is reported once, at the field's
/// type.
pub struct Codec<F> {
    /// The field's index in [`Session::FIELDS`].
    index: usize,
    type_name: &'static str,
    /// The stored name.
    name: &'static str,
    encode: fn(Format, &F) -> Result<Bytes, CodecError>,
    decode: fn(Format, &[u8]) -> Result<F, CodecError>,
    /// The value of a field missing from the slot, if it has one.
    missing: fn() -> Option<F>,
}

/// The codec of a field that a slot must hold, unless it is an `Option` (missing is `None`, as
/// in serde).
pub const fn codec<F: Serialize + DeserializeOwned>(
    index: usize,
    type_name: &'static str,
    name: &'static str,
) -> Codec<F> {
    Codec {
        index,
        type_name,
        name,
        encode: encode_value::<F>,
        decode: decode_value::<F>,
        missing: missing_value::<F>,
    }
}

/// The codec of a `#[session(default)]` field: missing from the slot, it takes its `Default`.
pub const fn codec_or_default<F: Serialize + DeserializeOwned + Default>(
    index: usize,
    type_name: &'static str,
    name: &'static str,
) -> Codec<F> {
    Codec {
        missing: default_value::<F>,
        ..codec(index, type_name, name)
    }
}

fn encode_value<F: Serialize>(format: Format, value: &F) -> Result<Bytes, CodecError> {
    format.encode(value)
}

fn decode_value<F: DeserializeOwned>(format: Format, bytes: &[u8]) -> Result<F, CodecError> {
    format.decode(bytes)
}

/// A missing field decodes as serde decodes one: `None` for an `Option`, an error otherwise.
fn missing_value<F: DeserializeOwned>() -> Option<F> {
    F::deserialize(MissingField).ok()
}

fn default_value<F: Default>() -> Option<F> {
    Some(F::default())
}

impl<F> Codec<F> {
    /// The field's index in [`Session::FIELDS`].
    #[inline]
    pub(crate) fn index(&self) -> usize {
        self.index
    }

    /// The stored name.
    #[inline]
    pub(crate) fn name(&self) -> &'static str {
        self.name
    }

    /// Encodes the field's value.
    #[inline]
    pub fn encode(&self, format: Format, value: &F) -> Result<Bytes, EncodeError> {
        (self.encode)(format, value).map_err(|source| EncodeError {
            type_name: self.type_name,
            field: self.name,
            source,
        })
    }

    /// Where the field sits in `slot` (in stored order) and its bytes. A slot written by this
    /// type holds its fields in declaration order: the field's own index is looked at first.
    #[inline]
    pub(crate) fn find<'a>(&self, slot: &'a Slot) -> Option<(usize, &'a [u8])> {
        match slot.field_at(self.index) {
            Some((name, bytes)) if name == self.name => Some((self.index, bytes)),
            _ => {
                let position = slot.position(self.name)?;
                Some((position, slot.field_at(position)?.1))
            }
        }
    }

    /// Decodes the field from a slot.
    pub fn decode(&self, reader: &SlotReader<'_>) -> Result<F, DecodeError> {
        match self.find(reader.slot).map(|(_, bytes)| bytes) {
            Some(bytes) => {
                (self.decode)(reader.format, bytes).map_err(|source| DecodeError::Field {
                    type_name: reader.type_name,
                    version: reader.version,
                    field: self.name,
                    source,
                })
            }
            None => (self.missing)().ok_or(DecodeError::MissingField {
                type_name: reader.type_name,
                version: reader.version,
                field: self.name,
            }),
        }
    }
}

/// The answer to an index past the stored fields: a caller's mistake, as an index out of
/// bounds is.
#[cold]
#[track_caller]
pub fn no_such_field(type_name: &'static str, index: usize) -> ! {
    panic!("session type `{type_name}` has no stored field at index {index}")
}

/// A slot being decoded as one version of a session type.
pub struct SlotReader<'a> {
    pub(super) slot: &'a Slot,
    pub(super) format: Format,
    pub(super) type_name: &'static str,
    pub(super) version: u32,
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
        Message::new()
            .text("`migrate_from` names a session type stored as `")
            .text(P::NAME)
            .text("`, but this type is stored as `")
            .text(T::NAME)
            .text("`: a type and the type it migrates from must share #[session(name = \"")
            .text(T::NAME)
            .text("\")]")
            .panic();
    }
    if P::VERSION >= T::VERSION {
        Message::new()
            .text("`migrate_from` names a session type at version ")
            .number(P::VERSION)
            .text(", not lower than this type's version ")
            .number(T::VERSION)
            .text(": the older type needs a lower #[session(version = N)]")
            .panic();
    }
}

/// A compile-time error message built from the names and versions in it (a `const fn` can
/// only panic with one `&str`).
struct Message {
    bytes: [u8; 512],
    len: usize,
}

impl Message {
    const fn new() -> Self {
        Self {
            bytes: [0; 512],
            len: 0,
        }
    }

    const fn text(mut self, text: &str) -> Self {
        let text = text.as_bytes();
        let mut i = 0;
        while i < text.len() && self.len < self.bytes.len() {
            self.bytes[self.len] = text[i];
            self.len += 1;
            i += 1;
        }
        self
    }

    const fn number(mut self, mut n: u32) -> Self {
        let mut digits = [0u8; 10];
        let mut count = 0;
        loop {
            digits[count] = b'0' + (n % 10) as u8;
            count += 1;
            n /= 10;
            if n == 0 {
                break;
            }
        }
        while count > 0 && self.len < self.bytes.len() {
            count -= 1;
            self.bytes[self.len] = digits[count];
            self.len += 1;
        }
        self
    }

    const fn panic(self) -> ! {
        let (text, _) = self.bytes.split_at(self.len);
        match std::str::from_utf8(text) {
            Ok(text) => panic!("{}", text),
            // Cut inside a character at the size limit: the start still says what is wrong.
            Err(_) => panic!("`migrate_from` does not fit: see the session type's attributes"),
        }
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

/// The body of every function of the stand-in impl emitted beside derive errors; never
/// reached, since the crate does not compile.
#[cold]
pub fn invalid_derive() -> ! {
    unreachable!("a session type whose derive failed is never compiled")
}

/// What an `#[session(owner)]` field can be: an `Option` of something rendered with `Display`
/// (`Some(42u64)` is owner `"42"`; `None` is no owner).
#[diagnostic::on_unimplemented(
    message = "an `#[session(owner)]` field must be an `Option<T>` with `T: Display`, not `{Self}`",
    label = "not an `Option` of something `Display`",
    note = "write e.g. `#[session(owner)] user_id: Option<u64>`: `Some(42)` binds the session to owner \"42\", `None` unbinds it"
)]
pub trait OwnerField {
    /// The owner, rendered.
    fn rendered(&self) -> Option<String>;
}

impl<T: fmt::Display> OwnerField for Option<T> {
    fn rendered(&self) -> Option<String> {
        self.as_ref().map(ToString::to_string)
    }
}

/// The owner an `#[session(owner)]` field names.
pub fn render_owner<F: OwnerField>(field: &F) -> Option<String> {
    field.rendered()
}
