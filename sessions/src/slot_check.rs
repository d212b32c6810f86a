//! What is known about a stored slot's field bytes beyond the bytes themselves: a cache that
//! survives while a slot is shared (a `MemoryStore` hands out the same slots to every request).
//!
//! Today it knows nothing; lazy per-field decoding (issue 6) fills it in.

/// Facts about a slot's field bytes, kept beside them. Cleared field by field as fields change.
#[derive(Debug, Default)]
pub(crate) struct SlotCheck {}

impl SlotCheck {
    /// The field at `index` (in stored order) got new bytes.
    pub(crate) fn field_changed(&mut self, _index: usize) {}
}

impl Clone for SlotCheck {
    fn clone(&self) -> Self {
        Self {}
    }
}
