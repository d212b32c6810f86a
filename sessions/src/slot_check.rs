//! What is known about a stored slot's field bytes beyond the bytes themselves: a cache that
//! survives while a slot is shared (a `MemoryStore` hands out the same slots to every request).
//!
//! The first load of a slot as a session type decodes every field, as a check; the fields that
//! decoded are recorded here, so later loads of the same shared slot skip the check and decode
//! only the fields a handler touches (lazy decoding, see `private::State`).

use std::any::TypeId;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

/// Facts about a slot's field bytes, kept beside them: "the bytes of field `i` (in stored order)
/// decode as the field of that name of the session type `owner`". Only the first 64 fields are
/// tracked; the others are checked on every load. Cleared field by field as fields change.
///
/// The bits are the slot's own, or shared with a compact `MemoryStore` entry (every slot loaded
/// from the entry's bytes reads and records into the entry's bits, since they hold the same
/// bytes); a change to a field makes them the slot's own again.
#[derive(Debug)]
pub(crate) enum SlotCheck {
    Own(CheckBits),
    /// Bits `index` of a stored entry's.
    Shared(Arc<[CheckBits]>, usize),
}

/// The bits of one slot (see [`SlotCheck`]).
#[derive(Debug, Default)]
pub(crate) struct CheckBits {
    /// The session type the bits speak for: the first type that checked the slot.
    owner: OnceLock<TypeId>,
    /// Bit `i`: field `i` decodes as `owner`'s field of that name.
    valid: AtomicU64,
}

impl Default for SlotCheck {
    fn default() -> Self {
        SlotCheck::Own(CheckBits::default())
    }
}

impl SlotCheck {
    /// What this slot's bits are now.
    pub(crate) fn bits(&self) -> &CheckBits {
        match self {
            SlotCheck::Own(bits) => bits,
            SlotCheck::Shared(all, index) => all.get(*index).unwrap_or(&EMPTY),
        }
    }

    /// The field at `index` (in stored order) got new bytes.
    pub(crate) fn field_changed(&mut self, index: usize) {
        if let SlotCheck::Shared(..) = self {
            *self = SlotCheck::Own(self.bits().clone());
        }
        if let (SlotCheck::Own(bits), Some(bit)) = (self, bit(index)) {
            *bits.valid.get_mut() &= !bit;
        }
    }

    /// Whether the bytes of the field at `index` are known to decode as `owner`'s field.
    pub(crate) fn is_valid(&self, owner: TypeId, index: usize) -> bool {
        let bits = self.bits();
        match bit(index) {
            Some(bit) => {
                bits.owner.get() == Some(&owner) && bits.valid.load(Ordering::Acquire) & bit != 0
            }
            None => false,
        }
    }

    /// Records that the bytes of the field at `index` decoded as `owner`'s field. Ignored when
    /// another type checked the slot first (its bits stay as they are).
    pub(crate) fn set_valid(&self, owner: TypeId, index: usize) {
        let bits = self.bits();
        if let Some(bit) = bit(index)
            && *bits.owner.get_or_init(|| owner) == owner
        {
            bits.valid.fetch_or(bit, Ordering::Release);
        }
    }
}

/// What a shared index out of range reads as (it cannot happen: entries make both together).
static EMPTY: CheckBits = CheckBits {
    owner: OnceLock::new(),
    valid: AtomicU64::new(0),
};

/// The bit of field `index`, if it is tracked.
fn bit(index: usize) -> Option<u64> {
    (index < 64).then(|| 1 << index)
}

impl Clone for CheckBits {
    /// A copy knows what the original knows now; the two then change apart.
    fn clone(&self) -> Self {
        Self {
            owner: self.owner.clone(),
            valid: AtomicU64::new(self.valid.load(Ordering::Acquire)),
        }
    }
}

impl Clone for SlotCheck {
    /// A copy knows what the original knows now. Own bits are copied and then change apart;
    /// shared bits stay shared (they speak of bytes both copies hold until one changes a field).
    fn clone(&self) -> Self {
        match self {
            SlotCheck::Own(bits) => SlotCheck::Own(bits.clone()),
            SlotCheck::Shared(all, index) => SlotCheck::Shared(all.clone(), *index),
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
        // Shared bits: what one holder records, every holder knows, until it changes a field.
        let all: std::sync::Arc<[super::CheckBits]> = vec![super::CheckBits::default()].into();
        let (mut one, two) = (SlotCheck::Shared(all.clone(), 0), SlotCheck::Shared(all, 0));
        one.set_valid(a, 1);
        assert!(two.is_valid(a, 1));
        two.set_valid(a, 3);
        one.field_changed(3);
        assert!(one.is_valid(a, 1) && !one.is_valid(a, 3) && two.is_valid(a, 3));
        one.set_valid(a, 5);
        assert!(!two.is_valid(a, 5), "after a change the bits are its own");
        // Fields past 64 are never remembered.
        check.set_valid(a, 64);
        assert!(!check.is_valid(a, 64));
        check.field_changed(64);
    }
}
