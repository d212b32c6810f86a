//! The registered session types: only their slots are ever decoded.

use std::any::TypeId;
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::codec::Format;
use crate::errors::{DecodeError, LoadError, RegistryError};
use crate::record::{Record, Slot};
use crate::schema::Session;
use crate::schema::SlotReader;
use crate::schema::lazy::{Origin, State};
use crate::typed::Typed;

/// The set of registered session types, and how often each was migrated from each old version.
///
/// A slot whose `__type__` is not registered is never decoded into anything (TSON's safety
/// rule): it stays in the record, byte for byte, and is written back untouched, so data written
/// by a newer deployment survives an older one. Cloning a registry shares its migration counts.
///
/// ```
/// use sessions::prelude::*;
/// use sessions::Format;
/// use sessions::store::{Record, Registry, Slot};
///
/// #[derive(Session, Default)]
/// #[session(name = "cart")]
/// struct Cart { n: u32 }
///
/// let mut registry = Registry::new();
/// registry.register::<Cart>().unwrap();
///
/// let mut record = Record::new();
/// record.insert(Slot::new("cart", 1, Format::Json, vec![("n".into(), "3".into())]));
/// let cart = registry.load::<Cart>(&record).unwrap().unwrap();
/// assert_eq!(*cart.n(), 3);
/// ```
#[derive(Clone, Default)]
pub struct Registry {
    types: HashMap<&'static str, Arc<Entry>, NameHash>,
    /// The registered type with an `#[session(owner)]` field, if any.
    owner: Option<OwnerType>,
}

/// The hasher of the registry's map: FNV-1a, a few instructions for a type name (every request
/// that takes a typed value looks its type up). Only registered names are ever inserted, so
/// a name chosen to collide (one read from stored data) cannot slow the map down.
#[derive(Clone, Copy, Default)]
struct NameHash;

impl std::hash::BuildHasher for NameHash {
    type Hasher = Fnv;

    fn build_hasher(&self) -> Fnv {
        Fnv(0xcbf2_9ce4_8422_2325)
    }
}

/// FNV-1a, 64 bits.
struct Fnv(u64);

impl std::hash::Hasher for Fnv {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &byte in bytes {
            self.0 = (self.0 ^ u64::from(byte)).wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
}

/// The registered type that says whose session it is.
#[derive(Clone, Copy)]
struct OwnerType {
    name: &'static str,
    rust_type: &'static str,
    read: fn(&Slot) -> Result<Option<String>, DecodeError>,
}

/// The owner a stored slot of `T` names (migrated first when it is older).
fn read_owner<T: Session>(slot: &Slot) -> Result<Option<String>, DecodeError> {
    decode_slot::<T>(slot).map(|(value, _)| T::OWNER.and_then(|owner| owner(&value)))
}

struct Entry {
    type_id: TypeId,
    rust_type: &'static str,
    version: u32,
    /// Migrations counted by the stored version they started from (index 0 = version 1).
    migrations: Box<[AtomicU64]>,
}

/// How many stored slots of one type were migrated from one old version (since the registry
/// was built).
///
/// ```
/// use sessions::migrate::MigrationCount;
/// let count = MigrationCount { type_name: "cart", from_version: 1, to_version: 2, count: 5 };
/// assert_eq!(count.count, 5);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MigrationCount {
    /// The session type's name.
    pub type_name: &'static str,
    /// The stored version migrated from.
    pub from_version: u32,
    /// The current version.
    pub to_version: u32,
    /// How many slots.
    pub count: u64,
}

impl Registry {
    /// An empty registry.
    ///
    /// ```
    /// use sessions::store::Registry;
    /// let registry = Registry::new();
    /// assert_eq!(registry.types().count(), 0);
    /// assert!(!registry.is_registered_name("cart"));
    /// ```
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers `T` (the current version; its `migrate_from` chain comes along). Registering
    /// the same type again does nothing; another type with the same name is an error.
    ///
    /// ```
    /// # use sessions::prelude::*;
    /// # use sessions::store::Registry;
    /// # #[derive(Session, Default)] #[session(name = "cart")] struct Cart { n: u32 }
    /// let mut registry = Registry::new();
    /// registry.register::<Cart>().unwrap();
    /// registry.register::<Cart>().unwrap();
    /// assert!(registry.is_registered::<Cart>());
    /// ```
    pub fn register<T: Session>(&mut self) -> Result<&mut Self, RegistryError> {
        if let Some(entry) = self.types.get(T::NAME) {
            if entry.type_id == TypeId::of::<T>() {
                return Ok(self);
            }
            return Err(RegistryError::DuplicateName {
                name: T::NAME,
                first: entry.rust_type,
                second: std::any::type_name::<T>(),
            });
        }
        if T::OWNER.is_some() {
            if let Some(owner) = &self.owner {
                return Err(RegistryError::TwoOwners {
                    first: owner.rust_type,
                    second: std::any::type_name::<T>(),
                });
            }
            self.owner = Some(OwnerType {
                name: T::NAME,
                rust_type: std::any::type_name::<T>(),
                read: read_owner::<T>,
            });
        }
        let entry = Entry {
            type_id: TypeId::of::<T>(),
            rust_type: std::any::type_name::<T>(),
            version: T::VERSION,
            migrations: (0..T::VERSION).map(|_| AtomicU64::new(0)).collect(),
        };
        self.types.insert(T::NAME, Arc::new(entry));
        Ok(self)
    }

