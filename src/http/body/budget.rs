//! The memory budget shared by every request body held at once: decoded bytes, the
//! capacity they grow into, and the state of the decoders producing them.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use tokio::sync::Semaphore;

/// The budget is counted in units of this many bytes.
const UNIT: usize = 1024;
/// Returning a share at least this large asks for memory to be given back to the system
/// (see [`Budget::take_released`]): smaller bodies reuse what the allocator keeps.
const RELEASE_THRESHOLD: usize = 4 * 1024 * 1024;

/// A share of the budget was not available.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct OverBudget;

/// Bytes of bodies that may be held at once, across requests.
#[derive(Clone)]
pub(super) struct Budget {
    units: Arc<Semaphore>,
    released: Arc<AtomicBool>,
}

impl Budget {
    pub(super) fn new(bytes: usize) -> Self {
        Budget {
            units: Arc::new(Semaphore::new((bytes / UNIT).min(Semaphore::MAX_PERMITS))),
            released: Arc::new(AtomicBool::new(false)),
        }
    }

    /// An empty share, to grow as its body does.
    pub(super) fn share(&self) -> Charge {
        Charge {
            budget: self.clone(),
            units: 0,
        }
    }

    /// True once after a large share was returned since the last call: the allocator may
    /// now hold freed memory worth giving back.
    pub(super) fn take_released(&self) -> bool {
        self.released.swap(false, Ordering::Relaxed)
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
        if self.units * UNIT >= RELEASE_THRESHOLD {
            self.budget.released.store(true, Ordering::Relaxed);
        }
        self.budget.units.add_permits(self.units);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shares_take_from_and_return_to_the_budget() {
        let budget = Budget::new(10 * UNIT);
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
        assert!(!budget.take_released(), "small shares ask for nothing");
    }

    #[test]
    fn returning_a_large_share_asks_for_memory_back_once() {
        let budget = Budget::new(64 * 1024 * 1024);
        let mut share = budget.share();
        share.grow_to(RELEASE_THRESHOLD).unwrap();
        drop(share);
        assert!(budget.take_released());
        assert!(!budget.take_released());
    }
}
