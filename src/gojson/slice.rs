//! Go slices as the decoder fills them, the backing array included.

use serde::de::SeqAccess;

/// A Go slice being decoded: `items[..len]` is the slice, and the items past `len` are the
/// rest of its backing array, left there by an earlier, longer array.
///
/// Go decodes a repeated key's array into the slice already there: element `i` goes into
/// the element already at `i`, so a struct keeps the fields the new element does not name,
/// and this holds past the length too, where the element is the one an earlier array left.
/// Only beyond every earlier array are zero elements appended. The slice is then cut to the
/// new array's length; an empty array drops the backing array altogether.
#[derive(Debug, Clone, PartialEq)]
pub struct GoSlice<T> {
    items: Vec<T>,
    len: usize,
}

impl<T> Default for GoSlice<T> {
    fn default() -> Self {
        GoSlice {
            items: Vec::new(),
            len: 0,
        }
    }
}

impl<T> GoSlice<T> {
    /// The slice, without the rest of the backing array.
    pub fn into_vec(mut self) -> Vec<T> {
        self.items.truncate(self.len);
        self.items
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

impl<T: Default> GoSlice<T> {
    /// Decodes the array `seq` into the slice. `next(i, slot, seq)` decodes the next element
    /// of `seq` into `slot`, the element already at `i` (or a zero one), and tells whether
    /// there was one.
    pub fn refill<'de, A: SeqAccess<'de>>(
        &mut self,
        mut seq: A,
        mut next: impl FnMut(usize, &mut T, &mut A) -> Result<bool, A::Error>,
    ) -> Result<(), A::Error> {
        let mut i = 0;
        loop {
            // Whether another element follows is only known once it is decoded, so a zero
            // element is put in place first and taken back when the array ends.
            let appended = i == self.items.len();
            if appended {
                self.items.push(T::default());
            }
            let Some(slot) = self.items.get_mut(i) else {
                break;
            };
            if !next(i, slot, &mut seq)? {
                if appended {
                    self.items.pop();
                }
                break;
            }
            i += 1;
        }
        self.len = i;
        if i == 0 {
            self.items = Vec::new();
        }
        Ok(())
    }
}