    /// Whether `T` itself is registered.
    ///
    /// ```
    /// use sessions::prelude::*;
    /// use sessions::store::Registry;
    /// #[derive(Session, Default)] #[session(name = "cart")] struct Cart { n: u32 }
    /// #[derive(Session, Default)] #[session(name = "prefs")] struct Prefs { dark: bool }
    /// let mut registry = Registry::new();
    /// registry.register::<Cart>().unwrap();
    /// assert!(registry.is_registered::<Cart>());
    /// assert!(!registry.is_registered::<Prefs>());
    /// ```
    pub fn is_registered<T: Session>(&self) -> bool {
        self.types
            .get(T::NAME)
            .is_some_and(|entry| entry.type_id == TypeId::of::<T>())
    }

    /// Whether some type is registered under `name` (so its slots may be decoded).
    ///
    /// ```
    /// use sessions::prelude::*;
    /// use sessions::store::Registry;
    /// #[derive(Session, Default)]
    /// #[session(name = "basket")]
    /// struct Cart { n: u32 }
    /// let mut registry = Registry::new();
    /// registry.register::<Cart>().unwrap();
    /// assert!(registry.is_registered_name("basket"));
    /// assert!(!registry.is_registered_name("cart"));
    /// ```
    pub fn is_registered_name(&self, name: &str) -> bool {
        self.types.contains_key(name)
    }

    /// The registered names and their current versions.
    ///
    /// ```
    /// use sessions::prelude::*;
    /// use sessions::store::Registry;
    /// #[derive(Session, Default)] #[session(name = "cart", version = 2)] struct Cart { n: u32 }
    /// #[derive(Session, Default)] #[session(name = "prefs")] struct Prefs { dark: bool }
    /// let mut registry = Registry::new();
    /// registry.register::<Cart>().unwrap().register::<Prefs>().unwrap();
    /// let mut types: Vec<_> = registry.types().collect();
    /// types.sort();
    /// assert_eq!(types, [("cart", 2), ("prefs", 1)]);
    /// ```
    pub fn types(&self) -> impl Iterator<Item = (&'static str, u32)> + '_ {
        self.types
            .iter()
            .map(|(name, entry)| (*name, entry.version))
    }

    /// Loads `T`'s slot from a record: `None` when nothing is stored for `T`; an older version is
    /// migrated up the `migrate_from` chain (and counted), and the whole slot will be rewritten
    /// on the next save. The record is never changed.
    ///
    /// ```
    /// use sessions::prelude::*;
    /// use sessions::Format;
    /// use sessions::error::LoadError;
    /// use sessions::store::{Record, Registry, Slot};
    /// #[derive(Session, Default)] #[session(name = "cart")] struct Cart { n: u32 }
    /// let mut registry = Registry::new();
    /// let mut record = Record::new();
    /// assert!(matches!(registry.load::<Cart>(&record), Err(LoadError::NotRegistered { .. })));
    /// registry.register::<Cart>().unwrap();
    /// assert!(registry.load::<Cart>(&record).unwrap().is_none());
    /// record.insert(Slot::new("cart", 1, Format::Json, vec![("n".into(), "4".into())]));
    /// assert_eq!(*registry.load::<Cart>(&record).unwrap().unwrap().n(), 4);
    /// ```
    pub fn load<T: Session>(&self, record: &Record) -> Result<Option<Typed<T>>, LoadError> {
        let entry = self.entry::<T>()?;
        let Some(slot) = record.slot(T::NAME) else {
            return Ok(None);
        };
        if slot.type_tag() != T::NAME {
            return Err(LoadError::TypeMismatch {
                slot: slot.name().to_owned(),
                stored: slot.type_tag().to_owned(),
            });
        }
        if slot.version() == T::VERSION
            && let Some(format) = slot.format()
            // Field by field: only what the slot does not vouch for is decoded now.
            && let Some(state) = State::lazy(record, slot, format)?
        {
            return Ok(Some(Typed::from_state(state)));
        }
        let (value, origin) = decode_slot::<T>(slot)?;
        if let Origin::Migrated { from, .. } = origin {
            if let Some(counter) = entry.migrations.get(from as usize - 1) {
                counter.fetch_add(1, Ordering::Relaxed);
            }
            tracing::info!(
                target: "sessions::migration",
                session_type = T::NAME,
                from_version = from,
                to_version = T::VERSION,
                "migrated a stored session slot"
            );
        }
        // A migrated value is written back whole on the next save, changed or not (see
        // `Typed::changes`).
        Ok(Some(Typed::from_state(State::new(value, origin))))
    }

    /// Like [`Registry::load`], with `T::default()` as a new value when nothing is stored.
    ///
    /// ```
    /// use sessions::prelude::*;
    /// use sessions::store::{Record, Registry};
    /// #[derive(Session)] #[session(name = "cart")] struct Cart { n: u32 }
    /// impl Default for Cart { fn default() -> Self { Cart { n: 1 } } }
    /// let mut registry = Registry::new();
    /// registry.register::<Cart>().unwrap();
    /// let cart = registry.load_or_default::<Cart>(&Record::new()).unwrap();
    /// assert_eq!(*cart.n(), 1);
    /// ```
    pub fn load_or_default<T: Session + Default>(
        &self,
        record: &Record,
    ) -> Result<Typed<T>, LoadError> {
        Ok(self.load::<T>(record)?.unwrap_or_default())
    }

    /// The name of the registered type with an `#[session(owner)]` field, if any.
    ///
    /// ```
    /// use sessions::prelude::*;
    /// use sessions::store::Registry;
    /// #[derive(Session, Default)] #[session(name = "auth")] struct Auth { #[session(owner)] user_id: Option<u64> }
    /// let mut registry = Registry::new();
    /// assert_eq!(registry.owner_type(), None);
    /// registry.register::<Auth>().unwrap();
    /// assert_eq!(registry.owner_type(), Some("auth"));
    /// ```
    pub fn owner_type(&self) -> Option<&'static str> {
        self.owner.map(|owner| owner.name)
    }

