//! [`Packed`]: a slot's fields as a record keeps them: the field names in one list that every
//! slot of the same layout can share, and the field bytes back to back in one buffer.
//!
//! A record a request built field by field (each value its own `Bytes`, in a `Vec` of name and
//! value pairs: 56 bytes of handles per field and an allocation per value) is packed when it is
//! kept ([`Record::apply`](super::Record::apply)): two allocations per slot, and the names none
//! once a store shares them. Reading a field is a lookup of its name and two offsets.

use std::sync::Arc;

use super::Name;

/// A slot's fields, packed (see the module docs).
#[derive(Clone)]
pub(crate) struct Packed {
    /// The field names, in stored order.
    names: Arc<[Name]>,
    /// Per field, where its bytes end (u32 LE, counted from the end of these offsets), then
    /// the fields' bytes back to back.
    buffer: Arc<[u8]>,
}

/// How many bytes the offset of one field takes.
const OFFSET: usize = 4;

/// Buffers up to this size are written on the stack, then copied into their allocation.
const ON_STACK: usize = 512;

/// A buffer of `len` bytes that `fill` writes: one allocation, of the final size.
fn filled(len: usize, fill: impl FnOnce(&mut [u8]) -> Option<()>) -> Option<Arc<[u8]>> {
    if len <= ON_STACK {
        let mut stack = [0u8; ON_STACK];
        let out = stack.get_mut(..len)?;
        fill(out)?;
        Some(Arc::from(&*out))
    } else {
        let mut out = vec![0u8; len];
        fill(&mut out)?;
        Some(Arc::from(out))
    }
}

