//! The last minutes of ingest, for the admin console's charts: per ten-second interval,
//! turns accepted, rejected (400/413/422) and failed (429/5xx), and the accepted turns'
//! write latency. A fixed ring of intervals, so memory does not grow with traffic or uptime;
//! an interval older than the ring is reused for the current one.

use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::Serialize;

use super::status;

/// Seconds one interval covers.
pub const INTERVAL_SECS: u64 = 10;
/// Intervals kept: ten minutes.
pub const INTERVALS: usize = 60;

/// One interval's counts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Interval {
    /// Unix seconds at which the interval starts.
    pub start: u64,
    pub accepted: u64,
    pub rejected: u64,
    pub failed: u64,
    /// Mean write latency of the accepted turns, in milliseconds (0 without any).
    pub latency_mean_ms: f64,
    /// The slowest accepted turn's write latency, in milliseconds.
    pub latency_max_ms: f64,
}

#[derive(Clone, Copy, Default)]
struct Slot {
    /// The interval number (`start / INTERVAL_SECS`) the counts belong to.
    number: u64,
    accepted: u64,
    rejected: u64,
    failed: u64,
    timed: u64,
    latency_sum_us: u64,
    latency_max_us: u64,
}

/// How an ingest attempt ended, as the reference's `status` label says.
enum Outcome {
    Accepted,
    Rejected,
    Failed,
}

fn outcome(status_label: &str) -> Outcome {
    match status_label {
        status::ACCEPTED => Outcome::Accepted,
        status::QUEUE_FULL | status::DOWNSTREAM_ERROR => Outcome::Failed,
        _ => Outcome::Rejected,
    }
}

/// The ring of recent intervals; one per server, shared by every worker.
pub struct Recent {
    slots: Mutex<[Slot; INTERVALS]>,
}

impl Default for Recent {
    fn default() -> Self {
        Recent {
            slots: Mutex::new([Slot::default(); INTERVALS]),
        }
    }
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

impl Recent {
    /// Counts one ingest attempt under its `writes_total` status label.
    pub fn write(&self, status_label: &str) {
        self.write_at(now_secs(), status_label);
    }

    /// Adds an accepted turn's write latency.
    pub fn latency(&self, elapsed: Duration) {
        self.latency_at(now_secs(), elapsed);
    }

    /// Every interval of the ring, oldest first, ending with the current one; intervals
    /// without traffic are zeros.
    pub fn intervals(&self) -> Vec<Interval> {
        self.intervals_at(now_secs())
    }

    fn with_slot(&self, at_secs: u64, change: impl FnOnce(&mut Slot)) {
        let number = at_secs / INTERVAL_SECS;
        let mut slots = self.slots.lock().unwrap_or_else(|e| e.into_inner());
        let slot = &mut slots[(number % INTERVALS as u64) as usize];
        if slot.number != number {
            *slot = Slot {
                number,
                ..Slot::default()
            };
        }
        change(slot);
    }

    fn write_at(&self, at_secs: u64, status_label: &str) {
        self.with_slot(at_secs, |slot| match outcome(status_label) {
            Outcome::Accepted => slot.accepted += 1,
            Outcome::Rejected => slot.rejected += 1,
            Outcome::Failed => slot.failed += 1,
        });
    }

    fn latency_at(&self, at_secs: u64, elapsed: Duration) {
        let us = u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX);
        self.with_slot(at_secs, |slot| {
            slot.timed += 1;
            slot.latency_sum_us = slot.latency_sum_us.saturating_add(us);
            slot.latency_max_us = slot.latency_max_us.max(us);
        });
    }

    fn intervals_at(&self, at_secs: u64) -> Vec<Interval> {
        let current = at_secs / INTERVAL_SECS;
        let slots = *self.slots.lock().unwrap_or_else(|e| e.into_inner());
        (0..INTERVALS as u64)
            .rev()
            .filter_map(|back| current.checked_sub(back))
            .map(|number| {
                let start = number * INTERVAL_SECS;
                let slot = slots[(number % INTERVALS as u64) as usize];
                if slot.number != number {
                    return Interval {
                        start,
                        ..Interval::default()
                    };
                }
                let mean = if slot.timed == 0 {
                    0.0
                } else {
                    slot.latency_sum_us as f64 / slot.timed as f64 / 1000.0
                };
                Interval {
                    start,
                    accepted: slot.accepted,
                    rejected: slot.rejected,
                    failed: slot.failed,
                    latency_mean_ms: mean,
                    latency_max_ms: slot.latency_max_us as f64 / 1000.0,
                }
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: u64 = 1_800_000_000;

    #[test]
    fn attempts_land_in_their_interval_by_outcome() {
        let recent = Recent::default();
        recent.write_at(T0, status::ACCEPTED);
        recent.latency_at(T0, Duration::from_millis(4));
        recent.write_at(T0 + 1, status::ACCEPTED);
        recent.latency_at(T0 + 1, Duration::from_millis(8));
        recent.write_at(T0 + 2, status::REJECT_PARSE);
        recent.write_at(T0 + 3, status::UNKNOWN_PROVIDER);
        recent.write_at(T0 + 4, status::QUEUE_FULL);
        recent.write_at(T0 + 15, status::DOWNSTREAM_ERROR);

        let intervals = recent.intervals_at(T0 + 15);
        assert_eq!(intervals.len(), INTERVALS);
        let last = intervals[INTERVALS - 1];
        assert_eq!(last.start, (T0 + 15) / INTERVAL_SECS * INTERVAL_SECS);
        assert_eq!((last.accepted, last.rejected, last.failed), (0, 0, 1));
        let before = intervals[INTERVALS - 2];
        assert_eq!(before.start + INTERVAL_SECS, last.start);
        assert_eq!((before.accepted, before.rejected, before.failed), (2, 2, 1));
        assert_eq!(before.latency_mean_ms, 6.0);
        assert_eq!(before.latency_max_ms, 8.0);
        assert!(intervals[..INTERVALS - 2].iter().all(|i| i.accepted == 0));
    }

    #[test]
    fn the_ring_forgets_what_is_older_than_its_window() {
        let recent = Recent::default();
        recent.write_at(T0, status::ACCEPTED);
        // The same slot, one full ring later: the old counts are dropped, not added to.
        let later = T0 + INTERVAL_SECS * INTERVALS as u64;
        recent.write_at(later, status::REJECT_ENVELOPE);
        let intervals = recent.intervals_at(later);
        assert_eq!(intervals.iter().map(|i| i.accepted).sum::<u64>(), 0);
        assert_eq!(intervals.iter().map(|i| i.rejected).sum::<u64>(), 1);
        // Read long after: every interval is empty, and still INTERVALS of them.
        let idle = recent.intervals_at(later + 10_000);
        assert_eq!(idle.len(), INTERVALS);
        assert!(idle.iter().all(|i| i.accepted + i.rejected + i.failed == 0));
    }
}
