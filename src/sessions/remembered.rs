//! The last request a session's actor committed, kept so that the next turn's raw capture
//! cuts and hashes only what follows the prefix the two share (`Chunked::split_after`),
//! under one byte budget for all actors.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::capture::chunks::Cut;
use crate::turn::RawTurn;

/// Bytes all actors may keep of their last requests together (`sessions.remembered_requests_mib`).
#[derive(Debug)]
pub(super) struct RequestBudget {
    limit: usize,
    used: AtomicUsize,
}

impl RequestBudget {
    pub(super) fn new(limit: usize) -> Arc<Self> {
        Arc::new(RequestBudget {
            limit,
            used: AtomicUsize::new(0),
        })
    }

    /// Bytes held now.
    #[cfg(test)]
    fn used(&self) -> usize {
        self.used.load(Ordering::Relaxed)
    }

    /// Takes `bytes` of the budget if they fit.
    fn take(&self, bytes: usize) -> bool {
        self.used
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |used| {
                used.checked_add(bytes).filter(|&total| total <= self.limit)
            })
            .is_ok()
    }

    fn give_back(&self, bytes: usize) {
        self.used.fetch_sub(bytes, Ordering::AcqRel);
    }
}

/// A committed request and the cuts of its split, charged to the budget until dropped.
#[derive(Debug)]
pub(super) struct RememberedRequest {
    bytes: Vec<u8>,
    cuts: Vec<Cut>,
    budget: Arc<RequestBudget>,
}

impl RememberedRequest {
    /// A copy of `raw`'s request and cuts, when its size fits in what is left of `budget`.
    /// The request is copied, not shared: the turn's bytes are a slice of its whole body,
    /// which the budget would not see.
    pub(super) fn keep(raw: &RawTurn, budget: &Arc<RequestBudget>) -> Option<Self> {
        let cuts = raw.request_chunks().cuts();
        if raw.request.is_empty() || !budget.take(charge(&raw.request, cuts)) {
            return None;
        }
        Some(RememberedRequest {
            bytes: raw.request.to_vec(),
            cuts: cuts.to_vec(),
            budget: budget.clone(),
        })
    }

    /// The request and its cuts, as `Chunked::split_after` takes them.
    pub(super) fn previous(&self) -> (&[u8], &[Cut]) {
        (&self.bytes, &self.cuts)
    }
}

/// What a kept request is charged: its bytes and its cuts.
fn charge(bytes: &[u8], cuts: &[Cut]) -> usize {
    bytes.len() + std::mem::size_of_val(cuts)
}

impl Drop for RememberedRequest {
    fn drop(&mut self) {
        self.budget.give_back(charge(&self.bytes, &self.cuts));
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;
    use chrono::Utc;

    use super::*;
    use crate::turn::Capture;

    fn raw(request: &[u8]) -> RawTurn {
        RawTurn::new(Capture {
            request_id: String::new(),
            provider: "anthropic".into(),
            agent_name: String::new(),
            received_at: Utc::now(),
            request: Bytes::copy_from_slice(request),
            response: None,
            response_reduced: false,
            meta: None,
            envelope: None,
            raw_response: None,
            raw_response_encoding: String::new(),
            raw_response_withheld: false,
            truncated: false,
        })
        .0
    }

    #[test]
    fn requests_are_kept_within_the_budget_and_released_when_dropped() {
        let budget = RequestBudget::new(10_000);
        let first = RememberedRequest::keep(&raw(&[b'a'; 6_000]), &budget).unwrap();
        assert_eq!(first.previous().0.len(), 6_000);
        let held = budget.used();
        assert!(held >= 6_000, "{held}");
        // A second one does not fit beside the first.
        assert!(RememberedRequest::keep(&raw(&[b'b'; 6_000]), &budget).is_none());
        assert_eq!(budget.used(), held);
        drop(first);
        assert_eq!(budget.used(), 0);
        assert!(RememberedRequest::keep(&raw(&[b'b'; 6_000]), &budget).is_some());
        // Nothing is kept of an empty request, nor under a zero budget.
        assert!(RememberedRequest::keep(&raw(b""), &budget).is_none());
        assert!(RememberedRequest::keep(&raw(b"{}"), &RequestBudget::new(0)).is_none());
    }
}
