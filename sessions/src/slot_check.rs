//! What is known about a stored slot's field bytes beyond the bytes themselves: a cache that
//! survives while a slot is shared (a `MemoryStore` hands out the same slots to every request).
//!
//! The first load of a slot as a session type decodes every field, as a check; the fields that
//! decoded are recorded here, so later loads of the same shared slot skip the check and decode
//! only the fields a handler touches (lazy decoding, see `private::State`).

use std::any::TypeId;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

/// Facts about a slot's field bytes, kept beside them: "the bytes of field `i` (in stored order)
/// decode as the field of that name of the session type `owner`". Only the first 64 fields are
/// tracked; the others are checked on every load. Cleared field by field as fields change.
///
/// Every request that loads a slot a `MemoryStore` holds reads and records into the same bits
/// (they sit in the shared slot); a changed slot is a new one, whose bits are its own.
#[derive(Debug, Default)]
pub(crate) struct SlotCheck {
    /// The session type the bits speak for: the first type that checked the slot.
    owner: OnceLock<TypeId>,
    /// Bit `i`: field `i` decodes as `owner`'s field of that name.
    valid: AtomicU64,
}

impl SlotCheck {
    /// The field at `index` (in stored order) got new bytes.
    pub(crate) fn field_changed(&mut self, index: usize) {
        if let Some(bit) = bit(index) {
            *self.valid.get_mut() &= !bit;
        }
    }

    /// Whether the bytes of the field at `index` are known to decode as `owner`'s field.
    pub(crate) fn is_valid(&self, owner: TypeId, index: usize) -> bool {
        match bit(index) {
            Some(bit) => {
                self.owner.get() == Some(&owner) && self.valid.load(Ordering::Acquire) & bit != 0
            }
            None => false,
        }
    }

    /// Records that the bytes of the field at `index` decoded as `owner`'s field. Ignored when
    /// another type checked the slot first (its bits stay as they are).
    pub(crate) fn set_valid(&self, owner: TypeId, index: usize) {
        if let Some(bit) = bit(index)
            && *self.owner.get_or_init(|| owner) == owner
        {
            self.valid.fetch_or(bit, Ordering::Release);
        }
    }
}

/// The bit of field `index`, if it is tracked.
fn bit(index: usize) -> Option<u64> {
    (index < 64).then(|| 1 << index)
}

impl Clone for SlotCheck {
    /// A copy knows what the original knows now; the two then change apart.
    fn clone(&self) -> Self {
        Self {
            owner: self.owner.clone(),
            valid: AtomicU64::new(self.valid.load(Ordering::Acquire)),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::any::TypeId;

    use super::SlotCheck;

    struct A;
    struct B;

    #[test]
    fn remembers_fields_per_owner_and_forgets_changed_ones() {
        let mut check = SlotCheck::default();
        let (a, b) = (TypeId::of::<A>(), TypeId::of::<B>());
        assert!(!check.is_valid(a, 0));
        check.set_valid(a, 0);
        check.set_valid(a, 2);
        assert!(check.is_valid(a, 0) && check.is_valid(a, 2) && !check.is_valid(a, 1));
        // Another type never reads or writes the first type's bits.
        assert!(!check.is_valid(b, 0));
        check.set_valid(b, 1);
        assert!(!check.is_valid(b, 1) && !check.is_valid(a, 1));
        // A clone knows the same; a change clears one field in one copy only.
        let copy = check.clone();
        check.field_changed(0);
        assert!(!check.is_valid(a, 0) && check.is_valid(a, 2));
        assert!(copy.is_valid(a, 0) && copy.is_valid(a, 2));
        // Fields past 64 are never remembered.
        check.set_valid(a, 64);
        assert!(!check.is_valid(a, 64));
        check.field_changed(64);
    }
}
