//! A session type at version 3 with a `migrate_from` chain down to version 1, and the input
//! `typed_decode` builds records from: raw record bytes, or slots assembled field by field.

use std::collections::BTreeMap;

use arbitrary::Arbitrary;
use bytes::Bytes;
use serde::{Deserialize, Serialize};
use sessions::{Format, Session};
use sessions::store::{Name, Record, Slot};

/// A role: an enum of every shape serde has (unit, struct, newtype variant).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, Arbitrary)]
pub enum Role {
    Guest,
    User { id: u64 },
    Admin(String),
}

/// Version 1: a user name and an admin flag.
#[derive(Session, Default, Debug, Clone, PartialEq)]
#[session(name = "account", version = 1)]
pub struct AccountV1 {
    pub user: String,
    pub admin: bool,
}

/// Version 2: roles instead of the flag, and a visit counter that old data may lack.
#[derive(Session, Default, Debug, Clone, PartialEq)]
#[session(name = "account", version = 2, migrate_from = AccountV1)]
pub struct AccountV2 {
    pub user: String,
    pub roles: Vec<Role>,
    #[session(default)]
    pub visits: u32,
}

/// Version 3, the current one: wider counter, a renamed map field, a skipped cache, a tuple.
#[derive(Session, Default, Debug, Clone, PartialEq)]
#[session(name = "account", version = 3, migrate_from = AccountV2)]
pub struct Account {
    pub user: String,
    pub roles: Vec<Role>,
    pub visits: u64,
    #[session(rename = "prefs")]
    pub settings: BTreeMap<String, Option<i32>>,
    #[session(skip)]
    pub cache: u8,
    #[session(default)]
    pub last: Option<(u16, char)>,
}

impl From<AccountV1> for AccountV2 {
    fn from(v1: AccountV1) -> Self {
        let roles = if v1.admin {
            vec![Role::Admin(v1.user.clone())]
        } else {
            vec![Role::User {
                id: v1.user.len() as u64,
            }]
        };
        AccountV2 {
            user: v1.user,
            roles,
            visits: 0,
        }
    }
}

impl From<AccountV2> for Account {
    fn from(v2: AccountV2) -> Self {
        Account {
            user: v2.user,
            roles: v2.roles,
            visits: u64::from(v2.visits),
            settings: BTreeMap::new(),
            cache: 0,
            last: None,
        }
    }
}

/// Names the fuzzer picks from, so that slot and field names hit what the types know.
const NAMES: &[&str] = &[
    "account", "user", "admin", "roles", "visits", "prefs", "last", "cache", "settings", "other",
    "__expiry", "__type__", "__v__", "",
];

/// A slot or field name: a known one, or any text.
#[derive(Arbitrary, Debug)]
pub enum NameInput {
    Known(u8),
    Text(String),
}

impl NameInput {
    fn name(&self) -> Name {
        match self {
            NameInput::Known(index) => Name::Borrowed(NAMES[usize::from(*index) % NAMES.len()]),
            NameInput::Text(text) => Name::Owned(text.clone()),
        }
    }
}

/// A field's bytes: any bytes, or a value of some type encoded in the slot's format, so the
/// decoder gets past the codec and into the types, their defaults and the migrations.
#[derive(Arbitrary, Debug)]
pub enum ValueInput {
    Raw(Vec<u8>),
    Str(String),
    Bool(bool),
    U8(u8),
    U32(u32),
    U64(u64),
    I64(i64),
    Roles(Vec<Role>),
    Settings(BTreeMap<String, Option<i32>>),
    Last(Option<(u16, char)>),
    Unit,
}

impl ValueInput {
    fn bytes(&self, format: Option<Format>) -> Bytes {
        let Some(format) = format else {
            return match self {
                ValueInput::Raw(raw) => Bytes::copy_from_slice(raw),
                _ => Bytes::new(),
            };
        };
        let encoded = match self {
            ValueInput::Raw(raw) => return Bytes::copy_from_slice(raw),
            ValueInput::Str(v) => format.encode(v),
            ValueInput::Bool(v) => format.encode(v),
            ValueInput::U8(v) => format.encode(v),
            ValueInput::U32(v) => format.encode(v),
            ValueInput::U64(v) => format.encode(v),
            ValueInput::I64(v) => format.encode(v),
            ValueInput::Roles(v) => format.encode(v),
            ValueInput::Settings(v) => format.encode(v),
            ValueInput::Last(v) => format.encode(v),
            ValueInput::Unit => format.encode(&()),
        };
        match encoded {
            Ok(bytes) => bytes,
            Err(err) => panic!("a plain value does not encode in {format}: {err}"),
        }
    }
}

/// One slot, assembled from parts.
#[derive(Arbitrary, Debug)]
pub struct SlotInput {
    pub name: NameInput,
    /// `None`: built with `Slot::new` (the tag is the name); `Some`: with `Slot::from_parts`.
    pub type_tag: Option<NameInput>,
    /// Taken modulo 6: versions 0 to 5 around the current 3.
    pub version: u8,
    /// 0: JSON, 1: bincode, anything else: that raw tag (255 - n).
    pub format: u8,
    pub fields: Vec<(NameInput, ValueInput)>,
}

impl SlotInput {
    pub fn slot(&self) -> Slot {
        let (tag, format) = match self.format {
            0 => (1, Some(Format::Json)),
            1 => (2, Some(Format::Bincode)),
            other => (255 - other, None),
        };
        let format_of_values = format.or(match tag {
            1 => Some(Format::Json),
            2 => Some(Format::Bincode),
            _ => None,
        });
        let fields = self
            .fields
            .iter()
            .map(|(name, value)| (name.name(), value.bytes(format_of_values)))
            .collect();
        let version = u32::from(self.version % 6);
        match (&self.type_tag, format) {
            (None, Some(format)) => Slot::new(self.name.name(), version, format, fields),
            (tag_input, _) => Slot::from_parts(
                self.name.name(),
                tag_input
                    .as_ref()
                    .map_or_else(|| self.name.name(), NameInput::name),
                version,
                tag,
                fields,
            ),
        }
    }
}

/// What `typed_decode` decodes: stored bytes as they come, or a record of assembled slots.
#[derive(Arbitrary, Debug)]
pub enum TypedInput {
    Bytes(Vec<u8>),
    Slots(Vec<SlotInput>),
}

impl TypedInput {
    /// The record, when the bytes are one.
    pub fn record(&self) -> Option<Record> {
        match self {
            TypedInput::Bytes(bytes) => Record::from_bytes(bytes).ok(),
            TypedInput::Slots(slots) => {
                let mut record = Record::new();
                for slot in slots {
                    record.insert(slot.slot());
                }
                Some(record)
            }
        }
    }
}

/// `value`'s current-version slot, every field encoded in `format`.
pub fn encode_whole<T: Session>(value: &T, format: Format) -> Slot {
    let fields = (0..T::FIELDS.len())
        .map(|index| match value.encode_field(index, format) {
            Ok(bytes) => (Name::Borrowed(T::FIELDS[index]), bytes),
            Err(err) => panic!("a decoded value does not encode in {format}: {err}"),
        })
        .collect();
    Slot::new(T::NAME, T::VERSION, format, fields)
}