impl Packed {
    /// Packs `values` (one per name, in order) under `names`; `None` when they do not fit u32
    /// offsets (over 4 GiB), or the counts differ.
    pub(crate) fn new<'a>(
        names: Arc<[Name]>,
        values: impl ExactSizeIterator<Item = &'a [u8]> + Clone,
    ) -> Option<Packed> {
        if values.len() != names.len() {
            return None;
        }
        let header = OFFSET * names.len();
        let total = values
            .clone()
            .try_fold(header, |total, value| total.checked_add(value.len()))?;
        u32::try_from(total - header).ok()?;
        let buffer = filled(total, |out| {
            let (offsets, bytes) = out.split_at_mut(header);
            let mut end = 0;
            for (offset, value) in offsets.chunks_exact_mut(OFFSET).zip(values) {
                let start = end;
                end += value.len();
                bytes.get_mut(start..end)?.copy_from_slice(value);
                // `end` fits: the total was checked above.
                offset.copy_from_slice(&u32::try_from(end).ok()?.to_le_bytes());
            }
            Some(())
        })?;
        Some(Packed { names, buffer })
    }

    /// The field names, in stored order.
    pub(crate) fn names(&self) -> &Arc<[Name]> {
        &self.names
    }

    /// The same fields under `names`, which must be equal to the current ones (a store shares
    /// one list between sessions).
    pub(crate) fn share_names(&mut self, names: &Arc<[Name]>) {
        if !Arc::ptr_eq(&self.names, names) && *self.names == **names {
            self.names = names.clone();
        }
    }

    /// How many fields.
    pub(crate) fn len(&self) -> usize {
        self.names.len()
    }

    /// The bytes of field `index`.
    #[inline]
    pub(crate) fn value(&self, index: usize) -> Option<&[u8]> {
        let header = OFFSET * self.names.len();
        let offset = |at: usize| -> Option<usize> {
            let bytes: &[u8; OFFSET] = self.buffer.get(at..at + OFFSET)?.try_into().ok()?;
            Some(u32::from_le_bytes(*bytes) as usize)
        };
        let start = match index {
            0 => 0,
            _ => offset(OFFSET * (index - 1))?,
        };
        let end = offset(OFFSET * index)?;
        self.buffer.get(header + start..header + end)
    }

    /// The values, in stored order.
    pub(crate) fn values(&self) -> impl ExactSizeIterator<Item = &[u8]> + Clone {
        (0..self.len()).map(|index| self.value(index).unwrap_or_default())
    }

    /// These fields with `changes` (name, bytes) applied: a changed field keeps its place, a
    /// new one goes after the others (a name given twice: its last bytes). Calls `changed`
    /// with the index of a held field once per change that writes it (twice for a field
    /// written twice). `None` when the result does not fit
    /// (see [`Packed::new`]).
    pub(crate) fn with_changes(
        &self,
        changes: &[(&Name, &[u8])],
        mut changed: impl FnMut(usize),
    ) -> Option<Packed> {
        let old = self.names.len();
        // Per change, the index of the field it writes (new names: past the old ones).
        let mut on_stack = [0usize; 8];
        let mut on_heap = Vec::new();
        let targets: &mut [usize] = match changes.len() {
            n if n <= on_stack.len() => &mut on_stack[..n],
            n => {
                on_heap.resize(n, 0);
                &mut on_heap
            }
        };
        let mut added = 0;
        for (at, (name, _)) in changes.iter().enumerate() {
            targets[at] = match self.names.iter().position(|held| held == *name) {
                Some(index) => index,
                None => match changes[..at]
                    .iter()
                    .position(|(earlier, _)| earlier == name)
                {
                    Some(earlier) => targets[earlier],
                    None => {
                        added += 1;
                        old + added - 1
                    }
                },
            };
        }
        let targets = &*targets;
        let names: Arc<[Name]> = match added {
            0 => self.names.clone(),
            _ => {
                // Each new name once, where it first appears (the order of their indexes).
                let new = changes
                    .iter()
                    .zip(targets)
                    .enumerate()
                    .filter(|(at, (_, index))| **index >= old && !targets[..*at].contains(index))
                    .map(|(_, ((name, _), _))| (*name).clone());
                self.names.iter().cloned().chain(new).collect()
            }
        };
        // The bytes of each field from now on: the last change's, else the held ones.
        let mut on_stack: [&[u8]; 16] = [&[]; 16];
        let mut on_heap = Vec::new();
        let values: &mut [&[u8]] = match names.len() {
            n if n <= on_stack.len() => &mut on_stack[..n],
            n => {
                on_heap.resize(n, &[][..]);
                &mut on_heap
            }
        };
        for (index, value) in values.iter_mut().enumerate().take(old) {
            *value = self.value(index).unwrap_or_default();
        }
        for (at, target) in targets.iter().enumerate() {
            if let (Some(value), Some((_, bytes))) = (values.get_mut(*target), changes.get(at)) {
                *value = bytes;
                if *target < old {
                    changed(*target);
                }
            }
        }
        Packed::new(names, values.iter().copied())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(list: &[&'static str]) -> Arc<[Name]> {
        list.iter().map(|n| Name::Borrowed(*n)).collect()
    }

    #[test]
    fn packed_values_read_back_in_order() {
        let values: [&[u8]; 4] = [b"1", b"", b"[1,2,3]", b"\"x\""];
        let packed =
            Packed::new(names(&["a", "b", "c", "d"]), values.iter().copied()).expect("fits");
        assert_eq!(packed.values().collect::<Vec<_>>(), values);
        assert_eq!(packed.value(4), None);
        let empty = Packed::new(names(&[]), std::iter::empty()).expect("fits");
        assert_eq!(empty.len(), 0);
        assert_eq!(empty.value(0), None);
        assert!(Packed::new(names(&["a"]), std::iter::empty()).is_none());
    }

    #[test]
    fn changes_replace_in_place_and_append_new_fields() {
        let packed = Packed::new(names(&["a", "b"]), [&b"1"[..], b"2"].into_iter()).expect("fits");
        let [a, b, c, d] = ["a", "b", "c", "d"].map(Name::Borrowed);
        let mut changed = Vec::new();
        let next = packed
            .with_changes(
                &[
                    (&b, b"20"),
                    (&c, b"3"),
                    (&c, b"30"),
                    (&d, b"4"),
                    (&b, b"200"),
                ],
                |i| changed.push(i),
            )
            .expect("fits");
        assert_eq!(
            &next.names()[..],
            &[a.clone(), b.clone(), c.clone(), d.clone()][..]
        );
        assert_eq!(
            next.values().collect::<Vec<_>>(),
            [&b"1"[..], b"200", b"30", b"4"]
        );
        assert_eq!(changed, [1, 1], "b was written twice");
        let same = packed.with_changes(&[(&a, b"9")], |_| {}).expect("fits");
        assert!(
            Arc::ptr_eq(same.names(), packed.names()),
            "names stay shared"
        );
    }
}