    /// The owner `record` names: the rendered `#[session(owner)]` field of the registered type
    /// that has one, `None` when no type has one, the slot is absent, or the field is `None`.
    ///
    /// ```
    /// use sessions::prelude::*;
    /// use sessions::Format;
    /// use sessions::store::{Record, Registry, Slot};
    /// #[derive(Session, Default)] #[session(name = "auth")] struct Auth { #[session(owner)] user_id: Option<u64> }
    /// let mut registry = Registry::new();
    /// registry.register::<Auth>().unwrap();
    /// let mut record = Record::new();
    /// assert_eq!(registry.owner_in(&record).unwrap(), None);
    /// record.insert(Slot::new("auth", 1, Format::Json, vec![("user_id".into(), "42".into())]));
    /// assert_eq!(registry.owner_in(&record).unwrap().as_deref(), Some("42"));
    /// ```
    pub fn owner_in(&self, record: &Record) -> Result<Option<String>, DecodeError> {
        let Some(owner) = &self.owner else {
            return Ok(None);
        };
        match record.slot(owner.name) {
            Some(slot) => (owner.read)(slot),
            None => Ok(None),
        }
    }

    /// The migrations counted so far, by type and stored version, for every registered type.
    ///
    /// ```
    /// # use sessions::store::Registry;
    /// assert!(Registry::new().migration_counts().is_empty());
    /// ```
    pub fn migration_counts(&self) -> Vec<MigrationCount> {
        let mut counts: Vec<MigrationCount> = self
            .types
            .iter()
            .flat_map(|(name, entry)| {
                entry
                    .migrations
                    .iter()
                    .enumerate()
                    .filter_map(|(index, counter)| {
                        let count = counter.load(Ordering::Relaxed);
                        (count > 0).then_some(MigrationCount {
                            type_name: name,
                            from_version: index as u32 + 1,
                            to_version: entry.version,
                            count,
                        })
                    })
            })
            .collect();
        counts.sort_by_key(|c| (c.type_name, c.from_version));
        counts
    }

    fn entry<T: Session>(&self) -> Result<&Entry, LoadError> {
        match self.types.get(T::NAME) {
            Some(entry) if entry.type_id == TypeId::of::<T>() => Ok(entry),
            _ => Err(LoadError::NotRegistered {
                name: T::NAME,
                rust_type: std::any::type_name::<T>(),
            }),
        }
    }
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_map()
            .entries(
                self.types
                    .iter()
                    .map(|(name, entry)| (name, entry.rust_type)),
            )
            .finish()
    }
}

