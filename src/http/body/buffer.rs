//! The decoded body as it grows, its whole allocation charged to the budget.

use std::cell::Cell;
use std::io;
use std::rc::Rc;

use super::budget::{Charge, OverBudget};

/// Why the buffer refused more bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub(super) enum Refusal {
    #[error("the body exceeds {limit} bytes")]
    TooLarge { limit: usize },
    #[error("request bodies in memory exceed the budget")]
    OverBudget,
}

impl From<OverBudget> for Refusal {
    fn from(_: OverBudget) -> Self {
        Refusal::OverBudget
    }
}

/// The smallest allocation a body starts with.
const MIN_CAPACITY: usize = 8 * 1024;
/// Allocations up to this size come from pages the allocator already holds: they are
/// charged whole. A larger one is backed by the system page by page as it is written, so it
/// is charged as its bytes grow, in steps of [`STEP`].
pub(super) const EAGER: usize = 1024 * 1024;
const STEP: usize = 64 * 1024;

/// Decoded bytes, at most `limit` of them.
///
/// A buffer starts at its first guess of the body's size and doubles up to [`EAGER`]; past
/// that it moves once into an allocation of the limit's size, whose untouched pages cost
/// nothing, so no later growth copies the bytes again. The budget is charged for what the
/// process holds: whole small allocations, the written part of a large one, and both while
/// a growth moves the bytes; always before the memory is taken.
pub(super) struct BodyBuffer {
    bytes: Vec<u8>,
    limit: usize,
    charge: Charge,
    /// Why the last write failed, readable by the reader after the decoders in front of
    /// the buffer turned the failure into an `io::Error` of their own.
    refused: Rc<Cell<Option<Refusal>>>,
}

/// What a buffer of `len` bytes in an allocation of `capacity` holds.
fn held(len: usize, capacity: usize) -> usize {
    if capacity <= EAGER {
        capacity
    } else {
        len.next_multiple_of(STEP).min(capacity)
    }
}

impl BodyBuffer {
    /// A buffer whose first allocation holds `first_guess` bytes (the `Content-Length` of
    /// an identity body, which cannot grow past it).
    pub(super) fn new(
        limit: usize,
        first_guess: usize,
        mut charge: Charge,
        refused: Rc<Cell<Option<Refusal>>>,
    ) -> Result<Self, Refusal> {
        let capacity = first_guess.max(MIN_CAPACITY).min(limit);
        charge.grow_to(held(0, capacity))?;
        Ok(BodyBuffer {
            bytes: Vec::with_capacity(capacity),
            limit,
            charge,
            refused,
        })
    }

    pub(super) fn append(&mut self, data: &[u8]) -> Result<(), Refusal> {
        let len = self.bytes.len();
        let needed = len + data.len();
        if needed > self.limit {
            return Err(Refusal::TooLarge { limit: self.limit });
        }
        let capacity = self.bytes.capacity();
        if needed > capacity {
            let grown = if needed <= EAGER {
                needed.max(2 * capacity).min(EAGER).min(self.limit)
            } else {
                self.limit
            };
            // Both allocations exist while the bytes move.
            self.charge
                .grow_to(held(len, capacity) + held(needed, grown))?;
            self.bytes.reserve_exact(grown - len);
            self.charge.shrink_to(held(needed, self.bytes.capacity()));
        } else {
            self.charge.grow_to(held(needed, capacity))?;
        }
        self.bytes.extend_from_slice(data);
        Ok(())
    }

    /// The bytes and their share of the budget.
    pub(super) fn into_parts(self) -> (Vec<u8>, Charge) {
        (self.bytes, self.charge)
    }
}

impl io::Write for BodyBuffer {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.append(data).map_err(|refusal| {
            self.refused.set(Some(refusal));
            io::Error::other(refusal)
        })?;
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::super::budget::Budget;
    use super::*;
    use crate::memory::Releaser;

    fn buffer(budget: &Budget, limit: usize) -> BodyBuffer {
        BodyBuffer::new(limit, 0, budget.share(), Rc::default()).unwrap()
    }

    impl BodyBuffer {
        fn charge_bytes(&self) -> usize {
            self.charge.bytes()
        }
    }

    #[test]
    fn refuses_more_than_the_limit() {
        let budget = Budget::new(1 << 20, Releaser::default());
        let mut buf = buffer(&budget, 10_000);
        buf.append(&[1; 9_000]).unwrap();
        assert_eq!(
            buf.append(&[1; 1_001]),
            Err(Refusal::TooLarge { limit: 10_000 })
        );
        buf.append(&[1; 1_000]).unwrap();
        assert_eq!(buf.into_parts().0.len(), 10_000);
    }

    #[test]
    fn a_growth_needs_room_for_both_allocations() {
        // 8 KiB to 16 KiB: 24 KiB while the bytes move.
        let budget = Budget::new(23 * 1024, Releaser::default());
        let mut buf = buffer(&budget, 1 << 30);
        buf.append(&[0; 8 * 1024]).unwrap();
        assert_eq!(buf.append(&[0; 1]), Err(Refusal::OverBudget));
        let budget = Budget::new(24 * 1024, Releaser::default());
        let mut buf = buffer(&budget, 1 << 30);
        buf.append(&[0; 8 * 1024 + 1]).unwrap();
        // Afterwards only the new allocation is held.
        let mut other = budget.share();
        other.grow_to(8 * 1024).unwrap();
    }

    #[test]
    fn past_the_eager_size_the_buffer_moves_once_and_is_charged_as_written() {
        let budget = Budget::new(1 << 30, Releaser::default());
        let mut buf = buffer(&budget, 64 << 20);
        buf.append(&vec![0; EAGER]).unwrap();
        assert_eq!(buf.bytes.capacity(), EAGER);
        buf.append(&[0; 1]).unwrap();
        assert_eq!(buf.bytes.capacity(), 64 << 20, "straight to the limit");
        assert_eq!(buf.charge_bytes(), EAGER + STEP);
        buf.append(&vec![0; 10 * STEP]).unwrap();
        assert_eq!(buf.charge_bytes(), EAGER + 11 * STEP);
    }

    #[test]
    fn io_errors_say_why() {
        let budget = Budget::new(1 << 20, Releaser::default());
        let refused = Rc::default();
        let mut buf = BodyBuffer::new(4, 0, budget.share(), Rc::clone(&refused)).unwrap();
        assert!(io::Write::write_all(&mut buf, b"12345").is_err());
        assert_eq!(refused.get(), Some(Refusal::TooLarge { limit: 4 }));
    }
}
