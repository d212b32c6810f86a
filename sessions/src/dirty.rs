//! The set of fields a handler changed.

/// Which stored fields of one slot changed, by index into [`Session::FIELDS`](crate::Session::FIELDS).
///
/// ```
/// use sessions::store::DirtySet;
/// let mut set = DirtySet::default();
/// set.insert(3);
/// set.insert(70);
/// assert!(set.contains(3) && set.contains(70) && !set.contains(4));
/// assert_eq!(set.iter().collect::<Vec<_>>(), [3, 70]);
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DirtySet {
    /// Fields 0..64, one bit each: the common case needs no allocation.
    first: u64,
    /// Fields 64.., 64 a word.
    more: Vec<u64>,
}

impl DirtySet {
    /// Marks the field at `index`.
    ///
    /// ```
    /// use sessions::store::DirtySet;
    /// let mut set = DirtySet::default();
    /// set.insert(2);
    /// set.insert(2);
    /// set.insert(130); // beyond the first 64 fields
    /// assert_eq!(set.iter().collect::<Vec<_>>(), [2, 130]);
    /// ```
    pub fn insert(&mut self, index: usize) {
        if index < 64 {
            self.first |= 1 << index;
        } else {
            let word = index / 64 - 1;
            if self.more.len() <= word {
                self.more.resize(word + 1, 0);
            }
            self.more[word] |= 1 << (index % 64);
        }
    }

    /// Marks the fields `0..len`.
    ///
    /// ```
    /// use sessions::store::DirtySet;
    /// let mut set = DirtySet::default();
    /// set.insert_all(3);
    /// assert_eq!(set.iter().collect::<Vec<_>>(), [0, 1, 2]);
    /// assert!(!set.contains(3));
    /// ```
    pub fn insert_all(&mut self, len: usize) {
        for index in 0..len {
            self.insert(index);
        }
    }

    /// Whether the field at `index` is marked.
    ///
    /// ```
    /// use sessions::store::DirtySet;
    /// let mut set = DirtySet::default();
    /// set.insert(65);
    /// assert!(set.contains(65));
    /// assert!(!set.contains(1) && !set.contains(64) && !set.contains(1000));
    /// ```
    pub fn contains(&self, index: usize) -> bool {
        if index < 64 {
            self.first & (1 << index) != 0
        } else {
            self.more
                .get(index / 64 - 1)
                .is_some_and(|word| word & (1 << (index % 64)) != 0)
        }
    }

    /// Whether no field is marked.
    ///
    /// ```
    /// use sessions::store::DirtySet;
    /// let mut set = DirtySet::default();
    /// assert!(set.is_empty());
    /// set.insert(100);
    /// assert!(!set.is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.first == 0 && self.more.iter().all(|word| *word == 0)
    }

    /// Unmarks every field.
    ///
    /// ```
    /// use sessions::store::DirtySet;
    /// let mut set = DirtySet::default();
    /// set.insert_all(70);
    /// set.clear();
    /// assert!(set.is_empty());
    /// assert_eq!(set, DirtySet::default());
    /// ```
    pub fn clear(&mut self) {
        self.first = 0;
        self.more.clear();
    }

    /// The marked indices, ascending.
    ///
    /// ```
    /// use sessions::store::DirtySet;
    /// let mut set = DirtySet::default();
    /// for index in [70, 5, 64, 0] {
    ///     set.insert(index);
    /// }
    /// assert_eq!(set.iter().collect::<Vec<_>>(), [0, 5, 64, 70]);
    /// ```
    pub fn iter(&self) -> impl Iterator<Item = usize> + '_ {
        std::iter::once(self.first)
            .chain(self.more.iter().copied())
            .enumerate()
            .flat_map(|(word_index, word)| {
                (0..64)
                    .filter(move |bit| word & (1 << bit) != 0)
                    .map(move |bit| word_index * 64 + bit)
            })
    }
}