/// Decodes a slot as `T`, walking the `migrate_from` chain for older versions.
pub(crate) fn decode_slot<T: Session>(slot: &Slot) -> Result<(T, Origin), DecodeError> {
    let Some(format) = slot.format() else {
        return Err(DecodeError::UnsupportedFormat {
            type_name: slot.type_tag().to_owned(),
            tag: slot.format_tag(),
        });
    };
    let stored = slot.version();
    if stored > T::VERSION {
        return Err(DecodeError::FutureVersion {
            type_name: T::NAME.to_owned(),
            stored,
            known: T::VERSION,
        });
    }
    let value = decode_version::<T>(slot, format)?;
    let revision = slot.revision();
    let origin = if stored == T::VERSION {
        Origin::Stored { format, revision }
    } else {
        Origin::Migrated {
            from: stored,
            revision,
        }
    };
    Ok((value, origin))
}

fn decode_version<T: Session>(slot: &Slot, format: Format) -> Result<T, DecodeError> {
    let stored = slot.version();
    if stored == T::VERSION {
        return T::assemble(None, &SlotReader::new(slot, format, T::NAME, T::VERSION));
    }
    if stored > T::VERSION || <T::Previous as Session>::VERSION == 0 {
        return Err(DecodeError::UnknownVersion {
            type_name: T::NAME.to_owned(),
            stored,
        });
    }
    decode_version::<T::Previous>(slot, format).map(T::from_previous)
}

/// Rewrites a stored slot of `T` in the current version when it is older: decoded as the
/// matching older type, walked up the `From` chain, encoded whole in `format`. `None` when the
/// slot is current already. Stores' `migrate_all::<T>()` calls it for every stored slot of `T`.
///
/// ```
/// use sessions::prelude::*;
/// use sessions::Format;
/// use sessions::store::Slot;
/// use sessions::migrate::migrate_slot;
///
/// #[derive(Session, Default)]
/// #[session(name = "cart", version = 1)]
/// struct CartV1 { n: u32 }
/// #[derive(Session, Default)]
/// #[session(name = "cart", version = 2, migrate_from = CartV1)]
/// struct Cart { n: u64 }
/// impl From<CartV1> for Cart { fn from(v1: CartV1) -> Self { Cart { n: v1.n.into() } } }
///
/// let old = Slot::new("cart", 1, Format::Json, vec![("n".into(), "7".into())]);
/// let new = migrate_slot::<Cart>(&old, Format::Json).unwrap().unwrap();
/// assert_eq!(new.version(), 2);
/// assert!(migrate_slot::<Cart>(&new, Format::Json).unwrap().is_none());
/// ```
pub fn migrate_slot<T: Session>(slot: &Slot, format: Format) -> Result<Option<Slot>, LoadError> {
    if slot.type_tag() != T::NAME {
        return Err(LoadError::TypeMismatch {
            slot: slot.name().to_owned(),
            stored: slot.type_tag().to_owned(),
        });
    }
    if slot.version() == T::VERSION {
        return Ok(None);
    }
    let (value, _) = decode_slot::<T>(slot)?;
    let fields = (0..T::FIELDS.len())
        .map(|index| {
            Ok((
                std::borrow::Cow::Borrowed(T::FIELDS[index]),
                value.encode_field(index, format)?,
            ))
        })
        .collect::<Result<Vec<_>, crate::errors::EncodeError>>()
        .map_err(LoadError::Encode)?;
    Ok(Some(Slot::new(T::NAME, T::VERSION, format, fields)))
}

/// What an eager migration of every stored slot of one type did.
///
/// ```
/// use sessions::migrate::MigrationReport;
/// let mut report = MigrationReport::default();
/// report.migrated.insert(1, 10);
/// assert_eq!(report.total_migrated(), 10);
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MigrationReport {
    /// Slots rewritten, by the version they were stored at.
    pub migrated: std::collections::BTreeMap<u32, u64>,
    /// Slots that were current already.
    pub current: u64,
    /// Slots that could not be migrated (a future or unknown version, undecodable data); left as they are.
    pub failed: u64,
}

impl MigrationReport {
    /// How many slots were rewritten.
    ///
    /// ```
    /// use sessions::migrate::MigrationReport;
    /// let mut report = MigrationReport { current: 10, failed: 1, ..Default::default() };
    /// report.migrated.insert(1, 3);
    /// report.migrated.insert(2, 4);
    /// assert_eq!(report.total_migrated(), 7); // neither `current` nor `failed` counts
    /// ```
    pub fn total_migrated(&self) -> u64 {
        self.migrated.values().sum()
    }
}
