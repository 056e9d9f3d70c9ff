//! The memory budget shared by every request body held at once: decoded bytes, the
//! capacity they grow into, and the state of the decoders producing them.

use std::sync::Arc;

use tokio::sync::Semaphore;

use crate::memory::{Purge, Releaser};

/// The budget is counted in units of this many bytes.
const UNIT: usize = 1024;
/// Returning a share at least this large gives freed memory back to the system at once:
/// smaller bodies reuse what the allocator keeps.
const RELEASE_THRESHOLD: usize = 4 * 1024 * 1024;

/// A share of the budget was not available.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct OverBudget;

/// Bytes of bodies that may be held at once, across requests.
#[derive(Clone)]
pub(super) struct Budget {
    units: Arc<Semaphore>,
    releaser: Releaser,
}

impl Budget {
    pub(super) fn new(bytes: usize, releaser: Releaser) -> Self {
        Budget {
            units: Arc::new(Semaphore::new((bytes / UNIT).min(Semaphore::MAX_PERMITS))),
            releaser,
        }
    }

    /// An empty share, to grow as its body does.
    pub(super) fn share(&self) -> Charge {
        Charge {
            budget: self.clone(),
            units: 0,
        }
    }
}

/// One body's share of the budget, returned when dropped.
pub struct Charge {
    budget: Budget,
    units: usize,
}

impl Charge {
    /// Holds at least `bytes` in total, taking what is missing from the budget at once or
    /// failing without waiting.
    pub(super) fn grow_to(&mut self, bytes: usize) -> Result<(), OverBudget> {
        let units = bytes.div_ceil(UNIT);
        if units <= self.units {
            return Ok(());
        }
        let more = u32::try_from(units - self.units).map_err(|_| OverBudget)?;
        // Forgotten here, given back by `shrink_to` and `drop`: a share grows and shrinks
        // many times, which whole permits could not follow.
        self.budget
            .units
            .try_acquire_many(more)
            .map_err(|_| OverBudget)?
            .forget();
        self.units = units;
        Ok(())
    }

    /// The bytes held, in whole units.
    #[cfg(test)]
    pub(super) fn bytes(&self) -> usize {
        self.units * UNIT
    }

    /// Holds at most `bytes`, giving the rest back.
    pub(super) fn shrink_to(&mut self, bytes: usize) {
        let units = bytes.div_ceil(UNIT);
        if units < self.units {
            self.budget.units.add_permits(self.units - units);
            self.units = units;
        }
    }
}

impl Drop for Charge {
    fn drop(&mut self) {
        self.budget.units.add_permits(self.units);
        // A share is dropped after the memory it covered (its buffer or decoder). What is
        // freed later (a parsed turn outliving its answer) waits for the periodic purge.
        if self.units * UNIT >= RELEASE_THRESHOLD {
            self.budget.releaser.release(Purge::Now);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shares_take_from_and_return_to_the_budget() {
        let budget = Budget::new(10 * UNIT, Releaser::default());
        let mut a = budget.share();
        a.grow_to(6 * UNIT).unwrap();
        let mut b = budget.share();
        assert_eq!(b.grow_to(5 * UNIT), Err(OverBudget));
        b.grow_to(4 * UNIT + 1).unwrap_err();
        b.grow_to(4 * UNIT).unwrap();
        a.shrink_to(UNIT);
        b.grow_to(9 * UNIT).unwrap();
        drop(a);
        drop(b);
        assert_eq!(budget.units.available_permits(), 10);
    }

    #[test]
    fn returning_a_large_share_purges_at_once() {
        use std::sync::atomic::{AtomicUsize, Ordering};
        static PURGES: AtomicUsize = AtomicUsize::new(0);
        let releaser = Releaser::default();
        releaser.set(|purge| {
            assert_eq!(purge, Purge::Now);
            PURGES.fetch_add(1, Ordering::Relaxed);
        });
        let budget = Budget::new(64 * 1024 * 1024, releaser);
        let mut small = budget.share();
        small.grow_to(RELEASE_THRESHOLD - UNIT).unwrap();
        drop(small);
        assert_eq!(PURGES.load(Ordering::Relaxed), 0);
        let mut large = budget.share();
        large.grow_to(RELEASE_THRESHOLD).unwrap();
        drop(large);
        assert_eq!(PURGES.load(Ordering::Relaxed), 1);
    }
}
